// The analyses as they were before the replay hot path was restructured (dictionaries keyed by
// row, bucket and CPU), kept verbatim as the reference the faster accumulators must match byte for
// byte (ReplayEquivalenceTests). Only the type names differ; per-CPU mode state is converted to the
// production type to build the report.
@testable import DPASTraceCore

/// Streams hybrid-sleep observations into sleep-ratio rows. Memory is bounded: at most 17 exact
/// rows and 64 log2 rows (per CPU when split), whatever the number of observations.
struct ReferenceSleepRatioAccumulator: Sendable {
    /// Up to this many distinct requested durations get a row each; beyond, log2 ranges are used.
    static let maxExactValues = 16

    /// Whether per-CPU rows are kept (costs a row set per CPU).
    let splitPerCPU: Bool
    /// True once more than `maxExactValues` distinct durations occurred (or rows arrived as log2 only).
    private(set) var exactOverflow = false

    private var exact: [UInt64: SleepStats] = [:]
    private var log2: [Int: SleepStats] = [:]
    private var exactByCPU: [Int: [UInt64: SleepStats]] = [:]
    private var log2ByCPU: [Int: [Int: SleepStats]] = [:]

    init(perCPU: Bool = false) {
        splitPerCPU = perCPU
    }

    /// Event path: takes HYBRID_SLEEP events, ignores every other kind.
    mutating func add(_ event: TraceEvent) {
        guard event.kind == EventKind.hybridSleep.rawValue else { return }
        record(cpu: Int(event.cpu), requestedNs: event.sleep_requested_ns, outcome: event.sleepOutcome,
               actualNs: event.slept_ns, count: 1, firedDuringArm: event.firedDuringArm)
    }

    /// Aggregate path: `count` identical attempts (for the kernel side's per-CPU counters).
    mutating func add(cpu: Int, requestedNs: UInt64, slept: Bool, actualNs: UInt64, count: UInt64 = 1) {
        record(cpu: cpu, requestedNs: requestedNs, outcome: slept ? .slept : .noSleep, actualNs: actualNs, count: count)
    }

    /// Aggregate path: adds pre-aggregated stats for one row. An `.exact` row feeds both the exact and
    /// the log2 view; a `.log2` row feeds only the log2 view and so marks the exact view incomplete.
    /// Feed every observation exactly once, through one of the two kinds.
    mutating func merge(cpu: Int, key: SleepRowKey, stats: SleepStats) {
        switch key {
        case .exact(let ns):
            noteExact(ns)
            if !exactOverflow {
                exact[ns, default: SleepStats()].merge(stats)
                if splitPerCPU { exactByCPU[cpu, default: [:]][ns, default: SleepStats()].merge(stats) }
            }
            mergeLog2(cpu: cpu, row: SleepRowKey.log2Row(of: ns), stats: stats)
        case .log2(let k):
            markExactOverflow()
            mergeLog2(cpu: cpu, row: k, stats: stats)
        }
    }

    /// Gives up the exact view (the kernel side saw more distinct durations than it kept).
    mutating func markExactOverflow() {
        exactOverflow = true
        exact = [:]
        exactByCPU = [:]
    }

    /// Adds everything another accumulator saw.
    mutating func merge(_ other: ReferenceSleepRatioAccumulator) {
        if other.exactOverflow { markExactOverflow() }
        for (ns, stats) in other.exact.sorted(by: { $0.key < $1.key }) where !exactOverflow {
            noteExact(ns)
            if !exactOverflow { exact[ns, default: SleepStats()].merge(stats) }
        }
        if splitPerCPU && !exactOverflow {
            for (cpu, rows) in other.exactByCPU {
                for (ns, stats) in rows { exactByCPU[cpu, default: [:]][ns, default: SleepStats()].merge(stats) }
            }
        }
        for (k, stats) in other.log2 { log2[k, default: SleepStats()].merge(stats) }
        if splitPerCPU {
            for (cpu, rows) in other.log2ByCPU {
                for (k, stats) in rows { log2ByCPU[cpu, default: [:]][k, default: SleepStats()].merge(stats) }
            }
        }
    }

