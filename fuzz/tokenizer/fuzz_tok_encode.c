#define _GNU_SOURCE /* memmem */
/* Fuzz target: encoding arbitrary bytes. The first byte picks flags; the rest is the text. It
 * is encoded with every vocabulary the test data provides (llama2.c tok512, Llama-2 SPM from
 * GGUF, GPT-2, Llama-3 and Qwen2 byte-level), a small built-in SPM vocabulary, and a built-in
 * byte-level vocabulary (the 256 byte tokens and a few merges) under every pre-tokenizer rule
 * (GPT-2, Llama-3, Qwen2, StarCoder, Tekken, GPT-4o, DeepSeek-V3, DeepSeek-Coder, DeepSeek LLM), so each rule's matcher sees
 * arbitrary bytes even when the test data is absent. Without PARSE_SPECIAL, decoding must give the input back
 * (SPM: unless it contains U+2581, the space symbol itself). */
#include <stdio.h>

#include "fuzz/tokenizer/fuzz_tok_common.h"

#define MAX_TOK 16
static shoal_tokenizer *toks[MAX_TOK];
static int n_toks = -1;

static const char *data_dir(void) {
    const char *d = getenv("SHOAL_TESTDATA");
    if (d && *d) return d;
    d = getenv("SHOAL_TESTDATA_DEFAULT");
    return d && *d ? d : "../shared/testdata";
}

/* Takes the result of a load: add(rc, &t) after the call, since argument order is unspecified. */
static void add(int rc, shoal_tokenizer **t) {
    if (rc == SHOAL_OK && n_toks < MAX_TOK) toks[n_toks++] = *t;
    else shoal_tokenizer_free(*t);
    *t = NULL;
}

/* Tiny vocabularies of both kinds with every byte, so round trips hold without test data. */
static void add_builtin(void) {
    static char texts[256 * 8 + 64];
    shoal_vocab_str tok[300];
    size_t n = 0, at = 0;
    const char *fixed[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) tok[n++] = (shoal_vocab_str){fixed[i], strlen(fixed[i])};
    for (int b = 0; b < 256; b++) {
        int l = snprintf(texts + at, 8, "<0x%02X>", b);
        tok[n++] = (shoal_vocab_str){texts + at, (size_t)l};
        at += (size_t)l;
    }
    tok[n++] = (shoal_vocab_str){"\xE2\x96\x81", 3};
    tok[n++] = (shoal_vocab_str){"\xE2\x96\x81" "a", 4};
    shoal_vocab_spec s = SHOAL_VOCAB_SPEC_INIT;
    s.model = "llama";
    s.n_tokens = n;
    s.tokens = tok;
    shoal_tokenizer *t = NULL;
    int rc = shoal_tokenizer_from_spec(&s, &t, NULL, 0);
    add(rc, &t);

    /* byte-level: GPT-2's printable stand-in of every byte, plus merges for "Ġt", "he", "Ġthe" */
    static char bl[256 * 4 + 64];
    static const char *const merges_text[] = {"Ä  t", "h e", "Ä t he"};
    shoal_vocab_str btok[260], merges[3];
    size_t m = 0;
    at = 0;
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) ? b : 0;
        if (!cp) { /* bytes_to_unicode: the others take U+0100.. in order */
            unsigned k = 0;
            for (unsigned c = 0; c < b; c++)
                if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
            cp = 256 + k;
        }
        size_t l = 0;
        if (cp < 0x80) bl[at] = (char)cp, l = 1;
        else bl[at] = (char)(0xC0 | cp >> 6), bl[at + 1] = (char)(0x80 | (cp & 63)), l = 2;
        btok[m++] = (shoal_vocab_str){bl + at, l};
        at += l;
    }
    static const char *const extra[] = {"Ä t", "he", "Ä the"};
    for (int i = 0; i < 3; i++) {
        btok[m++] = (shoal_vocab_str){extra[i], strlen(extra[i])};
        merges[i] = (shoal_vocab_str){merges_text[i], strlen(merges_text[i])};
    }
    static const char *const pres[] = {"gpt-2",  "llama3", "qwen2",       "starcoder",
                                       "tekken", "gpt-4o", "deepseek-v3", "deepseek-coder",
                                       "deepseek-llm"};
    for (size_t p = 0; p < sizeof pres / sizeof pres[0]; p++) {
        shoal_vocab_spec b = SHOAL_VOCAB_SPEC_INIT;
        b.model = "gpt2";
        b.pre = pres[p];
        b.n_tokens = m;
        b.tokens = btok;
        b.n_merges = 3;
        b.merges = merges;
        rc = shoal_tokenizer_from_spec(&b, &t, NULL, 0);
        if (rc != SHOAL_OK) abort(); /* every rule named here must load */
        add(rc, &t);
    }
}

static void init(void) {
    char a[1024], b[1024];
    const char *d = data_dir();
    shoal_tokenizer *t = NULL;
    int rc;
    n_toks = 0;
    snprintf(a, sizeof a, "%s/stories260K/tok512.bin", d);
    rc = shoal_tokenizer_load_llama2c(a, 512, &t, NULL, 0);
    add(rc, &t);
    snprintf(a, sizeof a, "%s/gguf/llama-2-tiny-random.gguf", d);
    rc = shoal_tokenizer_load_gguf(a, &t, NULL, 0);
    add(rc, &t);
    static const char *const sets[][3] = {{"gpt2/encoder.json", "gpt2/vocab.bpe", "gpt-2"},
                                          {"llama3/encoder.json", "llama3/vocab.bpe", "llama-bpe"},
                                          {"qwen2/vocab.json", "qwen2/merges.txt", "qwen2"}};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/tokenizers/%s", d, sets[i][0]);
        snprintf(b, sizeof b, "%s/tokenizers/%s", d, sets[i][1]);
        rc = shoal_tokenizer_load_gpt2_files(a, b, sets[i][2], &t, NULL, 0);
        add(rc, &t);
    }
    add_builtin();
    fprintf(stderr, "fuzz_tok_encode: %d vocabularies\n", n_toks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_toks < 0) init();
    if (!size) return 0;
    static const unsigned flag_sets[] = {
        0, SHOAL_TOKENIZE_ADD_SPECIAL, SHOAL_TOKENIZE_PARSE_SPECIAL,
        SHOAL_TOKENIZE_ADD_BOS | SHOAL_TOKENIZE_ADD_EOS | SHOAL_TOKENIZE_PARSE_SPECIAL};
    unsigned flags = flag_sets[data[0] % 4];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    static int32_t ids[FUZZ_MAX_IDS];
    static char back[FUZZ_MAX_IDS * 4];
    for (int k = 0; k < n_toks; k++) {
        const shoal_tokenizer *t = toks[k];
        fuzz_tok_encode(t, text, len, flags);
        if (flags & SHOAL_TOKENIZE_PARSE_SPECIAL) continue;
        if (shoal_tokenizer_get_kind(t) == SHOAL_TOKENIZER_SPM && memmem(text, len, "\xE2\x96\x81", 3)) continue;
        size_t n, bn;
        if (shoal_tokenizer_encode(t, text, len, flags, ids, FUZZ_MAX_IDS, &n) != SHOAL_OK) continue;
        if (shoal_tokenizer_decode(t, ids, n, 0, back, sizeof back, &bn) != SHOAL_OK) abort();
        if (bn != len || memcmp(back, text, len)) abort();
    }
    return 0;
}
