/* AVX-512 kernels: 16-wide float tiles, and VNNI (vpdpbusd) for the int8 block dots. Chosen at
 * run time only where the CPU has AVX-512 F/BW/VL/VNNI. */
#include <immintrin.h>
#include <string.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"

#define T __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define ACT(act, t, stride) ((const void *)((const char *)(act) + (size_t)(t) * (stride)))

#define LOAD_F32(p, i) _mm512_loadu_ps((const float *)(p) + (i))
#define LOAD_F16(p, i) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)(p) + (i))))
#define LOAD_BF16(p, i)                                                                        \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                                     \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)(p) + (i)))), 16))
#define S_F32(p, i) (((const float *)(p))[i])
#define S_F16(p, i) shoal__fp16_to_f32(((const uint16_t *)(p))[i])
#define S_BF16(p, i) shoal__bf16_to_float(((const uint16_t *)(p))[i])

#define FLOAT_DOT(NAME, LOAD, SCALAR)                                                          \
    T static void NAME##_row(int cols, const void *w, const void *act, size_t as, int nt, float *out, \
                       size_t os) {                                                            \
        int t = 0;                                                                             \
        for (; t + 4 <= nt; t += 4) {                                                          \
            const float *x0 = ACT(act, t, as), *x1 = ACT(act, t + 1, as);                      \
            const float *x2 = ACT(act, t + 2, as), *x3 = ACT(act, t + 3, as);                  \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
            int i = 0;                                                                         \
            for (; i + 16 <= cols; i += 16) {                                                  \
                __m512 wv = LOAD(w, i);                                                        \
                a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x0 + i), a0);                         \
                a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x1 + i), a1);                         \
                a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x2 + i), a2);                         \
                a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x3 + i), a3);                         \
            }                                                                                  \
            float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1);                \
            float s2 = _mm512_reduce_add_ps(a2), s3 = _mm512_reduce_add_ps(a3);                \
            for (; i < cols; i++) {                                                            \
                float wi = SCALAR(w, i);                                                       \
                s0 += wi * x0[i], s1 += wi * x1[i], s2 += wi * x2[i], s3 += wi * x3[i];        \
            }                                                                                  \
            out[t * os] = s0, out[(t + 1) * os] = s1, out[(t + 2) * os] = s2,                  \
                     out[(t + 3) * os] = s3;                                                   \
        }                                                                                      \
        for (; t < nt; t++) {                                                                  \
            const float *x = ACT(act, t, as);                                                  \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
            int i = 0;                                                                         \
            for (; i + 64 <= cols; i += 64) {                                                  \
                a0 = _mm512_fmadd_ps(LOAD(w, i), _mm512_loadu_ps(x + i), a0);                  \
                a1 = _mm512_fmadd_ps(LOAD(w, i + 16), _mm512_loadu_ps(x + i + 16), a1);        \
                a2 = _mm512_fmadd_ps(LOAD(w, i + 32), _mm512_loadu_ps(x + i + 32), a2);        \
                a3 = _mm512_fmadd_ps(LOAD(w, i + 48), _mm512_loadu_ps(x + i + 48), a3);        \
            }                                                                                  \
            for (; i + 16 <= cols; i += 16) a0 = _mm512_fmadd_ps(LOAD(w, i), _mm512_loadu_ps(x + i), a0); \
            float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
            for (; i < cols; i++) s += SCALAR(w, i) * x[i];                                    \
            out[t * os] = s;                                                                   \
        }                                                                                      \
    }                                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        for (int r = 0; r < nr; r++) NAME##_row(cols, (const char *)w + (size_t)r * ws, act, as, nt, out + r, os); \
    }

FLOAT_DOT(dot_f32, LOAD_F32, S_F32)
FLOAT_DOT(dot_f16, LOAD_F16, S_F16)
FLOAT_DOT(dot_bf16, LOAD_BF16, S_BF16)

