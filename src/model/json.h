/* A small JSON parser (RFC 8259) for config.json, model.safetensors.index.json and safetensors
 * headers. The whole text is parsed into a read-only tree of nodes at once; strings stay in the
 * source text (escaped) and are unescaped on request. Depth is bounded (SHOAL__JSON_MAX_DEPTH)
 * and so is the node count, so hostile input cannot overflow the stack or exhaust memory.
 * The source text must outlive the document. */
#ifndef SHOAL_MODEL_JSON_H
#define SHOAL_MODEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#define SHOAL__JSON_MAX_DEPTH 64

enum { SHOAL__JSON_NULL, SHOAL__JSON_BOOL, SHOAL__JSON_NUMBER, SHOAL__JSON_STRING,
       SHOAL__JSON_ARRAY, SHOAL__JSON_OBJECT };

typedef struct shoal__json shoal__json;
typedef struct shoal__jv shoal__jv; /* a node; pointers are valid until shoal__json_free */

/* Parses text[0..len). On error returns SHOAL_ERR_FORMAT with "line L column C: problem" in err
 * (the caller prefixes the file name). */
int shoal__json_parse(const char *text, size_t len, shoal__json **out, char *err, size_t errcap);
void shoal__json_free(shoal__json *doc);
const shoal__jv *shoal__json_root(const shoal__json *doc);

int shoal__json_type(const shoal__jv *v); /* -1 for NULL */
/* Object member by (unescaped) key, NULL when v is not an object or has no such key. */
const shoal__jv *shoal__json_get(const shoal__jv *v, const char *key);
/* Arrays and objects: number of elements / members, and iteration. For objects, child i is the
 * member's value and key_at gives its key node. */
size_t shoal__json_count(const shoal__jv *v);
const shoal__jv *shoal__json_first(const shoal__jv *v); /* first element / member value */
const shoal__jv *shoal__json_next(const shoal__jv *v);  /* next sibling or NULL */
const shoal__jv *shoal__json_key_of(const shoal__jv *member_value); /* NULL outside objects */
const shoal__jv *shoal__json_at(const shoal__jv *v, size_t i);      /* O(i) */

/* Scalars: SHOAL_OK, or SHOAL_ERR_FORMAT when v is missing or of another type (an integer
 * must be integral and fit). */
int shoal__json_number(const shoal__jv *v, double *out);
int shoal__json_int(const shoal__jv *v, int64_t *out);
int shoal__json_bool(const shoal__jv *v, int *out);
/* Unescaped string into buf (NUL-terminated, UTF-8); *len gets the full length. Returns
 * SHOAL_ERR_TRUNCATED when buf is too small (buf then holds a prefix). */
int shoal__json_str(const shoal__jv *v, char *buf, size_t cap, size_t *len);
/* 1 when v is a string equal to s. */
int shoal__json_str_eq(const shoal__jv *v, const char *s);

#endif
