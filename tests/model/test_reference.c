/* The forward pass against the reference outputs in testdata (README.md there):
 *   test_reference hf NAME      hf/NAME: logits at every prompt position within tolerance of
 *                               logits.f32 (1e-4 x max|logit|; 2e-2 for the bf16 model), the
 *                               prompt fed in one batch and token by token giving the same
 *                               logits (1e-5 x max|logit|: only float rounding differs), and
 *                               greedy ids equal to greedy_ids up to the first near-tie.
 *   test_reference stories      stories260K.bin (llama2.c): 200 greedy ids from BOS equal the
 *                               HF copy's greedy_ids exactly.
 *   test_reference split NAME   a pipeline split [0,k) + [k,n) gives the whole model's logits.
 *   test_reference gguf         gguf/llama-2-tiny-random.gguf loads and runs, batch == single.
 * Greedy comparison: the reference recomputed every step from scratch in float64; where our
 * argmax differs from it, the two candidates' logits must be within a near-tie margin
 * (1e-3 x max|logit|, 2e-2 for bf16), after which the sequences may legitimately diverge and
 * comparison stops; the test prints how many ids matched. */
#include <stdint.h>

#include "model/json.h"
#include "model_check.h"
#include "shoal/model.h"

typedef struct ref {
    int32_t *prompt, *greedy;
    int n_prompt, n_greedy;
    float *logits;
    size_t n_logits;
} ref;

static int32_t *int_array(const shoal__jv *a, int *n) {
    *n = (int)shoal__json_count(a);
    int32_t *v = calloc((size_t)*n + 1, sizeof *v);
    int i = 0;
    for (const shoal__jv *e = shoal__json_first(a); e; e = shoal__json_next(e)) {
        int64_t x = -1;
        shoal__json_int(e, &x);
        v[i++] = (int32_t)x;
    }
    return v;
}

