/* Activations as PyTorch's torch.nn.functional names them, composed from differentiable
 * ops so that they run on every device and give second order for free. erf and erfc
 * are ops of the table: their forward is Cody's rational approximation written with
 * elementwise ops (run untaped), their backward the exact derivative 2/sqrt(pi) e^-x^2.
 * Where PyTorch's formula cancels (exp(x) - 1, 1 + erf), a stabler exact form is used. */
#include <math.h>

#include "lib/ops/ops.h"

static tg_tensor *konst(const tg_tensor *like, double v) { return tg_scalar(like->dtype, v, tg_dev(like)); }

/* ------------------------------------------------------------- erf, erfc */

/* W. J. Cody, "Rational Chebyshev approximations for the error function" (Math. Comp.
 * 1969), the coefficients of netlib specfun's CALERF: |x| <= 0.46875 (erf), 0.46875 <
 * |x| <= 4 and |x| > 4 (erfc). About 1e-15 relative in f64 (1e-13 near underflow). */
static const double k_a[5] = { 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
                                3.20937758913846947e03, 1.85777706184603153e-1 };
static const double k_b[4] = { 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
                                2.84423683343917062e03 };
static const double k_c[9] = { 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
                                2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
                                2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8 };
static const double k_d[8] = { 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
                                1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
                                3.43936767414372164e03, 1.23033935480374942e03 };
static const double k_p[6] = { 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
                                1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2 };
static const double k_q[5] = { 2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
                                6.05183413124413191e-2, 2.33520497626869185e-3 };
#define K_SQRPI 5.6418958354775628695e-1 /* 1/sqrt(pi) */

/* Cody's loop: num (k + 2 coefficients, the last the leading one) over den (k + 1). */
static tg_tensor *cody_ratio(tg_tensor *t, const double *num, const double *den, int k) {
    tg_tensor *xn = tg_mul_scalar(t, num[k + 1]), *xd = t;
    for (int i = 0; i < k; i++) {
        xn = tg_mul(tg_add_scalar(xn, num[i]), t);
        xd = tg_mul(tg_add_scalar(xd, den[i]), t);
    }
    return tg_div(tg_add_scalar(xn, num[k]), tg_add_scalar(xd, den[k]));
}

/* Every range is computed for every element and one is picked: an unpicked range may be
 * inf or NaN (this runs untaped, so nothing flows back through it). NaN picks the last
 * branch and stays NaN. */
static tg_tensor *erf_composed(tg_tensor *x, bool complement) {
    tg_tensor *y = tg_abs(x), *ysq = tg_square(x), *inv = tg_reciprocal(ysq);
    tg_tensor *small = tg_mul(x, cody_ratio(ysq, k_a, k_b, 3)); /* erf(x), |x| <= 0.46875 */
    tg_tensor *mid = cody_ratio(y, k_c, k_d, 7);                /* erfc(y) e^(y^2), y <= 4 */
    tg_tensor *tail = tg_div(tg_add_scalar(tg_neg(tg_mul(inv, cody_ratio(inv, k_p, k_q, 4))), K_SQRPI), y);
    tg_tensor *ec = tg_mul(tg_exp(tg_neg(ysq)), tg_where(tg_le(y, konst(x, 4)), mid, tail)); /* erfc(|x|) */
    tg_tensor *is_small = tg_le(y, konst(x, 0.46875)), *neg = tg_lt(x, konst(x, 0));
    if (complement)
        return tg_where(is_small, tg_add_scalar(tg_neg(small), 1), tg_where(neg, tg_add_scalar(tg_neg(ec), 2), ec));
    return tg_where(is_small, small, tg_where(neg, tg_add_scalar(ec, -1), tg_add_scalar(tg_neg(ec), 1)));
}

/* The table's kind column: 0 erf, 1 erfc. */
tg_status tg_erf_launch(tg_op_call *c) {
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_tensor *r = erf_composed(c->in[0], tg_ops[c->op].kind == 1);
    tg_status st = r ? tg_dev(c->out[0])->be->copy(c->out[0], r) : tg_last_status();
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}

