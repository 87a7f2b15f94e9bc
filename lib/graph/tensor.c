/* Tensor objects: allocation, reference counts, scopes and the accessors.
 *
 * Rules, stated once: a tensor holds one ref on its storage, its grad_fn and its grad.
 * A scope holds one ref on every tensor registered with it; tg_retain and tg_take give
 * the user a ref that tg_release drops. A tensor dies when its last ref goes, whichever
 * order. Reference counts are atomic (shared read-only tensors may be viewed from
 * several threads); scopes are per thread. A released object keeps a dead magic while
 * it waits in the recycler's quarantine, so a stale pointer is caught at the next op;
 * with TG_DEBUG=1 objects are never reused and the message names what released it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/graph/recycle.h"
#include "lib/graph/tensor-impl.h"

static _Atomic int64_t g_live;

static tg_tensor *tensor_struct(void) { return tg_recycle_alloc(tg_recycler_get(0, sizeof(tg_tensor))); }
static void tensor_struct_free(tg_tensor *t) { tg_recycle_free(tg_recycler_get(0, sizeof(tg_tensor)), t); }

typedef struct {
    tg_tensor **items;
    int n, cap;
    uint64_t serial; /* which tg_scope_begin opened it, for debug messages */
} scope;

static _Thread_local scope *g_scopes; /* [0] is the root scope */
static _Thread_local int g_nscopes, g_capscopes;
static _Thread_local int g_failed_begins; /* begins that ran out of memory: their ends do nothing */
static _Thread_local uint64_t g_scope_serial;
/* What is dropping references right now, recorded in tensors that die meanwhile. */
static _Thread_local const char *g_releasing;
static _Thread_local const scope *g_releasing_scope;
static _Thread_local int g_releasing_depth;

/* ------------------------------------------------------------- storage */

static void stats_add_in_use(tg_device *dev, size_t nbytes) {
    size_t now = atomic_fetch_add(&dev->stats.bytes_in_use, nbytes) + nbytes;
    size_t peak = atomic_load(&dev->stats.peak_in_use);
    while (now > peak && !atomic_compare_exchange_weak(&dev->stats.peak_in_use, &peak, now)) {
    }
}

static tg_storage *storage_new(tg_device *dev, size_t nbytes) {
    tg_recycler *r = tg_recycler_get(1, sizeof(tg_storage));
    tg_storage *s = tg_recycle_alloc(r);
    if (!s) return tg_error_null(TG_ERR_NOMEM, "out of host memory allocating a storage");
    if (dev->be->alloc(dev, nbytes, &s->data) != TG_OK) {
        tg_recycle_free(r, s);
        return NULL;
    }
    static atomic_ullong next_id = 1;
    atomic_init(&s->refcount, 1);
    atomic_init(&s->version, 0);
    s->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    s->weight = false;
    s->dev = dev;
    s->nbytes = nbytes;
    stats_add_in_use(dev, nbytes);
    return s;
}

static void storage_decref(tg_storage *s) {
    if (!s || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
    atomic_fetch_sub(&s->dev->stats.bytes_in_use, s->nbytes);
    s->dev->be->free(s->dev, s->data, s->nbytes);
    tg_recycle_free(tg_recycler_get(1, sizeof(tg_storage)), s);
}

/* ------------------------------------------------------------- tensors */

static tg_tensor *tensor_object(void) {
    tg_tensor *t = tensor_struct();
    if (!t) return tg_error_null(TG_ERR_NOMEM, "out of host memory allocating a tensor");
    t->magic = TG_TENSOR_LIVE;
    atomic_init(&t->refcount, 1);
    t->scope_level = -1;
    g_live++;
    return t;
}

tg_tensor *tg_tensor_new_unscoped(tg_dtype dtype, int ndim, const int64_t *shape, tg_device *dev) {
    char buf[128];
    if (ndim < 0 || ndim > TG_MAX_DIMS)
        return tg_error_null(TG_ERR_SHAPE, "tensor: %d dimensions (at most %d)", ndim, TG_MAX_DIMS);
    int64_t numel;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return tg_error_null(TG_ERR_SHAPE, "tensor: negative size in shape %s",
                                 tg_shape_str(buf, ndim, shape));
    if (!tg_shape_numel_checked(ndim, shape, &numel))
        return tg_error_null(TG_ERR_SHAPE, "tensor: shape %s is too large",
                             tg_shape_str(buf, ndim, shape));
    if (dtype == TG_F64 && dev->lacks_fp64)
        return tg_error_null(TG_ERR_DTYPE, "tensor: device %s has no fp64 (cl_khr_fp64): it cannot hold f64 "
                             "tensors", dev->name);
    tg_storage *s = storage_new(dev, (size_t)numel * tg_elsize(dtype));
    if (!s) return NULL;
    tg_tensor *t = tensor_object();
    if (!t) {
        storage_decref(s);
        return NULL;
    }
    t->storage = s;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    tg_contiguous_strides(ndim, t->shape, t->strides);
    return t;
}

tg_tensor *tg_tensor_new(tg_dtype dtype, int ndim, const int64_t *shape, tg_device *dev) {
    tg_tensor *t = tg_tensor_new_unscoped(dtype, ndim, shape, dev);
    return t && tg_scope_add(t) == TG_OK ? t : NULL;
}

tg_tensor *tg_tensor_alias_unscoped(const tg_tensor *src, int ndim, const int64_t *shape,
                                    const int64_t *strides, int64_t offset) {
    tg_tensor *t = tensor_object();
    if (!t) return NULL;
    t->dtype = src->dtype;
    t->ndim = ndim;
    if (ndim) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
        memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    }
    t->offset = offset;
    t->storage = src->storage;
    atomic_fetch_add_explicit(&t->storage->refcount, 1, memory_order_relaxed);
    return t;
}

