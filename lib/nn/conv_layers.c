/* Spatial layers over the functional ops: Conv1d, Conv2d and ConvTranspose2d (PyTorch's
 * layouts, init and padding modes), the pooling modules, Dropout, Dropout2d and Upsample.
 * Compositions of public ops only: the non-zero padding modes are slices, flips and cats. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/module-impl.h"

/* Messages inside a forward carry no "name: " head: tg_module_forward puts
 * "tg_module_forward: Conv2d 'features.0': " before them. */

static bool same_dtype(tg_tensor *x, tg_tensor *w) {
    if (!w || tg_dtype_of(x) == tg_dtype_of(w)) return true;
    tg_error(TG_ERR_DTYPE, "input is %s, the weight %s (tg_module_cast converts a module)", tg_dtype_name(tg_dtype_of(x)),
             tg_dtype_name(tg_dtype_of(w)));
    return false;
}

/* A (H, W) pair from a scalar and an override pair, 0 meaning def (PyTorch's tuples). */
static void pair(int64_t out[2], int64_t scalar, const int64_t hw[2], int64_t def) {
    if (hw[0] || hw[1])
        for (int i = 0; i < 2; i++) out[i] = hw[i] ? hw[i] : def;
    else out[0] = out[1] = scalar ? scalar : def;
}

/* Appends "(a, b)", "(a,)" for one axis, or "a" when scalar to buf at *n. */
static void put_tuple(char *buf, size_t size, int *n, const char *key, const int64_t *v, int dims, bool scalar) {
    if (*n < 0 || (size_t)*n >= size) return;
    if (scalar && (dims == 1 || v[0] == v[1])) *n += snprintf(buf + *n, size - (size_t)*n, "%s=%lld", key, (long long)v[0]);
    else if (dims == 1) *n += snprintf(buf + *n, size - (size_t)*n, "%s=(%lld,)", key, (long long)v[0]);
    else *n += snprintf(buf + *n, size - (size_t)*n, "%s=(%lld, %lld)", key, (long long)v[0], (long long)v[1]);
}

static void put_str(char *buf, size_t size, int *n, const char *s) {
    if (*n >= 0 && (size_t)*n < size) *n += snprintf(buf + *n, size - (size_t)*n, "%s", s);
}

/* Python's repr of a float: "0.5", "2.0". */
static const char *py_float(char *buf, size_t size, double v) {
    snprintf(buf, size, "%g", v);
    if (!strpbrk(buf, ".eni")) strncat(buf, ".0", size - strlen(buf) - 1);
    return buf;
}

/* ------------------------------------------------------------- padding modes */

static const char *const k_mode_names[] = { "zeros", "reflect", "replicate", "circular" };

/* x padded on axis by lo before and hi after with its own values (mode not zeros). */
static tg_tensor *pad_axis(tg_tensor *x, int axis, int64_t lo, int64_t hi, tg_padding_mode mode) {
    int64_t n = tg_size(x, axis);
    int64_t limit = mode == TG_PADDING_REFLECT ? n - 1 : mode == TG_PADDING_CIRCULAR ? n : INT64_MAX;
    if (lo > limit || hi > limit || n == 0)
        return tg_error_null(TG_ERR_SHAPE, "padding_mode '%s' needs padding %s the input's size: padding (%lld, %lld) "
                             "on an axis of %lld", k_mode_names[mode], mode == TG_PADDING_REFLECT ? "<" : "<=",
                             (long long)lo, (long long)hi, (long long)n);
    tg_tensor *parts[3];
    int k = 0;
    tg_shape s = tg_shape_of(x);
    if (lo > 0) {
        if (mode == TG_PADDING_REFLECT) parts[k++] = tg_flip(tg_slice(x, axis, 1, lo + 1, 1), TG_AXES(axis));
        else if (mode == TG_PADDING_CIRCULAR) parts[k++] = tg_slice(x, axis, n - lo, n, 1);
        else s.dims[axis] = lo, parts[k++] = tg_expand(tg_slice(x, axis, 0, 1, 1), s);
    }
    parts[k++] = x;
    if (hi > 0) {
        if (mode == TG_PADDING_REFLECT) parts[k++] = tg_flip(tg_slice(x, axis, n - 1 - hi, n - 1, 1), TG_AXES(axis));
        else if (mode == TG_PADDING_CIRCULAR) parts[k++] = tg_slice(x, axis, 0, hi, 1);
        else s.dims[axis] = hi, parts[k++] = tg_expand(tg_slice(x, axis, n - 1, n, 1), s);
    }
    return k == 1 ? x : tg_cat(k, parts, axis);
}

