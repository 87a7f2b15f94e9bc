/* Memory-bound kernels against the machine's limit: the triad bandwidth (a = b + s*c,
 * the STREAM kernel, from machine.c) on plain threads, then tg_add / tg_mul / tg_sum on
 * 16M-element f32 tensors and a Linear layer at batch 1 (VGG-16's first classifier
 * layer, 25088 -> 4096: its 411 MB weight read once a product, forward and the
 * backward's dx), each as GB/s and as a fraction of triad; and the per-call
 * time of tg_add across sizes, to show where threading starts to pay. Figures are the
 * best and the median of REPS repetitions (another process only slows a repetition).
 * Usage: bench_bandwidth [--json FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "bench_util.h"
#include "machine.h"

#define N (16 * 1024 * 1024)
#define REPS 9

typedef enum { ADD, MUL, SUM, LINEAR, LINEAR_DX } which;

/* Seconds per call: the median over REPS repetitions, the fastest in *best. */
static double op_seconds(which w, tg_tensor *x, tg_tensor *y, int iters, double *best) {
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < iters; i++) {
            tg_scope_begin();
            if (w == ADD) tg_add(x, y);
            else if (w == MUL) tg_mul(x, y);
            else if (w == SUM) tg_sum(x, TG_ALL, false);
            else if (w == LINEAR) tg_matmul(x, tg_transpose(y, 0, 1)); /* x (1, in), y = W (out, in) */
            else tg_matmul(x, y);                                      /* dy (1, out) W */
            tg_scope_end();
        }
        t[r] = (bench_now() - t0) / iters;
    }
    double med = bench_median(t, REPS);
    if (best) *best = t[0]; /* bench_median sorted t */
    return med;
}

typedef struct {
    double best, median; /* GB/s */
} gbs;

static gbs op_gbs(which w, tg_tensor *x, tg_tensor *y, double bytes, int iters) {
    double fastest, med = op_seconds(w, x, y, iters, &fastest);
    return (gbs){ bytes / fastest * 1e-9, bytes / med * 1e-9 };
}

int main(int argc, char **argv) {
    const char *json = argc > 2 && !strcmp(argv[1], "--json") ? argv[2] : NULL;
    tg_device *dev = tg_device_get(NULL);
    if (!dev) {
        fprintf(stderr, "bench_bandwidth: %s\n", tg_last_error());
        return 1;
    }
    int threads = tg_get_num_threads();
    bench_machine m;
    bench_machine_probe(&m, threads);
    bench_machine_print(stdout, &m);
    tg_tensor *x = tg_rand(TG_F32, TG_SHAPE(N), dev), *y = tg_rand(TG_F32, TG_SHAPE(N), dev);
    op_seconds(ADD, x, y, 2, NULL); /* warm the allocator cache and the pool */
    gbs add = op_gbs(ADD, x, y, 3.0 * N * 4, 5), mul = op_gbs(MUL, x, y, 3.0 * N * 4, 5),
        sum = op_gbs(SUM, x, y, 1.0 * N * 4, 5);
    bool grad = tg_set_grad_enabled(false);
    tg_tensor *w = tg_rand(TG_F32, TG_SHAPE(4096, 25088), dev), *in = tg_rand(TG_F32, TG_SHAPE(1, 25088), dev),
              *dy = tg_rand(TG_F32, TG_SHAPE(1, 4096), dev);
    double wbytes = 4096.0 * 25088 * 4;
    gbs lin = op_gbs(LINEAR, in, w, wbytes, 2), lin_dx = op_gbs(LINEAR_DX, dy, w, wbytes, 2);
    tg_set_grad_enabled(grad);
    double triad = m.triad;
    printf("memory bandwidth on %s, %d threads: best (median) of %d\n", tg_device_name(dev), threads, REPS);
    printf("  %-32s %7.1f (%5.1f) GB/s\n", "triad a = b + s*c (limit)", triad, m.triad_med);
    printf("  %-32s %7.1f (%5.1f) GB/s  %5.0f%% of triad\n", "tg_add f32 16M", add.best, add.median,
           100 * add.best / triad);
    printf("  %-32s %7.1f (%5.1f) GB/s  %5.0f%% of triad\n", "tg_mul f32 16M", mul.best, mul.median,
           100 * mul.best / triad);
    printf("  %-32s %7.1f (%5.1f) GB/s  %5.0f%% of triad\n", "tg_sum f32 16M (reads only)", sum.best, sum.median,
           100 * sum.best / triad);
    printf("  %-32s %7.1f (%5.1f) GB/s  %5.0f%% of triad\n", "linear 25088->4096 b1 (weight)", lin.best,
           lin.median, 100 * lin.best / triad);
    printf("  %-32s %7.1f (%5.1f) GB/s  %5.0f%% of triad\n", "  its backward dx = dy W", lin_dx.best,
           lin_dx.median, 100 * lin_dx.best / triad);
    printf("  tg_add per call by size (median):\n");
    int64_t sizes[] = { 16, 1024, 16384, 32768, 65536, 262144, 1048576 };
    for (int i = 0; i < 7; i++) {
        tg_tensor *a = tg_rand(TG_F32, TG_SHAPE(sizes[i]), dev), *b = tg_rand(TG_F32, TG_SHAPE(sizes[i]), dev);
        int iters = (int)(4000000 / sizes[i]) + 10;
        printf("    %8lld elements: %9.2f us\n", (long long)sizes[i], op_seconds(ADD, a, b, iters, NULL) * 1e6);
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"machine\": ");
            bench_machine_json(f, &m);
            fprintf(f, ", \"threads\": %d, \"triad_gbs\": %.2f, \"add_gbs\": %.2f, \"mul_gbs\": %.2f, "
                       "\"sum_gbs\": %.2f, \"add_median_gbs\": %.2f, \"mul_median_gbs\": %.2f, \"sum_median_gbs\": %.2f, "
                       "\"linear_b1_gbs\": %.2f, \"linear_b1_dx_gbs\": %.2f}\n",
                    threads, triad, add.best, mul.best, sum.best, add.median, mul.median, sum.median, lin.best,
                    lin_dx.best);
            fclose(f);
        }
    }
    return 0;
}
