/* Normalisation layers over the fused functional ops: BatchNorm1d/2d (running statistics
 * and num_batches_tracked as buffers, train/eval), LayerNorm, GroupNorm, LocalResponseNorm.
 * No kernels and no backward code: the ops in tapegrad.h do the work. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/module-impl.h"

static bool opt_bool(tg_opt_bool b, bool def) { return b.set ? b.value : def; }
static double opt_f64(tg_opt_f64 v, double def) { return v.set ? v.value : def; }

/* Python's repr of a float: "1e-05", "0.1", "1.0". */
static const char *py_float(char *buf, size_t size, double v) {
    snprintf(buf, size, "%g", v);
    if (!strpbrk(buf, ".eni")) strncat(buf, ".0", size - strlen(buf) - 1);
    return buf;
}

static bool same_dtype(tg_tensor *x, tg_tensor *ref) {
    if (!ref || tg_dtype_of(x) == tg_dtype_of(ref)) return true;
    tg_error(TG_ERR_DTYPE, "input is %s, the module's tensors %s (tg_module_cast converts a module)",
             tg_dtype_name(tg_dtype_of(x)), tg_dtype_name(tg_dtype_of(ref)));
    return false;
}

/* ------------------------------------------------------------- BatchNorm1d, BatchNorm2d */

typedef struct {
    tg_tensor *weight, *bias;                                /* (C) or NULL without affine */
    tg_tensor *running_mean, *running_var, *num_batches_tracked; /* (C), (C), i64 0-d; NULL untracked */
    int64_t c;
    int dims; /* 1 or 2 */
    double eps, momentum;
    bool cumulative;
} batchnorm;

/* Counts this batch; the count after it (for the cumulative average), -1 on error. */
static double count_batch(batchnorm *b) {
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *nbt = b->num_batches_tracked;
    tg_status st = tg_add_(nbt, tg_nn_scalar(tg_dtype_of(nbt), 1, tg_device_of(nbt)));
    double n = st == TG_OK && b->cumulative ? tg_item(tg_cast(nbt, TG_F64)) : 1;
    tg_set_grad_enabled(prev);
    return st == TG_OK && !isnan(n) ? n : -1;
}

/* Set by tg_nn_bn_relu (and tg_nn_bn_add_relu) for the one forward it runs: the next
 * batchnorm_forward on this thread asks for relu(batch norm (+ residual)) and clears
 * them (flags, so that the call still goes through tg_module_forward's checks and error
 * messages). */
static _Thread_local bool g_fuse_relu;
static _Thread_local tg_tensor *g_fuse_residual;

/* BatchNorm1d: x (N, C) or (N, C, L); BatchNorm2d: x (N, C, H, W). Same shape out. */
static tg_tensor *batchnorm_forward(tg_module *self, tg_tensor *x) {
    bool relu = g_fuse_relu;
    tg_tensor *residual = g_fuse_residual;
    g_fuse_relu = false, g_fuse_residual = NULL;
    batchnorm *b = tg_module_data(self);
    char s[128];
    int nd = tg_ndim(x);
    if (b->dims == 1 ? nd != 2 && nd != 3 : nd != 4)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %d axes, expected %s", tg_nn_shape_str(s, sizeof s, x), nd,
                             b->dims == 1 ? "2 or 3 (N, C) or (N, C, L)" : "4 (N, C, H, W)");
    if (tg_size(x, 1) != b->c)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %lld channels, num_features is %lld",
                             tg_nn_shape_str(s, sizeof s, x), (long long)tg_size(x, 1), (long long)b->c);
    if (!same_dtype(x, b->weight ? b->weight : b->running_mean)) return NULL;
    bool training = tg_module_is_training(self), track = b->running_mean != NULL;
    double count = 1;
    if (training && track && (count = count_batch(b)) < 0) return NULL;
    /* Untracked statistics: batch statistics in eval too, as PyTorch's bn_training. */
    return tg_batch_norm(x, b->running_mean, b->running_var, b->weight, b->bias,
                         &(tg_batch_norm_opts){ .training = training || !track, .momentum = TG_SOME(b->momentum),
                                                .cumulative = b->cumulative && training && track,
                                                .num_batches_tracked = (int64_t)count, .eps = TG_SOME(b->eps),
                                                .relu = relu, .residual = residual });
}

