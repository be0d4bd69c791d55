/* Failure detection by heartbeats and connection loss, seen through remote calls:
 *  kill — a worker is SIGKILLed while rank 0 has a call pending on it;
 *  stop — a worker is SIGSTOPped (alive but silent) while a call is pending.
 * Rank 0's pending call must fail with SHOAL_ERR_PEER_FAILED within heartbeat timeout + one
 * interval, the failure callback must fire, and the failed set must name the rank.
 * Usage: test_health kill|stop */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "comm/harness.h"
#include "shoal/rpc.h"

#define HB_INTERVAL 0.2
#define HB_TIMEOUT 1.0

static atomic_int callback_rank = -1;

static void on_failure(void *user, int rank, const char *why) {
    atomic_store(&callback_rank, rank);
    printf("failure callback: rank %d: %s\n", rank, why);
}

static int h_hang(void *user, int caller, const void *args, size_t len, void **reply,
                  size_t *reply_len, char *err, size_t errcap) {
    usleep(30 * 1000000); /* longer than the test: only a failure ends the caller's wait */
    return SHOAL_OK;
}

static int h_pid(void *user, int caller, const void *args, size_t len, void **reply,
                 size_t *reply_len, char *err, size_t errcap) {
    int *p = malloc(sizeof *p);
    *p = (int)getpid();
    *reply = p;
    *reply_len = sizeof *p;
    return SHOAL_OK;
}

static int body(harness_group *g, int rank, void *arg) {
    int stop = *(int *)arg;
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.timeout_s = 30;
    cfg.heartbeat_interval_s = HB_INTERVAL;
    cfg.heartbeat_timeout_s = HB_TIMEOUT;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);
    shoal_rpc *rpc = NULL;
    CHECK_OK(shoal_rpc_create(&rpc, c, NULL), c);
    CHECK_OK(shoal_rpc_register(rpc, "hang", h_hang, NULL), NULL);
    CHECK_OK(shoal_rpc_register(rpc, "pid", h_pid, NULL), NULL);
    CHECK_OK(shoal_comm_on_failure(c, on_failure, NULL), c);
    CHECK_OK(shoal_barrier(c), c);
    if (rank == 2) { /* the victim: serve until killed or stopped */
        for (;;) pause();
    }
    if (rank == 1) { /* a bystander: stays up until rank 0 is done */
        int v;
        CHECK_OK(shoal_recv(c, &v, sizeof v, 0, 1, NULL), c);
        shoal_rpc_free(rpc);
        shoal_comm_free(c);
        return 0;
    }
    void *rep = NULL;
    size_t rl = 0;
    CHECK_OK(shoal_rpc_call(rpc, 2, "pid", NULL, 0, &rep, &rl, 5), NULL);
    int victim = *(int *)rep;
    free(rep);
    shoal_future *f;
    CHECK_OK(shoal_rpc_call_async(rpc, 2, "hang", NULL, 0, 30, &f), NULL);
    usleep(300000);
    double t0 = harness_now();
    kill(victim, stop ? SIGSTOP : SIGKILL);
    int st = shoal_future_wait(f, NULL, NULL);
    double dt = harness_now() - t0;
    printf("pending call after %s: %s in %.2f s (%s)\n", stop ? "SIGSTOP" : "SIGKILL", shoal_status_str(st), dt,
           shoal_rpc_last_error(rpc));
    CHECK(st == SHOAL_ERR_PEER_FAILED, "pending call: %s", shoal_status_str(st));
    CHECK(dt < HB_TIMEOUT + HB_INTERVAL + 0.5, "detected after %.2f s (timeout %.1f + interval %.1f)", dt,
          HB_TIMEOUT, HB_INTERVAL);
    int failed[4];
    CHECK(shoal_comm_failed_ranks(c, failed, 4) == 1 && failed[0] == 2, "failed set");
    for (int i = 0; i < 100 && atomic_load(&callback_rank) < 0; i++) usleep(10000);
    CHECK(atomic_load(&callback_rank) == 2, "callback said %d", atomic_load(&callback_rank));
    /* later calls and collectives involving rank 2 fail at once */
    CHECK(shoal_rpc_call(rpc, 2, "pid", NULL, 0, NULL, NULL, 5) == SHOAL_ERR_PEER_FAILED, "call to dead rank");
    CHECK(shoal_barrier(c) == SHOAL_ERR_PEER_FAILED, "barrier with a dead rank");
    if (stop) kill(victim, SIGKILL);
    int v = 1;
    CHECK_OK(shoal_send(c, &v, sizeof v, 1, 1), c);
    shoal_rpc_free(rpc);
    shoal_comm_free(c);
    return 0;
}

int main(int argc, char **argv) {
    int stop = argc > 1 && !strcmp(argv[1], "stop");
    harness_group g;
    harness_group_init(&g, 3);
    int statuses[3];
    harness_run(&g, body, &stop, 60, statuses);
    int bad = !(WIFEXITED(statuses[0]) && WEXITSTATUS(statuses[0]) == 0) ||
              !(WIFEXITED(statuses[1]) && WEXITSTATUS(statuses[1]) == 0) ||
              !(WIFSIGNALED(statuses[2]) && WTERMSIG(statuses[2]) == SIGKILL);
    printf("test_health %s: %s\n", stop ? "stop" : "kill", bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
