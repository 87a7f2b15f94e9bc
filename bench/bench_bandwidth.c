/* Memory-bound kernels against the machine's limit: measures triad bandwidth
 * (a = b + s*c, the STREAM kernel) with plain threads, then tg_add / tg_mul / tg_sum
 * on 16M-element f32 tensors, each reported as GB/s and as a fraction of triad; and the
 * per-call time of tg_add across sizes, to show where threading starts to pay.
 * Usage: bench_bandwidth [--json FILE] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"
#include "bench_util.h"

#define N (16 * 1024 * 1024)
#define REPS 9

typedef struct {
    float *a, *b, *c;
    long lo, hi;
} triad_part;

static void *triad_worker(void *p) {
    triad_part *t = p;
    for (long i = t->lo; i < t->hi; i++) t->a[i] = t->b[i] + 3.0f * t->c[i];
    return NULL;
}

/* GB/s of the triad on `threads` threads (3 arrays of N floats moved). */
static double triad_gbs(int threads) {
    float *a = aligned_alloc(64, N * sizeof(float)), *b = aligned_alloc(64, N * sizeof(float)),
          *c = aligned_alloc(64, N * sizeof(float));
    for (long i = 0; i < N; i++) a[i] = 0, b[i] = 1, c[i] = 2;
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        pthread_t th[16];
        triad_part parts[16];
        double t0 = bench_now();
        for (int k = 0; k < threads; k++) {
            parts[k] = (triad_part){ a, b, c, (long)N * k / threads, (long)N * (k + 1) / threads };
            pthread_create(&th[k], NULL, triad_worker, &parts[k]);
        }
        for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
        t[r] = bench_now() - t0;
    }
    free(a), free(b), free(c);
    return 3.0 * N * sizeof(float) / bench_median(t, REPS) / 1e9;
}

typedef enum { ADD, MUL, SUM } which;

static double op_seconds(which w, tg_tensor *x, tg_tensor *y, int iters) {
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < iters; i++) {
            tg_scope_begin();
            if (w == ADD) tg_add(x, y);
            else if (w == MUL) tg_mul(x, y);
            else tg_sum(x, TG_ALL, false);
            tg_scope_end();
        }
        t[r] = (bench_now() - t0) / iters;
    }
    return bench_median(t, REPS);
}

int main(int argc, char **argv) {
    const char *json = argc > 2 && !strcmp(argv[1], "--json") ? argv[2] : NULL;
    tg_device *dev = tg_device_get(NULL);
    if (!dev) {
        fprintf(stderr, "bench_bandwidth: %s\n", tg_last_error());
        return 1;
    }
    int threads = tg_get_num_threads();
    double triad = triad_gbs(threads);
    tg_tensor *x = tg_rand(TG_F32, TG_SHAPE(N), dev), *y = tg_rand(TG_F32, TG_SHAPE(N), dev);
    op_seconds(ADD, x, y, 2); /* warm the allocator cache and the pool */
    double add = 3.0 * N * 4 / op_seconds(ADD, x, y, 5) / 1e9;
    double mul = 3.0 * N * 4 / op_seconds(MUL, x, y, 5) / 1e9;
    double sum = 1.0 * N * 4 / op_seconds(SUM, x, y, 5) / 1e9;
    printf("memory bandwidth on %s, %d threads (median of %d)\n", tg_device_name(dev), threads, REPS);
    printf("  %-32s %8.1f GB/s\n", "triad a = b + s*c (limit)", triad);
    printf("  %-32s %8.1f GB/s  %5.0f%% of triad\n", "tg_add f32 16M", add, 100 * add / triad);
    printf("  %-32s %8.1f GB/s  %5.0f%% of triad\n", "tg_mul f32 16M", mul, 100 * mul / triad);
    printf("  %-32s %8.1f GB/s  %5.0f%% of triad\n", "tg_sum f32 16M (reads only)", sum, 100 * sum / triad);
    printf("  tg_add per call by size:\n");
    int64_t sizes[] = { 16, 1024, 16384, 32768, 65536, 262144, 1048576 };
    for (int i = 0; i < 7; i++) {
        tg_tensor *a = tg_rand(TG_F32, TG_SHAPE(sizes[i]), dev), *b = tg_rand(TG_F32, TG_SHAPE(sizes[i]), dev);
        int iters = (int)(4000000 / sizes[i]) + 10;
        printf("    %8lld elements: %9.2f us\n", (long long)sizes[i], op_seconds(ADD, a, b, iters) * 1e6);
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"threads\": %d, \"triad_gbs\": %.2f, \"add_gbs\": %.2f, \"mul_gbs\": %.2f, \"sum_gbs\": %.2f}\n",
                    threads, triad, add, mul, sum);
            fclose(f);
        }
    }
    return 0;
}
