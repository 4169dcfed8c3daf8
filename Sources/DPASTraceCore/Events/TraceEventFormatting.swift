// Text, CSV and JSON forms of one event, used by `dpas-trace dump --format text|csv|json`.
// Keys and column names are stable snake_case and documented in docs/dump-format.md.

import Foundation

/// One field value in an event's JSON/CSV form.
public enum EventFieldValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case string(String)
    case bool(Bool)

    /// JSON text of the value.
    public var jsonText: String {
        switch self {
        case .uint(let value): String(value)
        case .int(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .string(let value): JSONText.quoted(value)
        }
    }

    /// CSV cell: numbers as digits, Booleans as 0/1, strings quoted only when they need it.
    public var csvText: String {
        switch self {
        case .uint(let value): String(value)
        case .int(let value): String(value)
        case .bool(let value): value ? "1" : "0"
        case .string(let value): CSVText.cell(value)
        }
    }
}

/// A minimal JSON writer for ordered key lists (JSONSerialization would reorder keys).
public enum JSONText {
    /// `value` as a JSON string literal with the required escapes.
    public static func quoted(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20:
                let hex = String(s.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `{"k":v,...}` in the given key order, on one line.
    public static func object(_ fields: [(key: String, value: EventFieldValue)]) -> String {
        "{" + fields.map { quoted($0.key) + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
    }
}

/// CSV quoting per RFC 4180.
public enum CSVText {
    public static func cell(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension TraceEvent {
    /// The kind's stable name; "kind_N" for a kind this build does not know.
    public var kindName: String { eventKind?.name ?? "kind_\(kind)" }

    /// Monotonic time as "seconds.nanoseconds", e.g. "1234.000056789".
    public var timestampText: String {
        let nanos = String(ts_ns % 1_000_000_000)
        return "\(ts_ns / 1_000_000_000)." + String(repeating: "0", count: 9 - nanos.count) + nanos
    }

    private var directionName: String { ddir == 0 ? "read" : ddir == 1 ? "write" : "ddir\(ddir)" }

    /// One line of text: time, CPU, pid/tid, kind, then the fields that matter for that kind.
    public func describe() -> String {
        var line = "\(timestampText) cpu \(cpu) pid \(pid)/\(tid) \(kindName)"
        switch eventKind {
        case .rqStart, .rqDone:
            line += " dev \(deviceName) rq 0x\(String(rq, radix: 16)) \(directionName) sectors \(nr_sectors)"
            line += " stats_sectors \(stats_sectors) bucket \(bucket) (by sectors \(bucket_by_sectors))"
            if eventKind == .rqDone { line += " latency \(io_latency_ns) ns" }
            if hasDPASState { line += " mode \(modeTo.name)" }
        case .hybridSleep:
            line += " requested \(sleep_requested_ns) ns \(sleepOutcome.name) slept \(slept_ns) ns"
            line += " armed \(sleep_armed_ns) expires \(timer_expires_ns)"
            line += timer_fired_ns != 0 ? " fired \(timer_fired_ns)" : timerFired ? " fired (not timed)" : " never fired"
        case .mode:
            line += " \(modeFrom.name) -> \(modeTo.name) avg_qd \(avg_qd_x10 / 10).\(avg_qd_x10 % 10)"
            line += " tf \(tf) window_ios \(window_ios)"
        case .pasState:
            let (newest, older) = pasLastResults
            line += " bucket \(bucket) dur \(pas_dur_ns) ns last \(newest.name),\(older.name) mode \(modeTo.name)"
        case nil:
            break
        }
        let flagNames = eventFlags.names
        if !flagNames.isEmpty { line += " [\(flagNames)]" }
        return line
    }

    /// Every field, in CSV column order; the same for every kind so rows line up.
    public var allFields: [(key: String, value: EventFieldValue)] {
        [
            ("ts_ns", .uint(ts_ns)), ("cpu", .uint(UInt64(cpu))), ("pid", .uint(UInt64(pid))),
            ("tid", .uint(UInt64(tid))), ("kind", .string(kindName)), ("flags", .string(eventFlags.names)),
            ("rq", .uint(rq)), ("dev", .string(deviceName)),
            ("nr_sectors", .uint(UInt64(nr_sectors))), ("stats_sectors", .uint(UInt64(stats_sectors))),
            ("ddir", .uint(UInt64(ddir))), ("bucket", .int(Int64(bucket))),
            ("bucket_by_sectors", .int(Int64(bucket_by_sectors))),
            ("outcome", .string(sleepOutcome.name)),
            ("mode_from", .string(modeFrom.name)), ("mode_to", .string(modeTo.name)),
            ("pas_last_0", .string(pasLastResults.0.name)), ("pas_last_1", .string(pasLastResults.1.name)),
            ("sleep_requested_ns", .uint(sleep_requested_ns)), ("sleep_armed_ns", .uint(sleep_armed_ns)),
            ("timer_expires_ns", .uint(timer_expires_ns)), ("timer_fired_ns", .uint(timer_fired_ns)),
            ("slept_ns", .uint(slept_ns)), ("io_latency_ns", .uint(io_latency_ns)),
            ("pas_dur_ns", .uint(pas_dur_ns)), ("avg_qd_x10", .uint(UInt64(avg_qd_x10))),
            ("tf", .uint(UInt64(tf))), ("window_ios", .uint(UInt64(window_ios))),
        ]
    }

    /// CSV header line matching `csvRow` (no trailing newline).
    public static let csvHeader: String = TraceEvent().allFields.map(\.key).joined(separator: ",")

    /// One CSV row with every field (no trailing newline).
    public var csvRow: String { allFields.map(\.value.csvText).joined(separator: ",") }

    /// The JSON object form: common fields, then the fields that matter for this kind
    /// (every field for a kind this build does not know).
    public var jsonObject: [(key: String, value: EventFieldValue)] {
        var fields: [(key: String, value: EventFieldValue)] = [
            ("ts_ns", .uint(ts_ns)), ("kind", .string(kindName)), ("cpu", .uint(UInt64(cpu))),
            ("pid", .uint(UInt64(pid))), ("tid", .uint(UInt64(tid))),
        ]
        switch eventKind {
        case .rqStart, .rqDone:
            fields += [
                ("rq", .uint(rq)), ("dev", .string(deviceName)), ("ddir", .uint(UInt64(ddir))),
                ("nr_sectors", .uint(UInt64(nr_sectors))), ("stats_sectors", .uint(UInt64(stats_sectors))),
                ("bucket", .int(Int64(bucket))), ("bucket_by_sectors", .int(Int64(bucket_by_sectors))),
                ("polled", .bool(isPolled)), ("queue_stats", .bool(queueStatsSet)),
                ("mode", .string(modeTo.name)),
            ]
            if eventKind == .rqDone { fields.append(("io_latency_ns", .uint(io_latency_ns))) }
        case .hybridSleep:
            fields += [
                ("rq", .uint(rq)), ("outcome", .string(sleepOutcome.name)),
                ("sleep_requested_ns", .uint(sleep_requested_ns)), ("sleep_armed_ns", .uint(sleep_armed_ns)),
                ("timer_expires_ns", .uint(timer_expires_ns)), ("timer_fired_ns", .uint(timer_fired_ns)),
                ("slept_ns", .uint(slept_ns)),
                ("io_schedule", .bool(ioScheduleCalled)), ("timer_fired", .bool(timerFired)),
                ("fired_during_arm", .bool(firedDuringArm)), ("cancelled", .bool(cancelled)),
                ("rearmed", .bool(rearmed)), ("wakeup_unseen", .bool(wakeupUnseen)),
                ("switch_out_unseen", .bool(switchOutUnseen)), ("expiry_unseen", .bool(expiryUnseen)),
                ("resolved_in_io_schedule", .bool(resolvedInIOSchedule)),
            ]
        case .mode:
            fields += [
                ("mode_from", .string(modeFrom.name)), ("mode_to", .string(modeTo.name)),
                ("avg_qd_x10", .uint(UInt64(avg_qd_x10))), ("tf", .uint(UInt64(tf))),
                ("window_ios", .uint(UInt64(window_ios))),
            ]
        case .pasState:
            fields += [
                ("dev", .string(deviceName)), ("bucket", .int(Int64(bucket))), ("pas_dur_ns", .uint(pas_dur_ns)),
                ("pas_last_0", .string(pasLastResults.0.name)), ("pas_last_1", .string(pasLastResults.1.name)),
                ("pas_timer_floor", .bool(pasTimerFloor)), ("mode", .string(modeTo.name)),
            ]
        case nil:
            return allFields
        }
        fields.append(("flags", .string(eventFlags.names)))
        return fields
    }

    /// `jsonObject` as one line of JSON.
    public var jsonText: String { JSONText.object(jsonObject) }
}
