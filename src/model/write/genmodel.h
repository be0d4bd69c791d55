/* Random-weight model synthesis shared by the writers (write_gguf.c, write_hf.c,
 * write_llama2c.c): the tensor list of a shape and a deterministic row generator.
 *
 * Rows are generated in the Hugging Face layout (q/k rows ordered for rotate-half RoPE) from a
 * PRNG keyed by (seed, tensor name, row), so every format and dtype holds the same model.
 * Writers whose RoPE rotates interleaved pairs (GGUF llama, llama2.c) ask for q/k rows
 * permuted the way llama.cpp's convert_hf_to_gguf.py permutes them. */
#ifndef SHOAL_MODEL_WRITE_GENMODEL_H
#define SHOAL_MODEL_WRITE_GENMODEL_H

#include <stdint.h>
#include <stdio.h>

#include "shoal/model.h"

typedef struct shoal__gen_tensor {
    char name[64];   /* canonical (GGUF) name */
    char hf[96];     /* Hugging Face name */
    int rows, cols;  /* cols == 0: a vector of rows elements */
    int layer;       /* -1 for global tensors */
    int heads;       /* q/k: heads to permute for interleaved RoPE; 0 otherwise */
    int is_norm;
} shoal__gen_tensor;

/* Fills t (capacity cap) with the model's tensors in a fixed order; returns the count, or -1 on
 * a shape error (message in err). */
int shoal__gen_tensors(const shoal_genmodel_opts *o, shoal__gen_tensor *t, int cap, char *err, size_t errcap);
int shoal__gen_tensor_cap(const shoal_genmodel_opts *o);
/* Row r (in the file's order) of t, as f32 [cols ? cols : rows] (vectors: r must be 0).
 * interleaved: permute q/k rows for interleaved RoPE. */
void shoal__gen_row(const shoal_genmodel_opts *o, const shoal__gen_tensor *t, int r, int interleaved, float *out);
/* Checks the options; message in err. */
int shoal__gen_check(const shoal_genmodel_opts *o, char *err, size_t errcap);

/* Each writer: 0 or a shoal_status with err set. */
int shoal__write_gguf(const shoal_genmodel_opts *o, const char *path, char *err, size_t errcap);
int shoal__write_hf(const shoal_genmodel_opts *o, const char *dir, char *err, size_t errcap);
int shoal__write_llama2c(const shoal_genmodel_opts *o, const char *path, char *err, size_t errcap);

#endif
