/* The rendezvous store's server: one thread runs a poll() loop over the listener, every
 * authenticated client and a self-pipe (stop requests and handshake hand-offs).
 *
 * Handshakes run on short-lived detached threads so a slow or silent newcomer can never stall
 * service to the clients already connected; a finished handshake hands its socket to the loop
 * through a mutex-protected queue and a byte on the self-pipe.
 *
 * Per client, requests are served strictly in order: a GET of a missing key parks the client
 * (its later requests wait in its input buffer) until a SET/ADD of that key or the GET's own
 * timeout, so replies always come back in request order without any per-request queue. */
#define _GNU_SOURCE /* POLLRDHUP, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "comm/store_proto.h"

#define HANDSHAKE_TIMEOUT_S 5.0
/* Concurrent handshakes; beyond this, newcomers wait in the listen backlog. */
#define MAX_HANDSHAKES 64
/* Input is read in chunks of this size (or the current frame's size when larger). */
#define IN_CHUNK (64 * 1024)
/* A client whose unsent replies exceed this is not served further until it reads them. */
#define OUT_HIGH (1024 * 1024)
#define PEER_MAX 80

/* ---- the key-value table: chained hash, doubled when the load passes 1 -------------------- */

typedef struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    uint8_t *key;
    uint32_t key_len;
    uint8_t *value;
    uint64_t value_len;
} kv_entry;

typedef struct kv_table {
    kv_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} kv_table;

static uint64_t kv_hash(const uint8_t *key, uint32_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint32_t i = 0; i < len; i++) h = (h ^ key[i]) * 1099511628211ull;
    return h;
}

