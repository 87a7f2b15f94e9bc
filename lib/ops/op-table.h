/* The op table, declared once: one descriptor per primitive op, the single source of
 * its public name, its inputs and outputs, what it saves for backward, whether it
 * writes an input in place, its shape rule, its kernel launch and its backward rule.
 * The enum, the descriptors (op-table.c) and, through lib/graph/op-list.h, the
 * backends' elementwise enums all come from these lists.
 *
 * Running an op is generic (ops/dispatch.c, tg_op_run): check the inputs (live,
 * one device, float where the op says so), apply the shape rule (which checks the
 * rest and describes the outputs), allocate the outputs, launch the kernel, bump the
 * version of an input written in place, and record a node with the saved tensors.
 * A builder is its arguments in a tg_op_call plus that one call.
 *
 * Adding an op: a row in TG_OP_LIST (or in op-list.h for an elementwise kind), its
 * shape rule and launch (often its family's), its backward rule, the kernel in each
 * backend that lacks one, and a gradcheck. */
#ifndef TG_OP_TABLE_H
#define TG_OP_TABLE_H

#include "lib/graph/tensor-impl.h"

/* Descriptor flags. */
#define TG_OPF_FLOAT (1u << 0)      /* input 0 must be floating */
#define TG_OPF_SAVE_IN (1u << 1)    /* op-list.h rows: backward reads the inputs */
#define TG_OPF_SAVE_OUT (1u << 2)   /* backward reads output 0 */
#define TG_OPF_NOGRAD (1u << 3)     /* never recorded (masks, indices, in-place updates) */
#define TG_OPF_VIEW (1u << 4)       /* output 0 is a view of input 0 the shape rule describes */
#define TG_OPF_INPLACE (1u << 5)    /* writes input 0 in place; nothing is allocated */
#define TG_OPF_ANY_DEVICE (1u << 6) /* the output may live on another device (tg_to) */

#define TG_OP_MAX_OUT 4
#define TG_OP_MAX_EXTRA 4

/* The typed parameters of an op, kept on its node for backward. */
typedef union {
    struct { double p0, p1; } scalar;  /* unary parameters (op-list.h); fill_'s value; axpy_'s alpha */
    struct { uint32_t mask; } reduce;  /* reduced axes, bit i = axis i */
    struct { int axis; } axis;         /* log_softmax, gather, scatter_add, cat */
    struct { int order[TG_MAX_DIMS]; } permute;
    struct { int axis; int64_t start, step; } slice; /* normalised by the shape rule */
    struct { uint32_t mask; } flip;
    struct { int ndim; int64_t shape[TG_MAX_DIMS], start[TG_MAX_DIMS], step[TG_MAX_DIMS]; double fill; } embed;
    struct { tg_dtype dtype; } cast;
    struct { tg_device *dev; } to;
    struct { tg_reduction reduction; int64_t ignore_index; } cross_entropy;
    struct { const tg_function *f; void *user; } function;
    /* convolution (ops/conv.c) */
    /* geometry but N, C, OC; epi: conv2d's fused epilogue (the builder's, for the one
     * unrecorded call it makes; NULL otherwise) */
    struct { int64_t H, W, OH, OW, KH, KW, stride[2], pad[2], dilation[2], groups; const tg_conv_epilogue *epi; } conv;

    /* pooling (ops/pool.c) */
    struct {
        tg_pool2d_geom g;      /* the builder's options; the shape rule fills the sizes */
        int64_t out_hw[2];     /* max_unpool2d's output_size (0: the default) */
        bool ceil_mode;
        bool want_indices;     /* max: the caller reads the indices (else only backward does) */
        bool empty_windows;    /* max: some window holds no input element (dilation) */
    } pool;
    /* normalisation (ops/norm.c) */
    /* weight, bias: input index (-1: none); axes: layer norm's normalised axes. The running
     * statistics are no inputs (no edges, so a node keeps its small input array); they are
     * used by the call only and never read from a node. */
    /* residual: batch norm's input index of the tensor added before the relu (-1: none) */
    struct { tg_norm_params p; tg_tensor *running_mean, *running_var; int8_t weight, bias, axes, residual; } norm;

    /* resampling, dropout, activations */

    /* detection (ops/detection.c) */
    struct { tg_roi_geom g; } roi;

} tg_op_args;

