import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// The analyses stream: memory must not grow with the number of events.
@Suite struct AnalysisMemoryTests {
    /// Event `i` of a varied stream: 40 distinct requested sleeps (log2 rows), thousands of request
    /// sizes (bounded size lists), a mode transition every 1,000 events (bounded timelines), 4 CPUs.
    static func event(_ i: Int) -> TraceEvent {
        let ts = UInt64(i) * 100
        let cpu = UInt32(i % 4)
        switch i % 5 {
        case 0, 1:
            let requested = UInt64(100 + (i / 5) % 40 * 97)
            let slept = i % 3 == 0
            return .hybridSleep(ts: ts, cpu: cpu, pid: 1, tid: 1, requestedNs: requested, armedNs: ts, expiresNs: ts + requested,
                                firedNs: ts + requested, sleptNs: slept ? requested + UInt64(i % 1_000) : 0,
                                outcome: slept ? .slept : .noSleep)
        case 2, 3:
            let sectors = UInt32(1 + (i / 5) % 5_000)
            return .rqStart(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: UInt64(i), dev: 0, nrSectors: sectors,
                            statsSectors: i % 7 == 0 ? sectors : 0, ddir: UInt8(i % 2), polled: i % 3 != 0,
                            queueStats: i % 7 == 0, mode: [DPASMode.pas, .cp, .ol][(i / 1_000) % 3])
        default:
            if i % 1_000 == 4 {
                let modes: [DPASMode] = [.pas, .cp, .ol]
                return .modeChange(ts: ts, cpu: cpu, from: modes[(i / 1_000 + 2) % 3], to: modes[(i / 1_000) % 3],
                                   avgQDx10: 10, tf: 1, windowIOs: 100)
            }
            return .rqDone(ts: ts, cpu: cpu, pid: 1, tid: 1, rq: UInt64(i), dev: 0, nrSectors: 8, statsSectors: 0, ddir: 0,
                           polled: true, queueStats: false, latencyNs: 20_000)
        }
    }

    /// The accumulators' own state stays bounded however varied the stream: size lists, timelines
    /// and row maps are capped. (Resident memory is measured in a child process below: this test
    /// process runs other suites in parallel, so its own RSS says nothing.)
    @Test func stateStaysBoundedOverAVariedStream() throws {
        var analyses = TraceAnalyses(sleepPerCPU: true)
        for i in 0..<3_000_000 { analyses.add(Self.event(i)) }
        let report = analyses.report()
        #expect(report.sleepRatio.totals.attempts == 1_200_000)
        #expect(report.sleepRatio.rowKind == .log2)
        #expect(report.buckets.totals.requests == 1_200_000)
        #expect(report.buckets.rows.allSatisfy { $0.sizes.count <= 4 })
        #expect(report.modes.totals.transitions == 3_000)
        #expect(report.modes.cpus.allSatisfy { $0.firstTransitions.count <= 32 && $0.lastTransitions.count <= 32 })
    }

    /// Peak resident memory of `dpas-trace report` (a child process, so nothing else runs in it) is
    /// the same for a dump of 1 M events and one of 8 M: reading and analysing stream.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/time"),
                   "needs GNU time (Debian: time; scripts/install-deps installs it)"))
    func reportMemoryDoesNotGrowWithTheDump() throws {
        let binaries = try CLIOfflineTests.binary().deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory
        var peaks: [Int] = []
        for events in [1_000_000, 8_000_000] {
            let dump = directory.appending(path: "dpt-memory-\(getpid())-\(events).dpt").path
            defer { unlink(dump) }
            let synth = try Child.run(binaries.appending(path: "dpt-synth").path,
                                      ["-o", dump, "--events", "\(events)", "--cpus", "4"])
            #expect(synth.status == 0, "\(synth.termination): \(synth.stderr)")
            peaks.append(try Self.peakResidentKiB(binaries.appending(path: "dpas-trace").path,
                                                  ["report", dump, "--json", "--per-cpu"]))
        }
        // 8× the events must not cost memory: 16 MiB of slack covers allocator noise
        // (keeping the extra 7 M events would take 900 MB; one counter each, 56 MB).
        #expect(peaks[1] - peaks[0] < 16 << 10,
                "peak resident memory of report: \(peaks[0] >> 10) MiB for 1 M events, \(peaks[1] >> 10) MiB for 8 M")
    }

    /// Peak RSS (KiB) of a program, measured by GNU time. Not wait4's rusage of a child spawned
    /// here: posix_spawn shares this (large) test process's memory until exec, and the kernel
    /// carries that memory's high-water mark into the child's ru_maxrss. GNU time forks from its
    /// own small image instead.
    static func peakResidentKiB(_ path: String, _ arguments: [String]) throws -> Int {
        let measurement = FileManager.default.temporaryDirectory.appending(path: "dpt-maxrss-\(getpid())").path
        defer { unlink(measurement) }
        let run = try Child.run("/usr/bin/time", ["-f", "%M", "-o", measurement, path] + arguments)
        #expect(run.status == 0, "\(path) \(arguments): \(run.termination): \(run.stderr.suffix(500))")
        let text = try String(contentsOfFile: measurement, encoding: .utf8)
        return try #require(text.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) },
                            "GNU time wrote no peak RSS: \(text)")
    }
}
