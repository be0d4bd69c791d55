/* shoal rpc: named remote calls between the ranks of a group.
 *
 * Every rank that creates an endpoint on a group can register handlers by name and call any
 * other rank (or itself). Calls travel on the group's control lane, so they never queue behind
 * bulk data. Any number of calls may be in flight from any number of threads; replies are
 * matched by request id, in whatever order they complete. Handlers run on a fixed pool of
 * threads per endpoint (never a thread per call).
 *
 * A call fails with:
 *   SHOAL_ERR_REMOTE      the handler returned an error: its text is in the error detail;
 *   SHOAL_ERR_NOT_FOUND   no handler of that name on the callee;
 *   SHOAL_ERR_INVALID     arguments or reply above the size cap (checked before allocating);
 *   SHOAL_ERR_TIMEOUT     no reply by the deadline;
 *   SHOAL_ERR_PEER_FAILED the callee died, hung (no heartbeat for the group's heartbeat
 *                         timeout) or its connection dropped;
 *   SHOAL_ERR_ABORTED     the group was aborted; SHOAL_ERR_CANCELLED by shoal_future_cancel. */
#ifndef SHOAL_RPC_H
#define SHOAL_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_rpc shoal_rpc;       /* one endpoint per group */
typedef struct shoal_future shoal_future; /* a call in flight */

#define SHOAL_RPC_NAME_MAX 48 /* bytes in a function name */

/* A handler: args (args_len bytes, valid during the call) from comm rank `caller`. On success
 * return SHOAL_OK and optionally set *reply to a malloc'd buffer of *reply_len bytes (the
 * endpoint frees it). On failure return any negative status and write a message into err:
 * the caller receives SHOAL_ERR_REMOTE with that text. Handlers run concurrently on the
 * endpoint's pool threads. */
typedef int (*shoal_rpc_handler)(void *user, int caller, const void *args, size_t args_len,
                                 void **reply, size_t *reply_len, char *err, size_t errcap);

typedef struct shoal_rpc_config {
    uint32_t struct_size; /* sizeof(shoal_rpc_config) */
    uint32_t version;     /* SHOAL_RPC_CONFIG_VERSION */
    int threads;          /* handler threads; <= 0: SHOAL_RPC_THREADS (4) */
    uint64_t max_size;    /* cap on arguments and replies in bytes; 0: SHOAL_RPC_MAX_SIZE (1G) */
} shoal_rpc_config;

#define SHOAL_RPC_CONFIG_VERSION 1
#define SHOAL_RPC_CONFIG_INIT { sizeof(shoal_rpc_config), SHOAL_RPC_CONFIG_VERSION, 0, 0 }

/* Creates the endpoint of this rank on comm (one per comm; cfg may be NULL). Calls that
 * arrive for a name not yet registered get SHOAL_ERR_NOT_FOUND, so register before peers call
 * (e.g. create, register, then barrier). */
int shoal_rpc_create(shoal_rpc **rpc, shoal_comm *comm, const shoal_rpc_config *cfg);

/* Stops serving: pending outgoing calls complete with SHOAL_ERR_CANCELLED, running handlers
 * finish, then everything is freed. The comm stays usable. NULL is ignored. */
int shoal_rpc_free(shoal_rpc *rpc);

/* Registers (or replaces, or with fn NULL removes) the handler for name. */
int shoal_rpc_register(shoal_rpc *rpc, const char *name, shoal_rpc_handler fn, void *user);

/* Calls name on comm rank dst and waits up to timeout_s (< 0: the comm's timeout). On success
 * *reply is a malloc'd buffer (NULL when empty) the caller frees, *reply_len its length. */
int shoal_rpc_call(shoal_rpc *rpc, int dst, const char *name, const void *args, size_t args_len,
                   void **reply, size_t *reply_len, double timeout_s);

/* Starts a call and returns at once. args must stay valid until the future completes (they
 * are sent without a copy). The call's deadline is now + timeout_s (< 0: the comm's). */
int shoal_rpc_call_async(shoal_rpc *rpc, int dst, const char *name, const void *args,
                         size_t args_len, double timeout_s, shoal_future **f);

/* *done = 1 once the call has completed; never blocks (but makes progress). */
int shoal_future_test(shoal_future *f, int *done);

/* Waits until the call completes or its deadline passes, returns its status and frees f. On
 * success *reply / *reply_len as for shoal_rpc_call (either may be NULL to drop the reply). */
int shoal_future_wait(shoal_future *f, void **reply, size_t *reply_len);

/* Cancels a call in flight: a later reply is discarded; wait returns SHOAL_ERR_CANCELLED. */
int shoal_future_cancel(shoal_future *f);

/* Frees a future, cancelling it first if it is still pending. NULL is ignored. */
void shoal_future_free(shoal_future *f);

/* Detail text of the calling thread's last failed call on rpc ("" if none). */
const char *shoal_rpc_last_error(const shoal_rpc *rpc);

#ifdef __cplusplus
}
#endif
#endif
