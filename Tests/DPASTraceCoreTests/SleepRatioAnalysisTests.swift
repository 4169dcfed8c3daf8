import Foundation
import Testing
@testable import DPASTraceCore

/// The sleep-ratio analysis on hand-built streams with known answers.
@Suite struct SleepRatioAnalysisTests {
    /// The seed's d_init table: (requested ns, no sleep, slept).
    static let seedTable: [(requested: UInt64, noSleep: Int, slept: Int)] = [
        (100, 5_899, 0), (1_000, 5_998, 0), (2_000, 10_785, 15), (3_960, 115, 55_273),
    ]

    /// Events for the seed's table: slept attempts sleep requested + (i % 7) × 500 ns, a few wake early.
    static func seedEvents() -> [TraceEvent] {
        var events: [TraceEvent] = []
        var ts: UInt64 = 1_000_000
        for row in seedTable {
            for i in 0..<(row.noSleep + row.slept) {
                ts += 10_000
                let slept = i % (row.noSleep + row.slept) < row.slept
                let actual: UInt64 = slept ? (i % 50 == 0 ? row.requested / 2 : row.requested + UInt64(i % 7) * 500) : 0
                events.append(.hybridSleep(ts: ts, cpu: UInt32(i % 2), pid: 42, tid: 42, requestedNs: row.requested,
                                           armedNs: ts - 5_000, expiresNs: ts - 5_000 + row.requested,
                                           firedNs: ts - 5_000 + row.requested, sleptNs: actual,
                                           outcome: slept ? .slept : .noSleep))
            }
        }
        return events
    }

    @Test func seedDInitTableHasTheSeedsShape() {
        var accumulator = SleepRatioAccumulator()
        for event in Self.seedEvents() { accumulator.add(event) }
        let report = accumulator.report()

        #expect(report.rowKind == .exact)
        #expect(report.rows.map(\.requestedNs) == [100, 1_000, 2_000, 3_960])
        #expect(report.rows.map(\.noSleep) == [5_899, 5_998, 10_785, 115])
        #expect(report.rows.map(\.slept) == [0, 0, 15, 55_273])
        #expect(report.rows.map { Format.percent($0.sleepRatio) } == ["0%", "0%", "0.1%", "99.8%"])
        #expect(report.rows.map(\.verdictCode) == [.never, .never, .barely, .normal])
        #expect(report.rows.map(\.verdictCode.label) == ["Never sleeps", "Never sleeps", "Barely sleeps", "Normal sleep"])
        #expect(report.rows[0].verdict.hasPrefix("never sleeps: the timer expires while it is being armed"))
        #expect(report.rows[0].verdict.contains("fix 3"))
        #expect(report.totals.attempts == 5_899 + 5_998 + 10_800 + 55_388)
        #expect(report.totals.slept == 15 + 55_273)
        #expect(report.verdict.contains("100, 1,000 ns never sleep"))
        #expect(report.verdict.contains("2,000 ns barely sleeps"))
    }

    /// The seed's third hunt, with evidence: attempts seen firing while their timer was being armed.
    @Test func firedWhileArmingIsCountedPerRowAndNamedInTheVerdict() throws {
        var accumulator = SleepRatioAccumulator(perCPU: true)
        func sleep(_ requested: UInt64, slept: Bool, flags: EventFlags, cpu: UInt32 = 0) -> TraceEvent {
            .hybridSleep(ts: 1_000, cpu: cpu, pid: 1, tid: 1, requestedNs: requested, armedNs: 10, expiresNs: 10 + requested,
                         firedNs: 0, sleptNs: slept ? requested : 0, outcome: slept ? .slept : .noSleep, flags: flags)
        }
        for cpu: UInt32 in [0, 1] {
            accumulator.add(sleep(100, slept: false, flags: [.timerFired, .firedDuringArm], cpu: cpu))
        }
        accumulator.add(sleep(100, slept: false, flags: [.timerFired, .ioScheduleCalled]))  // fired before the switch
        accumulator.add(sleep(4_000, slept: true, flags: [.timerFired, .ioScheduleCalled]))
        // A slept attempt flagged as fired while arming (damaged input) is not a no-sleep cause.
        accumulator.add(sleep(4_000, slept: true, flags: [.timerFired, .firedDuringArm]))
        let report = accumulator.report()
        #expect(report.rows.map(\.firedDuringArm) == [2, 0])
        #expect(report.totals.firedDuringArm == 2)
        #expect(report.perCPU?.filter { $0.requestedNs == 100 }.map(\.firedDuringArm).sorted() == [1, 1])
        #expect(report.verdict.hasSuffix("2 of the 3 no-sleep attempts had their timer fire while it was being armed"))
        let json = try #require(String(data: try JSONEncoder().encode(report.rows[0]), encoding: .utf8))
        #expect(json.contains("\"fired_during_arm\":2"))
        // Where the arm is not hooked nothing is claimed.
        var unhooked = SleepRatioAccumulator()
        unhooked.add(sleep(100, slept: false, flags: [.timerFired]))
        #expect(!unhooked.report().verdict.contains("had their timer fire"))
    }

