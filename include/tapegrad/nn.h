/* Modules, layers, losses and initialisers: compositions of the public ops (no kernels,
 * no backward code), so they run on every device and stay differentiable twice.
 * Included by tapegrad.h; it can also be included on its own.
 *
 * A model of one's own is a C struct, a forward function and a constructor that
 * registers children and parameters once; names, state dicts, train/eval, devices,
 * freezing and hooks all follow from that registration (PyTorch's C++ frontend):
 *
 *     typedef struct { tg_module *fc1, *fc2; } mlp;             // what forward uses
 *     static tg_tensor *mlp_forward(tg_module *self, tg_tensor *x) {   // x (B,784) -> (B,10)
 *         mlp *m = tg_module_data(self);
 *         return tg_module_forward(m->fc2, tg_relu(tg_module_forward(m->fc1, x)));
 *     }
 *     static const tg_module_type mlp_type = { "MLP", sizeof(mlp), mlp_forward };
 *
 *     tg_module *mlp_new(tg_device *dev) {
 *         tg_module *self = tg_module_new(&mlp_type);
 *         if (!self) return NULL;
 *         mlp *m = tg_module_data(self);
 *         tg_module_add(self, "fc1", &m->fc1, tg_linear_new(784, 256, NULL, dev));
 *         tg_module_add(self, "fc2", &m->fc2, tg_linear_new(256, 10, NULL, dev));
 *         return tg_module_done(self);        // NULL (self freed) if a registration failed
 *     }
 *
 *     tg_module *net = mlp_new(dev);          // "fc1.weight" "fc1.bias" "fc2.weight" "fc2.bias"
 *     tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, x), y);
 *     tg_module_free(net);                    // frees children and parameters
 *
 * The plain stack needs no struct: tg_sequential(tg_linear_new(784, 256, NULL, dev),
 * tg_relu_new(), tg_linear_new(256, 10, NULL, dev)) names its children "0", "1", "2".
 *
 * Slots. Registration takes the address of the field that forward reads (&m->fc1,
 * &m->weight; NULL when forward looks the entry up by name). The module writes the
 * slot whenever the entry changes: tg_module_to puts the moved tensor there,
 * tg_module_replace the new child. Slots must lie inside the module's own data.
 *
 * Ownership. A module owns its parameters and buffers (it tg_take()s them) and its
 * children; tg_module_free frees the whole tree. Registration functions take what they
 * are given in every case (a NULL child or tensor records the failure for
 * tg_module_done). Tensors returned by accessors are borrowed from the module.
 *
 * Errors. Constructors return NULL with a message. A forward that fails returns NULL
 * with the message prefixed by the innermost module that failed:
 * "tg_module_forward: Linear 'encoder.0': input [2,5] has 5 features, in_features is 4".
 */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- modules */

typedef struct tg_module tg_module;

/* What a kind of module is. Exactly one of forward and forward2 is usually set. */
typedef struct {
    const char *name;  /* "Linear": messages, tg_module_print */
    size_t data_size;  /* bytes of zeroed, max-aligned data at tg_module_data() */
    tg_tensor *(*forward)(tg_module *self, tg_tensor *x);                  /* optional */
    tg_tensor *(*forward2)(tg_module *self, tg_tensor *a, tg_tensor *b);   /* optional: two inputs */
    void (*free_data)(tg_module *self);  /* optional: frees what data points to (not tensors or children) */
    /* optional: writes "in_features=784, out_features=256, bias=true" for tg_module_print */
    int (*describe)(const tg_module *self, char *buf, size_t size);
} tg_module_type;

/* A new module of type (which must outlive it), in training mode, with no entries.
 * NULL only when memory runs out. */
TG_API tg_module *tg_module_new(const tg_module_type *type);
/* Frees m, its children, parameters and buffers (NULL is fine). A module that belongs
 * to a parent is freed with the parent: freeing it alone is an error (nothing freed). */
TG_API void tg_module_free(tg_module *m);
/* The module's own data (type->data_size bytes), NULL for a NULL m. */
TG_API void *tg_module_data(const tg_module *m);
TG_API const tg_module_type *tg_module_type_of(const tg_module *m);
/* Whether m was made by type (for typed accessors of one's own). */
TG_API bool tg_module_is(const tg_module *m, const tg_module_type *type);

