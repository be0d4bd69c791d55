/* CPU kernel sets: one table per instruction set (scalar, avx2, avx512), picked at run time from
 * the CPU's features (or the cpu_isa setting). Every table entry computes the same function as
 * the scalar one up to float rounding; tests/model/test_kernels.c checks that.
 *
 * A "dot tile" multiplies nr weight rows (nr >= 1, w_stride bytes apart) with nt
 * (1..SHOAL__NT) activation rows (act_stride bytes apart):
 *   out[r + t * out_stride] = sum_i w_r[i] * act_t[i]   for r < nr, t < nt
 * where act_t is f32 [cols] (weight dtypes F32/F16/BF16) or an activation row of
 * SHOAL__ACT_BYTES(cols) bytes (quantized dtypes: see quant.h for its layout). A kernel walks
 * the rows in register tiles of its own choosing (the AVX-512 quantized kernels: 4 weight rows
 * x nt tokens, each weight block loaded and unpacked once for the nt tokens, each activation
 * block once for the 4 rows), which is what makes prefill compute-bound instead of
 * memory-bound, and lets decode (nt = 1) share the activation loads over 4 rows.
 *
 * A "gemm" (optional, per dtype; the AMX set has them for Q8_0/Q4_0) computes the same as a
 * dot tile for any number n >= 1 of tokens at once, blocking rows and tokens itself; the
 * backend uses it for prefill (n >= SHOAL__GEMM_MIN) and hands it gemm_scratch(cols, n) bytes
 * of 64-byte aligned scratch memory of its own thread. */
#ifndef SHOAL_MODEL_CPU_KERNELS_H
#define SHOAL_MODEL_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/dtype.h"
#include "model/quant.h"

#define SHOAL__NT 4
#define SHOAL__GEMM_MIN 16
#define SHOAL__NDTYPE 31

typedef void (*shoal__dot_fn)(int cols, const void *w, size_t w_stride, int nr, const void *act,
                              size_t act_stride, int nt, float *out, size_t out_stride);

typedef void (*shoal__gemm_fn)(int cols, const void *w, size_t w_stride, int nr, const void *act,
                               size_t act_stride, int n, float *out, size_t out_stride, void *scratch);

typedef struct shoal__cpu_kernels {
    const char *isa; /* "scalar", "avx2", "avx512", "amx" */
    shoal__dot_fn dot[SHOAL__NDTYPE]; /* by dtype; NULL: not computable (or: the lower set's) */
    shoal__gemm_fn gemm[SHOAL__NDTYPE]; /* by dtype; NULL: dot tiles only */
    size_t (*gemm_scratch)(int cols, int n);
    void (*quantize_act)(const float *x, void *row, int n); /* n % 32 == 0; row: see quant.h */
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n); /* y += a * x */
    void (*silu_mul)(float *g, const float *u, size_t n);   /* g = g / (1 + exp(-g)) * u */
} shoal__cpu_kernels;

/* 1 when dtype's activations are quantized rows (quant.h), 0 when f32. */
static inline int shoal__act_is_q8(int dtype) { return shoal__dtype_quantized(dtype); }

extern const shoal__cpu_kernels shoal__kernels_scalar;
extern const shoal__cpu_kernels shoal__kernels_avx2;   /* AVX2 + FMA + F16C */
extern const shoal__cpu_kernels shoal__kernels_avx512; /* AVX-512 F/BW/VL/VNNI */
extern const shoal__cpu_kernels shoal__kernels_amx;    /* AVX-512 + AMX-TILE/INT8: gemm only */

/* By name ("scalar", "avx2", "avx512", "amx"), or the best this CPU runs for "auto"/NULL.
 * NULL when the name is unknown or the CPU lacks the features (for AMX: or the kernel does not
 * grant this process the tile state). A set's NULL entries are to be taken from the sets
 * below it: shoal__cpu_kernels_chain. */
const shoal__cpu_kernels *shoal__cpu_kernels_pick(const char *isa);

/* The sets to take entries from, best first, for the set k: k itself, then the lower ones it
 * builds on (amx -> avx512 -> avx2 -> scalar). Returns the count (<= 4). */
int shoal__cpu_kernels_chain(const shoal__cpu_kernels *k, const shoal__cpu_kernels *chain[4]);

#endif
