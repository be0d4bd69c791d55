/* Remote calls between real processes: 8 threads on each of 4 ranks calling every rank
 * concurrently with random reply sizes and delays (so replies complete out of order); remote
 * error text; unknown names; oversized and truncated call frames injected raw, which must not
 * harm the group; deadline expiry with the late reply dropped; calls to self. */
#include <pthread.h>
#include <stdint.h>

#include "comm/comm_core.h"
#include "comm/harness.h"
#include "shoal/rpc.h"

#define THREADS 8
#define CALLS_PER_THREAD 150
#define IN_FLIGHT 6
#define CAP (1u << 20)

typedef struct call_args {
    uint32_t thread, seq, reply_len, delay_us, caller;
} call_args;

static uint8_t pattern(const call_args *a, uint32_t i) {
    return (uint8_t)(a->thread * 31 + a->seq * 7 + a->caller * 131 + i * 13);
}

static int h_echo(void *user, int caller, const void *args, size_t len, void **reply,
                  size_t *reply_len, char *err, size_t errcap) {
    if (len != sizeof(call_args)) {
        snprintf(err, errcap, "echo wants %zu bytes, got %zu", sizeof(call_args), len);
        return SHOAL_ERR_INVALID;
    }
    call_args a;
    memcpy(&a, args, sizeof a);
    if ((int)a.caller != caller) {
        snprintf(err, errcap, "caller %d claims %u", caller, a.caller);
        return SHOAL_ERR_INVALID;
    }
    if (a.delay_us) usleep(a.delay_us);
    uint8_t *r = malloc(a.reply_len ? a.reply_len : 1);
    for (uint32_t i = 0; i < a.reply_len; i++) r[i] = pattern(&a, i);
    *reply = r;
    *reply_len = a.reply_len;
    return SHOAL_OK;
}

static int h_fail(void *user, int caller, const void *args, size_t len, void **reply,
                  size_t *reply_len, char *err, size_t errcap) {
    snprintf(err, errcap, "the disk is full (asked by rank %d)", caller);
    return SHOAL_ERR_IO;
}

static int h_sleep(void *user, int caller, const void *args, size_t len, void **reply,
                   size_t *reply_len, char *err, size_t errcap) {
    usleep(1500000);
    return SHOAL_OK;
}

typedef struct thread_ctx {
    shoal_rpc *rpc;
    int rank, n, thread;
    int failures;
} thread_ctx;

static void *caller_thread(void *arg) {
    thread_ctx *t = arg;
    unsigned seed = (unsigned)(t->rank * 1000 + t->thread);
    shoal_future *fs[IN_FLIGHT] = {0};
    call_args as[IN_FLIGHT];
    for (int seq = 0; seq < CALLS_PER_THREAD + IN_FLIGHT; seq++) {
        int slot = seq % IN_FLIGHT;
        if (fs[slot]) { /* oldest first, but replies arrive in any order */
            void *reply = NULL;
            size_t len = 0;
            int st = shoal_future_wait(fs[slot], &reply, &len);
            fs[slot] = NULL;
            int ok = st == SHOAL_OK && len == as[slot].reply_len;
            for (uint32_t i = 0; ok && i < len; i++) ok = ((uint8_t *)reply)[i] == pattern(&as[slot], i);
            if (!ok) {
                fprintf(stderr, "rank %d thread %d call %u: %s (%s) len %zu want %u\n", t->rank, t->thread,
                        as[slot].seq, shoal_status_str(st), shoal_rpc_last_error(t->rpc), len, as[slot].reply_len);
                t->failures++;
            }
            free(reply);
        }
        if (seq >= CALLS_PER_THREAD) continue;
        int dst = rand_r(&seed) % t->n;
        uint32_t r = (uint32_t)rand_r(&seed);
        as[slot] = (call_args){(uint32_t)t->thread, (uint32_t)seq,
                               r % 4 == 0 ? (r >> 4) % 200000 : (r >> 4) % 64, (r >> 8) % 3 ? 0 : (r >> 12) % 2000,
                               (uint32_t)t->rank};
        CHECK_OK(shoal_rpc_call_async(t->rpc, dst, "echo", &as[slot], sizeof as[slot], 60, &fs[slot]), NULL);
    }
    return NULL;
}

/* Sends a raw frame into rank dst's call sink, as a broken or hostile peer would. */
static void inject_call(shoal_comm *c, int dst, const void *payload, size_t len) {
    shoal__mesh *m = c->mesh;
    shoal_request *r = calloc(1, sizeof *r);
    r->kind = REQ_SEND;
    r->comm = c;
    r->mesh = m;
    r->lane = SHOAL__LANE_CTRL;
    r->ctx = 0x80000000u | (c->ctx_id * 2);
    r->tag = 0x7fff0000u;
    r->peer = dst;
    r->peer_world = c->world_ranks[dst];
    r->buf = malloc(len ? len : 1);
    memcpy(r->buf, payload, len);
    r->cap = len;
    r->owned = 1;
    pthread_mutex_lock(&m->mu);
    shoal__engine_post_send(m, r);
    pthread_mutex_unlock(&m->mu);
}

