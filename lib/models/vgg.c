/* VGG's configurations A, A-LRN, B, C, D and E (Simonyan and Zisserman 2015, Table 1),
 * each with or without batch norm, laid out as torchvision's VGG so that the features.N
 * indices and the weights of vgg11/13/16/19(_bn) carry over. */
#include "lib/models/zoo.h"

/* Table 1's columns: a conv's output channels (negated for C's 1x1 convs), M a stage's
 * max pool, END the end. */
#define M 0
#define END -1
static const int cfg_a[] = { 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, END };
static const int cfg_b[] = { 64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, END };
static const int cfg_d[] = { 64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M, END };
static const int cfg_e[] = { 64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M,
                             512, 512, 512, 512, M, END };
/* C: B plus a third conv, 1x1, in stages 3-5. */
static const int cfg_c[] = { 64, 64, M, 128, 128, M, 256, 256, -256, M, 512, 512, -512, M, 512, 512, -512, M, END };
#undef M

static const int *config(tg_vgg_config c) {
    switch (c) {
    case TG_VGG_A:
    case TG_VGG_A_LRN: return cfg_a;
    case TG_VGG_B: return cfg_b;
    case TG_VGG_C: return cfg_c;
    case TG_VGG_D: return cfg_d;
    case TG_VGG_E: return cfg_e;
    }
    return NULL;
}

/* torchvision's make_layers: conv, [BN], ReLU per entry, MaxPool2d(2, 2) per stage end;
 * A-LRN's LRN after the first ReLU. */
static tg_module *features(tg_vgg_config c, bool batch_norm, tg_device *dev) {
    tg_module *layers[64];
    int n = 0;
    int64_t in = 3;
    bool lrn = c == TG_VGG_A_LRN;
    for (const int *v = config(c); *v != END; v++) {
        if (*v == 0) {
            layers[n++] = tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2, .stride = 2 });
            continue;
        }
        int64_t out = *v > 0 ? *v : -*v, k = *v > 0 ? 3 : 1;
        layers[n++] = tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .padding = k / 2 }, dev);
        if (batch_norm) layers[n++] = tg_batchnorm2d_new(out, NULL, dev);
        layers[n++] = tg_relu_new();
        if (lrn)
            layers[n++] = tg_local_response_norm_new(5, &(tg_local_response_norm_opts){
                                                            .alpha = TG_SOME(1e-4), .beta = TG_SOME(0.75), .k = TG_SOME(2) });
        lrn = false, in = out;
    }
    return tg_sequential_new(n, layers); /* frees them all if one is NULL */
}
#undef END

tg_module *tg_vgg_new(tg_vgg_config c, int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_vgg_new");
    tg_zoo_opts o;
    if ((unsigned)c > TG_VGG_E)
        return tg_error_null(TG_ERR_INVALID, "tg_vgg_new: config must be one of TG_VGG_A to TG_VGG_E, got %d", (int)c);
    if (!tg_zoo_check("tg_vgg_new", "VGG", num_classes, opts, TG_ZOO_BATCH_NORM | TG_ZOO_DROPOUT | TG_ZOO_LAYER_INIT,
                      0.5, 0, &o))
        return NULL;
    tg_module *cls = tg_sequential(tg_linear_new(512 * 7 * 7, 4096, NULL, dev), tg_relu_new(), tg_dropout_new(o.dropout),
                                   tg_linear_new(4096, 4096, NULL, dev), tg_relu_new(), tg_dropout_new(o.dropout),
                                   tg_linear_new(4096, num_classes, NULL, dev));
    tg_module *m = tg_zoo_head_model("VGG", features(c, o.batch_norm, dev), tg_adaptive_avg_pool2d_new(7, 7), cls);
    if (m && !o.layer_init && tg_zoo_init(m, TG_ZOO_KAIMING_FAN_OUT) != TG_OK) {
        tg_module_free(m);
        return NULL;
    }
    return m;
}
