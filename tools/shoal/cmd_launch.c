/* `shoal launch`: N local ranks of a program through the launcher API (shoal/launch.h). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shoal/launch.h"

void cmd_launch_help(FILE *out) {
    fprintf(out,
            "Usage: shoal launch -n N [--timeout S] [--env NAME=VALUE]... [--] PROGRAM [ARGS...]\n"
            "\n"
            "Starts N processes of PROGRAM on this host as ranks 0..N-1 of one group, like\n"
            "`mpirun -np N`. Each gets the caller's environment plus SHOAL_RANK, SHOAL_WORLD_SIZE,\n"
            "SHOAL_MASTER (127.0.0.1 and a free port), SHOAL_CLUSTER_KEY (random), SHOAL_GROUP_ID\n"
            "(random), SHOAL_LOCAL_RANK and SHOAL_LOCAL_SIZE, so shoal_comm_init(&c, NULL) forms\n"
            "the group. Output of the ranks goes straight to this terminal.\n"
            "\n"
            "When a rank fails, the others get SIGTERM and after %g s SIGKILL. SIGINT and SIGTERM\n"
            "sent to shoal launch are forwarded to the ranks (a second one kills them).\n"
            "\n"
            "Options:\n"
            "  -n, --nranks N        number of ranks (1..%d)\n"
            "  -t, --timeout S       stop the job after S seconds (exit status %d)\n"
            "  -e, --env NAME=VALUE  set a variable in every rank (repeatable)\n"
            "  -h, --help            this text\n"
            "\n"
            "Exit status: 0 when every rank exits 0; else the status of the first rank that\n"
            "failed (128+S for a rank killed by signal S); %d when PROGRAM cannot be executed;\n"
            "2 for bad usage.\n",
            1.0, SHOAL_LAUNCH_MAX_RANKS, SHOAL_LAUNCH_TIMED_OUT, SHOAL_LAUNCH_EXEC_FAILED);
}

int cmd_launch(int argc, char **argv) {
    static const struct option longopts[] = {
        {"nranks", required_argument, NULL, 'n'}, {"timeout", required_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nranks = 0, rc = CLI_EXIT_USAGE, opt;
    double timeout = 0;
    const char **env = calloc((size_t)argc + 1, sizeof *env); /* at most one per argument */
    size_t nenv = 0;
    shoal_launch *job = NULL;
    if (!env) {
        fprintf(stderr, "shoal launch: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    /* '+': stop at the first non-option, so PROGRAM's own options are left alone even
     * without "--". */
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "+n:t:e:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (cli_parse_int("launch", "-n", optarg, 1, SHOAL_LAUNCH_MAX_RANKS, &nranks) != 0)
                goto out;
            break;
        case 't':
            if (cli_parse_seconds("launch", "--timeout", optarg, &timeout) != 0) goto out;
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                cli_usage_error("launch", "--env needs NAME=VALUE, not '%s'", optarg);
                goto out;
            }
            env[nenv++] = optarg;
            break;
        case 'h':
            cmd_launch_help(stdout);
            rc = 0;
            goto out;
        default: /* getopt_long printed what was wrong */
            cli_usage_error("launch", "bad option");
            goto out;
        }
    }
    if (nranks == 0) {
        cli_usage_error("launch", "-n N is required");
        goto out;
    }
    if (optind >= argc) {
        cli_usage_error("launch", "no PROGRAM given");
        goto out;
    }

    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.nranks = nranks;
    cfg.argv = argv + optind;
    cfg.env = nenv ? env : NULL;
    cfg.timeout_s = timeout;
    cfg.forward_signals = 1;
    cfg.die_with_parent = 1; /* this thread lives as long as the job: no orphans if killed */
    int st = shoal_launch_start(&cfg, &job);
    if (st != SHOAL_OK) {
        fprintf(stderr, "shoal launch: %s\n", shoal_launch_start_error());
        rc = st == SHOAL_ERR_INVALID ? CLI_EXIT_USAGE : SHOAL_LAUNCH_EXEC_FAILED;
        goto out;
    }
    int status = CLI_EXIT_FAIL;
    st = shoal_launch_wait(job, -1, &status);
    if (st != SHOAL_OK) {
        fprintf(stderr, "shoal launch: waiting for the ranks failed: %s\n",
                shoal_launch_last_error(job));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (status != 0) fprintf(stderr, "shoal launch: %s\n", shoal_launch_last_error(job));
    rc = status;
out:
    shoal_launch_free(job); /* kills and reaps anything still running */
    free(env);
    return rc;
}
