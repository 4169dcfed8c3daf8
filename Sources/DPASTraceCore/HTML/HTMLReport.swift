import Foundation

/// `dpas-trace report DUMP --html`: one self-contained page (inline CSS and SVG, no network) with
/// the sleep-ratio table and chart, the bucket histogram, a mode timeline per CPU, the per-mode
/// I/O share, the probe plan and the doctor's findings on the settings recorded in the dump.
///
/// Every chart element carries a class (`sleep-bar`, `bucket-bar`, `mode-segment`) and a small
/// inline script counts them into `#self-check`, so a browser test can verify what was drawn —
/// and that scripts ran without error.
public enum HTMLReport {
    /// Reads the dump twice (analyses, then the timeline over the now known time span): streaming,
    /// memory bounded whatever the dump's size.
    public static func render(dumpAt path: String, timelineBins: Int = 240) throws -> (html: String, warnings: [String]) {
        let analysis = try DumpAnalysis.run(path: path)
        let reader = try DumpReader(path: path)
        let source = analysis.report.source
        var timeline = ModeTimeline(startNs: source?.firstTsNs ?? 0, endNs: source?.lastTsNs ?? 0, bins: timelineBins)
        _ = try reader.forEachChunk { events in
            for event in events { timeline.consume(event) }
        }
        timeline.finish()
        let doctor = reader.header.settings.isEmpty ? nil : Doctor.diagnose(settings: reader.header.settings, device: reader.header.device)
        return (render(report: analysis.report, header: reader.header, timeline: timeline, doctor: doctor), analysis.warnings)
    }

    /// `doctor` nil: the dump recorded no settings (e.g. a synthetic stream).
    public static func render(report: FullReport, header: DumpHeader, timeline: ModeTimeline, doctor: DoctorReport?) -> String {
        var page = Page()
        page.open(title: "dpas-trace report — \(header.kernelRelease)")
        page.summary(report: report, header: header)
        page.sleepRatio(report.sleepRatio)
        page.buckets(report.buckets)
        page.modes(report.modes, timeline: timeline)
        page.doctor(doctor)
        page.probePlan(header.probePlan)
        page.close()
        return page.html
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static let modeColors: [String: String] = [
        "INT": "#8d6e63", "CP": "#1e88e5", "PAS": "#43a047", "OL": "#fb8c00", "EHP": "#8e24aa",
    ]
}

private struct Page {
    var html = ""

    mutating func add(_ text: String) { html += text + "\n" }

    private func e(_ text: String) -> String { HTMLReport.escape(text) }

    private func number(_ value: Double) -> String { String(format: "%.1f", value) }

