import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

/// `dpas-trace doctor`: reads the queue, module and kernel settings that decide which polled-I/O
/// completion path runs and says what is wrong, with the fix. Loads no BPF.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the settings that decide the polled-I/O path (poll_queues, io_poll_delay, WBT, DPAS knobs, hooks) and name the fixes.",
        discussion: """
        Needs no BPF and works unprivileged where sysfs allows. Exit status: 0 when the check ran \
        (even with problems found); with --strict, 2 when at least one problem was found; 1 when \
        --from names an unreadable dump; 64 on a usage error.
        """
    )

    @Option(name: .long, help: ArgumentHelp("Block device to check, e.g. nvme0n1 (default: every nvme*, else every non-virtual device).", valueName: "name"))
    var device: String?

    @Flag(name: .long, help: "Print the report as JSON (keys documented in docs/doctor.md).")
    var json = false

    @Flag(name: .long, help: "Exit with status 2 when a problem is found.")
    var strict = false

    @Option(name: .long, help: ArgumentHelp("Read sysfs from this directory instead of /sys (for tests and saved trees).", valueName: "dir"))
    var sysfsRoot = "/sys"

    @Option(name: .long, help: ArgumentHelp("Read procfs from this directory instead of /proc.", valueName: "dir"))
    var procRoot = "/proc"

    @Option(name: .long, help: ArgumentHelp("Diagnose the settings recorded in this dump's header instead of this machine.", valueName: "dump"))
    var from: String?

    func validate() throws {
        if from != nil { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: sysfsRoot, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--sysfs-root \(sysfsRoot) is not a directory: pass the root of a sysfs tree, e.g. /sys.")
        }
    }

    func run() throws {
        let settings = try from.map(Self.recordedSettings) ?? SystemSnapshot.collect(
            sysfsRoot: sysfsRoot, procRoot: procRoot, devices: device.map { [$0] })
        // The collector may have mapped a partition to its disk: diagnose what it collected.
        let collected = settings[SnapshotKeys.snapshotDevices].flatMap { $0.isEmpty || $0.contains(",") ? nil : $0 }
        let report = Doctor.diagnose(settings: settings, device: device.map { from == nil ? (collected ?? $0) : $0 })
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(DoctorTextRenderer.render(report, note: settings[SnapshotKeys.snapshotNote]), terminator: "")
        }
        if strict && report.hasProblems { throw ExitCode(2) }
    }

    /// The snapshot stored in a dump header (what the machine looked like when it was recorded).
    static func recordedSettings(path: String) throws -> [String: String] {
        let header: DumpHeader
        do {
            header = try DumpReader(path: path).header
        } catch {
            FileHandle.standardError.write(Data("dpas-trace: \(error)\n".utf8))
            throw ExitCode(1)
        }
        var settings = header.settings
        if settings[SnapshotKeys.kernelRelease] == nil { settings[SnapshotKeys.kernelRelease] = header.kernelRelease }
        return settings
    }
}
