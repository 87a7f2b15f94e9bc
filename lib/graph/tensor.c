/* Tensor objects: allocation, reference counts, scopes and the accessors.
 *
 * Rules, stated once: a tensor holds one ref on its storage, its grad_fn and its grad.
 * A scope holds one ref on every tensor registered with it; tg_retain adds a ref the
 * user drops with tg_release. A tensor dies when its last ref goes, whichever order. */
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
} scope;

static _Thread_local scope *g_scopes; /* [0] is the root scope */
static _Thread_local int g_nscopes, g_capscopes;

/* ------------------------------------------------------------- storage */

static tg_storage *storage_new(tg_device *dev, size_t nbytes) {
    tg_recycler *r = tg_recycler_get(1, sizeof(tg_storage));
    tg_storage *s = tg_recycle_alloc(r);
    if (!s) return tg_error_null(TG_ERR_NOMEM, "out of host memory allocating a storage");
    if (dev->be->alloc(dev, nbytes, &s->data) != TG_OK) {
        tg_recycle_free(r, s);
        return NULL;
    }
    s->refcount = 1;
    s->dev = dev;
    s->nbytes = nbytes;
    dev->stats.bytes_in_use += nbytes;
    if (dev->stats.bytes_in_use > dev->stats.peak_in_use)
        dev->stats.peak_in_use = dev->stats.bytes_in_use;
    return s;
}

static void storage_decref(tg_storage *s) {
    if (!s || --s->refcount > 0) return;
    s->dev->stats.bytes_in_use -= s->nbytes;
    s->dev->be->free(s->dev, s->data, s->nbytes);
    tg_recycle_free(tg_recycler_get(1, sizeof(tg_storage)), s);
}

/* ------------------------------------------------------------- tensors */

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
    tg_tensor *t = tensor_struct();
    if (!t) return tg_error_null(TG_ERR_NOMEM, "out of host memory allocating a tensor");
    t->storage = storage_new(dev, (size_t)numel * tg_elsize(dtype));
    if (!t->storage) {
        tensor_struct_free(t);
        return NULL;
    }
    t->refcount = 1;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    tg_contiguous_strides(ndim, t->shape, t->strides);
    g_live++;
    return t;
}

tg_tensor *tg_tensor_new(tg_dtype dtype, int ndim, const int64_t *shape, tg_device *dev) {
    tg_tensor *t = tg_tensor_new_unscoped(dtype, ndim, shape, dev);
    if (t) tg_scope_add(t);
    return t;
}

tg_tensor *tg_tensor_alias_unscoped(const tg_tensor *src, int ndim, const int64_t *shape,
                                    const int64_t *strides, int64_t offset) {
    tg_tensor *t = tensor_struct();
    if (!t) return tg_error_null(TG_ERR_NOMEM, "out of host memory allocating a tensor");
    t->refcount = 1;
    t->dtype = src->dtype;
    t->ndim = ndim;
    if (ndim) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
        memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    }
    t->offset = offset;
    t->storage = src->storage;
    t->storage->refcount++;
    g_live++;
    return t;
}

tg_tensor *tg_tensor_alias(const tg_tensor *src, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset) {
    tg_tensor *t = tg_tensor_alias_unscoped(src, ndim, shape, strides, offset);
    if (t) tg_scope_add(t);
    return t;
}

void tg_tensor_incref(tg_tensor *t) {
    if (t) t->refcount++;
}

void tg_tensor_decref(tg_tensor *t) {
    if (!t || --t->refcount > 0) return;
    storage_decref(t->storage);
    tg_node_decref(t->grad_fn);
    tg_tensor_decref(t->grad);
    tensor_struct_free(t);
    g_live--;
}

int64_t tg_live_tensors(void) { return g_live; }

/* ------------------------------------------------------------- scopes */

static void scopes_atexit(void) {
    while (g_nscopes > 0) {
        scope *s = &g_scopes[g_nscopes - 1];
        for (int i = 0; i < s->n; i++) tg_tensor_decref(s->items[i]);
        s->n = 0;
        g_nscopes--;
    }
    for (int i = 0; i < g_capscopes; i++) free(g_scopes[i].items);
    free(g_scopes);
    g_scopes = NULL;
    g_capscopes = 0;
}

