/* Every CPU kernel against the plain reference (as ggml's test-backend-ops): for each kernel
 * set this CPU runs and each weight dtype, dot tiles of nr = 1..9 weight rows x nt = 1..4
 * tokens over several row lengths (for the 32-blocks: odd block counts and counts that are not
 * a multiple of the 16-block groups of the AVX-512 kernels; for the float types: lengths that
 * are not a multiple of the vector width) equal the scalar kernel; the scalar quantized dots
 * equal an f64 dot of the dequantized operands; quantize -> dequantize stays within each
 * format's error bound; SIMD activation quantization equals the scalar one byte for byte. */
#include <stdint.h>
#include <stdlib.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"
#include "model/quant.h"
#include "model_check.h"

static uint64_t rs = 12345;
static float frand(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

#define MAXC 2336 /* largest row length tested */
#define MAXR 9
#define NT SHOAL__NT

/* One dtype at one row length: quantization bound, scalar vs dequantized, every ISA vs scalar. */
static void check_dtype(int dt, int cols) {
    static const char *isas[] = {"scalar", "avx2", "avx512", "amx"};
    static float w[MAXR][MAXC], wd[MAXR][MAXC], x[NT][MAXC], xd[NT][MAXC];
    static uint8_t wq[MAXR][MAXC * 4];
    static _Alignas(64) uint8_t xq[NT][SHOAL__ACT_BYTES(MAXC) + 64];
    int q8 = shoal__act_is_q8(dt);
    size_t row_bytes = shoal__dtype_bytes(dt, (uint64_t)cols);
    size_t ws = row_bytes + 8; /* rows not packed end to end */
    for (int r = 0; r < MAXR; r++)
        for (int i = 0; i < cols; i++) w[r][i] = frand() * (i % 97 == r ? 4.0f : 1.0f); /* outliers stress the scales */
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < cols; i++) x[t][i] = frand() * (t == 2 ? 10.0f : 1.0f);
    if (q8)
        for (int t = 0; t < NT; t++) {
            shoal__kernels_scalar.quantize_act(x[t], xq[t], cols);
            shoal__act a = shoal__act_view(xq[t], cols);
            for (int i = 0; i < cols; i++) xd[t][i] = a.d[i / 32] * a.qs[i];
        }
    /* quantize/dequantize error bounds, relative to max |w| (uniform: max step / 2) */
    const double bound[] = {[SHOAL_WTYPE_F32] = 0, [SHOAL_WTYPE_F16] = 1e-3, [SHOAL_WTYPE_BF16] = 8e-3,
                            [SHOAL_WTYPE_Q8_0] = 1.0 / 127, [SHOAL_WTYPE_Q4_0] = 1.0 / 8,
                            [SHOAL_WTYPE_Q4_K] = 1.0 / 8, [SHOAL_WTYPE_Q6_K] = 1.0 / 16};
    uint8_t *wbuf = calloc(MAXR, ws);
    for (int r = 0; r < MAXR; r++) {
        size_t bytes = shoal__quantize_row(dt, w[r], wq[r], cols);
        CHECK(bytes == row_bytes);
        memcpy(wbuf + r * ws, wq[r], row_bytes);
        shoal__dequantize_row(dt, wq[r], wd[r], cols);
        double wmax = 0, e = 0;
        for (int i = 0; i < cols; i++) wmax = fmax(wmax, fabs(w[r][i])), e = fmax(e, fabs(wd[r][i] - w[r][i]));
        if (e > bound[dt] * wmax + 1e-7) {
            fprintf(stderr, "%s: quantization error %g > %g\n", shoal_wtype_name(dt), e, bound[dt] * wmax);
            check_failures++;
        }
    }
    const void *act = q8 ? (const void *)xq : (const void *)x;
    size_t as = q8 ? sizeof xq[0] : sizeof x[0];
    /* scalar dot == f64 dot of the dequantized operands; out is [nt][os] with os = MAXR + 3 */
    enum { OS = MAXR + 3 };
    float ref[NT * OS], got[NT * OS];
    double mag[NT * OS]; /* sum |w x|: float rounding is relative to it, not to the result */
    shoal__kernels_scalar.dot[dt](cols, wbuf, ws, MAXR, act, as, NT, ref, OS);
    for (int t = 0; t < NT; t++)
        for (int r = 0; r < MAXR; r++) {
            double s = 0, m = 0;
            for (int i = 0; i < cols; i++) {
                double p = (double)wd[r][i] * (q8 ? xd[t][i] : x[t][i]);
                s += p, m += fabs(p);
            }
            mag[r + t * OS] = m;
            if (fabs(ref[r + t * OS] - s) > 1e-4 * (1 + fabs(s))) {
                fprintf(stderr, "%s cols=%d: scalar dot %g, dequantized reference %g\n", shoal_wtype_name(dt), cols,
                        ref[r + t * OS], s);
                check_failures++;
            }
        }
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        const shoal__cpu_kernels *ks = shoal__cpu_kernels_pick(isas[k]);
        if (!ks || !ks->dot[dt]) continue; /* not on this CPU / falls back to a lower set */
        for (int nr = 1; nr <= MAXR; nr++)
            for (int nt = 1; nt <= NT; nt++) {
                for (int i = 0; i < NT * OS; i++) got[i] = -12345.0f;
                ks->dot[dt](cols, wbuf, ws, nr, act, as, nt, got, OS);
                for (int t = 0; t < NT; t++)
                    for (int r = 0; r < OS; r++) {
                        float want = t < nt && r < nr ? ref[r + t * OS] : -12345.0f;
                        double tol = t < nt && r < nr ? 1e-5 * mag[r + t * OS] + 1e-6 : 0;
                        if (fabs(got[r + t * OS] - want) > tol) {
                            fprintf(stderr, "%s %s cols=%d nr=%d nt=%d r=%d t=%d: %g, scalar %g\n", isas[k],
                                    shoal_wtype_name(dt), cols, nr, nt, r, t, got[r + t * OS], want);
                            check_failures++;
                        }
                    }
            }
    }
    free(wbuf);
}

