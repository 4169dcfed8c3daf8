import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// `dpas-trace record -o DUMP`: stream every event through the BPF ring buffer into a crash-safe dump.
/// `dpas-trace report DUMP` then gives the numbers the live commands give for the same period.
/// With `--ring SIZE` it is a flight recorder: only the most recent events are kept in memory and
/// written when asked (SIGUSR1), on exit, or when a `--trigger` condition fires.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record every request, hybrid sleep and lost-event count into a dump file (read it with report / dump).",
        discussion: """
            Ends at --duration or on Ctrl-C / SIGTERM; the dump stays readable up to its last complete chunk \
            even if the recorder is killed.

            Flight recorder (--ring SIZE, e.g. 64K, 1M, 256M): keeps only the most recent SIZE bytes of \
            events (128 bytes each) and writes them as a dump whose header says why and when: on SIGUSR1 \
            (recording goes on; the next dump is DUMP.1.dpt, then .2 …), at the end of the recording \
            (--duration, Ctrl-C, SIGTERM), and when a trigger fires (then it exits, or with --keep-going \
            re-arms after one second). Trigger grammar, one condition per --trigger, any one fires:
              mode=MODE              a CPU enters DPAS mode MODE (INT, CP, PAS, OL, EHP)
              bucket=B               a request gets poll-stats bucket B (-1 … 15)
              no-sleep-ratio>R[/N]   no-sleep share of the last N (1000) sleep attempts above R
                                     (0…1); >=, < and <= work too
              lost>N                 more than N events were lost in total
            See docs/flight-recorder.md.
            """
    )

    @Option(name: [.short, .long], help: "Dump file to write.")
    var output: String

    @OptionGroup var live: LiveOptions

    @Option(name: .long, help: "Kernel-to-dpas-trace BPF ring-buffer size in MiB (power of two).")
    var bufferMib: UInt32 = 16

    @Option(name: .long, help: ArgumentHelp("Flight recorder: keep only the most recent SIZE bytes of events (e.g. 64K, 1M).", valueName: "SIZE"))
    var ring: String?

    @Option(name: .long, help: ArgumentHelp("Flight recorder: write the dump when COND holds (mode=INT, bucket=-1, no-sleep-ratio>0.5[/N], lost>N); repeatable.", valueName: "COND"))
    var trigger: [String] = []

    @Flag(name: .long, help: "Flight recorder: after a trigger dump, keep recording and re-arm instead of exiting.")
    var keepGoing = false

    func validate() throws {
        guard bufferMib > 0, bufferMib & (bufferMib - 1) == 0, bufferMib <= 1024 else {
            throw ValidationError("--buffer-mib must be a power of two between 1 and 1024")
        }
        if let ring {
            guard (parseByteSize(ring) ?? 0) >= 128 else {
                throw ValidationError("--ring '\(ring)': give a size of at least one event (128 bytes), e.g. 64K, 1M or 256M")
            }
        } else if !trigger.isEmpty || keepGoing {
            throw ValidationError("--trigger and --keep-going need the flight recorder: add --ring SIZE")
        }
        for condition in trigger {
            do { _ = try Trigger(parsing: condition) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        // Before the (seconds-long) load: an early SIGUSR1 must ask for a dump, not kill the recorder.
        if ring != nil { DumpSignal.install() }
        let session = try Live.open(live.trace, streamEvents: true, ringBufferBytes: bufferMib << 20)
        defer { session.close() }
        let header = DumpHeader(
            kernelRelease: session.facts.release, hostname: ProcessInfo.processInfo.hostName,
            createdRealtimeNs: DumpWriter.realtimeNow(), bootTimeOffsetNs: Clocks.realtimeMinusMonotonicNs(),
            command: CommandLine.arguments, device: live.trace.device, probePlan: session.plan.entries,
            settings: SystemSnapshot.collect(devices: live.trace.device.map { [$0] }))
        if let ring, let bytes = parseByteSize(ring) {
            try runFlightRecorder(session, header: header, ringBytes: bytes)
        } else {
            try runFullRecording(session, header: header)
        }
    }

    private func runFullRecording(_ session: TraceSession, header: DumpHeader) throws {
        let writer: DumpWriter
        do {
            writer = try DumpWriter(path: output, header: header)
        } catch {
            throw Offline.fail("\(error)")
        }
        if !live.trace.verbose { Live.stderr("dpas-trace: recording to \(output) (Ctrl-C to stop)") }

        var reason = "unknown"
        do {
            reason = try Live.run(session, live, onEvents: { try writer.append(contentsOf: $0) },
                                  onTick: { try writer.recordLost(perCPU: session.snapshot().lostPerCPU) })
            // Drain what is still in the ring buffer, then the final lost counts.
            var rest: [TraceEvent] = []
            session.poll(timeoutMs: 0) { rest.append($0.pointee) }
            try rest.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
            let final = try session.snapshot()
            try writer.recordLost(perCPU: final.lostPerCPU)
            let warnings = final.probeWarnings
            for warning in warnings { try writer.note(warning) }
            try writer.finish(reason: reason)
            let lost = final.lostEvents.total
            Live.stderr("dpas-trace: wrote \(writer.eventsWritten) events to \(output) (\(reason)); lost events: \(lost)")
            for warning in warnings { Live.stderr("dpas-trace: warning: \(warning)") }
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
    }

    /// The flight recorder: events go into a bounded ring; dumps are written on SIGUSR1, on a
    /// trigger and at the end. Memory: the ring, one poll batch (≤ the BPF buffer) and the trigger window.
    private func runFlightRecorder(_ session: TraceSession, header: DumpHeader, ringBytes: UInt64) throws {
        let triggers = try trigger.map { try Trigger(parsing: $0) }
        var recorder = FlightRecorder(ringBytes: ringBytes, triggers: triggers)
        var lost = try session.snapshot().lostPerCPU
        var fired: (trigger: Trigger, why: String)?
        var endedByTrigger = false
        // With --keep-going a trigger re-arms one second after its dump: a condition that holds for
        // every request would otherwise write a dump per poll batch.
        var armedAgain = Date.distantPast
        Live.stderr("dpas-trace: flight recorder on, keeping the last \(recorder.ring.capacity) events "
            + "(SIGUSR1 writes \(output); Ctrl-C writes and stops)")

        func write(_ reason: String) throws {
            let final = try session.snapshot()
            lost = final.lostPerCPU
            let events = recorder.ring.count
            let warnings = final.probeWarnings
            let path = try recorder.writeDump(base: output, header: header, reason: reason, lostPerCPU: lost,
                                              notes: warnings)
            // Unbuffered: whoever waits for the dump (a script, a test) sees the line at once.
            Offline.emit("dpas-trace: wrote \(path): \(events) events (\(reason)); lost events: \(final.lostEvents.total)\n"
                + warnings.map { "dpas-trace: warning: \($0)\n" }.joined())
        }

        do {
            let ended = try Live.run(session, live, onEvents: { batch in
                let lostTotal = lost.reduce(0, &+)
                let armed = Date() >= armedAgain
                for event in batch {
                    if let hit = recorder.record(event, lostTotal: lostTotal), armed, fired == nil { fired = hit }
                }
            }, onTick: {
                lost = try session.snapshot().lostPerCPU
            }, onWake: {
                if DumpSignal.requested != 0 {
                    DumpSignal.requested = 0
                    try write("SIGUSR1 at \(Self.wallClock())")
                }
                guard let hit = fired else { return nil }
                fired = nil
                try write("trigger \(hit.trigger): \(hit.why) (written at \(Self.wallClock()))")
                guard keepGoing else {
                    endedByTrigger = true
                    return "trigger \(hit.trigger)"
                }
                armedAgain = Date().addingTimeInterval(1)
                return nil
            })
            if endedByTrigger { return }
            // Drain what is still in the BPF ring buffer, then write the end-of-recording dump.
            session.poll(timeoutMs: 0) { _ = recorder.record($0.pointee, lostTotal: 0) }
            try write("end of recording (\(ended)) at \(Self.wallClock())")
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
    }

    /// Wall-clock time for dump reasons, e.g. "2026-11-26T02:51:07.123Z".
    static func wallClock() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// SIGUSR1 asks the flight recorder for a dump: the handler sets a flag, and interrupts the poll
/// (no SA_RESTART) so the dump is written at once.
enum DumpSignal {
    nonisolated(unsafe) static var requested: sig_atomic_t = 0

    static func install() {
        requested = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in DumpSignal.requested = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR1, &action, nil)
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }
}

enum Clocks {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC in ns: maps bpf_ktime_get_ns() stamps to wall-clock time.
    static func realtimeMinusMonotonicNs() -> Int64 {
        var real = timespec(), mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_REALTIME, &real)
        return (Int64(real.tv_sec) - Int64(mono.tv_sec)) * 1_000_000_000 + (Int64(real.tv_nsec) - Int64(mono.tv_nsec))
    }
}
