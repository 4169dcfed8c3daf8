// The Swift face of `struct dpt_event` (bpf/include/dpas_trace_events.h).
//
// The C struct is the one layout; this file only adds names: kinds, flags,
// outcomes, modes, and factories that fill events the way the BPF programs do
// (buckets through the header's own `dpt_poll_stats_bucket`), so synthetic
// streams and tests cannot drift from what the kernel side records.

@_exported import CDPASEvents

#if _endian(big)
#error("dpas-trace events and dumps are little-endian; big-endian hosts are not supported")
#endif

/// One recorded event: exactly the 128-byte C struct the BPF programs emit.
public typealias TraceEvent = dpt_event

/// What an event describes (`enum dpt_event_kind`).
public enum EventKind: UInt32, Sendable, CaseIterable {
    case rqStart = 1, rqDone, hybridSleep, mode, pasState

    /// Stable snake_case name used in text, CSV and JSON output.
    public var name: String {
        switch self {
        case .rqStart: "rq_start"
        case .rqDone: "rq_done"
        case .hybridSleep: "hybrid_sleep"
        case .mode: "mode"
        case .pasState: "pas_state"
        }
    }
}

/// How a hybrid sleep attempt ended (`enum dpt_sleep_outcome`).
public enum SleepOutcome: UInt8, Sendable, CaseIterable {
    case unknown = 0
    /// The task switched out while its sleeper was armed.
    case slept = 1
    /// The timer fired or was cancelled before the task yielded.
    case noSleep = 2

    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .slept: "slept"
        case .noSleep: "no_sleep"
        }
    }
}

/// DPAS completion modes as numbered in `struct blk_switch.mode` (`enum dpt_mode`).
public enum DPASMode: UInt8, Sendable, CaseIterable {
    case int = 0, cp = 1, pas = 2, ol = 3, ehp = 4
    /// Not a DPAS kernel, or the state was unreadable.
    case unknown = 255

    /// The name the paper and `switch_stat` use.
    public var name: String {
        switch self {
        case .int: "INT"
        case .cp: "CP"
        case .pas: "PAS"
        case .ol: "OL"
        case .ehp: "EHP"
        case .unknown: "unknown"
        }
    }

    /// An event's mode byte, `.unknown` for anything but a mode (a switch the replay's mode loop
    /// inlines, where the synthesized `init(rawValue:)` was a call per event).
    @inlinable @inline(__always)
    public init(eventByte: UInt8) {
        switch eventByte {
        case 0: self = .int
        case 1: self = .cp
        case 2: self = .pas
        case 3: self = .ol
        case 4: self = .ehp
        default: self = .unknown
        }
    }

    /// Parses "INT", "cp", … (case-insensitive); nil for anything else.
    public init?(name: String) {
        guard let mode = DPASMode.allCases.first(where: { $0.name.lowercased() == name.lowercased() })
        else { return nil }
        self = mode
    }
}

/// PAS sleep results kept in `blk_rq_pas_stat.sr_last` (`enum dpt_pas_result`).
public enum PASResult: UInt8, Sendable, CaseIterable {
    case none = 0, overslept = 1, underslept = 2

    public var name: String {
        switch self {
        case .none: "none"
        case .overslept: "overslept"
        case .underslept: "underslept"
        }
    }
}

