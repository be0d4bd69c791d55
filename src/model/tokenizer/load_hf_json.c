/* Hugging Face tokenizer.json with a BPE model. What is recognised:
 *  - byte-level: pre_tokenizer ByteLevel (use_regex: the GPT-2 rule), or a Sequence of a Split
 *    whose regex is exactly the GPT-2, Llama-3, Qwen2, Tekken or GPT-4o pattern (behavior Isolated) and a
 *    ByteLevel without regex, or a Sequence of Digits(individual_digits) and ByteLevel(use_regex)
 *    (StarCoder); model.ignore_merges; ByteLevel.add_prefix_space.
 *  - SentencePiece-style: normalizer Replace " " -> "▁" (with Prepend "▁" for the dummy
 *    prefix), or pre_tokenizer Metaspace; byte_fallback <0xHH> tokens; merges in rank order.
 *  - added_tokens: special -> control, else user-defined; lstrip / rstrip.
 *  - post_processor TemplateProcessing: a leading special token is BOS and add_bos, a trailing
 *    one EOS and add_eos.
 *  - normalizer NFC (Qwen2, Qwen3), NFD, NFKC, NFKD, alone or in a Sequence (with the SPM
 *    Prepend / Replace; consecutive forms fold into one): applied to the text between added
 *    tokens before pre-tokenization (normalize.c, Unicode 14.0 data). As in Hugging Face,
 *    added tokens are matched first; unlike it, an added token with "normalized": true is
 *    matched against the text as given, not against its normalized form.
 * Anything else is SHOAL_ERR_UNSUPPORTED, so a vocabulary is never encoded with rules it does
 * not have. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/json.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"

#define MAX_FILE ((size_t)1 << 30)

static const char pat_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char pat_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_tekken[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_gpt4o[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct hf {
    const char *path;
    char *err;
    size_t errcap;
    int byte_level, rule, prefix_space, split_seen, regex_in_bytelevel, digits;
    int spm_replace, spm_prepend, metaspace, metaspace_prefix;
    /* Unicode normalizers seen: any compatibility form, and whether the last one composes.
     * Consecutive forms fold into one: NFC after NFKD is NFKC, NFD after NFC is NFD, ... */
    int norm_seen, norm_compat, norm_compose;
} hf;

static int unsupported(hf *h, const char *what, const shoal__jv *type) {
    char name[64] = "?";
    if (type) shoal__json_str(type, name, sizeof name, NULL);
    return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED, "%s: %s \"%s\" is not supported",
                           h->path, what, name);
}

static int get_bool(const shoal__jv *obj, const char *key, int def) {
    int v;
    return shoal__json_bool(shoal__json_get(obj, key), &v) == SHOAL_OK ? v : def;
}

/* A pattern object {"Regex": "..."} or {"String": "..."}, unescaped into buf. */
static int pattern_text(const shoal__jv *pat, int *is_regex, char *buf, size_t cap) {
    const shoal__jv *r = shoal__json_get(pat, "Regex"), *s = shoal__json_get(pat, "String");
    *is_regex = r != NULL;
    size_t n;
    return shoal__json_str(r ? r : s, buf, cap, &n);
}

