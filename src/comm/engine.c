/* The progress engine: non-blocking socket I/O over epoll, frame parsing, matching of incoming
 * messages to posted receives, and failure propagation.
 *
 * Everything here runs with mesh->mu held, except epoll_wait itself. Whichever thread waits
 * for a request takes the progress token and drives the sockets (see comm_core.h), so a
 * blocking call's hot path is: writev inline, epoll_wait, one read(), match, return. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "comm/comm_core.h"

#define KICK_ID UINT64_MAX
#define MAX_EVENTS 64
#define MAX_IOV 64
#define READ_BUDGET (32u << 20) /* bytes read from one connection per event: fairness */
#define DIRECT_READ_MAX (16u << 20)

static shoal__conn *conn_of(shoal__mesh *m, int peer, int lane) {
    return &m->conns[(size_t)peer * 2 + (size_t)lane];
}

static void queue_frame(shoal__mesh *m, shoal__conn *c, uint8_t type, uint32_t aux);
static int ref_read(shoal__mesh *m, shoal__conn *c, uint32_t id, uint64_t addr, uint8_t *dst, uint64_t len,
                    int coop);
static int ref_pull(shoal__mesh *m, shoal__conn *c, uint32_t id);
static int ref_deliver(shoal__mesh *m, shoal__conn *c, shoal_request *r, uint32_t id, uint64_t addr, uint64_t len,
                       uint32_t tag);

/* ---- request completion ------------------------------------------------------------------ */

/* Sends nobody waits for (orphaned by a cancel, heartbeats, rpc replies) are freed by the
 * engine when they leave the queue. */
static void release_owned(shoal_request *r) {
    if (r->internal == 2) { /* orphan: buf lives inside the allocation */
        free(r);
    } else if (r->owned) {
        free(r->buf);
        free(r);
    }
}

void shoal__req_complete(shoal__mesh *m, shoal_request *r, int status) {
    if (r->state == REQ_DONE) return;
    r->state = REQ_DONE;
    r->status = status;
    pthread_cond_broadcast(&m->cv);
    /* The token holder may be blocked in epoll_wait waiting for exactly this request (when it
     * only spins, it sees the state change itself: no system call on the hot path). */
    if (m->in_epoll) shoal__mesh_kick(m);
}

void shoal__mesh_kick(shoal__mesh *m) {
    uint64_t one = 1;
    ssize_t w = write(m->kickfd, &one, sizeof one);
    (void)w; /* EAGAIN means a kick is already pending: as good */
}

/* ---- lists ------------------------------------------------------------------------------- */

#define LIST_APPEND(head, tail, x) \
    do {                           \
        (x)->next = NULL;          \
        (x)->prev = (tail);        \
        if (tail) (tail)->next = (x); \
        else (head) = (x);         \
        (tail) = (x);              \
    } while (0)
#define LIST_REMOVE(head, tail, x)                  \
    do {                                            \
        if ((x)->prev) (x)->prev->next = (x)->next; \
        else (head) = (x)->next;                    \
        if ((x)->next) (x)->next->prev = (x)->prev; \
        else (tail) = (x)->prev;                    \
        (x)->next = (x)->prev = NULL;               \
    } while (0)

static void umsg_free(shoal__mesh *m, shoal__umsg *u) {
    LIST_REMOVE(m->unexp_head, m->unexp_tail, u);
    free(u->data);
    free(u);
}

/* The sink that takes messages of context ctx, or NULL. */
static const shoal__sink *find_sink(const shoal__mesh *m, uint32_t ctx) {
    for (int i = 0; i < m->nsinks; i++)
        if (m->sinks[i].ctx == ctx) return &m->sinks[i];
    return NULL;
}

/* ---- receive completion ------------------------------------------------------------------ */

/* Fills a receive's result for a message of len bytes from world rank src. */
static void recv_finish(shoal__mesh *m, shoal_request *r, int src, uint32_t tag, uint64_t len) {
    r->info.source = r->comm->w2c[src];
    r->info.tag = (int)tag;
    r->info.bytes = (size_t)len;
    int st = SHOAL_OK;
    if (len > r->cap) {
        st = r->internal ? SHOAL_ERR_PROTOCOL : SHOAL_ERR_TRUNCATED;
        shoal__log(SHOAL__LOG_DEBUG, "message of %llu bytes from rank %d truncated to %zu",
                   (unsigned long long)len, src, r->cap);
    }
    shoal__req_complete(m, r, st);
}

static int matches(const shoal_request *r, int src, uint32_t ctx, uint32_t tag) {
    return r->ctx == ctx && (r->peer_world < 0 || r->peer_world == src) &&
           (r->any_tag || r->tag == tag);
}

static shoal_request *find_posted(shoal__mesh *m, int src, uint32_t ctx, uint32_t tag) {
    for (shoal_request *r = m->posted_head; r; r = r->next)
        if (matches(r, src, ctx, tag)) return r;
    return NULL;
}

/* An unexpected message finished arriving. */
static void umsg_complete(shoal__mesh *m, shoal__umsg *u) {
    u->complete = 1;
    shoal_request *r = u->claimed;
    if (!r) return;
    size_t n = u->len < r->cap ? (size_t)u->len : r->cap;
    if (n) memcpy(r->buf, u->data, n);
    recv_finish(m, r, u->src_world, u->tag, u->len);
    umsg_free(m, u);
}

/* ---- failure ----------------------------------------------------------------------------- */

static int comm_has_member(const shoal_comm *c, int world_rank) {
    return c->w2c[world_rank] >= 0;
}

static void close_conn(shoal__mesh *m, shoal__conn *c) {
    if (c->fd < 0) return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->shm) {
        c->shm = 0;
        m->nshm--;
    }
    /* both lanes' rings live in lane 0's segment: unmap once neither uses it */
    shoal__conn *l0 = conn_of(m, c->peer, 0), *l1 = conn_of(m, c->peer, 1);
    if (l0->shm_base && !l0->shm && !l1->shm) {
        munmap(l0->shm_base, l0->shm_len);
        l0->shm_base = NULL;
    }
}

