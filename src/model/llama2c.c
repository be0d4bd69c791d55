/* llama2.c checkpoints (karpathy/llama2.c run.c and export.py).
 *
 * Legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means a separate classifier follows), then f32 tensors:
 * token_embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim], wk [L][kv_dim][dim],
 * wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hidden][dim],
 * w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim], two RoPE tables
 * [seq_len][head_size/2] (unused), [classifier [vocab][dim]].
 *
 * v1 ("ak42"): u32 magic 0x616b3432, i32 version 1, the same 7 int32, u8 shared_classifier,
 * zero padding to 256 bytes, then f32: rms_att [L][dim], rms_ffn [L][dim], rms_final [dim],
 * token_embedding, wq, wk, wv, wo, w1, w2, w3 (each [L][..] as above), [classifier].
 * Version 2 (llama2.c's own int8 groups) is not supported.
 *
 * Heads are dim / n_heads wide and RoPE rotates interleaved pairs (2i, 2i+1). The file size
 * must match the header exactly. */
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "model/source.h"

#define AK42 0x616b3432u

typedef struct walker {
    const uint8_t *p;
    uint64_t pos, size;
    shoal__source *s;
} walker;

/* Adds per-layer tensors blk.L.<name> of shape [rows][cols] (cols 0: a vector). */
static int add_layers(walker *w, const char *name, const char *l2c, int L, uint64_t rows, uint64_t cols) {
    uint64_t n = rows * (cols ? cols : 1), bytes = n * 4;
    for (int l = 0; l < L; l++) {
        char cn[64], fn[64];
        snprintf(cn, sizeof cn, "blk.%d.%s", l, name);
        snprintf(fn, sizeof fn, "%s[%d]", l2c, l);
        uint64_t shape[2] = {rows, cols};
        int rc = shoal__source_add(w->s, cn, fn, SHOAL_WTYPE_F32, cols ? 2 : 1, shape, w->p + w->pos, bytes);
        if (rc) return rc;
        w->pos += bytes;
    }
    return SHOAL_OK;
}

static int add_one(walker *w, const char *name, const char *l2c, uint64_t rows, uint64_t cols) {
    uint64_t shape[2] = {rows, cols};
    uint64_t bytes = rows * (cols ? cols : 1) * 4;
    int rc = shoal__source_add(w->s, name, l2c, SHOAL_WTYPE_F32, cols ? 2 : 1, shape, w->p + w->pos, bytes);
    w->pos += bytes;
    return rc;
}

