/* Fuzz target: the JSON parser (src/model/json.c) and every accessor over its tree. */
#include <stdint.h>
#include <stdlib.h>

#include "model/json.h"

static void walk(const shoal__jv *v, int depth) {
    if (!v || depth > SHOAL__JSON_MAX_DEPTH + 1) return;
    char buf[64];
    double d;
    int64_t i;
    int b;
    size_t n;
    shoal__json_number(v, &d);
    shoal__json_int(v, &i);
    shoal__json_bool(v, &b);
    shoal__json_str(v, buf, sizeof buf, &n);
    shoal__json_str_eq(v, "model_type");
    shoal__json_get(v, "a");
    shoal__json_at(v, 2);
    shoal__json_str(shoal__json_key_of(v), buf, sizeof buf, &n);
    for (const shoal__jv *c = shoal__json_first(v); c; c = shoal__json_next(c)) walk(c, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal__json *doc = NULL;
    char err[128];
    if (shoal__json_parse((const char *)data, size, &doc, err, sizeof err) == 0) {
        walk(shoal__json_root(doc), 0);
        shoal__json_free(doc);
    }
    return 0;
}
