/* Results that must not depend on thread timing or on the thread count: conv2d's weight
 * gradient bitwise the same over repeated calls and for 1, 2, 3 and 4 threads on shapes
 * that reach each of its paths (chunks summed in slots, blocks of dw's columns, the
 * channel lanes, the direct tiles, 1x1 read in place, depthwise, groups), f32 and f64,
 * under AUTO and every algorithm forced; and a few training steps of a small CNN (conv,
 * batch norm, relu, max pool, linear, Adam) giving bitwise the same parameters on 1 and
 * 2 threads. The pool takes more threads than there are cores, so 3 and 4 run here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tapegrad/nn.h"
#include "tapegrad/optim.h"
#include "lib/cpu/conv/conv.h"

static uint64_t g_rng = 0x2545F4914F6CDD1Du;
static double rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 - 1.0;
}

typedef struct {
    const char *name;
    int64_t N, C, H, OC, K, stride, pad, groups;
} wshape;

/* What each reaches under AUTO with the AVX-512 kernels (the slots: 2, or 4 where each
 * is worth 4 * 16 384 flops a value of dw); a CPU without them takes the
 * packed GEMM for all but depthwise, still a sum whose order must be fixed. */
static const wshape k_shapes[] = {
    { "chunks in slots (M 80)", 16, 8, 20, 80, 3, 1, 1, 1 },
    { "chunks in 4 slots", 32, 4, 34, 80, 3, 1, 1, 1 },
    { "chunks, stride 2", 8, 16, 21, 72, 3, 2, 1, 1 },
    { "1x1 stride 2 (im2col)", 4, 24, 14, 96, 1, 2, 0, 1 },
    { "channel blocks (batch 1)", 1, 64, 14, 80, 3, 1, 1, 1 },
    { "lanes 16>32", 4, 16, 16, 32, 3, 1, 1, 1 },
    { "lanes 32>64 stride 2", 4, 32, 16, 64, 3, 2, 1, 1 },
    { "lanes in 4 slots", 32, 8, 34, 32, 3, 1, 1, 1 },
    { "lanes 5x5 16>32 (the notes)", 8, 16, 14, 32, 5, 1, 2, 1 },
    { "lanes batch 1 rows", 1, 16, 40, 64, 3, 1, 1, 1 },
    { "direct tiles (M 40)", 8, 8, 16, 40, 3, 1, 1, 1 },
    { "1x1 in place, batch 2", 2, 32, 12, 48, 1, 1, 0, 1 },
    { "1x1 in place, batch 8", 8, 32, 12, 48, 1, 1, 0, 1 },
    { "depthwise x2", 4, 8, 12, 16, 3, 1, 1, 8 },
    { "groups 2", 4, 16, 12, 32, 3, 1, 1, 2 },
    { "groups 4 (M 24)", 4, 32, 10, 96, 3, 1, 1, 4 },
};
#define NSHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])

static tg_conv2d_geom geom_of(const wshape *s)
{
    tg_conv2d_geom g = { s->N, s->C, s->H, s->H, s->OC, s->K, s->K, 0, 0,
                         { s->stride, s->stride }, { s->pad, s->pad }, { 1, 1 }, s->groups };
    g.OH = (g.H + 2 * g.pad[0] - (g.KH - 1) - 1) / g.stride[0] + 1;
    g.OW = (g.W + 2 * g.pad[1] - (g.KW - 1) - 1) / g.stride[1] + 1;
    return g;
}

/* dw of g for dtype f64 (or f32) and the current algorithm and thread count. */
static int wgrad(int f64, const tg_conv2d_geom *g, const double *dout, const double *x, void *dw,
                 int64_t nout, int64_t nx)
{
    if (f64)
        return tg_cpu_conv2d_backward_weight_f64(dw, dout, x, g) == TG_OK;
    float *o = malloc((size_t)nout * sizeof *o), *xf = malloc((size_t)nx * sizeof *xf);
    for (int64_t i = 0; i < nout; i++)
        o[i] = (float)dout[i];
    for (int64_t i = 0; i < nx; i++)
        xf[i] = (float)x[i];
    int ok = tg_cpu_conv2d_backward_weight_f32(dw, o, xf, g) == TG_OK;
    free(o), free(xf);
    return ok;
}

/* Every shape, dtype and algorithm: the reference on one thread, then 5 calls on 2
 * threads and 2 calls on 1, 3 and 4, all bitwise equal to it. */
