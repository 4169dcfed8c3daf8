// Running the analyses over a dump file: the offline path every command shares.

/// The result of analysing a dump: the report plus what the reader saw.
public struct DumpAnalysis: Sendable {
    public var report: FullReport
    public var read: DumpReadResult
    /// One line each for people: damage, missing trailer, unknown chunks (also in `report.warnings`).
    public var warnings: [String]

    /// Reads `path` once, streaming, and analyses every event before any damage.
    /// Throws `DumpError` when the file is not a readable dump at all.
    public static func run(path: String, sleepPerCPU: Bool = false, timelineLimit: Int = 32) throws -> DumpAnalysis {
        let reader = try DumpReader(path: path)
        var analyses = TraceAnalyses(sleepPerCPU: sleepPerCPU, timelineLimit: timelineLimit)
        var firstTs = UInt64.max, lastTs = UInt64.min
        let read = try reader.forEachChunk { events in
            for event in events {
                analyses.add(event)
                firstTs = min(firstTs, event.ts_ns)
                lastTs = max(lastTs, event.ts_ns)
            }
        }
        let warnings = read.warnings(path: path) + probePlanWarnings(reader.header.probePlan)
        let completeness = TraceCompleteness(lostEvents: LostEvents(perCPU: read.lostPerCPU), warnings: warnings)
        let source = ReportSource(
            path: path, kernelRelease: reader.header.kernelRelease, toolVersion: reader.header.toolVersion,
            device: reader.header.device, events: read.events,
            firstTsNs: read.events == 0 ? nil : firstTs, lastTsNs: read.events == 0 ? nil : lastTs,
            complete: read.isComplete, reason: read.trailer?.reason ?? reader.header.reason)
        return DumpAnalysis(report: analyses.report(source: source, completeness: completeness), read: read, warnings: warnings)
    }

    /// Hooks the recording ran without: their analyses are partial, and a table must not look complete.
    public static func probePlanWarnings(_ plan: [ProbePlanEntry]) -> [String] {
        plan.filter { $0.status != .attached }.map { entry in
            var line = "\(entry.hook) was not traced (\(entry.target): \(entry.status.rawValue), \(entry.detail))"
            if let cost = entry.cost { line += ": \(cost)" }
            return line
        }
    }
}
