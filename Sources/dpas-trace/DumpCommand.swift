import ArgumentParser
import DPASTraceCore

/// `dpas-trace dump DUMP`: the recorded events themselves, one per line.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the events of a dump as text, JSON Lines or CSV.",
        discussion: """
        text: one readable line per event, then the lost-events line. json: JSON Lines, one object per \
        event (keys in docs/json.md). csv: a header row, then one row per event with every field. \
        For json and csv the lost-events line and any damage warning go to stderr, so stdout stays \
        machine-readable. Exit status: 0 ok (also for a damaged dump: every event before the damage is \
        printed); 1 when the dump cannot be read.
        """
    )

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, csv
    }

    @Argument(help: "The dump file.")
    var dump: String

    @Option(name: .long, help: "Output format: text, json (JSON Lines) or csv.")
    var format: OutputFormat = .text

    func run() throws {
        let reader: DumpReader
        do {
            reader = try DumpReader(path: dump)
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
        let out = StdoutBuffer()
        if format == .csv { out.line(TraceEvent.csvHeader) }
        let format = self.format
        let result: DumpReadResult
        do {
            result = try reader.forEachEvent { event in
                switch format {
                case .text: out.line(event.describe())
                case .json: out.line(event.jsonText)
                case .csv: out.line(event.csvRow)
                }
            }
        } catch let error as DumpError {
            out.flush()
            throw Offline.fail(error.description)
        }
        let lost = TextRenderer.completenessLines(lostEvents: LostEvents(perCPU: result.lostPerCPU), warnings: [])
        if format == .text { lost.forEach(out.line) }
        out.flush()
        if format != .text { lost.forEach(Offline.note) }
        Offline.warnAboutSource(result, path: dump)
    }
}
