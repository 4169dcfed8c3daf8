import CDPASEvents

/// Streams events into a Perfetto trace (protobuf `Trace` = repeated `TracePacket`, TrackEvent
/// flavour) that ui.perfetto.dev opens directly. Memory is bounded by the number of CPUs and
/// polling threads, never by the number of events.
///
/// Tracks, grouped under one parent track per CPU:
/// - `hybrid sleeps tid N`: one slice per sleep attempt, armed → resolved, named "slept" or
///   "no sleep", with requested and actual durations as arguments (one track per thread, because
///   two polling threads on one CPU can have overlapping sleeps and slices on a track must nest);
/// - `DPAS mode`: one slice per mode period;
/// - counters `avg QD` (at each DPAS decision), `requested sleep ns` and `I/O latency ns`.
public struct PerfettoExporter {
    private let sink: ([UInt8]) throws -> Void
    private var buffer = ProtobufWriter()
    private var packet = ProtobufWriter()
    private var startedSequence = false
    private var describedCPUs = Set<UInt32>()
    private var describedSleepTracks = Set<UInt64>()
    private var openMode: [UInt32: UInt8] = [:]
    private var lastTimestamp: UInt64 = 0
    public private(set) var packetsWritten = 0

    /// Field numbers from perfetto/protos/perfetto/trace/{trace_packet,track_event/*}.proto.
    private enum Field {
        static let tracePacket = 1
        static let timestamp = 8, trustedSequenceID = 10, trackEvent = 11, sequenceFlags = 13
        static let trackDescriptor = 60
        // TrackDescriptor
        static let uuid = 1, name = 2, parentUUID = 5, counter = 8
        // CounterDescriptor
        static let counterUnit = 3
        // TrackEvent
        static let debugAnnotations = 4, type = 9, trackUUID = 11, eventName = 23, counterValue = 30
        static let doubleCounterValue = 44
        // DebugAnnotation
        static let annotationBool = 2, annotationUInt = 3, annotationString = 6, annotationName = 10
    }

    private enum EventType: UInt64 { case sliceBegin = 1, sliceEnd = 2, instant = 3, counter = 4 }
    private enum CounterUnit: UInt64 { case timeNs = 1, count = 2 }

    private static let sequenceID: UInt64 = 1
    private static let incrementalStateCleared: UInt64 = 1

    private static func cpuTrack(_ cpu: UInt32) -> UInt64 { 0x1000_0000 + UInt64(cpu) }
    private static func modeTrack(_ cpu: UInt32) -> UInt64 { 0x2000_0000 + UInt64(cpu) }
    private static func queueDepthTrack(_ cpu: UInt32) -> UInt64 { 0x3000_0000 + UInt64(cpu) }
    private static func requestedSleepTrack(_ cpu: UInt32) -> UInt64 { 0x4000_0000 + UInt64(cpu) }
    private static func latencyTrack(_ cpu: UInt32) -> UInt64 { 0x6000_0000 + UInt64(cpu) }
    private static func sleepTrack(_ cpu: UInt32, _ tid: UInt32) -> UInt64 {
        0x5000_0000_0000_0000 | UInt64(cpu) << 32 | UInt64(tid)
    }

    /// `sink` receives the encoded trace in pieces, in order; concatenated they form one file.
    public init(sink: @escaping ([UInt8]) throws -> Void) {
        self.sink = sink
    }