/* Peer `peer` is gone (both lanes): close, and fail everything that depends on it. */
void shoal__engine_peer_lost(shoal__mesh *m, int peer, int orderly, const char *why) {
    if (m->failed[peer]) return;
    m->failed[peer] = orderly ? 2 : 1;
    snprintf(m->fail_why[peer], sizeof m->fail_why[peer], "%s", why);
    atomic_fetch_add(&m->failure_epoch, 1);
    pthread_cond_signal(&m->monitor_cv); /* the monitor delivers failure callbacks */
    for (int i = 0; i < m->nsinks; i++)
        if (m->sinks[i].peer_lost) m->sinks[i].peer_lost(m->sinks[i].user, peer);
    if (!orderly)
        shoal__log(SHOAL__LOG_WARN, "lost connection to rank %d (%s): %s", peer,
                   conn_of(m, peer, 0)->addr, why);
    for (int lane = 0; lane < 2; lane++) {
        shoal__conn *c = conn_of(m, peer, lane);
        close_conn(m, c);
        while (c->sq_head) {
            shoal_request *r = c->sq_head;
            LIST_REMOVE(c->sq_head, c->sq_tail, r);
            shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
            release_owned(r);
        }
        while (c->ref_head) { /* the peer will never read these now */
            shoal_request *r = c->ref_head;
            LIST_REMOVE(c->ref_head, c->ref_tail, r);
            m->ref_out--;
            shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
            release_owned(r);
        }
        c->in_ref_desc = 0;
        if (c->cur_req) shoal__req_complete(m, c->cur_req, SHOAL_ERR_PEER_FAILED);
        c->cur_req = NULL;
        if (c->cur_sink) c->cur_sink->done(c->cur_sink->user, peer, c->cur.tag, c->cur_sink_buf,
                                           c->cur.len, SHOAL_ERR_PEER_FAILED);
        c->cur_sink = NULL;
        c->cur_sink_buf = NULL;
        if (c->cur_msg) { /* partial message: it will never be whole */
            if (c->cur_msg->claimed)
                shoal__req_complete(m, c->cur_msg->claimed, SHOAL_ERR_PEER_FAILED);
            umsg_free(m, c->cur_msg);
        }
        c->cur_msg = NULL;
        c->in_payload = 0;
    }
    /* Messages it still held for us (DATA_REF) cannot be read any more. */
    for (shoal__umsg *u = m->unexp_head, *next; u; u = next) {
        next = u->next;
        if (u->ref && u->src_world == peer) umsg_free(m, u);
    }
    /* Receives naming the peer, and any-source receives of groups it belonged to. */
    shoal_request *r = m->posted_head;
    while (r) {
        shoal_request *next = r->next;
        if (r->peer_world == peer || (r->peer_world < 0 && comm_has_member(r->comm, peer))) {
            LIST_REMOVE(m->posted_head, m->posted_tail, r);
            shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
        }
        r = next;
    }
    pthread_cond_broadcast(&m->cv);
}

static void conn_error(shoal__mesh *m, shoal__conn *c, const char *why) {
    /* a BYE on either lane means the peer left on purpose */
    int orderly = conn_of(m, c->peer, 0)->bye_received || conn_of(m, c->peer, 1)->bye_received;
    shoal__engine_peer_lost(m, c->peer, orderly, why);
}

/* ---- sending ----------------------------------------------------------------------------- */

static void update_events(shoal__mesh *m, shoal__conn *c) {
    int want = c->sq_head != NULL && !c->shm; /* a ring's space is polled, not signalled */
    if (c->fd < 0 || want == c->epoll_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)(c->peer * 2 + c->lane)};
    if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->epoll_out = want;
}

/* Writes to the connection's transport: the shared ring (waking the peer if it sleeps) or the
 * socket. Returns bytes written, or -1 with errno (EAGAIN when full). */
static ssize_t wire_write(shoal__mesh *m, shoal__conn *c, struct iovec *iov, int n) {
    if (c->shm) {
        size_t w = shoal__ring_writev(&c->tx, iov, n);
        if (w && shoal__ring_take_wakeup(&c->tx)) shoal__shm_doorbell(m, c->peer);
        if (!w) errno = EAGAIN;
        return w ? (ssize_t)w : -1;
    }
    /* sendmsg, not writev: MSG_NOSIGNAL keeps a dead peer from raising SIGPIPE */
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(c->fd, &msg, MSG_NOSIGNAL);
}

/* Payload bytes a send puts on the wire: a DATA_REF carries only its descriptor (in pre). */
static size_t wire_payload(const shoal_request *r) { return r->ref ? 0 : r->cap; }

/* Writes as much of the send queue as the transport takes, several messages per call. */
static void conn_flush(shoal__mesh *m, shoal__conn *c) {
    while (c->sq_head && c->fd >= 0) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (shoal_request *r = c->sq_head; r && n + 3 <= MAX_IOV; r = r->next) {
            /* the frame is three segments: header, prefix, payload */
            const uint8_t *seg[3] = {r->hdr, r->pre, r->buf};
            size_t len[3] = {SHOAL__FRAME_HDR_SIZE, r->pre_len, wire_payload(r)};
            size_t off = r->sent;
            for (int k = 0; k < 3; k++) {
                if (off >= len[k]) {
                    off -= len[k];
                    continue;
                }
                iov[n].iov_base = (void *)(seg[k] + off);
                iov[n++].iov_len = len[k] - off;
                off = 0;
            }
        }
        ssize_t w = wire_write(m, c, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_error(m, c, strerror(errno));
            return;
        }
        size_t left = (size_t)w;
        while (c->sq_head) {
            shoal_request *r = c->sq_head;
            size_t total = SHOAL__FRAME_HDR_SIZE + r->pre_len + wire_payload(r);
            size_t need = total - r->sent;
            if (left < need) {
                r->sent += left;
                r->state = REQ_ACTIVE;
                left = 0;
                break;
            }
            left -= need;
            r->sent = total;
            LIST_REMOVE(c->sq_head, c->sq_tail, r);
            if (r->ref) { /* the buffer is the peer's to read until it says REF_DONE */
                r->state = REQ_ACTIVE;
                r->ref_since = shoal__now();
                LIST_APPEND(c->ref_head, c->ref_tail, r);
                m->ref_out++;
                continue;
            }
            shoal__req_complete(m, r, SHOAL_OK);
            release_owned(r);
        }
        if (c->sq_head) break; /* partial write: the socket is full */
    }
    update_events(m, c);
}

/* A message to ourselves through a sink (rpc calls to self): prefix and payload by copy. */
static int deliver_local_sink(shoal__mesh *m, shoal_request *s) {
    const shoal__sink *sk = find_sink(m, s->ctx);
    if (!sk) return 0;
    uint64_t len = s->pre_len + s->cap;
    uint8_t *buf = sk->begin(sk->user, m->rank, s->tag, len);
    if (buf) {
        memcpy(buf, s->pre, s->pre_len);
        if (s->cap) memcpy(buf + s->pre_len, s->buf, s->cap);
    }
    sk->done(sk->user, m->rank, s->tag, buf, len, SHOAL_OK);
    shoal__req_complete(m, s, SHOAL_OK);
    release_owned(s);
    return 1;
}

/* A message to ourselves: delivered by copy, the send completes at once. Only sinks take
 * messages with a prefix; matched messages have none. */
