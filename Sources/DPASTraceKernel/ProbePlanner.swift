import CLibBPF
import DPASTraceCore
import Foundation

/// The hooks dpas-trace needs, and for each the programs in `bpf/dpas_trace.bpf.c`
/// that can serve it, best first: fentry/fexit → kprobe/kretprobe → tp_btf → tracepoint.
public enum Hook: String, CaseIterable, Sendable {
    case requestStart = "request start"
    case requestMaker = "request maker"
    case requestDone = "request completion"
    case pollWindow = "poll window"
    case sleeperArm = "hybrid sleep: sleeper armed"
    case ioSchedule = "hybrid sleep: io_schedule"
    case sleeperCancel = "hybrid sleep: sleeper cancelled"
    case timerExpire = "hybrid sleep: timer fired"
    case contextSwitch = "hybrid sleep: context switch"
    case dpasMode = "DPAS mode transitions"

    /// Hooks that only matter where hybrid polling exists.
    public var isSleepHook: Bool {
        switch self {
        case .pollWindow, .sleeperArm, .ioSchedule, .sleeperCancel, .timerExpire, .contextSwitch: true
        default: false
        }
    }

    /// What the analyses lose without this hook.
    var costWhenMissing: String {
        switch self {
        case .requestStart: "buckets has nothing to count: no request starts are seen"
        case .requestMaker:
            "a request is credited to the thread that issued it to the driver: one an I/O scheduler or a kworker "
                + "dispatched for another thread is credited to the dispatcher (and --pid/--tid judge it by that thread), "
                + "and one the driver sent back busy counts again when issued again"
        case .requestDone: "no completion latency (RQ_DONE events); bucket counts are unaffected"
        case .pollWindow: "hybrid sleeps cannot be told apart from other sleepers: sleep-ratio has nothing to measure"
        case .ioSchedule: "the io_schedule flag is unknown; slept/no-sleep is unaffected (judged by the context-switch tracepoint)"
        case .sleeperArm, .sleeperCancel, .timerExpire, .contextSwitch:
            "hybrid sleeps cannot be classified: sleep-ratio has nothing to measure"
        case .dpasMode:
            "mode changes are seen only at request starts and sleeper arming; no PAS per-bucket state (sleep-ratio --pas)"
        }
    }
}

extension Hook {
    /// What sleep-ratio reads: the sleep hooks with their optional io_schedule flag, and
    /// the DPAS mode hook only for --pas. No request hooks: its table does not use them.
    public static func forSleepRatio(pas: Bool) -> Set<Hook> {
        let sleep = Set(Hook.allCases.filter(\.isSleepHook))
        return pas ? sleep.union([.dpasMode]) : sleep
    }

    /// What buckets reads: request starts.
    public static let forBuckets: Set<Hook> = [.requestStart]
}

/// One way to serve a hook: an attach type, a kernel target and the program(s) to attach.
public struct ProbeCandidate: Sendable, Equatable {
    public enum Kind: String, Sendable { case fentry, kprobe, tpBTF = "tp_btf", tracepoint }
    public var kind: Kind
    /// Function, or "category:name" for tracepoints.
    public var target: String
    /// BPF program names in the object and whether each is the return-side probe.
    public var programs: [(name: String, isReturn: Bool)]

    /// e.g. "kprobe+kretprobe", "fentry", "tp_btf".
    public var attachType: String {
        switch kind {
        case .fentry: programs.count > 1 ? "fentry+fexit" : "fentry"
        case .kprobe: programs.count > 1 ? "kprobe+kretprobe" : "kprobe"
        case .tpBTF: "tp_btf"
        case .tracepoint: "tracepoint"
        }
    }

    public static func == (lhs: ProbeCandidate, rhs: ProbeCandidate) -> Bool {
        lhs.kind == rhs.kind && lhs.target == rhs.target && lhs.programs.map(\.name) == rhs.programs.map(\.name)
    }
}