/* ---- quantized weights (Q8_0, Q4_0) x quantized activations (quant.h).
 *
 * Weight codes are made unsigned (Q4_0: its nibbles 0..15 as stored; Q8_0: q + 128 by flipping
 * the sign bit) so that vpdpbusd multiplies them with the signed activation bytes directly; the
 * offset is taken back once per block with the activation sums: sum((u - o) x) = sum(u x) -
 * o sum(x). One 512-bit vector holds two blocks (lanes 0-7: block b, 8-15: block b+1), so a
 * block pair costs one vpdpbusd, one int->float conversion and one FMA per (row, token).
 * Scales are prepared per group of 16 blocks: the 16 weight scales of a row are gathered and
 * converted at once, and tab[r][t] holds dw * dx for the group; a permute spreads the pair's two
 * products over the lanes. Tiles are R = 4 weight rows (1 for the rest) x T = nt tokens. */
#define GROUP 16
#ifndef DECODE_R
#define DECODE_R 4 /* rows per decode (nt = 1) tile: 4 or 1 */
#endif
#define CHUNK 256 /* blocks whose weight scales are converted ahead (4 rows: 4 KiB) */

static const int32_t pair_idx[GROUP / 2][16] __attribute__((aligned(64))) = {
#define PI(p) {2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, \
               2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1}
    PI(0), PI(1), PI(2), PI(3), PI(4), PI(5), PI(6), PI(7)
#undef PI
};

enum { FMT_Q8_0, FMT_Q4_0 };

/* Unsigned codes of blocks b (and b + 1 when two) of a row, in activation order. */
#define AI __attribute__((always_inline)) static inline
T AI __m512i w_pair(int fmt, const char *blk, int two) {
    if (fmt == FMT_Q4_0) { /* 18-byte blocks: f16 d, 16 bytes (lo nibbles: 0..15, hi: 16..31) */
        __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(blk + 2)));
        if (two) v = _mm512_mask_broadcast_i32x4(v, 0xFF00, _mm_loadu_si128((const __m128i *)(blk + 20)));
        v = _mm512_srlv_epi64(v, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
        return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    }
    /* Q8_0: 34-byte blocks: f16 d, 32 int8 */
    __m512i v = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2)));
    if (two) v = _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(blk + 36)), 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
}

