/* The backend interface: what a device must provide. A backend is a struct of function
 * pointers filled once (cpu/backend.c, opencl/backend.c). Ops check shapes, dtypes and
 * devices before calling; kernels only compute, on tensors of any strides, and return
 * TG_OK or an error they set with tg_error (out of memory, bad index values, CL errors).
 *
 * Contract: a kernel never keeps the tensors it is given (no pointer to a tensor or its
 * storage survives the call; work queued on a device holds the buffers, not tensors),
 * and never calls ops, nn or autograd. Entries marked optional may be NULL: the op
 * then composes the operation or reports that the device lacks it
 * (tg_device_supports). The others are mandatory and checked when a device opens.
 *
 * Each backend also registers itself (tg_backend_registration, below) in the table
 * that meson generates from the backends built (lib/graph/backends.h), so the graph
 * layer finds devices by name without naming any backend. */
#ifndef TG_BACKEND_H
#define TG_BACKEND_H

#include "tapegrad.h"
#include "lib/graph/op-list.h"

/* Elementwise op kinds, generated from lib/graph/op-list.h (p0/p1 are named there). */
typedef enum {
#define X(kind, name, flags) TG_UN_##kind,
    TG_UNARY_LIST(X)
#undef X
    TG_UN_COUNT
} tg_unary_op;

typedef enum {
#define X(kind, name, flags) TG_BIN_##kind,
    TG_BINARY_LIST(X)
#undef X
    TG_BIN_COUNT
} tg_binary_op;
#define TG_BIN_FIRST_CMP TG_BIN_EQ

/* What conv2d_fused does after the convolution (+ bias), in this order: eval-mode batch
 * normalization with the running statistics mean and var (C values each; NULL: none),
 * the affine weight and bias (each NULL: 1, 0) and eps; + residual (the output's shape,
 * dense; NULL: none); relu. All tensors of the output's dtype and device. */
typedef struct {
    const tg_tensor *mean, *var, *weight, *bias;
    double eps;
    const tg_tensor *residual;
    bool relu;
} tg_conv_epilogue;

typedef enum { TG_RED_SUM, TG_RED_MAX, TG_RED_MIN, TG_RED_ARGMAX, TG_RED_ARGMIN } tg_reduce_op;
typedef enum { TG_RNG_UNIFORM, TG_RNG_NORMAL, TG_RNG_BERNOULLI } tg_rng_kind;

/* Geometry of a 2-D convolution over NCHW tensors, computed by the op layer. pad is
 * the top/left padding; bottom/right padding is implied by OH/OW (rows and columns
 * past the input are zeros), so "same" padding with even kernels fits. */
#ifndef TG_CONV2D_GEOM_DEFINED
#define TG_CONV2D_GEOM_DEFINED
typedef struct {
    int64_t N, C, H, W;                      /* input x (N, C, H, W) */
    int64_t OC, KH, KW;                      /* weight (OC, C/groups, KH, KW) */
    int64_t OH, OW;                          /* output (N, OC, OH, OW) */
    int64_t stride[2], pad[2], dilation[2];  /* [0]: H, [1]: W */
    int64_t groups;
} tg_conv2d_geom;
#endif

typedef enum { TG_POOL_MAX, TG_POOL_AVG } tg_pool_kind;
/* Geometry of a 2-D pooling window over NCHW tensors (output size from the op layer,
 * ceil_mode included), PyTorch's rules. Output o on an axis of input size I covers
 * o*stride - pad + k*dilation for k in [0, kernel) that lie in [0, I) (max; dilation
 * is 1 for avg). avg divides by the window clipped to the padded input [-pad, I + pad)
 * when count_include_pad, else to the input, or by divisor when it is non-zero.
 * adaptive: kernel, stride, pad and dilation are unused and output o covers
 * [floor(o*I/O), ceil((o+1)*I/O)) (adaptive_avg/max_pool2d). A max window that holds
 * no input element (possible with dilation) gives -inf and PyTorch's index, which may
 * lie outside the plane; backward skips such indices. */
typedef struct {
    int64_t N, C, H, W, OH, OW;
    int64_t kernel[2], stride[2], pad[2], dilation[2];
    bool count_include_pad;
    bool adaptive;
    int64_t divisor;
} tg_pool2d_geom;

