/* GGUF model metadata -> config and tensor table (llama.cpp's key names:
 * general.architecture, <arch>.embedding_length, <arch>.block_count, ...).
 *
 * RoPE layout: llama.cpp's converter permutes the q/k rows of Llama models back to Meta's
 * interleaved layout and runs them with rope mode NORM (pairs 2i, 2i+1); Qwen3 is stored
 * unpermuted and runs with mode NEOX (rotate-half). We follow the same convention.
 * Llama-3 frequency scaling is baked into an optional rope_freqs.weight [head_dim/2] tensor
 * whose entries divide each frequency. */
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "model/source.h"

static int meta_int(shoal__gguf *g, const char *arch, const char *key, int required, int def,
                    int *out, char *err, size_t errcap) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    int rc = shoal__gguf_get_int(g, full, &v);
    if (rc == SHOAL_ERR_NOT_FOUND && !required) {
        *out = def;
        return 0;
    }
    if (rc || v < 0 || v > (1 << 30)) {
        shoal__errf(err, errcap, "%s: metadata '%s' is %s", shoal__gguf_path(g), full,
                    rc == SHOAL_ERR_NOT_FOUND ? "missing" : "not an integer in 0..2^30");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int meta_float(shoal__gguf *g, const char *arch, const char *key, double def, double *out,
                      char *err, size_t errcap) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = shoal__gguf_get_float(g, full, out);
    if (rc == SHOAL_ERR_NOT_FOUND) {
        *out = def;
        return 0;
    }
    if (rc) shoal__errf(err, errcap, "%s: metadata '%s' is not a number", shoal__gguf_path(g), full);
    return rc ? -1 : 0;
}

int shoal__gguf_to_source(shoal__gguf *g, shoal__source *s, char *err, size_t errcap) {
    s->gguf = g;
    const char *path = shoal__gguf_path(g);
    shoal_model_config *c = &s->cfg;
    memset(c, 0, sizeof *c);
    c->format = SHOAL_FORMAT_GGUF;
    const char *as;
    size_t alen;
    char arch[32];
    if (shoal__gguf_get_str(g, "general.architecture", &as, &alen) || alen >= sizeof arch) {
        shoal__errf(err, errcap, "%s: metadata 'general.architecture' is missing or not a short string", path);
        return SHOAL_ERR_FORMAT;
    }
    memcpy(arch, as, alen);
    arch[alen] = 0;
    if (strcmp(arch, "llama") == 0) c->arch = SHOAL_ARCH_LLAMA, c->rope_interleaved = 1;
    else if (strcmp(arch, "qwen3") == 0) c->arch = SHOAL_ARCH_QWEN3, c->rope_interleaved = 0, c->qk_norm = 1;
    else {
        shoal__errf(err, errcap, "%s: general.architecture '%s' is not supported (llama, qwen3 are)", path, arch);
        return SHOAL_ERR_UNSUPPORTED;
    }
    double eps, theta;
    if (meta_int(g, arch, "embedding_length", 1, 0, &c->dim, err, errcap) ||
        meta_int(g, arch, "feed_forward_length", 1, 0, &c->hidden_dim, err, errcap) ||
        meta_int(g, arch, "block_count", 1, 0, &c->n_layers, err, errcap) ||
        meta_int(g, arch, "attention.head_count", 1, 0, &c->n_heads, err, errcap) ||
        meta_int(g, arch, "attention.head_count_kv", 0, c->n_heads, &c->n_kv_heads, err, errcap) ||
        meta_int(g, arch, "attention.key_length", 0, c->n_heads ? c->dim / c->n_heads : 0, &c->head_dim, err, errcap) ||
        meta_int(g, arch, "context_length", 0, 2048, &c->max_seq, err, errcap) ||
        meta_int(g, arch, "vocab_size", 0, 0, &c->vocab_size, err, errcap) ||
        meta_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5, &eps, err, errcap) ||
        meta_float(g, arch, "rope.freq_base", 10000, &theta, err, errcap))
        return SHOAL_ERR_FORMAT;
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    int64_t id;
    c->bos_id = shoal__gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id) == 0 && id >= 0 && id < (1 << 30) ? (int)id : -1;
    c->eos_id = shoal__gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id) == 0 && id >= 0 && id < (1 << 30) ? (int)id : -1;

    for (size_t i = 0; i < shoal__gguf_tensor_count(g); i++) {
        shoal__gguf_tensor t;
        shoal__gguf_tensor_at(g, i, &t);
        uint64_t shape[4];
        for (int d = 0; d < t.n_dims; d++) shape[d] = t.ne[t.n_dims - 1 - d];
        int rc = shoal__source_add(s, t.name, t.name, t.type, t.n_dims, shape, t.data, t.nbytes);
        if (rc) return rc;
    }
    const shoal__tensor *emb = shoal__source_find(s, "token_embd.weight");
    if (!c->vocab_size) {
        int et;
        uint64_t n;
        if (emb) c->vocab_size = (int)(emb->shape[0] < (1u << 30) ? emb->shape[0] : 0);
        else if (!shoal__gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n) && n < (1u << 30))
            c->vocab_size = (int)n;
    }
    c->tied_classifier = !shoal__source_find(s, "output.weight");
    return shoal__config_check(c, path, err, errcap);
}

int shoal__read_gguf(const char *path, shoal__source *s, char *err, size_t errcap) {
    shoal__gguf *g;
    int rc = shoal__gguf_open(path, &g, err, errcap);
    if (rc) return rc;
    return shoal__gguf_to_source(g, s, err, errcap);
}
