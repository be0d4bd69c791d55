/* The tokenizer from an already open GGUF reader, for the model loader (which has the file open
 * anyway). shoal_tokenizer_load_gguf is this plus open/close. */
#ifndef SHOAL_MODEL_TOKENIZER_GGUF_H
#define SHOAL_MODEL_TOKENIZER_GGUF_H

#include <stddef.h>

#include "model/gguf.h"
#include "shoal/tokenizer.h"

/* Reads tokenizer.ggml.* from g. SHOAL_ERR_NOT_FOUND when the file has no vocabulary
 * (no tokenizer.ggml.model / .tokens); otherwise as shoal_tokenizer_from_spec. The tokenizer
 * copies what it needs: g may be closed right after. */
int shoal__tokenizer_from_gguf(const shoal__gguf *g, shoal_tokenizer **out, char *err, size_t errcap);

#endif