/* Registration, once, in the constructor. Names are non-empty, contain no '.', and are
 * unique among m's parameters, buffers and children. Each takes what it is given even
 * on error; a failure is also remembered for tg_module_done.
 *   param: t becomes a parameter (requires grad; a float leaf).
 *   buffer: state that is saved but not trained (running statistics, counters), any dtype.
 *   add: child becomes m's, and must not belong to another module. */
TG_API tg_status tg_module_param(tg_module *m, const char *name, tg_tensor **slot, tg_tensor *t);
TG_API tg_status tg_module_buffer(tg_module *m, const char *name, tg_tensor **slot, tg_tensor *t);
TG_API tg_status tg_module_add(tg_module *m, const char *name, tg_module **slot, tg_module *child);
/* Ends a constructor: m, or NULL when m is NULL or a registration failed, in which case m
 * is freed and the first failure's message is the last error. */
TG_API tg_module *tg_module_done(tg_module *m);

/* Runs m: forward pre-hooks, the type's forward, forward hooks. NULL in, NULL out. */
TG_API tg_tensor *tg_module_forward(tg_module *m, tg_tensor *x);
/* The same for modules of two inputs (Bilinear). */
TG_API tg_tensor *tg_module_forward2(tg_module *m, tg_tensor *a, tg_tensor *b);

/* Runs m (1 or 2 inputs) with tensors[i] in place of the parameter or buffer at
 * names[i] (dotted paths, at most 64) for this call only: PyTorch's
 * torch.func.functional_call, for checking a module's gradient with respect to its
 * parameters (tg_gradcheck hands fresh tensors) or for meta-learning. Each tensor must
 * have its entry's shape; entries registered without a slot cannot be replaced. */
TG_API tg_tensor *tg_module_functional_call(tg_module *m, int n, const char *const *names, tg_tensor *const *tensors,
                                            int n_inputs, tg_tensor *const *inputs);

/* Train/eval mode, set on m and every module below it (PyTorch's train()/eval()).
 * New modules are in training mode. */
TG_API void tg_module_train(tg_module *m, bool training);
TG_API void tg_module_eval(tg_module *m);
TG_API bool tg_module_is_training(const tg_module *m);

/* Looks up an entry by its dotted path from m ("layer1.0.conv1.weight", "bn1",
 * "" for m itself); NULL with a message naming the path when there is none. */
TG_API tg_tensor *tg_module_get_param(const tg_module *m, const char *path);
TG_API tg_tensor *tg_module_get_buffer(const tg_module *m, const char *path);
TG_API tg_module *tg_module_get(const tg_module *m, const char *path);
/* The module's name in its parent ("" for a root) and its parent (NULL for a root). */
TG_API const char *tg_module_name(const tg_module *m);
TG_API tg_module *tg_module_parent(const tg_module *m);

/* Replaces the child at path (a new head for transfer learning: "fc", "classifier.6"):
 * the old child is freed and the registered slot now points at child. Takes child in
 * every case (freed on error). */
TG_API tg_status tg_module_replace(tg_module *m, const char *path, tg_module *child);

/* Named lists, names in registration order with dotted paths (PyTorch's naming). The
 * tensors and modules are borrowed from the module tree; tg_named_free frees the lists
 * and the names only. */
typedef struct {
    int n;
    char **names;           /* "layer1.0.conv1.weight" */
    tg_tensor **tensors;    /* for parameters and buffers */
    tg_module **modules;    /* for tg_module_named_modules */
} tg_named;
TG_API void tg_named_free(tg_named *list);
/* Parameters of m and below; a parameter registered twice (tied weights) appears once,
 * under its first name. trainable_only keeps those that require grad. */
TG_API tg_status tg_module_parameters(const tg_module *m, bool trainable_only, tg_named *out);
TG_API tg_status tg_module_buffers(const tg_module *m, tg_named *out);
/* m itself (name "") and every module below it, parents before children. */
TG_API tg_status tg_module_named_modules(const tg_module *m, tg_named *out);
/* Number of parameter elements (each tied parameter counted once). */
TG_API int64_t tg_module_num_parameters(const tg_module *m, bool trainable_only);

/* Freezing: sets requires_grad on every parameter of m and below (a frozen parameter gets
 * no gradient). One parameter alone: tg_set_requires_grad(tg_module_get_param(m, "fc.bias"), false). */
TG_API tg_status tg_module_requires_grad_(tg_module *m, bool requires_grad);
/* Zeroes the gradients of m's parameters that have one. */
TG_API void tg_module_zero_grad(tg_module *m);

