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
            let low: UInt64 = k == 0 ? 0 : 1 << UInt64(k)
            let high: UInt64 = k == 63 ? UInt64.max : (1 << UInt64(k + 1)) - 1
            return ("\(low) -> \(high)", rows[k])
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

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
