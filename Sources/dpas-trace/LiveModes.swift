import CDPASEvents
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// The live halves of `modes` and of `sleep-ratio --pas`: DPAS mode transitions and PAS state.
extension Live {
    /// CLOCK_MONOTONIC now, the clock of bpf_ktime_get_ns.
    static func monotonicNs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// `dpas-trace modes` live. On a kernel without DPAS state it traces like every live command (so
    /// the report says what could not be attached) and says "not a DPAS kernel: …" (exit 0); without
    /// the privileges to trace it gives that answer at once, since it needs no BPF.
    static func modes(_ options: LiveOptions, json: Bool) throws {
        let facts = KernelFacts.gather()
        let notDPAS = DPASState.unavailableReason(facts)
        if let notDPAS, !Privilege.isSufficient {
            let entry = ProbePlanner(facts: facts).plan().entries.first { $0.hook == Hook.dpasMode.rawValue }
            var report = ModeAccumulator().report()
            report.message = notDPAS
            report.warnings = ["not attached: \(Hook.dpasMode.rawValue) — \(entry?.cost ?? "nothing to observe")"]
            Offline.emit(json ? try Offline.json(report) : TextRenderer.modes(report))
            return
        }
        let session = try open(options.trace, streamEvents: false)
        defer { session.close() }
        // MODE events are rare (a transition per param5…param7 I/Os at most): keep them all.
        var transitions: [TraceEvent] = []
        var intervalTransitions: [TraceEvent] = []
        let startNs = monotonicNs()
        var intervalStartNs = startNs
        var intervalStartModes: [DPASMode?]?

        func report(_ snapshot: KernelSnapshot, events: [TraceEvent], since: UInt64, startModes: [DPASMode?]?) -> ModeReport {
            var accumulator = ModeAccumulator()
            snapshot.dpas.begin(&accumulator, startNs: since, startModes: startModes)
            for event in events { accumulator.add(event) }
            snapshot.dpas.finish(&accumulator, nowNs: monotonicNs())
            var report = accumulator.report(completeness: completeness(session, snapshot, hooks: [.dpasMode, .requestStart]))
            if !report.dpasSeen {
                report.message = notDPAS ?? "DPAS kernel, but no CPU's blk_switch was observed (no block I/O while tracing)"
            }
            return report
        }
        func emit(_ report: ModeReport, heading: String?) throws {
            if let heading, !json { Offline.emit(heading + "\n") }
            Offline.emit(json ? try Offline.json(report) : TextRenderer.modes(report))
        }

        var intervalIndex = 0
        try run(session, options, onEvents: { batch in
            for event in batch where event.kind == EventKind.mode.rawValue {
                transitions.append(event)
                intervalTransitions.append(event)
            }
        }, onInterval: { delta in
            intervalIndex += 1
            try emit(report(delta, events: intervalTransitions, since: intervalStartNs, startModes: intervalStartModes),
                     heading: "--- interval \(intervalIndex) (\(options.interval ?? 0) s)")
            intervalTransitions.removeAll()
            intervalStartNs = monotonicNs()
            intervalStartModes = delta.dpas.modes
        })
        try emit(report(try session.snapshot(), events: transitions, since: startNs, startModes: nil),
                 heading: options.interval == nil ? nil : "--- total")
    }

    /// PAS_STATE events of a `sleep-ratio --pas` run, and the report they make.
    struct PASStateCollector {
        var accumulator = PASStateAccumulator()
        let facts: KernelFacts

        mutating func add(_ batch: UnsafeBufferPointer<TraceEvent>) {
            for event in batch where event.kind == EventKind.pasState.rawValue { accumulator.add(event) }
        }

        /// `pas_d_init` of the traced disk from sysfs (ns), nil when not a DPAS queue or no --device.
        static func dInit(device: String?) -> UInt64? {
            guard let device else { return nil }
            let name = device.hasPrefix("/dev/") ? String(device.dropFirst(5)) : device
            guard let text = try? String(contentsOfFile: "/sys/block/\(name)/queue/pas_d_init", encoding: .utf8) else { return nil }
            return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        func report(device: String?) -> PASStateReport {
            accumulator.report(dInitNs: PASStateCollector.dInit(device: device),
                               unavailable: DPASState.pasStateUnavailableReason(facts))
        }
    }
}

/// `sleep-ratio --pas --json`: both reports in one document.
struct SleepRatioWithPAS: Encodable {
    var sleepRatio: SleepRatioReport
    var pasState: PASStateReport
    enum CodingKeys: String, CodingKey { case sleepRatio = "sleep_ratio", pasState = "pas_state" }
}