/* gemm entries (AMX) against the scalar dot tiles: rows around the 16-row tiles, tokens around
 * the 16-token tiles (zero padded), odd block counts. */
static void check_gemm(int dt, int cols) {
    enum { GR = 35, GN = 37 };
    static const char *isas[] = {"amx"};
    size_t row_bytes = shoal__dtype_bytes(dt, (uint64_t)cols), ws = row_bytes + 6;
    size_t as = (SHOAL__ACT_BYTES(cols) + 63) / 64 * 64;
    uint8_t *w = malloc(GR * ws), *act = aligned_alloc(64, GN * as);
    float *row = malloc(sizeof(float) * cols), *ref = malloc(sizeof(float) * GR * GN), *got = malloc(sizeof(float) * GR * GN);
    for (int r = 0; r < GR; r++) {
        for (int i = 0; i < cols; i++) row[i] = frand() * (i % 61 == r ? 5.0f : 1.0f);
        shoal__quantize_row(dt, row, w + r * ws, cols);
    }
    for (int t = 0; t < GN; t++) {
        for (int i = 0; i < cols; i++) row[i] = frand() * (t % 5 == 1 ? 20.0f : 1.0f);
        shoal__kernels_scalar.quantize_act(row, act + t * as, cols);
    }
    for (int t = 0; t < GN; t += NT)
        shoal__kernels_scalar.dot[dt](cols, w, ws, GR, act + t * as, as, GN - t < NT ? GN - t : NT, ref + t * GR, GR);
    /* sum |w x| of each product, from the dequantized operands (the scale of float rounding) */
    float *wd = malloc(sizeof(float) * cols * GR);
    double *mag = malloc(sizeof(double) * GR * GN);
    for (int r = 0; r < GR; r++) shoal__dequantize_row(dt, w + r * ws, wd + (size_t)r * cols, cols);
    for (int t = 0; t < GN; t++) {
        shoal__act a = shoal__act_view(act + t * as, cols);
        for (int r = 0; r < GR; r++) {
            double m = 0;
            for (int i = 0; i < cols; i++) m += fabs((double)wd[(size_t)r * cols + i] * a.d[i / 32] * a.qs[i]);
            mag[r + t * GR] = m;
        }
    }
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        const shoal__cpu_kernels *ks = shoal__cpu_kernels_pick(isas[k]);
        if (!ks || !ks->gemm[dt]) continue;
        static const int nrs[] = {1, 15, 16, 17, 33, 35}, ns[] = {1, 3, 16, 17, 32, 37};
        for (size_t a = 0; a < sizeof nrs / sizeof nrs[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
                int nr = nrs[a], n = ns[b];
                void *scratch = aligned_alloc(64, (ks->gemm_scratch(cols, n) + 63) / 64 * 64);
                for (int i = 0; i < GR * GN; i++) got[i] = -12345.0f;
                ks->gemm[dt](cols, w, ws, nr, act, as, n, got, GR, scratch);
                free(scratch);
                for (int t = 0; t < GN; t++)
                    for (int r = 0; r < GR; r++) {
                        float want = t < n && r < nr ? ref[r + t * GR] : -12345.0f;
                        double tol = t < n && r < nr ? 1e-5 * mag[r + t * GR] + 1e-6 : 0;
                        if (fabs(got[r + t * GR] - want) > tol) {
                            fprintf(stderr, "%s gemm %s cols=%d nr=%d n=%d r=%d t=%d: %g, scalar %g\n", isas[k],
                                    shoal_wtype_name(dt), cols, nr, n, r, t, got[r + t * GR], want);
                            check_failures++;
                        }
                    }
            }
    }
    free(w), free(act), free(row), free(ref), free(got), free(wd), free(mag);
}

