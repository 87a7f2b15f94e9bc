/* Layers as compositions of public ops: Linear, Bilinear, Embedding, shape and
 * activation modules, Sequential, DropConnect. Each is a type, a data struct, a
 * forward and a constructor that registers its tensors: the pattern for any new
 * layer (Conv2d: weight and bias params; BatchNorm2d: two params and three buffers). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/module-impl.h"

/* Messages inside a forward carry no "name: " head: tg_module_forward puts
 * "tg_module_forward: Linear 'fc1': " before them. */

static bool check_float_input(tg_tensor *x, tg_tensor *w) {
    if (tg_dtype_of(x) == tg_dtype_of(w)) return true;
    tg_error(TG_ERR_DTYPE, "input is %s, the weight %s (tg_module_cast converts a module)", tg_dtype_name(tg_dtype_of(x)),
             tg_dtype_name(tg_dtype_of(w)));
    return false;
}

/* U(-bound, bound) for a fresh tensor; bound 0 gives zeros. */
static tg_tensor *uniform(tg_shape s, double bound, tg_device *dev) {
    tg_tensor *t = tg_empty(TG_F32, s, dev);
    return tg_init_uniform_(t, -bound, bound) == TG_OK ? t : NULL;
}

/* ------------------------------------------------------------- Linear */

typedef struct {
    tg_tensor *weight, *bias; /* weight (out, in), bias (out) or NULL */
    int64_t in, out;
} linear;

static tg_tensor *linear_forward(tg_module *self, tg_tensor *x) { /* x (*, in) -> (*, out) */
    linear *l = tg_module_data(self);
    char b[128];
    if (tg_ndim(x) < 1 || tg_size(x, -1) != l->in)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %lld features, in_features is %lld",
                             tg_nn_shape_str(b, sizeof b, x), tg_ndim(x) ? (long long)tg_size(x, -1) : 0LL,
                             (long long)l->in);
    if (!check_float_input(x, l->weight)) return NULL;
    tg_tensor *y = tg_matmul(x, tg_transpose(l->weight, 0, 1));
    return l->bias ? tg_add(y, l->bias) : y;
}

static int linear_describe(const tg_module *self, char *buf, size_t size) {
    const linear *l = tg_module_data(self);
    return snprintf(buf, size, "in_features=%lld, out_features=%lld, bias=%s", (long long)l->in, (long long)l->out,
                    l->bias ? "true" : "false");
}

static const tg_module_type linear_type = { "Linear", sizeof(linear), linear_forward, NULL, NULL, linear_describe };

