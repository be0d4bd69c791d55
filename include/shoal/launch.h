/* shoal launch: start N local ranks of a program, like `mpirun -np N` on one host.
 *
 * The launcher picks a rendezvous address (127.0.0.1 and a free port), a random cluster key and
 * a random group id, and starts every rank with fork+exec. Each child gets the launcher's
 * environment plus
 *     SHOAL_RANK, SHOAL_WORLD_SIZE, SHOAL_MASTER, SHOAL_CLUSTER_KEY, SHOAL_GROUP_ID,
 *     SHOAL_LOCAL_RANK, SHOAL_LOCAL_SIZE
 * so that shoal_comm_init(&c, NULL) in the child forms the group. Children share the launcher's
 * stdout and stderr (their output is not copied or reordered) and each runs in a process group
 * of its own, so a rank's own helper processes are signalled together with it. They inherit
 * stdin too, except a terminal: then they read /dev/null, because a process outside the
 * terminal's foreground group that reads it is stopped.
 *
 * The job ends when every child has exited. Its exit status is the first non-zero status of a
 * child in the order they ended (a child killed by signal S counts as 128+S), or 0. When a
 * child fails, the others get SIGTERM and, after a grace period, SIGKILL. The library never
 * exits, aborts or leaves a zombie: every child is reaped by shoal_launch_wait or by
 * shoal_launch_free.
 *
 * Threading: a job handle is used by one thread at a time. Different jobs are independent,
 * except that at most one job at a time may forward signals (forward_signals). */
#ifndef SHOAL_LAUNCH_H
#define SHOAL_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shoal/shoal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_launch shoal_launch; /* opaque running job */

/* Exit statuses the job can end with besides a child's own. */
#define SHOAL_LAUNCH_TIMED_OUT 124   /* the overall timeout passed (as timeout(1)) */
#define SHOAL_LAUNCH_EXEC_FAILED 127 /* a rank could not be executed (as the shell) */

typedef struct shoal_launch_config {
    uint32_t struct_size;     /* sizeof(shoal_launch_config): lets the struct grow compatibly */
    uint32_t version;         /* SHOAL_LAUNCH_CONFIG_VERSION */
    int nranks;               /* processes to start on this host, 1..SHOAL_LAUNCH_MAX_RANKS */
    char *const *argv;        /* program and arguments, NULL-terminated; argv[0] without a '/'
                                 is searched in PATH (the children's PATH). Read only
                                 during shoal_launch_start. */
    const char *const *env;   /* extra "NAME=value" entries for every child, NULL-terminated;
                                 NULL: none. They override inherited variables, but not the
                                 SHOAL_* variables above (use the fields below for those). */
    double timeout_s;         /* > 0: the job is terminated after this long and ends with
                                 SHOAL_LAUNCH_TIMED_OUT; <= 0: no limit */
    double grace_s;           /* time between SIGTERM and SIGKILL; < 0: 1 s */
    int forward_signals;      /* 1: SIGINT and SIGTERM received by this process while the job
                                 runs are sent to every child (handlers installed by start,
                                 restored by free) */
    int die_with_parent;      /* 1: a child gets SIGKILL when the thread that started it exits
                                 (PR_SET_PDEATHSIG), so a killed launcher leaves no orphans.
                                 Only for jobs started by a long-lived thread. */
    const char *master;       /* "host:port" of rank 0's store; NULL: 127.0.0.1 and a free port */
    const char *cluster_key;  /* NULL: 32 random bytes as 64 hex digits */
    const char *group_id;     /* NULL: random */
    int first_rank;           /* SHOAL_RANK of the first child (local rank 0); 0 for a local job */
    int world_size;           /* SHOAL_WORLD_SIZE; <= 0: first_rank + nranks */
    int keep_going;           /* 1: a failed child does not end the job (no SIGTERM to the rest);
                                 the job still ends when every child has exited (worker pools) */
} shoal_launch_config;

#define SHOAL_LAUNCH_CONFIG_VERSION 1
#define SHOAL_LAUNCH_MAX_RANKS 4096
#define SHOAL_LAUNCH_CONFIG_INIT \
    { sizeof(shoal_launch_config), SHOAL_LAUNCH_CONFIG_VERSION, 0, NULL, NULL, 0.0, -1.0, 0, 0, \
      NULL, NULL, NULL, 0, 0, 0 }

/* Starts every rank. Returns once each child has either executed the program or failed to.
 * On success *job owns the children. On error *job is NULL, every child already started has
 * been killed and reaped, and the detail is in shoal_launch_start_error():
 * SHOAL_ERR_INVALID (bad config), SHOAL_ERR_NOT_FOUND (the program does not exist),
 * SHOAL_ERR_SYSTEM (fork, exec permission, ports, ...), SHOAL_ERR_NOMEM. A command-line tool
 * should exit with SHOAL_LAUNCH_EXEC_FAILED when start fails. */
int shoal_launch_start(const shoal_launch_config *cfg, shoal_launch **job);

/* Detail text of the calling thread's last failed shoal_launch_start. */
const char *shoal_launch_start_error(void);

/* Waits up to wait_s seconds (< 0: until the end; 0: just polls) for the job to end, while
 * reaping children, enforcing the overall timeout and forwarding signals. SHOAL_OK: the job
 * has ended, every child is reaped and *status (may be NULL) holds the job's exit status.
 * SHOAL_ERR_TIMEOUT: it is still running after wait_s (call again); SHOAL_ERR_SYSTEM: waiting
 * failed (the job is left as it was; free kills it). After the end, further calls return
 * SHOAL_OK with the same status. */
int shoal_launch_wait(shoal_launch *job, double wait_s, int *status);

/* Begins termination as after a failure: the running children get SIGTERM, then SIGKILL after
 * the grace period (which shoal_launch_wait enforces). The job's status is unchanged unless no
 * child has failed yet, in which case it becomes 128+SIGTERM. */
int shoal_launch_terminate(shoal_launch *job);

/* Sends sig to the process group of every child still running (not to reaped ones). */
int shoal_launch_signal(shoal_launch *job, int sig);

/* The pid of local rank i (kept after the child is reaped, for diagnostics); -1 if out of range. */
pid_t shoal_launch_pid(const shoal_launch *job, int i);

/* Exit status of local rank i: -1 while it runs, else 0..255 (128+S when killed by S). */
int shoal_launch_rank_status(const shoal_launch *job, int i);

/* The signal that killed local rank i, 0 if it exited normally or still runs. */
int shoal_launch_rank_signal(const shoal_launch *job, int i);

/* The local rank whose exit decided the job's status; -1 while no child has failed (or when
 * the status came from the timeout or a forwarded signal). */
int shoal_launch_failed_rank(const shoal_launch *job);

int shoal_launch_nranks(const shoal_launch *job);
const char *shoal_launch_master(const shoal_launch *job);   /* "127.0.0.1:PORT" */
const char *shoal_launch_group_id(const shoal_launch *job);

/* A line describing why the job ended ("rank 2 exited with status 3", "timed out after 5 s"),
 * or "" while it runs or when every rank succeeded. Valid until the next call on job. */
const char *shoal_launch_last_error(const shoal_launch *job);

/* Kills (SIGKILL) and reaps every child still running, restores signal handlers and frees the
 * handle. NULL is ignored. */
void shoal_launch_free(shoal_launch *job);

#ifdef __cplusplus
}
#endif
#endif
