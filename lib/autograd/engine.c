/* The backward engine: visits the nodes reachable from the outputs in decreasing
 * sequence number (a valid reverse topological order, since a node is always created
 * after its inputs' nodes), runs each rule, and sums gradients into the next nodes and
 * into leaves. Rules are op-builder code, so with create_graph they record themselves.
 *
 * All state of a run lives in a walk: the nodes found, a hash from node to its place,
 * and one gradient slot per node output. Nothing is written on the nodes, so a
 * backward inside a backward (a hook, a custom op) or on another thread cannot clobber
 * another run. A thread's walk keeps its capacity between calls: a steady-state step
 * allocates nothing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

typedef struct {
    tg_node **order; /* every node reached, sorted by decreasing seq */
    int n, cap;
    tg_node **stack;
    int sn, scap;
    tg_node **keys;  /* open-addressing hash: node -> index in order */
    int *vals, hcap;
    int *first, fcap; /* first gradient slot of order[i] */
    tg_tensor **grads;
    int gcap;
    /* products deferred by tg_node_defer_tn_product: a list per gradient slot */
    struct deferred {
        tg_tensor *x, *g; /* owned refs; the product is x^T @ g */
        int next;         /* the slot's next entry, or -1 */
    } *def;
    int dn, dcap;
    int *def_head, dhcap; /* per slot: its first entry, or -1 */
} walk;

typedef struct {
    bool create_graph, retain_graph;
    int n_capture;           /* tg_autograd_grad: inputs whose gradients are returned */
    tg_tensor *const *capture_in;
    tg_tensor **capture_out; /* owned refs while running */
    walk *w;
} run_opts;

static _Thread_local walk g_walk;
static _Thread_local bool g_walk_busy;
static pthread_key_t g_walk_key;
static pthread_once_t g_walk_once = PTHREAD_ONCE_INIT;

static void walk_free(void *arg) {
    walk *w = arg;
    free(w->order), free(w->stack), free(w->keys), free(w->vals), free(w->first), free(w->grads);
    free(w->def), free(w->def_head);
    memset(w, 0, sizeof *w);
}

static void make_key(void) { pthread_key_create(&g_walk_key, walk_free); }

/* The thread's walk, or a fresh one when a backward is already running here. */
static walk *walk_borrow(walk *own) {
    if (g_walk_busy) {
        memset(own, 0, sizeof *own);
        return own;
    }
    pthread_once(&g_walk_once, make_key);
    pthread_setspecific(g_walk_key, &g_walk);
    g_walk_busy = true;
    g_walk.n = g_walk.sn = 0;
    return &g_walk;
}

static void walk_return(walk *w) {
    if (w == &g_walk) g_walk_busy = false;
    else walk_free(w);
}

static bool grow(void **v, int *cap, int need, size_t elsize) {
    if (need <= *cap) return true;
    int c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *nv = realloc(*v, (size_t)c * elsize);
    if (!nv) return false;
    *v = nv;
    *cap = c;
    return true;
}

static size_t hash_of(const tg_node *n, int hcap) {
    uintptr_t h = (uintptr_t)n;
    h ^= h >> 17, h *= 0x9e3779b97f4a7c15u, h ^= h >> 29;
    return (size_t)h & (size_t)(hcap - 1);
}

/* Index of n in the hash (its slot), inserting it if absent; *added tells which. */
static int hash_slot(walk *w, tg_node *n, bool *added) {
    size_t i = hash_of(n, w->hcap);
    while (w->keys[i] && w->keys[i] != n) i = (i + 1) & (size_t)(w->hcap - 1);
    *added = !w->keys[i];
    if (*added) w->keys[i] = n;
    return (int)i;
}

static int index_of(walk *w, tg_node *n) {
    bool added;
    int s = hash_slot(w, n, &added);
    return added ? -1 : w->vals[s];
}

/* The hash holds at most half its slots: rebuilt larger from `order` when needed. */
static bool hash_reserve(walk *w, int count) {
    if (2 * count <= w->hcap) return true;
    int cap = w->hcap ? w->hcap : 256;
    while (cap < 2 * count) cap *= 2;
    tg_node **keys = calloc((size_t)cap, sizeof *keys);
    int *vals = malloc((size_t)cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys), free(vals);
        return false;
    }
    free(w->keys), free(w->vals);
    w->keys = keys, w->vals = vals, w->hcap = cap;
    for (int i = 0; i < w->n; i++) {
        bool added;
        w->vals[hash_slot(w, w->order[i], &added)] = i;
    }
    return true;
}

