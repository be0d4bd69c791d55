/* The rendezvous store: request codec, then a live server with client threads, raw sockets
 * that break the protocol, and a stop with work still in flight. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "comm/store.h"
#include "comm/store_proto.h"
#include "check.h"

#define KEY "store test key"
#define GROUP "store-test"
#define WORLD 4
#define MAX_VALUE 4096
#define SLACK_S 2.0
#define ADDS 1000

static shoal__auth auth;
static uint16_t port;

static double dl(double s) { return shoal__deadline_in(s); }

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static shoal__store_client *client(uint32_t rank) {
    shoal__store_client *c = NULL;
    char err[256] = "";
    CHECK_RC(shoal__store_connect("127.0.0.1", port, &auth, rank, WORLD, dl(10), &c, err,
                                  sizeof err),
             SHOAL_OK, err);
    return c;
}

/* Sets then reads back a key, checking the value: proves a client is still served. */
static void still_served(shoal__store_client *c, const char *key) {
    char err[256] = "";
    const char v[] = "alive";
    CHECK_RC(shoal__store_set(c, key, v, sizeof v, dl(3), err, sizeof err), SHOAL_OK, err);
    void *got = NULL;
    size_t n = 0;
    CHECK_RC(shoal__store_get(c, key, &got, &n, dl(3), err, sizeof err), SHOAL_OK, err);
    CHECK(n == sizeof v && got && memcmp(got, v, n) == 0);
    free(got);
}

/* ---- raw sockets --------------------------------------------------------------------------- */

static int raw_connect(int handshake) {
    int fd = -1;
    char err[256] = "";
    CHECK_RC(shoal__tcp_connect("127.0.0.1", port, dl(5), &fd, err, sizeof err), SHOAL_OK, err);
    if (!handshake) return fd;
    shoal__hello self, peer;
    memset(&self, 0, sizeof self);
    self.kind = SHOAL__CONN_STORE;
    self.rank = 3;
    self.world_size = WORLD;
    CHECK_RC(shoal__handshake_connect(fd, &auth, &self, &peer, dl(5), err, sizeof err), SHOAL_OK,
             err);
    return fd;
}

/* Writes a STORE_REQ frame for (op, key, arg, value) with the given tag into buf. */
static size_t raw_req(uint8_t *buf, uint32_t tag, uint8_t op, const char *key, uint64_t arg,
                      const char *value) {
    shoal__store_req r = {.op = op, .arg = arg, .key = (const uint8_t *)key,
                          .key_len = (uint32_t)strlen(key), .value = (const uint8_t *)value,
                          .value_len = value ? strlen(value) : 0};
    uint64_t plen = shoal__store_req_size(r.key_len, r.value_len);
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REQ, .tag = tag, .len = plen};
    shoal__frame_encode(&h, buf);
    shoal__store_req_encode(&r, buf + SHOAL__FRAME_HDR_SIZE);
    return SHOAL__FRAME_HDR_SIZE + (size_t)plen;
}

/* Reads one reply frame; checks its tag and status, copies its value. */
static void raw_reply(int fd, uint32_t tag, int32_t status, void *value, size_t vlen) {
    uint8_t hb[SHOAL__FRAME_HDR_SIZE], p[256];
    CHECK_RC(shoal__read_full(fd, hb, sizeof hb, dl(10)), SHOAL_OK, "reply header");
    shoal__frame_hdr h;
    CHECK_RC(shoal__frame_decode(hb, sizeof p, &h, NULL, 0), SHOAL_OK, "reply header");
    CHECK_EQ_INT(h.type, SHOAL__FRAME_STORE_REP);
    CHECK_EQ_INT(h.tag, tag);
    CHECK_EQ_INT(h.len, SHOAL__STORE_REP_HDR + vlen);
    if (h.len > sizeof p) return;
    CHECK_RC(shoal__read_full(fd, p, (size_t)h.len, dl(10)), SHOAL_OK, "reply payload");
    CHECK_EQ_INT((int32_t)shoal__get_u32(p), status);
    if (value && h.len == SHOAL__STORE_REP_HDR + vlen)
        memcpy(value, p + SHOAL__STORE_REP_HDR, vlen);
}

/* The server must close a connection that broke the protocol: EOF, not a reply. */
static void expect_closed(int fd) {
    uint8_t b[64];
    int rc;
    do rc = shoal__read_full(fd, b, 1, dl(5));
    while (rc == SHOAL_OK);
    CHECK_RC(rc, SHOAL_ERR_PEER_FAILED, "server should have closed the connection");
}

