/* Gradient hooks on leaves and intermediate tensors, and parameters flattened into
 * one buffer whose gradient backward fills in place. Closed forms throughout. */
#include "harness.h"

static double at(tg_tensor *t, int64_t i) {
    double *v = tg_test_values(t);
    double r = v ? v[i] : NAN;
    free(v);
    return r;
}

static tg_tensor *double_it(tg_tensor *g, void *ctx) {
    int *calls = ctx;
    (*calls)++;
    return tg_mul_scalar(g, 2);
}

static tg_tensor *inspect(tg_tensor *g, void *ctx) {
    *(double *)ctx = tg_item(tg_sum(g, TG_ALL, false));
    return g;
}

static tg_tensor *wrong_shape(tg_tensor *g, void *ctx) {
    (void)ctx;
    return tg_sum(g, TG_ALL, false);
}

/* loss = sum(3 * (w * c)): dL/d(w*c) = 3, dL/dw = 3c; a hook on w doubles it. */
TEST(hooks_on_leaves_and_intermediates) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_from_f64((double[]){ 1, 2 }, TG_SHAPE(2), dev));
    tg_tensor *c = tg_from_f64((double[]){ 5, 7 }, TG_SHAPE(2), dev);
    int calls = 0;
    double seen = 0;
    CHECK(tg_register_hook(w, double_it, &calls) == TG_OK);
    tg_tensor *h = tg_mul(w, c);
    CHECK(tg_register_hook(h, inspect, &seen) == TG_OK);
    CHECK(tg_backward(tg_sum(tg_mul_scalar(h, 3), TG_ALL, false)) == TG_OK);
    CHECK(calls == 1);
    CHECK_NEAR(seen, 6, 0);
    CHECK_NEAR(at(tg_grad(w), 0), 2 * 3 * 5, 0);
    CHECK_NEAR(at(tg_grad(w), 1), 2 * 3 * 7, 0);
    tg_tensor *g;
    tg_tensor *loss = tg_sum(tg_mul(w, c), TG_ALL, false);
    CHECK(tg_autograd_grad(1, &loss, NULL, 1, &w, &g, NULL) == TG_OK); /* hooks run here too */
    CHECK(calls == 2);
    CHECK_NEAR(at(g, 1), 14, 0);
    tg_remove_hooks(w);
    CHECK(tg_autograd_grad(1, &(tg_tensor *){ tg_sum(tg_mul(w, c), TG_ALL, false) }, NULL, 1, &w, &g, NULL) == TG_OK);
    CHECK(calls == 2);
}

TEST(hook_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_ones(TG_F64, TG_SHAPE(3), dev)), *plain = tg_ones(TG_F64, TG_SHAPE(3), dev);
    CHECK_ERROR(tg_register_hook(plain, inspect, NULL),
                "tg_register_hook: the tensor does not require grad, so no gradient reaches it");
    CHECK_ERROR(tg_register_hook(w, NULL, NULL), "tg_register_hook: fn is NULL");
    CHECK(tg_register_hook(w, wrong_shape, NULL) == TG_OK);
    char want[200];
    snprintf(want, sizeof want, "tg_backward: a gradient hook returned [] f64 on %s for a gradient [3] f64 on %s",
             tg_device_name(dev), tg_device_name(dev));
    CHECK_ERROR(tg_backward(tg_sum(tg_square(w), TG_ALL, false)), want);
}

/* Three parameters in one buffer: the values and gradients land where they should,
 * and one axpy over the flat buffers is an SGD step of all three. */
TEST(flat_parameters) {
    tg_device *dev = tg_test_device();
    tg_tensor *p[3] = { tg_take(tg_param(tg_from_f64((double[]){ 1, 2, 3, 4 }, TG_SHAPE(2, 2), dev))),
                        tg_take(tg_param(tg_from_f64((double[]){ 5 }, TG_SCALAR_SHAPE, dev))),
                        tg_take(tg_param(tg_from_f64((double[]){ 6, 7 }, TG_SHAPE(2), dev))) };
    tg_tensor *flat, *flat_grad;
    CHECK(tg_params_flatten(3, p, &flat, &flat_grad) == TG_OK);
    double *v = tg_test_values(flat);
    for (int i = 0; i < 7; i++) CHECK_NEAR(v[i], i + 1, 0);
    free(v);
    CHECK(tg_ndim(p[0]) == 2 && tg_size(p[0], 1) == 2 && tg_ndim(p[1]) == 0);
    /* loss = sum(p0^2) + 3 p1 + sum(p2 * p2): grads 2 p0, 3, 2 p2 */
    tg_tensor *loss = tg_add(tg_add(tg_sum(tg_square(p[0]), TG_ALL, false), tg_mul_scalar(p[1], 3)),
                             tg_sum(tg_mul(p[2], p[2]), TG_ALL, false));
    CHECK(tg_backward(loss) == TG_OK);
    double want_g[7] = { 2, 4, 6, 8, 3, 12, 14 };
    double *g = tg_test_values(flat_grad);
    for (int i = 0; i < 7; i++) CHECK_NEAR(g[i], want_g[i], 0);
    free(g);
    CHECK(tg_grad(p[2]) != NULL);
    CHECK_NEAR(at(tg_grad(p[2]), 1), 14, 0);
    bool prev = tg_set_grad_enabled(false);
    CHECK(tg_axpy_(flat, -0.5, flat_grad) == TG_OK);
    tg_set_grad_enabled(prev);
    CHECK_NEAR(at(p[0], 3), 4 - 0.5 * 8, 0);
    CHECK_NEAR(tg_item(p[1]), 5 - 1.5, 0);
    for (int k = 0; k < 3; k++) tg_zero_grad(p[k]);
    CHECK_NEAR(at(flat_grad, 6), 0, 0);
    for (int k = 0; k < 3; k++) tg_release(p[k]);
    tg_release(flat);
    tg_release(flat_grad);
}

TEST(flatten_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *a = tg_param(tg_ones(TG_F32, TG_SHAPE(2), dev)), *b = tg_param(tg_ones(TG_F64, TG_SHAPE(2), dev));
    tg_tensor *flat, *flat_grad;
    char want[256];
    snprintf(want, sizeof want, "tg_params_flatten: parameter 1 is f64 on %s, parameter 0 f32 on %s (one flat buffer "
             "holds one dtype on one device)", tg_device_name(dev), tg_device_name(dev));
    CHECK_ERROR(tg_params_flatten(2, (tg_tensor *[]){ a, b }, &flat, &flat_grad), want);
    tg_tensor *view = tg_reshape(a, TG_SHAPE(2, 1));
    CHECK(view != NULL);
    CHECK_ERROR(tg_params_flatten(1, &a, &flat, &flat_grad),
                "tg_params_flatten: parameter 0 shares its storage with another tensor (a view of it, or it is a view); "
                "flatten tensors that own their storage");
    CHECK_ERROR(tg_params_flatten(1, &(tg_tensor *){ tg_mul_scalar(b, 2) }, &flat, &flat_grad),
                "tg_params_flatten: parameter 0 is not a leaf (it was made by tg_mul_scalar)");
}

TG_TEST_MAIN(&tg_case_hooks_on_leaves_and_intermediates, &tg_case_hook_errors, &tg_case_flat_parameters,
             &tg_case_flatten_errors)
