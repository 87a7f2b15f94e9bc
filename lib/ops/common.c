/* Argument checks, broadcasting and sum-to-shape shared by the op builders. */
#include <string.h>

#include "lib/ops/ops.h"

bool tg_op_nonnull(const char *op, const char *arg, const tg_tensor *t) {
    return tg_tensor_check(op, arg, t);
}

bool tg_op_float(const char *op, const tg_tensor *t) {
    if (tg_is_float(t->dtype)) return true;
    tg_error(TG_ERR_DTYPE, "%s: expected a floating dtype (f32 or f64), got %s", op, tg_dtype_name(t->dtype));
    return false;
}

bool tg_op_compatible(const char *op, const tg_tensor *a, const tg_tensor *b) {
    if (a->storage->dev != b->storage->dev) {
        tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s (copy one with tg_to)", op,
                 a->storage->dev->name, b->storage->dev->name);
        return false;
    }
    if (a->dtype != b->dtype) {
        tg_error(TG_ERR_DTYPE, "%s: dtypes differ: %s and %s (convert one with tg_cast)", op,
                 tg_dtype_name(a->dtype), tg_dtype_name(b->dtype));
        return false;
    }
    return true;
}

bool tg_ops_broadcast(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int *nd, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)], db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) {
            char b1[128], b2[128];
            tg_error(TG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)", op,
                     tg_shape_str(b1, na, a), tg_shape_str(b2, nb, b), i - n, (long long)da, (long long)db);
            return false;
        }
        out[i] = da == 1 ? db : da;
    }
    *nd = n;
    return true;
}

void tg_ops_expand_into(tg_tensor *view, const tg_tensor *t, int nd, const int64_t *shape) {
    *view = *t;
    view->ndim = nd;
    int off = nd - t->ndim;
    for (int i = 0; i < nd; i++) {
        view->shape[i] = shape[i];
        view->strides[i] = i < off || t->shape[i - off] != shape[i] ? 0 : t->strides[i - off];
    }
}

tg_tensor *tg_ops_sum_to(tg_tensor *g, int ndim, const int64_t *shape) {
    if (!g) return NULL;
    if (tg_shape_equal(g->ndim, g->shape, ndim, shape)) return g;
    uint32_t mask = 0;
    int off = g->ndim - ndim;
    for (int i = 0; i < g->ndim; i++)
        if (i < off || (shape[i - off] == 1 && g->shape[i] != 1)) mask |= 1u << i;
    tg_tensor *s = mask ? tg_ops_reduce_keep(TG_OP_SUM, g, mask) : g;
    tg_shape sh = { .ndim = ndim };
    memcpy(sh.dims, shape, (size_t)ndim * sizeof *shape);
    return tg_reshape(s, sh);
}

bool tg_op_axes_mask(const char *op, tg_axes axes, int ndim, uint32_t *mask) {
    if (axes.n == -1) { /* TG_ALL */
        *mask = ndim ? (1u << ndim) - 1 : 0;
        return true;
    }
    if (axes.n < 0 || axes.n > TG_MAX_DIMS) {
        tg_error(TG_ERR_INVALID, "%s: %d axes given (at most %d, or -1 for TG_ALL)", op, axes.n, TG_MAX_DIMS);
        return false;
    }
    *mask = 0;
    for (int i = 0; i < axes.n; i++) {
        int a = axes.axes[i];
        if (!tg_axis_norm(&a, ndim)) {
            tg_error(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", op, axes.axes[i], ndim);
            return false;
        }
        if (*mask >> a & 1) {
            tg_error(TG_ERR_INVALID, "%s: axis %d given twice", op, axes.axes[i]);
            return false;
        }
        *mask |= 1u << a;
    }
    return true;
}

bool tg_op_index(const char *op, const char *arg, const tg_tensor *t) {
    if (t->dtype == TG_I32 || t->dtype == TG_I64) return true;
    tg_error(TG_ERR_DTYPE, "%s: %s must be i32 or i64, got %s", op, arg, tg_dtype_name(t->dtype));
    return false;
}

bool tg_op_shape_ok(const char *op, int ndim, const int64_t *shape) {
    if (tg_shape_numel_checked(ndim, shape, NULL)) return true;
    char b[128];
    tg_error(TG_ERR_SHAPE, "%s: shape %s is too large (more than %lld elements)", op, tg_shape_str(b, ndim, shape),
             (long long)TG_MAX_NUMEL);
    return false;
}

/* PyTorch's rule (assert_no_internal_overlap): a stride 0 on an axis longer than one
 * means several elements share one location, and an update would write it several
 * times. Views made by the other movement ops never overlap. */
bool tg_op_writable(const char *op, const tg_tensor *dst) {
    for (int i = 0; i < dst->ndim; i++) {
        if (dst->strides[i] != 0 || dst->shape[i] <= 1) continue;
        char b[128];
        tg_error(TG_ERR_INVALID, "%s: dst %s has stride 0 on axis %d (an expanded view): more than one element of "
                 "it refers to a single memory location; write to tg_clone(dst) instead", op,
                 tg_shape_str(b, dst->ndim, dst->shape), i);
        return false;
    }
    return true;
}

bool tg_op_axis(const char *op, int *axis, int ndim) {
    int a = *axis;
    if (tg_axis_norm(axis, ndim)) return true;
    tg_error(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", op, a, ndim);
    return false;
}

tg_shape tg_ops_input_shape(const tg_node *n, int i) {
    tg_shape s = { .ndim = n->inputs[i].ndim };
    memcpy(s.dims, n->inputs[i].shape, sizeof s.dims);
    return s;
}
