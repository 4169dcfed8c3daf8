extension TextRenderer {
    /// The sleep-ratio table (the seed's d_init table), the sleep/oversleep distributions, verdicts.
    public static func sleepRatio(_ report: SleepRatioReport) -> String {
        text(sleepRatioLines(report))
    }

    static func sleepRatioLines(_ report: SleepRatioReport) -> [String] {
        let requestedTitle = report.rowKind == .exact ? "Requested (ns)" : "Requested range (ns)"
        var lines = ["Hybrid-poll sleeps by requested sleep"
            + (report.rowKind == .exact ? "" : " (more than \(SleepRatioAccumulator.maxExactValues) distinct values: log2 ranges)")]
        guard report.totals.attempts > 0 else {
            lines.append("No hybrid sleep attempts.")
            lines.append("Verdict: \(report.verdict)")
            return lines + completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
        }
        let showUnknown = report.totals.unknown > 0
        var main = TextTable([.init(requestedTitle), .init("Attempts"), .init("No sleep"), .init("Slept")]
            + (showUnknown ? [.init("Unknown")] : []) + [.init("Sleep ratio"), .init("Verdict", .left)])
        for row in report.rows {
            main.add([row.requestedLabel, Format.count(row.attempts), Format.count(row.noSleep), Format.count(row.slept)]
                + (showUnknown ? [Format.count(row.unknown)] : [])
                + [Format.percent(row.sleepRatio), row.verdictCode.label])
        }
        main.add(["all", Format.count(report.totals.attempts), Format.count(report.totals.noSleep), Format.count(report.totals.slept)]
            + (showUnknown ? [Format.count(report.totals.unknown)] : []) + [Format.percent(report.totals.sleepRatio), ""])
        lines += main.render()

        if report.totals.slept > 0 {
            lines.append("")
            lines.append("Attempts that slept: actual sleep and oversleep (actual − requested; woke early counts as 0)")
            var detail = TextTable([.init(requestedTitle), .init("Slept"),
                                    .init("Sleep mean"), .init("p50"), .init("p90"), .init("p99"), .init("max"),
                                    .init("Over mean"), .init("p50"), .init("p90"), .init("p99"), .init("max"),
                                    .init("Woke early")])
            for row in report.rows where row.slept > 0 {
                detail.add([row.requestedLabel, Format.count(row.slept)] + summaryCells(row.actualSleep)
                    + summaryCells(row.oversleep) + [Format.count(row.wokeEarly)])
            }
            lines += detail.render()
        }

        if let perCPU = report.perCPU {
            lines.append("")
            lines.append("Per CPU")
            var table = TextTable([.init("CPU"), .init(requestedTitle), .init("Attempts"), .init("No sleep"), .init("Slept"),
                                   .init("Sleep ratio"), .init("Sleep p50"), .init("Over p50"), .init("Verdict", .left)])
            for row in perCPU {
                table.add([String(row.cpu ?? 0), row.requestedLabel, Format.count(row.attempts), Format.count(row.noSleep),
                           Format.count(row.slept), Format.percent(row.sleepRatio), Format.duration(row.actualSleep.p50Ns),
                           Format.duration(row.oversleep.p50Ns), row.verdictCode.label])
            }
            lines += table.render()
        }

        lines.append("")
        var explained: [SleepVerdict] = []
        for row in report.rows where !explained.contains(row.verdictCode) { explained.append(row.verdictCode) }
        for verdict in explained.sorted(by: { $0.order < $1.order }) {
            lines.append("\(verdict.label): \(verdict.explanation)")
        }
        lines.append("Verdict: \(report.verdict)")
        return lines + completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
    }

    private static func summaryCells(_ summary: LatencySummary) -> [String] {
        [Format.duration(summary.meanNs), Format.duration(summary.p50Ns), Format.duration(summary.p90Ns),
         Format.duration(summary.p99Ns), Format.duration(summary.maxNs)]
    }
}

extension SleepVerdict {
    /// Legend order: the worst first.
    var order: Int {
        switch self {
        case .never: 0
        case .barely: 1
        case .sometimes: 2
        case .normal: 3
        case .unresolved: 4
        }
    }
}
