/* The Unicode normalizer (src/model/tokenizer/normalize.c) against references independent of
 * its tables:
 *  - normalization_vectors.txt, made by gen_normalization_vectors.py with Python's
 *    unicodedata.normalize (Unicode 14.0): hand-picked cases, every character some form changes,
 *    random sequences of marks, composable characters and jamo;
 *  - Unicode's own NormalizationTest.txt when the machine has it (Debian's unicode-data:
 *    /usr/share/unicode/NormalizationTest.txt[.bz2]); its lines with characters newer than the
 *    tables' version (DerivedAge.txt) are skipped. Without it this part is skipped with a
 *    message: the committed vectors are enough on their own.
 * Both are checked with NormalizationTest.txt's invariants (c2 == NFC(c1) == NFC(c2) == NFC(c3),
 * c4 == NFC(c4) == NFC(c5), ... for all four forms), and every code point that Part 1 does not
 * list must be unchanged by every form. Then bytes that are not UTF-8, the "unchanged text is
 * not copied" contract, and a 200 000-mark run (linear time, stable ordering).
 *
 *   test_tok_normalize VECTORS [UCD_DIR]      UCD_DIR default /usr/share/unicode */
#include <stdint.h>

#include "model/tokenizer/normalize.h"
#include "model/tokenizer/unicode.h"
#include "tests/tokenizer/tok_check.h"

static shoal__norm_buf nb;
static const int forms[4] = {SHOAL__NORM_NFC, SHOAL__NORM_NFD, SHOAL__NORM_NFKC, SHOAL__NORM_NFKD};

/* normalize(form, s) == want? */
static int norm_is(int form, const char *s, size_t n, const char *want, size_t wn) {
    const char *r;
    size_t rn;
    if (shoal__normalize(form, s, n, &nb, &r, &rn) != SHOAL_OK) return 0;
    return rn == wn && !memcmp(r, want, wn);
}

typedef struct field {
    char s[512];
    size_t n;
} field;

/* "0041 030A" -> UTF-8; 0 on a malformed field. *newest gets the largest code point. */
static int parse_field(const char *p, const char *end, field *f, uint32_t *cps, size_t *ncp) {
    f->n = 0;
    *ncp = 0;
    while (p < end) {
        while (p < end && *p == ' ') p++;
        if (p >= end) break;
        char *q;
        unsigned long v = strtoul(p, &q, 16);
        if (q == p || v > 0x10FFFF || f->n + 4 > sizeof f->s || *ncp >= 64) return 0;
        f->n += shoal__utf8_encode((uint32_t)v, f->s + f->n);
        cps[(*ncp)++] = (uint32_t)v;
        p = q;
    }
    return 1;
}

typedef struct run_stats {
    size_t lines, skipped, failed, part1;
    /* every checked line joined with '|' (a starter nothing composes with, so the parts do not
     * interact): source, then the four forms; checks the stretch logic over one long text */
    char *cat[5];
    size_t cat_len[5], cat_cap;
} run_stats;

static void cat_add(run_stats *st, const field *f) {
    size_t need = 0;
    for (int i = 0; i < 5; i++)
        if (st->cat_len[i] + f[i].n + 1 > need) need = st->cat_len[i] + f[i].n + 1;
    if (need > st->cat_cap) {
        size_t c = st->cat_cap ? st->cat_cap * 2 : 1 << 16;
        while (c < need) c *= 2;
        for (int i = 0; i < 5; i++) {
            char *p = realloc(st->cat[i], c);
            if (!p) abort();
            st->cat[i] = p;
        }
        st->cat_cap = c;
    }
    for (int i = 0; i < 5; i++) {
        memcpy(st->cat[i] + st->cat_len[i], f[i].s, f[i].n);
        st->cat_len[i] += f[i].n;
        st->cat[i][st->cat_len[i]++] = '|';
    }
}

static void cat_check(const char *name, run_stats *st) {
    static const int col[4] = {1, 2, 3, 4};
    for (int k = 0; k < 4; k++) {
        if (!norm_is(forms[k], st->cat[0], st->cat_len[0], st->cat[col[k]], st->cat_len[col[k]])) {
            fprintf(stderr, "%s: %s of all lines joined differs\n", name, shoal__norm_name(forms[k]));
            check_failures++;
        }
    }
    for (int i = 0; i < 5; i++) free(st->cat[i]);
}

/* Runs every line of a NormalizationTest-format text. assigned: bitmap of the code points of
 * the tables' version (NULL: all); listed gets the Part 1 characters. */
