/* The `make run` demo: forms a group from the environment that `shoal launch` sets up,
 * all-reduces each rank's rank+1, and times a 1 MiB float all-reduce.
 *
 *   shoal launch -n 4 -- build/allreduce_demo */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shoal/comm.h"

#define BENCH_FLOATS (256 * 1024) /* 1 MiB of f32 */
#define BENCH_ITERS 20

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int failed(shoal_comm *c, const char *what, int rc) {
    fprintf(stderr, "allreduce_demo: rank %d: %s: %s: %s\n", shoal_comm_rank(c), what,
            shoal_status_str(rc), shoal_comm_last_error(c));
    shoal_comm_free(c);
    return 1;
}

int main(void) {
    shoal_comm *c = NULL;
    int rc = shoal_comm_init(&c, NULL);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "allreduce_demo: cannot join the group: %s: %s\n"
                "(start it with `shoal launch -n 4 -- allreduce_demo`)\n",
                shoal_status_str(rc), shoal_comm_init_error());
        return 1;
    }
    int rank = shoal_comm_rank(c), n = shoal_comm_size(c);

    /* 1. The classic check: sum of rank+1 over the group is n(n+1)/2. */
    int64_t mine = rank + 1, sum = 0, want = (int64_t)n * (n + 1) / 2;
    if ((rc = shoal_allreduce(c, &mine, &sum, 1, SHOAL_I64, SHOAL_SUM)) != SHOAL_OK)
        return failed(c, "allreduce", rc);
    if (rank == 0)
        printf("allreduce_demo: %d ranks joined; sum of (rank+1) = %lld (expected %lld): %s\n", n,
               (long long)sum, (long long)want, sum == want ? "ok" : "WRONG");

    /* 2. A mini benchmark: the slowest rank's time per iteration, median over iterations. */
    float *buf = malloc(BENCH_FLOATS * sizeof *buf);
    double t[BENCH_ITERS], slowest[BENCH_ITERS];
    if (!buf) return failed(c, "malloc", SHOAL_ERR_NOMEM);
    for (int i = 0; i < BENCH_FLOATS; i++) buf[i] = 1.0f;
    for (int it = -2; it < BENCH_ITERS; it++) { /* two untimed warm-up rounds */
        if ((rc = shoal_barrier(c)) != SHOAL_OK) return failed(c, "barrier", rc);
        double t0 = now();
        if ((rc = shoal_allreduce(c, buf, buf, BENCH_FLOATS, SHOAL_F32, SHOAL_SUM)) != SHOAL_OK)
            return failed(c, "allreduce", rc);
        if (it >= 0) t[it] = now() - t0;
    }
    if ((rc = shoal_reduce(c, t, slowest, BENCH_ITERS, SHOAL_F64, SHOAL_MAX, 0)) != SHOAL_OK)
        return failed(c, "reduce", rc);
    if (rank == 0) {
        qsort(slowest, BENCH_ITERS, sizeof slowest[0], cmp);
        double med = 0.5 * (slowest[BENCH_ITERS / 2 - 1] + slowest[BENCH_ITERS / 2]);
        double algbw = BENCH_FLOATS * sizeof(float) / med / 1e9;
        printf("allreduce_demo: 1 MiB f32 allreduce: median %.1f us, algbw %.2f GB/s, "
               "busbw %.2f GB/s (%d iterations; shoal bench coll measures more)\n",
               med * 1e6, algbw, algbw * 2.0 * (n - 1) / n, BENCH_ITERS);
    }
    free(buf);
    shoal_comm_free(c);
    return sum == want ? 0 : 1;
}
