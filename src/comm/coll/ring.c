/* The two pipelined ring engines (reduce-scatter and allgather) that the ring algorithms of
 * allreduce, reduce, reduce_scatter and allgather are built from.
 *
 * `total` elements are split into size blocks (shoal__coll_block). In n-1 steps every rank
 * sends one block to rank r+1 and receives one from rank r-1; the block received at step s is
 * the one sent at step s+1. Each block is cut into chunks of the tuning's chunk size, and a
 * chunk is forwarded as soon as it has arrived (and, for reduce-scatter, been reduced), so the
 * steps overlap like a pipeline instead of waiting for whole blocks.
 *
 * All messages between one pair carry the collective's tag, so they match in order: every rank
 * posts its receives in exactly the order (step, chunk) in which its left neighbour sends.
 *
 * Deadlock freedom: a rank posts the receive of its first chunk before it sends anything, and
 * whenever it blocks on a send it still has the receive of its next chunk posted; so the
 * neighbour a send waits for can always take it in. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"

enum {
    RS_POOL = 8,   /* chunk buffers of the reduce-scatter: 2 receiving, up to 6 being forwarded */
    RS_DEPTH = 2,  /* receives posted ahead: the next chunk arrives while this one is reduced */
    AG_DEPTH = 4,  /* allgather receives land in place, so they cost no buffer: post more */
    AG_SENDS = 16, /* allgather forwards in flight before the oldest is waited for */
};

typedef struct ring {
    shoal_comm *c;
    uint32_t tag;
    double deadline;
    int n, r, next, prev;
    int shift;      /* rank r sends block r - s - shift at step s (see send_block) */
    size_t total;   /* elements, split into n blocks */
    size_t esz, ce; /* element size; chunk length in elements */
} ring;

/* One chunk of the stream a rank receives: step s (0..n-2), chunk k of that step's block. */
typedef struct unit {
    int s;
    size_t k;
} unit;

static void ring_init(ring *g, shoal_comm *c, uint32_t tag, double deadline, size_t total,
                      size_t esz, int shift) {
    g->c = c;
    g->tag = tag;
    g->deadline = deadline;
    g->n = shoal_comm_size(c);
    g->r = shoal_comm_rank(c);
    g->next = (g->r + 1) % g->n;
    g->prev = (g->r + g->n - 1) % g->n;
    g->shift = shift;
    g->total = total;
    g->esz = esz;
    g->ce = shoal__coll_chunk_elems(c, esz, total / (size_t)g->n + 1);
}

/* shift 1 (reduce-scatter): at the last step (n-2) rank r receives block r, so it ends up
 * owning the reduction of block r. shift 0 (allgather): rank r starts by sending block r. */
static int send_block(const ring *g, int s) { return shoal__coll_mod(g->r - s - g->shift, g->n); }
static int recv_block(const ring *g, int s) { return send_block(g, s + 1); }

static size_t block_len(const ring *g, int b) {
    size_t off, len;
    shoal__coll_block(g->total, g->n, b, &off, &len);
    return len;
}

static size_t nchunks(const ring *g, int b) { return (block_len(g, b) + g->ce - 1) / g->ce; }

/* Element offset (in the whole buffer) and length of chunk k of block b. */
static void chunk_of(const ring *g, int b, size_t k, size_t *off, size_t *len) {
    size_t boff, blen;
    shoal__coll_block(g->total, g->n, b, &boff, &blen);
    *off = boff + k * g->ce;
    *len = blen - k * g->ce < g->ce ? blen - k * g->ce : g->ce;
}

/* Moves u past the end of empty or finished blocks; returns whether u is a real chunk. Empty
 * blocks are skipped on both sides alike, so they cost no message. */
static int unit_valid(const ring *g, unit *u) {
    while (u->s < g->n - 1 && u->k >= nchunks(g, recv_block(g, u->s))) {
        u->s++;
        u->k = 0;
    }
    return u->s < g->n - 1;
}

static int send_chunk(const ring *g, shoal__reqq *q, const void *buf, size_t len, int aux) {
    shoal_request *req = NULL;
    int st = shoal__coll_isend(g->c, SHOAL__LANE_DATA, g->tag, buf, len * g->esz, g->next, &req);
    if (st == SHOAL_OK) shoal__reqq_push(q, req, aux);
    return st;
}

/* ---- reduce-scatter ---------------------------------------------------------------------- */

