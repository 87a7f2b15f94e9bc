/* LeNet-5 as LeCun et al. 1998 built it (trainable subsampling, C3's partial connection
 * table, the scaled tanh, the paper's init) and its modern form (ReLU, max pooling, full
 * C3). The partial table needs no kernel of its own: grouped convolutions on gathered maps. */
#include <math.h>

#include "lib/models/zoo.h"

/* ------------------------------------------------------------- S2, S4: trainable subsampling */

typedef struct {
    tg_tensor *weight, *bias; /* (C): a coefficient and a bias per map */
} subsampling;

/* x (N, C, H, W) -> (N, C, H/2, W/2) = weight[c] * (the sum of each 2x2 window) + bias[c]. */
static tg_tensor *subsampling_forward(tg_module *self, tg_tensor *x) {
    subsampling *s = tg_module_data(self);
    tg_tensor *sum = tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2, .divisor_override = 1 });
    int64_t c = tg_size(s->weight, 0);
    return tg_add(tg_mul(sum, tg_reshape(s->weight, TG_SHAPE(c, 1, 1))), tg_reshape(s->bias, TG_SHAPE(c, 1, 1)));
}

static const tg_module_type subsampling_type = { "Subsampling", sizeof(subsampling), subsampling_forward, NULL, NULL,
                                                 NULL };

