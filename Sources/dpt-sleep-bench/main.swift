import ArgumentParser
import DPASTraceKernel
import Foundation

/// What sleep-ratio's probes add to one hrtimer sleep, measured where the CPU is not emulated.
///
/// The sleep half of hybrid polling is an hrtimer_wakeup sleeper: armed, the task switched out,
/// the timer fired, the task switched back in. A nanosleep takes the same path through the same
/// tracepoints (timer start, expiry and cancel, context switch), which fire for every timer and
/// switch on the machine and are what sleep-ratio runs on where the arm has no function hook. Timing
/// many short nanosleeps untraced and traced — in the mode that classifies every sleeper of this
/// process — gives the added time per sleep on this CPU. Kernels without hybrid polling (6.4+) can
/// run it; in the QEMU lab it gives the same number under TCG, and the ratio of the two is how much
/// the emulator inflates the tracer's work.
@main
struct SleepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpt-sleep-bench",
        abstract: "Time short nanosleeps untraced and under sleep-ratio's probes (root): the tracing cost per sleep.",
        discussion: """
            Modes run in a random order per round: untraced, tp_btf (timer and scheduler hooks on raw \
            tracepoints) and tracepoint (the same on classic tracepoints). Prints one TSV line per run on \
            stdout (round, mode, sleeps, ns per sleep, attempts the tracer resolved), then a summary on \
            stderr: median ns per sleep per mode and the median of per-round differences to untraced. \
            With --probe-costs, one more run per traced mode has the kernel count each program's runs \
            and run time (that costs two clock reads per run, so those runs are not timed).
            """
    )

    @Option(help: "Rounds (each runs every mode once, in a random order); 0 with --probe-costs: only the costs.")
    var rounds = 7

    @Option(help: "Sleeps per run.")
    var sleeps = 20_000

    @Option(help: "Requested sleep in µs (timer slack is set to 1 ns, so the sleep is close to it).")
    var sleepMicroseconds = 10

    @Option(help: "Modes to run (comma-separated: untraced, tp_btf, tracepoint).")
    var modes = "untraced,tp_btf,tracepoint"

    @Flag(help: "Also count each program's runs and mean run time (one extra run per traced mode).")
    var probeCosts = false

    enum Mode: String, CaseIterable {
        case untraced, tpBTF = "tp_btf", tracepoint
    }

    var selectedModes: [Mode] { modes.split(separator: ",").compactMap { Mode(rawValue: String($0)) } }

    func validate() throws {
        let names = modes.split(separator: ",").map(String.init)
        if let unknown = names.first(where: { Mode(rawValue: $0) == nil }) {
            throw ValidationError("unknown mode '\(unknown)' (modes: untraced, tp_btf, tracepoint)")
        }
        guard names.contains("untraced") else { throw ValidationError("--modes needs untraced, the baseline") }
        guard rounds > 0 || (rounds == 0 && probeCosts), sleeps > 0, sleepMicroseconds > 0 else {
            throw ValidationError("--sleeps and --sleep-microseconds want numbers > 0, --rounds too (or 0 with --probe-costs)")
        }
    }

    func run() throws {
        // The sleeps run on the main thread, whose task is this process: its slack is this file.
        try "1".write(toFile: "/proc/self/timerslack_ns", atomically: false, encoding: .utf8)
        let facts = KernelFacts.gather(mountTracefs: true)
        log("kernel \(facts.release); \(sleeps) sleeps of \(sleepMicroseconds) µs per run, \(rounds) rounds")
        var results: [(round: Int, mode: Mode, nsPerSleep: Double)] = []
        emit("round\tmode\tsleeps\tns_per_sleep\tresolved")
        for round in 1..<(rounds + 1) {
            for mode in selectedModes.shuffled() {
                let (nsPerSleep, resolved) = try measure(mode, statistics: false)
                results.append((round, mode, nsPerSleep))
                emit("\(round)\t\(mode.rawValue)\t\(sleeps)\t\(String(format: "%.0f", nsPerSleep))\t\(resolved.map(String.init) ?? "-")")
            }
        }
        if !results.isEmpty { summarize(results) }
        if probeCosts {
            for mode in selectedModes where mode != .untraced { _ = try measure(mode, statistics: true) }
        }
    }

    /// One run: ns per sleep, and how many sleeps the tracer resolved (nil untraced).
    func measure(_ mode: Mode, statistics: Bool) throws -> (Double, UInt64?) {
        var session: TraceSession?
        if mode != .untraced {
            var options = TraceSession.Options(processID: UInt32(getpid()), forceSleepTracepoints: true, classifyEverySleeper: true)
            options.hooks = Hook.forSleepRatio(pas: false)
            options.programStatistics = statistics
            // The arm's function hook would take the attempt's start from hrtimer_start, but a
            // nanosleep's arm is inlined on 5.10 (the lab): timer-start tracepoint, as where no
            // function hook exists.
            options.avoidedAttachTypes = mode == .tracepoint ? [.fentry, .kprobe, .tpBTF] : [.fentry, .kprobe]
            let opened = try TraceSession(options: options)
            for hook in [Hook.sleeperArm, .timerExpire, .contextSwitch] where opened.plan.choice(hook)?.status != .attached {
                throw BenchError("\(hook.rawValue) not attached (\(opened.plan.choice(hook)?.attachError ?? "unavailable")): nothing to measure")
            }
            let wanted: ProbeCandidate.Kind = mode == .tpBTF ? .tpBTF : .tracepoint
            if let other = opened.plan.choice(.contextSwitch)?.chosen?.kind, other != wanted {
                throw BenchError("mode \(mode.rawValue): the planner chose \(other.rawValue) on this kernel")
            }
            session = opened
        }
        defer { session?.close() }
        let before = try session?.snapshot()
        var request = timespec(tv_sec: 0, tv_nsec: sleepMicroseconds * 1000)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<sleeps { clock_nanosleep(CLOCK_MONOTONIC, 0, &request, nil) }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        var resolved: UInt64?
        if let session, let before {
            let delta = try session.snapshot().since(before)
            resolved = delta.sleepsResolved
            let slept = delta.sleepLog2.values.flatMap { $0 }.reduce(0) { $0 + $1.slept }
            log("  \(mode.rawValue): \(delta.sleepsResolved) resolved, \(slept) slept")
            if statistics {
                log("program costs, \(mode.rawValue) (\(sleeps) sleeps; runs per sleep include every other timer and switch on the machine):")
                let costs = session.programCosts()
                let total = costs.reduce(0) { $0 + $1.runTimeNs }
                log("  all programs: \(String(format: "%.0f", Double(total) / Double(sleeps))) ns of BPF run time per sleep")
                for cost in costs {
                    let mean = cost.meanNs.map { String(format: "%.0f ns", $0) } ?? "-"
                    log("  \(cost.program)\t\(cost.runs) runs\t\(String(format: "%.2f", Double(cost.runs) / Double(sleeps))) per sleep\tmean \(mean)\tskipped \(cost.skipped)")
                }
            }
        }
        return (Double(elapsed) / Double(sleeps), resolved)
    }

    func summarize(_ results: [(round: Int, mode: Mode, nsPerSleep: Double)]) {
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let baseline = Dictionary(uniqueKeysWithValues: results.filter { $0.mode == .untraced }.map { ($0.round, $0.nsPerSleep) })
        log("mode\tmedian ns per sleep (min–max)\tadded ns per sleep (median of per-round differences)")
        for mode in selectedModes {
            let values = results.filter { $0.mode == mode }.map(\.nsPerSleep)
            let added = results.filter { $0.mode == mode }.compactMap { run in baseline[run.round].map { run.nsPerSleep - $0 } }
            let spread = String(format: "%.0f (%.0f–%.0f)", median(values), values.min() ?? 0, values.max() ?? 0)
            log("\(mode.rawValue)\t\(spread)\t\(mode == .untraced ? "-" : String(format: "%+.0f", median(added)))")
        }
    }

    /// Unbuffered, so a long run shows its lines as they come.
    func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// A run that cannot measure what it was asked to (not a usage error: no usage text after it).
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
