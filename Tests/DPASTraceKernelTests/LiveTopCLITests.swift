@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Testing

/// Runs a tool; returns its stdout and stderr together.
@discardableResult
private func runTool(_ tool: String, _ arguments: [String]) throws -> String {
    let result = try Child.run(tool, arguments, timeout: 60)
    return result.stdout + result.stderr
}

/// tmux commands other than capture-pane: output discarded (`new-session` forks the server, which
/// would hold a pipe open forever).
private func tmux(_ arguments: [String]) throws {
    try Child.runDiscardingOutput("/usr/bin/tmux", arguments)
}

private func screen(_ session: String) -> String {
    (try? runTool("/usr/bin/tmux", ["capture-pane", "-p", "-t", session])) ?? ""
}

/// Polls the pane until `accept` holds; returns the last screen either way.
private func waitForScreen(_ session: String, seconds: Double = 30, _ accept: (String) -> Bool) -> String {
    let deadline = Date().addingTimeInterval(seconds)
    var text = screen(session)
    while !accept(text) && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.2)
        text = screen(session)
    }
    return text
}

/// Total of the counts in a section's log2 histogram rows ("low -> high : count |***|"), read from
/// the left column of the two-column frame, starting under the line naming `title`.
private func histogramTotal(_ screen: String, leftSection title: String) -> UInt64 {
    let lines = screen.components(separatedBy: "\n")
    guard let start = lines.firstIndex(where: { $0.contains(title) }) else { return 0 }
    var total: UInt64 = 0
    for line in lines[(start + 1)...] {
        let left = line.components(separatedBy: " │ ")[0]
        if left.trimmingCharacters(in: .whitespaces).isEmpty { break }
        guard left.contains(" -> "), let count = left.components(separatedBy: " : ").dropFirst().first?
            .split(separator: " ").first.flatMap({ UInt64($0.replacingOccurrences(of: ",", with: "")) }) else { continue }
        total += count
    }
    return total
}

/// The process whose command line is exactly `arguments` (the live top inside the tmux pane).
private func processID(runningExactly arguments: [String]) -> Int32? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        // read(2), not FileManager.contents(atPath:): Foundation leaks its buffer on files that read
        // empty (a kernel thread's cmdline), which AddressSanitizer runs report.
        guard let pid = Int32(entry),
              case .success(let data) = SystemSnapshot.readBytes("/proc/\(entry)/cmdline", limit: 64 * 1024) else { continue }
        let parts = data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        if parts == arguments { return pid }
    }
    return nil
}

/// BPF link IDs held by a process: `link_id:` in the fdinfo of its BPF link descriptors.
private func bpfLinkIDs(of pid: Int32) -> [UInt32] {
    let directory = "/proc/\(pid)/fdinfo"
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return fds.compactMap { fd in
        guard let info = try? String(contentsOfFile: "\(directory)/\(fd)", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("link_id:") }) else { return nil }
        return UInt32(line.dropFirst("link_id:".count).trimmingCharacters(in: .whitespaces))
    }
}

extension KernelSessionTests {
    /// `top` tracing live in tmux: the reads this test makes appear in the bucket and I/O latency
    /// histograms, `q` quits with status 0, and every BPF link top held is gone afterwards.
    @Test func liveTopInTmuxShowsRealReadsAndDetachesOnQ() throws {
        guard Privilege.isSufficient else { return print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            return print("SKIPPED: needs tmux (scripts/install-deps installs it)")
        }
        guard let binary = SystemSnapshotCLITests.binary?.path else {
            return print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
        }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50) // warm-up outside the trace

        let arguments = [binary, "top", "--device", reader.device, "--tid", String(try currentThreadID()), "--interval", "0.3"]
        let session = "dpt-live-top-\(getpid())"
        let done = NSTemporaryDirectory() + "\(session).exit"
        unlink(done)
        try tmux(["new-session", "-d", "-s", session, "-x", "160", "-y", "80",
                  arguments.joined(separator: " ") + "; echo $? > \(done); sleep 60"])
        defer { try? tmux(["kill-session", "-t", session]) }

        let started = waitForScreen(session) { $0.contains("POLL-STATS BUCKETS") }
        try #require(started.contains("POLL-STATS BUCKETS"), "live top never drew a frame:\n\(started)")
        let topPID = try #require(processID(runningExactly: arguments), "live top process not found")
        let links = bpfLinkIDs(of: topPID)
        #expect(!links.isEmpty, "live top holds no BPF links")

