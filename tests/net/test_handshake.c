/* Sockets and the authenticated handshake over loopback TCP, with both sides on their own
 * threads; misbehaving peers are played by raw sockets that write exactly the bytes under
 * test. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "net/net.h"

#define SLACK_S 2.0 /* generous: only "returned before the deadline + slack" is asserted */

/* ---- plumbing ------------------------------------------------------------------------------ */

static int listen_local(uint16_t *port) {
    int fd = -1;
    char err[200] = "";
    int rc = shoal__tcp_listen("127.0.0.1", 0, &fd, port, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    CHECK(*port != 0);
    return fd;
}

static int accept_one(int lfd, double timeout_s) {
    double deadline = shoal__deadline_in(timeout_s);
    for (;;) {
        int fd;
        char peer[80];
        if (shoal__tcp_accept(lfd, &fd, peer, sizeof peer) == SHOAL_OK) {
            CHECK(peer[0] != 0 && peer[0] != '?');
            return fd;
        }
        int ms = shoal__ms_until(deadline, -1);
        if (ms == 0) return -1;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        (void)poll(&p, 1, ms);
    }
}

static int connect_local(uint16_t port) {
    int fd = -1;
    char err[200] = "";
    CHECK_RC(shoal__tcp_connect("127.0.0.1", port, shoal__deadline_in(5), &fd, err, sizeof err),
             SHOAL_OK, err);
    return fd;
}

typedef struct side {
    shoal__auth auth;
    shoal__hello self, peer;
    double timeout_s;
    uint32_t verdict; /* acceptor: what to send when the handshake passes */
    int rc;
    double elapsed;
    char err[256];
    int fd; /* listener (acceptor) or connected socket */
} side;

static void side_init(side *s, const char *key, const char *group, uint16_t kind,
                      uint32_t rank, uint32_t world, uint32_t lane) {
    memset(s, 0, sizeof *s);
    s->auth.key = (const uint8_t *)key;
    s->auth.key_len = strlen(key);
    shoal__group_id(group, s->auth.group);
    s->self.version = SHOAL__PROTOCOL_VERSION;
    s->self.kind = kind;
    s->self.rank = rank;
    s->self.world_size = world;
    s->self.lane = lane;
    s->timeout_s = 5;
    s->verdict = SHOAL__VERDICT_OK;
    s->rc = 12345;
}

static void *acceptor_main(void *arg) {
    side *a = arg;
    int fd = accept_one(a->fd, 5);
    CHECK(fd >= 0);
    double t0 = shoal__now();
    a->rc = shoal__handshake_accept(fd, &a->auth, &a->self, &a->peer,
                                    shoal__deadline_in(a->timeout_s), a->err, sizeof a->err);
    a->elapsed = shoal__now() - t0;
    if (a->rc == SHOAL_OK)
        CHECK_RC(shoal__handshake_verdict(fd, a->verdict, shoal__deadline_in(5)), SHOAL_OK, "");
    close(fd);
    return NULL;
}

static void *initiator_main(void *arg) {
    side *i = arg;
    double t0 = shoal__now();
    i->rc = shoal__handshake_connect(i->fd, &i->auth, &i->self, &i->peer,
                                     shoal__deadline_in(i->timeout_s), i->err, sizeof i->err);
    i->elapsed = shoal__now() - t0;
    return NULL;
}

/* Real acceptor against real initiator. */
static void run_pair(side *a, side *i) {
    uint16_t port = 0;
    a->fd = listen_local(&port);
    pthread_t ta, ti;
    pthread_create(&ta, NULL, acceptor_main, a);
    i->fd = connect_local(port);
    pthread_create(&ti, NULL, initiator_main, i);
    pthread_join(ti, NULL);
    close(i->fd); /* as a real caller does on failure, so the acceptor sees it at once */
    pthread_join(ta, NULL);
    close(a->fd);
}

/* Real acceptor; the caller plays the initiator on the returned socket, then calls
 * acceptor_finish. */
static int acceptor_start(side *a, pthread_t *t) {
    uint16_t port = 0;
    a->fd = listen_local(&port);
    pthread_create(t, NULL, acceptor_main, a);
    return connect_local(port);
}

static void acceptor_finish(side *a, pthread_t t, int raw) {
    pthread_join(t, NULL);
    close(raw);
    close(a->fd);
}

/* Real initiator; the caller plays the acceptor on the returned socket. */
static int initiator_start(side *i, pthread_t *t, int *lfd) {
    uint16_t port = 0;
    *lfd = listen_local(&port);
    i->fd = connect_local(port);
    pthread_create(t, NULL, initiator_main, i);
    int fd = accept_one(*lfd, 5);
    CHECK(fd >= 0);
    return fd;
}

/* After the caller joined the initiator's thread. */
static void initiator_finish(side *i, int raw, int lfd) {
    close(raw);
    close(i->fd);
    close(lfd);
}

static void encode_hello(const char *group, uint16_t version, uint16_t kind, uint32_t rank,
                         uint32_t world, uint8_t out[SHOAL__HELLO_SIZE]) {
    shoal__hello h;
    memset(&h, 0, sizeof h);
    h.version = version;
    h.kind = kind;
    h.rank = rank;
    h.world_size = world;
    shoal__group_id(group, h.group);
    memset(h.nonce, 0x42, sizeof h.nonce);
    shoal__hello_encode(&h, out);
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (p[k]) return 0;
    return 1;
}

/* ---- pure functions ------------------------------------------------------------------------ */

static void test_group_id(void) {
    /* SHA-256("abc") from FIPS 180-2, first 16 bytes */
    const uint8_t want[16] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                              0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23};
    uint8_t got[16];
    shoal__group_id("abc", got);
    CHECK(memcmp(got, want, 16) == 0);
    /* SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 ... */
    const uint8_t want_empty[16] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                    0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24};
    shoal__group_id("", got);
    CHECK(memcmp(got, want_empty, 16) == 0);
}

