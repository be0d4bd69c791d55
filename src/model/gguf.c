/* GGUF reader: parses and validates the whole header at open so that accessors are plain
 * lookups (see gguf.h for the checks and the API contract). */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/gguf.h"
#include "model/mapfile.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */

typedef struct kv {
    char *key;
    int type;
    int elem_type;        /* arrays */
    uint64_t count;       /* arrays */
    const uint8_t *value; /* scalar value, string length prefix, or first array element */
    uint64_t *str_off;    /* string arrays: offset of each element's length prefix from value */
} kv;

struct shoal__gguf {
    shoal__mapfile map;
    const uint8_t *base;
    size_t size;
    char *path;
    uint32_t version, alignment;
    kv *kvs;
    size_t n_kv;
    shoal__gguf_tensor *tensors;
    size_t n_tensors;
};

typedef struct cursor {
    const uint8_t *p;
    size_t pos, size;
    char *err;
    size_t errcap;
    const char *file;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos) {
        shoal__errf(c->err, c->errcap, "%s: truncated at byte %zu reading %s (%llu bytes needed, %zu left)",
                    c->file, c->pos, what, (unsigned long long)n, c->size - c->pos);
        return SHOAL_ERR_FORMAT;
    }
    return SHOAL_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return SHOAL_ERR_FORMAT;
    *v = shoal__get_u32(c->p + c->pos);
    c->pos += 4;
    return SHOAL_OK;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return SHOAL_ERR_FORMAT;
    *v = shoal__get_u64(c->p + c->pos);
    c->pos += 8;
    return SHOAL_OK;
}

/* A string: u64 length + bytes. Returns the byte pointer and length. */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    if (rd_u64(c, len, what) || need(c, *len, what)) return SHOAL_ERR_FORMAT;
    *s = c->p + c->pos;
    c->pos += (size_t)*len;
    return SHOAL_OK;
}

static char *dup_name(cursor *c, const uint8_t *s, uint64_t len, const char *what) {
    if (len > SHOAL__GGUF_MAX_NAME || memchr(s, 0, (size_t)len)) {
        shoal__errf(c->err, c->errcap, "%s: %s at byte %zu is too long or holds a NUL byte", c->file,
                    what, c->pos);
        return NULL;
    }
    char *d = malloc((size_t)len + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)len);
    d[len] = 0;
    return d;
}

static int scalar_size(int type) {
    switch (type) {
    case SHOAL__GGUF_U8: case SHOAL__GGUF_I8: case SHOAL__GGUF_BOOL: return 1;
    case SHOAL__GGUF_U16: case SHOAL__GGUF_I16: return 2;
    case SHOAL__GGUF_U32: case SHOAL__GGUF_I32: case SHOAL__GGUF_F32: return 4;
    case SHOAL__GGUF_U64: case SHOAL__GGUF_I64: case SHOAL__GGUF_F64: return 8;
    default: return 0;
    }
}

/* Skips one value of the given type; depth bounds nested arrays. */
static int skip_value(cursor *c, int type, int depth, const char *key) {
    int sz = scalar_size(type);
    if (sz) return need(c, (uint64_t)sz, key) ? SHOAL_ERR_FORMAT : (c->pos += (size_t)sz, SHOAL_OK);
    if (type == SHOAL__GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        return rd_str(c, &s, &len, key);
    }
    if (type == SHOAL__GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (depth > 4) {
            shoal__errf(c->err, c->errcap, "%s: key '%s': arrays nested too deep", c->file, key);
            return SHOAL_ERR_FORMAT;
        }
        if (rd_u32(c, &et, key) || rd_u64(c, &n, key)) return SHOAL_ERR_FORMAT;
        int esz = scalar_size((int)et);
        if (esz) {
            if (n > (c->size - c->pos) / (uint64_t)esz) return need(c, UINT64_MAX, key);
            c->pos += (size_t)(n * (uint64_t)esz);
            return SHOAL_OK;
        }
        if (et != SHOAL__GGUF_STRING && et != SHOAL__GGUF_ARRAY) {
            shoal__errf(c->err, c->errcap, "%s: key '%s': unknown array element type %u", c->file, key, et);
            return SHOAL_ERR_FORMAT;
        }
        /* each element takes at least 8 bytes: bound n before looping */
        if (n > (c->size - c->pos) / 8) return need(c, n * 8 > n ? n * 8 : UINT64_MAX, key);
        for (uint64_t i = 0; i < n; i++)
            if (skip_value(c, (int)et, depth + 1, key)) return SHOAL_ERR_FORMAT;
        return SHOAL_OK;
    }
    shoal__errf(c->err, c->errcap, "%s: key '%s': unknown value type %d", c->file, key, type);
    return SHOAL_ERR_FORMAT;
}