T AI void qtile(int fmt, int R, int T_, int cols, const char *w, size_t ws, const char *act, size_t as,
                float *out, size_t os) {
    const int bs = fmt == FMT_Q4_0 ? 18 : 34;
    const float off = fmt == FMT_Q4_0 ? 8.0f : 128.0f;
    const int nb = cols / 32;
    const __m512i vidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(bs));
    shoal__act x[4];
    __m512 acc[4][4];
    float tab[4][4][GROUP] __attribute__((aligned(64)));
    /* Decode reads the weights once, from memory: the first touch of a row would be the scale
     * gathers below, which keep few misses in flight. So the tile prefetches the next R rows
     * (R * ws bytes on) while it works on its own: about one tile's time ahead of their use. */
    const char *pf = w + R * ws;
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++) {
        x[t] = shoal__act_view(act + (size_t)t * as, cols);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r][t] = _mm512_setzero_ps();
    }
    /* The weight scales of a chunk of columns first, as f32 (gathers are slow but independent
     * of each other here; inside the block loop their latency would stall it). */
    float dwf[4][CHUNK] __attribute__((aligned(64)));
    for (int c0 = 0; c0 < nb; c0 += CHUNK) {
        int c1 = nb - c0 < CHUNK ? nb : c0 + CHUNK;
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            for (int g = c0; g < c1; g += GROUP) {
                __mmask16 k = (__mmask16)((1u << (c1 - g < GROUP ? c1 - g : GROUP)) - 1);
                __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, vidx, w + r * ws + (size_t)g * bs, 1);
                _mm512_store_ps(dwf[r] + (g - c0), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw)));
            }
    for (int g = c0; g < c1; g += GROUP) {
        int m = c1 - g < GROUP ? c1 - g : GROUP;
        __mmask16 k = (__mmask16)((1u << m) - 1);
        __m512 dw[4], dx[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) dw[r] = _mm512_load_ps(dwf[r] + (g - c0));
#pragma GCC unroll 4
        for (int t = 0; t < T_; t++) {
            dx[t] = _mm512_maskz_loadu_ps(k, x[t].d + g);
            __m512 ds = _mm512_maskz_loadu_ps(k, x[t].ds + g);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                _mm512_store_ps(tab[r][t], _mm512_mul_ps(dw[r], dx[t]));
                acc[r][t] = _mm512_fnmadd_ps(_mm512_mul_ps(dw[r], _mm512_set1_ps(off)), ds, acc[r][t]);
            }
        }
        const char *wg = w + (size_t)g * bs;
        for (int p = 0; p < m / 2; p++) {
            __m512i wv[4];
            const __m512i idx = _mm512_load_si512(pair_idx[p]);
            /* the next tile's rows, in step with this tile's progress over its own */
#pragma GCC unroll 8
            for (int o = 0; o < R * 2 * bs + 64; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
            pf += R * 2 * bs;
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) wv[r] = w_pair(fmt, wg + r * ws + 2 * p * bs, 1);
#pragma GCC unroll 4
            for (int t = 0; t < T_; t++) {
                __m512i xv = _mm512_loadu_si512(x[t].qs + 32 * (g + 2 * p));
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xv));
                    acc[r][t] = _mm512_fmadd_ps(f, _mm512_permutexvar_ps(idx, _mm512_load_ps(tab[r][t])), acc[r][t]);
                }
            }
        }
        if (m & 1) { /* the last block alone: upper half of the activation vector is zero */
            int p = m / 2;
            __m512i wv[4];
            const __m512i idx = _mm512_load_si512(pair_idx[p]);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) wv[r] = w_pair(fmt, wg + r * ws + 2 * p * bs, 0);
#pragma GCC unroll 4
            for (int t = 0; t < T_; t++) {
                __m512i xv = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, x[t].qs + 32 * (g + 2 * p));
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xv));
                    acc[r][t] = _mm512_fmadd_ps(f, _mm512_permutexvar_ps(idx, _mm512_load_ps(tab[r][t])), acc[r][t]);
                }
            }
        }
    }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) out[r + t * os] = _mm512_reduce_add_ps(acc[r][t]);
}

#define QTILE(NAME, FMT, R, TT)                                                               \
    T static void NAME(int cols, const char *w, size_t ws, const char *act, size_t as, float *out, size_t os) { \
        qtile(FMT, R, TT, cols, w, ws, act, as, out, os);                                      \
    }
