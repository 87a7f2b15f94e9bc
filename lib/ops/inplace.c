/* In-place updates for optimizers and initialisation. They are not recorded, so they
 * refuse a destination that requires grad while grad mode is on; each bumps the
 * storage version so a backward that saved the old values reports the change. As in
 * PyTorch, a destination whose elements share memory (an expanded view) is refused,
 * except by fill_, which writes the same value everywhere. */
#include "lib/ops/ops.h"

static tg_status check_dst(const char *name, tg_tensor *dst, bool overlap_ok) {
    if (!dst) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: dst is NULL", name);
    if (!overlap_ok && !tg_op_writable(name, dst)) return tg_last_status();
    if (dst->requires_grad && tg_is_grad_enabled())
        return tg_error(TG_ERR_STATE, "%s: dst requires grad and grad mode is on; update parameters with grad "
                        "mode off (tg_set_grad_enabled(false))", name);
    return TG_OK;
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

/* Checks src against dst (device, dtype unless converting, broadcast to dst's shape)
 * and fills *sv with src viewed at dst's shape. */
static tg_status check_src(const char *name, tg_tensor *dst, tg_tensor *src, bool converting, tg_tensor *sv) {
    if (!src) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: src is NULL", name);
    if (tg_dev(src) != tg_dev(dst))
        return tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s", name, tg_dev(dst)->name, tg_dev(src)->name);
    if (!converting && dst->dtype != src->dtype)
        return tg_error(TG_ERR_DTYPE, "%s: dtypes differ: %s and %s", name, tg_dtype_name(dst->dtype), tg_dtype_name(src->dtype));
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!tg_broadcast(name, dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape)) return tg_last_status();
    if (!tg_shape_equal(nd, shape, dst->ndim, dst->shape)) {
        char b1[128], b2[128];
        return tg_error(TG_ERR_SHAPE, "%s: src %s does not broadcast to dst %s", name,
                        tg_shape_str(b1, src->ndim, src->shape), tg_shape_str(b2, dst->ndim, dst->shape));
    }
    tg_expand_into(sv, src, nd, shape);
    return TG_OK;
}

static tg_status update(const char *name, tg_binary_op k, tg_tensor *dst, tg_tensor *src, bool copy) {
    tg_status st = check_dst(name, dst, false);
    tg_tensor sv;
    if (st == TG_OK) st = check_src(name, dst, src, copy, &sv);
    if (st != TG_OK) return st;
    tg_scope_begin();
    tg_tensor *s = unaliased(dst, src);
    if (s != src && s) tg_expand_into(&sv, s, dst->ndim, dst->shape);
    st = !s ? tg_last_status() : copy ? tg_dev(dst)->be->copy(dst, &sv) : tg_dev(dst)->be->binary(k, dst, dst, &sv);
    tg_scope_end();
    dst->storage->version++;
    return st;
}

tg_status tg_copy_(tg_tensor *dst, tg_tensor *src) {
    TG_API_ENTER("tg_copy_");
    return update("tg_copy_", TG_BIN_ADD, dst, src, true);
}

tg_status tg_add_(tg_tensor *dst, tg_tensor *src) {
    TG_API_ENTER("tg_add_");
    return update("tg_add_", TG_BIN_ADD, dst, src, false);
}

tg_status tg_sub_(tg_tensor *dst, tg_tensor *src) {
    TG_API_ENTER("tg_sub_");
    return update("tg_sub_", TG_BIN_SUB, dst, src, false);
}

tg_status tg_mul_(tg_tensor *dst, tg_tensor *src) {
    TG_API_ENTER("tg_mul_");
    return update("tg_mul_", TG_BIN_MUL, dst, src, false);
}

/* Writing one value is idempotent, so an expanded dst is fine (PyTorch allows it too). */
tg_status tg_fill_(tg_tensor *dst, double value) {
    TG_API_ENTER("tg_fill_");
    tg_status st = check_dst("tg_fill_", dst, true);
    if (st != TG_OK) return st;
    st = tg_dev(dst)->be->fill(dst, value);
    dst->storage->version++;
    return st;
}

/* The SGD step: one kernel and no temporary where the backend has axpy, else a scaled
 * copy added in place. */
tg_status tg_axpy_(tg_tensor *dst, double alpha, tg_tensor *src) {
    TG_API_ENTER("tg_axpy_");
    tg_status st = check_dst("tg_axpy_", dst, false);
    tg_tensor sv;
    if (st == TG_OK) st = check_src("tg_axpy_", dst, src, false, &sv);
    if (st == TG_OK && !tg_op_float("tg_axpy_", dst)) st = tg_last_status();
    if (st != TG_OK) return st;
    if (tg_dev(dst)->be->axpy) {
        tg_scope_begin();
        tg_tensor *s = unaliased(dst, src);
        if (s != src && s) tg_expand_into(&sv, s, dst->ndim, dst->shape);
        st = s ? tg_dev(dst)->be->axpy(dst, alpha, &sv) : tg_last_status();
        tg_scope_end();
        dst->storage->version++;
        return st;
    }
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    st = tg_add_(dst, tg_mul_scalar(src, alpha));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}
