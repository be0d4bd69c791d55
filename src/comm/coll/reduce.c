/* reduce: binomial tree for small messages (log2(n) rounds), ring reduce-scatter followed by
 * a gather of the reduced blocks to root for large ones (every rank sends about one message's
 * worth instead of root receiving log2(n) whole messages).
 *
 * recvbuf is used only on root: other ranks neither read nor write it (it may be NULL). */
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"

typedef struct reduce_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    shoal_dtype dtype;
    shoal_op op;
    int root;
} reduce_args;

/* Binomial tree over ranks relative to root (vr = 0 is root). In round `mask` a rank with
 * that bit set sends its partial result to vr - mask and is done; the others receive from
 * vr + mask. A partial result covers a contiguous range of relative ranks, and the receiver's
 * range is the lower one, so it is the left operand. */
static int tree_reduce(shoal_comm *c, uint32_t tag, double deadline, const reduce_args *a) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    int vr = shoal__coll_mod(r - a->root, n);
    size_t bytes = a->count * shoal_dtype_size(a->dtype);
    int has_child = vr % 2 == 0 && vr + 1 < n;
    const void *cur = a->sendbuf; /* this rank's partial result so far */
    void *work = NULL, *tmp = NULL;
    int st = SHOAL_OK;
    if (has_child) {
        work = vr == 0 ? a->recvbuf : malloc(bytes);
        tmp = malloc(bytes);
        if (!work || !tmp) {
            st = shoal__coll_nomem(c, "reduce", 2 * bytes);
            goto out;
        }
    }
    for (int mask = 1; mask < n; mask <<= 1) {
        if (vr & mask) {
            int parent = (vr - mask + a->root) % n;
            st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, cur, bytes, parent, NULL, 0, -1,
                                  deadline);
            break;
        }
        if (vr + mask >= n) continue;
        int child = (vr + mask + a->root) % n;
        st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, tmp, bytes, child, deadline);
        if (st != SHOAL_OK) break;
        shoal__reduce_pair(work, cur, tmp, a->count, a->dtype, a->op);
        cur = work;
    }
    if (st == SHOAL_OK && vr == 0 && a->op == SHOAL_AVG)
        shoal__avg_finish(a->recvbuf, a->count, a->dtype, n);
out:
    if (work != a->recvbuf) free(work);
    free(tmp);
    return st;
}

/* Root receives every other rank's reduced block straight into its place in recvbuf. */
static int gather_blocks(shoal_comm *c, uint32_t tag, double deadline, const reduce_args *a,
                         const void *mine, size_t mylen) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t esz = shoal_dtype_size(a->dtype);
    if (r != a->root) {
        if (mylen == 0) return SHOAL_OK; /* root knows the block is empty and expects nothing */
        return shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, mine, mylen * esz, a->root, NULL, 0, -1,
                                deadline);
    }
    shoal__reqq q;
    if (shoal__reqq_init(&q, n) != SHOAL_OK) return shoal__coll_nomem(c, "reduce", 0);
    int st = SHOAL_OK;
    for (int j = 0; j < n && st == SHOAL_OK; j++) {
        size_t off, len;
        shoal__coll_block(a->count, n, j, &off, &len);
        if (j == r || len == 0) continue;
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 0, (char *)a->recvbuf + off * esz,
                              len * esz, j, &q, 0);
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}

static int ring_reduce(shoal_comm *c, uint32_t tag, double deadline, const reduce_args *a) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    size_t esz = shoal_dtype_size(a->dtype), off, len;
    shoal__coll_block(a->count, n, r, &off, &len);
    void *mine = NULL;
    if (r == a->root)
        mine = (char *)a->recvbuf + off * esz;
    else if (len > 0 && !(mine = malloc(len * esz)))
        return shoal__coll_nomem(c, "reduce", len * esz);
    int st =
        shoal__ring_reduce_scatter(c, tag, deadline, a->sendbuf, mine, a->count, a->dtype, a->op);
    if (st == SHOAL_OK && a->op == SHOAL_AVG) shoal__avg_finish(mine, len, a->dtype, n);
    if (st == SHOAL_OK) st = gather_blocks(c, tag, deadline, a, mine, len);
    if (r != a->root) free(mine);
    return st;
}

static int reduce_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const reduce_args *a = args;
    int n = shoal_comm_size(c);
    size_t bytes = a->count * shoal_dtype_size(a->dtype);
    if (bytes == 0) return SHOAL_OK;
    if (n == 1) {
        if (a->recvbuf != a->sendbuf) memcpy(a->recvbuf, a->sendbuf, bytes);
        return SHOAL_OK;
    }
    if (shoal__coll_pick(c, bytes) == SHOAL__ALGO_RING) return ring_reduce(c, tag, deadline, a);
    return tree_reduce(c, tag, deadline, a);
}

static int reduce_start(shoal_comm *c, const char *what, const void *sendbuf, void *recvbuf,
                        size_t count, shoal_dtype dtype, shoal_op op, int root,
                        shoal_request **req) {
    size_t bytes = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) || (st = shoal__coll_arg_op(c, what, op)) ||
        (st = shoal__coll_arg_root(c, what, root)) ||
        (st = shoal__coll_arg_bytes(c, what, count, 1, dtype, &bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "sendbuf", sendbuf, bytes)))
        return st;
    if (shoal_comm_rank(c) == root &&
        (st = shoal__coll_arg_buf(c, what, "recvbuf", recvbuf, bytes)))
        return st;
    reduce_args a = {sendbuf, recvbuf, count, dtype, op, root};
    return shoal__coll_run(c, reduce_body, &a, sizeof a, req);
}

int shoal_reduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                 shoal_dtype dtype, shoal_op op, int root) {
    if (!comm) return SHOAL_ERR_INVALID;
    return reduce_start(comm, "reduce", sendbuf, recvbuf, count, dtype, op, root, NULL);
}

int shoal_ireduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                  shoal_dtype dtype, shoal_op op, int root, shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ireduce", req);
    if (st != SHOAL_OK) return st;
    return reduce_start(comm, "ireduce", sendbuf, recvbuf, count, dtype, op, root, req);
}