tg_module *tg_linear_new(int64_t in_features, int64_t out_features, const tg_linear_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_linear_new");
    if (in_features < 0 || out_features < 0)
        return tg_error_null(TG_ERR_INVALID, "tg_linear_new: sizes must be >= 0, got in %lld, out %lld",
                             (long long)in_features, (long long)out_features);
    tg_module *self = tg_module_new(&linear_type);
    if (!self) return NULL;
    linear *l = tg_module_data(self);
    l->in = in_features, l->out = out_features;
    tg_tensor *w = tg_empty(TG_F32, TG_SHAPE(out_features, in_features), dev);
    if (w && tg_init_kaiming_uniform_(w, &(tg_kaiming_opts){ .a = sqrt(5.0) }) != TG_OK) w = NULL;
    tg_module_param(self, "weight", &l->weight, w);
    if (!(opts && opts->no_bias))
        tg_module_param(self, "bias", &l->bias, uniform(TG_SHAPE(out_features), in_features ? 1 / sqrt((double)in_features) : 0, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- Bilinear */

typedef struct {
    tg_tensor *weight, *bias; /* weight (out, in1, in2), bias (out) */
    int64_t in1, in2, out;
} bilinear;

/* x1 (*, in1), x2 (*, in2) -> (*, out): (x1 @ W') (B, out*in2) times x2 summed over in2,
 * where W' (in1, out*in2) is the weight with its first two axes swapped. */
static tg_tensor *bilinear_forward(tg_module *self, tg_tensor *x1, tg_tensor *x2) {
    bilinear *l = tg_module_data(self);
    char a[128], b[128];
    if (tg_ndim(x1) < 1 || tg_ndim(x1) != tg_ndim(x2) || tg_size(x1, -1) != l->in1 || tg_size(x2, -1) != l->in2)
        return tg_error_null(TG_ERR_SHAPE, "inputs %s and %s do not fit (*, %lld) and (*, %lld)",
                             tg_nn_shape_str(a, sizeof a, x1), tg_nn_shape_str(b, sizeof b, x2), (long long)l->in1,
                             (long long)l->in2);
    if (!check_float_input(x1, l->weight) || !check_float_input(x2, l->weight)) return NULL;
    tg_shape lead = tg_shape_of(x1);
    lead.ndim--;
    tg_tensor *f1 = tg_reshape(x1, TG_SHAPE(-1, l->in1)), *f2 = tg_reshape(x2, TG_SHAPE(-1, l->in2));
    tg_tensor *w = tg_reshape(tg_permute(l->weight, TG_AXES(1, 0, 2)), TG_SHAPE(l->in1, l->out * l->in2));
    tg_tensor *t = tg_reshape(tg_matmul(f1, w), TG_SHAPE(-1, l->out, l->in2));
    tg_tensor *y = tg_sum(tg_mul(t, tg_unsqueeze(f2, 1)), TG_AXES(2), false);
    if (l->bias) y = tg_add(y, l->bias);
    lead.dims[lead.ndim++] = l->out;
    return tg_reshape(y, lead);
}

static int bilinear_describe(const tg_module *self, char *buf, size_t size) {
    const bilinear *l = tg_module_data(self);
    return snprintf(buf, size, "in1_features=%lld, in2_features=%lld, out_features=%lld, bias=%s", (long long)l->in1,
                    (long long)l->in2, (long long)l->out, l->bias ? "true" : "false");
}

static const tg_module_type bilinear_type = { "Bilinear", sizeof(bilinear), NULL, bilinear_forward, NULL,
                                              bilinear_describe };

tg_module *tg_bilinear_new(int64_t in1, int64_t in2, int64_t out, const tg_linear_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_bilinear_new");
    if (in1 < 0 || in2 < 0 || out < 0)
        return tg_error_null(TG_ERR_INVALID, "tg_bilinear_new: sizes must be >= 0");
    tg_module *self = tg_module_new(&bilinear_type);
    if (!self) return NULL;
    bilinear *l = tg_module_data(self);
    l->in1 = in1, l->in2 = in2, l->out = out;
    double bound = in1 ? 1 / sqrt((double)in1) : 0;
    tg_module_param(self, "weight", &l->weight, uniform(TG_SHAPE(out, in1, in2), bound, dev));
    if (!(opts && opts->no_bias)) tg_module_param(self, "bias", &l->bias, uniform(TG_SHAPE(out), bound, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- Embedding */

typedef struct {
    tg_tensor *weight; /* (num, dim) */
    int64_t padding_idx; /* -1: none */
} embedding;

/* indices (any shape) -> (..., dim). The padding row is read through a detached weight,
 * so its gradient is zero while its value is what the weight holds. */
static tg_tensor *embedding_forward(tg_module *self, tg_tensor *idx) {
    embedding *e = tg_module_data(self);
    if (tg_dtype_of(idx) != TG_I32 && tg_dtype_of(idx) != TG_I64)
        return tg_error_null(TG_ERR_DTYPE, "indices must be i32 or i64, got %s", tg_dtype_name(tg_dtype_of(idx)));
    tg_shape s = tg_shape_of(idx);
    if (s.ndim >= TG_MAX_DIMS) return tg_error_null(TG_ERR_SHAPE, "indices have too many axes");
    tg_tensor *flat = tg_reshape(idx, TG_SHAPE(-1));
    tg_tensor *rows = tg_index_select(e->weight, 0, flat);
    if (e->padding_idx >= 0 && rows) {
        tg_tensor *keep = tg_unsqueeze(tg_ne(flat, tg_nn_scalar(tg_dtype_of(flat), (double)e->padding_idx, tg_device_of(flat))), 1);
        rows = tg_where(keep, rows, tg_index_select(tg_detach(e->weight), 0, flat));
    }
    s.dims[s.ndim++] = tg_size(e->weight, 1);
    return tg_reshape(rows, s);
}

static int embedding_describe(const tg_module *self, char *buf, size_t size) {
    const embedding *e = tg_module_data(self);
    int n = snprintf(buf, size, "%lld, %lld", (long long)tg_size(e->weight, 0), (long long)tg_size(e->weight, 1));
    if (e->padding_idx >= 0 && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", padding_idx=%lld", (long long)e->padding_idx);
    return n;
}

static const tg_module_type embedding_type = { "Embedding", sizeof(embedding), embedding_forward, NULL, NULL,
                                               embedding_describe };

static tg_module *embedding_make(tg_tensor *w, const tg_embedding_opts *opts, bool pretrained) {
    int64_t num = tg_size(w, 0), pad = -1;
    if (opts && opts->padding_idx.set) {
        pad = opts->padding_idx.value < 0 ? opts->padding_idx.value + num : opts->padding_idx.value;
        if (pad < 0 || pad >= num)
            return tg_error_null(TG_ERR_INVALID, "padding_idx %lld is out of range for %lld embeddings",
                                 (long long)opts->padding_idx.value, (long long)num);
    }
    if (pad >= 0 && !pretrained) {
        bool prev = tg_set_grad_enabled(false);
        tg_status st = tg_fill_(tg_slice(w, 0, pad, pad + 1, 1), 0);
        tg_set_grad_enabled(prev);
        if (st != TG_OK) return NULL;
    }
    tg_module *self = tg_module_new(&embedding_type);
    if (!self) return NULL;
    embedding *e = tg_module_data(self);
    e->padding_idx = pad;
    tg_module_param(self, "weight", &e->weight, w);
    if (pretrained && !(opts && opts->trainable) && e->weight) tg_set_requires_grad(e->weight, false);
    return tg_module_done(self);
}

tg_module *tg_embedding_new(int64_t num, int64_t dim, const tg_embedding_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_embedding_new");
    if (num < 0 || dim < 0) return tg_error_null(TG_ERR_INVALID, "tg_embedding_new: sizes must be >= 0");
    tg_tensor *w = tg_empty(TG_F32, TG_SHAPE(num, dim), dev);
    if (!w || tg_init_normal_(w, 0, 1) != TG_OK) return NULL;
    return embedding_make(w, opts, false);
}

tg_module *tg_embedding_from_pretrained(tg_tensor *weights, const tg_embedding_opts *opts) {
    TG_API_ENTER("tg_embedding_from_pretrained");
    if (!weights) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "tg_embedding_from_pretrained: weights is NULL");
    if (tg_ndim(weights) != 2 || (tg_dtype_of(weights) != TG_F32 && tg_dtype_of(weights) != TG_F64))
        return tg_error_null(TG_ERR_SHAPE, "tg_embedding_from_pretrained: weights must be a 2-D float tensor");
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *w = tg_clone(weights);
    tg_set_grad_enabled(prev);
    return w ? embedding_make(w, opts, true) : NULL;
}

/* ------------------------------------------------------------- shape and activation modules */

typedef struct {
    int a, b;     /* Flatten: start, end; Unflatten: dim; Softmax: dim */
    double slope; /* LeakyReLU */
    tg_shape sizes; /* Unflatten */
} simple;

static int norm_axis(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

static tg_tensor *flatten_forward(tg_module *self, tg_tensor *x) {
    simple *s = tg_module_data(self);
    int nd = tg_ndim(x), a = norm_axis(s->a, nd ? nd : 1), b = norm_axis(s->b, nd ? nd : 1);
    if (nd == 0) return tg_reshape(x, TG_SHAPE(1));
    if (a < 0 || b >= nd || a > b)
        return tg_error_null(TG_ERR_INVALID, "start_dim %d and end_dim %d do not fit %d axes", s->a, s->b, nd);
    tg_shape in = tg_shape_of(x), out = { 0 };
    for (int i = 0; i < nd; i++) {
        if (i <= a || i > b) out.dims[out.ndim++] = in.dims[i];
        else out.dims[out.ndim - 1] *= in.dims[i];
    }
    return tg_reshape(x, out);
}

static tg_tensor *unflatten_forward(tg_module *self, tg_tensor *x) {
    simple *s = tg_module_data(self);
    int nd = tg_ndim(x), d = norm_axis(s->a, nd);
    if (d < 0 || d >= nd || nd - 1 + s->sizes.ndim > TG_MAX_DIMS)
        return tg_error_null(TG_ERR_INVALID, "dim %d does not fit %d axes", s->a, nd);
    tg_shape in = tg_shape_of(x), out = { 0 };
    for (int i = 0; i < nd; i++) {
        if (i != d) out.dims[out.ndim++] = in.dims[i];
        else
            for (int k = 0; k < s->sizes.ndim; k++) out.dims[out.ndim++] = s->sizes.dims[k];
    }
    return tg_reshape(x, out);
}

static tg_tensor *identity_forward(tg_module *self, tg_tensor *x) { return x; }
static tg_tensor *relu_forward(tg_module *self, tg_tensor *x) { return tg_relu(x); }
static tg_tensor *tanh_forward(tg_module *self, tg_tensor *x) { return tg_tanh(x); }
static tg_tensor *sigmoid_forward(tg_module *self, tg_tensor *x) { return tg_sigmoid(x); }
static tg_tensor *leaky_forward(tg_module *self, tg_tensor *x) {
    return tg_leaky_relu(x, ((simple *)tg_module_data(self))->slope);
}
static tg_tensor *softmax_forward(tg_module *self, tg_tensor *x) {
    return tg_softmax(x, ((simple *)tg_module_data(self))->a);
}
static tg_tensor *log_softmax_forward(tg_module *self, tg_tensor *x) {
    return tg_log_softmax(x, ((simple *)tg_module_data(self))->a);
}

static int describe_dim(const tg_module *self, char *buf, size_t size) {
    return snprintf(buf, size, "dim=%d", ((const simple *)tg_module_data(self))->a);
}
static int describe_flatten(const tg_module *self, char *buf, size_t size) {
    const simple *s = tg_module_data(self);
    return snprintf(buf, size, "start_dim=%d, end_dim=%d", s->a, s->b);
}
static int describe_slope(const tg_module *self, char *buf, size_t size) {
    return snprintf(buf, size, "negative_slope=%g", ((const simple *)tg_module_data(self))->slope);
}

static const tg_module_type identity_type = { "Identity", sizeof(simple), identity_forward, NULL, NULL, NULL };
static const tg_module_type flatten_type = { "Flatten", sizeof(simple), flatten_forward, NULL, NULL, describe_flatten };
static const tg_module_type unflatten_type = { "Unflatten", sizeof(simple), unflatten_forward, NULL, NULL, describe_dim };
static const tg_module_type relu_type = { "ReLU", sizeof(simple), relu_forward, NULL, NULL, NULL };
bool tg_nn_is_relu(const tg_module *m) { return tg_module_is(m, &relu_type); }
static const tg_module_type leaky_type = { "LeakyReLU", sizeof(simple), leaky_forward, NULL, NULL, describe_slope };
static const tg_module_type tanh_type = { "Tanh", sizeof(simple), tanh_forward, NULL, NULL, NULL };
static const tg_module_type sigmoid_type = { "Sigmoid", sizeof(simple), sigmoid_forward, NULL, NULL, NULL };
static const tg_module_type softmax_type = { "Softmax", sizeof(simple), softmax_forward, NULL, NULL, describe_dim };
static const tg_module_type log_softmax_type = { "LogSoftmax", sizeof(simple), log_softmax_forward, NULL, NULL,
                                                 describe_dim };

static tg_module *simple_new(const tg_module_type *type, simple v) {
    tg_module *m = tg_module_new(type);
    if (m) *(simple *)tg_module_data(m) = v;
    return m;
}

tg_module *tg_identity_new(void) { return simple_new(&identity_type, (simple){ 0 }); }
tg_module *tg_flatten_new(int start_dim, int end_dim) {
    return simple_new(&flatten_type, (simple){ .a = start_dim, .b = end_dim });
}
tg_module *tg_unflatten_new(int dim, tg_shape sizes) {
    if (sizes.ndim < 1 || sizes.ndim > TG_MAX_DIMS)
        return tg_error_null(TG_ERR_INVALID, "tg_unflatten_new: sizes must have 1 to %d axes", TG_MAX_DIMS);
    return simple_new(&unflatten_type, (simple){ .a = dim, .sizes = sizes });
}
tg_module *tg_relu_new(void) { return simple_new(&relu_type, (simple){ 0 }); }
tg_module *tg_leaky_relu_new(double slope) { return simple_new(&leaky_type, (simple){ .slope = slope }); }
tg_module *tg_tanh_new(void) { return simple_new(&tanh_type, (simple){ 0 }); }
tg_module *tg_sigmoid_new(void) { return simple_new(&sigmoid_type, (simple){ 0 }); }
tg_module *tg_softmax_new(int dim) { return simple_new(&softmax_type, (simple){ .a = dim }); }
tg_module *tg_log_softmax_new(int dim) { return simple_new(&log_softmax_type, (simple){ .a = dim }); }

/* ------------------------------------------------------------- Sequential */

/* A BatchNorm followed by a ReLU runs as one fused op (tg_nn_bn_relu); a Conv2d followed
 * by an eval-mode BatchNorm2d and/or a ReLU, none of them hooked, as the conv with its
 * epilogue (tg_nn_conv_bn). */
static tg_tensor *sequential_forward(tg_module *self, tg_tensor *x) {
    for (int i = 0; i < self->children.n && x; i++) {
        tg_module *m = self->children.v[i].m, *next = i + 1 < self->children.n ? self->children.v[i + 1].m : NULL;
        tg_module *after = i + 2 < self->children.n ? self->children.v[i + 2].m : NULL;
        bool next_relu = next && tg_nn_is_relu(next) && next->hooks.n == 0;
        if (next && !next_relu && tg_nn_conv_bn_fuses(m, next)) {
            bool relu = after && tg_nn_is_relu(after) && after->hooks.n == 0;
            x = tg_nn_conv_bn(m, next, x, NULL, relu);
            i += relu ? 2 : 1;
            continue;
        }
        if (next_relu && tg_nn_conv_bn_fuses(m, NULL)) {
            x = tg_nn_conv_bn(m, NULL, x, NULL, true);
            i++;
            continue;
        }
        if (next && tg_nn_is_batchnorm(m) && tg_nn_is_relu(next)) {
            x = tg_nn_bn_relu(m, next, x);
            i++;
            continue;
        }
        x = tg_module_forward(m, x);
    }
    return x;
}

static const tg_module_type sequential_type = { "Sequential", 0, sequential_forward, NULL, NULL, NULL };

tg_status tg_sequential_append(tg_module *seq, const char *name, tg_module *child) {
    if (!tg_module_is(seq, &sequential_type)) {
        if (child && !child->parent) tg_module_free(child);
        return tg_error(TG_ERR_INVALID, "tg_sequential_append: the module is not a Sequential");
    }
    char idx[32];
    snprintf(idx, sizeof idx, "%d", seq->children.n);
    tg_status st = tg_module_add(seq, name ? name : idx, NULL, child);
    free(seq->failed_msg); /* an append's failure is reported by its status, not at tg_module_done */
    seq->failed_msg = NULL;
    seq->failed = TG_OK;
    return st;
}

/* No TG_API_ENTER: a child's constructor failed before this call, and its message
 * (naming that constructor) is the one to keep. */
tg_module *tg_sequential_new(int n, tg_module *const *children) {
    tg_module *self = tg_module_new(&sequential_type);
    for (int i = 0; i < n; i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "%d", i);
        if (self) tg_module_add(self, idx, NULL, children[i]);
        else if (children[i] && !children[i]->parent) tg_module_free(children[i]);
    }
    return tg_module_done(self);
}

/* ------------------------------------------------------------- DropConnect */

typedef struct {
    tg_module *inner;
    double p;
} drop_connect;

/* In training, the inner module runs with its weight slot pointing at a masked copy of
 * the weight, so the mask is part of the graph and the gradient reaches the weight. */
static tg_tensor *drop_connect_forward(tg_module *self, tg_tensor *x) {
    drop_connect *d = tg_module_data(self);
    if (!self->training || d->p == 0) return tg_module_forward(d->inner, x);
    tg_nn_entry *e = tg_nn_find_entry(d->inner, "weight", false);
    tg_tensor *w = *e->slot; /* the registered weight, or one put in by tg_module_functional_call */
    tg_tensor *mask = tg_bernoulli(tg_dtype_of(w), tg_shape_of(w), 1 - d->p, tg_device_of(w));
    tg_tensor *masked = tg_mul_scalar(tg_mul(w, mask), 1 / (1 - d->p));
    if (!masked) return NULL;
    *e->slot = masked;
    tg_tensor *y = tg_module_forward(d->inner, x);
    *e->slot = w;
    return y;
}

static int drop_connect_describe(const tg_module *self, char *buf, size_t size) {
    return snprintf(buf, size, "p=%g", ((const drop_connect *)tg_module_data(self))->p);
}

static const tg_module_type drop_connect_type = { "DropConnect", sizeof(drop_connect), drop_connect_forward, NULL,
                                                  NULL, drop_connect_describe };

tg_module *tg_drop_connect_new(tg_module *inner, double p) {
    const char *api = "tg_drop_connect_new";
    if (!inner) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "%s: inner is NULL", api);
    tg_nn_entry *e = tg_nn_find_entry(inner, "weight", false);
    const char *why = !(p >= 0 && p < 1) ? "p must be in [0, 1)"
                    : !e                 ? "the wrapped module has no parameter 'weight'"
                    : !e->slot           ? "the wrapped module's weight was registered without a slot"
                                         : NULL;
    if (why) {
        if (!inner->parent) tg_module_free(inner);
        return tg_error_null(TG_ERR_INVALID, "%s: %s (p = %g)", api, why, p);
    }
    tg_module *self = tg_module_new(&drop_connect_type);
    if (!self) {
        if (!inner->parent) tg_module_free(inner);
        return NULL;
    }
    drop_connect *d = tg_module_data(self);
    d->p = p;
    tg_module_add(self, "module", &d->inner, inner);
    return tg_module_done(self);
}
