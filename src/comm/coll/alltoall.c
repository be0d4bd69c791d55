/* alltoall and alltoallv: pairwise exchange. In step i (1..n-1) rank r sends its block for
 * r+i and receives the block from r-i, so every rank sends and receives exactly one message
 * per step and no rank is a hot spot.
 *
 * In place alltoall (sendbuf == recvbuf): the block received from r-i would overwrite the
 * block still to be sent to r-i, so steps i and n-i are done together: rank r exchanges with
 * both r+i and r-i at once, receiving into two temporary blocks that replace the sent ones
 * when both exchanges are done. */
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"

typedef struct alltoall_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count; /* per peer */
    shoal_dtype dtype;
} alltoall_args;

static int pairwise(shoal_comm *c, uint32_t tag, double deadline, const char *send, char *recv,
                    size_t bs) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    memcpy(recv + (size_t)r * bs, send + (size_t)r * bs, bs);
    int st = SHOAL_OK;
    for (int i = 1; i < n && st == SHOAL_OK; i++) {
        int dst = (r + i) % n, src = (r - i + n) % n;
        st = shoal__coll_sendrecv(c, SHOAL__LANE_DATA, tag, send + (size_t)dst * bs, bs, dst,
                                  recv + (size_t)src * bs, bs, src, deadline);
    }
    return st;
}

/* Exchanges block `peer` of buf with peer (n even, i = n/2: r+i == r-i). */
static int swap_one(shoal_comm *c, uint32_t tag, double deadline, char *buf, char *tmp,
                    size_t bs, int peer) {
    int st = shoal__coll_sendrecv(c, SHOAL__LANE_DATA, tag, buf + (size_t)peer * bs, bs, peer,
                                  tmp, bs, peer, deadline);
    if (st == SHOAL_OK) memcpy(buf + (size_t)peer * bs, tmp, bs);
    return st;
}

/* Exchanges blocks `up` and `down` of buf with those two ranks at once. */
static int swap_two(shoal_comm *c, uint32_t tag, double deadline, char *buf, char *tmp,
                    size_t bs, int up, int down) {
    shoal_request *reqs[4] = {NULL, NULL, NULL, NULL};
    int st = shoal__coll_irecv(c, SHOAL__LANE_DATA, tag, tmp, bs, up, &reqs[0]);
    if (st == SHOAL_OK) st = shoal__coll_irecv(c, SHOAL__LANE_DATA, tag, tmp + bs, bs, down, &reqs[1]);
    if (st == SHOAL_OK)
        st = shoal__coll_isend(c, SHOAL__LANE_DATA, tag, buf + (size_t)up * bs, bs, up, &reqs[2]);
    if (st == SHOAL_OK)
        st = shoal__coll_isend(c, SHOAL__LANE_DATA, tag, buf + (size_t)down * bs, bs, down,
                               &reqs[3]);
    if (st != SHOAL_OK) return shoal__coll_abandon(c, st, reqs, 4);
    st = shoal__coll_waitall(c, reqs, 4, deadline);
    if (st != SHOAL_OK) return st;
    memcpy(buf + (size_t)up * bs, tmp, bs);
    memcpy(buf + (size_t)down * bs, tmp + bs, bs);
    return SHOAL_OK;
}

static int pairwise_in_place(shoal_comm *c, uint32_t tag, double deadline, char *buf,
                             size_t bs) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    char *tmp = malloc(2 * bs);
    if (!tmp) return shoal__coll_nomem(c, "alltoall", 2 * bs);
    int st = SHOAL_OK;
    for (int i = 1; i <= n / 2 && st == SHOAL_OK; i++) {
        int up = (r + i) % n, down = (r - i + n) % n;
        st = up == down ? swap_one(c, tag, deadline, buf, tmp, bs, up)
                        : swap_two(c, tag, deadline, buf, tmp, bs, up, down);
    }
    free(tmp);
    return st;
}

static int alltoall_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const alltoall_args *a = args;
    size_t bs = a->count * shoal_dtype_size(a->dtype);
    if (bs == 0) return SHOAL_OK;
    if (a->sendbuf == a->recvbuf) return pairwise_in_place(c, tag, deadline, a->recvbuf, bs);
    return pairwise(c, tag, deadline, a->sendbuf, a->recvbuf, bs);
}

static int alltoall_start(shoal_comm *c, const char *what, const void *sendbuf, void *recvbuf,
                          size_t count, shoal_dtype dtype, shoal_request **req) {
    size_t total = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) ||
        (st = shoal__coll_arg_bytes(c, what, count, (size_t)shoal_comm_size(c), dtype, &total)) ||
        (st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, total)) ||
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, total)))
        return st;
    alltoall_args a = {sendbuf, recvbuf, count, dtype};
    return shoal__coll_run(c, alltoall_body, &a, sizeof a, req);
}

int shoal_alltoall(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                   shoal_dtype dtype) {
    if (!comm) return SHOAL_ERR_INVALID;
    return alltoall_start(comm, "alltoall", sendbuf, recvbuf, count, dtype, NULL);
}

int shoal_ialltoall(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                    shoal_dtype dtype, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ialltoall", req);
    if (st != SHOAL_OK) return st;
    return alltoall_start(comm, "ialltoall", sendbuf, recvbuf, count, dtype, req);
}