static int batchnorm_describe(const tg_module *self, char *buf, size_t size) {
    const batchnorm *b = tg_module_data(self);
    char e[32], m[32];
    return snprintf(buf, size, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s", (long long)b->c,
                    py_float(e, sizeof e, b->eps), b->cumulative ? "None" : py_float(m, sizeof m, b->momentum),
                    b->weight ? "True" : "False", b->running_mean ? "True" : "False");
}

static const tg_module_type batchnorm1d_type = { "BatchNorm1d", sizeof(batchnorm), batchnorm_forward, NULL, NULL,
                                                 batchnorm_describe };
static const tg_module_type batchnorm2d_type = { "BatchNorm2d", sizeof(batchnorm), batchnorm_forward, NULL, NULL,
                                                 batchnorm_describe };

static tg_module *batchnorm_make(const tg_module_type *type, const char *api, int64_t c, const tg_batchnorm_opts *opts,
                                 tg_device *dev) {
    tg_batchnorm_opts o = opts ? *opts : (tg_batchnorm_opts){ 0 };
    double eps = opt_f64(o.eps, 1e-5), momentum = opt_f64(o.momentum, 0.1);
    if (c < 1 || !(eps >= 0) || !(momentum >= 0 && momentum <= 1))
        return tg_error_null(TG_ERR_INVALID, "%s: num_features must be >= 1, eps >= 0 and momentum in [0, 1], got %lld, "
                             "%g and %g", api, (long long)c, eps, momentum);
    tg_module *self = tg_module_new(type);
    if (!self) return NULL;
    batchnorm *b = tg_module_data(self);
    *b = (batchnorm){ .c = c, .dims = type == &batchnorm1d_type ? 1 : 2, .eps = eps, .momentum = momentum,
                      .cumulative = o.cumulative };
    if (opt_bool(o.affine, true)) {
        tg_module_param(self, "weight", &b->weight, tg_ones(TG_F32, TG_SHAPE(c), dev));
        tg_module_param(self, "bias", &b->bias, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    }
    if (opt_bool(o.track_running_stats, true)) {
        tg_module_buffer(self, "running_mean", &b->running_mean, tg_zeros(TG_F32, TG_SHAPE(c), dev));
        tg_module_buffer(self, "running_var", &b->running_var, tg_ones(TG_F32, TG_SHAPE(c), dev));
        tg_module_buffer(self, "num_batches_tracked", &b->num_batches_tracked, tg_nn_scalar(TG_I64, 0, dev));
    }
    return tg_module_done(self);
}

bool tg_nn_is_batchnorm(const tg_module *m) {
    return tg_module_is(m, &batchnorm1d_type) || tg_module_is(m, &batchnorm2d_type);
}

bool tg_nn_bn_eval_epilogue(const tg_module *bn, int64_t channels, tg_dtype dtype, tg_conv2d_opts *o) {
    if (!tg_module_is(bn, &batchnorm2d_type) || bn->hooks.n != 0 || tg_module_is_training(bn)) return false;
    const batchnorm *b = tg_module_data(bn);
    if (!b->running_mean || b->c != channels || tg_dtype_of(b->running_mean) != dtype) return false;
    o->bn.running_mean = b->running_mean, o->bn.running_var = b->running_var;
    o->bn.weight = b->weight, o->bn.bias = b->bias, o->bn.eps = (tg_opt_f64)TG_SOME(b->eps);
    return true;
}

tg_tensor *tg_nn_bn_relu(tg_module *bn, tg_module *relu, tg_tensor *x) {
    bool fuse = tg_nn_is_batchnorm(bn) && bn->hooks.n == 0 && (!relu || (tg_nn_is_relu(relu) && relu->hooks.n == 0));
    if (!fuse) {
        tg_tensor *y = tg_module_forward(bn, x);
        return relu ? tg_module_forward(relu, y) : tg_relu(y);
    }
    g_fuse_relu = true;
    tg_tensor *y = tg_module_forward(bn, x);
    g_fuse_relu = false; /* when the forward failed before reading it */
    return y;
}

tg_tensor *tg_nn_bn_add_relu(tg_module *bn, tg_tensor *x, tg_tensor *residual) {
    if (!tg_nn_is_batchnorm(bn) || bn->hooks.n != 0) return tg_relu(tg_add(tg_module_forward(bn, x), residual));
    g_fuse_relu = true, g_fuse_residual = residual;
    tg_tensor *y = tg_module_forward(bn, x);
    g_fuse_relu = false, g_fuse_residual = NULL;
    return y;
}

tg_module *tg_batchnorm1d_new(int64_t num_features, const tg_batchnorm_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_batchnorm1d_new");
    return batchnorm_make(&batchnorm1d_type, "tg_batchnorm1d_new", num_features, opts, dev);
}

tg_module *tg_batchnorm2d_new(int64_t num_features, const tg_batchnorm_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_batchnorm2d_new");
    return batchnorm_make(&batchnorm2d_type, "tg_batchnorm2d_new", num_features, opts, dev);
}

/* ------------------------------------------------------------- LayerNorm, GroupNorm */

typedef struct {
    tg_tensor *weight, *bias; /* LayerNorm: normalized_shape; GroupNorm: (C); either may be NULL */
    tg_shape shape;           /* LayerNorm */
    int64_t groups, c;        /* GroupNorm */
    double eps;
    bool affine;
} norm;

static void shape_text(char *buf, size_t size, tg_shape s) { /* "(5,)" "(4, 5)", as Python prints a tuple */
    int n = snprintf(buf, size, "(");
    for (int i = 0; i < s.ndim && n >= 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? ", " : "", (long long)s.dims[i]);
    if (n >= 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, s.ndim == 1 ? ",)" : ")");
}

/* x (*, normalized_shape) -> same. */
static tg_tensor *layer_norm_forward(tg_module *self, tg_tensor *x) {
    norm *l = tg_module_data(self);
    int nd = tg_ndim(x), k = l->shape.ndim;
    bool fits = nd >= k;
    for (int i = 0; fits && i < k; i++) fits = tg_size(x, nd - k + i) == l->shape.dims[i];
    if (!fits) {
        char s[128], t[128];
        shape_text(t, sizeof t, l->shape);
        return tg_error_null(TG_ERR_SHAPE, "input %s does not end in normalized_shape %s", tg_nn_shape_str(s, sizeof s, x), t);
    }
    if (!same_dtype(x, l->weight ? l->weight : l->bias)) return NULL;
    return tg_layer_norm(x, l->shape, l->weight, l->bias, l->eps);
}

/* x (N, C, *) -> same. */
static tg_tensor *group_norm_forward(tg_module *self, tg_tensor *x) {
    norm *g = tg_module_data(self);
    char s[128];
    if (tg_ndim(x) < 2 || tg_size(x, 1) != g->c)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %lld channels, num_channels is %lld", tg_nn_shape_str(s, sizeof s, x),
                             tg_ndim(x) < 2 ? 0LL : (long long)tg_size(x, 1), (long long)g->c);
    if (!same_dtype(x, g->weight)) return NULL;
    return tg_group_norm(x, g->groups, g->weight, g->bias, g->eps);
}

