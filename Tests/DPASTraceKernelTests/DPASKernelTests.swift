import DPASTraceCore
@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Testing

/// The DPAS side on the kernels at hand. No DPAS kernel is available here: on this stock kernel
/// the plan and `modes` must say "not a DPAS kernel", the object must load without the DPAS
/// programs, and the DPAS code must pass this kernel's verifier both dead (stock BTF) and live
/// (relocated against a DPAS 5.18 type fixture).
@Suite(.serialized) struct DPASKernelTests {
    private func skip(_ reason: String) { print("SKIPPED: \(reason)") }

    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func planSaysNotADPASKernelAndWhy() {
        let facts = KernelFacts.gather(mountTracefs: false)
        guard !facts.isDPASKernel else { return skip("this is a DPAS kernel: the stock-kernel expectations do not apply") }
        let reason = DPASState.unavailableReason(facts)
        #expect(reason?.hasPrefix("not a DPAS kernel: ") == true)
        #expect(reason?.contains("irq_poll_switch absent from /proc/kallsyms") == true)
        if facts.hasBTF { #expect(reason?.contains("struct blk_switch absent from BTF") == true) }
        let plan = ProbePlanner(facts: facts).plan()
        let choice = plan.choice(.dpasMode)
        #expect(choice?.chosen == nil)
        #expect(choice?.unavailableReason == reason)
        let entry = plan.entries.first { $0.hook == Hook.dpasMode.rawValue }
        #expect(entry?.detail.hasPrefix("not a DPAS kernel") == true)
        #expect(entry?.cost?.hasPrefix("nothing lost") == true)
        // No bucket note on a stock kernel: it is about the PAS path.
        #expect(plan.choice(.requestStart)?.notes.isEmpty == true)
        #expect(DPASState.addresses(facts) == nil)
    }

    @Test func sessionLoadsWithoutTheDPASProgramsAndReadsNoDPASState() throws {
        guard Privilege.isSufficient else { return skip("needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        let facts = KernelFacts.gather(mountTracefs: false)
        guard !facts.isDPASKernel else { return skip("this is a DPAS kernel") }
        var options = TraceSession.Options()
        options.pasStateEvents = true
        let session = try TraceSession(options: options)
        defer { session.close() }
        #expect(session.plan.choice(.dpasMode)?.status != .attached)
        #expect(session.plan.choice(.requestStart)?.status == .attached)
        // Block I/O happens on this machine all the time; none of it may yield DPAS state here.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("dpas-\(getpid()).tmp")
        try Data(repeating: 7, count: 1 << 16).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let handle = try FileHandle(forWritingTo: file)
        try handle.synchronize()
        try handle.close()
        var events: [TraceEvent] = []
        session.poll(timeoutMs: 200) { events.append($0.pointee) }
        let snapshot = try session.snapshot()
        if snapshot.requestsStarted == 0 { print("note: no block request started while tracing (tmpfs temp dir?)") }
        #expect(!snapshot.dpas.observed)
        #expect(snapshot.dpas.ios.allSatisfy { $0.allSatisfy { $0 == 0 } })
        #expect(!events.contains { $0.kind == EventKind.mode.rawValue || $0.kind == EventKind.pasState.rawValue })
    }

    @Test func dpasCodeIsDeadAndVerifiesOnStockBTF() {
        guard Privilege.isSufficient else { return skip("needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        #expect(TraceSession.dpasVerifierCheck(btfPath: nil) == nil)
    }

    /// Relocated against DPAS 5.18 types, the DPAS reads are live code: they must pass this kernel's
    /// verifier. The negative control (blk_switch without `mode`) proves the path was really live:
    /// the unresolvable relocation is then reachable and the load is refused.
    @Test func dpasCodeVerifiesWhenRelocatedAgainstDPASTypes() throws {
        guard Privilege.isSufficient else { return skip("needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        guard let clang = Self.clang() else { return skip("no clang to compile the DPAS type fixture") }
        let source = Self.repository.appendingPathComponent("tests/fixtures/dpas-5.18-types.c").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dpas-btf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("dpas.o").path, broken = dir.appendingPathComponent("broken.o").path
        try Self.compile(clang, source, good, defines: [])
        try Self.compile(clang, source, broken, defines: ["-DDPT_FIXTURE_WITHOUT_MODE"])

        let result = TraceSession.dpasVerifierCheck(btfPath: good)
        #expect(result == nil, "DPAS programs refused with DPAS types: \(result ?? "")")
        let refused = TraceSession.dpasVerifierCheck(btfPath: broken)
        #expect(refused?.contains("blk_switch.mode") == true, "negative control: \(refused ?? "loaded")")
    }

    @Test func modesLiveSaysNotADPASKernel() throws {
        let facts = KernelFacts.gather(mountTracefs: false)
        guard !facts.isDPASKernel else { return skip("this is a DPAS kernel") }
        guard SystemSnapshotCLITests.binary != nil else { return skip("dpas-trace binary not built next to the tests") }
        let text = try SystemSnapshotCLITests.run(["modes", "--duration", "1"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("not a DPAS kernel: "))
        #expect(text.stdout.contains("not attached: \(Hook.dpasMode.rawValue)"))
        let json = try SystemSnapshotCLITests.run(["modes", "--duration", "1", "--json"])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["dpas_seen"] as? Bool == false)
        #expect((object?["message"] as? String)?.hasPrefix("not a DPAS kernel: ") == true)
    }

    @Test func sleepRatioPASSaysNotADPASKernel() throws {
        guard Privilege.isSufficient else { return skip("needs root or CAP_BPF + CAP_PERFMON to trace") }
        let facts = KernelFacts.gather(mountTracefs: false)
        guard !facts.isDPASKernel else { return skip("this is a DPAS kernel") }
        guard SystemSnapshotCLITests.binary != nil else { return skip("dpas-trace binary not built next to the tests") }
        let text = try SystemSnapshotCLITests.run(["sleep-ratio", "--pas", "--duration", "1"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("PAS sleep state"))
        #expect(text.stdout.contains("not a DPAS kernel: "))
    }

    /// clang as bpf/build.sh finds it: $BPF_CLANG, next to swift, or on PATH.
    static func clang() -> String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["BPF_CLANG"] { candidates.append(env) }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let swift = URL(fileURLWithPath: "\(dir)/swift").resolvingSymlinksInPath()
            candidates.append(swift.deletingLastPathComponent().appendingPathComponent("clang").path)
            candidates.append("\(dir)/clang")
        }
        candidates.append("/opt/swift/usr/bin/clang")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func compile(_ clang: String, _ source: String, _ output: String, defines: [String]) throws {
        let compiled = try Child.run(clang, ["-g", "-O0", "-target", "bpf", "-c", source, "-o", output] + defines)
        #expect(compiled.status == 0, "clang failed on \(source) (\(compiled.termination)): \(compiled.stderr)")
    }
}
