// SPDX-License-Identifier: GPL-2.0-only
/*
 * dpas-trace's BPF programs: one object, several alternative programs per hook.
 * The Swift loader picks one program per hook for the running kernel (the
 * probe plan), switches the others' autoload off, and attaches what it chose.
 *
 * Hooks (alternatives in the order the plan tries them):
 *   request start   fentry / kprobe blk_mq_start_request, tp_btf block_rq_issue
 *                   (5.11+ and 5.10 argument lists), tracepoint block/block_rq_issue
 *   request maker   fentry / kprobe blk_account_io_start (<= 5.15, 6.5+) or __blk_account_io_start
 *                   (5.16-6.4), tp_btf / tracepoint block/block_io_start (6.5+)
 *   completion      tp_btf block_rq_complete, tracepoint block/block_rq_complete
 *   poll window     fentry(+fexit) / kprobe(+kretprobe) on blk_poll (<= 5.17) or blk_mq_poll
 *                   (not on the poller's path: there the arm's caller tells a hybrid sleep)
 *   sleeper armed   fentry(+fexit) / kprobe(+kretprobe) on hrtimer_sleeper_start_expires,
 *                   tp_btf / tracepoint timer/hrtimer_start
 *   io_schedule     fentry / kprobe
 *   sleeper cancel  fentry / kprobe on hrtimer_cancel
 *   timer fired     tp_btf / tracepoint timer/hrtimer_expire_entry
 *   context switch  tp_btf / tracepoint sched/sched_switch
 *
 * A hybrid sleep attempt is resolved one of two ways, chosen by the planner:
 *  - on the poller's path (resolve_on_poller_path; needs function hooks on the arm, io_schedule
 *    and hrtimer_cancel), entry probes only: the sleep loop is arm -> io_schedule (skipped when
 *    the timer already fired) -> hrtimer_cancel, and the cancel resolves the attempt. An arm is
 *    the loop's when its caller lies in the loop's code (arm_caller_start).
 *    slept = a voluntary context switch inside io_schedule (the task's nvcsw), slept_ns = its
 *    time off the CPU by the scheduler's own accounting (no clock read: under emulation each is
 *    a device access), fired = its timer no longer queued (for kprobes: the sleeper's task
 *    cleared). Nothing runs for other tasks' switches, and no return probe (a trampoline around
 *    the whole call) is needed.
 *  - from the timer and context-switch tracepoints: slept_ns is the time off the CPU and the
 *    expiry is timed, at the price of a program run for every timer and switch on the machine.
 *
 * By default everything is aggregated here in per-CPU maps; per-event records
 * go to the ring buffer only when emit_events is set (record).
 */
#include <linux/bpf.h>
#define __VMLINUX_H__ 1 /* bpf_tracing.h: use the kernel's pt_regs names (di, si, ...) */
#include "dpt_kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "dpas_trace_events.h"
#include "dpt_aggregates.h"

char LICENSE[] SEC("license") = "GPL";

_Static_assert(DPT_AGG_HIST_BINS == DPT_HIST_BINS, "aggregate and event histograms must share bins");

/* Set by the loader before load (read-only after: the verifier prunes on them). */
const volatile u32 target_dev = 0;          /* disk dev_t (major << 20 | minor); 0 = every disk */
const volatile u32 target_tgid = 0;         /* only requests made (and sleeps armed) by this process; 0 = all */
const volatile u32 target_tid = 0;          /* only by this thread (--tid; tests share one process) */
const volatile u8 emit_events = 0;          /* stream per-event records through the ring buffer */
const volatile u64 hrtimer_wakeup_addr = 0; /* address of hrtimer_wakeup (from /proc/kallsyms) */
const volatile u32 queue_flag_stats_bit = 20; /* QUEUE_FLAG_STATS: a #define (20) before 6.10, an enum after */
const volatile u64 wakeup_bytes = 0;        /* wake the reader once the ring holds this much; 0 = every event */
const volatile u8 maker_hooked = 0;         /* requests are credited to the thread that made them (rq_maker) */
/* Tests only: treat every hrtimer_wakeup sleeper (nanosleep, ...) as a hybrid sleep, so the
 * slept/no-sleep classifier can be exercised on kernels without hybrid polling. */
const volatile u8 sleep_any_task = 0;
/* Tests only, with sleep_any_task: only sleepers asking for less than this many ns (0: any), so a
 * test's short sleeps are not crowded out of the thread slots by its process's long timed waits. */
const volatile u64 sleep_any_task_below_ns = 0;
/* Resolve hybrid sleep attempts on the poller's path, at the sleep loop's hrtimer_cancel (see the
 * header); 0: from the timer and context-switch tracepoints. */
const volatile u8 resolve_on_poller_path = 0;
/* --verbose: also count what only describes the run (poll calls, sleepers armed). Off, the
 * poller's path makes two per-CPU lookups fewer per read: a helper call each on kernels before
 * 6.10, and under TCG each call costs software-TLB and block-lookup misses (bench/insns
 * --qemu-counts). */
const volatile u8 count_diagnostics = 0;
/* On the poller's path a hybrid sleep is told by who arms the sleeper: a return address inside a
 * function that can hold the kernel's hybrid sleep loop (blk_mq_poll_hybrid_sleep or, where the
 * compiler inlined it, blk_mq_poll_hybrid, blk_poll, blk_mq_poll), [start, end) from kallsyms.
 * It replaces a hook on the poll function: two program runs fewer per polled read. Unused
 * ranges are empty. */
const volatile u64 arm_caller_start[DPT_ARM_CALLER_RANGES] = {};
const volatile u64 arm_caller_end[DPT_ARM_CALLER_RANGES] = {};
/* hrtimer_sleeper_start_expires: a trampoline's return into it is the word before the caller's. */
const volatile u64 arm_function_addr = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DPT_CNT_COUNT);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DPT_BUCKET_KEYS_MAX);
	__type(key, struct dpt_bucket_key);
	__type(value, u64);
} bucket_counts SEC(".maps");

/* Exact requested-ns rows, open-addressed in a per-CPU array: each CPU fills its own slots, with
 * no hashing helper and no zeroed template to insert (see exact_row). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DPT_SLEEP_EXACT_MAX);
	__type(key, u32);
	__type(value, struct dpt_sleep_exact_row);
} sleep_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct dpt_sleep_rows_used);
} sleep_rows_used SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DPT_SLEEP_LOG2_ROWS);
	__type(key, u32);
	__type(value, struct dpt_sleep_stats);
} sleep_log2 SEC(".maps");

/* Requests started (and kept by the filters) -> start time and the thread credited with the
 * request (its maker where the maker hook runs, else its issuer), for completions (which run in
 * interrupt context: the current task there is neither). */
struct rq_start_info {
	u64 ts;
	u32 pid;
	u32 tid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct rq_start_info);
} rq_started SEC(".maps");

/* Requests made -> the thread that made them (pid_tgid; DPT_MAKER_ISSUED once issued). The
 * driver may be handed a request by another thread: an I/O scheduler's dispatch runs in whichever
 * task runs the queue, a busy queue is run again by a kworker. A request is credited (and
 * filtered) by its maker, and issued again after the driver sent it back (busy) it is not a new
 * start. An entry lives from the make to the completion; one whose request is freed unissued
 * (merged into another) is overwritten when its memory is made a request again, or dropped by the
 * LRU. Passthrough commands, which no maker hook sees before 6.x, are credited to their issuer. */
#define DPT_MAKER_ISSUED (1ULL << 63) /* above any pid_tgid: thread group ids stay below 2^22 */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u64);
} rq_maker SEC(".maps");

#define DPT_ROW_LOG2 0xffffffffu /* sleep_state.row_slot: the requested ns went to its log2 row */

/* Per polling thread: whether it is inside the poll function, and its hybrid sleep attempt. */
struct sleep_state {
	/* Kept across attempts: reset_state clears only what follows, so a claim on another CPU never
	 * sees the slot's tid as 0 (free) while its holder starts an attempt. */
	u64 polled_at;  /* jiffies at its last poll entry (a slot's age) */
	u64 row_requested; /* the requested ns of the thread's last attempt, and where it was counted */
	u32 row_slot;   /* its exact slot + 1, DPT_ROW_LOG2, or 0 for none */
	u32 tid;        /* the slot's thread (0: a free slot) */
	u8 polling;     /* inside blk_poll / blk_mq_poll (not on the poller's path) */
	/* The attempt. */
	u64 timer;
	u64 requested_exact;
	u64 armed_ns;
	u64 expires_ns;
	u64 fired_ns;
	u64 out_since;  /* switched out at (0: running) */
	u64 slept_ns;
	u64 not_running_at_arm; /* not_running_ns() at the arm (resolve_on_poller_path) */
	u64 nvcsw;       /* the task's voluntary switches then */
	u64 task;        /* the arming task (resolve_on_poller_path): the poller itself, read again after
			  * its sleep without a helper call to find it */
	u32 flags;
	u32 tgid;       /* the sleeper's process (events may be emitted from another context) */
	u8 arming;      /* inside hrtimer_sleeper_start_expires */
	u8 active;      /* armed and not yet resolved */
	u8 switched;    /* switched out at least once while armed */
	u8 has_exact;   /* requested_exact read from the sleeper before arming */
	u8 rearmed;     /* armed with HRTIMER_MODE_ABS: the sleep loop's next pass */
	u8 unowned;     /* its timer_owner entry could not be added (map full) */
};

