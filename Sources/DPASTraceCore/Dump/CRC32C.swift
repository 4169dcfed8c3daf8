import CDPASEvents

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every dump chunk.
///
/// Replay speed of large dumps is bounded by this checksum. Where the CPU has the SSE4.2 crc32
/// instruction (`dpt_crc32c_hw` in Sources/CDPASEvents/dpt_crc32c.h: three parallel streams, ~15× faster) it is used;
/// elsewhere the portable slicing-by-8 table code below: eight 256-entry tables let the loop
/// consume 8 bytes per step with independent lookups, on raw pointers without bounds checks.
/// Both give identical results (tested against each other and a bit-by-bit definition).
public enum CRC32C {
    /// The eight tables, 8 × 256 entries, table k at offset k * 256. Built once, never freed.
    nonisolated(unsafe) private static let tables: UnsafePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : 0x82F6_3B78) }
            table[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = table[(slice - 1) * 256 + byte]
                table[slice * 256 + byte] = (previous >> 8) ^ table[Int(previous & 0xFF)]
            }
        }
        return UnsafePointer(table)
    }()

    /// CRC-32C of `bytes`, continuing from `crc` (the result of a previous call, 0 to start):
    /// `update(update(0, a), b) == checksum(a + b)`.
    @inline(__always)
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return update(crc, base, bytes.count)
    }

    /// True when the hardware instruction is used.
    public static let usesHardware: Bool = dpt_crc32c_hw_available() != 0

    /// Zero-run operators for merging the hardware path's three parallel streams (see the C header).
    nonisolated(unsafe) private static let longZeros: UnsafePointer<UInt32> = zerosTable(Int(DPT_CRC32C_LONG))
    nonisolated(unsafe) private static let shortZeros: UnsafePointer<UInt32> = zerosTable(Int(DPT_CRC32C_SHORT))

    private static func zerosTable(_ length: Int) -> UnsafePointer<UInt32> {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * 256)
        dpt_crc32c_zeros_table(table, length)
        return UnsafePointer(table)
    }

    /// CRC-32C of `count` bytes at `base`, continuing from `crc`.
    @inline(__always)
    public static func update(_ crc: UInt32, _ base: UnsafeRawPointer, _ count: Int) -> UInt32 {
        usesHardware ? dpt_crc32c_hw(crc, base, count, longZeros, shortZeros) : updateWithTables(crc, base, count)
    }

    /// The portable slicing-by-8 implementation (public so tests can compare it with the hardware path).
    public static func updateWithTables(_ crc: UInt32, _ base: UnsafeRawPointer, _ count: Int) -> UInt32 {
        let t = tables
        var c = ~crc
        var p = base
        var remaining = count
        while remaining >= 8 {
            let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            let low = c ^ UInt32(truncatingIfNeeded: word)
            let high = UInt32(truncatingIfNeeded: word >> 32)
            c = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
            p += 8
            remaining &-= 8
        }
        while remaining > 0 {
            c = (c >> 8) ^ t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            remaining &-= 1
        }
        return ~c
    }

    /// CRC-32C of a byte collection (convenience for small buffers and tests).
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        let array = Array(bytes)
        return array.withUnsafeBytes { update(0, $0) }
    }
}
