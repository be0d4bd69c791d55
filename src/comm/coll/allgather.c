/* allgather: Bruck's algorithm for small messages (ceil(log2(n)) rounds for any group size),
 * the pipelined ring for large ones. Message size for the choice is the whole result,
 * size * sendcount elements.
 *
 * In place (sendbuf == recvbuf, or sendbuf == recvbuf + rank * block): this rank's block is
 * already at its place in recvbuf. */
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"
#include "comm/shm_coll.h"

typedef struct allgather_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count; /* per rank */
    shoal_dtype dtype;
} allgather_args;

/* Bruck: tmp[i] holds the block of rank r + i. In round `dist` a rank sends its first
 * min(dist, n - dist) blocks to r - dist and appends those of r + dist; at the end tmp is
 * rotated into rank order. */
static int bruck_allgather(shoal_comm *c, uint32_t tag, double deadline, void *recvbuf, size_t bs) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    char *tmp = malloc((size_t)n * bs);
    if (!tmp) return shoal__coll_nomem(c, "allgather", (size_t)n * bs);
    char *out = recvbuf;
    memcpy(tmp, out + (size_t)r * bs, bs);
    int st = SHOAL_OK;
    for (int dist = 1; dist < n && st == SHOAL_OK; dist *= 2) {
        size_t cnt = (size_t)(dist < n - dist ? dist : n - dist);
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, tmp, cnt * bs, shoal__coll_mod(r - dist, n),
                              tmp + (size_t)dist * bs, cnt * bs, (r + dist) % n, deadline);
        if (dist > n / 2) break; /* dist *= 2 must not overflow for huge n */
    }
    if (st == SHOAL_OK)
        for (int i = 1; i < n; i++)
            memcpy(out + (size_t)((r + i) % n) * bs, tmp + (size_t)i * bs, bs);
    free(tmp);
    return st;
}

static int allgather_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const allgather_args *a = args;
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t esz = shoal_dtype_size(a->dtype), bs = a->count * esz;
    if (bs == 0) return SHOAL_OK;
    char *own = (char *)a->recvbuf + (size_t)r * bs;
    if (a->sendbuf != a->recvbuf && a->sendbuf != own) memcpy(own, a->sendbuf, bs);
    if (n == 1) return SHOAL_OK;
    if (shoal__coll_pick(c, (size_t)n * bs) == SHOAL__ALGO_RING)
        return shoal__ring_allgather(c, tag, deadline, a->recvbuf, (size_t)n * a->count, esz);
    return bruck_allgather(c, tag, deadline, a->recvbuf, bs);
}

static int allgather_start(shoal_comm *c, const char *what, const void *sendbuf, void *recvbuf,
                           size_t count, shoal_dtype dtype, shoal_request **req) {
    size_t bytes = 0, total = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) ||
        (st = shoal__coll_arg_bytes(c, what, count, 1, dtype, &bytes)) ||
        (st = shoal__coll_arg_bytes(c, what, count, (size_t)shoal_comm_size(c), dtype, &total)) ||
        (st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, total)))
        return st;
    /* large blocking all-gather of an all-local world group: straight from the peers' buffers
     * (measured faster than the ring from 4 MiB on, 2 ranks; slower below: both ranks then
     * copy through the kernel at once) */
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && total >= (4u << 20) && shoal__shm_direct_ok(c, total))
        return shoal__shm_direct_allgather(c, sendbuf, recvbuf, bytes);
    allgather_args a = {sendbuf, recvbuf, count, dtype};
    return shoal__coll_run(c, allgather_body, &a, sizeof a, req);
}

int shoal_allgather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                    shoal_dtype dtype) {
    if (!comm) return SHOAL_ERR_INVALID;
    return allgather_start(comm, "allgather", sendbuf, recvbuf, sendcount, dtype, NULL);
}

int shoal_iallgather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                     shoal_dtype dtype, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "iallgather", req);
    if (st != SHOAL_OK) return st;
    return allgather_start(comm, "iallgather", sendbuf, recvbuf, sendcount, dtype, req);
}
