import DPASTraceCore
@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Testing

/// A dpas-trace child process whose output is collected as it arrives.
private final class TracerProcess: @unchecked Sendable {
    let process: Child

    init(_ arguments: [String]) throws {
        process = try Child(try #require(SystemSnapshotCLITests.binary).path, arguments)
    }

    var stderr: String { process.stderr }
    var stdout: Data { Data(process.stdoutData) }

    /// Waits until stderr contains `text` (the tracer prints it once its probes are attached).
    func waitFor(_ text: String, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !process.isRunning { process.wait(timeout: 5); return stderr.contains(text) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// SIGINT, then wait (≤ 15 s) for a clean exit; returns the exit status, -1 if it had to be killed.
    func interrupt() -> Int32 {
        process.interrupt()
        return process.exitStatus(timeout: 15)
    }
}

/// Part of the serialized KernelSessionTests suite: every test filters by this process's ID,
/// so no two may drive I/O at the same time.
extension KernelSessionTests {
    /// `record` + `report` and the live `buckets` table describe the same I/O with the same numbers.
    @Test func recordReportAndLiveBucketsAgree() throws {
        guard Privilege.isSufficient else { return print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        guard SystemSnapshotCLITests.binary != nil else {
            return print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
        }
        let tid = String(try currentThreadID())  // this test's reads only: other suites share the process
        let dump = NSTemporaryDirectory() + "dpas-trace-cli-test-\(getpid()).dpt"
        defer { unlink(dump) }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(30)  // warm-up outside the trace

        let recorder = try TracerProcess(["record", "-o", dump, "--device", reader.device, "--tid", tid, "--verbose"])
        let live = try TracerProcess(["buckets", "--json", "--device", reader.device, "--tid", tid, "--verbose"])
        #expect(recorder.waitFor("Probe plan"), "record did not start: \(recorder.stderr)")
        #expect(live.waitFor("Probe plan"), "buckets did not start: \(live.stderr)")

        try reader.read(30)
        Thread.sleep(forTimeInterval: 0.5)

        #expect(live.interrupt() == 0, "\(live.stderr)")
        #expect(recorder.interrupt() == 0, "\(recorder.stderr)")
        #expect(recorder.stderr.contains("lost events: 0"))

        let liveReport = try JSONSerialization.jsonObject(with: live.stdout) as? [String: Any]
        let rows = try #require(liveReport?["rows"] as? [[String: Any]])
        // The 30 reads are all the requests on the reader's disk: one row, 4 KiB reads' bucket (6, or
        // -1 where the disk keeps no queue stats).
        #expect(rows.count == 1, "\(rows)")
        let liveRow = try #require(rows.first)
        #expect([-1, 6].contains(liveRow["bucket"] as? Int) && (liveRow["direction"] as? String) == "read", "\(liveRow)")
        #expect((liveRow["count"] as? Int) == 30)

        let analysis = try DumpAnalysis.run(path: dump)
        let fromDump = analysis.report.buckets
        #expect(fromDump.rows.first { $0.bucket == liveRow["bucket"] as? Int && $0.direction == "read" }?.count == 30)
        // Same rows, same counts: live aggregates and the recorded events agree.
        let liveCounts = rows.compactMap { row -> String? in
            guard let b = row["bucket"] as? Int, let d = row["direction"] as? String, let c = row["count"] as? Int else { return nil }
            return "\(b)/\(d)=\(c)"
        }.sorted()
        #expect(liveCounts == fromDump.rows.map { "\($0.bucket)/\($0.direction)=\($0.count)" }.sorted())
        // --verbose ends with the kernel side's own counters, which agree with the table.
        let requests = rows.reduce(0) { $0 + (($1["count"] as? Int) ?? 0) }
        #expect(live.stderr.contains("dpas-trace: kernel counters: ") && live.stderr.contains(" \(requests) requests started"),
                "\(live.stderr)")
    }

    /// `--avoid TYPE` makes every hook fall back past that attach type, and says so in the plan.
    @Test func avoidingAnAttachTypeFallsBackToTheNext() throws {
        guard SystemSnapshotCLITests.binary != nil else {
            return print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
        }
        let bogus = try SystemSnapshotCLITests.run(["plan", "--avoid", "uprobe"])
        #expect(bogus.status == 64 && bogus.stderr.contains("unknown attach type 'uprobe'"), "\(bogus)")
        guard Privilege.isSufficient else { return print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        let facts = KernelFacts.gather()
        guard facts.btfTracepointArgs["block_rq_issue"] != nil, facts.tracepoints.contains("block/block_rq_issue") else {
            return print("SKIPPED: block_rq_issue lacks a tp_btf prototype or a tracefs entry on \(facts.release)")
        }
        struct Plan: Decodable { var probe_plan: [ProbePlanEntry] }
        func requestStart(_ arguments: [String]) throws -> ProbePlanEntry {
            let result = try SystemSnapshotCLITests.run(["plan", "--json"] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            let plan = try JSONDecoder().decode(Plan.self, from: Data(result.stdout.utf8))
            return try #require(plan.probe_plan.first { $0.hook == Hook.requestStart.rawValue })
        }
        let best = try requestStart([])
        #expect(best.status == .attached && best.attachType != "tracepoint", "\(best)")
        // Ruling out everything better than the classic tracepoint leaves it.
        let classic = try requestStart(["--avoid", "fentry", "--avoid", "kprobe", "--avoid", "tp_btf"])
        #expect(classic.status == .attached && classic.attachType == "tracepoint", "\(classic)")
        #expect(classic.detail.contains("tp_btf avoided (--avoid tp_btf)"), "\(classic.detail)")
    }

    @Test func withoutPrivilegeTheErrorNamesTheCapability() throws {
        guard geteuid() == 0 else { return print("SKIPPED: needs root to drop to an unprivileged user for this check") }
        guard let binary = SystemSnapshotCLITests.binary,
              FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            return print("SKIPPED: needs the dpas-trace binary and setpriv (util-linux)")
        }
        let unprivileged = try Child.run("/usr/bin/setpriv",
                                         ["--reuid=65534", "--regid=65534", "--clear-groups", binary.path, "buckets", "--duration", "1"],
                                         timeout: 60)
        let text = unprivileged.stderr
        #expect(unprivileged.termination == .exited(1), "\(unprivileged.termination)")
        #expect(text.contains("CAP_BPF") && text.contains("CAP_PERFMON"))
        #expect(text.split(separator: "\n").count == 1, "one line: \(text)")
    }
}
