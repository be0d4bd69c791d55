/* shoal model engine: load a model (GGUF, Hugging Face safetensors folder, llama2.c checkpoint),
 * run its forward pass on the CPU with a KV cache, and sample tokens.
 *
 * Built for distribution: a model may be opened for a range of layers only (a pipeline stage),
 * with or without the token embedding and the final norm + classifier. The forward pass is
 * three steps that a stage can run separately:
 *
 *     ids --shoal_model_embed--> x f32 [n][dim] --shoal_model_forward_layers--> x --shoal_model_head--> logits f32 [n][vocab]
 *
 * and shoal_model_forward() chains them for a whole model. Activations between steps are plain
 * row-major f32 arrays so a stage can send them to the next process as bytes.
 *
 * Threading: a model owns a thread pool (opts.threads); calls on one model must not overlap.
 * Errors: functions return a shoal_status; shoal_model_last_error() gives the detail of the last
 * failed call on a model; open/generate write it into the caller's err buffer. */
#ifndef SHOAL_MODEL_H
#define SHOAL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/shoal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight element types. The values are ggml's type ids (as stored in GGUF files). */
typedef enum shoal_wtype {
    SHOAL_WTYPE_F32 = 0,
    SHOAL_WTYPE_F16 = 1,
    SHOAL_WTYPE_Q4_0 = 2,  /* blocks of 32: f16 scale + 16 bytes of 4-bit values (q - 8) */
    SHOAL_WTYPE_Q8_0 = 8,  /* blocks of 32: f16 scale + 32 int8 */
    SHOAL_WTYPE_Q4_K = 12, /* super-blocks of 256, 8 sub-blocks with 6-bit scales and mins */
    SHOAL_WTYPE_Q6_K = 14, /* super-blocks of 256, 16 sub-blocks with int8 scales */
    SHOAL_WTYPE_BF16 = 30,
} shoal_wtype;

/* "F32", "Q8_0", ... or "unknown". */
const char *shoal_wtype_name(int dtype);

typedef enum shoal_arch { SHOAL_ARCH_LLAMA = 1, SHOAL_ARCH_QWEN3 = 2 } shoal_arch;
typedef enum shoal_format {
    SHOAL_FORMAT_GGUF = 1,
    SHOAL_FORMAT_HF = 2,      /* folder: config.json + *.safetensors */
    SHOAL_FORMAT_LLAMA2C = 3, /* llama2.c .bin checkpoint (legacy header or v1 "ak42") */
} shoal_format;

/* The shape of a model, as read from its files. */
typedef struct shoal_model_config {
    int arch;   /* shoal_arch */
    int format; /* shoal_format */
    int dim;    /* hidden size */
    int hidden_dim; /* feed-forward inner size */
    int n_layers, n_heads, n_kv_heads, head_dim; /* head_dim need not be dim / n_heads (Qwen3) */
    int vocab_size;
    int max_seq;    /* context length the model was trained for */
    float norm_eps; /* RMSNorm epsilon */
    float rope_theta;
    int rope_interleaved; /* 1: rotate pairs (2i, 2i+1) (llama2.c, GGUF llama); 0: rotate-half (HF) */
    /* Llama-3 frequency scaling (rope_type "llama3"); factor 0 when absent. */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int qk_norm;        /* 1: RMSNorm on each head's q and k (Qwen3) */
    int tied_classifier; /* 1: the classifier is the token embedding */
    int bos_id, eos_id;  /* -1 when the files do not say */
    int weight_dtype;    /* dtype of the first layer's wq, for display */
} shoal_model_config;

typedef struct shoal_model shoal_model;

typedef struct shoal_model_load_opts {
    size_t size;     /* sizeof(shoal_model_load_opts): lets the struct grow */
    int first_layer; /* layers [first_layer, last_layer) are loaded */
    int last_layer;  /* -1: the model's n_layers */
    int embed;       /* 1: load the token embedding (shoal_model_embed) */
    int head;        /* 1: load the final norm and classifier (shoal_model_head) */
    int threads;     /* compute threads; 0: setting "threads" (SHOAL_THREADS), else all cores */
} shoal_model_load_opts;
#define SHOAL_MODEL_LOAD_OPTS_INIT {sizeof(shoal_model_load_opts), 0, -1, 1, 1, 0}

/* Opens path: a .gguf file, a llama2.c .bin file, or an HF folder (config.json with
 * model.safetensors, or shards listed by model.safetensors.index.json, or every *.safetensors).
 * Files are memory-mapped and validated; bad files give SHOAL_ERR_FORMAT (or _NOT_FOUND, _IO,
 * _UNSUPPORTED) with a message naming the file and field in err. On error *out is NULL.
 * opts may be NULL for the defaults. */
int shoal_model_open(const char *path, const shoal_model_load_opts *opts, shoal_model **out,
                     char *err, size_t errcap);
void shoal_model_free(shoal_model *m); /* NULL is fine */

const shoal_model_config *shoal_model_get_config(const shoal_model *m);
const char *shoal_model_last_error(const shoal_model *m); /* "" when none */
/* The layers this handle holds: [*first, *last). */
void shoal_model_layer_range(const shoal_model *m, int *first, int *last);
int shoal_model_threads(const shoal_model *m);
/* Name of the compute backend and its kernels, e.g. "cpu (avx512)". */
const char *shoal_model_backend_name(const shoal_model *m);

