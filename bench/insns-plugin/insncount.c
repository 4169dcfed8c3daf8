/*
 * QEMU TCG plugin of bench/insns: counts the guest instructions executed (all vCPUs; the lab runs
 * single-threaded TCG, so one plain counter) and appends "VCPU COUNT CPU_NS" to the file out=PATH
 * each time the guest executes the marker `nopl 0x44505431(%rax)` (dpt-mark.c). The counts do not
 * depend on the host's speed, which the lab's IOPS do. CPU_NS is the CPU time of the thread
 * emulating every vCPU (it sleeps while they idle; devices run in other threads): what emulating
 * the guest's code cost the host, less sensitive to other tenants than wall-clock IOPS.
 * With profile=PATH it also writes, at each window's closing mark (windows run from an odd mark to
 * the next), "WINDOW VADDR COUNT MEMORY" for every translation block that ran in the window: the
 * instructions executed from blocks starting at VADDR and their memory accesses (bench/insns
 * --profile symbolises them; TCG emulates a memory access far more dearly than a register op).
 * Debian ships QEMU without qemu-plugin.h: the few declarations used are QEMU 7.2's (plugin API
 * version 1), below.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
#define EXPORT __attribute__((visibility("default")))
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, void (*cb)(unsigned int, void *),
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_mem_rw rw,
					  enum qemu_plugin_op op, void *ptr, uint64_t imm);
EXPORT int qemu_plugin_version = 1;

static uint64_t insns;
static FILE *out;
static const unsigned char marker[7] = { 0x0f, 0x1f, 0x80, 0x31, 0x54, 0x50, 0x44 };

/* One per translation (a block translated again gets another; the host sums them by address). */
struct block_count {
	uint64_t vaddr;
	uint64_t insns;    /* executed from this translation, ever (an inline add: no callback) */
	uint64_t at_open;  /* insns at the window's opening mark */
	uint64_t memory;   /* memory accesses made by its instructions, ever */
	uint64_t memory_at_open;
	struct block_count *next;
};
static struct block_count *blocks;
static FILE *profile;
static unsigned marks;

static void profile_mark(void)
{
	unsigned window = marks / 2;
	bool opening = marks++ % 2 == 0;
	for (struct block_count *b = blocks; b; b = b->next) {
		if (opening) {
			b->at_open = b->insns;
			b->memory_at_open = b->memory;
		} else if (b->insns != b->at_open) {
			fprintf(profile, "%u %016llx %llu %llu\n", window, (unsigned long long)b->vaddr,
				(unsigned long long)(b->insns - b->at_open),
				(unsigned long long)(b->memory - b->memory_at_open));
		}
	}
	if (!opening)
		fflush(profile);
}

static void mark(unsigned int vcpu, void *udata)
{
	struct timespec cpu;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
	fprintf(out, "%u %llu %llu\n", vcpu, (unsigned long long)insns,
		(unsigned long long)cpu.tv_sec * 1000000000ULL + (unsigned long long)cpu.tv_nsec);
	fflush(out);
	if (profile)
		profile_mark();
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, n);
	struct block_count *b = profile ? calloc(1, sizeof(*b)) : NULL;
	if (b) {
		b->vaddr = qemu_plugin_tb_vaddr(tb);
		b->next = blocks;
		blocks = b;
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns, n);
	}
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		if (b)
			qemu_plugin_register_vcpu_mem_inline(insn, QEMU_PLUGIN_MEM_RW, QEMU_PLUGIN_INLINE_ADD_U64, &b->memory, 1);
		if (qemu_plugin_insn_size(insn) == sizeof(marker) && !memcmp(qemu_plugin_insn_data(insn), marker, sizeof(marker)))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
	}
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = "insncount.out";
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
		else if (!strncmp(argv[i], "profile=", 8) && !(profile = fopen(argv[i] + 8, "w")))
			return -1;
	out = fopen(path, "w");
	if (!out)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	return 0;
}
