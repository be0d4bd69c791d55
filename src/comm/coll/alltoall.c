/* alltoall and alltoallv: pairwise exchange. In step i (1..n-1) rank r sends its block for
 * r+i and receives the block from r-i, so every rank sends and receives exactly one message
 * per step and no rank is a hot spot. Two steps are kept in flight (each pair meets in
 * exactly one step, so their messages cannot be confused): that hides a step's latency
 * behind the next one; on a 2-core loopback host more than two helped nothing.
 *
 * In place alltoall (sendbuf == recvbuf): the block received from r-i would overwrite the
 * block still to be sent to r-i, so steps i and n-i are done together: rank r exchanges with
 * both r+i and r-i at once, receiving into two temporary blocks that replace the sent ones
 * when both exchanges are done. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"

typedef struct alltoall_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count; /* per peer */
    shoal_dtype dtype;
} alltoall_args;

enum { PAIR_WINDOW = 2 }; /* exchange steps in flight */

/* What step i moves: the send to dst and the receive from src. */
typedef struct step_io {
    const void *sbuf;
    size_t sbytes;
    void *rbuf;
    size_t rbytes;
} step_io;
typedef void (*step_fn)(const void *ctx, int dst, int src, step_io *io);

/* Steps 1..n-1 with up to PAIR_WINDOW of them in flight. The queue holds the requests in
 * posting order, so before step i is posted the oldest ones are those of step i - PAIR_WINDOW:
 * waiting for exactly that many frees its place. */
static int pairwise_run(shoal_comm *c, uint32_t tag, double deadline, step_fn f, const void *ctx) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c), st = SHOAL_OK;
    int nreq[PAIR_WINDOW] = {0}; /* requests of each step in flight (more than 2 if split) */
    shoal__reqq q;
    if (shoal__reqq_init(&q, 2 * PAIR_WINDOW) != SHOAL_OK)
        return shoal__coll_nomem(c, "alltoall", 0);
    for (int i = 1; i < n && st == SHOAL_OK; i++) {
        int slot = i % PAIR_WINDOW;
        for (int k = 0; i > PAIR_WINDOW && k < nreq[slot] && st == SHOAL_OK; k++)
            st = shoal__reqq_wait_oldest(c, &q, deadline, NULL);
        if (st != SHOAL_OK) break;
        int dst = (r + i) % n, src = (r - i + n) % n, before = q.len;
        step_io io;
        f(ctx, dst, src, &io);
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 0, io.rbuf, io.rbytes, src, &q, 0);
        if (st == SHOAL_OK)
            st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 1, (void *)io.sbuf, io.sbytes, dst, &q,
                                  0);
        nreq[slot] = q.len - before;
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}

typedef struct alltoall_io {
    const char *send;
    char *recv;
    size_t bs;
} alltoall_io;

static void alltoall_step(const void *ctx, int dst, int src, step_io *io) {
    const alltoall_io *x = ctx;
    io->sbuf = x->send + (size_t)dst * x->bs;
    io->sbytes = x->bs;
    io->rbuf = x->recv + (size_t)src * x->bs;
    io->rbytes = x->bs;
}

static int pairwise(shoal_comm *c, uint32_t tag, double deadline, const char *send, char *recv,
                    size_t bs) {
    int r = shoal_comm_rank(c);
    memcpy(recv + (size_t)r * bs, send + (size_t)r * bs, bs);
    alltoall_io x = {send, recv, bs};
    return pairwise_run(c, tag, deadline, alltoall_step, &x);
}

/* Exchanges block `peer` of buf with peer (n even, i = n/2: r+i == r-i). */
static int swap_one(shoal_comm *c, uint32_t tag, double deadline, char *buf, char *tmp, size_t bs,
                    int peer) {
    int st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, buf + (size_t)peer * bs, bs, peer, tmp, bs,
                              peer, deadline);
    if (st == SHOAL_OK) memcpy(buf + (size_t)peer * bs, tmp, bs);
    return st;
}

/* Exchanges blocks `up` and `down` of buf with those two ranks at once. */
static int swap_two(shoal_comm *c, uint32_t tag, double deadline, char *buf, char *tmp, size_t bs,
                    int up, int down) {
    shoal__reqq q;
    if (shoal__reqq_init(&q, 4) != SHOAL_OK) return shoal__coll_nomem(c, "alltoall", 0);
    int st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 0, tmp, bs, up, &q, 0);
    if (st == SHOAL_OK)
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 0, tmp + bs, bs, down, &q, 0);
    if (st == SHOAL_OK)
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 1, buf + (size_t)up * bs, bs, up, &q, 0);
    if (st == SHOAL_OK)
        st =
            shoal__coll_post(c, SHOAL__LANE_DATA, tag, 1, buf + (size_t)down * bs, bs, down, &q, 0);
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    if (st != SHOAL_OK) return st;
    memcpy(buf + (size_t)up * bs, tmp, bs);
    memcpy(buf + (size_t)down * bs, tmp + bs, bs);
    return SHOAL_OK;
}

static int pairwise_in_place(shoal_comm *c, uint32_t tag, double deadline, char *buf, size_t bs) {
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

static void alltoallv_step(const void *ctx, int dst, int src, step_io *io) {
    const alltoallv_args *a = ctx;
    int n = a->n;
    const size_t *sc = a->v, *sd = a->v + n, *rc = a->v + 2 * n, *rd = a->v + 3 * n;
    size_t esz = shoal_dtype_size(a->dtype);
    /* Sent even when empty: a rank whose counts disagree with its peer's then gets a
     * protocol error instead of waiting for a message that never comes. */
    io->sbuf = at(a->sendbuf, sd[dst], esz, sc[dst]);
    io->sbytes = sc[dst] * esz;
    io->rbuf = at(a->recvbuf, rd[src], esz, rc[src]);
    io->rbytes = rc[src] * esz;
}

static int alltoallv_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const alltoallv_args *a = args;
    int n = a->n, r = shoal_comm_rank(c);
    const size_t *sd = a->v + n, *rc = a->v + 2 * n, *rd = a->v + 3 * n;
    size_t esz = shoal_dtype_size(a->dtype);
    if (rc[r]) memcpy(at(a->recvbuf, rd[r], esz, 1), at(a->sendbuf, sd[r], esz, 1), rc[r] * esz);
    return pairwise_run(c, tag, deadline, alltoallv_step, a);
}

/* Checks that buf[displs[j] .. displs[j] + counts[j]) is addressable for every j. */
static int check_layout(shoal_comm *c, const char *what, const char *name, const void *buf,
                        const size_t *counts, const size_t *displs, int n, shoal_dtype t) {
    size_t esz = shoal_dtype_size(t);
    for (int j = 0; j < n; j++) {
        size_t end = 0, bytes = 0;
        if (counts[j] == 0) continue; /* an empty block's displacement is never used */
        if (__builtin_add_overflow(displs[j], counts[j], &end) ||
            __builtin_mul_overflow(end, esz, &bytes) || bytes > (size_t)PTRDIFF_MAX)
            return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                    "%s: %s block %d (displacement %zu + count %zu) overflows",
                                    what, name, j, displs[j], counts[j]);
        if (!buf)
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
