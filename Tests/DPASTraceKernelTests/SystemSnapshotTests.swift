import DPASTraceCore
import Foundation
import Testing
@testable import DPASTraceKernel

/// A fake sysfs + procfs tree in a temporary directory, shaped like the kernels dpas-trace knows.
struct FakeSystem {
    let root: URL
    var sys: String { root.appendingPathComponent("sys").path }
    var proc: String { root.appendingPathComponent("proc").path }

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("dpas-doctor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// Writes `content` (plus the newline sysfs adds) at `path` under the tree.
    func write(_ path: String, _ content: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (content + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true)
    }

    /// sys/block/<name> as the real kernel makes it: a symlink into sys/devices/….
    func blockDevice(_ name: String, under devicePath: String, queue: [String: String]) throws {
        let target = "sys/devices/\(devicePath)/\(name)"
        for (file, value) in queue { try write("\(target)/queue/\(file)", value) }
        try mkdir("\(target)/queue")
        try mkdir("sys/block")
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("sys/block/\(name)").path,
                                                   withDestinationPath: "../devices/\(devicePath)/\(name)")
    }

    func kernel(release: String, btf: Bool = true, symbols: [String], hypervisor: Bool = true) throws {
        try write("proc/sys/kernel/osrelease", release)
        if btf { try write("sys/kernel/btf/vmlinux", "BTF") }
        // kallsyms as an unprivileged reader sees it: zero addresses, names intact, module column.
        let lines = symbols.map { "0000000000000000 T \($0)" } + ["0000000000000000 t nvme_poll\t[nvme]"]
        try write("proc/kallsyms", lines.joined(separator: "\n"))
        try write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme sse2\(hypervisor ? " hypervisor" : "") lm")
    }

    static let stockQueue = ["io_poll": "1", "io_poll_delay": "0", "wbt_lat_usec": "2000",
                             "scheduler": "[none] mq-deadline kyber", "nomerges": "0"]

    static let dpasKnobs: [String: String] = [
        "pas_enabled": "1", "pas_adaptive_enabled": "1", "pas_d_init": "100", "pas_up_init": "5",
        "pas_dn_init": "5", "pas_heat_up": "1", "pas_cool_dn": "1", "pas_min_dn": "1", "pas_max_dn": "10",
        "pas_max_no_lock": "0", "pas_poll_threshold": "0", "pas_exception": "0", "ehp_enabled": "0",
        "switch_enabled": "1", "switch_param1": "0", "switch_param2": "10", "switch_param3": "10",
        "switch_param4": "1", "switch_param5": "100", "switch_param6": "1000", "switch_param7": "10000",
        "logging_enabled": "0",
    ]

    static let dpasSymbols = ["blk_mq_poll", "blk_mq_start_request", "blk_mq_poll_stats_bkt",
                              "hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel", "irq_poll_switch",
                              "register_kprobe", "__traceiter_block_rq_issue", "__traceiter_hrtimer_start",
                              "__traceiter_hrtimer_expire_entry",
                              "__traceiter_sched_switch"]

    /// The seed's QEMU guest on the DPAS 5.18 kernel with the given queue settings and knobs.
    static func dpasGuest(queue: [String: String] = stockQueue, knobs: [String: String] = dpasKnobs,
                          pollQueues: String = "2") throws -> FakeSystem {
        let system = try FakeSystem()
        try system.blockDevice("nvme0n1", under: "pci0000:00/0000:00:04.0/nvme/nvme0", queue: queue.merging(knobs) { $1 })
        // Reading switch_stat prints to the kernel log: the collector must never open it.
        try system.write("sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/queue/switch_stat", "")
        try system.write("sys/module/nvme/parameters/poll_queues", pollQueues)
        try system.kernel(release: "5.18.0-rc6-dpas-fast26", symbols: dpasSymbols)
        try system.write("sys/class/dmi/id/sys_vendor", "QEMU")
        try system.write("sys/class/dmi/id/product_name", "Standard PC (i440FX + PIIX, 1996)")
        return system
    }
}

