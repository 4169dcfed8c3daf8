/// One line of the probe plan: a hook the analyses need and how (or whether) it was attached.
/// The kernel side fills these when it chooses attach points; every dump stores the plan it ran with,
/// so a report can say what the recording could and could not see.
public struct ProbePlanEntry: Codable, Sendable, Equatable {
    /// What we need to observe, e.g. "request start", "hybrid sleep: sleeper armed".
    public var hook: String
    /// Kernel symbol or tracepoint, e.g. "blk_mq_start_request", "block:block_rq_issue".
    public var target: String
    /// "fentry", "kprobe", "kretprobe", "tp_btf", "tracepoint" or "none".
    public var attachType: String
    public var status: Status
    /// Why this choice, or why it is unavailable, e.g. "kprobes not configured (CONFIG_KPROBES off)".
    public var detail: String
    /// What the analyses lose without it; nil when nothing is lost.
    public var cost: String?

    public enum Status: String, Codable, Sendable { case attached, unavailable, failed }

    public init(hook: String, target: String, attachType: String, status: Status, detail: String, cost: String? = nil) {
        self.hook = hook
        self.target = target
        self.attachType = attachType
        self.status = status
        self.detail = detail
        self.cost = cost
    }

    // snake_case keys: the dump header is read by people and by other tools.
    enum CodingKeys: String, CodingKey {
        case hook, target, attachType = "attach_type", status, detail, cost
    }
}