static int load_ref(const char *name, ref *r) {
    char p[4096];
    size_t len;
    snprintf(p, sizeof p, "%s/hf/%s/reference.json", testdata_dir(), name);
    char *text = read_all(p, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", p);
        return -1;
    }
    shoal__json *d;
    char err[128];
    if (shoal__json_parse(text, len, &d, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", p, err);
        return -1;
    }
    const shoal__jv *root = shoal__json_root(d);
    r->prompt = int_array(shoal__json_get(root, "prompt_ids"), &r->n_prompt);
    r->greedy = int_array(shoal__json_get(root, "greedy_ids"), &r->n_greedy);
    shoal__json_free(d);
    free(text);
    snprintf(p, sizeof p, "%s/hf/%s/logits.f32", testdata_dir(), name);
    r->logits = (float *)read_all(p, &len);
    r->n_logits = len / 4;
    return r->logits ? 0 : -1;
}

static shoal_model *open_model(const char *path, int first, int last, int embed, int head) {
    shoal_model_load_opts o = SHOAL_MODEL_LOAD_OPTS_INIT;
    o.first_layer = first, o.last_layer = last, o.embed = embed, o.head = head;
    shoal_model *m = NULL;
    char err[512] = "";
    CHECK_RC(shoal_model_open(path, &o, &m, err, sizeof err), SHOAL_OK, err);
    return m;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* logits [n][V] of ids, fed `batch` tokens at a time */
static float *run_prompt(shoal_model *m, const int32_t *ids, int n, int batch, shoal_kv **kv_out) {
    const shoal_model_config *c = shoal_model_get_config(m);
    float *lg = malloc((size_t)n * c->vocab_size * sizeof *lg);
    shoal_kv *kv = NULL;
    CHECK_RC(shoal_kv_create(m, n + 256 < c->max_seq ? n + 256 : c->max_seq, &kv), SHOAL_OK, "");
    for (int p = 0; p < n; p += batch) {
        int nb = n - p < batch ? n - p : batch;
        CHECK_RC(shoal_model_forward(m, kv, ids + p, nb, p, lg + (size_t)p * c->vocab_size, 1), SHOAL_OK,
                 shoal_model_last_error(m));
    }
    if (kv_out) *kv_out = kv;
    else shoal_kv_free(kv);
    return lg;
}

static void test_hf(const char *name) {
    ref r = {0};
    if (load_ref(name, &r)) {
        check_failures++;
        return;
    }
    int bf16 = strstr(name, "bf16") != NULL;
    double tol = bf16 ? 2e-2 : 1e-4, tie = bf16 ? 2e-2 : 1e-3;
    char path[4096];
    snprintf(path, sizeof path, "%s/hf/%s", testdata_dir(), name);
    shoal_model *m = open_model(path, 0, -1, 1, 1);
    if (!m) return;
    int V = shoal_model_get_config(m)->vocab_size;
    CHECK(r.n_logits == (size_t)r.n_prompt * V);
    shoal_kv *kv = NULL;
    float *batch = run_prompt(m, r.prompt, r.n_prompt, r.n_prompt, &kv);
    float *single = run_prompt(m, r.prompt, r.n_prompt, 1, NULL);
    size_t nl = (size_t)r.n_prompt * V;
    double e_ref = rel_max_err(batch, r.logits, nl), e_bs = rel_max_err(single, batch, nl);
    fprintf(stderr, "%s: logits vs reference: max err %.3g x max|logit| (tolerance %g); token by token vs batch %.3g\n",
            name, e_ref, tol, e_bs);
    CHECK(e_ref <= tol);
    CHECK(e_bs <= 1e-5);

    /* greedy continuation with the KV cache */
    float *lg = malloc((size_t)V * sizeof *lg);
    memcpy(lg, batch + (size_t)(r.n_prompt - 1) * V, (size_t)V * sizeof *lg);
    int matched = 0;
    for (int i = 0; i < r.n_greedy; i++) {
        int got = argmax(lg, V), want = r.greedy[i];
        if (got != want) {
            double mx = 0;
            for (int k = 0; k < V; k++) mx = fmax(mx, fabs(lg[k]));
            double gap = (lg[got] - lg[want]) / mx;
            fprintf(stderr, "%s: greedy step %d: got %d, reference %d, logit gap %.3g x max|logit| (near-tie margin %g)\n",
                    name, i, got, want, gap, tie);
            CHECK(gap <= tie);
            break;
        }
        matched++;
        int32_t id = want;
        if (i + 1 < r.n_greedy)
            CHECK_RC(shoal_model_forward(m, kv, &id, 1, r.n_prompt + i, lg, 0), SHOAL_OK, shoal_model_last_error(m));
    }
    fprintf(stderr, "%s: greedy ids: %d of %d equal the reference\n", name, matched, r.n_greedy);
    free(lg);
    free(batch);
    free(single);
    shoal_kv_free(kv);
    shoal_model_free(m);
    free(r.prompt);
    free(r.greedy);
    free(r.logits);
}

static void test_stories(void) {
    ref r = {0};
    if (load_ref("stories260K-hf", &r)) {
        check_failures++;
        return;
    }
    char path[4096];
    testdata_path(path, sizeof path, "stories260K/stories260K.bin");
    shoal_model *m = open_model(path, 0, -1, 1, 1);
    if (!m) return;
    int V = shoal_model_get_config(m)->vocab_size;
    shoal_kv *kv = NULL;
    CHECK_RC(shoal_kv_create(m, 256, &kv), SHOAL_OK, "");
    float *lg = malloc((size_t)V * sizeof *lg);
    int32_t id = 1;
    int matched = 0;
    for (int i = 0; i < r.n_greedy; i++) {
        CHECK_RC(shoal_model_forward(m, kv, &id, 1, i, lg, 0), SHOAL_OK, shoal_model_last_error(m));
        id = argmax(lg, V);
        if (id != r.greedy[i]) break;
        matched++;
    }
    fprintf(stderr, "stories260K.bin: %d of %d greedy ids equal\n", matched, r.n_greedy);
    CHECK(matched == r.n_greedy);
    CHECK(rel_max_err(lg, lg, 1) == 0);
    free(lg);
    shoal_kv_free(kv);
    shoal_model_free(m);
    free(r.prompt);
    free(r.greedy);
    free(r.logits);
}

/* layers [0,k) in one handle (embedding, no head), [k,n) in another (head, no embedding) */
static void test_split(const char *name) {
    ref r = {0};
    if (load_ref(name, &r)) {
        check_failures++;
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/hf/%s", testdata_dir(), name);
    shoal_model *whole = open_model(path, 0, -1, 1, 1);
    if (!whole) return;
    const shoal_model_config *c = shoal_model_get_config(whole);
    int k = c->n_layers / 2, n = r.n_prompt, V = c->vocab_size, D = c->dim;
    shoal_model *a = open_model(path, 0, k, 1, 0), *b = open_model(path, k, -1, 0, 1);
    if (!a || !b) return;
    int f, l;
    shoal_model_layer_range(b, &f, &l);
    CHECK(f == k && l == c->n_layers);
    float *want = run_prompt(whole, r.prompt, n, n, NULL);
    shoal_kv *ka, *kb;
    CHECK_RC(shoal_kv_create(a, n, &ka), SHOAL_OK, "");
    CHECK_RC(shoal_kv_create(b, n, &kb), SHOAL_OK, "");
    float *x = malloc((size_t)n * D * sizeof *x), *lg = malloc((size_t)n * V * sizeof *lg);
    CHECK_RC(shoal_model_embed(a, r.prompt, n, x), SHOAL_OK, shoal_model_last_error(a));
    CHECK_RC(shoal_model_forward_layers(a, ka, 0, n, x), SHOAL_OK, shoal_model_last_error(a));
    CHECK_RC(shoal_model_forward_layers(b, kb, 0, n, x), SHOAL_OK, shoal_model_last_error(b));
    CHECK_RC(shoal_model_head(b, x, n, lg), SHOAL_OK, shoal_model_last_error(b));
    double e = rel_max_err(lg, want, (size_t)n * V);
    fprintf(stderr, "%s: split at layer %d vs whole: %.3g\n", name, k, e);
    CHECK(e <= 1e-6);
    /* a stage without the embedding / head refuses those steps */
    CHECK(shoal_model_embed(b, r.prompt, 1, x) == SHOAL_ERR_INVALID);
    CHECK(shoal_model_head(a, x, 1, lg) == SHOAL_ERR_INVALID);
    CHECK(shoal_model_forward(a, ka, r.prompt, 1, 0, lg, 0) == SHOAL_ERR_INVALID);
    /* bad arguments are errors, not crashes */
    int32_t bad = V;
    CHECK(shoal_model_embed(a, &bad, 1, x) == SHOAL_ERR_INVALID);
    CHECK(shoal_model_forward_layers(a, ka, n, 1, x) == SHOAL_ERR_INVALID); /* past the cache */
    free(x);
    free(lg);
    free(want);
    shoal_kv_free(ka);
    shoal_kv_free(kb);
    shoal_model_free(a);
    shoal_model_free(b);
    shoal_model_free(whole);
    free(r.prompt);
    free(r.greedy);
    free(r.logits);
}

static void test_gguf(void) {
    char path[4096];
    testdata_path(path, sizeof path, "gguf/llama-2-tiny-random.gguf");
    shoal_model *m = open_model(path, 0, -1, 1, 1);
    if (!m) return;
    const shoal_model_config *c = shoal_model_get_config(m);
    CHECK(c->arch == SHOAL_ARCH_LLAMA && c->format == SHOAL_FORMAT_GGUF && c->rope_interleaved);
    int32_t ids[6] = {1, 450, 4996, 17354, 1701, 29916};
    float *a = run_prompt(m, ids, 6, 6, NULL), *b = run_prompt(m, ids, 6, 1, NULL);
    size_t n = (size_t)6 * c->vocab_size;
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(a[i]);
    CHECK(finite);
    double e = rel_max_err(b, a, n);
    fprintf(stderr, "gguf: %d layers, vocab %d, %s; token by token vs batch %.3g\n", c->n_layers, c->vocab_size,
            shoal_wtype_name(c->weight_dtype), e);
    CHECK(e <= 1e-5);
    free(a);
    free(b);
    shoal_model_free(m);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "hf")) test_hf(argv[2]);
    else if (argc >= 2 && !strcmp(argv[1], "stories")) test_stories();
    else if (argc >= 3 && !strcmp(argv[1], "split")) test_split(argv[2]);
    else if (argc >= 2 && !strcmp(argv[1], "gguf")) test_gguf();
    else {
        fprintf(stderr, "usage: test_reference hf NAME | stories | split NAME | gguf\n");
        return 2;
    }
    TEST_DONE();
}
