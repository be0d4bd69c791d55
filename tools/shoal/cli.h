/* The shoal command: one function per command, dispatched by main.c. The tool uses only the
 * public headers in include/shoal/, as curl's tool uses only libcurl's.
 *
 * Exit codes of every command: 0 success, 1 the work failed, 2 bad usage (the message names
 * the problem and points to --help). `shoal launch` returns its job's status instead. */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stdint.h>
#include <stdio.h>

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* A command gets argv starting at its own name (argv[0] == "launch"). */
typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `shoal --help` */
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
} cli_command;

int cmd_launch(int argc, char **argv);
void cmd_launch_help(FILE *out);
int cmd_settings(int argc, char **argv);
void cmd_settings_help(FILE *out);
int cmd_bench(int argc, char **argv);
void cmd_bench_help(FILE *out);
int cmd_bench_coll(int argc, char **argv);
void cmd_bench_coll_help(FILE *out);
int cmd_bench_rpc(int argc, char **argv);
void cmd_bench_rpc_help(FILE *out);
int cmd_worker(int argc, char **argv);
void cmd_worker_help(FILE *out);

/* Runs nranks local ranks of this executable as `prefix... argv[0..argc)` and returns the
 * job's exit status (relaunch.c); cmd names the command in error messages. */
int cli_launch_self(const char *cmd, const char *const *prefix, int argc, char **argv, int nranks,
                    double timeout_s);

/* The per-rank body of `shoal bench coll` (bench_coll_worker.c), run in each launched rank. */
struct bench_coll_opts;
int bench_coll_worker(const struct bench_coll_opts *o);

/* Prints the settings registry as an aligned list (used by `shoal --help` too). */
void cli_print_settings(FILE *out);

/* ---- argument parsing (args.c): each prints "shoal CMD: ..." on stderr and returns -1 on a
 * bad value, so callers only have to exit with CLI_EXIT_USAGE. */
int cli_parse_int(const char *cmd, const char *opt, const char *text, long min, long max,
                  int *out);
int cli_parse_seconds(const char *cmd, const char *opt, const char *text, double *out);
int cli_parse_size(const char *cmd, const char *opt, const char *text, uint64_t *out);
/* "see 'shoal CMD --help'" after a usage error. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
