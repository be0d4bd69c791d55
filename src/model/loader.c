/* Builds a shoal_model from a format reader's tensor table: picks the tensors of the requested
 * layers (plus embedding / final norm / classifier), checks each one's shape against the config
 * and its dtype against the backend, copies the small norm vectors to f32, and precomputes the
 * RoPE frequencies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/model_int.h"
#include "model/quant.h"

static int detect(const char *path, int *format, char *err, size_t errcap) {
    struct stat st;
    if (stat(path, &st) != 0) {
        shoal__errf(err, errcap, "%s: no such file or folder", path);
        return SHOAL_ERR_NOT_FOUND;
    }
    if (S_ISDIR(st.st_mode)) {
        *format = SHOAL_FORMAT_HF;
        return SHOAL_OK;
    }
    FILE *f = fopen(path, "rb");
    unsigned char magic[4] = {0};
    if (!f) {
        shoal__errf(err, errcap, "%s: cannot open", path);
        return SHOAL_ERR_IO;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    *format = got == 4 && memcmp(magic, "GGUF", 4) == 0 ? SHOAL_FORMAT_GGUF : SHOAL_FORMAT_LLAMA2C;
    return SHOAL_OK;
}

static int weight(shoal_model *m, const char *name, int rows, int cols, shoal__weight *w, char *err,
                  size_t errcap) {
    const shoal__tensor *t = shoal__source_find(&m->src, name);
    if (!t) {
        shoal__errf(err, errcap, "%s: tensor '%s' is missing", m->src.path, name);
        return SHOAL_ERR_FORMAT;
    }
    if (t->n_dims != 2 || t->shape[0] != (uint64_t)rows || t->shape[1] != (uint64_t)cols) {
        shoal__errf(err, errcap, "%s: tensor '%s' (%s) has shape [%llu, %llu] (%d dims), the config needs [%d, %d]",
                    m->src.path, name, t->file_name, (unsigned long long)t->shape[0],
                    (unsigned long long)t->shape[1], t->n_dims, rows, cols);
        return SHOAL_ERR_FORMAT;
    }
    if (!m->be->supports(m->bctx, t->dtype) || shoal__dtype_bytes(t->dtype, (uint64_t)cols) == UINT64_MAX) {
        shoal__errf(err, errcap, "%s: tensor '%s' has type %s, which the %s backend cannot multiply",
                    m->src.path, name, shoal_wtype_name(t->dtype), m->be->name);
        return SHOAL_ERR_UNSUPPORTED;
    }
    if (shoal__act_is_q8_cols(t->dtype, cols)) {
        shoal__errf(err, errcap, "%s: tensor '%s': %d columns is not a multiple of 32", m->src.path, name, cols);
        return SHOAL_ERR_UNSUPPORTED;
    }
    w->dtype = t->dtype;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)shoal__dtype_bytes(t->dtype, (uint64_t)cols);
    w->data = t->data;
    return SHOAL_OK;
}

/* A norm vector [n] of any float dtype -> malloc'd f32. */
static int vector(shoal_model *m, const char *name, int n, float **out, char *err, size_t errcap) {
    const shoal__tensor *t = shoal__source_find(&m->src, name);
    if (!t) {
        shoal__errf(err, errcap, "%s: tensor '%s' is missing", m->src.path, name);
        return SHOAL_ERR_FORMAT;
    }
    if (t->n_elements != (uint64_t)n || (t->n_dims != 1 && !(t->n_dims == 2 && t->shape[0] == 1))) {
        shoal__errf(err, errcap, "%s: tensor '%s' (%s) has %llu elements, the config needs a vector of %d",
                    m->src.path, name, t->file_name, (unsigned long long)t->n_elements, n);
        return SHOAL_ERR_FORMAT;
    }
    if (t->dtype != SHOAL_WTYPE_F32 && t->dtype != SHOAL_WTYPE_F16 && t->dtype != SHOAL_WTYPE_BF16) {
        shoal__errf(err, errcap, "%s: tensor '%s' has type %s; norm weights must be F32, F16 or BF16",
                    m->src.path, name, shoal_wtype_name(t->dtype));
        return SHOAL_ERR_UNSUPPORTED;
    }
    *out = malloc((size_t)n * sizeof(float));
    if (!*out) return SHOAL_ERR_NOMEM;
    shoal__dequantize_row(t->dtype, t->data, *out, n);
    return SHOAL_OK;
}

/* RoPE frequencies theta^(-2i/d), with Llama-3 scaling (as transformers'
 * _compute_llama3_parameters) or GGUF's rope_freqs.weight divisors. */
static int rope_freqs(shoal_model *m, char *err, size_t errcap) {
    const shoal_model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->inv_freq = malloc((size_t)half * sizeof(float));
    if (!m->inv_freq) return SHOAL_ERR_NOMEM;
    const shoal__tensor *ff = shoal__source_find(&m->src, "rope_freqs.weight");
    float *fac = NULL;
    if (ff) {
        int rc = vector(m, "rope_freqs.weight", half, &fac, err, errcap);
        if (rc) return rc;
    }
    for (int i = 0; i < half; i++) {
        double f = pow((double)c->rope_theta, -2.0 * i / c->head_dim);
        if (c->rope_factor > 0) {
            double lo_wl = c->rope_orig_max_pos / c->rope_low_freq_factor;
            double hi_wl = c->rope_orig_max_pos / c->rope_high_freq_factor;
            double wl = 2 * M_PI / f;
            if (wl > lo_wl) {
                f /= c->rope_factor;
            } else if (wl >= hi_wl) {
                double s = (c->rope_orig_max_pos / wl - c->rope_low_freq_factor) /
                           (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - s) * f / c->rope_factor + s * f;
            }
        }
        if (fac) f /= fac[i] != 0 ? fac[i] : 1;
        m->inv_freq[i] = (float)f;
    }
    free(fac);
    return SHOAL_OK;
}

