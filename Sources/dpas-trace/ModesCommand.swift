import ArgumentParser
import DPASTraceCore

/// `dpas-trace modes`: what the DPAS state machine did on each CPU.
struct ModesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modes",
        abstract: "Per CPU: DPAS mode transitions (avg QD, tf), from×to matrix, time and I/O share per mode.",
        discussion: """
        On a kernel without DPAS it says so. Exit status: 0 ok (also for a damaged dump: everything before \
        the damage is analysed and the damage is reported on stderr); 1 when the dump cannot be read.
        """
    )

    @Option(name: .long, help: "Analyse this dump (from `dpas-trace record`) instead of tracing live.")
    var from: String?

    @Flag(name: .long, help: "Print JSON (keys documented in docs/json.md).")
    var json = false

    func run() throws {
        if let from { try runOffline(path: from) } else { try runLive() }
    }

    func runOffline(path: String) throws {
        let report = try Offline.analyse(path: path).report.modes
        Offline.emit(json ? try Offline.json(report) : TextRenderer.modes(report))
    }

    /// Live tracing: replaced when the kernel side lands.
    func runLive() throws {
        throw ValidationError("live tracing needs --from until the kernel side lands")
    }
}
