/* shoal inspect: what a model file holds: architecture, shapes, tensor types, parameter count
 * and sizes. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_model.h"
#include "shoal/model.h"

void cmd_inspect_help(FILE *out) {
    fprintf(out,
            "Usage: shoal inspect [--tensors] MODEL\n"
            "\n"
            "Prints a model's architecture and shapes, the types and sizes of its tensors and its\n"
            "parameter count. MODEL is a .gguf file, a llama2.c .bin checkpoint or a Hugging Face\n"
            "folder. The file is validated as `shoal run` would load it.\n"
            "\n"
            "Options:\n"
            "  --tensors   list every tensor (name, name in the file, type, shape, bytes)\n");
}

static const char *arch_name(int a) { return a == SHOAL_ARCH_LLAMA ? "llama" : a == SHOAL_ARCH_QWEN3 ? "qwen3" : "?"; }
static const char *format_name(int f) {
    return f == SHOAL_FORMAT_GGUF ? "GGUF" : f == SHOAL_FORMAT_HF ? "Hugging Face safetensors" : f == SHOAL_FORMAT_LLAMA2C ? "llama2.c" : "?";
}

static void human(double b, char *out, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, i++;
    snprintf(out, cap, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cmd_inspect_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tensors")) {
            list = 1;
        } else if (argv[i][0] == '-' || path) {
            cli_usage_error("inspect", "unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        cli_usage_error("inspect", "MODEL is required");
        return CLI_EXIT_USAGE;
    }
    char err[1024];
    shoal_model *m = NULL;
    shoal_model_load_opts lo = SHOAL_MODEL_LOAD_OPTS_INIT;
    lo.threads = 1;
    int rc = shoal_model_open(path, &lo, &m, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shoal inspect: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    const shoal_model_config *c = shoal_model_get_config(m);
    printf("model:        %s\n", path);
    printf("format:       %s\n", format_name(c->format));
    printf("architecture: %s\n", arch_name(c->arch));
    printf("dim %d, hidden_dim %d, layers %d, heads %d, kv_heads %d, head_dim %d, vocab %d, context %d\n",
           c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->max_seq);
    printf("rms_norm_eps %g, rope_theta %g, rope %s%s, qk_norm %s, classifier %s\n", c->norm_eps, c->rope_theta,
           c->rope_interleaved ? "interleaved pairs" : "rotate-half",
           c->rope_factor > 0 ? " + llama3 scaling" : "", c->qk_norm ? "yes" : "no",
           c->tied_classifier ? "tied to the embedding" : "separate");
    printf("bos %d, eos %d\n", c->bos_id, c->eos_id);
    uint64_t params = 0, bytes = 0;
    uint64_t by_type_n[64] = {0}, by_type_b[64] = {0};
    size_t nt = shoal_model_tensor_count(m);
    for (size_t i = 0; i < nt; i++) {
        shoal_tensor_info t;
        shoal_model_tensor_info(m, i, &t);
        params += t.n_elements;
        bytes += t.nbytes;
        if (t.dtype >= 0 && t.dtype < 64) by_type_n[t.dtype]++, by_type_b[t.dtype] += t.nbytes;
    }
    char hb[32];
    human((double)bytes, hb, sizeof hb);
    printf("tensors %zu, parameters %llu (%.2f M), size %s\n", nt, (unsigned long long)params, params / 1e6, hb);
    for (int d = 0; d < 64; d++)
        if (by_type_n[d]) {
            human((double)by_type_b[d], hb, sizeof hb);
            printf("  %-5s %4llu tensors  %s\n", shoal_wtype_name(d), (unsigned long long)by_type_n[d], hb);
        }
    if (list) {
        printf("\n%-28s %-6s %-22s %12s  %s\n", "tensor", "type", "shape", "bytes", "name in file");
        for (size_t i = 0; i < nt; i++) {
            shoal_tensor_info t;
            shoal_model_tensor_info(m, i, &t);
            char shape[64] = "[";
            for (int d = 0; d < t.n_dims; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? ", " : "",
                         (unsigned long long)t.shape[d]);
            strcat(shape, "]");
            printf("%-28s %-6s %-22s %12llu  %s\n", t.name, shoal_wtype_name(t.dtype), shape,
                   (unsigned long long)t.nbytes, t.file_name);
        }
    }
    shoal_model_free(m);
    return 0;
}
