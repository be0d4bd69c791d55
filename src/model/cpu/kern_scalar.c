/* Portable reference kernels: plain C, the definition every SIMD kernel is tested against. */
#include <math.h>
#include <string.h>

#include "model/cpu/kernels.h"
#include "model/dtype.h"

#define ACT(act, t, stride) ((const void *)((const char *)(act) + (size_t)(t) * (stride)))

static void row_f32(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const float *wr = w;
    for (int t = 0; t < nt; t++) {
        const float *x = ACT(act, t, as);
        float s = 0;
        for (int i = 0; i < cols; i++) s += wr[i] * x[i];
        out[t * os] = s;
    }
}

static void row_f16(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const uint16_t *wr = w;
    for (int t = 0; t < nt; t++) {
        const float *x = ACT(act, t, as);
        float s = 0;
        for (int i = 0; i < cols; i++) s += shoal__fp16_to_f32(wr[i]) * x[i];
        out[t * os] = s;
    }
}

static void row_bf16(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const uint16_t *wr = w;
    for (int t = 0; t < nt; t++) {
        const float *x = ACT(act, t, as);
        float s = 0;
        for (int i = 0; i < cols; i++) s += shoal__bf16_to_float(wr[i]) * x[i];
        out[t * os] = s;
    }
}

static void row_q8_0(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const shoal__block_q8_0 *wb = w;
    for (int t = 0; t < nt; t++) {
        shoal__act x = shoal__act_view(ACT(act, t, as), cols);
        float s = 0;
        for (int b = 0; b < cols / 32; b++) {
            int is = 0;
            for (int j = 0; j < 32; j++) is += wb[b].qs[j] * x.qs[32 * b + j];
            s += shoal__fp16_to_f32(wb[b].d) * x.d[b] * (float)is;
        }
        out[t * os] = s;
    }
}

static void row_q4_0(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const shoal__block_q4_0 *wb = w;
    for (int t = 0; t < nt; t++) {
        shoal__act x = shoal__act_view(ACT(act, t, as), cols);
        float s = 0;
        for (int b = 0; b < cols / 32; b++) {
            const int8_t *xq = x.qs + 32 * b;
            int is = 0;
            for (int j = 0; j < 16; j++)
                is += ((wb[b].qs[j] & 0xF) - 8) * xq[j] + ((wb[b].qs[j] >> 4) - 8) * xq[j + 16];
            s += shoal__fp16_to_f32(wb[b].d) * x.d[b] * (float)is;
        }
        out[t * os] = s;
    }
}

/* Q4_K: each 32-element sub-block j has scale d*sc_j and min dmin*m_j; one activation block
 * covers it exactly: sum = dx * (d*sc_j * sum(q*qx) - dmin*m_j * sum(qx)). */
static void row_q4_k(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const shoal__block_q4_k *wb = w;
    for (int t = 0; t < nt; t++) {
        shoal__act x = shoal__act_view(ACT(act, t, as), cols);
        float s = 0;
        for (int b = 0; b < cols / 256; b++) {
            float d = shoal__fp16_to_f32(wb[b].d), dmin = shoal__fp16_to_f32(wb[b].dmin);
            const uint8_t *sc = wb[b].scales, *q = wb[b].qs;
            for (int j = 0; j < 8; j++) {
                uint8_t scj, mj;
                if (j < 4) scj = sc[j] & 63, mj = sc[j + 4] & 63;
                else scj = (uint8_t)((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4)),
                     mj = (uint8_t)((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
                const int8_t *xq = x.qs + 32 * (b * 8 + j);
                const uint8_t *qq = q + (j / 2) * 32;
                int shift = (j & 1) * 4, isum = 0, xsum = 0;
                for (int l = 0; l < 32; l++) {
                    isum += ((qq[l] >> shift) & 0xF) * xq[l];
                    xsum += xq[l];
                }
                s += x.d[b * 8 + j] * (d * scj * (float)isum - dmin * mj * (float)xsum);
            }
        }
        out[t * os] = s;
    }
}

/* Q6_K: 16 sub-blocks of 16 with int8 scales; element e of the super-block is in activation
 * block e/32. */
static void row_q6_k(int cols, const void *w, const void *act, size_t as, int nt, float *out, size_t os) {
    const shoal__block_q6_k *wb = w;
    for (int t = 0; t < nt; t++) {
        shoal__act x = shoal__act_view(ACT(act, t, as), cols);
        float s = 0;
        for (int b = 0; b < cols / 256; b++) {
            int8_t q[256];
            const uint8_t *ql = wb[b].ql, *qh = wb[b].qh;
            for (int k = 0; k < 256; k += 128, ql += 64, qh += 32)
                for (int l = 0; l < 32; l++) {
                    q[k + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    q[k + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    q[k + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    q[k + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            float d = shoal__fp16_to_f32(wb[b].d);
            for (int j = 0; j < 16; j++) {
                const int8_t *xq = x.qs + 32 * (b * 8 + j / 2) + (j & 1) * 16;
                int isum = 0;
                for (int l = 0; l < 16; l++) isum += q[16 * j + l] * xq[l];
                s += x.d[b * 8 + j / 2] * d * wb[b].scales[j] * (float)isum;
            }
        }
        out[t * os] = s;
    }
}

/* The tile over nr rows: one row at a time (the reference needs no register tiling). */
#define ROWS(NAME, ROW)                                                                        \
    static void NAME(int cols, const void *w, size_t ws, int nr, const void *act, size_t as, int nt, \
                     float *out, size_t os) {                                                  \
        for (int r = 0; r < nr; r++) ROW(cols, (const char *)w + (size_t)r * ws, act, as, nt, out + r, os); \
    }
ROWS(dot_f32, row_f32)
ROWS(dot_f16, row_f16)
ROWS(dot_bf16, row_bf16)
ROWS(dot_q8_0, row_q8_0)
ROWS(dot_q4_0, row_q4_0)
ROWS(dot_q4_k, row_q4_k)
ROWS(dot_q6_k, row_q6_k)

static float dot_f32_1(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void silu_mul(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

const shoal__cpu_kernels shoal__kernels_scalar = {
    .isa = "scalar",
    .dot = {[SHOAL_WTYPE_F32] = dot_f32, [SHOAL_WTYPE_F16] = dot_f16, [SHOAL_WTYPE_BF16] = dot_bf16,
            [SHOAL_WTYPE_Q8_0] = dot_q8_0, [SHOAL_WTYPE_Q4_0] = dot_q4_0,
            [SHOAL_WTYPE_Q4_K] = dot_q4_k, [SHOAL_WTYPE_Q6_K] = dot_q6_k},
    .quantize_act = shoal__quantize_act,
    .dot_f32 = dot_f32_1,
    .axpy = axpy,
    .silu_mul = silu_mul,
};