static int layer_norm_describe(const tg_module *self, char *buf, size_t size) {
    const norm *l = tg_module_data(self);
    char s[128], e[32];
    shape_text(s, sizeof s, l->shape);
    return snprintf(buf, size, "%s, eps=%s, elementwise_affine=%s", s, py_float(e, sizeof e, l->eps),
                    l->affine ? "True" : "False");
}
static int group_norm_describe(const tg_module *self, char *buf, size_t size) {
    const norm *g = tg_module_data(self);
    char e[32];
    return snprintf(buf, size, "%lld, %lld, eps=%s, affine=%s", (long long)g->groups, (long long)g->c,
                    py_float(e, sizeof e, g->eps), g->affine ? "True" : "False");
}

static const tg_module_type layer_norm_type = { "LayerNorm", sizeof(norm), layer_norm_forward, NULL, NULL,
                                                layer_norm_describe };
static const tg_module_type group_norm_type = { "GroupNorm", sizeof(norm), group_norm_forward, NULL, NULL,
                                                group_norm_describe };

tg_module *tg_layer_norm_new(tg_shape shape, const tg_norm_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_layer_norm_new");
    tg_norm_opts o = opts ? *opts : (tg_norm_opts){ 0 };
    bool ok = shape.ndim >= 1 && shape.ndim <= TG_MAX_DIMS;
    for (int i = 0; ok && i < shape.ndim; i++) ok = shape.dims[i] >= 1;
    if (!ok) return tg_error_null(TG_ERR_INVALID, "tg_layer_norm_new: normalized_shape needs 1 to %d sizes, each >= 1", TG_MAX_DIMS);
    tg_module *self = tg_module_new(&layer_norm_type);
    if (!self) return NULL;
    norm *l = tg_module_data(self);
    *l = (norm){ .shape = shape, .eps = opt_f64(o.eps, 1e-5), .affine = opt_bool(o.elementwise_affine, true) };
    if (l->affine) {
        tg_module_param(self, "weight", &l->weight, tg_ones(TG_F32, shape, dev));
        if (opt_bool(o.bias, true)) tg_module_param(self, "bias", &l->bias, tg_zeros(TG_F32, shape, dev));
    }
    return tg_module_done(self);
}

