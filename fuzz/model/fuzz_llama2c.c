/* Fuzz target: the llama2.c checkpoint parser (legacy and v1 headers). */
#include <stdint.h>
#include <string.h>

#include "model/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal__source s;
    char err[256];
    memset(&s, 0, sizeof s);
    if (shoal__llama2c_parse(data, size, "fuzz.bin", &s, err, sizeof err) == 0) {
        unsigned acc = 0;
        for (size_t i = 0; i < s.n; i++)
            if (s.tensors[i].nbytes) acc += ((const uint8_t *)s.tensors[i].data)[s.tensors[i].nbytes - 1];
        (void)acc;
    }
    shoal__source_free(&s);
    return 0;
}
