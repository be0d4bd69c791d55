/* shoal genmodel: writes random-weight models of any shape, in any format and weight type, for
 * tests and benchmarks. The same --seed and shape give the same weights in every format and
 * dtype, so a Q8_0 GGUF is the f32 model quantized. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "cli_model.h"
#include "shoal/model.h"

void cmd_genmodel_help(FILE *out) {
    fprintf(out,
            "Usage: shoal genmodel -o PATH [options]\n"
            "\n"
            "Writes a random-weight model. Weights depend only on --seed and the shape, so the\n"
            "same model can be written in each format and quantized.\n"
            "\n"
            "Options:\n"
            "  -o PATH             output file (gguf, llama2c) or folder (hf)\n"
            "  --format F          gguf (default), hf (config.json + model.safetensors), llama2c\n"
            "  --dtype T           f32 (default), f16, bf16, q8_0, q4_0, q4_k, q6_k (GGUF);\n"
            "                      f32, f16, bf16 (hf); f32 (llama2c)\n"
            "  --arch A            llama (default) or qwen3 (per-head q/k RMSNorm)\n"
            "  --preset P          tinyllama-1.1b (dim 2048, hidden 5632, 22 layers, 32 heads,\n"
            "                      4 kv heads, vocab 32000, context 2048), stories260k, tiny\n"
            "  --dim N --hidden N --layers N --heads N --kv-heads N --head-dim N --vocab N\n"
            "  --seq N             context length (default 256)\n"
            "  --theta X           RoPE theta (default 10000)\n"
            "  --tied              the classifier is the token embedding\n"
            "  --seed S            (default 1)\n"
            "  --llama2c-version V 0: legacy header (default), 1: \"ak42\" v1 header\n");
}

static int parse_dtype(const char *s, int *out) {
    static const struct { const char *n; int t; } m[] = {
        {"f32", SHOAL_WTYPE_F32}, {"f16", SHOAL_WTYPE_F16}, {"bf16", SHOAL_WTYPE_BF16},
        {"q8_0", SHOAL_WTYPE_Q8_0}, {"q4_0", SHOAL_WTYPE_Q4_0}, {"q4_k", SHOAL_WTYPE_Q4_K},
        {"q6_k", SHOAL_WTYPE_Q6_K}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcasecmp(s, m[i].n)) return *out = m[i].t, 0;
    return -1;
}

int cmd_genmodel(int argc, char **argv) {
    shoal_genmodel_opts o = SHOAL_GENMODEL_OPTS_INIT;
    const char *out = NULL;
    int head_dim = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cmd_genmodel_help(stdout);
            return 0;
        }
        if (!strcmp(a, "--tied")) {
            o.tied_classifier = 1;
            continue;
        }
        if (!v) return cli_usage_error("genmodel", "%s needs a value", a), CLI_EXIT_USAGE;
        i++;
        int bad = 0;
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "gguf")) o.format = SHOAL_FORMAT_GGUF;
            else if (!strcmp(v, "hf")) o.format = SHOAL_FORMAT_HF;
            else if (!strcmp(v, "llama2c")) o.format = SHOAL_FORMAT_LLAMA2C;
            else bad = cli_usage_error("genmodel", "--format is gguf, hf or llama2c, not '%s'", v);
        } else if (!strcmp(a, "--dtype")) {
            if (parse_dtype(v, &o.dtype)) bad = cli_usage_error("genmodel", "unknown --dtype '%s'", v);
        } else if (!strcmp(a, "--arch")) {
            if (!strcmp(v, "llama")) o.arch = SHOAL_ARCH_LLAMA;
            else if (!strcmp(v, "qwen3")) o.arch = SHOAL_ARCH_QWEN3;
            else bad = cli_usage_error("genmodel", "--arch is llama or qwen3, not '%s'", v);
        } else if (!strcmp(a, "--preset")) {
            if (!strcmp(v, "tinyllama-1.1b")) {
                o.dim = 2048, o.hidden_dim = 5632, o.n_layers = 22, o.n_heads = 32, o.n_kv_heads = 4;
                o.vocab_size = 32000, o.max_seq = 2048, head_dim = 64;
            } else if (!strcmp(v, "stories260k")) {
                o.dim = 64, o.hidden_dim = 172, o.n_layers = 5, o.n_heads = 8, o.n_kv_heads = 4;
                o.vocab_size = 512, o.max_seq = 512, head_dim = 8;
            } else if (!strcmp(v, "tiny")) {
                o.dim = 64, o.hidden_dim = 192, o.n_layers = 2, o.n_heads = 4, o.n_kv_heads = 2;
                o.vocab_size = 256, o.max_seq = 256, head_dim = 16;
            } else bad = cli_usage_error("genmodel", "unknown --preset '%s'", v);
        } else if (!strcmp(a, "--dim")) bad = cli_parse_int("genmodel", a, v, 1, 1 << 16, &o.dim);
        else if (!strcmp(a, "--hidden")) bad = cli_parse_int("genmodel", a, v, 1, 1 << 20, &o.hidden_dim);
        else if (!strcmp(a, "--layers")) bad = cli_parse_int("genmodel", a, v, 1, 1024, &o.n_layers);
        else if (!strcmp(a, "--heads")) bad = cli_parse_int("genmodel", a, v, 1, 1024, &o.n_heads);
        else if (!strcmp(a, "--kv-heads")) bad = cli_parse_int("genmodel", a, v, 1, 1024, &o.n_kv_heads);
        else if (!strcmp(a, "--head-dim")) bad = cli_parse_int("genmodel", a, v, 2, 1024, &head_dim);
        else if (!strcmp(a, "--vocab")) bad = cli_parse_int("genmodel", a, v, 1, 1 << 22, &o.vocab_size);
        else if (!strcmp(a, "--seq")) bad = cli_parse_int("genmodel", a, v, 1, 1 << 22, &o.max_seq);
        else if (!strcmp(a, "--llama2c-version")) bad = cli_parse_int("genmodel", a, v, 0, 1, &o.llama2c_version);
        else if (!strcmp(a, "--theta")) {
            char *e;
            o.rope_theta = strtof(v, &e);
            if (*e || e == v) bad = cli_usage_error("genmodel", "--theta needs a number, not '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            char *e;
            o.seed = strtoull(v, &e, 10);
            if (*e || e == v) bad = cli_usage_error("genmodel", "--seed needs an integer, not '%s'", v);
        } else bad = cli_usage_error("genmodel", "unknown option '%s'", a);
        if (bad) return CLI_EXIT_USAGE;
    }
    if (!out) return cli_usage_error("genmodel", "-o PATH is required"), CLI_EXIT_USAGE;
    o.head_dim = head_dim ? head_dim : o.n_heads ? o.dim / o.n_heads : 0;
    char err[512] = "";
    int rc = shoal_model_generate(&o, out, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shoal genmodel: %s\n", err[0] ? err : shoal_status_str(rc));
        return rc == SHOAL_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    return 0;
}
