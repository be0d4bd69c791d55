/* Process groups: creation (world and split), accessors, abort and teardown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_core.h"

#define GOODBYE_MAX_S 10.0

static shoal_comm *comm_new(shoal__mesh *m, shoal_comm *parent, uint32_t ctx_id, int rank,
                            int size, const int *world_ranks) {
    shoal_comm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->world_ranks = malloc(sizeof(int) * (size_t)size);
    c->w2c = malloc(sizeof(int) * (size_t)m->size);
    if (!c->world_ranks || !c->w2c) {
        free(c->world_ranks);
        free(c->w2c);
        free(c);
        return NULL;
    }
    for (int i = 0; i < m->size; i++) c->w2c[i] = -1;
    for (int i = 0; i < size; i++) {
        c->world_ranks[i] = world_ranks[i];
        c->w2c[world_ranks[i]] = i;
    }
    c->mesh = m;
    c->parent = parent;
    c->ctx_id = ctx_id;
    c->rank = rank;
    c->size = size;
    pthread_cond_init(&c->exec_cv, NULL);
    pthread_mutex_lock(&m->mu);
    m->refs++;
    c->next_in_mesh = m->comms;
    m->comms = c;
    pthread_mutex_unlock(&m->mu);
    return c;
}

int shoal_comm_init(shoal_comm **out, const shoal_comm_config *cfg) {
    if (!out) return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "comm pointer is NULL");
    *out = NULL;
    shoal__resolved_config rc;
    int st = shoal__config_resolve(cfg, &rc);
    if (st != SHOAL_OK) return st;
    shoal__log_set_rank(rc.rank);
    shoal__mesh *m = NULL;
    st = shoal__mesh_create(&rc, &m);
    if (st != SHOAL_OK) {
        shoal__config_release(&rc);
        return st;
    }
    int *ids = malloc(sizeof(int) * (size_t)rc.size);
    shoal_comm *c = NULL;
    if (ids) {
        for (int i = 0; i < rc.size; i++) ids[i] = i;
        c = comm_new(m, NULL, 1, rc.rank, rc.size, ids);
        free(ids);
    }
    if (!c) {
        shoal__mesh_unref(m);
        shoal__config_release(&rc);
        return shoal__init_fail(SHOAL_ERR_NOMEM, NULL, 0, "out of memory creating the group");
    }
    c->timeout_s = rc.timeout_s;
    c->algo = rc.algo;
    c->tuning = rc.tuning;
    /* Pipeline chunks: small over shared memory, where a chunk is a copy through a ring that
     * should stay in cache; large over TCP, where each chunk costs a round of the event loop
     * (measured: 2 MiB halves a 64 MiB all-reduce over loopback against 256 KiB). */
    if (!c->tuning.chunk) c->tuning.chunk = m->all_shm ? (256u << 10) : (2u << 20);
    shoal__mesh_unref(m); /* comm_new took its own reference */
    shoal__config_release(&rc);
    *out = c;
    return SHOAL_OK;
}

void shoal__mesh_unref(shoal__mesh *m) {
    pthread_mutex_lock(&m->mu);
    int left = --m->refs;
    pthread_mutex_unlock(&m->mu);
    if (left > 0) return;
    shoal__monitor_stop(m); /* no heartbeats or polling behind the goodbye's back */
    shoal__engine_goodbye(m, shoal__deadline_in(GOODBYE_MAX_S));
    shoal__mesh_destroy(m);
}