    private mutating func record(cpu: Int, requestedNs: UInt64, outcome: SleepOutcome, actualNs: UInt64, count: UInt64,
                                 firedDuringArm: Bool = false) {
        guard count > 0 else { return }
        noteExact(requestedNs)
        if !exactOverflow {
            exact[requestedNs, default: SleepStats()].add(requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
            if splitPerCPU {
                exactByCPU[cpu, default: [:]][requestedNs, default: SleepStats()]
                    .add(requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
            }
        }
        let row = SleepRowKey.log2Row(of: requestedNs)
        log2[row, default: SleepStats()].add(requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
        if splitPerCPU {
            log2ByCPU[cpu, default: [:]][row, default: SleepStats()]
                .add(requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
        }
    }

    /// Overflows the exact view when `ns` would be its 17th distinct value.
    private mutating func noteExact(_ ns: UInt64) {
        if !exactOverflow && exact[ns] == nil && exact.count >= Self.maxExactValues { markExactOverflow() }
    }

    private mutating func mergeLog2(cpu: Int, row: Int, stats: SleepStats) {
        log2[row, default: SleepStats()].merge(stats)
        if splitPerCPU { log2ByCPU[cpu, default: [:]][row, default: SleepStats()].merge(stats) }
    }

    /// The rows as reported: exact when possible, log2 otherwise.
    var rows: [(key: SleepRowKey, stats: SleepStats)] {
        exactOverflow ? log2.map { (SleepRowKey.log2($0.key), $0.value) }.sorted { $0.key < $1.key }
            : exact.map { (SleepRowKey.exact($0.key), $0.value) }.sorted { $0.key < $1.key }
    }

    /// Builds the report; `completeness` says what the source lost.
    func report(completeness: TraceCompleteness = TraceCompleteness()) -> SleepRatioReport {
        let rows = self.rows.map { SleepRatioRow(cpu: nil, key: $0.key, stats: $0.stats) }
        var perCPU: [SleepRatioRow]? = nil
        if splitPerCPU {
            perCPU = []
            if exactOverflow {
                for (cpu, cpuRows) in log2ByCPU.sorted(by: { $0.key < $1.key }) {
                    perCPU! += cpuRows.sorted { $0.key < $1.key }.map { SleepRatioRow(cpu: cpu, key: .log2($0.key), stats: $0.value) }
                }
            } else {
                for (cpu, cpuRows) in exactByCPU.sorted(by: { $0.key < $1.key }) {
                    perCPU! += cpuRows.sorted { $0.key < $1.key }.map { SleepRatioRow(cpu: cpu, key: .exact($0.key), stats: $0.value) }
                }
            }
        }
        var total = SleepStats()
        for row in self.rows { total.merge(row.stats) }
        let totals = SleepRatioTotals(stats: total, lostEvents: completeness.lostEvents.total)
        return SleepRatioReport(
            rowKind: exactOverflow ? .log2 : .exact, rows: rows, perCPU: perCPU, totals: totals,
            verdict: SleepRatioReport.overallVerdict(rows: rows, totals: totals),
            lostEvents: completeness.lostEvents, warnings: completeness.warnings)
    }
}

/// Streams request starts into per-bucket counts. Memory is bounded: at most 34 rows, each with at
/// most 64 tracked sizes.
struct ReferenceBucketAccumulator: Sendable {
    private(set) var rows: [BucketKey: BucketStats] = [:]
    /// Polled requests in bucket −1 that had QUEUE_FLAG_STATS off / on, and those of the latter with 0 sectors.
    private var polledMinusOneStatsOff: UInt64 = 0
    private var polledMinusOneStatsOn: UInt64 = 0
    private var polledMinusOneZeroLength: UInt64 = 0

    init() {}

    /// Event path: takes RQ_START events, ignores every other kind.
    mutating func add(_ event: TraceEvent) {
        guard event.kind == EventKind.rqStart.rawValue else { return }
        add(bucket: event.bucket, bucketBySectors: event.bucket_by_sectors, ddir: event.ddir,
            nrSectors: event.nr_sectors, statsSectors: event.stats_sectors,
            polled: event.isPolled, queueStats: event.queueStatsSet)
    }

    /// Aggregate path: `count` identical request starts.
    mutating func add(bucket: Int8, bucketBySectors: Int8, ddir: UInt8, nrSectors: UInt32, statsSectors: UInt32,
                             polled: Bool, queueStats: Bool, count: UInt64 = 1) {
        guard count > 0 else { return }
        // Mutated in place: copying the row out and back would copy its dictionaries per request.
        rows[BucketKey(bucket: bucket, ddir: ddir), default: BucketStats()].add(
            bucket: bucket, bucketBySectors: bucketBySectors, nrSectors: nrSectors, statsSectors: statsSectors,
            polled: polled, queueStats: queueStats, count: count)
        if polled && bucket < 0 {
            if queueStats { polledMinusOneStatsOn += count } else { polledMinusOneStatsOff += count }
            if queueStats && nrSectors == 0 { polledMinusOneZeroLength += count }
        }
    }

    /// Adds everything another accumulator saw.
    mutating func merge(_ other: ReferenceBucketAccumulator) {
        for (key, stats) in other.rows { rows[key, default: BucketStats()].merge(stats) }
        polledMinusOneStatsOff += other.polledMinusOneStatsOff
        polledMinusOneStatsOn += other.polledMinusOneStatsOn
        polledMinusOneZeroLength += other.polledMinusOneZeroLength
    }

    /// Builds the report; rows show the `sizeLimit` most frequent sizes each.
    func report(completeness: TraceCompleteness = TraceCompleteness(), sizeLimit: Int = 4) -> BucketReport {
        let bucketRows = rows.sorted { $0.key < $1.key }.map { BucketRow(key: $0.key, stats: $0.value, sizeLimit: sizeLimit) }
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

/// What one CPU did; bounded memory (the timeline keeps the first and last `timelineLimit` transitions).
struct ReferenceCPUModeState: Sendable {
    init() {}

    var firstTs: UInt64?
    var lastTs: UInt64 = 0
    /// The mode the CPU is known to be in since `since`; nil until some event told us.
    var current: DPASMode?
    var since: UInt64 = 0
    var timeNs = [UInt64](repeating: 0, count: 5)
    var ios = [UInt64](repeating: 0, count: 5)
    var polled = [UInt64](repeating: 0, count: 5)
    var iosUnknownMode: UInt64 = 0
    var matrix = [[UInt64]](repeating: [UInt64](repeating: 0, count: 5), count: 5)
    var transitions: UInt64 = 0
    var unobservedChanges: UInt64 = 0
    var firstTransitions: [ModeTransition] = []
    /// Ring of the latest transitions; `lastStart` is the oldest entry once full.
    var lastTransitions: [ModeTransition] = []
    var lastStart = 0
    var kernelTotals: KernelModeTotals?

    mutating func seen(at ts: UInt64) {
        if firstTs == nil || ts < firstTs! { firstTs = ts }
        if ts > lastTs { lastTs = ts }
    }

    /// Closes the current mode's interval at `ts` and starts `mode`.
    mutating func enter(_ mode: DPASMode, at ts: UInt64) {
        if let current, let index = dpasModes.firstIndex(of: current) {
            timeNs[index] += ts > since ? ts - since : 0
        }
        current = mode
        since = ts
    }

    /// The CPU was in `mode` at `ts`: fills the span before the first knowledge, notices unseen changes.
    mutating func note(_ mode: DPASMode, at ts: UInt64) {
        seen(at: ts)
        guard let current else {
            self.current = mode
            since = firstTs ?? ts
            return
        }
        if current != mode {
            unobservedChanges += 1
            enter(mode, at: ts)
        }
    }

    mutating func transition(_ transition: ModeTransition, from: DPASMode, to: DPASMode, at ts: UInt64, limit: Int) {
        seen(at: ts)
        if current == nil, dpasModes.contains(from) {
            // Nothing seen before this transition: the CPU was in `from` since we first saw it.
            current = from
            since = firstTs ?? ts
        }
        if let fromIndex = dpasModes.firstIndex(of: from), let toIndex = dpasModes.firstIndex(of: to) {
            matrix[fromIndex][toIndex] += 1
        }
        if dpasModes.contains(to) { enter(to, at: ts) }
        record(transition, limit: limit)
    }

    /// A non-MODE event: extends the span, tells the mode if known, counts a request start.
    mutating func observe(_ event: TraceEvent) {
        seen(at: event.ts_ns)
        let mode = event.modeTo
        if mode != .unknown { note(mode, at: event.ts_ns) }
        if event.kind == EventKind.rqStart.rawValue { addIOs(mode: mode, count: 1, polled: event.isPolled ? 1 : 0) }
    }

    mutating func addIOs(mode: DPASMode, count: UInt64, polled: UInt64) {
        if let index = dpasModes.firstIndex(of: mode) {
            ios[index] += count
            self.polled[index] += polled
        } else {
            iosUnknownMode += count
        }
    }

    mutating func record(_ transition: ModeTransition, limit: Int) {
        transitions += 1
        if firstTransitions.count < limit {
            firstTransitions.append(transition)
        } else if lastTransitions.count < limit {
            lastTransitions.append(transition)
        } else if limit > 0 {
            lastTransitions[lastStart] = transition
            lastStart = (lastStart + 1) % limit
        }
    }

    /// The same state in the production type, for the report.
    var converted: CPUModeState {
        var state = CPUModeState()
        state.firstTs = firstTs
        state.lastTs = lastTs
        state.current = current
        state.since = since
        state.timeNs = ModeCounts(timeNs)
        state.ios = ModeCounts(ios)
        state.polled = ModeCounts(polled)
        state.iosUnknownMode = iosUnknownMode
        state.matrix = ModeMatrix(matrix)
        state.transitions = transitions
        state.unobservedChanges = unobservedChanges
        state.firstTransitions = firstTransitions
        state.lastTransitions = lastTransitions
        state.lastStart = lastStart
        state.kernelTotals = kernelTotals
        return state
    }

    var latestTransitions: [ModeTransition] {
        Array(lastTransitions[lastStart...] + lastTransitions[..<lastStart])
    }

    /// Time per mode including the still-open interval up to the last event.
    var timeIncludingOpenInterval: [UInt64] {
        var time = timeNs
        if let current, let index = dpasModes.firstIndex(of: current) { time[index] += lastTs > since ? lastTs - since : 0 }
        return time
    }
}

/// Streams DPAS mode information into per-CPU timelines, matrices and per-mode counts.
struct ReferenceModeAccumulator: Sendable {
    /// Transitions kept at the start and at the end of each CPU's timeline.
    let timelineLimit: Int
    private var cpus: [Int: ReferenceCPUModeState] = [:]

    init(timelineLimit: Int = 32) {
        self.timelineLimit = timelineLimit
    }

    /// Event path: MODE events are transitions; every event extends the CPU's observed time span;
    /// events carrying a known mode tell the CPU's mode; RQ_START events are counted per mode.
    mutating func add(_ event: TraceEvent) {
        if event.kind == EventKind.mode.rawValue {
            addTransition(cpu: Int(event.cpu), tsNs: event.ts_ns, from: event.modeFrom, to: event.modeTo,
                          avgQDx10: event.avg_qd_x10, tf: event.tf, windowIOs: event.window_ios)
            return
        }
        // One dictionary access per event: this runs for every event of a replay.
        cpus[Int(event.cpu), default: ReferenceCPUModeState()].observe(event)
    }

    /// The CPU was observed at `tsNs` (extends the span over which time in mode is measured).
    mutating func noteTime(cpu: Int, tsNs: UInt64) {
        cpus[cpu, default: ReferenceCPUModeState()].seen(at: tsNs)
    }

    /// The CPU was in `mode` at `tsNs` (e.g. read from `blk_switch.mode`).
    mutating func noteMode(cpu: Int, tsNs: UInt64, mode: DPASMode) {
        guard dpasModes.contains(mode) else { return }
        cpus[cpu, default: ReferenceCPUModeState()].note(mode, at: tsNs)
    }

    /// A transition from → to at `tsNs`, with the decision's inputs from the ended window.
    mutating func addTransition(cpu: Int, tsNs: UInt64, from: DPASMode, to: DPASMode,
                                       avgQDx10: UInt32, tf: UInt32, windowIOs: UInt32) {
        let transition = ModeTransition(tsNs: tsNs, from: from.name, to: to.name, avgQD: Double(avgQDx10) / 10,
                                        avgQDx10: avgQDx10, tf: tf, windowIOs: windowIOs)
        cpus[cpu, default: ReferenceCPUModeState()].transition(transition, from: from, to: to, at: tsNs, limit: timelineLimit)
    }

    /// `count` requests issued on `cpu` while it was in `mode` (`.unknown` when no DPAS state),
    /// `polled` of them marked for polling.
    mutating func addIOs(cpu: Int, mode: DPASMode, count: UInt64, polled: UInt64 = 0) {
        cpus[cpu, default: ReferenceCPUModeState()].addIOs(mode: mode, count: count, polled: polled)
    }

    /// The kernel's own totals for `cpu` (`cp_tot/pas_tot/ol_tot/int_tot`), shown beside the traced counts.
    mutating func setKernelTotals(cpu: Int, _ totals: KernelModeTotals) {
        cpus[cpu, default: ReferenceCPUModeState()].kernelTotals = totals
    }

    /// Builds the report.
    func report(completeness: TraceCompleteness = TraceCompleteness()) -> ModeReport {
        let cpuReports = cpus.sorted { $0.key < $1.key }.map { CPUModeReport(cpu: $0.key, state: $0.value.converted) }
        let dpasSeen = cpus.values.contains { $0.current != nil || $0.transitions > 0 || $0.kernelTotals != nil }
        var totals = ModeTotals()
        var time = [UInt64](repeating: 0, count: 5), ios = time, polled = time
        var matrix = [[UInt64]](repeating: [UInt64](repeating: 0, count: 5), count: 5)
        for state in cpus.values {
            totals.transitions += state.transitions
            totals.iosUnknownMode += state.iosUnknownMode
            let stateTime = state.timeIncludingOpenInterval
            for index in 0..<5 {
                time[index] += stateTime[index]
                ios[index] += state.ios[index]
                polled[index] += state.polled[index]
                for to in 0..<5 { matrix[index][to] += state.matrix[index][to] }
            }
        }
        // The kernel's own totals, summed over the CPUs that reported them (nil when none did).
        let kernel = cpus.values.compactMap(\.kernelTotals).reduce(nil as KernelModeTotals?) { sum, cpu in
            KernelModeTotals(cp: (sum?.cp ?? 0) + cpu.cp, pas: (sum?.pas ?? 0) + cpu.pas,
                             ol: (sum?.ol ?? 0) + cpu.ol, int: (sum?.int ?? 0) + cpu.int)
        }
        totals.modes = ModeShare.rows(time: time, ios: ios, polled: polled, kernel: kernel)
        totals.matrix = ModeReport.namedMatrix(matrix)
        return ModeReport(
            dpasSeen: dpasSeen,
            message: dpasSeen ? nil : "not a DPAS kernel: no mode state (struct blk_switch / irq_poll_switch absent)",
            cpus: cpuReports, totals: totals, lostEvents: completeness.lostEvents, warnings: completeness.warnings)
    }
}

