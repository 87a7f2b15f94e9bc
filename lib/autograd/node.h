/* Tape nodes: what an op records so that backward can run. A node holds refs on the
 * tensors it saved and on the nodes (or leaves) of its inputs, never on its outputs
 * (a saved output is kept as a detached alias), so the graph the ops build has no
 * cycles. The one way to make one, storing a create_graph gradient in a leaf's .grad,
 * is refused by tg_backward (see engine.c). A node lives while anything downstream
 * references it; freeing a long chain uses a work list, not recursion.
 *
 * A node has one or more outputs (output_nr on each output tensor). Gradients flowing
 * into a node during backward are kept by the backward run, never on the node, so a
 * backward inside a backward, or on another thread, cannot clobber them. */
#ifndef TG_NODE_H
#define TG_NODE_H

#include "lib/ops/op-table.h"

#define TG_NODE_SMALL_SAVED 4
#define TG_NODE_SMALL_OUTPUTS 1

typedef struct {
    tg_node *fn;      /* the input's producer (owned ref), or NULL */
    int output_nr;    /* which output of fn the input is */
    tg_tensor *leaf;  /* or the input itself if it is a leaf requiring grad (owned ref) */
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    tg_dtype dtype;
    tg_device *dev;
} tg_edge;

typedef struct {
    tg_tensor *t;      /* owned ref */
    uint32_t version;  /* the storage version when saved */
    bool is_output;    /* t is a detached alias of output output_nr of the node */
    int output_nr;
} tg_saved;

/* What backward needs to know of an output it got no gradient for (zeros of this). */
typedef struct {
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    tg_dtype dtype;
    tg_device *dev;
} tg_output_meta;

struct tg_node {
    _Atomic int refcount;
    uint64_t seq;      /* creation order: backward runs in decreasing seq */
    int op;            /* tg_op */
    const char *api;   /* the public function whose call recorded it, for messages */
    int n_inputs, n_outputs;
    tg_edge *inputs;   /* small_inputs or a heap array (cat) */
    tg_edge small_inputs[3];
    tg_output_meta *outputs; /* small_outputs or a heap array */
    tg_output_meta small_outputs[TG_NODE_SMALL_OUTPUTS];
    tg_saved *saved;   /* small_saved or a heap array */
    tg_saved small_saved[TG_NODE_SMALL_SAVED];
    int n_saved, cap_saved;
    bool released;     /* saved tensors dropped after a backward without retain_graph */
    bool incomplete;   /* a save ran out of memory: backward reports it */
    tg_op_args args;   /* the op's typed parameters */
    tg_hook *hooks;    /* gradient hooks of its outputs (owned) */
    tg_node *free_next; /* the free work list */
};

struct tg_hook {
    tg_grad_hook fn;
    void *ctx;
    int output_nr;     /* on a node: which output's gradient it sees */
    tg_hook *next;
};

/* Runs the hooks for one gradient in order (those of output_nr when on a node):
 * *g is replaced by what each returns (an owned ref in *g is kept right). */
tg_status tg_hooks_run(const tg_hook *h, int output_nr, tg_tensor **g);

/* True when grad mode and some input requires grad. */
bool tg_node_should_record(int n, tg_tensor *const *inputs);
/* Creates the node for out (out->grad_fn = node, out->requires_grad = true). Returns
 * NULL only when out of memory (message set); the op then fails. */
tg_node *tg_node_record(tg_op op, tg_tensor *out, int n, tg_tensor *const *inputs);
/* The same for an op with several outputs: each gets grad_fn = node and its output_nr;
 * outputs that are not differentiable (indices) are passed as NULL and get no node. */
tg_node *tg_node_record_multi(int op, int n_out, tg_tensor *const *outs, int n, tg_tensor *const *inputs);
/* Saves an input (or any tensor computed before the op) for backward. */
void tg_node_save(tg_node *n, tg_tensor *t);
/* Saves the op's output without a ref cycle (see node.c); out->output_nr says which. */
void tg_node_save_output(tg_node *n, tg_tensor *out);
/* The i-th saved tensor, for a backward rule: NULL with a message if it was freed or
 * modified in place. A saved output comes back attached to n when grad mode is on. */
tg_tensor *tg_node_saved(tg_node *n, int i);
/* Whether input i needs a gradient (rules skip work for the others). */
static inline bool tg_node_needs(const tg_node *n, int i) {
    return n->inputs[i].fn || n->inputs[i].leaf;
}
/* The name to show for a node in messages: the public function whose call recorded
 * it ("tg_flatten", not the tg_reshape it made inside). */
const char *tg_node_name(const tg_node *n);
void tg_node_release_saved(tg_node *n);

/* For a backward rule, in a backward without create_graph: hands the engine the product
 * x^T @ g (x: [K, M], g: [K, N]) as a part of input i's gradient ([M, N]) instead of
 * computing it. The engine sums every such product a node output receives in one GEMM
 * over the stacked K, when that node's turn comes: a weight shared by T time steps then
 * gets one [M, T*K] @ [T*K, N] product instead of T thin ones and T additions. False
 * (nothing taken) when it cannot defer (create_graph, a leaf input, another shape or
 * device): the rule computes the product itself then. */
bool tg_node_defer_tn_product(tg_node *n, int i, tg_tensor *x, tg_tensor *g);


#endif
