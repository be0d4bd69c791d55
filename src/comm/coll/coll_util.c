/* Shared helpers of the collectives: argument checks, algorithm choice, request FIFO. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/coll/coll_util.h"
#include "common/common.h"

int shoal__coll_arg_dtype(const shoal_comm *c, const char *what, shoal_dtype t) {
    if ((unsigned)t >= SHOAL_DTYPE_COUNT)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: unknown dtype %d", what,
                                (int)t);
    return SHOAL_OK;
}

int shoal__coll_arg_op(const shoal_comm *c, const char *what, shoal_op op) {
    if ((unsigned)op >= SHOAL_OP_COUNT)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: unknown op %d", what, (int)op);
    return SHOAL_OK;
}

int shoal__coll_arg_root(const shoal_comm *c, const char *what, int root) {
    int n = shoal_comm_size(c);
    if (root < 0 || root >= n)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "%s: root %d out of range (group of %d)", what, root, n);
    return SHOAL_OK;
}

int shoal__coll_arg_bytes(const shoal_comm *c, const char *what, size_t count, size_t mult,
                          shoal_dtype t, size_t *bytes) {
    size_t esz = shoal_dtype_size(t), per = 0;
    /* Both products are checked: count comes from the caller. No object is larger than
     * PTRDIFF_MAX bytes, so a size beyond that is a bad count too (and pointer differences
     * inside the buffer stay defined). */
    if (__builtin_mul_overflow(mult, esz, &per) || __builtin_mul_overflow(count, per, bytes) ||
        *bytes > (size_t)PTRDIFF_MAX) {
        if (mult == 1)
            return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                    "%s: count %zu of %s is too large for the address space", what,
                                    count, shoal_dtype_name(t));
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "%s: count %zu of %s times %zu ranks is too large for the "
                                "address space",
                                what, count, shoal_dtype_name(t), mult);
    }
    return SHOAL_OK;
}

int shoal__coll_arg_buf(const shoal_comm *c, const char *what, const char *name, const void *buf,
                        size_t bytes) {
    if (!buf && bytes > 0)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: %s is NULL with %zu bytes",
                                what, name, bytes);
    return SHOAL_OK;
}

int shoal__coll_arg_req(const shoal_comm *c, const char *what, shoal_request **req) {
    if (!req) return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: req is NULL", what);
    *req = NULL;
    return SHOAL_OK;
}

shoal__algo shoal__coll_pick(const shoal_comm *c, size_t bytes) {
    shoal__algo a = shoal__comm_algo(c);
    if (a == SHOAL__ALGO_RING || a == SHOAL__ALGO_RD) return a;
    return bytes >= shoal__comm_tuning(c)->ring_threshold ? SHOAL__ALGO_RING : SHOAL__ALGO_RD;
}

size_t shoal__coll_piece(const shoal_comm *c) {
    uint64_t m = shoal__comm_tuning(c)->max_message, b = 0;
    if (m == 0) /* the core did not say: the setting (environment or default) */
        m = shoal__setting_bytes("max_message", &b, NULL, 0) == SHOAL_OK && b ? b : 1ull << 30;
    return m > (uint64_t)PTRDIFF_MAX ? (size_t)PTRDIFF_MAX : (size_t)m;
}

size_t shoal__coll_chunk_elems(const shoal_comm *c, size_t esz, size_t maxlen) {
    uint64_t chunk = shoal__comm_tuning(c)->chunk / esz;
    size_t ce = chunk > SIZE_MAX ? SIZE_MAX : (size_t)chunk;
    size_t least = maxlen / SHOAL__COLL_MAX_CHUNKS + (maxlen % SHOAL__COLL_MAX_CHUNKS != 0);
    size_t most = shoal__coll_piece(c) / esz;
    if (ce < least) ce = least;
    if (ce > most) ce = most;
    return ce ? ce : 1;
}

int shoal__coll_overlap(const void *a, size_t alen, const void *b, size_t blen) {
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    if (alen == 0 || blen == 0) return 0;
    return pa < pb + blen && pb < pa + alen;
}

int shoal__coll_nomem(const shoal_comm *c, const char *what, size_t bytes) {
    if (bytes == 0) return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "%s: out of memory", what);
    return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "%s: out of memory (%zu bytes)", what,
                            bytes);
}

/* Error text and ranks of a failure, saved while requests are cancelled (cancelling and
 * freeing must not overwrite why the collective failed). */
typedef struct saved_error {
    char text[512];
    int ranks[64];
    int nranks;
} saved_error;

static void save_error(shoal_comm *c, saved_error *e) {
    snprintf(e->text, sizeof e->text, "%s", shoal_comm_last_error(c));
    int nr = shoal_comm_error_ranks(c, e->ranks, 64);
    e->nranks = nr < 0 ? 0 : nr > 64 ? 64 : nr;
}

static int restore_error(shoal_comm *c, const saved_error *e, int status) {
    if (status == SHOAL_OK) return SHOAL_OK;
    return shoal__comm_fail(c, status, e->ranks, e->nranks, "%s", e->text);
}

static void cancel_free(shoal_request **r) {
    if (!*r) return;
    shoal_cancel(*r);
    shoal_request_free(*r);
    *r = NULL;
}


/* ---- request FIFO ---- */

int shoal__reqq_init(shoal__reqq *q, int cap) {
    memset(q, 0, sizeof *q);
    if (cap < 1) cap = 1;
    q->req = calloc((size_t)cap, sizeof *q->req);
    q->aux = calloc((size_t)cap, sizeof *q->aux);
    if (!q->req || !q->aux) {
        free(q->req);
        free(q->aux);
        q->req = NULL;
        q->aux = NULL;
        return SHOAL_ERR_NOMEM;
    }
    q->cap = cap;
    return SHOAL_OK;
}

