/* Tape nodes: what an op records so that backward can run. A node holds refs on the
 * tensors it saved and on the nodes (or leaves) of its inputs, never on its output,
 * so the graph has no cycles; it lives while anything downstream references it. */
#ifndef TG_NODE_H
#define TG_NODE_H

#include "lib/ops/op-table.h"

#define TG_NODE_MAX_SAVED 4

typedef struct {
    tg_node *fn;      /* the input's producer (owned ref), or NULL */
    tg_tensor *leaf;  /* or the input itself if it is a leaf requiring grad (owned ref) */
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    tg_dtype dtype;
    tg_device *dev;
} tg_edge;

typedef struct {
    tg_tensor *t;      /* owned ref */
    uint32_t version;  /* the storage version when saved */
    bool is_output;    /* t is a detached alias of the node's output */
} tg_saved;

struct tg_node {
    int refcount;
    uint64_t seq;      /* creation order: backward runs in decreasing seq */
    tg_op op;
    int n_inputs;
    tg_edge *inputs;   /* points at small_inputs or a heap array (cat) */
    tg_edge small_inputs[3];
    tg_saved saved[TG_NODE_MAX_SAVED];
    int n_saved;
    bool released;     /* saved tensors dropped after a backward without retain_graph */
    /* op parameters */
    int iarg[2 * TG_MAX_DIMS + 2];
    int64_t larg[2 * TG_MAX_DIMS];
    double farg[2];
    /* backward engine scratch */
    tg_tensor *grad_acc;
    int visit_mark;
};

/* True when grad mode is on and some input requires grad. */
bool tg_should_record(int n, tg_tensor *const *inputs);
/* Creates the node for out (out->grad_fn = node, out->requires_grad = true). Returns
 * NULL only when out of memory (message set); the op then fails. */
tg_node *tg_record(tg_op op, tg_tensor *out, int n, tg_tensor *const *inputs);
/* Saves an input (or any tensor computed before the op) for backward. */
void tg_node_save(tg_node *n, tg_tensor *t);
/* Saves the op's output without a ref cycle (see node.c). */
void tg_node_save_output(tg_node *n, tg_tensor *out);
/* The i-th saved tensor, for a backward rule: NULL with a message if it was freed or
 * modified in place. A saved output comes back attached to n when grad mode is on. */
tg_tensor *tg_node_saved(tg_node *n, int i);
/* Whether input i needs a gradient (rules skip work for the others). */
static inline bool tg_node_needs(const tg_node *n, int i) {
    return n->inputs[i].fn || n->inputs[i].leaf;
}
void tg_node_release_saved(tg_node *n);

#endif
