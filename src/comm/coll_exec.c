/* What the collective algorithms stand on: their point-to-point waits (which fail fast when any
 * member of the group fails) and the per-comm thread that runs non-blocking collectives in
 * call order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_core.h"

static int coll_stop(void *arg) { return shoal__comm_health(arg, -1); }

/* Names the failed members of c into ranks[]: those that died first, then those that left
 * in an orderly way (also gone for this collective); returns how many. */
static int failed_members(const shoal_comm *c, int *ranks, int max) {
    int n = 0;
    for (int kind = 1; kind <= 2; kind++)
        for (int i = 0; i < c->size; i++)
            if (c->mesh->failed[c->world_ranks[i]] == kind) {
                if (n < max) ranks[n] = i;
                n++;
            }
    return n;
}

static void rank_list(char *buf, size_t cap, const int *ranks, int n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used + 16 < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? ", " : "", ranks[i]);
}

/* Error text for a group that is unusable before a collective starts. */
static int health_fail(shoal_comm *c, int st) {
    if (st == SHOAL_ERR_ABORTED) return shoal__comm_fail(c, st, NULL, 0, "group was aborted");
    int failed[64];
    char list[256];
    pthread_mutex_lock(&c->mesh->mu);
    int n = failed_members(c, failed, 64);
    pthread_mutex_unlock(&c->mesh->mu);
    rank_list(list, sizeof list, failed, n < 64 ? n : 64);
    return shoal__comm_fail(c, st, failed, n, "collective failed: rank%s %s failed",
                            n == 1 ? "" : "s", list);
}

int shoal__coll_waitall(shoal_comm *c, shoal_request **reqs, int n, double deadline) {
    shoal__mesh *m = c->mesh;
    int st = SHOAL_OK, bad_peer = -1;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < n && st == SHOAL_OK; i++) {
        if (!reqs[i]) continue;
        st = shoal__engine_wait(m, reqs[i], deadline, coll_stop, c);
        if (st == SHOAL_OK && reqs[i]->status != SHOAL_OK) {
            st = reqs[i]->status;
            bad_peer = reqs[i]->peer;
        }
    }
    int pending[64], npending = 0;
    if (st != SHOAL_OK) {
        for (int i = 0; i < n; i++) {
            if (!reqs[i] || reqs[i]->state == REQ_DONE) continue;
            if (npending < 64) {
                int dup = 0;
                for (int k = 0; k < npending; k++) dup |= pending[k] == reqs[i]->peer;
                if (!dup) pending[npending++] = reqs[i]->peer;
            }
            shoal__engine_cancel(m, reqs[i], SHOAL_ERR_CANCELLED);
        }
    }
    int failed[64];
    int nfailed = st == SHOAL_ERR_PEER_FAILED ? failed_members(c, failed, 64) : 0;
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < n; i++) {
        if (reqs[i]) free(reqs[i]);
        reqs[i] = NULL;
    }
    if (st == SHOAL_OK) return st;
    char list[256];
    if (st == SHOAL_ERR_TIMEOUT) {
        rank_list(list, sizeof list, pending, npending);
        return shoal__comm_fail(c, st, pending, npending,
                                "collective timed out waiting for rank%s %s",
                                npending == 1 ? "" : "s", list);
    }
    if (st == SHOAL_ERR_PEER_FAILED && nfailed > 0) {
        rank_list(list, sizeof list, failed, nfailed < 64 ? nfailed : 64);
        return shoal__comm_fail(c, st, failed, nfailed, "collective failed: rank%s %s failed",
                                nfailed == 1 ? "" : "s", list);
    }
    if (bad_peer >= 0)
        return shoal__comm_fail(c, st, &bad_peer, 1, "collective failed talking to rank %d: %s",
                                bad_peer, st == SHOAL_ERR_PROTOCOL
                                              ? "message size differs: do all ranks pass the same counts?"
                                              : shoal_status_str(st));
    return shoal__comm_fail(c, st, NULL, 0, "collective failed: %s", shoal_status_str(st));
}

int shoal__coll_sendrecv(shoal_comm *c, int lane, uint32_t tag, const void *sbuf, size_t sbytes,
                         int dst, void *rbuf, size_t rbytes, int src, double deadline) {
    shoal_request *reqs[2] = {NULL, NULL};
    int st = SHOAL_OK;
    if (src >= 0) st = shoal__coll_irecv(c, lane, tag, rbuf, rbytes, src, &reqs[0]);
    if (st == SHOAL_OK && dst >= 0) st = shoal__coll_isend(c, lane, tag, sbuf, sbytes, dst, &reqs[1]);
    int st2 = shoal__coll_waitall(c, reqs, 2, deadline);
    return st != SHOAL_OK ? st : st2;
}

/* ---- the collective thread ------------------------------------------------------------- */

static void *exec_main(void *arg) {
    shoal_comm *c = arg;
    shoal__mesh *m = c->mesh;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (!c->exec_head && !c->exec_stop) pthread_cond_wait(&c->exec_cv, &m->mu);
        shoal_request *r = c->exec_head;
        if (!r) break; /* stop requested and queue empty */
        c->exec_head = r->next;
        if (!c->exec_head) c->exec_tail = NULL;
        r->next = NULL;
        r->state = REQ_ACTIVE;
        pthread_mutex_unlock(&m->mu);
        shoal__comm_clear_error(c);
        int st = r->fn(c, r->coll_tag, r->deadline, r->args);
        if (st != SHOAL_OK) { /* carry this thread's error text over to the waiting thread */
            r->err_text = strdup(shoal_comm_last_error(c));
            r->err_nranks = shoal_comm_error_ranks(c, r->err_ranks, 8);
            if (r->err_nranks > 8) r->err_nranks = 8;
        }
        pthread_mutex_lock(&m->mu);
        shoal__req_complete(m, r, st);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int shoal__coll_run(shoal_comm *c, shoal__coll_fn fn, const void *args, size_t args_size,
                    shoal_request **req) {
    uint32_t tag = atomic_fetch_add(&c->coll_seq, 1) & 0x7fffffffu;
    double deadline = shoal__deadline_in(c->timeout_s);
    shoal__mesh *m = c->mesh;
    if (!req) {
        pthread_mutex_lock(&m->mu);
        int st = shoal__comm_health(c, -1);
        pthread_mutex_unlock(&m->mu);
        if (st != SHOAL_OK) return health_fail(c, st);
        return fn(c, tag, deadline, (void *)args);
    }
    shoal_request *r = calloc(1, sizeof *r);
    void *copy = malloc(args_size ? args_size : 1);
    if (!r || !copy) {
        free(r);
        free(copy);
        return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory for a collective");
    }
    memcpy(copy, args, args_size);
    r->kind = REQ_COLL;
    r->comm = c;
    r->mesh = m;
    r->peer = -1;
    r->peer_world = -1;
    r->fn = fn;
    r->args = copy;
    r->coll_tag = tag;
    r->deadline = deadline;
    pthread_mutex_lock(&m->mu);
    if (!c->exec_started) {
        if (pthread_create(&c->exec_thread, NULL, exec_main, c) != 0) {
            pthread_mutex_unlock(&m->mu);
            free(copy);
            free(r);
            return shoal__comm_fail(c, SHOAL_ERR_SYSTEM, NULL, 0, "cannot start the collective thread");
        }
        c->exec_started = 1;
    }
    if (c->exec_tail) c->exec_tail->next = r;
    else c->exec_head = r;
    c->exec_tail = r;
    pthread_cond_signal(&c->exec_cv);
    pthread_mutex_unlock(&m->mu);
    *req = r;
    return SHOAL_OK;
}
