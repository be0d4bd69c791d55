/* Minimal checks for the net/store unit tests: a failed check prints where and why, and the
 * test exits nonzero at the end (it keeps going so one run shows every failure). */
#ifndef SHOAL_TESTS_NET_CHECK_H
#define SHOAL_TESTS_NET_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int check_failures;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            atomic_fetch_add(&check_failures, 1);                                             \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_INT(got, want)                                                               \
    do {                                                                                      \
        long long g_ = (long long)(got), w_ = (long long)(want);                              \
        if (g_ != w_) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (got %lld, want %lld)\n", __FILE__, \
                    __LINE__, #got, #want, g_, w_);                                           \
            atomic_fetch_add(&check_failures, 1);                                             \
        }                                                                                     \
    } while (0)

/* Status check that also prints the error text the call produced. */
#define CHECK_RC(got, want, errtext)                                                          \
    do {                                                                                      \
        int g_ = (got), w_ = (want);                                                          \
        if (g_ != w_) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s gave %d (%s), want %d; err: %s\n",       \
                    __FILE__, __LINE__, #got, g_, shoal_status_str(g_), w_, (errtext));       \
            atomic_fetch_add(&check_failures, 1);                                             \
        }                                                                                     \
    } while (0)

#define CHECK_CONTAINS(text, needle)                                                          \
    do {                                                                                      \
        const char *t_ = (text);                                                              \
        if (!t_ || !strstr(t_, (needle))) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n",         \
                    __FILE__, __LINE__, t_ ? t_ : "(null)", (needle));                        \
            atomic_fetch_add(&check_failures, 1);                                             \
        }                                                                                     \
    } while (0)

static inline int check_report(const char *name) {
    int f = atomic_load(&check_failures);
    if (f) fprintf(stderr, "%s: %d check(s) failed\n", name, f);
    else fprintf(stderr, "%s: all checks passed\n", name);
    return f ? 1 : 0;
}

#endif
