/* JSON parser (see json.h): recursive descent with a depth bound, into a flat node array. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/json.h"

struct shoal__jv {
    int type;
    int boolean;
    double num;
    const char *s; /* strings: raw bytes between the quotes; numbers: the literal */
    size_t slen;
    int escaped;   /* string holds a backslash */
    uint32_t count;
    int32_t first, next, key; /* node indexes, -1 for none */
    const shoal__json *doc;
};

struct shoal__json {
    shoal__jv *nodes;
    size_t n, cap;
};

typedef struct parser {
    const char *p, *end, *start;
    shoal__json *doc;
    char *err;
    size_t errcap;
} parser;

static int fail(parser *ps, const char *what) {
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    shoal__errf(ps->err, ps->errcap, "line %d column %d: %s", line, col, what);
    return -1;
}

static void ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int32_t new_node(parser *ps, int type) {
    shoal__json *d = ps->doc;
    if (d->n == d->cap) {
        /* each node comes from >= 1 byte of input, so cap never exceeds len + 1 */
        size_t nc = d->cap ? d->cap * 2 : 64;
        shoal__jv *nn = realloc(d->nodes, nc * sizeof *nn);
        if (!nn) return fail(ps, "out of memory");
        d->nodes = nn;
        d->cap = nc;
    }
    shoal__jv *v = &d->nodes[d->n];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->first = v->next = v->key = -1;
    return (int32_t)d->n++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int32_t parse_string(parser *ps) {
    ps->p++; /* opening quote */
    const char *s = ps->p;
    int escaped = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) return fail(ps, "control character in string");
        if (c == '\\') {
            escaped = 1;
            if (ps->end - ps->p < 2) break;
            char e = ps->p[1];
            if (e == 'u') {
                unsigned u;
                if (ps->end - ps->p < 6 || hex4(ps->p + 2, &u)) return fail(ps, "bad \\u escape");
                ps->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || !e) return fail(ps, "bad escape in string");
            ps->p += 2;
            continue;
        }
        ps->p++;
    }
    if (ps->p >= ps->end) return fail(ps, "unterminated string");
    int32_t i = new_node(ps, SHOAL__JSON_STRING);
    if (i < 0) return -1;
    shoal__jv *v = &ps->doc->nodes[i];
    v->s = s;
    v->slen = (size_t)(ps->p - s);
    v->escaped = escaped;
    ps->p++;
    return i;
}

static int32_t parse_number(parser *ps) {
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number");
    if (*ps->p == '0') ps->p++;
    else while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    size_t n = (size_t)(ps->p - s);
    char buf[64];
    if (n >= sizeof buf) return fail(ps, "number too long");
    memcpy(buf, s, n);
    buf[n] = 0;
    int32_t i = new_node(ps, SHOAL__JSON_NUMBER);
    if (i < 0) return -1;
    ps->doc->nodes[i].num = strtod(buf, NULL);
    ps->doc->nodes[i].s = s;
    ps->doc->nodes[i].slen = n;
    return i;
}

static int lit(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return 0;
    ps->p += n;
    return 1;
}

static int32_t parse_value(parser *ps, int depth);

static int32_t parse_container(parser *ps, int depth, int object) {
    if (depth >= SHOAL__JSON_MAX_DEPTH) return fail(ps, "nested too deep");
    ps->p++;
    int32_t self = new_node(ps, object ? SHOAL__JSON_OBJECT : SHOAL__JSON_ARRAY);
    if (self < 0) return -1;
    int32_t last = -1;
    uint32_t count = 0;
    ws(ps);
    if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
        ps->p++;
        return self;
    }
    for (;;) {
        int32_t key = -1;
        ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string key");
            key = parse_string(ps);
            if (key < 0) return -1;
            ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
            ps->p++;
        }
        int32_t val = parse_value(ps, depth + 1);
        if (val < 0) return -1;
        ps->doc->nodes[val].key = key;
        if (last < 0) ps->doc->nodes[self].first = val;
        else ps->doc->nodes[last].next = val;
        last = val;
        count++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
            ps->p++;
            break;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->doc->nodes[self].count = count;
    return self;
}

static int32_t parse_value(parser *ps, int depth) {
    ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of text");
    char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
    if (c == '"') return parse_string(ps);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    int32_t i;
    if (lit(ps, "true") || lit(ps, "false")) {
        if ((i = new_node(ps, SHOAL__JSON_BOOL)) >= 0) ps->doc->nodes[i].boolean = c == 't';
        return i;
    }
    if (lit(ps, "null")) return new_node(ps, SHOAL__JSON_NULL);
    return fail(ps, "unexpected character");
}

int shoal__json_parse(const char *text, size_t len, shoal__json **out, char *err, size_t errcap) {
    *out = NULL;
    shoal__json *d = calloc(1, sizeof *d);
    if (!d) return SHOAL_ERR_NOMEM;
    parser ps = {text, text + len, text, d, err, errcap};
    int32_t root = parse_value(&ps, 0);
    if (root >= 0) {
        ws(&ps);
        if (ps.p != ps.end) root = fail(&ps, "text after the JSON value");
    }
    if (root < 0) {
        shoal__json_free(d);
        return SHOAL_ERR_FORMAT;
    }
    for (size_t i = 0; i < d->n; i++) d->nodes[i].doc = d;
    *out = d;
    return SHOAL_OK;
}

