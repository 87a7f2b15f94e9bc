/* Batch norm with relu fused (tg_batch_norm_opts.relu, which the nn layers use for a
 * BatchNorm followed by a ReLU), and with a residual added before it (.residual, a
 * ResNet block's end): forward bitwise equal to tg_relu(tg_batch_norm(...)) and to
 * relu(batch_norm + residual)
 * (channel and row modes, training and eval, f32 and f64, running statistics too), the
 * gradients of x, weight and bias bitwise equal to the composition's, gradcheck and
 * gradgradcheck in f64, the CPU kernels (forward, and the backward that masks dout by
 * the output in its own passes) against their references, a write into the output
 * before backward reported, and Sequential(BatchNorm2d, ReLU) and a BasicBlock against
 * the unfused modules (a hook on the ReLU turns the fusion off and still sees its input). */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "lib/cpu/norm.h"

static tg_device *dev(void) { return tg_test_device(); }

static char g_what[160];
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

/* max |a - b| over every element (0 for bitwise-equal tensors, NaN-free inputs). */
static double max_diff(tg_tensor *a, tg_tensor *b) {
    if (!a || !b) return INFINITY;
    return tg_item(tg_max(tg_abs(tg_sub(tg_cast(a, TG_F64), tg_cast(b, TG_F64))), TG_ALL, false));
}