/* Normalisation, computed by the op layer. x is dense and seen as (N, C, S), S the
 * product of the axes after C:
 *   batch norm: statistics per channel c over N and S; weight, bias, running stats (C);
 *   group norm: statistics per (n, group) over its C / groups channels and S, saved
 *     as (N * groups); weight and bias per channel (C);
 *   layer norm: N rows of C elements (S = 1; C the product of normalized_shape),
 *     statistics per row, saved as (N); weight and bias (C), one per element of a row.
 * Statistics are the biased (population) variance; saved "invstd" is 1 / sqrt(var + eps). */
typedef struct {
    int64_t N, C, S;
    int64_t groups;    /* group norm */
    double momentum;   /* batch norm in training: running = (1 - momentum) * running + momentum * batch
                          (the cumulative average's 1 / num_batches_tracked already applied) */
    double eps;
    bool training;     /* batch norm: batch statistics (and the running update) vs running stats */
    bool relu;         /* batch norm: the op is relu(batch_norm(x)), run by batch_norm_relu */
} tg_norm_params;

/* Region-of-interest pooling over (N, C, H, W) (ops/detection.c), torchvision's
 * roi_pool and roi_align. boxes (K, 5) of the input's dtype hold [batch_index, x1, y1,
 * x2, y2] in input coordinates; the op layer has checked that every batch index is in
 * [0, N) and every coordinate finite. Output (K, C, PH, PW). sampling_ratio <= 0 means
 * ceil(roi size / output size) samples per bin on each axis (roi_align only). */
typedef struct {
    int64_t N, C, H, W, K, PH, PW;
    double spatial_scale;
    int64_t sampling_ratio;
    bool aligned;      /* roi_align: the -0.5 pixel shift */
} tg_roi_geom;

/* The kernel entries, for tg_device_supports. */
typedef enum {
    TG_KERNEL_FILL, TG_KERNEL_COPY, TG_KERNEL_UNARY, TG_KERNEL_BINARY, TG_KERNEL_WHERE, TG_KERNEL_REDUCE,
    TG_KERNEL_MATMUL, TG_KERNEL_LOG_SOFTMAX, TG_KERNEL_GATHER, TG_KERNEL_SCATTER_ADD, TG_KERNEL_RANDOM,
    TG_KERNEL_ARANGE, TG_KERNEL_AXPY, TG_KERNEL_CONV2D, TG_KERNEL_CONV2D_BACKWARD_DATA,
    TG_KERNEL_CONV2D_BACKWARD_WEIGHT, TG_KERNEL_POOL2D, TG_KERNEL_POOL2D_BACKWARD, TG_KERNEL_BATCH_NORM,
    TG_KERNEL_BATCH_NORM_BACKWARD, TG_KERNEL_IM2COL, TG_KERNEL_COL2IM,
    TG_KERNEL_COUNT
} tg_kernel;