static tg_module *subsampling_new(int64_t c, tg_device *dev) {
    tg_module *self = tg_module_new(&subsampling_type);
    if (!self) return NULL;
    subsampling *s = tg_module_data(self);
    tg_module_param(self, "weight", &s->weight, tg_full(TG_F32, TG_SHAPE(c), 0.25, dev)); /* the mean, until init */
    tg_module_param(self, "bias", &s->bias, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- C3: the partial connection table */

/* Table I of the paper, by groups of C3 maps with the same number of inputs: maps 0-5 see
 * three neighbouring S2 maps, 6-11 four neighbouring ones, 12-14 four others, 15 all six. */
static const struct {
    int maps, inputs;
    int s2[6][6];
} c3_groups[4] = {
    { 6, 3, { { 0, 1, 2 }, { 1, 2, 3 }, { 2, 3, 4 }, { 3, 4, 5 }, { 4, 5, 0 }, { 5, 0, 1 } } },
    { 6, 4, { { 0, 1, 2, 3 }, { 1, 2, 3, 4 }, { 2, 3, 4, 5 }, { 3, 4, 5, 0 }, { 4, 5, 0, 1 }, { 5, 0, 1, 2 } } },
    { 3, 4, { { 0, 1, 3, 4 }, { 1, 2, 4, 5 }, { 0, 2, 3, 5 } } },
    { 1, 6, { { 0, 1, 2, 3, 4, 5 } } },
};

typedef struct {
    tg_module *group[4]; /* Conv2d(maps * inputs, maps, 5, groups = maps) */
} partial_conv;

/* x (N, 6, H, W) -> (N, 16, H - 4, W - 4): each group's convolution over its maps' inputs,
 * gathered in table order, then the groups concatenated (C3 maps 0-15 in order). */
static tg_tensor *partial_conv_forward(tg_module *self, tg_tensor *x) {
    partial_conv *p = tg_module_data(self);
    if (tg_ndim(x) != 4 || tg_size(x, 1) != 6)
        return tg_error_null(TG_ERR_SHAPE, "input has %d axes and %lld channels, expected (N, 6, H, W)", tg_ndim(x),
                             (long long)tg_size(x, 1));
    tg_tensor *maps[6], *outs[4], *in[36];
    for (int c = 0; c < 6; c++) maps[c] = tg_slice(x, 1, c, c + 1, 1);
    for (int g = 0; g < 4; g++) {
        int n = 0;
        for (int m = 0; m < c3_groups[g].maps; m++)
            for (int i = 0; i < c3_groups[g].inputs; i++) in[n++] = maps[c3_groups[g].s2[m][i]];
        if (!(outs[g] = tg_module_forward(p->group[g], tg_cat(n, in, 1)))) return NULL;
    }
    return tg_cat(4, outs, 1);
}

static const tg_module_type partial_conv_type = { "PartialConv2d", sizeof(partial_conv), partial_conv_forward, NULL,
                                                  NULL, NULL };

static tg_module *partial_conv_new(tg_device *dev) {
    tg_module *self = tg_module_new(&partial_conv_type);
    if (!self) return NULL;
    partial_conv *p = tg_module_data(self);
    static const char *const names[4] = { "0", "1", "2", "3" };
    for (int g = 0; g < 4; g++) {
        int64_t maps = c3_groups[g].maps;
        tg_module_add(self, names[g], &p->group[g],
                      tg_conv2d_new(maps * c3_groups[g].inputs, maps, 5, &(tg_conv_layer_opts){ .groups = maps }, dev));
    }
    return tg_module_done(self);
}

/* ------------------------------------------------------------- LeNet-5 */

typedef struct {
    tg_module *c1, *s2, *c3, *s4, *c5, *f6, *output;
} lenet5;

static tg_tensor *squash(tg_tensor *x) { return tg_mul_scalar(tg_tanh(tg_mul_scalar(x, 2.0 / 3.0)), 1.7159); }

/* x (N, 1, 32, 32) -> (N, num_classes). */
static tg_tensor *lenet5_forward(tg_module *self, tg_tensor *x) {
    lenet5 *m = tg_module_data(self);
    tg_module *const layers[] = { m->c1, m->s2, m->c3, m->s4, m->c5 };
    for (int i = 0; i < 5; i++) x = squash(tg_module_forward(layers[i], x));
    x = squash(tg_module_forward(m->f6, x ? tg_flatten(x, 1) : NULL));
    return tg_module_forward(m->output, x);
}

static const tg_module_type lenet5_type = { "LeNet5", sizeof(lenet5), lenet5_forward, NULL, NULL, NULL };

/* The paper's init: every weight and bias U(+-2.4 / F), F the fan-in of its unit (4 for
 * the subsampling coefficients). */
static tg_status paper_init(tg_module *net) {
    tg_named mods;
    tg_status s = tg_module_named_modules(net, &mods);
    if (s != TG_OK) return s;
    for (int i = 0; s == TG_OK && i < mods.n; i++) {
        tg_module *m = mods.modules[i];
        if (tg_module_num_children(m) > 0 || tg_module_num_parameters(m, false) == 0) continue;
        tg_tensor *w = tg_module_get_param(m, "weight"), *b = tg_module_get_param(m, "bias");
        int64_t fan_in = 4, fan_out;
        if (w && tg_ndim(w) >= 2) s = tg_init_fans(w, &fan_in, &fan_out);
        double r = 2.4 / (double)fan_in;
        if (s == TG_OK) s = w && b ? tg_init_uniform_(w, -r, r) : TG_ERR_INVALID;
        if (s == TG_OK) s = tg_init_uniform_(b, -r, r);
    }
    tg_named_free(&mods);
    return s;
}

/* PyTorch's default for a subsampling layer as for a Linear of fan-in 4: U(+-1/2). */
static tg_status subsampling_layer_init(tg_module *net) {
    static const char *const p[] = { "s2.weight", "s2.bias", "s4.weight", "s4.bias" };
    tg_status s = TG_OK;
    for (int i = 0; s == TG_OK && i < 4; i++) s = tg_init_uniform_(tg_module_get_param(net, p[i]), -0.5, 0.5);
    return s;
}

tg_module *tg_lenet5_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_lenet5_new");
    tg_zoo_opts o;
    if (!tg_zoo_check("tg_lenet5_new", "LeNet-5", num_classes, opts, TG_ZOO_LAYER_INIT, 0, 0, &o)) return NULL;
    tg_module *self = tg_module_new(&lenet5_type);
    if (!self) return NULL;
    lenet5 *m = tg_module_data(self);
    tg_module_add(self, "c1", &m->c1, tg_conv2d_new(1, 6, 5, NULL, dev));
    tg_module_add(self, "s2", &m->s2, subsampling_new(6, dev));
    tg_module_add(self, "c3", &m->c3, partial_conv_new(dev));
    tg_module_add(self, "s4", &m->s4, subsampling_new(16, dev));
    tg_module_add(self, "c5", &m->c5, tg_conv2d_new(16, 120, 5, NULL, dev));
    tg_module_add(self, "f6", &m->f6, tg_linear_new(120, 84, NULL, dev));
    tg_module_add(self, "output", &m->output, tg_linear_new(84, num_classes, NULL, dev));
    if (!(self = tg_module_done(self))) return NULL;
    if ((o.layer_init ? subsampling_layer_init(self) : paper_init(self)) == TG_OK) return self;
    tg_module_free(self);
    return NULL;
}

tg_module *tg_lenet5_modern_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_lenet5_modern_new");
    tg_zoo_opts o;
    if (!tg_zoo_check("tg_lenet5_modern_new", "the modern LeNet-5", num_classes, opts, TG_ZOO_BATCH_NORM, 0, 0, &o))
        return NULL;
    tg_module *layers[16];
    int n = 0;
    static const int64_t chans[4] = { 1, 6, 16, 120 };
    for (int i = 0; i < 3; i++) {
        layers[n++] = tg_conv2d_new(chans[i], chans[i + 1], 5, NULL, dev);
        if (o.batch_norm) layers[n++] = tg_batchnorm2d_new(chans[i + 1], NULL, dev);
        layers[n++] = tg_relu_new();
        if (i < 2) layers[n++] = tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 });
    }
    layers[n++] = tg_flatten_new(1, -1);
    layers[n++] = tg_linear_new(120, 84, NULL, dev);
    layers[n++] = tg_relu_new();
    layers[n++] = tg_linear_new(84, num_classes, NULL, dev);
    return tg_sequential_new(n, layers);
}
