import Foundation

/// Where reading a dump stopped and why. Everything before `offset` was delivered.
public struct DumpDamage: Sendable, Equatable {
    /// File offset of the first byte that is not part of a complete, valid chunk.
    public var offset: UInt64
    public var reason: String
    /// Complete chunks (all types) and events delivered before the damage.
    public var chunksBefore: Int
    public var eventsBefore: UInt64

    public init(offset: UInt64, reason: String, chunksBefore: Int = 0, eventsBefore: UInt64 = 0) {
        self.offset = offset
        self.reason = reason
        self.chunksBefore = chunksBefore
        self.eventsBefore = eventsBefore
    }

    /// "FILE: damaged at byte N: REASON; analysed the K complete chunks (M events) before it"
    public func message(path: String) -> String {
        "\(path): damaged at byte \(offset): \(reason); analysed the \(chunksBefore) complete chunks (\(eventsBefore) events) before it"
    }
}

/// What a pass over a dump saw besides the events.
public struct DumpReadResult: Sendable {
    /// Complete chunks read (all types, including the trailer).
    public var chunks: Int = 0
    public var events: UInt64 = 0
    /// Bytes of the file covered by the prefix, header and complete chunks.
    public var bytes: UInt64 = 0
    /// Latest cumulative lost-event totals per CPU seen (the trailer's when present).
    public var lostPerCPU: [UInt64] = []
    public var lostTotal: UInt64 { lostPerCPU.reduce(0, +) }
    public var notes: [String] = []
    /// nil when the recorder did not finish (killed, crashed, or still running).
    public var trailer: DumpTrailer?
    /// Where reading stopped early and why; nil when the file was read to its end.
    public var damage: DumpDamage?
    /// Chunks of types this build does not know, skipped (their checksums were valid).
    public var skippedChunks: Int = 0

    /// True when the whole file read cleanly and the recorder finished it.
    public var isComplete: Bool { trailer != nil && damage == nil }

    /// Lines for people about anything short of a complete dump (empty when complete).
    public func warnings(path: String) -> [String] {
        var lines: [String] = []
        if let damage { lines.append(damage.message(path: path)) }
        if trailer == nil {
            lines.append("\(path): no trailer: the recorder did not finish (killed, crashed or still running); "
                + "the \(events) events in complete chunks were analysed, lost-event totals are the last ones recorded")
        }
        if skippedChunks > 0 {
            lines.append("\(path): skipped \(skippedChunks) chunks of a type this dpas-trace does not know (a newer recorder?)")
        }
        return lines
    }
}

/// Reads a `.dpt` dump, streaming: memory stays bounded by the largest chunk, whatever the file size.
///
/// Regular files are read through a read-only mapping (no copy out of the page cache: the replay's
/// largest single cost with read(2)); chunks then stay valid until the reader is released, and the
/// pages already read are given back as the reader moves on. Files that cannot be mapped are read
/// with pread(2) into a sliding buffer.
///
/// `init` validates the prefix and header and throws `DumpError` for files that are not usable dumps.
/// Iteration never throws for damage: it delivers every complete chunk and reports where it stopped
/// in `DumpReadResult.damage`. It throws only for I/O errors and for errors thrown by the body.
public final class DumpReader {
    public let path: String
    public let header: DumpHeader
    public let formatVersion: Int
    public let eventLayoutVersion: Int
    public let eventSize: Int
    /// File offset of the first chunk.
    public let dataOffset: UInt64

    private let fd: Int32
    /// Mappings made by `forEachChunk` (one per pass that found the file grown), unmapped in deinit:
    /// with a mapping, chunk pointers handed to a body stay valid for the reader's lifetime.
    private var mappings: [FileMapping] = []
    /// Initial read buffer: large reads amortise syscalls; chunks (512 KiB by default) straddling
    /// the buffer's end are moved to its front, which costs little at this size.
    fileprivate static let blockSize = 4 << 20
    /// Smallest read window, for small files.
    fileprivate static let minimumWindow = 64 << 10
    /// Largest single read(2): like cat's 128 KiB, small enough that the kernel's copy lands in cache.
    fileprivate static let readPiece = 128 << 10

