/* shoal run: load a model, feed a prompt, generate text. Only the generated text goes to
 * stdout (or, with --print-ids, the generated ids); timings go to stderr.
 *
 * With --workers N (local worker processes) or --listen HOST:PORT --expect N (workers that
 * join from other hosts) the model runs as a pipeline over the workers (shoal/cluster.h):
 * this process tokenizes, prints and drives; the stages compute. The output is the same. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_model.h"
#include "shoal/cluster.h"
#include "shoal/model.h"
#include "shoal/pool.h"
#include "shoal/settings.h"
#include "shoal/tokenizer.h"

#define MAX_STOPS 16

typedef struct run_opts {
    const char *model, *prompt, *tokenizer, *dump_logits, *prompt_ids;
    const char *stops[MAX_STOPS];
    int n_stops;
    int n, threads, batch, print_ids;
    shoal_sampler_params sp;
    /* distributed */
    int workers, expect, send_weights;
    const char *listen, *layers;
    double join_timeout;
} run_opts;

static int distributed(const run_opts *o) { return o->workers > 0 || o->listen; }

void cmd_run_help(FILE *out) {
    fprintf(out,
            "Usage: shoal run -m MODEL [options]\n"
            "       shoal run -m MODEL --workers N [options]\n"
            "       shoal run -m MODEL --listen HOST:PORT --expect N [options]\n"
            "\n"
            "Generates text with a model on the CPU. MODEL is a .gguf file, a llama2.c .bin\n"
            "checkpoint or a Hugging Face folder (config.json + *.safetensors). Only the generated\n"
            "text is printed on stdout (the prompt is not echoed); timings go to stderr.\n"
            "\n"
            "Options:\n"
            "  -m, --model MODEL        the model (required; see the demo model below)\n"
            "  -p, --prompt TEXT        prompt text (default: BOS alone)\n"
            "  -n, --n-predict N        tokens to generate (default 128; 0: only the prompt)\n"
            "  --temp T                 temperature; 0 is greedy (default 0.8)\n"
            "  --top-k K                keep the K most likely tokens; 0 off (default 40)\n"
            "  --top-p P                nucleus sampling; 1 off (default 0.95)\n"
            "  --min-p P                drop tokens below P x the top probability (default 0.05)\n"
            "  --repeat-penalty R       penalty on the last 64 tokens; 1 off (default 1)\n"
            "  --seed S                 PRNG seed (default 0; xoshiro256**, reproducible)\n"
            "  --threads T              compute threads (default: SHOAL_THREADS, else all cores)\n"
            "  --tokenizer FILE         tokenizer.json, tokenizer.bin (llama2.c) or a .gguf\n"
            "                           (default: the model's own, or tokenizer.json in the folder)\n"
            "  --stop STR               stop when STR is generated (not printed); repeatable\n"
            "  --prompt-ids 1,2,3       the prompt as token ids (no tokenizer needed)\n"
            "  --print-ids              print generated ids, space-separated, one final newline\n"
            "  --dump-logits FILE       write the f32 logits of every prompt position,\n"
            "                           row-major [position][vocab]\n"
            "  --batch N                feed the prompt N tokens at a time (default: all at once)\n"
            "\n"
            "Distributed (a pipeline of worker processes; the same output as above):\n"
            "  --workers N              start N local worker processes (`shoal worker`)\n"
            "  --listen HOST:PORT       wait for workers that join with\n"
            "                           `shoal worker --join HOST:PORT` (needs SHOAL_CLUSTER_KEY)\n"
            "  --expect N               how many workers --listen waits for\n"
            "  --join-timeout S         how long to wait for them (default: SHOAL_INIT_TIMEOUT)\n"
            "  --layers 0-3,4-7         layer range of each worker, in rank order (default: in\n"
            "                           proportion to the memory each offers; SHOAL_WORKER_MEMORY)\n"
            "  --send-weights           stream the weights to every worker even if it has a copy\n"
            "                           (they are cached by SHA-256 in SHOAL_CACHE_DIR)\n"
            "  Without -m, --workers/--listen runs on a generated random-weight demo model.\n");
}

