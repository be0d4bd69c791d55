/* Element types and reduction operators: sizes, names, and parsing of names (CLI, bench). */
#include <stddef.h>
#include <strings.h>

#include "shoal/comm.h"

typedef struct dtype_info {
    const char *name;  /* canonical name, as printed */
    const char *alias; /* a longer spelling also accepted by shoal_dtype_parse */
    size_t size;
} dtype_info;

/* Indexed by shoal_dtype. */
static const dtype_info dtypes[SHOAL_DTYPE_COUNT] = {
    [SHOAL_F32] = {"f32", "float32", 4}, [SHOAL_F64] = {"f64", "float64", 8},
    [SHOAL_F16] = {"f16", "float16", 2}, [SHOAL_BF16] = {"bf16", "bfloat16", 2},
    [SHOAL_I8] = {"i8", "int8", 1},      [SHOAL_U8] = {"u8", "uint8", 1},
    [SHOAL_I32] = {"i32", "int32", 4},   [SHOAL_I64] = {"i64", "int64", 8},
};

/* Indexed by shoal_op. */
static const char *const ops[SHOAL_OP_COUNT][2] = {
    [SHOAL_SUM] = {"sum", "add"},     [SHOAL_PROD] = {"prod", "product"},
    [SHOAL_MIN] = {"min", "minimum"}, [SHOAL_MAX] = {"max", "maximum"},
    [SHOAL_AVG] = {"avg", "mean"},
};

size_t shoal_dtype_size(shoal_dtype t) {
    return (unsigned)t < SHOAL_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *shoal_dtype_name(shoal_dtype t) {
    return (unsigned)t < SHOAL_DTYPE_COUNT ? dtypes[t].name : "?";
}

const char *shoal_op_name(shoal_op op) { return (unsigned)op < SHOAL_OP_COUNT ? ops[op][0] : "?"; }

int shoal_dtype_parse(const char *name, shoal_dtype *out) {
    if (!name || !out) return SHOAL_ERR_INVALID;
    for (int t = 0; t < SHOAL_DTYPE_COUNT; t++) {
        if (strcasecmp(name, dtypes[t].name) == 0 || strcasecmp(name, dtypes[t].alias) == 0) {
            *out = (shoal_dtype)t;
            return SHOAL_OK;
        }
    }
    return SHOAL_ERR_INVALID;
}

int shoal_op_parse(const char *name, shoal_op *out) {
    if (!name || !out) return SHOAL_ERR_INVALID;
    for (int op = 0; op < SHOAL_OP_COUNT; op++) {
        if (strcasecmp(name, ops[op][0]) == 0 || strcasecmp(name, ops[op][1]) == 0) {
            *out = (shoal_op)op;
            return SHOAL_OK;
        }
    }
    return SHOAL_ERR_INVALID;
}
