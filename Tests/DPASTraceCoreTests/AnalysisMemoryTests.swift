import Foundation
import Testing
@testable import DPASTraceCore

/// The analyses stream: memory must not grow with the number of events.
@Suite struct AnalysisMemoryTests {
    /// Resident set size in bytes, from /proc/self/statm.
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Event `i` of a varied stream: 40 distinct requested sleeps (log2 rows), thousands of request
    /// sizes (bounded size lists), a mode transition every 1,000 events (bounded timelines), 4 CPUs.
    static func event(_ i: Int) -> TraceEvent {
        let ts = UInt64(i) * 100
        let cpu = UInt32(i % 4)
        switch i % 5 {
        case 0, 1:
            let requested = UInt64(100 + (i / 5) % 40 * 97)
            let slept = i % 3 == 0
            return .hybridSleep(ts: ts, cpu: cpu, pid: 1, tid: 1, requestedNs: requested, armedNs: ts, expiresNs: ts + requested,
                                firedNs: ts + requested, sleptNs: slept ? requested + UInt64(i % 1_000) : 0,
                                outcome: slept ? .slept : .noSleep)
        case 2, 3:
            let sectors = UInt32(1 + (i / 5) % 5_000)
            return .rqStart(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: UInt64(i), dev: 0, nrSectors: sectors,
                            statsSectors: i % 7 == 0 ? sectors : 0, ddir: UInt8(i % 2), polled: i % 3 != 0,
                            queueStats: i % 7 == 0, mode: [DPASMode.pas, .cp, .ol][(i / 1_000) % 3])
        default:
            if i % 1_000 == 4 {
                let modes: [DPASMode] = [.pas, .cp, .ol]
                return .modeChange(ts: ts, cpu: cpu, from: modes[(i / 1_000 + 2) % 3], to: modes[(i / 1_000) % 3],
                                   avgQDx10: 10, tf: 1, windowIOs: 100)
            }
            return .rqDone(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: UInt64(i), dev: 0, nrSectors: 8, statsSectors: 0, ddir: 0,
                           polled: true, queueStats: false, latencyNs: 20_000)
        }
    }

    @Test func memoryStaysFlatOverTenMillionEvents() throws {
        guard let start = Self.residentBytes() else {
            print("skipped: /proc/self/statm is unavailable on this system, so resident memory cannot be measured")
            return
        }
        var analyses = TraceAnalyses(sleepPerCPU: true)
        for i in 0..<1_000_000 { analyses.add(Self.event(i)) }
        let afterOneMillion = try #require(Self.residentBytes())
        for i in 1_000_000..<10_000_000 { analyses.add(Self.event(i)) }
        let afterTenMillion = try #require(Self.residentBytes())

        // 9 M more events must not cost memory: 16 MiB of slack covers allocator noise.
        // (Keeping the events would take 1.1 GB; keeping one counter per event ≥ 72 MB.)
        #expect(afterTenMillion - afterOneMillion < 16 << 20,
                "resident memory grew from \(afterOneMillion >> 20) MiB to \(afterTenMillion >> 20) MiB (started at \(start >> 20) MiB)")

        let report = analyses.report()
        #expect(report.sleepRatio.totals.attempts == 4_000_000)
        #expect(report.sleepRatio.rowKind == .log2)
        #expect(report.buckets.totals.requests == 4_000_000)
        #expect(report.buckets.rows.allSatisfy { $0.sizes.count <= 4 })
        #expect(report.modes.totals.transitions == 10_000)
        #expect(report.modes.cpus.allSatisfy { $0.firstTransitions.count <= 32 && $0.lastTransitions.count <= 32 })
    }
}
