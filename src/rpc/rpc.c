/* Remote calls over a group's control lane.
 *
 * Two engine sinks carry the traffic (see shoal__sink in comm/comm_core.h): one takes calls
 * from any rank, the other takes replies and hands each to the future with the same request id
 * (the frame tag). Sinks let every size be checked against the cap before a byte is allocated,
 * and let a reply for a call that was cancelled or timed out be dropped without a trace.
 * Calls are queued to a fixed pool of handler threads; replies are engine-owned sends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm_core.h"
#include "rpc/rpc_wire.h"
#include "shoal/rpc.h"

#define BUCKETS 256
#define RPC_CTX_BIT 0x80000000u

typedef struct handler_entry {
    char name[SHOAL_RPC_NAME_MAX + 1];
    shoal_rpc_handler fn;
    void *user;
} handler_entry;

typedef struct job {
    int src_world;
    uint32_t id;
    uint8_t *buf; /* the call payload; NULL when it was refused for its size */
    uint64_t len;
    double arrived;
    struct job *next;
} job;

struct shoal_future {
    shoal_request req; /* completion and waiting go through the engine like any request */
    shoal_rpc *rpc;    /* NULL once the endpoint is gone */
    int dst, dst_world;
    uint32_t id;
    shoal_request *send;
    uint8_t *reply; /* whole reply payload, malloc'd */
    uint64_t reply_len;
    int oversize;
    uint64_t over_len;
    int in_table;
    double deadline;
    char name[SHOAL_RPC_NAME_MAX + 1];
    shoal_future *next; /* bucket chain */
};

struct shoal_rpc {
    shoal_comm *comm;
    shoal__mesh *mesh;
    uint32_t req_ctx, rep_ctx;
    uint64_t max_size;
    atomic_uint next_id;
    shoal_future *buckets[BUCKETS]; /* pending calls by id (mesh->mu) */
    pthread_mutex_t reg_mu;
    handler_entry *handlers;
    int nhandlers, cap;
    job *jq_head, *jq_tail; /* mesh->mu */
    int driver;             /* a handler thread holds the mesh's progress token (mesh->mu) */
    pthread_cond_t jq_cv;
    int stop;
    pthread_t *threads;
    int nthreads;
};

/* ---- error detail ---------------------------------------------------------------------- */

static _Thread_local const shoal_rpc *err_owner;
static _Thread_local char err_text[SHOAL__RPC_ERR_MAX + 128];

static int rpc_fail(const shoal_rpc *rpc, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rpc_fail(const shoal_rpc *rpc, int st, const char *fmt, ...) {
    err_owner = rpc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_text, sizeof err_text, fmt, ap);
    va_end(ap);
    return st;
}

const char *shoal_rpc_last_error(const shoal_rpc *rpc) {
    return rpc && err_owner == rpc ? err_text : "";
}

/* ---- pending-call table (mesh->mu held) ------------------------------------------------- */

static shoal_future **bucket(shoal_rpc *rpc, uint32_t id) { return &rpc->buckets[id % BUCKETS]; }

static shoal_future *table_find(shoal_rpc *rpc, int src_world, uint32_t id) {
    for (shoal_future *f = *bucket(rpc, id); f; f = f->next)
        if (f->id == id && f->dst_world == src_world) return f;
    return NULL;
}