static void run_vectors(const char *name, char *text, size_t len, const uint8_t *assigned, uint8_t *listed,
                        run_stats *st) {
    int part = -1;
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *eol = nl ? nl : text + len;
        char *next = nl ? nl + 1 : text + len;
        char *hash = memchr(line, '#', (size_t)(eol - line));
        char *end = hash ? hash : eol;
        if (line[0] == '@') {
            part = atoi(line + 5);
            line = next;
            continue;
        }
        field f[5];
        uint32_t cps[5][64];
        size_t ncp[5];
        int nf = 0, ok = 1, old = 1;
        char *p = line;
        while (nf < 5 && p < end) {
            char *semi = memchr(p, ';', (size_t)(end - p));
            if (!semi) break;
            if (!parse_field(p, semi, &f[nf], cps[nf], &ncp[nf])) ok = 0;
            for (size_t k = 0; k < ncp[nf]; k++)
                if (assigned && !(assigned[cps[nf][k] >> 3] >> (cps[nf][k] & 7) & 1)) old = 0;
            nf++;
            p = semi + 1;
        }
        if (nf == 0) {
            line = next;
            continue;
        }
        if (nf != 5 || !ok || !f[0].n) {
            fprintf(stderr, "%s: malformed line \"%.*s\"\n", name, (int)(eol - line), line);
            st->failed++;
            line = next;
            continue;
        }
        if (part == 1 && ncp[0] == 1) listed[cps[0][0] >> 3] |= (uint8_t)(1 << (cps[0][0] & 7));
        if (!old) {
            st->skipped++;
            line = next;
            continue;
        }
        for (int i = 1; i < 5; i++)
            if (!f[i].n) f[i] = f[0]; /* our vectors: empty is the source */
        st->lines++;
        if (part == 1) st->part1++;
        cat_add(st, f);
        /* NormalizationTest.txt's invariants: c2/c3 from c1..c3, c4/c5 from c4..c5 for NFC/NFD;
         * c4/c5 from every column for NFKC/NFKD */
        int bad = 0;
        for (int c = 0; c < 5; c++) {
            if (c < 3 && !norm_is(SHOAL__NORM_NFC, f[c].s, f[c].n, f[1].s, f[1].n)) bad |= 1;
            if (c >= 3 && !norm_is(SHOAL__NORM_NFC, f[c].s, f[c].n, f[3].s, f[3].n)) bad |= 1;
            if (c < 3 && !norm_is(SHOAL__NORM_NFD, f[c].s, f[c].n, f[2].s, f[2].n)) bad |= 2;
            if (c >= 3 && !norm_is(SHOAL__NORM_NFD, f[c].s, f[c].n, f[4].s, f[4].n)) bad |= 2;
            if (!norm_is(SHOAL__NORM_NFKC, f[c].s, f[c].n, f[3].s, f[3].n)) bad |= 4;
            if (!norm_is(SHOAL__NORM_NFKD, f[c].s, f[c].n, f[4].s, f[4].n)) bad |= 8;
        }
        if (bad) {
            if (st->failed < 20)
                fprintf(stderr, "%s: line \"%.*s\" fails for%s%s%s%s\n", name, (int)(end - line), line,
                        bad & 1 ? " NFC" : "", bad & 2 ? " NFD" : "", bad & 4 ? " NFKC" : "", bad & 8 ? " NFKD" : "");
            st->failed++;
        }
        line = next;
    }
}

/* Every code point not listed in Part 1 (nor skipped) is unchanged by every form. */
static size_t check_unlisted(const char *name, const uint8_t *listed, int skip_hangul) {
    size_t bad = 0, checked = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if ((cp >= 0xD800 && cp <= 0xDFFF) || (listed[cp >> 3] >> (cp & 7) & 1)) continue;
        if (skip_hangul && cp >= 0xAC00 && cp <= 0xD7A3) continue;
        char s[4];
        size_t n = shoal__utf8_encode(cp, s);
        for (int f = 0; f < 4; f++)
            if (!norm_is(forms[f], s, n, s, n)) {
                if (bad++ < 10) fprintf(stderr, "%s: U+%04X is changed by %s\n", name, cp, shoal__norm_name(forms[f]));
            }
        checked++;
    }
    fprintf(stderr, "%s: %zu code points outside Part 1 are unchanged by all four forms\n", name, checked - bad);
    return bad;
}

