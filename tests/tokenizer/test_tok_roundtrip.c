/* Encode-then-decode gives the input back, for random text over many scripts (multi-byte
 * letters, CJK, emoji with ZWJ and variation selectors, combining marks, Khmer, runs of mixed
 * whitespace, contractions, digit runs) and for random bytes that are not UTF-8; streaming
 * decode (one token at a time) concatenates to the whole decode and, for valid text, releases
 * only valid UTF-8 at every step.
 *
 *   test_tok_roundtrip VOCAB      VOCAB: gpt2 | llama3 | qwen2 | llama2-json | llama2-model | llama2-gguf | tok512
 *
 * SPM vocabularies cannot round-trip U+2581 itself (it is their space symbol; Hugging Face and
 * llama.cpp behave the same), so it is left out of their text. */
#include <stdint.h>

#include "tests/tokenizer/tok_check.h"

static uint64_t rng_state = 0x5eed;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t pick(uint32_t lo, uint32_t hi) { return lo + (uint32_t)(rng() % (hi - lo + 1)); }

static size_t put_cp(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static const char *const words[] = {"the", "Hello", "'s", "'RE", "'ll", "don't", "3333", "12345678",
                                    ("C\xe1\xbb\xad" "a"), "\xd0\x91\xd1\x8a\xd0\xbb", "apple", "1314151",
                                    "......", "!!!", "```", "<s>", "<|endoftext|>", "\xe2\x9c\x85"};

/* One random unit of text into o (at most 32 bytes). */
static size_t rand_unit(char *o, int spm) {
    uint32_t cp;
    switch (rng() % 16) {
    case 0: case 1: case 2: /* ASCII printable */
        o[0] = (char)pick(0x21, 0x7E);
        return 1;
    case 3: { /* whitespace runs, mixed */
        static const uint32_t ws[] = {' ', ' ', ' ', '\t', '\n', '\r', '\v', '\f', 0xA0, 0x3000, 0x2009, 0x85};
        size_t k = 0, n = 1 + rng() % 5;
        for (size_t i = 0; i < n; i++) k += put_cp(o + k, ws[rng() % (sizeof ws / sizeof ws[0])]);
        return k;
    }
    case 4: { /* a word */
        const char *w = words[rng() % (sizeof words / sizeof words[0])];
        size_t l = strlen(w);
        memcpy(o, w, l);
        return l;
    }
    case 5: cp = pick(0xC0, 0x24F); break;      /* Latin-1 and Latin Extended */
    case 6: cp = pick(0x0300, 0x036F); break;   /* combining marks */
    case 7: cp = pick(0x4E00, 0x9FFF); break;   /* CJK */
    case 8: cp = pick(0xAC00, 0xD7A3); break;   /* Hangul */
    case 9: cp = pick(0x1780, 0x17FF); break;   /* Khmer */
    case 10: { /* emoji, sometimes a ZWJ sequence with a variation selector */
        size_t k = put_cp(o, pick(0x1F300, 0x1F64F));
        if (rng() % 2) {
            k += put_cp(o + k, 0x200D);
            k += put_cp(o + k, pick(0x1F300, 0x1F64F));
            k += put_cp(o + k, 0xFE0F);
        }
        return k;
    }
    case 11: cp = pick(0x0370, 0x04FF); break;  /* Greek, Cyrillic */
    case 12: cp = pick(0x0600, 0x097F); break;  /* Arabic .. Devanagari */
    case 13: cp = pick(0x2000, 0x2BFF); break;  /* punctuation, symbols, arrows, U+2581 block */
    case 14: cp = pick(0x10000, 0x10FFFF); break; /* anything astral */
    default: cp = pick(0x80, 0xFFFF); break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;
    if (spm && cp == 0x2581) cp = 0x2582;
    return put_cp(o, cp);
}

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] > 0x8F))
            return 0;
        i += l;
    }
    return 1;
}

