import DPASTraceCore
import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceKernel

/// `dpas-trace doctor` run as a process against fake trees (the binary next to the test bundle).
@Suite struct SystemSnapshotCLITests {
    /// `<scratch>/debug/dpas-trace`: the test runner lives in the same directory.
    static var binary: URL? {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        // The runner may sit inside a bundle (…/debug/X.xctest/…); walk up to the build directory.
        while !directory.path.isEmpty, directory.path != "/" {
            let candidate = directory.appendingPathComponent("dpas-trace")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try Child.run(try #require(binary).path, arguments)
        return (result.status, result.stdout, result.stderr)
    }

    @Test func jsonTextAndStrictExitCodes() throws {
        guard Self.binary != nil else {
            print("skipped: no dpas-trace binary beside \(CommandLine.arguments[0]); build the product first (swift build)")
            return
        }
        let system = try FakeSystem.dpasGuest(pollQueues: "0")
        defer { system.remove() }
        let roots = ["--sysfs-root", system.sys, "--proc-root", system.proc]

        let json = try Self.run(["doctor", "--json"] + roots)
        #expect(json.status == 0, "stderr: \(json.stderr)")
        let report = try JSONDecoder().decode(DoctorReport.self, from: Data(json.stdout.utf8))
        #expect(report.kernelRelease == "5.18.0-rc6-dpas-fast26")
        #expect(report.findings.first { $0.id == "poll_queues" }?.severity == .problem)
        #expect(report.devices.map(\.name) == ["nvme0n1"])

        let text = try Self.run(["doctor", "--device", "nvme0n1"] + roots)
        #expect(text.status == 0)
        #expect(text.stdout.contains("  PROBLEM  poll_queues = 0: RWF_HIPRI requests go to interrupt queues"))
        #expect(text.stdout.contains("fix: modprobe -r nvme && modprobe nvme poll_queues=2"))
        #expect(text.stdout.contains("Summary: 1 problem"))

        let strict = try Self.run(["doctor", "--strict"] + roots)
        #expect(strict.status == 2)
    }

    @Test func strictPassesOnAHealthyTreeAndABadRootIsAOneLineError() throws {
        guard Self.binary != nil else {
            print("skipped: no dpas-trace binary beside \(CommandLine.arguments[0]); build the product first (swift build)")
            return
        }
        var knobs = FakeSystem.dpasKnobs
        knobs["pas_d_init"] = "3960"
        let system = try FakeSystem.dpasGuest(knobs: knobs)
        defer { system.remove() }
        let healthy = try Self.run(["doctor", "--strict", "--sysfs-root", system.sys, "--proc-root", system.proc])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(healthy.stdout.contains("nvme0n1: DPAS"))

        let bad = try Self.run(["doctor", "--sysfs-root", system.root.appendingPathComponent("nowhere").path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("is not a directory"))
    }

    @Test func diagnosesTheSnapshotRecordedInADump() throws {
        guard Self.binary != nil else {
            print("skipped: no dpas-trace binary beside \(CommandLine.arguments[0]); build the product first (swift build)")
            return
        }
        var queue = FakeSystem.stockQueue
        queue["wbt_lat_usec"] = nil
        let system = try FakeSystem.dpasGuest(queue: queue)
        defer { system.remove() }
        var settings = SystemSnapshot.collect(sysfsRoot: system.sys, procRoot: system.proc, devices: nil)
        // What the seed's QEMU guest recorded: reading wbt_lat_usec failed with EINVAL.
        settings["block/nvme0n1/queue/wbt_lat_usec"] = "error: Invalid argument"
        let dump = system.root.appendingPathComponent("run.dpt").path
        let header = DumpHeader(kernelRelease: "5.18.0-rc6-dpas-fast26", hostname: "lab-guest",
                                createdRealtimeNs: DumpWriter.realtimeNow(), bootTimeOffsetNs: 0,
                                command: ["dpas-trace", "record"], settings: settings)
        let writer = try DumpWriter(path: dump, header: header)
        try writer.finish()

        let result = try Self.run(["doctor", "--from", dump, "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let report = try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
        let wbt = try #require(report.findings.first { $0.id == "wbt_lat_usec" })
        #expect(wbt.severity == .problem)
        #expect(wbt.title.contains("Invalid argument"))
        #expect(report.devices.first?.completionMode == .dpas)

        let notADump = try Self.run(["doctor", "--from", system.sys + "/module/nvme/parameters/poll_queues"])
        #expect(notADump.status == 1)
        #expect(notADump.stderr.hasPrefix("dpas-trace: "))
        #expect(notADump.stderr.split(separator: "\n").count == 1)
    }
}
