/* barrier: dissemination algorithm on the control lane (so it never queues behind bulk data).
 * In round k rank r signals r + 2^k and waits for r - 2^k; after ceil(log2(n)) rounds every
 * rank has heard, directly or through others, from every other rank. Messages are empty. */
#include "comm/shm_coll.h"
#include "comm/coll/coll_util.h"

static int barrier_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    (void)args;
    int n = shoal_comm_size(c), r = shoal_comm_rank(c), st = SHOAL_OK;
    char out = 0, in = 0; /* zero-byte messages; real addresses in case the core checks */
    for (int dist = 1; dist < n && st == SHOAL_OK; dist *= 2) {
        st = shoal__coll_sendrecv(c, SHOAL__LANE_CTRL, tag, &out, 0, (r + dist) % n, &in, 0,
                                  shoal__coll_mod(r - dist, n), deadline);
        if (dist > n / 2) break; /* the next round would be past n; dist *= 2 must not overflow */
    }
    return st;
}

/* The barrier has no arguments; a one-byte block keeps the core from copying from NULL. */
static const char no_args = 0;

int shoal_barrier(shoal_comm *comm) {
    if (!comm) return SHOAL_ERR_INVALID;
    if (shoal__comm_algo(comm) == SHOAL__ALGO_AUTO && shoal__shm_coll_ok(comm, 0)) return shoal__shm_barrier(comm);
    return shoal__coll_run(comm, barrier_body, &no_args, sizeof no_args, NULL);
}

int shoal_ibarrier(shoal_comm *comm, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ibarrier", req);
    if (st != SHOAL_OK) return st;
    return shoal__coll_run(comm, barrier_body, &no_args, sizeof no_args, req);
}
