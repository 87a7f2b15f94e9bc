/* conv2d's epilogue (tg_conv2d_opts.bn, .residual, .relu: relu(bn_eval(conv2d(x) + bias)
 * + residual)): with no gradient recorded the CPU runs it in the convolution's output
 * pass, and the result must be bitwise the composition tg_batch_norm (eval, with its own
 * residual and relu) or tg_add and tg_relu, over geometries that reach every CPU path
 * (the channels-in-lanes kernel at stride 1 and 2, the rows kernel of first layers, the
 * packed GEMM, Winograd's F(2x2, 3x3), 1x1, depthwise, groups, unbatched input), f32 and f64, with and without
 * the conv's bias, the batch norm's affine parameters, the residual and the relu. While
 * a gradient is recorded it is the composition, gradients included (gradcheck in f64).
 * The errors a user can make, with their messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lib/nn/module-impl.h"
#include "tapegrad/models.h"

static tg_device *dev(void) { return tg_test_device(); }

static char g_what[200];
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

static double max_diff(tg_tensor *a, tg_tensor *b) {
    if (!a || !b) return INFINITY;
    return tg_item(tg_max(tg_abs(tg_sub(tg_cast(a, TG_F64), tg_cast(b, TG_F64))), TG_ALL, false));
}

#define CHECK_SAME(a, b)                                                                       \
    do {                                                                                       \
        double d_ = max_diff((a), (b));                                                        \
        if (d_ != 0) FAIL_("[%s] %s and %s differ by %g (%s)", g_what, #a, #b, d_, tg_last_error()); \
    } while (0)

/* One geometry: N (0: unbatched), C, H, W, OC, kernel, stride, padding, groups. */
typedef struct {
    int64_t N, C, H, W, OC, k, s, p, groups;
} geo;

static const geo k_geos[] = {
    { 2, 16, 8, 8, 16, 3, 1, 1, 1 },   /* channels in lanes */
    { 2, 16, 9, 9, 32, 3, 2, 1, 1 },   /* channels in lanes, stride 2 */
    { 2, 32, 6, 6, 64, 3, 1, 1, 1 },   /* 64 lanes */
    { 2, 3, 10, 10, 16, 3, 1, 1, 1 },  /* a first layer: positions in lanes */
    { 1, 1, 12, 12, 16, 5, 1, 2, 1 },  /* the notes' first conv */
    { 2, 72, 7, 7, 96, 3, 1, 1, 1 },   /* the packed GEMM */
    { 2, 64, 5, 5, 40, 1, 1, 0, 1 },   /* 1x1 */
    { 2, 24, 6, 6, 24, 3, 1, 1, 24 },  /* depthwise */
    { 2, 8, 7, 7, 12, 3, 2, 0, 4 },    /* groups, no padding */
    { 0, 16, 8, 8, 16, 3, 1, 1, 1 },   /* unbatched */
    { 2, 128, 7, 8, 136, 3, 1, 1, 1 }, /* Winograd's F(2x2, 3x3): odd rows, a partial panel of channels */
};
#define NGEOS ((int)(sizeof k_geos / sizeof k_geos[0]))

typedef struct {
    tg_tensor *x, *w, *b, *rm, *rv, *bw, *bb, *z;
    tg_conv2d_opts o;
} problem;

/* Random tensors for g; parts (bit 0 conv bias, 1 batch norm, 2 its weight and bias,
 * 3 residual, 4 relu) choose the epilogue. */