    public mutating func consume(_ event: TraceEvent) throws {
        lastTimestamp = max(lastTimestamp, event.ts_ns)
        switch event.kind {
        case UInt32(DPT_EV_HYBRID_SLEEP.rawValue):
            describeCPU(event.cpu)
            let track = Self.sleepTrack(event.cpu, event.tid)
            if describedSleepTracks.insert(track).inserted {
                describeTrack(uuid: track, name: "hybrid sleeps tid \(event.tid)", parent: Self.cpuTrack(event.cpu))
            }
            let begin = event.sleep_armed_ns != 0 && event.sleep_armed_ns <= event.ts_ns ? event.sleep_armed_ns : event.ts_ns
            let slept = event.outcome == UInt8(DPT_SLEEP_SLEPT.rawValue)
            trackEvent(at: begin, track: track, type: .sliceBegin, name: slept ? "slept" : "no sleep") { e in
                Self.annotate(&e, "requested_ns", event.sleep_requested_ns)
                Self.annotate(&e, "slept_ns", event.slept_ns)
                Self.annotate(&e, "timer_fired", event.flags & DPT_F_TIMER_FIRED != 0)
                Self.annotate(&e, "fired_during_arm", event.flags & DPT_F_FIRED_DURING_ARM != 0)
                Self.annotate(&e, "io_schedule_called", event.flags & DPT_F_IO_SCHEDULE != 0)
                if event.flags & DPT_F_REARMED != 0 { Self.annotate(&e, "rearmed", true) }
                if event.flags & DPT_F_WAKEUP_UNSEEN != 0 { Self.annotate(&e, "wakeup_unseen", true) }
                if event.flags & DPT_F_SWITCH_OUT_UNSEEN != 0 { Self.annotate(&e, "switch_out_unseen", true) }
                if event.flags & DPT_F_EXPIRY_UNSEEN != 0 { Self.annotate(&e, "expiry_unseen", true) }
                if event.flags & DPT_F_RESOLVED_IN_IO_SCHEDULE != 0 { Self.annotate(&e, "resolved_in_io_schedule", true) }
            }
            trackEvent(at: event.ts_ns, track: track, type: .sliceEnd)
            counter(at: begin, track: Self.requestedSleepTrack(event.cpu), value: Double(event.sleep_requested_ns))
        case UInt32(DPT_EV_MODE.rawValue):
            describeCPU(event.cpu)
            if openMode[event.cpu] != nil {
                trackEvent(at: event.ts_ns, track: Self.modeTrack(event.cpu), type: .sliceEnd)
            }
            openMode[event.cpu] = event.mode_to
            trackEvent(at: event.ts_ns, track: Self.modeTrack(event.cpu), type: .sliceBegin,
                       name: Self.modeName(event.mode_to)) { e in
                Self.annotate(&e, "from", Self.modeName(event.mode_from))
                Self.annotate(&e, "avg_qd_x10", UInt64(event.avg_qd_x10))
                Self.annotate(&e, "tf", UInt64(event.tf))
                Self.annotate(&e, "window_ios", UInt64(event.window_ios))
            }
            counter(at: event.ts_ns, track: Self.queueDepthTrack(event.cpu), value: Double(event.avg_qd_x10) / 10)
        case UInt32(DPT_EV_RQ_START.rawValue):
            // The first I/O seen with DPAS state opens that CPU's mode slice.
            if event.flags & DPT_F_DPAS != 0, event.mode_to != UInt8(DPT_MODE_UNKNOWN.rawValue),
               openMode[event.cpu] == nil {
                describeCPU(event.cpu)
                openMode[event.cpu] = event.mode_to
                trackEvent(at: event.ts_ns, track: Self.modeTrack(event.cpu), type: .sliceBegin,
                           name: Self.modeName(event.mode_to))
            }
        case UInt32(DPT_EV_RQ_DONE.rawValue):
            describeCPU(event.cpu)
            counter(at: event.ts_ns, track: Self.latencyTrack(event.cpu), value: Double(event.io_latency_ns))
        default:
            break
        }
        if buffer.bytes.count >= 1 << 20 { try flushBuffer() }
    }

    /// Closes the open mode slices at the last timestamp seen and hands out the rest of the trace.
    public mutating func finish() throws {
        for cpu in openMode.keys.sorted() {
            trackEvent(at: lastTimestamp, track: Self.modeTrack(cpu), type: .sliceEnd)
        }
        openMode.removeAll()
        try flushBuffer()
    }

    private mutating func flushBuffer() throws {
        guard !buffer.bytes.isEmpty else { return }
        try sink(buffer.bytes)
        buffer.removeAll()
    }

