/* The core benchmark: op dispatch overhead, training steps of small and mid-sized MLPs,
 * and GEMM throughput through tg_matmul. Measures, never asserts. Prints a table, and
 * JSON with --json FILE. Each figure is the median of several repetitions.
 * Usage: bench_core [--json FILE] [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"
#include "bench_util.h"

#define REPS 7

typedef struct {
    char name[64];
    double value;
    const char *unit;
} result;

static result g_results[64];
static int g_nresults;

static void report(const char *name, double value, const char *unit) {
    result *r = &g_results[g_nresults++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->value = value;
    r->unit = unit;
    printf("  %-44s %12.3f %s\n", name, value, unit);
    fflush(stdout);
}

/* µs per tg_add on 16 elements; scopes end every 1000 calls, as a loop would. */
static double dispatch_us(tg_device *dev, bool record) {
    tg_tensor *a = tg_rand(TG_F32, TG_SHAPE(16), dev), *b = tg_rand(TG_F32, TG_SHAPE(16), dev);
    if (record) tg_param(a);
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < 100; i++) {
            tg_scope_begin();
            for (int j = 0; j < 1000; j++) tg_add(a, b);
            tg_scope_end();
        }
        t[r] = (bench_now() - t0) / 100000 * 1e6;
    }
    return bench_median(t, REPS);
}

typedef struct {
    int nlayers;
    tg_tensor *w[4], *b[4];
} mlp;

static mlp mlp_new(const int *sizes, int nlayers, tg_device *dev) {
    mlp m = { .nlayers = nlayers };
    for (int i = 0; i < nlayers; i++) {
        m.w[i] = tg_param(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(sizes[i], sizes[i + 1]), dev), 0.1));
        m.b[i] = tg_param(tg_zeros(TG_F32, TG_SHAPE(sizes[i + 1]), dev));
    }
    return m;
}

static void mlp_step(mlp *m, tg_tensor *x, tg_tensor *y, double lr) {
    tg_scope_begin();
    tg_tensor *h = x;
    for (int i = 0; i < m->nlayers; i++) {
        h = tg_add(tg_matmul(h, m->w[i]), m->b[i]);
        if (i + 1 < m->nlayers) h = tg_relu(h);
    }
    tg_tensor *loss = tg_cross_entropy(h, y);
    for (int i = 0; i < m->nlayers; i++) tg_zero_grad(m->w[i]), tg_zero_grad(m->b[i]);
    tg_backward(loss);
    bool prev = tg_set_grad_enabled(false);
    for (int i = 0; i < m->nlayers; i++) {
        tg_axpy_(m->w[i], -lr, tg_grad(m->w[i]));
        tg_axpy_(m->b[i], -lr, tg_grad(m->b[i]));
    }
    tg_set_grad_enabled(prev);
    tg_scope_end();
}

/* µs per training step (forward, backward, SGD). */
static double mlp_step_us(const int *sizes, int nlayers, int batch, int steps, tg_device *dev) {
    mlp m = mlp_new(sizes, nlayers, dev);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(batch, sizes[0]), dev);
    tg_tensor *y = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(batch), dev), sizes[nlayers] - 0.01), TG_I32);
    for (int i = 0; i < steps / 10 + 1; i++) mlp_step(&m, x, y, 0.01); /* warm the allocator cache */
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < steps; i++) mlp_step(&m, x, y, 0.01);
        t[r] = (bench_now() - t0) / steps * 1e6;
    }
    return bench_median(t, REPS);
}

static double gemm_gflops(int n, tg_device *dev) {
    tg_tensor *a = tg_randn(TG_F32, TG_SHAPE(n, n), dev), *b = tg_randn(TG_F32, TG_SHAPE(n, n), dev);
    int iters = n <= 256 ? 200 : n <= 512 ? 40 : n <= 1024 ? 6 : 2;
    double t[REPS];
    tg_scope_begin();
    tg_matmul(a, b);
    tg_scope_end();
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < iters; i++) {
            tg_scope_begin();
            tg_matmul(a, b);
            tg_scope_end();
        }
        t[r] = (bench_now() - t0) / iters;
    }
    return 2.0 * n * n * (double)n / bench_median(t, REPS) / 1e9;
}

static void write_json(const char *path, tg_device *dev) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_core: cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\n  \"device\": \"%s\",\n  \"threads\": %d,\n  \"results\": [\n", tg_device_name(dev), tg_get_num_threads());
    for (int i = 0; i < g_nresults; i++)
        fprintf(f, "    {\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}%s\n", g_results[i].name,
                g_results[i].value, g_results[i].unit, i + 1 < g_nresults ? "," : "");
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

int main(int argc, char **argv) {
    const char *json = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else {
            fprintf(stderr, "usage: %s [--json FILE] [--quick]\n", argv[0]);
            return 2;
        }
    }
    tg_device *dev = tg_device_get(NULL);
    if (!dev) {
        fprintf(stderr, "bench_core: %s\n", tg_last_error());
        return 1;
    }
    tg_manual_seed(0);
    printf("tapegrad core benchmark on %s, %d threads (median of %d)\n", tg_device_name(dev), tg_get_num_threads(), REPS);
    report("dispatch tg_add 16 elems, no tape", dispatch_us(dev, false), "us/call");
    report("dispatch tg_add 16 elems, recording", dispatch_us(dev, true), "us/call");
    report("tiny MLP 16-32-4 b8 train step", mlp_step_us((int[]){ 16, 32, 4 }, 2, 8, 2000, dev), "us/step");
    report("MLP 784-512-512-10 b64 train step", mlp_step_us((int[]){ 784, 512, 512, 10 }, 3, 64, quick ? 5 : 50, dev), "us/step");
    int sizes[] = { 256, 512, 1024, 2048 };
    for (int i = 0; i < (quick ? 2 : 4); i++) {
        char name[64];
        snprintf(name, sizeof name, "matmul f32 %dx%dx%d", sizes[i], sizes[i], sizes[i]);
        report(name, gemm_gflops(sizes[i], dev), "GFLOP/s");
    }
    if (json) write_json(json, dev);
    return 0;
}