/* ---- codec --------------------------------------------------------------------------------- */

static void test_codec(void) {
    uint8_t b[64];
    char err[200];
    shoal__store_req r = {.op = SHOAL__STORE_SET, .arg = 0x1122334455667788ull,
                          .key = (const uint8_t *)"ab", .key_len = 2,
                          .value = (const uint8_t *)"xyz", .value_len = 3};
    CHECK(shoal__store_req_size(2, 3) == 21);
    shoal__store_req_encode(&r, b);
    const uint8_t want[21] = {1, 0, 0, 0, 2, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44,
                              0x33, 0x22, 0x11, 'a', 'b', 'x', 'y', 'z'};
    CHECK(memcmp(b, want, sizeof want) == 0);
    shoal__store_req d;
    CHECK_RC(shoal__store_req_decode(want, sizeof want, &d, err, sizeof err), SHOAL_OK, err);
    CHECK(d.op == 1 && d.arg == 0x1122334455667788ull && d.key_len == 2 &&
          d.key == want + 16 && d.value == want + 18 && d.value_len == 3);

    uint8_t t[32];
    struct {
        size_t len;
        int off;
        uint8_t byte;
        const char *needle;
    } bad[] = {
        {15, -1, 0, "shorter"},        {21, 0, 0, "unknown store op"},
        {21, 0, 6, "unknown store op"}, {21, 1, 1, "reserved"},
        {21, 3, 1, "reserved"},        {21, 4, 0, "outside"},
        {17, -1, 0, "exceeds"},        {21, 0, SHOAL__STORE_GET, "unexpected"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(t, want, sizeof want);
        if (bad[k].off >= 0) t[bad[k].off] = bad[k].byte;
        err[0] = 0;
        CHECK_RC(shoal__store_req_decode(t, bad[k].len, &d, err, sizeof err), SHOAL_ERR_PROTOCOL,
                 bad[k].needle);
        CHECK_CONTAINS(err, bad[k].needle);
    }
    memcpy(t, want, sizeof want);
    shoal__put_u32(t + 4, SHOAL__STORE_KEY_MAX + 1);
    CHECK_RC(shoal__store_req_decode(t, sizeof want, &d, err, sizeof err), SHOAL_ERR_PROTOCOL,
             "key too long");
    shoal__put_u32(t + 4, UINT32_MAX);
    CHECK_RC(shoal__store_req_decode(t, sizeof want, &d, err, sizeof err), SHOAL_ERR_PROTOCOL,
             "key_len overflow");
    CHECK_RC(shoal__store_req_decode(NULL, 0, &d, err, sizeof err), SHOAL_ERR_PROTOCOL, "NULL");

    /* replies */
    uint8_t rep[10];
    int32_t st;
    const uint8_t *v;
    uint64_t vl;
    shoal__store_rep_encode_hdr(SHOAL_ERR_TIMEOUT, rep);
    CHECK(rep[0] == 0xfc && rep[1] == 0xff && rep[2] == 0xff && rep[3] == 0xff && rep[4] == 0);
    CHECK_RC(shoal__store_rep_decode(rep, 8, &st, &v, &vl, err, sizeof err), SHOAL_OK, err);
    CHECK(st == SHOAL_ERR_TIMEOUT && vl == 0);
    CHECK_RC(shoal__store_rep_decode(rep, 10, &st, &v, &vl, err, sizeof err),
             SHOAL_ERR_PROTOCOL, "error reply with a value");
    shoal__store_rep_encode_hdr(SHOAL_OK, rep);
    rep[8] = 7;
    rep[9] = 9;
    CHECK_RC(shoal__store_rep_decode(rep, 10, &st, &v, &vl, err, sizeof err), SHOAL_OK, err);
    CHECK(st == 0 && vl == 2 && v == rep + 8);
    shoal__put_u32(rep, 5);
    CHECK_RC(shoal__store_rep_decode(rep, 8, &st, &v, &vl, err, sizeof err), SHOAL_ERR_PROTOCOL,
             "positive status");
    shoal__store_rep_encode_hdr(SHOAL_OK, rep);
    rep[5] = 1;
    CHECK_RC(shoal__store_rep_decode(rep, 8, &st, &v, &vl, err, sizeof err), SHOAL_ERR_PROTOCOL,
             "reserved");
    CHECK_RC(shoal__store_rep_decode(rep, 7, &st, &v, &vl, err, sizeof err), SHOAL_ERR_PROTOCOL,
             "short");
}

/* ---- one client ---------------------------------------------------------------------------- */

static void test_basic_ops(void) {
    shoal__store_client *c = client(0);
    if (!c) return;
    char err[256] = "", host[64] = "";
    CHECK_RC(shoal__store_local_host(c, host, sizeof host), SHOAL_OK, "");
    CHECK(strcmp(host, "127.0.0.1") == 0);

    int exists = -1;
    CHECK_RC(shoal__store_check(c, "b/k", &exists, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(exists, 0);
    CHECK_RC(shoal__store_set(c, "b/k", "v1", 2, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_RC(shoal__store_check(c, "b/k", &exists, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(exists, 1);
    CHECK_RC(shoal__store_set(c, "b/k", "second", 6, dl(10), err, sizeof err), SHOAL_OK, err);
    void *v = NULL;
    size_t n = 0;
    CHECK_RC(shoal__store_get(c, "b/k", &v, &n, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK(n == 6 && memcmp(v, "second", 6) == 0);
    free(v);
    CHECK_RC(shoal__store_set(c, "b/empty", NULL, 0, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_RC(shoal__store_get(c, "b/empty", &v, &n, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK(n == 0 && v != NULL);
    free(v);

    CHECK_RC(shoal__store_delete(c, "b/k", dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_RC(shoal__store_check(c, "b/k", &exists, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(exists, 0);
    CHECK_RC(shoal__store_delete(c, "b/never", dl(10), err, sizeof err), SHOAL_OK, err);

    /* counters: a missing key counts as 0; the value is the i64 in little-endian */
    int64_t r = 0;
    CHECK_RC(shoal__store_add(c, "b/ctr", 5, &r, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(r, 5);
    CHECK_RC(shoal__store_add(c, "b/ctr", -12, &r, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(r, -7);
    CHECK_RC(shoal__store_get(c, "b/ctr", &v, &n, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK(n == 8 && (int64_t)shoal__get_u64(v) == -7);
    free(v);
    /* ADD on a key that is not a counter is refused; the connection stays usable */
    CHECK_RC(shoal__store_set(c, "b/str", "abc", 3, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_RC(shoal__store_add(c, "b/str", 1, &r, dl(10), err, sizeof err), SHOAL_ERR_INVALID,
             err);
    CHECK_CONTAINS(err, "counter");
    still_served(c, "b/after-add");

    /* GET timeout: TIMEOUT near the deadline, and the connection still works */
    double t0 = shoal__now();
    CHECK_RC(shoal__store_get(c, "b/never", &v, &n, dl(0.3), err, sizeof err), SHOAL_ERR_TIMEOUT,
             err);
    double el = shoal__now() - t0;
    CHECK(el >= 0.29 && el < 0.3 + SLACK_S);
    still_served(c, "b/after-timeout");
    /* a deadline already past: the server answers at once */
    CHECK_RC(shoal__store_get(c, "b/never", &v, &n, shoal__now() - 1, err, sizeof err),
             SHOAL_ERR_TIMEOUT, err);

    /* bad keys are refused locally */
    char longkey[SHOAL__STORE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    CHECK_RC(shoal__store_set(c, longkey, "x", 1, dl(10), err, sizeof err), SHOAL_ERR_INVALID,
             err);
    CHECK_RC(shoal__store_set(c, "", "x", 1, dl(10), err, sizeof err), SHOAL_ERR_INVALID, err);
    longkey[SHOAL__STORE_KEY_MAX] = 0; /* exactly the maximum is fine */
    still_served(c, longkey);
    shoal__store_close(c);
}

/* ---- concurrency --------------------------------------------------------------------------- */

typedef struct worker {
    uint32_t rank;
    shoal__store_client *c;
    int64_t results[ADDS];
    int rc;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    char err[256] = "", key[32], want[32];
    snprintf(key, sizeof key, "x/%u", (unsigned)w->rank);
    snprintf(want, sizeof want, "value of rank %u", (unsigned)w->rank);
    CHECK_RC(shoal__store_set(w->c, key, want, strlen(want), dl(10), err, sizeof err), SHOAL_OK,
             err);
    /* the neighbour's key: usually set by another thread later, so this GET waits */
    uint32_t next = (w->rank + 1) % WORLD;
    snprintf(key, sizeof key, "x/%u", (unsigned)next);
    snprintf(want, sizeof want, "value of rank %u", (unsigned)next);
    void *v = NULL;
    size_t n = 0;
    CHECK_RC(shoal__store_get(w->c, key, &v, &n, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK(v && n == strlen(want) && memcmp(v, want, n) == 0);
    free(v);
    for (int k = 0; k < ADDS; k++) {
        int rc = shoal__store_add(w->c, "x/counter", 1, &w->results[k], dl(10), err, sizeof err);
        CHECK_RC(rc, SHOAL_OK, err);
        if (k > 0) CHECK(w->results[k] > w->results[k - 1]);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_threads(void) {
    static worker w[WORLD];
    pthread_t t[WORLD];
    for (uint32_t r = 0; r < WORLD; r++) {
        w[r].rank = r;
        w[r].c = client(r);
    }
    for (uint32_t r = 0; r < WORLD; r++) pthread_create(&t[r], NULL, worker_main, &w[r]);
    for (uint32_t r = 0; r < WORLD; r++) pthread_join(t[r], NULL);
    /* every ADD returned a distinct value: together exactly 1..4000 */
    static int64_t all[WORLD * ADDS];
    for (uint32_t r = 0; r < WORLD; r++) memcpy(all + r * ADDS, w[r].results, sizeof w[r].results);
    qsort(all, WORLD * ADDS, sizeof all[0], cmp_i64);
    int ok = 1;
    for (int k = 0; k < WORLD * ADDS; k++) ok &= all[k] == k + 1;
    CHECK(ok);
    int64_t total = 0;
    char err[256] = "";
    CHECK_RC(shoal__store_add(w[0].c, "x/counter", 0, &total, dl(10), err, sizeof err), SHOAL_OK,
             err);
    CHECK_EQ_INT(total, WORLD * ADDS);
    for (uint32_t r = 0; r < WORLD; r++) shoal__store_close(w[r].c);
}

typedef struct getter {
    shoal__store_client *c;
    const char *key;
    double timeout_s;
    int rc;
    void *v;
    size_t n;
    char err[256];
} getter;

static void *getter_main(void *arg) {
    getter *g = arg;
    g->rc = shoal__store_get(g->c, g->key, &g->v, &g->n, dl(g->timeout_s), g->err, sizeof g->err);
    return NULL;
}

static void test_blocking_get(void) {
    shoal__store_client *a = client(1), *b = client(2);
    getter g = {.c = a, .key = "late", .timeout_s = 10};
    pthread_t t;
    pthread_create(&t, NULL, getter_main, &g);
    sleep_s(0.2);
    char err[256] = "";
    CHECK_RC(shoal__store_set(b, "late", "set by b", 8, dl(10), err, sizeof err), SHOAL_OK, err);
    pthread_join(t, NULL);
    CHECK_RC(g.rc, SHOAL_OK, g.err);
    CHECK(g.n == 8 && g.v && memcmp(g.v, "set by b", 8) == 0);
    free(g.v);
    shoal__store_close(a);
    shoal__store_close(b);
}

/* Two threads share one client: the mutex keeps each request paired with its own reply. */
typedef struct sharer {
    shoal__store_client *c;
    int64_t got[200];
} sharer;

static void *sharer_main(void *arg) {
    sharer *s = arg;
    char err[256] = "";
    for (int k = 0; k < 200; k++)
        CHECK_RC(shoal__store_add(s->c, "shared", 1, &s->got[k], dl(10), err, sizeof err),
                 SHOAL_OK, err);
    return NULL;
}

static void test_shared_client(void) {
    shoal__store_client *c = client(1);
    static sharer s[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        s[k].c = c;
        pthread_create(&t[k], NULL, sharer_main, &s[k]);
    }
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    static int64_t all[400];
    memcpy(all, s[0].got, sizeof s[0].got);
    memcpy(all + 200, s[1].got, sizeof s[1].got);
    qsort(all, 400, sizeof all[0], cmp_i64);
    int ok = 1;
    for (int k = 0; k < 400; k++) ok &= all[k] == k + 1;
    CHECK(ok);
    shoal__store_close(c);
}

/* ---- limits and misbehaving peers ---------------------------------------------------------- */

static void test_value_limits(void) {
    shoal__store_client *c = client(0), *other = client(1);
    char err[256] = "";
    size_t big = MAX_VALUE + SHOAL__STORE_KEY_MAX + 64;
    uint8_t *v = malloc(big);
    for (size_t k = 0; k < big; k++) v[k] = (uint8_t)(k * 13 + 1);
    CHECK_RC(shoal__store_set(c, "lim/max", v, MAX_VALUE, dl(10), err, sizeof err), SHOAL_OK,
             err);
    void *got = NULL;
    size_t n = 0;
    CHECK_RC(shoal__store_get(other, "lim/max", &got, &n, dl(10), err, sizeof err), SHOAL_OK,
             err);
    CHECK(n == MAX_VALUE && got && memcmp(got, v, n) == 0);
    free(got);
    /* one byte over: refused with a reply, the connection stays usable */
    CHECK_RC(shoal__store_set(c, "lim/over", v, MAX_VALUE + 1, dl(10), err, sizeof err),
             SHOAL_ERR_INVALID, err);
    CHECK_CONTAINS(err, "larger");
    still_served(c, "lim/after-over");
    int exists = -1;
    CHECK_RC(shoal__store_check(other, "lim/over", &exists, dl(10), err, sizeof err), SHOAL_OK,
             err);
    CHECK_EQ_INT(exists, 0);
    /* a frame longer than the server accepts at all: that connection is closed ... */
    int rc = shoal__store_set(c, "lim/huge", v, big, dl(10), err, sizeof err);
    CHECK(rc == SHOAL_ERR_PEER_FAILED);
    /* ... and stays unusable (fails fast), while the others carry on */
    double t0 = shoal__now();
    CHECK_RC(shoal__store_check(c, "lim/max", &exists, dl(10), err, sizeof err),
             SHOAL_ERR_PEER_FAILED, err);
    CHECK(shoal__now() - t0 < 1.0);
    still_served(other, "lim/other");
    CHECK_RC(shoal__store_check(other, "lim/huge", &exists, dl(10), err, sizeof err), SHOAL_OK,
             err);
    CHECK_EQ_INT(exists, 0);
    free(v);
    shoal__store_close(c);
    shoal__store_close(other);
}

static void test_refused_clients(void) {
    shoal__store_client *good = client(2), *bad = NULL;
    char err[256] = "";
    shoal__auth wrong = auth;
    wrong.key = (const uint8_t *)"not the key";
    wrong.key_len = 11;
    CHECK_RC(shoal__store_connect("127.0.0.1", port, &wrong, 1, WORLD, dl(10), &bad, err,
                                  sizeof err),
             SHOAL_ERR_AUTH, err);
    CHECK(bad == NULL);
    still_served(good, "ref/1");
    shoal__auth other_group = auth;
    shoal__group_id("another job", other_group.group);
    CHECK(shoal__store_connect("127.0.0.1", port, &other_group, 1, WORLD, dl(10), &bad, err,
                               sizeof err) != SHOAL_OK);
    CHECK(shoal__store_connect("127.0.0.1", port, &auth, WORLD, WORLD, dl(10), &bad, err,
                               sizeof err) != SHOAL_OK);
    CHECK(shoal__store_connect("127.0.0.1", port, &auth, 1, WORLD + 1, dl(10), &bad, err,
                               sizeof err) != SHOAL_OK);
    still_served(good, "ref/2");
    /* one rank may hold several connections */
    shoal__store_client *again = client(2);
    still_served(again, "ref/3");
    shoal__store_close(again);
    shoal__store_close(good);
}

static void test_garbage(void) {
    shoal__store_client *good = client(0);
    uint8_t buf[256];
    /* junk header after a valid handshake */
    int fd = raw_connect(1);
    memset(buf, 0xab, SHOAL__FRAME_HDR_SIZE);
    CHECK_RC(shoal__write_full(fd, buf, SHOAL__FRAME_HDR_SIZE, dl(5)), SHOAL_OK, "");
    expect_closed(fd);
    close(fd);
    still_served(good, "g/1");

    /* a header announcing far more than the server accepts */
    fd = raw_connect(1);
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REQ, .len = 1ull << 40};
    shoal__frame_encode(&h, buf);
    CHECK_RC(shoal__write_full(fd, buf, SHOAL__FRAME_HDR_SIZE, dl(5)), SHOAL_OK, "");
    expect_closed(fd);
    close(fd);

    /* a well-framed request whose payload is malformed (key length 0) */
    fd = raw_connect(1);
    size_t n = raw_req(buf, 1, SHOAL__STORE_CHECK, "k", 0, NULL);
    shoal__put_u32(buf + SHOAL__FRAME_HDR_SIZE + 4, 0);
    CHECK_RC(shoal__write_full(fd, buf, n, dl(5)), SHOAL_OK, "");
    expect_closed(fd);
    close(fd);

    /* a frame type that has no business on a store connection */
    fd = raw_connect(1);
    h = (shoal__frame_hdr){.type = SHOAL__FRAME_DATA, .ctx = 2, .len = 4};
    shoal__frame_encode(&h, buf);
    memset(buf + SHOAL__FRAME_HDR_SIZE, 0, 4);
    CHECK_RC(shoal__write_full(fd, buf, SHOAL__FRAME_HDR_SIZE + 4, dl(5)), SHOAL_OK, "");
    expect_closed(fd);
    close(fd);

    /* garbage instead of a handshake, and half a frame then a hang-up */
    fd = raw_connect(0);
    memset(buf, 'Z', 100);
    CHECK_RC(shoal__write_full(fd, buf, 100, dl(5)), SHOAL_OK, "");
    expect_closed(fd);
    close(fd);
    fd = raw_connect(1);
    n = raw_req(buf, 1, SHOAL__STORE_SET, "half", 0, "value");
    CHECK_RC(shoal__write_full(fd, buf, n - 3, dl(5)), SHOAL_OK, "");
    close(fd);

    /* a heartbeat is harmless, and the connection keeps working after it */
    fd = raw_connect(1);
    h = (shoal__frame_hdr){.type = SHOAL__FRAME_HEARTBEAT};
    shoal__frame_encode(&h, buf);
    n = SHOAL__FRAME_HDR_SIZE + raw_req(buf + SHOAL__FRAME_HDR_SIZE, 77, SHOAL__STORE_CHECK,
                                        "g/1", 0, NULL);
    CHECK_RC(shoal__write_full(fd, buf, n, dl(5)), SHOAL_OK, "");
    uint8_t ex = 9;
    raw_reply(fd, 77, SHOAL_OK, &ex, 1);
    CHECK_EQ_INT(ex, 1);
    close(fd);

    still_served(good, "g/2");
    int exists = -1;
    char err[256] = "";
    CHECK_RC(shoal__store_check(good, "half", &exists, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(exists, 0);
    shoal__store_close(good);
}

/* Requests pipelined behind a parked GET are answered after it, in order. */
static void test_pipelined_order(void) {
    shoal__store_client *c = client(1);
    char err[256] = "";
    int fd = raw_connect(1);
    uint8_t buf[512];
    size_t n = raw_req(buf, 10, SHOAL__STORE_GET, "pipe", 10000, NULL);
    n += raw_req(buf + n, 11, SHOAL__STORE_SET, "pipe/x", 0, "1");
    n += raw_req(buf + n, 12, SHOAL__STORE_CHECK, "pipe/x", 0, NULL);
    CHECK_RC(shoal__write_full(fd, buf, n, dl(5)), SHOAL_OK, "");
    sleep_s(0.1);
    /* the SET waits behind the parked GET, so its key does not exist yet */
    int exists = -1;
    CHECK_RC(shoal__store_check(c, "pipe/x", &exists, dl(10), err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(exists, 0);
    CHECK_RC(shoal__store_set(c, "pipe", "P!", 2, dl(10), err, sizeof err), SHOAL_OK, err);
    char v[2] = {0};
    raw_reply(fd, 10, SHOAL_OK, v, 2);
    CHECK(v[0] == 'P' && v[1] == '!');
    raw_reply(fd, 11, SHOAL_OK, NULL, 0);
    uint8_t ex = 9;
    raw_reply(fd, 12, SHOAL_OK, &ex, 1);
    CHECK_EQ_INT(ex, 1);

    /* a client that hangs up while its GET is parked is forgotten cleanly */
    n = raw_req(buf, 1, SHOAL__STORE_GET, "ghost", SHOAL__STORE_WAIT_FOREVER, NULL);
    CHECK_RC(shoal__write_full(fd, buf, n, dl(5)), SHOAL_OK, "");
    sleep_s(0.05);
    close(fd);
    sleep_s(0.05);
    CHECK_RC(shoal__store_set(c, "ghost", "boo", 3, dl(10), err, sizeof err), SHOAL_OK, err);
    still_served(c, "pipe/after");
    shoal__store_close(c);
}

/* A connection that never sends its hello must not hold up anyone else. */
static void test_silent_newcomer(void) {
    int silent = raw_connect(0);
    sleep_s(0.05);
    shoal__store_client *c = client(3); /* its own handshake proceeds meanwhile */
    still_served(c, "silent/1");        /* deadline 3 s < the 5 s handshake timeout */
    shoal__store_close(c);
    close(silent);
}

/* Many pipelined requests whose replies (2.4 MB) far exceed what the server buffers per client
 * before it stops serving it: all are answered, in order, once the client reads. */
static void test_backpressure(void) {
    shoal__store_client *c = client(0);
    char err[256] = "";
    static uint8_t value[MAX_VALUE];
    for (size_t k = 0; k < sizeof value; k++) value[k] = (uint8_t)(k ^ (k >> 8));
    CHECK_RC(shoal__store_set(c, "bp/v", value, sizeof value, dl(10), err, sizeof err), SHOAL_OK,
             err);
    enum { N = 600 };
    int fd = raw_connect(1);
    size_t one = SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REQ_HDR + 4;
    uint8_t *reqs = malloc(N * one);
    size_t n = 0;
    for (uint32_t k = 0; k < N; k++) n += raw_req(reqs + n, 1000 + k, SHOAL__STORE_GET, "bp/v", 0, NULL);
    CHECK(n == N * one);
    CHECK_RC(shoal__write_full(fd, reqs, n, dl(10)), SHOAL_OK, "");
    sleep_s(0.2);
    still_served(c, "bp/other"); /* a client that does not read holds up nobody else */
    static uint8_t buf[SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REP_HDR + MAX_VALUE];
    int in_order = 1, intact = 1;
    for (uint32_t k = 0; k < N; k++) {
        if (shoal__read_full(fd, buf, sizeof buf, dl(10)) != SHOAL_OK) {
            CHECK(!"reply missing");
            break;
        }
        shoal__frame_hdr h;
        CHECK_RC(shoal__frame_decode(buf, sizeof buf, &h, NULL, 0), SHOAL_OK, "");
        in_order &= h.tag == 1000 + k && h.len == SHOAL__STORE_REP_HDR + MAX_VALUE;
        intact &= shoal__get_u32(buf + SHOAL__FRAME_HDR_SIZE) == 0 &&
                  memcmp(buf + SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REP_HDR, value, MAX_VALUE) == 0;
    }
    CHECK(in_order);
    CHECK(intact);
    free(reqs);
    close(fd);
    shoal__store_close(c);
}

/* ---- the client against a fake server ------------------------------------------------------- */

typedef enum { FAKE_SILENT, FAKE_WRONG_TAG } fake_mode;

typedef struct fake {
    fake_mode mode;
    int lfd;
    uint16_t port;
    int done_fd[2]; /* the test writes a byte here when the fake may close */
} fake;

static void *fake_main(void *arg) {
    fake *f = arg;
    int fd = -1;
    struct pollfd p = {.fd = f->lfd, .events = POLLIN};
    (void)poll(&p, 1, 5000);
    if (shoal__tcp_accept(f->lfd, &fd, NULL, 0) != SHOAL_OK) return NULL;
    shoal__hello self, peer;
    memset(&self, 0, sizeof self);
    self.kind = SHOAL__CONN_STORE;
    self.world_size = WORLD;
    char err[256] = "";
    CHECK_RC(shoal__handshake_accept(fd, &auth, &self, &peer, dl(5), err, sizeof err), SHOAL_OK,
             err);
    CHECK_RC(shoal__handshake_verdict(fd, SHOAL__VERDICT_OK, dl(5)), SHOAL_OK, "");
    uint8_t hb[SHOAL__FRAME_HDR_SIZE], payload[256];
    shoal__frame_hdr h;
    if (shoal__read_full(fd, hb, sizeof hb, dl(5)) == SHOAL_OK &&
        shoal__frame_decode(hb, sizeof payload, &h, NULL, 0) == SHOAL_OK &&
        shoal__read_full(fd, payload, (size_t)h.len, dl(5)) == SHOAL_OK &&
        f->mode == FAKE_WRONG_TAG) {
        shoal__frame_hdr r = {.type = SHOAL__FRAME_STORE_REP, .tag = h.tag + 1,
                              .len = SHOAL__STORE_REP_HDR};
        uint8_t out[SHOAL__FRAME_HDR_SIZE + SHOAL__STORE_REP_HDR];
        shoal__frame_encode(&r, out);
        shoal__store_rep_encode_hdr(SHOAL_OK, out + SHOAL__FRAME_HDR_SIZE);
        CHECK_RC(shoal__write_full(fd, out, sizeof out, dl(5)), SHOAL_OK, "");
    }
    uint8_t b;
    (void)shoal__read_full(f->done_fd[0], &b, 1, dl(10));
    close(fd);
    return NULL;
}

static void fake_case(fake_mode mode, int want_rc) {
    fake f = {.mode = mode};
    char err[256] = "";
    CHECK_RC(shoal__tcp_listen("127.0.0.1", 0, &f.lfd, &f.port, err, sizeof err), SHOAL_OK, err);
    CHECK(pipe(f.done_fd) == 0);
    pthread_t t;
    pthread_create(&t, NULL, fake_main, &f);
    shoal__store_client *c = NULL;
    CHECK_RC(shoal__store_connect("127.0.0.1", f.port, &auth, 1, WORLD, dl(5), &c, err,
                                  sizeof err),
             SHOAL_OK, err);
    if (c) {
        double t0 = shoal__now();
        CHECK_RC(shoal__store_set(c, "k", "v", 1, dl(0.3), err, sizeof err), want_rc, err);
        CHECK(shoal__now() - t0 < 0.3 + SLACK_S);
        /* the connection is now unusable: later calls fail at once, even with time to spare */
        t0 = shoal__now();
        int exists;
        CHECK_RC(shoal__store_check(c, "k", &exists, dl(10), err, sizeof err),
                 SHOAL_ERR_PEER_FAILED, err);
        CHECK_CONTAINS(err, "earlier");
        CHECK(shoal__now() - t0 < 1.0);
        shoal__store_close(c);
    }
    char b = 1;
    CHECK(write(f.done_fd[1], &b, 1) == 1);
    pthread_join(t, NULL);
    close(f.done_fd[0]);
    close(f.done_fd[1]);
    close(f.lfd);
}

static void test_client_breaks(void) {
    fake_case(FAKE_SILENT, SHOAL_ERR_TIMEOUT);
    fake_case(FAKE_WRONG_TAG, SHOAL_ERR_PROTOCOL);
}

/* ---- stop ---------------------------------------------------------------------------------- */

static void test_stop_with_work_in_flight(shoal__store_server *s) {
    shoal__store_client *c = client(0), *parked = client(1);
    int silent = raw_connect(0); /* a handshake in progress */
    getter g = {.c = parked, .key = "never", .timeout_s = 30};
    pthread_t t;
    pthread_create(&t, NULL, getter_main, &g);
    sleep_s(0.1);
    double t0 = shoal__now();
    shoal__store_server_stop(s);
    CHECK(shoal__now() - t0 < 4.0); /* well before the 5 s handshake deadline */
    pthread_join(t, NULL);
    CHECK_RC(g.rc, SHOAL_ERR_PEER_FAILED, g.err);
    char err[256] = "";
    int exists;
    CHECK(shoal__store_check(c, "x", &exists, dl(5), err, sizeof err) != SHOAL_OK);
    shoal__store_close(c);
    shoal__store_close(parked);
    close(silent);
}

int main(void) {
    auth.key = (const uint8_t *)KEY;
    auth.key_len = strlen(KEY);
    shoal__group_id(GROUP, auth.group);
    test_codec();

    shoal__store_server *s = NULL;
    char err[256] = "";
    int rc = shoal__store_server_start("127.0.0.1", 0, &auth, WORLD, MAX_VALUE, &s, &port, err,
                                       sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc != SHOAL_OK) return check_report("test_store");
    CHECK(port != 0);
    test_basic_ops();
    test_threads();
    test_blocking_get();
    test_shared_client();
    test_value_limits();
    test_refused_clients();
    test_garbage();
    test_pipelined_order();
    test_silent_newcomer();
    test_backpressure();
    test_client_breaks();
    test_stop_with_work_in_flight(s);
    shoal__store_server_stop(NULL);
    return check_report("test_store");
}
