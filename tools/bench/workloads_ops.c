/* The op-level workloads: square GEMMs, elementwise and reduction ops over 16M floats
 * (memory-bound: GB/s), and every distinct convolution of VGG-16 and ResNet-50 (forward,
 * batch 1 and 8, at their 224x224 geometry). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct {
    tg_tensor *a, *b, *c; /* inputs held past the scopes */
    const bench_workload *w;
} op_state;

static void op_teardown(void *p) {
    op_state *s = p;
    tg_release(s->a);
    tg_release(s->b);
    tg_release(s->c);
    free(s);
}

static op_state *op_state_new(const bench_workload *w, tg_tensor *a, tg_tensor *b, tg_tensor *c) {
    op_state *s = calloc(1, sizeof *s);
    if (!s || !a || (w->p[7] & 1 && !b) || (w->p[7] & 2 && !c)) {
        free(s);
        tg_release(a), tg_release(b), tg_release(c);
        return NULL;
    }
    *s = (op_state){ a, b, c, w };
    return s;
}

/* ---------------------------------------------------------------- GEMM: (n,n) x (n,n) */

static void *gemm_setup(const bench_workload *w, tg_device *dev) {
    int64_t n = w->p[0];
    return op_state_new(w, tg_retain(tg_rand(TG_F32, TG_SHAPE(n, n), dev)), tg_retain(tg_rand(TG_F32, TG_SHAPE(n, n), dev)),
                        NULL);
}
static bool gemm_run(void *p) {
    op_state *s = p;
    return tg_matmul(s->a, s->b) != NULL;
}

/* ---------------------------------------------------------------- elementwise and reductions */

enum { EW_ADD, EW_RELU, EW_EXP, RED_SUM, RED_SOFTMAX };

static void *ew_setup(const bench_workload *w, tg_device *dev) {
    int64_t n = w->p[0];
    tg_tensor *a = tg_retain(tg_randn(TG_F32, TG_SHAPE(n / 4096, 4096), dev));
    tg_tensor *b = w->p[1] == EW_ADD ? tg_retain(tg_randn(TG_F32, TG_SHAPE(n / 4096, 4096), dev)) : NULL;
    return op_state_new(w, a, b, NULL);
}
static bool ew_run(void *p) {
    op_state *s = p;
    switch (s->w->p[1]) {
    case EW_ADD: return tg_add(s->a, s->b) != NULL;
    case EW_RELU: return tg_relu(s->a) != NULL;
    case EW_EXP: return tg_exp(s->a) != NULL;
    case RED_SUM: return tg_sum(s->a, TG_AXES(1), false) != NULL;
    default: return tg_softmax(s->a, 1) != NULL;
    }
}

/* ---------------------------------------------------------------- convolutions */

typedef struct {
    const char *name;
    int64_t cin, cout, hw, k, stride, pad;
} conv_geom;

/* Every distinct convolution of VGG-16 (configuration D) and of torchvision's ResNet-50
 * (v1.5: the stride on the 3x3), named by their first layer. */
static const conv_geom conv_layers[] = {
    { "vgg16 conv1_1", 3, 64, 224, 3, 1, 1 },     { "vgg16 conv1_2", 64, 64, 224, 3, 1, 1 },
    { "vgg16 conv2_1", 64, 128, 112, 3, 1, 1 },   { "vgg16 conv2_2", 128, 128, 112, 3, 1, 1 },
    { "vgg16 conv3_1", 128, 256, 56, 3, 1, 1 },   { "vgg16 conv3_2", 256, 256, 56, 3, 1, 1 },
    { "vgg16 conv4_1", 256, 512, 28, 3, 1, 1 },   { "vgg16 conv4_2", 512, 512, 28, 3, 1, 1 },
    { "vgg16 conv5_1", 512, 512, 14, 3, 1, 1 },   { "resnet50 conv1", 3, 64, 224, 7, 2, 3 },
    { "resnet50 l1 1x1a", 64, 64, 56, 1, 1, 0 },  { "resnet50 l1 3x3", 64, 64, 56, 3, 1, 1 },
    { "resnet50 l1 1x1b", 64, 256, 56, 1, 1, 0 }, { "resnet50 l1 1x1c", 256, 64, 56, 1, 1, 0 },
    { "resnet50 l2 1x1a", 256, 128, 56, 1, 1, 0 }, { "resnet50 l2 3x3s2", 128, 128, 56, 3, 2, 1 },
    { "resnet50 l2 1x1b", 128, 512, 28, 1, 1, 0 }, { "resnet50 l2 down", 256, 512, 56, 1, 2, 0 },
    { "resnet50 l2 1x1c", 512, 128, 28, 1, 1, 0 }, { "resnet50 l2 3x3", 128, 128, 28, 3, 1, 1 },
    { "resnet50 l3 1x1a", 512, 256, 28, 1, 1, 0 }, { "resnet50 l3 3x3s2", 256, 256, 28, 3, 2, 1 },
    { "resnet50 l3 1x1b", 256, 1024, 14, 1, 1, 0 }, { "resnet50 l3 down", 512, 1024, 28, 1, 2, 0 },
    { "resnet50 l3 1x1c", 1024, 256, 14, 1, 1, 0 }, { "resnet50 l3 3x3", 256, 256, 14, 3, 1, 1 },
    { "resnet50 l4 1x1a", 1024, 512, 14, 1, 1, 0 }, { "resnet50 l4 3x3s2", 512, 512, 14, 3, 2, 1 },
    { "resnet50 l4 1x1b", 512, 2048, 7, 1, 1, 0 }, { "resnet50 l4 down", 1024, 2048, 14, 1, 2, 0 },
    { "resnet50 l4 1x1c", 2048, 512, 7, 1, 1, 0 }, { "resnet50 l4 3x3", 512, 512, 7, 3, 1, 1 },
};

