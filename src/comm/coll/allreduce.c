/* allreduce: recursive doubling for small messages (latency: log2(n) rounds), ring
 * reduce-scatter + ring allgather for large ones (bandwidth: every rank sends 2(n-1)/n of the
 * message).
 *
 * The result is bitwise identical on every rank, which tensor parallelism relies on: in
 * recursive doubling both partners of a round combine the same two values in the same order
 * (the side holding lower ranks on the left); in the ring each block is reduced by exactly one
 * rank and then copied. */
#include <stdlib.h>
#include <string.h>

#include "comm/shm_coll.h"
#include "comm/coll/coll_util.h"

typedef struct allreduce_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    shoal_dtype dtype;
    shoal_op op;
} allreduce_args;

/* acc = lower op higher, where theirs holds the lower ranks when theirs_lower. */
static void combine(void *acc, const void *theirs, size_t count, shoal_dtype t, shoal_op op,
                    int theirs_lower) {
    if (theirs_lower)
        shoal__reduce_pair(acc, theirs, acc, count, t, op);
    else
        shoal__reduce_into(acc, theirs, count, t, op);
}

/* Recursive doubling on buf (count elements, already holding this rank's input). For a size
 * n that is not a power of two, p = the largest power of two below n and rem = n - p: among
 * the first 2*rem ranks each even rank hands its data to the odd rank above it and waits,
 * the remaining p ranks run the doubling, and the odd ranks hand the result back. */
static int rd_allreduce(shoal_comm *c, uint32_t tag, double deadline, void *buf, size_t count,
                        shoal_dtype t, shoal_op op) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t bytes = count * shoal_dtype_size(t);
    int p = 1;
    while (p <= n / 2) p *= 2;
    int rem = n - p, folded = r < 2 * rem; /* rem < p <= n, so 2 * rem does not overflow */
    void *tmp = malloc(bytes);
    if (!tmp) return shoal__coll_nomem(c, "allreduce", bytes);
    int st = SHOAL_OK, newr = r - rem;
    if (folded && r % 2 == 0) {
        newr = -1; /* sits out the doubling */
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, buf, bytes, r + 1, NULL, 0, -1, deadline);
    } else if (folded) {
        newr = r / 2;
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, tmp, bytes, r - 1, deadline);
        if (st == SHOAL_OK) combine(buf, tmp, count, t, op, 1);
    }
    for (int mask = 1; st == SHOAL_OK && newr >= 0 && mask < p; mask <<= 1) {
        int pn = newr ^ mask;
        int peer = pn < rem ? pn * 2 + 1 : pn + rem; /* back from doubling rank to comm rank */
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, buf, bytes, peer, tmp, bytes, peer,
                              deadline);
        if (st == SHOAL_OK) combine(buf, tmp, count, t, op, pn < newr);
    }
    if (st == SHOAL_OK && folded) {
        if (r % 2)
            st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, buf, bytes, r - 1, NULL, 0, -1,
                                  deadline);
        else
            st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, buf, bytes, r + 1,
                                  deadline);
    }
    free(tmp);
    return st;
}

/* Ring: block r of the reduction lands directly in recvbuf, is averaged there, and the
 * allgather copies it to every rank. */
static int ring_allreduce(shoal_comm *c, uint32_t tag, double deadline, const allreduce_args *a) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t esz = shoal_dtype_size(a->dtype), off, len;
    shoal__coll_block(a->count, n, r, &off, &len);
    char *mine = (char *)a->recvbuf + off * esz;
    int st =
        shoal__ring_reduce_scatter(c, tag, deadline, a->sendbuf, mine, a->count, a->dtype, a->op);
    if (st != SHOAL_OK) return st;
    if (a->op == SHOAL_AVG) shoal__avg_finish(mine, len, a->dtype, n);
    /* Same tag: between any pair, every reduce-scatter message precedes every allgather one. */
    return shoal__ring_allgather(c, tag, deadline, a->recvbuf, a->count, esz);
}

static int allreduce_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const allreduce_args *a = args;
    int n = shoal_comm_size(c);
    size_t bytes = a->count * shoal_dtype_size(a->dtype);
    if (bytes == 0) return SHOAL_OK;
    if (n > 1 && shoal__coll_pick(c, bytes) == SHOAL__ALGO_RING)
        return ring_allreduce(c, tag, deadline, a);
    if (a->recvbuf != a->sendbuf) memcpy(a->recvbuf, a->sendbuf, bytes);
    int st =
        n > 1 ? rd_allreduce(c, tag, deadline, a->recvbuf, a->count, a->dtype, a->op) : SHOAL_OK;
    if (st == SHOAL_OK && a->op == SHOAL_AVG) shoal__avg_finish(a->recvbuf, a->count, a->dtype, n);
    return st;
}

static int allreduce_start(shoal_comm *c, const char *what, const void *sendbuf, void *recvbuf,
                           size_t count, shoal_dtype dtype, shoal_op op, shoal_request **req) {
    size_t bytes = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) || (st = shoal__coll_arg_op(c, what, op)) ||
        (st = shoal__coll_arg_bytes(c, what, count, 1, dtype, &bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, bytes)))
        return st;
    /* blocking all-reduce of an all-local world group: the shared group area when small,
     * straight from the peers' buffers when large */
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && shoal__shm_direct_ok(c, bytes))
        return shoal__shm_direct_allreduce(c, sendbuf, recvbuf, count, dtype, op);
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && shoal__shm_coll_ok(c, bytes))
        return shoal__shm_allreduce(c, sendbuf, recvbuf, count, dtype, op);
    allreduce_args a = {sendbuf, recvbuf, count, dtype, op};
    return shoal__coll_run(c, allreduce_body, &a, sizeof a, req);
}

int shoal_allreduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                    shoal_dtype dtype, shoal_op op) {
    if (!comm) return SHOAL_ERR_INVALID;
    return allreduce_start(comm, "allreduce", sendbuf, recvbuf, count, dtype, op, NULL);
}

int shoal_iallreduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                     shoal_dtype dtype, shoal_op op, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "iallreduce", req);
    if (st != SHOAL_OK) return st;
    return allreduce_start(comm, "iallreduce", sendbuf, recvbuf, count, dtype, op, req);
}
