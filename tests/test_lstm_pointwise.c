/* tg_lstm_pointwise, the LSTM cell's pointwise primitive: forward against a host loop
 * in f64, first and second order against central differences (both outputs weighted),
 * the kernel's backward against the differentiable formulas that create_graph uses,
 * each with the gates whole and in two parts (input + hidden), and the messages of bad
 * arguments. On a device without the kernels the same checks
 * cover the elementwise composition. */
#include "harness.h"

#define N 3
#define H 5

static double sig(double x) { return 1 / (1 + exp(-x)); }

static tg_tensor *values(tg_device *dev, int64_t rows, int64_t cols, double scale, double phase) {
    double v[N * 4 * H];
    for (int64_t k = 0; k < rows * cols; k++) v[k] = scale * sin(0.71 * (double)k + phase);
    return tg_from_f64(v, TG_SHAPE(rows, cols), dev);
}

/* With split, the gates go in as two parts whose sum is the same gates. */
static void check_forward(int *tg_failed_, bool split) {
    tg_device *dev = tg_test_device();
    tg_tensor *gates = values(dev, N, 4 * H, 2.5, 0.3), *c_prev = values(dev, N, H, 1.5, -1.1), *h, *c;
    tg_tensor *part = values(dev, N, 4 * H, 0.8, 2.1);
    CHECK(tg_lstm_pointwise(split ? tg_sub(gates, part) : gates, split ? part : NULL, c_prev, &h, &c) == TG_OK);
    double *g = tg_test_values(gates), *cp = tg_test_values(c_prev), *hv = tg_test_values(h), *cv = tg_test_values(c);
    double err = 0;
    for (int n = 0; g && cp && hv && cv && n < N; n++)
        for (int j = 0; j < H; j++) {
            const double *r = g + n * 4 * H;
            double cc = sig(r[H + j]) * cp[n * H + j] + sig(r[j]) * tanh(r[2 * H + j]);
            err = fmax(err, fabs(cc - cv[n * H + j]));
            err = fmax(err, fabs(sig(r[3 * H + j]) * tanh(cc) - hv[n * H + j]));
        }
    CHECK(g && cp && hv && cv && err < 1e-14);
    free(g), free(cp), free(hv), free(cv);
}

TEST(forward_matches_host_loop) { check_forward(tg_failed_, false); }
TEST(forward_with_hidden_gates_matches_host_loop) { check_forward(tg_failed_, true); }

/* h + 3 c: a gradient check then sees both outputs. */
static tg_tensor *f_cell(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *h, *c;
    if (tg_lstm_pointwise(in[0], NULL, in[1], &h, &c) != TG_OK) return NULL;
    return tg_add(h, tg_mul_scalar(c, 3));
}

/* in: input gates, c_prev, hidden gates. */
static tg_tensor *f_cell_split(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *h, *c;
    if (tg_lstm_pointwise(in[0], in[2], in[1], &h, &c) != TG_OK) return NULL;
    return tg_add(h, tg_mul_scalar(c, 3));
}

TEST(gradcheck_and_gradgradcheck) {
    tg_device *dev = tg_test_device();
    tg_tensor *in[3] = { tg_param(values(dev, N, 4 * H, 2.0, 0.9)), tg_param(values(dev, N, H, 1.2, 0.4)),
                         tg_param(values(dev, N, 4 * H, 0.7, 1.3)) };
    tg_gradcheck_report r;
    CHECK(tg_gradcheck(f_cell, NULL, 2, in, NULL, &r) == TG_OK);
    if (r.input >= 0) fprintf(stderr, "  %s\n", r.message);
    CHECK(tg_gradgradcheck(f_cell, NULL, 2, in, NULL, &r) == TG_OK);
    if (r.input >= 0) fprintf(stderr, "  %s\n", r.message);
    CHECK(tg_gradcheck(f_cell_split, NULL, 3, in, NULL, &r) == TG_OK);
    if (r.input >= 0) fprintf(stderr, "  %s\n", r.message);
    CHECK(tg_gradgradcheck(f_cell_split, NULL, 3, in, NULL, &r) == TG_OK);
    if (r.input >= 0) fprintf(stderr, "  %s\n", r.message);
}