tg_status tg_bw_erf(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *x = tg_node_saved(n, 0);
    if (!x) return tg_last_status();
    double k = tg_ops[n->op].kind == 1 ? -M_2_SQRTPI : M_2_SQRTPI;
    gin[0] = tg_mul(gout[0], tg_mul_scalar(tg_exp(tg_neg(tg_square(x))), k));
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_erf(tg_tensor *x) { return tg_op_run(TG_OP_CALL(TG_OP_ERF, 1, x)); }
tg_tensor *tg_erfc(tg_tensor *x) { return tg_op_run(TG_OP_CALL(TG_OP_ERFC, 1, x)); }

/* ------------------------------------------------------------- helpers */

static bool float_arg(const char *name, tg_tensor *x) { return tg_op_nonnull(name, "x", x) && tg_op_float(name, x); }

/* expm1(t) = tanh(t/2) (e^t + 1): no cancellation near 0, -1 at -inf. */
static tg_tensor *expm1_composed(tg_tensor *t) {
    return tg_mul(tg_tanh(tg_mul_scalar(t, 0.5)), tg_add_scalar(tg_exp(t), 1));
}

/* log(1 + e^t) for t <= 0 with log1p's accuracy (Goldberg: log(w) u / (w - 1), w = 1 + u
 * rounded; where w rounds to 1, log1p(u) = u). Both branches stay finite, so neither
 * sends NaN back through where. */
static tg_tensor *log1p_exp_nonpos(tg_tensor *t) {
    tg_tensor *u = tg_exp(t), *w = tg_add_scalar(u, 1), *d = tg_add_scalar(w, -1);
    tg_tensor *tiny = tg_eq(d, konst(t, 0));
    tg_tensor *safe = tg_where(tiny, konst(t, 1), d);
    return tg_where(tiny, u, tg_mul(tg_log(w), tg_div(u, safe)));
}

/* log(1 + e^z) = relu(z) + log1p(e^-|z|), with -|z| written as min(z, 0) - relu(z): relu's
 * gradient is 0 at 0 and clamp's is 1, so the derivative at 0 comes out 1/2, not 0 or 1. */
static tg_tensor *softplus_core(tg_tensor *z) {
    tg_tensor *r = tg_relu(z);
    return tg_add(r, log1p_exp_nonpos(tg_sub(tg_clamp(z, -INFINITY, 0), r)));
}

/* clamp's values with hardtanh's gradient: 1 strictly inside (lo, hi), 0 elsewhere (on
 * the bounds too, as PyTorch's hardtanh_backward; tg_clamp passes it on the bounds). */
static tg_tensor *hardtanh_composed(tg_tensor *x, double lo, double hi) {
    tg_tensor *c = tg_detach(tg_clamp(x, lo, hi));
    return tg_where(tg_gt(x, konst(x, lo)), tg_where(tg_lt(x, konst(x, hi)), x, c), c);
}

/* ------------------------------------------------------------- activations */

/* relu(x) + alpha expm1(min(x, 0)): x for x > 0, alpha (e^x - 1) else; the gradient at 0
 * is alpha, as PyTorch's (x <= 0 takes the exponential side). */
tg_tensor *tg_elu(tg_tensor *x, double alpha) {
    TG_API_ENTER("tg_elu");
    if (!float_arg("tg_elu", x)) return NULL;
    return tg_add(tg_relu(x), tg_mul_scalar(expm1_composed(tg_clamp(x, -INFINITY, 0)), alpha));
}

/* exact: x/2 erfc(-x/sqrt 2) (PyTorch's x/2 (1 + erf(x/sqrt 2)) without its cancellation
 * for x << 0); tanh: x sigmoid(2u) = x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3). */
tg_tensor *tg_gelu(tg_tensor *x, tg_gelu_approximate approximate) {
    TG_API_ENTER("tg_gelu");
    if (!float_arg("tg_gelu", x)) return NULL;
    if (approximate == TG_GELU_NONE) return tg_mul(tg_mul_scalar(x, 0.5), tg_erfc(tg_mul_scalar(x, -M_SQRT1_2)));
    if (approximate == TG_GELU_TANH) {
        tg_tensor *inner = tg_add(x, tg_mul_scalar(tg_mul(x, tg_square(x)), 0.044715));
        return tg_mul(x, tg_sigmoid(tg_mul_scalar(inner, 2 * M_SQRT2 * M_2_SQRTPI * 0.5)));
    }
    return tg_error_null(TG_ERR_INVALID, "tg_gelu: unknown approximate %d (TG_GELU_NONE or TG_GELU_TANH)",
                         (int)approximate);
}

tg_tensor *tg_silu(tg_tensor *x) {
    TG_API_ENTER("tg_silu");
    if (!float_arg("tg_silu", x)) return NULL;
    return tg_mul(x, tg_sigmoid(x));
}

/* PyTorch's: x where beta x > threshold, else log1p(exp(beta x)) / beta. */
tg_tensor *tg_softplus(tg_tensor *x, double beta, double threshold) {
    TG_API_ENTER("tg_softplus");
    if (!float_arg("tg_softplus", x)) return NULL;
    if (!isfinite(beta) || beta == 0)
        return tg_error_null(TG_ERR_INVALID, "tg_softplus: beta must be finite and non-zero, got %g", beta);
    if (isnan(threshold)) return tg_error_null(TG_ERR_INVALID, "tg_softplus: threshold is NaN");
    tg_tensor *z = beta == 1 ? x : tg_mul_scalar(x, beta);
    tg_tensor *soft = softplus_core(z);
    if (beta != 1) soft = tg_div(soft, konst(x, beta));
    return tg_where(tg_gt(z, konst(x, threshold)), x, soft);
}

/* log(sigmoid(x)) = -log(1 + e^-x), stable at both ends (-inf at -inf, 0 at inf). */
tg_tensor *tg_log_sigmoid(tg_tensor *x) {
    TG_API_ENTER("tg_log_sigmoid");
    if (!float_arg("tg_log_sigmoid", x)) return NULL;
    return tg_neg(softplus_core(tg_neg(x)));
}

tg_tensor *tg_hardtanh(tg_tensor *x, double min_val, double max_val) {
    TG_API_ENTER("tg_hardtanh");
    if (!float_arg("tg_hardtanh", x)) return NULL;
    if (!(min_val <= max_val))
        return tg_error_null(TG_ERR_INVALID, "tg_hardtanh: min_val %g must not be greater than max_val %g", min_val,
                             max_val);
    return hardtanh_composed(x, min_val, max_val);
}

tg_tensor *tg_relu6(tg_tensor *x) {
    TG_API_ENTER("tg_relu6");
    if (!float_arg("tg_relu6", x)) return NULL;
    return hardtanh_composed(x, 0, 6);
}

tg_tensor *tg_softsign(tg_tensor *x) {
    TG_API_ENTER("tg_softsign");
    if (!float_arg("tg_softsign", x)) return NULL;
    return tg_div(x, tg_add_scalar(tg_abs(x), 1));
}

/* min(max(x + 3, 0), 6) / 6, PyTorch's arithmetic; gradient 1/6 strictly inside (-3, 3). */
tg_tensor *tg_hardsigmoid(tg_tensor *x) {
    TG_API_ENTER("tg_hardsigmoid");
    if (!float_arg("tg_hardsigmoid", x)) return NULL;
    return tg_div(hardtanh_composed(tg_add_scalar(x, 3), 0, 6), konst(x, 6));
}

/* x min(max(x + 3, 0), 6) / 6; clamp's gradient on the bounds gives PyTorch's -0.5 at -3
 * and 1.5 at 3. */
tg_tensor *tg_hardswish(tg_tensor *x) {
    TG_API_ENTER("tg_hardswish");
    if (!float_arg("tg_hardswish", x)) return NULL;
    return tg_div(tg_mul(x, tg_clamp(tg_add_scalar(x, 3), 0, 6)), konst(x, 6));
}
