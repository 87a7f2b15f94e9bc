/* Movement ops that return views (reshape, permute, expand, slice, flip, squeeze) and
 * the copies (contiguous, clone). A view shares storage and records a node whose rule
 * moves the gradient back the same way. */
#include <string.h>

#include "lib/ops/ops.h"

/* Records a view node on x for out, with integer parameters copied from iargs/largs. */
static tg_tensor *record_view(tg_op op, tg_tensor *out, tg_tensor *x, const int *iargs, int ni,
                              const int64_t *largs, int nl) {
    if (!out || !tg_should_record(1, &x)) return out;
    tg_node *n = tg_record(op, out, 1, &x);
    if (!n) return NULL;
    if (ni) memcpy(n->iarg, iargs, (size_t)ni * sizeof *iargs);
    if (nl) memcpy(n->larg, largs, (size_t)nl * sizeof *largs);
    return out;
}

/* ------------------------------------------------------------- reshape */

/* Strides for viewing (shape, strides) as new_shape without a copy, following
 * PyTorch's computeStride: false when the memory layout does not allow it. */
static bool view_strides(const tg_tensor *x, int nd, const int64_t *ns, int64_t *out) {
    if (tg_shape_numel(x->ndim, x->shape) == 0 || x->ndim == 0) {
        tg_contiguous_strides(nd, ns, out);
        return true;
    }
    int view_d = nd - 1;
    int64_t chunk = x->strides[x->ndim - 1], tnumel = 1, vnumel = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        tnumel *= x->shape[d];
        if (d == 0 || (x->shape[d - 1] != 1 && x->strides[d - 1] != tnumel * chunk)) {
            while (view_d >= 0 && (vnumel < tnumel || ns[view_d] == 1)) {
                out[view_d] = vnumel * chunk;
                vnumel *= ns[view_d];
                view_d--;
            }
            if (vnumel != tnumel) return false;
            if (d > 0) {
                chunk = x->strides[d - 1];
                tnumel = vnumel = 1;
            }
        }
    }
    return view_d == -1;
}

/* Resolves a -1 and checks the element count, refusing sizes whose product overflows. */
static bool target_shape(const char *name, const tg_tensor *x, tg_shape *s) {
    char b1[128], b2[128];
    if (s->ndim < 0 || s->ndim > TG_MAX_DIMS) {
        tg_error(TG_ERR_SHAPE, "%s: %d dimensions (at most %d)", name, s->ndim, TG_MAX_DIMS);
        return false;
    }
    int infer = -1;
    int64_t numel = tg_shape_numel(x->ndim, x->shape);
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] == -1 && infer < 0) infer = i;
        else if (s->dims[i] < 0) {
            tg_error(TG_ERR_SHAPE, "%s: bad size %lld in %s", name, (long long)s->dims[i], tg_shape_str(b1, s->ndim, s->dims));
            return false;
        }
    }
    tg_shape known = *s; /* the sizes given, with 1 for the inferred one */
    if (infer >= 0) known.dims[infer] = 1;
    int64_t kn;
    if (!tg_shape_numel_checked(known.ndim, known.dims, &kn))
        return tg_op_shape_ok(name, s->ndim, s->dims);
    if (infer >= 0 && kn != 0 && numel % kn == 0) s->dims[infer] = numel / kn;
    if ((infer >= 0 && s->dims[infer] < 0) || tg_shape_numel(s->ndim, s->dims) != numel) {
        tg_error(TG_ERR_SHAPE, "%s: cannot view %s (%lld elements) as %s", name, tg_shape_str(b1, x->ndim, x->shape),
                 (long long)numel, tg_shape_str(b2, s->ndim, s->dims));
        return false;
    }
    return true;
}