/* Moves every parameter and buffer to dev (tg_module_to) or casts the float ones to a
 * float dtype (tg_module_cast; integer buffers such as num_batches_tracked stay).
 * Each moved tensor is a new leaf with the old one's values and requires_grad, put in
 * its slot; gradients and tensor hooks of the old ones are dropped, and pointers to
 * them taken before (an optimizer's) are stale: move first, then build the optimizer.
 * All or nothing: on error m is unchanged. */
TG_API tg_status tg_module_to(tg_module *m, tg_device *dev);
TG_API tg_status tg_module_cast(tg_module *m, tg_dtype dtype);

/* Forward hooks (PyTorch's register_forward_pre_hook / register_forward_hook), run by
 * tg_module_forward in the order registered, with grad mode as the forward's. A pre-hook
 * sees the inputs and may replace them (write inputs[i]); it returns TG_OK, or an error
 * that fails the forward. A hook sees inputs and output and returns the output to use
 * (output itself to only look at it; NULL fails the forward). To capture an activation
 * past the step's scope, tg_keep or tg_retain it. Each returns a handle > 0 for
 * tg_module_remove_hook, or a negative tg_status. */
typedef tg_status (*tg_forward_pre_hook)(tg_module *m, int n_inputs, tg_tensor **inputs, void *ctx);
typedef tg_tensor *(*tg_forward_hook)(tg_module *m, int n_inputs, tg_tensor *const *inputs, tg_tensor *output,
                                      void *ctx);
TG_API int tg_module_register_forward_pre_hook(tg_module *m, tg_forward_pre_hook fn, void *ctx);
TG_API int tg_module_register_forward_hook(tg_module *m, tg_forward_hook fn, void *ctx);
TG_API tg_status tg_module_remove_hook(tg_module *m, int handle);

/* Prints the tree as PyTorch's repr does: "(fc1): Linear(in_features=784, ...)". */
TG_API void tg_module_fprint(FILE *f, const tg_module *m);
TG_API void tg_module_print(const tg_module *m);

/* ---------------------------------------------------------------- state dicts
 *
 * A state dict is a list of (name, tensor) in the module's order: parameters and
 * buffers with PyTorch's names ("bn1.running_mean", "bn1.num_batches_tracked"). It
 * holds its own references; the tensors from tg_module_state_dict share storage with
 * the module's (detached views: values as of when they are read). */
typedef struct tg_state_dict tg_state_dict;
TG_API tg_state_dict *tg_state_dict_new(void);
TG_API void tg_state_dict_free(tg_state_dict *sd);
/* Adds or replaces name's tensor (the dict takes a reference; t stays the caller's). */
TG_API tg_status tg_state_dict_set(tg_state_dict *sd, const char *name, tg_tensor *t);
TG_API tg_tensor *tg_state_dict_get(const tg_state_dict *sd, const char *name); /* NULL if absent, no message */
TG_API int tg_state_dict_size(const tg_state_dict *sd);
TG_API const char *tg_state_dict_name(const tg_state_dict *sd, int i);
TG_API tg_tensor *tg_state_dict_tensor(const tg_state_dict *sd, int i);

TG_API tg_state_dict *tg_module_state_dict(const tg_module *m);

typedef struct tg_load_opts { /* tagged: data.h declares it ahead */
    bool non_strict; /* default strict, as PyTorch: a missing or unexpected name is an error */
    /* optional: receives "missing: a, b; unexpected: c" (or "") after a non-strict load */
    char *report;
    size_t report_size;
} tg_load_opts;
/* Copies sd's values into m's parameters and buffers (converting dtype and device).
 * A tensor of another shape is an error even when non-strict. On error nothing is
 * copied and the message lists every difference: "tg_module_load_state_dict: missing:
 * fc2.bias; unexpected: head.bias; shape differs: fc1.weight is [4,3] in the module,
 * [4,2] in the state dict". */
TG_API tg_status tg_module_load_state_dict(tg_module *m, const tg_state_dict *sd, const tg_load_opts *opts);

/* ---------------------------------------------------------------- layers
 * Constructors take PyTorch's arguments and defaults and allocate on dev in f32
 * (tg_module_cast for f64). Weights use PyTorch's layout and default init. */

typedef struct {
    bool no_bias; /* PyTorch's bias=False */
} tg_linear_opts;
/* weight (out, in) kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(in)); bias (out)
 * U(+-1/sqrt(in)). Forward: x (*, in) -> (*, out) = x weight^T + bias. */
