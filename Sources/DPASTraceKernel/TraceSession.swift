import CDPASEvents
import CLibBPF
import DPASTraceCore
import Foundation

/// A live tracing session: chooses the probe plan, loads `dpas_trace.bpf.o` with the chosen
/// programs, attaches them, and hands out the ring-buffer events and the in-kernel aggregates.
/// `close()` (or deinit) destroys every link and the object: nothing stays attached.
public final class TraceSession {
    public struct Options: Sendable {
        /// Only requests of this disk (e.g. "nvme0n1"); nil = every disk.
        public var device: String?
        /// Only requests made (and hybrid sleeps armed) by this process (`--pid`); nil = all.
        public var processID: UInt32?
        /// Only requests made (and hybrid sleeps armed) by this thread (`--tid`; tests share one process); nil = all.
        public var threadID: UInt32?
        /// Stream per-event records through the ring buffer (record); aggregates are always kept.
        public var streamEvents: Bool
        /// Ring-buffer size in bytes (power of two, ≥ one page).
        public var ringBufferBytes: UInt32
        /// Load and attach the hybrid-sleep tracepoints even on kernels without hybrid polling.
        public var forceSleepTracepoints: Bool
        /// Tests only: classify every hrtimer_wakeup sleeper of the traced process (nanosleep, …) as a
        /// hybrid sleep, so the slept/no-sleep logic runs on kernels without hybrid polling.
        public var classifyEverySleeper: Bool
        /// Tests only, with classifyEverySleeper: only sleepers asking for less than this many ns
        /// (0: any), so the test's own short sleeps are not crowded out of the thread slots by the
        /// long timed waits of the test process's other threads.
        public var sleepersBelowNs: UInt64 = 0
        /// DPAS kernels: stream PAS per-bucket state changes (PAS_STATE events) even without streamEvents.
        public var pasStateEvents: Bool = false
        /// Have the kernel count every program's runs and run time while the session is open
        /// (BPF_ENABLE_STATS, Linux ≥ 5.8), for `programCosts()`. Costs two clock reads per program run.
        public var programStatistics: Bool = false
        /// The hooks to plan, load and attach (default: all); a command attaches only what it reads.
        public var hooks: Set<Hook> = Set(Hook.allCases)
        /// Attach types not to use, so the planner falls back to the next (compare their costs,
        /// step around a kernel that misbehaves with one, exercise the fallbacks in tests).
        public var avoidedAttachTypes: Set<ProbeCandidate.Kind> = []
        /// Plan the timer and context-switch tracepoints for hybrid sleeps even where the sleep
        /// loop's hrtimer_cancel can resolve them (`ProbePlanner.measureOffCPUTime`).
        public var measureOffCPUTime = false
        /// Also count what only describes the run (poll calls, sleepers armed: `kernelCountersLine`),
        /// at two per-CPU lookups per polled read.
        public var diagnosticCounts = false
        /// Tests only: use this many of the kernel's per-thread slots (a power of two, at most
        /// DPT_THREAD_SLOTS) and give a slot away once its thread has not claimed it for this many
        /// jiffies, so that threads collide and slots age within a test.
        public var threadSlots: UInt32 = UInt32(DPT_THREAD_SLOTS)
        public var threadSlotStaleJiffies: UInt64 = UInt64(DPT_THREAD_SLOT_STALE)

        public init(device: String? = nil, processID: UInt32? = nil, threadID: UInt32? = nil, streamEvents: Bool = false,
                    ringBufferBytes: UInt32 = 16 << 20, forceSleepTracepoints: Bool = false,
                    classifyEverySleeper: Bool = false) {
            self.classifyEverySleeper = classifyEverySleeper
            self.device = device
            self.processID = processID
            self.threadID = threadID
            self.streamEvents = streamEvents
            self.ringBufferBytes = ringBufferBytes
            self.forceSleepTracepoints = forceSleepTracepoints
        }
    }

    public static let objectName = "dpas_trace"

    public let options: Options
    public let facts: KernelFacts
    public private(set) var plan: ProbePlan
    /// dev_t (kernel encoding) of `options.device`, 0 for all.
    public let deviceNumber: UInt32
    /// libbpf messages of this session (every load attempt and attach).
    public private(set) var libbpfMessages: [LibBPFLog.Line] = []
    /// Warnings of the final load and the attaches: not explained by the plan's fallbacks.
    public private(set) var unexplainedWarnings: [LibBPFLog.Line] = []