/// The plan: for every hook the candidate chosen (nil: none usable) and why the better ones were not.
public struct ProbePlan: Sendable {
    public struct Choice: Sendable {
        public var hook: Hook
        public var chosen: ProbeCandidate?
        /// Candidates passed over, each with the reason ("kprobe: kprobes not configured").
        public var rejected: [String]
        /// Set when nothing can serve the hook for a reason larger than attach types.
        public var unavailableReason: String?
        /// Records why a candidate was passed over; two targets of one attach type refused for the same
        /// reason read once.
        mutating func reject(_ reason: String) {
            if !rejected.contains(reason) { rejected.append(reason) }
        }
        /// Facts about this hook on this kernel worth showing beside the choice.
        public var notes: [String] = []
        /// Filled after attaching.
        public var status: ProbePlanEntry.Status = .unavailable
        public var attachError: String?
    }

    public var choices: [Choice]
    /// Hybrid sleep attempts are resolved on the poller's path, by entry probes only: slept = a
    /// voluntary context switch in io_schedule, slept_ns = the scheduler's account of the time off
    /// the CPU, resolved at the sleep loop's hrtimer_cancel. The timer and context-switch
    /// tracepoints, which run for every timer and switch on the machine, and the return probes of
    /// the poll window and the arm are not planned. False: they are, and time the sleep and expiry.
    public var resolvesOnPollersPath = false

    /// The plan as the dump and `dpas-trace plan` show it.
    public var entries: [ProbePlanEntry] {
        choices.map { choice in
            var detail = choice.rejected + choice.notes
            if let reason = choice.unavailableReason { detail.insert(reason, at: 0) }
            if let error = choice.attachError { detail.insert(error, at: 0) }
            var lost = choice.status == .attached ? nil : choice.hook.costWhenMissing
            if choice.hook.isSleepHook, choice.unavailableReason == ProbePlanner.noHybridPolling {
                lost = "nothing lost: this kernel never sleeps in the poll path, so sleep-ratio has nothing to measure"
            }
            if choice.hook == .ioSchedule && resolvesOnPollersPath && choice.status != .attached {
                lost = "hybrid sleeps cannot be classified: slept is judged by a switch inside io_schedule"
            }
            if choice.hook == .dpasMode, let reason = choice.unavailableReason, reason.hasPrefix("not a DPAS kernel") {
                lost = "nothing lost: there is no DPAS state to observe; modes says so"
            }
            return ProbePlanEntry(
                hook: choice.hook.rawValue, target: choice.chosen?.target ?? "-",
                attachType: choice.chosen?.attachType ?? "none", status: choice.status,
                detail: detail.isEmpty ? "best option available" : detail.joined(separator: "; "), cost: lost)
        }
    }

    public func choice(_ hook: Hook) -> Choice? { choices.first { $0.hook == hook } }
}

/// Chooses a candidate per hook from what the kernel offers.
public struct ProbePlanner: Sendable {
    public var facts: KernelFacts
    /// Attach the sleep tracepoints even without hybrid polling (tests: proves they pass the verifier).
    public var forceSleepTracepoints: Bool
    /// Attach types ruled out at load time (e.g. fentry refused with EPERM), with the reason.
    public var refusedKinds: [ProbeCandidate.Kind: String] = [:]
    /// Candidates that failed to load, by program name, with the reason.
    public var failedPrograms: [String: String] = [:]
    /// The hooks the command needs: the others are left out of the plan, so none of their programs
    /// is loaded or run (each probe costs the traced workload time; see `--probe-costs`).
    public var hooks: Set<Hook>
    /// Time hybrid sleeps off the CPU from the context-switch and timer tracepoints even where the
    /// poller's own path (function hooks on the arm, io_schedule and hrtimer_cancel) could resolve
    /// them: expiry times and the monotonic clock, for a program run at every timer and switch on
    /// the machine. Also needed for sleepers that do not use io_schedule (classifyEverySleeper:
    /// nanosleep).
    public var measureOffCPUTime = false

    static let noHybridPolling = "no hybrid polling in this kernel (removed in 6.4: request_queue has no poll_nsec)"

    public init(facts: KernelFacts, forceSleepTracepoints: Bool = false, hooks: Set<Hook> = Set(Hook.allCases)) {
        self.facts = facts
        self.forceSleepTracepoints = forceSleepTracepoints
        // Completions are matched to request starts, and starts credited to the request's maker:
        // none is planned without the start.
        let requests = hooks.contains(.requestDone) ? hooks.union([.requestStart]) : hooks
        self.hooks = requests.contains(.requestStart) ? requests.union([.requestMaker]) : requests
    }

