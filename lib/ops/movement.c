/* Movement ops that return views (reshape, permute, expand, slice, flip, squeeze) and
 * the copies (contiguous, clone). A view shares storage and records a node whose rule
 * moves the gradient back the same way. */
#include <string.h>

#include "lib/ops/ops.h"

/* Output 0 as a view of x: the shape rules below call this with its geometry. */
static bool view_of(tg_op_call *c, int ndim, const int64_t *shape, const int64_t *strides, int64_t offset) {
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = c->in[0]->dtype;
    s->ndim = ndim;
    if (ndim) {
        memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
        memcpy(c->view_strides, strides, (size_t)ndim * sizeof *strides);
    }
    c->view_offset = offset;
    return true;
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

/* Resolves a -1 and checks the element count, refusing sizes whose product overflows.
 * name NULL: only tells whether the shape is valid, setting no message. */
static bool target_shape(const char *name, const tg_tensor *x, tg_shape *s) {
    char b1[128], b2[128];
    if (s->ndim < 0 || s->ndim > TG_MAX_DIMS) {
        if (name) tg_error(TG_ERR_SHAPE, "%s: %d dimensions (at most %d)", name, s->ndim, TG_MAX_DIMS);
        return false;
    }
    int infer = -1;
    int64_t numel = tg_shape_numel(x->ndim, x->shape);
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] == -1 && infer < 0) infer = i;
        else if (s->dims[i] < 0) {
            if (name)
                tg_error(TG_ERR_SHAPE, "%s: bad size %lld in %s", name, (long long)s->dims[i],
                         tg_shape_str(b1, s->ndim, s->dims));
            return false;
        }
    }
    tg_shape known = *s; /* the sizes given, with 1 for the inferred one */
    if (infer >= 0) known.dims[infer] = 1;
    int64_t kn;
    if (!tg_shape_numel_checked(known.ndim, known.dims, &kn)) return name && tg_op_shape_ok(name, s->ndim, s->dims);
    if (infer >= 0 && kn != 0 && numel % kn == 0) s->dims[infer] = numel / kn;
    if ((infer >= 0 && s->dims[infer] < 0) || tg_shape_numel(s->ndim, s->dims) != numel) {
        if (name)
            tg_error(TG_ERR_SHAPE, "%s: cannot view %s (%lld elements) as %s", name,
                     tg_shape_str(b1, x->ndim, x->shape), (long long)numel, tg_shape_str(b2, s->ndim, s->dims));
        return false;
    }
    return true;
}

/* The target shape comes in out_spec[0] (-1 resolved here); a view when strides allow. */
bool tg_reshape_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    tg_shape s = { .ndim = c->out_spec[0].ndim };
    memcpy(s.dims, c->out_spec[0].shape, sizeof s.dims);
    const char *name = tg_api_current() ? tg_api_current() : "tg_reshape";
    int64_t st[TG_MAX_DIMS];
    if (!target_shape(name, x, &s)) return false;
    if (!view_strides(x, s.ndim, s.dims, st)) {
        char b1[128];
        tg_error(TG_ERR_SHAPE, "%s: the strides of %s do not allow a view; use tg_reshape (which copies) or "
                 "tg_contiguous first", name, tg_shape_str(b1, x->ndim, x->shape));
        return false;
    }
    return view_of(c, s.ndim, s.dims, st, x->offset);
}

/* The shape rule checks everything; a reshape whose layout allows no view reshapes a
 * copy instead. */
static tg_tensor *reshape(tg_tensor *x, tg_shape s, bool allow_copy) {
    int64_t st[TG_MAX_DIMS];
    tg_shape t = s;
    if (allow_copy && x && x->magic == TG_TENSOR_LIVE && target_shape(NULL, x, &t) &&
        !view_strides(x, t.ndim, t.dims, st))
        x = tg_clone(x);
    tg_op_call *c = TG_OP_CALL(TG_OP_RESHAPE, 1, x);
    c->out_spec[0].ndim = s.ndim;
    memcpy(c->out_spec[0].shape, s.dims, sizeof s.dims);
    return tg_op_run(c);
}

