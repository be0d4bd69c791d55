/* Read-only questions about a loaded vocabulary (see shoal/tokenizer.h). */
#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

shoal_tokenizer_kind shoal_tokenizer_get_kind(const shoal_tokenizer *t) { return t ? t->kind : 0; }
size_t shoal_tokenizer_vocab_size(const shoal_tokenizer *t) { return t ? t->n : 0; }
int32_t shoal_tokenizer_bos_id(const shoal_tokenizer *t) { return t ? t->bos : -1; }
int32_t shoal_tokenizer_eos_id(const shoal_tokenizer *t) { return t ? t->eos : -1; }
int32_t shoal_tokenizer_eot_id(const shoal_tokenizer *t) { return t ? t->eot : -1; }
int shoal_tokenizer_add_bos(const shoal_tokenizer *t) { return t ? t->add_bos : 0; }

int shoal_tokenizer_is_eog(const shoal_tokenizer *t, int32_t id) {
    if (!t || id < 0) return 0;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

int32_t shoal_tokenizer_token_to_id(const shoal_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len) || len > SHOAL__TOK_MAX_TOKEN_LEN) return -1;
    return len ? shoal__tok_lookup(t, text, len) : -1;
}

const char *shoal_tokenizer_token_text(const shoal_tokenizer *t, int32_t id, size_t *len) {
    if (len) *len = 0;
    if (!t || id < 0 || (size_t)id >= t->n) return NULL;
    if (len) *len = t->len[id];
    return shoal__tok_str(t, id);
}

shoal_token_type shoal_tokenizer_token_type(const shoal_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (size_t)id >= t->n) return SHOAL_TOKEN_UNDEFINED;
    return (shoal_token_type)t->type[id];
}
