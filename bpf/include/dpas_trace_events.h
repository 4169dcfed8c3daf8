/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The one definition of what dpas-trace records.
 *
 * Compiled twice: into the BPF programs (clang -target bpf) and, through the
 * CDPASEvents module, into Swift.  Both sides therefore agree on every offset;
 * the static asserts below make a size change a build error on both sides.
 * Bump DPT_EVENT_LAYOUT_VERSION on any change: dumps record it and readers
 * refuse layouts they do not know.
 *
 * All integers are little-endian host order (x86_64, arm64).  Timestamps are
 * CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns); dumps carry the offset to
 * the realtime clock in their header.
 */
#ifndef DPAS_TRACE_EVENTS_H
#define DPAS_TRACE_EVENTS_H

#define DPT_EVENT_LAYOUT_VERSION 1
#define DPT_EVENT_SIZE 128

typedef unsigned char dpt_u8;
typedef signed char dpt_s8;
typedef unsigned short dpt_u16;
typedef unsigned int dpt_u32;
typedef signed int dpt_s32;
typedef unsigned long long dpt_u64;

/* What an event describes. */
enum dpt_event_kind {
	DPT_EV_RQ_START = 1,     /* a request was started: blk_mq_start_request / block_rq_issue */
	DPT_EV_RQ_DONE = 2,      /* a request completed: block_rq_complete; io_latency_ns set */
	DPT_EV_HYBRID_SLEEP = 3, /* one hybrid-poll sleep attempt, resolved (timer cancelled or fired) */
	DPT_EV_MODE = 4,         /* a DPAS mode transition on this CPU */
	DPT_EV_PAS_STATE = 5,    /* PAS per-bucket sleep state after an update (DPAS kernels) */
};

/* Result of a hybrid sleep attempt. */
enum dpt_sleep_outcome {
	DPT_SLEEP_UNKNOWN = 0,
	DPT_SLEEP_SLEPT = 1,     /* the task switched out while its sleeper was armed */
	DPT_SLEEP_NO_SLEEP = 2,  /* the timer fired / was cancelled before the task yielded */
};

/* DPAS completion modes as numbered in struct blk_switch.mode. */
enum dpt_mode {
	DPT_MODE_INT = 0,
	DPT_MODE_CP = 1,
	DPT_MODE_PAS = 2,
	DPT_MODE_OL = 3,
	DPT_MODE_EHP = 4,
	DPT_MODE_UNKNOWN = 255,  /* not a DPAS kernel, or state unreadable */
};

/* PAS sleep results kept in blk_rq_pas_stat.sr_last. */
enum dpt_pas_result {
	DPT_PAS_NONE = 0,
	DPT_PAS_OVERSLEPT = 1,
	DPT_PAS_UNDERSLEPT = 2,
};

/* dpt_event.flags */
#define DPT_F_POLLED            (1u << 0) /* request marked for polling (REQ_HIPRI / REQ_POLLED) */
#define DPT_F_QUEUE_STATS       (1u << 1) /* QUEUE_FLAG_STATS was set on the queue at start */
#define DPT_F_IO_SCHEDULE       (1u << 2) /* io_schedule() was called while the sleeper was armed */
#define DPT_F_TIMER_FIRED       (1u << 3) /* the sleeper's hrtimer_wakeup ran */
#define DPT_F_FIRED_DURING_ARM  (1u << 4) /* ... before hrtimer_sleeper_start_expires returned */
#define DPT_F_CANCELLED         (1u << 5) /* ended with its timer unfired: the sleep loop cancelled it */
#define DPT_F_DPAS              (1u << 6) /* DPAS state was readable: mode fields are valid */
/* (1u << 7): free (never set by any recorder) */
#define DPT_F_PAS_TIMER_FLOOR   (1u << 8) /* PAS duration was clamped to pas_d_init (a tf hit) */
#define DPT_F_REARMED           (1u << 9) /* HYBRID_SLEEP: the sleep loop's next pass after a wakeup that was
                                             not the timer (HRTIMER_MODE_ABS, same deadline); its
                                             sleep_requested_ns is the request it continues */
#define DPT_F_WAKEUP_UNSEEN     (1u << 10) /* HYBRID_SLEEP: the task was seen leaving the CPU but not coming
                                             back (a probe run the kernel did not make): slept_ns is
                                             estimated, ending at the timer's expiry */
#define DPT_F_SWITCH_OUT_UNSEEN (1u << 11) /* HYBRID_SLEEP: the task was off the CPU when its timer fired but
                                             was not seen leaving it (a probe run the kernel did not
                                             make): slept_ns is estimated, starting at the arm */
#define DPT_F_EXPIRY_UNSEEN     (1u << 12) /* HYBRID_SLEEP: the timer had fired (the sleeper's task was
                                             cleared) when the task came back, but its expiry was not
                                             seen: timer_fired_ns is the timer's expiry time */
#define DPT_F_RESOLVED_IN_IO_SCHEDULE (1u << 13) /* HYBRID_SLEEP: resolved on the poller's path (at the
                                             sleep loop's hrtimer_cancel): slept = a
                                             voluntary context switch inside io_schedule, slept_ns = the
                                             time off the CPU by the scheduler's accounting (rq_clock_task);
                                             the expiry is not timed (timer_fired_ns 0) */

