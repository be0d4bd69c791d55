/* One comm program for "started three ways": by `shoal launch`, by `mpirun`, and with
 * torchrun's variables. It joins the group from the environment alone, checks its rank and
 * size against what the starter said, and all-reduces rank+1 (i64): the sum must be n(n+1)/2.
 *
 * The expected rank and size are read from whichever starter's variables are present, in the
 * comm core's own order (SHOAL_*, torchrun, Open MPI), so the check is independent of it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shoal/comm.h"

static int env_int(const char *const *names, int fallback) {
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) return atoi(v);
    }
    return fallback;
}

int main(void) {
    static const char *const rank_vars[] = {"SHOAL_RANK", "RANK", "OMPI_COMM_WORLD_RANK", NULL};
    static const char *const size_vars[] = {"SHOAL_WORLD_SIZE", "WORLD_SIZE",
                                            "OMPI_COMM_WORLD_SIZE", NULL};
    int want_rank = env_int(rank_vars, -1), want_size = env_int(size_vars, -1);
    shoal_comm *c = NULL;
    int rc = shoal_comm_init(&c, NULL);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "env_program: shoal_comm_init: %s: %s\n", shoal_status_str(rc),
                shoal_comm_init_error());
        return 1;
    }
    int rank = shoal_comm_rank(c), n = shoal_comm_size(c), bad = 0;
    if (rank != want_rank || n != want_size) {
        fprintf(stderr, "env_program: got rank %d of %d, the starter said %d of %d\n", rank, n,
                want_rank, want_size);
        bad = 1;
    }
    int64_t mine = rank + 1, sum = 0;
    rc = shoal_allreduce(c, &mine, &sum, 1, SHOAL_I64, SHOAL_SUM);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "env_program: rank %d: allreduce: %s: %s\n", rank, shoal_status_str(rc),
                shoal_comm_last_error(c));
        bad = 1;
    } else if (sum != (int64_t)n * (n + 1) / 2) {
        fprintf(stderr, "env_program: rank %d: sum of rank+1 is %lld, expected %lld\n", rank,
                (long long)sum, (long long)n * (n + 1) / 2);
        bad = 1;
    } else if (rank == 0) {
        printf("env_program: %d ranks, sum of rank+1 = %lld\n", n, (long long)sum);
    }
    rc = shoal_comm_free(c);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "env_program: rank %d: shoal_comm_free: %s\n", rank, shoal_status_str(rc));
        bad = 1;
    }
    return bad;
}