static void *conv_setup(const bench_workload *w, tg_device *dev) {
    const conv_geom *g = &conv_layers[w->p[0]];
    int64_t batch = w->p[1];
    tg_tensor *x = tg_retain(tg_randn(TG_F32, TG_SHAPE(batch, g->cin, g->hw, g->hw), dev));
    tg_tensor *wt = tg_retain(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(g->cout, g->cin, g->k, g->k), dev), 0.05));
    return op_state_new(w, x, wt, NULL);
}
static bool conv_run(void *p) {
    op_state *s = p;
    const conv_geom *g = &conv_layers[s->w->p[0]];
    return tg_conv2d(s->a, s->b, NULL, &(tg_conv2d_opts){ .stride = g->stride, .padding = g->pad }) != NULL;
}

static double conv_flops(const conv_geom *g, int64_t batch) {
    int64_t out = (g->hw + 2 * g->pad - g->k) / g->stride + 1;
    return 2.0 * (double)batch * (double)(out * out) * (double)(g->k * g->k * g->cin * g->cout); /* H2 W2 F F D1 D2 */
}

/* ---------------------------------------------------------------- the list */

static void add(bench_workload *list, int *n, int max, bench_workload w) {
    if (*n < max) list[(*n)++] = w;
}

int bench_ops_workloads(bench_workload *list, int max) {
    int n = 0;
    static const int64_t gemm_sizes[] = { 256, 512, 1024, 2048 };
    for (int i = 0; i < 4; i++) {
        int64_t s = gemm_sizes[i];
        bench_workload w = { .group = "gemm", .work = { .flops = 2.0 * (double)(s * s * s) }, .quick = s == 512 || s == 1024,
                             .setup = gemm_setup, .run = gemm_run, .teardown = op_teardown, .p = { s, 0, 0, 0, 0, 0, 0, 1 } };
        snprintf(w.name, sizeof w.name, "gemm %lld", (long long)s);
        snprintf(w.spec, sizeof w.spec, "\"kind\": \"gemm\", \"n\": %lld", (long long)s);
        add(list, &n, max, w);
    }
    static const struct {
        const char *name, *group, *op;
        int kind, arrays; /* arrays of 4 bytes an element read or written */
    } ew[] = { { "add 16M", "elementwise", "add", EW_ADD, 3 }, { "relu 16M", "elementwise", "relu", EW_RELU, 2 },
               { "exp 16M", "elementwise", "exp", EW_EXP, 2 }, { "row sum 16M", "reduction", "sum", RED_SUM, 1 },
               { "row softmax 16M", "reduction", "softmax", RED_SOFTMAX, 2 } };
    for (int i = 0; i < 5; i++) {
        const int64_t e = 16 << 20;
        bench_workload w = { .group = ew[i].group, .work = { .bytes = 4.0 * (double)e * ew[i].arrays },
                             .quick = ew[i].kind == EW_ADD || ew[i].kind == RED_SUM, .setup = ew_setup, .run = ew_run,
                             .teardown = op_teardown, .p = { e, ew[i].kind, 0, 0, 0, 0, 0, ew[i].kind == EW_ADD } };
        snprintf(w.name, sizeof w.name, "%s", ew[i].name);
        snprintf(w.spec, sizeof w.spec, "\"kind\": \"ew\", \"op\": \"%s\", \"rows\": %lld, \"cols\": 4096", ew[i].op,
                 (long long)(e / 4096));
        add(list, &n, max, w);
    }
    for (int b = 0; b < 2; b++) {
        int64_t batch = b ? 8 : 1;
        for (int i = 0; i < (int)(sizeof conv_layers / sizeof *conv_layers); i++) {
            bench_workload w = { .group = "conv", .work = { .flops = conv_flops(&conv_layers[i], batch), .images = (double)batch },
                                 .quick = batch == 1 && (i == 3 || i == 11), .setup = conv_setup, .run = conv_run,
                                 .teardown = op_teardown, .p = { i, batch, 0, 0, 0, 0, 0, 1 } };
            const conv_geom *g = &conv_layers[i];
            snprintf(w.name, sizeof w.name, "%s b%lld", g->name, (long long)batch);
            snprintf(w.spec, sizeof w.spec,
                     "\"kind\": \"conv\", \"batch\": %lld, \"cin\": %lld, \"cout\": %lld, \"hw\": %lld, \"k\": %lld, "
                     "\"stride\": %lld, \"pad\": %lld",
                     (long long)batch, (long long)g->cin, (long long)g->cout, (long long)g->hw, (long long)g->k,
                     (long long)g->stride, (long long)g->pad);
            add(list, &n, max, w);
        }
    }
    return n;
}