static void table_remove(shoal_rpc *rpc, shoal_future *f) {
    if (!f->in_table) return;
    for (shoal_future **pp = bucket(rpc, f->id); *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->in_table = 0;
    f->next = NULL;
}

/* ---- the reply sink --------------------------------------------------------------------- */

static uint8_t *reply_begin(void *user, int src, uint32_t tag, uint64_t len) {
    shoal_rpc *rpc = user;
    shoal_future *f = table_find(rpc, src, tag);
    if (!f) return NULL; /* cancelled or timed out: drop the bytes */
    if (len > rpc->max_size + SHOAL__RPC_REPLY_HDR) {
        f->oversize = 1;
        f->over_len = len;
        return NULL;
    }
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    if (!buf) f->oversize = 2;
    return buf;
}

static void reply_done(void *user, int src, uint32_t tag, uint8_t *buf, uint64_t len, int status) {
    shoal_rpc *rpc = user;
    shoal_future *f = table_find(rpc, src, tag);
    if (!f || status != SHOAL_OK) { /* a lost frame: peer_lost fails the future */
        free(buf);
        return;
    }
    table_remove(rpc, f);
    if (f->oversize) {
        free(buf);
        shoal__req_complete(rpc->mesh, &f->req, f->oversize == 1 ? SHOAL_ERR_INVALID : SHOAL_ERR_NOMEM);
        return;
    }
    f->reply = buf;
    f->reply_len = len;
    shoal__req_complete(rpc->mesh, &f->req, SHOAL_OK); /* the reply's own status is read at wait */
}

static void reply_peer_lost(void *user, int peer) {
    shoal_rpc *rpc = user;
    for (int b = 0; b < BUCKETS; b++) {
        shoal_future *f = rpc->buckets[b];
        while (f) {
            shoal_future *next = f->next;
            if (f->dst_world == peer) {
                table_remove(rpc, f);
                shoal__req_complete(rpc->mesh, &f->req, SHOAL_ERR_PEER_FAILED);
            }
            f = next;
        }
    }
}

/* ---- the call sink and the handler pool ------------------------------------------------- */

static uint8_t *call_begin(void *user, int src, uint32_t tag, uint64_t len) {
    shoal_rpc *rpc = user;
    if (len > rpc->max_size + SHOAL__RPC_CALL_HDR + SHOAL_RPC_NAME_MAX) { /* refused unread */
        shoal__log(SHOAL__LOG_WARN, "rpc: refused a call of %llu bytes from rank %d (cap %llu)",
                   (unsigned long long)len, rpc->comm->w2c[src], (unsigned long long)rpc->max_size);
        return NULL;
    }
    return malloc(len ? (size_t)len : 1);
}

static void call_done(void *user, int src, uint32_t tag, uint8_t *buf, uint64_t len, int status) {
    shoal_rpc *rpc = user;
    if (status != SHOAL_OK || rpc->stop) {
        free(buf);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        free(buf);
        return; /* the caller times out; nothing else can be done without memory */
    }
    j->src_world = src;
    j->id = tag;
    j->buf = buf;
    j->len = len;
    j->arrived = shoal__now();
    if (rpc->jq_tail) rpc->jq_tail->next = j;
    else rpc->jq_head = j;
    rpc->jq_tail = j;
    /* a handler thread driving the sockets runs this call itself as soon as its poll returns;
     * wake another one only when that thread is not ours or more calls are waiting */
    if (!rpc->driver || rpc->jq_head != j) pthread_cond_signal(&rpc->jq_cv);
}

/* Posts the reply to job j (mesh->mu held). body is malloc'd (owned by the send) or NULL. */
static void post_reply(shoal_rpc *rpc, const job *j, int32_t st, uint8_t *body, size_t len) {
    shoal_request *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        return;
    }
    r->kind = REQ_SEND;
    r->comm = rpc->comm;
    r->mesh = rpc->mesh;
    r->lane = SHOAL__LANE_CTRL;
    r->ctx = rpc->rep_ctx;
    r->tag = j->id;
    r->peer = rpc->comm->w2c[j->src_world];
    r->peer_world = j->src_world;
    r->buf = body;
    r->cap = body ? len : 0;
    r->owned = 1;
    shoal__rpc_reply_prefix(r->pre, st);
    r->pre_len = SHOAL__RPC_REPLY_HDR;
    shoal__engine_post_send(rpc->mesh, r);
}

static uint8_t *text_body(const char *text, size_t *len) {
    size_t n = strnlen(text, SHOAL__RPC_ERR_MAX);
    uint8_t *b = malloc(n ? n : 1);
    if (b) memcpy(b, text, n);
    *len = b ? n : 0;
    return b;
}