static kv_entry *kv_find(const kv_table *t, const uint8_t *key, uint32_t len) {
    uint64_t h = kv_hash(key, len);
    for (kv_entry *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    return NULL;
}

static void kv_grow(kv_table *t) {
    size_t n = t->nbuckets * 2;
    kv_entry **b = calloc(n, sizeof *b);
    if (!b) return; /* a longer chain is slower, not wrong */
    for (size_t i = 0; i < t->nbuckets; i++) {
        kv_entry *e = t->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static uint8_t *dup_bytes(const uint8_t *p, uint64_t n) {
    uint8_t *d = malloc(n ? (size_t)n : 1);
    if (d && n) memcpy(d, p, (size_t)n);
    return d;
}

/* key := value (copied). SHOAL_ERR_NOMEM leaves the table as it was. */
static int kv_set(kv_table *t, const uint8_t *key, uint32_t klen, const uint8_t *value,
                  uint64_t vlen) {
    uint8_t *v = dup_bytes(value, vlen);
    if (!v) return SHOAL_ERR_NOMEM;
    kv_entry *e = kv_find(t, key, klen);
    if (e) {
        free(e->value);
        e->value = v;
        e->value_len = vlen;
        return SHOAL_OK;
    }
    e = calloc(1, sizeof *e);
    uint8_t *k = dup_bytes(key, klen);
    if (!e || !k) {
        free(e);
        free(k);
        free(v);
        return SHOAL_ERR_NOMEM;
    }
    e->hash = kv_hash(key, klen);
    e->key = k;
    e->key_len = klen;
    e->value = v;
    e->value_len = vlen;
    e->next = t->buckets[e->hash & (t->nbuckets - 1)];
    t->buckets[e->hash & (t->nbuckets - 1)] = e;
    if (++t->count > t->nbuckets) kv_grow(t);
    return SHOAL_OK;
}

static void kv_free_entry(kv_entry *e) {
    free(e->key);
    free(e->value);
    free(e);
}

static void kv_delete(kv_table *t, const uint8_t *key, uint32_t klen) {
    uint64_t h = kv_hash(key, klen);
    for (kv_entry **pp = &t->buckets[h & (t->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
        kv_entry *e = *pp;
        if (e->hash == h && e->key_len == klen && memcmp(e->key, key, klen) == 0) {
            *pp = e->next;
            kv_free_entry(e);
            t->count--;
            return;
        }
    }
}

static void kv_destroy(kv_table *t) {
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        kv_entry *e = t->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            kv_free_entry(e);
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
}

/* ---- server state -------------------------------------------------------------------------- */

typedef struct conn {
    int fd;
    int dead;
    int runnable;        /* re-run process(): its GET may complete, or output drained */
    int waiting;         /* the head request is a GET parked until wait_deadline */
    double wait_deadline;
    uint32_t rank;
    char peer[PEER_MAX];
    uint8_t *in; /* bytes [in_off, in_len) are received but not yet served */
    size_t in_off, in_len, in_cap;
    uint8_t *out; /* bytes [out_off, out_len) are replies not yet sent */
    size_t out_off, out_len, out_cap;
} conn;

typedef struct adopt { /* an authenticated socket on its way from a handshake thread */
    struct adopt *next;
    int fd;
    uint32_t rank;
    char peer[PEER_MAX];
} adopt;

struct shoal__store_server {
    pthread_t thread;
    int listen_fd;
    int wake_rd, wake_wr; /* self-pipe */
    uint8_t *key;         /* own copy of the cluster key */
    shoal__auth auth;
    uint32_t world_size;
    uint64_t max_value;
    uint64_t max_frame; /* largest request payload accepted */
    double listen_pause_until;

    /* Shared with the handshake threads, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t hs_done;
    int stopping;
    int hs_count;
    int hs_fds[MAX_HANDSHAKES]; /* sockets in handshake (-1: free slot), shut down by stop */
    adopt *queue;

    /* Owned by the server thread. */
    conn **conns;
    size_t nconns, conns_cap;
    struct pollfd *pfds;
    size_t pfds_cap;
    kv_table kv;
};

typedef struct hs_job {
    shoal__store_server *s;
    int fd;
    int slot;
    char peer[PEER_MAX];
} hs_job;

static void wake_loop(shoal__store_server *s) {
    char b = 1;
    /* Non-blocking: when the pipe is full a wake-up is already pending, which is enough. */
    ssize_t w = write(s->wake_wr, &b, 1);
    (void)w;
}

/* ---- handshake threads --------------------------------------------------------------------- */

static int hs_run(shoal__store_server *s, int fd, uint32_t *rank, char *err, size_t errcap) {
    shoal__hello self, peer;
    memset(&self, 0, sizeof self);
    memset(&peer, 0, sizeof peer);
    self.version = SHOAL__PROTOCOL_VERSION;
    self.kind = SHOAL__CONN_STORE;
    self.rank = 0;
    self.world_size = s->world_size;
    double deadline = shoal__deadline_in(HANDSHAKE_TIMEOUT_S);
    int rc = shoal__handshake_accept(fd, &s->auth, &self, &peer, deadline, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (peer.lane != 0) {
        shoal__errf(err, errcap, "store connections use lane 0, rank %u asked for lane %u",
                    (unsigned)peer.rank, (unsigned)peer.lane);
        (void)shoal__handshake_verdict(fd, SHOAL__VERDICT_REFUSED, deadline);
        return SHOAL_ERR_AUTH;
    }
    /* A rank may hold several store connections (threads, tools): no "rank taken" rule. */
    rc = shoal__handshake_verdict(fd, SHOAL__VERDICT_OK, deadline);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "could not send the verdict to rank %u: %s",
                    (unsigned)peer.rank, shoal_status_str(rc));
        return rc;
    }
    *rank = peer.rank;
    return SHOAL_OK;
}

static void *hs_main(void *arg) {
    hs_job *j = arg;
    shoal__store_server *s = j->s;
    char err[256] = "";
    uint32_t rank = 0;
    int rc = hs_run(s, j->fd, &rank, err, sizeof err);
    adopt *a = NULL;
    if (rc == SHOAL_OK) {
        a = calloc(1, sizeof *a);
        if (!a) {
            shoal__errf(err, sizeof err, "out of memory");
            rc = SHOAL_ERR_NOMEM;
        } else {
            a->fd = j->fd;
            a->rank = rank;
            memcpy(a->peer, j->peer, sizeof a->peer);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->hs_fds[j->slot] = -1; /* from here on stop() no longer touches our fd */
    int stopping = s->stopping;
    if (a && !stopping) {
        a->next = s->queue;
        s->queue = a;
        a = NULL;
    }
    /* Wake the loop either way: it adopts the socket, or may accept again now a slot is free.
     * The pipe and s stay valid until hs_count drops to 0, so both happen under the lock. */
    wake_loop(s);
    s->hs_count--;
    pthread_cond_broadcast(&s->hs_done);
    pthread_mutex_unlock(&s->mu);

    if (rc != SHOAL_OK) {
        if (!stopping)
            shoal__log(SHOAL__LOG_WARN, "store: refused connection from %s: %s", j->peer, err);
        close(j->fd);
    } else if (a) { /* authenticated, but the server is stopping */
        close(a->fd);
        free(a);
    }
    free(j);
    return NULL;
}

static int hs_start(shoal__store_server *s, int fd, const char *peer) {
    hs_job *j = calloc(1, sizeof *j);
    if (!j) return SHOAL_ERR_NOMEM;
    j->s = s;
    j->fd = fd;
    shoal__errf(j->peer, sizeof j->peer, "%s", peer);
    pthread_mutex_lock(&s->mu);
    int slot = 0;
    while (slot < MAX_HANDSHAKES && s->hs_fds[slot] >= 0) slot++;
    if (slot == MAX_HANDSHAKES) { /* the loop checks hs_count first; cannot happen */
        pthread_mutex_unlock(&s->mu);
        free(j);
        return SHOAL_ERR_SYSTEM;
    }
    j->slot = slot;
    s->hs_fds[slot] = fd;
    s->hs_count++;
    pthread_mutex_unlock(&s->mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1 << 20); /* the handshake needs little stack */
    pthread_t t;
    int e = pthread_create(&t, &attr, hs_main, j);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        pthread_mutex_lock(&s->mu);
        s->hs_fds[slot] = -1;
        s->hs_count--;
        pthread_cond_broadcast(&s->hs_done);
        pthread_mutex_unlock(&s->mu);
        free(j);
        return SHOAL_ERR_SYSTEM;
    }
    return SHOAL_OK;
}

/* ---- connections --------------------------------------------------------------------------- */

static void conn_close(conn *c) {
    if (c->dead) return;
    c->dead = 1;
    close(c->fd);
    c->fd = -1;
}

/* Closes a client for breaking the protocol; the others are not affected. */
static void conn_fail(conn *c, const char *why) {
    if (c->dead) return;
    shoal__log(SHOAL__LOG_ERROR, "store: closing the connection of rank %u from %s: %s",
               (unsigned)c->rank, c->peer, why);
    conn_close(c);
}

static void conn_free(conn *c) {
    conn_close(c);
    free(c->in);
    free(c->out);
    free(c);
}

static int conn_add(shoal__store_server *s, adopt *a) {
    if (s->nconns == s->conns_cap) {
        size_t n = s->conns_cap ? s->conns_cap * 2 : 16;
        conn **cs = realloc(s->conns, n * sizeof *cs);
        if (!cs) return SHOAL_ERR_NOMEM;
        s->conns = cs;
        s->conns_cap = n;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) return SHOAL_ERR_NOMEM;
    if (shoal__set_nonblock(a->fd, 1) != SHOAL_OK) {
        free(c);
        return SHOAL_ERR_SYSTEM;
    }
    c->fd = a->fd;
    c->rank = a->rank;
    memcpy(c->peer, a->peer, sizeof c->peer);
    s->conns[s->nconns++] = c;
    shoal__log(SHOAL__LOG_DEBUG, "store: rank %u connected from %s", (unsigned)c->rank, c->peer);
    return SHOAL_OK;
}

static size_t out_pending(const conn *c) { return c->out_len - c->out_off; }

/* Appends one reply frame (tag echoes the request's) to the client's output. */
static int reply(conn *c, uint32_t tag, int32_t status, const uint8_t *value, uint64_t vlen) {
    if (c->dead) return SHOAL_ERR_PEER_FAILED;
    size_t need = SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REP_HDR + (size_t)vlen;
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_cap - c->out_len < need) {
        if (c->out_off > 0) { /* reuse the sent prefix before growing */
            memmove(c->out, c->out + c->out_off, out_pending(c));
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_cap - c->out_len < need) {
            size_t n = c->out_cap ? c->out_cap : 256;
            while (n - c->out_len < need) n *= 2;
            uint8_t *o = realloc(c->out, n);
            if (!o) { /* a missing reply would desynchronise the client: drop it instead */
                conn_fail(c, "out of memory for its reply");
                return SHOAL_ERR_NOMEM;
            }
            c->out = o;
            c->out_cap = n;
        }
    }
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REP, .tag = tag,
                          .len = SHOAL__STORE_REP_HDR + vlen};
    uint8_t *p = c->out + c->out_len;
    shoal__frame_encode(&h, p);
    shoal__store_rep_encode_hdr(status, p + SHOAL__FRAME_HDR_SIZE);
    if (vlen) memcpy(p + SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REP_HDR, value, (size_t)vlen);
    c->out_len += need;
    return SHOAL_OK;
}

static void conn_flush(conn *c) {
    while (!c->dead && out_pending(c) > 0) {
        ssize_t w = send(c->fd, c->out + c->out_off, out_pending(c), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return; /* POLLOUT resumes */
        shoal__log(SHOAL__LOG_DEBUG, "store: rank %u from %s went away while we replied",
                   (unsigned)c->rank, c->peer);
        conn_close(c);
    }
    if (!c->dead) c->out_off = c->out_len = 0;
}

/* Bytes the head frame needs in the buffer (header, then header + payload). */
static int head_need(const shoal__store_server *s, const conn *c, size_t *need,
                     shoal__frame_hdr *h, char *err, size_t errcap) {
    size_t have = c->in_len - c->in_off;
    if (have < SHOAL__FRAME_HDR_SIZE) {
        *need = SHOAL__FRAME_HDR_SIZE;
        return SHOAL_OK;
    }
    int rc = shoal__frame_decode(c->in + c->in_off, s->max_frame, h, err, errcap);
    if (rc != SHOAL_OK) return rc;
    *need = SHOAL__FRAME_HDR_SIZE + (size_t)h->len;
    return SHOAL_OK;
}

/* Whether a whole frame is buffered (a malformed header counts: process() reports it). */
static int head_complete(const shoal__store_server *s, const conn *c) {
    shoal__frame_hdr h;
    size_t need;
    if (head_need(s, c, &need, &h, NULL, 0) != SHOAL_OK) return 1;
    return c->in_len - c->in_off >= need;
}

/* ---- serving requests ---------------------------------------------------------------------- */

/* Marks every client parked on key runnable: its GET can now be answered. */
static void wake_waiters(shoal__store_server *s, const uint8_t *key, uint32_t klen) {
    for (size_t i = 0; i < s->nconns; i++) {
        conn *c = s->conns[i];
        if (c->dead || !c->waiting) continue;
        const uint8_t *p = c->in + c->in_off;
        uint32_t wlen = shoal__get_u32(p + SHOAL__FRAME_HDR_SIZE + 4);
        if (wlen == klen &&
            memcmp(p + SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REQ_HDR, key, klen) == 0)
            c->runnable = 1;
    }
}

/* 1: served; 0: parked (a GET of a missing key before its deadline). */
static int serve_get(conn *c, shoal__store_server *s, uint32_t tag, const shoal__store_req *r) {
    kv_entry *e = kv_find(&s->kv, r->key, r->key_len);
    if (e) {
        c->waiting = 0;
        (void)reply(c, tag, SHOAL_OK, e->value, e->value_len);
        return 1;
    }
    if (!c->waiting) {
        if (r->arg == 0) {
            (void)reply(c, tag, SHOAL_ERR_TIMEOUT, NULL, 0);
            return 1;
        }
        c->waiting = 1;
        c->wait_deadline = r->arg == SHOAL__STORE_WAIT_FOREVER
                               ? SHOAL__FOREVER
                               : shoal__now() + (double)r->arg / 1000.0;
        return 0;
    }
    if (shoal__now() >= c->wait_deadline) {
        c->waiting = 0;
        (void)reply(c, tag, SHOAL_ERR_TIMEOUT, NULL, 0);
        return 1;
    }
    return 0;
}

static void serve_add(conn *c, shoal__store_server *s, uint32_t tag, const shoal__store_req *r) {
    kv_entry *e = kv_find(&s->kv, r->key, r->key_len);
    if (e && e->value_len != 8) { /* not a counter: SET wrote something else there */
        (void)reply(c, tag, SHOAL_ERR_INVALID, NULL, 0);
        return;
    }
    /* Unsigned arithmetic: the counter wraps like two's complement instead of overflowing. */
    uint64_t v = (e ? shoal__get_u64(e->value) : 0) + r->arg;
    uint8_t b[8];
    shoal__put_u64(b, v);
    if (kv_set(&s->kv, r->key, r->key_len, b, 8) != SHOAL_OK) {
        (void)reply(c, tag, SHOAL_ERR_NOMEM, NULL, 0);
        return;
    }
    wake_waiters(s, r->key, r->key_len);
    (void)reply(c, tag, SHOAL_OK, b, 8);
}

/* Serves one decoded request. 1: done (consume it); 0: parked. */
static int serve(conn *c, shoal__store_server *s, uint32_t tag, const shoal__store_req *r) {
    switch (r->op) {
    case SHOAL__STORE_SET:
        if (r->value_len > s->max_value) {
            (void)reply(c, tag, SHOAL_ERR_INVALID, NULL, 0);
        } else if (kv_set(&s->kv, r->key, r->key_len, r->value, r->value_len) != SHOAL_OK) {
            (void)reply(c, tag, SHOAL_ERR_NOMEM, NULL, 0);
        } else {
            wake_waiters(s, r->key, r->key_len);
            (void)reply(c, tag, SHOAL_OK, NULL, 0);
        }
        return 1;
    case SHOAL__STORE_GET: return serve_get(c, s, tag, r);
    case SHOAL__STORE_ADD: serve_add(c, s, tag, r); return 1;
    case SHOAL__STORE_CHECK: {
        uint8_t b = kv_find(&s->kv, r->key, r->key_len) ? 1 : 0;
        (void)reply(c, tag, SHOAL_OK, &b, 1);
        return 1;
    }
    case SHOAL__STORE_DELETE:
        kv_delete(&s->kv, r->key, r->key_len);
        (void)reply(c, tag, SHOAL_OK, NULL, 0);
        return 1;
    default: return 1; /* decode rejects other ops */
    }
}

/* Serves the client's buffered frames in order until one parks, the input runs out, or its
 * unsent replies pile up. */
static void process(shoal__store_server *s, conn *c) {
    char err[256];
    while (!c->dead && out_pending(c) < OUT_HIGH) {
        shoal__frame_hdr h;
        size_t need;
        if (head_need(s, c, &need, &h, err, sizeof err) != SHOAL_OK) {
            conn_fail(c, err);
            break;
        }
        if (c->in_len - c->in_off < need) break; /* (h is set whenever this passes) */
        const uint8_t *payload = c->in + c->in_off + SHOAL__FRAME_HDR_SIZE;
        if (h.type == SHOAL__FRAME_BYE) {
            shoal__log(SHOAL__LOG_DEBUG, "store: rank %u from %s said goodbye",
                       (unsigned)c->rank, c->peer);
            conn_close(c);
            break;
        }
        if (h.type == SHOAL__FRAME_HEARTBEAT && h.len == 0) {
            c->in_off += need;
            continue;
        }
        if (h.type != SHOAL__FRAME_STORE_REQ) {
            shoal__errf(err, sizeof err, "unexpected frame type %u (len %llu) on a store "
                        "connection", (unsigned)h.type, (unsigned long long)h.len);
            conn_fail(c, err);
            break;
        }
        shoal__store_req r;
        if (shoal__store_req_decode(payload, h.len, &r, err, sizeof err) != SHOAL_OK) {
            conn_fail(c, err);
            break;
        }
        if (!serve(c, s, h.tag, &r)) break; /* parked: later requests wait behind it */
        c->in_off += need;
    }
    if (!c->dead && c->in_off == c->in_len) c->in_off = c->in_len = 0;
    conn_flush(c);
    /* Stopped only because replies piled up, and the flush sent them all: keep going now,
     * since no poll event would bring us back to the frames already buffered. */
    if (!c->dead && !c->waiting && out_pending(c) < OUT_HIGH && head_complete(s, c))
        c->runnable = 1;
}

/* Whether the loop should read more from c now; otherwise it leaves the bytes in the kernel,
 * which throttles a client that sends faster than it is served. */
static int wants_input(const shoal__store_server *s, const conn *c) {
    if (c->dead || c->waiting || out_pending(c) >= OUT_HIGH) return 0;
    shoal__frame_hdr h;
    size_t need;
    if (head_need(s, c, &need, &h, NULL, 0) != SHOAL_OK) return 0;
    size_t limit = need > IN_CHUNK ? need : IN_CHUNK;
    return c->in_len - c->in_off < limit;
}

static void conn_read(shoal__store_server *s, conn *c) {
    char err[256];
    while (!c->dead) {
        shoal__frame_hdr h;
        size_t need;
        if (head_need(s, c, &need, &h, err, sizeof err) != SHOAL_OK) {
            conn_fail(c, err); /* checked before a byte of the payload is buffered */
            return;
        }
        size_t limit = need > IN_CHUNK ? need : IN_CHUNK;
        size_t have = c->in_len - c->in_off;
        if (have >= limit) return;
        if (c->in_off > 0) {
            memmove(c->in, c->in + c->in_off, have);
            c->in_off = 0;
            c->in_len = have;
        }
        if (c->in_cap < limit && c->in_len == c->in_cap) {
            /* Grow step by step as bytes arrive, so a header alone cannot make us allocate
             * its whole (validated, but maybe large) length. */
            size_t n = c->in_cap ? c->in_cap * 2 : IN_CHUNK;
            if (n > limit) n = limit;
            uint8_t *b = realloc(c->in, n);
            if (!b) {
                conn_fail(c, "out of memory for its request");
                return;
            }
            c->in = b;
            c->in_cap = n;
        }
        size_t room = c->in_cap - c->in_len;
        if (room > limit - have) room = limit - have;
        ssize_t r = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0) {
            shoal__log(SHOAL__LOG_DEBUG, "store: rank %u from %s disconnected", (unsigned)c->rank,
                       c->peer);
            conn_close(c);
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        shoal__log(SHOAL__LOG_DEBUG, "store: rank %u from %s: %s", (unsigned)c->rank, c->peer,
                   strerror(errno));
        conn_close(c);
        return;
    }
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void run_runnable(shoal__store_server *s) {
    /* Serving one client may wake others (a SET or ADD), so repeat until nothing is left. */
    for (int any = 1; any;) {
        any = 0;
        for (size_t i = 0; i < s->nconns; i++) {
            conn *c = s->conns[i];
            if (!c->runnable || c->dead) continue;
            c->runnable = 0;
            process(s, c);
            any = 1;
        }
    }
}

static void reap_dead(shoal__store_server *s) {
    size_t j = 0;
    for (size_t i = 0; i < s->nconns; i++) {
        if (s->conns[i]->dead)
            conn_free(s->conns[i]);
        else
            s->conns[j++] = s->conns[i];
    }
    s->nconns = j;
}

/* Adopts the sockets that passed their handshake. Returns 1 when stop was requested. */
static int drain_wake(shoal__store_server *s) {
    char buf[64];
    while (read(s->wake_rd, buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping;
    adopt *q = s->queue;
    s->queue = NULL;
    pthread_mutex_unlock(&s->mu);
    while (q) {
        adopt *next = q->next;
        if (stop || conn_add(s, q) != SHOAL_OK) {
            if (!stop)
                shoal__log(SHOAL__LOG_ERROR, "store: cannot serve rank %u from %s: out of "
                           "resources", (unsigned)q->rank, q->peer);
            close(q->fd);
        }
        free(q);
        q = next;
    }
    return stop;
}

static void accept_new(shoal__store_server *s) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int full = s->hs_count >= MAX_HANDSHAKES;
        pthread_mutex_unlock(&s->mu);
        if (full) return;
        int fd;
        char peer[PEER_MAX];
        int rc = shoal__tcp_accept(s->listen_fd, &fd, peer, sizeof peer);
        if (rc == SHOAL_ERR_TIMEOUT) return;
        if (rc != SHOAL_OK) {
            /* Out of descriptors, most likely: the listener stays readable, so pause it
             * rather than spin, and let the clients' connect retries bring them back. */
            shoal__log(SHOAL__LOG_WARN, "store: accept failed: %s", strerror(errno));
            s->listen_pause_until = shoal__now() + 0.1;
            return;
        }
        if (hs_start(s, fd, peer) != SHOAL_OK) {
            shoal__log(SHOAL__LOG_WARN, "store: refused connection from %s: %s", peer,
                       "cannot start a handshake thread");
            close(fd);
            s->listen_pause_until = shoal__now() + 0.1;
            return;
        }
    }
}

static int ensure_pfds(shoal__store_server *s, size_t n) {
    if (n <= s->pfds_cap) return SHOAL_OK;
    size_t cap = s->pfds_cap ? s->pfds_cap : 16;
    while (cap < n) cap *= 2;
    struct pollfd *p = realloc(s->pfds, cap * sizeof *p);
    if (!p) return SHOAL_ERR_NOMEM;
    s->pfds = p;
    s->pfds_cap = cap;
    return SHOAL_OK;
}

/* Fills the poll set; returns the poll timeout in ms (the nearest GET or listener deadline). */
static int build_poll(shoal__store_server *s, double now) {
    double next = SHOAL__FOREVER;
    s->pfds[0] = (struct pollfd){.fd = s->wake_rd, .events = POLLIN};
    int listen_on = now >= s->listen_pause_until;
    if (!listen_on) next = s->listen_pause_until;
    pthread_mutex_lock(&s->mu);
    if (s->hs_count >= MAX_HANDSHAKES) listen_on = 0; /* a finishing handshake wakes us */
    pthread_mutex_unlock(&s->mu);
    s->pfds[1] = (struct pollfd){.fd = listen_on ? s->listen_fd : -1, .events = POLLIN};
    for (size_t i = 0; i < s->nconns; i++) {
        conn *c = s->conns[i];
        short ev = POLLRDHUP; /* so a parked client that hangs up is noticed */
        if (wants_input(s, c)) ev |= POLLIN;
        if (out_pending(c) > 0) ev |= POLLOUT;
        s->pfds[2 + i] = (struct pollfd){.fd = c->fd, .events = ev};
        if (c->waiting && c->wait_deadline < next) next = c->wait_deadline;
    }
    return shoal__ms_until(next, -1);
}

static void handle_conn_events(shoal__store_server *s, conn *c, short ev, short rev) {
    if (rev & POLLOUT) conn_flush(c);
    if (!c->dead && (rev & POLLIN)) conn_read(s, c);
    else if (!c->dead && (rev & (POLLRDHUP | POLLHUP | POLLERR)) && !(ev & POLLIN))
        conn_close(c); /* gone while we were not reading from it */
    if (!c->dead) c->runnable = 1;
}

static void *server_main(void *arg) {
    shoal__store_server *s = arg;
    for (;;) {
        if (ensure_pfds(s, s->nconns + 2) != SHOAL_OK) {
            shoal__log(SHOAL__LOG_ERROR, "store: out of memory for the poll set; retrying");
            struct pollfd p = {.fd = s->wake_rd, .events = POLLIN};
            (void)poll(&p, 1, 100);
            if (drain_wake(s)) break;
            continue;
        }
        size_t n = s->nconns; /* conns added below get their first poll next round */
        int ms = build_poll(s, shoal__now());
        int r = poll(s->pfds, 2 + n, ms);
        if (r < 0 && errno != EINTR) {
            shoal__log(SHOAL__LOG_ERROR, "store: poll failed: %s", strerror(errno));
            (void)poll(NULL, 0, 10);
            continue;
        }
        if (r > 0) {
            for (size_t i = 0; i < n; i++)
                if (s->pfds[2 + i].revents)
                    handle_conn_events(s, s->conns[i], s->pfds[2 + i].events,
                                       s->pfds[2 + i].revents);
            if (s->pfds[1].revents) accept_new(s);
            if (s->pfds[0].revents && drain_wake(s)) break;
        }
        double now = shoal__now();
        for (size_t i = 0; i < s->nconns; i++) {
            conn *c = s->conns[i];
            if (c->waiting && now >= c->wait_deadline) c->runnable = 1;
        }
        run_runnable(s);
        reap_dead(s);
    }
    return NULL;
}

/* ---- start / stop -------------------------------------------------------------------------- */

static void server_free(shoal__store_server *s) {
    for (size_t i = 0; i < s->nconns; i++) conn_free(s->conns[i]);
    free(s->conns);
    free(s->pfds);
    while (s->queue) {
        adopt *a = s->queue;
        s->queue = a->next;
        close(a->fd);
        free(a);
    }
    kv_destroy(&s->kv);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0) close(s->wake_wr);
    pthread_cond_destroy(&s->hs_done);
    pthread_mutex_destroy(&s->mu);
    if (s->key) {
        memset(s->key, 0, s->auth.key_len); /* do not leave the secret in freed memory */
        free(s->key);
    }
    free(s);
}

int shoal__store_server_start(const char *host, uint16_t port, const shoal__auth *auth,
                              uint32_t world_size, uint64_t max_value,
                              shoal__store_server **out, uint16_t *bound_port, char *err,
                              size_t errcap) {
    if (!auth || !out || world_size == 0 || (auth->key_len && !auth->key)) {
        shoal__errf(err, errcap, "store server: bad arguments");
        return SHOAL_ERR_INVALID;
    }
    shoal__store_server *s = calloc(1, sizeof *s);
    if (!s) return SHOAL_ERR_NOMEM;
    s->listen_fd = s->wake_rd = s->wake_wr = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->hs_done, NULL);
    for (int i = 0; i < MAX_HANDSHAKES; i++) s->hs_fds[i] = -1;
    int rc = SHOAL_ERR_NOMEM;
    s->key = malloc(auth->key_len ? auth->key_len : 1);
    s->kv.nbuckets = 64;
    s->kv.buckets = calloc(s->kv.nbuckets, sizeof *s->kv.buckets);
    if (!s->key || !s->kv.buckets) goto fail;
    if (auth->key_len) memcpy(s->key, auth->key, auth->key_len);
    s->auth.key = s->key;
    s->auth.key_len = auth->key_len;
    memcpy(s->auth.group, auth->group, SHOAL__GROUP_ID_SIZE);
    s->world_size = world_size;
    s->max_value = max_value;
    uint64_t fixed = SHOAL__STORE_REQ_HDR + SHOAL__STORE_KEY_MAX;
    s->max_frame = max_value > SIZE_MAX / 2 - fixed ? SIZE_MAX / 2 : fixed + max_value;

    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        shoal__errf(err, errcap, "store server: pipe: %s", strerror(errno));
        rc = SHOAL_ERR_SYSTEM;
        goto fail;
    }
    s->wake_rd = p[0];
    s->wake_wr = p[1];
    rc = shoal__tcp_listen(host, port, &s->listen_fd, bound_port, err, errcap);
    if (rc != SHOAL_OK) goto fail;
    int e = pthread_create(&s->thread, NULL, server_main, s);
    if (e != 0) {
        shoal__errf(err, errcap, "store server: cannot start its thread: %s", strerror(e));
        rc = SHOAL_ERR_SYSTEM;
        goto fail;
    }
    *out = s;
    return SHOAL_OK;
fail:
    if (rc == SHOAL_ERR_NOMEM) shoal__errf(err, errcap, "store server: out of memory");
    server_free(s);
    return rc;
}

void shoal__store_server_stop(shoal__store_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    wake_loop(s);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);

    /* Handshake threads still hold s: cut their sockets so they finish now rather than at
     * their deadline, and wait for the last one to let go. */
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_HANDSHAKES; i++)
        if (s->hs_fds[i] >= 0) shutdown(s->hs_fds[i], SHUT_RDWR);
    while (s->hs_count > 0) pthread_cond_wait(&s->hs_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    server_free(s);
}
