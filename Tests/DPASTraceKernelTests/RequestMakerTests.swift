import CDPASEvents
import DPASTraceCore
@testable import DPASTraceKernel
import DPASTraceTestSupport
import Foundation
import Glibc
import Testing

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
    /// fio queues 256 O_DIRECT reads at a time through libaio, more than the disk has tags, and an
    /// I/O scheduler then issues most of them from a kworker (a virtio disk also returns some when
    /// its ring is full). Traced by fio's process ID, each of its reads must be counted once.
    @Test(arguments: TracepointFlavor.allCases)
    func requestsAreCreditedToTheThreadThatMadeThem(_ flavor: TracepointFlavor) throws {
        guard Privilege.isSufficient else { return print("SKIPPED: needs root or CAP_BPF + CAP_PERFMON to load BPF") }
        if let reason = flavor.unavailableReason { return print("SKIPPED: \(reason)") }
        let fio = "/usr/bin/fio"
        guard FileManager.default.isExecutableFile(atPath: fio) else {
            return print("SKIPPED: fio is not installed (scripts/install-deps installs it)")
        }
        let file = "\(try blockBackedDirectory())/dpas-trace-maker-\(getpid()).bin"
        let go = file + ".go"
        defer { unlink(file); unlink(go) }
        guard FileManager.default.createFile(atPath: file, contents: Data(repeating: 3, count: 32 << 20)) else {
            throw KernelError("cannot create \(file)")
        }
        let fd = open(file, O_RDONLY)
        fsync(fd)
        close(fd)

        // 28 KiB reads, each followed by a 4 KiB gap (read:4k): no two are adjacent, so the scheduler
        // merges none and each is a request of its own, of a size fio's own page faults (readahead of
        // its binary, when evicted) are unlikely to make.
        let reads = 1024, sectors: UInt32 = 56
        // --thread: the jobs are threads of fio's process, so its process ID covers them.
        let arguments = ["--name=maker", "--filename=\(file)", "--size=32M", "--io_size=\(reads * Int(sectors) * 512)",
                         "--direct=1", "--rw=read:4k", "--bs=\(sectors / 2)k", "--ioengine=libaio", "--iodepth=256",
                         "--iodepth_batch_submit=256", "--thread"]
        // Untraced first: the file's extents are cached, so the traced run makes its reads only.
        let warmUp = try Child(fio, arguments)
        #expect(warmUp.exitStatus(timeout: 60) == 0, "fio: \(warmUp.stderr)")
        // fio waits for the go file, so the probes are attached before its first read; exec keeps the ID.
        let traced = try Child("/bin/sh", ["-c", "while [ ! -e \"$0\" ]; do sleep 0.02; done; exec \"$@\"", go, fio] + arguments)
        defer { traced.signal(SIGKILL) } // a failed attach leaves it waiting for the go file
        let session = try TraceSession(options: flavor.options(.init(processID: UInt32(traced.pid))))
        defer { session.close() }
        let maker = try #require(session.plan.choice(.requestMaker))
        #expect(maker.status == .attached, "\(maker.attachError ?? maker.rejected.joined(separator: "; "))")
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        #expect(traced.exitStatus(timeout: 60) == 0, "fio: \(traced.stderr)")

        let snapshot = try session.snapshot()
        var buckets = BucketAccumulator()
        snapshot.addBuckets(to: &buckets)
        let fioReads = sizes(of: buckets)[SizeKey(ddir: 0, sectors: sectors)] ?? 0
        let counts = "\(snapshot.requestsStarted) requests started, \(snapshot.requestsIssuedElsewhere) issued by another "
            + "thread, \(snapshot.requestsReissued) issued again, \(snapshot.requestsMakerUnseen) with the make unseen"
        print("\(flavor): \(counts)")
        #expect(fioReads == UInt64(reads), "\(counts)")
        #expect(snapshot.requestsIssuedElsewhere <= snapshot.requestsStarted)
        #expect(snapshot.requestsMakerUnseen == 0, "fio made every read after the hooks attached: \(counts)")
        let inUse = scheduler(of: file)
        if let inUse, inUse != "none" {
            #expect(snapshot.requestsIssuedElsewhere > 0, "with \(inUse), a kworker issues queued reads")
        } else {
            print("NOTE: the disk has no I/O scheduler (\(inUse ?? "unreadable")): fio's reads were likely all issued "
                + "by fio's own thread, so crediting a request to its maker was not exercised here")
        }
    }
}
