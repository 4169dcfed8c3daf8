import CDPASEvents
import CLibBPF
import DPASTraceCore
import Foundation

/// The in-kernel aggregates at one moment, per CPU, as read from the per-CPU maps.
/// Two snapshots subtract (`since`) to give one interval's numbers.
public struct KernelSnapshot: Sendable {
    /// counters[cpu][DPT_CNT_*]
    public var counters: [[UInt64]]
    public var buckets: [BucketKeyValue: [UInt64]]
    /// requested ns → per-CPU stats
    public var sleepExact: [UInt64: [SleepStatsValue]]
    /// log2 row → per-CPU stats, every attempt (the kernel keeps only those without an exact row
    /// there; the exact rows are folded in when read)
    public var sleepLog2: [Int: [SleepStatsValue]]
    /// DPAS mode state and per-mode counts (empty on stock kernels).
    public var dpas = DPASSnapshot()
    /// Program runs the kernel skipped, per hook (see `TraceSession.skippedRuns()`); hooks with none are absent.
    public var skippedRuns: [String: UInt64] = [:]

    /// `struct dpt_bucket_key` as a Swift value.
    public struct BucketKeyValue: Hashable, Sendable {
        public var bucket: Int8, bucketBySectors: Int8, ddir: UInt8, flags: UInt8, nrSectors: UInt32, statsSectors: UInt32
    }

    /// `struct dpt_sleep_stats` of one CPU.
    public struct SleepStatsValue: Sendable {
        public var attempts: UInt64 = 0, slept: UInt64 = 0, noSleep: UInt64 = 0, wokeEarly: UInt64 = 0
        public var ioSchedule: UInt64 = 0, firedDuringArm: UInt64 = 0, cancelled: UInt64 = 0
        public var sleptSum: UInt64 = 0, sleptMax: UInt64 = 0, oversleepSum: UInt64 = 0, oversleepMax: UInt64 = 0
        public var sleptBins = [UInt64](repeating: 0, count: Int(DPT_HIST_BINS))
        public var oversleepBins = [UInt64](repeating: 0, count: Int(DPT_HIST_BINS))

        /// Counts minus an earlier reading of the same row (maxima are kept as they are: not subtractable).
        func minus(_ earlier: SleepStatsValue) -> SleepStatsValue {
            var d = self
            d.attempts &-= earlier.attempts; d.slept &-= earlier.slept; d.noSleep &-= earlier.noSleep
            d.wokeEarly &-= earlier.wokeEarly; d.ioSchedule &-= earlier.ioSchedule
            d.firedDuringArm &-= earlier.firedDuringArm; d.cancelled &-= earlier.cancelled
            d.sleptSum &-= earlier.sleptSum; d.oversleepSum &-= earlier.oversleepSum
            for i in d.sleptBins.indices {
                d.sleptBins[i] &-= earlier.sleptBins[i]
                d.oversleepBins[i] &-= earlier.oversleepBins[i]
            }
            return d
        }

        /// Both rows' counts together (maxima: the larger).
        func plus(_ other: SleepStatsValue) -> SleepStatsValue {
            var s = self
            s.attempts &+= other.attempts; s.slept &+= other.slept; s.noSleep &+= other.noSleep
            s.wokeEarly &+= other.wokeEarly; s.ioSchedule &+= other.ioSchedule
            s.firedDuringArm &+= other.firedDuringArm; s.cancelled &+= other.cancelled
            s.sleptSum &+= other.sleptSum; s.oversleepSum &+= other.oversleepSum
            s.sleptMax = max(s.sleptMax, other.sleptMax); s.oversleepMax = max(s.oversleepMax, other.oversleepMax)
            for i in s.sleptBins.indices {
                s.sleptBins[i] &+= other.sleptBins[i]
                s.oversleepBins[i] &+= other.oversleepBins[i]
            }
            return s
        }

        /// The analyses' form of this row.
        var sleepStats: SleepStats {
            var stats = SleepStats()
            stats.slept = slept
            stats.noSleep = noSleep
            stats.wokeEarly = wokeEarly
            stats.firedDuringArm = firedDuringArm
            stats.actualSleep = LatencyHistogram(bins: sleptBins, count: slept, sum: sleptSum, max: sleptMax)
            stats.oversleep = LatencyHistogram(bins: oversleepBins, count: slept, sum: oversleepSum, max: oversleepMax)
            return stats
        }
    }

