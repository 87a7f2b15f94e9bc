/* AlexNet twice: torchvision's single-stream model (its names, so its weights load) and
 * Krizhevsky et al. 2012's two-stream original, the two GPUs' streams written as
 * convolution groups, with LRN and the paper's initialisation. */
#include "lib/models/zoo.h"

static tg_module *conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, int64_t groups,
                       tg_device *dev) {
    return tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .stride = stride, .padding = padding, .groups = groups },
                         dev);
}

static tg_module *pool3s2(void) { return tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 3, .stride = 2 }); }

/* Dropout, fc, ReLU, Dropout, fc, ReLU, fc: both AlexNets' classifier. */
static tg_module *classifier(int64_t in, int64_t num_classes, double p, tg_device *dev) {
    return tg_sequential(tg_dropout_new(p), tg_linear_new(in, 4096, NULL, dev), tg_relu_new(), tg_dropout_new(p),
                         tg_linear_new(4096, 4096, NULL, dev), tg_relu_new(), tg_linear_new(4096, num_classes, NULL, dev));
}

tg_module *tg_alexnet_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_alexnet_new");
    tg_zoo_opts o;
    if (!tg_zoo_check("tg_alexnet_new", "AlexNet", num_classes, opts, TG_ZOO_DROPOUT, 0.5, 0, &o)) return NULL;
    tg_module *features = tg_sequential(conv(3, 64, 11, 4, 2, 1, dev), tg_relu_new(), pool3s2(),
                                        conv(64, 192, 5, 1, 2, 1, dev), tg_relu_new(), pool3s2(),
                                        conv(192, 384, 3, 1, 1, 1, dev), tg_relu_new(),
                                        conv(384, 256, 3, 1, 1, 1, dev), tg_relu_new(),
                                        conv(256, 256, 3, 1, 1, 1, dev), tg_relu_new(), pool3s2());
    return tg_zoo_head_model("AlexNet", features, tg_adaptive_avg_pool2d_new(6, 6),
                             classifier(256 * 6 * 6, num_classes, o.dropout, dev));
}

static tg_module *lrn(void) {
    return tg_local_response_norm_new(5, &(tg_local_response_norm_opts){ .alpha = TG_SOME(1e-4), .beta = TG_SOME(0.75),
                                                                        .k = TG_SOME(2) });
}

/* The paper's init: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden
 * fully connected layers (to give the ReLUs positive inputs early), 0 elsewhere. */
static tg_status original_init(tg_module *m) {
    static const char *const layers[] = { "features.0", "features.4", "features.8", "features.10", "features.12",
                                          "classifier.1", "classifier.4", "classifier.6" };
    static const double bias[] = { 0, 1, 0, 1, 1, 1, 1, 0 };
    char path[64];
    tg_status s = TG_OK;
    for (int i = 0; s == TG_OK && i < 8; i++) {
        snprintf(path, sizeof path, "%s.weight", layers[i]);
        tg_tensor *w = tg_module_get_param(m, path);
        s = w ? tg_init_normal_(w, 0, 0.01) : tg_last_status();
        snprintf(path, sizeof path, "%s.bias", layers[i]);
        if (s == TG_OK) s = tg_zoo_fill(m, path, bias[i]);
    }
    return s;
}

tg_module *tg_alexnet_original_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_alexnet_original_new");
    tg_zoo_opts o;
    if (!tg_zoo_check("tg_alexnet_original_new", "AlexNet", num_classes, opts, TG_ZOO_DROPOUT | TG_ZOO_LAYER_INIT, 0.5,
                      0, &o))
        return NULL;
    tg_module *features = tg_sequential(conv(3, 96, 11, 4, 0, 1, dev), tg_relu_new(), lrn(), pool3s2(),
                                        conv(96, 256, 5, 1, 2, 2, dev), tg_relu_new(), lrn(), pool3s2(),
                                        conv(256, 384, 3, 1, 1, 1, dev), tg_relu_new(),
                                        conv(384, 384, 3, 1, 1, 2, dev), tg_relu_new(),
                                        conv(384, 256, 3, 1, 1, 2, dev), tg_relu_new(), pool3s2());
    tg_module *m = tg_zoo_head_model("AlexNet", features, NULL, classifier(256 * 6 * 6, num_classes, o.dropout, dev));
    if (m && !o.layer_init && original_init(m) != TG_OK) {
        tg_module_free(m);
        return NULL;
    }
    return m;
}
