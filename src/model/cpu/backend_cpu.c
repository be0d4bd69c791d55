/* The CPU backend: the shoal__backend_ops table over the kernel sets (kernels.h) and the
 * thread pool (pool.h). Work is split over threads by output rows (matmul), by (token, head)
 * (attention) and by tokens (norms). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/backend.h"
#include "model/cpu/kernels.h"
#include "model/cpu/pool.h"
#include "model/dtype.h"
#include "model/quant.h"
#include "shoal/settings.h"

typedef struct cpu_ctx {
    shoal__pool *pool;
    const shoal__cpu_kernels *k;
    shoal__dot_fn dot[SHOAL__NDTYPE]; /* the chosen set, gaps filled from lower sets */
    shoal__gemm_fn gemm[SHOAL__NDTYPE]; /* prefill products where the set has them */
    size_t (*gemm_scratch)(int cols, int n);
    void (*quantize_act)(const float *, void *, int);
    float (*dot_f32)(const float *, const float *, int);
    void (*axpy)(float *, float, const float *, int);
    void (*silu_mul)(float *, const float *, size_t);
    void *act;        /* quantized activations of the current matmul */
    size_t act_cap;
    char *scratch;    /* gemm scratch, [threads][scratch_cap] */
    size_t scratch_cap;
    float *att;       /* attention scores, [threads][att_cap] */
    size_t att_cap;
    char desc[64];
} cpu_ctx;

static void *cpu_alloc(void *vctx, size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
}

static void cpu_free(void *vctx, void *p) { free(p); }

static int cpu_create(int threads, void **out, char *err, size_t errcap) {
    *out = NULL;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return SHOAL_ERR_NOMEM;
    const char *isa = shoal_setting_value("cpu_isa");
    c->k = shoal__cpu_kernels_pick(isa);
    if (!c->k) {
        shoal__errf(err, errcap, "SHOAL_CPU_ISA=%s: unknown or not supported by this CPU (auto, amx, avx512, avx2, scalar)", isa);
        free(c);
        return SHOAL_ERR_UNSUPPORTED;
    }
    const shoal__cpu_kernels *chain[4];
    int nchain = shoal__cpu_kernels_chain(c->k, chain);
    for (int d = 0; d < SHOAL__NDTYPE; d++) {
        for (int i = 0; i < nchain && !c->dot[d]; i++) c->dot[d] = chain[i]->dot[d];
        c->gemm[d] = c->k->gemm[d];
    }
    c->gemm_scratch = c->k->gemm_scratch;
    for (int i = 0; i < nchain; i++) {
        if (!c->quantize_act) c->quantize_act = chain[i]->quantize_act;
        if (!c->dot_f32) c->dot_f32 = chain[i]->dot_f32;
        if (!c->axpy) c->axpy = chain[i]->axpy;
        if (!c->silu_mul) c->silu_mul = chain[i]->silu_mul;
    }
    int rc = shoal__pool_create(threads, &c->pool);
    if (rc) {
        shoal__errf(err, errcap, "cannot start %d compute threads", threads);
        free(c);
        return rc;
    }
    snprintf(c->desc, sizeof c->desc, "cpu (%s, %d thread%s)", c->k->isa, threads, threads == 1 ? "" : "s");
    *out = c;
    return SHOAL_OK;
}

static void cpu_destroy(void *vctx) {
    cpu_ctx *c = vctx;
    if (!c) return;
    shoal__pool_free(c->pool);
    free(c->act);
    free(c->att);
    free(c->scratch);
    free(c);
}

static const char *cpu_describe(void *vctx) { return ((cpu_ctx *)vctx)->desc; }
static int cpu_supports(void *vctx, int dtype) {
    return dtype >= 0 && dtype < SHOAL__NDTYPE && ((cpu_ctx *)vctx)->dot[dtype] != NULL;
}

