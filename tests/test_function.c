/* User-defined differentiable ops: a fused swish whose forward is a host loop of its
 * own (a custom kernel) and whose backward is written with ops; a two-output function;
 * gradcheck and gradgradcheck against central differences; the error paths. */
#include "harness.h"

/* y = x * sigmoid(x), computed by hand on the host: the "custom kernel". */
static tg_status swish_forward(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    int64_t n = tg_numel(in[0]);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    tg_tensor *x64 = tg_cast(in[0], TG_F64);
    if (!v || !x64 || tg_copy_to_host(x64, v, (size_t)n * sizeof *v) != TG_OK) {
        free(v);
        return TG_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) v[i] = v[i] / (1 + exp(-v[i]));
    out[0] = tg_cast(tg_from_f64(v, tg_shape_of(in[0]), tg_device_of(in[0])), tg_dtype_of(in[0]));
    free(v);
    tg_function_save(c, in[0]);
    int *calls = tg_function_user(c);
    if (calls) (*calls)++;
    return out[0] ? TG_OK : tg_last_status();
}

/* dy/dx = s (1 + x (1 - s)), written with ops so that it is differentiable again. */
static tg_status swish_backward(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *x = tg_function_saved(c, 0);
    if (!x) return tg_last_status();
    tg_tensor *s = tg_sigmoid(x);
    gin[0] = tg_mul(gout[0], tg_mul(s, tg_add_scalar(tg_mul(x, tg_add_scalar(tg_neg(s), 1)), 1)));
    return gin[0] ? TG_OK : tg_last_status();
}

static const tg_function swish = { "swish", 1, 1, swish_forward, swish_backward };

static tg_tensor *swish_of(tg_tensor *const *in, void *ctx) {
    return tg_function_call(&swish, ctx, 1, in);
}

TEST(swish_forward_matches_the_formula) {
    tg_device *dev = tg_test_device();
    double xs[] = { -3, -0.5, 0, 0.25, 2 };
    tg_tensor *x = tg_from_f64(xs, TG_SHAPE(5), dev);
    int calls = 0;
    tg_tensor *y = tg_function_call(&swish, &calls, 1, &x);
    double *v = tg_test_values(y);
    for (int i = 0; i < 5; i++) CHECK_NEAR(v[i], xs[i] / (1 + exp(-xs[i])), 1e-15);
    free(v);
    CHECK(calls == 1);
    CHECK(!tg_requires_grad(y)); /* no input required grad: nothing recorded */
}

TEST(swish_gradcheck_and_gradgradcheck) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(11);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(3, 4), dev);
    tg_gradcheck_report rep;
    CHECK(tg_gradcheck(swish_of, NULL, 1, &x, NULL, &rep) == TG_OK);
    if (rep.message[0]) printf("  %s\n", rep.message);
    CHECK(tg_gradgradcheck(swish_of, NULL, 1, &x, NULL, &rep) == TG_OK);
    if (rep.message[0]) printf("  %s\n", rep.message);
}

/* The analytic gradient at a point, against the closed form. */
TEST(swish_gradient_in_a_loss) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(tg_from_f64((double[]){ -1, 0.5 }, TG_SHAPE(2), dev));
    CHECK(tg_backward(tg_sum(tg_function_call(&swish, NULL, 1, &x), TG_ALL, false)) == TG_OK);
    double *g = tg_test_values(tg_grad(x));
    for (int i = 0; i < 2; i++) {
        double v = i ? 0.5 : -1, s = 1 / (1 + exp(-v));
        CHECK_NEAR(g[i], s * (1 + v * (1 - s)), 1e-15);
    }
    free(g);
}

/* (sin x, cos x): two outputs; a loss that uses only the second still gets a zero
 * gradient for the first. d/dx [a sin x + b cos x] = a cos x - b sin x. */
static tg_status sincos_forward(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    out[0] = tg_sin(in[0]);
    out[1] = tg_cos(in[0]);
    tg_function_save(c, out[0]); /* saving outputs must not make a cycle */
    tg_function_save(c, out[1]);
    return out[0] && out[1] ? TG_OK : tg_last_status();
}

