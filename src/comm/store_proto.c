/* The store's request and reply codecs. Every length comes from the network, so each is
 * checked against the bytes actually present before it is used. */
#include <string.h>

#include "comm/store_proto.h"

/* Error statuses a reply may carry: any shoal_status, which are small negative numbers. */
#define REP_STATUS_MIN (-1000)

int shoal__store_req_decode(const uint8_t *payload, uint64_t len, shoal__store_req *req,
                            char *err, size_t errcap) {
    if (!payload || len < SHOAL__STORE_REQ_HDR) {
        shoal__errf(err, errcap, "store request of %llu bytes is shorter than its %d-byte header",
                    (unsigned long long)len, SHOAL__STORE_REQ_HDR);
        return SHOAL_ERR_PROTOCOL;
    }
    uint8_t op = payload[0];
    if (op == 0 || op > SHOAL__STORE_OP_MAX) {
        shoal__errf(err, errcap, "unknown store op %u", (unsigned)op);
        return SHOAL_ERR_PROTOCOL;
    }
    if (payload[1] || payload[2] || payload[3]) {
        shoal__errf(err, errcap, "store request reserved bytes are not zero");
        return SHOAL_ERR_PROTOCOL;
    }
    uint32_t key_len = shoal__get_u32(payload + 4);
    if (key_len == 0 || key_len > SHOAL__STORE_KEY_MAX) {
        shoal__errf(err, errcap, "store key length %u is outside 1..%d", (unsigned)key_len,
                    SHOAL__STORE_KEY_MAX);
        return SHOAL_ERR_PROTOCOL;
    }
    uint64_t body = len - SHOAL__STORE_REQ_HDR;
    if (key_len > body) {
        shoal__errf(err, errcap, "store key length %u exceeds the %llu bytes after the header",
                    (unsigned)key_len, (unsigned long long)body);
        return SHOAL_ERR_PROTOCOL;
    }
    uint64_t value_len = body - key_len;
    /* Only SET carries a value; trailing bytes on anything else mean the sender and we
     * disagree about the layout. */
    if (op != SHOAL__STORE_SET && value_len != 0) {
        shoal__errf(err, errcap, "store op %u carries %llu unexpected bytes after the key",
                    (unsigned)op, (unsigned long long)value_len);
        return SHOAL_ERR_PROTOCOL;
    }
    req->op = op;
    req->arg = shoal__get_u64(payload + 8);
    req->key = payload + SHOAL__STORE_REQ_HDR;
    req->key_len = key_len;
    req->value = req->key + key_len;
    req->value_len = value_len;
    return SHOAL_OK;
}

uint64_t shoal__store_req_size(uint32_t key_len, uint64_t value_len) {
    uint64_t fixed = (uint64_t)SHOAL__STORE_REQ_HDR + key_len;
    if (value_len > UINT64_MAX - fixed) return 0;
    return fixed + value_len;
}

void shoal__store_req_encode(const shoal__store_req *req, uint8_t *out) {
    out[0] = req->op;
    out[1] = out[2] = out[3] = 0;
    shoal__put_u32(out + 4, req->key_len);
    shoal__put_u64(out + 8, req->arg);
    if (req->key_len) memcpy(out + SHOAL__STORE_REQ_HDR, req->key, req->key_len);
    if (req->value_len)
        memcpy(out + SHOAL__STORE_REQ_HDR + req->key_len, req->value, (size_t)req->value_len);
}

void shoal__store_rep_encode_hdr(int32_t status, uint8_t out[SHOAL__STORE_REP_HDR]) {
    shoal__put_u32(out, (uint32_t)status);
    shoal__put_u32(out + 4, 0);
}

int shoal__store_rep_decode(const uint8_t *payload, uint64_t len, int32_t *status,
                            const uint8_t **value, uint64_t *value_len, char *err,
                            size_t errcap) {
    if (!payload || len < SHOAL__STORE_REP_HDR) {
        shoal__errf(err, errcap, "store reply of %llu bytes is shorter than its %d-byte header",
                    (unsigned long long)len, SHOAL__STORE_REP_HDR);
        return SHOAL_ERR_PROTOCOL;
    }
    int32_t st = (int32_t)shoal__get_u32(payload);
    if (st > 0 || st < REP_STATUS_MIN) {
        shoal__errf(err, errcap, "store reply status %d is not a shoal status", (int)st);
        return SHOAL_ERR_PROTOCOL;
    }
    if (shoal__get_u32(payload + 4) != 0) {
        shoal__errf(err, errcap, "store reply reserved field is not zero");
        return SHOAL_ERR_PROTOCOL;
    }
    if (st != SHOAL_OK && len != SHOAL__STORE_REP_HDR) {
        shoal__errf(err, errcap, "store error reply (status %d) carries %llu value bytes",
                    (int)st, (unsigned long long)(len - SHOAL__STORE_REP_HDR));
        return SHOAL_ERR_PROTOCOL;
    }
    *status = st;
    *value = payload + SHOAL__STORE_REP_HDR;
    *value_len = len - SHOAL__STORE_REP_HDR;
    return SHOAL_OK;
}