/* The fast backward (tg_backward, no create_graph) and the differentiable one
 * (tg_autograd_grad with create_graph) give the same gradients. */
static double max_diff(tg_tensor *a, tg_tensor *b) {
    double *x = tg_test_values(a), *y = tg_test_values(b), d = x && y ? 0 : INFINITY;
    for (int64_t k = 0; x && y && k < tg_numel(a); k++) d = fmax(d, fabs(x[k] - y[k]));
    free(x), free(y);
    return d;
}

static void check_backwards_agree(int *tg_failed_, bool split) {
    tg_device *dev = tg_test_device();
    tg_tensor *gates = tg_param(values(dev, N, 4 * H, 3.0, 1.7)), *c_prev = tg_param(values(dev, N, H, 2.0, 0.2));
    tg_tensor *hidden = split ? tg_param(values(dev, N, 4 * H, 1.0, 0.6)) : NULL;
    tg_tensor *w = values(dev, N, H, 1.0, 2.5);
    tg_tensor *h, *c;
    CHECK(tg_lstm_pointwise(gates, hidden, c_prev, &h, &c) == TG_OK);
    tg_tensor *loss = tg_sum(tg_add(tg_mul(h, w), tg_square(c)), TG_ALL, false);
    tg_tensor *g2[3];
    tg_backward_opts o = { .create_graph = true };
    CHECK(tg_autograd_grad(1, &loss, NULL, split ? 3 : 2, (tg_tensor *[]){ gates, c_prev, hidden }, g2, &o) == TG_OK);
    CHECK(tg_backward(loss) == TG_OK);
    CHECK(max_diff(tg_grad(gates), g2[0]) < 1e-14);
    CHECK(max_diff(tg_grad(c_prev), g2[1]) < 1e-14);
    if (split) { /* d(gates) flows to both parts */
        CHECK(max_diff(tg_grad(hidden), g2[2]) < 1e-14);
        CHECK(max_diff(tg_grad(hidden), tg_grad(gates)) == 0);
    }
}

TEST(kernel_backward_equals_composed_backward) { check_backwards_agree(tg_failed_, false); }
TEST(kernel_backward_equals_composed_backward_with_hidden_gates) { check_backwards_agree(tg_failed_, true); }

TEST(bad_arguments) {
    tg_device *dev = tg_test_device();
    tg_tensor *h, *c, *g = values(dev, N, 4 * H, 1, 0), *cp = values(dev, N, H, 1, 0);
    CHECK_ERROR(tg_lstm_pointwise(values(dev, N, 6, 1, 0), NULL, cp, &h, &c),
                "tg_lstm_pointwise: input_gates must be (N, 4*H), got [3,6]");
    CHECK_ERROR(tg_lstm_pointwise(g, NULL, values(dev, N, 4, 1, 0), &h, &c),
                "tg_lstm_pointwise: c_prev must be (N, H) = [3,5] for input_gates [3,20], got [3,4]");
    CHECK_ERROR(tg_lstm_pointwise(g, NULL, tg_cast(cp, TG_F32), &h, &c),
                "tg_lstm_pointwise: dtypes differ: f64 and f32 (convert one with tg_cast)");
    CHECK_ERROR(tg_lstm_pointwise(g, values(dev, N, 5, 1, 0), cp, &h, &c),
                "tg_lstm_pointwise: hidden_gates must have the input gates' shape [3,20], got [3,5]");
    CHECK_ERROR(tg_lstm_pointwise(g, tg_cast(g, TG_F32), cp, &h, &c),
                "tg_lstm_pointwise: dtypes differ: f64 and f32 (convert one with tg_cast)");
    CHECK_ERROR(tg_lstm_pointwise(g, NULL, cp, NULL, &c), "tg_lstm_pointwise: h and c must not be NULL");
    CHECK_ERROR(tg_lstm_pointwise(NULL, NULL, cp, &h, &c), "tg_lstm_pointwise: input_gates is NULL");
}

TG_TEST_MAIN(&tg_case_forward_matches_host_loop, &tg_case_forward_with_hidden_gates_matches_host_loop,
             &tg_case_gradcheck_and_gradgradcheck, &tg_case_kernel_backward_equals_composed_backward,
             &tg_case_kernel_backward_equals_composed_backward_with_hidden_gates, &tg_case_bad_arguments)
