/* The local launcher: starts N ranks with fork+exec, waits for them, and tears the job down
 * when one fails (see include/shoal/launch.h for the contract).
 *
 * Waiting uses a pidfd per child where the kernel has them (Linux >= 5.3), so the loop wakes
 * as soon as any child exits without a SIGCHLD handler (which a library must not take over);
 * without pidfds it polls every few milliseconds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, strsignal */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch/launch_int.h"

extern char **environ;

#define POLL_FALLBACK_MS 10 /* wake-up period when a child has no pidfd */
#define ERR_CAP 512

typedef struct child {
    pid_t pid;
    int pidfd;   /* -1 when unavailable or after reaping */
    int running; /* 1 until reaped */
    int status;  /* 0..255 once reaped (128+S when killed by signal S) */
    int signal;  /* the signal that killed it, 0 if it exited */
} child;

struct shoal_launch {
    int n;
    child *kids;
    int nrunning;
    struct pollfd *pfds; /* n pidfds + the signal pipe */
    int forwarding;      /* this job owns signal forwarding */
    double grace_s;
    double deadline;     /* overall timeout as a shoal__now() value, or SHOAL__FOREVER */
    double timeout_s;
    double kill_at;      /* when SIGKILL follows SIGTERM; SHOAL__FOREVER when not pending */
    int status_set;      /* the job's status is decided (first failure, timeout, terminate) */
    int status;
    int failed_rank;
    int keep_going; /* see shoal_launch_config.keep_going */
    int interrupted;     /* last forwarded signal, 0 if none */
    char master[64];
    char group_id[40];
    char err[ERR_CAP];
};

static _Thread_local char start_err[ERR_CAP];

const char *shoal_launch_start_error(void) { return start_err; }

/* ---- children ------------------------------------------------------------------------------ */

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, (long)pid, 0L);
    return fd < 0 ? -1 : (int)fd;
#else
    (void)pid;
    return -1;
#endif
}

/* Records how a reaped child ended. r is waitpid's result: anything but the pid means its
 * status is lost (ECHILD: reaped elsewhere), which counts as a failure, not a success. */
static void record_exit(child *k, pid_t r, int wstatus) {
    k->running = 0;
    k->signal = 0;
    if (r == k->pid && WIFEXITED(wstatus)) {
        k->status = WEXITSTATUS(wstatus);
    } else if (r == k->pid && WIFSIGNALED(wstatus)) {
        k->signal = WTERMSIG(wstatus);
        k->status = 128 + k->signal;
    } else {
        k->status = 255;
    }
    if (k->pidfd >= 0) close(k->pidfd);
    k->pidfd = -1;
}

/* Runs in the forked child: only async-signal-safe calls until exec (the parent may have other
 * threads holding locks). On failure the errno goes up the exec pipe and the child exits 127. */
static void child_exec(int errpipe, char *const *argv, char **env, pid_t parent,
                       const sigset_t *mask, int die_with_parent, int null_stdin) {
    setpgid(0, 0);
    if (null_stdin) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd > 0) {
            dup2(fd, 0);
            close(fd);
        }
    }
    if (die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(SHOAL_LAUNCH_EXEC_FAILED); /* it died before prctl */
    }
    shoal__launch_fwd_child_reset();
    sigprocmask(SIG_SETMASK, mask, NULL);
    environ = env; /* so that execvp searches the child's PATH, as a shell would */
    execvp(argv[0], argv);
    int e = errno;
    ssize_t w = write(errpipe, &e, sizeof e);
    (void)w;
    _exit(SHOAL_LAUNCH_EXEC_FAILED);
}

/* Forks local rank i with environment env and waits until it has executed the program.
 * SHOAL_OK with kid filled, or an error with text in err (the failed child is reaped). */
