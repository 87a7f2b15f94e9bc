/* GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision builds it: its names, its
 * BasicConv2d (bias-free conv, BN eps 0.001, ReLU) and its init, with the two auxiliary
 * classifiers that training adds to the loss (tg_googlenet_forward_aux). */
#include <string.h>

#include "lib/models/zoo.h"

/* ------------------------------------------------------------- BasicConv2d, InceptionAux */

/* torchvision's BasicConv2d, relu(bn(conv(x))), as a Sequential whose children are named
 * as its: "conv" (bias-free, padding k/2) and "bn" (eps 0.001), then a "relu" without
 * parameters, so the state_dict names are torchvision's (conv1.conv.weight, conv1.bn.bias). */
static tg_module *basic_conv_new(int64_t in, int64_t out, int64_t k, int64_t stride, tg_device *dev) {
    tg_module *seq = tg_sequential_new(0, NULL);
    tg_status st = seq ? TG_OK : TG_ERR_NOMEM;
    tg_conv_layer_opts co = { .stride = stride, .padding = k / 2, .no_bias = true };
    if (st == TG_OK) st = tg_sequential_append(seq, "conv", tg_conv2d_new(in, out, k, &co, dev));
    if (st == TG_OK)
        st = tg_sequential_append(seq, "bn", tg_batchnorm2d_new(out, &(tg_batchnorm_opts){ .eps = TG_SOME(1e-3) }, dev));
    if (st == TG_OK) st = tg_sequential_append(seq, "relu", tg_relu_new());
    if (st == TG_OK) return seq;
    tg_module_free(seq);
    return NULL;
}

typedef struct {
    tg_module *conv, *fc1, *fc2, *dropout;
} inception_aux;

/* x (N, in, H, W) -> (N, num_classes): fc2(dropout(relu(fc1(flatten(conv(pool4x4(x))))))). */
static tg_tensor *aux_forward(tg_module *self, tg_tensor *x) {
    inception_aux *a = tg_module_data(self);
    x = tg_module_forward(a->conv, tg_adaptive_avg_pool2d(x, 4, 4));
    x = tg_relu(tg_module_forward(a->fc1, x ? tg_flatten(x, 1) : NULL));
    return tg_module_forward(a->fc2, tg_module_forward(a->dropout, x));
}

static const tg_module_type aux_type = { "InceptionAux", sizeof(inception_aux), aux_forward, NULL, NULL, NULL };

static tg_module *aux_new(int64_t in, int64_t num_classes, double p, tg_device *dev) {
    tg_module *self = tg_module_new(&aux_type);
    if (!self) return NULL;
    inception_aux *a = tg_module_data(self);
    tg_module_add(self, "conv", &a->conv, basic_conv_new(in, 128, 1, 1, dev));
    tg_module_add(self, "fc1", &a->fc1, tg_linear_new(2048, 1024, NULL, dev));
    tg_module_add(self, "fc2", &a->fc2, tg_linear_new(1024, num_classes, NULL, dev));
    tg_module_add(self, "dropout", &a->dropout, tg_dropout_new(p));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- GoogLeNet */

/* The stages in forward order: a BasicConv2d, a max pool, an Inception (torchvision's
 * channels, its 3x3 third branch) or an auxiliary classifier's tap. */
typedef enum { CONV, POOL, INCEPTION } stage_kind;
static const struct {
    const char *name;
    stage_kind kind;
    int64_t c[7]; /* CONV: in, out, kernel, stride; POOL: kernel, stride; INCEPTION: in, 1x1, 3x3red, 3x3, 5x5red, 5x5, pool */
} stages[] = {
    { "conv1", CONV, { 3, 64, 7, 2 } },
    { "maxpool1", POOL, { 3, 2 } },
    { "conv2", CONV, { 64, 64, 1, 1 } },
    { "conv3", CONV, { 64, 192, 3, 1 } },
    { "maxpool2", POOL, { 3, 2 } },
    { "inception3a", INCEPTION, { 192, 64, 96, 128, 16, 32, 32 } },
    { "inception3b", INCEPTION, { 256, 128, 128, 192, 32, 96, 64 } },
    { "maxpool3", POOL, { 3, 2 } },
    { "inception4a", INCEPTION, { 480, 192, 96, 208, 16, 48, 64 } },
    { "inception4b", INCEPTION, { 512, 160, 112, 224, 24, 64, 64 } },
    { "inception4c", INCEPTION, { 512, 128, 128, 256, 24, 64, 64 } },
    { "inception4d", INCEPTION, { 512, 112, 144, 288, 32, 64, 64 } },
    { "inception4e", INCEPTION, { 528, 256, 160, 320, 32, 128, 128 } },
    { "maxpool4", POOL, { 2, 2 } },
    { "inception5a", INCEPTION, { 832, 256, 160, 320, 32, 128, 128 } },
    { "inception5b", INCEPTION, { 832, 384, 192, 384, 48, 128, 128 } },
};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))
#define AUX1_AFTER 8  /* inception4a (512 channels) */
#define AUX2_AFTER 11 /* inception4d (528 channels) */

