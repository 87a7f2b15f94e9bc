/* The module tree: registration, lookup by dotted path, named iteration, train/eval,
 * freezing, moving to a device, replacing a child, forward with hooks, printing.
 * A module's parameters, buffers and children are exactly what its constructor
 * registered; every operation here walks those lists. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/nn/module-impl.h"

/* ------------------------------------------------------------- helpers */

char *tg_nn_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

tg_tensor *tg_nn_scalar(tg_dtype dtype, double v, tg_device *dev) {
    if (dtype == TG_F32 || dtype == TG_F64) return tg_scalar(dtype, v, dev);
    int64_t i64 = (int64_t)v;
    int32_t i32 = (int32_t)v;
    uint8_t u8 = (uint8_t)v;
    const void *p = dtype == TG_I64 ? (const void *)&i64 : dtype == TG_I32 ? (const void *)&i32 : (const void *)&u8;
    return tg_from_data(p, dtype, TG_SCALAR_SHAPE, dev);
}

bool tg_nn_grow(void **v, int *cap, int n, size_t elsize) {
    if (n < *cap) return true;
    int nc = *cap ? 2 * *cap : 4;
    void *nv = realloc(*v, (size_t)nc * elsize);
    if (!nv) return false;
    *v = nv;
    *cap = nc;
    return true;
}

const char *tg_nn_shape_str(char *buf, size_t size, const tg_tensor *t) {
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < tg_ndim(t) && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)tg_size(t, i));
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

const char *tg_nn_path(char *buf, size_t size, const tg_module *m) {
    const tg_module *chain[64];
    int n = 0;
    for (const tg_module *p = m; p && p->parent && n < 64; p = p->parent) chain[n++] = p;
    size_t len = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && len < size; i--)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i == n - 1 ? "" : ".", chain[i]->name);
    return buf;
}

tg_nn_entry *tg_nn_find_entry(const tg_module *m, const char *name, bool buffer) {
    int n = buffer ? m->buffers.n : m->params.n;
    tg_nn_entry *v = buffer ? m->buffers.v : m->params.v;
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name)) return &v[i];
    return NULL;
}

static tg_nn_child *find_child(const tg_module *m, const char *name) {
    for (int i = 0; i < m->children.n; i++)
        if (!strcmp(m->children.v[i].name, name)) return &m->children.v[i];
    return NULL;
}

/* ------------------------------------------------------------- life */

tg_module *tg_module_new(const tg_module_type *type) {
    if (!type || !type->name) return tg_error_null(TG_ERR_INVALID, "tg_module_new: type or its name is NULL");
    tg_module *m = calloc(1, sizeof *m + type->data_size);
    char *name = tg_nn_strdup("");
    if (!m || !name) {
        free(m);
        free(name);
        return tg_error_null(TG_ERR_NOMEM, "tg_module_new: out of memory");
    }
    m->type = type;
    m->name = name;
    m->training = true;
    m->next_hook_id = 1;
    return m;
}

static void free_tree(tg_module *m) {
    if (m->type->free_data) m->type->free_data(m);
    for (int i = 0; i < m->params.n; i++) tg_release(m->params.v[i].t), free(m->params.v[i].name);
    for (int i = 0; i < m->buffers.n; i++) tg_release(m->buffers.v[i].t), free(m->buffers.v[i].name);
    for (int i = 0; i < m->children.n; i++) free_tree(m->children.v[i].m), free(m->children.v[i].name);
    free(m->params.v);
    free(m->buffers.v);
    free(m->children.v);
    free(m->hooks.v);
    free(m->failed_msg);
    free(m->name);
    free(m);
}

void tg_module_free(tg_module *m) {
    if (!m) return;
    if (m->parent) {
        tg_error(TG_ERR_STATE, "tg_module_free: %s '%s' belongs to a %s, which frees it", m->type->name, m->name,
                 m->parent->type->name);
        return;
    }
    free_tree(m);
}

