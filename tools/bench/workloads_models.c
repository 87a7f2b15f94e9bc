/* The model workloads: training steps (forward, cross-entropy, backward, optimizer step)
 * of the MLP, the notes' CNN, LeNet-5, ResNet-20 and an LSTM, and inference forwards of
 * VGG-16, ResNet-50 and ResNet-20. FLOPs: the forward's multiply-adds (tg_summary's
 * count, 2 FLOPs each) and, for a training step, three times the forward's, the usual
 * convention (the backward computes two products for each of the forward's). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct {
    const char *name;
    tg_module *(*build)(tg_device *dev);
    int64_t shape[4]; /* one sample's input shape (C,H,W) or (features); LSTM: (T, I) */
    int rank;
    int64_t classes;
    bool adam;        /* Adam (else SGD with momentum) */
    double macs;      /* forward multiply-adds of one sample */
} model_desc;

typedef struct {
    const model_desc *d;
    tg_module *m;
    tg_optim *opt;
    tg_tensor *x, *y;
    bool train;
} model_state;

/* ---------------------------------------------------------------- models built here */

static tg_module *build_mlp(tg_device *dev) {
    return tg_sequential(tg_flatten_new(1, -1), tg_linear_new(784, 256, NULL, dev), tg_relu_new(),
                         tg_linear_new(256, 10, NULL, dev));
}

/* The notes' CNN: two conv5x5-BN-ReLU-maxpool blocks, then a linear layer. */
static tg_module *build_cnn(tg_device *dev) {
    const tg_conv_layer_opts pad2 = { .padding = 2 };
    const tg_max_pool2d_opts pool = { .kernel_size = 2 };
    return tg_sequential(tg_conv2d_new(1, 16, 5, &pad2, dev), tg_batchnorm2d_new(16, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&pool), tg_conv2d_new(16, 32, 5, &pad2, dev),
                         tg_batchnorm2d_new(32, NULL, dev), tg_relu_new(), tg_max_pool2d_new(&pool),
                         tg_flatten_new(1, -1), tg_linear_new(7 * 7 * 32, 10, NULL, dev));
}

static tg_module *build_lstm(tg_device *dev) { return tg_lstm_new(64, 256, NULL, dev); }

/* ---------------------------------------------------------------- models from the zoo */

static tg_module *build_lenet5(tg_device *dev) { return tg_lenet5_new(10, NULL, dev); }
static tg_module *build_resnet20(tg_device *dev) { return tg_resnet_cifar_new(20, 10, NULL, dev); }
/* The layers' own init: the values do not change the work, torchvision's init only costs time. */
static tg_module *build_vgg16(tg_device *dev) { return tg_vgg_new(TG_VGG16, 1000, &(tg_model_opts){ .layer_init = true }, dev); }
static tg_module *build_resnet50(tg_device *dev) { return tg_resnet_new(50, 1000, &(tg_model_opts){ .layer_init = true }, dev); }

/* Each with its forward's multiply-adds for one sample as tg_summary counts them,
 * written out so that listing the suite builds no model. */
static const model_desc models[] = {
    { "mlp", build_mlp, { 1, 28, 28 }, 3, 10, false, 784.0 * 256 + 256.0 * 10 },
    { "cnn", build_cnn, { 1, 28, 28 }, 3, 10, true, 28.0 * 28 * 25 * 16 + 14.0 * 14 * 25 * 16 * 32 + 1568.0 * 10 },
    { "lstm", build_lstm, { 35, 64 }, 2, 0, false, 4.0 * 256 * (35 * 64 + 34 * 256) }, /* h0 = 0: no recurrent product at step 0 */
    { "lenet5", build_lenet5, { 1, 32, 32 }, 3, 10, false, 326520 },
    { "resnet20", build_resnet20, { 3, 32, 32 }, 3, 10, false, 40551040 },
    { "vgg16", build_vgg16, { 3, 224, 224 }, 3, 1000, false, 15470264320.0 },
    { "resnet50", build_resnet50, { 3, 224, 224 }, 3, 1000, false, 4089184256.0 },
};

/* ---------------------------------------------------------------- one step */

static void model_teardown(void *p) {
    model_state *s = p;
    if (!s) return;
    tg_optim_free(s->opt);
    tg_module_free(s->m);
    tg_release(s->x);
    tg_release(s->y);
    free(s);
}