/* What an output will be: the shape rule fills one per output. */
typedef struct {
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    tg_device *dev;   /* NULL: the inputs' device */
    bool no_grad;     /* an output backward never flows through (indices) */
} tg_out_spec;

/* One call of an op, from the builder through the shape rule and the launch. */
typedef struct {
    int op;                 /* tg_op */
    int n_in;
    tg_tensor **in;         /* the builder's array; a shape rule may replace entries (casts) */
    tg_op_args args;
    /* filled by the shape rule */
    int n_out;
    tg_out_spec out_spec[TG_OP_MAX_OUT];
    int64_t view_strides[TG_MAX_DIMS], view_offset; /* TG_OPF_VIEW: output 0's geometry */
    bool no_record;         /* this call records nothing (a cast to an integer dtype) */
    /* filled by the runner and the launch */
    tg_tensor *out[TG_OP_MAX_OUT];
    tg_tensor *extra_save[TG_OP_MAX_EXTRA]; /* launch: more tensors for backward (owned refs) */
    int n_extra;
} tg_op_call;

typedef struct tg_node tg_node;
typedef bool (*tg_shape_rule)(tg_op_call *c);
typedef tg_status (*tg_launch_fn)(tg_op_call *c);
/* A backward rule: from the gradients of the node's outputs (zeros for outputs that got
 * none, NULL for no_grad ones), the gradients of its inputs (gin[i], with input i's
 * shape; NULL for none). Written with op builders only. */
typedef tg_status (*tg_backward_fn)(tg_node *n, tg_tensor *const *gout, tg_tensor **gin);

typedef struct {
    const char *name;        /* the public function: "tg_exp" */
    const char *args;        /* its tensor arguments, for messages: "a b" */
    tg_shape_rule shape;
    tg_launch_fn launch;     /* tg_view_launch for views: the runner makes the view */
    tg_backward_fn backward; /* tg_no_backward for ops that are never recorded */
    int kind;                /* the backend entry's op code (tg_unary_op, tg_binary_op, tg_reduce_op) */
    int n_in;                /* -1: any number (cat) */
    uint32_t flags;
    uint32_t save_in;        /* bit i: input i is saved for backward, in input order */
} tg_op_desc;

/* The ops that are not elementwise. Columns: enum, public name, argument names,
 * shape rule, launch, backward, kind, inputs, flags, saved inputs. */
