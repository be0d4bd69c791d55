/* Helpers shared by the file loaders: a string arena, JSON vocabulary objects, merge lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/json.h"
#include "model/tokenizer/tok_internal.h"

int shoal__tok_strings_add(shoal__tok_strings *s, const char *p, size_t len) {
    if (s->n == s->ncap) {
        size_t nc = s->ncap ? s->ncap * 2 : 1024;
        size_t *no = realloc(s->off, nc * sizeof *no);
        if (!no) return SHOAL_ERR_NOMEM;
        s->off = no;
        uint32_t *nl = realloc(s->slen, nc * sizeof *nl);
        if (!nl) return SHOAL_ERR_NOMEM;
        s->slen = nl;
        s->ncap = nc;
    }
    if (len > SHOAL__TOK_MAX_BLOB || s->len + len > SHOAL__TOK_MAX_BLOB) return SHOAL_ERR_NOMEM;
    if (s->len + len + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 65536;
        while (nc < s->len + len + 1) nc *= 2;
        char *nd = realloc(s->data, nc);
        if (!nd) return SHOAL_ERR_NOMEM;
        s->data = nd;
        s->cap = nc;
    }
    if (len) memcpy(s->data + s->len, p, len);
    s->off[s->n] = s->len;
    s->slen[s->n] = (uint32_t)len;
    s->n++;
    s->len += len;
    return SHOAL_OK;
}

void shoal__tok_strings_view(const shoal__tok_strings *s, size_t i, shoal_vocab_str *view) {
    view->ptr = s->data ? s->data + s->off[i] : "";
    view->len = s->slen[i];
}

void shoal__tok_strings_free(shoal__tok_strings *s) {
    free(s->data);
    free(s->off);
    free(s->slen);
    memset(s, 0, sizeof *s);
}

int shoal__tok_json_string(const struct shoal__jv *v, const char *what, shoal__tok_strings *strs,
                           char *err, size_t errcap) {
    /* unescaping never lengthens a JSON string, but the node's raw length is not exposed:
     * go through a buffer of the longest token allowed */
    static const size_t cap = SHOAL__TOK_MAX_TOKEN_LEN + 1;
    char *buf = malloc(cap);
    if (!buf) return shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", what);
    size_t len = 0;
    int rc = shoal__json_str(v, buf, cap, &len);
    if (rc == SHOAL_ERR_TRUNCATED || (rc == SHOAL_OK && len > SHOAL__TOK_MAX_TOKEN_LEN))
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: string longer than %u bytes", what,
                             SHOAL__TOK_MAX_TOKEN_LEN);
    else if (rc)
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: not a string", what);
    else if ((rc = shoal__tok_strings_add(strs, buf, len)))
        rc = shoal__tok_fail(err, errcap, rc, "%s: out of memory", what);
    free(buf);
    return rc;
}

int shoal__tok_json_vocab(const struct shoal__jv *obj, const char *what, shoal__tok_strings *strs,
                          int32_t **ids, int64_t *max_id, char *err, size_t errcap) {
    *ids = NULL;
    *max_id = -1;
    if (shoal__json_type(obj) != SHOAL__JSON_OBJECT)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: not an object of token ids", what);
    size_t n = shoal__json_count(obj);
    if (n > SHOAL__TOK_MAX_TOKENS)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %zu tokens exceeds the limit of %u",
                               what, n, SHOAL__TOK_MAX_TOKENS);
    int32_t *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) return shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", what);
    size_t k = 0;
    int rc = SHOAL_OK;
    for (const shoal__jv *m = shoal__json_first(obj); m; m = shoal__json_next(m), k++) {
        int64_t id;
        if (shoal__json_int(m, &id) || id < 0 || id >= (int64_t)SHOAL__TOK_MAX_TOKENS) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                 "%s: entry %zu: the id is not an integer in [0, %u)", what, k,
                                 SHOAL__TOK_MAX_TOKENS);
            break;
        }
        char w[96];
        snprintf(w, sizeof w, "%s: entry %zu key", what, k);
        if ((rc = shoal__tok_json_string(shoal__json_key_of(m), w, strs, err, errcap))) break;
        out[k] = (int32_t)id;
        if (id > *max_id) *max_id = id;
    }
    if (rc) {
        free(out);
        return rc;
    }
    *ids = out;
    return SHOAL_OK;
}

int shoal__tok_split_merge(const char *s, size_t len, size_t *space_at) {
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    if (!sp) return 0;
    *space_at = (size_t)(sp - s);
    return 1;
}