tg_module *tg_group_norm_new(int64_t groups, int64_t c, const tg_norm_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_group_norm_new");
    tg_norm_opts o = opts ? *opts : (tg_norm_opts){ 0 };
    if (groups < 1 || c < 1 || c % groups)
        return tg_error_null(TG_ERR_INVALID, "tg_group_norm_new: num_channels must be divisible by num_groups "
                             "(num_groups %lld, num_channels %lld)", (long long)groups, (long long)c);
    tg_module *self = tg_module_new(&group_norm_type);
    if (!self) return NULL;
    norm *g = tg_module_data(self);
    *g = (norm){ .groups = groups, .c = c, .eps = opt_f64(o.eps, 1e-5), .affine = opt_bool(o.affine, true) };
    if (g->affine) {
        tg_module_param(self, "weight", &g->weight, tg_ones(TG_F32, TG_SHAPE(c), dev));
        tg_module_param(self, "bias", &g->bias, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    }
    return tg_module_done(self);
}

/* ------------------------------------------------------------- LocalResponseNorm */

typedef struct {
    int64_t size;
    double alpha, beta, k;
} lrn;

static tg_tensor *lrn_forward(tg_module *self, tg_tensor *x) { /* x (N, C, *) -> same */
    lrn *l = tg_module_data(self);
    return tg_local_response_norm(x, l->size, l->alpha, l->beta, l->k);
}

static int lrn_describe(const tg_module *self, char *buf, size_t size) {
    const lrn *l = tg_module_data(self);
    char a[32], b[32], k[32];
    return snprintf(buf, size, "%lld, alpha=%s, beta=%s, k=%s", (long long)l->size, py_float(a, sizeof a, l->alpha),
                    py_float(b, sizeof b, l->beta), py_float(k, sizeof k, l->k));
}

static const tg_module_type lrn_type = { "LocalResponseNorm", sizeof(lrn), lrn_forward, NULL, NULL, lrn_describe };

tg_module *tg_local_response_norm_new(int64_t size, const tg_local_response_norm_opts *opts) {
    tg_local_response_norm_opts o = opts ? *opts : (tg_local_response_norm_opts){ 0 };
    if (size < 1) return tg_error_null(TG_ERR_INVALID, "tg_local_response_norm_new: size must be >= 1, got %lld", (long long)size);
    tg_module *self = tg_module_new(&lrn_type);
    if (self)
        *(lrn *)tg_module_data(self) = (lrn){ size, opt_f64(o.alpha, 1e-4), opt_f64(o.beta, 0.75), opt_f64(o.k, 1) };
    return self;
}
