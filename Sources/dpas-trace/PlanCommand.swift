import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// `dpas-trace plan`: which hooks this kernel offers, what was chosen, what is missing and what it costs.
/// The plan is proven, not guessed: the programs are loaded and attached, then detached again.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the probe plan for this kernel: hook, attach type, target, status and the cost of what is missing."
    )

    @Flag(name: .long, help: "Print JSON: the probe plan entries as stored in dumps.")
    var json = false

    @Flag(name: .long, help: "Also print libbpf's messages.")
    var verbose = false

    @OptionGroup var attach: AttachTypeOptions

    func run() throws {
        let session: TraceSession
        do {
            var options = TraceSession.Options()
            options.avoidedAttachTypes = Set(attach.avoid)
            options.measureOffCPUTime = attach.offCPUTime
            session = try TraceSession(options: options)
        } catch let error as KernelError {
            if verbose { LibBPFLog.captured.forEach { Live.stderr("libbpf: \($0.text)") } }
            throw Offline.fail(error.message)
        }
        let entries = session.plan.entries
        let facts = session.facts
        session.close()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(PlanJSON(kernelRelease: facts.release, btf: facts.hasBTF, kprobes: facts.hasKprobes,
                                                   hybridPolling: facts.hasHybridPolling, dpas: facts.isDPASKernel,
                                                   probePlan: entries))
            Offline.emit(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            Offline.emit(PlanText.render(entries, facts: facts) + "\n")
        }
        if verbose { session.libbpfMessages.forEach { Live.stderr("libbpf: \($0.text)") } }
    }

    struct PlanJSON: Encodable {
        var kernelRelease: String
        var btf: Bool
        var kprobes: Bool
        var hybridPolling: Bool
        var dpas: Bool
        var probePlan: [ProbePlanEntry]
        enum CodingKeys: String, CodingKey {
            case kernelRelease = "kernel_release", btf, kprobes, hybridPolling = "hybrid_polling", dpas
            case probePlan = "probe_plan"
        }
    }
}
