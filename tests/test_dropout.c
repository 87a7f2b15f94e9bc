/* tg_dropout and tg_dropout2d: the identity in eval (a view, nothing drawn), the kept
 * fraction and the 1/(1-p) scale, whole channels for dropout2d, the mask equal to one
 * computed from tg_rand on the CPU under the same seed (so TG_TEST_DEVICE=opencl checks
 * that both devices drop the same units), p = 1, gradcheck with a fixed seed, messages. */
#include "ops_check.h"

static tg_device *cpu(void) { return tg_device_get("cpu"); }

/* The CPU's uniforms under seed, in f32 (tg_bernoulli compares these with its p). */
static double *cpu_uniforms(uint64_t seed, tg_shape s) {
    tg_manual_seed(seed);
    return vals(tg_rand(TG_F32, s, cpu()));
}

TEST(eval_and_p0_are_views_and_draw_nothing) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_arange(TG_F32, 0, 12, 1, dev);
    tg_manual_seed(3);
    tg_tensor *a = tg_dropout(x, 0.5, false), *b = tg_dropout(x, 0, true), *c = tg_dropout2d(tg_reshape(x, TG_SHAPE(3, 2, 2)), 0.5, false);
    tg_tensor *after = tg_rand(TG_F32, TG_SHAPE(4), cpu());
    double *v = vals(after), *w = cpu_uniforms(3, TG_SHAPE(4));
    for (int i = 0; i < 4; i++) CHECK(v && w && v[i] == w[i]); /* nothing was drawn */
    CHECK(tg_fill_(x, 5) == TG_OK); /* shared storage: the views see it */
    double five[12] = { 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5 };
    EXPECT_EXACT(a, TG_SHAPE(12), TG_F32, five);
    EXPECT_EXACT(b, TG_SHAPE(12), TG_F32, five);
    EXPECT_EXACT(c, TG_SHAPE(3, 2, 2), TG_F32, five);
    tg_tensor *e = tg_dropout(tg_zeros(TG_F32, TG_SHAPE(0, 3), dev), 0.5, true);
    CHECK(e && tg_numel(e) == 0 && tg_size(e, 1) == 3);
}

/* Every output is 0 or x / (1 - p); about 1 - p of them are kept (within 5 sigma). */
TEST(kept_fraction_and_scale) {
    static const double ps[] = { 0.1, 0.5, 0.8 };
    for (int di = 0; di < 2; di++) {
        tg_dtype dt = k_float_dtypes[di];
        for (int k = 0; k < 3; k++) {
            size_t m = mark();
            double p = ps[k];
            int64_t n = 200000;
            tg_tensor *x = input(dt, TG_SHAPE(n), 0.5, 2, L_CONTIG, NULL);
            double *xv = vals(x), *y = vals(tg_dropout(x, p, true));
            int64_t kept = 0, bad = 0;
            double scale = dt == TG_F32 ? (double)(1.0f / (float)(1 - p)) : 1 / (1 - p);
            for (int64_t i = 0; y && i < n; i++) {
                double want = dt == TG_F32 ? (double)((float)xv[i] * (float)scale) : xv[i] * scale;
                if (y[i] == 0) continue;
                kept++;
                if (!(fabs(y[i] - want) <= (dt == TG_F32 ? 4e-7 : 1e-15) * fabs(want))) bad++; /* a device's f32 division may be off by an ulp or two */
            }
            CHECK(y && bad == 0);
            double frac = (double)kept / (double)n, sd = sqrt(p * (1 - p) / (double)n);
            if (!(fabs(frac - (1 - p)) < 5 * sd)) FAIL_("p %g %s: kept %g, expected %g", p, tg_dtype_name(dt), frac, 1 - p);
            release(m);
        }
    }
}

/* The device's mask is the CPU's tg_rand(f32) < 1 - p under the same seed. */
TEST(mask_matches_cpu_uniforms_under_one_seed) {
    tg_device *dev = tg_test_device();
    double p = 0.35;
    tg_shape s = TG_SHAPE(7, 33, 65);
    int64_t n = numel_of(s);
    tg_manual_seed(1234);
    tg_rand(TG_F32, TG_SHAPE(5), dev); /* the counter moves the same way on every device */
    double *y = vals(tg_dropout(tg_ones(TG_F64, s, dev), p, true));
    tg_manual_seed(1234);
    tg_rand(TG_F32, TG_SHAPE(5), cpu());
    double *u = vals(tg_rand(TG_F32, s, cpu()));
    int64_t differ = 0;
    for (int64_t i = 0; y && u && i < n; i++) differ += (y[i] != 0) != (u[i] < 1 - p);
    CHECK(y && u && differ == 0);

    /* dropout2d draws one number per (n, c) */
    tg_shape s4 = TG_SHAPE(6, 9, 4, 5);
    double *u4 = cpu_uniforms(99, TG_SHAPE(6, 9, 1, 1));
    tg_manual_seed(99);
    double *y4 = vals(tg_dropout2d(tg_ones(TG_F32, s4, dev), p, true));
    differ = 0;
    for (int64_t i = 0; y4 && u4 && i < numel_of(s4); i++) differ += (y4[i] != 0) != (u4[i / 20] < 1 - p);
    CHECK(y4 && u4 && differ == 0);
}

