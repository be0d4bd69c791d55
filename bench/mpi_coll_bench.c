/* The Open MPI reference for `shoal bench coll`: the same sweep, iteration policy and table
 * (tools/shoal/bench_sweep.h) over MPI_Allreduce, MPI_Allgather, MPI_Reduce_scatter_block,
 * MPI_Bcast, MPI_Reduce and MPI_Alltoall.
 *
 *   mpirun -np 4 mpi_coll_bench [--op OP] [--min SIZE] [--max SIZE] [--dtype T]
 *                               [--iters N] [--warmup N]
 *
 * Per size: warm-up calls, then timed calls each after an MPI_Barrier; the per-iteration times
 * are reduced with MPI_MAX to rank 0, which prints the median. */
#include <getopt.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_sweep.h"

typedef struct opts {
    bench_op op;
    uint64_t min_bytes, max_bytes;
    const char *dtype_name;
    MPI_Datatype dtype;
    size_t elem;
    int iters, warmup;
} opts;

static const char *mpi_name(bench_op op) {
    static const char *const names[BENCH_NOPS] = {"MPI_Allreduce", "MPI_Allgather",
                                                  "MPI_Reduce_scatter_block", "MPI_Bcast",
                                                  "MPI_Reduce", "MPI_Alltoall",
                                                  "MPI_Send/MPI_Recv ping-pong"};
    return op < BENCH_NOPS ? names[op] : "?";
}

static int parse_dtype(opts *o, const char *name) {
    /* Not static: MPI type handles need not be compile-time constants. */
    const struct {
        const char *name;
        MPI_Datatype type;
        size_t size;
    } types[] = {
        {"f32", MPI_FLOAT, 4},   {"f64", MPI_DOUBLE, 8}, {"i32", MPI_INT32_T, 4},
        {"i64", MPI_INT64_T, 8}, {"i8", MPI_INT8_T, 1},  {"u8", MPI_UINT8_T, 1},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(name, types[i].name) == 0) {
            o->dtype_name = types[i].name;
            o->dtype = types[i].type;
            o->elem = types[i].size;
            return 0;
        }
    }
    return -1;
}

/* Only rank 0 reports usage errors, so the message appears once. */
static int usage_error(int rank, const char *what, const char *value) {
    if (rank == 0)
        fprintf(stderr, "mpi_coll_bench: bad %s '%s' (options: --op " BENCH_OP_LIST
                        " --min SIZE --max SIZE --dtype f32|f64|i32|i64|i8|u8 --iters N "
                        "--warmup N)\n",
                what, value);
    return -1;
}

static int parse_int(const char *text, int min, int *out) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

