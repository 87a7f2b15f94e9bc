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

bool tg_node_should_record(int n, tg_tensor *const *inputs) {
    if (g_grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

const char *tg_node_name(const tg_node *n) { return n->api ? n->api : tg_ops[n->op].name; }

static tg_recycler *nodes(void) { return tg_recycler_get(2, sizeof(tg_node)); }

static void set_edge(tg_edge *e, tg_tensor *t) {
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->dtype = t->dtype;
    e->dev = t->storage->dev;
    if (!t->requires_grad) return;
    if (t->grad_fn) {
        e->fn = t->grad_fn;
        e->output_nr = t->output_nr;
        atomic_fetch_add_explicit(&e->fn->refcount, 1, memory_order_relaxed);
    } else {
        e->leaf = t;
        tg_tensor_incref(t);
    }
}

tg_node *tg_node_record_multi(int op, int n_out, tg_tensor *const *outs, int n, tg_tensor *const *inputs) {
    tg_node *node = tg_recycle_alloc(nodes());
    if (!node) goto nomem;
    node->inputs = node->small_inputs;
    node->outputs = node->small_outputs;
    node->saved = node->small_saved;
    node->cap_saved = TG_NODE_SMALL_SAVED;
    if (n > 3 && !(node->inputs = calloc((size_t)n, sizeof *node->inputs))) goto nomem;
    if (n_out > TG_NODE_SMALL_OUTPUTS && !(node->outputs = calloc((size_t)n_out, sizeof *node->outputs))) goto nomem;
    atomic_init(&node->refcount, 0); /* one per output that points at it, below */
    node->seq = ++g_seq;
    node->op = op;
    node->api = tg_api_current();
    node->n_inputs = n;
    node->n_outputs = n_out;
    for (int i = 0; i < n; i++) set_edge(&node->inputs[i], inputs[i]);
    for (int k = 0; k < n_out; k++) {
        tg_tensor *o = outs[k];
        if (!o) continue;
        tg_output_meta *m = &node->outputs[k];
        m->ndim = o->ndim;
        memcpy(m->shape, o->shape, sizeof m->shape);
        m->dtype = o->dtype;
        m->dev = o->storage->dev;
        o->grad_fn = node;
        o->output_nr = k;
        o->requires_grad = true;
        atomic_fetch_add_explicit(&node->refcount, 1, memory_order_relaxed);
    }
    return node;
nomem:
    if (node) {
        if (node->inputs != node->small_inputs) free(node->inputs);
        tg_recycle_free(nodes(), node);
    }
    return tg_error_null(TG_ERR_NOMEM, "%s: out of host memory recording the tape", tg_ops[op].name);
}

tg_node *tg_node_record(tg_op op, tg_tensor *out, int n, tg_tensor *const *inputs) {
    return tg_node_record_multi(op, 1, &out, n, inputs);
}

static bool saved_slot(tg_node *n) {
    if (n->n_saved < n->cap_saved) return true;
    int cap = n->cap_saved * 2;
    tg_saved *v = n->saved == n->small_saved ? malloc((size_t)cap * sizeof *v)
                                             : realloc(n->saved, (size_t)cap * sizeof *v);
    if (!v) {
        n->incomplete = true;
        return false;
    }
    if (n->saved == n->small_saved) memcpy(v, n->small_saved, sizeof n->small_saved);
    n->saved = v;
    n->cap_saved = cap;
    return true;
}

void tg_node_save(tg_node *n, tg_tensor *t) {
    if (!saved_slot(n)) return;
    tg_tensor_incref(t);
    n->saved[n->n_saved++] = (tg_saved){ t, t->storage->version, false, 0 };
}

/* The output is saved as a detached alias (same storage, no grad_fn): holding the
 * output itself would make a cycle output -> node -> output. tg_node_saved re-attaches
 * it to the node when a backward records itself, as PyTorch's SavedVariable does. */
void tg_node_save_output(tg_node *n, tg_tensor *out) {
    if (!saved_slot(n)) return;
    tg_tensor *alias = tg_tensor_alias_unscoped(out, out->ndim, out->shape, out->strides, out->offset);
    if (!alias) {
        n->incomplete = true;
        return;
    }
    n->saved[n->n_saved++] = (tg_saved){ alias, out->storage->version, true, out->output_nr };
}

tg_tensor *tg_node_saved(tg_node *n, int i) {
    if (n->incomplete)
        return tg_error_null(TG_ERR_NOMEM, "tg_backward: %s ran out of host memory while saving tensors for "
                             "backward", tg_node_name(n));
    if (n->released || i >= n->n_saved)
        return tg_error_null(TG_ERR_STATE, "tg_backward: the graph through %s was already freed by a "
                             "backward pass; pass retain_graph to run backward twice", tg_node_name(n));
    tg_saved *s = &n->saved[i];
    if (s->t->storage->version != s->version)
        return tg_error_null(TG_ERR_STATE, "tg_backward: a tensor saved by %s was modified in place "
                             "(version %u, saved at %u); clone it before updating it",
                             tg_node_name(n), s->t->storage->version, s->version);
    if (!s->is_output || !tg_is_grad_enabled()) return s->t;
    tg_tensor *t = tg_tensor_alias(s->t, s->t->ndim, s->t->shape, s->t->strides, s->t->offset);
    if (!t) return NULL;
    t->grad_fn = n;
    t->output_nr = s->output_nr;
    atomic_fetch_add_explicit(&n->refcount, 1, memory_order_relaxed);
    t->requires_grad = true;
    return t;
}

void tg_node_release_saved(tg_node *n) {
    for (int i = 0; i < n->n_saved; i++) tg_tensor_decref(n->saved[i].t);
    n->n_saved = 0;
    n->released = true;
}

/* Freeing a node drops refs on its inputs' nodes, which may free them in turn: a
 * chain of 10^6 nodes (a long unrolled RNN) would recurse that deep. Nodes whose
 * count reaches zero go on a per-thread work list instead, drained by the outermost
 * call; nested calls (from tensors freed meanwhile) only add to it. */
static _Thread_local tg_node *g_free_list;
static _Thread_local bool g_freeing;

static void node_free(tg_node *n) {
    tg_node_release_saved(n);
    for (int i = 0; i < n->n_inputs; i++) {
        tg_node_decref(n->inputs[i].fn);
        tg_tensor_decref(n->inputs[i].leaf);
    }
    if (n->inputs != n->small_inputs) free(n->inputs);
    if (n->outputs != n->small_outputs) free(n->outputs);
    if (n->saved != n->small_saved) free(n->saved);
    tg_hooks_free(n->hooks);
    tg_recycle_free(nodes(), n);
}

void tg_node_decref(tg_node *n) {
    if (!n || atomic_fetch_sub_explicit(&n->refcount, 1, memory_order_acq_rel) != 1) return;
    n->free_next = g_free_list;
    g_free_list = n;
    if (g_freeing) return;
    g_freeing = true;
    while (g_free_list) {
        tg_node *m = g_free_list;
        g_free_list = m->free_next;
        node_free(m);
    }
    g_freeing = false;
}
