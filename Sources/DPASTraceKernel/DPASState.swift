import CDPASEvents
import CLibBPF
import DPASTraceCore
import Foundation

/// Where the DPAS mode state lives and whether this kernel has it.
///
/// DPAS (5.18 + the FAST '26 patch) keeps one `struct blk_switch` per CPU behind the global
/// `irq_poll_switch` (a `__percpu` pointer from a dynamic allocation, so BPF cannot reach it as a
/// per-CPU ksym). The BPF side reads the pointer stored at `irq_poll_switch` and adds the CPU's
/// entry of `__per_cpu_offset[]`; both addresses come from /proc/kallsyms (root sees real addresses),
/// the field offsets from the kernel's BTF (CO-RE). Written against the names in
/// shared/dpas-kernel.md; no DPAS kernel was available to run it on.
public enum DPASState {
    /// BTF structs the DPAS programs relocate against.
    static let btfTypes = ["blk_switch", "blk_rq_pas_stat"]

    /// Addresses the BPF side needs, or nil when this is not a DPAS kernel.
    public struct Addresses: Sendable, Equatable {
        /// Address of the `irq_poll_switch` variable (which holds the per-CPU pointer).
        public var irqPollSwitch: UInt64
        /// Address of `__per_cpu_offset[0]`.
        public var perCPUOffset: UInt64
    }

    /// nil when the mode state is readable; else why not, worded for the plan and `modes`.
    public static func unavailableReason(_ facts: KernelFacts) -> String? {
        var missing: [String] = []
        if !facts.dpasTypesInBTF.contains("blk_switch") {
            missing.append(facts.hasBTF ? "struct blk_switch absent from BTF" : "no kernel BTF to find struct blk_switch in")
        }
        if facts.symbols["irq_poll_switch"] == nil { missing.append("irq_poll_switch absent from /proc/kallsyms") }
        if !missing.isEmpty { return "not a DPAS kernel: " + missing.joined(separator: " / ") }
        if facts.symbols["__per_cpu_offset"] == nil {
            return "DPAS state unreadable: __per_cpu_offset absent from /proc/kallsyms (needed to find each CPU's blk_switch)"
        }
        return nil
    }

    public static func addresses(_ facts: KernelFacts) -> Addresses? {
        guard unavailableReason(facts) == nil, let switchAddress = facts.symbols["irq_poll_switch"],
              let offsets = facts.symbols["__per_cpu_offset"], switchAddress != 0, offsets != 0 else { return nil }
        return Addresses(irqPollSwitch: switchAddress, perCPUOffset: offsets)
    }

    /// On DPAS kernels the PAS path computes its bucket inline: the out-of-line copy of
    /// `blk_mq_poll_stats_bkt` is not called, so a hook on it would see nothing there.
    public static let bucketNote =
        "DPAS kernel: the PAS path does not call the out-of-line blk_mq_poll_stats_bkt; buckets are computed from the request (stats_sectors, and blk_rq_sectors beside it)"

    /// PAS per-bucket state needs `struct blk_rq_pas_stat` in BTF as well.
    public static func pasStateUnavailableReason(_ facts: KernelFacts) -> String? {
        if let reason = unavailableReason(facts) { return reason }
        return facts.dpasTypesInBTF.contains("blk_rq_pas_stat") ? nil : "DPAS kernel without struct blk_rq_pas_stat in BTF: no PAS state"
    }
}

/// The DPAS maps of one moment (`dpas_cpu`, `dpas_mode_ios`, `dpas_totals`), per CPU.
public struct DPASSnapshot: Sendable {
    /// One CPU's `struct blk_switch` as last observed.
    public struct CPUState: Sendable, Equatable {
        public var firstSeenNs: UInt64
        public var lastSeenNs: UInt64
        public var firstMode: DPASMode
        public var mode: DPASMode
        public var transitions: UInt64
    }

    /// Index = CPU; nil where the CPU's state was never observed.
    public var cpus: [CPUState?] = []
    /// ios[cpu][row], rows in `struct blk_switch.mode` order plus the "mode unreadable" row.
    public var ios: [[UInt64]] = []
    public var polled: [[UInt64]] = []
    /// The kernel's own totals per CPU (`cp_tot` …), nil where never read.
    public var totals: [KernelModeTotals?] = []

    /// Whether any CPU's DPAS state was read.
    public var observed: Bool { cpus.contains { $0 != nil } || totals.contains { $0 != nil } }

    /// Counts since `earlier`; states and totals are kept as they are now.
    func since(_ earlier: DPASSnapshot) -> DPASSnapshot {
        var d = self
        for cpu in d.ios.indices where cpu < earlier.ios.count {
            for row in d.ios[cpu].indices {
                d.ios[cpu][row] &-= earlier.ios[cpu][row]
                d.polled[cpu][row] &-= earlier.polled[cpu][row]
            }
        }
        return d
    }

    /// Feeds the per-mode request counts, each CPU's first and current mode and the kernel's totals
    /// into the mode analysis. `startNs`/`nowNs` (CLOCK_MONOTONIC) bound the traced period; add the
    /// MODE events between the two calls (`begin`, then the events, then `finish`).
    /// `startModes`: each CPU's mode at `startNs` (an interval's start: the previous reading's `mode`);
    /// nil for the whole run, where the mode at the first observation is taken to hold since `startNs`.
    public func begin(_ accumulator: inout ModeAccumulator, startNs: UInt64, startModes: [DPASMode?]? = nil) {
        for (cpu, state) in cpus.enumerated() {
            guard let state else { continue }
            if let startModes {
                guard cpu < startModes.count, let mode = startModes[cpu] else { continue }
                accumulator.noteMode(cpu: cpu, tsNs: startNs, mode: mode)
            } else {
                accumulator.noteTime(cpu: cpu, tsNs: min(startNs, state.firstSeenNs))
                accumulator.noteMode(cpu: cpu, tsNs: state.firstSeenNs, mode: state.firstMode)
            }
        }
    }

