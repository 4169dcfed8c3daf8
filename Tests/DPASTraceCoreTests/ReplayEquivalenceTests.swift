import Foundation
import Testing
import DPASTraceSynthetic
@testable import DPASTraceCore

/// The replay hot path (arrays indexed by bucket, row and CPU instead of dictionaries) must give
/// exactly the reports of the straightforward dictionary-based accumulators kept in
/// ReferenceAccumulators.swift: same JSON, byte for byte, for realistic and for hostile streams.
@Suite struct ReplayEquivalenceTests {
    /// Feeds `events` to the production accumulators and to the reference ones and returns both
    /// reports as the JSON `report --json` prints.
    static func reports(_ events: [TraceEvent], perCPU: Bool, timelineLimit: Int = 8) throws -> (fast: String, reference: String) {
        var fast = TraceAnalyses(sleepPerCPU: perCPU, timelineLimit: timelineLimit)
        var sleep = ReferenceSleepRatioAccumulator(perCPU: perCPU)
        var buckets = ReferenceBucketAccumulator()
        var modes = ReferenceModeAccumulator(timelineLimit: timelineLimit)
        for event in events {
            fast.add(event)
            sleep.add(event)
            buckets.add(event)
            modes.add(event)
        }
        let completeness = TraceCompleteness(lostEvents: LostEvents(perCPU: [3, 0]), warnings: ["w"])
        let reference = FullReport(source: nil, sleepRatio: sleep.report(completeness: completeness),
                                   buckets: buckets.report(completeness: completeness),
                                   modes: modes.report(completeness: completeness),
                                   lostEvents: completeness.lostEvents, warnings: completeness.warnings)
        return (try JSONRenderer.render(fast.report(completeness: completeness)), try JSONRenderer.render(reference))
    }

    /// Every field drawn at random, CPU ids, buckets, modes and sizes included: the odd values a
    /// damaged dump or a new kernel can hold, and more distinct sleeps and sizes than are kept exactly.
    static func hostileStream(count: Int, seed: UInt64) -> [TraceEvent] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { index in
            let kind = UInt32(1 + random.next() % 6)  // 6: a kind this build does not know
            var event = TraceEvent.blank(EventKind(rawValue: min(kind, 5))!, ts: UInt64(index) * 1_000 + random.next() % 5_000,
                                         cpu: random.next() % 8 == 0 ? UInt32(truncatingIfNeeded: random.next()) : UInt32(random.next() % 5))
            event.kind = kind
            event.flags = UInt32(truncatingIfNeeded: random.next())
            event.nr_sectors = random.next() % 3 == 0 ? UInt32(random.next() % 200) : 8
            event.stats_sectors = random.next() % 2 == 0 ? 0 : event.nr_sectors
            event.ddir = UInt8(truncatingIfNeeded: random.next())
            event.bucket = random.next() % 4 == 0 ? Int8(truncatingIfNeeded: random.next()) : Int8(random.next() % 17) - 1
            event.bucket_by_sectors = random.next() % 4 == 0 ? Int8(truncatingIfNeeded: random.next()) : 6
            event.outcome = UInt8(random.next() % 4)
            event.mode_from = UInt8(random.next() % 7)
            event.mode_to = random.next() % 5 == 0 ? 255 : UInt8(random.next() % 7)
            event.sleep_requested_ns = random.next() % 2 == 0 ? [100, 1_000, 2_000, 3_960][Int(random.next() % 4)] : random.next() % 1_000_000
            event.slept_ns = random.next() % 10_000
            event.avg_qd_x10 = UInt32(random.next() % 40)
            event.tf = UInt32(random.next() % 3)
            event.window_ios = UInt32(random.next() % 200)
            return event
        }
    }

    @Test(arguments: [false, true])
    func syntheticDPASStreamGivesIdenticalReports(perCPU: Bool) throws {
        var configuration = SyntheticWorkload.Configuration()
        configuration.events = 400_000
        configuration.cpus = 4
        configuration.seed = 42
        let (fast, reference) = try Self.reports(Array(SyntheticWorkload(configuration)), perCPU: perCPU)
        #expect(fast == reference)
        #expect(fast.contains("\"requested_ns\" : 3960"))  // the exact rows are there, not empty reports
    }

    @Test(arguments: [false, true])
    func hostileStreamGivesIdenticalReports(perCPU: Bool) throws {
        let (fast, reference) = try Self.reports(Self.hostileStream(count: 200_000, seed: 9), perCPU: perCPU)
        #expect(fast == reference)
        #expect(fast.contains("\"row_kind\" : \"log2\""))  // more than 16 distinct sleeps: log2 rows
    }

    @Test func fewDistinctSleepsKeepExactRowsIdentically() throws {
        // 16 distinct durations stay exact; the reference and the cached lookup must agree on order.
        let events = (0..<50_000).map { index -> TraceEvent in
            var event = TraceEvent.blank(.hybridSleep, ts: UInt64(index), cpu: UInt32(index % 3))
            event.sleep_requested_ns = UInt64((index * 7) % 16) * 500
            event.outcome = UInt8(index % 3)
            event.slept_ns = UInt64(index % 9_000)
            return event
        }
        let (fast, reference) = try Self.reports(events, perCPU: true)
        #expect(fast == reference)
        #expect(fast.contains("\"row_kind\" : \"exact\""))
    }

    @Test func mergedAccumulatorsMatchTheReferenceMerge() throws {
        let events = Self.hostileStream(count: 60_000, seed: 4)
        let half = events.count / 2
        var sleepA = SleepRatioAccumulator(perCPU: true), sleepB = SleepRatioAccumulator(perCPU: true)
        var refSleepA = ReferenceSleepRatioAccumulator(perCPU: true), refSleepB = ReferenceSleepRatioAccumulator(perCPU: true)
        var bucketsA = BucketAccumulator(), bucketsB = BucketAccumulator()
        var refBucketsA = ReferenceBucketAccumulator(), refBucketsB = ReferenceBucketAccumulator()
        for (index, event) in events.enumerated() {
            if index < half {
                sleepA.add(event); refSleepA.add(event); bucketsA.add(event); refBucketsA.add(event)
            } else {
                sleepB.add(event); refSleepB.add(event); bucketsB.add(event); refBucketsB.add(event)
            }
        }
        sleepA.merge(sleepB)
        refSleepA.merge(refSleepB)
        bucketsA.merge(bucketsB)
        refBucketsA.merge(refBucketsB)
        #expect(try JSONRenderer.render(sleepA.report()) == JSONRenderer.render(refSleepA.report()))
        #expect(try JSONRenderer.render(bucketsA.report()) == JSONRenderer.render(refBucketsA.report()))
    }

    @Test func pipelinedReplayOfADumpMatchesTheSequentialPass() throws {
        // Large enough for DumpAnalysis to use the two-thread pipeline, and for its pager to map
        // pages ahead and give back pages behind (40 MiB).
        let scratch = try DumpScratch()
        let path = scratch.path("pipeline.dpt")
        var configuration = SyntheticWorkload.Configuration()
        configuration.events = UInt64(max(ChunkPipeline.minimumFileSize, MappedPager.distance + 3 * MappedPager.releaseStep) / 128)
        configuration.seed = 3
        let writer = try DumpWriter(path: path, header: dumpTestHeader())
        var batch: [TraceEvent] = []
        var sequential = TraceAnalyses(sleepPerCPU: true)
        for event in SyntheticWorkload(configuration) {
            batch.append(event)
            sequential.add(event)
            if batch.count == 4096 {
                try batch.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
                batch.removeAll(keepingCapacity: true)
            }
        }
        try batch.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
        try writer.finish(reason: "test")
        #expect(ChunkPipeline.worthwhile(path: path) == (ProcessInfo.processInfo.activeProcessorCount > 1))
        let analysis = try DumpAnalysis.run(path: path, sleepPerCPU: true)
        #expect(analysis.read.events == configuration.events)
        let expected = sequential.report(completeness: TraceCompleteness(lostEvents: analysis.report.lostEvents, warnings: analysis.report.warnings))
        #expect(try JSONRenderer.render(analysis.report.sleepRatio) == JSONRenderer.render(expected.sleepRatio))
        #expect(try JSONRenderer.render(analysis.report.buckets) == JSONRenderer.render(expected.buckets))
        #expect(try JSONRenderer.render(analysis.report.modes) == JSONRenderer.render(expected.modes))
    }
}

