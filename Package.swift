// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dpas-trace",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dpas-trace", targets: ["dpas-trace"]),
        .library(name: "DPASTraceCore", targets: ["DPASTraceCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The event layout shared with the BPF programs: bpf/include/dpas_trace_events.h.
        .systemLibrary(name: "CDPASEvents", path: "Sources/CDPASEvents"),
        // libbpf from the system (Debian: libbpf-dev).
        .systemLibrary(
            name: "CLibBPF",
            path: "Sources/CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev", "libelf-dev", "zlib1g-dev"])]
        ),
        // Pure analysis core: events, dump files, analyses, renderers. No kernel, no libbpf.
        .target(name: "DPASTraceCore", dependencies: ["CDPASEvents"]),
        // Kernel-facing side: BPF objects (compiled from bpf/ at build time), probe plans, live sessions.
        .target(
            name: "DPASTraceKernel",
            dependencies: ["DPASTraceCore", "CDPASEvents", "CLibBPF"],
            plugins: ["BPFObjectPlugin"]
        ),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool()),
        .executableTarget(
            name: "dpas-trace",
            dependencies: [
                "DPASTraceCore",
                "DPASTraceKernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A deterministic synthetic event stream for benchmarks, fuzzing seeds and tests.
        .target(name: "DPASTraceSynthetic", dependencies: ["DPASTraceCore"]),
        .executableTarget(
            name: "dpt-synth",
            dependencies: ["DPASTraceCore", "DPASTraceSynthetic", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The tracing cost per hrtimer sleep on a real CPU, and under TCG in the lab (BENCHMARKS.md).
        .executableTarget(
            name: "dpt-sleep-bench",
            dependencies: ["DPASTraceKernel", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Empty fentry programs on given functions: the tracing cost floor in bench/lab (BENCHMARKS.md).
        .executableTarget(name: "dpt-hook-floor", dependencies: ["CLibBPF", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Child processes for tests, with deadlines (Foundation's Process hangs on daemonizing children).
        .target(name: "DPASTraceTestSupport", path: "Tests/DPASTraceTestSupport"),
        .testTarget(name: "DPASTraceCoreTests", dependencies: ["DPASTraceCore", "DPASTraceSynthetic", "CDPASEvents", "DPASTraceTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "DPASTraceKernelTests", dependencies: ["DPASTraceKernel", "DPASTraceCore", "CDPASEvents", "DPASTraceTestSupport"]),
    ]
)