static int parse_float(const char *opt, const char *text, double lo, double hi, float *out) {
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || errno || end == text || *end || !(v >= lo && v <= hi))
        return cli_usage_error("run", "%s needs a number in %g..%g, not '%s'", opt, lo, hi, text ? text : "");
    *out = (float)v;
    return 0;
}

static int parse_args(int argc, char **argv, run_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cmd_run_help(stdout);
            return 1;
        } else if (!strcmp(a, "--print-ids")) {
            o->print_ids = 1;
            takes = 0;
        } else if (!strcmp(a, "--send-weights")) {
            o->send_weights = 1;
            takes = 0;
        } else if (!v) {
            return cli_usage_error("run", "%s needs a value", a);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            o->prompt = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (cli_parse_int("run", a, v, 0, 1 << 22, &o->n)) return -1;
        } else if (!strcmp(a, "--temp")) {
            if (parse_float(a, v, 0, 100, &o->sp.temperature)) return -1;
        } else if (!strcmp(a, "--top-k")) {
            if (cli_parse_int("run", a, v, 0, 1 << 22, &o->sp.top_k)) return -1;
        } else if (!strcmp(a, "--top-p")) {
            if (parse_float(a, v, 1e-6, 1, &o->sp.top_p)) return -1;
        } else if (!strcmp(a, "--min-p")) {
            if (parse_float(a, v, 0, 1, &o->sp.min_p)) return -1;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (parse_float(a, v, 1e-3, 1e3, &o->sp.repeat_penalty)) return -1;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') return cli_usage_error("run", "--seed needs an unsigned integer, not '%s'", v);
            o->sp.seed = s;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (cli_parse_int("run", a, v, 1, 256, &o->threads)) return -1;
        } else if (!strcmp(a, "--batch")) {
            if (cli_parse_int("run", a, v, 1, 1 << 22, &o->batch)) return -1;
        } else if (!strcmp(a, "--tokenizer")) {
            o->tokenizer = v;
        } else if (!strcmp(a, "--stop")) {
            if (o->n_stops == MAX_STOPS) return cli_usage_error("run", "at most %d --stop strings", MAX_STOPS);
            if (!*v) return cli_usage_error("run", "--stop needs a non-empty string");
            o->stops[o->n_stops++] = v;
        } else if (!strcmp(a, "--prompt-ids")) {
            o->prompt_ids = v;
        } else if (!strcmp(a, "--dump-logits")) {
            o->dump_logits = v;
        } else if (!strcmp(a, "--workers")) {
            if (cli_parse_int("run", a, v, 1, 4095, &o->workers)) return -1;
        } else if (!strcmp(a, "--expect")) {
            if (cli_parse_int("run", a, v, 1, 4095, &o->expect)) return -1;
        } else if (!strcmp(a, "--listen")) {
            o->listen = v;
        } else if (!strcmp(a, "--layers")) {
            o->layers = v;
        } else if (!strcmp(a, "--join-timeout")) {
            if (cli_parse_seconds("run", a, v, &o->join_timeout)) return -1;
        } else {
            return cli_usage_error("run", "unknown option '%s'", a);
        }
        i += takes;
    }
    if (!o->model && !distributed(o)) return cli_usage_error("run", "-m MODEL is required");
    if (o->prompt && o->prompt_ids) return cli_usage_error("run", "give -p or --prompt-ids, not both");
    if (o->workers && o->listen) return cli_usage_error("run", "give --workers or --listen, not both");
    if (o->listen && !o->expect) return cli_usage_error("run", "--listen needs --expect N (how many workers join)");
    if (o->expect && !o->listen) return cli_usage_error("run", "--expect goes with --listen HOST:PORT");
    if ((o->layers || o->send_weights) && !distributed(o))
        return cli_usage_error("run", "--layers and --send-weights need --workers or --listen");
    if (o->listen) {
        const char *k = shoal_setting_value("cluster_key"), *kf = shoal_setting_value("cluster_key_file");
        if ((!k || !*k) && (!kf || !*kf))
            return cli_usage_error("run", "--listen needs the cluster key in SHOAL_CLUSTER_KEY or SHOAL_CLUSTER_KEY_FILE");
    }
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* The tokenizer: --tokenizer, else the model's own (GGUF metadata, tokenizer.json in an HF
 * folder, tokenizer.bin beside a llama2.c checkpoint). *tok stays NULL when none is found and
 * none is needed. */