    /// Why `programStatistics` could not be had, when it was asked for and refused.
    public private(set) var programStatisticsError: String?

    private var object: OpaquePointer?
    private var links: [OpaquePointer] = []
    /// Held while the kernel counts program run time; closing it stops the counting.
    private var statisticsFD: Int32 = -1
    private var ringBuffer: OpaquePointer?
    private let sink = EventSink()
    let cpuCount: Int

    /// Opens, loads and attaches. Throws only when nothing useful can run (no privilege, object
    /// refused as a whole); single hooks that fail are recorded in `plan` instead.
    public init(options: Options = Options()) throws {
        try Privilege.check()
        self.options = options
        LibBPFLog.install()
        let logMark = LibBPFLog.mark
        facts = KernelFacts.gather()
        deviceNumber = try options.device.map(TraceSession.deviceNumber(of:)) ?? 0
        let possible = libbpf_num_possible_cpus()
        guard possible > 0 else { throw KernelError.libbpf("cannot count possible CPUs", code: possible) }
        cpuCount = Int(possible)
        guard let bytes = BPFObjects.object(named: TraceSession.objectName) else {
            throw KernelError("the BPF object \(TraceSession.objectName) is not embedded in this build: rebuild dpas-trace")
        }

        var planner = ProbePlanner(facts: facts, forceSleepTracepoints: options.forceSleepTracepoints, hooks: options.hooks)
        for kind in options.avoidedAttachTypes { planner.refusedKinds[kind] = "\(kind.rawValue) avoided (--avoid \(kind.rawValue))" }
        // Sleepers other than the poll loop's (classifyEverySleeper) do not call io_schedule.
        planner.measureOffCPUTime = options.measureOffCPUTime || options.classifyEverySleeper
        plan = planner.plan()
        // Load; when one program is refused, rule its candidate out and re-plan (at most once per program).
        var attempts = 0
        var lastLoadMark = logMark
        while true {
            attempts += 1
            let mark = LibBPFLog.mark
            lastLoadMark = mark
            let result = loadObject(bytes: bytes)
            if case .success(let loaded) = result {
                object = loaded
                break
            }
            guard case .failure(let failure) = result else { break }
            let program = LibBPFLog.captured(since: mark).lazy.compactMap { TraceSession.failedProgram(in: $0.text) }.first
            guard let program, attempts < 12,
                  let candidate = plan.choices.compactMap(\.chosen).first(where: { $0.programs.contains { $0.name == program } })
            else {
                libbpfMessages = LibBPFLog.captured(since: logMark)
                throw failure.error
            }
            let reason = "refused at load (\(failure.errnoText))"
            if candidate.kind == .fentry && failure.errnoValue == EPERM {
                planner.refusedKinds[.fentry] = "fentry/fexit " + reason
            } else {
                planner.failedPrograms[program] = "program \(program) " + reason
            }
            plan = planner.plan()
        }
        if options.programStatistics { enableProgramStatistics() }
        attachAll()
        try openRingBuffer()
        libbpfMessages = LibBPFLog.captured(since: logMark)
        // Refusals that made the plan fall back are explained in the plan; the rest are news.
        unexplainedWarnings = LibBPFLog.captured(since: lastLoadMark).filter(\.isWarning)
    }

    deinit { close() }

    /// Detaches every probe and frees the object. Safe to call twice.
    public func close() {
        if let ringBuffer { ring_buffer__free(ringBuffer) }
        ringBuffer = nil
        for link in links { bpf_link__destroy(link) }
        links = []
        if statisticsFD >= 0 { Glibc.close(statisticsFD) }
        statisticsFD = -1
        if let object { bpf_object__close(object) }
        object = nil
    }

    // MARK: - events

    /// Waits up to `timeoutMs` for the kernel to wake the reader (it does so only once the ring is
    /// an eighth full), then passes every record in the ring to `handler`.
    /// Returns the number of events handled (negative: a libbpf error other than EINTR).
    @discardableResult
    public func poll(timeoutMs: Int32, handler: (UnsafePointer<TraceEvent>) -> Void) -> Int {
        guard let ringBuffer else { return 0 }
        return withoutActuallyEscaping(handler) { handler in
            sink.handler = handler
            defer { sink.handler = nil }
            let woken = ring_buffer__poll(ringBuffer, timeoutMs)
            if woken < 0 && woken != -EINTR { return Int(woken) }
            // Records submitted without a wakeup are drained here.
            let drained = ring_buffer__consume(ringBuffer)
            if drained < 0 { return Int(drained) }
            return Int(max(woken, 0)) + Int(drained)
        }
    }