TG_API tg_module *tg_linear_new(int64_t in_features, int64_t out_features, const tg_linear_opts *opts,
                                tg_device *dev);
/* weight (out, in1, in2), bias (out), both U(+-1/sqrt(in1)). Forward (tg_module_forward2):
 * x1 (*, in1), x2 (*, in2) -> (*, out) = x1^T weight[o] x2 + bias[o]. */
TG_API tg_module *tg_bilinear_new(int64_t in1_features, int64_t in2_features, int64_t out_features,
                                  const tg_linear_opts *opts, tg_device *dev);

typedef struct {
    tg_opt_i64 padding_idx; /* this row gets no gradient (and starts at zero); negative counts from the end */
    bool trainable;         /* tg_embedding_from_pretrained only: PyTorch's freeze=False */
} tg_embedding_opts;
/* weight (num, dim) N(0, 1). Forward: i32/i64 indices of any shape -> (..., dim). */
TG_API tg_module *tg_embedding_new(int64_t num_embeddings, int64_t embedding_dim, const tg_embedding_opts *opts,
                                   tg_device *dev);
/* An Embedding holding a copy of weights (num, dim), frozen unless opts->trainable. */
TG_API tg_module *tg_embedding_from_pretrained(tg_tensor *weights, const tg_embedding_opts *opts);

/* Shape and activation modules (no parameters). Flatten merges axes start..end (PyTorch's
 * defaults are 1 and -1); Unflatten splits axis into sizes. */
TG_API tg_module *tg_identity_new(void);
TG_API tg_module *tg_flatten_new(int start_dim, int end_dim);
TG_API tg_module *tg_unflatten_new(int dim, tg_shape sizes);
TG_API tg_module *tg_relu_new(void);
TG_API tg_module *tg_leaky_relu_new(double negative_slope); /* PyTorch's default 0.01 */
TG_API tg_module *tg_tanh_new(void);
TG_API tg_module *tg_sigmoid_new(void);
TG_API tg_module *tg_softmax_new(int dim);
TG_API tg_module *tg_log_softmax_new(int dim);

/* Children run in order; named "0", "1", ... Takes every child (a NULL one fails the
 * whole, freeing the others). tg_sequential(a, b, c) is the short form. */
TG_API tg_module *tg_sequential_new(int n, tg_module *const *children);
#define tg_sequential(...) \
    tg_sequential_new((int)(sizeof((tg_module *[]){ __VA_ARGS__ }) / sizeof(tg_module *)), (tg_module *[]){ __VA_ARGS__ })
/* Appends child under name (NULL: the next index). */
TG_API tg_status tg_sequential_append(tg_module *seq, const char *name, tg_module *child);
/* Number of children, and the i-th (0-based; NULL with a message out of range). */
TG_API int tg_module_num_children(const tg_module *m);
TG_API tg_module *tg_module_child(const tg_module *m, int i);

/* DropConnect (Wan et al. 2013): wraps a module with a parameter "weight" (registered
 * under the child name "module", so names read "module.weight") and, in training, runs
 * it with weight * Bernoulli(1 - p) / (1 - p), a fresh mask each forward; in eval, the
 * plain weight. p in [0, 1). */
TG_API tg_module *tg_drop_connect_new(tg_module *inner, double p);

/* ---------------------------------------------------------------- init
 * PyTorch's torch.nn.init: fill a tensor in place (not recorded), drawing from the
 * Philox generator (tg_manual_seed). Each returns TG_OK or an error with a message. */

typedef enum {
    TG_NONLINEARITY_LEAKY_RELU, /* kaiming's default (param: the negative slope) */
    TG_NONLINEARITY_LINEAR,     /* and the conv/conv_transpose family: gain 1 */
    TG_NONLINEARITY_SIGMOID,    /* 1 */
    TG_NONLINEARITY_TANH,       /* 5/3 */
    TG_NONLINEARITY_RELU,       /* sqrt 2 */
    TG_NONLINEARITY_SELU,       /* 3/4 */
} tg_nonlinearity;
/* PyTorch's calculate_gain; for leaky_relu, gain sqrt(2 / (1 + param^2)) (PyTorch passes
 * 0.01 when the slope is not given). */
TG_API double tg_init_calculate_gain(tg_nonlinearity nl, double param);
/* PyTorch's fans: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field,
 * the receptive field being the product of the sizes after the second (conv weights
 * (out, in/groups, kh, kw)). Fewer than 2 axes is an error. */
TG_API tg_status tg_init_fans(const tg_tensor *t, int64_t *fan_in, int64_t *fan_out);

