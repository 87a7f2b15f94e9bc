/* tapegrad: tensors, a dynamic graph with tape autograd, CPU and OpenCL backends.
 *
 * A short tour. Every op runs at once and, when an input requires grad, records a
 * backward closure; tg_backward() walks them in reverse:
 *
 *     tg_device *dev = tg_device_get(NULL);                  // TG_DEVICE, else "cpu"
 *     tg_manual_seed(42);
 *     tg_tensor *w = tg_param(tg_randn(TG_F32, TG_SHAPE(784, 10), dev));
 *     tg_scope_begin();                                      // a training step is one scope
 *     tg_tensor *loss = tg_cross_entropy(tg_matmul(x, w), y); // NULL propagates on error
 *     if (!loss) fprintf(stderr, "%s\n", tg_last_error());
 *     tg_backward(loss);                                     // tg_grad(w) now holds dL/dw
 *     tg_scope_end();                                        // frees loss and every temporary
 *
 * Ownership: every tensor an API call returns belongs to the innermost scope (a
 * thread-local stack with a root scope that lives until exit). tg_keep() moves a
 * tensor to the parent scope; tg_retain()/tg_release() hold one past any scope.
 * Tensors are reference-counted inside, so ending a scope never breaks a pending
 * backward: the graph keeps alive what it needs.
 *
 * Errors: op builders return NULL and set a thread-local message (tg_last_error())
 * naming the op and the values; a NULL input gives a NULL output, so a chain of calls
 * needs one check at the end. Calls that are not chained return tg_status.
 * TG_ABORT_ON_ERROR=1 in the environment aborts on the first error, for debugging.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TG_BUILDING) && defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

#define TG_MAX_DIMS 8

/* ---------------------------------------------------------------- basic types */

typedef struct tg_tensor tg_tensor; /* opaque; read with the accessors below */
typedef struct tg_device tg_device; /* opaque; from tg_device_get() */

/* i64 is PyTorch's index and label dtype (and BatchNorm's num_batches_tracked). */
typedef enum { TG_F32, TG_F64, TG_I32, TG_U8, TG_I64, TG_NUM_DTYPES } tg_dtype;

typedef enum {
    TG_OK = 0,
    TG_ERR_INVALID = -1, /* a bad argument: NULL, out-of-range axis or index, bad option */
    TG_ERR_SHAPE = -2,   /* shapes that do not fit together */
    TG_ERR_DTYPE = -3,   /* a dtype the op does not take, or two that differ */
    TG_ERR_DEVICE = -4,  /* tensors on two devices, or a device that is not there */
    TG_ERR_NOMEM = -5,   /* host or device memory exhausted */
    TG_ERR_BACKEND = -6, /* the backend failed (OpenCL error, failed kernel build) */
    TG_ERR_STATE = -7,   /* a call at the wrong time: backward through a freed graph, … */
    TG_ERR_IO = -8,      /* a file is missing, unreadable or corrupt */
} tg_status;

/* A shape by value: TG_SHAPE(64, 784). A 0-d (scalar) shape is TG_SCALAR_SHAPE. */
typedef struct {
    int ndim;
    int64_t dims[TG_MAX_DIMS];
} tg_shape;
#define TG_NARGS_(...) ((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
#define TG_SHAPE(...) ((tg_shape){ .ndim = TG_NARGS_(__VA_ARGS__), .dims = { __VA_ARGS__ } })
#define TG_SCALAR_SHAPE ((tg_shape){ .ndim = 0 })

/* A set of axes: TG_AXES(0, 2); negative axes count from the end; TG_ALL is every axis.
 * tg_permute takes its order the same way. */
typedef struct {
    int n; /* -1: all axes */
    int axes[TG_MAX_DIMS];
} tg_axes;
#define TG_AXES(...) ((tg_axes){ .n = TG_NARGS_(__VA_ARGS__), .axes = { __VA_ARGS__ } })
#define TG_ALL ((tg_axes){ .n = -1 })

/* Padding amounts as in PyTorch's F.pad: (left, right) of the last axis first, then
 * the axis before it: TG_PADS(1, 1, 2, 2) pads W by 1 and H by 2. */
typedef struct {
    int n;
    int64_t v[2 * TG_MAX_DIMS];
} tg_pads;
#define TG_PADS(...) ((tg_pads){ .n = TG_NARGS_(__VA_ARGS__), .v = { __VA_ARGS__ } })

/* Options structs. Calls with many options take a pointer to a struct written with
 * designated initialisers. One rule for all of them: NULL, and any field left zero,
 * mean PyTorch's default. Where zero is a legal value but not the default (batch
 * norm's momentum 0.1, Adam's betas, cross-entropy's ignore_index -100), the field is
 * an optional value set with TG_SOME: (tg_cross_entropy_opts){ .ignore_index =
 * TG_SOME(0) } ignores class 0, and a field left alone keeps the default. */
typedef struct {
    bool set;
    double value;
} tg_opt_f64;
typedef struct {
    bool set;
    int64_t value;
} tg_opt_i64;
#define TG_SOME(v) { .set = true, .value = (v) }

/* ---------------------------------------------------------------- errors */

/* The message of the last failed call on this thread ("" if none). Valid until the
 * next failing call on this thread. */
TG_API const char *tg_last_error(void);
TG_API void tg_clear_error(void);
TG_API const char *tg_status_str(tg_status s);
/* The status kind of the last error on this thread (TG_OK if none). */
TG_API tg_status tg_last_status(void);

/* ---------------------------------------------------------------- devices */

/* "cpu", "opencl" (first GPU, else first OpenCL device), "opencl:N". NULL means
 * $TG_DEVICE, else "cpu". Returns NULL with a message if the device is not there.
 * Devices live until exit; never free them. */
TG_API tg_device *tg_device_get(const char *name);
TG_API const char *tg_device_name(const tg_device *dev);

typedef struct {
    size_t bytes_in_use;   /* held by live tensors */
    size_t bytes_cached;   /* freed by tensors, kept by the caching allocator for reuse */
    size_t peak_in_use;    /* the high-water mark of bytes_in_use */
    uint64_t allocations;  /* calls that reached the system allocator */
} tg_memory_stats;
TG_API tg_status tg_device_memory_stats(const tg_device *dev, tg_memory_stats *out);
/* The work a device was handed since the process started, counted by backends that
 * queue it (OpenCL; the CPU runs its kernels inline and reports zeros): read it before
 * and after a step and subtract to see how many launches the step costs. Errors:
 * TG_ERR_INVALID for a NULL argument. */
typedef struct {
    uint64_t launches;  /* kernels, and on-device fills and copies, enqueued */
    uint64_t transfers; /* reads and writes between host and device memory */
} tg_launch_stats;
TG_API tg_status tg_device_launch_stats(const tg_device *dev, tg_launch_stats *out);
/* Returns cached blocks to the system. */
TG_API void tg_device_empty_cache(tg_device *dev);
/* Waits until the work queued on dev has finished (for timing; reads to the host
 * wait by themselves). */
TG_API void tg_device_synchronize(tg_device *dev);

/* CPU threads used by kernels: $TG_NUM_THREADS, else the cores this process may use. */
TG_API void tg_set_num_threads(int n);
TG_API int tg_get_num_threads(void);

