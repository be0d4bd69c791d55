/* shoal_tokenizer_from_spec: a vocabulary described the way GGUF metadata describes it. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

int shoal_tokenizer_from_spec(const shoal_vocab_spec *spec_in, shoal_tokenizer **out, char *err,
                              size_t errcap) {
    if (out) *out = NULL;
    if (!spec_in || !out) return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "vocab spec: bad arguments");
    /* A caller built against an older, shorter struct gets the defaults for the fields it
     * does not know; one that is too short to hold the vocabulary itself is refused. */
    shoal_vocab_spec spec = SHOAL_VOCAB_SPEC_INIT;
    size_t given = spec_in->struct_size;
    if (given < offsetof(shoal_vocab_spec, bos_id))
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "vocab spec: struct_size %zu is too small", given);
    memcpy(&spec, spec_in, given < sizeof spec ? given : sizeof spec);
    const char *src = spec.source ? spec.source : "vocab";
    if (!spec.model)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: no tokenizer model named", src);
    shoal_tokenizer_kind kind;
    if (!strcmp(spec.model, "llama")) kind = SHOAL_TOKENIZER_SPM;
    else if (!strcmp(spec.model, "gpt2")) kind = SHOAL_TOKENIZER_BPE;
    else
        return shoal__tok_fail(err, errcap, SHOAL_ERR_UNSUPPORTED,
                               "%s: tokenizer model \"%.40s\" is not supported (only \"llama\" and \"gpt2\")",
                               src, spec.model);
    int ignore_merges = 0, rule = SHOAL__PRE_NONE;
    if (kind == SHOAL_TOKENIZER_BPE) {
        rule = shoal__tok_pre_by_name(spec.pre, &ignore_merges, src, err, errcap);
        if (rule < 0) return SHOAL_ERR_UNSUPPORTED;
    }
    if (spec.n_tokens && !spec.tokens)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: tokens is NULL", src);
    if (spec.n_merges && !spec.merges)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_INVALID, "%s: merges is NULL", src);
    if (spec.n_merges > SHOAL__TOK_MAX_MERGES)
        return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT, "%s: %zu merges exceeds the limit of %u", src,
                               spec.n_merges, SHOAL__TOK_MAX_MERGES);
    shoal_vocab_str *ml = NULL, *mr = NULL;
    if (spec.n_merges && kind == SHOAL_TOKENIZER_BPE) { /* SPM merges by score; GGUF merges unused */
        ml = malloc(spec.n_merges * sizeof *ml);
        mr = malloc(spec.n_merges * sizeof *mr);
        if (!ml || !mr) {
            free(ml);
            free(mr);
            return shoal__tok_fail(err, errcap, SHOAL_ERR_NOMEM, "%s: out of memory", src);
        }
        for (size_t r = 0; r < spec.n_merges; r++) {
            const shoal_vocab_str *m = &spec.merges[r];
            size_t sp;
            if (!m->ptr || !shoal__tok_split_merge(m->ptr, m->len, &sp)) {
                free(ml);
                free(mr);
                return shoal__tok_fail(err, errcap, SHOAL_ERR_FORMAT,
                                       "%s: merges[%zu]: a merge needs two tokens separated by a space", src, r);
            }
            ml[r] = (shoal_vocab_str){m->ptr, sp};
            mr[r] = (shoal_vocab_str){m->ptr + sp + 1, m->len - sp - 1};
        }
    }
    shoal__tok_params p;
    memset(&p, 0, sizeof p);
    p.source = src;
    p.kind = kind;
    p.pre = rule;
    p.ignore_merges = spec.ignore_merges >= 0 ? spec.ignore_merges != 0 : ignore_merges;
    p.add_space_prefix = spec.add_space_prefix >= 0 ? spec.add_space_prefix != 0 : 1;
    p.n_tokens = spec.n_tokens;
    p.tokens = spec.tokens;
    p.scores = spec.scores;
    p.types = spec.token_types;
    p.n_merges = ml ? spec.n_merges : 0;
    p.merge_left = ml;
    p.merge_right = mr;
    p.bos_id = spec.bos_id < 0 ? -1 : spec.bos_id;
    p.eos_id = spec.eos_id < 0 ? -1 : spec.eos_id;
    p.unk_id = spec.unk_id < 0 ? -1 : spec.unk_id;
    p.eot_id = spec.eot_id < 0 ? -1 : spec.eot_id;
    p.add_bos = spec.add_bos;
    p.add_eos = spec.add_eos;
    int rc = shoal__tok_build(&p, out, err, errcap);
    free(ml);
    free(mr);
    return rc;
}
