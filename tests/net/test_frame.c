/* Frame header codec: a hand-written byte vector, random round trips, and every rejection. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "net/net.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void test_known_bytes(void) {
    shoal__frame_hdr h = {.type = SHOAL__FRAME_STORE_REQ, .flags = 0, .ctx = 0x04030201u,
                          .tag = 0x08070605u, .aux = 0x0c0b0a09u, .len = 0x1817161514131211ull};
    /* Expected layout written out by hand from docs/protocol.md (little-endian). */
    const uint8_t want[SHOAL__FRAME_HDR_SIZE] = {
        0x04, 0x00, 0x00, 0x00,                         /* type, flags, reserved */
        0x01, 0x02, 0x03, 0x04,                         /* ctx */
        0x05, 0x06, 0x07, 0x08,                         /* tag */
        0x09, 0x0a, 0x0b, 0x0c,                         /* aux */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* len */
    };
    uint8_t got[SHOAL__FRAME_HDR_SIZE];
    memset(got, 0xee, sizeof got);
    shoal__frame_encode(&h, got);
    CHECK(memcmp(got, want, sizeof want) == 0);

    shoal__frame_hdr d;
    char err[128] = "";
    CHECK_RC(shoal__frame_decode(want, UINT64_MAX, &d, err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(d.type, 4);
    CHECK_EQ_INT(d.flags, 0);
    CHECK_EQ_INT(d.ctx, 0x04030201u);
    CHECK_EQ_INT(d.tag, 0x08070605u);
    CHECK_EQ_INT(d.aux, 0x0c0b0a09u);
    CHECK(d.len == 0x1817161514131211ull);
}

static void test_round_trips(void) {
    for (int i = 0; i < 2000; i++) {
        shoal__frame_hdr h = {.type = (uint8_t)(1 + rng() % SHOAL__FRAME_TYPE_MAX),
                              .ctx = (uint32_t)rng(), .tag = (uint32_t)rng(),
                              .aux = (uint32_t)rng(), .len = rng() >> (rng() % 64)};
        uint8_t b[SHOAL__FRAME_HDR_SIZE];
        shoal__frame_encode(&h, b);
        /* the fields at their documented offsets, read independently of the codec */
        uint64_t len = 0;
        for (int k = 7; k >= 0; k--) len = (len << 8) | b[16 + k];
        CHECK(b[0] == h.type && b[1] == 0 && b[2] == 0 && b[3] == 0 && len == h.len);
        CHECK(b[4] == (uint8_t)h.ctx && b[8] == (uint8_t)h.tag && b[12] == (uint8_t)h.aux);
        shoal__frame_hdr d;
        int rc = shoal__frame_decode(b, h.len, &d, NULL, 0); /* len == max is allowed */
        CHECK_RC(rc, SHOAL_OK, "");
        CHECK(d.type == h.type && d.ctx == h.ctx && d.tag == h.tag && d.aux == h.aux &&
              d.len == h.len && d.flags == 0);
    }
}

static void expect_reject(const uint8_t b[SHOAL__FRAME_HDR_SIZE], uint64_t max,
                          const char *needle) {
    shoal__frame_hdr d;
    memset(&d, 0x5a, sizeof d);
    shoal__frame_hdr before = d;
    char err[160] = "";
    CHECK_RC(shoal__frame_decode(b, max, &d, err, sizeof err), SHOAL_ERR_PROTOCOL, err);
    CHECK_CONTAINS(err, needle);
    CHECK(memcmp(&d, &before, sizeof d) == 0); /* nothing is filled in on a rejection */
    CHECK_RC(shoal__frame_decode(b, max, &d, NULL, 0), SHOAL_ERR_PROTOCOL, "(err NULL)");
}

static void test_rejections(void) {
    shoal__frame_hdr h = {.type = SHOAL__FRAME_DATA, .ctx = 2, .tag = 7, .len = 100};
    uint8_t good[SHOAL__FRAME_HDR_SIZE], b[SHOAL__FRAME_HDR_SIZE];
    shoal__frame_encode(&h, good);

    const uint8_t bad_types[] = {0, SHOAL__FRAME_TYPE_MAX + 1, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        memcpy(b, good, sizeof b);
        b[0] = bad_types[i];
        expect_reject(b, 1000, "unknown frame type");
    }
    for (int bit = 0; bit < 8; bit++) {
        memcpy(b, good, sizeof b);
        b[1] = (uint8_t)(1u << bit);
        expect_reject(b, 1000, "flags");
    }
    for (int off = 2; off <= 3; off++) {
        memcpy(b, good, sizeof b);
        b[off] = 0x01;
        expect_reject(b, 1000, "reserved");
    }
    expect_reject(good, 99, "exceeds the limit");
    expect_reject(good, 0, "exceeds the limit");
    memcpy(b, good, sizeof b);
    memset(b + 16, 0xff, 8);
    expect_reject(b, UINT64_MAX - 1, "exceeds the limit");

    shoal__frame_hdr d;
    CHECK_RC(shoal__frame_decode(good, 100, &d, NULL, 0), SHOAL_OK, "");
    CHECK(d.len == 100);
    /* every valid type is accepted */
    for (int t = 1; t <= SHOAL__FRAME_TYPE_MAX; t++) {
        memcpy(b, good, sizeof b);
        b[0] = (uint8_t)t;
        CHECK_RC(shoal__frame_decode(b, 100, &d, NULL, 0), SHOAL_OK, "");
        CHECK_EQ_INT(d.type, t);
    }
}

int main(void) {
    test_known_bytes();
    test_round_trips();
    test_rejections();
    return check_report("test_frame");
}