#define CHECK_SAME(a, b)                                                                    \
    do {                                                                                    \
        double d_ = max_diff((a), (b));                                                     \
        if (d_ != 0) FAIL_("[%s] %s and %s differ by %g", g_what, #a, #b, d_);              \
    } while (0)

/* A module's forward hook: counts calls and returns the output unchanged. */
static int g_hook_calls;
static tg_tensor *count_hook(tg_module *m, int n, tg_tensor *const *in, tg_tensor *out, void *ctx) {
    (void)m, (void)n, (void)in, (void)ctx;
    g_hook_calls++;
    return out;
}

/* tg_batch_norm with momentum 0.2, the residual z (or NULL) and the relu as given. */
static tg_tensor *bn_res(tg_tensor *x, tg_tensor *z, tg_tensor *rm, tg_tensor *rv, tg_tensor *w, tg_tensor *b,
                         bool training, bool relu) {
    tg_batch_norm_opts o = { .training = training, .momentum = TG_SOME(0.2), .relu = relu, .residual = z };
    return tg_batch_norm(x, rm, rv, w, b, &o);
}

static tg_tensor *bn(tg_tensor *x, tg_tensor *rm, tg_tensor *rv, tg_tensor *w, tg_tensor *b, bool training, bool relu) {
    return bn_res(x, NULL, rm, rv, w, b, training, relu);
}

/* A row {N, C, H, W} of a shape table: trailing zeros drop the axis ({64, 16, 0, 0} is 2-d). */
static tg_shape table_shape(const int64_t *row) {
    tg_shape s = { .ndim = row[2] ? row[3] ? 4 : 3 : 2 };
    for (int k = 0; k < s.ndim; k++) s.dims[k] = row[k];
    return s;
}

TEST(forward_and_backward_match_composition) {
    static const int64_t shapes[][4] = { { 8, 3, 5, 5 }, { 6, 4, 2, 3 }, { 64, 16, 0, 0 }, { 5, 7, 33, 0 } };
    for (int dt = 0; dt < 2; dt++)
        for (int si = 0; si < 4; si++)
            for (int training = 0; training < 2; training++) {
                tg_dtype d = dt ? TG_F64 : TG_F32;
                tg_shape s = table_shape(shapes[si]);
                int64_t C = s.dims[1];
                WHAT("%s shape %d training %d", tg_dtype_name(d), si, training);
                tg_manual_seed(7 + si);
                tg_tensor *x0 = tg_randn(d, s, dev()), *w0 = tg_randn(d, TG_SHAPE(C), dev());
                tg_tensor *b0 = tg_randn(d, TG_SHAPE(C), dev()), *gy = tg_randn(d, s, dev());
                tg_tensor *y[2], *gx[2], *gw[2], *gb[2], *rm[2], *rv[2];
                for (int f = 0; f < 2; f++) {
                    tg_tensor *x = tg_param(tg_clone(x0)), *w = tg_param(tg_clone(w0)), *b = tg_param(tg_clone(b0));
                    rm[f] = tg_zeros(d, TG_SHAPE(C), dev());
                    rv[f] = tg_full(d, TG_SHAPE(C), 1.5, dev());
                    y[f] = f ? bn(x, rm[f], rv[f], w, b, training, true) : tg_relu(bn(x, rm[f], rv[f], w, b, training, false));
                    tg_tensor *wrt[3] = { x, w, b }, *g[3] = { NULL, NULL, NULL };
                    CHECK(y[f] && tg_autograd_grad(1, &y[f], &gy, 3, wrt, g, NULL) == TG_OK);
                    gx[f] = g[0], gw[f] = g[1], gb[f] = g[2];
                }
                CHECK_SAME(y[0], y[1]);
                CHECK_SAME(rm[0], rm[1]);
                CHECK_SAME(rv[0], rv[1]);
                CHECK_SAME(gx[0], gx[1]);
                CHECK_SAME(gw[0], gw[1]);
                CHECK_SAME(gb[0], gb[1]);
                double zeros = tg_item(tg_sum(tg_eq(y[1], tg_scalar(d, 0, dev())), TG_ALL, false));
                CHECK(zeros > 0); /* the relu did cut */
            }
}

typedef struct {
    bool training;
} bnr_ctx;

static tg_tensor *f_bnr(tg_tensor *const *in, void *ctx) {
    const bnr_ctx *c = ctx;
    tg_tensor *rm = c->training ? NULL : tg_full(TG_F64, TG_SHAPE(3), 0.1, dev());
    tg_tensor *rv = c->training ? NULL : tg_full(TG_F64, TG_SHAPE(3), 0.8, dev());
    return bn(in[0], rm, rv, in[1], in[2], c->training, true);
}

#define CHECK_GRAD_(checker, fn, ctx, ...)                                                                  \
    do {                                                                                                    \
        tg_tensor *in_[] = { __VA_ARGS__ };                                                                 \
        tg_gradcheck_report rep_;                                                                           \
        tg_status st_ = checker(fn, ctx, (int)(sizeof in_ / sizeof in_[0]), in_, NULL, &rep_);              \
        if (st_ != TG_OK) FAIL_("[%s] %s failed: %s (%s)", g_what, #checker, rep_.message, tg_last_error()); \
    } while (0)

TEST(gradcheck_f64) {
    for (int training = 0; training < 2; training++) {
        bnr_ctx c = { .training = training };
        WHAT("training %d", training);
        tg_manual_seed(21);
        /* values well away from relu's kink: the bias shifts the normalised values */
        tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(4, 3, 2, 2), dev());
        double wv[3] = { 0.8, -1.1, 1.3 }, bv[3] = { 0.05, 0.1, -0.07 };
        tg_tensor *w = tg_from_f64(wv, TG_SHAPE(3), dev()), *b = tg_from_f64(bv, TG_SHAPE(3), dev());
        CHECK_GRAD_(tg_gradcheck, f_bnr, &c, x, w, b);
        CHECK_GRAD_(tg_gradgradcheck, f_bnr, &c, x, w, b);
    }
}

TEST(cpu_kernel_matches_reference) {
    tg_device *cpu = tg_device_get("cpu"); /* the CPU's kernels, whatever the device under test */
    static const int64_t shapes[][3] = { { 64, 16, 1024 }, { 16, 5, 3 }, { 3, 40, 64 } };
    for (int si = 0; si < 3; si++) {
        int64_t N = shapes[si][0], C = shapes[si][1], S = shapes[si][2];
        tg_norm_params p = { .N = N, .C = C, .S = S, .eps = 1e-5, .momentum = 0.1, .training = true };
        tg_manual_seed(5);
        tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(N, C, S), cpu), *w = tg_randn(TG_F64, TG_SHAPE(C), cpu);
        tg_tensor *b = tg_randn(TG_F64, TG_SHAPE(C), cpu), *y[2], *m[2], *is[2];
        for (int r = 0; r < 2; r++) {
            y[r] = tg_empty(TG_F64, TG_SHAPE(N, C, S), cpu);
            m[r] = tg_empty(TG_F64, TG_SHAPE(C), cpu);
            is[r] = tg_empty(TG_F64, TG_SHAPE(C), cpu);
            CHECK((r ? tg_cpu_batch_norm_relu_ref : tg_cpu_batch_norm_relu)(y[r], m[r], is[r], NULL, NULL, x, w, b, &p) ==
                  TG_OK);
        }
        WHAT("shape %d", si);
        CHECK(max_diff(y[0], y[1]) < 1e-12);
        CHECK(tg_item(tg_min(y[0], TG_ALL, false)) == 0);
        CHECK(max_diff(m[0], m[1]) < 1e-12);
    }
}

