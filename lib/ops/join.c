/* Ops that assemble tensors from pieces: embed (a tensor placed in a filled one, the
 * adjoint of slice), pad, cat, stack and split. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ops/ops.h"

/* The region of `out` that x occupies: start and step per axis, x's shape. */
static void region_of(tg_tensor *view, const tg_tensor *out, const tg_tensor *x, const int64_t *start,
                      const int64_t *step) {
    *view = *out;
    for (int i = 0; i < out->ndim; i++) {
        view->offset += start[i] * out->strides[i];
        view->strides[i] = out->strides[i] * step[i];
        view->shape[i] = x->shape[i];
    }
}

/* x placed at start, step in a tensor of shape args.embed.shape filled with fill. */
bool tg_embed_shape(tg_op_call *c) {
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = c->in[0]->dtype;
    s->ndim = c->args.embed.ndim;
    memcpy(s->shape, c->args.embed.shape, sizeof s->shape);
    return true;
}

tg_status tg_embed_launch(tg_op_call *c) {
    tg_tensor *x = c->in[0], *out = c->out[0], region;
    const tg_backend *be = tg_dev(x)->be;
    tg_status st = be->fill(out, c->args.embed.fill);
    region_of(&region, out, x, c->args.embed.start, c->args.embed.step);
    return st == TG_OK ? be->copy(&region, x) : st;
}

tg_tensor *tg_ops_embed(tg_tensor *x, int ndim, const int64_t *shape, const int64_t *start, const int64_t *step,
                        double fill) {
    tg_op_call *c = TG_OP_CALL(TG_OP_EMBED, 1, x);
    c->args.embed.ndim = ndim;
    c->args.embed.fill = fill;
    memcpy(c->args.embed.shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(c->args.embed.start, start, (size_t)ndim * sizeof *start);
    memcpy(c->args.embed.step, step, (size_t)ndim * sizeof *step);
    return tg_op_run(c);
}

tg_status tg_bw_embed(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    const tg_edge *e = &n->inputs[0];
    tg_tensor *r = gout[0];
    for (int i = 0; i < e->ndim && r; i++) {
        int64_t start = n->args.embed.start[i], step = n->args.embed.step[i];
        if (start != 0 || step != 1 || e->shape[i] != r->shape[i])
            r = tg_slice(r, i, start, start + e->shape[i] * step, step);
    }
    gin[0] = r;
    return r ? TG_OK : tg_last_status();
}

/* As F.pad: negative padding crops first (it may not remove more than the axis holds),
 * then positive padding adds. Amounts are any int64, so sizes are computed with
 * overflow checks and the padded shape must pass tg_shape_numel_checked. */
tg_tensor *tg_pad(tg_tensor *x, tg_pads pads, double value) {
    TG_API_ENTER("tg_pad");
    if (!tg_op_nonnull("tg_pad", "x", x)) return NULL;
    if (pads.n < 0 || pads.n % 2 || pads.n > 2 * x->ndim)
        return tg_error_null(TG_ERR_INVALID, "tg_pad: %d padding values for %d dimensions (expected an even "
                             "number, at most %d)", pads.n, x->ndim, 2 * x->ndim);
    int64_t shape[TG_MAX_DIMS], start[TG_MAX_DIMS] = { 0 }, step[TG_MAX_DIMS], keep[TG_MAX_DIMS][2];
    for (int i = 0; i < x->ndim; i++) {
        step[i] = 1;
        shape[i] = x->shape[i];
        keep[i][0] = 0, keep[i][1] = x->shape[i];
    }
    for (int k = 0; k < pads.n / 2; k++) {
        int a = x->ndim - 1 - k;
        int64_t lo = pads.v[2 * k], hi = pads.v[2 * k + 1], len = x->shape[a], size;
        if (lo < -len || hi < -len || (lo < 0 ? -lo : 0) + (hi < 0 ? -hi : 0) > len)
            return tg_error_null(TG_ERR_SHAPE, "tg_pad: padding (%lld, %lld) leaves axis %d of size %lld negative",
                                 (long long)lo, (long long)hi, a, (long long)len);
        if (__builtin_add_overflow(len, lo, &size) || __builtin_add_overflow(size, hi, &size) || size > TG_MAX_NUMEL)
            return tg_error_null(TG_ERR_SHAPE, "tg_pad: padding (%lld, %lld) makes axis %d of size %lld too large",
                                 (long long)lo, (long long)hi, a, (long long)len);
        shape[a] = size;
        start[a] = lo > 0 ? lo : 0;
        keep[a][0] = lo < 0 ? -lo : 0;
        keep[a][1] = hi < 0 ? len + hi : len;
    }
    if (!tg_op_shape_ok("tg_pad", x->ndim, shape)) return NULL;
    tg_tensor *src = x;
    for (int i = 0; i < x->ndim && src; i++)
        if (keep[i][0] != 0 || keep[i][1] != x->shape[i]) src = tg_slice(src, i, keep[i][0], keep[i][1], 1);
    return tg_ops_embed(src, x->ndim, shape, start, step, value);
}

/* ------------------------------------------------------------- cat, stack, split */

bool tg_cat_shape(tg_op_call *c) {
    char b1[128], b2[128];
    tg_tensor *const *xs = c->in, *x0 = xs[0];
    if (!tg_op_axis("tg_cat", &c->args.axis.axis, x0->ndim)) return false;
    int a = c->args.axis.axis;
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = x0->dtype;
    s->ndim = x0->ndim;
    memcpy(s->shape, x0->shape, sizeof s->shape);
    s->shape[a] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const tg_tensor *x = xs[i];
        if (!tg_op_compatible("tg_cat", x0, x)) return false;
        bool fits = x->ndim == x0->ndim;
        for (int d = 0; d < x0->ndim && fits; d++) fits = d == a || x->shape[d] == x0->shape[d];
        if (!fits) {
            tg_error(TG_ERR_SHAPE, "tg_cat: tensor %d has shape %s, tensor 0 has %s (they may differ only on axis %d)",
                     i, tg_shape_str(b1, x->ndim, x->shape), tg_shape_str(b2, x0->ndim, x0->shape), a);
            return false;
        }
        if (__builtin_add_overflow(s->shape[a], x->shape[a], &s->shape[a]) || !tg_op_shape_ok("tg_cat", s->ndim, s->shape))
            return false;
    }
    return true;
}