static int load_tokenizer(const run_opts *o, const shoal_model_config *c, shoal_tokenizer **tok) {
    char err[512] = "", path[4096];
    const char *p = o->tokenizer;
    *tok = NULL;
    if (!p) {
        if (c->format == SHOAL_FORMAT_GGUF) p = o->model;
        else if (is_dir(o->model)) {
            snprintf(path, sizeof path, "%s/tokenizer.json", o->model);
            if (file_exists(path)) p = path;
        } else {
            snprintf(path, sizeof path, "%s", o->model);
            char *slash = strrchr(path, '/');
            snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "tokenizer.bin");
            if (file_exists(path)) p = path;
        }
    }
    if (!p) {
        if (o->prompt_ids && o->print_ids) return 0;
        fprintf(stderr, "shoal run: %s has no tokenizer; give --tokenizer FILE (or --prompt-ids with --print-ids)\n", o->model);
        return -1;
    }
    int rc;
    if (ends_with(p, ".json")) rc = shoal_tokenizer_load_hf_json(p, tok, err, sizeof err);
    else if (ends_with(p, ".gguf")) rc = shoal_tokenizer_load_gguf(p, tok, err, sizeof err);
    else rc = shoal_tokenizer_load_llama2c(p, c->vocab_size, tok, err, sizeof err);
    if (rc) {
        if (!o->tokenizer && o->prompt_ids && o->print_ids) return 0; /* not needed after all */
        fprintf(stderr, "shoal run: tokenizer: %s\n", err[0] ? err : shoal_status_str(rc));
        return -1;
    }
    return 0;
}

