/* The worker pool with real processes. This binary is both leader and worker ("worker" as
 * first argument makes it a worker, as `shoal worker` would).
 *   spawn N — spawn N local workers, ping all, shut down: every worker exits 0 and no process
 *             is left (the process table is checked);
 *   kill    — a worker is SIGKILLed: ping names it (peer failed), reap reports signal 9, the
 *             others keep answering;
 *   leader  — the leader is SIGKILLed: every worker notices and exits by itself;
 *   join    — workers join a listening leader with --join and the key; one with a wrong key
 *             is refused. */
#include <dirent.h>
#include <errno.h>
#include <sys/prctl.h>

#include "comm/harness.h"
#include "shoal/pool.h"

static int worker_main(int argc, char **argv) {
    shoal_worker_config wc = SHOAL_WORKER_CONFIG_INIT;
    if (argc > 3 && !strcmp(argv[2], "--join")) wc.join = argv[3];
    return shoal_worker_run(&wc);
}

/* pids of this process's children, from /proc */
static int children(int *pids, int max) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == getpid() && n < max) pids[n++] = pid;
    }
    if (d) closedir(d);
    return n;
}

static void worker_pids(shoal_pool *p, int *pids) {
    for (int w = 1; w <= shoal_pool_workers(p); w++) {
        void *rep = NULL;
        size_t len = 0;
        CHECK_OK(shoal_rpc_call(shoal_pool_rpc(p), w, "shoal.ping", NULL, 0, &rep, &len, 10), NULL);
        CHECK(len == 4, "ping reply of %zu bytes", len);
        pids[w] = *(int32_t *)rep;
        free(rep);
    }
}

static shoal_pool *start(int n, int orphans_die) {
    shoal_pool_config pc = SHOAL_POOL_CONFIG_INIT;
    pc.workers = n;
    pc.heartbeat_interval_s = 0.2;
    pc.heartbeat_timeout_s = 1.0;
    pc.orphans_die = orphans_die;
    shoal_pool *p = NULL;
    int st = shoal_pool_start(&p, &pc);
    CHECK(st == SHOAL_OK, "pool start: %s (%s)", shoal_status_str(st), shoal_pool_start_error());
    return p;
}

static int t_spawn(int n) {
    shoal_pool *p = start(n, 1);
    int pids[64];
    worker_pids(p, pids);
    double rtt = 0;
    CHECK_OK(shoal_pool_ping(p, 10, &rtt), shoal_pool_comm(p));
    printf("pool of %d: ping of all in %.0f us\n", n, rtt * 1e6);
    int kids[128];
    CHECK(children(kids, 128) == n, "expected %d worker processes, see %d", n, children(kids, 128));
    int clean = 0;
    CHECK_OK(shoal_pool_shutdown(p, 10, &clean), NULL);
    CHECK(clean, "a worker did not exit 0");
    for (int w = 1; w <= n; w++) CHECK(kill(pids[w], 0) < 0 && errno == ESRCH, "worker %d (pid %d) still exists", w, pids[w]);
    CHECK(children(kids, 128) == 0, "%d child processes left", children(kids, 128));
    return 0;
}

static int t_kill(void) {
    shoal_pool *p = start(3, 1);
    int pids[8];
    worker_pids(p, pids);
    kill(pids[2], SIGKILL);
    double t0 = harness_now();
    int st = shoal_pool_ping(p, 10, NULL);
    int who[4];
    int nwho = shoal_comm_error_ranks(shoal_pool_comm(p), who, 4);
    CHECK(st == SHOAL_ERR_PEER_FAILED && nwho == 1 && who[0] == 2, "ping after kill: %s, %d ranks, %s", shoal_status_str(st),
          nwho, shoal_comm_last_error(shoal_pool_comm(p)));
    CHECK(harness_now() - t0 < 2.5, "took %.2f s", harness_now() - t0);
    shoal_worker_exit ex[4];
    int got = 0;
    for (int i = 0; i < 200 && !got; i++) {
        got = shoal_pool_reap(p, ex, 4);
        if (!got) usleep(10000);
    }
    CHECK(got == 1 && ex[0].rank == 2 && ex[0].signal == SIGKILL && ex[0].pid == pids[2], "reap: %d, rank %d sig %d",
          got, got ? ex[0].rank : -1, got ? ex[0].signal : -1);
    CHECK(shoal_pool_reap(p, ex, 4) == 0, "reported twice");
    /* the others still answer */
    for (int w = 1; w <= 3; w++) {
        if (w == 2) continue;
        CHECK_OK(shoal_rpc_call(shoal_pool_rpc(p), w, "shoal.ping", NULL, 0, NULL, NULL, 5), NULL);
    }
    int clean = 1;
    CHECK_OK(shoal_pool_shutdown(p, 10, &clean), NULL);
    CHECK(!clean, "a killed worker cannot be a clean shutdown");
    int kids[16];
    CHECK(children(kids, 16) == 0, "child processes left");
    return 0;
}

