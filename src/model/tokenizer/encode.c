/* Text -> token ids. The text is first cut at added tokens (user-defined always, control tokens
 * with PARSE_SPECIAL), as llama.cpp's tokenizer_st_partition does; each piece of plain text in
 * between is then encoded on its own:
 *  - SPM: the space symbol is prepended (llama.cpp prefixes every text fragment that starts the
 *    input or follows an added token), spaces become the space symbol, and the whole fragment
 *    is one word whose characters are merged; characters outside the vocabulary become <0xHH>
 *    byte tokens first (Hugging Face's byte_fallback), or <unk> without them.
 *  - BPE: the fragment is split into words by the pre-tokenizer rule; each word's bytes become
 *    their one-character tokens and are merged by rank (or looked up whole first, for
 *    ignore_merges vocabularies such as Llama-3).
 * A vocabulary with a normalizer (tokenizer.json "NFC", ...) normalizes each plain-text fragment
 * first, as Hugging Face normalizes the text between added tokens; text that is already
 * normalized (nearly all of it) is checked, not copied (normalize.c). */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"

typedef struct enc {
    const shoal_tokenizer *t;
    int32_t *out; /* every id so far */
    size_t n, cap;
    int32_t *ids; /* one word's units */
    size_t ids_cap;
    char *buf;    /* escaped fragment (SPM) or mapped word (BPE) */
    size_t buf_cap;
    shoal__pretok pt;
    shoal__bpe_scratch bpe;
    shoal__norm_buf norm;
} enc;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return SHOAL_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return SHOAL_ERR_NOMEM;
        c *= 2;
    }
    void *np = realloc(*p, c * elem);
    if (!np) return SHOAL_ERR_NOMEM;
    *p = np;
    *cap = c;
    return SHOAL_OK;
}

static int emit(enc *e, const int32_t *ids, size_t k) {
    if (!k) return SHOAL_OK;
    if (grow((void **)&e->out, &e->cap, e->n + k, sizeof *e->out)) return SHOAL_ERR_NOMEM;
    memcpy(e->out + e->n, ids, k * sizeof *ids);
    e->n += k;
    return SHOAL_OK;
}

static int emit1(enc *e, int32_t id) { return emit(e, &id, 1); }

/* Merges e->ids[from..to) and emits the result. */
static int merge_emit(enc *e, size_t from, size_t to) {
    size_t m;
    int rc = shoal__bpe_merge(e->t, &e->bpe, e->ids + from, to - from, &m);
    return rc ? rc : emit(e, e->ids + from, m);
}

static int mergeable_unit(const shoal_tokenizer *t, int32_t id) {
    int ty = t->type[id];
    return ty == SHOAL_TOKEN_NORMAL || ty == SHOAL_TOKEN_USER_DEFINED || ty == SHOAL_TOKEN_UNUSED;
}

