import Foundation

/// Runs a dump's reading (checksums, framing) and part of the analysis on one thread and the rest of
/// the analysis on the calling one, overlapping the two: with two CPUs the pair finishes in about
/// the time of the slower.
///
/// The reader maps the file, so chunks are handed over in place (no copy); at most `queueDepth`
/// chunks wait between the threads, so the reader never runs far ahead and memory stays flat.
/// Chunks arrive in file order, so results are exactly those of a sequential pass.
enum ChunkPipeline {
    static let queueDepth = 8
    /// Below this size a second thread costs more than it saves.
    static let minimumFileSize = 16 << 20

    /// Whether to use the pipeline for the dump at `path`: a large file and more than one CPU.
    static func worthwhile(path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return Int(info.st_size) >= minimumFileSize && ProcessInfo.processInfo.activeProcessorCount > 1
    }

    /// Reads `reader` on a helper thread, which also runs `alongsideReading` on every events chunk,
    /// and calls `body` on this thread for every events chunk; both see the chunks in file order.
    /// Reads sequentially (one thread, both closures in turn) when the file cannot be mapped.
    /// Rethrows the reader's I/O errors after draining.
    static func run(_ reader: DumpReader, alongsideReading: (UnsafeBufferPointer<TraceEvent>) -> Void,
                    _ body: (UnsafeBufferPointer<TraceEvent>) -> Void) throws -> DumpReadResult {
        func sequentially() throws -> DumpReadResult {
            try reader.forEachChunk { events in
                alongsideReading(events)
                body(events)
            }
        }
        guard var pager = reader.pager() else { return try sequentially() }
        let queue = ChunkQueue(depth: queueDepth)
        return try withoutActuallyEscaping(alongsideReading) { alongsideReading in
            nonisolated(unsafe) let unsafeReader = reader
            nonisolated(unsafe) let readerSide = alongsideReading
            let reading = ReadingThread {
                queue.finish(Result {
                    try unsafeReader.forEachChunk(pagerOwnedByCaller: true) { events in
                        readerSide(events)
                        queue.put(events)
                    }
                })
            }
            guard reading.start() else { return try sequentially() }  // no thread to be had
            // Waiting for the reading thread is spent mapping in the pages it will read next.
            while let events = queue.take(whileWaiting: { pager.populateAhead() }) {
                body(events)
                if let base = events.baseAddress { pager.analysed(upTo: UnsafeRawPointer(base + events.count)) }
            }
            // Joined, so the closure (and the reader) are no longer referenced when this call returns.
            reading.join()
            return try queue.outcome!.get()
        }
    }
}

/// A POSIX thread that can be joined (Foundation's `Thread` cannot: it may still hold its closure
/// after the work ended, which `withoutActuallyEscaping` rightly traps on).
private final class ReadingThread: @unchecked Sendable {
    private var work: (() -> Void)?
    private var thread = pthread_t()

    init(_ work: @escaping () -> Void) { self.work = work }

    /// Starts the work on a new thread with a 1 MiB stack; false when no thread could be created.
    func start() -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 1 << 20)
        let context = Unmanaged.passRetained(self).toOpaque()
        let started = pthread_create(&thread, &attributes, { context in
            let reading = Unmanaged<ReadingThread>.fromOpaque(context!).takeRetainedValue()
            reading.work?()
            reading.work = nil
            return nil
        }, context) == 0
        if !started {
            Unmanaged<ReadingThread>.fromOpaque(context).release()
            work = nil
        }
        return started
    }

    func join() { pthread_join(thread, nil) }
}

/// The bounded queue of chunks (pointers into the reader's mapping) between the two threads: a ring.
private final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var ring: [UnsafeBufferPointer<TraceEvent>]
    /// Chunks put and taken so far; the ring holds the difference.
    private var putCount = 0
    private var takenCount = 0
    private var finished = false
    /// Set once by the reader when it stops (its result or error); read after `take` returns nil.
    private(set) var outcome: Result<DumpReadResult, Error>?

    init(depth: Int) { ring = Array(repeating: UnsafeBufferPointer(start: nil, count: 0), count: depth) }

    /// Whether a thread sleeps on the condition: waking it is a system call, paid only when needed.
    private var readerWaits = false
    private var analyserWaits = false

    func put(_ events: UnsafeBufferPointer<TraceEvent>) {
        condition.lock()
        while putCount - takenCount == ring.count {
            readerWaits = true
            condition.wait()
            readerWaits = false
        }
        ring[putCount % ring.count] = events
        putCount += 1
        if analyserWaits { condition.signal() }
        condition.unlock()
    }

    /// The next chunk in file order; nil once the reader finished and everything was taken. While
    /// none is there, runs `whileWaiting` (outside the lock) until it returns false, then sleeps.
    func take(whileWaiting: () -> Bool) -> UnsafeBufferPointer<TraceEvent>? {
        condition.lock()
        defer { condition.unlock() }
        while takenCount == putCount && !finished {
            condition.unlock()
            let worked = whileWaiting()
            condition.lock()
            if worked { continue }
            if takenCount != putCount || finished { break }
            analyserWaits = true
            condition.wait()
            analyserWaits = false
        }
        if takenCount == putCount { return nil }
        let events = ring[takenCount % ring.count]
        takenCount += 1
        if readerWaits { condition.signal() }
        return events
    }

    func finish(_ result: Result<DumpReadResult, Error>) {
        condition.lock()
        outcome = result
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
