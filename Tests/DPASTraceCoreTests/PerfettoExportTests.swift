import CDPASEvents
import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// Exports a known event stream and decodes it with protoc against Perfetto's schema
/// (Fixtures/perfetto_trace.proto): the file must be schema-valid and hold exactly the slices
/// and counters the events imply.
struct PerfettoExportTests {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Fixtures")

    private func sleep(cpu: UInt32, tid: UInt32, armed: UInt64, end: UInt64, requested: UInt64, slept: Bool) -> dpt_event {
        var e = dpt_event()
        e.kind = UInt32(DPT_EV_HYBRID_SLEEP.rawValue)
        e.cpu = cpu
        e.tid = tid
        e.ts_ns = end
        e.sleep_armed_ns = armed
        e.sleep_requested_ns = requested
        e.outcome = UInt8(slept ? DPT_SLEEP_SLEPT.rawValue : DPT_SLEEP_NO_SLEEP.rawValue)
        e.slept_ns = slept ? end - armed : 0
        e.flags = DPT_F_TIMER_FIRED | (slept ? DPT_F_IO_SCHEDULE : DPT_F_FIRED_DURING_ARM)
        return e
    }

    private func modeChange(cpu: UInt32, at ts: UInt64, from: dpt_mode, to: dpt_mode, avgQDx10: UInt32) -> dpt_event {
        var e = dpt_event()
        e.kind = UInt32(DPT_EV_MODE.rawValue)
        e.cpu = cpu
        e.ts_ns = ts
        e.mode_from = UInt8(from.rawValue)
        e.mode_to = UInt8(to.rawValue)
        e.avg_qd_x10 = avgQDx10
        e.flags = DPT_F_DPAS
        return e
    }

    private func decode(_ trace: [UInt8]) throws -> String {
        let file = FileManager.default.temporaryDirectory.appending(path: "dpt-perfetto-\(getpid())-\(UUID().uuidString).pftrace")
        try Data(trace).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let protoc = try Child.run("/usr/bin/protoc",
                                   ["--proto_path=\(Self.fixtures.path)", "--decode=perfetto.protos.Trace", "perfetto_trace.proto"],
                                   stdinPath: file.path, timeout: 120)
        #expect(protoc.status == 0, "protoc rejected the trace (\(protoc.termination)): \(protoc.stderr)")
        return protoc.stdout
    }

    private func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/protoc"),
                   "needs protoc (Debian protobuf-compiler; scripts/install-deps installs it)"))
    func exportIsSchemaValidAndComplete() throws {
        var bytes: [UInt8] = []
        var exporter = PerfettoExporter { bytes.append(contentsOf: $0) }
        // CPU 0: two polling threads, three sleeps; CPU 1: PAS → CP → PAS.
        try exporter.consume(sleep(cpu: 0, tid: 100, armed: 1_000, end: 1_100, requested: 100, slept: false))
        try exporter.consume(sleep(cpu: 0, tid: 101, armed: 1_050, end: 5_010, requested: 3_960, slept: true))
        try exporter.consume(sleep(cpu: 0, tid: 100, armed: 2_000, end: 6_000, requested: 3_960, slept: true))
        try exporter.consume(modeChange(cpu: 1, at: 3_000, from: DPT_MODE_PAS, to: DPT_MODE_CP, avgQDx10: 10))
        try exporter.consume(modeChange(cpu: 1, at: 9_000, from: DPT_MODE_CP, to: DPT_MODE_PAS, avgQDx10: 0))
        try exporter.finish()

        let text = try decode(bytes)
        #expect(occurrences(of: "name: \"slept\"", in: text) == 2)
        #expect(occurrences(of: "name: \"no sleep\"", in: text) == 1)
        // 3 sleep slices + 2 mode slices begin, and each one ends.
        #expect(occurrences(of: "type: TYPE_SLICE_BEGIN", in: text) == 5)
        #expect(occurrences(of: "type: TYPE_SLICE_END", in: text) == 5)
        // requested-sleep counter per sleep, avg-QD counter per decision.
        #expect(occurrences(of: "type: TYPE_COUNTER", in: text) == 5)
        #expect(text.contains("name: \"hybrid sleeps tid 100\""))
        #expect(text.contains("name: \"hybrid sleeps tid 101\""))
        #expect(text.contains("name: \"CPU 0\"") && text.contains("name: \"CPU 1\""))
        #expect(text.contains("name: \"CP\"") && text.contains("name: \"PAS\""))
        #expect(text.contains("double_counter_value: 3960"))
        #expect(text.contains("double_counter_value: 1"))
        #expect(text.contains("timestamp: 1050"))
        #expect(occurrences(of: "sequence_flags: 1", in: text) == 1)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/protoc"),
                   "needs protoc (Debian protobuf-compiler; scripts/install-deps installs it)"))
    func dumpCommandWritesAValidTrace() throws {
        let binary = try CLIOfflineTests.binary().path
        let directory = FileManager.default.temporaryDirectory
        let dump = directory.appending(path: "dpt-perfetto-cli-\(getpid()).dpt").path
        let trace = directory.appending(path: "dpt-perfetto-cli-\(getpid()).pftrace")
        defer { try? FileManager.default.removeItem(atPath: dump); try? FileManager.default.removeItem(at: trace) }
        let writer = try DumpWriter(path: dump, header: DumpHeader(kernelRelease: "test", hostname: "test", createdRealtimeNs: 0,
                                                                   bootTimeOffsetNs: 0, command: ["test"]))
        try writer.append(sleep(cpu: 0, tid: 7, armed: 100, end: 4_200, requested: 3_960, slept: true))
        try writer.append(sleep(cpu: 1, tid: 8, armed: 300, end: 500, requested: 100, slept: false))
        try writer.append(modeChange(cpu: 1, at: 600, from: DPT_MODE_PAS, to: DPT_MODE_OL, avgQDx10: 25))
        try writer.finish()

        let written = try Child.run(binary, ["dump", dump, "--format", "perfetto", "-o", trace.path])
        #expect(written.status == 0, "\(written.termination): \(written.stderr)")
        let text = try decode(Array(try Data(contentsOf: trace)))
        #expect(occurrences(of: "name: \"slept\"", in: text) == 1)
        #expect(occurrences(of: "name: \"no sleep\"", in: text) == 1)
        #expect(text.contains("name: \"OL\""))

        // Without -o the command refuses, rather than writing binary to a terminal.
        let refused = try Child.run(binary, ["dump", dump, "--format", "perfetto"])
        #expect(refused.termination != .exited(0) && !refused.stderr.isEmpty)
    }
}
