/* Element-wise reduction kernels and the f16/bf16 <-> f32 conversions.
 *
 * Native types get three loops per (type, op): acc op= in, acc = in op acc (for a pair whose
 * output aliases its right operand) and out = a op b. Each is a plain counted loop over
 * restrict pointers so gcc -O2 vectorizes the f32/f64/integer sums and products. Integer sums
 * and products run on the unsigned type of the same width: two's complement wrap-around is the
 * documented result, and signed overflow would be undefined behaviour. f16 and bf16 are widened
 * to f32 in small blocks, combined with the f32 loop and rounded back to nearest-even. */
#include <stdint.h>
#include <string.h>

#include "comm/coll/coll.h"

/* ---- f16 / bf16 conversions ---------------------------------------------------------------- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The conversions are written without branches (each case is computed and the right one
 * selected with a mask) so the block loops below vectorize; the public functions are the same
 * code one element at a time. */

static inline uint32_t mask_if(int cond) { return 0u - (uint32_t)(cond != 0); }

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent and mantissa at the f32 position */
    uint32_t exp = em & 0x0f800000u;
    uint32_t normal = em + (112u << 23); /* rebias 15 -> 127 */
    uint32_t infnan = em + (224u << 23); /* exponent 31 -> 255, the NaN payload kept */
    /* Subnormal half m * 2^-24: as f32 bits, 2^-14 * (1 + m/1024) minus 2^-14, which the float
     * subtraction does exactly (also m = 0 gives +0). */
    float sub = bits_f32(em + (113u << 23)) - bits_f32(113u << 23);
    uint32_t is_special = mask_if(exp == 0x0f800000u), is_sub = mask_if(exp == 0);
    uint32_t o =
        (normal & ~(is_special | is_sub)) | (infnan & is_special) | (f32_bits(sub) & is_sub);
    return bits_f32(o | sign);
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    /* NaN stays NaN (quiet bit set, top payload bits kept); from 65520 (halfway past 65504,
     * the largest half) up, and Inf, give Inf. */
    uint32_t big = (mask_if(x > 0x7f800000u) & (0x7e00u | ((x >> 13) & 0x3ffu))) |
                   (mask_if(x <= 0x7f800000u) & 0x7c00u);
    /* Normal half (x >= 2^-14): rebias the exponent (127 -> 15) and round the 13 dropped bits
     * to nearest even by adding 0xfff plus the lowest kept bit; a carry out of the mantissa
     * correctly bumps the exponent. */
    uint32_t normal = (x - 0x38000000u + 0x0fffu + ((x >> 13) & 1u)) >> 13;
    /* Subnormal half (x < 2^-14): adding 0.5 leaves the value's multiple of 2^-24 in the low
     * mantissa bits, rounded to nearest even by the float addition itself (default rounding
     * mode); 2^-14 - tiny may round up to 0x0400, the smallest normal, correctly. */
    uint32_t sub = f32_bits(bits_f32(x) + 0.5f) - 0x3f000000u;
    uint32_t is_big = mask_if(x >= 0x477ff000u), is_normal = mask_if(x >= 0x38800000u);
    uint32_t o = (big & is_big) | (normal & is_normal & ~is_big) | (sub & ~is_normal);
    return (uint16_t)(o | sign);
}

static inline float bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    /* Round to nearest even on the 16 dropped bits; overflow past the largest bf16 carries
     * into the exponent and gives Inf, as it should. NaN: kept, quiet bit set. */
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16, nan = (x >> 16) | 0x40u;
    uint32_t is_nan = mask_if((x & 0x7fffffffu) > 0x7f800000u);
    return (uint16_t)((nan & is_nan) | (rounded & ~is_nan));
}

float shoal__f16_to_f32(uint16_t h) { return f16_to_f32(h); }
uint16_t shoal__f32_to_f16(float f) { return f32_to_f16(f); }
float shoal__bf16_to_f32(uint16_t b) { return bf16_to_f32(b); }
uint16_t shoal__f32_to_bf16(float f) { return f32_to_bf16(f); }

/* ---- native kernels ------------------------------------------------------------------------ */

/* EXPR combines a (left operand) and b (right operand). */
#define OP_ADD(a, b) ((a) + (b))
#define OP_MUL(a, b) ((a) * (b))
#define OP_MIN_I(a, b) ((b) < (a) ? (b) : (a))
#define OP_MAX_I(a, b) ((b) > (a) ? (b) : (a))
/* Floats: a NaN in either operand gives NaN (as torch.minimum/maximum), instead of C's
 * comparison-order-dependent answer. */
#define OP_MIN_F(a, b) (((a) < (b) || (a) != (a)) ? (a) : (b))
#define OP_MAX_F(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))

typedef void (*into_fn)(void *restrict acc, const void *restrict in, size_t n);
typedef void (*pair_fn)(void *restrict out, const void *restrict a, const void *restrict b,
                        size_t n);

