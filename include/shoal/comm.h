/* shoal comm: process groups over an authenticated TCP mesh.
 *
 * A group ("comm") is a set of ranks 0..size-1. Rank 0 serves a small key-value store used for
 * rendezvous; every rank then connects directly to every other one (two connections per pair:
 * a control lane and a data lane, so barriers and heartbeats never queue behind bulk data).
 * Every connection is authenticated with an HMAC-SHA-256 challenge-response over the cluster key.
 *
 * Threading: every function may be called from any thread. Collectives on one comm must be
 * called in the same order on every member (as in MPI); point-to-point calls need no ordering.
 *
 * Errors: every call returns SHOAL_OK or a negative shoal_status; shoal_comm_last_error()
 * gives the detail text of the calling thread's last failed call on that comm. */
#ifndef SHOAL_COMM_H
#define SHOAL_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/shoal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_comm shoal_comm;       /* opaque process group */
typedef struct shoal_request shoal_request; /* opaque pending operation */

typedef enum shoal_dtype {
    SHOAL_F32 = 0,
    SHOAL_F64 = 1,
    SHOAL_F16 = 2,
    SHOAL_BF16 = 3,
    SHOAL_I8 = 4,
    SHOAL_U8 = 5,
    SHOAL_I32 = 6,
    SHOAL_I64 = 7,
    SHOAL_DTYPE_COUNT
} shoal_dtype;

/* Reduction operators. Integer sums and products wrap around (two's complement);
 * AVG is the sum divided by the group size (integer division truncates toward zero). */
typedef enum shoal_op {
    SHOAL_SUM = 0,
    SHOAL_PROD = 1,
    SHOAL_MIN = 2,
    SHOAL_MAX = 3,
    SHOAL_AVG = 4,
    SHOAL_OP_COUNT
} shoal_op;

#define SHOAL_ANY_SOURCE (-1) /* recv: match a message from any rank */
#define SHOAL_ANY_TAG (-1)    /* recv: match any tag */
#define SHOAL_TAG_MAX 0x7fffffff
#define SHOAL_UNDEFINED (-1)  /* shoal_comm_split color: this rank joins no sub-group */

size_t shoal_dtype_size(shoal_dtype t);             /* 0 for an unknown type */
const char *shoal_dtype_name(shoal_dtype t);        /* "f32", ...; "?" when unknown */
const char *shoal_op_name(shoal_op op);             /* "sum", ...; "?" when unknown */
int shoal_dtype_parse(const char *name, shoal_dtype *out); /* SHOAL_ERR_INVALID if unknown */
int shoal_op_parse(const char *name, shoal_op *out);

/* Group configuration. Fields left at their "unset" value are taken from the environment
 * (SHOAL_*, then torchrun / Open MPI / PMI / Slurm variables), then from the settings
 * registry's defaults. Always start from SHOAL_COMM_CONFIG_INIT. */
typedef struct shoal_comm_config {
    uint32_t struct_size;     /* sizeof(shoal_comm_config): lets the struct grow compatibly */
    uint32_t version;         /* SHOAL_COMM_CONFIG_VERSION */
    int rank;                 /* -1: from the environment */
    int world_size;           /* -1: from the environment */
    const char *master;       /* "host:port" of rank 0's store; NULL: SHOAL_MASTER or MASTER_ADDR:PORT */
    const char *bind_host;    /* address to listen on; NULL: loopback for a local group, else the
                                 local address that reaches the master */
    const void *key;          /* cluster key bytes; NULL: SHOAL_CLUSTER_KEY / SHOAL_CLUSTER_KEY_FILE */
    size_t key_len;
    const char *group_id;     /* any string naming the job; NULL: SHOAL_GROUP_ID or derived from master */
    int insecure;             /* 1: allow a multi-host group without a key; -1: SHOAL_INSECURE */
    double timeout_s;         /* default deadline of every blocking call; <0: SHOAL_TIMEOUT */
    double init_timeout_s;    /* deadline of shoal_comm_init itself; <0: SHOAL_INIT_TIMEOUT */
    uint64_t max_message;     /* largest accepted frame payload in bytes; 0: SHOAL_MAX_MESSAGE */
    const char *algo;         /* force a collective algorithm ("ring", "rd", "auto"); NULL: SHOAL_ALGO */
    double heartbeat_interval_s; /* <0: SHOAL_HEARTBEAT_INTERVAL (1 s); 0 disables heartbeats */
    double heartbeat_timeout_s;  /* <0: SHOAL_HEARTBEAT_TIMEOUT (5 s): silence that means failed */
} shoal_comm_config;

