import DPASTraceSynthetic
import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// `dpas-trace top`: the pure frame layout, and the real binary driven in tmux on a replayed dump.
struct TopScreenTests {
    private func syntheticModel(events: UInt64) -> TopModel {
        var configuration = SyntheticWorkload.Configuration()
        configuration.events = events
        var model = TopModel()
        for event in SyntheticWorkload(configuration) { model.consume(event) }
        return model
    }

    @Test func frameShowsEveryHistogramAndFitsTheTerminal() {
        let model = syntheticModel(events: 20_000)
        let status = TopScreen.Status(source: "test", elapsedSeconds: 3, intervalSeconds: 1)
        for (width, height) in [(80, 24), (140, 60), (200, 100)] {
            let lines = TopScreen.render(model, status: status, width: width, height: height)
            #expect(lines.count <= height, "\(width)x\(height)")
            #expect(lines.allSatisfy { $0.count <= width }, "\(width)x\(height)")
            #expect(lines[1].hasPrefix("lost events: 0   events:"))
        }
        var skipping = model
        skipping.skippedProbeRuns = 1_234
        let status80 = TopScreen.render(skipping, status: status, width: 80, height: 24)[1]
        #expect(status80.hasPrefix("lost events: 0   skipped probe runs: 1,234   events:") && status80.count <= 80, "\(status80)")
        let full = TopScreen.render(model, status: status, width: 160, height: nil).joined(separator: "\n")
        for section in ["REQUESTED SLEEP, SLEPT", "REQUESTED SLEEP, NO SLEEP", "ACTUAL SLEEP", "OVERSLEEP",
                        "I/O COMPLETION LATENCY", "POLL-STATS BUCKETS", "PER CPU"] {
            #expect(full.contains(section), "missing \(section)")
        }
        // Every 4 KiB read is bucket 6 in the synthetic stream.
        #expect(full.contains("     6 : "))
        #expect(!full.contains("    -1 : "))
    }

    @Test func log2RowsAddUpToTheHistogram() {
        var histogram = LatencyHistogram()
        for value: UInt64 in [0, 1, 5, 100, 127, 128, 3_960, 4_000, 1_000_000] { histogram.add(value, times: 3) }
        let rows = Log2Histogram.fold(histogram)
        #expect(rows.reduce(0, +) == histogram.count)
        #expect(rows[6] == 6)   // 100 and 127 in [64, 128)
        #expect(rows[7] == 3)   // 128
        #expect(rows[11] == 6)  // 3960 and 4000 in [2048, 4096)
        let lines = Log2Histogram.render(histogram, barWidth: 20)
        #expect(lines.first?.contains("count") == true)
        #expect(lines.contains { $0.contains("2048 -> 4095") && $0.contains("|********************|") })
        #expect(Log2Histogram.render(LatencyHistogram()) == ["(no data)"])
    }

