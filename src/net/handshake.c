/* The connection handshake: hello exchange plus an HMAC-SHA-256 challenge-response over the
 * cluster key (layout in net.h and docs/protocol.md).
 *
 * Both proofs cover both hellos, so each side's fresh nonce makes a recorded exchange useless
 * for a replay, and the labels differ so a proof cannot be reflected back to its sender. The
 * acceptor checks everything it can from the hello before it sends a byte, so a stranger
 * learns nothing but the acceptor's hello; the initiator checks the acceptor's proof before it
 * sends its own, so a fake acceptor cannot collect proofs either. */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "net/net.h"

static const uint8_t hello_magic[4] = {'S', 'H', 'O', 'L'};
static const char label_acceptor[] = "shoal-auth-v1 acceptor";
static const char label_initiator[] = "shoal-auth-v1 initiator";

void shoal__group_id(const char *name, uint8_t out[SHOAL__GROUP_ID_SIZE]) {
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!name) name = "";
    if (EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16) {
        /* Cannot happen with a working libcrypto; a zero id still only matches itself. */
        memset(out, 0, SHOAL__GROUP_ID_SIZE);
        return;
    }
    memcpy(out, md, SHOAL__GROUP_ID_SIZE);
}

void shoal__hello_encode(const shoal__hello *h, uint8_t out[SHOAL__HELLO_SIZE]) {
    memcpy(out, hello_magic, 4);
    shoal__put_u16(out + 4, h->version);
    shoal__put_u16(out + 6, h->kind);
    shoal__put_u32(out + 8, h->rank);
    shoal__put_u32(out + 12, h->world_size);
    shoal__put_u32(out + 16, h->lane);
    memcpy(out + 20, h->group, SHOAL__GROUP_ID_SIZE);
    memcpy(out + 36, h->nonce, 32);
}

int shoal__hello_decode(const uint8_t in[SHOAL__HELLO_SIZE], shoal__hello *h) {
    if (memcmp(in, hello_magic, 4) != 0) return SHOAL_ERR_PROTOCOL;
    h->version = shoal__get_u16(in + 4);
    h->kind = shoal__get_u16(in + 6);
    h->rank = shoal__get_u32(in + 8);
    h->world_size = shoal__get_u32(in + 12);
    h->lane = shoal__get_u32(in + 16);
    memcpy(h->group, in + 20, SHOAL__GROUP_ID_SIZE);
    memcpy(h->nonce, in + 36, 32);
    return SHOAL_OK;
}

/* proof = HMAC-SHA256(key, label || hello_I || hello_A), label without its NUL. */
static int make_proof(const shoal__auth *auth, const char *label,
                      const uint8_t hello_i[SHOAL__HELLO_SIZE],
                      const uint8_t hello_a[SHOAL__HELLO_SIZE], uint8_t out[SHOAL__PROOF_SIZE]) {
    uint8_t msg[sizeof label_initiator + 2 * SHOAL__HELLO_SIZE];
    size_t ll = strlen(label);
    memcpy(msg, label, ll);
    memcpy(msg + ll, hello_i, SHOAL__HELLO_SIZE);
    memcpy(msg + ll + SHOAL__HELLO_SIZE, hello_a, SHOAL__HELLO_SIZE);
    /* HMAC() with a NULL key is not a zero-length key in every OpenSSL: pass a real pointer. */
    static const uint8_t empty_key[1] = {0};
    const uint8_t *key = auth->key_len ? auth->key : empty_key;
    unsigned int outlen = 0;
    if (auth->key_len > (size_t)INT32_MAX) return SHOAL_ERR_INVALID;
    if (!HMAC(EVP_sha256(), key, (int)auth->key_len, msg, ll + 2 * SHOAL__HELLO_SIZE, out,
              &outlen) ||
        outlen != SHOAL__PROOF_SIZE)
        return SHOAL_ERR_SYSTEM;
    return SHOAL_OK;
}

/* Fills the fields of our own hello that the handshake owns: a fresh nonce, the group of
 * auth, and the version when the caller left it 0. */
static int prepare_self(const shoal__auth *auth, shoal__hello *self, char *err, size_t errcap) {
    if (self->version == 0) self->version = SHOAL__PROTOCOL_VERSION;
    memcpy(self->group, auth->group, SHOAL__GROUP_ID_SIZE);
    if (shoal__random_bytes(self->nonce, sizeof self->nonce) != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: no random bytes for the nonce (getrandom failed)");
        return SHOAL_ERR_SYSTEM;
    }
    return SHOAL_OK;
}

