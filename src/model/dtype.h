/* Element types of weight tensors: ids and block layouts follow ggml's (so GGUF type ids are
 * used as is). A quantized row of n elements is n/block blocks of type_size bytes each. */
#ifndef SHOAL_MODEL_DTYPE_H
#define SHOAL_MODEL_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/model.h"

typedef struct shoal__dtype_info {
    const char *name;
    uint32_t block;     /* elements per block */
    uint32_t type_size; /* bytes per block */
    int compute;        /* 1 if the CPU backend can multiply with it */
} shoal__dtype_info;

/* NULL for an unknown id. */
const shoal__dtype_info *shoal__dtype(int type);
/* Bytes of n elements, or UINT64_MAX when n is not a multiple of the block or type unknown. */
uint64_t shoal__dtype_bytes(int type, uint64_t n);

/* 1 for block-quantized dtypes: their products take activations quantized to blocks of 32. */
static inline int shoal__dtype_quantized(int t) { return t == 2 || t == 8 || t == 12 || t == 14; }
/* 1 when a matrix of dtype with cols columns cannot be multiplied (q8 activations need whole
 * blocks of 32). */
static inline int shoal__act_is_q8_cols(int dtype, int cols) { return shoal__dtype_quantized(dtype) && cols % 32; }

/* f16 / bf16 <-> f32 conversions (round to nearest even). */
float shoal__fp16_to_f32(uint16_t h);
uint16_t shoal__f32_to_fp16(float f);
static inline float shoal__bf16_to_float(uint16_t b) {
    union { uint32_t u; float f; } v = {(uint32_t)b << 16};
    return v.f;
}
uint16_t shoal__float_to_bf16(float f);

#endif
