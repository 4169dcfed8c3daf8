import CLibBPF
import DPASTraceCore
import Foundation

/// What the running kernel offers, gathered once before a probe plan is chosen:
/// BTF, /proc/kallsyms, tracefs events and the kprobe PMU.
public struct KernelFacts: Sendable {
    public var release: String
    /// /sys/kernel/btf/vmlinux loaded (CO-RE, tp_btf and fentry need it).
    public var hasBTF: Bool
    /// Kernel symbols we care about, with their addresses; absent = not a real symbol (inlined or gone).
    public var symbols: [String: UInt64]
    /// Functions present in BTF (fentry/fexit targets).
    public var btfFunctions: Set<String>
    /// Raw tracepoints with a BTF prototype (`btf_trace_NAME`), with their argument count.
    public var btfTracepointArgs: [String: Int]
    /// "category/name" tracepoints listed in tracefs.
    public var tracepoints: Set<String>
    /// Where tracefs is (nil: not mounted and could not be mounted).
    public var tracefsPath: String?
    /// The kprobe PMU exists (CONFIG_KPROBES + CONFIG_KPROBE_EVENTS).
    public var hasKprobes: Bool
    /// `struct request_queue` has `poll_nsec`: the kernel still has hybrid polling (removed in 6.4).
    public var hasHybridPolling: Bool
    /// Bit number of QUEUE_FLAG_STATS in q->queue_flags.
    public var queueFlagStatsBit: UInt32
    /// Where QUEUE_FLAG_STATS's value came from, for the plan.
    public var queueFlagStatsSource: String
    /// The DPAS types (`struct blk_switch`, `struct blk_rq_pas_stat`) present in the kernel's BTF.
    public var dpasTypesInBTF: Set<String> = []
    /// Text ranges of the functions that can hold the kernel's hybrid sleep loop, innermost first
    /// (see `SnapshotKeys.hybridLoopFunctions`): a sleeper armed from inside one is a hybrid sleep.
    public var hybridLoopRanges: [TextRange] = []

    /// A function's code: from its kallsyms address to the next text symbol's.
    public struct TextRange: Sendable, Equatable {
        public var function: String
        public var range: Range<UInt64>
        public init(function: String, range: Range<UInt64>) {
            self.function = function
            self.range = range
        }
    }

    /// Symbols looked up in /proc/kallsyms.
    public static let interestingSymbols = [
        "blk_mq_start_request", "blk_account_io_start", "__blk_account_io_start", "blk_poll", "blk_mq_poll",
        "hrtimer_sleeper_start_expires", "io_schedule", "hrtimer_cancel", "hrtimer_wakeup", "irq_poll_switch",
        "__per_cpu_offset",
    ]

    /// Tracepoints the planner may use, "category/name": each is looked for in tracefs, and its
    /// name in BTF (a `btf_trace_` prototype: a tp_btf program can attach).
    public static let interestingTracepoints = [
        "block/block_rq_issue", "block/block_io_start", "block/block_rq_complete", "timer/hrtimer_start",
        "timer/hrtimer_expire_entry", "sched/sched_switch",
    ]

    /// Reads everything; never throws: a missing source just means fewer options.
    public static func gather(mountTracefs: Bool = true) -> KernelFacts {
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        LibBPFLog.install()

        let kallsyms = readKallsyms(Set(interestingSymbols), ranges: Set(SnapshotKeys.hybridLoopFunctions))
        var facts = KernelFacts(
            release: release, hasBTF: false, symbols: kallsyms.addresses, btfFunctions: [],
            btfTracepointArgs: [:], tracepoints: [], tracefsPath: nil,
            hasKprobes: FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/kprobe/type"),
            hasHybridPolling: false, queueFlagStatsBit: 20,
            queueFlagStatsSource: "#define QUEUE_FLAG_STATS 20 (kernels before 6.10: not in BTF)")
        facts.hybridLoopRanges = SnapshotKeys.hybridLoopFunctions.compactMap { name in
            kallsyms.ranges[name].map { TextRange(function: name, range: $0) }
        }

        if let btf = btf__load_vmlinux_btf(), libbpf_get_error(UnsafeRawPointer(btf)) == 0 {
            defer { btf__free(btf) }
            facts.hasBTF = true
            for name in interestingSymbols where btf__find_by_name_kind(btf, name, BTFKind.func.rawValue) > 0 {
                facts.btfFunctions.insert(name)
            }
            for tp in interestingTracepoints.map({ String($0.split(separator: "/").last!) }) {
                if let args = tracepointArgCount(btf, tp) { facts.btfTracepointArgs[tp] = args }
            }
            facts.hasHybridPolling = structHasMember(btf, "request_queue", "poll_nsec")
            for type in DPASState.btfTypes where btf__find_by_name_kind(btf, type, BTFKind.struct.rawValue) > 0 {
                facts.dpasTypesInBTF.insert(type)
            }
            if let bit = enumeratorValue(btf, "QUEUE_FLAG_STATS") {
                facts.queueFlagStatsBit = UInt32(bit)
                facts.queueFlagStatsSource = "enum value QUEUE_FLAG_STATS = \(bit) (from BTF)"
            }
        }

        facts.tracefsPath = locateTracefs(mount: mountTracefs)
        if let base = facts.tracefsPath {
            for tp in interestingTracepoints where FileManager.default.fileExists(atPath: "\(base)/events/\(tp)/id") {
                facts.tracepoints.insert(tp)
            }
        }
        return facts
    }