    /// Whether regular files are mapped (false: always read(2), the fallback; tests and the fuzzer
    /// compare the two).
    let mapsFile: Bool

    public convenience init(path: String) throws { try self.init(path: path, mapsFile: true) }

    init(path: String, mapsFile: Bool) throws {
        self.path = path
        self.mapsFile = mapsFile
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let hint = code == ENOENT ? "check the path" : code == EACCES ? "check the file's permissions" : "check the file"
            throw DumpError(path: path, offset: nil, reason: "cannot open dump: \(DumpError.text(errno: code))", hint: hint)
        }
        do {
            (header, formatVersion, eventLayoutVersion, eventSize, dataOffset) = try DumpReader.readHeader(fd: fd, path: path)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        for mapping in mappings { munmap(mapping.base, mapping.size) }
        close(fd)
    }

    /// A mapping of the whole file as it is now, reused while the file does not grow; nil when the
    /// file cannot be mapped (not a regular file, empty, or mmap refused): then read(2) is used.
    private func currentMapping() -> FileMapping? {
        var info = stat()
        guard mapsFile, fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else { return nil }
        let size = Int(info.st_size)
        if let last = mappings.last, last.size >= size { return last }
        guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else { return nil }
        let mapping = FileMapping(base: base, size: size)
        mappings.append(mapping)
        return mapping
    }

    /// Calls `body` once per events chunk with the chunk's events in place (valid only during the call).
    public func forEachChunk(_ body: (UnsafeBufferPointer<TraceEvent>) throws -> Void) throws -> DumpReadResult {
        try forEachChunk(pagerOwnedByCaller: false, body)
    }

    /// A pager over the mapping `forEachChunk` will use, for a caller that analyses on another thread
    /// (nil when the file cannot be mapped); pass `pagerOwnedByCaller: true` to `forEachChunk` then.
    func pager() -> MappedPager? { currentMapping().map { MappedPager(base: $0.base, size: $0.size) } }