static int spawn(child *kid, int i, char *const *argv, char **env, int die_with_parent,
                 int null_stdin, char *err, size_t errcap) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        shoal__errf(err, errcap, "pipe: %s", strerror(errno));
        return SHOAL_ERR_SYSTEM;
    }
    /* Block every signal across fork so that the child cannot run a launcher handler before it
     * has reset them; it restores the original mask just before exec. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child_exec(p[1], argv, env, parent, &old, die_with_parent, null_stdin);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        shoal__errf(err, errcap, "rank %d: fork: %s", i, strerror(fork_errno));
        return SHOAL_ERR_SYSTEM;
    }
    /* Also from the parent, so the group exists whichever of the two runs first. EACCES after
     * the child's exec is harmless: the child did it itself. */
    setpgid(pid, pid);
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(p[0], &child_errno, sizeof child_errno);
    } while (r < 0 && errno == EINTR);
    close(p[0]);
    if (r == (ssize_t)sizeof child_errno) {
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        shoal__errf(err, errcap, "cannot execute '%s': %s", argv[0], strerror(child_errno));
        return child_errno == ENOENT ? SHOAL_ERR_NOT_FOUND : SHOAL_ERR_SYSTEM;
    }
    kid->pid = pid;
    kid->pidfd = open_pidfd(pid);
    kid->running = 1;
    kid->status = -1;
    return SHOAL_OK;
}

/* Sends sig to each running child's process group (falls back to the pid alone if the group
 * is already gone, e.g. the child left it). Reaped children are skipped: their pid may have
 * been reused. */
static void signal_running(shoal_launch *job, int sig) {
    for (int i = 0; i < job->n; i++) {
        child *k = &job->kids[i];
        if (!k->running) continue;
        if (kill(-k->pid, sig) != 0) kill(k->pid, sig);
    }
}

/* Kills every running child and reaps it (blocking). Used on teardown. */
static void kill_and_reap(shoal_launch *job) {
    signal_running(job, SIGKILL);
    for (int i = 0; i < job->n; i++) {
        child *k = &job->kids[i];
        if (k->running) {
            int ws = 0;
            pid_t r;
            while ((r = waitpid(k->pid, &ws, 0)) < 0 && errno == EINTR) {
            }
            record_exit(k, r, ws);
            job->nrunning--;
        }
    }
}

/* ---- start --------------------------------------------------------------------------------- */

static int check_config(const shoal_launch_config *in, shoal_launch_config *c) {
    const shoal_launch_config defaults = SHOAL_LAUNCH_CONFIG_INIT;
    *c = defaults;
    if (!in) {
        shoal__errf(start_err, sizeof start_err, "no launch configuration");
        return SHOAL_ERR_INVALID;
    }
    if (in->version != SHOAL_LAUNCH_CONFIG_VERSION || in->struct_size < 2 * sizeof(uint32_t) ||
        in->struct_size > sizeof *c) {
        shoal__errf(start_err, sizeof start_err,
                    "launch config has version %u and size %u; this library expects version %u "
                    "and size <= %zu (start from SHOAL_LAUNCH_CONFIG_INIT)",
                    in->version, in->struct_size, SHOAL_LAUNCH_CONFIG_VERSION, sizeof *c);
        return SHOAL_ERR_INVALID;
    }
    memcpy(c, in, in->struct_size);
    if (c->nranks < 1 || c->nranks > SHOAL_LAUNCH_MAX_RANKS) {
        shoal__errf(start_err, sizeof start_err, "number of ranks %d is not in 1..%d", c->nranks,
                    SHOAL_LAUNCH_MAX_RANKS);
        return SHOAL_ERR_INVALID;
    }
    if (!c->argv || !c->argv[0] || !c->argv[0][0]) {
        shoal__errf(start_err, sizeof start_err, "no program to launch");
        return SHOAL_ERR_INVALID;
    }
    for (size_t i = 0; c->env && c->env[i]; i++) {
        if (!shoal__launch_env_entry_ok(c->env[i])) {
            shoal__errf(start_err, sizeof start_err,
                        "environment entry '%s' is not NAME=value", c->env[i]);
            return SHOAL_ERR_INVALID;
        }
    }
    if (c->first_rank < 0 || c->world_size < 0 ||
        (c->world_size > 0 && c->first_rank + c->nranks > c->world_size)) {
        shoal__errf(start_err, sizeof start_err,
                    "ranks %d..%d do not fit in a world of size %d", c->first_rank,
                    c->first_rank + c->nranks - 1, c->world_size);
        return SHOAL_ERR_INVALID;
    }
    if (c->master && (!*c->master || strlen(c->master) >= 64)) {
        shoal__errf(start_err, sizeof start_err, "master address '%s' is empty or too long",
                    c->master);
        return SHOAL_ERR_INVALID;
    }
    if (c->group_id && (!*c->group_id || strlen(c->group_id) >= 40)) {
        shoal__errf(start_err, sizeof start_err, "group id must be 1..39 characters");
        return SHOAL_ERR_INVALID;
    }
    return SHOAL_OK;
}

