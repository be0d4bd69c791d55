/* Logging to stderr, one line per call (a single write so lines of concurrent ranks do not
 * interleave mid-line). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/common.h"

static atomic_int log_rank = -1;
static atomic_int log_level = -2; /* -2: not read from the settings yet */

void shoal__log_set_rank(int rank) { atomic_store(&log_rank, rank); }

int shoal__log_enabled(int level) {
    int lv = atomic_load(&log_level);
    if (lv == -2) {
        long long v = SHOAL__LOG_WARN;
        if (shoal__setting_int("log_level", &v, NULL, 0) != SHOAL_OK) v = SHOAL__LOG_WARN;
        lv = (int)v;
        atomic_store(&log_level, lv);
    }
    return level <= lv;
}

void shoal__log(int level, const char *fmt, ...) {
    if (!shoal__log_enabled(level)) return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    int n;
    int rank = atomic_load(&log_rank);
    if (rank >= 0)
        n = snprintf(line, sizeof line, "shoal[rank %d] %s: ", rank, names[level & 3]);
    else
        n = snprintf(line, sizeof line, "shoal[%d] %s: ", (int)getpid(), names[level & 3]);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}