    /// Sum over CPUs of one counter.
    public func total(_ counter: dpt_counter) -> UInt64 {
        counters.reduce(0) { $0 &+ $1[Int(counter.rawValue)] }
    }

    /// Per-CPU values of one counter (index = CPU).
    public func perCPU(_ counter: dpt_counter) -> [UInt64] {
        counters.map { $0[Int(counter.rawValue)] }
    }

    /// Program runs the kernel skipped, over all hooks.
    public var skippedRunsTotal: UInt64 { skippedRuns.values.reduce(0, &+) }

    /// One sentence on the probe runs the kernel skipped; nil when it skipped none.
    public var skippedRunsWarning: String? {
        let total = skippedRunsTotal
        guard total > 0 else { return nil }
        let perHook = skippedRuns.sorted { $0.key < $1.key }.map { "\(Format.count($0.value)) on \($0.key)" }
        return "the kernel skipped \(Format.count(total)) probe run(s) (\(perHook.joined(separator: ", "))) because "
            + "another BPF program was running on that CPU: those events are missing, and the attempts they "
            + "belong to may be misclassified"
    }

    /// Sleeper arms whose caller could not be read (not counted as hybrid sleeps on the poller's path).
    public var armCallerUnknown: UInt64 { total(DPT_CNT_ARM_FRAME_UNKNOWN) }

    /// What the kernel side could not see or keep, one sentence each: skipped probe runs, unreadable
    /// arm callers, failed map updates. Every command shows them, and record notes them in its dumps
    /// (a request start its map could not take has no RQ_DONE event).
    public var probeWarnings: [String] {
        var warnings = skippedRunsWarning.map { [$0] } ?? []
        let full = mapFullTotal
        if full > 0 { warnings.append("\(Format.count(full)) samples missed because a BPF map was full") }
        let busy = mapBusyTotal
        if busy > 0 {
            warnings.append("\(Format.count(busy)) samples missed because a BPF map's lock timed out "
                + "(a CPU stalled while holding it; kernels 6.15+)")
        }
        let unknown = armCallerUnknown
        if unknown > 0 {
            warnings.append("\(Format.count(unknown)) sleeper arm(s) were not counted: their caller could not be read from "
                + "the probe's stack frame, which is laid out otherwise than dpas-trace knows on this kernel; "
                + "--off-cpu-time counts hybrid sleeps without reading it (please report this kernel: uname -r)")
        }
        return warnings
    }

    /// Lost ring-buffer events, per CPU.
    public var lostEvents: LostEvents { LostEvents(perCPU: perCPU(DPT_CNT_RINGBUF_LOST)) }
    /// Failed ring-buffer reservations per CPU (index = CPU), as dumps record them.
    public var lostPerCPU: [UInt64] { perCPU(DPT_CNT_RINGBUF_LOST) }
    /// Samples an aggregate missed because a map was full.
    public var mapFullTotal: UInt64 { total(DPT_CNT_MAP_FULL) }
    /// Map updates that failed on the map's lock, not for room (6.15+: a bucket lock timed out).
    public var mapBusyTotal: UInt64 { total(DPT_CNT_MAP_BUSY) }
    /// Requests started / completed that passed the filters.
    public var requestsStarted: UInt64 { total(DPT_CNT_RQ_START) }
    /// Of those, the ones another thread (an I/O scheduler's dispatch, a kworker) issued to the driver.
    public var requestsIssuedElsewhere: UInt64 { total(DPT_CNT_RQ_ISSUED_ELSEWHERE) }
    /// Issues of a request already started (the driver sent it back busy), not counted as starts.
    public var requestsReissued: UInt64 { total(DPT_CNT_RQ_REISSUED) }
    /// Of the requests started, those whose make the maker hook did not see (credited to their issuer).
    public var requestsMakerUnseen: UInt64 { total(DPT_CNT_RQ_MAKER_UNSEEN) }
    public var requestsCompleted: UInt64 { total(DPT_CNT_RQ_DONE) }
    /// Hybrid sleep attempts resolved: each is in one sleep row (the log2 view folds the exact rows in).
    public var sleepsResolved: UInt64 { sleepLog2.values.joined().reduce(0) { $0 &+ $1.attempts } }
    /// Attempts whose switch back onto the CPU was not seen (their time asleep is estimated).
    public var sleepsWakeupUnseen: UInt64 { total(DPT_CNT_SLEEP_WAKEUP_UNSEEN) }
    /// Attempts off the CPU at their timer's expiry without a switch out seen (estimated too).
    public var sleepsSwitchOutUnseen: UInt64 { total(DPT_CNT_SLEEP_SWITCH_OUT_UNSEEN) }
    /// Attempts whose timer fired without its expiry seen (the fire time is the expiry time).
    public var sleepsExpiryUnseen: UInt64 { total(DPT_CNT_SLEEP_EXPIRY_UNSEEN) }

