/* shoal tokenizer: text <-> token ids for the model engine.
 *
 * Two families of vocabulary are supported:
 *  - SentencePiece-style BPE ("llama" in GGUF: Llama-2, Mistral, llama2.c tokenizer.bin). Spaces
 *    become U+2581 "▁" (tokenizer.bin keeps ' '), one "▁" is prepended to the text, adjacent pieces
 *    merge by score (or by merge rank for a Hugging Face tokenizer.json), and characters outside
 *    the vocabulary fall back to the byte tokens <0xHH>.
 *  - byte-level BPE ("gpt2" in GGUF: GPT-2, Llama-3, Qwen2). A pre-tokenizer rule splits the text
 *    into words (GPT-2, Llama-3, Qwen2, StarCoder, Tekken, GPT-4o and DeepSeek rules, implemented
 *    by hand over Unicode categories; docs/tokenizer.md lists the names), each
 *    word's bytes are mapped to printable characters (GPT-2's bytes_to_unicode) and merged by rank.
 *    Llama-3 vocabularies "ignore merges": a whole word found in the vocabulary is one token.
 * Added / special tokens: control tokens (BOS, EOS, "<|im_start|>") are recognised in text only
 * with SHOAL_TOKENIZE_PARSE_SPECIAL; user-defined tokens are always recognised.
 *
 * Threading: a loaded tokenizer is immutable. encode, decode, token_piece and the accessors may
 * run concurrently on one tokenizer from any thread. A decoder object is used by one thread at a
 * time; several decoders may share one tokenizer.
 *
 * Errors: every int-returning call gives SHOAL_OK or a negative shoal_status. Loaders take an
 * err/errcap buffer (either may be NULL/0) that receives, on failure, a message naming the file
 * and the field at fault ("tok512.bin: token 7: length 4096 exceeds max_token_length 7").
 * Malformed files give SHOAL_ERR_FORMAT, missing files SHOAL_ERR_NOT_FOUND, read failures
 * SHOAL_ERR_IO, features outside what is implemented (an unknown pre-tokenizer) SHOAL_ERR_UNSUPPORTED.
 * Nothing is ever printed and the process is never ended on bad input. */
#ifndef SHOAL_TOKENIZER_H
#define SHOAL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/shoal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_tokenizer shoal_tokenizer;                 /* opaque, immutable once loaded */
typedef struct shoal_tokenizer_decoder shoal_tokenizer_decoder; /* opaque streaming decoder */

/* Token types: the values of GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type). */
typedef enum shoal_token_type {
    SHOAL_TOKEN_UNDEFINED = 0,
    SHOAL_TOKEN_NORMAL = 1,
    SHOAL_TOKEN_UNKNOWN = 2,      /* <unk> */
    SHOAL_TOKEN_CONTROL = 3,      /* BOS, EOS, chat markers: text only with PARSE_SPECIAL */
    SHOAL_TOKEN_USER_DEFINED = 4, /* added tokens matched verbatim in text, always */
    SHOAL_TOKEN_UNUSED = 5,
    SHOAL_TOKEN_BYTE = 6,         /* <0xHH>: one raw byte */
} shoal_token_type;

typedef enum shoal_tokenizer_kind {
    SHOAL_TOKENIZER_SPM = 1, /* SentencePiece-style BPE, GGUF model "llama" */
    SHOAL_TOKENIZER_BPE = 2, /* byte-level BPE, GGUF model "gpt2" */
} shoal_tokenizer_kind;

/* A string that need not be NUL-terminated (GGUF strings are length-prefixed). */
typedef struct shoal_vocab_str {
    const char *ptr;
    size_t len;
} shoal_vocab_str;

/* A vocabulary described by what GGUF metadata holds, for shoal_tokenizer_from_spec. Everything
 * is copied: the caller may free the arrays as soon as the call returns. Always start from
 * SHOAL_VOCAB_SPEC_INIT so fields added later keep their defaults. */
