import Foundation
import Testing
@testable import DPASTraceCore

/// The doctor's rules on settings maps shaped exactly like SystemSnapshot's output.
@Suite struct DoctorTests {
    /// The seed's QEMU guest on the DPAS 5.18 kernel after all its runtime fixes: DPAS configured
    /// the artifact's way, poll queues, hybrid path on, WBT active. Each test breaks one thing.
    static func dpasGuest(device: String = "nvme0n1") -> [String: String] {
        var settings: [String: String] = [
            SnapshotKeys.kernelRelease: "5.18.0-rc6-dpas-fast26",
            SnapshotKeys.kernelBTF: "present",
            SnapshotKeys.kernelKprobes: "present",
            SnapshotKeys.nvmePollQueues: "2",
            SnapshotKeys.machineHypervisor: "present",
            SnapshotKeys.machineProduct: "QEMU Standard PC (i440FX + PIIX, 1996)",
            SnapshotKeys.snapshotDevices: device,
        ]
        let queue: [String: String] = [
            "io_poll": "1", "io_poll_delay": "0", "wbt_lat_usec": "2000",
            "scheduler": "[none] mq-deadline kyber", "nomerges": "0",
        ]
        for (file, value) in queue { settings[SnapshotKeys.queue(device, file)] = value }
        let knobs: [String: String] = [
            "pas_enabled": "1", "pas_adaptive_enabled": "1", "pas_d_init": "3960", "pas_up_init": "5",
            "pas_dn_init": "5", "pas_heat_up": "1", "pas_cool_dn": "1", "pas_min_dn": "1", "pas_max_dn": "10",
            "pas_max_no_lock": "0", "pas_poll_threshold": "0", "pas_exception": "0", "ehp_enabled": "0",
            "switch_enabled": "1", "switch_param1": "0", "switch_param2": "10", "switch_param3": "10",
            "switch_param4": "1", "switch_param5": "100", "switch_param6": "1000", "switch_param7": "10000",
            "logging_enabled": "0",
        ]
        for (knob, value) in knobs { settings[SnapshotKeys.queue(device, knob)] = value }
        // What dpas-kernel.md lists for the DPAS tree's kallsyms: the hybrid functions are inlined.
        let present: Set = ["blk_mq_poll", "blk_mq_start_request", "__blk_account_io_start",
                            "hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel", "irq_poll_switch"]
        for symbol in SnapshotKeys.symbols {
            settings[SnapshotKeys.symbol(symbol)] = present.contains(symbol) ? "present" : "absent"
        }
        for tracepoint in SnapshotKeys.tracepoints { settings[SnapshotKeys.tracepoint(tracepoint)] = "present" }
        return settings
    }

    /// This project's own VM: stock 6.18, no NVMe, no kprobes.
    static func stock618() -> [String: String] {
        var settings: [String: String] = [
            SnapshotKeys.kernelRelease: "6.18.44-fc-v657",
            SnapshotKeys.kernelBTF: "present",
            SnapshotKeys.kernelKprobes: "absent",
            SnapshotKeys.nvmePollQueues: "error: No such file or directory",
            SnapshotKeys.machineHypervisor: "present",
            SnapshotKeys.snapshotDevices: "vda",
            SnapshotKeys.snapshotNote: "no NVMe device under /sys/block: showing every non-virtual block device (vda)",
        ]
        let queue = ["io_poll": "0", "io_poll_delay": "-1", "wbt_lat_usec": "75000",
                     "scheduler": "none [mq-deadline] kyber bfq", "nomerges": "0"]
        for (file, value) in queue { settings[SnapshotKeys.queue("vda", file)] = value }
        let present: Set = ["blk_mq_poll", "blk_mq_start_request", "blk_account_io_start", "hrtimer_sleeper_start_expires",
                            "io_schedule"]
        for symbol in SnapshotKeys.symbols {
            settings[SnapshotKeys.symbol(symbol)] = present.contains(symbol) ? "present" : "absent"
        }
        for tracepoint in SnapshotKeys.tracepoints { settings[SnapshotKeys.tracepoint(tracepoint)] = "present" }
        return settings
    }

    static func finding(_ report: DoctorReport, _ id: String) throws -> DoctorFinding {
        try #require(report.findings.first { $0.id == id }, "no finding \(id) in \(report.findings.map(\.id))")
    }