/*
 * Thread slots, open-addressed by thread id in an array: the JIT inlines an array lookup, where a
 * hash map's (jhash, key compare, bucket walk) cost ≈ 140 guest instructions, made five times per
 * polled read (bench/insns --profile: ≈ 3 % of a read). Slots are claimed at poll entry and never
 * freed: a thread that has not claimed its slot for thread_slot_stale_jiffies, and has no attempt
 * in flight, gives it to the next thread that needs one (a live thread polling again claims another).
 */
const volatile u32 thread_slot_mask = DPT_THREAD_SLOTS - 1; /* tests: fewer slots, to collide */
const volatile u64 thread_slot_stale_jiffies = DPT_THREAD_SLOT_STALE;
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DPT_THREAD_SLOTS);
	__type(key, u32);
	__type(value, struct sleep_state);
} sleep_by_tid SEC(".maps");

/* Armed sleeper timer -> polling thread (the timer fires in another context). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u32);
} timer_owner SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

/* A failed map update: no room (-E2BIG), or from 6.15, whose hash maps take resilient locks, a
 * bucket lock that timed out or would have deadlocked (a stalled CPU holding it). Either way a
 * sample is missed; the two are counted apart, so a busy host is not reported as a full map. */
#define DPT_E2BIG 7
#define DPT_ENOMEM 12
static __always_inline void count_update_failure(long err)
{
	count(err == -DPT_E2BIG || err == -DPT_ENOMEM ? DPT_CNT_MAP_FULL : DPT_CNT_MAP_BUSY);
}

static __always_inline void count_diagnostic(u32 idx)
{
	if (count_diagnostics)
		count(idx);
}

static __always_inline struct dpt_event *reserve_event(void)
{
	struct dpt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(DPT_CNT_RINGBUF_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

/*
 * The reader polls every 100 ms and drains the ring then, so it is woken early only when the
 * ring fills (perf's watermark): a wakeup per event would be a context switch per event on
 * the traced machine.
 */
static __always_inline void submit_event(struct dpt_event *e)
{
	u64 flags = 0;
	if (wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										     : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void fill_task(struct dpt_event *e)
{
	u64 id = bpf_get_current_pid_tgid();
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->ts_ns = bpf_ktime_get_ns();
	e->mode_from = DPT_MODE_UNKNOWN;
	e->mode_to = DPT_MODE_UNKNOWN;
}

static __always_inline u32 disk_devt(struct gendisk *disk)
{
	if (!disk)
		return 0;
	u32 major = BPF_CORE_READ(disk, major);
	u32 minor = BPF_CORE_READ(disk, first_minor);
	return (major << 20) | minor;
}

/* -------------------------------------------------------------------- DPAS */
/*
 * DPAS kernels (5.18 + the FAST '26 patch) keep their mode state in a per-CPU
 * struct blk_switch reached through the global irq_poll_switch, a dynamic per-CPU
 * allocation (not a DEFINE_PER_CPU variable, so no per-CPU ksym for bpf_per_cpu_ptr).
 * The loader passes the address of that global and of __per_cpu_offset[] (both from
 * /proc/kallsyms); CPU n's copy is at *irq_poll_switch + __per_cpu_offset[n], as
 * per_cpu_ptr() computes it.  Everything here is guarded by bpf_core_type_exists():
 * on a stock kernel the DPAS reads are dead code, the shared hooks load unchanged and
 * the DPAS-only programs are not loaded at all.
 *
 * Approximate by construction (the decision runs inlined in blk_mq_poll_pas_nsecs and
 * in the direct-I/O submission path, where nothing can be hooked): a transition is seen
 * at the next observation on that CPU (request start, poll entry/exit, sleeper armed),
 * and the avg QD / tf / window I/Os of a MODE event are those of the last observation
 * before the change (counters reset on the transition), so the I/Os between that
 * observation and the decision are missing from them.
 */
const volatile u64 dpas_switch_addr = 0;        /* &irq_poll_switch; 0 = not a DPAS kernel */
const volatile u64 dpas_percpu_offset_addr = 0; /* &__per_cpu_offset[0] */
const volatile u32 dpas_nr_cpus = 0;            /* possible CPUs (totals refresh) */
const volatile u8 dpas_pas_events = 0;          /* stream PAS_STATE events (sleep-ratio --pas) */
/* Observe the DPAS mode at each sleeper arm too: only when something reads the modes (request
 * starts or the DPAS poll hook are planned); a dozen kernel reads and a clock read per arm. */
const volatile u8 dpas_observe_at_arm = 0;

#define DPT_DPAS_REFRESH_NS 1000000000ull /* re-read every CPU's totals at most once a second */
#define DPT_DPAS_REFRESH_CPUS 64          /* CPUs covered by that refresh (more: own CPU only) */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct dpt_dpas_cpu);
} dpas_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DPT_DPAS_MODE_ROWS);
	__type(key, u32);
	__type(value, struct dpt_dpas_mode_ios);
} dpas_mode_ios SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DPT_MAX_CPUS);
	__type(key, u32);
	__type(value, struct dpt_dpas_totals);
} dpas_totals SEC(".maps");

/* When every CPU's totals were last re-read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} dpas_refreshed SEC(".maps");

/* PAS state last reported per bucket, per CPU (change detection for PAS_STATE events). */
struct dpas_pas_seen {
	u64 dur[DPT_POLL_STATS_BKTS];
	u8 last[DPT_POLL_STATS_BKTS];
	u8 pnlt[DPT_POLL_STATS_BKTS];
	u32 tf;
	u8 valid[DPT_POLL_STATS_BKTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct dpas_pas_seen);
} dpas_pas_seen SEC(".maps");

/* Polling thread -> the queue it polls (blk_mq_poll's first argument), for the exit probe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} dpas_poll_queue SEC(".maps");

struct dpas_view {
	u32 mode, cp_cnt, pas_cnt, ol_cnt, int_cnt, qd_sum, tf;
	u64 cp_tot, pas_tot, ol_tot, int_tot;
};

/* CPU `cpu`'s copy of a dynamic per-CPU allocation (per_cpu_ptr(percpu_ptr, cpu)). */
static __always_inline u64 dpas_percpu(u64 percpu_ptr, u32 cpu)
{
	u64 offset = 0;
	if (!percpu_ptr || !dpas_percpu_offset_addr || cpu >= DPT_MAX_CPUS)
		return 0;
	if (bpf_probe_read_kernel(&offset, sizeof(offset), (void *)(dpas_percpu_offset_addr + (u64)cpu * 8)))
		return 0;
	return percpu_ptr + offset;
}

static __always_inline bool dpas_read(u32 cpu, struct dpas_view *v, bool totals_only)
{
	if (!bpf_core_type_exists(struct blk_switch) || !dpas_switch_addr)
		return false;
	u64 percpu_ptr = 0;
	if (bpf_probe_read_kernel(&percpu_ptr, sizeof(percpu_ptr), (void *)dpas_switch_addr))
		return false;
	struct blk_switch *sw = (struct blk_switch *)dpas_percpu(percpu_ptr, cpu);
	if (!sw)
		return false;
	v->cp_tot = BPF_CORE_READ_BITFIELD_PROBED(sw, cp_tot);
	v->pas_tot = BPF_CORE_READ_BITFIELD_PROBED(sw, pas_tot);
	v->ol_tot = BPF_CORE_READ_BITFIELD_PROBED(sw, ol_tot);
	v->int_tot = BPF_CORE_READ_BITFIELD_PROBED(sw, int_tot);
	if (totals_only)
		return true;
	v->mode = BPF_CORE_READ_BITFIELD_PROBED(sw, mode);
	v->cp_cnt = BPF_CORE_READ_BITFIELD_PROBED(sw, cp_cnt);
	v->pas_cnt = BPF_CORE_READ_BITFIELD_PROBED(sw, pas_cnt);
	v->ol_cnt = BPF_CORE_READ_BITFIELD_PROBED(sw, ol_cnt);
	v->int_cnt = BPF_CORE_READ_BITFIELD_PROBED(sw, int_cnt);
	v->qd_sum = BPF_CORE_READ_BITFIELD_PROBED(sw, qd_sum);
	v->tf = BPF_CORE_READ_BITFIELD_PROBED(sw, tf);
	return true;
}

static __always_inline void dpas_store_totals(u32 cpu, struct dpas_view *v, u64 now)
{
	struct dpt_dpas_totals *t = bpf_map_lookup_elem(&dpas_totals, &cpu);
	if (!t)
		return;
	t->cp_tot = v->cp_tot;
	t->pas_tot = v->pas_tot;
	t->ol_tot = v->ol_tot;
	t->int_tot = v->int_tot;
	t->read_ns = now;
}

