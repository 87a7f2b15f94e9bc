/* 2-D pooling as PyTorch's F.max_pool2d (with indices), max_unpool2d, avg_pool2d and the
 * adaptive forms: option checks, output sizes, the ops and their backward rules. Every
 * backward is an op of its own whose backward is again an op, so higher orders work:
 *   max_pool2d          -> max_pool2d_backward (g summed into the argmax positions)
 *   max_pool2d_backward -> a gather of the gradient at the indices
 *   max_unpool2d        -> a gather at the indices
 *   avg_pool2d          -> avg_pool2d_backward (g spread over each window)
 *   avg_pool2d_backward -> avg_pool2d (the map is linear: its adjoint's adjoint)
 * Kernels take dense NCHW (launches copy a strided input); unbatched (C, H, W) inputs
 * run as a batch of one. */
#include <string.h>

#include "lib/ops/ops.h"

#define LL(v) ((long long)(v))

/* ------------------------------------------------------------- options and sizes */

/* One axis of an option: the (H, W) pair when it has a non-zero element, else the
 * scalar; then 0 means dflt. */
static int64_t pick(int64_t scalar, const int64_t *pair, int a, int64_t dflt) {
    int64_t v = pair[0] || pair[1] ? pair[a] : scalar;
    return v ? v : dflt;
}

static bool positive(const char *name, const char *what, const int64_t *v) {
    if (v[0] > 0 && v[1] > 0) return true;
    tg_error(TG_ERR_INVALID, "%s: %s must be positive, got (%lld, %lld)", name, what, LL(v[0]), LL(v[1]));
    return false;
}

/* PyTorch's pooling_output_shape: floor (or ceil) division, and with ceil_mode a last
 * window that would start in the right padding is dropped. Sizes far past any input
 * (a kernel of 2^62) give 0 instead of overflowing; a stride past 2^61 acts as 2^61,
 * which gives the same result for every input a tensor can have. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    const int64_t lim = INT64_MAX / 4;
    if (k - 1 > lim / d) return 0;
    if (s > lim) s = lim;
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

/* Checks the options in g (and the padding rule), then fills the output size. */
static bool pool_geometry(const char *name, tg_pool2d_geom *g, bool max, bool ceil_mode, const tg_tensor *x) {
    char b[128];
    if (!positive(name, "kernel_size", g->kernel) || !positive(name, "stride", g->stride) ||
        (max && !positive(name, "dilation", g->dilation)))
        return false;
    if (g->pad[0] < 0 || g->pad[1] < 0) {
        tg_error(TG_ERR_INVALID, "%s: padding must be non-negative, got (%lld, %lld)", name, LL(g->pad[0]), LL(g->pad[1]));
        return false;
    }
    if (g->pad[0] > g->kernel[0] / 2 || g->pad[1] > g->kernel[1] / 2) {
        tg_error(TG_ERR_INVALID, "%s: padding must be at most half the kernel size, got padding (%lld, %lld) for "
                 "kernel_size (%lld, %lld)", name, LL(g->pad[0]), LL(g->pad[1]), LL(g->kernel[0]), LL(g->kernel[1]));
        return false;
    }
    g->OH = out_size(g->H, g->kernel[0], g->stride[0], g->pad[0], g->dilation[0], ceil_mode);
    g->OW = out_size(g->W, g->kernel[1], g->stride[1], g->pad[1], g->dilation[1], ceil_mode);
    if (g->OH < 1 || g->OW < 1) {
        char d[64] = "";
        if (max) snprintf(d, sizeof d, ", dilation (%lld, %lld)", LL(g->dilation[0]), LL(g->dilation[1]));
        tg_error(TG_ERR_SHAPE, "%s: input %s is too small: the output would be %lldx%lld (kernel_size (%lld, %lld), "
                 "stride (%lld, %lld), padding (%lld, %lld)%s)", name, tg_shape_str(b, x->ndim, x->shape), LL(g->OH),
                 LL(g->OW), LL(g->kernel[0]), LL(g->kernel[1]), LL(g->stride[0]), LL(g->stride[1]), LL(g->pad[0]),
                 LL(g->pad[1]), d);
        return false;
    }
    return true;
}

/* Whether a max window on either axis holds no input element (only with dilation): its
 * index then lies outside the plane (PyTorch's), which the gather of second order must
 * not read. */
static bool has_empty_windows(const tg_pool2d_geom *g) {
    for (int a = 0; a < 2 && !g->adaptive; a++) {
        int64_t in = a ? g->W : g->H, out = a ? g->OW : g->OH, d = g->dilation[a];
        for (int64_t o = 0; o < out; o++) {
            int64_t s = o * g->stride[a] - g->pad[a], e = s + (g->kernel[a] - 1) * d + 1;
            if (s < 0) s += (-s + d - 1) / d * d;
            if (s >= (e < in ? e : in)) return true;
        }
    }
    return false;
}

