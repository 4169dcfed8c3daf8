// Sleep-ratio analysis: does the hybrid-polling task really sleep for the duration it asks for?
//
// Input is one observation per resolved hybrid-sleep attempt (a HYBRID_SLEEP event, or counts the
// kernel side aggregated in per-CPU maps). Rows are keyed by the requested sleep: the exact value
// while at most 16 distinct values occur (DPAS's d_init gives a handful), log2 ranges otherwise.

/// Which requested sleeps a row covers.
public enum SleepRowKey: Hashable, Comparable, Sendable {
    /// Exactly this many nanoseconds.
    case exact(UInt64)
    /// [2^k, 2^(k+1)) nanoseconds; row 0 also holds a request of 0 ns.
    case log2(Int)

    /// The log2 row a requested sleep falls into.
    public static func log2Row(of ns: UInt64) -> Int { ns < 2 ? 0 : 63 - ns.leadingZeroBitCount }

    /// Smallest and largest requested sleep the row covers.
    public var bounds: (min: UInt64, max: UInt64) {
        switch self {
        case .exact(let ns): return (ns, ns)
        case .log2(let k):
            let low: UInt64 = k == 0 ? 0 : UInt64(1) << UInt64(k)
            let high: UInt64 = k >= 63 ? UInt64.max : (UInt64(1) << UInt64(k + 1)) - 1
            return (low, high)
        }
    }

    public static func < (lhs: SleepRowKey, rhs: SleepRowKey) -> Bool {
        switch (lhs, rhs) {
        case (.exact(let a), .exact(let b)): return a < b
        case (.log2(let a), .log2(let b)): return a < b
        case (.exact, .log2): return true
        case (.log2, .exact): return false
        }
    }
}

/// Counts and histograms of the attempts that requested one sleep duration (one row).
public struct SleepStats: Sendable, Equatable {
    /// The task really switched out while its sleeper was armed.
    public var slept: UInt64 = 0
    /// The timer fired (or was cancelled) before the task yielded.
    public var noSleep: UInt64 = 0
    /// The recorder could not tell (outcome unknown); counted as attempts, left out of the ratio.
    public var unknown: UInt64 = 0
    /// Slept attempts that woke before the requested time (their oversleep is counted as 0).
    public var wokeEarly: UInt64 = 0
    /// Attempts whose timer fired while it was being armed, so the loop skipped io_schedule (the
    /// seed's third hunt; no sleep). 0 where the arm cannot be hooked (its plan entry says so).
    public var firedDuringArm: UInt64 = 0
    /// Actual time asleep of the slept attempts.
    public var actualSleep = LatencyHistogram()
    /// Actual − requested sleep of the slept attempts, clamped at 0.
    public var oversleep = LatencyHistogram()

    public init() {}

    public var attempts: UInt64 { slept + noSleep + unknown }

    /// slept / (slept + no_sleep); nil when no attempt was resolved.
    public var sleepRatio: Double? {
        let resolved = slept + noSleep
        return resolved == 0 ? nil : Double(slept) / Double(resolved)
    }

    /// Records `count` identical attempts.
    public mutating func add(requestedNs: UInt64, outcome: SleepOutcome, actualNs: UInt64, count: UInt64 = 1,
                             firedDuringArm: Bool = false) {
        switch outcome {
        case .slept:
            slept += count
            actualSleep.add(actualNs, times: count)
            if actualNs < requestedNs { wokeEarly += count }
            oversleep.add(actualNs >= requestedNs ? actualNs - requestedNs : 0, times: count)
        case .noSleep:
            noSleep += count
            if firedDuringArm { self.firedDuringArm += count }
        case .unknown:
            unknown += count
        }
    }

    public mutating func merge(_ other: SleepStats) {
        slept += other.slept
        noSleep += other.noSleep
        unknown += other.unknown
        wokeEarly += other.wokeEarly
        firedDuringArm += other.firedDuringArm
        actualSleep.merge(other.actualSleep)
        oversleep.merge(other.oversleep)
    }
}