static void test_hello_codec(void) {
    shoal__hello h;
    memset(&h, 0, sizeof h);
    h.version = 0x0201;
    h.kind = SHOAL__CONN_MESH;
    h.rank = 0x06050403u;
    h.world_size = 0x0a090807u;
    h.lane = 1;
    for (int k = 0; k < 16; k++) h.group[k] = (uint8_t)(0x80 + k);
    for (int k = 0; k < 32; k++) h.nonce[k] = (uint8_t)(0xc0 + k);
    uint8_t b[SHOAL__HELLO_SIZE];
    shoal__hello_encode(&h, b);
    const uint8_t head[20] = {'S', 'H', 'O', 'L', 0x01, 0x02, 0x02, 0x00, 0x03, 0x04,
                              0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x01, 0x00, 0x00, 0x00};
    CHECK(memcmp(b, head, sizeof head) == 0);
    CHECK(b[20] == 0x80 && b[35] == 0x8f && b[36] == 0xc0 && b[67] == 0xdf);
    shoal__hello d;
    CHECK_RC(shoal__hello_decode(b, &d), SHOAL_OK, "");
    CHECK(memcmp(&d, &h, sizeof d) == 0);
    b[3] = 'X';
    CHECK_RC(shoal__hello_decode(b, &d), SHOAL_ERR_PROTOCOL, "");
}

static void test_addr_parse(void) {
    char host[SHOAL__HOST_MAX], err[200];
    uint16_t port = 0;
    CHECK_RC(shoal__addr_parse("10.1.2.3:29500", host, sizeof host, &port, err, sizeof err),
             SHOAL_OK, err);
    CHECK(strcmp(host, "10.1.2.3") == 0 && port == 29500);
    CHECK_RC(shoal__addr_parse("[::1]:7", host, sizeof host, &port, err, sizeof err), SHOAL_OK,
             err);
    CHECK(strcmp(host, "::1") == 0 && port == 7);
    CHECK_RC(shoal__addr_parse("node-3.cluster:65535", host, sizeof host, &port, err,
                               sizeof err),
             SHOAL_OK, err);
    CHECK(strcmp(host, "node-3.cluster") == 0 && port == 65535);
    const char *bad[] = {"", "host", "host:", ":80", "host:65536", "host:12a", "host:-1",
                         "::1:80", "[::1]80", "[::1", "[]:80", "host:99999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err[0] = 0;
        CHECK_RC(shoal__addr_parse(bad[k], host, sizeof host, &port, err, sizeof err),
                 SHOAL_ERR_INVALID, bad[k]);
        CHECK(err[0] != 0);
    }
    char small[4];
    CHECK_RC(shoal__addr_parse("abcd:1", small, sizeof small, &port, err, sizeof err),
             SHOAL_ERR_INVALID, "host longer than the buffer");

    CHECK(shoal__host_is_loopback("127.0.0.1"));
    CHECK(shoal__host_is_loopback("127.200.0.9"));
    CHECK(shoal__host_is_loopback("::1"));
    CHECK(shoal__host_is_loopback("[::1]"));
    CHECK(shoal__host_is_loopback("localhost"));
    CHECK(shoal__host_is_loopback("::ffff:127.0.0.1"));
    CHECK(!shoal__host_is_loopback("128.0.0.1"));
    CHECK(!shoal__host_is_loopback("10.0.0.1"));
    CHECK(!shoal__host_is_loopback("::2"));
    CHECK(!shoal__host_is_loopback("example.com"));
    CHECK(!shoal__host_is_loopback(""));
}