/* Runs one call (no lock held) and returns what to reply. */
static int32_t run_job(shoal_rpc *rpc, const job *j, uint8_t **body, size_t *len) {
    char err[SHOAL__RPC_ERR_MAX];
    int caller = rpc->comm->w2c[j->src_world];
    *body = NULL;
    *len = 0;
    if (!j->buf) {
        shoal__errf(err, sizeof err, "rank %d: call of %llu bytes exceeds the cap of %llu bytes",
                    rpc->comm->rank, (unsigned long long)j->len, (unsigned long long)rpc->max_size);
        *body = text_body(err, len);
        return SHOAL_ERR_INVALID;
    }
    shoal__rpc_call call;
    char why[160];
    if (shoal__rpc_call_decode(j->buf, j->len, &call, why, sizeof why) != SHOAL_OK) {
        shoal__log(SHOAL__LOG_WARN, "rpc: malformed call from rank %d: %s", caller, why);
        shoal__errf(err, sizeof err, "rank %d: malformed call: %s", rpc->comm->rank, why);
        *body = text_body(err, len);
        return SHOAL_ERR_PROTOCOL;
    }
    if (call.timeout_ms != SHOAL__RPC_NO_DEADLINE &&
        shoal__now() - j->arrived > call.timeout_ms * 1e-3) {
        return SHOAL_ERR_TIMEOUT; /* the caller has given up: do not run it */
    }
    shoal_rpc_handler fn = NULL;
    void *user = NULL;
    pthread_mutex_lock(&rpc->reg_mu);
    for (int i = 0; i < rpc->nhandlers; i++)
        if (!strcmp(rpc->handlers[i].name, call.name)) {
            fn = rpc->handlers[i].fn;
            user = rpc->handlers[i].user;
        }
    pthread_mutex_unlock(&rpc->reg_mu);
    if (!fn) {
        shoal__errf(err, sizeof err, "rank %d has no function '%s'", rpc->comm->rank, call.name);
        *body = text_body(err, len);
        return SHOAL_ERR_NOT_FOUND;
    }
    void *reply = NULL;
    size_t rlen = 0;
    err[0] = 0;
    int st = fn(user, caller, call.args, (size_t)call.args_len, &reply, &rlen, err, sizeof err);
    if (st != SHOAL_OK) {
        free(reply);
        char msg[SHOAL__RPC_ERR_MAX];
        shoal__errf(msg, sizeof msg, "rank %d: %s: %s", rpc->comm->rank, call.name,
                    err[0] ? err : shoal_status_str(st));
        *body = text_body(msg, len);
        return SHOAL_ERR_REMOTE;
    }
    if (!reply) rlen = 0;
    if (rlen > rpc->max_size) {
        free(reply);
        shoal__errf(err, sizeof err, "rank %d: %s: reply of %zu bytes exceeds the cap of %llu bytes",
                    rpc->comm->rank, call.name, rlen, (unsigned long long)rpc->max_size);
        *body = text_body(err, len);
        return SHOAL_ERR_INVALID;
    }
    *body = reply;
    *len = rlen;
    return SHOAL_OK;
}

/* While no application thread waits on the mesh, one idle handler thread drives the sockets
 * itself (leader/follower): a call it reads is run by that same thread, with no hand-off to
 * another. The others sleep until a call is queued for them. An application thread that
 * starts waiting takes the sockets back (its wait kicks the driver out of epoll). */
static int drive_progress(shoal_rpc *rpc, double *spin_until) {
    shoal__mesh *m = rpc->mesh;
    if (m->progressing || m->token_waiters || shoal__now() - m->last_user_wait < 0.001) return 0;
    m->progressing = 1;
    rpc->driver = 1;
    double now = shoal__now();
    int ms = now < *spin_until ? 0 : 100;
    uint64_t before = m->activity;
    shoal__engine_poll_once(m, ms);
    if (m->activity != before) *spin_until = shoal__now() + m->spin_us * 1e-6;
    rpc->driver = 0;
    m->progressing = 0;
    if (m->token_waiters) pthread_cond_broadcast(&m->cv);
    return 1;
}

