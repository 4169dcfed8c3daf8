import ArgumentParser
import DPASTraceCore

/// `dpas-trace modes`: what the DPAS state machine did on each CPU.
struct ModesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modes",
        abstract: "Per CPU: DPAS mode transitions (avg QD, tf), from×to matrix, time and I/O share per mode.",
        discussion: """
        Live, it reads each CPU's struct blk_switch (through irq_poll_switch) at request starts, \
        blk_mq_poll entry/exit and sleeper arming, and reports the kernel's own per-mode totals \
        (cp_tot … int_tot, as switch_stat prints them) beside the traced counts. On a kernel without \
        DPAS it says so and exits 0. Exit status: 0 ok (also for a damaged dump: everything before \
        the damage is analysed and the damage is reported on stderr); 1 when the dump cannot be read.
        """
    )

    @Option(name: .long, help: "Analyse this dump (from `dpas-trace record`) instead of tracing live.")
    var from: String?

    @Flag(name: .long, help: "Print JSON (keys documented in docs/json.md).")
    var json = false

    @OptionGroup(title: "Live tracing (without --from)")
    var live: LiveOptions

    func validate() throws {
        try LiveTraceOptions.refuse(live.given, withDump: from)
    }

    func run() throws {
        if let from { try runOffline(path: from) } else { try runLive() }
    }

    func runOffline(path: String) throws {
        let report = try Offline.analyse(path: path).report.modes
        Offline.emit(json ? try Offline.json(report) : TextRenderer.modes(report))
    }

    /// Live tracing: the DPAS maps and MODE events through the same analysis (see LiveModes.swift).
    func runLive() throws {
        try Live.modes(live, json: json)
    }
}
