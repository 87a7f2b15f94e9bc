/* The tensor, storage and device structs, shared by graph, ops, autograd and backends.
 * Public code sees only the opaque types of tapegrad.h. Strides and offsets count
 * elements, not bytes; strides may be 0 (expand) or negative (flip). */
#ifndef TG_TENSOR_IMPL_H
#define TG_TENSOR_IMPL_H

#include <stdatomic.h>

#include "tapegrad.h"
#include "lib/graph/backend.h"

typedef struct tg_node tg_node;
typedef struct tg_hook tg_hook; /* gradient hooks (autograd/hooks.c) */

/* A block of device memory shared by a tensor and its views. Reference counts are
 * atomic: a read-only tensor (a weight in grad-off mode) may be viewed from several
 * threads at once. */
typedef struct tg_storage {
    _Atomic int refcount;
    tg_device *dev;
    void *data;       /* CPU: a host pointer; OpenCL: a cl_mem */
    size_t nbytes;
    _Atomic uint32_t version; /* bumped by every in-place write; saved tensors check it */
    uint64_t id;      /* unique for the process's life: (id, version) names the contents */
    bool weight;      /* holds a parameter (a leaf that required grad): read many times while
                       * unchanged, so backends may keep derived forms (packed GEMM panels) */
} tg_storage;

#define TG_TENSOR_LIVE 0x7e4a11feu /* magic of a tensor object in use */
#define TG_TENSOR_DEAD 0xdeadd00du /* magic of a released one, kept until reuse */

struct tg_tensor {
    void *free_link;          /* the recycler's link while the object is free; never read else */
    uint32_t magic;           /* TG_TENSOR_LIVE while alive: every op checks it */
    _Atomic int refcount;
    _Atomic int user_refs;    /* refs taken by tg_retain/tg_take, dropped by tg_release */
    int scope_level, scope_pos; /* where its owning scope keeps it (-1: none), for O(1) tg_keep */
    const char *released_by;  /* once dead: what dropped the last reference */
    uint64_t released_scope;  /* TG_DEBUG: the serial number of the scope whose end did */
    int released_depth;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t strides[TG_MAX_DIMS];
    int64_t offset;           /* into storage, in elements */
    tg_storage *storage;
    bool requires_grad;
    int output_nr;            /* which output of grad_fn this tensor is */
    tg_node *grad_fn;         /* the node that made it (owned ref), NULL for leaves */
    tg_tensor *grad;          /* accumulated gradient of a leaf (owned ref): its own buffer */
    tg_hook *hooks;           /* a leaf's gradient hooks (owned) */
};

/* Memory statistics, updated atomically by every thread that allocates. */
typedef struct {
    _Atomic size_t bytes_in_use, bytes_cached, peak_in_use;
    _Atomic uint64_t allocations;
    _Atomic uint64_t launches, transfers; /* tg_launch_stats, counted by queueing backends */
} tg_device_stats;

struct tg_device {
    const char *name;         /* "cpu", "opencl:0" */
    const tg_backend *be;
    void *impl;               /* backend state */
    bool lacks_fp64;          /* f64 tensors are refused at creation (OpenCL without cl_khr_fp64) */
    bool validated;           /* its backend's mandatory entries were checked */
    tg_device_stats stats;
};

/* Debugging switches read once: objects are never reused (TG_DEBUG=1, or always under
 * AddressSanitizer, so that it sees every use after free). */
bool tg_debug_enabled(void);      /* TG_DEBUG=1: never reuse tensor objects, name releases */
bool tg_reuse_disabled(void);     /* TG_DEBUG=1 or an ASan build: recycle lists and caches off */

/* Allocation and references (graph/tensor.c). tg_tensor_new registers the tensor with
 * the current scope; tg_tensor_new_unscoped does not (the caller owns the one ref). */
