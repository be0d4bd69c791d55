/* Unit test of the element-wise kernels (src/comm/coll/reduce_kernels.c) and the dtype/op
 * names (dtype.c), single process.
 *
 * - shoal__reduce_into / _pair (out distinct, out == a, out == b) and shoal__avg_finish for
 *   every dtype x op against a scalar reference, at lengths that hit both the vectorized main
 *   loop and the scalar tail; integer sums and products must wrap.
 * - f16/bf16 conversions against independent references: f16 -> f32 by ldexp for all 65536
 *   halves, the f16 -> f32 -> f16 round trip, and f32 -> f16/bf16 rounding against a search
 *   for the nearest representable value (ties to even) over every half, every midpoint
 *   between neighbours, the floats next to those midpoints, special cases and random bits. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll.h"
#include "shoal/comm.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (failures++ < 30) {                                                                 \
                fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);           \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fprintf(stderr, "\n");                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- independent conversion references ------------------------------------------------- */

/* Value of a half by its definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormal 2^-14 * m/1024. */
static double ref_f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static double ref_bf16_value(uint16_t b) { /* bf16 is the top half of an f32 */
    return (double)bits_f32((uint32_t)b << 16);
}

/* Nearest of the ascending non-negative values vals[0..top] to x (>= 0, finite), ties to the
 * even bit pattern; vals[top] is the overflow sentinel (Inf's pattern, valued 2^emax+1).
 * Midpoints are compared as 2x against vals[lo] + vals[lo+1], both exact in double. */
static uint16_t nearest(const double *vals, int top, double x) {
    if (x >= vals[top]) return (uint16_t)top;
    int lo = 0, hi = top; /* vals[lo] <= x < vals[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (vals[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    if (vals[lo] == x) return (uint16_t)lo;
    double twice = 2 * x, sum = vals[lo] + vals[hi];
    if (twice < sum) return (uint16_t)lo;
    if (twice > sum) return (uint16_t)hi;
    return (uint16_t)((lo & 1) ? hi : lo);
}

static double f16_vals[0x7c01], bf16_vals[0x7f81];

static void build_tables(void) {
    for (int h = 0; h < 0x7c00; h++) f16_vals[h] = ref_f16_value((uint16_t)h);
    f16_vals[0x7c00] = 65536.0; /* where the next binade would start: rounding there is Inf */
    for (int b = 0; b < 0x7f80; b++) bf16_vals[b] = ref_bf16_value((uint16_t)b);
    bf16_vals[0x7f80] = ldexp(1.0, 128);
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_is_nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f); }

static void check_to_half(float f) {
    uint16_t h = shoal__f32_to_f16(f), b = shoal__f32_to_bf16(f);
    if (isnan(f)) {
        CHECK(f16_is_nan(h), "f32 NaN %08x -> f16 %04x is not NaN", f32_bits(f), h);
        CHECK(bf16_is_nan(b), "f32 NaN %08x -> bf16 %04x is not NaN", f32_bits(f), b);
        return;
    }
    uint16_t sign = (f32_bits(f) >> 16) & 0x8000;
    double x = fabs((double)f);
    uint16_t eh = sign | nearest(f16_vals, 0x7c00, x);
    uint16_t eb = sign | nearest(bf16_vals, 0x7f80, x);
    CHECK(h == eh, "f32 %.9g (%08x) -> f16 %04x, expected %04x", f, f32_bits(f), h, eh);
    CHECK(b == eb, "f32 %.9g (%08x) -> bf16 %04x, expected %04x", f, f32_bits(f), b, eb);
}

