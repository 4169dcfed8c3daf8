import ArgumentParser
import CLibBPF
import Foundation

/// The floor of bench/lab: a minimal BPF program on each named function's entry (fentry), attached
/// until SIGINT or SIGTERM. Empty, it is the price of the hooks themselves — the kernel entering a
/// BPF trampoline at every call — which a tracer on the same calls pays before doing any work.
/// With --helper-calls, --touch-pages, --spin, --thread-lookups or --percpu-counts it does a fixed
/// amount of one kind of work per run, to tell which kind costs the traced workload what (under
/// TCG, in the lab); --stats prints the programs' run time by the kernel's statistics when
/// detaching, to relate that cost to it.
/// (bpftrace 0.17 cannot do this on 5.10: its feature probe reports no kfunc support there.)
@main
struct HookFloor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpt-hook-floor",
        abstract: "Attach minimal fentry programs to kernel functions until SIGINT (root): the tracing cost floor."
    )

    @Option(help: "Calls of bpf_get_current_pid_tgid per run (a helper call each).")
    var helperCalls = 0

    @Option(help: "Distinct 4 KiB pages of an array map each run writes one word to.")
    var touchPages = 0

    @Option(help: "Iterations of a register-only loop per run (pure CPU work: no memory, no helper).")
    var spin = 0

    @Option(help: "Lookups per run of the current thread in a map (added if missing), storing to the value: sleep-ratio's per-thread state.")
    var threadLookups = 0

    enum ThreadMap: String, ExpressibleByArgument, CaseIterable {
        case lruHash = "lru-hash", hash, array
    }

    @Option(help: "The --thread-lookups map: lru-hash (sleep-ratio's until 2026-11-27), hash, or array (indexed by the thread id's low 12 bits, as sleep-ratio's slots are by its low 15).")
    var threadMap = ThreadMap.lruHash

    @Option(help: "Increments per run of a per-CPU array counter (a lookup and an add): sleep-ratio's counters.")
    var percpuCounts = 0

    @Flag(help: "Count the programs' runs and run time (BPF_ENABLE_STATS, Linux 5.8+) and print them on exit.")
    var stats = false

    @Argument(help: "Kernel functions to hook (their entries).")
    var functions: [String]

    func validate() throws {
        guard !functions.isEmpty else { throw ValidationError("name at least one function") }
        guard [helperCalls, touchPages, threadLookups, percpuCounts].allSatisfy({ (0...64).contains($0) }) else {
            throw ValidationError("--helper-calls, --touch-pages, --thread-lookups and --percpu-counts take 0 to 64")
        }
        // the verifier walks every iteration: its limit is a million instructions
        guard (0...100_000).contains(spin) else { throw ValidationError("--spin takes 0 to 100000") }
    }

    func run() throws {
        guard let vmlinux = btf__load_vmlinux_btf() else {
            throw failure("cannot load the kernel's BTF (/sys/kernel/btf/vmlinux): fentry needs it")
        }
        defer { btf__free(vmlinux) }
        /// A map with u32 keys, or -1 where the work that needs it is not asked for.
        func map(if needed: Bool, _ type: bpf_map_type, _ name: String, valueSize: Int, entries: Int) throws -> Int32 {
            guard needed else { return -1 }
            let fd = bpf_map_create(type, name, 4, UInt32(valueSize), UInt32(entries), nil)
            guard fd >= 0 else { throw failure("creating the map \(name) failed: \(String(cString: strerror(-fd)))") }
            return fd
        }
        let pages = try map(if: touchPages > 0, BPF_MAP_TYPE_ARRAY, "floor_pages", valueSize: touchPages * 4096, entries: 1)
        let threadMapType: bpf_map_type = switch threadMap {
        case .lruHash: BPF_MAP_TYPE_LRU_HASH
        case .hash: BPF_MAP_TYPE_HASH
        case .array: BPF_MAP_TYPE_ARRAY
        }
        let threads = try map(if: threadLookups > 0, threadMapType, "floor_threads", valueSize: 8, entries: Self.threadSlots)
        let counters = try map(if: percpuCounts > 0, BPF_MAP_TYPE_PERCPU_ARRAY, "floor_counters", valueSize: 8, entries: 1)
        let insns = program(pagesMap: pages, threadsMap: threads, countersMap: counters)
        var statsFD: Int32 = -1
        if stats {
            statsFD = bpf_enable_stats(BPF_STATS_RUN_TIME)
            guard statsFD >= 0 else { throw failure("the kernel cannot count run time (BPF_ENABLE_STATS): \(String(cString: strerror(-statsFD)))") }
        }
        var programs: [Int32] = []
        var links: [Int32] = []
        for function in functions {
            let btfID = btf__find_by_name_kind(vmlinux, function, Self.btfKindFunction)
            guard btfID > 0 else { throw failure("\(function) is not a function in the kernel's BTF") }
            var options = bpf_prog_load_opts()
            options.sz = MemoryLayout<bpf_prog_load_opts>.size
            options.expected_attach_type = BPF_TRACE_FENTRY
            options.attach_btf_id = UInt32(btfID)
            let program = bpf_prog_load(BPF_PROG_TYPE_TRACING, "floor", "GPL", insns, insns.count, &options)
            guard program >= 0 else {
                throw failure("the kernel refused an fentry program on \(function): \(String(cString: strerror(-program)))")
            }
            // BPF_RAW_TRACEPOINT_OPEN attaches tracing programs on every kernel with fentry (5.5+).
            let link = bpf_raw_tracepoint_open(nil, program)
            guard link >= 0 else { throw failure("attaching to \(function) failed: \(String(cString: strerror(-link)))") }
            programs.append(program)
            links.append(link)
        }
        // A whole line at once: bench/lab waits for it in a file.
        FileHandle.standardOutput.write(Data("dpt-hook-floor: attached \(links.count) fentry programs (per run: \(helperCalls) helper calls, \(touchPages) pages, \(spin) loop iterations, \(threadLookups) \(threadMap.rawValue) lookups, \(percpuCounts) per-CPU counts): \(functions.joined(separator: " "))\n".utf8))

        var stop = sigset_t()
        sigemptyset(&stop)
        sigaddset(&stop, SIGINT)
        sigaddset(&stop, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &stop, nil)
        var received: Int32 = 0
        sigwait(&stop, &received)
        if stats {
            for (function, program) in zip(functions, programs) {
                var info = bpf_prog_info()
                var length = UInt32(MemoryLayout<bpf_prog_info>.size)
                guard bpf_obj_get_info_by_fd(program, &info, &length) == 0 else { continue }
                let mean = info.run_cnt > 0 ? Double(info.run_time_ns) / Double(info.run_cnt) : 0
                print("dpt-hook-floor: \(function): \(info.run_cnt) runs, \(info.run_time_ns) ns, mean \(String(format: "%.0f", mean)) ns")
            }
            close(statsFD)
        }
        links.forEach { close($0) } // detaches; the programs go with their last reference
    }

    static let threadSlots = 4096

    /// BTF_KIND_FUNC: C declares it both as an enum constant and a macro, which Swift finds ambiguous.
    static let btfKindFunction: UInt32 = 12

    /// helperCalls × `call bpf_get_current_pid_tgid`, then per page `r1 = &pages[0] + page × 4096;
    /// *(u64 *)r1 = 1`, then `r6 = spin; do r6 -= 1 while r6 != 0`, then per thread lookup the thread's
    /// value (added if missing) set to 1, then per count a per-CPU counter's `*v += 1`, then
    /// `r0 = 0; exit`.
    func program(pagesMap: Int32, threadsMap: Int32, countersMap: Int32) -> [bpf_insn] {
        func insn(_ code: Int32, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) -> bpf_insn {
            var i = bpf_insn()
            i.code = UInt8(code)
            i.dst_reg = dst
            i.src_reg = src
            i.off = off
            i.imm = imm
            return i
        }
        var insns: [bpf_insn] = []
        for _ in 0..<helperCalls {
            insns.append(insn(BPF_JMP | BPF_CALL, imm: Int32(BPF_FUNC_get_current_pid_tgid.rawValue)))
        }
        for page in 0..<touchPages {
            // 64-bit immediate load of a map value's address (two instructions: fd, then offset)
            insns.append(insn(BPF_LD | BPF_DW | BPF_IMM, dst: 1, src: UInt8(BPF_PSEUDO_MAP_VALUE), imm: pagesMap))
            insns.append(insn(0, imm: Int32(page * 4096)))
            insns.append(insn(BPF_ST | BPF_MEM | BPF_DW, dst: 1, imm: 1))
        }
        if spin > 0 {
            insns.append(insn(BPF_ALU64 | BPF_MOV | BPF_K, dst: 6, imm: Int32(spin)))
            insns.append(insn(BPF_ALU64 | BPF_SUB | BPF_K, dst: 6, imm: 1))
            insns.append(insn(BPF_JMP | BPF_JNE | BPF_K, dst: 6, off: -2, imm: 0))
        }
        func loadMap(_ register: UInt8, _ fd: Int32) {
            insns.append(insn(BPF_LD | BPF_DW | BPF_IMM, dst: register, src: UInt8(BPF_PSEUDO_MAP_FD), imm: fd))
            insns.append(insn(0))
        }
        func stackAddress(_ register: UInt8, _ offset: Int32) {
            insns.append(insn(BPF_ALU64 | BPF_MOV | BPF_X, dst: register, src: 10))
            insns.append(insn(BPF_ALU64 | BPF_ADD | BPF_K, dst: register, imm: offset))
        }
        /// r0 = the value at the key on the stack at `key` (r1, r2 set up for the helper).
        func lookUp(_ fd: Int32, key: Int32) {
            loadMap(1, fd)
            stackAddress(2, key)
            insns.append(insn(BPF_JMP | BPF_CALL, imm: Int32(BPF_FUNC_map_lookup_elem.rawValue)))
        }
        if threadLookups > 0 {
            // key: the thread id (an array's slot: its low bits) at fp-4; a zero value to add at fp-16
            insns.append(insn(BPF_JMP | BPF_CALL, imm: Int32(BPF_FUNC_get_current_pid_tgid.rawValue)))
            if threadMap == .array { insns.append(insn(BPF_ALU64 | BPF_AND | BPF_K, dst: 0, imm: Int32(Self.threadSlots - 1))) }
            insns.append(insn(BPF_STX | BPF_MEM | BPF_W, dst: 10, src: 0, off: -4))
            insns.append(insn(BPF_ST | BPF_MEM | BPF_DW, dst: 10, off: -16, imm: 0))
        }
        for _ in 0..<threadLookups {
            lookUp(threadsMap, key: -4)
            insns.append(insn(BPF_JMP | BPF_JEQ | BPF_K, dst: 0, off: 2, imm: 0))
            insns.append(insn(BPF_ST | BPF_MEM | BPF_DW, dst: 0, imm: 1))
            insns.append(insn(BPF_JMP | BPF_JA, off: 8)) // over the add below
            loadMap(1, threadsMap)
            stackAddress(2, -4)
            stackAddress(3, -16)
            insns.append(insn(BPF_ALU64 | BPF_MOV | BPF_K, dst: 4, imm: 0))
            insns.append(insn(BPF_JMP | BPF_CALL, imm: Int32(BPF_FUNC_map_update_elem.rawValue)))
        }
        if percpuCounts > 0 {
            insns.append(insn(BPF_ST | BPF_MEM | BPF_W, dst: 10, off: -20, imm: 0))
        }
        for _ in 0..<percpuCounts {
            lookUp(countersMap, key: -20)
            insns.append(insn(BPF_JMP | BPF_JEQ | BPF_K, dst: 0, off: 3, imm: 0))
            insns.append(insn(BPF_LDX | BPF_MEM | BPF_DW, dst: 1, src: 0))
            insns.append(insn(BPF_ALU64 | BPF_ADD | BPF_K, dst: 1, imm: 1))
            insns.append(insn(BPF_STX | BPF_MEM | BPF_DW, dst: 0, src: 1))
        }
        insns.append(insn(BPF_ALU64 | BPF_MOV | BPF_K, dst: 0, imm: 0))
        insns.append(insn(BPF_JMP | BPF_EXIT))
        return insns
    }

    func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("dpt-hook-floor: \(message)\n".utf8))
        return ExitCode.failure
    }
}
