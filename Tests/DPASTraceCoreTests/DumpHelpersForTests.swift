import Foundation
import Testing
@testable import DPASTraceCore

/// Temporary files for dump tests; each test gets its own directory, removed at the end.
final class DumpScratch {
    let directory: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/dpt-dump-test-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw DumpError(path: "mkdtemp", offset: nil, reason: "cannot create a temporary directory", hint: "check TMPDIR")
        }
        directory = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { directory + "/" + name }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Writes `bytes` to a new file in the scratch directory and returns its path.
    func file(_ name: String, _ bytes: some Sequence<UInt8>) throws -> String {
        let target = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }
}

/// A header with every field set, including optional ones, to check round-trips.
func dumpTestHeader(reason: String? = "trigger mode=INT") -> DumpHeader {
    DumpHeader(
        kernelRelease: "5.10.0-32-amd64", hostname: "lab-guest", createdRealtimeNs: 1_764_120_000_123_456_789,
        bootTimeOffsetNs: -1_700_000_000_000, command: ["dpas-trace", "record", "-o", "run.dpt", "--duration", "10"],
        device: "nvme0n1",
        probePlan: [
            ProbePlanEntry(hook: "request start", target: "block:block_rq_issue", attachType: "tp_btf", status: .attached,
                           detail: "kprobes not configured (CONFIG_KPROBES off)"),
            ProbePlanEntry(hook: "hybrid sleep: sleeper armed", target: "hrtimer_sleeper_start_expires", attachType: "none",
                           status: .unavailable, detail: "kprobes not configured", cost: "no hybrid-sleep attempts"),
        ],
        settings: ["block/nvme0n1/queue/io_poll_delay": "0", "block/nvme0n1/queue/wbt_lat_usec": "error: Invalid argument",
                   "module/nvme/parameters/poll_queues": "2", "kernel/release": "5.10.0-32-amd64", "kernel/btf": "yes"],
        reason: reason)
}

/// A deterministic mixed stream: every kind, several CPUs, increasing timestamps.
func dumpTestEvent(_ index: Int) -> TraceEvent {
    let ts = 1_000_000 + UInt64(index) * 1_000
    let cpu = UInt32(index % 3)
    switch index % 5 {
    case 0:
        return .rqStart(ts: ts, cpu: cpu, pid: 100, tid: 100 + cpu, rq: UInt64(index), dev: TraceEvent.makeDev(major: 259, minor: 0),
                        nrSectors: 8, statsSectors: index % 10 == 0 ? 0 : 8, ddir: 0, polled: true, queueStats: index % 10 != 0)
    case 1:
        return .hybridSleep(ts: ts, cpu: cpu, pid: 100, tid: 100 + cpu, requestedNs: 100, armedNs: ts - 500, expiresNs: ts - 400,
                            firedNs: ts - 450, sleptNs: index % 2 == 0 ? 0 : 300, outcome: index % 2 == 0 ? .noSleep : .slept,
                            flags: [.timerFired])
    case 2:
        return .rqDone(ts: ts, cpu: cpu, pid: 100, tid: 100 + cpu, rq: UInt64(index - 2), dev: TraceEvent.makeDev(major: 259, minor: 0),
                       nrSectors: 8, statsSectors: 8, ddir: 0, polled: true, queueStats: true, latencyNs: UInt64(index % 997))
    case 3:
        return .modeChange(ts: ts, cpu: cpu, from: .pas, to: .ol, avgQDx10: UInt32(index % 50), tf: 1, windowIOs: 100)
    default:
        return .pasState(ts: ts, cpu: cpu, bucket: 6, durNs: UInt64(index), last: (.overslept, .underslept))
    }
}

/// Events of a whole dump, collected (only for small test dumps).
func dumpTestReadAll(_ reader: DumpReader) throws -> ([TraceEvent], DumpReadResult) {
    var events: [TraceEvent] = []
    let result = try reader.forEachEvent { events.append($0) }
    // Every read in the tests also goes through the other path (read(2) when the reader maps the
    // file), which must see exactly the same.
    if reader.mapsFile {
        let (unmappedEvents, unmapped) = try dumpTestReadAll(DumpReader(path: reader.path, mapsFile: false))
        #expect(unmappedEvents == events, "read(2) and mapped reads of \(reader.path) differ")
        #expect(unmapped.damage == result.damage && unmapped.chunks == result.chunks && unmapped.bytes == result.bytes
                && unmapped.lostPerCPU == result.lostPerCPU && unmapped.notes == result.notes
                && unmapped.skippedChunks == result.skippedChunks && (unmapped.trailer == nil) == (result.trailer == nil),
                "read(2) and mapped reads of \(reader.path) end differently: \(unmapped.damage as Any) vs \(result.damage as Any)")
    }
    return (events, result)
}