static void test_conversions(void) {
    build_tables();
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = shoal__f16_to_f32(h);
        if (f16_is_nan(h)) {
            /* NaN stays NaN with its sign and payload, and comes back as a NaN */
            uint32_t want =
                ((uint32_t)(h & 0x8000) << 16) | 0x7f800000u | ((uint32_t)(h & 0x3ff) << 13);
            CHECK(f32_bits(f) == want, "f16 NaN %04x -> f32 %08x, expected %08x", h, f32_bits(f),
                  want);
            CHECK(f16_is_nan(shoal__f32_to_f16(f)), "f16 NaN %04x does not survive a round trip",
                  h);
        } else {
            double want =
                (h & 0x7c00) == 0x7c00 ? ((h & 0x8000) ? -INFINITY : INFINITY) : ref_f16_value(h);
            CHECK((double)f == want && !signbit(f) == !signbit(want),
                  "f16 %04x -> f32 %.9g, expected %.9g", h, f, want);
            CHECK(shoal__f32_to_f16(f) == h, "f16 %04x round trip gives %04x", h,
                  shoal__f32_to_f16(f));
        }
        float g = shoal__bf16_to_f32(h);
        if (bf16_is_nan(h))
            CHECK(isnan(g) && bf16_is_nan(shoal__f32_to_bf16(g)), "bf16 NaN %04x", h);
        else
            CHECK(shoal__f32_to_bf16(g) == h, "bf16 %04x round trip gives %04x", h,
                  shoal__f32_to_bf16(g));
    }
    /* Every representable value, every midpoint between neighbours (exact in f32: halves and
     * bf16 have fewer bits) and the floats just either side of it: that is where rounding
     * decides. */
    for (int i = 0; i < 0x7c00; i++) {
        float v = (float)f16_vals[i], mid = (float)((f16_vals[i] + f16_vals[i + 1]) / 2);
        float around[] = {v, mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 4; k++) {
            check_to_half(around[k]);
            check_to_half(-around[k]);
        }
    }
    for (int i = 0; i < 0x7f80; i++) {
        float v = (float)bf16_vals[i], mid = (float)((bf16_vals[i] + bf16_vals[i + 1]) / 2);
        float around[] = {v, mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 4; k++) {
            check_to_half(around[k]);
            check_to_half(-around[k]);
        }
    }
    const float special[] = {0.0f,
                             -0.0f,
                             1.0f,
                             65504.0f,
                             65519.99f,
                             65520.0f,
                             65536.0f,
                             1e-8f,
                             5.9604645e-8f /* 2^-24 */,
                             2.9802322e-8f /* 2^-25: tie */,
                             nextafterf(2.9802322e-8f, 1),
                             8.940697e-8f /* 1.5 * 2^-24 */,
                             6.097555e-5f /* just under 2^-14 */,
                             FLT_MAX,
                             -FLT_MAX,
                             FLT_MIN,
                             1e-45f,
                             INFINITY,
                             -INFINITY,
                             NAN,
                             3.3895314e38f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) check_to_half(special[i]);
    CHECK(shoal__f32_to_f16(INFINITY) == 0x7c00, "inf");
    CHECK(shoal__f32_to_f16(65520.0f) == 0x7c00, "65520 must round to inf");
    CHECK(shoal__f32_to_f16(2.9802322e-8f) == 0x0000, "2^-25 ties to even zero");
    CHECK(shoal__f32_to_f16(8.940697e-8f) == 0x0002, "1.5*2^-24 ties to even 2^-23");
    CHECK(shoal__f32_to_bf16(FLT_MAX) == 0x7f80, "FLT_MAX rounds to bf16 inf");
    CHECK(shoal__f32_to_bf16(bits_f32(0x3f808000u)) == 0x3f80, "bf16 tie to even (down)");
    CHECK(shoal__f32_to_bf16(bits_f32(0x3f818000u)) == 0x3f82, "bf16 tie to even (up)");
    for (int i = 0; i < 2000000; i++) check_to_half(bits_f32((uint32_t)rng()));
}

/* ---- kernels against a scalar reference ---------------------------------------------------- */

static const shoal_dtype all_dtypes[] = {SHOAL_F32, SHOAL_F64, SHOAL_F16, SHOAL_BF16,
                                         SHOAL_I8,  SHOAL_U8,  SHOAL_I32, SHOAL_I64};