#define QTILES(F, FMT) \
    QTILE(F##_4x1, FMT, 4, 1) QTILE(F##_4x2, FMT, 4, 2) QTILE(F##_4x3, FMT, 4, 3) QTILE(F##_4x4, FMT, 4, 4) \
    QTILE(F##_1x1, FMT, 1, 1) QTILE(F##_1x2, FMT, 1, 2) QTILE(F##_1x3, FMT, 1, 3) QTILE(F##_1x4, FMT, 1, 4)
QTILES(q8_0, FMT_Q8_0)
QTILES(q4_0, FMT_Q4_0)

typedef void (*qtile_fn)(int, const char *, size_t, const char *, size_t, float *, size_t);
#define QDOT(NAME, F)                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        static const qtile_fn t4[4] = {F##_4x1, F##_4x2, F##_4x3, F##_4x4};                    \
        static const qtile_fn t1[4] = {F##_1x1, F##_1x2, F##_1x3, F##_1x4};                    \
        int r = 0;                                                                             \
        if (nt > 1 || DECODE_R == 4)                                                           \
            for (; r + 4 <= nr; r += 4) t4[nt - 1](cols, (const char *)w + r * ws, ws, act, as, out + r, os); \
        for (; r < nr; r++) t1[nt - 1](cols, (const char *)w + r * ws, ws, act, as, out + r, os); \
    }
QDOT(dot_q8_0, q8_0)
QDOT(dot_q4_0, q4_0)

/* ---- K-quants (Q4_K, Q6_K) x quantized activations: one row x T tokens, 64 elements (two
 * activation blocks) per 512-bit vector. The codes are unsigned (Q4_K q in 0..15, Q6_K q + 32
 * in 0..63) and go straight into vpdpbusd; per super-block the scales are decoded once per
 * row, multiplied by the activation scales once per token, and spread over the lanes with a
 * permute per 64 elements. Offsets come back from the activation sums: Q4_K's mins with ds
 * (per 32), Q6_K's 32 with dh (per 16, the scale blocks of Q6_K). */

/* Q4_K's 6-bit scales and mins of sub-blocks 0..7 (get_scale_min_k4 for all j at once, on
 * 32-bit words as ggml's SIMD code does) -> lanes 0..7 of sc (times d) and mn (times dmin). */
T AI void q4k_scales(const uint8_t *q, float d, float dmin, __m512 *sc, __m512 *mn) {
    uint32_t u[3];
    memcpy(u, q, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    uint32_t s_lo = u[0] & k1, s_hi = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    uint32_t m_lo = u[1] & k1, m_hi = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    __m128i v = _mm_setr_epi32((int)s_lo, (int)s_hi, (int)m_lo, (int)m_hi);
    *sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_move_epi64(v))), _mm512_set1_ps(d));
    *mn = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_srli_si128(v, 8))), _mm512_set1_ps(dmin));
}

T AI void ktile(int q6, int T_, int cols, const char *w, size_t ws, const char *act, size_t as, float *out,
                size_t os) {
    const int nsb = cols / 256;
    const int bsz = q6 ? (int)sizeof(shoal__block_q6_k) : (int)sizeof(shoal__block_q4_k);
    const char *pf = w + ws; /* the next row, in step (as the Q8_0/Q4_0 tiles) */
    shoal__act x[4];
    __m512 acc[4];
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* Q6_K: sub-block j (16 elements) reads activation block j / 2; lanes of chunk c: 4 per sub-block */
    const __m512i half_idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++) {
        x[t] = shoal__act_view(act + (size_t)t * as, cols);
        acc[t] = _mm512_setzero_ps();
    }
    for (int sb = 0; sb < nsb; sb++) {
#pragma GCC unroll 4
        for (int o = 0; o < bsz + 64; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        pf += bsz;
        __m512i v[4]; /* the super-block's 256 codes, 64 per vector, in element order */
        __m512 sc16;  /* Q4_K: d * sc_j in lanes 0..7, Q6_K: d * sc_j, j = 0..15 */
        __m512 mn16 = _mm512_setzero_ps();
        if (!q6) {
            const shoal__block_q4_k *b = (const shoal__block_q4_k *)w + sb;
            q4k_scales(b->scales, _cvtsh_ss(b->d), _cvtsh_ss(b->dmin), &sc16, &mn16);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) { /* 32 bytes: low nibbles are sub-block 2c, high 2c + 1 */
                __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
                __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                v[c] = _mm512_and_si512(z, m0f);
            }
        } else {
            const shoal__block_q6_k *b = (const shoal__block_q6_k *)w + sb;
            sc16 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales))),
                                 _mm512_set1_ps(_cvtsh_ss(b->d)));
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) { /* 128 elements: ql[64 h .. +64], qh[32 h .. +32] */
                __m512i a = _mm512_loadu_si512(b->ql + 64 * h);
                __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
                __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                v[2 * h] = _mm512_or_si512(_mm512_and_si512(a, m0f), _mm512_and_si512(_mm512_slli_epi16(hh, 4), m30));
                v[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), m0f), _mm512_and_si512(hh, m30));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T_; t++) {
            const int b0 = 8 * sb; /* first activation block of the super-block */
            __m512 dx = _mm512_maskz_loadu_ps(0xFF, x[t].d + b0);
            __m512 s; /* per-lane group scale (d * sc * dx) of the super-block, before spreading */
            if (!q6) {
                s = _mm512_mul_ps(sc16, dx);
                acc[t] = _mm512_fnmadd_ps(mn16, _mm512_maskz_loadu_ps(0xFF, x[t].ds + b0), acc[t]);
            } else {
                s = _mm512_mul_ps(sc16, _mm512_permutexvar_ps(half_idx, dx));
                acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(sc16, _mm512_set1_ps(32.0f)), _mm512_loadu_ps(x[t].dh + 2 * b0), acc[t]);
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i xv = _mm512_loadu_si512(x[t].qs + 32 * (b0 + 2 * c));
                __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), v[c], xv));
                __m512i idx = q6 ? _mm512_add_epi32(_mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2), _mm512_set1_epi32(4 * c))
                                 : _mm512_load_si512(pair_idx[c]);
                acc[t] = _mm512_fmadd_ps(f, _mm512_permutexvar_ps(idx, s), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++) out[t * os] = _mm512_reduce_add_ps(acc[t]);
}

