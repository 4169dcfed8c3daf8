import CDPASEvents
import Foundation
import Testing
@testable import DPASTraceCore

struct FlightRecorderTests {
    private func event(kind: dpt_event_kind, ts: UInt64) -> dpt_event {
        var e = dpt_event()
        e.kind = UInt32(kind.rawValue)
        e.ts_ns = ts
        return e
    }

    private func sleepAttempt(ts: UInt64, slept: Bool) -> dpt_event {
        var e = event(kind: DPT_EV_HYBRID_SLEEP, ts: ts)
        e.outcome = UInt8(slept ? DPT_SLEEP_SLEPT.rawValue : DPT_SLEEP_NO_SLEEP.rawValue)
        return e
    }

    private func ordered(_ ring: EventRing) -> [UInt64] {
        var out: [UInt64] = []
        ring.withOrderedRuns { run in out.append(contentsOf: run.map(\.ts_ns)) }
        return out
    }

    @Test func ringKeepsTheNewestEventsInOrder() {
        var ring = EventRing(capacity: 4)
        for ts in 1...3 as ClosedRange<UInt64> { ring.append(event(kind: DPT_EV_RQ_START, ts: ts)) }
        #expect(ordered(ring) == [1, 2, 3])
        #expect(ring.overwritten == 0)
        for ts in 4...10 as ClosedRange<UInt64> { ring.append(event(kind: DPT_EV_RQ_START, ts: ts)) }
        #expect(ordered(ring) == [7, 8, 9, 10])
        #expect(ring.count == 4)
        #expect(ring.overwritten == 6)
    }

    @Test func ringSizedInBytes() {
        #expect(EventRing(bytes: 64 << 20).capacity == (64 << 20) / 128)
        #expect(EventRing(bytes: 1).capacity == 1)
        #expect(parseByteSize("64M") == 64 << 20)
        #expect(parseByteSize("512k") == 512 << 10)
        #expect(parseByteSize("1G") == 1 << 30)
        #expect(parseByteSize("4096") == 4096)
        #expect(parseByteSize("12X") == nil)
        #expect(parseByteSize("") == nil)
    }

    /// A million events through a small ring: memory stays where the ring put it.
    @Test func ringMemoryIsBounded() {
        var ring = EventRing(capacity: 10_000)
        for ts in 0..<1_000_000 as Range<UInt64> { ring.append(event(kind: DPT_EV_RQ_START, ts: ts)) }
        #expect(ring.count == 10_000)
        #expect(ring.overwritten == 990_000)
        #expect(ordered(ring).first == 990_000)
    }

    @Test func parsesTheGrammar() throws {
        #expect(try Trigger(parsing: "mode=INT") == .mode(UInt8(DPT_MODE_INT.rawValue)))
        #expect(try Trigger(parsing: "mode=ol") == .mode(UInt8(DPT_MODE_OL.rawValue)))
        #expect(try Trigger(parsing: "bucket=-1") == .bucket(-1))
        #expect(try Trigger(parsing: "no-sleep-ratio>0.5") == .noSleepRatio(.greater, threshold: 0.5, window: 1000))
        #expect(try Trigger(parsing: "no-sleep-ratio>=0.9/200") == .noSleepRatio(.greaterOrEqual, threshold: 0.9, window: 200))
        #expect(try Trigger(parsing: "lost>0") == .lostEvents(above: 0))
        for bad in ["mode=FAST", "bucket=16", "bucket=x", "no-sleep-ratio=0.5", "no-sleep-ratio>2", "no-sleep-ratio>0.5/0", "sleep>1", ""] {
            #expect(throws: Trigger.ParseError.self, "\(bad) should not parse") { try Trigger(parsing: bad) }
        }
        #expect(try Trigger(parsing: "no-sleep-ratio>0.5/10").description == "no-sleep-ratio>0.5/10")
    }

    @Test func modeTriggerFiresOnEntry() throws {
        var watch = TriggerWatch([try Trigger(parsing: "mode=INT")])
        var toCP = event(kind: DPT_EV_MODE, ts: 5)
        toCP.mode_to = UInt8(DPT_MODE_CP.rawValue)
        #expect(watch.check(toCP, lostTotal: 0) == nil)
        var toINT = event(kind: DPT_EV_MODE, ts: 9)
        toINT.cpu = 1
        toINT.mode_to = UInt8(DPT_MODE_INT.rawValue)
        let result = watch.check(toINT, lostTotal: 0)
        let fired = try #require(result)
        #expect(fired.why.contains("CPU 1 entered mode=INT"))
    }

    @Test func bucketTriggerFiresOnThatBucketOnly() throws {
        var watch = TriggerWatch([try Trigger(parsing: "bucket=-1")])
        var four = event(kind: DPT_EV_RQ_START, ts: 1)
        four.bucket = 6
        #expect(watch.check(four, lostTotal: 0) == nil)
        var unbucketed = event(kind: DPT_EV_RQ_START, ts: 2)
        unbucketed.bucket = -1
        #expect(watch.check(unbucketed, lostTotal: 0)?.trigger == .bucket(-1))
    }