tg_status tg_cat_launch(tg_op_call *c) {
    tg_tensor *out = c->out[0];
    int a = c->args.axis.axis;
    int64_t off = 0;
    for (int i = 0; i < c->n_in; i++) {
        tg_tensor region = *out;
        region.offset += off * out->strides[a];
        region.shape[a] = c->in[i]->shape[a];
        tg_status st = tg_dev(out)->be->copy(&region, c->in[i]);
        if (st != TG_OK) return st;
        off += c->in[i]->shape[a];
    }
    return TG_OK;
}

tg_tensor *tg_cat(int n, tg_tensor *const *xs, int axis) {
    TG_API_ENTER("tg_cat");
    if (n <= 0 || !xs) return tg_error_null(TG_ERR_INVALID, "tg_cat: needs at least one tensor");
    tg_op_call c = { .op = TG_OP_CAT, .n_in = n, .in = (tg_tensor **)xs, .args.axis.axis = axis };
    return tg_op_run(&c);
}

tg_status tg_bw_cat(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    int a = n->args.axis.axis;
    int64_t off = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        int64_t len = n->inputs[i].shape[a];
        if (tg_node_needs(n, i) && !(gin[i] = tg_slice(gout[0], a, off, off + len, 1))) return tg_last_status();
        off += len;
    }
    return TG_OK;
}