/// The verdict on one row (or the whole run), from its sleep ratio.
public enum SleepVerdict: String, Codable, Sendable {
    case never, barely, sometimes, normal, unresolved

    public init(ratio: Double?, slept: UInt64) {
        guard let ratio else { self = .unresolved; return }
        if slept == 0 { self = .never } else if ratio < 0.05 { self = .barely } else if ratio < 0.90 { self = .sometimes } else { self = .normal }
    }

    /// Short label for table cells (the seed's wording).
    public var label: String {
        switch self {
        case .never: "Never sleeps"
        case .barely: "Barely sleeps"
        case .sometimes: "Sleeps sometimes"
        case .normal: "Normal sleep"
        case .unresolved: "Unknown"
        }
    }

    /// The verdict in words, with the cause and the fix where there is one.
    public var sentence: String {
        let words = switch self {
        case .never: "never sleeps"
        case .barely: "barely sleeps"
        case .sometimes: "sleeps sometimes"
        case .normal: "sleeps normally"
        case .unresolved: "unknown"
        }
        return "\(words): \(explanation)"
    }

    /// Why, and the fix where there is one.
    public var explanation: String {
        switch self {
        case .never:
            "the timer expires while it is being armed, so io_schedule() is skipped (see the seed's fix 3: call io_schedule() unconditionally)"
        case .barely:
            "the timer nearly always expires while it is being armed, so the task keeps the CPU (see the seed's fix 3: call io_schedule() unconditionally)"
        case .sometimes:
            "arming the timer often takes longer than the requested sleep, so many attempts never yield the CPU"
        case .normal:
            "the task yields the CPU for nearly every requested sleep"
        case .unresolved:
            "the recording could not tell whether these attempts slept"
        }
    }
}

/// The rows of one scope (all CPUs, or one CPU), kept without hashing: the exact rows (at most
/// 17) in first-seen order with the last hit cached, since DPAS's requested durations repeat;
/// the log2 rows through a 64-entry slot table (rows outside 0…63 only come from aggregate callers).
struct SleepRowSet: PerCPUState {
    init() {}

    private(set) var exactKeys: [UInt64] = []
    private(set) var exactStats: [SleepStats] = []
    private var lastExact = 0
    private(set) var log2Keys: [Int] = []
    private(set) var log2Stats: [SleepStats] = []
    /// log2 row k (0…63) → index in log2Keys/log2Stats, −1 when absent.
    private var log2Slots = [Int32](repeating: -1, count: 64)

    var exactCount: Int { exactKeys.count }

    @inline(__always)
    func containsExact(_ ns: UInt64) -> Bool {
        (lastExact < exactKeys.count && exactKeys[lastExact] == ns) || exactKeys.contains(ns)
    }

    /// Index of the exact row `ns`, created when absent.
    @inline(__always)
    private mutating func exactIndex(_ ns: UInt64) -> Int {
        if lastExact < exactKeys.count && exactKeys[lastExact] == ns { return lastExact }
        if let index = exactKeys.firstIndex(of: ns) {
            lastExact = index
            return index
        }
        exactKeys.append(ns)
        exactStats.append(SleepStats())
        lastExact = exactKeys.count - 1
        return lastExact
    }

    /// Index of the log2 row `k`, created when absent.
    @inline(__always)
    private mutating func log2Index(_ k: Int) -> Int {
        if k >= 0 && k < 64 {
            let slot = Int(log2Slots[k])
            if slot >= 0 { return slot }
            log2Slots[k] = Int32(log2Keys.count)
        } else if let index = log2Keys.firstIndex(of: k) {
            return index
        }
        log2Keys.append(k)
        log2Stats.append(SleepStats())
        return log2Keys.count - 1
    }

    @inline(__always)
    mutating func addExact(_ ns: UInt64, outcome: SleepOutcome, actualNs: UInt64, count: UInt64, firedDuringArm: Bool) {
        exactStats[exactIndex(ns)].add(requestedNs: ns, outcome: outcome, actualNs: actualNs, count: count,
                                       firedDuringArm: firedDuringArm)
    }