    /// Each CPU's mode at this reading, nil where never observed.
    public var modes: [DPASMode?] { cpus.map { $0?.mode } }

    public func finish(_ accumulator: inout ModeAccumulator, nowNs: UInt64) {
        for (cpu, state) in cpus.enumerated() {
            guard let state else { continue }
            accumulator.noteMode(cpu: cpu, tsNs: max(nowNs, state.lastSeenNs), mode: state.mode)
        }
        for (cpu, rows) in ios.enumerated() {
            for (row, count) in rows.enumerated() where count > 0 {
                let mode = row < dpasModes.count ? dpasModes[row] : .unknown
                accumulator.addIOs(cpu: cpu, mode: mode, count: count, polled: polled[cpu][row])
            }
        }
        for (cpu, totals) in totals.enumerated() {
            if let totals { accumulator.setKernelTotals(cpu: cpu, totals) }
        }
    }
}

extension TraceSession {
    /// Reads the DPAS maps (all zero, hence empty, on stock kernels).
    func dpasSnapshot() -> DPASSnapshot {
        var snap = DPASSnapshot()
        let cpus = cpuCount
        guard let cpuMap = mapFD("dpas_cpu"), let iosMap = mapFD("dpas_mode_ios"), let totalsMap = mapFD("dpas_totals") else {
            return snap
        }
        let cpuStride = (MemoryLayout<dpt_dpas_cpu>.stride + 7) & ~7
        let ioStride = (MemoryLayout<dpt_dpas_mode_ios>.stride + 7) & ~7
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(cpuStride, ioStride) * cpus, alignment: 8)
        defer { raw.deallocate() }

        var key: UInt32 = 0
        snap.cpus = Array(repeating: nil, count: cpus)
        if bpf_map_lookup_elem(cpuMap, &key, raw) == 0 {
            for cpu in 0..<cpus {
                let value = (raw + cpu * cpuStride).load(as: dpt_dpas_cpu.self)
                guard value.first_seen_ns != 0 else { continue }
                snap.cpus[cpu] = DPASSnapshot.CPUState(
                    firstSeenNs: value.first_seen_ns, lastSeenNs: value.last_seen_ns,
                    firstMode: DPASMode(rawValue: UInt8(truncatingIfNeeded: value.first_mode)) ?? .unknown,
                    mode: DPASMode(rawValue: UInt8(truncatingIfNeeded: value.mode)) ?? .unknown,
                    transitions: value.transitions)
            }
        }

        let rows = Int(DPT_DPAS_MODE_ROWS)
        snap.ios = Array(repeating: Array(repeating: 0, count: rows), count: cpus)
        snap.polled = snap.ios
        for row in 0..<rows {
            key = UInt32(row)
            guard bpf_map_lookup_elem(iosMap, &key, raw) == 0 else { continue }
            for cpu in 0..<cpus {
                let value = (raw + cpu * ioStride).load(as: dpt_dpas_mode_ios.self)
                snap.ios[cpu][row] = value.ios
                snap.polled[cpu][row] = value.polled
            }
        }

        snap.totals = Array(repeating: nil, count: cpus)
        for cpu in 0..<min(cpus, Int(DPT_MAX_CPUS)) {
            key = UInt32(cpu)
            var value = dpt_dpas_totals()
            guard bpf_map_lookup_elem(totalsMap, &key, &value) == 0, value.read_ns != 0 else { continue }
            snap.totals[cpu] = KernelModeTotals(cp: value.cp_tot, pas: value.pas_tot, ol: value.ol_tot, int: value.int_tot)
        }
        return snap
    }
}

extension TraceSession {
    /// The programs that carry DPAS code: the DPAS hook, and the shared hooks that read the mode.
    public static let dpasPrograms = ["dpas_poll_enter_kprobe", "dpas_poll_exit_kretprobe", "rq_start_kprobe", "arm_enter_kprobe"]

    /// Loads `programs` (no attach) with the DPAS globals set as on a DPAS kernel, so the DPAS reads
    /// are live code for the verifier. `btfPath`: BTF (raw or ELF) to relocate against instead of the
    /// running kernel's — a DPAS kernel's types, on a machine that has none. The addresses passed are
    /// never dereferenced here (nothing is attached). Returns nil on success, else libbpf's reason.
    public static func dpasVerifierCheck(programs: [String] = dpasPrograms, btfPath: String?) -> String? {
        verifierCheck(programs: programs, btfPath: btfPath) { globals in
            // Any non-zero kernel address makes the DPAS branches reachable for the verifier.
            let somewhere = KernelFacts.readKallsyms(["hrtimer_wakeup"])["hrtimer_wakeup"].flatMap { $0 == 0 ? nil : $0 }
                ?? 0xffff_ffff_8100_0000
            try globals.set("dpas_switch_addr", somewhere)
            try globals.set("dpas_percpu_offset_addr", somewhere)
            try globals.set("dpas_nr_cpus", UInt32(4))
            try globals.set("dpas_pas_events", UInt8(1))
            try globals.set("emit_events", UInt8(1))
            try globals.set("maker_hooked", UInt8(1)) // the request start's maker lookup is live code too
            try globals.set("dpas_observe_at_arm", UInt8(1)) // the arm's mode read, as when modes are read
        }
    }
}
