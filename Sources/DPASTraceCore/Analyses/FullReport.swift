// All three analyses over one event stream, and the report that holds them.

/// Routes each event to the three accumulators. Streaming: memory is bounded by the accumulators.
public struct TraceAnalyses: Sendable {
    public var sleepRatio: SleepRatioAccumulator
    public var buckets = BucketAccumulator()
    public var modes: ModeAccumulator

    public init(sleepPerCPU: Bool = false, timelineLimit: Int = 32) {
        sleepRatio = SleepRatioAccumulator(perCPU: sleepPerCPU)
        modes = ModeAccumulator(timelineLimit: timelineLimit)
    }

    public mutating func add(_ event: TraceEvent) {
        switch event.kind {
        case EventKind.hybridSleep.rawValue: sleepRatio.add(event)
        case EventKind.rqStart.rawValue: buckets.add(event)
        default: break
        }
        modes.add(event)
    }

    public mutating func add(contentsOf events: UnsafeBufferPointer<TraceEvent>) {
        for event in events { add(event) }
    }

    public func report(source: ReportSource? = nil, completeness: TraceCompleteness = TraceCompleteness()) -> FullReport {
        FullReport(source: source,
                   sleepRatio: sleepRatio.report(completeness: completeness),
                   buckets: buckets.report(completeness: completeness),
                   modes: modes.report(completeness: completeness),
                   lostEvents: completeness.lostEvents, warnings: completeness.warnings)
    }
}

/// Where the analysed events came from (a dump's header and trailer, or a live run).
public struct ReportSource: Codable, Sendable, Equatable {
    /// Dump path; nil for a live run.
    public var path: String?
    public var kernelRelease: String
    public var toolVersion: String
    /// Device filter of the recording; nil = all devices.
    public var device: String?
    public var events: UInt64
    /// Smallest and largest event timestamp (CLOCK_MONOTONIC ns) seen.
    public var firstTsNs: UInt64?
    public var lastTsNs: UInt64?
    /// Whether the recorder finished the dump (wrote its trailer).
    public var complete: Bool
    /// Why the recording ended or was written (flight recorder), when known.
    public var reason: String?
    /// The dump's note chunks in file order (the flight recorder says what its ring held).
    public var notes: [String]

    public init(path: String?, kernelRelease: String, toolVersion: String, device: String?, events: UInt64,
                firstTsNs: UInt64?, lastTsNs: UInt64?, complete: Bool, reason: String?, notes: [String] = []) {
        self.path = path
        self.kernelRelease = kernelRelease
        self.toolVersion = toolVersion
        self.device = device
        self.events = events
        self.firstTsNs = firstTsNs
        self.lastTsNs = lastTsNs
        self.complete = complete
        self.reason = reason
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case path, kernelRelease = "kernel_release", toolVersion = "tool_version", device, events
        case firstTsNs = "first_ts_ns", lastTsNs = "last_ts_ns", complete, reason, notes
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(kernelRelease, forKey: .kernelRelease)
        try container.encode(toolVersion, forKey: .toolVersion)
        try container.encode(device, forKey: .device)
        try container.encode(events, forKey: .events)
        try container.encode(firstTsNs, forKey: .firstTsNs)
        try container.encode(lastTsNs, forKey: .lastTsNs)
        try container.encode(complete, forKey: .complete)
        try container.encode(reason, forKey: .reason)
        try container.encode(notes, forKey: .notes)
    }
}

/// The three analyses of one trace, as `report DUMP` shows them.
public struct FullReport: Codable, Sendable, Equatable {
    public var source: ReportSource?
    public var sleepRatio: SleepRatioReport
    public var buckets: BucketReport
    public var modes: ModeReport
    public var lostEvents: LostEvents
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case source, sleepRatio = "sleep_ratio", buckets, modes, lostEvents = "lost_events", warnings
    }
}
