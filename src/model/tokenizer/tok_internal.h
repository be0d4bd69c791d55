/* Internals shared by the tokenizer's files: the tokenizer object, the build parameters every
 * loader fills in, and the encode/decode building blocks.
 *
 * Data flow: a loader (tokenizer.json, tokenizer.bin, GPT-2 files, GGUF, spec) gathers token
 * strings, scores, types and merges into shoal__tok_params and calls shoal__tok_build, which
 * copies everything, validates ids, and builds the lookup structures (vocab.c). Encoding
 * (encode.c) splits out added tokens, pre-tokenizes (pretok.c) and merges (bpe.c); decoding
 * (decode.c) maps ids back to bytes. */
#ifndef SHOAL_MODEL_TOKENIZER_INTERNAL_H
#define SHOAL_MODEL_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/tokenizer.h"

/* Limits on what a file may declare, checked before anything is allocated. */
#define SHOAL__TOK_MAX_TOKENS (1u << 24)       /* vocabulary entries */
#define SHOAL__TOK_MAX_TOKEN_LEN 65536u        /* bytes in one token string */
#define SHOAL__TOK_MAX_MERGES (1u << 24)
#define SHOAL__TOK_MAX_BLOB ((size_t)1 << 31)   /* all token strings together */
#define SHOAL__TOK_MAX_EOG 16

/* Pre-tokenizer split rules (pretok.c). */
enum {
    SHOAL__PRE_NONE = 0,  /* SPM: the whole text fragment is one word */
    SHOAL__PRE_GPT2 = 1,  /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
     * \s+(?!\S)|\s+ */
    SHOAL__PRE_LLAMA3 = 2,
    SHOAL__PRE_QWEN2 = 3, /* as LLAMA3 with \p{N} (one digit per word) */
    /* StarCoder (llama.cpp: \p{N}, then the GPT-2 regex over the pieces between; HF: Digits
     * with individual_digits, then ByteLevel): GPT-2 with every \p{N} a word of its own */
    SHOAL__PRE_STARCODER = 4,
    /* Tekken (Mistral Nemo): [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|
     * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|
     *  ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    SHOAL__PRE_TEKKEN = 5,
    /* GPT-4o / o200k (Llama-4): Tekken with (?i:'s|'t|'re|'ve|'m|'ll|'d)? after both letter
     * alternatives and \p{N}{1,3} */
    SHOAL__PRE_GPT4O = 6,
    /* DeepSeek-V3 / R1: \p{N}{1,3}, then [一-龥぀-ゟ゠-ヿ]+, then over the pieces between
     * [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
     *  ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+  (text no alternative matches is a word too) */
    SHOAL__PRE_DEEPSEEK3 = 7,
    /* DeepSeek-Coder: [\r\n], then \s?\p{L}+, then \s?\p{P}+, then [一-龥ࠀ-一가-퟿]+, then \p{N},
     * each regex over the pieces the previous ones left (shoal__pretok.brk) */
    SHOAL__PRE_DEEPSEEK_CODER = 8,
    /* DeepSeek LLM / V2: [\r\n], then \s?[A-Za-zµÀ-ÖØ-öø-ƺ...]+ (an explicit list of cased
     * letters), then \s?[!-/:-~！-／：-～‘-‟　-。]+, then \s+$, then [一-龥ࠀ-一가-퟿]+, then \p{N}+ */
    SHOAL__PRE_DEEPSEEK_LLM = 9,
};
/* Rules that need more than the four classes: letter case, marks, \p{P}\p{S} (shoal__pretok.kase). */
#define SHOAL__PRE_NEEDS_CASE(rule) \
    ((rule) == SHOAL__PRE_TEKKEN || (rule) == SHOAL__PRE_GPT4O || (rule) == SHOAL__PRE_DEEPSEEK3 || \
     (rule) == SHOAL__PRE_DEEPSEEK_CODER || (rule) == SHOAL__PRE_DEEPSEEK_LLM)
/* Rules whose words are worked out for the whole text at load time (shoal__pretok.brk). */
#define SHOAL__PRE_STAGED(rule) ((rule) == SHOAL__PRE_DEEPSEEK_CODER || (rule) == SHOAL__PRE_DEEPSEEK_LLM)

/* Per-token attribute bits beyond the type (from tokenizer.json added_tokens). */
enum { SHOAL__ATTR_LSTRIP = 1, SHOAL__ATTR_RSTRIP = 2 };