    @Test func oversleepAndWokeEarlyAreMeasuredOnSleptAttempts() {
        var accumulator = SleepRatioAccumulator()
        // 3 slept attempts of 1,000 ns: actual 1,500 / 2,000 / 800 (the last woke early).
        for actual: UInt64 in [1_500, 2_000, 800] {
            accumulator.add(cpu: 0, requestedNs: 1_000, slept: true, actualNs: actual)
        }
        accumulator.add(cpu: 0, requestedNs: 1_000, slept: false, actualNs: 0, count: 2)
        let row = accumulator.report().rows[0]
        #expect(row.attempts == 5)
        #expect(row.slept == 3)
        #expect(row.noSleep == 2)
        #expect(row.wokeEarly == 1)
        #expect(row.actualSleep.count == 3)
        #expect(row.actualSleep.maxNs == 2_000)
        let expectedMean: Double = (1_500 + 2_000 + 800) / 3
        #expect(row.actualSleep.meanNs == expectedMean)
        #expect(row.oversleep.maxNs == 1_000)
        let expectedOversleep: Double = (500 + 1_000 + 0) / 3
        #expect(row.oversleep.meanNs == expectedOversleep)
        #expect(row.sleepRatio == 0.6)
        #expect(row.verdictCode == .sometimes)
    }

    @Test func sixteenDistinctValuesStayExactSeventeenFallBackToLog2() {
        var sixteen = SleepRatioAccumulator()
        for value in 1...16 { sixteen.add(cpu: 0, requestedNs: UInt64(value) * 1_000, slept: true, actualNs: 20_000) }
        #expect(sixteen.report().rowKind == .exact)
        #expect(sixteen.report().rows.count == 16)

        var seventeen = sixteen
        seventeen.add(cpu: 0, requestedNs: 17_000, slept: false, actualNs: 0)
        let report = seventeen.report()
        #expect(seventeen.exactOverflow)
        #expect(report.rowKind == .log2)
        // 1,000…17,000 ns fall into [512,1023], [1024,2047], [2048,4095], [4096,8191], [8192,16383], [16384,32767].
        #expect(report.rows.map(\.requestedMinNs) == [512, 1_024, 2_048, 4_096, 8_192, 16_384])
        #expect(report.rows.map(\.requestedMaxNs) == [1_023, 2_047, 4_095, 8_191, 16_383, 32_767])
        #expect(report.rows.allSatisfy { $0.requestedNs == nil })
        #expect(report.rows.map(\.attempts) == [1, 1, 2, 4, 8, 1])
        #expect(report.totals.attempts == 17 && report.totals.noSleep == 1)
    }

    @Test func perCPUSplitSumsToTheTotals() {
        var accumulator = SleepRatioAccumulator(perCPU: true)
        for event in Self.seedEvents() { accumulator.add(event) }
        let report = accumulator.report()
        let perCPU = try! #require(report.perCPU)
        #expect(Set(perCPU.compactMap(\.cpu)) == [0, 1])
        for row in report.rows {
            let split = perCPU.filter { $0.requestedNs == row.requestedNs }
            #expect(split.reduce(0) { $0 + $1.attempts } == row.attempts)
            #expect(split.reduce(0) { $0 + $1.slept } == row.slept)
        }
        // CPU 0 got the even-numbered attempts of each row.
        let cpu0At100 = try! #require(perCPU.first { $0.cpu == 0 && $0.requestedNs == 100 })
        #expect(cpu0At100.noSleep == 2_950)
        #expect(SleepRatioAccumulator().report().perCPU == nil)
    }

    @Test func eventPathAndAggregatePathsGiveIdenticalReports() {
        let events = Self.seedEvents()
        var byEvent = SleepRatioAccumulator(perCPU: true)
        for event in events { byEvent.add(event) }

        // What the kernel side would hold: counts of identical observations per CPU …
        struct Observation: Hashable { var cpu: Int, requested: UInt64, slept: Bool, actual: UInt64 }
        var counts: [Observation: UInt64] = [:]
        for event in events {
            counts[Observation(cpu: Int(event.cpu), requested: event.sleep_requested_ns,
                               slept: event.sleepOutcome == .slept, actual: event.slept_ns), default: 0] += 1
        }
        var byCount = SleepRatioAccumulator(perCPU: true)
        for (observation, count) in counts {
            byCount.add(cpu: observation.cpu, requestedNs: observation.requested, slept: observation.slept,
                        actualNs: observation.actual, count: count)
        }
        // … or pre-aggregated per-CPU rows.
        var rows: [Int: [UInt64: SleepStats]] = [:]
        for (observation, count) in counts {
            rows[observation.cpu, default: [:]][observation.requested, default: SleepStats()]
                .add(requestedNs: observation.requested, outcome: observation.slept ? .slept : .noSleep,
                     actualNs: observation.actual, count: count)
        }
        var byMerge = SleepRatioAccumulator(perCPU: true)
        for (cpu, cpuRows) in rows { for (ns, stats) in cpuRows { byMerge.merge(cpu: cpu, key: .exact(ns), stats: stats) } }

        #expect(byEvent.report() == byCount.report())
        #expect(byEvent.report() == byMerge.report())
    }