/* ------------------------------------------------------------- Conv1d, Conv2d, ConvTranspose2d */

typedef struct {
    tg_tensor *weight, *bias; /* (out, in/g, kH, kW) or (in, out/g, kH, kW) transposed; (out) or NULL */
    int64_t in, out, groups;
    int dims;                 /* 1 or 2 */
    bool transposed;
    tg_conv_padding padding_kind;
    tg_padding_mode padding_mode;
    int64_t k[2], stride[2], padding[2], dilation[2], output_padding[2]; /* (H, W); 1-D uses [1] */
} conv;

/* The non-zero padding modes pad first, as PyTorch's _conv_forward does: "same" splits
 * d (k - 1) as floor/ceil, explicit amounts pad both sides. */
static tg_tensor *pad_input(const conv *c, tg_tensor *x) {
    for (int a = 2 - c->dims; a < 2 && x; a++) {
        int64_t lo = c->padding[a], hi = c->padding[a];
        if (c->padding_kind == TG_CONV_PAD_SAME) {
            int64_t total = c->dilation[a] * (c->k[a] - 1);
            lo = total / 2, hi = total - lo;
        } else if (c->padding_kind == TG_CONV_PAD_VALID) lo = hi = 0;
        if (lo || hi) x = pad_axis(x, tg_ndim(x) - 2 + a, lo, hi, c->padding_mode);
    }
    return x;
}

/* Set by tg_nn_conv_bn for the one forward it runs: the next conv_forward on this thread
 * takes this epilogue and clears it (a flag, so that the call still goes through
 * tg_module_forward's checks and messages). */
static _Thread_local struct {
    bool set;
    tg_conv2d_opts o; /* bn, residual, relu */
} g_epilogue;

/* x (N, in, H, W) or (in, H, W) -> (N, out, H', W'); 1-D: (N, in, L) or (in, L). */
static tg_tensor *conv_forward(tg_module *self, tg_tensor *x) {
    tg_conv2d_opts epi = g_epilogue.set ? g_epilogue.o : (tg_conv2d_opts){ 0 };
    g_epilogue.set = false;
    conv *c = tg_module_data(self);
    char b[128];
    int nd = tg_ndim(x), batched = c->dims + 2;
    if (nd != batched && nd != batched - 1)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %d axes, expected %d or %d (%s)", tg_nn_shape_str(b, sizeof b, x),
                             nd, batched - 1, batched, c->dims == 2 ? "N, C, H, W" : "N, C, L");
    int64_t ch = tg_size(x, nd - c->dims - 1);
    if (ch != c->in)
        return tg_error_null(TG_ERR_SHAPE, "input %s has %lld channels, in_channels is %lld", tg_nn_shape_str(b, sizeof b, x),
                             (long long)ch, (long long)c->in);
    if (!same_dtype(x, c->weight)) return NULL;
    if (c->transposed)
        return tg_conv_transpose2d(x, c->weight, c->bias, &(tg_conv_transpose2d_opts){
            .groups = c->groups, .stride_hw = { c->stride[0], c->stride[1] }, .padding_hw = { c->padding[0], c->padding[1] },
            .dilation_hw = { c->dilation[0], c->dilation[1] },
            .output_padding_hw = { c->output_padding[0], c->output_padding[1] } });
    bool zeros = c->padding_mode == TG_PADDING_ZEROS;
    tg_conv_padding kind = zeros ? c->padding_kind : TG_CONV_PAD_EXPLICIT;
    if (!zeros) x = pad_input(c, x);
    int64_t p0 = zeros && kind == TG_CONV_PAD_EXPLICIT ? c->padding[0] : 0;
    int64_t p1 = zeros && kind == TG_CONV_PAD_EXPLICIT ? c->padding[1] : 0;
    if (c->dims == 1)
        return tg_conv1d(x, c->weight, c->bias, &(tg_conv1d_opts){ .stride = c->stride[1], .padding = p1,
                         .dilation = c->dilation[1], .groups = c->groups, .padding_kind = kind });
    /* 1 rather than 0 in the pairs: a (0, 0) pair would fall back to the (unset) scalar. */
    return tg_conv2d(x, c->weight, c->bias, &(tg_conv2d_opts){
        .groups = c->groups, .padding_kind = kind, .stride_hw = { c->stride[0], c->stride[1] },
        .padding = p0 == p1 ? p0 : 0, .padding_hw = { p0 == p1 ? 0 : p0, p0 == p1 ? 0 : p1 },
        .dilation_hw = { c->dilation[0], c->dilation[1] }, .bn = epi.bn, .residual = epi.residual,
        .relu = epi.relu });
}

