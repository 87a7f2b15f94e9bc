/* Normalisation: batch norm, layer norm and group norm as fused primitives (one kernel
 * forward, one backward that gives dx, dweight and dbias together), and local response
 * norm composed of ops. The fused backward runs when the backward is not recorded; when
 * it is (create_graph), the rule recomputes the statistics from the saved input with
 * differentiable ops, so second derivatives come out right, as in loss.c. Semantics
 * and messages follow PyTorch's torch.nn.functional. */
#include <math.h>
#include <string.h>

#include "lib/ops/ops.h"

/* ------------------------------------------------------------------ shared checks */

/* The optional per-channel tensor at input index i (-1: none). */
static tg_tensor *opt_in(const tg_op_call *c, int i) { return i >= 0 ? c->in[i] : NULL; }

/* t has x's dtype and shape [n] (or the ndim/shape given). */
static bool check_vec(const char *op, const char *arg, const tg_tensor *t, const tg_tensor *x, int ndim,
                      const int64_t *shape, const char *what) {
    char b1[128], b2[128];
    if (!tg_shape_equal(t->ndim, t->shape, ndim, shape)) {
        tg_error(TG_ERR_SHAPE, "%s: %s should have shape %s (%s), got %s", op, arg, tg_shape_str(b1, ndim, shape),
                 what, tg_shape_str(b2, t->ndim, t->shape));
        return false;
    }
    if (t->dtype != x->dtype) {
        tg_error(TG_ERR_DTYPE, "%s: %s is %s but x is %s (convert one with tg_cast)", op, arg,
                 tg_dtype_name(t->dtype), tg_dtype_name(x->dtype));
        return false;
    }
    return true;
}

static bool check_min_dims(const char *op, const tg_tensor *x, int min) {
    if (x->ndim >= min) return true;
    char b[128];
    tg_error(TG_ERR_SHAPE, "%s: expected x of %d or more dimensions (N, C, ...), got %s", op, min,
             tg_shape_str(b, x->ndim, x->shape));
    return false;
}

/* Fills the (N, C, S) geometry of x around axis 1. */
static void geometry(tg_norm_params *p, const tg_tensor *x) {
    p->N = x->shape[0];
    p->C = x->shape[1];
    p->S = 1;
    for (int d = 2; d < x->ndim; d++) p->S *= x->shape[d];
}

static void same_as_x(tg_op_call *c) {
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = c->in[0]->dtype;
    s->ndim = c->in[0]->ndim;
    memcpy(s->shape, c->in[0]->shape, sizeof s->shape);
}

/* Appends t (may be NULL) to the builder's inputs; returns its index or -1. */
static int8_t add_input(tg_tensor **in, int *n, tg_tensor *t) {
    if (!t) return -1;
    in[*n] = t;
    return (int8_t)(*n)++;
}

/* x seen dense by the kernels: a recorded copy when it is a strided view. */
static tg_tensor *dense(tg_tensor *x) { return x && !tg_tensor_is_dense(x) ? tg_contiguous(x) : x; }

/* The new per-channel statistics tensors the launch hands to the node as extra saves. */
static bool new_stats(tg_op_call *c, int64_t n, tg_tensor **mean, tg_tensor **invstd) {
    tg_tensor *x = c->in[0];
    *mean = tg_tensor_new_unscoped(x->dtype, 1, &n, tg_dev(x));
    *invstd = *mean ? tg_tensor_new_unscoped(x->dtype, 1, &n, tg_dev(x)) : NULL;
    if (*mean) c->extra_save[c->n_extra++] = *mean;
    if (*invstd) c->extra_save[c->n_extra++] = *invstd;
    return *invstd != NULL;
}

/* Saved: 0 x, 1 mean, 2 invstd, then 3 weight when there is one. */
static void save_weight(tg_op_call *c) {
    tg_tensor *w = opt_in(c, c->args.norm.weight);
    if (w) tg_tensor_incref(c->extra_save[c->n_extra++] = w);
}