struct dpt_event {
	dpt_u64 ts_ns;          /* when it happened, CLOCK_MONOTONIC ns */
	dpt_u64 rq;             /* request identity (kernel address of struct request), 0 if none */
	dpt_u32 kind;           /* enum dpt_event_kind */
	dpt_u32 cpu;
	dpt_u32 pid;            /* thread-group id (RQ_*: of the request's maker) */
	dpt_u32 tid;
	dpt_u32 dev;            /* disk dev_t, kernel encoding (major << 20 | minor) */
	dpt_u32 flags;          /* DPT_F_* */

	/* requests (RQ_START, RQ_DONE) */
	dpt_u32 nr_sectors;     /* blk_rq_sectors(rq) */
	dpt_u32 stats_sectors;  /* rq->stats_sectors: 0 unless QUEUE_FLAG_STATS */
	dpt_u8 ddir;            /* 0 read, 1 write */
	dpt_s8 bucket;          /* blk_mq_poll_stats_bkt the kernel's way (from stats_sectors), -1 none */
	dpt_s8 bucket_by_sectors; /* the same formula applied to nr_sectors (the seed's fix 1) */
	dpt_u8 outcome;         /* HYBRID_SLEEP: enum dpt_sleep_outcome */
	dpt_u8 mode_from;       /* MODE: previous mode; others: DPT_MODE_UNKNOWN */
	dpt_u8 mode_to;         /* MODE: new mode; RQ_*: the CPU's mode at that moment */
	dpt_u8 pas_last[2];     /* PAS_STATE: sr_last, enum dpt_pas_result, newest first */

	/* hybrid sleep (HYBRID_SLEEP; ts_ns is when the attempt ended) */
	dpt_u64 sleep_requested_ns; /* the relative expiry the poller asked for (see DPT_F_REARMED) */
	dpt_u64 sleep_armed_ns;     /* when hrtimer_start armed it */
	dpt_u64 timer_expires_ns;   /* absolute expiry the timer was armed with */
	dpt_u64 timer_fired_ns;     /* when hrtimer_wakeup ran; 0 if it never did or was not timed */
	dpt_u64 slept_ns;           /* time switched out while armed; 0 for no-sleep */

	dpt_u64 io_latency_ns;      /* RQ_DONE: start -> completion */
	dpt_u64 pas_dur_ns;         /* PAS_STATE: current PAS sleep duration (dur) */

	/* DPAS decision (MODE) */
	dpt_u32 avg_qd_x10;     /* average queue depth x10 at the decision (10 == QD 1) */
	dpt_u32 tf;             /* timer-floor hits in the ended window */
	dpt_u32 window_ios;     /* I/Os in the ended mode window */
	dpt_u32 reserved;
};

#define DPT_ASSERT_LAYOUT(cond, msg) _Static_assert(cond, msg)
DPT_ASSERT_LAYOUT(sizeof(struct dpt_event) == DPT_EVENT_SIZE, "dpt_event must stay 128 bytes");
DPT_ASSERT_LAYOUT(__builtin_offsetof(struct dpt_event, sleep_requested_ns) == 56, "dpt_event offsets moved");

/* Buckets: the kernel's blk_mq_poll_stats_bkt(), 16 buckets. */
#define DPT_POLL_STATS_BKTS 16

/* Lost-event counters and in-kernel aggregates are indexed per CPU. */
#define DPT_MAX_CPUS 512

/*
 * Latency histograms: one binning shared by the in-kernel aggregates and the
 * offline analyses, so live tables and reports of the same period agree bin
 * for bin.  Values below 16 ns get a bin each; above, every power of two is
 * split into 4 linear sub-bins (<= 25 % wide).  256 bins cover all of u64.
 */
#define DPT_HIST_BINS 256

static inline dpt_u32 dpt_ilog2(dpt_u64 v)
{
	dpt_u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static inline dpt_u32 dpt_hist_bin(dpt_u64 v)
{
	if (v < 16)
		return (dpt_u32)v;
	dpt_u32 lg = dpt_ilog2(v);
	return 16 + (lg - 4) * 4 + (dpt_u32)((v >> (lg - 2)) & 3);
}

/* Smallest value that falls into bin b (the bin covers [lower(b), lower(b+1))). */
static inline dpt_u64 dpt_hist_bin_lower(dpt_u32 b)
{
	if (b < 16)
		return b;
	dpt_u32 lg = (b - 16) / 4 + 4;
	return ((dpt_u64)(4 + (b - 16) % 4)) << (lg - 2);
}

/*
 * The kernel's blk_mq_poll_stats_bkt(): bucket = ddir + 2*ilog2(sectors),
 * -1 when sectors == 0, clamped to ddir + 2*(BKTS/2 - 1) at the top.
 */
static inline dpt_s8 dpt_poll_stats_bucket(dpt_u32 sectors, dpt_u8 ddir)
{
	if (sectors == 0)
		return -1;
	dpt_s32 bucket = (dpt_s32)ddir + 2 * (dpt_s32)dpt_ilog2(sectors);
	if (bucket >= DPT_POLL_STATS_BKTS)
		return (dpt_s8)(ddir + DPT_POLL_STATS_BKTS - 2);
	return (dpt_s8)bucket;
}

#endif /* DPAS_TRACE_EVENTS_H */
