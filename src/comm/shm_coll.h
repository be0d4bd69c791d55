/* Small blocking collectives of an all-local world group through the shared group area (see
 * shm_coll.c). */
#ifndef SHOAL_SHM_COLL_H
#define SHOAL_SHM_COLL_H

#include <stddef.h>

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

#endif