void *tg_module_data(const tg_module *m) { return m ? (void *)m->data : NULL; }
const tg_module_type *tg_module_type_of(const tg_module *m) { return m ? m->type : NULL; }
bool tg_module_is(const tg_module *m, const tg_module_type *type) { return m && m->type == type; }
const char *tg_module_name(const tg_module *m) { return m ? m->name : ""; }
tg_module *tg_module_parent(const tg_module *m) { return m ? m->parent : NULL; }

/* ------------------------------------------------------------- registration */

/* Records the first failure for tg_module_done; returns st. */
static tg_status remember(tg_module *m, tg_status st) {
    if (st != TG_OK && m && !m->failed) {
        m->failed = st;
        m->failed_msg = tg_nn_strdup(tg_last_error());
    }
    return st;
}

static tg_status check_name(tg_module *m, const char *what, const char *name, const void *slot, size_t slot_size) {
    if (!m) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: module is NULL", what);
    if (!name || !*name || strchr(name, '.'))
        return tg_error(TG_ERR_INVALID, "%s: a name must be non-empty and contain no '.', got '%s'", what,
                        name ? name : "(null)");
    if (tg_nn_find_entry(m, name, false) || tg_nn_find_entry(m, name, true) || find_child(m, name))
        return tg_error(TG_ERR_INVALID, "%s: %s already has an entry named '%s'", what, m->type->name, name);
    const char *lo = (const char *)m->data, *p = slot;
    if (slot && (p < lo || p + slot_size > lo + m->type->data_size))
        return tg_error(TG_ERR_INVALID, "%s: the slot for '%s' is not inside the %s's data (tg_module_data)", what,
                        name, m->type->name);
    return TG_OK;
}

static tg_status add_entry(tg_module *m, const char *what, const char *name, tg_tensor **slot, tg_tensor *t,
                           bool buffer) {
    if (t) t = tg_take(t);
    tg_status st = check_name(m, what, name, slot, sizeof *slot);
    if (st == TG_OK && !t) st = tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: tensor is NULL", what);
    if (st == TG_OK && !buffer && !tg_is_leaf(t))
        st = tg_error(TG_ERR_STATE, "%s: '%s' must be a leaf (tg_detach it first)", what, name);
    if (st == TG_OK && !buffer) st = tg_set_requires_grad(t, true);
    char *nm = st == TG_OK ? tg_nn_strdup(name) : NULL;
    if (st == TG_OK && (!nm || !(buffer ? TG_NN_PUSH(m->buffers) : TG_NN_PUSH(m->params))))
        st = tg_error(TG_ERR_NOMEM, "%s: out of memory", what);
    if (st != TG_OK) {
        free(nm);
        tg_release(t);
        return remember(m, st);
    }
    tg_nn_entry e = { nm, t, slot };
    if (buffer) m->buffers.v[m->buffers.n++] = e;
    else m->params.v[m->params.n++] = e;
    if (slot) *slot = t;
    return TG_OK;
}

tg_status tg_module_param(tg_module *m, const char *name, tg_tensor **slot, tg_tensor *t) {
    return add_entry(m, "tg_module_param", name, slot, t, false);
}

tg_status tg_module_buffer(tg_module *m, const char *name, tg_tensor **slot, tg_tensor *t) {
    return add_entry(m, "tg_module_buffer", name, slot, t, true);
}

