/* GPT-2-style vocabulary files: a JSON object of token ids (encoder.json / vocab.json) and a
 * merges text (vocab.bpe / merges.txt: an optional "#version" first line, then one
 * "left right" pair per line in rank order). */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/json.h"
#include "model/tokenizer/tok_internal.h"

#define MAX_FILE ((size_t)1 << 30)

/* Appends every merge line of text to left/right. Blank lines are skipped; a line without a
 * space after its first byte is a format error naming its line number. */
static int read_merges(const char *path, const char *text, size_t size, shoal__tok_strings *left,
                       shoal__tok_strings *right, char *err, size_t errcap) {
    size_t pos = 0, line = 0;
    while (pos < size) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - s) : size - pos;
        pos += len + (nl != NULL);
        line++;
        if (len && s[len - 1] == '\r') len--;
        if (line == 1 && len >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (!len) continue;
        size_t sp;
        if (!shoal__tok_split_merge(s, len, &sp))
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: line %zu: a merge needs two tokens",
                                   path, line);
        if (sp > SHOAL__TOK_MAX_TOKEN_LEN || len - sp - 1 > SHOAL__TOK_MAX_TOKEN_LEN)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: line %zu: token longer than %u bytes",
                                   path, line, SHOAL__TOK_MAX_TOKEN_LEN);
        if (left->n >= SHOAL__TOK_MAX_MERGES)
            return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: more than %u merges", path,
                                   SHOAL__TOK_MAX_MERGES);
        if (shoal__tok_strings_add(left, s, sp) || shoal__tok_strings_add(right, s + sp + 1, len - sp - 1))
            return shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
    }
    return SHOAL_OK;
}

static int looks_control(const char *s, size_t n) { /* "<|endoftext|>", "<|im_start|>" */
    return n >= 4 && s[0] == '<' && s[1] == '|' && s[n - 2] == '|' && s[n - 1] == '>';
}

int shoal__tok_load_gpt2_mem(const char *vtext, size_t vsize, const char *vocab_path, const char *mtext,
                             size_t msize, const char *merges_path, const char *pre, shoal_tokenizer **out,
                             char *err, size_t errcap) {
    *out = NULL;
    int ignore_merges = 0;
    int rule = shoal__tok_pre_by_name(pre, &ignore_merges, vocab_path, err, errcap);
    if (rule < 0) return SHOAL_ERR_UNSUPPORTED;
    shoal__json *doc = NULL;
    shoal__tok_strings strs = {0}, left = {0}, right = {0};
    int32_t *ids = NULL, *types = NULL;
    shoal_vocab_str *tokens = NULL, *ml = NULL, *mr = NULL;
    int64_t max_id;
    int rc;
    char jerr[160];
    if ((rc = shoal__json_parse(vtext, vsize, &doc, jerr, sizeof jerr))) {
        rc = shoal__tok_fail(err, errcap, rc, "%s: %s", vocab_path, jerr);
        goto out;
    }
    if ((rc = shoal__tok_json_vocab(shoal__json_root(doc), vocab_path, &strs, &ids, &max_id, err, errcap)))
        goto out;
    if (max_id < 0) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: the vocabulary is empty", vocab_path);
        goto out;
    }
    size_t n = (size_t)max_id + 1;
    if (n > 2 * strs.n + 65536) { /* a few holes are fine; a 20-byte file must not cost 256 MB */
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: id %lld is far past the %zu tokens given",
                             vocab_path, (long long)max_id, strs.n);
        goto out;
    }
    tokens = calloc(n, sizeof *tokens); /* ids nobody names stay NULL: unused holes */
    types = malloc(n * sizeof *types);
    if (!tokens || !types) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", vocab_path);
        goto out;
    }
    for (size_t k = 0; k < strs.n; k++) {
        if (tokens[ids[k]].ptr) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: id %d is given to two tokens",
                                 vocab_path, (int)ids[k]);
            goto out;
        }
        shoal__tok_strings_view(&strs, k, &tokens[ids[k]]);
    }
    for (size_t i = 0; i < n; i++)
        types[i] = !tokens[i].ptr ? SHOAL_TOKEN_UNUSED
                   : looks_control(tokens[i].ptr, tokens[i].len) ? SHOAL_TOKEN_CONTROL
                                                                 : SHOAL_TOKEN_NORMAL;
    if ((rc = read_merges(merges_path, mtext, msize, &left, &right, err, errcap))) goto out;
    ml = malloc((left.n ? left.n : 1) * sizeof *ml);
    mr = malloc((left.n ? left.n : 1) * sizeof *mr);
    if (!ml || !mr) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", merges_path);
        goto out;
    }
    for (size_t r = 0; r < left.n; r++) {
        shoal__tok_strings_view(&left, r, &ml[r]);
        shoal__tok_strings_view(&right, r, &mr[r]);
    }
    shoal__tok_params prm;
    memset(&prm, 0, sizeof prm);
    prm.source = vocab_path;
    prm.kind = SHOAL_TOKENIZER_BPE;
    prm.pre = rule;
    prm.ignore_merges = ignore_merges;
    prm.n_tokens = n;
    prm.tokens = tokens;
    prm.types = types;
    prm.n_merges = left.n;
    prm.merge_left = ml;
    prm.merge_right = mr;
    prm.bos_id = prm.eos_id = prm.unk_id = prm.eot_id = -1;
    prm.add_bos = 0;
    prm.add_eos = 0;
    rc = shoal__tok_build(&prm, out, err, errcap);
out:
    shoal__json_free(doc);
    shoal__tok_strings_free(&strs);
    shoal__tok_strings_free(&left);
    shoal__tok_strings_free(&right);
    free(ids);
    free(types);
    free(tokens);
    free(ml);
    free(mr);
    return rc;
}

int shoal_tokenizer_load_gpt2_files(const char *vocab_path, const char *merges_path, const char *pre,
                                    shoal_tokenizer **out, char *err, size_t errcap) {
    if (out) *out = NULL;
    if (!vocab_path || !merges_path || !out)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "gpt2 files: bad arguments");
    char *vtext = NULL, *mtext = NULL;
    size_t vsize, msize;
    int rc;
    if (!(rc = shoal__tok_read_file(vocab_path, MAX_FILE, &vtext, &vsize, err, errcap)) &&
        !(rc = shoal__tok_read_file(merges_path, MAX_FILE, &mtext, &msize, err, errcap)))
        rc = shoal__tok_load_gpt2_mem(vtext, vsize, vocab_path, mtext, msize, merges_path, pre, out, err, errcap);
    free(vtext);
    free(mtext);
    return rc;
}
