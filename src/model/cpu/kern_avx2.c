/* AVX2 + FMA + F16C kernels (compiled with target attributes, chosen at run time). Quantized
 * products follow llama.cpp's trick: |w| (unsigned) times sign(w)*x (signed) with maddubs, so
 * an int8 x int8 block dot is maddubs + madd. */
#include <immintrin.h>
#include <string.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"

#define T __attribute__((target("avx2,fma,f16c")))
#define ACT(act, t, stride) ((const void *)((const char *)(act) + (size_t)(t) * (stride)))

T static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Loads 8 weights of the given kind as f32. */
#define LOAD_F32(p, i) _mm256_loadu_ps((const float *)(p) + (i))
#define LOAD_F16(p, i) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(p) + (i))))
#define LOAD_BF16(p, i)                                                                        \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                                     \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)(p) + (i)))), 16))

/* Float-weight tile: cols % 8 handled by a scalar tail. */
#define FLOAT_DOT(NAME, LOAD, SCALAR)                                                          \
    T static void NAME##_row(int cols, const void *w, const void *act, size_t as, int nt, float *out, \
                       size_t os) {                                                            \
        int t = 0;                                                                             \
        for (; t + 4 <= nt; t += 4) {                                                          \
            const float *x0 = ACT(act, t, as), *x1 = ACT(act, t + 1, as);                      \
            const float *x2 = ACT(act, t + 2, as), *x3 = ACT(act, t + 3, as);                  \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
            int i = 0;                                                                         \
            for (; i + 8 <= cols; i += 8) {                                                    \
                __m256 wv = LOAD(w, i);                                                        \
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);                         \
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);                         \
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);                         \
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);                         \
            }                                                                                  \
            float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);                  \
            for (; i < cols; i++) {                                                            \
                float wi = SCALAR(w, i);                                                       \
                s0 += wi * x0[i], s1 += wi * x1[i], s2 += wi * x2[i], s3 += wi * x3[i];        \
            }                                                                                  \
            out[t * os] = s0, out[(t + 1) * os] = s1, out[(t + 2) * os] = s2,                  \
                     out[(t + 3) * os] = s3;                                                   \
        }                                                                                      \
        for (; t < nt; t++) {                                                                  \
            const float *x = ACT(act, t, as);                                                  \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
            int i = 0;                                                                         \
            for (; i + 32 <= cols; i += 32) {                                                  \
                a0 = _mm256_fmadd_ps(LOAD(w, i), _mm256_loadu_ps(x + i), a0);                  \
                a1 = _mm256_fmadd_ps(LOAD(w, i + 8), _mm256_loadu_ps(x + i + 8), a1);          \
                a2 = _mm256_fmadd_ps(LOAD(w, i + 16), _mm256_loadu_ps(x + i + 16), a2);        \
                a3 = _mm256_fmadd_ps(LOAD(w, i + 24), _mm256_loadu_ps(x + i + 24), a3);        \
            }                                                                                  \
            for (; i + 8 <= cols; i += 8) a0 = _mm256_fmadd_ps(LOAD(w, i), _mm256_loadu_ps(x + i), a0); \
            float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));        \
            for (; i < cols; i++) s += SCALAR(w, i) * x[i];                                    \
            out[t * os] = s;                                                                   \
        }                                                                                      \
    }                                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        for (int r = 0; r < nr; r++) NAME##_row(cols, (const char *)w + (size_t)r * ws, act, as, nt, out + r, os); \
    }

#define S_F32(p, i) (((const float *)(p))[i])
#define S_F16(p, i) shoal__fp16_to_f32(((const uint16_t *)(p))[i])
#define S_BF16(p, i) shoal__bf16_to_float(((const uint16_t *)(p))[i])
FLOAT_DOT(dot_f32, LOAD_F32, S_F32)
FLOAT_DOT(dot_f16, LOAD_F16, S_F16)
FLOAT_DOT(dot_bf16, LOAD_BF16, S_BF16)

/* int8 block dot -> 8 int32 lanes as f32: sum(w * x) with w, x signed int8. */
T static inline __m256 i8dot(__m256i w, __m256i x) {
    __m256i ax = _mm256_sign_epi8(w, w);
    __m256i sy = _mm256_sign_epi8(x, w);
    __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

T static inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0xF));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0xF));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

/* One weight row x nt tokens; two blocks per step into separate accumulators so that decode
 * (nt = 1) is not bound by the latency of one FMA chain. */
