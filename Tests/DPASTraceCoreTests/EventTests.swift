import Foundation
import Testing
@testable import DPASTraceCore

/// The Swift view of `struct dpt_event`: layout, factories (buckets the kernel's way),
/// accessors, and the text/CSV/JSON forms `dpas-trace dump` prints.
@Suite struct EventTests {
    @Test func layoutMatchesTheCHeader() {
        #expect(MemoryLayout<TraceEvent>.size == Int(DPT_EVENT_SIZE))
        #expect(MemoryLayout<TraceEvent>.stride == 128)
        #expect(MemoryLayout<TraceEvent>.alignment == 8)
        #expect(MemoryLayout<TraceEvent>.offset(of: \.sleep_requested_ns) == 56)
        #expect(DumpFormat.eventLayoutVersion == UInt16(DPT_EVENT_LAYOUT_VERSION))
    }

    @Test func kindsMatchTheCEnum() {
        #expect(EventKind.rqStart.rawValue == DPT_EV_RQ_START.rawValue)
        #expect(EventKind.rqDone.rawValue == DPT_EV_RQ_DONE.rawValue)
        #expect(EventKind.hybridSleep.rawValue == DPT_EV_HYBRID_SLEEP.rawValue)
        #expect(EventKind.mode.rawValue == DPT_EV_MODE.rawValue)
        #expect(EventKind.pasState.rawValue == DPT_EV_PAS_STATE.rawValue)
        #expect(SleepOutcome.slept.rawValue == UInt8(DPT_SLEEP_SLEPT.rawValue))
        #expect(SleepOutcome.noSleep.rawValue == UInt8(DPT_SLEEP_NO_SLEEP.rawValue))
        #expect(DPASMode.ehp.rawValue == UInt8(DPT_MODE_EHP.rawValue))
        #expect(DPASMode.unknown.rawValue == UInt8(DPT_MODE_UNKNOWN.rawValue))
        #expect(DPASMode(name: "int") == .int)
        #expect(DPASMode(name: "bogus") == nil)
    }

