/* ResNet as torchvision builds it (18 to 152, its names and init, so its weights load),
 * SE-ResNet (a squeeze-and-excitation block in every bottleneck) and the CIFAR ResNets of
 * He et al. 2015 section 4.2 (6n + 2 layers, option A or B shortcuts). */
#include "lib/models/zoo.h"
#include "lib/nn/module-impl.h" /* tg_nn_conv_bn, tg_nn_bn_relu: the fused forms of conv, batch norm, relu */

/* ------------------------------------------------------------- the network */

typedef struct {
    tg_module *conv1, *bn1, *relu, *maxpool, *layer[4], *avgpool, *fc; /* CIFAR: no maxpool, no layer4 */
} resnet;

/* x (N, 3, H, W) -> (N, num_classes). */
static tg_tensor *resnet_forward(tg_module *self, tg_tensor *x) {
    resnet *r = tg_module_data(self);
    if (r->relu->hooks.n == 0) /* the stem's conv, batch norm and relu: one op in eval, two in training */
        x = tg_nn_conv_bn(r->conv1, r->bn1, x, NULL, true);
    else
        x = tg_nn_bn_relu(r->bn1, r->relu, tg_module_forward(r->conv1, x));
    if (r->maxpool) x = tg_module_forward(r->maxpool, x);
    for (int i = 0; i < 4 && r->layer[i]; i++) x = tg_module_forward(r->layer[i], x);
    x = tg_module_forward(r->avgpool, x);
    return tg_module_forward(r->fc, x ? tg_flatten(x, 1) : NULL);
}

static const tg_module_type resnet_type = { "ResNet", sizeof(resnet), resnet_forward, NULL, NULL, NULL };

/* Makes one block: inplanes -> planes * expansion, the first conv (or the 3x3) of stride. */
typedef tg_module *(*block_fn)(int64_t inplanes, int64_t planes, int64_t stride, tg_device *dev);

typedef struct {
    block_fn block;
    int expansion, n_stages;
    const int *blocks;   /* per stage */
    int64_t width;       /* of the first stage: 64, CIFAR 16 */
    bool cifar;          /* a 3x3 stem without max pool */
    const char *last_bn; /* of a block: zero_init_residual's */
} resnet_spec;

/* torchvision's _make_layer: n blocks, the first of stride (and the shortcut). */
static tg_module *make_layer(const resnet_spec *s, int64_t *inplanes, int64_t planes, int n, int64_t stride,
                             tg_device *dev) {
    tg_module *blocks[64];
    for (int i = 0; i < n; i++) {
        blocks[i] = s->block(*inplanes, planes, i ? 1 : stride, dev);
        *inplanes = planes * s->expansion;
    }
    return tg_sequential_new(n, blocks);
}

/* Zeroes every block's last BN weight (torchvision's zero_init_residual). */
static tg_status zero_last_bn(tg_module *m, const resnet_spec *s) {
    char path[64];
    tg_status st = TG_OK;
    for (int l = 0; st == TG_OK && l < s->n_stages; l++)
        for (int b = 0; st == TG_OK && b < s->blocks[l]; b++) {
            snprintf(path, sizeof path, "layer%d.%d.%s.weight", l + 1, b, s->last_bn);
            st = tg_zoo_fill(m, path, 0);
        }
    return st;
}

static tg_module *resnet_build(const resnet_spec *s, int64_t num_classes, const tg_zoo_opts *o, tg_device *dev) {
    tg_module *self = tg_module_new(&resnet_type);
    if (!self) return NULL;
    resnet *r = tg_module_data(self);
    int64_t w = s->width, inplanes = w;
    tg_conv_layer_opts stem = s->cifar ? (tg_conv_layer_opts){ .padding = 1, .no_bias = true }
                                       : (tg_conv_layer_opts){ .stride = 2, .padding = 3, .no_bias = true };
    tg_module_add(self, "conv1", &r->conv1, tg_conv2d_new(3, w, s->cifar ? 3 : 7, &stem, dev));
    tg_module_add(self, "bn1", &r->bn1, tg_batchnorm2d_new(w, NULL, dev));
    tg_module_add(self, "relu", &r->relu, tg_relu_new());
    if (!s->cifar)
        tg_module_add(self, "maxpool", &r->maxpool,
                      tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 3, .stride = 2, .padding = 1 }));
    static const char *const names[] = { "layer1", "layer2", "layer3", "layer4" };
    for (int l = 0; l < s->n_stages; l++)
        tg_module_add(self, names[l], &r->layer[l], make_layer(s, &inplanes, w << l, s->blocks[l], l ? 2 : 1, dev));
    tg_module_add(self, "avgpool", &r->avgpool, tg_adaptive_avg_pool2d_new(1, 1));
    tg_module_add(self, "fc", &r->fc, tg_linear_new(inplanes, num_classes, NULL, dev));
    self = tg_module_done(self);
    tg_status st = TG_OK;
    if (self && !o->layer_init) st = tg_zoo_init(self, TG_ZOO_RESNET);
    if (self && st == TG_OK && o->zero_init_residual) st = zero_last_bn(self, s);
    if (st == TG_OK) return self;
    tg_module_free(self);
    return NULL;
}