static void *pool_main(void *arg) {
    shoal_rpc *rpc = arg;
    shoal__mesh *m = rpc->mesh;
    double spin_until = 0;
    pthread_mutex_lock(&m->mu);
    m->idle_drivers++;
    for (;;) {
        if (rpc->stop) break;
        job *j = rpc->jq_head;
        if (!j) {
            if (drive_progress(rpc, &spin_until)) continue;
            struct timespec ts; /* jq_cv uses CLOCK_MONOTONIC */
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 20 * 1000000L; /* re-check now and then whether driving is needed */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&rpc->jq_cv, &m->mu, &ts);
            continue;
        }
        rpc->jq_head = j->next;
        if (!rpc->jq_head) rpc->jq_tail = NULL;
        m->idle_drivers--;
        pthread_mutex_unlock(&m->mu);
        uint8_t *body;
        size_t len;
        int32_t st = run_job(rpc, j, &body, &len);
        pthread_mutex_lock(&m->mu);
        m->idle_drivers++;
        if (st == SHOAL_ERR_TIMEOUT) free(body);
        else post_reply(rpc, j, st, body, len);
        free(j->buf);
        free(j);
        spin_until = shoal__now() + m->spin_us * 1e-6; /* the next call may be close behind */
    }
    m->idle_drivers--;
    pthread_cond_signal(&m->monitor_cv); /* the monitor may have to drive again */
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- endpoint lifecycle ----------------------------------------------------------------- */

int shoal_rpc_create(shoal_rpc **out, shoal_comm *c, const shoal_rpc_config *cfg) {
    if (!out || !c) return SHOAL_ERR_INVALID;
    *out = NULL;
    if (cfg && (cfg->struct_size != sizeof *cfg || cfg->version != SHOAL_RPC_CONFIG_VERSION))
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "rpc: config not initialised with SHOAL_RPC_CONFIG_INIT");
    char err[160] = "";
    long long threads = 4;
    uint64_t max = 1ull << 30;
    int st = shoal__setting_int("rpc_threads", &threads, err, sizeof err);
    if (st == SHOAL_OK) st = shoal__setting_bytes("rpc_max_size", &max, err, sizeof err);
    if (st != SHOAL_OK && st != SHOAL_ERR_NOT_FOUND)
        return shoal__comm_fail(c, st, NULL, 0, "rpc: %s", err);
    if (cfg && cfg->threads > 0) threads = cfg->threads;
    if (cfg && cfg->max_size) max = cfg->max_size;
    if (threads < 1 || threads > 256)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "rpc: %lld threads is out of range", threads);
    shoal_rpc *rpc = calloc(1, sizeof *rpc);
    if (!rpc) return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "rpc: out of memory");
    rpc->comm = c;
    rpc->mesh = c->mesh;
    rpc->req_ctx = RPC_CTX_BIT | (c->ctx_id * 2);
    rpc->rep_ctx = RPC_CTX_BIT | (c->ctx_id * 2 + 1);
    rpc->max_size = max;
    atomic_init(&rpc->next_id, 1);
    pthread_mutex_init(&rpc->reg_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rpc->jq_cv, &ca);
    pthread_condattr_destroy(&ca);
    rpc->threads = calloc((size_t)threads, sizeof *rpc->threads);
    shoal__sink calls = {rpc->req_ctx, rpc, call_begin, call_done, NULL};
    shoal__sink replies = {rpc->rep_ctx, rpc, reply_begin, reply_done, reply_peer_lost};
    pthread_mutex_lock(&rpc->mesh->mu);
    st = rpc->threads ? shoal__engine_add_sink(rpc->mesh, &calls) : SHOAL_ERR_NOMEM;
    if (st == SHOAL_OK && (st = shoal__engine_add_sink(rpc->mesh, &replies)) != SHOAL_OK)
        shoal__engine_remove_sink(rpc->mesh, rpc->req_ctx);
    pthread_mutex_unlock(&rpc->mesh->mu);
    if (st != SHOAL_OK) {
        free(rpc->threads);
        free(rpc);
        return shoal__comm_fail(c, st, NULL, 0, "rpc: this group already has an endpoint");
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&rpc->threads[i], NULL, pool_main, rpc) != 0) break;
        rpc->nthreads++;
    }
    if (rpc->nthreads == 0) {
        shoal_rpc_free(rpc);
        return shoal__comm_fail(c, SHOAL_ERR_SYSTEM, NULL, 0, "rpc: cannot start handler threads");
    }
    *out = rpc;
    return SHOAL_OK;
}

