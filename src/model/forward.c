/* The transformer forward pass over the backend interface: embed, layers [first, last) with
 * the KV cache, and the head. Shapes, for a chunk of n tokens (n <= SHOAL__CHUNK):
 *   x [n][dim] -> rmsnorm -> q [n][n_heads*hd], k/v rows [n][n_kv*hd] written straight into
 *   the cache at positions pos..pos+n-1 -> (Qwen3: per-head RMSNorm of q and k) -> RoPE ->
 *   attention [n][n_heads*hd] -> wo -> x += ; rmsnorm -> gate, up [n][hidden] ->
 *   silu(gate)*up -> down -> x += */
#include <math.h>
#include <string.h>

#include "common/common.h"
#include "model/model_int.h"

static void rope_table(const shoal_model *m, int pos, int n) {
    int half = m->cfg.head_dim / 2;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)(pos + t) * m->inv_freq[i];
            m->cs[(size_t)t * 2 * half + 2 * i] = (float)cos(a);
            m->cs[(size_t)t * 2 * half + 2 * i + 1] = (float)sin(a);
        }
}

static int layer_chunk(shoal_model *m, shoal_kv *kv, int li, int pos, int n, float *x) {
    const shoal_model_config *c = &m->cfg;
    const shoal__backend_ops *be = m->be;
    void *b = m->bctx;
    const shoal__layer *L = &m->layers[li];
    int D = c->dim, hd = c->head_dim, QD = c->n_heads * hd, KVD = kv->kv_dim, H = c->hidden_dim;
    size_t lo = (size_t)li * kv->max_seq * KVD;
    float *kc = kv->k + lo, *vc = kv->v + lo;
    float *kn = kc + (size_t)pos * KVD, *vn = vc + (size_t)pos * KVD;
    int rc;

    be->rmsnorm(b, m->xb, x, L->attn_norm, n, D, c->norm_eps);
    if ((rc = be->matmul(b, &L->wq, m->xb, n, m->q)) || (rc = be->matmul(b, &L->wk, m->xb, n, kn)) ||
        (rc = be->matmul(b, &L->wv, m->xb, n, vn)))
        return rc;
    if (c->qk_norm) {
        be->rmsnorm(b, m->q, m->q, L->q_norm, n * c->n_heads, hd, c->norm_eps);
        be->rmsnorm(b, kn, kn, L->k_norm, n * c->n_kv_heads, hd, c->norm_eps);
    }
    be->rope(b, m->q, n, c->n_heads, hd, QD, m->cs, c->rope_interleaved);
    be->rope(b, kn, n, c->n_kv_heads, hd, KVD, m->cs, c->rope_interleaved);
    if ((rc = be->attention(b, m->att, m->q, kc, vc, pos, n, c->n_heads, c->n_kv_heads, hd))) return rc;
    if ((rc = be->matmul(b, &L->wo, m->att, n, m->xb2))) return rc;
    be->add(b, x, m->xb2, (size_t)n * D);

    be->rmsnorm(b, m->xb, x, L->ffn_norm, n, D, c->norm_eps);
    if ((rc = be->matmul(b, &L->w1, m->xb, n, m->hb)) || (rc = be->matmul(b, &L->w3, m->xb, n, m->hb2)))
        return rc;
    be->silu_mul(b, m->hb, m->hb2, (size_t)n * H);
    if ((rc = be->matmul(b, &L->w2, m->hb, n, m->xb2))) return rc;
    be->add(b, x, m->xb2, (size_t)n * D);
    return SHOAL_OK;
}

int shoal_model_forward_layers(shoal_model *m, shoal_kv *kv, int pos, int n, float *x) {
    if (!m || !kv || !x || n < 0 || pos < 0 || kv->m != m) return SHOAL_ERR_INVALID;
    if ((long long)pos + n > kv->max_seq) {
        shoal__errf(m->err, sizeof m->err, "positions %d..%d exceed the KV cache's %d", pos, pos + n - 1, kv->max_seq);
        return SHOAL_ERR_INVALID;
    }
    for (int t0 = 0; t0 < n; t0 += SHOAL__CHUNK) {
        int nc = n - t0 < SHOAL__CHUNK ? n - t0 : SHOAL__CHUNK;
        float *xc = x + (size_t)t0 * m->cfg.dim;
        rope_table(m, pos + t0, nc);
        for (int l = 0; l < m->last - m->first; l++) {
            int rc = layer_chunk(m, kv, l, pos + t0, nc, xc);
            if (rc) {
                shoal__errf(m->err, sizeof m->err, "layer %d: %s", m->first + l, shoal_status_str(rc));
                return rc;
            }
        }
    }
    return SHOAL_OK;
}

int shoal_model_embed(shoal_model *m, const int32_t *ids, int n, float *x) {
    if (!m || (!ids && n) || n < 0 || !x) return SHOAL_ERR_INVALID;
    if (!m->has_embed) {
        shoal__errf(m->err, sizeof m->err, "this handle was opened without the token embedding");
        return SHOAL_ERR_INVALID;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            shoal__errf(m->err, sizeof m->err, "token id %d at %d is outside the vocabulary (%d)", ids[i], i,
                        m->cfg.vocab_size);
            return SHOAL_ERR_INVALID;
        }
    m->be->get_rows(m->bctx, &m->embed, ids, n, x);
    return SHOAL_OK;
}

int shoal_model_head(shoal_model *m, const float *x, int n, float *logits) {
    if (!m || !x || !logits || n < 0) return SHOAL_ERR_INVALID;
    if (!m->has_head) {
        shoal__errf(m->err, sizeof m->err, "this handle was opened without the final norm and classifier");
        return SHOAL_ERR_INVALID;
    }
    for (int t0 = 0; t0 < n; t0 += SHOAL__CHUNK) {
        int nc = n - t0 < SHOAL__CHUNK ? n - t0 : SHOAL__CHUNK;
        m->be->rmsnorm(m->bctx, m->xb, x + (size_t)t0 * m->cfg.dim, m->out_norm, nc, m->cfg.dim, m->cfg.norm_eps);
        int rc = m->be->matmul(m->bctx, &m->output, m->xb, nc, logits + (size_t)t0 * m->cfg.vocab_size);
        if (rc) return rc;
    }
    return SHOAL_OK;
}

int shoal_model_forward(shoal_model *m, shoal_kv *kv, const int32_t *ids, int n, int pos, float *logits,
                        int all_logits) {
    if (!m || n < 1) return SHOAL_ERR_INVALID;
    if (m->first != 0 || m->last != m->cfg.n_layers || !m->has_embed || !m->has_head) {
        shoal__errf(m->err, sizeof m->err, "shoal_model_forward needs a handle holding the whole model");
        return SHOAL_ERR_INVALID;
    }
    float *x = m->be->alloc(m->bctx, (size_t)n * m->cfg.dim * sizeof(float));
    if (!x) return SHOAL_ERR_NOMEM;
    int rc = shoal_model_embed(m, ids, n, x);
    if (!rc) rc = shoal_model_forward_layers(m, kv, pos, n, x);
    if (!rc) rc = all_logits ? shoal_model_head(m, x, n, logits)
                             : shoal_model_head(m, x + (size_t)(n - 1) * m->cfg.dim, 1, logits);
    m->be->free(m->bctx, x);
    return rc;
}
