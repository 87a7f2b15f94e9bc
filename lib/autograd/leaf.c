/* Leaves: marking tensors as requiring grad and reading their accumulated gradient. */
#include "lib/autograd/node.h"
#include "lib/graph/error.h"

tg_status tg_set_requires_grad(tg_tensor *t, bool requires_grad) {
    if (!t) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "tg_set_requires_grad: tensor is NULL");
    if (t->grad_fn)
        return tg_error(TG_ERR_STATE, "tg_set_requires_grad: only leaves can change it; this tensor was made by "
                        "tg_%s (use tg_detach for a leaf)", tg_op_names[t->grad_fn->op]);
    if (requires_grad && !tg_is_float(t->dtype))
        return tg_error(TG_ERR_DTYPE, "tg_set_requires_grad: only floating tensors can require grad, got %s",
                        tg_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return TG_OK;
}

tg_tensor *tg_param(tg_tensor *t) {
    return tg_set_requires_grad(t, true) == TG_OK ? t : NULL;
}

tg_tensor *tg_grad(const tg_tensor *t) {
    if (!t) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "tg_grad: tensor is NULL");
    if (!t->grad)
        return tg_error_null(TG_ERR_STATE, t->requires_grad ? "tg_grad: no gradient yet (run tg_backward on a loss "
                             "that depends on this tensor)" : "tg_grad: the tensor does not require grad (mark it "
                             "with tg_param)");
    return t->grad;
}

void tg_zero_grad(tg_tensor *t) {
    if (!t) return;
    tg_tensor_decref(t->grad);
    t->grad = NULL;
}