/* A (C) tensor reshaped to broadcast over (N, C, ...) of ndim axes. */
static tg_tensor *per_channel(tg_tensor *v, int ndim) {
    if (!v) return NULL;
    tg_shape s = { .ndim = ndim };
    for (int d = 0; d < ndim; d++) s.dims[d] = d == 1 ? v->shape[0] : 1;
    return tg_reshape(v, s);
}

static tg_axes all_but(int ndim, int keep) {
    tg_axes a = { .n = 0 };
    for (int d = 0; d < ndim; d++)
        if (d != keep) a.axes[a.n++] = d;
    return a;
}

/* Writes the kernel's gradients: dx into gin[0], dweight and dbias where wanted. The
 * three fused backward entries share this signature; relu_out (batch norm's relu form,
 * else NULL) routes the call to batch_norm_relu_backward instead. */
typedef tg_status (*norm_bw_fn)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                const tg_tensor *save_invstd, const tg_norm_params *p);

static tg_status fused_backward(norm_bw_fn fn, const tg_tensor *relu_out, tg_node *n, tg_tensor *const *gout,
                                tg_tensor **gin) {
    const tg_op_args *a = &n->args;
    tg_tensor *x = tg_node_saved(n, 0), *mean = tg_node_saved(n, 1), *invstd = tg_node_saved(n, 2);
    tg_tensor *w = a->norm.weight >= 0 ? tg_node_saved(n, 3) : NULL;
    if (!x || !mean || !invstd || (a->norm.weight >= 0 && !w)) return tg_last_status();
    tg_tensor *g = dense(gout[0]);
    if (!g) return tg_last_status();
    int wi = a->norm.weight, bi = a->norm.bias;
    tg_tensor *dx = tg_node_needs(n, 0) ? tg_empty(x->dtype, tg_shape_of(x), tg_dev(x)) : NULL;
    tg_tensor *dw = wi >= 0 && tg_node_needs(n, wi) ? tg_empty(x->dtype, tg_shape_of(w), tg_dev(x)) : NULL;
    tg_tensor *db = NULL;
    if (bi >= 0 && tg_node_needs(n, bi)) db = tg_empty(x->dtype, tg_ops_input_shape(n, bi), tg_dev(x));
    if ((tg_node_needs(n, 0) && !dx) || (wi >= 0 && tg_node_needs(n, wi) && !dw) ||
        (bi >= 0 && tg_node_needs(n, bi) && !db))
        return tg_last_status();
    tg_status st = relu_out ? tg_dev(x)->be->batch_norm_relu_backward(dx, dw, db, g, relu_out, x, w, mean, invstd,
                                                                       &a->norm.p)
                            : fn(dx, dw, db, g, x, w, mean, invstd, &a->norm.p);
    if (st != TG_OK) return st;
    gin[0] = dx;
    if (dw) gin[wi] = dw;
    if (db) gin[bi] = db;
    return TG_OK;
}

/* The composed rule shared by the three: given xhat (x's shape, differentiable in x),
 * the inverse std broadcast over x, the weight broadcast over x (or NULL), and a
 * function that takes the mean over each normalised set keeping dims:
 *   dx = invstd * (gw - mean(gw) - xhat * mean(gw * xhat)),  gw = g * w   (training)
 *   dx = invstd * gw                                                      (fixed stats)
 * and dweight = sum(g * xhat), dbias = sum(g) over the axes in red, reshaped to wshape. */
typedef tg_tensor *(*set_mean_fn)(tg_tensor *t, const tg_node *n);

