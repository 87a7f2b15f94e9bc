/* The tensor, storage and device structs, shared by graph, ops, autograd and backends.
 * Public code sees only the opaque types of tapegrad.h. Strides and offsets count
 * elements, not bytes; strides may be 0 (expand) or negative (flip). */
#ifndef TG_TENSOR_IMPL_H
#define TG_TENSOR_IMPL_H

#include <stdatomic.h>

#include "tapegrad.h"
#include "lib/graph/backend.h"

typedef struct tg_node tg_node;

/* A block of device memory shared by a tensor and its views. */
typedef struct tg_storage {
    int refcount;
    tg_device *dev;
    void *data;       /* CPU: a host pointer; OpenCL: a cl_mem */
    size_t nbytes;
    uint32_t version; /* bumped by every in-place write; saved tensors check it */
} tg_storage;

struct tg_tensor {
    int refcount;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t strides[TG_MAX_DIMS];
    int64_t offset;           /* into storage, in elements */
    tg_storage *storage;
    bool requires_grad;
    tg_node *grad_fn;         /* the node that made it (owned ref), NULL for leaves */
    tg_tensor *grad;          /* accumulated gradient of a leaf (owned ref) */
};

struct tg_device {
    const char *name;         /* "cpu", "opencl:0" */
    const tg_backend *be;
    void *impl;               /* backend state */
    bool lacks_fp64;          /* f64 tensors are refused at creation (OpenCL without cl_khr_fp64) */
    tg_memory_stats stats;
};

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
void tg_tensor_decref(tg_tensor *t);
void tg_scope_add(tg_tensor *t); /* hands the caller's ref to the current scope */

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

/* The CPU device (cpu/backend.c). */
tg_device *tg_cpu_device(void);

/* Tape nodes are owned by autograd; a tensor's grad_fn ref is dropped through this. */
void tg_node_decref(tg_node *n);

#endif
