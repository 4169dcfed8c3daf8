extension TextRenderer {
    /// The bucket table with the bucket −1 headline and its cause.
    public static func buckets(_ report: BucketReport) -> String {
        text(bucketLines(report))
    }

    static func bucketLines(_ report: BucketReport) -> [String] {
        var lines = ["Poll-stats buckets (blk_mq_poll_stats_bkt; −1 = no bucket, DPAS skips the request)"]
        if !report.rows.isEmpty {
            var table = TextTable([.init("Bucket"), .init("Dir", .left), .init("Requests"), .init("Polled"),
                                   .init("stats_sectors=0"), .init("QUEUE_FLAG_STATS", .left), .init("Sizes (sectors × count)", .left),
                                   .init("Fix-1 bucket", .left), .init("Mismatch")])
            for row in report.rows {
                table.add([String(row.bucket), row.direction, Format.count(row.count), Format.count(row.polled),
                           Format.count(row.statsSectorsZero), flagState(set: row.queueStatsSet, of: row.count),
                           sizes(row), row.fix1Buckets.map { "\($0.bucket)" + (row.fix1Buckets.count > 1 ? " ×\(Format.count($0.count))" : "") }
                               .joined(separator: ", "),
                           Format.count(row.fix1Mismatch)])
            }
            let totals = report.totals
            table.add(["all", "", Format.count(totals.requests), Format.count(totals.polled), Format.count(totals.statsSectorsZero),
                       report.queueStats.rawValue, "", "", Format.count(totals.fix1Mismatch)])
            lines += table.render()
            lines.append("")
        }
        lines.append("Bucket −1: \(report.headline)")
        if let cause = report.cause { lines.append("Cause: \(cause)") }
        if report.totals.fix1Mismatch > 0 {
            lines.append("Fix 1 (bucket from blk_rq_sectors) would change the bucket of \(Format.count(report.totals.fix1Mismatch)) of \(Format.count(report.totals.requests)) requests.")
        }
        return lines + completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
    }

    private static func flagState(set: UInt64, of count: UInt64) -> String {
        set == 0 ? "off" : set == count ? "on" : "mixed (on for \(Format.count(set)))"
    }

    private static func sizes(_ row: BucketRow) -> String {
        var parts = row.sizes.map { "\(Format.count($0.sectors)) × \(Format.count($0.count))" }
        if row.sizesOther > 0 { parts.append("other × \(Format.count(row.sizesOther))") }
        return parts.joined(separator: ", ")
    }
}
