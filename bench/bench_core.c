/* The core benchmark: op dispatch overhead, a few ops, MLP training steps and GEMM,
 * on the CPU path and on every OpenCL device, one column per device. Measures, never
 * asserts. Each figure is the median of several repetitions; device work is waited for
 * (a read to the host) before a repetition's clock stops.
 * Usage: bench_core [--json FILE] [--quick] [--device NAME]  (default: every device) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "machine.h"
#include "tapegrad.h"

#define REPS 7
#define MAX_DEVICES 8
#define MAX_ROWS 24

typedef struct {
    const char *name, *unit;
    double value[MAX_DEVICES];
} row;

static row g_rows[MAX_ROWS];
static int g_nrows;

static void record(int dev_col, const char *name, const char *unit, double value) {
    int r = 0;
    while (r < g_nrows && strcmp(g_rows[r].name, name)) r++;
    if (r == g_nrows) {
        if (g_nrows == MAX_ROWS) return;
        g_rows[g_nrows++] = (row){ name, unit, { 0 } };
    }
    g_rows[r].value[dev_col] = value;
}

/* Waits for the device's queue: an in-order queue finishes everything before a read. */
static void sync_device(tg_device *dev) {
    tg_scope_begin();
    tg_item(tg_zeros(TG_F32, TG_SHAPE(1), dev));
    tg_scope_end();
}

typedef void (*body_fn)(void *ctx);

/* Median seconds per call of body over REPS repetitions of iters calls. */
static double time_per_call(tg_device *dev, body_fn body, void *ctx, int iters) {
    double t[REPS];
    body(ctx); /* warm: kernel builds, allocator cache */
    sync_device(dev);
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < iters; i++) {
            tg_scope_begin();
            body(ctx);
            tg_scope_end();
        }
        sync_device(dev);
        t[r] = (bench_now() - t0) / iters;
    }
    return bench_median(t, REPS);
}

typedef struct {
    tg_tensor *a, *b;
} pair;

static void add_body(void *c) { tg_add(((pair *)c)->a, ((pair *)c)->b); }
static void sum_body(void *c) { tg_sum(((pair *)c)->a, TG_ALL, false); }
static void lsm_body(void *c) { tg_log_softmax(((pair *)c)->a, 1); }
static void matmul_body(void *c) { tg_matmul(((pair *)c)->a, ((pair *)c)->b); }

typedef struct {
    int nlayers;
    tg_tensor *w[4], *b[4], *x, *y;
} mlp;

static void mlp_init(mlp *m, const int *sizes, int nlayers, int batch, tg_device *dev) {
    m->nlayers = nlayers;
    for (int i = 0; i < nlayers; i++) {
        m->w[i] = tg_param(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(sizes[i], sizes[i + 1]), dev), 0.1));
        m->b[i] = tg_param(tg_zeros(TG_F32, TG_SHAPE(sizes[i + 1]), dev));
    }
    m->x = tg_randn(TG_F32, TG_SHAPE(batch, sizes[0]), dev);
    m->y = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(batch), dev), sizes[nlayers] - 0.01), TG_I32);
}

/* One training step: forward, cross-entropy, backward, SGD under no-grad. */
static void mlp_step(void *ctx) {
    mlp *m = ctx;
    tg_tensor *h = m->x;
    for (int i = 0; i < m->nlayers; i++) {
        h = tg_add(tg_matmul(h, m->w[i]), m->b[i]);
        if (i + 1 < m->nlayers) h = tg_relu(h);
    }
    tg_tensor *loss = tg_cross_entropy(h, m->y);
    for (int i = 0; i < m->nlayers; i++) tg_zero_grad(m->w[i]), tg_zero_grad(m->b[i]);
    tg_backward(loss);
    bool prev = tg_set_grad_enabled(false);
    for (int i = 0; i < m->nlayers; i++) {
        tg_axpy_(m->w[i], -0.01, tg_grad(m->w[i]));
        tg_axpy_(m->b[i], -0.01, tg_grad(m->b[i]));
    }
    tg_set_grad_enabled(prev);
}