typedef enum { TG_FAN_IN, TG_FAN_OUT } tg_fan_mode;
typedef struct {
    double a;                    /* negative slope for leaky_relu (default 0) */
    tg_fan_mode mode;            /* default fan_in */
    tg_nonlinearity nonlinearity; /* default leaky_relu, as PyTorch */
} tg_kaiming_opts;
/* std = gain / sqrt(fan); uniform: U(+-sqrt(3) std), normal: N(0, std^2). */
TG_API tg_status tg_init_kaiming_uniform_(tg_tensor *t, const tg_kaiming_opts *opts);
TG_API tg_status tg_init_kaiming_normal_(tg_tensor *t, const tg_kaiming_opts *opts);
/* std = gain sqrt(2 / (fan_in + fan_out)); PyTorch's default gain is 1. */
TG_API tg_status tg_init_xavier_uniform_(tg_tensor *t, double gain);
TG_API tg_status tg_init_xavier_normal_(tg_tensor *t, double gain);
/* A (semi-)orthogonal matrix of t viewed as (size(0), rest), times gain: QR of a normal
 * matrix by Householder reflections on the host in f64, signs fixed by diag(R) as
 * PyTorch does. At least 2 axes. */
TG_API tg_status tg_init_orthogonal_(tg_tensor *t, double gain);
TG_API tg_status tg_init_zeros_(tg_tensor *t);
TG_API tg_status tg_init_ones_(tg_tensor *t);
TG_API tg_status tg_init_constant_(tg_tensor *t, double value);
TG_API tg_status tg_init_uniform_(tg_tensor *t, double a, double b);
TG_API tg_status tg_init_normal_(tg_tensor *t, double mean, double std);
/* N(mean, std^2) conditioned on [a, b] (inverse CDF on the host, as PyTorch). */
TG_API tg_status tg_init_trunc_normal_(tg_tensor *t, double mean, double std, double a, double b);

/* ---------------------------------------------------------------- losses
 * PyTorch's functional losses with its exact semantics; results are 0-d unless
 * reduction is TG_REDUCTION_NONE. Inputs broadcast as the ops do. */

typedef struct {
    tg_reduction reduction;
    tg_opt_i64 ignore_index;  /* default -100 */
    tg_tensor *weight;        /* optional (C) class weights */
    double label_smoothing;   /* in [0, 1] */
} tg_cross_entropy_loss_opts;
/* logits (N, C) or (N, C, d...); labels i32/i64 (N) or (N, d...). With weights, the mean
 * divides by the sum of the targets' weights (PyTorch's weighted mean); with smoothing,
 * (1 - e) nll + e/C * smooth as PyTorch. The fused tg_cross_entropy_ex runs when there
 * are neither. */
TG_API tg_tensor *tg_cross_entropy_loss(tg_tensor *logits, tg_tensor *labels, const tg_cross_entropy_loss_opts *opts);
/* log-probabilities (N, C) or (N, C, d...); label_smoothing is not used. */
TG_API tg_tensor *tg_nll_loss(tg_tensor *logp, tg_tensor *labels, const tg_cross_entropy_loss_opts *opts);
TG_API tg_tensor *tg_mse_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction);
TG_API tg_tensor *tg_l1_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction);
/* |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta (beta 0: L1); PyTorch's default beta 1. */
TG_API tg_tensor *tg_smooth_l1_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction, double beta);
/* |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta); PyTorch's default delta 1. */
TG_API tg_tensor *tg_huber_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction, double delta);

typedef struct {
    tg_reduction reduction;
    tg_tensor *weight;     /* optional, broadcast to input */
    tg_tensor *pos_weight; /* with logits only: optional, weight of positives per class (last axis) */
} tg_bce_opts;
/* -w (y log x + (1 - y) log(1 - x)) with each log clamped at -100, as PyTorch; x in [0, 1]
 * (not checked: values outside give NaN). The gradient is that of the clamped form. */
TG_API tg_tensor *tg_binary_cross_entropy(tg_tensor *input, tg_tensor *target, const tg_bce_opts *opts);
/* The stable form on logits: (1 - y) x + (1 + (pw - 1) y) softplus(-x), times weight. */
TG_API tg_tensor *tg_binary_cross_entropy_with_logits(tg_tensor *logits, tg_tensor *target, const tg_bce_opts *opts);