static void deliver_local(shoal__mesh *m, shoal_request *s) {
    if (deliver_local_sink(m, s)) return;
    shoal_request *r = find_posted(m, m->rank, s->ctx, s->tag);
    if (r) {
        LIST_REMOVE(m->posted_head, m->posted_tail, r);
        size_t n = s->cap < r->cap ? s->cap : r->cap;
        if (n) memcpy(r->buf, s->buf, n);
        recv_finish(m, r, m->rank, s->tag, s->cap);
        shoal__req_complete(m, s, SHOAL_OK);
        return;
    }
    shoal__umsg *u = calloc(1, sizeof *u);
    uint8_t *data = s->cap ? malloc(s->cap) : NULL;
    if (!u || (s->cap && !data)) {
        free(u);
        free(data);
        shoal__req_complete(m, s, SHOAL_ERR_NOMEM);
        return;
    }
    if (s->cap) memcpy(data, s->buf, s->cap);
    u->src_world = m->rank;
    u->ctx = s->ctx;
    u->tag = s->tag;
    u->len = u->got = s->cap;
    u->data = data;
    u->complete = 1;
    LIST_APPEND(m->unexp_head, m->unexp_tail, u);
    shoal__req_complete(m, s, SHOAL_OK);
}

/* Whether a plain message of len bytes to c's peer goes as a DATA_REF (single copy). */
static int ref_eligible(const shoal__mesh *m, const shoal__conn *c, size_t len) {
    return c->shm && c->ref_tx && len >= m->ref_min;
}

void shoal__engine_post_send(shoal__mesh *m, shoal_request *r) {
    if (r->peer_world == m->rank) {
        deliver_local(m, r);
        return;
    }
    shoal__conn *c = conn_of(m, r->peer_world, r->lane);
    if (c->fd < 0 || m->failed[r->peer_world]) {
        shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
        release_owned(r);
        return;
    }
    shoal__frame_hdr h = {.type = r->frame_type ? r->frame_type : SHOAL__FRAME_DATA,
                          .ctx = r->ctx, .tag = r->frame_type ? 0 : r->tag,
                          .aux = r->frame_type ? r->tag : 0, .len = r->pre_len + r->cap};
    /* Large plain messages to a same-host peer that can read our memory: send only where
     * they are, and the peer copies them once, straight into place (docs/protocol.md). */
    r->ref = !r->frame_type && !r->owned && !r->internal && r->pre_len == 0 && ref_eligible(m, c, r->cap);
    if (r->ref) {
        shoal__put_u64(r->pre, (uint64_t)(uintptr_t)r->buf);
        shoal__put_u64(r->pre + 8, r->cap);
        r->pre_len = 16;
        h.type = SHOAL__FRAME_DATA_REF;
        h.len = 16;
        h.aux = r->ref_id = c->ref_next_id++;
    }
    shoal__frame_encode(&h, r->hdr);
    r->sent = 0;
    int was_empty = c->sq_head == NULL;
    LIST_APPEND(c->sq_head, c->sq_tail, r);
    if (was_empty) conn_flush(m, c); /* inline: most small sends finish right here */
}

int shoal__engine_send_inline(shoal__mesh *m, int lane, uint32_t ctx, uint32_t tag, const void *buf,
                              size_t len, int peer_world) {
    if (peer_world == m->rank) return 0;
    shoal__conn *c = conn_of(m, peer_world, lane);
    /* a queued send must go first (order), and a DATA_REF needs a request to wait on */
    if (!c->shm || c->fd < 0 || c->sq_head || m->failed[peer_world] || ref_eligible(m, c, len)) return 0;
    uint8_t hdr[SHOAL__FRAME_HDR_SIZE];
    shoal__frame_hdr h = {.type = SHOAL__FRAME_DATA, .ctx = ctx, .tag = tag, .len = len};
    shoal__frame_encode(&h, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)buf, len}};
    if (!shoal__ring_write_all(&c->tx, iov, 2)) return 0;
    if (shoal__ring_take_wakeup(&c->tx)) shoal__shm_doorbell(m, c->peer);
    return 1;
}

/* ---- receiving --------------------------------------------------------------------------- */

void shoal__engine_post_recv(shoal__mesh *m, shoal_request *r) {
    for (shoal__umsg *u = m->unexp_head; u; u = u->next) {
        if (u->claimed || !matches(r, u->src_world, u->ctx, u->tag)) continue;
        if (u->ref) { /* still in the sender: one copy straight into place */
            shoal__conn *c = conn_of(m, u->src_world, u->ref_lane);
            uint32_t id = u->ref_id, tag = u->tag;
            uint64_t addr = u->ref_addr, len = u->len;
            umsg_free(m, u);
            ref_deliver(m, c, r, id, addr, len, tag);
        } else if (u->complete) {
            size_t n = u->len < r->cap ? (size_t)u->len : r->cap;
            if (n) memcpy(r->buf, u->data, n);
            recv_finish(m, r, u->src_world, u->tag, u->len);
            umsg_free(m, u);
        } else {
            u->claimed = r;
            r->state = REQ_ACTIVE;
            r->attached = u;
        }
        return;
    }
    if (r->peer_world >= 0 && m->failed[r->peer_world]) {
        shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
        return;
    }
    if (r->peer_world < 0) {
        for (int i = 0; i < r->comm->size; i++)
            if (m->failed[r->comm->world_ranks[i]] == 1) {
                shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
                return;
            }
    }
    LIST_APPEND(m->posted_head, m->posted_tail, r);
}

static int payload_advance(shoal__mesh *m, shoal__conn *c, uint64_t n);

/* A message of c->cur.len bytes begins (its header, or its DATA_REF descriptor, is in):
 * decide where the bytes go — a sink, a posted receive, or a new unexpected message.
 * Returns 0, or -1 if the connection was failed. */
static int payload_begin(shoal__mesh *m, shoal__conn *c) {
    c->in_payload = 1;
    c->pay_got = 0;
    if ((c->cur_sink = find_sink(m, c->cur.ctx)) != NULL) {
        c->cur_sink_buf = c->cur_sink->begin(c->cur_sink->user, c->peer, c->cur.tag, c->cur.len);
        return c->cur.len == 0 ? payload_advance(m, c, 0) : 0;
    }
    shoal_request *r = find_posted(m, c->peer, c->cur.ctx, c->cur.tag);
    if (r) {
        LIST_REMOVE(m->posted_head, m->posted_tail, r);
        r->state = REQ_ACTIVE;
        c->cur_req = r;
    } else {
        shoal__umsg *u = calloc(1, sizeof *u);
        uint8_t *data = c->cur.len ? malloc((size_t)c->cur.len) : NULL;
        if (!u || (c->cur.len && !data)) {
            free(u);
            free(data);
            shoal__log(SHOAL__LOG_ERROR, "out of memory buffering %llu bytes from rank %d",
                       (unsigned long long)c->cur.len, c->peer);
            conn_error(m, c, "out of memory");
            return -1;
        }
        u->src_world = c->peer;
        u->ctx = c->cur.ctx;
        u->tag = c->cur.tag;
        u->len = c->cur.len;
        u->data = data;
        LIST_APPEND(m->unexp_head, m->unexp_tail, u);
        c->cur_msg = u;
    }
    return c->cur.len == 0 ? payload_advance(m, c, 0) : 0;
}

static int frame_error(shoal__mesh *m, shoal__conn *c, const char *what) {
    shoal__log(SHOAL__LOG_ERROR, "closing connection to rank %d (%s): %s", c->peer, c->addr, what);
    conn_error(m, c, "malformed frame");
    return -1;
}