    // MARK: - loading

    private struct LoadFailure: Error {
        var error: KernelError
        var errnoValue: Int32
        var errnoText: String { String(cString: strerror(errnoValue)) }
    }

    private func loadObject(bytes: [UInt8]) -> Result<OpaquePointer, LoadFailure> {
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        let name = strdup(TraceSession.objectName)
        defer { free(name) }
        opts.object_name = UnsafePointer(name)
        guard let obj = bytes.withUnsafeBytes({ bpf_object__open_mem($0.baseAddress, $0.count, &opts) }) else {
            let code = errno
            return .failure(LoadFailure(error: KernelError.libbpf("cannot open the embedded BPF object", code: code), errnoValue: code))
        }
        var wanted: [String: ProbeCandidate] = [:]
        for choice in plan.choices {
            guard let candidate = choice.chosen else { continue }
            for program in candidate.programs { wanted[program.name] = candidate }
        }
        var program = bpf_object__next_program(obj, nil)
        while let current = program {
            let programName = String(cString: bpf_program__name(current))
            if let candidate = wanted[programName] {
                bpf_program__set_autoload(current, true)
                if candidate.kind == .fentry {
                    bpf_program__set_attach_target(current, 0, candidate.target)
                }
            } else {
                bpf_program__set_autoload(current, false)
            }
            program = bpf_object__next_program(obj, current)
        }
        let ringBytes = options.streamEvents ? max(options.ringBufferBytes, 1 << 16) : 1 << 16
        if let events = bpf_object__find_map_by_name(obj, "events") {
            bpf_map__set_max_entries(events, ringBytes)
        }
        do {
            var globals = RodataWriter(object: obj)
            try globals.set("target_dev", deviceNumber)
            try globals.set("target_tgid", options.processID ?? 0)
            try globals.set("target_tid", options.threadID ?? 0)
            try globals.set("emit_events", UInt8(options.streamEvents ? 1 : 0))
            try globals.set("hrtimer_wakeup_addr", facts.symbols["hrtimer_wakeup"] ?? 0)
            try globals.set("queue_flag_stats_bit", facts.queueFlagStatsBit)
            // `poll` drains the ring at every call; the kernel wakes it early only at an eighth full.
            try globals.set("wakeup_bytes", UInt64(ringBytes / 8))
            try globals.set("maker_hooked", UInt8(plan.choice(.requestMaker)?.chosen != nil ? 1 : 0))
            try globals.set("sleep_any_task", UInt8(options.classifyEverySleeper ? 1 : 0))
            try globals.set("sleep_any_task_below_ns", options.sleepersBelowNs)
            guard options.threadSlots > 0, options.threadSlots <= UInt32(DPT_THREAD_SLOTS),
                  options.threadSlots & (options.threadSlots - 1) == 0 else {
                throw KernelError("threadSlots must be a power of two from 1 to \(DPT_THREAD_SLOTS), not \(options.threadSlots)")
            }
            try globals.set("thread_slot_mask", options.threadSlots - 1)
            try globals.set("thread_slot_stale_jiffies", options.threadSlotStaleJiffies)
            try globals.set("resolve_on_poller_path", UInt8(plan.resolvesOnPollersPath ? 1 : 0))
            let callers = facts.hybridLoopRanges.prefix(Int(DPT_ARM_CALLER_RANGES))
            let unused = Int(DPT_ARM_CALLER_RANGES) - callers.count
            try globals.set("arm_caller_start", elements: callers.map(\.range.lowerBound) + Array(repeating: 0, count: unused))
            try globals.set("arm_caller_end", elements: callers.map(\.range.upperBound) + Array(repeating: 0, count: unused))
            try globals.set("arm_function_addr", facts.symbols["hrtimer_sleeper_start_expires"] ?? 0)
            try globals.set("count_diagnostics", UInt8(options.diagnosticCounts ? 1 : 0))
            let readsModes = plan.choices.contains { ($0.hook == .requestStart || $0.hook == .dpasMode) && $0.chosen != nil }
            try globals.set("dpas_observe_at_arm", UInt8(readsModes ? 1 : 0))
            // DPAS: zero addresses keep every DPAS read dead code (stock kernels).
            let dpas = DPASState.addresses(facts)
            try globals.set("dpas_switch_addr", dpas?.irqPollSwitch ?? 0)
            try globals.set("dpas_percpu_offset_addr", dpas?.perCPUOffset ?? 0)
            try globals.set("dpas_nr_cpus", UInt32(cpuCount))
            try globals.set("dpas_pas_events", UInt8(options.pasStateEvents ? 1 : 0))
        } catch {
            bpf_object__close(obj)
            return .failure(LoadFailure(error: error as? KernelError ?? KernelError("\(error)"), errnoValue: EINVAL))
        }
        let err = bpf_object__load(obj)
        if err != 0 {
            bpf_object__close(obj)
            return .failure(LoadFailure(
                error: KernelError.libbpf("the kernel refused the BPF programs", code: err,
                                          hint: "run with --verbose to see the verifier's reason"),
                errnoValue: abs(err)))
        }
        return .success(obj)
    }

