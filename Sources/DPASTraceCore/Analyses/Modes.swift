// Mode analysis: what the DPAS state machine did on each CPU.
//
// Inputs: MODE events (a transition with the decision's inputs), and the mode every other event
// carries (`mode_to` = the CPU's mode at that moment, 255 when unknown). Request starts are counted
// per mode — the paper's "DPAS BREAK" split of I/O over CP / PAS / OL / INT.

/// The five DPAS modes in `struct blk_switch.mode` order, as used for per-mode arrays.
public let dpasModes: [DPASMode] = [.int, .cp, .pas, .ol, .ehp]

/// One observed transition.
public struct ModeTransition: Codable, Sendable, Equatable {
    public var tsNs: UInt64
    public var from: String
    public var to: String
    /// Average queue depth at the decision (avg_qd_x10 / 10).
    public var avgQD: Double
    public var avgQDx10: UInt32
    /// Timer-floor hits in the ended window.
    public var tf: UInt32
    /// I/Os in the ended window.
    public var windowIOs: UInt32

    enum CodingKeys: String, CodingKey {
        case tsNs = "ts_ns", from, to, avgQD = "avg_qd", avgQDx10 = "avg_qd_x10", tf, windowIOs = "window_ios"
    }
}

extension ModeTransition {
    init(tsNs: UInt64, from: DPASMode, to: DPASMode, avgQDx10: UInt32, tf: UInt32, windowIOs: UInt32) {
        (self.tsNs, self.from, self.to) = (tsNs, from.name, to.name)
        (avgQD, self.avgQDx10, self.tf, self.windowIOs) = (Double(avgQDx10) / 10, avgQDx10, tf, windowIOs)
    }

    /// A MODE event's transition.
    init(_ event: TraceEvent) {
        self.init(tsNs: event.ts_ns, from: event.modeFrom, to: event.modeTo, avgQDx10: event.avg_qd_x10,
                  tf: event.tf, windowIOs: event.window_ios)
    }
}

/// The kernel's own per-mode I/O totals for one CPU (`blk_switch.cp_tot` …), as `switch_stat` prints them.
public struct KernelModeTotals: Codable, Sendable, Equatable {
    public var cp: UInt64
    public var pas: UInt64
    public var ol: UInt64
    public var int: UInt64

    public init(cp: UInt64, pas: UInt64, ol: UInt64, int: UInt64) {
        self.cp = cp
        self.pas = pas
        self.ol = ol
        self.int = int
    }

    /// The total for a mode; nil for EHP, which the kernel does not count separately.
    public func total(for mode: DPASMode) -> UInt64? {
        switch mode {
        case .cp: cp
        case .pas: pas
        case .ol: ol
        case .int: int
        default: nil
        }
    }
}

/// Index of a DPAS mode in per-mode arrays (`dpasModes` order is the raw value order); nil for unknown.
@inline(__always)
func dpasModeIndex(_ mode: DPASMode) -> Int? { mode.rawValue < 5 ? Int(mode.rawValue) : nil }

/// A count per DPAS mode, stored inline: updated on every request without the uniqueness check
/// (and possible copy) an array field costs.
struct ModeCounts: Sendable {
    private var counts = InlineArray<5, UInt64>(repeating: 0)

    init() {}
    init(_ array: [UInt64]) { for index in 0..<5 { counts[index] = array[index] } }

    @inline(__always)
    subscript(index: Int) -> UInt64 {
        get { counts[index] }
        set { counts[index] = newValue }
    }

    var array: [UInt64] { (0..<5).map { counts[$0] } }
}

/// Transition counts from mode × to mode, stored inline.
struct ModeMatrix: Sendable {
    private var counts = InlineArray<25, UInt64>(repeating: 0)

    init() {}
    init(_ rows: [[UInt64]]) { for from in 0..<5 { for to in 0..<5 { counts[from * 5 + to] = rows[from][to] } } }