typedef struct {
    tg_reduction reduction;
    int p;                /* 1 (default) or 2 */
    tg_opt_f64 margin;    /* default 1 */
    tg_tensor *weight;    /* optional (C) */
} tg_multi_margin_opts;
/* The multi-class hinge (SVM) loss: input (N, C) or (C), labels (N) or 0-d:
 * sum_{j != y} w[y] max(0, margin - x[y] + x[j])^p / C, the mean over N by default. */
TG_API tg_tensor *tg_multi_margin_loss(tg_tensor *input, tg_tensor *labels, const tg_multi_margin_opts *opts);

typedef struct {
    tg_reduction reduction; /* mean (PyTorch's default) averages over every element */
    bool batchmean;         /* sum / size(0), what the KL divergence means; overrides reduction */
    bool log_target;
} tg_kl_div_opts;
/* input log-probabilities; target probabilities (target log t - target input, 0 where
 * target is 0) or log-probabilities with log_target (exp(t) (t - input)). */
TG_API tg_tensor *tg_kl_div(tg_tensor *input, tg_tensor *target, const tg_kl_div_opts *opts);

/* x1, x2 (N, D) or (D), y (N) of 1 or -1: 1 - cos for y = 1, max(0, cos - margin) for
 * y = -1 (cos with PyTorch's eps 1e-12 on the squared norms); margin default 0. */
TG_API tg_tensor *tg_cosine_embedding_loss(tg_tensor *x1, tg_tensor *x2, tg_tensor *y, tg_reduction reduction,
                                           double margin);

/* Regularisation terms over m's trainable parameters (each tied one once), 0-d, in
 * their dtype: sum |p| and sum p^2 (add lambda * term to the loss). */
TG_API tg_tensor *tg_module_l1_penalty(const tg_module *m);
TG_API tg_tensor *tg_module_l2_penalty(const tg_module *m);

/* ---------------------------------------------------------------- convolution, pooling and normalisation layers
 * torch.nn's Conv1d, Conv2d, ConvTranspose2d, the pooling layers, BatchNorm1d/2d,
 * LayerNorm, GroupNorm, LocalResponseNorm, Dropout, Dropout2d and Upsample, each a thin
 * module over the functional op of the same name (tapegrad.h), with PyTorch's weight
 * layouts, state_dict names, defaults and initialisation; and the blocks of the classic
 * CNNs (ResNet's BasicBlock and Bottleneck, GoogLeNet's Inception, squeeze-and-
 * excitation) with torchvision's child names, so checkpoints carry over:
 *
 *     tg_module *net = tg_sequential(
 *         tg_conv2d_new(1, 16, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev), tg_batchnorm2d_new(16, NULL, dev),
 *         tg_relu_new(), tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }),
 *         tg_flatten_new(1, -1), tg_linear_new(16 * 14 * 14, 10, NULL, dev));
 *     // "0.weight" "0.bias" "1.weight" "1.bias" "1.running_mean" "1.running_var" "1.num_batches_tracked" ...
 *
 * A forward given an input of the wrong rank, channels or dtype fails with a message
 * naming the module and the values: "tg_module_forward: Conv2d 'features.0': input
 * [2,5,8,8] has 5 channels, in_channels is 3". */

/* PyTorch's padding_mode: zeros, or the input's own values (reflect: mirrored without
 * the edge, as numpy's "reflect"; replicate: the edge repeated; circular: wrapped). The
 * non-zero modes pad with slices, flips and concatenation before an unpadded convolution,
 * as PyTorch does; reflect needs padding < the input's size, circular <= it. */
typedef enum { TG_PADDING_ZEROS = 0, TG_PADDING_REFLECT, TG_PADDING_REPLICATE, TG_PADDING_CIRCULAR } tg_padding_mode;

/* Options of Conv1d, Conv2d and ConvTranspose2d; 0 means PyTorch's default. The _hw pairs
 * (2-D only) follow tg_conv2d_opts' rule: a pair with a non-zero entry replaces its scalar. */
typedef struct {
    int64_t stride;               /* 1 */
    int64_t padding;              /* 0 */
    int64_t dilation;             /* 1 */
    int64_t groups;               /* 1: in_channels and out_channels must be multiples of it */
    tg_conv_padding padding_kind; /* Conv1d/2d: PyTorch's padding="valid"/"same" */
    tg_padding_mode padding_mode; /* Conv1d/2d: zeros */
    int64_t output_padding;       /* ConvTranspose2d only: 0 */
    bool no_bias;                 /* PyTorch's bias=False */
    int64_t kernel_size_hw[2], stride_hw[2], padding_hw[2], dilation_hw[2], output_padding_hw[2]; /* 2-D: (H, W) */
} tg_conv_layer_opts;