static int parse_kv(shoal__gguf *g, cursor *c, kv *e) {
    const uint8_t *s;
    uint64_t len;
    uint32_t type;
    if (rd_str(c, &s, &len, "metadata key")) return SHOAL_ERR_FORMAT;
    if (!(e->key = dup_name(c, s, len, "metadata key"))) return SHOAL_ERR_FORMAT;
    if (rd_u32(c, &type, e->key)) return SHOAL_ERR_FORMAT;
    e->type = (int)type;
    if (type == SHOAL__GGUF_ARRAY) {
        uint32_t et;
        size_t start = c->pos;
        if (rd_u32(c, &et, e->key) || rd_u64(c, &e->count, e->key)) return SHOAL_ERR_FORMAT;
        e->elem_type = (int)et;
        e->value = c->p + c->pos;
        c->pos = start;
        if (et == SHOAL__GGUF_STRING) {
            c->pos += 12;
            if (e->count > (c->size - c->pos) / 8) return need(c, UINT64_MAX, e->key);
            e->str_off = malloc((size_t)(e->count ? e->count : 1) * sizeof *e->str_off);
            if (!e->str_off) return SHOAL_ERR_NOMEM;
            for (uint64_t i = 0; i < e->count; i++) {
                e->str_off[i] = (uint64_t)(c->p + c->pos - e->value);
                if (rd_str(c, &s, &len, e->key)) return SHOAL_ERR_FORMAT;
            }
            return SHOAL_OK;
        }
        return skip_value(c, SHOAL__GGUF_ARRAY, 0, e->key);
    }
    e->value = c->p + c->pos;
    (void)g;
    return skip_value(c, (int)type, 0, e->key);
}

