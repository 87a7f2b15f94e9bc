/* Pooling on the CPU against memory bandwidth: GB/s of bytes a kernel must move (input
 * read once, outputs written once) for the layers CNNs use, beside tg_add on the same
 * input size (an elementwise op runs at about the machine's triad bandwidth, see
 * bench_bandwidth). Measures, never asserts. Usage: bench_pool [--quick] */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

typedef tg_tensor *(*case_fn)(tg_tensor *x, tg_tensor *aux);

static tg_tensor *c_add(tg_tensor *x, tg_tensor *aux) { return tg_add(x, aux); }
static tg_tensor *c_max2(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    return tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2 });
}
static tg_tensor *c_max2i(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    tg_tensor *i;
    return tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size = 2 }, &i);
}
static tg_tensor *c_max3v(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    return tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 3, .stride = 2, .padding = 1 });
}
static tg_tensor *c_max3(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    tg_tensor *i;
    return tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size = 3, .stride = 2, .padding = 1 }, &i);
}
static tg_tensor *c_avg2(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    return tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2 });
}
static tg_tensor *c_avg3(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    return tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 3, .stride = 1, .padding = 1 });
}
static tg_tensor *c_global(tg_tensor *x, tg_tensor *aux) {
    (void)aux;
    return tg_adaptive_avg_pool2d(x, 1, 1);
}
/* The backward of 2x2 max pooling alone: aux is a recorded y; its gradient is ones. */
static tg_tensor *c_max2_bwd(tg_tensor *x, tg_tensor *aux) {
    tg_tensor *g;
    tg_tensor *gy = tg_ones_like(aux);
    tg_autograd_grad(1, &aux, &gy, 1, &x, &g, &(tg_backward_opts){ .retain_graph = true });
    return g;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int64_t N = quick ? 4 : 16, C = 64, H = 112, W = 112, n = N * C * H * W;
    int runs = quick ? 3 : 7;
    tg_device *dev = tg_device_get("cpu");
    tg_manual_seed(1);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(N, C, H, W), dev), *x2 = tg_randn(TG_F32, TG_SHAPE(N, C, H, W), dev);
    tg_tensor *xp = tg_param(tg_clone(x));
    tg_tensor *yrec = tg_max_pool2d(xp, &(tg_max_pool2d_opts){ .kernel_size = 2 });
    double in = (double)n * 4, q = in / 4; /* bytes of x; of a 2x2-stride-2 output */
    struct {
        const char *name;
        case_fn fn;
        tg_tensor *x, *aux;
        double bytes;
    } cases[] = {
        { "tg_add (reference)", c_add, x, x2, 3 * in },
        { "max_pool2d 2x2 s2", c_max2, x, NULL, in + q },
        { "max_pool2d 2x2 s2, indices", c_max2i, x, NULL, in + q * 3 },
        { "max_pool2d 3x3 s2 p1", c_max3v, x, NULL, in + q },
        { "max_pool2d 3x3 s2 p1, indices", c_max3, x, NULL, in + q * 3 },
        { "avg_pool2d 2x2 s2", c_avg2, x, NULL, in + q },
        { "avg_pool2d 3x3 s1 p1", c_avg3, x, NULL, 2 * in },
        { "adaptive_avg_pool2d 1x1", c_global, x, NULL, in },
        { "max_pool2d 2x2 backward", c_max2_bwd, xp, yrec, in + q * 4 },
    };
    printf("pooling, f32 [%lld,%lld,%lld,%lld] (%.0f MB), %d threads, median of %d\n", (long long)N, (long long)C,
           (long long)H, (long long)W, in / 1e6, tg_get_num_threads(), runs);
    printf("%-32s %10s %10s\n", "case", "ms", "GB/s");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double t[16];
        for (int r = 0; r < runs + 1; r++) {
            tg_scope_begin();
            double t0 = bench_now();
            tg_tensor *y = cases[k].fn(cases[k].x, cases[k].aux);
            double t1 = bench_now();
            if (!y) {
                fprintf(stderr, "%s: %s\n", cases[k].name, tg_last_error());
                return 1;
            }
            if (r) t[r - 1] = t1 - t0; /* the first run warms the allocator */
            tg_scope_end();
        }
        double m = bench_median(t, runs);
        printf("%-32s %10.2f %10.1f\n", cases[k].name, m * 1e3, cases[k].bytes / m / 1e9);
    }
    return 0;
}