void shoal__reqq_push(shoal__reqq *q, shoal_request *r, int aux) {
    int i = (q->head + q->len) % q->cap;
    q->req[i] = r;
    q->aux[i] = aux;
    q->len++;
}

/* Cancels and frees every queued request, keeping the error text of `status`. */
static int reqq_abandon(shoal_comm *c, shoal__reqq *q, int status) {
    saved_error e;
    save_error(c, &e);
    for (int i = 0; i < q->len; i++) cancel_free(&q->req[(q->head + i) % q->cap]);
    q->head = 0;
    q->len = 0;
    return restore_error(c, &e, status);
}

int shoal__reqq_wait_oldest(shoal_comm *c, shoal__reqq *q, double deadline, int *aux) {
    if (q->len == 0) return SHOAL_OK;
    shoal_request *r = q->req[q->head];
    if (aux) *aux = q->aux[q->head];
    q->req[q->head] = NULL;
    q->head = (q->head + 1) % q->cap;
    q->len--;
    int st = shoal__coll_waitall(c, &r, 1, deadline);
    if (st != SHOAL_OK && q->len > 0) return reqq_abandon(c, q, st);
    return st;
}

int shoal__reqq_drain(shoal_comm *c, shoal__reqq *q, double deadline) {
    while (q->len > 0) {
        /* Wait for the longest contiguous run in one call: on a timeout the error then names
         * every peer still pending, not just one. */
        int run = q->cap - q->head;
        if (run > q->len) run = q->len;
        shoal_request **first = &q->req[q->head];
        q->head = (q->head + run) % q->cap;
        q->len -= run;
        int st = shoal__coll_waitall(c, first, run, deadline);
        for (int i = 0; i < run; i++) first[i] = NULL;
        if (st != SHOAL_OK) return q->len > 0 ? reqq_abandon(c, q, st) : st;
    }
    return SHOAL_OK;
}

int shoal__reqq_reserve(shoal__reqq *q, int extra) {
    if (extra <= q->cap - q->len) return SHOAL_OK;
    if (extra > INT_MAX / 2 - q->len) return SHOAL_ERR_NOMEM;
    int cap = q->cap * 2 > q->len + extra ? q->cap * 2 : q->len + extra;
    shoal_request **req = calloc((size_t)cap, sizeof *req);
    int *aux = calloc((size_t)cap, sizeof *aux);
    if (!req || !aux) {
        free(req);
        free(aux);
        return SHOAL_ERR_NOMEM;
    }
    for (int i = 0; i < q->len; i++) { /* unroll the ring into the new, linear arrays */
        req[i] = q->req[(q->head + i) % q->cap];
        aux[i] = q->aux[(q->head + i) % q->cap];
    }
    free(q->req);
    free(q->aux);
    q->req = req;
    q->aux = aux;
    q->cap = cap;
    q->head = 0;
    return SHOAL_OK;
}

void shoal__reqq_release(shoal_comm *c, shoal__reqq *q, int status) {
    if (q->len > 0) reqq_abandon(c, q, status);
    free(q->req);
    free(q->aux);
    memset(q, 0, sizeof *q);
}

/* ---- messages longer than one piece ---- */

int shoal__coll_post(shoal_comm *c, int lane, uint32_t tag, int is_send, void *buf, size_t bytes,
                     int peer, shoal__reqq *q, int aux) {
    size_t piece = shoal__coll_piece(c), np = bytes ? (bytes + piece - 1) / piece : 1;
    if (np > INT_MAX / 4 || shoal__reqq_reserve(q, (int)np) != SHOAL_OK)
        return shoal__coll_nomem(c, "collective", np * sizeof(shoal_request *));
    for (size_t i = 0; i < np; i++) {
        size_t off = i * piece, len = bytes - off < piece ? bytes - off : piece;
        char *p = off ? (char *)buf + off : buf; /* no arithmetic on a NULL empty buffer */
        shoal_request *req = NULL;
        int st = is_send ? shoal__coll_isend(c, lane, tag, p, len, peer, &req)
                         : shoal__coll_irecv(c, lane, tag, p, len, peer, &req);
        if (st != SHOAL_OK) return st;
        shoal__reqq_push(q, req, aux);
    }
    return SHOAL_OK;
}

int shoal__coll_xchg(shoal_comm *c, int lane, uint32_t tag, const void *sbuf, size_t sbytes,
                     int dst, void *rbuf, size_t rbytes, int src, double deadline) {
    size_t piece = shoal__coll_piece(c);
    if (sbytes <= piece && rbytes <= piece) /* the common case: one message each way */
        return shoal__coll_sendrecv(c, lane, tag, sbuf, sbytes, dst, rbuf, rbytes, src, deadline);
    shoal__reqq q;
    if (shoal__reqq_init(&q, 4) != SHOAL_OK) return shoal__coll_nomem(c, "collective", 0);
    int st = SHOAL_OK;
    if (src >= 0) st = shoal__coll_post(c, lane, tag, 0, rbuf, rbytes, src, &q, 0);
    if (st == SHOAL_OK && dst >= 0)
        st = shoal__coll_post(c, lane, tag, 1, (void *)sbuf, sbytes, dst, &q, 0);
    if (st == SHOAL_OK) st = shoal__reqq_drain(c, &q, deadline);
    shoal__reqq_release(c, &q, st);
    return st;
}