typedef struct kernel {
    into_fn into;  /* acc[i] = acc[i] op in[i] */
    into_fn rinto; /* acc[i] = in[i] op acc[i] */
    pair_fn pair;  /* out[i] = a[i] op b[i], no aliasing */
} kernel;

/* gcc -O2 uses the "very cheap" vectorizer cost model, which rejects a loop of unknown trip
 * count whenever it would need a scalar epilogue. A fixed inner loop of 16 elements has a
 * known count, so it vectorizes (f32/f64/integer sums and products, most min/max); the scalar
 * tail handles the last count % 16. */
#define SPLIT_LOOP(N, ...)                                                                         \
    do {                                                                                           \
        size_t i = 0;                                                                              \
        for (size_t j_ = 0; j_ < (N) / 16; j_++)                                                   \
            for (size_t k_ = 0; k_ < 16; k_++, i++) {                                              \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        for (; i < (N); i++) {                                                                     \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#define KERNELS(NAME, T, EXPR)                                                                     \
    static void into_##NAME(void *restrict accv, const void *restrict inv, size_t n) {             \
        T *restrict acc = accv;                                                                    \
        const T *restrict in = inv;                                                                \
        SPLIT_LOOP(n, T a = acc[i], b = in[i]; acc[i] = (T)(EXPR););                               \
    }                                                                                              \
    static void rinto_##NAME(void *restrict accv, const void *restrict inv, size_t n) {            \
        T *restrict acc = accv;                                                                    \
        const T *restrict in = inv;                                                                \
        SPLIT_LOOP(n, T a = in[i], b = acc[i]; acc[i] = (T)(EXPR););                               \
    }                                                                                              \
    static void pair_##NAME(void *restrict outv, const void *restrict av, const void *restrict bv, \
                            size_t n) {                                                            \
        T *restrict out = outv;                                                                    \
        const T *restrict x = av, *restrict y = bv;                                                \
        SPLIT_LOOP(n, T a = x[i], b = y[i]; out[i] = (T)(EXPR););                                  \
    }                                                                                              \
    static const kernel k_##NAME = {into_##NAME, rinto_##NAME, pair_##NAME};

KERNELS(f32_sum, float, OP_ADD(a, b))
KERNELS(f32_prod, float, OP_MUL(a, b))
KERNELS(f32_min, float, OP_MIN_F(a, b))
KERNELS(f32_max, float, OP_MAX_F(a, b))
KERNELS(f64_sum, double, OP_ADD(a, b))
KERNELS(f64_prod, double, OP_MUL(a, b))
KERNELS(f64_min, double, OP_MIN_F(a, b))
KERNELS(f64_max, double, OP_MAX_F(a, b))
/* Wrapping sums/products: unsigned arithmetic on the same bits serves both signednesses. */
KERNELS(u8_sum, uint8_t, OP_ADD(a, b))
KERNELS(u8_prod, uint8_t, OP_MUL(a, b))
KERNELS(u32_sum, uint32_t, OP_ADD(a, b))
KERNELS(u32_prod, uint32_t, OP_MUL(a, b))
KERNELS(u64_sum, uint64_t, OP_ADD(a, b))
KERNELS(u64_prod, uint64_t, OP_MUL(a, b))
KERNELS(u8_min, uint8_t, OP_MIN_I(a, b))
KERNELS(u8_max, uint8_t, OP_MAX_I(a, b))
KERNELS(i8_min, int8_t, OP_MIN_I(a, b))
KERNELS(i8_max, int8_t, OP_MAX_I(a, b))
KERNELS(i32_min, int32_t, OP_MIN_I(a, b))
KERNELS(i32_max, int32_t, OP_MAX_I(a, b))
KERNELS(i64_min, int64_t, OP_MIN_I(a, b))
KERNELS(i64_max, int64_t, OP_MAX_I(a, b))

/* [dtype][op] for SUM, PROD, MIN, MAX (AVG reduces as SUM). f16/bf16 rows use the f32 kernels
 * on widened blocks. */
static const kernel *const kernels[SHOAL_DTYPE_COUNT][4] = {
    [SHOAL_F32] = {&k_f32_sum, &k_f32_prod, &k_f32_min, &k_f32_max},
    [SHOAL_F64] = {&k_f64_sum, &k_f64_prod, &k_f64_min, &k_f64_max},
    [SHOAL_F16] = {&k_f32_sum, &k_f32_prod, &k_f32_min, &k_f32_max},
    [SHOAL_BF16] = {&k_f32_sum, &k_f32_prod, &k_f32_min, &k_f32_max},
    [SHOAL_I8] = {&k_u8_sum, &k_u8_prod, &k_i8_min, &k_i8_max},
    [SHOAL_U8] = {&k_u8_sum, &k_u8_prod, &k_u8_min, &k_u8_max},
    [SHOAL_I32] = {&k_u32_sum, &k_u32_prod, &k_i32_min, &k_i32_max},
    [SHOAL_I64] = {&k_u64_sum, &k_u64_prod, &k_i64_min, &k_i64_max},
};

