/* GGUF v3 writer for random-weight models: llama.cpp's metadata keys, tensors in the chosen
 * dtype (norm vectors stay F32, as llama.cpp's quantizer leaves them), 32-byte alignment.
 * Llama q/k rows are permuted for interleaved RoPE as convert_hf_to_gguf.py does; Qwen3 is
 * written unpermuted (llama.cpp runs it rotate-half). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/quant.h"
#include "model/write/genmodel.h"

#define ALIGN 32

static void w32(FILE *f, uint32_t v) {
    uint8_t b[4];
    shoal__put_u32(b, v);
    fwrite(b, 1, 4, f);
}
static void w64(FILE *f, uint64_t v) {
    uint8_t b[8];
    shoal__put_u64(b, v);
    fwrite(b, 1, 8, f);
}
static void wstr(FILE *f, const char *s) {
    w64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}
static void kv_u32(FILE *f, const char *k, uint32_t v) { wstr(f, k), w32(f, 4), w32(f, v); }
static void kv_f32(FILE *f, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    wstr(f, k), w32(f, 6), w32(f, u);
}
static void kv_str(FILE *f, const char *k, const char *v) { wstr(f, k), w32(f, 8), wstr(f, v); }

static int tensor_dtype(const shoal_genmodel_opts *o, const shoal__gen_tensor *t) {
    return t->is_norm ? SHOAL_WTYPE_F32 : o->dtype;
}

int shoal__write_gguf(const shoal_genmodel_opts *o, const char *path, char *err, size_t errcap) {
    int cap = shoal__gen_tensor_cap(o), rc = SHOAL_ERR_IO;
    shoal__gen_tensor *t = calloc((size_t)cap, sizeof *t);
    float *row = NULL;
    void *q = NULL;
    FILE *f = NULL;
    if (!t) return SHOAL_ERR_NOMEM;
    int n = shoal__gen_tensors(o, t, cap, err, errcap);
    int maxc = o->dim > o->hidden_dim ? o->dim : o->hidden_dim;
    if (o->n_heads * o->head_dim > maxc) maxc = o->n_heads * o->head_dim;
    if (o->vocab_size > maxc) maxc = o->vocab_size;
    row = malloc((size_t)maxc * sizeof *row);
    q = malloc((size_t)maxc * sizeof(float));
    if (!row || !q) {
        rc = SHOAL_ERR_NOMEM;
        goto done;
    }
    if (!(f = fopen(path, "wb"))) {
        shoal__errf(err, errcap, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    const char *arch = o->arch == SHOAL_ARCH_QWEN3 ? "qwen3" : "llama";
    char k[96];
    w32(f, 0x46554747u);
    w32(f, 3);
    w64(f, (uint64_t)n);
    w64(f, 15);
    kv_str(f, "general.architecture", arch);
    kv_str(f, "general.name", "shoal genmodel random weights");
    kv_u32(f, "general.alignment", ALIGN);
    kv_u32(f, "general.file_type", (uint32_t)o->dtype);
#define KVU(key, v) snprintf(k, sizeof k, "%s." key, arch), kv_u32(f, k, (uint32_t)(v))
    KVU("context_length", o->max_seq);
    KVU("embedding_length", o->dim);
    KVU("block_count", o->n_layers);
    KVU("feed_forward_length", o->hidden_dim);
    KVU("attention.head_count", o->n_heads);
    KVU("attention.head_count_kv", o->n_kv_heads);
    KVU("attention.key_length", o->head_dim);
    KVU("attention.value_length", o->head_dim);
    KVU("vocab_size", o->vocab_size);
#undef KVU
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    kv_f32(f, k, 1e-5f);
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    kv_f32(f, k, o->rope_theta);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int dt = tensor_dtype(o, &t[i]);
        wstr(f, t[i].name);
        if (t[i].cols) {
            w32(f, 2);
            w64(f, (uint64_t)t[i].cols);
            w64(f, (uint64_t)t[i].rows);
        } else {
            w32(f, 1);
            w64(f, (uint64_t)t[i].rows);
        }
        w32(f, (uint32_t)dt);
        w64(f, off);
        uint64_t bytes = t[i].cols ? shoal__dtype_bytes(dt, (uint64_t)t[i].cols) * (uint64_t)t[i].rows
                                   : shoal__dtype_bytes(dt, (uint64_t)t[i].rows);
        off += (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    long pos = ftell(f);
    static const char zeros[ALIGN];
    fwrite(zeros, 1, (size_t)((ALIGN - pos % ALIGN) % ALIGN), f);
    int interleaved = o->arch == SHOAL_ARCH_LLAMA;
    for (int i = 0; i < n; i++) {
        int dt = tensor_dtype(o, &t[i]);
        int rows = t[i].cols ? t[i].rows : 1, cols = t[i].cols ? t[i].cols : t[i].rows;
        uint64_t bytes = 0;
        for (int r = 0; r < rows; r++) {
            shoal__gen_row(o, &t[i], r, interleaved, row);
            size_t b = shoal__quantize_row(dt, row, q, cols);
            fwrite(q, 1, b, f);
            bytes += b;
        }
        fwrite(zeros, 1, (size_t)((ALIGN - bytes % ALIGN) % ALIGN), f);
    }
    if (ferror(f)) {
        shoal__errf(err, errcap, "%s: write failed", path);
        goto done;
    }
    rc = SHOAL_OK;
done:
    if (f && fclose(f) && rc == SHOAL_OK) {
        shoal__errf(err, errcap, "%s: write failed: %s", path, strerror(errno));
        rc = SHOAL_ERR_IO;
    }
    free(t);
    free(row);
    free(q);
    return rc;
}
