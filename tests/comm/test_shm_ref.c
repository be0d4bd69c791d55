/* The same-host single-copy paths between real processes:
 *  p2p    — large messages read straight from the sender (DATA_REF, rendezvous): receive
 *           posted first, posted late (the message waits in the sender), both ranks sending
 *           before receiving (the sender's nudge must keep that from hanging), truncation,
 *           any-source, out-of-order tags, a stream of mixed sizes in both directions. With
 *           SHOAL_SHM_CMA=0 the same traffic takes the rings (the test then expects "shm").
 *           Also: a waiting sender helps copy its message (cooperative copy), unless
 *           SHOAL_SHM_COOP=0, single copy is off or the host is oversubscribed.
 *  kill   — a rank SIGKILLed during a large blocking all-reduce (read from the peers'
 *           buffers) and during a DATA_REF it never receives: the survivors get
 *           SHOAL_ERR_PEER_FAILED naming it, before the timeout.
 *  coopkill-sender, coopkill-receiver — 2 ranks moving large messages one way; the sender
 *           (helping) or the receiver is SIGKILLed in the middle: the survivor gets
 *           SHOAL_ERR_PEER_FAILED, before the timeout.
 * Usage: test_shm_ref p2p|kill|coopkill-sender|coopkill-receiver NRANKS */
#include <pthread.h>
#include <stdint.h>

#include "comm/comm_core.h"
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

static int env_off(const char *name) {
    const char *v = getenv(name);
    return v && !strcmp(v, "0");
}

/* Bytes this rank wrote into its receivers' buffers while it waited (shm_coop.c). */
static uint64_t helped_bytes(shoal_comm *c) {
    pthread_mutex_lock(&c->mesh->mu);
    uint64_t b = c->mesh->coop_helped;
    pthread_mutex_unlock(&c->mesh->mu);
    return b;
}

/* One direction, the receive posted first, so the sender waits: it should help copy. A run
 * where the receiver took every chunk itself (the sender was descheduled) is repeated; never
 * helping in 20 runs means it does not. Where help is off, it must never happen. */
static void check_coop(shoal_comm *c, int rank, int peer, uint8_t *in, size_t big) {
    int want = !env_off("SHOAL_SHM_CMA") && !env_off("SHOAL_SHM_COOP") && !c->mesh->oversubscribed;
    int sender = rank > peer, helped = 0;
    for (int attempt = 0; attempt < (want ? 20 : 3) && !helped; attempt++) {
        uint8_t *out = filled(rank, 200 + attempt, big);
        if (sender) {
            CHECK_OK(shoal_recv(c, NULL, 0, peer, 299, NULL), c); /* the receive is posted */
            CHECK_OK(shoal_send(c, out, big, peer, 200 + attempt), c);
            helped = helped_bytes(c) > 0;
            CHECK_OK(shoal_send(c, &helped, sizeof helped, peer, 298), c);
        } else {
            shoal_request *rr;
            memset(in, 0, big);
            CHECK_OK(shoal_irecv(c, in, big, peer, 200 + attempt, &rr), c);
            CHECK_OK(shoal_send(c, NULL, 0, peer, 299), c);
            CHECK_OK(shoal_wait(rr, NULL), c);
            check_bytes(in, peer, 200 + attempt, big, "cooperative copy");
            CHECK_OK(shoal_recv(c, &helped, sizeof helped, peer, 298, NULL), c);
        }
        free(out);
    }
    CHECK(helped == want, "the waiting sender %s (expected %s)", helped ? "helped" : "never helped",
          want ? "help" : "none");
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
        /* 7: the waiting sender helps */
        check_coop(c, rank, peer, in, big);
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

/* This process SIGKILLs itself us microseconds from now, whatever it is doing then. */
static void die_in(int us) {
    static int delay_us;
    delay_us = us;
    pthread_t t;
    pthread_create(&t, NULL, die_soon, &delay_us);
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
        die_in(3000);
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

/* arg: 1 if the sender dies, 0 if the receiver does. Rank 1 is the victim; messages go one
 * way, each long enough that death comes in the middle of one, while both sides copy. */
static int coop_kill_body(harness_group *g, int rank, void *arg) {
    int sender_dies = *(int *)arg, victim = 1, sender = sender_dies ? victim : 1 - victim;
    shoal_comm *c = harness_join(g, rank, TIMEOUT_S);
    size_t len = 64u << 20;
    uint8_t *buf = filled(rank, 1, len);
    CHECK_OK(shoal_barrier(c), c);
    if (rank == victim) die_in(20000);
    int st = SHOAL_OK;
    double t0 = 0;
    for (int it = 0; it < 100000 && st == SHOAL_OK; it++) {
        t0 = harness_now();
        st = rank == sender ? shoal_send(c, buf, len, 1 - rank, 5) : shoal_recv(c, buf, len, 1 - rank, 5, NULL);
    }
    harness_expect_peer_failed(c, rank, st, harness_now() - t0, TIMEOUT_S, victim);
    shoal_comm_free(c);
    free(buf);
    return 0;
}

/* Runs body; rank n-1 must die of SIGKILL and every other rank exit 0. */
static int run_with_victim(harness_group *g, harness_body body, void *arg, int n) {
    int statuses[64];
    harness_run(g, body, arg, 60, statuses);
    int bad = 0;
    for (int r = 0; r < n; r++) {
        int killed = WIFSIGNALED(statuses[r]) && WTERMSIG(statuses[r]) == SIGKILL;
        int ok = r == n - 1 ? killed : WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0;
        if (!ok) fprintf(stderr, "rank %d ended wrongly\n", r);
        bad += !ok;
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "p2p";
    int n = argc > 2 ? atoi(argv[2]) : 2;
    harness_group g;
    harness_group_init(&g, n);
    if (!strcmp(mode, "p2p")) return harness_run(&g, p2p_body, NULL, 120, NULL) ? 1 : 0;
    if (!strcmp(mode, "kill")) return run_with_victim(&g, kill_body, NULL, n);
    int sender_dies = !strcmp(mode, "coopkill-sender");
    if ((sender_dies || !strcmp(mode, "coopkill-receiver")) && n == 2)
        return run_with_victim(&g, coop_kill_body, &sender_dies, n);
    fprintf(stderr, "usage: test_shm_ref p2p|kill NRANKS | coopkill-sender|coopkill-receiver 2\n");
    return 2;
}