tg_status tg_module_add(tg_module *m, const char *name, tg_module **slot, tg_module *child) {
    const char *what = "tg_module_add";
    tg_status st = check_name(m, what, name, slot, sizeof *slot);
    if (st == TG_OK && !child)
        st = tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: child '%s' is NULL", what, name);
    if (st == TG_OK && child->parent) {
        tg_error(TG_ERR_STATE, "%s: '%s' already belongs to a %s as '%s'", what, name, child->parent->type->name,
                 child->name);
        return remember(m, TG_ERR_STATE); /* not ours to free */
    }
    if (st == TG_OK && child == m) st = tg_error(TG_ERR_INVALID, "%s: a module cannot be its own child", what);
    char *nm = st == TG_OK ? tg_nn_strdup(name) : NULL;
    if (st == TG_OK && (!nm || !TG_NN_PUSH(m->children))) st = tg_error(TG_ERR_NOMEM, "%s: out of memory", what);
    if (st != TG_OK) {
        free(nm);
        if (child && child != m) free_tree(child);
        return remember(m, st);
    }
    free(child->name);
    child->name = nm;
    child->parent = m;
    m->children.v[m->children.n++] = (tg_nn_child){ tg_nn_strdup(name), child, slot };
    if (!m->children.v[m->children.n - 1].name) {
        m->children.n--;
        child->parent = NULL;
        free_tree(child);
        return remember(m, tg_error(TG_ERR_NOMEM, "%s: out of memory", what));
    }
    if (slot) *slot = child;
    return TG_OK;
}

tg_module *tg_module_done(tg_module *m) {
    if (!m) return NULL;
    if (!m->failed) return m;
    tg_status st = m->failed;
    char *msg = m->failed_msg;
    m->failed_msg = NULL;
    tg_module_free(m);
    tg_error(st, "%s", msg ? msg : "out of memory");
    free(msg);
    return NULL;
}

/* ------------------------------------------------------------- lookup */

/* Walks the children named by the first `len` characters of path; NULL with a message. */
static tg_module *walk(const tg_module *m, const char *api, const char *path, size_t len) {
    const tg_module *cur = m;
    size_t i = 0;
    while (cur && i < len) {
        size_t j = i;
        while (j < len && path[j] != '.') j++;
        char part[256];
        if (j - i >= sizeof part) return tg_error_null(TG_ERR_INVALID, "%s: name too long in '%s'", api, path);
        memcpy(part, path + i, j - i);
        part[j - i] = '\0';
        tg_nn_child *c = find_child(cur, part);
        if (!c)
            return tg_error_null(TG_ERR_INVALID, "%s: %s has no child '%s' (path '%s')", api, cur->type->name, part,
                                 path);
        cur = c->m;
        i = j + 1;
    }
    return (tg_module *)cur;
}

tg_module *tg_module_get(const tg_module *m, const char *path) {
    if (!m || !path) return tg_error_null(TG_ERR_INVALID, "tg_module_get: module or path is NULL");
    return walk(m, "tg_module_get", path, strlen(path));
}

static tg_tensor *get_entry(const tg_module *m, const char *api, const char *path, bool buffer) {
    if (!m || !path) return tg_error_null(TG_ERR_INVALID, "%s: module or path is NULL", api);
    const char *dot = strrchr(path, '.');
    const tg_module *owner = dot ? walk(m, api, path, (size_t)(dot - path)) : m;
    if (!owner) return NULL;
    tg_nn_entry *e = tg_nn_find_entry(owner, dot ? dot + 1 : path, buffer);
    if (!e)
        return tg_error_null(TG_ERR_INVALID, "%s: %s has no %s '%s'", api, owner->type->name,
                             buffer ? "buffer" : "parameter", path);
    return e->t;
}

tg_tensor *tg_module_get_param(const tg_module *m, const char *path) {
    return get_entry(m, "tg_module_get_param", path, false);
}

tg_tensor *tg_module_get_buffer(const tg_module *m, const char *path) {
    return get_entry(m, "tg_module_get_buffer", path, true);
}

int tg_module_num_children(const tg_module *m) { return m ? m->children.n : 0; }

tg_module *tg_module_child(const tg_module *m, int i) {
    if (!m) return tg_error_null(TG_ERR_INVALID, "tg_module_child: module is NULL");
    if (i < 0 || i >= m->children.n)
        return tg_error_null(TG_ERR_INVALID, "tg_module_child: index %d out of range for a %s of %d children", i,
                             m->type->name, m->children.n);
    return m->children.v[i].m;
}