tg_tensor *tg_tensor_alias(const tg_tensor *src, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset) {
    tg_tensor *t = tg_tensor_alias_unscoped(src, ndim, shape, strides, offset);
    return t && tg_scope_add(t) == TG_OK ? t : NULL;
}

void tg_tensor_rebind(tg_tensor *t, const tg_tensor *base, int64_t offset) {
    atomic_fetch_add_explicit(&base->storage->refcount, 1, memory_order_relaxed);
    storage_decref(t->storage);
    t->storage = base->storage;
    t->offset = offset;
    tg_contiguous_strides(t->ndim, t->shape, t->strides);
}

void tg_tensor_incref(tg_tensor *t) {
    if (t) atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
}

/* TG_DEBUG: released objects are kept, never reused, and freed at exit. */
static tg_tensor *g_graveyard;
static bool g_graveyard_registered;
static pthread_mutex_t g_graveyard_lock = PTHREAD_MUTEX_INITIALIZER;

static void free_graveyard(void) {
    pthread_mutex_lock(&g_graveyard_lock);
    while (g_graveyard) {
        tg_tensor *t = g_graveyard;
        g_graveyard = t->free_link;
        free(t);
    }
    pthread_mutex_unlock(&g_graveyard_lock);
}

static void bury(tg_tensor *t) {
    pthread_mutex_lock(&g_graveyard_lock);
    if (!g_graveyard_registered) g_graveyard_registered = atexit(free_graveyard) == 0;
    t->free_link = g_graveyard;
    g_graveyard = t;
    pthread_mutex_unlock(&g_graveyard_lock);
}

static void mark_dead(tg_tensor *t) {
    t->magic = TG_TENSOR_DEAD;
    t->released_by = g_releasing ? g_releasing : "its last holder (a graph or another tensor) was freed";
}

void tg_tensor_decref(tg_tensor *t) {
    if (!t || atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) != 1) return;
    storage_decref(t->storage);
    tg_node_decref(t->grad_fn);
    tg_tensor_decref(t->grad);
    tg_hooks_free(t->hooks);
    g_live--;
    mark_dead(t);
    if (tg_debug_enabled()) { /* never reused: the message stays exact */
        t->released_scope = g_releasing_scope ? g_releasing_scope->serial : 0;
        t->released_depth = g_releasing_depth;
        bury(t);
        return;
    }
    tensor_struct_free(t);
}

bool tg_tensor_check(const char *op, const char *arg, const tg_tensor *t) {
    if (!t) {
        if (tg_last_status() == TG_OK) tg_error(TG_ERR_INVALID, "%s: %s is NULL", op, arg);
        return false;
    }
    if (t->magic == TG_TENSOR_LIVE) return true;
    if (t->magic != TG_TENSOR_DEAD) {
        tg_error(TG_ERR_STATE, "%s: %s is not a live tensor (released and its memory reused, or not a tensor); "
                 "run with TG_DEBUG=1 to find where it was released", op, arg);
    } else if (tg_debug_enabled() && t->released_scope > 0) {
        tg_error(TG_ERR_STATE, "%s: %s was already released: %s (scope #%llu, depth %d)", op, arg, t->released_by,
                 (unsigned long long)t->released_scope, t->released_depth);
    } else {
        tg_error(TG_ERR_STATE, "%s: %s was already released: %s", op, arg, t->released_by);
    }
    return false;
}

int64_t tg_live_tensors(void) { return g_live; }

/* ------------------------------------------------------------- scopes */

