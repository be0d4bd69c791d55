/* The rendezvous key-value store (as PyTorch's TCPStore): rank 0 serves it, every rank is a
 * client. Connections are authenticated with the mesh handshake (kind SHOAL__CONN_STORE).
 *
 * Request payload (frame type STORE_REQ, little-endian):
 *   off 0  u8  op (shoal__store_op)
 *   off 1  u8[3] reserved (0)
 *   off 4  u32 key_len   (1..SHOAL__STORE_KEY_MAX)
 *   off 8  u64 arg       (ADD: the delta as two's complement i64; GET/WAIT: timeout in ms)
 *   off 16 key bytes, then the value (SET: the rest of the payload)
 * Reply payload (frame type STORE_REP):
 *   off 0  i32 status (0 or a negative shoal_status)
 *   off 4  u32 reserved (0)
 *   off 8  value bytes (GET: the value; ADD: the new i64 counter; CHECK: u8 0/1)
 * Replies come in request order on each connection. */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

#define SHOAL__STORE_KEY_MAX 1024
#define SHOAL__STORE_REQ_HDR 16
#define SHOAL__STORE_REP_HDR 8

typedef enum shoal__store_op {
    SHOAL__STORE_SET = 1,   /* key := value; wakes waiters */
    SHOAL__STORE_GET = 2,   /* value of key, waiting up to arg ms for it to be set */
    SHOAL__STORE_ADD = 3,   /* counter at key += delta (missing key counts as 0); returns new */
    SHOAL__STORE_CHECK = 4, /* whether key exists, without waiting */
    SHOAL__STORE_DELETE = 5,/* removes key (missing is not an error) */
    SHOAL__STORE_OP_MAX = 5
} shoal__store_op;

typedef struct shoal__store_req {
    uint8_t op;
    uint64_t arg;
    const uint8_t *key; /* points into the payload */
    uint32_t key_len;
    const uint8_t *value; /* points into the payload */
    uint64_t value_len;
} shoal__store_req;

/* Parses a request payload (lengths checked against len before any use). SHOAL_ERR_PROTOCOL
 * with a reason on malformed input. Exposed for the fuzz target. */
int shoal__store_req_decode(const uint8_t *payload, uint64_t len, shoal__store_req *req,
                            char *err, size_t errcap);

typedef struct shoal__store_server shoal__store_server;

/* Starts the server thread listening on host:port (port 0: any; *bound_port gets it). Accepts
 * clients that pass the handshake with ranks < world_size; refusals are logged with the
 * client's address. max_value caps SET values. */
int shoal__store_server_start(const char *host, uint16_t port, const shoal__auth *auth,
                              uint32_t world_size, uint64_t max_value,
                              shoal__store_server **out, uint16_t *bound_port, char *err,
                              size_t errcap);
/* Stops the thread, closes every connection, frees everything. NULL is ignored. */
void shoal__store_server_stop(shoal__store_server *s);

typedef struct shoal__store_client shoal__store_client;

/* Connects (retrying until deadline while the server is not up yet) and authenticates as rank. */
int shoal__store_connect(const char *host, uint16_t port, const shoal__auth *auth, uint32_t rank,
                         uint32_t world_size, double deadline, shoal__store_client **out,
                         char *err, size_t errcap);
void shoal__store_close(shoal__store_client *c); /* NULL is ignored */

/* All calls are thread-safe (one request at a time per client) and end by the deadline. */
int shoal__store_set(shoal__store_client *c, const char *key, const void *value, size_t len,
                     double deadline, char *err, size_t errcap);
/* Waits until key is set; *value is malloc'd (caller frees). SHOAL_ERR_TIMEOUT at deadline. */
int shoal__store_get(shoal__store_client *c, const char *key, void **value, size_t *len,
                     double deadline, char *err, size_t errcap);
int shoal__store_add(shoal__store_client *c, const char *key, int64_t delta, int64_t *result,
                     double deadline, char *err, size_t errcap);
int shoal__store_check(shoal__store_client *c, const char *key, int *exists, double deadline,
                       char *err, size_t errcap);
int shoal__store_delete(shoal__store_client *c, const char *key, double deadline, char *err,
                        size_t errcap);
/* Local address of the client's connection: the interface that reaches the master. */
int shoal__store_local_host(shoal__store_client *c, char *host, size_t cap);

#endif