tg_status tg_module_replace(tg_module *m, const char *path, tg_module *child) {
    const char *api = "tg_module_replace";
    tg_status st = TG_OK;
    tg_module *owner = NULL;
    tg_nn_child *c = NULL;
    if (!m || !path || !child)
        st = tg_last_status() && m && path ? tg_last_status()
                                           : tg_error(TG_ERR_INVALID, "%s: module, path or child is NULL", api);
    else if (child->parent)
        return tg_error(TG_ERR_STATE, "%s: the new child already belongs to a %s as '%s'", api,
                        child->parent->type->name, child->name);
    if (st == TG_OK) {
        const char *dot = strrchr(path, '.');
        owner = dot ? walk(m, api, path, (size_t)(dot - path)) : m;
        c = owner ? find_child(owner, dot ? dot + 1 : path) : NULL;
        if (owner && !c)
            tg_error(TG_ERR_INVALID, "%s: %s has no child '%s'", api, owner->type->name, dot ? dot + 1 : path);
        st = c ? TG_OK : tg_last_status();
    }
    char *nm = st == TG_OK ? tg_nn_strdup(c->name) : NULL;
    if (st == TG_OK && !nm) st = tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    if (st != TG_OK) {
        if (child && !child->parent && child != m) free_tree(child);
        return st;
    }
    c->m->parent = NULL;
    free_tree(c->m);
    free(child->name);
    child->name = nm;
    child->parent = owner;
    c->m = child;
    if (c->slot) *c->slot = child;
    return TG_OK;
}

/* ------------------------------------------------------------- named iteration */

void tg_named_free(tg_named *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->tensors);
    free(l->modules);
    memset(l, 0, sizeof *l);
}

typedef struct {
    tg_named *out;
    int cap;
    bool ok;
} collector;

static void push(collector *c, const char *prefix, const char *name, tg_tensor *t, tg_module *m) {
    if (!c->ok) return;
    tg_named *o = c->out;
    if (o->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 16;
        char **nn = realloc(o->names, (size_t)nc * sizeof *nn);
        if (nn) o->names = nn;
        tg_tensor **nt = realloc(o->tensors, (size_t)nc * sizeof *nt);
        if (nt) o->tensors = nt;
        tg_module **nm = realloc(o->modules, (size_t)nc * sizeof *nm);
        if (nm) o->modules = nm;
        if (!nn || !nt || !nm) {
            c->ok = false;
            return;
        }
        c->cap = nc;
    }
    size_t len = strlen(prefix) + strlen(name) + 2;
    char *full = malloc(len);
    if (!full) {
        c->ok = false;
        return;
    }
    snprintf(full, len, "%s%s%s", prefix, *prefix && *name ? "." : "", name);
    o->names[o->n] = full;
    o->tensors[o->n] = t;
    o->modules[o->n] = m;
    o->n++;
}

typedef tg_nn_want want;

static bool seen(const tg_named *o, const tg_tensor *t) {
    for (int i = 0; i < o->n; i++)
        if (o->tensors[i] == t) return true;
    return false;
}

static void collect(const tg_module *m, const char *prefix, want w, collector *c) {
    if (w == TG_NN_MODULES) push(c, prefix, "", NULL, (tg_module *)m);
    if (w != TG_NN_BUFFERS && w != TG_NN_MODULES)
        for (int i = 0; i < m->params.n; i++) {
            tg_tensor *t = m->params.v[i].t;
            if (w == TG_NN_TRAINABLE && !tg_requires_grad(t)) continue;
            if (w != TG_NN_STATE && seen(c->out, t)) continue;
            push(c, prefix, m->params.v[i].name, t, NULL);
        }
    if (w == TG_NN_BUFFERS || w == TG_NN_STATE)
        for (int i = 0; i < m->buffers.n; i++) push(c, prefix, m->buffers.v[i].name, m->buffers.v[i].t, NULL);
    for (int i = 0; i < m->children.n && c->ok; i++) {
        size_t len = strlen(prefix) + strlen(m->children.v[i].name) + 2;
        char *sub = malloc(len);
        if (!sub) {
            c->ok = false;
            break;
        }
        snprintf(sub, len, "%s%s%s", prefix, *prefix ? "." : "", m->children.v[i].name);
        collect(m->children.v[i].m, sub, w, c);
        free(sub);
    }
}