typedef struct rs_state {
    ring g;
    const char *src; /* total elements: this rank's input */
    char *dst;       /* block r's length: the result */
    shoal_dtype t;
    shoal_op op;
    char *pool; /* RS_POOL slots of slot_bytes: received chunks, reduced, then forwarded */
    size_t slot_bytes;
    int free_slot[RS_POOL];
    int nfree;
    shoal__reqq sends; /* aux: the slot a send reads, -1 when it reads src */
    shoal__reqq recvs; /* aux: the slot a receive fills */
    unit post;         /* next chunk to post a receive for */
} rs_state;

/* A free slot, waiting for the oldest forward to finish when all are busy. That wait is safe:
 * it only happens while the receive of the next chunk is already posted. */
static int rs_take_slot(rs_state *s, int *slot) {
    while (s->nfree == 0) {
        assert(s->sends.len > 0); /* RS_POOL > RS_DEPTH + 1: some slot is always being sent */
        int aux = -1;
        int st = shoal__reqq_wait_oldest(s->g.c, &s->sends, s->g.deadline, &aux);
        if (st != SHOAL_OK) return st;
        if (aux >= 0) s->free_slot[s->nfree++] = aux;
    }
    *slot = s->free_slot[--s->nfree];
    return SHOAL_OK;
}

/* Keeps RS_DEPTH receives posted. */
static int rs_post(rs_state *s) {
    ring *g = &s->g;
    while (s->recvs.len < RS_DEPTH && unit_valid(g, &s->post)) {
        int slot, st = rs_take_slot(s, &slot);
        if (st != SHOAL_OK) return st;
        size_t off, len;
        chunk_of(g, recv_block(g, s->post.s), s->post.k, &off, &len);
        shoal_request *req = NULL;
        st = shoal__coll_irecv(g->c, SHOAL__LANE_DATA, g->tag,
                               s->pool + (size_t)slot * s->slot_bytes, len * g->esz, g->prev, &req);
        if (st != SHOAL_OK) {
            s->free_slot[s->nfree++] = slot;
            return st;
        }
        shoal__reqq_push(&s->recvs, req, slot);
        s->post.k++;
    }
    return SHOAL_OK;
}

