import Foundation
import Testing
@testable import DPASTraceCore

/// Damage semantics: truncation anywhere, flipped bytes, foreign files, wrong versions.
/// Complete chunks before the damage are always delivered; the damage offset is exact.
@Suite struct DumpDamageTests {
    /// A finished dump of several chunk types, with the file offset where each chunk ends
    /// and the number of events in complete chunks at that point.
    struct Sample {
        let bytes: [UInt8]
        let dataOffset: Int
        /// (end offset of a chunk, events before that offset), in file order, starting with the data offset.
        let boundaries: [(offset: Int, events: Int)]
        let events: [TraceEvent]
    }

    static func makeSample(_ scratch: DumpScratch) throws -> Sample {
        let path = scratch.path("sample.dpt")
        let writer = try DumpWriter(path: path, header: dumpTestHeader(), eventsPerChunk: 16)
        var boundaries = [(offset: Int(writer.bytesWritten), events: 0)]
        var events: [TraceEvent] = []
        func mark() { boundaries.append((Int(writer.bytesWritten), Int(writer.eventsWritten))) }
        func add(_ count: Int) throws {
            for _ in 0..<count {
                let event = dumpTestEvent(events.count)
                events.append(event)
                let before = writer.bytesWritten
                try writer.append(event)
                if writer.bytesWritten != before { mark() }
            }
        }
        try add(40)               // two full chunks, 8 buffered
        try writer.flush(); mark()  // short chunk of 8
        try writer.recordLost(perCPU: [1, 2]); mark()
        try writer.note("a note of 23 characters"); mark()  // padded payload
        try add(16)
        try writer.finish(reason: "done"); mark()
        return Sample(bytes: try scratch.bytes(path), dataOffset: boundaries[0].offset, boundaries: boundaries, events: events)
    }

    /// Reads `bytes` as a dump; returns the events delivered and the result.
    static func read(_ bytes: some Sequence<UInt8>, _ scratch: DumpScratch, name: String = "damaged.dpt") throws -> ([TraceEvent], DumpReadResult) {
        let path = try scratch.file(name, bytes)
        return try dumpTestReadAll(DumpReader(path: path))
    }

    @Test func truncationAtEveryChunkBoundaryIsClean() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        #expect(sample.boundaries.count == 8)
        #expect(sample.boundaries.last!.offset == sample.bytes.count)
        for (index, boundary) in sample.boundaries.enumerated() {
            let (events, result) = try Self.read(sample.bytes[0..<boundary.offset], scratch)
            #expect(result.damage == nil, "cut at \(boundary.offset)")
            #expect(events == Array(sample.events[0..<boundary.events]))
            #expect(result.chunks == index)
            #expect(result.bytes == UInt64(boundary.offset))
            let finished = index == sample.boundaries.count - 1
            #expect((result.trailer != nil) == finished)
            if index >= 4 { #expect(result.lostPerCPU == [1, 2]) }
            if index >= 5 { #expect(result.notes == ["a note of 23 characters"]) }
        }
    }

    @Test func truncationInsideAChunkReportsItsStart() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        for index in 0..<(sample.boundaries.count - 1) {
            let chunkStart = sample.boundaries[index].offset
            let chunkEnd = sample.boundaries[index + 1].offset
            // Inside the chunk header, right after it, inside the payload, one byte short.
            let cuts = Set([chunkStart + 1, chunkStart + 12, chunkStart + 23, chunkStart + 24,
                            (chunkStart + 24 + chunkEnd) / 2, chunkEnd - 1]).filter { $0 > chunkStart && $0 < chunkEnd }
            for cut in cuts.sorted() {
                let (events, result) = try Self.read(sample.bytes[0..<cut], scratch)
                let damage = try #require(result.damage, "cut at \(cut) must be reported")
                #expect(damage.offset == UInt64(chunkStart), "cut at \(cut)")
                #expect(damage.reason.contains("truncated"), "\(damage.reason)")
                #expect(events == Array(sample.events[0..<sample.boundaries[index].events]))
                #expect(damage.chunksBefore == index && damage.eventsBefore == UInt64(events.count))
                #expect(result.trailer == nil)
                let message = damage.message(path: "x.dpt")
                #expect(message == "x.dpt: damaged at byte \(chunkStart): \(damage.reason); analysed the \(index) complete chunks (\(events.count) events) before it")
            }
        }
    }

