/* User-defined differentiable ops (tg_function): forward runs unrecorded with any
 * code, then one TG_OP_CUSTOM node is recorded with what forward saved; backward calls
 * the user's rule with every output's gradient. */
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

#define MAX_SAVED_IN_FORWARD 64

struct tg_function_ctx {
    const tg_function *f;
    void *user;
    tg_node *node;                       /* in backward */
    tg_tensor *saved[MAX_SAVED_IN_FORWARD]; /* in forward: owned refs until recorded */
    int n_saved;
};

tg_status tg_function_save(tg_function_ctx *ctx, tg_tensor *t) {
    if (!ctx || ctx->node)
        return tg_error(TG_ERR_STATE, "tg_function_save: only inside a function's forward");
    if (!tg_tensor_check("tg_function_save", "t", t)) return tg_last_status();
    if (ctx->n_saved == MAX_SAVED_IN_FORWARD)
        return tg_error(TG_ERR_INVALID, "tg_function_save: %s saves more than %d tensors", ctx->f->name,
                        MAX_SAVED_IN_FORWARD);
    tg_tensor_incref(t);
    ctx->saved[ctx->n_saved++] = t;
    return TG_OK;
}

tg_tensor *tg_function_saved(tg_function_ctx *ctx, int i) {
    if (!ctx || !ctx->node) return tg_error_null(TG_ERR_STATE, "tg_function_saved: only inside a function's backward");
    if (i < 0 || i >= ctx->node->n_saved)
        return tg_error_null(TG_ERR_INVALID, "tg_function_saved: %s saved %d tensors; there is no %d", ctx->f->name,
                             ctx->node->n_saved, i);
    return tg_node_saved(ctx->node, i);
}

void *tg_function_user(tg_function_ctx *ctx) { return ctx ? ctx->user : NULL; }

bool tg_function_needs_grad(tg_function_ctx *ctx, int i) {
    return ctx && ctx->node && i >= 0 && i < ctx->node->n_inputs && tg_node_needs(ctx->node, i);
}

static tg_status check_call(const tg_function *f, tg_tensor *const *in, tg_tensor **out) {
    if (!f || !f->forward || !f->backward || f->n_inputs < 1 || f->n_outputs < 1 || f->n_outputs > 64)
        return tg_error(TG_ERR_INVALID, "tg_function_apply: the function needs forward, backward, at least one "
                        "input and 1 to 64 outputs");
    if (!in || !out) return tg_error(TG_ERR_INVALID, "tg_function_apply: %s: inputs and outputs must not be NULL", f->name);
    char arg[32];
    for (int i = 0; i < f->n_inputs; i++) {
        snprintf(arg, sizeof arg, "input %d", i);
        if (!tg_tensor_check("tg_function_apply", arg, in[i])) return tg_last_status();
        if (tg_device_of(in[i]) != tg_device_of(in[0]))
            return tg_error(TG_ERR_DEVICE, "tg_function_apply: %s: inputs on two devices: %s and %s", f->name,
                            tg_device_of(in[0])->name, tg_device_of(in[i])->name);
    }
    return TG_OK;
}

/* An output that is not a fresh tensor (an input returned as is, or one already in a
 * graph) is replaced by a new view of it, so recording never rewires someone else's. */
static tg_status fresh_outputs(const tg_function *f, tg_tensor *const *in, tg_tensor **out) {
    for (int k = 0; k < f->n_outputs; k++) {
        if (!out[k] || !tg_tensor_check("tg_function_apply", "an output", out[k]))
            return tg_last_status() ? tg_last_status()
                                    : tg_error(TG_ERR_INVALID, "tg_function_apply: %s returned no output %d", f->name, k);
        bool shared = out[k]->grad_fn || out[k]->requires_grad;
        for (int i = 0; i < f->n_inputs && !shared; i++) shared = out[k] == in[i];
        for (int j = 0; j < k && !shared; j++) shared = out[k] == out[j];
        if (shared && !(out[k] = tg_detach(out[k]))) return tg_last_status();
    }
    return TG_OK;
}

/* Moves what forward saved into the node; saved outputs without a ref cycle. */
static void save_into(tg_node *n, tg_function_ctx *c, tg_tensor *const *out, int n_out) {
    for (int s = 0; s < c->n_saved; s++) {
        int k = -1;
        for (int j = 0; j < n_out && k < 0; j++)
            if (c->saved[s] == out[j]) k = j;
        if (k >= 0) tg_node_save_output(n, out[k]);
        else tg_node_save(n, c->saved[s]);
    }
}

tg_status tg_function_apply(const tg_function *f, void *user, tg_tensor *const *in, tg_tensor **out) {
    TG_API_ENTER("tg_function_apply");
    tg_status st = check_call(f, in, out);
    if (st != TG_OK) return st;
    tg_function_ctx c = { .f = f, .user = user };
    for (int k = 0; k < f->n_outputs; k++) out[k] = NULL;
    bool record = tg_node_should_record(f->n_inputs, in), prev = tg_set_grad_enabled(false);
    tg_api_saved sv = tg_api_suspend(); /* the user's ops name themselves */
    st = f->forward(&c, in, out);
    tg_api_resume(sv);
    tg_set_grad_enabled(prev);
    if (st == TG_OK) st = fresh_outputs(f, in, out);
    if (st == TG_OK && record) {
        tg_node *n = tg_node_record_multi(TG_OP_FUNCTION, f->n_outputs, out, f->n_inputs, in);
        if (n) {
            n->args.function.f = f;
            n->args.function.user = user;
            n->api = f->name;
            save_into(n, &c, out, f->n_outputs);
        } else {
            st = tg_last_status();
        }
    }
    for (int s = 0; s < c.n_saved; s++) tg_tensor_decref(c.saved[s]);
    if (st != TG_OK)
        for (int k = 0; k < f->n_outputs; k++) out[k] = NULL;
    return st;
}

tg_tensor *tg_function_call(const tg_function *f, void *user, int n_inputs, tg_tensor *const *inputs) {
    TG_API_ENTER("tg_function_call");
    if (f && (f->n_outputs != 1 || f->n_inputs != n_inputs))
        return tg_error_null(TG_ERR_INVALID, "tg_function_call: %s takes %d inputs and gives %d outputs; "
                             "tg_function_call needs one output and was given %d inputs", f->name, f->n_inputs,
                             f->n_outputs, n_inputs);
    tg_tensor *out = NULL;
    return tg_function_apply(f, user, inputs, &out) == TG_OK ? out : NULL;
}

tg_status tg_function_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    const tg_function *f = n->args.function.f;
    tg_function_ctx c = { .f = f, .user = n->args.function.user, .node = n };
    tg_api_saved sv = tg_api_suspend();
    tg_status st = f->backward(&c, gout, gin);
    tg_api_resume(sv);
    if (st != TG_OK && tg_last_status() == TG_OK)
        st = tg_error(st, "tg_backward: the backward of %s failed (status %d, no message)", f->name, (int)st);
    return st;
}

/* The table's shape rule and launch: never reached, a function records itself. */
bool tg_function_shape(tg_op_call *c) {
    (void)c;
    return tg_error(TG_ERR_STATE, "internal: tg_function_apply runs its forward itself") == TG_OK;
}

tg_status tg_function_launch(tg_op_call *c) {
    (void)c;
    return tg_error(TG_ERR_STATE, "internal: tg_function_apply runs its forward itself");
}
