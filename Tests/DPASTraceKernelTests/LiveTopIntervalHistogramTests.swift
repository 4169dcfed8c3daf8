@testable import DPASTraceKernel
import Foundation
import Testing

extension KernelSessionTests {
    private func intervalPreconditions() -> Bool {
        guard Privilege.isSufficient else { print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF"); return false }
        guard SystemSnapshotCLITests.binary != nil else {
            print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
            return false
        }
        return true
    }

    /// Per-interval bucket counts of the JSON Lines output.
    private func bucketTotal(_ record: [String: Any]) -> Int {
        ((record["buckets"] as? [[String: Any]]) ?? []).reduce(0) { $0 + (($1["count"] as? Int) ?? 0) }
    }

    private func jsonRecords(_ text: String) -> [[String: Any]?] {
        text.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// `buckets --interval S --json`: one JSON object per line and interval, numbered in order;
    /// the intervals' bucket counts add up to the reads made, and a final line holds the total.
    @Test func bucketsIntervalJSONLinesCountTheReads() throws {
        guard intervalPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50)
        let live = try FlightChild(["buckets", "--interval", "0.4", "--json", "--device", reader.device,
                                    "--tid", String(try currentThreadID())])
        #expect(live.waitFor("\"interval\":1,"), "no first interval line: \(live.stderr)")
        try reader.read(40)
        // Wait until the intervals have seen all 40 reads, then stop.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, jsonRecords(live.stdout).compactMap({ $0 }).reduce(0, { $0 + bucketTotal($1) }) < 40 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        live.process.interrupt()
        #expect(live.waitForExit() == 0, "\(live.stderr)")

        let records = jsonRecords(live.stdout)
        #expect(records.allSatisfy { $0 != nil }, "every line is one JSON object:\n\(live.stdout)")
        let objects = records.compactMap { $0 }
        let intervals = objects.filter { ($0["final"] as? Bool) == false }
        #expect(intervals.map { $0["interval"] as? Int } == Array(1...intervals.count), "intervals numbered in order")
        #expect(intervals.reduce(0) { $0 + bucketTotal($1) } == 40)
        #expect(intervals.allSatisfy { ($0["time"] as? String)?.hasPrefix("20") == true && $0["report"] is [String: Any] })
        let final = try #require(objects.last)
        #expect(final["final"] as? Bool == true)
        #expect(bucketTotal(final) == 40)
        let finalRows = (final["report"] as? [String: Any])?["rows"] as? [[String: Any]]
        #expect(finalRows?.reduce(0) { $0 + (($1["count"] as? Int) ?? 0) } == 40)
    }

    /// `buckets --interval S` as text: bcc-style blocks with a timestamp line each, the reads in a
    /// bucket row with a bar, then the final table; `sleep-ratio --interval S` gives its
    /// requested / actual sleep histogram headings per block (empty here: no hybrid polling).
    @Test func intervalTextBlocksHaveTimestampsAndHistograms() throws {
        guard intervalPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50)
        let live = try FlightChild(["buckets", "--interval", "0.4", "--device", reader.device, "--tid", String(try currentThreadID())])
        let sleeps = try FlightChild(["sleep-ratio", "--interval", "0.4", "--device", reader.device,
                                      "--tid", String(try currentThreadID())])
        #expect(live.waitFor("interval 1 (0.4 s)"), "no first block: \(live.stderr)")
        #expect(sleeps.waitFor("interval 1 (0.4 s)"), "no first block: \(sleeps.stderr)")
        try reader.read(25)
        // Bucket rows of the 4 KiB reads (6, or -1 without QUEUE_FLAG_STATS) with a bar; the reads
        // may straddle two intervals, so their counts add up to 25 over the blocks.
        let row = try Regex(#"(?m)^\s+(-1|6) :\s+(\d+)  \|\*+ *\|$"#)
        func readsShown(_ text: String) -> Int {
            text.matches(of: row).reduce(0) { $0 + (Int(String(text[$1.output[2].range!])) ?? 0) }
        }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && readsShown(live.stdout) < 25 { Thread.sleep(forTimeInterval: 0.1) }
        live.process.interrupt()
        sleeps.process.interrupt()
        #expect(live.waitForExit() == 0, "\(live.stderr)")
        #expect(sleeps.waitForExit() == 0, "\(sleeps.stderr)")

        let text = live.stdout
        #expect(readsShown(text) == 25, "the 25 reads are not in the blocks' bucket rows:\n\(text)")
        let stamp = try Regex(#"(?m)^--- \d\d:\d\d:\d\d interval \d+ \(0\.4 s\)$"#)
        #expect(text.matches(of: stamp).count >= 2, "a timestamp line per block:\n\(text)")
        let total = try #require(text.range(of: "--- total\n"), "no final table:\n\(text)")
        #expect(text[total.upperBound...].contains("Poll-stats buckets"))

        let sleepText = sleeps.stdout
        #expect(sleepText.contains("requested sleep\n") && sleepText.contains("actual sleep (slept only)\n"), "\(sleepText)")
        #expect(sleepText.contains("--- total\n"))
    }
}

extension KernelSessionTests {
    /// With program statistics on, the kernel counts every run of the request-start program: at
    /// least one per request the workload made (it runs for every request and filters inside).
    @Test func programCostsCountTheRequestStartRuns() throws {
        guard Privilege.isSufficient else { print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF"); return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(10)
        var options = TraceSession.Options(processID: UInt32(getpid()), threadID: try currentThreadID())
        options.programStatistics = true
        let session = try TraceSession(options: options)
        defer { session.close() }
        #expect(session.programStatisticsError == nil)
        try reader.read(60)
        let costs = session.programCosts()
        let starts = costs.filter { $0.hook == Hook.requestStart.rawValue }
        #expect(!starts.isEmpty, "no request-start program among \(costs.map(\.program))")
        #expect(starts.reduce(0) { $0 + $1.runs } >= 60)
        #expect(starts.allSatisfy { $0.runs == 0 || $0.runTimeNs > 0 })
        // Without the option nothing is counted (and no statistics fd is held).
        let plain = try TraceSession(options: .init(processID: UInt32(getpid()), threadID: try currentThreadID()))
        defer { plain.close() }
        #expect(plain.programCosts().isEmpty)
    }

    /// `--probe-costs` prints the per-program table on stderr after the run, with the request-start
    /// program's runs.
    @Test func probeCostsFlagPrintsTheTable() throws {
        guard intervalPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(10)
        // --verbose prints the probe plan once everything is attached: the reads come after it.
        let live = try FlightChild(["buckets", "--probe-costs", "--verbose", "--device", reader.device,
                                    "--tid", String(try currentThreadID())])
        #expect(live.waitFor("Probe plan for Linux"), "\(live.stderr)")
        try reader.read(30)
        live.process.interrupt()
        #expect(live.waitForExit() == 0, "\(live.stderr)")
        #expect(live.stderr.contains("Probe costs over"), "\(live.stderr)")
        let startRow = live.stderr.split(separator: "\n").first { $0.contains(Hook.requestStart.rawValue) }
        #expect(startRow != nil, "\(live.stderr)")
        #expect(live.stderr.split(separator: "\n").contains { $0.hasPrefix("  all") })
    }
}

extension KernelSessionTests {
    /// A command plans (and so loads and runs) only the hooks it reads; completions never go
    /// without request starts, nor starts without their maker.
    @Test func planCoversOnlyTheHooksACommandNeeds() throws {
        let facts = KernelFacts.gather()
        // Every hook but those of the sleep design not chosen (the poller's path or the tracepoints).
        let full = ProbePlanner(facts: facts).plan()
        let otherDesign: Set<Hook> = full.resolvesOnPollersPath ? [.timerExpire, .contextSwitch] : [.sleeperCancel]
        #expect(full.choices.map(\.hook) == Hook.allCases.filter { !otherDesign.contains($0) })
        #expect(ProbePlanner(facts: facts, hooks: [.requestStart]).plan().choices.map(\.hook) == [.requestStart, .requestMaker])
        #expect(ProbePlanner(facts: facts, hooks: [.requestDone]).plan().choices.map(\.hook)
            == [.requestStart, .requestMaker, .requestDone])
        let sleepHooks = Set(ProbePlanner(facts: facts, hooks: Hook.forSleepRatio(pas: false)).plan().choices.map(\.hook))
        #expect(sleepHooks.isDisjoint(with: [.requestStart, .requestMaker, .requestDone, .dpasMode]))
        #expect(ProbePlanner(facts: facts, hooks: Hook.forSleepRatio(pas: true)).plan().choices.contains { $0.hook == .dpasMode })
    }
}