    /// `forEachChunk`; with `pagerOwnedByCaller` the caller's `MappedPager` (not this pass) gives back
    /// the pages behind.
    func forEachChunk(pagerOwnedByCaller: Bool, _ body: (UnsafeBufferPointer<TraceEvent>) throws -> Void) throws -> DumpReadResult {
        var result = DumpReadResult()
        let mapping = currentMapping()
        var window = ReadWindow(fd: fd, path: path, fileOffset: dataOffset, mapping: mapping,
                                pager: pagerOwnedByCaller ? nil : mapping.map { MappedPager(base: $0.base, size: $0.size) })
        defer { window.deallocate() }
        result.bytes = dataOffset

        func stop(_ reason: String) {
            result.damage = DumpDamage(offset: window.fileOffset, reason: reason,
                                       chunksBefore: result.chunks, eventsBefore: result.events)
        }

        while true {
            let available = try window.fill(atLeast: DumpFormat.chunkHeaderSize)
            if available == 0 { break }
            if result.trailer != nil {
                stop("unexpected data after the trailer")
                break
            }
            if available < DumpFormat.chunkHeaderSize {
                stop("truncated chunk header: \(available) of \(DumpFormat.chunkHeaderSize) bytes")
                break
            }
            let chunk = window.current
            let magic = UInt32(littleEndian: chunk.load(fromByteOffset: 0, as: UInt32.self))
            let headerCRC = UInt32(littleEndian: chunk.load(fromByteOffset: 20, as: UInt32.self))
            guard CRC32C.update(0, chunk, 20) == headerCRC else {
                stop(magic == DumpFormat.chunkMagic
                    ? "chunk header checksum mismatch"
                    : "chunk header checksum mismatch and no chunk magic (found 0x\(String(magic, radix: 16))): not a chunk boundary or overwritten")
                break
            }
            guard magic == DumpFormat.chunkMagic else {
                stop("no chunk magic (found 0x\(String(magic, radix: 16)))")
                break
            }
            let rawType = UInt16(littleEndian: chunk.load(fromByteOffset: 4, as: UInt16.self))
            let payloadLength = Int(UInt32(littleEndian: chunk.load(fromByteOffset: 8, as: UInt32.self)))
            let itemCount = Int(UInt32(littleEndian: chunk.load(fromByteOffset: 12, as: UInt32.self)))
            let payloadCRC = UInt32(littleEndian: chunk.load(fromByteOffset: 16, as: UInt32.self))
            let type = DumpFormat.ChunkType(rawValue: rawType)
            let typeName = type?.name ?? "type-\(rawType)"

            if let problem = DumpReader.framingProblem(type: type, payloadLength: payloadLength, itemCount: itemCount, eventSize: eventSize) {
                stop("\(typeName) chunk: \(problem)")
                break
            }
            let total = DumpFormat.chunkHeaderSize + DumpFormat.padded(payloadLength)
            let present = try window.fill(atLeast: total)
            if present < total {
                stop("truncated \(typeName) chunk: needs \(total) bytes, the file ends after \(present)")
                break
            }
            let payload = window.current + DumpFormat.chunkHeaderSize
            guard CRC32C.update(0, payload, DumpFormat.padded(payloadLength)) == payloadCRC else {
                stop("checksum mismatch in \(typeName) chunk")
                break
            }

            switch type {
            case .events:
                let events = UnsafeBufferPointer(
                    start: UnsafeMutableRawPointer(mutating: payload).bindMemory(to: TraceEvent.self, capacity: itemCount),
                    count: itemCount)
                try body(events)
                result.events += UInt64(itemCount)
            case .lost:
                var totals = [UInt64](repeating: 0, count: itemCount)
                for cpu in 0..<itemCount {
                    totals[cpu] = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: cpu * 8, as: UInt64.self))
                }
                result.lostPerCPU = totals
            case .note:
                let bytes = UnsafeRawBufferPointer(start: payload, count: payloadLength)
                result.notes.append(String(decoding: bytes, as: UTF8.self))
            case .trailer:
                let json = Data(bytes: payload, count: payloadLength)
                guard let trailer = try? JSONDecoder().decode(DumpTrailer.self, from: json) else {
                    stop("trailer chunk does not decode as JSON")
                    break
                }
                if trailer.events != result.events {
                    stop("trailer counts \(trailer.events) events but the file holds \(result.events): chunks are missing")
                    break
                }
                result.trailer = trailer
                result.lostPerCPU = trailer.lostPerCPU
            case nil:
                result.skippedChunks += 1
            }
            if result.damage != nil { break }
            window.consume(total)
            result.chunks += 1
            result.bytes = window.fileOffset
        }
        return result
    }

    /// Calls `body` for every event, in file order.
    public func forEachEvent(_ body: (TraceEvent) throws -> Void) throws -> DumpReadResult {
        try forEachChunk { events in
            for event in events { try body(event) }
        }
    }

    // MARK: - Internals

    /// Why a chunk header's sizes cannot be right for its type, or nil.
    private static func framingProblem(type: DumpFormat.ChunkType?, payloadLength: Int, itemCount: Int, eventSize: Int) -> String? {
        if payloadLength > DumpFormat.maxPayloadLength {
            return "implausible payload length \(payloadLength) bytes"
        }
        switch type {
        case .events:
            if payloadLength == 0 || payloadLength % eventSize != 0 || payloadLength / eventSize != itemCount {
                return "payload of \(payloadLength) bytes does not hold \(itemCount) events of \(eventSize) bytes"
            }
        case .lost:
            if payloadLength != itemCount * 8 {
                return "payload of \(payloadLength) bytes does not hold \(itemCount) counters"
            }
        case .note, .trailer, nil:
            break
        }
        return nil
    }

    private static func readHeader(fd: Int32, path: String) throws -> (DumpHeader, Int, Int, Int, UInt64) {
        func failure(_ reason: String, at offset: UInt64, _ hint: String) -> DumpError {
            DumpError(path: path, offset: offset, reason: reason, hint: hint)
        }
        var prefix = [UInt8](repeating: 0, count: DumpFormat.prefixSize)
        let got = try prefix.withUnsafeMutableBytes { try readFully(fd: fd, path: path, into: $0.baseAddress!, count: $0.count, at: 0) }
        if got == 0 {
            throw failure("empty file, not a dpas-trace dump", at: 0, "the recorder wrote nothing: record again")
        }
        let magicLength = min(got, DumpFormat.magic.count)
        guard prefix[0..<magicLength].elementsEqual(DumpFormat.magic[0..<magicLength]) else {
            throw failure("not a dpas-trace dump (\(describeForeign(Array(prefix[0..<got]))))", at: 0,
                          "pass a file written by dpas-trace record")
        }
        if got < DumpFormat.prefixSize {
            throw failure("truncated dump prefix: \(got) of \(DumpFormat.prefixSize) bytes", at: UInt64(got),
                          "the recorder stopped before writing its header: record again")
        }
        let field = { (offset: Int, size: Int) -> Int in
            (0..<size).reduce(0) { $0 | Int(prefix[offset + $1]) << (8 * $1) }
        }
        let prefixCRC = UInt32(field(28, 4))
        guard CRC32C.checksum(prefix[0..<28]) == prefixCRC else {
            throw failure("corrupt dump prefix (checksum mismatch)", at: 0, "the file is damaged at its start: nothing can be read")
        }
        let format = field(8, 2), layout = field(10, 2), eventSize = field(12, 4)
        let headerLength = field(16, 4), headerCRC = UInt32(field(20, 4))
        guard format == Int(DumpFormat.formatVersion) else {
            let hint = format > Int(DumpFormat.formatVersion) ? "use a newer dpas-trace to read it" : "use the dpas-trace that wrote it"
            throw failure("dump format version \(format) is not supported (this dpas-trace reads version \(DumpFormat.formatVersion))", at: 8, hint)
        }
        guard layout == Int(DumpFormat.eventLayoutVersion) else {
            let hint = layout > Int(DumpFormat.eventLayoutVersion) ? "use a newer dpas-trace to read it" : "use the dpas-trace that wrote it"
            throw failure("event layout version \(layout) is not supported (this dpas-trace reads version \(DumpFormat.eventLayoutVersion))", at: 10, hint)
        }
        guard eventSize == DumpFormat.eventSize else {
            throw failure("event size \(eventSize) does not match layout version \(layout) (\(DumpFormat.eventSize) bytes)", at: 12,
                          "the file is damaged or was not written by dpas-trace")
        }
        guard headerLength <= DumpFormat.maxHeaderLength else {
            throw failure("implausible header length \(headerLength) bytes", at: 16, "the file is damaged")
        }
        let paddedLength = DumpFormat.padded(headerLength)
        var json = [UInt8](repeating: 0, count: paddedLength)
        let jsonGot = try json.withUnsafeMutableBytes {
            try readFully(fd: fd, path: path, into: $0.baseAddress!, count: paddedLength, at: UInt64(DumpFormat.prefixSize))
        }
        if jsonGot < paddedLength {
            throw failure("truncated dump header: \(jsonGot) of \(paddedLength) bytes", at: UInt64(DumpFormat.prefixSize + jsonGot),
                          "the recorder stopped while writing its header: record again")
        }
        guard CRC32C.checksum(json) == headerCRC else {
            throw failure("corrupt dump header (checksum mismatch)", at: UInt64(DumpFormat.prefixSize), "the file is damaged: nothing can be read")
        }
        let header: DumpHeader
        do {
            header = try JSONDecoder().decode(DumpHeader.self, from: Data(json[0..<headerLength]))
        } catch {
            throw failure("dump header is not valid header JSON (\(decodingSummary(error)))", at: UInt64(DumpFormat.prefixSize),
                          "the recorder wrote an unexpected header: use the dpas-trace that wrote it")
        }
        return (header, format, layout, eventSize, UInt64(DumpFormat.prefixSize + paddedLength))
    }

    /// Short description of what a foreign file looks like, for the "not a dump" error.
    private static func describeForeign(_ bytes: [UInt8]) -> String {
        if bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) { return "it is an ELF binary" }
        if bytes.starts(with: [0x1F, 0x8B]) { return "it is gzip-compressed: decompress it first" }
        let printable = bytes.allSatisfy { (0x20..<0x7F).contains($0) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if printable {
            let text = String(decoding: bytes.prefix(16), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
                .replacingOccurrences(of: "\t", with: "\\t")
            return "it starts with text \"\(text)\""
        }
        let hex = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        return "wrong magic: starts with \(hex)"
    }

    private static func decodingSummary(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: "missing \"\(key.stringValue)\""
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .dataCorrupted(let context)?:
            "at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default: "\(error)"
        }
    }

    /// pread until `count` bytes or end of file; returns bytes read. Throws on I/O errors.
    fileprivate static func readFully(fd: Int32, path: String, into base: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws -> Int {
        var done = 0
        while done < count {
            let result = pread(fd, base + done, min(count - done, readPiece), off_t(offset) + off_t(done))
            if result > 0 { done += result; continue }
            if result == 0 { break }
            let code = errno
            if code == EINTR { continue }
            throw DumpError(path: path, offset: offset + UInt64(done), reason: "read failed: \(DumpError.text(errno: code))",
                            hint: "copy the readable part with dd and analyse the copy")
        }
        return done
    }
}

