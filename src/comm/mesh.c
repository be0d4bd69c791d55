/* Rendezvous and the full mesh: rank 0 serves the store; every rank listens, publishes its
 * address, connects to each lower rank (two lanes) and accepts each higher rank, with the
 * authenticated handshake on every connection. Refusals are logged with the peer's address. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "comm/comm_core.h"

#define HANDSHAKE_MAX_S 5.0 /* one slow or hostile connection may not stall init for long */

static int store_key(char *buf, size_t cap, const char *what, int rank) {
    return snprintf(buf, cap, "shoal/%s/%d", what, rank);
}

static shoal__mesh *mesh_alloc(const shoal__resolved_config *rc) {
    shoal__mesh *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->rank = rc->rank;
    m->size = rc->size;
    m->epfd = m->kickfd = -1;
    m->conns = calloc((size_t)rc->size * 2, sizeof *m->conns);
    m->failed = calloc((size_t)rc->size, 1);
    m->fail_reported = calloc((size_t)rc->size, 1);
    m->last_rx = calloc((size_t)rc->size, sizeof *m->last_rx);
    m->fail_why = calloc((size_t)rc->size, sizeof *m->fail_why);
    if (!m->conns || !m->failed || !m->fail_reported || !m->last_rx || !m->fail_why) {
        shoal__mesh_free_arrays(m);
        free(m);
        return NULL;
    }
    for (int i = 0; i < rc->size * 2; i++) {
        m->conns[i].fd = -1;
        m->conns[i].peer = i / 2;
        m->conns[i].lane = i % 2;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_cond_init(&m->monitor_cv, &ca);
    pthread_condattr_destroy(&ca);
    m->hb_interval = rc->hb_interval;
    m->hb_timeout = rc->hb_timeout;
    m->max_message = rc->max_message;
    m->spin_us = rc->spin_us;
    m->ref_min = rc->shm_cma ? rc->shm_cma_min : UINT64_MAX;
    m->direct_min = rc->shm_direct_min;
    m->coop = rc->shm_coop;
    if (shoal__random_bytes(&m->ref_probe, sizeof m->ref_probe) != SHOAL_OK) m->ref_min = UINT64_MAX;
    m->refs = 1;
    return m;
}

void shoal__mesh_free_arrays(shoal__mesh *m) {
    free(m->conns);
    free(m->failed);
    free(m->fail_reported);
    free(m->last_rx);
    free(m->fail_why);
}

void shoal__mesh_destroy(shoal__mesh *m) {
    shoal__monitor_stop(m);
    shoal__mesh_engine_close(m);
    if (m->group_area) munmap(m->group_area, m->group_len);
    shoal__store_close(m->store);
    shoal__store_server_stop(m->server);
    if (m->key) {
        memset(m->key, 0, m->key_len);
        free(m->key);
    }
    shoal__mesh_free_arrays(m);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->monitor_cv);
    free(m);
}

static void self_hello(const shoal__mesh *m, int lane, shoal__hello *h) {
    memset(h, 0, sizeof *h);
    h->version = SHOAL__PROTOCOL_VERSION;
    h->kind = SHOAL__CONN_MESH;
    h->rank = (uint32_t)m->rank;
    h->world_size = (uint32_t)m->size;
    h->lane = (uint32_t)lane;
    memcpy(h->group, m->auth.group, SHOAL__GROUP_ID_SIZE);
}

/* Lists ranks lo..hi-1 for which missing(m, r) holds, for a timeout message. */
static int list_missing(shoal__mesh *m, int lo, int hi, int (*missing)(shoal__mesh *, int),
                        int *ranks, int max, char *text, size_t cap) {
    int n = 0;
    size_t used = 0;
    text[0] = 0;
    for (int r = lo; r < hi; r++) {
        if (!missing(m, r)) continue;
        if (n < max) ranks[n] = r;
        if (used + 16 < cap) used += (size_t)snprintf(text + used, cap - used, "%s%d", n ? ", " : "", r);
        n++;
    }
    return n;
}

