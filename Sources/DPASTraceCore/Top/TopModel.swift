import CDPASEvents

/// What `dpas-trace top` shows, accumulated since the last clear: log2 histograms of the hybrid
/// sleeps (slept and no-sleep apart), I/O latency, the bucket distribution, and per CPU the
/// current DPAS mode and its transitions. Fed by events (replay, ring buffer); bounded
/// memory.
public struct TopModel: Sendable {
    public var requestedSleptNs = LatencyHistogram()
    public var requestedNoSleepNs = LatencyHistogram()
    public var actualSleepNs = LatencyHistogram()
    public var oversleepNs = LatencyHistogram()
    public var ioLatencyNs = LatencyHistogram()
    /// Requests per poll-stats bucket, index 0 = bucket -1 … 16 = bucket 15.
    public var bucketCounts = Array(repeating: UInt64(0), count: 17)
    public var cpus: [UInt32: CPUState] = [:]
    public var events: UInt64 = 0
    public var lostEvents: UInt64 = 0
    /// Probe runs the kernel skipped (live only): events that never reached the ring buffer.
    public var skippedProbeRuns: UInt64 = 0

    public struct CPUState: Sendable, Equatable {
        /// The mode last seen (DPT_MODE_*); nil until one is seen.
        public var mode: UInt8?
        public var transitions: UInt64 = 0
        public var lastAvgQDx10: UInt32?
        public var ios: UInt64 = 0
    }

    public init() {}

    public var sleepAttempts: UInt64 { requestedSleptNs.count + requestedNoSleepNs.count }

    public mutating func consume(_ event: dpt_event) {
        events += 1
        switch event.kind {
        case UInt32(DPT_EV_HYBRID_SLEEP.rawValue):
            if event.outcome == UInt8(DPT_SLEEP_SLEPT.rawValue) {
                requestedSleptNs.add(event.sleep_requested_ns)
                actualSleepNs.add(event.slept_ns)
                oversleepNs.add(event.slept_ns > event.sleep_requested_ns ? event.slept_ns - event.sleep_requested_ns : 0)
            } else {
                requestedNoSleepNs.add(event.sleep_requested_ns)
            }
        case UInt32(DPT_EV_RQ_START.rawValue):
            bucketCounts[Int(max(-1, min(15, event.bucket))) + 1] += 1
            cpus[event.cpu, default: CPUState()].ios += 1
            if event.flags & DPT_F_DPAS != 0, event.mode_to != UInt8(DPT_MODE_UNKNOWN.rawValue) {
                cpus[event.cpu, default: CPUState()].mode = event.mode_to
            }
        case UInt32(DPT_EV_RQ_DONE.rawValue):
            ioLatencyNs.add(event.io_latency_ns)
        case UInt32(DPT_EV_MODE.rawValue):
            var state = cpus[event.cpu, default: CPUState()]
            state.mode = event.mode_to
            state.transitions += 1
            state.lastAvgQDx10 = event.avg_qd_x10
            cpus[event.cpu] = state
        default:
            break
        }
    }

    /// Forgets what was seen, but keeps each CPU's current mode and the lost-event and skipped-run
    /// totals: losses stay visible for the whole run (the `c` key).
    public mutating func clear() {
        let modes = cpus.mapValues { CPUState(mode: $0.mode) }
        let (lost, skipped) = (lostEvents, skippedProbeRuns)
        self = TopModel()
        cpus = modes
        lostEvents = lost
        skippedProbeRuns = skipped
    }
}
