/// bcc-style power-of-two histograms ("     64 -> 127      : 12   |****     |"), folded from the
/// 256-bin log-linear `LatencyHistogram` (four sub-bins per power of two).
public enum Log2Histogram {
    /// Counts per power-of-two range: index k covers [2^k, 2^(k+1)), index 0 also holds 0.
    public static func fold(_ histogram: LatencyHistogram) -> [UInt64] {
        var rows = Array(repeating: UInt64(0), count: 64)
        for bin in 0..<LatencyHistogram.binCount where histogram.bins[bin] > 0 {
            let low = LatencyHistogram.lowerBound(ofBin: bin)
            rows[low < 2 ? 0 : 63 - low.leadingZeroBitCount] += histogram.bins[bin]
        }
        return rows
    }

    /// The histogram as text lines: a header naming `unit`, one line per range from the lowest
    /// to the highest non-empty one, bars scaled to `barWidth`. Empty → one "(no data)" line.
    public static func render(_ histogram: LatencyHistogram, unit: String = "ns", barWidth: Int = 40) -> [String] {
        let rows = fold(histogram)
        guard let first = rows.firstIndex(where: { $0 > 0 }), let last = rows.lastIndex(where: { $0 > 0 }) else {
            return ["(no data)"]
        }
        let peak = rows.max() ?? 1
        let ranges = (first...last).map { k -> (String, UInt64) in
            let bounds = range(k)
            return ("\(bounds.low) -> \(bounds.high)", rows[k])
        }
        let rangeWidth = max(unit.count + 2, ranges.map(\.0.count).max() ?? 0)
        let countWidth = max(5, ranges.map { Format.count($0.1).count }.max() ?? 0)
        var lines = [pad(unit, rangeWidth) + " : " + pad("count", countWidth) + "  distribution"]
        for (range, count) in ranges {
            let filled = count == 0 ? 0 : max(1, Int((Double(count) / Double(peak) * Double(barWidth)).rounded()))
            let bar = String(repeating: "*", count: filled) + String(repeating: " ", count: barWidth - filled)
            lines.append(pad(range, rangeWidth) + " : " + pad(Format.count(count), countWidth) + "  |" + bar + "|")
        }
        return lines
    }

    /// One power-of-two range of a folded histogram (machine-readable form of a `render` line).
    public struct Row: Codable, Sendable, Equatable {
        public var low: UInt64
        public var high: UInt64
        public var count: UInt64
    }

    /// The non-empty span of `fold(histogram)` as rows, lowest first (empty histogram → no rows).
    public static func rows(_ histogram: LatencyHistogram) -> [Row] {
        let counts = fold(histogram)
        guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 }) else { return [] }
        return (first...last).map { k -> Row in
            let bounds = range(k)
            return Row(low: bounds.low, high: bounds.high, count: counts[k])
        }
    }

    /// Bounds of power-of-two row k: [2^k, 2^(k+1) - 1], row 0 from 0.
    static func range(_ k: Int) -> (low: UInt64, high: UInt64) {
        let low: UInt64 = k == 0 ? 0 : 1 << UInt64(k)
        let high: UInt64 = k == 63 ? UInt64.max : (1 << UInt64(k + 1)) - 1
        return (low, high)
    }

    /// The poll-stats bucket distribution in the same style: `counts[0]` is bucket -1, `counts[k]`
    /// bucket k-1; only non-empty buckets get a line, and bucket -1's share is spelled out.
    public static func renderBuckets(_ counts: [UInt64], barWidth: Int = 40) -> [String] {
        let peak = counts.max() ?? 0
        guard peak > 0 else { return ["(no requests)"] }
        var lines = ["bucket : count  distribution"]
        for (index, count) in counts.enumerated() where count > 0 {
            let filled = max(1, Int((Double(count) / Double(peak) * Double(barWidth)).rounded()))
            lines.append(pad("\(index - 1)", 6) + " : " + pad(Format.count(count), 5) + "  |"
                + String(repeating: "*", count: filled) + String(repeating: " ", count: barWidth - filled) + "|")
        }
        if counts[0] > 0 {
            let total = counts.reduce(0, +)
            lines.append("bucket -1: \(Format.percent(Double(counts[0]) / Double(total))) of requests (stats_sectors was 0)")
        }
        return lines
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
