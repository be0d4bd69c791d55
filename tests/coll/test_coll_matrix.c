/* test_coll_matrix: every collective x dtype x op (where it reduces) x count x in place or not,
 * checked exactly against a serial reference that every rank computes itself. Run as
 *     shoal launch -n N [--env SHOAL_ALGO=ring|rd|auto] -- test_coll_matrix [--big]
 * (tests/coll/tests.cmake registers N = 1, 2, 3, 4, 5, 8 for each algorithm setting).
 *
 * Counts are {0, 1, 7, N-1, 1M}; for the collectives whose count is per rank (allgather,
 * reduce_scatter, alltoall(v), gather, scatter) the large case uses 1M/N per rank so every
 * buffer stays about 1M elements. The large count runs every collective x dtype with SUM (and
 * f32 with every op), one in-place form per dtype, to keep the matrix fast on two cores.
 * Also: allreduce of inexact random floats (results must agree bitwise across ranks and be
 * close to the exact sum), non-blocking collectives overlapped with point-to-point traffic,
 * argument errors, and with --big one 64 MiB f32 allreduce.
 * SHOAL_TEST_QUICK=1 (sanitizer builds): 1M becomes 4099, run in full, and --big is skipped.
 *
 * Inputs are small integers so every reduction is exact in every type: for SUM/MIN/MAX/AVG
 * values in [-3, 3] ([0, 6] for u8); for PROD +-1 with at most one rank contributing a 2 per
 * element. Reduction inputs are periodic in the index (period 21 (N+1)), so the reference is a
 * small table; data-movement inputs are a hash of (rank, index, case) so a misplaced element
 * shows. Any mismatch prints the case and exits 1. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/coll/coll.h" /* shoal__f32_to_f16 and friends, to encode test values */
#include "shoal/comm.h"

static shoal_comm *comm;
static int rank, nranks, quick;
static const char *algo = "auto";
static long cases_run;

static const shoal_dtype dtypes[] = {SHOAL_F32, SHOAL_F64, SHOAL_F16, SHOAL_BF16,
                                     SHOAL_I8,  SHOAL_U8,  SHOAL_I32, SHOAL_I64};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One case, for failure messages. */
typedef struct tcase {
    const char *coll;
    shoal_dtype t;
    shoal_op op;
    size_t count;
    int in_place; /* 0 no, 1 or 2: which in-place form */
    int nb;       /* non-blocking form + shoal_wait */
    int root;
    int cs; /* case number: varies the data */
} tcase;

static void describe(const tcase *k, char *buf, size_t cap) {
    snprintf(buf, cap,
             "%s dtype=%s op=%s count=%zu in_place=%d algo=%s nonblocking=%d root=%d case=%d",
             k->coll, shoal_dtype_name(k->t), shoal_op_name(k->op), k->count, k->in_place, algo,
             k->nb, k->root, k->cs);
}

