/* The rendezvous store's client: a blocking socket and one request/reply at a time under a
 * mutex. Each reply's tag must echo its request's; any failure mid-exchange (timeout, short
 * read, bad reply) marks the connection broken, because a late reply could otherwise be taken
 * for the answer to the next request. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/store_proto.h"

/* How much longer than its own timeout a GET waits for the server's TIMEOUT reply, so the
 * usual outcome of a GET timeout is a clean reply that keeps the connection usable. */
#define GET_REPLY_SLACK_S 2.0
#define BYE_TIMEOUT_S 0.2
/* Replies larger than this are refused (the server caps values; this bounds our allocation
 * against a confused server). Overridden by the max_message setting when that is larger. */
#define DEFAULT_MAX_REPLY (64ull << 20)

struct shoal__store_client {
    int fd;
    int broken;
    uint32_t next_tag;
    uint64_t max_reply;
    pthread_mutex_t mu;
};

typedef struct reply_t {
    int32_t status;
    uint8_t *payload; /* malloc'd frame payload; value points into it */
    const uint8_t *value;
    uint64_t value_len;
} reply_t;

int shoal__store_connect(const char *host, uint16_t port, const shoal__auth *auth, uint32_t rank,
                         uint32_t world_size, double deadline, shoal__store_client **out,
                         char *err, size_t errcap) {
    if (!host || !auth || !out || (auth->key_len && !auth->key)) {
        shoal__errf(err, errcap, "store connect: bad arguments");
        return SHOAL_ERR_INVALID;
    }
    shoal__store_client *c = calloc(1, sizeof *c);
    if (!c) {
        shoal__errf(err, errcap, "store connect: out of memory");
        return SHOAL_ERR_NOMEM;
    }
    c->fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    uint64_t mm = 0;
    c->max_reply = DEFAULT_MAX_REPLY;
    if (shoal__setting_bytes("max_message", &mm, NULL, 0) == SHOAL_OK && mm > c->max_reply)
        c->max_reply = mm;

    char cerr[256] = "";
    int rc = shoal__tcp_connect(host, port, deadline, &c->fd, cerr, sizeof cerr);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "store at %s port %u: %s", host, (unsigned)port, cerr);
        goto fail;
    }
    shoal__hello self, peer;
    memset(&self, 0, sizeof self);
    self.version = SHOAL__PROTOCOL_VERSION;
    self.kind = SHOAL__CONN_STORE;
    self.rank = rank;
    self.world_size = world_size;
    self.lane = 0;
    rc = shoal__handshake_connect(c->fd, auth, &self, &peer, deadline, cerr, sizeof cerr);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "store at %s port %u: %s", host, (unsigned)port, cerr);
        goto fail;
    }
    *out = c;
    return SHOAL_OK;
fail:
    if (c->fd >= 0) close(c->fd);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc;
}