tg_tensor *tg_reshape(tg_tensor *x, tg_shape s) {
    TG_API_ENTER("tg_reshape");
    return reshape(x, s, true);
}

tg_tensor *tg_view(tg_tensor *x, tg_shape s) {
    TG_API_ENTER("tg_view");
    return reshape(x, s, false);
}

tg_status tg_bw_reshape(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_reshape(gout[0], tg_ops_input_shape(n, 0));
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
    return x->shape[a] == 1 ? tg_ops_squeeze_mask(x, 1u << a) : tg_reshape(x, tg_shape_of(x));
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

bool tg_permute_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    int n = c->out_spec[0].ndim; /* the number of axes given */
    if (n != x->ndim) {
        tg_error(TG_ERR_INVALID, "tg_permute: %d axes given for %d dimensions", n, x->ndim);
        return false;
    }
    uint32_t seen = 0;
    int64_t shape[TG_MAX_DIMS], st[TG_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        int a = c->args.permute.order[i];
        if (!tg_axis_norm(&a, x->ndim) || (seen >> a & 1)) {
            tg_error(TG_ERR_INVALID, "tg_permute: axis %d is out of range or repeated", c->args.permute.order[i]);
            return false;
        }
        seen |= 1u << a;
        c->args.permute.order[i] = a;
        shape[i] = x->shape[a];
        st[i] = x->strides[a];
    }
    return view_of(c, n, shape, st, x->offset);
}

tg_tensor *tg_permute(tg_tensor *x, tg_axes order) {
    tg_op_call *c = TG_OP_CALL(TG_OP_PERMUTE, 1, x);
    c->out_spec[0].ndim = order.n;
    if (order.n > 0 && order.n <= TG_MAX_DIMS) memcpy(c->args.permute.order, order.axes, (size_t)order.n * sizeof(int));
    return tg_op_run(c);
}