static bool device_has(const char *name, const tg_tensor *x, tg_kernel k, bool present, const char *entry) {
    tg_device *dev = tg_dev(x);
    if (present && tg_device_supports(dev, k, x->dtype)) return true;
    tg_error(TG_ERR_DEVICE, "%s: device %s has no %s kernel for %s (yet)", name, dev->name, entry,
             tg_dtype_name(x->dtype));
    return false;
}

static void out_nchw(tg_out_spec *s, tg_dtype dtype, const tg_pool2d_geom *g, bool spatial_in) {
    s->dtype = dtype;
    s->ndim = 4;
    s->shape[0] = g->N;
    s->shape[1] = g->C;
    s->shape[2] = spatial_in ? g->H : g->OH;
    s->shape[3] = spatial_in ? g->W : g->OW;
}

/* A dense copy of t when it is not dense, made without recording (launches only). */
static tg_tensor *dense(tg_tensor *t) {
    if (tg_tensor_is_dense(t)) return t;
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *d = tg_contiguous(t);
    tg_set_grad_enabled(prev);
    return d;
}

/* ------------------------------------------------------------- forward pooling */

/* Inputs (x) as (N, C, H, W). Max pooling has a second output, the indices, when the
 * caller wants them or backward will need them. */
bool tg_pool2d_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    tg_tensor *x = c->in[0];
    tg_pool2d_geom *g = &c->args.pool.g;
    bool max = d->kind == TG_POOL_MAX;
    g->N = x->shape[0], g->C = x->shape[1], g->H = x->shape[2], g->W = x->shape[3];
    if (!g->adaptive && !pool_geometry(d->name, g, max, c->args.pool.ceil_mode, x)) return false;
    if (!device_has(d->name, x, TG_KERNEL_POOL2D, tg_dev(x)->be->pool2d != NULL, "pool2d")) return false;
    out_nchw(&c->out_spec[0], x->dtype, g, false);
    if (max && (c->args.pool.want_indices || tg_node_should_record(1, c->in))) {
        c->n_out = 2;
        out_nchw(&c->out_spec[1], TG_I64, g, false);
        c->out_spec[1].no_grad = true;
        c->args.pool.empty_windows = has_empty_windows(g);
    }
    return true;
}

tg_status tg_pool2d_launch(tg_op_call *c) {
    tg_tensor *idx = c->n_out > 1 ? c->out[1] : NULL;
    tg_scope_begin();
    tg_tensor *x = dense(c->in[0]);
    tg_status st = x ? tg_dev(x)->be->pool2d((tg_pool_kind)tg_ops[c->op].kind, c->out[0], idx, x, &c->args.pool.g)
                     : tg_last_status();
    tg_scope_end();
    if (st == TG_OK && idx) tg_tensor_incref(c->extra_save[c->n_extra++] = idx); /* for backward */
    return st;
}

/* x (C, H, W) or (N, C, H, W), non-empty but for N. */
static bool check_input(const char *name, const tg_tensor *x) {
    char b[128];
    if (!tg_op_nonnull(name, "x", x)) return false;
    if (x->ndim != 3 && x->ndim != 4) {
        tg_error(TG_ERR_SHAPE, "%s: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got %d-D %s", name, x->ndim,
                 tg_shape_str(b, x->ndim, x->shape));
        return false;
    }
    const int64_t *chw = x->shape + x->ndim - 3;
    if (chw[0] == 0 || chw[1] == 0 || chw[2] == 0) {
        tg_error(TG_ERR_SHAPE, "%s: expected non-zero C, H and W, got %s", name, tg_shape_str(b, x->ndim, x->shape));
        return false;
    }
    return true;
}

/* Runs a forward pooling op on x as a batch; *indices (if not NULL) gets the indices. */
static tg_tensor *run_pool(int op, const char *name, tg_tensor *x, tg_op_args args, tg_tensor **indices) {
    if (!check_input(name, x)) return NULL;
    bool unbatched = x->ndim == 3;
    tg_op_call *c = TG_OP_CALL(op, 1, unbatched ? tg_unsqueeze(x, 0) : x);
    c->args = args;
    c->args.pool.want_indices = indices != NULL;
    tg_tensor *y = tg_op_run(c);
    if (!y) return NULL;
    if (indices) *indices = unbatched ? tg_squeeze(c->out[1], 0) : c->out[1];
    return unbatched ? tg_squeeze(y, 0) : y;
}

