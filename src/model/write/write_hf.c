/* Hugging Face folder writer for random-weight models: config.json (top-level rope_theta, as
 * most published checkpoints) and one model.safetensors, q/k rows in HF's rotate-half order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/quant.h"
#include "model/write/genmodel.h"

static const char *st_name(int dt) { return dt == SHOAL_WTYPE_BF16 ? "BF16" : dt == SHOAL_WTYPE_F16 ? "F16" : "F32"; }

int shoal__write_hf(const shoal_genmodel_opts *o, const char *dir, char *err, size_t errcap) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        shoal__errf(err, errcap, "%s: cannot create the folder: %s", dir, strerror(errno));
        return SHOAL_ERR_IO;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        shoal__errf(err, errcap, "%s: cannot create: %s", path, strerror(errno));
        return SHOAL_ERR_IO;
    }
    int q3 = o->arch == SHOAL_ARCH_QWEN3;
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"hidden_size\": %d,\n"
            "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": %.1f,\n"
            "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
            q3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM", q3 ? "qwen3" : "llama", o->dim, o->hidden_dim,
            o->n_layers, o->n_heads, o->n_kv_heads, o->head_dim, o->vocab_size, o->max_seq, o->rope_theta,
            o->tied_classifier ? "true" : "false",
            o->dtype == SHOAL_WTYPE_BF16 ? "bfloat16" : o->dtype == SHOAL_WTYPE_F16 ? "float16" : "float32");
    if (fclose(f)) return SHOAL_ERR_IO;

    int cap = shoal__gen_tensor_cap(o), rc = SHOAL_ERR_IO;
    shoal__gen_tensor *t = calloc((size_t)cap, sizeof *t);
    char *hdr = NULL;
    float *row = NULL;
    void *q = NULL;
    f = NULL;
    if (!t) return SHOAL_ERR_NOMEM;
    int n = shoal__gen_tensors(o, t, cap, err, errcap);
    size_t hcap = (size_t)n * 200 + 64, hl = 0;
    hdr = malloc(hcap);
    int maxc = o->dim > o->hidden_dim ? o->dim : o->hidden_dim;
    if (o->vocab_size > maxc) maxc = o->vocab_size;
    if (o->n_heads * o->head_dim > maxc) maxc = o->n_heads * o->head_dim;
    row = malloc((size_t)maxc * 4);
    q = malloc((size_t)maxc * 4);
    if (!hdr || !row || !q) {
        rc = SHOAL_ERR_NOMEM;
        goto done;
    }
    int es = o->dtype == SHOAL_WTYPE_F32 ? 4 : 2;
    uint64_t off = 0;
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "{");
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)t[i].rows * (uint64_t)(t[i].cols ? t[i].cols : 1) * (uint64_t)es;
        if (t[i].cols)
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}",
                                   i ? "," : "", t[i].hf, st_name(o->dtype), t[i].rows, t[i].cols,
                                   (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%llu,%llu]}",
                                   i ? "," : "", t[i].hf, st_name(o->dtype), t[i].rows,
                                   (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    while (hl % 8) hdr[hl++] = ' '; /* keeps the data 8-byte aligned */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(f = fopen(path, "wb"))) {
        shoal__errf(err, errcap, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    uint8_t len8[8];
    shoal__put_u64(len8, hl);
    fwrite(len8, 1, 8, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < n; i++) {
        int rows = t[i].cols ? t[i].rows : 1, cols = t[i].cols ? t[i].cols : t[i].rows;
        for (int r = 0; r < rows; r++) {
            shoal__gen_row(o, &t[i], r, 0, row);
            fwrite(q, 1, shoal__quantize_row(o->dtype, row, q, cols), f);
        }
    }
    rc = ferror(f) ? SHOAL_ERR_IO : SHOAL_OK;
    if (rc) shoal__errf(err, errcap, "%s: write failed", path);
done:
    if (f && fclose(f) && rc == SHOAL_OK) rc = SHOAL_ERR_IO;
    free(t);
    free(hdr);
    free(row);
    free(q);
    return rc;
}