/* CPUs without I/O run no hook: re-read their totals from here now and then, so every
 * CPU that switch_stat prints has a value. */
static __always_inline void dpas_refresh_all(u64 now)
{
	u32 zero = 0;
	u64 *last = bpf_map_lookup_elem(&dpas_refreshed, &zero);
	if (!last || (*last && now - *last < DPT_DPAS_REFRESH_NS))
		return;
	*last = now;
	for (u32 cpu = 0; cpu < DPT_DPAS_REFRESH_CPUS; cpu++) {
		if (cpu >= dpas_nr_cpus)
			break;
		struct dpas_view v = {};
		if (dpas_read(cpu, &v, true))
			dpas_store_totals(cpu, &v, now);
	}
}

static __always_inline u32 dpas_window_ios(struct dpas_view *v)
{
	switch (v->mode) {
	case DPT_MODE_INT: return v->int_cnt;
	case DPT_MODE_CP: return v->cp_cnt;
	case DPT_MODE_PAS: return v->pas_cnt;
	case DPT_MODE_OL: return v->ol_cnt;
	default: return 0;
	}
}

/* Reads this CPU's blk_switch, emits a MODE event when the mode changed since the last
 * observation, refreshes the totals. Returns the mode, DPT_MODE_UNKNOWN if unreadable. */
static __always_inline u8 dpas_observe(void)
{
	struct dpas_view v = {};
	u32 cpu = bpf_get_smp_processor_id();
	if (!dpas_read(cpu, &v, false))
		return DPT_MODE_UNKNOWN;
	u32 zero = 0;
	struct dpt_dpas_cpu *c = bpf_map_lookup_elem(&dpas_cpu, &zero);
	if (!c)
		return DPT_MODE_UNKNOWN;
	u64 now = bpf_ktime_get_ns();
	if (!c->first_seen_ns) {
		c->first_seen_ns = now;
		c->first_mode = v.mode;
	} else if (v.mode != c->mode) {
		c->transitions += 1;
		struct dpt_event *e = reserve_event();
		if (e) {
			fill_task(e);
			e->ts_ns = now;
			e->kind = DPT_EV_MODE;
			e->flags = DPT_F_DPAS;
			e->bucket = -1;
			e->bucket_by_sectors = -1;
			e->mode_from = c->mode;
			e->mode_to = v.mode;
			/* the kernel's avg_qd = qd_sum * 10 / pas_cnt (PAS windows); other windows
			 * divide by their own counter */
			u32 ios = c->mode == DPT_MODE_PAS ? c->pas_cnt : c->window_ios;
			e->avg_qd_x10 = ios ? (u32)(((u64)c->qd_sum * 10) / ios) : 0;
			e->tf = c->tf;
			e->window_ios = c->window_ios;
			submit_event(e);
		}
	}
	c->last_seen_ns = now;
	c->mode = v.mode;
	c->window_ios = dpas_window_ios(&v);
	c->pas_cnt = v.pas_cnt;
	c->qd_sum = v.qd_sum;
	c->tf = v.tf;
	dpas_store_totals(cpu, &v, now);
	dpas_refresh_all(now);
	return v.mode > DPT_MODE_EHP ? DPT_MODE_UNKNOWN : (u8)v.mode;
}

/* A request passed the filters while its CPU was in `mode`: the per-mode I/O split. */
static __always_inline void dpas_count_io(u8 mode, u8 polled)
{
	u32 row = mode <= DPT_MODE_EHP ? mode : DPT_DPAS_MODE_UNKNOWN_ROW;
	struct dpt_dpas_mode_ios *m = bpf_map_lookup_elem(&dpas_mode_ios, &row);
	if (!m)
		return;
	m->ios += 1;
	if (polled)
		m->polled += 1;
}

/* blk_rq_pas_stat.sr_last / sr_pnlt: 0 overslept, 1 underslept (the DPAS tree initialises
 * sr_last = 1). Anything else is reported as unknown. */
static __always_inline u8 dpas_pas_result(u64 raw)
{
	return raw == 0 ? DPT_PAS_OVERSLEPT : raw == 1 ? DPT_PAS_UNDERSLEPT : DPT_PAS_NONE;
}

/* Emits a PAS_STATE event for every bucket of this CPU's q->pas_stat whose duration or
 * last results changed since the last scan on this CPU. */
static __always_inline void dpas_pas_scan(u64 queue, u8 mode)
{
	if (!bpf_core_type_exists(struct blk_rq_pas_stat) || !dpas_switch_addr)
		return;
	if (!(emit_events || dpas_pas_events) || !queue)
		return;
	struct request_queue___dpas *dq = (void *)queue;
	if (!bpf_core_field_exists(dq->pas_stat))
		return;
	u32 cpu = bpf_get_smp_processor_id();
	u64 base = dpas_percpu((u64)BPF_CORE_READ(dq, pas_stat), cpu);
	if (!base)
		return;
	struct gendisk *disk = 0;
	struct request_queue___disk *qdisk = (void *)queue;
	if (bpf_core_field_exists(qdisk->disk))
		disk = BPF_CORE_READ(qdisk, disk);
	u32 dev = disk_devt(disk);
	if (target_dev && dev != target_dev)
		return;
	u32 zero = 0;
	struct dpas_pas_seen *seen = bpf_map_lookup_elem(&dpas_pas_seen, &zero);
	struct dpt_dpas_cpu *c = bpf_map_lookup_elem(&dpas_cpu, &zero);
	if (!seen || !c)
		return;
	u32 tf = c->tf;
	bool floor_hit = tf > seen->tf;
	seen->tf = tf;
	u64 stride = bpf_core_type_size(struct blk_rq_pas_stat);
	for (u32 b = 0; b < DPT_POLL_STATS_BKTS; b++) {
		struct blk_rq_pas_stat *st = (void *)(base + b * stride);
		u64 dur = BPF_CORE_READ_BITFIELD_PROBED(st, dur);
		u8 last = dpas_pas_result(BPF_CORE_READ_BITFIELD_PROBED(st, sr_last));
		u8 pnlt = dpas_pas_result(BPF_CORE_READ_BITFIELD_PROBED(st, sr_pnlt));
		if (seen->valid[b] && seen->dur[b] == dur && seen->last[b] == last && seen->pnlt[b] == pnlt)
			continue;
		seen->valid[b] = 1;
		seen->dur[b] = dur;
		seen->last[b] = last;
		seen->pnlt[b] = pnlt;
		struct dpt_event *e = reserve_event();
		if (!e)
			return;
		fill_task(e);
		e->kind = DPT_EV_PAS_STATE;
		e->dev = dev;
		e->flags = DPT_F_DPAS | (floor_hit ? DPT_F_PAS_TIMER_FLOOR : 0);
		e->bucket = (s8)b;
		e->bucket_by_sectors = -1;
		e->mode_to = mode;
		e->pas_dur_ns = dur;
		e->pas_last[0] = last;
		e->pas_last[1] = pnlt;
		e->tf = tf;
		submit_event(e);
	}
}

static __always_inline void dpas_poll_enter(u64 queue)
{
	dpas_observe();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	long err = queue ? bpf_map_update_elem(&dpas_poll_queue, &tid, &queue, BPF_ANY) : 0;
	if (err)
		count_update_failure(err);
}

static __always_inline void dpas_poll_exit(void)
{
	u8 mode = dpas_observe();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *queue = bpf_map_lookup_elem(&dpas_poll_queue, &tid);
	if (!queue)
		return;
	dpas_pas_scan(*queue, mode);
	bpf_map_delete_elem(&dpas_poll_queue, &tid);
}

/* ---------------------------------------------------------------- requests */

struct rq_info {
	u32 dev;
	u32 nr_sectors;
	u32 stats_sectors;
	u8 ddir;
	u8 polled;
	u8 queue_stats;
	u8 stats_known;
	u8 passthrough; /* a driver command (REQ_OP_DRV_*, SCSI before 5.18), not block I/O */
};

static __always_inline struct request_queue *rq_queue(struct request *rq)
{
	if (bpf_core_field_exists(rq->q))
		return BPF_CORE_READ(rq, q);
	return BPF_CORE_READ(rq, mq_hctx, queue);
}

