import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// The HTML report of a known dump: what it draws (counted in the markup and, in a real headless
/// Chromium, by the page's own script) and that it is self-contained.
struct HTMLReportTests {
    /// 4 requested durations (the seed's d_init rows), requests in buckets 6 and -1, and DPAS modes:
    /// CPU 0 goes PAS → CP → PAS, CPU 1 stays in PAS.
    private func writeKnownDump() throws -> String {
        let path = FileManager.default.temporaryDirectory.appending(path: "dpt-html-\(getpid())-\(UUID().uuidString).dpt").path
        let header = DumpHeader(kernelRelease: "5.18.0-rc6-dpas-fast26", hostname: "lab", createdRealtimeNs: 1_764_000_000_000_000_000,
                                bootTimeOffsetNs: 0, command: ["dpas-trace", "record"], device: "nvme0n1",
                                probePlan: [ProbePlanEntry(hook: "request start", target: "blk_mq_start_request", attachType: "kprobe",
                                                           status: .attached, detail: "kprobe on the out-of-line symbol", cost: nil)],
                                settings: ["kernel/release": "5.18.0-rc6-dpas-fast26", "block/nvme0n1/queue/io_poll_delay": "0",
                                           "block/nvme0n1/queue/wbt_lat_usec": "error: Invalid argument",
                                           "module/nvme/parameters/poll_queues": "2"])
        let writer = try DumpWriter(path: path, header: header)
        let dev = TraceEvent.makeDev(major: 259, minor: 0)
        let start: UInt64 = 1_000_000_000, end: UInt64 = 4_000_000_000
        for cpu: UInt32 in [0, 1] {
            try writer.append(.rqStart(ts: start, cpu: cpu, pid: 9, tid: 9, rq: 1, dev: dev, nrSectors: 8, statsSectors: 8, ddir: 0,
                                       polled: true, queueStats: true, mode: .pas))
        }
        try writer.append(.rqStart(ts: start + 10, cpu: 1, pid: 9, tid: 9, rq: 2, dev: dev, nrSectors: 8, statsSectors: 0, ddir: 0,
                                   polled: true, queueStats: false, mode: .pas))
        for (requested, slept, noSleep) in [(UInt64(100), 0, 5), (1_000, 0, 6), (2_000, 1, 39), (3_960, 20, 1)] {
            for i in 0..<(slept + noSleep) {
                let ts = start + 1_000_000 + UInt64(i) * 1_000
                try writer.append(.hybridSleep(ts: ts + requested, cpu: 0, pid: 9, tid: 9, requestedNs: requested, armedNs: ts,
                                               expiresNs: ts + requested, firedNs: ts + requested, sleptNs: i < slept ? requested + 500 : 0,
                                               outcome: i < slept ? .slept : .noSleep))
            }
        }
        try writer.append(.modeChange(ts: 2_000_000_000, cpu: 0, from: .pas, to: .cp, avgQDx10: 10, tf: 0, windowIOs: 100))
        try writer.append(.modeChange(ts: 3_000_000_000, cpu: 0, from: .cp, to: .pas, avgQDx10: 10, tf: 0, windowIOs: 1000))
        for cpu: UInt32 in [0, 1] {
            try writer.append(.rqStart(ts: end, cpu: cpu, pid: 9, tid: 9, rq: 3, dev: dev, nrSectors: 8, statsSectors: 8, ddir: 0,
                                       polled: true, queueStats: true, mode: .pas))
        }
        try writer.recordLost(perCPU: [0, 0])
        try writer.finish()
        return path
    }

    private func occurrences(_ needle: String, _ text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test func drawsTheExpectedCharts() throws {
        let dump = try writeKnownDump()
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let (html, warnings) = try HTMLReport.render(dumpAt: dump)
        #expect(warnings.isEmpty)
        #expect(occurrences("class=\"sleep-bar\"", html) == 4)
        #expect(occurrences("class=\"bucket-bar\"", html) == 2)
        #expect(occurrences("class=\"mode-track\"", html) == 2)
        #expect(occurrences("class=\"mode-segment\" data-mode=\"CP\"", html) == 1)
        #expect(occurrences("class=\"mode-segment\" data-mode=\"PAS\"", html) == 3)
        #expect(html.contains("Never sleeps") && html.contains("Barely sleeps"))
        #expect(html.contains("blk_mq_start_request"))
        #expect(html.contains("Invalid argument"), "the doctor's WBT finding from the recorded settings")
        // Self-contained: nothing is fetched.
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("src="))
    }

    @Test func modeTimelineFoldsIntoSegments() {
        var timeline = ModeTimeline(startNs: 0, endNs: 1_000, bins: 10)
        var event = TraceEvent.rqStart(ts: 0, cpu: 0, pid: 1, tid: 1, rq: 1, dev: 0, nrSectors: 8, statsSectors: 8, ddir: 0,
                                       polled: true, queueStats: true, mode: .pas)
        timeline.consume(event)
        timeline.consume(.modeChange(ts: 420, cpu: 0, from: .pas, to: .ol, avgQDx10: 30, tf: 2, windowIOs: 100))
        timeline.consume(.modeChange(ts: 700, cpu: 0, from: .ol, to: .int, avgQDx10: 40, tf: 0, windowIOs: 100))
        event.cpu = 1
        event.ts_ns = 500
        timeline.consume(event)
        timeline.finish()
        #expect(timeline.segments(cpu: 0) == [
            .init(firstBin: 0, lastBin: 3, mode: .pas), .init(firstBin: 4, lastBin: 6, mode: .ol), .init(firstBin: 7, lastBin: 9, mode: .int),
        ])
        #expect(timeline.segments(cpu: 1) == [.init(firstBin: 5, lastBin: 9, mode: .pas)])
    }

    private static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: chromium != nil, "needs Debian's chromium (scripts/install-deps installs it)"))
    func rendersInHeadlessChromiumWithoutScriptErrors() throws {
        let dump = try writeKnownDump()
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let page = FileManager.default.temporaryDirectory.appending(path: "dpt-html-\(getpid())-\(UUID().uuidString).html")
        try HTMLReport.render(dumpAt: dump).html.write(to: page, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: page) }
        let profile = FileManager.default.temporaryDirectory.appending(path: "dpt-chromium-\(getpid())")
        defer { try? FileManager.default.removeItem(at: profile) }

        let browser = try Child.run(Self.chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)",
                                                     "--enable-logging=stderr", "--v=0", "--dump-dom", page.absoluteString],
                                    timeout: 180)
        let dom = browser.stdout, log = browser.stderr
        #expect(browser.status == 0, "chromium failed (\(browser.termination)): \(log.suffix(2000))")
        // The page's script ran (it sets data-ready) and counted what the browser laid out.
        #expect(dom.contains("data-ready=\"1\""), "the inline script did not run; console:\n\(log.suffix(2000))")
        #expect(dom.contains("sleep-bars=4;bucket-bars=2;mode-segments=4;mode-tracks=2"), "self-check: \(dom.suffix(400))")
        #expect(!log.contains("Uncaught"), "script errors: \(log)")
    }
}