    /// What changed since `earlier` (an interval's numbers).
    public func since(_ earlier: KernelSnapshot) -> KernelSnapshot {
        var d = self
        for cpu in d.counters.indices where cpu < earlier.counters.count {
            for i in d.counters[cpu].indices { d.counters[cpu][i] &-= earlier.counters[cpu][i] }
        }
        for (key, values) in d.buckets {
            guard let old = earlier.buckets[key] else { continue }
            d.buckets[key] = zip(values, old).map { $0 &- $1 }
        }
        for (key, values) in d.sleepExact {
            guard let old = earlier.sleepExact[key] else { continue }
            d.sleepExact[key] = zip(values, old).map { $0.minus($1) }
        }
        for (key, values) in d.sleepLog2 {
            guard let old = earlier.sleepLog2[key] else { continue }
            d.sleepLog2[key] = zip(values, old).map { $0.minus($1) }
        }
        d.dpas = dpas.since(earlier.dpas)
        for (hook, count) in d.skippedRuns {
            let delta = count &- (earlier.skippedRuns[hook] ?? 0)
            d.skippedRuns[hook] = delta == 0 ? nil : delta
        }
        return d
    }

    /// Feeds the bucket rows into the buckets analysis (same accumulator as the offline path).
    public func addBuckets(to accumulator: inout BucketAccumulator) {
        for (key, values) in buckets.sorted(by: { ($0.key.bucket, $0.key.nrSectors) < ($1.key.bucket, $1.key.nrSectors) }) {
            let count = values.reduce(0, &+)
            accumulator.add(bucket: key.bucket, bucketBySectors: key.bucketBySectors, ddir: key.ddir,
                            nrSectors: key.nrSectors, statsSectors: key.statsSectors,
                            polled: key.flags & UInt8(DPT_BK_POLLED) != 0,
                            queueStats: key.flags & UInt8(DPT_BK_QUEUE_STATS) != 0, count: count)
        }
    }

    /// Feeds the sleep rows into the sleep-ratio analysis: exact rows while the kernel's exact map
    /// kept every value, log2 rows once it overflowed (each attempt enters exactly once).
    public func addSleeps(to accumulator: inout SleepRatioAccumulator) {
        let exactComplete = total(DPT_CNT_EXACT_OVERFLOW) == 0
        if exactComplete {
            for (ns, values) in sleepExact.sorted(by: { $0.key < $1.key }) {
                for (cpu, value) in values.enumerated() where value.attempts > 0 {
                    accumulator.merge(cpu: cpu, key: .exact(ns), stats: value.sleepStats)
                }
            }
        } else {
            accumulator.markExactOverflow()
            for (row, values) in sleepLog2.sorted(by: { $0.key < $1.key }) {
                for (cpu, value) in values.enumerated() where value.attempts > 0 {
                    accumulator.merge(cpu: cpu, key: .log2(row), stats: value.sleepStats)
                }
            }
        }
    }

