/* A persistent thread pool for the CPU kernels: n threads (the caller counts as thread 0) run
 * one function at a time, fork-join. Waiting workers spin briefly (a decode step issues a few
 * hundred short jobs per token, so waking through a condition variable each time would cost
 * more than the work) and then sleep on a condition variable. */
#ifndef SHOAL_MODEL_CPU_POOL_H
#define SHOAL_MODEL_CPU_POOL_H

typedef struct shoal__pool shoal__pool;
/* fn(arg, ith, nth) runs once on each of the nth threads; ith in 0..nth-1. */
typedef void (*shoal__pool_fn)(void *arg, int ith, int nth);

int shoal__pool_create(int threads, shoal__pool **out); /* threads >= 1 */
void shoal__pool_free(shoal__pool *p);
int shoal__pool_threads(const shoal__pool *p);
/* Runs fn on every thread and returns when all are done. Not reentrant. */
void shoal__pool_run(shoal__pool *p, shoal__pool_fn fn, void *arg);

#endif