#define SHOAL_COMM_CONFIG_VERSION 1
#define SHOAL_COMM_CONFIG_INIT \
    { sizeof(shoal_comm_config), SHOAL_COMM_CONFIG_VERSION, -1, -1, NULL, NULL, NULL, 0, NULL, -1, \
      -1.0, -1.0, 0, NULL, -1.0, -1.0 }

/* Joins the group: rendezvous through rank 0's store, then a full mesh of authenticated
 * connections. Blocks until every rank has joined or init_timeout_s passes (then
 * SHOAL_ERR_TIMEOUT, and the error text names the ranks that never arrived). cfg may be NULL
 * (all from the environment). On success *comm owns the sockets and threads; on error *comm is
 * NULL and nothing is left behind; the detail is in shoal_comm_init_error(). */
int shoal_comm_init(shoal_comm **comm, const shoal_comm_config *cfg);

/* Detail text of the calling thread's last failed shoal_comm_init. */
const char *shoal_comm_init_error(void);

/* Leaves the group and frees the handle. A sub-group may be freed before or after its parent;
 * connections close when the last handle that uses them is freed. NULL is ignored. */
int shoal_comm_free(shoal_comm *comm);

int shoal_comm_rank(const shoal_comm *comm);
int shoal_comm_size(const shoal_comm *comm);

/* Splits comm into sub-groups (as MPI_Comm_split): ranks with the same color form one group,
 * ordered by key, then by rank in comm. color SHOAL_UNDEFINED gives *sub = NULL. Collective over
 * comm. A sub-group's messages never match its parent's or a sibling's. */
int shoal_comm_split(shoal_comm *comm, int color, int key, shoal_comm **sub);

/* Makes every blocked or later call on this group (and its sub-groups) return
 * SHOAL_ERR_ABORTED promptly. Callable from any thread, including a signal-free watchdog. */
int shoal_comm_abort(shoal_comm *comm);

/* Sets the default deadline used by blocking calls on this handle (seconds, > 0). */
int shoal_comm_set_timeout(shoal_comm *comm, double timeout_s);

/* Detail text of the calling thread's last failed call on comm ("" if none). Valid until the
 * thread's next call on comm. */
const char *shoal_comm_last_error(const shoal_comm *comm);

/* Ranks named by the calling thread's last failed call on comm (those that timed out or failed),
 * at most max of them written to ranks; returns how many there were. */
int shoal_comm_error_ranks(const shoal_comm *comm, int *ranks, int max);

/* Whether rank r of comm is known to have failed (its connection dropped, or it sent nothing
 * for heartbeat_timeout_s: dead, hung or stopped). */
int shoal_comm_peer_failed(const shoal_comm *comm, int rank);

/* How messages to comm rank `rank` travel: "self", "tcp", "shm" (rings in shared memory),
 * "shm+cma" (shared memory, and large messages read straight from the sender's memory with
 * one copy), or "failed". NULL for a bad argument. The string is static. */
const char *shoal_comm_transport(const shoal_comm *comm, int rank);

/* The failed ranks of comm, at most max written to ranks; returns how many there are. */
int shoal_comm_failed_ranks(const shoal_comm *comm, int *ranks, int max);

/* Calls cb(user, rank, why) once for each member of comm that fails from now on. It runs on
 * the group's monitor thread, outside every lock: it may call shoal functions, but should not
 * block for long (other groups' callbacks wait). cb NULL removes it. */
typedef void (*shoal_failure_fn)(void *user, int rank, const char *why);
int shoal_comm_on_failure(shoal_comm *comm, shoal_failure_fn cb, void *user);

/* ---- point-to-point ----------------------------------------------------------------------
 * Messages are byte buffers tagged with 0 <= tag <= SHOAL_TAG_MAX. Between one pair with the
 * same tag they arrive in order; different tags never block each other. A send completes when
 * its buffer may be reused (it may complete before the receiver posts a receive). */

typedef struct shoal_msg_info {
    int source;   /* rank that sent the message */
    int tag;      /* its tag */
    size_t bytes; /* its length */
} shoal_msg_info;

int shoal_send(shoal_comm *comm, const void *buf, size_t bytes, int dst, int tag);

/* Receives into buf (capacity bytes) from src (or SHOAL_ANY_SOURCE) with tag (or
 * SHOAL_ANY_TAG). A longer message is consumed and gives SHOAL_ERR_TRUNCATED. info may be NULL. */
int shoal_recv(shoal_comm *comm, void *buf, size_t bytes, int src, int tag, shoal_msg_info *info);