void shoal__store_close(shoal__store_client *c) {
    if (!c) return;
    if (!c->broken) {
        /* Say goodbye so the server logs an orderly close, not a dropped peer. Best effort. */
        uint8_t b[SHOAL__FRAME_HDR_SIZE];
        shoal__frame_hdr h = {.type = SHOAL__FRAME_BYE};
        shoal__frame_encode(&h, b);
        (void)shoal__write_full(c->fd, b, sizeof b, shoal__deadline_in(BYE_TIMEOUT_S));
    }
    close(c->fd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int shoal__store_local_host(shoal__store_client *c, char *host, size_t cap) {
    if (!c || !host) return SHOAL_ERR_INVALID;
    return shoal__sock_local_host(c->fd, host, cap);
}

/* ---- one exchange -------------------------------------------------------------------------- */

static const char *op_name(uint8_t op) {
    switch (op) {
    case SHOAL__STORE_SET: return "set";
    case SHOAL__STORE_GET: return "get";
    case SHOAL__STORE_ADD: return "add";
    case SHOAL__STORE_CHECK: return "check";
    case SHOAL__STORE_DELETE: return "delete";
    default: return "?";
    }
}

static int io_error(shoal__store_client *c, int rc, const shoal__store_req *r, const char *step,
                    char *err, size_t errcap) {
    c->broken = 1;
    shoal__errf(err, errcap, "store %s '%.*s': %s %s%s", op_name(r->op), (int)r->key_len,
                (const char *)r->key, shoal_status_str(rc), step,
                rc == SHOAL_ERR_PEER_FAILED ? " (the server closed the connection)" : "");
    return rc;
}

static int send_request(shoal__store_client *c, const shoal__store_req *r, uint32_t tag,
                        double deadline, char *err, size_t errcap) {
    uint64_t plen = shoal__store_req_size(r->key_len, r->value_len);
    if (plen == 0 || plen > SIZE_MAX - SHOAL__FRAME_HDR_SIZE) {
        shoal__errf(err, errcap, "store %s: value too large", op_name(r->op));
        return SHOAL_ERR_INVALID;
    }
    size_t total = SHOAL__FRAME_HDR_SIZE + (size_t)plen;
    uint8_t *buf = malloc(total);
    if (!buf) {
        shoal__errf(err, errcap, "store %s: out of memory", op_name(r->op));
        return SHOAL_ERR_NOMEM;
    }
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REQ, .tag = tag, .len = plen};
    shoal__frame_encode(&h, buf);
    shoal__store_req_encode(r, buf + SHOAL__FRAME_HDR_SIZE);
    int rc = shoal__write_full(c->fd, buf, total, deadline);
    free(buf);
    if (rc != SHOAL_OK) return io_error(c, rc, r, "sending the request", err, errcap);
    return SHOAL_OK;
}

static int recv_reply(shoal__store_client *c, const shoal__store_req *r, uint32_t tag,
                      double deadline, reply_t *rep, char *err, size_t errcap) {
    uint8_t hb[SHOAL__FRAME_HDR_SIZE];
    char perr[200];
    int rc = shoal__read_full(c->fd, hb, sizeof hb, deadline);
    if (rc != SHOAL_OK) return io_error(c, rc, r, "waiting for the reply", err, errcap);
    shoal__frame_hdr h;
    rc = shoal__frame_decode(hb, SHOAL__STORE_REP_HDR + c->max_reply, &h, perr, sizeof perr);
    if (rc == SHOAL_OK && (h.type != SHOAL__FRAME_STORE_REP || h.tag != tag)) {
        shoal__errf(perr, sizeof perr, "reply frame type %u tag %u, expected type %u tag %u",
                    (unsigned)h.type, (unsigned)h.tag, (unsigned)SHOAL__FRAME_STORE_REP,
                    (unsigned)tag);
        rc = SHOAL_ERR_PROTOCOL;
    }
    if (rc != SHOAL_OK) {
        c->broken = 1;
        shoal__errf(err, errcap, "store %s: bad reply from the server: %s", op_name(r->op), perr);
        return rc;
    }
    rep->payload = malloc(h.len ? (size_t)h.len : 1);
    if (!rep->payload) {
        c->broken = 1; /* the unread reply is still in the socket */
        shoal__errf(err, errcap, "store %s: out of memory for a %llu-byte reply", op_name(r->op),
                    (unsigned long long)h.len);
        return SHOAL_ERR_NOMEM;
    }
    rc = shoal__read_full(c->fd, rep->payload, (size_t)h.len, deadline);
    if (rc != SHOAL_OK) return io_error(c, rc, r, "reading the reply", err, errcap);
    rc = shoal__store_rep_decode(rep->payload, h.len, &rep->status, &rep->value,
                                 &rep->value_len, perr, sizeof perr);
    if (rc != SHOAL_OK) {
        c->broken = 1;
        shoal__errf(err, errcap, "store %s: bad reply from the server: %s", op_name(r->op), perr);
        return rc;
    }
    return SHOAL_OK;
}

/* Sends r and reads its reply by reply_deadline. On SHOAL_OK, rep->payload is the caller's to
 * free; rep->status is the server's answer. */
static int exchange(shoal__store_client *c, const shoal__store_req *r, double deadline,
                    double reply_deadline, reply_t *rep, char *err, size_t errcap) {
    memset(rep, 0, sizeof *rep);
    if (!c) {
        shoal__errf(err, errcap, "store: no client");
        return SHOAL_ERR_INVALID;
    }
    pthread_mutex_lock(&c->mu);
    int rc;
    if (c->broken) {
        shoal__errf(err, errcap, "store %s: the connection broke in an earlier call",
                    op_name(r->op));
        rc = SHOAL_ERR_PEER_FAILED;
        goto out;
    }
    uint32_t tag = c->next_tag++;
    rc = send_request(c, r, tag, deadline, err, errcap);
    if (rc == SHOAL_OK) rc = recv_reply(c, r, tag, reply_deadline, rep, err, errcap);
out:
    pthread_mutex_unlock(&c->mu);
    if (rc != SHOAL_OK) {
        free(rep->payload);
        rep->payload = NULL;
    }
    return rc;
}

static int key_req(shoal__store_req *r, uint8_t op, const char *key, char *err, size_t errcap) {
    memset(r, 0, sizeof *r);
    r->op = op;
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > SHOAL__STORE_KEY_MAX) {
        shoal__errf(err, errcap, "store %s: key length %zu is outside 1..%d", op_name(op), n,
                    SHOAL__STORE_KEY_MAX);
        return SHOAL_ERR_INVALID;
    }
    r->key = (const uint8_t *)key;
    r->key_len = (uint32_t)n;
    return SHOAL_OK;
}

