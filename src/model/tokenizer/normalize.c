/* Unicode normalization forms over UTF-8 (see normalize.h), following UAX #15: full canonical
 * (or compatibility) decomposition, canonical ordering of each run of non-starters by combining
 * class (stable), then, for NFC / NFKC, canonical composition: a character joins the last
 * starter when nothing between them blocks it (a starter, or a character of the same or a higher
 * class) and the pair is a primary composite (composition exclusions, singletons and non-starter
 * decompositions never recompose); Hangul syllables are decomposed and composed by arithmetic.
 *
 * Speed: most text is already normalized, so nothing is decoded while every byte is below the
 * first byte of any character that can change (U+00C0 for NFD, U+0300 for NFC, ASCII for NFKC /
 * NFKD), and past that a quick check (the NF*_QC properties and the order of combining classes)
 * runs over code points. Only the stretch around a character that fails it is redone, from the
 * last boundary before it (a starter whose quick check is Yes: nothing before it can interact
 * with anything after it) to the next boundary after it; everything else is copied. When
 * nothing fails, the caller's text is returned as it is. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/unicode.h"

#define RAW 0x80000000u /* a byte that is not valid UTF-8, kept as it is */

#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)

typedef struct form_info {
    uint8_t not_yes;    /* quick-check bits that mean "may change" */
    uint8_t compat;     /* compatibility decomposition */
    uint8_t compose;
    unsigned char fast; /* every byte below this belongs to a character that never changes */
    uint32_t first;     /* the first code point that may change (test_tok_normalize checks) */
} form_info;

static const form_info forms[] = {
    [SHOAL__NORM_NFC] = {SHOAL__NQC_NFC_NO | SHOAL__NQC_NFC_MAYBE, 0, 1, 0xCC, 0x300},
    [SHOAL__NORM_NFD] = {SHOAL__NQC_NFD_NO, 0, 0, 0xC3, 0xC0},
    [SHOAL__NORM_NFKC] = {SHOAL__NQC_NFKC_NO | SHOAL__NQC_NFKC_MAYBE, 1, 1, 0x80, 0xA0},
    [SHOAL__NORM_NFKD] = {SHOAL__NQC_NFKD_NO, 1, 0, 0x80, 0xA0},
};

unsigned shoal__norm_quick_bits(int form, uint32_t *first) {
    if (form < SHOAL__NORM_NFC || form > SHOAL__NORM_NFKD) {
        *first = UINT32_MAX; /* nothing to check */
        return 0;
    }
    *first = forms[form].first;
    return forms[form].not_yes;
}

static const char *const form_names[] = {"none", "NFC", "NFD", "NFKC", "NFKD"};

int shoal__norm_by_name(const char *name) {
    for (int f = SHOAL__NORM_NFC; f <= SHOAL__NORM_NFKD; f++)
        if (!strcmp(name, form_names[f])) return f;
    return -1;
}

const char *shoal__norm_name(int form) {
    return form >= 0 && form <= SHOAL__NORM_NFKD ? form_names[form] : "?";
}

#define props shoal__norm_props /* RAW / invalid bytes: 0, starters that never change */
#define CCC(p) ((p) & 0xFFu)
#define QC(p) ((p) >> 8)

/* The full decomposition of cp under the form: returns its length (0: cp stays itself) and
 * points *d at it (hangul[] for a syllable). */
