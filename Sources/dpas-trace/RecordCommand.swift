import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// `dpas-trace record -o DUMP`: stream every event through the BPF ring buffer into a crash-safe dump.
/// `dpas-trace report DUMP` then gives the numbers the live commands give for the same period.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record every request, hybrid sleep and lost-event count into a dump file (read it with report / dump).",
        discussion: "Ends at --duration or on Ctrl-C / SIGTERM; the dump stays readable up to its last complete chunk even if the recorder is killed."
    )

    @Option(name: [.short, .long], help: "Dump file to write.")
    var output: String

    @OptionGroup var live: LiveOptions

    @Option(name: .long, help: "Ring-buffer size in MiB (power of two).")
    var ringMib: UInt32 = 16

    func validate() throws {
        guard ringMib > 0, ringMib & (ringMib - 1) == 0, ringMib <= 1024 else {
            throw ValidationError("--ring-mib must be a power of two between 1 and 1024")
        }
    }

    func run() throws {
        let session = try Live.open(live, streamEvents: true)
        defer { session.close() }
        let header = DumpHeader(
            kernelRelease: session.facts.release, hostname: ProcessInfo.processInfo.hostName,
            createdRealtimeNs: DumpWriter.realtimeNow(), bootTimeOffsetNs: Clocks.realtimeMinusMonotonicNs(),
            command: CommandLine.arguments, device: live.device, probePlan: session.plan.entries,
            settings: SystemSnapshot.collect(devices: live.device.map { [$0] }))
        let writer: DumpWriter
        do {
            writer = try DumpWriter(path: output, header: header)
        } catch {
            throw Offline.fail("\(error)")
        }
        if !live.verbose { Live.stderr("dpas-trace: recording to \(output) (Ctrl-C to stop)") }

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
            try writer.finish(reason: reason)
            let lost = final.lostEvents.total
            Live.stderr("dpas-trace: wrote \(writer.eventsWritten) events to \(output) (\(reason)); lost events: \(lost)")
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
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