/* Chooses the job-wide values: master address, key, group id. */
static int job_identity(shoal_launch *job, const shoal_launch_config *c, char *key,
                        size_t keycap) {
    int rc;
    if (c->master) {
        snprintf(job->master, sizeof job->master, "%s", c->master);
    } else {
        unsigned port = 0;
        if ((rc = shoal__launch_free_port(&port, start_err, sizeof start_err)) != SHOAL_OK)
            return rc;
        snprintf(job->master, sizeof job->master, "127.0.0.1:%u", port);
    }
    if (c->cluster_key) {
        snprintf(key, keycap, "%s", c->cluster_key);
    } else if ((rc = shoal__launch_random_hex(key, 32, start_err, sizeof start_err)) != SHOAL_OK) {
        return rc;
    }
    if (c->group_id) {
        snprintf(job->group_id, sizeof job->group_id, "%s", c->group_id);
    } else if ((rc = shoal__launch_random_hex(job->group_id, 8, start_err,
                                              sizeof start_err)) != SHOAL_OK) {
        return rc;
    }
    return SHOAL_OK;
}

/* Fills set[0..NVARS) with the "NAME=value" entries of local rank i, written into buf. */
enum { NVARS = 7, VAR_CAP = 96 /* bytes per entry, besides the key, master and group id */ };
static void rank_vars(const shoal_launch_config *c, const shoal_launch *job, const char *key,
                      int i, char *buf, size_t cap, const char **set) {
    static const char *const names[NVARS] = {"SHOAL_RANK",        "SHOAL_WORLD_SIZE",
                                             "SHOAL_MASTER",      "SHOAL_CLUSTER_KEY",
                                             "SHOAL_GROUP_ID",    "SHOAL_LOCAL_RANK",
                                             "SHOAL_LOCAL_SIZE"};
    int world = c->world_size > 0 ? c->world_size : c->first_rank + c->nranks;
    char num[4][24];
    snprintf(num[0], sizeof num[0], "%d", c->first_rank + i);
    snprintf(num[1], sizeof num[1], "%d", world);
    snprintf(num[2], sizeof num[2], "%d", i);
    snprintf(num[3], sizeof num[3], "%d", c->nranks);
    const char *vals[NVARS] = {num[0], num[1], job->master, key, job->group_id, num[2], num[3]};
    for (int v = 0; v < NVARS; v++) {
        int w = snprintf(buf, cap, "%s=%s", names[v], vals[v]); /* cap is large enough */
        set[v] = buf;
        buf += w + 1;
        cap -= (size_t)w + 1;
    }
}

int shoal_launch_start(const shoal_launch_config *cfg, shoal_launch **out) {
    shoal_launch_config c;
    int rc;
    shoal_launch *job = NULL;
    char *key = NULL;
    char *vars = NULL;
    start_err[0] = 0;
    if (!out) {
        shoal__errf(start_err, sizeof start_err, "no place for the job handle");
        return SHOAL_ERR_INVALID;
    }
    *out = NULL;
    if ((rc = check_config(cfg, &c)) != SHOAL_OK) return rc;

    rc = SHOAL_ERR_NOMEM;
    size_t keycap = c.cluster_key ? strlen(c.cluster_key) + 1 : 65;
    job = calloc(1, sizeof *job);
    key = malloc(keycap);
    if (!job || !key) goto fail;
    job->n = c.nranks;
    job->kids = calloc((size_t)c.nranks, sizeof *job->kids);
    job->pfds = calloc((size_t)c.nranks + 1, sizeof *job->pfds);
    if (!job->kids || !job->pfds) goto fail;
    for (int i = 0; i < c.nranks; i++) job->kids[i].pidfd = -1;
    job->grace_s = c.grace_s < 0 ? 1.0 : c.grace_s;
    job->timeout_s = c.timeout_s;
    job->kill_at = SHOAL__FOREVER;
    job->failed_rank = -1;
    job->keep_going = c.keep_going;
    if ((rc = job_identity(job, &c, key, keycap)) != SHOAL_OK) goto fail;
    if (c.forward_signals) {
        if ((rc = shoal__launch_fwd_install(start_err, sizeof start_err)) != SHOAL_OK) goto fail;
        job->forwarding = 1;
    }

    /* The launcher's variables of one rank, rewritten in place for each rank. */
    size_t varcap = VAR_CAP * NVARS + strlen(key) + strlen(job->master) + strlen(job->group_id);
    vars = malloc(varcap);
    if (!vars) goto fail;
    /* The ranks are not in the terminal's foreground process group, where reading the
     * terminal would stop them (SIGTTIN) and hang the job; a pipe or file is fine. */
    int null_stdin = isatty(0);
    for (int i = 0; i < c.nranks; i++) {
        const char *set[NVARS];
        rank_vars(&c, job, key, i, vars, varcap, set);
        char **env = shoal__launch_env(c.env, set, NVARS);
        if (!env) {
            rc = SHOAL_ERR_NOMEM;
            shoal__errf(start_err, sizeof start_err, "out of memory building the environment");
            goto fail;
        }
        rc = spawn(&job->kids[i], i, c.argv, env, c.die_with_parent, null_stdin, start_err,
                   sizeof start_err);
        free(env);
        if (rc != SHOAL_OK) goto fail;
        job->nrunning++;
    }
    free(vars);
    free(key);
    job->deadline = c.timeout_s > 0 ? shoal__deadline_in(c.timeout_s) : SHOAL__FOREVER;
    *out = job;
    return SHOAL_OK;

fail:
    if (rc == SHOAL_ERR_NOMEM && !start_err[0])
        shoal__errf(start_err, sizeof start_err, "out of memory");
    if (job) {
        if (job->kids) kill_and_reap(job);
        if (job->forwarding) shoal__launch_fwd_uninstall();
        free(job->kids);
        free(job->pfds);
        free(job);
    }
    free(vars);
    free(key);
    return rc;
}

