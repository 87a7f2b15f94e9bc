/* Gradient hooks: a leaf keeps its own list; any other tensor's hooks live on the node
 * that made it, tagged with the output they watch (a node holds no ref on its
 * outputs, so a hook outlives the tensor object it was registered through, as in
 * PyTorch). The engine runs them (engine.c). */
#include <stdlib.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

tg_status tg_register_hook(tg_tensor *t, tg_grad_hook fn, void *ctx) {
    TG_API_ENTER("tg_register_hook");
    if (!tg_tensor_check("tg_register_hook", "t", t)) return tg_last_status();
    if (!fn) return tg_error(TG_ERR_INVALID, "tg_register_hook: fn is NULL");
    if (!t->requires_grad)
        return tg_error(TG_ERR_STATE, "tg_register_hook: the tensor does not require grad, so no gradient reaches it");
    tg_hook *h = calloc(1, sizeof *h);
    if (!h) return tg_error(TG_ERR_NOMEM, "tg_register_hook: out of host memory");
    h->fn = fn, h->ctx = ctx, h->output_nr = t->output_nr;
    tg_hook **list = t->grad_fn ? &t->grad_fn->hooks : &t->hooks;
    while (*list) list = &(*list)->next; /* run in registration order */
    *list = h;
    return TG_OK;
}

void tg_hooks_free(tg_hook *h) {
    while (h) {
        tg_hook *next = h->next;
        free(h);
        h = next;
    }
}

void tg_remove_hooks(tg_tensor *t) {
    if (!t || t->magic != TG_TENSOR_LIVE) return;
    if (!t->grad_fn) {
        tg_hooks_free(t->hooks);
        t->hooks = NULL;
        return;
    }
    for (tg_hook **p = &t->grad_fn->hooks; *p;) { /* only the hooks of this output */
        tg_hook *h = *p;
        if (h->output_nr != t->output_nr) {
            p = &h->next;
            continue;
        }
        *p = h->next;
        free(h);
    }
}

tg_status tg_hooks_run(const tg_hook *h, int output_nr, tg_tensor **g) {
    char b1[128], b2[128];
    for (; h; h = h->next) {
        if (h->output_nr != output_nr) continue;
        tg_tensor *in = *g;
        tg_api_saved sv = tg_api_suspend(); /* the hook's own ops name themselves */
        tg_tensor *out = h->fn(in, h->ctx);
        tg_api_resume(sv);
        if (!out)
            return tg_last_status() ? tg_last_status()
                                    : tg_error(TG_ERR_INVALID, "tg_backward: a gradient hook returned NULL");
        if (!tg_tensor_check("tg_backward", "a hook's gradient", out)) return tg_last_status();
        if (!tg_shape_equal(out->ndim, out->shape, in->ndim, in->shape) || out->dtype != in->dtype ||
            out->storage->dev != in->storage->dev)
            return tg_error(TG_ERR_SHAPE, "tg_backward: a gradient hook returned %s %s on %s for a gradient %s %s on %s",
                            tg_shape_str(b1, out->ndim, out->shape), tg_dtype_name(out->dtype), out->storage->dev->name,
                            tg_shape_str(b2, in->ndim, in->shape), tg_dtype_name(in->dtype), in->storage->dev->name);
        if (out == in) continue;
        tg_tensor_incref(out);
        tg_tensor_decref(in);
        *g = out;
    }
    return TG_OK;
}
