/* Reference (scalar) quantization and dequantization of ggml block formats (see quant.h). */
#include <math.h>
#include <string.h>

#include "model/dtype.h"
#include "model/quant.h"

void shoal__quantize_act(const float *x, void *row, int n) {
    shoal__act a = shoal__act_view(row, n);
    for (int b = 0; b < n / SHOAL__QK; b++, x += SHOAL__QK) {
        float amax = 0;
        for (int j = 0; j < SHOAL__QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        int8_t *q = a.qs + 32 * b;
        int s0 = 0, s1 = 0;
        for (int j = 0; j < SHOAL__QK; j++) {
            q[j] = (int8_t)lrintf(x[j] * id);
            if (j < 16) s0 += q[j];
            else s1 += q[j];
        }
        a.d[b] = d;
        a.ds[b] = d * (float)(s0 + s1);
        a.dh[2 * b] = d * (float)s0;
        a.dh[2 * b + 1] = d * (float)s1;
    }
}

void shoal__quantize_q8_0(const float *x, shoal__block_q8_0 *y, int n) {
    for (int b = 0; b < n / SHOAL__QK; b++, x += SHOAL__QK) {
        float amax = 0;
        for (int j = 0; j < SHOAL__QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = shoal__f32_to_fp16(d);
        for (int j = 0; j < SHOAL__QK; j++) y[b].qs[j] = (int8_t)lrintf(x[j] * id);
    }
}

/* As ggml's quantize_row_q4_0_ref: the value of largest magnitude maps to -8. */
void shoal__quantize_q4_0(const float *x, shoal__block_q4_0 *y, int n) {
    for (int b = 0; b < n / SHOAL__QK; b++, x += SHOAL__QK) {
        float amax = 0, max = 0;
        for (int j = 0; j < SHOAL__QK; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = shoal__f32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            int a = (int)(x[j] * id + 8.5f), c = (int)(x[j + 16] * id + 8.5f);
            a = a > 15 ? 15 : a < 0 ? 0 : a;
            c = c > 15 ? 15 : c < 0 ? 0 : c;
            y[b].qs[j] = (uint8_t)(a | (c << 4));
        }
    }
}

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void shoal__quantize_q4_k(const float *x, shoal__block_q4_k *y, int n) {
    for (int b = 0; b < n / SHOAL__QK_K; b++, x += SHOAL__QK_K) {
        float sc[8], mn[8], maxsc = 0, maxmn = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0, hi = 0; /* the min is clamped to <= 0 as in ggml */
            for (int l = 0; l < 32; l++) lo = fminf(lo, x[32 * j + l]), hi = fmaxf(hi, x[32 * j + l]);
            sc[j] = (hi - lo) / 15.0f;
            mn[j] = -lo;
            maxsc = fmaxf(maxsc, sc[j]);
            maxmn = fmaxf(maxmn, mn[j]);
        }
        float d = maxsc / 63.0f, dmin = maxmn / 63.0f;
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            int a = d ? (int)lrintf(sc[j] / d) : 0, c = dmin ? (int)lrintf(mn[j] / dmin) : 0;
            ls[j] = (uint8_t)(a > 63 ? 63 : a);
            lm[j] = (uint8_t)(c > 63 ? 63 : c);
        }
        memset(y[b].scales, 0, 12);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                y[b].scales[j] = ls[j];
                y[b].scales[j + 4] = lm[j];
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        y[b].d = shoal__f32_to_fp16(d);
        y[b].dmin = shoal__f32_to_fp16(dmin);
        float fd = shoal__fp16_to_f32(y[b].d), fm = shoal__fp16_to_f32(y[b].dmin);
        uint8_t L[256];
        for (int j = 0; j < 8; j++) {
            uint8_t s, m;
            get_scale_min_k4(j, y[b].scales, &s, &m);
            float dd = fd * s, mm = fm * m;
            for (int l = 0; l < 32; l++) {
                int q = dd ? (int)lrintf((x[32 * j + l] + mm) / dd) : 0;
                L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > 15 ? 15 : q);
            }
        }
        for (int j = 0; j < 256; j += 64)
            for (int l = 0; l < 32; l++) y[b].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + 32 + l] << 4));
    }
}

