/// `dpas-trace record --ring SIZE`: keeps only the most recent events in a bounded ring and writes
/// them as an ordinary dump when asked (SIGUSR1, exit) or when a trigger fires. The dump's header
/// and trailer say why and when it was written.
public struct FlightRecorder {
    public private(set) var ring: EventRing
    private var watch: TriggerWatch
    /// Dumps written so far (the next one gets a numbered name when more than one is written).
    public private(set) var dumpsWritten = 0

    public init(ringBytes: UInt64, triggers: [Trigger]) {
        ring = EventRing(bytes: ringBytes)
        watch = TriggerWatch(triggers)
    }

    /// Keeps `event`; returns the trigger it fires, with a sentence saying why, if any.
    public mutating func record(_ event: TraceEvent, lostTotal: UInt64) -> (trigger: Trigger, why: String)? {
        ring.append(event)
        return watch.check(event, lostTotal: lostTotal)
    }

    /// Where dump number `index` (0-based) goes: `run.dpt`, then `run.1.dpt`, `run.2.dpt` …
    public static func path(for base: String, index: Int) -> String {
        guard index > 0 else { return base }
        if base.hasSuffix(".dpt") { return String(base.dropLast(4)) + ".\(index).dpt" }
        return base + ".\(index)"
    }

    /// Writes the ring, oldest event first, to the next dump path; the ring is emptied so a later
    /// dump holds only what came after. Returns the path written.
    @discardableResult
    public mutating func writeDump(base: String, header: DumpHeader, reason: String, lostPerCPU: [UInt64],
                                   notes: [String] = []) throws -> String {
        let path = Self.path(for: base, index: dumpsWritten)
        var header = header
        header.reason = reason
        let writer = try DumpWriter(path: path, header: header)
        try ring.withOrderedRuns { try writer.append(contentsOf: $0) }
        try writer.note("flight recorder: the ring held the last \(ring.count) events (room for \(ring.capacity)); "
            + "\(ring.overwritten) older events were overwritten by design before this dump")
        for note in notes { try writer.note(note) }
        try writer.recordLost(perCPU: lostPerCPU)
        try writer.finish(reason: reason)
        ring.removeAll()
        dumpsWritten += 1
        return path
    }
}