/* A frame header (hdr: in the stream, or gathered in c->hdr) has arrived on c. Returns 0, or
 * -1 if the connection was failed. */
static int on_header(shoal__mesh *m, shoal__conn *c, const uint8_t *hdr) {
    char why[160];
    if (shoal__frame_decode(hdr, m->max_message, &c->cur, why, sizeof why) != SHOAL_OK) {
        shoal__log(SHOAL__LOG_ERROR, "closing connection to rank %d (%s): malformed frame: %s",
                   c->peer, c->addr, why);
        conn_error(m, c, "malformed frame");
        return -1;
    }
    switch (c->cur.type) {
    case SHOAL__FRAME_DATA: return payload_begin(m, c);
    case SHOAL__FRAME_DATA_REF:
        /* only where the setup proved we can read the peer, and always a 16-byte descriptor */
        if (!c->shm || !c->ref_rx) return frame_error(m, c, "DATA_REF frame on a connection without single copy");
        if (c->cur.len != sizeof c->ref_desc) return frame_error(m, c, "DATA_REF descriptor is not 16 bytes");
        c->in_ref_desc = 1;
        c->in_payload = 1;
        c->pay_got = 0;
        return 0;
    case SHOAL__FRAME_REF_DONE: {
        shoal_request *r = c->ref_head;
        while (r && r->ref_id != c->cur.aux) r = r->next;
        if (c->cur.len != 0 || !r) return frame_error(m, c, "REF_DONE with payload or for no outstanding DATA_REF");
        LIST_REMOVE(c->ref_head, c->ref_tail, r);
        m->ref_out--;
        shoal__req_complete(m, r, SHOAL_OK);
        release_owned(r);
        return 0;
    }
    case SHOAL__FRAME_REF_PULL:
        if (c->cur.len != 0 || !c->ref_rx) return frame_error(m, c, "REF_PULL with payload or without single copy");
        return ref_pull(m, c, c->cur.aux);
    case SHOAL__FRAME_HEARTBEAT:
    case SHOAL__FRAME_BYE:
        if (c->cur.len != 0) return frame_error(m, c, "control frame with payload");
        if (c->cur.type == SHOAL__FRAME_BYE) c->bye_received = 1;
        return 0;
    default:
        snprintf(why, sizeof why, "frame type %u not allowed here", c->cur.type);
        return frame_error(m, c, why);
    }
}

/* Where the next payload byte goes: NULL means discard (truncated or abandoned receive). */
static uint8_t *payload_dst(shoal__conn *c, uint64_t *room) {
    uint64_t left = c->cur.len - c->pay_got;
    if (c->in_ref_desc) {
        *room = left;
        return c->ref_desc + c->pay_got;
    }
    if (c->cur_sink) {
        *room = left;
        return c->cur_sink_buf ? c->cur_sink_buf + c->pay_got : NULL;
    }
    if (c->cur_msg) {
        *room = left;
        return c->cur_msg->data + c->pay_got;
    }
    if (c->cur_req && c->pay_got < c->cur_req->cap) {
        uint64_t r = c->cur_req->cap - c->pay_got;
        *room = r < left ? r : left;
        return c->cur_req->buf + c->pay_got;
    }
    *room = left;
    return NULL;
}

/* Copies len bytes of DATA_REF `id`, at addr in c's peer, into dst: one copy, shared with the
 * sender where it helps (coop, shm_coop.c). Returns 0, or -1 after failing the connection (the
 * peer died, or named memory it does not have). */
static int ref_read(shoal__mesh *m, shoal__conn *c, uint32_t id, uint64_t addr, uint8_t *dst, uint64_t len,
                    int coop) {
    int err = coop ? shoal__coop_read(m, c, id, addr, dst, len) : shoal__peer_read(c->peer_pid, dst, addr, (size_t)len);
    if (err) {
        char why[160];
        snprintf(why, sizeof why, "cannot read a message in rank %d's memory: %s", c->peer, strerror(err));
        shoal__log(SHOAL__LOG_ERROR, "%s", why);
        conn_error(m, c, why);
        return -1;
    }
    m->activity++;
    return 0;
}

/* Receive r (out of every queue) takes DATA_REF `id` of c's peer, len bytes at addr there:
 * copied into r's buffer (truncated to it), answered with REF_DONE, r completed. Returns 0,
 * or -1 if the connection failed (r then completes with PEER_FAILED). */
static int ref_deliver(shoal__mesh *m, shoal__conn *c, shoal_request *r, uint32_t id, uint64_t addr, uint64_t len,
                       uint32_t tag) {
    if (ref_read(m, c, id, addr, r->buf, len < r->cap ? len : r->cap, 1) < 0) {
        shoal__req_complete(m, r, SHOAL_ERR_PEER_FAILED);
        return -1;
    }
    queue_frame(m, c, SHOAL__FRAME_REF_DONE, id);
    recv_finish(m, r, c->peer, tag, len);
    return c->fd < 0 ? -1 : 0;
}

/* A DATA_REF descriptor is in: the message is addr[0..len) in the peer's memory. A sink or a
 * posted receive gets it now, in one copy; otherwise it waits, uncopied, for its receive
 * (rendezvous, as MPI does for large messages) unless the sender asks for it (REF_PULL). */
static int ref_arrived(shoal__mesh *m, shoal__conn *c) {
    uint64_t addr = shoal__get_u64(c->ref_desc), len = shoal__get_u64(c->ref_desc + 8);
    uint32_t id = c->cur.aux;
    c->in_ref_desc = 0;
    c->in_payload = 0;
    if (len > m->max_message) return frame_error(m, c, "DATA_REF longer than the message limit");
    const shoal__sink *sk = find_sink(m, c->cur.ctx);
    if (sk) {
        uint8_t *buf = sk->begin(sk->user, c->peer, c->cur.tag, len);
        if (buf && ref_read(m, c, id, addr, buf, len, 1) < 0) {
            sk->done(sk->user, c->peer, c->cur.tag, buf, len, SHOAL_ERR_PEER_FAILED);
            return -1;
        }
        sk->done(sk->user, c->peer, c->cur.tag, buf, len, SHOAL_OK);
        queue_frame(m, c, SHOAL__FRAME_REF_DONE, id);
        return c->fd < 0 ? -1 : 0;
    }
    shoal_request *r = find_posted(m, c->peer, c->cur.ctx, c->cur.tag);
    if (r) {
        LIST_REMOVE(m->posted_head, m->posted_tail, r);
        return ref_deliver(m, c, r, id, addr, len, c->cur.tag);
    }
    shoal__umsg *u = calloc(1, sizeof *u);
    if (!u) {
        conn_error(m, c, "out of memory");
        return -1;
    }
    u->src_world = c->peer;
    u->ctx = c->cur.ctx;
    u->tag = c->cur.tag;
    u->len = len;
    u->complete = 1;
    u->ref = 1;
    u->ref_lane = c->lane;
    u->ref_id = id;
    u->ref_addr = addr;
    LIST_APPEND(m->unexp_head, m->unexp_tail, u);
    return 0;
}

