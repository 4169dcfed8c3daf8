/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * In-kernel aggregate maps of dpas_trace.bpf.c: key/value layouts and counter
 * indices.  Compiled into the BPF object and, through the CLibBPF module, into
 * the Swift loader that reads the maps, so both agree on every offset.
 */
#ifndef DPT_AGGREGATES_H
#define DPT_AGGREGATES_H

/* Self-contained (no include of the events header) so Swift can import it
 * from the CLibBPF module without redefining the CDPASEvents types. */
typedef unsigned char dpt_agg_u8;
typedef signed char dpt_agg_s8;
typedef unsigned int dpt_agg_u32;
typedef unsigned long long dpt_agg_u64;
#define DPT_AGG_HIST_BINS 256 /* == DPT_HIST_BINS, asserted in dpas_trace.bpf.c */

/* Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY "counters"), one slot each. */
enum dpt_counter {
	DPT_CNT_RINGBUF_LOST = 0,    /* bpf_ringbuf_reserve failed: an event was dropped */
	DPT_CNT_MAP_FULL = 1,        /* a map update failed for room (map full), or no thread slot was free: a sample missed */
	DPT_CNT_EXACT_OVERFLOW = 2,  /* a requested-ns value did not fit the exact sleep map */
	DPT_CNT_RQ_START = 3,        /* requests started that passed the filters */
	DPT_CNT_RQ_DONE = 4,         /* completions of those requests */
	DPT_CNT_RQ_DONE_UNMATCHED = 5, /* completions whose start was not seen (or not kept) */
	DPT_CNT_SLEEP_ARMED = 6,     /* hybrid-poll sleepers armed (the arm, or hrtimer_start of an hrtimer_wakeup sleeper);
	                              * those resolved are the sleep rows' attempts */
	DPT_CNT_SLEEP_APPROX = 7,    /* attempts whose requested ns was estimated (expires - now) */
	DPT_CNT_POLL_CALLS = 8,      /* blk_poll / blk_mq_poll entries */
	DPT_CNT_SLEEP_REARMED = 9,   /* attempts that were the sleep loop's re-armed pass (DPT_F_REARMED) */
	DPT_CNT_SLEEP_WAKEUP_UNSEEN = 10, /* attempts with a probe run missing at their end (DPT_F_WAKEUP_UNSEEN): the
	                                   * switch back onto the CPU, or on the poller's path io_schedule's or the cancel's */
	DPT_CNT_SLEEP_SWITCH_OUT_UNSEEN = 11, /* attempts off the CPU at expiry without a switch out seen (DPT_F_SWITCH_OUT_UNSEEN) */
	DPT_CNT_SLEEP_EXPIRY_UNSEEN = 12, /* attempts whose timer fired without its expiry seen (DPT_F_EXPIRY_UNSEEN) */
	DPT_CNT_ARM_FRAME_UNKNOWN = 13, /* sleeper arms whose caller could not be read (a trampoline frame laid out
	                                 * otherwise): on the poller's path not counted as hybrid sleeps */
	DPT_CNT_RQ_ISSUED_ELSEWHERE = 14, /* of DPT_CNT_RQ_START: issued to the driver by a thread other than the one that
	                                   * made the request (an I/O scheduler's or a kworker's dispatch), credited to its maker */
	DPT_CNT_RQ_REISSUED = 15,    /* issues of a request already started (the driver sent it back busy): not new starts */
	DPT_CNT_RQ_MAKER_UNSEEN = 16, /* of DPT_CNT_RQ_START, with the maker hook attached: requests whose make was not seen
	                               * (made before the hook attached, or dropped from a full rq_maker), credited to
	                               * their issuer */
	DPT_CNT_MAP_BUSY = 17,       /* a map update failed on its lock, not for room (6.15+: a hash map's bucket lock
	                              * timed out or would have deadlocked): an aggregate missed a sample */
	DPT_CNT_COUNT = 20,
};

/* Per-thread sleep state slots (array "sleep_by_tid", slot = thread id's low bits, probed
 * DPT_THREAD_SLOT_PROBES on): 32768 is the default pid_max, so no two live threads collide below
 * it. A slot not claimed for DPT_THREAD_SLOT_STALE jiffies (4-16 s) is given to another thread. */
#define DPT_THREAD_SLOTS 32768
#define DPT_THREAD_SLOT_PROBES 4
#define DPT_THREAD_SLOT_STALE 4096

/* Text ranges of the functions that can hold the hybrid sleep loop (rodata arm_caller_start/_end). */
#define DPT_ARM_CALLER_RANGES 4

/* Rows of the sleep aggregate: exact requested ns (open-addressed table) and log2 rows (array),
 * each attempt in one of them: its log2 row only when the exact table had no slot for it. The
 * reader shows exact rows for at most 16 distinct values; 64 slots per CPU hold those with short
 * probe runs (each row is ≈ 4 KB per possible CPU). */
#define DPT_SLEEP_EXACT_SLOTS_LOG2 6
#define DPT_SLEEP_EXACT_MAX (1 << DPT_SLEEP_EXACT_SLOTS_LOG2)
#define DPT_SLEEP_EXACT_PROBES 16 /* slots tried from a value's home slot before it counts as overflow */
#define DPT_SLEEP_LOG2_ROWS 64

