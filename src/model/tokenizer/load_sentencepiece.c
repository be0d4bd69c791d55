/* SentencePiece tokenizer.model: a protobuf ModelProto. Only what a BPE model needs is read:
 *   1 pieces (repeated SentencePiece { 1 piece: string, 2 score: float, 3 type: enum })
 *   2 trainer_spec { 3 model_type (2 = BPE), 40 unk_id, 41 bos_id, 42 eos_id }
 *   3 normalizer_spec { 1 name, 3 add_dummy_prefix (default true) }
 * Piece types use the numbering GGUF copied (1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte). Unigram models and normalizers other than "identity" are not supported.
 * Every varint, length and field is checked against the bytes that remain. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

#define MAX_FILE ((size_t)1 << 30)

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int varint(pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Reads a field key; for wire type 2 also its payload as a sub-buffer. Skips nothing. */
static int field(pb *b, uint32_t *num, int *wt, pb *sub, uint64_t *val) {
    uint64_t key;
    if (varint(b, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return varint(b, val);
    case 1:
        if (b->end - b->p < 8) return -1;
        *val = shoal__get_u64(b->p);
        b->p += 8;
        return 0;
    case 5:
        if (b->end - b->p < 4) return -1;
        *val = shoal__get_u32(b->p);
        b->p += 4;
        return 0;
    case 2: {
        uint64_t len;
        if (varint(b, &len) || len > (uint64_t)(b->end - b->p)) return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    }
    default: return -1; /* groups (3, 4) are not used by sentencepiece */
    }
}

static int32_t as_id(uint64_t v) { /* int32 fields: negative values come as 64-bit varints */
    int64_t s = (int64_t)v;
    return s < 0 || s > INT32_MAX ? -1 : (int32_t)s;
}

int shoal__tok_load_sentencepiece_mem(const void *data, size_t size, const char *path, shoal_tokenizer **out,
                                      char *err, size_t errcap) {
    *out = NULL;
    pb b = {data, (const uint8_t *)data + size};
    size_t n = 0, cap = 0;
    shoal_vocab_str *tokens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int rc = SHOAL_OK;
    uint64_t model_type = 1; /* sentencepiece's default is UNIGRAM */
    int add_dummy_prefix = 1;
    int32_t unk = 0, bos = 1, eos = 2; /* trainer_spec defaults */
    char norm[32] = "";
    while (b.p < b.end) {
        uint32_t num;
        int wt;
        pb sub = {0};
        uint64_t val = 0;
        if (field(&b, &num, &wt, &sub, &val)) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: ModelProto: bad field at byte %zu", path,
                                 (size_t)(b.p - (const uint8_t *)data));
            goto out;
        }
        if (num == 1 && wt == 2) { /* a piece */
            if (n == cap) {
                if (n >= SHOAL__TOK_MAX_TOKENS) {
                    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: more than %u pieces", path,
                                         SHOAL__TOK_MAX_TOKENS);
                    goto out;
                }
                cap = cap ? cap * 2 : 1024;
                shoal_vocab_str *nt = realloc(tokens, cap * sizeof *nt);
                if (nt) tokens = nt;
                float *ns = realloc(scores, cap * sizeof *ns);
                if (ns) scores = ns;
                int32_t *ny = realloc(types, cap * sizeof *ny);
                if (ny) types = ny;
                if (!nt || !ns || !ny) {
                    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
                    goto out;
                }
            }
            tokens[n] = (shoal_vocab_str){"", 0};
            scores[n] = 0;
            types[n] = SHOAL_TOKEN_NORMAL;
            while (sub.p < sub.end) {
                uint32_t f;
                int w;
                pb s = {0};
                uint64_t v = 0;
                if (field(&sub, &f, &w, &s, &v)) {
                    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: pieces[%zu]: bad field", path, n);
                    goto out;
                }
                if (f == 1 && w == 2) tokens[n] = (shoal_vocab_str){(const char *)s.p, (size_t)(s.end - s.p)};
                else if (f == 2 && w == 5) {
                    uint32_t bits = (uint32_t)v;
                    memcpy(&scores[n], &bits, 4);
                } else if (f == 3 && w == 0) {
                    if (v < 1 || v > 6) {
                        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                             "%s: pieces[%zu].type %llu is not a piece type", path, n,
                                             (unsigned long long)v);
                        goto out;
                    }
                    types[n] = (int32_t)v;
                }
            }
            n++;
        } else if (num == 2 && wt == 2) { /* trainer_spec */
            while (sub.p < sub.end) {
                uint32_t f;
                int w;
                pb s;
                uint64_t v = 0;
                if (field(&sub, &f, &w, &s, &v)) {
                    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: trainer_spec: bad field", path);
                    goto out;
                }
                if (w != 0) continue;
                if (f == 3) model_type = v;
                else if (f == 40) unk = as_id(v);
                else if (f == 41) bos = as_id(v);
                else if (f == 42) eos = as_id(v);
            }
        } else if (num == 3 && wt == 2) { /* normalizer_spec */
            while (sub.p < sub.end) {
                uint32_t f;
                int w;
                pb s = {0};
                uint64_t v = 0;
                if (field(&sub, &f, &w, &s, &v)) {
                    rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: normalizer_spec: bad field", path);
                    goto out;
                }
                if (f == 1 && w == 2) {
                    size_t l = (size_t)(s.end - s.p);
                    if (l >= sizeof norm) l = sizeof norm - 1;
                    memcpy(norm, s.p, l);
                    norm[l] = 0;
                } else if (f == 3 && w == 0) {
                    add_dummy_prefix = v != 0;
                }
            }
        }
    }
    if (model_type != 2) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                             "%s: trainer_spec.model_type %llu is not BPE (2); unigram models are not supported", path,
                             (unsigned long long)model_type);
        goto out;
    }
    if (norm[0] && strcmp(norm, "identity")) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", path, norm);
        goto out;
    }
    shoal__tok_params prm;
    memset(&prm, 0, sizeof prm);
    prm.source = path;
    prm.kind = SHOAL_TOKENIZER_SPM;
    prm.pre = SHOAL__PRE_NONE;
    prm.add_space_prefix = add_dummy_prefix;
    prm.n_tokens = n;
    prm.tokens = tokens;
    prm.scores = scores;
    prm.types = types;
    /* ids sentencepiece says are out of this model's range (or -1) mean "none" */
    prm.unk_id = unk >= 0 && (size_t)unk < n ? unk : -1;
    prm.bos_id = bos >= 0 && (size_t)bos < n ? bos : -1;
    prm.eos_id = eos >= 0 && (size_t)eos < n ? eos : -1;
    prm.eot_id = -1;
    prm.add_bos = 1;
    prm.add_eos = 0;
    rc = shoal__tok_build(&prm, out, err, errcap);
out:
    free(tokens);
    free(scores);
    free(types);
    return rc;
}

int shoal_tokenizer_load_sentencepiece(const char *path, shoal_tokenizer **out, char *err, size_t errcap) {
    if (out) *out = NULL;
    if (!path || !out) return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "tokenizer.model: bad arguments");
    char *data;
    size_t size;
    int rc = shoal__tok_read_file(path, MAX_FILE, &data, &size, err, errcap);
    if (rc) return rc;
    rc = shoal__tok_load_sentencepiece_mem(data, size, path, out, err, errcap);
    free(data);
    return rc;
}