static int by_seq_desc(const void *a, const void *b) {
    uint64_t sa = (*(tg_node *const *)a)->seq, sb = (*(tg_node *const *)b)->seq;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* Adds n to the walk unless seen; false when out of memory. */
static bool visit(walk *w, tg_node *n) {
    if (!hash_reserve(w, w->n + 1)) return false;
    bool added;
    int s = hash_slot(w, n, &added);
    if (!added) return true;
    if (!grow((void **)&w->order, &w->cap, w->n + 1, sizeof *w->order) ||
        !grow((void **)&w->stack, &w->scap, w->sn + 1, sizeof *w->stack))
        return false;
    w->vals[s] = w->n;
    w->order[w->n++] = n;
    w->stack[w->sn++] = n;
    return true;
}

/* Depth-first over input edges with an explicit stack, then sorted, then one
 * gradient slot per output of every node. */
static tg_status collect(walk *w, int n_roots, tg_tensor *const *roots) {
    if (w->keys) memset(w->keys, 0, (size_t)w->hcap * sizeof *w->keys);
    for (int r = 0; r < n_roots; r++)
        if (roots[r]->grad_fn && !visit(w, roots[r]->grad_fn)) goto nomem;
    while (w->sn > 0) {
        tg_node *n = w->stack[--w->sn];
        if (n->released)
            return tg_error(TG_ERR_STATE, "tg_backward: the graph through %s was already freed by a backward pass; "
                            "pass retain_graph to run backward twice", tg_node_name(n));
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i].fn && !visit(w, n->inputs[i].fn)) goto nomem;
    }
    if (w->n > 1) qsort(w->order, (size_t)w->n, sizeof *w->order, by_seq_desc);
    int slots = 0;
    if (!grow((void **)&w->first, &w->fcap, w->n, sizeof *w->first)) goto nomem;
    for (int i = 0; i < w->n; i++) {
        bool added;
        w->vals[hash_slot(w, w->order[i], &added)] = i;
        w->first[i] = slots;
        slots += w->order[i]->n_outputs;
    }
    if (!grow((void **)&w->grads, &w->gcap, slots, sizeof *w->grads) ||
        !grow((void **)&w->def_head, &w->dhcap, slots, sizeof *w->def_head))
        goto nomem;
    if (slots) memset(w->grads, 0, (size_t)slots * sizeof *w->grads);
    for (int s = 0; s < slots; s++) w->def_head[s] = -1;
    w->dn = 0;
    return TG_OK;
nomem:
    return tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory walking the graph");
}

static tg_tensor **grad_slot(walk *w, tg_node *n, int output_nr) {
    int i = index_of(w, n);
    TG_ASSERT(i >= 0);
    return &w->grads[w->first[i] + output_nr];
}

/* Whether the sum may be written into s: unrecorded, and s is a dense temporary that
 * nothing but its slot holds (no view, no saved copy, no other slot, not a leaf's .grad)
 * and of g's shape and dtype. A residual network's skip connections make one such sum
 * per block; in place it needs no fresh buffer the size of the activation. */
static bool may_add_into(const tg_tensor *s, const tg_tensor *g) {
    return !tg_is_grad_enabled() && atomic_load(&s->refcount) == 1 && atomic_load(&s->storage->refcount) == 1 &&
           !s->grad_fn && !s->requires_grad && tg_tensor_is_dense(s) && s->dtype == g->dtype &&
           s->storage->dev == g->storage->dev && tg_shape_equal(s->ndim, s->shape, g->ndim, g->shape);
}

/* *slot += g, holding an owned ref in *slot. */
static tg_status accumulate(tg_tensor **slot, tg_tensor *g) {
    if (!*slot) {
        tg_tensor_incref(g);
        *slot = g;
        return TG_OK;
    }
    if (may_add_into(*slot, g)) return tg_add_(*slot, g);
    tg_tensor *sum = tg_add(*slot, g);
    if (!sum) return tg_last_status();
    tg_tensor_incref(sum);
    tg_tensor_decref(*slot);
    *slot = sum;
    return TG_OK;
}