static const kernel *kernel_for(shoal_dtype t, shoal_op op) {
    if ((unsigned)t >= SHOAL_DTYPE_COUNT || (unsigned)op >= SHOAL_OP_COUNT) return NULL;
    return kernels[t][op == SHOAL_AVG ? SHOAL_SUM : op];
}

/* ---- f16 / bf16 through f32 ------------------------------------------------------------------ */

enum { HALF_BLOCK = 256 }; /* elements widened at a time: 2 KiB of stack per operand */

static void half_to_f32(float *restrict dst, const uint16_t *restrict src, size_t n, int bf) {
    if (bf)
        SPLIT_LOOP(n, dst[i] = bf16_to_f32(src[i]););
    else
        SPLIT_LOOP(n, dst[i] = f16_to_f32(src[i]););
}

static void f32_to_half(uint16_t *restrict dst, const float *restrict src, size_t n, int bf) {
    if (bf)
        SPLIT_LOOP(n, dst[i] = f32_to_bf16(src[i]););
    else
        SPLIT_LOOP(n, dst[i] = f32_to_f16(src[i]););
}

/* out = a op b for halves. Each block of both operands is read before the block of out is
 * written, so out may alias a or b. */
static void half_pair(const kernel *k, void *out, const void *a, const void *b, size_t count,
                      int bf) {
    float fa[HALF_BLOCK], fb[HALF_BLOCK];
    uint16_t *o = out;
    const uint16_t *x = a, *y = b;
    for (size_t done = 0; done < count; done += HALF_BLOCK) {
        size_t n = count - done < HALF_BLOCK ? count - done : HALF_BLOCK;
        half_to_f32(fa, x + done, n, bf);
        half_to_f32(fb, y + done, n, bf);
        k->into(fa, fb, n);
        f32_to_half(o + done, fa, n, bf);
    }
}

static int is_half(shoal_dtype t) { return t == SHOAL_F16 || t == SHOAL_BF16; }

void shoal__reduce_into(void *acc, const void *in, size_t count, shoal_dtype t, shoal_op op) {
    const kernel *k = kernel_for(t, op);
    if (!k || count == 0) return;
    if (is_half(t))
        half_pair(k, acc, acc, in, count, t == SHOAL_BF16);
    else
        k->into(acc, in, count);
}

void shoal__reduce_pair(void *out, const void *a, const void *b, size_t count, shoal_dtype t,
                        shoal_op op) {
    const kernel *k = kernel_for(t, op);
    if (!k || count == 0) return;
    if (is_half(t))
        half_pair(k, out, a, b, count, t == SHOAL_BF16);
    else if (out == a)
        k->into(out, b, count);
    else if (out == b)
        k->rinto(out, a, count); /* keeps a as the left operand: min/max are not symmetric */
    else
        k->pair(out, a, b, count);
}

/* ---- AVG ------------------------------------------------------------------------------------ */

#define DIVIDE(T, D)                                                                               \
    do {                                                                                           \
        T *restrict p = buf;                                                                       \
        SPLIT_LOOP(count, p[i] = (T)(p[i] / (D)););                                                \
    } while (0)

static void half_divide(uint16_t *p, size_t count, int n, int bf) {
    float f[HALF_BLOCK], d = (float)n;
    for (size_t done = 0; done < count; done += HALF_BLOCK) {
        size_t m = count - done < HALF_BLOCK ? count - done : HALF_BLOCK;
        half_to_f32(f, p + done, m, bf);
        for (size_t i = 0; i < m; i++) f[i] /= d;
        f32_to_half(p + done, f, m, bf);
    }
}

void shoal__avg_finish(void *buf, size_t count, shoal_dtype t, int n) {
    if (n <= 1 || count == 0) return; /* dividing by 1 changes nothing */
    switch (t) {
    case SHOAL_F32: DIVIDE(float, (float)n); break;
    case SHOAL_F64: DIVIDE(double, (double)n); break;
    case SHOAL_F16: half_divide(buf, count, n, 0); break;
    case SHOAL_BF16: half_divide(buf, count, n, 1); break;
    /* C integer division truncates toward zero; n >= 2 so nothing overflows. */
    case SHOAL_I8: DIVIDE(int8_t, n); break;
    case SHOAL_U8: DIVIDE(uint8_t, (unsigned)n); break;
    case SHOAL_I32: DIVIDE(int32_t, (int32_t)n); break;
    case SHOAL_I64: DIVIDE(int64_t, (int64_t)n); break;
    default: break;
    }
}
