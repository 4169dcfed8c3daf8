import Testing
@testable import DPASTraceCore

/// The mode analysis on a scripted DPAS sequence with known answers.
@Suite struct ModeAnalysisTests {
    static func io(_ ts: UInt64, cpu: UInt32 = 0, mode: DPASMode) -> TraceEvent {
        .rqStart(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: ts, dev: 0, nrSectors: 8, statsSectors: 8, ddir: 0,
                 polled: mode != .int, queueStats: true, mode: mode)
    }

    /// CPU 0: PAS from t=1,000 (100 I/Os) → OL at 5,000 (50 I/Os) → INT at 8,000 (20 unpolled I/Os)
    /// → OL at 10,000 → PAS at 11,000 → CP at 12,000 (30 I/Os, the last at 15,000).
    static func script() -> [TraceEvent] {
        var events: [TraceEvent] = []
        for i in 0..<100 { events.append(io(1_000 + UInt64(i) * 10, mode: .pas)) }
        events.append(.modeChange(ts: 5_000, cpu: 0, from: .pas, to: .ol, avgQDx10: 12, tf: 3, windowIOs: 100))
        for i in 0..<50 { events.append(io(5_000 + UInt64(i + 1) * 10, mode: .ol)) }
        events.append(.modeChange(ts: 8_000, cpu: 0, from: .ol, to: .int, avgQDx10: 35, tf: 0, windowIOs: 50))
        for i in 0..<20 { events.append(io(8_000 + UInt64(i + 1) * 10, mode: .int)) }
        events.append(.modeChange(ts: 10_000, cpu: 0, from: .int, to: .ol, avgQDx10: 0, tf: 0, windowIOs: 10_000))
        events.append(.modeChange(ts: 11_000, cpu: 0, from: .ol, to: .pas, avgQDx10: 10, tf: 0, windowIOs: 100))
        events.append(.modeChange(ts: 12_000, cpu: 0, from: .pas, to: .cp, avgQDx10: 10, tf: 0, windowIOs: 100))
        for i in 0..<30 { events.append(io(12_100 + UInt64(i) * 100, mode: .cp)) }
        events.append(io(15_000, mode: .cp))
        return events
    }

    func share(_ report: CPUModeReport, _ mode: String) -> ModeShare { report.modes.first { $0.mode == mode }! }

    @Test func everyTransitionIsCountedWithMatrixTimeAndShare() throws {
        var accumulator = ModeAccumulator()
        for event in Self.script() { accumulator.add(event) }
        let report = accumulator.report()
        #expect(report.dpasSeen && report.message == nil)
        let cpu = try #require(report.cpus.first)
        #expect(cpu.cpu == 0)
        #expect(cpu.transitionsTotal == 5 && cpu.transitionsElided == 0)
        let all = cpu.firstTransitions + cpu.lastTransitions
        #expect(all.map { "\($0.from)→\($0.to)" } == ["PAS→OL", "OL→INT", "INT→OL", "OL→PAS", "PAS→CP"])
        #expect(all[0].avgQD == 1.2 && all[0].tf == 3 && all[0].windowIOs == 100 && all[0].tsNs == 5_000)
        #expect(cpu.matrix["PAS"]?["OL"] == 1 && cpu.matrix["OL"]?["INT"] == 1 && cpu.matrix["INT"]?["OL"] == 1)
        #expect(cpu.matrix["OL"]?["PAS"] == 1 && cpu.matrix["PAS"]?["CP"] == 1 && cpu.matrix["CP"]?["PAS"] == 0)
        #expect(cpu.matrix.values.flatMap(\.values).reduce(0, +) == 5)
        #expect(cpu.finalMode == "CP")
        #expect(cpu.unobservedChanges == 0)

        // Time: PAS 1,000→5,000 and 11,000→12,000; OL 5,000→8,000 and 10,000→11,000; INT 8,000→10,000; CP 12,000→15,000.
        #expect(share(cpu, "PAS").timeNs == 5_000)
        #expect(share(cpu, "OL").timeNs == 4_000)
        #expect(share(cpu, "INT").timeNs == 2_000)
        #expect(share(cpu, "CP").timeNs == 3_000)
        #expect(share(cpu, "EHP").timeNs == 0)
        #expect(share(cpu, "PAS").timeShare == 5_000.0 / 14_000.0)

        #expect(cpu.modes.map(\.ios) == [20, 31, 100, 50, 0])  // INT, CP, PAS, OL, EHP
        #expect(share(cpu, "INT").polled == 0 && share(cpu, "CP").polled == 31)
        #expect(share(cpu, "PAS").ioShare == 100.0 / 201.0)
        #expect(report.totals.modes == cpu.modes)
        #expect(report.totals.transitions == 5)
    }

