/* Indexing (gather, scatter-add, index_select, one_hot) and conversion (cast, to).
 * Indices follow PyTorch's rule: i32 or i64, each in [0, size); a negative or too large
 * one is an error that the backend's kernel reports (it does not wrap). */
#include <stdlib.h>
#include <string.h>

#include "lib/ops/ops.h"

static bool check_index(const char *name, const tg_tensor *x, int *axis, const tg_tensor *idx) {
    int a = *axis;
    if (!tg_axis_norm(&a, x->ndim)) {
        tg_error(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", name, *axis, x->ndim);
        return false;
    }
    if (!tg_op_index(name, "index", idx)) return false;
    if (tg_dev(idx) != tg_dev(x)) {
        tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s", name, tg_dev(x)->name, tg_dev(idx)->name);
        return false;
    }
    char b1[128], b2[128];
    bool fits = idx->ndim == x->ndim;
    for (int d = 0; d < x->ndim && fits; d++) fits = d == a || idx->shape[d] <= x->shape[d];
    if (!fits) {
        tg_error(TG_ERR_SHAPE, "%s: index of shape %s does not fit input %s (same number of axes, and no larger "
                 "except on axis %d)", name, tg_shape_str(b1, idx->ndim, idx->shape), tg_shape_str(b2, x->ndim, x->shape), a);
        return false;
    }
    *axis = a;
    return true;
}

/* gather: out has index's shape; inputs (x, index). */
bool tg_gather_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0], *idx = c->in[1];
    if (!check_index("tg_gather", x, &c->args.axis.axis, idx)) return false;
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = x->dtype;
    s->ndim = idx->ndim;
    memcpy(s->shape, idx->shape, sizeof s->shape);
    return true;
}

tg_status tg_gather_launch(tg_op_call *c) {
    return tg_dev(c->in[0])->be->gather(c->out[0], c->in[0], c->args.axis.axis, c->in[1]);
}

tg_tensor *tg_gather(tg_tensor *x, int axis, tg_tensor *index) {
    tg_op_call *c = TG_OP_CALL(TG_OP_GATHER, 2, x, index);
    c->args.axis.axis = axis;
    return tg_op_run(c);
}

tg_status tg_bw_gather(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0);
    if (!idx) return tg_last_status();
    const tg_edge *e = &n->inputs[0];
    gin[0] = tg_scatter_add(tg_zeros(e->dtype, tg_ops_input_shape(n, 0), e->dev), n->args.axis.axis, idx, gout[0]);
    return gin[0] ? TG_OK : tg_last_status();
}

/* scatter_add: a copy of x with src added at index along axis; inputs (x, index, src). */
bool tg_scatter_add_shape(tg_op_call *c) {
    const char *name = "tg_scatter_add";
    tg_tensor *x = c->in[0], *index = c->in[1], *src = c->in[2];
    char b1[128], b2[128];
    if (!tg_op_compatible(name, x, src) || !check_index(name, x, &c->args.axis.axis, index)) return false;
    if (!tg_shape_equal(index->ndim, index->shape, src->ndim, src->shape)) {
        tg_error(TG_ERR_SHAPE, "tg_scatter_add: index %s and src %s must have the same shape",
                 tg_shape_str(b1, index->ndim, index->shape), tg_shape_str(b2, src->ndim, src->shape));
        return false;
    }
    return tg_same_shape(c);
}

tg_status tg_scatter_add_launch(tg_op_call *c) {
    const tg_backend *be = tg_dev(c->in[0])->be;
    tg_status st = be->copy(c->out[0], c->in[0]);
    return st == TG_OK ? be->scatter_add(c->out[0], c->args.axis.axis, c->in[1], c->in[2]) : st;
}

tg_tensor *tg_scatter_add(tg_tensor *x, int axis, tg_tensor *index, tg_tensor *src) {
    tg_op_call *c = TG_OP_CALL(TG_OP_SCATTER_ADD, 3, x, index, src);
    c->args.axis.axis = axis;
    return tg_op_run(c);
}

tg_status tg_bw_scatter_add(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0);
    if (!idx) return tg_last_status();
    gin[0] = gout[0];
    if (tg_node_needs(n, 2) && !(gin[2] = tg_gather(gout[0], n->args.axis.axis, idx))) return tg_last_status();
    return TG_OK;
}

/* Picks slices along axis: a gather with the 1-D index stretched across the other axes. */
tg_tensor *tg_index_select(tg_tensor *x, int axis, tg_tensor *index) {
    TG_API_ENTER("tg_index_select");
    const char *name = "tg_index_select";
    if (!tg_op_nonnull(name, "x", x) || !tg_op_nonnull(name, "index", index) || !tg_op_index(name, "index", index))
        return NULL;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim))
        return tg_error_null(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", name, axis, x->ndim);
    if (index->ndim > 1) /* a 0-d index picks one slice and keeps the axis, as in PyTorch */
        return tg_error_null(TG_ERR_SHAPE, "%s: index must be 1-D or 0-d, got %d dimensions", name, index->ndim);
    if (tg_dev(index) != tg_dev(x))
        return tg_error_null(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s", name, tg_dev(x)->name,
                             tg_dev(index)->name);
    int64_t len = index->ndim ? index->shape[0] : 1;
    tg_shape s = { .ndim = x->ndim }, full = tg_shape_of(x);
    for (int i = 0; i < x->ndim; i++) s.dims[i] = i == a ? len : 1;
    full.dims[a] = len;
    return tg_gather(x, a, tg_expand(tg_reshape(index, s), full));
}

