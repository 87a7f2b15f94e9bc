/* The backward engine: accumulation, retain_graph and freed graphs, create_graph and
 * second order (a Hessian-vector product), the functional tg_autograd_grad, grad mode,
 * detach, and version counters on saved tensors. Expected gradients are derived by hand. */
#include "harness.h"

static tg_tensor *vec(tg_device *dev, int n, const double *v) { return tg_from_f64(v, TG_SHAPE(n), dev); }

static bool values_are(tg_tensor *t, int n, const double *want, double tol) {
    double *v = tg_test_values(t);
    bool ok = v != NULL && tg_numel(t) == n;
    for (int i = 0; ok && i < n; i++) ok = fabs(v[i] - want[i]) <= tol;
    free(v);
    return ok;
}

TEST(grad_accumulates_until_zeroed) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, 2, 3 }));
    for (int k = 0; k < 2; k++) CHECK(tg_backward(tg_sum(tg_square(x), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 4, 8, 12 }, 0)); /* 2 * 2x */
    tg_zero_grad(x);
    CHECK_ERROR(tg_grad(x), "tg_grad: no gradient yet (run tg_backward on a loss that depends on this tensor)");
    CHECK(tg_backward(tg_sum(x, TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 1, 1, 1 }, 0));
}

TEST(diamond_and_broadcast) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 3, -1 }));
    CHECK(tg_backward(tg_sum(tg_add(tg_mul(x, x), x), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 7, -1 }, 0)); /* 2x + 1 */
    tg_tensor *a = tg_param(tg_ones(TG_F64, TG_SHAPE(3, 1), dev));
    tg_tensor *b = tg_param(tg_ones(TG_F64, TG_SHAPE(1, 4), dev));
    CHECK(tg_backward(tg_sum(tg_mul(a, tg_mul_scalar(b, 2)), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(a), 3, (double[]){ 8, 8, 8 }, 0));
    CHECK(values_are(tg_grad(b), 4, (double[]){ 6, 6, 6, 6 }, 0));
}

TEST(backward_with_grad_output) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, 2, 3 }));
    tg_tensor *y = tg_mul_scalar(x, 5);
    CHECK(tg_backward_ex(y, vec(dev, 3, (double[]){ 1, 0, -1 }), NULL) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 5, 0, -5 }, 0));
    CHECK_ERROR(tg_backward(tg_mul_scalar(x, 2)), "tg_backward: the output has shape [3]; a gradient is implicit only for one element (use tg_backward_ex)");
    CHECK_ERROR(tg_backward_ex(tg_mul_scalar(x, 2), tg_ones(TG_F64, TG_SHAPE(2), dev), NULL), "tg_backward: grad_output [2] f64 does not match the output [3] f64");
}

TEST(retain_graph_and_freed_graph) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *loss = tg_sum(tg_exp(x), TG_ALL, false);
    CHECK(tg_backward_ex(loss, NULL, &(tg_backward_opts){ .retain_graph = true }) == TG_OK);
    CHECK(tg_backward(loss) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 2 * exp(1), 2 * exp(2) }, 1e-12));
    CHECK_ERROR(tg_backward(loss), "tg_backward: the graph through tg_reshape was already freed by a backward pass; pass retain_graph to run backward twice");
}

/* f(x) = sum(x^3): gradient 3x^2, Hessian diag(6x), so H v = 6 x v. */
TEST(hessian_vector_product) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, -2, 0.5 }));
    tg_tensor *v = vec(dev, 3, (double[]){ 1, 2, 3 });
    tg_tensor *f = tg_sum(tg_pow_scalar(x, 3), TG_ALL, false);
    tg_tensor *g;
    CHECK(tg_autograd_grad(1, &f, NULL, 1, &x, &g, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
    CHECK(values_are(g, 3, (double[]){ 3, 12, 0.75 }, 1e-12));
    CHECK(tg_requires_grad(g));
    CHECK(tg_backward(tg_sum(tg_mul(g, v), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 6, -24, 9 }, 1e-12));
}

/* Second order through saved outputs: d2/dx2 exp(x) = exp(x), d2/dx2 tanh = -2 tanh (1 - tanh^2). */
TEST(second_order_through_saved_outputs) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 0.3, -0.7 }));
    tg_tensor *f = tg_sum(tg_add(tg_exp(x), tg_tanh(x)), TG_ALL, false);
    tg_tensor *g;
    CHECK(tg_autograd_grad(1, &f, NULL, 1, &x, &g, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
    CHECK(tg_backward(tg_sum(g, TG_ALL, false)) == TG_OK);
    double want[2];
    for (int i = 0; i < 2; i++) {
        double xi = i ? -0.7 : 0.3, t = tanh(xi);
        want[i] = exp(xi) - 2 * t * (1 - t * t);
    }
    CHECK(values_are(tg_grad(x), 2, want, 1e-12));
}

TEST(autograd_grad_leaves_dot_grad_alone) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *unused = tg_param(vec(dev, 2, (double[]){ 5, 5 }));
    tg_tensor *mid = tg_mul_scalar(x, 3);
    tg_tensor *y = tg_sum(tg_square(mid), TG_ALL, false);
    tg_tensor *in[3] = { x, unused, mid }, *g[3];
    CHECK(tg_autograd_grad(1, &y, NULL, 3, in, g, NULL) == TG_OK);
    CHECK(values_are(g[0], 2, (double[]){ 18, 36 }, 0)); /* 2 * 3x * 3 */
    CHECK(values_are(g[1], 2, (double[]){ 0, 0 }, 0));
    CHECK(values_are(g[2], 2, (double[]){ 6, 12 }, 0));  /* 2 * mid */
    CHECK_ERROR(tg_grad(x), "tg_grad: no gradient yet (run tg_backward on a loss that depends on this tensor)");
    CHECK_ERROR(tg_autograd_grad(1, &y, NULL, 1, (tg_tensor *[]){ tg_ones(TG_F64, TG_SHAPE(1), dev) }, g, NULL),
                "tg_autograd_grad: input 0 does not require grad");
}

