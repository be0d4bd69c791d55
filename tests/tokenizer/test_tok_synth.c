/* The GGUF and tokenizer.json loaders on files generated at test time from the GPT-2, Llama-3
 * and Qwen2 test vocabularies (the shared data has no usable vocab GGUF for them, and no
 * tokenizer.json): each generated file must reproduce the same llama.cpp .out lines as the
 * original files, and carry its special tokens and BOS/EOS settings.
 *
 *   test_tok_synth FORMAT VOCAB     FORMAT: gguf | hfjson    VOCAB: gpt2 | llama3 | qwen2 */
#define _GNU_SOURCE
#include <stdint.h>
#include <unistd.h>

#include "tests/tokenizer/tok_check.h"

typedef struct vocab_files {
    const char *vocab, *merges, *pre, *out;
} vocab_files;

static const vocab_files *files_of(const char *name) {
    static const vocab_files gpt2 = {"tokenizers/gpt2/encoder.json", "tokenizers/gpt2/vocab.bpe", "gpt-2", "gpt-2.out"};
    static const vocab_files llama3 = {"tokenizers/llama3/encoder.json", "tokenizers/llama3/vocab.bpe", "llama-bpe",
                                       "llama-bpe.out"};
    static const vocab_files qwen2 = {"tokenizers/qwen2/vocab.json", "tokenizers/qwen2/merges.txt", "qwen2",
                                      "qwen2.out"};
    return !strcmp(name, "gpt2") ? &gpt2 : !strcmp(name, "llama3") ? &llama3 : !strcmp(name, "qwen2") ? &qwen2 : NULL;
}

/* Special tokens appended past the base vocabulary, as the real models have them. */
typedef struct extra {
    const char *text;
    int32_t id;
} extra;
static const extra llama3_extra[] = {{"<|begin_of_text|>", 128000}, {"<|end_of_text|>", 128001}, {"<|eot_id|>", 128009}};
static const extra qwen2_extra[] = {{"<|endoftext|>", 151643}, {"<|im_start|>", 151644}, {"<|im_end|>", 151645}};

/* Merge lines of a merges file (without a "#version" line). */
static char **read_merges(const char *path, size_t *n) {
    size_t len;
    char *t = slurp(path, &len);
    if (!t) return NULL;
    size_t cap = 1024;
    char **m = malloc(cap * sizeof *m);
    *n = 0;
    int first = 1;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (first && !strncmp(line, "#version", 8)) {
            first = 0;
            continue;
        }
        first = 0;
        if (!*line) continue;
        if (*n == cap) m = realloc(m, (cap *= 2) * sizeof *m);
        m[(*n)++] = strdup(line);
    }
    free(t);
    return m;
}

/* ---- a minimal GGUF v3 writer (metadata only, no tensors) */
static void w_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void w_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void w_str(FILE *f, const char *s, size_t n) {
    w_u64(f, n);
    fwrite(s, 1, n, f);
}
static void w_key(FILE *f, const char *k, uint32_t type) {
    w_str(f, k, strlen(k));
    w_u32(f, type);
}

