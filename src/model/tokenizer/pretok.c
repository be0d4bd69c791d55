/* Pre-tokenizer split rules, hand-written equivalents of the GPT-2, Llama-3, Qwen2, StarCoder,
 * Tekken, GPT-4o and DeepSeek-V3 regexes (as Hugging Face tokenizers runs them with Oniguruma:
 * leftmost alternative wins, greedy quantifiers backtrack; a rule of several regexes applies
 * each to the pieces the previous one left, every match and every gap between matches being a
 * piece). The words tile the text. Each matcher works on decoded code points and their class
 * (letter, number, space, other), plus case, marks and punctuation/symbols for the rules that
 * need them (pt->kase); bytes that are not valid UTF-8 are single "other" code points. Work is
 * linear in the text. tests/tokenizer/pretok_vectors.txt checks every rule against a real
 * regex engine. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"

/* DeepSeek LLM's letter class, as its tokenizer.json (and llama.cpp) spell it: cased letters
 * of an older Unicode, not \p{L}. */
static const shoal__urange llm_letters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
    {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943},
};

static int llm_letter(uint32_t c) { return shoal__urange_has(llm_letters, sizeof llm_letters / sizeof llm_letters[0], c); }

/* ---- rules of several regexes, worked out for the whole text: each stage finds its matches
 * (leftmost, longest as the regex is greedy) inside each piece the previous stages left, and
 * every match and every gap becomes a piece. A stage returns the length of its match at p in
 * the piece ending at b, or 0. */
typedef size_t (*stage_fn)(const shoal__pretok *pt, size_t p, size_t b);

static size_t run_while(const shoal__pretok *pt, size_t p, size_t b, int (*in)(const shoal__pretok *, size_t)) {
    size_t j = p;
    while (j < b && in(pt, j)) j++;
    return j - p;
}
static int is_crlf(const shoal__pretok *pt, size_t j) { return pt->cp[j] == '\r' || pt->cp[j] == '\n'; }
static int is_letter(const shoal__pretok *pt, size_t j) { return pt->cls[j] == SHOAL__UC_LETTER; }
static int is_punct(const shoal__pretok *pt, size_t j) { return (pt->kase[j] & SHOAL__PRETOK_P) != 0; }
static int is_cjk_coder(const shoal__pretok *pt, size_t j) { return (pt->kase[j] & SHOAL__PRETOK_CJK_CODER) != 0; }

/* \s?SET+ */
static size_t space_opt_run(const shoal__pretok *pt, size_t p, size_t b, int (*in)(const shoal__pretok *, size_t)) {
    if (pt->cls[p] == SHOAL__UC_SPACE && p + 1 < b && in(pt, p + 1)) return 1 + run_while(pt, p + 1, b, in);
    return run_while(pt, p, b, in);
}
static size_t st_crlf(const shoal__pretok *pt, size_t p, size_t b) { return is_crlf(pt, p) ? 1 : 0; }
static size_t st_letters(const shoal__pretok *pt, size_t p, size_t b) { return space_opt_run(pt, p, b, is_letter); }
static size_t st_punct(const shoal__pretok *pt, size_t p, size_t b) { return space_opt_run(pt, p, b, is_punct); }
static size_t st_cjk_coder(const shoal__pretok *pt, size_t p, size_t b) { return run_while(pt, p, b, is_cjk_coder); }
static size_t st_number(const shoal__pretok *pt, size_t p, size_t b) { return pt->cls[p] == SHOAL__UC_NUMBER ? 1 : 0; }
static int is_number(const shoal__pretok *pt, size_t j) { return pt->cls[j] == SHOAL__UC_NUMBER; }
static int is_llm_letter(const shoal__pretok *pt, size_t j) { return (pt->kase[j] & SHOAL__PRETOK_LLM_LETTER) != 0; }
static int is_llm_punct(const shoal__pretok *pt, size_t j) { return (pt->kase[j] & SHOAL__PRETOK_LLM_PUNCT) != 0; }
static size_t st_numbers(const shoal__pretok *pt, size_t p, size_t b) { return run_while(pt, p, b, is_number); }
static size_t st_llm_letters(const shoal__pretok *pt, size_t p, size_t b) { return space_opt_run(pt, p, b, is_llm_letter); }
static size_t st_llm_punct(const shoal__pretok *pt, size_t p, size_t b) { return space_opt_run(pt, p, b, is_llm_punct); }