/// `dpt_event.flags` (`DPT_F_*`) as an option set, for building events.
public struct EventFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let polled = EventFlags(rawValue: DPT_F_POLLED)
    public static let queueStats = EventFlags(rawValue: DPT_F_QUEUE_STATS)
    public static let ioScheduleCalled = EventFlags(rawValue: DPT_F_IO_SCHEDULE)
    public static let timerFired = EventFlags(rawValue: DPT_F_TIMER_FIRED)
    public static let firedDuringArm = EventFlags(rawValue: DPT_F_FIRED_DURING_ARM)
    public static let cancelled = EventFlags(rawValue: DPT_F_CANCELLED)
    public static let hasDPASState = EventFlags(rawValue: DPT_F_DPAS)
    public static let pasTimerFloor = EventFlags(rawValue: DPT_F_PAS_TIMER_FLOOR)
    public static let rearmed = EventFlags(rawValue: DPT_F_REARMED)
    public static let wakeupUnseen = EventFlags(rawValue: DPT_F_WAKEUP_UNSEEN)
    public static let switchOutUnseen = EventFlags(rawValue: DPT_F_SWITCH_OUT_UNSEEN)
    public static let expiryUnseen = EventFlags(rawValue: DPT_F_EXPIRY_UNSEEN)
    public static let resolvedInIOSchedule = EventFlags(rawValue: DPT_F_RESOLVED_IN_IO_SCHEDULE)

    /// Every flag with its stable snake_case name, in bit order (used by text/JSON output).
    public static let named: [(flag: EventFlags, name: String)] = [
        (.polled, "polled"), (.queueStats, "queue_stats"), (.ioScheduleCalled, "io_schedule"),
        (.timerFired, "timer_fired"), (.firedDuringArm, "fired_during_arm"), (.cancelled, "cancelled"),
        (.hasDPASState, "dpas"), (.pasTimerFloor, "pas_timer_floor"),
        (.rearmed, "rearmed"), (.wakeupUnseen, "wakeup_unseen"),
        (.switchOutUnseen, "switch_out_unseen"), (.expiryUnseen, "expiry_unseen"),
        (.resolvedInIOSchedule, "resolved_in_io_schedule"),
    ]

    /// Names of the set flags joined by "|", "" when none.
    public var names: String {
        EventFlags.named.filter { contains($0.flag) }.map(\.name).joined(separator: "|")
    }
}

extension TraceEvent {
    /// The kind, or nil for a kind this build does not know (a newer recorder).
    @inlinable public var eventKind: EventKind? { EventKind(rawValue: kind) }

    /// The flags as an option set.
    @inlinable public var eventFlags: EventFlags { EventFlags(rawValue: flags) }

    @inlinable public var isPolled: Bool { flags & DPT_F_POLLED != 0 }
    @inlinable public var queueStatsSet: Bool { flags & DPT_F_QUEUE_STATS != 0 }
    @inlinable public var ioScheduleCalled: Bool { flags & DPT_F_IO_SCHEDULE != 0 }
    @inlinable public var timerFired: Bool { flags & DPT_F_TIMER_FIRED != 0 }
    @inlinable public var firedDuringArm: Bool { flags & DPT_F_FIRED_DURING_ARM != 0 }
    @inlinable public var cancelled: Bool { flags & DPT_F_CANCELLED != 0 }
    @inlinable public var hasDPASState: Bool { flags & DPT_F_DPAS != 0 }
    @inlinable public var pasTimerFloor: Bool { flags & DPT_F_PAS_TIMER_FLOOR != 0 }
    /// HYBRID_SLEEP: the kernel's sleep loop went back to sleep towards the same deadline after a
    /// wakeup that was not its timer; `sleep_requested_ns` is the request this pass continues.
    @inlinable public var rearmed: Bool { flags & DPT_F_REARMED != 0 }
    /// HYBRID_SLEEP: the task was seen leaving the CPU but not coming back (the kernel skipped
    /// that probe run); `slept_ns` is an estimate ending at the timer's expiry.
    @inlinable public var wakeupUnseen: Bool { flags & DPT_F_WAKEUP_UNSEEN != 0 }
    /// HYBRID_SLEEP: the task was off the CPU when its timer fired but was not seen leaving it
    /// (the kernel skipped that probe run); `slept_ns` is an estimate starting at the arm.
    @inlinable public var switchOutUnseen: Bool { flags & DPT_F_SWITCH_OUT_UNSEEN != 0 }
    /// HYBRID_SLEEP: the timer had fired when the task came back, but its expiry was not seen (the
    /// kernel skipped that probe run); `timer_fired_ns` is the timer's expiry time.
    @inlinable public var expiryUnseen: Bool { flags & DPT_F_EXPIRY_UNSEEN != 0 }
    /// HYBRID_SLEEP: resolved on the poller's path (function hooks on the arm, io_schedule and
    /// hrtimer_cancel): slept means a voluntary switch inside io_schedule, `slept_ns` is the time
    /// off the CPU by the scheduler's own accounting, and the expiry is not timed (`timer_fired_ns`
    /// 0 even when `timerFired`).
    @inlinable public var resolvedInIOSchedule: Bool { flags & DPT_F_RESOLVED_IN_IO_SCHEDULE != 0 }

