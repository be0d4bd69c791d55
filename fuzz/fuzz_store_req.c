/* Fuzz target: the store's request decoder (what the server runs on every frame payload a
 * client sends) and its reply decoder (what a client runs on the server's). Checks that every
 * accepted request lies inside the payload and re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm/store_proto.h"

static void check_request(const uint8_t *data, size_t size) {
    shoal__store_req r;
    char err[200] = "";
    int rc = shoal__store_req_decode(data, size, &r, err, sizeof err);
    if (rc != SHOAL_OK) {
        if (rc != SHOAL_ERR_PROTOCOL || err[0] == 0) abort();
        return;
    }
    if (r.op == 0 || r.op > SHOAL__STORE_OP_MAX) abort();
    if (r.key_len == 0 || r.key_len > SHOAL__STORE_KEY_MAX) abort();
    if (r.key != data + SHOAL__STORE_REQ_HDR || r.value != r.key + r.key_len) abort();
    if (shoal__store_req_size(r.key_len, r.value_len) != size) abort();
    if (r.op != SHOAL__STORE_SET && r.value_len != 0) abort();
    /* touch every byte the request points at: a sanitizer flags any that lie outside */
    unsigned sum = 0;
    for (uint32_t i = 0; i < r.key_len; i++) sum += r.key[i];
    for (uint64_t i = 0; i < r.value_len; i++) sum += r.value[i];
    uint8_t *again = malloc(size);
    if (!again) return;
    shoal__store_req_encode(&r, again);
    if (memcmp(again, data, size) != 0) abort();
    free(again);
    (void)sum;
}

static void check_reply(const uint8_t *data, size_t size) {
    int32_t st;
    const uint8_t *v;
    uint64_t vl;
    char err[200] = "";
    int rc = shoal__store_rep_decode(data, size, &st, &v, &vl, err, sizeof err);
    if (rc != SHOAL_OK) {
        if (rc != SHOAL_ERR_PROTOCOL || err[0] == 0) abort();
        return;
    }
    if (st > 0 || v != data + SHOAL__STORE_REP_HDR || vl != size - SHOAL__STORE_REP_HDR) abort();
    if (st != 0 && vl != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_request(data, size);
    check_reply(data, size);
    return 0;
}