/* The sender wants its buffer back (it cancelled the send): take an unmatched DATA_REF into
 * our own memory now. One already matched was read and answered already. */
static int ref_pull(shoal__mesh *m, shoal__conn *c, uint32_t id) {
    for (shoal__umsg *u = m->unexp_head; u; u = u->next) {
        if (!u->ref || u->src_world != c->peer || u->ref_lane != c->lane || u->ref_id != id) continue;
        uint8_t *data = u->len ? malloc((size_t)u->len) : NULL;
        if (u->len && !data) {
            conn_error(m, c, "out of memory");
            return -1;
        }
        /* not shared: the sender asked because it is not waiting (it cancelled) */
        if (ref_read(m, c, id, u->ref_addr, data, u->len, 0) < 0) {
            free(data);
            return -1;
        }
        u->data = data;
        u->got = u->len;
        u->ref = 0;
        queue_frame(m, c, SHOAL__FRAME_REF_DONE, id);
        return c->fd < 0 ? -1 : 0;
    }
    return 0;
}

/* n more payload bytes are in place. Returns 0, or -1 if the connection was failed. */
static int payload_advance(shoal__mesh *m, shoal__conn *c, uint64_t n) {
    c->pay_got += n;
    if (c->cur_msg) c->cur_msg->got = c->pay_got;
    if (c->pay_got < c->cur.len) return 0;
    c->in_payload = 0;
    if (c->in_ref_desc) return ref_arrived(m, c);
    if (c->cur_sink) {
        const shoal__sink *sk = c->cur_sink;
        uint8_t *buf = c->cur_sink_buf;
        c->cur_sink = NULL;
        c->cur_sink_buf = NULL;
        sk->done(sk->user, c->peer, c->cur.tag, buf, c->cur.len, SHOAL_OK);
        return 0;
    }
    if (c->cur_req) recv_finish(m, c->cur_req, c->peer, c->cur.tag, c->cur.len);
    else if (c->cur_msg) umsg_complete(m, c->cur_msg);
    c->cur_req = NULL;
    c->cur_msg = NULL;
    return 0;
}

/* Feeds len bytes of the stream (frame headers and payloads, in order) through the frame
 * state machine; payload bytes are copied once, to where they belong. Returns 0, or -1 if the
 * connection failed (then buf may be gone: a ring is unmapped with its connection). */
static int parse_bytes(shoal__mesh *m, shoal__conn *c, const uint8_t *buf, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        size_t avail = len - pos;
        if (!c->in_payload) {
            if (c->hdr_got == 0 && avail >= SHOAL__FRAME_HDR_SIZE) { /* whole: decoded where it lies */
                pos += SHOAL__FRAME_HDR_SIZE;
                if (on_header(m, c, buf + pos - SHOAL__FRAME_HDR_SIZE) < 0) return -1;
                continue;
            }
            size_t need = SHOAL__FRAME_HDR_SIZE - c->hdr_got;
            size_t n = avail < need ? avail : need;
            memcpy(c->hdr + c->hdr_got, buf + pos, n);
            c->hdr_got += n;
            pos += n;
            if (c->hdr_got < SHOAL__FRAME_HDR_SIZE) return 0;
            c->hdr_got = 0;
            if (on_header(m, c, c->hdr) < 0) return -1;
            continue;
        }
        uint64_t room;
        uint8_t *dst = payload_dst(c, &room);
        uint64_t n = avail < room ? avail : room;
        if (dst) memcpy(dst, buf + pos, (size_t)n);
        pos += (size_t)n;
        if (payload_advance(m, c, n) < 0) return -1;
    }
    return 0;
}

