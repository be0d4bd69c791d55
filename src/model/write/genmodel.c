/* Random-weight models: tensor list, deterministic rows, and shoal_model_generate dispatch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/source.h"
#include "model/write/genmodel.h"

static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int shoal__gen_check(const shoal_genmodel_opts *o, char *err, size_t errcap) {
    if (!o || o->size < sizeof *o) {
        shoal__errf(err, errcap, "shoal_genmodel_opts.size is too small");
        return SHOAL_ERR_INVALID;
    }
    shoal_model_config c = {0};
    c.arch = o->arch;
    c.dim = o->dim, c.hidden_dim = o->hidden_dim, c.n_layers = o->n_layers, c.n_heads = o->n_heads;
    c.n_kv_heads = o->n_kv_heads, c.head_dim = o->head_dim, c.vocab_size = o->vocab_size, c.max_seq = o->max_seq;
    c.norm_eps = 1e-5f, c.rope_theta = o->rope_theta, c.bos_id = -1, c.eos_id = -1;
    int rc = shoal__config_check(&c, "genmodel", err, errcap);
    if (rc) return rc;
    if (o->arch != SHOAL_ARCH_LLAMA && o->arch != SHOAL_ARCH_QWEN3) {
        shoal__errf(err, errcap, "genmodel: unknown architecture %d", o->arch);
        return SHOAL_ERR_INVALID;
    }
    if (o->format == SHOAL_FORMAT_LLAMA2C &&
        (o->arch != SHOAL_ARCH_LLAMA || o->head_dim * o->n_heads != o->dim || o->dtype != SHOAL_WTYPE_F32)) {
        shoal__errf(err, errcap, "genmodel: llama2.c files hold f32 Llama models with head_dim = dim / n_heads");
        return SHOAL_ERR_INVALID;
    }
    if (o->format == SHOAL_FORMAT_HF && o->dtype != SHOAL_WTYPE_F32 && o->dtype != SHOAL_WTYPE_BF16 &&
        o->dtype != SHOAL_WTYPE_F16) {
        shoal__errf(err, errcap, "genmodel: HF safetensors are written as F32, F16 or BF16");
        return SHOAL_ERR_INVALID;
    }
    const shoal__dtype_info *d = shoal__dtype(o->dtype);
    if (!d || !d->compute) {
        shoal__errf(err, errcap, "genmodel: unsupported dtype %d", o->dtype);
        return SHOAL_ERR_INVALID;
    }
    int qd = o->n_heads * o->head_dim;
    if (o->dim % (int)d->block || o->hidden_dim % (int)d->block || qd % (int)d->block) {
        shoal__errf(err, errcap, "genmodel: %s needs dim, hidden_dim and n_heads*head_dim to be multiples of %u",
                    d->name, d->block);
        return SHOAL_ERR_INVALID;
    }
    return SHOAL_OK;
}

int shoal__gen_tensor_cap(const shoal_genmodel_opts *o) { return 3 + 11 * o->n_layers; }

static void add(shoal__gen_tensor *t, int *n, const char *name, const char *hf, int rows, int cols, int layer,
                int heads, int is_norm) {
    shoal__gen_tensor *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    snprintf(x->hf, sizeof x->hf, "%s", hf);
    x->rows = rows, x->cols = cols, x->layer = layer, x->heads = heads, x->is_norm = is_norm;
}

int shoal__gen_tensors(const shoal_genmodel_opts *o, shoal__gen_tensor *t, int cap, char *err, size_t errcap) {
    int n = 0, D = o->dim, H = o->hidden_dim, QD = o->n_heads * o->head_dim, KVD = o->n_kv_heads * o->head_dim;
    if (cap < shoal__gen_tensor_cap(o)) return -1;
    add(t, &n, "token_embd.weight", "model.embed_tokens.weight", o->vocab_size, D, -1, 0, 0);
    for (int l = 0; l < o->n_layers; l++) {
        char a[64], b[96];
#define L(gg, hfn, r, c, heads, norm)                                   \
    snprintf(a, sizeof a, "blk.%d.%s", l, gg);                          \
    snprintf(b, sizeof b, "model.layers.%d.%s", l, hfn);                \
    add(t, &n, a, b, r, c, l, heads, norm);
        L("attn_norm.weight", "input_layernorm.weight", D, 0, 0, 1)
        L("attn_q.weight", "self_attn.q_proj.weight", QD, D, o->n_heads, 0)
        L("attn_k.weight", "self_attn.k_proj.weight", KVD, D, o->n_kv_heads, 0)
        L("attn_v.weight", "self_attn.v_proj.weight", KVD, D, 0, 0)
        L("attn_output.weight", "self_attn.o_proj.weight", D, QD, 0, 0)
        if (o->arch == SHOAL_ARCH_QWEN3) {
            L("attn_q_norm.weight", "self_attn.q_norm.weight", o->head_dim, 0, 0, 1)
            L("attn_k_norm.weight", "self_attn.k_norm.weight", o->head_dim, 0, 0, 1)
        }
        L("ffn_norm.weight", "post_attention_layernorm.weight", D, 0, 0, 1)
        L("ffn_gate.weight", "mlp.gate_proj.weight", H, D, 0, 0)
        L("ffn_up.weight", "mlp.up_proj.weight", H, D, 0, 0)
        L("ffn_down.weight", "mlp.down_proj.weight", D, H, 0, 0)
#undef L
    }
    add(t, &n, "output_norm.weight", "model.norm.weight", D, 0, -1, 0, 1);
    if (!o->tied_classifier) add(t, &n, "output.weight", "lm_head.weight", o->vocab_size, D, -1, 0, 0);
    return n;
}

void shoal__gen_row(const shoal_genmodel_opts *o, const shoal__gen_tensor *t, int r, int interleaved, float *out) {
    int cols = t->cols ? t->cols : t->rows;
    int src = r;
    if (interleaved && t->heads && o->arch == SHOAL_ARCH_LLAMA) {
        /* file row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i */
        int hd = o->head_dim, h = r / hd, w = r % hd;
        src = h * hd + (w % 2) * (hd / 2) + w / 2;
    }
    uint64_t s = mix(o->seed ^ name_hash(t->name) ^ mix((uint64_t)src + 1));
    /* uniform in [-a, a]: std a/sqrt(3). Matrices: std 1/sqrt(cols) keeps activations O(1);
     * embeddings std ~0.6; norm weights 1 +- 0.1. */
    float a = t->is_norm ? 0.1f : strcmp(t->name, "token_embd.weight") == 0 ? 1.0f : sqrtf(3.0f / (float)cols);
    for (int i = 0; i < cols; i++) {
        s = mix(s);
        float u = (float)(s >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
        out[i] = t->is_norm ? 1.0f + a * u : a * u;
    }
}

int shoal_model_generate(const shoal_genmodel_opts *o, const char *path, char *err, size_t errcap) {
    char dummy[8];
    if (!err || !errcap) err = dummy, errcap = sizeof dummy;
    err[0] = 0;
    if (!path) return SHOAL_ERR_INVALID;
    int rc = shoal__gen_check(o, err, errcap);
    if (rc) return rc;
    switch (o->format) {
    case SHOAL_FORMAT_GGUF: return shoal__write_gguf(o, path, err, errcap);
    case SHOAL_FORMAT_HF: return shoal__write_hf(o, path, err, errcap);
    case SHOAL_FORMAT_LLAMA2C: return shoal__write_llama2c(o, path, err, errcap);
    default: shoal__errf(err, errcap, "genmodel: unknown format %d", o->format); return SHOAL_ERR_INVALID;
    }
}
