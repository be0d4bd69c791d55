/* The launcher library (shoal/launch.h) against a helper rank program (launch_child.c):
 * exit-status propagation, teardown of the other ranks, no processes or zombies left, the
 * environment each rank gets, exec failures, timeouts, signal forwarding and bad configs.
 *
 * Usage: test_launch_api PATH_TO_launch_child */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shoal/launch.h"

static int failures;
static const char *child_prog;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts nranks of launch_child with args (NULL-terminated after the program). */
static int start(shoal_launch_config *cfg, int nranks, char **argv, shoal_launch **job) {
    cfg->nranks = nranks;
    cfg->argv = argv;
    int rc = shoal_launch_start(cfg, job);
    if (rc != SHOAL_OK) fprintf(stderr, "start: %s\n", shoal_launch_start_error());
    return rc;
}

/* Every pid of the job is gone: no process, no zombie (kill(pid, 0) succeeds on a zombie). */
static void check_all_gone(shoal_launch *job) {
    for (int i = 0; i < shoal_launch_nranks(job); i++) {
        pid_t pid = shoal_launch_pid(job, i);
        CHECK(pid > 0);
        errno = 0;
        int alive = kill(pid, 0) == 0;
        if (alive) fprintf(stderr, "rank %d (pid %d) is still in the process table\n", i, (int)pid);
        CHECK(!alive && errno == ESRCH);
    }
}

