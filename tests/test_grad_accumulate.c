/* Gradient accumulation on the tape: where a tensor feeds several ops, the backward sums
 * their gradients, in place into the first one when nothing else holds it. Checked
 * against closed forms: a residual chain (the shape of a ResNet block), a tensor added
 * to itself (one gradient tensor reaching a slot twice, which must not be summed into
 * itself), a gradient a hook keeps, and a non-leaf input's gradient that
 * tg_autograd_grad returns while the slot is also summed into. */
#include "harness.h"

static tg_device *dev(void) { return tg_test_device(); }

static double sum_of(tg_tensor *t) { return tg_item(tg_sum(t, TG_ALL, false)); }

/* h = x * 3; y = relu-free residual chain: a = h * h; b = exp(h) + a + h; loss = sum(b).
 * dloss/dx = 3 (exp(h) + 2h + 1). h's slot gets three gradients. */
TEST(residual_fan_out) {
    double xs[6] = { -0.7, -0.2, 0.1, 0.3, 0.5, 0.9 }, out[6];
    tg_tensor *x = tg_param(tg_from_f64(xs, TG_SHAPE(2, 3), dev()));
    tg_tensor *h = tg_mul_scalar(x, 3);
    tg_tensor *loss = tg_sum(tg_add(tg_add(tg_exp(h), tg_mul(h, h)), h), TG_ALL, false);
    CHECK(tg_backward(loss) == TG_OK);
    CHECK(tg_copy_to_host(tg_grad(x), out, sizeof out) == TG_OK);
    for (int i = 0; i < 6; i++) {
        double hv = 3 * xs[i];
        CHECK_NEAR(out[i], 3 * (exp(hv) + 2 * hv + 1), 1e-12);
    }
}

/* d(sum(h + h))/dx with h = 2x: the add hands the same gradient to both inputs. */
TEST(same_gradient_twice) {
    tg_tensor *x = tg_param(tg_ones(TG_F32, TG_SHAPE(1000), dev()));
    tg_tensor *h = tg_mul_scalar(x, 2);
    CHECK(tg_backward(tg_sum(tg_add(h, h), TG_ALL, false)) == TG_OK);
    CHECK_NEAR(sum_of(tg_grad(x)), 4000, 0);
}

/* A hook on a consumer's input keeps the gradient it saw; the later sum into the slot
 * must not change that tensor. */
static tg_tensor *g_kept;
static tg_tensor *keep_hook(tg_tensor *g, void *ctx) {
    (void)ctx;
    g_kept = tg_retain(g);
    return g;
}

TEST(kept_gradient_unchanged) {
    tg_tensor *x = tg_param(tg_ones(TG_F64, TG_SHAPE(8), dev()));
    tg_tensor *h = tg_mul_scalar(x, 1);
    tg_tensor *b = tg_mul_scalar(h, 7); /* recorded first, so its gradient reaches h's slot second */
    tg_tensor *a = tg_add_scalar(h, 5); /* its rule passes the gradient on as it is: h's slot gets the kept tensor */
    g_kept = NULL;
    CHECK(tg_register_hook(a, keep_hook, NULL) == TG_OK);
    tg_tensor *c = tg_ones(TG_F64, TG_SHAPE(8), dev()); /* a dense gradient for a, not an expanded scalar */
    tg_tensor *loss = tg_add(tg_sum(tg_mul(a, c), TG_ALL, false), tg_sum(b, TG_ALL, false));
    CHECK(tg_backward(loss) == TG_OK);
    CHECK_NEAR(sum_of(tg_grad(x)), 8 * 8, 0);
    CHECK(g_kept != NULL);
    if (g_kept) CHECK_NEAR(sum_of(g_kept), 8, 0);
    tg_release(g_kept);
}

/* tg_autograd_grad for a non-leaf h that fans out: its complete gradient comes back. */
TEST(captured_non_leaf) {
    tg_tensor *x = tg_param(tg_full(TG_F32, TG_SHAPE(4, 4), 2, dev()));
    tg_tensor *h = tg_mul_scalar(x, 1);
    tg_tensor *loss = tg_add(tg_sum(tg_square(h), TG_ALL, false), tg_sum(tg_mul_scalar(h, 3), TG_ALL, false));
    tg_tensor *wrt[2] = { h, x }, *g[2] = { NULL, NULL };
    CHECK(tg_autograd_grad(1, &loss, NULL, 2, wrt, g, NULL) == TG_OK);
    CHECK(g[0] && g[1]);
    if (g[0]) CHECK_NEAR(sum_of(g[0]), 16 * 7, 0); /* 2h + 3 */
    if (g[1]) CHECK_NEAR(sum_of(g[1]), 16 * 7, 0);
}

TG_TEST_MAIN(&tg_case_residual_fan_out, &tg_case_same_gradient_twice, &tg_case_kept_gradient_unchanged,
             &tg_case_captured_non_leaf)