    @inline(__always)
    subscript(from: Int, to: Int) -> UInt64 {
        get { counts[from * 5 + to] }
        set { counts[from * 5 + to] = newValue }
    }

    var rows: [[UInt64]] { (0..<5).map { from in (0..<5).map { counts[from * 5 + $0] } } }
}

/// What one CPU did; bounded memory (the timeline keeps the first and last `timelineLimit` transitions).
struct CPUModeState: PerCPUState {
    init() {}

    var firstTs: UInt64?
    var lastTs: UInt64 = 0
    /// The mode the CPU is known to be in since `since`; nil until some event told us.
    var current: DPASMode?
    var since: UInt64 = 0
    var timeNs = ModeCounts()
    var ios = ModeCounts()
    var polled = ModeCounts()
    var iosUnknownMode: UInt64 = 0
    var matrix = ModeMatrix()
    var transitions: UInt64 = 0
    var unobservedChanges: UInt64 = 0
    var firstTransitions: [ModeTransition] = []
    /// Ring of the latest transitions; `lastStart` is the oldest entry once full.
    var lastTransitions: [ModeTransition] = []
    var lastStart = 0
    var kernelTotals: KernelModeTotals?

    @inline(__always)
    mutating func seen(at ts: UInt64) {
        if let first = firstTs { if ts < first { firstTs = ts } } else { firstTs = ts }
        if ts > lastTs { lastTs = ts }
    }

    /// Closes the current mode's interval at `ts` and starts `mode`.
    mutating func enter(_ mode: DPASMode, at ts: UInt64) {
        if let current, let index = dpasModeIndex(current) {
            timeNs[index] += ts > since ? ts - since : 0
        }
        current = mode
        since = ts
    }

    /// The CPU was in `mode` at `ts`: fills the span before the first knowledge, notices unseen changes.
    @inline(__always)
    mutating func note(_ mode: DPASMode, at ts: UInt64) {
        seen(at: ts)
        noteAfterSeen(mode, at: ts)
    }

    /// `note` for a time `seen` already took.
    @inline(__always)
    private mutating func noteAfterSeen(_ mode: DPASMode, at ts: UInt64) {
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
        if current == nil, dpasModeIndex(from) != nil {
            // Nothing seen before this transition: the CPU was in `from` since we first saw it.
            current = from
            since = firstTs ?? ts
        }
        if let fromIndex = dpasModeIndex(from), let toIndex = dpasModeIndex(to) {
            matrix[fromIndex, toIndex] += 1
        }
        if dpasModeIndex(to) != nil { enter(to, at: ts) }
        record(transition, limit: limit)
    }

    /// A non-MODE event: extends the span, tells the mode if known, counts a request start.
    @inline(__always)
    mutating func observe(_ event: TraceEvent) {
        observe(ts: event.ts_ns, mode: event.modeTo, kind: event.kind, flags: event.flags)
    }

    @inline(__always)
    mutating func observe(ts: UInt64, mode: DPASMode, kind: UInt32, flags: UInt32) {
        seen(at: ts)
        if mode != .unknown { noteAfterSeen(mode, at: ts) }
        if kind == EventKind.rqStart.rawValue { addIOs(mode: mode, count: 1, polled: flags & DPT_F_POLLED != 0 ? 1 : 0) }
    }