int shoal__model_load(shoal_model *m, const shoal_model_load_opts *o, char *err, size_t errcap) {
    const char *path = m->src.path;
    int format, rc = detect(path, &format, err, errcap);
    if (rc) return rc;
    if (format == SHOAL_FORMAT_HF) rc = shoal__read_hf(path, &m->src, err, errcap);
    else if (format == SHOAL_FORMAT_GGUF) rc = shoal__read_gguf(path, &m->src, err, errcap);
    else rc = shoal__read_llama2c(path, &m->src, err, errcap);
    if (rc) return rc;
    m->cfg = m->src.cfg;
    shoal_model_config *c = &m->cfg;
    m->first = o->first_layer;
    m->last = o->last_layer < 0 ? c->n_layers : o->last_layer;
    if (m->first < 0 || m->last > c->n_layers || m->first > m->last) {
        shoal__errf(err, errcap, "%s: layer range [%d, %d) is outside the model's %d layers", path,
                    m->first, m->last, c->n_layers);
        return SHOAL_ERR_INVALID;
    }
    m->has_embed = o->embed;
    m->has_head = o->head;
    int D = c->dim, QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    m->layers = calloc((size_t)(m->last - m->first) + 1, sizeof *m->layers);
    if (!m->layers) return SHOAL_ERR_NOMEM;
    for (int l = m->first; l < m->last; l++) {
        shoal__layer *L = &m->layers[l - m->first];
        char n[14][64];
        const char *suf[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up",
                             "attn_norm", "ffn_norm", "attn_q_norm", "attn_k_norm"};
        for (int i = 0; i < 11; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, suf[i]);
        if ((rc = weight(m, n[0], QD, D, &L->wq, err, errcap)) ||
            (rc = weight(m, n[1], KVD, D, &L->wk, err, errcap)) ||
            (rc = weight(m, n[2], KVD, D, &L->wv, err, errcap)) ||
            (rc = weight(m, n[3], D, QD, &L->wo, err, errcap)) ||
            (rc = weight(m, n[4], H, D, &L->w1, err, errcap)) ||
            (rc = weight(m, n[5], D, H, &L->w2, err, errcap)) ||
            (rc = weight(m, n[6], H, D, &L->w3, err, errcap)) ||
            (rc = vector(m, n[7], D, &L->attn_norm, err, errcap)) ||
            (rc = vector(m, n[8], D, &L->ffn_norm, err, errcap)))
            return rc;
        if (c->qk_norm && ((rc = vector(m, n[9], c->head_dim, &L->q_norm, err, errcap)) ||
                           (rc = vector(m, n[10], c->head_dim, &L->k_norm, err, errcap))))
            return rc;
        if (l == m->first) c->weight_dtype = L->wq.dtype;
    }
    if (m->first == m->last) c->weight_dtype = -1;
    if (m->has_embed || (m->has_head && c->tied_classifier)) {
        const shoal__tensor *t = shoal__source_find(&m->src, "token_embd.weight");
        if (!t) {
            shoal__errf(err, errcap, "%s: tensor 'token_embd.weight' is missing", path);
            return SHOAL_ERR_FORMAT;
        }
        if (t->n_dims != 2 || t->shape[0] != (uint64_t)c->vocab_size || t->shape[1] != (uint64_t)D) {
            shoal__errf(err, errcap, "%s: tensor 'token_embd.weight' (%s) has shape [%llu, %llu], the config needs [%d, %d]",
                        path, t->file_name, (unsigned long long)t->shape[0], (unsigned long long)t->shape[1],
                        c->vocab_size, D);
            return SHOAL_ERR_FORMAT;
        }
        if (!m->be->supports(m->bctx, t->dtype)) {
            shoal__errf(err, errcap, "%s: tensor 'token_embd.weight' has unsupported type %s", path,
                        shoal_wtype_name(t->dtype));
            return SHOAL_ERR_UNSUPPORTED;
        }
        m->embed = (shoal__weight){t->dtype, c->vocab_size, D, (size_t)shoal__dtype_bytes(t->dtype, (uint64_t)D), t->data};
    }
    if (m->has_head) {
        if ((rc = vector(m, "output_norm.weight", D, &m->out_norm, err, errcap))) return rc;
        if (c->tied_classifier) m->output = m->embed;
        else if ((rc = weight(m, "output.weight", c->vocab_size, D, &m->output, err, errcap))) return rc;
    }
    if ((rc = rope_freqs(m, err, errcap))) return rc;
    size_t C = SHOAL__CHUNK;
    m->xb = m->be->alloc(m->bctx, C * D * 4);
    m->xb2 = m->be->alloc(m->bctx, C * D * 4);
    m->q = m->be->alloc(m->bctx, C * QD * 4);
    m->att = m->be->alloc(m->bctx, C * QD * 4);
    m->hb = m->be->alloc(m->bctx, C * H * 4);
    m->hb2 = m->be->alloc(m->bctx, C * H * 4);
    m->cs = m->be->alloc(m->bctx, C * c->head_dim * 4);
    if (!m->xb || !m->xb2 || !m->q || !m->att || !m->hb || !m->hb2 || !m->cs) {
        shoal__errf(err, errcap, "%s: out of memory for activations", path);
        return SHOAL_ERR_NOMEM;
    }
    return SHOAL_OK;
}