static __always_inline void read_request(struct request *rq, struct rq_info *info)
{
	struct request_queue *q = rq_queue(rq);
	struct gendisk *disk = 0;
	struct request___rq_disk *old = (void *)rq;
	struct request_queue___disk *qd = (void *)q;

	if (bpf_core_field_exists(old->rq_disk))
		disk = BPF_CORE_READ(old, rq_disk);
	else if (bpf_core_field_exists(qd->disk))
		disk = BPF_CORE_READ(qd, disk);
	info->dev = disk_devt(disk);

	u32 cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	info->ddir = cmd_flags & 1; /* op_is_write(req_op(rq)) */
	u8 op = cmd_flags & 0xff; /* req_op(rq): REQ_OP_SCSI_IN/OUT 32, 33 (< 5.18), REQ_OP_DRV_IN/OUT 34, 35 */
	info->passthrough = op >= 32 && op <= 35;
	info->nr_sectors = BPF_CORE_READ(rq, __data_len) >> 9;

	u32 polled_bit = 0;
	if (bpf_core_enum_value_exists(enum req_flag_bits, __REQ_POLLED))
		polled_bit = bpf_core_enum_value(enum req_flag_bits, __REQ_POLLED);
	else if (bpf_core_enum_value_exists(enum req_flag_bits, __REQ_HIPRI))
		polled_bit = bpf_core_enum_value(enum req_flag_bits, __REQ_HIPRI);
	info->polled = polled_bit ? (cmd_flags >> (polled_bit & 31)) & 1 : 0;

	unsigned long qflags = q ? BPF_CORE_READ(q, queue_flags) : 0;
	info->queue_stats = (qflags >> (queue_flag_stats_bit & 63)) & 1;
	/*
	 * Both hooks run at the top of blk_mq_start_request, before it stores
	 * stats_sectors; mirror the kernel: "if (QUEUE_FLAG_STATS)
	 * rq->stats_sectors = blk_rq_sectors(rq)", otherwise it stays 0.
	 */
	info->stats_sectors = info->queue_stats ? info->nr_sectors : 0;
	info->stats_known = 1;
}

/* The current task passes the process/thread filters. */
static __always_inline bool task_traced(u64 id)
{
	if (target_tgid && (u32)(id >> 32) != target_tgid)
		return false;
	return !target_tid || (u32)id == target_tid;
}

static __always_inline void record_start(void *rq_ptr, struct rq_info *info)
{
	/* DPAS: the mode is per CPU, not per disk, so it is observed before the filters */
	u8 mode = dpas_observe();
	u64 id = bpf_get_current_pid_tgid();
	if (target_dev && info->dev != target_dev)
		return;
	u64 key_rq = (u64)rq_ptr;
	u8 issued_elsewhere = 0, reissued = 0, maker_unseen = 0;
	if (maker_hooked && !info->passthrough) {
		u64 *maker = bpf_map_lookup_elem(&rq_maker, &key_rq);
		maker_unseen = !maker;
		if (maker) {
			reissued = !!(*maker & DPT_MAKER_ISSUED);
			u64 made_by = *maker & ~DPT_MAKER_ISSUED;
			issued_elsewhere = made_by != id;
			id = made_by;
			*maker = made_by | DPT_MAKER_ISSUED;
		}
	}
	if (!task_traced(id))
		return;
	if (reissued) { /* its start was counted at its first issue, which its completion is timed from */
		count(DPT_CNT_RQ_REISSUED);
		return;
	}

	count(DPT_CNT_RQ_START);
	if (issued_elsewhere)
		count(DPT_CNT_RQ_ISSUED_ELSEWHERE);
	if (maker_unseen)
		count(DPT_CNT_RQ_MAKER_UNSEEN);
	if (mode != DPT_MODE_UNKNOWN)
		dpas_count_io(mode, info->polled);
	u64 now = bpf_ktime_get_ns();
	struct rq_start_info started = { .ts = now, .pid = id >> 32, .tid = (u32)id };
	long err = key_rq ? bpf_map_update_elem(&rq_started, &key_rq, &started, BPF_ANY) : 0;
	if (err)
		count_update_failure(err);

	s8 bucket = info->stats_known ? dpt_poll_stats_bucket(info->stats_sectors, info->ddir) : -1;
	s8 by_sectors = dpt_poll_stats_bucket(info->nr_sectors, info->ddir);

	struct dpt_bucket_key key = {};
	key.bucket = bucket;
	key.bucket_by_sectors = by_sectors;
	key.ddir = info->ddir;
	key.flags = (info->polled ? DPT_BK_POLLED : 0) | (info->queue_stats ? DPT_BK_QUEUE_STATS : 0) |
		    (info->stats_known ? DPT_BK_STATS_KNOWN : 0);
	key.nr_sectors = info->nr_sectors;
	key.stats_sectors = info->stats_sectors;
	u64 *n = bpf_map_lookup_elem(&bucket_counts, &key);
	if (n) {
		*n += 1;
	} else {
		u64 one = 1;
		long err = bpf_map_update_elem(&bucket_counts, &key, &one, BPF_NOEXIST);
		if (err) {
			n = bpf_map_lookup_elem(&bucket_counts, &key); /* raced with another insert */
			if (n)
				*n += 1;
			else
				count_update_failure(err);
		}
	}

	if (!emit_events)
		return;
	struct dpt_event *e = reserve_event();
	if (!e)
		return;
	fill_task(e);
	e->pid = id >> 32; /* the request's maker (the current task may only be issuing it) */
	e->tid = (u32)id;
	e->ts_ns = now;
	e->kind = DPT_EV_RQ_START;
	e->rq = key_rq;
	e->dev = info->dev;
	e->flags = (info->polled ? DPT_F_POLLED : 0) | (info->queue_stats ? DPT_F_QUEUE_STATS : 0) |
		   (mode != DPT_MODE_UNKNOWN ? DPT_F_DPAS : 0);
	e->mode_to = mode;
	e->nr_sectors = info->nr_sectors;
	e->stats_sectors = info->stats_sectors;
	e->ddir = info->ddir;
	e->bucket = bucket;
	e->bucket_by_sectors = by_sectors;
	submit_event(e);
}

static __always_inline void on_request_start(struct request *rq)
{
	struct rq_info info = {};
	read_request(rq, &info);
	record_start(rq, &info);
}

SEC("fentry/blk_mq_start_request")
int BPF_PROG(rq_start_fentry, struct request *rq)
{
	on_request_start(rq);
	return 0;
}

SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(rq_start_kprobe, struct request *rq)
{
	on_request_start(rq);
	return 0;
}

/* 5.11+: TP_PROTO(struct request *rq) */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(rq_issue_btf, struct request *rq)
{
	on_request_start(rq);
	return 0;
}

/* 5.10: TP_PROTO(struct request_queue *q, struct request *rq) */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(rq_issue_btf_q_rq, struct request_queue *q, struct request *rq)
{
	on_request_start(rq);
	return 0;
}

static __always_inline u8 rwbs_is_write(const char *rwbs)
{
	char c[8];
	if (bpf_probe_read_kernel(c, sizeof(c), rwbs))
		return 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (c[i] == 0)
			return 0;
		if (c[i] == 'W')
			return 1;
	}
	return 0;
}

/* A request's identity on classic tracepoints, which have no request pointer: dev and sector. */
static __always_inline u64 tp_request_ident(u32 dev, u64 sector)
{
	return ((u64)dev << 40) ^ sector;
}

/* Classic tracepoint: no struct request, so no stats_sectors, queue flags or polled bit. */
SEC("tracepoint/block/block_rq_issue")
int rq_issue_tp(struct trace_event_raw_block_rq *ctx)
{
	struct rq_info info = {};
	u32 dev = BPF_CORE_READ(ctx, dev);
	info.dev = dev;
	info.nr_sectors = BPF_CORE_READ(ctx, nr_sector);
	info.ddir = rwbs_is_write((const char *)ctx + bpf_core_field_offset(ctx->rwbs));
	record_start((void *)tp_request_ident(dev, BPF_CORE_READ(ctx, sector)), &info);
	return 0;
}

/* The request's maker: blk_account_io_start runs in the submitting thread, as the bio becomes a
 * request, before any scheduler or kworker can issue it. */
static __always_inline void note_maker(u64 key_rq)
{
	u64 id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&rq_maker, &key_rq, &id, BPF_ANY);
}

/* The target is set by the loader: blk_account_io_start or __blk_account_io_start (5.16-6.4). */
SEC("fentry/blk_account_io_start")
int BPF_PROG(maker_fentry, struct request *rq)
{
	note_maker((u64)rq);
	return 0;
}

SEC("kprobe/blk_account_io_start")
int BPF_KPROBE(maker_kprobe, struct request *rq)
{
	note_maker((u64)rq);
	return 0;
}

/* 6.5+: TP_PROTO(struct request *rq) */
SEC("tp_btf/block_io_start")
int BPF_PROG(maker_btf, struct request *rq)
{
	note_maker((u64)rq);
	return 0;
}

/* Keyed as rq_issue_tp keys the request: dev and sector. A bio merged in front of the request
 * moves its sector, and the issue is then credited to the issuing thread. */
SEC("tracepoint/block/block_io_start")
int maker_tp(struct trace_event_raw_block_rq *ctx)
{
	note_maker(tp_request_ident(BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, sector)));
	return 0;
}

