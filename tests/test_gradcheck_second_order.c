/* Second-order gradients with tg_gradgradcheck (f64) of every op that is twice
 * differentiable, including the linear and piecewise-linear ones whose second derivative
 * is zero; and the checker's own behaviour: f32 inputs refused, a failure report that
 * names the input and the element, and a wrong gradient caught at both orders. */
#include "grad_check.h"

/* ================================================================== second order */

static tg_tensor *g_sum(tg_tensor *const *in, void *ctx) { return tg_sum(tg_square(in[0]), TG_AXES(1), false); }
static tg_tensor *g_mean(tg_tensor *const *in, void *ctx) { return tg_mean(tg_mul(in[0], in[0]), TG_AXES(0), true); }
static tg_tensor *g_lse(tg_tensor *const *in, void *ctx) { return tg_logsumexp(in[0], TG_AXES(1), false); }
static tg_tensor *g_lse_all(tg_tensor *const *in, void *ctx) { return tg_logsumexp(in[0], TG_ALL, false); }

TEST(gradgradcheck_ops) {
    tg_manual_seed(13);
    struct {
        const char *name;
        tg_tensor *(*fn)(tg_tensor *);
        int domain;
    } un[] = { { "exp", tg_exp, D_ANY },         { "log", tg_log, D_POS },       { "tanh", tg_tanh, D_ANY },
               { "sigmoid", tg_sigmoid, D_ANY }, { "sin", tg_sin, D_ANY },       { "cos", tg_cos, D_ANY },
               { "sqrt", tg_sqrt, D_POS },       { "rsqrt", tg_rsqrt, D_POS },   { "reciprocal", tg_reciprocal, D_AWAY0 },
               { "square", tg_square, D_ANY },   { "pow_scalar(2.5)", u_pow_25, D_POS },
               { "pow_scalar(3)", u_pow3, D_ANY }, { "pow_scalar(-1.5)", u_pow_m15, D_POS } };
    for (int k = 0; k < (int)(sizeof un / sizeof un[0]); k++) {
        un_box box = { un[k].fn };
        WHAT("gradgrad %s", un[k].name);
        GRADGRADCHECK(f_unary, &box, domain_input(un[k].domain, TG_SHAPE(2, 3)));
        WHAT("gradgrad %s transposed view", un[k].name);
        GRADGRADCHECK(f_unary, &box, tg_transpose(domain_input(un[k].domain, TG_SHAPE(3, 2)), 0, 1));
    }
    bin_box mul = { tg_mul }, div = { tg_div }, pw = { tg_pow };
    WHAT("gradgrad mul broadcast");
    GRADGRADCHECK(f_binary, &mul, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3), -2, 2));
    WHAT("gradgrad mul with itself");
    GRADGRADCHECK(f_binary_self, &mul, uni(TG_SHAPE(2, 3), -2, 2));
    WHAT("gradgrad div broadcast");
    GRADGRADCHECK(f_binary, &div, uni(TG_SHAPE(2, 3), -2, 2), away0(TG_SHAPE(2, 1), 0.5, 2));
    WHAT("gradgrad pow");
    GRADGRADCHECK(f_binary, &pw, uni(TG_SHAPE(2, 3), 0.5, 2), uni(TG_SHAPE(2, 3), -1.5, 1.5));
    WHAT("gradgrad matmul 2-D");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3, 2), -2, 2));
    WHAT("gradgrad matmul batched broadcast");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(2, 1, 2, 3), -2, 2), uni(TG_SHAPE(2, 3, 2), -2, 2));
    WHAT("gradgrad matmul vector");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(3), -2, 2), uni(TG_SHAPE(3, 2), -2, 2));
    for (int lg = 0; lg < 2; lg++)
        for (int axis = 0; axis < 2; axis++) {
            sm_ctx c = { axis, lg, false };
            WHAT("gradgrad %s axis %d", lg ? "log_softmax" : "softmax", axis);
            GRADGRADCHECK(f_softmax, &c, uni(TG_SHAPE(3, 4), -2, 2));
            sm_ctx ct = { axis, lg, true };
            WHAT("gradgrad %s transposed axis %d", lg ? "log_softmax" : "softmax", axis);
            GRADGRADCHECK(f_softmax, &ct, uni(TG_SHAPE(4, 3), -2, 2));
        }
    WHAT("gradgrad logsumexp axis 1");
    GRADGRADCHECK(g_lse, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("gradgrad logsumexp all");
    GRADGRADCHECK(g_lse_all, NULL, uni(TG_SHAPE(2, 3), -2, 2));
    WHAT("gradgrad sum of squares");
    GRADGRADCHECK(g_sum, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("gradgrad mean keepdim");
    GRADGRADCHECK(g_mean, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    for (int k = 0; k < R_COUNT; k++) {
        if (k == R_MAX || k == R_MIN || k == R_SUM || k == R_MEAN) continue; /* sum, mean: linear, below; max, min: gradgradcheck_max_min */
        red_ctx c = { k, TG_AXES(1), false, false };
        WHAT("gradgrad %s axis 1", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &c, distinct(TG_SHAPE(2, 3, 2), 0));
    }
    tg_tensor *lab = i32((const int32_t[]){ 0, 2, 1 }, TG_SHAPE(3));
    ce_ctx ce = { lab, { 0 }, false, false };
    WHAT("gradgrad cross_entropy");
    GRADGRADCHECK(f_ce, &ce, uni(TG_SHAPE(3, 4), -2, 2));
    ce_ctx ce_none = { i32((const int32_t[]){ 0, -100, 1 }, TG_SHAPE(3)), { .reduction = TG_REDUCTION_NONE }, true, false };
    WHAT("gradgrad cross_entropy, ignore_index, no reduction");
    GRADGRADCHECK(f_ce, &ce_none, uni(TG_SHAPE(3, 4), -2, 2));
    ce_ctx ce_nd = { i32((const int32_t[]){ 0, 2, 1, 1 }, TG_SHAPE(2, 2)), { .reduction = TG_REDUCTION_SUM }, true, true };
    WHAT("gradgrad cross_entropy (2,3,2) logits from a transposed view, sum");
    GRADGRADCHECK(f_ce, &ce_nd, uni(TG_SHAPE(3, 2, 2), -2, 2));
    WHAT("gradgrad MLP with tanh, squared loss");
    GRADGRADCHECK(f_mlp_mse, NULL, uni(TG_SHAPE(3, 2), -1, 1), uni(TG_SHAPE(2, 4), -1, 1), uni(TG_SHAPE(4), -1, 1),
                  uni(TG_SHAPE(4, 1), -1, 1));
    tg_tensor *lab4 = i32((const int32_t[]){ 0, 2, 1, 2 }, TG_SHAPE(4));
    WHAT("gradgrad MLP with tanh and cross-entropy");
    GRADGRADCHECK(f_mlp_ce, lab4, uni(TG_SHAPE(4, 3), -1, 1), uni(TG_SHAPE(3, 5), -1, 1), uni(TG_SHAPE(5), -1, 1),
                  uni(TG_SHAPE(5, 3), -1, 1));
}

/* Ops whose gradient does not depend on the input (linear, or piecewise linear away
 * from the kinks) are twice differentiable with a zero second derivative: the check
 * must compare zeros with the numeric zeros, not refuse. */
TEST(gradgradcheck_linear_ops) {
    tg_manual_seed(17);
    bin_box sub = { tg_sub }, add = { tg_add };
    WHAT("gradgrad sub");
    GRADGRADCHECK(f_binary, &sub, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SCALAR_SHAPE, -2, 2));
    WHAT("gradgrad add broadcast");
    GRADGRADCHECK(f_binary, &add, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3), -2, 2));
    for (int k = R_SUM; k <= R_MEAN; k++) {
        red_ctx c = { k, TG_AXES(1), false, false };
        WHAT("gradgrad %s axis 1", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &c, uni(TG_SHAPE(2, 3, 2), -2, 2));
        red_ctx ca = { k, TG_ALL, true, true };
        WHAT("gradgrad %s all, keepdim, permuted", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &ca, uni(TG_SHAPE(3, 2, 2), -2, 2));
    }
    un_box leaky = { u_leaky };
    WHAT("gradgrad leaky_relu");
    GRADGRADCHECK(f_unary, &leaky, away0(TG_SHAPE(2, 3), 0.2, 2));
}

