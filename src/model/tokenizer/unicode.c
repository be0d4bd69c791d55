/* UTF-8 coding and Unicode classes for the pre-tokenizer (see unicode.h). */
#include "model/tokenizer/unicode.h"

int shoal__urange_has(const shoal__urange *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* White_Space from Unicode's PropList.txt, which is what \s means to Oniguruma (Hugging Face
 * tokenizers) and llama.cpp. Python's str.isspace() differs (it adds U+001C..U+001F), which is
 * why this list is written out rather than generated. */
static int is_white_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int shoal__unicode_class(uint32_t cp) {
    if (cp < 0x80) { /* ASCII is most of most text: answer without a search */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return SHOAL__UC_LETTER;
        if (cp >= '0' && cp <= '9') return SHOAL__UC_NUMBER;
        return is_white_space(cp) ? SHOAL__UC_SPACE : SHOAL__UC_OTHER;
    }
    if (cp == SHOAL__UNICODE_INVALID) return SHOAL__UC_OTHER;
    if (is_white_space(cp)) return SHOAL__UC_SPACE;
    if (shoal__urange_has(shoal__unicode_letter, shoal__unicode_letter_count, cp)) return SHOAL__UC_LETTER;
    if (shoal__urange_has(shoal__unicode_number, shoal__unicode_number_count, cp)) return SHOAL__UC_NUMBER;
    return SHOAL__UC_OTHER;
}

int shoal__unicode_case(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? SHOAL__UCASE_UPPER : cp >= 'a' && cp <= 'z' ? SHOAL__UCASE_LOWER : 0;
    if (cp == SHOAL__UNICODE_INVALID) return 0;
    if (shoal__urange_has(shoal__unicode_mark, shoal__unicode_mark_count, cp)) return SHOAL__UCASE_BOTH;
    if (!shoal__urange_has(shoal__unicode_letter, shoal__unicode_letter_count, cp)) return 0;
    if (shoal__urange_has(shoal__unicode_lower, shoal__unicode_lower_count, cp)) return SHOAL__UCASE_LOWER;
    if (shoal__urange_has(shoal__unicode_upper, shoal__unicode_upper_count, cp)) return SHOAL__UCASE_UPPER;
    return SHOAL__UCASE_BOTH; /* Lm, Lo */
}

int shoal__unicode_is_ps(uint32_t cp) {
    if (cp < 0x80) return cp > 0x20 && cp < 0x7F && !((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') && !(cp >= '0' && cp <= '9');
    if (cp == SHOAL__UNICODE_INVALID) return 0;
    return shoal__urange_has(shoal__unicode_punct_symbol, shoal__unicode_punct_symbol_count, cp);
}

int shoal__unicode_is_punct(uint32_t cp) {
    if (cp == SHOAL__UNICODE_INVALID) return 0;
    return shoal__urange_has(shoal__unicode_punct, shoal__unicode_punct_count, cp);
}

size_t shoal__utf8_lead_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* continuation, or the lead of an overlong 2-byte form */
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    if (c < 0xF5) return 4;
    return 0;
}

size_t shoal__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len = shoal__utf8_lead_len(c);
    if (len == 1) {
        *cp = c;
        return 1;
    }
    if (len == 0 || len > n) goto invalid;
    uint32_t v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* reject overlong 3/4-byte forms, surrogates and values past U+10FFFF */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = SHOAL__UNICODE_INVALID;
    return 1;
}

size_t shoal__utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
