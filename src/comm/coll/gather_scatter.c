/* gather and scatter: binomial tree for small messages (log2(n) rounds, inner ranks forward
 * whole subtrees), linear for large ones (root posts every receive or send at once, so the
 * transfers overlap and nothing is copied twice). Message size for the choice is the whole
 * gathered buffer, size * count elements.
 *
 * The n-block buffer (recvbuf of gather, sendbuf of scatter) is used only on root.
 * In place on root: gather with sendbuf == recvbuf or sendbuf == recvbuf + root * block takes
 * root's block from its place in recvbuf; scatter with recvbuf == sendbuf or
 * recvbuf == sendbuf + root * block leaves root's block where it is. */
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"

typedef struct gs_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count; /* per rank */
    shoal_dtype dtype;
    int root;
} gs_args;

/* Largest subtree a binomial-tree node vr (relative to root) heads: its lowest set bit, or
 * for root the first power of two >= n; clipped to the group. Returns the bit in *mask. */
static int subtree(int vr, int n, int *mask) {
    int m = 1;
    while (m < n && !(vr & m)) m <<= 1;
    *mask = m;
    return m < n - vr ? m : n - vr;
}

/* Root of a linear gather/scatter: one request per peer, all posted before any is waited. */
static int linear_root(shoal_comm *c, uint32_t tag, double deadline, char *blocks, size_t bs,
                       int is_gather) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c), st = SHOAL_OK;
    shoal__reqq q;
    if (shoal__reqq_init(&q, n) != SHOAL_OK)
        return shoal__coll_nomem(c, is_gather ? "gather" : "scatter", 0);
    for (int j = 0; j < n && st == SHOAL_OK; j++)
        if (j != r)
            st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, !is_gather, blocks + (size_t)j * bs, bs,
                                  j, &q, 0);
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}

/* ---- gather -------------------------------------------------------------------------------- */

static int gather_in_place(const gs_args *a, size_t bs) {
    return a->sendbuf == a->recvbuf ||
           a->sendbuf == (const char *)a->recvbuf + (size_t)a->root * bs;
}

/* Binomial gather: node vr collects the blocks of relative ranks vr .. vr+size-1 in tmp (in
 * relative order), then sends them to its parent in one message. Root's tmp is recvbuf when
 * root is 0 (relative order is rank order), else it is rotated into recvbuf at the end. */
static int tree_gather(shoal_comm *c, uint32_t tag, double deadline, const gs_args *a, size_t bs) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    int vr = shoal__coll_mod(r - a->root, n), mask;
    int size = subtree(vr, n, &mask);
    const char *own = vr == 0 && gather_in_place(a, bs) ? (const char *)a->recvbuf + (size_t)r * bs
                                                        : (const char *)a->sendbuf;
    if (size == 1) /* a leaf sends its block straight from where it is */
        return shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, own, bs, (vr - mask + a->root) % n, NULL,
                                0, -1, deadline);
    char *tmp = (vr == 0 && a->root == 0) ? a->recvbuf : malloc((size_t)size * bs);
    if (!tmp) return shoal__coll_nomem(c, "gather", (size_t)size * bs);
    if (tmp != own) memcpy(tmp, own, bs);
    int st = SHOAL_OK, have = 1;
    for (int m = 1; m < mask && st == SHOAL_OK; m <<= 1) {
        if (vr + m >= n) break;
        int cnt = m < n - vr - m ? m : n - vr - m;
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, tmp + (size_t)m * bs,
                              (size_t)cnt * bs, (vr + m + a->root) % n, deadline);
        have = m + cnt;
    }
    if (st == SHOAL_OK && vr != 0)
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, tmp, (size_t)have * bs,
                              (vr - mask + a->root) % n, NULL, 0, -1, deadline);
    if (st == SHOAL_OK && vr == 0 && tmp != a->recvbuf)
        for (int j = 0; j < n; j++)
            memcpy((char *)a->recvbuf + (size_t)((j + a->root) % n) * bs, tmp + (size_t)j * bs, bs);
    if (tmp != a->recvbuf) free(tmp);
    return st;
}

static int gather_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const gs_args *a = args;
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t bs = a->count * shoal_dtype_size(a->dtype);
    if (bs == 0) return SHOAL_OK;
    if (shoal__coll_pick(c, (size_t)n * bs) == SHOAL__ALGO_RD && n > 1)
        return tree_gather(c, tag, deadline, a, bs);
    if (r != a->root)
        return shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, a->sendbuf, bs, a->root, NULL, 0, -1,
                                deadline);
    if (!gather_in_place(a, bs)) memcpy((char *)a->recvbuf + (size_t)r * bs, a->sendbuf, bs);
    return n > 1 ? linear_root(c, tag, deadline, a->recvbuf, bs, 1) : SHOAL_OK;
}

/* ---- scatter ------------------------------------------------------------------------------- */

static int scatter_in_place(const gs_args *a, size_t bs) {
    return a->recvbuf == a->sendbuf ||
           (const char *)a->recvbuf == (const char *)a->sendbuf + (size_t)a->root * bs;
}

/* Hands each child subtree of node vr (lowest set bit `mask`) its blocks, taken from `blocks`
 * (the node's subtree in relative order); all sends in flight at once. */