static int parse(int argc, char **argv, int rank, opts *o) {
    static const struct option longopts[] = {
        {"op", required_argument, NULL, 'o'},     {"min", required_argument, NULL, 'a'},
        {"max", required_argument, NULL, 'b'},    {"dtype", required_argument, NULL, 'd'},
        {"iters", required_argument, NULL, 'i'},  {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = rank == 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (bench_op_parse(optarg, &o->op)) return usage_error(rank, "--op", optarg);
            break;
        case 'a':
            if (bench_parse_size(optarg, &o->min_bytes) || !o->min_bytes)
                return usage_error(rank, "--min", optarg);
            break;
        case 'b':
            if (bench_parse_size(optarg, &o->max_bytes) || !o->max_bytes ||
                o->max_bytes > (1ull << 30))
                return usage_error(rank, "--max (at most 1G)", optarg);
            break;
        case 'd':
            if (parse_dtype(o, optarg)) return usage_error(rank, "--dtype", optarg);
            break;
        case 'i':
            if (parse_int(optarg, 1, &o->iters)) return usage_error(rank, "--iters", optarg);
            break;
        case 'w':
            if (parse_int(optarg, 0, &o->warmup)) return usage_error(rank, "--warmup", optarg);
            break;
        default: return usage_error(rank, "option", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error(rank, "argument", argv[optind]);
    if (o->min_bytes > o->max_bytes) return usage_error(rank, "--min (above --max)", "");
    return 0;
}

static int run_op(const opts *o, const bench_shape *s, void *send, void *recv, int rank) {
    int count = (int)s->count;
    switch (o->op) {
    case BENCH_ALLREDUCE:
        return MPI_Allreduce(send, recv, count, o->dtype, MPI_SUM, MPI_COMM_WORLD);
    case BENCH_ALLGATHER:
        return MPI_Allgather(send, count, o->dtype, recv, count, o->dtype, MPI_COMM_WORLD);
    case BENCH_REDUCE_SCATTER:
        return MPI_Reduce_scatter_block(send, recv, count, o->dtype, MPI_SUM, MPI_COMM_WORLD);
    case BENCH_BROADCAST:
        return MPI_Bcast(rank == 0 ? send : recv, count, o->dtype, 0, MPI_COMM_WORLD);
    case BENCH_REDUCE:
        return MPI_Reduce(send, recv, count, o->dtype, MPI_SUM, 0, MPI_COMM_WORLD);
    case BENCH_ALLTOALL:
        return MPI_Alltoall(send, count, o->dtype, recv, count, o->dtype, MPI_COMM_WORLD);
    case BENCH_PINGPONG: /* as osu_latency: blocking send and receive between ranks 0 and 1 */
        for (int k = 0, nb = bench_pp_batch(s->bytes); k < nb; k++) {
            if (rank == 0) {
                MPI_Send(send, count, o->dtype, 1, 7, MPI_COMM_WORLD);
                MPI_Recv(recv, count, o->dtype, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                MPI_Recv(recv, count, o->dtype, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(recv, count, o->dtype, 0, 7, MPI_COMM_WORLD);
            }
        }
        return MPI_SUCCESS;
    default: return MPI_ERR_OP;
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    opts o = {.op = BENCH_ALLREDUCE, .min_bytes = 8, .max_bytes = 64ull << 20,
              .iters = BENCH_DEFAULT_ITERS, .warmup = BENCH_DEFAULT_WARMUP};
    parse_dtype(&o, "f32");
    if (parse(argc, argv, rank, &o) != 0) {
        MPI_Finalize();
        return 2;
    }
    bench_shape big = bench_shape_of(o.op, o.max_bytes, o.elem, n);
    /* calloc: the values do not matter for timing, but must not be NaN garbage. */
    void *send = calloc(big.send_elems, o.elem), *recv = calloc(big.recv_elems, o.elem);
    double *times = malloc((size_t)o.iters * sizeof *times);
    double *slowest = malloc((size_t)o.iters * sizeof *slowest);
    if (!send || !recv || !times || !slowest) {
        fprintf(stderr, "mpi_coll_bench: rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = 0;
        printf("# mpi_coll_bench: %s, %d ranks, %s, iters %d, warmup %d (%s)\n", mpi_name(o.op), n,
               o.dtype_name, o.iters, o.warmup, lib);
        printf("# time: median over iterations of the slowest rank; busbw = algbw * %.3f\n",
               bench_busbw_factor(o.op, n));
        bench_print_header(stdout, 0);
    }
    uint64_t last = 0;
    for (uint64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
        bench_shape s = bench_shape_of(o.op, bytes, o.elem, n);
        if (s.bytes != last && s.bytes <= big.bytes) {
            int iters = bench_iters_for(s.bytes, o.iters);
            int warmup = bench_warmup_for(o.warmup, o.iters, iters);
            for (int i = 0; i < warmup; i++) run_op(&o, &s, send, recv, rank);
            for (int i = 0; i < iters; i++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = bench_now();
                run_op(&o, &s, send, recv, rank); /* errors abort (MPI_ERRORS_ARE_FATAL) */
                times[i] = bench_iter_time(o.op, s.bytes, bench_now() - t0);
            }
            MPI_Reduce(times, slowest, iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            if (rank == 0)
                bench_print_row(stdout, o.op, n, s.bytes, bench_median(slowest, iters), -1);
        }
        last = s.bytes;
        if (bytes > UINT64_MAX / 2) break;
    }
    free(send);
    free(recv);
    free(times);
    free(slowest);
    MPI_Finalize();
    return 0;
}
