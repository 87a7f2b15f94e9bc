/* The backward engine: visits the nodes reachable from the outputs in decreasing
 * sequence number (a valid reverse topological order, since a node is always created
 * after its inputs' nodes), runs each rule, and sums gradients into the next nodes and
 * into leaves. Rules are op-builder code, so with create_graph they record themselves. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

typedef struct {
    tg_node **v;
    int n, cap;
} node_list;

typedef struct {
    bool create_graph, retain_graph;
    int n_capture;           /* tg_autograd_grad: inputs whose gradients are returned */
    tg_tensor *const *capture_in;
    tg_tensor **capture_out; /* owned refs while running */
} run_opts;

static int g_epoch;

/* The walk's two lists keep their capacity between calls (no malloc in a steady-state
 * step); a backward started while another runs on the thread uses fresh ones. A thread's
 * lists are freed when it exits. */
static _Thread_local node_list g_lists[2];
static _Thread_local bool g_lists_busy;
static pthread_key_t g_lists_key;
static pthread_once_t g_lists_once = PTHREAD_ONCE_INIT;

static void free_lists(void *arg) {
    node_list *l = arg;
    free(l[0].v), free(l[1].v);
    l[0] = l[1] = (node_list){ 0 };
}

static void make_key(void) { pthread_key_create(&g_lists_key, free_lists); }

static bool borrow_lists(node_list **order, node_list **stack, node_list *own) {
    if (g_lists_busy) {
        own[0] = own[1] = (node_list){ 0 };
        *order = &own[0], *stack = &own[1];
        return false;
    }
    pthread_once(&g_lists_once, make_key);
    pthread_setspecific(g_lists_key, g_lists);
    g_lists_busy = true;
    g_lists[0].n = g_lists[1].n = 0;
    *order = &g_lists[0], *stack = &g_lists[1];
    return true;
}

static void return_lists(bool borrowed, node_list *own) {
    if (borrowed) g_lists_busy = false;
    else free_lists(own);
}

static bool push(node_list *l, tg_node *n) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        tg_node **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return true;
}

