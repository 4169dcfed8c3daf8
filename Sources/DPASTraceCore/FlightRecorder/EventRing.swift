import CDPASEvents
import Foundation

/// A fixed-capacity ring of the most recent events: the flight recorder's memory. Appending
/// never allocates once the ring is full; the oldest event is overwritten and counted.
public struct EventRing {
    public let capacity: Int
    private var storage: [dpt_event]
    private var next = 0
    public private(set) var count = 0
    /// Events pushed out of the ring by newer ones (by design, not lost: they are older than the window).
    public private(set) var overwritten: UInt64 = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a ring needs room for at least one event")
        self.capacity = capacity
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// Room for `bytes` bytes of events (at least one).
    public init(bytes: UInt64) {
        self.init(capacity: Int(max(1, bytes / UInt64(MemoryLayout<dpt_event>.stride))))
    }

    public mutating func append(_ event: dpt_event) {
        if storage.count < capacity {
            storage.append(event)
        } else {
            storage[next] = event
            overwritten += 1
        }
        next = (next + 1) % capacity
        count = storage.count
    }

    /// Calls `body` with the events in arrival order, oldest first, in at most two contiguous runs.
    public func withOrderedRuns(_ body: (UnsafeBufferPointer<dpt_event>) throws -> Void) rethrows {
        try storage.withUnsafeBufferPointer { all in
            if storage.count < capacity {
                try body(all)
            } else {
                try body(UnsafeBufferPointer(rebasing: all[next...]))
                if next > 0 { try body(UnsafeBufferPointer(rebasing: all[..<next])) }
            }
        }
    }

    /// Empties the ring and starts counting overwrites afresh.
    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        next = 0
        count = 0
        overwritten = 0
    }
}

/// Parses sizes such as `4096`, `512K`, `64M`, `1G` (powers of 1024) into bytes.
public func parseByteSize(_ text: String) -> UInt64? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
    guard let last = trimmed.last else { return nil }
    let multipliers: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    if let multiplier = multipliers[last] {
        guard let value = UInt64(trimmed.dropLast().trimmingCharacters(in: .whitespaces)) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }
    return UInt64(trimmed.hasSuffix("B") ? String(trimmed.dropLast()) : trimmed)
}
