/* Fuzz target: the tokenizer.ggml.* metadata of a GGUF file (through the GGUF reader). */
#include "fuzz/tokenizer/fuzz_tok_common.h"
#include "model/gguf.h"
#include "model/tokenizer/tokenizer_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    shoal__gguf *g = NULL;
    if (shoal__gguf_open_memory(data, size, "fuzz.gguf", &g, err, sizeof err) != SHOAL_OK) return 0;
    shoal_tokenizer *t = NULL;
    if (shoal__tokenizer_from_gguf(g, &t, err, sizeof err) == SHOAL_OK) {
        fuzz_tok_exercise(t, data, size);
        shoal_tokenizer_free(t);
    } else if (t) {
        abort();
    }
    shoal__gguf_close(g);
    return 0;
}
