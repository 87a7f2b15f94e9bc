/* The blocks of the classic CNNs, composed of the layers: ResNet's BasicBlock and
 * Bottleneck (torchvision's child names, so its checkpoints load), GoogLeNet's Inception
 * module and squeeze-and-excitation. Each is children plus a forward of a few lines. */
#include <stdio.h>

#include "lib/nn/module-impl.h"

static tg_module *conv_bn_free(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, tg_device *dev) {
    return tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .stride = stride, .padding = k / 2, .groups = groups,
                                                            .no_bias = true }, dev);
}

/* torchvision's _make_layer shortcut: Sequential(conv1x1(in, out, stride), BatchNorm2d(out)). */
static tg_module *projection(int64_t in, int64_t out, int64_t stride, tg_device *dev) {
    return tg_sequential(conv_bn_free(in, out, 1, stride, 1, dev), tg_batchnorm2d_new(out, NULL, dev));
}

/* ------------------------------------------------------------- BasicBlock, Bottleneck */

typedef struct {
    tg_module *conv1, *bn1, *conv2, *bn2, *conv3, *bn3, *relu, *downsample; /* conv3, bn3: Bottleneck; downsample or NULL */
    int64_t stride;
} resblock;

/* x (N, in, H, W) -> (N, planes * expansion, H / stride, W / stride). */
static tg_tensor *resblock_forward(tg_module *self, tg_tensor *x) {
    resblock *r = tg_module_data(self);
    tg_tensor *y = tg_nn_conv_bn(r->conv1, r->bn1, x, NULL, true);
    if (r->conv3) y = tg_nn_conv_bn(r->conv2, r->bn2, y, NULL, true);
    tg_module *conv = r->conv3 ? r->conv3 : r->conv2, *bn = r->conv3 ? r->bn3 : r->bn2;
    if (y && tg_nn_conv_bn_fuses(conv, bn)) { /* eval: the last conv's epilogue does bn, the add and the relu */
        tg_tensor *shortcut = r->downsample ? tg_module_forward(r->downsample, x) : x;
        return shortcut ? tg_nn_conv_bn(conv, bn, y, shortcut, true) : NULL;
    }
    y = tg_module_forward(conv, y);
    if (!y) return NULL; /* before the shortcut, whose failure would hide the first message */
    tg_tensor *shortcut = r->downsample ? tg_module_forward(r->downsample, x) : x;
    /* relu(bn(y) + shortcut), the last batch norm's pass doing the add and the relu */
    return shortcut ? tg_nn_bn_add_relu(bn, y, shortcut) : NULL;
}

static const tg_module_type basic_block_type = { "BasicBlock", sizeof(resblock), resblock_forward, NULL, NULL, NULL };
static const tg_module_type bottleneck_type = { "Bottleneck", sizeof(resblock), resblock_forward, NULL, NULL, NULL };

static bool block_opts(const char *api, const tg_resnet_block_opts *opts, int64_t in, int64_t planes, int64_t *stride,
                       int64_t *groups, int64_t *base_width) {
    *stride = opts && opts->stride ? opts->stride : 1;
    *groups = opts && opts->groups ? opts->groups : 1;
    *base_width = opts && opts->base_width ? opts->base_width : 64;
    if (in >= 1 && planes >= 1 && *stride >= 1 && *groups >= 1 && *base_width >= 1) return true;
    tg_error(TG_ERR_INVALID, "%s: inplanes, planes, stride, groups and base_width must be >= 1, got %lld, %lld, %lld, "
             "%lld and %lld", api, (long long)in, (long long)planes, (long long)*stride, (long long)*groups,
             (long long)*base_width);
    return false;
}

