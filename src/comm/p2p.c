/* Point-to-point messages and the request API (test, wait, cancel, free). */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_core.h"

static int bad_comm(void) { return SHOAL_ERR_INVALID; }

/* Fills a zeroed request for a send or receive. ctx/lane/internal select user or collective
 * traffic. */
static void fill(shoal_request *r, shoal_comm *c, shoal__req_kind kind, int lane, uint32_t ctx, int internal,
                 void *buf, size_t bytes, int peer, int tag) {
    shoal__mesh *m = c->mesh;
    r->kind = kind;
    r->comm = c;
    r->mesh = m;
    r->lane = lane;
    r->ctx = ctx;
    r->internal = internal;
    r->any_tag = tag == SHOAL_ANY_TAG;
    r->tag = tag < 0 ? 0 : (uint32_t)tag;
    r->peer = peer;
    r->peer_world = peer < 0 ? -1 : c->world_ranks[peer];
    r->buf = buf;
    r->cap = bytes;
    r->info.source = -1;
}

/* Hands a filled request to the engine (mu held). */
static void submit(shoal__mesh *m, shoal_request *r) {
    int st = shoal__comm_is_aborted(r->comm) ? SHOAL_ERR_ABORTED : SHOAL_OK;
    if (st != SHOAL_OK) shoal__req_complete(m, r, st);
    else if (r->kind == REQ_SEND) shoal__engine_post_send(m, r);
    else shoal__engine_post_recv(m, r);
}

/* Allocates and posts a send or receive. */
static int post(shoal_comm *c, shoal__req_kind kind, int lane, uint32_t ctx, int internal,
                void *buf, size_t bytes, int peer, int tag, shoal_request **out) {
    shoal_request *r = calloc(1, sizeof *r);
    if (!r) return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory for a request");
    fill(r, c, kind, lane, ctx, internal, buf, bytes, peer, tag);
    pthread_mutex_lock(&c->mesh->mu);
    submit(c->mesh, r);
    pthread_mutex_unlock(&c->mesh->mu);
    *out = r;
    return SHOAL_OK;
}

/* The arguments of a send or receive; req: the non-blocking call's request pointer, which must
 * not be NULL (blocking calls pass need_req 0). */
static int check_p2p(shoal_comm *c, const void *buf, size_t bytes, int peer, int tag, int recv, int need_req,
                     shoal_request **req) {
    const char *what = recv ? "recv" : "send";
    if (need_req && !req) return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: request pointer is NULL", what);
    if (!buf && bytes)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: NULL buffer of %zu bytes", what, bytes);
    if (!(recv && peer == SHOAL_ANY_SOURCE) && (peer < 0 || peer >= c->size))
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: rank %d out of range [0, %d)",
                                what, peer, c->size);
    if (!(recv && tag == SHOAL_ANY_TAG) && (tag < 0 || tag > SHOAL_TAG_MAX))
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "%s: tag %d out of range", what, tag);
    if (!recv && bytes > c->mesh->max_message)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "send: %zu bytes exceed max_message (%llu)", bytes,
                                (unsigned long long)c->mesh->max_message);
    return SHOAL_OK;
}

int shoal_isend(shoal_comm *c, const void *buf, size_t bytes, int dst, int tag, shoal_request **req) {
    if (!c) return bad_comm();
    int st = check_p2p(c, buf, bytes, dst, tag, 0, 1, req);
    if (st != SHOAL_OK) return st;
    return post(c, REQ_SEND, SHOAL__LANE_DATA, c->ctx_id * 2, 0, (void *)buf, bytes, dst, tag, req);
}

int shoal_irecv(shoal_comm *c, void *buf, size_t bytes, int src, int tag, shoal_request **req) {
    if (!c) return bad_comm();
    int st = check_p2p(c, buf, bytes, src, tag, 1, 1, req);
    if (st != SHOAL_OK) return st;
    return post(c, REQ_RECV, SHOAL__LANE_DATA, c->ctx_id * 2, 0, buf, bytes, src, tag, req);
}

int shoal__coll_isend(shoal_comm *c, int lane, uint32_t tag, const void *buf, size_t bytes,
                      int peer, shoal_request **req) {
    return post(c, REQ_SEND, lane, c->ctx_id * 2 + 1, 1, (void *)buf, bytes, peer, (int)(tag & 0x7fffffff),
                req);
}

