/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Hardware CRC-32C for dump checksums (Swift side only; not used by BPF code).
 * Used by Sources/DPASTraceCore/Dump/CRC32C.swift.
 *
 * Swift cannot emit the SSE4.2 crc32 instruction itself: calling the intrinsic
 * from Swift inlines it into code compiled without the feature.  These helpers
 * carry their own target attribute and loop over the whole buffer, so Swift
 * calls them once per chunk.  DumpFormat falls back to its slicing-by-8 table
 * code where dpt_crc32c_hw_available() says no.
 */
#ifndef DPT_CRC32C_H
#define DPT_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

/* 1 when the CPU has SSE4.2 (CPUID.1:ECX bit 20), else 0. */
static inline int dpt_crc32c_hw_available(void)
{
	unsigned int eax, ebx, ecx, edx;
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	return (ecx >> 20) & 1;
}

/*
 * Three independent crc32 streams hide the instruction's 3-cycle latency; their
 * registers are merged by "shifting" a register over n zero bytes, a linear
 * operator precomputed as a 4 x 256 table (dpt_crc32c_zeros_table, after
 * Mark Adler's crc32c.c).  Blocks: 3 x 8 KiB, then 3 x 256 B, then single bytes.
 */
#define DPT_CRC32C_LONG 8192
#define DPT_CRC32C_SHORT 256

static inline uint32_t dpt_gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	while (vec) {
		if (vec & 1)
			sum ^= *mat;
		vec >>= 1;
		mat++;
	}
	return sum;
}

static inline void dpt_gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = dpt_gf2_times(mat, mat[n]);
}

/* Fills table[4 * 256]: the operator that runs a CRC register over len zero bytes (len a power of two). */
static inline void dpt_crc32c_zeros_table(uint32_t *table, size_t len)
{
	uint32_t even[32], odd[32];
	uint32_t row = 1;
	odd[0] = 0x82f63b78u; /* one zero bit */
	for (int n = 1; n < 32; n++) {
		odd[n] = row;
		row <<= 1;
	}
	dpt_gf2_square(even, odd); /* two zero bits */
	dpt_gf2_square(odd, even); /* four zero bits */
	const uint32_t *op = even;
	for (;;) {
		dpt_gf2_square(even, odd); /* 1, 4, 16 ... zero bytes */
		len >>= 1;
		op = even;
		if (len == 0)
			break;
		dpt_gf2_square(odd, even); /* 2, 8, 32 ... zero bytes */
		len >>= 1;
		op = odd;
		if (len == 0)
			break;
	}
	for (uint32_t n = 0; n < 256; n++) {
		table[n] = dpt_gf2_times(op, n);
		table[256 + n] = dpt_gf2_times(op, n << 8);
		table[512 + n] = dpt_gf2_times(op, n << 16);
		table[768 + n] = dpt_gf2_times(op, n << 24);
	}
}

static inline uint32_t dpt_crc32c_shift(const uint32_t *table, uint32_t crc)
{
	return table[crc & 0xff] ^ table[256 + ((crc >> 8) & 0xff)] ^ table[512 + ((crc >> 16) & 0xff)] ^ table[768 + (crc >> 24)];
}

/*
 * CRC-32C of n bytes at data continuing from crc (0 to start), the Swift code's convention.
 * long_zeros / short_zeros: dpt_crc32c_zeros_table(…, DPT_CRC32C_LONG) and (…, DPT_CRC32C_SHORT).
 */
__attribute__((target("sse4.2")))
static inline uint32_t dpt_crc32c_hw(uint32_t crc, const void *data, size_t n,
				     const uint32_t *long_zeros, const uint32_t *short_zeros)
{
	const unsigned char *p = (const unsigned char *)data;
	unsigned long long c0 = (unsigned int)~crc;
	unsigned long long w0, w1, w2;
	while (n >= 3 * DPT_CRC32C_LONG) {
		unsigned long long c1 = 0, c2 = 0;
		const unsigned char *end = p + DPT_CRC32C_LONG;
		do {
			memcpy(&w0, p, 8);
			memcpy(&w1, p + DPT_CRC32C_LONG, 8);
			memcpy(&w2, p + 2 * DPT_CRC32C_LONG, 8);
			c0 = __builtin_ia32_crc32di(c0, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
			p += 8;
		} while (p < end);
		c0 = dpt_crc32c_shift(long_zeros, (uint32_t)c0) ^ c1;
		c0 = dpt_crc32c_shift(long_zeros, (uint32_t)c0) ^ c2;
		p += 2 * DPT_CRC32C_LONG;
		n -= 3 * DPT_CRC32C_LONG;
	}
	while (n >= 3 * DPT_CRC32C_SHORT) {
		unsigned long long c1 = 0, c2 = 0;
		const unsigned char *end = p + DPT_CRC32C_SHORT;
		do {
			memcpy(&w0, p, 8);
			memcpy(&w1, p + DPT_CRC32C_SHORT, 8);
			memcpy(&w2, p + 2 * DPT_CRC32C_SHORT, 8);
			c0 = __builtin_ia32_crc32di(c0, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
			p += 8;
		} while (p < end);
		c0 = dpt_crc32c_shift(short_zeros, (uint32_t)c0) ^ c1;
		c0 = dpt_crc32c_shift(short_zeros, (uint32_t)c0) ^ c2;
		p += 2 * DPT_CRC32C_SHORT;
		n -= 3 * DPT_CRC32C_SHORT;
	}
	while (n >= 8) {
		memcpy(&w0, p, 8);
		c0 = __builtin_ia32_crc32di(c0, w0);
		p += 8;
		n -= 8;
	}
	unsigned int c32 = (unsigned int)c0;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}
#else
static inline int dpt_crc32c_hw_available(void) { return 0; }
static inline void dpt_crc32c_zeros_table(uint32_t *table, size_t len) { (void)table; (void)len; }
static inline uint32_t dpt_crc32c_hw(uint32_t crc, const void *data, size_t n,
				     const uint32_t *long_zeros, const uint32_t *short_zeros)
{
	(void)data; (void)n; (void)long_zeros; (void)short_zeros;
	return crc; /* never called: dpt_crc32c_hw_available() is 0 */
}
#endif

#endif /* DPT_CRC32C_H */