void shoal__json_free(shoal__json *doc) {
    if (!doc) return;
    free(doc->nodes);
    free(doc);
}

const shoal__jv *shoal__json_root(const shoal__json *doc) { return doc && doc->n ? &doc->nodes[0] : NULL; }
int shoal__json_type(const shoal__jv *v) { return v ? v->type : -1; }
size_t shoal__json_count(const shoal__jv *v) {
    return v && (v->type == SHOAL__JSON_ARRAY || v->type == SHOAL__JSON_OBJECT) ? v->count : 0;
}
const shoal__jv *shoal__json_first(const shoal__jv *v) {
    return v && v->first >= 0 ? &v->doc->nodes[v->first] : NULL;
}
const shoal__jv *shoal__json_next(const shoal__jv *v) {
    return v && v->next >= 0 ? &v->doc->nodes[v->next] : NULL;
}
const shoal__jv *shoal__json_key_of(const shoal__jv *v) {
    return v && v->key >= 0 ? &v->doc->nodes[v->key] : NULL;
}
const shoal__jv *shoal__json_at(const shoal__jv *v, size_t i) {
    const shoal__jv *c = shoal__json_first(v);
    while (c && i--) c = shoal__json_next(c);
    return c;
}

static void put_utf8(char *buf, size_t cap, size_t *n, unsigned cp) {
    char tmp[4];
    int k;
    if (cp < 0x80) tmp[0] = (char)cp, k = 1;
    else if (cp < 0x800) tmp[0] = (char)(0xc0 | (cp >> 6)), tmp[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    else if (cp < 0x10000)
        tmp[0] = (char)(0xe0 | (cp >> 12)), tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        tmp[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
    else
        tmp[0] = (char)(0xf0 | (cp >> 18)), tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), tmp[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    for (int i = 0; i < k; i++, (*n)++)
        if (*n + 1 < cap) buf[*n] = tmp[i];
}

int shoal__json_str(const shoal__jv *v, char *buf, size_t cap, size_t *len) {
    if (!v || v->type != SHOAL__JSON_STRING) return SHOAL_ERR_FORMAT;
    size_t n = 0;
    for (size_t i = 0; i < v->slen; i++) {
        char c = v->s[i];
        if (c != '\\') {
            if (n + 1 < cap) buf[n] = c;
            n++;
            continue;
        }
        char e = v->s[++i]; /* the parser guaranteed a valid escape */
        if (e == 'u') {
            unsigned cp, lo;
            hex4(v->s + i + 1, &cp);
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < v->slen && v->s[i + 1] == '\\' &&
                v->s[i + 2] == 'u' && !hex4(v->s + i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd; /* lone surrogate */
            }
            put_utf8(buf, cap, &n, cp);
            continue;
        }
        char o = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
        if (n + 1 < cap) buf[n] = o;
        n++;
    }
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    if (len) *len = n;
    return n < cap ? SHOAL_OK : SHOAL_ERR_TRUNCATED;
}

int shoal__json_str_eq(const shoal__jv *v, const char *s) {
    if (!v || v->type != SHOAL__JSON_STRING) return 0;
    size_t sl = strlen(s);
    if (!v->escaped) return v->slen == sl && memcmp(v->s, s, sl) == 0;
    char buf[512];
    size_t n;
    if (sl >= sizeof buf || shoal__json_str(v, buf, sizeof buf, &n)) return 0;
    return n == sl && memcmp(buf, s, sl) == 0;
}

const shoal__jv *shoal__json_get(const shoal__jv *v, const char *key) {
    if (!v || v->type != SHOAL__JSON_OBJECT) return NULL;
    for (const shoal__jv *c = shoal__json_first(v); c; c = shoal__json_next(c))
        if (shoal__json_str_eq(shoal__json_key_of(c), key)) return c;
    return NULL;
}

int shoal__json_number(const shoal__jv *v, double *out) {
    if (!v || v->type != SHOAL__JSON_NUMBER) return SHOAL_ERR_FORMAT;
    *out = v->num;
    return SHOAL_OK;
}

int shoal__json_int(const shoal__jv *v, int64_t *out) {
    if (!v || v->type != SHOAL__JSON_NUMBER) return SHOAL_ERR_FORMAT;
    /* parse the literal itself so 2^53+1 offsets are exact */
    char buf[64];
    memcpy(buf, v->s, v->slen);
    buf[v->slen] = 0;
    char *end;
    long long x = strtoll(buf, &end, 10);
    if (*end == 0) {
        if ((x == LLONG_MAX || x == LLONG_MIN) && v->slen > 18) return SHOAL_ERR_FORMAT;
        *out = x;
        return SHOAL_OK;
    }
    if (v->num != floor(v->num) || fabs(v->num) > 9007199254740992.0) return SHOAL_ERR_FORMAT;
    *out = (int64_t)v->num;
    return SHOAL_OK;
}

int shoal__json_bool(const shoal__jv *v, int *out) {
    if (!v || v->type != SHOAL__JSON_BOOL) return SHOAL_ERR_FORMAT;
    *out = v->boolean;
    return SHOAL_OK;
}