static tg_op_args max_args(const tg_max_pool2d_opts *o) {
    static const tg_max_pool2d_opts none;
    if (!o) o = &none;
    tg_op_args a = { 0 };
    tg_pool2d_geom *g = &a.pool.g;
    for (int i = 0; i < 2; i++) {
        g->kernel[i] = pick(o->kernel_size, o->kernel_size_hw, i, 0);
        g->stride[i] = pick(o->stride, o->stride_hw, i, g->kernel[i]);
        g->pad[i] = pick(o->padding, o->padding_hw, i, 0);
        g->dilation[i] = pick(o->dilation, o->dilation_hw, i, 1);
    }
    a.pool.ceil_mode = o->ceil_mode;
    return a;
}

tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_max_pool2d_opts *opts) {
    TG_API_ENTER("tg_max_pool2d");
    return run_pool(TG_OP_MAX_POOL2D, "tg_max_pool2d", x, max_args(opts), NULL);
}

tg_tensor *tg_max_pool2d_with_indices(tg_tensor *x, const tg_max_pool2d_opts *opts, tg_tensor **indices) {
    const char *name = "tg_max_pool2d_with_indices";
    TG_API_ENTER(name);
    if (!indices) return tg_error_null(TG_ERR_INVALID, "%s: indices is NULL", name);
    *indices = NULL;
    return run_pool(TG_OP_MAX_POOL2D, name, x, max_args(opts), indices);
}

tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_avg_pool2d_opts *opts) {
    TG_API_ENTER("tg_avg_pool2d");
    static const tg_avg_pool2d_opts none;
    const tg_avg_pool2d_opts *o = opts ? opts : &none;
    tg_op_args a = { 0 };
    tg_pool2d_geom *g = &a.pool.g;
    for (int i = 0; i < 2; i++) {
        g->kernel[i] = pick(o->kernel_size, o->kernel_size_hw, i, 0);
        g->stride[i] = pick(o->stride, o->stride_hw, i, g->kernel[i]);
        g->pad[i] = pick(o->padding, o->padding_hw, i, 0);
        g->dilation[i] = 1;
    }
    g->count_include_pad = o->count_include_pad.set ? o->count_include_pad.value != 0 : true;
    g->divisor = o->divisor_override;
    a.pool.ceil_mode = o->ceil_mode;
    return run_pool(TG_OP_AVG_POOL2D, "tg_avg_pool2d", x, a, NULL);
}

static tg_tensor *adaptive(int op, const char *name, tg_tensor *x, int64_t oh, int64_t ow, tg_tensor **indices) {
    if (oh < 1 || ow < 1)
        return tg_error_null(TG_ERR_INVALID, "%s: output size must be positive, got (%lld, %lld)", name, LL(oh), LL(ow));
    tg_op_args a = { 0 };
    a.pool.g.adaptive = true;
    a.pool.g.OH = oh;
    a.pool.g.OW = ow;
    for (int i = 0; i < 2; i++) a.pool.g.kernel[i] = a.pool.g.stride[i] = a.pool.g.dilation[i] = 1;
    return run_pool(op, name, x, a, indices);
}

tg_tensor *tg_adaptive_avg_pool2d(tg_tensor *x, int64_t output_h, int64_t output_w) {
    TG_API_ENTER("tg_adaptive_avg_pool2d");
    return adaptive(TG_OP_ADAPTIVE_AVG_POOL2D, "tg_adaptive_avg_pool2d", x, output_h, output_w, NULL);
}

tg_tensor *tg_adaptive_max_pool2d(tg_tensor *x, int64_t output_h, int64_t output_w) {
    TG_API_ENTER("tg_adaptive_max_pool2d");
    return adaptive(TG_OP_ADAPTIVE_MAX_POOL2D, "tg_adaptive_max_pool2d", x, output_h, output_w, NULL);
}

tg_tensor *tg_adaptive_max_pool2d_with_indices(tg_tensor *x, int64_t output_h, int64_t output_w,
                                               tg_tensor **indices) {
    const char *name = "tg_adaptive_max_pool2d_with_indices";
    TG_API_ENTER(name);
    if (!indices) return tg_error_null(TG_ERR_INVALID, "%s: indices is NULL", name);
    *indices = NULL;
    return adaptive(TG_OP_ADAPTIVE_MAX_POOL2D, name, x, output_h, output_w, indices);
}

/* ------------------------------------------------------------- backward ops */

/* Inputs (grad (N, C, OH, OW)[, indices of its shape]); the output has x's shape. Only
 * backward rules call these, with the node's geometry. */
