/* Failure and deadline behaviour between real processes:
 *  kill   — a rank SIGKILLs itself in the middle of an all-reduce; every survivor gets
 *           SHOAL_ERR_PEER_FAILED within the configured timeout, naming the dead rank.
 *  init   — a world of 3 where rank 2 never starts: init times out naming rank 2.
 *  stall  — a rank that never joins an all-reduce: the others time out (no hang).
 *  abort  — shoal_comm_abort from another thread unblocks a receive and an all-reduce.
 *  nokey  — a group spanning hosts refuses to start without a cluster key.
 * Usage: test_failure kill|init|stall|abort|nokey */
#include <pthread.h>
#include <stdint.h>

#include "comm/harness.h"

#define TIMEOUT_S 10.0

#define join harness_join

/* Shared segments this process maps (the transport's memfds). */
static int shm_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, "memfd:shoal-shm") != NULL;
    if (f) fclose(f);
    return n;
}

/* Entries in /dev/shm that a shoal process could have left. */
static int dev_shm_leftovers(void) {
    FILE *p = popen("ls /dev/shm 2>/dev/null | grep -c shoal", "r");
    int n = 0;
    if (p && fscanf(p, "%d", &n) != 1) n = 0;
    if (p) pclose(p);
    return n;
}

static int kill_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = join(g, rank, TIMEOUT_S);
    size_t count = 4 << 20; /* 16 MiB of f32: each all-reduce takes a while on loopback */
    float *buf = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) buf[i] = 1.0f;
    CHECK_OK(shoal_allreduce(c, buf, buf, count, SHOAL_F32, SHOAL_SUM), c);
    /* A rank may finish an all-reduce (or a barrier) while its last messages are still on
     * their way: rank 2 dies in the second all-reduce only after every other rank has told it
     * that it is past the first one and a barrier. */
    CHECK_OK(shoal_barrier(c), c);
    int n = shoal_comm_size(c), past = 0;
    if (rank != 2) CHECK_OK(shoal_send(c, &rank, sizeof rank, 2, 77), c);
    for (int k = 0; rank == 2 && k < n - 1; k++) CHECK_OK(shoal_recv(c, &past, sizeof past, SHOAL_ANY_SOURCE, 77, NULL), c);
    shoal_request *r;
    CHECK_OK(shoal_iallreduce(c, buf, buf, count, SHOAL_F32, SHOAL_SUM, &r), c);
    if (rank == 2) {
        usleep(20000); /* let the ring get going, then die mid-transfer */
        kill(getpid(), SIGKILL);
    }
    double t0 = harness_now();
    int st = shoal_wait(r, NULL);
    harness_expect_peer_failed(c, rank, st, harness_now() - t0, TIMEOUT_S, 2);
    CHECK(shoal_comm_peer_failed(c, 2), "rank 2 should be marked failed");
    /* the dead rank's segment is unmapped (with shared memory; none at all over TCP) */
    int maps = shm_mappings();
    const char *tp = getenv("SHOAL_TRANSPORT");
    int want = tp && !strcmp(tp, "tcp") ? 0 : 2;
    CHECK(maps == want, "%d shared segments mapped after the failure, want %d", maps, want);
    CHECK(dev_shm_leftovers() == 0, "shoal entries in /dev/shm");
    /* Operations with the dead rank fail at once; the survivors can still talk to each other. */
    int v = 1;
    CHECK(shoal_send(c, &v, sizeof v, 2, 1) == SHOAL_ERR_PEER_FAILED, "send to the dead rank");
    int peer = rank == 0 ? 1 : 0;
    if (rank <= 1) {
        int got = 0;
        shoal_request *s;
        CHECK_OK(shoal_isend(c, &rank, sizeof rank, peer, 2, &s), c);
        CHECK_OK(shoal_recv(c, &got, sizeof got, peer, 2, NULL), c);
        CHECK_OK(shoal_wait(s, NULL), c);
        CHECK(got == peer, "survivor p2p");
    }
    shoal_comm_free(c);
    free(buf);
    return 0;
}

static int init_body(harness_group *g, int rank, void *arg) {
    if (rank == 2) return 0; /* never starts */
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.init_timeout_s = 2;
    shoal_comm *c = NULL;
    double t0 = harness_now();
    int st = shoal_comm_init(&c, &cfg);
    double dt = harness_now() - t0;
    printf("rank %d: init %s after %.2f s: %s\n", rank, shoal_status_str(st), dt, shoal_comm_init_error());
    CHECK(st == SHOAL_ERR_TIMEOUT && c == NULL, "init gave %s", shoal_status_str(st));
    CHECK(dt < 8, "init took %.2f s with a 2 s deadline", dt);
    CHECK(strstr(shoal_comm_init_error(), "2"), "error should name rank 2: %s", shoal_comm_init_error());
    return 0;
}

/* A group whose master is on another host must not start without a key. The check comes
 * before any connection: the address (TEST-NET-1, RFC 5737) is never contacted. */
