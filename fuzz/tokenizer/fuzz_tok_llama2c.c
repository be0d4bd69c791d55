/* Fuzz target: llama2.c tokenizer.bin parsing (read to the end, and with a vocab_size taken
 * from the input so counts larger and smaller than the file are both tried). */
#include "fuzz/tokenizer/fuzz_tok_common.h"
#include "model/tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    shoal_tokenizer *t = NULL;
    if (shoal__tok_load_llama2c_mem(data, size, "fuzz.bin", 0, &t, err, sizeof err) == SHOAL_OK) {
        fuzz_tok_exercise(t, data, size);
        shoal_tokenizer_free(t);
    } else if (t) {
        abort(); /* failure must leave *out NULL */
    }
    int vocab = size ? (int)(data[size - 1] * 3u) : 1;
    if (shoal__tok_load_llama2c_mem(data, size, "fuzz.bin", vocab, &t, err, sizeof err) == SHOAL_OK) {
        if (shoal_tokenizer_vocab_size(t) != (size_t)vocab && vocab) abort();
        fuzz_tok_exercise(t, data, size);
        shoal_tokenizer_free(t);
    }
    return 0;
}
