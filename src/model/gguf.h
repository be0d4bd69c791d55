/* GGUF reader (versions 2 and 3): the header, metadata key/values, the tensor table and the
 * aligned data section of a .gguf file, memory-mapped and validated at open.
 *
 * Stable internal API: the model loader and the tokenizer loader (vocab-only GGUF files) both
 * read through it. Everything is checked when the file is opened: every count, string length
 * and array length against the bytes left in the file, value types against the spec, tensor
 * dims (1..4, each >= 1, product < 2^48), the tensor type (known ggml type, ne[0] a multiple of
 * its block), and that every tensor's [offset, offset+nbytes) lies inside the data section.
 * After a successful open no accessor can read out of bounds.
 *
 * Strings in GGUF are not NUL-terminated: string getters return a pointer into the mapping and
 * a length. Key and tensor names are copied and NUL-terminated (names with a NUL byte inside
 * are rejected at open).
 *
 * Return values: SHOAL_OK; SHOAL_ERR_NOT_FOUND when the key/tensor does not exist;
 * SHOAL_ERR_FORMAT when it exists with another type (or an integer does not fit);
 * SHOAL_ERR_INVALID for an index out of range. Outputs are untouched on error. */
#ifndef SHOAL_MODEL_GGUF_H
#define SHOAL_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct shoal__gguf shoal__gguf;

/* Metadata value types, numbered as in the GGUF spec. */
enum shoal__gguf_type {
    SHOAL__GGUF_U8 = 0, SHOAL__GGUF_I8 = 1, SHOAL__GGUF_U16 = 2, SHOAL__GGUF_I16 = 3,
    SHOAL__GGUF_U32 = 4, SHOAL__GGUF_I32 = 5, SHOAL__GGUF_F32 = 6, SHOAL__GGUF_BOOL = 7,
    SHOAL__GGUF_STRING = 8, SHOAL__GGUF_ARRAY = 9, SHOAL__GGUF_U64 = 10, SHOAL__GGUF_I64 = 11,
    SHOAL__GGUF_F64 = 12,
};

/* Limits applied at open (a file beyond them is SHOAL_ERR_FORMAT). */
#define SHOAL__GGUF_MAX_KV (1u << 20)
#define SHOAL__GGUF_MAX_TENSORS (1u << 20)
#define SHOAL__GGUF_MAX_NAME 65535

typedef struct shoal__gguf_tensor {
    const char *name;     /* NUL-terminated copy, owned by the reader */
    int type;             /* ggml type id (shoal_wtype in shoal/model.h) */
    int n_dims;           /* 1..4 */
    uint64_t ne[4];       /* ne[0] is the contiguous (innermost) dimension; unused dims are 1 */
    uint64_t n_elements;
    uint64_t nbytes;
    uint64_t offset;      /* from the start of the data section */
    const void *data;     /* into the mapping */
} shoal__gguf_tensor;

/* Opens and validates path (mmap). On error *out is NULL and err names the file and field. */
int shoal__gguf_open(const char *path, shoal__gguf **out, char *err, size_t errcap);
/* Same over caller memory, which must outlive the reader (used by the fuzz target).
 * name is used in error messages only. */
int shoal__gguf_open_memory(const void *data, size_t size, const char *name, shoal__gguf **out,
                            char *err, size_t errcap);
void shoal__gguf_close(shoal__gguf *g); /* NULL is fine */

uint32_t shoal__gguf_version(const shoal__gguf *g);
uint32_t shoal__gguf_alignment(const shoal__gguf *g); /* general.alignment, default 32 */
const char *shoal__gguf_path(const shoal__gguf *g);

/* ---- metadata */
size_t shoal__gguf_kv_count(const shoal__gguf *g);
const char *shoal__gguf_kv_key(const shoal__gguf *g, size_t i); /* NULL when out of range */
int shoal__gguf_kv_type(const shoal__gguf *g, size_t i);        /* -1 when out of range */
long shoal__gguf_find_key(const shoal__gguf *g, const char *key); /* index or -1 */

int shoal__gguf_get_str(const shoal__gguf *g, const char *key, const char **s, size_t *len);
/* Any of the 8 integer types (and bool); SHOAL_ERR_FORMAT when a u64 exceeds INT64_MAX. */
int shoal__gguf_get_int(const shoal__gguf *g, const char *key, int64_t *v);
/* f32 or f64 (integers are accepted too, converted). */
int shoal__gguf_get_float(const shoal__gguf *g, const char *key, double *v);
int shoal__gguf_get_bool(const shoal__gguf *g, const char *key, int *v);

/* Arrays: element type and count. Nested arrays are accepted at open but their elements cannot
 * be read through the element getters (SHOAL_ERR_FORMAT). */
int shoal__gguf_get_array(const shoal__gguf *g, const char *key, int *elem_type, uint64_t *count);
int shoal__gguf_array_str(const shoal__gguf *g, const char *key, uint64_t i, const char **s,
                          size_t *len);
int shoal__gguf_array_int(const shoal__gguf *g, const char *key, uint64_t i, int64_t *v);
int shoal__gguf_array_float(const shoal__gguf *g, const char *key, uint64_t i, double *v);
/* Raw element pointer of a numeric array (elements are little-endian, possibly unaligned):
 * for bulk reads such as tokenizer.ggml.scores (f32) and .token_type (i32). */
int shoal__gguf_array_data(const shoal__gguf *g, const char *key, int *elem_type,
                           uint64_t *count, const void **data);

/* ---- tensors */
size_t shoal__gguf_tensor_count(const shoal__gguf *g);
int shoal__gguf_tensor_at(const shoal__gguf *g, size_t i, shoal__gguf_tensor *t);
long shoal__gguf_find_tensor(const shoal__gguf *g, const char *name); /* index or -1 */

#endif
