/* Fuzz target: the hello decoder, then both handshake roles against the fuzz bytes.
 *
 * The bytes are written into one end of a socketpair and that end is shut for writing, so the
 * side under test reads exactly them and then EOF: no run waits for its (short) deadline
 * unless the code under test is wrong. The acceptor sees them as the initiator's hello and
 * proof; the initiator sees them as the acceptor's hello, proof and verdict. Settings the
 * corpus is built for (fuzz/gen_corpus.c): key FUZZ_KEY, group FUZZ_GROUP, store kind,
 * world size FUZZ_WORLD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_params.h"
#include "net/net.h"

#define MAX_BYTES 4096 /* far below a socketpair's buffer, so the pre-write never blocks */

static int known_status(int rc) {
    return rc == SHOAL_OK || rc == SHOAL_ERR_AUTH || rc == SHOAL_ERR_PROTOCOL ||
           rc == SHOAL_ERR_TIMEOUT || rc == SHOAL_ERR_PEER_FAILED || rc == SHOAL_ERR_SYSTEM;
}

/* Runs one role over a socketpair whose other end holds data, then EOF. */
static void run_role(int acceptor, const uint8_t *data, size_t size) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    if (size && shoal__write_full(sv[1], data, size, shoal__deadline_in(1)) != SHOAL_OK) goto out;
    shutdown(sv[1], SHUT_WR);

    shoal__auth auth = {.key = (const uint8_t *)FUZZ_KEY, .key_len = sizeof FUZZ_KEY - 1};
    shoal__group_id(FUZZ_GROUP, auth.group);
    shoal__hello self, peer;
    memset(&self, 0, sizeof self);
    self.version = SHOAL__PROTOCOL_VERSION;
    self.kind = SHOAL__CONN_STORE;
    self.rank = acceptor ? 0 : 1;
    self.world_size = FUZZ_WORLD;
    char err[256] = "";
    double deadline = shoal__deadline_in(0.05);
    int rc = acceptor ? shoal__handshake_accept(sv[0], &auth, &self, &peer, deadline, err,
                                                sizeof err)
                      : shoal__handshake_connect(sv[0], &auth, &self, &peer, deadline, err,
                                                 sizeof err);
    if (!known_status(rc) || (rc != SHOAL_OK && err[0] == 0)) abort();
    /* Success needs a proof over our fresh random nonce, which fixed bytes cannot hold: a pass
     * here means the proof check is broken. */
    if (rc == SHOAL_OK) abort();
out:
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= SHOAL__HELLO_SIZE) {
        shoal__hello h;
        int rc = shoal__hello_decode(data, &h);
        if (rc != SHOAL_OK && rc != SHOAL_ERR_PROTOCOL) abort();
        if (rc == SHOAL_OK) {
            uint8_t again[SHOAL__HELLO_SIZE];
            shoal__hello_encode(&h, again);
            if (memcmp(again, data, sizeof again) != 0) abort();
        }
    }
    if (size > MAX_BYTES) size = MAX_BYTES;
    run_role(1, data, size);
    run_role(0, data, size);
    return 0;
}