static tg_status composed_grads(tg_node *n, tg_tensor *g, tg_tensor *xhat, tg_tensor *invstd, tg_tensor *wb,
                                bool batch_stats, set_mean_fn set_mean, tg_axes red, tg_tensor **gin) {
    int wi = n->args.norm.weight, bi = n->args.norm.bias;
    if (tg_node_needs(n, 0)) {
        tg_tensor *gw = wb ? tg_mul(g, wb) : g;
        tg_tensor *inner = gw;
        if (batch_stats) inner = tg_sub(tg_sub(gw, set_mean(gw, n)), tg_mul(xhat, set_mean(tg_mul(gw, xhat), n)));
        if (!(gin[0] = tg_mul(inner, invstd))) return tg_last_status();
    }
    if (wi >= 0 && tg_node_needs(n, wi)) {
        tg_tensor *s = tg_sum(tg_mul(g, xhat), red, false);
        if (!(gin[wi] = tg_reshape(s, tg_ops_input_shape(n, wi)))) return tg_last_status();
    }
    if (bi >= 0 && tg_node_needs(n, bi)) {
        tg_tensor *s = tg_sum(g, red, false);
        if (!(gin[bi] = tg_reshape(s, tg_ops_input_shape(n, bi)))) return tg_last_status();
    }
    return TG_OK;
}

/* ------------------------------------------------------------------ batch norm */

static bool check_running(const char *op, const char *arg, const tg_tensor *t, bool training) {
    if (t->requires_grad) {
        tg_error(TG_ERR_INVALID, "%s: %s requires grad; running statistics are buffers, not parameters", op, arg);
        return false;
    }
    if (training && t->strides[0] == 0 && t->shape[0] > 1) {
        tg_error(TG_ERR_INVALID, "%s: %s has stride 0 (an expanded view) and is updated in place; pass a tensor "
                 "of its own", op, arg);
        return false;
    }
    return true;
}

/* The residual has x's shape, dtype and device: checked before the op is composed on
 * a device without the fused kernel, where tg_add would broadcast a smaller one. */
static bool check_residual(const char *op, const tg_tensor *x, const tg_tensor *z) {
    char b[128], b2[128];
    if (!tg_shape_equal(z->ndim, z->shape, x->ndim, x->shape)) {
        tg_error(TG_ERR_SHAPE, "%s: residual should have x's shape %s, got %s", op, tg_shape_str(b, x->ndim, x->shape),
                 tg_shape_str(b2, z->ndim, z->shape));
        return false;
    }
    if (tg_dev(z) != tg_dev(x)) {
        tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s (copy one with tg_to)", op, tg_dev(x)->name,
                 tg_dev(z)->name);
        return false;
    }
    if (z->dtype != x->dtype) {
        tg_error(TG_ERR_DTYPE, "%s: residual is %s but x is %s (convert one with tg_cast)", op, tg_dtype_name(z->dtype),
                 tg_dtype_name(x->dtype));
        return false;
    }
    return true;
}

/* Inputs x, then weight, bias and the residual where given; the running statistics in
 * args.norm. */
bool tg_batch_norm_shape(tg_op_call *c) {
    const char *op = "tg_batch_norm";
    tg_tensor *x = c->in[0];
    tg_norm_params *p = &c->args.norm.p;
    if (!check_min_dims(op, x, 2)) return false;
    geometry(p, x);
    char b[128], what[192];
    snprintf(what, sizeof what, "one per channel of x %s", tg_shape_str(b, x->ndim, x->shape));
    const char *names[4] = { "weight", "bias", "running_mean", "running_var" };
    tg_tensor *vecs[4] = { opt_in(c, c->args.norm.weight), opt_in(c, c->args.norm.bias), c->args.norm.running_mean,
                           c->args.norm.running_var };
    for (int k = 0; k < 4; k++) {
        tg_tensor *t = vecs[k];
        if (t && tg_dev(t) != tg_dev(x)) {
            tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s (copy one with tg_to)", op, tg_dev(x)->name,
                     tg_dev(t)->name);
            return false;
        }
        if (t && !check_vec(op, names[k], t, x, 1, &p->C, what)) return false;
        if (t && k >= 2 && !check_running(op, names[k], t, p->training)) return false;
        if (!t && k >= 2 && !p->training) {
            tg_error(TG_ERR_INVALID, "%s: %s must be defined in evaluation mode", op, names[k]);
            return false;
        }
    }
    if (p->training && p->N * p->S == 1) {
        tg_error(TG_ERR_SHAPE, "%s: expected more than 1 value per channel when training, got input size %s", op,
                 tg_shape_str(b, x->ndim, x->shape));
        return false;
    }
    if (!tg_device_supports(tg_dev(x), TG_KERNEL_BATCH_NORM, x->dtype)) {
        tg_error(TG_ERR_DEVICE, "%s: device %s has no batch_norm kernel for %s (yet)", op, tg_dev(x)->name,
                 tg_dtype_name(x->dtype));
        return false;
    }
    same_as_x(c);
    return true;
}

