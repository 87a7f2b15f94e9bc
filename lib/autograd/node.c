/* Recording tape nodes, saved tensors with version checks, and grad mode. */
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"
#include "lib/graph/recycle.h"

static _Thread_local bool g_grad_disabled;
static _Atomic uint64_t g_seq;

bool tg_set_grad_enabled(bool enabled) {
    bool prev = !g_grad_disabled;
    g_grad_disabled = !enabled;
    return prev;
}

bool tg_is_grad_enabled(void) { return !g_grad_disabled; }

bool tg_should_record(int n, tg_tensor *const *inputs) {
    if (g_grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

tg_node *tg_record(tg_op op, tg_tensor *out, int n, tg_tensor *const *inputs) {
    tg_node *node = tg_recycle_alloc(tg_recycler_get(2, sizeof(tg_node)));
    if (!node) return tg_error_null(TG_ERR_NOMEM, "tg_%s: out of host memory recording the tape", tg_op_names[op]);
    node->inputs = node->small_inputs;
    if (n > 3 && !(node->inputs = calloc((size_t)n, sizeof *node->inputs))) {
        tg_recycle_free(tg_recycler_get(2, sizeof(tg_node)), node);
        return tg_error_null(TG_ERR_NOMEM, "tg_%s: out of host memory recording the tape", tg_op_names[op]);
    }
    node->refcount = 1; /* held by out->grad_fn */
    node->seq = ++g_seq;
    node->op = op;
    node->n_inputs = n;
    for (int i = 0; i < n; i++) {
        tg_edge *e = &node->inputs[i];
        tg_tensor *t = inputs[i];
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->dtype = t->dtype;
        e->dev = t->storage->dev;
        if (!t->requires_grad) continue;
        if (t->grad_fn) {
            e->fn = t->grad_fn;
            e->fn->refcount++;
        } else {
            e->leaf = t;
            tg_tensor_incref(t);
        }
    }
    out->grad_fn = node;
    out->requires_grad = true;
    return node;
}

void tg_node_save(tg_node *n, tg_tensor *t) {
    TG_ASSERT(n->n_saved < TG_NODE_MAX_SAVED);
    tg_tensor_incref(t);
    n->saved[n->n_saved++] = (tg_saved){ t, t->storage->version, false };
}

/* The output is saved as a detached alias (same storage, no grad_fn): holding the
 * output itself would make a cycle output -> node -> output. tg_node_saved re-attaches
 * it to the node when a backward records itself, as PyTorch's SavedVariable does. */
void tg_node_save_output(tg_node *n, tg_tensor *out) {
    TG_ASSERT(n->n_saved < TG_NODE_MAX_SAVED);
    tg_tensor *alias = tg_tensor_alias_unscoped(out, out->ndim, out->shape, out->strides, out->offset);
    TG_ASSERT(alias != NULL);
    n->saved[n->n_saved++] = (tg_saved){ alias, out->storage->version, true };
}

tg_tensor *tg_node_saved(tg_node *n, int i) {
    if (n->released || i >= n->n_saved)
        return tg_error_null(TG_ERR_STATE, "tg_backward: the graph through tg_%s was already freed by a "
                             "backward pass; pass retain_graph to run backward twice", tg_op_names[n->op]);
    tg_saved *s = &n->saved[i];
    if (s->t->storage->version != s->version)
        return tg_error_null(TG_ERR_STATE, "tg_backward: a tensor saved by tg_%s was modified in place "
                             "(version %u, saved at %u); clone it before updating it",
                             tg_op_names[n->op], s->t->storage->version, s->version);
    if (!s->is_output || !tg_is_grad_enabled()) return s->t;
    tg_tensor *t = tg_tensor_alias(s->t, s->t->ndim, s->t->shape, s->t->strides, s->t->offset);
    if (!t) return NULL;
    t->grad_fn = n;
    n->refcount++;
    t->requires_grad = true;
    return t;
}

void tg_node_release_saved(tg_node *n) {
    for (int i = 0; i < n->n_saved; i++) tg_tensor_decref(n->saved[i].t);
    n->n_saved = 0;
    n->released = true;
}

void tg_node_decref(tg_node *n) {
    if (!n || --n->refcount > 0) return;
    /* Free chains iteratively-ish: inputs first, then this node. Deep graphs (long RNN
     * unrolls) recurse once per node; 10^5 nodes stay well inside a default stack. */
    tg_node_release_saved(n);
    for (int i = 0; i < n->n_inputs; i++) {
        tg_node_decref(n->inputs[i].fn);
        tg_tensor_decref(n->inputs[i].leaf);
    }
    tg_tensor_decref(n->grad_acc);
    if (n->inputs != n->small_inputs) free(n->inputs);
    tg_recycle_free(tg_recycler_get(2, sizeof(tg_node)), n);
}