static problem make(const geo *g, tg_dtype d, int parts) {
    problem p = { 0 };
    int64_t OH = (g->H + 2 * g->p - g->k) / g->s + 1, OW = (g->W + 2 * g->p - g->k) / g->s + 1;
    p.x = g->N ? tg_randn(d, TG_SHAPE(g->N, g->C, g->H, g->W), dev()) : tg_randn(d, TG_SHAPE(g->C, g->H, g->W), dev());
    p.w = tg_mul(tg_randn(d, TG_SHAPE(g->OC, g->C / g->groups, g->k, g->k), dev()), tg_scalar(d, 0.3, dev()));
    if (parts & 1) p.b = tg_randn(d, TG_SHAPE(g->OC), dev());
    if (parts & 2) {
        p.rm = tg_randn(d, TG_SHAPE(g->OC), dev());
        p.rv = tg_add(tg_rand(d, TG_SHAPE(g->OC), dev()), tg_scalar(d, 0.5, dev()));
    }
    if (parts & 4) p.bw = tg_randn(d, TG_SHAPE(g->OC), dev()), p.bb = tg_randn(d, TG_SHAPE(g->OC), dev());
    if (parts & 8)
        p.z = g->N ? tg_randn(d, TG_SHAPE(g->N, g->OC, OH, OW), dev()) : tg_randn(d, TG_SHAPE(g->OC, OH, OW), dev());
    p.o = (tg_conv2d_opts){ .stride = g->s, .padding = g->p, .groups = g->groups, .residual = p.z,
                            .relu = (parts & 16) != 0 };
    if (parts & 2) {
        p.o.bn.running_mean = p.rm, p.o.bn.running_var = p.rv, p.o.bn.eps = (tg_opt_f64)TG_SOME(1e-3);
        if (parts & 4) p.o.bn.weight = p.bw, p.o.bn.bias = p.bb;
    }
    return p;
}

/* The composition the epilogue stands for, from the public ops. */
static tg_tensor *composed(const problem *p, tg_tensor *x, tg_tensor *w) {
    tg_conv2d_opts plain = { .stride = p->o.stride, .padding = p->o.padding, .groups = p->o.groups };
    tg_tensor *y = tg_conv2d(x, w, p->b, &plain);
    if (p->rm) {
        bool unb = tg_ndim(y) == 3;
        tg_tensor *y4 = unb ? tg_unsqueeze(y, 0) : y, *z4 = p->z && unb ? tg_unsqueeze(p->z, 0) : p->z;
        y4 = tg_batch_norm(y4, p->rm, p->rv, p->o.bn.weight, p->o.bn.bias,
                           &(tg_batch_norm_opts){ .eps = TG_SOME(1e-3), .relu = p->o.relu, .residual = z4 });
        return unb ? tg_squeeze(y4, 0) : y4;
    }
    if (p->z) y = tg_add(y, p->z);
    return p->o.relu ? tg_relu(y) : y;
}

TEST(fused_matches_composition) {
    int cut = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int gi = 0; gi < NGEOS; gi++)
            for (int parts = 0; parts < 32; parts++) {
                if ((parts & 4) && !(parts & 2)) continue; /* affine parameters need the batch norm */
                if (!(parts & 26)) continue;              /* no epilogue */
                tg_dtype d = dt ? TG_F64 : TG_F32;
                WHAT("%s geometry %d parts %d", tg_dtype_name(d), gi, parts);
                tg_manual_seed(100 + gi * 32 + parts);
                tg_scope_begin();
                problem p = make(&k_geos[gi], d, parts);
                bool prev = tg_set_grad_enabled(false);
                tg_tensor *fused = tg_conv2d(p.x, p.w, p.b, &p.o), *ref = composed(&p, p.x, p.w);
                tg_set_grad_enabled(prev);
                CHECK_SAME(fused, ref);
                if (parts & 16) cut += tg_item(tg_sum(tg_eq(fused, tg_scalar(d, 0, dev())), TG_ALL, false)) > 0;
                tg_scope_end();
            }
    CHECK(cut > 100); /* the relus did cut */
}

/* Non-finite values go through as the composition's do (relu keeps NaN). */
TEST(nan_and_inf_as_composition) {
    tg_manual_seed(5);
    problem p = make(&k_geos[0], TG_F32, 2 | 4 | 8 | 16);
    double *xd = tg_test_values(p.x);
    int64_t nx = tg_numel(p.x);
    float *xv = malloc((size_t)nx * sizeof *xv);
    for (int64_t i = 0; xd && i < nx; i++) xv[i] = (float)xd[i];
    xv[3] = NAN, xv[70] = INFINITY, xv[200] = -INFINITY;
    p.x = tg_from_f32(xv, tg_shape_of(p.x), dev());
    free(xd), free(xv);
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *fused = tg_conv2d(p.x, p.w, NULL, &p.o), *ref = composed(&p, p.x, p.w);
    tg_set_grad_enabled(prev);
    double *a = tg_test_values(fused), *b = tg_test_values(ref);
    int64_t n = tg_numel(fused), bad = 0, nans = 0;
    for (int64_t i = 0; a && b && i < n; i++) {
        nans += isnan(a[i]);
        bad += isnan(a[i]) ? !isnan(b[i]) : a[i] != b[i];
    }
    CHECK(a && b && bad == 0 && nans > 0);
    free(a), free(b);
}

