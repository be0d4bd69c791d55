/* Tokenizer API contracts: known ids, buffer sizing, special tokens, the SPM leading-space
 * rule, streaming of split characters, the llama2.c tokenizer against a literal port of
 * llama2.c's encode(), stories260K's reference generation decoded with tok512.bin, and
 * malformed files rejected with SHOAL_ERR_FORMAT and a message naming file and field. */
#define _GNU_SOURCE
#include <stdint.h>
#include <unistd.h>

#include "tests/tokenizer/tok_check.h"

static char tmpdir[256];

static shoal_tokenizer *load_gpt2(void) {
    char a[1024], b[1024], err[512] = "";
    shoal_tokenizer *t = NULL;
    int rc = shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/gpt2/encoder.json"),
                                             testdata_path(b, sizeof b, "tokenizers/gpt2/vocab.bpe"), NULL, &t,
                                             err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    return t;
}

static int ids_eq(const int32_t *got, size_t n, const int32_t *want, size_t nw) {
    if (n != nw || memcmp(got, want, n * sizeof *got)) {
        fprintf(stderr, "  ids:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)got[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    return 1;
}

static void test_known_ids(void) {
    static const int32_t want[] = {1, 306, 4658, 278, 6593, 310, 2834, 338};
    const char *text = "I believe the meaning of life is";
    const char *files[] = {"tokenizers/llama2/tokenizer.json", "gguf/llama-2-tiny-random.gguf",
                           "tokenizers/llama2/tokenizer.model"};
    for (int f = 0; f < 3; f++) {
        char p[1024], err[512] = "";
        shoal_tokenizer *t = NULL;
        testdata_path(p, sizeof p, files[f]);
        int rc = f == 0   ? shoal_tokenizer_load_hf_json(p, &t, err, sizeof err)
                 : f == 1 ? shoal_tokenizer_load_gguf(p, &t, err, sizeof err)
                          : shoal_tokenizer_load_sentencepiece(p, &t, err, sizeof err);
        CHECK_RC(rc, SHOAL_OK, err);
        if (rc) continue;
        int32_t ids[64];
        size_t n;
        CHECK_RC(shoal_tokenizer_encode(t, text, strlen(text), SHOAL_TOKENIZE_ADD_BOS, ids, 64, &n), SHOAL_OK, "");
        CHECK(ids_eq(ids, n, want, 8));
        /* ADD_SPECIAL follows the vocabulary: Llama-2 adds BOS */
        CHECK_RC(shoal_tokenizer_encode(t, text, strlen(text), SHOAL_TOKENIZE_ADD_SPECIAL, ids, 64, &n), SHOAL_OK, "");
        CHECK(ids_eq(ids, n, want, 8));
        CHECK_EQ_INT(shoal_tokenizer_bos_id(t), 1);
        CHECK_EQ_INT(shoal_tokenizer_eos_id(t), 2);
        CHECK(shoal_tokenizer_is_eog(t, 2));
        CHECK(!shoal_tokenizer_is_eog(t, 306));
        CHECK_EQ_INT(shoal_tokenizer_vocab_size(t), 32000);
        CHECK_EQ_INT(shoal_tokenizer_token_to_id(t, "\xE2\x96\x81" "believe", 10), 4658);
        CHECK_EQ_INT(shoal_tokenizer_token_type(t, 1), SHOAL_TOKEN_CONTROL);
        CHECK_EQ_INT(shoal_tokenizer_token_type(t, 0), SHOAL_TOKEN_UNKNOWN);
        CHECK_EQ_INT(shoal_tokenizer_token_type(t, 3), SHOAL_TOKEN_BYTE);
        CHECK_EQ_INT(shoal_tokenizer_token_type(t, 306), SHOAL_TOKEN_NORMAL);

        /* decode drops the space the encoder prepended, at the start and after BOS */
        char out[256];
        size_t on;
        CHECK_RC(shoal_tokenizer_decode(t, ids, n, 0, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == strlen(text) && !memcmp(out, text, on));
        CHECK_RC(shoal_tokenizer_decode(t, ids + 1, n - 1, 0, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == strlen(text) && !memcmp(out, text, on));
        CHECK_RC(shoal_tokenizer_decode(t, ids, n, SHOAL_DECODE_KEEP_SPACE, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == strlen(text) + 1 && out[0] == ' ');
        CHECK_RC(shoal_tokenizer_decode(t, ids, n, SHOAL_DECODE_SPECIAL, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == strlen(text) + 3 && !memcmp(out, "<s>I believe", 12));
        /* a piece is context-free: "▁believe" is " believe" */
        CHECK_RC(shoal_tokenizer_token_piece(t, 4658, 0, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == 8 && !memcmp(out, " believe", 8));
        CHECK_RC(shoal_tokenizer_token_piece(t, 1, 0, out, sizeof out, &on), SHOAL_OK, "");
        CHECK_EQ_INT(on, 0);
        CHECK_RC(shoal_tokenizer_token_piece(t, 0x0A + 3, 0, out, sizeof out, &on), SHOAL_OK, "");
        CHECK(on == 1 && out[0] == '\n');
        /* control tokens in text only with PARSE_SPECIAL */
        CHECK_RC(shoal_tokenizer_encode(t, "<s>hi", 5, SHOAL_TOKENIZE_PARSE_SPECIAL, ids, 64, &n), SHOAL_OK, "");
        CHECK(n >= 2 && ids[0] == 1);
        CHECK_RC(shoal_tokenizer_encode(t, "<s>hi", 5, 0, ids, 64, &n), SHOAL_OK, "");
        CHECK(n >= 2 && ids[0] != 1);
        shoal_tokenizer_free(t);
    }
}

static void test_buffers_and_errors(void) {
    shoal_tokenizer *t = load_gpt2();
    if (!t) return;
    const char *text = "Hello world, this is a test";
    int32_t ids[64];
    size_t n = 0, full;
    CHECK_RC(shoal_tokenizer_encode(t, text, strlen(text), 0, NULL, 0, &full), SHOAL_ERR_TRUNCATED, "");
    CHECK(full > 3);
    CHECK_RC(shoal_tokenizer_encode(t, text, strlen(text), 0, ids, 3, &n), SHOAL_ERR_TRUNCATED, "");
    CHECK_EQ_INT(n, full);
    int32_t all[64];
    CHECK_RC(shoal_tokenizer_encode(t, text, strlen(text), 0, all, 64, &n), SHOAL_OK, "");
    CHECK(n == full && !memcmp(ids, all, 3 * sizeof *ids));
    CHECK_RC(shoal_tokenizer_encode(t, "", 0, 0, NULL, 0, &n), SHOAL_OK, "");
    CHECK_EQ_INT(n, 0);
    CHECK_RC(shoal_tokenizer_encode(NULL, text, 1, 0, ids, 64, &n), SHOAL_ERR_INVALID, "");
    CHECK_RC(shoal_tokenizer_encode(t, NULL, 1, 0, ids, 64, &n), SHOAL_ERR_INVALID, "");

    char buf[8];
    size_t bn;
    int32_t hello = shoal_tokenizer_token_to_id(t, "\xC4\xA0" "Hello", 7); /* "ĠHello" */
    CHECK_EQ_INT(hello, 18435);
    CHECK_RC(shoal_tokenizer_token_piece(t, hello, 0, buf, 3, &bn), SHOAL_ERR_TRUNCATED, "");
    CHECK(bn == 6 && !memcmp(buf, " He", 3));
    CHECK_RC(shoal_tokenizer_token_piece(t, -1, 0, buf, sizeof buf, &bn), SHOAL_ERR_INVALID, "");
    CHECK_RC(shoal_tokenizer_token_piece(t, 50257, 0, buf, sizeof buf, &bn), SHOAL_ERR_INVALID, "");
    int32_t bad[] = {hello, 99999};
    CHECK_RC(shoal_tokenizer_decode(t, bad, 2, 0, buf, sizeof buf, &bn), SHOAL_ERR_INVALID, "");
    CHECK_RC(shoal_tokenizer_decode(t, all, full, 0, buf, 4, &bn), SHOAL_ERR_TRUNCATED, "");
    CHECK(bn == strlen(text) && !memcmp(buf, "Hell", 4));
    CHECK(shoal_tokenizer_token_text(t, 50257, &bn) == NULL && bn == 0);
    CHECK_EQ_INT(shoal_tokenizer_token_type(t, 50257), SHOAL_TOKEN_UNDEFINED);

    /* GPT-2's control token, its ids and text */
    CHECK_EQ_INT(shoal_tokenizer_eos_id(t), 50256);
    CHECK_EQ_INT(shoal_tokenizer_bos_id(t), 50256);
    CHECK(shoal_tokenizer_is_eog(t, 50256));
    CHECK_EQ_INT(shoal_tokenizer_add_bos(t), 0);
    const char *eot = "a<|endoftext|>b";
    CHECK_RC(shoal_tokenizer_encode(t, eot, strlen(eot), SHOAL_TOKENIZE_PARSE_SPECIAL, ids, 64, &n), SHOAL_OK, "");
    CHECK(n == 3 && ids[1] == 50256);
    CHECK_RC(shoal_tokenizer_encode(t, eot, strlen(eot), 0, ids, 64, &n), SHOAL_OK, "");
    CHECK(n > 3);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 50256);
    CHECK_RC(shoal_tokenizer_encode(t, "x", 1, SHOAL_TOKENIZE_ADD_BOS | SHOAL_TOKENIZE_ADD_EOS, ids, 64, &n),
             SHOAL_OK, "");
    CHECK(n == 3 && ids[0] == 50256 && ids[2] == 50256);
    CHECK_RC(shoal_tokenizer_decode(t, ids, n, 0, buf, sizeof buf, &bn), SHOAL_OK, "");
    CHECK(bn == 1 && buf[0] == 'x');
    char big[64];
    CHECK_RC(shoal_tokenizer_decode(t, ids, n, SHOAL_DECODE_SPECIAL, big, sizeof big, &bn), SHOAL_OK, "");
    CHECK(bn == 27 && !memcmp(big, "<|endoftext|>x<|endoftext|>", 27));

    /* a character split over byte tokens comes out whole, once complete */
    const char *llama = "\xF0\x9F\xA6\x99"; /* U+1F999 llama: several byte-level tokens */
    CHECK_RC(shoal_tokenizer_encode(t, llama, 4, 0, ids, 64, &n), SHOAL_OK, "");
    CHECK(n >= 2);
    shoal_tokenizer_decoder *d = NULL;
    CHECK_RC(shoal_tokenizer_decoder_new(t, 0, &d), SHOAL_OK, "");
    if (d) {
        const char *p;
        size_t pl, total = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK_RC(shoal_tokenizer_decoder_push(d, ids[i], &p, &pl), SHOAL_OK, "");
            if (i + 1 < n) CHECK_EQ_INT(pl, 0);
            else CHECK(pl == 4 && !memcmp(p, llama, 4));
            total += pl;
        }
        CHECK_EQ_INT(total, 4);
        /* an unfinished character is released by flush, as it is */
        CHECK_RC(shoal_tokenizer_decoder_push(d, ids[0], &p, &pl), SHOAL_OK, "");
        CHECK_EQ_INT(pl, 0);
        CHECK_RC(shoal_tokenizer_decoder_push(d, 99999, &p, &pl), SHOAL_ERR_INVALID, "");
        CHECK_RC(shoal_tokenizer_decoder_flush(d, &p, &pl), SHOAL_OK, "");
        CHECK(pl >= 1 && (unsigned char)p[0] == 0xF0);
        /* a lead byte followed by ASCII can never complete: released at once */
        int32_t f0 = shoal_tokenizer_token_to_id(t, "\xC3\xB0", 2); /* byte 0xF0 */
        int32_t a = shoal_tokenizer_token_to_id(t, "a", 1);
        CHECK(f0 >= 0 && a >= 0);
        CHECK_RC(shoal_tokenizer_decoder_push(d, f0, &p, &pl), SHOAL_OK, "");
        CHECK_EQ_INT(pl, 0);
        CHECK_RC(shoal_tokenizer_decoder_push(d, a, &p, &pl), SHOAL_OK, "");
        CHECK(pl == 2 && (unsigned char)p[0] == 0xF0 && p[1] == 'a');
        shoal_tokenizer_decoder_free(d);
    }
    shoal_tokenizer_free(t);
}

/* ---- llama2.c: its encode() ported literally (O(n^2) scan for the best pair) as the reference */
typedef struct l2c {
    char **vocab;
    float *scores;
    int n;
} l2c;

static int l2c_read(const char *path, int n, l2c *v) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int maxlen;
    if (fread(&maxlen, 4, 1, f) != 1) return fclose(f), -1;
    v->vocab = calloc((size_t)n, sizeof *v->vocab);
    v->scores = calloc((size_t)n, sizeof *v->scores);
    v->n = n;
    for (int i = 0; i < n; i++) {
        int len;
        if (fread(&v->scores[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1) return fclose(f), -1;
        v->vocab[i] = calloc((size_t)len + 1, 1);
        if (fread(v->vocab[i], 1, (size_t)len, f) != (size_t)len) return fclose(f), -1;
    }
    fclose(f);
    return 0;
}

static int l2c_lookup(const l2c *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->vocab[i], s)) return i;
    return -1;
}

/* llama2.c run.c encode(), bos=0 eos=0 (comments there explain it) */
static size_t l2c_encode(const l2c *v, const char *text, int *tokens) {
    char buf[64];
    size_t n = 0, bl = 0;
    if (text[0] != '\0') tokens[n++] = l2c_lookup(v, " ");
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) bl = 0;
        buf[bl++] = *c;
        buf[bl] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && bl < 4) continue;
        int id = l2c_lookup(v, buf);
        if (id != -1) tokens[n++] = id;
        else
            for (size_t i = 0; i < bl; i++) tokens[n++] = (unsigned char)buf[i] + 3;
        bl = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            char cat[128];
            snprintf(cat, sizeof cat, "%s%s", v->vocab[tokens[i]], v->vocab[tokens[i + 1]]);
            int id = l2c_lookup(v, cat);
            if (id != -1 && v->scores[id] > best) {
                best = v->scores[id];
                best_id = id;
                best_idx = (int)i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (size_t i = (size_t)best_idx + 1; i + 1 < n; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    return n;
}

static uint64_t rs = 42;
static uint64_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void test_llama2c(void) {
    char path[1024], err[512] = "";
    testdata_path(path, sizeof path, "stories260K/tok512.bin");
    shoal_tokenizer *t = NULL;
    int rc = shoal_tokenizer_load_llama2c(path, 512, &t, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) return;
    CHECK_EQ_INT(shoal_tokenizer_vocab_size(t), 512);
    CHECK_EQ_INT(shoal_tokenizer_bos_id(t), 1);
    CHECK_EQ_INT(shoal_tokenizer_eos_id(t), 2);
    shoal_tokenizer *t0 = NULL; /* vocab_size 0: every token in the file */
    CHECK_RC(shoal_tokenizer_load_llama2c(path, 0, &t0, err, sizeof err), SHOAL_OK, err);
    CHECK_EQ_INT(shoal_tokenizer_vocab_size(t0), 512);
    shoal_tokenizer_free(t0);

    l2c ref = {0};
    CHECK(l2c_read(path, 512, &ref) == 0);
    /* random texts from TinyStories-like words, punctuation, digits and a few non-ASCII */
    static const char *const words[] = {"Once", "upon", "a", "time", "there", "was", "little", "girl", "named",
                                        "Lily", ".", ",", "!", "\"", "She", "loved", "to", "play", "outside",
                                        "123", "caf\xc3\xa9", "\xe4\xbd\xa0\xe5\xa5\xbd", "\xf0\x9f\x98\x80",
                                        "\n", "  ", "'s", "don't", "the", "and", "Tom", "dog", "sun"};
    int mism = 0;
    for (int c = 0; c < 200; c++) {
        char text[512];
        size_t len = 0;
        int nw = 1 + (int)(rnd() % 25);
        for (int w = 0; w < nw; w++) {
            const char *s = words[rnd() % (sizeof words / sizeof words[0])];
            if (w && rnd() % 3) text[len++] = ' ';
            memcpy(text + len, s, strlen(s));
            len += strlen(s);
        }
        text[len] = 0;
        int want[600];
        size_t nw2 = l2c_encode(&ref, text, want);
        int32_t got[600];
        size_t n;
        CHECK_RC(shoal_tokenizer_encode(t, text, len, 0, got, 600, &n), SHOAL_OK, "");
        int same = n == nw2;
        for (size_t i = 0; same && i < n; i++) same = got[i] == want[i];
        if (!same && mism++ < 3) fprintf(stderr, "llama2.c encode differs for \"%s\"\n", text);
        CHECK(same);
        char back[600];
        size_t bn;
        CHECK_RC(shoal_tokenizer_decode(t, got, n, 0, back, sizeof back, &bn), SHOAL_OK, "");
        CHECK(bn == len && !memcmp(back, text, len));
    }
    for (int i = 0; i < 512; i++) free(ref.vocab ? ref.vocab[i] : NULL);
    free(ref.vocab);
    free(ref.scores);

    /* stories260K's reference generation: BOS then 200 greedy ids decode to the expected text */
    size_t jl, el;
    char *json = slurp(testdata_path(path, sizeof path, "hf/stories260K-hf/reference.json"), &jl);
    char *expect = slurp(testdata_path(path, sizeof path, "stories260K/expected_greedy_200.txt"), &el);
    CHECK(json && expect);
    const char *g = json ? strstr(json, "\"greedy_ids\"") : NULL;
    CHECK(g != NULL);
    if (g && expect) {
        g = strchr(g, '[');
        int32_t ids[256];
        size_t n = 0;
        ids[n++] = 1; /* the prompt: BOS alone */
        while (g && *g != ']' && n < 256) {
            g++;
            while (*g == ' ' || *g == '\n' || *g == ',') g++;
            if (*g == ']') break;
            ids[n++] = (int32_t)strtol(g, (char **)&g, 10);
        }
        CHECK_EQ_INT(n, 201);
        char text[4096];
        size_t tn = 0;
        shoal_tokenizer_decoder *d = NULL;
        CHECK_RC(shoal_tokenizer_decoder_new(t, 0, &d), SHOAL_OK, "");
        for (size_t i = 0; d && i < n; i++) {
            const char *p;
            size_t pl;
            CHECK_RC(shoal_tokenizer_decoder_push(d, ids[i], &p, &pl), SHOAL_OK, "");
            memcpy(text + tn, p, pl);
            tn += pl;
        }
        shoal_tokenizer_decoder_free(d);
        /* the file ends with one newline that is not model output */
        CHECK(el > 0 && expect[el - 1] == '\n');
        CHECK(tn == el - 1 && !memcmp(text, expect, tn));
        if (tn != el - 1 || memcmp(text, expect, tn))
            fprintf(stderr, "stories260K decode:\n%.*s\nexpected:\n%s", (int)tn, text, expect);
        char whole[4096];
        size_t wn;
        CHECK_RC(shoal_tokenizer_decode(t, ids, n, 0, whole, sizeof whole, &wn), SHOAL_OK, "");
        CHECK(wn == tn && !memcmp(whole, text, wn));
    }
    free(json);
    free(expect);
    shoal_tokenizer_free(t);
}

/* ---- malformed tokenizer.bin files */
static const char *write_tmp(const char *name, const void *data, size_t len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

static void expect_fail(int rc, int want, const char *err, const char *path, const char *field) {
    CHECK_RC(rc, want, err);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, field);
}

static void test_malformed_bin(void) {
    char err[512];
    shoal_tokenizer *t;
    uint8_t b[64];
    const char *p;
    int32_t v;

    p = write_tmp("short.bin", "\x07\x00", 2);
    err[0] = 0;
    expect_fail(shoal_tokenizer_load_llama2c(p, 3, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "short.bin",
                "max_token_length");
    CHECK(t == NULL);

    v = 0;
    memcpy(b, &v, 4);
    p = write_tmp("zero_max.bin", b, 4);
    expect_fail(shoal_tokenizer_load_llama2c(p, 1, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "zero_max.bin",
                "max_token_length");

    /* max 4, token 0 claims 9 bytes */
    float sc = 0;
    v = 4;
    memcpy(b, &v, 4);
    memcpy(b + 4, &sc, 4);
    v = 9;
    memcpy(b + 8, &v, 4);
    memcpy(b + 12, "abcdefghi", 9);
    p = write_tmp("long_token.bin", b, 21);
    expect_fail(shoal_tokenizer_load_llama2c(p, 1, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "long_token.bin",
                "token 0: length 9");
    /* negative length */
    v = -5;
    memcpy(b + 8, &v, 4);
    p = write_tmp("neg_len.bin", b, 21);
    expect_fail(shoal_tokenizer_load_llama2c(p, 1, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "neg_len.bin",
                "token 0: length -5");
    /* length within max but past the end of the file */
    v = 3;
    memcpy(b + 8, &v, 4);
    p = write_tmp("past_end.bin", b, 13);
    expect_fail(shoal_tokenizer_load_llama2c(p, 1, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "past_end.bin",
                "token 0");
    /* one good token, but vocab_size asks for two */
    p = write_tmp("one_token.bin", b, 15);
    expect_fail(shoal_tokenizer_load_llama2c(p, 2, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "one_token.bin",
                "token 1");
    CHECK_RC(shoal_tokenizer_load_llama2c(p, 1, &t, err, sizeof err), SHOAL_OK, err);
    shoal_tokenizer_free(t);

    /* SentencePiece protobuf: a length running past the end, and a unigram model */
    p = write_tmp("cut.model", "\x0a\x20\x0a\x03" "abc", 7);
    expect_fail(shoal_tokenizer_load_sentencepiece(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "cut.model",
                "ModelProto");
    p = write_tmp("varint.model", "\x0a\xff\xff", 3);
    expect_fail(shoal_tokenizer_load_sentencepiece(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "varint.model",
                "ModelProto");
    p = write_tmp("unigram.model", "\x0a\x05\x0a\x03" "abc\x12\x02\x18\x01", 11);
    expect_fail(shoal_tokenizer_load_sentencepiece(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err,
                "unigram.model", "model_type 1");
    p = write_tmp("badtype.model", "\x0a\x07\x0a\x03" "abc\x18\x09\x12\x02\x18\x02", 13);
    expect_fail(shoal_tokenizer_load_sentencepiece(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "badtype.model",
                "pieces[0].type 9");

    /* a GGUF without a vocabulary: NOT_FOUND, naming the key */
    {
        uint8_t g[96] = {0};
        size_t k = 0;
        uint32_t ver = 3, ty = 8;
        uint64_t zero = 0, one = 1, kl = 20, vl = 5;
        memcpy(g, "GGUF", 4);
        k = 4;
        memcpy(g + k, &ver, 4), k += 4;
        memcpy(g + k, &zero, 8), k += 8;
        memcpy(g + k, &one, 8), k += 8;
        memcpy(g + k, &kl, 8), k += 8;
        memcpy(g + k, "general.architecture", 20), k += 20;
        memcpy(g + k, &ty, 4), k += 4;
        memcpy(g + k, &vl, 8), k += 8;
        memcpy(g + k, "llama", 5), k += 5;
        k = (k + 31) / 32 * 32;
        p = write_tmp("novocab.gguf", g, k);
        expect_fail(shoal_tokenizer_load_gguf(p, &t, err, sizeof err), SHOAL_ERR_NOT_FOUND, err, "novocab.gguf",
                    "tokenizer.ggml.model");
    }

    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist.bin", tmpdir);
    expect_fail(shoal_tokenizer_load_llama2c(missing, 1, &t, err, sizeof err), SHOAL_ERR_NOT_FOUND, err,
                "does-not-exist.bin", "cannot open");
    CHECK_RC(shoal_tokenizer_load_llama2c(missing, -1, &t, err, sizeof err), SHOAL_ERR_INVALID, err);
}

static void test_malformed_json(void) {
    char err[512];
    shoal_tokenizer *t;
    const char *p;

    p = write_tmp("broken.json", "{\"model\": {\"vocab\": {\"a\": 0,}", 29);
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "broken.json", "line");
    const char *wp = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}";
    p = write_tmp("wordpiece.json", wp, strlen(wp));
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "wordpiece.json",
                "WordPiece");
    const char *rx = "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                     "\"pattern\": {\"Regex\": \"\\\\d+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
                     "{\"type\": \"ByteLevel\", \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", "
                     "\"vocab\": {\"a\": 0}, \"merges\": []}}";
    p = write_tmp("regex.json", rx, strlen(rx));
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "regex.json",
                "regex");
    const char *badid = "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                        "\"vocab\": {\"a\": -3}, \"merges\": []}}";
    p = write_tmp("badid.json", badid, strlen(badid));
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "badid.json",
                "model.vocab");
    const char *badmerge = "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                           "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"ab\"]}}";
    p = write_tmp("badmerge.json", badmerge, strlen(badmerge));
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "badmerge.json",
                "model.merges[0]");
    /* a minimal valid byte-level one works, with both merge forms */
    const char *ok = "{\"added_tokens\": [{\"id\": 3, \"content\": \"<|x|>\", \"special\": true}], "
                     "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                     "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"]]}}";
    p = write_tmp("ok.json", ok, strlen(ok));
    CHECK_RC(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_OK, err);
    if (t) {
        int32_t ids[8];
        size_t n;
        CHECK_RC(shoal_tokenizer_encode(t, "ab<|x|>ba", 9, SHOAL_TOKENIZE_PARSE_SPECIAL, ids, 8, &n), SHOAL_OK, "");
        CHECK(n == 4 && ids[0] == 2 && ids[1] == 3 && ids[2] == 1 && ids[3] == 0);
        CHECK_EQ_INT(shoal_tokenizer_token_type(t, 3), SHOAL_TOKEN_CONTROL);
        shoal_tokenizer_free(t);
    }
    char a[1024], b[1024];
    CHECK_RC(shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/gpt2/encoder.json"),
                                             testdata_path(b, sizeof b, "tokenizers/gpt2/vocab.bpe"), "falcon",
                                             &t, err, sizeof err),
             SHOAL_ERR_UNSUPPORTED, err);
    CHECK_CONTAINS(err, "falcon");
}

/* A byte-level tokenizer.json with the 256 byte tokens, no merges, an added control token
 * "<|x|>" (id 256) and the given normalizer (JSON text): decode(encode(text)) is then the
 * normalized text itself. */
static const char *bytelevel_json_pre(const char *name, const char *normalizer, const char *pre) {
    static char buf[16384];
    size_t k = (size_t)snprintf(buf, sizeof buf,
                                "{\"added_tokens\": [{\"id\": 256, \"content\": \"<|x|>\", \"special\": true}], "
                                "\"normalizer\": %s, \"pre_tokenizer\": %s, "
                                "\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": {",
                                normalizer, pre);
    unsigned n = 0;
    for (unsigned b = 0; b < 256; b++) { /* GPT-2's bytes_to_unicode */
        unsigned cp = ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) ? b : 256 + n++;
        char u[8];
        if (cp < 0x80) snprintf(u, sizeof u, "%s%c", cp == '"' || cp == '\\' ? "\\" : "", (char)cp);
        else snprintf(u, sizeof u, "%c%c", (char)(0xC0 | cp >> 6), (char)(0x80 | (cp & 63)));
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s\"%s\": %u", b ? ", " : "", u, b);
    }
    k += (size_t)snprintf(buf + k, sizeof buf - k, "}}}");
    return write_tmp(name, buf, k);
}

static const char *bytelevel_json(const char *name, const char *normalizer) {
    return bytelevel_json_pre(name, normalizer, "{\"type\": \"ByteLevel\"}");
}

/* decode(encode(in)) == want with tok */
static int roundtrip_is(const shoal_tokenizer *t, const char *in, const char *want, unsigned flags) {
    int32_t ids[256];
    char out[512];
    size_t n, on;
    if (shoal_tokenizer_encode(t, in, strlen(in), flags, ids, 256, &n) != SHOAL_OK) return 0;
    if (shoal_tokenizer_decode(t, ids, n, SHOAL_DECODE_SPECIAL, out, sizeof out, &on) != SHOAL_OK) return 0;
    return on == strlen(want) && !memcmp(out, want, on);
}

/* tokenizer.json normalizers: NFC / NFD / NFKC / NFKD alone and in a Sequence, the added
 * tokens matched before normalization, and the combinations that are refused. */
static void test_normalizers(void) {
    char err[512];
    shoal_tokenizer *t = NULL;
    static const struct {
        const char *json, *in, *want;
    } cases[] = {
        {"{\"type\": \"NFC\"}", "caf" "e\xCC\x81 A\xCC\x8A \xE2\x84\xAB", "caf\xC3\xA9 \xC3\x85 \xC3\x85"},
        {"{\"type\": \"NFC\"}", "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", "\xED\x95\x9C"}, /* jamo -> 한 */
        {"{\"type\": \"NFC\"}", "e\xCC\x81<|x|>\xCC\x81", "\xC3\xA9<|x|>\xCC\x81"},
        {"{\"type\": \"NFD\"}", "\xC3\xA9\xEF\xAC\x81", "e\xCC\x81\xEF\xAC\x81"},
        {"{\"type\": \"NFKC\"}", "\xEF\xAC\x81" "e\xCC\x81\xC2\xA0", "fi\xC3\xA9 "},
        {"{\"type\": \"NFKD\"}", "\xEF\xAC\x81\xC3\xA9", "fie\xCC\x81"},
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}, {\"type\": \"NFD\"}]}",
         "\xEF\xAC\x81\xC3\xA9", "fie\xCC\x81"},
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFD\"}, {\"type\": \"NFC\"}]}",
         "e\xCC\x81\xEF\xAC\x81", "\xC3\xA9\xEF\xAC\x81"},
        {"null", "e\xCC\x81", "e\xCC\x81"},
        /* bytes that are not UTF-8 go through unchanged and block composition */
        {"{\"type\": \"NFC\"}", "e\xFF\xCC\x81 e\xCC\x81\xFE", "e\xFF\xCC\x81 \xC3\xA9\xFE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = bytelevel_json("norm.json", cases[i].json);
        CHECK_RC(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_OK, err);
        if (!t) continue;
        if (!roundtrip_is(t, cases[i].in, cases[i].want, SHOAL_TOKENIZE_PARSE_SPECIAL)) {
            fprintf(stderr, "normalizer case %zu (%s) differs\n", i, cases[i].json);
            check_failures++;
        }
        shoal_tokenizer_free(t);
        t = NULL;
    }
    /* ByteLevel(add_prefix_space) tests for the space after normalization, as HF does: NFKC
     * makes U+00A0 a space, so no second one is added */
    const char *p = bytelevel_json_pre("prefix.json", "{\"type\": \"NFKC\"}",
                                       "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}");
    CHECK_RC(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_OK, err);
    if (t) {
        CHECK(roundtrip_is(t, "\xC2\xA0hi e\xCC\x81", " hi \xC3\xA9", 0));
        CHECK(roundtrip_is(t, "hi\xEF\xAC\x81", " hifi", 0));
        shoal_tokenizer_free(t);
        t = NULL;
    }
    p = bytelevel_json("lower.json", "{\"type\": \"Lowercase\"}");
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "lower.json",
                "Lowercase");
    p = bytelevel_json("seq.json", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
                                   "{\"type\": \"StripAccents\"}]}");
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "seq.json",
                "StripAccents");
    /* NFKC after the SPM Replace: not the same as NFKC first (U+00A0 would stay a space) */
    const char *spm = "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Replace\", "
                      "\"pattern\": {\"String\": \" \"}, \"content\": \"\xE2\x96\x81\"}, {\"type\": \"NFKC\"}]}, "
                      "\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xE2\x96\x81\": 0}, \"merges\": []}}";
    p = write_tmp("spmnfkc.json", spm, strlen(spm));
    expect_fail(shoal_tokenizer_load_hf_json(p, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "spmnfkc.json",
                "NFKC after Replace");
}

static void test_spec(void) {
    char err[512];
    shoal_tokenizer *t = NULL;
    shoal_vocab_str toks[] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {"\xE2\x96\x81", 3}, {"a", 1},
                              {"b", 1},     {"\xE2\x96\x81" "a", 4}, {"ab", 2}, {"\xE2\x96\x81" "ab", 5}};
    float scores[] = {0, 0, 0, -1, -2, -3, -4, -5, -6};
    shoal_vocab_spec s = SHOAL_VOCAB_SPEC_INIT;
    s.source = "unit-spec";
    s.model = "llama";
    s.n_tokens = 9;
    s.tokens = toks;
    s.scores = scores;
    CHECK_RC(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_OK, err);
    if (t) {
        int32_t ids[8];
        size_t n;
        /* "▁ab": ▁a (-4) beats ab (-5); then ▁a + b = ▁ab (-6) */
        CHECK_RC(shoal_tokenizer_encode(t, "ab", 2, SHOAL_TOKENIZE_ADD_SPECIAL, ids, 8, &n), SHOAL_OK, "");
        CHECK(n == 2 && ids[0] == 1 && ids[1] == 8);
        shoal_tokenizer_free(t);
    }
    s.bos_id = 9;
    expect_fail(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "unit-spec", "bos_token_id");
    s.bos_id = -1;
    int32_t types[9] = {2, 3, 3, 1, 1, 1, 1, 1, 9};
    s.token_types = types;
    expect_fail(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "unit-spec",
                "token_type[8]");
    s.token_types = NULL;
    s.model = "bert";
    expect_fail(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "unit-spec", "bert");
    s.model = "gpt2";
    shoal_vocab_str merges[] = {{"ab", 2}};
    s.merges = merges;
    s.n_merges = 1;
    expect_fail(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_FORMAT, err, "unit-spec", "merges[0]");
    s.pre = "chatglm-bpe";
    expect_fail(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_UNSUPPORTED, err, "unit-spec",
                "chatglm-bpe");
    s.struct_size = 8;
    CHECK_RC(shoal_tokenizer_from_spec(&s, &t, err, sizeof err), SHOAL_ERR_INVALID, err);
    CHECK_RC(shoal_tokenizer_from_spec(NULL, &t, err, sizeof err), SHOAL_ERR_INVALID, err);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/shoal_tok_api_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_known_ids();
    test_buffers_and_errors();
    test_llama2c();
    test_malformed_bin();
    test_malformed_json();
    test_normalizers();
    test_spec();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_report("test_tok_api");
}
