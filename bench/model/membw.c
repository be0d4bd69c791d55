/* memcpy bandwidth, the roofline reference of bench_model.sh: copies a 256 MiB buffer
 * (far larger than the caches) several times with `threads` threads and prints the best
 * read bandwidth in GB/s (bytes read per second; a copy also writes as many).
 * Usage: membw [THREADS [MiB]] — a smaller buffer, copied again and again, shows where the
 * caches end (the bound of the large shared-memory collectives, bench/README.md). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


typedef struct job { char *src, *dst; size_t n; } job;

static void *run(void *a) {
    job *j = a;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) threads = 1;
    long mib = argc > 2 ? atol(argv[2]) : 256;
    if (mib < 1 || mib > 65536) mib = 256;
    size_t SIZE = (size_t)mib << 20;
    int reps = (int)(4096 / mib) < 5 ? 5 : (int)(4096 / mib); /* about 4 GiB copied */
    char *src = malloc(SIZE), *dst = malloc(SIZE);
    if (!src || !dst) return 1;
    memset(src, 1, SIZE);
    memset(dst, 2, SIZE);
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        pthread_t t[64];
        job j[64];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            j[i] = (job){src + (size_t)i * (SIZE / threads), dst + (size_t)i * (SIZE / threads), SIZE / threads};
            pthread_create(&t[i], NULL, run, &j[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double gbs = SIZE / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("%.2f\n", best);
    return 0;
}