    /// Attaches every chosen candidate; a failure marks that hook failed and detaches its other half.
    private func attachAll() {
        guard let object else { return }
        for index in plan.choices.indices {
            guard let candidate = plan.choices[index].chosen else { continue }
            var made: [OpaquePointer] = []
            var failure: String?
            for program in candidate.programs {
                guard let prog = bpf_object__find_program_by_name(object, program.name) else {
                    failure = "program \(program.name) missing from the object"
                    break
                }
                let link: OpaquePointer?
                switch candidate.kind {
                case .kprobe: link = bpf_program__attach_kprobe(prog, program.isReturn, candidate.target)
                default: link = bpf_program__attach(prog)
                }
                guard let link, libbpf_get_error(UnsafeRawPointer(link)) == 0 else {
                    let code = errno
                    failure = "attach \(candidate.attachType) \(candidate.target) failed: \(String(cString: strerror(code)))"
                    break
                }
                made.append(link)
            }
            if let failure {
                made.forEach { bpf_link__destroy($0) }
                plan.choices[index].status = .failed
                plan.choices[index].attachError = failure
            } else {
                links += made
                plan.choices[index].status = .attached
            }
        }
    }

    private func openRingBuffer() throws {
        guard let object, let map = bpf_object__find_map_by_name(object, "events") else { return }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        ringBuffer = ring_buffer__new(bpf_map__fd(map), { context, data, size in
            guard let context, let data, size >= MemoryLayout<TraceEvent>.size else { return 0 }
            let sink = Unmanaged<EventSink>.fromOpaque(context).takeUnretainedValue()
            sink.handler?(data.assumingMemoryBound(to: TraceEvent.self))
            return 0
        }, context, nil)
        if ringBuffer == nil {
            throw KernelError.libbpf("cannot open the BPF ring buffer", code: errno)
        }
    }

    /// Loads only `programs` of the embedded object (no attach) and unloads them again: proves they
    /// pass this kernel's verifier even where their hook cannot be attached (kprobes off).
    /// `btfPath`: BTF (raw or ELF) to relocate against instead of the running kernel's; `configure`
    /// sets read-only globals before the load. Returns nil on success, else libbpf's warnings and
    /// the end of the verifier's log (where its reason is).
    static func verifierCheck(programs: [String], btfPath: String? = nil,
                              configure: (inout RodataWriter) throws -> Void = { _ in }) -> String? {
        LibBPFLog.install()
        guard let bytes = BPFObjects.object(named: objectName) else { return "object \(objectName) not embedded" }
        let mark = LibBPFLog.mark
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        let path = btfPath.map { strdup($0) } ?? nil
        defer { free(path) }
        opts.btf_custom_path = UnsafePointer(path)
        let logSize = 4 << 20
        let verifierLog = UnsafeMutablePointer<CChar>.allocate(capacity: logSize)
        verifierLog.initialize(repeating: 0, count: logSize)
        defer { verifierLog.deallocate() }
        opts.kernel_log_buf = verifierLog
        opts.kernel_log_size = numericCast(logSize)
        opts.kernel_log_level = 1
        guard let obj = bytes.withUnsafeBytes({ bpf_object__open_mem($0.baseAddress, $0.count, &opts) }) else {
            return "cannot open the object: \(String(cString: strerror(errno)))"
        }
        defer { bpf_object__close(obj) }
        var program = bpf_object__next_program(obj, nil)
        var found = Set<String>()
        while let current = program {
            let name = String(cString: bpf_program__name(current))
            bpf_program__set_autoload(current, programs.contains(name))
            if programs.contains(name) { found.insert(name) }
            program = bpf_object__next_program(obj, current)
        }
        if let missing = programs.first(where: { !found.contains($0) }) { return "no program \(missing) in the object" }
        do {
            var globals = RodataWriter(object: obj)
            try configure(&globals)
        } catch {
            return "\(error)"
        }
        let err = bpf_object__load(obj)
        guard err != 0 else { return nil }
        let libbpf = LibBPFLog.captured(since: mark).filter(\.isWarning).map(\.text).suffix(3).joined(separator: " | ")
        let verifier = String(cString: verifierLog).split(separator: "\n").suffix(6).joined(separator: " | ")
        return "\(String(cString: strerror(abs(err)))): \(libbpf) | verifier: \(verifier)"
    }

