/* What the zoo's constructors share: option checking, the models' weight initialisation
 * over a module tree, and the "features, avgpool, classifier" module of AlexNet and VGG.
 * Internal to lib/models. */
#ifndef TG_MODELS_ZOO_H
#define TG_MODELS_ZOO_H

#include "tapegrad.h"
#include "lib/graph/error.h"

/* The options a model has (the others must be left zero). */
enum {
    TG_ZOO_BATCH_NORM = 1 << 0,
    TG_ZOO_DROPOUT = 1 << 1,
    TG_ZOO_DROPOUT_AUX = 1 << 2,
    TG_ZOO_AUX_LOGITS = 1 << 3,
    TG_ZOO_ZERO_INIT_RESIDUAL = 1 << 4,
    TG_ZOO_PROJECTION = 1 << 5,
    TG_ZOO_LAYER_INIT = 1 << 6,
};

/* The resolved options: the defaults filled in. */
typedef struct {
    bool batch_norm, aux_logits, zero_init_residual, projection, layer_init;
    double dropout, dropout_aux;
} tg_zoo_opts;

/* Checks num_classes and opts against what model (its name in messages) has; fills out
 * with the defaults dropout and dropout_aux given. False with a message naming api. */
bool tg_zoo_check(const char *api, const char *model, int64_t num_classes, const tg_model_opts *opts, unsigned has,
                  double dropout, double dropout_aux, tg_zoo_opts *out);

/* What tg_zoo_init does to the weights and biases of the Conv2d, Linear and BatchNorm2d
 * modules of a tree (BN: weight 1, bias 0 always). */
typedef enum {
    TG_ZOO_KAIMING_FAN_OUT, /* convs kaiming_normal(fan_out, relu), bias 0; Linear N(0, 0.01), bias 0 (VGG) */
    TG_ZOO_RESNET,          /* convs kaiming_normal(fan_out, relu); Linear left as it is */
    TG_ZOO_TRUNC_NORMAL,    /* conv and Linear weights trunc_normal(0, 0.01, [-2, 2]) (GoogLeNet) */
} tg_zoo_init_kind;
tg_status tg_zoo_init(tg_module *m, tg_zoo_init_kind kind);
/* Sets the parameter at path (a dotted path from m) to a constant. */
tg_status tg_zoo_fill(tg_module *m, const char *path, double value);

/* A module of children features, avgpool (optional) and classifier: forward is
 * classifier(flatten(avgpool(features(x)))). Takes the three children (a NULL avgpool
 * means none). */
tg_module *tg_zoo_head_model(const char *type_name, tg_module *features, tg_module *avgpool, tg_module *classifier);

#endif