static __always_inline void record_done(u64 key_rq, u32 dev, u32 nr_sectors, u8 ddir)
{
	if (maker_hooked)
		bpf_map_delete_elem(&rq_maker, &key_rq);
	struct rq_start_info *start = bpf_map_lookup_elem(&rq_started, &key_rq);
	if (!start) {
		/* not started under our filters, or started before we attached */
		if (!target_tgid && !target_tid && (!target_dev || dev == target_dev))
			count(DPT_CNT_RQ_DONE_UNMATCHED);
		return;
	}
	u64 now = bpf_ktime_get_ns();
	u64 latency = now - start->ts;
	u32 pid = start->pid, tid = start->tid;
	bpf_map_delete_elem(&rq_started, &key_rq);
	count(DPT_CNT_RQ_DONE);

	if (!emit_events)
		return;
	struct dpt_event *e = reserve_event();
	if (!e)
		return;
	fill_task(e);
	e->pid = pid; /* the thread credited at its start, as in RQ_START */
	e->tid = tid;
	e->ts_ns = now;
	e->kind = DPT_EV_RQ_DONE;
	e->rq = key_rq;
	e->dev = dev;
	e->nr_sectors = nr_sectors;
	e->ddir = ddir;
	e->bucket = -1;
	e->bucket_by_sectors = dpt_poll_stats_bucket(nr_sectors, ddir);
	e->io_latency_ns = latency;
	submit_event(e);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_done_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	struct rq_info info = {};
	read_request(rq, &info);
	record_done((u64)rq, info.dev, info.nr_sectors, info.ddir);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int rq_done_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	u32 dev = BPF_CORE_READ(ctx, dev);
	u64 ident = tp_request_ident(dev, BPF_CORE_READ(ctx, sector));
	u8 ddir = rwbs_is_write((const char *)ctx + bpf_core_field_offset(ctx->rwbs));
	record_done(ident, dev, BPF_CORE_READ(ctx, nr_sector), ddir);
	return 0;
}

/* ----------------------------------------------------------- hybrid sleeps */

static __always_inline u32 current_tid(void)
{
	return (u32)bpf_get_current_pid_tgid();
}

static __always_inline void add_sleep_stats(struct dpt_sleep_stats *s, u8 slept, u64 slept_ns,
					    u64 requested, u32 flags)
{
	s->attempts += 1;
	if (flags & DPT_F_IO_SCHEDULE)
		s->io_schedule += 1;
	if (flags & DPT_F_FIRED_DURING_ARM)
		s->fired_during_arm += 1;
	if (flags & DPT_F_CANCELLED)
		s->cancelled += 1;
	if (!slept) {
		s->no_sleep += 1;
		return;
	}
	u64 over = slept_ns > requested ? slept_ns - requested : 0;
	s->slept += 1;
	if (slept_ns < requested)
		s->woke_early += 1;
	s->slept_ns_sum += slept_ns;
	s->oversleep_ns_sum += over;
	if (slept_ns > s->slept_ns_max)
		s->slept_ns_max = slept_ns;
	if (over > s->oversleep_ns_max)
		s->oversleep_ns_max = over;
	u32 b = dpt_hist_bin(slept_ns) & (DPT_HIST_BINS - 1);
	s->hist_slept[b] += 1;
	b = dpt_hist_bin(over) & (DPT_HIST_BINS - 1);
	s->hist_oversleep[b] += 1;
}

/* This CPU's exact row for a requested ns: its home slot (Fibonacci hashing) or the next free or
 * matching one (its slot in *found). Per-CPU slots: nothing else writes them while this program runs. */
static __always_inline struct dpt_sleep_stats *exact_row(u64 requested, u32 *found)
{
	u32 home = (u32)((requested * 0x9E3779B97F4A7C15ULL) >> (64 - DPT_SLEEP_EXACT_SLOTS_LOG2));
	for (u32 i = 0; i < DPT_SLEEP_EXACT_PROBES; i++) {
		u32 slot = (home + i) & (DPT_SLEEP_EXACT_MAX - 1);
		struct dpt_sleep_exact_row *row = bpf_map_lookup_elem(&sleep_exact, &slot);
		if (!row)
			return 0;
		*found = slot;
		if (!row->used) {
			row->used = 1;
			row->requested_ns = requested;
			u32 zero = 0;
			struct dpt_sleep_rows_used *used = bpf_map_lookup_elem(&sleep_rows_used, &zero);
			if (used)
				used->exact[slot & (DPT_SLEEP_EXACT_MAX - 1)] = 1;
			return &row->stats;
		}
		if (row->requested_ns == requested)
			return &row->stats;
	}
	return 0;
}

/* The reader copies only the log2 rows some attempt reached (sleep_rows_used). */
static __always_inline void mark_log2_row(u32 row)
{
	u32 zero = 0;
	struct dpt_sleep_rows_used *used = bpf_map_lookup_elem(&sleep_rows_used, &zero);
	if (!used)
		return;
	/* The mask again, where the verifier sees it (the compiler knows it holds and drops it). */
	asm volatile("%0 &= %1" : "+r"(row) : "i"(DPT_SLEEP_LOG2_ROWS - 1));
	if (!used->log2[row])
		used->log2[row] = 1;
}

/* Resolve the attempt: aggregate it, stream it if recording, forget the timer. */
static __always_inline void finish_sleep(u32 tid, struct sleep_state *st)
{
	u8 slept = st->switched;
	u64 requested;
	if (st->has_exact) {
		requested = st->requested_exact;
	} else {
		requested = st->expires_ns > st->armed_ns ? st->expires_ns - st->armed_ns : 0;
		count(DPT_CNT_SLEEP_APPROX);
	}
	u32 flags = st->flags;
	u64 slept_ns = st->slept_ns;
	u64 timer = st->timer;
	st->active = 0;
	/*
	 * The expiry runs on the timer's CPU while the switch back in may run on another, and both
	 * can see the attempt still active: removing the timer's owner (atomic in the map) decides
	 * which one resolves it, so it is counted once. On the poller's path only the poller does.
	 */
	if (!resolve_on_poller_path && bpf_map_delete_elem(&timer_owner, &timer) && !st->unowned)
		return;
	if (flags & DPT_F_REARMED)
		count(DPT_CNT_SLEEP_REARMED);

	/* One row per attempt (each a few KB; updating one instead of two cut the poller's cost
	 * under emulation by ≈ 2 µs): its exact row, or its log2 row once the exact table is full.
	 * The reader folds the exact rows into the log2 rows. A poller asks for the same sleep until
	 * the kernel's poll statistics change (every 100 ms with io_poll_delay=0): where its last
	 * attempt was counted is tried first, so a full table is searched once per value and thread,
	 * not at every attempt (16 slots, each its own page). */
	struct dpt_sleep_stats *s = 0;
	u32 where = st->row_requested == requested ? st->row_slot : 0;
	if (where && where != DPT_ROW_LOG2) {
		u32 slot = (where - 1) & (DPT_SLEEP_EXACT_MAX - 1);
		struct dpt_sleep_exact_row *row = bpf_map_lookup_elem(&sleep_exact, &slot);
		if (row && row->used && row->requested_ns == requested) /* this CPU's copy holds it too */
			s = &row->stats;
	}
	if (!s && where != DPT_ROW_LOG2) {
		u32 slot = 0;
		s = exact_row(requested, &slot);
		where = s ? slot + 1 : DPT_ROW_LOG2;
	}
	st->row_requested = requested;
	st->row_slot = where;
	if (!s) {
		count(DPT_CNT_EXACT_OVERFLOW);
		u32 row = dpt_ilog2(requested) & (DPT_SLEEP_LOG2_ROWS - 1);
		s = bpf_map_lookup_elem(&sleep_log2, &row);
		mark_log2_row(row);
	}
	if (s)
		add_sleep_stats(s, slept, slept_ns, requested, flags);

	if (!emit_events)
		return;
	struct dpt_event *e = reserve_event();
	if (!e)
		return;
	fill_task(e);
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = st->tgid;
	e->tid = tid;
	e->kind = DPT_EV_HYBRID_SLEEP;
	e->flags = flags;
	e->outcome = slept ? DPT_SLEEP_SLEPT : DPT_SLEEP_NO_SLEEP;
	e->bucket = -1;
	e->bucket_by_sectors = -1;
	e->sleep_requested_ns = requested;
	e->sleep_armed_ns = st->armed_ns;
	e->timer_expires_ns = st->expires_ns;
	e->timer_fired_ns = st->fired_ns;
	e->slept_ns = slept_ns;
	submit_event(e);
}

/*
 * The scheduler's account of the time a task has not been running, by rq_clock_task: exec_start
 * minus sum_exec_runtime does not change while it runs (both advance together at each accounting)
 * and grows by exactly its time off the CPU. Read while the task runs (our probes run in it).
 */
static __always_inline u64 not_running_ns(struct task_struct *task, bool btf)
{
	if (btf)
		return task->se.exec_start - task->se.sum_exec_runtime;
	/* Side by side in every kernel so far: one helper call instead of two. */
	if (bpf_core_field_offset(task->se.sum_exec_runtime) == bpf_core_field_offset(task->se.exec_start) + 8) {
		u64 both[2] = {};
		bpf_probe_read_kernel(both, sizeof(both), &task->se.exec_start);
		return both[0] - both[1];
	}
	return BPF_CORE_READ(task, se.exec_start) - BPF_CORE_READ(task, se.sum_exec_runtime);
}

