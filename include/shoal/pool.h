/* shoal pool: a leader and its worker processes.
 *
 * The leader is rank 0 of a group; workers are ranks 1..N. Workers are either spawned on this
 * host (the same binary run as `PROGRAM worker`, through shoal/launch.h) or remote processes
 * that join with `shoal worker --join HOST:PORT` and the cluster key. Both sides create an rpc
 * endpoint on the group; every worker answers the built-in calls "shoal.ping" and
 * "shoal.shutdown" besides whatever its setup function registers.
 *
 * Health: heartbeats on the control lane notice a dead or stopped worker within the heartbeat
 * timeout; calls pending on it fail with SHOAL_ERR_PEER_FAILED. A worker whose leader is gone
 * (dead, stopped or disconnected) exits on its own. Local workers are reaped by the pool and
 * reported with their exit status or signal; shutdown leaves no process behind. */
#ifndef SHOAL_POOL_H
#define SHOAL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/comm.h"
#include "shoal/rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_pool shoal_pool;

typedef struct shoal_pool_config {
    uint32_t struct_size;          /* sizeof(shoal_pool_config) */
    uint32_t version;              /* SHOAL_POOL_CONFIG_VERSION */
    int workers;                   /* N >= 1 */
    const char *exe;               /* local workers' program; NULL: this program (/proc/self/exe) */
    char *const *worker_args;      /* arguments after exe, NULL-terminated; NULL: {"worker"} */
    const char *const *env;        /* extra "NAME=value" for local workers; NULL: none */
    const char *listen;            /* NULL: spawn N local workers. "host:port": serve there and wait
                                      for N workers to join (`shoal worker --join host:port`) */
    const char *cluster_key;       /* NULL: random for local workers; SHOAL_CLUSTER_KEY for joins */
    double join_timeout_s;         /* how long to wait for every worker; < 0: SHOAL_INIT_TIMEOUT */
    double timeout_s;              /* the group's default deadline; < 0: SHOAL_TIMEOUT */
    double heartbeat_interval_s;   /* < 0: SHOAL_HEARTBEAT_INTERVAL */
    double heartbeat_timeout_s;    /* < 0: SHOAL_HEARTBEAT_TIMEOUT */
    int orphans_die;               /* 1: local workers get SIGKILL the moment the leader's thread
                                      dies (PR_SET_PDEATHSIG) as well as noticing it themselves */
} shoal_pool_config;

#define SHOAL_POOL_CONFIG_VERSION 1
#define SHOAL_POOL_CONFIG_INIT \
    { sizeof(shoal_pool_config), SHOAL_POOL_CONFIG_VERSION, 0, NULL, NULL, NULL, NULL, NULL, \
      -1.0, -1.0, -1.0, -1.0, 1 }

/* How a local worker ended. */
typedef struct shoal_worker_exit {
    int rank;   /* group rank (1..N) */
    int pid;
    int status; /* exit status 0..255, or -1 when killed by a signal */
    int signal; /* the signal that killed it, or 0 */
} shoal_worker_exit;

/* Starts (or waits for) the workers, forms the group as rank 0 and returns when every worker
 * is ready (its handlers are registered). On error nothing is left running and the detail is
 * in shoal_pool_start_error(). */
int shoal_pool_start(shoal_pool **pool, const shoal_pool_config *cfg);
const char *shoal_pool_start_error(void);

shoal_comm *shoal_pool_comm(shoal_pool *pool); /* the group: rank 0 is the leader */
shoal_rpc *shoal_pool_rpc(shoal_pool *pool);   /* the leader's endpoint */
int shoal_pool_workers(const shoal_pool *pool);

/* Pings every live worker at once. SHOAL_OK if all answered within timeout_s; otherwise the
 * first error, with the ranks that did not answer in shoal_comm_error_ranks(comm). *max_rtt_s
 * (may be NULL) gets the slowest round trip. */
int shoal_pool_ping(shoal_pool *pool, double timeout_s, double *max_rtt_s);

/* Reaps local workers that have exited (never blocks) and reports each one once, at most max
 * of them into exits; returns how many were written. */
int shoal_pool_reap(shoal_pool *pool, shoal_worker_exit *exits, int max);

/* Asks every worker to stop, waits up to grace_s for them to leave, kills what is left (local
 * workers), reaps everything and frees the pool. *clean (may be NULL) is 1 when every local
 * worker exited with status 0 on request. */
int shoal_pool_shutdown(shoal_pool *pool, double grace_s, int *clean);

/* ---- the worker side --------------------------------------------------------------------- */

typedef struct shoal_worker_config {
    uint32_t struct_size; /* sizeof(shoal_worker_config) */
    uint32_t version;     /* SHOAL_POOL_CONFIG_VERSION */
    const char *join;     /* NULL: rank and group from the environment (spawned by a pool);
                             "host:port": join the pool served there (takes the next free rank) */
    const char *cluster_key; /* NULL: SHOAL_CLUSTER_KEY / SHOAL_CLUSTER_KEY_FILE */
    /* Registers the worker's own handlers; called before the worker reports ready. */
    int (*setup)(void *user, shoal_rpc *rpc, shoal_comm *comm);
    void *user;
} shoal_worker_config;

#define SHOAL_WORKER_CONFIG_INIT \
    { sizeof(shoal_worker_config), SHOAL_POOL_CONFIG_VERSION, NULL, NULL, NULL, NULL }

/* Runs a worker until the leader asks it to stop (returns 0) or the leader is gone (returns 3);
 * 1 when it could not join (the reason is logged). Meant as the body of `PROGRAM worker`. */
int shoal_worker_run(const shoal_worker_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
