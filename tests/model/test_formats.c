/* Formats and quantization with genmodel's random-weight models, and bad files.
 *   - the same seed written as HF f32 (the reference), GGUF f32 / f16 / bf16 / Q8_0 / Q4_0 /
 *     Q4_K / Q6_K, HF bf16, llama2.c legacy and v1: every one loads, and its logits stay within
 *     the dtype's stated tolerance of the reference (relative RMS error ||a-b||/||b|| over every
 *     prompt position; f32 files must agree to float rounding, which also checks that the GGUF
 *     and llama2.c q/k permutation matches interleaved RoPE). Llama and Qwen3.
 *   - truncated files, wrong magic, contradicting sizes, absurd dimensions, unknown
 *     architectures: an error naming the file, never a crash. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_check.h"
#include "shoal/model.h"

static char dir[256];

/* Logits of every position of ids, fed `step` tokens per forward call: n at once is prefill's
 * path (batched products), 1 is decode's (dot tiles of one token). */
static float *logits_by(const char *path, const int32_t *ids, int n, int step, int *vocab) {
    shoal_model *m = NULL;
    char err[512] = "";
    int rc = shoal_model_open(path, NULL, &m, err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (rc) return NULL;
    *vocab = shoal_model_get_config(m)->vocab_size;
    float *lg = malloc((size_t)n * *vocab * sizeof *lg);
    shoal_kv *kv = NULL;
    CHECK_RC(shoal_kv_create(m, n, &kv), SHOAL_OK, "");
    for (int t = 0; t < n; t += step) {
        int k = n - t < step ? n - t : step;
        CHECK_RC(shoal_model_forward(m, kv, ids + t, k, t, lg + (size_t)t * *vocab, 1), SHOAL_OK,
                 shoal_model_last_error(m));
    }
    shoal_kv_free(kv);
    shoal_model_free(m);
    return lg;
}

static float *logits_of(const char *path, const int32_t *ids, int n, int *vocab) {
    return logits_by(path, ids, n, n, vocab);
}

static void gen(shoal_genmodel_opts *o, int format, int dtype, int v, const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    o->format = format, o->dtype = dtype, o->llama2c_version = v;
    char err[512] = "";
    CHECK_RC(shoal_model_generate(o, path, err, sizeof err), SHOAL_OK, err);
}

static void formats(int arch) {
    shoal_genmodel_opts o = SHOAL_GENMODEL_OPTS_INIT;
    o.arch = arch;
    o.dim = 256, o.hidden_dim = 512, o.n_layers = 2, o.n_heads = 4, o.n_kv_heads = 2, o.head_dim = 64;
    o.vocab_size = 256, o.max_seq = 64, o.seed = 7, o.tied_classifier = arch == SHOAL_ARCH_QWEN3;
    const int32_t ids[] = {1, 17, 93, 200, 5, 64, 128, 3};
    int n = 8, V;
    char ref_path[512], path[512];
    gen(&o, SHOAL_FORMAT_HF, SHOAL_WTYPE_F32, 0, arch == SHOAL_ARCH_QWEN3 ? "q3_hf_f32" : "hf_f32", ref_path, sizeof ref_path);
    float *ref = logits_of(ref_path, ids, n, &V);
    if (!ref) return;
    static const struct { int format, dtype, v; const char *name; double tol; } cases[] = {
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_F32, 0, "f32.gguf", 1e-5},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_F16, 0, "f16.gguf", 2e-3},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_BF16, 0, "bf16.gguf", 1.5e-2},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_Q8_0, 0, "q8_0.gguf", 3e-2},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_Q6_K, 0, "q6_k.gguf", 8e-2},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_Q4_0, 0, "q4_0.gguf", 0.3},
        {SHOAL_FORMAT_GGUF, SHOAL_WTYPE_Q4_K, 0, "q4_k.gguf", 0.3},
        {SHOAL_FORMAT_HF, SHOAL_WTYPE_BF16, 0, "hf_bf16", 1.5e-2},
        {SHOAL_FORMAT_LLAMA2C, SHOAL_WTYPE_F32, 0, "legacy.bin", 1e-5},
        {SHOAL_FORMAT_LLAMA2C, SHOAL_WTYPE_F32, 1, "v1.bin", 1e-5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].format == SHOAL_FORMAT_LLAMA2C && arch != SHOAL_ARCH_LLAMA) continue;
        char name[64];
        snprintf(name, sizeof name, "%s_%s", arch == SHOAL_ARCH_QWEN3 ? "q3" : "ll", cases[i].name);
        gen(&o, cases[i].format, cases[i].dtype, cases[i].v, name, path, sizeof path);
        int V2 = 0;
        float *lg = logits_of(path, ids, n, &V2);
        if (!lg) continue;
        double rms = rel_rms_err(lg, ref, (size_t)n * V), mx = rel_max_err(lg, ref, (size_t)n * V);
        fprintf(stderr, "%-16s relative RMS error %.3g (tolerance %g), max %.3g x max|logit|\n", name, rms,
                cases[i].tol, mx);
        CHECK(V2 == V && rms <= cases[i].tol);
        free(lg);
    }
    free(ref);
}

