/* shoal cluster: pipeline-parallel inference over a leader and its worker pool.
 *
 * The leader (rank 0 of a shoal_pool) plans which contiguous range of layers each worker
 * holds, makes sure every worker has the weights (its own copy of the model, its disk cache,
 * or a stream from the leader checked with SHA-256), has each worker load only its layers,
 * then runs generation: the leader sends token ids to the first stage, activations go from
 * stage to stage over the group's point-to-point messages (worker to worker, never through
 * the leader), and the last stage samples and returns the token (and logits when asked).
 * Each stage keeps the KV cache of its own layers across decode steps.
 *
 * Same answer: every stage runs the model engine's own kernels on the same token chunks as a
 * single-process run, so the generated ids and logits are bit-identical to shoal_model_forward
 * on the whole model (same model, prompt, seed and sampler settings).
 *
 *     leader            worker 1 (stage 0)              worker 2 (stage 1, last)
 *     ids ──STEP──> embed, layers [0,k) ──f32 [n][dim]──> layers [k,n), head, sample
 *      ^                                                                  │
 *      └──────────────────────── token (and logits) ─────────────────────┘
 *
 * Control (capacity, weights, loading, starting each stage's loop) uses remote calls; tokens,
 * activations and results are point-to-point messages. The wire protocol (rpc names,
 * payloads, message tags, the pipe header) is in docs/cluster.md.
 *
 * Threading: a shoal_cluster is used by one thread at a time. Errors: functions return a
 * shoal_status; shoal_cluster_last_error() (leader) gives the detail text. A worker that dies
 * makes the call fail with SHOAL_ERR_PEER_FAILED and the text names it; the cluster is then
 * unusable (free it and shut the pool down). */
#ifndef SHOAL_CLUSTER_H
#define SHOAL_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/comm.h"
#include "shoal/model.h"
#include "shoal/pool.h"
#include "shoal/rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_CLUSTER_PROTOCOL 1 /* version carried by every cluster rpc */

typedef struct shoal_cluster shoal_cluster;               /* the leader's side */
typedef struct shoal_cluster_worker shoal_cluster_worker; /* a worker's side */

/* Where a stage's weights came from. */
typedef enum shoal_weight_source {
    SHOAL_WEIGHTS_LOCAL = 0,    /* the worker's own copy of the model files */
    SHOAL_WEIGHTS_CACHED = 1,   /* the worker's disk cache, keyed by the model's SHA-256 */
    SHOAL_WEIGHTS_STREAMED = 2, /* received from the leader just now (then cached) */
} shoal_weight_source;

/* ---- the leader ------------------------------------------------------------------------ */

