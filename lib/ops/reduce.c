/* Reductions over any set of axes (sum, max, min as primitives; mean, var, std,
 * logsumexp, norm composed), arg reductions, log-softmax and softmax. Output dtypes
 * follow PyTorch: a sum of integers (u8, i32, i64) is i64, arg reductions give i64,
 * max and min keep the dtype, mean and the composed ones take floats only. */
#include <math.h>
#include <string.h>

#include "lib/ops/ops.h"

/* The primitives compute a keepdim result over the axes in args.reduce.mask. */
bool tg_reduce_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    tg_tensor *x = c->in[0];
    uint32_t mask = c->args.reduce.mask;
    tg_out_spec *s = &c->out_spec[0];
    for (int i = 0; i < x->ndim; i++) {
        s->shape[i] = mask >> i & 1 ? 1 : x->shape[i];
        if ((mask >> i & 1) && x->shape[i] == 0 && d->kind != TG_RED_SUM) {
            tg_error(TG_ERR_SHAPE, "%s: cannot reduce over axis %d of size 0", d->name, i);
            return false;
        }
    }
    bool arg = d->kind == TG_RED_ARGMAX || d->kind == TG_RED_ARGMIN;
    s->ndim = x->ndim;
    s->dtype = arg || (d->kind == TG_RED_SUM && !tg_is_float(x->dtype)) ? TG_I64 : x->dtype;
    return true;
}

tg_status tg_reduce_launch(tg_op_call *c) {
    return tg_dev(c->in[0])->be->reduce((tg_reduce_op)tg_ops[c->op].kind, c->out[0], c->in[0], c->args.reduce.mask);
}

tg_tensor *tg_ops_reduce_keep(int op, tg_tensor *x, uint32_t mask) {
    tg_op_call *c = TG_OP_CALL(op, 1, x);
    c->args.reduce.mask = mask;
    return tg_op_run(c);
}

tg_tensor *tg_ops_squeeze_mask(tg_tensor *x, uint32_t mask) {
    if (!x || !mask) return x;
    tg_shape s = { 0 };
    for (int i = 0; i < x->ndim; i++)
        if (!(mask >> i & 1)) s.dims[s.ndim++] = x->shape[i];
    return tg_reshape(x, s);
}

static tg_tensor *reduce(int op, tg_tensor *x, tg_axes axes, bool keepdim) {
    const char *name = tg_ops[op].name;
    TG_API_ENTER(name);
    uint32_t mask;
    if (!tg_op_nonnull(name, "x", x) || !tg_op_axes_mask(name, axes, x->ndim, &mask)) return NULL;
    tg_tensor *r = tg_ops_reduce_keep(op, x, mask);
    return keepdim ? r : tg_ops_squeeze_mask(r, mask);
}

tg_tensor *tg_sum(tg_tensor *x, tg_axes axes, bool keepdim) { return reduce(TG_OP_SUM, x, axes, keepdim); }

tg_tensor *tg_max(tg_tensor *x, tg_axes axes, bool keepdim) { return reduce(TG_OP_MAX, x, axes, keepdim); }

tg_tensor *tg_min(tg_tensor *x, tg_axes axes, bool keepdim) { return reduce(TG_OP_MIN, x, axes, keepdim); }

tg_status tg_bw_sum(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_ops_expand_to(gout[0], n->inputs[0].ndim, n->inputs[0].shape);
    return gin[0] ? TG_OK : tg_last_status();
}

/* Ties share the gradient equally, so the rule is symmetric and twice differentiable. */
tg_status tg_bw_maxmin(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0], *x = tg_node_saved(n, 0), *y = tg_node_saved(n, 1);
    if (!x || !y) return tg_last_status();
    tg_tensor *hit = tg_cast(tg_eq(x, tg_detach(y)), x->dtype);
    tg_tensor *count = hit ? tg_ops_reduce_keep(TG_OP_SUM, hit, n->args.reduce.mask) : NULL;
    gin[0] = tg_div(tg_mul(hit, g), count);
    return gin[0] ? TG_OK : tg_last_status();
}

static int64_t reduced_count(const tg_tensor *x, uint32_t mask) {
    int64_t c = 1;
    for (int i = 0; i < x->ndim; i++)
        if (mask >> i & 1) c *= x->shape[i];
    return c;
}

tg_tensor *tg_mean(tg_tensor *x, tg_axes axes, bool keepdim) {
    TG_API_ENTER("tg_mean");
    uint32_t mask;
    if (!tg_op_nonnull("tg_mean", "x", x) || !tg_op_float("tg_mean", x) || !tg_op_axes_mask("tg_mean", axes, x->ndim, &mask))
        return NULL;
    return tg_mul_scalar(tg_sum(x, axes, keepdim), 1.0 / (double)reduced_count(x, mask));
}

