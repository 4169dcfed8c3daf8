// libFuzzer entry point over everything that reads untrusted bytes: the dump reader (prefix,
// header JSON, chunk framing, checksums) and every consumer of decoded events (the three
// analyses and their renderers, the text/CSV/JSON event forms, the Perfetto exporter, top).
// Compiled into one module with the core's sources by fuzz/run; not part of the package build.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Inputs are handed to the reader through an in-memory file, so the real path-based API runs.
nonisolated(unsafe) private var memoryFile: Int32 = -1

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if memoryFile < 0 { memoryFile = memfd_create("dpt-fuzz", 0) }
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
    _ = try? reader.forEachEvent { event in
        top.consume(event)
        try perfetto.consume(event)
        lines += event.describe().count + event.csvRow.count + event.jsonText.count
    }
    try? perfetto.finish()
    _ = TopScreen.render(top, status: TopScreen.Status(source: "fuzz", elapsedSeconds: 1, intervalSeconds: 1), width: 120, height: 40)
    return 0
}