/* Each (n, c) plane is all dropped or all kept and scaled; (C, H, W) per channel. */
TEST(dropout2d_drops_whole_channels) {
    static const tg_shape shapes[2] = { { 4, { 8, 16, 3, 5 } }, { 3, { 200, 2, 3 } } };
    for (int k = 0; k < 2; k++) {
        size_t m = mark();
        tg_shape s = shapes[k];
        int64_t plane = s.dims[s.ndim - 1] * s.dims[s.ndim - 2], planes = numel_of(s) / plane, kept = 0;
        tg_tensor *x = input(TG_F64, s, 1, 2, L_TRANSPOSED, NULL);
        double *xv = vals(x), *y = vals(tg_dropout2d(x, 0.25, true));
        bool ok = y != NULL;
        for (int64_t q = 0; ok && q < planes; q++) {
            bool keep = y[q * plane] != 0;
            kept += keep;
            for (int64_t i = q * plane; i < (q + 1) * plane; i++) ok = ok && (keep ? fabs(y[i] - xv[i] / 0.75) <= 1e-15 * y[i] : y[i] == 0);
        }
        CHECK(ok);
        CHECK(kept > planes / 2 && kept < planes); /* 0.75 of 128 or 200 planes */
        release(m);
    }
}

TEST(p1_gives_x_times_zero) {
    tg_device *dev = tg_test_device();
    double xs[4] = { 1, -2, NAN, INFINITY }, want[4] = { 0, -0.0, NAN, NAN };
    tg_tensor *x = tg_param(tg_from_f64(xs, TG_SHAPE(4), dev));
    tg_tensor *y = tg_dropout(x, 1, true);
    EXPECT(y, TG_SHAPE(4), TG_F64, want, 0, 0);
    EXPECT(tg_dropout2d(tg_reshape(x, TG_SHAPE(1, 1, 2, 2)), 1, true), TG_SHAPE(1, 1, 2, 2), TG_F64, want, 0, 0);
    tg_tensor *g = NULL;
    CHECK(tg_autograd_grad(1, (tg_tensor *[]){ tg_sum(tg_dropout(x, 1, true), TG_ALL, false) }, NULL, 1, &x, &g, NULL) == TG_OK);
    double zeros[4] = { 0 };
    EXPECT(g, TG_SHAPE(4), TG_F64, zeros, 0, 0);
}

/* The function reseeds, so every evaluation drops the same units. */
static tg_tensor *drop_fn(tg_tensor *const *in, void *ctx) {
    tg_manual_seed(77);
    return ctx ? tg_dropout2d(in[0], 0.4, true) : tg_dropout(in[0], 0.4, true);
}

TEST(gradcheck_with_a_fixed_seed) {
    for (int two = 0; two < 2; two++) {
        tg_tensor *x = tg_param(input(TG_F64, two ? TG_SHAPE(2, 5, 2, 3) : TG_SHAPE(6, 7), -1, 1, L_STRIDED, NULL));
        tg_gradcheck_report rep;
        void *ctx = two ? (void *)1 : NULL;
        if (tg_gradcheck(drop_fn, ctx, 1, &x, NULL, &rep) != TG_OK) FAIL_("%s", rep.message);
        if (tg_gradgradcheck(drop_fn, ctx, 1, &x, NULL, &rep) != TG_OK) FAIL_("second order: %s", rep.message);
        /* and the gradient is the mask times the scale */
        tg_manual_seed(77);
        tg_tensor *y = two ? tg_dropout2d(x, 0.4, true) : tg_dropout(x, 0.4, true);
        tg_tensor *g = NULL;
        CHECK(tg_autograd_grad(1, (tg_tensor *[]){ tg_sum(y, TG_ALL, false) }, NULL, 1, &x, &g, NULL) == TG_OK);
        double *yv = vals(y), *xv = vals(x), *gv = vals(g);
        for (int64_t i = 0; yv && gv && i < tg_numel(x); i++) CHECK_NEAR(gv[i], yv[i] == 0 ? 0 : yv[i] / xv[i], 1e-12);
    }
}

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_tensor *f = tg_zeros(TG_F32, TG_SHAPE(2, 3), dev);
    CHECK_ERROR(tg_dropout(f, -0.1, true), "tg_dropout: p must be in [0, 1], got -0.1");
    CHECK_ERROR(tg_dropout(f, 1.5, false), "tg_dropout: p must be in [0, 1], got 1.5");
    CHECK_ERROR(tg_dropout(f, NAN, true), "tg_dropout: p must be in [0, 1], got nan");
    CHECK_ERROR(tg_dropout(tg_zeros(TG_I32, TG_SHAPE(2), dev), 0.5, true),
                "tg_dropout: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_dropout(NULL, 0.5, true), "tg_dropout: x is NULL");
    CHECK_ERROR(tg_dropout2d(f, 0.5, true), "tg_dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got 2 "
                                            "dimensions");
    CHECK_ERROR(tg_dropout2d(tg_reshape(f, TG_SHAPE(1, 1, 1, 2, 3)), 0.5, false),
                "tg_dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got 5 dimensions");
    CHECK_ERROR(tg_dropout2d(tg_zeros(TG_U8, TG_SHAPE(1, 2, 3), dev), 0.5, true),
                "tg_dropout2d: expected a floating dtype (f32 or f64), got u8");
    CHECK_ERROR(tg_dropout2d(tg_reshape(f, TG_SHAPE(1, 2, 3)), 2, true), "tg_dropout2d: p must be in [0, 1], got 2");
}

TG_TEST_MAIN(&tg_case_eval_and_p0_are_views_and_draw_nothing, &tg_case_kept_fraction_and_scale,
             &tg_case_mask_matches_cpu_uniforms_under_one_seed, &tg_case_dropout2d_drops_whole_channels,
             &tg_case_p1_gives_x_times_zero, &tg_case_gradcheck_with_a_fixed_seed, &tg_case_error_messages)
