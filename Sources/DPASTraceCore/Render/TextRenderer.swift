import Foundation

/// Renders reports as terminal text. Pure: report in, string out — the live commands use the same
/// functions, so live tables and `report DUMP` look alike.
public enum TextRenderer {
    /// The lines every output ends with: lost events (always) and warnings about the source.
    public static func completenessLines(lostEvents: LostEvents, warnings: [String]) -> [String] {
        var line = "Lost events: \(Format.count(lostEvents.total))"
        if lostEvents.total > 0 {
            let perCPU = lostEvents.perCPU.map { "CPU \($0.cpu): \(Format.count($0.lost))" }.joined(separator: ", ")
            line += " (\(perCPU)) — the recorder dropped these, so the counts above miss them"
        }
        return [line] + warnings.map { "Warning: \($0)" }
    }

    /// Joins lines into the final text, with a trailing newline.
    static func text(_ lines: [String]) -> String { lines.joined(separator: "\n") + "\n" }

    /// "12.345678 s" monotonic seconds with microsecond precision.
    static func seconds(_ ns: UInt64) -> String {
        String(format: "%llu.%06llu s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
    }
}

/// Encodes reports as JSON with sorted keys: stable output that diffs and tests can rely on.
public enum JSONRenderer {
    public static func render<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}
