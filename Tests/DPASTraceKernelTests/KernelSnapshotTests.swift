import CLibBPF
import Testing
@testable import DPASTraceKernel

/// Interval arithmetic and warnings of the in-kernel aggregates, without a kernel.
@Suite struct KernelSnapshotTests {
    static func snapshot(lost: UInt64, skipped: [String: UInt64]) -> KernelSnapshot {
        var counters = [UInt64](repeating: 0, count: Int(DPT_CNT_COUNT.rawValue))
        counters[Int(DPT_CNT_RINGBUF_LOST.rawValue)] = lost
        var snapshot = KernelSnapshot(counters: [counters], buckets: [:], sleepExact: [:], sleepLog2: [:])
        snapshot.skippedRuns = skipped
        return snapshot
    }

    @Test func intervalsCountOnlyTheirOwnSkippedRuns() {
        let earlier = Self.snapshot(lost: 2, skipped: ["hybrid sleep: timer fired": 3])
        let later = Self.snapshot(lost: 5, skipped: ["hybrid sleep: timer fired": 3, "hybrid sleep: context switch": 2])
        let interval = later.since(earlier)
        #expect(interval.lostEvents.total == 3)
        #expect(interval.skippedRuns == ["hybrid sleep: context switch": 2])
        #expect(interval.skippedRunsTotal == 2)
        #expect(later.since(later).skippedRunsWarning == nil)
    }

    @Test func skippedRunsAreNamedPerHookInTheWarning() throws {
        let snapshot = Self.snapshot(lost: 0, skipped: ["hybrid sleep: timer fired": 1_200, "hybrid sleep: context switch": 2])
        let warning = try #require(snapshot.skippedRunsWarning)
        #expect(warning.hasPrefix("the kernel skipped 1,202 probe run(s) (2 on hybrid sleep: context switch, 1,200 on hybrid sleep: timer fired)"),
                "\(warning)")
        #expect(warning.contains("another BPF program was running on that CPU"))
        #expect(Self.snapshot(lost: 0, skipped: [:]).skippedRunsWarning == nil)
    }

    @Test func armsWithAnUnreadableCallerAreWarnedAbout() throws {
        var snapshot = Self.snapshot(lost: 0, skipped: ["hybrid sleep: sleeper cancelled": 1])
        #expect(snapshot.probeWarnings.count == 1, "\(snapshot.probeWarnings)")
        snapshot.counters[0][Int(DPT_CNT_ARM_FRAME_UNKNOWN.rawValue)] = 7
        let warnings = snapshot.probeWarnings
        #expect(warnings.count == 2 && warnings[0].hasPrefix("the kernel skipped 1 probe run"), "\(warnings)")
        #expect(warnings.last?.hasPrefix("7 sleeper arm(s) were not counted: their caller could not be read") == true, "\(warnings)")
        let line = snapshot.kernelCountersLine(pollFunctionHooked: false)
        #expect(line.contains("7 arms with their caller unreadable") && line.contains("poll calls not counted"), "\(line)")
        #expect(snapshot.kernelCountersLine(pollFunctionHooked: true).contains("0 poll calls"))
    }

    /// A full map and a map lock that timed out are told apart, and both reach every command's
    /// warnings (record writes them into its dumps as notes).
    @Test func failedMapUpdatesAreWarnedAboutByCause() {
        var snapshot = Self.snapshot(lost: 0, skipped: [:])
        #expect(snapshot.probeWarnings.isEmpty)
        snapshot.counters[0][Int(DPT_CNT_MAP_FULL.rawValue)] = 1_500
        snapshot.counters[0][Int(DPT_CNT_MAP_BUSY.rawValue)] = 3
        #expect(snapshot.probeWarnings == [
            "1,500 samples missed because a BPF map was full",
            "3 samples missed because a BPF map's lock timed out (a CPU stalled while holding it; kernels 6.15+)",
        ])
        #expect(snapshot.since(snapshot).probeWarnings.isEmpty)
    }
}
