/* Internal pieces of the local launcher (src/launch/), shared between its files. */
#ifndef SHOAL_LAUNCH_INT_H
#define SHOAL_LAUNCH_INT_H

#include <stddef.h>

#include "common/common.h"
#include "shoal/launch.h"

/* ---- launch_env.c ------------------------------------------------------------------------- */

/* A free TCP port on 127.0.0.1: binds port 0, reads the port the kernel chose, closes. Another
 * process could take it before rank 0 binds it; the window is short and the failure is loud
 * (rank 0 reports the address in use), as with torchrun's free-port choice. */
int shoal__launch_free_port(unsigned *port, char *err, size_t errcap);

/* nbytes random bytes from OpenSSL as 2*nbytes lowercase hex digits (out holds 2*nbytes+1). */
int shoal__launch_random_hex(char *out, size_t nbytes, char *err, size_t errcap);

/* The environment block of one child, NULL-terminated, in one malloc'd array whose strings
 * point into the same allocation or into environ / extra (free with free()). Order of
 * precedence, lowest first: the inherited environment, extra ("NAME=value"), then set (the
 * launcher's own "NAME=value" entries); an entry replaces any earlier one of the same name. */
char **shoal__launch_env(const char *const *extra, const char *const *set, size_t nset);

/* 1 if entry is "NAME=..." for a valid, non-empty NAME. */
int shoal__launch_env_entry_ok(const char *entry);

/* ---- launch_signals.c --------------------------------------------------------------------
 * Forwarding of SIGINT and SIGTERM: while installed, the handler writes each signal number as
 * one byte to a non-blocking pipe whose read end the waiting loop polls. One owner at a time. */

/* Installs the handlers; SHOAL_ERR_INVALID if another job already forwards signals. */
int shoal__launch_fwd_install(char *err, size_t errcap);
void shoal__launch_fwd_uninstall(void);
int shoal__launch_fwd_fd(void); /* read end of the pipe, -1 when not installed */
/* Next forwarded signal, or 0 when none is pending. */
int shoal__launch_fwd_next(void);
/* In a forked child before exec: puts the dispositions of forwarded signals back to SIG_DFL
 * (so a signal that arrives before exec does not run the launcher's handler in the child). */
void shoal__launch_fwd_child_reset(void);

#endif
