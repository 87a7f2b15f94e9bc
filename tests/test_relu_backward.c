/* relu's gradient: the one-pass threshold_backward the CPU runs when the backward is not
 * recorded, against the closed form (dout where x > 0, else 0) on a large f32 tensor
 * (threaded rows, zeros, negatives, NaN), on strided views and f64; and the same values
 * from the recorded composition (create_graph) that second order relies on. relu saves
 * its output, so writing into that output in place before backward is reported. */
#include "harness.h"

static tg_device *dev(void) { return tg_test_device(); }

/* x: a mix of positives, negatives, +-0 and NaN; g: anything, including inf. */
static float x_at(int64_t i) {
    switch (i % 7) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return (float)NAN;
    case 3: return -1.5f - (float)(i % 13);
    default: return 0.25f + (float)(i % 11);
    }
}
static float g_at(int64_t i) { return i % 29 == 5 ? INFINITY : (float)(i % 17) - 8.5f; }

/* Gradient of sum(relu(x) * g) with respect to x, with or without create_graph. */
static tg_tensor *relu_grad_of(tg_tensor *x, tg_tensor *g, bool create_graph) {
    tg_tensor *y = tg_relu(x), *dx = NULL;
    tg_tensor *loss = tg_sum(tg_mul(y, g), TG_ALL, false);
    if (!loss) return NULL;
    tg_backward_opts o = { .create_graph = create_graph };
    return tg_autograd_grad(1, &loss, NULL, 1, &x, &dx, &o) == TG_OK ? dx : NULL;
}

TEST(closed_form_large_f32) {
    const int64_t n = 1 << 20; /* several threads' rows */
    float *xs = malloc((size_t)n * sizeof *xs), *gs = malloc((size_t)n * sizeof *gs), *out = malloc((size_t)n * 4);
    CHECK(xs && gs && out);
    if (!xs || !gs || !out) goto done;
    for (int64_t i = 0; i < n; i++) xs[i] = x_at(i), gs[i] = g_at(i);
    tg_tensor *x = tg_param(tg_from_f32(xs, TG_SHAPE(64, n / 64), dev()));
    tg_tensor *g = tg_from_f32(gs, TG_SHAPE(64, n / 64), dev());
    for (int cg = 0; cg < 2; cg++) {
        tg_tensor *dx = relu_grad_of(x, g, cg);
        CHECK(dx && tg_copy_to_host(dx, out, (size_t)n * 4) == TG_OK);
        if (!dx) continue;
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float want = xs[i] > 0 ? gs[i] : 0.0f;
            if (!(out[i] == want || (isnan(want) && isnan(out[i])))) bad++;
        }
        if (!cg) CHECK(bad == 0); /* the fused pass: exactly the closed form, NaN x and inf g give 0 */
        else { /* the composition g * step(x): the same except where g is inf and x <= 0 (inf * 0) */
            int64_t expected_nan = 0;
            for (int64_t i = 0; i < n; i++) expected_nan += isinf(gs[i]) && !(xs[i] > 0);
            CHECK(bad == expected_nan);
        }
    }
done:
    free(xs), free(gs), free(out);
}

TEST(strided_views_f64) {
    double xs[24], gs[24], out[24];
    for (int i = 0; i < 24; i++) xs[i] = (i % 3 == 0) ? -(double)i : (double)i - 11.0, gs[i] = 0.5 * i + 1;
    tg_tensor *base = tg_param(tg_from_f64(xs, TG_SHAPE(4, 6), dev()));
    tg_tensor *g = tg_from_f64(gs, TG_SHAPE(6, 4), dev());
    /* relu of a transposed view, with a transposed dout: both strided */
    tg_tensor *xt = tg_transpose(base, 0, 1);
    tg_tensor *loss = tg_sum(tg_mul(tg_relu(xt), tg_transpose(tg_transpose(g, 0, 1), 0, 1)), TG_ALL, false);
    tg_tensor *dx = NULL;
    CHECK(tg_autograd_grad(1, &loss, NULL, 1, &base, &dx, NULL) == TG_OK);
    CHECK(dx && tg_copy_to_host(tg_contiguous(dx), out, sizeof out) == TG_OK);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 6; c++) {
            double x = xs[r * 6 + c], gv = gs[c * 4 + r];
            CHECK_NEAR(out[r * 6 + c], x > 0 ? gv : 0.0, 0);
        }
}

TEST(recorded_and_fused_agree_f64) {
    tg_manual_seed(3);
    tg_tensor *x = tg_param(tg_randn(TG_F64, TG_SHAPE(3, 50), dev()));
    tg_tensor *g = tg_randn(TG_F64, TG_SHAPE(3, 50), dev());
    tg_tensor *a = relu_grad_of(x, g, false), *b = relu_grad_of(x, g, true);
    CHECK(a && b);
    if (a && b) CHECK_NEAR(tg_item(tg_sum(tg_abs(tg_sub(a, b)), TG_ALL, false)), 0, 0);
}

TEST(output_written_in_place_is_reported) {
    tg_tensor *x = tg_param(tg_randn(TG_F32, TG_SHAPE(8), dev()));
    tg_tensor *y = tg_relu(x);
    tg_tensor *loss = tg_sum(tg_square(tg_add_scalar(y, 0)), TG_ALL, false);
    tg_set_grad_enabled(false);
    CHECK(tg_add_(y, tg_ones_like(y)) == TG_OK);
    tg_set_grad_enabled(true);
    CHECK(tg_backward(loss) != TG_OK);
    CHECK(strstr(tg_last_error(), "tg_relu") != NULL);
}

TG_TEST_MAIN(&tg_case_closed_form_large_f32, &tg_case_strided_views_f64, &tg_case_recorded_and_fused_agree_f64,
             &tg_case_output_written_in_place_is_reported)
