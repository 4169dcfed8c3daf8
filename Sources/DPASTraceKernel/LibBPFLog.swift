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
    nonisolated(unsafe) private static var lines: [Line] = []
    private static let maxLines = 4000

    /// Installs the capture (idempotent). Debug-level messages are dropped: they are per-relocation noise.
    public static func install() {
        dpt_libbpf_capture { level, text in
            guard level < 2, let text else { return }
            let line = String(cString: text).trimmingCharacters(in: .newlines)
            LibBPFLog.lock.lock()
            if LibBPFLog.lines.count < LibBPFLog.maxLines { LibBPFLog.lines.append(Line(level: level, text: line)) }
            LibBPFLog.lock.unlock()
        }
    }

    /// Messages captured so far.
    public static var captured: [Line] {
        lock.lock(); defer { lock.unlock() }
        return lines
    }

    /// Index to pass to `captured(since:)` to see only what follows.
    public static var mark: Int {
        lock.lock(); defer { lock.unlock() }
        return lines.count
    }

    public static func captured(since mark: Int) -> [Line] {
        lock.lock(); defer { lock.unlock() }
        return mark < lines.count ? Array(lines[mark...]) : []
    }
}