static int send_subtrees(shoal_comm *c, uint32_t tag, double deadline, const gs_args *a,
                         const char *blocks, size_t bs, int vr, int mask) {
    int n = shoal_comm_size(c), st = SHOAL_OK;
    shoal__reqq q;
    if (shoal__reqq_init(&q, 32) != SHOAL_OK) return shoal__coll_nomem(c, "scatter", 0);
    for (int m = mask >> 1; m > 0 && st == SHOAL_OK; m >>= 1) {
        if (vr + m >= n) continue;
        int cnt = m < n - vr - m ? m : n - vr - m;
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 1, (char *)blocks + (size_t)m * bs,
                              (size_t)cnt * bs, (vr + m + a->root) % n, &q, 0);
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}

/* Binomial scatter, the gather run backwards: node vr receives the blocks of its subtree from
 * its parent, then hands each child subtree its part (largest first). */
static int tree_scatter(shoal_comm *c, uint32_t tag, double deadline, const gs_args *a, size_t bs) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    int vr = shoal__coll_mod(r - a->root, n), mask;
    int size = subtree(vr, n, &mask);
    if (size == 1) /* a leaf receives its block straight into recvbuf */
        return shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, a->recvbuf, bs,
                                (vr - mask + a->root) % n, deadline);
    const char *blocks; /* this node's subtree blocks, in relative order */
    char *tmp = NULL;
    int st = SHOAL_OK;
    if (vr == 0 && a->root == 0) {
        blocks = a->sendbuf;
    } else if (!(tmp = malloc((size_t)size * bs))) {
        return shoal__coll_nomem(c, "scatter", (size_t)size * bs);
    } else if (vr == 0) {
        for (int j = 0; j < n; j++) /* rotate into relative order */
            memcpy(tmp + (size_t)j * bs,
                   (const char *)a->sendbuf + (size_t)((j + a->root) % n) * bs, bs);
        blocks = tmp;
    } else {
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, tmp, (size_t)size * bs,
                              (vr - mask + a->root) % n, deadline);
        blocks = tmp;
    }
    if (st == SHOAL_OK) st = send_subtrees(c, tag, deadline, a, blocks, bs, vr, mask);
    if (st == SHOAL_OK && !(vr == 0 && scatter_in_place(a, bs))) memcpy(a->recvbuf, blocks, bs);
    free(tmp);
    return st;
}

static int scatter_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const gs_args *a = args;
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t bs = a->count * shoal_dtype_size(a->dtype);
    if (bs == 0) return SHOAL_OK;
    if (shoal__coll_pick(c, (size_t)n * bs) == SHOAL__ALGO_RD && n > 1)
        return tree_scatter(c, tag, deadline, a, bs);
    if (r != a->root)
        return shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, a->recvbuf, bs, a->root,
                                deadline);
    int st = n > 1 ? linear_root(c, tag, deadline, (char *)a->sendbuf, bs, 0) : SHOAL_OK;
    if (st == SHOAL_OK && !scatter_in_place(a, bs))
        memcpy(a->recvbuf, (const char *)a->sendbuf + (size_t)r * bs, bs);
    return st;
}

/* ---- argument checks and entry points -------------------------------------------------------- */

static int gs_start(shoal_comm *c, const char *what, int is_gather, const void *sendbuf,
                    void *recvbuf, size_t count, shoal_dtype dtype, int root, shoal_request **req) {
    size_t bs = 0, total = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) ||
        (st = shoal__coll_arg_root(c, what, root)) ||
        (st = shoal__coll_arg_bytes(c, what, count, 1, dtype, &bs)) ||
        (st = shoal__coll_arg_bytes(c, what, count, (size_t)shoal_comm_size(c), dtype, &total)))
        return st;
    int at_root = shoal_comm_rank(c) == root;
    /* The n-block buffer matters only on root; the one-block buffer everywhere. */
    size_t send_bytes = is_gather ? bs : (at_root ? total : 0);
    size_t recv_bytes = is_gather ? (at_root ? total : 0) : bs;
    if ((st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, send_bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, recv_bytes)))
        return st;
    gs_args a = {sendbuf, recvbuf, count, dtype, root};
    return shoal__coll_run(c, is_gather ? gather_body : scatter_body, &a, sizeof a, req);
}

int shoal_gather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                 shoal_dtype dtype, int root) {
    if (!comm) return SHOAL_ERR_INVALID;
    return gs_start(comm, "gather", 1, sendbuf, recvbuf, sendcount, dtype, root, NULL);
}

int shoal_igather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                  shoal_dtype dtype, int root, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "igather", req);
    if (st != SHOAL_OK) return st;
    return gs_start(comm, "igather", 1, sendbuf, recvbuf, sendcount, dtype, root, req);
}

int shoal_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                  shoal_dtype dtype, int root) {
    if (!comm) return SHOAL_ERR_INVALID;
    return gs_start(comm, "scatter", 0, sendbuf, recvbuf, recvcount, dtype, root, NULL);
}

int shoal_iscatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                   shoal_dtype dtype, int root, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "iscatter", req);
    if (st != SHOAL_OK) return st;
    return gs_start(comm, "iscatter", 0, sendbuf, recvbuf, recvcount, dtype, root, req);
}