/* PyTorch's _ConvNd.extra_repr. */
static int conv_describe(const tg_module *self, char *buf, size_t size) {
    const conv *c = tg_module_data(self);
    int d = c->dims, o = 2 - d, n = snprintf(buf, size, "%lld, %lld, ", (long long)c->in, (long long)c->out);
    put_tuple(buf, size, &n, "kernel_size", c->k + o, d, false);
    put_tuple(buf, size, &n, ", stride", c->stride + o, d, false);
    if (c->padding_kind == TG_CONV_PAD_SAME) put_str(buf, size, &n, ", padding=same");
    else if (c->padding_kind == TG_CONV_PAD_VALID) put_str(buf, size, &n, ", padding=valid");
    else if (c->padding[0] || c->padding[1]) put_tuple(buf, size, &n, ", padding", c->padding + o, d, false);
    if (c->dilation[0] != 1 || c->dilation[1] != 1) put_tuple(buf, size, &n, ", dilation", c->dilation + o, d, false);
    if (c->output_padding[0] || c->output_padding[1])
        put_tuple(buf, size, &n, ", output_padding", c->output_padding + o, d, false);
    if (c->groups != 1 && n >= 0 && (size_t)n < size) n += snprintf(buf + n, size - (size_t)n, ", groups=%lld", (long long)c->groups);
    if (!c->bias) put_str(buf, size, &n, ", bias=False");
    if (c->padding_mode) {
        put_str(buf, size, &n, ", padding_mode=");
        put_str(buf, size, &n, k_mode_names[c->padding_mode]);
    }
    return n;
}

static const tg_module_type conv1d_type = { "Conv1d", sizeof(conv), conv_forward, NULL, NULL, conv_describe };
static const tg_module_type conv2d_type = { "Conv2d", sizeof(conv), conv_forward, NULL, NULL, conv_describe };
static const tg_module_type conv_transpose2d_type = { "ConvTranspose2d", sizeof(conv), conv_forward, NULL, NULL,
                                                      conv_describe };

/* The epilogue conv and bn give (false: they run one by one). */
static bool conv_bn_epilogue(const tg_module *m, const tg_module *bn, tg_conv2d_opts *o) {
    if (!tg_module_is(m, &conv2d_type) || m->hooks.n != 0) return false;
    const conv *c = tg_module_data(m);
    return !bn || tg_nn_bn_eval_epilogue(bn, c->out, tg_dtype_of(c->weight), o);
}

bool tg_nn_conv_bn_fuses(const tg_module *conv, const tg_module *bn) {
    tg_conv2d_opts o = { 0 };
    return conv_bn_epilogue(conv, bn, &o);
}

tg_tensor *tg_nn_conv_bn(tg_module *m, tg_module *bn, tg_tensor *x, tg_tensor *residual, bool relu) {
    tg_conv2d_opts o = { 0 };
    if (conv_bn_epilogue(m, bn, &o)) {
        o.residual = residual, o.relu = relu;
        g_epilogue.set = true, g_epilogue.o = o;
        tg_tensor *y = tg_module_forward(m, x);
        g_epilogue.set = false; /* when the forward failed before reading it */
        return y;
    }
    tg_tensor *y = tg_module_forward(m, x);
    if (bn && residual && relu) return tg_nn_bn_add_relu(bn, y, residual);
    if (bn && !residual) return relu ? tg_nn_bn_relu(bn, NULL, y) : tg_module_forward(bn, y);
    if (bn) y = tg_module_forward(bn, y);
    if (residual) y = tg_add(y, residual);
    return relu ? tg_relu(y) : y;
}