static double get_f(const void *buf, size_t i, shoal_dtype t) {
    switch (t) {
    case SHOAL_F32: return ((const float *)buf)[i];
    case SHOAL_F64: return ((const double *)buf)[i];
    case SHOAL_F16: return shoal__f16_to_f32(((const uint16_t *)buf)[i]);
    case SHOAL_BF16: return shoal__bf16_to_f32(((const uint16_t *)buf)[i]);
    default: return 0;
    }
}

/* Integers as their two's complement bits in a uint64 (so wrap-around is plain arithmetic). */
static uint64_t get_u(const void *buf, size_t i, shoal_dtype t) {
    switch (t) {
    case SHOAL_I8: return (uint64_t)(int64_t)((const int8_t *)buf)[i];
    case SHOAL_U8: return ((const uint8_t *)buf)[i];
    case SHOAL_I32: return (uint64_t)(int64_t)((const int32_t *)buf)[i];
    case SHOAL_I64: return (uint64_t)((const int64_t *)buf)[i];
    default: return 0;
    }
}

static int is_float(shoal_dtype t) { return t <= SHOAL_BF16; }

/* Stores the low bits of u as integer type t. */
static void put_bits(void *buf, size_t i, shoal_dtype t, uint64_t u) {
    switch (t) {
    case SHOAL_I8: ((int8_t *)buf)[i] = (int8_t)(uint8_t)u; break;
    case SHOAL_U8: ((uint8_t *)buf)[i] = (uint8_t)u; break;
    case SHOAL_I32: ((int32_t *)buf)[i] = (int32_t)(uint32_t)u; break;
    case SHOAL_I64: ((int64_t *)buf)[i] = (int64_t)u; break;
    default: break;
    }
}

static int64_t sext(uint64_t u, shoal_dtype t) {
    switch (t) {
    case SHOAL_I8: return (int8_t)(uint8_t)u;
    case SHOAL_U8: return (uint8_t)u;
    case SHOAL_I32: return (int32_t)(uint32_t)u;
    default: return (int64_t)u;
    }
}

/* Scalar reference of a op b. Floats: combined in float (f32, f16, bf16: f16/bf16 are
 * specified to be widened to f32, combined and rounded back) or double; min/max give NaN when
 * either operand is NaN. */
static float ref_f32op(float a, float b, shoal_op op) {
    switch (op) {
    case SHOAL_SUM:
    case SHOAL_AVG: return a + b;
    case SHOAL_PROD: return a * b;
    case SHOAL_MIN: return (isnan(a) || isnan(b)) ? NAN : (b < a ? b : a);
    default: return (isnan(a) || isnan(b)) ? NAN : (b > a ? b : a);
    }
}

static double ref_f64op(double a, double b, shoal_op op) {
    switch (op) {
    case SHOAL_SUM:
    case SHOAL_AVG: return a + b;
    case SHOAL_PROD: return a * b;
    case SHOAL_MIN: return (isnan(a) || isnan(b)) ? NAN : (b < a ? b : a);
    default: return (isnan(a) || isnan(b)) ? NAN : (b > a ? b : a);
    }
}

static uint64_t ref_intop(uint64_t a, uint64_t b, shoal_op op, shoal_dtype t) {
    switch (op) {
    case SHOAL_SUM:
    case SHOAL_AVG: return a + b;
    case SHOAL_PROD: return a * b;
    case SHOAL_MIN: return sext(a, t) <= sext(b, t) ? a : b;
    default: return sext(a, t) >= sext(b, t) ? a : b;
    }
}

/* Expected element i of `a op b` written to out (as the dtype). */
static void ref_elem(void *out, const void *a, const void *b, size_t i, shoal_dtype t,
                     shoal_op op) {
    switch (t) {
    case SHOAL_F32:
        ((float *)out)[i] = ref_f32op(((const float *)a)[i], ((const float *)b)[i], op);
        break;
    case SHOAL_F64:
        ((double *)out)[i] = ref_f64op(((const double *)a)[i], ((const double *)b)[i], op);
        break;
    case SHOAL_F16:
        ((uint16_t *)out)[i] =
            shoal__f32_to_f16(ref_f32op((float)get_f(a, i, t), (float)get_f(b, i, t), op));
        break;
    case SHOAL_BF16:
        ((uint16_t *)out)[i] =
            shoal__f32_to_bf16(ref_f32op((float)get_f(a, i, t), (float)get_f(b, i, t), op));
        break;
    default: put_bits(out, i, t, ref_intop(get_u(a, i, t), get_u(b, i, t), op, t)); break;
    }
}