/// One read-only mapping of a dump file.
private struct FileMapping {
    let base: UnsafeMutableRawPointer
    let size: Int
}

/// Keeps a mapped pass's resident set small: follows the analysis through the file and gives back
/// the pages behind it (MADV_DONTNEED: they stay in the page cache). A pipelined pass's analysing
/// thread also maps pages in ahead of the reading thread when it would otherwise wait for it
/// (MADV_POPULATE_READ), taking page faults off the busier thread. Neither changes what is read:
/// a page given back early, or not mapped ahead, is faulted in again with the same contents.
struct MappedPager {
    private let base: UnsafeMutableRawPointer
    private let size: Int
    private var canPopulate = true
    private var analysedUpTo = 0
    private var populatedUpTo = 0
    private var releasedUpTo = 0

    /// Pages stay mapped this far behind the analysed position, and are mapped ahead no further than this.
    static let distance = 16 << 20
    static let releaseStep = 8 << 20
    static let populateStep = 1 << 20

    fileprivate init(base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    /// Everything before `pointer` (inside the mapping) was analysed.
    mutating func analysed(upTo pointer: UnsafeRawPointer) {
        let offset = UnsafeRawPointer(base).distance(to: pointer)
        // Only ever advise pages of this mapping (a pass that found the file grown reads another one).
        guard offset >= 0 && offset <= size else { return }
        analysedUpTo = offset
        if offset >= releasedUpTo + Self.distance + Self.releaseStep {
            let upTo = (offset - Self.distance) / Self.releaseStep * Self.releaseStep
            _ = madvise(base + releasedUpTo, upTo - releasedUpTo, MADV_DONTNEED)
            releasedUpTo = upTo
        }
    }

    /// Maps in the next step of pages ahead of the analysed position; false when there is nothing
    /// to do (far enough ahead, at the end, or the kernel cannot: Linux < 5.14 has no MADV_POPULATE_READ).
    mutating func populateAhead() -> Bool {
        let pageMask = Int(getpagesize()) - 1
        let start = max(populatedUpTo, analysedUpTo & ~pageMask)
        guard canPopulate && start < size && start < analysedUpTo + Self.distance else { return false }
        let end = min(size, start + Self.populateStep)
        if madvise(base + start, end - start, 22 /* MADV_POPULATE_READ */) != 0 {
            canPopulate = false
            return false
        }
        populatedUpTo = end
        return true
    }
}

/// The bytes of the file from `fileOffset` (the current chunk) onwards: either straight from a
/// mapping of the file, or an aligned buffer refilled by read(2) in large blocks (grown only when
/// one chunk is larger than the buffer).
private struct ReadWindow {
    let fd: Int32
    let path: String
    /// File offset of `current`.
    private(set) var fileOffset: UInt64
    private let mapping: FileMapping?
    /// Set when this pass manages the mapping's pages itself (not when a pipelined caller does).
    private var pager: MappedPager?
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Valid bytes are buffer[start..<end]; `start` stays a multiple of 8, like every chunk offset.
    private var start = 0
    private var end = 0
    private var atEOF = false

