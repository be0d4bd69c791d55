/* Helpers shared by the collective algorithms (the .c files of src/comm/coll): argument checks
 * that set the comm's error text, block partitioning, algorithm choice, a FIFO of in-flight
 * requests and the two pipelined ring engines every ring algorithm is built from. */
#ifndef SHOAL_COLL_UTIL_H
#define SHOAL_COLL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "comm/coll/coll.h"

/* ---- argument checks ---------------------------------------------------------------------
 * Each returns SHOAL_OK, or SHOAL_ERR_INVALID with the text "<what>: <reason>" set on c.
 * They run before shoal__coll_run so a rejected call takes no tag: when every member passes
 * the same bad argument, the group stays in step. */

int shoal__coll_arg_dtype(const shoal_comm *c, const char *what, shoal_dtype t);
int shoal__coll_arg_op(const shoal_comm *c, const char *what, shoal_op op);
int shoal__coll_arg_root(const shoal_comm *c, const char *what, int root);
/* *bytes = count * mult * shoal_dtype_size(t) (t already checked), failing on overflow. */
int shoal__coll_arg_bytes(const shoal_comm *c, const char *what, size_t count, size_t mult,
                          shoal_dtype t, size_t *bytes);
/* buf may be NULL only when bytes == 0. */
int shoal__coll_arg_buf(const shoal_comm *c, const char *what, const char *name, const void *buf,
                        size_t bytes);
/* Non-blocking forms: req must not be NULL; *req is set to NULL so no request exists on error. */
int shoal__coll_arg_req(const shoal_comm *c, const char *what, shoal_request **req);

/* ---- helpers for bodies ------------------------------------------------------------------ */

/* Block b of count elements split over n blocks: the first count % n blocks get one extra
 * element, so blocks differ by at most one and some are empty when count < n. */
static inline void shoal__coll_block(size_t count, int n, int b, size_t *off, size_t *len) {
    size_t base = count / (size_t)n, rem = count % (size_t)n, ub = (size_t)b;
    *len = base + (ub < rem ? 1 : 0);
    *off = ub * base + (ub < rem ? ub : rem);
}

static inline int shoal__coll_mod(int a, int n) { return ((a % n) + n) % n; }

/* RING or RD for a message of `bytes` (the comm's forced algorithm, else by ring_threshold). */
shoal__algo shoal__coll_pick(const shoal_comm *c, size_t bytes);

/* Largest message a collective sends as one: the group's max_message (a peer drops a longer
 * frame and with it the connection). Longer logical messages go as several pieces. */
size_t shoal__coll_piece(const shoal_comm *c);

/* Pipeline chunk in elements of esz bytes for pieces of up to maxlen elements: the tuning's
 * chunk, but at least 1 element and large enough that a piece has at most
 * SHOAL__COLL_MAX_CHUNKS chunks (which bounds the requests in flight), and never longer than
 * shoal__coll_piece (which wins over the chunk bound). */
#define SHOAL__COLL_MAX_CHUNKS 4096
size_t shoal__coll_chunk_elems(const shoal_comm *c, size_t esz, size_t maxlen);

/* Whether byte ranges [a, a+alen) and [b, b+blen) share a byte. */
int shoal__coll_overlap(const void *a, size_t alen, const void *b, size_t blen);

/* Sets SHOAL_ERR_NOMEM text "<what>: out of memory (N bytes)" (bytes 0: not said) and
 * returns it. */
int shoal__coll_nomem(const shoal_comm *c, const char *what, size_t bytes);

/* ---- FIFO of in-flight requests, each with an int the caller attaches (a pool slot) ----- */
typedef struct shoal__reqq {
    shoal_request **req;
    int *aux;
    int cap, head, len;
} shoal__reqq;

int shoal__reqq_init(shoal__reqq *q, int cap);                    /* SHOAL_ERR_NOMEM without text */
void shoal__reqq_push(shoal__reqq *q, shoal_request *r, int aux); /* requires len < cap */
/* Waits for the oldest request; *aux (may be NULL) gets its int. On error every other request
 * of the queue is cancelled and freed too, keeping the error text (the queue is left empty). */
int shoal__reqq_wait_oldest(shoal_comm *c, shoal__reqq *q, double deadline, int *aux);
/* Waits for every request in the queue, with the same error handling. */
int shoal__reqq_drain(shoal_comm *c, shoal__reqq *q, double deadline);
/* Makes room for `extra` more requests (SHOAL_ERR_NOMEM without text). */
int shoal__reqq_reserve(shoal__reqq *q, int extra);
/* Releases the arrays. Requests still queued (only after a failure with `status`) are
 * cancelled and freed, keeping the failure's error text. */
void shoal__reqq_release(shoal_comm *c, shoal__reqq *q, int status);

/* ---- messages longer than one piece ------------------------------------------------------
 * One logical message of `bytes` goes as ceil(bytes / shoal__coll_piece(c)) messages (one
 * empty message when bytes == 0); both sides compute the same split from the same length, and
 * the pieces of one message are posted back to back, so they match in order. */

/* Posts every piece of a send (is_send) or receive into q (grown as needed), each with aux.
 * On error the pieces posted so far stay in q for the caller to release. */
int shoal__coll_post(shoal_comm *c, int lane, uint32_t tag, int is_send, void *buf, size_t bytes,
                     int peer, shoal__reqq *q, int aux);

/* shoal__coll_sendrecv for messages of any length (either peer may be -1 to skip). */
int shoal__coll_xchg(shoal_comm *c, int lane, uint32_t tag, const void *sbuf, size_t sbytes,
                     int dst, void *rbuf, size_t rbytes, int src, double deadline);

/* ---- ring engines (src/comm/coll/ring.c) ----------------------------------------------------
 * Both work on `total` elements split into size blocks by shoal__coll_block, move data around
 * the ring rank r -> r+1 in chunks of shoal__comm_tuning(c)->chunk bytes, keep the receive of
 * the next chunk posted while the current one is processed, and send nothing for empty
 * blocks (every member computes the same partition). */

/* Reduce-scatter: dst (blen(r) elements) gets block r of the reduction of every rank's src.
 * Each block is reduced once along the ring, so the result does not depend on which rank
 * computes what. src is only read. dst may be src + off(r) or lie elsewhere inside src. */
int shoal__ring_reduce_scatter(shoal_comm *c, uint32_t tag, double deadline, const void *src,
                               void *dst, size_t total, shoal_dtype t, shoal_op op);

/* Allgather: buf holds total elements with this rank's block r in place; on return every
 * block is filled (a byte-exact copy of its owner's block). */
int shoal__ring_allgather(shoal_comm *c, uint32_t tag, double deadline, void *buf, size_t total,
                          size_t esz);

#endif
