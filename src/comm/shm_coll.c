/* Small collectives through one shared "group area" when every rank of the world group is on
 * this host: each rank writes its contribution into its own slot and raises its `ready`
 * counter; everyone waits for all counters, then reduces the slots itself, in rank order, so
 * every rank computes the bitwise-same result without a single message. A rank's `done`
 * counter says it has finished reading; a slot is reused two operations later (two slots per
 * rank, by parity), after every rank is done with it.
 *
 * Used only by blocking collectives on the world group (a blocking and a non-blocking
 * collective never match each other, so every rank takes the same path); waits spin, then
 * yield, and check the deadline, abort and peer failure as the message path does. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm_core.h"
#include "comm/shm_coll.h"

typedef struct rank_flags {
    _Alignas(64) _Atomic uint64_t ready; /* last op whose data is in this rank's slot */
    _Alignas(64) _Atomic uint64_t done;  /* last op whose slots this rank has read */
    _Alignas(64) _Atomic uint64_t mid;   /* last op whose middle phase this rank finished (shm_direct.c) */
} rank_flags;

typedef struct area_hdr {
    uint32_t n, slot_bytes;
} area_hdr;

#define AREA_HDR 64

size_t shoal__shm_area_bytes(int n) {
    return AREA_HDR + (size_t)n * sizeof(rank_flags) + (size_t)n * 2 * SHOAL__SHM_SLOT;
}

void shoal__shm_area_init(void *mem, int n) {
    memset(mem, 0, shoal__shm_area_bytes(n));
    area_hdr *h = mem;
    h->n = (uint32_t)n;
    h->slot_bytes = SHOAL__SHM_SLOT;
}

int shoal__shm_area_check(const void *mem, size_t len, int n) {
    const area_hdr *h = mem;
    return len == shoal__shm_area_bytes(n) && h->n == (uint32_t)n && h->slot_bytes == SHOAL__SHM_SLOT;
}

static rank_flags *flags(const shoal__mesh *m, int r) {
    return (rank_flags *)((uint8_t *)m->group_area + AREA_HDR) + r;
}

static _Atomic uint64_t *counter(const shoal__mesh *m, int r, int which) {
    rank_flags *f = flags(m, r);
    return which == SHOAL__SHM_READY ? &f->ready : which == SHOAL__SHM_DONE ? &f->done : &f->mid;
}

uint8_t *shoal__shm_slot(const shoal__mesh *m, int r, uint64_t seq) {
    uint8_t *base = (uint8_t *)m->group_area + AREA_HDR + (size_t)m->size * sizeof(rank_flags);
    return base + ((size_t)r * 2 + (size_t)(seq & 1)) * SHOAL__SHM_SLOT;
}

int shoal__shm_coll_ok(const shoal_comm *c, size_t bytes) {
    return c->mesh->group_area && c->ctx_id == 1 && c->size == c->mesh->size && bytes <= SHOAL__SHM_SLOT;
}

/* Why waiting should stop: abort, a failed rank, the deadline. */
static int wait_status(shoal_comm *c, double deadline) {
    if (shoal__comm_is_aborted(c)) return shoal__comm_fail(c, SHOAL_ERR_ABORTED, NULL, 0, "group was aborted");
    shoal__mesh *m = c->mesh;
    if (atomic_load(&m->failure_epoch)) {
        pthread_mutex_lock(&m->mu);
        int dead = -1;
        for (int r = 0; r < m->size && dead < 0; r++)
            if (m->failed[r]) dead = r;
        pthread_mutex_unlock(&m->mu);
        if (dead >= 0)
            return shoal__comm_fail(c, SHOAL_ERR_PEER_FAILED, &dead, 1, "collective failed: rank %d failed", dead);
    }
    if (shoal__now() >= deadline) return SHOAL_ERR_TIMEOUT;
    return SHOAL_OK;
}

