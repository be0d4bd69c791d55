/* The cluster library API with real worker processes (this binary is its own worker: "worker"
 * as first argument). A pool of 3 workers runs hf/tiny-llama as a 3-stage pipeline; against
 * the model engine run whole in this process it must give
 *   - the same prompt logits, bit for bit, and the same greedy tokens;
 *   - the same seeded sampling, in a second request on the same cluster;
 * and: a callback that stops early, bad requests refused before anything is sent (the cluster
 * stays usable), stage information, a clean shutdown. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "shoal/cluster.h"

#define N_PROMPT 12

static int worker_main(void) {
    shoal_cluster_worker *w = NULL;
    if (shoal_cluster_worker_create(&w, NULL)) return 1;
    shoal_worker_config wc = SHOAL_WORKER_CONFIG_INIT;
    wc.setup = shoal_cluster_worker_setup;
    wc.user = w;
    int rc = shoal_worker_run(&wc);
    shoal_cluster_worker_free(w);
    return rc;
}

typedef struct toks {
    int32_t t[256];
    int n, stop_at;
} toks;

static int on_token(void *user, int32_t token) {
    toks *k = user;
    if (k->stop_at && k->n + 1 == k->stop_at) return 1;
    if (k->n < 256) k->t[k->n++] = token;
    return 0;
}

/* What shoal run does in one process: prefill with every row's logits, then sample/accept/
 * forward one token at a time. */
static int reference(shoal_model *m, const int32_t *prompt, int np, int n, const shoal_sampler_params *sp, float *logits,
                     int32_t *out) {
    const shoal_model_config *c = shoal_model_get_config(m);
    int V = c->vocab_size;
    shoal_kv *kv = NULL;
    shoal_sampler *s = NULL;
    float *lg = malloc((size_t)V * sizeof *lg);
    int rc = shoal_kv_create(m, np + n, &kv);
    if (!rc) rc = shoal_sampler_create(sp, V, &s);
    if (!rc) rc = shoal_model_forward(m, kv, prompt, np, 0, logits, 1);
    if (rc) goto out;
    memcpy(lg, logits + (size_t)(np - 1) * V, (size_t)V * sizeof *lg);
    for (int i = 0; i < np; i++) shoal_sampler_accept(s, prompt[i]);
    for (int i = 0; i < n; i++) {
        int t = shoal_sampler_sample(s, lg);
        out[i] = t;
        shoal_sampler_accept(s, t);
        int32_t id = t;
        if (i + 1 < n && (rc = shoal_model_forward(m, kv, &id, 1, np + i, lg, 0))) break;
    }
out:
    free(lg);
    shoal_sampler_free(s);
    shoal_kv_free(kv);
    return rc;
}

