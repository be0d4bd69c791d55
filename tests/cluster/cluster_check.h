/* CHECK macros of the cluster tests (a failure prints and the test goes on; main returns 1
 * when any failed) and the test data folder (SHOAL_TESTDATA, else SHOAL_TESTDATA_DEFAULT set
 * by ctest, else ../shared/testdata). */
#ifndef SHOAL_TESTS_CLUSTER_CHECK_H
#define SHOAL_TESTS_CLUSTER_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal.h"

static int check_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                        \
        }                                                                            \
    } while (0)

#define CHECK_RC(got, want, errtext)                                                        \
    do {                                                                                    \
        int g_ = (got), w_ = (want);                                                        \
        if (g_ != w_) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s gave %d (%s), want %d; err: %s\n",     \
                    __FILE__, __LINE__, #got, g_, shoal_status_str(g_), w_, (errtext));     \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

static inline const char *testdata_dir(void) {
    const char *d = getenv("SHOAL_TESTDATA");
    if (d && *d) return d;
    d = getenv("SHOAL_TESTDATA_DEFAULT");
    if (d && *d) return d;
    return "../shared/testdata";
}

#endif