bool tg_pool2d_backward_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    const tg_pool2d_geom *g = &c->args.pool.g;
    tg_tensor *grad = c->in[0];
    int64_t want[4] = { g->N, g->C, g->OH, g->OW };
    char b1[128], b2[128];
    for (int i = 0; i < c->n_in; i++)
        if (!tg_shape_equal(c->in[i]->ndim, c->in[i]->shape, 4, want) || (i == 1 && c->in[1]->dtype != TG_I64)) {
            tg_error(TG_ERR_SHAPE, "%s: expected %s of shape %s%s, got %s %s", d->name, i ? "indices" : "grad",
                     tg_shape_str(b1, 4, want), i ? " (i64)" : "", tg_dtype_name(c->in[i]->dtype),
                     tg_shape_str(b2, c->in[i]->ndim, c->in[i]->shape));
            return false;
        }
    if (!device_has(d->name, grad, TG_KERNEL_POOL2D_BACKWARD, tg_dev(grad)->be->pool2d_backward != NULL,
                    "pool2d_backward"))
        return false;
    out_nchw(&c->out_spec[0], grad->dtype, g, true);
    return true;
}

tg_status tg_pool2d_backward_launch(tg_op_call *c) {
    tg_scope_begin();
    tg_tensor *grad = dense(c->in[0]), *idx = c->n_in > 1 ? dense(c->in[1]) : NULL;
    tg_status st = grad && (c->n_in < 2 || idx)
                 ? tg_dev(grad)->be->pool2d_backward((tg_pool_kind)tg_ops[c->op].kind, c->out[0], grad, idx,
                                                     &c->args.pool.g)
                 : tg_last_status();
    tg_scope_end();
    return st;
}

static tg_tensor *pool_backward(const tg_node *n, tg_tensor *grad, tg_tensor *idx) {
    tg_op_call *c = idx ? TG_OP_CALL(TG_OP_MAX_POOL2D_BACKWARD, 2, grad, idx)
                        : TG_OP_CALL(TG_OP_AVG_POOL2D_BACKWARD, 1, grad);
    c->args = n->args;
    return tg_op_run(c);
}

tg_status tg_bw_max_pool2d(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0);
    if (!idx) return tg_last_status();
    gin[0] = pool_backward(n, gout[0], idx);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_status tg_bw_avg_pool2d(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    gin[0] = pool_backward(n, gout[0], NULL);
    return gin[0] ? TG_OK : tg_last_status();
}

/* avg_pool2d_backward is linear in grad with avg_pool2d as its adjoint. */
tg_status tg_bw_avg_pool2d_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_op_call *c = TG_OP_CALL(n->args.pool.g.adaptive ? TG_OP_ADAPTIVE_AVG_POOL2D : TG_OP_AVG_POOL2D, 1, gout[0]);
    c->args = n->args;
    gin[0] = tg_op_run(c);
    return gin[0] ? TG_OK : tg_last_status();
}

/* max_pool2d_backward and max_unpool2d put input 0 (N, C, OH, OW) at indices in planes
 * of H*W; their gradient reads the output gradient back at the same indices. An index
 * outside the plane (an empty window's) reads 0. */
