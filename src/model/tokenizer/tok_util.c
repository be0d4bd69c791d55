/* Small helpers shared by the tokenizer loaders: error text, whole-file reads, the pre-tokenizer
 * name table, and GPT-2's byte <-> printable-character mapping. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

int shoal__tok_fail(char *err, size_t errcap, int status, const char *fmt, ...) {
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return status;
}

int shoal__tok_read_file(const char *path, size_t max, char **data, size_t *size, char *err,
                         size_t errcap) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return shoal__tok_fail(err, errcap, errno == ENOENT ? SHOAL_ERR_NOT_FOUND : SHOAL_ERR_IO,
                               "%s: cannot open: %s", path, strerror(errno));
    int rc = SHOAL_OK;
    char *buf = NULL;
    long end = -1;
    if (fseek(f, 0, SEEK_END) == 0) end = ftell(f);
    if (end < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_IO, "%s: cannot size the file", path);
        goto out;
    }
    if ((unsigned long)end > max) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %ld bytes exceeds the limit of %zu",
                             path, end, max);
        goto out;
    }
    buf = malloc((size_t)end + 1);
    if (!buf) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, (size_t)end, f) != (size_t)end) {
        rc = shoal__tok_fail(err, errcap, SHOAL_ERR_IO, "%s: short read", path);
        goto out;
    }
    buf[end] = 0;
    *data = buf;
    *size = (size_t)end;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* GGUF tokenizer.ggml.pre names, as llama.cpp spells them, mapped to the rules implemented here.
 * Names whose rule is another regex (deepseek, falcon, chatglm, gpt-4o, ...) are left out on
 * purpose: silently splitting their text with a wrong rule would give wrong ids. The rules per
 * name follow llama.cpp's llama-vocab.cpp (which regex list each pre-tokenizer type gets). */
static const struct {
    const char *name;
    int rule, ignore_merges;
} pre_names[] = {
    {"default", SHOAL__PRE_GPT2, 0},    {"gpt-2", SHOAL__PRE_GPT2, 0},
    {"gpt2", SHOAL__PRE_GPT2, 0},       {"phi-2", SHOAL__PRE_GPT2, 0},
    {"roberta-bpe", SHOAL__PRE_GPT2, 0}, {"olmo", SHOAL__PRE_GPT2, 0},
    {"mpt", SHOAL__PRE_GPT2, 0},        {"llama3", SHOAL__PRE_LLAMA3, 1},
    {"llama-v3", SHOAL__PRE_LLAMA3, 1}, {"llama-bpe", SHOAL__PRE_LLAMA3, 1},
    {"falcon3", SHOAL__PRE_LLAMA3, 1},  {"smaug-bpe", SHOAL__PRE_LLAMA3, 0},
    {"dbrx", SHOAL__PRE_LLAMA3, 0},     {"qwen2", SHOAL__PRE_QWEN2, 0},
    {"deepseek-r1-qwen", SHOAL__PRE_QWEN2, 0}, {"megrez", SHOAL__PRE_QWEN2, 0},
    {"stablelm2", SHOAL__PRE_QWEN2, 0}, {"exaone4", SHOAL__PRE_GPT2, 0},
    /* \p{N} then the GPT-2 regex: StarCoder and the vocabularies derived from it */
    {"starcoder", SHOAL__PRE_STARCODER, 0}, {"refact", SHOAL__PRE_STARCODER, 0},
    {"command-r", SHOAL__PRE_STARCODER, 0}, {"smollm", SHOAL__PRE_STARCODER, 0},
    {"codeshell", SHOAL__PRE_STARCODER, 0}, {"exaone", SHOAL__PRE_STARCODER, 0},
    {"minerva-7b", SHOAL__PRE_STARCODER, 0},
    /* case-aware letter runs (Hugging Face's regexes; see pretok.c) */
    {"tekken", SHOAL__PRE_TEKKEN, 1},   {"gpt-4o", SHOAL__PRE_GPT4O, 0},
    {"llama4", SHOAL__PRE_GPT4O, 0},    {"deepseek-v3", SHOAL__PRE_DEEPSEEK3, 0},
    {"deepseek-coder", SHOAL__PRE_DEEPSEEK_CODER, 0}, {"deepseek-llm", SHOAL__PRE_DEEPSEEK_LLM, 0},
};

int shoal__tok_pre_by_name(const char *name, int *ignore_merges, const char *src, char *err, size_t errcap) {
    if (!name || !*name) name = "default";
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++)
        if (strcmp(pre_names[i].name, name) == 0) {
            *ignore_merges = pre_names[i].ignore_merges;
            return pre_names[i].rule;
        }
    /* the error names what is supported, from the same table */
    char known[640];
    size_t k = 0;
    known[0] = 0;
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0] && k < sizeof known; i++)
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", pre_names[i].name);
    shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED, "%s: pre-tokenizer \"%.40s\" is not supported (supported: %s)",
                    src, name, known);
    return -1;
}

/* bytes_to_unicode() of GPT-2's encoder.py: printable Latin-1 bytes stand for themselves, the
 * other 68 (controls, space, DEL, NBSP, soft hyphen) take U+0100.. in byte order, so that every
 * byte string becomes a printable string and back. */
uint32_t shoal__byte_to_cp(unsigned b) {
    b &= 0xFF;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256 + n;
}
