/* Fuzz target: the frame header decoder, fed the way a receiver reads a stream (header, skip
 * the payload, next header). Checks the decoder's promises: a decoded header re-encodes to the
 * same bytes and respects the length limit; a rejection is PROTOCOL with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

#define LIMIT (1u << 20)

static void check_one(const uint8_t *p, uint64_t limit) {
    shoal__frame_hdr h;
    char err[160] = "";
    int rc = shoal__frame_decode(p, limit, &h, err, sizeof err);
    if (rc == SHOAL_OK) {
        uint8_t again[SHOAL__FRAME_HDR_SIZE];
        shoal__frame_encode(&h, again);
        if (memcmp(again, p, sizeof again) != 0) abort(); /* decode lost or invented bits */
        if (h.len > limit || h.type == 0 || h.type > SHOAL__FRAME_TYPE_MAX) abort();
    } else if (rc != SHOAL_ERR_PROTOCOL || err[0] == 0) {
        abort();
    }
    (void)shoal__frame_decode(p, limit, &h, NULL, 0); /* err may be NULL */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t off = 0;
    while (size - off >= SHOAL__FRAME_HDR_SIZE) {
        const uint8_t *p = data + off;
        check_one(p, UINT64_MAX);
        check_one(p, 0);
        shoal__frame_hdr h;
        if (shoal__frame_decode(p, LIMIT, &h, NULL, 0) != SHOAL_OK) break;
        off += SHOAL__FRAME_HDR_SIZE;
        if (h.len > size - off) break; /* the payload would run past the input */
        off += (size_t)h.len;
    }
    return 0;
}
