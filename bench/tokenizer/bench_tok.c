/* Tokenizer encode throughput with and without Unicode normalization (docs/tokenizer.md,
 * "Performance"). The Qwen2 vocabulary of the test data is written out twice as a
 * tokenizer.json in Qwen2's shape, once with "normalizer": null (what encoding did before NFC
 * was applied) and once with {"type": "NFC"}, and three texts are encoded paragraph by
 * paragraph (about 1 KB each) with both:
 *   english   ASCII English-like prose: the byte-level fast path;
 *   multi     NFC text in many scripts (accented Latin, Vietnamese, Greek, Cyrillic, Hindi,
 *             Chinese, Korean syllables, emoji): the code-point quick check;
 *   nfd       the same text decomposed (NFD): every accented word is normalized for real.
 * The normalizer alone (shoal__normalize, NFC) is timed on the same texts. Prints a table;
 * best of --reps runs, the two tokenizers
 * interleaved. A timing is never a test assertion.
 *
 *   bench_tok [--mb N] [--reps R]        (default 4 MB per text, 5 repetitions; run from the
 *                                         repository root, or set SHOAL_TESTDATA) */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/tokenizer/normalize.h"
#include "shoal/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: other load on a shared machine matters less */
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 42;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 16;
        while (c < b->n + n + 1) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) exit(1);
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0) put(&b, tmp, r);
    fclose(f);
    *len = b.n;
    return b.p;
}

/* Paragraphs of words chosen from words[], ~1 KB each, until size bytes. */
static buf make_text(const char *const *words, size_t n_words, size_t size) {
    buf b = {0};
    size_t para = 0;
    while (b.n < size) {
        const char *w = words[rng() % n_words];
        puts_(&b, w);
        uint64_t r = rng() % 16;
        puts_(&b, r == 0 ? ", " : r == 1 ? ". " : " ");
        if (b.n - para > 1000) {
            puts_(&b, "\n");
            para = b.n;
        }
    }
    return b;
}

static const char *const english[] = {
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on", "be", "at", "by",
    "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which", "one", "you", "were",
    "tokenizer", "normalization", "throughput", "measured", "model", "inference", "Hello", "World", "2024",
    "isn't", "we'll", "(example)", "data-set", "running", "quickly", "language", "between", "because"};
static const char *const multi[] = {
    "caf\xC3\xA9", "na\xC3\xAFve", "r\xC3\xA9sum\xC3\xA9", "Stra\xC3\x9F" "e", "\xC3\xBC" "ber", "fa\xC3\xA7" "ade",
    "Ti\xE1\xBA\xBFng", "Vi\xE1\xBB\x87t", "ng\xC6\xB0\xE1\xBB\x9Di", "\xCE\xB1\xCE\xBB\xCF\x86\xCE\xAC\xCE\xB2\xCE\xB7\xCF\x84\xCE\xBF",
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "\xD0\xB9\xD0\xBE\xD0\xB4", "\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D\xE0\xA4\xA6\xE0\xA5\x80",
    "\xE4\xBD\xA0\xE5\xA5\xBD", "\xE4\xB8\x96\xE7\x95\x8C", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
    "\xEC\x95\x88\xEB\x85\x95", "\xF0\x9F\x9A\x80", "the", "and", "model", "data", "2024"};

typedef struct tok_pair {
    shoal_tokenizer *plain, *nfc;
} tok_pair;

/* tokenizer.json text in Qwen2's shape from vocab.json + merges.txt. */
static int write_json(const char *path, const char *vocab, size_t vl, const char *merges, size_t ml, int nfc) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fprintf(f, "{\"normalizer\": %s, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
               "\"Split\", \"pattern\": {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?"
               "\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, "
               "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
               "\"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", \"vocab\": ",
            nfc ? "{\"type\": \"NFC\"}" : "null");
    fwrite(vocab, 1, vl, f);
    fprintf(f, ", \"merges\": [");
    int first = 1;
    for (size_t i = 0; i < ml;) {
        const char *e = memchr(merges + i, '\n', ml - i);
        size_t l = e ? (size_t)(e - (merges + i)) : ml - i;
        if (l && merges[i] != '#') {
            fputs(first ? "\"" : ", \"", f);
            first = 0;
            for (size_t k = 0; k < l; k++) {
                char c = merges[i + k];
                if (c == '"' || c == '\\') fputc('\\', f);
                if (c != '\r') fputc(c, f);
            }
            fputc('"', f);
        }
        i += l + 1;
    }
    fprintf(f, "]}}\n");
    return fclose(f);
}