#define TG_OP_LIST(X)                                                                                       \
    /* ops/binary.c */                                                                                      \
    X(WHERE, "tg_where", "a b cond", tg_where_shape, tg_where_launch, tg_bw_where, 0, 3, 0, 1u << 2)        \
    /* ops/reduce.c */                                                                                      \
    X(SUM, "tg_sum", "x", tg_reduce_shape, tg_reduce_launch, tg_bw_sum, TG_RED_SUM, 1, 0, 0)                \
    X(MAX, "tg_max", "x", tg_reduce_shape, tg_reduce_launch, tg_bw_maxmin, TG_RED_MAX, 1, TG_OPF_SAVE_OUT, 1) \
    X(MIN, "tg_min", "x", tg_reduce_shape, tg_reduce_launch, tg_bw_maxmin, TG_RED_MIN, 1, TG_OPF_SAVE_OUT, 1) \
    X(ARGMAX, "tg_argmax", "x", tg_reduce_shape, tg_reduce_launch, tg_no_backward, TG_RED_ARGMAX, 1, TG_OPF_NOGRAD, 0) \
    X(ARGMIN, "tg_argmin", "x", tg_reduce_shape, tg_reduce_launch, tg_no_backward, TG_RED_ARGMIN, 1, TG_OPF_NOGRAD, 0) \
    X(LOG_SOFTMAX, "tg_log_softmax", "x", tg_log_softmax_shape, tg_log_softmax_launch, tg_bw_log_softmax, 0, 1, \
      TG_OPF_FLOAT | TG_OPF_SAVE_OUT, 0)                                                                    \
    /* ops/loss.c */                                                                                        \
    X(CROSS_ENTROPY, "tg_cross_entropy", "logits labels", tg_cross_entropy_shape, tg_cross_entropy_launch,  \
      tg_bw_cross_entropy, 0, 2, TG_OPF_FLOAT, 1)                                                           \
    /* ops/matmul.c */                                                                                      \
    X(MATMUL, "tg_matmul", "a b", tg_matmul_shape, tg_matmul_launch, tg_bw_matmul, 0, 2, TG_OPF_FLOAT, 3)   \
    /* ops/movement.c: views */                                                                             \
    X(RESHAPE, "tg_reshape", "x", tg_reshape_shape, tg_view_launch, tg_bw_reshape, 0, 1, TG_OPF_VIEW, 0)              \
    X(PERMUTE, "tg_permute", "x", tg_permute_shape, tg_view_launch, tg_bw_permute, 0, 1, TG_OPF_VIEW, 0)              \
    X(EXPAND, "tg_expand", "x", tg_expand_shape, tg_view_launch, tg_bw_expand, 0, 1, TG_OPF_VIEW, 0)                  \
    X(SLICE, "tg_slice", "x", tg_slice_shape, tg_view_launch, tg_bw_slice, 0, 1, TG_OPF_VIEW, 0)                      \
    X(FLIP, "tg_flip", "x", tg_flip_shape, tg_view_launch, tg_bw_flip, 0, 1, TG_OPF_VIEW, 0)                          \
    X(COPY, "tg_clone", "x", tg_same_shape, tg_copy_launch, tg_bw_copy, 0, 1, 0, 0)                         \
    /* ops/join.c */                                                                                        \
    X(EMBED, "tg_pad", "x", tg_embed_shape, tg_embed_launch, tg_bw_embed, 0, 1, 0, 0)                       \
    X(CAT, "tg_cat", "a tensor", tg_cat_shape, tg_cat_launch, tg_bw_cat, 0, -1, 0, 0)                         \
    X(CHUNK, "tg_chunk", "x", tg_chunk_shape, tg_view_launch, tg_bw_chunk, 0, 1, TG_OPF_VIEW, 0)              \
    /* ops/index.c */                                                                                       \
    X(GATHER, "tg_gather", "x index", tg_gather_shape, tg_gather_launch, tg_bw_gather, 0, 2, 0, 1u << 1)    \
    X(SCATTER_ADD, "tg_scatter_add", "x index src", tg_scatter_add_shape, tg_scatter_add_launch,            \
      tg_bw_scatter_add, 0, 3, TG_OPF_FLOAT, 1u << 1)                                                       \
    X(CAST, "tg_cast", "x", tg_cast_shape, tg_copy_launch, tg_bw_cast, 0, 1, 0, 0)                          \
    X(TO, "tg_to", "x", tg_to_shape, tg_to_launch, tg_bw_to, 0, 1, TG_OPF_ANY_DEVICE, 0)                    \
    /* ops/inplace.c: updates, never recorded */                                                            \
    X(COPY_, "tg_copy_", "dst src", tg_update_shape, tg_update_launch, tg_no_backward, TG_BIN_COUNT, 2,               \
      TG_OPF_INPLACE | TG_OPF_NOGRAD, 0)                                                                    \
    X(ADD_, "tg_add_", "dst src", tg_update_shape, tg_update_launch, tg_no_backward, TG_BIN_ADD, 2,                   \
      TG_OPF_INPLACE | TG_OPF_NOGRAD, 0)                                                                    \
    X(SUB_, "tg_sub_", "dst src", tg_update_shape, tg_update_launch, tg_no_backward, TG_BIN_SUB, 2,                   \
      TG_OPF_INPLACE | TG_OPF_NOGRAD, 0)                                                                    \
    X(MUL_, "tg_mul_", "dst src", tg_update_shape, tg_update_launch, tg_no_backward, TG_BIN_MUL, 2,                   \
      TG_OPF_INPLACE | TG_OPF_NOGRAD, 0)                                                                    \
    X(AXPY_, "tg_axpy_", "dst src", tg_update_shape, tg_axpy_launch, tg_no_backward, 0, 2,                            \
      TG_OPF_INPLACE | TG_OPF_NOGRAD | TG_OPF_FLOAT, 0)                                                     \
    X(FILL_, "tg_fill_", "dst", tg_fill_shape, tg_fill_launch, tg_no_backward, 0, 1, TG_OPF_INPLACE | TG_OPF_NOGRAD, 0) \
    /* ops/conv.c */                                                                                        \
    X(CONV2D, "tg_conv2d", "x weight bias", tg_conv_shape, tg_conv_launch, tg_bw_conv2d, TG_KERNEL_CONV2D, 3,  \
      TG_OPF_FLOAT, 3)                                                                                      \
    X(CONV2D_BACKWARD_DATA, "tg_conv_transpose2d", "x weight", tg_conv_shape, tg_conv_launch,               \
      tg_bw_conv2d_backward_data, TG_KERNEL_CONV2D_BACKWARD_DATA, 2, TG_OPF_FLOAT, 3)                       \
    X(CONV2D_BACKWARD_WEIGHT, "tg_conv2d_backward_weight", "grad_output x", tg_conv_shape, tg_conv_launch,  \
      tg_bw_conv2d_backward_weight, TG_KERNEL_CONV2D_BACKWARD_WEIGHT, 2, TG_OPF_FLOAT, 3)                   \
                                                                                                            \
    /* ops/pool.c */                                                                                        \
    X(MAX_POOL2D, "tg_max_pool2d", "x", tg_pool2d_shape, tg_pool2d_launch, tg_bw_max_pool2d, TG_POOL_MAX, 1,  \
      TG_OPF_FLOAT, 0)                                                                                      \
    X(ADAPTIVE_MAX_POOL2D, "tg_adaptive_max_pool2d", "x", tg_pool2d_shape, tg_pool2d_launch, tg_bw_max_pool2d, \
      TG_POOL_MAX, 1, TG_OPF_FLOAT, 0)                                                                      \
    X(MAX_POOL2D_BACKWARD, "tg_max_pool2d_backward", "grad indices", tg_pool2d_backward_shape,              \
      tg_pool2d_backward_launch, tg_bw_pool_gather, TG_POOL_MAX, 2, TG_OPF_FLOAT, 1u << 1)                  \
    X(MAX_UNPOOL2D, "tg_max_unpool2d", "x indices", tg_max_unpool2d_shape, tg_max_unpool2d_launch,          \
      tg_bw_pool_gather, TG_POOL_MAX, 2, TG_OPF_FLOAT, 1u << 1)                                             \
    X(AVG_POOL2D, "tg_avg_pool2d", "x", tg_pool2d_shape, tg_pool2d_launch, tg_bw_avg_pool2d, TG_POOL_AVG, 1,  \
      TG_OPF_FLOAT, 0)                                                                                      \
    X(ADAPTIVE_AVG_POOL2D, "tg_adaptive_avg_pool2d", "x", tg_pool2d_shape, tg_pool2d_launch, tg_bw_avg_pool2d, \
      TG_POOL_AVG, 1, TG_OPF_FLOAT, 0)                                                                      \
    X(AVG_POOL2D_BACKWARD, "tg_avg_pool2d_backward", "grad", tg_pool2d_backward_shape,                      \
      tg_pool2d_backward_launch, tg_bw_avg_pool2d_backward, TG_POOL_AVG, 1, TG_OPF_FLOAT, 0)                \
    /* ops/detection.c */                                                                                   \
    X(ROI_POOL, "tg_roi_pool", "input boxes", tg_roi_shape, tg_roi_launch, tg_bw_roi_pool, 0, 2, TG_OPF_FLOAT, \
      1u << 1)                                                                                              \
    X(ROI_POOL_BACKWARD, "tg_roi_pool_backward", "grad argmax boxes", tg_roi_backward_shape,                \
      tg_roi_backward_launch, tg_bw_roi_pool_backward, 0, 3, TG_OPF_FLOAT, (1u << 1) | (1u << 2))           \
    X(ROI_ALIGN, "tg_roi_align", "input boxes", tg_roi_shape, tg_roi_launch, tg_bw_roi_align, 1, 2, TG_OPF_FLOAT, \
      1u << 1)                                                                                              \
    X(ROI_ALIGN_BACKWARD, "tg_roi_align_backward", "grad boxes", tg_roi_backward_shape, tg_roi_backward_launch, \
      tg_bw_roi_align_backward, 1, 2, TG_OPF_FLOAT, 1u << 1)                                                \
    /* ops/norm.c */                                                                                        \
    X(BATCH_NORM, "tg_batch_norm", "input", tg_batch_norm_shape, tg_batch_norm_launch, tg_bw_batch_norm, 0, -1, \
      TG_OPF_FLOAT, 1)                                                                                      \
    X(LAYER_NORM, "tg_layer_norm", "input", tg_layer_norm_shape, tg_layer_norm_launch, tg_bw_layer_norm, 0, -1, \
      TG_OPF_FLOAT, 1)                                                                                      \
    X(GROUP_NORM, "tg_group_norm", "input", tg_group_norm_shape, tg_group_norm_launch, tg_bw_group_norm, 0, -1, \
      TG_OPF_FLOAT, 1)                                                                                      \
                                                                                                            \
    /* ops/interpolate.c, ops/dropout.c, ops/activation.c */                                                \
    X(ERF, "tg_erf", "x", tg_same_shape, tg_erf_launch, tg_bw_erf, 0, 1, TG_OPF_FLOAT, 1)                  \
    X(ERFC, "tg_erfc", "x", tg_same_shape, tg_erf_launch, tg_bw_erf, 1, 1, TG_OPF_FLOAT, 1)                \
                                                                                                            \
    /* ops/rnn_cell.c */                                                                                    \
    X(LSTM_POINTWISE, "tg_lstm_pointwise", "input_gates c_prev hidden_gates", tg_lstm_pointwise_shape,      \
      tg_lstm_pointwise_launch, tg_bw_lstm_pointwise, 0, 3, TG_OPF_FLOAT, 7)                                \
    X(LSTM_POINTWISE_BACKWARD, "tg_lstm_pointwise", "dh dc workspace c_prev", tg_lstm_pointwise_backward_shape, \
      tg_lstm_pointwise_backward_launch, tg_no_backward, 0, 4, TG_OPF_FLOAT | TG_OPF_NOGRAD, 0)             \
                                                                                                            \
    /* ops/random.c */                                                                                      \
    X(UNIFORM_, "tg_uniform_", "tensor", tg_uniform_shape, tg_random_launch, tg_no_backward, TG_RNG_UNIFORM, 1,  \
      TG_OPF_INPLACE | TG_OPF_NOGRAD | TG_OPF_FLOAT, 0)                                                     \
    X(NORMAL_, "tg_normal_", "tensor", tg_normal_shape, tg_random_launch, tg_no_backward, TG_RNG_NORMAL, 1,      \
      TG_OPF_INPLACE | TG_OPF_NOGRAD | TG_OPF_FLOAT, 0)                                                     \
    /* autograd/function.c: user-defined functions record themselves */                                    \
    X(FUNCTION, "tg_function_apply", "input", tg_function_shape, tg_function_launch, tg_function_backward, 0, -1, 0, 0)