static int encode_spm(enc *e, const char *text, size_t len) {
    const shoal_tokenizer *t = e->t;
    const char *sp = t->spm_ascii_space ? " " : "\xE2\x96\x81"; /* U+2581 */
    size_t spl = t->spm_ascii_space ? 1 : 3;
    if (len > (SIZE_MAX - spl) / 3) return SHOAL_ERR_NOMEM;
    size_t need = spl + len * 3; /* every byte may be a space that grows to 3 */
    if (grow((void **)&e->buf, &e->buf_cap, need, 1)) return SHOAL_ERR_NOMEM;
    size_t bl = 0;
    if (t->add_space_prefix) {
        memcpy(e->buf, sp, spl);
        bl = spl;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e->buf + bl, sp, spl);
            bl += spl;
        } else {
            e->buf[bl++] = text[i];
        }
    }
    /* at most one unit per byte, even after byte fallback */
    if (grow((void **)&e->ids, &e->ids_cap, bl + 1, sizeof *e->ids)) return SHOAL_ERR_NOMEM;
    size_t k = 0, seg = 0;
    int prev_space = 1;
    const unsigned char *u = (const unsigned char *)e->buf;
    for (size_t i = 0; i < bl;) {
        uint32_t cp;
        size_t cl = shoal__utf8_decode(u + i, bl - i, &cp);
        int is_space = cl == spl && !memcmp(e->buf + i, sp, spl);
        if (t->spm_split && is_space && !prev_space && k > seg) {
            /* no token joins a character to the space symbol after it: merge the words
             * separately (same result, and the merge queue stays small and in cache) */
            int rc = merge_emit(e, seg, k);
            if (rc) return rc;
            seg = k;
        }
        prev_space = is_space;
        int32_t id = shoal__tok_lookup(t, e->buf + i, cl);
        if (id >= 0 && mergeable_unit(t, id)) {
            e->ids[k++] = id;
        } else {
            int unk_done = 0;
            for (size_t b = 0; b < cl; b++) {
                int32_t bid = t->byte_id[u[i + b]];
                if (bid >= 0) e->ids[k++] = bid;
                else if (t->unk >= 0 && !unk_done) {
                    e->ids[k++] = t->unk; /* one <unk> per character */
                    unk_done = 1;
                }
            }
        }
        i += cl;
    }
    return merge_emit(e, seg, k);
}

static int encode_word_bpe(enc *e, const unsigned char *w, size_t wl) {
    const shoal_tokenizer *t = e->t;
    if (t->ignore_merges) {
        /* Llama-3: a word that is itself a token is emitted whole, even where the merges would
         * not build it */
        if (grow((void **)&e->buf, &e->buf_cap, wl * 2 + 1, 1)) return SHOAL_ERR_NOMEM;
        size_t bl = 0;
        for (size_t i = 0; i < wl; i++) bl += shoal__utf8_encode(shoal__byte_to_cp(w[i]), e->buf + bl);
        int32_t id = shoal__tok_lookup(t, e->buf, bl);
        if (id >= 0) return emit1(e, id);
    }
    if (grow((void **)&e->ids, &e->ids_cap, wl + 1, sizeof *e->ids)) return SHOAL_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < wl; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) id = t->unk; /* a vocabulary without all 256 byte tokens */
        if (id >= 0) e->ids[k++] = id;
    }
    return merge_emit(e, 0, k);
}

static int encode_bpe(enc *e, const char *text, size_t len) {
    const shoal_tokenizer *t = e->t;
    const unsigned char *s = (const unsigned char *)text;
    if (t->bpe_prefix_space && text[0] != ' ') { /* text is already normalized here */
        /* HF ByteLevel(add_prefix_space): the fragment is read as if it began with a space */
        char *copy = malloc(len + 1);
        if (!copy) return SHOAL_ERR_NOMEM;
        copy[0] = ' ';
        memcpy(copy + 1, text, len);
        e->pt.rule = t->pre;
        int rc = shoal__pretok_load(&e->pt, (const unsigned char *)copy, len + 1, SHOAL__NORM_NONE, NULL);
        for (size_t i = 0; !rc && i < e->pt.n_chars;) {
            size_t j = shoal__pretok_next(&e->pt, t->pre, i);
            rc = encode_word_bpe(e, (const unsigned char *)copy + e->pt.off[i],
                                 e->pt.off[j] - e->pt.off[i]);
            i = j;
        }
        free(copy);
        return rc;
    }
    /* the vocabulary's normalizer: checked while decoding, applied only when the check fails */
    int unnormalized = 0;
    e->pt.rule = t->pre;
    int rc = shoal__pretok_load(&e->pt, s, len, t->norm, &unnormalized);
    if (!rc && unnormalized) {
        if ((rc = shoal__normalize(t->norm, text, len, &e->norm, &text, &len))) return rc;
        if (len > UINT32_MAX / 4) return SHOAL_ERR_NOMEM; /* offsets are 32-bit */
        s = (const unsigned char *)text;
        rc = shoal__pretok_load(&e->pt, s, len, SHOAL__NORM_NONE, NULL);
    }
    for (size_t i = 0; !rc && i < e->pt.n_chars;) {
        size_t j = shoal__pretok_next(&e->pt, t->pre, i);
        rc = encode_word_bpe(e, s + e->pt.off[i], e->pt.off[j] - e->pt.off[i]);
        i = j;
    }
    return rc;
}