    /// HYBRID_SLEEP: how the attempt ended (`.unknown` for out-of-range values).
    @inlinable public var sleepOutcome: SleepOutcome { SleepOutcome(rawValue: outcome) ?? .unknown }
    /// MODE: the mode before the transition.
    @inlinable @inline(__always) public var modeFrom: DPASMode { DPASMode(eventByte: mode_from) }
    /// MODE: the new mode; RQ_*: the CPU's mode at that moment.
    @inlinable @inline(__always) public var modeTo: DPASMode { DPASMode(eventByte: mode_to) }
    /// PAS_STATE: the last two PAS results, newest first.
    public var pasLastResults: (PASResult, PASResult) {
        (PASResult(rawValue: pas_last.0) ?? .none, PASResult(rawValue: pas_last.1) ?? .none)
    }
    /// True for writes (ddir 1).
    @inlinable public var isWrite: Bool { ddir == 1 }
    /// Device number as "major:minor" (kernel dev_t encoding: major << 20 | minor).
    public var deviceName: String { "\(dev >> 20):\(dev & 0xFFFFF)" }

    /// Encodes a major/minor pair the kernel's way (`MKDEV`).
    @inlinable public static func makeDev(major: UInt32, minor: UInt32) -> UInt32 {
        (major << 20) | (minor & 0xFFFFF)
    }

    // MARK: - Factories (tests and synthetic generators)

    /// An event with every field zero except kind, time and CPU; modes unknown.
    public static func blank(_ kind: EventKind, ts: UInt64, cpu: UInt32) -> TraceEvent {
        var event = TraceEvent()
        event.kind = kind.rawValue
        event.ts_ns = ts
        event.cpu = cpu
        event.bucket = -1
        event.bucket_by_sectors = -1
        event.mode_from = DPASMode.unknown.rawValue
        event.mode_to = DPASMode.unknown.rawValue
        return event
    }

    /// A request start as the BPF side records it: bucket from `statsSectors` the kernel's way,
    /// `bucket_by_sectors` from `nrSectors` (the seed's fix 1); `mode` known ⇒ DPAS flag set.
    public static func rqStart(
        ts: UInt64, cpu: UInt32, pid: UInt32, tid: UInt32, rq: UInt64, dev: UInt32,
        nrSectors: UInt32, statsSectors: UInt32, ddir: UInt8,
        polled: Bool, queueStats: Bool, mode: DPASMode = .unknown,
        extraFlags: EventFlags = []
    ) -> TraceEvent {
        request(.rqStart, ts: ts, cpu: cpu, pid: pid, tid: tid, rq: rq, dev: dev,
                nrSectors: nrSectors, statsSectors: statsSectors, ddir: ddir,
                polled: polled, queueStats: queueStats, mode: mode, extraFlags: extraFlags)
    }

    /// A request completion; `latencyNs` is start → completion.
    public static func rqDone(
        ts: UInt64, cpu: UInt32, pid: UInt32, tid: UInt32, rq: UInt64, dev: UInt32,
        nrSectors: UInt32, statsSectors: UInt32, ddir: UInt8,
        polled: Bool, queueStats: Bool, mode: DPASMode = .unknown, latencyNs: UInt64,
        extraFlags: EventFlags = []
    ) -> TraceEvent {
        var event = request(.rqDone, ts: ts, cpu: cpu, pid: pid, tid: tid, rq: rq, dev: dev,
                            nrSectors: nrSectors, statsSectors: statsSectors, ddir: ddir,
                            polled: polled, queueStats: queueStats, mode: mode, extraFlags: extraFlags)
        event.io_latency_ns = latencyNs
        return event
    }