/* ---- sockets ------------------------------------------------------------------------------- */

typedef struct xfer {
    int fd;
    uint8_t *p;
    size_t n;
    int rc;
} xfer;

static void *writer_main(void *arg) {
    xfer *x = arg;
    x->rc = shoal__write_full(x->fd, x->p, x->n, shoal__deadline_in(20));
    return NULL;
}

static void test_sockets(void) {
    uint16_t port = 0;
    int lfd = listen_local(&port);
    int none = -1;
    CHECK_RC(shoal__tcp_accept(lfd, &none, NULL, 0), SHOAL_ERR_TIMEOUT, "nothing pending");
    int c = connect_local(port);
    int s = accept_one(lfd, 5);
    CHECK(c >= 0 && s >= 0);
    char host[64] = "";
    CHECK_RC(shoal__sock_local_host(c, host, sizeof host), SHOAL_OK, "");
    CHECK(strcmp(host, "127.0.0.1") == 0);
    char peer[80] = "", want[80];
    shoal__sock_peer_str(c, peer, sizeof peer);
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    CHECK(strcmp(peer, want) == 0);
    shoal__sock_tune_bulk(s);

    /* 8 MiB through a non-blocking reader and a blocking writer: both must cope with
     * partial transfers and EAGAIN */
    size_t n = 8u << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    for (size_t k = 0; k < n; k++) a[k] = (uint8_t)(k * 7 + (k >> 13));
    CHECK_RC(shoal__set_nonblock(s, 1), SHOAL_OK, "");
    xfer w = {c, a, n, -99};
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    CHECK_RC(shoal__read_full(s, b, n, shoal__deadline_in(20)), SHOAL_OK, "");
    pthread_join(t, NULL);
    CHECK_RC(w.rc, SHOAL_OK, "");
    CHECK(memcmp(a, b, n) == 0);

    /* nothing more to read: a timeout near the deadline, not a hang */
    double t0 = shoal__now();
    CHECK_RC(shoal__read_full(s, b, 1, shoal__deadline_in(0.2)), SHOAL_ERR_TIMEOUT, "");
    double el = shoal__now() - t0;
    CHECK(el >= 0.19 && el < 0.2 + SLACK_S);
    CHECK_RC(shoal__read_full(s, b, 0, shoal__deadline_in(0)), SHOAL_OK, "n = 0");

    /* a peer that closes: EOF is a peer failure; writing to it never raises SIGPIPE (the test
     * would die here if it did) */
    close(c);
    CHECK_RC(shoal__read_full(s, b, 1, shoal__deadline_in(5)), SHOAL_ERR_PEER_FAILED, "");
    int wrc = SHOAL_OK;
    for (int k = 0; k < 50 && wrc == SHOAL_OK; k++)
        wrc = shoal__write_full(s, a, 65536, shoal__deadline_in(5));
    CHECK_RC(wrc, SHOAL_ERR_PEER_FAILED, "");
    close(s);

    /* a write that cannot drain times out at its deadline */
    c = connect_local(port);
    s = accept_one(lfd, 5);
    t0 = shoal__now();
    wrc = SHOAL_OK;
    while (wrc == SHOAL_OK && shoal__now() - t0 < 10)
        wrc = shoal__write_full(c, a, n, shoal__deadline_in(0.3));
    CHECK_RC(wrc, SHOAL_ERR_TIMEOUT, "");
    close(c);
    close(s);
    free(a);
    free(b);

    /* nobody listens: connect retries until its deadline, then gives up */
    close(lfd);
    int fd = -1;
    char err[200] = "";
    t0 = shoal__now();
    CHECK_RC(shoal__tcp_connect("127.0.0.1", port, shoal__deadline_in(0.3), &fd, err,
                                sizeof err),
             SHOAL_ERR_TIMEOUT, err);
    el = shoal__now() - t0;
    CHECK(el >= 0.29 && el < 0.3 + SLACK_S);
    CHECK_CONTAINS(err, "timed out");

    /* a name that does not resolve fails (at once, or at the deadline when the resolver
     * itself is unreachable) */
    t0 = shoal__now();
    CHECK(shoal__tcp_connect("no-such-host.invalid", 1, shoal__deadline_in(2), &fd, err,
                             sizeof err) != SHOAL_OK);
    CHECK(shoal__now() - t0 < 2 + SLACK_S);
}

