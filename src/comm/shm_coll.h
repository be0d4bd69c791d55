/* Small blocking collectives of an all-local world group through the shared group area (see
 * shm_coll.c). */
#ifndef SHOAL_SHM_COLL_H
#define SHOAL_SHM_COLL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/comm.h"

#define SHOAL__SHM_SLOT 65536 /* bytes per rank and operation: larger messages take the rings */

size_t shoal__shm_area_bytes(int n);
void shoal__shm_area_init(void *mem, int n);
int shoal__shm_area_check(const void *mem, size_t len, int n);

/* Whether a blocking collective of `bytes` per rank on c can use the area. */
int shoal__shm_coll_ok(const shoal_comm *c, size_t bytes);
int shoal__shm_allreduce(shoal_comm *c, const void *src, void *dst, size_t count, shoal_dtype t, shoal_op op);
int shoal__shm_barrier(shoal_comm *c);
int shoal__shm_broadcast(shoal_comm *c, void *buf, size_t bytes, int root);

/* Large all-reduce of an all-local world group, straight from the peers' buffers
 * (shm_direct.c): whether it applies (the same answer on every rank), and the operation. */
int shoal__shm_direct_ok(shoal_comm *c, size_t bytes);
/* Reduce-scatter takes that path only from this size (total bytes), broadcast from the
 * second: where they measured faster (reduce-scatter: 2 ranks; broadcast: 2-8 ranks, where
 * the rings took 1.5-4x as long at 128 KiB and the group area was faster at 64 KiB). The
 * all-reduce's own limit is shm_direct_min. */
#define SHOAL__SHM_DIRECT_OTHERS_MIN (256u << 10)
#define SHOAL__SHM_DIRECT_BCAST_MIN (128u << 10)
int shoal__shm_direct_allreduce(shoal_comm *c, const void *src, void *dst, size_t count, shoal_dtype t,
                                shoal_op op);
/* The same idea for the other large blocking collectives of such a group: reduce-scatter
 * reduces our block from the peers' inputs; all-gather and broadcast copy each block straight
 * from the rank that has it (dst/buf as in the public calls; bs: bytes per rank). */
int shoal__shm_direct_reduce_scatter(shoal_comm *c, const void *src, void *dst, size_t recvcount, shoal_dtype t,
                                     shoal_op op);
int shoal__shm_direct_allgather(shoal_comm *c, const void *src, void *dst, size_t bs);
int shoal__shm_direct_broadcast(shoal_comm *c, void *buf, size_t bytes, int root);

/* The area's building blocks, shared by shm_coll.c and shm_direct.c. Every rank has three
 * counters: READY (its slot holds operation seq's data), MID (it finished the middle phase of
 * seq) and DONE (it finished reading everyone's slot of seq). */
struct shoal__mesh;
enum { SHOAL__SHM_READY = 0, SHOAL__SHM_DONE = 1, SHOAL__SHM_MID = 2 };
uint8_t *shoal__shm_slot(const struct shoal__mesh *m, int r, uint64_t seq);
/* Phase 1: waits until the slot of seq's parity is free everywhere, fills it (len bytes from
 * src, may be NULL) and raises READY. */
int shoal__shm_publish(shoal_comm *c, uint64_t seq, const void *src, size_t len, double deadline);
/* Waits until every rank's counter `which` is at least target (deadline, abort, failure). */
int shoal__shm_wait_all(shoal_comm *c, int which, uint64_t target, double deadline);
void shoal__shm_raise(shoal_comm *c, int which, uint64_t seq);

#endif