/* ---- matmul */
typedef struct mm_job {
    cpu_ctx *c;
    const shoal__weight *w;
    const float *x;
    int n;
    float *y;
    const void *act;
    size_t act_stride;
    shoal__gemm_fn gemm; /* non-NULL: row blocks go through it with all n tokens */
    int rows_per_block, n_blocks;
    atomic_int next;
} mm_job;

static void quant_job(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int t = ith; t < j->n; t += nth)
        j->c->quantize_act(j->x + (size_t)t * j->w->cols, (char *)j->act + (size_t)t * j->act_stride, j->w->cols);
}

/* Row blocks are handed out dynamically; within a block every token tile of SHOAL__NT tokens
 * passes over the block's rows in one dot-tile call (the kernel tiles the rows in registers),
 * so the block's weights are read from memory once and then hit in cache for the remaining
 * token tiles (prefill). */
static void mm_work(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const shoal__weight *w = j->w;
    shoal__dot_fn dot = j->c->dot[w->dtype];
    int b;
    while ((b = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n_blocks) {
        int r0 = b * j->rows_per_block, r1 = r0 + j->rows_per_block;
        if (r1 > w->rows) r1 = w->rows;
        if (j->gemm) {
            j->gemm(w->cols, (const char *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0, j->act,
                    j->act_stride, j->n, j->y + r0, (size_t)w->rows, j->c->scratch + (size_t)ith * j->c->scratch_cap);
            continue;
        }
        for (int t = 0; t < j->n; t += SHOAL__NT) {
            int nt = j->n - t < SHOAL__NT ? j->n - t : SHOAL__NT;
            const void *a = (const char *)j->act + (size_t)t * j->act_stride;
            float *yo = j->y + (size_t)t * w->rows;
            dot(w->cols, (const char *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0, a,
                j->act_stride, nt, yo + r0, (size_t)w->rows);
        }
    }
}

static int cpu_matmul(void *vctx, const shoal__weight *w, const float *x, int n, float *y) {
    cpu_ctx *c = vctx;
    if (!cpu_supports(c, w->dtype)) return SHOAL_ERR_UNSUPPORTED;
    mm_job j = {.c = c, .w = w, .x = x, .n = n, .y = y};
    int nth = shoal__pool_threads(c->pool);
    if (shoal__act_is_q8(w->dtype)) {
        j.act_stride = (SHOAL__ACT_BYTES(w->cols) + 63) / 64 * 64;
        size_t need = j.act_stride * (size_t)n;
        if (need > c->act_cap) {
            free(c->act);
            c->act = cpu_alloc(c, need);
            c->act_cap = c->act ? need : 0;
            if (!c->act) return SHOAL_ERR_NOMEM;
        }
        j.act = c->act;
        if (n >= nth && nth > 1) shoal__pool_run(c->pool, quant_job, &j);
        else quant_job(&j, 0, 1);
    } else {
        j.act = x;
        j.act_stride = (size_t)w->cols * sizeof(float);
    }
    /* Blocks: enough to balance threads (>= 8 per thread for decode), small enough to stay in
     * L2 across token tiles in prefill (~256 KiB of weights). A gemm keeps each tile of rows in
     * cache itself, and packs the activations once per call: its blocks are larger (2 per
     * thread) and whole tiles of 16 rows. */
    if (c->gemm[w->dtype] && n >= SHOAL__GEMM_MIN) {
        size_t need = c->gemm_scratch(w->cols, n);
        need = (need + 63) / 64 * 64;
        if (need > c->scratch_cap) {
            free(c->scratch);
            c->scratch = cpu_alloc(c, need * (size_t)nth);
            c->scratch_cap = c->scratch ? need : 0;
            if (!c->scratch) return SHOAL_ERR_NOMEM;
        }
        j.gemm = c->gemm[w->dtype];
    }
    size_t target = (256u << 10) / (w->row_bytes ? w->row_bytes : 1);
    int rpb = (int)(target < 1 ? 1 : target);
    int min_blocks = (j.gemm ? 2 : 8) * nth;
    if (j.gemm || (w->rows + rpb - 1) / rpb < min_blocks) rpb = (w->rows + min_blocks - 1) / min_blocks;
    rpb = j.gemm ? (rpb + 15) / 16 * 16 : (rpb + 3) / 4 * 4; /* whole register / AMX tiles of rows */
    j.rows_per_block = rpb;
    j.n_blocks = (w->rows + rpb - 1) / rpb;
    atomic_init(&j.next, 0);
    /* below ~64K multiply-adds a fork-join costs more than it saves */
    if ((size_t)w->rows * w->cols * n < (64u << 10) || nth == 1) mm_work(&j, 0, 1);
    else shoal__pool_run(c->pool, mm_work, &j);
    return SHOAL_OK;
}

/* ---- elementwise */
/* Prefill-sized elementwise steps run over the threads (by tokens for rmsnorm, by 16-float
 * chunks otherwise), each element computed as on one thread. */
typedef struct ew_job {
    float *y;
    const float *x, *g;
    int n, dim;
    float eps;
} ew_job;

static void rmsnorm_rows(float *y, const float *x, const float *g, int t0, int t1, int dim, float eps) {
    for (int t = t0; t < t1; t++) {
        const float *xr = x + (size_t)t * dim;
        float *yr = y + (size_t)t * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float s = (float)(1.0 / sqrt(ss / dim + eps));
        for (int i = 0; i < dim; i++) yr[i] = xr[i] * s * g[i];
    }
}

static void rmsnorm_work(void *arg, int ith, int nth) {
    ew_job *j = arg;
    int per = (j->n + nth - 1) / nth, t0 = ith * per, t1 = t0 + per < j->n ? t0 + per : j->n;
    if (t0 < t1) rmsnorm_rows(j->y, j->x, j->g, t0, t1, j->dim, j->eps);
}

static void cpu_rmsnorm(void *vctx, float *y, const float *x, const float *g, int n, int dim, float eps) {
    cpu_ctx *c = vctx;
    int nth = shoal__pool_threads(c->pool);
    ew_job j = {y, x, g, n, dim, eps};
    if (nth == 1 || n < 2 * nth || (size_t)n * dim < (32u << 10)) rmsnorm_rows(y, x, g, 0, n, dim, eps);
    else shoal__pool_run(c->pool, rmsnorm_work, &j);
}

static void cpu_rope(void *vctx, float *x, int n, int n_heads, int hd, int stride, const float *cs, int interleaved) {
    int half = hd / 2;
    for (int t = 0; t < n; t++) {
        const float *c = cs + (size_t)t * hd;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * stride + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                float co = c[2 * i], si = c[2 * i + 1];
                int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
                float v0 = v[a], v1 = v[b];
                v[a] = v0 * co - v1 * si;
                v[b] = v0 * si + v1 * co;
            }
        }
    }
}

/* silu over threads for prefill-sized inputs (it is elementwise, on one thread it was ~8% of
 * a 1.1B prefill); chunks of whole 64-byte lines. */
typedef struct silu_job {
    cpu_ctx *c;
    float *g;
    const float *u;
    size_t n;
} silu_job;

static void silu_work(void *arg, int ith, int nth) {
    silu_job *j = arg;
    size_t per = (j->n + nth - 1) / nth;
    per = (per + 15) / 16 * 16;
    size_t a = (size_t)ith * per, b = a + per < j->n ? a + per : j->n;
    if (a < b) j->c->silu_mul(j->g + a, j->u + a, b - a);
}

static void cpu_silu_mul(void *vctx, float *g, const float *u, size_t n) {
    cpu_ctx *c = vctx;
    silu_job j = {c, g, u, n};
    if (n < (64u << 10) || shoal__pool_threads(c->pool) == 1) c->silu_mul(g, u, n);
    else shoal__pool_run(c->pool, silu_work, &j);
}

static void add_work(void *arg, int ith, int nth) {
    silu_job *j = arg; /* g += u over this thread's chunk */
    size_t per = (j->n + nth - 1) / nth;
    per = (per + 15) / 16 * 16;
    size_t a = (size_t)ith * per, b = a + per < j->n ? a + per : j->n;
    for (size_t i = a; i < b; i++) j->g[i] += j->u[i];
}

static void cpu_add(void *vctx, float *x, const float *y, size_t n) {
    cpu_ctx *c = vctx;
    silu_job j = {c, x, y, n};
    if (n < (64u << 10) || shoal__pool_threads(c->pool) == 1)
        for (size_t i = 0; i < n; i++) x[i] += y[i];
    else shoal__pool_run(c->pool, add_work, &j);
}

static void cpu_get_rows(void *vctx, const shoal__weight *w, const int32_t *ids, int n, float *out) {
    for (int t = 0; t < n; t++)
        shoal__dequantize_row(w->dtype, (const char *)w->data + (size_t)ids[t] * w->row_bytes,
                              out + (size_t)t * w->cols, w->cols);
}

/* ---- attention */
typedef struct att_job {
    cpu_ctx *c;
    float *out;
    const float *q, *k, *v;
    int pos0, n, n_heads, n_kv, hd;
} att_job;

static void att_work(void *arg, int ith, int nth) {
    att_job *j = arg;
    const cpu_ctx *k = j->c;
    float *sc = j->c->att + (size_t)ith * j->c->att_cap;
    int kvd = j->n_kv * j->hd, qd = j->n_heads * j->hd, group = j->n_heads / j->n_kv;
    float scale = 1.0f / sqrtf((float)j->hd);
    for (int task = ith; task < j->n * j->n_heads; task += nth) {
        int t = task / j->n_heads, h = task % j->n_heads, kvh = h / group;
        int len = j->pos0 + t + 1; /* causal: positions 0..pos0+t */
        const float *q = j->q + (size_t)t * qd + (size_t)h * j->hd;
        float mx = -INFINITY;
        for (int p = 0; p < len; p++) {
            sc[p] = k->dot_f32(q, j->k + (size_t)p * kvd + (size_t)kvh * j->hd, j->hd) * scale;
            if (sc[p] > mx) mx = sc[p];
        }
        float sum = 0;
        for (int p = 0; p < len; p++) sum += (sc[p] = expf(sc[p] - mx));
        float inv = 1.0f / sum;
        float *o = j->out + (size_t)t * qd + (size_t)h * j->hd;
        memset(o, 0, (size_t)j->hd * sizeof *o);
        for (int p = 0; p < len; p++)
            k->axpy(o, sc[p] * inv, j->v + (size_t)p * kvd + (size_t)kvh * j->hd, j->hd);
    }
}

static int cpu_attention(void *vctx, float *out, const float *q, const float *k, const float *v, int pos0,
                         int n, int n_heads, int n_kv_heads, int head_dim) {
    cpu_ctx *c = vctx;
    size_t need = (size_t)(pos0 + n);
    int nth = shoal__pool_threads(c->pool);
    if (need > c->att_cap) {
        size_t cap = need < 256 ? 256 : need * 2;
        free(c->att);
        c->att = cpu_alloc(c, cap * (size_t)nth * sizeof(float));
        c->att_cap = c->att ? cap : 0;
        if (!c->att) return SHOAL_ERR_NOMEM;
    }
    att_job j = {c, out, q, k, v, pos0, n, n_heads, n_kv_heads, head_dim};
    if ((size_t)n * n_heads * (pos0 + n) * head_dim < (32u << 10) || nth == 1) att_work(&j, 0, 1);
    else shoal__pool_run(c->pool, att_work, &j);
    return SHOAL_OK;
}

const shoal__backend_ops shoal__backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .silu_mul = cpu_silu_mul,
    .add = cpu_add,
    .get_rows = cpu_get_rows,
};
