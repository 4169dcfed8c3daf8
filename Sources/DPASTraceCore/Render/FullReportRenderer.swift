extension TextRenderer {
    /// `report DUMP`: where the events came from, then the three analyses, then lost events and warnings once.
    public static func full(_ report: FullReport) -> String {
        var lines: [String] = []
        if let source = report.source {
            var line = "Trace: \(source.path ?? "live") — kernel \(source.kernelRelease), \(Format.count(source.events)) events"
            if let first = source.firstTsNs, let last = source.lastTsNs, last > first {
                line += " over \(Format.duration(last - first))"
            }
            if let device = source.device { line += ", device \(device)" }
            if !source.complete { line += " (incomplete)" }
            lines.append(line)
            if let reason = source.reason { lines.append("Recording ended: \(reason)") }
            lines += source.notes.map { "Note: \($0)" }
            lines.append("")
        }
        // Each section without its own completeness lines: they are printed once at the end.
        lines += dropCompleteness(sleepRatioLines(report.sleepRatio), report.sleepRatio.lostEvents, report.sleepRatio.warnings)
        lines.append("")
        lines += dropCompleteness(bucketLines(report.buckets), report.buckets.lostEvents, report.buckets.warnings)
        lines.append("")
        lines += dropCompleteness(modeLines(report.modes), report.modes.lostEvents, report.modes.warnings)
        lines.append("")
        lines += completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
        return text(lines)
    }

    private static func dropCompleteness(_ lines: [String], _ lost: LostEvents, _ warnings: [String]) -> [String] {
        Array(lines.dropLast(completenessLines(lostEvents: lost, warnings: warnings).count))
    }
}