static int not_connected(shoal__mesh *m, int r) {
    return m->conns[r * 2].fd < 0 || m->conns[r * 2 + 1].fd < 0;
}

static int connect_lower(shoal__mesh *m, int peer, double deadline) {
    char key[64], err[256];
    store_key(key, sizeof key, "addr", peer);
    void *val = NULL;
    size_t len = 0;
    int st = shoal__store_get(m->store, key, &val, &len, deadline, err, sizeof err);
    if (st != SHOAL_OK) {
        if (st == SHOAL_ERR_TIMEOUT) {
            int ranks[64];
            char list[256];
            int n = 0;
            for (int r = 0; r < m->rank; r++) {
                int exists = 0;
                store_key(key, sizeof key, "addr", r);
                if (shoal__store_check(m->store, key, &exists, shoal__deadline_in(2), err, sizeof err) ==
                        SHOAL_OK && !exists && n < 64)
                    ranks[n++] = r;
            }
            list[0] = 0;
            size_t used = 0;
            for (int i = 0; i < n && used + 16 < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", i ? ", " : "", ranks[i]);
            return shoal__init_fail(st, ranks, n, "init timed out: rank%s %s never joined",
                                    n == 1 ? "" : "s", n ? list : "(unknown)");
        }
        return shoal__init_fail(st, &peer, 1, "rendezvous: reading rank %d's address: %s", peer, err);
    }
    char addr[64], host[SHOAL__HOST_MAX];
    uint16_t port = 0;
    if (len >= sizeof addr) len = sizeof addr - 1;
    memcpy(addr, val, len);
    addr[len] = 0;
    free(val);
    if (shoal__addr_parse(addr, host, sizeof host, &port, err, sizeof err) != SHOAL_OK)
        return shoal__init_fail(SHOAL_ERR_PROTOCOL, &peer, 1, "rank %d published a bad address '%s'",
                                peer, addr);
    for (int lane = 0; lane < 2; lane++) {
        int fd = -1;
        st = shoal__tcp_connect(host, port, deadline, &fd, err, sizeof err);
        if (st != SHOAL_OK)
            return shoal__init_fail(st, &peer, 1, "connecting to rank %d at %s: %s", peer, addr, err);
        if (lane == SHOAL__LANE_DATA) shoal__sock_tune_bulk(fd);
        shoal__hello self, them;
        self_hello(m, lane, &self);
        double hd = shoal__deadline_in(HANDSHAKE_MAX_S);
        st = shoal__handshake_connect(fd, &m->auth, &self, &them, hd < deadline ? hd : deadline, err,
                                      sizeof err);
        if (st == SHOAL_OK && (int)them.rank != peer) { /* the acceptor's hello has no lane */
            st = SHOAL_ERR_AUTH;
            shoal__errf(err, sizeof err, "expected rank %d, got rank %u", peer, them.rank);
        }
        if (st != SHOAL_OK) {
            close(fd);
            return shoal__init_fail(st, &peer, 1, "handshake with rank %d at %s failed: %s", peer, addr,
                                    err);
        }
        shoal__conn *c = &m->conns[peer * 2 + lane];
        c->fd = fd;
        snprintf(c->addr, sizeof c->addr, "%s", addr);
    }
    return SHOAL_OK;
}

/* Accepts one connection and places it, or logs why it was refused. */
static void accept_one(shoal__mesh *m, int lfd, double deadline) {
    int fd = -1;
    char peer[96] = "?", err[256] = "";
    if (shoal__tcp_accept(lfd, &fd, peer, sizeof peer) != SHOAL_OK) return;
    shoal__hello self, them;
    self_hello(m, 0, &self);
    double hd = shoal__deadline_in(HANDSHAKE_MAX_S);
    int st = shoal__handshake_accept(fd, &m->auth, &self, &them, hd < deadline ? hd : deadline, err,
                                     sizeof err);
    if (st != SHOAL_OK) {
        shoal__log(SHOAL__LOG_WARN, "refused connection from %s: %s", peer, err);
        close(fd);
        return;
    }
    int r = (int)them.rank;
    if (r <= m->rank || them.lane > 1) {
        shoal__log(SHOAL__LOG_WARN, "refused connection from %s: rank %d lane %u may not connect to rank %d",
                   peer, r, them.lane, m->rank);
        shoal__handshake_verdict(fd, SHOAL__VERDICT_REFUSED, deadline);
        close(fd);
        return;
    }
    shoal__conn *c = &m->conns[r * 2 + (int)them.lane];
    if (c->fd >= 0) {
        shoal__log(SHOAL__LOG_WARN, "refused connection from %s: rank %d lane %u is already connected",
                   peer, r, them.lane);
        shoal__handshake_verdict(fd, SHOAL__VERDICT_RANK_TAKEN, deadline);
        close(fd);
        return;
    }
    if (shoal__handshake_verdict(fd, SHOAL__VERDICT_OK, deadline) != SHOAL_OK) {
        close(fd);
        return;
    }
    if (them.lane == SHOAL__LANE_DATA) shoal__sock_tune_bulk(fd);
    c->fd = fd;
    snprintf(c->addr, sizeof c->addr, "%s", peer);
}

static int accept_higher(shoal__mesh *m, int lfd, double deadline) {
    for (;;) {
        int missing = 0;
        for (int r = m->rank + 1; r < m->size; r++) missing += not_connected(m, r);
        if (!missing) return SHOAL_OK;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int ms = shoal__ms_until(deadline, 1000);
        if (shoal__now() >= deadline) {
            int ranks[64];
            char list[256];
            int n = list_missing(m, m->rank + 1, m->size, not_connected, ranks, 64, list, sizeof list);
            return shoal__init_fail(SHOAL_ERR_TIMEOUT, ranks, n, "init timed out: rank%s %s never connected",
                                    n == 1 ? "" : "s", list);
        }
        if (poll(&p, 1, ms) > 0) accept_one(m, lfd, deadline);
    }
}

static int pick_bind_host(shoal__mesh *m, shoal__resolved_config *rc, char *host, size_t cap) {
    if (rc->bind_host[0]) snprintf(host, cap, "%s", rc->bind_host);
    else if (shoal__host_is_loopback(rc->master_host)) snprintf(host, cap, "%s", rc->master_host);
    else if (shoal__store_local_host(m->store, host, cap) != SHOAL_OK)
        return shoal__init_fail(SHOAL_ERR_SYSTEM, NULL, 0, "cannot tell which local address reaches %s",
                                rc->master_host);
    return SHOAL_OK;
}

int shoal__mesh_create(shoal__resolved_config *rc, shoal__mesh **out) {
    char err[256] = "", key[64], host[SHOAL__HOST_MAX], addr[SHOAL__HOST_MAX + 16];
    double deadline = shoal__deadline_in(rc->init_timeout_s);
    int lfd = -1, shm_lfd = -1, st;
    shoal__mesh *m = mesh_alloc(rc);
    if (!m) return shoal__init_fail(SHOAL_ERR_NOMEM, NULL, 0, "out of memory");
    m->key = rc->key;
    m->key_len = rc->key_len;
    rc->key = NULL; /* the mesh owns the key now */
    rc->key_len = 0;
    m->auth.key = m->key;
    m->auth.key_len = m->key_len;
    shoal__group_id(rc->group, m->auth.group);

    int local = shoal__host_is_loopback(rc->master_host);
    if (m->key_len == 0 && !local && !rc->insecure) {
        st = shoal__init_fail(SHOAL_ERR_AUTH, NULL, 0,
                              "refusing to start a group that spans hosts (master %s) without a cluster "
                              "key: set SHOAL_CLUSTER_KEY or SHOAL_CLUSTER_KEY_FILE (or SHOAL_INSECURE=1)",
                              rc->master_host);
        goto fail;
    }
    uint16_t port = rc->master_port;
    if (m->rank == 0) {
        st = shoal__store_server_start(rc->master_host, port, &m->auth, (uint32_t)m->size,
                                       m->max_message, &m->server, &port, err, sizeof err);
        if (st != SHOAL_OK) {
            st = shoal__init_fail(st, NULL, 0, "cannot serve the store on %s:%u: %s", rc->master_host,
                                  rc->master_port, err);
            goto fail;
        }
    }
    st = shoal__store_connect(rc->master_host, port, &m->auth, (uint32_t)m->rank, (uint32_t)m->size,
                              deadline, &m->store, err, sizeof err);
    if (st != SHOAL_OK) {
        int zero = 0;
        st = shoal__init_fail(st, &zero, 1, "cannot reach the store of rank 0 at %s:%u: %s",
                              rc->master_host, port, err);
        goto fail;
    }
    if ((st = pick_bind_host(m, rc, host, sizeof host)) != SHOAL_OK) goto fail;
    if (m->key_len == 0 && !shoal__host_is_loopback(host) && !rc->insecure) {
        st = shoal__init_fail(SHOAL_ERR_AUTH, NULL, 0,
                              "refusing to listen on %s without a cluster key (set SHOAL_CLUSTER_KEY, or "
                              "SHOAL_INSECURE=1)", host);
        goto fail;
    }
    uint16_t lport = 0;
    if (m->size > 1 && (st = shoal__tcp_listen(host, 0, &lfd, &lport, err, sizeof err)) != SHOAL_OK) {
        st = shoal__init_fail(st, NULL, 0, "cannot listen on %s: %s", host, err);
        goto fail;
    }
    if ((st = shoal__shm_prepare(m, rc, deadline, &shm_lfd)) != SHOAL_OK) goto fail;
    int64_t claims = 0;
    store_key(key, sizeof key, "claim", m->rank);
    st = shoal__store_add(m->store, key, 1, &claims, deadline, err, sizeof err);
    if (st == SHOAL_OK && claims != 1) {
        st = shoal__init_fail(SHOAL_ERR_AUTH, &m->rank, 1,
                              "rank %d is already taken by another process in this group", m->rank);
        goto fail;
    }
    if (st == SHOAL_OK && m->rank == 0) { /* joining workers read the group size here */
        char ws[16];
        snprintf(ws, sizeof ws, "%d", m->size);
        st = shoal__store_set(m->store, "shoal/world_size", ws, strlen(ws), deadline, err, sizeof err);
    }
    if (st == SHOAL_OK) {
        if (strchr(host, ':')) snprintf(addr, sizeof addr, "[%s]:%u", host, lport);
        else snprintf(addr, sizeof addr, "%s:%u", host, lport);
        store_key(key, sizeof key, "addr", m->rank);
        st = shoal__store_set(m->store, key, addr, strlen(addr), deadline, err, sizeof err);
    }
    if (st != SHOAL_OK) {
        st = shoal__init_fail(st, NULL, 0, "rendezvous: %s", err);
        goto fail;
    }
    for (int peer = 0; peer < m->rank; peer++)
        if ((st = connect_lower(m, peer, deadline)) != SHOAL_OK) goto fail;
    if ((st = accept_higher(m, lfd, deadline)) != SHOAL_OK) goto fail;
    if (lfd >= 0) close(lfd);
    lfd = -1;
    st = shoal__shm_connect(m, rc, deadline, shm_lfd);
    shm_lfd = -1; /* closed by shm_connect */
    if (st != SHOAL_OK) goto fail;
    if (shoal__mesh_engine_init(m) != SHOAL_OK) {
        st = shoal__init_fail(SHOAL_ERR_SYSTEM, NULL, 0, "cannot set up epoll");
        goto fail;
    }
    if (m->size > 1 && shoal__monitor_start(m) != SHOAL_OK) {
        st = shoal__init_fail(SHOAL_ERR_SYSTEM, NULL, 0, "cannot start the monitor thread");
        goto fail;
    }
    *out = m;
    return SHOAL_OK;
fail:
    if (lfd >= 0) close(lfd);
    if (shm_lfd >= 0) close(shm_lfd);
    shoal__mesh_destroy(m);
    return st;
}
