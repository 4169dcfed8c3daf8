import Foundation

/// A failure of the kernel side, worded for people: what happened and what to do, one line.
public struct KernelError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    public static let privilege = KernelError(
        "tracing needs CAP_BPF and CAP_PERFMON (or root): run dpas-trace with sudo")

    /// The error for a failed libbpf call that returned `-errno` or set errno.
    static func libbpf(_ what: String, code: Int32, hint: String? = nil) -> KernelError {
        let errnoValue = abs(code)
        if errnoValue == EPERM || errnoValue == EACCES, !Privilege.isSufficient {
            return .privilege
        }
        let text = String(cString: strerror(errnoValue))
        return KernelError("\(what): \(text)" + (hint.map { " — \($0)" } ?? ""))
    }
}

/// Whether this process may load and attach tracing BPF programs.
public enum Privilege {
    /// Root, or CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) in the effective set.
    public static var isSufficient: Bool {
        if geteuid() == 0 { return true }
        guard let caps = effectiveCapabilities else { return false }
        let sysAdmin: UInt64 = 1 << 21, perfmon: UInt64 = 1 << 38, bpf: UInt64 = 1 << 39
        return caps & sysAdmin != 0 || (caps & perfmon != 0 && caps & bpf != 0)
    }

    /// Throws the one-line capability error unless `isSufficient`.
    public static func check() throws {
        if !isSufficient { throw KernelError.privilege }
    }

    static var effectiveCapabilities: UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }
}
