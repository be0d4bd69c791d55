/* Fuzz target: the safetensors parser; every tensor it accepts is read end to end, so an
 * offset past the buffer shows up under the sanitizers. */
#include <stdint.h>
#include <stdlib.h>

#include "model/source.h"

static int touch(void *ctx, const char *name, int dtype, int n_dims, const uint64_t *shape, const void *data,
                 uint64_t nbytes) {
    const uint8_t *p = data;
    unsigned *acc = ctx;
    for (uint64_t i = 0; i < nbytes; i += 61) *acc += p[i];
    if (nbytes) *acc += p[nbytes - 1];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    unsigned acc = 0;
    shoal__safetensors_parse(data, size, "fuzz.safetensors", touch, &acc, err, sizeof err);
    return (int)(acc & 0);
}