static int parse_ids(const char *text, int vocab, int32_t **ids, int *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    const char *p = text;
    while (v && *p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x >= vocab) {
            free(v);
            return cli_usage_error("run", "--prompt-ids: '%s' is not a list of ids in 0..%d", text, vocab - 1);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        if (*p == ',' || *p == ' ') p++;
        else if (*p) {
            free(v);
            return cli_usage_error("run", "--prompt-ids: unexpected '%c' in '%s'", *p, text);
        }
    }
    if (!v) return -1;
    *ids = v;
    *n = (int)k;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Generated text with stop strings held back: text is printed once no stop string can still
 * begin inside it. */
typedef struct outbuf {
    char *buf;
    size_t len, cap, printed;
} outbuf;

static int out_append(outbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
    return 0;
}

/* Returns 1 when a stop string appeared (text before it is printed, the rest dropped). */
static int out_flush(outbuf *b, const run_opts *o, int final) {
    size_t hold = 0, stop_at = (size_t)-1;
    for (int i = 0; i < o->n_stops; i++) {
        size_t sl = strlen(o->stops[i]);
        size_t from = b->printed >= sl ? b->printed - sl + 1 : 0;
        const char *f = b->len ? strstr(b->buf + from, o->stops[i]) : NULL;
        if (f && (size_t)(f - b->buf) < stop_at) stop_at = (size_t)(f - b->buf);
        if (sl - 1 > hold) hold = sl - 1;
    }
    size_t upto = stop_at != (size_t)-1 ? stop_at : final ? b->len : b->len > hold ? b->len - hold : 0;
    if (upto < b->printed) upto = b->printed;
    if (upto > b->printed) {
        fwrite(b->buf + b->printed, 1, upto - b->printed, stdout);
        fflush(stdout);
        b->printed = upto;
    }
    return stop_at != (size_t)-1;
}

/* What happens to each sampled token, in both the single-process and the pipeline path. */
typedef struct emitter {
    const run_opts *o;
    shoal_tokenizer *tok;
    shoal_tokenizer_decoder *dec;
    outbuf ob;
    int eos_id, generated, stopped;
} emitter;

/* 1: stop (end of generation, not counted; or a stop string appeared), 0: go on, -1: error. */
static int emit(emitter *e, int next) {
    int eog = e->tok ? shoal_tokenizer_is_eog(e->tok, next) : next == e->eos_id;
    if (eog) return 1;
    e->generated++;
    if (e->o->print_ids) {
        printf(e->generated > 1 ? " %d" : "%d", next);
        fflush(stdout);
    } else {
        const char *t;
        size_t tl;
        if (shoal_tokenizer_decoder_push(e->dec, next, &t, &tl) == 0 && tl) {
            if (out_append(&e->ob, t, tl)) return -1;
            e->stopped = out_flush(&e->ob, e->o, 0);
        }
    }
    return e->stopped;
}

static int emit_finish(emitter *e) {
    if (e->o->print_ids) printf("\n");
    else if (!e->stopped) {
        const char *t;
        size_t tl;
        if (e->dec && shoal_tokenizer_decoder_flush(e->dec, &t, &tl) == 0 && tl && out_append(&e->ob, t, tl)) return -1;
        out_flush(&e->ob, e->o, 1);
    }
    fflush(stdout);
    return 0;
}

/* ---- the pipeline path */

static void cluster_log(void *user, const char *line) { fprintf(stderr, "shoal run: %s\n", line); }

/* A bar on a terminal; on a pipe or file a line at every quarter. */
static void cluster_progress(void *user, uint64_t done, uint64_t total) {
    static int last_q = -1;
    double f = total ? (double)done / (double)total : 1;
    if (isatty(2)) {
        char bar[41];
        int k = (int)(f * 40);
        for (int i = 0; i < 40; i++) bar[i] = i < k ? '#' : '.';
        bar[40] = 0;
        fprintf(stderr, "\rshoal run: weights [%s] %3.0f%% %.1f/%.1f MiB", bar, f * 100, done / 1048576.0, total / 1048576.0);
        if (done >= total) fprintf(stderr, "\n");
    } else {
        int q = (int)(f * 4);
        if (q != last_q) fprintf(stderr, "shoal run: weights %3d%% (%.1f of %.1f MiB)\n", q * 25, done / 1048576.0, total / 1048576.0);
        last_q = q;
    }
}

static int cluster_token(void *user, int32_t token) {
    int r = emit(user, token);
    return r < 0 ? SHOAL_ERR_NOMEM : r;
}

/* Starts the pool, builds the pipeline and runs the request; the pool is shut down (every
 * worker stopped and reaped) before returning. */
static int run_cluster(const run_opts *o, const shoal_model_config *c, const int32_t *ids, int n_prompt, emitter *e,
                       FILE **dump) {
    int ret = CLI_EXIT_FAIL, rc;
    char err[2048] = "";
    shoal_pool *pool = NULL;
    shoal_cluster *cl = NULL;
    float *logits = NULL;
    if (o->layers) { /* a malformed --layers is a usage error, found before any worker starts */
        int N = o->listen ? o->expect : o->workers, L = c->n_layers;
        uint64_t *zero = calloc((size_t)L, sizeof *zero), *cap = calloc((size_t)N, sizeof *cap), *need = calloc((size_t)N, sizeof *need);
        int *f = calloc((size_t)N, sizeof *f), *l = calloc((size_t)N, sizeof *l);
        rc = zero && cap && need && f && l ? SHOAL_OK : SHOAL_ERR_NOMEM;
        for (int i = 0; cap && i < N; i++) cap[i] = UINT64_MAX;
        if (rc == SHOAL_OK) {
            shoal_plan_input in = {L, zero, 0, 0, 0, 0, N, cap, o->layers};
            rc = shoal_cluster_plan(&in, f, l, need, err, sizeof err);
        }
        free(zero), free(cap), free(need), free(f), free(l);
        if (rc == SHOAL_ERR_INVALID) return cli_usage_error("run", "%s", err), CLI_EXIT_USAGE;
        if (rc) return CLI_EXIT_FAIL;
    }
    if (o->workers) { /* local workers inherit SHOAL_WORKER_MEMORY: check it before they start */
        shoal_cluster_worker *probe = NULL;
        if (shoal_cluster_worker_create(&probe, NULL)) {
            const char *mem = getenv("SHOAL_WORKER_MEMORY");
            return cli_usage_error("run", "SHOAL_WORKER_MEMORY='%s' is not a size or a comma list of sizes (4G, 1G,3G)",
                                   mem ? mem : ""), CLI_EXIT_USAGE;
        }
        shoal_cluster_worker_free(probe);
    }
    double t0 = now_s();
    shoal_pool_config pc = SHOAL_POOL_CONFIG_INIT;
    pc.workers = o->listen ? o->expect : o->workers;
    pc.listen = o->listen;
    if (o->join_timeout > 0) pc.join_timeout_s = o->join_timeout;
    if (o->listen) fprintf(stderr, "shoal run: waiting on %s for %d worker%s (shoal worker --join %s)\n", o->listen, pc.workers,
                           pc.workers == 1 ? "" : "s", o->listen);
    if ((rc = shoal_pool_start(&pool, &pc))) {
        fprintf(stderr, "shoal run: %s\n", shoal_pool_start_error());
        return CLI_EXIT_FAIL;
    }
    shoal_cluster_config cc = SHOAL_CLUSTER_CONFIG_INIT;
    cc.model = o->model;
    cc.layers = o->layers;
    cc.threads = o->threads;
    cc.ctx = n_prompt + o->n;
    cc.send_weights = o->send_weights;
    cc.log = cluster_log;
    cc.progress = cluster_progress;
    if ((rc = shoal_cluster_create(&cl, pool, &cc, err, sizeof err))) {
        fprintf(stderr, "shoal run: %s\n", err);
        goto done;
    }
    double t_load = now_s() - t0;
    int V = c->vocab_size;
    shoal_cluster_request req = SHOAL_CLUSTER_REQUEST_INIT;
    req.prompt = ids;
    req.n_prompt = n_prompt;
    req.n_predict = o->n;
    req.batch = o->batch;
    req.sampler = o->sp;
    if (o->dump_logits) {
        if (!(logits = malloc((size_t)n_prompt * V * sizeof *logits))) goto done;
        req.prompt_logits = logits;
    }
    shoal_cluster_stats st;
    rc = shoal_cluster_generate(cl, &req, cluster_token, e, &st);
    if (rc == SHOAL_OK && *dump) {
        if (fwrite(logits, sizeof *logits, (size_t)n_prompt * V, *dump) != (size_t)n_prompt * V || fclose(*dump)) {
            *dump = NULL;
            fprintf(stderr, "shoal run: writing %s failed\n", o->dump_logits);
            goto done;
        }
        *dump = NULL;
    }
    if (rc) {
        fflush(stdout);
        fprintf(stderr, "\nshoal run: %s\n", shoal_cluster_last_error(cl));
        goto done;
    }
    if (emit_finish(e)) goto done;
    fprintf(stderr, "\nshoal run: %s, pipeline of %d stages; load %.2f s\n", o->model, shoal_cluster_stages(cl), t_load);
    fprintf(stderr, "shoal run: prompt %d tokens in %.3f s (%.1f tokens/s); generated %d tokens in %.3f s (%.1f tokens/s)\n",
            n_prompt, st.prompt_s, n_prompt / (st.prompt_s > 0 ? st.prompt_s : 1e-9), e->generated, st.decode_s,
            e->generated / (st.decode_s > 0 ? st.decode_s : 1e-9));
    if (st.decode_steps > 0) {
        double k = 1e3 / st.decode_steps;
        fprintf(stderr, "shoal run: per decode step %.3f ms: compute %.3f ms, activation transfer and dispatch %.3f ms (sends %.3f ms)\n",
                st.step_s * k, st.compute_s * k, (st.step_s - st.compute_s) * k, st.send_s * k);
    }
    ret = 0;
done:
    free(logits);
    shoal_cluster_free(cl);
    int clean = 0;
    shoal_pool_shutdown(pool, 5.0, &clean);
    return ret;
}

/* ---- the demo model (no -m with --workers / --listen) */

static int make_demo(char *dir, size_t dcap, char *path, size_t pcap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dcap, "%s/shoal-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "shoal run: cannot create a folder for the demo model: %s\n", strerror(errno));
        return -1;
    }
    snprintf(path, pcap, "%s/demo.gguf", dir);
    shoal_genmodel_opts g = SHOAL_GENMODEL_OPTS_INIT;
    g.dim = 256, g.hidden_dim = 768, g.n_layers = 8, g.n_heads = 8, g.n_kv_heads = 4, g.head_dim = 32;
    g.vocab_size = 1024, g.max_seq = 1024, g.seed = 1;
    char err[512] = "";
    if (shoal_model_generate(&g, path, err, sizeof err)) {
        fprintf(stderr, "shoal run: cannot generate the demo model: %s\n", err);
        return -1;
    }
    fprintf(stderr,
            "shoal run: no model given: generated a random-weight demo model (llama, dim %d, %d layers, vocab %d) at %s;\n"
            "shoal run: it has no tokenizer, so token ids are printed\n",
            g.dim, g.n_layers, g.vocab_size, path);
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    o.n = 128;
    o.sp = (shoal_sampler_params)SHOAL_SAMPLER_PARAMS_INIT;
    int pr = parse_args(argc, argv, &o);
    if (pr) return pr > 0 ? 0 : CLI_EXIT_USAGE;

    int ret = CLI_EXIT_FAIL, rc;
    char err[1024] = "", demo_dir[4096] = "", demo_path[4200];
    shoal_model *m = NULL;
    shoal_tokenizer *tok = NULL;
    shoal_kv *kv = NULL;
    shoal_sampler *smp = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    emitter e = {.o = &o};
    FILE *dump = NULL;
    int n_prompt = 0;

    if (!o.model) {
        if (o.prompt || o.tokenizer) {
            cli_usage_error("run", "the demo model (no -m) has no tokenizer: give --prompt-ids, or a model with -m");
            return CLI_EXIT_USAGE;
        }
        if (make_demo(demo_dir, sizeof demo_dir, demo_path, sizeof demo_path)) goto done;
        o.model = demo_path;
        o.print_ids = 1;
        if (!o.prompt_ids) o.prompt_ids = "1";
    }

    double t0 = now_s();
    shoal_model_load_opts lo = SHOAL_MODEL_LOAD_OPTS_INIT;
    lo.threads = o.threads;
    if (distributed(&o)) { /* the leader needs the config and vocabulary only: no layers */
        lo.last_layer = 0;
        lo.embed = 0;
        lo.head = 0;
        lo.threads = 1;
    }
    if ((rc = shoal_model_open(o.model, &lo, &m, err, sizeof err))) {
        fprintf(stderr, "shoal run: %s\n", err);
        goto done;
    }
    const shoal_model_config *c = shoal_model_get_config(m);
    double t_load = now_s() - t0;
    if (load_tokenizer(&o, c, &tok)) goto done;
    if (tok && shoal_tokenizer_vocab_size(tok) > (size_t)c->vocab_size) {
        fprintf(stderr, "shoal run: the tokenizer has %zu tokens, the model only %d\n",
                shoal_tokenizer_vocab_size(tok), c->vocab_size);
        goto done;
    }

    if (o.prompt_ids) {
        if (parse_ids(o.prompt_ids, c->vocab_size, &ids, &n_prompt)) {
            ret = CLI_EXIT_USAGE;
            goto done;
        }
    } else {
        int bos = tok ? shoal_tokenizer_bos_id(tok) : c->bos_id;
        size_t len = o.prompt ? strlen(o.prompt) : 0, n = 0;
        unsigned flags = SHOAL_TOKENIZE_ADD_SPECIAL;
        if (!o.prompt || !*o.prompt) {
            if (bos < 0) {
                fprintf(stderr, "shoal run: the vocabulary has no BOS token: give a prompt\n");
                ret = CLI_EXIT_USAGE;
                goto done;
            }
            ids = malloc(sizeof *ids);
            if (!ids) goto done;
            ids[0] = bos;
            n_prompt = 1;
        } else {
            shoal_tokenizer_encode(tok, o.prompt, len, flags, NULL, 0, &n);
            ids = malloc((n + 1) * sizeof *ids);
            if (!ids || (rc = shoal_tokenizer_encode(tok, o.prompt, len, flags, ids, n, &n))) {
                fprintf(stderr, "shoal run: cannot encode the prompt: %s\n", shoal_status_str(rc));
                goto done;
            }
            n_prompt = (int)n;
        }
    }
    if (n_prompt < 1) {
        fprintf(stderr, "shoal run: the prompt has no tokens\n");
        goto done;
    }
    long long need = (long long)n_prompt + o.n;
    if (need > c->max_seq) {
        fprintf(stderr, "shoal run: prompt (%d tokens) + %d to generate exceeds the model's context of %d\n",
                n_prompt, o.n, c->max_seq);
        ret = CLI_EXIT_USAGE;
        goto done;
    }
    int V = c->vocab_size;
    if (o.dump_logits && !(dump = fopen(o.dump_logits, "wb"))) {
        fprintf(stderr, "shoal run: cannot write %s: %s\n", o.dump_logits, strerror(errno));
        goto done;
    }
    e.tok = tok;
    e.eos_id = c->eos_id;
    if (tok && (rc = shoal_tokenizer_decoder_new(tok, 0, &e.dec))) goto done;
    for (int i = 0; i < n_prompt; i++) {
        const char *t;
        size_t tl;
        if (e.dec) shoal_tokenizer_decoder_push(e.dec, ids[i], &t, &tl); /* context only: not printed */
    }

    if (distributed(&o)) {
        ret = run_cluster(&o, c, ids, n_prompt, &e, &dump);
        goto done;
    }

    if ((rc = shoal_kv_create(m, (int)need, &kv)) ||
        (rc = shoal_sampler_create(&o.sp, c->vocab_size, &smp))) {
        fprintf(stderr, "shoal run: %s\n", shoal_status_str(rc));
        goto done;
    }
    size_t rows = o.dump_logits ? (size_t)n_prompt : 1;
    logits = malloc(rows * (size_t)V * sizeof *logits);
    if (!logits) goto done;

    /* prefill */
    double tp = now_s();
    int batch = o.batch > 0 ? o.batch : n_prompt;
    for (int p = 0; p < n_prompt; p += batch) {
        int nb = n_prompt - p < batch ? n_prompt - p : batch;
        float *lg = o.dump_logits ? logits + (size_t)p * V : logits;
        if ((rc = shoal_model_forward(m, kv, ids + p, nb, p, lg, o.dump_logits != NULL))) {
            fprintf(stderr, "shoal run: forward: %s (%s)\n", shoal_status_str(rc), shoal_model_last_error(m));
            goto done;
        }
    }
    double t_prompt = now_s() - tp;
    if (dump) {
        if (fwrite(logits, sizeof *logits, (size_t)n_prompt * V, dump) != (size_t)n_prompt * V || fclose(dump)) {
            dump = NULL;
            fprintf(stderr, "shoal run: writing %s failed\n", o.dump_logits);
            goto done;
        }
        dump = NULL;
    }
    const float *last = o.dump_logits ? logits + (size_t)(n_prompt - 1) * V : logits;
    if (o.dump_logits) memmove(logits, last, (size_t)V * sizeof *logits);
    for (int i = 0; i < n_prompt; i++) shoal_sampler_accept(smp, ids[i]);

    double tg = now_s();
    for (int i = 0; i < o.n; i++) {
        int next = shoal_sampler_sample(smp, logits);
        if (next < 0) goto done;
        int r = emit(&e, next);
        if (r < 0) goto done;
        if (r > 0) break;
        shoal_sampler_accept(smp, next);
        if (i + 1 < o.n) {
            int32_t id = next;
            if ((rc = shoal_model_forward(m, kv, &id, 1, n_prompt + i, logits, 0))) {
                fprintf(stderr, "shoal run: forward: %s (%s)\n", shoal_status_str(rc), shoal_model_last_error(m));
                goto done;
            }
        }
    }
    if (emit_finish(&e)) goto done;
    double t_gen = now_s() - tg;
    fprintf(stderr, "\nshoal run: %s, %s; load %.2f s\n", o.model, shoal_model_backend_name(m), t_load);
    fprintf(stderr, "shoal run: prompt %d tokens in %.3f s (%.1f tokens/s); generated %d tokens in %.3f s (%.1f tokens/s)\n",
            n_prompt, t_prompt, n_prompt / (t_prompt > 0 ? t_prompt : 1e-9), e.generated, t_gen,
            e.generated / (t_gen > 0 ? t_gen : 1e-9));
    ret = 0;
done:
    if (dump) fclose(dump);
    free(e.ob.buf);
    free(logits);
    free(ids);
    shoal_sampler_free(smp);
    shoal_kv_free(kv);
    shoal_tokenizer_decoder_free(e.dec);
    shoal_tokenizer_free(tok);
    shoal_model_free(m);
    if (demo_dir[0]) {
        unlink(demo_path);
        rmdir(demo_dir);
    }
    return ret;
}
