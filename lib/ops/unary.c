/* Elementwise unary ops (the rows of TG_UNARY_LIST): one shape rule, launch and
 * backward rule for the family, switching on the kind. The list says whether a rule
 * reads the saved input or the saved output, whichever the derivative is cheapest in. */
#include <math.h>

#include "lib/ops/ops.h"

/* The family's shape rule (x's shape and dtype) and launch. */
bool tg_unary_shape(tg_op_call *c) { return tg_same_shape(c); }

tg_status tg_unary_launch(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    return tg_dev(c->in[0])->be->unary((tg_unary_op)d->kind, c->out[0], c->in[0], c->args.scalar.p0,
                                       c->args.scalar.p1);
}

tg_tensor *tg_ops_unary(int op, tg_tensor *x, double p0, double p1) {
    tg_op_call *c = TG_OP_CALL(op, 1, x);
    c->args.scalar.p0 = p0;
    c->args.scalar.p1 = p1;
    return tg_op_run(c);
}

tg_tensor *tg_ops_step(tg_tensor *x, double threshold) { return tg_ops_unary(TG_OP_STEP, x, threshold, 0); }

/* relu's gradient, g where y > 0 (relu saves its output: y > 0 exactly where x > 0, and
 * x, often a batch norm's output, can then be freed in the forward). Unrecorded, the
 * device's threshold_backward does it in one pass; recorded (create_graph), the
 * composition, whose step has no gradient, differentiates again. */
tg_tensor *tg_ops_relu_grad(tg_tensor *g, tg_tensor *y) {
    tg_device *dev = tg_dev(y);
    if (tg_is_grad_enabled() || !dev->be->threshold_backward || tg_dev(g) != dev || g->dtype != y->dtype ||
        !tg_is_float(y->dtype) || !tg_shape_equal(g->ndim, g->shape, y->ndim, y->shape))
        return tg_mul(g, tg_ops_step(y, 0));
    tg_tensor *dx = tg_empty(y->dtype, tg_shape_of(y), dev);
    if (!dx) return NULL;
    tg_status st = dev->be->threshold_backward(dx, g, y, 0);
    return st == TG_OK ? dx : NULL;
}

tg_status tg_bw_unary(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0];
    tg_unary_op k = (tg_unary_op)tg_ops[n->op].kind;
    double p0 = n->args.scalar.p0, p1 = n->args.scalar.p1;
    bool saves = tg_ops[n->op].flags & (TG_OPF_SAVE_IN | TG_OPF_SAVE_OUT);
    tg_tensor *s = saves ? tg_node_saved(n, 0) : NULL; /* x, or y where the list saves the output */
    if (saves && !s) return tg_last_status();
    tg_tensor *r = NULL;
    switch (k) {
    case TG_UN_NEG: r = tg_neg(g); break;
    case TG_UN_EXP: r = tg_mul(g, s); break;
    case TG_UN_LOG: r = tg_div(g, s); break;
    case TG_UN_SQRT: r = tg_div(tg_mul_scalar(g, 0.5), s); break;
    case TG_UN_RSQRT: r = tg_mul(g, tg_mul_scalar(tg_mul(s, tg_square(s)), -0.5)); break;
    case TG_UN_ABS: r = tg_mul(g, tg_sign(s)); break;
    case TG_UN_RELU: r = tg_ops_relu_grad(g, s); break;
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
        tg_tensor *below_hi = tg_add_scalar(tg_neg(tg_ops_step(s, p1)), 1);
        tg_tensor *above_lo = tg_add_scalar(tg_neg(tg_ops_step(tg_neg(s), -p0)), 1);
        r = tg_mul(g, tg_mul(below_hi, above_lo));
        break;
    }
    default: return tg_error(TG_ERR_STATE, "tg_backward: unary op %d has no gradient", k);
    }
    gin[0] = r;
    return r ? TG_OK : tg_last_status();
}

/* The public unary ops, one per op-list.h row (tg_step is internal). */
#define UNARY(kind, name, flags) \
    tg_tensor *tg_##name(tg_tensor *x) { return tg_ops_unary(TG_OP_##kind, x, 0, 0); }
UNARY(NEG, neg, 0)
UNARY(EXP, exp, 0)
UNARY(LOG, log, 0)
UNARY(SQRT, sqrt, 0)
UNARY(RSQRT, rsqrt, 0)
UNARY(ABS, abs, 0)
UNARY(SIGN, sign, 0)
UNARY(RELU, relu, 0)
UNARY(SIGMOID, sigmoid, 0)
UNARY(TANH, tanh, 0)
UNARY(SIN, sin, 0)
UNARY(COS, cos, 0)
UNARY(SQUARE, square, 0)
UNARY(RECIPROCAL, reciprocal, 0)
#undef UNARY

tg_tensor *tg_pow_scalar(tg_tensor *x, double e) { return tg_ops_unary(TG_OP_POW_SCALAR, x, e, 0); }
tg_tensor *tg_add_scalar(tg_tensor *x, double v) { return tg_ops_unary(TG_OP_ADD_SCALAR, x, v, 0); }
tg_tensor *tg_mul_scalar(tg_tensor *x, double v) { return tg_ops_unary(TG_OP_MUL_SCALAR, x, v, 0); }

tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi) {
    TG_API_ENTER("tg_clamp");
    if (!tg_op_nonnull("tg_clamp", "x", x)) return NULL;
    if (lo > hi) return tg_error_null(TG_ERR_INVALID, "tg_clamp: lo %g is greater than hi %g", lo, hi);
    return tg_ops_unary(TG_OP_CLAMP, x, lo, hi);
}

/* slope * x + (1 - slope) * relu(x): composed, so it is twice differentiable for free. */
tg_tensor *tg_leaky_relu(tg_tensor *x, double negative_slope) {
    TG_API_ENTER("tg_leaky_relu");
    if (!tg_op_nonnull("tg_leaky_relu", "x", x) || !tg_op_float("tg_leaky_relu", x)) return NULL;
    return tg_add(tg_mul_scalar(x, negative_slope), tg_mul_scalar(tg_relu(x), 1 - negative_slope));
}