    private static func request(
        _ kind: EventKind, ts: UInt64, cpu: UInt32, pid: UInt32, tid: UInt32, rq: UInt64, dev: UInt32,
        nrSectors: UInt32, statsSectors: UInt32, ddir: UInt8,
        polled: Bool, queueStats: Bool, mode: DPASMode, extraFlags: EventFlags
    ) -> TraceEvent {
        var event = blank(kind, ts: ts, cpu: cpu)
        event.pid = pid
        event.tid = tid
        event.rq = rq
        event.dev = dev
        event.nr_sectors = nrSectors
        event.stats_sectors = statsSectors
        event.ddir = ddir
        event.bucket = dpt_poll_stats_bucket(statsSectors, ddir)
        event.bucket_by_sectors = dpt_poll_stats_bucket(nrSectors, ddir)
        event.mode_to = mode.rawValue
        var flags = extraFlags
        if polled { flags.insert(.polled) }
        if queueStats { flags.insert(.queueStats) }
        if mode != .unknown { flags.insert(.hasDPASState) }
        event.flags = flags.rawValue
        return event
    }

    /// One resolved hybrid sleep attempt; `ts` is when it ended. `sleptNs` is 0 for no-sleep.
    public static func hybridSleep(
        ts: UInt64, cpu: UInt32, pid: UInt32, tid: UInt32,
        requestedNs: UInt64, armedNs: UInt64, expiresNs: UInt64, firedNs: UInt64, sleptNs: UInt64,
        outcome: SleepOutcome, flags: EventFlags = [],
        rq: UInt64 = 0, dev: UInt32 = 0
    ) -> TraceEvent {
        var event = blank(.hybridSleep, ts: ts, cpu: cpu)
        event.pid = pid
        event.tid = tid
        event.rq = rq
        event.dev = dev
        event.sleep_requested_ns = requestedNs
        event.sleep_armed_ns = armedNs
        event.timer_expires_ns = expiresNs
        event.timer_fired_ns = firedNs
        event.slept_ns = sleptNs
        event.outcome = outcome.rawValue
        event.flags = flags.rawValue
        return event
    }

    /// A DPAS mode transition on `cpu`, with the decision's inputs from the ended window.
    public static func modeChange(
        ts: UInt64, cpu: UInt32, from: DPASMode, to: DPASMode,
        avgQDx10: UInt32, tf: UInt32, windowIOs: UInt32,
        pid: UInt32 = 0, tid: UInt32 = 0
    ) -> TraceEvent {
        var event = blank(.mode, ts: ts, cpu: cpu)
        event.pid = pid
        event.tid = tid
        event.mode_from = from.rawValue
        event.mode_to = to.rawValue
        event.avg_qd_x10 = avgQDx10
        event.tf = tf
        event.window_ios = windowIOs
        event.flags = EventFlags.hasDPASState.rawValue
        return event
    }

    /// PAS per-bucket state after an update: current duration, last two results (newest first),
    /// and whether the duration was clamped to `pas_d_init` (a timer-floor hit).
    public static func pasState(
        ts: UInt64, cpu: UInt32, bucket: Int8, durNs: UInt64,
        last: (PASResult, PASResult) = (.none, .none), timerFloor: Bool = false,
        mode: DPASMode = .pas, pid: UInt32 = 0, tid: UInt32 = 0, dev: UInt32 = 0
    ) -> TraceEvent {
        var event = blank(.pasState, ts: ts, cpu: cpu)
        event.pid = pid
        event.tid = tid
        event.dev = dev
        event.bucket = bucket
        event.ddir = bucket >= 0 ? UInt8(bucket & 1) : 0
        event.pas_dur_ns = durNs
        event.pas_last = (last.0.rawValue, last.1.rawValue)
        event.mode_to = mode.rawValue
        var flags: EventFlags = [.hasDPASState]
        if timerFloor { flags.insert(.pasTimerFloor) }
        event.flags = flags.rawValue
        return event
    }
}

extension dpt_event: @retroactive Equatable {
    /// Field-by-field equality over the whole 128 bytes (no padding in the layout).
    public static func == (lhs: dpt_event, rhs: dpt_event) -> Bool {
        withUnsafeBytes(of: lhs) { l in withUnsafeBytes(of: rhs) { r in l.elementsEqual(r) } }
    }
}
