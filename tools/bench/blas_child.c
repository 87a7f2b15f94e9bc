/* The system BLAS peer, run as a child process (tapegrad-bench --blas-child) so that
 * OpenBLAS reads the environment the parent chose for it when it loads: cblas_sgemm on
 * square f32 matrices, median of samples within the time budget, and the kernel OpenBLAS
 * picked (openblas_get_corename) in the note. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peers.h"

#ifdef TG_BENCH_BLAS
#include <cblas.h>

char *openblas_get_corename(void); /* declared differently across OpenBLAS versions */
void openblas_set_num_threads(int n);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void time_sgemm(int n, double budget, bool last) {
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b), *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double s[BENCH_MAX_SAMPLES], spent = 0;
    int k = 0;
    for (int r = -1; k < BENCH_MAX_SAMPLES && (k < 5 || spent < budget); r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now_s() - t0;
        if (r >= 0) s[k++] = t, spent += t;
    }
    qsort(s, (size_t)k, sizeof *s, cmp_double);
    printf("  {\"workload\": \"gemm %d\", \"samples\": %d, \"median_s\": %.6g, \"min_s\": %.6g, \"max_s\": %.6g}%s\n", n, k,
           k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]), s[0], s[k - 1], last ? "" : ",");
    free(a), free(b), free(c);
}

int bench_blas_child(int argc, char **argv) {
    if (argc < 3) return 2;
    double budget = atof(argv[1]);
    openblas_set_num_threads(atoi(argv[2]));
    printf("{\"target\": \"openblas\", \"core\": \"%s\", \"note\": \"OpenBLAS kernel %s, %s threads\", \"results\": [\n",
           openblas_get_corename(), openblas_get_corename(), argv[2]);
    int sizes[16], n = 0;
    for (const char *p = argv[0]; *p && n < 16; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
        sizes[n++] = atoi(p);
    for (int i = 0; i < n; i++) time_sgemm(sizes[i], budget, i + 1 == n);
    printf("]}\n");
    return 0;
}
#else
int bench_blas_child(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("{\"target\": \"openblas\", \"note\": \"built without a system BLAS\", \"results\": []}\n");
    return 0;
}
#endif