/* What is wrong with the options, or NULL (PyTorch's constructor checks). */
static const char *conv_check(const conv *c, const tg_conv_layer_opts *o) {
    static const int64_t none[2];
    if (c->in < 1 || c->out < 1) return "in_channels and out_channels must be >= 1";
    if (c->k[0] < 1 || c->k[1] < 1) return "kernel_size must be >= 1";
    if (c->groups < 1) return "groups must be >= 1";
    if (c->in % c->groups) return "in_channels must be divisible by groups";
    if (c->out % c->groups) return "out_channels must be divisible by groups";
    if ((unsigned)o->padding_mode > TG_PADDING_CIRCULAR) return "unknown padding_mode";
    if ((unsigned)o->padding_kind > TG_CONV_PAD_SAME) return "unknown padding_kind";
    if (o->padding_kind == TG_CONV_PAD_SAME && (c->stride[0] != 1 || c->stride[1] != 1))
        return "padding='same' is not supported for strided convolutions";
    if (o->padding_kind && (o->padding || memcmp(o->padding_hw, none, sizeof none)))
        return "padding_kind 'valid' or 'same' takes no padding amounts";
    if (c->transposed && (o->padding_kind || o->padding_mode))
        return "only padding_mode zeros and explicit padding are supported for ConvTranspose2d";
    if (!c->transposed && (o->output_padding || memcmp(o->output_padding_hw, none, sizeof none)))
        return "output_padding is for ConvTranspose2d only";
    if (c->dims == 1 && (memcmp(o->kernel_size_hw, none, sizeof none) || memcmp(o->stride_hw, none, sizeof none) ||
                         memcmp(o->padding_hw, none, sizeof none) || memcmp(o->dilation_hw, none, sizeof none)))
        return "the _hw pairs are for 2-D layers only";
    for (int a = 0; a < 2; a++)
        if (c->stride[a] < 1 || c->dilation[a] < 1 || c->padding[a] < 0 || c->output_padding[a] < 0)
            return "stride and dilation must be >= 1, padding and output_padding >= 0";
    return NULL;
}

static tg_module *conv_make(const tg_module_type *type, const char *api, int64_t in, int64_t out, int64_t ks,
                            const tg_conv_layer_opts *opts, tg_device *dev) {
    const tg_conv_layer_opts o = opts ? *opts : (tg_conv_layer_opts){ 0 };
    conv c = { .in = in, .out = out, .groups = o.groups ? o.groups : 1, .dims = type == &conv1d_type ? 1 : 2,
               .transposed = type == &conv_transpose2d_type, .padding_kind = o.padding_kind, .padding_mode = o.padding_mode };
    pair(c.k, ks, o.kernel_size_hw, 0);
    pair(c.stride, o.stride, o.stride_hw, 1);
    pair(c.padding, o.padding, o.padding_hw, 0);
    pair(c.dilation, o.dilation, o.dilation_hw, 1);
    pair(c.output_padding, o.output_padding, o.output_padding_hw, 0);
    if (c.dims == 1) c.k[0] = 1, c.stride[0] = 1, c.padding[0] = 0, c.dilation[0] = 1;
    const char *why = conv_check(&c, &o);
    if (why) return tg_error_null(TG_ERR_INVALID, "%s: %s (in_channels %lld, out_channels %lld, kernel_size %lld, groups %lld)",
                                  api, why, (long long)in, (long long)out, (long long)ks, (long long)c.groups);
    tg_shape ws = c.dims == 1 ? TG_SHAPE(out, in / c.groups, c.k[1])
                : c.transposed ? TG_SHAPE(in, out / c.groups, c.k[0], c.k[1])
                               : TG_SHAPE(out, in / c.groups, c.k[0], c.k[1]);
    tg_tensor *w = tg_empty(TG_F32, ws, dev), *b = NULL;
    int64_t fan_in = 0, fan_out = 0;
    if (w && (tg_init_kaiming_uniform_(w, &(tg_kaiming_opts){ .a = sqrt(5.0) }) != TG_OK ||
              tg_init_fans(w, &fan_in, &fan_out) != TG_OK))
        w = NULL;
    if (!o.no_bias && w) {
        b = tg_empty(TG_F32, TG_SHAPE(out), dev);
        if (b && tg_init_uniform_(b, -1 / sqrt((double)fan_in), 1 / sqrt((double)fan_in)) != TG_OK) b = NULL;
    }
    tg_module *self = tg_module_new(type);
    if (!self) return NULL;
    conv *cd = tg_module_data(self);
    *cd = c;
    tg_module_param(self, "weight", &cd->weight, w);
    if (!o.no_bias) tg_module_param(self, "bias", &cd->bias, b);
    return tg_module_done(self);
}

