/// Renders a `DoctorReport` for a terminal: findings grouped under headings, an OK / WARN /
/// PROBLEM marker on each, the detail and the fix indented beneath, the summary last.
public enum DoctorTextRenderer {
    public static func render(_ report: DoctorReport, note: String? = nil) -> String {
        var lines: [String] = []
        let devices = report.devices.map(\.name).joined(separator: ", ")
        lines.append("dpas-trace doctor — kernel \(report.kernelRelease ?? "unknown")"
            + (devices.isEmpty ? "" : " — \(devices)"))
        if let note { lines.append("note: \(note)") }

        let markerWidth = DoctorSeverity.allCases.map(\.marker.count).max()! + 2
        let indent = String(repeating: " ", count: 2 + markerWidth)
        var currentGroup: String?
        for finding in report.findings {
            if finding.group != currentGroup {
                currentGroup = finding.group
                lines.append("")
                lines.append(finding.group)
            }
            let marker = finding.severity.marker
            lines.append("  " + marker + String(repeating: " ", count: markerWidth - marker.count) + finding.title)
            lines.append(indent + finding.detail)
            if let fix = finding.fix { lines.append(indent + "fix: " + fix) }
        }
        lines.append("")
        lines.append("Summary: " + report.summary)
        return lines.joined(separator: "\n") + "\n"
    }
}
