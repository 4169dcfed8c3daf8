import Foundation

/// Writes a `.dpt` dump append-only, so that a recorder killed at any moment leaves a file
/// whose complete chunks all read back.
///
/// Every chunk goes out as ONE write(2) of chunk header + payload; nothing already written is
/// ever rewritten. When a write fails (disk full, EIO) the file is truncated back to the last
/// complete chunk and every later call throws the same error.
public final class DumpWriter {
    public let path: String
    public let eventsPerChunk: Int

    /// Bytes in the file: always the end of the last complete chunk.
    public private(set) var bytesWritten: UInt64 = 0
    /// Events in complete chunks on disk (buffered events are not counted until flushed).
    public private(set) var eventsWritten: UInt64 = 0

    private var fd: Int32
    /// Chunk header space followed by `eventsPerChunk` event slots: filled in place, written whole.
    private let chunkBuffer: UnsafeMutableRawPointer
    private let events: UnsafeMutablePointer<TraceEvent>
    private var buffered = 0

    // Trailer bookkeeping.
    /// Events per kind value (index 0 = kinds this build does not know); a raw buffer keeps
    /// the per-event bookkeeping free of array uniqueness and exclusivity checks.
    private let countsByKind: UnsafeMutablePointer<UInt64>
    private static let kindSlots = EventKind.allCases.count + 1
    private var firstTs = UInt64.max
    private var lastTs = UInt64.min
    private var chunks = 0
    private var lostPerCPU: [UInt64] = []
    private var failure: DumpError?
    /// Mirrors `failure != nil` so the per-event path tests a Bool instead of copying the error.
    private var failed = false
    private var finished = false

