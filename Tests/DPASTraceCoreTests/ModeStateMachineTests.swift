import Testing
@testable import DPASTraceCore

/// A reference simulator of the DPAS mode state machine (shared/dpas-kernel.md, "State machine"),
/// driven by a scripted queue-depth / timer-floor sequence. It emits what dpas-trace records — a
/// MODE event per transition, an RQ_START per I/O stamped with the CPU's mode at submission — and
/// keeps its own tallies; the mode analysis must reproduce them exactly.
///
/// Rules, per I/O on one CPU (counters and tf reset on every transition):
/// - submission: INT I/Os are not polled and count `int_cnt`; after `param7` of them INT→OL right there;
///   CP/PAS/OL I/Os are polled and count `cp_cnt` / `pas_cnt` / `ol_cnt`.
/// - poll side: `qd_sum += qd` on every non-CP polled I/O; a PAS I/O whose sleep hits the timer floor
///   increments `tf`; CP→PAS after `param6` CP I/Os; every `param5` I/Os of a PAS window
///   (avg_qd = qd_sum·10 / pas_cnt): PAS→OL when tf > param1, else PAS→CP when param4 ≥ 1 and
///   avg_qd == 10; every `param5` I/Os of an OL window (avg over ol_cnt): OL→PAS when avg_qd ≤ param2,
///   OL→INT when avg_qd > param3.
struct DPASStateMachine {
    struct Params {
        var p1: UInt32 = 0, p2: UInt32 = 10, p3: UInt32 = 10, p4: UInt32 = 1
        var p5: UInt32 = 100, p6: UInt32 = 1000, p7: UInt32 = 10000
    }

    let cpu: UInt32
    let params: Params
    var mode: DPASMode = .pas
    var cpCnt: UInt32 = 0, pasCnt: UInt32 = 0, olCnt: UInt32 = 0, intCnt: UInt32 = 0
    var qdSum: UInt32 = 0, tf: UInt32 = 0
    var ts: UInt64
    var events: [TraceEvent] = []

    // The simulator's own tallies.
    var transitions: [ModeTransition] = []
    var matrix: [String: [String: UInt64]] = [:]
    var ios: [DPASMode: UInt64] = [:]
    var polled: [DPASMode: UInt64] = [:]
    var timeNs: [DPASMode: UInt64] = [:]
    var since: UInt64?
    var lastTs: UInt64 = 0
    /// The kernel's cp_tot … int_tot.
    var totals = KernelModeTotals(cp: 0, pas: 0, ol: 0, int: 0)

    init(cpu: UInt32, params: Params = Params(), startNs: UInt64 = 1_000_000) {
        self.cpu = cpu
        self.params = params
        ts = startNs
    }

    private mutating func transition(to next: DPASMode, avgQDx10: UInt32, windowIOs: UInt32, at when: UInt64) {
        events.append(.modeChange(ts: when, cpu: cpu, from: mode, to: next, avgQDx10: avgQDx10, tf: tf, windowIOs: windowIOs))
        transitions.append(ModeTransition(tsNs: when, from: mode.name, to: next.name, avgQD: Double(avgQDx10) / 10,
                                          avgQDx10: avgQDx10, tf: tf, windowIOs: windowIOs))
        matrix[mode.name, default: [:]][next.name, default: 0] += 1
        timeNs[mode, default: 0] += when - (since ?? when)
        since = when
        lastTs = max(lastTs, when)
        mode = next
        cpCnt = 0; pasCnt = 0; olCnt = 0; intCnt = 0; qdSum = 0; tf = 0
    }

