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

tg_tensor *tg_gather(tg_tensor *x, int axis, tg_tensor *index) {
    TG_API_ENTER("tg_gather");
    const char *name = "tg_gather";
    if (!tg_op_nonnull(name, "x", x) || !tg_op_nonnull(name, "index", index) || !check_index(name, x, &axis, index))
        return NULL;
    tg_tensor *out = tg_tensor_new(x->dtype, index->ndim, index->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->gather(out, x, axis, index) != TG_OK) return NULL;
    if (tg_should_record(1, &x)) {
        tg_node *n = tg_record(TG_OP_GATHER, out, 1, &x);
        if (!n) return NULL;
        n->iarg[0] = axis;
        tg_node_save(n, index);
    }
    return out;
}

tg_status tg_bw_gather(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0);
    if (!idx) return tg_last_status();
    const tg_edge *e = &n->inputs[0];
    tg_shape s = { .ndim = e->ndim };
    memcpy(s.dims, e->shape, sizeof s.dims);
    gin[0] = tg_scatter_add(tg_zeros(e->dtype, s, e->dev), n->iarg[0], idx, g);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_tensor *tg_scatter_add(tg_tensor *x, int axis, tg_tensor *index, tg_tensor *src) {
    TG_API_ENTER("tg_scatter_add");
    const char *name = "tg_scatter_add";
    char b1[128], b2[128];
    if (!tg_op_nonnull(name, "x", x) || !tg_op_nonnull(name, "index", index) || !tg_op_nonnull(name, "src", src) ||
        !tg_op_compatible(name, x, src) || !check_index(name, x, &axis, index))
        return NULL;
    if (!tg_shape_equal(index->ndim, index->shape, src->ndim, src->shape))
        return tg_error_null(TG_ERR_SHAPE, "tg_scatter_add: index %s and src %s must have the same shape",
                             tg_shape_str(b1, index->ndim, index->shape), tg_shape_str(b2, src->ndim, src->shape));
    if (!tg_op_float(name, x)) return NULL;
    tg_tensor *out = tg_tensor_new(x->dtype, x->ndim, x->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->copy(out, x) != TG_OK || tg_dev(x)->be->scatter_add(out, axis, index, src) != TG_OK)
        return NULL;
    tg_tensor *in[2] = { x, src };
    if (tg_should_record(2, in)) {
        tg_node *n = tg_record(TG_OP_SCATTER_ADD, out, 2, in);
        if (!n) return NULL;
        n->iarg[0] = axis;
        tg_node_save(n, index);
    }
    return out;
}

tg_status tg_bw_scatter_add(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0);
    if (!idx) return tg_last_status();
    gin[0] = g;
    if (tg_node_needs(n, 1) && !(gin[1] = tg_gather(g, n->iarg[0], idx))) return tg_last_status();
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

tg_tensor *tg_cast(tg_tensor *x, tg_dtype dtype) {
    TG_API_ENTER("tg_cast");
    if (!tg_op_nonnull("tg_cast", "x", x)) return NULL;
    if ((unsigned)dtype >= TG_NUM_DTYPES) return tg_error_null(TG_ERR_DTYPE, "tg_cast: unknown dtype %d", (int)dtype);
    tg_tensor *out = tg_tensor_new(dtype, x->ndim, x->shape, tg_dev(x));
    if (!out || tg_dev(x)->be->copy(out, x) != TG_OK) return NULL;
    if (tg_is_float(dtype) && tg_should_record(1, &x)) {
        if (!tg_record(TG_OP_CAST, out, 1, &x)) return NULL;
    }
    return out;
}

tg_status tg_bw_cast(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    gin[0] = tg_cast(g, n->inputs[0].dtype);
    return gin[0] ? TG_OK : tg_last_status();
}

/* Copies through host memory: backends know only their own buffers. */
static tg_tensor *copy_across(tg_tensor *x, tg_device *dev) {
    tg_tensor *dense = tg_contiguous(tg_detach(x));
    if (!dense) return NULL;
    size_t nbytes = (size_t)tg_numel(x) * tg_elsize(x->dtype);
    void *host = malloc(nbytes ? nbytes : 1);
    if (!host) return tg_error_null(TG_ERR_NOMEM, "tg_to: out of host memory (%zu bytes)", nbytes);
    tg_tensor *out = NULL;
    if (tg_copy_to_host(dense, host, nbytes) == TG_OK) out = tg_from_data(host, x->dtype, tg_shape_of(x), dev);
    free(host);
    return out;
}

tg_tensor *tg_to(tg_tensor *x, tg_device *dev) {
    TG_API_ENTER("tg_to");
    if (!tg_op_nonnull("tg_to", "x", x)) return NULL;
    if (!dev) return tg_error_null(TG_ERR_DEVICE, "tg_to: device is NULL");
    if (tg_dev(x) == dev) return tg_reshape(x, tg_shape_of(x));
    tg_tensor *out = copy_across(x, dev);
    if (out && tg_should_record(1, &x) && !tg_record(TG_OP_TO, out, 1, &x)) return NULL;
    return out;
}

tg_status tg_bw_to(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    gin[0] = tg_to(g, n->inputs[0].dev);
    return gin[0] ? TG_OK : tg_last_status();
}
