/* safetensors: [u64 N][N bytes of JSON header][data]. Header entries are
 * "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets relative
 * to the data section; every entry is checked (known dtype, shape product, end - begin equal to
 * the product times the element size, end inside the file) before fn sees it. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/dtype.h"
#include "model/json.h"
#include "model/source.h"

#define MAX_HEADER (100u << 20) /* the format's own reference limit */

static int st_dtype(const shoal__jv *v) {
    if (shoal__json_str_eq(v, "F32")) return SHOAL_WTYPE_F32;
    if (shoal__json_str_eq(v, "F16")) return SHOAL_WTYPE_F16;
    if (shoal__json_str_eq(v, "BF16")) return SHOAL_WTYPE_BF16;
    if (shoal__json_str_eq(v, "F64")) return 28;
    if (shoal__json_str_eq(v, "I8")) return 24;
    if (shoal__json_str_eq(v, "I16")) return 25;
    if (shoal__json_str_eq(v, "I32")) return 26;
    if (shoal__json_str_eq(v, "I64")) return 27;
    return -1;
}

int shoal__safetensors_parse(const void *data, size_t size, const char *name,
                             shoal__st_tensor_fn fn, void *ctx, char *err, size_t errcap) {
    const uint8_t *p = data;
    if (size < 8) {
        shoal__errf(err, errcap, "%s: truncated: %zu bytes, no safetensors header length", name, size);
        return SHOAL_ERR_FORMAT;
    }
    uint64_t hlen = shoal__get_u64(p);
    if (hlen > MAX_HEADER || hlen > size - 8) {
        shoal__errf(err, errcap, "%s: header length %llu runs past the end of the file (%zu bytes) or the 100 MiB limit",
                    name, (unsigned long long)hlen, size);
        return SHOAL_ERR_FORMAT;
    }
    const uint8_t *base = p + 8 + hlen;
    uint64_t avail = size - 8 - hlen;
    shoal__json *doc = NULL;
    char jerr[160];
    int rc = shoal__json_parse((const char *)p + 8, (size_t)hlen, &doc, jerr, sizeof jerr);
    if (rc) {
        shoal__errf(err, errcap, "%s: header JSON: %s", name, jerr);
        return SHOAL_ERR_FORMAT;
    }
    const shoal__jv *root = shoal__json_root(doc);
    if (shoal__json_type(root) != SHOAL__JSON_OBJECT) {
        shoal__errf(err, errcap, "%s: header is not a JSON object", name);
        rc = SHOAL_ERR_FORMAT;
        goto done;
    }
    for (const shoal__jv *e = shoal__json_first(root); e; e = shoal__json_next(e)) {
        char tname[512];
        if (shoal__json_str(shoal__json_key_of(e), tname, sizeof tname, NULL)) {
            shoal__errf(err, errcap, "%s: tensor name longer than %zu bytes", name, sizeof tname - 1);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        if (strcmp(tname, "__metadata__") == 0) continue;
        const shoal__jv *dt = shoal__json_get(e, "dtype");
        const shoal__jv *sh = shoal__json_get(e, "shape");
        const shoal__jv *off = shoal__json_get(e, "data_offsets");
        int dtype = st_dtype(dt);
        if (shoal__json_type(e) != SHOAL__JSON_OBJECT || !dt || !sh || !off) {
            shoal__errf(err, errcap, "%s: tensor '%s': needs dtype, shape and data_offsets", name, tname);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        if (dtype < 0) {
            shoal__errf(err, errcap, "%s: tensor '%s': dtype is not one of F32 F16 BF16 F64 I8..I64", name, tname);
            rc = SHOAL_ERR_UNSUPPORTED;
            goto done;
        }
        size_t nd = shoal__json_count(sh);
        if (shoal__json_type(sh) != SHOAL__JSON_ARRAY || nd > 4) {
            shoal__errf(err, errcap, "%s: tensor '%s': shape must be an array of at most 4 dims", name, tname);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        uint64_t shape[4] = {1, 1, 1, 1}, n = 1;
        size_t d = 0;
        for (const shoal__jv *x = shoal__json_first(sh); x; x = shoal__json_next(x), d++) {
            int64_t v;
            if (shoal__json_int(x, &v) || v < 0 || v >= (1ll << 40) ||
                (v && n > (1ull << 48) / (uint64_t)v)) {
                shoal__errf(err, errcap, "%s: tensor '%s': shape[%zu] is not a sane integer", name, tname, d);
                rc = SHOAL_ERR_FORMAT;
                goto done;
            }
            shape[d] = (uint64_t)v;
            n *= (uint64_t)v;
        }
        int64_t b, en;
        if (shoal__json_count(off) != 2 || shoal__json_int(shoal__json_at(off, 0), &b) ||
            shoal__json_int(shoal__json_at(off, 1), &en) || b < 0 || en < b) {
            shoal__errf(err, errcap, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end", name, tname);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        uint64_t want = shoal__dtype_bytes(dtype, n);
        if ((uint64_t)(en - b) != want) {
            shoal__errf(err, errcap, "%s: tensor '%s': data_offsets span %lld bytes but shape and dtype need %llu",
                        name, tname, (long long)(en - b), (unsigned long long)want);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        if ((uint64_t)en > avail) {
            shoal__errf(err, errcap, "%s: tensor '%s': data_offsets end %lld is past the end of the data (%llu bytes)",
                        name, tname, (long long)en, (unsigned long long)avail);
            rc = SHOAL_ERR_FORMAT;
            goto done;
        }
        rc = fn(ctx, tname, dtype, (int)nd, shape, base + b, want);
        if (rc) goto done;
    }
done:
    shoal__json_free(doc);
    return rc;
}
