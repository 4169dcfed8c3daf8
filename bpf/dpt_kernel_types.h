/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel types dpas_trace.bpf.c reads, declared by hand with
 * preserve_access_index (libbpf-tools style): libbpf relocates every field
 * offset against the running kernel's BTF at load time, so one object serves
 * 5.10, 5.18 (DPAS) and 6.18.  Only fields we read are listed.  Types whose
 * fields moved between versions get a ___flavor twin probed with
 * bpf_core_field_exists.
 */
#ifndef DPT_KERNEL_TYPES_H
#define DPT_KERNEL_TYPES_H

/* __u8 ... __u64 come from <linux/types.h> (via <linux/bpf.h>, included first). */
typedef __s8 s8;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0

#define __pai __attribute__((preserve_access_index))

/* x86_64 pt_regs as libbpf's PT_REGS_* macros expect it. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax, ip, cs, flags, sp, ss;
} __pai;

struct gendisk {
	int major;
	int first_minor;
} __pai;

struct request_queue {
	unsigned long queue_flags;
} __pai;

/* >= 5.15: the queue knows its disk. */
struct request_queue___disk {
	struct gendisk *disk;
} __pai;

struct blk_mq_hw_ctx {
	struct request_queue *queue;
} __pai;

struct request {
	struct request_queue *q;
	struct blk_mq_hw_ctx *mq_hctx;
	unsigned int cmd_flags;
	unsigned int __data_len;
	unsigned short stats_sectors;
} __pai;

/* <= 5.17: the request points at its disk (removed in 5.18/5.19). */
struct request___rq_disk {
	struct gendisk *rq_disk;
} __pai;

/* The polled-request flag bit moved: __REQ_HIPRI (<= 5.17), __REQ_POLLED (>= 5.18). */
enum req_flag_bits {
	__REQ_HIPRI = 0,
	__REQ_POLLED = 1,
};

struct timerqueue_node {
	s64 expires;
} __pai;

struct hrtimer {
	struct timerqueue_node node;
	s64 _softexpires; /* ktime_t: the earliest expiry (node.expires adds the slack) */
	void *function; /* enum hrtimer_restart (*)(struct hrtimer *) */
	u8 state; /* HRTIMER_STATE_ENQUEUED (bit 0) while queued: cleared before its callback runs */
} __pai;

#define DPT_HRTIMER_STATE_ENQUEUED 0x01

/* The scheduler's accounting of a task's CPU time (fair and RT classes alike), by rq_clock_task. */
struct sched_entity {
	u64 exec_start;       /* when its runtime was last accounted (or it last got the CPU) */
	u64 sum_exec_runtime; /* its runtime up to exec_start */
} __pai;

struct task_struct {
	int on_cpu; /* on a CPU (finish_task clears it after the sched_switch tracepoint) */
	int pid; /* the thread id */
	int tgid; /* the process id */
	unsigned long nvcsw; /* voluntary context switches */
	struct sched_entity se;
} __pai;

/* The hybrid-poll sleeper: the timer is its first member, so &sl->timer == sl. */
struct hrtimer_sleeper {
	struct hrtimer timer;
	struct task_struct *task; /* the sleeper until hrtimer_wakeup clears it */
} __pai;

/* Classic tracepoint records (the format files of tracefs), relocated by CO-RE too. */
struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
} __pai;

struct trace_event_raw_block_rq {
	struct trace_entry ent;
	u32 dev;
	u64 sector;
	unsigned int nr_sector;
	unsigned int bytes;
	char rwbs[8];
} __pai;

struct trace_event_raw_block_rq_completion {
	struct trace_entry ent;
	u32 dev;
	u64 sector;
	unsigned int nr_sector;
	int error;
	char rwbs[8];
} __pai;

struct trace_event_raw_hrtimer_start {
	struct trace_entry ent;
	void *hrtimer;
	void *function;
	s64 expires;
	s64 softexpires;
	int mode; /* enum hrtimer_mode */
} __pai;

/* enum hrtimer_mode: bit 0 set = relative expiry (HRTIMER_MODE_REL), clear = absolute. */
#define DPT_HRTIMER_MODE_REL 0x01

struct trace_event_raw_hrtimer_expire_entry {
	struct trace_entry ent;
	void *hrtimer;
	s64 now;
	void *function;
} __pai;

struct trace_event_raw_sched_switch {
	struct trace_entry ent;
	char prev_comm[16];
	int prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[16];
	int next_pid;
	int next_prio;
} __pai;

/*
 * DPAS (5.18 + the FAST '26 patch), names as in shared/dpas-kernel.md.  Absent from
 * stock kernels' BTF: every use is guarded by bpf_core_type_exists(), so on a stock
 * kernel the relocations are dead code the verifier never sees.  Integer fields are read
 * with BPF_CORE_READ_BITFIELD_PROBED, which takes their real size from the kernel's BTF,
 * so the declared widths below need not match.
 */
struct blk_switch {
	int enabled;
	int mode;                 /* 0 INT, 1 CP, 2 PAS, 3 OL, 4 EHP */
	int cp_cnt, pas_cnt, ol_cnt, int_cnt; /* I/Os in the current mode window */
	int qd;                   /* current queue depth */
	int qd_sum;               /* summed queue depth of the window's non-CP I/Os */
	int tf;                   /* timer-floor hits in the window */
	u64 cp_tot, pas_tot, ol_tot, int_tot; /* per-mode I/O totals, as switch_stat prints */
} __pai;

/* Per-bucket PAS sleep state; q->pas_stat is a per-CPU array of 16 of them. */
struct blk_rq_pas_stat {
	u64 dur;                  /* current PAS sleep duration, ns */
	u8 sr_pnlt;               /* the result before the last one */
	u8 sr_last;               /* the last sleep result */
	u8 dur_cnt;
} __pai;

/* The DPAS request_queue: its per-CPU PAS state. */
struct request_queue___dpas {
	struct blk_rq_pas_stat *pas_stat;
} __pai;

#endif /* DPT_KERNEL_TYPES_H */
