/* The cluster protocol's byte layouts (docs/cluster.md): bounded little-endian writers and
 * readers, the rpc names, the message tags and the fixed headers of point-to-point messages.
 * A reader never reads past its buffer: the first short read sets err and every later read
 * returns 0, so a handler decodes everything and checks err once. */
#ifndef SHOAL_CLUSTER_WIRE_H
#define SHOAL_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/cluster.h"
#include "shoal/comm.h"

/* rpc names (leader -> worker) */
#define CL_RPC_HELLO "cluster.hello" /* capacity and whether the worker has the model */
#define CL_RPC_HAVE "cluster.have"   /* is this content hash in the worker's cache? */
#define CL_RPC_FETCH "cluster.fetch" /* receive the model files (chunks follow on CL_TAG_CHUNK) */
#define CL_RPC_LOAD "cluster.load"   /* open layers [first, last) */
#define CL_RPC_SERVE "cluster.serve" /* run the stage loop until a STOP message passes */

/* point-to-point tags, all on the pool's group */
#define CL_TAG_PIPE 0x5c150001   /* leader -> first stage -> ... -> last stage: pipe messages */
#define CL_TAG_CHUNK 0x5c150002  /* leader -> worker: chunk header + bytes */
#define CL_TAG_ACK 0x5c150003    /* worker -> leader: bytes received so far */
#define CL_TAG_RESULT 0x5c150004 /* last stage -> leader: pipe messages (results) */

/* A pipe message is a fixed header, then (when payload > 0) a second message on the same tag
 * of exactly `payload` bytes, so a receiver checks the length before it allocates. */
#define CL_PIPE_MAGIC 0x50495053u   /* "SPIP": towards the last stage */
#define CL_RESULT_MAGIC 0x53455253u /* "SRES": last stage to the leader */
#define CL_PIPE_HDR 56
enum { CL_OP_BEGIN = 1, CL_OP_STEP = 2, CL_OP_STOP = 3 };

typedef struct cl_pipe_hdr {
    uint32_t magic, op, gen, step;
    int32_t pos;      /* STEP: first position; BEGIN: KV positions (max_seq) */
    int32_t n;        /* STEP: tokens; BEGIN: prompt ids for the sampler; result: logit rows */
    uint32_t flags;   /* STEP: CL_STEP_*; result of a STEP: the sampled token (int32, -1: none) */
    int32_t status;   /* 0, or the negative shoal_status of the first failure (payload: text) */
    uint64_t payload; /* bytes of the message that follows (0: none) */
    double compute_s; /* time spent in the model engine by the stages so far */
    double send_s;    /* time spent sending activations by the stages so far */
} cl_pipe_hdr;

void cl_pipe_encode(const cl_pipe_hdr *h, uint8_t out[CL_PIPE_HDR]);
int cl_pipe_decode(const uint8_t *p, size_t len, cl_pipe_hdr *h); /* SHOAL_ERR_PROTOCOL if bad */
/* Sends a pipe message to dst on tag: the header (h->payload set to len), then the payload,
 * if any, as a second message. A shoal status. */
int cl_pipe_send(shoal_comm *comm, int dst, int tag, cl_pipe_hdr *h, const void *payload, size_t len);

#define CL_CHUNK_MAGIC 0x4b4e4843u /* "CHNK" */
#define CL_ACK_MAGIC 0x4b434341u   /* "ACCK" */
#define CL_CHUNK_HDR 24
#define CL_ACK_LEN 16
#define CL_ERR_TEXT_MAX 1024
#define CL_SAMPLER_BYTES 32

/* step flags */
#define CL_STEP_SAMPLE 1u     /* last stage: sample a token from the last row's logits */
#define CL_STEP_LOGITS_ALL 2u /* last stage: return the logits of every row */

/* load flags */
#define CL_LOAD_EMBED 1u
#define CL_LOAD_HEAD 2u

/* limits on what a peer may send */
#define CL_MAX_FILES 4096
#define CL_MAX_NAME 255
#define CL_MAX_PATH 4096
#define CL_MAX_FILE_BYTES (1ull << 42) /* 4 TiB */
#define CL_CHUNK_MAX (64u << 20)
#define CL_MAX_TOKENS (1 << 22)

typedef struct cl_wbuf {
    uint8_t *p;
    size_t len, cap;
    int err; /* an allocation failed */
} cl_wbuf;

typedef struct cl_rbuf {
    const uint8_t *p;
    size_t len, off;
    int err; /* a read ran past the end or a value was out of range */
} cl_rbuf;

void cl_w_bytes(cl_wbuf *w, const void *src, size_t n);
void cl_w_u32(cl_wbuf *w, uint32_t v);
void cl_w_i32(cl_wbuf *w, int32_t v);
void cl_w_u64(cl_wbuf *w, uint64_t v);
void cl_w_f32(cl_wbuf *w, float v);
void cl_w_f64(cl_wbuf *w, double v);
void cl_w_str(cl_wbuf *w, const char *s); /* u16 length + bytes (truncated at 65535) */

static inline cl_rbuf cl_rbuf_of(const void *p, size_t len) {
    cl_rbuf r = {(const uint8_t *)p, len, 0, 0};
    return r;
}
const uint8_t *cl_r_bytes(cl_rbuf *r, size_t n); /* NULL (and err) when fewer are left */
uint32_t cl_r_u32(cl_rbuf *r);
int32_t cl_r_i32(cl_rbuf *r);
uint64_t cl_r_u64(cl_rbuf *r);
float cl_r_f32(cl_rbuf *r);
double cl_r_f64(cl_rbuf *r);
/* A string of at most max bytes into out (cap >= max + 1), NUL-terminated; a string with a NUL
 * inside or longer than max sets err. */
void cl_r_str(cl_rbuf *r, char *out, size_t cap, size_t max);
static inline size_t cl_r_left(const cl_rbuf *r) { return r->len - r->off; }

/* A file name a peer may ask us to create: 1..255 bytes, no '/', not "." or "..", printable. */
int cl_name_ok(const char *name);

/* Sampler parameters on the wire (CL_SAMPLER_BYTES, 32). */
void cl_w_sampler(cl_wbuf *w, const shoal_sampler_params *p);
void cl_r_sampler(cl_rbuf *r, shoal_sampler_params *p);

#endif
