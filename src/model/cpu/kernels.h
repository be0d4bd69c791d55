/* CPU kernel sets: one table per instruction set (scalar, avx2, avx512), picked at run time from
 * the CPU's features (or the cpu_isa setting). Every table entry computes the same function as
 * the scalar one up to float rounding; tests/model/test_kernels.c checks that.
 *
 * A "dot tile" multiplies one weight row with nt (1..SHOAL__NT) activation rows:
 *   out[t * out_stride] = sum_i w[i] * act_t[i]   for t < nt
 * where act_t is (const char *)act + t * act_stride and is either f32 [cols] (weight dtypes
 * F32/F16/BF16) or shoal__block_q8 [cols/32] (quantized dtypes, see quant.h). Reusing each
 * loaded weight block for nt tokens is what makes prefill compute-bound instead of
 * memory-bound. */
#ifndef SHOAL_MODEL_CPU_KERNELS_H
#define SHOAL_MODEL_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/dtype.h"
#include "model/quant.h"

#define SHOAL__NT 4
#define SHOAL__NDTYPE 31

typedef void (*shoal__dot_fn)(int cols, const void *w, const void *act, size_t act_stride, int nt,
                              float *out, size_t out_stride);

typedef struct shoal__cpu_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    shoal__dot_fn dot[SHOAL__NDTYPE]; /* by dtype; NULL: not computable */
    void (*quantize_act)(const float *x, shoal__block_q8 *y, int n); /* n % 32 == 0 */
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n); /* y += a * x */
} shoal__cpu_kernels;

/* 1 when dtype's activations are shoal__block_q8 rows. */
static inline int shoal__act_is_q8(int dtype) { return shoal__dtype_quantized(dtype); }

extern const shoal__cpu_kernels shoal__kernels_scalar;
extern const shoal__cpu_kernels shoal__kernels_avx2;   /* AVX2 + FMA + F16C */
extern const shoal__cpu_kernels shoal__kernels_avx512; /* AVX-512 F/BW/VL/VNNI */

/* By name ("scalar", "avx2", "avx512"), or the best this CPU runs for "auto"/NULL.
 * NULL when the name is unknown or the CPU lacks the features. */
const shoal__cpu_kernels *shoal__cpu_kernels_pick(const char *isa);

#endif
