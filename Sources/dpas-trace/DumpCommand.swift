import ArgumentParser
import DPASTraceCore
import Foundation

/// `dpas-trace dump DUMP`: the recorded events themselves, one per line.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the events of a dump as text, JSON Lines or CSV, or export them for Perfetto.",
        discussion: """
        text: one readable line per event, then the lost-events line. json: JSON Lines, one object per \
        event (keys in docs/json.md). csv: a header row, then one row per event with every field. \
        For json and csv the lost-events line and any damage warning go to stderr, so stdout stays \
        machine-readable. perfetto: a Perfetto trace (protobuf TrackEvent) for ui.perfetto.dev, written \
        to the file given with -o: per CPU, hybrid sleeps as slices on a track per polling thread, the \
        DPAS mode as slices, avg QD, requested sleep and I/O latency as counters (nanosecond \
        timestamps, CLOCK_MONOTONIC). Exit status: 0 ok (also for a damaged dump: every event before the damage is \
        printed); 1 when the dump cannot be read.
        """
    )

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, csv, perfetto
    }

    @Argument(help: "The dump file.")
    var dump: String

    @Option(name: .long, help: "Output format: text, json (JSON Lines), csv or perfetto.")
    var format: OutputFormat = .text

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of stdout (required for perfetto).", valueName: "FILE"))
    var output: String?

    func validate() throws {
        if format == .perfetto && output == nil {
            throw ValidationError("--format perfetto writes a binary trace: name the file with -o, e.g. -o trace.pftrace")
        }
    }

    func run() throws {
        let reader: DumpReader
        do {
            reader = try DumpReader(path: dump)
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
        var fileDescriptor = STDOUT_FILENO
        if let output {
            fileDescriptor = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fileDescriptor >= 0 else {
                throw Offline.fail("cannot write \(output): \(String(cString: strerror(errno)))")
            }
        }
        defer { if fileDescriptor != STDOUT_FILENO { close(fileDescriptor) } }
        let out = OutputBuffer(fileDescriptor: fileDescriptor)
        if format == .csv { out.line(TraceEvent.csvHeader) }
        let format = self.format
        var perfetto = PerfettoExporter { out.bytes($0) }
        let result: DumpReadResult
        do {
            result = try reader.forEachEvent { event in
                switch format {
                case .text: out.line(event.describe())
                case .json: out.line(event.jsonText)
                case .csv: out.line(event.csvRow)
                case .perfetto: try perfetto.consume(event)
                }
            }
            if format == .perfetto { try perfetto.finish() }
        } catch let error as DumpError {
            out.flush()
            throw Offline.fail(error.description)
        }
        let lost = TextRenderer.completenessLines(lostEvents: LostEvents(perCPU: result.lostPerCPU), warnings: [])
        if format == .text { lost.forEach(out.line) }
        out.flush()
        if let error = out.writeError {
            throw Offline.fail("cannot write \(output ?? "stdout"): \(String(cString: strerror(error)))")
        }
        if format != .text { lost.forEach(Offline.note) }
        if format == .perfetto, let output {
            Offline.note("wrote \(output): \(perfetto.packetsWritten) Perfetto packets from \(result.events) events; open it at ui.perfetto.dev")
        }
        Offline.warnAboutSource(result, path: dump)
    }
}