/* Element equality: floats by value with NaN == NaN (payloads and the sign of zero from
 * min/max are not specified), integers by bits. */
static int same_elem(const void *x, const void *y, size_t i, shoal_dtype t) {
    if (!is_float(t)) return get_u(x, i, t) == get_u(y, i, t);
    double a = get_f(x, i, t), b = get_f(y, i, t);
    return (isnan(a) && isnan(b)) || a == b;
}

/* Random element values: floats mix small integers, fractions, big and tiny magnitudes,
 * signed zeros, Inf and NaN; integers are full-range bits (so sums and products wrap). */
static void fill_random(void *buf, size_t n, shoal_dtype t, int with_specials) {
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng();
        double v;
        switch (r % 8) {
        case 0: v = (double)((int)(r >> 8) % 9 - 4); break;
        case 1:
            v = ldexp((double)(r >> 11) / 9007199254740992.0 - 0.5, (int)(r >> 4 & 15) - 8);
            break;
        case 2: v = ldexp(1.0 + (double)(r >> 40) / 16777216.0, (int)(r >> 8 & 31) - 20); break;
        case 3: v = (r >> 8) & 1 ? -0.0 : 0.0; break;
        case 4:
            v = with_specials ? ((r >> 8) % 3 == 0 ? NAN
                                 : (r >> 9) & 1    ? INFINITY
                                                   : -INFINITY)
                              : 1.5;
            break;
        default: v = ((double)(int64_t)(r >> 20) / 1099511627776.0); break;
        }
        switch (t) {
        case SHOAL_F32: ((float *)buf)[i] = (float)v; break;
        case SHOAL_F64: ((double *)buf)[i] = v; break;
        case SHOAL_F16: ((uint16_t *)buf)[i] = shoal__f32_to_f16((float)v); break;
        case SHOAL_BF16: ((uint16_t *)buf)[i] = shoal__f32_to_bf16((float)v); break;
        default: put_bits(buf, i, t, rng()); break;
        }
    }
}