/* Non-blocking forms: on success *req must be completed with shoal_wait (or freed after
 * shoal_test reports done). The buffer must stay valid until then. On error no request exists. */
int shoal_isend(shoal_comm *comm, const void *buf, size_t bytes, int dst, int tag,
                shoal_request **req);
int shoal_irecv(shoal_comm *comm, void *buf, size_t bytes, int src, int tag, shoal_request **req);

/* Sets *done to 1 when the request has completed (successfully or not); never blocks. */
int shoal_test(shoal_request *req, int *done);

/* Waits for the request with the comm's default timeout, returns its result and frees it.
 * On SHOAL_ERR_TIMEOUT the request is NOT freed: wait again, or cancel it and wait. */
int shoal_wait(shoal_request *req, shoal_msg_info *info);

/* As shoal_wait with an explicit timeout in seconds (0 polls once; <0 waits forever). */
int shoal_wait_timeout(shoal_request *req, double timeout_s, shoal_msg_info *info);

/* Waits for all n requests (each freed when it completes); returns the first error. */
int shoal_wait_all(shoal_request **reqs, int n);

/* Asks the request to stop. A receive not yet matched and a send not yet started are
 * cancelled (wait then returns SHOAL_ERR_CANCELLED); one already in progress completes
 * normally. A pending collective is cancelled only if it has not started. The request must
 * still be waited on. */
int shoal_cancel(shoal_request *req);

/* Frees a request that has completed (after shoal_test said done). Freeing a pending request
 * cancels it first and waits for it. */
int shoal_request_free(shoal_request *req);

/* ---- collectives -------------------------------------------------------------------------
 * counts are in elements of dtype. In place when sendbuf == recvbuf (for allgather and gather
 * also when sendbuf == recvbuf + rank*count*size; for reduce_scatter also when
 * recvbuf == sendbuf + rank*recvcount*size). Every blocking form has a non-blocking twin that
 * returns a request; the blocking form uses the comm's default timeout. */

int shoal_barrier(shoal_comm *comm);
int shoal_broadcast(shoal_comm *comm, void *buf, size_t count, shoal_dtype dtype, int root);
int shoal_reduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                 shoal_dtype dtype, shoal_op op, int root);
int shoal_allreduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                    shoal_dtype dtype, shoal_op op);
/* recvbuf holds size*sendcount elements, rank r's block at r*sendcount. */
int shoal_allgather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                    shoal_dtype dtype);
/* sendbuf holds size*recvcount elements; rank r receives the reduction of block r. */
int shoal_reduce_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                         shoal_dtype dtype, shoal_op op);
/* count elements to and from each peer: block j of sendbuf goes to rank j. */
int shoal_alltoall(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                   shoal_dtype dtype);
/* Counts and displacements in elements, one per rank. In place (sendbuf == recvbuf) is not
 * supported for alltoallv. */
int shoal_alltoallv(shoal_comm *comm, const void *sendbuf, const size_t *sendcounts,
                    const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                    const size_t *rdispls, shoal_dtype dtype);
/* recvbuf (size*sendcount elements) is used only on root. */
int shoal_gather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                 shoal_dtype dtype, int root);
/* sendbuf (size*recvcount elements) is used only on root. */
int shoal_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                  shoal_dtype dtype, int root);

int shoal_ibarrier(shoal_comm *comm, shoal_request **req);
int shoal_ibroadcast(shoal_comm *comm, void *buf, size_t count, shoal_dtype dtype, int root,
                     shoal_request **req);
int shoal_ireduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                  shoal_dtype dtype, shoal_op op, int root, shoal_request **req);
int shoal_iallreduce(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                     shoal_dtype dtype, shoal_op op, shoal_request **req);
int shoal_iallgather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                     shoal_dtype dtype, shoal_request **req);
int shoal_ireduce_scatter(shoal_comm *comm, const void *sendbuf, void *recvbuf,
                          size_t recvcount, shoal_dtype dtype, shoal_op op, shoal_request **req);
int shoal_ialltoall(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t count,
                    shoal_dtype dtype, shoal_request **req);
int shoal_ialltoallv(shoal_comm *comm, const void *sendbuf, const size_t *sendcounts,
                     const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                     const size_t *rdispls, shoal_dtype dtype, shoal_request **req);
int shoal_igather(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t sendcount,
                  shoal_dtype dtype, int root, shoal_request **req);
int shoal_iscatter(shoal_comm *comm, const void *sendbuf, void *recvbuf, size_t recvcount,
                   shoal_dtype dtype, int root, shoal_request **req);

#ifdef __cplusplus
}
#endif
#endif
