/* `shoal bench rpc`: the round trip of an empty remote call and calls per second with many in
 * flight, beside the comm layer's raw point-to-point ping-pong measured in the same run
 * between the same two ranks (the reference the rpc layer adds its cost to). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "shoal/rpc.h"

#define BATCHES 15

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int h_empty(void *user, int caller, const void *args, size_t len, void **reply,
                   size_t *reply_len, char *err, size_t errcap) {
    return SHOAL_OK;
}

/* Ends the callee's idle phase: like a real worker, the callee is not inside a shoal call
 * while it serves, so its handler threads drive the sockets. */
static int h_phase_done(void *user, int caller, const void *args, size_t len, void **reply,
                        size_t *reply_len, char *err, size_t errcap) {
    atomic_store((atomic_int *)user, 1);
    return SHOAL_OK;
}

typedef struct rpc_opts {
    int iters, inflight;
} rpc_opts;

/* Rank 0 measures; rank 1 echoes ping-pongs and serves calls. Results in microseconds. */
static int worker(const rpc_opts *o) {
    shoal_comm *c = NULL;
    if (shoal_comm_init(&c, NULL) != SHOAL_OK) {
        fprintf(stderr, "shoal bench rpc: %s\n", shoal_comm_init_error());
        return CLI_EXIT_FAIL;
    }
    shoal_rpc *rpc = NULL;
    int rank = shoal_comm_rank(c), rc = CLI_EXIT_FAIL;
    atomic_int phase_done = 0;
    if (shoal_rpc_create(&rpc, c, NULL) != SHOAL_OK || shoal_rpc_register(rpc, "empty", h_empty, NULL) != SHOAL_OK ||
        shoal_rpc_register(rpc, "phase_done", h_phase_done, &phase_done) != SHOAL_OK || shoal_barrier(c) != SHOAL_OK) {
        fprintf(stderr, "shoal bench rpc: %s\n", shoal_comm_last_error(c));
        goto out;
    }
    char byte = 0;
    double pp[BATCHES], call[BATCHES], rate[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        /* raw ping-pong of one byte on a user tag */
        if (shoal_barrier(c) != SHOAL_OK) goto out;
        double t0 = now_s();
        for (int i = 0; i < o->iters; i++) {
            int st = rank == 0 ? shoal_send(c, &byte, 1, 1, 1) : shoal_recv(c, &byte, 1, 0, 1, NULL);
            if (st == SHOAL_OK) st = rank == 0 ? shoal_recv(c, &byte, 1, 1, 1, NULL) : shoal_send(c, &byte, 1, 0, 1);
            if (st != SHOAL_OK) goto out;
        }
        pp[b] = (now_s() - t0) / o->iters * 1e6;
        if (shoal_barrier(c) != SHOAL_OK) goto out;
        if (rank == 0) {
            t0 = now_s();
            for (int i = 0; i < o->iters; i++)
                if (shoal_rpc_call(rpc, 1, "empty", NULL, 0, NULL, NULL, 10) != SHOAL_OK) goto out;
            call[b] = (now_s() - t0) / o->iters * 1e6;
            /* throughput: keep `inflight` calls outstanding */
            shoal_future **fs = calloc((size_t)o->inflight, sizeof *fs);
            int total = o->iters * 4;
            t0 = now_s();
            for (int i = 0; i < total + o->inflight; i++) {
                int s = i % o->inflight;
                if (fs[s] && shoal_future_wait(fs[s], NULL, NULL) != SHOAL_OK) {
                    free(fs);
                    goto out;
                }
                fs[s] = NULL;
                if (i < total && shoal_rpc_call_async(rpc, 1, "empty", NULL, 0, 10, &fs[s]) != SHOAL_OK) {
                    free(fs);
                    goto out;
                }
            }
            rate[b] = total / (now_s() - t0);
            free(fs);
            if (shoal_rpc_call(rpc, 1, "phase_done", NULL, 0, NULL, NULL, 10) != SHOAL_OK) goto out;
        } else {
            while (!atomic_load(&phase_done)) usleep(200);
            atomic_store(&phase_done, 0);
        }
        if (shoal_barrier(c) != SHOAL_OK) goto out;
    }
    if (rank == 0) {
        double p = median(pp, BATCHES), e = median(call, BATCHES), r = median(rate, BATCHES);
        printf("# shoal bench rpc: 2 ranks on loopback, medians of %d batches of %d\n", BATCHES, o->iters);
        printf("%-34s %12s %10s\n", "measure", "value", "vs ping");
        printf("%-34s %9.2f us %10s\n", "raw p2p ping-pong round trip", p, "1.00x");
        printf("%-34s %9.2f us %9.2fx\n", "empty rpc call round trip", e, e / p);
        printf("%-34s %9.0f /s %10s\n", "empty calls, 64 in flight", r, "");
        printf("target: empty call within 1.5x of the ping-pong: %s\n", e <= 1.5 * p ? "met" : "NOT met");
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "shoal bench rpc: rank %d: %s %s\n", rank, shoal_comm_last_error(c), shoal_rpc_last_error(rpc));
    shoal_rpc_free(rpc);
    shoal_comm_free(c);
    return rc;
}

void cmd_bench_rpc_help(FILE *out) {
    fprintf(out,
            "Usage: shoal bench rpc [--iters N] [--inflight K]\n"
            "\n"
            "Starts 2 local ranks and prints the round trip of a raw 1-byte point-to-point\n"
            "ping-pong, the round trip of an empty remote call, and empty calls per second with\n"
            "K calls in flight (medians of %d batches).\n"
            "\n"
            "  --iters N      round trips per batch (default 2000)\n"
            "  --inflight K   calls kept in flight for the rate (default 64)\n",
            BATCHES);
}

int cmd_bench_rpc(int argc, char **argv) {
    static const struct option longopts[] = {
        {"iters", required_argument, NULL, 'i'}, {"inflight", required_argument, NULL, 'k'},
        {"worker", no_argument, NULL, 'w'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    rpc_opts o = {2000, 64};
    int is_worker = 0, opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            if (cli_parse_int("bench rpc", "--iters", optarg, 1, 10000000, &o.iters)) return CLI_EXIT_USAGE;
            break;
        case 'k':
            if (cli_parse_int("bench rpc", "--inflight", optarg, 1, 4096, &o.inflight)) return CLI_EXIT_USAGE;
            break;
        case 'w': is_worker = 1; break;
        case 'h': cmd_bench_rpc_help(stdout); return 0;
        default: return cli_usage_error("bench rpc", "bad option"), CLI_EXIT_USAGE;
        }
    }
    if (is_worker) return worker(&o);
    static const char *const prefix[] = {"bench", "rpc", "--worker", NULL};
    return cli_launch_self("bench rpc", prefix, argc - 1, argv + 1, 2, 0);
}
