/* Building a tokenizer from loader parameters: copies the vocabulary, checks every id, and
 * builds the string -> id hash, the merge table, the byte tables and the added-token list. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a: token strings are short */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t mix64(uint64_t x) { /* splitmix64 finalizer: spreads (left, right) id pairs */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int32_t shoal__tok_lookup(const shoal_tokenizer *t, const char *s, size_t len) {
    if (!t->slots) return -1;
    size_t h = (size_t)hash_bytes(s, len) & t->mask;
    for (;;) {
        int32_t id = t->slots[h];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(t->blob + t->off[id], s, len) == 0) return id;
        h = (h + 1) & t->mask;
    }
}

const shoal__tok_pair *shoal__tok_pair_find(const shoal_tokenizer *t, int32_t left, int32_t right) {
    if (!t->pairs) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t h = (size_t)mix64(key) & t->pair_mask;
    for (;;) {
        const shoal__tok_pair *p = &t->pairs[h];
        if (p->result < 0) return NULL;
        if (p->key == key) return p;
        h = (h + 1) & t->pair_mask;
    }
}

/* Growable pair table used while building (load factor kept under 0.7). */
typedef struct pair_builder {
    shoal__tok_pair *slots;
    size_t mask, count;
} pair_builder;

static int pair_put(pair_builder *b, int32_t left, int32_t right, float prio, int32_t result);

static int pair_grow(pair_builder *b) {
    size_t cap = b->slots ? (b->mask + 1) * 2 : 1024;
    shoal__tok_pair *ns = malloc(cap * sizeof *ns);
    if (!ns) return SHOAL_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) ns[i].result = -1;
    pair_builder nb = {ns, cap - 1, 0};
    if (b->slots) {
        for (size_t i = 0; i <= b->mask; i++)
            if (b->slots[i].result >= 0)
                pair_put(&nb, (int32_t)(b->slots[i].key >> 32), (int32_t)(uint32_t)b->slots[i].key,
                         b->slots[i].prio, b->slots[i].result);
        free(b->slots);
    }
    *b = nb;
    return SHOAL_OK;
}

/* Inserts unless the pair is already there (the first, best-ranked merge wins). */
static int pair_put(pair_builder *b, int32_t left, int32_t right, float prio, int32_t result) {
    if (!b->slots || (b->count + 1) * 10 > (b->mask + 1) * 7) {
        int rc = pair_grow(b);
        if (rc) return rc;
    }
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t h = (size_t)mix64(key) & b->mask;
    while (b->slots[h].result >= 0) {
        if (b->slots[h].key == key) return SHOAL_OK;
        h = (h + 1) & b->mask;
    }
    b->slots[h].key = key;
    b->slots[h].prio = prio;
    b->slots[h].result = result;
    b->count++;
    return SHOAL_OK;
}

int shoal__tok_is_byte_piece(const char *s, size_t n, unsigned *byte) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    unsigned v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16u;
        if (d > 15) return 0;
        v = v * 16 + d;
    }
    *byte = v;
    return 1;
}

/* A given id is checked against the vocabulary; -1 means "find it by one of these texts". */
static int resolve_id(shoal_tokenizer *t, int32_t given, const char *what, const char *const *texts,
                      int32_t *out, char *err, size_t errcap) {
    if (given >= 0) {
        if ((size_t)given >= t->n)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                   "%s: %s %d is out of range (vocabulary of %zu tokens)", t->source,
                                   what, (int)given, t->n);
        *out = given;
        return SHOAL_OK;
    }
    *out = -1;
    for (; texts && *texts; texts++) {
        int32_t id = shoal__tok_lookup(t, *texts, strlen(*texts));
        if (id >= 0) {
            *out = id;
            break;
        }
    }
    return SHOAL_OK;
}

/* Sort key of an added token: first byte, then longest first (so the longest match at a
 * position is found first), then id. */