/* ------------------------------------------------------------- blocks */

static tg_module *basic(int64_t in, int64_t planes, int64_t stride, tg_device *dev) {
    return tg_basic_block_new(in, planes, &(tg_resnet_block_opts){ .stride = stride }, dev);
}

static tg_module *bottleneck(int64_t in, int64_t planes, int64_t stride, tg_device *dev) {
    return tg_bottleneck_new(in, planes, &(tg_resnet_block_opts){ .stride = stride }, dev);
}

static tg_module *conv_nb(int64_t in, int64_t out, int64_t k, int64_t stride, tg_device *dev) {
    return tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .stride = stride, .padding = k / 2, .no_bias = true }, dev);
}

/* Bottleneck with squeeze-and-excitation on the residual branch, and CIFAR's option-A
 * BasicBlock: the children forward reads (downsample NULL for the identity). */
typedef struct {
    tg_module *conv1, *bn1, *conv2, *bn2, *conv3, *bn3, *relu, *se, *downsample;
    int64_t stride, pad; /* option A: subsampling of the identity, zero channels appended */
} block;

/* x (N, in, H, W) -> (N, 4 planes, H / stride, W / stride): relu(se(bn3(...)) + shortcut). */
static tg_tensor *se_bottleneck_forward(tg_module *self, tg_tensor *x) {
    block *b = tg_module_data(self);
    tg_tensor *y = tg_nn_conv_bn(b->conv1, b->bn1, x, NULL, true);
    y = tg_nn_conv_bn(b->conv2, b->bn2, y, NULL, true);
    y = tg_module_forward(b->se, tg_nn_conv_bn(b->conv3, b->bn3, y, NULL, false));
    if (!y) return NULL; /* before the shortcut, whose failure would hide the first message */
    tg_tensor *shortcut = b->downsample ? tg_module_forward(b->downsample, x) : x;
    return shortcut ? tg_relu(tg_add(y, shortcut)) : NULL;
}

static const tg_module_type se_bottleneck_type = { "SEBottleneck", sizeof(block), se_bottleneck_forward, NULL, NULL,
                                                   NULL };

static tg_module *se_bottleneck(int64_t in, int64_t planes, int64_t stride, tg_device *dev) {
    tg_module *self = tg_module_new(&se_bottleneck_type);
    if (!self) return NULL;
    block *b = tg_module_data(self);
    int64_t out = planes * 4;
    tg_module_add(self, "conv1", &b->conv1, conv_nb(in, planes, 1, 1, dev));
    tg_module_add(self, "bn1", &b->bn1, tg_batchnorm2d_new(planes, NULL, dev));
    tg_module_add(self, "conv2", &b->conv2, conv_nb(planes, planes, 3, stride, dev));
    tg_module_add(self, "bn2", &b->bn2, tg_batchnorm2d_new(planes, NULL, dev));
    tg_module_add(self, "conv3", &b->conv3, conv_nb(planes, out, 1, 1, dev));
    tg_module_add(self, "bn3", &b->bn3, tg_batchnorm2d_new(out, NULL, dev));
    tg_module_add(self, "relu", &b->relu, tg_relu_new());
    tg_module_add(self, "se", &b->se, tg_squeeze_excitation_new(out, out / 16, dev));
    if (stride != 1 || in != out)
        tg_module_add(self, "downsample", &b->downsample,
                      tg_sequential(conv_nb(in, out, 1, stride, dev), tg_batchnorm2d_new(out, NULL, dev)));
    return tg_module_done(self);
}

/* x (N, in, H, W) -> (N, planes, ceil(H / stride), ceil(W / stride)); the shortcut is
 * x[:, :, ::stride, ::stride] with planes - in zero channels after x's. */