int shoal_rpc_free(shoal_rpc *rpc) {
    if (!rpc) return SHOAL_OK;
    shoal__mesh *m = rpc->mesh;
    pthread_mutex_lock(&m->mu);
    shoal__engine_remove_sink(m, rpc->req_ctx);
    shoal__engine_remove_sink(m, rpc->rep_ctx);
    rpc->stop = 1;
    pthread_cond_broadcast(&rpc->jq_cv);
    shoal__mesh_kick(m); /* a handler thread may be driving the sockets, in epoll_wait */
    for (int b = 0; b < BUCKETS; b++)
        while (rpc->buckets[b]) {
            shoal_future *f = rpc->buckets[b];
            table_remove(rpc, f);
            f->rpc = NULL;
            shoal__req_complete(m, &f->req, SHOAL_ERR_CANCELLED);
        }
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < rpc->nthreads; i++) pthread_join(rpc->threads[i], NULL);
    while (rpc->jq_head) {
        job *j = rpc->jq_head;
        rpc->jq_head = j->next;
        free(j->buf);
        free(j);
    }
    pthread_cond_destroy(&rpc->jq_cv);
    pthread_mutex_destroy(&rpc->reg_mu);
    free(rpc->handlers);
    free(rpc->threads);
    free(rpc);
    return SHOAL_OK;
}

int shoal_rpc_register(shoal_rpc *rpc, const char *name, shoal_rpc_handler fn, void *user) {
    if (!rpc) return SHOAL_ERR_INVALID;
    if (!shoal__rpc_name_ok(name))
        return rpc_fail(rpc, SHOAL_ERR_INVALID, "rpc: function names are 1..%d printable ASCII bytes",
                        SHOAL_RPC_NAME_MAX);
    pthread_mutex_lock(&rpc->reg_mu);
    int st = SHOAL_OK;
    for (int i = 0; i < rpc->nhandlers; i++) {
        if (strcmp(rpc->handlers[i].name, name)) continue;
        if (fn) {
            rpc->handlers[i].fn = fn;
            rpc->handlers[i].user = user;
        } else {
            rpc->handlers[i] = rpc->handlers[--rpc->nhandlers];
        }
        goto done;
    }
    if (!fn) goto done;
    if (rpc->nhandlers == rpc->cap) {
        int cap = rpc->cap ? rpc->cap * 2 : 16;
        handler_entry *h = realloc(rpc->handlers, sizeof *h * (size_t)cap);
        if (!h) {
            st = rpc_fail(rpc, SHOAL_ERR_NOMEM, "rpc: out of memory");
            goto done;
        }
        rpc->handlers = h;
        rpc->cap = cap;
    }
    snprintf(rpc->handlers[rpc->nhandlers].name, sizeof rpc->handlers[0].name, "%s", name);
    rpc->handlers[rpc->nhandlers].fn = fn;
    rpc->handlers[rpc->nhandlers].user = user;
    rpc->nhandlers++;
done:
    pthread_mutex_unlock(&rpc->reg_mu);
    return st;
}

/* ---- calls ------------------------------------------------------------------------------ */

