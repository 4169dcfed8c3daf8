// libFuzzer entry point over everything that reads untrusted bytes: the dump reader (prefix,
// header JSON, chunk framing, checksums) and every consumer of decoded events (the three
// analyses and their renderers, the text/CSV/JSON event forms, the Perfetto exporter, top).
// Compiled into one module with the core's sources by fuzz/run; not part of the package build.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Inputs are handed to the reader through a file in memory (tmpfs /dev/shm, unlinked at once and
/// reached as /proc/self/fd/N), so the real path-based API runs. Glibc's Swift module has no
/// memfd_create, hence mkstemp.
nonisolated(unsafe) private var memoryFile: Int32 = -1

private func openMemoryFile() -> Int32 {
    var template = Array("/dev/shm/dpt-fuzz-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    if fd >= 0 { unlink(template) }
    return fd
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if memoryFile < 0 { memoryFile = openMemoryFile() }
    if memoryFile < 0 { fatalError("fuzz: cannot create a file in /dev/shm") }
    ftruncate(memoryFile, 0)
    var written = 0
    while written < size {
        let n = pwrite(memoryFile, data + written, size - written, off_t(written))
        if n <= 0 { return 0 }
        written += n
    }
    let path = "/proc/self/fd/\(memoryFile)"
    guard let analysis = try? DumpAnalysis.run(path: path, sleepPerCPU: true) else { return 0 }
    _ = TextRenderer.full(analysis.report)
    _ = try? JSONRenderer.render(analysis.report)

    guard let reader = try? DumpReader(path: path) else { return 0 }
    var top = TopModel()
    var exported = 0
    var perfetto = PerfettoExporter { exported += $0.count }
    var lines = 0
    var digest = EventDigest()
    let mapped = try? reader.forEachEvent { event in
        digest.add(event)
        top.consume(event)
        try perfetto.consume(event)
        lines += event.describe().count + event.csvRow.count + event.jsonText.count
    }
    try? perfetto.finish()

    // Differential: the read(2) path (for files that cannot be mapped) must see exactly the same.
    var unmappedDigest = EventDigest()
    let unmapped = try? DumpReader(path: path, mapsFile: false).forEachEvent { unmappedDigest.add($0) }
    if let mapped, let unmapped {
        guard unmappedDigest == digest, unmapped.damage == mapped.damage, unmapped.chunks == mapped.chunks,
              unmapped.bytes == mapped.bytes, unmapped.lostPerCPU == mapped.lostPerCPU, unmapped.notes == mapped.notes,
              (unmapped.trailer == nil) == (mapped.trailer == nil) else {
            fatalError("fuzz: mapped and read(2) reads differ: \(mapped.damage as Any) vs \(unmapped.damage as Any)")
        }
    } else if (mapped == nil) != (unmapped == nil) {
        fatalError("fuzz: one read path threw, the other did not")
    }
    _ = TopScreen.render(top, status: TopScreen.Status(source: "fuzz", elapsedSeconds: 1, intervalSeconds: 1), width: 120, height: 40)
    return 0
}

/// What a pass delivered, in a few words: every event's bytes folded in order (FNV-1a).
private struct EventDigest: Equatable {
    var count = 0
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ event: TraceEvent) {
        count += 1
        withUnsafeBytes(of: event) { bytes in
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
    }
}