/* The kernel updates the running statistics in place; their versions are bumped here
 * as dispatch does for an op's in-place input, so a node that saved them notices. With
 * relu the output is saved last (a detached alias, as relu saves its own), for the
 * mask of the backward. */
tg_status tg_batch_norm_launch(tg_op_call *c) {
    tg_tensor *rm = c->args.norm.running_mean, *rv = c->args.norm.running_var, *y = c->out[0];
    const tg_norm_params *p = &c->args.norm.p;
    const tg_backend *be = tg_dev(c->in[0])->be;
    tg_tensor *mean, *invstd;
    if (!new_stats(c, p->C, &mean, &invstd)) return tg_last_status();
    tg_tensor *w = opt_in(c, c->args.norm.weight), *b = opt_in(c, c->args.norm.bias);
    tg_tensor *z = opt_in(c, c->args.norm.residual);
    tg_status st = z         ? be->batch_norm_add(y, mean, invstd, rm, rv, c->in[0], z, w, b, p)
                   : p->relu ? be->batch_norm_relu(y, mean, invstd, rm, rv, c->in[0], w, b, p)
                             : be->batch_norm(y, mean, invstd, rm, rv, c->in[0], w, b, p);
    if (st != TG_OK) return st;
    if (p->training && rm) atomic_fetch_add(&rm->storage->version, 1);
    if (p->training && rv) atomic_fetch_add(&rv->storage->version, 1);
    save_weight(c);
    if (p->relu) {
        tg_tensor *alias = tg_tensor_alias_unscoped(y, y->ndim, y->shape, y->strides, y->offset);
        if (!alias) return tg_last_status();
        c->extra_save[c->n_extra++] = alias;
    }
    return TG_OK;
}

tg_tensor *tg_batch_norm(tg_tensor *x, tg_tensor *running_mean, tg_tensor *running_var, tg_tensor *weight,
                         tg_tensor *bias, const tg_batch_norm_opts *opts) {
    const char *op = "tg_batch_norm";
    TG_API_ENTER(op);
    if (!tg_op_nonnull(op, "x", x) || (weight && !tg_op_nonnull(op, "weight", weight)) ||
        (bias && !tg_op_nonnull(op, "bias", bias)) ||
        (running_mean && !tg_op_nonnull(op, "running_mean", running_mean)) ||
        (running_var && !tg_op_nonnull(op, "running_var", running_var)))
        return NULL;
    tg_batch_norm_opts o = opts ? *opts : (tg_batch_norm_opts){ 0 };
    if (o.cumulative && o.training && o.num_batches_tracked < 1)
        return tg_error_null(TG_ERR_INVALID, "%s: the cumulative average needs num_batches_tracked >= 1, got %lld",
                             op, (long long)o.num_batches_tracked);
    if (o.residual && (!tg_op_nonnull(op, "residual", o.residual) || !check_residual(op, x, o.residual))) return NULL;
    const tg_backend *be = tg_dev(x)->be;
    if ((o.residual && !be->batch_norm_add) || (o.relu && !be->batch_norm_relu)) {
        /* composed where the device has no fused kernel */
        tg_batch_norm_opts plain = o;
        plain.relu = false, plain.residual = NULL;
        tg_tensor *y = tg_batch_norm(x, running_mean, running_var, weight, bias, &plain);
        if (o.residual) y = tg_add(y, o.residual);
        return o.relu ? tg_relu(y) : y;
    }
    tg_tensor *in[4] = { dense(x) };
    int n = 1;
    tg_op_call c = { .op = TG_OP_BATCH_NORM, .in = in };
    c.args.norm.weight = add_input(in, &n, weight);
    c.args.norm.bias = add_input(in, &n, bias);
    c.args.norm.residual = add_input(in, &n, o.residual ? dense(o.residual) : NULL);
    c.args.norm.running_mean = running_mean;
    c.args.norm.running_var = running_var;
    c.n_in = n;
    c.args.norm.p.training = o.training;
    c.args.norm.p.relu = o.relu;
    c.args.norm.p.momentum = o.cumulative ? 1.0 / (double)(o.num_batches_tracked > 0 ? o.num_batches_tracked : 1)
                           : o.momentum.set ? o.momentum.value
                                            : 0.1;
    c.args.norm.p.eps = o.eps.set ? o.eps.value : 1e-5;
    return in[0] && (!o.residual || in[c.args.norm.residual]) ? tg_op_run(&c) : NULL;
}

