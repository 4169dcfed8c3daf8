/// Per-CPU DPAS mode over time, folded into a fixed number of time bins so a timeline of any
/// length draws in bounded memory: each bin remembers how long each mode was active in it.
/// Segments are runs of bins with the same dominant mode.
public struct ModeTimeline: Sendable {
    public let startNs: UInt64
    public let endNs: UInt64
    public let binCount: Int
    private var cpus: [UInt32: CPUTrack] = [:]

    private struct CPUTrack: Sendable {
        var mode: UInt8?
        var since: UInt64 = 0
        /// Per bin, nanoseconds spent in each of the five modes.
        var time: [[UInt64]]
    }

    public struct Segment: Sendable, Equatable {
        public var firstBin: Int
        public var lastBin: Int
        public var mode: DPASMode
    }

    public init(startNs: UInt64, endNs: UInt64, bins: Int = 240) {
        self.startNs = startNs
        self.endNs = max(endNs, startNs + 1)
        binCount = max(1, bins)
    }

    public var cpuList: [UInt32] { cpus.keys.sorted() }

    public mutating func consume(_ event: TraceEvent) {
        let mode: UInt8?
        if event.kind == EventKind.mode.rawValue {
            mode = event.mode_to
        } else if event.kind == EventKind.rqStart.rawValue, event.flags & DPT_F_DPAS != 0 {
            mode = event.mode_to
        } else {
            return
        }
        guard let mode, Int(mode) < dpasModes.count else { return }
        var track = cpus[event.cpu] ?? CPUTrack(time: Array(repeating: Array(repeating: 0, count: dpasModes.count), count: binCount))
        if let current = track.mode {
            if current != mode {
                add(&track, mode: current, from: track.since, to: event.ts_ns)
                track.mode = mode
                track.since = event.ts_ns
            }
        } else {
            track.mode = mode
            track.since = event.ts_ns
        }
        cpus[event.cpu] = track
    }

    /// Closes every CPU's open period at the end of the timeline.
    public mutating func finish() {
        for cpu in cpus.keys {
            guard var track = cpus[cpu], let mode = track.mode else { continue }
            add(&track, mode: mode, from: track.since, to: endNs)
            track.mode = nil
            cpus[cpu] = track
        }
    }

    public func segments(cpu: UInt32) -> [Segment] {
        guard let track = cpus[cpu] else { return [] }
        var segments: [Segment] = []
        for bin in 0..<binCount {
            let times = track.time[bin]
            guard let peak = times.max(), peak > 0, let index = times.firstIndex(of: peak) else { continue }
            let mode = dpasModes[index]
            if var last = segments.last, last.mode == mode, last.lastBin == bin - 1 {
                last.lastBin = bin
                segments[segments.count - 1] = last
            } else {
                segments.append(Segment(firstBin: bin, lastBin: bin, mode: mode))
            }
        }
        return segments
    }

    private func bin(of ts: UInt64) -> Int {
        let clamped = min(max(ts, startNs), endNs)
        return min(binCount - 1, Int(Double(clamped - startNs) / Double(endNs - startNs) * Double(binCount)))
    }

    private func binStart(_ bin: Int) -> UInt64 {
        startNs + UInt64(Double(endNs - startNs) * Double(bin) / Double(binCount))
    }

    private func add(_ track: inout CPUTrack, mode: UInt8, from: UInt64, to: UInt64) {
        let from = min(max(from, startNs), endNs), to = min(max(to, startNs), endNs)
        guard to > from else { return }
        var cursor = from
        var bin = self.bin(of: from)
        while cursor < to && bin < binCount {
            let binEnd = bin + 1 < binCount ? binStart(bin + 1) : endNs
            let end = min(to, max(binEnd, cursor + 1))
            track.time[bin][Int(mode)] += end - cursor
            cursor = end
            bin += 1
        }
    }
}