/* On the poller's path: did the task leave the CPU voluntarily since its arm (nvcsw counts a
 * switch made with its state still TASK_UNINTERRUPTIBLE: the timer had not woken it; the loop
 * makes none between the arm and io_schedule), and for how long. Runs in the thread that armed
 * (its slot is found by its id), so the current task is the one recorded at the arm; an attempt
 * outlives its thread only by the kernel skipping the resolving probe runs, and a task sleeping
 * uninterruptibly cannot exit before its loop's cancel. From 5.11 the kernel hands the current
 * task over as a BTF pointer: plain loads. Before, the task recorded at the arm is read through
 * bpf_probe_read_kernel, a helper call per field (≈ 170 guest instructions per read on 5.10
 * under TCG: bench/insns --profile). */
static __always_inline void count_switch_since_arm(struct sleep_state *st)
{
	u64 not_running;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *task = bpf_get_current_task_btf();
		if (task->nvcsw == st->nvcsw)
			return;
		not_running = not_running_ns(task, true);
	} else {
		struct task_struct *task = (struct task_struct *)st->task;
		if (BPF_CORE_READ(task, nvcsw) == st->nvcsw)
			return;
		not_running = not_running_ns(task, false);
	}
	st->switched = 1;
	st->slept_ns = not_running > st->not_running_at_arm ? not_running - st->not_running_at_arm : 0;
}

/* Resolve the attempt of a thread that is running again (it arms its next sleeper, or leaves the
 * poll loop). Still off the CPU by our account means its switch back in was not seen (the kernel
 * skipped that probe run): the time off the CPU is estimated as ending at the timer's expiry. */
static __always_inline void finish_running(u32 tid, struct sleep_state *st)
{
	if (resolve_on_poller_path) {
		if (st->flags & DPT_F_IO_SCHEDULE) {
			/* the sleep loop's cancel was not seen (a probe run the kernel did not make) */
			count_switch_since_arm(st);
			st->flags |= DPT_F_WAKEUP_UNSEEN;
			count(DPT_CNT_SLEEP_WAKEUP_UNSEEN);
		} else {
			/* The loop skips io_schedule only when the sleeper's task is already cleared: the timer
			 * fired after the arm returned, before the poller could yield. */
			st->flags |= DPT_F_TIMER_FIRED;
		}
		finish_sleep(tid, st);
		return;
	}
	/* The sleep loop cancels its timer before it re-arms or leaves: back on the CPU and unfired
	 * means cancelled. (hrtimer_cancel's tracepoint is no help: it also fires when the expiry
	 * dequeues the timer, just before hrtimer_expire_entry.) */
	if (!st->out_since && !(st->flags & DPT_F_TIMER_FIRED))
		st->flags |= DPT_F_CANCELLED;
	if (st->out_since) {
		u64 now = bpf_ktime_get_ns();
		u64 end = st->expires_ns && st->expires_ns < now ? st->expires_ns : now;
		if (end > st->out_since)
			st->slept_ns += end - st->out_since;
		st->out_since = 0;
		st->flags |= DPT_F_WAKEUP_UNSEEN;
		count(DPT_CNT_SLEEP_WAKEUP_UNSEEN);
	}
	finish_sleep(tid, st);
}

/* The thread's slot: probed from tid's own; a free slot ends the probe (slots are filled in
 * probe order and never freed). */
static __always_inline struct sleep_state *state_for(u32 tid)
{
	for (u32 i = 0; i < DPT_THREAD_SLOT_PROBES; i++) {
		u32 slot = (tid + i) & thread_slot_mask;
		struct sleep_state *st = bpf_map_lookup_elem(&sleep_by_tid, &slot);
		if (!st || !st->tid)
			return 0;
		if (st->tid == tid)
			return st;
	}
	return 0;
}

/* The thread's slot (its age renewed), claimed if it has none: the first free or stale one on its
 * probe path; counted as a full map when none is left. Two threads claiming the same free slot at
 * the same instant (5.10 has no compare-and-swap) leave one of them without a slot until its next
 * poll entry. */
static __always_inline struct sleep_state *claim_state(u32 tid, u64 now_jiffies)
{
	struct sleep_state *claim = 0;
	for (u32 i = 0; i < DPT_THREAD_SLOT_PROBES; i++) {
		u32 slot = (tid + i) & thread_slot_mask;
		struct sleep_state *st = bpf_map_lookup_elem(&sleep_by_tid, &slot);
		if (!st)
			break;
		if (st->tid == tid) {
			st->polled_at = now_jiffies;
			return st;
		}
		/* an attempt in flight is never taken (its thread comes back to resolve it) */
		if (!st->tid || (!st->active && now_jiffies - st->polled_at > thread_slot_stale_jiffies)) {
			if (!claim)
				claim = st;
			if (!st->tid)
				break;
		}
	}
	if (!claim) {
		count(DPT_CNT_MAP_FULL);
		return 0;
	}
	__builtin_memset(claim, 0, sizeof(*claim));
	claim->tid = tid;
	claim->polled_at = now_jiffies;
	return claim;
}

/* Tests only (sleep_any_task_below_ns): a sleeper asking for this long is not classified. */
static __always_inline bool sleeper_too_long(s64 requested)
{
	return sleep_any_task && sleep_any_task_below_ns && requested >= (s64)sleep_any_task_below_ns;
}

/* The state of a thread arming a sleeper, if that counts as a hybrid sleep: it is inside
 * blk_poll/blk_mq_poll (or any task in the test mode), and belongs to the traced process if one
 * is set. */
static __always_inline struct sleep_state *tracked_state(u64 id)
{
	if (!task_traced(id))
		return 0;
	struct sleep_state *st = sleep_any_task ? claim_state((u32)id, bpf_jiffies64()) : state_for((u32)id);
	return st && (sleep_any_task || st->polling) ? st : 0;
}

/*
 * The arming task: the sleeper's own (hrtimer_init_sleeper sets current, and the loop re-arms
 * only while it is still set), or the current task. fentry programs read it, and the task
 * through it, with plain loads (the kernel hands them BTF pointers); kprobes with
 * bpf_probe_read_kernel, a helper call each (the arm's run time under TCG fell by a third when its
 * reads became plain loads). `btf` is a constant at every inlined call site.
 */
static __always_inline struct task_struct *arming_task(struct hrtimer_sleeper *sl, bool btf)
{
	return btf ? sl->task : (struct task_struct *)bpf_get_current_task();
}

/* The arm's caller is the kernel's hybrid sleep loop (see arm_caller_start). */
static __always_inline bool armed_by_hybrid_loop(u64 caller)
{
	for (u32 i = 0; i < DPT_ARM_CALLER_RANGES; i++)
		if (caller >= arm_caller_start[i] && caller < arm_caller_end[i])
			return true;
	return false;
}

/*
 * The arm's return address into its caller, read from the fentry trampoline's frame. After the
 * arguments come: a return-value slot (only when the trampoline also calls the function, for an
 * fexit of any tracer on it), the saved frame pointer, the return into the arm from its patched
 * first instruction (+5, or +9 after an ENDBR), and then the caller's. Found by that return into
 * the arm rather than assumed at a fixed place: a frame laid out otherwise is counted
 * (DPT_CNT_ARM_FRAME_UNKNOWN), not misread.
 */
static __always_inline u64 fentry_arm_caller(u64 *ctx, u32 nr_args)
{
	u64 words[4] = {};
	if (!bpf_probe_read_kernel(words, sizeof(words), ctx + nr_args)) {
		for (u32 i = 1; i < 3; i++)
			if (words[i] == arm_function_addr + 5 || words[i] == arm_function_addr + 9)
				return words[i + 1];
	}
	count(DPT_CNT_ARM_FRAME_UNKNOWN);
	return 0;
}

/* At a kprobe on the function's entry the stack pointer is at the return address. */
static __always_inline u64 kprobe_arm_caller(struct pt_regs *regs)
{
	u64 caller = 0;
	if (bpf_probe_read_kernel(&caller, sizeof(caller), (void *)PT_REGS_SP(regs)))
		count(DPT_CNT_ARM_FRAME_UNKNOWN);
	return caller;
}

/* Clear an attempt, keeping what outlives it (the fields before `timer`). */
static __always_inline void reset_state(struct sleep_state *st)
{
	const u32 kept = __builtin_offsetof(struct sleep_state, timer);
	__builtin_memset((char *)st + kept, 0, sizeof(*st) - kept);
}

static __always_inline void poll_enter(void)
{
	count_diagnostic(DPT_CNT_POLL_CALLS);
	struct sleep_state *st = claim_state(current_tid(), bpf_jiffies64());
	if (st)
		st->polling = 1;
}

static __always_inline void poll_exit(void)
{
	u32 tid = current_tid();
	struct sleep_state *st = state_for(tid);
	if (!st)
		return;
	if (st->active)
		finish_running(tid, st);
	st->polling = 0;
}