    @Test func mergingPartsEqualsSeeingEverything() {
        let events = Self.seedEvents()
        var whole = SleepRatioAccumulator(perCPU: true), first = SleepRatioAccumulator(perCPU: true)
        var second = SleepRatioAccumulator(perCPU: true)
        for (index, event) in events.enumerated() {
            whole.add(event)
            if index % 3 == 0 { first.add(event) } else { second.add(event) }
        }
        first.merge(second)
        #expect(first.report() == whole.report())

        // A part that overflowed the exact view turns the merged result into log2 rows.
        var wide = SleepRatioAccumulator(perCPU: true)
        for value in 1...17 { wide.add(cpu: 0, requestedNs: UInt64(value) * 10_000, slept: true, actualNs: 200_000) }
        first.merge(wide)
        #expect(first.report().rowKind == .log2)
        #expect(first.report().totals.attempts == whole.report().totals.attempts + 17)
    }

    @Test func log2RowsFromTheKernelMarkTheExactViewIncomplete() {
        var stats = SleepStats()
        stats.add(requestedNs: 3_000, outcome: .slept, actualNs: 9_000, count: 4)
        var accumulator = SleepRatioAccumulator()
        accumulator.add(cpu: 0, requestedNs: 100, slept: false, actualNs: 0)
        accumulator.merge(cpu: 1, key: .log2(11), stats: stats)
        let report = accumulator.report()
        #expect(report.rowKind == .log2)
        #expect(report.rows.map(\.requestedMinNs) == [64, 2_048])
        #expect(report.rows.map(\.attempts) == [1, 4])
    }

    @Test func noAttemptsSaysWhereToLook() {
        let report = SleepRatioAccumulator().report()
        #expect(report.rows.isEmpty && report.totals.attempts == 0)
        #expect(report.verdict.contains("io_poll_delay"))
    }
}

/// The shared histogram: bins, percentiles within bin bounds, merge.
@Suite struct LatencyHistogramAnalysisTests {
    @Test func percentilesLieWithinTheirBin() {
        var histogram = LatencyHistogram()
        for value in 1...10_000 { histogram.add(UInt64(value)) }
        #expect(histogram.count == 10_000 && histogram.max == 10_000)
        #expect(histogram.mean == 5_000.5)
        for (fraction, truth) in [(0.5, UInt64(5_000)), (0.9, 9_000), (0.99, 9_900)] {
            let reported = try! #require(histogram.percentile(fraction))
            let bin = LatencyHistogram.bin(of: truth)
            #expect(reported >= truth, "p\(fraction) never under-reports")
            #expect(reported <= LatencyHistogram.upperBound(ofBin: bin), "p\(fraction) stays in the true value's bin")
            #expect(Double(reported) <= Double(truth) * 1.25)
        }
        #expect(histogram.percentile(1.0) == 10_000)
    }

    @Test func smallValuesAreExactAndBinsMatchTheHeader() {
        var histogram = LatencyHistogram()
        histogram.add(3, times: 5)
        histogram.add(7, times: 5)
        #expect(histogram.percentile(0.5) == 3)
        #expect(histogram.percentile(0.51) == 7)
        #expect(LatencyHistogram.bin(of: 16) == 16)
        #expect(LatencyHistogram.bin(of: UInt64.max) == 255)
        for bin in 0..<LatencyHistogram.binCount {
            #expect(LatencyHistogram.bin(of: LatencyHistogram.lowerBound(ofBin: bin)) == bin)
            #expect(LatencyHistogram.bin(of: LatencyHistogram.upperBound(ofBin: bin)) == bin)
        }
    }

    @Test func mergeEqualsAddingEverything() {
        var a = LatencyHistogram(), b = LatencyHistogram(), all = LatencyHistogram()
        for value in stride(from: UInt64(1), to: 1_000_000, by: 997) {
            if value % 2 == 0 { a.add(value) } else { b.add(value) }
            all.add(value)
        }
        a.merge(b)
        #expect(a == all)
        #expect(LatencyHistogram().percentile(0.5) == nil)
    }
}
