import Foundation

/// What a dump says about the recording it holds, stored as JSON after the binary prefix.
/// Format version, event layout version and event size live in the prefix and are exposed by `DumpReader`.
public struct DumpHeader: Codable, Sendable, Equatable {
    /// `DPASTraceVersion.string` of the recorder.
    public var toolVersion: String
    /// `uname -r` of the traced kernel.
    public var kernelRelease: String
    public var hostname: String
    /// Unix time (ns) when recording started.
    public var createdRealtimeNs: UInt64
    /// Realtime − monotonic at start: add to an event's `ts_ns` to get unix time in ns.
    public var bootTimeOffsetNs: Int64
    /// argv of the recorder.
    public var command: [String]
    /// Device filter, e.g. "nvme0n1"; nil = all devices.
    public var device: String?
    /// Hooks and how they were attached.
    public var probePlan: [ProbePlanEntry]
    /// sysfs/module settings at start, keyed by path relative to /sys
    /// (e.g. "block/nvme0n1/queue/io_poll_delay") plus "kernel/release", "kernel/btf";
    /// value as read, or "error: <reason>".
    public var settings: [String: String]
    /// Flight recorder: why this dump was written; nil for an ordinary recording.
    public var reason: String?

    public init(
        toolVersion: String = DPASTraceVersion.string, kernelRelease: String, hostname: String,
        createdRealtimeNs: UInt64, bootTimeOffsetNs: Int64, command: [String], device: String? = nil,
        probePlan: [ProbePlanEntry] = [], settings: [String: String] = [:], reason: String? = nil
    ) {
        self.toolVersion = toolVersion
        self.kernelRelease = kernelRelease
        self.hostname = hostname
        self.createdRealtimeNs = createdRealtimeNs
        self.bootTimeOffsetNs = bootTimeOffsetNs
        self.command = command
        self.device = device
        self.probePlan = probePlan
        self.settings = settings
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case toolVersion = "tool_version", kernelRelease = "kernel_release", hostname
        case createdRealtimeNs = "created_realtime_ns", bootTimeOffsetNs = "boot_time_offset_ns"
        case command, device, probePlan = "probe_plan", settings, reason
    }

    /// Wall-clock time (unix ns) of a monotonic event timestamp from this recording.
    public func realtimeNs(ofMonotonic ts: UInt64) -> Int64 {
        Int64(bitPattern: ts) &+ bootTimeOffsetNs
    }
}