/* The run whose rule is executing on this thread, for tg_node_defer_tn_product. */
static _Thread_local const run_opts *g_active;

bool tg_node_defer_tn_product(tg_node *n, int i, tg_tensor *x, tg_tensor *g) {
    const run_opts *o = g_active;
    tg_edge *e = &n->inputs[i];
    if (!o || o->create_graph || !e->fn || x->ndim != 2 || g->ndim != 2 || x->shape[0] != g->shape[0] ||
        e->ndim != 2 || e->shape[0] != x->shape[1] || e->shape[1] != g->shape[1] || x->dtype != e->dtype ||
        g->dtype != e->dtype || x->storage->dev != e->dev || g->storage->dev != e->dev)
        return false;
    walk *w = o->w;
    if (!grow((void **)&w->def, &w->dcap, w->dn + 1, sizeof *w->def)) return false;
    int *head = &w->def_head[w->first[index_of(w, e->fn)] + e->output_nr];
    tg_tensor_incref(x), tg_tensor_incref(g);
    w->def[w->dn] = (struct deferred){ x, g, *head };
    *head = w->dn++;
    return true;
}

/* Adds the slot's deferred products into it: one matmul of the stacked operands. */
static tg_status flush_deferred(walk *w, int slot) {
    int count = 0;
    for (int d = w->def_head[slot]; d >= 0; d = w->def[d].next) count++;
    if (count == 0) return TG_OK;
    tg_tensor *small[2 * 16], **ops = count <= 16 ? small : malloc(2 * (size_t)count * sizeof *ops);
    if (!ops) return tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory");
    int k = count;
    for (int d = w->def_head[slot]; d >= 0; d = w->def[d].next) { /* back into the order they came in */
        k--;
        ops[k] = w->def[d].x, ops[count + k] = w->def[d].g;
    }
    tg_scope_begin();
    tg_tensor *x = count == 1 ? ops[0] : tg_cat(count, ops, 0), *g = count == 1 ? ops[count] : tg_cat(count, ops + count, 0);
    tg_tensor *prod = x && g ? tg_matmul(tg_transpose(x, 0, 1), g) : NULL;
    tg_status st = prod ? accumulate(&w->grads[slot], prod) : tg_last_status();
    tg_scope_end();
    for (int d = w->def_head[slot]; d >= 0; d = w->def[d].next) {
        tg_tensor_decref(w->def[d].x), tg_tensor_decref(w->def[d].g);
        w->def[d].x = w->def[d].g = NULL;
    }
    w->def_head[slot] = -1;
    if (ops != small) free(ops);
    return st;
}

/* A leaf's .grad is its own buffer, kept for the leaf's life: the first gradient is
 * adopted when it is a temporary of this run that nobody else sees (else copied), and
 * every later one is added into it in place, so tg_grad's pointer stays valid. */
static tg_status accumulate_leaf(tg_tensor *leaf, tg_tensor *g, bool may_adopt) {
    if (leaf->grad) return tg_add_(leaf->grad, g);
    bool adopt = may_adopt && atomic_load(&g->refcount) == 1 && atomic_load(&g->storage->refcount) == 1 &&
                 !g->grad_fn && !g->requires_grad && tg_tensor_is_dense(g) && tg_scope_owns(g);
    tg_tensor *own = adopt ? g : tg_clone(g);
    if (!own) return tg_last_status();
    tg_tensor_incref(own);
    leaf->grad = own;
    return TG_OK;
}

/* A gradient reaching a leaf: through its hooks, then into .grad or the captured slot. */
static tg_status to_leaf(tg_tensor *leaf, tg_tensor *g, const run_opts *o, bool may_adopt) {
    tg_status st = TG_OK;
    if (leaf->hooks) {
        tg_tensor_incref(g);
        st = tg_hooks_run(leaf->hooks, 0, &g);
        may_adopt = false;
    }
    if (st == TG_OK && o->n_capture == 0) st = accumulate_leaf(leaf, g, may_adopt);
    for (int k = 0; k < o->n_capture && st == TG_OK; k++)
        if (o->capture_in[k] == leaf) st = accumulate(&o->capture_out[k], g);
    if (leaf->hooks) tg_tensor_decref(g);
    return st;
}