static void split_stages(shoal__pretok *pt) {
    /* NULL: \s+$, the whitespace run that ends the piece (done per piece, so a long run that
     * does not end it costs one pass, not one per start) */
    static const stage_fn coder[] = {st_crlf, st_letters, st_punct, st_cjk_coder, st_number};
    static const stage_fn llm[] = {st_crlf, st_llm_letters, st_llm_punct, NULL, st_cjk_coder, st_numbers};
    const stage_fn *stages = pt->rule == SHOAL__PRE_DEEPSEEK_LLM ? llm : coder;
    size_t n_stages = pt->rule == SHOAL__PRE_DEEPSEEK_LLM ? sizeof llm / sizeof llm[0] : sizeof coder / sizeof coder[0];
    size_t n = pt->n_chars;
    memset(pt->brk, 0, n + 1);
    pt->brk[0] = pt->brk[n] = 1;
    for (size_t s = 0; s < n_stages; s++) {
        for (size_t a = 0; a < n;) {
            size_t b = a + 1;
            while (!pt->brk[b]) b++;
            if (!stages[s]) {
                size_t t = b;
                while (t > a && pt->cls[t - 1] == SHOAL__UC_SPACE) t--;
                pt->brk[t] = 1;
            } else {
                for (size_t p = a; p < b;) {
                    size_t l = stages[s](pt, p, b);
                    if (l) {
                        pt->brk[p] = pt->brk[p + l] = 1;
                        p += l;
                    } else {
                        p++;
                    }
                }
            }
            a = b;
        }
    }
}

int shoal__pretok_load(shoal__pretok *pt, const unsigned char *text, size_t len, int norm, int *unnormalized) {
    if (len + 1 > pt->cap) {
        size_t cap = pt->cap ? pt->cap : 64;
        while (cap < len + 1) cap *= 2;
        uint32_t *cp = realloc(pt->cp, cap * sizeof *cp);
        if (cp) pt->cp = cp;
        uint8_t *cls = realloc(pt->cls, cap);
        if (cls) pt->cls = cls;
        uint32_t *off = realloc(pt->off, cap * sizeof *off);
        if (off) pt->off = off;
        uint8_t *kase = realloc(pt->kase, cap);
        if (kase) pt->kase = kase;
        uint8_t *brk = realloc(pt->brk, cap);
        if (brk) pt->brk = brk;
        if (!cp || !cls || !off || !kase || !brk) return SHOAL_ERR_NOMEM;
        pt->cap = cap;
    }
    /* the normalizer's quick check rides along (normalize.h): one table load per code point
     * from the form's first changing one, instead of a decoding pass of its own */
    uint32_t first;
    unsigned not_yes = shoal__norm_quick_bits(norm, &first) << 8, last_ccc = 0;
    int case_too = SHOAL__PRE_NEEDS_CASE(pt->rule);
    int bad = 0;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t l = shoal__utf8_decode(text + i, len - i, &c);
        if (c >= first) {
            unsigned p = shoal__norm_props(c), cc = p & 0xFF;
            if ((p & not_yes) || (cc && cc < last_ccc)) {
                bad = 1; /* pt is left incomplete: the caller normalizes and loads again */
                break;
            }
            last_ccc = cc;
        } else {
            last_ccc = 0;
        }
        pt->cp[k] = c;
        pt->cls[k] = (uint8_t)shoal__unicode_class(c);
        if (case_too) {
            int kk = pt->cls[k] == SHOAL__UC_LETTER || pt->cls[k] == SHOAL__UC_OTHER ? shoal__unicode_case(c) : 0;
            if (pt->cls[k] == SHOAL__UC_OTHER && shoal__unicode_is_ps(c)) kk |= SHOAL__PRETOK_PS;
            if ((c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF)) kk |= SHOAL__PRETOK_CJK;
            if (pt->rule == SHOAL__PRE_DEEPSEEK_CODER || pt->rule == SHOAL__PRE_DEEPSEEK_LLM) {
                if (pt->cls[k] == SHOAL__UC_OTHER && shoal__unicode_is_punct(c)) kk |= SHOAL__PRETOK_P;
                if ((c >= 0x800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF)) kk |= SHOAL__PRETOK_CJK_CODER;
                if (pt->rule == SHOAL__PRE_DEEPSEEK_LLM && llm_letter(c))
                    kk |= SHOAL__PRETOK_LLM_LETTER;
                if ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
                    (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002))
                    kk |= SHOAL__PRETOK_LLM_PUNCT;
            }
            pt->kase[k] = (uint8_t)kk;
        }
        pt->off[k] = (uint32_t)i;
        k++;
        i += l;
    }
    pt->off[k] = (uint32_t)len;
    pt->n_chars = k;
    if (unnormalized) *unnormalized = bad;
    if (!bad && SHOAL__PRE_STAGED(pt->rule)) split_stages(pt);
    return SHOAL_OK;
}