static tg_tensor *bn_set_mean(tg_tensor *t, const tg_node *n) {
    return tg_mean(t, all_but(n->inputs[0].ndim, 1), true);
}

tg_status tg_bw_batch_norm(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    const tg_norm_params *p = &n->args.norm.p;
    tg_device *dev = n->inputs[0].dev;
    tg_tensor *g_bn[1] = { gout[0] };
    bool fused = !tg_is_grad_enabled() && tg_device_supports(dev, TG_KERNEL_BATCH_NORM_BACKWARD, n->inputs[0].dtype);
    if (p->relu) { /* through relu first: its output is saved after the weight */
        tg_tensor *y = tg_node_saved(n, 3 + (n->args.norm.weight >= 0));
        if (!y) return tg_last_status();
        /* without a residual (whose gradient is the masked dout itself) the kernel reads
         * the mask in its own passes */
        if (fused && dev->be->batch_norm_relu_backward && n->args.norm.residual < 0) {
            tg_tensor *yd = dense(y);
            return yd ? fused_backward(NULL, yd, n, gout, gin) : tg_last_status();
        }
        if (!(g_bn[0] = tg_ops_relu_grad(gout[0], y))) return tg_last_status();
        gout = g_bn;
    }
    int ri = n->args.norm.residual; /* the sum's gradient, the same tensor the batch norm gets */
    if (ri >= 0 && tg_node_needs(n, ri)) gin[ri] = gout[0];
    if (fused) return fused_backward(dev->be->batch_norm_backward, NULL, n, gout, gin);
    tg_tensor *x = tg_node_saved(n, 0), *mean = tg_node_saved(n, 1), *invstd = tg_node_saved(n, 2);
    tg_tensor *w = n->args.norm.weight >= 0 ? tg_node_saved(n, 3) : NULL;
    if (!x || !mean || !invstd || (n->args.norm.weight >= 0 && !w)) return tg_last_status();
    int nd = x->ndim;
    tg_tensor *xc, *is;
    if (p->training) { /* the batch statistics as functions of x */
        xc = tg_sub(x, bn_set_mean(x, n));
        is = tg_rsqrt(tg_add_scalar(bn_set_mean(tg_square(xc), n), p->eps));
    } else {
        xc = tg_sub(x, per_channel(mean, nd));
        is = per_channel(invstd, nd);
    }
    tg_tensor *xhat = tg_mul(xc, is);
    if (!xhat) return tg_last_status();
    return composed_grads(n, gout[0], xhat, is, per_channel(w, nd), p->training, bn_set_mean, all_but(nd, 1), gin);
}

/* ------------------------------------------------------------------ layer norm */

static tg_axes trailing(int ndim, int k) {
    tg_axes a = { .n = 0 };
    for (int d = ndim - k; d < ndim; d++) a.axes[a.n++] = d;
    return a;
}

static tg_axes leading(int ndim, int k) {
    tg_axes a = { .n = 0 };
    for (int d = 0; d < ndim - k; d++) a.axes[a.n++] = d;
    return a;
}

/* xhat and the inverse std over the last k axes of x, composed of ops. */
static tg_tensor *ln_xhat(tg_tensor *x, int k, double eps, tg_tensor **invstd) {
    tg_tensor *xc = tg_sub(x, tg_mean(x, trailing(x->ndim, k), true));
    *invstd = tg_rsqrt(tg_add_scalar(tg_mean(tg_square(xc), trailing(x->ndim, k), true), eps));
    return tg_mul(xc, *invstd);
}

