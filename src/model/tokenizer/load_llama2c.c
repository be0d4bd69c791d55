/* llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score, int32 length, bytes
 * (little-endian). Spaces are stored as ' ' (export.py replaced "▁"), so this vocabulary's space
 * symbol is ' '; token 0 is <unk>, 1 BOS ("\n<s>\n" in tok512.bin), 2 EOS. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

#define MAX_FILE ((size_t)1 << 30)

int shoal__tok_load_llama2c_mem(const void *bytes, size_t size, const char *path, int vocab_size,
                                shoal_tokenizer **out, char *err, size_t errcap) {
    *out = NULL;
    if ((unsigned)vocab_size > SHOAL__TOK_MAX_TOKENS)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID,
                               "%s: vocab_size %d exceeds the limit of %u", path, vocab_size,
                               SHOAL__TOK_MAX_TOKENS);
    int rc;
    const char *data = bytes;
    const unsigned char *p = (const unsigned char *)data;
    shoal_vocab_str *tokens = NULL;
    float *scores = NULL;
    if (size < 4) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: max_token_length: file ends after %zu bytes",
                             path, size);
        goto out;
    }
    int32_t max_len = (int32_t)shoal__get_u32(p);
    if (max_len < 1 || (uint32_t)max_len > SHOAL__TOK_MAX_TOKEN_LEN) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: max_token_length %d is not in [1, %u]",
                             path, (int)max_len, SHOAL__TOK_MAX_TOKEN_LEN);
        goto out;
    }
    /* Without a count, each token takes at least 8 bytes: that bounds the arrays. */
    size_t n = vocab_size ? (size_t)vocab_size : (size - 4) / 8;
    if (!vocab_size && n > SHOAL__TOK_MAX_TOKENS) n = SHOAL__TOK_MAX_TOKENS;
    tokens = malloc((n ? n : 1) * sizeof *tokens);
    scores = malloc((n ? n : 1) * sizeof *scores);
    if (!tokens || !scores) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t pos = 4, k = 0;
    for (; k < n; k++) {
        if (!vocab_size && pos == size) break;
        if (size - pos < 8) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                 "%s: token %zu: file ends inside its score/length (offset %zu)", path,
                                 k, pos);
            goto out;
        }
        uint32_t bits = shoal__get_u32(p + pos);
        memcpy(&scores[k], &bits, sizeof bits);
        int32_t len = (int32_t)shoal__get_u32(p + pos + 4);
        pos += 8;
        if (len < 0 || len > max_len) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                 "%s: token %zu: length %d is not in [0, max_token_length %d]", path, k,
                                 (int)len, (int)max_len);
            goto out;
        }
        if ((size_t)len > size - pos) {
            rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                 "%s: token %zu: length %d runs past the end of the file", path, k,
                                 (int)len);
            goto out;
        }
        tokens[k].ptr = data + pos;
        tokens[k].len = (size_t)len;
        pos += (size_t)len;
    }
    if (k == 0) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: no tokens", path);
        goto out;
    }
    shoal__tok_params prm;
    memset(&prm, 0, sizeof prm);
    prm.source = path;
    prm.kind = SHOAL_TOKENIZER_SPM;
    prm.pre = SHOAL__PRE_NONE;
    prm.add_space_prefix = 1; /* llama2.c's dummy prefix: a " " token before the text */
    prm.spm_ascii_space = 1;
    prm.n_tokens = k;
    prm.tokens = tokens;
    prm.scores = scores;
    /* the fixed ids of llama2.c (its texts are "\n<s>\n", so no lookup by text would find them) */
    prm.unk_id = k > 0 ? 0 : -1;
    prm.bos_id = k > 1 ? 1 : -1;
    prm.eos_id = k > 2 ? 2 : -1;
    prm.eot_id = -1;
    prm.add_bos = 1;
    prm.add_eos = 0;
    rc = shoal__tok_build(&prm, out, err, errcap);
out:
    free(tokens);
    free(scores);
    return rc;
}

int shoal_tokenizer_load_llama2c(const char *path, int vocab_size, shoal_tokenizer **out, char *err,
                                 size_t errcap) {
    if (out) *out = NULL;
    if (!path || !out || vocab_size < 0)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "tokenizer.bin: bad arguments");
    char *data;
    size_t size;
    int rc = shoal__tok_read_file(path, MAX_FILE, &data, &size, err, errcap);
    if (rc) return rc;
    rc = shoal__tok_load_llama2c_mem(data, size, path, vocab_size, out, err, errcap);
    free(data);
    return rc;
}