static void bench_device(int col, tg_device *dev, bool quick) {
    tg_manual_seed(0);
    bool cpu = !strcmp(tg_device_name(dev), "cpu");
    pair small = { tg_rand(TG_F32, TG_SHAPE(16), dev), tg_rand(TG_F32, TG_SHAPE(16), dev) };
    tg_param(small.a);
    record(col, "dispatch tg_add 16 elems, recording", "us/call", time_per_call(dev, add_body, &small, 20000) * 1e6);
    tg_set_requires_grad(small.a, false);
    record(col, "dispatch tg_add 16 elems, no tape", "us/call", time_per_call(dev, add_body, &small, 20000) * 1e6);
    pair big = { tg_rand(TG_F32, TG_SHAPE(1 << 24), dev), tg_rand(TG_F32, TG_SHAPE(1 << 24), dev) };
    record(col, "tg_add f32 16M", "GB/s", 12.0 * (1 << 24) / time_per_call(dev, add_body, &big, 5) / 1e9);
    record(col, "tg_sum f32 16M", "GB/s", 4.0 * (1 << 24) / time_per_call(dev, sum_body, &big, 5) / 1e9);
    pair logits = { tg_randn(TG_F32, TG_SHAPE(1024, 1000), dev), NULL };
    record(col, "tg_log_softmax 1024x1000", "us/call", time_per_call(dev, lsm_body, &logits, 20) * 1e6);
    mlp tiny, mid;
    mlp_init(&tiny, (int[]){ 16, 32, 4 }, 2, 8, dev);
    record(col, "tiny MLP 16-32-4 b8 train step", "us/step", time_per_call(dev, mlp_step, &tiny, cpu ? 2000 : 200) * 1e6);
    mlp_init(&mid, (int[]){ 784, 512, 512, 10 }, 3, 64, dev);
    record(col, "MLP 784-512-512-10 b64 train step", "us/step", time_per_call(dev, mlp_step, &mid, quick ? 5 : 30) * 1e6);
    static const char *names[] = { "matmul f32 256x256x256", "matmul f32 512x512x512", "matmul f32 1024x1024x1024",
                                   "matmul f32 2048x2048x2048" };
    for (int i = 0; i < (quick ? 2 : 4); i++) {
        int n = 256 << i;
        pair ab = { tg_randn(TG_F32, TG_SHAPE(n, n), dev), tg_randn(TG_F32, TG_SHAPE(n, n), dev) };
        int iters = n <= 256 ? 100 : n <= 512 ? 20 : n <= 1024 ? 4 : 1;
        record(col, names[i], "GFLOP/s", 2.0 * n * n * (double)n / time_per_call(dev, matmul_body, &ab, iters) / 1e9);
    }
}

static bench_machine g_machine;

static void write_json(const char *path, int ndev, tg_device **devs) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_core: cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\n  \"machine\": ");
    bench_machine_json(f, &g_machine);
    fprintf(f, ",\n  \"threads\": %d,\n  \"devices\": [", tg_get_num_threads());
    for (int d = 0; d < ndev; d++) fprintf(f, "%s\"%s\"", d ? ", " : "", tg_device_name(devs[d]));
    fprintf(f, "],\n  \"results\": [\n");
    for (int r = 0; r < g_nrows; r++) {
        fprintf(f, "    {\"name\": \"%s\", \"unit\": \"%s\", \"value\": %.6g, \"by_device\": {", g_rows[r].name,
                g_rows[r].unit, g_rows[r].value[0]);
        for (int d = 0; d < ndev; d++)
            fprintf(f, "%s\"%s\": %.6g", d ? ", " : "", tg_device_name(devs[d]), g_rows[r].value[d]);
        fprintf(f, "}}%s\n", r + 1 < g_nrows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

int main(int argc, char **argv) {
    const char *json = NULL, *only = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else {
            fprintf(stderr, "usage: %s [--json FILE] [--quick] [--device NAME]\n", argv[0]);
            return 2;
        }
    }
    tg_device *devs[MAX_DEVICES];
    int ndev = 0;
    tg_device_info info[MAX_DEVICES];
    int listed = tg_device_list(info, MAX_DEVICES);
    for (int i = 0; i < listed && i < MAX_DEVICES; i++) {
        if (only && strcmp(only, info[i].id)) continue;
        if ((devs[ndev] = tg_device_get(info[i].id))) ndev++;
        else fprintf(stderr, "bench_core: skipping %s: %s\n", info[i].id, tg_last_error());
    }
    if (!ndev) {
        fprintf(stderr, "bench_core: no device%s%s\n", only ? " named " : "", only ? only : "");
        return 1;
    }
    bench_machine_probe(&g_machine, tg_get_num_threads());
    bench_machine_print(stdout, &g_machine);
    printf("tapegrad core benchmark, %d CPU threads, median of %d\n", tg_get_num_threads(), REPS);
    for (int d = 0; d < ndev; d++) {
        tg_device_get_info(devs[d], &info[0]);
        printf("  %-10s %s\n", tg_device_name(devs[d]), info[0].name);
        tg_scope_begin();
        bench_device(d, devs[d], quick);
        tg_scope_end();
    }
    printf("\n%-40s %-8s", "benchmark", "unit");
    for (int d = 0; d < ndev; d++) printf(" %12s", tg_device_name(devs[d]));
    printf("\n");
    for (int r = 0; r < g_nrows; r++) {
        printf("%-40s %-8s", g_rows[r].name, g_rows[r].unit);
        for (int d = 0; d < ndev; d++) printf(" %12.2f", g_rows[r].value[d]);
        printf("\n");
    }
    if (json) write_json(json, ndev, devs);
    return 0;
}
