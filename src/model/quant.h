/* Block quantization formats (ggml layouts) and their reference conversions: used by the CPU
 * kernels (scalar paths, activations), the embedding lookup and the GGUF writer.
 *
 * Activations are quantized to blocks of 32 int8 with an f32 scale before a product with a
 * quantized weight, as llama.cpp does with Q8_0 / Q8_K: the dot product of a block is then an
 * integer sum times two scales. An activation row of n elements (nb = n/32 blocks) is stored
 * structure-of-arrays, SHOAL__ACT_BYTES(n) bytes, so SIMD kernels load the int8 values of
 * neighbouring blocks and their scales with contiguous loads:
 *
 *   int8_t qs[nb][32]   values; element i of the row is qs[i/32][i%32]
 *   float  d[nb]        scale: x[i] ~ d[i/32] * qs[i/32][i%32]
 *   float  ds[nb]       d[b] * sum of qs[b][0..31]
 *   float  dh[nb][2]    d[b] * sum of qs[b][0..15], d[b] * sum of qs[b][16..31]
 *
 * The sums let kernels multiply unsigned weight codes (Q4_0's 0..15, Q8_0 + 128, K-quants' q)
 * with signed activations (VNNI vpdpbusd, maddubs) and subtract the offset once per block:
 * sum((q - o) * x) = sum(q * x) - o * sum(x). The row start is 4-byte aligned (the backend
 * aligns rows to 64 bytes). */
#ifndef SHOAL_MODEL_QUANT_H
#define SHOAL_MODEL_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define SHOAL__QK 32   /* Q8_0 / Q4_0 block */
#define SHOAL__QK_K 256 /* K-quant super-block */

typedef struct { uint16_t d; int8_t qs[32]; } shoal__block_q8_0;   /* 34 bytes */
typedef struct { uint16_t d; uint8_t qs[16]; } shoal__block_q4_0;  /* 18 bytes: lo nibbles are 0..15, hi 16..31 */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } shoal__block_q4_k; /* 144 */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } shoal__block_q6_k; /* 210 */

/* Activation row layout (see the top of this file); n % 32 == 0. */
#define SHOAL__ACT_BYTES(n) ((size_t)(n) / 32 * 48)
typedef struct shoal__act {
    int8_t *qs; /* [nb][32] */
    float *d, *ds, *dh; /* [nb], [nb], [nb][2] */
} shoal__act;
static inline shoal__act shoal__act_view(const void *row, int n) {
    char *p = (char *)row;
    size_t nb = (size_t)n / 32;
    shoal__act a = {(int8_t *)p, (float *)(p + 32 * nb), (float *)(p + 36 * nb), (float *)(p + 40 * nb)};
    return a;
}

_Static_assert(sizeof(shoal__block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(shoal__block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(shoal__block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(shoal__block_q6_k) == 210, "q6_k layout");

/* x [n] (n a multiple of 32) -> one activation row of SHOAL__ACT_BYTES(n) bytes at row. */
void shoal__quantize_act(const float *x, void *row, int n);
void shoal__quantize_q8_0(const float *x, shoal__block_q8_0 *y, int n);
void shoal__quantize_q4_0(const float *x, shoal__block_q4_0 *y, int n);
/* Simple (not error-minimising) K-quant encoders, for tests of the kernels. n % 256 == 0. */
void shoal__quantize_q4_k(const float *x, shoal__block_q4_k *y, int n);
void shoal__quantize_q6_k(const float *x, shoal__block_q6_k *y, int n);

/* One row of n elements of dtype (any computable dtype) -> f32. */
void shoal__dequantize_row(int dtype, const void *row, float *y, int n);
/* f32 -> a row of dtype; returns bytes written (0 for a dtype without an encoder). */
size_t shoal__quantize_row(int dtype, const float *x, void *row, int n);

#endif