/* The listener comes up 150 ms after the first connect attempt. */
typedef struct late {
    uint16_t port;
    int lfd;
} late;

static void *late_listener(void *arg) {
    late *l = arg;
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char err[200] = "";
    CHECK_RC(shoal__tcp_listen("127.0.0.1", l->port, &l->lfd, NULL, err, sizeof err), SHOAL_OK,
             err);
    return NULL;
}

static void test_connect_retry(void) {
    uint16_t port = 0;
    int lfd = listen_local(&port);
    close(lfd); /* the port is free now; the late listener takes it again */
    late l = {port, -1};
    pthread_t t;
    pthread_create(&t, NULL, late_listener, &l);
    int fd = -1;
    char err[200] = "";
    CHECK_RC(shoal__tcp_connect("127.0.0.1", port, shoal__deadline_in(10), &fd, err, sizeof err),
             SHOAL_OK, err);
    pthread_join(t, NULL);
    if (fd >= 0) close(fd);
    if (l.lfd >= 0) close(l.lfd);
}

static void test_ipv6(void) {
    int lfd = -1;
    uint16_t port = 0;
    char err[200] = "";
    if (shoal__tcp_listen("::1", 0, &lfd, &port, err, sizeof err) != SHOAL_OK) {
        fprintf(stderr, "test_handshake: no IPv6 loopback here (%s); skipping the v6 case\n",
                err);
        return;
    }
    char host[SHOAL__HOST_MAX], addr[64];
    uint16_t p2 = 0;
    snprintf(addr, sizeof addr, "[::1]:%u", (unsigned)port);
    CHECK_RC(shoal__addr_parse(addr, host, sizeof host, &p2, err, sizeof err), SHOAL_OK, err);
    int c = -1;
    CHECK_RC(shoal__tcp_connect(host, p2, shoal__deadline_in(5), &c, err, sizeof err), SHOAL_OK,
             err);
    int s = accept_one(lfd, 5);
    CHECK(s >= 0);
    char peer[80] = "";
    shoal__sock_peer_str(c, peer, sizeof peer);
    CHECK(strcmp(peer, addr) == 0);
    char local[64] = "";
    CHECK_RC(shoal__sock_local_host(c, local, sizeof local), SHOAL_OK, "");
    CHECK(strcmp(local, "::1") == 0);
    uint8_t x = 0x5c, y = 0;
    CHECK_RC(shoal__write_full(c, &x, 1, shoal__deadline_in(5)), SHOAL_OK, "");
    CHECK_RC(shoal__read_full(s, &y, 1, shoal__deadline_in(5)), SHOAL_OK, "");
    CHECK(y == 0x5c);
    close(c);
    close(s);
    close(lfd);
}

/* ---- handshakes --------------------------------------------------------------------------- */

static void test_ok(const char *key) {
    side a, i;
    side_init(&a, key, "job-1", SHOAL__CONN_MESH, 0, 4, 1);
    side_init(&i, key, "job-1", SHOAL__CONN_MESH, 3, 4, 1);
    run_pair(&a, &i);
    CHECK_RC(a.rc, SHOAL_OK, a.err);
    CHECK_RC(i.rc, SHOAL_OK, i.err);
    /* each side sees exactly the hello the other sent */
    CHECK(a.peer.rank == 3 && a.peer.world_size == 4 && a.peer.lane == 1 &&
          a.peer.kind == SHOAL__CONN_MESH && a.peer.version == SHOAL__PROTOCOL_VERSION);
    CHECK(memcmp(a.peer.nonce, i.self.nonce, 32) == 0);
    CHECK(memcmp(a.peer.group, i.auth.group, 16) == 0);
    CHECK(i.peer.rank == 0 && i.peer.world_size == 4 && i.peer.lane == 1);
    CHECK(memcmp(i.peer.nonce, a.self.nonce, 32) == 0);
    CHECK(!all_zero(a.self.nonce, 32) && !all_zero(i.self.nonce, 32));
    CHECK(memcmp(a.self.nonce, i.self.nonce, 32) != 0);
}