/* ---------------------------------------------------------------- scopes and lifetime
 *
 * Every tensor an API call returns belongs to the innermost scope of the calling
 * thread. tg_scope_end() releases what its scope owns; tg_keep() moves a tensor to the
 * parent scope; tg_take() takes it out of its scope as a reference the caller owns
 * (a module's parameters, a batch handed to another thread); tg_retain() adds such a
 * reference. Each owned reference is dropped by one tg_release(). A thread's root
 * scope is released when the thread exits (the main thread's at exit()).
 *
 * Using a tensor after its last reference went is reported by the next op that gets
 * it ("tg_add: a was already released: released at the end of its scope (missing
 * tg_keep?)"): released objects are reused only after a quarantine. TG_DEBUG=1 never
 * reuses them and names the scope that released each one; under AddressSanitizer no
 * object or buffer is reused at all.
 *
 * Threads. What may be shared between threads: devices, and tensors that no thread
 * modifies while others read them (parameters read in grad-off mode: ops that view
 * them, such as tg_transpose, are safe from several threads, since reference counts
 * and memory statistics are atomic). What belongs to one thread: its scopes, a graph
 * under construction and its backward pass, grad mode, the last error. A tensor made
 * on one thread may be handed to another with tg_take on the first and tg_release on
 * the second. The random generator (tg_manual_seed) is process-wide. */

TG_API void tg_scope_begin(void);
/* Releases every tensor created since the matching tg_scope_begin, except those kept. */
TG_API void tg_scope_end(void);
/* Moves t from the current scope to its parent; returns t (NULL passes through). O(1). */
TG_API tg_tensor *tg_keep(tg_tensor *t);
/* Takes t out of whatever scope owns it: the caller now owns that reference and drops
 * it with tg_release. If no scope owns t, a new reference is taken. Returns t. */
TG_API tg_tensor *tg_take(tg_tensor *t);
/* Takes an extra owned reference that survives every scope; drop it with tg_release. */
TG_API tg_tensor *tg_retain(tg_tensor *t);
/* Drops one reference from tg_retain or tg_take (NULL is fine). Releasing a tensor
 * that holds none (its scope owns it, or it was released already) is an error with a
 * message, never a double free. */
TG_API void tg_release(tg_tensor *t);
/* Number of live tensor objects (for leak checks in tests and long loops). */
TG_API int64_t tg_live_tensors(void);

/* ---------------------------------------------------------------- creation */