/* i64 like PyTorch's F.one_hot; the range check reads two numbers back to the host. */
tg_tensor *tg_one_hot(tg_tensor *labels, int64_t num_classes) {
    TG_API_ENTER("tg_one_hot");
    const char *name = "tg_one_hot";
    if (!tg_op_nonnull(name, "labels", labels) || !tg_op_index(name, "labels", labels)) return NULL;
    if (num_classes <= 0)
        return tg_error_null(TG_ERR_INVALID, "%s: num_classes must be positive, got %lld", name, (long long)num_classes);
    if (labels->ndim == TG_MAX_DIMS)
        return tg_error_null(TG_ERR_SHAPE, "%s: labels have %d dimensions; the result would have %d (at most %d)",
                             name, labels->ndim, labels->ndim + 1, TG_MAX_DIMS);
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, labels->shape, sizeof shape);
    shape[labels->ndim] = num_classes;
    if (!tg_op_shape_ok(name, labels->ndim + 1, shape)) return NULL;
    if (tg_numel(labels) > 0) {
        double lo = tg_item(tg_min(labels, TG_ALL, false)), hi = tg_item(tg_max(labels, TG_ALL, false));
        if (lo != lo || hi != hi) return NULL; /* the reads failed; their message stands */
        if (lo < 0 || hi >= (double)num_classes)
            return tg_error_null(TG_ERR_INVALID, "%s: labels range over [%.0f, %.0f], outside [0, %lld)", name, lo, hi,
                                 (long long)num_classes);
    }
    tg_tensor *classes = tg_arange(labels->dtype, 0, (double)num_classes, 1, tg_dev(labels));
    return tg_cast(tg_eq(tg_unsqueeze(labels, -1), classes), TG_I64);
}

/* ------------------------------------------------------------- cast and to */

/* A cast to an integer dtype cuts the graph: it has no gradient. */
bool tg_cast_shape(tg_op_call *c) {
    tg_dtype dtype = c->args.cast.dtype;
    if ((unsigned)dtype >= TG_NUM_DTYPES) {
        tg_error(TG_ERR_DTYPE, "tg_cast: unknown dtype %d", (int)dtype);
        return false;
    }
    tg_same_shape(c);
    c->out_spec[0].dtype = dtype;
    c->no_record = !tg_is_float(dtype);
    return true;
}

tg_tensor *tg_cast(tg_tensor *x, tg_dtype dtype) {
    tg_op_call *c = TG_OP_CALL(TG_OP_CAST, 1, x);
    c->args.cast.dtype = dtype;
    return tg_op_run(c);
}

tg_status tg_bw_cast(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_cast(gout[0], n->inputs[0].dtype);
    return gin[0] ? TG_OK : tg_last_status();
}

/* Copies through host memory: backends know only their own buffers. */
bool tg_to_shape(tg_op_call *c) {
    if (!c->args.to.dev) {
        tg_error(TG_ERR_DEVICE, "tg_to: device is NULL");
        return false;
    }
    tg_same_shape(c);
    c->out_spec[0].dev = c->args.to.dev;
    return true;
}

tg_status tg_to_launch(tg_op_call *c) {
    tg_tensor *x = c->in[0], *out = c->out[0];
    tg_scope_begin();
    tg_tensor *dense = tg_contiguous(tg_detach(x));
    size_t nbytes = (size_t)tg_numel(x) * tg_elsize(x->dtype);
    void *host = malloc(nbytes ? nbytes : 1);
    tg_status st = !dense ? tg_last_status()
                 : !host  ? tg_error(TG_ERR_NOMEM, "tg_to: out of host memory (%zu bytes)", nbytes)
                          : tg_copy_to_host(dense, host, nbytes);
    if (st == TG_OK) st = tg_dev(out)->be->upload(tg_dev(out), out->storage->data, 0, host, nbytes);
    free(host);
    tg_scope_end();
    return st;
}

tg_tensor *tg_to(tg_tensor *x, tg_device *dev) {
    TG_API_ENTER("tg_to");
    if (!tg_op_nonnull("tg_to", "x", x)) return NULL;
    if (tg_dev(x) == dev) return tg_reshape(x, tg_shape_of(x));
    tg_op_call *c = TG_OP_CALL(TG_OP_TO, 1, x);
    c->args.to.dev = dev;
    return tg_op_run(c);
}

tg_status tg_bw_to(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_to(gout[0], n->inputs[0].dev);
    return gin[0] ? TG_OK : tg_last_status();
}
