/* Token ids -> bytes: single pieces, whole sequences, and the streaming decoder that releases
 * only complete UTF-8 characters. decode() and the decoder share one piece function and one
 * leading-space rule, so streaming output always concatenates to the whole-sequence result. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Writes the piece of id into dst, which holds at least t->max_len bytes (no piece is longer:
 * "▁" -> ' ' and stand-in characters -> bytes only shrink, "▅" is 3 bytes). Returns its length. */
static size_t write_piece(const shoal_tokenizer *t, int32_t id, unsigned flags, char *dst) {
    const char *s = shoal__tok_str(t, id);
    size_t n = t->len[id];
    int special = (flags & SHOAL_DECODE_SPECIAL) != 0;
    switch (t->type[id]) {
    case SHOAL_TOKEN_USER_DEFINED:
        memcpy(dst, s, n);
        return n;
    case SHOAL_TOKEN_CONTROL:
    case SHOAL_TOKEN_UNUSED:
        if (!special) return 0;
        memcpy(dst, s, n);
        return n;
    case SHOAL_TOKEN_UNKNOWN:
        if (special) {
            memcpy(dst, s, n);
            return n;
        }
        memcpy(dst, "\xE2\x96\x85", 3); /* U+2585, what llama.cpp shows for <unk> */
        return 3;
    case SHOAL_TOKEN_BYTE:
        if (n == 6 && hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            dst[0] = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return 1;
        }
        memcpy(dst, s, n);
        return n;
    default:
        break;
    }
    size_t k = 0;
    if (t->kind == SHOAL_TOKENIZER_SPM) {
        if (t->spm_ascii_space) {
            memcpy(dst, s, n);
            return n;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                dst[k++] = ' ';
                i += 3;
            } else {
                dst[k++] = s[i++];
            }
        }
        return k;
    }
    /* byte-level: each stand-in character is one byte; anything else (a vocabulary entry that
     * is not byte-level text) is copied as it is */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = shoal__utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp < 324 && t->unbyte[cp] >= 0) dst[k++] = (char)t->unbyte[cp];
        else {
            memcpy(dst + k, s + i, l);
            k += l;
        }
        i += l;
    }
    return k;
}

int shoal_tokenizer_token_piece(const shoal_tokenizer *t, int32_t id, unsigned flags, char *buf,
                                size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!t || !n || (!buf && cap)) return SHOAL_ERR_INVALID;
    if (id < 0 || (size_t)id >= t->n) return SHOAL_ERR_INVALID;
    char *tmp = malloc(t->max_len);
    if (!tmp) return SHOAL_ERR_NOMEM;
    size_t k = write_piece(t, id, flags, tmp);
    if (cap) memcpy(buf, tmp, k < cap ? k : cap);
    free(tmp);
    *n = k;
    return k > cap ? SHOAL_ERR_TRUNCATED : SHOAL_OK;
}

/* The leading-space rule: a vocabulary that prepends the space symbol when encoding gets one
 * leading ' ' dropped from the first piece with text, at the start and after each BOS. */
static int strips_space(const shoal_tokenizer *t, unsigned flags) {
    return t->kind == SHOAL_TOKENIZER_SPM && t->add_space_prefix && !(flags & SHOAL_DECODE_KEEP_SPACE);
}

/* One step of the shared decode state: the piece of id after the leading-space rule, into
 * dst (t->max_len bytes). Returns the number of bytes. */
static size_t step(const shoal_tokenizer *t, unsigned flags, int *strip_pending, int32_t id, char *dst) {
    size_t k = write_piece(t, id, flags, dst);
    if (*strip_pending && k) {
        *strip_pending = 0;
        if (dst[0] == ' ') {
            memmove(dst, dst + 1, k - 1);
            k--;
        }
    }
    if (id == t->bos && strips_space(t, flags)) *strip_pending = 1;
    return k;
}

