/* The fixed 24-byte frame header (layout in net.h and docs/protocol.md). Decoding is strict:
 * every field that is not yet in use must be zero, so a future version can give it a meaning
 * and an old peer refuses it loudly instead of misreading it. */
#include "net/net.h"

void shoal__frame_encode(const shoal__frame_hdr *h, uint8_t out[SHOAL__FRAME_HDR_SIZE]) {
    out[0] = h->type;
    out[1] = h->flags;
    shoal__put_u16(out + 2, 0);
    shoal__put_u32(out + 4, h->ctx);
    shoal__put_u32(out + 8, h->tag);
    shoal__put_u32(out + 12, h->aux);
    shoal__put_u64(out + 16, h->len);
}

int shoal__frame_decode(const uint8_t in[SHOAL__FRAME_HDR_SIZE], uint64_t max_len,
                        shoal__frame_hdr *h, char *err, size_t errcap) {
    uint8_t type = in[0];
    if (type == 0 || type > SHOAL__FRAME_TYPE_MAX) {
        shoal__errf(err, errcap, "unknown frame type %u", (unsigned)type);
        return SHOAL_ERR_PROTOCOL;
    }
    if (in[1] != 0) {
        shoal__errf(err, errcap, "frame flags 0x%02x are not zero (type %u)", (unsigned)in[1],
                    (unsigned)type);
        return SHOAL_ERR_PROTOCOL;
    }
    uint16_t reserved = shoal__get_u16(in + 2);
    if (reserved != 0) {
        shoal__errf(err, errcap, "frame reserved field 0x%04x is not zero (type %u)",
                    (unsigned)reserved, (unsigned)type);
        return SHOAL_ERR_PROTOCOL;
    }
    uint64_t len = shoal__get_u64(in + 16);
    if (len > max_len) {
        shoal__errf(err, errcap, "frame length %llu exceeds the limit of %llu bytes (type %u)",
                    (unsigned long long)len, (unsigned long long)max_len, (unsigned)type);
        return SHOAL_ERR_PROTOCOL;
    }
    h->type = type;
    h->flags = 0;
    h->ctx = shoal__get_u32(in + 4);
    h->tag = shoal__get_u32(in + 8);
    h->aux = shoal__get_u32(in + 12);
    h->len = len;
    return SHOAL_OK;
}