static int parse(shoal__gguf *g, char *err, size_t errcap) {
    cursor c = {g->base, 0, g->size, err, errcap, g->path};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &magic, "magic")) return SHOAL_ERR_FORMAT;
    if (magic != GGUF_MAGIC) {
        shoal__errf(err, errcap, "%s: not a GGUF file (magic 0x%08x, expected \"GGUF\")", g->path, magic);
        return SHOAL_ERR_FORMAT;
    }
    if (rd_u32(&c, &g->version, "version")) return SHOAL_ERR_FORMAT;
    if (g->version != 2 && g->version != 3) {
        shoal__errf(err, errcap, "%s: GGUF version %u is not supported (2 and 3 are)", g->path, g->version);
        return SHOAL_ERR_UNSUPPORTED;
    }
    if (rd_u64(&c, &n_tensors, "tensor_count") || rd_u64(&c, &n_kv, "metadata_kv_count"))
        return SHOAL_ERR_FORMAT;
    if (n_tensors > SHOAL__GGUF_MAX_TENSORS || n_kv > SHOAL__GGUF_MAX_KV) {
        shoal__errf(err, errcap, "%s: header field %s = %llu is beyond the limit", g->path,
                    n_tensors > SHOAL__GGUF_MAX_TENSORS ? "tensor_count" : "metadata_kv_count",
                    (unsigned long long)(n_tensors > SHOAL__GGUF_MAX_TENSORS ? n_tensors : n_kv));
        return SHOAL_ERR_FORMAT;
    }
    g->kvs = calloc((size_t)n_kv + 1, sizeof *g->kvs);
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) return SHOAL_ERR_NOMEM;
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv++;
        int rc = parse_kv(g, &c, &g->kvs[i]);
        if (rc) return rc;
    }
    g->alignment = 32;
    long ai = shoal__gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        int64_t a;
        if (shoal__gguf_get_int(g, "general.alignment", &a) || a < 1 || a > (1 << 20) || (a & (a - 1))) {
            shoal__errf(err, errcap, "%s: general.alignment must be a power of two integer <= 1M", g->path);
            return SHOAL_ERR_FORMAT;
        }
        g->alignment = (uint32_t)a;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        shoal__gguf_tensor *t = &g->tensors[i];
        const uint8_t *s;
        uint64_t len;
        uint32_t nd, type;
        if (rd_str(&c, &s, &len, "tensor name")) return SHOAL_ERR_FORMAT;
        char *name = dup_name(&c, s, len, "tensor name");
        if (!name) return SHOAL_ERR_FORMAT;
        t->name = name;
        g->n_tensors++;
        if (rd_u32(&c, &nd, name)) return SHOAL_ERR_FORMAT;
        if (nd < 1 || nd > 4) {
            shoal__errf(err, errcap, "%s: tensor '%s': n_dims %u is not 1..4", g->path, name, nd);
            return SHOAL_ERR_FORMAT;
        }
        t->n_dims = (int)nd;
        uint64_t n = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (rd_u64(&c, &t->ne[d], name)) return SHOAL_ERR_FORMAT;
            if (t->ne[d] < 1 || t->ne[d] >= (1ull << 48) || n > (1ull << 48) / t->ne[d]) {
                shoal__errf(err, errcap, "%s: tensor '%s': dimension %u = %llu is zero or absurd",
                            g->path, name, d, (unsigned long long)t->ne[d]);
                return SHOAL_ERR_FORMAT;
            }
            n *= t->ne[d];
        }
        t->n_elements = n;
        if (rd_u32(&c, &type, name) || rd_u64(&c, &t->offset, name)) return SHOAL_ERR_FORMAT;
        t->type = (int)type;
        const shoal__dtype_info *dt = shoal__dtype(t->type);
        if (!dt) {
            shoal__errf(err, errcap, "%s: tensor '%s': unknown type %u", g->path, name, type);
            return SHOAL_ERR_FORMAT;
        }
        if (t->ne[0] % dt->block) {
            shoal__errf(err, errcap, "%s: tensor '%s': ne[0] = %llu is not a multiple of the %s block %u",
                        g->path, name, (unsigned long long)t->ne[0], dt->name, dt->block);
            return SHOAL_ERR_FORMAT;
        }
        t->nbytes = shoal__dtype_bytes(t->type, n);
        if (t->offset % g->alignment) {
            shoal__errf(err, errcap, "%s: tensor '%s': offset %llu is not aligned to %u", g->path,
                        name, (unsigned long long)t->offset, g->alignment);
            return SHOAL_ERR_FORMAT;
        }
    }
    size_t data_start = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors && data_start > g->size) {
        shoal__errf(err, errcap, "%s: truncated: data section would start at %zu, file has %zu bytes",
                    g->path, data_start, g->size);
        return SHOAL_ERR_FORMAT;
    }
    uint64_t avail = n_tensors ? g->size - data_start : 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        shoal__gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            shoal__errf(err, errcap,
                        "%s: tensor '%s': data [%llu, +%llu) runs past the end of the file (data section %llu bytes)",
                        g->path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                        (unsigned long long)avail);
            return SHOAL_ERR_FORMAT;
        }
        t->data = g->base + data_start + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0) {
                shoal__errf(err, errcap, "%s: tensor '%s' appears twice", g->path, t->name);
                return SHOAL_ERR_FORMAT;
            }
    }
    return SHOAL_OK;
}

static int open_common(shoal__gguf *g, const char *name, shoal__gguf **out, char *err, size_t errcap) {
    g->path = strdup(name ? name : "(memory)");
    int rc = g->path ? parse(g, err, errcap) : SHOAL_ERR_NOMEM;
    if (rc == SHOAL_ERR_NOMEM) shoal__errf(err, errcap, "%s: out of memory", name);
    if (rc) {
        shoal__gguf_close(g);
        return rc;
    }
    *out = g;
    return SHOAL_OK;
}

