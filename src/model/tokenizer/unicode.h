/* UTF-8 coding and the few Unicode properties the pre-tokenizer rules need. */
#ifndef SHOAL_MODEL_TOKENIZER_UNICODE_H
#define SHOAL_MODEL_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct shoal__urange {
    uint32_t lo, hi; /* inclusive */
} shoal__urange;

/* Generated tables (unicode_tables.c). */
extern const shoal__urange shoal__unicode_letter[];
extern const size_t shoal__unicode_letter_count;
extern const shoal__urange shoal__unicode_number[];
extern const size_t shoal__unicode_number_count;
extern const shoal__urange shoal__unicode_lower[]; /* Ll */
extern const size_t shoal__unicode_lower_count;
extern const shoal__urange shoal__unicode_upper[]; /* Lu, Lt */
extern const size_t shoal__unicode_upper_count;
extern const shoal__urange shoal__unicode_mark[];  /* Mn, Mc, Me */
extern const size_t shoal__unicode_mark_count;
extern const shoal__urange shoal__unicode_punct_symbol[]; /* P*, S* */
extern const size_t shoal__unicode_punct_symbol_count;
extern const shoal__urange shoal__unicode_punct[];        /* P* */
extern const size_t shoal__unicode_punct_count;

/* Classes of the regex rules: \p{L}, \p{N}, \s (the White_Space property), and everything else. */
enum { SHOAL__UC_OTHER = 0, SHOAL__UC_LETTER = 1, SHOAL__UC_NUMBER = 2, SHOAL__UC_SPACE = 3 };

/* Stands for a byte that is not part of a valid UTF-8 sequence; its class is OTHER. */
#define SHOAL__UNICODE_INVALID 0xFFFFFFFFu

int shoal__unicode_class(uint32_t cp);
/* 1 when cp lies in one of the n sorted, disjoint ranges r (binary search). */
int shoal__urange_has(const shoal__urange *r, size_t n, uint32_t cp);

/* The letter sets of the Tekken / GPT-4o rules: bit 1 in [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], bit 2 in
 * [\p{Ll}\p{Lm}\p{Lo}\p{M}]; so 1 upper or title case, 2 lower case, 3 other letters (Lm, Lo)
 * and marks, 0 anything else. */
enum { SHOAL__UCASE_UPPER = 1, SHOAL__UCASE_LOWER = 2, SHOAL__UCASE_BOTH = 3 };
int shoal__unicode_case(uint32_t cp);

/* 1 when cp is in [\p{P}\p{S}] (punctuation or symbol). */
int shoal__unicode_is_ps(uint32_t cp);
/* 1 when cp is in \p{P} (punctuation). */
int shoal__unicode_is_punct(uint32_t cp);

/* Decodes the sequence at s[0..n), n >= 1: returns its length (1..4) and sets *cp. Invalid,
 * overlong, surrogate or truncated sequences give length 1 and *cp = SHOAL__UNICODE_INVALID, so
 * every byte of any input belongs to exactly one unit. */
size_t shoal__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Length (1..4) of the sequence a lead byte announces; 0 for a continuation or invalid byte. */
size_t shoal__utf8_lead_len(unsigned char c);

/* Writes cp (<= 0x10FFFF) as UTF-8 into out, returns the length. */
size_t shoal__utf8_encode(uint32_t cp, char out[4]);

#endif
