import CDPASEvents

/// A 256-bin log-linear histogram of nanosecond values, binned exactly like the in-kernel
/// aggregates (`dpt_hist_bin` in the event header), so a histogram filled by the BPF side and one
/// filled from a dump of the same period are identical bin for bin.
///
/// Percentiles are reported as the upper edge of the bin holding the rank, capped at the observed
/// maximum: never lower than the true value and at most one bin (≤ 25 %) above it.
public struct LatencyHistogram: Codable, Sendable, Equatable {
    public static let binCount = Int(DPT_HIST_BINS)

    /// Observations per bin; the kernel side may fill these directly.
    public var bins: [UInt64]
    /// Number of observations.
    public var count: UInt64
    /// Sum of all observed values (wraps only past 584 years of nanoseconds).
    public var sum: UInt64
    /// Largest observed value.
    public var max: UInt64

    public init() {
        bins = Array(repeating: 0, count: Self.binCount)
        count = 0
        sum = 0
        max = 0
    }

    /// Builds a histogram from pre-aggregated parts (e.g. a per-CPU BPF map).
    public init(bins: [UInt64], count: UInt64, sum: UInt64, max: UInt64) {
        precondition(bins.count == Self.binCount, "a latency histogram has \(Self.binCount) bins")
        self.bins = bins
        self.count = count
        self.sum = sum
        self.max = max
    }

    /// The bin a value falls into.
    @inlinable public static func bin(of value: UInt64) -> Int { Int(dpt_hist_bin(value)) }

    /// Smallest value of bin `index`.
    @inlinable public static func lowerBound(ofBin index: Int) -> UInt64 { dpt_hist_bin_lower(UInt32(index)) }

    /// Largest value of bin `index`.
    public static func upperBound(ofBin index: Int) -> UInt64 {
        index + 1 >= binCount ? UInt64.max : dpt_hist_bin_lower(UInt32(index + 1)) - 1
    }

    /// Records `times` observations of `value`.
    public mutating func add(_ value: UInt64, times: UInt64 = 1) {
        guard times > 0 else { return }
        bins[Self.bin(of: value)] += times
        count += times
        sum &+= value &* times
        if value > max { max = value }
    }

    /// Adds another histogram's observations to this one.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in 0..<Self.binCount { bins[index] += other.bins[index] }
        count += other.count
        sum &+= other.sum
        if other.max > max { max = other.max }
    }

    /// Mean value, nil when empty.
    public var mean: Double? { count == 0 ? nil : Double(sum) / Double(count) }

    /// The `fraction`-quantile (0…1), nil when empty.
    public func percentile(_ fraction: Double) -> UInt64? {
        guard count > 0 else { return nil }
        // Rank of the wanted observation, 1-based: p50 of 10 values is the 5th.
        let rank = Swift.max(1, UInt64((fraction * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for index in 0..<Self.binCount where bins[index] > 0 {
            seen += bins[index]
            if seen >= rank { return Swift.min(Self.upperBound(ofBin: index), max) }
        }
        return max
    }

    /// The summary every table shows; nil fields when empty.
    public var summary: LatencySummary {
        LatencySummary(count: count, meanNs: mean, p50Ns: percentile(0.50), p90Ns: percentile(0.90),
                       p99Ns: percentile(0.99), maxNs: count == 0 ? nil : max)
    }

    // Stored compactly in JSON: only non-empty bins, as [bin, count] pairs.
    enum CodingKeys: String, CodingKey { case bins, count, sum, max }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let pairs = try container.decode([[UInt64]].self, forKey: .bins)
        var bins = Array(repeating: UInt64(0), count: Self.binCount)
        for pair in pairs where pair.count == 2 && pair[0] < UInt64(Self.binCount) { bins[Int(pair[0])] = pair[1] }
        self.init(bins: bins, count: try container.decode(UInt64.self, forKey: .count),
                  sum: try container.decode(UInt64.self, forKey: .sum), max: try container.decode(UInt64.self, forKey: .max))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let pairs = bins.enumerated().filter { $0.element > 0 }.map { [UInt64($0.offset), $0.element] }
        try container.encode(pairs, forKey: .bins)
        try container.encode(count, forKey: .count)
        try container.encode(sum, forKey: .sum)
        try container.encode(max, forKey: .max)
    }
}

/// Mean, percentiles and maximum of a `LatencyHistogram`, as reports carry them.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: UInt64
    public var meanNs: Double?
    public var p50Ns: UInt64?
    public var p90Ns: UInt64?
    public var p99Ns: UInt64?
    public var maxNs: UInt64?

    enum CodingKeys: String, CodingKey {
        case count, meanNs = "mean_ns", p50Ns = "p50_ns", p90Ns = "p90_ns", p99Ns = "p99_ns", maxNs = "max_ns"
    }

    // Empty summaries encode their absent values as JSON null, so the keys are always present.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(count, forKey: .count)
        try container.encode(meanNs, forKey: .meanNs)
        try container.encode(p50Ns, forKey: .p50Ns)
        try container.encode(p90Ns, forKey: .p90Ns)
        try container.encode(p99Ns, forKey: .p99Ns)
        try container.encode(maxNs, forKey: .maxNs)
    }
}