typedef struct {
    tg_module *stage[N_STAGES], *aux1, *aux2, *avgpool, *dropout, *fc;
} googlenet;

static const tg_module_type googlenet_type;

/* x (N, 3, H, W) -> (N, num_classes); *aux1, *aux2 (N, num_classes) in training. */
static tg_tensor *run(googlenet *g, bool training, tg_tensor *x, tg_tensor **aux1, tg_tensor **aux2) {
    for (int i = 0; i < N_STAGES; i++) {
        x = tg_module_forward(g->stage[i], x);
        if (i == AUX1_AFTER && aux1 && g->aux1 && training && !(*aux1 = tg_module_forward(g->aux1, x))) return NULL;
        if (i == AUX2_AFTER && aux2 && g->aux2 && training && !(*aux2 = tg_module_forward(g->aux2, x))) return NULL;
    }
    x = tg_module_forward(g->avgpool, x);
    return tg_module_forward(g->fc, tg_module_forward(g->dropout, x ? tg_flatten(x, 1) : NULL));
}

static tg_tensor *googlenet_forward(tg_module *self, tg_tensor *x) {
    return run(tg_module_data(self), tg_module_is_training(self), x, NULL, NULL);
}

static const tg_module_type googlenet_type = { "GoogLeNet", sizeof(googlenet), googlenet_forward, NULL, NULL, NULL };

tg_tensor *tg_googlenet_forward_aux(tg_module *net, tg_tensor *x, tg_tensor **aux1, tg_tensor **aux2) {
    TG_API_ENTER("tg_googlenet_forward_aux");
    if (aux1) *aux1 = NULL;
    if (aux2) *aux2 = NULL;
    if (!tg_module_is(net, &googlenet_type))
        return tg_error_null(TG_ERR_INVALID, "tg_googlenet_forward_aux: the module is not a GoogLeNet (tg_googlenet_new)");
    if (!x) return NULL;
    tg_tensor *y = run(tg_module_data(net), tg_module_is_training(net), x, aux1, aux2);
    if (!y) {
        if (aux1) *aux1 = NULL;
        if (aux2) *aux2 = NULL;
    }
    return y;
}

static tg_module *stage_new(int i, tg_device *dev) {
    const int64_t *c = stages[i].c;
    switch (stages[i].kind) {
    case CONV: return basic_conv_new(c[0], c[1], c[2], c[3], dev);
    case POOL:
        return tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = c[0], .stride = c[1], .ceil_mode = true });
    case INCEPTION:
        return tg_inception_new(c[0], &(tg_inception_opts){ .ch1x1 = c[1], .ch3x3red = c[2], .ch3x3 = c[3],
                                                            .ch5x5red = c[4], .ch5x5 = c[5], .pool_proj = c[6],
                                                            .branch3_kernel_size = 3 }, dev);
    }
    return NULL;
}

tg_module *tg_googlenet_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_googlenet_new");
    tg_zoo_opts o;
    if (!tg_zoo_check("tg_googlenet_new", "GoogLeNet", num_classes, opts,
                      TG_ZOO_DROPOUT | TG_ZOO_DROPOUT_AUX | TG_ZOO_AUX_LOGITS | TG_ZOO_LAYER_INIT, 0.2, 0.7, &o))
        return NULL;
    tg_module *self = tg_module_new(&googlenet_type);
    if (!self) return NULL;
    googlenet *g = tg_module_data(self);
    for (int i = 0; i < N_STAGES; i++) tg_module_add(self, stages[i].name, &g->stage[i], stage_new(i, dev));
    if (o.aux_logits) {
        tg_module_add(self, "aux1", &g->aux1, aux_new(512, num_classes, o.dropout_aux, dev));
        tg_module_add(self, "aux2", &g->aux2, aux_new(528, num_classes, o.dropout_aux, dev));
    }
    tg_module_add(self, "avgpool", &g->avgpool, tg_adaptive_avg_pool2d_new(1, 1));
    tg_module_add(self, "dropout", &g->dropout, tg_dropout_new(o.dropout));
    tg_module_add(self, "fc", &g->fc, tg_linear_new(1024, num_classes, NULL, dev));
    if (!(self = tg_module_done(self))) return NULL;
    if (o.layer_init || tg_zoo_init(self, TG_ZOO_TRUNC_NORMAL) == TG_OK) return self;
    tg_module_free(self);
    return NULL;
}