    /// Every candidate for a hook, best first, whether usable or not.
    func candidates(for hook: Hook) -> [ProbeCandidate] {
        let poll = facts.pollFunction ?? "blk_mq_poll"
        switch hook {
        case .requestStart:
            let btfIssue = facts.btfTracepointArgs["block_rq_issue"] == 2 ? "rq_issue_btf_q_rq" : "rq_issue_btf"
            return [
                ProbeCandidate(kind: .fentry, target: "blk_mq_start_request", programs: [("rq_start_fentry", false)]),
                ProbeCandidate(kind: .kprobe, target: "blk_mq_start_request", programs: [("rq_start_kprobe", false)]),
                ProbeCandidate(kind: .tpBTF, target: "block:block_rq_issue", programs: [(btfIssue, false)]),
                ProbeCandidate(kind: .tracepoint, target: "block:block_rq_issue", programs: [("rq_issue_tp", false)]),
            ]
        case .requestMaker:
            // blk_account_io_start runs in the submitting thread as a bio becomes a request (5.16-6.4:
            // __blk_account_io_start; 6.5+ inline, with the block_io_start tracepoint in it).
            let functions = ["blk_account_io_start", "__blk_account_io_start"]
            return functions.map { ProbeCandidate(kind: .fentry, target: $0, programs: [("maker_fentry", false)]) }
                + functions.map { ProbeCandidate(kind: .kprobe, target: $0, programs: [("maker_kprobe", false)]) }
                + Self.tracepointPair("block:block_io_start", btf: "maker_btf", classic: "maker_tp")
        case .requestDone:
            return [
                ProbeCandidate(kind: .tpBTF, target: "block:block_rq_complete", programs: [("rq_done_btf", false)]),
                ProbeCandidate(kind: .tracepoint, target: "block:block_rq_complete", programs: [("rq_done_tp", false)]),
            ]
        case .pollWindow:
            return [
                ProbeCandidate(kind: .fentry, target: poll, programs: [("poll_enter_fentry", false), ("poll_exit_fexit", true)]),
                ProbeCandidate(kind: .kprobe, target: poll, programs: [("poll_enter_kprobe", false), ("poll_exit_kretprobe", true)]),
            ]
        case .sleeperArm:
            // The arm itself fires for sleepers only and sees the requested ns exactly; the
            // hrtimer_start tracepoint, the fallback, fires for every timer on the machine.
            let target = "hrtimer_sleeper_start_expires"
            return [
                ProbeCandidate(kind: .fentry, target: target, programs: [("arm_enter_fentry", false), ("arm_exit_fexit", true)]),
                ProbeCandidate(kind: .kprobe, target: target, programs: [("arm_enter_kprobe", false), ("arm_exit_kretprobe", true)]),
            ] + Self.tracepointPair("timer:hrtimer_start", btf: "hrtimer_start_btf", classic: "hrtimer_start_tp")
        case .ioSchedule:
            return [
                ProbeCandidate(kind: .fentry, target: "io_schedule", programs: [("io_schedule_fentry", false)]),
                ProbeCandidate(kind: .kprobe, target: "io_schedule", programs: [("io_schedule_kprobe", false)]),
            ]
        case .sleeperCancel:
            // Planned only on the poller's path (see resolvesOnPollersPath): it ends each attempt.
            return [
                ProbeCandidate(kind: .fentry, target: "hrtimer_cancel", programs: [("cancel_fentry", false)]),
                ProbeCandidate(kind: .kprobe, target: "hrtimer_cancel", programs: [("cancel_kprobe", false)]),
            ]
        // These fire for every timer and context switch on the machine: the raw (tp_btf) form spares
        // the kernel formatting a classic tracepoint record on each hit.
        case .timerExpire:
            return Self.tracepointPair("timer:hrtimer_expire_entry", btf: "hrtimer_expire_btf", classic: "hrtimer_expire_tp")
        case .contextSwitch:
            return Self.tracepointPair("sched:sched_switch", btf: "sched_switch_btf", classic: "sched_switch_tp")
        case .dpasMode:
            // DPAS is a 5.18 patch: its poll entry point is blk_mq_poll(q, cookie, iob, flags).
            return [
                ProbeCandidate(kind: .fentry, target: "blk_mq_poll",
                               programs: [("dpas_poll_enter_fentry", false), ("dpas_poll_exit_fexit", true)]),
                ProbeCandidate(kind: .kprobe, target: "blk_mq_poll",
                               programs: [("dpas_poll_enter_kprobe", false), ("dpas_poll_exit_kretprobe", true)]),
            ]
        }
    }