static tg_status route(tg_node *n, int i, tg_tensor *g, const run_opts *o) {
    tg_edge *e = &n->inputs[i];
    char b1[128], b2[128];
    if (!tg_shape_equal(g->ndim, g->shape, e->ndim, e->shape) || g->dtype != e->dtype || g->storage->dev != e->dev)
        return tg_error(TG_ERR_STATE, "tg_backward: internal: %s gave a gradient %s %s on %s for input %d of %s %s on %s",
                        tg_node_name(n), tg_shape_str(b1, g->ndim, g->shape), tg_dtype_name(g->dtype),
                        g->storage->dev->name, i, tg_shape_str(b2, e->ndim, e->shape), tg_dtype_name(e->dtype),
                        e->dev->name);
    if (e->fn) return accumulate(grad_slot(o->w, e->fn, e->output_nr), g);
    return to_leaf(e->leaf, g, o, true);
}

/* The gradients of n's outputs, zeros for outputs that got none (some did). */
static tg_status output_grads(tg_node *n, tg_tensor **slots, tg_tensor **gout) {
    for (int k = 0; k < n->n_outputs; k++) {
        gout[k] = slots[k];
        if (gout[k]) continue;
        const tg_output_meta *m = &n->outputs[k];
        if (!m->dev) continue; /* an output that is not differentiable (indices) gets NULL */
        tg_shape s = { .ndim = m->ndim };
        memcpy(s.dims, m->shape, sizeof s.dims);
        if (!(gout[k] = tg_zeros(m->dtype, s, m->dev))) return tg_last_status();
    }
    return TG_OK;
}

static tg_status run_node(tg_node *n, tg_tensor **slots, const run_opts *o) {
    tg_status st = TG_OK;
    for (int k = 0; k < n->n_outputs && st == TG_OK && n->hooks; k++) /* each output's gradient is complete */
        if (slots[k]) st = tg_hooks_run(n->hooks, k, &slots[k]);
    for (int k = 0; k < o->n_capture && st == TG_OK; k++) /* a non-leaf input: the grad its node receives */
        if (o->capture_in[k]->grad_fn == n && slots[o->capture_in[k]->output_nr])
            st = accumulate(&o->capture_out[k], slots[o->capture_in[k]->output_nr]);
    tg_tensor *gin[64] = { 0 }, *gout_small[8];
    tg_tensor **gp = n->n_inputs <= 64 ? gin : calloc((size_t)n->n_inputs, sizeof *gp);
    tg_tensor **gout = n->n_outputs <= 8 ? gout_small : calloc((size_t)n->n_outputs, sizeof *gout);
    if (!gp || !gout) st = tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory");
    tg_scope_begin();
    if (st == TG_OK) st = output_grads(n, slots, gout);
    const run_opts *outer = g_active;
    g_active = o;
    if (st == TG_OK) st = tg_ops[n->op].backward(n, gout, gp);
    g_active = outer;
    for (int i = 0; i < n->n_inputs && st == TG_OK; i++)
        if (gp[i] && tg_node_needs(n, i)) st = route(n, i, gp[i], o);
    tg_scope_end();
    if (gp && gp != gin) free(gp);
    if (gout && gout != gout_small) free(gout);
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
    } else if (grad->storage->dev != root->storage->dev) {
        return tg_error(TG_ERR_DEVICE, "tg_backward: grad_output is on %s but the output is on %s",
                        grad->storage->dev->name, root->storage->dev->name);
    } else if (!tg_shape_equal(grad->ndim, grad->shape, root->ndim, root->shape) || grad->dtype != root->dtype) {
        return tg_error(TG_ERR_SHAPE, "tg_backward: grad_output %s %s does not match the output %s %s",
                        tg_shape_str(b1, grad->ndim, grad->shape), tg_dtype_name(grad->dtype),
                        tg_shape_str(b2, root->ndim, root->shape), tg_dtype_name(root->dtype));
    }
    if (root->grad_fn) return accumulate(grad_slot(o->w, root->grad_fn, root->output_nr), grad);
    return to_leaf(root, grad, o, false); /* never adopt the caller's tensor */
}