/* Copies numel(shape) elements of dtype from host memory. */
TG_API tg_tensor *tg_from_data(const void *data, tg_dtype dtype, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_from_f32(const float *data, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_from_f64(const double *data, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_from_i32(const int32_t *data, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_from_i64(const int64_t *data, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_from_u8(const uint8_t *data, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_empty(tg_dtype dtype, tg_shape shape, tg_device *dev); /* uninitialised */
TG_API tg_tensor *tg_zeros(tg_dtype dtype, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_ones(tg_dtype dtype, tg_shape shape, tg_device *dev);
TG_API tg_tensor *tg_full(tg_dtype dtype, tg_shape shape, double value, tg_device *dev);
TG_API tg_tensor *tg_scalar(tg_dtype dtype, double value, tg_device *dev); /* 0-d */
TG_API tg_tensor *tg_zeros_like(const tg_tensor *t);
TG_API tg_tensor *tg_ones_like(const tg_tensor *t);
TG_API tg_tensor *tg_full_like(const tg_tensor *t, double value);
/* [start, end) in steps of step, as numpy.arange. */
TG_API tg_tensor *tg_arange(tg_dtype dtype, double start, double end, double step, tg_device *dev);
TG_API tg_tensor *tg_linspace(tg_dtype dtype, double start, double end, int64_t steps, tg_device *dev);
TG_API tg_tensor *tg_eye(tg_dtype dtype, int64_t n, tg_device *dev);

/* Random numbers come from Philox-4x32-10 keyed by the seed, with a counter that each
 * call advances by the numbers it draws: the same seed gives the same tensors on every
 * device and thread count. */
TG_API void tg_manual_seed(uint64_t seed);
/* The generator's whole state: the seed and how many numbers have been drawn since it
 * was set. Saving it and setting it back later (a resumed training run: see
 * tg_checkpoint_save) makes the following draws, dropout masks included, the same as
 * they would have been. tg_manual_seed(s) is tg_set_rng_state((tg_rng_state){ s, 0 }). */
typedef struct {
    uint64_t seed;
    uint64_t offset;
} tg_rng_state;
TG_API tg_rng_state tg_get_rng_state(void);
TG_API void tg_set_rng_state(tg_rng_state state);
TG_API tg_tensor *tg_rand(tg_dtype dtype, tg_shape shape, tg_device *dev);  /* U[0,1) */
TG_API tg_tensor *tg_randn(tg_dtype dtype, tg_shape shape, tg_device *dev); /* N(0,1) */
TG_API tg_tensor *tg_bernoulli(tg_dtype dtype, tg_shape shape, double p, tg_device *dev);
/* Uniform in [lo, hi), normal with mean and std: fill existing tensors (no grad). */
TG_API tg_status tg_uniform_(tg_tensor *t, double lo, double hi);
TG_API tg_status tg_normal_(tg_tensor *t, double mean, double std);

/* ---------------------------------------------------------------- inspection */

TG_API int tg_ndim(const tg_tensor *t);
TG_API tg_shape tg_shape_of(const tg_tensor *t);
TG_API int64_t tg_size(const tg_tensor *t, int axis); /* negative axis counts from the end */
TG_API int64_t tg_stride(const tg_tensor *t, int axis);
TG_API int64_t tg_numel(const tg_tensor *t);
TG_API tg_dtype tg_dtype_of(const tg_tensor *t);
TG_API tg_device *tg_device_of(const tg_tensor *t);
TG_API bool tg_is_contiguous(const tg_tensor *t);
TG_API const char *tg_dtype_name(tg_dtype dtype);
TG_API size_t tg_dtype_size(tg_dtype dtype);

/* The value of a one-element tensor as double; NaN with a message otherwise. */
TG_API double tg_item(const tg_tensor *t);
/* Copies t (any strides) into dst as a dense row-major array of t's dtype; nbytes must
 * be at least numel * dtype size. Waits for pending device work. */
TG_API tg_status tg_copy_to_host(const tg_tensor *t, void *dst, size_t nbytes);
/* Shape, dtype, device and values, abbreviated like PyTorch's for large tensors. */
TG_API void tg_print(const tg_tensor *t);
TG_API void tg_fprint(FILE *f, const tg_tensor *t);
/* Same as tg_fprint into a buffer; returns the length it needed (snprintf rules). */
TG_API int tg_snprint(char *buf, size_t size, const tg_tensor *t);

/* ---------------------------------------------------------------- autograd */

/* Marks a leaf as requiring grad and returns it: tg_param(tg_randn(...)). */
TG_API tg_tensor *tg_param(tg_tensor *t);
TG_API tg_status tg_set_requires_grad(tg_tensor *t, bool requires_grad);
TG_API bool tg_requires_grad(const tg_tensor *t);
TG_API bool tg_is_leaf(const tg_tensor *t);
/* The gradient accumulated in a leaf, or NULL with a message if it has none. It is the
 * leaf's own buffer, kept for the leaf's life: later backward passes add into it in
 * place and tg_zero_grad zeroes it in place, so the pointer (and views of it) stay
 * valid until the leaf is released. A gradient passed to tg_backward_ex is copied,
 * never stored. */
TG_API tg_tensor *tg_grad(const tg_tensor *t);
/* Zeroes the accumulated gradient in place (nothing to do if there is none yet). */
TG_API void tg_zero_grad(tg_tensor *t);

typedef struct {
    bool retain_graph; /* keep saved tensors so a second backward can run */
    bool create_graph; /* record the backward pass itself: higher-order gradients. Only
                          tg_autograd_grad takes it; tg_backward_ex refuses it, since a
                          recorded gradient stored in a leaf's .grad would refer back to
                          the leaf (a reference cycle that is never freed). */
} tg_backward_opts;

/* Backpropagates from a one-element loss (gradient 1) into every leaf's .grad. */
TG_API tg_status tg_backward(tg_tensor *loss);
/* The general form: grad_output has t's shape (NULL: ones, only for one element). */
TG_API tg_status tg_backward_ex(tg_tensor *t, tg_tensor *grad_output, const tg_backward_opts *opts);
/* Gradients of sum_i <outputs[i], grad_outputs[i]> with respect to inputs, returned in
 * grads[] (owned by the current scope) without touching any .grad. grad_outputs may be
 * NULL (ones for one-element outputs). Every output must require grad; an input the
 * outputs do not depend on gets zeros. */
TG_API tg_status tg_autograd_grad(int n_outputs, tg_tensor *const *outputs,
                                  tg_tensor *const *grad_outputs, int n_inputs,
                                  tg_tensor *const *inputs, tg_tensor **grads,
                                  const tg_backward_opts *opts);

/* The recorded graph behind t as Graphviz DOT (`dot -Tsvg graph.dot -o graph.svg`):
 * one box per recorded op (its name, the public call that recorded it when another,
 * and each output's shape and dtype) and one ellipse per input: a leaf that requires
 * grad (shape, dtype, requires_grad, its name from opts) or a tensor that does not
 * (shape and dtype only: the tape keeps no reference to it). Edges run in data-flow
 * direction, inputs to ops to t, whose op has a double border. Ids follow the tape
 * (ops by decreasing sequence number, inputs in the order the ops name them), so the
 * same graph gives the same text. Saved tensors are not drawn. Reads the tape only:
 * works before and after tg_backward (retain_graph or not). A tensor with no graph
 * (a leaf, or one made in no-grad mode) gives a graph of that one tensor.
 *
 *     tg_named params;                                  // tapegrad/nn.h
 *     tg_module_parameters(model, false, &params);
 *     tg_graph_dot_save("graph.dot", loss, &(tg_dot_opts){ .n_names = params.n,
 *                       .tensors = params.tensors, .names = params.names });
 *
 * Errors: t or f NULL, n_names < 0, or names given without tensors (TG_ERR_INVALID);
 * a write that fails, or a path that cannot be created (TG_ERR_IO, naming the path). */
typedef struct {
    int n_names;                  /* entries in tensors and names */
    tg_tensor *const *tensors;    /* leaves to label ... */
    char *const *names;           /* ... with these names ("fc.weight"); NULL entries skipped */
    const char *graph_name;       /* the digraph's name; default "tapegrad" */
} tg_dot_opts;
TG_API tg_status tg_graph_dot(FILE *f, const tg_tensor *t, const tg_dot_opts *opts);
TG_API tg_status tg_graph_dot_save(const char *path, const tg_tensor *t, const tg_dot_opts *opts);

/* A gradient hook: called with the gradient flowing into t during a backward pass
 * (for a leaf before it is added to .grad, for any other tensor once its gradient is
 * complete, and in tg_autograd_grad too). It returns the gradient to use from there
 * on: grad itself to only inspect it, or a new tensor of grad's shape, dtype and device
 * to change it; NULL fails the backward with the hook's message. Hooks run in the
 * order they were registered, in grad mode when the backward records itself. */
typedef tg_tensor *(*tg_grad_hook)(tg_tensor *grad, void *ctx);
TG_API tg_status tg_register_hook(tg_tensor *t, tg_grad_hook fn, void *ctx);
/* Removes every hook registered on t. */
TG_API void tg_remove_hooks(tg_tensor *t);

/* Moves n leaf parameters into one flat buffer, the layout optimizers step over with a
 * handful of ops whatever the number of parameters: each keeps its shape and values
 * but becomes a view of *flat (1-D, the total size), and its gradient a view of
 * *flat_grad (zero-filled), which backward accumulates into in place. The leaves must
 * share one float dtype and device, own their storage alone (no views of them alive)
 * and have no graph. *flat and *flat_grad are owned references (tg_release). */
TG_API tg_status tg_params_flatten(int n, tg_tensor *const *params, tg_tensor **flat, tg_tensor **flat_grad);

/* Grad mode: when off, no op records. Returns the previous setting, to restore. */
TG_API bool tg_set_grad_enabled(bool enabled);
TG_API bool tg_is_grad_enabled(void);
/* A new tensor sharing t's storage, cut from the graph (no grad). */
TG_API tg_tensor *tg_detach(tg_tensor *t);

/* ---------------------------------------------------------------- user-defined ops
 *
 * A differentiable op of one's own, as PyTorch's autograd.Function or JAX's
 * custom_vjp: forward is any code (ops, or a kernel of the user's own that reads and
 * writes host memory) and runs with grad mode off; it may save tensors for backward.
 * backward gets the gradient of every output (zeros for outputs the loss does not
 * use) and writes the gradient of every input that needs one (NULL: none), using ops,
 * so that a backward written with differentiable ops gives second order too.
 *
 *     static tg_status swish_fwd(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
 *         tg_function_save(c, in[0]);
 *         out[0] = tg_mul(in[0], tg_sigmoid(in[0]));
 *         return out[0] ? TG_OK : tg_last_status();
 *     }
 *     static tg_status swish_bwd(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
 *         tg_tensor *x = tg_function_saved(c, 0), *s = tg_sigmoid(x);   // s (1 + x (1 - s))
 *         gin[0] = tg_mul(gout[0], tg_mul(s, tg_add_scalar(tg_mul(x, tg_add_scalar(tg_neg(s), 1)), 1)));
 *         return gin[0] ? TG_OK : tg_last_status();
 *     }
 *     static const tg_function swish = { "swish", 1, 1, swish_fwd, swish_bwd };
 *     tg_tensor *y = tg_function_call(&swish, NULL, 1, &x);
 */
typedef struct tg_function_ctx tg_function_ctx;
typedef struct {
    const char *name;   /* for messages */
    int n_inputs, n_outputs;
    tg_status (*forward)(tg_function_ctx *ctx, tg_tensor *const *inputs, tg_tensor **outputs);
    tg_status (*backward)(tg_function_ctx *ctx, tg_tensor *const *grad_outputs, tg_tensor **grad_inputs);
} tg_function;

/* Runs f on inputs; outputs[0..n_outputs) receive new tensors owned by the current
 * scope, recorded on the tape when an input requires grad. user is handed to both
 * callbacks (tg_function_user). f must outlive the graph. */
TG_API tg_status tg_function_apply(const tg_function *f, void *user, tg_tensor *const *inputs,
                                   tg_tensor **outputs);
/* The one-output form: the output, or NULL with a message. */
TG_API tg_tensor *tg_function_call(const tg_function *f, void *user, int n_inputs, tg_tensor *const *inputs);
/* In forward: keeps t (an input, an output, or anything computed) for backward. */
TG_API tg_status tg_function_save(tg_function_ctx *ctx, tg_tensor *t);
/* In backward: the i-th saved tensor (NULL with a message if it was modified in place
 * since, or the graph was freed). */
TG_API tg_tensor *tg_function_saved(tg_function_ctx *ctx, int i);
TG_API void *tg_function_user(tg_function_ctx *ctx);
/* In backward: whether input i needs a gradient (skip the work for the others). */
TG_API bool tg_function_needs_grad(tg_function_ctx *ctx, int i);

/* ---------------------------------------------------------------- gradient checking */

typedef tg_tensor *(*tg_fn)(tg_tensor *const *inputs, void *ctx);
typedef struct {
    double eps, atol, rtol; /* 0: defaults 1e-6, 1e-5, 1e-3 */
} tg_gradcheck_opts;
typedef struct {
    int input;         /* the input where the check failed, or -1 */
    int64_t element;   /* its flat element index */
    double analytic, numeric;
    double max_abs_error; /* over every element checked */
    char message[256];    /* "input 1, element [2]: analytic 0.41 vs numeric 0.38" */
} tg_gradcheck_report;

/* Compares the gradient of sum(fn(inputs) * r) (r a fixed random tensor) computed by
 * backward with central differences. Inputs must be f64; the function must be
 * deterministic. Returns TG_OK; TG_ERR_INVALID when the gradients disagree (the report
 * names the input and element); or the error that stopped the check (TG_ERR_DTYPE for
 * inputs that are not f64, the function's own error when it fails), whose message is
 * also copied into report->message. */
TG_API tg_status tg_gradcheck(tg_fn fn, void *ctx, int n, tg_tensor *const *inputs,
                              const tg_gradcheck_opts *opts, tg_gradcheck_report *report);
/* The same for the gradient of the gradient (second order, via create_graph). */
TG_API tg_status tg_gradgradcheck(tg_fn fn, void *ctx, int n, tg_tensor *const *inputs,
                                  const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/* ---------------------------------------------------------------- result dtypes
 * As in PyTorch:
 *   unary and binary ops, where, max, min      the inputs' dtype
 *   float-only ops: exp log sqrt rsqrt sigmoid tanh sin cos reciprocal pow_scalar
 *     leaky_relu, div, pow, matmul, mean, var, std, logsumexp, norm, softmax,
 *     log_softmax                               f32 or f64 in, the same out
 *   comparisons (eq ne lt le gt ge)            u8
 *   sum                                        f32/f64 stay; u8, i32 and i64 give i64
 *                                              (exact: tg_sum(tg_eq(pred, y)) counts past 255)
 *   argmax, argmin, one_hot                    i64
 *   gather, index_select, scatter_add          x's dtype (indices i32 or i64)
 *   cross_entropy                              the logits' dtype (labels i32 or i64)
 *   movement ops, clone, contiguous, to        the input's dtype; cast: the one asked
 *
 * Index rule (gather, index_select, scatter_add, one_hot, cross_entropy labels): as in
 * PyTorch an index is i32 or i64 and must lie in [0, size) of the axis it indexes; a
 * negative or too large index is an error naming the call and the value (it never
 * wraps or clamps). cross_entropy's ignore_index is the one exception.
 *
 * ---------------------------------------------------------------- elementwise ops
 * Binary ops broadcast like numpy; both inputs must share dtype and device. */

TG_API tg_tensor *tg_neg(tg_tensor *x);
TG_API tg_tensor *tg_exp(tg_tensor *x);
TG_API tg_tensor *tg_log(tg_tensor *x);
TG_API tg_tensor *tg_sqrt(tg_tensor *x);
TG_API tg_tensor *tg_rsqrt(tg_tensor *x);
TG_API tg_tensor *tg_abs(tg_tensor *x);
TG_API tg_tensor *tg_sign(tg_tensor *x);       /* gradient zero */
TG_API tg_tensor *tg_relu(tg_tensor *x);
TG_API tg_tensor *tg_sigmoid(tg_tensor *x);
TG_API tg_tensor *tg_tanh(tg_tensor *x);
TG_API tg_tensor *tg_sin(tg_tensor *x);
TG_API tg_tensor *tg_cos(tg_tensor *x);
TG_API tg_tensor *tg_square(tg_tensor *x);
TG_API tg_tensor *tg_reciprocal(tg_tensor *x);
TG_API tg_tensor *tg_leaky_relu(tg_tensor *x, double negative_slope);
TG_API tg_tensor *tg_pow_scalar(tg_tensor *x, double exponent);
TG_API tg_tensor *tg_add_scalar(tg_tensor *x, double value);
TG_API tg_tensor *tg_mul_scalar(tg_tensor *x, double value);
/* lo/hi may be -INFINITY/INFINITY for no bound. */
TG_API tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi);

TG_API tg_tensor *tg_add(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_div(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_maximum(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_minimum(tg_tensor *a, tg_tensor *b);

/* Comparisons give u8 masks (1 true, 0 false). Two different integer dtypes compare
 * after promotion to the wider one (u8 < i32 < i64), as in PyTorch, so an i64 argmax
 * compares with i32 labels; other dtype pairs must match. */
TG_API tg_tensor *tg_eq(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_ne(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_lt(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_le(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_gt(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_ge(tg_tensor *a, tg_tensor *b);
/* cond (u8) ? a : b, all three broadcast together. */
TG_API tg_tensor *tg_where(tg_tensor *cond, tg_tensor *a, tg_tensor *b);

/* ---------------------------------------------------------------- activations, dropout and resampling
 * As torch.nn.functional names and computes them; float (f32/f64) inputs only (others
 * are an error naming the dtype). Each is composed from the ops above, so it runs on
 * every device, its backward is exact and second order works. Special values follow
 * PyTorch (NaN stays NaN; gelu and silu give NaN at -inf, as x * 0 does there). */

/* The error function and its complement (torch.erf, torch.erfc): Cody's rational
 * approximation, about 1e-15 relative in f64; the gradient is -+2/sqrt(pi) e^(-x^2). */
TG_API tg_tensor *tg_erf(tg_tensor *x);
TG_API tg_tensor *tg_erfc(tg_tensor *x);
/* x > 0 ? x : alpha (e^x - 1) (computed as expm1, so accurate near 0; PyTorch: 1.0). */
TG_API tg_tensor *tg_elu(tg_tensor *x, double alpha);
typedef enum {
    TG_GELU_NONE, /* x Phi(x) = x/2 erfc(-x/sqrt 2): exact (accurate for x << 0 too) */
    TG_GELU_TANH, /* x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate="tanh" */
} tg_gelu_approximate;
/* tg_gelu(x, TG_GELU_NONE) is F.gelu(x); the tanh form costs a few ops, the exact one
 * about eighty elementwise passes (erf has no kernel of its own). */
TG_API tg_tensor *tg_gelu(tg_tensor *x, tg_gelu_approximate approximate);
TG_API tg_tensor *tg_silu(tg_tensor *x); /* x sigmoid(x) */
/* log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch: beta 1,
 * threshold 20). beta must be finite and non-zero, threshold not NaN. */
TG_API tg_tensor *tg_softplus(tg_tensor *x, double beta, double threshold);
/* log(sigmoid(x)) = -softplus(-x): finite for every finite x, -inf at -inf. */
TG_API tg_tensor *tg_log_sigmoid(tg_tensor *x);
/* clamp(x, min_val, max_val) with PyTorch's gradient: 1 strictly inside, 0 on the bounds
 * (PyTorch: -1, 1). min_val > max_val is an error. relu6 is hardtanh(x, 0, 6). */
TG_API tg_tensor *tg_hardtanh(tg_tensor *x, double min_val, double max_val);
TG_API tg_tensor *tg_relu6(tg_tensor *x);
TG_API tg_tensor *tg_softsign(tg_tensor *x);    /* x / (1 + |x|) */
TG_API tg_tensor *tg_hardsigmoid(tg_tensor *x); /* min(max(x + 3, 0), 6) / 6 */
TG_API tg_tensor *tg_hardswish(tg_tensor *x);   /* x min(max(x + 3, 0), 6) / 6 */

/* Inverted dropout: in training each element is zeroed with probability p and the rest
 * scaled by 1/(1 - p); the mask comes from the Philox generator (tg_manual_seed), so
 * every device drops the same elements under one seed. p must be in [0, 1]; p == 1
 * gives x * 0; training false or p == 0 returns a new view of x and draws nothing. */
TG_API tg_tensor *tg_dropout(tg_tensor *x, double p, bool training);
/* Zeroes whole channels: one draw per (n, c) of (N, C, H, W), or per c of an unbatched
 * (C, H, W) (PyTorch 2's reading; 1.13 read 3-D as (N, C, L)); other ranks are an error. */
TG_API tg_tensor *tg_dropout2d(tg_tensor *x, double p, bool training);

typedef enum {
    TG_INTERPOLATE_NEAREST,       /* PyTorch's default: source floor(dst * in/out), its legacy rule */
    TG_INTERPOLATE_NEAREST_EXACT, /* floor((dst + 0.5) * in/out), as Pillow and scipy */
    TG_INTERPOLATE_BILINEAR,
} tg_interpolate_mode;
typedef struct {
    int64_t size[2];         /* output (H, W); { h } alone means (h, h) */
    double scale_factor[2];  /* or scale factors; { s } alone means (s, s). Exactly one of
                                size and scale_factor is given. */
    tg_interpolate_mode mode; /* default nearest */
    bool align_corners;      /* bilinear only: corner pixels' centres align (PyTorch: False) */
    bool recompute_scale_factor; /* scale_factor only: the kernel uses in/out rather than
                                    1/scale_factor (PyTorch: None, i.e. false) */
} tg_interpolate_opts;
/* F.interpolate of x (N, C, H, W) to (N, C, OH, OW); OH = floor(H * scale_factor) when a
 * scale is given. Nearest modes take any dtype, bilinear f32/f64. Indices and weights are
 * PyTorch's (same precision), so results match its CPU kernel to rounding. Errors: not
 * 4-D, an unknown mode, both or neither of size and scale_factor, a size <= 0, a scale
 * <= 0 or not finite, an empty input or output plane, align_corners with a nearest mode,
 * recompute_scale_factor with size. */
TG_API tg_tensor *tg_interpolate(tg_tensor *x, const tg_interpolate_opts *opts);

/* ---------------------------------------------------------------- reductions */

/* Axes out of range, given twice, or more than TG_MAX_DIMS of them are an error;
 * max/min/argmax/argmin over an axis of size 0 are an error (a sum over it gives 0). */
/* f32/f64 stay; u8, i32 and i64 sum exactly into i64 (PyTorch's promotion). */
TG_API tg_tensor *tg_sum(tg_tensor *x, tg_axes axes, bool keepdim);
/* f32/f64 only: the mean of an integer tensor is an error (cast it first), as in PyTorch. */
TG_API tg_tensor *tg_mean(tg_tensor *x, tg_axes axes, bool keepdim);
TG_API tg_tensor *tg_max(tg_tensor *x, tg_axes axes, bool keepdim); /* ties share the gradient */
TG_API tg_tensor *tg_min(tg_tensor *x, tg_axes axes, bool keepdim);
/* sum((x - mean)^2) / max(0, N - correction) over the N reduced elements, as PyTorch:
 * correction 1 is the unbiased estimate (PyTorch's default), 0 the population one; a
 * correction >= N divides by 0 and gives inf (NaN when the sum is 0 too, e.g. N = 1),
 * never a negative variance. std is its square root. A negative correction is an
 * error. f32/f64 only. */
TG_API tg_tensor *tg_var(tg_tensor *x, tg_axes axes, int correction, bool keepdim);
TG_API tg_tensor *tg_std(tg_tensor *x, tg_axes axes, int correction, bool keepdim);
TG_API tg_tensor *tg_logsumexp(tg_tensor *x, tg_axes axes, bool keepdim);
/* The Euclidean norm of all elements, 0-d. */
TG_API tg_tensor *tg_norm(tg_tensor *x);
/* Index of the first largest (smallest) element along one axis, i64 (as PyTorch). */
TG_API tg_tensor *tg_argmax(tg_tensor *x, int axis, bool keepdim);
TG_API tg_tensor *tg_argmin(tg_tensor *x, int axis, bool keepdim);

/* ---------------------------------------------------------------- normalisation
 * PyTorch's torch.nn.functional batch_norm, layer_norm, group_norm and
 * local_response_norm, same arguments, defaults and formulas. x is f32 or f64; weight,
 * bias and running statistics have x's dtype and device, and any of them may be NULL
 * (no affine transform; no running statistics). Batch, layer and group norm are fused
 * primitives: one kernel forward, one backward (dx, dweight, dbias together) unless the
 * backward itself is recorded (create_graph), where it is composed of ops so that
 * second derivatives work. Statistics use the biased variance; eps is added to it. */

typedef struct {
    bool training;          /* batch statistics, updating the running ones; default (false):
                               the running statistics (PyTorch's F.batch_norm default) */
    tg_opt_f64 momentum;    /* running = (1 - momentum) * running + momentum * batch stat;
                               default 0.1; TG_SOME(0) leaves the running stats as they are */
    bool cumulative;        /* PyTorch's momentum=None: a cumulative moving average, the
                               factor 1 / num_batches_tracked (momentum is then ignored) */
    int64_t num_batches_tracked; /* with cumulative: batches seen, this one included (>= 1) */
    tg_opt_f64 eps;         /* default 1e-5 */
    bool relu;              /* the result is tg_relu(tg_batch_norm(...)), in the same pass
                               where the device has the fused kernel (the CPU) */
    tg_tensor *residual;    /* or NULL; else the result is batch_norm(...) + residual, before
                               the relu (ResNet's relu(bn(conv(x)) + shortcut)): x's shape,
                               dtype and device, its gradient the sum's; one pass on the CPU */
} tg_batch_norm_opts;
/* x (N, C), (N, C, L), (N, C, H, W) or more axes; statistics per channel over every
 * other axis. running_mean/running_var (C) are read in eval (required there) and, in
 * training, updated in place with the batch mean and the unbiased batch variance
 * (their version is bumped, so a backward that saved them reports it); they must not
 * require grad. weight, bias (C). Training needs more than one value per channel. */
TG_API tg_tensor *tg_batch_norm(tg_tensor *x, tg_tensor *running_mean, tg_tensor *running_var, tg_tensor *weight,
                                tg_tensor *bias, const tg_batch_norm_opts *opts);
/* Normalises over the trailing axes given by normalized_shape (which must equal x's
 * last axes); weight and bias have shape normalized_shape. PyTorch's eps: 1e-5. */
TG_API tg_tensor *tg_layer_norm(tg_tensor *x, tg_shape normalized_shape, tg_tensor *weight, tg_tensor *bias,
                                double eps);
/* x (N, C, ...): statistics per sample over each group of C / num_groups channels
 * (num_groups must divide C) and the other axes; weight, bias (C). */
TG_API tg_tensor *tg_group_norm(tg_tensor *x, int64_t num_groups, tg_tensor *weight, tg_tensor *bias, double eps);
/* AlexNet's local response normalisation across channels, x (N, C, ...) with 3 or
 * more axes: x / (k + alpha / size * sum of x^2 over the size channels around c)^beta,
 * the window [c - size/2, c + (size-1)/2] padded with zeros (PyTorch's defaults: alpha
 * 1e-4, beta 0.75, k 1). Composed of ops: twice differentiable, any device. */
TG_API tg_tensor *tg_local_response_norm(tg_tensor *x, int64_t size, double alpha, double beta, double k);

/* ---------------------------------------------------------------- softmax and losses */

TG_API tg_tensor *tg_softmax(tg_tensor *x, int axis);
TG_API tg_tensor *tg_log_softmax(tg_tensor *x, int axis);

typedef enum { TG_REDUCTION_MEAN, TG_REDUCTION_SUM, TG_REDUCTION_NONE } tg_reduction;
typedef struct {
    tg_reduction reduction;  /* default (0): mean over the targets not ignored */
    tg_opt_i64 ignore_index; /* labels equal to it add nothing; default -100 as in PyTorch
                                (TG_SOME(0) ignores class 0) */
} tg_cross_entropy_opts;
/* logits (N, C) or (N, C, d...), labels i32 or i64 (N) or (N, d...). A label that is
 * not ignore_index must be in [0, C): -1 or C is an error naming the value, never a
 * wrapped class. */
TG_API tg_tensor *tg_cross_entropy(tg_tensor *logits, tg_tensor *labels);
TG_API tg_tensor *tg_cross_entropy_ex(tg_tensor *logits, tg_tensor *labels,
                                      const tg_cross_entropy_opts *opts);

/* ---------------------------------------------------------------- matmul */

/* numpy/PyTorch matmul: 1-D vectors, 2-D matrices, and batches of matrices whose
 * leading axes broadcast: (B,1,M,K) @ (H,K,N) -> (B,H,M,N). */
TG_API tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b);

/* ---------------------------------------------------------------- convolution
 * As torch.nn.functional's conv1d, conv2d and conv_transpose2d: NCHW (NCL for 1-D),
 * cross-correlation (no kernel flip), zero padding. An options struct stands for
 * PyTorch's keyword arguments: NULL, or a field left 0, is PyTorch's default (stride 1,
 * padding 0, dilation 1, groups 1, output_padding 0). A scalar field sets both spatial
 * axes, like PyTorch's int; the _hw pairs (H, W) are PyTorch's tuples: a pair with a
 * non-zero entry replaces its scalar, and a 0 in it means 1 for stride and dilation,
 * 0 for padding and output_padding: .padding_hw = { 0, 1 } pads W only.
 *
 * Every tensor is f32 or f64, of one dtype and on one device; an unbatched input
 * ((C, H, W), or (C, L) for 1-D) gives an unbatched output, as in PyTorch. Inputs of
 * any strides are accepted (a dense copy is made for the kernel). The result is
 * differentiable in x, weight and bias, twice and more (the backward is made of the
 * same convolutions). bias may be NULL for none: a failed call that returned NULL
 * cannot be told from that, so check it before passing it.
 *
 * Errors (NULL and a message naming the call and the values): a dtype that is not
 * f32/f64, or two dtypes or devices; an input or weight of the wrong rank; channels
 * that do not match the weight; groups that do not divide the channels; a bias that is
 * not 1-D with one element per output channel; a negative stride, padding, dilation,
 * groups or output_padding; padding "same" with a stride other than 1, or with
 * padding amounts; a kernel of size 0; a dilated kernel larger than the padded input;
 * an output size <= 0; output_padding not smaller than the stride or the dilation; a
 * device without convolution kernels ("tg_conv2d: device opencl:0 has no conv2d kernel
 * for f32 (yet)"). */

/* PyTorch's padding="valid" and padding="same". */
typedef enum {
    TG_CONV_PAD_EXPLICIT = 0, /* the amounts in padding / padding_hw (default 0) */
    TG_CONV_PAD_VALID,        /* no padding */
    TG_CONV_PAD_SAME,         /* the output has the input's size: d*(k-1) zeros per axis, half before and
                                 the rest (one more when odd) after, as PyTorch; stride 1 only */
} tg_conv_padding;

typedef struct {
    int64_t stride;           /* default 1 */
    int64_t padding;          /* zeros on each side of each axis; default 0 */
    int64_t dilation;         /* spacing of the kernel taps; default 1 */
    int64_t groups;           /* default 1; in_channels and out_channels must be multiples of it
                                 (groups = in_channels: depthwise) */
    tg_conv_padding padding_kind; /* "valid"/"same" instead of amounts (then padding must be 0) */
    int64_t stride_hw[2], padding_hw[2], dilation_hw[2]; /* per axis (H, W) */
    /* An epilogue, for inference: the result is relu(bn(conv2d(x) + bias) + residual), each
     * part optional (bn.running_mean NULL: no batch norm; residual NULL: none; relu false:
     * none). bn is tg_batch_norm in eval mode with these tensors (bn.weight and bn.bias may
     * be NULL) and bn.eps (default 1e-5). On the CPU, when no gradient is recorded (grad
     * mode off, or no input requiring grad), it runs in the convolution's own output pass
     * (ResNet's conv, batch norm, add and relu as one); otherwise it is that composition,
     * gradients included. Both give the same bits. */
    struct {
        tg_tensor *running_mean, *running_var, *weight, *bias; /* (C_out) each */
        tg_opt_f64 eps;
    } bn;
    tg_tensor *residual;      /* the result's shape, dtype and device */
    bool relu;
} tg_conv2d_opts;

/* x (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kH, kW); bias (C_out)
 * or NULL. Returns (N, C_out, H_out, W_out) with, per axis,
 * H_out = floor((H + pad_before + pad_after - dilation*(kH-1) - 1) / stride) + 1. */
TG_API tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias, const tg_conv2d_opts *opts);

typedef struct {
    int64_t stride;           /* default 1 */
    int64_t padding;          /* default 0 */
    int64_t dilation;         /* default 1 */
    int64_t groups;           /* default 1 */
    tg_conv_padding padding_kind;
} tg_conv1d_opts;

/* x (N, C_in, L) or (C_in, L); weight (C_out, C_in/groups, kL); bias (C_out) or NULL.
 * Returns (N, C_out, L_out), L_out as H_out above; the 2-D convolution over a height
 * of 1 (views, no copy), so gradients and errors are tg_conv2d's, in 1-D terms. */
TG_API tg_tensor *tg_conv1d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias, const tg_conv1d_opts *opts);

typedef struct {
    int64_t stride;           /* default 1 */
    int64_t padding;          /* dilation*(k-1) - padding zeros on each side; default 0 */
    int64_t output_padding;   /* extra size on the bottom/right; default 0; each axis' must be
                                 smaller than its stride or its dilation, as PyTorch */
    int64_t dilation;         /* default 1 */
    int64_t groups;           /* default 1 */
    int64_t stride_hw[2], padding_hw[2], output_padding_hw[2], dilation_hw[2]; /* per axis (H, W) */
} tg_conv_transpose2d_opts;

/* The gradient of tg_conv2d with respect to its input, as an op ("deconvolution"):
 * x (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out/groups, kH, kW) (PyTorch's
 * layout); bias (C_out) or NULL. Returns (N, C_out, H_out, W_out) with
 * H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1. */
TG_API tg_tensor *tg_conv_transpose2d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias,
                                      const tg_conv_transpose2d_opts *opts);

/* ---------------------------------------------------------------- pooling
 * PyTorch's F.max_pool2d, max_unpool2d, avg_pool2d, adaptive_avg_pool2d and
 * adaptive_max_pool2d over (N, C, H, W) or unbatched (C, H, W) f32/f64 tensors, with
 * the same options, defaults, output sizes and index rules. Each is one op on the tape
 * whose backward is itself an op, so second order works.
 *
 *     tg_tensor *y = tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2 }); // stride 2
 *     tg_tensor *z = tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 3, .stride = 1,
 *                                                           .padding = 1,
 *                                                           .count_include_pad = TG_SOME(false) });
 *
 * Sizes: each option is a scalar for both axes, or a (H, W) pair in the *_hw field,
 * which replaces the scalar when one of its elements is non-zero (PyTorch's tuples);
 * a zero anywhere means the default. Output size on an axis of input size I:
 *     O = floor((I + 2 padding - dilation (kernel - 1) - 1) / stride) + 1,
 * rounded up instead with ceil_mode, where a last window that would start past
 * I + padding (in the right padding) is dropped, as PyTorch does.
 * Errors (messages name the call and the values): an input that is not 3-D or 4-D, has
 * C, H or W of 0, or is not f32/f64; kernel_size, stride or dilation below 1 (kernel_size
 * has no default); padding negative or above half the kernel size; an output size below
 * 1; a device without the kernel ("device opencl:0 has no pool2d kernel for f32 (yet)").
 * Max pooling keeps the first maximum of a window (row-major), a NaN wins over any
 * number, and padding counts as -inf. */
typedef struct {
    int64_t kernel_size;       /* required */
    int64_t stride;            /* default: kernel_size */
    int64_t padding;           /* default 0 (implicit -inf on both sides) */
    int64_t dilation;          /* default 1 */
    bool ceil_mode;
    int64_t kernel_size_hw[2], stride_hw[2], padding_hw[2], dilation_hw[2];
} tg_max_pool2d_opts;
TG_API tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_max_pool2d_opts *opts);
/* Also returns (in *indices, owned by the current scope) each maximum's flat i64
 * position in its H*W input plane, as PyTorch's return_indices=True. */
TG_API tg_tensor *tg_max_pool2d_with_indices(tg_tensor *x, const tg_max_pool2d_opts *opts, tg_tensor **indices);

typedef struct {
    int64_t kernel_size;       /* required: the pooling's */
    int64_t stride;            /* default: kernel_size */
    int64_t padding;           /* default 0 */
    int64_t output_size[2];    /* (H, W); default (I - 1) stride - 2 padding + kernel_size per
                                  axis; a given size must lie strictly within stride of it */
    int64_t kernel_size_hw[2], stride_hw[2], padding_hw[2];
} tg_max_unpool2d_opts;
/* The inverse of max pooling: zeros of the output size with x placed at indices (i64,
 * x's shape, positions in each output plane; a repeated index keeps the last value, an
 * index outside the plane is an error naming it). The gradient w.r.t. x gathers at
 * indices. */
TG_API tg_tensor *tg_max_unpool2d(tg_tensor *x, tg_tensor *indices, const tg_max_unpool2d_opts *opts);

typedef struct {
    int64_t kernel_size;          /* required */
    int64_t stride;               /* default: kernel_size */
    int64_t padding;              /* default 0 (zeros) */
    bool ceil_mode;
    tg_opt_i64 count_include_pad; /* default true: padded zeros count in the divisor;
                                     TG_SOME(false) divides by the input elements only */
    int64_t divisor_override;     /* default 0: none; else the divisor of every window */
    int64_t kernel_size_hw[2], stride_hw[2], padding_hw[2];
} tg_avg_pool2d_opts;
TG_API tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_avg_pool2d_opts *opts);

/* Output (output_h, output_w), both at least 1; output i on an axis of size I averages
 * (or takes the max of) [floor(i I / O), ceil((i + 1) I / O)). (1, 1) is global pooling. */
TG_API tg_tensor *tg_adaptive_avg_pool2d(tg_tensor *x, int64_t output_h, int64_t output_w);
TG_API tg_tensor *tg_adaptive_max_pool2d(tg_tensor *x, int64_t output_h, int64_t output_w);
TG_API tg_tensor *tg_adaptive_max_pool2d_with_indices(tg_tensor *x, int64_t output_h, int64_t output_w,
                                                      tg_tensor **indices);

/* ---------------------------------------------------------------- detection
 * torchvision.ops' roi_pool, roi_align, box_iou, nms and batched_nms, same arguments,
 * defaults and numbers. Boxes are rows [x1, y1, x2, y2] in pixels (x right, y down);
 * the ROI ops take (K, 5) rows [batch_index, x1, y1, x2, y2], batch_index naming the
 * image of input it is cut from (a float: torchvision truncates it).
 *
 *     tg_tensor *rois = tg_from_f32((float[]){ 0, 8, 8, 40, 40 }, TG_SHAPE(1, 5), dev);
 *     tg_tensor *f = tg_roi_align(features, rois, 7, 7, 1.0 / 16, -1, true); // (1, C, 7, 7)
 *
 * roi_pool and roi_align are ops with a backward (differentiable in input, twice; the
 * boxes get no gradient, as in torchvision) on the CPU and OpenCL, f32 and f64; boxes
 * of the other float dtype are converted to the input's. The boxes are read back to
 * the host to be checked (a wait on an OpenCL device). Errors (messages name the call
 * and the values): an input that is not 4-D (N, C, H, W), has H or W of 0, or is not
 * f32/f64; boxes that are not (K, 5) or not f32/f64; a batch index outside [0, N); a
 * coordinate that is not finite (or past 1e15 after spatial_scale); an output size
 * below 1 (or too large to allocate); spatial_scale <= 0 or not finite; sampling_ratio
 * below -1 or above 1024; tensors on two devices; a device without the kernel. K = 0
 * gives an empty (0, C, h, w) output. */

/* Max pooling of each box into (output_h, output_w) bins: the box scaled by
 * spatial_scale and rounded to whole pixels (half away from zero), at least 1x1, cut
 * into bins [floor(i h / output_h), ceil((i + 1) h / output_h)) clipped to the image;
 * an empty bin gives 0. The gradient goes to each bin's maximum (the first of a tie,
 * row-major). input (N, C, H, W), boxes (K, 5) -> (K, C, output_h, output_w). */
TG_API tg_tensor *tg_roi_pool(tg_tensor *input, tg_tensor *boxes, int64_t output_h, int64_t output_w,
                              double spatial_scale);
/* The average of sampling_ratio x sampling_ratio bilinear samples per bin (-1 or 0:
 * ceil(box size / output size) on each axis, torchvision's adaptive default -1), at
 * the box scaled by spatial_scale, shifted by -0.5 pixel when aligned (torchvision's
 * aligned=True; with false a box is at least 1x1). A sample above -1 and below H (W) is
 * clamped into the image, one further out reads 0. The gradient spreads over the same
 * samples with the same weights. Adaptive sampling of a box that would take more than
 * 2^20 samples per bin is an error (give a sampling_ratio). */
TG_API tg_tensor *tg_roi_align(tg_tensor *input, tg_tensor *boxes, int64_t output_h, int64_t output_w,
                               double spatial_scale, int64_t sampling_ratio, bool aligned);
/* Intersection over union of a (N, 4) and b (M, 4) -> (N, M), composed of ops (so
 * differentiable, any device); a and b f32/f64 of one dtype and device. Boxes of zero
 * area on both sides give 0/0 = NaN, as torchvision. */
TG_API tg_tensor *tg_box_iou(tg_tensor *a, tg_tensor *b);
/* Non-maximum suppression: boxes (N, 4) and scores (N) f32/f64; the i64 indices of the
 * boxes kept, by decreasing score (ties: lower index first, NaN scores first), a box
 * being dropped when its IoU with a kept box of higher score is above iou_threshold.
 * Runs on the host (the tensors are read back; the result is on boxes' device), is not
 * recorded, and has torchvision's CPU arithmetic (f32 boxes, f32 ratios). Errors:
 * shapes, dtypes, a NaN threshold. */
TG_API tg_tensor *tg_nms(tg_tensor *boxes, tg_tensor *scores, double iou_threshold);
/* nms within each class: idxs (N) i32/i64 is each box's class, and boxes of two
 * classes never suppress each other (torchvision.ops.batched_nms); the indices kept by
 * decreasing score. */
TG_API tg_tensor *tg_batched_nms(tg_tensor *boxes, tg_tensor *scores, tg_tensor *idxs, double iou_threshold);

/* ---------------------------------------------------------------- movement
 * Views share storage with their input (no copy) where strides allow. */

/* One dim may be -1 (inferred). A view when strides allow, else a copy. */
TG_API tg_tensor *tg_reshape(tg_tensor *x, tg_shape shape);
/* Like reshape but never copies: an error if x's strides do not allow a view. */
TG_API tg_tensor *tg_view(tg_tensor *x, tg_shape shape);
/* Merges axes start_axis..end into one: tg_flatten(x, 1) turns (B,C,H,W) into (B,C*H*W). */
TG_API tg_tensor *tg_flatten(tg_tensor *x, int start_axis);
TG_API tg_tensor *tg_permute(tg_tensor *x, tg_axes order);
TG_API tg_tensor *tg_transpose(tg_tensor *x, int axis0, int axis1);
/* Broadcasts size-1 axes (and new leading ones) to shape; -1 keeps a size. A shape of
 * more than TG_MAX_DIMS axes, or whose element count overflows, is an error (the same
 * for tg_reshape and tg_view). The result has stride 0 on the stretched axes: in-place
 * updates other than tg_fill_ refuse it. */
TG_API tg_tensor *tg_expand(tg_tensor *x, tg_shape shape);
/* Python's x[start:stop:step] on one axis; negative start/stop count from the end,
 * out-of-range ones are clamped (any int64, INT64_MIN and INT64_MAX included), step > 0
 * (any size). Use INT64_MAX as stop for "to the end". */
TG_API tg_tensor *tg_slice(tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
TG_API tg_tensor *tg_squeeze(tg_tensor *x, int axis);
TG_API tg_tensor *tg_unsqueeze(tg_tensor *x, int axis);
TG_API tg_tensor *tg_flip(tg_tensor *x, tg_axes axes); /* a view with negative strides */
TG_API tg_tensor *tg_contiguous(tg_tensor *x);         /* a dense copy, or a new view of x if already dense */
TG_API tg_tensor *tg_clone(tg_tensor *x);              /* always a copy */

TG_API tg_tensor *tg_cat(int n, tg_tensor *const *xs, int axis);
TG_API tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis);
/* Splits x along axis into pieces of split_size (the last may be smaller; an axis of
 * size 0 gives one empty piece, as PyTorch); writes at most max_out views to out and
 * returns how many there are, or -1 on error. out may be NULL only when max_out is 0
 * (to count the pieces). */
TG_API int tg_split(tg_tensor *x, int64_t split_size, int axis, tg_tensor **out, int max_out);
/* PyTorch's torch.chunk: x cut along axis into pieces of ceil(size / chunks) (the last
 * may be smaller, and there may be fewer than chunks), as views written to out, which
 * must hold chunks tensors; returns how many pieces there are, or -1 on error. All the
 * pieces are one node of the tape whose backward concatenates their gradients, so
 * splitting into many pieces (gates, time steps) costs one gradient of x's size, not
 * one per piece. */
TG_API int tg_chunk(tg_tensor *x, int64_t chunks, int axis, tg_tensor **out);
/* Constant padding as in F.pad: negative amounts crop (at most the axis' size). A
 * padded shape whose element count overflows is an error. */
TG_API tg_tensor *tg_pad(tg_tensor *x, tg_pads pads, double value);

/* ---------------------------------------------------------------- indexing */

/* out[i][j] = x[i][index[i][j]] for axis 1 (PyTorch's gather); index is i32 or i64 with
 * x's number of axes, no larger than x except on axis; values in [0, x's size on axis). */
TG_API tg_tensor *tg_gather(tg_tensor *x, int axis, tg_tensor *index);
/* Rows (or slices along axis) picked by a 1-D i32 or i64 index with values in
 * [0, x's size on axis). */
TG_API tg_tensor *tg_index_select(tg_tensor *x, int axis, tg_tensor *index);
/* A copy of x with src added at the positions index names along axis (PyTorch's
 * scatter_add, out of place); x and src f32/f64, index i32 or i64 with src's shape,
 * values in [0, x's size on axis). */
TG_API tg_tensor *tg_scatter_add(tg_tensor *x, int axis, tg_tensor *index, tg_tensor *src);
/* i32 or i64 labels (any shape, values in [0, num_classes)) -> i64 one-hot with a
 * trailing axis of num_classes, as F.one_hot. */
TG_API tg_tensor *tg_one_hot(tg_tensor *labels, int64_t num_classes);
TG_API tg_tensor *tg_cast(tg_tensor *x, tg_dtype dtype);
/* A copy on another device (x itself as a new view if already there). */
TG_API tg_tensor *tg_to(tg_tensor *x, tg_device *dev);

/* ---------------------------------------------------------------- permutations */

/* torch.randperm: a 1-D tensor of n elements holding 0..n-1 in random order, of dtype
 * (PyTorch's default is TG_I64; every dtype works while it holds n - 1 exactly: u8 up
 * to 256, i32 2^31, f32 2^24, f64 2^53) on dev, owned by the current scope. Drawn
 * from the process-wide Philox generator (tg_manual_seed), advancing it by n: a seed
 * gives the same permutation on every device and thread count (not torch's numbers).
 * Errors: n < 0, an n the dtype cannot hold, an unknown dtype, a NULL device. */
TG_API tg_tensor *tg_randperm(int64_t n, tg_dtype dtype, tg_device *dev);

/* ---------------------------------------------------------------- in-place updates
 * For optimizers and initialisation: they are not recorded, so they refuse a tensor
 * that requires grad while grad mode is on. Each bumps dst's version counter: a
 * backward that saved dst before the update reports it instead of using stale data.
 * As in PyTorch, a dst in which several elements share one memory location (an expanded
 * view: stride 0 on an axis longer than 1) is refused by all but tg_fill_, whose single
 * value makes that harmless; update tg_clone(dst) instead. */

TG_API tg_status tg_copy_(tg_tensor *dst, tg_tensor *src); /* src broadcasts to dst */
TG_API tg_status tg_add_(tg_tensor *dst, tg_tensor *src);
TG_API tg_status tg_sub_(tg_tensor *dst, tg_tensor *src);
TG_API tg_status tg_mul_(tg_tensor *dst, tg_tensor *src);
TG_API tg_status tg_fill_(tg_tensor *dst, double value);
/* dst += alpha * src: the SGD step. */
TG_API tg_status tg_axpy_(tg_tensor *dst, double alpha, tg_tensor *src);

#ifdef __cplusplus
}
#endif

#include "tapegrad/data.h"
#include "tapegrad/devices.h"
#include "tapegrad/optim.h"
#include "tapegrad/nn.h"
#include "tapegrad/rnn.h"
#include "tapegrad/models.h"
#include "tapegrad/train.h"
#include "tapegrad/dist.h"
#endif