    /// Creates (or truncates) `path` and writes the header immediately.
    public init(path: String, header: DumpHeader, eventsPerChunk: Int = 4096) throws {
        precondition(eventsPerChunk > 0, "eventsPerChunk must be positive")
        precondition(eventsPerChunk * DumpFormat.eventSize <= DumpFormat.maxPayloadLength, "eventsPerChunk too large")
        self.path = path
        self.eventsPerChunk = eventsPerChunk
        let prefix = try DumpFormat.encodePrefix(header: header)
        guard prefix.count - DumpFormat.prefixSize <= DumpFormat.maxHeaderLength else {
            throw DumpError(path: path, offset: nil, reason: "dump header is \(prefix.count) bytes, over the 16 MiB limit",
                            hint: "record fewer settings")
        }
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw DumpError(path: path, offset: nil, reason: "cannot create dump: \(DumpError.text(errno: code))",
                            hint: "check that the directory exists and is writable")
        }
        let capacity = DumpFormat.chunkHeaderSize + eventsPerChunk * DumpFormat.eventSize
        chunkBuffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        countsByKind = .allocate(capacity: DumpWriter.kindSlots)
        countsByKind.initialize(repeating: 0, count: DumpWriter.kindSlots)
        events = (chunkBuffer + DumpFormat.chunkHeaderSize).bindMemory(to: TraceEvent.self, capacity: eventsPerChunk)
        // Fully initialised here: if this throws, deinit closes the file and frees the buffer.
        try prefix.withUnsafeBytes { try writeAll($0.baseAddress!, $0.count) }
    }

    deinit {
        // Not finished: keep what was buffered (best effort) and leave the file without a trailer,
        // which readers report as "recorder did not finish".
        if !finished && failure == nil { try? flush() }
        if fd >= 0 { close(fd) }
        chunkBuffer.deallocate()
        countsByKind.deallocate()
    }

    /// Buffers one event; writes a chunk when `eventsPerChunk` are buffered.
    @inline(__always)
    public func append(_ event: TraceEvent) throws {
        if failed || finished { try refuse() }
        events[buffered] = event
        buffered += 1
        account(event)
        if buffered == eventsPerChunk { try writeEventsChunk() }
    }

    /// Buffers many events (e.g. one ring-buffer batch), writing chunks as they fill.
    public func append(contentsOf source: UnsafeBufferPointer<TraceEvent>) throws {
        if failed || finished { try refuse() }
        guard var next = source.baseAddress else { return }
        var remaining = source.count
        while remaining > 0 {
            let take = min(remaining, eventsPerChunk - buffered)
            (events + buffered).update(from: next, count: take)
            for index in 0..<take { account(next[index]) }
            buffered += take
            next += take
            remaining -= take
            if buffered == eventsPerChunk { try writeEventsChunk() }
        }
    }

    /// Writes the buffered events, if any, as a (short) chunk.
    public func flush() throws {
        if let failure { throw failure }
        try checkOpen()
        if buffered > 0 { try writeEventsChunk() }
    }

    /// Records cumulative lost-event totals per CPU (index = CPU) as a chunk.
    /// Buffered events are flushed first so the counters follow the events they cover.
    public func recordLost(perCPU totals: [UInt64]) throws {
        try flush()
        lostPerCPU = totals
        let payload = totals.withUnsafeBytes { Array($0) }
        try writeSmallChunk(.lost, itemCount: UInt32(totals.count), payload: payload)
    }

    /// Writes a free-text note chunk (e.g. "trigger mode=INT fired at ts …").
    public func note(_ text: String) throws {
        try flush()
        try writeSmallChunk(.note, itemCount: 0, payload: Array(text.utf8))
    }

    /// Flushes, writes the trailer (counts, lost totals, time range, reason), syncs and closes.
    public func finish(reason: String? = nil) throws {
        try flush()
        var byKind: [String: UInt64] = [:]
        for kind in EventKind.allCases where countsByKind[Int(kind.rawValue)] > 0 {
            byKind[kind.name] = countsByKind[Int(kind.rawValue)]
        }
        if countsByKind[0] > 0 { byKind["unknown"] = countsByKind[0] }
        let trailer = DumpTrailer(
            events: eventsWritten, eventsByKind: byKind, chunks: chunks,
            lostPerCPU: lostPerCPU, lostTotal: lostPerCPU.reduce(0, +),
            firstTsNs: eventsWritten > 0 ? firstTs : nil, lastTsNs: eventsWritten > 0 ? lastTs : nil,
            finishedRealtimeNs: DumpWriter.realtimeNow(), reason: reason)
        let json = try DumpFormat.headerEncoder.encode(trailer)
        try writeSmallChunk(.trailer, itemCount: 0, payload: Array(json))
        finished = true
        if fsync(fd) != 0 {
            let code = errno
            fail(reason: "cannot sync dump to disk: \(DumpError.text(errno: code))")
        }
        close(fd)
        fd = -1
        if let failure { throw failure }
    }

    /// Current unix time in ns (CLOCK_REALTIME).
    public static func realtimeNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    // MARK: - Internals

    @inline(__always)
    private func account(_ event: TraceEvent) {
        let kindIndex = event.kind < UInt32(DumpWriter.kindSlots) ? Int(event.kind) : 0
        countsByKind[kindIndex] &+= 1
        if event.ts_ns < firstTs { firstTs = event.ts_ns }
        if event.ts_ns > lastTs { lastTs = event.ts_ns }
    }

    /// The error for appending to a failed or finished writer (kept off the per-event path).
    private func refuse() throws {
        if let failure { throw failure }
        try checkOpen()
    }

    private func checkOpen() throws {
        guard !finished else {
            throw DumpError(path: path, offset: bytesWritten, reason: "dump already finished",
                            hint: "this is a bug in the caller: nothing may be written after finish()")
        }
    }

    private func writeEventsChunk() throws {
        try checkOpen()
        let count = buffered
        let size = DumpFormat.sealChunk(at: chunkBuffer, type: .events, itemCount: UInt32(count),
                                        payloadLength: count * DumpFormat.eventSize)
        try writeAll(UnsafeRawPointer(chunkBuffer), size)
        buffered = 0
        eventsWritten += UInt64(count)
        chunks += 1
    }

    private func writeSmallChunk(_ type: DumpFormat.ChunkType, itemCount: UInt32, payload: [UInt8]) throws {
        try checkOpen()
        guard payload.count <= DumpFormat.maxPayloadLength else {
            throw DumpError(path: path, offset: bytesWritten, reason: "\(type.name) chunk of \(payload.count) bytes is too large",
                            hint: "keep notes under 256 MiB")
        }
        var bytes = [UInt8](repeating: 0, count: DumpFormat.chunkHeaderSize + DumpFormat.padded(payload.count))
        try bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            payload.withUnsafeBytes { source in
                if source.count > 0 {
                    (base + DumpFormat.chunkHeaderSize).copyMemory(from: source.baseAddress!, byteCount: source.count)
                }
            }
            let size = DumpFormat.sealChunk(at: base, type: type, itemCount: itemCount, payloadLength: payload.count)
            try writeAll(UnsafeRawPointer(base), size)
        }
        chunks += 1
    }

    /// One write(2) for the whole chunk; loops only if the kernel writes less (signal, disk nearly full).
    /// On failure, truncates back to the last complete chunk and remembers the error.
    private func writeAll(_ base: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            let result = write(fd, base + done, count - done)
            if result > 0 {
                done += result
                continue
            }
            let code = result < 0 ? errno : ENOSPC
            if code == EINTR { continue }
            _ = ftruncate(fd, off_t(bytesWritten))
            fail(reason: "cannot write: \(DumpError.text(errno: code))")
            throw failure!
        }
        bytesWritten += UInt64(count)
    }

    private func fail(reason: String) {
        guard !failed else { return }
        failed = true
        failure = DumpError(path: path, offset: bytesWritten, reason: reason,
                            hint: "the dump is readable up to byte \(bytesWritten); free space or fix the device and record again")
    }
}
