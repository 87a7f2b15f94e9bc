/* Leaves: marking tensors as requiring grad and reading their accumulated gradient. */
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
