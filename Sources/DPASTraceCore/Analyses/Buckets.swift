// Bucket analysis: which poll-stats bucket (blk_mq_poll_stats_bkt) each request got, and why −1.
//
// Input is one observation per started request (an RQ_START event, or counts the kernel side
// aggregated). Bucket −1 means the kernel found stats_sectors == 0 and DPAS skips the request.

/// Counts of values, keeping at most `capacity` distinct keys exactly; later new keys go to `other`.
public struct BoundedCounts<Key: Hashable & Comparable & Sendable>: Sendable, Equatable {
    public let capacity: Int
    public private(set) var counts: [Key: UInt64] = [:]
    /// Observations whose key arrived after `capacity` distinct keys were already tracked.
    public private(set) var other: UInt64 = 0

    public init(capacity: Int) { self.capacity = capacity }

    /// Counts built elsewhere under the same rule (at most `capacity` keys in `counts`).
    init(capacity: Int, counts: [Key: UInt64], other: UInt64) {
        self.capacity = capacity
        self.counts = counts
        self.other = other
    }

    public mutating func add(_ key: Key, count: UInt64 = 1) {
        if counts[key] != nil || counts.count < capacity { counts[key, default: 0] += count } else { other += count }
    }

    public mutating func merge(_ other: BoundedCounts<Key>) {
        for (key, count) in other.counts.sorted(by: { $0.key < $1.key }) { add(key, count: count) }
        self.other += other.other
    }

    /// The `limit` most frequent keys (ties by key), plus everything else as one count.
    public func top(_ limit: Int) -> (top: [(key: Key, count: UInt64)], rest: UInt64) {
        let sorted = counts.map { (key: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }
        let top = Array(sorted.prefix(limit))
        return (top, other + sorted.dropFirst(limit).reduce(0) { $0 + $1.count })
    }
}

/// A row of the bucket table: bucket −1…15 and the data direction (buckets ≥ 0 encode it already;
/// −1 is split into read and write).
public struct BucketKey: Hashable, Comparable, Sendable {
    public var bucket: Int8
    /// 0 read, 1 write.
    public var ddir: UInt8

    public init(bucket: Int8, ddir: UInt8) {
        self.bucket = bucket
        self.ddir = ddir & 1
    }

    public static func < (lhs: BucketKey, rhs: BucketKey) -> Bool {
        lhs.bucket != rhs.bucket ? lhs.bucket < rhs.bucket : lhs.ddir < rhs.ddir
    }
}

/// What the requests of one bucket looked like.
public struct BucketStats: Sendable, Equatable {
    /// Distinct request sizes tracked exactly per bucket; more are counted as "other sizes".
    public static let sizeCapacity = 64

    public var count: UInt64 = 0
    /// Marked for polling (REQ_HIPRI / REQ_POLLED).
    public var polled: UInt64 = 0
    public var statsSectorsZero: UInt64 = 0
    /// QUEUE_FLAG_STATS was set on the queue when the request started.
    public var queueStatsSet: UInt64 = 0
    /// Request sizes in sectors (blk_rq_sectors).
    public var sizes = BoundedCounts<UInt32>(capacity: BucketStats.sizeCapacity)
    /// The bucket the seed's fix 1 gives (computed from blk_rq_sectors), with counts.
    public var bucketBySectors: [Int8: UInt64] = [:]
    /// Requests whose kernel bucket differs from the fix-1 bucket.
    public var mismatch: UInt64 = 0

    public init() {}

    mutating func add(bucket: Int8, bucketBySectors: Int8, nrSectors: UInt32, statsSectors: UInt32,
                      polled: Bool, queueStats: Bool, count: UInt64) {
        self.count += count
        if polled { self.polled += count }
        if statsSectors == 0 { statsSectorsZero += count }
        if queueStats { queueStatsSet += count }
        sizes.add(nrSectors, count: count)
        self.bucketBySectors[bucketBySectors, default: 0] += count
        if bucket != bucketBySectors { mismatch += count }
    }