int shoal__coll_irecv(shoal_comm *c, int lane, uint32_t tag, void *buf, size_t bytes, int peer,
                      shoal_request **req) {
    return post(c, REQ_RECV, lane, c->ctx_id * 2 + 1, 1, buf, bytes, peer, (int)(tag & 0x7fffffff),
                req);
}

static int stop_if_aborted(void *arg) {
    shoal_request *r = arg;
    return shoal__comm_is_aborted(r->comm) ? SHOAL_ERR_ABORTED : SHOAL_OK;
}

static void describe(shoal_request *r, int st);

/* The error of a wait that ran out of time (peer: comm rank, or -1 for any). */
static int timed_out(shoal_comm *c, int peer, double timeout_s) {
    if (peer >= 0)
        return shoal__comm_fail(c, SHOAL_ERR_TIMEOUT, &peer, 1, "timed out after %.3g s waiting for rank %d",
                                timeout_s, peer);
    return shoal__comm_fail(c, SHOAL_ERR_TIMEOUT, NULL, 0, "timed out after %.3g s", timeout_s);
}

/* A blocking send or receive: the request lives on this stack frame and is posted and waited
 * for under one lock (the latency of small messages is mostly such overheads); a send that
 * can be written into a shared ring whole needs no request at all. It never
 * outlives the call: on a timeout or an abort it is cancelled, which takes it out of every
 * engine queue (a partly sent message is finished by the engine from its own copy). */
static int blocking(shoal_comm *c, shoal__req_kind kind, void *buf, size_t bytes, int peer, int tag,
                    shoal_msg_info *info) {
    shoal__mesh *m = c->mesh;
    pthread_mutex_lock(&m->mu);
    if (kind == REQ_SEND && !shoal__comm_is_aborted(c) &&
        shoal__engine_send_inline(m, SHOAL__LANE_DATA, c->ctx_id * 2, (uint32_t)tag, buf, bytes,
                                  c->world_ranks[peer])) {
        pthread_mutex_unlock(&m->mu);
        return SHOAL_OK;
    }
    shoal_request r;
    memset(&r, 0, sizeof r);
    fill(&r, c, kind, SHOAL__LANE_DATA, c->ctx_id * 2, 0, buf, bytes, peer, tag);
    submit(m, &r);
    int st = SHOAL_OK; /* a small send is usually written inline: no clock read for it */
    if (r.state != REQ_DONE) st = shoal__engine_wait(m, &r, shoal__deadline_in(c->timeout_s), stop_if_aborted, &r);
    if (st != SHOAL_OK) shoal__engine_cancel(m, &r, st);
    if (r.state != REQ_DONE) shoal__req_complete(m, &r, st); /* cannot happen: cancel completes */
    st = r.status;
    pthread_mutex_unlock(&m->mu);
    if (info) *info = r.info;
    if (st == SHOAL_ERR_TIMEOUT) return timed_out(c, peer, c->timeout_s);
    if (st != SHOAL_OK) describe(&r, st);
    return st;
}

int shoal_send(shoal_comm *c, const void *buf, size_t bytes, int dst, int tag) {
    if (!c) return bad_comm();
    int st = check_p2p(c, buf, bytes, dst, tag, 0, 0, NULL);
    return st != SHOAL_OK ? st : blocking(c, REQ_SEND, (void *)buf, bytes, dst, tag, NULL);
}

int shoal_recv(shoal_comm *c, void *buf, size_t bytes, int src, int tag, shoal_msg_info *info) {
    if (!c) return bad_comm();
    int st = check_p2p(c, buf, bytes, src, tag, 1, 0, NULL);
    return st != SHOAL_OK ? st : blocking(c, REQ_RECV, buf, bytes, src, tag, info);
}

static void req_free(shoal_request *r) {
    free(r->args);
    free(r->err_text);
    free(r);
}