static int expect_error(const char *path, const char *what) {
    shoal_model *m = NULL;
    char err[1024] = "";
    int rc = shoal_model_open(path, NULL, &m, err, sizeof err);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (rc == SHOAL_OK || m || !strstr(err, base)) {
        fprintf(stderr, "%s: want an error naming %s, got rc %d, err '%s'\n", what, base, rc, err);
        check_failures++;
        shoal_model_free(m);
        return -1;
    }
    return 0;
}

static void corrupt_copy(const char *src, const char *dst, size_t keep, size_t patch_at, const void *patch,
                         size_t plen) {
    size_t n;
    char *b = read_all(src, &n);
    if (!b) return;
    if (keep > n) keep = n;
    if (patch && patch_at + plen <= keep) memcpy(b + patch_at, patch, plen);
    write_all(dst, b, keep);
    free(b);
}

static void bad_files(void) {
    shoal_genmodel_opts o = SHOAL_GENMODEL_OPTS_INIT;
    o.dim = 64, o.hidden_dim = 64, o.n_layers = 1, o.n_heads = 2, o.n_kv_heads = 1, o.head_dim = 32;
    o.vocab_size = 32, o.max_seq = 16;
    char g[512], l[512], h[512], p[512];
    gen(&o, SHOAL_FORMAT_GGUF, SHOAL_WTYPE_Q8_0, 0, "bad_src.gguf", g, sizeof g);
    gen(&o, SHOAL_FORMAT_LLAMA2C, SHOAL_WTYPE_F32, 0, "bad_src.bin", l, sizeof l);
    gen(&o, SHOAL_FORMAT_HF, SHOAL_WTYPE_F32, 0, "bad_src_hf", h, sizeof h);
    struct stat st;
    stat(g, &st);
    size_t gs = (size_t)st.st_size;
    snprintf(p, sizeof p, "%s/trunc.gguf", dir);
    /* every truncation point in the header region, then a few in the data */
    for (size_t k = 0; k < gs; k += k < 1200 ? 7 : gs / 10) {
        corrupt_copy(g, p, k, 0, NULL, 0);
        expect_error(p, "truncated gguf");
    }
    uint32_t v = 99;
    uint64_t huge = ~0ull;
    corrupt_copy(g, p, gs, 0, "GGUX", 4);
    expect_error(p, "gguf magic");
    corrupt_copy(g, p, gs, 4, &v, 4);
    expect_error(p, "gguf version");
    corrupt_copy(g, p, gs, 8, &huge, 8);
    expect_error(p, "gguf tensor_count");
    corrupt_copy(g, p, gs, 16, &huge, 8);
    expect_error(p, "gguf kv_count");

    stat(l, &st);
    snprintf(p, sizeof p, "%s/bad.bin", dir);
    for (size_t k = 0; k < (size_t)st.st_size; k += 97) {
        corrupt_copy(l, p, k, 0, NULL, 0);
        expect_error(p, "truncated llama2.c");
    }
    int32_t bogus[7] = {64, 64, 1, 2, 1, 32, 16};
    int32_t fields[][2] = {{0, 0}, {0, 1 << 30}, {2, 100000}, {3, 3}, {4, 0}, {4, 3}, {5, -2147483647 - 1}, {6, -1}};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        int32_t hdr[7];
        memcpy(hdr, bogus, sizeof hdr);
        hdr[fields[k][0]] = fields[k][1];
        corrupt_copy(l, p, (size_t)st.st_size, 0, hdr, sizeof hdr);
        expect_error(p, "llama2.c header");
    }

    /* HF: header length past the end, truncated data, bad config */
    char hd[512], f[600], src[600];
    snprintf(hd, sizeof hd, "%s/bad_hf", dir);
    mkdir(hd, 0777);
    snprintf(src, sizeof src, "%s/config.json", h);
    snprintf(f, sizeof f, "%s/config.json", hd);
    size_t cn = 0;
    char *cfg = read_all(src, &cn);
    CHECK(cfg != NULL);
    if (cfg) write_all(f, cfg, cn);
    snprintf(src, sizeof src, "%s/model.safetensors", h);
    snprintf(f, sizeof f, "%s/model.safetensors", hd);
    stat(src, &st);
    corrupt_copy(src, f, (size_t)st.st_size, 0, &huge, 8);
    if (!expect_error(hd, "safetensors header length")) {
        /* the message names the shard */
    }
    for (size_t k = 0; k < (size_t)st.st_size; k += (size_t)st.st_size / 13) {
        corrupt_copy(src, f, k, 0, NULL, 0);
        expect_error(hd, "truncated safetensors");
    }
    corrupt_copy(src, f, (size_t)st.st_size, 12, "{{{{", 4);
    expect_error(hd, "safetensors header JSON");
    corrupt_copy(src, f, (size_t)st.st_size, 0, NULL, 0); /* good weights again */
    snprintf(f, sizeof f, "%s/config.json", hd);
    const char *configs[] = {"{\"model_type\": \"gpt2\", \"hidden_size\": 64}", "{not json",
                             "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 1}",
                             "{\"model_type\": \"llama\", \"hidden_size\": 99999999, \"intermediate_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 32}"};
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        write_all(f, configs[k], strlen(configs[k]));
        expect_error(hd, "config.json");
    }
    free(cfg);
    snprintf(p, sizeof p, "%s/does-not-exist.gguf", dir);
    expect_error(p, "missing file");
}