int shoal__gguf_open(const char *path, shoal__gguf **out, char *err, size_t errcap) {
    *out = NULL;
    shoal__gguf *g = calloc(1, sizeof *g);
    if (!g) return SHOAL_ERR_NOMEM;
    int rc = shoal__mapfile_open(path, &g->map, err, errcap);
    if (rc) {
        free(g);
        return rc;
    }
    g->base = g->map.data;
    g->size = g->map.size;
    return open_common(g, path, out, err, errcap);
}

int shoal__gguf_open_memory(const void *data, size_t size, const char *name, shoal__gguf **out,
                            char *err, size_t errcap) {
    *out = NULL;
    shoal__gguf *g = calloc(1, sizeof *g);
    if (!g) return SHOAL_ERR_NOMEM;
    g->base = data;
    g->size = size;
    return open_common(g, name, out, err, errcap);
}

void shoal__gguf_close(shoal__gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].str_off);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->path);
    shoal__mapfile_close(&g->map);
    free(g);
}

uint32_t shoal__gguf_version(const shoal__gguf *g) { return g->version; }
uint32_t shoal__gguf_alignment(const shoal__gguf *g) { return g->alignment; }
const char *shoal__gguf_path(const shoal__gguf *g) { return g->path; }
size_t shoal__gguf_kv_count(const shoal__gguf *g) { return g->n_kv; }
const char *shoal__gguf_kv_key(const shoal__gguf *g, size_t i) { return i < g->n_kv ? g->kvs[i].key : NULL; }
int shoal__gguf_kv_type(const shoal__gguf *g, size_t i) { return i < g->n_kv ? g->kvs[i].type : -1; }

long shoal__gguf_find_key(const shoal__gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (g->kvs[i].key && strcmp(g->kvs[i].key, key) == 0) return (long)i;
    return -1;
}

static const kv *get(const shoal__gguf *g, const char *key) {
    long i = shoal__gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

/* Reads a numeric scalar of the given type at p. */
static int num_at(int type, const uint8_t *p, int64_t *iv, double *fv, int *is_float) {
    *is_float = 0;
    switch (type) {
    case SHOAL__GGUF_U8: case SHOAL__GGUF_BOOL: *iv = p[0]; break;
    case SHOAL__GGUF_I8: *iv = (int8_t)p[0]; break;
    case SHOAL__GGUF_U16: *iv = shoal__get_u16(p); break;
    case SHOAL__GGUF_I16: *iv = (int16_t)shoal__get_u16(p); break;
    case SHOAL__GGUF_U32: *iv = shoal__get_u32(p); break;
    case SHOAL__GGUF_I32: *iv = (int32_t)shoal__get_u32(p); break;
    case SHOAL__GGUF_U64: {
        uint64_t u = shoal__get_u64(p);
        if (u > INT64_MAX) return SHOAL_ERR_FORMAT;
        *iv = (int64_t)u;
        break;
    }
    case SHOAL__GGUF_I64: *iv = (int64_t)shoal__get_u64(p); break;
    case SHOAL__GGUF_F32: {
        uint32_t u = shoal__get_u32(p);
        float f;
        memcpy(&f, &u, 4);
        *fv = f;
        *is_float = 1;
        break;
    }
    case SHOAL__GGUF_F64: {
        uint64_t u = shoal__get_u64(p);
        memcpy(fv, &u, 8);
        *is_float = 1;
        break;
    }
    default: return SHOAL_ERR_FORMAT;
    }
    if (!*is_float) *fv = (double)*iv;
    return SHOAL_OK;
}

int shoal__gguf_get_str(const shoal__gguf *g, const char *key, const char **s, size_t *len) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    if (e->type != SHOAL__GGUF_STRING) return SHOAL_ERR_FORMAT;
    *len = (size_t)shoal__get_u64(e->value);
    *s = (const char *)e->value + 8;
    return SHOAL_OK;
}

int shoal__gguf_get_int(const shoal__gguf *g, const char *key, int64_t *v) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    int64_t iv;
    double fv;
    int isf;
    if (num_at(e->type, e->value, &iv, &fv, &isf) || isf) return SHOAL_ERR_FORMAT;
    *v = iv;
    return SHOAL_OK;
}

