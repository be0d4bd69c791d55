/* reduce_scatter: the pipelined ring for every size and algorithm setting. Its n-1 steps cost
 * latency, but every rank sends only (n-1)/n of the input and each block is reduced once
 * along the ring; recursive halving would save rounds only for small power-of-two groups.
 *
 * In place: recvbuf == sendbuf (result at the start of the buffer) or
 * recvbuf == sendbuf + rank * recvcount (result at this rank's own block); the rest of the
 * buffer is left as it was. */
#include <string.h>

#include "comm/coll/coll_util.h"
#include "comm/shm_coll.h"

typedef struct reduce_scatter_args {
    const void *sendbuf;
    void *recvbuf;
    size_t recvcount;
    shoal_dtype dtype;
    shoal_op op;
} reduce_scatter_args;

static int reduce_scatter_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const reduce_scatter_args *a = args;
    int n = shoal_comm_size(c);
    if (a->recvcount == 0) return SHOAL_OK;
    /* With n blocks of recvcount the ring's partition gives rank r exactly block r. */
    int st = shoal__ring_reduce_scatter(c, tag, deadline, a->sendbuf, a->recvbuf,
                                        (size_t)n * a->recvcount, a->dtype, a->op);
    if (st == SHOAL_OK && a->op == SHOAL_AVG)
        shoal__avg_finish(a->recvbuf, a->recvcount, a->dtype, n);
    return st;
}

static int reduce_scatter_start(shoal_comm *c, const char *what, const void *sendbuf, void *recvbuf,
                                size_t recvcount, shoal_dtype dtype, shoal_op op,
                                shoal_request **req) {
    size_t bytes = 0, total = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) || (st = shoal__coll_arg_op(c, what, op)) ||
        (st = shoal__coll_arg_bytes(c, what, recvcount, 1, dtype, &bytes)) ||
        (st = shoal__coll_arg_bytes(c, what, recvcount, (size_t)shoal_comm_size(c), dtype,
                                    &total)) ||
        (st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, total)) ||
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, bytes)))
        return st;
    /* large blocking reduce-scatter of an all-local world group: straight from the peers' buffers */
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && total >= SHOAL__SHM_DIRECT_OTHERS_MIN &&
        shoal__shm_direct_ok(c, total))
        return shoal__shm_direct_reduce_scatter(c, sendbuf, recvbuf, recvcount, dtype, op);
    reduce_scatter_args a = {sendbuf, recvbuf, recvcount, dtype, op};
    return shoal__coll_run(c, reduce_scatter_body, &a, sizeof a, req);
}

int shoal_reduce_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                         shoal_dtype dtype, shoal_op op) {
    if (!comm) return SHOAL_ERR_INVALID;
    return reduce_scatter_start(comm, "reduce_scatter", sendbuf, recvbuf, recvcount, dtype, op,
                                NULL);
}

int shoal_ireduce_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                          shoal_dtype dtype, shoal_op op, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ireduce_scatter", req);
    if (st != SHOAL_OK) return st;
    return reduce_scatter_start(comm, "ireduce_scatter", sendbuf, recvbuf, recvcount, dtype, op,
                                req);
}
