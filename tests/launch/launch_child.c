/* A rank for the launcher tests: behaves as its arguments say, using only SHOAL_RANK.
 *
 *   launch_child [--pids DIR] exit RANK CODE  rank RANK exits CODE after 300 ms; others sleep
 *   launch_child [--pids DIR] kill RANK SIG   rank RANK kills itself with SIG; others sleep
 *   launch_child [--pids DIR] sleep S         every rank sleeps S seconds, then exits 0
 *   launch_child [--pids DIR] stubborn S      as sleep, but ignores SIGTERM (needs SIGKILL)
 *   launch_child [--pids DIR] env DIR2        writes its launcher variables to DIR2/env.RANK
 *   launch_child [--pids DIR] exit-all CODE   every rank exits CODE
 * --pids DIR writes the pid to DIR/pid.RANK first (for process-table checks from a shell).
 * "Sleeping" ranks sleep 60 s: far longer than any test waits, so only a kill ends them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const vars[] = {"SHOAL_RANK",       "SHOAL_WORLD_SIZE", "SHOAL_MASTER",
                                   "SHOAL_CLUSTER_KEY", "SHOAL_GROUP_ID",  "SHOAL_LOCAL_RANK",
                                   "SHOAL_LOCAL_SIZE", "LAUNCH_TEST_EXTRA", "LAUNCH_TEST_INHERITED"};

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int write_file(const char *dir, const char *name, int rank, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%d", dir, name, rank);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fputs(text, f);
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    const char *r = getenv("SHOAL_RANK");
    if (!r) {
        fprintf(stderr, "launch_child: SHOAL_RANK is not set\n");
        return 90;
    }
    int rank = atoi(r), a = 1;
    if (argc > a + 1 && strcmp(argv[a], "--pids") == 0) {
        char pid[32];
        snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        if (write_file(argv[a + 1], "pid", rank, pid)) return 91;
        a += 2;
    }
    if (argc < a + 2) {
        fprintf(stderr, "launch_child: usage: see the comment in launch_child.c\n");
        return 92;
    }
    const char *mode = argv[a];
    if (strcmp(mode, "exit") == 0 && argc > a + 2) {
        if (rank == atoi(argv[a + 1])) {
            sleep_s(0.3); /* the others have written their pid files by then */
            return atoi(argv[a + 2]);
        }
        sleep_s(60);
        return 0;
    }
    if (strcmp(mode, "kill") == 0 && argc > a + 2) {
        if (rank == atoi(argv[a + 1])) {
            sleep_s(0.1);
            kill(getpid(), atoi(argv[a + 2]));
            sleep_s(60); /* a signal that does not kill must not pass as success */
            return 93;
        }
        sleep_s(60);
        return 0;
    }
    if (strcmp(mode, "sleep") == 0 || strcmp(mode, "stubborn") == 0) {
        if (strcmp(mode, "stubborn") == 0) signal(SIGTERM, SIG_IGN);
        sleep_s(atof(argv[a + 1]));
        return 0;
    }
    if (strcmp(mode, "exit-all") == 0) return atoi(argv[a + 1]);
    if (strcmp(mode, "env") == 0) {
        char text[8192];
        size_t n = 0;
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
            const char *v = getenv(vars[i]);
            n += (size_t)snprintf(text + n, sizeof text - n, "%s=%s\n", vars[i], v ? v : "(unset)");
            if (n >= sizeof text) return 94;
        }
        return write_file(argv[a + 1], "env", rank, text) ? 95 : 0;
    }
    fprintf(stderr, "launch_child: unknown mode '%s'\n", mode);
    return 92;
}