#define KTILE(NAME, Q6, TT)                                                                    \
    T static void NAME(int cols, const char *w, size_t ws, const char *act, size_t as, float *out, size_t os) { \
        ktile(Q6, TT, cols, w, ws, act, as, out, os);                                          \
    }
KTILE(q4k_1, 0, 1) KTILE(q4k_2, 0, 2) KTILE(q4k_3, 0, 3) KTILE(q4k_4, 0, 4)
KTILE(q6k_1, 1, 1) KTILE(q6k_2, 1, 2) KTILE(q6k_3, 1, 3) KTILE(q6k_4, 1, 4)

typedef void (*ktile_fn)(int, const char *, size_t, const char *, size_t, float *, size_t);
#define KDOT(NAME, F)                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        static const ktile_fn tt[4] = {F##_1, F##_2, F##_3, F##_4};                            \
        for (int r = 0; r < nr; r++) tt[nt - 1](cols, (const char *)w + r * ws, ws, act, as, out + r, os); \
    }
KDOT(dot_q4_k, q4k)
KDOT(dot_q6_k, q6k)

/* Attention's per-position helpers; the tail is one masked step (head dims below 16 are common
 * in small models, where a scalar tail was the whole loop). */
T static float dot1(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(s0);
}

T static void axpy(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}

/* exp as Cephes expf (range reduction by ln 2 in two parts, degree-5 polynomial, about 1 ulp),
 * 2^n applied with vscalefps (overflow to inf and underflow to 0 as expf). */
T static inline __m512 exp16(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

T static void silu_mul(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), _mm512_loadu_ps(u + i)));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), _mm512_maskz_loadu_ps(k, u + i)));
    }
}

const shoal__cpu_kernels shoal__kernels_avx512 = {
    .isa = "avx512",
    .dot = {[SHOAL_WTYPE_F32] = dot_f32, [SHOAL_WTYPE_F16] = dot_f16, [SHOAL_WTYPE_BF16] = dot_bf16,
            [SHOAL_WTYPE_Q8_0] = dot_q8_0, [SHOAL_WTYPE_Q4_0] = dot_q4_0, [SHOAL_WTYPE_Q4_K] = dot_q4_k,
            [SHOAL_WTYPE_Q6_K] = dot_q6_k},
    .quantize_act = NULL, /* the AVX2 one is as fast for 32-element blocks */
    .dot_f32 = dot1,
    .axpy = axpy,
    .silu_mul = silu_mul,
};