static tg_tensor *reshape(const char *name, tg_tensor *x, tg_shape s, bool allow_copy) {
    if (!tg_op_nonnull(name, "x", x) || !target_shape(name, x, &s)) return NULL;
    int64_t st[TG_MAX_DIMS];
    if (!view_strides(x, s.ndim, s.dims, st)) {
        char b1[128];
        if (!allow_copy)
            return tg_error_null(TG_ERR_SHAPE, "%s: the strides of %s do not allow a view; use tg_reshape "
                                 "(which copies) or tg_contiguous first", name, tg_shape_str(b1, x->ndim, x->shape));
        return reshape(name, tg_clone(x), s, false);
    }
    tg_tensor *out = tg_tensor_alias(x, s.ndim, s.dims, st, x->offset);
    return record_view(TG_OP_RESHAPE, out, x, NULL, 0, NULL, 0);
}

tg_tensor *tg_reshape(tg_tensor *x, tg_shape s) {
    TG_API_ENTER("tg_reshape");
    return reshape("tg_reshape", x, s, true);
}

tg_tensor *tg_view(tg_tensor *x, tg_shape s) {
    TG_API_ENTER("tg_view");
    return reshape("tg_view", x, s, false);
}

tg_status tg_bw_reshape(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_shape s = { .ndim = n->inputs[0].ndim };
    memcpy(s.dims, n->inputs[0].shape, sizeof s.dims);
    gin[0] = tg_reshape(g, s);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_flatten(tg_tensor *x, int start_axis) {
    TG_API_ENTER("tg_flatten");
    if (!tg_op_nonnull("tg_flatten", "x", x)) return NULL;
    int a = start_axis;
    if (x->ndim == 0) return tg_reshape(x, TG_SHAPE(1));
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "tg_flatten: axis %d is out of range for %d dimensions", start_axis, x->ndim);
    tg_shape s = { .ndim = a + 1 };
    memcpy(s.dims, x->shape, (size_t)a * sizeof *x->shape);
    s.dims[a] = tg_shape_numel(x->ndim - a, x->shape + a);
    return tg_reshape(x, s);
}

tg_tensor *tg_squeeze(tg_tensor *x, int axis) {
    TG_API_ENTER("tg_squeeze");
    if (!tg_op_nonnull("tg_squeeze", "x", x)) return NULL;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "tg_squeeze: axis %d is out of range for %d dimensions", axis, x->ndim);
    /* Like PyTorch, squeezing an axis whose size is not 1 leaves the shape as it is. */
    return x->shape[a] == 1 ? tg_squeeze_mask(x, 1u << a) : tg_reshape(x, tg_shape_of(x));
}

tg_tensor *tg_unsqueeze(tg_tensor *x, int axis) {
    TG_API_ENTER("tg_unsqueeze");
    if (!tg_op_nonnull("tg_unsqueeze", "x", x)) return NULL;
    if (x->ndim == TG_MAX_DIMS)
        return tg_error_null(TG_ERR_SHAPE, "tg_unsqueeze: x has %d dimensions already (at most %d)", x->ndim, TG_MAX_DIMS);
    int a = axis < 0 ? axis + x->ndim + 1 : axis;
    if (a < 0 || a > x->ndim)
        return tg_error_null(TG_ERR_INVALID, "tg_unsqueeze: axis %d is out of range for %d dimensions", axis, x->ndim);
    tg_shape s = { .ndim = x->ndim + 1 };
    for (int i = 0, j = 0; i < s.ndim; i++) s.dims[i] = i == a ? 1 : x->shape[j++];
    return tg_reshape(x, s);
}

/* ------------------------------------------------------------- permute */