static int body(harness_group *g, int rank, void *arg) {
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.timeout_s = 60;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);
    shoal_rpc_config rc = SHOAL_RPC_CONFIG_INIT;
    rc.max_size = CAP;
    shoal_rpc *rpc = NULL;
    CHECK_OK(shoal_rpc_create(&rpc, c, &rc), c);
    CHECK_OK(shoal_rpc_register(rpc, "echo", h_echo, NULL), NULL);
    CHECK_OK(shoal_rpc_register(rpc, "fail", h_fail, NULL), NULL);
    CHECK_OK(shoal_rpc_register(rpc, "sleep", h_sleep, NULL), NULL);
    CHECK_OK(shoal_barrier(c), c);

    /* concurrent calls from 8 threads */
    pthread_t th[THREADS];
    thread_ctx tc[THREADS];
    for (int i = 0; i < THREADS; i++) {
        tc[i] = (thread_ctx){rpc, rank, g->n, i, 0};
        pthread_create(&th[i], NULL, caller_thread, &tc[i]);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += tc[i].failures;
    }
    CHECK(failures == 0, "%d calls went wrong", failures);
    CHECK_OK(shoal_barrier(c), c);

    int dst = (rank + 1) % g->n;
    /* remote error text */
    int st = shoal_rpc_call(rpc, dst, "fail", NULL, 0, NULL, NULL, 10);
    CHECK(st == SHOAL_ERR_REMOTE && strstr(shoal_rpc_last_error(rpc), "the disk is full (asked by rank"),
          "remote error: %s '%s'", shoal_status_str(st), shoal_rpc_last_error(rpc));
    /* unknown name */
    st = shoal_rpc_call(rpc, dst, "no_such_thing", NULL, 0, NULL, NULL, 10);
    CHECK(st == SHOAL_ERR_NOT_FOUND && strstr(shoal_rpc_last_error(rpc), "no_such_thing"),
          "unknown: %s '%s'", shoal_status_str(st), shoal_rpc_last_error(rpc));
    /* arguments over the cap are refused before sending */
    void *big = calloc(1, CAP + 500);
    st = shoal_rpc_call(rpc, dst, "echo", big, CAP + 1, NULL, NULL, 10);
    CHECK(st == SHOAL_ERR_INVALID, "oversized args: %s", shoal_status_str(st));
    /* a reply over the cap is refused by the caller's sink */
    call_args a = {0, 0, CAP + 100, 0, (uint32_t)rank};
    st = shoal_rpc_call(rpc, dst, "echo", &a, sizeof a, NULL, NULL, 10);
    CHECK(st == SHOAL_ERR_INVALID, "oversized reply: %s (%s)", shoal_status_str(st), shoal_rpc_last_error(rpc));
    /* raw frames: oversized, truncated, garbage name */
    inject_call(c, dst, big, CAP + 500);
    uint8_t trunc[3] = {1, 40, 0};
    inject_call(c, dst, trunc, sizeof trunc);
    uint8_t badname[12] = {1, 4, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 0x01, 'b', 'c'};
    inject_call(c, dst, badname, sizeof badname);
    free(big);
    /* deadline expiry: the late reply is dropped, later calls are fine */
    double t0 = harness_now();
    st = shoal_rpc_call(rpc, dst, "sleep", NULL, 0, NULL, NULL, 0.3);
    double dt = harness_now() - t0;
    CHECK(st == SHOAL_ERR_TIMEOUT && dt < 1.3, "deadline: %s after %.2f s", shoal_status_str(st), dt);
    /* cancel of a pending call */
    shoal_future *f;
    CHECK_OK(shoal_rpc_call_async(rpc, dst, "sleep", NULL, 0, 10, &f), NULL);
    CHECK_OK(shoal_future_cancel(f), NULL);
    CHECK(shoal_future_wait(f, NULL, NULL) == SHOAL_ERR_CANCELLED, "cancelled call");
    /* self call */
    call_args s = {1, 2, 1000, 0, (uint32_t)rank};
    void *rep = NULL;
    size_t rl = 0;
    CHECK_OK(shoal_rpc_call(rpc, rank, "echo", &s, sizeof s, &rep, &rl, 10), NULL);
    CHECK(rl == 1000 && ((uint8_t *)rep)[999] == pattern(&s, 999), "self call");
    free(rep);
    usleep(1800000); /* let the late "sleep" replies arrive and be dropped */
    /* the group is unharmed */
    for (int i = 0; i < 20; i++) {
        call_args e = {9, (uint32_t)i, (uint32_t)i * 100, 0, (uint32_t)rank};
        rep = NULL;
        CHECK_OK(shoal_rpc_call(rpc, (rank + i) % g->n, "echo", &e, sizeof e, &rep, &rl, 10), NULL);
        CHECK(rl == (size_t)i * 100, "after attacks");
        free(rep);
    }
    int64_t v = 1, sum = 0;
    CHECK_OK(shoal_allreduce(c, &v, &sum, 1, SHOAL_I64, SHOAL_SUM), c);
    CHECK(sum == g->n, "allreduce after rpc");
    CHECK_OK(shoal_barrier(c), c);
    CHECK_OK(shoal_rpc_free(rpc), NULL);
    CHECK_OK(shoal_comm_free(c), NULL);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    harness_group g;
    harness_group_init(&g, n);
    int bad = harness_run(&g, body, NULL, 240, NULL);
    printf("test_rpc n=%d: %s\n", n, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
