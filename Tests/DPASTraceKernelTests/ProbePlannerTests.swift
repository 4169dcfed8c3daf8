import DPASTraceCore
import Foundation
@testable import DPASTraceKernel
import Testing

/// The planner's choice of how hybrid sleeps are resolved, on the facts of a 5.10-like kernel
/// (hybrid polling, kprobes, the poll, arm, io_schedule and hrtimer_cancel symbols) built from this machine's.
struct ProbePlannerTests {
    private func pollingKernelFacts() -> KernelFacts {
        var facts = KernelFacts.gather(mountTracefs: false)
        facts.hasHybridPolling = true
        facts.hasKprobes = true
        for function in ["blk_poll", "hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel"] {
            facts.symbols[function] = 0xffff_ffff_8100_0000
        }
        facts.hybridLoopRanges = [.init(function: "blk_poll", range: 0xffff_ffff_8140_0000..<0xffff_ffff_8140_0400)]
        // The timer and switch hooks: raw tracepoints, as 5.10 offers them.
        facts.hasBTF = true
        facts.btfTracepointArgs["hrtimer_expire_entry"] = 2
        facts.btfTracepointArgs["sched_switch"] = 3
        facts.btfTracepointArgs["hrtimer_start"] = 2
        return facts
    }

    private func planner(_ facts: KernelFacts) -> ProbePlanner {
        var planner = ProbePlanner(facts: facts, hooks: Hook.forSleepRatio(pas: false))
        planner.refusedKinds[.fentry] = "fentry avoided"
        return planner
    }

    @Test func thePollersPathResolvesSleepsWithEntryProbesOnly() throws {
        let plan = planner(pollingKernelFacts()).plan()
        #expect(plan.resolvesOnPollersPath)
        let hooks = plan.choices.map(\.hook)
        #expect(!hooks.contains(.timerExpire) && !hooks.contains(.contextSwitch), "\(hooks)")
        // No return probe anywhere: each would wrap every poll call, arm or io_schedule.
        let programs = plan.choices.compactMap(\.chosen).flatMap(\.programs)
        #expect(!programs.contains { $0.isReturn }, "\(programs.map(\.name))")
        // The arm's caller tells a hybrid sleep: the poll function is not hooked.
        #expect(plan.choice(.pollWindow) == nil, "\(hooks)")
        let arm = try #require(plan.choice(.sleeperArm))
        #expect(arm.chosen?.programs.map(\.name) == ["arm_enter_kprobe"])
        #expect(arm.notes.contains { $0.contains("armed from inside blk_poll") }, "\(arm.notes)")
        #expect(plan.choice(.sleeperCancel)?.chosen?.programs.map(\.name) == ["cancel_kprobe"])
        let ioSchedule = try #require(plan.choice(.ioSchedule))
        #expect(ioSchedule.chosen?.programs.map(\.name) == ["io_schedule_kprobe"])
        #expect(ioSchedule.notes.contains { $0.contains("hrtimer_cancel") && $0.contains("--off-cpu-time") })
        // Not attached (this is only a plan): losing it loses the classification, and says so.
        let entry = try #require(plan.entries.first { $0.hook == Hook.ioSchedule.rawValue })
        #expect(entry.cost?.contains("cannot be classified") == true, "\(entry.cost ?? "nil")")
    }

    @Test func withoutACancelHookTheTracepointsResolve() throws {
        var facts = pollingKernelFacts()
        facts.symbols["hrtimer_cancel"] = nil
        let plan = planner(facts).plan()
        #expect(!plan.resolvesOnPollersPath)
        #expect(plan.choice(.sleeperCancel) == nil, "planned only on the poller's path")
        #expect(plan.choice(.sleeperArm)?.chosen?.programs.map(\.name) == ["arm_enter_kprobe", "arm_exit_kretprobe"])
        #expect(plan.choice(.pollWindow)?.chosen?.programs.map(\.name) == ["poll_enter_kprobe", "poll_exit_kretprobe"])
        #expect(plan.choice(.contextSwitch)?.chosen != nil && plan.choice(.timerExpire)?.chosen != nil)
    }