struct dpt_sleep_stats {
	dpt_agg_u64 attempts;
	dpt_agg_u64 slept;
	dpt_agg_u64 no_sleep;
	dpt_agg_u64 woke_early;         /* slept attempts with slept_ns < requested */
	dpt_agg_u64 io_schedule;        /* attempts with DPT_F_IO_SCHEDULE */
	dpt_agg_u64 fired_during_arm;   /* attempts with DPT_F_FIRED_DURING_ARM */
	dpt_agg_u64 cancelled;          /* attempts with DPT_F_CANCELLED */
	dpt_agg_u64 slept_ns_sum;       /* sum of slept_ns over slept attempts */
	dpt_agg_u64 slept_ns_max;
	dpt_agg_u64 oversleep_ns_sum;   /* sum of max(slept_ns - requested, 0) over slept attempts */
	dpt_agg_u64 oversleep_ns_max;
	dpt_agg_u64 hist_slept[DPT_AGG_HIST_BINS];    /* slept_ns of slept attempts, dpt_hist_bin */
	dpt_agg_u64 hist_oversleep[DPT_AGG_HIST_BINS]; /* oversleep of slept attempts, dpt_hist_bin */
};

/* A slot of the exact table (BPF_MAP_TYPE_PERCPU_ARRAY "sleep_exact"): each CPU places a value
 * in its own slots, so the same value may sit in different slots on different CPUs. */
struct dpt_sleep_exact_row {
	dpt_agg_u64 requested_ns;
	dpt_agg_u64 used; /* 0: a free slot */
	struct dpt_sleep_stats stats;
};

/* Array map "sleep_rows_used" (one entry): which exact slots some CPU has claimed and which log2
 * rows some attempt has reached, so the reader copies only those (each row is a few KB per
 * possible CPU; the log2 rows are reached only once the exact table is full). */
struct dpt_sleep_rows_used {
	dpt_agg_u8 exact[DPT_SLEEP_EXACT_MAX];
	dpt_agg_u8 log2[DPT_SLEEP_LOG2_ROWS];
};

/* Key of the bucket aggregate (hash "bucket_counts", value: u64 count per CPU). */
#define DPT_BK_POLLED      (1u << 0)
#define DPT_BK_QUEUE_STATS (1u << 1)
#define DPT_BK_STATS_KNOWN (1u << 2) /* stats_sectors/queue flags were readable (not the classic tracepoint) */
#define DPT_BUCKET_KEYS_MAX 4096

struct dpt_bucket_key {
	dpt_agg_s8 bucket;
	dpt_agg_s8 bucket_by_sectors;
	dpt_agg_u8 ddir;
	dpt_agg_u8 flags;          /* DPT_BK_* */
	dpt_agg_u32 nr_sectors;
	dpt_agg_u32 stats_sectors;
};

_Static_assert(sizeof(struct dpt_bucket_key) == 12, "dpt_bucket_key must stay 12 bytes");
_Static_assert(sizeof(struct dpt_sleep_stats) == 8 * (11 + 2 * DPT_AGG_HIST_BINS), "dpt_sleep_stats layout");

/*
 * DPAS (dpas_trace.bpf.c, "DPAS" section).  Mode-indexed rows use enum dpt_mode
 * numbering (0 INT, 1 CP, 2 PAS, 3 OL, 4 EHP); row 5 counts requests whose CPU's
 * mode could not be read.
 */
#define DPT_DPAS_MODE_ROWS 6
#define DPT_DPAS_MODE_UNKNOWN_ROW 5

/* Per-CPU map "dpas_cpu" (one slot): what this CPU's struct blk_switch looked like. */
struct dpt_dpas_cpu {
	dpt_agg_u64 first_seen_ns;  /* first observation (0: never observed) */
	dpt_agg_u64 last_seen_ns;
	dpt_agg_u64 transitions;    /* MODE events emitted (or attempted) */
	dpt_agg_u32 first_mode;     /* mode at the first observation */
	dpt_agg_u32 mode;           /* mode at the last observation */
	dpt_agg_u32 window_ios;     /* the mode's window counter (cp_cnt ...) at the last observation */
	dpt_agg_u32 pas_cnt;
	dpt_agg_u32 qd_sum;
	dpt_agg_u32 tf;
};

/* Per-CPU map "dpas_mode_ios" (DPT_DPAS_MODE_ROWS slots): requests started per mode. */
struct dpt_dpas_mode_ios {
	dpt_agg_u64 ios;
	dpt_agg_u64 polled;
};

/* Array map "dpas_totals" indexed by CPU: that CPU's blk_switch totals, as switch_stat prints. */
struct dpt_dpas_totals {
	dpt_agg_u64 cp_tot;
	dpt_agg_u64 pas_tot;
	dpt_agg_u64 ol_tot;
	dpt_agg_u64 int_tot;
	dpt_agg_u64 read_ns;        /* when they were read (0: never) */
};

#endif /* DPT_AGGREGATES_H */
