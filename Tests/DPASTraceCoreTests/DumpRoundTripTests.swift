import Foundation
import Testing
@testable import DPASTraceCore

/// What the writer puts in, the reader gives back: header, events, lost counters, notes, trailer.
@Suite struct DumpRoundTripTests {
    @Test func headerRoundTripsEveryField() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("header.dpt")
        let header = dumpTestHeader()
        let writer = try DumpWriter(path: path, header: header)
        try writer.finish()
        let reader = try DumpReader(path: path)
        #expect(reader.header == header)
        #expect(reader.header.probePlan[1].cost == "no hybrid-sleep attempts")
        #expect(reader.header.settings["block/nvme0n1/queue/wbt_lat_usec"] == "error: Invalid argument")
        #expect(reader.formatVersion == 1)
        #expect(reader.eventLayoutVersion == Int(DPT_EVENT_LAYOUT_VERSION))
        #expect(reader.eventSize == 128)
        #expect(reader.dataOffset % 8 == 0)

        // nil optionals stay nil.
        var bare = dumpTestHeader(reason: nil)
        bare.device = nil
        let barePath = scratch.path("bare.dpt")
        try DumpWriter(path: barePath, header: bare).finish()
        let bareReader = try DumpReader(path: barePath)
        #expect(bareReader.header == bare && bareReader.header.device == nil && bareReader.header.reason == nil)
        #expect(bareReader.header.realtimeNs(ofMonotonic: 2_000_000_000_000) == 300_000_000_000)
    }

    @Test func headerJSONUsesDocumentedKeys() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("keys.dpt")
        try DumpWriter(path: path, header: dumpTestHeader()).finish()
        let bytes = try scratch.bytes(path)
        let length = Int(bytes[16]) | Int(bytes[17]) << 8 | Int(bytes[18]) << 16 | Int(bytes[19]) << 24
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes[32..<(32 + length)])) as? [String: Any])
        #expect(Set(json.keys) == ["tool_version", "kernel_release", "hostname", "created_realtime_ns", "boot_time_offset_ns",
                                   "command", "device", "probe_plan", "settings", "reason"])
        let plan = try #require(json["probe_plan"] as? [[String: Any]])
        #expect(Set(plan[1].keys) == ["hook", "target", "attach_type", "status", "detail", "cost"])
        #expect(plan[1]["status"] as? String == "unavailable")
    }

    @Test(arguments: [1, 7, 4096])
    func eventsRoundTripWithAnyChunkSize(eventsPerChunk: Int) throws {
        let scratch = try DumpScratch()
        let path = scratch.path("events.dpt")
        let events = (0..<1_000).map(dumpTestEvent)
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: eventsPerChunk)
        // Mix single appends and batches so both paths are covered.
        for event in events[0..<333] { try writer.append(event) }
        try events[333..<1_000].withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
        try writer.finish(reason: "duration elapsed")
        #expect(writer.eventsWritten == 1_000)
        #expect(writer.bytesWritten == UInt64(try scratch.bytes(path).count))

        let reader = try DumpReader(path: path)
        let (readBack, result) = try dumpTestReadAll(reader)
        #expect(readBack == events)
        #expect(result.events == 1_000)
        #expect(result.damage == nil && result.isComplete && result.warnings(path: path).isEmpty)
        let expectedChunks = (1_000 + eventsPerChunk - 1) / eventsPerChunk + 1   // events chunks + trailer
        #expect(result.chunks == expectedChunks)
        #expect(result.bytes == writer.bytesWritten)

        var chunkCount = 0
        var eventsInChunks = 0
        _ = try reader.forEachChunk { chunk in
            chunkCount += 1
            eventsInChunks += chunk.count
            #expect(chunk.count <= eventsPerChunk)
            #expect(Int(bitPattern: chunk.baseAddress) % MemoryLayout<TraceEvent>.alignment == 0)
        }
        #expect(chunkCount == expectedChunks - 1 && eventsInChunks == 1_000)
    }

    @Test func chunksLargerThanTheReadWindowRoundTrip() throws {
        // 50 000 events in one 6.4 MB chunk: more than the reader's initial 4 MiB window.
        let scratch = try DumpScratch()
        let path = scratch.path("big-chunk.dpt")
        let events = (0..<50_000).map(dumpTestEvent)
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: 50_000)
        try events.withUnsafeBufferPointer { try writer.append(contentsOf: $0) }
        try writer.note("after the big chunk")
        try writer.finish()
        var sizes: [Int] = []
        var index = 0
        var mismatches = 0
        let result = try DumpReader(path: path).forEachChunk { chunk in
            sizes.append(chunk.count)
            for event in chunk {
                if event != events[index] { mismatches += 1 }
                index += 1
            }
        }
        #expect(sizes == [50_000] && mismatches == 0 && index == 50_000)
        #expect(result.isComplete && result.notes == ["after the big chunk"])
    }

    @Test func trailerCountsLostCountersAndNotes() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("trailer.dpt")
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: 64)
        for index in 0..<500 { try writer.append(dumpTestEvent(index)) }
        try writer.recordLost(perCPU: [0, 3, 0])
        try writer.note("trigger mode=INT fired at ts 1234")
        for index in 500..<600 { try writer.append(dumpTestEvent(index)) }
        var unknown = TraceEvent.blank(.rqStart, ts: 5, cpu: 0)
        unknown.kind = 99
        try writer.append(unknown)
        try writer.recordLost(perCPU: [1, 7, 0, 2])
        try writer.note("ünïcode ✓")
        try writer.finish(reason: "SIGINT")

        let result = try DumpReader(path: path).forEachEvent { _ in }
        let trailer = try #require(result.trailer)
        #expect(trailer.events == 601 && result.events == 601)
        #expect(trailer.eventsByKind == ["rq_start": 120, "hybrid_sleep": 120, "rq_done": 120, "mode": 120,
                                         "pas_state": 120, "unknown": 1])
        #expect(trailer.lostPerCPU == [1, 7, 0, 2] && trailer.lostTotal == 10)
        #expect(result.lostPerCPU == [1, 7, 0, 2] && result.lostTotal == 10)
        #expect(trailer.firstTsNs == 5 && trailer.lastTsNs == 1_000_000 + 599 * 1_000)
        #expect(trailer.reason == "SIGINT")
        #expect(trailer.chunks == result.chunks - 1)
        #expect(result.notes == ["trigger mode=INT fired at ts 1234", "ünïcode ✓"])
        #expect(trailer.finishedRealtimeNs > 1_700_000_000_000_000_000)
    }

    @Test func missingTrailerIsReportedNotAnError() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("killed.dpt")
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: 10)
        for index in 0..<25 { try writer.append(dumpTestEvent(index)) }
        try writer.recordLost(perCPU: [4, 0])
        // The recorder "dies" here: events 20..<25 were flushed by recordLost; no finish().
        let result = try DumpReader(path: path).forEachEvent { _ in }
        #expect(result.events == 25 && result.trailer == nil && result.damage == nil)
        #expect(result.lostPerCPU == [4, 0] && !result.isComplete)
        let warnings = result.warnings(path: path)
        #expect(warnings.count == 1 && warnings[0].contains("recorder did not finish") && warnings[0].hasPrefix(path))
        withExtendedLifetime(writer) {}
    }

    @Test func writerErrorsNameTheFileAndWhatToDo() throws {
        let scratch = try DumpScratch()
        let missingDirectory = scratch.path("no-such-dir/run.dpt")
        let error = try #require(throws: DumpError.self) { try DumpWriter(path: missingDirectory, header: dumpTestHeader()) }
        #expect(error.description.hasPrefix(missingDirectory + ": cannot create dump: No such file or directory"))
        #expect(!error.description.contains("\n"))

        let path = scratch.path("finished.dpt")
        let writer = try DumpWriter(path: path, header: dumpTestHeader())
        try writer.finish()
        #expect(throws: DumpError.self) { try writer.note("too late") }
        let late = try #require(throws: DumpError.self) { try writer.append(dumpTestEvent(0)) }
        #expect(late.reason == "dump already finished")
    }

    @Test func diskFullLeavesAReadableDumpUpToTheReportedOffset() throws {
        // /dev/full fails every write with ENOSPC: the header write itself fails.
        let error = try #require(throws: DumpError.self) { try DumpWriter(path: "/dev/full", header: dumpTestHeader()) }
        #expect(error.description.hasPrefix("/dev/full: cannot write: No space left on device at byte 0"))

        // A real small file system: needs root to mount a tmpfs.
        let scratch = try DumpScratch()
        let mountPoint = scratch.path("tiny")
        mkdir(mountPoint, 0o755)
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=256k") == 0 else {
            print("skipped the tmpfs part of the disk-full test: cannot mount a tmpfs (\(String(cString: strerror(errno)))); needs root")
            return
        }
        defer { umount(mountPoint) }
        let path = mountPoint + "/full.dpt"
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: 100)
        var appended = 0
        let failure = try #require(throws: DumpError.self) {
            while true {
                try writer.append(dumpTestEvent(appended))
                appended += 1
            }
        }
        let description = failure.description
        #expect(description.contains("No space left on device"))
        #expect(description.contains("the dump is readable up to byte \(writer.bytesWritten)"))
        #expect(failure.offset == writer.bytesWritten)
        // The file was cut back to the last complete chunk: it reads cleanly, without damage.
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).uint64Value
        #expect(fileSize == writer.bytesWritten)
        let result = try DumpReader(path: path).forEachEvent { _ in }
        #expect(result.damage == nil && result.trailer == nil)
        #expect(result.events == writer.eventsWritten && result.events > 0 && result.events % 100 == 0)
        // Later calls keep failing with the same error instead of writing after a hole.
        #expect(throws: failure) { try writer.flush() }
    }
}