/* What a loader hands to shoal__tok_build. Arrays are read during the call only. */
typedef struct shoal__tok_params {
    const char *source;          /* for messages */
    shoal_tokenizer_kind kind;
    int pre;                     /* SHOAL__PRE_*; must be NONE for SPM */
    int ignore_merges;           /* BPE: a whole word found in the vocabulary is one token */
    int add_space_prefix;        /* SPM: prepend the space symbol to each text fragment */
    int bpe_prefix_space;        /* BPE: HF ByteLevel add_prefix_space */
    int spm_ascii_space;         /* SPM: the space symbol is ' ' (llama2.c) instead of U+2581 */
    int spm_by_rank;             /* SPM: merge order from the merge list (HF), not from scores */
    int norm;                    /* SHOAL__NORM_* (normalize.h) applied to each text fragment */
    size_t n_tokens;
    const shoal_vocab_str *tokens; /* [n_tokens]; an entry with ptr NULL is an unused hole */
    const float *scores;         /* [n_tokens] or NULL */
    const int32_t *types;        /* [n_tokens] or NULL (derived) */
    const uint8_t *attrs;        /* [n_tokens] SHOAL__ATTR_* or NULL */
    size_t n_merges;
    const shoal_vocab_str *merge_left, *merge_right; /* [n_merges]; rank = index */
    int32_t bos_id, eos_id, unk_id, eot_id; /* -1: look up by text */
    int add_bos, add_eos;        /* -1: model default */
} shoal__tok_params;

/* Open-addressed hash from pair (left id, right id) to the merge result. */
typedef struct shoal__tok_pair {
    uint64_t key;  /* (left << 32) | right */
    float prio;    /* lower merges first: the rank, or -score for SPM */
    int32_t result; /* -1: empty slot */
} shoal__tok_pair;

struct shoal_tokenizer {
    shoal_tokenizer_kind kind;
    char *source;
    size_t n;            /* vocabulary size */
    char *blob;          /* all token strings, back to back */
    size_t *off;         /* [n] start of token i in blob */
    uint32_t *len;       /* [n] */
    size_t max_len;      /* longest token string, at least 4: bounds every decoded piece */
    float *score;        /* [n] */
    uint8_t *type;       /* [n] shoal_token_type */
    uint8_t *attr;       /* [n] SHOAL__ATTR_* */
    int32_t *slots;      /* string -> id hash: token ids, -1 empty; size mask + 1 */
    size_t mask;
    shoal__tok_pair *pairs; /* merge table; size pair_mask + 1 */
    size_t pair_mask;

    int pre, ignore_merges, add_space_prefix, bpe_prefix_space, spm_ascii_space;
    int norm; /* SHOAL__NORM_*: Unicode normalization of the text between added tokens */
    /* SPM: no token has the space symbol after another character ("a▁b"), so no merge can
     * join a character to a following space symbol and encode may split the text there */
    int spm_split;
    int32_t bos, eos, unk, eot;
    int add_bos, add_eos;
    int32_t eog[SHOAL__TOK_MAX_EOG];
    int n_eog;

    /* BPE: id of the one-character token for each byte's printable stand-in; SPM: id of <0xHH>.
     * -1 where the vocabulary lacks it. */
    int32_t byte_id[256];
    /* BPE decode: the byte each stand-in code point (U+0000..U+0143) means, -1 for others. */
    int16_t unbyte[324];

    /* Added tokens matched in text (user-defined always, control with PARSE_SPECIAL), sorted
     * by first byte, then longest first; special_at[b]..special_at[b+1] are those starting
     * with byte b. */
    int32_t *special;
    size_t n_special;
    uint32_t special_at[257];
};

int shoal__tok_build(const shoal__tok_params *p, shoal_tokenizer **out, char *err, size_t errcap);

/* Id of the token whose string is s[0..len), -1 if none. */
int32_t shoal__tok_lookup(const shoal_tokenizer *t, const char *s, size_t len);
/* Merge result for the adjacent pair, or NULL. */
const shoal__tok_pair *shoal__tok_pair_find(const shoal_tokenizer *t, int32_t left, int32_t right);

static inline const char *shoal__tok_str(const shoal_tokenizer *t, int32_t id) { return t->blob + t->off[id]; }

/* 1 when s[0..n) is "<0xHH>" (a SentencePiece byte piece); *byte gets HH. */
int shoal__tok_is_byte_piece(const char *s, size_t n, unsigned *byte);

/* GPT-2's bytes_to_unicode: the printable code point that stands for byte b. */
uint32_t shoal__byte_to_cp(unsigned b);

/* Pre-tokenizer: length in bytes of the word starting at s[0..n) (n >= 1) under rule; always
 * >= 1. cps/cls are scratch of the caller (see pretok.c). */
typedef struct shoal__pretok {
    uint32_t *cp;   /* [n_chars] code points */
    uint8_t *cls;   /* [n_chars] SHOAL__UC_* */
    uint32_t *off;  /* [n_chars + 1] byte offsets */
    uint8_t *kase;  /* [n_chars] SHOAL__UCASE_* (unicode.h) | SHOAL__PRETOK_*, filled only for
                       SHOAL__PRE_NEEDS_CASE rules */
    uint8_t *brk;   /* [n_chars + 1] 1 where a word starts (and at n_chars), for SHOAL__PRE_STAGED */
    int rule;       /* SHOAL__PRE_*: set by the caller before loading; decides kase and brk */
    size_t n_chars, cap;
} shoal__pretok;
enum {
    SHOAL__PRETOK_PS = 4,  /* in [\p{P}\p{S}] */
    SHOAL__PRETOK_CJK = 8, /* in DeepSeek-V3's [一-龥぀-ゟ゠-ヿ]: U+4E00..U+9FA5, U+3040..U+30FF */
    SHOAL__PRETOK_P = 16,  /* in \p{P} (DeepSeek-Coder) */
    SHOAL__PRETOK_CJK_CODER = 32, /* in DeepSeek-Coder's [一-龥ࠀ-一가-퟿]: U+0800..U+9FA5, U+AC00..U+D7FF */
    SHOAL__PRETOK_LLM_LETTER = 64, /* in DeepSeek LLM's letter list */
    SHOAL__PRETOK_LLM_PUNCT = 128, /* in DeepSeek LLM's [!-/:-~！-／：-～‘-‟　-。] */
};
/* Decodes text[0..len) into pt (growing it); SHOAL_ERR_NOMEM on allocation failure. With norm
 * (SHOAL__NORM_*, not NONE) it runs that form's quick check on the way and sets *unnormalized
 * to 1 when the text may change under it (pt is then incomplete: normalize and load again),
 * else to 0. */