#define QUANT_DOT(NAME, BLOCK, UNPACK)                                                         \
    T static void NAME##_row(int cols, const void *w, const void *act, size_t as, int nt, float *out, \
                             size_t os) {                                                      \
        const BLOCK *wb = w;                                                                   \
        int nb = cols / 32;                                                                    \
        for (int t = 0; t < nt; t += 4) {                                                      \
            int k = nt - t < 4 ? nt - t : 4;                                                   \
            shoal__act x[4];                                                                   \
            __m256 a0[4], a1[4];                                                               \
            for (int j = 0; j < 4; j++) {                                                      \
                x[j] = shoal__act_view(ACT(act, t + (j < k ? j : 0), as), cols);               \
                a0[j] = a1[j] = _mm256_setzero_ps();                                           \
            }                                                                                  \
            int b = 0;                                                                         \
            for (; b + 2 <= nb; b += 2) {                                                      \
                __m256i q0 = UNPACK(wb[b].qs), q1 = UNPACK(wb[b + 1].qs);                      \
                float d0 = _cvtsh_ss(wb[b].d), d1 = _cvtsh_ss(wb[b + 1].d);                    \
                for (int j = 0; j < k; j++) {                                                  \
                    __m256 p0 = i8dot(q0, _mm256_loadu_si256((const __m256i *)(x[j].qs + 32 * b))); \
                    __m256 p1 = i8dot(q1, _mm256_loadu_si256((const __m256i *)(x[j].qs + 32 * b + 32))); \
                    a0[j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x[j].d[b]), p0, a0[j]);        \
                    a1[j] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * x[j].d[b + 1]), p1, a1[j]);    \
                }                                                                              \
            }                                                                                  \
            for (; b < nb; b++) {                                                              \
                __m256i q0 = UNPACK(wb[b].qs);                                                 \
                float d0 = _cvtsh_ss(wb[b].d);                                                 \
                for (int j = 0; j < k; j++) {                                                  \
                    __m256 p0 = i8dot(q0, _mm256_loadu_si256((const __m256i *)(x[j].qs + 32 * b))); \
                    a0[j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x[j].d[b]), p0, a0[j]);        \
                }                                                                              \
            }                                                                                  \
            for (int j = 0; j < k; j++) out[(t + j) * os] = hsum(_mm256_add_ps(a0[j], a1[j])); \
        }                                                                                      \
    }                                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        for (int r = 0; r < nr; r++) NAME##_row(cols, (const char *)w + (size_t)r * ws, act, as, nt, out + r, os); \
    }

#define UNPACK_Q8(qs) _mm256_loadu_si256((const __m256i *)(qs))
QUANT_DOT(dot_q8_0, shoal__block_q8_0, UNPACK_Q8)
QUANT_DOT(dot_q4_0, shoal__block_q4_0, unpack_q4)

/* As shoal__quantize_act (same rounding: nearest even), 32 floats per step. */
T static void quantize_act(const float *x, void *row, int n) {
    shoal__act a = shoal__act_view(row, n);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 32; b++, x += 32) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i[4];
        for (int j = 0; j < 4; j++)
            i[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* pack 32 int32 -> 32 int8 in order: packs interleave 128-bit lanes, permute fixes it */
        __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(a.qs + 32 * b), p);
        /* half sums: elements 0..15 are i[0], i[1]; 16..31 are i[2], i[3] (|q| <= 127: exact) */
        __m256i h = _mm256_hadd_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        h = _mm256_hadd_epi32(h, h); /* lane 0: [s0a s1a s0a s1a], lane 1: [s0b s1b ...] */
        __m128i hs = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        int s0 = _mm_cvtsi128_si32(hs), s1 = _mm_extract_epi32(hs, 1);
        a.d[b] = d;
        a.ds[b] = d * (float)(s0 + s1);
        a.dh[2 * b] = d * (float)s0;
        a.dh[2 * b + 1] = d * (float)s1;
    }
}

T static float dot1(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

T static void axpy(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* ---- K-quants: one row x T tokens, 32 codes (one activation block) per 256-bit maddubs. The
 * codes are unsigned (Q4_K q <= 15, Q6_K q + 32 <= 63: maddubs cannot saturate) and the
 * offsets come back from the activation sums, as in kern_avx512.c. */
#define AI __attribute__((always_inline)) static inline

T AI __m256 mad32(__m256i u, const int8_t *x) { /* 8 int32 partial sums of u * x, as f32 */
    __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)x));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