static int write_gguf(const char *path, const shoal_tokenizer *base, const extra *ex, size_t n_ex, const char *pre,
                      char **merges, size_t n_merges, int32_t bos, int32_t eos) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = shoal_tokenizer_vocab_size(base);
    for (size_t i = 0; i < n_ex; i++)
        if ((size_t)ex[i].id + 1 > n) n = (size_t)ex[i].id + 1;
    fwrite("GGUF", 1, 4, f);
    w_u32(f, 3);
    w_u64(f, 0); /* tensors */
    w_u64(f, 8); /* key/values */
    w_key(f, "general.architecture", 8);
    w_str(f, "gpt2", 4);
    w_key(f, "tokenizer.ggml.model", 8);
    w_str(f, "gpt2", 4);
    w_key(f, "tokenizer.ggml.pre", 8);
    w_str(f, pre, strlen(pre));
    w_key(f, "tokenizer.ggml.tokens", 9);
    w_u32(f, 8);
    w_u64(f, n);
    for (size_t i = 0; i < n; i++) {
        const char *s = NULL;
        size_t l = 0;
        for (size_t k = 0; k < n_ex; k++)
            if ((size_t)ex[k].id == i) s = ex[k].text, l = strlen(s);
        if (!s) s = shoal_tokenizer_token_text(base, (int32_t)i, &l);
        if (!s) { /* a hole between the base vocabulary and the specials */
            char pad[32];
            l = (size_t)snprintf(pad, sizeof pad, "[PAD%zu]", i);
            w_str(f, pad, l);
        } else {
            w_str(f, s, l);
        }
    }
    w_key(f, "tokenizer.ggml.token_type", 9);
    w_u32(f, 5);
    w_u64(f, n);
    for (size_t i = 0; i < n; i++) {
        int32_t ty = 1;
        if (i >= shoal_tokenizer_vocab_size(base)) ty = 5; /* unused unless a special below */
        else if (shoal_tokenizer_token_type(base, (int32_t)i) == SHOAL_TOKEN_CONTROL) ty = 3;
        for (size_t k = 0; k < n_ex; k++)
            if ((size_t)ex[k].id == i) ty = 3;
        fwrite(&ty, 4, 1, f);
    }
    w_key(f, "tokenizer.ggml.merges", 9);
    w_u32(f, 8);
    w_u64(f, n_merges);
    for (size_t i = 0; i < n_merges; i++) w_str(f, merges[i], strlen(merges[i]));
    w_key(f, "tokenizer.ggml.bos_token_id", 4);
    w_u32(f, (uint32_t)bos);
    w_key(f, "tokenizer.ggml.eos_token_id", 4);
    w_u32(f, (uint32_t)eos);
    w_key(f, "tokenizer.ggml.add_bos_token", 7);
    fputc(0, f);
    long at = ftell(f); /* pad to the default alignment, where the (empty) data section starts */
    while (at++ % 32) fputc(0, f);
    return fclose(f);
}

/* ---- tokenizer.json writer */
static void j_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static int write_json(const char *path, const char *name, const shoal_tokenizer *base, const extra *ex, size_t n_ex,
                      char **merges, size_t n_merges) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fprintf(f, "{\"version\": \"1.0\", \"added_tokens\": [");
    for (size_t k = 0; k < n_ex; k++) {
        fprintf(f, "%s{\"id\": %d, \"content\": ", k ? ", " : "", (int)ex[k].id);
        j_str(f, ex[k].text, strlen(ex[k].text));
        fprintf(f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                   "\"special\": true}");
    }
    fprintf(f, "],\n");
    int gpt2 = !strcmp(name, "gpt2");
    if (!strcmp(name, "qwen2")) fprintf(f, "\"normalizer\": {\"type\": \"NFC\"},\n");
    else fprintf(f, "\"normalizer\": null,\n");
    if (gpt2) {
        fprintf(f, "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
                   "\"use_regex\": true},\n");
    } else {
        fprintf(f, "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                   "\"pattern\": {\"Regex\": ");
        const char *rx = !strcmp(name, "llama3") ? llama3_regex : qwen2_regex;
        j_str(f, rx, strlen(rx));
        fprintf(f, "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                   "\"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}]},\n");
    }
    if (!strcmp(name, "llama3"))
        fprintf(f, "\"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, "
                   "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
                   "\"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}]},\n");
    else fprintf(f, "\"post_processor\": {\"type\": \"ByteLevel\"},\n");
    fprintf(f, "\"decoder\": {\"type\": \"ByteLevel\"},\n\"model\": {\"type\": \"BPE\", \"dropout\": null, "
               "\"unk_token\": null, \"continuing_subword_prefix\": %s, \"end_of_word_suffix\": %s, "
               "\"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": %s,\n\"vocab\": {",
            gpt2 ? "\"\"" : "null", gpt2 ? "\"\"" : "null", !strcmp(name, "llama3") ? "true" : "false");
    size_t n = shoal_tokenizer_vocab_size(base);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *s = shoal_tokenizer_token_text(base, (int32_t)i, &l);
        if (!s || shoal_tokenizer_token_type(base, (int32_t)i) == SHOAL_TOKEN_UNUSED) continue;
        if (!first) fputc(',', f);
        first = 0;
        j_str(f, s, l);
        fprintf(f, ":%zu", i);
    }
    fprintf(f, "},\n\"merges\": [");
    for (size_t i = 0; i < n_merges; i++) {
        if (i) fputc(',', f);
        if (gpt2) { /* the newer form: a pair of strings */
            char *sp = strchr(merges[i] + 1, ' ');
            fputc('[', f);
            j_str(f, merges[i], (size_t)(sp - merges[i]));
            fputc(',', f);
            j_str(f, sp + 1, strlen(sp + 1));
            fputc(']', f);
        } else {
            j_str(f, merges[i], strlen(merges[i]));
        }
    }
    fprintf(f, "]}}\n");
    return fclose(f);
}