/* Tensors of the file(s), for `shoal inspect`. shape is outermost first (PyTorch order):
 * a weight matrix is [out][in]. */
typedef struct shoal_tensor_info {
    const char *name;      /* canonical (GGUF-style) name: "blk.0.attn_q.weight" */
    const char *file_name; /* name in the file: "model.layers.0.self_attn.q_proj.weight" */
    int dtype;
    int n_dims;
    uint64_t shape[4];
    uint64_t n_elements;
    uint64_t nbytes;
} shoal_tensor_info;
size_t shoal_model_tensor_count(const shoal_model *m);
int shoal_model_tensor_info(const shoal_model *m, size_t i, shoal_tensor_info *info);

/* ---- KV cache: one per sequence, for the layers the model handle holds.
 * f32 keys and values [layer][max_seq][n_kv_heads * head_dim]. */
typedef struct shoal_kv shoal_kv;
/* max_seq <= 0 uses the model's max_seq. SHOAL_ERR_NOMEM when it does not fit. */
int shoal_kv_create(const shoal_model *m, int max_seq, shoal_kv **out);
void shoal_kv_free(shoal_kv *kv);
int shoal_kv_max_seq(const shoal_kv *kv);

/* ---- forward pass.
 * embed: x [n][dim] = rows ids of the token embedding. SHOAL_ERR_INVALID for an id outside
 *   the vocabulary or a handle opened without the embedding.
 * forward_layers: runs this handle's layers on x [n][dim] in place, for tokens at positions
 *   pos .. pos+n-1; writes their keys/values into kv and attends to kv positions 0..pos+n-1
 *   (earlier positions must have been filled by earlier calls). Whether the n tokens come in one
 *   call (prefill) or one by one (decode) gives the same result up to float rounding.
 * head: logits [n][vocab] from x [n][dim] (final RMSNorm then classifier); x is not changed.
 * forward: embed + layers + head for a handle holding the whole model. logits gets
 *   [n][vocab] when all_logits, else only the last position's [vocab]. */
int shoal_model_embed(shoal_model *m, const int32_t *ids, int n, float *x);
int shoal_model_forward_layers(shoal_model *m, shoal_kv *kv, int pos, int n, float *x);
int shoal_model_head(shoal_model *m, const float *x, int n, float *logits);
int shoal_model_forward(shoal_model *m, shoal_kv *kv, const int32_t *ids, int n, int pos,
                        float *logits, int all_logits);

/* ---- sampling.
 * Order: repetition penalty over the last repeat_last_n accepted tokens (positive logits are
 * divided by it, negative ones multiplied, as in CTRL / llama.cpp), then temperature 0 means
 * greedy (argmax, lowest id on ties); else top-k, softmax with temperature, top-p (smallest set
 * whose probability reaches p), min-p (drop tokens below min_p * max prob), and a draw.
 * PRNG: xoshiro256** seeded with splitmix64(seed); a draw is (next() >> 40) * 2^-24, so the
 * same seed, parameters and logits give the same tokens on every machine. */
typedef struct shoal_sampler_params {
    size_t size;          /* sizeof(shoal_sampler_params) */
    float temperature;    /* 0: greedy */
    int top_k;            /* 0: off */
    float top_p;          /* 1: off */
    float min_p;          /* 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* window of the penalty */
    uint64_t seed;
} shoal_sampler_params;
#define SHOAL_SAMPLER_PARAMS_INIT {sizeof(shoal_sampler_params), 0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0}

typedef struct shoal_sampler shoal_sampler;
int shoal_sampler_create(const shoal_sampler_params *p, int vocab_size, shoal_sampler **out);
void shoal_sampler_free(shoal_sampler *s);
/* Picks a token from logits [vocab] (not modified). Returns the id (>= 0) or a negative status. */
int shoal_sampler_sample(shoal_sampler *s, const float *logits);
/* Records a token (prompt or generated) for the repetition penalty. */
void shoal_sampler_accept(shoal_sampler *s, int token);

/* ---- random-weight models for tests and benchmarks (`shoal genmodel`).
 * Weights are a deterministic function of seed and the shape (not of the format or dtype), so
 * the same seed in f32 and Q8_0 gives the same model up to quantization. */
typedef struct shoal_genmodel_opts {
    size_t size; /* sizeof(shoal_genmodel_opts) */
    int arch;    /* shoal_arch */
    int format;  /* shoal_format: GGUF (file), HF (folder), LLAMA2C (file) */
    int dtype;   /* GGUF: F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K (norms stay F32); HF: F32/F16/BF16;
                    LLAMA2C: F32 */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq;
    float rope_theta;
    int tied_classifier;
    uint64_t seed;
    int llama2c_version; /* 0: legacy header, 1: "ak42" v1 header */
} shoal_genmodel_opts;
#define SHOAL_GENMODEL_OPTS_INIT                                                              \
    {sizeof(shoal_genmodel_opts), SHOAL_ARCH_LLAMA, SHOAL_FORMAT_GGUF, SHOAL_WTYPE_F32, 64, 172, \
     2, 8, 4, 8, 512, 256, 10000.0f, 0, 1, 0}
int shoal_model_generate(const shoal_genmodel_opts *o, const char *path, char *err,
                         size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