    mutating func open(title: String) {
        add("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(title))</title>
            <style>
            body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
            main { max-width: 1100px; margin: 0 auto; padding: 24px; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 12px; }
            section { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 18px 20px; margin: 16px 0; }
            .meta { color: #5b6475; } .verdict { font-weight: 600; margin: 8px 0 12px; }
            table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
            th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid #eef0f4; }
            th:first-child, td:first-child, td.text, th.text { text-align: left; }
            th { color: #5b6475; font-weight: 600; }
            .warn { background: #fff4e5; border: 1px solid #ffcc80; padding: 8px 12px; border-radius: 6px; margin: 6px 0; }
            .sev-ok { color: #2e7d32; } .sev-warning { color: #ef6c00; } .sev-problem { color: #c62828; }
            .fix { font-family: ui-monospace, monospace; color: #37474f; }
            .legend span { display: inline-block; margin-right: 14px; } .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
            svg text { font: 11px system-ui, sans-serif; fill: #37474f; }
            </style></head><body><main>
            """)
    }

    mutating func close() {
        add("""
            <output id="self-check" hidden></output>
            <script>
            (function () {
              var count = function (selector) { return document.querySelectorAll(selector).length; };
              document.getElementById("self-check").textContent =
                "sleep-bars=" + count("svg .sleep-bar") + ";bucket-bars=" + count("svg .bucket-bar") +
                ";mode-segments=" + count("svg .mode-segment") + ";mode-tracks=" + count("svg .mode-track");
              document.body.setAttribute("data-ready", "1");
            })();
            </script>
            </main></body></html>
            """)
    }

    mutating func summary(report: FullReport, header: DumpHeader) {
        let source = report.source
        let seconds = source.flatMap { s in s.firstTsNs.flatMap { first in s.lastTsNs.map { Double($0 - first) / 1e9 } } }
        let recorded = Date(timeIntervalSince1970: Double(header.createdRealtimeNs) / 1e9)
        add("<section><h1>dpas-trace report</h1>")
        add("<div class=\"meta\">\(e(source?.path ?? "live")) · kernel \(e(header.kernelRelease)) · host \(e(header.hostname)) · recorded \(e(ISO8601DateFormatter().string(from: recorded)))"
            + (seconds.map { " · \(String(format: "%.2f", $0)) s traced" } ?? "")
            + " · \(Format.count(source?.events ?? 0)) events · lost events: \(Format.count(report.lostEvents.total))"
            + " · dpas-trace \(e(header.toolVersion))</div>")
        if let device = header.device { add("<div class=\"meta\">device \(e(device))</div>") }
        if let reason = source?.reason ?? header.reason { add("<div class=\"meta\">written because: \(e(reason))</div>") }
        for note in source?.notes ?? [] { add("<div class=\"meta\">note: \(e(note))</div>") }
        for warning in report.warnings { add("<div class=\"warn\">\(e(warning))</div>") }
        if report.lostEvents.total > 0 {
            add("<div class=\"warn\">\(Format.count(report.lostEvents.total)) events were lost by the recorder: the counts below miss them.</div>")
        }
        add("</section>")
    }

    mutating func sleepRatio(_ report: SleepRatioReport) {
        add("<section id=\"sleep-ratio\"><h2>Hybrid-polling sleeps: did the task really sleep?</h2>")
        add("<div class=\"verdict\">\(e(report.verdict))</div>")
        guard !report.rows.isEmpty else {
            add("<p class=\"meta\">No hybrid sleep attempts were recorded.</p></section>")
            return
        }
        // Chart: one 100 % bar per requested duration, slept (green) vs no sleep (red).
        let rowHeight = 26, labelWidth = 150, barWidth = 560, width = labelWidth + barWidth + 220
        add("<svg width=\"\(width)\" height=\"\(rowHeight * report.rows.count + 24)\" role=\"img\" aria-label=\"sleep ratio per requested duration\">")
        for (index, row) in report.rows.enumerated() {
            let y = 4 + index * rowHeight
            let attempts = max(1, row.slept + row.noSleep)
            let sleptWidth = Double(barWidth) * Double(row.slept) / Double(attempts)
            add("<g class=\"sleep-bar\" data-requested=\"\(e(row.requestedLabel))\">")
            add("<title>\(e(row.requestedLabel)) ns: \(Format.count(row.slept)) slept, \(Format.count(row.noSleep)) no sleep</title>")
            add("<text x=\"\(labelWidth - 8)\" y=\"\(y + 15)\" text-anchor=\"end\">\(e(row.requestedLabel)) ns</text>")
            add("<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(number(sleptWidth))\" height=\"20\" fill=\"#43a047\"/>")
            add("<rect x=\"\(number(Double(labelWidth) + sleptWidth))\" y=\"\(y)\" width=\"\(number(Double(barWidth) - sleptWidth))\" height=\"20\" fill=\"#e53935\"/>")
            add("<text x=\"\(labelWidth + barWidth + 8)\" y=\"\(y + 15)\">\(e(Format.percent(row.sleepRatio))) slept — \(e(row.verdictCode.label))</text>")
            add("</g>")
        }
        add("</svg>")
        add("<div class=\"legend meta\"><span><i class=\"swatch\" style=\"background:#43a047\"></i>slept</span><span><i class=\"swatch\" style=\"background:#e53935\"></i>no sleep (timer fired before the task yielded)</span></div>")
        add("<table><thead><tr><th>requested (ns)</th><th>attempts</th><th>no sleep</th><th>slept</th><th>sleep ratio</th><th>actual sleep p50</th><th>p99</th><th>oversleep p50</th><th>p99</th><th class=\"text\">verdict</th></tr></thead><tbody>")
        for row in report.rows {
            add("<tr><td>\(e(row.requestedLabel))</td><td>\(Format.count(row.attempts))</td><td>\(Format.count(row.noSleep))</td><td>\(Format.count(row.slept))</td><td>\(e(Format.percent(row.sleepRatio)))</td>"
                + "<td>\(e(Format.duration(row.actualSleep.p50Ns)))</td><td>\(e(Format.duration(row.actualSleep.p99Ns)))</td>"
                + "<td>\(e(Format.duration(row.oversleep.p50Ns)))</td><td>\(e(Format.duration(row.oversleep.p99Ns)))</td><td class=\"text\">\(e(row.verdict))</td></tr>")
        }
        let totals = report.totals
        add("<tr><th>total</th><th>\(Format.count(totals.attempts))</th><th>\(Format.count(totals.noSleep))</th><th>\(Format.count(totals.slept))</th><th>\(e(Format.percent(totals.sleepRatio)))</th><th colspan=\"5\"></th></tr>")
        add("</tbody></table></section>")
    }

    mutating func buckets(_ report: BucketReport) {
        add("<section id=\"buckets\"><h2>Poll-stats buckets</h2>")
        add("<div class=\"verdict\">\(e(report.headline))</div>")
        if let cause = report.cause { add("<p>\(e(cause))</p>") }
        let rows = report.rows.filter { $0.count > 0 }
        guard !rows.isEmpty else {
            add("<p class=\"meta\">No requests were recorded.</p></section>")
            return
        }
        let peak = rows.map(\.count).max() ?? 1
        let barWidth = 40, gap = 14, chartHeight = 180
        let width = rows.count * (barWidth + gap) + 60
        add("<svg width=\"\(width)\" height=\"\(chartHeight + 40)\" role=\"img\" aria-label=\"requests per bucket\">")
        for (index, row) in rows.enumerated() {
            let height = max(1, Double(chartHeight) * Double(row.count) / Double(peak))
            let x = 40 + index * (barWidth + gap)
            let label = "\(row.bucket)\(row.bucket == -1 ? " " + row.direction : "")"
            add("<g class=\"bucket-bar\" data-bucket=\"\(row.bucket)\"><title>bucket \(e(label)): \(Format.count(row.count)) requests</title>")
            add("<rect x=\"\(x)\" y=\"\(number(Double(chartHeight) - height + 4))\" width=\"\(barWidth)\" height=\"\(number(height))\" fill=\"\(row.bucket == -1 ? "#e53935" : "#1e88e5")\"/>")
            add("<text x=\"\(x + barWidth / 2)\" y=\"\(chartHeight + 18)\" text-anchor=\"middle\">\(e(label))</text>")
            add("<text x=\"\(x + barWidth / 2)\" y=\"\(chartHeight + 32)\" text-anchor=\"middle\">\(Format.count(row.count))</text></g>")
        }
        add("</svg>")
        add("<table><thead><tr><th>bucket</th><th class=\"text\">direction</th><th>requests</th><th>polled</th><th>stats_sectors = 0</th><th class=\"text\">sizes (sectors)</th><th>fix-1 mismatch</th></tr></thead><tbody>")
        for row in rows {
            let sizes = row.sizes.map { "\($0.sectors)×\(Format.count($0.count))" }.joined(separator: ", ") + (row.sizesOther > 0 ? ", other \(Format.count(row.sizesOther))" : "")
            add("<tr><td>\(row.bucket)</td><td class=\"text\">\(e(row.direction))</td><td>\(Format.count(row.count))</td><td>\(Format.count(row.polled))</td><td>\(Format.count(row.statsSectorsZero))</td><td class=\"text\">\(e(sizes))</td><td>\(Format.count(row.fix1Mismatch))</td></tr>")
        }
        add("</tbody></table></section>")
    }

    mutating func modes(_ report: ModeReport, timeline: ModeTimeline) {
        add("<section id=\"modes\"><h2>DPAS modes</h2>")
        guard report.dpasSeen else {
            add("<div class=\"verdict\">\(e(report.message ?? "No DPAS mode state was recorded."))</div></section>")
            return
        }
        let labelWidth = 60, trackWidth = 900, trackHeight = 22
        let cpus = timeline.cpuList
        add("<svg width=\"\(labelWidth + trackWidth + 10)\" height=\"\(cpus.count * (trackHeight + 8) + 28)\" role=\"img\" aria-label=\"mode timeline per CPU\">")
        let binWidth = Double(trackWidth) / Double(timeline.binCount)
        for (index, cpu) in cpus.enumerated() {
            let y = 4 + index * (trackHeight + 8)
            add("<g class=\"mode-track\" data-cpu=\"\(cpu)\"><text x=\"\(labelWidth - 8)\" y=\"\(y + 15)\" text-anchor=\"end\">CPU \(cpu)</text>")
            for segment in timeline.segments(cpu: cpu) {
                let x = Double(labelWidth) + Double(segment.firstBin) * binWidth
                let width = Double(segment.lastBin - segment.firstBin + 1) * binWidth
                add("<rect class=\"mode-segment\" data-mode=\"\(segment.mode.name)\" x=\"\(number(x))\" y=\"\(y)\" width=\"\(number(width))\" height=\"\(trackHeight)\" fill=\"\(HTMLReport.modeColors[segment.mode.name] ?? "#999")\"><title>CPU \(cpu): \(segment.mode.name)</title></rect>")
            }
            add("</g>")
        }
        let seconds = Double(timeline.endNs - timeline.startNs) / 1e9
        let axisY = cpus.count * (trackHeight + 8) + 18
        add("<text x=\"\(labelWidth)\" y=\"\(axisY)\">0 s</text><text x=\"\(labelWidth + trackWidth)\" y=\"\(axisY)\" text-anchor=\"end\">\(String(format: "%.3f", seconds)) s</text>")
        add("</svg>")
        add("<div class=\"legend meta\">" + dpasModes.map { "<span><i class=\"swatch\" style=\"background:\(HTMLReport.modeColors[$0.name]!)\"></i>\($0.name)</span>" }.joined() + "</div>")
        add("<table><thead><tr><th class=\"text\">mode</th><th>time share</th><th>I/Os</th><th>I/O share (DPAS BREAK)</th><th>kernel total</th></tr></thead><tbody>")
        for share in report.totals.modes {
            add("<tr><td class=\"text\">\(e(share.mode))</td><td>\(e(Format.percent(share.timeShare)))</td><td>\(Format.count(share.ios))</td><td>\(e(Format.percent(share.ioShare)))</td><td>\(share.kernelTotal.map { Format.count($0) } ?? "–")</td></tr>")
        }
        add("</tbody></table>")
        add("<p class=\"meta\">\(Format.count(report.totals.transitions)) transitions in all.</p></section>")
    }

    mutating func doctor(_ report: DoctorReport?) {
        add("<section id=\"doctor\"><h2>Settings recorded with the dump (doctor)</h2>")
        guard let report else {
            add("<p class=\"meta\">The dump records no system settings (it was not recorded from a kernel).</p></section>")
            return
        }
        add("<div class=\"verdict\">\(e(report.summary))</div>")
        add("<table><thead><tr><th class=\"text\">status</th><th class=\"text\">finding</th><th class=\"text\">fix</th></tr></thead><tbody>")
        for finding in report.findings {
            add("<tr><td class=\"text sev-\(finding.severity.rawValue)\">\(e(finding.severity.rawValue.uppercased()))</td><td class=\"text\"><b>\(e(finding.title))</b><br>\(e(finding.detail))</td><td class=\"text fix\">\(e(finding.fix ?? ""))</td></tr>")
        }
        add("</tbody></table></section>")
    }

    mutating func probePlan(_ plan: [ProbePlanEntry]) {
        add("<section id=\"plan\"><h2>Probe plan</h2>")
        guard !plan.isEmpty else {
            add("<p class=\"meta\">The dump records no probe plan (not recorded from a kernel).</p></section>")
            return
        }
        add("<table><thead><tr><th class=\"text\">hook</th><th class=\"text\">target</th><th class=\"text\">attach</th><th class=\"text\">status</th><th class=\"text\">detail</th></tr></thead><tbody>")
        for entry in plan {
            add("<tr><td class=\"text\">\(e(entry.hook))</td><td class=\"text\">\(e(entry.target))</td><td class=\"text\">\(e(entry.attachType))</td><td class=\"text\">\(e(entry.status.rawValue))</td><td class=\"text\">\(e(entry.detail))\(entry.cost.map { "<br><i>\(e($0))</i>" } ?? "")</td></tr>")
        }
        add("</tbody></table></section>")
    }
}