static void test_kernels(void) {
    const size_t lens[] = {0, 1, 7, 15, 16, 17, 33, 255, 256, 257, 1000};
    enum { MAXN = 1000 };
    static unsigned char a[MAXN * 8], b[MAXN * 8], want[MAXN * 8], got[MAXN * 8 + 8]; /* + guard */
    for (size_t ti = 0; ti < 8; ti++) {
        shoal_dtype t = all_dtypes[ti];
        size_t es = shoal_dtype_size(t);
        for (int op = 0; op < SHOAL_OP_COUNT; op++) {
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                size_t n = lens[li];
                fill_random(a, n, t, op == SHOAL_MIN || op == SHOAL_MAX || li % 2);
                fill_random(b, n, t, op == SHOAL_MIN || op == SHOAL_MAX || li % 2);
                for (size_t i = 0; i < n; i++) ref_elem(want, a, b, i, t, (shoal_op)op);
                /* 0: into, 1: pair distinct, 2: pair out == a, 3: pair out == b */
                for (int form = 0; form < 4; form++) {
                    memcpy(got, form == 3 ? b : a, n * es);
                    unsigned char guard[8];
                    memcpy(guard, got + n * es, 8); /* nothing past n may be written */
                    if (form == 0) shoal__reduce_into(got, b, n, t, (shoal_op)op);
                    if (form == 1) {
                        memset(got, 0x5a, n * es + 8);
                        memcpy(guard, got + n * es, 8);
                        shoal__reduce_pair(got, a, b, n, t, (shoal_op)op);
                    }
                    if (form == 2) shoal__reduce_pair(got, got, b, n, t, (shoal_op)op);
                    if (form == 3) shoal__reduce_pair(got, a, got, n, t, (shoal_op)op);
                    for (size_t i = 0; i < n; i++)
                        CHECK(same_elem(got, want, i, t),
                              "%s %s form %d n %zu index %zu: got %g expected %g (a %g b %g)",
                              shoal_dtype_name(t), shoal_op_name((shoal_op)op), form, n, i,
                              is_float(t) ? get_f(got, i, t) : (double)sext(get_u(got, i, t), t),
                              is_float(t) ? get_f(want, i, t) : (double)sext(get_u(want, i, t), t),
                              is_float(t) ? get_f(a, i, t) : (double)sext(get_u(a, i, t), t),
                              is_float(t) ? get_f(b, i, t) : (double)sext(get_u(b, i, t), t));
                    CHECK(memcmp(guard, got + n * es, 8) == 0,
                          "%s %s form %d n %zu wrote past the end", shoal_dtype_name(t),
                          shoal_op_name((shoal_op)op), form, n);
                }
            }
        }
    }
    /* Specific wrap-around and ordering cases the random data may not hit. */
    int8_t i8a[2] = {100, -128}, i8b[2] = {100, -1};
    shoal__reduce_into(i8a, i8b, 2, SHOAL_I8, SHOAL_SUM);
    CHECK(i8a[0] == -56 && i8a[1] == 127, "i8 sum wraps: %d %d", i8a[0], i8a[1]);
    int32_t i32a[1] = {INT32_MAX}, i32b[1] = {2};
    shoal__reduce_into(i32a, i32b, 1, SHOAL_I32, SHOAL_PROD);
    CHECK(i32a[0] == -2, "i32 prod wraps: %d", i32a[0]);
    int64_t i64a[1] = {INT64_MAX}, i64b[1] = {1};
    shoal__reduce_into(i64a, i64b, 1, SHOAL_I64, SHOAL_SUM);
    CHECK(i64a[0] == INT64_MIN, "i64 sum wraps");
    int32_t mn[1] = {-5}, mx[1] = {3};
    shoal__reduce_into(mn, mx, 1, SHOAL_I32, SHOAL_MIN);
    CHECK(mn[0] == -5, "i32 min is signed");
    uint8_t u8a[1] = {200}, u8b[1] = {100};
    shoal__reduce_into(u8a, u8b, 1, SHOAL_U8, SHOAL_MAX);
    CHECK(u8a[0] == 200, "u8 max is unsigned");
    float fa[2] = {NAN, 1.0f}, fb[2] = {1.0f, NAN};
    shoal__reduce_into(fa, fb, 2, SHOAL_F32, SHOAL_MIN);
    CHECK(isnan(fa[0]) && isnan(fa[1]), "min propagates NaN from either side");
    /* Unknown dtype / op: no crash, nothing written. */
    float keep[1] = {7.0f}, other[1] = {1.0f};
    shoal__reduce_into(keep, other, 1, (shoal_dtype)99, SHOAL_SUM);
    shoal__reduce_into(keep, other, 1, SHOAL_F32, (shoal_op)99);
    CHECK(keep[0] == 7.0f, "unknown dtype/op must not touch the buffer");
}