tg_tensor *tg_permute(tg_tensor *x, tg_axes order) {
    TG_API_ENTER("tg_permute");
    if (!tg_op_nonnull("tg_permute", "x", x)) return NULL;
    if (order.n != x->ndim)
        return tg_error_null(TG_ERR_INVALID, "tg_permute: %d axes given for %d dimensions", order.n, x->ndim);
    uint32_t seen = 0;
    int perm[TG_MAX_DIMS];
    int64_t shape[TG_MAX_DIMS], st[TG_MAX_DIMS];
    for (int i = 0; i < order.n; i++) {
        int a = order.axes[i];
        if (!tg_axis_norm(&a, x->ndim) || (seen >> a & 1))
            return tg_error_null(TG_ERR_INVALID, "tg_permute: axis %d is out of range or repeated", order.axes[i]);
        seen |= 1u << a;
        perm[i] = a;
        shape[i] = x->shape[a];
        st[i] = x->strides[a];
    }
    tg_tensor *out = tg_tensor_alias(x, x->ndim, shape, st, x->offset);
    return record_view(TG_OP_PERMUTE, out, x, perm, x->ndim, NULL, 0);
}

tg_status tg_bw_permute(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_axes inv = { .n = n->inputs[0].ndim };
    for (int i = 0; i < inv.n; i++) inv.axes[n->iarg[i]] = i;
    gin[0] = tg_permute(g, inv);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_transpose(tg_tensor *x, int a0, int a1) {
    TG_API_ENTER("tg_transpose");
    if (!tg_op_nonnull("tg_transpose", "x", x)) return NULL;
    int a = a0, b = a1;
    if (!tg_axis_norm(&a, x->ndim) || !tg_axis_norm(&b, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "tg_transpose: axes %d, %d out of range for %d dimensions", a0, a1, x->ndim);
    tg_axes order = { .n = x->ndim };
    for (int i = 0; i < x->ndim; i++) order.axes[i] = i == a ? b : i == b ? a : i;
    return tg_permute(x, order);
}

/* ------------------------------------------------------------- expand */

tg_tensor *tg_expand(tg_tensor *x, tg_shape s) {
    TG_API_ENTER("tg_expand");
    char b1[128], b2[128];
    if (!tg_op_nonnull("tg_expand", "x", x)) return NULL;
    if (s.ndim < 0 || s.ndim > TG_MAX_DIMS)
        return tg_error_null(TG_ERR_SHAPE, "tg_expand: %d dimensions (at most %d)", s.ndim, TG_MAX_DIMS);
    if (s.ndim < x->ndim)
        return tg_error_null(TG_ERR_SHAPE, "tg_expand: cannot expand %s to %s (fewer dimensions)",
                             tg_shape_str(b1, x->ndim, x->shape), tg_shape_str(b2, s.ndim, s.dims));
    int off = s.ndim - x->ndim;
    int64_t st[TG_MAX_DIMS];
    for (int i = 0; i < s.ndim; i++) {
        int64_t have = i < off ? 1 : x->shape[i - off];
        if (s.dims[i] == -1 && i >= off) s.dims[i] = have;
        if (s.dims[i] < 0 || (have != 1 && have != s.dims[i]))
            return tg_error_null(TG_ERR_SHAPE, "tg_expand: cannot expand %s to %s (axis %d)",
                                 tg_shape_str(b1, x->ndim, x->shape), tg_shape_str(b2, s.ndim, s.dims), i);
        st[i] = i < off || have != s.dims[i] ? 0 : x->strides[i - off];
    }
    if (!tg_op_shape_ok("tg_expand", s.ndim, s.dims)) return NULL;
    tg_tensor *out = tg_tensor_alias(x, s.ndim, s.dims, st, x->offset);
    return record_view(TG_OP_EXPAND, out, x, NULL, 0, NULL, 0);
}

tg_tensor *tg_expand_to(tg_tensor *x, int ndim, const int64_t *shape) {
    tg_shape s = { .ndim = ndim };
    memcpy(s.dims, shape, (size_t)ndim * sizeof *shape);
    return tg_expand(x, s);
}

tg_status tg_bw_expand(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    gin[0] = tg_sum_to(g, n->inputs[0].ndim, n->inputs[0].shape);
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- slice and flip */

/* Python's slice.indices(len): start and stop clamped into [0, len] without
 * overflow for any int64 (INT64_MIN..INT64_MAX), then ceil((stop - start) / step). */
tg_tensor *tg_slice(tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step) {
    TG_API_ENTER("tg_slice");
    if (!tg_op_nonnull("tg_slice", "x", x)) return NULL;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "tg_slice: axis %d is out of range for %d dimensions", axis, x->ndim);
    if (step <= 0) return tg_error_null(TG_ERR_INVALID, "tg_slice: step must be positive, got %lld", (long long)step);
    int64_t len = x->shape[a]; /* 0 <= len <= TG_MAX_NUMEL, so start + len cannot overflow */
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    start = start < 0 ? 0 : start > len ? len : start;
    stop = stop < start ? start : stop > len ? len : stop;
    int64_t n = stop > start ? (stop - start - 1) / step + 1 : 0;
    if (n <= 1) step = 1; /* one element or none: the step is irrelevant, and step 1 keeps strides small */
    int64_t shape[TG_MAX_DIMS], st[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    memcpy(st, x->strides, sizeof st);
    shape[a] = n;
    st[a] = x->strides[a] * step;
    tg_tensor *out = tg_tensor_alias(x, x->ndim, shape, st, x->offset + start * x->strides[a]);
    return record_view(TG_OP_SLICE, out, x, &a, 1, (int64_t[]){ start, step }, 2);
}

tg_status tg_bw_slice(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    int a = n->iarg[0], nd = n->inputs[0].ndim;
    int64_t start[TG_MAX_DIMS] = { 0 }, step[TG_MAX_DIMS];
    for (int i = 0; i < nd; i++) step[i] = 1;
    start[a] = n->larg[0];
    step[a] = n->larg[1];
    gin[0] = tg_embed(g, nd, n->inputs[0].shape, start, step, 0.0);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_flip(tg_tensor *x, tg_axes axes) {
    TG_API_ENTER("tg_flip");
    uint32_t mask;
    if (!tg_op_nonnull("tg_flip", "x", x) || !tg_axes_mask("tg_flip", axes, x->ndim, &mask)) return NULL;
    int64_t st[TG_MAX_DIMS], off = x->offset;
    for (int i = 0; i < x->ndim; i++) {
        st[i] = x->strides[i];
        if ((mask >> i & 1) && x->shape[i] > 0) {
            off += (x->shape[i] - 1) * x->strides[i];
            st[i] = -st[i];
        }
    }
    tg_tensor *out = tg_tensor_alias(x, x->ndim, x->shape, st, off);
    return record_view(TG_OP_FLIP, out, x, (int[]){ (int)mask }, 1, NULL, 0);
}

tg_status tg_bw_flip(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_axes axes = { 0 };
    for (int i = 0; i < g->ndim; i++)
        if (n->iarg[0] >> i & 1) axes.axes[axes.n++] = i;
    gin[0] = tg_flip(g, axes);
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- copies */

tg_tensor *tg_clone(tg_tensor *x) {
    TG_API_ENTER("tg_clone");
    if (!tg_op_nonnull("tg_clone", "x", x)) return NULL;
    tg_tensor *out = tg_tensor_new(x->dtype, x->ndim, x->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->copy(out, x) != TG_OK) return NULL;
    return record_view(TG_OP_COPY, out, x, NULL, 0, NULL, 0);
}

tg_status tg_bw_copy(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    (void)n;
    gin[0] = g;
    return TG_OK;
}

tg_tensor *tg_contiguous(tg_tensor *x) {
    TG_API_ENTER("tg_contiguous");
    if (!tg_op_nonnull("tg_contiguous", "x", x)) return NULL;
    return tg_tensor_is_dense(x) ? tg_reshape(x, tg_shape_of(x)) : tg_clone(x);
}

tg_tensor *tg_detach(tg_tensor *x) {
    TG_API_ENTER("tg_detach");
    if (!tg_op_nonnull("tg_detach", "x", x)) return NULL;
    return tg_tensor_alias(x, x->ndim, x->shape, x->strides, x->offset);
}