int shoal__shm_wait_all(shoal_comm *c, int which, uint64_t target, double deadline) {
    shoal__mesh *m = c->mesh;
    double spin_until = 0; /* read the clock only once there is something to wait for */
    for (unsigned spins = 0;; spins++) {
        int all = 1;
        for (int r = 0; r < m->size && all; r++) {
            all = atomic_load_explicit(counter(m, r, which), memory_order_acquire) >= target;
        }
        if (all) return SHOAL_OK;
        if (spins == 0) spin_until = shoal__now() + (m->spin_us > 0 ? m->spin_us : 1) * 1e-6;
        /* the rank we wait for may need this core: at once when ranks outnumber cores, after
         * a short spin otherwise (on a busy machine it may be queued behind us) */
        if (m->oversubscribed || spins >= 256) sched_yield();
        if ((spins & 255) == 0) {
            int st = wait_status(c, deadline);
            if (st == SHOAL_ERR_TIMEOUT) {
                int late[64], nl = 0;
                for (int r = 0; r < m->size && nl < 64; r++) {
                    if (atomic_load(counter(m, r, which)) < target) late[nl++] = r;
                }
                return shoal__comm_fail(c, st, late, nl, "collective timed out waiting for %d rank%s (first: %d)", nl,
                                        nl == 1 ? "" : "s", nl ? late[0] : -1);
            }
            if (st != SHOAL_OK) return st;
            if (shoal__now() > spin_until) { /* a rank is slow (oversubscribed?): let it run */
                sched_yield();
                if (shoal__now() > spin_until + 0.001) {
                    struct timespec ts = {0, 20000};
                    nanosleep(&ts, NULL);
                }
            }
        }
    }
}

int shoal__shm_publish(shoal_comm *c, uint64_t seq, const void *src, size_t len, double deadline) {
    shoal__mesh *m = c->mesh;
    if (seq > 2) {
        int st = shoal__shm_wait_all(c, SHOAL__SHM_DONE, seq - 2, deadline);
        if (st != SHOAL_OK) return st;
    }
    if (len) memcpy(shoal__shm_slot(m, m->rank, seq), src, len);
    atomic_store_explicit(&flags(m, m->rank)->ready, seq, memory_order_release);
    return SHOAL_OK;
}

void shoal__shm_raise(shoal_comm *c, int which, uint64_t seq) {
    atomic_store_explicit(counter(c->mesh, c->mesh->rank, which), seq, memory_order_release);
}

static void finish(shoal_comm *c, uint64_t seq) { shoal__shm_raise(c, SHOAL__SHM_DONE, seq); }

int shoal__shm_allreduce(shoal_comm *c, const void *src, void *dst, size_t count, shoal_dtype t, shoal_op op) {
    shoal__mesh *m = c->mesh;
    size_t bytes = count * shoal_dtype_size(t);
    double deadline = shoal__deadline_in(c->timeout_s);
    uint64_t seq = ++c->shm_seq;
    int st = shoal__shm_publish(c, seq, src, bytes, deadline);
    if (st == SHOAL_OK) st = shoal__shm_wait_all(c, SHOAL__SHM_READY, seq, deadline);
    if (st != SHOAL_OK) return st;
    /* rank order on every rank: the same arithmetic, the same bits */
    if (bytes) {
        if (m->size == 1) {
            memcpy(dst, shoal__shm_slot(m, 0, seq), bytes);
        } else {
            shoal__reduce_pair(dst, shoal__shm_slot(m, 0, seq), shoal__shm_slot(m, 1, seq), count, t, op);
            for (int r = 2; r < m->size; r++) shoal__reduce_into(dst, shoal__shm_slot(m, r, seq), count, t, op);
        }
        if (op == SHOAL_AVG) shoal__avg_finish(dst, count, t, m->size);
    }
    finish(c, seq);
    return SHOAL_OK;
}

int shoal__shm_barrier(shoal_comm *c) {
    double deadline = shoal__deadline_in(c->timeout_s);
    uint64_t seq = ++c->shm_seq;
    int st = shoal__shm_publish(c, seq, NULL, 0, deadline);
    if (st == SHOAL_OK) st = shoal__shm_wait_all(c, SHOAL__SHM_READY, seq, deadline);
    if (st == SHOAL_OK) finish(c, seq);
    return st;
}

int shoal__shm_broadcast(shoal_comm *c, void *buf, size_t bytes, int root) {
    shoal__mesh *m = c->mesh;
    double deadline = shoal__deadline_in(c->timeout_s);
    uint64_t seq = ++c->shm_seq;
    int st = shoal__shm_publish(c, seq, m->rank == root ? buf : NULL, m->rank == root ? bytes : 0, deadline);
    if (st != SHOAL_OK) return st;
    /* everyone waits for everyone (not only the root), so that `done` below is a promise that
     * the whole group has moved past this operation's slots */
    if ((st = shoal__shm_wait_all(c, SHOAL__SHM_READY, seq, deadline)) != SHOAL_OK) return st;
    if (m->rank != root && bytes) memcpy(buf, shoal__shm_slot(m, root, seq), bytes);
    finish(c, seq);
    return SHOAL_OK;
}