typedef struct special_key {
    uint32_t first, len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int is_special_type(int ty) {
    return ty == SHOAL_TOKEN_CONTROL || ty == SHOAL_TOKEN_USER_DEFINED || ty == SHOAL_TOKEN_UNKNOWN;
}

static int build_specials(shoal_tokenizer *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->len[i] && is_special_type(t->type[i])) n++;
    special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return SHOAL_ERR_NOMEM;
    }
    n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->len[i] && is_special_type(t->type[i]))
            keys[n++] = (special_key){(unsigned char)t->blob[t->off[i]], t->len[i], (int32_t)i};
    qsort(keys, n, sizeof *keys, cmp_special);
    memset(t->special_at, 0, sizeof t->special_at);
    for (size_t i = 0; i < n; i++) {
        t->special[i] = keys[i].id;
        t->special_at[keys[i].first + 1]++;
    }
    for (int b = 0; b < 256; b++) t->special_at[b + 1] += t->special_at[b];
    t->n_special = n;
    free(keys);
    return SHOAL_OK;
}

static void add_eog(shoal_tokenizer *t, int32_t id) {
    if (id < 0 || t->n_eog >= SHOAL__TOK_MAX_EOG) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

static int build_pairs(shoal_tokenizer *t, const shoal__tok_params *p, char *err, size_t errcap) {
    pair_builder b = {NULL, 0, 0};
    int rc = SHOAL_OK;
    char *cat = NULL;
    if (t->kind == SHOAL_TOKENIZER_SPM && !p->spm_by_rank) {
        /* Score order (SentencePiece, llama2.c, llama.cpp): two adjacent pieces merge when their
         * concatenation is a token, best score first. Enumerating each token's split points
         * once here turns that into the same pair lookup the rank-ordered BPE uses. */
        for (size_t i = 0; i < t->n; i++) {
            if (t->type[i] != SHOAL_TOKEN_NORMAL || t->len[i] < 2) continue;
            const char *s = shoal__tok_str(t, (int32_t)i);
            size_t n = t->len[i];
            if (shoal__tok_lookup(t, s, n) != (int32_t)i) continue; /* a duplicate string */
            for (size_t k = 1; k < n; k++) {
                if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* inside a character */
                int32_t a = shoal__tok_lookup(t, s, k), c = shoal__tok_lookup(t, s + k, n - k);
                if (a < 0 || c < 0 || t->type[a] != SHOAL_TOKEN_NORMAL ||
                    t->type[c] != SHOAL_TOKEN_NORMAL)
                    continue;
                if ((rc = pair_put(&b, a, c, -t->score[i], (int32_t)i))) goto out;
            }
        }
    } else if (p->n_merges) {
        if (p->n_merges > SHOAL__TOK_MAX_MERGES) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %zu merges exceeds the limit of %u",
                                 t->source, p->n_merges, SHOAL__TOK_MAX_MERGES);
            goto out;
        }
        cat = malloc(2 * (size_t)SHOAL__TOK_MAX_TOKEN_LEN);
        if (!cat) {
            rc = SHOAL_ERR_NOMEM;
            goto out;
        }
        for (size_t r = 0; r < p->n_merges; r++) {
            const shoal_vocab_str *l = &p->merge_left[r], *q = &p->merge_right[r];
            if ((!l->ptr && l->len) || (!q->ptr && q->len)) {
                rc = shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: merge %zu has no text",
                                     t->source, r);
                goto out;
            }
            /* a merge naming tokens the vocabulary lacks can never apply: skipped, as
             * llama.cpp does, rather than failing the whole load */
            if (l->len > SHOAL__TOK_MAX_TOKEN_LEN || q->len > SHOAL__TOK_MAX_TOKEN_LEN) continue;
            int32_t a = shoal__tok_lookup(t, l->ptr ? l->ptr : "", l->len);
            int32_t c = shoal__tok_lookup(t, q->ptr ? q->ptr : "", q->len);
            if (a < 0 || c < 0) continue;
            if (l->len) memcpy(cat, l->ptr, l->len);
            if (q->len) memcpy(cat + l->len, q->ptr, q->len);
            int32_t res = shoal__tok_lookup(t, cat, l->len + q->len);
            if (res < 0) continue;
            if ((rc = pair_put(&b, a, c, (float)r, res))) goto out;
        }
    }
    t->pairs = b.slots;
    t->pair_mask = b.mask;
    b.slots = NULL;
out:
    free(b.slots);
    free(cat);
    if (rc == SHOAL_ERR_NOMEM) shoal__tok_fail(err, errcap, rc, "%s: out of memory", t->source);
    return rc;
}

