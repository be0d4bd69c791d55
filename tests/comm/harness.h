/* A tiny multi-process test harness: forks n ranks of the calling test (no exec, no launcher),
 * each with its own shoal_comm_config pointing at a fresh loopback master port and a random
 * key, and collects their exit statuses. Used by tests that need ranks to die or misbehave,
 * which `shoal launch` would (rightly) treat as a failed job. Header-only: each test is one file. */
#ifndef SHOAL_TEST_HARNESS_H
#define SHOAL_TEST_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shoal/comm.h"

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

#define CHECK_OK(call, comm)                                                          \
    do {                                                                              \
        int st_ = (call);                                                             \
        CHECK(st_ == SHOAL_OK, "%s -> %s (%s)", #call, shoal_status_str(st_),         \
              (comm) ? shoal_comm_last_error(comm) : shoal_comm_init_error());        \
    } while (0)

static inline double harness_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A loopback port nobody listens on right now. */
static inline int harness_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("free port");
        exit(2);
    }
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

typedef struct harness_group {
    int n;
    char master[64];
    char key[65];
    char group[32];
} harness_group;

static inline void harness_group_init(harness_group *g, int n) {
    g->n = n;
    snprintf(g->master, sizeof g->master, "127.0.0.1:%d", harness_free_port());
    srand((unsigned)(getpid() ^ (unsigned)time(NULL)));
    for (int i = 0; i < 64; i++) g->key[i] = "0123456789abcdef"[rand() % 16];
    g->key[64] = 0;
    snprintf(g->group, sizeof g->group, "test-%d", (int)getpid());
}

/* A config for rank r of g (strings live in g). Runs in the child: with SHOAL_TEST_HOSTS=k
 * the ranks pretend to live on k hosts (rank r on host r % k), so pairs on one "host" use
 * shared memory and the others TCP: a mixed group. */
static inline shoal_comm_config harness_config(harness_group *g, int r) {
    const char *hosts = getenv("SHOAL_TEST_HOSTS");
    if (hosts && atoi(hosts) > 0) {
        char id[32];
        snprintf(id, sizeof id, "test-host-%d", r % atoi(hosts));
        setenv("SHOAL_HOST_ID", id, 1);
    }
    shoal_comm_config cfg = SHOAL_COMM_CONFIG_INIT;
    cfg.rank = r;
    cfg.world_size = g->n;
    cfg.master = g->master;
    cfg.key = g->key;
    cfg.key_len = strlen(g->key);
    cfg.group_id = g->group;
    return cfg;
}

/* Rank r joins g (init deadline 20 s) with the given default timeout; exits on failure. */
static inline shoal_comm *harness_join(harness_group *g, int r, double timeout_s) {
    shoal_comm_config cfg = harness_config(g, r);
    cfg.timeout_s = timeout_s;
    cfg.init_timeout_s = 20;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);
    return c;
}

/* What a survivor must see after rank `dead` died under a call that returned st after dt
 * seconds: PEER_FAILED, before the timeout, naming the dead rank. Exits on failure. */
static inline void harness_expect_peer_failed(shoal_comm *c, int rank, int st, double dt, double timeout_s,
                                              int dead) {
    int who[8] = {-1};
    int nwho = shoal_comm_error_ranks(c, who, 8);
    printf("rank %d: %s after %.3f s: %s\n", rank, shoal_status_str(st), dt, shoal_comm_last_error(c));
    CHECK(st == SHOAL_ERR_PEER_FAILED, "rank %d got %s", rank, shoal_status_str(st));
    CHECK(dt < timeout_s, "took %.2f s, timeout is %.0f s", dt, timeout_s);
    CHECK(nwho >= 1 && who[0] == dead, "error should name rank %d (got %d ranks, first %d)", dead, nwho, who[0]);
}

typedef int (*harness_body)(harness_group *g, int rank, void *arg);

/* Forks g->n children running body(g, rank, arg) and exiting with its result. statuses[] (may
 * be NULL) receives each child's wait status. Kills everything after timeout_s. Returns the
 * number of children that did not exit 0. */
static inline int harness_run(harness_group *g, harness_body body, void *arg, double timeout_s,
                              int *statuses) {
    pid_t pids[64];
    fflush(stdout);
    fflush(stderr);
    for (int r = 0; r < g->n; r++) {
        pids[r] = fork();
        if (pids[r] < 0) {
            perror("fork");
            exit(2);
        }
        if (pids[r] == 0) {
            alarm((unsigned)timeout_s + 5); /* never outlive the test */
            int rc = body(g, r, arg);
            fflush(stdout);
            _exit(rc);
        }
    }
    int bad = 0, left = g->n;
    double end = harness_now() + timeout_s;
    int done[64] = {0};
    while (left > 0) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            for (int r = 0; r < g->n; r++)
                if (pids[r] == p) {
                    done[r] = 1;
                    if (statuses) statuses[r] = st;
                    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
                    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        fprintf(stderr, "rank %d: %s %d\n", r, WIFEXITED(st) ? "exit" : "signal",
                                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                }
            left--;
            continue;
        }
        if (harness_now() > end) {
            for (int r = 0; r < g->n; r++)
                if (!done[r]) {
                    fprintf(stderr, "rank %d: still running after %.0f s, killing\n", r, timeout_s);
                    kill(pids[r], SIGKILL);
                }
            end = 1e300;
        }
        usleep(2000);
    }
    return bad;
}

#endif
