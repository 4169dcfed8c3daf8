import ArgumentParser
import DPASTraceCore
import Foundation

/// `dpas-trace report DUMP`: the three analyses of a recorded dump.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Sleep ratio, buckets and DPAS modes of a dump written by `dpas-trace record`.",
        discussion: """
        Exit status: 0 ok (also for a damaged dump: everything before the damage is analysed and the \
        damage is reported on stderr); 1 when the dump cannot be read.
        """
    )

    @Argument(help: "The dump file.")
    var dump: String

    @Flag(name: .long, help: "Also split the sleep-ratio rows per CPU.")
    var perCPU = false

    @Flag(name: .long, help: "Print JSON (keys documented in docs/json.md).")
    var json = false

    @Flag(name: .long, help: "Write one self-contained HTML page (SVG charts, no network) instead of text.")
    var html = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the report to this file instead of stdout.", valueName: "FILE"))
    var output: String?

    func validate() throws {
        if html && json { throw ValidationError("choose one of --html and --json") }
    }

    func run() throws {
        if html { return try writeHTML() }
        let report = try Offline.analyse(path: dump, sleepPerCPU: perCPU).report
        try write(json ? try Offline.json(report) : TextRenderer.full(report))
    }

    private func writeHTML() throws {
        let page: String
        do {
            let rendered = try HTMLReport.render(dumpAt: dump)
            rendered.warnings.forEach(Offline.warn)
            page = rendered.html
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
        try write(page)
        if let output { Offline.note("wrote \(output)") }
    }

    private func write(_ text: String) throws {
        guard let output else { return Offline.emit(text) }
        do {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } catch {
            throw Offline.fail("cannot write \(output): \(error.localizedDescription)")
        }
    }
}