    @Test func offCPUTimeKeepsTheTimerAndSwitchTracepoints() throws {
        var planner = planner(pollingKernelFacts())
        planner.measureOffCPUTime = true
        let plan = planner.plan()
        #expect(!plan.resolvesOnPollersPath)
        #expect(plan.choice(.timerExpire)?.chosen?.kind == .tpBTF)
        #expect(plan.choice(.contextSwitch)?.chosen?.kind == .tpBTF)
        #expect(plan.choice(.ioSchedule)?.chosen?.programs.map(\.name) == ["io_schedule_kprobe"])
        #expect(plan.choice(.sleeperCancel) == nil)
        #expect(plan.choice(.ioSchedule)?.chosen?.attachType == "kprobe")
        let entry = try #require(plan.entries.first { $0.hook == Hook.ioSchedule.rawValue })
        #expect(entry.cost?.contains("io_schedule flag is unknown") == true, "\(entry.cost ?? "nil")")
    }

    @Test func anArmSeenOnlyByItsTracepointNeedsTheSwitchTracepoints() throws {
        var planner = planner(pollingKernelFacts())
        planner.failedPrograms["arm_enter_kprobe"] = "program arm_enter_kprobe refused at load (test)"
        let plan = planner.plan()
        #expect(plan.choice(.sleeperArm)?.chosen?.kind == .tpBTF)
        #expect(!plan.resolvesOnPollersPath)
        #expect(plan.choice(.contextSwitch)?.chosen != nil && plan.choice(.timerExpire)?.chosen != nil)
    }

    @Test func withoutTheSleepLoopsAddressesTheTracepointsResolve() throws {
        var facts = pollingKernelFacts()
        facts.hybridLoopRanges = []
        let plan = planner(facts).plan()
        #expect(!plan.resolvesOnPollersPath)
        #expect(plan.choice(.pollWindow)?.chosen?.programs.map(\.name) == ["poll_enter_kprobe", "poll_exit_kretprobe"])
        #expect(plan.choice(.contextSwitch)?.chosen != nil && plan.choice(.timerExpire)?.chosen != nil)
        let ioSchedule = try #require(plan.choice(.ioSchedule))
        #expect(ioSchedule.notes.contains { $0.contains("kptr_restrict") }, "\(ioSchedule.notes)")
    }

    @Test func withoutAnIOScheduleHookTheTracepointsResolve() throws {
        var facts = pollingKernelFacts()
        facts.symbols["io_schedule"] = nil
        let plan = planner(facts).plan()
        #expect(!plan.resolvesOnPollersPath)
        #expect(plan.choice(.ioSchedule)?.chosen == nil)
        #expect(plan.choice(.contextSwitch)?.chosen != nil)
    }

    /// The poller's path does not hook the poll function, so a poll function no probe can attach to
    /// leaves it planned (the tracepoint design, which needs the poll window, could not run).
    @Test func thePollersPathNeedsNoPollFunctionHook() throws {
        var planner = planner(pollingKernelFacts())
        planner.failedPrograms["poll_enter_kprobe"] = "program poll_enter_kprobe refused at load (test)"
        let plan = planner.plan()
        #expect(plan.resolvesOnPollersPath)
        for hook in [Hook.sleeperArm, .ioSchedule, .sleeperCancel] {
            #expect(plan.choice(hook)?.chosen?.kind == .kprobe, "\(hook.rawValue): \(plan.choice(hook)?.unavailableReason ?? "")")
        }
        #expect(plan.choice(.pollWindow) == nil)

        planner.measureOffCPUTime = true // the tracepoint design: it needs the poll window
        let timed = planner.plan()
        #expect(!timed.resolvesOnPollersPath)
        #expect(timed.choice(.sleeperArm)?.unavailableReason == "needs the poll window hook, which is unavailable")
    }