/* Turns a failed read/write into the handshake's status and a reason naming the step. */
static int io_fail(int rc, const char *step, const char *closed_hint, char *err, size_t errcap) {
    switch (rc) {
    case SHOAL_ERR_TIMEOUT:
        shoal__errf(err, errcap, "handshake: timed out %s", step);
        break;
    case SHOAL_ERR_PEER_FAILED:
        shoal__errf(err, errcap, "handshake: peer closed the connection %s%s", step,
                    closed_hint ? closed_hint : "");
        break;
    default:
        shoal__errf(err, errcap, "handshake: socket error %s: %s", step, strerror(errno));
        break;
    }
    return rc;
}

/* The checks both sides make of the other's hello. */
static int check_common(const shoal__hello *peer, const shoal__auth *auth, uint16_t kind,
                        char *err, size_t errcap) {
    if (peer->version != SHOAL__PROTOCOL_VERSION) {
        shoal__errf(err, errcap, "handshake: peer speaks protocol version %u, we speak %u",
                    (unsigned)peer->version, (unsigned)SHOAL__PROTOCOL_VERSION);
        return SHOAL_ERR_AUTH;
    }
    if (peer->kind != kind) {
        shoal__errf(err, errcap, "handshake: connection kind %u, expected %u (%s)",
                    (unsigned)peer->kind, (unsigned)kind,
                    kind == SHOAL__CONN_STORE ? "store" : "mesh");
        return SHOAL_ERR_AUTH;
    }
    if (memcmp(peer->group, auth->group, SHOAL__GROUP_ID_SIZE) != 0) {
        shoal__errf(err, errcap, "handshake: peer belongs to another group (group id differs)");
        return SHOAL_ERR_AUTH;
    }
    return SHOAL_OK;
}

static const char *verdict_text(uint32_t v) {
    switch (v) {
    case SHOAL__VERDICT_RANK_TAKEN: return "rank already taken";
    case SHOAL__VERDICT_REFUSED: return "refused by the acceptor (see its log)";
    default: return "refused with an unknown verdict";
    }
}

int shoal__handshake_connect(int fd, const shoal__auth *auth, shoal__hello *self,
                             shoal__hello *peer, double deadline, char *err, size_t errcap) {
    uint8_t hello_i[SHOAL__HELLO_SIZE], hello_a[SHOAL__HELLO_SIZE];
    uint8_t proof[SHOAL__PROOF_SIZE], want[SHOAL__PROOF_SIZE], vbuf[4];
    shoal__hello pa;
    int rc = prepare_self(auth, self, err, errcap);
    if (rc != SHOAL_OK) return rc;
    shoal__hello_encode(self, hello_i);
    rc = shoal__write_full(fd, hello_i, sizeof hello_i, deadline);
    if (rc != SHOAL_OK) return io_fail(rc, "sending our hello", NULL, err, errcap);

    rc = shoal__read_full(fd, hello_a, sizeof hello_a, deadline);
    if (rc != SHOAL_OK)
        return io_fail(rc, "before its hello",
                       " (it refused our hello: check the group, version, kind and rank in its "
                       "log)",
                       err, errcap);
    if (shoal__hello_decode(hello_a, &pa) != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: bad magic in the acceptor's hello (not a shoal peer)");
        return SHOAL_ERR_PROTOCOL;
    }
    rc = check_common(&pa, auth, self->kind, err, errcap);
    if (rc != SHOAL_OK) return rc;

    rc = shoal__read_full(fd, proof, sizeof proof, deadline);
    if (rc != SHOAL_OK) return io_fail(rc, "before its proof", NULL, err, errcap);
    rc = make_proof(auth, label_acceptor, hello_i, hello_a, want);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: HMAC failed");
        return rc;
    }
    if (CRYPTO_memcmp(proof, want, sizeof want) != 0) {
        shoal__errf(err, errcap, "handshake: the acceptor's proof does not match "
                                 "(wrong cluster key?)");
        return SHOAL_ERR_AUTH;
    }

    rc = make_proof(auth, label_initiator, hello_i, hello_a, proof);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: HMAC failed");
        return rc;
    }
    rc = shoal__write_full(fd, proof, sizeof proof, deadline);
    if (rc != SHOAL_OK) return io_fail(rc, "sending our proof", NULL, err, errcap);

    rc = shoal__read_full(fd, vbuf, sizeof vbuf, deadline);
    if (rc != SHOAL_OK)
        return io_fail(rc, "before its verdict",
                       " (it rejected our proof: wrong cluster key?)", err, errcap);
    uint32_t verdict = shoal__get_u32(vbuf);
    if (verdict != SHOAL__VERDICT_OK) {
        shoal__errf(err, errcap, "handshake: %s (verdict %u)", verdict_text(verdict),
                    (unsigned)verdict);
        return SHOAL_ERR_AUTH;
    }
    *peer = pa;
    return SHOAL_OK;
}

