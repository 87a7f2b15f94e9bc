/* Reductions over any set of axes (sum, max, min as primitives; mean, var, std,
 * logsumexp, norm composed), arg reductions, log-softmax and softmax. Output dtypes
 * follow PyTorch: a sum of integers (u8, i32, i64) is i64, arg reductions give i64,
 * max and min keep the dtype, mean and the composed ones take floats only. */
#include <math.h>
#include <string.h>

#include "lib/ops/ops.h"

/* The primitive: a keepdim result, recorded with its axis mask. */
tg_tensor *tg_reduce_keep(const char *name, tg_op op, tg_reduce_op k, tg_tensor *x, uint32_t mask) {
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = mask >> i & 1 ? 1 : x->shape[i];
        if ((mask >> i & 1) && x->shape[i] == 0 && k != TG_RED_SUM)
            return tg_error_null(TG_ERR_SHAPE, "%s: cannot reduce over axis %d of size 0", name, i);
    }
    bool arg = k == TG_RED_ARGMAX || k == TG_RED_ARGMIN;
    tg_dtype od = arg || (k == TG_RED_SUM && !tg_is_float(x->dtype)) ? TG_I64 : x->dtype;
    tg_tensor *out = tg_tensor_new(od, x->ndim, shape, tg_dev(x));
    if (!out || tg_dev(x)->be->reduce(k, out, x, mask) != TG_OK) return NULL;
    if (!arg && tg_should_record(1, &x)) {
        tg_node *n = tg_record(op, out, 1, &x);
        if (!n) return NULL;
        n->iarg[0] = (int)mask;
        if (op != TG_OP_SUM) {
            tg_node_save(n, x);
            tg_node_save_output(n, out);
        }
    }
    return out;
}

tg_tensor *tg_squeeze_mask(tg_tensor *x, uint32_t mask) {
    if (!x || !mask) return x;
    tg_shape s = { 0 };
    for (int i = 0; i < x->ndim; i++)
        if (!(mask >> i & 1)) s.dims[s.ndim++] = x->shape[i];
    return tg_reshape(x, s);
}

static tg_tensor *reduce(const char *name, tg_op op, tg_reduce_op k, tg_tensor *x, tg_axes axes, bool keepdim) {
    uint32_t mask;
    if (!tg_op_nonnull(name, "x", x) || !tg_axes_mask(name, axes, x->ndim, &mask)) return NULL;
    tg_tensor *r = tg_reduce_keep(name, op, k, x, mask);
    return keepdim ? r : tg_squeeze_mask(r, mask);
}

tg_tensor *tg_sum(tg_tensor *x, tg_axes axes, bool keepdim) {
    TG_API_ENTER("tg_sum");
    return reduce("tg_sum", TG_OP_SUM, TG_RED_SUM, x, axes, keepdim);
}

tg_tensor *tg_max(tg_tensor *x, tg_axes axes, bool keepdim) {
    TG_API_ENTER("tg_max");
    return reduce("tg_max", TG_OP_MAX, TG_RED_MAX, x, axes, keepdim);
}

tg_tensor *tg_min(tg_tensor *x, tg_axes axes, bool keepdim) {
    TG_API_ENTER("tg_min");
    return reduce("tg_min", TG_OP_MIN, TG_RED_MIN, x, axes, keepdim);
}

tg_status tg_bw_sum(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    gin[0] = tg_expand_to(g, n->inputs[0].ndim, n->inputs[0].shape);
    return gin[0] ? TG_OK : tg_last_status();
}

/* Ties share the gradient equally, so the rule is symmetric and twice differentiable. */
tg_status tg_bw_maxmin(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *x = tg_node_saved(n, 0), *y = tg_node_saved(n, 1);
    if (!x || !y) return tg_last_status();
    tg_tensor *hit = tg_cast(tg_eq(x, tg_detach(y)), x->dtype);
    tg_tensor *count = hit ? tg_reduce_keep("tg_sum", TG_OP_SUM, TG_RED_SUM, hit, (uint32_t)n->iarg[0]) : NULL;
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
    if (!tg_op_nonnull("tg_mean", "x", x) || !tg_op_float("tg_mean", x) || !tg_axes_mask("tg_mean", axes, x->ndim, &mask))
        return NULL;
    return tg_mul_scalar(tg_sum(x, axes, keepdim), 1.0 / (double)reduced_count(x, mask));
}