static void test_exit_status_propagates(void) {
    char *argv[] = {(char *)child_prog, "exit", "2", "3", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *job = NULL;
    double t0 = now();
    if (start(&cfg, 4, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == 3);
    CHECK(shoal_launch_failed_rank(job) == 2);
    CHECK(shoal_launch_rank_status(job, 2) == 3);
    /* The others slept for 60 s: they must have been terminated, promptly. */
    for (int i = 0; i < 4; i++)
        if (i != 2) CHECK(shoal_launch_rank_status(job, i) == 128 + SIGTERM);
    CHECK(now() - t0 < 10);
    CHECK(strstr(shoal_launch_last_error(job), "rank 2") != NULL);
    check_all_gone(job);
    /* Waiting again reports the same end. */
    status = -1;
    CHECK(shoal_launch_wait(job, 0, &status) == SHOAL_OK && status == 3);
    shoal_launch_free(job);
}

static void test_killed_by_signal(void) {
    char *argv[] = {(char *)child_prog, "kill", "1", "9", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *job = NULL;
    if (start(&cfg, 3, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == 137);
    CHECK(shoal_launch_failed_rank(job) == 1);
    CHECK(shoal_launch_rank_signal(job, 1) == SIGKILL);
    CHECK(shoal_launch_rank_signal(job, 0) == SIGTERM); /* terminated after rank 1 died */
    CHECK(strstr(shoal_launch_last_error(job), "signal 9") != NULL);
    check_all_gone(job);
    shoal_launch_free(job);
}

/* keep_going (worker pools): a failed rank is recorded but the others keep running. */
static void test_keep_going(void) {
    char *argv[] = {(char *)child_prog, "exit", "0", "4", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.keep_going = 1;
    shoal_launch *job = NULL;
    if (start(&cfg, 3, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 2.0, &status) == SHOAL_ERR_TIMEOUT); /* 1 and 2 still sleep */
    CHECK(shoal_launch_rank_status(job, 0) == 4);
    CHECK(shoal_launch_rank_signal(job, 0) == 0);
    CHECK(shoal_launch_rank_status(job, 1) == -1 && shoal_launch_rank_status(job, 2) == -1);
    CHECK(shoal_launch_failed_rank(job) == 0);
    CHECK(shoal_launch_terminate(job) == SHOAL_OK);
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == 4); /* the first failure still decides the job's status */
    CHECK(shoal_launch_rank_signal(job, 1) == SIGTERM);
    check_all_gone(job);
    shoal_launch_free(job);
}

static void test_success(void) {
    char *argv[] = {(char *)child_prog, "exit-all", "0", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *job = NULL;
    if (start(&cfg, 4, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == 0);
    CHECK(shoal_launch_failed_rank(job) == -1);
    CHECK(strcmp(shoal_launch_last_error(job), "") == 0);
    check_all_gone(job);
    shoal_launch_free(job);
}

/* Reads NAME's value from dir/env.rank into out; 0 on success. */
static int env_of(const char *dir, int rank, const char *name, char *out, size_t cap) {
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/env.%d", dir, rank);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t len = strlen(name);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, len) == 0 && line[len] == '=') {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, cap, "%s", line + len + 1);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int is_hex(const char *s, size_t len) {
    if (strlen(s) != len) return 0;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s)) return 0;
    return 1;
}

static void test_environment(void) {
    char dir[] = "/tmp/shoal-launch-env-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        failures++;
        return;
    }
    /* Inherited variables reach the ranks, but stale launcher variables are replaced. */
    setenv("LAUNCH_TEST_INHERITED", "inherited", 1);
    setenv("SHOAL_CLUSTER_KEY", "stale", 1);
    const char *extra[] = {"LAUNCH_TEST_EXTRA=first", "LAUNCH_TEST_EXTRA=extra",
                           "SHOAL_RANK=99", NULL};
    char *argv[] = {(char *)child_prog, "env", dir, NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.env = extra;
    shoal_launch *job = NULL;
    int rc = start(&cfg, 4, argv, &job);
    unsetenv("SHOAL_CLUSTER_KEY");
    if (rc != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK && status == 0);
    CHECK(strncmp(shoal_launch_master(job), "127.0.0.1:", 10) == 0);
    CHECK(atoi(shoal_launch_master(job) + 10) > 0);
    char key0[256] = "", v[256];
    for (int r = 0; r < 4; r++) {
        char want[16];
        snprintf(want, sizeof want, "%d", r);
        CHECK(env_of(dir, r, "SHOAL_RANK", v, sizeof v) == 0 && strcmp(v, want) == 0);
        CHECK(env_of(dir, r, "SHOAL_LOCAL_RANK", v, sizeof v) == 0 && strcmp(v, want) == 0);
        CHECK(env_of(dir, r, "SHOAL_WORLD_SIZE", v, sizeof v) == 0 && strcmp(v, "4") == 0);
        CHECK(env_of(dir, r, "SHOAL_LOCAL_SIZE", v, sizeof v) == 0 && strcmp(v, "4") == 0);
        CHECK(env_of(dir, r, "SHOAL_MASTER", v, sizeof v) == 0 &&
              strcmp(v, shoal_launch_master(job)) == 0);
        CHECK(env_of(dir, r, "SHOAL_GROUP_ID", v, sizeof v) == 0 &&
              strcmp(v, shoal_launch_group_id(job)) == 0 && v[0]);
        CHECK(env_of(dir, r, "SHOAL_CLUSTER_KEY", v, sizeof v) == 0 && is_hex(v, 64));
        if (r == 0) snprintf(key0, sizeof key0, "%s", v);
        CHECK(strcmp(v, key0) == 0); /* one key for the whole job */
        CHECK(env_of(dir, r, "LAUNCH_TEST_EXTRA", v, sizeof v) == 0 && strcmp(v, "extra") == 0);
        CHECK(env_of(dir, r, "LAUNCH_TEST_INHERITED", v, sizeof v) == 0 &&
              strcmp(v, "inherited") == 0);
        char path[4096];
        snprintf(path, sizeof path, "%s/env.%d", dir, r);
        unlink(path);
    }
    rmdir(dir);
    shoal_launch_free(job);

    /* Two jobs get different keys and group ids. */
    char *argv2[] = {(char *)child_prog, "exit-all", "0", NULL};
    shoal_launch_config c1 = SHOAL_LAUNCH_CONFIG_INIT, c2 = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *j1 = NULL, *j2 = NULL;
    if (start(&c1, 1, argv2, &j1) == SHOAL_OK && start(&c2, 1, argv2, &j2) == SHOAL_OK)
        CHECK(strcmp(shoal_launch_group_id(j1), shoal_launch_group_id(j2)) != 0);
    else
        failures++;
    shoal_launch_free(j1);
    shoal_launch_free(j2);
}

static void test_exec_failure(void) {
    char *missing[] = {"/nonexistent/shoal-test-program", NULL};
    char *not_in_path[] = {"shoal-test-no-such-program", NULL};
    char *not_exec[] = {"/etc/hostname", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *job = (shoal_launch *)&cfg; /* must be reset to NULL on failure */
    cfg.nranks = 3;
    cfg.argv = missing;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_NOT_FOUND);
    CHECK(job == NULL);
    CHECK(strstr(shoal_launch_start_error(), "cannot execute") != NULL);
    CHECK(strstr(shoal_launch_start_error(), "/nonexistent/shoal-test-program") != NULL);
    cfg.argv = not_in_path;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_NOT_FOUND && job == NULL);
    struct stat st;
    if (stat("/etc/hostname", &st) == 0 && !(st.st_mode & 0111) && geteuid() != 0) {
        cfg.argv = not_exec;
        CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_SYSTEM && job == NULL);
    }
}

static void test_timeout(void) {
    char *argv[] = {(char *)child_prog, "sleep", "60", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.timeout_s = 0.5;
    shoal_launch *job = NULL;
    double t0 = now();
    if (start(&cfg, 2, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == SHOAL_LAUNCH_TIMED_OUT);
    CHECK(strstr(shoal_launch_last_error(job), "timed out") != NULL);
    double dt = now() - t0;
    CHECK(dt >= 0.45 && dt < 10);
    check_all_gone(job);
    shoal_launch_free(job);
}

/* A rank that ignores SIGTERM is killed after the grace period; polling with wait_s = 0. */
static void test_terminate_escalates(void) {
    char *argv[] = {(char *)child_prog, "stubborn", "60", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.grace_s = 0.3;
    shoal_launch *job = NULL;
    if (start(&cfg, 2, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    int status = -1;
    CHECK(shoal_launch_wait(job, 0, &status) == SHOAL_ERR_TIMEOUT);
    CHECK(shoal_launch_rank_status(job, 0) == -1);
    usleep(500 * 1000); /* let the children install their SIG_IGN */
    double t0 = now();
    CHECK(shoal_launch_terminate(job) == SHOAL_OK);
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    double dt = now() - t0;
    CHECK(status == 128 + SIGTERM);
    CHECK(shoal_launch_rank_status(job, 0) == 128 + SIGKILL);
    CHECK(shoal_launch_rank_status(job, 1) == 128 + SIGKILL);
    CHECK(dt >= 0.25 && dt < 10);
    check_all_gone(job);
    shoal_launch_free(job);
}

static void test_free_kills(void) {
    char *argv[] = {(char *)child_prog, "sleep", "60", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    shoal_launch *job = NULL;
    if (start(&cfg, 3, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    pid_t pids[3];
    for (int i = 0; i < 3; i++) pids[i] = shoal_launch_pid(job, i);
    shoal_launch_free(job);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        CHECK(kill(pids[i], 0) != 0 && errno == ESRCH);
    }
}

static void test_forward_signals(void) {
    char *argv[] = {(char *)child_prog, "sleep", "60", NULL};
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    cfg.forward_signals = 1;
    shoal_launch *job = NULL, *other = NULL;
    if (start(&cfg, 2, argv, &job) != SHOAL_OK) {
        failures++;
        return;
    }
    /* Only one job may own the process's signal handlers. */
    cfg.nranks = 1;
    CHECK(shoal_launch_start(&cfg, &other) == SHOAL_ERR_INVALID && other == NULL);
    /* This process survives its own SIGTERM; the ranks get it. */
    raise(SIGTERM);
    int status = -1;
    CHECK(shoal_launch_wait(job, 30, &status) == SHOAL_OK);
    CHECK(status == 128 + SIGTERM);
    CHECK(shoal_launch_rank_status(job, 0) == 128 + SIGTERM);
    check_all_gone(job);
    shoal_launch_free(job);
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL); /* restored by free */
}

static void test_bad_config(void) {
    char *argv[] = {(char *)child_prog, "exit-all", "0", NULL};
    char *empty[] = {NULL};
    const char *bad_env[] = {"NO_EQUALS_SIGN", NULL};
    shoal_launch *job = NULL;
    shoal_launch_config cfg = SHOAL_LAUNCH_CONFIG_INIT;
    CHECK(shoal_launch_start(NULL, &job) == SHOAL_ERR_INVALID);
    cfg.argv = argv;
    cfg.nranks = 0;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID && job == NULL);
    cfg.nranks = SHOAL_LAUNCH_MAX_RANKS + 1;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID);
    cfg.nranks = 1;
    cfg.argv = empty;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID);
    cfg.argv = argv;
    cfg.env = bad_env;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID);
    CHECK(strstr(shoal_launch_start_error(), "NO_EQUALS_SIGN") != NULL);
    cfg.env = NULL;
    cfg.struct_size = 4;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID);
    cfg.struct_size = sizeof cfg;
    cfg.first_rank = 3;
    cfg.world_size = 2;
    CHECK(shoal_launch_start(&cfg, &job) == SHOAL_ERR_INVALID);
    CHECK(shoal_launch_start(&cfg, NULL) == SHOAL_ERR_INVALID);
    CHECK(shoal_launch_wait(NULL, 0, NULL) == SHOAL_ERR_INVALID);
    shoal_launch_free(NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH_TO_launch_child\n", argv[0]);
        return 2;
    }
    child_prog = argv[1];
    test_bad_config();
    test_exit_status_propagates();
    test_killed_by_signal();
    test_keep_going();
    test_success();
    test_environment();
    test_exec_failure();
    test_timeout();
    test_terminate_escalates();
    test_free_kills();
    test_forward_signals();
    if (failures) {
        fprintf(stderr, "test_launch_api: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_launch_api: all checks passed\n");
    return 0;
}
