/// `dpas-trace doctor`'s rules: pure functions from a settings snapshot (see `SnapshotKeys`) to
/// findings. No file access here, so the same rules run on a live machine and on a dump's header.
public enum Doctor {
    /// Diagnoses `settings`. `device` restricts the per-device findings to one device ("/dev/"
    /// prefix allowed); nil means every device the snapshot covers.
    public static func diagnose(settings: [String: String], device: String? = nil) -> DoctorReport {
        let view = SettingsView(settings)
        let devices: [String]
        if let device {
            devices = [device.hasPrefix("/dev/") ? String(device.dropFirst(5)) : device]
        } else {
            devices = SnapshotKeys.devices(in: settings)
        }

        var findings = kernelFindings(view)
        findings += moduleFindings(view, devices: devices)
        var summaries: [DoctorDevice] = []
        if devices.isEmpty {
            findings.append(DoctorFinding(
                id: "devices", group: "Devices", severity: .problem,
                title: "No block device in the snapshot",
                detail: view.note ?? "The snapshot holds no block/<dev>/queue settings, so no queue can be checked.",
                fix: "dpas-trace doctor --device nvme0n1"))
        }
        for name in devices {
            let context = DeviceContext(view: view, name: name)
            if !context.exists {
                findings.append(DoctorFinding(
                    id: "device", group: "Queue \(name)", device: name, severity: .problem,
                    title: "Device \(name) not found",
                    detail: "There is no /sys/block/\(name)/queue in the snapshot, so none of its settings can be read.",
                    fix: "ls /sys/block   (then: dpas-trace doctor --device NAME)"))
                continue
            }
            findings += queueFindings(context)
            findings += dpasFindings(context)
            let mode = completionMode(context)
            summaries.append(DoctorDevice(name: name, completionMode: mode.mode, modeReason: mode.reason,
                                          dpasKnobs: context.knobValues))
        }
        findings += probeFindings(view, devices: devices.map { DeviceContext(view: view, name: $0) })
        return DoctorReport(kernelRelease: view.value(SnapshotKeys.kernelRelease), devices: summaries,
                            findings: findings)
    }

    // MARK: Kernel

    static func kernelFindings(_ view: SettingsView) -> [DoctorFinding] {
        let group = "Kernel"
        guard let releaseText = view.value(SnapshotKeys.kernelRelease) else {
            return [DoctorFinding(
                id: "kernel_release", group: group, severity: .warning,
                title: "Kernel release unknown",
                detail: "The snapshot has no readable kernel release (\(view.describe(SnapshotKeys.kernelRelease))), so which polling paths exist cannot be told.",
                fix: "uname -r")]
        }
        guard let release = KernelRelease(releaseText) else {
            return [DoctorFinding(
                id: "kernel_release", group: group, severity: .warning,
                title: "Kernel \(releaseText): version not understood",
                detail: "The release does not start with MAJOR.MINOR, so which polling paths exist cannot be told.")]
        }
        var findings = [DoctorFinding(
            id: "kernel_release", group: group, severity: .ok,
            title: "Kernel \(releaseText)",
            detail: "Linux \(release.shortVersion)\(view.isDPASKernel ? " with the DPAS patch (its sysfs knobs are present)" : ""); the rules below use this version.")]

        if release.hasHybridPolling {
            findings.append(DoctorFinding(
                id: "hybrid_polling", group: group, severity: .ok,
                title: "Hybrid polling: in this kernel",
                detail: "Linux \(release.shortVersion) still has blk_mq_poll_hybrid: io_poll_delay = 0 (adaptive) or N µs makes a polling task sleep on an hrtimer before it polls."))
        } else {
            findings.append(DoctorFinding(
                id: "hybrid_polling", group: group, severity: .problem,
                title: "Hybrid polling: removed in this kernel",
                detail: "Linux 6.4 removed hybrid polling (\"blk-mq: remove hybrid polling\"): io_poll_delay always reads -1, no hybrid sleep ever happens, and DPAS cannot exist on Linux \(release.shortVersion).",
                fix: "boot a kernel ≤ 5.18 (Debian 11's 5.10 or the DPAS 5.18 kernel), e.g. in the QEMU lab: lab/dpas-lab run hybrid"))
        }
        if release.hasSyncPolling {
            findings.append(DoctorFinding(
                id: "sync_hipri", group: group, severity: .ok,
                title: "Synchronous polled I/O (RWF_HIPRI): in this kernel",
                detail: "preadv2/pwritev2 with RWF_HIPRI (fio --ioengine=pvsync2 --hipri) polls for its completion, which is how the DPAS artifact drives every polled mode."))
        } else {
            findings.append(DoctorFinding(
                id: "sync_hipri", group: group, severity: .warning,
                title: "Synchronous polled I/O (RWF_HIPRI): removed in this kernel",
                detail: "Since 5.19 a preadv2(RWF_HIPRI) read completes by interrupt; only io_uring polled I/O still polls, so fio pvsync2 --hipri measures interrupts here.",
                fix: "fio --ioengine=io_uring --hipri … (or boot a kernel ≤ 5.18)"))
        }
        return findings
    }

