/// What `dpas-trace doctor` found: findings grouped by topic, the completion mode each device's
/// settings amount to, and a one-line summary. The JSON form (snake_case keys) is documented in
/// docs/doctor.md and is stable: add keys, never rename them.
public struct DoctorReport: Codable, Sendable, Equatable {
    /// Bumped only when a key changes meaning or disappears.
    public var schemaVersion: Int
    /// `uname -r` as recorded in the snapshot, nil when the snapshot lacks it.
    public var kernelRelease: String?
    public var devices: [DoctorDevice]
    /// In rule order: kernel, NVMe driver, each device's queue and DPAS groups, probes.
    public var findings: [DoctorFinding]
    public var counts: DoctorCounts
    /// One line, e.g. "2 problems, 3 warnings, 9 OK — nvme0n1: CP; first problem: …".
    public var summary: String

    public static let currentSchemaVersion = 1

    public init(kernelRelease: String?, devices: [DoctorDevice], findings: [DoctorFinding]) {
        self.schemaVersion = Self.currentSchemaVersion
        self.kernelRelease = kernelRelease
        self.devices = devices
        self.findings = findings
        self.counts = DoctorCounts(findings)
        self.summary = Self.summarize(devices: devices, findings: findings, counts: counts)
    }

    public var hasProblems: Bool { counts.problem > 0 }

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case kernelRelease = "kernel_release"
        case devices, findings, counts, summary
    }

    private static func summarize(devices: [DoctorDevice], findings: [DoctorFinding], counts: DoctorCounts) -> String {
        func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        var line = "\(plural(counts.problem, "problem")), \(plural(counts.warning, "warning")), \(counts.ok) OK"
        if !devices.isEmpty {
            line += " — " + devices.map { "\($0.name): \($0.completionMode.rawValue)" }.joined(separator: ", ")
        }
        if let first = findings.first(where: { $0.severity == .problem }) {
            line += "; first problem: \(first.title)"
        } else {
            line += "; no problems found"
        }
        return line
    }
}

public enum DoctorSeverity: String, Codable, Sendable, CaseIterable {
    case ok, warning, problem

    /// The marker the text renderer prints.
    public var marker: String {
        switch self {
        case .ok: "OK"
        case .warning: "WARN"
        case .problem: "PROBLEM"
        }
    }
}

public struct DoctorFinding: Codable, Sendable, Equatable {
    /// Stable identifier of the rule, e.g. `poll_queues`, `io_poll_delay`, `hook_hybrid_sleep`.
    public var id: String
    /// Heading it is printed under, e.g. "Kernel", "Queue nvme0n1", "DPAS nvme0n1", "Probe hooks".
    public var group: String
    /// The device it concerns, nil for machine-wide findings.
    public var device: String?
    public var severity: DoctorSeverity
    public var title: String
    /// One sentence: why it matters.
    public var detail: String
    /// What to do: a command where possible; nil when nothing needs doing.
    public var fix: String?

    public init(id: String, group: String, device: String? = nil, severity: DoctorSeverity,
                title: String, detail: String, fix: String? = nil) {
        self.id = id
        self.group = group
        self.device = device
        self.severity = severity
        self.title = title
        self.detail = detail
        self.fix = fix
    }
}

public struct DoctorCounts: Codable, Sendable, Equatable {
    public var ok: Int
    public var warning: Int
    public var problem: Int

    init(_ findings: [DoctorFinding]) {
        ok = findings.filter { $0.severity == .ok }.count
        warning = findings.filter { $0.severity == .warning }.count
        problem = findings.filter { $0.severity == .problem }.count
    }
}

/// The completion path RWF_HIPRI (fio `--hipri`) I/O takes under a device's settings, named as the
/// DPAS artifact names its configurations.
public enum CompletionMode: String, Codable, Sendable, CaseIterable {
    /// Interrupt completion: no poll queues or polling off.
    case int = "INT"
    /// Classic polling: io_poll_delay = -1.
    case cp = "CP"
    /// Linux hybrid polling: io_poll_delay = 0 (adaptive) or > 0 (fixed µs).
    case lhp = "LHP"
    /// Hybrid polling with DPAS's ehp_enabled = 1.
    case ehp = "EHP"
    /// Hybrid polling with pas_enabled = 1 and switch_enabled = 0.
    case pas = "PAS"
    /// PAS plus switch_enabled = 1: the mode switches per CPU at run time.
    case dpas = "DPAS"
    /// The settings could not be read, or combine knobs the artifact never combines.
    case unknown
}

public struct DoctorDevice: Codable, Sendable, Equatable {
    public var name: String
    public var completionMode: CompletionMode
    /// Why the settings amount to that mode, in one sentence.
    public var modeReason: String
    /// Every DPAS knob found for the device, with its value (empty on a stock kernel).
    public var dpasKnobs: [String: String]

    enum CodingKeys: String, CodingKey {
        case name
        case completionMode = "completion_mode"
        case modeReason = "mode_reason"
        case dpasKnobs = "dpas_knobs"
    }
}