static void test_version_zero_means_current(void) {
    side a, i;
    side_init(&a, "k", "g", SHOAL__CONN_STORE, 0, 2, 0);
    side_init(&i, "k", "g", SHOAL__CONN_STORE, 1, 2, 0);
    i.self.version = 0;
    run_pair(&a, &i);
    CHECK_RC(a.rc, SHOAL_OK, a.err);
    CHECK_RC(i.rc, SHOAL_OK, i.err);
    CHECK_EQ_INT(a.peer.version, SHOAL__PROTOCOL_VERSION);
}

static void test_wrong_key(void) {
    side a, i;
    side_init(&a, "right key", "g", SHOAL__CONN_MESH, 0, 2, 0);
    side_init(&i, "wrong key", "g", SHOAL__CONN_MESH, 1, 2, 0);
    run_pair(&a, &i);
    /* the initiator checks proof_A first, fails and hangs up without proving anything */
    CHECK_RC(i.rc, SHOAL_ERR_AUTH, i.err);
    CHECK_CONTAINS(i.err, "proof");
    CHECK_RC(a.rc, SHOAL_ERR_PEER_FAILED, a.err); /* it closed instead of sending proof_I */
    CHECK_CONTAINS(a.err, "proof");

    /* keyless against keyed fails too */
    side_init(&a, "", "g", SHOAL__CONN_MESH, 0, 2, 0);
    side_init(&i, "k", "g", SHOAL__CONN_MESH, 1, 2, 0);
    run_pair(&a, &i);
    CHECK_RC(i.rc, SHOAL_ERR_AUTH, i.err);
    CHECK(a.rc != SHOAL_OK);
}

/* An initiator that skips the key check and sends a made-up proof. */
static void test_forged_proof(void) {
    side a;
    pthread_t t;
    side_init(&a, "key", "g", SHOAL__CONN_MESH, 0, 2, 0);
    int raw = acceptor_start(&a, &t);
    uint8_t hello[SHOAL__HELLO_SIZE], back[SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE];
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 1, 2, hello);
    CHECK_RC(shoal__write_full(raw, hello, sizeof hello, shoal__deadline_in(5)), SHOAL_OK, "");
    CHECK_RC(shoal__read_full(raw, back, sizeof back, shoal__deadline_in(5)), SHOAL_OK, "");
    /* proof_A must be HMAC(key, label || hello_I || hello_A): recompute it independently */
    uint8_t msg[200], mac[32];
    unsigned int maclen = 0;
    const char *label = "shoal-auth-v1 acceptor";
    memcpy(msg, label, strlen(label));
    memcpy(msg + strlen(label), hello, 68);
    memcpy(msg + strlen(label) + 68, back, 68);
    HMAC(EVP_sha256(), "key", 3, msg, strlen(label) + 136, mac, &maclen);
    CHECK(maclen == 32 && memcmp(mac, back + 68, 32) == 0);
    uint8_t forged[32] = {0};
    CHECK_RC(shoal__write_full(raw, forged, sizeof forged, shoal__deadline_in(5)), SHOAL_OK, "");
    acceptor_finish(&a, t, raw);
    CHECK_RC(a.rc, SHOAL_ERR_AUTH, a.err);
    CHECK_CONTAINS(a.err, "proof does not match");
}

