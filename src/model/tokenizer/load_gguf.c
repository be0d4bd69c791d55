/* GGUF tokenizer.ggml.* metadata -> shoal_vocab_spec -> tokenizer. The GGUF reader has already
 * bounds-checked every string and array against the file; here the arrays' element types and
 * lengths are checked against each other, and ids against the 32-bit range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/gguf.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/tokenizer_gguf.h"

#define KEY(s) "tokenizer.ggml." s

/* An optional id: -1 when absent; FORMAT when present but not an integer in [0, 2^31). */
static int opt_id(const shoal__gguf *g, const char *key, int32_t *out, const char *src, char *err, size_t errcap) {
    int64_t v;
    int rc = shoal__gguf_get_int(g, key, &v);
    *out = -1;
    if (rc == SHOAL_ERR_NOT_FOUND) return SHOAL_OK;
    if (rc || v < 0 || v > INT32_MAX) /* llama.cpp writes -1 for "none" in some converters */
        return rc || v != -1 ? shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %s is not a token id", src, key)
                             : SHOAL_OK;
    *out = (int32_t)v;
    return SHOAL_OK;
}

static int opt_bool(const shoal__gguf *g, const char *key, int *out, const char *src, char *err, size_t errcap) {
    int v;
    int rc = shoal__gguf_get_bool(g, key, &v);
    *out = -1;
    if (rc == SHOAL_ERR_NOT_FOUND) return SHOAL_OK;
    if (rc) return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %s is not a bool", src, key);
    *out = v != 0;
    return SHOAL_OK;
}

/* A string array's elements as views into the mapping. */
static int str_array(const shoal__gguf *g, const char *key, int required, shoal_vocab_str **out, size_t *n,
                     const char *src, char *err, size_t errcap) {
    int et;
    uint64_t count;
    *out = NULL;
    *n = 0;
    int rc = shoal__gguf_get_array(g, key, &et, &count);
    if (rc == SHOAL_ERR_NOT_FOUND && !required) return SHOAL_OK;
    if (rc == SHOAL_ERR_NOT_FOUND)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_NOT_FOUND, "%s: no %s: the file has no vocabulary", src, key);
    if (rc || et != SHOAL__GGUF_STRING)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %s is not an array of strings", src, key);
    if (count > SHOAL__TOK_MAX_TOKENS)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %s has %llu entries, over the limit of %u", src,
                               key, (unsigned long long)count, SHOAL__TOK_MAX_TOKENS);
    shoal_vocab_str *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) return shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", src);
    for (uint64_t i = 0; i < count; i++) {
        if (shoal__gguf_array_str(g, key, i, &v[i].ptr, &v[i].len)) {
            free(v);
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %s[%llu] cannot be read", src, key,
                                   (unsigned long long)i);
        }
    }
    *out = v;
    *n = (size_t)count;
    return SHOAL_OK;
}

