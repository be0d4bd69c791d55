/* Fuzz target: Unicode normalization (src/model/tokenizer/normalize.c) of arbitrary bytes, on
 * its own and inside tokenizers whose tokenizer.json names NFC, NFD, NFKC or NFKD. Input: any
 * bytes (the first one is text too). Checks, for every input x and every form F:
 *  - F(F(x)) == F(x), and the forms agree with each other: NFC(NFD(x)) == NFC(x),
 *    NFD(NFC(x)) == NFD(x), NFKC(NFKD(x)) == NFKC(x), NFC(NFKD(x)) == NFKC(x),
 *    NFKD(NFC(x)) == NFKD(x), NFD(NFKC(x)) == NFKD(x);
 *  - the bytes that are not UTF-8 come out unchanged and in order (they block composition);
 *  - a byte-level tokenizer with that normalizer decodes encode(x) back to F(x).
 * A broken check aborts, which the driver (or libFuzzer) reports as a crash. */
#include <stdio.h>

#include "fuzz/tokenizer/fuzz_tok_common.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"

static const int forms[4] = {SHOAL__NORM_NFC, SHOAL__NORM_NFD, SHOAL__NORM_NFKC, SHOAL__NORM_NFKD};
static shoal_tokenizer *toks[4];
static int ready;

typedef struct text {
    char *p;
    size_t n;
} text;

/* F(s) into a fresh allocation. */
static text norm(int form, const char *s, size_t n) {
    static shoal__norm_buf b;
    const char *r;
    size_t rn;
    if (shoal__normalize(form, s, n, &b, &r, &rn) != SHOAL_OK) abort();
    text t = {malloc(rn + 1), rn};
    if (!t.p) abort();
    memcpy(t.p, r, rn);
    return t;
}

static void same(text a, text b) {
    if (a.n != b.n || memcmp(a.p, b.p, a.n)) abort();
}

/* The bytes of s that are not part of valid UTF-8, in order. */
static text invalid_bytes(const char *s, size_t n) {
    text t = {malloc(n + 1), 0};
    if (!t.p) abort();
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = shoal__utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp == SHOAL__UNICODE_INVALID) t.p[t.n++] = s[i];
        i += l;
    }
    return t;
}

static void init(void) {
    static char json[16384];
    for (int f = 0; f < 4; f++) {
        size_t k = (size_t)snprintf(json, sizeof json,
                                    "{\"normalizer\": {\"type\": \"%s\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
                                    "\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": {",
                                    shoal__norm_name(forms[f]));
        for (unsigned b = 0; b < 256; b++) {
            char u[4];
            size_t ul = shoal__utf8_encode(shoal__byte_to_cp(b), u);
            int esc = ul == 1 && (u[0] == '"' || u[0] == '\\');
            k += (size_t)snprintf(json + k, sizeof json - k, "%s\"%s%.*s\": %u", b ? ", " : "", esc ? "\\" : "",
                                  (int)ul, u, b);
        }
        k += (size_t)snprintf(json + k, sizeof json - k, "}}}");
        if (shoal__tok_load_hf_json_mem(json, k, "norm.json", &toks[f], NULL, 0) != SHOAL_OK) abort();
    }
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) init();
    const char *s = (const char *)data;
    text c = norm(SHOAL__NORM_NFC, s, size), d = norm(SHOAL__NORM_NFD, s, size);
    text kc = norm(SHOAL__NORM_NFKC, s, size), kd = norm(SHOAL__NORM_NFKD, s, size);
    text all[4] = {c, d, kc, kd};
    for (int f = 0; f < 4; f++) {
        text again = norm(forms[f], all[f].p, all[f].n);
        same(again, all[f]);
        free(again.p);
    }
    static const int rel[][3] = { /* form(all[from]) == all[to] */
        {SHOAL__NORM_NFC, 1, 0}, {SHOAL__NORM_NFD, 0, 1}, {SHOAL__NORM_NFKC, 3, 2},
        {SHOAL__NORM_NFC, 3, 2}, {SHOAL__NORM_NFKD, 0, 3}, {SHOAL__NORM_NFD, 2, 3}};
    for (size_t r = 0; r < sizeof rel / sizeof rel[0]; r++) {
        text t = norm(rel[r][0], all[rel[r][1]].p, all[rel[r][1]].n);
        same(t, all[rel[r][2]]);
        free(t.p);
    }
    text bad = invalid_bytes(s, size);
    for (int f = 0; f < 4; f++) {
        text b2 = invalid_bytes(all[f].p, all[f].n);
        same(b2, bad);
        free(b2.p);
    }
    free(bad.p);
    static int32_t ids[FUZZ_MAX_IDS];
    static char back[FUZZ_MAX_IDS];
    for (int f = 0; f < 4; f++) {
        size_t n, bn;
        fuzz_tok_encode(toks[f], s, size, 0);
        if (all[f].n > FUZZ_MAX_IDS) continue; /* one id per byte here */
        if (shoal_tokenizer_encode(toks[f], s, size, 0, ids, FUZZ_MAX_IDS, &n) != SHOAL_OK) abort();
        if (shoal_tokenizer_decode(toks[f], ids, n, 0, back, sizeof back, &bn) != SHOAL_OK) abort();
        if (bn != all[f].n || memcmp(back, all[f].p, bn)) abort();
    }
    for (int f = 0; f < 4; f++) free(all[f].p);
    return 0;
}