    @Test func requestStartComputesBucketsTheKernelsWay() {
        let dev = TraceEvent.makeDev(major: 259, minor: 0)
        // 4 KiB read with QUEUE_FLAG_STATS: bucket 6 both ways.
        let withStats = TraceEvent.rqStart(ts: 10, cpu: 1, pid: 100, tid: 101, rq: 0xFFFF_8880_0000_1000, dev: dev,
                                           nrSectors: 8, statsSectors: 8, ddir: 0, polled: true, queueStats: true)
        #expect(withStats.eventKind == .rqStart)
        #expect(withStats.bucket == 6 && withStats.bucket_by_sectors == 6)
        #expect(withStats.isPolled && withStats.queueStatsSet && !withStats.hasDPASState)
        #expect(withStats.modeTo == .unknown)
        #expect(withStats.deviceName == "259:0")
        // Without QUEUE_FLAG_STATS stats_sectors is 0: bucket -1, while the size says 6 (the seed's fix 1).
        let withoutStats = TraceEvent.rqStart(ts: 11, cpu: 0, pid: 1, tid: 1, rq: 1, dev: dev,
                                              nrSectors: 8, statsSectors: 0, ddir: 0, polled: true, queueStats: false, mode: .pas)
        #expect(withoutStats.bucket == -1 && withoutStats.bucket_by_sectors == 6)
        #expect(!withoutStats.queueStatsSet && withoutStats.hasDPASState && withoutStats.modeTo == .pas)
        // Large writes clamp to ddir + 14.
        let bigWrite = TraceEvent.rqStart(ts: 12, cpu: 0, pid: 1, tid: 1, rq: 2, dev: dev,
                                          nrSectors: 2048, statsSectors: 2048, ddir: 1, polled: false, queueStats: true)
        #expect(bigWrite.bucket == 15 && bigWrite.isWrite && !bigWrite.isPolled)
        // One sector write: bucket 1.
        #expect(TraceEvent.rqStart(ts: 0, cpu: 0, pid: 0, tid: 0, rq: 0, dev: 0, nrSectors: 1, statsSectors: 1,
                                   ddir: 1, polled: false, queueStats: true).bucket == 1)
    }

    @Test func requestDoneCarriesLatency() {
        let done = TraceEvent.rqDone(ts: 5_000, cpu: 1, pid: 7, tid: 8, rq: 9, dev: 3, nrSectors: 16, statsSectors: 16,
                                     ddir: 0, polled: true, queueStats: true, mode: .cp, latencyNs: 4_321)
        #expect(done.eventKind == .rqDone && done.io_latency_ns == 4_321 && done.bucket == 8 && done.modeTo == .cp)
    }

    @Test func hybridSleepFieldsAndFlags() {
        let sleep = TraceEvent.hybridSleep(ts: 2_000, cpu: 1, pid: 5, tid: 6, requestedNs: 100, armedNs: 1_000,
                                           expiresNs: 1_100, firedNs: 1_050, sleptNs: 0, outcome: .noSleep,
                                           flags: [.timerFired, .firedDuringArm])
        #expect(sleep.eventKind == .hybridSleep && sleep.sleepOutcome == .noSleep)
        #expect(sleep.timerFired && sleep.firedDuringArm && !sleep.ioScheduleCalled && !sleep.cancelled)
        #expect(sleep.sleep_requested_ns == 100 && sleep.sleep_armed_ns == 1_000 && sleep.timer_expires_ns == 1_100)
        #expect(sleep.timer_fired_ns == 1_050 && sleep.slept_ns == 0)
        #expect(sleep.flags == DPT_F_TIMER_FIRED | DPT_F_FIRED_DURING_ARM)
        var odd = sleep
        odd.outcome = 9
        #expect(odd.sleepOutcome == .unknown)
    }

    @Test func modeAndPASStateFactories() {
        let change = TraceEvent.modeChange(ts: 9, cpu: 1, from: .pas, to: .ol, avgQDx10: 25, tf: 3, windowIOs: 100)
        #expect(change.eventKind == .mode && change.modeFrom == .pas && change.modeTo == .ol)
        #expect(change.avg_qd_x10 == 25 && change.tf == 3 && change.window_ios == 100 && change.hasDPASState)
        let pas = TraceEvent.pasState(ts: 10, cpu: 0, bucket: 6, durNs: 100, last: (.underslept, .overslept), timerFloor: true)
        #expect(pas.eventKind == .pasState && pas.bucket == 6 && pas.pas_dur_ns == 100 && pas.pasTimerFloor)
        #expect(pas.pasLastResults.0 == .underslept && pas.pasLastResults.1 == .overslept)
    }

    @Test func unknownKindIsNotGuessed() {
        var event = TraceEvent.blank(.rqStart, ts: 1, cpu: 0)
        event.kind = 42
        #expect(event.eventKind == nil && event.kindName == "kind_42")
        #expect(event.describe().contains("kind_42"))
        #expect(event.jsonObject.count == event.allFields.count)
    }

    @Test func describeShowsWhatMattersPerKind() {
        let start = TraceEvent.rqStart(ts: 1_234_000_056_789, cpu: 1, pid: 100, tid: 101, rq: 0xABC,
                                       dev: TraceEvent.makeDev(major: 259, minor: 1), nrSectors: 8, statsSectors: 0,
                                       ddir: 0, polled: true, queueStats: false)
        #expect(start.describe() == "1234.000056789 cpu 1 pid 100/101 rq_start dev 259:1 rq 0xabc read sectors 8 "
            + "stats_sectors 0 bucket -1 (by sectors 6) [polled]")
        let sleep = TraceEvent.hybridSleep(ts: 5, cpu: 0, pid: 1, tid: 2, requestedNs: 100, armedNs: 1, expiresNs: 101,
                                           firedNs: 0, sleptNs: 250, outcome: .slept, flags: [.ioScheduleCalled, .cancelled])
        #expect(sleep.describe() == "0.000000005 cpu 0 pid 1/2 hybrid_sleep requested 100 ns slept slept 250 ns "
            + "armed 1 expires 101 never fired [io_schedule|cancelled]")
        // Resolved on the poller's path: fired, but the expiry was not timed.
        let timed = TraceEvent.hybridSleep(ts: 5, cpu: 0, pid: 1, tid: 2, requestedNs: 100, armedNs: 1, expiresNs: 101,
                                           firedNs: 0, sleptNs: 0, outcome: .noSleep,
                                           flags: [.timerFired, .firedDuringArm, .resolvedInIOSchedule])
        #expect(timed.describe() == "0.000000005 cpu 0 pid 1/2 hybrid_sleep requested 100 ns no_sleep slept 0 ns "
            + "armed 1 expires 101 fired (not timed) [timer_fired|fired_during_arm|resolved_in_io_schedule]")
        #expect(timed.jsonObject.contains { $0.key == "resolved_in_io_schedule" && $0.value == .bool(true) })
        let change = TraceEvent.modeChange(ts: 1_000_000_000, cpu: 3, from: .ol, to: .int, avgQDx10: 31, tf: 0, windowIOs: 100)
        #expect(change.describe() == "1.000000000 cpu 3 pid 0/0 mode OL -> INT avg_qd 3.1 tf 0 window_ios 100 [dpas]")
    }

    @Test func csvRowsLineUpWithTheHeader() throws {
        let columns = TraceEvent.csvHeader.split(separator: ",").map(String.init)
        #expect(columns.first == "ts_ns" && columns.contains("bucket_by_sectors") && Set(columns).count == columns.count)
        let events = [
            TraceEvent.rqStart(ts: 1, cpu: 0, pid: 1, tid: 1, rq: 1, dev: 1, nrSectors: 8, statsSectors: 0, ddir: 0,
                               polled: true, queueStats: true),
            TraceEvent.hybridSleep(ts: 2, cpu: 1, pid: 1, tid: 1, requestedNs: 100, armedNs: 1, expiresNs: 2, firedNs: 2,
                                   sleptNs: 0, outcome: .noSleep, flags: [.timerFired, .firedDuringArm]),
            TraceEvent.modeChange(ts: 3, cpu: 0, from: .pas, to: .cp, avgQDx10: 10, tf: 0, windowIOs: 100),
        ]
        for event in events {
            let cells = event.csvRow.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(cells.count == columns.count)
            let row = Dictionary(uniqueKeysWithValues: zip(columns, cells))
            #expect(row["ts_ns"] == String(event.ts_ns))
            #expect(row["kind"] == event.kindName)
            #expect(row["bucket"] == String(event.bucket))
        }
        #expect(events[1].csvRow.contains(",timer_fired|fired_during_arm,"))
        #expect(CSVText.cell("a,b \"c\"") == "\"a,b \"\"c\"\"\"")
    }

    @Test func jsonFormParsesWithStableKeys() throws {
        let sleep = TraceEvent.hybridSleep(ts: 77, cpu: 1, pid: 2, tid: 3, requestedNs: 100, armedNs: 10, expiresNs: 110,
                                           firedNs: 111, sleptNs: 0, outcome: .noSleep, flags: [.timerFired, .firedDuringArm])
        let keys = sleep.jsonObject.map(\.key)
        #expect(Array(keys.prefix(5)) == ["ts_ns", "kind", "cpu", "pid", "tid"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(sleep.jsonText.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "hybrid_sleep")
        #expect(object["outcome"] as? String == "no_sleep")
        #expect((object["sleep_requested_ns"] as? NSNumber)?.uint64Value == 100)
        #expect(object["fired_during_arm"] as? Bool == true)
        #expect(object["io_schedule"] as? Bool == false)
        #expect(object["rearmed"] as? Bool == false)

        // The sleep loop's second pass (HRTIMER_MODE_ABS) is flagged and keeps the request it continues.
        let rearmed = TraceEvent.hybridSleep(ts: 90, cpu: 1, pid: 2, tid: 3, requestedNs: 100, armedNs: 80, expiresNs: 110,
                                             firedNs: 110, sleptNs: 25, outcome: .slept, flags: [.timerFired, .rearmed])
        let rearmedObject = try #require(try JSONSerialization.jsonObject(with: Data(rearmed.jsonText.utf8)) as? [String: Any])
        #expect(rearmedObject["rearmed"] as? Bool == true)
        #expect(rearmedObject["flags"] as? String == "timer_fired|rearmed")
        #expect(rearmed.describe().hasSuffix("[timer_fired|rearmed]"))

        let start = TraceEvent.rqStart(ts: 1, cpu: 0, pid: 1, tid: 1, rq: 1, dev: 1, nrSectors: 8, statsSectors: 0,
                                       ddir: 0, polled: true, queueStats: false)
        let startObject = try #require(try JSONSerialization.jsonObject(with: Data(start.jsonText.utf8)) as? [String: Any])
        #expect((startObject["bucket"] as? NSNumber)?.intValue == -1)
        #expect((startObject["bucket_by_sectors"] as? NSNumber)?.intValue == 6)
        #expect(startObject["polled"] as? Bool == true)
    }

    @Test func jsonStringsAreEscaped() throws {
        let text = JSONText.object([("note", .string("a \"q\" \\ \n\t\u{1}é"))])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(parsed["note"] == "a \"q\" \\ \n\t\u{1}é")
    }
}