/* DerivedAge.txt -> bitmap of the code points assigned in version <= want ("14.0"). */
static uint8_t *read_age(const char *dir, const char *want) {
    char path[1024];
    snprintf(path, sizeof path, "%s/DerivedAge.txt", dir);
    size_t len;
    char *t = slurp(path, &len);
    if (!t) return NULL;
    int wmaj = atoi(want), wmin = atoi(strchr(want, '.') + 1);
    uint8_t *bits = calloc(0x110000 / 8, 1);
    for (char *line = t; bits && line && *line;) {
        char *nl = strchr(line, '\n');
        unsigned long lo, hi;
        int maj, min, k;
        if (line[0] != '#' && sscanf(line, "%lx..%lx ; %d.%d%n", &lo, &hi, &maj, &min, &k) == 4) {
        } else if (line[0] != '#' && sscanf(line, "%lx ; %d.%d", &lo, &maj, &min) == 3) {
            hi = lo;
        } else {
            line = nl ? nl + 1 : NULL;
            continue;
        }
        if ((maj < wmaj || (maj == wmaj && min <= wmin)) && hi <= 0x10FFFF)
            for (unsigned long c = lo; c <= hi; c++) bits[c >> 3] |= (uint8_t)(1 << (c & 7));
        line = nl ? nl + 1 : NULL;
    }
    free(t);
    return bits;
}