    @Test func log2RowsAndBucketDistributionForIntervalBlocks() {
        var histogram = LatencyHistogram()
        for value: UInt64 in [0, 100, 127, 128, 4_000] { histogram.add(value, times: 2) }
        let rows = Log2Histogram.rows(histogram)
        #expect(rows.first == Log2Histogram.Row(low: 0, high: 1, count: 2))
        #expect(rows.last == Log2Histogram.Row(low: 2048, high: 4095, count: 2))
        #expect(rows.reduce(0) { $0 + $1.count } == histogram.count)
        #expect(rows.contains(Log2Histogram.Row(low: 64, high: 127, count: 4)))
        #expect(Log2Histogram.rows(LatencyHistogram()).isEmpty)

        var counts = [UInt64](repeating: 0, count: 17)
        counts[0] = 10   // bucket -1
        counts[7] = 30   // bucket 6
        let lines = Log2Histogram.renderBuckets(counts, barWidth: 30)
        #expect(lines == [
            "bucket : count  distribution",
            "    -1 :    10  |**********                    |",
            "     6 :    30  |******************************|",
            "bucket -1: 25.0% of requests (stats_sectors was 0)",
        ])
        #expect(Log2Histogram.renderBuckets([UInt64](repeating: 0, count: 17)) == ["(no requests)"])
    }

    @Test func clearKeepsModesAndLosses() {
        var model = syntheticModel(events: 5_000)
        model.lostEvents = 7
        model.skippedProbeRuns = 2
        let modes = model.cpus.mapValues(\.mode)
        model.clear()
        #expect(model.events == 0 && model.sleepAttempts == 0 && model.bucketCounts.allSatisfy { $0 == 0 })
        #expect(model.lostEvents == 7 && model.skippedProbeRuns == 2)
        #expect(model.cpus.mapValues(\.mode) == modes)
    }

    // MARK: - The real binary in tmux

    private static let tmux = "/usr/bin/tmux"

    @discardableResult
    private func run(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try Child.run(tool, arguments, timeout: 60)
        return result.stdout + result.stderr
    }

    /// tmux commands other than capture-pane: output discarded, because `new-session` may fork the
    /// tmux server, which would hold a pipe open forever.
    private func tmux(_ arguments: [String]) throws {
        try Child.runDiscardingOutput(Self.tmux, arguments)
    }

    private func writeSyntheticDump(events: UInt64) throws -> String {
        let path = FileManager.default.temporaryDirectory.appending(path: "dpt-top-\(getpid())-\(events).dpt").path
        let writer = try DumpWriter(path: path, header: DumpHeader(kernelRelease: "synthetic", hostname: "test",
                                                                   createdRealtimeNs: 0, bootTimeOffsetNs: 0, command: ["test"]))
        var configuration = SyntheticWorkload.Configuration()
        configuration.events = events
        for event in SyntheticWorkload(configuration) { try writer.append(event) }
        try writer.recordLost(perCPU: [0, 3])
        try writer.finish()
        return path
    }

    private func waitForScreen(_ session: String, containing needle: String, seconds: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        var screen = ""
        while Date() < deadline {
            screen = try run(Self.tmux, ["capture-pane", "-p", "-t", session])
            if screen.contains(needle) { return screen }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("tmux screen never showed '\(needle)'; last screen:\n\(screen)")
        return screen
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux (scripts/install-deps installs it)"))
    func topInTmuxShowsHistogramsAndQuitsOnQ() throws {
        let binary = try CLIOfflineTests.binary().path
        let dump = try writeSyntheticDump(events: 50_000)
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let session = "dpt-top-\(getpid())"
        let done = FileManager.default.temporaryDirectory.appending(path: "\(session).exit").path
        try tmux(["new-session", "-d", "-s", session, "-x", "150", "-y", "60",
                            "\(binary) top --from \(dump) --speed 0 --interval 0.2; echo $? > \(done); sleep 60"])
        defer { try? tmux(["kill-session", "-t", session]) }

        let screen = try waitForScreen(session, containing: "ended")
        #expect(screen.contains("REQUESTED SLEEP, SLEPT"))
        #expect(screen.contains("POLL-STATS BUCKETS"))
        #expect(screen.contains("lost events: 3"))
        #expect(screen.contains("|***"))

        try tmux(["send-keys", "-t", session, "p"])
        _ = try waitForScreen(session, containing: "PAUSED")
        try tmux(["send-keys", "-t", session, "c"])
        _ = try waitForScreen(session, containing: "events: 0 ")
        try tmux(["send-keys", "-t", session, "q"])
        // The shell creates the file before writing the status into it: wait for the content.
        let deadline = Date().addingTimeInterval(10)
        var status = ""
        while status.isEmpty && Date() < deadline {
            status = ((try? String(contentsOfFile: done, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if status.isEmpty { Thread.sleep(forTimeInterval: 0.1) }
        }
        try? FileManager.default.removeItem(atPath: done)
        #expect(status == "0", "top exited with \(status)")
        // The final summary is printed on the normal screen after leaving the full screen.
        let after = try run(Self.tmux, ["capture-pane", "-p", "-t", session])
        #expect(after.contains("dpas-trace top — replay of"))
    }

    /// A replay that has ended holds the screen until `q` — or until SIGTERM, which must end it
    /// the same way (status 0, summary printed) rather than being ignored.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux (scripts/install-deps installs it)"))
    func endedReplayStopsOnSIGTERM() throws {
        let binary = try CLIOfflineTests.binary().path
        let dump = try writeSyntheticDump(events: 30_000)
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let session = "dpt-top-term-\(getpid())"
        let directory = FileManager.default.temporaryDirectory
        let pidFile = directory.appending(path: "\(session).pid").path
        let done = directory.appending(path: "\(session).exit").path
        defer { unlink(pidFile); unlink(done) }
        // The inner shell writes its PID, then becomes top.
        try tmux(["new-session", "-d", "-s", session, "-x", "150", "-y", "60",
                  "sh -c 'echo $$ > \(pidFile); exec \(binary) top --from \(dump) --speed 0 --interval 0.2'; echo $? > \(done); sleep 60"])
        defer { try? tmux(["kill-session", "-t", session]) }
        _ = try waitForScreen(session, containing: "ended")
        let pidText = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let pid = try #require(Int32(pidText), "no PID in \(pidFile): '\(pidText)'")
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        var status = ""
        while status.isEmpty && Date() < deadline {
            status = ((try? String(contentsOfFile: done, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if status.isEmpty { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(status == "0", "top after SIGTERM: '\(status)' (empty: still running)")
        #expect(try run(Self.tmux, ["capture-pane", "-p", "-t", session]).contains("dpas-trace top — replay of"))
    }

    @Test func topWithoutTerminalPrintsPlainFrames() throws {
        let binary = try CLIOfflineTests.binary().path
        let dump = try writeSyntheticDump(events: 20_000)
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let output = try run(binary, ["top", "--from", dump, "--speed", "0", "--interval", "0.1"])
        #expect(!output.contains("\u{1B}["), "no escape sequences when stdout is not a terminal")
        #expect(output.components(separatedBy: "dpas-trace top — replay of").count - 1 >= 2, "periodic frames plus the summary")
        #expect(output.contains("ended"))
    }
}
