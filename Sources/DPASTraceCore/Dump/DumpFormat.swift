import Foundation

/// The on-disk layout of a `.dpt` dump (documented byte by byte in docs/dump-format.md).
///
/// A 32-byte prefix, the header as JSON padded to 8 bytes, then append-only chunks:
/// a 24-byte chunk header and a payload padded to 8 bytes. Every offset in the file is a
/// multiple of 8, so event payloads can be handed out in place as `TraceEvent` buffers.
public enum DumpFormat {
    /// Bytes 0..<8: `\x89 D P T \r \n \x1a \n` (PNG-style: catches text-mode and 7-bit mangling).
    public static let magic: [UInt8] = [0x89, 0x44, 0x50, 0x54, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Bumped on any incompatible change of the prefix, chunk framing or a known chunk's payload.
    public static let formatVersion: UInt16 = 1
    /// The event layout this build reads and writes (`DPT_EVENT_LAYOUT_VERSION`).
    public static let eventLayoutVersion = UInt16(DPT_EVENT_LAYOUT_VERSION)
    /// `DPT_EVENT_SIZE`, which the C header pins to `sizeof(struct dpt_event)`.
    public static let eventSize = Int(DPT_EVENT_SIZE)

    public static let prefixSize = 32
    public static let chunkHeaderSize = 24
    /// "DPTC" little-endian: starts every chunk header.
    public static let chunkMagic: UInt32 = 0x4354_5044
    /// Larger headers or payloads are treated as damage rather than allocated.
    public static let maxHeaderLength = 16 << 20
    public static let maxPayloadLength = 256 << 20

    /// Chunk types. Readers skip unknown types whose checksums are valid.
    public enum ChunkType: UInt16, Sendable, CaseIterable {
        /// N × event size bytes of `struct dpt_event`, N > 0; item count = N.
        case events = 1
        /// Cumulative lost-event totals per CPU: item count × u64, index = CPU.
        case lost = 2
        /// Free UTF-8 text.
        case note = 3
        /// JSON `DumpTrailer`; the last chunk of a finished recording.
        case trailer = 4

        public var name: String {
            switch self {
            case .events: "events"
            case .lost: "lost-counters"
            case .note: "note"
            case .trailer: "trailer"
            }
        }
    }

    /// `length` rounded up to a multiple of 8.
    @inline(__always) public static func padded(_ length: Int) -> Int { (length + 7) & ~7 }

    /// Fills the 24-byte chunk header at `base`, whose padded payload must already follow it
    /// (padding zeroed), and returns the chunk's total size.
    static func sealChunk(at base: UnsafeMutableRawPointer, type: ChunkType, itemCount: UInt32, payloadLength: Int) -> Int {
        let paddedLength = padded(payloadLength)
        let payloadCRC = CRC32C.update(0, base + chunkHeaderSize, paddedLength)
        base.storeBytes(of: chunkMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: type.rawValue.littleEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: UInt32(payloadLength).littleEndian, toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: itemCount.littleEndian, toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: payloadCRC.littleEndian, toByteOffset: 16, as: UInt32.self)
        let headerCRC = CRC32C.update(0, base, 20)
        base.storeBytes(of: headerCRC.littleEndian, toByteOffset: 20, as: UInt32.self)
        return chunkHeaderSize + paddedLength
    }

    /// The prefix and padded header JSON, ready to be written as the file's first bytes.
    static func encodePrefix(header: DumpHeader) throws -> [UInt8] {
        let json = try headerEncoder.encode(header)
        let paddedLength = padded(json.count)
        var bytes = [UInt8](repeating: 0, count: prefixSize + paddedLength)
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            for (index, byte) in magic.enumerated() { raw[index] = byte }
            base.storeBytes(of: formatVersion.littleEndian, toByteOffset: 8, as: UInt16.self)
            base.storeBytes(of: eventLayoutVersion.littleEndian, toByteOffset: 10, as: UInt16.self)
            base.storeBytes(of: UInt32(eventSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            base.storeBytes(of: UInt32(json.count).littleEndian, toByteOffset: 16, as: UInt32.self)
            json.withUnsafeBytes { (base + prefixSize).copyMemory(from: $0.baseAddress!, byteCount: json.count) }
            let headerCRC = CRC32C.update(0, base + prefixSize, paddedLength)
            base.storeBytes(of: headerCRC.littleEndian, toByteOffset: 20, as: UInt32.self)
            base.storeBytes(of: UInt32(0), toByteOffset: 24, as: UInt32.self)
            let prefixCRC = CRC32C.update(0, base, 28)
            base.storeBytes(of: prefixCRC.littleEndian, toByteOffset: 28, as: UInt32.self)
        }
        return bytes
    }

    /// Sorted keys so the same header always produces the same bytes.
    static var headerEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// What the recorder wrote when it finished: counts to check the file against and lost totals.
public struct DumpTrailer: Codable, Sendable, Equatable {
    /// Events in all events chunks.
    public var events: UInt64
    /// Events per kind name ("rq_start", …; "unknown" for kinds this build does not know).
    public var eventsByKind: [String: UInt64]
    /// Number of chunks before the trailer (all types).
    public var chunks: Int
    /// Final cumulative lost-event totals per CPU (index = CPU) and their sum.
    public var lostPerCPU: [UInt64]
    public var lostTotal: UInt64
    /// Smallest and largest event `ts_ns`; nil when there were no events.
    public var firstTsNs: UInt64?
    public var lastTsNs: UInt64?
    /// Unix time (ns) when the recording finished.
    public var finishedRealtimeNs: UInt64
    /// Why recording ended (e.g. "duration elapsed", "SIGINT", "trigger mode=INT").
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case events, eventsByKind = "events_by_kind", chunks
        case lostPerCPU = "lost_per_cpu", lostTotal = "lost_total"
        case firstTsNs = "first_ts_ns", lastTsNs = "last_ts_ns"
        case finishedRealtimeNs = "finished_realtime_ns", reason
    }
}

/// A dump that cannot be opened or written. One line: file, reason, offset, what to do.
public struct DumpError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    /// Byte offset the problem concerns; nil when it is not about a position (e.g. open failed).
    public var offset: UInt64?
    public var reason: String
    /// What the user can do about it.
    public var hint: String

    public init(path: String, offset: UInt64?, reason: String, hint: String) {
        self.path = path
        self.offset = offset
        self.reason = reason
        self.hint = hint
    }

    public var description: String {
        let position = offset.map { " at byte \($0)" } ?? ""
        return "\(path): \(reason)\(position) (\(hint))"
    }

    /// The C library's text for `code`, e.g. "No space left on device".
    static func text(errno code: Int32) -> String { String(cString: strerror(code)) }
}
