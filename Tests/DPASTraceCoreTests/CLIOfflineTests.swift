import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// Runs the built `dpas-trace` binary on dumps written by the real `DumpWriter` from synthetic events.
@Suite struct CLIOfflineTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
        }
    }

    /// `dpas-trace` sits next to the test bundle in the build directory (`.build*/debug/`).
    static func binary() throws -> URL {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for directory in candidates {
            var url = directory
            // The bundle may be a directory (…xctest/Contents/MacOS/…) on other platforms: walk up a little.
            for _ in 0..<4 {
                let binary = url.appendingPathComponent("dpas-trace")
                if FileManager.default.isExecutableFile(atPath: binary.path) { return binary }
                url.deleteLastPathComponent()
            }
        }
        throw CLIError("dpas-trace binary not found next to the test bundle (\(candidates.map(\.path))): run `swift build --build-tests` first")
    }

    struct CLIError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func run(_ arguments: [String]) throws -> Run {
        let result = try Child.run(try binary().path, arguments)
        return Run(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dpas-trace-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A finished dump of `events` with `lost` lost events per CPU, in chunks of `eventsPerChunk`.
    static func writeDump(_ events: [TraceEvent], to url: URL, lost: [UInt64] = [], eventsPerChunk: Int = 1_000,
                          probePlan: [ProbePlanEntry] = [], finish: Bool = true) throws {
        let header = DumpHeader(kernelRelease: "5.10.0-32-amd64", hostname: "lab", createdRealtimeNs: 1_700_000_000_000_000_000,
                                bootTimeOffsetNs: 1_600_000_000_000_000_000, command: ["dpas-trace", "record"], device: "nvme0n1",
                                probePlan: probePlan)
        let writer = try DumpWriter(path: url.path, header: header, eventsPerChunk: eventsPerChunk)
        for event in events { try writer.append(event) }
        if !lost.isEmpty { try writer.recordLost(perCPU: lost) }
        if finish { try writer.finish(reason: "duration elapsed") } else { try writer.flush() }
    }

    /// Sleeps of the seed's table, the mixed bucket stream and the scripted DPAS sequence.
    static func allEvents() -> [TraceEvent] {
        SleepRatioAnalysisTests.seedEvents() + BucketAnalysisTests.mixedStream() + ModeAnalysisTests.script()
    }

    /// Live-tracing options with --from would be ignored: every analysis command refuses them.
    @Test func liveOptionsWithADumpAreRefused() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("seed.dpt")
        try Self.writeDump(SleepRatioAnalysisTests.seedEvents(), to: dump)
        for command in ["sleep-ratio", "buckets", "modes", "top"] {
            let refused = try Self.run([command, "--from", dump.path, "--device", "nvme0n1", "--probe-costs"])
            #expect(refused.status == 64, "\(command): \(refused.stderr)")
            #expect(refused.stderr.contains("--device, --probe-costs apply to live tracing, not to --from DUMP"), "\(command): \(refused.stderr)")
            #expect(refused.stdout.isEmpty)
        }
        let duration = try Self.run(["buckets", "--from", dump.path, "--duration", "5"])
        #expect(duration.status == 64 && duration.stderr.contains("--duration applies to live tracing"), "\(duration.stderr)")
        // top's --interval is its frame period, for replays too.
        let top = try Self.run(["top", "--from", dump.path, "--speed", "0", "--interval", "0.1"])
        #expect(top.status == 0, "\(top.stderr)")
    }

    @Test func sleepRatioTableAndJSON() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("seed.dpt")
        try Self.writeDump(Self.allEvents(), to: dump, lost: [3, 0, 4])

        let text = try Self.run(["sleep-ratio", "--from", dump.path])
        #expect(text.status == 0)
        #expect(text.stderr.isEmpty)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let row100 = try #require(lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("100 ") })
        #expect(row100.contains("5,899") && row100.contains("0%") && row100.contains("Never sleeps"))
        let row2000 = try #require(lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("2,000 ") })
        #expect(row2000.contains("10,800") && row2000.contains("10,785") && row2000.contains("0.1%") && row2000.contains("Barely sleeps"))
        let row3960 = try #require(lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("3,960 ") })
        #expect(row3960.contains("55,273") && row3960.contains("99.8%") && row3960.contains("Normal sleep"))
        #expect(lines.contains("Lost events: 7 (CPU 0: 3, CPU 2: 4) — the recorder dropped these, so the counts above miss them"))

        let json = try Self.run(["sleep-ratio", "--from", dump.path, "--json"])
        #expect(json.status == 0)
        let rows = try #require(json.json["rows"] as? [[String: Any]])
        #expect(rows.map { $0["requested_ns"] as? Int } == [100, 1_000, 2_000, 3_960])
        #expect(rows.map { $0["attempts"] as? Int } == [5_899, 5_998, 10_800, 55_388])
        #expect(rows.map { $0["slept"] as? Int } == [0, 0, 15, 55_273])
        #expect(rows.map { $0["no_sleep"] as? Int } == [5_899, 5_998, 10_785, 115])
        #expect(rows.map { $0["verdict_code"] as? String } == ["never", "never", "barely", "normal"])
        #expect((rows[3]["actual_sleep"] as? [String: Any])?["p99_ns"] is Int)
        let totals = try #require(json.json["totals"] as? [String: Any])
        #expect(totals["lost_events"] as? Int == 7)
        #expect(totals["attempts"] as? Int == 78_085)
        #expect(json.json["row_kind"] as? String == "exact")

        let perCPU = try Self.run(["sleep-ratio", "--from", dump.path, "--per-cpu", "--json"])
        #expect((perCPU.json["per_cpu"] as? [[String: Any]])?.count == 8)
    }

    @Test func bucketsModesAndFullReport() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("all.dpt")
        try Self.writeDump(Self.allEvents(), to: dump)

        let buckets = try Self.run(["buckets", "--from", dump.path])
        #expect(buckets.status == 0)
        // 1,550 polled requests of the bucket stream + 181 polled ones of the mode script (INT clears polling).
        #expect(buckets.stdout.contains("Bucket −1: 57.8% of polled I/O (1,000 of 1,731) got bucket −1"))
        #expect(buckets.stdout.contains("Cause: QUEUE_FLAG_STATS is off on this queue"))
        #expect(buckets.stdout.contains("Lost events: 0"))
        let bucketJSON = try Self.run(["buckets", "--from", dump.path, "--json"])
        let totals = try #require(bucketJSON.json["totals"] as? [String: Any])
        // The mode script adds 201 polled-or-not 4 KiB reads with QUEUE_FLAG_STATS on (bucket 6).
        #expect(totals["requests"] as? Int == 1_750 + 201)
        #expect(totals["polled_bucket_minus_one"] as? Int == 1_000)
        #expect(bucketJSON.json["queue_stats"] as? String == "mixed")

        let modes = try Self.run(["modes", "--from", dump.path])
        #expect(modes.status == 0)
        #expect(modes.stdout.contains("CPU 0: 5 transitions, mode at the end: CP"))
        let modeJSON = try Self.run(["modes", "--from", dump.path, "--json"])
        #expect(modeJSON.json["dpas_seen"] as? Bool == true)
        #expect((modeJSON.json["totals"] as? [String: Any])?["transitions"] as? Int == 5)

        let report = try Self.run(["report", dump.path])
        #expect(report.status == 0)
        #expect(report.stdout.hasPrefix("Trace: \(dump.path) — kernel 5.10.0-32-amd64"))
        for section in ["Hybrid-poll sleeps by requested sleep", "Poll-stats buckets", "DPAS modes"] {
            #expect(report.stdout.contains(section))
        }
        #expect(report.stdout.components(separatedBy: "Lost events:").count == 2, "one lost-events line for the whole report")
        let reportJSON = try Self.run(["report", dump.path, "--json"])
        #expect(Set(reportJSON.json.keys) == ["source", "sleep_ratio", "buckets", "modes", "lost_events", "warnings"])
        #expect((reportJSON.json["source"] as? [String: Any])?["complete"] as? Bool == true)
    }

    @Test func stockKernelDumpSaysNotDPASAndNamesTheMissingHooks() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("stock.dpt")
        let plan = [
            ProbePlanEntry(hook: "request start", target: "block:block_rq_issue", attachType: "tp_btf", status: .attached,
                           detail: "kprobes not configured"),
            ProbePlanEntry(hook: "hybrid sleep", target: "blk_mq_poll_hybrid", attachType: "none", status: .unavailable,
                           detail: "hybrid polling was removed in 6.4", cost: "no sleep-ratio rows"),
        ]
        try Self.writeDump(BucketAnalysisTests.mixedStream(), to: dump, probePlan: plan)
        let modes = try Self.run(["modes", "--from", dump.path])
        #expect(modes.status == 0)
        #expect(modes.stdout.contains("not a DPAS kernel: no mode state (struct blk_switch / irq_poll_switch absent)"))
        let sleeps = try Self.run(["sleep-ratio", "--from", dump.path])
        #expect(sleeps.stdout.contains("Warning: hybrid sleep was not traced (blk_mq_poll_hybrid: unavailable, hybrid polling was removed in 6.4): no sleep-ratio rows"))
        #expect(!sleeps.stdout.contains("request start was not traced"))
    }

    @Test func dumpPrintsEveryEventInEachFormat() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("events.dpt")
        let events = ModeAnalysisTests.script()
        try Self.writeDump(events, to: dump, lost: [2])

        let text = try Self.run(["dump", dump.path])
        #expect(text.status == 0)
        let textLines = text.stdout.split(separator: "\n")
        #expect(textLines.count == events.count + 1)
        #expect(textLines.last == "Lost events: 2 (CPU 0: 2) — the recorder dropped these, so the counts above miss them")
        #expect(textLines.first.map(String.init) == events[0].describe())

        let csv = try Self.run(["dump", dump.path, "--format", "csv"])
        let csvLines = csv.stdout.split(separator: "\n").map(String.init)
        #expect(csvLines.first == TraceEvent.csvHeader)
        #expect(csvLines.count == events.count + 1)
        #expect(csv.stderr.contains("Lost events: 2"))

        let json = try Self.run(["dump", dump.path, "--format", "json"])
        let jsonLines = json.stdout.split(separator: "\n")
        #expect(jsonLines.count == events.count)
        let kinds = jsonLines.compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["kind"] as? String
        }
        #expect(kinds.count == events.count)
        #expect(kinds.filter { $0 == "mode" }.count == 5)
    }

    @Test func errorsAreOneLineWithExitStatusOne() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        let missing = directory.appendingPathComponent("missing.dpt").path
        for arguments in [["report", missing], ["sleep-ratio", "--from", missing], ["dump", missing]] {
            let run = try Self.run(arguments)
            #expect(run.status == 1)
            #expect(run.stdout.isEmpty)
            #expect(run.stderr.split(separator: "\n").count == 1)
            #expect(run.stderr.contains(missing) && run.stderr.contains("cannot open dump"))
        }

        let notADump = directory.appendingPathComponent("notes.txt")
        try "hello, this is not a dump\n".write(to: notADump, atomically: true, encoding: .utf8)
        let foreign = try Self.run(["buckets", "--from", notADump.path])
        #expect(foreign.status == 1)
        #expect(foreign.stderr.split(separator: "\n").count == 1)
        #expect(foreign.stderr.contains("not a dpas-trace dump"))
    }

    @Test func dumpWithoutTrailerSaysSo() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("killed.dpt")
        try Self.writeDump(SleepRatioAnalysisTests.seedEvents(), to: dump, lost: [0, 9], finish: false)

        let run = try Self.run(["report", dump.path])
        #expect(run.status == 0)
        #expect(run.stderr.split(separator: "\n").count == 1)
        #expect(run.stderr.contains("\(dump.path): no trailer: the recorder did not finish"))
        #expect(run.stdout.contains("(incomplete)"))
        #expect(run.stdout.contains("Warning: \(dump.path): no trailer"))
        #expect(run.stdout.contains("Lost events: 9 (CPU 1: 9)"))
        #expect(run.stdout.contains("5,899"), "all complete chunks are analysed")
    }

    @Test func truncatedDumpStillAnalysesEverythingBeforeTheDamage() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = directory.appendingPathComponent("cut.dpt")
        try Self.writeDump(SleepRatioAnalysisTests.seedEvents(), to: dump, eventsPerChunk: 1_000)
        // Cut in the middle of a chunk, far from the end: the trailer and later chunks are gone.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: dump.path)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: dump)
        try handle.truncate(atOffset: UInt64(size / 2 + 1_000))
        try handle.close()

        let run = try Self.run(["sleep-ratio", "--from", dump.path, "--json"])
        #expect(run.status == 0)
        #expect(run.stderr.split(separator: "\n").count == 1, "one line: the damage")
        #expect(run.stderr.contains("dpas-trace: warning: \(dump.path): damaged at byte"))
        let totals = try #require(run.json["totals"] as? [String: Any])
        let attempts = try #require(totals["attempts"] as? Int)
        #expect(attempts > 0 && attempts < 78_085)
        #expect(attempts % 1_000 == 0, "only complete chunks of 1,000 events are analysed")
        let warnings = try #require(run.json["warnings"] as? [String])
        #expect(warnings.contains { $0.contains("damaged at byte") })
        #expect(warnings.contains { $0.contains("no trailer") })

        let text = try Self.run(["report", dump.path])
        #expect(text.status == 0)
        #expect(text.stdout.contains("Warning: \(dump.path): damaged at byte"))
        #expect(text.stdout.contains("(incomplete)"))
    }
}
