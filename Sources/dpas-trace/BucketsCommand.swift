import ArgumentParser
import DPASTraceCore

/// `dpas-trace buckets`: which poll-stats bucket each request got, and why bucket −1.
struct BucketsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buckets",
        abstract: "Per poll-stats bucket (−1…15): requests, sizes, stats_sectors == 0, and the share of polled I/O in bucket −1 with its cause.",
        discussion: """
        Exit status: 0 ok (also for a damaged dump: everything before the damage is analysed and the \
        damage is reported on stderr); 1 when the dump cannot be read.
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
        let report = try Offline.analyse(path: path).report.buckets
        Offline.emit(json ? try Offline.json(report) : TextRenderer.buckets(report))
    }

    /// Live tracing: the in-kernel aggregates through the same analysis (see LiveSupport.swift).
    func runLive() throws {
        try Live.buckets(live, json: json)
    }
}
