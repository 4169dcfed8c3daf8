import Foundation

/// Number formatting shared by every table and sentence: thousands separators like the seed
/// ("5,899"), percentages with one decimal ("0.1%"), durations with a readable unit.
/// Locale-independent on purpose: output must not change with the user's environment.
public enum Format {
    /// 5899 → "5,899".
    public static func count<T: BinaryInteger>(_ value: T) -> String {
        let digits = String(value.magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return value < 0 ? "-" + grouped : grouped
    }

    /// A 0…1 fraction as a percentage: 0 → "0%", 0.00139 → "0.1%", 0.998 → "99.8%", 1 → "100%";
    /// tiny non-zero values never print as "0.0%" and near-complete ones never as "100.0%".
    public static func percent(_ fraction: Double?) -> String {
        guard let fraction, fraction.isFinite else { return "–" }
        let percent = fraction * 100
        if fraction <= 0 { return "0%" }
        if fraction >= 1 { return "100%" }
        if percent < 0.05 { return "<0.1%" }
        if percent >= 99.95 { return ">99.9%" }
        return String(format: "%.1f%%", percent)
    }

    /// Nanoseconds with a unit chosen for readability: "950 ns", "3,960 ns", "12.4 µs", "125 µs", "1.25 ms", "2.00 s".
    public static func duration<T: BinaryInteger>(_ ns: T?) -> String {
        guard let ns else { return "–" }
        return duration(Double(ns))
    }

    public static func duration(_ ns: Double?) -> String {
        guard let ns, ns.isFinite else { return "–" }
        if ns < 10_000 { return "\(count(UInt64(ns.rounded()))) ns" }
        if ns < 100_000 { return String(format: "%.1f µs", ns / 1_000) }
        if ns < 1_000_000 { return String(format: "%.0f µs", ns / 1_000) }
        if ns < 1_000_000_000 { return String(format: "%.2f ms", ns / 1_000_000) }
        return String(format: "%.2f s", ns / 1_000_000_000)
    }

    /// Average queue depth from the kernel's ×10 fixed point: 10 → "1.0", 35 → "3.5".
    public static func queueDepth(x10: UInt32) -> String {
        "\(x10 / 10).\(x10 % 10)"
    }
}
