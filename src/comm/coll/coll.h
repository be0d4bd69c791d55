/* Internal interface between the comm core (the files of src/comm/: mesh, progress engine,
 * requests) and the collective algorithms (the files of src/comm/coll/).
 *
 * Every collective call gets a fresh tag (its sequence number on the comm, taken in call order,
 * so every member agrees on it) in the comm's collective context, which no point-to-point
 * message can match. Messages of one collective between one pair therefore arrive in order,
 * and concurrent collectives never mix. */
#ifndef SHOAL_COLL_H
#define SHOAL_COLL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/comm.h"

/* Lanes: the control lane carries barriers (and later heartbeats, rpc); the data lane bulk. A
 * given collective uses one lane for all its messages. */
enum { SHOAL__LANE_CTRL = 0, SHOAL__LANE_DATA = 1 };

/* Algorithm override from the `algo` setting. AUTO picks by size and group size. */
typedef enum shoal__algo {
    SHOAL__ALGO_AUTO = 0,
    SHOAL__ALGO_RING = 1, /* pipelined ring */
    SHOAL__ALGO_RD = 2,   /* recursive doubling / halving-doubling / binomial trees */
} shoal__algo;

shoal__algo shoal__comm_algo(const shoal_comm *c);

/* Size thresholds read from the settings registry when the comm is created. */
typedef struct shoal__coll_tuning {
    uint64_t ring_threshold; /* bytes: at or above, AUTO uses ring algorithms */
    uint64_t chunk;          /* bytes: pipeline chunk of ring algorithms (> 0) */
    uint64_t max_message;    /* bytes: the group's max_message (peers drop longer frames), so
                                collectives split longer messages; 0: unknown, then the
                                max_message setting is used */
} shoal__coll_tuning;
const shoal__coll_tuning *shoal__comm_tuning(const shoal_comm *c);

/* Point-to-point inside a collective (ranks are comm ranks). The request completes with
 * SHOAL_ERR_PEER_FAILED if that peer fails, SHOAL_ERR_ABORTED on abort. A receive of a longer
 * message gives SHOAL_ERR_PROTOCOL (members disagree on counts). */
int shoal__coll_isend(shoal_comm *c, int lane, uint32_t tag, const void *buf, size_t bytes,
                      int peer, shoal_request **req);
int shoal__coll_irecv(shoal_comm *c, int lane, uint32_t tag, void *buf, size_t bytes, int peer,
                      shoal_request **req);
/* Waits for n requests until deadline, freeing each; on the first error, the rest are
 * cancelled and freed too, the error text is set on the calling thread and the status
 * returned. Also fails early with SHOAL_ERR_PEER_FAILED as soon as any member of c has failed
 * (so a collective never waits out its deadline on a rank that depends on a dead one).
 * On timeout the error names the peers of the requests still pending. NULL entries are skipped. */
int shoal__coll_waitall(shoal_comm *c, shoal_request **reqs, int n, double deadline);
/* Send to dst and receive from src at once (either may be -1 to skip). */
int shoal__coll_sendrecv(shoal_comm *c, int lane, uint32_t tag, const void *sbuf, size_t sbytes,
                         int dst, void *rbuf, size_t rbytes, int src, double deadline);

/* A collective's body: runs on the calling thread (blocking form) or on the comm's collective
 * thread (non-blocking form). args points to a copy of the caller's argument struct. */
typedef int (*shoal__coll_fn)(shoal_comm *c, uint32_t tag, double deadline, void *args);

/* Takes the next tag in call order and runs fn. req == NULL: runs now on this thread and
 * returns its status. Otherwise copies args (args_size bytes) and queues fn on the comm's
 * collective thread (collectives on one comm run in call order); *req completes with fn's
 * status. The deadline is now + the comm's timeout in both cases. */
int shoal__coll_run(shoal_comm *c, shoal__coll_fn fn, const void *args, size_t args_size,
                    shoal_request **req);

/* Sets the calling thread's error for comm (text and the ranks it concerns) and returns
 * status, so that `return shoal__comm_fail(c, SHOAL_ERR_INVALID, NULL, 0, "...")` reads well. */
int shoal__comm_fail(const shoal_comm *c, int status, const int *ranks, int nranks,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- element-wise kernels (src/comm/coll/reduce_kernels.c) ---- */

/* acc[i] = acc[i] op in[i] for i < count. AVG reduces as SUM (divide with shoal__avg_finish).
 * f16/bf16 are widened to f32, combined, and rounded back to nearest-even. */
void shoal__reduce_into(void *acc, const void *in, size_t count, shoal_dtype t, shoal_op op);
/* out[i] = a[i] op b[i] (out may alias a or b). */
void shoal__reduce_pair(void *out, const void *a, const void *b, size_t count, shoal_dtype t,
                        shoal_op op);
/* buf[i] /= n (integers truncate toward zero). */
void shoal__avg_finish(void *buf, size_t count, shoal_dtype t, int n);

float shoal__f16_to_f32(uint16_t h);
uint16_t shoal__f32_to_f16(float f);
float shoal__bf16_to_f32(uint16_t b);
uint16_t shoal__f32_to_bf16(float f);

#endif