static size_t decomposition(uint32_t cp, int compat, const uint32_t **d, uint32_t hangul[3]) {
    if (cp - S_BASE < S_COUNT) {
        uint32_t s = cp - S_BASE;
        hangul[0] = L_BASE + s / N_COUNT;
        hangul[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        hangul[2] = T_BASE + s % T_COUNT;
        *d = hangul;
        return s % T_COUNT ? 3 : 2;
    }
    if (cp > 0x10FFFF) return 0;
    unsigned blk = shoal__norm_decomp_stage1[cp >> SHOAL__NORM_DECOMP_SHIFT];
    uint16_t off = shoal__norm_decomp_stage2[(blk << SHOAL__NORM_DECOMP_SHIFT) |
                                             (cp & ((1u << SHOAL__NORM_DECOMP_SHIFT) - 1))];
    if (!off) return 0;
    uint32_t w = shoal__norm_decomp[off], nc = w & 31, nk = (w >> 5) & 31;
    if (compat && nk) {
        *d = shoal__norm_decomp + off + 1 + nc;
        return nk;
    }
    *d = shoal__norm_decomp + off + 1;
    return nc; /* 0 for a compatibility-only mapping under a canonical form */
}

/* The primary composite of a + b, 0 when there is none. b must be a possible second character
 * (NFC_QC Maybe), which keeps the search off the common path. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a - L_BASE < L_COUNT && b - V_BASE < V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a - S_BASE < S_COUNT && (a - S_BASE) % T_COUNT == 0 && b - T_BASE - 1 < T_COUNT - 1)
        return a + (b - T_BASE);
    if (a > 0x10FFFF) return 0;
    uint64_t key = ((uint64_t)a << 21) | b;
    size_t lo = 0, hi = shoal__norm_comp_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (shoal__norm_comp_keys[mid] < key) lo = mid + 1;
        else if (shoal__norm_comp_keys[mid] > key) hi = mid;
        else return shoal__norm_comp_values[mid];
    }
    return 0;
}

static int grow_out(shoal__norm_buf *b, size_t need) {
    if (need <= b->out_cap) return SHOAL_OK;
    size_t c = b->out_cap ? b->out_cap : 256;
    while (c < need) {
        if (c > SIZE_MAX / 4) return SHOAL_ERR_NOMEM;
        c *= 2;
    }
    char *p = realloc(b->out, c);
    if (!p) return SHOAL_ERR_NOMEM;
    b->out = p;
    b->out_cap = c;
    return SHOAL_OK;
}

static int grow_cp(shoal__norm_buf *b, size_t need) {
    if (need <= b->cp_cap) return SHOAL_OK;
    size_t c = b->cp_cap ? b->cp_cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / sizeof(uint32_t)) return SHOAL_ERR_NOMEM;
        c *= 2;
    }
    uint32_t *cp = realloc(b->cp, c * sizeof *cp);
    if (cp) b->cp = cp;
    uint8_t *cc = realloc(b->ccc, c);
    if (cc) b->ccc = cc;
    uint32_t *tmp = realloc(b->tmp, c * sizeof *tmp);
    if (tmp) b->tmp = tmp;
    if (!cp || !cc || !tmp) return SHOAL_ERR_NOMEM; /* what did grow stays owned by b */
    b->cp_cap = c;
    return SHOAL_OK;
}

/* Stable sort of one run of non-starters by combining class. Runs are short in real text;
 * a long one (adversarial input) is counting-sorted, so the cost stays linear. */
static void sort_run(uint32_t *cp, uint8_t *cc, size_t n, uint32_t *tmp) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = cp[i];
            uint8_t k = cc[i];
            size_t j = i;
            for (; j > 0 && cc[j - 1] > k; j--) {
                cp[j] = cp[j - 1];
                cc[j] = cc[j - 1];
            }
            cp[j] = c;
            cc[j] = k;
        }
        return;
    }
    size_t count[256] = {0}, at[256];
    for (size_t i = 0; i < n; i++) count[cc[i]]++;
    size_t sum = 0;
    for (int k = 0; k < 256; k++) {
        at[k] = sum;
        sum += count[k];
    }
    for (size_t i = 0; i < n; i++) tmp[at[cc[i]]++] = cp[i];
    memcpy(cp, tmp, n * sizeof *cp);
    size_t w = 0;
    for (int k = 0; k < 256; k++)
        for (size_t i = 0; i < count[k]; i++) cc[w++] = (uint8_t)k;
}

/* Canonical composition of cp/cc[0..n) in place; returns the new length. */
static size_t compose(uint32_t *cp, uint8_t *cc, size_t n) {
    if (!n) return 0;
    size_t st = 0;                /* the last starter in the output */
    int last = cc[0] ? 256 : 0;   /* class of the last character output since it; 256: no starter */
    size_t w = 1;
    for (size_t r = 1; r < n; r++) {
        uint32_t c = cp[r];
        int k = cc[r];
        if ((last < k || last == 0) && (QC(props(c)) & SHOAL__NQC_NFC_MAYBE)) {
            uint32_t comp = compose_pair(cp[st], c);
            if (comp) { /* primary composites are starters: cc[st] stays 0 */
                cp[st] = comp;
                continue;
            }
        }
        if (k == 0) st = w;
        last = k;
        cp[w] = c;
        cc[w] = (uint8_t)k;
        w++;
    }
    return w;
}

/* Normalizes one stretch s[0..n) that starts at a boundary and appends it to b->out at *o. */
static int normalize_stretch(const form_info *f, const unsigned char *s, size_t n, shoal__norm_buf *b,
                             size_t *o) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c, hangul[3];
        size_t cl = shoal__utf8_decode(s + i, n - i, &c);
        if (c == SHOAL__UNICODE_INVALID) c = RAW | s[i];
        i += cl;
        const uint32_t *d;
        size_t nd = decomposition(c, f->compat, &d, hangul);
        if (!nd) {
            d = &c;
            nd = 1;
        }
        if (m + nd > b->cp_cap && grow_cp(b, m + nd)) return SHOAL_ERR_NOMEM;
        for (size_t k = 0; k < nd; k++) {
            b->cp[m] = d[k];
            b->ccc[m++] = (uint8_t)CCC(props(d[k]));
        }
    }
    for (size_t i = 0; i < m;) { /* canonical ordering */
        if (!b->ccc[i]) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < m && b->ccc[j]) j++;
        if (j - i > 1) sort_run(b->cp + i, b->ccc + i, j - i, b->tmp);
        i = j;
    }
    if (f->compose) m = compose(b->cp, b->ccc, m);
    if (m > (SIZE_MAX - *o) / 4 || grow_out(b, *o + m * 4)) return SHOAL_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = b->cp[i];
        if (c & RAW) b->out[(*o)++] = (char)(c & 0xFF);
        else *o += shoal__utf8_encode(c, b->out + *o);
    }
    return SHOAL_OK;
}