    @inline(__always)
    mutating func addLog2(_ k: Int, requestedNs: UInt64, outcome: SleepOutcome, actualNs: UInt64, count: UInt64,
                          firedDuringArm: Bool) {
        log2Stats[log2Index(k)].add(requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count,
                                    firedDuringArm: firedDuringArm)
    }

    mutating func mergeExact(_ ns: UInt64, _ stats: SleepStats) { exactStats[exactIndex(ns)].merge(stats) }
    mutating func mergeLog2(_ k: Int, _ stats: SleepStats) { log2Stats[log2Index(k)].merge(stats) }

    /// Gives up the exact view: each exact row is merged into its log2 row.
    mutating func foldExactIntoLog2() {
        for (ns, stats) in zip(exactKeys, exactStats) { mergeLog2(SleepRowKey.log2Row(of: ns), stats) }
        exactKeys = []
        exactStats = []
        lastExact = 0
    }

    var exactRows: [(key: UInt64, stats: SleepStats)] {
        zip(exactKeys, exactStats).map { (key: $0.0, stats: $0.1) }.sorted { $0.key < $1.key }
    }

    var log2Rows: [(key: Int, stats: SleepStats)] {
        zip(log2Keys, log2Stats).map { (key: $0.0, stats: $0.1) }.sorted { $0.key < $1.key }
    }
}

/// Streams hybrid-sleep observations into sleep-ratio rows. Memory is bounded: at most 17 exact
/// rows and 64 log2 rows (per CPU when split), whatever the number of observations.
public struct SleepRatioAccumulator: Sendable {
    /// Up to this many distinct requested durations get a row each; beyond, log2 ranges are used.
    public static let maxExactValues = 16

    /// Whether per-CPU rows are kept (costs a row set per CPU).
    public let splitPerCPU: Bool
    /// True once more than `maxExactValues` distinct durations occurred (or rows arrived as log2 only).
    public private(set) var exactOverflow = false

    private var all = SleepRowSet()
    private var byCPU = PerCPU<SleepRowSet>()

    public init(perCPU: Bool = false) {
        splitPerCPU = perCPU
    }

    /// Event path: takes HYBRID_SLEEP events, ignores every other kind.
    @inline(__always)
    public mutating func add(_ event: TraceEvent) {
        guard event.kind == EventKind.hybridSleep.rawValue else { return }
        record(cpu: Int(event.cpu), requestedNs: event.sleep_requested_ns, outcome: event.sleepOutcome,
               actualNs: event.slept_ns, count: 1, firedDuringArm: event.firedDuringArm)
    }

    /// Aggregate path: `count` identical attempts (for the kernel side's per-CPU counters).
    public mutating func add(cpu: Int, requestedNs: UInt64, slept: Bool, actualNs: UInt64, count: UInt64 = 1) {
        record(cpu: cpu, requestedNs: requestedNs, outcome: slept ? .slept : .noSleep, actualNs: actualNs, count: count,
               firedDuringArm: false)
    }

    /// Aggregate path: adds pre-aggregated stats for one row. A `.log2` row gives up the exact view.
    /// Feed every observation exactly once, through one of the two kinds.
    public mutating func merge(cpu: Int, key: SleepRowKey, stats: SleepStats) {
        switch key {
        case .exact(let ns):
            noteExact(ns)
            if exactOverflow {
                mergeLog2(cpu: cpu, row: SleepRowKey.log2Row(of: ns), stats: stats)
            } else {
                all.mergeExact(ns, stats)
                if splitPerCPU { byCPU.update(cpu) { $0.mergeExact(ns, stats) } }
            }
        case .log2(let k):
            markExactOverflow()
            mergeLog2(cpu: cpu, row: k, stats: stats)
        }
    }

    /// Gives up the exact view (more distinct durations than it keeps, or rows that came as log2
    /// only): the exact rows so far become log2 rows, and later observations go to log2 rows only.
    /// Until then every observation is in exactly one exact row and the log2 rows are empty.
    public mutating func markExactOverflow() {
        guard !exactOverflow else { return }
        exactOverflow = true
        all.foldExactIntoLog2()
        byCPU.updateAll { $0.foldExactIntoLog2() }
    }