    @Test func timelineKeepsFirstAndLastAndCountsTheElided() {
        var accumulator = ModeAccumulator(timelineLimit: 2)
        for event in Self.script() { accumulator.add(event) }
        let cpu = accumulator.report().cpus[0]
        #expect(cpu.firstTransitions.map(\.tsNs) == [5_000, 8_000])
        #expect(cpu.lastTransitions.map(\.tsNs) == [11_000, 12_000])
        #expect(cpu.transitionsElided == 1)

        var many = ModeAccumulator(timelineLimit: 3)
        for i in 0..<1_000 {
            many.addTransition(cpu: 1, tsNs: UInt64(i), from: i % 2 == 0 ? .pas : .cp, to: i % 2 == 0 ? .cp : .pas,
                               avgQDx10: 10, tf: 0, windowIOs: 100)
        }
        let busy = many.report().cpus[0]
        #expect(busy.firstTransitions.map(\.tsNs) == [0, 1, 2])
        #expect(busy.lastTransitions.map(\.tsNs) == [997, 998, 999])
        #expect(busy.transitionsElided == 994)
        #expect(busy.matrix["PAS"]?["CP"] == 500 && busy.matrix["CP"]?["PAS"] == 500)
    }

    @Test func modeChangesWithoutTheirEventAreNoticed() {
        var accumulator = ModeAccumulator()
        accumulator.add(Self.io(100, mode: .pas))
        accumulator.add(Self.io(200, mode: .cp))  // the PAS→CP MODE event was lost
        accumulator.add(Self.io(300, mode: .cp))
        let cpu = accumulator.report().cpus[0]
        #expect(cpu.unobservedChanges == 1 && cpu.transitionsTotal == 0)
        #expect(share(cpu, "PAS").timeNs == 100 && share(cpu, "CP").timeNs == 100)
    }

    @Test func aStockKernelSaysItIsNotDPAS() {
        var accumulator = ModeAccumulator()
        for i in 0..<10 { accumulator.add(Self.io(UInt64(i), mode: .unknown)) }
        accumulator.add(.hybridSleep(ts: 50, cpu: 0, pid: 1, tid: 1, requestedNs: 100, armedNs: 40, expiresNs: 140,
                                     firedNs: 140, sleptNs: 0, outcome: .noSleep))
        let report = accumulator.report()
        #expect(!report.dpasSeen)
        #expect(report.message == "not a DPAS kernel: no mode state (struct blk_switch / irq_poll_switch absent)")
        #expect(report.totals.iosUnknownMode == 10)
        #expect(TextRenderer.modes(report).contains("not a DPAS kernel: no mode state"))
    }

    @Test func liveAPIMatchesTheEventPath() {
        let events = Self.script()
        var byEvent = ModeAccumulator()
        for event in events { byEvent.add(event) }

        // The live side: transitions as they happen, the CPU's observed span, I/O counts per mode in bulk.
        var live = ModeAccumulator()
        var iosPerMode: [DPASMode: (count: UInt64, polled: UInt64)] = [:]
        for event in events {
            if event.eventKind == .mode {
                live.addTransition(cpu: 0, tsNs: event.ts_ns, from: event.modeFrom, to: event.modeTo,
                                   avgQDx10: event.avg_qd_x10, tf: event.tf, windowIOs: event.window_ios)
            } else {
                live.noteMode(cpu: 0, tsNs: event.ts_ns, mode: event.modeTo)
                iosPerMode[event.modeTo, default: (0, 0)].count += 1
                iosPerMode[event.modeTo, default: (0, 0)].polled += event.isPolled ? 1 : 0
            }
        }
        for (mode, counts) in iosPerMode { live.addIOs(cpu: 0, mode: mode, count: counts.count, polled: counts.polled) }
        #expect(live.report() == byEvent.report())

        live.setKernelTotals(cpu: 0, KernelModeTotals(cp: 31, pas: 100, ol: 50, int: 20))
        let withKernel = live.report().cpus[0]
        #expect(withKernel.modes.map(\.kernelTotal) == [20, 31, 100, 50, nil])
        live.setKernelTotals(cpu: 1, KernelModeTotals(cp: 1, pas: 2, ol: 3, int: 4))
        #expect(live.report().totals.modes.map(\.kernelTotal) == [24, 32, 102, 53, nil])
        #expect(TextRenderer.modes(live.report()).contains("Kernel total"))
    }
}
