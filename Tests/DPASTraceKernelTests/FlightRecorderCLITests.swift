import CDPASEvents
import DPASTraceCore
@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Testing

/// A `dpas-trace` child whose stdout and stderr are collected as they arrive.
final class FlightChild: @unchecked Sendable {
    let process: Child

    init(_ arguments: [String]) throws {
        process = try Child(try #require(SystemSnapshotCLITests.binary).path, arguments)
    }

    var stdout: String { process.stdout }
    var stderr: String { process.stderr }

    /// Waits (≤ `timeout` s) until `text` appears on stdout or stderr; false if it never does.
    func waitFor(_ text: String, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stdout.contains(text) || stderr.contains(text) { return true }
            if !process.isRunning { process.wait(timeout: 5); return stdout.contains(text) || stderr.contains(text) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Lines of stdout that announce a written dump.
    var dumpLines: [String] { stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("dpas-trace: wrote ") } }

    /// Waits (≤ 20 s) for the exit; SIGKILL and -1 if it does not come.
    func waitForExit() -> Int32 { process.exitStatus(timeout: 20) }

    /// VmRSS of the child in KiB, from /proc/PID/status.
    var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
}

/// 4 KiB O_DIRECT reads by this process on a 4 MiB loop device of its own (`LoopDevice`): traced
/// with `--device`, they are all the requests there are.
struct DirectReader {
    let disk: LoopDevice
    static let size = 4 << 20
    /// The device to trace, for `--device` / `TraceSession.Options.device`.
    var device: String { disk.name }

    init() throws { disk = try LoopDevice(bytes: Self.size) }

    /// `count` reads of 4 KiB, cycling through the file.
    func read(_ count: Int) throws {
        let fd = open(disk.path, O_RDONLY | oDirect)
        guard fd >= 0 else { throw KernelError("O_DIRECT open of \(disk.path) failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        for i in 0..<count {
            let offset = off_t((i * 4096) % Self.size)
            guard pread(fd, buffer, 4096, offset) == 4096 else { throw KernelError("O_DIRECT read of \(disk.path) failed") }
        }
    }

    func remove() { disk.detach() }
}

/// The reason recorded in a dump's header (the flight recorder says why and when it wrote it).
private func dumpEvents(_ path: String) throws -> (reason: String?, events: [TraceEvent], complete: Bool) {
    let reader = try DumpReader(path: path)
    var events: [TraceEvent] = []
    let result = try reader.forEachEvent { events.append($0) }
    return (reader.header.reason, events, result.isComplete)
}

/// Part of the serialized KernelSessionTests suite: these filter by this process's ID and drive
/// its I/O, so no two may run at once.
extension KernelSessionTests {
    private func flightPreconditions() -> Bool {
        guard Privilege.isSufficient else { print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF"); return false }
        guard SystemSnapshotCLITests.binary != nil else {
            print("SKIPPED: no dpas-trace binary beside the test runner; build the product first (swift build)")
            return false
        }
        return true
    }

    /// SIGUSR1 writes the last ring-full of events and recording goes on; the exit writes the rest
    /// to the next numbered dump. `--ring 64K` keeps at most 512 events.
    @Test func flightRecorderWritesTheRingOnSIGUSR1AndAtExit() throws {
        guard flightPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50) // warm-up outside the trace
        let dump = NSTemporaryDirectory() + "dpas-trace-flight-\(getpid()).dpt"
        let second = NSTemporaryDirectory() + "dpas-trace-flight-\(getpid()).1.dpt"
        defer { unlink(dump); unlink(second) }

        let recorder = try FlightChild(["record", "--ring", "64K", "--device", reader.device,
                                        "--tid", String(try currentThreadID()), "-o", dump])
        #expect(recorder.waitFor("flight recorder on"), "record did not start: \(recorder.stderr)")
        try reader.read(1000) // ≥ 2000 events: four times what the ring holds
        Thread.sleep(forTimeInterval: 0.5)
        kill(recorder.process.pid, SIGUSR1)
        #expect(recorder.waitFor("SIGUSR1 at"), "no dump line after SIGUSR1: \(recorder.stdout) \(recorder.stderr)")
        #expect(recorder.process.isRunning, "SIGUSR1 must not end the recording")

        let first = try dumpEvents(dump)
        #expect(first.complete)
        #expect(first.reason?.hasPrefix("SIGUSR1 at 20") == true, "reason: \(first.reason ?? "none")")
        #expect(first.events.count == 512, "ring of 64K = 512 events, got \(first.events.count)")
        // The newest events: the dump ends with the completion of the last read (offset 999 × 4 KiB).
        let done = first.events.filter { $0.kind == UInt32(DPT_EV_RQ_DONE.rawValue) }
        #expect(done.count >= 250)
        #expect(zip(first.events, first.events.dropFirst()).allSatisfy { $0.ts_ns <= $1.ts_ns }, "oldest first")

        try reader.read(10)
        Thread.sleep(forTimeInterval: 0.5)
        recorder.process.interrupt()
        #expect(recorder.waitForExit() == 0, "\(recorder.stderr)")
        #expect(recorder.dumpLines.count == 2, "\(recorder.stdout)")
        let rest = try dumpEvents(second)
        #expect(rest.complete)
        #expect(rest.reason?.hasPrefix("end of recording (stopped by signal) at 20") == true, "reason: \(rest.reason ?? "none")")
        // Only what came after the first dump: the 10 reads, started and completed.
        let starts = rest.events.filter { $0.kind == UInt32(DPT_EV_RQ_START.rawValue) }
        #expect(starts.count == 10, "\(rest.events.count) events")
        #expect(starts.allSatisfy { $0.nr_sectors == 8 && $0.ddir == 0 })
    }

    /// A trigger that real 4 KiB reads satisfy here (the kernel's bucket for them, as the live
    /// buckets table reports it) fires, writes the dump saying why, and ends the recording.
    @Test func flightRecorderTriggerFiresOnRealReads() throws {
        guard flightPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50)
        // Which bucket does this kernel give a 4 KiB read? 6 with QUEUE_FLAG_STATS, else -1.
        let probe = try TraceSession(options: .init(device: reader.device, processID: UInt32(getpid()),
                                                    threadID: try currentThreadID(), streamEvents: true))
        try reader.read(5)
        var buckets: [Int8] = []
        for _ in 0..<10 where buckets.count < 5 {
            probe.poll(timeoutMs: 100) { if $0.pointee.kind == UInt32(DPT_EV_RQ_START.rawValue) { buckets.append($0.pointee.bucket) } }
        }
        probe.close()
        let bucket = try #require(buckets.first, "no request seen from 5 O_DIRECT reads")
        print("4 KiB reads on this kernel get bucket \(bucket)")

        let dump = NSTemporaryDirectory() + "dpas-trace-flight-trigger-\(getpid()).dpt"
        defer { unlink(dump) }
        let recorder = try FlightChild(["record", "--ring", "64K", "--trigger", "bucket=\(bucket)",
                                        "--device", reader.device, "--tid", String(try currentThreadID()), "-o", dump])
        #expect(recorder.waitFor("flight recorder on"), "record did not start: \(recorder.stderr)")
        try reader.read(20)
        #expect(recorder.waitForExit() == 0, "a firing trigger ends the recording with status 0: \(recorder.stderr)")
        #expect(recorder.dumpLines.count == 1, "\(recorder.stdout)")
        let written = try dumpEvents(dump)
        #expect(written.complete)
        let reason = written.reason ?? ""
        #expect(reason.hasPrefix("trigger bucket=\(bucket): a request on CPU "), "reason: \(reason)")
        #expect(reason.contains("got bucket \(bucket) at ") && reason.contains("(written at 20"), "reason: \(reason)")
        #expect(written.events.contains { $0.kind == UInt32(DPT_EV_RQ_START.rawValue) && $0.bucket == bucket })
    }

    /// Bounded memory: with `--ring 1M` (8192 events) the recorder's resident set stays flat while
    /// many times the ring's worth of events flow through it — over a million with fio (2 jobs ×
    /// 262,144 O_DIRECT 4 KiB reads, each a start and a done event), else 60,000 reads of our own.
    @Test func flightRecorderMemoryStaysFlat() throws {
        guard flightPreconditions() else { return }
        let reader = try DirectReader()
        defer { reader.remove() }
        try reader.read(50)
        let dump = NSTemporaryDirectory() + "dpas-trace-flight-rss-\(getpid()).dpt"
        defer { unlink(dump) }
        let fio = "/usr/bin/fio"
        let useFio = FileManager.default.isExecutableFile(atPath: fio)
        if !useFio { print("fio not installed (scripts/install-deps --lab): driving 60,000 reads from this process instead of a million") }
        // fio's jobs are processes of their own: trace every process then (other I/O only adds events).
        let recorder = try FlightChild(["record", "--ring", "1M", "-o", dump]
            + (useFio ? [] : ["--device", reader.device, "--tid", String(try currentThreadID())]))
        #expect(recorder.waitFor("flight recorder on"), "record did not start: \(recorder.stderr)")

        // Fill the ring (and every lazily touched page) twice over, then measure.
        try reader.read(8192)
        Thread.sleep(forTimeInterval: 0.3)
        let settled = try #require(recorder.residentKiB)
        var samples: [Int] = []
        var driven = 0
        if useFio {
            let fioFile = FileManager.default.currentDirectoryPath + "/dpas-trace-flight-fio-\(getpid()).bin"
            defer { unlink(fioFile) }
            let jobs = try Child(fio, ["--name=flight-rss", "--filename=\(fioFile)", "--size=64M", "--io_size=1G", "--direct=1",
                                       "--rw=randread", "--bs=4k", "--ioengine=libaio", "--iodepth=32", "--numjobs=2"])
            while jobs.isRunning {
                Thread.sleep(forTimeInterval: 0.5)
                if let rss = recorder.residentKiB { samples.append(rss) }
            }
            let fioEnd = jobs.wait(timeout: 5)
            #expect(fioEnd == .exited(0), "fio failed (\(fioEnd)): \(jobs.stderr.suffix(1000))")
            driven = 2 * 2 * (1 << 30) / 4096
        } else {
            for _ in 0..<24 {
                try reader.read(2500)
                if let rss = recorder.residentKiB { samples.append(rss) }
            }
            driven = 2 * 24 * 2500
        }
        Thread.sleep(forTimeInterval: 0.3)
        recorder.process.interrupt()
        #expect(recorder.waitForExit() == 0, "\(recorder.stderr)")

        let reader2 = try DumpReader(path: dump)
        var kept = 0
        let result = try reader2.forEachEvent { _ in kept += 1 }
        #expect(kept == 8192, "the exit dump holds one full ring")
        // The dump's note counts the events the ring let go before it was written.
        let note = result.notes.first { $0.contains("older events were overwritten") } ?? ""
        let overwritten = note.components(separatedBy: "; ").last?.split(separator: " ").first.flatMap { Int($0) }
        let flowed = (overwritten ?? 0) + kept
        let peak = samples.max() ?? settled
        print("flight recorder --ring 1M: \(flowed) events flowed through (\(result.lostTotal) lost); VmRSS \(settled) KiB "
            + "once the ring was full, peak \(peak) KiB over \(samples.count) samples while the events flowed")
        #expect(flowed + Int(result.lostTotal) >= driven, "the recorder saw fewer events than the workload made: \(note)")
        #expect(peak - settled < 2048, "VmRSS grew by \(peak - settled) KiB while events flowed")
    }
}
