/* Public model handle: open/free, config and tensor listing, KV caches (see shoal/model.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "model/model_int.h"

static int default_threads(void) {
    long long t = 0;
    char e[128];
    if (shoal__setting_int("threads", &t, e, sizeof e) == SHOAL_OK && t > 0) return t > 256 ? 256 : (int)t;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int shoal_model_open(const char *path, const shoal_model_load_opts *opts, shoal_model **out, char *err,
                     size_t errcap) {
    char dummy[8];
    if (!err || !errcap) err = dummy, errcap = sizeof dummy;
    err[0] = 0;
    if (!out) return SHOAL_ERR_INVALID;
    *out = NULL;
    if (!path) {
        shoal__errf(err, errcap, "no model path");
        return SHOAL_ERR_INVALID;
    }
    shoal_model_load_opts o = SHOAL_MODEL_LOAD_OPTS_INIT;
    if (opts) {
        if (opts->size < sizeof o) {
            shoal__errf(err, errcap, "shoal_model_load_opts.size is too small");
            return SHOAL_ERR_INVALID;
        }
        o = *opts;
    }
    shoal_model *m = calloc(1, sizeof *m);
    if (!m) return SHOAL_ERR_NOMEM;
    m->src.path = strdup(path);
    m->be = &shoal__backend_cpu;
    m->threads = o.threads > 0 ? o.threads : default_threads();
    int rc = m->src.path ? m->be->create(m->threads, &m->bctx, err, errcap) : SHOAL_ERR_NOMEM;
    if (!rc) rc = shoal__model_load(m, &o, err, errcap);
    if (rc) {
        if (!err[0]) shoal__errf(err, errcap, "%s: %s", path, shoal_status_str(rc));
        shoal_model_free(m);
        return rc;
    }
    *out = m;
    return SHOAL_OK;
}

void shoal_model_free(shoal_model *m) {
    if (!m) return;
    if (m->layers)
        for (int l = 0; l < m->last - m->first; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            free(m->layers[l].q_norm);
            free(m->layers[l].k_norm);
        }
    free(m->layers);
    free(m->out_norm);
    free(m->inv_freq);
    if (m->bctx) {
        float *bufs[] = {m->xb, m->xb2, m->q, m->att, m->hb, m->hb2, m->cs};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) m->be->free(m->bctx, bufs[i]);
        m->be->destroy(m->bctx);
    }
    shoal__source_free(&m->src);
    free(m);
}

const shoal_model_config *shoal_model_get_config(const shoal_model *m) { return m ? &m->cfg : NULL; }
const char *shoal_model_last_error(const shoal_model *m) { return m ? m->err : ""; }
void shoal_model_layer_range(const shoal_model *m, int *first, int *last) {
    *first = m->first;
    *last = m->last;
}
int shoal_model_threads(const shoal_model *m) { return m->threads; }
const char *shoal_model_backend_name(const shoal_model *m) { return m->be->describe(m->bctx); }

size_t shoal_model_tensor_count(const shoal_model *m) { return m ? m->src.n : 0; }

int shoal_model_tensor_info(const shoal_model *m, size_t i, shoal_tensor_info *info) {
    if (!m || !info || i >= m->src.n) return SHOAL_ERR_INVALID;
    const shoal__tensor *t = &m->src.tensors[i];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->file_name = t->file_name;
    info->dtype = t->dtype;
    info->n_dims = t->n_dims;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->n_elements = t->n_elements;
    info->nbytes = t->nbytes;
    return SHOAL_OK;
}

int shoal_kv_create(const shoal_model *m, int max_seq, shoal_kv **out) {
    if (!m || !out) return SHOAL_ERR_INVALID;
    *out = NULL;
    if (max_seq <= 0) max_seq = m->cfg.max_seq;
    if (max_seq > (1 << 22)) return SHOAL_ERR_INVALID;
    shoal_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return SHOAL_ERR_NOMEM;
    kv->m = m;
    kv->first = m->first;
    kv->last = m->last;
    kv->max_seq = max_seq;
    kv->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    size_t n = (size_t)(m->last - m->first) * (size_t)max_seq * (size_t)kv->kv_dim * sizeof(float);
    kv->k = m->be->alloc(m->bctx, n);
    kv->v = m->be->alloc(m->bctx, n);
    if (!kv->k || !kv->v) {
        shoal_kv_free(kv);
        return SHOAL_ERR_NOMEM;
    }
    *out = kv;
    return SHOAL_OK;
}

void shoal_kv_free(shoal_kv *kv) {
    if (!kv) return;
    kv->m->be->free(kv->m->bctx, kv->k);
    kv->m->be->free(kv->m->bctx, kv->v);
    free(kv);
}

int shoal_kv_max_seq(const shoal_kv *kv) { return kv ? kv->max_seq : 0; }