    /// "libbpf: prog 'rq_start_fentry': BPF program load failed: ..." → "rq_start_fentry".
    static func failedProgram(in line: String) -> String? {
        guard line.contains("failed"), let open = line.range(of: "prog '"),
              let close = line[open.upperBound...].firstIndex(of: "'") else { return nil }
        return String(line[open.upperBound..<close])
    }

    /// "nvme0n1" → dev_t in the kernel's encoding (major << 20 | minor), from /sys/block/NAME/dev.
    public static func deviceNumber(of device: String) throws -> UInt32 {
        let name = device.hasPrefix("/dev/") ? String(device.dropFirst(5)) : device
        let path = "/sys/class/block/\(name)/dev"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KernelError("no block device \(name) (\(path) unreadable): list devices with lsblk")
        }
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else {
            throw KernelError("cannot parse \(path): \(text)")
        }
        return major << 20 | minor
    }

    /// What one attached program has cost so far, as the kernel counts it.
    public struct ProgramCost: Sendable, Equatable {
        public var hook: String
        public var program: String
        public var runs: UInt64
        public var runTimeNs: UInt64
        /// Runs the kernel skipped (another BPF program was running on that CPU).
        public var skipped: UInt64

        /// Mean run time per run in ns; nil before the first run.
        public var meanNs: Double? { runs == 0 ? nil : Double(runTimeNs) / Double(runs) }
    }

    private func enableProgramStatistics() {
        let fd = bpf_enable_stats(BPF_STATS_RUN_TIME)
        if fd >= 0 {
            statisticsFD = fd
        } else {
            let code = -fd
            programStatisticsError = code == EINVAL
                ? "this kernel cannot count BPF program run time (BPF_ENABLE_STATS needs Linux 5.8)"
                : "enabling BPF run-time statistics failed: \(String(cString: strerror(code)))"
        }
    }

    /// Runs and run time of every attached program since the session opened, in plan order; empty
    /// unless `Options.programStatistics` was set and the kernel agreed (see `programStatisticsError`).
    public func programCosts() -> [ProgramCost] {
        guard statisticsFD >= 0 else { return [] }
        return attachedProgramInfo().map {
            ProgramCost(hook: $0.hook, program: $0.program, runs: $0.info.run_cnt,
                        runTimeNs: $0.info.run_time_ns, skipped: $0.info.recursion_misses)
        }
    }

    /// Runs of one attached program that the kernel skipped.
    public struct SkippedRuns: Sendable, Equatable {
        public var hook: String
        public var program: String
        public var count: UInt64
    }

    /// Runs the kernel skipped since the session opened, per attached program (only those with
    /// any). A kprobe or tracepoint program does not run while another BPF program is running on
    /// the same CPU, e.g. when an hrtimer interrupt lands during the sched_switch program: each
    /// skipped run is an event this session never saw. Always counted (bpf_prog_info, Linux ≥ 5.12).
    public func skippedRuns() -> [SkippedRuns] {
        attachedProgramInfo().compactMap {
            $0.info.recursion_misses == 0 ? nil : SkippedRuns(hook: $0.hook, program: $0.program, count: $0.info.recursion_misses)
        }
    }

    /// The kernel's information on every attached program, in plan order.
    private func attachedProgramInfo() -> [(hook: String, program: String, info: bpf_prog_info)] {
        guard let object else { return [] }
        var result: [(hook: String, program: String, info: bpf_prog_info)] = []
        for choice in plan.choices where choice.status == .attached {
            for program in choice.chosen?.programs ?? [] {
                guard let prog = bpf_object__find_program_by_name(object, program.name) else { continue }
                var info = bpf_prog_info()
                var length = UInt32(MemoryLayout<bpf_prog_info>.size)
                guard bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &length) == 0 else { continue }
                result.append((choice.hook.rawValue, program.name, info))
            }
        }
        return result
    }

    /// Kernel IDs of the links this session holds (to check later that none is left behind).
    public var linkIDs: [UInt32] {
        links.compactMap { link in
            var info = bpf_link_info()
            var length = UInt32(MemoryLayout<bpf_link_info>.size)
            return bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &length) == 0 ? info.id : nil
        }
    }

    /// Kernel IDs of the loaded programs.
    public var programIDs: [UInt32] {
        guard let object else { return [] }
        var ids: [UInt32] = []
        var program = bpf_object__next_program(object, nil)
        while let current = program {
            let fd = bpf_program__fd(current)
            var info = bpf_prog_info()
            var length = UInt32(MemoryLayout<bpf_prog_info>.size)
            if fd >= 0, bpf_obj_get_info_by_fd(fd, &info, &length) == 0 { ids.append(info.id) }
            program = bpf_object__next_program(object, current)
        }
        return ids
    }

    /// Whether a link / program with this ID still exists in the kernel.
    public static func linkExists(id: UInt32) -> Bool {
        let fd = bpf_link_get_fd_by_id(id)
        if fd >= 0 { Glibc.close(fd) }
        return fd >= 0
    }

    public static func programExists(id: UInt32) -> Bool {
        let fd = bpf_prog_get_fd_by_id(id)
        if fd >= 0 { Glibc.close(fd) }
        return fd >= 0
    }

    /// File descriptor of a map of the loaded object.
    func mapFD(_ name: String) -> Int32? {
        guard let object, let map = bpf_object__find_map_by_name(object, name) else { return nil }
        return bpf_map__fd(map)
    }
}

