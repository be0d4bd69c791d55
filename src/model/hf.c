/* Hugging Face folder: config.json, then the weights from the shards named by
 * model.safetensors.index.json, else model.safetensors, else every *.safetensors in the folder.
 * HF tensor names are mapped to canonical (GGUF) names; q/k rows stay in HF's rotate-half
 * order, which the config records (rope_interleaved = 0). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/json.h"
#include "model/source.h"

typedef struct add_ctx {
    shoal__source *s;
    const char *file;
} add_ctx;

/* model.layers.N.<suffix> -> blk.N.<canonical> */
static const struct { const char *hf, *gg; } layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

static void canonical(const char *hf, char *out, size_t cap) {
    if (strcmp(hf, "model.embed_tokens.weight") == 0) {
        snprintf(out, cap, "token_embd.weight");
        return;
    }
    if (strcmp(hf, "model.norm.weight") == 0) {
        snprintf(out, cap, "output_norm.weight");
        return;
    }
    if (strcmp(hf, "lm_head.weight") == 0) {
        snprintf(out, cap, "output.weight");
        return;
    }
    int layer, n = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &n) == 1 && n > 0 && layer >= 0) {
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
            if (strcmp(hf + n, layer_names[i].hf) == 0) {
                snprintf(out, cap, "blk.%d.%s", layer, layer_names[i].gg);
                return;
            }
    }
    snprintf(out, cap, "%s", hf); /* unknown: kept under its own name, ignored by the loader */
}

static int add_tensor(void *vctx, const char *name, int dtype, int n_dims, const uint64_t *shape,
                      const void *data, uint64_t nbytes) {
    add_ctx *c = vctx;
    char canon[600];
    canonical(name, canon, sizeof canon);
    if (shoal__source_find(c->s, canon)) return SHOAL_ERR_FORMAT; /* reported by the caller */
    return shoal__source_add(c->s, canon, name, dtype, n_dims, shape, data, nbytes);
}

static int read_text(const char *path, shoal__mapfile *m, char *err, size_t errcap) {
    return shoal__mapfile_open(path, m, err, errcap);
}

static int add_shard(shoal__source *s, const char *dir, const char *file, char *err, size_t errcap) {
    if (strchr(file, '/') || strcmp(file, "..") == 0 || !*file) {
        shoal__errf(err, errcap, "%s/model.safetensors.index.json: shard name '%s' is not a plain file name", dir, file);
        return SHOAL_ERR_FORMAT;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    shoal__mapfile m;
    int rc = shoal__mapfile_open(path, &m, err, errcap);
    if (rc) return rc;
    if ((rc = shoal__source_add_map(s, &m))) {
        shoal__mapfile_close(&m);
        return rc;
    }
    add_ctx c = {s, path};
    size_t before = s->n;
    rc = shoal__safetensors_parse(m.data, m.size, path, add_tensor, &c, err, errcap);
    if (rc == SHOAL_ERR_FORMAT && s->n >= before && !err[0])
        shoal__errf(err, errcap, "%s: a tensor name appears twice", path);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int shoal__read_hf(const char *dir, shoal__source *s, char *err, size_t errcap) {
    char path[4096];
    shoal__mapfile m;
    err[0] = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = read_text(path, &m, err, errcap);
    if (rc) return rc;
    rc = shoal__hf_config_parse((const char *)m.data, m.size, path, &s->cfg, err, errcap);
    shoal__mapfile_close(&m);
    if (rc) return rc;

    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (shoal__mapfile_open(path, &m, err, errcap) == SHOAL_OK) {
        shoal__json *doc = NULL;
        char jerr[160];
        err[0] = 0;
        if (shoal__json_parse((const char *)m.data, m.size, &doc, jerr, sizeof jerr)) {
            shoal__errf(err, errcap, "%s: %s", path, jerr);
            shoal__mapfile_close(&m);
            return SHOAL_ERR_FORMAT;
        }
        const shoal__jv *wm = shoal__json_get(shoal__json_root(doc), "weight_map");
        if (shoal__json_type(wm) != SHOAL__JSON_OBJECT) {
            shoal__errf(err, errcap, "%s: field 'weight_map' is missing or not an object", path);
            rc = SHOAL_ERR_FORMAT;
        }
        /* distinct shard names, in order of first appearance */
        char **shards = calloc(shoal__json_count(wm) + 1, sizeof *shards);
        size_t ns = 0;
        if (!shards) rc = SHOAL_ERR_NOMEM;
        for (const shoal__jv *v = shoal__json_first(wm); !rc && v; v = shoal__json_next(v)) {
            char f[1024];
            if (shoal__json_str(v, f, sizeof f, NULL)) {
                shoal__errf(err, errcap, "%s: weight_map holds a value that is not a short file name", path);
                rc = SHOAL_ERR_FORMAT;
                break;
            }
            size_t j = 0;
            while (j < ns && strcmp(shards[j], f)) j++;
            if (j == ns && !(shards[ns++] = strdup(f))) rc = SHOAL_ERR_NOMEM;
        }
        for (size_t j = 0; !rc && j < ns; j++) rc = add_shard(s, dir, shards[j], err, errcap);
        for (size_t j = 0; j < ns; j++) free(shards[j]);
        free(shards);
        shoal__json_free(doc);
        shoal__mapfile_close(&m);
        if (rc) return rc;
    } else {
        err[0] = 0;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            if ((rc = add_shard(s, dir, "model.safetensors", err, errcap))) return rc;
        } else {
            DIR *d = opendir(dir);
            if (!d) {
                shoal__errf(err, errcap, "%s: cannot open the folder", dir);
                return SHOAL_ERR_NOT_FOUND;
            }
            char **names = NULL;
            size_t nn = 0;
            struct dirent *de;
            while (!rc && (de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l > 12 && strcmp(de->d_name + l - 12, ".safetensors") == 0) {
                    char **nw = realloc(names, (nn + 1) * sizeof *nw);
                    if (!nw || !(nw[nn] = strdup(de->d_name))) rc = SHOAL_ERR_NOMEM;
                    if (nw) names = nw;
                    if (!rc) nn++;
                }
            }
            closedir(d);
            if (names) qsort(names, nn, sizeof *names, cmp_str);
            for (size_t j = 0; !rc && j < nn; j++) rc = add_shard(s, dir, names[j], err, errcap);
            for (size_t j = 0; j < nn; j++) free(names[j]);
            free(names);
            if (rc) return rc;
            if (!nn) {
                shoal__errf(err, errcap, "%s: no model.safetensors, index or *.safetensors file", dir);
                return SHOAL_ERR_NOT_FOUND;
            }
        }
    }
    if (!shoal__source_find(s, "output.weight")) s->cfg.tied_classifier = 1;
    return SHOAL_OK;
}
