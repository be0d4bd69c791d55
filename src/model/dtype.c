/* Element type table and half-precision conversions (see dtype.h). */
#include <math.h>
#include <string.h>

#include "model/dtype.h"

static const shoal__dtype_info table[] = {
    [SHOAL_WTYPE_F32] = {"F32", 1, 4, 1},
    [SHOAL_WTYPE_F16] = {"F16", 1, 2, 1},
    [SHOAL_WTYPE_Q4_0] = {"Q4_0", 32, 18, 1},
    [3] = {"Q4_1", 32, 20, 0},
    [6] = {"Q5_0", 32, 22, 0},
    [7] = {"Q5_1", 32, 24, 0},
    [SHOAL_WTYPE_Q8_0] = {"Q8_0", 32, 34, 1},
    [9] = {"Q8_1", 32, 36, 0},
    [10] = {"Q2_K", 256, 84, 0},
    [11] = {"Q3_K", 256, 110, 0},
    [SHOAL_WTYPE_Q4_K] = {"Q4_K", 256, 144, 1},
    [13] = {"Q5_K", 256, 176, 0},
    [SHOAL_WTYPE_Q6_K] = {"Q6_K", 256, 210, 1},
    [15] = {"Q8_K", 256, 292, 0},
    [24] = {"I8", 1, 1, 0},
    [25] = {"I16", 1, 2, 0},
    [26] = {"I32", 1, 4, 0},
    [27] = {"I64", 1, 8, 0},
    [28] = {"F64", 1, 8, 0},
    [SHOAL_WTYPE_BF16] = {"BF16", 1, 2, 1},
};

const shoal__dtype_info *shoal__dtype(int type) {
    if (type < 0 || (size_t)type >= sizeof table / sizeof table[0] || !table[type].name)
        return NULL;
    return &table[type];
}

uint64_t shoal__dtype_bytes(int type, uint64_t n) {
    const shoal__dtype_info *d = shoal__dtype(type);
    if (!d || n % d->block) return UINT64_MAX;
    uint64_t blocks = n / d->block;
    if (blocks > UINT64_MAX / d->type_size) return UINT64_MAX;
    return blocks * d->type_size;
}

const char *shoal_wtype_name(int type) {
    const shoal__dtype_info *d = shoal__dtype(type);
    return d ? d->name : "unknown";
}

float shoal__fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 */
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    } else if (exp == 31) {
        v.u = sign | 0x7f800000u | (man << 13);
    } else {
        v.u = sign | ((exp + 112) << 23) | (man << 13);
    }
    return v.f;
}

uint16_t shoal__f32_to_fp16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000;
    uint32_t x = v.u & 0x7fffffffu;
    if (x >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (x > 0x7f800000u ? 0x200 : 0));
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (x < 0x38800000u) {                                   /* subnormal or zero in f16 */
        float a = fabsf(f) * 16777216.0f;                    /* units of 2^-24 */
        uint32_t m = (uint32_t)nearbyintf(a);
        return (uint16_t)(sign | m);
    }
    uint32_t exp = ((x >> 23) - 112) << 10;
    uint32_t man = (x >> 13) & 0x3ff;
    uint32_t rest = x & 0x1fff;
    uint32_t h = exp | man;
    if (rest > 0x1000 || (rest == 0x1000 && (man & 1))) h++;
    return (uint16_t)(sign | h);
}

uint16_t shoal__float_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t r = v.u + 0x7fff + ((v.u >> 16) & 1);
    return (uint16_t)(r >> 16);
}