/* Consumes the staging buffer. Returns -1 if the connection failed. */
static int parse_staged(shoal__mesh *m, shoal__conn *c) {
    int rc = parse_bytes(m, c, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rpos = c->rlen = 0;
    return rc;
}

/* The common case of a small message, taken past the byte-stream state machine: a whole DATA
 * frame lies in view (p, n) at a frame boundary and a posted receive wants it (no sink). The
 * state machine does the same in more steps (measured, 8 B-1 KiB ping-pong: 2-12% slower
 * without this). Returns the bytes it took, or 0 to leave the frame to parse_bytes (which also
 * reports a malformed header). */
static size_t take_whole_frame(shoal__mesh *m, shoal__conn *c, const uint8_t *p, size_t n) {
    shoal__frame_hdr h;
    if (c->in_payload || c->hdr_got || n < SHOAL__FRAME_HDR_SIZE || p[0] != SHOAL__FRAME_DATA ||
        shoal__frame_decode(p, m->max_message, &h, NULL, 0) != SHOAL_OK || h.len > n - SHOAL__FRAME_HDR_SIZE ||
        find_sink(m, h.ctx))
        return 0;
    shoal_request *r = find_posted(m, c->peer, h.ctx, h.tag);
    if (!r) return 0;
    LIST_REMOVE(m->posted_head, m->posted_tail, r);
    size_t copy = h.len < r->cap ? (size_t)h.len : r->cap;
    if (copy) memcpy(r->buf, p + SHOAL__FRAME_HDR_SIZE, copy);
    recv_finish(m, r, c->peer, h.tag, h.len);
    return SHOAL__FRAME_HDR_SIZE + (size_t)h.len;
}

/* A shared-memory connection: frames are parsed where they lie in the ring, so a payload is
 * copied once, from the ring to its destination, whatever its size. */
static void shm_read(shoal__mesh *m, shoal__conn *c) {
    size_t budget = READ_BUDGET;
    while (c->fd >= 0 && c->shm && budget > 0) {
        const uint8_t *p;
        size_t n = shoal__ring_peek(&c->rx, &p);
        if (n == 0) return;
        if (n > budget) n = budget;
        m->last_rx[c->peer] = shoal__now_coarse(); /* any byte proves the peer alive */
        m->activity++;
        size_t whole = take_whole_frame(m, c, p, n);
        if (whole) n = whole;
        else if (parse_bytes(m, c, p, n) < 0 || c->fd < 0 || !c->shm) return; /* failed: the ring may be gone */
        shoal__ring_consume(&c->rx, n);
        if (shoal__ring_take_space_wakeup(&c->rx)) shoal__shm_doorbell(m, c->peer);
        budget -= n;
    }
}

static void conn_read(shoal__mesh *m, shoal__conn *c) {
    if (c->shm) {
        shm_read(m, c);
        return;
    }
    size_t budget = READ_BUDGET;
    while (c->fd >= 0 && budget > 0) {
        uint8_t *dst;
        size_t want;
        uint64_t room = 0;
        uint8_t *pd = c->in_payload ? payload_dst(c, &room) : NULL;
        int direct = pd && room >= SHOAL__RBUF; /* big payload: straight into place, no copy */
        if (direct) {
            dst = pd;
            want = room < DIRECT_READ_MAX ? (size_t)room : DIRECT_READ_MAX;
        } else {
            dst = c->rbuf;
            want = SHOAL__RBUF;
        }
        ssize_t n = read(c->fd, dst, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_error(m, c, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_error(m, c, c->bye_received ? "closed" : "connection closed by peer");
            return;
        }
        m->last_rx[c->peer] = shoal__now_coarse(); /* any byte proves the peer alive */
        m->activity++;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (direct) {
            if (payload_advance(m, c, (uint64_t)n) < 0) return;
        } else {
            c->rpos = 0;
            c->rlen = (size_t)n;
            if (parse_staged(m, c) < 0) return;
        }
        /* A short read almost always means the socket is drained: skip the EAGAIN read. */
        if ((size_t)n < want) return;
    }
}

/* ---- cancellation ------------------------------------------------------------------------ */

/* Takes a partly written send out of the user's hands: the rest of its bytes must still go out
 * or the stream to that peer would be corrupt for every other group sharing it. */
static int orphan_send(shoal__mesh *m, shoal__conn *c, shoal_request *r) {
    size_t done = r->sent > SHOAL__FRAME_HDR_SIZE ? r->sent - SHOAL__FRAME_HDR_SIZE : 0;
    shoal_request *o = calloc(1, sizeof *o + r->cap);
    if (!o) return -1;
    *o = *r;
    o->buf = (uint8_t *)(o + 1);
    memcpy(o->buf + done, r->buf + done, r->cap - done);
    o->internal = 2;
    o->next = o->prev = NULL;
    /* put o where r was */
    o->prev = r->prev;
    o->next = r->next;
    if (r->prev) r->prev->next = o;
    else c->sq_head = o;
    if (r->next) r->next->prev = o;
    else c->sq_tail = o;
    r->next = r->prev = NULL;
    return 0;
}

/* A DATA_REF send that is (partly) on the wire cannot be taken back: the peer may be copying
 * from its buffer at any moment. Ask it to copy the message now (REF_PULL: it is delivered,
 * as any partly sent message is) and drive progress until it says REF_DONE or is declared
 * failed; one that does neither for this long is declared failed, so the buffer can go back. */
static void ref_wait_released(shoal__mesh *m, shoal_request *r) {
    double limit = m->hb_timeout > 5 ? m->hb_timeout : 5;
    if (!r->ref_pulled) { /* behind the DATA_REF itself on the lane, so it arrives after */
        r->ref_pulled = 1;
        queue_frame(m, conn_of(m, r->peer_world, r->lane), SHOAL__FRAME_REF_PULL, r->ref_id);
    }
    if (shoal__engine_wait(m, r, shoal__now() + limit, NULL, NULL) == SHOAL_OK) return;
    shoal__conn *c = conn_of(m, r->peer_world, r->lane);
    if (c->fd >= 0) conn_error(m, c, "it did not take a shared-memory message in time");
}

static int ref_in_flight(const shoal_request *r) { return r->kind == REQ_SEND && r->ref && r->sent > 0; }

/* The first DATA_REF send of comm c that the peer may be reading, or NULL. */
static shoal_request *find_ref_in_flight(shoal__mesh *m, const shoal_comm *c) {
    for (int i = 0; i < m->size * 2; i++) {
        for (shoal_request *r = m->conns[i].ref_head; r; r = r->next)
            if (r->comm == c) return r;
        for (shoal_request *r = m->conns[i].sq_head; r; r = r->next)
            if (r->comm == c && ref_in_flight(r)) return r;
    }
    return NULL;
}

void shoal__engine_cancel(shoal__mesh *m, shoal_request *r, int status) {
    if (r->state == REQ_DONE) return;
    if (ref_in_flight(r)) {
        ref_wait_released(m, r); /* it completes as sent (or as failed): nothing to cancel */
        return;
    }
    if (r->kind == REQ_SEND) {
        shoal__conn *c = conn_of(m, r->peer_world, r->lane);
        if (r->sent > 0 && r->sent < SHOAL__FRAME_HDR_SIZE + r->cap) {
            if (orphan_send(m, c, r) < 0) {
                conn_error(m, c, "out of memory while cancelling a send");
                return;
            }
        } else {
            LIST_REMOVE(c->sq_head, c->sq_tail, r);
        }
        update_events(m, c);
    } else if (r->kind == REQ_RECV) {
        if (r->attached) {
            r->attached->claimed = NULL; /* the message stays for a later receive */
            r->attached = NULL;
        } else if (r->state == REQ_ACTIVE) {
            for (int i = 0; i < m->size * 2; i++)
                if (m->conns[i].cur_req == r) m->conns[i].cur_req = NULL; /* rest is discarded */
        } else {
            LIST_REMOVE(m->posted_head, m->posted_tail, r);
        }
    }
    shoal__req_complete(m, r, status);
}

void shoal__engine_fail_comm(shoal__mesh *m, shoal_comm *c, int status) {
    /* first the sends a peer may be reading: waiting for them drives progress, which changes
     * the queues, so look again from the start after each */
    for (shoal_request *r; (r = find_ref_in_flight(m, c)) != NULL;) ref_wait_released(m, r);
    for (int i = 0; i < m->size * 2; i++) {
        shoal__conn *cn = &m->conns[i];
        shoal_request *r = cn->sq_head;
        while (r) {
            shoal_request *next = r->next;
            if (r->comm == c) shoal__engine_cancel(m, r, status);
            r = next;
        }
        if (cn->cur_req && cn->cur_req->comm == c) shoal__engine_cancel(m, cn->cur_req, status);
    }
    shoal_request *r = m->posted_head;
    while (r) {
        shoal_request *next = r->next;
        if (r->comm == c) shoal__engine_cancel(m, r, status);
        r = next;
    }
    for (shoal__umsg *u = m->unexp_head; u; u = u->next)
        if (u->claimed && u->claimed->comm == c) shoal__engine_cancel(m, u->claimed, status);
}

/* ---- the poll loop ----------------------------------------------------------------------- */

static void drain_doorbell(shoal__mesh *m, shoal__conn *c);

static void handle_events(shoal__mesh *m, struct epoll_event *evs, int n) {
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == KICK_ID) {
            uint64_t v;
            ssize_t r = read(m->kickfd, &v, sizeof v);
            (void)r;
            continue;
        }
        shoal__conn *c = &m->conns[evs[i].data.u64];
        if (c->fd < 0) continue; /* closed by an earlier event in this batch */
        if (c->shm) { /* the socket only rings the bell or reports the peer's death */
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) drain_doorbell(m, c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(m, c);
        if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) conn_flush(m, c);
    }
}