/* The relu form's backward kernel (dout masked by the output > 0 inside its passes)
 * against the reference, and bitwise against the plain backward of a masked copy of
 * dout: row mode, channels fused with their apply pass, channels too large for it. */
TEST(cpu_relu_backward_matches_reference) {
    tg_device *cpu = tg_device_get("cpu");
    static const int64_t shapes[][3] = { { 64, 16, 1024 }, { 16, 5, 3 }, { 3, 40, 64 }, { 9, 3, 37 } };
    for (int dt = 0; dt < 2; dt++)
        for (int si = 0; si < 4; si++)
            for (int training = 0; training < 2; training++) {
                tg_dtype d = dt ? TG_F32 : TG_F64;
                int64_t N = shapes[si][0], C = shapes[si][1], S = shapes[si][2];
                tg_norm_params p = { .N = N, .C = C, .S = S, .eps = 1e-5, .momentum = 0.1, .training = training };
                WHAT("%s shape %d training %d", tg_dtype_name(d), si, training);
                tg_manual_seed(11 + si);
                tg_tensor *x = tg_randn(d, TG_SHAPE(N, C, S), cpu), *w = tg_randn(d, TG_SHAPE(C), cpu);
                tg_tensor *b = tg_randn(d, TG_SHAPE(C), cpu), *g = tg_randn(d, TG_SHAPE(N, C, S), cpu);
                tg_tensor *rm = tg_zeros(d, TG_SHAPE(C), cpu), *rv = tg_ones(d, TG_SHAPE(C), cpu);
                tg_tensor *y = tg_empty(d, TG_SHAPE(N, C, S), cpu), *m = tg_empty(d, TG_SHAPE(C), cpu);
                tg_tensor *is = tg_empty(d, TG_SHAPE(C), cpu);
                CHECK(tg_cpu_batch_norm_relu(y, m, is, rm, rv, x, w, b, &p) == TG_OK);
                tg_tensor *gm = tg_where(tg_gt(y, tg_scalar(d, 0, cpu)), g, tg_zeros_like(g));
                tg_tensor *dx[3], *dw[3], *db[3];
                for (int r = 0; r < 3; r++) {
                    dx[r] = tg_empty(d, TG_SHAPE(N, C, S), cpu);
                    dw[r] = tg_empty(d, TG_SHAPE(C), cpu);
                    db[r] = tg_empty(d, TG_SHAPE(C), cpu);
                }
                CHECK(tg_cpu_batch_norm_relu_backward(dx[0], dw[0], db[0], g, y, x, w, m, is, &p) == TG_OK);
                CHECK(tg_cpu_batch_norm_relu_backward_ref(dx[1], dw[1], db[1], g, y, x, w, m, is, &p) == TG_OK);
                CHECK(tg_cpu_batch_norm_backward(dx[2], dw[2], db[2], gm, x, w, m, is, &p) == TG_OK);
                double tol = dt ? 2e-4 : 1e-10;
                CHECK(max_diff(dx[0], dx[1]) < tol);
                CHECK(max_diff(dw[0], dw[1]) < tol * (double)(N * S));
                CHECK(max_diff(db[0], db[1]) < tol * (double)(N * S));
                CHECK_SAME(dx[0], dx[2]);
                CHECK_SAME(dw[0], dw[2]);
                CHECK_SAME(db[0], db[2]);
                tg_tensor *dx1 = tg_empty(d, TG_SHAPE(N, C, S), cpu); /* dx alone */
                CHECK(tg_cpu_batch_norm_relu_backward(dx1, NULL, NULL, g, y, x, w, m, is, &p) == TG_OK);
                CHECK_SAME(dx1, dx[0]);
            }
}