    public mutating func merge(_ other: BucketStats) {
        count += other.count
        polled += other.polled
        statsSectorsZero += other.statsSectorsZero
        queueStatsSet += other.queueStatsSet
        sizes.merge(other.sizes)
        for (bucket, n) in other.bucketBySectors { bucketBySectors[bucket, default: 0] += n }
        mismatch += other.mismatch
    }
}

/// One bucket row while streaming: plain counters and arrays, so a request costs no hashing.
/// Becomes a `BucketStats` (same counts, same size-tracking rule) when reported.
struct BucketRowState: Sendable {
    var count: UInt64 = 0
    var polled: UInt64 = 0
    var statsSectorsZero: UInt64 = 0
    var queueStatsSet: UInt64 = 0
    var mismatch: UInt64 = 0
    /// The first `BucketStats.sizeCapacity` distinct sizes in first-seen order (`BoundedCounts`'
    /// rule), with the last hit cached: requests of one workload mostly share a size.
    var sizeKeys: [UInt32] = []
    /// Count of `sizeKeys[i]`; inline, so the per-request increment needs no uniqueness check.
    var sizeCounts = InlineArray<64, UInt64>(repeating: 0)
    var sizesOther: UInt64 = 0
    var lastSize = 0
    /// Requests per fix-1 bucket, indexed by the bucket's bit pattern (covers every Int8).
    var bucketBySectors = InlineArray<256, UInt64>(repeating: 0)

    @inline(__always)
    mutating func add(bucket: Int8, bucketBySectors fix1: Int8, nrSectors: UInt32, statsSectors: UInt32,
                      polled: Bool, queueStats: Bool, count: UInt64) {
        self.count += count
        if polled { self.polled += count }
        if statsSectors == 0 { statsSectorsZero += count }
        if queueStats { queueStatsSet += count }
        addSize(nrSectors, count: count)
        bucketBySectors[Int(UInt8(bitPattern: fix1))] += count
        if bucket != fix1 { mismatch += count }
    }

    @inline(__always)
    mutating func addSize(_ sectors: UInt32, count: UInt64) {
        if lastSize < sizeKeys.count && sizeKeys[lastSize] == sectors {
            sizeCounts[lastSize] += count
        } else if let index = sizeKeys.firstIndex(of: sectors) {
            sizeCounts[index] += count
            lastSize = index
        } else if sizeKeys.count < BucketStats.sizeCapacity {
            sizeCounts[sizeKeys.count] = count
            sizeKeys.append(sectors)
            lastSize = sizeKeys.count - 1
        } else {
            sizesOther += count
        }
    }

    mutating func merge(_ other: BucketRowState) {
        count += other.count
        polled += other.polled
        statsSectorsZero += other.statsSectorsZero
        queueStatsSet += other.queueStatsSet
        // In size order, as BoundedCounts.merge does, so the kept sizes do not depend on history.
        for (sectors, n) in other.sizes.sorted(by: { $0.0 < $1.0 }) { addSize(sectors, count: n) }
        sizesOther += other.sizesOther
        for index in 0..<256 { bucketBySectors[index] += other.bucketBySectors[index] }
        mismatch += other.mismatch
    }

    /// The tracked sizes with their counts, in first-seen order.
    var sizes: [(UInt32, UInt64)] { sizeKeys.indices.map { (sizeKeys[$0], sizeCounts[$0]) } }

