/* net/: sockets, frame codec and the authenticated handshake. Used by comm/ (mesh and store).
 * Byte layouts are documented in docs/protocol.md; keep the two in step. */
#ifndef SHOAL_NET_H
#define SHOAL_NET_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- addresses and sockets (src/net/socket.c) -------------------------------------------- */

#define SHOAL__HOST_MAX 256

/* Splits "host:port" or "[v6addr]:port". SHOAL_ERR_INVALID with text in err on bad input. */
int shoal__addr_parse(const char *hostport, char *host, size_t hostcap, uint16_t *port,
                      char *err, size_t errcap);
/* 1 if host names a loopback address (127.0.0.0/8, ::1, "localhost"). */
int shoal__host_is_loopback(const char *host);

/* Listening TCP socket bound to host:port (port 0 picks one; *bound_port receives it).
 * The socket is non-blocking, close-on-exec, SO_REUSEADDR. */
int shoal__tcp_listen(const char *host, uint16_t port, int *fd, uint16_t *bound_port, char *err,
                      size_t errcap);
/* Blocking connect with retries (the peer may not listen yet) until deadline. The returned
 * socket is blocking, close-on-exec, TCP_NODELAY. */
int shoal__tcp_connect(const char *host, uint16_t port, double deadline, int *fd, char *err,
                       size_t errcap);
/* accept() one pending connection (non-blocking listener): SHOAL_OK with *fd, or
 * SHOAL_ERR_TIMEOUT when none is pending. The new socket is blocking, close-on-exec, NODELAY. */
int shoal__tcp_accept(int listen_fd, int *fd, char *peer, size_t peercap);
/* Larger kernel buffers and TCP_NODELAY for bulk lanes. */
void shoal__sock_tune_bulk(int fd);
int shoal__set_nonblock(int fd, int on);
/* "a.b.c.d:port" of the remote end, for log lines. */
void shoal__sock_peer_str(int fd, char *buf, size_t cap);
/* The local address of a connected socket (used to choose a bind address that reaches the
 * master). */
int shoal__sock_local_host(int fd, char *host, size_t cap);

/* Read/write exactly n bytes before the deadline (works on blocking or non-blocking fds).
 * SHOAL_ERR_TIMEOUT, SHOAL_ERR_PEER_FAILED on EOF/reset, SHOAL_ERR_SYSTEM otherwise. */
int shoal__read_full(int fd, void *buf, size_t n, double deadline);
int shoal__write_full(int fd, const void *buf, size_t n, double deadline);

/* ---- frames (src/net/frame.c) ------------------------------------------------------------
 * Every byte after the handshake is a frame: a fixed 24-byte header, then len payload bytes.
 *   off 0  u8  type      (shoal__frame_type)
 *   off 1  u8  flags     (0 for now; nonzero is a protocol error)
 *   off 2  u16 reserved  (0)
 *   off 4  u32 ctx       (context: which group and which traffic class)
 *   off 8  u32 tag
 *   off 12 u32 aux       (type-specific; 0 for DATA)
 *   off 16 u64 len       (payload bytes, <= the configured maximum)
 */
#define SHOAL__FRAME_HDR_SIZE 24

typedef enum shoal__frame_type {
    SHOAL__FRAME_DATA = 1,      /* a tagged message for ctx/tag */
    SHOAL__FRAME_HEARTBEAT = 2, /* liveness, len 0 */
    SHOAL__FRAME_BYE = 3,       /* orderly close: the sender frees the connection, len 0 */
    SHOAL__FRAME_STORE_REQ = 4, /* key-value store request (payload: shoal__store_req) */
    SHOAL__FRAME_STORE_REP = 5, /* key-value store reply */
    /* same-host single copy (docs/protocol.md): a DATA frame whose payload stays in the
     * sender's memory; the 16-byte payload is {u64 address, u64 length}, aux is the sender's
     * id for it, and the receiver reads the bytes itself (process_vm_readv) once matched */
    SHOAL__FRAME_DATA_REF = 6,
    SHOAL__FRAME_REF_DONE = 7, /* receiver -> sender, len 0: DATA_REF `aux` was read */
    SHOAL__FRAME_REF_PULL = 8, /* sender -> receiver, len 0: read DATA_REF `aux` now, matched or not */
    SHOAL__FRAME_TYPE_MAX = 8
} shoal__frame_type;

typedef struct shoal__frame_hdr {
    uint8_t type;
    uint8_t flags;
    uint32_t ctx;
    uint32_t tag;
    uint32_t aux;
    uint64_t len;
} shoal__frame_hdr;