int shoal__pretok_load(shoal__pretok *pt, const unsigned char *text, size_t len, int norm, int *unnormalized);
/* End (char index) of the word starting at char i, > i. */
size_t shoal__pretok_next(const shoal__pretok *pt, int rule, size_t i);
void shoal__pretok_free(shoal__pretok *pt);

/* BPE merging over ids[0..n) in place (bpe.c); *n_out gets the merged count. Scratch grows as
 * needed and is reused across calls. */
typedef struct shoal__bpe_scratch {
    struct shoal__bpe_sym *sym;
    struct shoal__bpe_cand *heap;
    size_t sym_cap, heap_cap;
} shoal__bpe_scratch;
int shoal__bpe_merge(const shoal_tokenizer *t, shoal__bpe_scratch *s, int32_t *ids, size_t n,
                     size_t *n_out);
void shoal__bpe_scratch_free(shoal__bpe_scratch *s);

/* Pre-tokenizer rule by GGUF name ("gpt-2", "llama-bpe", "qwen2", ...): returns SHOAL__PRE_* and
 * sets *ignore_merges; for a name it does not know, -1, with an SHOAL_ERR_UNSUPPORTED message
 * in err that names src and the supported rules. */
int shoal__tok_pre_by_name(const char *name, int *ignore_merges, const char *src, char *err, size_t errcap);

/* Error helper: formats into err and returns status. */
int shoal__tok_fail(char *err, size_t errcap, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whole file into memory (text formats). NOT_FOUND / IO with a message naming path. The
 * buffer gets a NUL after the last byte; max bounds the size (FORMAT beyond). */
int shoal__tok_read_file(const char *path, size_t max, char **data, size_t *size, char *err,
                         size_t errcap);

/* ---- in-memory forms of the file loaders (the fuzz targets call these). name stands for the
 * file in messages. */
int shoal__tok_load_llama2c_mem(const void *data, size_t size, const char *name, int vocab_size,
                                shoal_tokenizer **out, char *err, size_t errcap);
int shoal__tok_load_hf_json_mem(const char *text, size_t size, const char *name, shoal_tokenizer **out,
                                char *err, size_t errcap);
int shoal__tok_load_sentencepiece_mem(const void *data, size_t size, const char *name, shoal_tokenizer **out,
                                      char *err, size_t errcap);
int shoal__tok_load_gpt2_mem(const char *vocab_text, size_t vocab_size, const char *vocab_name,
                             const char *merges_text, size_t merges_size, const char *merges_name,
                             const char *pre, shoal_tokenizer **out, char *err, size_t errcap);

/* ---- loader helpers (load_common.c) */

/* Strings gathered by a loader before the build: one growing buffer plus offsets, so pointers
 * are made only once everything is in (shoal__tok_strings_view). */
typedef struct shoal__tok_strings {
    char *data;
    size_t len, cap;
    size_t *off;
    uint32_t *slen;
    size_t n, ncap;
} shoal__tok_strings;
int shoal__tok_strings_add(shoal__tok_strings *s, const char *p, size_t len); /* NOMEM */
/* Fills view[i] = string i. */
void shoal__tok_strings_view(const shoal__tok_strings *s, size_t i, shoal_vocab_str *view);
void shoal__tok_strings_free(shoal__tok_strings *s);

/* Reads a JSON object {"token": id, ...} (tokenizer.json model.vocab, encoder.json, vocab.json):
 * string k goes to strs (index k, in member order) and its id to (*ids)[k]; *max_id gets the
 * largest id. Ids must lie in [0, SHOAL__TOK_MAX_TOKENS). what names the object in messages. */
struct shoal__jv;
int shoal__tok_json_vocab(const struct shoal__jv *obj, const char *what, shoal__tok_strings *strs,
                          int32_t **ids, int64_t *max_id, char *err, size_t errcap);
/* Unescapes a JSON string node into strs. */
int shoal__tok_json_string(const struct shoal__jv *v, const char *what, shoal__tok_strings *strs,
                           char *err, size_t errcap);
/* Splits "left right" at the first space after the first byte (llama.cpp's rule: a token may
 * start with a space). 0 when there is no such space. */
int shoal__tok_split_merge(const char *s, size_t len, size_t *space_at);

#endif
