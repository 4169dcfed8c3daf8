import ArgumentParser
import DPASTraceCore

/// `dpas-trace sleep-ratio`: does the hybrid-polling task really sleep for what it requests?
struct SleepRatioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sleep-ratio",
        abstract: "Per requested sleep: attempts, slept, no sleep, sleep ratio, actual sleep and oversleep, verdict.",
        discussion: """
        Rows are exact requested durations while at most 16 distinct values occur (DPAS's d_init), \
        log2 ranges otherwise. Exit status: 0 ok (also for a damaged dump: everything before the damage \
        is analysed and the damage is reported on stderr); 1 when the dump cannot be read.
        """
    )

    @Option(name: .long, help: "Analyse this dump (from `dpas-trace record`) instead of tracing live.")
    var from: String?

    @Flag(name: .long, help: "Also split the rows per CPU.")
    var perCPU = false

    @Flag(name: .long, help: "Print JSON (keys documented in docs/json.md).")
    var json = false

    @Flag(name: .long, help: "DPAS kernels, live: also show PAS state per CPU and bucket (dur, last two results, timer-floor hits).")
    var pas = false

    @OptionGroup(title: "Live tracing (without --from)")
    var live: LiveOptions

    func validate() throws {
        if pas && from != nil { throw ValidationError("--pas needs live tracing: PAS state is read from the kernel, not from dumps") }
        try LiveTraceOptions.refuse(live.given, withDump: from)
    }

    func run() throws {
        if let from { try runOffline(path: from) } else { try runLive() }
    }

    func runOffline(path: String) throws {
        let report = try Offline.analyse(path: path, sleepPerCPU: perCPU).report.sleepRatio
        Offline.emit(json ? try Offline.json(report) : TextRenderer.sleepRatio(report))
    }

    /// Live tracing: the in-kernel aggregates through the same analysis (see LiveSupport.swift).
    func runLive() throws {
        try Live.sleepRatio(live, perCPU: perCPU, json: json, pas: pas)
    }
}