/* .residual against the composition relu(batch_norm(x) + z) (and batch_norm(x) + z
 * without relu): output, running statistics and every gradient bitwise equal. */
TEST(residual_matches_composition) {
    static const int64_t shapes[][4] = { { 8, 3, 5, 5 }, { 64, 16, 0, 0 }, { 5, 7, 33, 0 }, { 4, 16, 32, 32 } };
    for (int dt = 0; dt < 2; dt++)
        for (int si = 0; si < 4; si++)
            for (int mode = 0; mode < 4; mode++) {
                bool training = mode & 1, relu = mode & 2;
                tg_dtype d = dt ? TG_F64 : TG_F32;
                tg_shape s = table_shape(shapes[si]);
                int64_t C = s.dims[1];
                WHAT("%s shape %d training %d relu %d", tg_dtype_name(d), si, training, relu);
                tg_manual_seed(31 + si);
                tg_tensor *x0 = tg_randn(d, s, dev()), *z0 = tg_randn(d, s, dev()), *w0 = tg_randn(d, TG_SHAPE(C), dev());
                tg_tensor *b0 = tg_randn(d, TG_SHAPE(C), dev()), *gy = tg_randn(d, s, dev());
                tg_tensor *y[2], *g[2][4], *rm[2], *rv[2];
                for (int f = 0; f < 2; f++) {
                    tg_tensor *x = tg_param(tg_clone(x0)), *z = tg_param(tg_clone(z0));
                    tg_tensor *w = tg_param(tg_clone(w0)), *b = tg_param(tg_clone(b0));
                    rm[f] = tg_zeros(d, TG_SHAPE(C), dev());
                    rv[f] = tg_full(d, TG_SHAPE(C), 1.5, dev());
                    if (f) {
                        y[f] = bn_res(x, z, rm[f], rv[f], w, b, training, relu);
                    } else {
                        y[f] = tg_add(bn(x, rm[f], rv[f], w, b, training, false), z);
                        if (relu) y[f] = tg_relu(y[f]);
                    }
                    tg_tensor *wrt[4] = { x, w, b, z };
                    for (int i = 0; i < 4; i++) g[f][i] = NULL;
                    CHECK(y[f] && tg_autograd_grad(1, &y[f], &gy, 4, wrt, g[f], NULL) == TG_OK);
                }
                CHECK_SAME(y[0], y[1]);
                CHECK_SAME(rm[0], rm[1]);
                CHECK_SAME(rv[0], rv[1]);
                for (int i = 0; i < 4; i++) {
                    WHAT("%s shape %d training %d relu %d gradient %d", tg_dtype_name(d), si, training, relu, i);
                    CHECK_SAME(g[0][i], g[1][i]);
                }
            }
}

typedef struct {
    bool training, relu;
} bnz_ctx;

static tg_tensor *f_bnz(tg_tensor *const *in, void *ctx) {
    const bnz_ctx *c = ctx;
    tg_tensor *rm = c->training ? NULL : tg_full(TG_F64, TG_SHAPE(3), 0.1, dev());
    tg_tensor *rv = c->training ? NULL : tg_full(TG_F64, TG_SHAPE(3), 0.8, dev());
    return bn_res(in[0], in[3], rm, rv, in[1], in[2], c->training, c->relu);
}

