/* Byte layouts of remote calls and replies (inside DATA frames on the control lane; see
 * docs/protocol.md). The frame's tag is the caller's request id.
 *
 * Call payload (context 0x80000000 | 2*ctx_id):
 *   off 0  u8  version (1)
 *   off 1  u8  name_len (1..SHOAL_RPC_NAME_MAX)
 *   off 2  u16 flags (0)
 *   off 4  u32 timeout_ms the caller still waits (0xffffffff: no deadline)
 *   off 8  name bytes, then the arguments (the rest of the payload)
 * Reply payload (context 0x80000000 | 2*ctx_id + 1):
 *   off 0  i32 status (0, or a negative shoal_status)
 *   off 4  u32 reserved (0)
 *   off 8  the reply bytes (status 0) or the error text (status < 0, at most 1024 bytes) */
#ifndef SHOAL_RPC_WIRE_H
#define SHOAL_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/rpc.h"

#define SHOAL__RPC_VERSION 1
#define SHOAL__RPC_CALL_HDR 8
#define SHOAL__RPC_REPLY_HDR 8
#define SHOAL__RPC_ERR_MAX 1024
#define SHOAL__RPC_NO_DEADLINE 0xffffffffu

typedef struct shoal__rpc_call {
    char name[SHOAL_RPC_NAME_MAX + 1];
    uint32_t timeout_ms;
    const uint8_t *args; /* into the payload */
    uint64_t args_len;
} shoal__rpc_call;

/* Writes the call prefix (header + name) into out (at least 8 + SHOAL_RPC_NAME_MAX bytes);
 * returns its length, or 0 for an invalid name. */
size_t shoal__rpc_call_prefix(uint8_t *out, const char *name, uint32_t timeout_ms);
/* Parses a call payload; SHOAL_ERR_PROTOCOL with a reason for a malformed one. */
int shoal__rpc_call_decode(const uint8_t *p, uint64_t len, shoal__rpc_call *out, char *err,
                           size_t errcap);

void shoal__rpc_reply_prefix(uint8_t out[SHOAL__RPC_REPLY_HDR], int32_t status);
/* Parses a reply payload: *status, and the body (reply or error text) within p. */
int shoal__rpc_reply_decode(const uint8_t *p, uint64_t len, int32_t *status,
                            const uint8_t **body, uint64_t *body_len, char *err, size_t errcap);

/* 1 if name is a valid function name: 1..SHOAL_RPC_NAME_MAX printable ASCII bytes. */
int shoal__rpc_name_ok(const char *name);

#endif