tg_module *tg_basic_block_new(int64_t inplanes, int64_t planes, const tg_resnet_block_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_basic_block_new");
    int64_t stride, groups, base_width;
    if (!block_opts("tg_basic_block_new", opts, inplanes, planes, &stride, &groups, &base_width)) return NULL;
    if (groups != 1 || base_width != 64)
        return tg_error_null(TG_ERR_INVALID, "tg_basic_block_new: BasicBlock only supports groups=1 and base_width=64");
    tg_module *self = tg_module_new(&basic_block_type);
    if (!self) return NULL;
    resblock *r = tg_module_data(self);
    r->stride = stride;
    tg_module_add(self, "conv1", &r->conv1, conv_bn_free(inplanes, planes, 3, stride, 1, dev));
    tg_module_add(self, "bn1", &r->bn1, tg_batchnorm2d_new(planes, NULL, dev));
    tg_module_add(self, "relu", &r->relu, tg_relu_new());
    tg_module_add(self, "conv2", &r->conv2, conv_bn_free(planes, planes, 3, 1, 1, dev));
    tg_module_add(self, "bn2", &r->bn2, tg_batchnorm2d_new(planes, NULL, dev));
    if (stride != 1 || inplanes != planes)
        tg_module_add(self, "downsample", &r->downsample, projection(inplanes, planes, stride, dev));
    return tg_module_done(self);
}