TEST(grad_mode_and_detach) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    bool prev = tg_set_grad_enabled(false);
    CHECK(prev && !tg_is_grad_enabled());
    tg_tensor *y = tg_mul(x, x);
    CHECK(!tg_requires_grad(y) && tg_is_leaf(y));
    tg_set_grad_enabled(prev);
    tg_tensor *d = tg_detach(tg_mul(x, x));
    CHECK(!tg_requires_grad(d) && tg_is_leaf(d));
    CHECK(tg_backward(tg_sum(tg_mul(x, d), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 1, 4 }, 0)); /* d is a constant */
    CHECK_ERROR(tg_set_requires_grad(tg_mul(x, x), false), "tg_set_requires_grad: only leaves can change it; this tensor was made by tg_mul (use tg_detach for a leaf)");
    CHECK_ERROR(tg_param(tg_zeros(TG_I32, TG_SHAPE(2), dev)), "tg_set_requires_grad: only floating tensors can require grad, got i32");
}

TEST(version_counter_catches_in_place_update) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *x = vec(dev, 2, (double[]){ 3, 4 });
    tg_tensor *loss = tg_sum(tg_mul(w, x), TG_ALL, false); /* saves x for dw */
    CHECK_ERROR(tg_add_(w, x), "tg_add_: dst requires grad and grad mode is on; update parameters with grad mode off (tg_set_grad_enabled(false))");
    CHECK(tg_add_(x, x) == TG_OK);                          /* x is not a parameter: allowed */
    CHECK_ERROR(tg_backward(loss), "tg_backward: a tensor saved by tg_mul was modified in place (version 1, saved at 0); clone it before updating it");
}

TEST(sgd_step_under_no_grad) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    CHECK(tg_backward(tg_sum(tg_square(w), TG_ALL, false)) == TG_OK);
    bool prev = tg_set_grad_enabled(false);
    CHECK(tg_axpy_(w, -0.25, tg_grad(w)) == TG_OK);
    tg_set_grad_enabled(prev);
    CHECK(values_are(w, 2, (double[]){ 0.5, 1 }, 0)); /* w - 0.25 * 2w */
}

/* axpy into a strided view with a broadcast source; the rest of the base is untouched. */
TEST(axpy_on_views_and_broadcast) {
    tg_device *dev = tg_test_device();
    tg_tensor *base = tg_from_f64((double[]){ 1, 2, 3, 4, 5, 6 }, TG_SHAPE(2, 3), dev);
    tg_tensor *col = tg_slice(base, 1, 0, 3, 2); /* columns 0 and 2: strides (3, 2) */
    CHECK(tg_axpy_(col, 2, vec(dev, 2, (double[]){ 10, 100 })) == TG_OK);
    CHECK(values_are(base, 6, (double[]){ 21, 2, 203, 24, 5, 206 }, 0));
    CHECK_ERROR(tg_axpy_(col, 1, tg_ones(TG_F32, TG_SHAPE(2), dev)), "tg_axpy_: dtypes differ: f64 and f32");
    CHECK_ERROR(tg_axpy_(col, 1, tg_ones(TG_F64, TG_SHAPE(3), dev)), "tg_axpy_: shapes [2,2] and [3] do not broadcast (axis -1: 2 vs 3)");
    /* A source that is a flipped view of dst itself reads the values from before the update. */
    tg_tensor *v = vec(dev, 3, (double[]){ 1, 2, 3 });
    CHECK(tg_axpy_(v, 1, tg_flip(v, TG_AXES(0))) == TG_OK);
    CHECK(values_are(v, 3, (double[]){ 4, 4, 4 }, 0));
    tg_tensor *m = vec(dev, 3, (double[]){ 1, 2, 3 });
    CHECK(tg_add_(m, tg_flip(m, TG_AXES(0))) == TG_OK);
    CHECK(values_are(m, 3, (double[]){ 4, 4, 4 }, 0));
    tg_tensor *ints = tg_zeros(TG_I32, TG_SHAPE(2), dev);
    CHECK_ERROR(tg_axpy_(ints, 1, ints), "tg_axpy_: expected a floating dtype (f32 or f64), got i32");
}

TG_TEST_MAIN(&tg_case_grad_accumulates_until_zeroed, &tg_case_diamond_and_broadcast,
             &tg_case_backward_with_grad_output, &tg_case_retain_graph_and_freed_graph,
             &tg_case_hessian_vector_product, &tg_case_second_order_through_saved_outputs,
             &tg_case_autograd_grad_leaves_dot_grad_alone, &tg_case_grad_mode_and_detach,
             &tg_case_version_counter_catches_in_place_update, &tg_case_sgd_step_under_no_grad,
             &tg_case_axpy_on_views_and_broadcast)