tg_module *tg_conv2d_new(int64_t in, int64_t out, int64_t kernel_size, const tg_conv_layer_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_conv2d_new");
    return conv_make(&conv2d_type, "tg_conv2d_new", in, out, kernel_size, opts, dev);
}

tg_module *tg_conv1d_new(int64_t in, int64_t out, int64_t kernel_size, const tg_conv_layer_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_conv1d_new");
    return conv_make(&conv1d_type, "tg_conv1d_new", in, out, kernel_size, opts, dev);
}

tg_module *tg_conv_transpose2d_new(int64_t in, int64_t out, int64_t kernel_size, const tg_conv_layer_opts *opts,
                                   tg_device *dev) {
    TG_API_ENTER("tg_conv_transpose2d_new");
    return conv_make(&conv_transpose2d_type, "tg_conv_transpose2d_new", in, out, kernel_size, opts, dev);
}

/* ------------------------------------------------------------- pooling */

typedef struct {
    union {
        tg_max_pool2d_opts max;
        tg_max_unpool2d_opts unpool;
        tg_avg_pool2d_opts avg;
    } o;
    int64_t out[2]; /* adaptive */
} pool;

static tg_tensor *max_pool_forward(tg_module *self, tg_tensor *x) {
    return tg_max_pool2d(x, &((pool *)tg_module_data(self))->o.max);
}
static tg_tensor *max_unpool_forward(tg_module *self, tg_tensor *x, tg_tensor *indices) {
    return tg_max_unpool2d(x, indices, &((pool *)tg_module_data(self))->o.unpool);
}
static tg_tensor *avg_pool_forward(tg_module *self, tg_tensor *x) {
    return tg_avg_pool2d(x, &((pool *)tg_module_data(self))->o.avg);
}
static tg_tensor *adaptive_avg_forward(tg_module *self, tg_tensor *x) {
    pool *p = tg_module_data(self);
    return tg_adaptive_avg_pool2d(x, p->out[0], p->out[1]);
}
static tg_tensor *adaptive_max_forward(tg_module *self, tg_tensor *x) {
    pool *p = tg_module_data(self);
    return tg_adaptive_max_pool2d(x, p->out[0], p->out[1]);
}

/* "kernel_size=2, stride=2, padding=0": what PyTorch prints (stride defaults to the kernel). */
static void put_pool(char *buf, size_t size, int *n, int64_t ks, const int64_t *ks_hw, int64_t st, const int64_t *st_hw,
                     int64_t pad, const int64_t *pad_hw) {
    int64_t k[2], s[2], p[2];
    pair(k, ks, ks_hw, 0);
    pair(s, st, st_hw, 0);
    pair(p, pad, pad_hw, 0);
    for (int a = 0; a < 2; a++) s[a] = s[a] ? s[a] : k[a];
    put_tuple(buf, size, n, "kernel_size", k, 2, true);
    put_tuple(buf, size, n, ", stride", s, 2, true);
    put_tuple(buf, size, n, ", padding", p, 2, true);
}

