/* Forwarding SIGINT and SIGTERM from the launcher to its children.
 *
 * A signal handler may only do async-signal-safe work, so it writes the signal number to a
 * pipe (the self-pipe trick) and the waiting loop, which polls the pipe's read end, does the
 * forwarding. Handlers are process-wide, hence one owner at a time. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "launch/launch_int.h"

static const int forwarded[] = {SIGINT, SIGTERM};
#define NFWD (sizeof forwarded / sizeof forwarded[0])

static atomic_int owned;                 /* 1 while some job forwards signals */
static int pipe_fd[2] = {-1, -1};        /* [0] read by the wait loop, [1] written by handler */
static struct sigaction saved[NFWD];     /* dispositions to restore on uninstall */
static int installed[NFWD];              /* 1 where our handler replaced saved[i] */

static void on_signal(int sig) {
    int saved_errno = errno;
    unsigned char b = (unsigned char)sig;
    /* Non-blocking: if the pipe is full, enough signals are already pending. */
    ssize_t w = write(pipe_fd[1], &b, 1);
    (void)w;
    errno = saved_errno;
}

int shoal__launch_fwd_install(char *err, size_t errcap) {
    int expect = 0;
    if (!atomic_compare_exchange_strong(&owned, &expect, 1)) {
        shoal__errf(err, errcap, "another job in this process already forwards signals");
        return SHOAL_ERR_INVALID;
    }
    if (pipe2(pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        shoal__errf(err, errcap, "pipe: %s", strerror(errno));
        pipe_fd[0] = pipe_fd[1] = -1;
        atomic_store(&owned, 0);
        return SHOAL_ERR_SYSTEM;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NFWD; i++) {
        /* A signal the launcher was told to ignore (nohup, `cmd &` in a script ignores SIGINT)
         * stays ignored, for the launcher and, through exec, for its children. */
        sigaction(forwarded[i], NULL, &saved[i]);
        installed[i] = saved[i].sa_handler != SIG_IGN;
        if (installed[i]) sigaction(forwarded[i], &sa, NULL);
    }
    return SHOAL_OK;
}

void shoal__launch_fwd_uninstall(void) {
    if (!atomic_load(&owned)) return;
    /* Restore first, close after, so the handler never writes to a closed (or reused) fd. */
    for (size_t i = 0; i < NFWD; i++)
        if (installed[i]) sigaction(forwarded[i], &saved[i], NULL);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
    pipe_fd[0] = pipe_fd[1] = -1;
    atomic_store(&owned, 0);
}

int shoal__launch_fwd_fd(void) { return atomic_load(&owned) ? pipe_fd[0] : -1; }

int shoal__launch_fwd_next(void) {
    if (!atomic_load(&owned)) return 0;
    unsigned char b;
    ssize_t r;
    do {
        r = read(pipe_fd[0], &b, 1);
    } while (r < 0 && errno == EINTR);
    return r == 1 ? (int)b : 0;
}

void shoal__launch_fwd_child_reset(void) {
    if (!atomic_load(&owned)) return;
    /* Back to what the launcher itself had (usually SIG_DFL). */
    for (size_t i = 0; i < NFWD; i++)
        if (installed[i]) sigaction(forwarded[i], &saved[i], NULL);
}
