/* Internals of a loaded model shared by loader.c, forward.c and model.c. */
#ifndef SHOAL_MODEL_MODEL_INT_H
#define SHOAL_MODEL_MODEL_INT_H

#include "model/backend.h"
#include "model/source.h"
#include "shoal/model.h"

/* Tokens per pass through the layers: bounds scratch memory; larger prompts go in chunks
 * (which gives the same result, since each chunk attends to the cache of the previous ones). */
#define SHOAL__CHUNK 256

typedef struct shoal__layer {
    shoal__weight wq;  /* [n_heads*head_dim][dim] */
    shoal__weight wk;  /* [n_kv_heads*head_dim][dim] */
    shoal__weight wv;  /* [n_kv_heads*head_dim][dim] */
    shoal__weight wo;  /* [dim][n_heads*head_dim] */
    shoal__weight w1;  /* gate [hidden][dim] */
    shoal__weight w2;  /* down [dim][hidden] */
    shoal__weight w3;  /* up [hidden][dim] */
    float *attn_norm;  /* [dim], f32 copies of the (small) norm weights */
    float *ffn_norm;   /* [dim] */
    float *q_norm;     /* [head_dim] (qk_norm only) */
    float *k_norm;     /* [head_dim] */
} shoal__layer;

struct shoal_model {
    shoal__source src;
    shoal_model_config cfg;
    int first, last;     /* layers held: [first, last) */
    int has_embed, has_head;
    shoal__layer *layers; /* [last - first] */
    shoal__weight embed;  /* [vocab][dim] */
    shoal__weight output; /* [vocab][dim]: the embedding itself when tied */
    float *out_norm;      /* [dim] */
    float *inv_freq;      /* [head_dim/2] RoPE frequencies after llama3 scaling / rope_freqs */
    const shoal__backend_ops *be;
    void *bctx;
    int threads;
    /* scratch for one chunk of SHOAL__CHUNK tokens */
    float *xb, *xb2; /* [chunk][dim] */
    float *q, *att;  /* [chunk][n_heads*head_dim] */
    float *hb, *hb2; /* [chunk][hidden] */
    float *cs;       /* [chunk][head_dim/2][2] RoPE cos/sin */
    char err[512];
};

struct shoal_kv {
    int first, last, max_seq, kv_dim;
    const shoal_model *m;
    float *k, *v; /* [last-first][max_seq][kv_dim] */
};

int shoal__model_load(shoal_model *m, const shoal_model_load_opts *o, char *err, size_t errcap);

#endif