typedef struct tg_backend {
    const char *name;

    /* Memory. alloc returns TG_ERR_NOMEM (with a message) rather than crash. */
    tg_status (*alloc)(tg_device *dev, size_t nbytes, void **out);
    void (*free)(tg_device *dev, void *data, size_t nbytes);
    tg_status (*upload)(tg_device *dev, void *dst, size_t dst_offset, const void *src, size_t n);
    tg_status (*download)(tg_device *dev, void *dst, const void *src, size_t src_offset, size_t n);
    void (*empty_cache)(tg_device *dev);
    /* Optional: page-locked ("pinned") host memory, which the device reads and writes by
     * DMA, for staging buffers (data-parallel gradient buckets). host_alloc writes a host
     * pointer to *ptr and what host_free needs to *handle; NULL: plain host memory. */
    tg_status (*host_alloc)(tg_device *dev, size_t nbytes, void **ptr, void **handle);
    void (*host_free)(tg_device *dev, void *ptr, void *handle);

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
    /* Optional (NULL: the rule composes dout * step(x)): dx = x > threshold ? dout : 0,
     * PyTorch's threshold_backward, one pass where the composition takes two and a
     * temporary. dx, dout and x have one shape and one float dtype (any strides). */
    tg_status (*threshold_backward)(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *x, double threshold);

    /* The big ops, outputs first, mirrored forward and backward (llm.c's way). All
     * optional; dense NCHW tensors of one float dtype. conv2d: out = x (*) w + bias
     * (bias (OC) or NULL); backward_data is also conv_transpose2d's forward. */
    tg_status (*conv2d)(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                        const tg_conv2d_geom *g);
    /* Optional (NULL: tg_conv2d composes its epilogue with tg_batch_norm, tg_add and
     * tg_relu): conv2d, then e applied to each output value in the convolution's own
     * output pass, with the arithmetic of the batch norm kernel (the same bits as the
     * composition). Inference only: the op layer never records it. */
    tg_status (*conv2d_fused)(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                              const tg_conv_epilogue *e, const tg_conv2d_geom *g);
    tg_status (*conv2d_backward_data)(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *w,
                                      const tg_conv2d_geom *g);
    tg_status (*conv2d_backward_weight)(tg_tensor *dw, const tg_tensor *dout, const tg_tensor *x,
                                        const tg_conv2d_geom *g);
    /* out (N, C, OH, OW); indices (same shape, i64 flat positions in each H*W plane, as
     * PyTorch's) written for max pooling when not NULL. backward: dx from dout, through
     * indices for max, spread over the window for avg. */
    tg_status (*pool2d)(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                        const tg_pool2d_geom *g);
    tg_status (*pool2d_backward)(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout, const tg_tensor *indices,
                                 const tg_pool2d_geom *g);
    /* Batch norm over (N, C, ...) (geometry in tg_norm_params): out, and the per-channel
     * mean and inverse std it used (saved for backward: the batch's in training, the
     * running ones in eval); in training the running statistics (NULL: none) are updated
     * in place with the unbiased variance and momentum. weight/bias may be NULL; the
     * (C) tensors may have any stride. backward: dx, dweight, dbias may each be NULL. */
    tg_status (*batch_norm)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,
                            tg_tensor *running_var, const tg_tensor *x, const tg_tensor *weight,
                            const tg_tensor *bias, const tg_norm_params *p);
    tg_status (*batch_norm_backward)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                     const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                     const tg_tensor *save_invstd, const tg_norm_params *p);
    /* Optional (NULL: the op runs batch_norm, then relu): batch_norm with out = relu of
     * its result (relu's own bits: -0 and NaN stay), the same statistics. */
    tg_status (*batch_norm_relu)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd,
                                 tg_tensor *running_mean, tg_tensor *running_var, const tg_tensor *x,
                                 const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p);
    /* Optional (NULL: the op runs batch_norm, add and relu): batch_norm with out =
     * batch_norm(x) + residual (x's shape, dense), through relu where p->relu; the same
     * statistics. */
    tg_status (*batch_norm_add)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd,
                                tg_tensor *running_mean, tg_tensor *running_var, const tg_tensor *x,
                                const tg_tensor *residual, const tg_tensor *weight, const tg_tensor *bias,
                                const tg_norm_params *p);
    /* Optional (NULL: the op masks dout by threshold_backward first): the backward of
     * batch_norm_relu given its output relu_out, batch_norm_backward of dout where
     * relu_out > 0 and 0 elsewhere, without a masked copy of dout. */
    tg_status (*batch_norm_relu_backward)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias,
                                          const tg_tensor *dout, const tg_tensor *relu_out, const tg_tensor *x,
                                          const tg_tensor *weight, const tg_tensor *save_mean,
                                          const tg_tensor *save_invstd, const tg_norm_params *p);
    /* The generic convolution path: cols (N, C/groups*KH*KW per group..., OH*OW). */
    tg_status (*im2col)(tg_tensor *cols, const tg_tensor *x, const tg_conv2d_geom *g);
    tg_status (*col2im)(tg_tensor *dx, const tg_tensor *cols, const tg_conv2d_geom *g);

    /* --- more pooling entries (ops/pool.c) --- */
    /* Optional. out (N, C, H, W) is zeroed, then out[n, c].flat[indices[i]] = x[i] for
     * each element of x (N, C, OH, OW) in order, so a repeated index keeps the last
     * (PyTorch's CPU kernel); an index outside [0, H*W) is an error naming it. Shares
     * pool2d_backward's dtype support (tg_device_supports). */
    tg_status (*max_unpool2d)(tg_tensor *out, const tg_tensor *x, const tg_tensor *indices,
                              const tg_pool2d_geom *g);

    /* --- more normalisation entries (ops/norm.c: layer/group norm, LRN) --- */
    /* Optional (NULL: the op composes them from other ops). Layer and group norm with the
     * geometry of tg_norm_params: out like x, save_mean and save_invstd the per-row /
     * per-group statistics; weight/bias (C) may be NULL. backward: any of dx, dweight,
     * dbias may be NULL (not wanted); dx like x, dweight and dbias (C). */
    tg_status (*layer_norm)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                            const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p);
    tg_status (*layer_norm_backward)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                     const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                     const tg_tensor *save_invstd, const tg_norm_params *p);
    tg_status (*group_norm)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                            const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p);
    tg_status (*group_norm_backward)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                     const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                     const tg_tensor *save_invstd, const tg_norm_params *p);

    /* --- resampling and dropout entries (ops/interpolate.c, ops/dropout.c) --- */

    /* --- detection entries (ops/detection.c), geometry in tg_roi_geom --- */
    /* Optional. roi_pool: out (K, C, PH, PW) the max of each bin (0 for an empty one)
     * and argmax (same shape, i64) its flat position in the H*W plane of the box's image
     * (-1: none). backward: dx (N, C, H, W) zeroed, then dout added at the argmax.
     * roi_align: out the average of each bin's bilinear samples; backward spreads dout
     * over the same samples with the same weights. Dense tensors, one float dtype. */
    tg_status (*roi_pool)(tg_tensor *out, tg_tensor *argmax, const tg_tensor *x, const tg_tensor *boxes,
                          const tg_roi_geom *g);
    tg_status (*roi_pool_backward)(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *argmax,
                                   const tg_tensor *boxes, const tg_roi_geom *g);
    tg_status (*roi_align)(tg_tensor *out, const tg_tensor *x, const tg_tensor *boxes, const tg_roi_geom *g);
    tg_status (*roi_align_backward)(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *boxes,
                                    const tg_roi_geom *g);

    /* --- recurrent entries (ops/rnn_cell.c) --- */
    /* Optional. The LSTM cell's pointwise part on dense (N, 4H) gates (i, f, g, o blocks
     * of H columns; plus hidden, the same shape, when it is not NULL) and (N, H) c_prev:
     * c = sigmoid(f) c_prev + sigmoid(i) tanh(g),
     * h = sigmoid(o) tanh(c); ws (N, 5H) receives sigmoid(i), sigmoid(f), tanh(g),
     * sigmoid(o), tanh(c) for backward. backward: from dh, dc (N, H) and ws, c_prev:
     * dgates (N, 4H) and dc_prev (N, H). Without them ops compose the cell from
     * elementwise ops. One float dtype throughout. */
    tg_status (*lstm_pointwise)(tg_tensor *h, tg_tensor *c, tg_tensor *ws, const tg_tensor *gates,
                                const tg_tensor *hidden, const tg_tensor *c_prev);
    tg_status (*lstm_pointwise_backward)(tg_tensor *dgates, tg_tensor *dc_prev, const tg_tensor *dh,
                                         const tg_tensor *dc, const tg_tensor *ws, const tg_tensor *c_prev);

    /* Optional: whether an entry handles a dtype (NULL: a non-NULL entry handles every
     * dtype the op allows). */
    bool (*supports)(tg_kernel k, tg_dtype dtype);
} tg_backend;

/* What a backend registers with the graph layer. */
typedef struct {
    const char *name;                /* the device-name prefix: "cpu", "opencl" */
    bool indexed;                    /* devices are addressed as name:N */
    /* Opens device index (-1: the backend's default, e.g. the first GPU); NULL with a
     * message when it is not there. Devices live until exit. */
    tg_device *(*open)(int index);
    /* Fills up to max infos (out may be NULL) and returns how many devices there are. */
    int (*list)(tg_device_info *out, int max);
    tg_status (*info)(const tg_device *dev, tg_device_info *out);
    void (*synchronize)(tg_device *dev); /* optional: waits for queued work */
    int (*num_threads)(void);            /* optional: host threads its kernels use */
    tg_status (*set_num_threads)(int n); /* optional */
} tg_backend_registration;

#endif