static int pre_tokenizer(hf *h, const shoal__jv *p, int depth) {
    if (!p || shoal__json_type(p) == SHOAL__JSON_NULL) return SHOAL_OK;
    const shoal__jv *type = shoal__json_get(p, "type");
    if (shoal__json_str_eq(type, "Sequence") && depth < 4) {
        const shoal__jv *list = shoal__json_get(p, "pretokenizers");
        for (const shoal__jv *c = shoal__json_first(list); c; c = shoal__json_next(c)) {
            int rc = pre_tokenizer(h, c, depth + 1);
            if (rc) return rc;
        }
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "Digits")) {
        /* Digits(individual_digits) before ByteLevel(use_regex): StarCoder's pre-tokenizer */
        if (!get_bool(p, "individual_digits", 0) || h->byte_level || h->split_seen || h->digits)
            return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                                   "%s: pre_tokenizer Digits: only individual_digits before ByteLevel is supported",
                                   h->path);
        h->digits = 1;
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "ByteLevel")) {
        h->byte_level = 1;
        h->prefix_space = get_bool(p, "add_prefix_space", 0);
        h->regex_in_bytelevel = get_bool(p, "use_regex", 1);
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "Split")) {
        char pat[1024];
        int is_regex = 0;
        if (h->split_seen || h->digits || pattern_text(shoal__json_get(p, "pattern"), &is_regex, pat, sizeof pat) ||
            !is_regex || !shoal__json_str_eq(shoal__json_get(p, "behavior"), "Isolated") ||
            get_bool(p, "invert", 0))
            return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                                   "%s: pre_tokenizer Split: only one isolating regex split is supported",
                                   h->path);
        h->split_seen = 1;
        if (!strcmp(pat, pat_gpt2)) h->rule = SHOAL__PRE_GPT2;
        else if (!strcmp(pat, pat_llama3)) h->rule = SHOAL__PRE_LLAMA3;
        else if (!strcmp(pat, pat_qwen2)) h->rule = SHOAL__PRE_QWEN2;
        else if (!strcmp(pat, pat_tekken)) h->rule = SHOAL__PRE_TEKKEN;
        else if (!strcmp(pat, pat_gpt4o)) h->rule = SHOAL__PRE_GPT4O;
        else
            return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                                   "%s: pre_tokenizer Split: regex \"%.80s\" is not one of the GPT-2, "
                                   "Llama-3, Qwen2, Tekken or GPT-4o rules", h->path, pat);
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "Metaspace")) {
        char rep[16];
        size_t n;
        const shoal__jv *r = shoal__json_get(p, "replacement");
        if (r && (shoal__json_str(r, rep, sizeof rep, &n) || strcmp(rep, "\xE2\x96\x81")))
            return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                                   "%s: pre_tokenizer Metaspace: only the replacement \"\xE2\x96\x81\" is supported",
                                   h->path);
        h->metaspace = 1;
        const shoal__jv *scheme = shoal__json_get(p, "prepend_scheme");
        h->metaspace_prefix = scheme ? !shoal__json_str_eq(scheme, "never") : get_bool(p, "add_prefix_space", 1);
        return SHOAL_OK;
    }
    return unsupported(h, "pre_tokenizer", type);
}

static int normalizer(hf *h, const shoal__jv *p, int depth) {
    if (!p || shoal__json_type(p) == SHOAL__JSON_NULL) return SHOAL_OK;
    const shoal__jv *type = shoal__json_get(p, "type");
    if (shoal__json_str_eq(type, "Sequence") && depth < 4) {
        const shoal__jv *list = shoal__json_get(p, "normalizers");
        for (const shoal__jv *c = shoal__json_first(list); c; c = shoal__json_next(c)) {
            int rc = normalizer(h, c, depth + 1);
            if (rc) return rc;
        }
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "Prepend") && shoal__json_str_eq(shoal__json_get(p, "prepend"), "\xE2\x96\x81")) {
        h->spm_prepend = 1;
        return SHOAL_OK;
    }
    if (shoal__json_str_eq(type, "Replace")) {
        char pat[16];
        int is_regex;
        if (!pattern_text(shoal__json_get(p, "pattern"), &is_regex, pat, sizeof pat) && !is_regex &&
            !strcmp(pat, " ") && shoal__json_str_eq(shoal__json_get(p, "content"), "\xE2\x96\x81")) {
            h->spm_replace = 1;
            return SHOAL_OK;
        }
        return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                               "%s: normalizer Replace: only \" \" -> \"\xE2\x96\x81\" is supported", h->path);
    }
    char form_name[8];
    size_t fl;
    int form = !type || shoal__json_str(type, form_name, sizeof form_name, &fl) ? -1 : shoal__norm_by_name(form_name);
    if (form > 0) {
        int compat = form == SHOAL__NORM_NFKC || form == SHOAL__NORM_NFKD;
        /* Replace " " -> "▁" is applied after normalization (encode.c), which is the same
         * only for the canonical forms: NFKC/NFKD turn U+00A0, U+3000, ... into ' ' */
        if (compat && h->spm_replace)
            return shoal__tok_fail(h->err, h->errcap, SHOAL_ERR_UNSUPPORTED,
                                   "%s: normalizer %s after Replace is not supported", h->path, form_name);
        h->norm_seen = 1;
        h->norm_compat |= compat;
        h->norm_compose = form == SHOAL__NORM_NFC || form == SHOAL__NORM_NFKC;
        return SHOAL_OK;
    }
    return unsupported(h, "normalizer", type);
}