int shoal__gguf_get_float(const shoal__gguf *g, const char *key, double *v) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    int64_t iv;
    double fv;
    int isf;
    if (e->type == SHOAL__GGUF_BOOL || num_at(e->type, e->value, &iv, &fv, &isf)) return SHOAL_ERR_FORMAT;
    *v = fv;
    return SHOAL_OK;
}

int shoal__gguf_get_bool(const shoal__gguf *g, const char *key, int *v) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    if (e->type != SHOAL__GGUF_BOOL) return SHOAL_ERR_FORMAT;
    *v = e->value[0] != 0;
    return SHOAL_OK;
}

int shoal__gguf_get_array(const shoal__gguf *g, const char *key, int *elem_type, uint64_t *count) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    if (e->type != SHOAL__GGUF_ARRAY) return SHOAL_ERR_FORMAT;
    *elem_type = e->elem_type;
    *count = e->count;
    return SHOAL_OK;
}

static const kv *get_array(const shoal__gguf *g, const char *key, uint64_t i, int *rc) {
    const kv *e = get(g, key);
    *rc = !e ? SHOAL_ERR_NOT_FOUND : e->type != SHOAL__GGUF_ARRAY ? SHOAL_ERR_FORMAT
                                     : i >= e->count ? SHOAL_ERR_INVALID : SHOAL_OK;
    return *rc ? NULL : e;
}

int shoal__gguf_array_str(const shoal__gguf *g, const char *key, uint64_t i, const char **s, size_t *len) {
    int rc;
    const kv *e = get_array(g, key, i, &rc);
    if (!e) return rc;
    if (e->elem_type != SHOAL__GGUF_STRING) return SHOAL_ERR_FORMAT;
    const uint8_t *p = e->value + e->str_off[i];
    *len = (size_t)shoal__get_u64(p);
    *s = (const char *)p + 8;
    return SHOAL_OK;
}

/* Element i of a numeric array (bool counts as a number only where allowed). */
static int array_num(const shoal__gguf *g, const char *key, uint64_t i, int allow_bool, int64_t *iv, double *fv,
                     int *isf) {
    int rc;
    const kv *e = get_array(g, key, i, &rc);
    if (!e) return rc;
    int sz = scalar_size(e->elem_type);
    if (!sz || (!allow_bool && e->elem_type == SHOAL__GGUF_BOOL) ||
        num_at(e->elem_type, e->value + i * (uint64_t)sz, iv, fv, isf))
        return SHOAL_ERR_FORMAT;
    return SHOAL_OK;
}

int shoal__gguf_array_int(const shoal__gguf *g, const char *key, uint64_t i, int64_t *v) {
    int64_t iv;
    double fv;
    int isf, rc = array_num(g, key, i, 1, &iv, &fv, &isf);
    if (rc) return rc;
    if (isf) return SHOAL_ERR_FORMAT;
    *v = iv;
    return SHOAL_OK;
}

int shoal__gguf_array_float(const shoal__gguf *g, const char *key, uint64_t i, double *v) {
    int64_t iv;
    double fv;
    int isf, rc = array_num(g, key, i, 0, &iv, &fv, &isf);
    if (rc) return rc;
    *v = fv;
    return SHOAL_OK;
}

int shoal__gguf_array_data(const shoal__gguf *g, const char *key, int *elem_type, uint64_t *count,
                           const void **data) {
    const kv *e = get(g, key);
    if (!e) return SHOAL_ERR_NOT_FOUND;
    if (e->type != SHOAL__GGUF_ARRAY || !scalar_size(e->elem_type)) return SHOAL_ERR_FORMAT;
    *elem_type = e->elem_type;
    *count = e->count;
    *data = e->value;
    return SHOAL_OK;
}

size_t shoal__gguf_tensor_count(const shoal__gguf *g) { return g->n_tensors; }

int shoal__gguf_tensor_at(const shoal__gguf *g, size_t i, shoal__gguf_tensor *t) {
    if (i >= g->n_tensors) return SHOAL_ERR_INVALID;
    *t = g->tensors[i];
    return SHOAL_OK;
}

long shoal__gguf_find_tensor(const shoal__gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return (long)i;
    return -1;
}