/* ================================================================== second order of max/min */

static tg_tensor *g_max_sq(tg_tensor *const *in, void *ctx) {
    const red_ctx *c = ctx;
    tg_tensor *x = tg_mul(in[0], in[0]);
    return c->kind == R_MAX ? tg_max(x, c->axes, c->keepdim) : tg_min(x, c->axes, c->keepdim);
}
static tg_tensor *g_extremum_sq(tg_tensor *const *in, void *ctx) {
    return tg_square(((const bin_box *)ctx)->fn(in[0], in[1]));
}

/* max/min (reductions and elementwise) are piecewise linear: their gradient of the
 * gradient is zero alone and the chain rule through them when composed. Inputs have
 * no ties and no two squares near each other. */
TEST(gradgradcheck_max_min) {
    tg_manual_seed(22);
    tg_axes axs[] = { TG_ALL, TG_AXES(1), TG_AXES(0, 2) };
    for (int k = R_MAX; k <= R_MIN; k++)
        for (int a = 0; a < 3; a++)
            for (int keep = 0; keep < 2; keep++) {
                red_ctx c = { k, axs[a], keep, a == 1 };
                WHAT("gradgrad %s axes case %d keepdim %d", k_red_names[k], a, keep);
                GRADGRADCHECK(f_reduce, &c, a == 1 ? distinct(TG_SHAPE(3, 2, 2), 0) : distinct(TG_SHAPE(2, 3, 2), 0));
                WHAT("gradgrad %s of squares, axes case %d keepdim %d", k_red_names[k], a, keep);
                GRADGRADCHECK(g_max_sq, &c, distinct(TG_SHAPE(2, 3, 2), 0.18)); /* shift 0.18: no |x| repeats */
            }
    bin_box mx = { tg_maximum }, mn = { tg_minimum };
    for (int k = 0; k < 2; k++) {
        bin_box *box = k ? &mn : &mx;
        WHAT("gradgrad %s broadcast", k ? "minimum" : "maximum");
        GRADGRADCHECK(f_binary, box, distinct(TG_SHAPE(2, 3), 0), distinct(TG_SHAPE(3), 0.18));
        WHAT("gradgrad square(%s) broadcast", k ? "minimum" : "maximum");
        GRADGRADCHECK(g_extremum_sq, box, distinct(TG_SHAPE(2, 3), 0), distinct(TG_SHAPE(2, 1), 0.18));
    }
}