/* The acceptor's checks of the initiator's hello, beyond those both sides make. A world size
 * of 0 in self means "not known yet": then only the initiator's own consistency is checked. */
static int check_initiator(const shoal__hello *pi, const shoal__auth *auth,
                           const shoal__hello *self, char *err, size_t errcap) {
    int rc = check_common(pi, auth, self->kind, err, errcap);
    if (rc != SHOAL_OK) return rc;
    /* A store client may not know the world size yet: a worker joining a pool learns it (and
     * its rank) from the store. Mesh connections always carry it. */
    int joiner = pi->world_size == 0 && self->kind == SHOAL__CONN_STORE;
    if (self->world_size != 0 && pi->world_size != self->world_size && !joiner) {
        shoal__errf(err, errcap, "handshake: rank %u believes the world size is %u, ours is %u",
                    (unsigned)pi->rank, (unsigned)pi->world_size, (unsigned)self->world_size);
        return SHOAL_ERR_AUTH;
    }
    uint32_t world = self->world_size != 0 ? self->world_size : pi->world_size;
    if (pi->rank >= world) {
        shoal__errf(err, errcap, "handshake: rank %u is out of range for world size %u",
                    (unsigned)pi->rank, (unsigned)world);
        return SHOAL_ERR_AUTH;
    }
    return SHOAL_OK;
}

int shoal__handshake_accept(int fd, const shoal__auth *auth, shoal__hello *self,
                            shoal__hello *peer, double deadline, char *err, size_t errcap) {
    uint8_t hello_i[SHOAL__HELLO_SIZE];
    uint8_t out[SHOAL__HELLO_SIZE + SHOAL__PROOF_SIZE]; /* hello_A || proof_A in one write */
    uint8_t proof[SHOAL__PROOF_SIZE], want[SHOAL__PROOF_SIZE];
    shoal__hello pi;
    int rc = shoal__read_full(fd, hello_i, sizeof hello_i, deadline);
    if (rc != SHOAL_OK) return io_fail(rc, "before its hello", NULL, err, errcap);
    if (shoal__hello_decode(hello_i, &pi) != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: bad magic in the hello (not a shoal peer)");
        return SHOAL_ERR_PROTOCOL;
    }
    *peer = pi; /* filled early so the caller can log who it was, even on failure */
    rc = check_initiator(&pi, auth, self, err, errcap);
    if (rc != SHOAL_OK) return rc;

    rc = prepare_self(auth, self, err, errcap);
    if (rc != SHOAL_OK) return rc;
    shoal__hello_encode(self, out);
    rc = make_proof(auth, label_acceptor, hello_i, out, out + SHOAL__HELLO_SIZE);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: HMAC failed");
        return rc;
    }
    rc = shoal__write_full(fd, out, sizeof out, deadline);
    if (rc != SHOAL_OK) return io_fail(rc, "sending our hello and proof", NULL, err, errcap);

    rc = shoal__read_full(fd, proof, sizeof proof, deadline);
    if (rc != SHOAL_OK)
        return io_fail(rc, "before its proof",
                       " (it rejected our proof: wrong cluster key?)", err, errcap);
    rc = make_proof(auth, label_initiator, hello_i, out, want);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "handshake: HMAC failed");
        return rc;
    }
    if (CRYPTO_memcmp(proof, want, sizeof want) != 0) {
        shoal__errf(err, errcap, "handshake: rank %u's proof does not match "
                                 "(wrong cluster key?)",
                    (unsigned)pi.rank);
        return SHOAL_ERR_AUTH;
    }
    return SHOAL_OK;
}

int shoal__handshake_verdict(int fd, uint32_t verdict, double deadline) {
    uint8_t b[4];
    shoal__put_u32(b, verdict);
    return shoal__write_full(fd, b, sizeof b, deadline);
}