    /// One I/O at queue depth `qd`; `floorHit`: its PAS sleep was clamped to d_init.
    mutating func io(qd: UInt32, floorHit: Bool = false) {
        ts += 1_000
        if since == nil { since = ts }
        lastTs = ts
        let isPolled = mode != .int
        events.append(.rqStart(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: ts, dev: 0, nrSectors: 8, statsSectors: 8, ddir: 0,
                               polled: isPolled, queueStats: true, mode: mode))
        ios[mode, default: 0] += 1
        if isPolled { polled[mode, default: 0] += 1 }
        let decided = ts + 500
        switch mode {
        case .int:
            intCnt += 1; totals.int += 1
            if intCnt >= params.p7 { transition(to: .ol, avgQDx10: 0, windowIOs: intCnt, at: decided) }
        case .cp:
            cpCnt += 1; totals.cp += 1
            if cpCnt >= params.p6 { transition(to: .pas, avgQDx10: 0, windowIOs: cpCnt, at: decided) }
        case .pas:
            pasCnt += 1; totals.pas += 1
            qdSum += qd
            if floorHit { tf += 1 }
            if pasCnt % params.p5 == 0 {
                let avg = qdSum * 10 / pasCnt
                if tf > params.p1 {
                    transition(to: .ol, avgQDx10: avg, windowIOs: pasCnt, at: decided)
                } else if params.p4 >= 1 && avg == 10 {
                    transition(to: .cp, avgQDx10: avg, windowIOs: pasCnt, at: decided)
                }
            }
        case .ol:
            olCnt += 1; totals.ol += 1
            qdSum += qd
            if olCnt % params.p5 == 0 {
                let avg = qdSum * 10 / olCnt
                if avg <= params.p2 {
                    transition(to: .pas, avgQDx10: avg, windowIOs: olCnt, at: decided)
                } else if avg > params.p3 {
                    transition(to: .int, avgQDx10: avg, windowIOs: olCnt, at: decided)
                }
            }
        default:
            break
        }
    }

    mutating func ios(_ count: Int, qd: UInt32, floorHitAt: Set<Int> = []) {
        for index in 0..<count { io(qd: qd, floorHit: floorHitAt.contains(index)) }
    }

    /// Time per mode including the open interval up to the last event.
    var timeIncludingOpen: [DPASMode: UInt64] {
        var time = timeNs
        time[mode, default: 0] += lastTs - (since ?? lastTs)
        return time
    }
}

@Suite struct ModeStateMachineTests {
    /// Checks one CPU's report against the simulator's tallies, exactly.
    func check(_ report: CPUModeReport, against sim: DPASStateMachine) {
        #expect(report.transitionsTotal == UInt64(sim.transitions.count))
        #expect(report.firstTransitions + report.lastTransitions == sim.transitions)
        for from in dpasModes.map(\.name) {
            for to in dpasModes.map(\.name) {
                #expect(report.matrix[from]?[to] == sim.matrix[from]?[to] ?? 0, "matrix \(from)→\(to)")
            }
        }
        let totalIOs = sim.ios.values.reduce(0, +)
        let time = sim.timeIncludingOpen
        let totalTime = time.values.reduce(0, +)
        for share in report.modes {
            let mode = DPASMode(name: share.mode)!
            #expect(share.ios == sim.ios[mode] ?? 0, "I/Os in \(share.mode)")
            #expect(share.polled == sim.polled[mode] ?? 0, "polled I/Os in \(share.mode)")
            #expect(share.ioShare == Double(sim.ios[mode] ?? 0) / Double(totalIOs), "I/O share of \(share.mode)")
            #expect(share.timeNs == time[mode] ?? 0, "time in \(share.mode)")
            #expect(share.timeShare == Double(time[mode] ?? 0) / Double(totalTime), "time share of \(share.mode)")
            #expect(share.kernelTotal == sim.totals.total(for: mode), "kernel total of \(share.mode)")
        }
        #expect(report.finalMode == sim.mode.name)
        #expect(report.unobservedChanges == 0)
        #expect(report.iosUnknownMode == 0)
    }

    func analyse(_ sims: [DPASStateMachine]) -> ModeReport {
        var accumulator = ModeAccumulator(timelineLimit: 64)
        for sim in sims {
            for event in sim.events { accumulator.add(event) }
            accumulator.setKernelTotals(cpu: Int(sim.cpu), sim.totals)
        }
        return accumulator.report()
    }

