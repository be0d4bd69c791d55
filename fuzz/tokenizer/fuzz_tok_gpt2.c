/* Fuzz target: GPT-2-style vocabulary files. The input is the vocabulary JSON, a NUL byte,
 * then the merges text; the pre-tokenizer rule cycles with the input's length. */
#include "fuzz/tokenizer/fuzz_tok_common.h"
#include "model/tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const pres[] = {"gpt-2", "llama-bpe", "qwen2"};
    const uint8_t *nul = memchr(data, 0, size);
    size_t vl = nul ? (size_t)(nul - data) : size;
    const char *m = nul ? (const char *)nul + 1 : "";
    size_t ml = nul ? size - vl - 1 : 0;
    char err[256];
    shoal_tokenizer *t = NULL;
    if (shoal__tok_load_gpt2_mem((const char *)data, vl, "fuzz-vocab.json", m, ml, "fuzz-merges.txt",
                                 pres[size % 3], &t, err, sizeof err) == SHOAL_OK) {
        fuzz_tok_exercise(t, data, size);
        shoal_tokenizer_free(t);
    } else if (t) {
        abort();
    }
    return 0;
}