static tg_tensor *block_a_forward(tg_module *self, tg_tensor *x) {
    block *b = tg_module_data(self);
    tg_tensor *y = tg_nn_conv_bn(b->conv1, b->bn1, x, NULL, true);
    bool fuse = tg_nn_conv_bn_fuses(b->conv2, b->bn2); /* eval: conv2's epilogue does bn2, the add, the relu */
    if (!fuse) y = tg_module_forward(b->conv2, y);
    if (!y) return NULL;
    tg_tensor *shortcut = x;
    if (b->stride != 1) shortcut = tg_slice(tg_slice(x, 2, 0, INT64_MAX, b->stride), 3, 0, INT64_MAX, b->stride);
    if (b->pad) shortcut = tg_pad(shortcut, TG_PADS(0, 0, 0, 0, 0, b->pad), 0);
    if (fuse) return shortcut ? tg_nn_conv_bn(b->conv2, b->bn2, y, shortcut, true) : NULL;
    return shortcut ? tg_nn_bn_add_relu(b->bn2, y, shortcut) : NULL; /* relu(bn2(y) + shortcut) in one pass */
}

static const tg_module_type block_a_type = { "BasicBlock", sizeof(block), block_a_forward, NULL, NULL, NULL };

static tg_module *basic_a(int64_t in, int64_t planes, int64_t stride, tg_device *dev) {
    tg_module *self = tg_module_new(&block_a_type);
    if (!self) return NULL;
    block *b = tg_module_data(self);
    b->stride = stride, b->pad = planes - in;
    tg_module_add(self, "conv1", &b->conv1, conv_nb(in, planes, 3, stride, dev));
    tg_module_add(self, "bn1", &b->bn1, tg_batchnorm2d_new(planes, NULL, dev));
    tg_module_add(self, "conv2", &b->conv2, conv_nb(planes, planes, 3, 1, dev));
    tg_module_add(self, "bn2", &b->bn2, tg_batchnorm2d_new(planes, NULL, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- constructors */

static const int blocks18[] = { 2, 2, 2, 2 }, blocks34[] = { 3, 4, 6, 3 }, blocks101[] = { 3, 4, 23, 3 },
                 blocks152[] = { 3, 8, 36, 3 };

static const int *imagenet_blocks(int depth) {
    switch (depth) {
    case 18: return blocks18;
    case 34:
    case 50: return blocks34;
    case 101: return blocks101;
    case 152: return blocks152;
    }
    return NULL;
}

static const unsigned resnet_has = TG_ZOO_ZERO_INIT_RESIDUAL | TG_ZOO_LAYER_INIT;

tg_module *tg_resnet_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_resnet_new");
    tg_zoo_opts o;
    if (!imagenet_blocks(depth))
        return tg_error_null(TG_ERR_INVALID, "tg_resnet_new: depth must be 18, 34, 50, 101 or 152, got %d", depth);
    if (!tg_zoo_check("tg_resnet_new", "ResNet", num_classes, opts, resnet_has, 0, 0, &o)) return NULL;
    bool basic_blocks = depth < 50;
    resnet_spec s = { basic_blocks ? basic : bottleneck, basic_blocks ? 1 : 4, 4,
                      imagenet_blocks(depth), 64, false, basic_blocks ? "bn2" : "bn3" };
    return resnet_build(&s, num_classes, &o, dev);
}

tg_module *tg_se_resnet_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_se_resnet_new");
    tg_zoo_opts o;
    if (depth != 50 && depth != 101 && depth != 152)
        return tg_error_null(TG_ERR_INVALID, "tg_se_resnet_new: depth must be 50, 101 or 152, got %d", depth);
    if (!tg_zoo_check("tg_se_resnet_new", "SE-ResNet", num_classes, opts, resnet_has, 0, 0, &o)) return NULL;
    resnet_spec s = { se_bottleneck, 4, 4, imagenet_blocks(depth), 64, false, "bn3" };
    return resnet_build(&s, num_classes, &o, dev);
}

tg_module *tg_resnet_cifar_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_resnet_cifar_new");
    tg_zoo_opts o;
    if (depth < 8 || (depth - 2) % 6 || depth > 6 * 64 + 2)
        return tg_error_null(TG_ERR_INVALID, "tg_resnet_cifar_new: depth must be 6n + 2 (20, 32, 44, 56, 110; n from 1 "
                             "to 64), got %d", depth);
    if (!tg_zoo_check("tg_resnet_cifar_new", "the CIFAR ResNet", num_classes, opts, resnet_has | TG_ZOO_PROJECTION, 0, 0,
                      &o))
        return NULL;
    int n = (depth - 2) / 6;
    const int blocks[3] = { n, n, n };
    resnet_spec s = { o.projection ? basic : basic_a, 1, 3, blocks, 16, true, "bn2" };
    return resnet_build(&s, num_classes, &o, dev);
}