typedef struct shoal_cluster_config {
    uint32_t struct_size; /* sizeof(shoal_cluster_config) */
    uint32_t version;     /* SHOAL_CLUSTER_CONFIG_VERSION */
    const char *model;    /* the model on the leader: .gguf, llama2.c .bin or HF folder */
    const char *layers;   /* NULL: plan by capacity; "0-3,4-7": one range per worker, in rank order */
    int threads;          /* compute threads per worker; 0: the worker's default */
    int ctx;              /* KV positions to plan memory for; 0: the model's max_seq */
    int send_weights;     /* 1: stream the weights to every worker, even one with its own copy */
    double timeout_s;     /* deadline of each control call (hello, load) and of each wait for a
                             stage (a neighbour's activations, the last stage's result);
                             < 0: the group's (SHOAL_TIMEOUT) */
    /* Log lines (the plan, where weights come from); NULL: silent. Lines have no newline. */
    void (*log)(void *user, const char *line);
    /* Progress of weight streaming: bytes acknowledged by the slowest receiver so far. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *user;
} shoal_cluster_config;

#define SHOAL_CLUSTER_CONFIG_VERSION 1
#define SHOAL_CLUSTER_CONFIG_INIT \
    { sizeof(shoal_cluster_config), SHOAL_CLUSTER_CONFIG_VERSION, NULL, NULL, 0, 0, 0, -1.0, NULL, NULL, NULL }

/* One pipeline stage, as planned and loaded. */
typedef struct shoal_cluster_stage {
    int rank;             /* the worker's rank in the pool (1..N) */
    int first, last;      /* layers [first, last) */
    int embed, head;      /* holds the token embedding / the final norm and classifier */
    uint64_t capacity;    /* memory the worker offered, bytes */
    uint64_t need;        /* estimated memory of this stage (weights + KV cache + scratch) */
    int threads;          /* compute threads it runs with */
    int pid;              /* the worker's process id (on its host) */
    char host[64];        /* the worker's host name */
    int source;           /* shoal_weight_source */
    uint64_t bytes_received; /* weight bytes this worker process has received from a leader */
} shoal_cluster_stage;

/* Builds the pipeline on a started pool: asks every worker for its capacity, plans the layers
 * (printed through cfg->log), transfers weights where needed and has every stage load its
 * layers (a worker left without layers stays idle), then starts each stage's loop. Returns when every stage has acknowledged that it is loaded. The pool stays the
 * caller's: free the cluster before shutting the pool down. On error *out is NULL, the detail
 * is in err (e.g. a plan that does not fit names the worker that is too small) and the
 * workers may hold partial state (shut the pool down). */
int shoal_cluster_create(shoal_cluster **out, shoal_pool *pool, const shoal_cluster_config *cfg,
                         char *err, size_t errcap);
void shoal_cluster_free(shoal_cluster *c); /* NULL is fine; the workers keep running */

const shoal_model_config *shoal_cluster_model_config(const shoal_cluster *c);
int shoal_cluster_stages(const shoal_cluster *c);
int shoal_cluster_stage_info(const shoal_cluster *c, int i, shoal_cluster_stage *out);
const char *shoal_cluster_last_error(const shoal_cluster *c); /* "" when none */

/* One generation request. */
typedef struct shoal_cluster_request {
    size_t size;              /* sizeof(shoal_cluster_request) */
    const int32_t *prompt;    /* [n_prompt] token ids, >= 1 of them */
    int n_prompt;
    int n_predict;            /* tokens to generate (0: only the prompt) */
    int batch;                /* prompt tokens per step; 0: all at once (as shoal run --batch) */
    int max_seq;              /* KV positions per stage; 0: n_prompt + n_predict */
    shoal_sampler_params sampler;
    float *prompt_logits;     /* NULL, or [n_prompt][vocab]: filled with every prompt position's
                                 logits (the last stage sends them to the leader) */
} shoal_cluster_request;
#define SHOAL_CLUSTER_REQUEST_INIT \
    { sizeof(shoal_cluster_request), NULL, 0, 0, 0, 0, SHOAL_SAMPLER_PARAMS_INIT, NULL }

/* Called with each sampled token, in order, as soon as it arrives. Return 0 to go on, 1 to
 * stop (end of generation, a stop string: the token is then not counted as generated), or a
 * negative status to fail the request with it. */
typedef int (*shoal_cluster_token_fn)(void *user, int32_t token);

typedef struct shoal_cluster_stats {
    int generated;        /* tokens accepted by the callback */
    double prompt_s;      /* prefill wall time */
    double decode_s;      /* decode wall time (from the first sampled token to the end) */
    int decode_steps;     /* decode steps (forward passes of one token) */
    double compute_s;     /* decode: time the stages spent in the model engine, summed */
    double send_s;        /* decode: time the stages spent sending activations, summed */
    double step_s;        /* decode: wall time of the steps as the leader saw them */
} shoal_cluster_stats;

/* Runs one request: prefill, then up to n_predict samples, each reported to cb (may be NULL)
 * before the next step starts. Sampling happens on the last stage with req->sampler (its
 * repetition window starts with the prompt), exactly as shoal run does it. stats may be NULL.
 * A request may follow another on the same cluster (each starts a fresh KV cache). */
int shoal_cluster_generate(shoal_cluster *c, const shoal_cluster_request *req,
                           shoal_cluster_token_fn cb, void *user, shoal_cluster_stats *stats);

/* ---- planning (exposed for tools and tests) ------------------------------------------------
 * Assigns n_layers contiguous layers to n workers (stage i = worker i). bytes_per_layer[l] is
 * layer l's memory (weights + its KV cache); embed_bytes goes to stage 0, head_bytes to the
 * last stage (it includes the embedding again when the classifier is tied and the last stage
 * is not also the first: tied_bytes), base_bytes to every stage (scratch). Without spec the
 * layers are split in proportion to capacity (largest remainder, at least one each); when that
 * does not fit, the split that fills each worker in turn is tried. With more workers than
 * layers, the n_layers workers offering most take one layer each. spec "0-3,4-7" fixes the
 * ranges of the first workers (any after the last range stay idle). first/last get
 * [first, last) per worker (first == last: idle), need the estimate (0 when idle).
 * SHOAL_ERR_INVALID for a bad spec, SHOAL_ERR_NOMEM when no plan fits; err says why (naming
 * the worker). */
typedef struct shoal_plan_input {
    int n_layers;
    const uint64_t *bytes_per_layer; /* [n_layers] */
    uint64_t embed_bytes, head_bytes, tied_bytes, base_bytes;
    int n_workers;
    const uint64_t *capacity; /* [n_workers] */
    const char *spec;         /* NULL: by capacity */
} shoal_plan_input;
int shoal_cluster_plan(const shoal_plan_input *in, int *first, int *last, uint64_t *need, char *err,
                       size_t errcap);

/* ---- a worker --------------------------------------------------------------------------- */

typedef struct shoal_cluster_worker_config {
    uint32_t struct_size;  /* sizeof(shoal_cluster_worker_config) */
    uint32_t version;      /* SHOAL_CLUSTER_CONFIG_VERSION */
    const char *model;     /* this worker's copy of the model; NULL: SHOAL_WORKER_MODEL, else the
                              leader's path if it exists here with the same file sizes;
                              "none": no copy (the weights come from the leader) */
    uint64_t memory;       /* capacity offered, bytes; 0: SHOAL_WORKER_MEMORY (one value, or a
                              comma list taken by rank: "1G,3G"), else MemAvailable */
    int threads;           /* compute threads when the leader does not say; 0: SHOAL_THREADS */
    const char *cache_dir; /* NULL: SHOAL_CACHE_DIR, else $XDG_CACHE_HOME/shoal, ~/.cache/shoal */
    void (*log)(void *user, const char *line); /* NULL: silent */
    void *user;
} shoal_cluster_worker_config;

#define SHOAL_CLUSTER_WORKER_CONFIG_INIT \
    { sizeof(shoal_cluster_worker_config), SHOAL_CLUSTER_CONFIG_VERSION, NULL, 0, 0, NULL, NULL, NULL }

/* Creates the worker's state (nothing is loaded until the leader asks). cfg may be NULL. */
int shoal_cluster_worker_create(shoal_cluster_worker **out, const shoal_cluster_worker_config *cfg);

/* The setup function of shoal_worker_config (user = the shoal_cluster_worker): registers the
 * cluster.* handlers on the worker's endpoint. */
int shoal_cluster_worker_setup(void *worker, shoal_rpc *rpc, shoal_comm *comm);

/* Weight bytes this worker has received from leaders since it was created. */
uint64_t shoal_cluster_worker_bytes_received(const shoal_cluster_worker *w);

/* Frees the model, caches and sampler. Only after shoal_worker_run has returned (its rpc
 * endpoint, whose handlers use the state, is gone by then). NULL is fine. */
void shoal_cluster_worker_free(shoal_cluster_worker *w);

#ifdef __cplusplus
}
#endif
#endif