/* ================================================================== the checker itself */

static tg_tensor *f_relu(tg_tensor *const *in, void *ctx) { return tg_relu(in[0]); }
static tg_tensor *f_mul_relu(tg_tensor *const *in, void *ctx) { return tg_mul(in[0], tg_relu(in[1])); }

TEST(gradcheck_rejects_f32_inputs) {
    tg_manual_seed(14);
    tg_tensor *x32 = tg_rand(TG_F32, TG_SHAPE(3), dev());
    tg_tensor *x64 = tg_rand(TG_F64, TG_SHAPE(3), dev());
    tg_gradcheck_report rep;
    tg_tensor *one[1] = { x32 };
    WHAT("f32 input");
    CHECK(tg_gradcheck(f_relu, NULL, 1, one, NULL, &rep) != TG_OK);
    CHECK_ERROR(tg_gradcheck(f_relu, NULL, 1, one, NULL, &rep), "tg_gradcheck: input 0 is f32; gradients are checked in f64 (cast it with tg_cast)");
    CHECK_ERROR(tg_gradgradcheck(f_relu, NULL, 1, one, NULL, &rep), "tg_gradgradcheck: input 0 is f32; gradients are checked in f64 (cast it with tg_cast)");
    tg_tensor *two[2] = { x64, x32 };
    CHECK(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep) != TG_OK);
    CHECK_ERROR(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep), "tg_gradcheck: input 1 is f32; gradients are checked in f64 (cast it with tg_cast)");
}