int shoal_rpc_call_async(shoal_rpc *rpc, int dst, const char *name, const void *args,
                         size_t args_len, double timeout_s, shoal_future **out) {
    if (!rpc || !out) return SHOAL_ERR_INVALID;
    *out = NULL;
    shoal_comm *c = rpc->comm;
    if (dst < 0 || dst >= c->size)
        return rpc_fail(rpc, SHOAL_ERR_INVALID, "rpc: rank %d out of range [0, %d)", dst, c->size);
    if (!shoal__rpc_name_ok(name))
        return rpc_fail(rpc, SHOAL_ERR_INVALID, "rpc: function names are 1..%d printable ASCII bytes",
                        SHOAL_RPC_NAME_MAX);
    if (!args && args_len) return rpc_fail(rpc, SHOAL_ERR_INVALID, "rpc: NULL arguments of %zu bytes", args_len);
    if (args_len > rpc->max_size)
        return rpc_fail(rpc, SHOAL_ERR_INVALID, "rpc: %s: %zu bytes of arguments exceed the cap of %llu",
                        name, args_len, (unsigned long long)rpc->max_size);
    shoal_future *f = calloc(1, sizeof *f);
    shoal_request *s = calloc(1, sizeof *s);
    if (!f || !s) {
        free(f);
        free(s);
        return rpc_fail(rpc, SHOAL_ERR_NOMEM, "rpc: out of memory");
    }
    double t = timeout_s < 0 ? c->timeout_s : timeout_s;
    f->deadline = shoal__deadline_in(t);
    f->req.kind = REQ_COLL; /* completed by a sink, never matched: only its state matters */
    f->req.comm = c;
    f->req.mesh = rpc->mesh;
    f->req.peer = dst;
    f->req.peer_world = c->world_ranks[dst];
    f->rpc = rpc;
    f->dst = dst;
    f->dst_world = c->world_ranks[dst];
    f->id = atomic_fetch_add(&rpc->next_id, 1) & 0x7fffffffu;
    snprintf(f->name, sizeof f->name, "%s", name);
    s->kind = REQ_SEND;
    s->comm = c;
    s->mesh = rpc->mesh;
    s->lane = SHOAL__LANE_CTRL;
    s->ctx = rpc->req_ctx;
    s->tag = f->id;
    s->peer = dst;
    s->peer_world = f->dst_world;
    s->buf = (uint8_t *)args;
    s->cap = args_len;
    uint32_t ms = t * 1e3 >= (double)SHOAL__RPC_NO_DEADLINE ? SHOAL__RPC_NO_DEADLINE : (uint32_t)(t * 1e3);
    s->pre_len = shoal__rpc_call_prefix(s->pre, name, ms);
    f->send = s;
    shoal__mesh *m = rpc->mesh;
    pthread_mutex_lock(&m->mu);
    if (shoal__comm_is_aborted(c)) {
        shoal__req_complete(m, &f->req, SHOAL_ERR_ABORTED);
        shoal__req_complete(m, s, SHOAL_ERR_ABORTED);
    } else if (m->failed[f->dst_world]) {
        shoal__req_complete(m, &f->req, SHOAL_ERR_PEER_FAILED);
        shoal__req_complete(m, s, SHOAL_ERR_PEER_FAILED);
    } else {
        /* into the table first: a reply may arrive before post_send returns (self calls) */
        shoal_future **b = bucket(rpc, f->id);
        f->next = *b;
        *b = f;
        f->in_table = 1;
        shoal__engine_post_send(m, s);
        if (s->state == REQ_DONE && s->status != SHOAL_OK && f->in_table) {
            table_remove(rpc, f);
            shoal__req_complete(m, &f->req, s->status);
        }
    }
    pthread_mutex_unlock(&m->mu);
    *out = f;
    return SHOAL_OK;
}

int shoal_future_test(shoal_future *f, int *done) {
    if (!f || !done) return SHOAL_ERR_INVALID;
    shoal__mesh *m = f->req.mesh;
    pthread_mutex_lock(&m->mu);
    if (f->req.state != REQ_DONE) shoal__engine_poll_nowait(m);
    *done = f->req.state == REQ_DONE;
    pthread_mutex_unlock(&m->mu);
    return SHOAL_OK;
}

/* Takes the future out of every queue (mu held): later replies are dropped, an unsent call
 * frame is withdrawn (a partly sent one is finished by the engine on its own). */
static void detach(shoal__mesh *m, shoal_future *f, int status) {
    if (f->rpc) table_remove(f->rpc, f);
    shoal__req_complete(m, &f->req, status);
    if (f->send->state != REQ_DONE) shoal__engine_cancel(m, f->send, SHOAL_ERR_CANCELLED);
}