/* Step 0: this rank's own input for block send_block(0) goes out straight from src. */
static int rs_first_sends(rs_state *s) {
    ring *g = &s->g;
    int b = send_block(g, 0);
    for (size_t k = 0, nk = nchunks(g, b); k < nk; k++) {
        size_t off, len;
        chunk_of(g, b, k, &off, &len);
        int st = send_chunk(g, &s->sends, s->src + off * g->esz, len, -1);
        if (st != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

/* Handles one received chunk u (in slot): partial sum of the ranks upstream, op this rank's
 * input. Before the last step it is forwarded; at the last step it is the final result. */
static int rs_consume(rs_state *s, const unit *u, int slot, int *must_drain) {
    ring *g = &s->g;
    size_t off, len;
    chunk_of(g, recv_block(g, u->s), u->k, &off, &len);
    char *buf = s->pool + (size_t)slot * s->slot_bytes;
    const char *mine = s->src + off * g->esz;
    if (u->s < g->n - 2) {
        shoal__reduce_into(buf, mine, len, s->t, s->op);
        return send_chunk(g, &s->sends, buf, len, slot);
    }
    if (*must_drain) {
        /* dst overlaps src outside block r: the step-0 sends may still read what dst is about
         * to overwrite. */
        *must_drain = 0;
        int st = shoal__reqq_drain(g->c, &s->sends, g->deadline);
        if (st != SHOAL_OK) return st;
    }
    size_t boff, blen;
    shoal__coll_block(g->total, g->n, g->r, &boff, &blen);
    shoal__reduce_pair(s->dst + (off - boff) * g->esz, buf, mine, len, s->t, s->op);
    s->free_slot[s->nfree++] = slot;
    return SHOAL_OK;
}

int shoal__ring_reduce_scatter(shoal_comm *c, uint32_t tag, double deadline, const void *src,
                               void *dst, size_t total, shoal_dtype t, shoal_op op) {
    rs_state s;
    memset(&s, 0, sizeof s);
    size_t esz = shoal_dtype_size(t);
    ring_init(&s.g, c, tag, deadline, total, esz, 1);
    ring *g = &s.g;
    size_t boff, blen;
    shoal__coll_block(total, g->n, g->r, &boff, &blen);
    if (g->n == 1) {
        if (dst != src && total) memmove(dst, src, total * esz);
        return SHOAL_OK;
    }
    size_t maxblock = (total + (size_t)g->n - 1) / (size_t)g->n;
    if (maxblock == 0) return SHOAL_OK;
    s.src = src;
    s.dst = dst;
    s.t = t;
    s.op = op;
    s.slot_bytes = (maxblock < g->ce ? maxblock : g->ce) * esz;
    int st = SHOAL_OK;
    s.pool = malloc(RS_POOL * s.slot_bytes);
    if (!s.pool) return shoal__coll_nomem(c, "reduce-scatter ring", RS_POOL * s.slot_bytes);
    for (int i = 0; i < RS_POOL; i++) s.free_slot[i] = i;
    s.nfree = RS_POOL;
    if (shoal__reqq_init(&s.sends, RS_POOL + (int)nchunks(g, send_block(g, 0)) + 1) != SHOAL_OK ||
        shoal__reqq_init(&s.recvs, RS_DEPTH) != SHOAL_OK) {
        st = shoal__coll_nomem(c, "reduce-scatter ring", 0);
        goto out;
    }
    int must_drain = (const char *)dst != (const char *)src + boff * esz &&
                     shoal__coll_overlap(dst, blen * esz, src, total * esz);
    st = rs_post(&s); /* the first receive is posted before anything is sent */
    if (st == SHOAL_OK) st = rs_first_sends(&s);
    unit cur = {0, 0};
    while (st == SHOAL_OK && unit_valid(g, &cur)) {
        int slot = -1;
        st = shoal__reqq_wait_oldest(c, &s.recvs, deadline, &slot);
        if (st != SHOAL_OK) break;
        st = rs_post(&s); /* next chunk in flight while this one is reduced */
        if (st == SHOAL_OK) st = rs_consume(&s, &cur, slot, &must_drain);
        cur.k++;
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &s.sends, deadline);
out:
    shoal__reqq_release(c, &s.recvs, st);
    shoal__reqq_release(c, &s.sends, st);
    free(s.pool);
    return st;
}

/* ---- allgather ----------------------------------------------------------------------------- */

typedef struct ag_state {
    ring g;
    char *buf;
    shoal__reqq sends, recvs;
    unit post;
} ag_state;

static int ag_post(ag_state *s) {
    ring *g = &s->g;
    while (s->recvs.len < AG_DEPTH && unit_valid(g, &s->post)) {
        size_t off, len;
        chunk_of(g, recv_block(g, s->post.s), s->post.k, &off, &len);
        shoal_request *req = NULL;
        int st = shoal__coll_irecv(g->c, SHOAL__LANE_DATA, g->tag, s->buf + off * g->esz,
                                   len * g->esz, g->prev, &req);
        if (st != SHOAL_OK) return st;
        shoal__reqq_push(&s->recvs, req, 0);
        s->post.k++;
    }
    return SHOAL_OK;
}

/* Sends chunk (off, len) of buf, first waiting for the oldest send when the queue is full. */
static int ag_send(ag_state *s, size_t off, size_t len) {
    if (s->sends.len == s->sends.cap) {
        int st = shoal__reqq_wait_oldest(s->g.c, &s->sends, s->g.deadline, NULL);
        if (st != SHOAL_OK) return st;
    }
    return send_chunk(&s->g, &s->sends, s->buf + off * s->g.esz, len, 0);
}

int shoal__ring_allgather(shoal_comm *c, uint32_t tag, double deadline, void *buf, size_t total,
                          size_t esz) {
    ag_state s;
    memset(&s, 0, sizeof s);
    ring_init(&s.g, c, tag, deadline, total, esz, 0);
    ring *g = &s.g;
    if (g->n == 1 || total == 0) return SHOAL_OK;
    s.buf = buf;
    int st = SHOAL_OK;
    size_t mine = nchunks(g, g->r);
    if (shoal__reqq_init(&s.sends, (int)mine + AG_SENDS) != SHOAL_OK ||
        shoal__reqq_init(&s.recvs, AG_DEPTH) != SHOAL_OK) {
        st = shoal__coll_nomem(c, "allgather ring", 0);
        goto out;
    }
    st = ag_post(&s);
    for (size_t k = 0; st == SHOAL_OK && k < mine; k++) {
        size_t off, len;
        chunk_of(g, g->r, k, &off, &len);
        st = ag_send(&s, off, len);
    }
    unit cur = {0, 0};
    while (st == SHOAL_OK && unit_valid(g, &cur)) {
        st = shoal__reqq_wait_oldest(c, &s.recvs, deadline, NULL);
        if (st == SHOAL_OK) st = ag_post(&s);
        if (st == SHOAL_OK && cur.s < g->n - 2) { /* the last step's block stops here */
            size_t off, len;
            chunk_of(g, recv_block(g, cur.s), cur.k, &off, &len);
            st = ag_send(&s, off, len);
        }
        cur.k++;
    }
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &s.sends, deadline);
out:
    shoal__reqq_release(c, &s.recvs, st);
    shoal__reqq_release(c, &s.sends, st);
    return st;
}
