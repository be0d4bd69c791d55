/* `shoal worker`: a pool worker. Spawned by a leader on this host (rank and group from the
 * environment the leader set), or joining a leader elsewhere with --join HOST:PORT and the
 * cluster key. Serves the leader's remote calls until told to stop or the leader is gone. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shoal/pool.h"

void cmd_worker_help(FILE *out) {
    fprintf(out,
            "Usage: shoal worker [--rank N]            (started by a leader on this host)\n"
            "       shoal worker --join HOST:PORT      (join a leader's pool from another host)\n"
            "\n"
            "Runs a worker: joins the leader's group, answers its remote calls, and exits when\n"
            "the leader says so (status 0) or is gone (status 3). Joining needs the cluster key\n"
            "in SHOAL_CLUSTER_KEY or SHOAL_CLUSTER_KEY_FILE.\n"
            "\n"
            "  --join HOST:PORT  the leader's address (`shoal run --listen HOST:PORT`)\n"
            "  --rank N          the rank the leader gave this worker (checked against\n"
            "                    SHOAL_RANK)\n");
}

int cmd_worker(int argc, char **argv) {
    static const struct option longopts[] = {
        {"join", required_argument, NULL, 'j'},
        {"rank", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shoal_worker_config wc = SHOAL_WORKER_CONFIG_INIT;
    int rank = -1, opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': wc.join = optarg; break;
        case 'r':
            if (cli_parse_int("worker", "--rank", optarg, 1, 1 << 20, &rank)) return CLI_EXIT_USAGE;
            break;
        case 'h': cmd_worker_help(stdout); return 0;
        default: return cli_usage_error("worker", "bad option"), CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error("worker", "unexpected argument '%s'", argv[optind]), CLI_EXIT_USAGE;
    const char *env_rank = getenv("SHOAL_RANK");
    if (rank >= 0 && (!env_rank || atoi(env_rank) != rank))
        return cli_usage_error("worker", "--rank %d does not match SHOAL_RANK=%s", rank, env_rank ? env_rank : "(unset)"),
               CLI_EXIT_USAGE;
    if (!wc.join && !env_rank)
        return cli_usage_error("worker", "give --join HOST:PORT, or start it from a leader"), CLI_EXIT_USAGE;
    return shoal_worker_run(&wc);
}