/* Text for an error status the server sent back (the connection stays usable). */
static int server_error(const shoal__store_req *r, int32_t status, char *err, size_t errcap) {
    const char *why = "";
    if (status == SHOAL_ERR_TIMEOUT) why = ": the key was not set in time";
    else if (status == SHOAL_ERR_INVALID && r->op == SHOAL__STORE_SET)
        why = ": the value is larger than the server accepts";
    else if (status == SHOAL_ERR_INVALID && r->op == SHOAL__STORE_ADD)
        why = ": the key holds a value that is not an 8-byte counter";
    shoal__errf(err, errcap, "store %s '%.*s': %s%s", op_name(r->op), (int)r->key_len,
                (const char *)r->key, shoal_status_str(status), why);
    return status;
}

/* ---- the calls ----------------------------------------------------------------------------- */

int shoal__store_set(shoal__store_client *c, const char *key, const void *value, size_t len,
                     double deadline, char *err, size_t errcap) {
    shoal__store_req r;
    reply_t rep;
    int rc = key_req(&r, SHOAL__STORE_SET, key, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (len && !value) {
        shoal__errf(err, errcap, "store set: NULL value");
        return SHOAL_ERR_INVALID;
    }
    r.value = value;
    r.value_len = len;
    rc = exchange(c, &r, deadline, deadline, &rep, err, errcap);
    if (rc != SHOAL_OK) return rc;
    rc = rep.status == SHOAL_OK ? SHOAL_OK : server_error(&r, rep.status, err, errcap);
    free(rep.payload);
    return rc;
}

/* GET's arg: the time left in ms, rounded up, or "forever". */
static uint64_t get_wait_ms(double deadline) {
    if (deadline >= SHOAL__FOREVER) return SHOAL__STORE_WAIT_FOREVER;
    double left = deadline - shoal__now();
    if (left <= 0) return 0;
    double ms = left * 1000.0 + 0.999;
    return ms >= 1e15 ? SHOAL__STORE_WAIT_FOREVER - 1 : (uint64_t)ms;
}

int shoal__store_get(shoal__store_client *c, const char *key, void **value, size_t *len,
                     double deadline, char *err, size_t errcap) {
    shoal__store_req r;
    reply_t rep;
    int rc = key_req(&r, SHOAL__STORE_GET, key, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (!value || !len) {
        shoal__errf(err, errcap, "store get: NULL output");
        return SHOAL_ERR_INVALID;
    }
    r.arg = get_wait_ms(deadline);
    double reply_deadline = deadline >= SHOAL__FOREVER ? deadline : deadline + GET_REPLY_SLACK_S;
    rc = exchange(c, &r, deadline, reply_deadline, &rep, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (rep.status != SHOAL_OK) {
        free(rep.payload);
        return server_error(&r, rep.status, err, errcap);
    }
    /* Hand out the value in its own block (the reply header precedes it in payload). */
    uint8_t *v = malloc(rep.value_len ? (size_t)rep.value_len : 1);
    if (!v) {
        free(rep.payload);
        shoal__errf(err, errcap, "store get: out of memory");
        return SHOAL_ERR_NOMEM;
    }
    if (rep.value_len) memcpy(v, rep.value, (size_t)rep.value_len);
    free(rep.payload);
    *value = v;
    *len = (size_t)rep.value_len;
    return SHOAL_OK;
}

/* A reply whose value has the wrong size means the server and we disagree on the protocol. */
static int bad_value(shoal__store_client *c, const shoal__store_req *r, uint64_t got,
                     unsigned want, char *err, size_t errcap) {
    pthread_mutex_lock(&c->mu);
    c->broken = 1;
    pthread_mutex_unlock(&c->mu);
    shoal__errf(err, errcap, "store %s: reply carries %llu value bytes, expected %u",
                op_name(r->op), (unsigned long long)got, want);
    return SHOAL_ERR_PROTOCOL;
}

int shoal__store_add(shoal__store_client *c, const char *key, int64_t delta, int64_t *result,
                     double deadline, char *err, size_t errcap) {
    shoal__store_req r;
    reply_t rep;
    int rc = key_req(&r, SHOAL__STORE_ADD, key, err, errcap);
    if (rc != SHOAL_OK) return rc;
    r.arg = (uint64_t)delta;
    rc = exchange(c, &r, deadline, deadline, &rep, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (rep.status != SHOAL_OK) rc = server_error(&r, rep.status, err, errcap);
    else if (rep.value_len != 8) rc = bad_value(c, &r, rep.value_len, 8, err, errcap);
    else if (result) *result = (int64_t)shoal__get_u64(rep.value);
    free(rep.payload);
    return rc;
}

int shoal__store_check(shoal__store_client *c, const char *key, int *exists, double deadline,
                       char *err, size_t errcap) {
    shoal__store_req r;
    reply_t rep;
    int rc = key_req(&r, SHOAL__STORE_CHECK, key, err, errcap);
    if (rc != SHOAL_OK) return rc;
    rc = exchange(c, &r, deadline, deadline, &rep, err, errcap);
    if (rc != SHOAL_OK) return rc;
    if (rep.status != SHOAL_OK) rc = server_error(&r, rep.status, err, errcap);
    else if (rep.value_len != 1 || rep.value[0] > 1)
        rc = bad_value(c, &r, rep.value_len, 1, err, errcap);
    else if (exists) *exists = rep.value[0];
    free(rep.payload);
    return rc;
}

int shoal__store_delete(shoal__store_client *c, const char *key, double deadline, char *err,
                        size_t errcap) {
    shoal__store_req r;
    reply_t rep;
    int rc = key_req(&r, SHOAL__STORE_DELETE, key, err, errcap);
    if (rc != SHOAL_OK) return rc;
    rc = exchange(c, &r, deadline, deadline, &rep, err, errcap);
    if (rc != SHOAL_OK) return rc;
    rc = rep.status == SHOAL_OK ? SHOAL_OK : server_error(&r, rep.status, err, errcap);
    free(rep.payload);
    return rc;
}