void shoal__quantize_q6_k(const float *x, shoal__block_q6_k *y, int n) {
    for (int b = 0; b < n / SHOAL__QK_K; b++, x += SHOAL__QK_K) {
        float sc[16], maxabs = 0;
        for (int j = 0; j < 16; j++) {
            float a = 0;
            for (int l = 0; l < 16; l++) a = fmaxf(a, fabsf(x[16 * j + l]));
            sc[j] = a / 31.0f;
            maxabs = fmaxf(maxabs, sc[j]);
        }
        float d = maxabs / 127.0f;
        y[b].d = shoal__f32_to_fp16(d);
        float fd = shoal__fp16_to_f32(y[b].d);
        int8_t L[256];
        for (int j = 0; j < 16; j++) {
            int s = fd ? (int)lrintf(sc[j] / fd) : 0;
            y[b].scales[j] = (int8_t)(s > 127 ? 127 : s);
            float dd = fd * y[b].scales[j];
            for (int l = 0; l < 16; l++) {
                int q = dd ? (int)lrintf(x[16 * j + l] / dd) : 0;
                L[16 * j + l] = (int8_t)((q < -32 ? -32 : q > 31 ? 31 : q) + 32);
            }
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int j = 0; j < 256; j += 128) {
            for (int l = 0; l < 32; l++) {
                uint8_t q1 = (uint8_t)L[j + l], q2 = (uint8_t)L[j + l + 32];
                uint8_t q3 = (uint8_t)L[j + l + 64], q4 = (uint8_t)L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

void shoal__dequantize_row(int dtype, const void *row, float *y, int n) {
    switch (dtype) {
    case SHOAL_WTYPE_F32: memcpy(y, row, (size_t)n * 4); return;
    case SHOAL_WTYPE_F16: {
        const uint16_t *h = row;
        for (int i = 0; i < n; i++) y[i] = shoal__fp16_to_f32(h[i]);
        return;
    }
    case SHOAL_WTYPE_BF16: {
        const uint16_t *h = row;
        for (int i = 0; i < n; i++) y[i] = shoal__bf16_to_float(h[i]);
        return;
    }
    case SHOAL_WTYPE_Q8_0: {
        const shoal__block_q8_0 *b = row;
        for (int i = 0; i < n / 32; i++) {
            float d = shoal__fp16_to_f32(b[i].d);
            for (int j = 0; j < 32; j++) y[32 * i + j] = d * b[i].qs[j];
        }
        return;
    }
    case SHOAL_WTYPE_Q4_0: {
        const shoal__block_q4_0 *b = row;
        for (int i = 0; i < n / 32; i++) {
            float d = shoal__fp16_to_f32(b[i].d);
            for (int j = 0; j < 16; j++) {
                y[32 * i + j] = d * ((b[i].qs[j] & 0xF) - 8);
                y[32 * i + j + 16] = d * ((b[i].qs[j] >> 4) - 8);
            }
        }
        return;
    }
    case SHOAL_WTYPE_Q4_K: {
        const shoal__block_q4_k *b = row;
        for (int i = 0; i < n / 256; i++) {
            float d = shoal__fp16_to_f32(b[i].d), dmin = shoal__fp16_to_f32(b[i].dmin);
            const uint8_t *q = b[i].qs;
            for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
                uint8_t s1, m1, s2, m2;
                get_scale_min_k4(is, b[i].scales, &s1, &m1);
                get_scale_min_k4(is + 1, b[i].scales, &s2, &m2);
                for (int l = 0; l < 32; l++) y[256 * i + j + l] = d * s1 * (q[l] & 0xF) - dmin * m1;
                for (int l = 0; l < 32; l++) y[256 * i + j + 32 + l] = d * s2 * (q[l] >> 4) - dmin * m2;
            }
        }
        return;
    }
    case SHOAL_WTYPE_Q6_K: {
        const shoal__block_q6_k *b = row;
        for (int i = 0; i < n / 256; i++) {
            float d = shoal__fp16_to_f32(b[i].d);
            const uint8_t *ql = b[i].ql, *qh = b[i].qh;
            const int8_t *sc = b[i].scales;
            float *o = y + 256 * i;
            for (int k = 0; k < 256; k += 128, o += 128, ql += 64, qh += 32, sc += 8)
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    o[l] = d * sc[is] * q1;
                    o[l + 32] = d * sc[is + 2] * q2;
                    o[l + 64] = d * sc[is + 4] * q3;
                    o[l + 96] = d * sc[is + 6] * q4;
                }
        }
        return;
    }
    default: memset(y, 0, (size_t)n * 4);
    }
}

size_t shoal__quantize_row(int dtype, const float *x, void *row, int n) {
    switch (dtype) {
    case SHOAL_WTYPE_F32: memcpy(row, x, (size_t)n * 4); return (size_t)n * 4;
    case SHOAL_WTYPE_F16:
        for (int i = 0; i < n; i++) ((uint16_t *)row)[i] = shoal__f32_to_fp16(x[i]);
        return (size_t)n * 2;
    case SHOAL_WTYPE_BF16:
        for (int i = 0; i < n; i++) ((uint16_t *)row)[i] = shoal__float_to_bf16(x[i]);
        return (size_t)n * 2;
    case SHOAL_WTYPE_Q8_0: shoal__quantize_q8_0(x, row, n); return (size_t)n / 32 * 34;
    case SHOAL_WTYPE_Q4_0: shoal__quantize_q4_0(x, row, n); return (size_t)n / 32 * 18;
    case SHOAL_WTYPE_Q4_K: shoal__quantize_q4_k(x, row, n); return (size_t)n / 256 * 144;
    case SHOAL_WTYPE_Q6_K: shoal__quantize_q6_k(x, row, n); return (size_t)n / 256 * 210;
    default: return 0;
    }
}
