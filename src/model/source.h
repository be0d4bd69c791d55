/* A model as its files describe it, before any compute structure is built: the config and a
 * table of named tensors pointing into memory-mapped files. Each format reader (gguf_model.c,
 * hf.c, llama2c.c) fills one; the loader (loader.c) then picks the tensors of the requested
 * layers by canonical name and checks their shapes against the config.
 *
 * Canonical names are GGUF's (llama.cpp's): token_embd.weight, output_norm.weight,
 * output.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm,
 * attn_k_norm, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, rope_freqs.weight. */
#ifndef SHOAL_MODEL_SOURCE_H
#define SHOAL_MODEL_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "model/gguf.h"
#include "model/mapfile.h"
#include "shoal/model.h"

typedef struct shoal__tensor {
    char *name;      /* canonical */
    char *file_name; /* as written in the file */
    int dtype;
    int n_dims;
    uint64_t shape[4]; /* outermost first: a matrix is [rows][cols] */
    uint64_t n_elements, nbytes;
    const void *data;
} shoal__tensor;

typedef struct shoal__source {
    shoal_model_config cfg;
    shoal__tensor *tensors;
    size_t n, cap;
    shoal__mapfile *maps; /* every mapped file (HF shards, llama2.c file) */
    size_t n_maps;
    shoal__gguf *gguf; /* GGUF: the open reader (owns its mapping) */
    void **owned;      /* buffers to free: aligned copies of misaligned tensors */
    size_t n_owned;
    char *path;
} shoal__source;

/* Adds a tensor; copies both names. Data that is not aligned to the element size is copied
 * into an aligned buffer (safetensors offsets may be odd). */
int shoal__source_add(shoal__source *s, const char *name, const char *file_name, int dtype,
                      int n_dims, const uint64_t *shape, const void *data, uint64_t nbytes);
const shoal__tensor *shoal__source_find(const shoal__source *s, const char *name);
int shoal__source_add_map(shoal__source *s, const shoal__mapfile *m);
void shoal__source_free(shoal__source *s);

/* Checks the config for absurd or inconsistent values; err names the file and the field. */
int shoal__config_check(const shoal_model_config *c, const char *file, char *err, size_t errcap);

/* Format readers. path is a file (GGUF, llama2.c) or a folder (HF). */
int shoal__read_gguf(const char *path, shoal__source *s, char *err, size_t errcap);
int shoal__read_hf(const char *dir, shoal__source *s, char *err, size_t errcap);
int shoal__read_llama2c(const char *path, shoal__source *s, char *err, size_t errcap);

/* Parsers over memory, shared by the readers and the fuzz targets. */
typedef int (*shoal__st_tensor_fn)(void *ctx, const char *name, int dtype, int n_dims,
                                   const uint64_t *shape, const void *data, uint64_t nbytes);
/* safetensors: u64 header length, JSON header, data. Calls fn for each tensor (the
 * "__metadata__" entry is skipped). name is used in messages. */
int shoal__safetensors_parse(const void *data, size_t size, const char *name,
                             shoal__st_tensor_fn fn, void *ctx, char *err, size_t errcap);
/* llama2.c checkpoint over memory. */
int shoal__llama2c_parse(const void *data, size_t size, const char *name, shoal__source *s,
                         char *err, size_t errcap);
/* GGUF metadata + tensor table to a source (s->gguf is set to g and then owned by s). */
int shoal__gguf_to_source(shoal__gguf *g, shoal__source *s, char *err, size_t errcap);
/* HF config.json text to a config. */
int shoal__hf_config_parse(const char *text, size_t len, const char *name, shoal_model_config *c,
                           char *err, size_t errcap);

#endif
