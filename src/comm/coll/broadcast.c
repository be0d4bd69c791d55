/* broadcast: binomial tree for small messages (log2(n) rounds); for large ones a chain
 * root -> root+1 -> ... pipelined in chunks, so every link carries the message once and all
 * links are busy at the same time.
 *
 * Why a chain and not scatter + ring allgather (van de Geijn): over TCP loopback every byte
 * moved costs CPU on the same few cores, and the chain moves (n-1) message sizes in total
 * against (n-1) + (n-1)/n for scatter + allgather. Measured with `shoal bench coll --op
 * broadcast` on a 2-core host, 1-16 MiB, n = 3, 4, 8: the chain was 5-50% faster in most
 * sizes (both within noise of each other at 8-16 MiB with 8 oversubscribed ranks). */
#include <stdlib.h>
#include <string.h>

#include "comm/shm_coll.h"
#include "comm/coll/coll_util.h"

enum { CHAIN_DEPTH = 4 }; /* chunk receives posted ahead: they land in place, so cost nothing */

typedef struct bcast_args {
    void *buf;
    size_t count;
    shoal_dtype dtype;
    int root;
} bcast_args;

/* Binomial tree over ranks relative to root: a rank receives from vr minus its lowest set bit,
 * then sends to vr + m for every smaller power of two m (largest subtree first). */
static int tree_bcast(shoal_comm *c, uint32_t tag, double deadline, const bcast_args *a) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    int vr = shoal__coll_mod(r - a->root, n);
    size_t bytes = a->count * shoal_dtype_size(a->dtype);
    int mask = 1, st = SHOAL_OK;
    for (; mask < n; mask <<= 1) {
        if (vr & mask) {
            st = shoal__coll_xchg(c, SHOAL__LANE_DATA, tag, NULL, 0, -1, a->buf, bytes,
                                  (vr - mask + a->root) % n, deadline);
            break;
        }
    }
    if (st != SHOAL_OK) return st;
    shoal__reqq q; /* the sends to the children, all in flight at once */
    if (shoal__reqq_init(&q, 32) != SHOAL_OK) return shoal__coll_nomem(c, "broadcast", 0);
    for (mask >>= 1; mask > 0 && st == SHOAL_OK; mask >>= 1) {
        if (vr + mask >= n) continue;
        st = shoal__coll_post(c, SHOAL__LANE_DATA, tag, 1, a->buf, bytes, (vr + mask + a->root) % n,
                              &q, 0);
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}

typedef struct chain {
    shoal_comm *c;
    uint32_t tag;
    double deadline;
    char *buf;
    size_t count, esz, ce, nchunks;
    int prev, next; /* -1 at the ends of the chain */
    shoal__reqq sends, recvs;
    size_t posted; /* chunks whose receive has been posted */
} chain;

static void chain_chunk(const chain *ch, size_t k, size_t *off, size_t *len) {
    *off = k * ch->ce;
    *len = ch->count - *off < ch->ce ? ch->count - *off : ch->ce;
}

static int chain_post(chain *ch) {
    while (ch->recvs.len < CHAIN_DEPTH && ch->posted < ch->nchunks) {
        size_t off, len;
        chain_chunk(ch, ch->posted, &off, &len);
        shoal_request *req = NULL;
        int st = shoal__coll_irecv(ch->c, SHOAL__LANE_DATA, ch->tag, ch->buf + off * ch->esz,
                                   len * ch->esz, ch->prev, &req);
        if (st != SHOAL_OK) return st;
        shoal__reqq_push(&ch->recvs, req, 0);
        ch->posted++;
    }
    return SHOAL_OK;
}

static int chain_send(chain *ch, size_t k) {
    size_t off, len;
    chain_chunk(ch, k, &off, &len);
    shoal_request *req = NULL;
    int st = shoal__coll_isend(ch->c, SHOAL__LANE_DATA, ch->tag, ch->buf + off * ch->esz,
                               len * ch->esz, ch->next, &req);
    if (st == SHOAL_OK) shoal__reqq_push(&ch->sends, req, 0);
    return st;
}

/* Every chunk is forwarded as soon as it arrives; the send queue holds all of them (at most
 * SHOAL__COLL_MAX_CHUNKS), so forwarding never waits for the next rank. */