    // MARK: NVMe driver

    static func moduleFindings(_ view: SettingsView, devices: [String]) -> [DoctorFinding] {
        let group = "NVMe driver"
        let key = SnapshotKeys.nvmePollQueues
        let hasNVMe = devices.contains { $0.hasPrefix("nvme") }
        let reload = "modprobe -r nvme && modprobe nvme poll_queues=2   (nvme built in: boot with nvme.poll_queues=2)"
        switch view.reading(key) {
        case .value(let text):
            guard let queues = Int(text) else {
                return [DoctorFinding(id: "poll_queues", group: group, severity: .warning,
                                      title: "poll_queues = \(text): not a number",
                                      detail: "The nvme module's poll_queues parameter should be a count of poll-dedicated hardware queues.")]
            }
            if queues == 0 {
                return [DoctorFinding(
                    id: "poll_queues", group: group, severity: .problem,
                    title: "poll_queues = 0: RWF_HIPRI requests go to interrupt queues",
                    detail: "The nvme driver made no poll-dedicated hardware queues, so polled I/O silently completes by interrupt and neither classic nor hybrid polling (nor DPAS) ever runs (seed fix 2).",
                    fix: reload)]
            }
            return [DoctorFinding(
                id: "poll_queues", group: group, severity: .ok,
                title: "poll_queues = \(queues)",
                detail: "The nvme driver has \(queues) poll-dedicated hardware queue\(queues == 1 ? "" : "s"), so RWF_HIPRI requests can be polled.")]
        case .error(let message):
            return [DoctorFinding(
                id: "poll_queues", group: group, severity: hasNVMe ? .warning : .ok,
                title: "poll_queues unreadable (\(message))",
                detail: hasNVMe
                    ? "Whether the nvme driver has poll queues cannot be told; without them RWF_HIPRI I/O completes by interrupt."
                    : "The nvme module is not loaded and no NVMe device is being checked, so there are no NVMe poll queues.",
                fix: hasNVMe ? "cat /sys/module/nvme/parameters/poll_queues" : nil)]
        case .missing:
            return hasNVMe ? [DoctorFinding(
                id: "poll_queues", group: group, severity: .warning,
                title: "poll_queues not recorded",
                detail: "The snapshot does not say whether the nvme driver has poll queues; without them RWF_HIPRI I/O completes by interrupt.",
                fix: "cat /sys/module/nvme/parameters/poll_queues")] : []
        }
    }

    // MARK: Queue