/* ---- alltoallv ----------------------------------------------------------------------------- */

/* The caller's four arrays are copied into the argument block (v[], 4 * n entries), so a
 * non-blocking call does not depend on them staying alive. */
typedef struct alltoallv_args {
    const void *sendbuf;
    void *recvbuf;
    shoal_dtype dtype;
    int n;
    size_t v[]; /* sendcounts[n], sdispls[n], recvcounts[n], rdispls[n] */
} alltoallv_args;

/* Address of element idx of base, without arithmetic on a NULL base for an empty block. */
static char *at(const void *base, size_t idx, size_t esz, size_t count) {
    return count ? (char *)base + idx * esz : (char *)base;
}

static int alltoallv_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const alltoallv_args *a = args;
    int n = a->n, r = shoal_comm_rank(c);
    const size_t *sc = a->v, *sd = a->v + n, *rc = a->v + 2 * n, *rd = a->v + 3 * n;
    size_t esz = shoal_dtype_size(a->dtype);
    if (rc[r]) memcpy(at(a->recvbuf, rd[r], esz, 1), at(a->sendbuf, sd[r], esz, 1), rc[r] * esz);
    int st = SHOAL_OK;
    for (int i = 1; i < n && st == SHOAL_OK; i++) {
        int dst = (r + i) % n, src = (r - i + n) % n;
        /* Sent even when empty: a rank whose counts disagree with its peer's then gets a
         * protocol error instead of waiting for a message that never comes. */
        st = shoal__coll_sendrecv(c, SHOAL__LANE_DATA, tag, at(a->sendbuf, sd[dst], esz, sc[dst]),
                                  sc[dst] * esz, dst, at(a->recvbuf, rd[src], esz, rc[src]),
                                  rc[src] * esz, src, deadline);
    }
    return st;
}

/* Checks that buf[displs[j] .. displs[j] + counts[j]) is addressable for every j. */
static int check_layout(shoal_comm *c, const char *what, const char *name, const void *buf,
                        const size_t *counts, const size_t *displs, int n, shoal_dtype t) {
    size_t esz = shoal_dtype_size(t);
    for (int j = 0; j < n; j++) {
        size_t end = 0, bytes = 0;
        if (__builtin_add_overflow(displs[j], counts[j], &end) ||
            __builtin_mul_overflow(end, esz, &bytes))
            return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                    "%s: %s block %d (displacement %zu + count %zu) overflows",
                                    what, name, j, displs[j], counts[j]);
        if (counts[j] > 0 && !buf)
            return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                    "%s: %s is NULL with count %zu for rank %d", what, name,
                                    counts[j], j);
    }
    return SHOAL_OK;
}

static int alltoallv_start(shoal_comm *c, const char *what, const void *sendbuf,
                           const size_t *sendcounts, const size_t *sdispls, void *recvbuf,
                           const size_t *recvcounts, const size_t *rdispls, shoal_dtype dtype,
                           shoal_request **req) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c), st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype))) return st;
    if (!sendcounts || !sdispls || !recvcounts || !rdispls)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "%s: counts and displacements must not be NULL", what);
    if (sendbuf && sendbuf == recvbuf)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "%s: in place (sendbuf == recvbuf) is not supported", what);
    if ((st = check_layout(c, what, "sendbuf", sendbuf, sendcounts, sdispls, n, dtype)) ||
        (st = check_layout(c, what, "recvbuf", recvbuf, recvcounts, rdispls, n, dtype)))
        return st;
    if (sendcounts[r] != recvcounts[r])
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "%s: sendcounts[%d] = %zu but recvcounts[%d] = %zu", what, r,
                                sendcounts[r], r, recvcounts[r]);
    size_t size = sizeof(alltoallv_args) + 4 * (size_t)n * sizeof(size_t);
    alltoallv_args *a = malloc(size);
    if (!a) return shoal__coll_nomem(c, what, size);
    a->sendbuf = sendbuf;
    a->recvbuf = recvbuf;
    a->dtype = dtype;
    a->n = n;
    memcpy(a->v, sendcounts, (size_t)n * sizeof(size_t));
    memcpy(a->v + n, sdispls, (size_t)n * sizeof(size_t));
    memcpy(a->v + 2 * n, recvcounts, (size_t)n * sizeof(size_t));
    memcpy(a->v + 3 * n, rdispls, (size_t)n * sizeof(size_t));
    st = shoal__coll_run(c, alltoallv_body, a, size, req); /* copies a when queued */
    free(a);
    return st;
}

int shoal_alltoallv(shoal_comm *comm, const void *sendbuf, const size_t *sendcounts,
                    const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                    const size_t *rdispls, shoal_dtype dtype) {
    if (!comm) return SHOAL_ERR_INVALID;
    return alltoallv_start(comm, "alltoallv", sendbuf, sendcounts, sdispls, recvbuf, recvcounts,
                           rdispls, dtype, NULL);
}

int shoal_ialltoallv(shoal_comm *comm, const void *sendbuf, const size_t *sendcounts,
                     const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                     const size_t *rdispls, shoal_dtype dtype, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ialltoallv", req);
    if (st != SHOAL_OK) return st;
    return alltoallv_start(comm, "ialltoallv", sendbuf, sendcounts, sdispls, recvbuf, recvcounts,
                           rdispls, dtype, req);
}