/// SplitMix64 for the hostile stream (deterministic: a failure reproduces).
struct TestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ReplayEquivalenceTests {
    /// A large damaged dump goes through the pipeline and stops exactly where a sequential read(2)
    /// pass stops: same events analysed, same damage.
    @Test func pipelinedReplayStopsAtTheDamageLikeASequentialPass() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("large.dpt")
        var configuration = SyntheticWorkload.Configuration()
        configuration.events = UInt64(ChunkPipeline.minimumFileSize / 128 + 100_000)
        configuration.seed = 9
        let writer = try DumpWriter(path: path, header: dumpTestHeader())
        for event in SyntheticWorkload(configuration) { try writer.append(event) }
        try writer.finish(reason: "test")
        let bytes = try scratch.bytes(path)
        for (name, damage) in [("flipped.dpt", { (b: inout [UInt8]) in b[b.count * 3 / 5] ^= 0x40 }),
                               ("cut.dpt", { (b: inout [UInt8]) in b.removeLast(b.count / 4) })] {
            var damaged = bytes
            damage(&damaged)
            let damagedPath = try scratch.file(name, damaged)
            var sequential = TraceAnalyses()
            let expected = try DumpReader(path: damagedPath, mapsFile: false).forEachEvent { sequential.add($0) }
            #expect(expected.damage != nil && expected.events > 0)
            #expect(ChunkPipeline.worthwhile(path: damagedPath) == (ProcessInfo.processInfo.activeProcessorCount > 1))
            let analysis = try DumpAnalysis.run(path: damagedPath)
            #expect(analysis.read.events == expected.events, "\(name)")
            #expect(analysis.read.damage == expected.damage, "\(name)")
            let report = sequential.report(completeness: TraceCompleteness(lostEvents: analysis.report.lostEvents, warnings: analysis.report.warnings))
            #expect(try JSONRenderer.render(analysis.report.modes) == JSONRenderer.render(report.modes), "\(name)")
            #expect(try JSONRenderer.render(analysis.report.sleepRatio) == JSONRenderer.render(report.sleepRatio), "\(name)")
            #expect(try JSONRenderer.render(analysis.report.buckets) == JSONRenderer.render(report.buckets), "\(name)")
        }
    }
}