/* While a gradient is recorded: the composition, with its gradients. */
TEST(recorded_is_the_composition_with_gradients) {
    for (int gi = 0; gi < NGEOS; gi += 3) {
        WHAT("geometry %d", gi);
        tg_manual_seed(40 + gi);
        problem p = make(&k_geos[gi], TG_F32, 1 | 2 | 4 | 8 | 16);
        tg_tensor *x[2], *w[2], *y[2], *gx[2], *gw[2], *gz[2];
        tg_tensor *gy = NULL;
        for (int f = 0; f < 2; f++) {
            x[f] = tg_param(tg_clone(p.x)), w[f] = tg_param(tg_clone(p.w));
            tg_tensor *z = tg_param(tg_clone(p.z));
            problem q = p;
            q.z = z, q.o.residual = z;
            y[f] = f ? tg_conv2d(x[f], w[f], p.b, &q.o) : composed(&q, x[f], w[f]);
            if (!gy) gy = tg_randn(TG_F32, tg_shape_of(y[f]), dev());
            tg_tensor *wrt[3] = { x[f], w[f], z }, *g[3] = { NULL, NULL, NULL };
            CHECK(y[f] && tg_autograd_grad(1, &y[f], &gy, 3, wrt, g, NULL) == TG_OK);
            gx[f] = g[0], gw[f] = g[1], gz[f] = g[2];
        }
        CHECK_SAME(y[0], y[1]);
        CHECK_SAME(gx[0], gx[1]);
        CHECK_SAME(gw[0], gw[1]);
        CHECK_SAME(gz[0], gz[1]);
    }
}

static tg_tensor *f_epi(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *rm = tg_full(TG_F64, TG_SHAPE(4), 0.1, dev()), *rv = tg_full(TG_F64, TG_SHAPE(4), 0.8, dev());
    tg_conv2d_opts o = { .padding = 1, .bn = { rm, rv, in[2], NULL, TG_SOME(1e-5) }, .residual = in[3], .relu = true };
    return tg_conv2d(in[0], in[1], NULL, &o);
}

TEST(gradcheck_f64) {
    tg_manual_seed(9);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 3, 4, 4), dev()), *w = tg_randn(TG_F64, TG_SHAPE(4, 3, 3, 3), dev());
    double gv[4] = { 0.9, -1.2, 1.1, 0.7 };
    tg_tensor *gamma = tg_from_f64(gv, TG_SHAPE(4), dev()), *z = tg_randn(TG_F64, TG_SHAPE(2, 4, 4, 4), dev());
    tg_gradcheck_report rep;
    tg_tensor *in[4] = { x, w, gamma, z };
    if (tg_gradcheck(f_epi, NULL, 4, in, NULL, &rep) != TG_OK) FAIL_("gradcheck failed: %s", rep.message);
}

static void expect_error(int *tg_failed_, tg_tensor *x, tg_tensor *w, const tg_conv2d_opts *o, const char *want) {
    tg_clear_error();
    tg_tensor *y = tg_conv2d(x, w, NULL, o);
    if (y || strcmp(tg_last_error(), want) != 0)
        FAIL_("expected \"%s\", got %s (\"%s\")", want, y ? "a result" : "an error", tg_last_error());
}