/* Seconds to encode text paragraph by paragraph once; *ids_out gets the id count. */
static double encode_time(const shoal_tokenizer *t, const buf *text, size_t *ids_out) {
    static int32_t ids[1 << 16];
    size_t total = 0;
    double t0 = now();
    for (size_t i = 0; i < text->n;) {
        const char *e = memchr(text->p + i, '\n', text->n - i);
        size_t l = e ? (size_t)(e - (text->p + i)) + 1 : text->n - i;
        size_t n;
        if (shoal_tokenizer_encode(t, text->p + i, l, 0, ids, 1 << 16, &n) != SHOAL_OK) {
            fprintf(stderr, "encode failed\n");
            exit(1);
        }
        total += n;
        i += l;
    }
    *ids_out = total;
    return now() - t0;
}

static double normalize_rate(const buf *text, int reps) {
    shoal__norm_buf nb = {0};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < text->n;) {
            const char *e = memchr(text->p + i, '\n', text->n - i);
            size_t l = e ? (size_t)(e - (text->p + i)) + 1 : text->n - i;
            const char *res;
            size_t rl;
            if (shoal__normalize(SHOAL__NORM_NFC, text->p + i, l, &nb, &res, &rl) != SHOAL_OK) exit(1);
            i += l;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    shoal__norm_buf_free(&nb);
    return (double)text->n / best / 1e6;
}

int main(int argc, char **argv) {
    double mb = 4;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--mb N] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    const char *td = getenv("SHOAL_TESTDATA");
    if (!td || !*td) td = "../shared/testdata";
    char vp[1024], mp[1024], err[512];
    snprintf(vp, sizeof vp, "%s/tokenizers/qwen2/vocab.json", td);
    snprintf(mp, sizeof mp, "%s/tokenizers/qwen2/merges.txt", td);
    size_t vl, ml;
    char *vocab = slurp(vp, &vl), *merges = slurp(mp, &ml);
    if (!vocab || !merges) {
        fprintf(stderr, "cannot read %s / %s (set SHOAL_TESTDATA)\n", vp, mp);
        return 1;
    }
    char dir[] = "/tmp/shoal_bench_tok_XXXXXX", p0[600], p1[600];
    if (!mkdtemp(dir)) return 1;
    snprintf(p0, sizeof p0, "%s/plain.json", dir);
    snprintf(p1, sizeof p1, "%s/nfc.json", dir);
    tok_pair tp = {0};
    if (write_json(p0, vocab, vl, merges, ml, 0) || write_json(p1, vocab, vl, merges, ml, 1) ||
        shoal_tokenizer_load_hf_json(p0, &tp.plain, err, sizeof err) ||
        shoal_tokenizer_load_hf_json(p1, &tp.nfc, err, sizeof err)) {
        fprintf(stderr, "loading failed: %s\n", err);
        return 1;
    }
    unlink(p0);
    unlink(p1);
    rmdir(dir);

    size_t size = (size_t)(mb * 1e6);
    buf texts[3];
    texts[0] = make_text(english, sizeof english / sizeof english[0], size);
    texts[1] = make_text(multi, sizeof multi / sizeof multi[0], size);
    texts[2] = (buf){0};
    {
        shoal__norm_buf nb = {0};
        const char *r;
        size_t rl;
        if (shoal__normalize(SHOAL__NORM_NFD, texts[1].p, texts[1].n, &nb, &r, &rl) != SHOAL_OK) return 1;
        put(&texts[2], r, rl);
        shoal__norm_buf_free(&nb);
    }
    static const char *const names[] = {"english", "multi", "nfd"};
    printf("Qwen2 vocabulary, paragraphs of ~1 KB, best of %d; MB/s of input text per CPU second\n", reps);
    printf("%-8s %8s %14s %12s %12s %10s %10s\n", "text", "MB", "normalize NFC", "encode none", "encode NFC",
           "NFC cost", "ids");
    for (int k = 0; k < 3; k++) {
        size_t n0 = 0, n1 = 0;
        double nr = normalize_rate(&texts[k], reps), t0 = 1e30, t1 = 1e30;
        for (int r = 0; r < reps; r++) { /* interleaved, so drift of a shared machine hits both */
            double a = encode_time(tp.plain, &texts[k], &n0), b = encode_time(tp.nfc, &texts[k], &n1);
            t0 = a < t0 ? a : t0;
            t1 = b < t1 ? b : t1;
        }
        double r0 = texts[k].n / t0 / 1e6, r1 = texts[k].n / t1 / 1e6;
        printf("%-8s %8.2f %14.0f %12.2f %12.2f %9.1f%% %10zu\n", names[k], texts[k].n / 1e6, nr, r0, r1,
               (t1 / t0 - 1) * 100, n1);
        if (k == 2) {
            size_t nc;
            encode_time(tp.nfc, &texts[1], &nc);
            printf("         (nfd with NFC gives %s id count as multi: %zu vs %zu; without: %zu)\n",
                   nc == n1 ? "the same" : "ANOTHER", n1, nc, n0);
        }
    }
    for (int k = 0; k < 3; k++) free(texts[k].p);
    free(vocab);
    free(merges);
    shoal_tokenizer_free(tp.plain);
    shoal_tokenizer_free(tp.nfc);
    return 0;
}
