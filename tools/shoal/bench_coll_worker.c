/* One rank of `shoal bench coll`: joins the group the launcher set up, runs the sweep and, on
 * rank 0, prints the table.
 *
 * Per size: warm-up calls, then timed calls each after a barrier; the per-iteration times are
 * reduced with MAX to rank 0 (the slowest rank defines an iteration) and the median is
 * reported. With --check a separate, untimed call per size is verified element by element
 * against a reference every rank computes serially from the known inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_coll.h"
#include "cli.h"

/* ---- element access by dtype. The inputs are small non-negative integers and the checked
 * results sums of at most 2n of them, which every dtype holds exactly for n <= 128 (bf16 has
 * 8 significant bits, f16 11); integer sums beyond the type's range wrap in both the
 * collective and the reference. */

static uint16_t f16_from_double(double v) {
    /* Exact for integers |v| <= 2048, which is all this file stores. */
    uint16_t sign = v < 0 ? 0x8000 : 0;
    double a = fabs(v);
    if (a == 0) return sign;
    int e;
    double m = frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 */
    int exp = e - 1 + 15;
    uint16_t mant = (uint16_t)((m * 2 - 1) * 1024.0 + 0.5);
    return (uint16_t)(sign | (exp << 10) | (mant & 0x3ff));
}

static uint16_t bf16_from_double(double v) {
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (uint16_t)(bits >> 16); /* exact for the small integers used here */
}

static void set_elem(shoal_dtype t, void *buf, size_t i, double v) {
    int64_t iv = (int64_t)v;
    switch (t) {
    case SHOAL_F32: ((float *)buf)[i] = (float)v; break;
    case SHOAL_F64: ((double *)buf)[i] = v; break;
    case SHOAL_F16: ((uint16_t *)buf)[i] = f16_from_double(v); break;
    case SHOAL_BF16: ((uint16_t *)buf)[i] = bf16_from_double(v); break;
    case SHOAL_I8: ((int8_t *)buf)[i] = (int8_t)(uint8_t)iv; break; /* wraps, as the op does */
    case SHOAL_U8: ((uint8_t *)buf)[i] = (uint8_t)iv; break;
    case SHOAL_I32: ((int32_t *)buf)[i] = (int32_t)(uint32_t)iv; break;
    case SHOAL_I64: ((int64_t *)buf)[i] = iv; break;
    default: break;
    }
}

/* Input element idx of rank r's send buffer. */
static int input_value(int r, size_t idx) { return (int)((idx + (size_t)r) % 3); }

/* ---- one call of the collective under test -------------------------------------------------- */

typedef struct bench_bufs {
    void *send, *recv; /* sized for the largest shape */
} bench_bufs;

static int run_op(shoal_comm *c, bench_op op, const bench_shape *s, shoal_dtype t,
                  bench_bufs *b, int rank) {
    switch (op) {
    case BENCH_ALLREDUCE: return shoal_allreduce(c, b->send, b->recv, s->count, t, SHOAL_SUM);
    case BENCH_ALLGATHER: return shoal_allgather(c, b->send, b->recv, s->count, t);
    case BENCH_REDUCE_SCATTER:
        return shoal_reduce_scatter(c, b->send, b->recv, s->count, t, SHOAL_SUM);
    case BENCH_BROADCAST:
        /* The root sends from its (unchanging) input; the others receive into recv. */
        return shoal_broadcast(c, rank == 0 ? b->send : b->recv, s->count, t, 0);
    case BENCH_REDUCE: return shoal_reduce(c, b->send, b->recv, s->count, t, SHOAL_SUM, 0);
    case BENCH_ALLTOALL: return shoal_alltoall(c, b->send, b->recv, s->count, t);
    case BENCH_PINGPONG: {
        /* rank 1 echoes what it received, so --check sees rank 0's input on both */
        size_t len = s->count * shoal_dtype_size(t);
        int rc = SHOAL_OK;
        for (int k = 0, nb = bench_pp_batch(s->bytes); k < nb && rc == SHOAL_OK; k++) {
            if (rank == 0 && (rc = shoal_send(c, b->send, len, 1, 7)) == SHOAL_OK)
                rc = shoal_recv(c, b->recv, len, 1, 7, NULL);
            if (rank == 1 && (rc = shoal_recv(c, b->recv, len, 0, 7, NULL)) == SHOAL_OK)
                rc = shoal_send(c, b->recv, len, 0, 7);
        }
        return rc;
    }
    default: return SHOAL_ERR_INVALID;
    }
}

