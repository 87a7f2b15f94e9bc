/* The recorded graph as Graphviz DOT: walks the tape from a tensor's node (the nodes
 * and leaves its edges reference), orders the nodes as backward would (decreasing
 * sequence number) so that ids and text are stable, and writes ops, inputs and edges.
 * It reads the tape only: nothing is retained, released or run. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

/* An open-addressing set of pointers with an index each (nodes, then leaves). */
typedef struct {
    const void **keys;
    int *vals;
    int cap, n;
} ptrmap;

static size_t ptr_hash(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

static int map_get(const ptrmap *m, const void *k) {
    if (!m->cap) return -1;
    for (size_t i = ptr_hash(k) & (size_t)(m->cap - 1);; i = (i + 1) & (size_t)(m->cap - 1)) {
        if (!m->keys[i]) return -1;
        if (m->keys[i] == k) return m->vals[i];
    }
}

static bool map_put(ptrmap *m, const void *k, int v) {
    if (2 * (m->n + 1) > m->cap) {
        ptrmap g = { calloc((size_t)(m->cap ? 2 * m->cap : 64), sizeof *g.keys), NULL, m->cap ? 2 * m->cap : 64, 0 };
        g.vals = malloc((size_t)g.cap * sizeof *g.vals);
        if (!g.keys || !g.vals) {
            free(g.keys), free(g.vals);
            return false;
        }
        for (int i = 0; i < m->cap; i++)
            if (m->keys[i]) map_put(&g, m->keys[i], m->vals[i]);
        free(m->keys), free(m->vals);
        *m = g;
    }
    size_t i = ptr_hash(k) & (size_t)(m->cap - 1);
    while (m->keys[i]) i = (i + 1) & (size_t)(m->cap - 1);
    m->keys[i] = k, m->vals[i] = v, m->n++;
    return true;
}

typedef struct {
    tg_node **nodes;
    int n, cap;
    ptrmap seen;   /* node -> 1 */
    ptrmap leaves; /* leaf tensor -> its id */
    int n_leaves, n_consts;
    FILE *f;
    bool failed;   /* a write failed */
    const tg_dot_opts *o;
} dot_walk;

static bool push(dot_walk *w, tg_node *n) {
    if (map_get(&w->seen, n) >= 0) return true;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        tg_node **p = realloc(w->nodes, (size_t)cap * sizeof *p);
        if (!p) return false;
        w->nodes = p, w->cap = cap;
    }
    w->nodes[w->n++] = n;
    return map_put(&w->seen, n, 1);
}

/* Every node reachable from root, in w->nodes (unordered): the list is its own work list. */
static bool collect(dot_walk *w, tg_node *root) {
    if (!push(w, root)) return false;
    for (int i = 0; i < w->n; i++) {
        tg_node *n = w->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k].fn && !push(w, n->inputs[k].fn)) return false;
    }
    return true;
}