/* Conv2d: weight (out, in/groups, kH, kW), bias (out); Conv1d: weight (out, in/groups, k).
 * Both kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(fan_in)), fan_in = in/groups * kH * kW,
 * and the bias U(+-1/sqrt(fan_in)), as PyTorch. kernel_size sets both axes of a 2-D kernel
 * unless opts->kernel_size_hw is given. Forward: x (N, in, H, W) or (in, H, W) ->
 * (N, out, H_out, W_out) (tg_conv2d); 1-D: (N, in, L) or (in, L) -> (N, out, L_out). */
TG_API tg_module *tg_conv2d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                const tg_conv_layer_opts *opts, tg_device *dev);
TG_API tg_module *tg_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                const tg_conv_layer_opts *opts, tg_device *dev);
/* weight (in, out/groups, kH, kW) (PyTorch's transposed layout), bias (out), initialised
 * as PyTorch's (whose fan_in is then out/groups * kH * kW). padding_kind and padding_mode
 * must be left at zero. Forward: (N, in, H, W) -> (N, out, H_out, W_out) with
 * H_out = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1. */
TG_API tg_module *tg_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                          const tg_conv_layer_opts *opts, tg_device *dev);

/* Pooling modules: the functional options, copied (kernel_size is required).
 * MaxPool2d's forward returns the maxima; tg_max_pool2d_forward_with_indices also
 * gives their indices (PyTorch's return_indices=True) for a MaxUnpool2d, whose forward
 * takes two inputs (tg_module_forward2(unpool, y, indices)). */
TG_API tg_module *tg_max_pool2d_new(const tg_max_pool2d_opts *opts);
TG_API tg_tensor *tg_max_pool2d_forward_with_indices(tg_module *pool, tg_tensor *x, tg_tensor **indices);
TG_API tg_module *tg_max_unpool2d_new(const tg_max_unpool2d_opts *opts);
TG_API tg_module *tg_avg_pool2d_new(const tg_avg_pool2d_opts *opts);
/* Output (output_h, output_w); (1, 1) is global pooling. */
TG_API tg_module *tg_adaptive_avg_pool2d_new(int64_t output_h, int64_t output_w);
TG_API tg_module *tg_adaptive_max_pool2d_new(int64_t output_h, int64_t output_w);

/* Dropout: tg_dropout in training, the identity in eval; Dropout2d zeroes whole channels
 * (tg_dropout2d). p in [0, 1] (PyTorch's default 0.5). */
TG_API tg_module *tg_dropout_new(double p);
TG_API tg_module *tg_dropout2d_new(double p);
/* Upsample: tg_interpolate with these options (copied). */
TG_API tg_module *tg_upsample_new(const tg_interpolate_opts *opts);

typedef struct {
    tg_opt_f64 eps;        /* 1e-5 */
    tg_opt_f64 momentum;   /* 0.1; ignored with cumulative */
    bool cumulative;       /* PyTorch's momentum=None: running stats are the cumulative average */
    tg_opt_bool affine;    /* true: weight (ones) and bias (zeros) parameters */
    tg_opt_bool track_running_stats; /* true: buffers running_mean (zeros), running_var (ones)
                                        and num_batches_tracked (i64, 0) */
} tg_batchnorm_opts;
/* BatchNorm1d: x (N, C) or (N, C, L); BatchNorm2d: x (N, C, H, W); C = num_features.
 * In training: batch statistics, and (tracking) num_batches_tracked += 1 and the running
 * statistics updated in place (momentum, or 1 / num_batches_tracked when cumulative).
 * In eval: the running statistics, or batch statistics when none are tracked. */
TG_API tg_module *tg_batchnorm1d_new(int64_t num_features, const tg_batchnorm_opts *opts, tg_device *dev);
TG_API tg_module *tg_batchnorm2d_new(int64_t num_features, const tg_batchnorm_opts *opts, tg_device *dev);

