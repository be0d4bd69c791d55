/* `shoal bench`: the benchmark suites (coll, rpc). */
#include <string.h>

#include "cli.h"

void cmd_bench_help(FILE *out) {
    fprintf(out,
            "Usage: shoal bench <suite> [options]\n"
            "\n"
            "Suites:\n"
            "  coll   collective operations over N local ranks (`shoal bench coll --help`)\n"
            "  rpc    remote-call latency and rate beside raw ping-pong (`shoal bench rpc --help`)\n"
            "\n"
            "bench/compare_mpi.sh runs `shoal bench coll` beside Open MPI; see bench/README.md.\n");
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        cli_usage_error("bench", "no suite given");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cmd_bench_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "coll") == 0) return cmd_bench_coll(argc - 1, argv + 1);
    if (strcmp(argv[1], "rpc") == 0) return cmd_bench_rpc(argc - 1, argv + 1);
    cli_usage_error("bench", "unknown suite '%s'", argv[1]);
    return CLI_EXIT_USAGE;
}
