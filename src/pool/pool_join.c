/* Rank assignment for workers that join a pool from elsewhere (see pool_join.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/store.h"
#include "pool/pool_join.h"

int shoal__pool_join(const char *master, const char *key, double deadline, int *rank,
                     int *world_size, char *err, size_t errcap) {
    char host[SHOAL__HOST_MAX], group[320];
    uint16_t port;
    int st = shoal__addr_parse(master, host, sizeof host, &port, err, errcap);
    if (st != SHOAL_OK) return st;
    /* the same group name shoal_comm_init derives from the master address */
    snprintf(group, sizeof group, "master:%s:%u", host, port);
    shoal__auth auth = {.key = (const uint8_t *)(key ? key : ""), .key_len = key ? strlen(key) : 0};
    shoal__group_id(group, auth.group);
    shoal__store_client *c = NULL;
    st = shoal__store_connect(host, port, &auth, 0, 0, deadline, &c, err, errcap);
    if (st != SHOAL_OK) return st;
    int64_t next = 0;
    void *val = NULL;
    size_t len = 0;
    st = shoal__store_add(c, "shoal/join/next", 1, &next, deadline, err, errcap);
    if (st == SHOAL_OK) st = shoal__store_get(c, "shoal/world_size", &val, &len, deadline, err, errcap);
    shoal__store_close(c);
    if (st != SHOAL_OK) return st;
    char text[32] = "";
    if (len < sizeof text) memcpy(text, val, len);
    free(val);
    int world = atoi(text);
    if (world < 2) {
        shoal__errf(err, errcap, "the leader published a bad group size '%s'", text);
        return SHOAL_ERR_PROTOCOL;
    }
    if (next < 1 || next >= world) {
        shoal__errf(err, errcap, "the pool is full: it expects %d workers", world - 1);
        return SHOAL_ERR_INVALID;
    }
    *rank = (int)next;
    *world_size = world;
    return SHOAL_OK;
}
