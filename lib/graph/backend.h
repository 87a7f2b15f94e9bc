/* The backend interface: what a device must provide. A backend is a struct of function
 * pointers filled once (cpu/backend.c, opencl/backend.c). Ops check shapes, dtypes and
 * devices before calling; kernels only compute, on tensors of any strides, and return
 * TG_OK or an error they set with tg_error (out of memory, bad index values, CL errors). */
#ifndef TG_BACKEND_H
#define TG_BACKEND_H

#include "tapegrad.h"

/* Elementwise unary ops; p0/p1 are the scalar parameters named in the comment. */
typedef enum {
    TG_UN_NEG, TG_UN_EXP, TG_UN_LOG, TG_UN_SQRT, TG_UN_RSQRT, TG_UN_ABS, TG_UN_SIGN,
    TG_UN_RELU, TG_UN_SIGMOID, TG_UN_TANH, TG_UN_SIN, TG_UN_COS, TG_UN_SQUARE,
    TG_UN_RECIPROCAL,
    TG_UN_POW_SCALAR, /* x^p0 */
    TG_UN_ADD_SCALAR, /* x + p0 */
    TG_UN_MUL_SCALAR, /* x * p0 */
    TG_UN_CLAMP,      /* min(max(x, p0), p1) */
    TG_UN_STEP,       /* x > p0 ? 1 : 0, in x's dtype (masks for relu and clamp backward) */
    TG_UN_COUNT
} tg_unary_op;

/* Binary ops; the comparisons (from TG_BIN_EQ on) write u8. */
typedef enum {
    TG_BIN_ADD, TG_BIN_SUB, TG_BIN_MUL, TG_BIN_DIV, TG_BIN_POW, TG_BIN_MAXIMUM, TG_BIN_MINIMUM,
    TG_BIN_EQ, TG_BIN_NE, TG_BIN_LT, TG_BIN_LE, TG_BIN_GT, TG_BIN_GE,
    TG_BIN_COUNT
} tg_binary_op;
#define TG_BIN_FIRST_CMP TG_BIN_EQ

typedef enum { TG_RED_SUM, TG_RED_MAX, TG_RED_MIN, TG_RED_ARGMAX, TG_RED_ARGMIN } tg_reduce_op;
typedef enum { TG_RNG_UNIFORM, TG_RNG_NORMAL, TG_RNG_BERNOULLI } tg_rng_kind;

typedef struct tg_backend {
    const char *name;

    /* Memory. alloc returns TG_ERR_NOMEM (with a message) rather than crash. */
    tg_status (*alloc)(tg_device *dev, size_t nbytes, void **out);
    void (*free)(tg_device *dev, void *data, size_t nbytes);
    tg_status (*upload)(tg_device *dev, void *dst, size_t dst_offset, const void *src, size_t n);
    tg_status (*download)(tg_device *dev, void *dst, const void *src, size_t src_offset, size_t n);
    void (*empty_cache)(tg_device *dev);

    /* Kernels. out is written through its strides (it may be a view, and for in-place
     * ops may alias an input at the same positions). Inputs of binary/where are
     * already expanded to out's shape (stride 0 on broadcast axes). */
    tg_status (*fill)(tg_tensor *out, double value);
    tg_status (*copy)(tg_tensor *out, const tg_tensor *x); /* converts dtype */
    tg_status (*unary)(tg_unary_op op, tg_tensor *out, const tg_tensor *x, double p0, double p1);
    tg_status (*binary)(tg_binary_op op, tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
    tg_status (*where)(tg_tensor *out, const tg_tensor *cond, const tg_tensor *a, const tg_tensor *b);
    /* out has x's shape with 1 on the axes in mask (bit i = axis i); dense. Arg ops
     * write i32 indices along the single axis in mask. */
    tg_status (*reduce)(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask);
    /* a (..., M, K) @ b (..., K, N) -> out (..., M, N), equal batch axes, out dense. */
    tg_status (*matmul)(tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
    tg_status (*log_softmax)(tg_tensor *out, const tg_tensor *x, int axis);
    /* out[.., i, ..] = x[.., idx[.., i, ..], ..] along axis; idx has out's shape. */
    tg_status (*gather)(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx);
    /* out[.., idx[.., i, ..], ..] += src[.., i, ..] along axis; idx has src's shape. */
    tg_status (*scatter_add)(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src);
    /* Philox-4x32-10: element i (row-major in out) uses counter `counter + i`. */
    tg_status (*random)(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter,
                        double p0, double p1);
    /* out[i] = start + i * step, dense 1-D. */
    tg_status (*arange)(tg_tensor *out, double start, double step);
    /* Optional (NULL: the op composes it): dst += alpha * x, x already expanded to dst's
     * shape, same float dtype. The SGD step without a temporary. */
    tg_status (*axpy)(tg_tensor *dst, double alpha, const tg_tensor *x);
} tg_backend;

#endif
