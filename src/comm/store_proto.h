/* Private to the store (store_proto.c, store_client.c, store_server.c and the fuzz target):
 * the encoders matching shoal__store_req_decode, and the reply codec. Layouts in store.h and
 * docs/protocol.md. */
#ifndef SHOAL_STORE_PROTO_H
#define SHOAL_STORE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "comm/store.h"

/* GET's arg when the caller has no deadline: wait for the key as long as it takes. */
#define SHOAL__STORE_WAIT_FOREVER UINT64_MAX

/* Payload size of a request; 0 when it would overflow (the caller refuses it). */
uint64_t shoal__store_req_size(uint32_t key_len, uint64_t value_len);
/* Writes the whole payload of req (header, key, value) to out, which holds
 * shoal__store_req_size(req->key_len, req->value_len) bytes. */
void shoal__store_req_encode(const shoal__store_req *req, uint8_t *out);

void shoal__store_rep_encode_hdr(int32_t status, uint8_t out[SHOAL__STORE_REP_HDR]);
/* Parses a reply payload: *value points into payload. An error status carries no value.
 * SHOAL_ERR_PROTOCOL with a reason on malformed input. */
int shoal__store_rep_decode(const uint8_t *payload, uint64_t len, int32_t *status,
                            const uint8_t **value, uint64_t *value_len, char *err,
                            size_t errcap);

#endif
