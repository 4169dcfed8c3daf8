import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// What to trace and what to say about the tracing: shared by every live command, `top` included.
struct LiveTraceOptions: ParsableArguments {
    @Option(name: .long, help: "Trace only this disk, e.g. nvme0n1 (default: every disk).")
    var device: String?

    @Option(name: .long, help: "Trace only requests made, and hybrid sleeps taken, by this process ID (a request is its maker's even when another thread, e.g. an I/O scheduler's kworker, issues it).")
    var pid: UInt32?

    @Option(name: .long, help: "Trace only requests made, and hybrid sleeps taken, by this thread ID.")
    var tid: UInt32?

    @Flag(name: .long, help: "Print the probe plan and libbpf's messages on stderr, and at the end what the kernel side counted (with the poll calls and sleepers armed, counted only then: two per-CPU lookups per polled read).")
    var verbose = false

    @Flag(name: .long, help: "Count each BPF program's runs and run time (the kernel's BPF statistics) and print them on stderr at the end: what the tracing costs, per probe.")
    var probeCosts = false

    @OptionGroup var attach: AttachTypeOptions
    var avoid: [ProbeCandidate.Kind] { attach.avoid }
    var offCPUTime: Bool { attach.offCPUTime }

    /// The options that were given, as typed.
    var given: [String] {
        (device == nil ? [] : ["--device"]) + (pid == nil ? [] : ["--pid"]) + (tid == nil ? [] : ["--tid"])
            + (verbose ? ["--verbose"] : []) + (probeCosts ? ["--probe-costs"] : []) + (avoid.isEmpty ? [] : ["--avoid"])
            + (offCPUTime ? ["--off-cpu-time"] : [])
    }

    /// Live-tracing options with `--from DUMP` would be silently ignored: refuse them instead.
    static func refuse(_ given: [String], withDump dump: String?) throws {
        guard dump != nil, !given.isEmpty else { return }
        throw ValidationError("\(given.joined(separator: ", ")) \(given.count == 1 ? "applies" : "apply") to live tracing, "
            + "not to --from DUMP (a dump holds what its recording traced): leave \(given.count == 1 ? "it" : "them") out")
    }
}

/// What shapes the probe plan (`--avoid TYPE`, `--off-cpu-time`): shared by `plan` and every live command.
struct AttachTypeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Do not use this attach type (fentry, kprobe, tp_btf, tracepoint); hooks fall back to the next one. Repeatable.",
        valueName: "TYPE"), transform: AttachTypeOptions.parse)
    var avoid: [ProbeCandidate.Kind] = []

    @Flag(name: .long, help: ArgumentHelp(
        "Time hybrid sleeps off the CPU with the context-switch and timer tracepoints, even where the poller's own "
        + "path can resolve them.",
        discussion: "By default, where the sleeper's arm, io_schedule and hrtimer_cancel have function hooks (fentry or "
        + "kprobe), a sleep is judged on the poller's path by entry probes: a hybrid sleep = a sleeper armed from inside "
        + "the poll function's code, slept = a voluntary context switch inside "
        + "io_schedule, slept time = the time off the CPU by the scheduler's own accounting, no expiry time. This flag "
        + "adds a hook on the poll function, return probes and programs that run at every "
        + "timer and context switch on the machine, for the moment the timer fired and the time off the CPU by "
        + "the monotonic clock."))
    var offCPUTime = false

    static func parse(_ text: String) throws -> ProbeCandidate.Kind {
        guard let kind = ProbeCandidate.Kind(rawValue: text) else {
            throw ValidationError("unknown attach type '\(text)': use fentry, kprobe, tp_btf or tracepoint")
        }
        return kind
    }
}

/// Options of the live table commands: what to trace, for how long, and per-interval blocks.
struct LiveOptions: ParsableArguments {
    @OptionGroup var trace: LiveTraceOptions

    @Option(name: .long, help: "Stop after this many seconds (default: until Ctrl-C / SIGTERM).")
    var duration: Double?

    @Option(name: .long, help: "Also print a histogram block per interval of this many seconds (JSON Lines with --json), then the total.")
    var interval: Double?

    func validate() throws {
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if let interval, interval <= 0 { throw ValidationError("--interval must be positive") }
    }

    /// The options that were given, as typed.
    var given: [String] {
        trace.given + (duration == nil ? [] : ["--duration"]) + (interval == nil ? [] : ["--interval"])
    }
}

