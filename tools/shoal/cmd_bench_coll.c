/* `shoal bench coll`: parses the options, then launches N ranks of this same executable in
 * worker mode (cli_launch_self, relaunch.c) and returns their status. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench_coll.h"
#include "cli.h"

void cmd_bench_coll_help(FILE *out) {
    fprintf(out,
            "Usage: shoal bench coll [--op OP] [-n N] [--min SIZE] [--max SIZE] [--dtype T]\n"
            "                        [--iters N] [--warmup N] [--check] [--algo A] [--timeout S]\n"
            "\n"
            "Measures one collective over N local ranks for sizes doubling from --min to --max\n"
            "and prints one row per size: bytes, time in microseconds (median over iterations of\n"
            "the slowest rank's time; every iteration starts after a barrier), algbw and busbw in\n"
            "GB/s (nccl-tests definitions: busbw = algbw * 2(n-1)/n for allreduce, (n-1)/n for\n"
            "allgather, reduce_scatter and alltoall, 1 for broadcast and reduce).\n"
            "\n"
            "Options:\n"
            "  --op OP        " BENCH_OP_LIST " (default allreduce)\n"
            "  -n, --nranks N number of ranks (default 4)\n"
            "  --min SIZE     smallest size, e.g. 8, 4K (default 8)\n"
            "  --max SIZE     largest size, e.g. 64M, 1G (default 64M, at most 1G)\n"
            "  --dtype T      f32 f64 f16 bf16 i8 u8 i32 i64 (default f32)\n"
            "  --iters N      timed iterations per size (default %d; fewer for large sizes so a\n"
            "                 size moves about %llu MiB, never fewer than %d)\n"
            "  --warmup N     untimed iterations per size (default %d, scaled down likewise)\n"
            "  --check        verify every size against a serial reference; adds an errors\n"
            "                 column and the exit status is 1 when any element is wrong\n"
            "  --algo A       auto, ring or rd (sets SHOAL_ALGO for the group; default auto)\n"
            "  --timeout S    stop the whole run after S seconds\n"
            "  -h, --help     this text\n",
            BENCH_DEFAULT_ITERS, BENCH_BYTES_PER_SIZE >> 20, BENCH_MIN_ITERS,
            BENCH_DEFAULT_WARMUP);
}

enum { OPT_OP = 256, OPT_MIN, OPT_MAX, OPT_DTYPE, OPT_ITERS, OPT_WARMUP, OPT_CHECK, OPT_ALGO,
       OPT_TIMEOUT, OPT_WORKER };

/* Parses argv into *o: 0, or -1 after printing a usage error. --help prints the help and sets
 * *done; --worker sets *worker. */
static int parse(int argc, char **argv, struct bench_coll_opts *o, int *worker, int *done) {
    static const struct option longopts[] = {
        {"op", required_argument, NULL, OPT_OP},
        {"nranks", required_argument, NULL, 'n'},
        {"min", required_argument, NULL, OPT_MIN},
        {"max", required_argument, NULL, OPT_MAX},
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"iters", required_argument, NULL, OPT_ITERS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"check", no_argument, NULL, OPT_CHECK},
        {"algo", required_argument, NULL, OPT_ALGO},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"worker", no_argument, NULL, OPT_WORKER}, /* hidden: set by the launching side */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "bench coll";
    int opt;
    while ((opt = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_OP:
            if (bench_op_parse(optarg, &o->op) != 0)
                return cli_usage_error(cmd, "--op must be one of " BENCH_OP_LIST ", not '%s'",
                                       optarg);
            break;
        case 'n':
            if (cli_parse_int(cmd, "-n", optarg, 1, 1024, &o->nranks) != 0) return -1;
            break;
        case OPT_MIN:
            if (cli_parse_size(cmd, "--min", optarg, &o->min_bytes) != 0) return -1;
            break;
        case OPT_MAX:
            if (cli_parse_size(cmd, "--max", optarg, &o->max_bytes) != 0) return -1;
            break;
        case OPT_DTYPE:
            if (shoal_dtype_parse(optarg, &o->dtype) != SHOAL_OK)
                return cli_usage_error(cmd, "unknown --dtype '%s'", optarg);
            break;
        case OPT_ITERS:
            if (cli_parse_int(cmd, "--iters", optarg, 1, 1000000, &o->iters) != 0) return -1;
            break;
        case OPT_WARMUP:
            if (cli_parse_int(cmd, "--warmup", optarg, 0, 1000000, &o->warmup) != 0) return -1;
            break;
        case OPT_CHECK: o->check = 1; break;
        case OPT_ALGO:
            if (strcmp(optarg, "auto") && strcmp(optarg, "ring") && strcmp(optarg, "rd"))
                return cli_usage_error(cmd, "--algo must be auto, ring or rd, not '%s'", optarg);
            o->algo = optarg;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_seconds(cmd, "--timeout", optarg, &o->timeout_s) != 0) return -1;
            break;
        case OPT_WORKER: *worker = 1; break;
        case 'h':
            cmd_bench_coll_help(stdout);
            *done = 1;
            return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o->min_bytes > o->max_bytes)
        return cli_usage_error(cmd, "--min (%llu) is larger than --max (%llu)",
                               (unsigned long long)o->min_bytes,
                               (unsigned long long)o->max_bytes);
    if (o->max_bytes > BENCH_COLL_MAX_BYTES)
        return cli_usage_error(cmd, "--max is limited to 1G");
    return 0;
}

int cmd_bench_coll(int argc, char **argv) {
    struct bench_coll_opts o = {
        .op = BENCH_ALLREDUCE, .nranks = 4, .min_bytes = 8, .max_bytes = 64ull << 20,
        .dtype = SHOAL_F32, .iters = BENCH_DEFAULT_ITERS, .warmup = BENCH_DEFAULT_WARMUP,
        .check = 0, .algo = "auto", .timeout_s = 0,
    };
    int worker = 0, done = 0;
    if (parse(argc, argv, &o, &worker, &done) != 0) return CLI_EXIT_USAGE;
    if (done) return 0;
    if (worker) return bench_coll_worker(&o);

    /* The ranks run this same binary with the same options plus --worker. */
    static const char *const prefix[] = {"bench", "coll", "--worker", NULL};
    return cli_launch_self("bench coll", prefix, argc - 1, argv + 1, o.nranks, o.timeout_s);
}
