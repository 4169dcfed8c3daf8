// PAS sleep state: per CPU and bucket, what DPAS's PAS duration (`blk_rq_pas_stat.dur`) did.
//
// Input: PAS_STATE events, one per change of a bucket's duration or last results on a CPU.
// The point is to make the duration's collapse to `pas_d_init` (the timer floor) visible.

/// One (CPU, bucket) row.
public struct PASBucketState: Codable, Sendable, Equatable {
    public var cpu: Int
    public var bucket: Int
    /// Disk dev_t "major:minor" of the queue.
    public var device: String
    /// Current duration and the range it moved in, ns.
    public var durNs: UInt64
    public var firstDurNs: UInt64
    public var minDurNs: UInt64
    public var maxDurNs: UInt64
    /// Changes seen (PAS_STATE events).
    public var updates: UInt64
    /// The last two sleep results, newest first ("overslept", "underslept", "none").
    public var lastResult: String
    public var previousResult: String
    /// Changes that came with a timer-floor hit (the duration clamped to pas_d_init).
    public var timerFloorHits: UInt64
    /// The CPU's tf counter (blk_switch.tf, current mode window) at the last change.
    public var tf: UInt32
    /// Whether the current duration equals pas_d_init; nil when pas_d_init is unknown.
    public var atFloor: Bool?

    enum CodingKeys: String, CodingKey {
        case cpu, bucket, device, durNs = "dur_ns", firstDurNs = "first_dur_ns", minDurNs = "min_dur_ns"
        case maxDurNs = "max_dur_ns", updates, lastResult = "last_result", previousResult = "previous_result"
        case timerFloorHits = "timer_floor_hits", tf, atFloor = "at_floor"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpu, forKey: .cpu)
        try container.encode(bucket, forKey: .bucket)
        try container.encode(device, forKey: .device)
        try container.encode(durNs, forKey: .durNs)
        try container.encode(firstDurNs, forKey: .firstDurNs)
        try container.encode(minDurNs, forKey: .minDurNs)
        try container.encode(maxDurNs, forKey: .maxDurNs)
        try container.encode(updates, forKey: .updates)
        try container.encode(lastResult, forKey: .lastResult)
        try container.encode(previousResult, forKey: .previousResult)
        try container.encode(timerFloorHits, forKey: .timerFloorHits)
        try container.encode(tf, forKey: .tf)
        try container.encode(atFloor, forKey: .atFloor)
    }
}

/// The PAS state report: rows by CPU and bucket, or why there are none.
public struct PASStateReport: Codable, Sendable, Equatable {
    /// `pas_d_init` of the traced queue (ns), when known (from sysfs).
    public var dInitNs: UInt64?
    public var rows: [PASBucketState]
    /// Set when there is nothing to show, saying why.
    public var message: String?
    public var warnings: [String]

    enum CodingKeys: String, CodingKey { case dInitNs = "d_init_ns", rows, message, warnings }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(dInitNs, forKey: .dInitNs)
        try container.encode(rows, forKey: .rows)
        try container.encode(message, forKey: .message)
        try container.encode(warnings, forKey: .warnings)
    }
}

/// Collects PAS_STATE events into per-(CPU, bucket) rows; ignores every other event.
public struct PASStateAccumulator: Sendable {
    private struct Key: Hashable, Comparable {
        var cpu: Int, bucket: Int
        static func < (a: Key, b: Key) -> Bool { (a.cpu, a.bucket) < (b.cpu, b.bucket) }
    }
    private var rows: [Key: PASBucketState] = [:]

    public init() {}

    public mutating func add(_ event: TraceEvent) {
        guard event.kind == EventKind.pasState.rawValue else { return }
        let key = Key(cpu: Int(event.cpu), bucket: Int(event.bucket))
        let dur = event.pas_dur_ns
        let (last, previous) = event.pasLastResults
        var row = rows[key] ?? PASBucketState(
            cpu: key.cpu, bucket: key.bucket, device: event.deviceName, durNs: dur, firstDurNs: dur, minDurNs: dur,
            maxDurNs: dur, updates: 0, lastResult: last.name, previousResult: previous.name, timerFloorHits: 0, tf: 0)
        row.durNs = dur
        row.minDurNs = min(row.minDurNs, dur)
        row.maxDurNs = max(row.maxDurNs, dur)
        row.updates += 1
        row.lastResult = last.name
        row.previousResult = previous.name
        if event.pasTimerFloor { row.timerFloorHits += 1 }
        row.tf = event.tf
        row.device = event.deviceName
        rows[key] = row
    }

    /// The report; `dInitNs` marks rows sitting at the floor, `unavailable` explains an empty report.
    public func report(dInitNs: UInt64?, unavailable: String? = nil, warnings: [String] = []) -> PASStateReport {
        var sorted = rows.sorted { $0.key < $1.key }.map(\.value)
        if let dInitNs {
            for index in sorted.indices { sorted[index].atFloor = sorted[index].durNs == dInitNs }
        }
        let message = sorted.isEmpty
            ? (unavailable ?? "no PAS state changes seen (no polled I/O took the PAS path while tracing)") : nil
        return PASStateReport(dInitNs: dInitNs, rows: sorted, message: message, warnings: warnings)
    }
}