    private static func tracepointPair(_ target: String, btf: String, classic: String) -> [ProbeCandidate] {
        [ProbeCandidate(kind: .tpBTF, target: target, programs: [(btf, false)]),
         ProbeCandidate(kind: .tracepoint, target: target, programs: [(classic, false)])]
    }

    /// Why a candidate cannot be used on this kernel, or nil if it can.
    func unusable(_ candidate: ProbeCandidate) -> String? {
        for program in candidate.programs {
            if let failure = failedPrograms[program.name] { return failure }
        }
        if let refusal = refusedKinds[candidate.kind] { return refusal }
        switch candidate.kind {
        case .fentry:
            if !facts.hasBTF { return "no kernel BTF (/sys/kernel/btf/vmlinux)" }
            if !facts.btfFunctions.contains(candidate.target) {
                return facts.symbols[candidate.target] == nil
                    ? "\(candidate.target) is not a symbol (inlined or absent)" : "\(candidate.target) has no BTF function record"
            }
        case .kprobe:
            if !facts.hasKprobes { return "kprobes not available (CONFIG_KPROBES / CONFIG_KPROBE_EVENTS off)" }
            if facts.symbols[candidate.target] == nil { return "\(candidate.target) not in /proc/kallsyms (inlined or absent)" }
        case .tpBTF:
            let name = String(candidate.target.split(separator: ":").last ?? "")
            if !facts.hasBTF { return "no kernel BTF" }
            if facts.btfTracepointArgs[name] == nil { return "no BTF prototype btf_trace_\(name)" }
        case .tracepoint:
            let path = candidate.target.replacingOccurrences(of: ":", with: "/")
            if facts.tracefsPath == nil { return "tracefs not mounted and could not be mounted" }
            if !facts.tracepoints.contains(path) { return "tracepoint \(candidate.target) not in tracefs" }
        }
        return nil
    }

    /// The first candidate of a hook this kernel can run: the one the plan chooses.
    private func firstUsable(_ hook: Hook) -> ProbeCandidate? { candidates(for: hook).first { unusable($0) == nil } }

    /// The arm, io_schedule and hrtimer_cancel can all be hooked at function entry (fentry or kprobe).
    private var sleepLoopHasFunctionHooks: Bool {
        let functionHooks: Set<ProbeCandidate.Kind> = [.fentry, .kprobe]
        return [Hook.sleeperArm, .ioSchedule, .sleeperCancel].allSatisfy { hook in
            hooks.contains(hook) && firstUsable(hook).map { functionHooks.contains($0.kind) } == true
        }
    }

    /// The functions whose code holds the sleep loop, as the arm's caller is checked against them.
    private var sleepLoopCallers: [String] { facts.hybridLoopRanges.prefix(Int(DPT_ARM_CALLER_RANGES)).map(\.function) }

    /// The design for hybrid sleeps (`ProbePlan.resolvesOnPollersPath`), decided before any hook is
    /// planned: each design has hooks of its own.
    private var resolvesOnPollersPath: Bool {
        (facts.hasHybridPolling || forceSleepTracepoints) && !measureOffCPUTime && sleepLoopHasFunctionHooks
            && !sleepLoopCallers.isEmpty
    }