SEC("fentry/blk_mq_poll")
int BPF_PROG(poll_enter_fentry)
{
	poll_enter();
	return 0;
}

SEC("fexit/blk_mq_poll")
int BPF_PROG(poll_exit_fexit)
{
	poll_exit();
	return 0;
}

SEC("kprobe/blk_mq_poll")
int BPF_KPROBE(poll_enter_kprobe)
{
	poll_enter();
	return 0;
}

SEC("kretprobe/blk_mq_poll")
int BPF_KRETPROBE(poll_exit_kretprobe)
{
	poll_exit();
	return 0;
}

/*
 * An attempt starts when a polling thread arms its sleeper. Two sources, one chosen by the planner:
 * the arm itself (fentry/kprobe on hrtimer_sleeper_start_expires: fires for sleepers only, and
 * sees the requested ns exactly) or, where the kernel offers no function hook, the hrtimer_start
 * tracepoint (fires for every timer on the machine; requested ns estimated).
 */
static __always_inline void start_attempt(u64 id, struct sleep_state *st, u64 timer)
{
	u32 tid = (u32)id;
	st->timer = timer;
	/* Resolved on the poller's path, the arm time is only shown in events, where a relative pass
	 * gets it from its timer at the cancel (no clock read: under emulation each is a device
	 * access), or needed to estimate a request the arm did not show. */
	if (!resolve_on_poller_path || !st->has_exact || (emit_events && st->rearmed))
		st->armed_ns = bpf_ktime_get_ns();
	st->flags = st->rearmed ? DPT_F_REARMED : 0;
	st->tgid = id >> 32;
	st->active = 1;
	count_diagnostic(DPT_CNT_SLEEP_ARMED);
	if (resolve_on_poller_path) {
		st->flags |= DPT_F_RESOLVED_IN_IO_SCHEDULE;
		return; /* only the poller resolves it: no owner to find */
	}
	/* before the kernel queues the timer, so an expiry during the arm finds its owner */
	long err = bpf_map_update_elem(&timer_owner, &timer, &tid, BPF_ANY);
	if (err) {
		st->unowned = 1;
		count_update_failure(err);
	}
}

/* hrtimer_sleeper_start_expires(sl, mode). First pass (HRTIMER_MODE_REL): the sleeper still
 * holds the relative expiry the poller asked for, the exact requested ns. The kernel's sleep
 * loop arms the same sleeper again with HRTIMER_MODE_ABS when the task woke before its timer
 * fired: the expiry is then the absolute deadline, so that pass keeps the request it continues
 * (or, if the first pass was not seen, has it estimated as what was left: expires - now). The
 * absolute expiry of a REL pass is known once armed (arm_exit, or the expiry if that comes first). */
static __always_inline void arm_enter(struct hrtimer_sleeper *sl, u32 mode, bool btf, u64 caller)
{
	if (resolve_on_poller_path && !armed_by_hybrid_loop(caller))
		return;
	struct task_struct *task = resolve_on_poller_path ? arming_task(sl, btf) : 0;
	/* The sleeper's task is the arming one (a cleared one reads 0: no thread's slot): its ids by
	 * plain loads rather than a helper call. */
	u64 id = resolve_on_poller_path && btf ? (u64)(u32)task->tgid << 32 | (u32)task->pid : bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u8 rearm = !(mode & DPT_HRTIMER_MODE_REL);
	if (sleep_any_task_below_ns) { /* tests only: the verifier drops this otherwise */
		u64 asked = btf ? sl->timer.node.expires : BPF_CORE_READ(sl, timer.node.expires);
		if (sleeper_too_long(rearm ? (s64)(asked - bpf_ktime_get_ns()) : (s64)asked))
			return;
	}
	struct sleep_state *st = 0;
	if (!resolve_on_poller_path)
		st = tracked_state(id);
	else if (task_traced(id))
		st = claim_state(tid, bpf_jiffies64());
	if (!st)
		return;
	if (dpas_observe_at_arm)
		dpas_observe(); /* DPAS: the mode decided for this I/O is in place once it sleeps */
	if (st->active) /* re-armed by the sleep loop: the previous attempt ended */
		finish_running(tid, st);
	u8 continues = rearm && st->timer == (u64)sl && st->has_exact;
	u64 continued = st->requested_exact;
	reset_state(st);
	st->rearmed = rearm;
	if (resolve_on_poller_path) {
		/* The baseline of count_switch_since_arm (no voluntary switch until io_schedule). */
		st->task = (u64)task;
		st->nvcsw = btf ? task->nvcsw : BPF_CORE_READ(task, nvcsw);
		st->not_running_at_arm = not_running_ns(task, btf);
	}
	u64 expires = btf ? sl->timer.node.expires : BPF_CORE_READ(sl, timer.node.expires);
	if (!rearm) {
		st->requested_exact = expires;
		st->has_exact = 1;
	} else {
		st->expires_ns = expires;
		if (continues) {
			st->requested_exact = continued;
			st->has_exact = 1;
		}
	}
	st->arming = !resolve_on_poller_path; /* cleared by the arm's return probe, not planned then */
	start_attempt(id, st, (u64)sl);
}

static __always_inline void arm_exit(void)
{
	u32 tid = current_tid();
	struct sleep_state *st = state_for(tid);
	if (!st)
		return;
	st->arming = 0;
	if (!st->active)
		return;
	struct hrtimer_sleeper *sleeper = (struct hrtimer_sleeper *)st->timer; /* outside the CO-RE read */
	if (!st->expires_ns)
		st->expires_ns = BPF_CORE_READ(sleeper, timer.node.expires);
}

SEC("fentry/hrtimer_sleeper_start_expires")
int BPF_PROG(arm_enter_fentry, struct hrtimer_sleeper *sl, int mode)
{
	arm_enter(sl, mode, true, resolve_on_poller_path ? fentry_arm_caller(ctx, 2) : 0);
	return 0;
}

SEC("fexit/hrtimer_sleeper_start_expires")
int BPF_PROG(arm_exit_fexit)
{
	arm_exit();
	return 0;
}

SEC("kprobe/hrtimer_sleeper_start_expires")
int BPF_KPROBE(arm_enter_kprobe, struct hrtimer_sleeper *sl, int mode)
{
	arm_enter(sl, mode, false, resolve_on_poller_path ? kprobe_arm_caller(ctx) : 0);
	return 0;
}

SEC("kretprobe/hrtimer_sleeper_start_expires")
int BPF_KRETPROBE(arm_exit_kretprobe)
{
	arm_exit();
	return 0;
}

static __always_inline void io_schedule_enter(void)
{
	struct sleep_state *st = state_for(current_tid());
	if (st && st->active)
		st->flags |= DPT_F_IO_SCHEDULE;
}

SEC("fentry/io_schedule")
int BPF_PROG(io_schedule_fentry)
{
	io_schedule_enter();
	return 0;
}

SEC("kprobe/io_schedule")
int BPF_KPROBE(io_schedule_kprobe)
{
	io_schedule_enter();
	return 0;
}

/*
 * On the poller's path the attempt ends at the sleep loop's hrtimer_cancel of its sleeper. It
 * slept if the task switched out voluntarily inside io_schedule (nvcsw counts a switch made with
 * the task's state still TASK_UNINTERRUPTIBLE: its timer had not woken it yet); a preemption
 * after the wakeup counts in nivcsw and is not a sleep. A timer still queued (or, seen by a
 * kprobe, the sleeper still holding its task) means the task woke before its timer fired: the
 * loop arms it again. The loop skips io_schedule only when the timer already fired (its callback
 * cleared the task) while being armed (the seed's third hunt; or in the instants between the
 * arm's return and the loop's check, which only an interrupt landing there could tell apart). A loop that calls io_schedule regardless (the seed's fix) shows such
 * a pass as a no-sleep whose timer fired.
 */
static __always_inline void sleeper_cancel(struct hrtimer *timer, bool btf)
{
	if (!resolve_on_poller_path) /* the tracepoints resolve it (the planner leaves this out then) */
		return;
	u32 tid = current_tid();
	struct sleep_state *st = state_for(tid);
	if (!st || !st->active || st->timer != (u64)timer)
		return;
	struct hrtimer_sleeper *sleeper = (struct hrtimer_sleeper *)timer; /* outside the CO-RE read */
	/* Unfired: still queued (the expiry dequeues it before its callback clears the task; a plain
	 * load) or, read through a kprobe, the task still set. */
	u8 unfired = btf ? timer->state & DPT_HRTIMER_STATE_ENQUEUED : BPF_CORE_READ(sleeper, task) != 0;
	if (st->flags & DPT_F_IO_SCHEDULE) {
		count_switch_since_arm(st);
		st->flags |= unfired ? DPT_F_CANCELLED : DPT_F_TIMER_FIRED;
	} else if (!unfired) {
		st->flags |= DPT_F_TIMER_FIRED | DPT_F_FIRED_DURING_ARM;
	} else {
		/* the loop called io_schedule but its probe run was not made: slept unknown */
		st->flags |= DPT_F_CANCELLED | DPT_F_WAKEUP_UNSEEN;
		count(DPT_CNT_SLEEP_WAKEUP_UNSEEN);
	}
	if (emit_events) {
		if (!st->expires_ns)
			st->expires_ns = btf ? timer->node.expires : BPF_CORE_READ(sleeper, timer.node.expires);
		/* A relative arm set its soft expiry to the kernel's clock then plus the request: the
		 * same CLOCK_MONOTONIC as bpf_ktime_get_ns. */
		if (!st->armed_ns && !st->rearmed && st->has_exact)
			st->armed_ns = (btf ? timer->_softexpires : BPF_CORE_READ(sleeper, timer._softexpires))
				       - st->requested_exact;
	}
	finish_sleep(tid, st);
}