    @inline(__always)
    mutating func addIOs(mode: DPASMode, count: UInt64, polled: UInt64) {
        if let index = dpasModeIndex(mode) {
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

    var latestTransitions: [ModeTransition] {
        Array(lastTransitions[lastStart...] + lastTransitions[..<lastStart])
    }

    /// Time per mode including the still-open interval up to the last event.
    var timeIncludingOpenInterval: [UInt64] {
        var time = timeNs.array
        if let current, let index = dpasModeIndex(current) { time[index] += lastTs > since ? lastTs - since : 0 }
        return time
    }
}

/// Streams DPAS mode information into per-CPU timelines, matrices and per-mode counts.
public struct ModeAccumulator: Sendable {
    /// Transitions kept at the start and at the end of each CPU's timeline.
    public let timelineLimit: Int
    /// Indexed by CPU id: one array access per event, no hashing.
    private var cpus = PerCPU<CPUModeState>()

    public init(timelineLimit: Int = 32) {
        self.timelineLimit = timelineLimit
    }

    /// Event path: MODE events are transitions; every event extends the CPU's observed time span;
    /// events carrying a known mode tell the CPU's mode; RQ_START events are counted per mode.
    @inline(__always)
    public mutating func add(_ event: TraceEvent) {
        if event.kind == EventKind.mode.rawValue {
            addTransition(cpu: Int(event.cpu), tsNs: event.ts_ns, from: event.modeFrom, to: event.modeTo,
                          avgQDx10: event.avg_qd_x10, tf: event.tf, windowIOs: event.window_ios)
            return
        }
        // One array access per event: this runs for every event of a replay.
        cpus.update(Int(event.cpu)) { $0.observe(event) }
    }

    /// A chunk of events: reads only the fields each needs, in place (copying each 128-byte event
    /// out first was a third of this loop's time on a replay).
    public mutating func add(contentsOf events: UnsafeBufferPointer<TraceEvent>) {
        guard let base = events.baseAddress else { return }
        let limit = timelineLimit
        cpus.updateEach(count: events.count, cpuOf: { Int(base[$0].cpu) }) { index, state in
            Self.apply(base + index, to: &state, limit: limit)
        }
    }

    @inline(__always)
    private static func apply(_ event: UnsafePointer<TraceEvent>, to state: inout CPUModeState, limit: Int) {
        if event.pointee.kind == EventKind.mode.rawValue {
            let from = event.pointee.modeFrom, to = event.pointee.modeTo
            state.transition(ModeTransition(event.pointee), from: from, to: to, at: event.pointee.ts_ns, limit: limit)
            return
        }
        state.observe(ts: event.pointee.ts_ns, mode: event.pointee.modeTo, kind: event.pointee.kind, flags: event.pointee.flags)
    }

    /// The CPU was observed at `tsNs` (extends the span over which time in mode is measured).
    public mutating func noteTime(cpu: Int, tsNs: UInt64) {
        cpus.update(cpu) { $0.seen(at: tsNs) }
    }

    /// The CPU was in `mode` at `tsNs` (e.g. read from `blk_switch.mode`).
    public mutating func noteMode(cpu: Int, tsNs: UInt64, mode: DPASMode) {
        guard dpasModeIndex(mode) != nil else { return }
        cpus.update(cpu) { $0.note(mode, at: tsNs) }
    }

    /// A transition from → to at `tsNs`, with the decision's inputs from the ended window.
    public mutating func addTransition(cpu: Int, tsNs: UInt64, from: DPASMode, to: DPASMode,
                                       avgQDx10: UInt32, tf: UInt32, windowIOs: UInt32) {
        let transition = ModeTransition(tsNs: tsNs, from: from, to: to, avgQDx10: avgQDx10, tf: tf, windowIOs: windowIOs)
        cpus.update(cpu) { $0.transition(transition, from: from, to: to, at: tsNs, limit: timelineLimit) }
    }

    /// `count` requests issued on `cpu` while it was in `mode` (`.unknown` when no DPAS state),
    /// `polled` of them marked for polling.
    public mutating func addIOs(cpu: Int, mode: DPASMode, count: UInt64, polled: UInt64 = 0) {
        cpus.update(cpu) { $0.addIOs(mode: mode, count: count, polled: polled) }
    }

    /// The kernel's own totals for `cpu` (`cp_tot/pas_tot/ol_tot/int_tot`), shown beside the traced counts.
    public mutating func setKernelTotals(cpu: Int, _ totals: KernelModeTotals) {
        cpus.update(cpu) { $0.kernelTotals = totals }
    }

    /// Builds the report.
    public func report(completeness: TraceCompleteness = TraceCompleteness()) -> ModeReport {
        let sortedCPUs = cpus.sorted
        let states = sortedCPUs.map(\.state)
        let cpuReports = sortedCPUs.map { CPUModeReport(cpu: $0.cpu, state: $0.state) }
        let dpasSeen = states.contains { $0.current != nil || $0.transitions > 0 || $0.kernelTotals != nil }
        var totals = ModeTotals()
        var time = [UInt64](repeating: 0, count: 5), ios = time, polled = time
        var matrix = [[UInt64]](repeating: [UInt64](repeating: 0, count: 5), count: 5)
        for state in states {
            totals.transitions += state.transitions
            totals.iosUnknownMode += state.iosUnknownMode
            let stateTime = state.timeIncludingOpenInterval
            for index in 0..<5 {
                time[index] += stateTime[index]
                ios[index] += state.ios[index]
                polled[index] += state.polled[index]
                for to in 0..<5 { matrix[index][to] += state.matrix[index, to] }
            }
        }
        // The kernel's own totals, summed over the CPUs that reported them (nil when none did).
        let kernel = states.compactMap(\.kernelTotals).reduce(nil as KernelModeTotals?) { sum, cpu in
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

/// Time, I/O count and shares of one mode.
public struct ModeShare: Codable, Sendable, Equatable {
    public var mode: String
    public var timeNs: UInt64
    /// Share of the observed time, 0…1; nil when no time was observed.
    public var timeShare: Double?
    /// Requests issued while in this mode.
    public var ios: UInt64
    /// Of those, marked for polling (INT mode clears the flag, so 0 there on DPAS).
    public var polled: UInt64
    /// Share of all requests with a known mode, 0…1 (the paper's "DPAS BREAK"); nil when none.
    public var ioShare: Double?
    /// The kernel's own total (`*_tot`), when the live side read it; nil otherwise and for EHP.
    public var kernelTotal: UInt64?

    static func rows(time: [UInt64], ios: [UInt64], polled: [UInt64], kernel: KernelModeTotals?) -> [ModeShare] {
        let totalTime = time.reduce(0, +), totalIOs = ios.reduce(0, +)
        return dpasModes.enumerated().map { index, mode in
            ModeShare(mode: mode.name, timeNs: time[index],
                      timeShare: totalTime == 0 ? nil : Double(time[index]) / Double(totalTime),
                      ios: ios[index], polled: polled[index],
                      ioShare: totalIOs == 0 ? nil : Double(ios[index]) / Double(totalIOs),
                      kernelTotal: kernel?.total(for: mode))
        }
    }

    enum CodingKeys: String, CodingKey {
        case mode, timeNs = "time_ns", timeShare = "time_share", ios, polled, ioShare = "io_share", kernelTotal = "kernel_total"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(mode, forKey: .mode)
        try container.encode(timeNs, forKey: .timeNs)
        try container.encode(timeShare, forKey: .timeShare)
        try container.encode(ios, forKey: .ios)
        try container.encode(polled, forKey: .polled)
        try container.encode(ioShare, forKey: .ioShare)
        try container.encode(kernelTotal, forKey: .kernelTotal)
    }
}

/// One CPU's part of the mode report.
public struct CPUModeReport: Codable, Sendable, Equatable {
    public var cpu: Int
    public var firstTsNs: UInt64?
    public var lastTsNs: UInt64?
    /// Mode at the last event, nil if never known.
    public var finalMode: String?
    public var transitionsTotal: UInt64
    /// The first and last transitions; `transitions_elided` more happened between them.
    public var firstTransitions: [ModeTransition]
    public var lastTransitions: [ModeTransition]
    public var transitionsElided: UInt64
    /// Mode changes seen only through the mode events carry (their MODE event was lost).
    public var unobservedChanges: UInt64
    /// from → to → count, for the five modes.
    public var matrix: [String: [String: UInt64]]
    public var modes: [ModeShare]
    public var iosUnknownMode: UInt64

    init(cpu: Int, state: CPUModeState) {
        self.cpu = cpu
        firstTsNs = state.firstTs
        lastTsNs = state.firstTs == nil ? nil : state.lastTs
        finalMode = state.current?.name
        transitionsTotal = state.transitions
        firstTransitions = state.firstTransitions
        lastTransitions = state.latestTransitions
        transitionsElided = state.transitions - UInt64(state.firstTransitions.count + state.lastTransitions.count)
        unobservedChanges = state.unobservedChanges
        matrix = ModeReport.namedMatrix(state.matrix.rows)
        modes = ModeShare.rows(time: state.timeIncludingOpenInterval, ios: state.ios.array, polled: state.polled.array,
                               kernel: state.kernelTotals)
        iosUnknownMode = state.iosUnknownMode
    }

    enum CodingKeys: String, CodingKey {
        case cpu, firstTsNs = "first_ts_ns", lastTsNs = "last_ts_ns", finalMode = "final_mode"
        case transitionsTotal = "transitions_total", firstTransitions = "first_transitions", lastTransitions = "last_transitions"
        case transitionsElided = "transitions_elided", unobservedChanges = "unobserved_changes", matrix, modes
        case iosUnknownMode = "ios_unknown_mode"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpu, forKey: .cpu)
        try container.encode(firstTsNs, forKey: .firstTsNs)
        try container.encode(lastTsNs, forKey: .lastTsNs)
        try container.encode(finalMode, forKey: .finalMode)
        try container.encode(transitionsTotal, forKey: .transitionsTotal)
        try container.encode(firstTransitions, forKey: .firstTransitions)
        try container.encode(lastTransitions, forKey: .lastTransitions)
        try container.encode(transitionsElided, forKey: .transitionsElided)
        try container.encode(unobservedChanges, forKey: .unobservedChanges)
        try container.encode(matrix, forKey: .matrix)
        try container.encode(modes, forKey: .modes)
        try container.encode(iosUnknownMode, forKey: .iosUnknownMode)
    }
}

/// Sums over all CPUs.
public struct ModeTotals: Codable, Sendable, Equatable {
    public var transitions: UInt64 = 0
    public var matrix: [String: [String: UInt64]] = [:]
    public var modes: [ModeShare] = []
    public var iosUnknownMode: UInt64 = 0

    enum CodingKeys: String, CodingKey { case transitions, matrix, modes, iosUnknownMode = "ios_unknown_mode" }
}

/// The mode analysis result.
public struct ModeReport: Codable, Sendable, Equatable {
    /// Whether any DPAS state (a mode, a transition, kernel totals) was seen.
    public var dpasSeen: Bool
    /// Set when no DPAS state was seen: says so plainly.
    public var message: String?
    public var cpus: [CPUModeReport]
    public var totals: ModeTotals
    public var lostEvents: LostEvents
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case dpasSeen = "dpas_seen", message, cpus, totals, lostEvents = "lost_events", warnings
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(dpasSeen, forKey: .dpasSeen)
        try container.encode(message, forKey: .message)
        try container.encode(cpus, forKey: .cpus)
        try container.encode(totals, forKey: .totals)
        try container.encode(lostEvents, forKey: .lostEvents)
        try container.encode(warnings, forKey: .warnings)
    }

    static func namedMatrix(_ matrix: [[UInt64]]) -> [String: [String: UInt64]] {
        var named: [String: [String: UInt64]] = [:]
        for (fromIndex, from) in dpasModes.enumerated() {
            for (toIndex, to) in dpasModes.enumerated() { named[from.name, default: [:]][to.name] = matrix[fromIndex][toIndex] }
        }
        return named
    }
}
