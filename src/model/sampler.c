/* Token sampling (see shoal/model.h for the order of the steps and the PRNG). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "shoal/model.h"

struct shoal_sampler {
    shoal_sampler_params p;
    int vocab;
    uint64_t s[4];   /* xoshiro256** state */
    int *hist;       /* ring of the last repeat_last_n accepted tokens */
    int n_hist, hist_pos;
    float *work;     /* [vocab] logits after the penalty */
    int *idx;        /* [vocab] candidate ids */
    unsigned char *seen; /* [vocab] penalty marks */
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

int shoal_sampler_create(const shoal_sampler_params *p, int vocab_size, shoal_sampler **out) {
    if (!out) return SHOAL_ERR_INVALID;
    *out = NULL;
    if (!p || p->size < sizeof *p || vocab_size < 1 || !(p->temperature >= 0) || p->top_k < 0 ||
        !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->repeat_last_n < 0)
        return SHOAL_ERR_INVALID;
    shoal_sampler *s = calloc(1, sizeof *s);
    if (!s) return SHOAL_ERR_NOMEM;
    s->p = *p;
    s->vocab = vocab_size;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->s[i] = splitmix64(&x);
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->hist);
    s->work = malloc((size_t)vocab_size * sizeof *s->work);
    s->idx = malloc((size_t)vocab_size * sizeof *s->idx);
    s->seen = calloc((size_t)vocab_size, 1);
    if (!s->hist || !s->work || !s->idx || !s->seen) {
        shoal_sampler_free(s);
        return SHOAL_ERR_NOMEM;
    }
    *out = s;
    return SHOAL_OK;
}

void shoal_sampler_free(shoal_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->work);
    free(s->idx);
    free(s->seen);
    free(s);
}

void shoal_sampler_accept(shoal_sampler *s, int token) {
    if (!s || s->p.repeat_last_n == 0 || token < 0 || token >= s->vocab) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->n_hist < s->p.repeat_last_n) s->n_hist++;
}

static int by_logit_desc(const void *a, const void *b, void *key) {
    const float *k = key;
    float x = k[*(const int *)a], y = k[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

int shoal_sampler_sample(shoal_sampler *s, const float *logits) {
    if (!s || !logits) return SHOAL_ERR_INVALID;
    int V = s->vocab;
    float *w = s->work;
    memcpy(w, logits, (size_t)V * sizeof *w);
    if (s->p.repeat_penalty != 1.0f) {
        for (int i = 0; i < s->n_hist; i++) {
            int t = s->hist[i];
            if (s->seen[t]) continue;
            s->seen[t] = 1;
            w[t] = w[t] > 0 ? w[t] / s->p.repeat_penalty : w[t] * s->p.repeat_penalty;
        }
        for (int i = 0; i < s->n_hist; i++) s->seen[s->hist[i]] = 0;
    }
    if (s->p.temperature == 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (w[i] > w[best]) best = i;
        return best;
    }
    /* candidates sorted by logit, descending (ties by id) */
    int n = V;
    for (int i = 0; i < V; i++) s->idx[i] = i;
    int k = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : V;
    /* a full sort: ~1 ms for 1e5 candidates, small next to a forward pass */
    qsort_r(s->idx, (size_t)n, sizeof *s->idx, by_logit_desc, w);
    n = k;
    /* softmax with temperature over the candidates, in place of w for the kept ids */
    float mx = w[s->idx[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (w[s->idx[i]] = expf((w[s->idx[i]] - mx) / s->p.temperature));
    for (int i = 0; i < n; i++) w[s->idx[i]] = (float)(w[s->idx[i]] / sum);
    if (s->p.top_p < 1) {
        double c = 0;
        int j = 0;
        while (j < n) {
            c += w[s->idx[j++]];
            if (c >= s->p.top_p) break;
        }
        n = j;
    }
    if (s->p.min_p > 0) {
        float thr = s->p.min_p * w[s->idx[0]];
        int j = 1;
        while (j < n && w[s->idx[j]] >= thr) j++;
        n = j;
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += w[s->idx[i]];
    double r = (double)(next(s->s) >> 40) * (1.0 / 16777216.0) * tot;
    double c = 0;
    for (int i = 0; i < n; i++) {
        c += w[s->idx[i]];
        if (r < c) return s->idx[i];
    }
    return s->idx[n - 1];
}