static tg_status run(int n_roots, tg_tensor *const *roots, tg_tensor *const *grads, run_opts *o) {
    walk own, *w = walk_borrow(&own);
    o->w = w;
    tg_status st = collect(w, n_roots, roots);
    bool collected = st == TG_OK; /* else the slots were never laid out for this run */
    bool prev = tg_set_grad_enabled(o->create_graph);
    tg_scope_begin();
    for (int r = 0; r < n_roots && st == TG_OK; r++) st = seed(roots[r], grads ? grads[r] : NULL, o);
    for (int i = 0; i < w->n && st == TG_OK; i++) {
        tg_tensor **slots = &w->grads[w->first[i]];
        bool any = false;
        for (int k = 0; k < w->order[i]->n_outputs && st == TG_OK; k++) {
            st = flush_deferred(w, w->first[i] + k);
            any |= slots[k] != NULL;
        }
        if (any && st == TG_OK) st = run_node(w->order[i], slots, o);
        for (int k = 0; k < w->order[i]->n_outputs; k++) { /* consumed: its memory can serve the next nodes */
            tg_tensor_decref(slots[k]);
            slots[k] = NULL;
        }
    }
    tg_scope_end();
    tg_set_grad_enabled(prev);
    for (int i = 0; collected && i < w->n; i++) {
        tg_tensor **slots = &w->grads[w->first[i]];
        for (int k = 0; k < w->order[i]->n_outputs; k++) {
            tg_tensor_decref(slots[k]);
            slots[k] = NULL;
        }
        if (!o->retain_graph && st == TG_OK) tg_node_release_saved(w->order[i]);
    }
    for (int d = 0; collected && d < w->dn; d++) /* left by an error */
        tg_tensor_decref(w->def[d].x), tg_tensor_decref(w->def[d].g);
    if (collected) w->dn = 0;
    walk_return(w);
    return st;
}

static bool check_tensor(const char *fn, const char *what, const tg_tensor *t) {
    return tg_tensor_check(fn, what, t);
}

tg_status tg_backward_ex(tg_tensor *t, tg_tensor *grad_output, const tg_backward_opts *opts) {
    TG_API_ENTER("tg_backward");
    if (!check_tensor("tg_backward", "the output", t) ||
        (grad_output && !check_tensor("tg_backward", "grad_output", grad_output)))
        return tg_last_status();
    run_opts o = { 0 };
    if (opts && opts->create_graph)
        return tg_error(TG_ERR_INVALID, "tg_backward: create_graph would store in each leaf's .grad a gradient whose "
                        "graph refers back to the leaf (a reference cycle that is never freed); take higher-order "
                        "gradients with tg_autograd_grad");
    if (opts) o.retain_graph = opts->retain_graph;
    return run(1, &t, grad_output ? &grad_output : NULL, &o);
}

tg_status tg_backward(tg_tensor *loss) {
    TG_API_ENTER("tg_backward");
    return tg_backward_ex(loss, NULL, NULL);
}

tg_status tg_autograd_grad(int n_outputs, tg_tensor *const *outputs, tg_tensor *const *grad_outputs,
                           int n_inputs, tg_tensor *const *inputs, tg_tensor **grads,
                           const tg_backward_opts *opts) {
    TG_API_ENTER("tg_autograd_grad");
    const char *fn = "tg_autograd_grad";
    if (n_outputs <= 0 || n_inputs <= 0 || !outputs || !inputs || !grads)
        return tg_error(TG_ERR_INVALID, "tg_autograd_grad: needs at least one output and one input");
    for (int i = 0; i < n_outputs; i++)
        if (!check_tensor(fn, "an output", outputs[i]) || (grad_outputs && grad_outputs[i] &&
                                                           !check_tensor(fn, "a grad_output", grad_outputs[i])))
            return tg_last_status();
    for (int i = 0; i < n_inputs; i++) {
        if (!check_tensor(fn, "an input", inputs[i])) return tg_last_status();
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
        if (st != TG_OK) {
            tg_tensor_decref(caps[i]);
        } else if (caps[i]) {
            grads[i] = tg_scope_add(caps[i]) == TG_OK ? caps[i] : NULL; /* our ref goes to the caller's scope */
            if (!grads[i]) st = tg_last_status();
        } else {
            grads[i] = tg_zeros_like(inputs[i]);
        }
    }
    free(caps);
    return st;
}
