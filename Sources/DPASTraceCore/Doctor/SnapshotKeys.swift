/// The keys of a system settings snapshot: a flat `[String: String]` whose keys are paths relative
/// to the sysfs root (plus a few synthetic `kernel/…`, `machine/…` and `snapshot/…` keys).
///
/// The same map is stored in every dump header (`DumpHeader.settings`), so the collector
/// (DPASTraceKernel's `SystemSnapshot`) and the rules (`Doctor`) must agree on these names; they
/// live here, in the core, so an offline analysis can read a dump's snapshot without the kernel side.
///
/// Values are the file's content, trimmed, or `error: <strerror>` when reading it failed.
public enum SnapshotKeys {
    /// Prefix of a value that records a failed read, e.g. `error: Invalid argument`.
    public static let errorPrefix = "error: "

    /// Stock per-queue files that decide which completion path runs.
    public static let queueFiles = ["io_poll", "io_poll_delay", "wbt_lat_usec", "scheduler", "nomerges"]

    /// Every DPAS knob, in the artifact's order. `switch_stat` is deliberately absent: reading it
    /// prints one line per CPU to the kernel log.
    public static let dpasKnobs = [
        "pas_enabled", "pas_adaptive_enabled", "pas_d_init", "pas_up_init", "pas_dn_init",
        "pas_heat_up", "pas_cool_dn", "pas_min_dn", "pas_max_dn", "pas_max_no_lock",
        "pas_poll_threshold", "pas_exception", "ehp_enabled", "switch_enabled",
        "switch_param1", "switch_param2", "switch_param3", "switch_param4",
        "switch_param5", "switch_param6", "switch_param7", "logging_enabled",
    ]

    /// The hybrid sleep loop is blk_mq_poll_hybrid_sleep's; the compiler may inline it into the
    /// functions that call it, so a sleeper's arm is the loop's when its caller is any of them.
    public static let hybridLoopFunctions = ["blk_mq_poll_hybrid_sleep", "blk_mq_poll_hybrid", "blk_poll", "blk_mq_poll"]

    /// Kernel functions (and the DPAS global) whose presence in /proc/kallsyms tells which hooks
    /// a probe plan can get; absent means inlined, renamed or removed.
    public static let symbols = [
        "hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel", "blk_mq_start_request",
        "blk_account_io_start", "__blk_account_io_start", "irq_poll_switch",
    ] + hybridLoopFunctions

    /// Tracepoints the plan falls back on, detected through their `__traceiter_`/`__tracepoint_`
    /// symbols in /proc/kallsyms (tracefs need not be mounted).
    public static let tracepoints = [
        "block_rq_issue", "block_io_start", "hrtimer_start", "hrtimer_expire_entry", "sched_switch",
    ]

    public static let kernelRelease = "kernel/release"
    /// "present" / "absent": /sys/kernel/btf/vmlinux.
    public static let kernelBTF = "kernel/btf"
    /// "present" / "absent" (or an error when kallsyms could not be read).
    public static let kernelKprobes = "kernel/kprobes"
    /// `module/nvme/parameters/poll_queues`.
    public static let nvmePollQueues = "module/nvme/parameters/poll_queues"
    /// "present" / "absent": the CPU's `hypervisor` flag in /proc/cpuinfo.
    public static let machineHypervisor = "machine/hypervisor"
    /// DMI vendor and product name, when the machine exposes them (e.g. "QEMU Standard PC …").
    public static let machineProduct = "machine/product"
    /// Comma-separated devices the snapshot covers.
    public static let snapshotDevices = "snapshot/devices"
    /// A sentence on how the devices were chosen when that is worth knowing (e.g. no NVMe exists).
    public static let snapshotNote = "snapshot/note"

    public static func queue(_ device: String, _ file: String) -> String {
        "block/\(device)/queue/\(file)"
    }

    public static func symbol(_ name: String) -> String { "kernel/symbols/\(name)" }

    public static func tracepoint(_ name: String) -> String { "kernel/tracepoints/\(name)" }

    /// Devices that have at least one `block/<dev>/queue/…` key, sorted.
    public static func devices(in settings: [String: String]) -> [String] {
        var names = Set<String>()
        for key in settings.keys where key.hasPrefix("block/") {
            let parts = key.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count >= 4, parts[2] == "queue" { names.insert(String(parts[1])) }
        }
        return names.sorted()
    }
}
