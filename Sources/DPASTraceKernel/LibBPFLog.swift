import CLibBPF
import Foundation

/// Keeps libbpf's messages instead of letting libbpf print them to stderr:
/// `--verbose` shows them, otherwise errors are summarized in one line.
public enum LibBPFLog {
    public struct Line: Sendable {
        public var level: Int32
        public var text: String
        /// LIBBPF_WARN is 0, LIBBPF_INFO 1, LIBBPF_DEBUG 2.
        public var isWarning: Bool { level == 0 }
    }

    private static let lock = NSLock()
    /// The newest messages; older ones are dropped, so a long-lived process (the test suite loads
    /// hundreds of sessions) still sees what its latest load said, which the loader's fallbacks read.
    nonisolated(unsafe) private static var lines: [Line] = []
    /// Messages dropped from the front of `lines` so far: marks count every message ever captured.
    nonisolated(unsafe) private static var dropped = 0
    private static let maxLines = 4000

    /// Installs the capture (idempotent). Debug-level messages are dropped: they are per-relocation noise.
    public static func install() {
        dpt_libbpf_capture { level, text in
            guard level < 2, let text else { return }
            LibBPFLog.append(Line(level: level, text: String(cString: text).trimmingCharacters(in: .newlines)))
        }
    }

    static func append(_ line: Line) {
        lock.lock(); defer { lock.unlock() }
        if lines.count >= maxLines {
            let excess = maxLines / 4
            lines.removeFirst(excess)
            dropped += excess
        }
        lines.append(line)
    }

    /// The messages kept (the newest `maxLines` at most).
    public static var captured: [Line] {
        lock.lock(); defer { lock.unlock() }
        return lines
    }

    /// Index to pass to `captured(since:)` to see only what follows.
    public static var mark: Int {
        lock.lock(); defer { lock.unlock() }
        return dropped + lines.count
    }

    /// The messages captured after `mark` that are still kept.
    public static func captured(since mark: Int) -> [Line] {
        lock.lock(); defer { lock.unlock() }
        let start = max(mark - dropped, 0)
        return start < lines.count ? Array(lines[start...]) : []
    }
}
