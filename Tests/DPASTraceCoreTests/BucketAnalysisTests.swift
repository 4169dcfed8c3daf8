import Testing
@testable import DPASTraceCore

/// The bucket analysis on hand-built request streams with known answers.
@Suite struct BucketAnalysisTests {
    static func start(_ i: Int, sectors: UInt32, write: Bool = false, polled: Bool, queueStats: Bool) -> TraceEvent {
        .rqStart(ts: UInt64(i) * 1_000, cpu: UInt32(i % 2), pid: 7, tid: 7, rq: 0xffff_0000 + UInt64(i),
                 dev: TraceEvent.makeDev(major: 259, minor: 0), nrSectors: sectors,
                 statsSectors: queueStats ? sectors : 0, ddir: write ? 1 : 0, polled: polled, queueStats: queueStats)
    }

    /// 1,000 polled 4 KiB reads without QUEUE_FLAG_STATS (bucket −1), 500 polled with it (bucket 6),
    /// 200 unpolled 64 KiB writes without it (bucket −1, write), 50 polled 8 KiB reads with it (bucket 8).
    static func mixedStream() -> [TraceEvent] {
        var events: [TraceEvent] = []
        var i = 0
        func add(_ n: Int, sectors: UInt32, write: Bool = false, polled: Bool, queueStats: Bool) {
            for _ in 0..<n {
                events.append(start(i, sectors: sectors, write: write, polled: polled, queueStats: queueStats))
                i += 1
            }
        }
        add(1_000, sectors: 8, polled: true, queueStats: false)
        add(500, sectors: 8, polled: true, queueStats: true)
        add(200, sectors: 128, write: true, polled: false, queueStats: false)
        add(50, sectors: 16, polled: true, queueStats: true)
        return events
    }

    @Test func bucketMinusOneShareAndCause() throws {
        var accumulator = BucketAccumulator()
        for event in Self.mixedStream() { accumulator.add(event) }
        let report = accumulator.report()

        #expect(report.rows.map { "\($0.bucket)/\($0.direction)" } == ["-1/read", "-1/write", "6/read", "8/read"])
        let minusOneRead = report.rows[0]
        #expect(minusOneRead.count == 1_000 && minusOneRead.polled == 1_000)
        #expect(minusOneRead.statsSectorsZero == 1_000 && minusOneRead.queueStatsSet == 0)
        #expect(minusOneRead.sizes == [.init(sectors: 8, count: 1_000)])
        #expect(minusOneRead.fix1Buckets == [.init(bucket: 6, count: 1_000)])
        #expect(minusOneRead.fix1Mismatch == 1_000)

        let minusOneWrite = report.rows[1]
        #expect(minusOneWrite.count == 200 && minusOneWrite.polled == 0)
        #expect(minusOneWrite.fix1Buckets == [.init(bucket: 15, count: 200)])  // 1 + 2·ilog2(128) = 15

        let six = report.rows[2]
        #expect(six.count == 500 && six.statsSectorsZero == 0 && six.queueStatsSet == 500 && six.fix1Mismatch == 0)

        #expect(report.totals.requests == 1_750)
        #expect(report.totals.polled == 1_550)
        #expect(report.totals.polledBucketMinusOne == 1_000)
        #expect(report.totals.polledBucketMinusOneShare == 1_000.0 / 1_550.0)
        #expect(report.totals.statsSectorsZero == 1_200)
        #expect(report.totals.fix1Mismatch == 1_200)
        #expect(report.queueStats == .mixed)
        #expect(report.headline == "64.5% of polled I/O (1,000 of 1,550) got bucket −1")
        let cause = try #require(report.cause)
        #expect(cause.hasPrefix("QUEUE_FLAG_STATS is off on this queue ⇒ stats_sectors is 0 ⇒ blk_mq_poll_stats_bkt returns −1 ⇒ DPAS skips its logic"))
        #expect(cause.contains("fix 1") && cause.contains("wbt_lat_usec"))
    }

    @Test func everythingBucketedNeedsNoCause() {
        var accumulator = BucketAccumulator()
        for i in 0..<10 { accumulator.add(Self.start(i, sectors: 8, polled: true, queueStats: true)) }
        let report = accumulator.report()
        #expect(report.cause == nil)
        #expect(report.queueStats == .on)
        #expect(report.headline == "0% of polled I/O (0 of 10) got bucket −1")
    }

    @Test func noPolledIOPointsAtPollQueues() {
        var accumulator = BucketAccumulator()
        for i in 0..<10 { accumulator.add(Self.start(i, sectors: 8, polled: false, queueStats: false)) }
        let report = accumulator.report()
        #expect(report.totals.polledBucketMinusOneShare == nil)
        #expect(report.headline.contains("no polled I/O") && report.headline.contains("poll_queues"))
        #expect(report.queueStats == .off)
    }

    @Test func requestSizesAreBoundedAndTopNIsReported() {
        var accumulator = BucketAccumulator()
        // 100 distinct sizes in bucket 15 (read: 0 + 2·ilog2(≥128) clamps to 14 … use writes ≥ 256 sectors → 15).
        for size in 256..<356 {
            accumulator.add(bucket: 15, bucketBySectors: 15, ddir: 1, nrSectors: UInt32(size), statsSectors: UInt32(size),
                            polled: true, queueStats: true, count: UInt64(size == 300 ? 50 : 1))
        }
        let row = accumulator.report(sizeLimit: 3).rows[0]
        #expect(row.count == 149)
        #expect(row.sizes.first == .init(sectors: 300, count: 50))
        #expect(row.sizes.count == 3)
        #expect(row.sizesOther == 149 - 50 - 1 - 1)
        #expect(accumulator.rows.values.first!.sizes.counts.count == BucketStats.sizeCapacity)
    }

    @Test func eventPathAndAggregatePathGiveIdenticalReports() {
        let events = Self.mixedStream()
        var byEvent = BucketAccumulator()
        for event in events { byEvent.add(event) }

        struct Observation: Hashable {
            var bucket: Int8, bySectors: Int8, ddir: UInt8, sectors: UInt32, stats: UInt32, polled: Bool, queueStats: Bool
        }
        var counts: [Observation: UInt64] = [:]
        for e in events {
            counts[Observation(bucket: e.bucket, bySectors: e.bucket_by_sectors, ddir: e.ddir, sectors: e.nr_sectors,
                               stats: e.stats_sectors, polled: e.isPolled, queueStats: e.queueStatsSet), default: 0] += 1
        }
        var byCount = BucketAccumulator()
        for (o, count) in counts {
            byCount.add(bucket: o.bucket, bucketBySectors: o.bySectors, ddir: o.ddir, nrSectors: o.sectors,
                        statsSectors: o.stats, polled: o.polled, queueStats: o.queueStats, count: count)
        }
        #expect(byEvent.report() == byCount.report())

        var halves = BucketAccumulator(), second = BucketAccumulator()
        for (index, event) in events.enumerated() { if index % 2 == 0 { halves.add(event) } else { second.add(event) } }
        halves.merge(second)
        #expect(halves.report() == byEvent.report())
    }
}
