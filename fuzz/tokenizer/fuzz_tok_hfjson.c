/* Fuzz target: Hugging Face tokenizer.json parsing (JSON structure, vocab ids, merges in both
 * forms, added tokens, pre-tokenizer and normalizer recognition). */
#include "fuzz/tokenizer/fuzz_tok_common.h"
#include "model/tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    shoal_tokenizer *t = NULL;
    if (shoal__tok_load_hf_json_mem((const char *)data, size, "fuzz.json", &t, err, sizeof err) == SHOAL_OK) {
        fuzz_tok_exercise(t, data, size);
        shoal_tokenizer_free(t);
    } else if (t) {
        abort();
    }
    return 0;
}