TEST(error_messages) {
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 3, 5, 5), dev()), *w = tg_zeros(TG_F32, TG_SHAPE(4, 3, 3, 3), dev());
    tg_tensor *v4 = tg_ones(TG_F32, TG_SHAPE(4), dev()), *v3 = tg_ones(TG_F32, TG_SHAPE(3), dev());
    tg_tensor *v4d = tg_ones(TG_F64, TG_SHAPE(4), dev());
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .padding = 1, .residual = tg_zeros(TG_F32, TG_SHAPE(2, 4, 3, 3), dev()) },
                 "tg_conv2d: residual should have the result's shape [2,4,5,5], got [2,4,3,3]");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .residual = tg_zeros(TG_F64, TG_SHAPE(2, 4, 3, 3), dev()) },
                 "tg_conv2d: dtypes differ: f32 and f64 (convert one with tg_cast)");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .bn = { .running_mean = v4 } },
                 "tg_conv2d: bn needs both running_mean and running_var (eval-mode batch norm)");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .bn = { .weight = v4 } },
                 "tg_conv2d: bn needs both running_mean and running_var (eval-mode batch norm)");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .bn = { v4, v3 } },
                 "tg_conv2d: bn.running_var must be 1-D with out_channels (4) elements, got [3]");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .bn = { v4, v4, v4d } },
                 "tg_conv2d: dtypes differ: f32 and f64 (convert one with tg_cast)");
    expect_error(tg_failed_, x, w, &(tg_conv2d_opts){ .bn = { v4, v4, .eps = TG_SOME(-1) } },
                 "tg_conv2d: bn.eps must be >= 0, got -1");
}

static tg_tensor *keep_hook(tg_module *m, int n, tg_tensor *const *in, tg_tensor *out, void *ctx) {
    (void)m, (void)n, (void)in, (void)ctx;
    return out;
}

/* The eval-mode forward of m with grad mode off on x, with every Conv2d hooked (which
 * turns the epilogues off: the modules run one by one) or not. */
static tg_tensor *eval_forward(tg_module *m, tg_tensor *x, bool hooked) {
    tg_named mods;
    if (tg_module_named_modules(m, &mods) != TG_OK) return NULL;
    int ids[256], nh = 0;
    for (int i = 0; i < mods.n && nh < 256; i++)
        if (hooked && strcmp(mods.modules[i]->type->name, "Conv2d") == 0)
            ids[nh] = tg_module_register_forward_hook(mods.modules[i], keep_hook, NULL), nh++;
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *y = tg_module_forward(m, x);
    tg_set_grad_enabled(prev);
    for (int i = 0, h = 0; i < mods.n && h < nh; i++)
        if (strcmp(mods.modules[i]->type->name, "Conv2d") == 0) tg_module_remove_hook(mods.modules[i], ids[h++]);
    tg_named_free(&mods);
    return y;
}

/* The blocks, the zoo's CIFAR ResNet and a Sequential of Conv2d, BatchNorm2d and ReLU in
 * eval mode, with running statistics from a few training forwards: the fused forward
 * bitwise equal to the modules one by one. */
TEST(eval_modules_match_unfused) {
    tg_resnet_block_opts s2 = { .stride = 2 };
    for (int k = 0; k < 5; k++) {
        WHAT("module %d", k);
        tg_manual_seed(60 + k);
        int64_t c = k == 2 ? 16 : k == 3 ? 3 : 8;
        tg_module *m = k == 0   ? tg_basic_block_new(8, 8, NULL, dev())
                       : k == 1 ? tg_basic_block_new(8, 16, &s2, dev())
                       : k == 2 ? tg_bottleneck_new(16, 4, &s2, dev())
                       : k == 3 ? tg_resnet_cifar_new(20, 10, NULL, dev())
                                : tg_sequential(tg_conv2d_new(8, 12, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev()),
                                                tg_batchnorm2d_new(12, NULL, dev()), tg_relu_new(),
                                                tg_conv2d_new(12, 8, 3, NULL, dev()), tg_relu_new());
        CHECK(m);
        if (!m) continue;
        tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(3, c, k == 3 ? 32 : 9, k == 3 ? 32 : 9), dev());
        tg_module_train(m, true);
        bool prev = tg_set_grad_enabled(false);
        for (int i = 0; i < 3; i++) CHECK(tg_module_forward(m, tg_add_scalar(tg_mul_scalar(x, 1.5), 0.3)) != NULL);
        tg_set_grad_enabled(prev);
        tg_module_train(m, false);
        tg_tensor *fused = eval_forward(m, x, false), *ref = eval_forward(m, x, true);
        CHECK_SAME(fused, ref);
        tg_module_free(m);
    }
}

TG_TEST_MAIN(&tg_case_eval_modules_match_unfused, &tg_case_fused_matches_composition, &tg_case_nan_and_inf_as_composition,
             &tg_case_recorded_is_the_composition_with_gradients, &tg_case_gradcheck_f64, &tg_case_error_messages)