TEST(residual_gradcheck_f64) {
    for (int mode = 0; mode < 4; mode++) {
        bnz_ctx c = { .training = mode & 1, .relu = mode & 2 };
        WHAT("training %d relu %d", c.training, c.relu);
        tg_manual_seed(23);
        tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(4, 3, 2, 2), dev());
        /* the residual keeps the sums away from relu's kink: |z| >= 0.5 with the sign of a
         * normal draw */
        tg_tensor *n = tg_randn(TG_F64, TG_SHAPE(4, 3, 2, 2), dev());
        tg_tensor *z = tg_add(tg_mul_scalar(tg_sign(n), 0.5), tg_mul_scalar(n, 2));
        double wv[3] = { 0.1, -0.15, 0.12 }, bv[3] = { 0.05, 0.1, -0.07 };
        tg_tensor *w = tg_from_f64(wv, TG_SHAPE(3), dev()), *b = tg_from_f64(bv, TG_SHAPE(3), dev());
        CHECK_GRAD_(tg_gradcheck, f_bnz, &c, x, w, b, z);
        CHECK_GRAD_(tg_gradgradcheck, f_bnz, &c, x, w, b, z);
    }
}

TEST(cpu_residual_kernel_matches_reference) {
    tg_device *cpu = tg_device_get("cpu");
    static const int64_t shapes[][3] = { { 64, 16, 1024 }, { 16, 5, 3 }, { 3, 40, 64 } };
    for (int si = 0; si < 3; si++)
        for (int relu = 0; relu < 2; relu++) {
            int64_t N = shapes[si][0], C = shapes[si][1], S = shapes[si][2];
            tg_norm_params p = { .N = N, .C = C, .S = S, .eps = 1e-5, .momentum = 0.1, .training = true, .relu = relu };
            tg_manual_seed(6);
            tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(N, C, S), cpu), *z = tg_randn(TG_F64, TG_SHAPE(N, C, S), cpu);
            tg_tensor *w = tg_randn(TG_F64, TG_SHAPE(C), cpu), *b = tg_randn(TG_F64, TG_SHAPE(C), cpu), *y[2];
            for (int r = 0; r < 2; r++) {
                y[r] = tg_empty(TG_F64, TG_SHAPE(N, C, S), cpu);
                tg_tensor *m = tg_empty(TG_F64, TG_SHAPE(C), cpu), *is = tg_empty(TG_F64, TG_SHAPE(C), cpu);
                CHECK((r ? tg_cpu_batch_norm_add_ref : tg_cpu_batch_norm_add)(y[r], m, is, NULL, NULL, x, z, w, b, &p) ==
                      TG_OK);
            }
            WHAT("shape %d relu %d", si, relu);
            CHECK(max_diff(y[0], y[1]) < 1e-12);
            CHECK((tg_item(tg_min(y[0], TG_ALL, false)) == 0) == (bool)relu);
        }
}

TEST(residual_errors) {
    tg_device *d = dev();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 3), d);
    tg_batch_norm_opts o = { .training = true, .relu = true, .residual = tg_randn(TG_F64, TG_SHAPE(3), d) };
    CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, NULL, &o),
                "tg_batch_norm: residual should have x's shape [2,3], got [3]");
    o.residual = tg_randn(TG_F32, TG_SHAPE(2, 3), d);
    CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, NULL, &o),
                "tg_batch_norm: residual is f32 but x is f64 (convert one with tg_cast)");
    tg_device *cpu = tg_device_get("cpu");
    if (d != cpu) { /* the suite runs on another device: a residual on the CPU */
        o.residual = tg_randn(TG_F64, TG_SHAPE(2, 3), cpu);
        CHECK_ERROR_CONTAINS(tg_batch_norm(x, NULL, NULL, NULL, NULL, &o), "tg_batch_norm: tensors on two devices");
    }
}

/* A ResNet block's fused end (bn + shortcut + relu in one op) against the same block
 * with a hook on that batch norm, which turns the fusion off: output and the input's
 * gradient bitwise equal, for a BasicBlock with and without projection and a Bottleneck. */