        let reads = 200
        try reader.read(reads)
        // The reads are in the 4 KiB bucket row (6, or -1 without queue stats), and they are all
        // the requests on the reader's disk; their completions fill the I/O latency histogram.
        let bucketRow = try Regex(#"(?m)│\s+(-1|6) :\s+([0-9,]+)\s+\|\*+"#)
        func bucketCount(_ screen: String) -> Int {
            guard let match = screen.firstMatch(of: bucketRow), let count = match.output[2].substring else { return 0 }
            return Int(count.replacingOccurrences(of: ",", with: "")) ?? 0
        }
        let shown = waitForScreen(session) {
            bucketCount($0) >= reads && histogramTotal($0, leftSection: "I/O COMPLETION LATENCY") > 0
        }
        let inBucket = bucketCount(shown)
        #expect(inBucket == reads, "bucket row should hold the \(reads) reads; screen:\n\(shown)")
        // Give the completions a few frames to arrive before counting them.
        let settled = waitForScreen(session, seconds: 5) { histogramTotal($0, leftSection: "I/O COMPLETION LATENCY") >= UInt64(inBucket) }
        let completions = histogramTotal(settled, leftSection: "I/O COMPLETION LATENCY")
        // Each read completes once: the header's event count is starts + completions.
        let events = settled.firstMatch(of: try Regex(#"lost events: [0-9,]+\s+events: ([0-9,]+)"#))
            .flatMap { $0.output[1].substring }.flatMap { UInt64($0.replacingOccurrences(of: ",", with: "")) } ?? 0
        print("live top: \(inBucket) requests in the bucket histogram for \(reads) reads, \(completions) completions in the I/O latency histogram, \(events) events")
        #expect(completions == UInt64(reads) && events == 2 * UInt64(reads), "every read started and completed once; screen:\n\(settled)")
        #expect(shown.contains("lost events: 0"), "screen:\n\(shown)")

        try tmux(["send-keys", "-t", session, "q"])
        let deadline = Date().addingTimeInterval(15)
        var status = ""
        while status.isEmpty && Date() < deadline {
            status = ((try? String(contentsOfFile: done, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if status.isEmpty { Thread.sleep(forTimeInterval: 0.1) }
        }
        unlink(done)
        #expect(status == "0", "top exited with '\(status)'")
        for id in links { #expect(!TraceSession.linkExists(id: id), "BPF link \(id) still exists after q") }
        // The final summary is printed on the normal screen after leaving the full screen.
        let after = screen(session)
        #expect(after.contains("dpas-trace top — live"), "screen after q:\n\(after)")
    }

    /// Without a terminal, live `top` prints plain frames; SIGTERM ends it like `q`: exit 0, the
    /// final summary printed, every BPF link it held gone.
    @Test func liveTopWithoutTerminalStopsCleanlyOnSIGTERM() throws {
        guard Privilege.isSufficient else { return print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        guard SystemSnapshotCLITests.binary != nil else {
            return print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
        }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50)
        let top = try FlightChild(["top", "--device", reader.device, "--tid", String(try currentThreadID()),
                                   "--interval", "0.3", "--probe-costs"])
        #expect(top.waitFor("dpas-trace top — live"), "no frame: \(top.stderr)")
        let links = bpfLinkIDs(of: top.process.pid)
        #expect(!links.isEmpty, "live top holds no BPF links")
        try reader.read(30)
        let bucketRow = try Regex(#"(?m)│\s+(-1|6) :\s+30\s+\|\*+"#)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && !top.stdout.contains(bucketRow) { Thread.sleep(forTimeInterval: 0.1) }
        kill(top.process.pid, SIGTERM)
        #expect(top.waitForExit() == 0, "\(top.stderr)")
        let output = top.stdout
        #expect(!output.contains("\u{1B}["), "no escape sequences when stdout is not a terminal")
        // The last block is the final summary: the 30 reads are in its bucket histogram.
        let summary = try #require(output.components(separatedBy: "dpas-trace top — live").last)
        #expect(summary.contains("ended") && summary.contains(bucketRow), "summary:\n\(summary)")
        for id in links { #expect(!TraceSession.linkExists(id: id), "BPF link \(id) still exists after SIGTERM") }
        // top shares the live commands' tracing options: --probe-costs prints the per-program table.
        #expect(top.stderr.contains("Probe costs over") && top.stderr.contains(Hook.requestStart.rawValue), "\(top.stderr)")
    }
}