tg_status tg_nn_collect(const tg_module *m, const char *api, tg_nn_want what, tg_named *out) {
    if (!out) return tg_error(TG_ERR_INVALID, "%s: out is NULL", api);
    memset(out, 0, sizeof *out);
    if (!m) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: module is NULL", api);
    collector c = { out, 0, true };
    collect(m, "", what, &c);
    if (!c.ok) {
        tg_named_free(out);
        return tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    }
    return TG_OK;
}

tg_status tg_module_parameters(const tg_module *m, bool trainable_only, tg_named *out) {
    return tg_nn_collect(m, "tg_module_parameters", trainable_only ? TG_NN_TRAINABLE : TG_NN_PARAMS, out);
}

tg_status tg_module_buffers(const tg_module *m, tg_named *out) {
    return tg_nn_collect(m, "tg_module_buffers", TG_NN_BUFFERS, out);
}

tg_status tg_module_named_modules(const tg_module *m, tg_named *out) {
    return tg_nn_collect(m, "tg_module_named_modules", TG_NN_MODULES, out);
}

int64_t tg_module_num_parameters(const tg_module *m, bool trainable_only) {
    tg_named l;
    if (tg_module_parameters(m, trainable_only, &l) != TG_OK) return -1;
    int64_t n = 0;
    for (int i = 0; i < l.n; i++) n += tg_numel(l.tensors[i]);
    tg_named_free(&l);
    return n;
}

/* ------------------------------------------------------------- modes and freezing */

void tg_module_train(tg_module *m, bool training) {
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->children.n; i++) tg_module_train(m->children.v[i].m, training);
}

void tg_module_eval(tg_module *m) { tg_module_train(m, false); }
bool tg_module_is_training(const tg_module *m) { return m && m->training; }

