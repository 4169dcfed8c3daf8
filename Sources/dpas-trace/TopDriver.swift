import DPASTraceCore
import Foundation

/// Paces `dpas-trace top`: draws a frame per interval, handles the keys (q quit, p pause,
/// c clear) while waiting, and degrades to plain periodic text when stdout is not a terminal.
/// Sources (a replayed dump, a live kernel session) feed the model and call `frame`.
final class TopDriver {
    let source: String
    let interval: Double
    private let terminal: Terminal?
    private let started = Date()
    private(set) var paused = false
    private(set) var quit = false
    /// Work a live source does while a frame waits: drain the BPF ring buffer into the model for up
    /// to the given seconds. Without it (replay) the wait just sleeps.
    var idle: ((inout TopModel, Double) -> Void)?

    init(source: String, interval: Double, interactive: Bool) {
        self.source = source
        self.interval = interval
        terminal = interactive ? Terminal() : nil
        terminal?.enter()
    }

    var elapsed: Double { Date().timeIntervalSince(started) }

    /// Shows the model, then waits `wait` seconds (default: one interval) for keys. Returns false
    /// once the user asked to quit. While paused it keeps waiting (and redrawing on resize).
    func frame(_ model: inout TopModel, wait: Double? = nil, finished: Bool = false) -> Bool {
        show(model, finished: finished)
        let slice = 0.1
        var remaining = wait ?? interval
        guard let terminal else {
            while !quit && remaining > 0 {
                pass(&model, slice: min(slice, remaining))
                remaining -= slice
            }
            return !quit
        }
        var lastSize = terminal.size
        while !quit && (remaining > 0 || paused) {
            let key: UInt8?
            if idle != nil {
                pass(&model, slice: slice)
                key = quit ? nil : terminal.readKey(within: 0)
            } else {
                key = terminal.readKey(within: slice)
                if StopSignal.requested != 0 { quit = true }  // SIGTERM / SIGINT end a replay like `q`
            }
            if quit { break }
            if let key {
                switch key {
                case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3 /* Ctrl-C in raw mode */: quit = true
                case UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: " "): paused.toggle()
                case UInt8(ascii: "c"), UInt8(ascii: "C"): model.clear()
                default: break
                }
                show(model, finished: finished)
            } else if terminal.size != lastSize {
                lastSize = terminal.size
                show(model, finished: finished)
            }
            if !paused { remaining -= slice }
        }
        return !quit
    }

    /// Spends one slice of a frame's wait: the live source's work, or a sleep. Ctrl-C / SIGTERM
    /// (StopSignal) end the view like `q`.
    private func pass(_ model: inout TopModel, slice: Double) {
        if let idle { idle(&model, slice) } else { Thread.sleep(forTimeInterval: slice) }
        if StopSignal.requested != 0 { quit = true }
    }

    /// Blocks until `q` (interactive) — used when a replay has ended but the screen should stay.
    func holdUntilQuit(_ model: inout TopModel) {
        guard terminal != nil else { return }
        while frame(&model, wait: 3600, finished: true) {}
    }

    /// Leaves the full screen and prints the final summary as plain text.
    func finish(_ model: TopModel) {
        terminal?.restore()
        let lines = TopScreen.render(model, status: status(finished: true), width: 160, height: nil)
        print(lines.joined(separator: "\n"))
    }

    private func status(finished: Bool) -> TopScreen.Status {
        TopScreen.Status(source: source, elapsedSeconds: elapsed, intervalSeconds: interval, paused: paused, finished: finished)
    }

    private func show(_ model: TopModel, finished: Bool) {
        if let terminal {
            let size = terminal.size
            terminal.draw(TopScreen.render(model, status: status(finished: finished), width: size.columns, height: size.rows))
        } else {
            print(TopScreen.render(model, status: status(finished: finished), width: 160, height: nil).joined(separator: "\n"))
            print("")
            fflush(nil)
        }
    }
}
