import DPASTraceTestSupport
import Foundation
import Testing
@testable import DPASTraceCore

/// SIGKILL of a real writer process at random moments: the dump it leaves always reads back
/// up to its last complete chunk. The writer is `dpt-synth` (the real `DumpWriter` fed by the
/// synthetic generator), built next to this test bundle by `swift build --build-tests`.
@Suite struct DumpKillTests {
    static let trials = 40

    private static var writerBinary: String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary may sit inside a .xctest bundle directory.
        for _ in 0..<3 {
            let candidate = directory.appendingPathComponent("dpt-synth").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    @Test func killedWriterLeavesReadableDump() throws {
        guard let binary = Self.writerBinary else {
            print("skipped DumpKillTests: no dpt-synth binary next to the test bundle; run `swift build --build-tests` first")
            return
        }
        let scratch = try DumpScratch()
        var generator = SystemRandomNumberGenerator()
        var outcomes: [String: Int] = [:]
        for trial in 0..<Self.trials {
            let path = scratch.path("killed-\(trial).dpt")
            // Far more events than it can write before the kill: it never finishes on its own.
            let writer = try Child(binary, ["-o", path, "--events", "200000000"], stdout: .discard, stderr: .discard)
            usleep(UInt32.random(in: 0...400_000, using: &generator))
            kill(writer.pid, SIGKILL)
            let ended = writer.wait(timeout: 60)
            #expect(ended == .signaled(SIGKILL), "trial \(trial): the writer must have been killed, but: \(ended)")

            guard FileManager.default.fileExists(atPath: path) else {
                outcomes["killed before creating the file", default: 0] += 1
                continue
            }
            let reader: DumpReader
            do {
                reader = try DumpReader(path: path)
            } catch let error as DumpError {
                // Only possible when killed before the header's single write completed.
                #expect(error.reason.hasPrefix("empty file") || error.reason.hasPrefix("truncated dump"), "trial \(trial): \(error)")
                outcomes["killed before the header was written", default: 0] += 1
                continue
            }
            var unknownKinds = 0
            let result = try reader.forEachEvent { event in
                if event.eventKind == nil { unknownKinds += 1 }
            }
            #expect(result.trailer == nil, "trial \(trial): a killed writer cannot have finished")
            #expect(unknownKinds == 0, "trial \(trial)")
            // dpt-synth appends in batches of 4096 into 4096-event chunks.
            #expect(result.events % 4096 == 0, "trial \(trial): \(result.events) events")
            if let damage = result.damage {
                #expect(damage.reason.hasPrefix("truncated"), "trial \(trial): \(damage.reason)")
                #expect(damage.offset == result.bytes, "trial \(trial)")
                outcomes["cut inside a chunk", default: 0] += 1
            } else {
                outcomes["cut at a chunk boundary", default: 0] += 1
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        print("DumpKillTests: \(Self.trials) SIGKILLs: \(outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))")
    }
}