/* ---- wait ---------------------------------------------------------------------------------- */

static void begin_termination(shoal_launch *job, int sig) {
    signal_running(job, sig);
    if (job->kill_at == SHOAL__FOREVER) job->kill_at = shoal__deadline_in(job->grace_s);
}

static void describe_exit(char *buf, size_t cap, int i, pid_t pid, const child *k, int lost) {
    if (lost)
        shoal__errf(buf, cap, "rank %d (pid %d) was reaped outside the launcher: status unknown",
                    i, (int)pid);
    else if (k->signal)
        shoal__errf(buf, cap, "rank %d (pid %d) was killed by signal %d (%s)", i, (int)pid,
                    k->signal, strsignal(k->signal));
    else
        shoal__errf(buf, cap, "rank %d (pid %d) exited with status %d", i, (int)pid, k->status);
}

/* Collects every child that has exited. The first non-zero status decides the job's status
 * and starts the termination of the others. */
static void reap(shoal_launch *job) {
    for (int i = 0; i < job->n; i++) {
        child *k = &job->kids[i];
        if (!k->running) continue;
        int ws = 0;
        pid_t r;
        while ((r = waitpid(k->pid, &ws, WNOHANG)) < 0 && errno == EINTR) {
        }
        if (r == 0) continue;
        record_exit(k, r, ws);
        job->nrunning--;
        if (k->status == 0 || job->status_set) continue;
        job->status_set = 1;
        job->status = k->status;
        if (job->interrupted) {
            /* A consequence of the forwarded signal, not a failure of its own. */
            shoal__errf(job->err, sizeof job->err, "interrupted by signal %d (%s)",
                        job->interrupted, strsignal(job->interrupted));
        } else {
            job->failed_rank = i;
            describe_exit(job->err, sizeof job->err, i, k->pid, k, r != k->pid);
        }
        if (!job->keep_going) begin_termination(job, SIGTERM);
    }
}

static void forward_pending(shoal_launch *job) {
    int sig;
    while ((sig = shoal__launch_fwd_next()) != 0) {
        if (job->interrupted) {
            /* A second signal: the user does not want to wait for a graceful exit. */
            signal_running(job, SIGKILL);
        } else {
            job->interrupted = sig;
            begin_termination(job, sig);
        }
    }
}

static double min3(double a, double b, double c) {
    double m = a < b ? a : b;
    return m < c ? m : c;
}

static void finish(shoal_launch *job) {
    if (job->status_set) return;
    job->status_set = 1;
    if (job->interrupted) {
        /* Every rank exited 0 after the forwarded signal: still report the interruption. */
        job->status = 128 + job->interrupted;
        shoal__errf(job->err, sizeof job->err, "interrupted by signal %d (%s)", job->interrupted,
                    strsignal(job->interrupted));
    } else {
        job->status = 0;
    }
}