TEST(conv2d_weight_gradient_bitwise_stable)
{
    static const tg_conv_algo algos[] = { TG_CONV_AUTO, TG_CONV_IMPLICIT, TG_CONV_COL, TG_CONV_DIRECT,
                                          TG_CONV_LANES };
    static const int threads[] = { 2, 1, 3, 4 };
    for (int si = 0; si < NSHAPES; si++) {
        tg_conv2d_geom g = geom_of(&k_shapes[si]);
        int64_t nx = g.N * g.C * g.H * g.W, nout = g.N * g.OC * g.OH * g.OW;
        int64_t nw = g.OC * (g.C / g.groups) * g.KH * g.KW;
        double *x = malloc((size_t)nx * sizeof *x), *dout = malloc((size_t)nout * sizeof *dout);
        for (int64_t i = 0; i < nx; i++)
            x[i] = rnd();
        for (int64_t i = 0; i < nout; i++)
            dout[i] = rnd();
        for (int f64 = 0; f64 < 2; f64++)
            for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
                size_t bytes = (size_t)nw * (f64 ? sizeof(double) : sizeof(float));
                char *ref = malloc(bytes), *got = malloc(bytes);
                tg_cpu_conv_set_algo(algos[a]);
                tg_set_num_threads(1);
                CHECK(wgrad(f64, &g, dout, x, ref, nout, nx));
                for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                    tg_set_num_threads(threads[t]);
                    for (int rep = 0; rep < (threads[t] == 2 ? 5 : 2); rep++) {
                        memset(got, 0x55, bytes);
                        CHECK(wgrad(f64, &g, dout, x, got, nout, nx));
                        if (memcmp(ref, got, bytes) != 0) {
                            FAIL_("%s %s algo %d: %d threads, call %d differs from 1 thread",
                                  k_shapes[si].name, f64 ? "f64" : "f32", (int)algos[a], threads[t], rep);
                            break;
                        }
                    }
                }
                free(ref), free(got);
            }
        free(x), free(dout);
    }
    tg_cpu_conv_set_algo(TG_CONV_AUTO);
    tg_set_num_threads(2);
}

/* The parameters (as doubles, bit for bit) after `steps` Adam steps of a small CNN on
 * fixed data, on `threads` threads; *n their count. Caller frees. */
static double *train_cnn(int threads, int steps, int64_t *n)
{
    tg_set_num_threads(threads);
    tg_manual_seed(1234);
    tg_device *dev = tg_device_get("cpu");
    tg_module *net = tg_sequential(
        tg_conv2d_new(3, 16, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev), tg_batchnorm2d_new(16, NULL, dev),
        tg_relu_new(), tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }),
        tg_conv2d_new(16, 80, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev), tg_batchnorm2d_new(80, NULL, dev),
        tg_relu_new(), tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }),
        tg_conv2d_new(80, 32, 1, NULL, dev), tg_relu_new(),
        tg_flatten_new(1, -1), tg_linear_new(32 * 4 * 4, 10, NULL, dev));
    tg_named p = { 0 };
    double *out = NULL;
    *n = 0;
    if (!net || tg_module_parameters(net, true, &p) != TG_OK)
        goto done;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, &(tg_adam_opts){ .lr = TG_SOME(1e-2) });
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(16, 3, 16, 16), dev);
    tg_tensor *y = tg_randn(TG_F32, TG_SHAPE(16, 10), dev);
    for (int s = 0; opt && x && y && s < steps; s++) {
        tg_scope_begin();
        tg_optim_zero_grad(opt);
        tg_tensor *loss = tg_mean(tg_square(tg_sub(tg_module_forward(net, x), y)), TG_ALL, false);
        tg_status st = loss ? tg_backward(loss) : TG_ERR_INVALID;
        if (st == TG_OK)
            st = tg_optim_step(opt);
        tg_scope_end();
        if (st != TG_OK)
            goto freeopt;
    }
    for (int i = 0; i < p.n; i++)
        *n += tg_numel(p.tensors[i]);
    out = malloc((size_t)*n * sizeof *out);
    for (int i = 0, at = 0; out && i < p.n; i++) {
        double *v = tg_test_values(p.tensors[i]);
        memcpy(out + at, v, (size_t)tg_numel(p.tensors[i]) * sizeof *v);
        at += (int)tg_numel(p.tensors[i]);
        free(v);
    }
freeopt:
    tg_optim_free(opt);
done:
    tg_named_free(&p);
    tg_module_free(net);
    tg_set_num_threads(2);
    return out;
}

TEST(cnn_training_same_on_1_and_2_threads)
{
    int64_t n1, n2, n2b;
    double *a = train_cnn(1, 4, &n1), *b = train_cnn(2, 4, &n2), *c = train_cnn(2, 4, &n2b);
    CHECK(a && b && c && n1 == n2 && n2 == n2b && n1 > 0);
    if (a && b && c && n1 == n2 && n2 == n2b) {
        CHECK(memcmp(b, c, (size_t)n1 * sizeof *a) == 0); /* run to run on 2 threads */
        CHECK(memcmp(a, b, (size_t)n1 * sizeof *a) == 0); /* 1 against 2 threads */
    }
    free(a), free(b), free(c);
}

TG_TEST_MAIN(&tg_case_conv2d_weight_gradient_bitwise_stable, &tg_case_cnn_training_same_on_1_and_2_threads)