static int t_leader(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphaned workers come back to us, to be checked */
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t leader = fork();
    if (leader == 0) {
        shoal_pool *p = start(3, 0); /* no PDEATHSIG: the workers must notice on their own */
        int pids[8];
        worker_pids(p, pids);
        CHECK(write(fds[1], &pids[1], 3 * sizeof(int)) == 3 * sizeof(int), "write pids");
        for (;;) pause();
    }
    int pids[3];
    CHECK(read(fds[0], pids, sizeof pids) == sizeof pids, "read pids");
    kill(leader, SIGKILL);
    waitpid(leader, NULL, 0);
    double t0 = harness_now();
    for (int i = 0; i < 3; i++) {
        int ws = 0;
        pid_t r;
        while ((r = waitpid(pids[i], &ws, WNOHANG)) == 0 && harness_now() - t0 < 10) usleep(10000);
        CHECK(r == pids[i], "worker pid %d did not exit after the leader died", pids[i]);
        CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 3, "worker exit status %d", ws);
    }
    printf("workers exited %.2f s after the leader was killed\n", harness_now() - t0);
    CHECK(harness_now() - t0 < 1.0 + 0.2 + 1.0, "too slow");
    return 0;
}

static pid_t spawn_joiner(const char *self, const char *master, const char *key) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SHOAL_CLUSTER_KEY", key, 1);
        setenv("SHOAL_INIT_TIMEOUT", "10", 1);
        execl(self, self, "worker", "--join", master, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int t_join(const char *self) {
    char master[64];
    snprintf(master, sizeof master, "127.0.0.1:%d", harness_free_port());
    const char *key = "a shared secret for this test";
    pid_t good[2], bad;
    bad = spawn_joiner(self, master, "the wrong secret");
    good[0] = spawn_joiner(self, master, key);
    good[1] = spawn_joiner(self, master, key);
    shoal_pool_config pc = SHOAL_POOL_CONFIG_INIT;
    pc.workers = 2;
    pc.listen = master;
    pc.cluster_key = key;
    pc.join_timeout_s = 20;
    shoal_pool *p = NULL;
    int st = shoal_pool_start(&p, &pc);
    CHECK(st == SHOAL_OK, "pool start: %s (%s)", shoal_status_str(st), shoal_pool_start_error());
    CHECK_OK(shoal_pool_ping(p, 10, NULL), shoal_pool_comm(p));
    int ws;
    CHECK(waitpid(bad, &ws, 0) == bad && WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "wrong-key worker status %d", ws);
    int clean = 0;
    CHECK_OK(shoal_pool_shutdown(p, 10, &clean), NULL);
    for (int i = 0; i < 2; i++)
        CHECK(waitpid(good[i], &ws, 0) == good[i] && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "joined worker status %d", ws);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "worker")) return worker_main(argc, argv);
    const char *mode = argc > 1 ? argv[1] : "spawn";
    alarm(120);
    int rc;
    if (!strcmp(mode, "spawn")) rc = t_spawn(argc > 2 ? atoi(argv[2]) : 8);
    else if (!strcmp(mode, "kill")) rc = t_kill();
    else if (!strcmp(mode, "leader")) rc = t_leader();
    else if (!strcmp(mode, "join")) rc = t_join(argv[0]);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("test_pool %s: %s\n", mode, rc ? "FAILED" : "ok");
    return rc;
}