static int by_seq_desc(const void *a, const void *b) {
    uint64_t sa = (*(tg_node *const *)a)->seq, sb = (*(tg_node *const *)b)->seq;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* Depth-first over input edges with an explicit stack; fills `order` sorted. */
static tg_status collect(node_list *order, node_list *stack, int n_roots, tg_tensor *const *roots) {
    int epoch = ++g_epoch;
    tg_status st = TG_OK;
    for (int r = 0; r < n_roots; r++) {
        tg_node *fn = roots[r]->grad_fn;
        if (fn && fn->visit_mark != epoch) {
            fn->visit_mark = epoch;
            if (!push(stack, fn)) goto nomem;
        }
    }
    while (stack->n > 0) {
        tg_node *n = stack->v[--stack->n];
        if (n->released) {
            st = tg_error(TG_ERR_STATE, "tg_backward: the graph through tg_%s was already freed by a "
                          "backward pass; pass retain_graph to run backward twice", tg_op_names[n->op]);
            goto done;
        }
        if (!push(order, n)) goto nomem;
        for (int i = 0; i < n->n_inputs; i++) {
            tg_node *in = n->inputs[i].fn;
            if (in && in->visit_mark != epoch) {
                in->visit_mark = epoch;
                if (!push(stack, in)) goto nomem;
            }
        }
    }
    if (order->n > 1) qsort(order->v, (size_t)order->n, sizeof *order->v, by_seq_desc);
    goto done;
nomem:
    st = tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory walking the graph");
done:
    return st;
}

/* *slot += g, holding an owned ref in *slot. */
static tg_status accumulate(tg_tensor **slot, tg_tensor *g) {
    if (!*slot) {
        tg_tensor_incref(g);
        *slot = g;
        return TG_OK;
    }
    tg_tensor *sum = tg_add(*slot, g);
    if (!sum) return tg_last_status();
    tg_tensor_incref(sum);
    tg_tensor_decref(*slot);
    *slot = sum;
    return TG_OK;
}

/* A leaf's .grad: added in place when the leaf owns its gradient outright (no graph,
 * no other holder, dense), otherwise replaced by a new sum. A gradient first stored
 * without create_graph is copied unless this call is its only holder, so later
 * in-place additions never write into a tensor that someone else sees. */
static tg_status accumulate_leaf(tg_tensor *leaf, tg_tensor *g, bool create_graph) {
    tg_tensor *cur = leaf->grad;
    if (cur && !create_graph && !cur->grad_fn && cur->refcount == 1 &&
        cur->storage->refcount == 1 && tg_tensor_is_dense(cur)) {
        tg_device *dev = cur->storage->dev;
        tg_tensor gv = *g; /* g has cur's shape */
        tg_status st = dev->be->binary(TG_BIN_ADD, cur, cur, &gv);
        cur->storage->version++;
        return st;
    }
    if (!cur && !create_graph) {
        bool owned = g->refcount == 1 && g->storage->refcount == 1 && tg_tensor_is_dense(g) && !g->grad_fn;
        tg_tensor *copy = owned ? g : tg_clone(tg_detach(g));
        if (!copy) return tg_last_status();
        tg_tensor_incref(copy);
        leaf->grad = copy;
        return TG_OK;
    }
    return accumulate(&leaf->grad, g);
}

static tg_status route(tg_node *n, int i, tg_tensor *g, const run_opts *o) {
    tg_edge *e = &n->inputs[i];
    char b1[128], b2[128];
    if (!tg_shape_equal(g->ndim, g->shape, e->ndim, e->shape) || g->dtype != e->dtype)
        return tg_error(TG_ERR_STATE, "tg_backward: internal: tg_%s gave a gradient %s %s for input %d of %s %s",
                        tg_op_names[n->op], tg_shape_str(b1, g->ndim, g->shape), tg_dtype_name(g->dtype),
                        i, tg_shape_str(b2, e->ndim, e->shape), tg_dtype_name(e->dtype));
    if (e->fn) return accumulate(&e->fn->grad_acc, g);
    if (o->n_capture == 0) return accumulate_leaf(e->leaf, g, o->create_graph);
    for (int k = 0; k < o->n_capture; k++)
        if (o->capture_in[k] == e->leaf) return accumulate(&o->capture_out[k], g);
    return TG_OK;
}

static tg_status run_node(tg_node *n, const run_opts *o) {
    for (int k = 0; k < o->n_capture; k++) /* a non-leaf input: its node's incoming grad */
        if (o->capture_in[k]->grad_fn == n) {
            tg_status st = accumulate(&o->capture_out[k], n->grad_acc);
            if (st != TG_OK) return st;
        }
    tg_tensor *gin[64] = { 0 }, **gp = n->n_inputs <= 64 ? gin : calloc((size_t)n->n_inputs, sizeof *gp);
    if (!gp) return tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory");
    tg_scope_begin();
    tg_status st = tg_op_backward[n->op](n, n->grad_acc, gp);
    for (int i = 0; i < n->n_inputs && st == TG_OK; i++)
        if (gp[i] && tg_node_needs(n, i)) st = route(n, i, gp[i], o);
    tg_scope_end();
    if (gp != gin) free(gp);
    return st;
}

static tg_status seed(tg_tensor *root, tg_tensor *grad, const run_opts *o) {
    char b1[128], b2[128];
    if (!root->requires_grad)
        return tg_error(TG_ERR_STATE, "tg_backward: the output does not require grad (no input on its "
                        "path was marked with tg_param, or grad mode was off)");
    if (!grad) {
        if (tg_shape_numel(root->ndim, root->shape) != 1)
            return tg_error(TG_ERR_SHAPE, "tg_backward: the output has shape %s; a gradient is implicit "
                            "only for one element (use tg_backward_ex)", tg_shape_str(b1, root->ndim, root->shape));
        grad = tg_ones_like(root);
        if (!grad) return tg_last_status();
    } else if (!tg_shape_equal(grad->ndim, grad->shape, root->ndim, root->shape) || grad->dtype != root->dtype ||
               grad->storage->dev != root->storage->dev) {
        return tg_error(TG_ERR_SHAPE, "tg_backward: grad_output %s %s does not match the output %s %s",
                        tg_shape_str(b1, grad->ndim, grad->shape), tg_dtype_name(grad->dtype),
                        tg_shape_str(b2, root->ndim, root->shape), tg_dtype_name(root->dtype));
    }
    if (root->grad_fn) return accumulate(&root->grad_fn->grad_acc, grad);
    for (int k = 0; k < o->n_capture; k++)
        if (o->capture_in[k] == root) return accumulate(&o->capture_out[k], grad);
    return o->n_capture ? TG_OK : accumulate_leaf(root, grad, o->create_graph);
}

static tg_status run(int n_roots, tg_tensor *const *roots, tg_tensor *const *grads, const run_opts *o) {
    node_list own[2], *order, *stack;
    bool borrowed = borrow_lists(&order, &stack, own);
    tg_status st = collect(order, stack, n_roots, roots);
    bool prev = tg_set_grad_enabled(o->create_graph);
    tg_scope_begin();
    for (int r = 0; r < n_roots && st == TG_OK; r++) st = seed(roots[r], grads ? grads[r] : NULL, o);
    for (int i = 0; i < order->n && st == TG_OK; i++)
        if (order->v[i]->grad_acc) st = run_node(order->v[i], o);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    for (int i = 0; i < order->n; i++) {
        tg_tensor_decref(order->v[i]->grad_acc);
        order->v[i]->grad_acc = NULL;
        if (!o->retain_graph && st == TG_OK) tg_node_release_saved(order->v[i]);
    }
    return_lists(borrowed, own);
    return st;
}

#define CHECK_TENSOR(t, what)                                                                  \
    do {                                                                                       \
        if (!(t)) {                                                                            \
            if (tg_last_status() == TG_OK) tg_error(TG_ERR_INVALID, "%s: " what " is NULL", fn); \
            return tg_last_status();                                                           \
        }                                                                                      \
    } while (0)

tg_status tg_backward_ex(tg_tensor *t, tg_tensor *grad_output, const tg_backward_opts *opts) {
    const char *fn = "tg_backward";
    CHECK_TENSOR(t, "the output");
    run_opts o = { 0 };
    if (opts) o.create_graph = opts->create_graph, o.retain_graph = opts->retain_graph || opts->create_graph;
    return run(1, &t, grad_output ? &grad_output : NULL, &o);
}

tg_status tg_backward(tg_tensor *loss) { return tg_backward_ex(loss, NULL, NULL); }

tg_status tg_autograd_grad(int n_outputs, tg_tensor *const *outputs, tg_tensor *const *grad_outputs,
                           int n_inputs, tg_tensor *const *inputs, tg_tensor **grads,
                           const tg_backward_opts *opts) {
    const char *fn = "tg_autograd_grad";
    if (n_outputs <= 0 || n_inputs <= 0 || !outputs || !inputs || !grads)
        return tg_error(TG_ERR_INVALID, "tg_autograd_grad: needs at least one output and one input");
    for (int i = 0; i < n_outputs; i++) CHECK_TENSOR(outputs[i], "an output");
    for (int i = 0; i < n_inputs; i++) {
        CHECK_TENSOR(inputs[i], "an input");
        if (!inputs[i]->requires_grad)
            return tg_error(TG_ERR_INVALID, "tg_autograd_grad: input %d does not require grad", i);
    }
    tg_tensor **caps = calloc((size_t)n_inputs, sizeof *caps);
    if (!caps) return tg_error(TG_ERR_NOMEM, "tg_autograd_grad: out of host memory");
    run_opts o = { .n_capture = n_inputs, .capture_in = inputs, .capture_out = caps };
    if (opts) o.create_graph = opts->create_graph, o.retain_graph = opts->retain_graph || opts->create_graph;
    tg_status st = run(n_outputs, outputs, grad_outputs, &o);
    for (int i = 0; i < n_inputs; i++) {
        grads[i] = NULL;
        if (st == TG_OK) {
            grads[i] = caps[i] ? caps[i] : tg_zeros_like(inputs[i]);
            if (caps[i]) tg_scope_add(caps[i]); /* our ref goes to the caller's scope */
        } else {
            tg_tensor_decref(caps[i]);
        }
    }
    free(caps);
    return st;
}
