import ArgumentParser
import DPASTraceCore
import DPASTraceSynthetic
import Foundation

/// Writes a synthetic dump with the real DumpWriter: input for the replay benchmark, the fuzzer's
/// seed corpus and tests. Its header says "synthetic" so it can never pass for a recording.
struct SyntheticDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpt-synth",
        abstract: "Write a synthetic dpas-trace dump (benchmarks, fuzzing seeds, tests)."
    )

    @Option(name: .shortAndLong, help: "Output dump file.")
    var output: String

    @Option(help: "Number of events (or use --bytes).")
    var events: UInt64?

    @Option(help: "Approximate dump size, e.g. 1G (each event is 128 bytes).")
    var bytes: String?

    @Option(help: "CPUs to spread the I/O over.")
    var cpus: UInt32 = 2

    @Option(help: "Seed of the deterministic generator.")
    var seed: UInt64 = 1

    @Option(help: "Events per chunk (the recorder's default: 4096, i.e. 512 KiB chunks).")
    var eventsPerChunk = 4096

    @Flag(help: "Leave stats_sectors at 0 (QUEUE_FLAG_STATS off: every request gets bucket -1).")
    var noQueueStats = false

    func validate() throws {
        guard eventsPerChunk > 0 && eventsPerChunk * MemoryLayout<TraceEvent>.stride <= DumpFormat.maxPayloadLength else {
            throw ValidationError("--events-per-chunk must be between 1 and \(DumpFormat.maxPayloadLength / MemoryLayout<TraceEvent>.stride)")
        }
    }

    func run() throws {
        var configuration = SyntheticWorkload.Configuration()
        configuration.cpus = max(1, cpus)
        configuration.seed = seed
        configuration.queueStats = !noQueueStats
        if let bytes {
            guard let size = parseByteSize(bytes) else { throw ValidationError("--bytes: cannot read '\(bytes)' (e.g. 64M, 1G)") }
            configuration.events = size / UInt64(MemoryLayout<TraceEvent>.stride)
        } else {
            configuration.events = events ?? 100_000
        }
        let header = DumpHeader(kernelRelease: "synthetic", hostname: "dpt-synth",
                                createdRealtimeNs: UInt64(Date().timeIntervalSince1970 * 1e9), bootTimeOffsetNs: 0,
                                command: CommandLine.arguments, reason: "synthetic stream from dpt-synth (seed \(seed))")
        let writer = try DumpWriter(path: output, header: header, eventsPerChunk: eventsPerChunk)
        var batch: [TraceEvent] = []
        batch.reserveCapacity(4096)
        for event in SyntheticWorkload(configuration) {
            batch.append(event)
            if batch.count == 4096 {
                try batch.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
                batch.removeAll(keepingCapacity: true)
            }
        }
        try batch.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
        try writer.recordLost(perCPU: Array(repeating: 0, count: Int(configuration.cpus)))
        try writer.finish(reason: "end of synthetic stream")
        print("\(output): \(writer.eventsWritten) events, \(writer.bytesWritten) bytes")
    }
}

SyntheticDump.main()