tg_module *tg_bottleneck_new(int64_t inplanes, int64_t planes, const tg_resnet_block_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_bottleneck_new");
    int64_t stride, groups, base_width;
    if (!block_opts("tg_bottleneck_new", opts, inplanes, planes, &stride, &groups, &base_width)) return NULL;
    int64_t width = planes * base_width / 64 * groups, out = planes * 4;
    if (width < 1) return tg_error_null(TG_ERR_INVALID, "tg_bottleneck_new: width planes * base_width / 64 * groups is 0");
    tg_module *self = tg_module_new(&bottleneck_type);
    if (!self) return NULL;
    resblock *r = tg_module_data(self);
    r->stride = stride;
    tg_module_add(self, "conv1", &r->conv1, conv_bn_free(inplanes, width, 1, 1, 1, dev));
    tg_module_add(self, "bn1", &r->bn1, tg_batchnorm2d_new(width, NULL, dev));
    tg_module_add(self, "conv2", &r->conv2, conv_bn_free(width, width, 3, stride, groups, dev));
    tg_module_add(self, "bn2", &r->bn2, tg_batchnorm2d_new(width, NULL, dev));
    tg_module_add(self, "conv3", &r->conv3, conv_bn_free(width, out, 1, 1, 1, dev));
    tg_module_add(self, "bn3", &r->bn3, tg_batchnorm2d_new(out, NULL, dev));
    tg_module_add(self, "relu", &r->relu, tg_relu_new());
    if (stride != 1 || inplanes != out) tg_module_add(self, "downsample", &r->downsample, projection(inplanes, out, stride, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- Inception */

typedef struct {
    tg_module *conv, *bn;
} basic_conv;

static tg_tensor *basic_conv_forward(tg_module *self, tg_tensor *x) { /* relu(bn(conv(x))) */
    basic_conv *b = tg_module_data(self);
    return tg_nn_conv_bn(b->conv, b->bn, x, NULL, true);
}

static const tg_module_type basic_conv_type = { "BasicConv2d", sizeof(basic_conv), basic_conv_forward, NULL, NULL, NULL };

/* torchvision's BasicConv2d: a bias-free conv (padding k/2) and BatchNorm2d(eps=0.001). */
static tg_module *basic_conv_new(int64_t in, int64_t out, int64_t k, tg_device *dev) {
    tg_module *self = tg_module_new(&basic_conv_type);
    if (!self) return NULL;
    basic_conv *b = tg_module_data(self);
    tg_module_add(self, "conv", &b->conv, conv_bn_free(in, out, k, 1, 1, dev));
    tg_module_add(self, "bn", &b->bn, tg_batchnorm2d_new(out, &(tg_batchnorm_opts){ .eps = TG_SOME(1e-3) }, dev));
    return tg_module_done(self);
}

typedef struct {
    tg_module *branch[4];
} inception;

/* x (N, in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W). */
static tg_tensor *inception_forward(tg_module *self, tg_tensor *x) {
    inception *n = tg_module_data(self);
    tg_tensor *outs[4];
    for (int i = 0; i < 4; i++)
        if (!(outs[i] = tg_module_forward(n->branch[i], x))) return NULL;
    return tg_cat(4, outs, 1);
}

static const tg_module_type inception_type = { "Inception", sizeof(inception), inception_forward, NULL, NULL, NULL };

tg_module *tg_inception_new(int64_t in, const tg_inception_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_inception_new");
    const tg_inception_opts o = opts ? *opts : (tg_inception_opts){ 0 };
    int64_t k5 = o.branch3_kernel_size ? o.branch3_kernel_size : 5;
    if (in < 1 || o.ch1x1 < 1 || o.ch3x3red < 1 || o.ch3x3 < 1 || o.ch5x5red < 1 || o.ch5x5 < 1 || o.pool_proj < 1 ||
        k5 < 1 || k5 % 2 == 0)
        return tg_error_null(TG_ERR_INVALID, "tg_inception_new: in_channels and every branch's channels must be >= 1 and "
                             "branch3_kernel_size odd, got in_channels %lld, ch1x1 %lld, ch3x3red %lld, ch3x3 %lld, "
                             "ch5x5red %lld, ch5x5 %lld, pool_proj %lld, branch3_kernel_size %lld", (long long)in,
                             (long long)o.ch1x1, (long long)o.ch3x3red, (long long)o.ch3x3, (long long)o.ch5x5red,
                             (long long)o.ch5x5, (long long)o.pool_proj, (long long)k5);
    tg_module *self = tg_module_new(&inception_type);
    if (!self) return NULL;
    inception *n = tg_module_data(self);
    tg_module_add(self, "branch1", &n->branch[0], basic_conv_new(in, o.ch1x1, 1, dev));
    tg_module_add(self, "branch2", &n->branch[1],
                  tg_sequential(basic_conv_new(in, o.ch3x3red, 1, dev), basic_conv_new(o.ch3x3red, o.ch3x3, 3, dev)));
    tg_module_add(self, "branch3", &n->branch[2],
                  tg_sequential(basic_conv_new(in, o.ch5x5red, 1, dev), basic_conv_new(o.ch5x5red, o.ch5x5, k5, dev)));
    tg_module_add(self, "branch4", &n->branch[3],
                  tg_sequential(tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 3, .stride = 1, .padding = 1,
                                                                         .ceil_mode = true }),
                                basic_conv_new(in, o.pool_proj, 1, dev)));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- squeeze-and-excitation */

typedef struct {
    tg_module *avgpool, *fc1, *fc2, *activation, *scale_activation;
} squeeze_excitation;

/* x (N, C, H, W) -> x * (N, C, 1, 1) gate. */
static tg_tensor *se_forward(tg_module *self, tg_tensor *x) {
    squeeze_excitation *s = tg_module_data(self);
    tg_tensor *g = tg_module_forward(s->fc1, tg_module_forward(s->avgpool, x));
    g = tg_module_forward(s->scale_activation, tg_module_forward(s->fc2, tg_module_forward(s->activation, g)));
    return g ? tg_mul(x, g) : NULL;
}

static const tg_module_type se_type = { "SqueezeExcitation", sizeof(squeeze_excitation), se_forward, NULL, NULL, NULL };

tg_module *tg_squeeze_excitation_new(int64_t c, int64_t squeeze, tg_device *dev) {
    TG_API_ENTER("tg_squeeze_excitation_new");
    if (c < 1 || squeeze < 1)
        return tg_error_null(TG_ERR_INVALID, "tg_squeeze_excitation_new: input_channels and squeeze_channels must be >= 1, "
                             "got %lld and %lld", (long long)c, (long long)squeeze);
    tg_module *self = tg_module_new(&se_type);
    if (!self) return NULL;
    squeeze_excitation *s = tg_module_data(self);
    tg_module_add(self, "avgpool", &s->avgpool, tg_adaptive_avg_pool2d_new(1, 1));
    tg_module_add(self, "fc1", &s->fc1, tg_conv2d_new(c, squeeze, 1, NULL, dev));
    tg_module_add(self, "fc2", &s->fc2, tg_conv2d_new(squeeze, c, 1, NULL, dev));
    tg_module_add(self, "activation", &s->activation, tg_relu_new());
    tg_module_add(self, "scale_activation", &s->scale_activation, tg_sigmoid_new());
    return tg_module_done(self);
}