@Suite struct SystemSnapshotTests {
    @Test func collectsQueueModuleKernelAndDPASKeysFromTheTree() throws {
        let system = try FakeSystem.dpasGuest()
        defer { system.remove() }
        let settings = SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil)

        #expect(settings["snapshot/devices"] == "nvme0n1")
        #expect(settings["block/nvme0n1/queue/io_poll_delay"] == "0")
        #expect(settings["block/nvme0n1/queue/scheduler"] == "[none] mq-deadline kyber")
        #expect(settings["block/nvme0n1/queue/switch_param7"] == "10000")
        #expect(settings["block/nvme0n1/queue/switch_stat"] == nil)
        #expect(settings["module/nvme/parameters/poll_queues"] == "2")
        #expect(settings["kernel/release"] == "5.18.0-rc6-dpas-fast26")
        #expect(settings["kernel/btf"] == "present")
        #expect(settings["kernel/kprobes"] == "present")
        #expect(settings["kernel/symbols/irq_poll_switch"] == "present")
        #expect(settings["kernel/symbols/blk_mq_poll_hybrid"] == "absent")
        #expect(settings["kernel/tracepoints/block_rq_issue"] == "present")
        #expect(settings["machine/hypervisor"] == "present")
        #expect(settings["machine/product"] == "QEMU Standard PC (i440FX + PIIX, 1996)")
        for knob in SnapshotKeys.dpasKnobs {
            #expect(settings["block/nvme0n1/queue/\(knob)"] != nil, "knob \(knob) not collected")
        }
    }

    @Test func unreadableFilesBecomeErrorValuesAndAbsentKnobsAreOmitted() throws {
        var queue = FakeSystem.stockQueue
        queue["wbt_lat_usec"] = nil
        let system = try FakeSystem.dpasGuest(queue: queue, knobs: [:])
        defer { system.remove() }
        // A directory where a file should be: read(2) fails with EISDIR, like wbt_lat_usec's EINVAL.
        try system.mkdir("sys/block/nvme0n1/queue/wbt_lat_usec")
        try FileManager.default.removeItem(atPath: system.sys + "/module/nvme/parameters/poll_queues")
        let settings = SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: ["/dev/nvme0n1"])

        #expect(settings["block/nvme0n1/queue/wbt_lat_usec"] == "error: Is a directory")
        #expect(settings["module/nvme/parameters/poll_queues"] == "error: No such file or directory")
        #expect(SnapshotKeys.dpasKnobs.allSatisfy { settings["block/nvme0n1/queue/\($0)"] == nil })
        let report = Doctor.diagnose(settings: settings)
        #expect(report.findings.first { $0.id == "dpas_knobs" }?.title == "Not a DPAS kernel")
        #expect(report.findings.first { $0.id == "wbt_lat_usec" }?.title.contains("Is a directory") == true)
    }

    @Test func withoutNVMeEveryNonVirtualDeviceIsChosenAndTheNoteSaysSo() throws {
        let system = try FakeSystem()
        defer { system.remove() }
        try system.blockDevice("vda", under: "pci0000:00/0000:00:02.0/virtio1/block", queue: FakeSystem.stockQueue)
        try system.blockDevice("loop0", under: "virtual/block", queue: FakeSystem.stockQueue)
        try system.kernel(release: "6.18.44-fc-v657", symbols: ["blk_mq_poll"])
        let settings = SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil)

        #expect(settings["snapshot/devices"] == "vda")
        #expect(settings["snapshot/note"]?.contains("no NVMe device") == true)
        #expect(settings["block/loop0/queue/io_poll"] == nil)
        #expect(settings["kernel/kprobes"] == "absent")
    }

    @Test func aPartitionIsMappedToItsDisk() throws {
        let system = try FakeSystem.dpasGuest()
        defer { system.remove() }
        let partition = "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p1"
        try system.write("\(partition)/partition", "1")
        try system.mkdir("sys/class/block")
        try FileManager.default.createSymbolicLink(atPath: system.sys + "/class/block/nvme0n1p1",
                                                   withDestinationPath: "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p1")
        let settings = SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: ["nvme0n1p1"])
        #expect(settings["snapshot/devices"] == "nvme0n1")
        #expect(settings["snapshot/note"] == "nvme0n1p1 is a partition: showing its disk nvme0n1")
    }

    // The doctor on fake trees, one per failure the seed hunted down.

    @Test func seedFix2PollQueuesZeroOnAFakeTree() throws {
        let system = try FakeSystem.dpasGuest(pollQueues: "0")
        defer { system.remove() }
        let report = Doctor.diagnose(settings: SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil))
        let finding = try #require(report.findings.first { $0.id == "poll_queues" })
        #expect(finding.severity == .problem)
        #expect(finding.fix?.hasPrefix("modprobe -r nvme && modprobe nvme poll_queues=2") == true)
        #expect(report.devices.first?.completionMode == .int)
    }

    @Test func seedFix2ClassicPollingOnAFakeTree() throws {
        var queue = FakeSystem.stockQueue
        queue["io_poll_delay"] = "-1"
        let system = try FakeSystem.dpasGuest(queue: queue)
        defer { system.remove() }
        let report = Doctor.diagnose(settings: SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil))
        let finding = try #require(report.findings.first { $0.id == "io_poll_delay" })
        #expect(finding.severity == .problem)
        #expect(finding.fix == "echo 0 > /sys/block/nvme0n1/queue/io_poll_delay")
        #expect(report.devices.first?.completionMode == .cp)
    }

    @Test func dpasKernelWithEveryKnobOnAFakeTree() throws {
        let system = try FakeSystem.dpasGuest()
        defer { system.remove() }
        let report = Doctor.diagnose(settings: SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil))
        #expect(report.devices.first?.completionMode == .dpas)
        #expect(report.devices.first?.dpasKnobs.count == SnapshotKeys.dpasKnobs.count)
        // pas_d_init = 100 ns on QEMU: the seed's third hunt.
        let hint = try #require(report.findings.first { $0.id == "pas_d_init" })
        #expect(hint.severity == .warning)
        #expect(hint.title.contains("QEMU"))
        #expect(report.counts.problem == 0, "\(report.findings.filter { $0.severity == .problem })")
    }

    @Test func stock618OnAFakeTree() throws {
        let system = try FakeSystem()
        defer { system.remove() }
        var queue = FakeSystem.stockQueue
        queue["io_poll_delay"] = "-1"
        try system.blockDevice("nvme0n1", under: "pci0000:00/0000:00:04.0/nvme/nvme0", queue: queue)
        try system.write("sys/module/nvme/parameters/poll_queues", "2")
        try system.kernel(release: "6.18.44-fc-v657", symbols: ["blk_mq_poll", "blk_mq_start_request", "__traceiter_block_rq_issue"])
        let report = Doctor.diagnose(settings: SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil))
        #expect(report.findings.first { $0.id == "hybrid_polling" }?.severity == .problem)
        #expect(report.findings.first { $0.id == "dpas_knobs" }?.title == "Not a DPAS kernel")
        #expect(report.devices.first?.completionMode == .cp)
    }

    /// Smoke test on this machine's real /sys and /proc: no root needed, must not crash.
    @Test func realMachineSnapshotDiagnoses() throws {
        let settings = SystemSnapshot.collect()
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(settings["kernel/release"] == release)
        #expect(settings["kernel/btf"] == "present" || settings["kernel/btf"] == "absent")
        let report = Doctor.diagnose(settings: settings)
        let kernel = try #require(report.findings.first { $0.id == "kernel_release" })
        #expect(kernel.title == "Kernel \(release)")
        #expect(!report.summary.isEmpty)
        #expect(!DoctorTextRenderer.render(report).isEmpty)
    }
}
