/* Checked parsing of option values: a typo is an error with the option's name, never a
 * silent 0. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "bench_sweep.h"
#include "cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "shoal %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'shoal %s --help')\n", cmd);
    return -1;
}

int cli_parse_int(const char *cmd, const char *opt, const char *text, long min, long max,
                  int *out) {
    char *end = NULL;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || errno || end == text || *end || v < min || v > max)
        return cli_usage_error(cmd, "%s needs an integer in %ld..%ld, not '%s'", opt, min, max,
                               text ? text : "");
    *out = (int)v;
    return 0;
}

int cli_parse_seconds(const char *cmd, const char *opt, const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || errno || end == text || *end || !isfinite(v) || v < 0)
        return cli_usage_error(cmd, "%s needs a number of seconds >= 0, not '%s'", opt,
                               text ? text : "");
    *out = v;
    return 0;
}

int cli_parse_size(const char *cmd, const char *opt, const char *text, uint64_t *out) {
    if (bench_parse_size(text, out) != 0 || *out == 0)
        return cli_usage_error(cmd, "%s needs a size such as 8, 4K, 64M or 1G, not '%s'", opt,
                               text ? text : "");
    return 0;
}
