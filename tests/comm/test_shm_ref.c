/* The same-host single-copy paths between real processes:
 *  p2p    — large messages read straight from the sender (DATA_REF, rendezvous): receive
 *           posted first, posted late (the message waits in the sender), both ranks sending
 *           before receiving (the sender's nudge must keep that from hanging), truncation,
 *           any-source, out-of-order tags, a stream of mixed sizes in both directions. With
 *           SHOAL_SHM_CMA=0 the same traffic takes the rings (the test then expects "shm").
 *  kill   — a rank SIGKILLed during a large blocking all-reduce (read from the peers'
 *           buffers) and during a DATA_REF it never receives: the survivors get
 *           SHOAL_ERR_PEER_FAILED naming it, before the timeout.
 * Usage: test_shm_ref p2p|kill NRANKS */
#include <pthread.h>
#include <stdint.h>

#include "comm/harness.h"

#define TIMEOUT_S 20.0


/* Byte i of message `id` from rank src: every message distinct, every byte checked. */
static uint8_t pattern(int src, int id, size_t i) { return (uint8_t)(i * 131u + (unsigned)id * 7u + (unsigned)src * 61u + (i >> 12)); }

static uint8_t *filled(int src, int id, size_t len) {
    uint8_t *b = malloc(len ? len : 1);
    CHECK(b, "out of memory");
    for (size_t i = 0; i < len; i++) b[i] = pattern(src, id, i);
    return b;
}

static void check_bytes(const uint8_t *b, int src, int id, size_t len, const char *what) {
    for (size_t i = 0; i < len; i++)
        CHECK(b[i] == pattern(src, id, i), "%s: byte %zu of message %d from %d is %u, want %u", what, i, id, src, b[i],
              pattern(src, id, i));
}

static void expect_transport(shoal_comm *c, int peer) {
    const char *cma = getenv("SHOAL_SHM_CMA");
    const char *want = cma && !strcmp(cma, "0") ? "shm" : "shm+cma";
    const char *got = shoal_comm_transport(c, peer);
    CHECK(got && !strcmp(got, want), "transport to rank %d is %s, want %s", peer, got ? got : "NULL", want);
}

static int p2p_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = harness_join(g, rank, TIMEOUT_S);
    int n = shoal_comm_size(c);
    for (int p = 0; p < n; p++)
        if (p != rank) expect_transport(c, p);
    CHECK(!strcmp(shoal_comm_transport(c, rank), "self") && !shoal_comm_transport(c, n), "self / bad rank");
    int peer = rank ^ 1;
    if (peer < n) {
        const size_t big = 8u << 20;
        uint8_t *in = malloc(big);
        /* 1: receive posted first */
        uint8_t *out = filled(rank, 1, big);
        shoal_request *rr;
        CHECK_OK(shoal_irecv(c, in, big, peer, 1, &rr), c);
        CHECK_OK(shoal_barrier(c), c);
        CHECK_OK(shoal_send(c, out, big, peer, 1), c);
        shoal_msg_info info;
        CHECK_OK(shoal_wait(rr, &info), c);
        CHECK(info.bytes == big && info.source == peer && info.tag == 1, "info");
        check_bytes(in, peer, 1, big, "posted first");
        free(out);
        /* 2: both send first, then receive (eager code must not hang) */
        out = filled(rank, 2, big);
        CHECK_OK(shoal_send(c, out, big, peer, 2), c);
        memset(in, 0, big);
        CHECK_OK(shoal_recv(c, in, big, peer, 2, NULL), c);
        check_bytes(in, peer, 2, big, "head to head");
        free(out);
        /* 3: the receive comes late; the sender overwrites its buffer only after its send is done */
        out = filled(rank, 3, big);
        shoal_request *s;
        CHECK_OK(shoal_isend(c, out, big, peer, 3, &s), c);
        usleep(50000);
        memset(in, 0, big);
        CHECK_OK(shoal_recv(c, in, big, peer, 3, NULL), c);
        CHECK_OK(shoal_wait(s, NULL), c);
        memset(out, 0xEE, big);
        check_bytes(in, peer, 3, big, "late receive");
        free(out);
        /* 4: truncation: the first bytes arrive, the status says so */
        out = filled(rank, 4, big);
        memset(in, 0, big);
        CHECK_OK(shoal_isend(c, out, big, peer, 4, &s), c);
        int st = shoal_recv(c, in, big / 2, peer, 4, &info);
        CHECK(st == SHOAL_ERR_TRUNCATED, "truncated receive gave %s", shoal_status_str(st));
        check_bytes(in, peer, 4, big / 2, "truncated");
        CHECK(in[big / 2] == 0, "wrote past the receive buffer");
        CHECK_OK(shoal_wait(s, NULL), c);
        free(out);
        /* 5: any source, and tags received in the opposite order of sending */
        enum { K = 6 };
        uint8_t *outs[K], *ins[K];
        shoal_request *sends[K], *recvs[K];
        for (int k = 0; k < K; k++) {
            size_t len = (size_t)(64u << 10) << (k % 4); /* 64 KiB .. 512 KiB */
            outs[k] = filled(rank, 10 + k, len);
            ins[k] = malloc(len);
            CHECK_OK(shoal_isend(c, outs[k], len, peer, 10 + k, &sends[k]), c);
        }
        for (int k = K - 1; k >= 0; k--) {
            size_t len = (size_t)(64u << 10) << (k % 4);
            CHECK_OK(shoal_irecv(c, ins[k], len, k % 2 ? SHOAL_ANY_SOURCE : peer, 10 + k, &recvs[k]), c);
        }
        for (int k = 0; k < K; k++) {
            size_t len = (size_t)(64u << 10) << (k % 4);
            CHECK_OK(shoal_wait(recvs[k], &info), c);
            CHECK(info.source == peer && info.bytes == len, "message %d: source %d bytes %zu", k, info.source, info.bytes);
            check_bytes(ins[k], peer, 10 + k, len, "out of order");
            CHECK_OK(shoal_wait(sends[k], NULL), c);
            free(outs[k]);
            free(ins[k]);
        }
        /* 6: a stream of sizes around the threshold, both directions at once */
        for (int k = 0; k < 40; k++) {
            size_t len = (size_t)(1 + (k * 7919) % (300u << 10));
            out = filled(rank, 100 + k, len);
            CHECK_OK(shoal_isend(c, out, len, peer, 100 + k, &s), c);
            CHECK_OK(shoal_recv(c, in, big, peer, 100 + k, &info), c);
            CHECK(info.bytes == len, "stream %d: %zu bytes, want %zu", k, info.bytes, len);
            check_bytes(in, peer, 100 + k, len, "stream");
            CHECK_OK(shoal_wait(s, NULL), c);
            free(out);
        }
        free(in);
    }
    CHECK_OK(shoal_barrier(c), c);
    shoal_comm_free(c);
    return 0;
}