tg_status tg_bw_permute(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_axes inv = { .n = n->inputs[0].ndim };
    for (int i = 0; i < inv.n; i++) inv.axes[n->args.permute.order[i]] = i;
    gin[0] = tg_permute(gout[0], inv);
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

/* The target shape comes in out_spec[0]; -1 keeps a size. */
bool tg_expand_shape(tg_op_call *c) {
    char b1[128], b2[128];
    tg_tensor *x = c->in[0];
    tg_shape s = { .ndim = c->out_spec[0].ndim };
    if (s.ndim < 0 || s.ndim > TG_MAX_DIMS) {
        tg_error(TG_ERR_SHAPE, "tg_expand: %d dimensions (at most %d)", s.ndim, TG_MAX_DIMS);
        return false;
    }
    memcpy(s.dims, c->out_spec[0].shape, sizeof s.dims);
    if (s.ndim < x->ndim) {
        tg_error(TG_ERR_SHAPE, "tg_expand: cannot expand %s to %s (fewer dimensions)",
                 tg_shape_str(b1, x->ndim, x->shape), tg_shape_str(b2, s.ndim, s.dims));
        return false;
    }
    int off = s.ndim - x->ndim;
    int64_t st[TG_MAX_DIMS];
    for (int i = 0; i < s.ndim; i++) {
        int64_t have = i < off ? 1 : x->shape[i - off];
        if (s.dims[i] == -1 && i >= off) s.dims[i] = have;
        if (s.dims[i] < 0 || (have != 1 && have != s.dims[i])) {
            tg_error(TG_ERR_SHAPE, "tg_expand: cannot expand %s to %s (axis %d)", tg_shape_str(b1, x->ndim, x->shape),
                     tg_shape_str(b2, s.ndim, s.dims), i);
            return false;
        }
        st[i] = i < off || have != s.dims[i] ? 0 : x->strides[i - off];
    }
    return tg_op_shape_ok("tg_expand", s.ndim, s.dims) && view_of(c, s.ndim, s.dims, st, x->offset);
}

tg_tensor *tg_expand(tg_tensor *x, tg_shape s) {
    tg_op_call *c = TG_OP_CALL(TG_OP_EXPAND, 1, x);
    c->out_spec[0].ndim = s.ndim;
    if (s.ndim > 0 && s.ndim <= TG_MAX_DIMS) memcpy(c->out_spec[0].shape, s.dims, sizeof s.dims);
    return tg_op_run(c);
}

tg_tensor *tg_ops_expand_to(tg_tensor *x, int ndim, const int64_t *shape) {
    tg_shape s = { .ndim = ndim };
    memcpy(s.dims, shape, (size_t)ndim * sizeof *shape);
    return tg_expand(x, s);
}

tg_status tg_bw_expand(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_ops_sum_to(gout[0], n->inputs[0].ndim, n->inputs[0].shape);
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- slice and flip */

/* Python's slice.indices(len): start and stop clamped into [0, len] without
 * overflow for any int64 (INT64_MIN..INT64_MAX), then ceil((stop - start) / step). */
bool tg_slice_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    int64_t start = c->args.slice.start, stop = c->out_spec[0].shape[0], step = c->args.slice.step;
    if (!tg_op_axis("tg_slice", &c->args.slice.axis, x->ndim)) return false;
    if (step <= 0) {
        tg_error(TG_ERR_INVALID, "tg_slice: step must be positive, got %lld", (long long)step);
        return false;
    }
    int a = c->args.slice.axis;
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
    c->args.slice.start = start;
    c->args.slice.step = step;
    return view_of(c, x->ndim, shape, st, x->offset + start * x->strides[a]);
}

/* Python's slice.indices(len): start and stop clamped into [0, len] without
 * overflow for any int64 (INT64_MIN..INT64_MAX), then ceil((stop - start) / step). */
tg_tensor *tg_slice(tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step) {
    tg_op_call *c = TG_OP_CALL(TG_OP_SLICE, 1, x);
    c->args.slice.axis = axis;
    c->args.slice.start = start;
    c->args.slice.step = step;
    c->out_spec[0].shape[0] = stop; /* the shape rule's input */
    return tg_op_run(c);
}

tg_status tg_bw_slice(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    int a = n->args.slice.axis, nd = n->inputs[0].ndim;
    int64_t start[TG_MAX_DIMS] = { 0 }, step[TG_MAX_DIMS];
    for (int i = 0; i < nd; i++) step[i] = 1;
    start[a] = n->args.slice.start;
    step[a] = n->args.slice.step;
    gin[0] = tg_ops_embed(gout[0], nd, n->inputs[0].shape, start, step, 0.0);
    return gin[0] ? TG_OK : tg_last_status();
}

bool tg_flip_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    uint32_t mask = c->args.flip.mask;
    int64_t st[TG_MAX_DIMS], off = x->offset;
    for (int i = 0; i < x->ndim; i++) {
        st[i] = x->strides[i];
        if ((mask >> i & 1) && x->shape[i] > 0) {
            off += (x->shape[i] - 1) * x->strides[i];
            st[i] = -st[i];
        }
    }
    return view_of(c, x->ndim, x->shape, st, off);
}

tg_tensor *tg_flip(tg_tensor *x, tg_axes axes) {
    TG_API_ENTER("tg_flip");
    uint32_t mask;
    if (!tg_op_nonnull("tg_flip", "x", x) || !tg_op_axes_mask("tg_flip", axes, x->ndim, &mask)) return NULL;
    tg_op_call *c = TG_OP_CALL(TG_OP_FLIP, 1, x);
    c->args.flip.mask = mask;
    return tg_op_run(c);
}

tg_status tg_bw_flip(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_axes axes = { 0 };
    for (int i = 0; i < gout[0]->ndim; i++)
        if (n->args.flip.mask >> i & 1) axes.axes[axes.n++] = i;
    gin[0] = tg_flip(gout[0], axes);
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- copies */

tg_tensor *tg_clone(tg_tensor *x) { return tg_op_run(TG_OP_CALL(TG_OP_COPY, 1, x)); }

tg_status tg_bw_copy(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    (void)n;
    gin[0] = gout[0];
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