TEST(gradcheck_report_names_input_and_element) {
    /* relu at exactly 0: the analytic gradient is 0, central differences give half the
     * output weight, so the check must fail at that element and say where. */
    double xs[4] = { 1.0, -2.0, 0.5, 0.0 };
    tg_tensor *x = tg_from_f64(xs, TG_SHAPE(2, 2), dev());
    tg_gradcheck_report rep;
    memset(&rep, 0x5a, sizeof rep);
    tg_tensor *in[1] = { x };
    WHAT("relu at 0");
    CHECK(tg_gradcheck(f_relu, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0);
    CHECK(rep.element == 3);
    CHECK(rep.analytic == 0);
    CHECK(rep.numeric >= 0.25 && rep.numeric <= 0.75); /* half of a weight in [0.5, 1.5) */
    CHECK(rep.max_abs_error >= 0.25);
    CHECK(strstr(rep.message, "input 0") != NULL);
    CHECK(strstr(rep.message, "[1,1]") != NULL);
    if (!strstr(rep.message, "input 0")) fprintf(stderr, "  message was: %s\n", rep.message);
    CHECK(strstr(tg_last_error(), "input 0") != NULL);

    /* the second input fails: the report names input 1 */
    double ys[2] = { 0.0, 1.5 }, ws[2] = { 0.7, -1.2 };
    tg_tensor *two[2] = { tg_from_f64(ws, TG_SHAPE(2), dev()), tg_from_f64(ys, TG_SHAPE(2), dev()) };
    CHECK(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 1);
    CHECK(rep.element == 0);
    CHECK(strstr(rep.message, "input 1") != NULL);
    CHECK(strstr(rep.message, "[0]") != NULL);

    /* the same inputs away from the kink pass, and the report says no input failed */
    double ok[4] = { 1.0, -2.0, 0.5, 0.25 };
    tg_tensor *in_ok[1] = { tg_from_f64(ok, TG_SHAPE(2, 2), dev()) };
    CHECK(tg_gradcheck(f_relu, NULL, 1, in_ok, NULL, &rep) == TG_OK);
    CHECK(rep.input == -1);
    CHECK(rep.max_abs_error < 1e-6);
}

/* x * detach(x): backward sees d/dx = x, central differences 2x. The checker must
 * catch a gradient that is wrong, at first and at second order. */
static tg_tensor *f_hidden_dep(tg_tensor *const *in, void *ctx) { return tg_mul(in[0], tg_detach(in[0])); }
static tg_tensor *f_hidden_dep2(tg_tensor *const *in, void *ctx) {
    return tg_mul(tg_square(in[0]), tg_detach(in[0]));
}

TEST(gradcheck_catches_a_wrong_gradient) {
    tg_manual_seed(18);
    tg_tensor *in[1] = { away0(TG_SHAPE(2, 3), 0.5, 2) };
    tg_gradcheck_report rep;
    WHAT("x * detach(x)");
    CHECK(tg_gradcheck(f_hidden_dep, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0 && rep.element == 0);
    double x0 = tg_item(tg_reshape(tg_slice(tg_flatten(in[0], 0), 0, 0, 1, 1), TG_SCALAR_SHAPE));
    CHECK(fabs(rep.numeric - 2 * rep.analytic) <= 1e-6 * (1 + fabs(rep.numeric))); /* 2x w vs x w */
    CHECK(fabs(rep.analytic) >= 0.5 * 0.5 * fabs(x0) - 1e-12);
    CHECK(strstr(rep.message, "input 0, element [0,0]") != NULL);
    WHAT("x^2 * detach(x), second order");
    CHECK(tg_gradcheck(f_hidden_dep2, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(tg_gradgradcheck(f_hidden_dep2, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0);
}

TG_TEST_MAIN(&tg_case_gradgradcheck_ops, &tg_case_gradgradcheck_linear_ops, &tg_case_gradgradcheck_max_min,
             &tg_case_gradcheck_rejects_f32_inputs, &tg_case_gradcheck_report_names_input_and_element,
             &tg_case_gradcheck_catches_a_wrong_gradient)
