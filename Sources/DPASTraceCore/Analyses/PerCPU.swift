// Per-CPU state for the accumulators, without hashing or copies on the per-event path.

/// What `PerCPU` keeps per CPU: starts empty.
protocol PerCPUState: Sendable {
    init()
}

/// State per CPU id. Real CPU ids are small and dense, so they index an array; ids beyond
/// `arrayLimit` (or negative ones, only seen in damaged input or odd aggregate callers) go to a
/// dictionary, so any id works and memory stays bounded by the ids actually seen.
struct PerCPU<State: PerCPUState>: Sendable {
    static var arrayLimit: Int { 1024 }

    /// A CPU's state and whether the CPU was seen, side by side: one array access per event.
    private struct Slot: Sendable {
        var present = false
        var state = State()
    }

    /// States of CPUs 0..<slots.count.
    private var slots: [Slot] = []
    private var large: [Int: State] = [:]

    init() {}

    /// Runs `body` on the state of `cpu` in place (created on first use). Inlined into the event
    /// path so the closure costs nothing and the state is never copied.
    @inline(__always)
    mutating func update<R>(_ cpu: Int, _ body: (inout State) -> R) -> R {
        if cpu >= 0 && cpu < slots.count && slots[cpu].present { return body(&slots[cpu].state) }
        return updateFirstTime(cpu, body)
    }

    /// `update` for items 0..<count in order, item `i` going to CPU `cpuOf(i)`: the array is
    /// borrowed once per run of CPUs already seen instead of checked for uniqueness per item
    /// (that check and its call were a tenth of the mode analysis on a replay).
    @inline(__always)
    mutating func updateEach(count: Int, cpuOf: (Int) -> Int, _ body: (Int, inout State) -> Void) {
        var index = 0
        while index < count {
            slots.withUnsafeMutableBufferPointer { buffer in
                while index < count {
                    let cpu = cpuOf(index)
                    guard cpu >= 0 && cpu < buffer.count && buffer[cpu].present else { return }
                    body(index, &buffer[cpu].state)
                    index += 1
                }
            }
            if index < count {
                updateFirstTime(cpuOf(index)) { body(index, &$0) }
                index += 1
            }
        }
    }

    private mutating func updateFirstTime<R>(_ cpu: Int, _ body: (inout State) -> R) -> R {
        guard cpu >= 0 && cpu < Self.arrayLimit else { return body(&large[cpu, default: State()]) }
        if cpu >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: cpu + 1 - slots.count)) }
        slots[cpu].present = true
        return body(&slots[cpu].state)
    }

    /// Every CPU seen, by id.
    var sorted: [(cpu: Int, state: State)] {
        var all: [(cpu: Int, state: State)] = []
        for cpu in slots.indices where slots[cpu].present { all.append((cpu, slots[cpu].state)) }
        all += large.map { (cpu: $0.key, state: $0.value) }
        return all.sorted { $0.cpu < $1.cpu }
    }

    /// Applies `body` to every state seen, in place.
    mutating func updateAll(_ body: (inout State) -> Void) {
        for cpu in slots.indices where slots[cpu].present { body(&slots[cpu].state) }
        for key in Array(large.keys) { body(&large[key]!) }
    }
}
