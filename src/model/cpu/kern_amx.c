/* AMX-INT8 matrix-matrix products for prefill (Q8_0, Q4_0 weights x quantized activations):
 * the AVX-512 kernel set plus `gemm` entries, chosen at run time where the CPU has AMX-TILE and
 * AMX-INT8 and the kernel grants the tile state (arch_prctl ARCH_REQ_XCOMP_PERM, kernels.c).
 *
 * One tdpbssd multiplies a tile of 16 weight rows x 32 int8 (one block of each row) with
 * 16 tokens x 32 int8 (the same block of 16 activation rows), giving the 16 x 16 integer block
 * sums; they are stored, converted and scaled by dw[row] * dx[token] of that block with
 * AVX-512 and summed in f32, exactly as the dot tiles do per block (only the order of the f32
 * additions differs). Weights are the A operand, read in place (Q8_0: 32 int8 at a fixed
 * offset in each row, rows ws bytes apart) or unpacked once per 16-row tile (Q4_0: q - 8 as
 * int8); activations are the B operand in the VNNI layout, packed once per call for all its
 * rows ([token tile][block] of 8 rows x 16 tokens x 4 bytes). Rows past the last whole tile of
 * 16 go through the AVX-512 dot tiles. */
#include <immintrin.h>
#include <string.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"

#define TA __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* Scratch of one call (64-byte aligned pieces):
 *   B    [ntt][nb][8][16][4] int8   activations, VNNI layout, zero past the last token
 *   dxt  [ntt][nb][16] f32          activation scales per token tile and block
 *   dw   [16][nb] f32               weight scales of the current row tile
 *   u    [16][cols] int8            Q4_0 only: the current row tile's q - 8
 *   c    [2][2][16][16] int32       tile results of two steps */
#define ALIGN64(x) (((x) + 63) / 64 * 64)
static size_t gemm_scratch(int cols, int n) {
    size_t nb = (size_t)cols / 32, ntt = ((size_t)n + 15) / 16;
    return ALIGN64(ntt * nb * 512) + ALIGN64(ntt * nb * 64) + ALIGN64(16 * nb * 4) + ALIGN64(16 * (size_t)cols) + 4096;
}

enum { FMT_Q8_0, FMT_Q4_0 };