/* A raw initiator sends hello bytes; the acceptor must refuse before sending a single byte. */
static void raw_hello_refused(const uint8_t *bytes, size_t n, int close_after, int want_rc,
                              const char *needle) {
    side a;
    pthread_t t;
    side_init(&a, "key", "g", SHOAL__CONN_MESH, 0, 4, 0);
    a.timeout_s = 2;
    int raw = acceptor_start(&a, &t);
    CHECK_RC(shoal__write_full(raw, bytes, n, shoal__deadline_in(5)), SHOAL_OK, "");
    if (close_after) shutdown(raw, SHUT_WR);
    uint8_t b;
    /* the acceptor closes without writing anything: EOF, not a byte */
    CHECK_RC(shoal__read_full(raw, &b, 1, shoal__deadline_in(5)), SHOAL_ERR_PEER_FAILED, needle);
    acceptor_finish(&a, t, raw);
    CHECK_RC(a.rc, want_rc, a.err);
    CHECK_CONTAINS(a.err, needle);
}

static void test_acceptor_refusals(void) {
    uint8_t h[SHOAL__HELLO_SIZE];
    encode_hello("g", SHOAL__PROTOCOL_VERSION + 1, SHOAL__CONN_MESH, 1, 4, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "version");
    encode_hello("another job", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 1, 4, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "group");
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_STORE, 1, 4, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "kind");
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 4, 4, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "rank 4 is out of range");
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 5, 8, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "world size");
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, UINT32_MAX, 4, h);
    raw_hello_refused(h, sizeof h, 0, SHOAL_ERR_AUTH, "out of range");

    uint8_t garbage[SHOAL__HELLO_SIZE];
    for (size_t k = 0; k < sizeof garbage; k++) garbage[k] = (uint8_t)(k * 37 + 11);
    raw_hello_refused(garbage, sizeof garbage, 0, SHOAL_ERR_PROTOCOL, "magic");
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_hello_refused((const uint8_t *)http, sizeof http - 1, 1, SHOAL_ERR_PEER_FAILED,
                      "closed");
    /* a peer that closes mid-hello */
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 1, 4, h);
    raw_hello_refused(h, 30, 1, SHOAL_ERR_PEER_FAILED, "closed");
}

/* A peer that sends a good hello, reads our proof, and hangs up. */
static void test_close_after_hello(void) {
    side a;
    pthread_t t;
    side_init(&a, "key", "g", SHOAL__CONN_MESH, 0, 4, 0);
    int raw = acceptor_start(&a, &t);
    uint8_t h[SHOAL__HELLO_SIZE], back[SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE];
    encode_hello("g", SHOAL__PROTOCOL_VERSION, SHOAL__CONN_MESH, 2, 4, h);
    CHECK_RC(shoal__write_full(raw, h, sizeof h, shoal__deadline_in(5)), SHOAL_OK, "");
    CHECK_RC(shoal__read_full(raw, back, sizeof back, shoal__deadline_in(5)), SHOAL_OK, "");
    shutdown(raw, SHUT_RDWR);
    acceptor_finish(&a, t, raw);
    CHECK_RC(a.rc, SHOAL_ERR_PEER_FAILED, a.err);
    CHECK_CONTAINS(a.err, "proof");
    CHECK(a.peer.rank == 2); /* filled in even on failure, for the caller's log line */
}

static void test_silent_initiator(void) {
    side a;
    pthread_t t;
    side_init(&a, "key", "g", SHOAL__CONN_MESH, 0, 4, 0);
    a.timeout_s = 0.3;
    int raw = acceptor_start(&a, &t);
    acceptor_finish(&a, t, raw); /* raw stays open and silent until the acceptor is done */
    CHECK_RC(a.rc, SHOAL_ERR_TIMEOUT, a.err);
    CHECK(a.elapsed >= 0.29 && a.elapsed < 0.3 + SLACK_S);
    CHECK_CONTAINS(a.err, "timed out");
}

/* ---- the initiator against raw acceptors --------------------------------------------------- */

typedef enum { ACC_SILENT, ACC_CLOSE, ACC_HELLO_VERSION, ACC_HELLO_GROUP, ACC_HELLO_KIND,
               ACC_HELLO_MAGIC, ACC_BAD_PROOF } acc_mode;