/* TemplateProcessing (possibly inside a Sequence): a SpecialToken first is BOS, last is EOS. */
static void post_processor(const shoal__jv *p, char *bos, char *eos, size_t cap, int depth) {
    if (!p || depth > 4) return;
    const shoal__jv *type = shoal__json_get(p, "type");
    if (shoal__json_str_eq(type, "Sequence")) {
        for (const shoal__jv *c = shoal__json_first(shoal__json_get(p, "processors")); c; c = shoal__json_next(c))
            post_processor(c, bos, eos, cap, depth + 1);
        return;
    }
    if (!shoal__json_str_eq(type, "TemplateProcessing")) return;
    const shoal__jv *single = shoal__json_get(p, "single");
    size_t n = shoal__json_count(single);
    if (n < 2) return;
    const shoal__jv *first = shoal__json_get(shoal__json_first(single), "SpecialToken");
    const shoal__jv *last = shoal__json_get(shoal__json_at(single, n - 1), "SpecialToken");
    size_t len;
    if (first) shoal__json_str(shoal__json_get(first, "id"), bos, cap, &len);
    if (last) shoal__json_str(shoal__json_get(last, "id"), eos, cap, &len);
}

int shoal__tok_load_hf_json_mem(const char *text, size_t size, const char *path, shoal_tokenizer **out,
                                char *err, size_t errcap) {
    *out = NULL;
    shoal__json *doc = NULL;
    shoal__tok_strings strs = {0}, added = {0}, left = {0}, right = {0};
    int32_t *ids = NULL, *types = NULL;
    uint8_t *attrs = NULL;
    shoal_vocab_str *tokens = NULL, *ml = NULL, *mr = NULL;
    int64_t max_id = -1;
    int64_t *added_ids = NULL;
    int *added_special = NULL, *added_attr = NULL;
    int rc;
    char jerr[160];
    if ((rc = shoal__json_parse(text, size, &doc, jerr, sizeof jerr))) {
        rc = shoal__tok_fail(err, errcap, rc, "%s: %s", path, jerr);
        goto out;
    }
    const shoal__jv *root = shoal__json_root(doc);
    const shoal__jv *model = shoal__json_get(root, "model");
    if (!model) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: no \"model\" object", path);
        goto out;
    }
    hf h = {.path = path, .err = err, .errcap = errcap, .rule = SHOAL__PRE_NONE};
    const shoal__jv *mtype = shoal__json_get(model, "type");
    if (mtype && !shoal__json_str_eq(mtype, "BPE")) {
        rc = unsupported(&h, "model type", mtype);
        goto out;
    }
    const shoal__jv *csp = shoal__json_get(model, "continuing_subword_prefix"),
                    *eow = shoal__json_get(model, "end_of_word_suffix");
    if ((csp && shoal__json_type(csp) != SHOAL__JSON_NULL && !shoal__json_str_eq(csp, "")) ||
        (eow && shoal__json_type(eow) != SHOAL__JSON_NULL && !shoal__json_str_eq(eow, ""))) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                             "%s: model.continuing_subword_prefix / end_of_word_suffix are not supported", path);
        goto out;
    }
    if ((rc = pre_tokenizer(&h, shoal__json_get(root, "pre_tokenizer"), 0)) ||
        (rc = normalizer(&h, shoal__json_get(root, "normalizer"), 0)))
        goto out;
    int bpe = h.byte_level;
    if (bpe) {
        if (h.regex_in_bytelevel) {
            if (h.split_seen && h.rule != SHOAL__PRE_GPT2) {
                rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                                     "%s: a Split followed by ByteLevel(use_regex) is not supported", path);
                goto out;
            }
            h.rule = h.digits ? SHOAL__PRE_STARCODER : SHOAL__PRE_GPT2;
        } else if (h.digits) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                                 "%s: pre_tokenizer Digits is supported only before ByteLevel(use_regex)", path);
            goto out;
        }
    } else if (!h.spm_replace && !h.metaspace) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                             "%s: the BPE model is neither byte-level (ByteLevel) nor SentencePiece-style "
                             "(\"\xE2\x96\x81\" for spaces)", path);
        goto out;
    }

    char what[64];
    snprintf(what, sizeof what, "%s: model.vocab", path);
    if ((rc = shoal__tok_json_vocab(shoal__json_get(model, "vocab"), what, &strs, &ids, &max_id, err, errcap)))
        goto out;
    /* added tokens: their ids may lie past the model's vocabulary (Llama-3's 128000..) */
    const shoal__jv *added_list = shoal__json_get(root, "added_tokens");
    size_t n_added = shoal__json_count(added_list);
    if (n_added > SHOAL__TOK_MAX_TOKENS) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: too many added_tokens", path);
        goto out;
    }
    added_ids = malloc((n_added + 1) * sizeof *added_ids);
    added_special = malloc((n_added + 1) * sizeof *added_special);
    added_attr = malloc((n_added + 1) * sizeof *added_attr);
    if (!added_ids || !added_special || !added_attr) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t k = 0;
    for (const shoal__jv *a = shoal__json_first(added_list); a; a = shoal__json_next(a), k++) {
        int64_t id;
        if (shoal__json_int(shoal__json_get(a, "id"), &id) || id < 0 || id >= (int64_t)SHOAL__TOK_MAX_TOKENS) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: added_tokens[%zu].id is not an id", path, k);
            goto out;
        }
        snprintf(what, sizeof what, "%s: added_tokens[%zu].content", path, k);
        if ((rc = shoal__tok_json_string(shoal__json_get(a, "content"), what, &added, err, errcap)))
            goto out;
        added_ids[k] = id;
        added_special[k] = get_bool(a, "special", 0);
        added_attr[k] = (get_bool(a, "lstrip", 0) ? SHOAL__ATTR_LSTRIP : 0) |
                        (get_bool(a, "rstrip", 0) ? SHOAL__ATTR_RSTRIP : 0);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: the vocabulary is empty", path);
        goto out;
    }
    size_t n = (size_t)max_id + 1;
    if (n > 2 * (strs.n + n_added) + 65536) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: id %lld is far past the %zu tokens given",
                             path, (long long)max_id, strs.n + n_added);
        goto out;
    }
    tokens = calloc(n, sizeof *tokens);
    types = malloc(n * sizeof *types);
    attrs = calloc(n, 1);
    if (!tokens || !types || !attrs) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    int byte_fallback = get_bool(model, "byte_fallback", 0);
    char unk_text[256] = "";
    size_t unk_len = 0;
    const shoal__jv *unk_node = shoal__json_get(model, "unk_token");
    if (unk_node && shoal__json_str(unk_node, unk_text, sizeof unk_text, &unk_len)) {
        unk_text[0] = 0;
        unk_len = 0;
    }
    for (size_t i = 0; i < strs.n; i++) {
        if (tokens[ids[i]].ptr) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: model.vocab: id %d is given to two tokens",
                                 path, (int)ids[i]);
            goto out;
        }
        shoal__tok_strings_view(&strs, i, &tokens[ids[i]]);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned byte;
        types[i] = !tokens[i].ptr ? SHOAL_TOKEN_UNUSED
                   : (unk_len && tokens[i].len == unk_len && !memcmp(tokens[i].ptr, unk_text, unk_len))
                       ? SHOAL_TOKEN_UNKNOWN
                   : (!bpe && byte_fallback && shoal__tok_is_byte_piece(tokens[i].ptr, tokens[i].len, &byte))
                       ? SHOAL_TOKEN_BYTE
                       : SHOAL_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < n_added; i++) {
        shoal_vocab_str v;
        shoal__tok_strings_view(&added, i, &v);
        tokens[added_ids[i]] = v; /* the added token's text is the one that shows in text */
        types[added_ids[i]] = (unk_len && v.len == unk_len && !memcmp(v.ptr, unk_text, unk_len))
                                  ? SHOAL_TOKEN_UNKNOWN
                                  : added_special[i] ? SHOAL_TOKEN_CONTROL : SHOAL_TOKEN_USER_DEFINED;
        attrs[added_ids[i]] = (uint8_t)added_attr[i];
    }

    const shoal__jv *merges = shoal__json_get(model, "merges");
    k = 0;
    for (const shoal__jv *m = shoal__json_first(merges); m; m = shoal__json_next(m), k++) {
        if (k >= SHOAL__TOK_MAX_MERGES) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: more than %u merges", path, SHOAL__TOK_MAX_MERGES);
            goto out;
        }
        snprintf(what, sizeof what, "%s: model.merges[%zu]", path, k);
        if (shoal__json_type(m) == SHOAL__JSON_ARRAY) { /* newer form: ["left", "right"] */
            if (shoal__json_count(m) != 2) {
                rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: a merge needs two tokens", what);
                goto out;
            }
            if ((rc = shoal__tok_json_string(shoal__json_first(m), what, &left, err, errcap)) ||
                (rc = shoal__tok_json_string(shoal__json_next(shoal__json_first(m)), what, &right, err, errcap)))
                goto out;
            continue;
        }
        /* "left right": unescape once, then split */
        shoal__tok_strings one = {0};
        if ((rc = shoal__tok_json_string(m, what, &one, err, errcap))) goto out;
        size_t sp;
        if (!shoal__tok_split_merge(one.data, one.slen[0], &sp)) {
            shoal__tok_strings_free(&one);
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: a merge needs two tokens", what);
            goto out;
        }
        if (shoal__tok_strings_add(&left, one.data, sp) ||
            shoal__tok_strings_add(&right, one.data + sp + 1, one.slen[0] - sp - 1)) {
            shoal__tok_strings_free(&one);
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        shoal__tok_strings_free(&one);
    }
    ml = malloc((left.n ? left.n : 1) * sizeof *ml);
    mr = malloc((left.n ? left.n : 1) * sizeof *mr);
    if (!ml || !mr) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (size_t r = 0; r < left.n; r++) {
        shoal__tok_strings_view(&left, r, &ml[r]);
        shoal__tok_strings_view(&right, r, &mr[r]);
    }

    char bos_text[256] = "", eos_text[256] = "";
    post_processor(shoal__json_get(root, "post_processor"), bos_text, eos_text, sizeof bos_text, 0);
    shoal__tok_params prm;
    memset(&prm, 0, sizeof prm);
    prm.source = path;
    prm.kind = bpe ? SHOAL_TOKENIZER_BPE : SHOAL_TOKENIZER_SPM;
    prm.pre = bpe ? h.rule : SHOAL__PRE_NONE;
    prm.ignore_merges = bpe && get_bool(model, "ignore_merges", 0);
    prm.add_space_prefix = !bpe && (h.spm_prepend || (h.metaspace && h.metaspace_prefix));
    prm.bpe_prefix_space = bpe && h.prefix_space;
    prm.spm_by_rank = 1;
    if (h.norm_seen)
        prm.norm = h.norm_compose ? (h.norm_compat ? SHOAL__NORM_NFKC : SHOAL__NORM_NFC)
                                  : (h.norm_compat ? SHOAL__NORM_NFKD : SHOAL__NORM_NFD);
    prm.n_tokens = n;
    prm.tokens = tokens;
    prm.types = types;
    prm.attrs = attrs;
    prm.n_merges = left.n;
    prm.merge_left = ml;
    prm.merge_right = mr;
    prm.bos_id = prm.eos_id = prm.unk_id = prm.eot_id = -1;
    for (size_t i = 0; i < n && unk_len; i++)
        if (types[i] == SHOAL_TOKEN_UNKNOWN) {
            prm.unk_id = (int32_t)i;
            break;
        }
    prm.add_bos = bos_text[0] != 0;
    prm.add_eos = eos_text[0] != 0;
    /* the template names tokens by text; find their ids among the added tokens */
    for (size_t i = 0; i < n_added; i++) {
        shoal_vocab_str v;
        shoal__tok_strings_view(&added, i, &v);
        if (bos_text[0] && v.len == strlen(bos_text) && !memcmp(v.ptr, bos_text, v.len))
            prm.bos_id = (int32_t)added_ids[i];
        if (eos_text[0] && v.len == strlen(eos_text) && !memcmp(v.ptr, eos_text, v.len))
            prm.eos_id = (int32_t)added_ids[i];
    }
    rc = shoal__tok_build(&prm, out, err, errcap);
out:
    free(added_ids);
    free(added_special);
    free(added_attr);
    shoal__json_free(doc);
    shoal__tok_strings_free(&strs);
    shoal__tok_strings_free(&added);
    shoal__tok_strings_free(&left);
    shoal__tok_strings_free(&right);
    free(ids);
    free(types);
    free(attrs);
    free(tokens);
    free(ml);
    free(mr);
    return rc;
}

int shoal_tokenizer_load_hf_json(const char *path, shoal_tokenizer **out, char *err, size_t errcap) {
    if (out) *out = NULL;
    if (!path || !out) return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "tokenizer.json: bad arguments");
    char *text;
    size_t size;
    int rc = shoal__tok_read_file(path, MAX_FILE, &text, &size, err, errcap);
    if (rc) return rc;
    rc = shoal__tok_load_hf_json_mem(text, size, path, out, err, errcap);
    free(text);
    return rc;
}