    var stats: BucketStats {
        var stats = BucketStats()
        stats.count = count
        stats.polled = polled
        stats.statsSectorsZero = statsSectorsZero
        stats.queueStatsSet = queueStatsSet
        stats.sizes = BoundedCounts(capacity: BucketStats.sizeCapacity,
                                    counts: Dictionary(uniqueKeysWithValues: sizes), other: sizesOther)
        for index in 0..<256 where bucketBySectors[index] > 0 {
            stats.bucketBySectors[Int8(bitPattern: UInt8(index))] = bucketBySectors[index]
        }
        stats.mismatch = mismatch
        return stats
    }
}

/// Streams request starts into per-bucket counts. Memory is bounded: at most 34 rows for real
/// buckets (512 for any Int8 bucket a damaged dump may hold), each with at most 64 tracked sizes.
public struct BucketAccumulator: Sendable {
    /// Row of each (bucket bit pattern × 2 + ddir) slot in `rowStates`, −1 when absent: two array
    /// accesses per request, no hashing.
    private var rowOfSlot = [Int16](repeating: -1, count: 512)
    private var rowStates: [BucketRowState] = []
    private var rowKeys: [BucketKey] = []
    /// Polled requests in bucket −1 that had QUEUE_FLAG_STATS off / on, and those of the latter with 0 sectors.
    private var polledMinusOneStatsOff: UInt64 = 0
    private var polledMinusOneStatsOn: UInt64 = 0
    private var polledMinusOneZeroLength: UInt64 = 0

    public init() {}

    @inline(__always)
    private static func slot(bucket: Int8, ddir: UInt8) -> Int { Int(UInt8(bitPattern: bucket)) << 1 | Int(ddir & 1) }

    /// The rows seen so far, by bucket and direction.
    public var rows: [BucketKey: BucketStats] {
        Dictionary(uniqueKeysWithValues: sortedRows.map { ($0.key, $0.state.stats) })
    }

    /// The rows in table order (bucket, then direction).
    private var sortedRows: [(key: BucketKey, state: BucketRowState)] {
        zip(rowKeys, rowStates).map { (key: $0.0, state: $0.1) }.sorted { $0.key < $1.key }
    }

    /// Index of the row for `bucket`/`ddir` in `rowStates`, created when absent.
    @inline(__always)
    private mutating func row(bucket: Int8, ddir: UInt8) -> Int {
        let slot = Self.slot(bucket: bucket, ddir: ddir)
        let row = Int(rowOfSlot[slot])
        if row >= 0 { return row }
        rowOfSlot[slot] = Int16(rowStates.count)
        rowStates.append(BucketRowState())
        rowKeys.append(BucketKey(bucket: bucket, ddir: ddir))
        return rowStates.count - 1
    }

    /// Event path: takes RQ_START events, ignores every other kind.
    @inline(__always)
    public mutating func add(_ event: TraceEvent) {
        guard event.kind == EventKind.rqStart.rawValue else { return }
        add(bucket: event.bucket, bucketBySectors: event.bucket_by_sectors, ddir: event.ddir,
            nrSectors: event.nr_sectors, statsSectors: event.stats_sectors,
            polled: event.isPolled, queueStats: event.queueStatsSet)
    }

    /// Aggregate path: `count` identical request starts.
    @inline(__always)
    public mutating func add(bucket: Int8, bucketBySectors: Int8, ddir: UInt8, nrSectors: UInt32, statsSectors: UInt32,
                             polled: Bool, queueStats: Bool, count: UInt64 = 1) {
        guard count > 0 else { return }
        // Mutated in place: copying the row out and back would copy its arrays per request.
        rowStates[row(bucket: bucket, ddir: ddir)].add(bucket: bucket, bucketBySectors: bucketBySectors, nrSectors: nrSectors, statsSectors: statsSectors,
                                                     polled: polled, queueStats: queueStats, count: count)
        if polled && bucket < 0 {
            if queueStats { polledMinusOneStatsOn += count } else { polledMinusOneStatsOff += count }
            if queueStats && nrSectors == 0 { polledMinusOneZeroLength += count }
        }
    }

    /// Adds everything another accumulator saw.
    public mutating func merge(_ other: BucketAccumulator) {
        for (key, state) in zip(other.rowKeys, other.rowStates) { rowStates[row(bucket: key.bucket, ddir: key.ddir)].merge(state) }
        polledMinusOneStatsOff += other.polledMinusOneStatsOff
        polledMinusOneStatsOn += other.polledMinusOneStatsOn
        polledMinusOneZeroLength += other.polledMinusOneZeroLength
    }