int shoal_comm_free(shoal_comm *c) {
    if (!c) return SHOAL_OK;
    shoal__mesh *m = c->mesh;
    pthread_mutex_lock(&m->mu);
    if (c->exec_started) {
        c->exec_stop = 1;
        pthread_cond_signal(&c->exec_cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(c->exec_thread, NULL);
        pthread_mutex_lock(&m->mu);
    }
    shoal__engine_fail_comm(m, c, SHOAL_ERR_CANCELLED);
    for (shoal_comm **pp = &m->comms; *pp; pp = &(*pp)->next_in_mesh) {
        if (*pp == c) {
            *pp = c->next_in_mesh;
            break;
        }
    }
    for (shoal_comm *o = m->comms; o; o = o->next_in_mesh)
        if (o->parent == c) o->parent = c->parent; /* children outlive us: keep the chain whole */
    pthread_mutex_unlock(&m->mu);
    pthread_cond_destroy(&c->exec_cv);
    free(c->world_ranks);
    free(c->w2c);
    free(c->shm_scratch);
    free(c);
    shoal__mesh_unref(m);
    return SHOAL_OK;
}

int shoal_comm_rank(const shoal_comm *c) { return c ? c->rank : -1; }
int shoal_comm_size(const shoal_comm *c) { return c ? c->size : 0; }
shoal__algo shoal__comm_algo(const shoal_comm *c) { return c->algo; }
const shoal__coll_tuning *shoal__comm_tuning(const shoal_comm *c) { return &c->tuning; }

int shoal_comm_set_timeout(shoal_comm *c, double timeout_s) {
    if (!c) return SHOAL_ERR_INVALID;
    if (!(timeout_s > 0))
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "timeout must be positive");
    c->timeout_s = timeout_s;
    return SHOAL_OK;
}

int shoal_comm_peer_failed(const shoal_comm *c, int rank) {
    if (!c || rank < 0 || rank >= c->size) return 0;
    pthread_mutex_lock(&c->mesh->mu);
    int f = c->mesh->failed[c->world_ranks[rank]] != 0;
    pthread_mutex_unlock(&c->mesh->mu);
    return f;
}

const char *shoal_comm_transport(const shoal_comm *c, int rank) {
    if (!c || rank < 0 || rank >= c->size) return NULL;
    shoal__mesh *m = c->mesh;
    int w = c->world_ranks[rank];
    if (w == m->rank) return "self";
    pthread_mutex_lock(&m->mu);
    const shoal__conn *cn = &m->conns[w * 2 + 1];
    const char *t = m->failed[w] ? "failed" : !cn->shm ? "tcp" : cn->ref_tx && cn->ref_rx ? "shm+cma" : "shm";
    pthread_mutex_unlock(&m->mu);
    return t;
}

int shoal__comm_is_aborted(const shoal_comm *c) {
    for (; c; c = c->parent)
        if (atomic_load(&c->aborted)) return 1;
    return 0;
}

int shoal__comm_health(const shoal_comm *c, int peer_world) {
    if (shoal__comm_is_aborted(c)) return SHOAL_ERR_ABORTED;
    const shoal__mesh *m = c->mesh;
    if (atomic_load(&((shoal__mesh *)m)->failure_epoch) == 0) return SHOAL_OK;
    if (peer_world >= 0) return m->failed[peer_world] ? SHOAL_ERR_PEER_FAILED : SHOAL_OK;
    for (int i = 0; i < c->size; i++)
        if (m->failed[c->world_ranks[i]]) return SHOAL_ERR_PEER_FAILED;
    return SHOAL_OK;
}

int shoal_comm_abort(shoal_comm *c) {
    if (!c) return SHOAL_ERR_INVALID;
    shoal__mesh *m = c->mesh;
    atomic_store(&c->aborted, 1);
    pthread_mutex_lock(&m->mu);
    for (shoal_comm *o = m->comms; o; o = o->next_in_mesh)
        if (shoal__comm_is_aborted(o)) shoal__engine_fail_comm(m, o, SHOAL_ERR_ABORTED);
    pthread_cond_broadcast(&m->cv);
    shoal__mesh_kick(m);
    pthread_mutex_unlock(&m->mu);
    return SHOAL_OK;
}

/* ---- split ------------------------------------------------------------------------------ */

typedef struct member {
    int color, key, rank;
} member;

static int member_cmp(const void *a, const void *b) {
    const member *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->rank - y->rank;
}

/* Every rank sends its (color, key) to every other rank: split is rare, so the simple O(n^2)
 * exchange is fine and keeps comm/ independent of the collective algorithms. */