int shoal__tok_build(const shoal__tok_params *p, shoal_tokenizer **out, char *err, size_t errcap) {
    const char *src = p->source ? p->source : "vocab";
    *out = NULL;
    if (p->kind != SHOAL_TOKENIZER_SPM && p->kind != SHOAL_TOKENIZER_BPE)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: unknown tokenizer kind", src);
    if (p->norm < SHOAL__NORM_NONE || p->norm > SHOAL__NORM_NFKD)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: unknown normalization form", src);
    if (p->n_tokens == 0 || !p->tokens)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: the vocabulary is empty", src);
    if (p->n_tokens > SHOAL__TOK_MAX_TOKENS)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                               "%s: %zu tokens exceeds the limit of %u", src, p->n_tokens,
                               SHOAL__TOK_MAX_TOKENS);
    size_t total = 0;
    for (size_t i = 0; i < p->n_tokens; i++) {
        const shoal_vocab_str *s = &p->tokens[i];
        if (!s->ptr && s->len)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: token %zu has no text", src, i);
        if (s->len > SHOAL__TOK_MAX_TOKEN_LEN)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                   "%s: token %zu: length %zu exceeds the limit of %u", src, i,
                                   s->len, SHOAL__TOK_MAX_TOKEN_LEN);
        total += s->len;
        if (total > SHOAL__TOK_MAX_BLOB)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                   "%s: token strings exceed %zu bytes in all", src, SHOAL__TOK_MAX_BLOB);
    }

    int rc = SHOAL_ERR_NOMEM;
    shoal_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return shoal__tok_fail(err, errcap, rc, "%s: out of memory", src);
    size_t n = p->n_tokens;
    t->kind = p->kind;
    t->n = n;
    t->source = strdup(src);
    t->blob = malloc(total + 1);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->score = malloc(n * sizeof *t->score);
    t->type = malloc(n);
    t->attr = calloc(n, 1);
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->source || !t->blob || !t->off || !t->len || !t->score || !t->type || !t->attr || !t->slots)
        goto fail_nomem;
    t->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->slots[i] = -1;

    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const shoal_vocab_str *s = &p->tokens[i];
        t->off[i] = at;
        t->len[i] = (uint32_t)s->len;
        if (s->len > t->max_len) t->max_len = s->len;
        if (s->len) memcpy(t->blob + at, s->ptr, s->len);
        at += s->len;
        float sc = p->scores ? p->scores[i] : 0.0f;
        if (!isfinite(sc)) sc = sc > 0 ? 1e30f : -1e30f; /* NaN would break the heap order */
        t->score[i] = sc;
        if (p->attrs) t->attr[i] = p->attrs[i] & (SHOAL__ATTR_LSTRIP | SHOAL__ATTR_RSTRIP);
        if (p->types) {
            int32_t ty = p->types[i];
            if (ty < SHOAL_TOKEN_UNDEFINED || ty > SHOAL_TOKEN_BYTE) {
                rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                     "%s: token_type[%zu] = %d is not a token type", src, i, (int)ty);
                goto fail;
            }
            t->type[i] = (uint8_t)(ty == SHOAL_TOKEN_UNDEFINED ? SHOAL_TOKEN_NORMAL : ty);
        } else {
            t->type[i] = s->ptr ? SHOAL_TOKEN_NORMAL : SHOAL_TOKEN_UNUSED;
        }
        if (!s->len) continue; /* holes and empty strings are never looked up */
        size_t h = (size_t)hash_bytes(s->ptr, s->len) & t->mask;
        int dup = 0;
        while (t->slots[h] >= 0) {
            int32_t o = t->slots[h];
            if (t->len[o] == s->len && memcmp(t->blob + t->off[o], s->ptr, s->len) == 0) {
                dup = 1; /* the first id with a string keeps it */
                break;
            }
            h = (h + 1) & t->mask;
        }
        if (!dup) t->slots[h] = (int32_t)i;
    }
    t->blob[at] = 0;
    if (t->max_len < 4) t->max_len = 4;

    int spm = t->kind == SHOAL_TOKENIZER_SPM;
    static const char *const spm_bos[] = {"<s>", NULL}, *const spm_eos[] = {"</s>", NULL},
                             *const spm_unk[] = {"<unk>", NULL},
                             *const bpe_bos[] = {"<|endoftext|>", "<|begin_of_text|>", NULL},
                             *const bpe_eos[] = {"<|endoftext|>", "<|end_of_text|>", NULL},
                             *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>",
                                                   "<end_of_turn>", "<|eot|>", NULL};
    if ((rc = resolve_id(t, p->bos_id, "bos_token_id", spm ? spm_bos : bpe_bos, &t->bos, err, errcap)) ||
        (rc = resolve_id(t, p->eos_id, "eos_token_id", spm ? spm_eos : bpe_eos, &t->eos, err, errcap)) ||
        (rc = resolve_id(t, p->unk_id, "unknown_token_id", spm ? spm_unk : NULL, &t->unk, err, errcap)) ||
        (rc = resolve_id(t, p->eot_id, "eot_token_id", eot_texts, &t->eot, err, errcap)))
        goto fail;
    if (!p->types) {
        for (size_t i = 0; i < n; i++) {
            unsigned byte;
            if (t->type[i] != SHOAL_TOKEN_NORMAL) continue;
            if (spm && shoal__tok_is_byte_piece(shoal__tok_str(t, (int32_t)i), t->len[i], &byte))
                t->type[i] = SHOAL_TOKEN_BYTE;
        }
        if (t->bos >= 0) t->type[t->bos] = SHOAL_TOKEN_CONTROL;
        if (t->eos >= 0) t->type[t->eos] = SHOAL_TOKEN_CONTROL;
        if (t->unk >= 0) t->type[t->unk] = SHOAL_TOKEN_UNKNOWN;
    }
    if (t->eot >= 0 && p->eot_id < 0 && t->type[t->eot] != SHOAL_TOKEN_CONTROL)
        t->eot = -1; /* found by text but not a control token: ordinary text, not an end */
    t->add_bos = p->add_bos >= 0 ? p->add_bos != 0 : spm;
    t->add_eos = p->add_eos > 0;
    t->pre = p->pre;
    t->ignore_merges = p->ignore_merges;
    t->add_space_prefix = spm && p->add_space_prefix;
    t->bpe_prefix_space = !spm && p->bpe_prefix_space;
    t->spm_ascii_space = spm && p->spm_ascii_space;
    t->norm = p->norm;

    add_eog(t, t->eos);
    add_eog(t, t->eot);
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>",
                                            "<|endoftext|>", "<|eom_id|>", "<|end|>",
                                            "<end_of_turn>", NULL};
    for (const char *const *e = eog_texts; *e; e++) {
        int32_t id = shoal__tok_lookup(t, *e, strlen(*e));
        if (id >= 0 && t->type[id] == SHOAL_TOKEN_CONTROL) add_eog(t, id);
    }

    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int c = 0; c < 324; c++) t->unbyte[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = shoal__byte_to_cp(b);
        t->unbyte[cp] = (int16_t)b;
        if (!spm) {
            char u[4];
            size_t ul = shoal__utf8_encode(cp, u);
            t->byte_id[b] = shoal__tok_lookup(t, u, ul);
        }
    }
    if (spm) {
        for (size_t i = 0; i < n; i++) {
            unsigned byte;
            if (t->type[i] == SHOAL_TOKEN_BYTE &&
                shoal__tok_is_byte_piece(shoal__tok_str(t, (int32_t)i), t->len[i], &byte) && t->byte_id[byte] < 0)
                t->byte_id[byte] = (int32_t)i;
        }
    }

    if (spm) {
        const char *sp = t->spm_ascii_space ? " " : "\xE2\x96\x81";
        size_t spl = strlen(sp);
        t->spm_split = 1;
        for (size_t i = 0; i < n && t->spm_split; i++) {
            const char *s = shoal__tok_str(t, (int32_t)i);
            size_t l = t->len[i], k = 0;
            while (k + spl <= l && !memcmp(s + k, sp, spl)) k += spl; /* a leading run is fine */
            if (k < l && memmem(s + k, l - k, sp, spl)) t->spm_split = 0;
        }
    }
    if ((rc = build_pairs(t, p, err, errcap))) goto fail;
    if (build_specials(t)) goto fail_nomem;
    *out = t;
    return SHOAL_OK;
fail_nomem:
    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", src);
fail:
    shoal_tokenizer_free(t);
    return rc;
}

void shoal_tokenizer_free(shoal_tokenizer *t) {
    if (!t) return;
    free(t->source);
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->slots);
    free(t->pairs);
    free(t->special);
    free(t);
}