typedef struct shoal_vocab_spec {
    uint32_t struct_size;           /* sizeof(shoal_vocab_spec) */
    const char *source;             /* names the origin in error messages (a path); NULL: "vocab" */
    const char *model;              /* tokenizer.ggml.model: "llama" (SPM) or "gpt2" (byte-level BPE) */
    const char *pre;                /* tokenizer.ggml.pre: "default", "gpt-2", "llama-bpe", "llama3",
                                       "qwen2", ...; NULL means "default" (GPT-2 rule for "gpt2") */
    size_t n_tokens;                /* tokenizer.ggml.tokens count */
    const shoal_vocab_str *tokens;  /* [n_tokens] token strings as stored ("▁the", "Ġthe") */
    const float *scores;            /* [n_tokens] tokenizer.ggml.scores, or NULL (SPM: all 0) */
    const int32_t *token_types;     /* [n_tokens] tokenizer.ggml.token_type, or NULL: derived
                                       (<0xHH> byte, BOS/EOS control, unk unknown, else normal) */
    size_t n_merges;                /* tokenizer.ggml.merges count (0 with merges NULL) */
    const shoal_vocab_str *merges;  /* [n_merges] "left right", rank = index; required for "gpt2" */
    int32_t bos_id;                 /* -1: not given (looked up: "<s>" / "<|endoftext|>"), else id */
    int32_t eos_id;                 /* -1: not given (looked up: "</s>" / "<|endoftext|>") */
    int32_t unk_id;                 /* -1: not given (looked up: "<unk>"); none is fine */
    int32_t eot_id;                 /* -1: none. End of turn ("<|eot_id|>", "<|im_end|>") */
    int add_bos;                    /* tokenizer.ggml.add_bos_token; -1: model default (llama 1, gpt2 0) */
    int add_eos;                    /* tokenizer.ggml.add_eos_token; -1: 0 */
    int add_space_prefix;           /* tokenizer.ggml.add_space_prefix; -1: model default (llama 1) */
    int ignore_merges;              /* -1: from pre ("llama-bpe"/"llama3" 1, else 0) */
} shoal_vocab_spec;

#define SHOAL_VOCAB_SPEC_INIT                                                                      \
    {                                                                                              \
        sizeof(shoal_vocab_spec), NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, NULL, -1, -1, -1, -1,  \
            -1, -1, -1, -1                                                                         \
    }

/* ---- loading. Each loader sets *out to a new tokenizer on success (free it with
 * shoal_tokenizer_free) and leaves *out NULL on failure. */

/* Hugging Face tokenizer.json with a "BPE" model: byte-level (pre_tokenizer ByteLevel, or a
 * Split with the Llama-3 / Qwen2 / Tekken / GPT-4o pattern then ByteLevel, or Digits then
 * ByteLevel; model.ignore_merges honoured) or SentencePiece-style (normalizer Prepend "▁" +
 * Replace " "->"▁", byte_fallback). Normalizers NFC, NFD, NFKC and NFKD are applied to the text
 * between added tokens. added_tokens become control (special: true) or user-defined tokens.
 * Other models (WordPiece, Unigram), regexes or normalizers give SHOAL_ERR_UNSUPPORTED. */
int shoal_tokenizer_load_hf_json(const char *path, shoal_tokenizer **out, char *err, size_t errcap);

/* llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 byte length,
 * bytes. vocab_size tokens are read (the model header's vocab_size); vocab_size 0 reads tokens
 * until the end of the file. Bytes after the last token are ignored. Token 0 is <unk>, 1 BOS,
 * 2 EOS; "<0xHH>" pieces are byte tokens; spaces are stored as ' ', not "▁". Encoding merges
 * greedily by score, exactly as llama2.c's encode() does (with a priority queue). */
int shoal_tokenizer_load_llama2c(const char *path, int vocab_size, shoal_tokenizer **out, char *err,
                                 size_t errcap);

