import CDPASEvents
import DPASTraceCore
@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Glibc
import Testing

/// fio making `fioReads` O_DIRECT reads of `fioSectors`, queued 256 at a time through libaio (more
/// than a disk has tags), traced by fio's process ID; returns what the kernel side counted. Each read
/// is followed by a 4 KiB gap (read:4k): no two are adjacent, so no scheduler merges them and each is
/// a request of its own.
private func tracedFio(on target: String, device: String?, flavor: TracepointFlavor) throws -> KernelSnapshot {
    let fio = "/usr/bin/fio"
    // --thread: the jobs are threads of fio's process, so its process ID covers them.
    let arguments = ["--name=maker", "--filename=\(target)", "--size=32M", "--io_size=\(fioReads * Int(fioSectors) * 512)",
                     "--direct=1", "--rw=read:4k", "--bs=\(fioSectors / 2)k", "--ioengine=libaio", "--iodepth=256",
                     "--iodepth_batch_submit=256", "--thread"]
    // Untraced first: a file's extents are cached, so the traced run makes its reads only.
    let warmUp = try Child(fio, arguments)
    #expect(warmUp.exitStatus(timeout: 60) == 0, "fio: \(warmUp.stderr)")
    // fio waits for the go file, so the probes are attached before its first read; exec keeps the ID.
    let go = NSTemporaryDirectory() + "dpas-trace-maker-\(getpid()).go"
    defer { unlink(go) }
    let traced = try Child("/bin/sh", ["-c", "while [ ! -e \"$0\" ]; do sleep 0.02; done; exec \"$@\"", go, fio] + arguments)
    defer { traced.signal(SIGKILL) } // a failed attach leaves it waiting for the go file
    let session = try TraceSession(options: flavor.options(.init(device: device, processID: UInt32(traced.pid))))
    defer { session.close() }
    let maker = try #require(session.plan.choice(.requestMaker))
    #expect(maker.status == .attached, "\(maker.attachError ?? maker.rejected.joined(separator: "; "))")
    #expect(FileManager.default.createFile(atPath: go, contents: nil))
    #expect(traced.exitStatus(timeout: 60) == 0, "fio: \(traced.stderr)")
    // fio has waited for its reads, not for the readahead its page faults started: on a disk busy
    // with other tests' I/O that may still be in flight.
    var snapshot = try session.snapshot()
    let deadline = Date().addingTimeInterval(5)
    while snapshot.requestsStarted > snapshot.requestsCompleted + completionsUnmatchable(snapshot), Date() < deadline {
        Thread.sleep(forTimeInterval: 0.05)
        snapshot = try session.snapshot()
    }
    return snapshot
}

/// Starts whose completion cannot be counted, each counted itself: a completion comes in an
/// interrupt, whose probe run the kernel skips when it lands in another BPF program (a classic
/// tracepoint's or a kprobe's, of the tests running beside this one); and a start the map of
/// started requests could not take (from 6.15 a hash map's update fails when its bucket lock
/// times out: a vCPU the host stalls while holding it) has nothing for its completion to find.
private func completionsUnmatchable(_ snapshot: KernelSnapshot) -> UInt64 {
    (snapshot.skippedRuns[Hook.requestDone.rawValue] ?? 0) + snapshot.mapFullTotal + snapshot.mapBusyTotal
}

private let fioReads = 1024, fioSectors: UInt32 = 56

private func fioUnavailableReason(_ flavor: TracepointFlavor) -> String? {
    if !Privilege.isSufficient { return "needs root or CAP_BPF + CAP_PERFMON to load BPF" }
    if let reason = flavor.unavailableReason { return reason }
    if !FileManager.default.isExecutableFile(atPath: "/usr/bin/fio") { return "fio is not installed (scripts/install-deps installs it)" }
    return nil
}

/// Requests by (direction, sectors), as the aggregates counted them.
private func requestSizes(_ snapshot: KernelSnapshot) -> [SizeKey: UInt64] {
    var buckets = BucketAccumulator()
    snapshot.addBuckets(to: &buckets)
    return sizes(of: buckets)
}

private func describe(_ snapshot: KernelSnapshot, _ bySize: [SizeKey: UInt64]) -> String {
    let others = bySize.filter { $0.key != SizeKey(ddir: 0, sectors: fioSectors) }
        .sorted { $0.value > $1.value }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
    return "\(snapshot.requestsStarted) requests started, \(snapshot.requestsIssuedElsewhere) issued by another thread, "
        + "\(snapshot.requestsReissued) issued again, \(snapshot.requestsMakerUnseen) with the make unseen, "
        + "\(snapshot.requestsCompleted) completed, \(snapshot.mapFullTotal) map updates failed for room and "
        + "\(snapshot.mapBusyTotal) on a lock; other sizes: \(others.isEmpty ? "none" : others); "
        + (snapshot.skippedRunsWarning ?? "no probe run skipped")
}

