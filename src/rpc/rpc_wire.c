/* Encoding and validation of call and reply payloads (layouts in rpc_wire.h). Every length is
 * checked against the payload before use: these bytes come from the network. */
#include <string.h>

#include "common/common.h"
#include "rpc/rpc_wire.h"

int shoal__rpc_name_ok(const char *name) {
    if (!name) return 0;
    size_t n = strnlen(name, SHOAL_RPC_NAME_MAX + 1);
    if (n == 0 || n > SHOAL_RPC_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x21 || name[i] > 0x7e) return 0;
    return 1;
}

size_t shoal__rpc_call_prefix(uint8_t *out, const char *name, uint32_t timeout_ms) {
    if (!shoal__rpc_name_ok(name)) return 0;
    size_t n = strlen(name);
    out[0] = SHOAL__RPC_VERSION;
    out[1] = (uint8_t)n;
    shoal__put_u16(out + 2, 0);
    shoal__put_u32(out + 4, timeout_ms);
    memcpy(out + SHOAL__RPC_CALL_HDR, name, n);
    return SHOAL__RPC_CALL_HDR + n;
}

int shoal__rpc_call_decode(const uint8_t *p, uint64_t len, shoal__rpc_call *out, char *err,
                           size_t errcap) {
    if (len < SHOAL__RPC_CALL_HDR) {
        shoal__errf(err, errcap, "call of %llu bytes is shorter than its header",
                    (unsigned long long)len);
        return SHOAL_ERR_PROTOCOL;
    }
    if (p[0] != SHOAL__RPC_VERSION) {
        shoal__errf(err, errcap, "call version %u, expected %u", p[0], SHOAL__RPC_VERSION);
        return SHOAL_ERR_PROTOCOL;
    }
    unsigned n = p[1];
    if (shoal__get_u16(p + 2) != 0) {
        shoal__errf(err, errcap, "call flags must be 0");
        return SHOAL_ERR_PROTOCOL;
    }
    if (n == 0 || n > SHOAL_RPC_NAME_MAX || SHOAL__RPC_CALL_HDR + (uint64_t)n > len) {
        shoal__errf(err, errcap, "call name length %u does not fit the %llu-byte call", n,
                    (unsigned long long)len);
        return SHOAL_ERR_PROTOCOL;
    }
    memcpy(out->name, p + SHOAL__RPC_CALL_HDR, n);
    out->name[n] = 0;
    if (!shoal__rpc_name_ok(out->name)) {
        shoal__errf(err, errcap, "call name has bytes outside printable ASCII");
        return SHOAL_ERR_PROTOCOL;
    }
    out->timeout_ms = shoal__get_u32(p + 4);
    out->args = p + SHOAL__RPC_CALL_HDR + n;
    out->args_len = len - SHOAL__RPC_CALL_HDR - n;
    return SHOAL_OK;
}

void shoal__rpc_reply_prefix(uint8_t out[SHOAL__RPC_REPLY_HDR], int32_t status) {
    shoal__put_u32(out, (uint32_t)status);
    shoal__put_u32(out + 4, 0);
}

int shoal__rpc_reply_decode(const uint8_t *p, uint64_t len, int32_t *status,
                            const uint8_t **body, uint64_t *body_len, char *err, size_t errcap) {
    if (len < SHOAL__RPC_REPLY_HDR) {
        shoal__errf(err, errcap, "reply of %llu bytes is shorter than its header",
                    (unsigned long long)len);
        return SHOAL_ERR_PROTOCOL;
    }
    int32_t st = (int32_t)shoal__get_u32(p);
    if (st > 0 || shoal__get_u32(p + 4) != 0) {
        shoal__errf(err, errcap, "reply header is malformed (status %d)", (int)st);
        return SHOAL_ERR_PROTOCOL;
    }
    if (st != 0 && len - SHOAL__RPC_REPLY_HDR > SHOAL__RPC_ERR_MAX) {
        shoal__errf(err, errcap, "error reply text of %llu bytes is too long",
                    (unsigned long long)(len - SHOAL__RPC_REPLY_HDR));
        return SHOAL_ERR_PROTOCOL;
    }
    *status = st;
    *body = p + SHOAL__RPC_REPLY_HDR;
    *body_len = len - SHOAL__RPC_REPLY_HDR;
    return SHOAL_OK;
}
