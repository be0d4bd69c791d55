/* Every CPU kernel against the plain reference (as ggml's test-backend-ops): for each kernel
 * set this CPU runs and each weight dtype, dot tiles of nt = 1..4 tokens equal the scalar
 * kernel; the scalar quantized dots equal an f32 dot of the dequantized operands; quantize ->
 * dequantize stays within each format's error bound; SIMD activation quantization equals the
 * scalar one. */
#include <stdint.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"
#include "model/quant.h"
#include "model_check.h"

static uint64_t rs = 12345;
static float frand(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

int main(void) {
    const int types[] = {SHOAL_WTYPE_F32, SHOAL_WTYPE_F16, SHOAL_WTYPE_BF16, SHOAL_WTYPE_Q8_0,
                         SHOAL_WTYPE_Q4_0, SHOAL_WTYPE_Q4_K, SHOAL_WTYPE_Q6_K};
    const char *isas[] = {"scalar", "avx2", "avx512"};
    const int cols = 512 + 256; /* a multiple of 256 for the K-quants, of 32 for the rest */
    float w[768], x[4][768], wd[768], xd[4][768];
    uint8_t wq[768 * 4];
    shoal__block_q8 xq[4][768 / 32];
    for (int i = 0; i < cols; i++) {
        w[i] = frand() * (i % 97 == 0 ? 4.0f : 1.0f); /* a few outliers stress the scales */
        for (int t = 0; t < 4; t++) x[t][i] = frand();
    }
    for (int t = 0; t < 4; t++) {
        shoal__kernels_scalar.quantize_act(x[t], xq[t], cols);
        for (int b = 0; b < cols / 32; b++)
            for (int j = 0; j < 32; j++) xd[t][32 * b + j] = xq[t][b].d * xq[t][b].qs[j];
    }
    /* quantize/dequantize error bounds, relative to max |w| (uniform: max step / 2) */
    const double bound[] = {[SHOAL_WTYPE_F32] = 0, [SHOAL_WTYPE_F16] = 1e-3, [SHOAL_WTYPE_BF16] = 8e-3,
                            [SHOAL_WTYPE_Q8_0] = 1.0 / 127, [SHOAL_WTYPE_Q4_0] = 1.0 / 8,
                            [SHOAL_WTYPE_Q4_K] = 1.0 / 8, [SHOAL_WTYPE_Q6_K] = 1.0 / 16};
    double wmax = 0;
    for (int i = 0; i < cols; i++) wmax = fmax(wmax, fabs(w[i]));
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int dt = types[ti];
        size_t bytes = shoal__quantize_row(dt, w, wq, cols);
        CHECK(bytes == shoal__dtype_bytes(dt, (uint64_t)cols));
        shoal__dequantize_row(dt, wq, wd, cols);
        double e = 0;
        for (int i = 0; i < cols; i++) e = fmax(e, fabs(wd[i] - w[i]));
        if (e > bound[dt] * wmax + 1e-7) {
            fprintf(stderr, "%s: quantization error %g > %g\n", shoal_wtype_name(dt), e, bound[dt] * wmax);
            check_failures++;
        }
        int q8 = shoal__act_is_q8(dt);
        const void *act = q8 ? (const void *)xq : (const void *)x;
        size_t as = q8 ? sizeof xq[0] : sizeof x[0];
        /* scalar dot == f32 dot of the dequantized operands */
        float ref[4], got[4];
        shoal__kernels_scalar.dot[dt](cols, wq, act, as, 4, ref, 1);
        for (int t = 0; t < 4; t++) {
            double s = 0;
            for (int i = 0; i < cols; i++) s += (double)wd[i] * (q8 ? xd[t][i] : x[t][i]);
            if (fabs(ref[t] - s) > 1e-4 * (1 + fabs(s))) {
                fprintf(stderr, "%s: scalar dot %g, dequantized reference %g\n", shoal_wtype_name(dt), ref[t], s);
                check_failures++;
            }
        }
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
            const shoal__cpu_kernels *ks = shoal__cpu_kernels_pick(isas[k]);
            if (!ks) {
                fprintf(stderr, "(%s not supported on this CPU: skipped)\n", isas[k]);
                continue;
            }
            if (!ks->dot[dt]) continue; /* falls back to the scalar kernel */
            for (int nt = 1; nt <= 4; nt++) {
                memset(got, 0, sizeof got);
                ks->dot[dt](cols, wq, act, as, nt, got, 1);
                for (int t = 0; t < nt; t++)
                    if (fabs(got[t] - ref[t]) > 2e-5 * (1 + fabs(ref[t]))) {
                        fprintf(stderr, "%s %s nt=%d t=%d: %g, scalar %g\n", isas[k], shoal_wtype_name(dt), nt,
                                t, got[t], ref[t]);
                        check_failures++;
                    }
            }
        }
    }
    /* activation quantization and the f32 helpers */
    for (size_t k = 1; k < sizeof isas / sizeof isas[0]; k++) {
        const shoal__cpu_kernels *ks = shoal__cpu_kernels_pick(isas[k]);
        if (!ks) continue;
        if (ks->quantize_act) {
            shoal__block_q8 y[768 / 32];
            ks->quantize_act(x[0], y, cols);
            CHECK(memcmp(y, xq[0], sizeof y) == 0);
        }
        float a = ks->dot_f32(x[0], x[1], 77), b = shoal__kernels_scalar.dot_f32(x[0], x[1], 77);
        CHECK(fabsf(a - b) < 1e-4f);
        float y1[77], y2[77];
        memcpy(y1, x[2], sizeof y1);
        memcpy(y2, x[2], sizeof y2);
        ks->axpy(y1, 0.7f, x[3], 77);
        shoal__kernels_scalar.axpy(y2, 0.7f, x[3], 77);
        for (int i = 0; i < 77; i++) CHECK(fabsf(y1[i] - y2[i]) < 1e-6f);
    }
    /* f16 / bf16 conversions */
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(1.0f)) == 1.0f);
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(-65504.0f)) == -65504.0f);
    CHECK(shoal__fp16_to_f32(shoal__f32_to_fp16(5.96046448e-08f)) == 5.96046448e-08f);
    CHECK(shoal__bf16_to_float(shoal__float_to_bf16(3.0f)) == 3.0f);
    TEST_DONE();
}