typedef struct bufs {
    int32_t *ids;
    size_t ids_cap;
    char *back, *stream;
    size_t cap;
} bufs;

/* Encodes text, decodes it whole and streaming; returns 1 when everything agrees. */
static int roundtrip(const shoal_tokenizer *tok, const char *text, size_t len, int text_valid, bufs *b,
                     size_t *n_tokens) {
    size_t n = 0, bn = 0, sn = 0;
    int rc = shoal_tokenizer_encode(tok, text, len, 0, b->ids, b->ids_cap, &n);
    if (rc) {
        fprintf(stderr, "encode failed: %s\n", shoal_status_str(rc));
        return 0;
    }
    *n_tokens += n;
    rc = shoal_tokenizer_decode(tok, b->ids, n, 0, b->back, b->cap, &bn);
    if (rc || bn != len || memcmp(b->back, text, len)) {
        size_t at = 0;
        while (at < len && at < bn && b->back[at] == text[at]) at++;
        fprintf(stderr, "round trip differs at byte %zu of %zu (decoded %zu bytes)\n", at, len, bn);
        return 0;
    }
    shoal_tokenizer_decoder *d = NULL;
    if (shoal_tokenizer_decoder_new(tok, 0, &d)) return 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t pl;
        if (shoal_tokenizer_decoder_push(d, b->ids[i], &piece, &pl)) ok = 0;
        if (text_valid && !valid_utf8((const unsigned char *)piece, pl)) {
            fprintf(stderr, "decoder released an incomplete character at token %zu\n", i);
            ok = 0;
        }
        memcpy(b->stream + sn, piece, pl);
        sn += pl;
    }
    const char *rest;
    size_t rl;
    if (shoal_tokenizer_decoder_flush(d, &rest, &rl)) ok = 0;
    if (text_valid && rl) {
        fprintf(stderr, "decoder held %zu bytes of a valid text until the end\n", rl);
        ok = 0;
    }
    memcpy(b->stream + sn, rest, rl);
    sn += rl;
    shoal_tokenizer_decoder_free(d);
    if (sn != bn || memcmp(b->stream, b->back, bn)) {
        fprintf(stderr, "streaming decode differs from whole decode\n");
        ok = 0;
    }
    return ok;
}