int shoal_launch_wait(shoal_launch *job, double wait_s, int *status) {
    if (!job) return SHOAL_ERR_INVALID;
    double until = wait_s < 0 ? SHOAL__FOREVER : shoal__deadline_in(wait_s);
    for (;;) {
        reap(job);
        if (job->nrunning == 0) break;
        if (job->forwarding) forward_pending(job);
        double t = shoal__now();
        if (t >= job->deadline && job->deadline != SHOAL__FOREVER) {
            job->deadline = SHOAL__FOREVER;
            if (!job->status_set) {
                job->status_set = 1;
                job->status = SHOAL_LAUNCH_TIMED_OUT;
                shoal__errf(job->err, sizeof job->err,
                            "timed out after %g s with %d of %d ranks still running",
                            job->timeout_s, job->nrunning, job->n);
            }
            begin_termination(job, SIGTERM);
        }
        if (t >= job->kill_at) {
            signal_running(job, SIGKILL);
            job->kill_at = SHOAL__FOREVER;
        }
        if (t >= until) return SHOAL_ERR_TIMEOUT;

        int nfd = 0, fallback = 0;
        for (int i = 0; i < job->n; i++) {
            child *k = &job->kids[i];
            if (!k->running) continue;
            if (k->pidfd < 0) fallback = 1;
            job->pfds[nfd].fd = k->pidfd;
            job->pfds[nfd].events = POLLIN;
            job->pfds[nfd].revents = 0;
            nfd++;
        }
        if (job->forwarding) {
            job->pfds[nfd].fd = shoal__launch_fwd_fd();
            job->pfds[nfd].events = POLLIN;
            job->pfds[nfd].revents = 0;
            nfd++;
        }
        int ms = shoal__ms_until(min3(until, job->deadline, job->kill_at),
                                 fallback ? POLL_FALLBACK_MS : -1);
        /* A negative fd is ignored by poll; EINTR just means "look again". */
        if (poll(job->pfds, (nfds_t)nfd, ms) < 0 && errno != EINTR) {
            shoal__errf(job->err, sizeof job->err, "poll: %s", strerror(errno));
            return SHOAL_ERR_SYSTEM;
        }
    }
    finish(job);
    if (status) *status = job->status;
    return SHOAL_OK;
}

/* ---- control and accessors ------------------------------------------------------------------ */

int shoal_launch_terminate(shoal_launch *job) {
    if (!job) return SHOAL_ERR_INVALID;
    if (job->nrunning == 0) return SHOAL_OK;
    if (!job->status_set) {
        job->status_set = 1;
        job->status = 128 + SIGTERM;
        shoal__errf(job->err, sizeof job->err, "terminated by the launcher");
    }
    begin_termination(job, SIGTERM);
    return SHOAL_OK;
}

int shoal_launch_signal(shoal_launch *job, int sig) {
    if (!job || sig < 0 || sig >= NSIG) return SHOAL_ERR_INVALID;
    signal_running(job, sig);
    return SHOAL_OK;
}

pid_t shoal_launch_pid(const shoal_launch *job, int i) {
    return job && i >= 0 && i < job->n ? job->kids[i].pid : -1;
}

int shoal_launch_rank_status(const shoal_launch *job, int i) {
    if (!job || i < 0 || i >= job->n || job->kids[i].running) return -1;
    return job->kids[i].status;
}

int shoal_launch_rank_signal(const shoal_launch *job, int i) {
    if (!job || i < 0 || i >= job->n || job->kids[i].running) return 0;
    return job->kids[i].signal;
}

int shoal_launch_failed_rank(const shoal_launch *job) { return job ? job->failed_rank : -1; }
int shoal_launch_nranks(const shoal_launch *job) { return job ? job->n : 0; }
const char *shoal_launch_master(const shoal_launch *job) { return job ? job->master : ""; }
const char *shoal_launch_group_id(const shoal_launch *job) { return job ? job->group_id : ""; }
const char *shoal_launch_last_error(const shoal_launch *job) { return job ? job->err : ""; }

void shoal_launch_free(shoal_launch *job) {
    if (!job) return;
    kill_and_reap(job);
    if (job->forwarding) shoal__launch_fwd_uninstall();
    free(job->kids);
    free(job->pfds);
    free(job);
}