/// Ctrl-C / SIGTERM set a flag that the poll loop checks; the blocking poll returns with EINTR.
enum StopSignal {
    nonisolated(unsafe) static var requested: sig_atomic_t = 0

    static func install() {
        requested = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in StopSignal.requested = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0 // no SA_RESTART: interrupt the poll
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        // A parent may hand down a mask that blocks them (test runners, some supervisors):
        // unblock on this thread, the one that polls, so the signal interrupts the poll.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }
}

/// Runs a live tracing session: attach, poll until the duration ends or a stop signal arrives,
/// report intervals, detach. Every kernel-side error becomes one line on stderr and exit status 1.
enum Live {
    static func stderr(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Opens the session with the plan printed on --verbose, and the libbpf warnings summarized.
    static func open(_ options: LiveTraceOptions, streamEvents: Bool, ringBufferBytes: UInt32 = 16 << 20,
                     pasStateEvents: Bool = false, hooks: Set<Hook> = Set(Hook.allCases)) throws -> TraceSession {
        let session: TraceSession
        do {
            var sessionOptions = TraceSession.Options(
                device: options.device, processID: options.pid, threadID: options.tid, streamEvents: streamEvents,
                ringBufferBytes: ringBufferBytes)
            sessionOptions.pasStateEvents = pasStateEvents
            sessionOptions.programStatistics = options.probeCosts
            sessionOptions.hooks = hooks
            sessionOptions.avoidedAttachTypes = Set(options.avoid)
            sessionOptions.measureOffCPUTime = options.offCPUTime
            sessionOptions.diagnosticCounts = options.verbose
            session = try TraceSession(options: sessionOptions)
        } catch let error as KernelError {
            if options.verbose { LibBPFLog.captured.forEach { stderr($0.text) } }
            throw Offline.fail(error.message)
        }
        if options.verbose {
            stderr(PlanText.render(session.plan.entries, facts: session.facts))
            session.libbpfMessages.forEach { stderr($0.text) }
        } else if !session.unexplainedWarnings.isEmpty {
            stderr("dpas-trace: libbpf reported \(session.unexplainedWarnings.count) warning(s) while loading (see --verbose)")
        }
        for entry in session.plan.entries where entry.status == .failed {
            stderr("dpas-trace: warning: \(entry.hook) could not be attached: \(entry.detail)")
        }
        if let error = session.programStatisticsError { stderr("dpas-trace: warning: no probe costs: \(error)") }
        return session
    }

    /// At the end of a run, on stderr: with --probe-costs each attached program's runs and run
    /// time since `start`; with --verbose what the kernel side counted.
    static func printRunSummary(_ session: TraceSession, _ options: LiveTraceOptions, since start: Date) {
        if options.probeCosts, session.programStatisticsError == nil {
            stderr(ProbeCostText.render(session.programCosts(), seconds: Date().timeIntervalSince(start)))
        }
        if options.verbose, let snapshot = try? session.snapshot() {
            let pollHooked = session.plan.choice(.pollWindow)?.status == .attached
            stderr("dpas-trace: \(snapshot.kernelCountersLine(pollFunctionHooked: pollHooked))")
        }
    }

    /// Polls until done. `onEvents` gets every ring-buffer batch; `onInterval` the numbers of each
    /// --interval period; `onWake` runs after every poll (≤ 100 ms apart) and ends the run when it
    /// returns a reason. Returns the reason the run ended.
    @discardableResult
    static func run(_ session: TraceSession, _ options: LiveOptions,
                    onEvents: (UnsafeBufferPointer<TraceEvent>) throws -> Void = { _ in },
                    onInterval: (KernelSnapshot) throws -> Void = { _ in },
                    onTick: () throws -> Void = {},
                    onWake: () throws -> String? = { nil }) throws -> String {
        StopSignal.install()
        let start = Date()
        defer { printRunSummary(session, options.trace, since: start) }
        var nextInterval = options.interval.map { start.addingTimeInterval($0) }
        var previous = try session.snapshot()
        var batch: [TraceEvent] = []
        batch.reserveCapacity(4096)
        var lastTick = start
        while true {
            if StopSignal.requested != 0 { return "stopped by signal" }
            if let duration = options.duration, Date().timeIntervalSince(start) >= duration { return "duration reached" }
            var timeout: Int32 = 100
            if let duration = options.duration {
                let left = duration - Date().timeIntervalSince(start)
                timeout = Int32(max(1, min(100, left * 1000)))
            }
            let handled = session.poll(timeoutMs: timeout) { batch.append($0.pointee) }
            if handled < 0 { throw Offline.fail("reading the BPF ring buffer failed: \(String(cString: strerror(Int32(-handled))))") }
            if !batch.isEmpty {
                try batch.withUnsafeBufferPointer { try onEvents($0) }
                batch.removeAll(keepingCapacity: true)
            }
            let now = Date()
            if now.timeIntervalSince(lastTick) >= 1 {
                lastTick = now
                try onTick()
            }
            if let due = nextInterval, now >= due, let interval = options.interval {
                let current = try session.snapshot()
                try onInterval(current.since(previous))
                previous = current
                nextInterval = due.addingTimeInterval(interval)
            }
            if let reason = try onWake() { return reason }
        }
    }

    /// Warnings for the report: hooks that are missing and what that costs.
    static func completeness(_ session: TraceSession, _ snapshot: KernelSnapshot, hooks: [Hook]) -> TraceCompleteness {
        var warnings: [String] = []
        // One warning per cause: hooks missing for the same reason are named together.
        var byCause: [(cause: String, hooks: [String])] = []
        for hook in hooks {
            guard let choice = session.plan.choice(hook), choice.status != .attached else { continue }
            let entry = session.plan.entries.first { $0.hook == hook.rawValue }
            let cause = "\(entry?.detail ?? "unavailable"): \(entry?.cost ?? "")"
            if let index = byCause.firstIndex(where: { $0.cause == cause }) {
                byCause[index].hooks.append(hook.rawValue)
            } else {
                byCause.append((cause, [hook.rawValue]))
            }
        }
        for group in byCause {
            warnings.append("not attached: \(group.hooks.joined(separator: ", ")) — \(group.cause)")
        }
        warnings += snapshot.probeWarnings
        return TraceCompleteness(lostEvents: snapshot.lostEvents, warnings: warnings)
    }
}

/// Text form of `--probe-costs`: per attached program, what the kernel counted.
enum ProbeCostText {
    static func render(_ costs: [TraceSession.ProgramCost], seconds: Double) -> String {
        var table = TextTable([.init("Hook", .left), .init("Program", .left), .init("Runs"), .init("Mean"),
                               .init("Total"), .init("Of one CPU"), .init("Skipped")])
        // Of one CPU's time over the run (may pass 100% when probes run on several CPUs at once).
        func share(_ ns: UInt64) -> String { seconds > 0 ? String(format: "%.2f%%", Double(ns) / (seconds * 1e7)) : "–" }
        for cost in costs {
            table.add([cost.hook, cost.program, Format.count(cost.runs), Format.duration(cost.meanNs),
                       Format.duration(cost.runTimeNs), share(cost.runTimeNs), Format.count(cost.skipped)])
        }
        let runs = costs.reduce(0) { $0 + $1.runs }, total = costs.reduce(0) { $0 + $1.runTimeNs }
        table.add(["all", "", Format.count(runs), Format.duration(runs == 0 ? nil : Double(total) / Double(runs)),
                   Format.duration(total), share(total), Format.count(costs.reduce(0) { $0 + $1.skipped })])
        let title = String(format: "Probe costs over %.1f s (the kernel's BPF run-time statistics, which add two clock reads per run):", seconds)
        let footer = "  Skipped: runs the kernel did not make because another BPF program was running on that CPU."
        return ([title] + table.render(indent: 2) + [footer]).joined(separator: "\n")
    }
}

/// Text form of the probe plan (plan command and --verbose).
enum PlanText {
    static func render(_ entries: [ProbePlanEntry], facts: KernelFacts) -> String {
        var lines = ["Probe plan for Linux \(facts.release)"]
        lines.append("  BTF: \(facts.hasBTF ? "yes" : "no")   kprobes: \(facts.hasKprobes ? "yes" : "no")   tracefs: \(facts.tracefsPath ?? "not mounted")   hybrid polling: \(facts.hasHybridPolling ? "yes" : "no (removed in 6.4)")   DPAS: \(facts.isDPASKernel ? "yes" : "no")")
        lines.append("  QUEUE_FLAG_STATS: bit \(facts.queueFlagStatsBit) (\(facts.queueFlagStatsSource))")
        lines.append("")
        for entry in entries {
            lines.append("  \(entry.hook)")
            lines.append("      \(entry.status.rawValue): \(entry.attachType) \(entry.target)")
            lines.append("      why: \(entry.detail)")
            if let cost = entry.cost { lines.append("      cost: \(cost)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// The live halves of sleep-ratio and buckets: the in-kernel aggregates through the same
/// accumulators and renderers as the offline path, so live tables and reports agree.
extension Live {
    /// The hooks whose absence sleep-ratio reports beside its table (those not planned are not missing).
    static let sleepHooks = Hook.allCases.filter(\.isSleepHook)

    /// `pas`: also collect DPAS's PAS per-bucket state (PAS_STATE events) and show it after the table.
    static func sleepRatio(_ options: LiveOptions, perCPU: Bool, json: Bool, pas: Bool = false) throws {
        let session = try open(options.trace, streamEvents: false, pasStateEvents: pas, hooks: Hook.forSleepRatio(pas: pas))
        defer { session.close() }
        var pasState = PASStateCollector(facts: session.facts)
        func report(_ snapshot: KernelSnapshot) -> SleepRatioReport {
            var accumulator = SleepRatioAccumulator(perCPU: perCPU)
            snapshot.addSleeps(to: &accumulator)
            return accumulator.report(completeness: completeness(session, snapshot, hooks: sleepHooks))
        }
        // With --interval: a histogram block (or JSON line) per interval, then the total.
        var intervalIndex = 0
        let started = Date()
        try run(session, options, onEvents: { batch in
            if pas { pasState.add(batch) }
        }, onInterval: { delta in
            intervalIndex += 1
            let seconds = options.interval ?? 0
            Offline.emit(json
                ? try IntervalHistograms.jsonLine(IntervalHistograms.sleepRecord(delta, report: report(delta), interval: intervalIndex, seconds: seconds))
                : IntervalHistograms.sleepBlock(delta, index: intervalIndex, seconds: seconds))
        })
        let total = try session.snapshot()
        if options.interval != nil {
            Offline.emit(json
                ? try IntervalHistograms.jsonLine(IntervalHistograms.sleepRecord(total, report: report(total), interval: nil, seconds: Date().timeIntervalSince(started)))
                : "--- total\n" + TextRenderer.sleepRatio(report(total)))
        } else if !pas || !json {
            Offline.emit(json ? try Offline.json(report(total)) : TextRenderer.sleepRatio(report(total)))
        }
        if pas {
            let pasReport = pasState.report(device: options.trace.device)
            if json {
                // With --interval the output is JSON Lines: the PAS state is one more line.
                Offline.emit(try options.interval == nil
                    ? Offline.json(SleepRatioWithPAS(sleepRatio: report(total), pasState: pasReport))
                    : IntervalHistograms.jsonLine(["pas_state": pasReport]))
            } else {
                Offline.emit("\n" + TextRenderer.pasState(pasReport))
            }
        }
    }

    static func buckets(_ options: LiveOptions, json: Bool) throws {
        let session = try open(options.trace, streamEvents: false, hooks: Hook.forBuckets)
        defer { session.close() }
        func report(_ snapshot: KernelSnapshot) -> BucketReport {
            var accumulator = BucketAccumulator()
            snapshot.addBuckets(to: &accumulator)
            return accumulator.report(completeness: completeness(session, snapshot, hooks: [.requestStart]))
        }
        // With --interval: a bucket distribution (or JSON line) per interval, then the total.
        var intervalIndex = 0
        let started = Date()
        try run(session, options, onInterval: { delta in
            intervalIndex += 1
            let seconds = options.interval ?? 0
            Offline.emit(json
                ? try IntervalHistograms.jsonLine(IntervalHistograms.bucketRecord(delta, report: report(delta), interval: intervalIndex, seconds: seconds))
                : IntervalHistograms.bucketBlock(delta, index: intervalIndex, seconds: seconds))
        })
        let total = try session.snapshot()
        if options.interval != nil {
            Offline.emit(json
                ? try IntervalHistograms.jsonLine(IntervalHistograms.bucketRecord(total, report: report(total), interval: nil, seconds: Date().timeIntervalSince(started)))
                : "--- total\n" + TextRenderer.buckets(report(total)))
        } else {
            Offline.emit(json ? try Offline.json(report(total)) : TextRenderer.buckets(report(total)))
        }
    }
}
