/* Options of `shoal bench coll`, shared by the launching side (cmd_bench_coll.c) and the
 * per-rank worker (bench_coll_worker.c). The worker gets the same command line plus --worker,
 * so both sides parse the options with the same code. */
#ifndef SHOAL_BENCH_COLL_H
#define SHOAL_BENCH_COLL_H

#include <stdint.h>

#include "bench_sweep.h"
#include "shoal/comm.h"

#define BENCH_COLL_MAX_BYTES (1ull << 30) /* each rank holds up to 2x this in buffers */

struct bench_coll_opts {
    bench_op op;
    int nranks;
    uint64_t min_bytes, max_bytes; /* sizes double from min to max */
    shoal_dtype dtype;
    int iters, warmup;             /* for small sizes; large ones get fewer (bench_sweep.h) */
    int check;                     /* verify each size against a serial reference */
    const char *algo;              /* "auto", "ring" or "rd" */
    double timeout_s;              /* whole run; 0: none */
};

#endif