    /// The plan for this kernel (before attaching; statuses are filled in by the session).
    public func plan() -> ProbePlan {
        var choices: [ProbePlan.Choice] = []
        let onPollersPath = resolvesOnPollersPath
        for hook in Hook.allCases where hooks.contains(hook) {
            // Each design plans its own hooks: the poller's path ends attempts at the sleeper's cancel
            // and tells a hybrid sleep by the arm's caller (no poll window); the tracepoints end them at
            // the timer's expiry and the context switches.
            let otherDesign: Set<Hook> = onPollersPath ? [.timerExpire, .contextSwitch, .pollWindow] : [.sleeperCancel]
            if otherDesign.contains(hook) { continue }
            var choice = ProbePlan.Choice(hook: hook, chosen: nil, rejected: [])
            if hook == .dpasMode, let reason = DPASState.unavailableReason(facts) {
                choice.unavailableReason = reason
                choices.append(choice)
                continue
            }
            if hook == .requestStart, facts.isDPASKernel { choice.notes.append(DPASState.bucketNote) }
            if hook.isSleepHook && !facts.hasHybridPolling && !forceSleepTracepoints {
                choice.unavailableReason = ProbePlanner.noHybridPolling
                choices.append(choice)
                continue
            }
            if hook == .requestDone || hook == .requestMaker {
                guard let start = choices.first(where: { $0.hook == .requestStart })?.chosen else {
                    choice.unavailableReason = "needs the request start hook, which is unavailable"
                    choices.append(choice)
                    continue
                }
                // Completions and makers are matched to starts by request pointer, or by dev+sector on
                // classic tracepoints.
                let wantClassic = start.kind == .tracepoint
                for candidate in candidates(for: hook) {
                    if (candidate.kind == .tracepoint) != wantClassic {
                        choice.reject("\(candidate.attachType): must match the request-start hook (\(start.attachType))")
                    } else if let why = unusable(candidate) {
                        choice.reject("\(candidate.attachType): \(why)")
                    } else {
                        choice.chosen = candidate
                        break
                    }
                }
                choices.append(choice)
                continue
            }
            for candidate in candidates(for: hook) {
                if let why = unusable(candidate) {
                    choice.reject("\(candidate.attachType): \(why)")
                } else {
                    choice.chosen = candidate
                    break
                }
            }
            if hook == .sleeperArm, let kind = choice.chosen?.kind, kind == .tpBTF || kind == .tracepoint {
                choice.notes.append("no function hook for the arm: requested sleep is estimated as expires − now at hrtimer_start "
                    + "(a few ns off, so exact rows may spill into log2 rows); 'fired while arming' is unknown")
            }
            if hook.isSleepHook, hook != .pollWindow, !onPollersPath,
               let window = choices.first(where: { $0.hook == .pollWindow }), window.chosen == nil, !forceSleepTracepoints {
                choice.chosen = nil
                choice.unavailableReason = "needs the poll window hook, which is unavailable"
            }
            if onPollersPath && hook == .sleeperArm {
                // Entry probes only: the arm's return probe belongs to the tracepoint design (the arm's
                // edge for 'fired while arming').
                choice.chosen?.programs.removeAll { $0.isReturn }
                choice.notes.append("a hybrid sleep is a sleeper armed from inside \(sleepLoopCallers.joined(separator: " / ")) "
                    + "(its return address, within the function's code in /proc/kallsyms): no hook on the poll function")
            }
            if hook == .ioSchedule, choice.chosen != nil {
                if onPollersPath {
                    choice.notes.append("hybrid sleeps are resolved on the poller's path, by entry probes only: slept = a "
                        + "voluntary context switch in io_schedule, slept time = the time off the CPU by the scheduler's own "
                        + "accounting, resolved at the sleep loop's hrtimer_cancel; the timer and context-switch tracepoints "
                        + "(a program run for every timer and switch on the machine) are not attached (--off-cpu-time "
                        + "attaches them: expiry times, and the time off the CPU by the monotonic clock)")
                } else if !measureOffCPUTime && sleepLoopHasFunctionHooks && sleepLoopCallers.isEmpty {
                    choice.notes.append("hybrid sleeps are timed by the timer and context-switch tracepoints: the poller's path "
                        + "needs the addresses of \(SnapshotKeys.hybridLoopFunctions.joined(separator: " / ")) in /proc/kallsyms "
                        + "(shown to root only, to nobody with kernel.kptr_restrict=2)")
                }
            }
            choices.append(choice)
        }
        var plan = ProbePlan(choices: choices)
        plan.resolvesOnPollersPath = onPollersPath
        return plan
    }
}