/* A GPT-2-style pair of files: vocabulary JSON object {"token": id, ...} (encoder.json or
 * vocab.json) and merges ("#version" line optional, then one "left right" per line; vocab.bpe or
 * merges.txt). pre names the split rule as GGUF does: "gpt-2" (or NULL/"default"), "llama3"
 * (alias "llama-bpe"; also sets ignore_merges), "qwen2", "starcoder", "tekken", "gpt-4o",
 * "deepseek-v3", ... (docs/tokenizer.md has the list). "<|endoftext|>" and any token of the
 * form "<|...|>" become control tokens; "<|endoftext|>" is BOS and EOS when present. */
int shoal_tokenizer_load_gpt2_files(const char *vocab_json_path, const char *merges_path,
                                    const char *pre, shoal_tokenizer **out, char *err, size_t errcap);

/* SentencePiece tokenizer.model (protobuf ModelProto) of a BPE model (Llama-2, Mistral): pieces,
 * scores and types, unk/bos/eos ids and add_dummy_prefix. Unigram models and normalizers other
 * than "identity" give SHOAL_ERR_UNSUPPORTED. Encodes like shoal_tokenizer_load_gguf of the
 * same vocabulary (score order). */
int shoal_tokenizer_load_sentencepiece(const char *path, shoal_tokenizer **out, char *err, size_t errcap);

/* A GGUF file's tokenizer.ggml.* metadata (any GGUF: vocab-only or a full model). */
int shoal_tokenizer_load_gguf(const char *path, shoal_tokenizer **out, char *err, size_t errcap);

/* From metadata already read (see shoal_vocab_spec). SHOAL_ERR_INVALID for a bad spec from the
 * caller (NULL arrays, struct_size too small); SHOAL_ERR_FORMAT for bad contents (an id out of
 * range, a merge without a space); the message names spec->source and the field. */
int shoal_tokenizer_from_spec(const shoal_vocab_spec *spec, shoal_tokenizer **out, char *err,
                              size_t errcap);

void shoal_tokenizer_free(shoal_tokenizer *tok); /* NULL is fine */

/* ---- vocabulary */
shoal_tokenizer_kind shoal_tokenizer_get_kind(const shoal_tokenizer *tok);
size_t shoal_tokenizer_vocab_size(const shoal_tokenizer *tok);
int32_t shoal_tokenizer_bos_id(const shoal_tokenizer *tok); /* -1: none */
int32_t shoal_tokenizer_eos_id(const shoal_tokenizer *tok); /* -1: none */
int32_t shoal_tokenizer_eot_id(const shoal_tokenizer *tok); /* -1: none */
/* 1 when generation should stop at id: EOS, EOT, or another end-of-generation control token the
 * vocabulary names ("<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>"). */
int shoal_tokenizer_is_eog(const shoal_tokenizer *tok, int32_t id);
/* The vocabulary's add_bos default (what SHOAL_TOKENIZE_ADD_SPECIAL applies). */
int shoal_tokenizer_add_bos(const shoal_tokenizer *tok);
/* Id of the token whose stored string is exactly text[0..len) ("▁the", "Ġthe", "<s>");
 * -1 when there is none. */
int32_t shoal_tokenizer_token_to_id(const shoal_tokenizer *tok, const char *text, size_t len);
/* The stored string of a token, not NUL-terminated; NULL (and *len 0) when id is out of range.
 * The pointer lives as long as the tokenizer. */
const char *shoal_tokenizer_token_text(const shoal_tokenizer *tok, int32_t id, size_t *len);
/* SHOAL_TOKEN_UNDEFINED when id is out of range. */
shoal_token_type shoal_tokenizer_token_type(const shoal_tokenizer *tok, int32_t id);

/* ---- encoding */
enum {
    SHOAL_TOKENIZE_ADD_BOS = 1u << 0,       /* prepend BOS (ignored when there is none) */
    SHOAL_TOKENIZE_ADD_EOS = 1u << 1,       /* append EOS (ignored when there is none) */
    SHOAL_TOKENIZE_ADD_SPECIAL = 1u << 2,   /* add BOS / EOS as the vocabulary's add_bos / add_eos say */
    SHOAL_TOKENIZE_PARSE_SPECIAL = 1u << 3, /* control-token text in the input becomes that token */
};