/* Reads and discards doorbell bytes; EOF means the peer is gone. */
static void drain_doorbell(shoal__mesh *m, shoal__conn *c) {
    uint8_t junk[256];
    for (;;) {
        ssize_t n = read(c->fd, junk, sizeof junk);
        if (n > 0) {
            m->last_rx[c->peer] = shoal__now();
            if ((size_t)n < sizeof junk) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        /* The peer is gone, but what it wrote before going (its BYE, say) is still in the
         * rings: take that first, so an orderly goodbye reads as one. */
        int err = errno;
        shoal__conn *l0 = conn_of(m, c->peer, 0), *l1 = conn_of(m, c->peer, 1);
        if (l0->shm) conn_read(m, l0);
        if (l1->shm) conn_read(m, l1);
        if (c->fd >= 0) conn_error(m, c, n == 0 ? "connection closed by peer" : strerror(err));
        return;
    }
}

/* One pass over the shared-memory connections: take what arrived, push what is queued.
 * Returns 1 if anything moved. */
static int shm_progress(shoal__mesh *m) {
    int moved = 0;
    for (int i = 0; i < m->size * 2; i++) {
        shoal__conn *c = &m->conns[i];
        if (!c->shm || c->fd < 0) continue;
        if (shoal__ring_avail(&c->rx)) {
            conn_read(m, c);
            moved = 1;
        }
        if (c->fd >= 0 && c->sq_head) {
            shoal_request *head = c->sq_head;
            size_t sent = head->sent;
            conn_flush(m, c);
            moved |= c->sq_head != head || (c->sq_head && c->sq_head->sent != sent);
        }
    }
    return moved;
}

/* Before sleeping: asks every shared-memory peer to ring the bell when it writes to us (or
 * frees space we wait for). Returns 0 (and disarms) if something is already there. */
static int shm_arm(shoal__mesh *m) {
    int ok = 1;
    for (int i = 0; i < m->size * 2 && ok; i++) {
        shoal__conn *c = &m->conns[i];
        if (!c->shm || c->fd < 0) continue;
        if (!shoal__ring_arm_sleep(&c->rx)) ok = 0;
        else if (c->sq_head && !shoal__ring_arm_space(&c->tx)) ok = 0;
    }
    if (!ok)
        for (int i = 0; i < m->size * 2; i++)
            if (m->conns[i].shm && m->conns[i].fd >= 0) shoal__ring_disarm_sleep(&m->conns[i].rx);
    return ok;
}

static void shm_disarm(shoal__mesh *m) {
    for (int i = 0; i < m->size * 2; i++)
        if (m->conns[i].shm && m->conns[i].fd >= 0) shoal__ring_disarm_sleep(&m->conns[i].rx);
}

/* A DATA_REF waits for its receive (rendezvous). Code written for the eager behaviour of the
 * other paths (both sides send before they receive, say) must not hang on it, so a send
 * that has waited this long asks the peer to take the message into its own memory now. */
#define REF_PULL_AFTER_S 200e-6

static void ref_nudge(shoal__mesh *m) {
    double now = shoal__now();
    int conn[16], n = 0;
    uint32_t ids[16];
    for (int i = 0; i < m->size * 2 && n < 16; i++)
        for (shoal_request *r = m->conns[i].ref_head; r && n < 16; r = r->next)
            if (!r->ref_pulled && now - r->ref_since > REF_PULL_AFTER_S) {
                r->ref_pulled = 1;
                conn[n] = i;
                ids[n++] = r->ref_id;
            }
    /* queued after the walk: queueing writes, and a failed write changes these lists */
    for (int k = 0; k < n; k++)
        if (m->conns[conn[k]].fd >= 0) queue_frame(m, &m->conns[conn[k]], SHOAL__FRAME_REF_PULL, ids[k]);
}

void shoal__engine_poll_once(shoal__mesh *m, int timeout_ms) {
    struct epoll_event evs[MAX_EVENTS];
    int armed = 0;
    if (m->ref_out) {
        shoal__coop_help(m); /* a receiver copying one of ours may take our help */
        ref_nudge(m);
        if (timeout_ms > 1) timeout_ms = 1; /* come back for the nudge: the peer may be idle */
    }
    if (m->nshm) {
        if (shm_progress(m)) timeout_ms = 0;
        if (timeout_ms == 0) {
            /* spinning on memory: the sockets only matter now and then (doorbells, deaths,
             * TCP peers of a mixed group) */
            if (m->all_shm && (++m->spins & 63) != 0) return;
            if (!m->all_shm && (++m->spins & 7) != 0) return;
        } else {
            armed = shm_arm(m);
            if (!armed) timeout_ms = 0;
        }
    }
    m->in_epoll = timeout_ms != 0;
    pthread_mutex_unlock(&m->mu);
    int n = epoll_wait(m->epfd, evs, MAX_EVENTS, timeout_ms);
    pthread_mutex_lock(&m->mu);
    m->in_epoll = 0;
    if (armed) shm_disarm(m);
    if (n > 0) handle_events(m, evs, n);
    if (m->nshm) shm_progress(m);
}

void shoal__engine_poll_nowait(shoal__mesh *m) {
    if (m->progressing) return;
    m->progressing = 1;
    shoal__engine_poll_once(m, 0);
    m->progressing = 0;
    if (m->token_waiters) pthread_cond_broadcast(&m->cv);
}

#define YIELD_AFTER_S 5e-6
#define REF_SPIN_MAX_S 2e-3

int shoal__engine_wait(shoal__mesh *m, shoal_request *r, double deadline,
                       int (*stop_check)(void *arg), void *arg) {
    if (r->state == REQ_DONE) return SHOAL_OK; /* a send written inline: nothing to wait for */
    double t0 = shoal__now();
    double spin_until = m->spin_us > 0 ? t0 + m->spin_us * 1e-6 : 0;
    m->last_user_wait = t0;
    /* The monitor thread may be sitting in epoll_wait with the token: ask it to hand over. */
    if (m->in_epoll && r->state != REQ_DONE) shoal__mesh_kick(m);
    double now = t0;
    for (unsigned round = 0; r->state != REQ_DONE; round++) {
        if (stop_check) {
            int st = stop_check(arg);
            if (st != SHOAL_OK) return st;
        }
        /* while spinning, read the clock every few rounds only: it costs as much as a poll
         * (round 0 has t0, just read) */
        if (round > 0 && ((round & 7) == 0 || now >= spin_until)) now = shoal__now();
        if (now >= deadline) return SHOAL_ERR_TIMEOUT;
        if (!m->progressing) {
            m->progressing = 1;
            /* Spin briefly (a reply often comes within microseconds), then block. Traffic
             * restarts the spin: a thread serving a stream of messages stays awake. */
            /* A peer copying one of our DATA_REF messages answers when it is done: a sleep now
             * would add a wake-up to every large message, so spin on for a while. */
            int spin = now < spin_until || (m->ref_out && now - t0 < REF_SPIN_MAX_S);
            int ms = spin ? 0 : shoal__ms_until(deadline, 100);
            uint64_t before = m->activity;
            shoal__engine_poll_once(m, ms);
            if (m->activity != before && m->spin_us > 0 && r->state != REQ_DONE)
                spin_until = (now = shoal__now()) + m->spin_us * 1e-6;
            /* The peer we wait for may need this core: always when ranks outnumber cores, and
             * once a spin has lasted a few microseconds (a reply on an idle machine comes
             * sooner; on a busy one the peer may be queued behind us on this very core). */
            if (ms == 0 && (m->oversubscribed || now - t0 > YIELD_AFTER_S)) {
                m->progressing = 0;
                pthread_mutex_unlock(&m->mu);
                sched_yield();
                pthread_mutex_lock(&m->mu);
                m->progressing = 1;
            }
            m->progressing = 0;
            if (m->token_waiters) pthread_cond_broadcast(&m->cv);
        } else {
            double until = now + 0.05;
            if (until > deadline) until = deadline;
            struct timespec ts; /* mesh->cv uses CLOCK_MONOTONIC (see mesh.c) */
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double rel = until - now;
            ts.tv_sec += (time_t)rel;
            ts.tv_nsec += (long)((rel - (double)(time_t)rel) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            m->token_waiters++;
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            m->token_waiters--;
        }
    }
    return SHOAL_OK;
}

/* ---- setup and orderly close ------------------------------------------------------------- */

int shoal__mesh_engine_init(shoal__mesh *m) {
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    m->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->epfd < 0 || m->kickfd < 0) return SHOAL_ERR_SYSTEM;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KICK_ID};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->kickfd, &ev) < 0) return SHOAL_ERR_SYSTEM;
    for (int i = 0; i < m->size * 2; i++) {
        shoal__conn *c = &m->conns[i];
        if (c->fd < 0) continue;
        if (shoal__set_nonblock(c->fd, 1) != SHOAL_OK) return SHOAL_ERR_SYSTEM;
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) return SHOAL_ERR_SYSTEM;
    }
    return SHOAL_OK;
}

