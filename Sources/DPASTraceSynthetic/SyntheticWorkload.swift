import DPASTraceCore

/// A deterministic, clearly synthetic event stream shaped like a polled 4 KiB random-read run on a
/// DPAS kernel: request start/completion, hybrid sleeps whose outcome depends on the requested
/// duration the way the seed's QEMU table does (short timers fire while being armed), PAS state
/// updates and mode transitions. For benchmarks, fuzzing seeds and tests of the readers and
/// renderers — never presented as a measurement.
public struct SyntheticWorkload: Sequence, IteratorProtocol {
    public struct Configuration: Sendable {
        public var cpus: UInt32 = 2
        public var events: UInt64 = 100_000
        public var seed: UInt64 = 1
        /// Requested sleep durations cycled through, as with DPAS's pas_d_init experiments.
        public var requestedSleepsNs: [UInt64] = [100, 1_000, 2_000, 3_960]
        /// Whether QUEUE_FLAG_STATS is set (stats_sectors filled) — off reproduces bucket -1.
        public var queueStats = true
        public init() {}
    }

    private let configuration: Configuration
    private var random: SplitMix64
    private var produced: UInt64 = 0
    private var clock: UInt64 = 1_000_000_000
    private var pending: [TraceEvent] = []
    private var modes: [DPASMode]
    private var windowIOs: [UInt32]
    private var nextRequest: UInt64 = 0xffff_8880_0000_0000

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        modes = Array(repeating: .pas, count: Int(configuration.cpus))
        windowIOs = Array(repeating: 0, count: Int(configuration.cpus))
    }

    public mutating func next() -> TraceEvent? {
        guard produced < configuration.events else { return nil }
        if pending.isEmpty { generateIO() }
        produced += 1
        return pending.removeFirst()
    }

    /// One polled read: start, a hybrid sleep, completion; sometimes a PAS update or a transition.
    private mutating func generateIO() {
        let cpu = UInt32(random.next() % UInt64(configuration.cpus))
        let tid = 1000 + cpu
        let dev = TraceEvent.makeDev(major: 259, minor: 0)
        let mode = modes[Int(cpu)]
        let request = nextRequest
        nextRequest &+= 0x100
        clock += 2_000 + random.next() % 1_000
        let start = clock
        pending.append(.rqStart(ts: start, cpu: cpu, pid: tid, tid: tid, rq: request, dev: dev,
                                nrSectors: 8, statsSectors: configuration.queueStats ? 8 : 0, ddir: 0,
                                polled: mode != .int, queueStats: configuration.queueStats, mode: mode))
        let requested = configuration.requestedSleepsNs[Int(produced / 5_000) % configuration.requestedSleepsNs.count]
        if mode == .pas || mode == .ol {
            // Arming costs ~2.5 µs under emulation: timers shorter than that rarely sleep.
            let armCost: UInt64 = 2_000 + random.next() % 1_000
            let slept = requested > armCost
            let armed = start + 500
            let sleptNs = slept ? requested + random.next() % 5_000 : 0
            let end = slept ? armed + sleptNs : armed + armCost
            pending.append(.hybridSleep(ts: end, cpu: cpu, pid: tid, tid: tid, requestedNs: requested,
                                        armedNs: armed, expiresNs: armed + requested,
                                        firedNs: slept ? armed + requested : armed + Swift.min(requested, armCost),
                                        sleptNs: sleptNs, outcome: slept ? .slept : .noSleep,
                                        flags: slept ? [.timerFired, .ioScheduleCalled] : [.timerFired, .firedDuringArm]))
            clock = end
        }
        clock += 5_000 + random.next() % 20_000
        pending.append(.rqDone(ts: clock, cpu: cpu, pid: tid, tid: tid, rq: request, dev: dev,
                               nrSectors: 8, statsSectors: configuration.queueStats ? 8 : 0, ddir: 0,
                               polled: mode != .int, queueStats: configuration.queueStats, mode: mode,
                               latencyNs: clock - start))
        windowIOs[Int(cpu)] += 1
        if windowIOs[Int(cpu)] >= 100 { decide(cpu: cpu) }
    }

    /// A simplified pass over DPAS's state machine every 100 I/Os.
    private mutating func decide(cpu: UInt32) {
        let from = modes[Int(cpu)]
        let avgQDx10 = UInt32(10 + random.next() % 15)
        let tf = UInt32(random.next() % 3)
        let to: DPASMode
        switch from {
        case .pas: to = tf > 0 ? .ol : (avgQDx10 == 10 ? .cp : .pas)
        case .ol: to = avgQDx10 <= 10 ? .pas : (avgQDx10 > 20 ? .int : .ol)
        case .cp, .int: to = random.next() % 4 == 0 ? (from == .cp ? .pas : .ol) : from
        default: to = .pas
        }
        if to != from {
            pending.append(.modeChange(ts: clock + 1, cpu: cpu, from: from, to: to, avgQDx10: avgQDx10,
                                       tf: tf, windowIOs: windowIOs[Int(cpu)]))
            modes[Int(cpu)] = to
        }
        pending.append(.pasState(ts: clock + 2, cpu: cpu, bucket: 6, durNs: 100 + random.next() % 4_000,
                                 last: (.overslept, .underslept), timerFloor: tf > 0))
        windowIOs[Int(cpu)] = 0
    }
}

/// SplitMix64: tiny, fast and deterministic, so the same seed gives the same stream everywhere.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