/* shoal__utf8_decode, with the common valid 2- and 3-byte forms inline (the quick check runs
 * once per character of nearly all non-ASCII text). */
static inline size_t decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c >= 0xC2 && c < 0xE0 && n >= 2 && (s[1] & 0xC0) == 0x80) {
        *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (c >= 0xE0 && c < 0xF0 && n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (c != 0xE0 || s[1] >= 0xA0) && (c != 0xED || s[1] < 0xA0)) { /* not overlong, no surrogate */
        *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    return shoal__utf8_decode(s, n, cp); /* 4-byte forms and invalid bytes */
}

/* Start of the unit (character or invalid byte, as shoal__utf8_decode cuts them) that ends at
 * byte i > 0, where u[i] starts a unit. */
static size_t unit_before(const unsigned char *u, size_t i) {
    size_t p = i - 1, q = p;
    if (u[p] < 0x80) return p;
    for (int k = 0; k < 3 && q > 0 && (u[q] & 0xC0) == 0x80; k++) q--;
    uint32_t cp;
    return q + shoal__utf8_decode(u + q, i - q, &cp) == i ? q : p;
}

int shoal__normalize(int form, const char *s, size_t n, shoal__norm_buf *b, const char **res,
                     size_t *res_len) {
    *res = s;
    *res_len = n;
    if (form == SHOAL__NORM_NONE) return SHOAL_OK;
    if (form < SHOAL__NORM_NFC || form > SHOAL__NORM_NFKD) return SHOAL_ERR_INVALID;
    const form_info *f = &forms[form];
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    for (uint64_t w; k + 8 <= n; k += 8) { /* ASCII, 8 bytes at a time */
        memcpy(&w, u + k, 8);
        if (w & 0x8080808080808080ull) break;
    }
    while (k < n && u[k] < f->fast) k++;
    if (k == n) return SHOAL_OK;
    /* u[k] >= 0x80 is not a continuation of what precedes it (or is a stray one), so a unit
     * starts there; every unit before it is a boundary, and the last one may compose with it */
    size_t bnd = k ? unit_before(u, k) : 0; /* last boundary at or before k */
    size_t pos = 0, o = 0;                  /* input done; output written */
    unsigned last_ccc = 0;
    int changed = 0;
    while (k < n) {
        if (u[k] < 0x80) { /* ASCII: a boundary for every form */
            bnd = k++;
            last_ccc = 0;
            continue;
        }
        if (u[k] < f->fast) { /* below the form's first changing character, or a stray byte */
            bnd = k;
            last_ccc = 0;
            k += u[k] >= 0xC2 && k + 1 < n && (u[k + 1] & 0xC0) == 0x80 ? 2 : 1;
            continue;
        }
        uint32_t c;
        size_t cl = decode(u + k, n - k, &c);
        unsigned p = props(c), cc = CCC(p);
        if (!(QC(p) & f->not_yes)) {
            if (!cc) {
                bnd = k;
                last_ccc = 0;
                k += cl;
                continue;
            }
            if (cc >= last_ccc) {
                last_ccc = cc;
                k += cl;
                continue;
            }
        }
        /* may change around k: redo [bnd, e), e the next boundary after k */
        size_t e = k + cl;
        while (e < n && u[e] >= 0x80) {
            size_t el = decode(u + e, n - e, &c);
            unsigned ep = props(c);
            if (!CCC(ep) && !(QC(ep) & f->not_yes)) break;
            e += el;
        }
        if (bnd > pos) {
            if (grow_out(b, o + (bnd - pos))) return SHOAL_ERR_NOMEM;
            memcpy(b->out + o, s + pos, bnd - pos);
            o += bnd - pos;
        }
        int rc = normalize_stretch(f, u + bnd, e - bnd, b, &o);
        if (rc) return rc;
        changed = 1;
        pos = bnd = k = e;
        last_ccc = 0;
    }
    if (!changed) return SHOAL_OK;
    if (grow_out(b, o + (n - pos) + 1)) return SHOAL_ERR_NOMEM;
    memcpy(b->out + o, s + pos, n - pos);
    o += n - pos;
    *res = b->out;
    *res_len = o;
    return SHOAL_OK;
}

void shoal__norm_buf_free(shoal__norm_buf *b) {
    if (!b) return;
    free(b->out);
    free(b->cp);
    free(b->ccc);
    free(b->tmp);
    memset(b, 0, sizeof *b);
}
