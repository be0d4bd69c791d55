/* Writes the seed corpora under DIR/<target>/ (valid inputs and near misses):
 *
 *   cmake --build build --target fuzz_gen_corpus && build/fuzz/fuzz_gen_corpus fuzz/corpus
 *
 * The files are checked in; rerun this after a wire format change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "comm/store_proto.h"
#include "fuzz_params.h"
#include "net/net.h"

static const char *root;
static int failures;

static void put(const char *target, const char *name, const uint8_t *b, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) failures++;
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) failures++;
    if (f) fclose(f);
}

static size_t frame(uint8_t *b, uint8_t type, uint32_t ctx, uint32_t tag, const char *payload) {
    size_t n = payload ? strlen(payload) : 0;
    shoal__frame_hdr h = {.type = type, .ctx = ctx, .tag = tag, .len = n};
    shoal__frame_encode(&h, b);
    if (n) memcpy(b + SHOAL__FRAME_HDR_SIZE, payload, n);
    return SHOAL__FRAME_HDR_SIZE + n;
}

static void frames(void) {
    uint8_t b[256];
    size_t n = frame(b, SHOAL__FRAME_DATA, 2, 7, "hello world");
    put("fuzz_frame", "data", b, n);
    n = frame(b, SHOAL__FRAME_DATA, 3, 1, NULL);
    n += frame(b + n, SHOAL__FRAME_HEARTBEAT, 0, 0, NULL);
    n += frame(b + n, SHOAL__FRAME_STORE_REP, 0, 9, "\0\0\0\0\0\0\0\0v");
    n += frame(b + n, SHOAL__FRAME_BYE, 0, 0, NULL);
    put("fuzz_frame", "stream", b, n);
    n = frame(b, SHOAL__FRAME_DATA, 2, 7, NULL);
    b[1] = 0x80;
    put("fuzz_frame", "flags", b, n);
    n = frame(b, SHOAL__FRAME_TYPE_MAX + 1, 2, 7, NULL);
    put("fuzz_frame", "type", b, n);
    n = frame(b, SHOAL__FRAME_STORE_REQ, 0, 1, NULL);
    shoal__put_u64(b + 16, UINT64_MAX);
    put("fuzz_frame", "huge_len", b, n);
}

static void hello_bytes(uint8_t *b, const char *group, uint16_t version, uint32_t rank,
                        uint32_t world) {
    shoal__hello h;
    memset(&h, 0, sizeof h);
    h.version = version;
    h.kind = SHOAL__CONN_STORE;
    h.rank = rank;
    h.world_size = world;
    shoal__group_id(group, h.group);
    for (int i = 0; i < 32; i++) h.nonce[i] = (uint8_t)(i * 11);
    shoal__hello_encode(&h, b);
}

static void hellos(void) {
    uint8_t b[SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE + 4];
    memset(b, 0, sizeof b);
    /* as the initiator's hello + proof: passes every check up to the proof */
    hello_bytes(b, FUZZ_GROUP, SHOAL__PROTOCOL_VERSION, 1, FUZZ_WORLD);
    memset(b + SHOAL__HELLO_SIZE, 0x5a, SHOAL__PROOF_SIZE);
    put("fuzz_hello", "initiator_hello_proof", b, SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE);
    put("fuzz_hello", "hello_only", b, SHOAL__HELLO_SIZE);
    /* as the acceptor's hello + proof + verdict */
    hello_bytes(b, FUZZ_GROUP, SHOAL__PROTOCOL_VERSION, 0, FUZZ_WORLD);
    put("fuzz_hello", "acceptor_hello_proof_verdict", b, sizeof b);
    hello_bytes(b, FUZZ_GROUP, SHOAL__PROTOCOL_VERSION + 1, 1, FUZZ_WORLD);
    put("fuzz_hello", "bad_version", b, SHOAL__HELLO_SIZE);
    hello_bytes(b, "other-group", SHOAL__PROTOCOL_VERSION, 1, FUZZ_WORLD);
    put("fuzz_hello", "bad_group", b, SHOAL__HELLO_SIZE);
    hello_bytes(b, FUZZ_GROUP, SHOAL__PROTOCOL_VERSION, FUZZ_WORLD, FUZZ_WORLD);
    put("fuzz_hello", "rank_out_of_range", b, SHOAL__HELLO_SIZE);
    put("fuzz_hello", "truncated", b, 40);
}

/* op_override != 0 replaces the op byte after encoding (a near miss: GET with a value). */
static void request(const char *name, uint8_t op, const char *key, uint64_t arg,
                    const char *value, uint8_t op_override) {
    uint8_t b[256];
    shoal__store_req r = {.op = op, .arg = arg, .key = (const uint8_t *)key,
                          .key_len = (uint32_t)strlen(key), .value = (const uint8_t *)value,
                          .value_len = value ? strlen(value) : 0};
    size_t n = (size_t)shoal__store_req_size(r.key_len, r.value_len);
    shoal__store_req_encode(&r, b);
    if (op_override) b[0] = op_override;
    put("fuzz_store_req", name, b, n);
}

static void store_reqs(void) {
    request("set", SHOAL__STORE_SET, "shoal/addr/3", 0, "10.0.0.3:41000", 0);
    request("get", SHOAL__STORE_GET, "shoal/addr/0", 30000, NULL, 0);
    request("add", SHOAL__STORE_ADD, "shoal/ctx", 1, NULL, 0);
    request("check", SHOAL__STORE_CHECK, "k", 0, NULL, 0);
    request("delete", SHOAL__STORE_DELETE, "k", 0, NULL, 0);
    request("get_trailing", SHOAL__STORE_SET, "k", 0, "xy", SHOAL__STORE_GET);
    uint8_t b[64];
    shoal__store_req r = {.op = SHOAL__STORE_GET, .key = (const uint8_t *)"key", .key_len = 3};
    shoal__store_req_encode(&r, b);
    shoal__put_u32(b + 4, 200); /* key_len past the end */
    put("fuzz_store_req", "key_len_too_long", b, SHOAL__STORE_REQ_HDR + 3);
    uint8_t rep[SHOAL__STORE_REP_HDR + 8];
    shoal__store_rep_encode_hdr(SHOAL_OK, rep);
    shoal__put_u64(rep + SHOAL__STORE_REP_HDR, 4000);
    put("fuzz_store_req", "reply_counter", rep, sizeof rep);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    frames();
    hellos();
    store_reqs();
    if (failures) fprintf(stderr, "%s: %d file(s) could not be written\n", argv[0], failures);
    return failures ? 1 : 0;
}