static void die(const tcase *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(const tcase *k, const char *fmt, ...) {
    char d[256] = "";
    if (k) describe(k, d, sizeof d);
    fprintf(stderr, "test_coll_matrix: rank %d of %d: FAIL %s: ", rank, nranks, d);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die(NULL, "out of memory (%zu bytes)", bytes);
    return p;
}

static void check_status(const tcase *k, int st, const char *call) {
    if (st != SHOAL_OK)
        die(k, "%s returned %s: %s", call, shoal_status_str(st), shoal_comm_last_error(comm));
}

/* ---- values ---------------------------------------------------------------------------------- */

static int is_unsigned(shoal_dtype t) { return t == SHOAL_U8; }

/* Reduction input of `rank` at index i (periodic in i with period 21 (nranks+1)). */
static int64_t rval(int r, size_t i, int cs, shoal_op op, shoal_dtype t) {
    if (op == SHOAL_PROD) {
        int64_t v = (i + (size_t)cs) % (size_t)(nranks + 1) == (size_t)r ? 2 : 1;
        if (!is_unsigned(t) && ((size_t)r + i + (size_t)cs) % 3 == 0) v = -v;
        return v;
    }
    int64_t v = (int64_t)(((size_t)r * 5 + i * 3 + (size_t)cs * 2) % 7) - 3;
    return is_unsigned(t) ? v + 3 : v;
}

static size_t period(void) { return 21 * (size_t)(nranks + 1); }

/* Data-movement input: a hash of (rank, index, case), 97 distinct small integers. */
static int64_t mval(int r, size_t i, int cs, shoal_dtype t) {
    uint64_t h = (uint64_t)r * 0x9e3779b97f4a7c15ull ^ (uint64_t)i * 0xc2b2ae3d27d4eb4full ^
                 ((uint64_t)cs + 1) * 0x165667b19e3779f9ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    int64_t v = (int64_t)(h % 97);
    return is_unsigned(t) ? v : v - 48;
}

/* Stores the small integer v as element i of buf. */
static void enc(void *buf, size_t i, shoal_dtype t, int64_t v) {
    switch (t) {
    case SHOAL_F32: ((float *)buf)[i] = (float)v; break;
    case SHOAL_F64: ((double *)buf)[i] = (double)v; break;
    case SHOAL_F16: ((uint16_t *)buf)[i] = shoal__f32_to_f16((float)v); break;
    case SHOAL_BF16: ((uint16_t *)buf)[i] = shoal__f32_to_bf16((float)v); break;
    case SHOAL_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case SHOAL_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case SHOAL_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case SHOAL_I64: ((int64_t *)buf)[i] = v; break;
    default: break;
    }
}

static double dec(const void *buf, size_t i, shoal_dtype t) {
    switch (t) {
    case SHOAL_F32: return ((const float *)buf)[i];
    case SHOAL_F64: return ((const double *)buf)[i];
    case SHOAL_F16: return shoal__f16_to_f32(((const uint16_t *)buf)[i]);
    case SHOAL_BF16: return shoal__bf16_to_f32(((const uint16_t *)buf)[i]);
    case SHOAL_I8: return ((const int8_t *)buf)[i];
    case SHOAL_U8: return ((const uint8_t *)buf)[i];
    case SHOAL_I32: return ((const int32_t *)buf)[i];
    case SHOAL_I64: return (double)((const int64_t *)buf)[i];
    default: return 0;
    }
}

/* Expected element of a reduction whose exact integer result is acc (AVG: the sum). AVG
 * divides in the type's arithmetic, as the library specifies (f16/bf16 through f32). */
static void enc_reduced(void *out, shoal_dtype t, shoal_op op, int64_t acc) {
    if (op != SHOAL_AVG) {
        enc(out, 0, t, acc);
        return;
    }
    float f = (float)acc / (float)nranks;
    switch (t) {
    case SHOAL_F32: memcpy(out, &f, 4); break;
    case SHOAL_F64: ((double *)out)[0] = (double)acc / nranks; break;
    case SHOAL_F16: ((uint16_t *)out)[0] = shoal__f32_to_f16(f); break;
    case SHOAL_BF16: ((uint16_t *)out)[0] = shoal__f32_to_bf16(f); break;
    default: enc(out, 0, t, acc / nranks); break; /* C division truncates toward zero */
    }
}

/* Expected reduction over all ranks for one period of indices: elements of the dtype. */
static unsigned char *ref_table(shoal_dtype t, shoal_op op, int cs) {
    size_t p = period(), es = shoal_dtype_size(t);
    unsigned char *tab = xmalloc(p * es);
    for (size_t i = 0; i < p; i++) {
        int64_t acc = rval(0, i, cs, op, t);
        for (int r = 1; r < nranks; r++) {
            int64_t v = rval(r, i, cs, op, t);
            switch (op) {
            case SHOAL_PROD: acc *= v; break;
            case SHOAL_MIN: acc = v < acc ? v : acc; break;
            case SHOAL_MAX: acc = v > acc ? v : acc; break;
            default: acc += v; break;
            }
        }
        enc_reduced(tab + i * es, t, op, acc);
    }
    return tab;
}

static void mismatch(const tcase *k, const char *what, size_t index, const void *got,
                     const void *want) {
    die(k, "%s index %zu: got %.9g expected %.9g", what, index, dec(got, 0, k->t),
        dec(want, 0, k->t));
}

/* buf[i] for i < len must equal the reduction at global index first + i. */
static void check_reduced(const tcase *k, const void *buf, size_t first, size_t len) {
    size_t es = shoal_dtype_size(k->t), p = period();
    unsigned char *tab = ref_table(k->t, k->op, k->cs);
    const unsigned char *b = buf;
    for (size_t i = 0; i < len; i++) {
        const unsigned char *want = tab + ((first + i) % p) * es;
        if (memcmp(b + i * es, want, es) != 0) mismatch(k, "result", first + i, b + i * es, want);
    }
    free(tab);
}

/* buf[i] for i < len must equal value(i) (a data-movement or input check). */
typedef int64_t (*val_fn)(const tcase *k, size_t i, const void *ctx);

static void check_values(const tcase *k, const char *what, const void *buf, size_t len, val_fn f,
                         const void *ctx) {
    size_t es = shoal_dtype_size(k->t);
    const unsigned char *b = buf;
    unsigned char want[8];
    for (size_t i = 0; i < len; i++) {
        enc(want, 0, k->t, f(k, i, ctx));
        if (memcmp(b + i * es, want, es) != 0) mismatch(k, what, i, b + i * es, want);
    }
}

static void check_bytes(const tcase *k, const char *what, const void *buf, int byte, size_t len) {
    const unsigned char *b = buf;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (unsigned char)byte)
            die(k, "%s: byte %zu is 0x%02x, expected untouched 0x%02x", what, i, b[i], byte);
}

#define SENTINEL 0xa5

