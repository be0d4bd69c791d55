/* Shared by the tokenizer tests: file helpers on top of tests/check.h. */
#ifndef SHOAL_TESTS_TOKENIZER_CHECK_H
#define SHOAL_TESTS_TOKENIZER_CHECK_H

#include "../check.h" /* CHECK*, check_report, testdata_dir/path */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shoal/tokenizer.h"

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