    /// What the kernel side counted, in one line for --verbose: every sleeper armed should be
    /// resolved (the difference is still pending), and the flags say how attempts ended. Sleepers
    /// armed and poll calls are counted only with `TraceSession.Options.diagnosticCounts`.
    /// Poll calls are counted only where the plan hooks the poll function (not on the poller's
    /// path, where the arm's caller tells a hybrid sleep).
    public func kernelCountersLine(pollFunctionHooked: Bool) -> String {
        var ioSchedule: UInt64 = 0, firedDuringArm: UInt64 = 0, cancelled: UInt64 = 0
        for value in sleepLog2.values.joined() {
            ioSchedule &+= value.ioSchedule
            firedDuringArm &+= value.firedDuringArm
            cancelled &+= value.cancelled
        }
        let c = { (counter: dpt_counter) in Format.count(self.total(counter)) }
        return "kernel counters: \(c(DPT_CNT_SLEEP_ARMED)) sleepers armed, \(Format.count(sleepsResolved)) resolved "
            + "(\(c(DPT_CNT_SLEEP_REARMED)) re-armed passes, \(c(DPT_CNT_SLEEP_WAKEUP_UNSEEN)) with the wakeup unseen, "
            + "\(c(DPT_CNT_SLEEP_SWITCH_OUT_UNSEEN)) with the switch out unseen, "
            + "\(c(DPT_CNT_SLEEP_EXPIRY_UNSEEN)) with the expiry unseen, \(c(DPT_CNT_SLEEP_APPROX)) with requested ns estimated, "
            + "\(Format.count(cancelled)) cancelled, \(Format.count(firedDuringArm)) fired while arming, "
            + "\(Format.count(ioSchedule)) with io_schedule); "
            + (pollFunctionHooked ? "\(c(DPT_CNT_POLL_CALLS)) poll calls; " : "poll calls not counted (poll function not hooked); ")
            + "\(c(DPT_CNT_ARM_FRAME_UNKNOWN)) arms with their caller unreadable; "
            + "\(c(DPT_CNT_RQ_START)) requests started (\(c(DPT_CNT_RQ_ISSUED_ELSEWHERE)) issued by a thread other than "
            + "their maker, \(c(DPT_CNT_RQ_MAKER_UNSEEN)) whose maker was not seen; "
            + "\(c(DPT_CNT_RQ_REISSUED)) issued again after the driver sent them back), "
            + "\(c(DPT_CNT_RQ_DONE)) completed "
            + "(\(c(DPT_CNT_RQ_DONE_UNMATCHED)) without a seen start)"
    }
}

