/* Matmul micro-benchmark of the CPU backend, for comparing kernel variants:
 *
 *   bench_matmul [-d dtype] [-r rows] [-c cols] [-n tokens] [-t threads] [-m MiB] [-i reps]
 *
 * Multiplies n activation rows with `copies` weight matrices [rows][cols] of one dtype
 * (f32 f16 bf16 q8_0 q4_0 q4_k q6_k), where copies is enough to cover -m MiB of weights
 * (default 1024 MiB: far beyond the caches, as decode reads the weights from memory; -m 0 uses
 * one matrix, which then stays in cache: compute throughput alone). Prints the median over
 * reps of one pass over all copies: time, weight GB/s, and tokens/s of the pass (n / time
 * scaled to the copies). The kernel set is the backend's choice (SHOAL_CPU_ISA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/backend.h"
#include "model/dtype.h"
#include "model/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *dname = "q4_0";
    int rows = 5632, cols = 2048, n = 1, threads = 1, reps = 15;
    double mib = 1024;
    int o;
    while ((o = getopt(argc, argv, "d:r:c:n:t:m:i:")) != -1) {
        switch (o) {
        case 'd': dname = optarg; break;
        case 'r': rows = atoi(optarg); break;
        case 'c': cols = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'm': mib = atof(optarg); break;
        case 'i': reps = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-d dtype] [-r rows] [-c cols] [-n tokens] [-t threads] [-m MiB] [-i reps]\n", argv[0]);
            return 2;
        }
    }
    static const struct { const char *name; int id; } names[] = {
        {"f32", SHOAL_WTYPE_F32}, {"f16", SHOAL_WTYPE_F16}, {"bf16", SHOAL_WTYPE_BF16}, {"q8_0", SHOAL_WTYPE_Q8_0},
        {"q4_0", SHOAL_WTYPE_Q4_0}, {"q4_k", SHOAL_WTYPE_Q4_K}, {"q6_k", SHOAL_WTYPE_Q6_K}};
    int dt = -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(dname, names[i].name) == 0) dt = names[i].id;
    if (dt < 0 || rows < 1 || cols < 1 || n < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    size_t row_bytes = shoal__dtype_bytes(dt, (uint64_t)cols);
    if (row_bytes == UINT64_MAX) {
        fprintf(stderr, "cols %d is not a multiple of %s's block\n", cols, dname);
        return 2;
    }
    size_t mat = row_bytes * rows;
    int copies = mib > 0 ? (int)(mib * (1 << 20) / mat) : 1;
    if (copies < 1) copies = 1;

    float *xrow = malloc(sizeof(float) * cols);
    char *w = malloc(mat * copies);
    float *x = malloc(sizeof(float) * cols * n), *y = malloc(sizeof(float) * rows * n);
    if (!xrow || !w || !x || !y) return 1;
    unsigned s = 1;
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) xrow[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;
        shoal__quantize_row(dt, xrow, w + (size_t)r * row_bytes, cols);
    }
    for (int c = 1; c < copies; c++) memcpy(w + c * mat, w, mat);
    for (size_t i = 0; i < (size_t)cols * n; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;

    void *ctx;
    char err[256];
    if (shoal__backend_cpu.create(threads, &ctx, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    shoal__weight *ws = malloc(sizeof *ws * copies);
    for (int c = 0; c < copies; c++) ws[c] = (shoal__weight){dt, rows, cols, row_bytes, w + c * mat};
    double *t = malloc(sizeof(double) * reps);
    for (int rep = -1; rep < reps; rep++) {
        double t0 = now();
        for (int c = 0; c < copies; c++) shoal__backend_cpu.matmul(ctx, &ws[c], x, n, y);
        if (rep >= 0) t[rep] = now() - t0;
    }
    qsort(t, reps, sizeof *t, cmp);
    double med = t[reps / 2];
    printf("%-5s %s %5dx%-5d n=%-3d thr=%d copies=%-4d median %8.3f ms (min %8.3f)  %6.2f GB/s  %8.1f tok/s/matrix  %.1f GMAC/s\n",
           dname, shoal__backend_cpu.describe(ctx), rows, cols, n, threads, copies, med * 1e3, t[0] * 1e3,
           mat * copies / med / 1e9, n * copies / med, (double)rows * cols * n * copies / med / 1e9);
    shoal__backend_cpu.destroy(ctx);
    return 0;
}
