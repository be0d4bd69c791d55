/* Shared by the tokenizer tests: checks that keep going and report at the end, locating the
 * shared test data, and reading files. */
#ifndef SHOAL_TESTS_TOKENIZER_CHECK_H
#define SHOAL_TESTS_TOKENIZER_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shoal/tokenizer.h"

static int check_failures;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_INT(got, want)                                                               \
    do {                                                                                      \
        long long g_ = (long long)(got), w_ = (long long)(want);                              \
        if (g_ != w_) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (got %lld, want %lld)\n", __FILE__, \
                    __LINE__, #got, #want, g_, w_);                                           \
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

#define CHECK_CONTAINS(text, needle)                                                          \
    do {                                                                                      \
        const char *t_ = (text);                                                              \
        if (!t_ || !strstr(t_, (needle))) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n",         \
                    __FILE__, __LINE__, t_ ? t_ : "(null)", (needle));                        \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

static inline int check_report(const char *name) {
    if (check_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    else fprintf(stderr, "%s: all checks passed\n", name);
    return check_failures ? 1 : 0;
}

/* The shared test data folder: $SHOAL_TESTDATA, else $SHOAL_TESTDATA_DEFAULT (set by ctest),
 * else ../shared/testdata from the working directory. */
static inline const char *testdata_dir(void) {
    const char *d = getenv("SHOAL_TESTDATA");
    if (d && *d) return d;
    d = getenv("SHOAL_TESTDATA_DEFAULT");
    if (d && *d) return d;
    return "../shared/testdata";
}

/* testdata_dir()/rel into buf. */
static inline const char *testdata_path(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", testdata_dir(), rel);
    return buf;
}

static inline int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whole file, NUL-terminated; NULL when it cannot be read. */
static inline char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

#endif