    /// Adds everything another accumulator saw.
    public mutating func merge(_ other: SleepRatioAccumulator) {
        if other.exactOverflow { markExactOverflow() }
        // The other's exact rows (empty once it overflowed); this side may overflow on the way.
        for (ns, stats) in other.all.exactRows {
            noteExact(ns)
            if exactOverflow { all.mergeLog2(SleepRowKey.log2Row(of: ns), stats) } else { all.mergeExact(ns, stats) }
        }
        let otherCPUs = other.byCPU.sorted
        if splitPerCPU {
            for (cpu, rows) in otherCPUs {
                for (ns, stats) in zip(rows.exactKeys, rows.exactStats) {
                    if exactOverflow {
                        byCPU.update(cpu) { $0.mergeLog2(SleepRowKey.log2Row(of: ns), stats) }
                    } else {
                        byCPU.update(cpu) { $0.mergeExact(ns, stats) }
                    }
                }
            }
        }
        for (k, stats) in zip(other.all.log2Keys, other.all.log2Stats) { all.mergeLog2(k, stats) }
        if splitPerCPU {
            for (cpu, rows) in otherCPUs {
                for (k, stats) in zip(rows.log2Keys, rows.log2Stats) { byCPU.update(cpu) { $0.mergeLog2(k, stats) } }
            }
        }
    }