void shoal__pretok_free(shoal__pretok *pt) {
    free(pt->cp);
    free(pt->cls);
    free(pt->off);
    free(pt->kase);
    free(pt->brk);
    pt->kase = NULL;
    pt->brk = NULL;
    pt->cp = NULL;
    pt->cls = NULL;
    pt->off = NULL;
    pt->cap = pt->n_chars = 0;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d (the alternatives are prefix-free, so order does not matter); icase
 * for Llama-3's (?i:...), ASCII case only. Returns the match length or 0. */
static size_t contraction(const shoal__pretok *pt, size_t i, int icase) {
    size_t n = pt->n_chars;
    if (pt->cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = pt->cp[i + 1], b = i + 2 < n ? pt->cp[i + 2] : 0;
    if (icase) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

static size_t run_of(const shoal__pretok *pt, size_t j, int cls) {
    while (j < pt->n_chars && pt->cls[j] == cls) j++;
    return j;
}

/* \s+(?!\S)|\s+ at a whitespace char i: a run of whitespace, except that when a non-space
 * follows, the run gives up its last char (which then starts the next word, e.g. " Hello"). */
static size_t space_run(const shoal__pretok *pt, size_t i) {
    size_t k = run_of(pt, i, SHOAL__UC_SPACE);
    if (k == pt->n_chars || k - i < 2) return k;
    return k - 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_gpt2(const shoal__pretok *pt, size_t i) {
    size_t k = contraction(pt, i, 0);
    if (k) return i + k;
    size_t j = i + (pt->cp[i] == ' ' && i + 1 < pt->n_chars);
    int c = pt->cls[j];
    if (c != SHOAL__UC_SPACE) return run_of(pt, j, c); /* letters, numbers or other */
    return space_run(pt, i);
}

/* \s*[\r\n]+|\s+(?!\S)|\s+ at whitespace i: the greedy \s* backs off to the last CR/LF of the
 * whitespace run, so the word ends just after it; without one, as space_run. */
static size_t space_tail(const shoal__pretok *pt, size_t i) {
    size_t end = run_of(pt, i, SHOAL__UC_SPACE);
    for (size_t p = end; p > i; p--)
        if (pt->cp[p - 1] == '\r' || pt->cp[p - 1] == '\n') return p;
    return space_run(pt, i);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_llama3(const shoal__pretok *pt, size_t i, size_t max_digits) {
    size_t n = pt->n_chars;
    size_t k = contraction(pt, i, 1);
    if (k) return i + k;
    uint32_t c0 = pt->cp[i];
    int k0 = pt->cls[i];
    /* [^\r\n\p{L}\p{N}]?\p{L}+ : one optional leading char that is neither a letter, a number,
     * CR nor LF (so a space, a tab or punctuation), then letters */
    if (k0 == SHOAL__UC_LETTER) return run_of(pt, i, SHOAL__UC_LETTER);
    if (k0 != SHOAL__UC_NUMBER && c0 != '\r' && c0 != '\n' && i + 1 < n &&
        pt->cls[i + 1] == SHOAL__UC_LETTER)
        return run_of(pt, i + 1, SHOAL__UC_LETTER);
    if (k0 == SHOAL__UC_NUMBER) { /* \p{N}{1,3} */
        size_t j = i;
        while (j < n && j - i < max_digits && pt->cls[j] == SHOAL__UC_NUMBER) j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = i + (c0 == ' ' && i + 1 < n);
    if (pt->cls[j] == SHOAL__UC_OTHER) {
        j = run_of(pt, j, SHOAL__UC_OTHER);
        while (j < n && (pt->cp[j] == '\r' || pt->cp[j] == '\n')) j++;
        return j;
    }
    return space_tail(pt, i);
}

/* \p{N} | the GPT-2 rule over the text between numbers. A piece ends before each number, so
 * there " ?" takes no space that a number follows, and a whitespace run that a number follows
 * is whole (its (?!\S) looks at the end of the piece). */
static size_t next_starcoder(const shoal__pretok *pt, size_t i) {
    size_t n = pt->n_chars;
    if (pt->cls[i] == SHOAL__UC_NUMBER) return i + 1;
    size_t k = contraction(pt, i, 0); /* none of its characters is a number */
    if (k) return i + k;
    size_t j = i + (pt->cp[i] == ' ' && i + 1 < n && pt->cls[i + 1] != SHOAL__UC_NUMBER);
    int c = pt->cls[j];
    if (c != SHOAL__UC_SPACE) return run_of(pt, j, c); /* letters or other: they stop at a number */
    k = run_of(pt, i, SHOAL__UC_SPACE);
    if (k == n || pt->cls[k] == SHOAL__UC_NUMBER || k - i < 2) return k;
    return k - 1;
}

/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from s, as a backtracking engine runs
 * it: the first set greedily to r, then the second from r if a lower-case letter is there;
 * else the first set gives back characters until one of both sets (Lm, Lo, a mark) can start
 * the second, which then ends just after it. Returns the end, or 0 when it does not match. */
static size_t upper_lower(const shoal__pretok *pt, size_t s) {
    size_t n = pt->n_chars, r = s;
    while (r < n && (pt->kase[r] & SHOAL__UCASE_UPPER)) r++;
    if (r < n && (pt->kase[r] & 3) == SHOAL__UCASE_LOWER) {
        while (r < n && (pt->kase[r] & SHOAL__UCASE_LOWER)) r++;
        return r;
    }
    for (size_t b = r; b > s; b--)
        if ((pt->kase[b - 1] & 3) == SHOAL__UCASE_BOTH) return b;
    return 0;
}

/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* from s; 0 when it does not match. */
static size_t upper_then_lower(const shoal__pretok *pt, size_t s) {
    size_t n = pt->n_chars, r = s;
    while (r < n && (pt->kase[r] & SHOAL__UCASE_UPPER)) r++;
    if (r == s) return 0;
    while (r < n && (pt->kase[r] & SHOAL__UCASE_LOWER)) r++;
    return r;
}

/* The Tekken rule; with gpt4o, GPT-4o's: an optional contraction after each letter
 * alternative and numbers in threes. The optional prefix [^\r\n\p{L}\p{N}] is tried first
 * (greedy ?), then without it, for each letter alternative in order. */
static size_t next_o200k(const shoal__pretok *pt, size_t i, int gpt4o) {
    size_t n = pt->n_chars, e = 0;
    uint32_t c0 = pt->cp[i];
    int k0 = pt->cls[i];
    int prefix = k0 != SHOAL__UC_LETTER && k0 != SHOAL__UC_NUMBER && c0 != '\r' && c0 != '\n' && i + 1 < n;
    if (prefix) e = upper_lower(pt, i + 1);
    if (!e) e = upper_lower(pt, i);
    if (!e && prefix) e = upper_then_lower(pt, i + 1);
    if (!e) e = upper_then_lower(pt, i);
    if (e) {
        if (gpt4o && e < n) e += contraction(pt, e, 1);
        return e;
    }
    if (k0 == SHOAL__UC_NUMBER) { /* \p{N} or \p{N}{1,3} */
        size_t j = i, max = gpt4o ? 3 : 1;
        while (j < n && j - i < max && pt->cls[j] == SHOAL__UC_NUMBER) j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n/]* */
    size_t j = i + (c0 == ' ' && i + 1 < n);
    if (pt->cls[j] == SHOAL__UC_OTHER) {
        j = run_of(pt, j, SHOAL__UC_OTHER);
        while (j < n && (pt->cp[j] == '\r' || pt->cp[j] == '\n' || pt->cp[j] == '/')) j++;
        return j;
    }
    return space_tail(pt, i);
}

/* DeepSeek-V3: a piece of the third regex ends before a number or a CJK/kana character (the
 * first two regexes took those out). */
static int ds_piece_end(const shoal__pretok *pt, size_t j) {
    return j >= pt->n_chars || pt->cls[j] == SHOAL__UC_NUMBER || (pt->kase[j] & SHOAL__PRETOK_CJK);
}

static int ds_letter_mark(const shoal__pretok *pt, size_t j) { /* [\p{L}\p{M}] */
    return pt->cls[j] == SHOAL__UC_LETTER || (pt->cls[j] == SHOAL__UC_OTHER && (pt->kase[j] & 3) == SHOAL__UCASE_BOTH);
}

static int ascii_letter(uint32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

/* The third regex at i, inside its piece: the end of the match, or 0 when no alternative
 * matches at i. */
static size_t ds_match(const shoal__pretok *pt, size_t i) {
    uint32_t c0 = pt->cp[i];
    size_t j;
    /* [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : ASCII punctuation, then ASCII letters */
    if (c0 > 0x20 && c0 < 0x7F && shoal__unicode_is_ps(c0) && !ds_piece_end(pt, i + 1) &&
        ascii_letter(pt->cp[i + 1])) {
        for (j = i + 1; !ds_piece_end(pt, j) && ascii_letter(pt->cp[j]); j++) {}
        return j;
    }
    /* [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ */
    int prefix = pt->cls[i] != SHOAL__UC_LETTER && !(pt->kase[i] & SHOAL__PRETOK_PS) && c0 != '\r' && c0 != '\n';
    j = prefix && !ds_piece_end(pt, i + 1) && ds_letter_mark(pt, i + 1) ? i + 1 : i;
    if (ds_letter_mark(pt, j)) {
        while (!ds_piece_end(pt, j) && ds_letter_mark(pt, j)) j++;
        return j;
    }
    /*  ?[\p{P}\p{S}]+[\r\n]* */
    j = i + (c0 == ' ' && !ds_piece_end(pt, i + 1));
    if (pt->kase[j] & SHOAL__PRETOK_PS) {
        while (!ds_piece_end(pt, j) && (pt->kase[j] & SHOAL__PRETOK_PS)) j++;
        while (j < pt->n_chars && (pt->cp[j] == '\r' || pt->cp[j] == '\n')) j++;
        return j;
    }
    if (pt->cls[i] != SHOAL__UC_SPACE) return 0;
    /* \s*[\r\n]+|\s+(?!\S)|\s+ ; whitespace is never a piece end, but what follows may be */
    size_t end = run_of(pt, i, SHOAL__UC_SPACE);
    for (size_t p = end; p > i; p--)
        if (pt->cp[p - 1] == '\r' || pt->cp[p - 1] == '\n') return p;
    if (ds_piece_end(pt, end) || end - i < 2) return end;
    return end - 1;
}

static size_t next_deepseek3(const shoal__pretok *pt, size_t i) {
    size_t n = pt->n_chars, j = i;
    if (pt->cls[i] == SHOAL__UC_NUMBER) { /* \p{N}{1,3} */
        while (j < n && j - i < 3 && pt->cls[j] == SHOAL__UC_NUMBER) j++;
        return j;
    }
    if (pt->kase[i] & SHOAL__PRETOK_CJK) {
        while (j < n && (pt->kase[j] & SHOAL__PRETOK_CJK)) j++;
        return j;
    }
    size_t e = ds_match(pt, i);
    if (e) return e;
    /* text where nothing matches (a lone control or format character) is a word up to the next
     * match or the end of the piece */
    for (j = i + 1; !ds_piece_end(pt, j) && !ds_match(pt, j); j++) {}
    return j;
}

size_t shoal__pretok_next(const shoal__pretok *pt, int rule, size_t i) {
    switch (rule) {
    case SHOAL__PRE_GPT2: return next_gpt2(pt, i);
    case SHOAL__PRE_LLAMA3: return next_llama3(pt, i, 3);
    case SHOAL__PRE_QWEN2: return next_llama3(pt, i, 1);
    case SHOAL__PRE_STARCODER: return next_starcoder(pt, i);
    case SHOAL__PRE_TEKKEN: return next_o200k(pt, i, 0);
    case SHOAL__PRE_GPT4O: return next_o200k(pt, i, 1);
    case SHOAL__PRE_DEEPSEEK3: return next_deepseek3(pt, i);
    case SHOAL__PRE_DEEPSEEK_CODER:
    case SHOAL__PRE_DEEPSEEK_LLM: {
        size_t j = i + 1;
        while (!pt->brk[j]) j++;
        return j;
    }
    default: return pt->n_chars;
    }
}