static void *die_soon(void *arg) {
    usleep(*(int *)arg);
    kill(getpid(), SIGKILL);
    return NULL;
}

static int kill_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = harness_join(g, rank, TIMEOUT_S);
    int n = shoal_comm_size(c), victim = n - 1;
    size_t count = 16u << 20; /* 64 MiB of f32: long enough to die in the middle */
    float *buf = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) buf[i] = 1.0f;
    CHECK_OK(shoal_allreduce(c, buf, buf, count, SHOAL_F32, SHOAL_SUM), c);
    CHECK(buf[0] == (float)n && buf[count - 1] == (float)n, "first all-reduce: %g", buf[0]);
    CHECK_OK(shoal_barrier(c), c);
    if (rank == victim) {
        /* a DATA_REF to rank 0 that is never received, then death during the all-reduce */
        shoal_request *s;
        CHECK_OK(shoal_isend(c, filled(rank, 9, 1u << 20), 1u << 20, 0, 9, &s), c);
        pthread_t t;
        static int delay_us = 3000;
        pthread_create(&t, NULL, die_soon, &delay_us);
    }
    /* all-reduce until the victim is gone: it dies inside one (or between two) */
    int st = SHOAL_OK;
    double t0 = 0;
    for (int it = 0; it < 100000 && st == SHOAL_OK; it++) {
        t0 = harness_now();
        st = shoal_allreduce(c, buf, buf, count / 4, SHOAL_F32, SHOAL_SUM);
    }
    harness_expect_peer_failed(c, rank, st, harness_now() - t0, TIMEOUT_S, victim);
    if (rank == 0) {
        /* the message the victim left behind: taken whole before it died (its sender asks
         * for that after a while), or gone with it */
        st = shoal_recv(c, buf, 1u << 20, victim, 9, NULL);
        CHECK(st == SHOAL_OK || st == SHOAL_ERR_PEER_FAILED, "receive from the dead rank gave %s", shoal_status_str(st));
        if (st == SHOAL_OK) check_bytes((const uint8_t *)buf, victim, 9, 1u << 20, "left behind");
    }
    shoal_comm_free(c);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "p2p";
    int n = argc > 2 ? atoi(argv[2]) : 2;
    harness_group g;
    harness_group_init(&g, n);
    if (!strcmp(mode, "p2p")) return harness_run(&g, p2p_body, NULL, 120, NULL) ? 1 : 0;
    if (!strcmp(mode, "kill")) {
        int statuses[64];
        harness_run(&g, kill_body, NULL, 60, statuses);
        int bad = 0;
        for (int r = 0; r < n; r++) {
            int killed = WIFSIGNALED(statuses[r]) && WTERMSIG(statuses[r]) == SIGKILL;
            int ok = r == n - 1 ? killed : WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0;
            if (!ok) fprintf(stderr, "rank %d ended wrongly\n", r);
            bad += !ok;
        }
        return bad ? 1 : 0;
    }
    fprintf(stderr, "usage: test_shm_ref p2p|kill NRANKS\n");
    return 2;
}