static int max_pool_describe(const tg_module *self, char *buf, size_t size) {
    const tg_max_pool2d_opts *o = &((const pool *)tg_module_data(self))->o.max;
    int n = 0;
    int64_t d[2];
    put_pool(buf, size, &n, o->kernel_size, o->kernel_size_hw, o->stride, o->stride_hw, o->padding, o->padding_hw);
    pair(d, o->dilation, o->dilation_hw, 1);
    put_tuple(buf, size, &n, ", dilation", d, 2, true);
    put_str(buf, size, &n, o->ceil_mode ? ", ceil_mode=True" : ", ceil_mode=False");
    return n;
}
static int max_unpool_describe(const tg_module *self, char *buf, size_t size) {
    const tg_max_unpool2d_opts *o = &((const pool *)tg_module_data(self))->o.unpool;
    int n = 0;
    put_pool(buf, size, &n, o->kernel_size, o->kernel_size_hw, o->stride, o->stride_hw, o->padding, o->padding_hw);
    return n;
}
static int avg_pool_describe(const tg_module *self, char *buf, size_t size) {
    const tg_avg_pool2d_opts *o = &((const pool *)tg_module_data(self))->o.avg;
    int n = 0;
    put_pool(buf, size, &n, o->kernel_size, o->kernel_size_hw, o->stride, o->stride_hw, o->padding, o->padding_hw);
    return n;
}
static int adaptive_describe(const tg_module *self, char *buf, size_t size) {
    int n = 0;
    put_tuple(buf, size, &n, "output_size", ((const pool *)tg_module_data(self))->out, 2, true);
    return n;
}

static const tg_module_type max_pool_type = { "MaxPool2d", sizeof(pool), max_pool_forward, NULL, NULL, max_pool_describe };
static const tg_module_type max_unpool_type = { "MaxUnpool2d", sizeof(pool), NULL, max_unpool_forward, NULL,
                                                max_unpool_describe };
static const tg_module_type avg_pool_type = { "AvgPool2d", sizeof(pool), avg_pool_forward, NULL, NULL, avg_pool_describe };
static const tg_module_type adaptive_avg_type = { "AdaptiveAvgPool2d", sizeof(pool), adaptive_avg_forward, NULL, NULL,
                                                  adaptive_describe };
static const tg_module_type adaptive_max_type = { "AdaptiveMaxPool2d", sizeof(pool), adaptive_max_forward, NULL, NULL,
                                                  adaptive_describe };

/* A pooling module holding a copy of p; kernel_size is checked here so that a forgotten
 * one fails at construction, naming the constructor. */
static tg_module *pool_make(const tg_module_type *type, const char *api, const pool *p, int64_t ks, const int64_t *ks_hw) {
    if (ks_hw && !(ks >= 1 || (ks_hw[0] >= 1 && ks_hw[1] >= 1)))
        return tg_error_null(TG_ERR_INVALID, "%s: kernel_size is required (>= 1), got %lld", api, (long long)ks);
    if (!ks_hw && !(p->out[0] >= 1 && p->out[1] >= 1))
        return tg_error_null(TG_ERR_INVALID, "%s: output size must be >= 1, got (%lld, %lld)", api, (long long)p->out[0],
                             (long long)p->out[1]);
    tg_module *m = tg_module_new(type);
    if (m) *(pool *)tg_module_data(m) = *p;
    return m;
}

tg_module *tg_max_pool2d_new(const tg_max_pool2d_opts *opts) {
    pool p = { .o.max = opts ? *opts : (tg_max_pool2d_opts){ 0 } };
    return pool_make(&max_pool_type, "tg_max_pool2d_new", &p, p.o.max.kernel_size, p.o.max.kernel_size_hw);
}

tg_tensor *tg_max_pool2d_forward_with_indices(tg_module *m, tg_tensor *x, tg_tensor **indices) {
    TG_API_ENTER("tg_max_pool2d_forward_with_indices");
    if (!tg_module_is(m, &max_pool_type))
        return tg_error_null(TG_ERR_INVALID, "tg_max_pool2d_forward_with_indices: the module is not a MaxPool2d");
    return tg_max_pool2d_with_indices(x, &((pool *)tg_module_data(m))->o.max, indices);
}

tg_module *tg_max_unpool2d_new(const tg_max_unpool2d_opts *opts) {
    pool p = { .o.unpool = opts ? *opts : (tg_max_unpool2d_opts){ 0 } };
    return pool_make(&max_unpool_type, "tg_max_unpool2d_new", &p, p.o.unpool.kernel_size, p.o.unpool.kernel_size_hw);
}

tg_module *tg_avg_pool2d_new(const tg_avg_pool2d_opts *opts) {
    pool p = { .o.avg = opts ? *opts : (tg_avg_pool2d_opts){ 0 } };
    return pool_make(&avg_pool_type, "tg_avg_pool2d_new", &p, p.o.avg.kernel_size, p.o.avg.kernel_size_hw);
}