/* As PyTorch: sum((x - mean)^2) / max(0, N - correction), so a correction of N or
 * more divides by 0 and gives inf (NaN where the sum is 0 too), never a negative. */
static tg_tensor *var(const char *name, tg_tensor *x, tg_axes axes, int correction, bool keepdim) {
    uint32_t mask;
    if (!tg_op_nonnull(name, "x", x) || !tg_op_float(name, x) || !tg_op_axes_mask(name, axes, x->ndim, &mask))
        return NULL;
    if (correction < 0) return tg_error_null(TG_ERR_INVALID, "%s: correction %d is negative", name, correction);
    tg_tensor *d = tg_sub(x, tg_mean(x, axes, true));
    int64_t n = reduced_count(x, mask);
    double denom = n > correction ? (double)(n - correction) : 0.0;
    return tg_mul_scalar(tg_sum(tg_square(d), axes, keepdim), 1.0 / denom);
}

tg_tensor *tg_var(tg_tensor *x, tg_axes axes, int correction, bool keepdim) {
    TG_API_ENTER("tg_var");
    return var("tg_var", x, axes, correction, keepdim);
}

tg_tensor *tg_std(tg_tensor *x, tg_axes axes, int correction, bool keepdim) {
    TG_API_ENTER("tg_std");
    return tg_sqrt(var("tg_std", x, axes, correction, keepdim));
}

/* max + log(sum(exp(x - max))), with the max detached: the result does not depend on
 * it, and a detached shift keeps the gradient exact. Rows that are all -inf give -inf,
 * rows with +inf give +inf. */
tg_tensor *tg_logsumexp(tg_tensor *x, tg_axes axes, bool keepdim) {
    TG_API_ENTER("tg_logsumexp");
    uint32_t mask;
    if (!tg_op_nonnull("tg_logsumexp", "x", x) || !tg_op_float("tg_logsumexp", x) ||
        !tg_op_axes_mask("tg_logsumexp", axes, x->ndim, &mask))
        return NULL;
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *m = tg_ops_reduce_keep(TG_OP_MAX, x, mask);
    if (m) { /* an infinite max (a row with +inf, or all -inf) shifts by 0 instead, as PyTorch does */
        tg_tensor *inf = tg_eq(tg_abs(m), tg_scalar(x->dtype, INFINITY, tg_dev(x)));
        m = tg_where(inf, tg_scalar(x->dtype, 0, tg_dev(x)), m);
    }
    tg_set_grad_enabled(prev);
    tg_tensor *r = tg_add(tg_log(tg_sum(tg_exp(tg_sub(x, m)), axes, true)), m);
    return keepdim ? r : tg_ops_squeeze_mask(r, mask);
}

tg_tensor *tg_norm(tg_tensor *x) {
    TG_API_ENTER("tg_norm");
    if (!tg_op_nonnull("tg_norm", "x", x) || !tg_op_float("tg_norm", x)) return NULL;
    return tg_sqrt(tg_sum(tg_square(x), TG_ALL, false));
}

static tg_tensor *arg_reduce(int op, tg_tensor *x, int axis, bool keepdim) {
    const char *name = tg_ops[op].name;
    TG_API_ENTER(name);
    if (!tg_op_nonnull(name, "x", x) || !tg_op_axis(name, &axis, x->ndim)) return NULL;
    tg_tensor *r = tg_ops_reduce_keep(op, x, 1u << axis);
    return keepdim ? r : tg_ops_squeeze_mask(r, 1u << axis);
}

tg_tensor *tg_argmax(tg_tensor *x, int axis, bool keepdim) { return arg_reduce(TG_OP_ARGMAX, x, axis, keepdim); }
tg_tensor *tg_argmin(tg_tensor *x, int axis, bool keepdim) { return arg_reduce(TG_OP_ARGMIN, x, axis, keepdim); }

/* ------------------------------------------------------------- softmax */

bool tg_log_softmax_shape(tg_op_call *c) {
    return tg_op_axis("tg_log_softmax", &c->args.axis.axis, c->in[0]->ndim) && tg_same_shape(c);
}

tg_status tg_log_softmax_launch(tg_op_call *c) {
    return tg_dev(c->in[0])->be->log_softmax(c->out[0], c->in[0], c->args.axis.axis);
}

tg_tensor *tg_log_softmax(tg_tensor *x, int axis) {
    tg_op_call *c = TG_OP_CALL(TG_OP_LOG_SOFTMAX, 1, x);
    c->args.axis.axis = axis;
    return tg_op_run(c);
}

tg_status tg_bw_log_softmax(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0], *y = tg_node_saved(n, 0);
    if (!y) return tg_last_status();
    gin[0] = tg_sub(g, tg_mul(tg_exp(y), tg_sum(g, TG_AXES(n->args.axis.axis), true)));
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_softmax(tg_tensor *x, int axis) {
    TG_API_ENTER("tg_softmax");
    return tg_exp(tg_log_softmax(x, axis));
}
