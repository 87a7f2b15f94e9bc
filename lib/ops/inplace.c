/* In-place updates for optimizers and initialisation. They are not recorded, so they
 * refuse a destination that requires grad while grad mode is on; each bumps the
 * storage version so a backward that saved the old values reports the change. As in
 * PyTorch, a destination whose elements share memory (an expanded view) is refused,
 * except by fill_, which writes the same value everywhere. */
#include "lib/ops/ops.h"

static bool check_dst(const char *name, tg_tensor *dst, bool overlap_ok) {
    if (!overlap_ok && !tg_op_writable(name, dst)) return false;
    if (dst->requires_grad && tg_is_grad_enabled()) {
        tg_error(TG_ERR_STATE, "%s: dst requires grad and grad mode is on; update parameters with grad mode off "
                 "(tg_set_grad_enabled(false))", name);
        return false;
    }
    return true;
}

/* A source sharing dst's storage in another layout (a flip or transpose of dst) would be
 * read after parts of it were overwritten: such a source is copied first. The copy
 * belongs to the caller's scope. */
static tg_tensor *unaliased(const tg_tensor *dst, tg_tensor *src) {
    if (!src || src->storage != dst->storage) return src;
    bool same = src->offset == dst->offset && tg_shape_equal(src->ndim, src->shape, dst->ndim, dst->shape);
    for (int i = 0; same && i < src->ndim; i++) same = src->strides[i] == dst->strides[i];
    if (same) return src;
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *copy = tg_clone(src);
    tg_set_grad_enabled(prev);
    return copy;
}

/* Checks src against dst (dtype unless copying, broadcast to dst's shape). */
static bool check_src(const char *name, tg_tensor *dst, tg_tensor *src, bool converting) {
    if (!converting && dst->dtype != src->dtype) {
        tg_error(TG_ERR_DTYPE, "%s: dtypes differ: %s and %s", name, tg_dtype_name(dst->dtype), tg_dtype_name(src->dtype));
        return false;
    }
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!tg_ops_broadcast(name, dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape)) return false;
    if (!tg_shape_equal(nd, shape, dst->ndim, dst->shape)) {
        char b1[128], b2[128];
        tg_error(TG_ERR_SHAPE, "%s: src %s does not broadcast to dst %s", name, tg_shape_str(b1, src->ndim, src->shape),
                 tg_shape_str(b2, dst->ndim, dst->shape));
        return false;
    }
    return true;
}

/* Inputs (dst, src): dst is written in place, src broadcasts to it. */
bool tg_update_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    return check_dst(d->name, c->in[0], false) && check_src(d->name, c->in[0], c->in[1], c->op == TG_OP_COPY_);
}

/* Runs in a scope of its own: a source aliasing dst is copied first (see unaliased). */
tg_status tg_update_launch(tg_op_call *c) {
    tg_tensor *dst = c->in[0], sv;
    const tg_backend *be = tg_dev(dst)->be;
    tg_scope_begin();
    tg_tensor *s = unaliased(dst, c->in[1]);
    tg_status st = s ? TG_OK : tg_last_status();
    if (s) tg_ops_expand_into(&sv, s, dst->ndim, dst->shape);
    if (st == TG_OK)
        st = c->op == TG_OP_COPY_ ? be->copy(dst, &sv) : be->binary((tg_binary_op)tg_ops[c->op].kind, dst, dst, &sv);
    tg_scope_end();
    return st;
}

/* The SGD step: one kernel and no temporary where the backend has axpy, else a scaled
 * copy added in place. */
tg_status tg_axpy_launch(tg_op_call *c) {
    tg_tensor *dst = c->in[0], sv;
    double alpha = c->args.scalar.p0;
    tg_scope_begin();
    tg_tensor *s = unaliased(dst, c->in[1]);
    tg_status st = s ? TG_OK : tg_last_status();
    if (st == TG_OK && tg_dev(dst)->be->axpy) {
        tg_ops_expand_into(&sv, s, dst->ndim, dst->shape);
        st = tg_dev(dst)->be->axpy(dst, alpha, &sv);
    } else if (st == TG_OK) {
        bool prev = tg_set_grad_enabled(false);
        tg_tensor *scaled = tg_mul_scalar(s, alpha);
        tg_set_grad_enabled(prev);
        tg_ops_expand_into(&sv, scaled, dst->ndim, dst->shape);
        st = scaled ? tg_dev(dst)->be->binary(TG_BIN_ADD, dst, dst, &sv) : tg_last_status();
    }
    tg_scope_end();
    return st;
}

/* Writing one value is idempotent, so an expanded dst is fine (PyTorch allows it too). */
bool tg_fill_shape(tg_op_call *c) { return check_dst("tg_fill_", c->in[0], true); }

tg_status tg_fill_launch(tg_op_call *c) { return tg_dev(c->in[0])->be->fill(c->in[0], c->args.scalar.p0); }

tg_status tg_copy_(tg_tensor *dst, tg_tensor *src) { return tg_op_run_status(TG_OP_CALL(TG_OP_COPY_, 2, dst, src)); }
tg_status tg_add_(tg_tensor *dst, tg_tensor *src) { return tg_op_run_status(TG_OP_CALL(TG_OP_ADD_, 2, dst, src)); }
tg_status tg_sub_(tg_tensor *dst, tg_tensor *src) { return tg_op_run_status(TG_OP_CALL(TG_OP_SUB_, 2, dst, src)); }
tg_status tg_mul_(tg_tensor *dst, tg_tensor *src) { return tg_op_run_status(TG_OP_CALL(TG_OP_MUL_, 2, dst, src)); }

tg_status tg_fill_(tg_tensor *dst, double value) {
    tg_op_call *c = TG_OP_CALL(TG_OP_FILL_, 1, dst);
    c->args.scalar.p0 = value;
    return tg_op_run_status(c);
}

tg_status tg_axpy_(tg_tensor *dst, double alpha, tg_tensor *src) {
    tg_op_call *c = TG_OP_CALL(TG_OP_AXPY_, 2, dst, src);
    c->args.scalar.p0 = alpha;
    return tg_op_run_status(c);
}
