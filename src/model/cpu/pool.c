/* Fork-join thread pool (see pool.h). A job is published by bumping `gen`; each worker runs it
 * and decrements `pending`; the caller runs its own share then spins until pending is 0. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/common.h"
#include "model/cpu/pool.h"

/* Workers spin this many pauses (tens of microseconds) for the next job before sleeping: long
 * enough to bridge the gaps between the kernels of one forward pass, short enough that an idle
 * pipeline stage does not take the cores its neighbours need (20000 cost a 2-stage pipeline a
 * third of its speed on the device machine; 200 gave 0.91-0.93x of single-process). */
#define SPIN_ITERS 500

struct shoal__pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int pending;
    atomic_int stop;
    shoal__pool_fn fn;
    void *arg;
};

typedef struct worker_arg {
    shoal__pool *p;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *varg) {
    worker_arg *wa = varg;
    shoal__pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
}

int shoal__pool_create(int threads, shoal__pool **out) {
    *out = NULL;
    if (threads < 1) threads = 1;
    shoal__pool *p = calloc(1, sizeof *p);
    if (!p) return SHOAL_ERR_NOMEM;
    p->n = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return SHOAL_ERR_NOMEM;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[i], NULL, worker, (wa->p = p, wa->ith = i, wa))) {
            free(wa);
            p->n = i; /* the workers that did start are joined by free */
            shoal__pool_free(p);
            return SHOAL_ERR_SYSTEM;
        }
    }
    *out = p;
    return SHOAL_OK;
}

void shoal__pool_free(shoal__pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int shoal__pool_threads(const shoal__pool *p) { return p->n; }

void shoal__pool_run(shoal__pool *p, shoal__pool_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    /* spin, then yield: on an oversubscribed machine a descheduled worker needs our core */
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < 2000) cpu_relax();
        else sched_yield();
    }
}
