/* Elementwise unary ops: one builder for the family and one backward rule that
 * switches on the kind. Rules use saved inputs or the saved output, whichever the
 * derivative is cheapest in. */
#include <math.h>

#include "lib/ops/ops.h"

static bool float_only(tg_unary_op k) {
    switch (k) {
    case TG_UN_EXP: case TG_UN_LOG: case TG_UN_SQRT: case TG_UN_RSQRT: case TG_UN_SIGMOID:
    case TG_UN_TANH: case TG_UN_SIN: case TG_UN_COS: case TG_UN_RECIPROCAL: case TG_UN_POW_SCALAR:
        return true;
    default:
        return false;
    }
}

static bool saves_output(tg_unary_op k) {
    return k == TG_UN_EXP || k == TG_UN_SQRT || k == TG_UN_RSQRT || k == TG_UN_SIGMOID ||
           k == TG_UN_TANH || k == TG_UN_RECIPROCAL;
}

static bool differentiable(tg_unary_op k) { return k != TG_UN_SIGN && k != TG_UN_STEP; }

tg_tensor *tg_unary_build(const char *name, tg_unary_op k, tg_tensor *x, double p0, double p1) {
    if (!tg_op_nonnull(name, "x", x)) return NULL;
    if (float_only(k) && !tg_op_float(name, x)) return NULL;
    tg_tensor *out = tg_tensor_new(x->dtype, x->ndim, x->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->unary(k, out, x, p0, p1) != TG_OK) return NULL;
    if (differentiable(k) && tg_should_record(1, &x)) {
        tg_node *n = tg_record(TG_OP_UNARY, out, 1, &x);
        if (!n) return NULL;
        n->iarg[0] = k;
        n->farg[0] = p0;
        n->farg[1] = p1;
        if (saves_output(k)) tg_node_save_output(n, out);
        else if (k != TG_UN_NEG && k != TG_UN_ADD_SCALAR && k != TG_UN_MUL_SCALAR) tg_node_save(n, x);
    }
    return out;
}

tg_tensor *tg_step(tg_tensor *x, double threshold) {
    return tg_unary_build("tg_step", TG_UN_STEP, x, threshold, 0);
}

tg_status tg_bw_unary(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_unary_op k = (tg_unary_op)n->iarg[0];
    double p0 = n->farg[0], p1 = n->farg[1];
    tg_tensor *s = n->n_saved ? tg_node_saved(n, 0) : NULL; /* x, or y for saves_output */
    if (n->n_saved && !s) return tg_last_status();
    tg_tensor *r = NULL;
    switch (k) {
    case TG_UN_NEG: r = tg_neg(g); break;
    case TG_UN_EXP: r = tg_mul(g, s); break;
    case TG_UN_LOG: r = tg_div(g, s); break;
    case TG_UN_SQRT: r = tg_div(tg_mul_scalar(g, 0.5), s); break;
    case TG_UN_RSQRT: r = tg_mul(g, tg_mul_scalar(tg_mul(s, tg_square(s)), -0.5)); break;
    case TG_UN_ABS: r = tg_mul(g, tg_sign(s)); break;
    case TG_UN_RELU: r = tg_mul(g, tg_step(s, 0)); break;
    case TG_UN_SIGMOID: r = tg_mul(g, tg_mul(s, tg_add_scalar(tg_neg(s), 1))); break;
    case TG_UN_TANH: r = tg_mul(g, tg_add_scalar(tg_neg(tg_square(s)), 1)); break;
    case TG_UN_SIN: r = tg_mul(g, tg_cos(s)); break;
    case TG_UN_COS: r = tg_neg(tg_mul(g, tg_sin(s))); break;
    case TG_UN_SQUARE: r = tg_mul(g, tg_mul_scalar(s, 2)); break;
    case TG_UN_RECIPROCAL: r = tg_neg(tg_mul(g, tg_square(s))); break;
    case TG_UN_POW_SCALAR:
        r = p0 == 0 ? tg_mul_scalar(g, 0) : tg_mul(g, tg_mul_scalar(tg_pow_scalar(s, p0 - 1), p0));
        break;
    case TG_UN_ADD_SCALAR: r = g; break;
    case TG_UN_MUL_SCALAR: r = tg_mul_scalar(g, p0); break;
    case TG_UN_CLAMP: { /* gradient where lo <= x <= hi */
        tg_tensor *below_hi = tg_add_scalar(tg_neg(tg_step(s, p1)), 1);
        tg_tensor *above_lo = tg_add_scalar(tg_neg(tg_step(tg_neg(s), -p0)), 1);
        r = tg_mul(g, tg_mul(below_hi, above_lo));
        break;
    }
    default: return tg_error(TG_ERR_STATE, "tg_backward: unary op %d has no gradient", k);
    }
    gin[0] = r;
    return r ? TG_OK : tg_last_status();
}

/* Each public op names itself (TG_API_ENTER) so that any message set inside carries it. */
#define UNARY(fn, k)                                  \
    tg_tensor *fn(tg_tensor *x) {                     \
        TG_API_ENTER(#fn);                            \
        return tg_unary_build(#fn, k, x, 0, 0);       \
    }
UNARY(tg_neg, TG_UN_NEG)
UNARY(tg_exp, TG_UN_EXP)
UNARY(tg_log, TG_UN_LOG)
UNARY(tg_sqrt, TG_UN_SQRT)
UNARY(tg_rsqrt, TG_UN_RSQRT)
UNARY(tg_abs, TG_UN_ABS)
UNARY(tg_sign, TG_UN_SIGN)
UNARY(tg_relu, TG_UN_RELU)
UNARY(tg_sigmoid, TG_UN_SIGMOID)
UNARY(tg_tanh, TG_UN_TANH)
UNARY(tg_sin, TG_UN_SIN)
UNARY(tg_cos, TG_UN_COS)
UNARY(tg_square, TG_UN_SQUARE)
UNARY(tg_reciprocal, TG_UN_RECIPROCAL)
#undef UNARY

tg_tensor *tg_pow_scalar(tg_tensor *x, double e) {
    TG_API_ENTER("tg_pow_scalar");
    return tg_unary_build("tg_pow_scalar", TG_UN_POW_SCALAR, x, e, 0);
}

tg_tensor *tg_add_scalar(tg_tensor *x, double v) {
    TG_API_ENTER("tg_add_scalar");
    return tg_unary_build("tg_add_scalar", TG_UN_ADD_SCALAR, x, v, 0);
}

tg_tensor *tg_mul_scalar(tg_tensor *x, double v) {
    TG_API_ENTER("tg_mul_scalar");
    return tg_unary_build("tg_mul_scalar", TG_UN_MUL_SCALAR, x, v, 0);
}

tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi) {
    TG_API_ENTER("tg_clamp");
    if (!tg_op_nonnull("tg_clamp", "x", x)) return NULL;
    if (lo > hi) return tg_error_null(TG_ERR_INVALID, "tg_clamp: lo %g is greater than hi %g", lo, hi);
    return tg_unary_build("tg_clamp", TG_UN_CLAMP, x, lo, hi);
}

/* slope * x + (1 - slope) * relu(x): composed, so it is twice differentiable for free. */
tg_tensor *tg_leaky_relu(tg_tensor *x, double negative_slope) {
    TG_API_ENTER("tg_leaky_relu");
    if (!tg_op_nonnull("tg_leaky_relu", "x", x) || !tg_op_float("tg_leaky_relu", x)) return NULL;
    return tg_add(tg_mul_scalar(x, negative_slope), tg_mul_scalar(tg_relu(x), 1 - negative_slope));
}