/* As PyTorch: sum((x - mean)^2) / max(0, N - correction), so a correction of N or
 * more divides by 0 and gives inf (NaN where the sum is 0 too), never a negative. */
static tg_tensor *var(const char *name, tg_tensor *x, tg_axes axes, int correction, bool keepdim) {
    uint32_t mask;
    if (!tg_op_nonnull(name, "x", x) || !tg_op_float(name, x) || !tg_axes_mask(name, axes, x->ndim, &mask))
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
        !tg_axes_mask("tg_logsumexp", axes, x->ndim, &mask))
        return NULL;
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *m = tg_reduce_keep("tg_logsumexp", TG_OP_MAX, TG_RED_MAX, x, mask);
    if (m) { /* an infinite max (a row with +inf, or all -inf) shifts by 0 instead, as PyTorch does */
        tg_tensor *inf = tg_eq(tg_abs(m), tg_scalar(x->dtype, INFINITY, tg_dev(x)));
        m = tg_where(inf, tg_scalar(x->dtype, 0, tg_dev(x)), m);
    }
    tg_set_grad_enabled(prev);
    tg_tensor *r = tg_add(tg_log(tg_sum(tg_exp(tg_sub(x, m)), axes, true)), m);
    return keepdim ? r : tg_squeeze_mask(r, mask);
}

tg_tensor *tg_norm(tg_tensor *x) {
    TG_API_ENTER("tg_norm");
    if (!tg_op_nonnull("tg_norm", "x", x) || !tg_op_float("tg_norm", x)) return NULL;
    return tg_sqrt(tg_sum(tg_square(x), TG_ALL, false));
}

static tg_tensor *arg_reduce(const char *name, tg_reduce_op k, tg_tensor *x, int axis, bool keepdim) {
    if (!tg_op_nonnull(name, "x", x)) return NULL;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", name, axis, x->ndim);
    tg_tensor *r = tg_reduce_keep(name, TG_OP_SUM, k, x, 1u << a);
    return keepdim ? r : tg_squeeze_mask(r, 1u << a);
}

tg_tensor *tg_argmax(tg_tensor *x, int axis, bool keepdim) {
    TG_API_ENTER("tg_argmax");
    return arg_reduce("tg_argmax", TG_RED_ARGMAX, x, axis, keepdim);
}

tg_tensor *tg_argmin(tg_tensor *x, int axis, bool keepdim) {
    TG_API_ENTER("tg_argmin");
    return arg_reduce("tg_argmin", TG_RED_ARGMIN, x, axis, keepdim);
}

/* ------------------------------------------------------------- softmax */

tg_tensor *tg_log_softmax(tg_tensor *x, int axis) {
    TG_API_ENTER("tg_log_softmax");
    const char *name = "tg_log_softmax";
    if (!tg_op_nonnull(name, "x", x) || !tg_op_float(name, x)) return NULL;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", name, axis, x->ndim);
    tg_tensor *out = tg_tensor_new(x->dtype, x->ndim, x->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->log_softmax(out, x, a) != TG_OK) return NULL;
    if (tg_should_record(1, &x)) {
        tg_node *n = tg_record(TG_OP_LOG_SOFTMAX, out, 1, &x);
        if (!n) return NULL;
        n->iarg[0] = a;
        tg_node_save_output(n, out);
    }
    return out;
}

tg_status tg_bw_log_softmax(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *y = tg_node_saved(n, 0);
    if (!y) return tg_last_status();
    gin[0] = tg_sub(g, tg_mul(tg_exp(y), tg_sum(g, TG_AXES(n->iarg[0]), true)));
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_softmax(tg_tensor *x, int axis) {
    TG_API_ENTER("tg_softmax");
    return tg_exp(tg_log_softmax(x, axis));
}