/* Sets the calling thread's error text for a finished request's failure. */
static void describe(shoal_request *r, int st) {
    shoal_comm *c = r->comm;
    int peer = r->peer;
    const char *what = r->kind == REQ_SEND ? "send to" : r->kind == REQ_RECV ? "recv from" : "collective";
    if (r->kind == REQ_COLL) {
        shoal__comm_fail(c, st, r->err_ranks, r->err_nranks, "%s",
                         r->err_text ? r->err_text : shoal_status_str(st));
    } else if (peer >= 0) {
        shoal__comm_fail(c, st, &peer, 1, "%s rank %d (tag %u): %s", what, peer, r->tag,
                         st == SHOAL_ERR_TRUNCATED ? "message longer than the receive buffer"
                                                   : shoal_status_str(st));
    } else {
        shoal__comm_fail(c, st, NULL, 0, "%s any rank: %s", what, shoal_status_str(st));
    }
}

int shoal_wait_timeout(shoal_request *r, double timeout_s, shoal_msg_info *info) {
    if (!r) return SHOAL_ERR_INVALID;
    shoal__mesh *m = r->mesh;
    double deadline = shoal__deadline_in(timeout_s);
    pthread_mutex_lock(&m->mu);
    int st = shoal__engine_wait(m, r, deadline, r->kind == REQ_COLL ? NULL : stop_if_aborted, r);
    if (st == SHOAL_ERR_TIMEOUT) {
        int peer = r->peer;
        pthread_mutex_unlock(&m->mu);
        return timed_out(r->comm, peer, timeout_s);
    }
    if (st != SHOAL_OK) shoal__engine_cancel(m, r, st);
    st = r->status;
    pthread_mutex_unlock(&m->mu);
    if (info) *info = r->info;
    if (st != SHOAL_OK) describe(r, st);
    req_free(r);
    return st;
}

int shoal_wait(shoal_request *r, shoal_msg_info *info) {
    if (!r) return SHOAL_ERR_INVALID;
    return shoal_wait_timeout(r, r->comm->timeout_s, info);
}

int shoal_wait_all(shoal_request **reqs, int n) {
    int first = SHOAL_OK;
    for (int i = 0; reqs && i < n; i++) {
        if (!reqs[i]) continue;
        int st = shoal_wait(reqs[i], NULL);
        if (st == SHOAL_ERR_TIMEOUT) { /* keep the promise that every request is freed */
            shoal_cancel(reqs[i]);
            shoal_request_free(reqs[i]);
        }
        reqs[i] = NULL;
        if (first == SHOAL_OK) first = st;
    }
    return first;
}

int shoal_test(shoal_request *r, int *done) {
    if (!r || !done) return SHOAL_ERR_INVALID;
    shoal__mesh *m = r->mesh;
    pthread_mutex_lock(&m->mu);
    if (r->state != REQ_DONE) shoal__engine_poll_nowait(m);
    *done = r->state == REQ_DONE;
    pthread_mutex_unlock(&m->mu);
    return SHOAL_OK;
}

int shoal_cancel(shoal_request *r) {
    if (!r) return SHOAL_ERR_INVALID;
    shoal__mesh *m = r->mesh;
    pthread_mutex_lock(&m->mu);
    /* Only what has not started: anything partly transferred completes normally. */
    if (r->state == REQ_PENDING) {
        if (r->kind == REQ_COLL) {
            shoal_comm *c = r->comm;
            shoal_request *prev = NULL;
            for (shoal_request *q = c->exec_head; q; prev = q, q = q->next) {
                if (q != r) continue;
                if (prev) prev->next = q->next;
                else c->exec_head = q->next;
                if (c->exec_tail == q) c->exec_tail = prev;
                shoal__req_complete(m, r, SHOAL_ERR_CANCELLED);
                break;
            }
        } else if (r->kind == REQ_RECV || r->sent == 0) {
            shoal__engine_cancel(m, r, SHOAL_ERR_CANCELLED);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return SHOAL_OK;
}

int shoal_request_free(shoal_request *r) {
    if (!r) return SHOAL_OK;
    shoal__mesh *m = r->mesh;
    pthread_mutex_lock(&m->mu);
    int done = r->state == REQ_DONE;
    pthread_mutex_unlock(&m->mu);
    if (!done) {
        shoal_cancel(r);
        /* Whatever was in flight must finish before the request's memory can go. */
        return shoal_wait_timeout(r, -1, NULL);
    }
    req_free(r);
    return SHOAL_OK;
}
