/* The tensor table of a model's files and the config sanity checks (see source.h). */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/source.h"

int shoal__source_add(shoal__source *s, const char *name, const char *file_name, int dtype,
                      int n_dims, const uint64_t *shape, const void *data, uint64_t nbytes) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        shoal__tensor *t = realloc(s->tensors, nc * sizeof *t);
        if (!t) return SHOAL_ERR_NOMEM;
        s->tensors = t;
        s->cap = nc;
    }
    shoal__tensor *t = &s->tensors[s->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->file_name = strdup(file_name);
    if (!t->name || !t->file_name) {
        free(t->name);
        free(t->file_name);
        return SHOAL_ERR_NOMEM;
    }
    t->dtype = dtype;
    t->n_dims = n_dims;
    t->n_elements = 1;
    for (int i = 0; i < 4; i++) t->shape[i] = i < n_dims ? shape[i] : 1;
    for (int i = 0; i < n_dims; i++) t->n_elements *= shape[i];
    t->nbytes = nbytes;
    t->data = data;
    const shoal__dtype_info *d = shoal__dtype(dtype);
    size_t align = d && d->block == 1 ? d->type_size : 2;
    if (nbytes && ((uintptr_t)data % align)) {
        void **o = realloc(s->owned, (s->n_owned + 1) * sizeof *o);
        if (!o) return SHOAL_ERR_NOMEM;
        s->owned = o;
        void *copy = aligned_alloc(64, (nbytes + 63) / 64 * 64);
        if (!copy) return SHOAL_ERR_NOMEM;
        memcpy(copy, data, nbytes);
        s->owned[s->n_owned++] = copy;
        t->data = copy;
    }
    s->n++;
    return SHOAL_OK;
}

const shoal__tensor *shoal__source_find(const shoal__source *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->tensors[i].name, name) == 0) return &s->tensors[i];
    return NULL;
}

int shoal__source_add_map(shoal__source *s, const shoal__mapfile *m) {
    shoal__mapfile *n = realloc(s->maps, (s->n_maps + 1) * sizeof *n);
    if (!n) return SHOAL_ERR_NOMEM;
    s->maps = n;
    s->maps[s->n_maps++] = *m;
    return SHOAL_OK;
}

void shoal__source_free(shoal__source *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->tensors[i].name);
        free(s->tensors[i].file_name);
    }
    free(s->tensors);
    for (size_t i = 0; i < s->n_maps; i++) shoal__mapfile_close(&s->maps[i]);
    free(s->maps);
    for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    shoal__gguf_close(s->gguf);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static int range(const char *file, const char *field, long long v, long long lo, long long hi,
                 char *err, size_t errcap) {
    if (v >= lo && v <= hi) return 0;
    shoal__errf(err, errcap, "%s: %s = %lld is outside %lld..%lld", file, field, v, lo, hi);
    return -1;
}

int shoal__config_check(const shoal_model_config *c, const char *file, char *err, size_t errcap) {
    if (range(file, "dim", c->dim, 1, 1 << 16, err, errcap) ||
        range(file, "hidden_dim", c->hidden_dim, 1, 1 << 20, err, errcap) ||
        range(file, "n_layers", c->n_layers, 1, 1024, err, errcap) ||
        range(file, "n_heads", c->n_heads, 1, 1024, err, errcap) ||
        range(file, "n_kv_heads", c->n_kv_heads, 1, c->n_heads, err, errcap) ||
        range(file, "head_dim", c->head_dim, 2, 1024, err, errcap) ||
        range(file, "vocab_size", c->vocab_size, 1, 1 << 22, err, errcap) ||
        range(file, "max_seq", c->max_seq, 1, 1 << 22, err, errcap))
        return SHOAL_ERR_FORMAT;
    if (c->n_heads % c->n_kv_heads) {
        shoal__errf(err, errcap, "%s: n_heads %d is not a multiple of n_kv_heads %d", file,
                    c->n_heads, c->n_kv_heads);
        return SHOAL_ERR_FORMAT;
    }
    if (c->head_dim % 2) {
        shoal__errf(err, errcap, "%s: head_dim %d is odd (RoPE rotates pairs)", file, c->head_dim);
        return SHOAL_ERR_FORMAT;
    }
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) {
        shoal__errf(err, errcap, "%s: rms_norm_eps %g is not in (0, 1)", file, c->norm_eps);
        return SHOAL_ERR_FORMAT;
    }
    if (!(c->rope_theta > 1 && c->rope_theta < 1e12)) {
        shoal__errf(err, errcap, "%s: rope_theta %g is not in (1, 1e12)", file, c->rope_theta);
        return SHOAL_ERR_FORMAT;
    }
    if (c->rope_factor != 0 &&
        !(c->rope_factor >= 1 && c->rope_factor < 1e6 && c->rope_low_freq_factor > 0 &&
          c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_orig_max_pos > 0)) {
        shoal__errf(err, errcap, "%s: rope_scaling (llama3) factors are inconsistent", file);
        return SHOAL_ERR_FORMAT;
    }
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size) {
        shoal__errf(err, errcap, "%s: bos/eos token id is outside the vocabulary (%d)", file, c->vocab_size);
        return SHOAL_ERR_FORMAT;
    }
    return SHOAL_OK;
}
