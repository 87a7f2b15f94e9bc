/* The notes' CNN, shared by the Fashion-MNIST examples: two blocks of conv 5x5 (padding 2),
 * BatchNorm2d, ReLU and 2x2 max pooling (1 -> 16 -> 32 channels, 28 -> 14 -> 7 pixels),
 * then a linear layer 7*7*32 = 1568 -> classes. Its children are named as PyTorch's
 * tutorial names them: "layer1.0.weight" (the conv), "layer1.1.running_mean" (the
 * BatchNorm), ..., "fc.weight". A static function in a header, so that each example stays
 * one program to copy. */
#ifndef TG_EXAMPLES_NOTES_CNN_H
#define TG_EXAMPLES_NOTES_CNN_H

#include "tapegrad.h"

typedef struct {
    tg_module *layer1, *layer2, *fc;
} notes_cnn;

/* x (B,1,28,28) standardised pixels -> logits (B,classes) */
static inline tg_tensor *notes_cnn_forward(tg_module *self, tg_tensor *x) {
    notes_cnn *m = tg_module_data(self);
    x = tg_module_forward(m->layer2, tg_module_forward(m->layer1, x)); /* (B,32,7,7) */
    return tg_module_forward(m->fc, tg_flatten(x, 1));
}

/* conv 5x5 (padding 2), BatchNorm2d, ReLU, max pool 2: (B,in,H,W) -> (B,out,H/2,W/2) */
static inline tg_module *notes_cnn_block(int64_t in, int64_t out, tg_device *dev) {
    return tg_sequential(tg_conv2d_new(in, out, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev),
                         tg_batchnorm2d_new(out, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }));
}

static inline tg_module *notes_cnn_new(int64_t classes, tg_device *dev) {
    static const tg_module_type type = { "CNN", sizeof(notes_cnn), notes_cnn_forward, NULL, NULL, NULL };
    tg_module *self = tg_module_new(&type);
    if (!self) return NULL;
    notes_cnn *m = tg_module_data(self);
    tg_module_add(self, "layer1", &m->layer1, notes_cnn_block(1, 16, dev));
    tg_module_add(self, "layer2", &m->layer2, notes_cnn_block(16, 32, dev));
    tg_module_add(self, "fc", &m->fc, tg_linear_new(7 * 7 * 32, classes, NULL, dev));
    return tg_module_done(self);
}

#endif