static void release_items(scope *s, int level) {
    g_releasing = "released at the end of its scope (missing tg_keep?)";
    g_releasing_scope = s;
    g_releasing_depth = level;
    /* Newest first: later tensors tend to reference earlier ones. A decref runs no
     * scope code, so s stays valid. */
    for (int i = s->n - 1; i >= 0; i--) {
        tg_tensor *t = s->items[i];
        if (t->scope_level == level && t->scope_pos == i) t->scope_level = -1;
        tg_tensor_decref(t);
    }
    s->n = 0;
    g_releasing = NULL;
    g_releasing_scope = NULL;
}

/* Every scope of this thread, the root included: at thread exit and at process exit. */
static void free_scopes(void *unused) {
    (void)unused;
    while (g_nscopes > 0) {
        g_nscopes--;
        release_items(&g_scopes[g_nscopes], g_nscopes);
    }
    for (int i = 0; i < g_capscopes; i++) free(g_scopes[i].items);
    free(g_scopes);
    g_scopes = NULL;
    g_capscopes = 0;
}

static pthread_key_t g_scope_key;
static pthread_once_t g_scope_once = PTHREAD_ONCE_INIT;

static void scopes_atexit(void) { free_scopes(NULL); }

static void make_scope_key(void) {
    pthread_key_create(&g_scope_key, free_scopes);
    pthread_mutex_lock(&g_graveyard_lock); /* registered first, so it runs after scopes_atexit */
    g_graveyard_registered = atexit(free_graveyard) == 0;
    pthread_mutex_unlock(&g_graveyard_lock);
    atexit(scopes_atexit); /* the main thread's scopes: no key destructor runs at exit() */
}

static bool scopes_ready(void) {
    if (g_nscopes > 0) return true;
    pthread_once(&g_scope_once, make_scope_key);
    if (!g_scopes) {
        g_scopes = calloc(8, sizeof *g_scopes);
        if (!g_scopes) return false;
        g_capscopes = 8;
    }
    g_nscopes = 1;
    pthread_setspecific(g_scope_key, g_scopes); /* non-NULL: the destructor runs at thread exit */
    return true;
}

static bool push_item(int level, tg_tensor *t) {
    scope *s = &g_scopes[level];
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        tg_tensor **items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) return false;
        s->items = items;
        s->cap = cap;
    }
    t->scope_level = level;
    t->scope_pos = s->n;
    s->items[s->n++] = t;
    return true;
}

tg_status tg_scope_add(tg_tensor *t) {
    if (!scopes_ready() || !push_item(g_nscopes - 1, t)) {
        tg_tensor_decref(t);
        return tg_error(TG_ERR_NOMEM, "out of host memory for the scope stack");
    }
    return TG_OK;
}

void tg_scope_begin(void) {
    if (!scopes_ready() || g_failed_begins > 0) goto nomem;
    if (g_nscopes == g_capscopes) {
        scope *grown = realloc(g_scopes, (size_t)g_capscopes * 2 * sizeof *grown);
        if (!grown) goto nomem;
        memset(grown + g_capscopes, 0, (size_t)g_capscopes * sizeof *grown);
        g_scopes = grown;
        g_capscopes *= 2;
        pthread_setspecific(g_scope_key, g_scopes);
    }
    g_scopes[g_nscopes].n = 0; /* the level keeps its item array from earlier scopes */
    g_scopes[g_nscopes++].serial = ++g_scope_serial;
    return;
nomem: /* tensors made until the matching end go to the enclosing scope */
    g_failed_begins++;
    tg_error(TG_ERR_NOMEM, "tg_scope_begin: out of host memory for the scope stack");
}

void tg_scope_end(void) {
    if (g_failed_begins > 0) {
        g_failed_begins--;
        return;
    }
    if (g_nscopes <= 1) {
        tg_error(TG_ERR_STATE, "tg_scope_end: no open scope (more ends than begins)");
        return;
    }
    g_nscopes--;
    release_items(&g_scopes[g_nscopes], g_nscopes);
}

/* Where t is registered: its recorded slot when that still holds it, else a search of
 * the scopes from the innermost out (t registered more than once). -1 if nowhere. */
static int find_item(const tg_tensor *t, int *level) {
    if (t->scope_level >= 0 && t->scope_level < g_nscopes) {
        const scope *s = &g_scopes[t->scope_level];
        if (t->scope_pos < s->n && s->items[t->scope_pos] == t) {
            *level = t->scope_level;
            return t->scope_pos;
        }
    }
    for (int l = g_nscopes - 1; l >= 0; l--)
        for (int i = g_scopes[l].n - 1; i >= 0; i--)
            if (g_scopes[l].items[i] == t) {
                *level = l;
                return i;
            }
    return -1;
}

bool tg_scope_owns(const tg_tensor *t) {
    int level;
    return g_nscopes > 0 && find_item(t, &level) >= 0 && level == g_nscopes - 1;
}

