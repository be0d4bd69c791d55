/* BPE merging of one word with a priority queue: O(n log n) in the word's length, so a
 * megabyte-long word (SPM treats a whole text fragment as one) costs no more than its pieces.
 *
 * Symbols form a doubly linked list over the initial units. The heap holds candidate merges of
 * adjacent pairs ordered by priority (merge rank, or -score for SPM) and then by position, the
 * tie-break both Hugging Face's BPE (rank, pos) and SentencePiece / llama2.c (best score,
 * leftmost) use. A candidate records the ids it saw; one whose symbols have changed since is
 * stale and skipped when popped, so nothing is ever removed from the middle of the heap. */
#include <stdlib.h>

#include "common/common.h"
#include "model/tokenizer/tok_internal.h"

struct shoal__bpe_sym {
    int32_t id;         /* -1 once merged into its left neighbour */
    int32_t prev, next; /* indexes, -1 at the ends */
};

struct shoal__bpe_cand {
    float prio;
    uint32_t left, right; /* symbol indexes (left is also the position for ties) */
    int32_t lid, rid, result;
};

static int cand_less(const struct shoal__bpe_cand *a, const struct shoal__bpe_cand *b) {
    if (a->prio != b->prio) return a->prio < b->prio;
    return a->left < b->left;
}

static void heap_push(struct shoal__bpe_cand *h, size_t *n, struct shoal__bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static struct shoal__bpe_cand heap_pop(struct shoal__bpe_cand *h, size_t *n) {
    struct shoal__bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct shoal__bpe_cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && cand_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void try_pair(const shoal_tokenizer *t, const struct shoal__bpe_sym *sym,
                     struct shoal__bpe_cand *heap, size_t *nh, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const shoal__tok_pair *p = shoal__tok_pair_find(t, sym[left].id, sym[right].id);
    if (!p) return;
    struct shoal__bpe_cand c = {p->prio, (uint32_t)left, (uint32_t)right, sym[left].id,
                                sym[right].id, p->result};
    heap_push(heap, nh, c);
}

int shoal__bpe_merge(const shoal_tokenizer *t, shoal__bpe_scratch *s, int32_t *ids, size_t n,
                     size_t *n_out) {
    *n_out = n;
    if (n < 2 || !t->pairs) return SHOAL_OK;
    if (n > INT32_MAX / 4) return SHOAL_ERR_NOMEM; /* indexes are int32 */
    /* every merge removes one symbol and adds at most two candidates: 3n bounds the heap */
    if (n > s->sym_cap) {
        struct shoal__bpe_sym *ns = realloc(s->sym, n * sizeof *ns);
        if (!ns) return SHOAL_ERR_NOMEM;
        s->sym = ns;
        s->sym_cap = n;
    }
    if (3 * n > s->heap_cap) {
        struct shoal__bpe_cand *nh = realloc(s->heap, 3 * n * sizeof *nh);
        if (!nh) return SHOAL_ERR_NOMEM;
        s->heap = nh;
        s->heap_cap = 3 * n;
    }
    struct shoal__bpe_sym *sym = s->sym;
    struct shoal__bpe_cand *heap = s->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i].id = ids[i];
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, sym, heap, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh) {
        struct shoal__bpe_cand c = heap_pop(heap, &nh);
        struct shoal__bpe_sym *l = &sym[c.left], *r = &sym[c.right];
        if (l->id != c.lid || r->id != c.rid || l->next != (int32_t)c.right) continue; /* stale */
        l->id = c.result;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = (int32_t)c.left;
        r->id = -1;
        try_pair(t, sym, heap, &nh, l->prev, (int32_t)c.left);
        try_pair(t, sym, heap, &nh, (int32_t)c.left, l->next);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = sym[i].next) ids[k++] = sym[i].id;
    *n_out = k;
    return SHOAL_OK;
}

void shoal__bpe_scratch_free(shoal__bpe_scratch *s) {
    free(s->sym);
    free(s->heap);
    s->sym = NULL;
    s->heap = NULL;
    s->sym_cap = s->heap_cap = 0;
}