TA __attribute__((always_inline)) static inline void gemm(int fmt, int cols, const void *w, size_t ws, int nr,
                                                          const void *act, size_t as, int n, float *out, size_t os,
                                                          void *scratch) {
    const int bs = fmt == FMT_Q4_0 ? 18 : 34;
    const int nb = cols / 32, ntt = (n + 15) / 16;
    char *p = scratch;
    int8_t *B = (int8_t *)p;
    p += ALIGN64((size_t)ntt * nb * 512);
    float *dxt = (float *)p;
    p += ALIGN64((size_t)ntt * nb * 64);
    float *dw = (float *)p;
    p += ALIGN64((size_t)16 * nb * 4);
    int8_t *u = (int8_t *)p;
    p += ALIGN64((size_t)16 * cols);
    int32_t *cb = (int32_t *)p;

    /* pack the activations: B[tt][b] row i, column t = bytes 4i..4i+3 of token t's block b */
    for (int tt = 0; tt < ntt; tt++)
        for (int t = 0; t < 16; t++) {
            int tok = tt * 16 + t;
            int32_t *bt = (int32_t *)(B + (size_t)tt * nb * 512) + t;
            float *dt = dxt + (size_t)tt * nb * 16 + t;
            if (tok < n) {
                shoal__act x = shoal__act_view((const char *)act + (size_t)tok * as, cols);
                const int32_t *q = (const int32_t *)x.qs;
                for (int b = 0; b < nb; b++, bt += 128, dt += 16, q += 8) {
                    for (int i = 0; i < 8; i++) bt[16 * i] = q[i];
                    *dt = x.d[b];
                }
            } else {
                for (int b = 0; b < nb; b++, bt += 128, dt += 16) {
                    for (int i = 0; i < 8; i++) bt[16 * i] = 0;
                    *dt = 0;
                }
            }
        }

    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 2; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;     /* C (and 6, 7) */
    for (int i = 6; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    for (int i = 2; i < 4; i++) cfg.rows[i] = 16, cfg.colsb[i] = 32;     /* A: weights */
    for (int i = 4; i < 6; i++) cfg.rows[i] = 8, cfg.colsb[i] = 64;      /* B: activations */
    _tile_loadconfig(&cfg);

    int r0 = 0;
    for (; r0 + 16 <= nr; r0 += 16) {
        const char *wr = (const char *)w + (size_t)r0 * ws;
        const __m512i vidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                _mm512_set1_epi32(bs));
        for (int r = 0; r < 16; r++) {
            const char *row = wr + (size_t)r * ws;
            for (int b = 0; b < nb; b += 16) {
                __mmask16 k = (__mmask16)((1u << (nb - b < 16 ? nb - b : 16)) - 1);
                __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, vidx, row + (size_t)b * bs, 1);
                _mm512_mask_storeu_ps(dw + r * nb + b, k, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw)));
            }
        }
        const char *abase;
        size_t astride;
        if (fmt == FMT_Q4_0) {
            const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
            for (int r = 0; r < 16; r++) {
                const char *row = wr + (size_t)r * ws;
                for (int b = 0; b < nb; b++) {
                    __m128i q = _mm_loadu_si128((const __m128i *)(row + (size_t)b * 18 + 2));
                    __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), eight);
                    __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight);
                    _mm256_store_si256((__m256i *)(u + (size_t)r * cols + 32 * b), _mm256_set_m128i(hi, lo));
                }
            }
            abase = (const char *)u;
            astride = (size_t)cols;
        } else {
            abase = wr + 2; /* block b of row r: abase + r * ws + 34 * b */
            astride = ws;
        }
        const size_t ablk = fmt == FMT_Q4_0 ? 32 : 34;
        for (int tt = 0; tt < ntt; tt++) {
            const int8_t *bt = B + (size_t)tt * nb * 512;
            const float *dt = dxt + (size_t)tt * nb * 16;
            __m512 acc[16];
            for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
            /* Two blocks per step; the tile work of step s + 1 is issued before the vector
             * work of step s, so the latter reads tile results stored a step earlier (a tile
             * store does not forward to vector loads: reading it at once would wait for it). */
            const int np = nb / 2;
#define ISSUE(s, C0, C1, buf)                                                                  \
    do {                                                                                       \
        int bb = 2 * (s);                                                                      \
        _tile_zero(C0);                                                                        \
        _tile_zero(C1);                                                                        \
        _tile_loadd(2, abase + bb * ablk, (long)astride);                                      \
        _tile_loadd(3, abase + (bb + 1) * ablk, (long)astride);                                \
        _tile_loadd(4, bt + (size_t)bb * 512, 64);                                             \
        _tile_loadd(5, bt + (size_t)(bb + 1) * 512, 64);                                       \
        _tile_dpbssd(C0, 2, 4);                                                                \
        _tile_dpbssd(C1, 3, 5);                                                                \
        _tile_stored(C0, cb + 512 * (buf), 64);                                                \
        _tile_stored(C1, cb + 512 * (buf) + 256, 64);                                          \
    } while (0)
#define VEC(s, buf)                                                                            \
    do {                                                                                       \
        int bb = 2 * (s);                                                                      \
        const int32_t *c = cb + 512 * (buf);                                                   \
        __m512 d0 = _mm512_load_ps(dt + (size_t)bb * 16), d1 = _mm512_load_ps(dt + (size_t)(bb + 1) * 16); \
        _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) {                                \
            __m512 c0 = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * r));                     \
            __m512 c1 = _mm512_cvtepi32_ps(_mm512_load_si512(c + 256 + 16 * r));               \
            acc[r] = _mm512_fmadd_ps(c0, _mm512_mul_ps(d0, _mm512_set1_ps(dw[r * nb + bb])), acc[r]); \
            acc[r] = _mm512_fmadd_ps(c1, _mm512_mul_ps(d1, _mm512_set1_ps(dw[r * nb + bb + 1])), acc[r]); \
        }                                                                                      \
    } while (0)
            /* the next 16 rows into L2 meanwhile (first token tile only): prefill reads each
             * weight once from memory, and the scale gathers would otherwise take the misses */
            const char *pf = tt == 0 && r0 + 32 <= nr ? wr + 16 * ws : NULL;
            const size_t pstep = (16 * ws + np - 1) / (np ? np : 1);