/* The expected value of element i of rank r's result, or -1 where r has no result (reduce on
 * a non-root, broadcast on the root). */
static long long expected(bench_op op, const bench_shape *s, int r, int n, size_t i) {
    long long sum = 0;
    switch (op) {
    case BENCH_ALLREDUCE:
    case BENCH_REDUCE:
        if (op == BENCH_REDUCE && r != 0) return -1;
        for (int k = 0; k < n; k++) sum += input_value(k, i);
        return sum;
    case BENCH_BROADCAST: return r == 0 ? -1 : input_value(0, i);
    case BENCH_ALLGATHER: return input_value((int)(i / s->count), i % s->count);
    case BENCH_REDUCE_SCATTER:
        for (int k = 0; k < n; k++) sum += input_value(k, (size_t)r * s->count + i);
        return sum;
    case BENCH_ALLTOALL:
        /* Block k of my result is block r of rank k's input. */
        return input_value((int)(i / s->count), (size_t)r * s->count + i % s->count);
    case BENCH_PINGPONG: return r <= 1 ? input_value(0, i) : -1;
    default: return -1;
    }
}

/* Runs one untimed call on a poisoned receive buffer and counts wrong elements. */
static int check_size(shoal_comm *c, bench_op op, const bench_shape *s, shoal_dtype t,
                      bench_bufs *b, int rank, int n, long long *wrong) {
    size_t elem = shoal_dtype_size(t);
    /* -1 is never a correct result (inputs and sums are >= 0), so a call that writes nothing
     * cannot pass. */
    for (size_t i = 0; i < s->recv_elems; i++) set_elem(t, b->recv, i, -1);
    int rc = run_op(c, op, s, t, b, rank);
    if (rc != SHOAL_OK) return rc;
    *wrong = 0;
    if (expected(op, s, rank, n, 0) < 0) return SHOAL_OK;
    unsigned char want[8];
    for (size_t i = 0; i < s->recv_elems; i++) {
        set_elem(t, want, 0, (double)expected(op, s, rank, n, i));
        if (memcmp((unsigned char *)b->recv + i * elem, want, elem) != 0) {
            if (*wrong == 0)
                fprintf(stderr, "shoal bench coll: rank %d: %s of %llu bytes: element %zu is "
                        "wrong (expected %lld)\n", rank, bench_op_name(op),
                        (unsigned long long)s->bytes, i, expected(op, s, rank, n, i));
            (*wrong)++;
        }
    }
    return SHOAL_OK;
}

static int fail(shoal_comm *c, int rank, const char *what, int rc) {
    fprintf(stderr, "shoal bench coll: rank %d: %s failed: %s: %s\n", rank, what,
            shoal_status_str(rc), shoal_comm_last_error(c));
    return CLI_EXIT_FAIL;
}