    /// Builds the report; rows show the `sizeLimit` most frequent sizes each.
    public func report(completeness: TraceCompleteness = TraceCompleteness(), sizeLimit: Int = 4) -> BucketReport {
        let bucketRows = sortedRows.map { BucketRow(key: $0.key, stats: $0.state.stats, sizeLimit: sizeLimit) }
        var totals = BucketTotals()
        for row in bucketRows {
            totals.requests += row.count
            totals.polled += row.polled
            totals.statsSectorsZero += row.statsSectorsZero
            totals.queueStatsSet += row.queueStatsSet
            totals.fix1Mismatch += row.fix1Mismatch
            if row.bucket < 0 {
                totals.bucketMinusOne += row.count
                totals.polledBucketMinusOne += row.polled
            }
        }
        totals.polledBucketMinusOneShare = totals.polled == 0 ? nil : Double(totals.polledBucketMinusOne) / Double(totals.polled)
        let queueStats: BucketReport.QueueStatsState =
            totals.requests == 0 ? .unknown
            : totals.queueStatsSet == 0 ? .off : totals.queueStatsSet == totals.requests ? .on : .mixed
        return BucketReport(rows: bucketRows, totals: totals, queueStats: queueStats,
                            headline: headline(totals), cause: cause(totals),
                            lostEvents: completeness.lostEvents, warnings: completeness.warnings)
    }

    private func headline(_ totals: BucketTotals) -> String {
        if totals.requests == 0 { return "no request starts traced" }
        if totals.polled == 0 {
            return "no polled I/O among \(Format.count(totals.requests)) requests (\(Format.count(totals.bucketMinusOne)) in bucket −1): RWF_HIPRI requests go to interrupt queues when nvme has no poll queues (see the seed's fix 2: load nvme with poll_queues ≥ 1)"
        }
        return "\(Format.percent(totals.polledBucketMinusOneShare)) of polled I/O (\(Format.count(totals.polledBucketMinusOne)) of \(Format.count(totals.polled))) got bucket −1"
    }

    /// The cause of the polled bucket −1 requests, from the largest group; nil when there are none.
    private func cause(_ totals: BucketTotals) -> String? {
        guard totals.polledBucketMinusOne > 0 else { return nil }
        if polledMinusOneStatsOff >= polledMinusOneStatsOn {
            return "QUEUE_FLAG_STATS is off on this queue ⇒ stats_sectors is 0 ⇒ blk_mq_poll_stats_bkt returns −1 ⇒ DPAS skips its logic for these I/Os — the seed's fix 1: compute the bucket from blk_rq_sectors(); or enable a stats user such as wbt_lat_usec"
        }
        if polledMinusOneZeroLength >= polledMinusOneStatsOn - polledMinusOneZeroLength {
            return "these requests carry no data (0 sectors, e.g. flushes), so no bucket applies to them"
        }
        return "QUEUE_FLAG_STATS was set, yet stats_sectors was 0 when the request started (the flag was switched on while these requests were in flight?) ⇒ blk_mq_poll_stats_bkt returns −1 ⇒ DPAS skips its logic for these I/Os — the seed's fix 1 (blk_rq_sectors()) avoids depending on it"
    }
}

/// One bucket of the bucket table.
public struct BucketRow: Codable, Sendable, Equatable {
    public var bucket: Int
    /// "read" or "write".
    public var direction: String
    public var count: UInt64
    public var polled: UInt64
    public var statsSectorsZero: UInt64
    public var queueStatsSet: UInt64
    /// Most frequent request sizes, in sectors.
    public var sizes: [SizeCount]
    /// Requests of other sizes than those listed.
    public var sizesOther: UInt64
    /// Buckets the seed's fix 1 (blk_rq_sectors) gives these requests.
    public var fix1Buckets: [BucketCount]
    /// Requests whose kernel bucket differs from the fix-1 bucket.
    public var fix1Mismatch: UInt64