/* Takes slot pos out of a level: the last item moves into it. */
static void remove_item(int level, int pos) {
    scope *s = &g_scopes[level];
    tg_tensor *t = s->items[pos], *last = s->items[--s->n];
    if (t->scope_level == level && t->scope_pos == pos) t->scope_level = -1;
    if (pos == s->n) return;
    s->items[pos] = last;
    if (last->scope_level == level && last->scope_pos == s->n) last->scope_pos = pos;
}

tg_tensor *tg_keep(tg_tensor *t) {
    TG_API_ENTER("tg_keep");
    if (!tg_tensor_check("tg_keep", "t", t)) return NULL;
    int level, pos = g_nscopes > 1 ? find_item(t, &level) : -1;
    if (pos < 0 || level != g_nscopes - 1) return t; /* it already belongs to an outer scope */
    remove_item(level, pos);
    if (!push_item(level - 1, t)) {
        tg_tensor_decref(t);
        return tg_error_null(TG_ERR_NOMEM, "tg_keep: out of host memory for the scope stack");
    }
    return t;
}

tg_tensor *tg_take(tg_tensor *t) {
    TG_API_ENTER("tg_take");
    if (!tg_tensor_check("tg_take", "t", t)) return NULL;
    int level, pos = g_nscopes > 0 ? find_item(t, &level) : -1;
    if (pos >= 0) remove_item(level, pos); /* the scope's ref becomes the caller's */
    else tg_tensor_incref(t);
    atomic_fetch_add(&t->user_refs, 1);
    return t;
}

tg_tensor *tg_retain(tg_tensor *t) {
    TG_API_ENTER("tg_retain");
    if (!tg_tensor_check("tg_retain", "t", t)) return NULL;
    atomic_fetch_add(&t->user_refs, 1);
    tg_tensor_incref(t);
    return t;
}

void tg_release(tg_tensor *t) {
    TG_API_ENTER("tg_release");
    if (!t || !tg_tensor_check("tg_release", "t", t)) return;
    int refs = atomic_load(&t->user_refs);
    do {
        if (refs <= 0) {
            tg_error(TG_ERR_STATE, "tg_release: this tensor holds no reference from tg_retain or tg_take (its scope "
                     "owns it and releases it at tg_scope_end)");
            return;
        }
    } while (!atomic_compare_exchange_weak(&t->user_refs, &refs, refs - 1));
    const char *prev = g_releasing;
    g_releasing = "released by tg_release";
    tg_tensor_decref(t);
    g_releasing = prev;
}

/* ------------------------------------------------------------- accessors */

int tg_ndim(const tg_tensor *t) { return t ? t->ndim : -1; }

tg_shape tg_shape_of(const tg_tensor *t) {
    tg_shape s = { 0 };
    if (!t) return s;
    s.ndim = t->ndim;
    memcpy(s.dims, t->shape, sizeof s.dims);
    return s;
}

static bool axis_of(const char *fn, const tg_tensor *t, int *axis) {
    if (!tg_tensor_check(fn, "t", t)) return false;
    int a = *axis;
    if (tg_axis_norm(axis, t->ndim)) return true;
    tg_error(TG_ERR_INVALID, "%s: axis %d is out of range for %d dimensions", fn, a, t->ndim);
    return false;
}

int64_t tg_size(const tg_tensor *t, int axis) { return axis_of("tg_size", t, &axis) ? t->shape[axis] : -1; }
/* 0 on error, with a message: 0 is also a legal stride (expanded axes), so a caller
 * that can pass a bad axis checks tg_last_status(). */
int64_t tg_stride(const tg_tensor *t, int axis) { return axis_of("tg_stride", t, &axis) ? t->strides[axis] : 0; }

int64_t tg_numel(const tg_tensor *t) { return t ? tg_shape_numel(t->ndim, t->shape) : 0; }

tg_dtype tg_dtype_of(const tg_tensor *t) {
    if (!tg_tensor_check("tg_dtype_of", "t", t)) return TG_NUM_DTYPES;
    return t->dtype;
}

tg_device *tg_device_of(const tg_tensor *t) { return t ? t->storage->dev : NULL; }
bool tg_is_contiguous(const tg_tensor *t) { return t && tg_tensor_is_dense(t); }
bool tg_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }
bool tg_is_leaf(const tg_tensor *t) { return t && !t->grad_fn; }
size_t tg_dtype_size(tg_dtype d) { return (unsigned)d < TG_NUM_DTYPES ? tg_elsize(d) : 0; }

const char *tg_dtype_name(tg_dtype d) {
    static const char *names[] = { "f32", "f64", "i32", "u8", "i64" };
    _Static_assert(sizeof names / sizeof names[0] == TG_NUM_DTYPES, "dtype names out of step");
    return (unsigned)d < TG_NUM_DTYPES ? names[d] : "?";
}