/* Every tensor the same shape (PyTorch's rule); axis in [-(ndim + 1), ndim]. */
tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis) {
    TG_API_ENTER("tg_stack");
    char b1[128], b2[128];
    if (n <= 0 || !xs) return tg_error_null(TG_ERR_INVALID, "tg_stack: needs at least one tensor");
    for (int i = 0; i < n; i++) {
        if (!tg_op_nonnull("tg_stack", "a tensor", xs[i])) return NULL;
        if (!tg_shape_equal(xs[i]->ndim, xs[i]->shape, xs[0]->ndim, xs[0]->shape))
            return tg_error_null(TG_ERR_SHAPE, "tg_stack: tensor %d has shape %s, tensor 0 has %s (they must be equal)",
                                 i, tg_shape_str(b1, xs[i]->ndim, xs[i]->shape),
                                 tg_shape_str(b2, xs[0]->ndim, xs[0]->shape));
    }
    int nd = xs[0]->ndim, a = axis < 0 ? axis + nd + 1 : axis;
    if (a < 0 || a > nd || nd == TG_MAX_DIMS)
        return tg_error_null(TG_ERR_INVALID, "tg_stack: axis %d is out of range for %d dimensions (at most %d)", axis,
                             nd + 1, TG_MAX_DIMS);
    tg_tensor **u = malloc((size_t)n * sizeof *u);
    if (!u) return tg_error_null(TG_ERR_NOMEM, "tg_stack: out of host memory");
    tg_tensor *out = NULL;
    for (int i = 0; i < n; i++)
        if (!(u[i] = tg_unsqueeze(xs[i], a))) goto done;
    out = tg_cat(n, u, a);
done:
    free(u);
    return out;
}

/* As PyTorch, an axis of size 0 splits into one empty piece. */
int tg_split(tg_tensor *x, int64_t split_size, int axis, tg_tensor **out, int max_out) {
    TG_API_ENTER("tg_split");
    if (!tg_op_nonnull("tg_split", "x", x)) return -1;
    int a = axis;
    if (!tg_axis_norm(&a, x->ndim)) {
        tg_error(TG_ERR_INVALID, "tg_split: axis %d is out of range for %d dimensions", axis, x->ndim);
        return -1;
    }
    if (split_size <= 0) {
        tg_error(TG_ERR_INVALID, "tg_split: split_size must be positive, got %lld", (long long)split_size);
        return -1;
    }
    if (max_out < 0 || (max_out > 0 && !out)) {
        tg_error(TG_ERR_INVALID, max_out < 0 ? "tg_split: max_out is %d (expected 0 or more)"
                                             : "tg_split: out is NULL but max_out is %d", max_out);
        return -1;
    }
    int64_t len = x->shape[a], count = len == 0 ? 1 : (len - 1) / split_size + 1;
    if (count > INT_MAX) {
        tg_error(TG_ERR_INVALID, "tg_split: %lld pieces of size %lld do not fit in an int", (long long)count,
                 (long long)split_size);
        return -1;
    }
    for (int64_t i = 0; i < count && i < max_out; i++) {
        int64_t lo = i * split_size, hi = len - lo > split_size ? lo + split_size : len;
        if (!(out[i] = tg_slice(x, a, lo, hi, 1))) return -1;
    }
    return (int)count;
}

/* ------------------------------------------------------------- chunk */

/* Recorded by tg_chunk itself (one node, a view per output): the runner never runs it. */
bool tg_chunk_shape(tg_op_call *c) {
    (void)c;
    return tg_error(TG_ERR_STATE, "internal: tg_chunk records itself") == TG_OK;
}

int tg_chunk(tg_tensor *x, int64_t chunks, int axis, tg_tensor **out) {
    TG_API_ENTER("tg_chunk");
    if (!tg_op_nonnull("tg_chunk", "x", x) || !tg_op_axis("tg_chunk", &axis, x->ndim)) return -1;
    if (chunks <= 0 || chunks > INT_MAX || !out) {
        tg_error(TG_ERR_INVALID, out ? "tg_chunk: chunks must be positive, got %lld" : "tg_chunk: out is NULL",
                 (long long)chunks);
        return -1;
    }
    int64_t len = x->shape[axis], size = len == 0 ? 0 : (len + chunks - 1) / chunks;
    int n = len == 0 ? 1 : (int)((len + size - 1) / size);
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    for (int i = 0; i < n; i++) {
        int64_t lo = i * size;
        shape[axis] = len - lo < size ? len - lo : size;
        out[i] = tg_tensor_alias(x, x->ndim, shape, x->strides, x->offset + lo * x->strides[axis]);
        if (!out[i]) return -1;
    }
    if (tg_node_should_record(1, &x)) {
        tg_node *node = tg_node_record_multi(TG_OP_CHUNK, n, out, 1, &x);
        if (!node) return -1;
        node->args.axis.axis = axis;
    }
    return n;
}

tg_status tg_bw_chunk(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = tg_cat(n->n_outputs, gout, n->args.axis.axis);
    return gin[0] ? TG_OK : tg_last_status();
}
