/* Shared helpers of the model tests: CHECK macros (a failure prints and the test keeps going),
 * the test data folder (SHOAL_TESTDATA, else SHOAL_TESTDATA_DEFAULT set by ctest, else
 * ../shared/testdata), and small file readers. */
#ifndef SHOAL_TESTS_MODEL_CHECK_H
#define SHOAL_TESTS_MODEL_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal.h"

static int check_failures;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

#define CHECK_RC(got, want, errtext)                                                          \
    do {                                                                                      \
        int g_ = (got), w_ = (want);                                                          \
        if (g_ != w_) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s gave %d (%s), want %d; err: %s\n",       \
                    __FILE__, __LINE__, #got, g_, shoal_status_str(g_), w_, (errtext));       \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

static inline const char *testdata_dir(void) {
    const char *d = getenv("SHOAL_TESTDATA");
    if (d && *d) return d;
    d = getenv("SHOAL_TESTDATA_DEFAULT");
    if (d && *d) return d;
    return "../shared/testdata";
}

static inline void testdata_path(char *out, size_t cap, const char *rel) {
    snprintf(out, cap, "%s/%s", testdata_dir(), rel);
}

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
