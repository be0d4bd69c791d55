/* The collective benchmark's sweep, shared by `shoal bench coll` (tools/shoal) and the Open MPI
 * reference (bench/mpi_coll_bench.c) so both measure the same sizes with the same iteration
 * policy and print the same columns. Header-only and free of libshoal, so the MPI program can
 * use it without linking shoal.
 *
 * Definitions follow nccl-tests (doc/PERFORMANCE.md):
 *   bytes  allreduce, broadcast, reduce: the buffer; allgather: the gathered result
 *          (n * per-rank block); reduce_scatter: the input (n * per-rank result);
 *          alltoall: what each rank sends (n blocks)
 *   algbw  bytes / time, in GB/s (1e9)
 *   busbw  algbw * factor: 2(n-1)/n all-reduce; (n-1)/n all-gather, reduce-scatter, all-to-all;
 *          1 broadcast, reduce. It is comparable to the link bandwidth whatever n is.
 *   pingpong  osu_latency's definition: ranks 0 and 1 bounce one message back and forth;
 *          time is half a round trip (averaged over a batch of round trips, then the median
 *          over batches); algbw = bytes / that time. Other ranks idle. */
#ifndef SHOAL_BENCH_SWEEP_H
#define SHOAL_BENCH_SWEEP_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum bench_op {
    BENCH_ALLREDUCE = 0,
    BENCH_ALLGATHER,
    BENCH_REDUCE_SCATTER,
    BENCH_BROADCAST,
    BENCH_REDUCE,
    BENCH_ALLTOALL,
    BENCH_PINGPONG,
    BENCH_NOPS
} bench_op;

#define BENCH_OP_LIST "allreduce|allgather|reduce_scatter|broadcast|reduce|alltoall|pingpong"

/* Iteration policy: `iters` timed runs (after `warmup` untimed ones) for small sizes; large
 * sizes are capped so that one size moves about BENCH_BYTES_PER_SIZE through the collective,
 * never fewer than BENCH_MIN_ITERS (a median needs a few samples). With the defaults a sweep
 * 8 B..64 MiB on 4 local ranks takes well under a minute (about 15 s on 2 cores). */
#define BENCH_DEFAULT_ITERS 20
#define BENCH_DEFAULT_WARMUP 5
#define BENCH_MIN_ITERS 5
#define BENCH_BYTES_PER_SIZE (512ull << 20)

static inline const char *bench_op_name(bench_op op) {
    switch (op) {
    case BENCH_ALLREDUCE: return "allreduce";
    case BENCH_ALLGATHER: return "allgather";
    case BENCH_REDUCE_SCATTER: return "reduce_scatter";
    case BENCH_BROADCAST: return "broadcast";
    case BENCH_REDUCE: return "reduce";
    case BENCH_ALLTOALL: return "alltoall";
    case BENCH_PINGPONG: return "pingpong";
    default: return "?";
    }
}

static inline int bench_op_parse(const char *s, bench_op *op) {
    for (int i = 0; i < BENCH_NOPS; i++) {
        if (strcmp(s, bench_op_name((bench_op)i)) == 0) {
            *op = (bench_op)i;
            return 0;
        }
    }
    return -1;
}

static inline double bench_busbw_factor(bench_op op, int n) {
    switch (op) {
    case BENCH_ALLREDUCE: return 2.0 * (n - 1) / n;
    case BENCH_ALLGATHER:
    case BENCH_REDUCE_SCATTER:
    case BENCH_ALLTOALL: return (double)(n - 1) / n;
    default: return 1.0;
    }
}

/* Element counts of one size. A per-rank block never has fewer than one element, so tiny
 * sizes are rounded up; bytes is the size actually measured. */
typedef struct bench_shape {
    uint64_t bytes;    /* as defined above */
    size_t count;      /* the count argument of the call (per-rank block for the blocked ops) */
    size_t send_elems; /* elements of the send buffer */
    size_t recv_elems; /* elements of the receive buffer */
} bench_shape;

static inline bench_shape bench_shape_of(bench_op op, uint64_t bytes, size_t elem, int n) {
    bench_shape s;
    size_t total = (size_t)(bytes / elem);
    if (total < 1) total = 1;
    switch (op) {
    case BENCH_ALLGATHER:
    case BENCH_REDUCE_SCATTER:
    case BENCH_ALLTOALL: {
        size_t per = total / (size_t)n;
        if (per < 1) per = 1;
        s.count = per;
        s.send_elems = op == BENCH_ALLGATHER ? per : per * (size_t)n;
        s.recv_elems = op == BENCH_REDUCE_SCATTER ? per : per * (size_t)n;
        s.bytes = (uint64_t)per * (uint64_t)n * elem;
        break;
    }
    default:
        s.count = s.send_elems = s.recv_elems = total;
        s.bytes = (uint64_t)total * elem;
        break;
    }
    return s;
}

/* "4096", "8K", "64M", "1G" (binary multiples; "KiB"/"KB"/"k" accepted). 0 on success. */
static inline int bench_parse_size(const char *text, uint64_t *out) {
    if (!text || !isdigit((unsigned char)text[0])) return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno) return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (shift && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    if (v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Timed iterations for one size (bytes as in bench_shape). */
static inline int bench_iters_for(uint64_t bytes, int iters) {
    uint64_t cap = BENCH_BYTES_PER_SIZE / (bytes ? bytes : 1);
    if (cap < BENCH_MIN_ITERS) cap = BENCH_MIN_ITERS;
    return (uint64_t)iters < cap ? iters : (int)cap;
}

/* Round trips per timed pingpong iteration: enough that a batch of small messages lasts far
 * longer than the clock's resolution, one for large messages. */
static inline int bench_pp_batch(uint64_t bytes) {
    uint64_t b = (1u << 20) / (bytes ? bytes : 1);
    return b < 1 ? 1 : b > 100 ? 100 : (int)b;
}

/* The reported time of one timed iteration of t seconds. */
static inline double bench_iter_time(bench_op op, uint64_t bytes, double t) {
    return op == BENCH_PINGPONG ? t / (2.0 * bench_pp_batch(bytes)) : t;
}

/* Warm-up runs scale down with the timed ones (one at least: the first call of a size pays
 * for page faults of fresh buffers). */
static inline int bench_warmup_for(int warmup, int iters, int iters_for) {
    if (warmup <= 0) return 0;
    long w = (long)warmup * iters_for / (iters > 0 ? iters : 1);
    return w < 1 ? 1 : (int)w;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n-1] (sorts v). */
static inline double bench_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The table: comment lines start with '#', rows are whitespace-separated numbers (what
 * bench/compare_mpi.sh parses: columns 1-4 are the same in both programs). */
static inline void bench_print_header(FILE *f, int with_errors) {
    fprintf(f, "#%13s %12s %12s %12s%s\n", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s",
            with_errors ? "       errors" : "");
}

/* errors < 0: no errors column. seconds is the median per-iteration time. */
static inline void bench_print_row(FILE *f, bench_op op, int n, uint64_t bytes, double seconds,
                                   long long errors) {
    double algbw = seconds > 0 ? (double)bytes / seconds / 1e9 : 0;
    double busbw = algbw * bench_busbw_factor(op, n);
    fprintf(f, "%14llu %12.2f %12.3f %12.3f", (unsigned long long)bytes, seconds * 1e6, algbw,
            busbw);
    if (errors >= 0) fprintf(f, " %12lld", errors);
    fputc('\n', f);
    fflush(f);
}

#endif