extension TraceSession {
    /// Reads every aggregate map now.
    public func snapshot() throws -> KernelSnapshot {
        var snap = KernelSnapshot(counters: [], buckets: [:], sleepExact: [:], sleepLog2: [:])
        let cpus = cpuCount
        guard let counters = mapFD("counters"), let buckets = mapFD("bucket_counts"),
              let exact = mapFD("sleep_exact"), let rowsUsed = mapFD("sleep_rows_used"),
              let log2 = mapFD("sleep_log2") else {
            throw KernelError("the tracing session is closed")
        }

        // Per-CPU values come as one slot per possible CPU, each rounded up to 8 bytes.
        var u64s = [UInt64](repeating: 0, count: cpus)
        let counterCount = Int(DPT_CNT_COUNT.rawValue)
        snap.counters = Array(repeating: Array(repeating: 0, count: counterCount), count: cpus)
        // All counters in one call where the kernel has batch lookups (5.6+): the snapshot runs
        // beside the traced workload, every second.
        var batchKeys = [UInt32](repeating: 0, count: counterCount)
        var batchValues = [UInt64](repeating: 0, count: counterCount * cpus)
        var batchCount = UInt32(counterCount)
        var outBatch: UInt32 = 0
        let batched = bpf_map_lookup_batch(counters, nil, &outBatch, &batchKeys, &batchValues, &batchCount, nil)
        if (batched == 0 || batched == -ENOENT) && batchCount == UInt32(counterCount) {
            for (slot, key) in batchKeys.enumerated() where Int(key) < counterCount {
                for cpu in 0..<cpus { snap.counters[cpu][Int(key)] = batchValues[slot * cpus + cpu] }
            }
        } else {
            for index in 0..<UInt32(counterCount) {
                var key = index
                guard bpf_map_lookup_elem(counters, &key, &u64s) == 0 else { continue }
                for cpu in 0..<cpus { snap.counters[cpu][Int(index)] = u64s[cpu] }
            }
        }

        var bucketKey = dpt_bucket_key()
        var next = dpt_bucket_key()
        var first = true
        while withUnsafeMutablePointer(to: &bucketKey, { current in
            bpf_map_get_next_key(buckets, first ? nil : UnsafeRawPointer(current), &next) == 0
        }) {
            first = false
            bucketKey = next
            guard bpf_map_lookup_elem(buckets, &bucketKey, &u64s) == 0 else { continue }
            let key = KernelSnapshot.BucketKeyValue(
                bucket: bucketKey.bucket, bucketBySectors: bucketKey.bucket_by_sectors, ddir: bucketKey.ddir,
                flags: bucketKey.flags, nrSectors: bucketKey.nr_sectors, statsSectors: bucketKey.stats_sectors)
            snap.buckets[key] = u64s
        }

        func value(_ s: dpt_sleep_stats) -> KernelSnapshot.SleepStatsValue {
            var v = KernelSnapshot.SleepStatsValue()
            v.attempts = s.attempts; v.slept = s.slept; v.noSleep = s.no_sleep; v.wokeEarly = s.woke_early
            v.ioSchedule = s.io_schedule; v.firedDuringArm = s.fired_during_arm; v.cancelled = s.cancelled
            v.sleptSum = s.slept_ns_sum; v.sleptMax = s.slept_ns_max
            v.oversleepSum = s.oversleep_ns_sum; v.oversleepMax = s.oversleep_ns_max
            withUnsafeBytes(of: s.hist_slept) { v.sleptBins = Array($0.bindMemory(to: UInt64.self)) }
            withUnsafeBytes(of: s.hist_oversleep) { v.oversleepBins = Array($0.bindMemory(to: UInt64.self)) }
            return v
        }
        let rowStride = (MemoryLayout<dpt_sleep_exact_row>.stride + 7) & ~7
        let statsStride = (MemoryLayout<dpt_sleep_stats>.stride + 7) & ~7
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(rowStride, statsStride) * cpus, alignment: 8)
        defer { raw.deallocate() }

        // Each CPU keeps its own slots: gather a value's row from wherever each CPU put it. Only
        // the slots claimed are copied (each is a few KB per possible CPU).
        var used = dpt_sleep_rows_used()
        var zero: UInt32 = 0
        guard bpf_map_lookup_elem(rowsUsed, &zero, &used) == 0 else {
            throw KernelError("could not read which sleep rows are in use (errno \(errno))")
        }
        let claimed = withUnsafeBytes(of: used.exact) { bytes in bytes.indices.filter { bytes[$0] != 0 } }
        for slot in claimed {
            var key = UInt32(slot)
            guard bpf_map_lookup_elem(exact, &key, raw) == 0 else { continue }
            for cpu in 0..<cpus {
                let row = (raw + cpu * rowStride).load(as: dpt_sleep_exact_row.self)
                guard row.used != 0 else { continue }
                snap.sleepExact[row.requested_ns, default: Array(repeating: .init(), count: cpus)][cpu] = value(row.stats)
            }
        }
        let reached = withUnsafeBytes(of: used.log2) { bytes in bytes.indices.filter { bytes[$0] != 0 } }
        for row in reached.map(UInt32.init) {
            var key = row
            guard bpf_map_lookup_elem(log2, &key, raw) == 0 else { continue }
            let values = (0..<cpus).map { value((raw + $0 * statsStride).load(as: dpt_sleep_stats.self)) }
            if values.contains(where: { $0.attempts > 0 }) { snap.sleepLog2[Int(row)] = values }
        }
        // The kernel's log2 rows hold only the attempts the exact table had no slot for.
        for (ns, values) in snap.sleepExact {
            let row = ns == 0 ? 0 : 63 - ns.leadingZeroBitCount // dpt_ilog2
            let folded = snap.sleepLog2[row] ?? Array(repeating: .init(), count: cpus)
            snap.sleepLog2[row] = zip(folded, values).map { $0.plus($1) }
        }
        snap.dpas = dpasSnapshot()
        for skipped in skippedRuns() { snap.skippedRuns[skipped.hook, default: 0] += skipped.count }
        return snap
    }
}