static int by_seq_desc(const void *a, const void *b) {
    uint64_t x = (*(tg_node *const *)a)->seq, y = (*(tg_node *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void out(dot_walk *w, const char *fmt, ...) TG_PRINTF(2, 3);
static void out(dot_walk *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(w->f, fmt, ap) < 0) w->failed = true;
    va_end(ap);
}

/* A DOT string body: quotes and backslashes escaped, newlines as \n. */
static void out_escaped(dot_walk *w, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') out(w, "\\%c", *s);
        else if (*s == '\n') out(w, "\\n");
        else if (fputc(*s, w->f) == EOF) w->failed = true;
    }
}

static void out_shape(dot_walk *w, int ndim, const int64_t *shape, tg_dtype dtype) {
    char sb[128];
    out(w, "\\n%s %s", tg_shape_str(sb, ndim, shape), tg_dtype_name(dtype));
}

static const char *leaf_name(const dot_walk *w, const tg_tensor *t) {
    for (int i = 0; i < w->o->n_names; i++)
        if (w->o->tensors[i] == t && w->o->names && w->o->names[i]) return w->o->names[i];
    return NULL;
}

static void out_leaf(dot_walk *w, const tg_tensor *t, int id) {
    const char *name = leaf_name(w, t);
    out(w, "  l%d [shape=ellipse, label=\"", id);
    out_escaped(w, name ? name : "leaf");
    out_shape(w, t->ndim, t->shape, t->dtype);
    out(w, "\\n%s\"];\n", t->requires_grad ? "requires_grad" : "no grad");
}

/* The word i of an op's argument names ("a b cond"), for edge labels; false if none. */
static bool arg_name(const char *args, int i, char *buf, size_t size) {
    for (; i > 0 && args; i--) args = (args = strchr(args, ' ')) ? args + 1 : NULL;
    if (!args || !*args) return false;
    size_t len = strcspn(args, " ");
    if (len + 1 > size) return false;
    memcpy(buf, args, len), buf[len] = 0;
    return true;
}

static void out_node(dot_walk *w, const tg_node *n, int id, bool root) {
    const char *op = tg_ops[n->op].name, *api = tg_node_name(n);
    out(w, "  n%d [shape=box, %slabel=\"", id, root ? "peripheries=2, " : "");
    if (n->op == TG_OP_FUNCTION && n->args.function.f && n->args.function.f->name) {
        out_escaped(w, n->args.function.f->name);
        out(w, "\\n(tg_function_apply)");
    } else {
        out(w, "%s", op);
        if (strcmp(api, op) != 0) out(w, "\\nin %s", api);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        if (n->n_outputs > 1) out(w, "\\n%d:", k);
        out_shape(w, n->outputs[k].ndim, n->outputs[k].shape, n->outputs[k].dtype);
    }
    out(w, "\"];\n");
}

/* The inputs of node id: leaves on first sight, then one edge per input. */
static bool out_inputs(dot_walk *w, const tg_node *n, int id) {
    for (int k = 0; k < n->n_inputs; k++) {
        const tg_edge *e = &n->inputs[k];
        char src[32], label[48] = "", arg[32];
        if (e->fn) {
            tg_node *p = e->fn;
            int pid = map_get(&w->seen, p);
            snprintf(src, sizeof src, "n%d", pid);
            if (p->n_outputs > 1) snprintf(label, sizeof label, "output %d", e->output_nr);
        } else if (e->leaf) {
            int lid = map_get(&w->leaves, e->leaf);
            if (lid < 0) {
                lid = w->n_leaves++;
                if (!map_put(&w->leaves, e->leaf, lid)) return false;
                out_leaf(w, e->leaf, lid);
            }
            snprintf(src, sizeof src, "l%d", lid);
        } else {
            int cid = w->n_consts++;
            out(w, "  c%d [shape=ellipse, style=dashed, label=\"input", cid);
            out_shape(w, e->ndim, e->shape, e->dtype);
            out(w, "\\nno grad\"];\n");
            snprintf(src, sizeof src, "c%d", cid);
        }
        if (n->n_inputs > 1 && arg_name(tg_ops[n->op].args, k, arg, sizeof arg))
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%s", *label ? " " : "", arg);
        out(w, "  %s -> n%d%s%s%s;\n", src, id, *label ? " [label=\"" : "", label, *label ? "\"]" : "");
    }
    return true;
}

static tg_status check_opts(const char *api, const tg_dot_opts *o) {
    if (o->n_names < 0) return tg_error(TG_ERR_INVALID, "%s: n_names is %d (negative)", api, o->n_names);
    if (o->n_names > 0 && (!o->tensors || !o->names))
        return tg_error(TG_ERR_INVALID, "%s: n_names is %d but tensors or names is NULL", api, o->n_names);
    return TG_OK;
}

static tg_status write_dot(const char *api, FILE *f, const tg_tensor *t, const tg_dot_opts *opts) {
    static const tg_dot_opts defaults = { 0 };
    const tg_dot_opts *o = opts ? opts : &defaults;
    tg_status st = check_opts(api, o);
    if (st) return st;
    dot_walk w = { .f = f, .o = o };
    st = TG_ERR_NOMEM;
    if (t->grad_fn && !collect(&w, t->grad_fn)) goto fail;
    if (w.n) qsort(w.nodes, (size_t)w.n, sizeof *w.nodes, by_seq_desc);
    free(w.seen.keys), free(w.seen.vals); /* again, with each node's id */
    w.seen = (ptrmap){ 0 };
    for (int i = 0; i < w.n; i++)
        if (!map_put(&w.seen, w.nodes[i], i)) goto fail;
    out(&w, "digraph \"");
    out_escaped(&w, o->graph_name ? o->graph_name : "tapegrad");
    out(&w, "\" {\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    if (!t->grad_fn) out_leaf(&w, t, w.n_leaves++);
    for (int i = 0; i < w.n; i++) {
        out_node(&w, w.nodes[i], i, w.nodes[i] == t->grad_fn);
        if (!out_inputs(&w, w.nodes[i], i)) goto fail;
    }
    out(&w, "}\n");
    if (fflush(f) != 0) w.failed = true;
    st = w.failed ? tg_error(TG_ERR_IO, "%s: writing the graph failed: %s", api, strerror(errno)) : TG_OK;
    if (0) {
    fail:
        tg_error(TG_ERR_NOMEM, "%s: out of memory walking the graph", api);
    }
    free(w.nodes), free(w.seen.keys), free(w.seen.vals), free(w.leaves.keys), free(w.leaves.vals);
    return st;
}

tg_status tg_graph_dot(FILE *f, const tg_tensor *t, const tg_dot_opts *opts) {
    TG_API_ENTER("tg_graph_dot");
    if (!f) return tg_error(TG_ERR_INVALID, "tg_graph_dot: f is NULL");
    if (!tg_tensor_check("tg_graph_dot", "t", t)) return tg_last_status();
    return write_dot("tg_graph_dot", f, t, opts);
}

tg_status tg_graph_dot_save(const char *path, const tg_tensor *t, const tg_dot_opts *opts) {
    TG_API_ENTER("tg_graph_dot_save");
    if (!path) return tg_error(TG_ERR_INVALID, "tg_graph_dot_save: path is NULL");
    if (!tg_tensor_check("tg_graph_dot_save", "t", t)) return tg_last_status();
    FILE *f = fopen(path, "w");
    if (!f) return tg_error(TG_ERR_IO, "tg_graph_dot_save: cannot open '%s' for writing: %s", path, strerror(errno));
    tg_status st = write_dot("tg_graph_dot_save", f, t, opts);
    if (fclose(f) != 0 && st == TG_OK)
        st = tg_error(TG_ERR_IO, "tg_graph_dot_save: writing '%s' failed: %s", path, strerror(errno));
    return st;
}
