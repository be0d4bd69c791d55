/* Standalone driver for the fuzz targets when libFuzzer is not used (gcc, plain ctest runs).
 *
 *   fuzz_<target> CORPUS_DIR
 *
 * Replays every file in CORPUS_DIR through LLVMFuzzerTestOneInput, then runs a bounded number
 * of deterministic mutations of the corpus entries (SHOAL_FUZZ_RUNS, default 20000;
 * SHOAL_FUZZ_SEED, default 1): bit flips, byte overwrites, truncations, byte insertions,
 * overwrites of 2/4/8-byte fields with boundary values (the length fields are where parsers
 * break), and splices of two entries. Every input lives in its own exactly-sized allocation so
 * a sanitizer catches any read past its end. A crash or sanitizer report is the failure; a
 * clean exit is success. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILE (1u << 20) /* corpus files above this are skipped */
#define MAX_INSERT 16

typedef struct input {
    uint8_t *data;
    size_t size;
} input;

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64: deterministic for a given seed */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int read_file(const char *path, input *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t *buf = malloc(MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n > MAX_FILE) {
        free(buf);
        return -1;
    }
    out->data = malloc(n ? n : 1);
    if (!out->data) {
        free(buf);
        return -1;
    }
    memcpy(out->data, buf, n);
    out->size = n;
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads the corpus in name order, so a run is reproducible from its seed. */
static size_t load_corpus(const char *dir, input **out) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz: cannot open corpus directory %s\n", dir);
        return 0;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 16;
            char **n2 = realloc(names, cap * sizeof *n2);
            if (!n2) break;
            names = n2;
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_str);
    input *in = calloc(nn ? nn : 1, sizeof *in);
    size_t count = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (in && stat(path, &st) == 0 && S_ISREG(st.st_mode) && read_file(path, &in[count]) == 0)
            count++;
        free(names[i]);
    }
    free(names);
    *out = in;
    return count;
}

static const uint64_t interesting[] = {
    0, 1, 2, 7, 8, 15, 16, 23, 24, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0xffff,
    0x10000, 0x7fffffff, 0x80000000u, 0xffffffffu, 0x100000000ull, 1ull << 40,
    0x7fffffffffffffffull, 0xffffffffffffffffull,
};

/* Writes v little-endian in width bytes at a random offset. */
static void put_field(uint8_t *b, size_t len, uint64_t v) {
    static const size_t widths[] = {1, 2, 4, 8};
    size_t w = widths[rng() % 4];
    if (len < w) return;
    size_t off = (size_t)(rng() % (len - w + 1));
    if (rng() & 1) off &= ~(w - 1); /* fields in our formats are mostly aligned */
    for (size_t i = 0; i < w; i++) b[off + i] = (uint8_t)(v >> (8 * i));
}

/* One mutation of b[0..*len) in place; cap is the buffer's size. */
static void mutate_once(uint8_t *b, size_t *len, size_t cap, const input *corpus, size_t n) {
    size_t l = *len;
    switch (rng() % 7) {
    case 0: /* bit flip */
        if (l) b[rng() % l] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 1: /* random byte */
        if (l) b[rng() % l] = (uint8_t)rng();
        break;
    case 2: /* truncation */
        *len = l ? (size_t)(rng() % (l + 1)) : 0;
        break;
    case 3: { /* insertion of 1..MAX_INSERT bytes */
        size_t k = 1 + (size_t)(rng() % MAX_INSERT);
        if (l + k > cap) break;
        size_t pos = (size_t)(rng() % (l + 1));
        memmove(b + pos + k, b + pos, l - pos);
        for (size_t i = 0; i < k; i++) b[pos + i] = (uint8_t)rng();
        *len = l + k;
        break;
    }
    case 4: /* a boundary value in a length-sized field */
    case 5: {
        uint64_t v = interesting[rng() % (sizeof interesting / sizeof interesting[0])];
        if (rng() % 3 == 0) v = (uint64_t)l + (uint64_t)(rng() % 48) - 24; /* near the size */
        put_field(b, l, v);
        break;
    }
    case 6: { /* splice: the head of this input, the tail of another */
        if (!n) break;
        const input *o = &corpus[rng() % n];
        size_t cut = l ? (size_t)(rng() % (l + 1)) : 0;
        size_t from = o->size ? (size_t)(rng() % o->size) : 0;
        size_t k = o->size - from;
        if (cut + k > cap) k = cap - cut;
        memcpy(b + cut, o->data + from, k);
        *len = cut + k;
        break;
    }
    }
}

static void run_one(const uint8_t *data, size_t size) {
    uint8_t *exact = malloc(size ? size : 1); /* exactly sized: overreads hit the redzone */
    if (!exact) return;
    if (size) memcpy(exact, data, size);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
}

static unsigned long env_ul(const char *name, unsigned long def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end ? def : x;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    input *corpus = NULL;
    size_t n = load_corpus(argv[1], &corpus);
    for (size_t i = 0; i < n; i++) run_one(corpus[i].data, corpus[i].size);

    unsigned long runs = env_ul("SHOAL_FUZZ_RUNS", 20000);
    rng_state = env_ul("SHOAL_FUZZ_SEED", 1);
    size_t maxlen = 0;
    for (size_t i = 0; i < n; i++)
        if (corpus[i].size > maxlen) maxlen = corpus[i].size;
    size_t cap = maxlen * 2 + 4 * MAX_INSERT + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) return 1;
    for (unsigned long r = 0; r < runs; r++) {
        size_t len = 0;
        if (n) {
            const input *base = &corpus[rng() % n];
            memcpy(buf, base->data, base->size);
            len = base->size;
        }
        int k = 1 + (int)(rng() % 4);
        for (int m = 0; m < k; m++) mutate_once(buf, &len, cap, corpus, n);
        run_one(buf, len);
    }
    fprintf(stderr, "%s: replayed %zu corpus files and %lu mutations, no crash\n", argv[0], n,
            runs);
    for (size_t i = 0; i < n; i++) free(corpus[i].data);
    free(corpus);
    free(buf);
    return n ? 0 : 1; /* an empty or missing corpus is a broken setup, not a pass */
}