    /// Each observation updates one row per scope: its exact row, or once the exact view is
    /// given up, its log2 row (the log2 view is built from the exact rows only when needed).
    @inline(__always)
    private mutating func record(cpu: Int, requestedNs: UInt64, outcome: SleepOutcome, actualNs: UInt64, count: UInt64,
                                 firedDuringArm: Bool) {
        guard count > 0 else { return }
        noteExact(requestedNs)
        if !exactOverflow {
            all.addExact(requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
            if splitPerCPU {
                byCPU.update(cpu) {
                    $0.addExact(requestedNs, outcome: outcome, actualNs: actualNs, count: count, firedDuringArm: firedDuringArm)
                }
            }
            return
        }
        let row = SleepRowKey.log2Row(of: requestedNs)
        all.addLog2(row, requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count,
                    firedDuringArm: firedDuringArm)
        if splitPerCPU {
            byCPU.update(cpu) {
                $0.addLog2(row, requestedNs: requestedNs, outcome: outcome, actualNs: actualNs, count: count,
                           firedDuringArm: firedDuringArm)
            }
        }
    }

    /// Overflows the exact view when `ns` would be its 17th distinct value.
    @inline(__always)
    private mutating func noteExact(_ ns: UInt64) {
        if !exactOverflow && all.exactCount >= Self.maxExactValues && !all.containsExact(ns) { markExactOverflow() }
    }

    private mutating func mergeLog2(cpu: Int, row: Int, stats: SleepStats) {
        all.mergeLog2(row, stats)
        if splitPerCPU { byCPU.update(cpu) { $0.mergeLog2(row, stats) } }
    }

    /// The rows as reported: exact when possible, log2 otherwise.
    public var rows: [(key: SleepRowKey, stats: SleepStats)] {
        exactOverflow ? all.log2Rows.map { (SleepRowKey.log2($0.key), $0.stats) }
            : all.exactRows.map { (SleepRowKey.exact($0.key), $0.stats) }
    }

    /// Builds the report; `completeness` says what the source lost.
    public func report(completeness: TraceCompleteness = TraceCompleteness()) -> SleepRatioReport {
        let rows = self.rows.map { SleepRatioRow(cpu: nil, key: $0.key, stats: $0.stats) }
        var perCPU: [SleepRatioRow]? = nil
        if splitPerCPU {
            perCPU = []
            for (cpu, set) in byCPU.sorted {
                if exactOverflow {
                    perCPU! += set.log2Rows.map { SleepRatioRow(cpu: cpu, key: .log2($0.key), stats: $0.stats) }
                } else {
                    perCPU! += set.exactRows.map { SleepRatioRow(cpu: cpu, key: .exact($0.key), stats: $0.stats) }
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

/// One row of the sleep-ratio table.
public struct SleepRatioRow: Codable, Sendable, Equatable {
    /// Set in per-CPU rows only.
    public var cpu: Int?
    /// Exact rows: the requested sleep.
    public var requestedNs: UInt64?
    /// Log2 rows: the range of requested sleeps covered (inclusive).
    public var requestedMinNs: UInt64?
    public var requestedMaxNs: UInt64?
    public var attempts: UInt64
    public var slept: UInt64
    public var noSleep: UInt64
    public var unknown: UInt64
    public var wokeEarly: UInt64
    /// No-sleep attempts whose timer fired while it was being armed (io_schedule skipped).
    public var firedDuringArm: UInt64
    /// slept / (slept + no_sleep), 0…1; nil when no attempt was resolved.
    public var sleepRatio: Double?
    public var actualSleep: LatencySummary
    public var oversleep: LatencySummary
    public var verdictCode: SleepVerdict
    public var verdict: String

    public init(cpu: Int?, key: SleepRowKey, stats: SleepStats) {
        self.cpu = cpu
        switch key {
        case .exact(let ns): requestedNs = ns
        case .log2: (requestedMinNs, requestedMaxNs) = key.bounds
        }
        attempts = stats.attempts
        slept = stats.slept
        noSleep = stats.noSleep
        unknown = stats.unknown
        wokeEarly = stats.wokeEarly
        firedDuringArm = stats.firedDuringArm
        sleepRatio = stats.sleepRatio
        actualSleep = stats.actualSleep.summary
        oversleep = stats.oversleep.summary
        verdictCode = SleepVerdict(ratio: stats.sleepRatio, slept: stats.slept)
        verdict = verdictCode.sentence
    }

    enum CodingKeys: String, CodingKey {
        case cpu, requestedNs = "requested_ns", requestedMinNs = "requested_min_ns", requestedMaxNs = "requested_max_ns"
        case attempts, slept, noSleep = "no_sleep", unknown, wokeEarly = "woke_early", firedDuringArm = "fired_during_arm", sleepRatio = "sleep_ratio"
        case actualSleep = "actual_sleep", oversleep, verdictCode = "verdict_code", verdict
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(cpu, forKey: .cpu)
        try container.encodeIfPresent(requestedNs, forKey: .requestedNs)
        try container.encodeIfPresent(requestedMinNs, forKey: .requestedMinNs)
        try container.encodeIfPresent(requestedMaxNs, forKey: .requestedMaxNs)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(slept, forKey: .slept)
        try container.encode(noSleep, forKey: .noSleep)
        try container.encode(unknown, forKey: .unknown)
        try container.encode(wokeEarly, forKey: .wokeEarly)
        try container.encode(firedDuringArm, forKey: .firedDuringArm)
        try container.encode(sleepRatio, forKey: .sleepRatio)
        try container.encode(actualSleep, forKey: .actualSleep)
        try container.encode(oversleep, forKey: .oversleep)
        try container.encode(verdictCode, forKey: .verdictCode)
        try container.encode(verdict, forKey: .verdict)
    }

    /// "100", or "[2,048, 4,095]" style bounds for log2 rows — for tables and sentences.
    public var requestedLabel: String {
        if let requestedNs { return Format.count(requestedNs) }
        return "\(Format.count(requestedMinNs ?? 0))–\(Format.count(requestedMaxNs ?? 0))"
    }
}

/// Sums over all rows.
public struct SleepRatioTotals: Codable, Sendable, Equatable {
    public var attempts: UInt64
    public var slept: UInt64
    public var noSleep: UInt64
    public var unknown: UInt64
    public var wokeEarly: UInt64
    /// No-sleep attempts whose timer fired while it was being armed (io_schedule skipped).
    public var firedDuringArm: UInt64
    public var sleepRatio: Double?
    public var actualSleep: LatencySummary
    public var oversleep: LatencySummary
    /// Events lost by the recorder (all kinds, all CPUs): these attempts may be missing above.
    public var lostEvents: UInt64

    init(stats: SleepStats, lostEvents: UInt64) {
        attempts = stats.attempts
        slept = stats.slept
        noSleep = stats.noSleep
        unknown = stats.unknown
        wokeEarly = stats.wokeEarly
        firedDuringArm = stats.firedDuringArm
        sleepRatio = stats.sleepRatio
        actualSleep = stats.actualSleep.summary
        oversleep = stats.oversleep.summary
        self.lostEvents = lostEvents
    }

    enum CodingKeys: String, CodingKey {
        case attempts, slept, noSleep = "no_sleep", unknown, wokeEarly = "woke_early", firedDuringArm = "fired_during_arm", sleepRatio = "sleep_ratio"
        case actualSleep = "actual_sleep", oversleep, lostEvents = "lost_events"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(slept, forKey: .slept)
        try container.encode(noSleep, forKey: .noSleep)
        try container.encode(unknown, forKey: .unknown)
        try container.encode(wokeEarly, forKey: .wokeEarly)
        try container.encode(firedDuringArm, forKey: .firedDuringArm)
        try container.encode(sleepRatio, forKey: .sleepRatio)
        try container.encode(actualSleep, forKey: .actualSleep)
        try container.encode(oversleep, forKey: .oversleep)
        try container.encode(lostEvents, forKey: .lostEvents)
    }
}

/// The sleep-ratio analysis result.
public struct SleepRatioReport: Codable, Sendable, Equatable {
    public enum RowKind: String, Codable, Sendable { case exact, log2 }

    /// `exact`: one row per requested duration; `log2`: rows are [2^k, 2^(k+1)) ranges.
    public var rowKind: RowKind
    public var rows: [SleepRatioRow]
    /// Per-CPU rows (each with `cpu`), nil unless a per-CPU split was asked for.
    public var perCPU: [SleepRatioRow]?
    public var totals: SleepRatioTotals
    /// One sentence on the whole run.
    public var verdict: String
    public var lostEvents: LostEvents
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case rowKind = "row_kind", rows, perCPU = "per_cpu", totals, verdict, lostEvents = "lost_events", warnings
    }

    static func overallVerdict(rows: [SleepRatioRow], totals: SleepRatioTotals) -> String {
        guard totals.attempts > 0 else {
            return "no hybrid sleep attempts traced: hybrid polling needs io_poll_delay ≥ 0, poll queues and polled (RWF_HIPRI) I/O (see the seed's fix 2)"
        }
        let overall = SleepVerdict(ratio: totals.sleepRatio, slept: totals.slept)
        var sentence = "\(Format.percent(totals.sleepRatio)) of \(Format.count(totals.attempts)) sleep attempts slept (\(overall.label.lowercased()))"
        let never = rows.filter { $0.verdictCode == .never }.map(\.requestedLabel)
        let barely = rows.filter { $0.verdictCode == .barely }.map(\.requestedLabel)
        var short: [String] = []
        if !never.isEmpty { short.append("requested \(never.joined(separator: ", ")) ns never sleep\(never.count == 1 ? "s" : "")") }
        if !barely.isEmpty { short.append("\(never.isEmpty ? "requested " : "")\(barely.joined(separator: ", ")) ns barely sleep\(barely.count == 1 ? "s" : "")") }
        if !short.isEmpty {
            sentence += "; \(short.joined(separator: " and ")): the timer expires while it is being armed, so io_schedule() is skipped (see the seed's fix 3: call io_schedule() unconditionally)"
        }
        // The evidence, where the arm was hooked: attempts seen firing before the arm returned.
        if totals.firedDuringArm > 0 {
            sentence += "; \(Format.count(totals.firedDuringArm)) of the \(Format.count(totals.noSleep)) no-sleep attempts had their timer fire while it was being armed"
        }
        return sentence
    }
}