int shoal__llama2c_parse(const void *data, size_t size, const char *name, shoal__source *s,
                         char *err, size_t errcap) {
    const uint8_t *p = data;
    int32_t h[7];
    int v1 = 0, shared;
    uint64_t off;
    if (size >= 8 && shoal__get_u32(p) == AK42) {
        int32_t version = (int32_t)shoal__get_u32(p + 4);
        if (version != 1) {
            shoal__errf(err, errcap, "%s: llama2.c version %d is not supported (legacy and version 1 are)", name, version);
            return SHOAL_ERR_UNSUPPORTED;
        }
        if (size < 256) {
            shoal__errf(err, errcap, "%s: truncated: %zu bytes, the v1 header is 256", name, size);
            return SHOAL_ERR_FORMAT;
        }
        for (int i = 0; i < 7; i++) h[i] = (int32_t)shoal__get_u32(p + 8 + 4 * i);
        shared = p[36] != 0;
        v1 = 1;
        off = 256;
    } else {
        if (size < 28) {
            shoal__errf(err, errcap, "%s: truncated: %zu bytes, the llama2.c header is 28", name, size);
            return SHOAL_ERR_FORMAT;
        }
        for (int i = 0; i < 7; i++) h[i] = (int32_t)shoal__get_u32(p + 4 * i);
        shared = h[5] > 0;
        if (h[5] < 0) h[5] = h[5] == INT32_MIN ? 0 : -h[5];
        off = 28;
    }
    shoal_model_config *c = &s->cfg;
    memset(c, 0, sizeof *c);
    c->arch = SHOAL_ARCH_LLAMA;
    c->format = SHOAL_FORMAT_LLAMA2C;
    c->dim = h[0], c->hidden_dim = h[1], c->n_layers = h[2], c->n_heads = h[3];
    c->n_kv_heads = h[4], c->vocab_size = h[5], c->max_seq = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_interleaved = 1;
    c->tied_classifier = shared;
    c->bos_id = 1; /* llama2.c's sentencepiece convention */
    c->eos_id = 2;
    if (c->vocab_size < 3) c->bos_id = c->eos_id = -1;
    int rc = shoal__config_check(c, name, err, errcap);
    if (rc) return rc;
    if (c->head_dim * c->n_heads != c->dim) {
        shoal__errf(err, errcap, "%s: header dim %d is not a multiple of n_heads %d", name, c->dim, c->n_heads);
        return SHOAL_ERR_FORMAT;
    }
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, V = (uint64_t)c->vocab_size;
    uint64_t floats = V * D + L * (2 * D + 2 * D * D + 2 * KV * D + 3 * H * D) + D;
    if (!v1) floats += (uint64_t)c->max_seq * (uint64_t)c->head_dim; /* two tables of head_dim/2 */
    if (!shared) floats += V * D;
    uint64_t want = off + floats * 4;
    if (want != size) {
        shoal__errf(err, errcap, "%s: file has %zu bytes but the header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d%s) needs %llu",
                    name, size, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                    c->vocab_size, c->max_seq, shared ? "" : ", separate classifier", (unsigned long long)want);
        return SHOAL_ERR_FORMAT;
    }
    int Li = c->n_layers;
    walker w = {p, off, size, s};
    if (v1) {
        if ((rc = add_layers(&w, "attn_norm.weight", "rms_att_weight", Li, D, 0)) ||
            (rc = add_layers(&w, "ffn_norm.weight", "rms_ffn_weight", Li, D, 0)) ||
            (rc = add_one(&w, "output_norm.weight", "rms_final_weight", D, 0)) ||
            (rc = add_one(&w, "token_embd.weight", "token_embedding_table", V, D)))
            return rc;
    } else {
        if ((rc = add_one(&w, "token_embd.weight", "token_embedding_table", V, D)) ||
            (rc = add_layers(&w, "attn_norm.weight", "rms_att_weight", Li, D, 0)))
            return rc;
    }
    if ((rc = add_layers(&w, "attn_q.weight", "wq", Li, D, D)) ||
        (rc = add_layers(&w, "attn_k.weight", "wk", Li, KV, D)) ||
        (rc = add_layers(&w, "attn_v.weight", "wv", Li, KV, D)) ||
        (rc = add_layers(&w, "attn_output.weight", "wo", Li, D, D)))
        return rc;
    if (!v1 && (rc = add_layers(&w, "ffn_norm.weight", "rms_ffn_weight", Li, D, 0))) return rc;
    if ((rc = add_layers(&w, "ffn_gate.weight", "w1", Li, H, D)) ||
        (rc = add_layers(&w, "ffn_down.weight", "w2", Li, D, H)) ||
        (rc = add_layers(&w, "ffn_up.weight", "w3", Li, H, D)))
        return rc;
    if (!v1) {
        if ((rc = add_one(&w, "output_norm.weight", "rms_final_weight", D, 0))) return rc;
        w.pos += (uint64_t)c->max_seq * (uint64_t)c->head_dim * 4;
    }
    if (!shared && (rc = add_one(&w, "output.weight", "wcls", V, D))) return rc;
    return SHOAL_OK;
}

int shoal__read_llama2c(const char *path, shoal__source *s, char *err, size_t errcap) {
    shoal__mapfile m;
    int rc = shoal__mapfile_open(path, &m, err, errcap);
    if (rc) return rc;
    if ((rc = shoal__source_add_map(s, &m))) {
        shoal__mapfile_close(&m);
        return rc;
    }
    return shoal__llama2c_parse(m.data, m.size, path, s, err, errcap);
}
