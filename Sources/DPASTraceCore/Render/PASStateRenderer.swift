extension TextRenderer {
    /// Per CPU and bucket: the PAS duration now and its range, the last two results, timer-floor hits.
    public static func pasState(_ report: PASStateReport) -> String {
        var lines = ["PAS sleep state (per CPU and bucket)"]
        if let dInit = report.dInitNs {
            lines.append("pas_d_init: \(Format.duration(dInit)) — a duration stuck there has collapsed to the timer floor")
        }
        if let message = report.message {
            lines.append(message)
        } else {
            var table = TextTable([.init("CPU"), .init("Bucket"), .init("Device", .left), .init("dur now"), .init("first"),
                                   .init("min"), .init("max"), .init("Changes"), .init("Last", .left),
                                   .init("Before", .left), .init("Floor hits"), .init("tf"), .init("At floor", .left)])
            for row in report.rows {
                table.add([String(row.cpu), String(row.bucket), row.device, Format.duration(row.durNs),
                           Format.duration(row.firstDurNs), Format.duration(row.minDurNs), Format.duration(row.maxDurNs),
                           Format.count(row.updates), row.lastResult, row.previousResult, Format.count(row.timerFloorHits),
                           Format.count(row.tf), row.atFloor.map { $0 ? "yes" : "no" } ?? "–"])
            }
            lines += table.render(indent: 2)
        }
        return text(lines + report.warnings.map { "Warning: \($0)" })
    }
}