tg_tensor *tg_tensor_new(tg_dtype dtype, int ndim, const int64_t *shape, tg_device *dev);
tg_tensor *tg_tensor_new_unscoped(tg_dtype dtype, int ndim, const int64_t *shape, tg_device *dev);
/* A new tensor object over t's storage with the given geometry (registered in scope). */
tg_tensor *tg_tensor_alias(const tg_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset);
tg_tensor *tg_tensor_alias_unscoped(const tg_tensor *t, int ndim, const int64_t *shape,
                                    const int64_t *strides, int64_t offset);
void tg_tensor_incref(tg_tensor *t);
/* Points t at base's storage from offset on, dense in t's shape; its old storage is
 * dropped (tg_params_flatten; the caller copied the values first). */
void tg_tensor_rebind(tg_tensor *t, const tg_tensor *base, int64_t offset);
void tg_tensor_decref(tg_tensor *t);
/* Hands the caller's ref to the current scope; on out-of-memory the ref is dropped
 * and TG_ERR_NOMEM returned (the tensor may then be gone). */
tg_status tg_scope_add(tg_tensor *t);
/* Whether t is registered with the innermost scope of this thread. */
bool tg_scope_owns(const tg_tensor *t);
/* false, with a message naming op and arg, when t is NULL (keeping an earlier
 * message) or is a tensor object that was already released. */
bool tg_tensor_check(const char *op, const char *arg, const tg_tensor *t);

/* Geometry helpers (graph/shape.c). */
int64_t tg_shape_numel(int ndim, const int64_t *shape);
/* The largest element count a shape may describe: with 8-byte elements and any
 * stride arithmetic it stays far inside int64. */
#define TG_MAX_NUMEL (INT64_MAX / 16)
/* false when a size is negative or the sizes overflow TG_MAX_NUMEL (zero sizes
 * ignored, so strides stay representable); else *numel (may be NULL) is the count.
 * Every shape that comes from user input goes through this before it is used. */
bool tg_shape_numel_checked(int ndim, const int64_t *shape, int64_t *numel);
void tg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
bool tg_tensor_is_dense(const tg_tensor *t); /* row-major contiguous */
bool tg_shape_equal(int na, const int64_t *a, int nb, const int64_t *b);
/* Formats "[2,3,4]" into buf (at least 128 bytes); returns buf. */
const char *tg_shape_str(char *buf, int ndim, const int64_t *shape);
/* Normalises a possibly negative axis; false if out of range. */
bool tg_axis_norm(int *axis, int ndim);
static inline bool tg_is_float(tg_dtype d) { return d == TG_F32 || d == TG_F64; }
static inline size_t tg_elsize(tg_dtype d) { return d == TG_F64 || d == TG_I64 ? 8 : d == TG_U8 ? 1 : 4; }

/* Fills t (any strides) with the next numbers of the process-wide generator
 * (graph/create.c): p0/p1 as the backend's random entry takes them. */
tg_status tg_random_fill(tg_rng_kind kind, tg_tensor *t, double p0, double p1);

/* The CPU device (cpu/backend.c). */
tg_device *tg_cpu_device(void);
/* Host memory for staging transfers to and from dev: pinned where its backend offers
 * it (*pinned true), else 64-byte-aligned plain memory. NULL on failure (no message:
 * the caller names what it was for). Free with tg_device_host_free. */
void *tg_device_host_alloc(tg_device *dev, size_t nbytes, void **handle, bool *pinned);
void tg_device_host_free(tg_device *dev, void *ptr, void *handle);
/* Whether dev's backend has kernel k for dtype (optional entries may be missing). */
bool tg_device_supports(const tg_device *dev, tg_kernel k, tg_dtype dtype);
/* Per-device scratch memory for kernel workspaces (graph/scratch.c): a buffer of at
 * least nbytes owned by the calling thread, valid until its next call for the same
 * device. On the CPU a host pointer, on OpenCL a cl_mem (the in-order queue orders its
 * reuse). Freed at thread exit. */
tg_status tg_scratch(tg_device *dev, size_t nbytes, void **out);

/* Tape nodes are owned by autograd; a tensor's grad_fn ref is dropped through this. */
void tg_node_decref(tg_node *n);
void tg_hooks_free(tg_hook *h);

#endif