SEC("fentry/hrtimer_cancel")
int BPF_PROG(cancel_fentry, struct hrtimer *timer)
{
	/* Most cancels are other timers' (the tick's, at every idle exit: on the waking poller's way
	 * back too): a load rules them out, cheaper than the map lookup. */
	if ((u64)timer->function != hrtimer_wakeup_addr)
		return 0;
	sleeper_cancel(timer, true);
	return 0;
}

SEC("kprobe/hrtimer_cancel")
int BPF_KPROBE(cancel_kprobe, struct hrtimer *timer)
{
	sleeper_cancel(timer, false);
	return 0;
}

/*
 * The timer and scheduler hooks come in two attach types with one body each: tp_btf (raw
 * tracepoint: the kernel hands over its own arguments) where the kernel has BTF, else the
 * classic tracepoint, whose record the kernel first formats (comm strings and all) on every
 * hit, for every timer and every context switch on the machine.
 */

/* hrtimer_start of an hrtimer_wakeup sleeper, where the arm cannot be hooked: a hybrid sleep
 * attempt starts (requested ns estimated as expires - now). */
static __always_inline void on_timer_start(u64 timer, s64 expires, u8 absolute)
{
	if (sleep_any_task_below_ns && sleeper_too_long(expires - (s64)bpf_ktime_get_ns()))
		return;
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct sleep_state *st = tracked_state(id);
	if (!st)
		return;
	if (st->active) /* re-armed by the sleep loop: the previous attempt ended */
		finish_running(tid, st);
	reset_state(st);
	st->rearmed = absolute;
	st->expires_ns = expires;
	start_attempt(id, st, timer);
}

/* 5.10: TP_PROTO(struct hrtimer *, enum hrtimer_mode); 6.x adds bool was_armed, unread here. */
SEC("tp_btf/hrtimer_start")
int BPF_PROG(hrtimer_start_btf, struct hrtimer *timer, int mode)
{
	if ((u64)timer->function != hrtimer_wakeup_addr)
		return 0;
	on_timer_start((u64)timer, timer->node.expires, !(mode & DPT_HRTIMER_MODE_REL));
	return 0;
}

SEC("tracepoint/timer/hrtimer_start")
int hrtimer_start_tp(struct trace_event_raw_hrtimer_start *ctx)
{
	if ((u64)BPF_CORE_READ(ctx, function) != hrtimer_wakeup_addr)
		return 0;
	u8 absolute = bpf_core_field_exists(ctx->mode) && !(BPF_CORE_READ(ctx, mode) & DPT_HRTIMER_MODE_REL);
	on_timer_start((u64)BPF_CORE_READ(ctx, hrtimer), BPF_CORE_READ(ctx, expires), absolute);
	return 0;
}

/* kernel_now: the expiry's clock-base time when the hook has it, 0 to read the clock here. */
static __always_inline void on_timer_expire(u64 timer, u64 kernel_now)
{
	u32 *owner = bpf_map_lookup_elem(&timer_owner, &timer);
	if (!owner)
		return;
	u32 tid = *owner;
	struct sleep_state *st = state_for(tid);
	if (!st || !st->active || st->timer != timer)
		return;
	st->fired_ns = kernel_now ? kernel_now : bpf_ktime_get_ns();
	if (!st->expires_ns) { /* fired while still arming: arm_exit has not read it yet */
		struct hrtimer *expired = (struct hrtimer *)timer;
		st->expires_ns = BPF_CORE_READ(expired, node.expires);
	}
	st->flags |= DPT_F_TIMER_FIRED;
	if (st->arming)
		st->flags |= DPT_F_FIRED_DURING_ARM;
	if (st->out_since)
		return; /* asleep: the switch back in resolves it */
	/*
	 * Not seen leaving the CPU. Off it all the same means the kernel skipped our sched_switch
	 * run (on_cpu drops after that tracepoint, so a run in progress still shows on_cpu 1):
	 * it did sleep, since the arm at most. Still on a CPU, it can no longer sleep on this
	 * timer (hrtimer_wakeup clears the sleeper's task).
	 */
	struct task_struct *task = BPF_CORE_READ((struct hrtimer_sleeper *)timer, task);
	if (task && !BPF_CORE_READ(task, on_cpu)) {
		st->out_since = st->armed_ns;
		st->switched = 1;
		st->flags |= DPT_F_SWITCH_OUT_UNSEEN;
		count(DPT_CNT_SLEEP_SWITCH_OUT_UNSEEN);
		return;
	}
	finish_sleep(tid, st);
}

/*
 * The second argument (ktime_t *now) is not read: 5.10's verifier refuses a tp_btf argument
 * that points to anything but a struct. The clock base of the hybrid sleeper is
 * CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns, read a moment after the kernel's own now,
 * and only for our sleepers' timers (under emulation a clock read is an emulated device access).
 */
SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(hrtimer_expire_btf, struct hrtimer *timer)
{
	if ((u64)timer->function != hrtimer_wakeup_addr) /* a load, cheaper than the map lookup */
		return 0;
	on_timer_expire((u64)timer, 0);
	return 0;
}

SEC("tracepoint/timer/hrtimer_expire_entry")
int hrtimer_expire_tp(struct trace_event_raw_hrtimer_expire_entry *ctx)
{
	on_timer_expire((u64)BPF_CORE_READ(ctx, hrtimer), BPF_CORE_READ(ctx, now));
	return 0;
}

/* slept == the polling thread really left the CPU while its sleeper was armed. */
/* The clock is read only for our sleepers (most switches are not theirs). */
static __always_inline void on_context_switch(u32 prev, u32 next)
{
	struct sleep_state *st = state_for(prev);
	if (st && st->active && !st->fired_ns && !st->out_since) {
		st->out_since = bpf_ktime_get_ns();
		st->switched = 1;
	}
	st = state_for(next);
	if (st && st->active && st->out_since) {
		u64 now = bpf_ktime_get_ns();
		st->slept_ns += now > st->out_since ? now - st->out_since : 0;
		st->out_since = 0;
		/*
		 * hrtimer_wakeup clears the sleeper's task: cleared without an expiry seen means the
		 * kernel skipped our hrtimer_expire_entry run. The sleeper is on this task's stack.
		 * Still set: woken before its timer (another thread's completion, a signal); the sleep
		 * loop cancels the timer and re-arms or leaves, which ends the attempt.
		 */
		struct hrtimer_sleeper *sleeper = (struct hrtimer_sleeper *)st->timer; /* outside the CO-RE read */
		if (!st->fired_ns && !BPF_CORE_READ(sleeper, task)) {
			st->fired_ns = st->expires_ns;
			st->flags |= DPT_F_TIMER_FIRED | DPT_F_EXPIRY_UNSEEN;
			count(DPT_CNT_SLEEP_EXPIRY_UNSEEN);
		}
		if (st->fired_ns)
			finish_sleep(next, st);
	}
}

/* 5.10: TP_PROTO(bool preempt, prev, next); 5.18+ adds prev_state, unread here. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_context_switch(prev->pid, next->pid);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int sched_switch_tp(struct trace_event_raw_sched_switch *ctx)
{
	on_context_switch(BPF_CORE_READ(ctx, prev_pid), BPF_CORE_READ(ctx, next_pid));
	return 0;
}

/* --------------------------------------------------------- DPAS programs */
/*
 * The DPAS hook: blk_mq_poll entry (the mode before this I/O's decision, the queue) and
 * exit (the mode after it, PAS per-bucket state). Loaded only on DPAS kernels.
 */
SEC("fentry/blk_mq_poll")
int BPF_PROG(dpas_poll_enter_fentry, struct request_queue *q)
{
	dpas_poll_enter((u64)q);
	return 0;
}

SEC("fexit/blk_mq_poll")
int BPF_PROG(dpas_poll_exit_fexit)
{
	dpas_poll_exit();
	return 0;
}

SEC("kprobe/blk_mq_poll")
int BPF_KPROBE(dpas_poll_enter_kprobe, struct request_queue *q)
{
	dpas_poll_enter((u64)q);
	return 0;
}

SEC("kretprobe/blk_mq_poll")
int BPF_KRETPROBE(dpas_poll_exit_kretprobe)
{
	dpas_poll_exit();
	return 0;
}
