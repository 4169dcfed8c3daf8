// Running the analyses over a dump file: the offline path every command shares.

import Foundation

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
        var replay = Replay(analyses: TraceAnalyses(sleepPerCPU: sleepPerCPU, timelineLimit: timelineLimit))
        // For large dumps with two CPUs, reading overlaps analysing: the mode analysis runs on the
        // reading thread, the others on this one (same results: each sees every chunk in file order).
        let read: DumpReadResult
        if ChunkPipeline.worthwhile(path: path) {
            var modes = replay.analyses.modes
            read = try ChunkPipeline.run(reader, alongsideReading: { modes.add(contentsOf: $0) }) { replay.addExceptModes($0) }
            replay.analyses.modes = modes
        } else {
            read = try reader.forEachChunk { replay.add($0) }
        }
        let (analyses, firstTs, lastTs) = (replay.analyses, replay.firstTs, replay.lastTs)
        let warnings = read.warnings(path: path) + probePlanWarnings(reader.header.probePlan)
        let completeness = TraceCompleteness(lostEvents: LostEvents(perCPU: read.lostPerCPU), warnings: warnings)
        let source = ReportSource(
            path: path, kernelRelease: reader.header.kernelRelease, toolVersion: reader.header.toolVersion,
            device: reader.header.device, events: read.events,
            firstTsNs: read.events == 0 ? nil : firstTs, lastTsNs: read.events == 0 ? nil : lastTs,
            complete: read.isComplete, reason: read.trailer?.reason ?? reader.header.reason, notes: read.notes)
        return DumpAnalysis(report: analyses.report(source: source, completeness: completeness), read: read, warnings: warnings)
    }

    /// The state of one pass: a struct mutated through non-escaping closures, so the event loop has
    /// no boxed captures and no dynamic exclusivity checks.
    private struct Replay {
        var analyses: TraceAnalyses
        var firstTs = UInt64.max
        var lastTs = UInt64.min

        mutating func add(_ events: UnsafeBufferPointer<TraceEvent>) {
            for event in events {
                analyses.add(event)
                noteTime(event.ts_ns)
            }
        }

        /// Reads each event in place: only request starts and sleeps are passed on whole.
        mutating func addExceptModes(_ events: UnsafeBufferPointer<TraceEvent>) {
            guard let base = events.baseAddress else { return }
            for index in 0..<events.count {
                let event = base + index
                noteTime(event.pointee.ts_ns)
                switch event.pointee.kind {
                case EventKind.hybridSleep.rawValue: analyses.sleepRatio.add(event.pointee)
                case EventKind.rqStart.rawValue: analyses.buckets.add(event.pointee)
                default: break
                }
            }
        }

        @inline(__always)
        private mutating func noteTime(_ ts: UInt64) {
            firstTs = min(firstTs, ts)
            lastTs = max(lastTs, ts)
        }
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
