#define _GNU_SOURCE /* memmem */
/* llama.cpp's tokenizer test vectors (tests/test-tokenizer-0.cpp): every string of
 * vocab-test.inp must encode, without BOS and without special-token parsing, to exactly the
 * ids of the matching line of <name>.out; and decode back to itself.
 *
 *   test_tok_llamacpp CASE      CASE: gpt2 | llama3 | qwen2 | llama2-json | llama2-model | llama2-gguf |
 *                                     spm-vocab-gguf | gpt2-vocab-gguf
 *
 * The .inp file is split exactly as read_tests() does: find "\n__ggml_vocab_test__\n" from the
 * current position while it is before the end, so the text after the last separator (empty)
 * is not a test. Each .out line is stripped and split on single spaces. */
#include <stdint.h>

#include "tests/tokenizer/tok_check.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct vcase {
    const char *name, *out_file;
} vcase;

static int load_case(const char *name, shoal_tokenizer **tok, char *err, size_t errcap) {
    char a[1024], b[1024];
    if (!strcmp(name, "gpt2"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/gpt2/encoder.json"),
                                               testdata_path(b, sizeof b, "tokenizers/gpt2/vocab.bpe"),
                                               "gpt-2", tok, err, errcap);
    if (!strcmp(name, "llama3"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/llama3/encoder.json"),
                                               testdata_path(b, sizeof b, "tokenizers/llama3/vocab.bpe"),
                                               "llama-bpe", tok, err, errcap);
    if (!strcmp(name, "qwen2"))
        return shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/qwen2/vocab.json"),
                                               testdata_path(b, sizeof b, "tokenizers/qwen2/merges.txt"),
                                               "qwen2", tok, err, errcap);
    if (!strcmp(name, "llama2-json"))
        return shoal_tokenizer_load_hf_json(testdata_path(a, sizeof a, "tokenizers/llama2/tokenizer.json"),
                                            tok, err, errcap);
    if (!strcmp(name, "llama2-model")) /* the SentencePiece protobuf of the same vocabulary */
        return shoal_tokenizer_load_sentencepiece(testdata_path(a, sizeof a, "tokenizers/llama2/tokenizer.model"),
                                                  tok, err, errcap);
    if (!strcmp(name, "llama2-gguf")) /* a full Llama-2 vocabulary with scores inside a tiny model */
        return shoal_tokenizer_load_gguf(testdata_path(a, sizeof a, "gguf/llama-2-tiny-random.gguf"),
                                         tok, err, errcap);
    if (!strcmp(name, "spm-vocab-gguf"))
        return shoal_tokenizer_load_gguf(
            testdata_path(a, sizeof a, "tokenizers/llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf"), tok,
            err, errcap);
    if (!strcmp(name, "gpt2-vocab-gguf"))
        return shoal_tokenizer_load_gguf(
            testdata_path(a, sizeof a, "tokenizers/llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf"), tok, err,
            errcap);
    return SHOAL_ERR_INVALID;
}

static const char *out_file_of(const char *name) {
    if (!strcmp(name, "gpt2") || !strcmp(name, "gpt2-vocab-gguf")) return "gpt-2.out";
    if (!strcmp(name, "llama3")) return "llama-bpe.out";
    if (!strcmp(name, "qwen2")) return "qwen2.out";
    return "llama-spm.out";
}

/* The vocab-only GGUF files of the test data were damaged in transit: every byte sequence that
 * is not valid UTF-8 (binary counts, floats) was replaced by U+FFFD. Such a file must be
 * rejected cleanly; it cannot be compared. */
static int is_utf8_mangled(const char *path) {
    size_t n;
    char *d = slurp(path, &n);
    int bad = d && n > 16 && memcmp(d, "GGUF", 4) == 0 && memmem(d, n < 4096 ? n : 4096, "\xEF\xBF\xBD", 3);
    free(d);
    return bad;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    char path[1024], err[512] = "";
    shoal_tokenizer *tok = NULL;
    int rc = load_case(name, &tok, err, sizeof err);
    if (rc && (!strcmp(name, "spm-vocab-gguf") || !strcmp(name, "gpt2-vocab-gguf"))) {
        const char *f = !strcmp(name, "spm-vocab-gguf") ? "ggml-vocab-llama-spm.gguf" : "ggml-vocab-gpt-2.gguf";
        snprintf(path, sizeof path, "%s/tokenizers/llamacpp-vocab-tests/%s", testdata_dir(), f);
        if (is_utf8_mangled(path)) {
            CHECK_RC(rc, SHOAL_ERR_FORMAT, err);
            fprintf(stderr, "%s: SKIPPED comparison: %s is corrupt (binary bytes replaced by U+FFFD); "
                            "rejected with: %s\n", name, f, err);
            return check_report(name);
        }
    }
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) return check_report(name);

    size_t inp_len, out_len;
    char *inp = slurp(testdata_path(path, sizeof path, "tokenizers/llamacpp-vocab-tests/vocab-test.inp"), &inp_len);
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizers/llamacpp-vocab-tests/%s", out_file_of(name));
    char *outs = slurp(testdata_path(path, sizeof path, rel), &out_len);
    CHECK(inp && outs);
    if (!inp || !outs) return check_report(name);

    size_t ipos = 0, opos = 0, cases = 0, matched = 0, roundtrip = 0;
    size_t cap = 1 << 16;
    int32_t *ids = malloc(cap * sizeof *ids), *want = malloc(cap * sizeof *want);
    char *back = malloc(cap);
    while (ipos < inp_len) {
        const char *s = inp + ipos;
        const char *sep = memmem(s, inp_len - ipos, SEP, strlen(SEP));
        size_t slen = sep ? (size_t)(sep - s) : inp_len - ipos;
        ipos = sep ? (size_t)(sep - inp) + strlen(SEP) : inp_len;

        /* the matching .out line, stripped, split on spaces */
        size_t nwant = 0;
        if (opos >= out_len) {
            CHECK(!"fewer .out lines than tests");
            break;
        }
        const char *line = outs + opos;
        const char *nl = memchr(line, '\n', out_len - opos);
        size_t llen = nl ? (size_t)(nl - line) : out_len - opos;
        opos += llen + (nl != NULL);
        for (size_t i = 0; i < llen;) {
            while (i < llen && line[i] == ' ') i++;
            if (i >= llen) break;
            want[nwant++] = (int32_t)strtol(line + i, NULL, 10);
            while (i < llen && line[i] != ' ') i++;
        }

        size_t n = 0;
        rc = shoal_tokenizer_encode(tok, s, slen, 0, ids, cap, &n);
        CHECK_RC(rc, SHOAL_OK, "encode");
        cases++;
        if (n == nwant && memcmp(ids, want, n * sizeof *ids) == 0) {
            matched++;
        } else {
            fprintf(stderr, "%s: case %zu \"%.*s\" differs\n", name, cases - 1, (int)slen, s);
            print_ids("want", want, nwant);
            print_ids("got ", ids, n);
            check_failures++;
        }
        size_t bn = 0;
        rc = shoal_tokenizer_decode(tok, ids, n, 0, back, cap, &bn);
        if (rc == SHOAL_OK && bn == slen && memcmp(back, s, slen) == 0) roundtrip++;
        else {
            fprintf(stderr, "%s: case %zu \"%.*s\" decodes to \"%.*s\"\n", name, cases - 1, (int)slen, s,
                    (int)bn, back);
            check_failures++;
        }
    }
    fprintf(stderr, "%s: %zu/%zu lines of %s match; %zu/%zu decode back to the input\n", name, matched,
            cases, out_file_of(name), roundtrip, cases);
    CHECK(cases == 46);
    free(ids);
    free(want);
    free(back);
    free(inp);
    free(outs);
    shoal_tokenizer_free(tok);
    return check_report(name);
}