    static func modeName(_ mode: UInt8) -> String {
        switch UInt32(mode) {
        case DPT_MODE_INT.rawValue: "INT"
        case DPT_MODE_CP.rawValue: "CP"
        case DPT_MODE_PAS.rawValue: "PAS"
        case DPT_MODE_OL.rawValue: "OL"
        case DPT_MODE_EHP.rawValue: "EHP"
        default: "unknown"
        }
    }

    private mutating func describeCPU(_ cpu: UInt32) {
        guard describedCPUs.insert(cpu).inserted else { return }
        describeTrack(uuid: Self.cpuTrack(cpu), name: "CPU \(cpu)", parent: nil)
        describeTrack(uuid: Self.modeTrack(cpu), name: "DPAS mode", parent: Self.cpuTrack(cpu))
        describeTrack(uuid: Self.queueDepthTrack(cpu), name: "avg QD", parent: Self.cpuTrack(cpu), counter: .count)
        describeTrack(uuid: Self.requestedSleepTrack(cpu), name: "requested sleep ns", parent: Self.cpuTrack(cpu), counter: .timeNs)
        describeTrack(uuid: Self.latencyTrack(cpu), name: "I/O latency ns", parent: Self.cpuTrack(cpu), counter: .timeNs)
    }

    private mutating func describeTrack(uuid: UInt64, name: String, parent: UInt64?, counter: CounterUnit? = nil) {
        emitPacket(timestamp: nil) { p in
            p.message(Field.trackDescriptor) { d in
                d.uint(Field.uuid, uuid)
                d.string(Field.name, name)
                if let parent { d.uint(Field.parentUUID, parent) }
                if let counter { d.message(Field.counter) { c in c.uint(Field.counterUnit, counter.rawValue) } }
            }
        }
    }

    private mutating func trackEvent(at ts: UInt64, track: UInt64, type: EventType, name: String? = nil,
                                     annotations: (inout ProtobufWriter) -> Void = { _ in }) {
        emitPacket(timestamp: ts) { p in
            p.message(Field.trackEvent) { e in
                e.uint(Field.type, type.rawValue)
                e.uint(Field.trackUUID, track)
                if let name { e.string(Field.eventName, name) }
                annotations(&e)
            }
        }
    }

    private mutating func counter(at ts: UInt64, track: UInt64, value: Double) {
        emitPacket(timestamp: ts) { p in
            p.message(Field.trackEvent) { e in
                e.uint(Field.type, EventType.counter.rawValue)
                e.uint(Field.trackUUID, track)
                e.double(Field.doubleCounterValue, value)
            }
        }
    }

    private static func annotate(_ e: inout ProtobufWriter, _ name: String, _ value: UInt64) {
        e.message(Field.debugAnnotations) { a in
            a.string(Field.annotationName, name)
            a.uint(Field.annotationUInt, value)
        }
    }

    private static func annotate(_ e: inout ProtobufWriter, _ name: String, _ value: Bool) {
        e.message(Field.debugAnnotations) { a in
            a.string(Field.annotationName, name)
            a.bool(Field.annotationBool, value)
        }
    }

    private static func annotate(_ e: inout ProtobufWriter, _ name: String, _ value: String) {
        e.message(Field.debugAnnotations) { a in
            a.string(Field.annotationName, name)
            a.string(Field.annotationString, value)
        }
    }

    private mutating func emitPacket(timestamp: UInt64?, _ build: (inout ProtobufWriter) -> Void) {
        packet.removeAll()
        if let timestamp { packet.uint(Field.timestamp, timestamp) }
        packet.uint(Field.trustedSequenceID, Self.sequenceID)
        if !startedSequence {
            packet.uint(Field.sequenceFlags, Self.incrementalStateCleared)
            startedSequence = true
        }
        build(&packet)
        buffer.encodedMessage(Field.tracePacket, packet.bytes)
        packetsWritten += 1
    }
}