/* Measures one size; rank 0 prints its row. Returns a shoal status. */
static int measure(shoal_comm *c, const struct bench_coll_opts *o, const bench_shape *s,
                   bench_bufs *b, double *times, double *slowest, long long *total_wrong) {
    int rank = shoal_comm_rank(c), n = shoal_comm_size(c);
    int iters = bench_iters_for(s->bytes, o->iters);
    int warmup = bench_warmup_for(o->warmup, o->iters, iters);
    int rc;
    for (int i = 0; i < warmup; i++)
        if ((rc = run_op(c, o->op, s, o->dtype, b, rank)) != SHOAL_OK) return rc;
    for (int i = 0; i < iters; i++) {
        if ((rc = shoal_barrier(c)) != SHOAL_OK) return rc;
        double t0 = bench_now();
        if ((rc = run_op(c, o->op, s, o->dtype, b, rank)) != SHOAL_OK) return rc;
        times[i] = bench_iter_time(o->op, s->bytes, bench_now() - t0);
    }
    rc = shoal_reduce(c, times, slowest, (size_t)iters, SHOAL_F64, SHOAL_MAX, 0);
    if (rc != SHOAL_OK) return rc;
    long long wrong = -1, wrong_all = 0;
    if (o->check) {
        if ((rc = check_size(c, o->op, s, o->dtype, b, rank, n, &wrong)) != SHOAL_OK) return rc;
        rc = shoal_reduce(c, &wrong, &wrong_all, 1, SHOAL_I64, SHOAL_SUM, 0);
        if (rc != SHOAL_OK) return rc;
        wrong = wrong_all;
        *total_wrong += wrong_all;
    }
    if (rank == 0) bench_print_row(stdout, o->op, n, s->bytes, bench_median(slowest, iters), wrong);
    return SHOAL_OK;
}

int bench_coll_worker(const struct bench_coll_opts *o) {
    shoal_comm_config cfg = SHOAL_COMM_CONFIG_INIT;
    cfg.algo = o->algo;
    shoal_comm *c = NULL;
    int rc = shoal_comm_init(&c, &cfg);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "shoal bench coll: joining the group failed: %s: %s\n",
                shoal_status_str(rc), shoal_comm_init_error());
        return CLI_EXIT_FAIL;
    }
    int rank = shoal_comm_rank(c), n = shoal_comm_size(c), exit_code = CLI_EXIT_FAIL;
    size_t elem = shoal_dtype_size(o->dtype);
    bench_shape big = bench_shape_of(o->op, o->max_bytes, elem, n);
    bench_bufs b = {malloc(big.send_elems * elem), malloc(big.recv_elems * elem)};
    double *times = malloc((size_t)o->iters * sizeof *times);
    double *slowest = malloc((size_t)o->iters * sizeof *slowest);
    long long total_wrong = 0;
    if (!b.send || !b.recv || !times || !slowest) {
        fprintf(stderr, "shoal bench coll: rank %d: out of memory for %llu-byte buffers\n", rank,
                (unsigned long long)big.bytes);
        goto out;
    }
    /* The inputs never change (no call writes its send buffer), so one fill serves every
     * size: a smaller shape reads a prefix of the same pattern. */
    for (size_t i = 0; i < big.send_elems; i++) set_elem(o->dtype, b.send, i, input_value(rank, i));
    memset(b.recv, 0, big.recv_elems * elem);

    if (rank == 0) {
        printf("# shoal bench coll: %s, %d ranks, %s, algo %s, iters %d, warmup %d, check %s\n",
               bench_op_name(o->op), n, shoal_dtype_name(o->dtype), o->algo, o->iters,
               o->warmup, o->check ? "on" : "off");
        printf("# time: median over iterations of the slowest rank; busbw = algbw * %.3f\n",
               bench_busbw_factor(o->op, n));
        bench_print_header(stdout, o->check);
    }
    uint64_t last = 0;
    for (uint64_t bytes = o->min_bytes; bytes <= o->max_bytes; bytes *= 2) {
        bench_shape s = bench_shape_of(o->op, bytes, elem, n);
        /* Rounding to whole per-rank blocks can map two sizes to one; measure it once. */
        if (s.bytes != last && s.bytes <= big.bytes) {
            if ((rc = measure(c, o, &s, &b, times, slowest, &total_wrong)) != SHOAL_OK) {
                exit_code = fail(c, rank, bench_op_name(o->op), rc);
                goto out;
            }
        }
        last = s.bytes;
        if (bytes > UINT64_MAX / 2) break;
    }
    if (o->check && rank == 0) {
        printf("# check: %lld wrong elements in total\n", total_wrong);
        fflush(stdout);
    }
    exit_code = total_wrong ? CLI_EXIT_FAIL : 0;
out:
    free(b.send);
    free(b.recv);
    free(times);
    free(slowest);
    shoal_comm_free(c);
    return exit_code;
}