tg_status tg_module_requires_grad_(tg_module *m, bool requires_grad) {
    if (!m) return tg_error(TG_ERR_INVALID, "tg_module_requires_grad_: module is NULL");
    for (int i = 0; i < m->params.n; i++) {
        tg_status st = tg_set_requires_grad(m->params.v[i].t, requires_grad);
        if (st != TG_OK) return st;
    }
    for (int i = 0; i < m->children.n; i++) {
        tg_status st = tg_module_requires_grad_(m->children.v[i].m, requires_grad);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

void tg_module_zero_grad(tg_module *m) {
    if (!m) return;
    for (int i = 0; i < m->params.n; i++) tg_zero_grad(m->params.v[i].t);
    for (int i = 0; i < m->children.n; i++) tg_module_zero_grad(m->children.v[i].m);
}

/* ------------------------------------------------------------- devices and dtypes */

typedef struct {
    tg_nn_entry **e; /* every entry of the tree */
    tg_tensor **old, **fresh; /* the distinct tensors and their replacements */
    int n, n_old, cap;
} move_plan;

static bool plan_add(move_plan *p, tg_nn_entry *e) {
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 16;
        tg_nn_entry **ne = realloc(p->e, (size_t)nc * sizeof *ne);
        if (ne) p->e = ne;
        tg_tensor **no = realloc(p->old, (size_t)nc * sizeof *no);
        if (no) p->old = no;
        tg_tensor **nf = realloc(p->fresh, (size_t)nc * sizeof *nf);
        if (nf) p->fresh = nf;
        if (!ne || !no || !nf) return false;
        p->cap = nc;
    }
    p->e[p->n++] = e;
    for (int i = 0; i < p->n_old; i++)
        if (p->old[i] == e->t) return true;
    p->old[p->n_old] = e->t;
    p->fresh[p->n_old++] = NULL;
    return true;
}

static bool plan_tree(move_plan *p, tg_module *m) {
    for (int i = 0; i < m->params.n; i++)
        if (!plan_add(p, &m->params.v[i])) return false;
    for (int i = 0; i < m->buffers.n; i++)
        if (!plan_add(p, &m->buffers.v[i])) return false;
    for (int i = 0; i < m->children.n; i++)
        if (!plan_tree(p, m->children.v[i].m)) return false;
    return true;
}

/* The converted copy of t as an owned leaf, or t itself when nothing changes. */
static tg_tensor *convert(tg_tensor *t, tg_device *dev, int dtype) {
    bool fl = tg_dtype_of(t) == TG_F32 || tg_dtype_of(t) == TG_F64;
    if (dev && tg_device_of(t) == dev) return t;
    if (!dev && (!fl || tg_dtype_of(t) == (tg_dtype)dtype)) return t;
    tg_tensor *r = dev ? tg_to(t, dev) : tg_cast(t, (tg_dtype)dtype);
    if (r && tg_requires_grad(t) && tg_set_requires_grad(r, true) != TG_OK) r = NULL;
    return r ? tg_take(r) : NULL;
}

static tg_status move(tg_module *m, const char *api, tg_device *dev, int dtype) {
    TG_API_ENTER(api);
    if (!m) return tg_error(TG_ERR_INVALID, "%s: module is NULL", api);
    if (!dev && dtype != TG_F32 && dtype != TG_F64)
        return tg_error(TG_ERR_DTYPE, "%s: a module converts to f32 or f64, not %s", api,
                        tg_dtype_name((tg_dtype)dtype));
    move_plan p = { 0 };
    tg_status st = plan_tree(&p, m) ? TG_OK : tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    bool prev = tg_set_grad_enabled(false);
    for (int i = 0; i < p.n_old && st == TG_OK; i++)
        if (!(p.fresh[i] = convert(p.old[i], dev, dtype))) st = tg_last_status();
    tg_set_grad_enabled(prev);
    for (int i = 0; i < p.n_old; i++) {
        if (p.fresh[i] == p.old[i] || !p.fresh[i]) continue;
        if (st != TG_OK) {
            tg_release(p.fresh[i]);
            continue;
        }
        for (int k = 0; k < p.n; k++) /* each entry holds one reference: move it to the new tensor */
            if (p.e[k]->t == p.old[i]) {
                p.e[k]->t = tg_retain(p.fresh[i]);
                if (p.e[k]->slot) *p.e[k]->slot = p.fresh[i];
                tg_release(p.old[i]);
            }
        tg_release(p.fresh[i]); /* convert's reference */
    }
    free(p.e);
    free(p.old);
    free(p.fresh);
    return st;
}

tg_status tg_module_to(tg_module *m, tg_device *dev) {
    if (!dev) return tg_error(TG_ERR_DEVICE, "tg_module_to: device is NULL");
    return move(m, "tg_module_to", dev, 0);
}

tg_status tg_module_cast(tg_module *m, tg_dtype dtype) { return move(m, "tg_module_cast", NULL, (int)dtype); }

/* ------------------------------------------------------------- forward and hooks */

static int add_hook(tg_module *m, const char *api, tg_forward_pre_hook pre, tg_forward_hook post, void *ctx) {
    if (!m || (!pre && !post)) return tg_error(TG_ERR_INVALID, "%s: module or fn is NULL", api);
    if (!TG_NN_PUSH(m->hooks)) return tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    m->hooks.v[m->hooks.n++] = (tg_nn_hook){ m->next_hook_id, pre, post, ctx };
    return m->next_hook_id++;
}

int tg_module_register_forward_pre_hook(tg_module *m, tg_forward_pre_hook fn, void *ctx) {
    return add_hook(m, "tg_module_register_forward_pre_hook", fn, NULL, ctx);
}

int tg_module_register_forward_hook(tg_module *m, tg_forward_hook fn, void *ctx) {
    return add_hook(m, "tg_module_register_forward_hook", NULL, fn, ctx);
}

tg_status tg_module_remove_hook(tg_module *m, int handle) {
    for (int i = 0; m && i < m->hooks.n; i++)
        if (m->hooks.v[i].id == handle) {
            memmove(&m->hooks.v[i], &m->hooks.v[i + 1], (size_t)(m->hooks.n - i - 1) * sizeof *m->hooks.v);
            m->hooks.n--;
            return TG_OK;
        }
    return tg_error(TG_ERR_INVALID, "tg_module_remove_hook: no hook %d on this module", handle);
}

/* Inputs must live where the module's own tensors do (its first parameter or buffer). */
static bool same_device(tg_module *m, int n, tg_tensor *const *in) {
    const tg_nn_entry *e = m->params.n ? &m->params.v[0] : m->buffers.n ? &m->buffers.v[0] : NULL;
    for (int i = 0; e && i < n; i++)
        if (tg_device_of(in[i]) != tg_device_of(e->t)) {
            tg_error(TG_ERR_DEVICE, "input%s on %s, %s on %s (tg_module_to moves a module)", n > 1 ? (i ? " 2" : " 1") : "",
                     tg_device_name(tg_device_of(in[i])), e->name, tg_device_name(tg_device_of(e->t)));
            return false;
        }
    return true;
}

static tg_tensor *call_type(tg_module *m, int n, tg_tensor **in) {
    if (n == 1 && m->type->forward) return m->type->forward(m, in[0]);
    if (n == 2 && m->type->forward2) return m->type->forward2(m, in[0], in[1]);
    return tg_error_null(TG_ERR_INVALID, "it takes %s input%s: call %s", m->type->forward2 ? "two" : m->type->forward ? "one" : "no",
                         m->type->forward ? "" : "s", m->type->forward2 ? "tg_module_forward2" : "tg_module_forward");
}

/* Puts "api: Type 'path': " before a message that no inner module has claimed. */
static void claim(tg_module *m, const char *api) {
    size_t n = strlen(api);
    const char *msg = tg_last_error();
    if (!strncmp(msg, api, n) && msg[n] == ':') return;
    char path[256], copy[1024];
    snprintf(copy, sizeof copy, "%s", *msg ? msg : "its forward returned NULL without an error");
    tg_status st = tg_last_status() ? tg_last_status() : TG_ERR_INVALID;
    tg_nn_path(path, sizeof path, m);
    if (*path) tg_error(st, "%s: %s '%s': %s", api, m->type->name, path, copy);
    else tg_error(st, "%s: %s: %s", api, m->type->name, copy);
}

static tg_tensor *run(tg_module *m, int n, tg_tensor **in, const char *api) {
    if (!m) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "%s: module is NULL", api);
    for (int i = 0; i < n; i++)
        if (!in[i]) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "%s: input is NULL", api);
    tg_api_saved sv = tg_api_suspend();
    tg_tensor *out = NULL;
    bool ok = same_device(m, n, in);
    for (int h = 0; h < m->hooks.n && ok; h++)
        if (m->hooks.v[h].pre) {
            ok = m->hooks.v[h].pre(m, n, in, m->hooks.v[h].ctx) == TG_OK;
            for (int i = 0; i < n && ok; i++)
                if (!in[i]) ok = tg_error(TG_ERR_INVALID, "a forward pre-hook left input %d NULL", i) == TG_OK;
        }
    if (ok) out = call_type(m, n, in);
    for (int h = 0; h < m->hooks.n && out; h++)
        if (m->hooks.v[h].post) out = m->hooks.v[h].post(m, n, in, out, m->hooks.v[h].ctx);
    tg_api_resume(sv);
    if (!out) claim(m, api);
    return out;
}

