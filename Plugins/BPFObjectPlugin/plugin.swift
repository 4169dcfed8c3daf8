import Foundation
import PackagePlugin

/// Compiles every `bpf/*.bpf.c` with clang `-target bpf` and embeds the objects into the
/// target as base64 strings, so `dpas-trace` carries its BPF programs and runs from any directory.
@main
struct BPFObjectPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let packageDir = context.package.directoryURL
        let bpfDir = packageDir.appending(path: "bpf")
        let script = bpfDir.appending(path: "build.sh")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedBPFObjects.swift")
        let inputs = try FileManager.default.subpathsOfDirectory(atPath: bpfDir.path)
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") || $0.hasSuffix(".sh") }
            .map { bpfDir.appending(path: $0) }
        return [
            .buildCommand(
                displayName: "Compiling BPF programs in bpf/",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, bpfDir.path, context.pluginWorkDirectoryURL.path, output.path],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