int main(void) {
    const int types[] = {SHOAL_WTYPE_F32, SHOAL_WTYPE_F16, SHOAL_WTYPE_BF16, SHOAL_WTYPE_Q8_0,
                         SHOAL_WTYPE_Q4_0, SHOAL_WTYPE_Q4_K, SHOAL_WTYPE_Q6_K};
    const char *isas[] = {"scalar", "avx2", "avx512", "amx"};
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++)
        if (!shoal__cpu_kernels_pick(isas[k])) fprintf(stderr, "(%s not supported on this CPU: skipped)\n", isas[k]);
    /* block counts: 1, 2, 3 (odd), 16 (one group), 17, 24, 64 + 9 = 73 (groups + odd tail) */
    const int q32[] = {32, 64, 96, 512, 544, 768, 2336};
    const int qk[] = {256, 512, 768, 2304};
    const int f[] = {1, 7, 16, 33, 77, 768, 1000};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int dt = types[ti];
        const int *c = dt == SHOAL_WTYPE_Q4_K || dt == SHOAL_WTYPE_Q6_K ? qk : shoal__act_is_q8(dt) ? q32 : f;
        size_t nc = dt == SHOAL_WTYPE_Q4_K || dt == SHOAL_WTYPE_Q6_K ? sizeof qk / sizeof qk[0]
                    : shoal__act_is_q8(dt)                           ? sizeof q32 / sizeof q32[0]
                                                                     : sizeof f / sizeof f[0];
        for (size_t i = 0; i < nc; i++) check_dtype(dt, c[i]);
        if (dt == SHOAL_WTYPE_Q8_0 || dt == SHOAL_WTYPE_Q4_0)
            for (size_t i = 0; i < sizeof q32 / sizeof q32[0]; i++) check_gemm(dt, q32[i]);
    }
    /* activation quantization (every byte, sums included) and the f32 helpers */
    float x[4][768];
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 768; i++) x[t][i] = frand() * (i % 50 == 0 ? 30.0f : 1.0f);
    for (int i = 0; i < 32; i++) x[1][64 + i] = 0; /* an all-zero block: d = 0 */
    _Alignas(64) static uint8_t ref[SHOAL__ACT_BYTES(768)], y[SHOAL__ACT_BYTES(768)];
    shoal__kernels_scalar.quantize_act(x[1], ref, 768);
    for (size_t k = 1; k < sizeof isas / sizeof isas[0]; k++) {
        const shoal__cpu_kernels *ks = shoal__cpu_kernels_pick(isas[k]);
        if (!ks) continue;
        if (ks->quantize_act) {
            ks->quantize_act(x[1], y, 768);
            CHECK(memcmp(y, ref, sizeof y) == 0);
        }
        if (!ks->dot_f32 || !ks->axpy) continue; /* taken from a lower set */
        float a = ks->dot_f32(x[0], x[1], 77), b = shoal__kernels_scalar.dot_f32(x[0], x[1], 77);
        CHECK(fabsf(a - b) < 1e-4f);
        float y1[77], y2[77];
        memcpy(y1, x[2], sizeof y1);
        memcpy(y2, x[2], sizeof y2);
        ks->axpy(y1, 0.7f, x[3], 77);
        shoal__kernels_scalar.axpy(y2, 0.7f, x[3], 77);
        for (int i = 0; i < 77; i++) CHECK(fabsf(y1[i] - y2[i]) < 1e-6f * (1 + fabsf(y2[i])));
        if (ks->silu_mul) { /* silu over a wide range (exp over- and underflow included), odd length */
            enum { NS = 301 };
            float g1[NS], g2[NS], u[NS];
            for (int i = 0; i < NS; i++) {
                g1[i] = g2[i] = (i - 150) * (i % 3 ? 0.07f : 0.9f);
                u[i] = frand();
            }
            ks->silu_mul(g1, u, NS);
            shoal__kernels_scalar.silu_mul(g2, u, NS);
            for (int i = 0; i < NS; i++)
                if (!(fabsf(g1[i] - g2[i]) <= 4e-7f * fabsf(g2[i]) + 1e-30f)) {
                    fprintf(stderr, "%s silu_mul(%g): %g, scalar %g\n", isas[k], (i - 150) * (i % 3 ? 0.07 : 0.9), g1[i], g2[i]);
                    check_failures++;
                }
        }
    }
    /* the activation sums are what they say */
    shoal__act a = shoal__act_view(ref, 768);
    for (int b = 0; b < 768 / 32; b++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) s0 += a.qs[32 * b + j], s1 += a.qs[32 * b + 16 + j];
        CHECK(a.dh[2 * b] == a.d[b] * (float)s0 && a.dh[2 * b + 1] == a.d[b] * (float)s1);
        CHECK(a.ds[b] == a.d[b] * (float)(s0 + s1));
    }
    CHECK(a.d[2] == 0);
    /* f16 / bf16 conversions */
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(1.0f)) == 1.0f);
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(-65504.0f)) == -65504.0f);
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(5.96046448e-08f)) == 5.96046448e-08f);
    CHECK(shoal__bf16_to_float(shoal__float_to_bf16(3.0f)) == 3.0f);
    TEST_DONE();
}