static uint64_t fnv1a(const void *buf, size_t len) {
    const unsigned char *b = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Every rank must hold bitwise the same bytes (tensor parallelism relies on it). */
static void check_same_everywhere(const tcase *k, const void *buf, size_t len) {
    uint64_t h = fnv1a(buf, len), *all = xmalloc((size_t)nranks * sizeof *all);
    check_status(k, shoal_allgather(comm, &h, all, 1, SHOAL_I64), "checksum allgather");
    for (int r = 0; r < nranks; r++)
        if (all[r] != h)
            die(k, "ranks disagree bitwise: rank %d checksum %016" PRIx64 ", mine %016" PRIx64, r,
                all[r], h);
    free(all);
}

/* Runs the blocking call, or the non-blocking one and waits, per k->nb. */
#define RUN(k, blocking, nonblocking)                                                              \
    do {                                                                                           \
        int st_;                                                                                   \
        if ((k)->nb) {                                                                             \
            shoal_request *rq_ = NULL;                                                             \
            st_ = (nonblocking);                                                                   \
            if (st_ == SHOAL_OK) st_ = shoal_wait(rq_, NULL);                                      \
        } else {                                                                                   \
            st_ = (blocking);                                                                      \
        }                                                                                          \
        check_status((k), st_, (k)->coll);                                                         \
        cases_run++;                                                                               \
    } while (0)

/* Buffers of count 0 are sometimes NULL, which the API allows. */
static void *buf_or_null(const tcase *k, size_t bytes) {
    return bytes == 0 && (k->cs & 1) ? NULL : xmalloc(bytes);
}

static void fill_input(const tcase *k, void *buf, int r, size_t first, size_t len) {
    for (size_t i = 0; i < len; i++) enc(buf, i, k->t, rval(r, first + i, k->cs, k->op, k->t));
}

static int64_t input_at(const tcase *k, size_t i, const void *ctx) {
    (void)ctx;
    return rval(rank, i, k->cs, k->op, k->t);
}

/* ---- reducing collectives -------------------------------------------------------------------- */

static void case_allreduce(const tcase *k) {
    size_t n = k->count, bytes = n * shoal_dtype_size(k->t);
    void *send = buf_or_null(k, bytes), *recv = k->in_place ? send : buf_or_null(k, bytes);
    fill_input(k, send, rank, 0, n);
    if (!k->in_place && recv) memset(recv, SENTINEL, bytes);
    RUN(k, shoal_allreduce(comm, send, recv, n, k->t, k->op),
        shoal_iallreduce(comm, send, recv, n, k->t, k->op, &rq_));
    check_reduced(k, recv, 0, n);
    if (!k->in_place) check_values(k, "sendbuf (must be unchanged)", send, n, input_at, NULL);
    check_same_everywhere(k, recv, bytes);
    free(send);
    if (recv != send) free(recv);
}

static void case_reduce(const tcase *k) {
    size_t n = k->count, bytes = n * shoal_dtype_size(k->t);
    int root = k->root;
    void *send = buf_or_null(k, bytes), *recv = NULL;
    fill_input(k, send, rank, 0, n);
    if (k->in_place)
        recv = send;
    else if (rank == root || k->cs % 4 < 2) /* non-roots may pass NULL */
        recv = buf_or_null(k, bytes);
    if (recv && recv != send) memset(recv, SENTINEL, bytes);
    RUN(k, shoal_reduce(comm, send, recv, n, k->t, k->op, root),
        shoal_ireduce(comm, send, recv, n, k->t, k->op, root, &rq_));
    if (rank == root)
        check_reduced(k, recv, 0, n);
    else if (recv && recv != send)
        check_bytes(k, "recvbuf of a non-root (must be untouched)", recv, SENTINEL, bytes);
    if (rank != root || !k->in_place)
        check_values(k, "sendbuf (must be unchanged)", send, n, input_at, NULL);
    free(send);
    if (recv != send) free(recv);
}

static void case_reduce_scatter(const tcase *k) {
    size_t rc = k->count, es = shoal_dtype_size(k->t), total = (size_t)nranks * rc;
    unsigned char *send = buf_or_null(k, total * es), *recv;
    fill_input(k, send, rank, 0, total);
    /* in place 1: result at the start of the buffer; 2: at this rank's own block */
    if (k->in_place == 1)
        recv = send;
    else if (k->in_place == 2)
        recv = send ? send + (size_t)rank * rc * es : NULL;
    else {
        recv = buf_or_null(k, rc * es);
        if (recv) memset(recv, SENTINEL, rc * es);
    }
    RUN(k, shoal_reduce_scatter(comm, send, recv, rc, k->t, k->op),
        shoal_ireduce_scatter(comm, send, recv, rc, k->t, k->op, &rq_));
    check_reduced(k, recv, (size_t)rank * rc, rc);
    /* The rest of the input buffer is never written. */
    size_t skip_from = k->in_place ? (size_t)(recv - send) / (es ? es : 1) : total,
           skip_to = skip_from + rc;
    for (size_t i = 0; send && i < total; i++) {
        if (i >= skip_from && i < skip_to) continue;
        unsigned char want[8];
        enc(want, 0, k->t, rval(rank, i, k->cs, k->op, k->t));
        if (memcmp(send + i * es, want, es) != 0)
            mismatch(k, "sendbuf outside the result", i, send + i * es, want);
    }
    free(send);
    if (!k->in_place) free(recv);
}

/* ---- data movement --------------------------------------------------------------------------- */

typedef struct from_rank {
    int r;
    size_t base;
} from_rank;

static int64_t value_of(const tcase *k, size_t i, const void *ctx) {
    const from_rank *f = ctx;
    return mval(f->r, f->base + i, k->cs, k->t);
}

static void fill_mval(const tcase *k, void *buf, int r, size_t base, size_t len) {
    for (size_t i = 0; i < len; i++) enc(buf, i, k->t, mval(r, base + i, k->cs, k->t));
}

static void case_broadcast(const tcase *k) {
    size_t n = k->count, bytes = n * shoal_dtype_size(k->t);
    void *buf = buf_or_null(k, bytes);
    if (rank == k->root)
        fill_mval(k, buf, k->root, 0, n);
    else if (buf)
        memset(buf, SENTINEL, bytes);
    RUN(k, shoal_broadcast(comm, buf, n, k->t, k->root),
        shoal_ibroadcast(comm, buf, n, k->t, k->root, &rq_));
    from_rank f = {k->root, 0};
    check_values(k, "result", buf, n, value_of, &f);
    free(buf);
}

static void case_allgather(const tcase *k) {
    size_t c = k->count, es = shoal_dtype_size(k->t), bs = c * es;
    unsigned char *recv = buf_or_null(k, (size_t)nranks * bs), *send;
    if (recv) memset(recv, SENTINEL, (size_t)nranks * bs);
    if (k->in_place) { /* 1: sendbuf == recvbuf, 2: sendbuf at this rank's block */
        send = k->in_place == 1 ? recv : (recv ? recv + (size_t)rank * bs : NULL);
        if (recv) fill_mval(k, recv + (size_t)rank * bs, rank, 0, c);
    } else {
        send = buf_or_null(k, bs);
        fill_mval(k, send, rank, 0, c);
    }
    RUN(k, shoal_allgather(comm, send, recv, c, k->t),
        shoal_iallgather(comm, send, recv, c, k->t, &rq_));
    for (int r = 0; r < nranks; r++) {
        from_rank f = {r, 0};
        check_values(k, "result block", recv + (size_t)r * bs, c, value_of, &f);
    }
    if (!k->in_place) free(send);
    free(recv);
}

static void case_alltoall(const tcase *k) {
    size_t c = k->count, es = shoal_dtype_size(k->t), bs = c * es, total = (size_t)nranks * c;
    unsigned char *send = buf_or_null(k, total * es);
    fill_mval(k, send, rank, 0, total); /* block j, for rank j: my indices j*c .. */
    unsigned char *recv = k->in_place ? send : buf_or_null(k, total * es);
    if (!k->in_place && recv) memset(recv, SENTINEL, total * es);
    RUN(k, shoal_alltoall(comm, send, recv, c, k->t),
        shoal_ialltoall(comm, send, recv, c, k->t, &rq_));
    for (int r = 0; r < nranks; r++) { /* block r came from rank r's block for me */
        from_rank f = {r, (size_t)rank * c};
        check_values(k, "result block", recv + (size_t)r * bs, c, value_of, &f);
    }
    free(send);
    if (recv != send) free(recv);
}

/* alltoallv: rank s sends cnt(s, d) elements to d; blocks are packed with one-element gaps
 * that must stay untouched. */
static size_t vcount(size_t c, int s, int d) {
    return c == 0 ? 0 : (c + (size_t)s + 2 * (size_t)d) % (c + 1);
}

static void case_alltoallv(const tcase *k) {
    size_t c = k->count, es = shoal_dtype_size(k->t), n = (size_t)nranks;
    size_t *sc = xmalloc(4 * n * sizeof *sc), *sd = sc + n, *rc = sc + 2 * n, *rd = sc + 3 * n;
    size_t stotal = 0, rtotal = 0;
    for (int j = 0; j < nranks; j++) {
        sc[j] = vcount(c, rank, j);
        sd[j] = stotal;
        stotal += sc[j] + 1;
        rc[j] = vcount(c, j, rank);
        rd[j] = rtotal;
        rtotal += rc[j] + 1;
    }
    unsigned char *send = xmalloc(stotal * es), *recv = xmalloc(rtotal * es);
    memset(send, SENTINEL, stotal * es);
    memset(recv, SENTINEL, rtotal * es);
    for (int j = 0; j < nranks; j++) fill_mval(k, send + sd[j] * es, rank, (size_t)j << 24, sc[j]);
    RUN(k, shoal_alltoallv(comm, send, sc, sd, recv, rc, rd, k->t),
        shoal_ialltoallv(comm, send, sc, sd, recv, rc, rd, k->t, &rq_));
    for (int j = 0; j < nranks; j++) {
        from_rank f = {j, (size_t)rank << 24};
        check_values(k, "result block", recv + rd[j] * es, rc[j], value_of, &f);
        check_bytes(k, "gap after a block", recv + (rd[j] + rc[j]) * es, SENTINEL, es);
    }
    free(send);
    free(recv);
    free(sc);
}

static void case_gather(const tcase *k) {
    size_t c = k->count, es = shoal_dtype_size(k->t), bs = c * es;
    int root = k->root, at_root = rank == root;
    unsigned char *recv = NULL, *send;
    if (at_root || k->cs % 4 < 2) { /* non-roots may pass NULL */
        recv = buf_or_null(k, (size_t)nranks * bs);
        if (recv) memset(recv, SENTINEL, (size_t)nranks * bs);
    }
    if (at_root && k->in_place) { /* 1: sendbuf == recvbuf, 2: sendbuf at root's block */
        send = k->in_place == 1 ? recv : (recv ? recv + (size_t)root * bs : NULL);
        if (recv) fill_mval(k, recv + (size_t)root * bs, root, 0, c);
    } else {
        send = buf_or_null(k, bs);
        fill_mval(k, send, rank, 0, c);
    }
    RUN(k, shoal_gather(comm, send, recv, c, k->t, root),
        shoal_igather(comm, send, recv, c, k->t, root, &rq_));
    if (at_root) {
        for (int r = 0; r < nranks; r++) {
            from_rank f = {r, 0};
            check_values(k, "result block", recv + (size_t)r * bs, c, value_of, &f);
        }
    } else if (recv) {
        check_bytes(k, "recvbuf of a non-root (must be untouched)", recv, SENTINEL,
                    (size_t)nranks * bs);
    }
    if (!(at_root && k->in_place)) free(send);
    free(recv);
}

static void case_scatter(const tcase *k) {
    size_t c = k->count, es = shoal_dtype_size(k->t), bs = c * es;
    int root = k->root, at_root = rank == root;
    unsigned char *send = NULL, *recv;
    if (at_root) {
        send = buf_or_null(k, (size_t)nranks * bs);
        for (int r = 0; send && r < nranks; r++) fill_mval(k, send + (size_t)r * bs, r, 0, c);
    } else if (k->cs % 4 < 2) { /* non-roots may pass NULL */
        send = buf_or_null(k, (size_t)nranks * bs);
        if (send) memset(send, SENTINEL, (size_t)nranks * bs);
    }
    if (at_root && k->in_place) /* 1: recvbuf == sendbuf, 2: recvbuf at root's block */
        recv = k->in_place == 1 ? send : (send ? send + (size_t)root * bs : NULL);
    else {
        recv = buf_or_null(k, bs);
        if (recv) memset(recv, SENTINEL, bs);
    }
    RUN(k, shoal_scatter(comm, send, recv, c, k->t, root),
        shoal_iscatter(comm, send, recv, c, k->t, root, &rq_));
    from_rank f = {rank, 0};
    if (at_root && k->in_place) { /* root's block stays where it is; nothing else moves */
        for (int r = 0; send && r < nranks; r++) {
            from_rank g = {r, 0};
            check_values(k, "root's sendbuf (must be unchanged)", send + (size_t)r * bs, c,
                         value_of, &g);
        }
    } else {
        check_values(k, "result", recv, c, value_of, &f);
    }
    free(send);
    if (!(at_root && k->in_place)) free(recv);
}

/* ---- the matrix ------------------------------------------------------------------------------ */

typedef struct coll_desc {
    const char *name;
    void (*run)(const tcase *k);
    int reduces;        /* iterate over ops */
    int in_place_forms; /* 0: none, 1: one form, 2: two forms (alternated by case) */
    int per_rank;       /* count is per rank: the large case is divided by N */
} coll_desc;

static const coll_desc colls[] = {
    {"allreduce", case_allreduce, 1, 1, 0},
    {"reduce", case_reduce, 1, 1, 0},
    {"reduce_scatter", case_reduce_scatter, 1, 2, 1},
    {"broadcast", case_broadcast, 0, 0, 0},
    {"allgather", case_allgather, 0, 2, 1},
    {"alltoall", case_alltoall, 0, 1, 1},
    {"alltoallv", case_alltoallv, 0, 0, 1},
    {"gather", case_gather, 0, 2, 1},
    {"scatter", case_scatter, 0, 2, 1},
};

static int case_no;

static void run_one(const coll_desc *d, shoal_dtype t, shoal_op op, size_t count, int in_place) {
    tcase k = {d->name, t, op, count, 0, 0, 0, case_no++};
    if (in_place) k.in_place = d->in_place_forms == 2 ? 1 + (k.cs / 2) % 2 : 1;
    k.nb = k.cs % 2;
    k.root = (k.cs / 3) % nranks;
    d->run(&k);
}

static void run_matrix(size_t big) {
    size_t counts[5] = {0, 1, 7, (size_t)nranks - 1, big};
    for (int ci = 0; ci < 5; ci++) {
        int dup = 0;
        for (int cj = 0; cj < ci; cj++) dup |= counts[cj] == counts[ci];
        if (dup) continue;
        int large = counts[ci] >= 65536; /* the reduced matrix of the large count */
        double t0 = now_s();
        long before = cases_run;
        for (size_t di = 0; di < sizeof colls / sizeof colls[0]; di++) {
            const coll_desc *d = &colls[di];
            size_t count = d->per_rank && counts[ci] == big
                               ? (big + (size_t)nranks - 1) / (size_t)nranks
                               : counts[ci];
            double tc = now_s();
            for (size_t ti = 0; ti < NDTYPES; ti++) {
                int nops = d->reduces ? SHOAL_OP_COUNT : 1;
                for (int op = 0; op < nops; op++) {
                    if (large && op != SHOAL_SUM && dtypes[ti] != SHOAL_F32) continue;
                    for (int ip = 0; ip <= (d->in_place_forms ? 1 : 0); ip++) {
                        if (large && d->in_place_forms && ip != (int)(ti % 2)) continue;
                        run_one(d, dtypes[ti], (shoal_op)op, count, ip);
                    }
                }
            }
            if (rank == 0 && getenv("SHOAL_TEST_VERBOSE"))
                printf("  %s count=%zu: %.3f s\n", d->name, count, now_s() - tc);
        }
        if (rank == 0)
            printf("test_coll_matrix: n=%d algo=%s count=%zu: %ld cases ok in %.2f s\n", nranks,
                   algo, counts[ci], cases_run - before, now_s() - t0);
    }
}

/* Inexact floats: ranks must still agree bitwise, and be near the exact sum. */
static void run_inexact(size_t count) {
    const shoal_dtype ts[] = {SHOAL_F32, SHOAL_F64, SHOAL_F16, SHOAL_BF16};
    for (size_t ti = 0; ti < 4; ti++) {
        for (int avg = 0; avg < 2; avg++) {
            shoal_dtype t = ts[ti];
            size_t es = shoal_dtype_size(t);
            tcase k = {"allreduce (inexact floats)",
                       t,
                       avg ? SHOAL_AVG : SHOAL_SUM,
                       count,
                       0,
                       0,
                       0,
                       case_no++};
            unsigned char *send = xmalloc(count * es), *recv = xmalloc(count * es), tmp[8];
            double *exact = calloc(count ? count : 1, sizeof *exact),
                   *mag = calloc(count ? count : 1, sizeof *mag);
            if (!exact || !mag) die(&k, "out of memory");
            for (int r = 0; r < nranks; r++) {
                for (size_t i = 0; i < count; i++) {
                    uint64_t h = (uint64_t)mval(r, i, k.cs, SHOAL_U8) * 1000003u +
                                 (uint64_t)mval(r + 7, i, k.cs, SHOAL_U8);
                    double x = ((double)(h % 20011) - 10005.0) / 997.0; /* not exact in any type */
                    unsigned char *dst = r == rank ? send + i * es : tmp;
                    switch (t) {
                    case SHOAL_F32: ((float *)dst)[0] = (float)x; break;
                    case SHOAL_F64: ((double *)dst)[0] = x; break;
                    case SHOAL_F16: ((uint16_t *)dst)[0] = shoal__f32_to_f16((float)x); break;
                    default: ((uint16_t *)dst)[0] = shoal__f32_to_bf16((float)x); break;
                    }
                    double v = dec(dst, 0, t);
                    exact[i] += v;
                    mag[i] += fabs(v);
                }
            }
            RUN(&k, shoal_allreduce(comm, send, recv, count, t, k.op), SHOAL_OK);
            check_same_everywhere(&k, recv, count * es);
            double eps = t == SHOAL_F32   ? 0x1p-24
                         : t == SHOAL_F64 ? 0x1p-53
                         : t == SHOAL_F16 ? 0x1p-11
                                          : 0x1p-8;
            for (size_t i = 0; i < count; i++) {
                double want = avg ? exact[i] / nranks : exact[i], got = dec(recv, i, t);
                double tol = 2 * nranks * eps * (avg ? mag[i] / nranks : mag[i]) +
                             (avg ? 2 * eps * fabs(want) : 0);
                if (!(fabs(got - want) <= tol))
                    die(&k, "index %zu: got %.9g, exact %.9g (tolerance %.3g)", i, got, want, tol);
            }
            free(send);
            free(recv);
            free(exact);
            free(mag);
        }
    }
}

/* iallreduce and iallgather in flight while point-to-point messages go around the ring on user
 * tags: neither may block or corrupt the other. */
static void run_overlap(void) {
    tcase k = {"overlap (iallreduce + iallgather + p2p)",
               SHOAL_F32,
               SHOAL_SUM,
               100000,
               0,
               1,
               0,
               case_no++};
    size_t n = k.count, g = 1000;
    float *a = xmalloc(n * 4);
    int32_t *gs = xmalloc(g * 4), *gr = xmalloc(g * 4 * (size_t)nranks);
    fill_input(&k, a, rank, 0, n);
    for (size_t i = 0; i < g; i++) gs[i] = rank * 1000000 + (int32_t)i;
    shoal_request *ra = NULL, *rg = NULL;
    check_status(&k, shoal_iallreduce(comm, a, a, n, SHOAL_F32, SHOAL_SUM, &ra), "iallreduce");
    check_status(&k, shoal_iallgather(comm, gs, gr, g, SHOAL_I32, &rg), "iallgather");
    int next = (rank + 1) % nranks, prev = (rank + nranks - 1) % nranks;
    for (int m = 0; m < 20; m++) {
        int32_t out[64], in[64];
        for (int i = 0; i < 64; i++) out[i] = rank * 100000 + m * 100 + i;
        shoal_request *rs = NULL;
        shoal_msg_info info;
        check_status(&k, shoal_isend(comm, out, sizeof out, next, 500 + m, &rs), "isend");
        check_status(&k, shoal_recv(comm, in, sizeof in, prev, 500 + m, &info), "recv");
        check_status(&k, shoal_wait(rs, NULL), "wait(send)");
        for (int i = 0; i < 64; i++)
            if (in[i] != prev * 100000 + m * 100 + i)
                die(&k, "p2p message %d word %d: got %d", m, i, (int)in[i]);
        if (info.source != prev || info.tag != 500 + m || info.bytes != sizeof in)
            die(&k, "p2p message %d: info source %d tag %d bytes %zu", m, info.source, info.tag,
                info.bytes);
    }
    check_status(&k, shoal_wait(ra, NULL), "wait(iallreduce)");
    check_status(&k, shoal_wait(rg, NULL), "wait(iallgather)");
    check_reduced(&k, a, 0, n);
    for (int r = 0; r < nranks; r++)
        for (size_t i = 0; i < g; i++)
            if (gr[(size_t)r * g + i] != r * 1000000 + (int32_t)i)
                die(&k, "iallgather block %d index %zu: got %d", r, i, (int)gr[(size_t)r * g + i]);
    /* Every non-blocking form once more, all in flight together, then waited in reverse. */
    shoal_request *reqs[3];
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    check_status(&k, shoal_ibarrier(comm, &reqs[0]), "ibarrier");
    check_status(&k, shoal_iallreduce(comm, x, y, 8, SHOAL_F32, SHOAL_MAX, &reqs[1]), "iallreduce");
    check_status(&k, shoal_ibarrier(comm, &reqs[2]), "ibarrier");
    for (int i = 2; i >= 0; i--) check_status(&k, shoal_wait(reqs[i], NULL), "wait");
    for (int i = 0; i < 8; i++)
        if (y[i] != x[i]) die(&k, "iallreduce max index %d: got %g", i, y[i]);
    free(a);
    free(gs);
    free(gr);
}

/* Bad arguments: SHOAL_ERR_INVALID with a message, no tag taken, the group still works. */
static void expect_invalid(int st, const char *call) {
    tcase k = {call, SHOAL_F32, SHOAL_SUM, 0, 0, 0, 0, case_no};
    if (st != SHOAL_ERR_INVALID)
        die(&k, "returned %s, expected invalid argument", shoal_status_str(st));
    const char *e = shoal_comm_last_error(comm);
    if (!e || !*e) die(&k, "no error text");
    if (rank == 0 && getenv("SHOAL_TEST_VERBOSE")) printf("  %s -> %s\n", call, e);
}

static void run_errors(void) {
    float a[4] = {1, 2, 3, 4}, b[4 * 64];
    size_t cnt[64] = {0}, dsp[64] = {0};
    shoal_request *req = NULL;
    expect_invalid(shoal_allreduce(comm, a, b, 4, (shoal_dtype)99, SHOAL_SUM),
                   "allreduce bad dtype");
    expect_invalid(shoal_allreduce(comm, a, b, 4, (shoal_dtype)-1, SHOAL_SUM),
                   "allreduce negative dtype");
    expect_invalid(shoal_allreduce(comm, a, b, 4, SHOAL_F32, (shoal_op)7), "allreduce bad op");
    expect_invalid(shoal_iallreduce(comm, a, b, 4, SHOAL_F32, (shoal_op)-2, &req),
                   "iallreduce bad op");
    if (req) die(NULL, "a failed iallreduce left a request");
    expect_invalid(shoal_iallreduce(comm, a, b, 4, SHOAL_F32, SHOAL_SUM, NULL),
                   "iallreduce NULL req");
    expect_invalid(shoal_allreduce(comm, NULL, b, 4, SHOAL_F32, SHOAL_SUM),
                   "allreduce NULL sendbuf");
    expect_invalid(shoal_allreduce(comm, a, b, SIZE_MAX / 2, SHOAL_F32, SHOAL_SUM),
                   "allreduce count overflow");
    expect_invalid(shoal_broadcast(comm, a, 4, SHOAL_F32, nranks), "broadcast root = size");
    expect_invalid(shoal_broadcast(comm, a, 4, SHOAL_F32, -1), "broadcast root -1");
    expect_invalid(shoal_reduce(comm, a, b, 4, SHOAL_F32, SHOAL_SUM, nranks + 3),
                   "reduce bad root");
    expect_invalid(shoal_reduce(comm, a, b, 4, SHOAL_I8, (shoal_op)5, 0), "reduce bad op");
    expect_invalid(shoal_gather(comm, a, b, 4, SHOAL_F32, -5), "gather bad root");
    expect_invalid(shoal_scatter(comm, a, b, 4, (shoal_dtype)8, 0), "scatter bad dtype");
    expect_invalid(shoal_allgather(comm, a, b, SIZE_MAX / 3, SHOAL_F16),
                   "allgather count too large");
    expect_invalid(shoal_allgather(comm, a, b, SIZE_MAX / 2, SHOAL_F32),
                   "allgather count overflow");
    expect_invalid(shoal_reduce_scatter(comm, a, b, 1, SHOAL_F32, (shoal_op)100),
                   "reduce_scatter bad op");
    expect_invalid(shoal_alltoall(comm, a, NULL, 1, SHOAL_F32), "alltoall NULL recvbuf");
    expect_invalid(shoal_alltoallv(comm, b, cnt, dsp, b, cnt, dsp, SHOAL_F32),
                   "alltoallv in place");
    expect_invalid(shoal_alltoallv(comm, a, NULL, dsp, b, cnt, dsp, SHOAL_F32),
                   "alltoallv NULL counts");
    expect_invalid(shoal_ibarrier(comm, NULL), "ibarrier NULL req");
    if (shoal_allreduce(NULL, a, b, 4, SHOAL_F32, SHOAL_SUM) != SHOAL_ERR_INVALID ||
        shoal_barrier(NULL) != SHOAL_ERR_INVALID)
        die(NULL, "a NULL comm must give SHOAL_ERR_INVALID");
    /* Still in step: a barrier and a correct allreduce. */
    tcase k = {"allreduce after argument errors", SHOAL_F32, SHOAL_SUM, 4, 0, 0, 0, case_no++};
    check_status(&k, shoal_barrier(comm), "barrier");
    fill_input(&k, a, rank, 0, 4);
    check_status(&k, shoal_allreduce(comm, a, b, 4, SHOAL_F32, SHOAL_SUM), "allreduce");
    check_reduced(&k, b, 0, 4);
}

/* One 64 MiB f32 allreduce (in place), exact integers. */
static void run_big(void) {
    tcase k = {"allreduce 64 MiB", SHOAL_F32, SHOAL_SUM, (64u << 20) / 4, 1, 0, 0, case_no++};
    float *buf = xmalloc(k.count * 4);
    fill_input(&k, buf, rank, 0, k.count);
    check_status(&k, shoal_barrier(comm), "barrier");
    double t0 = now_s();
    RUN(&k, shoal_allreduce(comm, buf, buf, k.count, SHOAL_F32, SHOAL_SUM), SHOAL_OK);
    double dt = now_s() - t0;
    check_reduced(&k, buf, 0, k.count);
    check_same_everywhere(&k, buf, k.count * 4);
    if (rank == 0)
        printf("test_coll_matrix: n=%d algo=%s 64 MiB f32 allreduce ok: %.3f s (algbw %.2f GB/s)\n",
               nranks, algo, dt, 64.0 * 1048576 / dt / 1e9);
    free(buf);
}

int main(int argc, char **argv) {
    int big = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--big") == 0)
            big = 1;
        else {
            fprintf(stderr, "usage: test_coll_matrix [--big] (run under shoal launch)\n");
            return 2;
        }
    }
    const char *q = getenv("SHOAL_TEST_QUICK");
    quick = q && *q && strcmp(q, "0") != 0;
    const char *a = getenv("SHOAL_ALGO");
    if (a && *a) algo = a;
    double t0 = now_s();
    int st = shoal_comm_init(&comm, NULL);
    if (st != SHOAL_OK) {
        fprintf(stderr, "test_coll_matrix: shoal_comm_init: %s: %s\n", shoal_status_str(st),
                shoal_comm_init_error());
        return 1;
    }
    rank = shoal_comm_rank(comm);
    nranks = shoal_comm_size(comm);
    if (big && !quick) {
        run_big();
    } else {
        run_errors();
        run_overlap();
        run_inexact(7);
        run_inexact(quick ? 4099 : 100003);
        run_matrix(quick ? 4099 : (size_t)1 << 20);
    }
    tcase k = {"final barrier", SHOAL_F32, SHOAL_SUM, 0, 0, 0, 0, 0};
    check_status(&k, shoal_barrier(comm), "barrier");
    shoal_comm_free(comm);
    if (rank == 0)
        printf("test_coll_matrix: n=%d algo=%s: all %ld cases ok in %.2f s\n", nranks, algo,
               cases_run, now_s() - t0);
    return 0;
}
