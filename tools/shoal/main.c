/* shoal: the command-line tool. Dispatches to one function per command (cmd_*.c). */
#include <string.h>

#include "cli.h"
#include "cli_model.h"
#include "shoal/shoal.h"

static const cli_command commands[] = {
    {"run", "generate text with a model on the CPU", cmd_run, cmd_run_help},
    {"inspect", "show a model: architecture, shapes, tensor types, sizes", cmd_inspect, cmd_inspect_help},
    {"genmodel", "write a random-weight model (GGUF, HF safetensors, llama2.c)", cmd_genmodel,
     cmd_genmodel_help},
    {"launch", "start N local ranks of a program (like mpirun -np N)", cmd_launch,
     cmd_launch_help},
    {"worker", "serve a leader as a pool worker (spawned, or --join HOST:PORT)", cmd_worker,
     cmd_worker_help},
    {"bench", "benchmarks: `shoal bench coll` (collectives), `shoal bench rpc` (remote calls)",
     cmd_bench, cmd_bench_help},
    {"settings", "list every setting: name, environment variable, type, default", cmd_settings,
     cmd_settings_help},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out,
            "shoal %s: a runtime for distributed LLM inference\n"
            "\n"
            "Usage: shoal <command> [options]\n"
            "       shoal <command> --help\n"
            "       shoal --version\n"
            "\n"
            "Commands:\n",
            shoal_version());
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Settings (environment variables; `shoal settings --markdown` documents them):\n");
    cli_print_settings(out);
}

static const cli_command *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
        printf("shoal %s\n", shoal_version());
        return 0;
    }
    if (strcmp(arg, "help") == 0) {
        /* `shoal help launch` is `shoal launch --help`. */
        const cli_command *c = argc > 2 ? find(argv[2]) : NULL;
        if (argc > 2 && !c) {
            fprintf(stderr, "shoal: unknown command '%s' (see 'shoal --help')\n", argv[2]);
            return CLI_EXIT_USAGE;
        }
        if (c)
            c->help(stdout);
        else
            usage(stdout);
        return 0;
    }
    const cli_command *c = find(arg);
    if (!c) {
        if (arg[0] == '-')
            fprintf(stderr, "shoal: unknown option '%s' (see 'shoal --help')\n", arg);
        else
            fprintf(stderr, "shoal: unknown command '%s' (see 'shoal --help')\n", arg);
        return CLI_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
