/* The worker side of a pool: join the group, serve the leader's calls, leave when told to or
 * when the leader is gone (see include/shoal/pool.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "pool/pool_join.h"
#include "shoal/pool.h"

#define EXIT_JOIN_FAILED 1
#define EXIT_LEADER_GONE 3

typedef struct worker_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;        /* shoal.shutdown received */
    int leader_gone; /* rank 0 failed */
    char why[128];
} worker_state;

static int h_ping(void *user, int caller, const void *args, size_t len, void **reply,
                  size_t *reply_len, char *err, size_t errcap) {
    int32_t *pid = malloc(sizeof *pid);
    if (!pid) return SHOAL_ERR_NOMEM;
    *pid = (int32_t)getpid();
    *reply = pid;
    *reply_len = sizeof *pid;
    return SHOAL_OK;
}

static int h_shutdown(void *user, int caller, const void *args, size_t len, void **reply,
                      size_t *reply_len, char *err, size_t errcap) {
    worker_state *w = user;
    if (caller != 0) {
        snprintf(err, errcap, "only the leader may stop a worker (caller %d)", caller);
        return SHOAL_ERR_INVALID;
    }
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return SHOAL_OK;
}

static void on_failure(void *user, int rank, const char *why) {
    if (rank != 0) return; /* a sibling's failure is the leader's business */
    worker_state *w = user;
    pthread_mutex_lock(&w->mu);
    w->leader_gone = 1;
    snprintf(w->why, sizeof w->why, "%s", why);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int join_config(const shoal_worker_config *cfg, shoal_comm_config *cc, char *key_buf,
                       size_t key_cap) {
    const char *key = cfg->cluster_key ? cfg->cluster_key : shoal__setting_str("cluster_key");
    if (!cfg->join) {
        if (cfg->cluster_key) {
            cc->key = cfg->cluster_key;
            cc->key_len = strlen(cfg->cluster_key);
        }
        return SHOAL_OK; /* rank, size, master, group: from the environment the pool set */
    }
    snprintf(key_buf, key_cap, "%s", key);
    char err[256];
    int rank = -1, world = 0;
    double init_timeout = 120;
    shoal__setting_double("init_timeout", &init_timeout, NULL, 0);
    int st = shoal__pool_join(cfg->join, key_buf[0] ? key_buf : NULL, shoal__deadline_in(init_timeout), &rank,
                              &world, err, sizeof err);
    if (st != SHOAL_OK) {
        shoal__log(SHOAL__LOG_ERROR, "worker: cannot join the pool at %s: %s", cfg->join, err);
        return st;
    }
    cc->rank = rank;
    cc->world_size = world;
    cc->master = cfg->join;
    cc->key = key_buf;
    cc->key_len = strlen(key_buf);
    return SHOAL_OK;
}

int shoal_worker_run(const shoal_worker_config *cfg) {
    shoal_worker_config dflt = SHOAL_WORKER_CONFIG_INIT;
    if (!cfg) cfg = &dflt;
    if (cfg->struct_size != sizeof *cfg || cfg->version != SHOAL_POOL_CONFIG_VERSION) {
        shoal__log(SHOAL__LOG_ERROR, "worker: config not initialised with SHOAL_WORKER_CONFIG_INIT");
        return EXIT_JOIN_FAILED;
    }
    shoal_comm_config cc = SHOAL_COMM_CONFIG_INIT;
    char key[4097] = "";
    if (join_config(cfg, &cc, key, sizeof key) != SHOAL_OK) return EXIT_JOIN_FAILED;
    shoal_comm *comm = NULL;
    if (shoal_comm_init(&comm, &cc) != SHOAL_OK) {
        shoal__log(SHOAL__LOG_ERROR, "worker: cannot join the group: %s", shoal_comm_init_error());
        return EXIT_JOIN_FAILED;
    }
    worker_state w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    shoal_rpc *rpc = NULL;
    int rc = EXIT_JOIN_FAILED;
    if (shoal_rpc_create(&rpc, comm, NULL) != SHOAL_OK ||
        shoal_rpc_register(rpc, "shoal.ping", h_ping, &w) != SHOAL_OK ||
        shoal_rpc_register(rpc, "shoal.shutdown", h_shutdown, &w) != SHOAL_OK ||
        shoal_comm_on_failure(comm, on_failure, &w) != SHOAL_OK) {
        shoal__log(SHOAL__LOG_ERROR, "worker: %s", shoal_comm_last_error(comm));
        goto done;
    }
    if (cfg->setup && cfg->setup(cfg->user, rpc, comm) != SHOAL_OK) {
        shoal__log(SHOAL__LOG_ERROR, "worker: setup failed");
        goto done;
    }
    if (shoal_barrier(comm) != SHOAL_OK) { /* tells the leader we are ready */
        shoal__log(SHOAL__LOG_ERROR, "worker: %s", shoal_comm_last_error(comm));
        goto done;
    }
    pthread_mutex_lock(&w.mu);
    while (!w.stop && !w.leader_gone) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    if (w.stop) { /* asked to stop: the leader's goodbye that may follow is no failure */
        rc = 0;
    } else {
        shoal__log(SHOAL__LOG_WARN, "worker %d: the leader is gone (%s): exiting", shoal_comm_rank(comm), w.why);
        rc = EXIT_LEADER_GONE;
    }
done:
    shoal_rpc_free(rpc);
    shoal_comm_free(comm);
    return rc;
}