static int exchange_colors(shoal_comm *c, uint32_t tag, int color, int key, int32_t *all,
                           double deadline) {
    int n = c->size;
    shoal_request **reqs = calloc((size_t)n * 2, sizeof *reqs);
    if (!reqs) return shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory in split");
    int32_t mine[2] = {color, key};
    all[2 * c->rank] = color;
    all[2 * c->rank + 1] = key;
    int st = SHOAL_OK;
    for (int i = 0; i < n && st == SHOAL_OK; i++) {
        if (i == c->rank) continue;
        st = shoal__coll_irecv(c, SHOAL__LANE_CTRL, tag, &all[2 * i], 8, i, &reqs[2 * i]);
        if (st == SHOAL_OK) st = shoal__coll_isend(c, SHOAL__LANE_CTRL, tag, mine, 8, i, &reqs[2 * i + 1]);
    }
    int st2 = shoal__coll_waitall(c, reqs, n * 2, deadline);
    free(reqs);
    return st != SHOAL_OK ? st : st2;
}

int shoal_comm_split(shoal_comm *c, int color, int key, shoal_comm **sub) {
    if (!c || !sub) return SHOAL_ERR_INVALID;
    *sub = NULL;
    if (color < 0 && color != SHOAL_UNDEFINED)
        return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0,
                                "split: color %d must be >= 0 or SHOAL_UNDEFINED", color);
    uint32_t tag = atomic_fetch_add(&c->coll_seq, 2) & 0x7fffffffu; /* two tags: colors, ctx id */
    double deadline = shoal__deadline_in(c->timeout_s);
    int n = c->size;
    int32_t *all = malloc(sizeof(int32_t) * 2 * (size_t)n);
    member *mem = malloc(sizeof(member) * (size_t)n);
    int *world = malloc(sizeof(int) * (size_t)n);
    int st = (!all || !mem || !world) ? shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory")
                                      : exchange_colors(c, tag, color, key, all, deadline);
    if (st != SHOAL_OK || color == SHOAL_UNDEFINED) goto done;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (all[2 * i] == color) mem[k++] = (member){all[2 * i], all[2 * i + 1], i};
    qsort(mem, (size_t)k, sizeof *mem, member_cmp);
    int myrank = -1;
    for (int i = 0; i < k; i++) {
        world[i] = c->world_ranks[mem[i].rank];
        if (mem[i].rank == c->rank) myrank = i;
    }
    /* The new group's rank 0 takes a fresh context id from the store and tells the others. */
    uint32_t ctx = 0;
    if (myrank == 0) {
        int64_t v = 0;
        char err[256];
        st = shoal__store_add(c->mesh->store, "shoal/ctx", 1, &v, deadline, err, sizeof err);
        if (st != SHOAL_OK) {
            st = shoal__comm_fail(c, st, NULL, 0, "split: cannot allocate a context id: %s", err);
            goto done;
        }
        ctx = (uint32_t)(v + 1); /* the world group is 1 */
        shoal_request **reqs = calloc((size_t)k, sizeof *reqs);
        if (!reqs) {
            st = shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory");
            goto done;
        }
        for (int i = 1; i < k && st == SHOAL_OK; i++)
            st = shoal__coll_isend(c, SHOAL__LANE_CTRL, tag + 1, &ctx, 4, mem[i].rank, &reqs[i]);
        int st2 = shoal__coll_waitall(c, reqs, k, deadline);
        free(reqs);
        if (st == SHOAL_OK) st = st2;
    } else {
        st = shoal__coll_sendrecv(c, SHOAL__LANE_CTRL, tag + 1, NULL, 0, -1, &ctx, 4, mem[0].rank,
                                  deadline);
    }
    if (st != SHOAL_OK) goto done;
    shoal_comm *s = comm_new(c->mesh, c, ctx, myrank, k, world);
    if (!s) {
        st = shoal__comm_fail(c, SHOAL_ERR_NOMEM, NULL, 0, "out of memory");
        goto done;
    }
    s->timeout_s = c->timeout_s;
    s->algo = c->algo;
    s->tuning = c->tuning;
    *sub = s;
done:
    free(all);
    free(mem);
    free(world);
    return st;
}
