/* Layer planning: contiguous layer ranges per worker, in proportion to the memory each one
 * offers, with the embedding on the first stage and the final norm + classifier on the last
 * (see shoal_cluster_plan in include/shoal/cluster.h). Pure arithmetic: no I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "common/common.h"

void shoal__cl_human(uint64_t b, char *out, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0) snprintf(out, cap, "%llu B", (unsigned long long)b);
    else snprintf(out, cap, "%.1f %s", v, u[i]);
}

/* Memory of stage i of n holding layers [a, b). */
static uint64_t stage_need(const shoal_plan_input *in, int i, int a, int b) {
    uint64_t s = in->base_bytes;
    for (int l = a; l < b; l++) s += in->bytes_per_layer[l];
    if (i == 0) s += in->embed_bytes;
    if (i == in->n_workers - 1) s += in->head_bytes + (i != 0 ? in->tied_bytes : 0);
    return s;
}

/* "0-3,4-7" (inclusive ranges, "5" alone is 5-5): one range per worker in rank order (the
 * workers after the last range stay idle), covering every layer once. */
static int parse_spec(const shoal_plan_input *in, int *first, int *last, int *count, char *err, size_t errcap) {
    const char *p = in->spec;
    int n = 0, next = 0;
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b;
        if (end == p || errno || a < 0) goto bad;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || errno || b < a) goto bad;
            p = end;
        } else {
            b = a;
        }
        if (*p == ',') {
            if (!*++p) goto bad; /* a trailing comma */
        } else if (*p) {
            goto bad;
        }
        if (n == in->n_workers) {
            shoal__errf(err, errcap, "--layers '%s' has more ranges than the %d workers", in->spec, in->n_workers);
            return SHOAL_ERR_INVALID;
        }
        if (a != next || b >= in->n_layers) {
            shoal__errf(err, errcap,
                        "--layers '%s': range %ld-%ld must start at layer %d and stay below %d (ranges are contiguous and cover every layer)",
                        in->spec, a, b, next, in->n_layers);
            return SHOAL_ERR_INVALID;
        }
        first[n] = (int)a;
        last[n] = (int)b + 1;
        next = (int)b + 1;
        n++;
    }
    if (n == 0 || next != in->n_layers) {
        shoal__errf(err, errcap, "--layers '%s' covers layers 0-%d; the ranges must cover 0-%d", in->spec, next - 1,
                    in->n_layers - 1);
        return SHOAL_ERR_INVALID;
    }
    *count = n;
    return SHOAL_OK;
bad:
    shoal__errf(err, errcap, "--layers '%s' is not a list of layer ranges such as 0-3,4-7", in->spec);
    return SHOAL_ERR_INVALID;
}

/* Largest-remainder split of the layers in proportion to capacity, at least one each. */
static void proportional(const shoal_plan_input *in, int *first, int *last) {
    int n = in->n_workers, L = in->n_layers;
    long double total = 0;
    for (int i = 0; i < n; i++) total += (long double)in->capacity[i];
    int *cnt = calloc((size_t)n, sizeof *cnt);
    long double *frac = calloc((size_t)n, sizeof *frac);
    if (!cnt || !frac) { /* fall back to an even split */
        for (int i = 0; i < n; i++) first[i] = i * L / n, last[i] = (i + 1) * L / n;
        free(cnt);
        free(frac);
        return;
    }
    int given = 0;
    for (int i = 0; i < n; i++) {
        long double q = total > 0 ? (long double)L * in->capacity[i] / total : (long double)L / n;
        cnt[i] = (int)q;
        frac[i] = q - cnt[i];
        given += cnt[i];
    }
    while (given < L) { /* the largest remainders (earliest on ties) get one more */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (frac[i] > frac[best]) best = i;
        cnt[best]++;
        frac[best] = -1;
        given++;
    }
    for (int i = 0; i < n; i++) /* nobody is left without a layer */
        while (cnt[i] == 0) {
            int big = 0;
            for (int j = 1; j < n; j++)
                if (cnt[j] > cnt[big]) big = j;
            cnt[big]--;
            cnt[i]++;
        }
    int at = 0;
    for (int i = 0; i < n; i++) {
        first[i] = at;
        at += cnt[i];
        last[i] = at;
    }
    free(cnt);
    free(frac);
}

/* Each worker in turn takes as many layers as fit (leaving one for each later worker; the
 * last takes the rest). Feasible whenever any contiguous plan is. Returns the stage that
 * could not be filled, or -1. */
static int greedy(const shoal_plan_input *in, int *first, int *last) {
    int n = in->n_workers, L = in->n_layers, at = 0;
    for (int i = 0; i < n; i++) {
        int max_end = i == n - 1 ? L : L - (n - 1 - i);
        int end = i == n - 1 ? L : at + 1;
        if (stage_need(in, i, at, end) > in->capacity[i]) return i;
        while (i < n - 1 && end < max_end && stage_need(in, i, at, end + 1) <= in->capacity[i]) end++;
        first[i] = at;
        last[i] = end;
        at = end;
    }
    return -1;
}