typedef enum {
#define U(kind, name, flags) TG_OP_##kind,
    TG_UNARY_LIST(U)
#undef U
#define B(kind, name, flags) TG_OP_##kind,
    TG_BINARY_LIST(B)
#undef B
#define X(e, name, args, shape, launch, bw, kind, n_in, flags, save) TG_OP_##e,
    TG_OP_LIST(X)
#undef X
        TG_OP_COUNT
} tg_op;

extern const tg_op_desc tg_ops[TG_OP_COUNT];

/* The families' shape rules, launches and backward rules named in the lists. */
bool tg_unary_shape(tg_op_call *c);
tg_status tg_unary_launch(tg_op_call *c);
tg_status tg_bw_unary(tg_node *n, tg_tensor *const *gout, tg_tensor **gin);
bool tg_binary_shape(tg_op_call *c);
tg_status tg_binary_launch(tg_op_call *c);
tg_status tg_bw_binary(tg_node *n, tg_tensor *const *gout, tg_tensor **gin);
bool tg_same_shape(tg_op_call *c);
tg_status tg_copy_launch(tg_op_call *c);
tg_status tg_view_launch(tg_op_call *c);
tg_status tg_no_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin);
#define X(e, name, args, shape, launch, bw, kind, n_in, flags, save) \
    bool shape(tg_op_call *c);                                       \
    tg_status launch(tg_op_call *c);                                 \
    tg_status bw(tg_node *n, tg_tensor *const *gout, tg_tensor **gin);
TG_OP_LIST(X)
#undef X

#endif