tg_status tg_bw_pool_gather(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *idx = tg_node_saved(n, 0), *g = gout[0];
    if (!idx) return tg_last_status();
    const tg_pool2d_geom *geo = &n->args.pool.g;
    int64_t HW = geo->H * geo->W;
    tg_tensor *flat_idx = tg_reshape(idx, TG_SHAPE(geo->N, geo->C, geo->OH * geo->OW)), *valid = NULL;
    if (n->args.pool.empty_windows) {
        tg_device *dev = tg_dev(idx);
        valid = tg_lt(flat_idx, tg_scalar(TG_I64, (double)HW, dev));
        flat_idx = tg_where(valid, flat_idx, tg_scalar(TG_I64, 0, dev));
    }
    tg_tensor *r = tg_gather(tg_reshape(g, TG_SHAPE(geo->N, geo->C, HW)), 2, flat_idx);
    if (valid) r = tg_mul(r, tg_cast(valid, g ? g->dtype : TG_F64));
    gin[0] = tg_reshape(r, TG_SHAPE(geo->N, geo->C, geo->OH, geo->OW));
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- max_unpool2d */

/* Inputs (x (N, C, OH, OW), indices of x's shape); geometry: the pooling undone, with
 * H, W the output size. */
bool tg_max_unpool2d_shape(tg_op_call *c) {
    const char *name = "tg_max_unpool2d";
    tg_tensor *x = c->in[0];
    tg_pool2d_geom *g = &c->args.pool.g;
    if (!positive(name, "kernel_size", g->kernel) || !positive(name, "stride", g->stride)) return false;
    if (g->pad[0] < 0 || g->pad[1] < 0) {
        tg_error(TG_ERR_INVALID, "%s: padding must be non-negative, got (%lld, %lld)", name, LL(g->pad[0]), LL(g->pad[1]));
        return false;
    }
    g->N = x->shape[0], g->C = x->shape[1], g->OH = x->shape[2], g->OW = x->shape[3];
    int64_t size[2];
    for (int a = 0; a < 2; a++) {
        int64_t in = x->shape[2 + a], s = g->stride[a], dflt, lo, hi;
        if (__builtin_mul_overflow(in - 1, s, &dflt) || __builtin_add_overflow(dflt, g->kernel[a] - 2 * g->pad[a], &dflt)
            || __builtin_sub_overflow(dflt, s, &lo) || __builtin_add_overflow(dflt, s, &hi)) {
            tg_error(TG_ERR_SHAPE, "%s: the output size overflows (stride (%lld, %lld), kernel_size (%lld, %lld))",
                     name, LL(g->stride[0]), LL(g->stride[1]), LL(g->kernel[0]), LL(g->kernel[1]));
            return false;
        }
        size[a] = c->args.pool.out_hw[a] ? c->args.pool.out_hw[a] : dflt;
        if (c->args.pool.out_hw[a] && !(lo < size[a] && size[a] < hi)) {
            tg_error(TG_ERR_SHAPE, "%s: output_size[%d] = %lld must lie strictly between %lld and %lld (the default "
                     "%lld plus or minus the stride)", name, a, LL(size[a]), LL(lo), LL(hi), LL(dflt));
            return false;
        }
    }
    if (size[0] < 1 || size[1] < 1) {
        tg_error(TG_ERR_SHAPE, "%s: the output would be %lldx%lld (it must be at least 1x1)", name, LL(size[0]),
                 LL(size[1]));
        return false;
    }
    g->H = size[0], g->W = size[1];
    out_nchw(&c->out_spec[0], x->dtype, g, true);
    return tg_op_shape_ok(name, 4, c->out_spec[0].shape) &&
           device_has(name, x, TG_KERNEL_POOL2D_BACKWARD, tg_dev(x)->be->max_unpool2d != NULL, "max_unpool2d");
}

tg_status tg_max_unpool2d_launch(tg_op_call *c) {
    tg_scope_begin();
    tg_tensor *x = dense(c->in[0]), *idx = dense(c->in[1]);
    tg_status st = x && idx ? tg_dev(x)->be->max_unpool2d(c->out[0], x, idx, &c->args.pool.g) : tg_last_status();
    tg_scope_end();
    return st;
}

tg_tensor *tg_max_unpool2d(tg_tensor *x, tg_tensor *indices, const tg_max_unpool2d_opts *opts) {
    const char *name = "tg_max_unpool2d";
    TG_API_ENTER(name);
    char b1[128], b2[128];
    if (!check_input(name, x) || !tg_op_nonnull(name, "indices", indices)) return NULL;
    if (indices->dtype != TG_I64)
        return tg_error_null(TG_ERR_DTYPE, "%s: indices must be i64 (as tg_max_pool2d_with_indices gives them), got %s",
                             name, tg_dtype_name(indices->dtype));
    if (!tg_shape_equal(x->ndim, x->shape, indices->ndim, indices->shape))
        return tg_error_null(TG_ERR_SHAPE, "%s: indices %s must have the shape of x %s", name,
                             tg_shape_str(b1, indices->ndim, indices->shape), tg_shape_str(b2, x->ndim, x->shape));
    static const tg_max_unpool2d_opts none;
    const tg_max_unpool2d_opts *o = opts ? opts : &none;
    bool unbatched = x->ndim == 3;
    tg_op_call *c = TG_OP_CALL(TG_OP_MAX_UNPOOL2D, 2, unbatched ? tg_unsqueeze(x, 0) : x,
                               unbatched ? tg_unsqueeze(indices, 0) : indices);
    tg_pool2d_geom *g = &c->args.pool.g;
    for (int i = 0; i < 2; i++) {
        g->kernel[i] = pick(o->kernel_size, o->kernel_size_hw, i, 0);
        g->stride[i] = pick(o->stride, o->stride_hw, i, g->kernel[i]);
        g->pad[i] = pick(o->padding, o->padding_hw, i, 0);
        g->dilation[i] = 1;
        c->args.pool.out_hw[i] = o->output_size[i];
    }
    tg_tensor *y = tg_op_run(c);
    return unbatched ? tg_squeeze(y, 0) : y;
}
