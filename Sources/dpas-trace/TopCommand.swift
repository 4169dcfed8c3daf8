import ArgumentParser
import DPASTraceCore
import Foundation

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Full-screen live histograms: hybrid sleeps, I/O latency, buckets, DPAS modes per CPU.",
        discussion: """
            Keys: q quits (probes are detached and a final summary is printed), p pauses, c clears.
            When stdout is not a terminal, prints the same view as plain text every interval.
            With --from, replays a dump at --speed times its recorded pace (0: as fast as possible).
            """
    )

    @Option(name: .customLong("from"), help: ArgumentHelp("Replay this dump instead of tracing live.", valueName: "DUMP"))
    var dumpPath: String?

    @Option(help: "Seconds between frames.")
    var interval: Double = 1

    @Option(help: "Replay speed relative to the recorded pace (with --from); 0 replays as fast as possible.")
    var speed: Double = 1

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be greater than 0") }
        guard speed >= 0 else { throw ValidationError("--speed must be 0 or more") }
    }

    func run() throws {
        guard let dumpPath else {
            throw ValidationError("live top needs the kernel side; use --from DUMP to replay a recording")
        }
        try replay(dumpPath)
    }

    private struct Quit: Error {}

    private func replay(_ path: String) throws {
        let reader = try DumpReader(path: path)
        let driver = TopDriver(source: "replay of \(path)", interval: interval, interactive: Terminal.isInteractive)
        var model = TopModel()
        let intervalNs = UInt64(interval * 1e9)
        let pause = speed > 0 ? interval / speed : 0
        var frameEnd: UInt64?
        var result: DumpReadResult?
        do {
            result = try reader.forEachEvent { event in
                if frameEnd == nil { frameEnd = event.ts_ns + intervalNs }
                if event.ts_ns >= frameEnd! {
                    if !driver.frame(&model, wait: pause) { throw Quit() }
                    // Idle stretches of the recording become one frame, not one per interval.
                    frameEnd = max(frameEnd! + intervalNs, event.ts_ns - event.ts_ns % intervalNs + intervalNs)
                }
                model.consume(event)
            }
        } catch is Quit {}
        if let result {
            model.lostEvents = result.lostTotal
            if !driver.quit { driver.holdUntilQuit(&model) }
        }
        driver.finish(model)
        for warning in result?.warnings(path: path) ?? [] {
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
    }
}
