extension TextRenderer {
    /// Per-CPU transitions, matrices and per-mode time and I/O; or the plain "not a DPAS kernel".
    public static func modes(_ report: ModeReport) -> String {
        text(modeLines(report))
    }

    static func modeLines(_ report: ModeReport) -> [String] {
        var lines = ["DPAS modes"]
        guard report.dpasSeen else {
            lines.append(report.message ?? "not a DPAS kernel")
            return lines + completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
        }
        for cpu in report.cpus where cpu.transitionsTotal > 0 || cpu.finalMode != nil || cpu.modes.contains(where: { $0.kernelTotal != nil }) {
            lines.append("")
            var title = "CPU \(cpu.cpu): \(Format.count(cpu.transitionsTotal)) transition\(cpu.transitionsTotal == 1 ? "" : "s")"
            if let finalMode = cpu.finalMode { title += ", mode at the end: \(finalMode)" }
            if cpu.unobservedChanges > 0 {
                title += ", \(Format.count(cpu.unobservedChanges)) mode change(s) seen without their MODE event"
            }
            lines.append(title)
            if cpu.transitionsTotal > 0 {
                var timeline = TextTable([.init("Time"), .init("From", .left), .init("To", .left), .init("Avg QD"),
                                          .init("tf"), .init("Window I/Os")])
                func add(_ transition: ModeTransition) {
                    timeline.add([seconds(transition.tsNs), transition.from, transition.to,
                                  Format.queueDepth(x10: transition.avgQDx10), Format.count(transition.tf), Format.count(transition.windowIOs)])
                }
                cpu.firstTransitions.forEach(add)
                if cpu.transitionsElided > 0 {
                    timeline.add(["… \(Format.count(cpu.transitionsElided)) more …", "", "", "", "", ""])
                }
                cpu.lastTransitions.forEach(add)
                lines += timeline.render(indent: 2)
                lines.append("")
                lines += matrixLines(cpu.matrix, indent: 2)
            }
            lines.append("")
            lines += modeShareLines(cpu.modes, indent: 2)
        }
        lines.append("")
        lines.append("All CPUs: \(Format.count(report.totals.transitions)) transitions; I/O share per mode (DPAS BREAK)")
        lines += modeShareLines(report.totals.modes, indent: 2)
        if report.totals.transitions > 0 {
            lines.append("")
            lines += matrixLines(report.totals.matrix, indent: 2)
        }
        if report.totals.iosUnknownMode > 0 {
            lines.append("Requests without DPAS state: \(Format.count(report.totals.iosUnknownMode))")
        }
        return lines + completenessLines(lostEvents: report.lostEvents, warnings: report.warnings)
    }

    private static func matrixLines(_ matrix: [String: [String: UInt64]], indent: Int) -> [String] {
        let names = dpasModes.map(\.name)
        var table = TextTable([.init("from \\ to", .left)] + names.map { .init($0) })
        for from in names { table.add([from] + names.map { Format.count(matrix[from]?[$0] ?? 0) }) }
        return table.render(indent: indent)
    }

    private static func modeShareLines(_ modes: [ModeShare], indent: Int) -> [String] {
        let showKernel = modes.contains { $0.kernelTotal != nil }
        var table = TextTable([.init("Mode", .left), .init("Time"), .init("Time share"), .init("I/Os"), .init("Polled"),
                               .init("I/O share")] + (showKernel ? [.init("Kernel total")] : []))
        for mode in modes {
            table.add([mode.mode, Format.duration(mode.timeNs), Format.percent(mode.timeShare), Format.count(mode.ios),
                       Format.count(mode.polled), Format.percent(mode.ioShare)]
                + (showKernel ? [mode.kernelTotal.map { Format.count($0) } ?? "–"] : []))
        }
        return table.render(indent: indent)
    }
}