int shoal_tokenizer_decode(const shoal_tokenizer *t, const int32_t *ids, size_t n_ids,
                           unsigned flags, char *buf, size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!t || !n || (!ids && n_ids) || (!buf && cap)) return SHOAL_ERR_INVALID;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= t->n) return SHOAL_ERR_INVALID;
    char *tmp = malloc(t->max_len);
    if (!tmp) return SHOAL_ERR_NOMEM;
    int strip = strips_space(t, flags);
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t k = step(t, flags, &strip, ids[i], tmp);
        if (total < cap) memcpy(buf + total, tmp, k < cap - total ? k : cap - total);
        total += k;
    }
    free(tmp);
    *n = total;
    return total > cap ? SHOAL_ERR_TRUNCATED : SHOAL_OK;
}

/* ---- streaming */

struct shoal_tokenizer_decoder {
    const shoal_tokenizer *t;
    unsigned flags;
    int strip_pending;
    char held[4]; /* the start of a character whose last bytes have not come yet */
    size_t n_held;
    char *out;    /* [t->max_len + 4]: what the last call returned */
};

int shoal_tokenizer_decoder_new(const shoal_tokenizer *t, unsigned flags, shoal_tokenizer_decoder **out) {
    if (!out) return SHOAL_ERR_INVALID;
    *out = NULL;
    if (!t) return SHOAL_ERR_INVALID;
    shoal_tokenizer_decoder *d = calloc(1, sizeof *d);
    if (!d) return SHOAL_ERR_NOMEM;
    d->out = malloc(t->max_len + 4);
    if (!d->out) {
        free(d);
        return SHOAL_ERR_NOMEM;
    }
    d->t = t;
    d->flags = flags;
    d->strip_pending = strips_space(t, flags);
    *out = d;
    return SHOAL_OK;
}

/* Whether s[0..n) (n <= 3, s[0] a lead byte, the rest continuation bytes) can still become a
 * valid character: the second byte's range depends on the lead (no overlongs, no surrogates,
 * nothing past U+10FFFF), exactly as shoal__utf8_decode checks. */
static int could_complete(const unsigned char *s, size_t n) {
    size_t need = shoal__utf8_lead_len(s[0]);
    if (need < 2 || n >= need) return 0;
    if (n >= 2) {
        unsigned c = s[1];
        if ((s[0] == 0xE0 && c < 0xA0) || (s[0] == 0xED && c > 0x9F) || (s[0] == 0xF0 && c < 0x90) ||
            (s[0] == 0xF4 && c > 0x8F))
            return 0;
    }
    return 1;
}

/* Length of the tail of s[0..n) to hold back: an unfinished character that may still complete. */
static size_t incomplete_tail(const unsigned char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back for its lead */
        return could_complete(s + n - back, back) ? back : 0;
    }
    return 0;
}

int shoal_tokenizer_decoder_push(shoal_tokenizer_decoder *d, int32_t id, const char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!d || !text || !len) return SHOAL_ERR_INVALID;
    const shoal_tokenizer *t = d->t;
    if (id < 0 || (size_t)id >= t->n) return SHOAL_ERR_INVALID;
    memcpy(d->out, d->held, d->n_held);
    size_t k = d->n_held + step(t, d->flags, &d->strip_pending, id, d->out + d->n_held);
    size_t hold = incomplete_tail((const unsigned char *)d->out, k);
    memcpy(d->held, d->out + k - hold, hold);
    d->n_held = hold;
    *text = d->out;
    *len = k - hold;
    return SHOAL_OK;
}

int shoal_tokenizer_decoder_flush(shoal_tokenizer_decoder *d, const char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!d || !text || !len) return SHOAL_ERR_INVALID;
    memcpy(d->out, d->held, d->n_held);
    *text = d->out;
    *len = d->n_held;
    d->n_held = 0;
    d->strip_pending = strips_space(d->t, d->flags);
    return SHOAL_OK;
}

void shoal_tokenizer_decoder_reset(shoal_tokenizer_decoder *d) {
    if (!d) return;
    d->n_held = 0;
    d->strip_pending = strips_space(d->t, d->flags);
}

void shoal_tokenizer_decoder_free(shoal_tokenizer_decoder *d) {
    if (!d) return;
    free(d->out);
    free(d);
}