static int encode_fragment(enc *e, const char *text, size_t len) {
    if (!len) return SHOAL_OK;
    /* normalization comes first; byte-level BPE without a prefix space checks it while
     * pre-tokenizing (encode_bpe), which saves a pass over text that needs none */
    if (e->t->norm && (e->t->kind == SHOAL_TOKENIZER_SPM || e->t->bpe_prefix_space)) {
        int rc = shoal__normalize(e->t->norm, text, len, &e->norm, &text, &len);
        if (rc) return rc;
    }
    if (len > UINT32_MAX / 4) return SHOAL_ERR_NOMEM; /* offsets are 32-bit */
    return e->t->kind == SHOAL_TOKENIZER_SPM ? encode_spm(e, text, len) : encode_bpe(e, text, len);
}

static int is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The longest added token allowed here that starts at text[pos], or -1. */
static int32_t match_special(const shoal_tokenizer *t, const char *text, size_t len, size_t pos,
                             int parse_special) {
    unsigned char b = (unsigned char)text[pos];
    for (uint32_t k = t->special_at[b]; k < t->special_at[b + 1]; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != SHOAL_TOKEN_USER_DEFINED) continue;
        size_t l = t->len[id];
        if (l <= len - pos && memcmp(text + pos, shoal__tok_str(t, id), l) == 0) return id;
    }
    return -1;
}

int shoal_tokenizer_encode(const shoal_tokenizer *t, const char *text, size_t len, unsigned flags,
                           int32_t *out, size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!t || !n || (!text && len) || (!out && cap)) return SHOAL_ERR_INVALID;
    enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    int rc = SHOAL_OK;
    int want_bos = (flags & SHOAL_TOKENIZE_ADD_BOS) || ((flags & SHOAL_TOKENIZE_ADD_SPECIAL) && t->add_bos);
    int want_eos = (flags & SHOAL_TOKENIZE_ADD_EOS) || ((flags & SHOAL_TOKENIZE_ADD_SPECIAL) && t->add_eos);
    int parse_special = (flags & SHOAL_TOKENIZE_PARSE_SPECIAL) != 0;
    if (want_bos && t->bos >= 0 && (rc = emit1(&e, t->bos))) goto out;

    size_t start = 0; /* start of the pending plain-text fragment */
    for (size_t pos = 0; pos < len;) {
        int32_t id = t->n_special ? match_special(t, text, len, pos, parse_special) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        size_t end = pos;
        if (t->attr[id] & SHOAL__ATTR_LSTRIP) /* the token swallows the whitespace before it */
            while (end > start && is_ascii_space(text[end - 1])) end--;
        if ((rc = encode_fragment(&e, text + start, end - start)) || (rc = emit1(&e, id))) goto out;
        pos += t->len[id];
        if (t->attr[id] & SHOAL__ATTR_RSTRIP)
            while (pos < len && is_ascii_space(text[pos])) pos++;
        start = pos;
    }
    if ((rc = encode_fragment(&e, text + start, len - start))) goto out;
    if (want_eos && t->eos >= 0 && (rc = emit1(&e, t->eos))) goto out;

    *n = e.n;
    if (e.n && cap) memcpy(out, e.out, (e.n < cap ? e.n : cap) * sizeof *out);
    if (e.n > cap) rc = SHOAL_ERR_TRUNCATED;
out:
    free(e.out);
    free(e.ids);
    free(e.buf);
    shoal__pretok_free(&e.pt);
    shoal__bpe_scratch_free(&e.bpe);
    shoal__norm_buf_free(&e.norm);
    return rc;
}