tg_module *tg_adaptive_avg_pool2d_new(int64_t h, int64_t w) {
    return pool_make(&adaptive_avg_type, "tg_adaptive_avg_pool2d_new", &(pool){ .out = { h, w } }, 0, NULL);
}

tg_module *tg_adaptive_max_pool2d_new(int64_t h, int64_t w) {
    return pool_make(&adaptive_max_type, "tg_adaptive_max_pool2d_new", &(pool){ .out = { h, w } }, 0, NULL);
}

/* ------------------------------------------------------------- Dropout, Dropout2d, Upsample */

typedef struct {
    double p;
    tg_interpolate_opts up;
} resample;

static tg_tensor *dropout_forward(tg_module *self, tg_tensor *x) {
    return tg_dropout(x, ((resample *)tg_module_data(self))->p, tg_module_is_training(self));
}
static tg_tensor *dropout2d_forward(tg_module *self, tg_tensor *x) {
    return tg_dropout2d(x, ((resample *)tg_module_data(self))->p, tg_module_is_training(self));
}
static tg_tensor *upsample_forward(tg_module *self, tg_tensor *x) {
    return tg_interpolate(x, &((resample *)tg_module_data(self))->up);
}

static int dropout_describe(const tg_module *self, char *buf, size_t size) {
    char p[32];
    return snprintf(buf, size, "p=%s, inplace=False", py_float(p, sizeof p, ((const resample *)tg_module_data(self))->p));
}
static int upsample_describe(const tg_module *self, char *buf, size_t size) {
    static const char *const modes[] = { "nearest", "nearest-exact", "bilinear" };
    const tg_interpolate_opts *o = &((const resample *)tg_module_data(self))->up;
    char a[32], b[32];
    int n = 0;
    if (o->size[0]) put_tuple(buf, size, &n, "size", (int64_t[]){ o->size[0], o->size[1] ? o->size[1] : o->size[0] }, 2, true);
    else if (o->scale_factor[1] && o->scale_factor[1] != o->scale_factor[0])
        n = snprintf(buf, size, "scale_factor=(%s, %s)", py_float(a, sizeof a, o->scale_factor[0]),
                     py_float(b, sizeof b, o->scale_factor[1]));
    else n = snprintf(buf, size, "scale_factor=%s", py_float(a, sizeof a, o->scale_factor[0]));
    if (n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", mode='%s'", (unsigned)o->mode <= TG_INTERPOLATE_BILINEAR ? modes[o->mode] : "?");
    return n;
}

static const tg_module_type dropout_type = { "Dropout", sizeof(resample), dropout_forward, NULL, NULL, dropout_describe };
static const tg_module_type dropout2d_type = { "Dropout2d", sizeof(resample), dropout2d_forward, NULL, NULL,
                                               dropout_describe };
static const tg_module_type upsample_type = { "Upsample", sizeof(resample), upsample_forward, NULL, NULL,
                                              upsample_describe };

static tg_module *dropout_make(const tg_module_type *type, const char *api, double p) {
    if (!(p >= 0 && p <= 1))
        return tg_error_null(TG_ERR_INVALID, "%s: dropout probability has to be between 0 and 1, but got %g", api, p);
    tg_module *m = tg_module_new(type);
    if (m) ((resample *)tg_module_data(m))->p = p;
    return m;
}

tg_module *tg_dropout_new(double p) { return dropout_make(&dropout_type, "tg_dropout_new", p); }
tg_module *tg_dropout2d_new(double p) { return dropout_make(&dropout2d_type, "tg_dropout2d_new", p); }

tg_module *tg_upsample_new(const tg_interpolate_opts *opts) {
    bool size = opts && (opts->size[0] || opts->size[1]), scale = opts && (opts->scale_factor[0] || opts->scale_factor[1]);
    if (size == scale)
        return tg_error_null(TG_ERR_INVALID, "tg_upsample_new: exactly one of size and scale_factor must be given");
    tg_module *m = tg_module_new(&upsample_type);
    if (m) ((resample *)tg_module_data(m))->up = *opts;
    return m;
}
