/* Shared helpers of the model tests, on top of tests/check.h: file readers, error measures. */
#ifndef SHOAL_TESTS_MODEL_CHECK_H
#define SHOAL_TESTS_MODEL_CHECK_H

#include "../check.h" /* CHECK*, check_report, testdata_dir/path */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal.h"

/* Whole file into a malloc'd buffer (NUL-terminated); NULL on error. */
static inline char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    }
    return b;
}

static inline int write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* max |a - b| / max |b| over n values */
static inline double rel_max_err(const float *a, const float *b, size_t n) {
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > m) m = fabs(b[i]);
        if (fabs(a[i] - b[i]) > e) e = fabs(a[i] - b[i]);
    }
    return m > 0 ? e / m : e;
}

/* ||a - b|| / ||b|| */
static inline double rel_rms_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

#define TEST_DONE()                                                                           \
    do {                                                                                      \
        if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);          \
        else fprintf(stderr, "ok\n");                                                         \
        return check_failures ? 1 : 0;                                                        \
    } while (0)

#endif