#define PF()                                                                                   \
    do {                                                                                       \
        if (pf) {                                                                              \
            for (size_t o = 0; o < pstep + 64; o += 64) _mm_prefetch(pf + o, _MM_HINT_T1);     \
            pf += pstep;                                                                       \
        }                                                                                      \
    } while (0)
            if (np > 0) ISSUE(0, 0, 1, 0);
            for (int s = 0; s < np; s += 2) {
                if (s + 1 < np) ISSUE(s + 1, 6, 7, 1);
                PF();
                VEC(s, 0);
                if (s + 1 < np) {
                    if (s + 2 < np) ISSUE(s + 2, 0, 1, 0);
                    PF();
                    VEC(s + 1, 1);
                }
            }
#undef PF
#undef ISSUE
#undef VEC
            int b = 2 * np;
            if (b < nb) {
                _tile_zero(0);
                _tile_loadd(2, abase + b * ablk, (long)astride);
                _tile_loadd(4, bt + (size_t)b * 512, 64);
                _tile_dpbssd(0, 2, 4);
                _tile_stored(0, cb, 64);
                __m512 d0 = _mm512_load_ps(dt + (size_t)b * 16);
#pragma GCC unroll 16
                for (int r = 0; r < 16; r++) {
                    __m512 c0 = _mm512_cvtepi32_ps(_mm512_load_si512(cb + 16 * r));
                    acc[r] = _mm512_fmadd_ps(c0, _mm512_mul_ps(d0, _mm512_set1_ps(dw[r * nb + b])), acc[r]);
                }
            }
            int nt = n - tt * 16 < 16 ? n - tt * 16 : 16;
            float *o = out + r0 + (size_t)tt * 16 * os;
            /* acc[r] holds row r for 16 tokens; out is token-major: store it transposed, each
             * token's 16 rows with one 64-byte store */
            float v[16][16] __attribute__((aligned(64)));
            for (int r = 0; r < 16; r++) _mm512_store_ps(v[r], acc[r]);
            const __m512i col = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                   _mm512_set1_epi32(16));
            for (int t = 0; t < nt; t++)
                _mm512_storeu_ps(o + t * os, _mm512_i32gather_ps(_mm512_add_epi32(col, _mm512_set1_epi32(t)), &v[0][0], 4));
        }
    }
    _tile_release();
    /* the last rows (fewer than a tile): AVX-512 dot tiles of SHOAL__NT tokens */
    if (r0 < nr) {
        shoal__dot_fn dot = shoal__kernels_avx512.dot[fmt == FMT_Q4_0 ? SHOAL_WTYPE_Q4_0 : SHOAL_WTYPE_Q8_0];
        for (int t = 0; t < n; t += SHOAL__NT)
            dot(cols, (const char *)w + (size_t)r0 * ws, ws, nr - r0, (const char *)act + (size_t)t * as, as,
                n - t < SHOAL__NT ? n - t : SHOAL__NT, out + r0 + (size_t)t * os, os);
    }
}

TA static void gemm_q8_0(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int n, float *out,
                         size_t os, void *scratch) {
    gemm(FMT_Q8_0, cols, w, ws, nr, act, as, n, out, os, scratch);
}

TA static void gemm_q4_0(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int n, float *out,
                         size_t os, void *scratch) {
    gemm(FMT_Q4_0, cols, w, ws, nr, act, as, n, out, os, scratch);
}

const shoal__cpu_kernels shoal__kernels_amx = {
    .isa = "amx",
    /* dot tiles, quantize_act and the f32 helpers: the AVX-512 set's (the backend fills gaps) */
    .gemm = {[SHOAL_WTYPE_Q8_0] = gemm_q8_0, [SHOAL_WTYPE_Q4_0] = gemm_q4_0},
    .gemm_scratch = gemm_scratch,
};