static bool scopes_ready(void) {
    static _Atomic int registered;
    if (g_nscopes > 0) return true;
    g_scopes = calloc(8, sizeof *g_scopes);
    if (!g_scopes) return false;
    g_capscopes = 8;
    g_nscopes = 1;
    if (!registered++) atexit(scopes_atexit);
    return true;
}

void tg_scope_add(tg_tensor *t) {
    if (!scopes_ready()) TG_ASSERT(!"out of host memory for the scope stack");
    scope *s = &g_scopes[g_nscopes - 1];
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        tg_tensor **items = realloc(s->items, (size_t)cap * sizeof *items);
        TG_ASSERT(items != NULL);
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = t;
}

void tg_scope_begin(void) {
    if (!scopes_ready()) TG_ASSERT(!"out of host memory for the scope stack");
    if (g_nscopes == g_capscopes) {
        scope *grown = realloc(g_scopes, (size_t)g_capscopes * 2 * sizeof *grown);
        TG_ASSERT(grown != NULL);
        memset(grown + g_capscopes, 0, (size_t)g_capscopes * sizeof *grown);
        g_scopes = grown;
        g_capscopes *= 2;
    }
    g_scopes[g_nscopes++].n = 0; /* the level keeps its item array from earlier scopes */
}

void tg_scope_end(void) {
    if (g_nscopes <= 1) {
        tg_error(TG_ERR_STATE, "tg_scope_end: no open scope (more ends than begins)");
        return;
    }
    scope *s = &g_scopes[--g_nscopes];
    /* Release newest first: later tensors tend to reference earlier ones. A decref can
     * run no scope code, so s stays valid; its array is kept for the next scope. */
    for (int i = s->n - 1; i >= 0; i--) tg_tensor_decref(s->items[i]);
    s->n = 0;
}

tg_tensor *tg_keep(tg_tensor *t) {
    if (!t || g_nscopes <= 1) return t;
    scope *s = &g_scopes[g_nscopes - 1];
    for (int i = s->n - 1; i >= 0; i--) {
        if (s->items[i] != t) continue;
        memmove(&s->items[i], &s->items[i + 1], (size_t)(s->n - i - 1) * sizeof *s->items);
        s->n--;
        g_nscopes--; /* register with the parent */
        tg_scope_add(t);
        g_nscopes++;
        return t;
    }
    return t; /* not in this scope: it already belongs to an outer one */
}

tg_tensor *tg_retain(tg_tensor *t) {
    tg_tensor_incref(t);
    return t;
}

void tg_release(tg_tensor *t) { tg_tensor_decref(t); }

/* ------------------------------------------------------------- accessors */

int tg_ndim(const tg_tensor *t) { return t ? t->ndim : -1; }

tg_shape tg_shape_of(const tg_tensor *t) {
    tg_shape s = { 0 };
    if (!t) return s;
    s.ndim = t->ndim;
    memcpy(s.dims, t->shape, sizeof s.dims);
    return s;
}

int64_t tg_size(const tg_tensor *t, int axis) {
    if (!t) return -1;
    if (!tg_axis_norm(&axis, t->ndim)) {
        tg_error(TG_ERR_INVALID, "tg_size: axis %d out of range for %d dimensions", axis, t->ndim);
        return -1;
    }
    return t->shape[axis];
}

int64_t tg_stride(const tg_tensor *t, int axis) {
    if (!t || !tg_axis_norm(&axis, t->ndim)) return 0;
    return t->strides[axis];
}

int64_t tg_numel(const tg_tensor *t) { return t ? tg_shape_numel(t->ndim, t->shape) : 0; }
tg_dtype tg_dtype_of(const tg_tensor *t) { return t ? t->dtype : TG_F32; }
tg_device *tg_device_of(const tg_tensor *t) { return t ? t->storage->dev : NULL; }
bool tg_is_contiguous(const tg_tensor *t) { return t && tg_tensor_is_dense(t); }
bool tg_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }
bool tg_is_leaf(const tg_tensor *t) { return t && !t->grad_fn; }
size_t tg_dtype_size(tg_dtype d) { return tg_elsize(d); }

const char *tg_dtype_name(tg_dtype d) {
    static const char *names[] = { "f32", "f64", "i32", "u8", "i64" };
    return (unsigned)d < TG_NUM_DTYPES ? names[d] : "?";
}
