/* The module tree: what registration records, for module.c, state_dict.c and the
 * layers. Everything a module does (names, state dicts, devices, modes) is derived
 * from these lists, never re-listed by a layer. */
#ifndef TG_NN_MODULE_IMPL_H
#define TG_NN_MODULE_IMPL_H

#include <stddef.h>

#include "tapegrad/nn.h"
#include "lib/graph/error.h"

typedef struct {
    char *name;
    tg_tensor *t;      /* an owned reference */
    tg_tensor **slot;  /* in the module's data, or NULL */
} tg_nn_entry;

typedef struct {
    char *name;
    tg_module *m;      /* owned */
    tg_module **slot;
} tg_nn_child;

typedef struct {
    int id;
    tg_forward_pre_hook pre; /* one of pre and post is set */
    tg_forward_hook post;
    void *ctx;
} tg_nn_hook;

#define TG_NN_LIST(type) struct { int n, cap; type *v; }

struct tg_module {
    const tg_module_type *type;
    tg_module *parent;
    char *name;                 /* in the parent; "" for a root */
    bool training;
    tg_status failed;           /* the first registration failure, for tg_module_done */
    char *failed_msg;
    TG_NN_LIST(tg_nn_entry) params;
    TG_NN_LIST(tg_nn_entry) buffers;
    TG_NN_LIST(tg_nn_child) children;
    TG_NN_LIST(tg_nn_hook) hooks;
    int next_hook_id;
    max_align_t data[];         /* type->data_size bytes */
};

/* Grows a TG_NN_LIST by one; false when memory runs out. */
bool tg_nn_grow(void **v, int *cap, int n, size_t elsize);
#define TG_NN_PUSH(list) tg_nn_grow((void **)&(list).v, &(list).cap, (list).n, sizeof *(list).v)

/* A module's own entry by name, or NULL. */
tg_nn_entry *tg_nn_find_entry(const tg_module *m, const char *name, bool buffer);
/* "[2,5]" into buf. */
const char *tg_nn_shape_str(char *buf, size_t size, const tg_tensor *t);
/* The dotted path from the root to m ("" for a root) into buf. */
const char *tg_nn_path(char *buf, size_t size, const tg_module *m);
char *tg_nn_strdup(const char *s);
/* A 0-d tensor of value v; integer ones are uploaded rather than filled (the OpenCL
 * fill kernels do not build for i64 on PoCL 3.1). */
tg_tensor *tg_nn_scalar(tg_dtype dtype, double v, tg_device *dev);

/* relu(bn(x)) for a BatchNorm bn, then relu (a ReLU module, or NULL for tg_relu): one
 * fused batch norm op (tg_batch_norm_opts.relu) where neither module has hooks, else the
 * two forwards (norm_layers.c). Any other bn runs as tg_module_forward, then the relu. */
tg_tensor *tg_nn_bn_relu(tg_module *bn, tg_module *relu, tg_tensor *x);
/* relu(bn(x) + residual) the same way (tg_batch_norm_opts.residual): ResNet's block end. */
tg_tensor *tg_nn_bn_add_relu(tg_module *bn, tg_tensor *x, tg_tensor *residual);
/* Where bn is a BatchNorm2d in eval mode with running statistics of `channels` values
 * of dtype, and no hooks: fills o->bn with them and returns true (norm_layers.c). */
bool tg_nn_bn_eval_epilogue(const tg_module *bn, int64_t channels, tg_dtype dtype, tg_conv2d_opts *o);
/* relu?(bn(conv(x)) + residual) (bn NULL: none; residual NULL: none): the conv's own
 * epilogue (tg_conv2d_opts.bn, .residual, .relu) where conv is a Conv2d without hooks
 * and bn is NULL or as tg_nn_bn_eval_epilogue takes it, so that inference with grad
 * mode off runs one pass where it ran two or three; else the modules one by one
 * (conv_layers.c). */
tg_tensor *tg_nn_conv_bn(tg_module *conv, tg_module *bn, tg_tensor *x, tg_tensor *residual, bool relu);
/* Whether tg_nn_conv_bn fuses conv and bn (NULL: none). */
bool tg_nn_conv_bn_fuses(const tg_module *conv, const tg_module *bn);
bool tg_nn_is_relu(const tg_module *m);      /* a ReLU module (layers.c) */
bool tg_nn_is_batchnorm(const tg_module *m); /* a BatchNorm1d or 2d (norm_layers.c) */

/* What tg_nn_collect lists: parameters (each tied one once), trainable ones, buffers,
 * modules, or the state (parameters then buffers per module, tied ones under every name). */
typedef enum { TG_NN_PARAMS, TG_NN_TRAINABLE, TG_NN_BUFFERS, TG_NN_MODULES, TG_NN_STATE } tg_nn_want;
tg_status tg_nn_collect(const tg_module *m, const char *api, tg_nn_want what, tg_named *out);

#endif
