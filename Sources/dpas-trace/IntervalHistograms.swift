import DPASTraceCore
import DPASTraceKernel
import Foundation

/// bcc-style interval output of `sleep-ratio --interval S` and `buckets --interval S`: per interval
/// a timestamp line and log2 histograms built from that interval's in-kernel aggregates, or with
/// --json one compact JSON object per line (JSON Lines) holding the same histograms and the report.
enum IntervalHistograms {
    /// Requested sleeps of the interval. The kernel's log2 map sees every attempt once (row =
    /// ilog2 of the requested ns), so adding 2^row per attempt folds back to exactly those rows.
    static func requestedSleep(_ snapshot: KernelSnapshot) -> LatencyHistogram {
        var histogram = LatencyHistogram()
        for (row, values) in snapshot.sleepLog2 {
            let attempts = values.reduce(0) { $0 &+ $1.attempts }
            if attempts > 0 { histogram.add(UInt64(1) << UInt64(row), times: attempts) }
        }
        return histogram
    }

    /// Actual sleep of the attempts that slept: the kernel's own histogram bins, summed over rows and CPUs.
    static func actualSleep(_ snapshot: KernelSnapshot) -> LatencyHistogram {
        var bins = [UInt64](repeating: 0, count: LatencyHistogram.binCount)
        var count: UInt64 = 0, sum: UInt64 = 0, peak: UInt64 = 0
        for values in snapshot.sleepLog2.values {
            for value in values {
                for (bin, n) in value.sleptBins.enumerated() where bin < bins.count { bins[bin] &+= n }
                count &+= value.slept
                sum &+= value.sleptSum
                peak = max(peak, value.sleptMax)
            }
        }
        return LatencyHistogram(bins: bins, count: count, sum: sum, max: peak)
    }

    /// Requests per bucket: index 0 = bucket -1 … 16 = bucket 15 (the layout `renderBuckets` takes).
    static func bucketCounts(_ snapshot: KernelSnapshot) -> [UInt64] {
        var counts = [UInt64](repeating: 0, count: 17)
        for (key, values) in snapshot.buckets {
            counts[Int(max(-1, min(15, key.bucket))) + 1] &+= values.reduce(0, &+)
        }
        return counts
    }

    /// "--- 02:51:07 interval 3 (1 s)": wall-clock time the interval ended.
    static func timestampLine(index: Int, seconds: Double, at date: Date = Date()) -> String {
        "--- \(clockTime(date)) interval \(index) (\(formatSeconds(seconds)))"
    }

    static func sleepBlock(_ delta: KernelSnapshot, index: Int, seconds: Double) -> String {
        let requested = requestedSleep(delta), actual = actualSleep(delta)
        var lines = [timestampLine(index: index, seconds: seconds)]
        lines.append("hybrid sleeps: \(requested.count) attempts, \(actual.count) slept, \(requested.count &- actual.count) no sleep")
        lines.append("requested sleep")
        lines += Log2Histogram.render(requested, unit: "ns")
        lines.append("actual sleep (slept only)")
        lines += Log2Histogram.render(actual, unit: "ns")
        return lines.joined(separator: "\n") + "\n\n"
    }

    static func bucketBlock(_ delta: KernelSnapshot, index: Int, seconds: Double) -> String {
        let counts = bucketCounts(delta)
        var lines = [timestampLine(index: index, seconds: seconds)]
        lines.append("requests: \(counts.reduce(0, +))")
        lines += Log2Histogram.renderBuckets(counts)
        return lines.joined(separator: "\n") + "\n\n"
    }

    /// One JSON Lines record: an interval (`interval` = its number) or the run's total (`final`).
    struct Record<Report: Encodable>: Encodable {
        var interval: Int?
        var final: Bool
        var time: String
        var seconds: Double
        var requestedSleepNs: [Log2Histogram.Row]?
        var actualSleepNs: [Log2Histogram.Row]?
        var buckets: [BucketCount]?
        var report: Report

        enum CodingKeys: String, CodingKey {
            case interval, final, time, seconds, buckets, report
            case requestedSleepNs = "requested_sleep_ns", actualSleepNs = "actual_sleep_ns"
        }
    }

    struct BucketCount: Encodable {
        var bucket: Int
        var count: UInt64
    }

    static func sleepRecord<Report: Encodable>(_ delta: KernelSnapshot, report: Report, interval: Int?, seconds: Double) -> Record<Report> {
        Record(interval: interval, final: interval == nil, time: isoTime(Date()), seconds: seconds,
               requestedSleepNs: Log2Histogram.rows(requestedSleep(delta)),
               actualSleepNs: Log2Histogram.rows(actualSleep(delta)), buckets: nil, report: report)
    }

    static func bucketRecord<Report: Encodable>(_ delta: KernelSnapshot, report: Report, interval: Int?, seconds: Double) -> Record<Report> {
        let buckets = bucketCounts(delta).enumerated().filter { $0.element > 0 }.map { BucketCount(bucket: $0.offset - 1, count: $0.element) }
        return Record(interval: interval, final: interval == nil, time: isoTime(Date()), seconds: seconds,
                      requestedSleepNs: nil, actualSleepNs: nil, buckets: buckets, report: report)
    }

    /// One line of compact JSON.
    static func jsonLine<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    private static func clockTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        formatter.timeZone = TimeZone.current
        return formatter.string(from: date)
    }

    private static func isoTime(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    private static func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
