/* The compute-backend interface the model code calls: a const table of function pointers, so
 * a CUDA backend can plug in beside the CPU one without #ifdefs in forward.c.
 *
 * Buffers: activations, KV caches and scratch are allocated through the backend (alloc/free)
 * and are opaque to the caller except through the backend's own functions; the CPU backend
 * gives host memory. Weights are described by shoal__weight and stay where the loader put them
 * (mmap); a device backend would upload them in prepare_weight. */
#ifndef SHOAL_MODEL_BACKEND_H
#define SHOAL_MODEL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* A matrix [rows][cols] in its stored dtype, row-major, rows row_bytes apart. */
typedef struct shoal__weight {
    int dtype;
    int rows, cols;
    size_t row_bytes;
    const void *data;
} shoal__weight;

typedef struct shoal__backend_ops {
    const char *name;
    /* threads: compute threads (>= 1). On failure *ctx is NULL and err says why. */
    int (*create)(int threads, void **ctx, char *err, size_t errcap);
    void (*destroy)(void *ctx);
    const char *(*describe)(void *ctx); /* "cpu (avx512)" */
    int (*supports)(void *ctx, int dtype); /* 1 when matmul takes weights of dtype */
    void *(*alloc)(void *ctx, size_t bytes); /* zeroed, 64-byte aligned; NULL on failure */
    void (*free)(void *ctx, void *p);

    /* y [n][w->rows] = x [n][w->cols] . W^T   (y must not overlap x) */
    int (*matmul)(void *ctx, const shoal__weight *w, const float *x, int n, float *y);
    /* y [n][dim] = x / sqrt(mean(x^2) + eps) * g [dim]; y may equal x */
    void (*rmsnorm)(void *ctx, float *y, const float *x, const float *g, int n, int dim, float eps);
    /* Rotates n rows of x, each n_heads heads of head_dim, rows `stride` floats apart, by the
     * angles whose cos/sin are cs [n][head_dim/2][2]. interleaved: pairs (2i, 2i+1); else
     * rotate-half: pairs (i, i + head_dim/2). */
    void (*rope)(void *ctx, float *x, int n, int n_heads, int head_dim, int stride, const float *cs,
                 int interleaved);
    /* Causal attention for n new tokens at positions pos0..pos0+n-1:
     * out [n][n_heads*head_dim] = softmax(q k^T / sqrt(head_dim)) v per head, where q is
     * [n][n_heads*head_dim] and k, v are caches [>= pos0+n][n_kv_heads*head_dim]; query head h
     * reads kv head h / (n_heads / n_kv_heads) (GQA). */
    int (*attention)(void *ctx, float *out, const float *q, const float *k, const float *v, int pos0,
                     int n, int n_heads, int n_kv_heads, int head_dim);
    void (*silu_mul)(void *ctx, float *g, const float *u, size_t n); /* g = silu(g) * u */
    void (*add)(void *ctx, float *x, const float *y, size_t n);      /* x += y */
    /* out [n][w->cols] = rows ids of w as f32 (embedding lookup); ids are checked by the caller */
    void (*get_rows)(void *ctx, const shoal__weight *w, const int32_t *ids, int n, float *out);
} shoal__backend_ops;

extern const shoal__backend_ops shoal__backend_cpu;

#endif