static int nokey_check(void) {
    shoal_comm_config cfg = SHOAL_COMM_CONFIG_INIT;
    cfg.rank = 1;
    cfg.world_size = 2;
    cfg.master = "192.0.2.1:29500";
    cfg.key = "";
    cfg.key_len = 0;
    cfg.init_timeout_s = 2;
    shoal_comm *c = NULL;
    double t0 = harness_now();
    int st = shoal_comm_init(&c, &cfg);
    printf("multi-host without a key: %s (%s)\n", shoal_status_str(st), shoal_comm_init_error());
    CHECK(st == SHOAL_ERR_AUTH && c == NULL && strstr(shoal_comm_init_error(), "key"), "init gave %s",
          shoal_status_str(st));
    CHECK(harness_now() - t0 < 1, "refusal took %.2f s: it must not try to connect", harness_now() - t0);
    return 0;
}

static int stall_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = join(g, rank, 1.0);
    int v = rank, out = 0;
    if (rank == 2) {
        usleep(2500000); /* absent from the collective until the others gave up */
        shoal_comm_free(c);
        return 0;
    }
    double t0 = harness_now();
    int st = shoal_allreduce(c, &v, &out, 1, SHOAL_I32, SHOAL_SUM);
    double dt = harness_now() - t0;
    int who[8];
    int nwho = shoal_comm_error_ranks(c, who, 8);
    printf("rank %d: %s after %.2f s: %s\n", rank, shoal_status_str(st), dt, shoal_comm_last_error(c));
    CHECK(st == SHOAL_ERR_TIMEOUT, "got %s", shoal_status_str(st));
    CHECK(nwho >= 1, "timeout names no rank");
    CHECK(dt < 5, "took %.2f s with a 1 s timeout", dt);
    shoal_comm_free(c);
    return 0;
}

typedef struct aborter {
    shoal_comm *c;
    double delay;
} aborter;

static void *abort_later(void *arg) {
    aborter *a = arg;
    usleep((useconds_t)(a->delay * 1e6));
    shoal_comm_abort(a->c);
    return NULL;
}

static int abort_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = join(g, rank, 60);
    shoal_comm *sub = NULL;
    CHECK_OK(shoal_comm_split(c, 0, rank, &sub), c);
    if (rank == 0) {
        /* a receive nobody answers, and an all-reduce rank 1 never joins */
        pthread_t t;
        aborter a = {c, 0.3};
        pthread_create(&t, NULL, abort_later, &a);
        int v;
        double t0 = harness_now();
        int st = shoal_recv(c, &v, sizeof v, 1, 5, NULL);
        double dt = harness_now() - t0;
        pthread_join(t, NULL);
        CHECK(st == SHOAL_ERR_ABORTED && dt < 3, "recv after abort: %s in %.2f s", shoal_status_str(st), dt);
        st = shoal_allreduce(c, &v, &v, 1, SHOAL_I32, SHOAL_SUM);
        CHECK(st == SHOAL_ERR_ABORTED, "later call on an aborted group: %s", shoal_status_str(st));
        /* the sub-group of an aborted group is aborted too */
        st = shoal_allreduce(sub, &v, &v, 1, SHOAL_I32, SHOAL_SUM);
        CHECK(st == SHOAL_ERR_ABORTED, "sub-group call: %s", shoal_status_str(st));
        printf("rank 0: abort ok\n");
    } else {
        usleep(1500000);
    }
    shoal_comm_free(sub);
    shoal_comm_free(c);
    return 0;
}

static int abort_coll_body(harness_group *g, int rank, void *arg) {
    shoal_comm *c = join(g, rank, 60);
    if (rank == 0) {
        pthread_t t;
        aborter a = {c, 0.3};
        pthread_create(&t, NULL, abort_later, &a);
        float buf[1000] = {0};
        double t0 = harness_now();
        int st = shoal_allreduce(c, buf, buf, 1000, SHOAL_F32, SHOAL_SUM);
        double dt = harness_now() - t0;
        pthread_join(t, NULL);
        CHECK(st == SHOAL_ERR_ABORTED && dt < 3, "allreduce after abort: %s in %.2f s",
              shoal_status_str(st), dt);
        printf("rank 0: abort of all-reduce ok\n");
    } else {
        usleep(1500000);
    }
    shoal_comm_free(c);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "kill";
    harness_group g;
    int statuses[8] = {0};
    int bad;
    if (!strcmp(mode, "kill")) {
        harness_group_init(&g, 4);
        harness_run(&g, kill_body, NULL, 60, statuses);
        bad = 0;
        for (int r = 0; r < 4; r++) {
            int ok = r == 2 ? (WIFSIGNALED(statuses[r]) && WTERMSIG(statuses[r]) == SIGKILL)
                            : (WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0);
            if (!ok) bad++;
        }
    } else if (!strcmp(mode, "init")) {
        harness_group_init(&g, 3);
        bad = harness_run(&g, init_body, NULL, 30, NULL);
    } else if (!strcmp(mode, "nokey")) {
        bad = nokey_check();
    } else if (!strcmp(mode, "stall")) {
        harness_group_init(&g, 3);
        bad = harness_run(&g, stall_body, NULL, 30, NULL);
    } else if (!strcmp(mode, "abort")) {
        harness_group_init(&g, 2);
        bad = harness_run(&g, abort_body, NULL, 30, NULL);
        harness_group_init(&g, 2);
        bad += harness_run(&g, abort_coll_body, NULL, 30, NULL);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("test_failure %s: %s\n", mode, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