bool tg_layer_norm_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    int k = c->args.norm.axes;
    tg_norm_params *p = &c->args.norm.p;
    p->N = 1;
    p->C = 1;
    p->S = 1;
    for (int d = 0; d < x->ndim; d++) *(d < x->ndim - k ? &p->N : &p->C) *= x->shape[d];
    same_as_x(c);
    return true;
}

tg_status tg_layer_norm_launch(tg_op_call *c) {
    const tg_norm_params *p = &c->args.norm.p;
    tg_tensor *mean, *invstd;
    if (!new_stats(c, p->N, &mean, &invstd)) return tg_last_status();
    tg_status st = tg_dev(c->in[0])->be->layer_norm(c->out[0], mean, invstd, c->in[0], opt_in(c, c->args.norm.weight),
                                                    opt_in(c, c->args.norm.bias), p);
    if (st == TG_OK) save_weight(c);
    return st;
}

/* Checks the arguments of layer norm; weight and bias have normalized_shape. */
static bool ln_check(tg_tensor *x, tg_shape ns, tg_tensor *w, tg_tensor *b) {
    const char *op = "tg_layer_norm";
    char b1[128], b2[128], b3[128];
    if (!tg_op_float(op, x)) return false;
    if (ns.ndim < 1 || ns.ndim > TG_MAX_DIMS) {
        tg_error(TG_ERR_SHAPE, "%s: normalized_shape must have between 1 and %d axes, got %d", op, TG_MAX_DIMS,
                 ns.ndim);
        return false;
    }
    bool fits = ns.ndim <= x->ndim;
    for (int d = 0; d < ns.ndim && fits; d++) fits = ns.dims[d] == x->shape[x->ndim - ns.ndim + d];
    if (!fits) {
        tg_error(TG_ERR_SHAPE, "%s: given normalized_shape %s, expected x of shape [*,%s, but got %s", op,
                 tg_shape_str(b1, ns.ndim, ns.dims), tg_shape_str(b2, ns.ndim, ns.dims) + 1,
                 tg_shape_str(b3, x->ndim, x->shape));
        return false;
    }
    return (!w || check_vec(op, "weight", w, x, ns.ndim, ns.dims, "normalized_shape")) &&
           (!b || check_vec(op, "bias", b, x, ns.ndim, ns.dims, "normalized_shape"));
}

tg_tensor *tg_layer_norm(tg_tensor *x, tg_shape normalized_shape, tg_tensor *weight, tg_tensor *bias, double eps) {
    const char *op = "tg_layer_norm";
    TG_API_ENTER(op);
    if (!tg_op_nonnull(op, "x", x) || (weight && !tg_op_nonnull(op, "weight", weight)) ||
        (bias && !tg_op_nonnull(op, "bias", bias)) || !ln_check(x, normalized_shape, weight, bias))
        return NULL;
    int k = normalized_shape.ndim;
    if (!tg_dev(x)->be->layer_norm) { /* composed on a device without the kernel */
        tg_tensor *is, *y = ln_xhat(x, k, eps, &is);
        if (weight) y = tg_mul(y, weight);
        return bias ? tg_add(y, bias) : y;
    }
    tg_tensor *in[3] = { dense(x) };
    int n = 1;
    tg_op_call c = { .op = TG_OP_LAYER_NORM, .in = in };
    c.args.norm.weight = add_input(in, &n, dense(weight));
    c.args.norm.bias = add_input(in, &n, dense(bias));
    c.args.norm.axes = (int8_t)k;
    c.args.norm.p.eps = eps;
    c.n_in = n;
    for (int i = 0; i < n; i++)
        if (!in[i]) return NULL;
    return tg_op_run(&c);
}

static tg_tensor *ln_set_mean(tg_tensor *t, const tg_node *n) {
    return tg_mean(t, trailing(n->inputs[0].ndim, n->args.norm.axes), true);
}

