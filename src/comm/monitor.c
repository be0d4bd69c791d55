/* The monitor: one background thread per mesh. It
 *  - sends a heartbeat to every live peer each interval on the control lane, and declares a
 *    peer failed when nothing at all has arrived from it for the timeout (a SIGSTOPped or hung
 *    process keeps its sockets open, so only silence gives it away);
 *  - drives progress while no caller is waiting (so remote calls are served and heartbeats read
 *    while the application computes), and backs off as soon as a caller waits, so the hot path
 *    keeps its hand-off-free polling;
 *  - delivers failure callbacks outside every lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_core.h"

#define USER_ACTIVE_S 0.01 /* a caller waited this recently: leave the sockets to it */
#define POLL_MAX_MS 100

typedef struct pending_cb {
    shoal_failure_fn fn;
    void *user;
    int rank; /* comm rank */
    char why[128];
} pending_cb;

/* Collects the callbacks owed for newly failed peers (mu held). */
static int collect_callbacks(shoal__mesh *m, pending_cb *out, int max) {
    int n = 0;
    for (int p = 0; p < m->size; p++) {
        if (!m->failed[p] || m->fail_reported[p]) continue;
        m->fail_reported[p] = 1;
        for (shoal_comm *c = m->comms; c; c = c->next_in_mesh) {
            if (!c->fail_cb || c->w2c[p] < 0 || n >= max) continue;
            out[n].fn = c->fail_cb;
            out[n].user = c->fail_cb_user;
            out[n].rank = c->w2c[p];
            snprintf(out[n].why, sizeof out[n].why, "%s", m->fail_why[p]);
            n++;
        }
    }
    return n;
}

static void beat(shoal__mesh *m, double now) {
    for (int p = 0; p < m->size; p++) {
        if (p == m->rank || m->failed[p]) continue;
        if (now - m->last_rx[p] > m->hb_timeout) {
            char why[128];
            snprintf(why, sizeof why, "no heartbeat for %.1f s (dead, hung or stopped)",
                     now - m->last_rx[p]);
            shoal__log(SHOAL__LOG_WARN, "declaring rank %d failed: %s", p, why);
            shoal__engine_peer_lost(m, p, 0, why);
            continue;
        }
        shoal__engine_send_control(m, p, SHOAL__LANE_CTRL, SHOAL__FRAME_HEARTBEAT);
    }
}

static void timed_wait(shoal__mesh *m, double until) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* monitor_cv uses CLOCK_MONOTONIC (mesh.c) */
    double rel = until - shoal__now();
    if (rel < 0) rel = 0;
    ts.tv_sec += (time_t)rel;
    ts.tv_nsec += (long)((rel - (double)(time_t)rel) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&m->monitor_cv, &m->mu, &ts);
}

static void *monitor_main(void *arg) {
    shoal__mesh *m = arg;
    pending_cb cbs[32];
    pthread_mutex_lock(&m->mu);
    double next_beat = shoal__now() + m->hb_interval;
    while (!m->monitor_stop) {
        double now = shoal__now();
        if (m->hb_interval > 0 && now >= next_beat) {
            beat(m, now);
            next_beat = now + m->hb_interval;
        }
        int ncb = collect_callbacks(m, cbs, 32);
        if (ncb) {
            pthread_mutex_unlock(&m->mu);
            for (int i = 0; i < ncb; i++) cbs[i].fn(cbs[i].user, cbs[i].rank, cbs[i].why);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        double wake = m->hb_interval > 0 ? next_beat : now + 1.0;
        /* idle rpc handler threads drive the sockets themselves (and then run the calls they
         * read without a hand-off); the monitor steps in only when none is free */
        if (!m->progressing && !m->token_waiters && !m->idle_drivers && now - m->last_user_wait > USER_ACTIVE_S) {
            m->progressing = 1;
            shoal__engine_poll_once(m, shoal__ms_until(wake, POLL_MAX_MS));
            m->progressing = 0;
            if (m->token_waiters) pthread_cond_broadcast(&m->cv);
        } else {
            double until = now + USER_ACTIVE_S;
            timed_wait(m, until < wake ? until : wake);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int shoal__monitor_start(shoal__mesh *m) {
    double now = shoal__now();
    for (int p = 0; p < m->size; p++) m->last_rx[p] = now;
    if (pthread_create(&m->monitor, NULL, monitor_main, m) != 0) return SHOAL_ERR_SYSTEM;
    m->monitor_started = 1;
    return SHOAL_OK;
}

void shoal__monitor_stop(shoal__mesh *m) {
    if (!m->monitor_started) return;
    pthread_mutex_lock(&m->mu);
    m->monitor_stop = 1;
    pthread_cond_signal(&m->monitor_cv);
    shoal__mesh_kick(m);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->monitor, NULL);
    m->monitor_started = 0;
}

int shoal_comm_failed_ranks(const shoal_comm *c, int *ranks, int max) {
    if (!c) return 0;
    int n = 0;
    pthread_mutex_lock(&c->mesh->mu);
    for (int i = 0; i < c->size; i++)
        if (c->mesh->failed[c->world_ranks[i]] == 1) {
            if (ranks && n < max) ranks[n] = i;
            n++;
        }
    pthread_mutex_unlock(&c->mesh->mu);
    return n;
}

int shoal_comm_on_failure(shoal_comm *c, shoal_failure_fn cb, void *user) {
    if (!c) return SHOAL_ERR_INVALID;
    pthread_mutex_lock(&c->mesh->mu);
    c->fail_cb = cb;
    c->fail_cb_user = user;
    pthread_mutex_unlock(&c->mesh->mu);
    return SHOAL_OK;
}