    /// A request's maker is hooked the way its start is keyed: by request pointer (a function hook
    /// on whichever accounting function the kernel has, else the raw tracepoint), or by dev and
    /// sector beside a classic tracepoint start. Without a start it is not hooked at all.
    @Test func theRequestMakerFollowsTheRequestStart() throws {
        var facts = pollingKernelFacts()
        facts.symbols["blk_mq_start_request"] = 0xffff_ffff_8100_0000
        facts.symbols["blk_account_io_start"] = nil // 5.16-6.4: the accounting function is the __ one
        facts.symbols["__blk_account_io_start"] = 0xffff_ffff_8100_0000
        facts.btfTracepointArgs["block_io_start"] = 1
        facts.tracepoints = ["block/block_rq_issue", "block/block_io_start"]
        facts.tracefsPath = "/sys/kernel/tracing"
        var planner = ProbePlanner(facts: facts, hooks: [.requestStart])
        planner.refusedKinds[.fentry] = "fentry avoided"
        var plan = planner.plan()
        #expect(plan.choice(.requestStart)?.chosen?.kind == .kprobe)
        let maker = try #require(plan.choice(.requestMaker)?.chosen)
        #expect(maker.kind == .kprobe && maker.target == "__blk_account_io_start" && maker.programs.map(\.name) == ["maker_kprobe"])
        #expect(plan.choice(.requestMaker)?.rejected.filter { $0.hasPrefix("fentry") }.count == 1, "one reason per attach type")

        planner.refusedKinds[.kprobe] = "kprobe avoided"
        plan = planner.plan()
        #expect(plan.choice(.requestStart)?.chosen?.kind == .tpBTF)
        #expect(plan.choice(.requestMaker)?.chosen?.programs.map(\.name) == ["maker_btf"])

        planner.refusedKinds[.tpBTF] = "tp_btf avoided"
        plan = planner.plan()
        #expect(plan.choice(.requestStart)?.chosen?.kind == .tracepoint)
        #expect(plan.choice(.requestMaker)?.chosen?.programs.map(\.name) == ["maker_tp"])

        planner.refusedKinds[.tracepoint] = "tracepoints avoided"
        plan = planner.plan()
        #expect(plan.choice(.requestStart)?.chosen == nil)
        #expect(plan.choice(.requestMaker)?.unavailableReason?.contains("request start") == true)
        let entry = try #require(plan.entries.first { $0.hook == Hook.requestMaker.rawValue })
        #expect(entry.cost?.contains("credited to the dispatcher") == true, "\(entry.cost ?? "nil")")
    }
}

/// The loader reads libbpf's messages since its load began to find the program a kernel refused:
/// in a long-lived process (the test suite) that must keep working after thousands of messages.
struct LibBPFLogTests {
    @Test func messagesAfterAMarkStayVisiblePastTheCap() {
        // Info level, and no "prog '…' failed": sessions loading concurrently in this process read
        // the same log and must neither count these as warnings nor take them for a refusal.
        for index in 0..<5_000 { LibBPFLog.append(.init(level: 1, text: "LibBPFLogTests filler \(index)")) }
        let mark = LibBPFLog.mark
        LibBPFLog.append(.init(level: 1, text: "LibBPFLogTests after the mark"))
        let since = LibBPFLog.captured(since: mark).filter { $0.text.hasPrefix("LibBPFLogTests") }
        #expect(since.map(\.text) == ["LibBPFLogTests after the mark"])
        #expect(LibBPFLog.mark > mark)
        #expect(LibBPFLog.captured.count <= 4_000)
    }
}

/// The hybrid sleep loop's code ranges, as the arm's caller filter gets them from kallsyms.
struct KallsymsRangeTests {
    @Test func aFunctionEndsAtTheNextTextSymbol() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kallsyms-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
        ffffffff81400000 T blk_poll
        ffffffff81400010 d blk_poll_data
        ffffffff81400000 t blk_poll_alias
        ffffffff81400340 t blk_mq_poll_stats_fn
        ffffffff81400400 T blk_mq_poll_hybrid_sleep
        ffffffff81400480 T hrtimer_sleeper_start_expires
        0000000000000000 T blk_mq_poll
        0000000000000000 T io_schedule

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let read = KernelFacts.readKallsyms(["blk_poll", "io_schedule"], ranges: Set(SnapshotKeys.hybridLoopFunctions), path: path)
        // A data symbol inside it, or another name at the same address, does not end it.
        #expect(read.ranges["blk_poll"] == 0xffff_ffff_8140_0000..<0xffff_ffff_8140_0340)
        #expect(read.ranges["blk_mq_poll_hybrid_sleep"] == 0xffff_ffff_8140_0400..<0xffff_ffff_8140_0480)
        // Hidden addresses (kptr_restrict) give no range; the symbol is still listed.
        #expect(read.ranges["blk_mq_poll"] == nil)
        #expect(read.addresses == ["blk_poll": 0xffff_ffff_8140_0000, "io_schedule": 0])
    }
}
