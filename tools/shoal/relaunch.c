/* Runs N local ranks of this very executable (not whatever "shoal" PATH finds, so a sanitizer
 * build benchmarks itself) with `prefix... args...`, through shoal/launch.h as `shoal launch`
 * would, and returns the job's exit status. */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "shoal/launch.h"

int cli_launch_self(const char *cmd, const char *const *prefix, int argc, char **argv, int nranks,
                    double timeout_s) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "/proc/self/exe");
    else self[len] = 0;
    int np = 0;
    while (prefix[np]) np++;
    char **wargv = calloc((size_t)(np + argc + 2), sizeof *wargv);
    if (!wargv) {
        fprintf(stderr, "shoal %s: out of memory\n", cmd);
        return CLI_EXIT_FAIL;
    }
    int k = 0;
    wargv[k++] = self;
    for (int i = 0; i < np; i++) wargv[k++] = (char *)prefix[i];
    for (int i = 0; i < argc; i++) wargv[k++] = argv[i];
    wargv[k] = NULL;
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.nranks = nranks;
    cfg.argv = wargv;
    cfg.timeout_s = timeout_s;
    cfg.forward_signals = 1;
    cfg.die_with_parent = 1;
    shoal_launch *job = NULL;
    int rc = CLI_EXIT_FAIL, status = CLI_EXIT_FAIL;
    if (shoal_launch_start(&cfg, &job) != SHOAL_OK) {
        fprintf(stderr, "shoal %s: %s\n", cmd, shoal_launch_start_error());
        rc = SHOAL_LAUNCH_EXEC_FAILED;
    } else if (shoal_launch_wait(job, -1, &status) != SHOAL_OK) {
        fprintf(stderr, "shoal %s: waiting for the ranks failed: %s\n", cmd, shoal_launch_last_error(job));
    } else {
        if (status != 0) fprintf(stderr, "shoal %s: %s\n", cmd, shoal_launch_last_error(job));
        rc = status;
    }
    shoal_launch_free(job);
    free(wargv);
    return rc;
}