/// Where the ring-buffer callback delivers (a class so the C callback can reach it through a pointer).
final class EventSink {
    var handler: ((UnsafePointer<TraceEvent>) -> Void)?
}

/// Writes `const volatile` globals of the object before load, by name, through its BTF.
struct RodataWriter {
    let object: OpaquePointer
    private var data: UnsafeMutableRawPointer?
    private var size = 0
    private var offsets: [String: (offset: Int, size: Int)] = [:]

    init(object: OpaquePointer) {
        self.object = object
        var map = bpf_object__next_map(object, nil)
        while let current = map {
            if String(cString: bpf_map__name(current)).hasSuffix(".rodata") {
                data = UnsafeMutableRawPointer(mutating: bpf_map__initial_value(current, &size))
                break
            }
            map = bpf_object__next_map(object, current)
        }
        guard let btf = bpf_object__btf(object) else { return }
        let id = btf__find_by_name_kind(btf, ".rodata", BTFKind.datasec.rawValue)
        guard id > 0, let section = btf__type_by_id(btf, UInt32(id)), let vars = btf_var_secinfos(section) else { return }
        for index in 0..<Int(btf_vlen(section)) {
            let info = vars[index]
            guard let variable = btf__type_by_id(btf, info.type),
                  let name = btf__name_by_offset(btf, variable.pointee.name_off) else { continue }
            offsets[String(cString: name)] = (Int(info.offset), Int(info.size))
        }
    }

    mutating func set<T: FixedWidthInteger>(_ name: String, _ value: T) throws {
        guard let data, let slot = offsets[name], slot.size == MemoryLayout<T>.size, slot.offset + slot.size <= size else {
            throw KernelError("BPF object has no \(MemoryLayout<T>.size)-byte global \(name): rebuild dpas-trace")
        }
        (data + slot.offset).storeBytes(of: value.littleEndian, as: T.self)
    }

    /// An array global, every element given.
    mutating func set<T: FixedWidthInteger>(_ name: String, elements: [T]) throws {
        let bytes = elements.count * MemoryLayout<T>.size
        guard let data, let slot = offsets[name], slot.size == bytes, slot.offset + slot.size <= size else {
            throw KernelError("BPF object has no \(elements.count)-element global \(name): rebuild dpas-trace")
        }
        for (index, value) in elements.enumerated() {
            (data + slot.offset + index * MemoryLayout<T>.size).storeBytes(of: value.littleEndian, as: T.self)
        }
    }
}
