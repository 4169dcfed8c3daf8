import ArgumentParser
import DPASTraceCore
import Foundation

/// The offline (`--from DUMP`) path shared by sleep-ratio, buckets, modes and report:
/// read the dump once, analyse it, and turn dump errors into one line on stderr and exit status 1.
enum Offline {
    /// Analyses `path`; on a damaged or unfinished dump prints each warning as one line on stderr
    /// (the analysis of everything before the damage is still returned and printed).
    static func analyse(path: String, sleepPerCPU: Bool = false) throws -> DumpAnalysis {
        let analysis: DumpAnalysis
        do {
            analysis = try DumpAnalysis.run(path: path, sleepPerCPU: sleepPerCPU)
        } catch let error as DumpError {
            throw Offline.fail(error.description)
        }
        Offline.warnAboutSource(analysis.read, path: path)
        return analysis
    }

    /// Prints `message` on stderr as `dpas-trace: message` and returns the exit code to throw (1).
    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("dpas-trace: \(message)\n".utf8))
        return ExitCode(1)
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("dpas-trace: warning: \(message)\n".utf8))
    }

    /// One line on stderr about an incomplete dump: the damage when there is some (it implies the
    /// missing trailer), otherwise the other warnings (no trailer, skipped chunks).
    /// The full list also goes into every rendered report.
    static func warnAboutSource(_ read: DumpReadResult, path: String) {
        if let damage = read.damage { warn(damage.message(path: path)) } else { read.warnings(path: path).forEach(warn) }
    }

    /// An informational line on stderr (keeps stdout machine-readable).
    static func note(_ message: String) {
        FileHandle.standardError.write(Data("dpas-trace: \(message)\n".utf8))
    }

    /// Writes a rendered report (text or JSON) to stdout.
    static func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        try JSONRenderer.render(value)
    }
}

/// Buffers writes to stdout or a file into large blocks: `dump` prints millions of short lines.
final class OutputBuffer {
    private var buffer: [UInt8] = []
    private let limit = 1 << 16
    private let fileDescriptor: Int32
    /// errno of the first failed write; later output is dropped and the command reports it.
    private(set) var writeError: Int32?

    init(fileDescriptor: Int32 = STDOUT_FILENO) {
        self.fileDescriptor = fileDescriptor
        buffer.reserveCapacity(limit + 4096)
    }

    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= limit { flush() }
    }

    func bytes(_ data: [UInt8]) {
        buffer.append(contentsOf: data)
        if buffer.count >= limit { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count && writeError == nil {
                let written = write(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { writeError = errno }
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}
