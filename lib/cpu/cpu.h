/* Internals of the CPU backend shared by its files: the allocator, the strided
 * iterator every kernel uses, and the kernel entry points backend.c puts in the table. */
#ifndef TG_CPU_H
#define TG_CPU_H

#include "lib/graph/tensor-impl.h"

tg_status tg_cpu_alloc(tg_device *dev, size_t nbytes, void **out);
void tg_cpu_free(tg_device *dev, void *data, size_t nbytes);
void tg_cpu_empty_cache(tg_device *dev);

/* Walks up to four operands of one shape. Axes of size 1 are dropped and neighbouring
 * axes merged where every operand allows, so dense tensors become one long row. */
#define TG_ITER_MAX_OPS 4
typedef struct {
    int ndim, nops;
    int64_t shape[TG_MAX_DIMS];
    int64_t st[TG_ITER_MAX_OPS][TG_MAX_DIMS]; /* byte strides */
    char *base[TG_ITER_MAX_OPS];
} tg_cpu_iter;

/* The inner loop: n elements, one pointer and byte stride per operand. */
typedef void (*tg_cpu_row_fn)(void *ctx, int64_t n, char **p, const int64_t *st);

/* Operand k is at base[k] with element strides strides[k] and element size sizes[k]. */
void tg_cpu_iter_init(tg_cpu_iter *it, int ndim, const int64_t *shape, int nops,
                      char *const *base, const int64_t *const *strides, const size_t *sizes);
/* Runs fn over every row; splits rows (and long rows) across the thread pool when the
 * total is at least grain elements and parallel is true. */
void tg_cpu_iter_run(const tg_cpu_iter *it, bool parallel, int64_t grain, tg_cpu_row_fn fn, void *ctx);

/* A tensor's first element as a host pointer. */
static inline char *tg_cpu_ptr(const tg_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)tg_elsize(t->dtype);
}

tg_status tg_cpu_fill(tg_tensor *out, double value);
tg_status tg_cpu_copy(tg_tensor *out, const tg_tensor *x);
tg_status tg_cpu_unary(tg_unary_op op, tg_tensor *out, const tg_tensor *x, double p0, double p1);
tg_status tg_cpu_binary(tg_binary_op op, tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cpu_where(tg_tensor *out, const tg_tensor *c, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cpu_arange(tg_tensor *out, double start, double step);
tg_status tg_cpu_axpy(tg_tensor *dst, double alpha, const tg_tensor *x);
tg_status tg_cpu_threshold_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *x, double threshold);
tg_status tg_cpu_reduce(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask);
tg_status tg_cpu_log_softmax(tg_tensor *out, const tg_tensor *x, int axis);
tg_status tg_cpu_matmul(tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cpu_gather(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx);
tg_status tg_cpu_scatter_add(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src);
tg_status tg_cpu_random(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter,
                        double p0, double p1);

/* Philox-4x32-10 (philox.c), shared with the OpenCL kernels' definition. */
void tg_philox4x32(uint64_t counter, uint64_t key, uint32_t out[4]);

#endif
