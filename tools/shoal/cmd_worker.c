/* `shoal worker`: a pool worker. Spawned by a leader on this host (rank and group from the
 * environment the leader set), or joining a leader elsewhere with --join HOST:PORT and the
 * cluster key. Serves the leader's remote calls (the pool's and the pipeline stage's, see
 * shoal/cluster.h) until told to stop or the leader is gone. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "shoal/cluster.h"
#include "shoal/pool.h"

void cmd_worker_help(FILE *out) {
    fprintf(out,
            "Usage: shoal worker [--rank N] [options]            (started by a leader on this host)\n"
            "       shoal worker --join HOST:PORT [options]      (join a leader's pool from another host)\n"
            "\n"
            "Runs a worker: joins the leader's group, answers its remote calls (capacity, weights,\n"
            "a pipeline stage of `shoal run --workers/--listen`), and exits when the leader says so\n"
            "(status 0) or is gone (status 3). Joining needs the cluster key in SHOAL_CLUSTER_KEY or\n"
            "SHOAL_CLUSTER_KEY_FILE.\n"
            "\n"
            "  --join HOST:PORT  the leader's address (`shoal run --listen HOST:PORT`)\n"
            "  --rank N          the rank the leader gave this worker (checked against\n"
            "                    SHOAL_RANK)\n"
            "  --model PATH      this host's copy of the model; 'none': receive it from the\n"
            "                    leader (default: SHOAL_WORKER_MODEL, else the leader's path when\n"
            "                    it exists here with the same file sizes)\n"
            "  --memory SIZE     memory offered for layers, e.g. 6G (default: SHOAL_WORKER_MEMORY,\n"
            "                    else the host's available memory)\n"
            "  --threads N       compute threads unless the leader says (default: SHOAL_THREADS)\n"
            "  --cache-dir DIR   where weights received from a leader are cached (default:\n"
            "                    SHOAL_CACHE_DIR, else ~/.cache/shoal)\n");
}

static void worker_log(void *user, const char *line) {
    fprintf(stderr, "shoal %s\n", line);
}

int cmd_worker(int argc, char **argv) {
    static const struct option longopts[] = {
        {"join", required_argument, NULL, 'j'},    {"rank", required_argument, NULL, 'r'},
        {"model", required_argument, NULL, 'm'},   {"memory", required_argument, NULL, 'M'},
        {"threads", required_argument, NULL, 't'}, {"cache-dir", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    shoal_worker_config wc = SHOAL_WORKER_CONFIG_INIT;
    shoal_cluster_worker_config cc = SHOAL_CLUSTER_WORKER_CONFIG_INIT;
    int rank = -1, opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': wc.join = optarg; break;
        case 'r':
            if (cli_parse_int("worker", "--rank", optarg, 1, 1 << 20, &rank)) return CLI_EXIT_USAGE;
            break;
        case 'm': cc.model = optarg; break;
        case 'M':
            if (cli_parse_size("worker", "--memory", optarg, &cc.memory)) return CLI_EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_int("worker", "--threads", optarg, 1, 256, &cc.threads)) return CLI_EXIT_USAGE;
            break;
        case 'c': cc.cache_dir = optarg; break;
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
    cc.log = worker_log;
    shoal_cluster_worker *cw = NULL;
    if (shoal_cluster_worker_create(&cw, &cc) != 0) {
        const char *mem = getenv("SHOAL_WORKER_MEMORY");
        return cli_usage_error("worker", "SHOAL_WORKER_MEMORY='%s' is not a size or a comma list of sizes (4G, 1G,3G), or the cache folder is unusable",
                               mem ? mem : ""), CLI_EXIT_USAGE;
    }
    wc.setup = shoal_cluster_worker_setup;
    wc.user = cw;
    int rc = shoal_worker_run(&wc); /* its endpoint is gone when it returns: the stage can go */
    shoal_cluster_worker_free(cw);
    return rc;
}