void shoal__engine_goodbye(shoal__mesh *m, double deadline) {
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->size * 2; i++) {
        shoal__conn *c = &m->conns[i];
        if (c->fd < 0) continue;
        /* BYE goes behind whatever is queued, on whichever transport the lane uses. */
        queue_frame(m, c, SHOAL__FRAME_BYE, 0);
    }
    for (;;) { /* flush every queue */
        int pending = 0;
        for (int i = 0; i < m->size * 2; i++) {
            shoal__conn *c = &m->conns[i];
            if (c->fd >= 0 && c->sq_head) conn_flush(m, c);
            pending += c->fd >= 0 && c->sq_head;
        }
        if (!pending || shoal__now() >= deadline) break;
        m->progressing = 1;
        shoal__engine_poll_once(m, 10);
        m->progressing = 0;
    }
    /* Drain until every peer has said BYE and closed (EOF), so no data of theirs is cut off
     * by a reset when we close first. */
    for (;;) {
        int open = 0;
        for (int i = 0; i < m->size * 2; i++) open += m->conns[i].fd >= 0;
        if (!open || shoal__now() >= deadline) break;
        m->progressing = 1;
        shoal__engine_poll_once(m, shoal__ms_until(deadline, 50));
        m->progressing = 0;
        for (int i = 0; i < m->size * 2; i++) {
            shoal__conn *c = &m->conns[i];
            if (c->fd >= 0 && c->bye_received && !c->in_payload) {
                /* Peer finished: half-close so its read sees EOF, keep reading until EOF. */
                shutdown(c->fd, SHUT_WR);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void shoal__mesh_engine_close(shoal__mesh *m) {
    for (int i = 0; m->conns && i < m->size * 2; i++) {
        shoal__conn *c = &m->conns[i];
        close_conn(m, c);
        while (c->sq_head) { /* only engine-owned sends can be left by now */
            shoal_request *r = c->sq_head;
            LIST_REMOVE(c->sq_head, c->sq_tail, r);
            release_owned(r);
        }
        while (c->ref_head) {
            shoal_request *r = c->ref_head;
            LIST_REMOVE(c->ref_head, c->ref_tail, r);
            m->ref_out--;
            release_owned(r);
        }
    }
    while (m->unexp_head) umsg_free(m, m->unexp_head);
    if (m->epfd >= 0) close(m->epfd);
    if (m->kickfd >= 0) close(m->kickfd);
    m->epfd = m->kickfd = -1;
}

/* ---- sinks and engine-owned control frames ------------------------------------------------ */

int shoal__engine_add_sink(shoal__mesh *m, const shoal__sink *s) {
    if (m->nsinks >= SHOAL__MAX_SINKS) return SHOAL_ERR_INVALID;
    for (int i = 0; i < m->nsinks; i++)
        if (m->sinks[i].ctx == s->ctx) return SHOAL_ERR_INVALID;
    m->sinks[m->nsinks++] = *s;
    return SHOAL_OK;
}

void shoal__engine_remove_sink(shoal__mesh *m, uint32_t ctx) {
    for (int i = 0; i < m->nsinks; i++) {
        if (m->sinks[i].ctx != ctx) continue;
        /* a frame still arriving into this sink is discarded from here on */
        for (int k = 0; k < m->size * 2; k++)
            if (m->conns[k].cur_sink == &m->sinks[i]) {
                m->conns[k].cur_sink->done(m->conns[k].cur_sink->user, m->conns[k].peer,
                                           m->conns[k].cur.tag, m->conns[k].cur_sink_buf,
                                           m->conns[k].cur.len, SHOAL_ERR_CANCELLED);
                m->conns[k].cur_sink = NULL;
                m->conns[k].cur_sink_buf = NULL;
                m->conns[k].cur_req = NULL; /* rest of the payload is discarded */
            }
        /* keep the table dense; connections point into it, so fix those pointers up */
        int last = m->nsinks - 1;
        if (i != last) {
            for (int k = 0; k < m->size * 2; k++)
                if (m->conns[k].cur_sink == &m->sinks[last]) m->conns[k].cur_sink = &m->sinks[i];
            m->sinks[i] = m->sinks[last];
        }
        m->nsinks--;
        return;
    }
}

void shoal__engine_send_control(shoal__mesh *m, int peer, int lane, uint8_t type) {
    shoal__conn *c = conn_of(m, peer, lane);
    if (c->fd < 0 || c->sq_head) return;
    queue_frame(m, c, type, 0);
}

/* Queues an engine-owned frame with no payload on c (a missed one is harmless: heartbeats
 * retry, and a BYE that cannot be queued only makes the goodbye wait for EOF). */
static void queue_frame(shoal__mesh *m, shoal__conn *c, uint8_t type, uint32_t aux) {
    int peer = c->peer, lane = c->lane;
    shoal_request *r = calloc(1, sizeof *r);
    if (!r) return;
    r->tag = aux; /* control frames carry aux where DATA carries the tag: see post_send */
    r->kind = REQ_SEND;
    r->mesh = m;
    r->lane = lane;
    r->peer = peer;
    r->peer_world = peer;
    r->frame_type = type;
    r->owned = 1;
    shoal__engine_post_send(m, r);
}
