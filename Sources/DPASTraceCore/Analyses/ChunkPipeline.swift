import Foundation

/// Runs a dump's reading (read(2), checksums, framing) on one thread and the analysis of its events
/// on the calling one, overlapping the two: on a replay each costs about as much as the other, so
/// with two CPUs the pair finishes in about the time of the slower one.
///
/// Chunks pass through a fixed ring of reusable buffers, so memory stays flat (`slotCount` × the
/// largest chunk) whatever the dump size. Chunks arrive in file order, so results are exactly
/// those of a sequential pass.
enum ChunkPipeline {
    static let slotCount = 4
    /// Below this size a second thread costs more than it saves.
    static let minimumFileSize = 16 << 20

    /// Whether to use the pipeline for the dump at `path`: a large file and more than one CPU.
    static func worthwhile(path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return Int(info.st_size) >= minimumFileSize && ProcessInfo.processInfo.activeProcessorCount > 1
    }

    /// Reads `reader` on a helper thread and calls `body` on this thread for every events chunk,
    /// in file order. Rethrows the reader's I/O errors after draining.
    static func run(_ reader: DumpReader, _ body: (UnsafeBufferPointer<TraceEvent>) -> Void) throws -> DumpReadResult {
        let handoff = ChunkHandoff(slots: slotCount)
        nonisolated(unsafe) let unsafeReader = reader
        let thread = Thread {
            let outcome = Result {
                try unsafeReader.forEachChunk { events in
                    let slot = handoff.takeEmpty()
                    slot.store(events)
                    handoff.putFull(slot)
                }
            }
            handoff.finish(outcome)
        }
        thread.stackSize = 1 << 20
        thread.start()
        while let slot = handoff.takeFull() {
            body(slot.events)
            handoff.putEmpty(slot)
        }
        return try handoff.outcome!.get()
    }
}

/// One reusable event buffer; owned by exactly one thread at a time (handed over under the lock).
private final class ChunkSlot: @unchecked Sendable {
    private var storage: UnsafeMutablePointer<TraceEvent>?
    private var capacity = 0
    private var count = 0

    func store(_ events: UnsafeBufferPointer<TraceEvent>) {
        if events.count > capacity {
            storage?.deallocate()
            capacity = events.count
            storage = .allocate(capacity: capacity)
        }
        if let storage, let base = events.baseAddress { storage.update(from: base, count: events.count) }
        count = events.count
    }

    var events: UnsafeBufferPointer<TraceEvent> { UnsafeBufferPointer(start: storage, count: count) }

    deinit { storage?.deallocate() }
}

/// The queues between the two threads: empty slots go to the reader, full ones to the analyser.
private final class ChunkHandoff: @unchecked Sendable {
    private let condition = NSCondition()
    private var empty: [ChunkSlot]
    private var full: [ChunkSlot] = []
    private var finished = false
    /// Set once by the reader when it stops (its result or error); read after `takeFull` returns nil.
    private(set) var outcome: Result<DumpReadResult, Error>?

    init(slots: Int) { empty = (0..<slots).map { _ in ChunkSlot() } }

    func takeEmpty() -> ChunkSlot {
        condition.lock()
        defer { condition.unlock() }
        while empty.isEmpty { condition.wait() }
        return empty.removeLast()
    }

    func putFull(_ slot: ChunkSlot) {
        condition.lock()
        full.append(slot)
        condition.broadcast()
        condition.unlock()
    }

    /// The next full slot in file order; nil once the reader finished and everything was taken.
    func takeFull() -> ChunkSlot? {
        condition.lock()
        defer { condition.unlock() }
        while full.isEmpty && !finished { condition.wait() }
        return full.isEmpty ? nil : full.removeFirst()
    }

    func putEmpty(_ slot: ChunkSlot) {
        condition.lock()
        empty.append(slot)
        condition.broadcast()
        condition.unlock()
    }

    func finish(_ result: Result<DumpReadResult, Error>) {
        condition.lock()
        outcome = result
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