    @Test func noSleepRatioNeedsAFullWindow() throws {
        var watch = TriggerWatch([try Trigger(parsing: "no-sleep-ratio>0.5/10")])
        // 9 no-sleeps: not yet a full window.
        for ts in 0..<9 as Range<UInt64> { #expect(watch.check(sleepAttempt(ts: ts, slept: false), lostTotal: 0) == nil) }
        // The 10th makes 10/10 > 0.5.
        #expect(watch.check(sleepAttempt(ts: 9, slept: false), lostTotal: 0) != nil)
    }

    @Test func noSleepRatioSlidesOverTheWindow() throws {
        var watch = TriggerWatch([try Trigger(parsing: "no-sleep-ratio>0.5/4"), try Trigger(parsing: "no-sleep-ratio>=0.75/2")])
        // slept, slept, no, no → last 4: 0.5 (not > 0.5); last 2: 1.0 ≥ 0.75 fires the second trigger.
        #expect(watch.check(sleepAttempt(ts: 0, slept: true), lostTotal: 0) == nil)
        #expect(watch.check(sleepAttempt(ts: 1, slept: true), lostTotal: 0) == nil)
        #expect(watch.check(sleepAttempt(ts: 2, slept: false), lostTotal: 0) == nil)
        let result = watch.check(sleepAttempt(ts: 3, slept: false), lostTotal: 0)
        let fired = try #require(result)
        #expect(fired.trigger == .noSleepRatio(.greaterOrEqual, threshold: 0.75, window: 2))
        // One more no-sleep: last 4 = 3/4 > 0.5 fires the first.
        var first = TriggerWatch([try Trigger(parsing: "no-sleep-ratio>0.5/4")])
        for (i, slept) in [true, true, false, false, false].enumerated() {
            let result = first.check(sleepAttempt(ts: UInt64(i), slept: slept), lostTotal: 0)
            #expect((result != nil) == (i == 4), "attempt \(i)")
        }
    }

    @Test func lostTrigger() throws {
        var watch = TriggerWatch([try Trigger(parsing: "lost>100")])
        #expect(watch.check(event(kind: DPT_EV_RQ_START, ts: 1), lostTotal: 100) == nil)
        #expect(watch.check(event(kind: DPT_EV_RQ_START, ts: 2), lostTotal: 101) != nil)
    }

    @Test func writesTheRingAsADumpThatSaysWhy() throws {
        let base = FileManager.default.temporaryDirectory.appending(path: "dpt-flight-\(getpid()).dpt").path
        defer {
            for index in 0..<3 { try? FileManager.default.removeItem(atPath: FlightRecorder.path(for: base, index: index)) }
        }
        var recorder = FlightRecorder(ringBytes: 100 * 128, triggers: [try Trigger(parsing: "mode=INT")])
        var fired: (trigger: Trigger, why: String)?
        for ts in 0..<1_000 as Range<UInt64> {
            var event = TraceEvent.rqStart(ts: ts, cpu: 0, pid: 1, tid: 1, rq: ts, dev: 0, nrSectors: 8, statsSectors: 8,
                                           ddir: 0, polled: true, queueStats: true, mode: .pas)
            if ts == 700 { event = .modeChange(ts: ts, cpu: 1, from: .ol, to: .int, avgQDx10: 40, tf: 0, windowIOs: 100) }
            if let hit = recorder.record(event, lostTotal: 0) {
                fired = hit
                break
            }
        }
        let hit = try #require(fired)
        let header = DumpHeader(kernelRelease: "test", hostname: "test", createdRealtimeNs: 0, bootTimeOffsetNs: 0, command: ["test"])
        let path = try recorder.writeDump(base: base, header: header, reason: "trigger \(hit.trigger): \(hit.why)", lostPerCPU: [0, 2])
        #expect(path == base)

        let reader = try DumpReader(path: path)
        #expect(reader.header.reason?.hasPrefix("trigger mode=INT: CPU 1 entered mode=INT at 700 ns") == true)
        var timestamps: [UInt64] = []
        let result = try reader.forEachEvent { timestamps.append($0.ts_ns) }
        // The ring kept the last 100 events, ending with the trigger.
        #expect(timestamps == Array(601...700))
        #expect(result.trailer?.reason?.hasPrefix("trigger mode=INT") == true)
        #expect(result.lostTotal == 2)
        #expect(result.notes.contains { $0.contains("601 older events were overwritten") })
        // The report shows the note, so a reader of the post-mortem knows what is missing.
        let report = try DumpAnalysis.run(path: path).report
        #expect(report.source?.notes == result.notes)
        #expect(TextRenderer.full(report).contains("Note: flight recorder: the ring held the last 100 events"))
        let json = try JSONSerialization.jsonObject(with: Data(try JSONRenderer.render(report).utf8)) as? [String: Any]
        let notes = (json?["source"] as? [String: Any])?["notes"] as? [String]
        #expect(notes == result.notes)

        // A second dump gets a numbered name and holds only what came after the first.
        _ = recorder.record(.rqStart(ts: 2_000, cpu: 0, pid: 1, tid: 1, rq: 1, dev: 0, nrSectors: 8, statsSectors: 8,
                                     ddir: 0, polled: true, queueStats: true), lostTotal: 0)
        let second = try recorder.writeDump(base: base, header: header, reason: "SIGUSR1", lostPerCPU: [0, 2])
        #expect(second.hasSuffix("dpt-flight-\(getpid()).1.dpt"))
        var count = 0
        _ = try DumpReader(path: second).forEachEvent { _ in count += 1 }
        #expect(count == 1)
    }
}
