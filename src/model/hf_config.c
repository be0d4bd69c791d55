/* Hugging Face config.json -> shoal_model_config, for LlamaForCausalLM (and Mistral-style
 * Llama clones) and Qwen3ForCausalLM. RoPE settings are read from the top level (most
 * published checkpoints) or from "rope_parameters" (transformers 5), and Llama-3 frequency
 * scaling from "rope_scaling" or "rope_parameters" with rope_type "llama3". */
#include <string.h>

#include "common/common.h"
#include "model/json.h"
#include "model/source.h"

static int get_int(const shoal__jv *o, const char *key, int def, int *out, const char *name,
                   char *err, size_t errcap) {
    const shoal__jv *v = shoal__json_get(o, key);
    if (!v || shoal__json_type(v) == SHOAL__JSON_NULL) {
        *out = def;
        return 0;
    }
    if (shoal__json_type(v) == SHOAL__JSON_ARRAY) v = shoal__json_first(v); /* eos_token_id: [..] */
    int64_t x;
    if (shoal__json_int(v, &x) || x < -1 || x > (1ll << 30)) {
        shoal__errf(err, errcap, "%s: field '%s' is not an integer in -1..2^30", name, key);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int get_num(const shoal__jv *o, const char *key, double def, double *out, const char *name,
                   char *err, size_t errcap) {
    const shoal__jv *v = shoal__json_get(o, key);
    if (!v || shoal__json_type(v) == SHOAL__JSON_NULL) {
        *out = def;
        return 0;
    }
    if (shoal__json_number(v, out)) {
        shoal__errf(err, errcap, "%s: field '%s' is not a number", name, key);
        return -1;
    }
    return 0;
}

/* rope settings from an object holding rope_type/type, factor, ... */
static int rope_scaling(const shoal__jv *o, shoal_model_config *c, const char *name, char *err,
                        size_t errcap) {
    if (shoal__json_type(o) != SHOAL__JSON_OBJECT) return 0;
    const shoal__jv *t = shoal__json_get(o, "rope_type");
    if (!t) t = shoal__json_get(o, "type");
    if (!t || shoal__json_str_eq(t, "default")) return 0;
    if (!shoal__json_str_eq(t, "llama3")) {
        char buf[64] = "";
        shoal__json_str(t, buf, sizeof buf, NULL);
        shoal__errf(err, errcap, "%s: rope_type '%s' is not supported (default and llama3 are)", name, buf);
        return SHOAL_ERR_UNSUPPORTED;
    }
    double f, lo, hi;
    int orig;
    if (get_num(o, "factor", 8, &f, name, err, errcap) ||
        get_num(o, "low_freq_factor", 1, &lo, name, err, errcap) ||
        get_num(o, "high_freq_factor", 4, &hi, name, err, errcap) ||
        get_int(o, "original_max_position_embeddings", 8192, &orig, name, err, errcap))
        return SHOAL_ERR_FORMAT;
    c->rope_factor = (float)f;
    c->rope_low_freq_factor = (float)lo;
    c->rope_high_freq_factor = (float)hi;
    c->rope_orig_max_pos = orig;
    return 0;
}

int shoal__hf_config_parse(const char *text, size_t len, const char *name, shoal_model_config *c,
                           char *err, size_t errcap) {
    shoal__json *doc = NULL;
    char jerr[160];
    memset(c, 0, sizeof *c);
    c->format = SHOAL_FORMAT_HF;
    if (shoal__json_parse(text, len, &doc, jerr, sizeof jerr)) {
        shoal__errf(err, errcap, "%s: %s", name, jerr);
        return SHOAL_ERR_FORMAT;
    }
    int rc = SHOAL_ERR_FORMAT;
    const shoal__jv *r = shoal__json_root(doc);
    const shoal__jv *mt = shoal__json_get(r, "model_type");
    const shoal__jv *archs = shoal__json_get(r, "architectures");
    const shoal__jv *a0 = shoal__json_first(archs);
    if (shoal__json_str_eq(mt, "llama") || shoal__json_str_eq(mt, "mistral") ||
        shoal__json_str_eq(a0, "LlamaForCausalLM") || shoal__json_str_eq(a0, "MistralForCausalLM"))
        c->arch = SHOAL_ARCH_LLAMA;
    else if (shoal__json_str_eq(mt, "qwen3") || shoal__json_str_eq(a0, "Qwen3ForCausalLM"))
        c->arch = SHOAL_ARCH_QWEN3;
    else {
        char buf[64] = "(none)";
        if (mt) shoal__json_str(mt, buf, sizeof buf, NULL);
        else if (a0) shoal__json_str(a0, buf, sizeof buf, NULL);
        shoal__errf(err, errcap, "%s: architecture '%s' (model_type) is not supported (llama, qwen3 are)", name, buf);
        rc = SHOAL_ERR_UNSUPPORTED;
        goto done;
    }
    int bias = 0;
    shoal__json_bool(shoal__json_get(r, "attention_bias"), &bias);
    if (bias) {
        shoal__errf(err, errcap, "%s: attention_bias true is not supported", name);
        rc = SHOAL_ERR_UNSUPPORTED;
        goto done;
    }
    double eps, theta;
    if (get_int(r, "hidden_size", 0, &c->dim, name, err, errcap) ||
        get_int(r, "intermediate_size", 0, &c->hidden_dim, name, err, errcap) ||
        get_int(r, "num_hidden_layers", 0, &c->n_layers, name, err, errcap) ||
        get_int(r, "num_attention_heads", 0, &c->n_heads, name, err, errcap) ||
        get_int(r, "num_key_value_heads", c->n_heads, &c->n_kv_heads, name, err, errcap) ||
        get_int(r, "head_dim", c->n_heads > 0 ? c->dim / c->n_heads : 0, &c->head_dim, name, err, errcap) ||
        get_int(r, "vocab_size", 0, &c->vocab_size, name, err, errcap) ||
        get_int(r, "max_position_embeddings", 2048, &c->max_seq, name, err, errcap) ||
        get_int(r, "bos_token_id", -1, &c->bos_id, name, err, errcap) ||
        get_int(r, "eos_token_id", -1, &c->eos_id, name, err, errcap) ||
        get_num(r, "rms_norm_eps", 1e-6, &eps, name, err, errcap) ||
        get_num(r, "rope_theta", 10000, &theta, name, err, errcap))
        goto done;
    const shoal__jv *rp = shoal__json_get(r, "rope_parameters");
    if (rp && get_num(rp, "rope_theta", theta, &theta, name, err, errcap)) goto done;
    if ((rc = rope_scaling(shoal__json_get(r, "rope_scaling"), c, name, err, errcap))) goto done;
    if ((rc = rope_scaling(rp, c, name, err, errcap))) goto done;
    rc = SHOAL_ERR_FORMAT;
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    c->rope_interleaved = 0; /* HF q/k rows are laid out for rotate-half */
    c->qk_norm = c->arch == SHOAL_ARCH_QWEN3;
    int tied = 0;
    const shoal__jv *tv = shoal__json_get(r, "tie_word_embeddings");
    if (tv && shoal__json_bool(tv, &tied)) {
        shoal__errf(err, errcap, "%s: field 'tie_word_embeddings' is not a boolean", name);
        goto done;
    }
    c->tied_classifier = tied; /* may be set again by the reader when lm_head is absent */
    rc = shoal__config_check(c, name, err, errcap);
done:
    shoal__json_free(doc);
    return rc;
}
