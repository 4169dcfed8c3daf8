#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <stdarg.h>
#include <stdio.h>
/* Key/value layouts of the in-kernel aggregate maps (shared with bpf/dpas_trace.bpf.c). */
#include "../../bpf/dpt_aggregates.h"

/*
 * libbpf hands its print callback a va_list, which Swift cannot format portably:
 * this formats the message and passes it on as a plain string.
 */
typedef void (*dpt_libbpf_line_fn)(int level, const char *line);
/* Function-local static: a file-scope one is not emitted when Swift imports this header. */
static inline dpt_libbpf_line_fn *dpt_libbpf_sink_slot(void)
{
	static dpt_libbpf_line_fn slot;
	return &slot;
}

static inline int dpt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, args);
	dpt_libbpf_line_fn sink = *dpt_libbpf_sink_slot();
	if (sink)
		sink((int)level, buf);
	return 0;
}

/* Routes every libbpf message to `sink` (NULL: drop them). */
static inline void dpt_libbpf_capture(dpt_libbpf_line_fn sink)
{
	*dpt_libbpf_sink_slot() = sink;
	libbpf_set_print(dpt_libbpf_print);
}
