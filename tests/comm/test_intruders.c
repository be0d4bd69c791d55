/* Peers that do not belong: while a 3-rank group runs, rank 1 attacks rank 0's store with
 * garbage bytes, a wrong key, a wrong protocol version, an oversized frame after a valid
 * handshake, a process claiming a rank that is taken and one with the wrong key. Each is
 * refused or closed, rank 0 logs the refusals with the address, and the group still works. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>

#include "comm/harness.h"
#include "net/net.h"

static void split_master(const char *master, char *host, uint16_t *port) {
    char err[128];
    CHECK(shoal__addr_parse(master, host, SHOAL__HOST_MAX, port, err, sizeof err) == SHOAL_OK, "%s", err);
}

/* 1 if the server closes the connection (read gives EOF or reset) within 8 s. */
static int closed_by_server(int fd) {
    char buf[256];
    double end = harness_now() + 8;
    while (harness_now() < end) {
        int st = shoal__read_full(fd, buf, 1, harness_now() + 0.5);
        if (st == SHOAL_ERR_PEER_FAILED) return 1;
        if (st == SHOAL_OK) continue; /* e.g. the server's hello: keep reading */
    }
    return 0;
}

static int dial(const char *host, uint16_t port) {
    int fd = -1;
    char err[128];
    CHECK(shoal__tcp_connect(host, port, harness_now() + 5, &fd, err, sizeof err) == SHOAL_OK, "%s", err);
    return fd;
}

static void attack(harness_group *g) {
    char host[SHOAL__HOST_MAX], err[256];
    uint16_t port;
    split_master(g->master, host, &port);
    shoal__auth good = {.key = (const uint8_t *)g->key, .key_len = strlen(g->key)};
    shoal__group_id(g->group, good.group);
    shoal__auth bad = good;
    bad.key = (const uint8_t *)"not the key";
    bad.key_len = 11;

    /* garbage */
    int fd = dial(host, port);
    uint8_t junk[SHOAL__HELLO_SIZE];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    CHECK(shoal__write_full(fd, junk, sizeof junk, harness_now() + 2) == SHOAL_OK, "write junk");
    CHECK(closed_by_server(fd), "garbage was not closed");
    close(fd);

    /* wrong key */
    fd = dial(host, port);
    shoal__hello self = {.version = SHOAL__PROTOCOL_VERSION, .kind = SHOAL__CONN_STORE, .rank = 1,
                         .world_size = 3}, peer;
    memcpy(self.group, good.group, sizeof self.group);
    int st = shoal__handshake_connect(fd, &bad, &self, &peer, harness_now() + 5, err, sizeof err);
    CHECK(st != SHOAL_OK, "wrong key was accepted");
    close(fd);

    /* wrong version */
    fd = dial(host, port);
    shoal__hello v = self;
    v.version = 99;
    uint8_t hb[SHOAL__HELLO_SIZE];
    shoal__hello_encode(&v, hb);
    CHECK(shoal__write_full(fd, hb, sizeof hb, harness_now() + 2) == SHOAL_OK, "write hello");
    CHECK(closed_by_server(fd), "wrong version was not closed");
    close(fd);

    /* valid handshake, then a frame longer than the maximum */
    fd = dial(host, port);
    st = shoal__handshake_connect(fd, &good, &self, &peer, harness_now() + 5, err, sizeof err);
    CHECK(st == SHOAL_OK, "right key refused: %s", err);
    uint8_t hdr[SHOAL__FRAME_HDR_SIZE];
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REQ, .len = (1ull << 40)};
    shoal__frame_encode(&h, hdr);
    CHECK(shoal__write_full(fd, hdr, sizeof hdr, harness_now() + 2) == SHOAL_OK, "write frame");
    CHECK(closed_by_server(fd), "oversized frame was not closed");
    close(fd);
}

typedef struct joiner {
    harness_group *g;
    int rank;
    const char *key;
    int status;
    char err[512];
    double secs;
} joiner;

static void *join_thread(void *arg) {
    joiner *j = arg;
    shoal_comm_config cfg = harness_config(j->g, j->rank);
    if (j->key) {
        cfg.key = j->key;
        cfg.key_len = strlen(j->key);
    }
    cfg.init_timeout_s = 5;
    shoal_comm *c = NULL;
    double t0 = harness_now();
    j->status = shoal_comm_init(&c, &cfg);
    j->secs = harness_now() - t0;
    snprintf(j->err, sizeof j->err, "%s", shoal_comm_init_error());
    if (c) shoal_comm_free(c);
    return NULL;
}

static int body(harness_group *g, int rank, void *arg) {
    char logpath[64];
    snprintf(logpath, sizeof logpath, "/tmp/shoal-intruders-%d.log", (int)getppid());
    if (rank == 0) { /* keep rank 0's log to check the refusals were logged */
        int fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        dup2(fd, 2);
        close(fd);
    }
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.timeout_s = 60;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);
    if (rank == 1) {
        attack(g);
        joiner taken = {g, 2, NULL, 0, "", 0}, wrong = {g, 1, "wrong key", 0, "", 0};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, join_thread, &taken);
        pthread_create(&t2, NULL, join_thread, &wrong);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        CHECK(taken.status != SHOAL_OK && strstr(taken.err, "taken"), "taken rank: %s '%s'",
              shoal_status_str(taken.status), taken.err);
        CHECK(wrong.status != SHOAL_OK, "wrong key joined");
        printf("taken rank: %s (%s, %.2f s); wrong key: %s (%s, %.2f s)\n", shoal_status_str(taken.status),
               taken.err, taken.secs, shoal_status_str(wrong.status), wrong.err, wrong.secs);
    }
    /* the group is unaffected */
    int64_t v = rank + 1, sum = 0;
    CHECK_OK(shoal_allreduce(c, &v, &sum, 1, SHOAL_I64, SHOAL_SUM), c);
    CHECK(sum == 6, "allreduce after attacks: %lld", (long long)sum);
    CHECK_OK(shoal_barrier(c), c);
    shoal_comm_free(c);
    if (rank == 0) {
        FILE *f = fopen(logpath, "r");
        char line[1024];
        int refusals = 0, closed = 0;
        while (f && fgets(line, sizeof line, f)) {
            refusals += strstr(line, "refused") && strstr(line, "127.0.0.1") != NULL;
            closed += strstr(line, "clos") != NULL;
        }
        if (f) fclose(f);
        unlink(logpath);
        CHECK(refusals >= 3, "expected >= 3 logged refusals with the address, saw %d", refusals);
        CHECK(closed >= 1, "expected the oversized frame's close to be logged");
    }
    return 0;
}

int main(void) {
    harness_group g;
    harness_group_init(&g, 3);
    int bad = harness_run(&g, body, NULL, 120, NULL);
    printf("test_intruders: %s\n", bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
