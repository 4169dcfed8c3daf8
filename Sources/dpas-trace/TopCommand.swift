import ArgumentParser
import DPASTraceCore
import DPASTraceKernel
import Foundation

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Full-screen live histograms: hybrid sleeps, I/O latency, buckets, DPAS modes per CPU.",
        discussion: """
            Keys: q quits (probes are detached and a final summary is printed), p pauses, c clears.
            When stdout is not a terminal, prints the same view as plain text every interval.
            Without --from, traces live (root or CAP_BPF + CAP_PERFMON); Ctrl-C / SIGTERM end it like q.
            With --from, replays a dump at --speed times its recorded pace (0: as fast as possible).
            """
    )

    @OptionGroup(title: "Live tracing (without --from)")
    var live: LiveTraceOptions

    @Option(name: .customLong("from"), help: ArgumentHelp("Replay this dump instead of tracing live.", valueName: "DUMP"))
    var dumpPath: String?

    @Option(help: "Seconds between frames.")
    var interval: Double = 1

    @Option(help: "Replay speed relative to the recorded pace (with --from); 0 replays as fast as possible.")
    var speed: Double = 1

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be greater than 0") }
        guard speed >= 0 else { throw ValidationError("--speed must be 0 or more") }
        try LiveTraceOptions.refuse(live.given, withDump: dumpPath)
    }

    func run() throws {
        StopSignal.install()
        if let dumpPath { try replay(dumpPath) } else { try traceLive() }
    }

    /// Live source: ring-buffer events into the model between frames, the session's lost-event
    /// counters on every frame; the probes are detached before the final summary is printed.
    private func traceLive() throws {
        let session = try Live.open(live, streamEvents: true)
        defer { session.close() }
        let start = Date()
        let source = "live, \(live.device ?? "every disk"), Linux \(session.facts.release)"
        let driver = TopDriver(source: source, interval: interval, interactive: Terminal.isInteractive)
        var failure: String?
        driver.idle = { model, seconds in
            let handled = session.poll(timeoutMs: Int32(seconds * 1000)) { model.consume($0.pointee) }
            if handled < 0, failure == nil {
                failure = "reading the BPF ring buffer failed: \(String(cString: strerror(Int32(-handled))))"
                StopSignal.requested = 1
            }
        }
        var model = TopModel()
        func updateLosses() {
            guard let snapshot = try? session.snapshot() else { return }
            model.lostEvents = snapshot.lostEvents.total
            model.skippedProbeRuns = snapshot.skippedRunsTotal
        }
        repeat { updateLosses() } while driver.frame(&model)
        updateLosses()
        Live.printRunSummary(session, live, since: start)
        session.close()
        driver.finish(model)
        if let failure { throw Offline.fail(failure) }
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
