/* Shared by the tokenizer fuzz targets: once a fuzzed file has loaded, use the tokenizer the
 * way the engine does and check the invariants that must hold for any vocabulary. A broken
 * invariant aborts, which the driver (or libFuzzer) reports as a crash. */
#ifndef SHOAL_FUZZ_TOK_COMMON_H
#define SHOAL_FUZZ_TOK_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/tokenizer.h"

#define FUZZ_MAX_IDS 8192

/* Streaming decode of ids must concatenate to the whole decode. */
static inline void fuzz_tok_check_stream(const shoal_tokenizer *t, const int32_t *ids, size_t n, unsigned flags) {
    size_t need = 0;
    int rc = shoal_tokenizer_decode(t, ids, n, flags, NULL, 0, &need);
    if (rc != SHOAL_OK && rc != SHOAL_ERR_TRUNCATED) abort();
    char *whole = malloc(need + 1), *stream = malloc(need + 1);
    if (!whole || !stream) abort();
    size_t got = 0, sn = 0;
    if (shoal_tokenizer_decode(t, ids, n, flags, whole, need, &got) != SHOAL_OK || got != need) abort();
    shoal_tokenizer_decoder *d = NULL;
    if (shoal_tokenizer_decoder_new(t, flags, &d) != SHOAL_OK) abort();
    const char *p;
    size_t pl;
    for (size_t i = 0; i < n; i++) {
        if (shoal_tokenizer_decoder_push(d, ids[i], &p, &pl) != SHOAL_OK || sn + pl > need) abort();
        memcpy(stream + sn, p, pl);
        sn += pl;
    }
    if (shoal_tokenizer_decoder_flush(d, &p, &pl) != SHOAL_OK || sn + pl != need) abort();
    memcpy(stream + sn, p, pl);
    shoal_tokenizer_decoder_free(d);
    if (memcmp(stream, whole, need)) abort();
    free(whole);
    free(stream);
}

/* Encodes text with flags; every id must be in range; decode and stream must agree. */
static inline void fuzz_tok_encode(const shoal_tokenizer *t, const char *text, size_t len, unsigned flags) {
    static int32_t ids[FUZZ_MAX_IDS];
    size_t n = 0;
    int rc = shoal_tokenizer_encode(t, text, len, flags, ids, FUZZ_MAX_IDS, &n);
    if (rc == SHOAL_ERR_TRUNCATED) n = FUZZ_MAX_IDS;
    else if (rc != SHOAL_OK) abort();
    size_t vs = shoal_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vs) abort();
    fuzz_tok_check_stream(t, ids, n, 0);
    fuzz_tok_check_stream(t, ids, n, SHOAL_DECODE_SPECIAL);
}

/* What a fuzzed vocabulary gets once it has loaded. */
static inline void fuzz_tok_exercise(const shoal_tokenizer *t, const uint8_t *data, size_t size) {
    static const char sample[] = "Hello world! 3333 ' era \xF0\x9F\xA6\x99 caf\xC3\xA9  \n\t<s></s><|endoftext|>";
    fuzz_tok_encode(t, sample, sizeof sample - 1, 0);
    fuzz_tok_encode(t, sample, sizeof sample - 1, SHOAL_TOKENIZE_PARSE_SPECIAL | SHOAL_TOKENIZE_ADD_SPECIAL);
    fuzz_tok_encode(t, (const char *)data, size < 512 ? size : 512, SHOAL_TOKENIZE_ADD_BOS);
    size_t vs = shoal_tokenizer_vocab_size(t);
    char piece[16];
    for (size_t i = 0; i < vs && i < 4096; i++) {
        size_t n;
        int rc = shoal_tokenizer_token_piece(t, (int32_t)i, SHOAL_DECODE_SPECIAL, piece, sizeof piece, &n);
        if (rc != SHOAL_OK && rc != SHOAL_ERR_TRUNCATED) abort();
        size_t tl;
        const char *s = shoal_tokenizer_token_text(t, (int32_t)i, &tl);
        if (!s || shoal_tokenizer_token_type(t, (int32_t)i) == SHOAL_TOKEN_UNDEFINED) abort();
        if (tl && shoal_tokenizer_token_to_id(t, s, tl) < 0) abort();
    }
    if (shoal_tokenizer_token_piece(t, (int32_t)vs, 0, piece, sizeof piece, &(size_t){0}) != SHOAL_ERR_INVALID) abort();
}

#endif
