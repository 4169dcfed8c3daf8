import Foundation

/// Lays out one frame of `dpas-trace top` as text lines for a terminal of a given size. Pure, so
/// the same frame serves the full-screen view, the plain periodic text and the tests.
public enum TopScreen {
    public struct Status: Sendable {
        public var source: String
        public var elapsedSeconds: Double
        public var intervalSeconds: Double
        public var paused: Bool
        public var finished: Bool

        public init(source: String, elapsedSeconds: Double, intervalSeconds: Double, paused: Bool = false, finished: Bool = false) {
            self.source = source
            self.elapsedSeconds = elapsedSeconds
            self.intervalSeconds = intervalSeconds
            self.paused = paused
            self.finished = finished
        }
    }

    static let modeNames = ["INT", "CP", "PAS", "OL", "EHP"]

    static func modeName(_ mode: UInt8?) -> String {
        guard let mode else { return "–" }
        return Int(mode) < modeNames.count ? modeNames[Int(mode)] : "?"
    }

    /// The frame: at most `height` lines of at most `width` columns (height nil = unbounded).
    public static func render(_ model: TopModel, status: Status, width: Int, height: Int?) -> [String] {
        let width = max(width, 40)
        var header = "dpas-trace top — \(status.source) — \(formatSeconds(status.elapsedSeconds)) — every \(formatSeconds(status.intervalSeconds))"
        if status.paused { header += " — PAUSED" }
        if status.finished { header += " — ended" }
        var lines = [header]
        let skipped = model.skippedProbeRuns > 0 ? "   skipped probe runs: \(Format.count(model.skippedProbeRuns))" : ""
        lines.append("lost events: \(Format.count(model.lostEvents))\(skipped)   events: \(Format.count(model.events))   keys: q quit · p pause · c clear")
        let attempts = model.sleepAttempts
        let slept = model.requestedSleptNs.count
        lines.append("hybrid sleeps: \(Format.count(attempts)) attempts, \(Format.count(slept)) slept, "
            + "\(Format.count(model.requestedNoSleepNs.count)) no sleep, sleep ratio \(Format.percent(attempts == 0 ? nil : Double(slept) / Double(attempts)))")

        var sections: [(String, [String])] = []
        let column = width >= 130 ? (width - 3) / 2 : width
        let bar = max(10, column - 36)
        sections.append(("requested sleep, slept (ns)", Log2Histogram.render(model.requestedSleptNs, barWidth: bar)))
        sections.append(("requested sleep, no sleep (ns)", Log2Histogram.render(model.requestedNoSleepNs, barWidth: bar)))
        sections.append(("actual sleep (ns)", Log2Histogram.render(model.actualSleepNs, barWidth: bar)))
        sections.append(("oversleep (ns)", Log2Histogram.render(model.oversleepNs, barWidth: bar)))
        sections.append(("I/O completion latency (ns)", Log2Histogram.render(model.ioLatencyNs, barWidth: bar)))
        sections.append(("poll-stats buckets", bucketLines(model, barWidth: bar)))
        sections.append(("per CPU", cpuLines(model)))

        var body: [String] = []
        if column < width {
            var index = 0
            while index < sections.count {
                let left = [sections[index].0.uppercased()] + sections[index].1
                let right = index + 1 < sections.count ? [sections[index + 1].0.uppercased()] + sections[index + 1].1 : []
                for row in 0..<max(left.count, right.count) {
                    let l = row < left.count ? clip(left[row], column) : ""
                    let r = row < right.count ? clip(right[row], column) : ""
                    body.append(r.isEmpty ? l : l.padding(toLength: column, withPad: " ", startingAt: 0) + " │ " + r)
                }
                body.append("")
                index += 2
            }
        } else {
            for (title, content) in sections {
                body.append(title.uppercased())
                body.append(contentsOf: content)
                body.append("")
            }
        }
        lines.append("")
        lines.append(contentsOf: body)
        lines = lines.map { clip($0, width) }
        if let height, lines.count > height {
            lines = Array(lines.prefix(max(1, height - 1))) + ["… (enlarge the terminal to see more)"]
        }
        return lines
    }

    static func bucketLines(_ model: TopModel, barWidth: Int) -> [String] {
        Log2Histogram.renderBuckets(model.bucketCounts, barWidth: barWidth)
    }

    static func cpuLines(_ model: TopModel) -> [String] {
        guard !model.cpus.isEmpty else { return ["(no activity)"] }
        let anyMode = model.cpus.values.contains { $0.mode != nil }
        var lines = ["cpu    I/Os  mode  transitions  avg QD"]
        for cpu in model.cpus.keys.sorted() {
            let state = model.cpus[cpu]!
            let qd = state.lastAvgQDx10.map { String(format: "%.1f", Double($0) / 10) } ?? "–"
            lines.append("\(String(cpu).leftPadded(3))  \(Format.count(state.ios).leftPadded(6))  \(modeName(state.mode).padding(toLength: 4, withPad: " ", startingAt: 0))  \(Format.count(state.transitions).leftPadded(11))  \(qd.leftPadded(6))")
        }
        if !anyMode { lines.append("no DPAS mode state seen (not a DPAS kernel, or no polled I/O yet)") }
        return lines
    }

    static func clip(_ line: String, _ width: Int) -> String {
        line.count <= width ? line : String(line.prefix(width))
    }

    static func formatSeconds(_ seconds: Double) -> String {
        seconds < 10 ? String(format: "%.1fs", seconds) : String(format: "%.0fs", seconds)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
