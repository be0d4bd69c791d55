/* llama2.c checkpoint writer (legacy or v1 "ak42" header; see llama2c.c for the layouts).
 * q/k rows are permuted for llama2.c's interleaved RoPE. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/write/genmodel.h"

static const shoal__gen_tensor *find(const shoal__gen_tensor *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

static void put(FILE *f, const shoal_genmodel_opts *o, const shoal__gen_tensor *t, float *row) {
    int rows = t->cols ? t->rows : 1, cols = t->cols ? t->cols : t->rows;
    for (int r = 0; r < rows; r++) {
        shoal__gen_row(o, t, r, 1, row);
        fwrite(row, 4, (size_t)cols, f);
    }
}

static void put_layers(FILE *f, const shoal_genmodel_opts *o, const shoal__gen_tensor *t, int n,
                       const char *suffix, float *row) {
    for (int l = 0; l < o->n_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s", l, suffix);
        put(f, o, find(t, n, name), row);
    }
}

int shoal__write_llama2c(const shoal_genmodel_opts *o, const char *path, char *err, size_t errcap) {
    int cap = shoal__gen_tensor_cap(o), rc = SHOAL_ERR_IO;
    shoal__gen_tensor *t = calloc((size_t)cap, sizeof *t);
    int maxc = o->dim > o->hidden_dim ? o->dim : o->hidden_dim;
    float *row = malloc((size_t)(maxc > o->vocab_size ? maxc : o->vocab_size) * 4);
    FILE *f = NULL;
    if (!t || !row) {
        rc = SHOAL_ERR_NOMEM;
        goto done;
    }
    int n = shoal__gen_tensors(o, t, cap, err, errcap);
    if (!(f = fopen(path, "wb"))) {
        shoal__errf(err, errcap, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    int32_t h[7] = {o->dim, o->hidden_dim, o->n_layers, o->n_heads, o->n_kv_heads, o->vocab_size, o->max_seq};
    if (o->llama2c_version == 1) {
        uint8_t hdr[256] = {0};
        shoal__put_u32(hdr, 0x616b3432u);
        shoal__put_u32(hdr + 4, 1);
        for (int i = 0; i < 7; i++) shoal__put_u32(hdr + 8 + 4 * i, (uint32_t)h[i]);
        hdr[36] = (uint8_t)(o->tied_classifier != 0);
        fwrite(hdr, 1, sizeof hdr, f);
        put_layers(f, o, t, n, "attn_norm.weight", row);
        put_layers(f, o, t, n, "ffn_norm.weight", row);
        put(f, o, find(t, n, "output_norm.weight"), row);
        put(f, o, find(t, n, "token_embd.weight"), row);
    } else {
        if (!o->tied_classifier) h[5] = -h[5];
        uint8_t hdr[28];
        for (int i = 0; i < 7; i++) shoal__put_u32(hdr + 4 * i, (uint32_t)h[i]);
        fwrite(hdr, 1, sizeof hdr, f);
        put(f, o, find(t, n, "token_embd.weight"), row);
        put_layers(f, o, t, n, "attn_norm.weight", row);
    }
    put_layers(f, o, t, n, "attn_q.weight", row);
    put_layers(f, o, t, n, "attn_k.weight", row);
    put_layers(f, o, t, n, "attn_v.weight", row);
    put_layers(f, o, t, n, "attn_output.weight", row);
    if (o->llama2c_version != 1) put_layers(f, o, t, n, "ffn_norm.weight", row);
    put_layers(f, o, t, n, "ffn_gate.weight", row);
    put_layers(f, o, t, n, "ffn_down.weight", row);
    put_layers(f, o, t, n, "ffn_up.weight", row);
    if (o->llama2c_version != 1) {
        put(f, o, find(t, n, "output_norm.weight"), row);
        /* the two unused RoPE tables [seq_len][head_dim/2] */
        memset(row, 0, (size_t)o->head_dim * 4);
        for (int p = 0; p < o->max_seq; p++) fwrite(row, 4, (size_t)o->head_dim, f);
    }
    if (!o->tied_classifier) put(f, o, find(t, n, "output.weight"), row);
    rc = ferror(f) ? SHOAL_ERR_IO : SHOAL_OK;
    if (rc) shoal__errf(err, errcap, "%s: write failed", path);
done:
    if (f && fclose(f) && rc == SHOAL_OK) rc = SHOAL_ERR_IO;
    free(t);
    free(row);
    return rc;
}