tg_tensor *tg_module_forward(tg_module *m, tg_tensor *x) {
    tg_tensor *in[1] = { x };
    return run(m, 1, in, "tg_module_forward");
}

tg_tensor *tg_module_forward2(tg_module *m, tg_tensor *a, tg_tensor *b) {
    tg_tensor *in[2] = { a, b };
    return run(m, 2, in, "tg_module_forward2");
}

/* The entry at a dotted path, or NULL with a message. */
static tg_nn_entry *entry_at(const tg_module *m, const char *api, const char *path) {
    const char *dot = strrchr(path, '.');
    const tg_module *owner = dot ? walk(m, api, path, (size_t)(dot - path)) : m;
    if (!owner) return NULL;
    const char *leaf = dot ? dot + 1 : path;
    tg_nn_entry *e = tg_nn_find_entry(owner, leaf, false);
    if (!e) e = tg_nn_find_entry(owner, leaf, true);
    if (!e) return tg_error_null(TG_ERR_INVALID, "%s: %s has no parameter or buffer '%s'", api, owner->type->name, path);
    return e;
}

tg_tensor *tg_module_functional_call(tg_module *m, int n, const char *const *names, tg_tensor *const *tensors,
                                     int n_inputs, tg_tensor *const *inputs) {
    const char *api = "tg_module_functional_call";
    enum { MAX = 64 };
    tg_nn_entry *e[MAX];
    tg_tensor *saved[MAX], *in[2];
    if (!m || n < 0 || n > MAX || (n && (!names || !tensors)) || n_inputs < 1 || n_inputs > 2 || !inputs)
        return tg_error_null(TG_ERR_INVALID, "%s: bad arguments (at most %d tensors, 1 or 2 inputs)", api, MAX);
    for (int i = 0; i < n; i++) {
        char a[128], b[128];
        if (!tensors[i]) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "%s: tensor %d is NULL", api, i);
        if (!names[i] || !(e[i] = entry_at(m, api, names[i]))) return names[i] ? NULL : tg_error_null(TG_ERR_INVALID, "%s: name %d is NULL", api, i);
        if (!e[i]->slot) return tg_error_null(TG_ERR_INVALID, "%s: '%s' was registered without a slot", api, names[i]);
        if (tg_ndim(tensors[i]) != tg_ndim(e[i]->t) || strcmp(tg_nn_shape_str(a, sizeof a, tensors[i]), tg_nn_shape_str(b, sizeof b, e[i]->t)))
            return tg_error_null(TG_ERR_SHAPE, "%s: '%s' is %s in the module, the tensor given %s", api, names[i], b, a);
    }
    for (int i = 0; i < n; i++) saved[i] = *e[i]->slot, *e[i]->slot = tensors[i];
    for (int i = 0; i < n_inputs; i++) in[i] = inputs[i];
    tg_tensor *out = run(m, n_inputs, in, n_inputs == 1 ? "tg_module_forward" : "tg_module_forward2");
    for (int i = n - 1; i >= 0; i--) *e[i]->slot = saved[i];
    return out;
}

/* ------------------------------------------------------------- printing */

static void print_tree(FILE *f, const tg_module *m, int depth) {
    char desc[256] = "";
    if (m->type->describe) m->type->describe(m, desc, sizeof desc);
    fprintf(f, "%s(%s", m->type->name, desc);
    if (m->children.n) fprintf(f, "\n");
    for (int i = 0; i < m->children.n; i++) {
        fprintf(f, "%*s(%s): ", 2 * (depth + 1), "", m->children.v[i].name);
        print_tree(f, m->children.v[i].m, depth + 1);
        fprintf(f, "\n");
    }
    if (m->children.n) fprintf(f, "%*s", 2 * depth, "");
    fprintf(f, ")");
}

void tg_module_fprint(FILE *f, const tg_module *m) {
    if (!f || !m) return;
    print_tree(f, m, 0);
    fprintf(f, "\n");
}

void tg_module_print(const tg_module *m) { tg_module_fprint(stdout, m); }
