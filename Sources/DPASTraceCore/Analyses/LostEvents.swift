/// Events the kernel could not hand over (failed ring-buffer reservations), per CPU.
/// Every report carries this, so a table never looks complete when it is not.
public struct LostEvents: Codable, Sendable, Equatable {
    /// Lost events on all CPUs together.
    public var total: UInt64
    /// CPUs that lost events, ascending; CPUs with zero are left out.
    public var perCPU: [CPULoss]

    public struct CPULoss: Codable, Sendable, Equatable {
        public var cpu: Int
        public var lost: UInt64
    }

    public init() {
        total = 0
        perCPU = []
    }

    /// Builds the record from a per-CPU array (index = CPU), as dumps and BPF maps keep it.
    public init(perCPU counts: [UInt64]) {
        perCPU = counts.enumerated().filter { $0.element > 0 }.map { CPULoss(cpu: $0.offset, lost: $0.element) }
        total = counts.reduce(0, &+)
    }

    /// Builds the record from CPU → count.
    public init(perCPU counts: [Int: UInt64]) {
        perCPU = counts.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { CPULoss(cpu: $0.key, lost: $0.value) }
        total = counts.values.reduce(0, &+)
    }

    enum CodingKeys: String, CodingKey { case total, perCPU = "per_cpu" }
}

/// How complete the traced data is: lost events plus warnings about the source
/// (a damaged dump, a dump without trailer, a hook that could not be attached).
/// Attached to every report and printed by every renderer.
public struct TraceCompleteness: Codable, Sendable, Equatable {
    public var lostEvents: LostEvents
    /// One sentence each, for people: what is missing and what it means for the numbers.
    public var warnings: [String]

    public init(lostEvents: LostEvents = LostEvents(), warnings: [String] = []) {
        self.lostEvents = lostEvents
        self.warnings = warnings
    }

    enum CodingKeys: String, CodingKey { case lostEvents = "lost_events", warnings }
}