static void count_lines(void *user, const char *line) {
    if (!strncmp(line, "plan:", 5)) ++*(int *)user;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "worker")) return worker_main();
    alarm(100);
    char path[4096], err[1024] = "";
    snprintf(path, sizeof path, "%s/hf/tiny-llama", testdata_dir());
    int32_t prompt[N_PROMPT] = {1, 166, 294, 37, 310, 166, 131, 74, 85, 236, 254, 121};

    shoal_model *whole = NULL;
    CHECK_RC(shoal_model_open(path, NULL, &whole, err, sizeof err), SHOAL_OK, err);
    if (!whole) return 1;
    int V = shoal_model_get_config(whole)->vocab_size, L = shoal_model_get_config(whole)->n_layers;

    shoal_pool_config pc = SHOAL_POOL_CONFIG_INIT;
    pc.workers = 3;
    pc.heartbeat_interval_s = 0.2;
    pc.heartbeat_timeout_s = 2;
    shoal_pool *pool = NULL;
    int rc = shoal_pool_start(&pool, &pc);
    CHECK_RC(rc, SHOAL_OK, shoal_pool_start_error());
    if (rc) return 1;
    shoal_cluster_config cc = SHOAL_CLUSTER_CONFIG_INIT;
    int plans = 0;
    cc.model = path;
    cc.log = count_lines;
    cc.user = &plans;
    shoal_cluster *cl = NULL;
    rc = shoal_cluster_create(&cl, pool, &cc, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) {
        shoal_pool_shutdown(pool, 5, NULL);
        return 1;
    }
    CHECK(plans == 1);
    CHECK(shoal_cluster_stages(cl) == 3);
    CHECK(shoal_cluster_model_config(cl)->vocab_size == V);
    int at = 0;
    for (int i = 0; i < 3; i++) {
        shoal_cluster_stage s;
        CHECK_RC(shoal_cluster_stage_info(cl, i, &s), SHOAL_OK, "");
        CHECK(s.rank == i + 1 && s.first == at && s.last > s.first);
        CHECK(s.embed == (i == 0) && s.head == (i == 2));
        CHECK(s.source == SHOAL_WEIGHTS_LOCAL && s.bytes_received == 0 && s.pid > 0 && s.capacity > 0);
        at = s.last;
    }
    CHECK(at == L);
    shoal_cluster_stage none;
    CHECK(shoal_cluster_stage_info(cl, 3, &none) == SHOAL_ERR_INVALID);

    /* 1. greedy, with every prompt logit */
    float *want = malloc((size_t)N_PROMPT * V * sizeof *want), *got = malloc((size_t)N_PROMPT * V * sizeof *got);
    int32_t ref[32];
    shoal_sampler_params greedy = SHOAL_SAMPLER_PARAMS_INIT;
    greedy.temperature = 0;
    CHECK_RC(reference(whole, prompt, N_PROMPT, 20, &greedy, want, ref), SHOAL_OK, shoal_model_last_error(whole));
    shoal_cluster_request rq = SHOAL_CLUSTER_REQUEST_INIT;
    rq.prompt = prompt;
    rq.n_prompt = N_PROMPT;
    rq.n_predict = 20;
    rq.sampler = greedy;
    rq.prompt_logits = got;
    toks k = {0};
    shoal_cluster_stats st;
    CHECK_RC(shoal_cluster_generate(cl, &rq, on_token, &k, &st), SHOAL_OK, shoal_cluster_last_error(cl));
    CHECK(k.n == 20 && st.generated == 20 && st.decode_steps == 19);
    CHECK(memcmp(k.t, ref, sizeof(int32_t) * 20) == 0);
    CHECK(memcmp(got, want, (size_t)N_PROMPT * V * sizeof *got) == 0);
    CHECK(st.compute_s > 0 && st.step_s >= st.compute_s);

    /* 2. seeded sampling, a second request on the same cluster, prompt in batches of 5 */
    shoal_sampler_params sp = SHOAL_SAMPLER_PARAMS_INIT;
    sp.temperature = 0.9f;
    sp.seed = 1234;
    sp.repeat_penalty = 1.1f;
    CHECK_RC(reference(whole, prompt, N_PROMPT, 30, &sp, want, ref), SHOAL_OK, shoal_model_last_error(whole));
    rq.n_predict = 30;
    rq.sampler = sp;
    rq.prompt_logits = NULL;
    rq.batch = N_PROMPT; /* a batch of the whole prompt: the same chunks as the reference */
    memset(&k, 0, sizeof k);
    CHECK_RC(shoal_cluster_generate(cl, &rq, on_token, &k, NULL), SHOAL_OK, shoal_cluster_last_error(cl));
    CHECK(k.n == 30 && memcmp(k.t, ref, sizeof(int32_t) * 30) == 0);

    /* 3. the callback stops at the 5th token: 4 accepted */
    memset(&k, 0, sizeof k);
    k.stop_at = 5;
    CHECK_RC(shoal_cluster_generate(cl, &rq, on_token, &k, &st), SHOAL_OK, shoal_cluster_last_error(cl));
    CHECK(k.n == 4 && st.generated == 4 && memcmp(k.t, ref, sizeof(int32_t) * 4) == 0);

    /* 4. bad requests are refused before anything is sent */
    shoal_cluster_request bad = rq;
    bad.n_prompt = 0;
    CHECK(shoal_cluster_generate(cl, &bad, NULL, NULL, NULL) == SHOAL_ERR_INVALID);
    int32_t oov[2] = {1, V};
    bad = rq;
    bad.prompt = oov;
    bad.n_prompt = 2;
    CHECK(shoal_cluster_generate(cl, &bad, NULL, NULL, NULL) == SHOAL_ERR_INVALID);
    CHECK(strstr(shoal_cluster_last_error(cl), "outside the vocabulary") != NULL);
    bad = rq;
    bad.n_predict = 1 << 20;
    CHECK(shoal_cluster_generate(cl, &bad, NULL, NULL, NULL) == SHOAL_ERR_INVALID);
    bad = rq;
    bad.size = 3;
    CHECK(shoal_cluster_generate(cl, &bad, NULL, NULL, NULL) == SHOAL_ERR_INVALID);
    /* still usable: the greedy request again */
    CHECK_RC(reference(whole, prompt, N_PROMPT, 20, &greedy, want, ref), SHOAL_OK, "");
    rq.sampler = greedy;
    rq.n_predict = 20;
    rq.batch = 0;
    memset(&k, 0, sizeof k);
    CHECK_RC(shoal_cluster_generate(cl, &rq, on_token, &k, NULL), SHOAL_OK, shoal_cluster_last_error(cl));
    CHECK(k.n == 20 && memcmp(k.t, ref, sizeof(int32_t) * 20) == 0);

    /* 5. a plan that cannot fit leaves no cluster behind */
    shoal_cluster_config tight = cc;
    tight.layers = "0-0,1-1,2-3,4-4";
    shoal_cluster *c2 = NULL;
    CHECK(shoal_cluster_create(&c2, pool, &tight, err, sizeof err) == SHOAL_ERR_INVALID && c2 == NULL);
    CHECK(strstr(err, "--layers") != NULL);

    shoal_cluster_free(cl);
    int clean = 0;
    CHECK_RC(shoal_pool_shutdown(pool, 5, &clean), SHOAL_OK, "");
    CHECK(clean);
    free(want);
    free(got);
    shoal_model_free(whole);
    if (check_failures) {
        fprintf(stderr, "test_api: %d check(s) failed\n", check_failures);
        return 1;
    }
    printf("test_api: ok\n");
    return 0;
}