    /// The hybrid-poll entry point this kernel has: blk_poll (<= 5.17) or blk_mq_poll.
    public var pollFunction: String? {
        if symbols["blk_poll"] != nil { return "blk_poll" }
        if symbols["blk_mq_poll"] != nil { return "blk_mq_poll" }
        return nil
    }

    /// DPAS mode state is readable here: see `DPASState.unavailableReason`.
    public var isDPASKernel: Bool { DPASState.unavailableReason(self) == nil }

    // MARK: - sources

    static func readKallsyms(_ wanted: Set<String>) -> [String: UInt64] {
        readKallsyms(wanted, ranges: []).addresses
    }

    /// Addresses of `wanted`, and for `ranges` each function's code up to the next text symbol
    /// (the kernel's own symbols are listed in address order). Hidden addresses (kptr_restrict)
    /// read as 0 and give no range.
    static func readKallsyms(_ wanted: Set<String>, ranges: Set<String>, path: String = "/proc/kallsyms")
        -> (addresses: [String: UInt64], ranges: [String: Range<UInt64>]) {
        guard let file = fopen(path, "r") else { return ([:], [:]) }
        defer { fclose(file) }
        var found: [String: UInt64] = [:]
        var textRanges: [String: Range<UInt64>] = [:]
        var open: [(name: String, start: UInt64)] = []
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            // "ffffffff8141e4b0 t hrtimer_wakeup [module]"
            let fields = String(cString: line).split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, let address = UInt64(fields[0], radix: 16) else { continue }
            let name = fields[2].trimmingCharacters(in: .whitespacesAndNewlines)
            if !open.isEmpty, fields[1] == "t" || fields[1] == "T" {
                for function in open where address > function.start { textRanges[function.name] = function.start..<address }
                open.removeAll { address > $0.start }
            }
            if ranges.contains(name), textRanges[name] == nil, address != 0, !open.contains(where: { $0.name == name }) {
                open.append((name, address))
            }
            if wanted.contains(name), found[name] == nil { found[name] = address }
        }
        return (found, textRanges)
    }

    static func locateTracefs(mount doMount: Bool) -> String? {
        for base in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        where FileManager.default.fileExists(atPath: "\(base)/events") {
            return base
        }
        guard doMount, FileManager.default.fileExists(atPath: "/sys/kernel/tracing") else { return nil }
        // libbpf attaches classic tracepoints through tracefs: mount it where it belongs.
        if mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nil) == 0 { return "/sys/kernel/tracing" }
        return nil
    }

    static func tracepointArgCount(_ btf: OpaquePointer, _ name: String) -> Int? {
        let id = btf__find_by_name_kind(btf, "btf_trace_\(name)", BTFKind.typedef.rawValue)
        guard id > 0, var type = btf__type_by_id(btf, UInt32(id)) else { return nil }
        // typedef -> pointer -> func_proto(void *ctx, args...)
        for _ in 0..<2 {
            guard let next = btf__type_by_id(btf, type.pointee.type) else { return nil }
            type = next
        }
        guard btf_kind(type) == UInt16(BTFKind.funcProto.rawValue) else { return nil }
        return Int(btf_vlen(type)) - 1
    }

    static func structHasMember(_ btf: OpaquePointer, _ structName: String, _ member: String) -> Bool {
        let id = btf__find_by_name_kind(btf, structName, BTFKind.struct.rawValue)
        guard id > 0, let type = btf__type_by_id(btf, UInt32(id)), let members = btf_members(type) else { return false }
        for index in 0..<Int(btf_vlen(type)) {
            if let name = btf__name_by_offset(btf, members[index].name_off), String(cString: name) == member { return true }
        }
        return false
    }

    static func enumeratorValue(_ btf: OpaquePointer, _ enumerator: String) -> Int64? {
        let count = btf__type_cnt(btf)
        for id in 1..<count {
            guard let type = btf__type_by_id(btf, id), btf_kind(type) == UInt16(BTFKind.enum.rawValue),
                  let values = btf_enum(type) else { continue }
            for index in 0..<Int(btf_vlen(type)) {
                if let name = btf__name_by_offset(btf, values[index].name_off), String(cString: name) == enumerator {
                    return Int64(values[index].val)
                }
            }
        }
        return nil
    }
}

/// BTF type kinds (UAPI values of <linux/btf.h>; the C names are ambiguous to Swift's importer).
enum BTFKind: UInt32 {
    case `struct` = 4, `enum` = 6, typedef = 8, `func` = 12, funcProto = 13, datasec = 15
}