static void raw_acceptor_case(acc_mode mode, int want_rc, const char *needle) {
    side i;
    pthread_t t;
    int lfd;
    side_init(&i, "key", "g", SHOAL__CONN_MESH, 1, 2, 0);
    i.timeout_s = 0.5;
    int raw = initiator_start(&i, &t, &lfd);
    uint8_t hin[SHOAL__HELLO_SIZE];
    CHECK_RC(shoal__read_full(raw, hin, sizeof hin, shoal__deadline_in(5)), SHOAL_OK, "");
    uint8_t out[SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE];
    memset(out, 0, sizeof out);
    switch (mode) {
    case ACC_SILENT: break;
    case ACC_CLOSE: shutdown(raw, SHUT_RDWR); break;
    default:
        encode_hello(mode == ACC_HELLO_GROUP ? "other" : "g",
                     mode == ACC_HELLO_VERSION ? 9 : SHOAL__PROTOCOL_VERSION,
                     mode == ACC_HELLO_KIND ? SHOAL__CONN_STORE : SHOAL__CONN_MESH, 0, 2, out);
        if (mode == ACC_HELLO_MAGIC) out[0] = 'X';
        CHECK_RC(shoal__write_full(raw, out, sizeof out, shoal__deadline_in(5)), SHOAL_OK, "");
        break;
    }
    pthread_join(t, NULL);
    /* it never sent a proof of its own to an acceptor that failed to prove itself */
    uint8_t b;
    if (mode != ACC_CLOSE)
        CHECK(shoal__read_full(raw, &b, 1, shoal__deadline_in(0.1)) != SHOAL_OK);
    initiator_finish(&i, raw, lfd);
    CHECK_RC(i.rc, want_rc, i.err);
    CHECK_CONTAINS(i.err, needle);
    if (mode == ACC_SILENT) CHECK(i.elapsed >= 0.49 && i.elapsed < 0.5 + SLACK_S);
}

static void test_initiator_checks(void) {
    raw_acceptor_case(ACC_SILENT, SHOAL_ERR_TIMEOUT, "timed out");
    raw_acceptor_case(ACC_CLOSE, SHOAL_ERR_PEER_FAILED, "closed");
    raw_acceptor_case(ACC_HELLO_VERSION, SHOAL_ERR_AUTH, "version");
    raw_acceptor_case(ACC_HELLO_GROUP, SHOAL_ERR_AUTH, "group");
    raw_acceptor_case(ACC_HELLO_KIND, SHOAL_ERR_AUTH, "kind");
    raw_acceptor_case(ACC_HELLO_MAGIC, SHOAL_ERR_PROTOCOL, "magic");
    raw_acceptor_case(ACC_BAD_PROOF, SHOAL_ERR_AUTH, "proof");
}

static void test_verdicts(void) {
    side a, i;
    side_init(&a, "k", "g", SHOAL__CONN_MESH, 0, 2, 0);
    side_init(&i, "k", "g", SHOAL__CONN_MESH, 1, 2, 0);
    a.verdict = SHOAL__VERDICT_RANK_TAKEN;
    run_pair(&a, &i);
    CHECK_RC(a.rc, SHOAL_OK, a.err);
    CHECK_RC(i.rc, SHOAL_ERR_AUTH, i.err);
    CHECK_CONTAINS(i.err, "rank already taken");

    side_init(&a, "k", "g", SHOAL__CONN_MESH, 0, 2, 0);
    side_init(&i, "k", "g", SHOAL__CONN_MESH, 1, 2, 0);
    a.verdict = SHOAL__VERDICT_REFUSED;
    run_pair(&a, &i);
    CHECK_RC(i.rc, SHOAL_ERR_AUTH, i.err);
    CHECK_CONTAINS(i.err, "refused");
}

/* Runs one case and prints its duration, so a slow case shows up in the ctest log. */
static double t_start;
#define RUN(f)                                                                                \
    do {                                                                                      \
        f;                                                                                    \
        fprintf(stderr, "  %-40s %.2fs\n", #f, shoal__now() - t_start);                       \
        t_start = shoal__now();                                                               \
    } while (0)

int main(void) {
    t_start = shoal__now();
    RUN(test_group_id());
    RUN(test_hello_codec());
    RUN(test_addr_parse());
    RUN(test_sockets());
    RUN(test_connect_retry());
    RUN(test_ipv6());
    RUN(test_ok("cluster secret"));
    RUN(test_ok("")); /* an empty key is allowed here; requiring one is the caller's policy */
    RUN(test_version_zero_means_current());
    RUN(test_wrong_key());
    RUN(test_forged_proof());
    RUN(test_acceptor_refusals());
    RUN(test_close_after_hello());
    RUN(test_silent_initiator());
    RUN(test_initiator_checks());
    RUN(test_verdicts());
    return check_report("test_handshake");
}
