/* In-place updates for optimizers and initialisation. They are not recorded, so they
 * refuse a destination that requires grad while grad mode is on; each bumps the
 * storage version so a backward that saved the old values reports the change. */
#include "lib/cpu/simd/simd.h"
#include "lib/ops/ops.h"

static tg_status check_dst(const char *name, tg_tensor *dst) {
    if (!dst) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: dst is NULL", name);
    if (dst->requires_grad && tg_is_grad_enabled())
        return tg_error(TG_ERR_STATE, "%s: dst requires grad and grad mode is on; update parameters with grad "
                        "mode off (tg_set_grad_enabled(false))", name);
    return TG_OK;
}

static tg_status update(const char *name, tg_binary_op k, tg_tensor *dst, tg_tensor *src, bool copy) {
    tg_status st = check_dst(name, dst);
    if (st != TG_OK) return st;
    if (!src) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: src is NULL", name);
    if (tg_dev(src) != tg_dev(dst))
        return tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s", name, tg_dev(dst)->name, tg_dev(src)->name);
    if (!copy && dst->dtype != src->dtype)
        return tg_error(TG_ERR_DTYPE, "%s: dtypes differ: %s and %s", name, tg_dtype_name(dst->dtype), tg_dtype_name(src->dtype));
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!tg_broadcast(name, dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape)) return tg_last_status();
    if (!tg_shape_equal(nd, shape, dst->ndim, dst->shape)) {
        char b1[128], b2[128];
        return tg_error(TG_ERR_SHAPE, "%s: src %s does not broadcast to dst %s", name,
                        tg_shape_str(b1, src->ndim, src->shape), tg_shape_str(b2, dst->ndim, dst->shape));
    }
    tg_tensor sv;
    tg_expand_into(&sv, src, nd, shape);
    st = copy ? tg_dev(dst)->be->copy(dst, &sv) : tg_dev(dst)->be->binary(k, dst, dst, &sv);
    dst->storage->version++;
    return st;
}

tg_status tg_copy_(tg_tensor *dst, tg_tensor *src) { return update("tg_copy_", TG_BIN_ADD, dst, src, true); }
tg_status tg_add_(tg_tensor *dst, tg_tensor *src) { return update("tg_add_", TG_BIN_ADD, dst, src, false); }
tg_status tg_sub_(tg_tensor *dst, tg_tensor *src) { return update("tg_sub_", TG_BIN_SUB, dst, src, false); }
tg_status tg_mul_(tg_tensor *dst, tg_tensor *src) { return update("tg_mul_", TG_BIN_MUL, dst, src, false); }

tg_status tg_fill_(tg_tensor *dst, double value) {
    tg_status st = check_dst("tg_fill_", dst);
    if (st != TG_OK) return st;
    st = tg_dev(dst)->be->fill(dst, value);
    dst->storage->version++;
    return st;
}

/* The SGD step. Dense f32/f64 CPU tensors take the SIMD axpy directly (no temporary);
 * anything else goes through a scaled copy. */
tg_status tg_axpy_(tg_tensor *dst, double alpha, tg_tensor *src) {
    tg_status st = check_dst("tg_axpy_", dst);
    if (st != TG_OK) return st;
    if (src && tg_dev(src) == tg_dev(dst) && tg_dev(dst) == tg_cpu_device() && src->dtype == dst->dtype &&
        tg_is_float(dst->dtype) && tg_shape_equal(src->ndim, src->shape, dst->ndim, dst->shape) &&
        tg_tensor_is_dense(src) && tg_tensor_is_dense(dst)) {
        char *d = (char *)dst->storage->data, *s = (char *)src->storage->data;
        int64_t n = tg_shape_numel(dst->ndim, dst->shape);
        if (dst->dtype == TG_F32) tg_simd()->axpy_f32(n, (float)alpha, (const float *)s + src->offset, (float *)d + dst->offset);
        else tg_simd()->axpy_f64(n, alpha, (const double *)s + src->offset, (double *)d + dst->offset);
        dst->storage->version++;
        return TG_OK;
    }
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    st = tg_add_(dst, tg_mul_scalar(src, alpha));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}