static tg_status sincos_backward(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *s = tg_function_saved(c, 0), *co = tg_function_saved(c, 1);
    gin[0] = tg_sub(tg_mul(gout[0], co), tg_mul(gout[1], s));
    return gin[0] ? TG_OK : tg_last_status();
}

static const tg_function sin_cos = { "sincos", 1, 2, sincos_forward, sincos_backward };

TEST(two_outputs) {
    tg_device *dev = tg_test_device();
    int64_t live = tg_live_tensors();
    tg_scope_begin();
    tg_tensor *x = tg_param(tg_from_f64((double[]){ 0.3, -1.2 }, TG_SHAPE(2), dev)), *out[2];
    CHECK(tg_function_apply(&sin_cos, NULL, &x, out) == TG_OK);
    CHECK(tg_backward(tg_sum(tg_mul_scalar(out[1], 3), TG_ALL, false)) == TG_OK);
    double *g = tg_test_values(tg_grad(x));
    CHECK_NEAR(g[0], -3 * sin(0.3), 1e-15);
    CHECK_NEAR(g[1], -3 * sin(-1.2), 1e-15);
    free(g);
    tg_scope_end();
    CHECK(tg_live_tensors() == live);
}

/* A backward that runs a backward of its own: y = x^2 whose rule differentiates a fresh
 * graph of x^2 with tg_autograd_grad. The outer run's state must survive the inner one. */
static tg_status nested_forward(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    tg_function_save(c, in[0]);
    out[0] = tg_square(in[0]);
    return out[0] ? TG_OK : tg_last_status();
}

static tg_status nested_backward(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *x = tg_param(tg_detach(tg_function_saved(c, 0))), *g;
    bool prev = tg_set_grad_enabled(true);
    tg_tensor *z = tg_square(x);
    tg_status st = tg_autograd_grad(1, &z, &gout[0], 1, &x, &g, NULL);
    tg_set_grad_enabled(prev);
    gin[0] = st == TG_OK ? g : NULL;
    return st;
}

static const tg_function nested = { "nested", 1, 1, nested_forward, nested_backward };

TEST(backward_inside_a_backward) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(tg_from_f64((double[]){ 1.5, -2 }, TG_SHAPE(2), dev));
    /* loss = sum(3 * nested(x) + x^3): 6x + 3x^2 */
    tg_tensor *loss = tg_sum(tg_add(tg_mul_scalar(tg_function_call(&nested, NULL, 1, &x), 3), tg_pow_scalar(x, 3)),
                             TG_ALL, false);
    CHECK(tg_backward(loss) == TG_OK);
    double *g = tg_test_values(tg_grad(x));
    CHECK_NEAR(g[0], 6 * 1.5 + 3 * 1.5 * 1.5, 1e-12);
    CHECK_NEAR(g[1], 6 * -2 + 3 * 4, 1e-12);
    free(g);
}

static tg_status failing_forward(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    (void)c, (void)out;
    return tg_matmul(in[0], in[0]) ? TG_OK : tg_last_status();
}

static const tg_function failing = { "failing", 1, 1, failing_forward, swish_backward };

TEST(errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_ones(TG_F64, TG_SHAPE(2, 3), dev);
    CHECK_ERROR(tg_function_call(&failing, NULL, 1, &x),
                "tg_matmul: inner dimensions differ: [2,3] @ [2,3] (3 != 2)");
    CHECK_ERROR(tg_function_call(&sin_cos, NULL, 1, &x),
                "tg_function_call: sincos takes 1 inputs and gives 2 outputs; tg_function_call needs one output "
                "and was given 1 inputs");
    tg_tensor *none = NULL;
    CHECK_ERROR(tg_function_call(&swish, NULL, 1, &none), "tg_function_call: input 0 is NULL");
    CHECK_ERROR(tg_function_save(NULL, x), "tg_function_save: only inside a function's forward");
}

TG_TEST_MAIN(&tg_case_backward_inside_a_backward, &tg_case_swish_forward_matches_the_formula, &tg_case_swish_gradcheck_and_gradgradcheck,
             &tg_case_swish_gradient_in_a_loss, &tg_case_two_outputs, &tg_case_errors)