T AI void ktile(int q6, int T_, int cols, const char *w, const char *act, size_t as, float *out, size_t os) {
    const int nsb = cols / 256;
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    shoal__act x[4];
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++) {
        x[t] = shoal__act_view(act + (size_t)t * as, cols);
        acc[t] = _mm256_setzero_ps();
    }
    for (int sb = 0; sb < nsb; sb++) {
        const int b0 = 8 * sb;
        __m256i v[8]; /* the super-block's codes, one activation block each */
        __m256 sc_lo, sc_hi = _mm256_setzero_ps(), mn = _mm256_setzero_ps(); /* Q4_K: 8 scales; Q6_K: 16 */
        if (!q6) {
            const shoal__block_q4_k *b = (const shoal__block_q4_k *)w + sb;
            uint32_t u[3];
            memcpy(u, b->scales, 12);
            const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
            uint32_t s_lo = u[0] & k1, s_hi = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
            uint32_t m_lo = u[1] & k1, m_hi = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
            sc_lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)s_lo, (int)s_hi, 0, 0))),
                                  _mm256_set1_ps(_cvtsh_ss(b->d)));
            mn = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)m_lo, (int)m_hi, 0, 0))),
                               _mm256_set1_ps(_cvtsh_ss(b->dmin)));
            for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
                v[2 * c] = _mm256_and_si256(q, m0f);
                v[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m0f);
            }
        } else {
            const shoal__block_q6_k *b = (const shoal__block_q6_k *)w + sb;
            __m128i sc = _mm_loadu_si128((const __m128i *)b->scales);
            __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));
            sc_lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), d);
            sc_hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), d);
            for (int h = 0; h < 2; h++) {
                __m256i a0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
                __m256i a1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
                __m256i hh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
                v[4 * h] = _mm256_or_si256(_mm256_and_si256(a0, m0f), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30));
                v[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(a1, m0f), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30));
                v[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a0, 4), m0f), _mm256_and_si256(hh, m30));
                v[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a1, 4), m0f),
                                               _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T_; t++) {
            __m256 dx = _mm256_loadu_ps(x[t].d + b0);
            if (!q6) {
                __m256 s = _mm256_mul_ps(sc_lo, dx); /* d sc_j dx_j, j = 0..7 */
                acc[t] = _mm256_fnmadd_ps(mn, _mm256_loadu_ps(x[t].ds + b0), acc[t]);
                for (int j = 0; j < 8; j++)
                    acc[t] = _mm256_fmadd_ps(mad32(v[j], x[t].qs + 32 * (b0 + j)),
                                             _mm256_permutevar8x32_ps(s, _mm256_set1_epi32(j)), acc[t]);
            } else {
                /* sub-block j (16 codes) reads activation block j / 2 */
                __m256 s_lo = _mm256_mul_ps(sc_lo, _mm256_permutevar8x32_ps(dx, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)));
                __m256 s_hi = _mm256_mul_ps(sc_hi, _mm256_permutevar8x32_ps(dx, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7)));
                acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(sc_lo, _mm256_set1_ps(32.0f)), _mm256_loadu_ps(x[t].dh + 2 * b0), acc[t]);
                acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(sc_hi, _mm256_set1_ps(32.0f)), _mm256_loadu_ps(x[t].dh + 2 * b0 + 8), acc[t]);
                for (int k = 0; k < 8; k++) { /* block k: lanes 0-3 sub-block 2k, 4-7 sub-block 2k + 1 */
                    const __m256i idx = _mm256_setr_epi32(2 * (k & 3), 2 * (k & 3), 2 * (k & 3), 2 * (k & 3),
                                                          2 * (k & 3) + 1, 2 * (k & 3) + 1, 2 * (k & 3) + 1, 2 * (k & 3) + 1);
                    acc[t] = _mm256_fmadd_ps(mad32(v[k], x[t].qs + 32 * (b0 + k)),
                                             _mm256_permutevar8x32_ps(k < 4 ? s_lo : s_hi, idx), acc[t]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T_; t++) out[t * os] = hsum(acc[t]);
}

#define KTILE(NAME, Q6, TT)                                                                    \
    T static void NAME(int cols, const char *w, const char *act, size_t as, float *out, size_t os) { \
        ktile(Q6, TT, cols, w, act, as, out, os);                                              \
    }
KTILE(q4k_1, 0, 1) KTILE(q4k_2, 0, 2) KTILE(q4k_3, 0, 3) KTILE(q4k_4, 0, 4)
KTILE(q6k_1, 1, 1) KTILE(q6k_2, 1, 2) KTILE(q6k_3, 1, 3) KTILE(q6k_4, 1, 4)

typedef void (*ktile_fn)(int, const char *, const char *, size_t, float *, size_t);
#define KDOT(NAME, F)                                                                          \
    T static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                       float *out, size_t os) {                                                \
        static const ktile_fn tt[4] = {F##_1, F##_2, F##_3, F##_4};                            \
        for (int r = 0; r < nr; r++) tt[nt - 1](cols, (const char *)w + r * ws, act, as, out + r, os); \
    }
KDOT(dot_q4_k, q4k)
KDOT(dot_q6_k, q6k)

extern const shoal__cpu_kernels shoal__kernels_scalar;

const shoal__cpu_kernels shoal__kernels_avx2 = {
    .isa = "avx2",
    .dot = {[SHOAL_WTYPE_F32] = dot_f32, [SHOAL_WTYPE_F16] = dot_f16, [SHOAL_WTYPE_BF16] = dot_bf16,
            [SHOAL_WTYPE_Q8_0] = dot_q8_0, [SHOAL_WTYPE_Q4_0] = dot_q4_0, [SHOAL_WTYPE_Q4_K] = dot_q4_k,
            [SHOAL_WTYPE_Q6_K] = dot_q6_k},
    .quantize_act = quantize_act,
    .dot_f32 = dot1,
    .axpy = axpy,
};