void shoal__frame_encode(const shoal__frame_hdr *h, uint8_t out[SHOAL__FRAME_HDR_SIZE]);
/* Validates type, flags, reserved bytes and len <= max_len. SHOAL_ERR_PROTOCOL with a reason in
 * err (may be NULL) when the header is malformed. */
int shoal__frame_decode(const uint8_t in[SHOAL__FRAME_HDR_SIZE], uint64_t max_len,
                        shoal__frame_hdr *h, char *err, size_t errcap);

/* ---- handshake (src/net/handshake.c) ------------------------------------------------------
 * hello (68 bytes, little-endian):
 *   off 0  u8[4]  magic "SHOL"
 *   off 4  u16    protocol version (SHOAL__PROTOCOL_VERSION)
 *   off 6  u16    kind (SHOAL__CONN_STORE or SHOAL__CONN_MESH)
 *   off 8  u32    rank of the sender
 *   off 12 u32    world size the sender believes in
 *   off 16 u32    lane (mesh: 0 control, 1 data; store: 0)
 *   off 20 u8[16] group id (first 16 bytes of SHA-256 of the group name)
 *   off 36 u8[32] random nonce
 * Exchange (I = initiator/connect side, A = acceptor):
 *   I->A hello_I;  A->I hello_A + proof_A;  I->A proof_I;  A->I verdict (u32, 0 = accepted)
 *   proof_A = HMAC-SHA256(key, "shoal-auth-v1 acceptor" || hello_I || hello_A)
 *   proof_I = HMAC-SHA256(key, "shoal-auth-v1 initiator" || hello_I || hello_A)
 * Either side closes at once on a bad magic, version, kind, group, rank or proof. */
#define SHOAL__PROTOCOL_VERSION 3
#define SHOAL__HELLO_SIZE 68
#define SHOAL__PROOF_SIZE 32
#define SHOAL__GROUP_ID_SIZE 16

enum { SHOAL__CONN_STORE = 1, SHOAL__CONN_MESH = 2 };

/* Verdicts the acceptor sends last. */
enum {
    SHOAL__VERDICT_OK = 0,
    SHOAL__VERDICT_RANK_TAKEN = 1, /* another connection already holds this rank/lane */
    SHOAL__VERDICT_REFUSED = 2,    /* any other reason (the acceptor logs it) */
};

typedef struct shoal__hello {
    uint16_t version;
    uint16_t kind;
    uint32_t rank;
    uint32_t world_size;
    uint32_t lane;
    uint8_t group[SHOAL__GROUP_ID_SIZE];
    uint8_t nonce[32];
} shoal__hello;

/* What a side knows about itself and the group it belongs to. */
typedef struct shoal__auth {
    const uint8_t *key; /* cluster key (may be empty only for a loopback-only group) */
    size_t key_len;
    uint8_t group[SHOAL__GROUP_ID_SIZE];
} shoal__auth;

/* Derives the 16-byte group id from a group name. */
void shoal__group_id(const char *name, uint8_t out[SHOAL__GROUP_ID_SIZE]);

void shoal__hello_encode(const shoal__hello *h, uint8_t out[SHOAL__HELLO_SIZE]);
/* Checks magic; fills h. Version and other checks are the caller's (so it can log them).
 * SHOAL_ERR_PROTOCOL on a bad magic. */
int shoal__hello_decode(const uint8_t in[SHOAL__HELLO_SIZE], shoal__hello *h);

/* Runs the initiator side on a connected blocking socket. self->nonce is filled here.
 * On success *peer holds the acceptor's hello. Errors: SHOAL_ERR_AUTH (bad proof, verdict not
 * OK, wrong version/group/kind), SHOAL_ERR_PROTOCOL (garbage), SHOAL_ERR_TIMEOUT,
 * SHOAL_ERR_PEER_FAILED (closed by the peer: usually it refused us). err gets the reason. */
int shoal__handshake_connect(int fd, const shoal__auth *auth, shoal__hello *self,
                             shoal__hello *peer, double deadline, char *err, size_t errcap);

/* Runs the acceptor side up to and including checking proof_I; does NOT send the verdict, so
 * the caller can check the rank is free first. The hello's version, kind, group and
 * rank < self->world_size are checked before the proof is sent. */
int shoal__handshake_accept(int fd, const shoal__auth *auth, shoal__hello *self,
                            shoal__hello *peer, double deadline, char *err, size_t errcap);
/* Sends the final verdict (acceptor side). */
int shoal__handshake_verdict(int fd, uint32_t verdict, double deadline);

#endif