static void test_avg(void) {
    const int ns[] = {1, 2, 3, 7};
    enum { N = 300 };
    static unsigned char buf[N * 8], orig[N * 8];
    for (size_t ti = 0; ti < 8; ti++) {
        shoal_dtype t = all_dtypes[ti];
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            int n = ns[k];
            fill_random(orig, N, t, 1);
            memcpy(buf, orig, sizeof buf);
            shoal__avg_finish(buf, N, t, n);
            for (size_t i = 0; i < N; i++) {
                int ok;
                switch (t) {
                case SHOAL_F32: {
                    float e = ((float *)orig)[i] / (float)n, g = ((float *)buf)[i];
                    ok = g == e || (isnan(e) && isnan(g));
                    break;
                }
                case SHOAL_F64: {
                    double e = ((double *)orig)[i] / n, g = ((double *)buf)[i];
                    ok = g == e || (isnan(e) && isnan(g));
                    break;
                }
                case SHOAL_F16: {
                    uint16_t e = shoal__f32_to_f16(shoal__f16_to_f32(((uint16_t *)orig)[i]) /
                                                   (float)n),
                             g = ((uint16_t *)buf)[i];
                    ok = e == g || (f16_is_nan(e) && f16_is_nan(g));
                    break;
                }
                case SHOAL_BF16: {
                    uint16_t e = shoal__f32_to_bf16(shoal__bf16_to_f32(((uint16_t *)orig)[i]) /
                                                    (float)n),
                             g = ((uint16_t *)buf)[i];
                    ok = e == g || (bf16_is_nan(e) && bf16_is_nan(g));
                    break;
                }
                default: {
                    int64_t v = sext(get_u(orig, i, t), t), e = v / n; /* C: truncates toward 0 */
                    ok = sext(get_u(buf, i, t), t) == e;
                    break;
                }
                }
                CHECK(ok, "avg %s n=%d index %zu", shoal_dtype_name(t), n, i);
            }
        }
    }
    int8_t neg[1] = {-7};
    shoal__avg_finish(neg, 1, SHOAL_I8, 2);
    CHECK(neg[0] == -3, "avg truncates toward zero: %d", neg[0]);
    float f[1] = {1.0f};
    shoal__avg_finish(f, 1, SHOAL_F32, 3);
    CHECK(f[0] == 1.0f / 3.0f, "f32 avg divides");
}

static void test_names(void) {
    for (size_t ti = 0; ti < 8; ti++) {
        shoal_dtype t = all_dtypes[ti], back = SHOAL_DTYPE_COUNT;
        CHECK(shoal_dtype_parse(shoal_dtype_name(t), &back) == SHOAL_OK && back == t, "dtype %d",
              (int)t);
    }
    const size_t sizes[] = {4, 8, 2, 2, 1, 1, 4, 8};
    for (int t = 0; t < SHOAL_DTYPE_COUNT; t++)
        CHECK(shoal_dtype_size((shoal_dtype)t) == sizes[t], "size of %s",
              shoal_dtype_name((shoal_dtype)t));
    for (int op = 0; op < SHOAL_OP_COUNT; op++) {
        shoal_op back = SHOAL_OP_COUNT;
        CHECK(shoal_op_parse(shoal_op_name((shoal_op)op), &back) == SHOAL_OK && (int)back == op,
              "op %d", op);
    }
    shoal_dtype t;
    shoal_op o;
    CHECK(shoal_dtype_parse("BF16", &t) == SHOAL_OK && t == SHOAL_BF16, "case-insensitive");
    CHECK(shoal_dtype_parse("float32", &t) == SHOAL_OK && t == SHOAL_F32, "alias");
    CHECK(shoal_dtype_parse("f31", &t) == SHOAL_ERR_INVALID, "unknown dtype");
    CHECK(shoal_dtype_parse(NULL, &t) == SHOAL_ERR_INVALID, "NULL name");
    CHECK(shoal_dtype_parse("f32", NULL) == SHOAL_ERR_INVALID, "NULL out");
    CHECK(shoal_op_parse("mean", &o) == SHOAL_OK && o == SHOAL_AVG, "op alias");
    CHECK(shoal_op_parse("xor", &o) == SHOAL_ERR_INVALID, "unknown op");
    CHECK(shoal_dtype_size((shoal_dtype)-1) == 0 && shoal_dtype_size(SHOAL_DTYPE_COUNT) == 0,
          "bad size");
    CHECK(strcmp(shoal_dtype_name((shoal_dtype)42), "?") == 0, "bad dtype name");
    CHECK(strcmp(shoal_op_name((shoal_op)-3), "?") == 0, "bad op name");
}

int main(void) {
    test_names();
    test_conversions();
    test_kernels();
    test_avg();
    if (failures) {
        fprintf(stderr, "test_reduce_kernels: %d checks failed\n", failures);
        return 1;
    }
    printf("test_reduce_kernels: ok\n");
    return 0;
}
