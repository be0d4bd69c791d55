/* Fuzz target: Hugging Face config.json -> model config. */
#include <stdint.h>

#include "model/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal_model_config c;
    char err[256];
    shoal__hf_config_parse((const char *)data, size, "fuzz/config.json", &c, err, sizeof err);
    return 0;
}