    @Test func healthyDPASGuestHasNoProblemsAndIsDPAS() throws {
        let report = Doctor.diagnose(settings: Self.dpasGuest())
        #expect(report.counts.problem == 0, "\(report.findings.filter { $0.severity == .problem })")
        #expect(report.devices.map(\.completionMode) == [.dpas])
        #expect(report.devices.first?.dpasKnobs.count == SnapshotKeys.dpasKnobs.count)
        #expect(try Self.finding(report, "queue_flag_stats").severity == .ok)
        #expect(try Self.finding(report, "dpas_knobs").detail.contains("switch_param7=10000"))
        #expect(try Self.finding(report, "hook_dpas_state").severity == .ok)
        #expect(report.summary.hasPrefix("0 problems"))
        #expect(report.summary.contains("nvme0n1: DPAS"))
    }

    @Test func seedFix2PollQueuesZeroIsAProblemWithTheReloadCommand() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.nvmePollQueues] = "0"
        let report = Doctor.diagnose(settings: settings)
        let pollQueues = try Self.finding(report, "poll_queues")
        #expect(pollQueues.severity == .problem)
        #expect(pollQueues.title.contains("interrupt queues"))
        #expect(pollQueues.fix?.contains("modprobe -r nvme && modprobe nvme poll_queues=2") == true)
        #expect(report.devices.first?.completionMode == .int)
        #expect(report.hasProblems)
        #expect(report.summary.contains("first problem: poll_queues = 0"))
    }

    @Test func seedFix2ClassicPollingSkipsTheHybridPath() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.queue("nvme0n1", "io_poll_delay")] = "-1"
        let report = Doctor.diagnose(settings: settings)
        let delay = try Self.finding(report, "io_poll_delay")
        #expect(delay.severity == .problem)
        #expect(delay.detail.contains("DPAS"))
        #expect(delay.fix == "echo 0 > /sys/block/nvme0n1/queue/io_poll_delay")
        #expect(report.devices.first?.completionMode == .cp)
    }

    @Test func seedFix1WBTInvalidArgumentMeansBucketMinusOne() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.queue("nvme0n1", "wbt_lat_usec")] = "error: Invalid argument"
        let report = Doctor.diagnose(settings: settings)
        let wbt = try Self.finding(report, "wbt_lat_usec")
        // PAS replaces the stock poll-stats callback, so nothing else sets the flag.
        #expect(wbt.severity == .problem)
        #expect(wbt.title.contains("Invalid argument"))
        #expect(wbt.detail.contains("bucket -1"))
        #expect(wbt.detail.contains("not the I/O scheduler"))
        #expect(wbt.fix?.contains("seed fix 1") == true)
        let flag = try Self.finding(report, "queue_flag_stats")
        #expect(flag.severity == .problem)
        #expect(flag.title.contains("inferred"))
        #expect(flag.fix?.contains("dpas-trace buckets --device nvme0n1") == true)
        // The scheduler is reported but never blamed.
        #expect(try Self.finding(report, "scheduler").severity == .ok)
        #expect(try Self.finding(report, "scheduler").title == "scheduler: none")
    }

    @Test func wbtOffOnStockHybridIsOnlyAWarningBecauseHybridStatsSetTheFlag() throws {
        var settings = Self.dpasGuest()
        for knob in SnapshotKeys.dpasKnobs { settings[SnapshotKeys.queue("nvme0n1", knob)] = nil }
        settings[SnapshotKeys.symbol("irq_poll_switch")] = "absent"
        settings[SnapshotKeys.kernelRelease] = "5.10.0-32-amd64"
        settings[SnapshotKeys.queue("nvme0n1", "wbt_lat_usec")] = "0"
        let report = Doctor.diagnose(settings: settings)
        #expect(try Self.finding(report, "wbt_lat_usec").severity == .warning)
        let flag = try Self.finding(report, "queue_flag_stats")
        #expect(flag.severity == .ok)
        #expect(flag.detail.contains("hybrid-poll stats"))
        #expect(report.devices.first?.completionMode == .lhp)
        #expect(try Self.finding(report, "dpas_knobs").title == "Not a DPAS kernel")
        #expect(report.findings.contains { $0.id == "hook_dpas_state" } == false)
    }

    @Test(arguments: [
        (["ehp_enabled": "1", "pas_enabled": "0", "pas_adaptive_enabled": "0", "switch_enabled": "0"], CompletionMode.ehp),
        (["pas_enabled": "1", "switch_enabled": "0"], CompletionMode.pas),
        (["pas_enabled": "0", "pas_adaptive_enabled": "0", "switch_enabled": "0"], CompletionMode.lhp),
        (["pas_enabled": "1", "switch_enabled": "1"], CompletionMode.dpas),
        (["ehp_enabled": "1", "pas_enabled": "1", "switch_enabled": "0"], CompletionMode.unknown),
    ])
    func completionModeFollowsTheArtifactsRecipes(knobs: [String: String], expected: CompletionMode) {
        var settings = Self.dpasGuest()
        for (knob, value) in knobs { settings[SnapshotKeys.queue("nvme0n1", knob)] = value }
        #expect(Doctor.diagnose(settings: settings).devices.first?.completionMode == expected)
    }

    @Test func seedFix3HintForShortDInitOnAVirtualMachineOnly() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.queue("nvme0n1", "pas_d_init")] = "100"
        let onVM = try Self.finding(Doctor.diagnose(settings: settings), "pas_d_init")
        #expect(onVM.severity == .warning)
        #expect(onVM.title.contains("virtual machine"))
        #expect(onVM.fix?.contains("dpas-trace sleep-ratio --device nvme0n1") == true)

        settings[SnapshotKeys.machineHypervisor] = "absent"
        settings[SnapshotKeys.machineProduct] = "Supermicro SYS-2029U"
        #expect(try Self.finding(Doctor.diagnose(settings: settings), "pas_d_init").severity == .ok)

        // The seed's own 3960 ns sleeps normally under QEMU.
        #expect(try Self.finding(Doctor.diagnose(settings: Self.dpasGuest()), "pas_d_init").severity == .ok)
    }

    @Test func stock618SaysHybridPollingIsGoneAndNotDPAS() throws {
        let report = Doctor.diagnose(settings: Self.stock618())
        let hybrid = try Self.finding(report, "hybrid_polling")
        #expect(hybrid.severity == .problem)
        #expect(hybrid.detail.contains("6.4"))
        #expect(try Self.finding(report, "sync_hipri").severity == .warning)
        #expect(try Self.finding(report, "io_poll_delay").title.contains("always"))
        #expect(try Self.finding(report, "dpas_knobs").title == "Not a DPAS kernel")
        // No NVMe checked, so a missing nvme module is no warning.
        #expect(try Self.finding(report, "poll_queues").severity == .ok)
        #expect(try Self.finding(report, "kprobes").severity == .warning)
        #expect(try Self.finding(report, "hook_request").title.contains("tp_btf block_rq_issue"))
        #expect(try Self.finding(report, "hook_request_maker").title == "Request maker: tp_btf block_io_start")
        #expect(try Self.finding(report, "hook_hybrid_sleep").title.contains("nothing to hook"))
        // Before 6.5 (no block_io_start) and without kprobes, requests go to their issuer, and doctor says so.
        var older = Self.stock618()
        older[SnapshotKeys.tracepoint("block_io_start")] = "absent"
        let maker = try Self.finding(Doctor.diagnose(settings: older), "hook_request_maker")
        #expect(maker.severity == .warning && maker.detail.contains("--pid/--tid"), "\(maker.detail)")
        #expect(report.devices.map(\.completionMode) == [.int])
    }

    @Test func inlinedHybridFunctionIsObservedThroughItsPieces() throws {
        var settings = Self.dpasGuest()
        for knob in SnapshotKeys.dpasKnobs { settings[SnapshotKeys.queue("nvme0n1", knob)] = nil }
        settings[SnapshotKeys.kernelRelease] = "5.10.0-32-amd64"
        settings[SnapshotKeys.symbol("blk_mq_poll")] = "absent"
        settings[SnapshotKeys.symbol("blk_poll")] = "present"
        let report = Doctor.diagnose(settings: settings)
        let sleep = try Self.finding(report, "hook_hybrid_sleep")
        #expect(sleep.severity == .ok)
        #expect(sleep.detail.contains("the hybrid sleep loop runs inside blk_poll (a sleeper armed from there"), "\(sleep.detail)")
        #expect(sleep.detail.contains("kprobe hrtimer_sleeper_start_expires"))
        #expect(!sleep.detail.contains("hrtimer_start,"), "the arm's kprobe starts attempts: \(sleep.detail)")
        // The arm, io_schedule and hrtimer_cancel hooked: sleeps end at the loop's cancel, no timer or switch tracepoint.
        #expect(sleep.detail.contains("kprobe io_schedule, kprobe hrtimer_cancel"))
        #expect(sleep.detail.contains("entry probes") && sleep.detail.contains("hrtimer_cancel"))
        #expect(!sleep.detail.contains("tp_btf sched_switch") && !sleep.detail.contains("hrtimer_expire_entry"), "\(sleep.detail)")
        #expect(try Self.finding(report, "hook_poll").title == "Poll loop: kprobe on blk_poll")
        #expect(try Self.finding(report, "hook_request_maker").title == "Request maker: kprobe on __blk_account_io_start")
        // Without io_schedule the timer and switch tracepoints judge the sleep; without BTF, classic ones.
        settings[SnapshotKeys.symbol("io_schedule")] = "absent"
        let tracepoints = try Self.finding(Doctor.diagnose(settings: settings), "hook_hybrid_sleep")
        #expect(tracepoints.severity == .ok)
        #expect(tracepoints.detail.contains("tp_btf sched_switch") && tracepoints.detail.contains("tp_btf hrtimer_expire_entry"))
        settings[SnapshotKeys.kernelBTF] = "absent"
        #expect(try Self.finding(Doctor.diagnose(settings: settings), "hook_hybrid_sleep").detail.contains("tracepoint sched_switch"))
    }

    @Test func bucketsNeedTheRequestItself() throws {
        var settings = Self.dpasGuest()
        let withRequest = try Self.finding(Doctor.diagnose(settings: settings), "hook_bucket")
        #expect(withRequest.severity == .ok && withRequest.title == "Buckets: computed per request")
        // No kprobes: tp_btf block_rq_issue still hands over the struct request.
        settings[SnapshotKeys.kernelKprobes] = "absent"
        #expect(try Self.finding(Doctor.diagnose(settings: settings), "hook_bucket").severity == .ok)
        // Without BTF only the classic record is left: no stats_sectors, no queue flags.
        settings[SnapshotKeys.kernelBTF] = "absent"
        let classic = try Self.finding(Doctor.diagnose(settings: settings), "hook_bucket")
        #expect(classic.severity == .warning && classic.title == "Buckets: from sectors only")
        #expect(classic.detail.contains("stats_sectors and the queue flags are unknown"), "\(classic.detail)")
    }

    @Test func missingBTFAndUnknownDeviceAreProblems() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.kernelBTF] = "absent"
        let report = Doctor.diagnose(settings: settings, device: "/dev/nvme7n1")
        #expect(try Self.finding(report, "btf").severity == .problem)
        let device = try Self.finding(report, "device")
        #expect(device.severity == .problem)
        #expect(device.title == "Device nvme7n1 not found")
        #expect(report.devices.isEmpty)
    }

    @Test func jsonUsesStableSnakeCaseKeysAndRoundTrips() throws {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.nvmePollQueues] = "0"
        let report = Doctor.diagnose(settings: settings)
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["schema_version", "kernel_release", "devices", "findings", "counts", "summary"])
        let device = try #require((object["devices"] as? [[String: Any]])?.first)
        #expect(Set(device.keys) == ["name", "completion_mode", "mode_reason", "dpas_knobs"])
        #expect(device["completion_mode"] as? String == "INT")
        let finding = try #require((object["findings"] as? [[String: Any]])?.first { $0["id"] as? String == "poll_queues" })
        #expect(finding["severity"] as? String == "problem")
        #expect((object["counts"] as? [String: Int])?["problem"] == report.counts.problem)
        #expect(try JSONDecoder().decode(DoctorReport.self, from: data) == report)
    }

    @Test func textRendererGroupsFindingsWithMarkersAndFixes() {
        var settings = Self.dpasGuest()
        settings[SnapshotKeys.nvmePollQueues] = "0"
        let text = DoctorTextRenderer.render(Doctor.diagnose(settings: settings))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "dpas-trace doctor — kernel 5.18.0-rc6-dpas-fast26 — nvme0n1")
        for heading in ["Kernel", "NVMe driver", "Queue nvme0n1", "DPAS nvme0n1", "Probe hooks"] {
            #expect(lines.contains(heading), "missing heading \(heading)")
        }
        let problem = lines.firstIndex { $0.hasPrefix("  PROBLEM  poll_queues = 0") }
        #expect(problem != nil)
        if let problem {
            #expect(lines[problem + 2].trimmingCharacters(in: .whitespaces).hasPrefix("fix: modprobe -r nvme"))
        }
        #expect(lines.contains { $0.hasPrefix("  OK       ") })
        #expect(lines.last { !$0.isEmpty }?.hasPrefix("Summary: 1 problem, ") == true)
    }

    @Test func kernelReleaseParsing() throws {
        let dpas = try #require(KernelRelease("5.18.0-rc6-dpas-fast26"))
        #expect(dpas.major == 5 && dpas.minor == 18 && dpas.hasHybridPolling && dpas.hasSyncPolling)
        let debian = try #require(KernelRelease("5.10.0-32-amd64"))
        #expect(debian.hasHybridPolling && debian.hasSyncPolling)
        let here = try #require(KernelRelease("6.18.44-fc-v657"))
        #expect(!here.hasHybridPolling && !here.hasSyncPolling)
        #expect(KernelRelease("6.3.9")?.hasHybridPolling == true)
        #expect(KernelRelease("garbage") == nil)
    }
}