/// CRC-32C: the standard check value and agreement with a plain bit-by-bit definition
/// for every length and alignment the slicing loop treats differently.
@Suite struct CRC32CTests {
    private static func bitwise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : 0x82F6_3B78) }
        }
        return ~crc
    }

    @Test func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func matchesBitwiseDefinitionAtEveryLengthAndAlignment() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        data.withUnsafeBytes { raw in
            for start in 0..<8 {
                for length in stride(from: 0, to: 280, by: 7) {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                    let expected = Self.bitwise(Array(slice))
                    #expect(CRC32C.update(0, slice) == expected)
                    #expect(CRC32C.updateWithTables(0, slice.baseAddress!, slice.count) == expected)
                }
            }
            // Chaining equals one pass.
            let whole = CRC32C.update(0, raw)
            let chained = CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<123])),
                                        UnsafeRawBufferPointer(rebasing: raw[123...]))
            #expect(whole == chained)
            #expect(CRC32C.updateWithTables(0, raw.baseAddress!, raw.count) == whole)
        }
        // Long buffers exercise the hardware path's 3 × 8 KiB and 3 × 256 B parallel blocks.
        let long = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        long.withUnsafeBytes { raw in
            for (start, length) in [(0, 70_000), (3, 24_576), (5, 24_575), (1, 49_153), (7, 768), (0, 767), (2, 1_000)] {
                let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                #expect(CRC32C.update(0, slice) == CRC32C.updateWithTables(0, slice.baseAddress!, slice.count), "\(start)+\(length)")
            }
            #expect(CRC32C.update(0, raw) == Self.bitwise(long))
        }
        print("CRC-32C: \(CRC32C.usesHardware ? "SSE4.2 crc32 instruction" : "slicing-by-8 tables (no SSE4.2 here)")")
    }
}