    public struct SizeCount: Codable, Sendable, Equatable {
        public var sectors: UInt32
        public var count: UInt64
    }

    public struct BucketCount: Codable, Sendable, Equatable {
        public var bucket: Int
        public var count: UInt64
    }

    init(key: BucketKey, stats: BucketStats, sizeLimit: Int) {
        bucket = Int(key.bucket)
        direction = key.ddir == 0 ? "read" : "write"
        count = stats.count
        polled = stats.polled
        statsSectorsZero = stats.statsSectorsZero
        queueStatsSet = stats.queueStatsSet
        let (top, rest) = stats.sizes.top(sizeLimit)
        sizes = top.map { SizeCount(sectors: $0.key, count: $0.count) }
        sizesOther = rest
        fix1Buckets = stats.bucketBySectors.sorted { $0.key < $1.key }.map { BucketCount(bucket: Int($0.key), count: $0.value) }
        fix1Mismatch = stats.mismatch
    }

    enum CodingKeys: String, CodingKey {
        case bucket, direction, count, polled, statsSectorsZero = "stats_sectors_zero", queueStatsSet = "queue_stats_set"
        case sizes, sizesOther = "sizes_other", fix1Buckets = "fix1_buckets", fix1Mismatch = "fix1_mismatch"
    }
}

/// Sums over all buckets.
public struct BucketTotals: Codable, Sendable, Equatable {
    public var requests: UInt64 = 0
    public var polled: UInt64 = 0
    public var bucketMinusOne: UInt64 = 0
    public var polledBucketMinusOne: UInt64 = 0
    /// polled_bucket_minus_one / polled, 0…1; nil without polled I/O.
    public var polledBucketMinusOneShare: Double?
    public var statsSectorsZero: UInt64 = 0
    public var queueStatsSet: UInt64 = 0
    public var fix1Mismatch: UInt64 = 0

    enum CodingKeys: String, CodingKey {
        case requests, polled, bucketMinusOne = "bucket_minus_one", polledBucketMinusOne = "polled_bucket_minus_one"
        case polledBucketMinusOneShare = "polled_bucket_minus_one_share", statsSectorsZero = "stats_sectors_zero"
        case queueStatsSet = "queue_stats_set", fix1Mismatch = "fix1_mismatch"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(requests, forKey: .requests)
        try container.encode(polled, forKey: .polled)
        try container.encode(bucketMinusOne, forKey: .bucketMinusOne)
        try container.encode(polledBucketMinusOne, forKey: .polledBucketMinusOne)
        try container.encode(polledBucketMinusOneShare, forKey: .polledBucketMinusOneShare)
        try container.encode(statsSectorsZero, forKey: .statsSectorsZero)
        try container.encode(queueStatsSet, forKey: .queueStatsSet)
        try container.encode(fix1Mismatch, forKey: .fix1Mismatch)
    }
}

/// The bucket analysis result.
public struct BucketReport: Codable, Sendable, Equatable {
    /// QUEUE_FLAG_STATS as the traced requests saw it.
    public enum QueueStatsState: String, Codable, Sendable { case on, off, mixed, unknown }

    public var rows: [BucketRow]
    public var totals: BucketTotals
    public var queueStats: QueueStatsState
    /// One sentence: the share of polled I/O in bucket −1 (or why there is none).
    public var headline: String
    /// Why the polled bucket −1 requests got it, with the fix; nil when there are none.
    public var cause: String?
    public var lostEvents: LostEvents
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case rows, totals, queueStats = "queue_stats", headline, cause, lostEvents = "lost_events", warnings
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rows, forKey: .rows)
        try container.encode(totals, forKey: .totals)
        try container.encode(queueStats, forKey: .queueStats)
        try container.encode(headline, forKey: .headline)
        try container.encode(cause, forKey: .cause)
        try container.encode(lostEvents, forKey: .lostEvents)
        try container.encode(warnings, forKey: .warnings)
    }
}
