/* Fuzz target: the GGUF reader and the GGUF model metadata mapping. Every accessor is called
 * on every key and tensor the reader accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal__gguf *g = NULL;
    char err[256];
    if (shoal__gguf_open_memory(data, size, "fuzz.gguf", &g, err, sizeof err)) return 0;
    unsigned acc = 0;
    for (size_t i = 0; i < shoal__gguf_kv_count(g); i++) {
        const char *key = shoal__gguf_kv_key(g, i), *s;
        size_t len;
        int64_t iv;
        double fv;
        int b, et;
        uint64_t n;
        const void *raw;
        if (!shoal__gguf_get_str(g, key, &s, &len) && len) acc += (unsigned char)s[len - 1];
        shoal__gguf_get_int(g, key, &iv);
        shoal__gguf_get_float(g, key, &fv);
        shoal__gguf_get_bool(g, key, &b);
        if (!shoal__gguf_get_array(g, key, &et, &n) && n) {
            for (uint64_t j = 0; j < n && j < 64; j++) {
                if (!shoal__gguf_array_str(g, key, j, &s, &len) && len) acc += (unsigned char)s[len - 1];
                shoal__gguf_array_int(g, key, j, &iv);
                shoal__gguf_array_float(g, key, j, &fv);
            }
            if (!shoal__gguf_array_str(g, key, n - 1, &s, &len) && len) acc += (unsigned char)s[0];
            shoal__gguf_array_data(g, key, &et, &n, &raw);
        }
    }
    for (size_t i = 0; i < shoal__gguf_tensor_count(g); i++) {
        shoal__gguf_tensor t;
        shoal__gguf_tensor_at(g, i, &t);
        const uint8_t *p = t.data;
        if (t.nbytes) acc += p[0] + p[t.nbytes - 1];
    }
    shoal__source s;
    memset(&s, 0, sizeof s);
    shoal__gguf_to_source(g, &s, err, sizeof err); /* s now owns g */
    shoal__source_free(&s);
    return (int)(acc & 0);
}