/* NormalizationTest.txt, plain or through bzcat; NULL when neither is there. */
static char *read_official(const char *dir, size_t *len) {
    char path[1024], cmd[1200];
    snprintf(path, sizeof path, "%s/NormalizationTest.txt", dir);
    if (file_exists(path)) return slurp(path, len);
    snprintf(path, sizeof path, "%s/NormalizationTest.txt.bz2", dir);
    if (!file_exists(path)) return NULL;
    snprintf(cmd, sizeof cmd, "bzcat '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 20, n = 0, r;
    char *b = malloc(cap + 1);
    while (b && (r = fread(b + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            char *nbuf = realloc(b, cap * 2 + 1);
            if (!nbuf) {
                free(b);
                b = NULL;
                break;
            }
            b = nbuf;
            cap *= 2;
        }
    }
    if (pclose(p) != 0 || n < 1000) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

#define NORM_IS(form, in, want) CHECK(norm_is(form, in, sizeof(in) - 1, want, sizeof(want) - 1))

/* Every code point below a form's first changing one (what the byte-level fast path and the
 * pre-tokenizer's check skip) is a starter that the form never changes. */
static void check_first(void) {
    for (int f = 0; f < 4; f++) {
        uint32_t first;
        unsigned not_yes = shoal__norm_quick_bits(forms[f], &first);
        CHECK(first >= 0x80 && first <= 0x300);
        for (uint32_t cp = 0; cp < first; cp++) {
            unsigned p = shoal__norm_props(cp);
            if ((p & 0xFF) || ((p >> 8) & not_yes)) {
                fprintf(stderr, "%s: U+%04X is below the first changing code point U+%04X but may change\n",
                        shoal__norm_name(forms[f]), cp, first);
                check_failures++;
            }
        }
    }
    uint32_t first;
    CHECK_EQ_INT(shoal__norm_quick_bits(SHOAL__NORM_NONE, &first), 0);
    CHECK(first == UINT32_MAX);
}

static void check_bytes(void) {
    /* bytes that are not UTF-8 stay as they are and block composition across them */
    NORM_IS(SHOAL__NORM_NFC, "e\xCC\x81", "\xC3\xA9");
    NORM_IS(SHOAL__NORM_NFC, "e\xFF\xCC\x81", "e\xFF\xCC\x81");
    NORM_IS(SHOAL__NORM_NFD, "\xC3\xA9\xFF", "e\xCC\x81\xFF");
    NORM_IS(SHOAL__NORM_NFD, "\xC3\xA9\xCC", "e\xCC\x81\xCC");       /* truncated sequence */
    NORM_IS(SHOAL__NORM_NFC, "e\xCC", "e\xCC");
    NORM_IS(SHOAL__NORM_NFC, "\xCC\x81", "\xCC\x81");                  /* leading mark */
    NORM_IS(SHOAL__NORM_NFC, "e\xC0\x81\xCC\x81", "e\xC0\x81\xCC\x81"); /* overlong */
    NORM_IS(SHOAL__NORM_NFC, "e\xED\xA0\x80\xCC\x81", "e\xED\xA0\x80\xCC\x81"); /* surrogate */
    NORM_IS(SHOAL__NORM_NFC, "\x80\xCC\x81\xCC\xA3", "\x80\xCC\xA3\xCC\x81"); /* reordered after a stray byte */
    NORM_IS(SHOAL__NORM_NFKC, "\xEF\xAC\x81\xFE", "fi\xFE");
    NORM_IS(SHOAL__NORM_NFC, "caf\xC3\xA9 A\xCC\x8A \x80 \xE1\x84\x80\xE1\x85\xA1!",
            "caf\xC3\xA9 \xC3\x85 \x80 \xEA\xB0\x80!");
    /* the mark after a multi-byte starter that precedes the first interesting byte */
    NORM_IS(SHOAL__NORM_NFC, "\xC5\x8D\xCC\x80", "\xE1\xB9\x91"); /* o-macron + grave -> U+1E51 */
    NORM_IS(SHOAL__NORM_NFC, "\xC3\xA9\xA9\xCC\x81", "\xC3\xA9\xA9\xCC\x81"); /* stray byte in between */
    for (int f = 0; f < 4; f++) {
        NORM_IS(forms[f], "", "");
        NORM_IS(forms[f], "plain ASCII text\n", "plain ASCII text\n");
    }

    /* unchanged text comes back as the caller's pointer; changed text in the buffer */
    const char *r;
    size_t rn;
    static const char same[] = "na\xC3\xAFve caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xED\x95\x9C";
    CHECK_EQ_INT(shoal__normalize(SHOAL__NORM_NFC, same, sizeof same - 1, &nb, &r, &rn), SHOAL_OK);
    CHECK(r == same && rn == sizeof same - 1);
    CHECK_EQ_INT(shoal__normalize(SHOAL__NORM_NONE, "e\xCC\x81", 3, &nb, &r, &rn), SHOAL_OK);
    CHECK(rn == 3);
    CHECK_EQ_INT(shoal__normalize(9, "x", 1, &nb, &r, &rn), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal__norm_by_name("NFKD"), SHOAL__NORM_NFKD);
    CHECK_EQ_INT(shoal__norm_by_name("nfc"), -1);
}

/* 'a' then 100 000 pairs of U+0301 (class 230), U+0316 (220): all of U+0316 sort first, then
 * 'a' composes with the first U+0301 (U+00E1); the other acutes are blocked by the first one. */
static void check_long_run(void) {
    size_t pairs = 100000, n = 1 + pairs * 4;
    char *s = malloc(n), *want = malloc(n);
    CHECK(s && want);
    if (!s || !want) return;
    s[0] = 'a';
    for (size_t i = 0; i < pairs; i++) memcpy(s + 1 + 4 * i, "\xCC\x81\xCC\x96", 4);
    size_t w = 0;
    memcpy(want, "\xC3\xA1", 2);
    w = 2;
    for (size_t i = 0; i < pairs; i++, w += 2) memcpy(want + w, "\xCC\x96", 2);
    for (size_t i = 1; i < pairs; i++, w += 2) memcpy(want + w, "\xCC\x81", 2);
    CHECK(norm_is(SHOAL__NORM_NFC, s, n, want, w));
    free(s);
    free(want);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s normalization_vectors.txt [UCD_DIR]\n", argv[0]);
        return 2;
    }
    const char *ucd = argc > 2 ? argv[2] : "/usr/share/unicode";
    fprintf(stderr, "normalizer tables: Unicode %s\n", shoal__norm_unicode_version);
    uint8_t *listed = calloc(0x110000 / 8, 1);
    CHECK(listed != NULL);
    size_t len;
    char *text = slurp(argv[1], &len);
    CHECK(text != NULL);
    if (text && listed) {
        run_stats st = {0};
        run_vectors("vectors", text, len, NULL, listed, &st);
        fprintf(stderr, "vectors: %zu lines (%zu single characters), %zu failed\n", st.lines, st.part1, st.failed);
        CHECK_EQ_INT(st.failed, 0);
        CHECK(st.lines > 6000);
        cat_check("vectors", &st);
        CHECK_EQ_INT(check_unlisted("vectors", listed, 1), 0);
    }
    free(text);

    text = read_official(ucd, &len);
    uint8_t *age = text ? read_age(ucd, shoal__norm_unicode_version) : NULL;
    if (!text || !age) {
        fprintf(stderr, "NormalizationTest.txt / DerivedAge.txt not found in %s: official test skipped "
                        "(apt-get install unicode-data)\n", ucd);
    } else if (listed) {
        memset(listed, 0, 0x110000 / 8);
        run_stats st = {0};
        run_vectors("NormalizationTest", text, len, age, listed, &st);
        fprintf(stderr, "NormalizationTest: %zu lines checked (%zu single characters), %zu skipped "
                        "(characters newer than Unicode %s), %zu failed\n",
                st.lines, st.part1, st.skipped, shoal__norm_unicode_version, st.failed);
        CHECK_EQ_INT(st.failed, 0);
        CHECK(st.lines > 15000);
        cat_check("NormalizationTest", &st);
        CHECK_EQ_INT(check_unlisted("NormalizationTest", listed, 0), 0);
    }
    free(text);
    free(age);
    free(listed);

    check_first();
    check_bytes();
    check_long_run();
    shoal__norm_buf_free(&nb);
    return check_report("tok_normalize");
}