/* A prompt of 37 tokens in one batch goes through the prefill products (the AMX gemm for
 * Q8_0/Q4_0 where the CPU has it: 16-token tiles, a partial one) and must give the logits of
 * feeding the same tokens one at a time (dot tiles), up to float rounding carried through the
 * activation quantization of the next layer (which can move an int8 by one step). */
static void batch_vs_steps(void) {
    shoal_genmodel_opts o = SHOAL_GENMODEL_OPTS_INIT;
    o.dim = 256, o.hidden_dim = 512, o.n_layers = 2, o.n_heads = 4, o.n_kv_heads = 2, o.head_dim = 64;
    o.vocab_size = 256, o.max_seq = 64, o.seed = 11;
    int32_t ids[37];
    for (int i = 0; i < 37; i++) ids[i] = (i * 53 + 7) % 256;
    static const struct { int dtype; const char *name; } cases[] = {
        {SHOAL_WTYPE_Q8_0, "bs_q8_0.gguf"}, {SHOAL_WTYPE_Q4_0, "bs_q4_0.gguf"},
        {SHOAL_WTYPE_Q4_K, "bs_q4_k.gguf"}, {SHOAL_WTYPE_Q6_K, "bs_q6_k.gguf"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        gen(&o, SHOAL_FORMAT_GGUF, cases[i].dtype, 0, cases[i].name, path, sizeof path);
        int V1 = 0, V2 = 0;
        float *a = logits_of(path, ids, 37, &V1), *b = logits_by(path, ids, 37, 1, &V2);
        if (a && b && V1 == V2) {
            double rms = rel_rms_err(a, b, (size_t)37 * V1);
            fprintf(stderr, "%-16s batch vs one token at a time: relative RMS difference %.3g\n", cases[i].name, rms);
            CHECK(rms <= 2e-3);
        } else CHECK(0);
        free(a), free(b);
    }
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/shoal-test-formats-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    formats(SHOAL_ARCH_LLAMA);
    formats(SHOAL_ARCH_QWEN3);
    batch_vs_steps();
    bad_files();
    if (!check_failures) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "files kept in %s\n", dir);
    }
    TEST_DONE();
}
