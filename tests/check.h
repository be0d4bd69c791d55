/* Checks shared by the unit tests: a failed check prints where and why and the test keeps
 * going (one run shows every failure); check_report() or the caller turns the count into the
 * exit status. Also the shared test data folder: $SHOAL_TESTDATA, else
 * $SHOAL_TESTDATA_DEFAULT (set by ctest), else ../shared/testdata. Area headers
 * (tests/<area>/..._check.h) include this and add their own helpers. */
#ifndef SHOAL_TESTS_CHECK_H
#define SHOAL_TESTS_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal.h"

static atomic_int check_failures; /* atomic: some tests check from several threads */

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

/* Status check that also prints the error text the call produced. */
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

/* Prints the outcome; returns the exit status (1 when any check failed). */
static inline int check_report(const char *name) {
    int f = check_failures;
    if (f) fprintf(stderr, "%s: %d check(s) failed\n", name, f);
    else fprintf(stderr, "%s: all checks passed\n", name);
    return f ? 1 : 0;
}

static inline const char *testdata_dir(void) {
    const char *d = getenv("SHOAL_TESTDATA");
    if (d && *d) return d;
    d = getenv("SHOAL_TESTDATA_DEFAULT");
    if (d && *d) return d;
    return "../shared/testdata";
}

/* testdata_dir()/rel into buf; returns buf. */
static inline const char *testdata_path(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", testdata_dir(), rel);
    return buf;
}

#endif