static int chain_bcast(shoal_comm *c, uint32_t tag, double deadline, const bcast_args *a) {
    int n = shoal_comm_size(c), r = shoal_comm_rank(c);
    int vr = shoal__coll_mod(r - a->root, n);
    chain ch;
    memset(&ch, 0, sizeof ch);
    ch.c = c;
    ch.tag = tag;
    ch.deadline = deadline;
    ch.buf = a->buf;
    ch.count = a->count;
    ch.esz = shoal_dtype_size(a->dtype);
    ch.ce = shoal__coll_chunk_elems(c, ch.esz, a->count);
    ch.nchunks = (a->count + ch.ce - 1) / ch.ce;
    ch.prev = vr > 0 ? (r + n - 1) % n : -1;
    ch.next = vr + 1 < n ? (r + 1) % n : -1;
    int st = SHOAL_OK;
    if (shoal__reqq_init(&ch.sends, (int)ch.nchunks) != SHOAL_OK ||
        shoal__reqq_init(&ch.recvs, CHAIN_DEPTH) != SHOAL_OK) {
        st = shoal__coll_nomem(c, "broadcast", 0);
        goto out;
    }
    for (size_t k = 0; k < ch.nchunks && st == SHOAL_OK; k++) {
        if (ch.prev >= 0) {
            st = chain_post(&ch);
            if (st == SHOAL_OK) st = shoal__reqq_wait_oldest(c, &ch.recvs, deadline, NULL);
            if (st == SHOAL_OK) st = chain_post(&ch); /* keep the next chunks coming */
        }
        if (st == SHOAL_OK && ch.next >= 0) st = chain_send(&ch, k);
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &ch.sends, deadline);
out:
    shoal__reqq_release(c, &ch.recvs, st);
    shoal__reqq_release(c, &ch.sends, st);
    return st;
}

static int bcast_body(shoal_comm *c, uint32_t tag, double deadline, void *args) {
    const bcast_args *a = args;
    size_t bytes = a->count * shoal_dtype_size(a->dtype);
    if (bytes == 0 || shoal_comm_size(c) == 1) return SHOAL_OK;
    if (shoal__coll_pick(c, bytes) == SHOAL__ALGO_RING) return chain_bcast(c, tag, deadline, a);
    return tree_bcast(c, tag, deadline, a);
}

static int bcast_start(shoal_comm *c, const char *what, void *buf, size_t count, shoal_dtype dtype,
                       int root, shoal_request **req) {
    size_t bytes = 0;
    int st;
    if ((st = shoal__coll_arg_dtype(c, what, dtype)) ||
        (st = shoal__coll_arg_root(c, what, root)) ||
        (st = shoal__coll_arg_bytes(c, what, count, 1, dtype, &bytes)) ||
        (st = shoal__coll_arg_buf(c, what, "buf", buf, bytes)))
        return st;
    /* from the root's buffer straight: measured faster than the chain from 128 KiB up to
     * 16 MiB (2 ranks, bench/compare_mpi.sh; 128-512 KiB also with 3, 4 and 8), slower above */
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && bytes >= SHOAL__SHM_DIRECT_BCAST_MIN &&
        bytes <= (16u << 20) && shoal__shm_direct_ok(c, bytes))
        return shoal__shm_direct_broadcast(c, buf, bytes, root);
    if (!req && shoal__comm_algo(c) == SHOAL__ALGO_AUTO && shoal__shm_coll_ok(c, bytes))
        return shoal__shm_broadcast(c, buf, bytes, root);
    bcast_args a = {buf, count, dtype, root};
    return shoal__coll_run(c, bcast_body, &a, sizeof a, req);
}

int shoal_broadcast(shoal_comm *comm, void *buf, size_t count, shoal_dtype dtype, int root) {
    if (!comm) return SHOAL_ERR_INVALID;
    return bcast_start(comm, "broadcast", buf, count, dtype, root, NULL);
}

int shoal_ibroadcast(shoal_comm *comm, void *buf, size_t count, shoal_dtype dtype, int root,
                     shoal_request **req) {
    if (!comm) return SHOAL_ERR_INVALID;
    int st = shoal__coll_arg_req(comm, "ibroadcast", req);
    if (st != SHOAL_OK) return st;
    return bcast_start(comm, "ibroadcast", buf, count, dtype, root, req);
}