tg_status tg_bw_layer_norm(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_device *dev = n->inputs[0].dev;
    if (!tg_is_grad_enabled() && dev->be->layer_norm_backward)
        return fused_backward(dev->be->layer_norm_backward, NULL, n, gout, gin);
    tg_tensor *x = tg_node_saved(n, 0);
    tg_tensor *w = n->args.norm.weight >= 0 ? tg_node_saved(n, 3) : NULL;
    if (!x || (n->args.norm.weight >= 0 && !w)) return tg_last_status();
    int k = n->args.norm.axes;
    tg_tensor *is, *xhat = ln_xhat(x, k, n->args.norm.p.eps, &is);
    if (!xhat) return tg_last_status();
    return composed_grads(n, gout[0], xhat, is, w, true, ln_set_mean, leading(x->ndim, k), gin);
}

/* ------------------------------------------------------------------ group norm */

/* x (N, C, ...) seen as (N, groups, rest) for the statistics. */
static tg_tensor *grouped(tg_tensor *t, int64_t groups) {
    return tg_reshape(t, TG_SHAPE(t ? t->shape[0] : 0, groups, -1));
}

static tg_tensor *gn_xhat(tg_tensor *x, int64_t groups, double eps, tg_tensor **invstd) {
    tg_tensor *xr = grouped(x, groups);
    tg_tensor *xc = tg_sub(xr, tg_mean(xr, TG_AXES(2), true));
    tg_tensor *is = tg_rsqrt(tg_add_scalar(tg_mean(tg_square(xc), TG_AXES(2), true), eps));
    tg_tensor *xhat = tg_reshape(tg_mul(xc, is), tg_shape_of(x));
    /* the inverse std broadcast over x: (N, groups, 1) -> (N, groups, C/groups * S) -> x's shape */
    *invstd = xhat ? tg_reshape(tg_expand(is, tg_shape_of(xr)), tg_shape_of(x)) : NULL;
    return xhat;
}

bool tg_group_norm_shape(tg_op_call *c) {
    const char *op = "tg_group_norm";
    tg_tensor *x = c->in[0];
    tg_norm_params *p = &c->args.norm.p;
    if (!check_min_dims(op, x, 2)) return false;
    geometry(p, x);
    char b[128], what[192];
    if (p->groups <= 0 || p->C % p->groups != 0) {
        if (p->groups <= 0) tg_error(TG_ERR_INVALID, "%s: num_groups must be positive, got %lld", op, (long long)p->groups);
        else
            tg_error(TG_ERR_SHAPE, "%s: expected the number of channels of x to be divisible by num_groups, but got "
                     "x of shape %s and num_groups %lld", op, tg_shape_str(b, x->ndim, x->shape), (long long)p->groups);
        return false;
    }
    snprintf(what, sizeof what, "one per channel of x %s", tg_shape_str(b, x->ndim, x->shape));
    tg_tensor *w = opt_in(c, c->args.norm.weight), *bias = opt_in(c, c->args.norm.bias);
    if ((w && !check_vec(op, "weight", w, x, 1, &p->C, what)) || (bias && !check_vec(op, "bias", bias, x, 1, &p->C, what)))
        return false;
    same_as_x(c);
    return true;
}

tg_status tg_group_norm_launch(tg_op_call *c) {
    const tg_norm_params *p = &c->args.norm.p;
    tg_tensor *mean, *invstd;
    if (!new_stats(c, p->N * p->groups, &mean, &invstd)) return tg_last_status();
    tg_status st = tg_dev(c->in[0])->be->group_norm(c->out[0], mean, invstd, c->in[0], opt_in(c, c->args.norm.weight),
                                                    opt_in(c, c->args.norm.bias), p);
    if (st == TG_OK) save_weight(c);
    return st;
}