static int fits(const shoal_plan_input *in, const int *first, const int *last, uint64_t *need) {
    int bad = -1;
    for (int i = 0; i < in->n_workers; i++) {
        need[i] = stage_need(in, i, first[i], last[i]);
        if (need[i] > in->capacity[i] && bad < 0) bad = i;
    }
    return bad;
}

/* Plans the stages of the active workers idx[0..na) (in rank order): sub-problem arrays are
 * indexed by position in idx. */
static int plan_active(const shoal_plan_input *in, const int *idx, int na, int *first, int *last, uint64_t *need,
                       char *err, size_t errcap) {
    int L = in->n_layers;
    uint64_t *cap = calloc((size_t)na, sizeof *cap);
    int *f = calloc((size_t)na, sizeof *f), *l = calloc((size_t)na, sizeof *l);
    uint64_t *nd = calloc((size_t)na, sizeof *nd);
    int rc = SHOAL_OK;
    if (!cap || !f || !l || !nd) {
        rc = SHOAL_ERR_NOMEM;
        goto out;
    }
    for (int j = 0; j < na; j++) cap[j] = in->capacity[idx[j]];
    shoal_plan_input sub = *in;
    sub.n_workers = na;
    sub.capacity = cap;
    proportional(&sub, f, l);
    int bad = fits(&sub, f, l, nd);
    if (bad >= 0 && (bad = greedy(&sub, f, l)) < 0) fits(&sub, f, l, nd);
    if (bad >= 0) {
        uint64_t total = in->embed_bytes + in->head_bytes + in->base_bytes * (uint64_t)na, offer = 0, layers = 0;
        for (int k = 0; k < L; k++) layers += in->bytes_per_layer[k];
        total += layers;
        for (int j = 0; j < na; j++) offer += cap[j];
        char a[32], b[32], c[32], one[32];
        shoal__cl_human(cap[bad], a, sizeof a);
        shoal__cl_human(total, b, sizeof b);
        shoal__cl_human(offer, c, sizeof c);
        shoal__cl_human(L ? layers / (uint64_t)L : 0, one, sizeof one);
        shoal__errf(err, errcap,
                    "the model does not fit: worker %d offers %s, too little for its share (a layer needs about %s%s%s); "
                    "the whole model needs about %s and the %d worker%s offer %s",
                    idx[bad] + 1, a, one, bad == 0 ? ", plus the embedding" : "", bad == na - 1 ? ", plus the classifier" : "",
                    b, na, na == 1 ? "" : "s", c);
        rc = SHOAL_ERR_NOMEM;
        goto out;
    }
    for (int j = 0; j < na; j++) {
        first[idx[j]] = f[j];
        last[idx[j]] = l[j];
        need[idx[j]] = nd[j];
    }
out:
    free(cap);
    free(f);
    free(l);
    free(nd);
    return rc;
}

int shoal_cluster_plan(const shoal_plan_input *in, int *first, int *last, uint64_t *need, char *err,
                       size_t errcap) {
    char dummy[8];
    if (!err || !errcap) err = dummy, errcap = sizeof dummy;
    err[0] = 0;
    if (!in || !first || !last || !need || in->n_workers < 1 || in->n_layers < 1 || !in->capacity ||
        !in->bytes_per_layer) {
        shoal__errf(err, errcap, "plan: bad arguments");
        return SHOAL_ERR_INVALID;
    }
    int n = in->n_workers, L = in->n_layers;
    for (int i = 0; i < n; i++) first[i] = last[i] = 0, need[i] = 0;
    if (in->spec) {
        int k = 0;
        int rc = parse_spec(in, first, last, &k, err, errcap);
        if (rc) return rc;
        shoal_plan_input sub = *in;
        sub.n_workers = k; /* the first k workers; any others stay idle */
        int bad = fits(&sub, first, last, need);
        if (bad >= 0) {
            char a[32], b[32];
            shoal__cl_human(need[bad], a, sizeof a);
            shoal__cl_human(in->capacity[bad], b, sizeof b);
            shoal__errf(err, errcap, "--layers: worker %d would hold layers %d-%d, which need %s, but it offers %s",
                        bad + 1, first[bad], last[bad] - 1, a, b);
            return SHOAL_ERR_NOMEM;
        }
        return SHOAL_OK;
    }
    int *idx = calloc((size_t)n, sizeof *idx);
    if (!idx) return SHOAL_ERR_NOMEM;
    int na = 0;
    if (L >= n) {
        for (int i = 0; i < n; i++) idx[na++] = i;
    } else { /* more workers than layers: the L largest (earliest on ties) take one each */
        char *pick = calloc((size_t)n, 1);
        if (!pick) {
            free(idx);
            return SHOAL_ERR_NOMEM;
        }
        for (int k = 0; k < L; k++) {
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!pick[i] && (best < 0 || in->capacity[i] > in->capacity[best])) best = i;
            pick[best] = 1;
        }
        for (int i = 0; i < n; i++)
            if (pick[i]) idx[na++] = i;
        free(pick);
    }
    int rc = plan_active(in, idx, na, first, last, need, err, errcap);
    free(idx);
    return rc;
}