    /// DPAS defaults (param1 0, param2 10, param3 10, param4 1): every rule of the table fires, in the
    /// order PAS→CP, CP→PAS, PAS→OL, OL→PAS, PAS→OL, OL→INT, INT→OL, OL→PAS, then a PAS window
    /// where no rule applies (avg QD 2, no tf).
    @Test func everyRuleOfTheTableWithDPASDefaults() throws {
        var sim = DPASStateMachine(cpu: 0)
        sim.ios(100, qd: 1)                       // PAS, avg QD 1, param4 ≥ 1 → CP
        sim.ios(1000, qd: 1)                      // CP for param6 I/Os → PAS
        sim.ios(100, qd: 2, floorHitAt: [40])     // PAS with a timer-floor hit: tf 1 > param1 → OL
        sim.ios(100, qd: 1)                       // OL, avg QD 1 ≤ param2 → PAS
        sim.ios(100, qd: 3, floorHitAt: [10, 90]) // PAS, tf 2 → OL
        sim.ios(100, qd: 3)                       // OL, avg QD 3 > param3 → INT
        sim.ios(10000, qd: 3)                     // INT for param7 I/Os (at submission) → OL
        sim.ios(100, qd: 1)                       // OL → PAS
        sim.ios(100, qd: 2)                       // PAS, avg 2, no tf: stays PAS
        let names = sim.transitions.map { "\($0.from)→\($0.to)" }
        #expect(names == ["PAS→CP", "CP→PAS", "PAS→OL", "OL→PAS", "PAS→OL", "OL→INT", "INT→OL", "OL→PAS"])
        #expect(sim.transitions.map(\.avgQDx10) == [10, 0, 20, 10, 30, 30, 0, 10])
        #expect(sim.transitions.map(\.tf) == [0, 0, 1, 0, 2, 0, 0, 0])
        #expect(sim.transitions.map(\.windowIOs) == [100, 1000, 100, 100, 100, 100, 10000, 100])

        let report = analyse([sim])
        #expect(report.dpasSeen)
        let cpu = try #require(report.cpus.first)
        check(cpu, against: sim)
        // INT I/Os complete by interrupt: none of them is polled.
        #expect(cpu.modes.first { $0.mode == "INT" }?.polled == 0)
        #expect(cpu.modes.first { $0.mode == "INT" }?.ios == 10000)
        #expect(report.totals.transitions == 8)
    }

    /// Without param4 PAS never goes to CP at QD 1; with Optane's param3 = 30 an OL window at avg
    /// QD 2 matches neither OL rule and stays OL. Two CPUs: each keeps its own state.
    @Test func rulesThatMustNotFireAndPerCPUSeparation() throws {
        var noCP = DPASStateMachine(cpu: 0, params: .init(p4: 0))
        noCP.ios(300, qd: 1)                      // three PAS windows at QD 1: no transition
        noCP.ios(100, qd: 1, floorHitAt: [0])     // tf → OL
        noCP.ios(100, qd: 1)                      // → PAS
        #expect(noCP.transitions.map { "\($0.from)→\($0.to)" } == ["PAS→OL", "OL→PAS"])

        var optane = DPASStateMachine(cpu: 1, params: .init(p3: 30), startNs: 2_000_000)
        optane.ios(100, qd: 2, floorHitAt: [5])   // → OL
        optane.ios(200, qd: 2)                    // avg 2: > param2, ≤ param3: stays OL for two windows
        optane.ios(100, qd: 8)                    // the window's avg QD (200·2 + 100·8)/300 = 4 > param3 → INT
        #expect(optane.transitions.map { "\($0.from)→\($0.to)" } == ["PAS→OL", "OL→INT"])
        #expect(optane.transitions.last?.avgQDx10 == 40)

        let report = analyse([noCP, optane])
        #expect(report.cpus.map(\.cpu) == [0, 1])
        check(report.cpus[0], against: noCP)
        check(report.cpus[1], against: optane)
        #expect(report.totals.transitions == 4)
        #expect(report.totals.matrix["PAS"]?["OL"] == 2)
        let allIOs = (noCP.ios.values.reduce(0, +) + optane.ios.values.reduce(0, +))
        #expect(report.totals.modes.map(\.ios).reduce(0, +) == allIOs)
        #expect(report.totals.modes.first { $0.mode == "PAS" }?.kernelTotal == noCP.totals.pas + optane.totals.pas)
    }
}
