/* The join step of remote workers: before a worker can enter the group it needs a rank. It
 * connects to the leader's store as a "joiner" (world size 0 in its hello), takes the next
 * rank from the counter "shoal/join/next" and reads the group size the leader published. */
#ifndef SHOAL_POOL_JOIN_H
#define SHOAL_POOL_JOIN_H

#include <stddef.h>

/* Fills *rank and *world_size for a worker joining the group served at master. */
int shoal__pool_join(const char *master, const char *key, double deadline, int *rank,
                     int *world_size, char *err, size_t errcap);

#endif