static int load(const char *name, shoal_tokenizer **tok, char *err, size_t errcap) {
    char a[1024], b[1024];
    if (!strcmp(name, "gpt2"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/gpt2/encoder.json"),
                                               testdata_path(b, sizeof b, "tokenizers/gpt2/vocab.bpe"), "gpt-2",
                                               tok, err, errcap);
    if (!strcmp(name, "llama3"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/llama3/encoder.json"),
                                               testdata_path(b, sizeof b, "tokenizers/llama3/vocab.bpe"),
                                               "llama-bpe", tok, err, errcap);
    if (!strcmp(name, "qwen2"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/qwen2/vocab.json"),
                                               testdata_path(b, sizeof b, "tokenizers/qwen2/merges.txt"), "qwen2",
                                               tok, err, errcap);
    if (!strcmp(name, "llama2-json"))
        return shoal_tokenizer_load_hf_json(testdata_path(a, sizeof a, "tokenizers/llama2/tokenizer.json"), tok,
                                            err, errcap);
    if (!strcmp(name, "llama2-model"))
        return shoal_tokenizer_load_sentencepiece(testdata_path(a, sizeof a, "tokenizers/llama2/tokenizer.model"), tok,
                                                  err, errcap);
    if (!strcmp(name, "llama2-gguf"))
        return shoal_tokenizer_load_gguf(testdata_path(a, sizeof a, "gguf/llama-2-tiny-random.gguf"), tok, err,
                                         errcap);
    if (!strcmp(name, "tok512"))
        return shoal_tokenizer_load_llama2c(testdata_path(a, sizeof a, "stories260K/tok512.bin"), 512, tok, err,
                                            errcap);
    return SHOAL_ERR_INVALID;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VOCAB\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    shoal_tokenizer *tok = NULL;
    char err[512] = "";
    int rc = load(name, &tok, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) return check_report(name);
    int spm = shoal_tokenizer_get_kind(tok) == SHOAL_TOKENIZER_SPM;

    bufs b;
    b.cap = 1 << 20;
    b.ids_cap = b.cap;
    b.ids = malloc(b.ids_cap * sizeof *b.ids);
    b.back = malloc(b.cap);
    b.stream = malloc(b.cap);
    char *text = malloc(b.cap);
    size_t n_ok = 0, n_cases = 0, n_tokens = 0, n_bytes = 0;

    /* 400 short texts, then 4 long ones (one word of 60000 letters for the BPE merge queue) */
    for (int c = 0; c < 404; c++) {
        size_t len = 0, units = c < 400 ? 1 + rng() % 60 : 6000;
        for (size_t u = 0; u < units; u++) len += rand_unit(text + len, spm);
        if (c == 403) {
            len = 60000;
            for (size_t i = 0; i < len; i++) text[i] = (char)('a' + rng() % 3);
        }
        n_cases++;
        n_bytes += len;
        if (roundtrip(tok, text, len, 1, &b, &n_tokens)) n_ok++;
        else {
            fprintf(stderr, "%s: text case %d failed: \"%.*s\"\n", name, c, (int)(len < 200 ? len : 200), text);
            check_failures++;
        }
    }
    /* 100 random byte strings, mostly not UTF-8: still encoded byte by byte and given back */
    for (int c = 0; c < 100; c++) {
        size_t len = 1 + rng() % 40;
        for (size_t i = 0; i < len; i++) text[i] = (char)rng();
        if (spm) /* keep U+2581 out here too */
            for (size_t i = 0; i + 2 < len; i++)
                if (!memcmp(text + i, "\xE2\x96\x81", 3)) text[i] = 'x';
        n_cases++;
        n_bytes += len;
        if (roundtrip(tok, text, len, 0, &b, &n_tokens)) n_ok++;
        else {
            fprintf(stderr, "%s: byte case %d failed\n", name, c);
            check_failures++;
        }
    }
    /* random id sequences: the streaming decoder still concatenates to the whole decode */
    size_t vs = shoal_tokenizer_vocab_size(tok);
    for (int c = 0; c < 200; c++) {
        size_t n = 1 + rng() % 30, bn = 0, sn = 0;
        for (size_t i = 0; i < n; i++) b.ids[i] = (int32_t)(rng() % vs);
        CHECK_RC(shoal_tokenizer_decode(tok, b.ids, n, 0, b.back, b.cap, &bn), SHOAL_OK, "decode");
        shoal_tokenizer_decoder *d = NULL;
        CHECK_RC(shoal_tokenizer_decoder_new(tok, 0, &d), SHOAL_OK, "decoder");
        for (size_t i = 0; d && i < n; i++) {
            const char *p;
            size_t pl;
            CHECK_RC(shoal_tokenizer_decoder_push(d, b.ids[i], &p, &pl), SHOAL_OK, "push");
            memcpy(b.stream + sn, p, pl);
            sn += pl;
        }
        const char *p;
        size_t pl;
        if (d) {
            CHECK_RC(shoal_tokenizer_decoder_flush(d, &p, &pl), SHOAL_OK, "flush");
            memcpy(b.stream + sn, p, pl);
            sn += pl;
        }
        shoal_tokenizer_decoder_free(d);
        CHECK(sn == bn && !memcmp(b.stream, b.back, bn));
    }
    fprintf(stderr, "%s: %zu/%zu inputs round-trip (%zu bytes, %zu tokens)\n", name, n_ok, n_cases, n_bytes,
            n_tokens);
    free(b.ids);
    free(b.back);
    free(b.stream);
    free(text);
    shoal_tokenizer_free(tok);
    return check_report(name);
}
