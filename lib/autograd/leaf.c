/* Leaves: marking tensors as requiring grad and reading their accumulated gradient. */
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

tg_status tg_set_requires_grad(tg_tensor *t, bool requires_grad) {
    if (!t) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "tg_set_requires_grad: tensor is NULL");
    if (t->grad_fn)
        return tg_error(TG_ERR_STATE, "tg_set_requires_grad: only leaves can change it; this tensor was made by "
                        "%s (use tg_detach for a leaf)", tg_node_name(t->grad_fn));
    if (requires_grad && !tg_is_float(t->dtype))
        return tg_error(TG_ERR_DTYPE, "tg_set_requires_grad: only floating tensors can require grad, got %s",
                        tg_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    if (requires_grad) t->storage->weight = true;
    return TG_OK;
}

tg_tensor *tg_param(tg_tensor *t) {
    return tg_set_requires_grad(t, true) == TG_OK ? t : NULL;
}

tg_tensor *tg_grad(const tg_tensor *t) {
    if (!tg_tensor_check("tg_grad", "tensor", t)) return NULL;
    if (!t->grad)
        return tg_error_null(TG_ERR_STATE, t->requires_grad ? "tg_grad: no gradient yet (run tg_backward on a loss "
                             "that depends on this tensor)" : "tg_grad: the tensor does not require grad (mark it "
                             "with tg_param)");
    return t->grad;
}

/* Zeroed in place: the gradient keeps its identity (views of it, a flat buffer it
 * lives in) for the leaf's whole life. */
void tg_zero_grad(tg_tensor *t) {
    TG_API_ENTER("tg_zero_grad");
    if (!t || !tg_tensor_check("tg_zero_grad", "t", t) || !t->grad) return;
    bool prev = tg_set_grad_enabled(false);
    tg_fill_(t->grad, 0);
    tg_set_grad_enabled(prev);
}

/* ------------------------------------------------------------- flat parameter buffers */

static tg_status check_flattenable(int n, tg_tensor *const *params) {
    const char *fn = "tg_params_flatten";
    if (n <= 0 || !params) return tg_error(TG_ERR_INVALID, "%s: needs at least one parameter", fn);
    char arg[32];
    for (int i = 0; i < n; i++) {
        snprintf(arg, sizeof arg, "parameter %d", i);
        const tg_tensor *p = params[i];
        if (!tg_tensor_check(fn, arg, p)) return tg_last_status();
        if (p->grad_fn) return tg_error(TG_ERR_STATE, "%s: parameter %d is not a leaf (it was made by %s)", fn, i, tg_node_name(p->grad_fn));
        if (!tg_is_float(p->dtype)) return tg_error(TG_ERR_DTYPE, "%s: parameter %d is %s; parameters are f32 or f64", fn, i, tg_dtype_name(p->dtype));
        if (p->dtype != params[0]->dtype || p->storage->dev != params[0]->storage->dev)
            return tg_error(TG_ERR_INVALID, "%s: parameter %d is %s on %s, parameter 0 %s on %s (one flat buffer holds one "
                            "dtype on one device)", fn, i, tg_dtype_name(p->dtype), p->storage->dev->name,
                            tg_dtype_name(params[0]->dtype), params[0]->storage->dev->name);
        if (atomic_load(&p->storage->refcount) != 1)
            return tg_error(TG_ERR_STATE, "%s: parameter %d shares its storage with another tensor (a view of it, or it "
                            "is a view); flatten tensors that own their storage", fn, i);
    }
    return TG_OK;
}

/* A view of flat at offset with t's shape, on the stack, for one copy. */
static tg_tensor region_of(const tg_tensor *flat, const tg_tensor *t, int64_t offset) {
    tg_tensor r = *flat;
    r.ndim = t->ndim;
    memcpy(r.shape, t->shape, sizeof r.shape);
    tg_contiguous_strides(t->ndim, r.shape, r.strides);
    r.offset = offset;
    return r;
}

tg_status tg_params_flatten(int n, tg_tensor *const *params, tg_tensor **flat, tg_tensor **flat_grad) {
    TG_API_ENTER("tg_params_flatten");
    if (!flat || !flat_grad) return tg_error(TG_ERR_INVALID, "tg_params_flatten: flat and flat_grad must not be NULL");
    *flat = *flat_grad = NULL;
    tg_status st = check_flattenable(n, params);
    if (st != TG_OK) return st;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += tg_shape_numel(params[i]->ndim, params[i]->shape);
    tg_device *dev = params[0]->storage->dev;
    tg_tensor *f = tg_tensor_new_unscoped(params[0]->dtype, 1, &total, dev);
    tg_tensor *g = f ? tg_tensor_new_unscoped(params[0]->dtype, 1, &total, dev) : NULL;
    if (!f || !g || dev->be->fill(g, 0) != TG_OK) goto fail;
    for (int64_t i = 0, off = 0; i < n; i++) { /* copy everything first: a failure leaves the leaves as they were */
        tg_tensor r = region_of(f, params[i], off), rg = region_of(g, params[i], off);
        if (dev->be->copy(&r, params[i]) != TG_OK || (params[i]->grad && dev->be->copy(&rg, params[i]->grad) != TG_OK))
            goto fail;
        off += tg_shape_numel(params[i]->ndim, params[i]->shape);
    }
    for (int64_t i = 0, off = 0; i < n; i++) {
        tg_tensor *p = params[i];
        tg_tensor *view = tg_tensor_alias_unscoped(g, p->ndim, p->shape, p->strides, off);
        if (!view) goto fail; /* only possible before any leaf was rebound: nothing changed yet for p */
        tg_tensor_rebind(p, f, off);
        view->offset = off;
        tg_contiguous_strides(p->ndim, view->shape, view->strides);
        tg_tensor_decref(p->grad);
        p->grad = view;
        off += tg_shape_numel(p->ndim, p->shape);
    }
    f->storage->weight = true;
    atomic_store(&f->user_refs, 1), atomic_store(&g->user_refs, 1);
    *flat = f, *flat_grad = g;
    return TG_OK;
fail:
    tg_tensor_decref(f);
    tg_tensor_decref(g);
    return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_NOMEM, "tg_params_flatten: out of memory");
}
