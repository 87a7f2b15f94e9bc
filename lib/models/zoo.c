/* The zoo's shared parts: one option check for every constructor (so a field a model
 * lacks is an error, not silently ignored), the torchvision initialisations as walks
 * over the module tree, and the features/avgpool/classifier model of AlexNet and VGG. */
#include <string.h>

#include "lib/models/zoo.h"

static const struct {
    unsigned bit;
    const char *name;
} option_names[] = {
    { TG_ZOO_BATCH_NORM, "batch_norm" },   { TG_ZOO_DROPOUT, "dropout" },
    { TG_ZOO_DROPOUT_AUX, "dropout_aux" }, { TG_ZOO_AUX_LOGITS, "aux_logits" },
    { TG_ZOO_ZERO_INIT_RESIDUAL, "zero_init_residual" }, { TG_ZOO_PROJECTION, "projection_shortcut" },
    { TG_ZOO_LAYER_INIT, "layer_init" },
};

static unsigned options_set(const tg_model_opts *o) {
    return (o->batch_norm ? TG_ZOO_BATCH_NORM : 0) | (o->dropout.set ? TG_ZOO_DROPOUT : 0) |
           (o->dropout_aux.set ? TG_ZOO_DROPOUT_AUX : 0) | (o->aux_logits.set ? TG_ZOO_AUX_LOGITS : 0) |
           (o->zero_init_residual ? TG_ZOO_ZERO_INIT_RESIDUAL : 0) |
           (o->projection_shortcut ? TG_ZOO_PROJECTION : 0) | (o->layer_init ? TG_ZOO_LAYER_INIT : 0);
}

bool tg_zoo_check(const char *api, const char *model, int64_t num_classes, const tg_model_opts *opts, unsigned has,
                  double dropout, double dropout_aux, tg_zoo_opts *out) {
    const tg_model_opts o = opts ? *opts : (tg_model_opts){ 0 };
    if (num_classes < 1) {
        tg_error(TG_ERR_INVALID, "%s: num_classes must be >= 1, got %lld", api, (long long)num_classes);
        return false;
    }
    unsigned extra = options_set(&o) & ~has;
    for (size_t i = 0; extra && i < sizeof option_names / sizeof option_names[0]; i++)
        if (extra & option_names[i].bit) {
            tg_error(TG_ERR_INVALID, "%s: %s has no option %s", api, model, option_names[i].name);
            return false;
        }
    *out = (tg_zoo_opts){ .batch_norm = o.batch_norm, .aux_logits = !o.aux_logits.set || o.aux_logits.value,
                          .zero_init_residual = o.zero_init_residual, .projection = o.projection_shortcut,
                          .layer_init = o.layer_init, .dropout = o.dropout.set ? o.dropout.value : dropout,
                          .dropout_aux = o.dropout_aux.set ? o.dropout_aux.value : dropout_aux };
    if (!(out->dropout >= 0 && out->dropout <= 1) || !(out->dropout_aux >= 0 && out->dropout_aux <= 1)) {
        tg_error(TG_ERR_INVALID, "%s: dropout and dropout_aux must be in [0, 1], got %g and %g", api, out->dropout,
                 out->dropout_aux);
        return false;
    }
    return true;
}

static tg_status init_one(tg_module *m, const char *type, tg_zoo_init_kind kind) {
    tg_error_saved e; /* a bias-free conv, a BN without affine: not errors here */
    tg_error_save(&e);
    tg_tensor *w = tg_module_get_param(m, "weight"), *b = tg_module_get_param(m, "bias");
    tg_error_restore(&e);
    if (!w) return TG_OK;
    tg_status s = TG_OK;
    if (!strcmp(type, "BatchNorm2d")) {
        s = tg_init_ones_(w);
        return s == TG_OK && b ? tg_init_zeros_(b) : s;
    }
    if (kind == TG_ZOO_TRUNC_NORMAL) return tg_init_trunc_normal_(w, 0, 0.01, -2, 2);
    if (!strcmp(type, "Conv2d")) {
        s = tg_init_kaiming_normal_(w, &(tg_kaiming_opts){ .mode = TG_FAN_OUT, .nonlinearity = TG_NONLINEARITY_RELU });
        return s == TG_OK && b && kind == TG_ZOO_KAIMING_FAN_OUT ? tg_init_zeros_(b) : s;
    }
    if (kind == TG_ZOO_RESNET) return TG_OK;
    s = tg_init_normal_(w, 0, 0.01);
    return s == TG_OK && b ? tg_init_zeros_(b) : s;
}

tg_status tg_zoo_init(tg_module *m, tg_zoo_init_kind kind) {
    tg_named mods;
    tg_status s = tg_module_named_modules(m, &mods);
    if (s != TG_OK) return s;
    for (int i = 0; s == TG_OK && i < mods.n; i++) {
        const char *type = tg_module_type_of(mods.modules[i])->name;
        if (!strcmp(type, "Conv2d") || !strcmp(type, "Linear") || !strcmp(type, "BatchNorm2d"))
            s = init_one(mods.modules[i], type, kind);
    }
    tg_named_free(&mods);
    return s;
}

tg_status tg_zoo_fill(tg_module *m, const char *path, double value) {
    tg_tensor *t = tg_module_get_param(m, path);
    return t ? tg_init_constant_(t, value) : tg_last_status();
}

/* ------------------------------------------------------------- features, avgpool, classifier */

typedef struct {
    tg_module *features, *avgpool, *classifier;
} head_model;

/* x (N, 3, H, W) -> (N, num_classes). */
static tg_tensor *head_forward(tg_module *self, tg_tensor *x) {
    head_model *h = tg_module_data(self);
    x = tg_module_forward(h->features, x);
    if (h->avgpool) x = tg_module_forward(h->avgpool, x);
    return tg_module_forward(h->classifier, x ? tg_flatten(x, 1) : NULL);
}

static const tg_module_type alexnet_type = { "AlexNet", sizeof(head_model), head_forward, NULL, NULL, NULL };
static const tg_module_type vgg_type = { "VGG", sizeof(head_model), head_forward, NULL, NULL, NULL };

tg_module *tg_zoo_head_model(const char *type_name, tg_module *features, tg_module *avgpool, tg_module *classifier) {
    tg_module *self = tg_module_new(!strcmp(type_name, "VGG") ? &vgg_type : &alexnet_type);
    if (!self) {
        tg_module_free(features), tg_module_free(avgpool), tg_module_free(classifier);
        return NULL;
    }
    head_model *h = tg_module_data(self);
    tg_module_add(self, "features", &h->features, features);
    if (avgpool) tg_module_add(self, "avgpool", &h->avgpool, avgpool);
    tg_module_add(self, "classifier", &h->classifier, classifier);
    return tg_module_done(self);
}