    init(fd: Int32, path: String, fileOffset: UInt64, mapping: FileMapping?, pager: MappedPager?) {
        self.fd = fd
        self.path = path
        self.fileOffset = fileOffset
        self.mapping = mapping
        self.pager = pager
        if mapping != nil {
            capacity = 0
            buffer = UnsafeMutableRawPointer.allocate(byteCount: 0, alignment: 64)
            return
        }
        // No larger than the file needs: small dumps (tests, fuzzing, short recordings) must not
        // pay for a 4 MiB buffer. `fill` grows the window if the file turns out larger.
        var fileInfo = stat()
        let remaining = fstat(fd, &fileInfo) == 0 ? Int(max(0, Int64(fileInfo.st_size) - Int64(fileOffset))) : DumpReader.blockSize
        capacity = min(DumpReader.blockSize, max(DumpReader.minimumWindow, remaining))
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    func deallocate() { buffer.deallocate() }

    var current: UnsafeRawPointer {
        if let mapping { return UnsafeRawPointer(mapping.base + Int(fileOffset)) }
        return UnsafeRawPointer(buffer + start)
    }

    mutating func consume(_ count: Int) {
        start += count
        fileOffset += UInt64(count)
        if let mapping, pager != nil { pager!.analysed(upTo: mapping.base + Int(fileOffset)) }
    }

    /// Makes at least `count` bytes available at `current` unless the file ends first;
    /// returns how many are available (< count only at end of file).
    mutating func fill(atLeast count: Int) throws -> Int {
        if let mapping {
            // A file that shrank after it was mapped must read as truncated, not fault (SIGBUS)
            // on pages past its new end.
            var fileInfo = stat()
            let fileSize = fstat(fd, &fileInfo) == 0 ? min(Int(fileInfo.st_size), mapping.size) : mapping.size
            return max(0, min(count, fileSize - Int(fileOffset)))
        }
        if end - start >= count || atEOF { return min(end - start, count) }
        if start + count > capacity {
            let live = end - start
            // Grow for a chunk larger than the window, but never beyond what the file holds:
            // a damaged length field must not make the reader allocate hundreds of MiB.
            var fileInfo = stat()
            let fileRemaining = fstat(fd, &fileInfo) == 0 ? Int(max(0, Int64(fileInfo.st_size) - Int64(fileOffset))) : count
            if min(count, fileRemaining) > capacity {
                let newCapacity = max(min(count, fileRemaining), capacity * 2)
                let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 64)
                grown.copyMemory(from: buffer + start, byteCount: live)
                buffer.deallocate()
                buffer = grown
                capacity = newCapacity
            } else if live > 0 {
                memmove(buffer, buffer + start, live)
            }
            start = 0
            end = live
        }
        while end - start < count {
            let readOffset = fileOffset + UInt64(end - start)
            let wanted = capacity - end
            if wanted == 0 {  // not grown because the file ends within the window
                atEOF = true
                break
            }
            let got = try DumpReader.readFully(fd: fd, path: path, into: buffer + end, count: wanted, at: readOffset)
            end += got
            if got < wanted {  // readFully stops short only at end of file
                atEOF = true
                break
            }
        }
        return min(end - start, count)
    }
}