TEST(blocks_match_unfused) {
    for (int k = 0; k < 3; k++) {
        tg_manual_seed(41 + k);
        tg_resnet_block_opts o = { .stride = k == 1 ? 2 : 1 };
        tg_module *blk = k < 2 ? tg_basic_block_new(8, k == 1 ? 16 : 8, &o, dev()) : tg_bottleneck_new(16, 4, &o, dev());
        CHECK(blk);
        if (!blk) return;
        tg_module_train(blk, true);
        tg_tensor *x0 = tg_randn(TG_F32, TG_SHAPE(3, k < 2 ? 8 : 16, 6, 6), dev()), *y[2], *gx[2];
        for (int f = 0; f < 2; f++) {
            int h = -1;
            if (f) h = tg_module_register_forward_hook(tg_module_get(blk, k < 2 ? "bn2" : "bn3"), count_hook, NULL);
            tg_tensor *x = tg_param(tg_clone(x0));
            y[f] = tg_module_forward(blk, x);
            tg_tensor *gy = tg_ones_like(y[f]);
            gx[f] = NULL;
            CHECK(y[f] && tg_autograd_grad(1, &y[f], &gy, 1, &x, &gx[f], NULL) == TG_OK);
            if (f) CHECK(h > 0 && tg_module_remove_hook(tg_module_get(blk, k < 2 ? "bn2" : "bn3"), h) == TG_OK);
        }
        WHAT("block %d", k);
        CHECK_SAME(y[0], y[1]);
        CHECK_SAME(gx[0], gx[1]);
        tg_module_free(blk);
    }
}

TEST(output_written_in_place_is_reported) {
    tg_tensor *x = tg_param(tg_randn(TG_F32, TG_SHAPE(4, 2, 3), dev()));
    tg_tensor *y = bn(x, NULL, NULL, NULL, NULL, true, true);
    tg_tensor *loss = tg_sum(tg_square(tg_add_scalar(y, 0)), TG_ALL, false);
    tg_set_grad_enabled(false);
    CHECK(tg_add_(y, tg_ones_like(y)) == TG_OK);
    tg_set_grad_enabled(true);
    CHECK(tg_backward(loss) != TG_OK);
    CHECK(strstr(tg_last_error(), "tg_batch_norm") != NULL);
}


TEST(modules_match_unfused) {
    tg_manual_seed(9);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(4, 6, 5, 5), dev());
    tg_module *seq = tg_sequential(tg_batchnorm2d_new(6, NULL, dev()), tg_relu_new());
    tg_module *bn_only = tg_batchnorm2d_new(6, NULL, dev());
    CHECK(seq && bn_only);
    if (!seq || !bn_only) return;
    tg_module_train(seq, true), tg_module_train(bn_only, true);
    WHAT("Sequential(BatchNorm2d, ReLU)");
    CHECK_SAME(tg_module_forward(seq, x), tg_relu(tg_module_forward(bn_only, x)));
    g_hook_calls = 0;
    tg_module *relu = tg_module_child(seq, 1);
    CHECK(relu && tg_module_register_forward_hook(relu, count_hook, NULL) > 0);
    WHAT("with a hook on the ReLU");
    CHECK_SAME(tg_module_forward(seq, x), tg_relu(tg_module_forward(bn_only, x)));
    CHECK(g_hook_calls == 1);
    tg_module_free(seq), tg_module_free(bn_only);
}

TG_TEST_MAIN(&tg_case_forward_and_backward_match_composition, &tg_case_gradcheck_f64,
             &tg_case_cpu_kernel_matches_reference, &tg_case_cpu_relu_backward_matches_reference,
             &tg_case_residual_matches_composition, &tg_case_residual_gradcheck_f64,
             &tg_case_cpu_residual_kernel_matches_reference, &tg_case_residual_errors, &tg_case_blocks_match_unfused,
             &tg_case_output_written_in_place_is_reported,
             &tg_case_modules_match_unfused)