int shoal_future_cancel(shoal_future *f) {
    if (!f) return SHOAL_ERR_INVALID;
    shoal__mesh *m = f->req.mesh;
    pthread_mutex_lock(&m->mu);
    if (f->req.state != REQ_DONE) detach(m, f, SHOAL_ERR_CANCELLED);
    pthread_mutex_unlock(&m->mu);
    return SHOAL_OK;
}

static int stop_if_aborted(void *arg) {
    shoal_future *f = arg;
    return shoal__comm_is_aborted(f->req.comm) ? SHOAL_ERR_ABORTED : SHOAL_OK;
}

static void future_release(shoal_future *f) {
    free(f->reply);
    free(f->send);
    free(f);
}

int shoal_future_wait(shoal_future *f, void **reply, size_t *reply_len) {
    if (!f) return SHOAL_ERR_INVALID;
    if (reply) *reply = NULL;
    if (reply_len) *reply_len = 0;
    shoal__mesh *m = f->req.mesh;
    shoal_rpc *rpc = f->rpc;
    pthread_mutex_lock(&m->mu);
    int st = shoal__engine_wait(m, &f->req, f->deadline, stop_if_aborted, f);
    if (st != SHOAL_OK) detach(m, f, st);
    /* the call frame must be off our hands before its memory (the caller's args) is released */
    if (f->send->state != REQ_DONE) shoal__engine_cancel(m, f->send, SHOAL_ERR_CANCELLED);
    st = f->req.status;
    pthread_mutex_unlock(&m->mu);
    int dst = f->dst;
    char name[SHOAL_RPC_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", f->name);
    if (st == SHOAL_OK) {
        int32_t rst;
        const uint8_t *body;
        uint64_t blen;
        char why[160];
        if (shoal__rpc_reply_decode(f->reply, f->reply_len, &rst, &body, &blen, why, sizeof why) != SHOAL_OK) {
            st = rpc_fail(rpc, SHOAL_ERR_PROTOCOL, "rpc: %s on rank %d: %s", name, dst, why);
        } else if (rst != SHOAL_OK) {
            st = rpc_fail(rpc, rst, "%.*s", (int)blen, (const char *)body);
        } else if (reply) {
            /* hand the caller the body without a copy: move it to the front of the buffer */
            memmove(f->reply, body, (size_t)blen);
            *reply = blen ? f->reply : NULL;
            if (reply_len) *reply_len = (size_t)blen;
            if (blen) f->reply = NULL;
        } else if (reply_len) {
            *reply_len = (size_t)blen;
        }
    } else if (st == SHOAL_ERR_TIMEOUT) {
        rpc_fail(rpc, st, "rpc: %s on rank %d: no reply before the deadline", name, dst);
    } else if (st == SHOAL_ERR_PEER_FAILED) {
        rpc_fail(rpc, st, "rpc: %s on rank %d: the rank failed", name, dst);
    } else if (st == SHOAL_ERR_INVALID) {
        rpc_fail(rpc, st, "rpc: %s on rank %d: reply of %llu bytes exceeds the cap", name, dst,
                 (unsigned long long)f->over_len);
    } else {
        rpc_fail(rpc, st, "rpc: %s on rank %d: %s", name, dst, shoal_status_str(st));
    }
    future_release(f);
    return st;
}

void shoal_future_free(shoal_future *f) {
    if (!f) return;
    shoal__mesh *m = f->req.mesh;
    pthread_mutex_lock(&m->mu);
    if (f->req.state != REQ_DONE) detach(m, f, SHOAL_ERR_CANCELLED);
    if (f->send->state != REQ_DONE) shoal__engine_cancel(m, f->send, SHOAL_ERR_CANCELLED);
    pthread_mutex_unlock(&m->mu);
    future_release(f);
}

int shoal_rpc_call(shoal_rpc *rpc, int dst, const char *name, const void *args, size_t args_len,
                   void **reply, size_t *reply_len, double timeout_s) {
    shoal_future *f;
    int st = shoal_rpc_call_async(rpc, dst, name, args, args_len, timeout_s, &f);
    if (st != SHOAL_OK) return st;
    return shoal_future_wait(f, reply, reply_len);
}