tg_tensor *tg_group_norm(tg_tensor *x, int64_t num_groups, tg_tensor *weight, tg_tensor *bias, double eps) {
    const char *op = "tg_group_norm";
    TG_API_ENTER(op);
    if (!tg_op_nonnull(op, "x", x) || (weight && !tg_op_nonnull(op, "weight", weight)) ||
        (bias && !tg_op_nonnull(op, "bias", bias)))
        return NULL;
    tg_tensor *in[3] = { dense(x) };
    int n = 1;
    tg_op_call c = { .op = TG_OP_GROUP_NORM, .in = in };
    c.args.norm.weight = add_input(in, &n, weight);
    c.args.norm.bias = add_input(in, &n, bias);
    c.args.norm.p.groups = num_groups;
    c.args.norm.p.eps = eps;
    c.n_in = n;
    if (!in[0]) return NULL;
    if (tg_dev(x)->be->group_norm) return tg_op_run(&c);
    /* composed on a device without the kernel, after the same checks */
    if (!tg_op_float(op, x) || !tg_group_norm_shape(&c)) return NULL;
    tg_tensor *is, *y = gn_xhat(in[0], num_groups, eps, &is);
    if (weight) y = tg_mul(y, per_channel(weight, x->ndim));
    return bias ? tg_add(y, per_channel(bias, x->ndim)) : y;
}

static tg_tensor *gn_set_mean(tg_tensor *t, const tg_node *n) {
    tg_tensor *r = grouped(t, n->args.norm.p.groups);
    return tg_reshape(tg_expand(tg_mean(r, TG_AXES(2), true), tg_shape_of(r)), tg_shape_of(t));
}

tg_status tg_bw_group_norm(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_device *dev = n->inputs[0].dev;
    if (!tg_is_grad_enabled() && dev->be->group_norm_backward)
        return fused_backward(dev->be->group_norm_backward, NULL, n, gout, gin);
    tg_tensor *x = tg_node_saved(n, 0);
    tg_tensor *w = n->args.norm.weight >= 0 ? tg_node_saved(n, 3) : NULL;
    if (!x || (n->args.norm.weight >= 0 && !w)) return tg_last_status();
    tg_tensor *is, *xhat = gn_xhat(x, n->args.norm.p.groups, n->args.norm.p.eps, &is);
    if (!xhat) return tg_last_status();
    return composed_grads(n, gout[0], xhat, is, per_channel(w, x->ndim), true, gn_set_mean, all_but(x->ndim, 1), gin);
}

/* ------------------------------------------------------------------ local response norm */

/* x / (k + alpha / size * window_sum(x^2))^beta, PyTorch's formula (its avg_pool over
 * the zero-padded channel axis divides by size whatever the padding). The window sum
 * is size shifted slices of the padded squares: AlexNet's size 5 is five adds. */
tg_tensor *tg_local_response_norm(tg_tensor *x, int64_t size, double alpha, double beta, double k) {
    const char *op = "tg_local_response_norm";
    TG_API_ENTER(op);
    if (!tg_op_nonnull(op, "x", x) || !tg_op_float(op, x)) return NULL;
    if (x->ndim < 3) {
        char b[128];
        return tg_error_null(TG_ERR_SHAPE, "%s: expected x of 3 or more dimensions (N, C, ...), got %s", op,
                             tg_shape_str(b, x->ndim, x->shape));
    }
    if (size < 1) return tg_error_null(TG_ERR_INVALID, "%s: size must be positive, got %lld", op, (long long)size);
    int64_t C = x->shape[1];
    tg_pads pads = { .n = 2 * (x->ndim - 1) };
    pads.v[2 * (x->ndim - 2)] = size / 2; /* (left, right) of axis 1, the last pair */
    pads.v[2 * (x->ndim - 2) + 1] = (size - 1) / 2;
    tg_tensor *padded = tg_pad(tg_square(x), pads, 0.0);
    tg_tensor *acc = tg_slice(padded, 1, 0, C, 1);
    for (int64_t j = 1; j < size; j++) acc = tg_add(acc, tg_slice(padded, 1, j, j + C, 1));
    tg_tensor *div = tg_pow_scalar(tg_add_scalar(tg_mul_scalar(acc, alpha / (double)size), k), beta);
    return tg_div(x, div);
}