/// The I/O scheduler a file's disk runs ("none", "mq-deadline", ...), from sysfs; nil if unreadable.
private func scheduler(of path: String) -> String? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    // glibc's major()/minor() are macros Swift does not import.
    let dev = UInt64(info.st_dev)
    let major = (dev >> 8) & 0xfff | (dev >> 32) & ~0xfff, minor = dev & 0xff | (dev >> 12) & ~0xff
    let device = "/sys/dev/block/\(major):\(minor)"
    let queue = FileManager.default.fileExists(atPath: "\(device)/partition") ? "\(device)/../queue" : "\(device)/queue"
    guard let line = try? String(contentsOfFile: "\(queue)/scheduler", encoding: .utf8) else { return nil }
    // "none [mq-deadline] kyber bfq": the bracketed one is in use; a lone name has no alternatives.
    if let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") {
        return String(line[line.index(after: open)..<close])
    }
    return line.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Part of the serialized KernelSessionTests suite: it traces a process and drives disk I/O.
extension KernelSessionTests {
    /// A request is credited to the thread that made it, even when another thread hands it to the
    /// driver, and counted once, even when the driver sends it back busy and it is issued again:
    /// with 256 reads queued, more than the machine's disk has tags, an I/O scheduler issues most of
    /// them from a kworker, and a virtio disk whose ring is full returns some. Traced by fio's
    /// process ID, each of its reads is counted (fio's page faults may add reads of their own: this
    /// VM's page cache lets even a running binary's pages go), and every start has its completion
    /// (but for those counted as unmatchable: `completionsUnmatchable`): a re-issue counted as a
    /// start would have none.
    @Test(arguments: TracepointFlavor.allCases)
    func requestsAreCreditedToTheThreadThatMadeThem(_ flavor: TracepointFlavor) throws {
        if let reason = fioUnavailableReason(flavor) { return print("SKIPPED: \(reason)") }
        let file = "\(try blockBackedDirectory())/dpas-trace-maker-\(getpid()).bin"
        defer { unlink(file) }
        guard FileManager.default.createFile(atPath: file, contents: Data(repeating: 3, count: 32 << 20)) else {
            throw KernelError("cannot create \(file)")
        }
        let fd = open(file, O_RDONLY)
        fsync(fd)
        close(fd)
        let snapshot = try tracedFio(on: file, device: nil, flavor: flavor)
        let bySize = requestSizes(snapshot)
        let counts = describe(snapshot, bySize)
        print("\(flavor): \(counts)")
        #expect(bySize[SizeKey(ddir: 0, sectors: fioSectors), default: 0] >= UInt64(fioReads), "\(counts)")
        #expect(snapshot.requestsMakerUnseen == 0, "fio made every read after the hooks attached: \(counts)")
        if let inUse = scheduler(of: file), inUse != "none" {
            #expect(snapshot.requestsIssuedElsewhere > 0, "with \(inUse), a kworker issues queued reads: \(counts)")
        } else {
            print("NOTE: the disk has no I/O scheduler: fio's reads were likely all issued by fio's own thread, so "
                + "crediting a request to its maker was not exercised here")
        }
        let unmatchable = completionsUnmatchable(snapshot)
        #expect(snapshot.requestsCompleted <= snapshot.requestsStarted, "\(counts)")
        #expect(snapshot.requestsStarted - min(snapshot.requestsCompleted, snapshot.requestsStarted) <= unmatchable,
                "\(counts)")
        if snapshot.requestsReissued == 0 {
            print("NOTE: the disk sent no request back busy this time: counting a re-issue once was not exercised")
        } else if unmatchable >= snapshot.requestsReissued {
            print("NOTE: \(unmatchable) completions could not be counted (skipped runs, failed map updates), as many as "
                + "the \(snapshot.requestsReissued) re-issues: counting a re-issue once could not be told apart this time")
        }
    }

    /// Nothing but the maker's requests is credited to it: on a loop device of the test's own,
    /// filtered by (fio's page faults go to the machine's disk), fio's reads are all there is, each
    /// counted once. mq-deadline holds what the device's 128 tags cannot take, and issues some from
    /// the completing context (how many depends on timing: none, in one full-suite run).
    @Test(arguments: TracepointFlavor.allCases)
    func exactlyTheMakersRequestsAreCounted(_ flavor: TracepointFlavor) throws {
        if let reason = fioUnavailableReason(flavor) ?? LoopDevice.unavailableReason { return print("SKIPPED: \(reason)") }
        let disk = try LoopDevice(bytes: 33 << 20)
        defer { disk.detach() }
        let schedulerFile = "/sys/block/\(disk.name)/queue/scheduler"
        if (try? "mq-deadline".write(toFile: schedulerFile, atomically: false, encoding: .utf8)) == nil {
            print("NOTE: cannot select mq-deadline for \(disk.name): fio's thread issues its own requests")
        }
        let snapshot = try tracedFio(on: disk.path, device: disk.name, flavor: flavor)
        let bySize = requestSizes(snapshot)
        let counts = describe(snapshot, bySize)
        print("\(flavor): \(counts)")
        #expect(bySize == [SizeKey(ddir: 0, sectors: fioSectors): UInt64(fioReads)], "\(counts)")
        #expect(snapshot.requestsStarted == UInt64(fioReads), "\(counts)")
        #expect(snapshot.requestsMakerUnseen == 0, "\(counts)")
        #expect(snapshot.requestsCompleted == snapshot.requestsStarted, "\(counts)")
    }
}
