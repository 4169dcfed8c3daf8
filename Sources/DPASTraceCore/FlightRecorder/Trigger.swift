import CDPASEvents
import Foundation

/// A condition that makes the flight recorder write its ring to disk.
///
/// Grammar (one condition per `--trigger`; any one firing writes the dump):
///
///     mode=MODE                   a CPU enters MODE (INT, CP, PAS, OL, EHP)
///     bucket=B                    a request is assigned poll-stats bucket B (-1 … 15)
///     no-sleep-ratio>R[/N]        over the last N hybrid sleep attempts (default 1000, and only
///                                 once N were seen), the share that did not sleep exceeds R (0…1);
///                                 `>=`, `<` and `<=` work too
///     lost>N                      more than N events were lost in total
public enum Trigger: Equatable, Sendable, CustomStringConvertible {
    case mode(UInt8)
    case bucket(Int8)
    case noSleepRatio(Comparison, threshold: Double, window: Int)
    case lostEvents(above: UInt64)

    public enum Comparison: String, Sendable, CaseIterable {
        // Longest first so that ">=" is not read as ">" followed by "=…".
        case greaterOrEqual = ">=", lessOrEqual = "<=", greater = ">", less = "<"

        func holds(_ lhs: Double, _ rhs: Double) -> Bool {
            switch self {
            case .greater: lhs > rhs
            case .greaterOrEqual: lhs >= rhs
            case .less: lhs < rhs
            case .lessOrEqual: lhs <= rhs
            }
        }
    }

    public static let defaultWindow = 1000
    static let modeNames: [String: UInt8] = [
        "INT": UInt8(DPT_MODE_INT.rawValue), "CP": UInt8(DPT_MODE_CP.rawValue),
        "PAS": UInt8(DPT_MODE_PAS.rawValue), "OL": UInt8(DPT_MODE_OL.rawValue),
        "EHP": UInt8(DPT_MODE_EHP.rawValue),
    ]

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws {
        let spec = text.replacingOccurrences(of: " ", with: "")
        if let mode = spec.stripping(prefix: "mode=") {
            guard let value = Self.modeNames[mode.uppercased()] else {
                throw ParseError(description: "trigger '\(text)': unknown mode '\(mode)' (use INT, CP, PAS, OL or EHP)")
            }
            self = .mode(value)
        } else if let bucket = spec.stripping(prefix: "bucket=") {
            guard let value = Int8(bucket), (-1...15).contains(value) else {
                throw ParseError(description: "trigger '\(text)': bucket must be an integer from -1 to 15")
            }
            self = .bucket(value)
        } else if let rest = spec.stripping(prefix: "no-sleep-ratio") {
            guard let comparison = Comparison.allCases.first(where: { rest.hasPrefix($0.rawValue) }) else {
                throw ParseError(description: "trigger '\(text)': expected no-sleep-ratio>R, >=R, <R or <=R")
            }
            let operands = rest.dropFirst(comparison.rawValue.count).split(separator: "/", omittingEmptySubsequences: false)
            guard let threshold = operands.first.flatMap({ Double($0) }), (0...1).contains(threshold) else {
                throw ParseError(description: "trigger '\(text)': the ratio must be a number from 0 to 1")
            }
            var window = Self.defaultWindow
            if operands.count == 2 {
                guard let n = Int(operands[1]), n > 0 else {
                    throw ParseError(description: "trigger '\(text)': the window after '/' must be a positive count")
                }
                window = n
            } else if operands.count > 2 {
                throw ParseError(description: "trigger '\(text)': expected no-sleep-ratio>R or no-sleep-ratio>R/N")
            }
            self = .noSleepRatio(comparison, threshold: threshold, window: window)
        } else if let count = spec.stripping(prefix: "lost>") {
            guard let value = UInt64(count) else {
                throw ParseError(description: "trigger '\(text)': lost>N needs a whole number")
            }
            self = .lostEvents(above: value)
        } else {
            throw ParseError(description: "trigger '\(text)': unknown condition (use mode=INT, bucket=-1, no-sleep-ratio>0.5[/N] or lost>N)")
        }
    }

    public var description: String {
        switch self {
        case .mode(let mode): "mode=\(Self.modeNames.first { $0.value == mode }?.key ?? String(mode))"
        case .bucket(let bucket): "bucket=\(bucket)"
        case .noSleepRatio(let comparison, let threshold, let window):
            "no-sleep-ratio\(comparison.rawValue)\(threshold)/\(window)"
        case .lostEvents(let above): "lost>\(above)"
        }
    }
}

/// Watches the event stream for any of a set of triggers. Memory is bounded by the largest
/// no-sleep window.
public struct TriggerWatch {
    public let triggers: [Trigger]
    private var recentNoSleep: [Bool]
    private var recentNext = 0
    private var recentNoSleepCount = 0
    private var recentSeen = 0

    public init(_ triggers: [Trigger]) {
        self.triggers = triggers
        let window = triggers.compactMap { trigger -> Int? in
            if case .noSleepRatio(_, _, let window) = trigger { return window }
            return nil
        }.max() ?? 0
        recentNoSleep = Array(repeating: false, count: window)
    }

    /// The trigger this event fires, with a sentence saying why, or nil.
    public mutating func check(_ event: dpt_event, lostTotal: UInt64) -> (trigger: Trigger, why: String)? {
        if event.kind == UInt32(DPT_EV_HYBRID_SLEEP.rawValue), !recentNoSleep.isEmpty {
            let noSleep = event.outcome == UInt8(DPT_SLEEP_NO_SLEEP.rawValue)
            if recentSeen == recentNoSleep.count, recentNoSleep[recentNext] { recentNoSleepCount -= 1 }
            recentNoSleep[recentNext] = noSleep
            if noSleep { recentNoSleepCount += 1 }
            recentNext = (recentNext + 1) % recentNoSleep.count
            recentSeen = min(recentSeen + 1, recentNoSleep.count)
        }
        for trigger in triggers {
            switch trigger {
            case .mode(let mode):
                if event.kind == UInt32(DPT_EV_MODE.rawValue), event.mode_to == mode {
                    return (trigger, "CPU \(event.cpu) entered \(trigger) at \(event.ts_ns) ns")
                }
            case .bucket(let bucket):
                if event.kind == UInt32(DPT_EV_RQ_START.rawValue), event.bucket == bucket {
                    return (trigger, "a request on CPU \(event.cpu) got bucket \(bucket) at \(event.ts_ns) ns")
                }
            case .noSleepRatio(let comparison, let threshold, let window):
                guard event.kind == UInt32(DPT_EV_HYBRID_SLEEP.rawValue) else { continue }
                if let ratio = noSleepRatio(over: window), comparison.holds(ratio, threshold) {
                    return (trigger, "no-sleep ratio over the last \(window) sleeps was \(ratio) at \(event.ts_ns) ns")
                }
            case .lostEvents(let above):
                if lostTotal > above {
                    return (trigger, "\(lostTotal) events lost by \(event.ts_ns) ns")
                }
            }
        }
        return nil
    }

    /// The no-sleep share of the last `window` attempts, once that many were seen.
    private func noSleepRatio(over window: Int) -> Double? {
        guard recentSeen >= window else { return nil }
        if window == recentNoSleep.count { return Double(recentNoSleepCount) / Double(window) }
        var count = 0
        for back in 1...window where recentNoSleep[(recentNext - back + recentNoSleep.count) % recentNoSleep.count] {
            count += 1
        }
        return Double(count) / Double(window)
    }
}

extension String {
    fileprivate func stripping(prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