/* The input batch: (B, shape...) images, or (T, B, I) for the LSTM. */
static tg_tensor *make_input(const model_desc *d, int64_t batch, tg_device *dev) {
    if (d->classes == 0) return tg_randn(TG_F32, TG_SHAPE(d->shape[0], batch, d->shape[1]), dev);
    int64_t dims[5] = { batch };
    for (int i = 0; i < d->rank; i++) dims[i + 1] = d->shape[i];
    return tg_randn(TG_F32, (tg_shape){ .ndim = d->rank + 1, .dims = { dims[0], dims[1], dims[2], dims[3] } }, dev);
}

/* Labels 0, 1, ..., classes-1, 0, 1, ...: the values do not change the work. */
static tg_tensor *random_labels(int64_t batch, int64_t classes, tg_device *dev) {
    int64_t *lab = malloc((size_t)batch * sizeof *lab);
    if (!lab) return NULL;
    for (int64_t i = 0; i < batch; i++) lab[i] = i % classes;
    tg_tensor *t = tg_from_i64(lab, TG_SHAPE(batch), dev);
    free(lab);
    return t;
}

static void *model_setup(const bench_workload *w, tg_device *dev) {
    model_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->d = &models[w->p[0]];
    s->train = w->p[2];
    int64_t batch = w->p[1];
    tg_scope_begin();
    s->m = s->d->build(dev);
    s->x = tg_retain(make_input(s->d, batch, dev));
    if (s->d->classes) s->y = tg_retain(random_labels(batch, s->d->classes, dev));
    tg_scope_end();
    if (!s->m || !s->x || (s->d->classes && !s->y)) goto fail;
    tg_module_train(s->m, s->train);
    if (s->train) {
        tg_named p;
        if (tg_module_parameters(s->m, true, &p) != TG_OK) goto fail;
        s->opt = s->d->adam ? tg_adam_new(p.n, p.tensors, NULL)
                            : tg_sgd_new(p.n, p.tensors, &(tg_sgd_opts){ .lr = TG_SOME(0.01), .momentum = 0.9 });
        tg_named_free(&p);
        if (!s->opt) goto fail;
    }
    return s;
fail:
    model_teardown(s);
    return NULL;
}

static bool model_run(void *p) {
    model_state *s = p;
    if (!s->train) {
        bool prev = tg_set_grad_enabled(false);
        tg_tensor *out = tg_module_forward(s->m, s->x);
        tg_set_grad_enabled(prev);
        return out != NULL;
    }
    tg_tensor *out = tg_module_forward(s->m, s->x);
    tg_tensor *loss = s->d->classes ? tg_cross_entropy(out, s->y) : tg_mean(tg_square(out), TG_ALL, false);
    tg_optim_zero_grad(s->opt);
    return loss && tg_backward(loss) == TG_OK && tg_optim_step(s->opt) == TG_OK;
}

/* ---------------------------------------------------------------- the list */

int bench_model_workloads(bench_workload *list, int max) {
    static const struct {
        const char *model;
        int64_t batch;
        bool train, quick;
    } plan[] = {
        { "mlp", 64, true, true },        { "cnn", 64, true, true },        { "lenet5", 64, true, false },
        { "resnet20", 64, true, false },  { "lstm", 32, true, false },      { "resnet20", 64, false, true },
        { "vgg16", 1, false, false },     { "vgg16", 32, false, false },    { "resnet50", 1, false, false },
        { "resnet50", 32, false, false },
    };
    int n = 0;
    for (int i = 0; i < (int)(sizeof plan / sizeof *plan) && n < max; i++) {
        int m = 0;
        while (strcmp(models[m].name, plan[i].model)) m++;
        double flops = 2.0 * models[m].macs * (double)plan[i].batch * (plan[i].train ? 3 : 1);
        bench_workload w = { .group = plan[i].train ? "train" : "forward",
                             .work = { .flops = flops, .images = models[m].classes ? (double)plan[i].batch : 0 },
                             .quick = plan[i].quick, .setup = model_setup, .run = model_run, .teardown = model_teardown,
                             .p = { m, plan[i].batch, plan[i].train } };
        snprintf(w.name, sizeof w.name, "%s %s b%lld", plan[i].train ? "train" : "forward", plan[i].model,
                 (long long)plan[i].batch);
        snprintf(w.spec, sizeof w.spec, "\"kind\": \"model\", \"model\": \"%s\", \"batch\": %lld, \"train\": %s",
                 plan[i].model, (long long)plan[i].batch, plan[i].train ? "true" : "false");
        list[n++] = w;
    }
    return n;
}