/* Qwen2's tokenizer.json has an NFC normalizer: text that is not in NFC must give the ids of
 * its NFC form, as Hugging Face does (the vocabulary's merges are built over NFC text). The
 * vocabulary loaded without it (vocab.json + merges.txt, like llama.cpp's GGUF) gives other
 * ids for the decomposed text, so the check shows the normalizer at work. */
static void check_nfc(const char *label, const shoal_tokenizer *tok, const shoal_tokenizer *base) {
    static const struct {
        const char *composed, *decomposed;
    } cases[] = {
        {"caf\xC3\xA9 au lait", "cafe\xCC\x81 au lait"},
        {"\xC3\x85ngstr\xC3\xB6m", "A\xCC\x8Angstro\xCC\x88m"},
        {"\xC3\x85ngstr\xC3\xB6m", "\xE2\x84\xABngstro\xCC\x88m"}, /* U+212B ANGSTROM SIGN */
        {"Ti\xE1\xBA\xBFng Vi\xE1\xBB\x87t", "Tie\xCC\x82\xCC\x81ng Vie\xCC\xA3\xCC\x82t"}, /* marks in either order */
        {"Ti\xE1\xBA\xBFng Vi\xE1\xBB\x87t", "Tie\xCC\x82\xCC\x81ng Vie\xCC\x82\xCC\xA3t"},
        /* 한국어 from conjoining jamo */
        {"\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
         "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x80\xE1\x85\xAE\xE1\x86\xA8\xE1\x84\x8B\xE1\x85\xA5"},
        {"<|im_start|>user\nna\xC3\xAFve<|im_end|>", "<|im_start|>user\nnai\xCC\x88ve<|im_end|>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t a[64], b[64], c[64];
        size_t na = 0, nb = 0, nc = 0;
        unsigned fl = SHOAL_TOKENIZE_PARSE_SPECIAL;
        const char *x = cases[i].composed, *y = cases[i].decomposed;
        CHECK_RC(shoal_tokenizer_encode(tok, x, strlen(x), fl, a, 64, &na), SHOAL_OK, "");
        CHECK_RC(shoal_tokenizer_encode(tok, y, strlen(y), fl, b, 64, &nb), SHOAL_OK, "");
        CHECK_RC(shoal_tokenizer_encode(base, y, strlen(y), fl, c, 64, &nc), SHOAL_OK, "");
        if (na != nb || memcmp(a, b, na * sizeof *a)) {
            fprintf(stderr, "%s: NFC case %zu: decomposed text gives other ids than the composed text\n", label, i);
            check_failures++;
        }
        CHECK(nc != na || memcmp(c, a, na * sizeof *a) != 0);
    }
    fprintf(stderr, "%s: %zu decomposed texts encode as their NFC forms\n", label, sizeof cases / sizeof cases[0]);
}

static int compare_outs(const char *name, const shoal_tokenizer *tok, const char *out_file) {
    char p[1024], rel[256];
    size_t il, ol;
    char *inp = slurp(testdata_path(p, sizeof p, "tokenizers/llamacpp-vocab-tests/vocab-test.inp"), &il);
    snprintf(rel, sizeof rel, "tokenizers/llamacpp-vocab-tests/%s", out_file);
    char *outs = slurp(testdata_path(p, sizeof p, rel), &ol);
    if (!inp || !outs) return -1;
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t ipos = 0, opos = 0, cases = 0, ok = 0;
    int32_t ids[4096], want[4096];
    while (ipos < il) {
        const char *s = inp + ipos, *e = memmem(s, il - ipos, sep, strlen(sep));
        size_t sl = e ? (size_t)(e - s) : il - ipos;
        ipos = e ? (size_t)(e - inp) + strlen(sep) : il;
        const char *line = outs + opos, *nl = memchr(line, '\n', ol - opos);
        size_t ll = nl ? (size_t)(nl - line) : ol - opos, nw = 0;
        opos += ll + 1;
        for (size_t i = 0; i < ll;) {
            while (i < ll && line[i] == ' ') i++;
            if (i >= ll) break;
            want[nw++] = (int32_t)strtol(line + i, NULL, 10);
            while (i < ll && line[i] != ' ') i++;
        }
        size_t n;
        cases++;
        if (shoal_tokenizer_encode(tok, s, sl, 0, ids, 4096, &n) == SHOAL_OK && n == nw &&
            !memcmp(ids, want, n * sizeof *ids))
            ok++;
        else
            fprintf(stderr, "%s: case %zu \"%.*s\" differs\n", name, cases - 1, (int)sl, s);
    }
    fprintf(stderr, "%s: %zu/%zu lines of %s match\n", name, ok, cases, out_file);
    free(inp);
    free(outs);
    return ok == cases && cases == 46 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 3 || !files_of(argv[2]) || (strcmp(argv[1], "gguf") && strcmp(argv[1], "hfjson"))) {
        fprintf(stderr, "usage: %s gguf|hfjson gpt2|llama3|qwen2\n", argv[0]);
        return 2;
    }
    const char *fmt = argv[1], *name = argv[2];
    const vocab_files *vf = files_of(name);
    char a[1024], b[1024], err[512] = "", label[64];
    snprintf(label, sizeof label, "%s-%s", fmt, name);
    shoal_tokenizer *base = NULL, *tok = NULL;
    int rc = shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, vf->vocab), testdata_path(b, sizeof b, vf->merges),
                                             vf->pre, &base, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) return check_report(label);
    size_t n_merges = 0;
    char **merges = read_merges(testdata_path(b, sizeof b, vf->merges), &n_merges);
    CHECK(merges && n_merges > 1000);
    const extra *ex = !strcmp(name, "llama3") ? llama3_extra : !strcmp(name, "qwen2") ? qwen2_extra : NULL;
    size_t n_ex = ex ? 3 : 0;

    char dir[] = "/tmp/shoal_tok_synth_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    if (!strcmp(fmt, "gguf")) {
        snprintf(path, sizeof path, "%s/vocab.gguf", dir);
        int32_t bos = ex ? ex[0].id : 50256, eos = ex ? ex[!strcmp(name, "llama3") ? 1 : 0].id : 50256;
        CHECK(write_gguf(path, base, ex, n_ex, vf->pre, merges, n_merges, bos, eos) == 0);
        rc = shoal_tokenizer_load_gguf(path, &tok, err, sizeof err);
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        CHECK(write_json(path, name, base, ex, n_ex, merges, n_merges) == 0);
        rc = shoal_tokenizer_load_hf_json(path, &tok, err, sizeof err);
    }
    CHECK_RC(rc, SHOAL_OK, err);
    if (tok) {
        CHECK(compare_outs(label, tok, vf->out) == 0);
        CHECK_EQ_INT(shoal_tokenizer_get_kind(tok), SHOAL_TOKENIZER_BPE);
        if (!strcmp(name, "llama3")) {
            CHECK_EQ_INT(shoal_tokenizer_bos_id(tok), 128000);
            CHECK_EQ_INT(shoal_tokenizer_eos_id(tok), 128001);
            CHECK_EQ_INT(shoal_tokenizer_eot_id(tok), 128009);
            CHECK(shoal_tokenizer_is_eog(tok, 128009) && shoal_tokenizer_is_eog(tok, 128001));
            CHECK_EQ_INT(shoal_tokenizer_add_bos(tok), !strcmp(fmt, "hfjson"));
            const char *chat = "<|begin_of_text|>Hi<|eot_id|>";
            int32_t ids[16];
            size_t n;
            CHECK_RC(shoal_tokenizer_encode(tok, chat, strlen(chat), SHOAL_TOKENIZE_PARSE_SPECIAL, ids, 16, &n),
                     SHOAL_OK, "");
            CHECK(n == 3 && ids[0] == 128000 && ids[1] == 13347 && ids[2] == 128009);
        }
        if (!strcmp(name, "qwen2")) {
            CHECK_EQ_INT(shoal_tokenizer_eos_id(tok), 151643);
            CHECK_EQ_INT(shoal_tokenizer_eot_id(tok), 151645);
            CHECK(shoal_tokenizer_is_eog(tok, 151645));
            const char *chat = "<|im_start|>user\nhi<|im_end|>";
            int32_t ids[16];
            size_t n;
            CHECK_RC(shoal_tokenizer_encode(tok, chat, strlen(chat), SHOAL_TOKENIZE_PARSE_SPECIAL, ids, 16, &n),
                     SHOAL_OK, "");
            CHECK(n == 5 && ids[0] == 151644 && ids[4] == 151645);
            if (!strcmp(fmt, "hfjson")) check_nfc(label, tok, base);
        }
        if (!strcmp(name, "gpt2")) CHECK_EQ_INT(shoal_tokenizer_eos_id(tok), 50256);
    }
    shoal_tokenizer_free(tok);
    shoal_tokenizer_free(base);
    for (size_t i = 0; i < n_merges; i++) free(merges[i]);
    free(merges);
    unlink(path);
    rmdir(dir);
    return check_report(label);
}