typedef struct {
    tg_opt_f64 eps;                /* 1e-5 */
    tg_opt_bool elementwise_affine; /* LayerNorm: true (weight ones, bias zeros, of normalized_shape) */
    tg_opt_bool bias;              /* LayerNorm: true (PyTorch 2.1's bias=False drops it) */
    tg_opt_bool affine;            /* GroupNorm: true (weight ones, bias zeros, (C)) */
} tg_norm_opts;
/* LayerNorm over the trailing axes normalized_shape: x (*, normalized_shape) -> same. */
TG_API tg_module *tg_layer_norm_new(tg_shape normalized_shape, const tg_norm_opts *opts, tg_device *dev);
/* GroupNorm: x (N, C, *) with C = num_channels, a multiple of num_groups. */
TG_API tg_module *tg_group_norm_new(int64_t num_groups, int64_t num_channels, const tg_norm_opts *opts,
                                    tg_device *dev);

typedef struct {
    tg_opt_f64 alpha, beta, k; /* 1e-4, 0.75, 1 */
} tg_local_response_norm_opts;
/* LocalResponseNorm over size neighbouring channels: x (N, C, *) -> same. */
TG_API tg_module *tg_local_response_norm_new(int64_t size, const tg_local_response_norm_opts *opts);

/* ---------------------------------------------------------------- CNN blocks
 * Built from the layers above with PyTorch's default initialisation (torchvision's
 * ResNet re-initialises its convolutions with kaiming_normal(fan_out); do that on the
 * model if it matters). Every convolution in a block is bias-free and followed by a
 * BatchNorm2d, as torchvision's. */

typedef struct {
    int64_t stride;     /* 1: of the first 3x3 (BasicBlock) or of the 3x3 (Bottleneck) */
    int64_t groups;     /* 1 (Bottleneck only: ResNeXt) */
    int64_t base_width; /* 64 (Bottleneck only: Wide ResNet); width = planes * base_width / 64 * groups */
} tg_resnet_block_opts;
/* torchvision's BasicBlock (expansion 1): x (N, inplanes, H, W) -> (N, planes, H/stride,
 * W/stride) = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). The shortcut is the
 * identity, or, when stride != 1 or inplanes != planes, the projection "downsample": a
 * Sequential of a 1x1 conv of that stride and a BatchNorm2d ("downsample.0.weight",
 * "downsample.1.running_mean"), as torchvision's _make_layer builds it. */
TG_API tg_module *tg_basic_block_new(int64_t inplanes, int64_t planes, const tg_resnet_block_opts *opts,
                                     tg_device *dev);
/* torchvision's Bottleneck (expansion 4): 1x1 conv1 inplanes -> width, 3x3 conv2 width ->
 * width (stride, groups), 1x1 conv3 width -> 4 planes, each with its BatchNorm (bn1..bn3),
 * ReLU between and after the sum with the shortcut (a projection when stride != 1 or
 * inplanes != 4 planes). x (N, inplanes, H, W) -> (N, 4 planes, H/stride, W/stride). */
TG_API tg_module *tg_bottleneck_new(int64_t inplanes, int64_t planes, const tg_resnet_block_opts *opts,
                                    tg_device *dev);

/* GoogLeNet's Inception module with torchvision's names: four branches over the same
 * input, concatenated along channels (tg_cat): branch1 a 1x1 conv; branch2 a 1x1
 * bottleneck to ch3x3red then a 3x3; branch3 a 1x1 to ch5x5red then a 5x5 (the paper's;
 * torchvision's GoogLeNet uses a 3x3 here: set branch3_kernel_size = 3 to load its
 * weights); branch4 a 3x3 max pool (stride 1, padding 1, ceil_mode) then a 1x1 to
 * pool_proj. Each conv is torchvision's BasicConv2d (children conv and bn: bias-free
 * conv, BatchNorm2d with eps 1e-3, ReLU): "branch2.1.conv.weight", "branch1.bn.running_var".
 * x (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W). */
typedef struct {
    int64_t ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj; /* all required, >= 1 */
    int64_t branch3_kernel_size;                                /* 5 (odd) */
} tg_inception_opts;
TG_API tg_module *tg_inception_new(int64_t in_channels, const tg_inception_opts *opts, tg_device *dev);

/* Squeeze-and-excitation (Hu et al. 2018) as torchvision's SqueezeExcitation: x * sigmoid(
 * fc2(relu(fc1(adaptive_avg_pool(x, 1))))), fc1 and fc2 1x1 convs with biases
 * (input_channels -> squeeze_channels -> input_channels; squeeze_channels =
 * input_channels / r, the paper's r being 16). x (N, C, H, W) -> same. */
TG_API tg_module *tg_squeeze_excitation_new(int64_t input_channels, int64_t squeeze_channels, tg_device *dev);

#ifdef __cplusplus
}
#endif
#endif