    static func queueFindings(_ device: DeviceContext) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        findings.append(ioPollFinding(device))
        findings.append(ioPollDelayFinding(device))
        findings.append(wbtFinding(device))
        findings.append(schedulerFinding(device))
        if let finding = nomergesFinding(device) { findings.append(finding) }
        findings.append(statsFlagFinding(device))
        let mode = completionMode(device)
        findings.append(device.finding(
            "completion_mode", severity: mode.mode == .unknown ? .warning : .ok,
            title: "Completion mode: \(mode.mode.rawValue)",
            detail: mode.reason))
        return findings
    }

    static func ioPollFinding(_ device: DeviceContext) -> DoctorFinding {
        let path = device.sysPath("io_poll")
        switch device.reading("io_poll") {
        case .value("0"):
            return device.finding(
                "io_poll", severity: .problem, title: "io_poll = 0: polling is off",
                detail: "This queue does not poll, so RWF_HIPRI I/O completes by interrupt; on kernels ≥ 5.13 io_poll only reports whether the driver made poll queues.",
                fix: device.name.hasPrefix("nvme")
                    ? "modprobe -r nvme && modprobe nvme poll_queues=2   (older kernels: echo 1 > \(path))"
                    : device.name.hasPrefix("vd")
                    ? "boot with virtio_blk.poll_queues=2 (virtio-blk polls since 5.18)"
                    : "echo 1 > \(path)   (fails when the driver has no poll queues)")
        case .value(let text):
            return device.finding("io_poll", severity: .ok, title: "io_poll = \(text): polling is on",
                                  detail: "RWF_HIPRI I/O on this queue is completed by polling.")
        case .error(let message):
            return device.finding("io_poll", severity: .warning, title: "io_poll unreadable (\(message))",
                                  detail: "Whether this queue polls cannot be told.", fix: "cat \(path)")
        case .missing:
            return device.finding("io_poll", severity: .warning, title: "io_poll not recorded",
                                  detail: "The snapshot does not say whether this queue polls.", fix: "cat \(path)")
        }
    }

    static func ioPollDelayFinding(_ device: DeviceContext) -> DoctorFinding {
        let path = device.sysPath("io_poll_delay")
        let setHybrid = "echo 0 > \(path)"
        switch device.reading("io_poll_delay") {
        case .value(let text):
            guard let delay = Int(text) else {
                return device.finding("io_poll_delay", severity: .warning, title: "io_poll_delay = \(text): not a number",
                                      detail: "Expected -1 (classic), 0 (adaptive hybrid) or N µs (fixed hybrid sleep).")
            }
            if delay < 0 {
                if device.kernel.map({ !$0.hasHybridPolling }) == true {
                    return device.finding(
                        "io_poll_delay", severity: .warning, title: "io_poll_delay = -1 (always, on this kernel)",
                        detail: "Without hybrid polling the value is fixed at -1: polled I/O spins classically and there is no hybrid sleep to trace.")
                }
                let dpas = device.dpasLogicEnabled ? " — although DPAS knobs are switched on" : ""
                return device.finding(
                    "io_poll_delay", severity: .problem,
                    title: "io_poll_delay = -1: classic polling, the hybrid path is skipped",
                    detail: "With -1 the poll loop (blk_poll / blk_mq_poll) never calls blk_mq_poll_hybrid, so no hybrid sleep happens and all DPAS logic (QD tracking, mode evaluation, adaptive sleep) is skipped\(dpas) (seed fix 2).",
                    fix: setHybrid)
            }
            if delay == 0 {
                return device.finding("io_poll_delay", severity: .ok, title: "io_poll_delay = 0: adaptive hybrid polling",
                                      detail: "The polling task first sleeps for a time derived from the completion statistics of its request's bucket (or PAS's adapted duration), then polls.")
            }
            return device.finding("io_poll_delay", severity: .ok, title: "io_poll_delay = \(delay): fixed hybrid sleep of \(delay) µs",
                                  detail: "Every polled request first sleeps \(delay) µs, then polls; the DPAS artifact uses 0 (adaptive) for LHP/EHP/PAS/DPAS.")
        case .error(let message):
            return device.finding("io_poll_delay", severity: .warning, title: "io_poll_delay unreadable (\(message))",
                                  detail: "Whether the hybrid path runs cannot be told.", fix: "cat \(path)")
        case .missing:
            return device.finding("io_poll_delay", severity: .warning, title: "io_poll_delay not recorded",
                                  detail: "Whether the hybrid path runs cannot be told.", fix: "cat \(path)")
        }
    }

    /// Why bucket -1 happens, said once, where WBT is discussed (the seed's corrected explanation).
    static let wbtNotScheduler = "It is write-back throttling, not the I/O scheduler, that sets QUEUE_FLAG_STATS here: the seed's research server ran the none scheduler too, but with wbt_lat_usec = 2000."

    static func wbtFinding(_ device: DeviceContext) -> DoctorFinding {
        let path = device.sysPath("wbt_lat_usec")
        let consequence = "so QUEUE_FLAG_STATS may stay unset, stats_sectors stays 0, blk_mq_poll_stats_bkt returns bucket -1 and DPAS skips its logic for every I/O (seed fix 1)."
        // Without hybrid polling no bucket is ever looked up, so a missing WBT costs nothing here.
        let noHybrid = device.kernel.map { !$0.hasHybridPolling } == true
        let severity: DoctorSeverity = noHybrid ? .ok
            : device.statsFlagMatters && device.statsFlagSetters.isEmpty ? .problem : .warning
        let fix1 = "apply seed fix 1 (blk_rq_sectors instead of blk_rq_stats_sectors in blk_mq_poll_stats_bkt); check first with: dpas-trace buckets --device \(device.name)"
        switch device.reading("wbt_lat_usec") {
        case .value(let text):
            guard let latency = Int(text) else {
                return device.finding("wbt_lat_usec", severity: .warning, title: "wbt_lat_usec = \(text): not a number",
                                      detail: "Expected WBT's target latency in µs (0 = off).")
            }
            if latency == 0 {
                return device.finding(
                    "wbt_lat_usec", severity: severity, title: "wbt_lat_usec = 0: write-back throttling is off",
                    detail: "WBT registers no blk_stat callback, \(consequence) \(wbtNotScheduler)",
                    fix: "echo 2000 > \(path), or \(fix1)")
            }
            return device.finding(
                "wbt_lat_usec", severity: .ok, title: "wbt_lat_usec = \(latency): write-back throttling is on",
                detail: "WBT's blk_stat callback sets QUEUE_FLAG_STATS, so blk_mq_start_request fills stats_sectors and requests get real poll buckets.")
        case .error(let message):
            return device.finding(
                "wbt_lat_usec", severity: severity, title: "wbt_lat_usec unreadable (\(message)): WBT unsupported or off",
                detail: "Reading it fails when the queue has no write-back throttling, \(consequence) \(wbtNotScheduler)",
                fix: "try: echo 2000 > \(path); if that fails too, \(fix1)")
        case .missing:
            return device.finding(
                "wbt_lat_usec", severity: severity, title: "wbt_lat_usec absent: no write-back throttling",
                detail: "The kernel has no WBT for this queue, \(consequence)",
                fix: fix1)
        }
    }

    static func schedulerFinding(_ device: DeviceContext) -> DoctorFinding {
        switch device.reading("scheduler") {
        case .value(let text):
            let active = activeScheduler(text)
            return device.finding(
                "scheduler", severity: .ok, title: "scheduler: \(active)",
                detail: "Recorded for completeness: the scheduler does not decide whether requests get poll buckets — the seed's native server and its QEMU guest both ran none; WBT made the difference.")
        case .error(let message):
            return device.finding("scheduler", severity: .ok, title: "scheduler unreadable (\(message))",
                                  detail: "The scheduler does not decide whether requests get poll buckets, so this costs nothing here.")
        case .missing:
            return device.finding("scheduler", severity: .ok, title: "scheduler not recorded",
                                  detail: "The scheduler does not decide whether requests get poll buckets, so this costs nothing here.")
        }
    }

    /// "none [mq-deadline] kyber" → "mq-deadline"; a single name stays as it is.
    static func activeScheduler(_ text: String) -> String {
        if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
            return String(text[text.index(after: open)..<close])
        }
        return text
    }

    static func nomergesFinding(_ device: DeviceContext) -> DoctorFinding? {
        guard case .value(let text) = device.reading("nomerges") else { return nil }
        let meaning: String
        switch text {
        case "0": meaning = "requests may be merged"
        case "1": meaning = "only simple one-hit merges are tried"
        case "2": meaning = "no merging at all"
        default: meaning = "an unexpected value"
        }
        return device.finding("nomerges", severity: .ok, title: "nomerges = \(text)",
                              detail: "\(meaning.prefix(1).uppercased() + meaning.dropFirst()); 4 KiB random reads rarely merge, so request sizes match the I/O sizes issued.")
    }

    static func statsFlagFinding(_ device: DeviceContext) -> DoctorFinding {
        let setters = device.statsFlagSetters
        let evidence = "The flag cannot be read from sysfs, so this is inferred from the settings; dpas-trace buckets --device \(device.name) shows the evidence (stats_sectors of each request)."
        if !setters.isEmpty {
            return device.finding(
                "queue_flag_stats", severity: .ok, title: "QUEUE_FLAG_STATS: probably set (inferred)",
                detail: "Set by \(setters.joined(separator: " and ")). \(evidence)")
        }
        if !device.statsFlagMatters {
            return device.finding(
                "queue_flag_stats", severity: .ok, title: "QUEUE_FLAG_STATS: probably unset (inferred), harmless here",
                detail: "Nothing in the settings registers a blk_stat callback, but no hybrid path uses poll buckets under these settings. \(evidence)")
        }
        return device.finding(
            "queue_flag_stats", severity: device.dpasLogicEnabled ? .problem : .warning,
            title: "QUEUE_FLAG_STATS: probably unset (inferred) ⇒ bucket -1",
            detail: "No WBT\(device.pasEnabled ? " and the PAS path does not enable the hybrid-poll stats" : ""), so (barring iolatency, i.e. cgroup io.latency) stats_sectors stays 0 and every polled request lands in bucket -1, where DPAS skips its logic — unless the kernel already carries seed fix 1. \(evidence)",
            fix: "dpas-trace buckets --device \(device.name)   (bucket -1 confirmed: apply seed fix 1, or enable WBT where supported: echo 2000 > \(device.sysPath("wbt_lat_usec")))")
    }

    // MARK: Completion mode

    static func completionMode(_ device: DeviceContext) -> (mode: CompletionMode, reason: String) {
        let hipri = "for RWF_HIPRI I/O (fio --hipri); I/O without it always completes by interrupt (INT)"
        if device.pollQueues == 0 && device.name.hasPrefix("nvme") {
            return (.int, "poll_queues = 0: every request, RWF_HIPRI or not, completes by interrupt.")
        }
        if case .value("0") = device.reading("io_poll") {
            return (.int, "io_poll = 0: every request, RWF_HIPRI or not, completes by interrupt.")
        }
        if device.kernel.map({ !$0.hasHybridPolling }) == true {
            return (.cp, "Classic polling \(hipri): this kernel has no hybrid polling.")
        }
        guard let delay = device.int("io_poll_delay") else {
            return (.unknown, "io_poll_delay could not be read, so classic and hybrid polling cannot be told apart.")
        }
        if delay < 0 {
            let knobs = device.knobValues.isEmpty ? "" : "; the DPAS knobs have no effect on this path"
            return (.cp, "Classic polling (io_poll_delay = -1) \(hipri)\(knobs).")
        }
        let base = delay == 0 ? "io_poll_delay = 0" : "io_poll_delay = \(delay) (the artifact uses 0)"
        let ehp = device.knobInt("ehp_enabled") == 1
        let pas = device.pasEnabled
        let switching = device.knobInt("switch_enabled") == 1
        if ehp && (pas || switching) {
            return (.unknown, "\(base) with ehp_enabled = 1 and pas_enabled/switch_enabled = 1: the artifact never combines EHP with PAS/DPAS.")
        }
        if ehp { return (.ehp, "\(base) + ehp_enabled = 1, \(hipri).") }
        if pas && switching {
            return (.dpas, "\(base) + pas_enabled = 1 + switch_enabled = 1: each CPU switches between INT/CP/PAS/OL at run time, \(hipri).")
        }
        if pas { return (.pas, "\(base) + pas_enabled = 1, switch_enabled = 0, \(hipri).") }
        if switching {
            return (.unknown, "\(base) + switch_enabled = 1 without pas_enabled = 1: the artifact never configures this.")
        }
        return (.lhp, "Linux hybrid polling (\(base)) \(hipri).")
    }

    // MARK: DPAS

    static func dpasFindings(_ device: DeviceContext) -> [DoctorFinding] {
        let group = "DPAS \(device.name)"
        let present = device.knobValues
        guard !present.isEmpty else {
            return [DoctorFinding(
                id: "dpas_knobs", group: group, device: device.name, severity: .warning,
                title: "Not a DPAS kernel",
                detail: "None of the DPAS knobs (pas_enabled, switch_enabled, switch_param1…7, …) exist under /sys/block/\(device.name)/queue, so dpas-trace modes has no state machine to show; sleep-ratio and buckets still work where hybrid polling exists.",
                fix: "boot the DPAS 5.18 kernel (e.g. lab/dpas-lab with --kernel PATH/bzImage)")]
        }
        var findings: [DoctorFinding] = []
        let listing = SnapshotKeys.dpasKnobs.compactMap { knob in present[knob].map { "\(knob)=\($0)" } }
        let missing = SnapshotKeys.dpasKnobs.filter { present[$0] == nil }
        let unreadable = SnapshotKeys.dpasKnobs.filter { present[$0]?.hasPrefix(SnapshotKeys.errorPrefix) == true }
        findings.append(DoctorFinding(
            id: "dpas_knobs", group: group, device: device.name,
            severity: missing.isEmpty && unreadable.isEmpty ? .ok : .warning,
            title: "DPAS knobs: \(present.count) of \(SnapshotKeys.dpasKnobs.count) found",
            detail: listing.joined(separator: " ")
                + (missing.isEmpty ? "" : "; missing: \(missing.joined(separator: " "))")
                + (unreadable.isEmpty ? "" : "; unreadable: \(unreadable.joined(separator: " "))")))

        if device.pasEnabled, device.knobInt("pas_adaptive_enabled") == 0 {
            findings.append(DoctorFinding(
                id: "pas_adaptive", group: group, device: device.name, severity: .warning,
                title: "pas_enabled = 1 but pas_adaptive_enabled = 0",
                detail: "PAS will not adapt its sleep duration; the artifact's PAS and DPAS modes set both to 1.",
                fix: "echo 1 > \(device.sysPath("pas_adaptive_enabled"))"))
        }
        if device.knobInt("switch_enabled") == 1 {
            findings.append(switchParametersFinding(device, group: group))
        }
        if let finding = timerFloorFinding(device, group: group) { findings.append(finding) }
        return findings
    }

    /// The state machine's thresholds in words, as dpas-kernel.md's rule table states them.
    static func switchParametersFinding(_ device: DeviceContext, group: String) -> DoctorFinding {
        func p(_ n: Int) -> String { device.knobInt("switch_param\(n)").map(String.init) ?? "?" }
        let artifact = ["1": "0", "2": "10", "3": "10", "4": "1"]
        let differs = artifact.keys.sorted().filter { p(Int($0)!) != artifact[$0]! }
        let pasToCP = device.knobInt("switch_param4").map { $0 >= 1 } ?? false
        return DoctorFinding(
            id: "switch_params", group: group, device: device.name,
            severity: differs.isEmpty ? .ok : .warning,
            title: "DPAS switching on: PAS→OL when tf > \(p(1)), OL→PAS at avg QD×10 ≤ \(p(2)), OL→INT above \(p(3))",
            detail: "Evaluated every \(p(5)) PAS I/Os; PAS→CP at avg QD 1 is \(pasToCP ? "on" : "off") (param4 = \(p(4))); CP→PAS after \(p(6)) CP I/Os; INT→OL after \(p(7)) INT I/Os"
                + (differs.isEmpty ? "; these are the artifact's DPAS values." : "; the artifact's DPAS uses param1=0 param2=10 param3=10 param4=1 (differs: param\(differs.joined(separator: ", param"))).")
        )
    }

    /// Seed hunt 3: on a VM arming an hrtimer costs microseconds, so a short PAS sleep fires
    /// while being armed and the task never yields.
    static func timerFloorFinding(_ device: DeviceContext, group: String) -> DoctorFinding? {
        guard device.pasEnabled, let dInit = device.knobInt("pas_d_init") else { return nil }
        let smallestSeenSleeping = 3960
        let virtual = device.view.isVirtualMachine
        guard dInit < smallestSeenSleeping, virtual != false else {
            return DoctorFinding(
                id: "pas_d_init", group: group, device: device.name, severity: .ok,
                title: "pas_d_init = \(dInit) ns",
                detail: dInit < smallestSeenSleeping
                    ? "Short, but this is not a virtual machine, where hrtimers are armed in well under a microsecond."
                    : "Long enough that the seed's QEMU lab slept normally (3960 ns: 99.8 % slept).")
        }
        let machine = virtual == true ? "on a virtual machine\(device.view.productSuffix)" : "if this is a virtual machine"
        return DoctorFinding(
            id: "pas_d_init", group: group, device: device.name, severity: .warning,
            title: "pas_d_init = \(dInit) ns \(machine): the timer may fire while being armed",
            detail: "Arming an hrtimer costs microseconds under emulation, so a sleep this short expires before io_schedule() and the task never yields (seed hunt 3: 100–2000 ns slept 0–0.1 %, 3960 ns slept 99.8 %), which breaks DPAS's QD view with several jobs per CPU.",
            fix: "dpas-trace sleep-ratio --device \(device.name)   (if it never sleeps: apply seed fix 3 — always io_schedule() — or raise pas_d_init, e.g. echo 4000 > \(device.sysPath("pas_d_init")))")
    }

    // MARK: Probes

    static func probeFindings(_ view: SettingsView, devices: [DeviceContext]) -> [DoctorFinding] {
        let group = "Probe hooks"
        var findings: [DoctorFinding] = []
        let btf = ["present", "yes"].contains(view.value(SnapshotKeys.kernelBTF) ?? "")
        findings.append(btf
            ? DoctorFinding(id: "btf", group: group, severity: .ok, title: "BTF: present",
                            detail: "/sys/kernel/btf/vmlinux exists, so the CO-RE BPF programs relocate and tp_btf tracepoints attach.")
            : DoctorFinding(id: "btf", group: group, severity: .problem, title: "BTF: absent",
                            detail: "Without /sys/kernel/btf/vmlinux the CO-RE BPF programs cannot be relocated, so no live command can load.",
                            fix: "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y"))

        let kallsymsError = view.symbolsError
        if let kallsymsError {
            findings.append(DoctorFinding(
                id: "kallsyms", group: group, severity: .warning, title: "kallsyms unreadable (\(kallsymsError))",
                detail: "Which kernel functions exist (or were inlined) cannot be told, so the hooks below are guesses.",
                fix: "head /proc/kallsyms"))
        }
        let kprobes: Bool
        switch view.reading(SnapshotKeys.kernelKprobes) {
        case .value("present"):
            kprobes = true
            findings.append(DoctorFinding(id: "kprobes", group: group, severity: .ok, title: "kprobes: available",
                                          detail: "Function entry/return hooks can attach to the symbols found below."))
        case .value:
            kprobes = false
            findings.append(DoctorFinding(
                id: "kprobes", group: group, severity: .warning, title: "kprobes: not available",
                detail: "Kprobes on blk_mq_start_request, blk_account_io_start, hrtimer_sleeper_start_expires, io_schedule and hrtimer_cancel cannot attach; where fentry is refused too, the plan falls back to tracepoints.",
                fix: "dpas-trace plan   (shows the fallback; a kernel with CONFIG_KPROBES=y gives the full plan)"))
        case .error(let message):
            kprobes = false
            findings.append(DoctorFinding(id: "kprobes", group: group, severity: .warning,
                                          title: "kprobes: unknown (\(message))",
                                          detail: "Whether function hooks can attach cannot be told; dpas-trace plan tries them.",
                                          fix: "dpas-trace plan"))
        case .missing:
            kprobes = false
            findings.append(DoctorFinding(id: "kprobes", group: group, severity: .warning, title: "kprobes: not recorded",
                                          detail: "Whether function hooks can attach cannot be told; dpas-trace plan tries them.",
                                          fix: "dpas-trace plan"))
        }
        guard kallsymsError == nil else { return findings }

        func has(_ symbol: String) -> Bool { view.value(SnapshotKeys.symbol(symbol)) == "present" }
        func tracepoint(_ name: String) -> Bool { view.value(SnapshotKeys.tracepoint(name)) == "present" }
        let release = view.value(SnapshotKeys.kernelRelease).flatMap(KernelRelease.init)

        // Request issue: where request size, stats_sectors and the bucket come from.
        if kprobes && has("blk_mq_start_request") {
            findings.append(DoctorFinding(id: "hook_request", group: group, severity: .ok,
                                          title: "Request issue: kprobe on blk_mq_start_request",
                                          detail: "Each request's size, direction and queue flags are read as it starts, so its bucket can be computed the kernel's way."))
        } else if tracepoint("block_rq_issue") {
            findings.append(DoctorFinding(id: "hook_request", group: group, severity: .ok,
                                          title: "Request issue: \(btf ? "tp_btf" : "tracepoint") block_rq_issue",
                                          detail: "blk_mq_start_request fires block_rq_issue first thing, so the tracepoint stands in for the function hook\(btf ? " and still sees the struct request" : "").",
                                          fix: nil))
        } else {
            findings.append(DoctorFinding(id: "hook_request", group: group, severity: .problem,
                                          title: "Request issue: no hook",
                                          detail: "Neither a blk_mq_start_request kprobe nor the block_rq_issue tracepoint is available, so buckets and request sizes cannot be traced.",
                                          fix: "dpas-trace plan"))
        }

        // The request's maker: the thread --pid/--tid select a request by.
        let makerDetail = "Each request is credited to the thread that made it, also when an I/O scheduler or a kworker issues it to the driver."
        if kprobes, let accounting = ["blk_account_io_start", "__blk_account_io_start"].first(where: has) {
            findings.append(DoctorFinding(id: "hook_request_maker", group: group, severity: .ok,
                                          title: "Request maker: kprobe on \(accounting)", detail: makerDetail))
        } else if tracepoint("block_io_start") {
            findings.append(DoctorFinding(id: "hook_request_maker", group: group, severity: .ok,
                                          title: "Request maker: \(btf ? "tp_btf" : "tracepoint") block_io_start", detail: makerDetail))
        } else {
            findings.append(DoctorFinding(
                id: "hook_request_maker", group: group, severity: .warning, title: "Request maker: no hook",
                detail: "A request is credited to the thread that issues it to the driver: one an I/O scheduler or a kworker "
                    + "dispatches for another thread counts for the dispatcher, and --pid/--tid judge it by that thread.",
                fix: "cat /sys/block/DEV/queue/scheduler   (with none, a request is mostly issued by the thread that made it)"))
        }

        // The poll loop itself.
        let pollFunction = ["blk_mq_poll", "blk_poll"].first(where: has)
        if kprobes, let pollFunction {
            findings.append(DoctorFinding(id: "hook_poll", group: group, severity: .ok,
                                          title: "Poll loop: kprobe on \(pollFunction)",
                                          detail: "Each poll call (and, on DPAS, the mode around it) can be observed."))
        } else {
            findings.append(DoctorFinding(id: "hook_poll", group: group, severity: .warning,
                                          title: "Poll loop: no hook",
                                          detail: pollFunction == nil
                                              ? "Neither blk_mq_poll nor blk_poll is in kallsyms, so poll calls are not observed; requests are still counted at issue."
                                              : "\(pollFunction ?? "") exists but kprobes are unavailable, so poll calls are not observed; requests are still counted at issue."))
        }

        // The hybrid sleep.
        // An attempt starts at the sleeper's arm where that function can be hooked; hrtimer_start
        // (which fires for every timer) is the fallback. With io_schedule and hrtimer_cancel hooked
        // too, the attempt ends at the sleep loop's cancel and the timer and switch tracepoints are
        // not needed.
        let armHooked = kprobes && has("hrtimer_sleeper_start_expires")
        let pollerPath = armHooked && has("io_schedule") && has("hrtimer_cancel")
        let timerTracepoints = pollerPath ? []
            : ((armHooked ? [] : ["hrtimer_start"]) + ["hrtimer_expire_entry", "sched_switch"]).filter(tracepoint)
        let judged = pollerPath
            ? "slept vs no-sleep is judged on the poller's path by entry probes (a sleeper armed from inside the poll function's "
                + "code is a hybrid sleep; slept = a voluntary context switch inside io_schedule, "
                + "resolved at the sleep loop's hrtimer_cancel); "
                + "--off-cpu-time adds the timer and sched_switch tracepoints for expiry times"
            : "slept vs no-sleep is judged by a real sched_switch while the sleeper is armed"
        if release.map({ !$0.hasHybridPolling }) == true {
            findings.append(DoctorFinding(id: "hook_hybrid_sleep", group: group, severity: .warning,
                                          title: "Hybrid sleep: nothing to hook on this kernel",
                                          detail: "The timer tracepoints attach, but without hybrid polling no poller ever arms a sleeper, so sleep-ratio stays empty."))
        } else {
            let loopFunctions = SnapshotKeys.hybridLoopFunctions.filter(has)
            let loop = loopFunctions.isEmpty
                ? "none of \(SnapshotKeys.hybridLoopFunctions.joined(separator: ", ")) is in kallsyms, so a sleeper's arm cannot be told to come from the hybrid sleep loop"
                : "the hybrid sleep loop runs inside \(loopFunctions.joined(separator: " / ")) (a sleeper armed from there is a hybrid sleep)"
            let functions = pollerPath ? ["hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel"]
                : ["hrtimer_sleeper_start_expires", "io_schedule"]
            let pieces = (kprobes ? functions.filter(has).map { "kprobe \($0)" } : [])
                + timerTracepoints.map { "\(btf ? "tp_btf" : "tracepoint") \($0)" }
            let complete = pollerPath || ((armHooked || timerTracepoints.contains("hrtimer_start")) && timerTracepoints.contains("sched_switch"))
            findings.append(DoctorFinding(id: "hook_hybrid_sleep", group: group, severity: complete ? .ok : .warning,
                                          title: "Hybrid sleep: observed through its pieces",
                                          detail: "\(loop); observed through \(pieces.isEmpty ? "nothing available" : pieces.joined(separator: ", ")); \(judged).",
                                          fix: complete ? nil : "dpas-trace plan"))
        }

        // Bucket assignment.
        if (kprobes && has("blk_mq_start_request")) || (btf && tracepoint("block_rq_issue")) {
            findings.append(DoctorFinding(id: "hook_bucket", group: group, severity: .ok,
                                          title: "Buckets: computed per request",
                                          detail: "Each request's bucket is computed the kernel's way (blk_mq_poll_stats_bkt: direction and ilog2 of stats_sectors) from the request read as it starts, and from its sectors too, to show where they differ."))
        } else {
            findings.append(DoctorFinding(id: "hook_bucket", group: group, severity: .warning,
                                          title: "Buckets: from sectors only",
                                          detail: "The classic block_rq_issue record has no struct request: stats_sectors and the queue flags are unknown, so a bucket −1 caused by QUEUE_FLAG_STATS cannot be told.",
                                          fix: "dpas-trace plan"))
        }

        // DPAS state.
        let dpasKnobs = devices.contains { !$0.knobValues.isEmpty }
        if has("irq_poll_switch") {
            findings.append(DoctorFinding(id: "hook_dpas_state", group: group, severity: .ok,
                                          title: "DPAS state: irq_poll_switch found",
                                          detail: "The per-CPU struct blk_switch can be read (symbol address plus each CPU's per-CPU offset; addresses need root)."))
        } else if dpasKnobs {
            findings.append(DoctorFinding(id: "hook_dpas_state", group: group, severity: .warning,
                                          title: "DPAS state: irq_poll_switch not in kallsyms",
                                          detail: "DPAS knobs exist but the global holding the per-CPU state was not found, so dpas-trace modes cannot read mode changes.",
                                          fix: "grep irq_poll_switch /proc/kallsyms"))
        }
        return findings
    }
}