/* Encodes text[0..len) (any bytes: invalid UTF-8 is encoded byte by byte, so decoding gives it
 * back). Writes up to cap ids to out and sets *n to the number of ids the full encoding has.
 * Returns SHOAL_ERR_TRUNCATED when *n > cap (out then holds the first cap ids), so a caller may
 * size a buffer with a first call of cap 0 (out may be NULL then). SHOAL_ERR_NOMEM when scratch
 * memory cannot be had. Without flags the result equals llama.cpp's tokenize with
 * add_special=false, parse_special=false (and Hugging Face's encode(add_special_tokens=False)). */
int shoal_tokenizer_encode(const shoal_tokenizer *tok, const char *text, size_t len, unsigned flags,
                           int32_t *out, size_t cap, size_t *n);

/* ---- decoding */
enum {
    SHOAL_DECODE_SPECIAL = 1u << 0,  /* render control / unknown tokens as their text ("<s>");
                                        by default they decode to nothing */
    SHOAL_DECODE_KEEP_SPACE = 1u << 1, /* SPM: keep the leading space that decode and the decoder
                                          otherwise drop at the start and right after BOS */
};

/* The bytes one token stands for, out of context: "▁the" -> " the", "Ġthe" -> " the", <0x0A> ->
 * "\n", control tokens -> "" (their text with SHOAL_DECODE_SPECIAL), unknown -> "▅" (U+2585, as
 * llama.cpp) or its text with SHOAL_DECODE_SPECIAL. No leading space is stripped. A piece may be
 * part of a UTF-8 character. Writes up to cap bytes (no NUL) and sets *n to the piece's length;
 * SHOAL_ERR_TRUNCATED when *n > cap; SHOAL_ERR_INVALID when id is out of range. */
int shoal_tokenizer_token_piece(const shoal_tokenizer *tok, int32_t id, unsigned flags, char *buf,
                                size_t cap, size_t *n);

/* Whole-sequence decode: the concatenated pieces, with the SPM leading-space rule (a vocabulary
 * that prepends "▁" drops one leading ' ' from the first piece with text at the start, and from
 * the first one after a BOS, as llama2.c and HF's Llama decoder do) unless
 * SHOAL_DECODE_KEEP_SPACE. Bytes are returned as they are: an incomplete UTF-8 sequence is not
 * replaced. encode followed by decode gives back the input text. Buffer contract as
 * token_piece; SHOAL_ERR_INVALID (nothing useful in buf) when an id is out of range. */
int shoal_tokenizer_decode(const shoal_tokenizer *tok, const int32_t *ids, size_t n_ids,
                           unsigned flags, char *buf, size_t cap, size_t *n);

/* Streaming decode for generation: push one token at a time and print what comes back. Only
 * complete UTF-8 characters are released; the bytes of a character split across tokens are held
 * until it completes (a sequence that can no longer complete is released as it is, so that
 * concatenating every push and the final flush always equals shoal_tokenizer_decode of the same
 * ids with the same flags). The decoder keeps a pointer to tok: free the decoder first. */
int shoal_tokenizer_decoder_new(const shoal_tokenizer *tok, unsigned flags,
                                shoal_tokenizer_decoder **out);
/* Feeds id. *text / *len get the newly complete text (possibly empty). The text lives in the
 * decoder until its next call. SHOAL_ERR_INVALID for an id out of range (the state is unchanged). */
int shoal_tokenizer_decoder_push(shoal_tokenizer_decoder *dec, int32_t id, const char **text,
                                 size_t *len);
/* Releases held bytes (an unfinished character) and resets the decoder to the start of a new
 * sequence. */
int shoal_tokenizer_decoder_flush(shoal_tokenizer_decoder *dec, const char **text, size_t *len);
void shoal_tokenizer_decoder_reset(shoal_tokenizer_decoder *dec); /* drops held bytes */
void shoal_tokenizer_decoder_free(shoal_tokenizer_decoder *dec);  /* NULL is fine */

#ifdef __cplusplus
}
#endif
#endif