    @Test func truncationInsideThePrefixOrHeaderIsAnError() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        for cut in [0, 1, 7, 8, 31, 32, 33, sample.dataOffset - 1] {
            let path = try scratch.file("cut\(cut).dpt", sample.bytes[0..<cut])
            let error = try #require(throws: DumpError.self) { try DumpReader(path: path) }
            #expect(error.description.hasPrefix(path + ": "))
            #expect(!error.description.contains("\n"))
            if cut == 0 {
                #expect(error.description.contains("empty file"))
            } else {
                #expect(error.description.contains("truncated"), "\(error)")
                #expect(error.offset == UInt64(cut), "\(error)")
            }
        }
    }

    @Test func aFlippedByteInAnyChunkStopsAtThatChunk() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        for index in 0..<(sample.boundaries.count - 1) {
            let chunkStart = sample.boundaries[index].offset
            let chunkEnd = sample.boundaries[index + 1].offset
            // Each header field, first/middle/last payload byte (the last is padding for the note).
            let positions = [0, 4, 6, 8, 12, 16, 20, 23].map { chunkStart + $0 }
                + [chunkStart + 24, (chunkStart + 24 + chunkEnd) / 2, chunkEnd - 1]
            for position in positions {
                var bytes = sample.bytes
                bytes[position] ^= 0x40
                let (events, result) = try Self.read(bytes, scratch)
                let damage = try #require(result.damage, "flip at \(position) must be detected")
                #expect(damage.offset == UInt64(chunkStart), "flip at \(position)")
                #expect(damage.reason.contains("checksum mismatch"), "flip at \(position): \(damage.reason)")
                #expect(events == Array(sample.events[0..<sample.boundaries[index].events]))
                #expect(result.trailer == nil)
            }
        }
    }

    @Test func aFlippedByteInThePrefixOrHeaderIsAnError() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        for position in [8, 9, 10, 12, 16, 20, 24, 28, 32, sample.dataOffset - 1] {
            var bytes = sample.bytes
            bytes[position] ^= 0x01
            let path = try scratch.file("flip\(position).dpt", bytes)
            let error = try #require(throws: DumpError.self) { try DumpReader(path: path) }
            #expect(error.description.hasPrefix(path + ": corrupt dump"), "\(error)")
        }
    }

    /// A mapped file cut short by another program while it is read must read as truncated, not
    /// fault (SIGBUS) on the pages past its new end.
    @Test func aFileCutShortWhileBeingReadReadsAsTruncated() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        let path = try scratch.file("shrinking.dpt", sample.bytes)
        let reader = try DumpReader(path: path)
        #expect(reader.mapsFile)
        let cut = sample.boundaries[2].offset + 40
        var chunks = 0
        let result = try reader.forEachChunk { _ in
            if chunks == 0 { #expect(truncate(path, off_t(cut)) == 0) }
            chunks += 1
        }
        #expect(chunks == 2)
        #expect(result.damage?.offset == UInt64(sample.boundaries[2].offset))
        #expect(result.damage?.reason.hasPrefix("truncated events chunk") == true, "\(result.damage as Any)")
    }

    @Test func randomTruncation200Times() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let cut = Int.random(in: 0...sample.bytes.count, using: &generator)
            let path = try scratch.file("random.dpt", sample.bytes[0..<cut])
            if cut < sample.dataOffset {
                #expect(throws: DumpError.self, "cut at \(cut) inside the header") { try DumpReader(path: path) }
                continue
            }
            let (events, result) = try dumpTestReadAll(DumpReader(path: path))
            let complete = sample.boundaries.last { $0.offset <= cut }!
            #expect(events == Array(sample.events[0..<complete.events]), "cut at \(cut)")
            if complete.offset == cut {
                #expect(result.damage == nil, "cut at \(cut)")
            } else {
                #expect(result.damage?.offset == UInt64(complete.offset), "cut at \(cut)")
            }
            #expect((result.trailer != nil) == (cut == sample.bytes.count))
        }
    }

    @Test func foreignFilesAreRejectedInOneLine() throws {
        let scratch = try DumpScratch()
        let cases: [(name: String, bytes: [UInt8], expected: String)] = [
            ("empty.dpt", [], "empty file, not a dpas-trace dump at byte 0"),
            ("notes.txt", Array("hello, this is a text file\n".utf8), "not a dpas-trace dump (it starts with text \"hello, this is a\") at byte 0"),
            ("binary.elf", try #require(FileHandle(forReadingAtPath: "/proc/self/exe")).readData(ofLength: 4096).map { $0 }, "not a dpas-trace dump (it is an ELF binary) at byte 0"),
            ("data.gz", [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0], "not a dpas-trace dump (it is gzip-compressed: decompress it first)"),
            ("random.bin", [0x00, 0x01, 0x02, 0xFF], "not a dpas-trace dump (wrong magic: starts with 00 01 02 ff)"),
        ]
        for item in cases {
            let path = try scratch.file(item.name, item.bytes)
            let error = try #require(throws: DumpError.self) { try DumpReader(path: path) }
            #expect(error.description.hasPrefix(path + ": " + item.expected), "\(error)")
            #expect(!error.description.contains("\n"))
        }
        let missing = scratch.path("missing.dpt")
        let notFound = try #require(throws: DumpError.self) { try DumpReader(path: missing) }
        #expect(notFound.description == missing + ": cannot open dump: No such file or directory (check the path)")
        let directory = try #require(throws: DumpError.self) { try DumpReader(path: scratch.directory) }
        #expect(directory.description.contains("Is a directory"))
    }

    /// Rewrites a prefix field and its checksum, as a different writer would have.
    static func patchedPrefix(_ bytes: [UInt8], offset: Int, value: UInt32, size: Int) -> [UInt8] {
        var patched = bytes
        for index in 0..<size { patched[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
        let crc = CRC32C.checksum(patched[0..<28])
        for index in 0..<4 { patched[28 + index] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(index))) }
        return patched
    }

    @Test func unsupportedVersionsSayWhatToUse() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        let cases: [(offset: Int, value: UInt32, size: Int, expected: String)] = [
            (8, 2, 2, "dump format version 2 is not supported (this dpas-trace reads version 1) at byte 8 (use a newer dpas-trace to read it)"),
            (10, 9, 2, "event layout version 9 is not supported (this dpas-trace reads version \(DPT_EVENT_LAYOUT_VERSION)) at byte 10 (use a newer dpas-trace to read it)"),
            (12, 96, 4, "event size 96 does not match layout version \(DPT_EVENT_LAYOUT_VERSION) (128 bytes) at byte 12"),
            (16, 1 << 30, 4, "implausible header length 1073741824 bytes at byte 16"),
        ]
        for item in cases {
            let path = try scratch.file("version.dpt", Self.patchedPrefix(sample.bytes, offset: item.offset, value: item.value, size: item.size))
            let error = try #require(throws: DumpError.self) { try DumpReader(path: path) }
            #expect(error.description.hasPrefix(path + ": " + item.expected), "\(error)")
        }
    }

    @Test func missingChunkIsCaughtByTheTrailer() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        // Cut the second events chunk out of the middle: every remaining chunk is intact.
        let removed = sample.boundaries[1].offset..<sample.boundaries[2].offset
        let bytes = Array(sample.bytes[..<removed.lowerBound]) + Array(sample.bytes[removed.upperBound...])
        let (events, result) = try Self.read(bytes, scratch)
        let damage = try #require(result.damage)
        #expect(damage.reason.contains("trailer counts 56 events but the file holds 40"), "\(damage.reason)")
        #expect(damage.offset == UInt64(sample.boundaries[6].offset - removed.count))
        #expect(events.count == 40 && result.trailer == nil)
    }

    @Test func aHugeLengthInAValidChunkHeaderIsReportedAsTruncation() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        // A note chunk claiming 200 MiB, with a correct header checksum, in a file of a few KiB.
        var chunk = [UInt8](repeating: 0, count: DumpFormat.chunkHeaderSize)
        chunk.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: DumpFormat.chunkMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: DumpFormat.ChunkType.note.rawValue.littleEndian, toByteOffset: 4, as: UInt16.self)
            raw.storeBytes(of: UInt32(200 << 20).littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: CRC32C.update(0, raw.baseAddress!, 20).littleEndian, toByteOffset: 20, as: UInt32.self)
        }
        let trailerStart = sample.boundaries[6].offset
        let (events, result) = try Self.read(Array(sample.bytes[..<trailerStart]) + chunk + Array(repeating: 0, count: 5_000_000), scratch)
        #expect(result.damage?.offset == UInt64(trailerStart))
        #expect(result.damage?.reason.hasPrefix("truncated note chunk: needs \(24 + (200 << 20)) bytes") == true, "\(String(describing: result.damage))")
        #expect(events == sample.events)
    }

    @Test func dataAfterTheTrailerIsReported() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        let (events, result) = try Self.read(sample.bytes + Array("garbage".utf8), scratch)
        #expect(events == sample.events)
        #expect(result.trailer != nil)
        #expect(result.damage?.offset == UInt64(sample.bytes.count))
        #expect(result.damage?.reason == "unexpected data after the trailer")
    }

    @Test func unknownChunkTypesAreSkipped() throws {
        let scratch = try DumpScratch()
        let sample = try Self.makeSample(scratch)
        // A chunk of type 77 from a "newer recorder", inserted before the trailer.
        var chunk = [UInt8](repeating: 0, count: DumpFormat.chunkHeaderSize + 8)
        chunk.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: 0x1234_5678_9ABC_DEF0 as UInt64, toByteOffset: 24, as: UInt64.self)
            _ = DumpFormat.sealChunk(at: raw.baseAddress!, type: .note, itemCount: 0, payloadLength: 8)
            raw.storeBytes(of: UInt16(77).littleEndian, toByteOffset: 4, as: UInt16.self)
            let crc = CRC32C.update(0, raw.baseAddress!, 20)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 20, as: UInt32.self)
        }
        let trailerStart = sample.boundaries[6].offset
        let bytes = Array(sample.bytes[..<trailerStart]) + chunk + Array(sample.bytes[trailerStart...])
        let (events, result) = try Self.read(bytes, scratch)
        #expect(events == sample.events && result.damage == nil && result.trailer != nil)
        #expect(result.skippedChunks == 1)
        #expect(result.warnings(path: "x").first?.contains("skipped 1 chunks") == true)
    }
}
