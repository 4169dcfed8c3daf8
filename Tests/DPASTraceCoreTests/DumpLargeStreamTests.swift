import Foundation
import Testing
@testable import DPASTraceCore

/// Millions of events through the real writer and reader: everything comes back. (That memory does
/// not grow with the dump is measured in a child process: AnalysisMemoryTests.)
@Suite struct DumpLargeStreamTests {
    static let eventCount = 5_000_000

    @Test func fiveMillionEventsComeBack() throws {
        let scratch = try DumpScratch()
        let path = scratch.path("large.dpt")

        // Write: one reusable batch, as the ring-buffer consumer does.
        let batchSize = 10_000
        var batch = [TraceEvent](repeating: TraceEvent(), count: batchSize)
        let writer = try DumpWriter(path: path, header: dumpTestHeader())
        var expectedTsSum: UInt64 = 0
        var expectedRequestedSum: UInt64 = 0
        var written = 0
        let writeStart = DispatchTime.now()
        while written < Self.eventCount {
            let count = min(batchSize, Self.eventCount - written)
            for slot in 0..<count {
                var event = TraceEvent.blank(.hybridSleep, ts: UInt64(written + slot), cpu: UInt32(slot & 1))
                event.sleep_requested_ns = UInt64((written + slot) % 7)
                batch[slot] = event
                expectedTsSum &+= event.ts_ns
                expectedRequestedSum &+= event.sleep_requested_ns
            }
            try batch.withUnsafeBufferPointer { try writer.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<count])) }
            written += count
        }
        try writer.recordLost(perCPU: [0, 5])
        try writer.finish(reason: "large stream test")
        let writeSeconds = Double(DispatchTime.now().uptimeNanoseconds - writeStart.uptimeNanoseconds) / 1e9
        #expect(writer.bytesWritten > UInt64(Self.eventCount * 128))

        // Read back through the fast path; memory must stay where it was.
        let reader = try DumpReader(path: path)
        do {
            var count: UInt64 = 0
            var tsSum: UInt64 = 0
            var requestedSum: UInt64 = 0
            let readStart = DispatchTime.now()
            let result = try reader.forEachChunk { events in
                for event in events {
                    tsSum &+= event.ts_ns
                    requestedSum &+= event.sleep_requested_ns
                }
                count += UInt64(events.count)
            }
            let readSeconds = Double(DispatchTime.now().uptimeNanoseconds - readStart.uptimeNanoseconds) / 1e9
            #expect(count == UInt64(Self.eventCount) && result.events == count)
            #expect(tsSum == expectedTsSum)
            #expect(requestedSum == expectedRequestedSum)
            #expect(result.isComplete && result.lostTotal == 5 && result.trailer?.events == count)
            print("large dump: \(writer.bytesWritten >> 20) MiB written in \(String(format: "%.2f", writeSeconds)) s, "
                + "read in \(String(format: "%.2f", readSeconds)) s "
                + "(\(String(format: "%.0f", Double(writer.bytesWritten) / readSeconds / 1e6)) MB/s)")
        }
        // Memory: measured where nothing else runs, in a child process
        // (AnalysisMemoryTests.reportMemoryDoesNotGrowWithTheDump).
    }
}