int shoal__tokenizer_from_gguf(const shoal__gguf *g, shoal_tokenizer **out, char *err, size_t errcap) {
    *out = NULL;
    const char *src = shoal__gguf_path(g);
    if (!src) src = "gguf";
    shoal_vocab_spec spec = SHOAL_VOCAB_SPEC_INIT;
    spec.source = src;
    shoal_vocab_str *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char model[32], pre[64] = "default";
    const char *s;
    size_t sl;
    int rc = shoal__gguf_get_str(g, KEY("model"), &s, &sl);
    if (rc == SHOAL_ERR_NOT_FOUND)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_NOT_FOUND, "%s: no " KEY("model") ": the file has no vocabulary",
                               src);
    if (rc || sl >= sizeof model || memchr(s, 0, sl))
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("model") " is not a short string", src);
    memcpy(model, s, sl);
    model[sl] = 0;
    rc = shoal__gguf_get_str(g, KEY("pre"), &s, &sl);
    if (rc == SHOAL_OK) {
        if (sl >= sizeof pre || memchr(s, 0, sl))
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("pre") " is not a short string", src);
        memcpy(pre, s, sl);
        pre[sl] = 0;
    } else if (rc != SHOAL_ERR_NOT_FOUND) {
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("pre") " is not a string", src);
    }
    spec.model = model;
    spec.pre = pre;
    if ((rc = str_array(g, KEY("tokens"), 1, &tokens, &spec.n_tokens, src, err, errcap)) ||
        (rc = str_array(g, KEY("merges"), 0, &merges, &spec.n_merges, src, err, errcap)))
        goto out;
    spec.tokens = tokens;
    spec.merges = merges;

    int et;
    uint64_t count;
    const void *data;
    rc = shoal__gguf_array_data(g, KEY("scores"), &et, &count, &data);
    if (rc == SHOAL_OK) {
        if (et != SHOAL__GGUF_F32 || count != spec.n_tokens) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("scores") " must be %zu f32 values", src,
                                 spec.n_tokens);
            goto out;
        }
        scores = malloc((count ? count : 1) * sizeof *scores);
        if (!scores) goto nomem;
        for (uint64_t i = 0; i < count; i++) { /* little-endian, possibly unaligned */
            uint32_t bits = shoal__get_u32((const uint8_t *)data + 4 * i);
            memcpy(&scores[i], &bits, 4);
        }
        spec.scores = scores;
    } else if (rc != SHOAL_ERR_NOT_FOUND) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("scores") " is not a numeric array", src);
        goto out;
    }
    rc = shoal__gguf_get_array(g, KEY("token_type"), &et, &count);
    if (rc == SHOAL_OK) {
        if (count != spec.n_tokens) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                 "%s: " KEY("token_type") " has %llu entries for %zu tokens", src,
                                 (unsigned long long)count, spec.n_tokens);
            goto out;
        }
        types = malloc((count ? count : 1) * sizeof *types);
        if (!types) goto nomem;
        for (uint64_t i = 0; i < count; i++) {
            int64_t v;
            if (shoal__gguf_array_int(g, KEY("token_type"), i, &v) || v < INT32_MIN || v > INT32_MAX) {
                rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("token_type") "[%llu] is not an integer",
                                     src, (unsigned long long)i);
                goto out;
            }
            types[i] = (int32_t)v;
        }
        spec.token_types = types;
    } else if (rc != SHOAL_ERR_NOT_FOUND) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: " KEY("token_type") " is not an array", src);
        goto out;
    }
    if ((rc = opt_id(g, KEY("bos_token_id"), &spec.bos_id, src, err, errcap)) ||
        (rc = opt_id(g, KEY("eos_token_id"), &spec.eos_id, src, err, errcap)) ||
        (rc = opt_id(g, KEY("unknown_token_id"), &spec.unk_id, src, err, errcap)) ||
        (rc = opt_id(g, KEY("eot_token_id"), &spec.eot_id, src, err, errcap)) ||
        (rc = opt_bool(g, KEY("add_bos_token"), &spec.add_bos, src, err, errcap)) ||
        (rc = opt_bool(g, KEY("add_eos_token"), &spec.add_eos, src, err, errcap)) ||
        (rc = opt_bool(g, KEY("add_space_prefix"), &spec.add_space_prefix, src, err, errcap)))
        goto out;
    rc = shoal_tokenizer_from_spec(&spec, out, err, errcap);
    goto out;
nomem:
    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", src);
out:
    free(tokens);
    free(merges);
    free(scores);
    free(types);
    return rc;
}

int shoal_tokenizer_load_gguf(const char *path, shoal_tokenizer **out, char *err, size_t errcap) {
    if (out) *out = NULL;
    if (!path || !out) return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "gguf: bad arguments");
    shoal__gguf *g = NULL;
    int rc = shoal__gguf_open(path, &g, err, errcap);
    if (rc) return rc;
    rc = shoal__tokenizer_from_gguf(g, out, err, errcap);
    shoal__gguf_close(g);
    return rc;
}
