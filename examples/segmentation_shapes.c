/* Semantic segmentation of synthetic shapes with a deconvolution network in the notes'
 * style: down-sampling by max pooling (its indices kept) and by a strided convolution,
 * up-sampling by a transposed convolution and by max-unpooling with the saved indices,
 * per-pixel cross-entropy over 4 classes (background, rectangle, disc, triangle).
 *
 *     build/examples/segmentation_shapes [--steps N] [--batch B] [--lr X] [--seed S]
 *         [--device NAME] [--min-miou M]
 *
 * Generates its own 32x32 images (1 to 3 shapes on noise, examples/shapes.h), trains
 * with Adam, and prints per-class and mean IoU on held-out images; exit 1 on a library
 * error or a mean IoU below --min-miou. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "shapes.h"

#define CLASSES (SHAPE_KINDS + 1)
#define PIXELS (SHAPE_SIZE * SHAPE_SIZE)

typedef struct {
    shapes_train_opts t;
    double min_miou;
} options;

static void parse(int argc, char **argv, options *o) {
    const char *p = "segmentation_shapes";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (shapes_train_flag(p, a, v, &o->t)) i++;
        else if (!strcmp(a, "--min-miou")) o->min_miou = shapes_arg(p, a, v, 0, 1), i++;
        else {
            fprintf(stderr, "usage: %s [--steps N] [--batch B] [--lr X] [--seed S] [--device NAME] [--min-miou M]\n",
                    p);
            exit(strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0);
        }
    }
}

/* ------------------------------------------------------------- data */

typedef struct {
    tg_tensor *x;      /* (n, 1, 32, 32) f32 */
    tg_tensor *labels; /* (n, 32, 32) i64, 0 background, 1..3 the shape painted last */
} seg_set;

static bool make_set(int64_t n, uint64_t seed, tg_device *dev, seg_set *out) {
    float *img = calloc((size_t)(n * PIXELS), sizeof *img);
    int64_t *mask = calloc((size_t)(n * PIXELS), sizeof *mask);
    if (!img || !mask) {
        free(img);
        free(mask);
        return false;
    }
    uint64_t rng = seed;
    for (int64_t i = 0; i < n; i++)
        for (int s = 0, count = shapes_int(&rng, 1, 3); s < count; s++) {
            float box[4];
            shapes_draw(&rng, shapes_int(&rng, 1, SHAPE_KINDS), img + i * PIXELS, mask + i * PIXELS, box);
        }
    shapes_noise(&rng, img, n, 0.2);
    out->x = tg_from_f32(img, TG_SHAPE(n, 1, SHAPE_SIZE, SHAPE_SIZE), dev);
    out->labels = tg_from_i64(mask, TG_SHAPE(n, SHAPE_SIZE, SHAPE_SIZE), dev);
    free(img);
    free(mask);
    return out->x && out->labels;
}

/* ------------------------------------------------------------- the network */

typedef struct {
    tg_module *enc1, *enc2, *down, *mid, *up, *dec2, *dec1, *head;
} deconvnet;

/* x (B, 1, 32, 32) -> logits (B, 4, 32, 32) */
static tg_tensor *deconvnet_forward(tg_module *self, tg_tensor *x) {
    deconvnet *m = tg_module_data(self);
    tg_tensor *idx = NULL;
    tg_tensor *h = tg_module_forward(m->enc1, x);                                           /* (B, 16, 32, 32) */
    h = tg_max_pool2d_with_indices(h, &(tg_max_pool2d_opts){ .kernel_size = 2 }, &idx);      /* (B, 16, 16, 16) */
    h = tg_module_forward(m->down, tg_module_forward(m->enc2, h));                           /* (B, 32, 8, 8) */
    h = tg_module_forward(m->up, tg_module_forward(m->mid, h));                              /* (B, 16, 16, 16) */
    h = tg_module_forward(m->dec2, h);
    h = tg_max_unpool2d(h, idx, &(tg_max_unpool2d_opts){ .kernel_size = 2 });               /* (B, 16, 32, 32) */
    return tg_module_forward(m->head, tg_module_forward(m->dec1, h));
}

static const tg_module_type deconvnet_type = { "DeconvNet", sizeof(deconvnet), deconvnet_forward, NULL, NULL, NULL };

/* conv k x k (stride s, "same" padding), BatchNorm2d, ReLU */
static tg_module *conv_bn_relu(int64_t in, int64_t out, int64_t k, int64_t stride, tg_device *dev) {
    return tg_sequential(tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .stride = stride, .padding = k / 2 }, dev),
                         tg_batchnorm2d_new(out, NULL, dev), tg_relu_new());
}

static tg_module *deconvnet_new(tg_device *dev) {
    tg_module *self = tg_module_new(&deconvnet_type);
    if (!self) return NULL;
    deconvnet *m = tg_module_data(self);
    tg_module_add(self, "enc1", &m->enc1, conv_bn_relu(1, 16, 3, 1, dev));
    tg_module_add(self, "enc2", &m->enc2, conv_bn_relu(16, 32, 3, 1, dev));
    tg_module_add(self, "down", &m->down, conv_bn_relu(32, 32, 3, 2, dev)); /* strided: 16 -> 8 */
    tg_module_add(self, "mid", &m->mid, conv_bn_relu(32, 32, 3, 1, dev));
    tg_module_add(self, "up", &m->up, tg_sequential(tg_conv_transpose2d_new(32, 16, 2, &(tg_conv_layer_opts){ .stride = 2 },
                                                                            dev),
                                                    tg_batchnorm2d_new(16, NULL, dev), tg_relu_new())); /* 8 -> 16 */
    tg_module_add(self, "dec2", &m->dec2, conv_bn_relu(16, 16, 3, 1, dev));
    tg_module_add(self, "dec1", &m->dec1, conv_bn_relu(16, 16, 3, 1, dev));
    tg_module_add(self, "head", &m->head, tg_conv2d_new(16, CLASSES, 1, NULL, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- train and evaluate */

/* One Adam step on images [off, off + b) of the set; the loss, NaN on error. */
static double train_step(tg_module *net, tg_optim *opt, const seg_set *s, int64_t off, int64_t b) {
    tg_scope_begin();
    tg_tensor *x = tg_slice(s->x, 0, off, off + b, 1), *y = tg_slice(s->labels, 0, off, off + b, 1);
    tg_tensor *loss = tg_cross_entropy_loss(tg_module_forward(net, x), y, NULL); /* per pixel, mean */
    double l = tg_item(loss);
    tg_optim_zero_grad(opt);
    if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK) l = NAN;
    tg_scope_end();
    return l;
}

/* Per-class IoU over the set (eval mode): inter[c] / union[c] from the confusion of
 * predicted (argmax) and true labels. false on error. */
static bool evaluate(tg_module *net, const seg_set *s, double iou[CLASSES]) {
    const int64_t n = tg_size(s->x, 0), bs = 100;
    int64_t *pred = malloc((size_t)(bs * PIXELS) * sizeof *pred), *truth = malloc((size_t)(bs * PIXELS) * sizeof *truth);
    double inter[CLASSES] = { 0 }, uni[CLASSES] = { 0 };
    bool ok = pred && truth, prev = tg_set_grad_enabled(false);
    tg_module_eval(net);
    for (int64_t off = 0; off < n && ok; off += bs) {
        int64_t b = n - off < bs ? n - off : bs;
        tg_scope_begin();
        tg_tensor *p = tg_argmax(tg_module_forward(net, tg_slice(s->x, 0, off, off + b, 1)), 1, false);
        ok = p && tg_copy_to_host(p, pred, (size_t)(b * PIXELS) * sizeof *pred) == TG_OK &&
             tg_copy_to_host(tg_slice(s->labels, 0, off, off + b, 1), truth, (size_t)(b * PIXELS) * sizeof *truth) == TG_OK;
        tg_scope_end();
        for (int64_t i = 0; ok && i < b * PIXELS; i++) {
            inter[pred[i]] += pred[i] == truth[i];
            uni[pred[i]] += 1;
            uni[truth[i]] += pred[i] != truth[i];
        }
    }
    for (int c = 0; c < CLASSES; c++) iou[c] = uni[c] > 0 ? inter[c] / uni[c] : NAN;
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    free(pred);
    free(truth);
    return ok;
}

int main(int argc, char **argv) {
    options o = { .t = { .steps = 300, .batch = 16, .seed = 1, .lr = 3e-3 } };
    parse(argc, argv, &o);
    tg_device *dev = tg_device_get(o.t.device);
    seg_set train = { 0 }, test = { 0 };
    int64_t ntrain = o.t.steps * o.t.batch < 4000 ? o.t.steps * o.t.batch : 4000, ntest = 200;
    tg_manual_seed((uint64_t)o.t.seed);
    double t0 = shapes_now_s();
    if (!dev || !make_set(ntrain, (uint64_t)o.t.seed, dev, &train) || !make_set(ntest, (uint64_t)o.t.seed + 7777, dev, &test)) {
        fprintf(stderr, "segmentation_shapes: %s\n", *tg_last_error() ? tg_last_error() : "out of memory");
        return 1;
    }
    tg_module *net = deconvnet_new(dev);
    tg_optim *opt = net ? shapes_adam(net, o.t.lr) : NULL;
    if (!opt) {
        fprintf(stderr, "segmentation_shapes: %s\n", tg_last_error());
        return 1;
    }
    printf("device %s, %lld training and %lld held-out 32x32 images, %lld parameters, %lld Adam steps of %lld\n",
           tg_device_name(dev), (long long)ntrain, (long long)ntest, (long long)tg_module_num_parameters(net, true),
           (long long)o.t.steps, (long long)o.t.batch);
    double run = 0;
    for (int64_t step = 0; step < o.t.steps; step++) {
        int64_t b = o.t.batch < ntrain ? o.t.batch : ntrain, off = step * b % (ntrain - b + 1);
        double l = train_step(net, opt, &train, off, b);
        if (isnan(l)) {
            fprintf(stderr, "segmentation_shapes: step %lld: %s\n", (long long)step + 1,
                    *tg_last_error() ? tg_last_error() : "the loss is NaN");
            return 1;
        }
        run = step ? 0.9 * run + 0.1 * l : l;
        if ((step + 1) % 50 == 0) printf("step %4lld  loss %.4f  %.1f s\n", (long long)step + 1, run, shapes_now_s() - t0);
    }
    double iou[CLASSES], mean = 0;
    if (!evaluate(net, &test, iou)) {
        fprintf(stderr, "segmentation_shapes: %s\n", tg_last_error());
        return 1;
    }
    printf("\n%-12s %s\n", "class", "IoU (held-out)");
    for (int c = 0; c < CLASSES; c++) {
        printf("%-12s %.3f\n", k_shape_names[c], iou[c]);
        mean += iou[c] / CLASSES;
    }
    printf("%-12s %.3f\n(%.1f s in all)\n", "mean IoU", mean, shapes_now_s() - t0);
    tg_optim_free(opt);
    tg_module_free(net);
    if (!(mean >= o.min_miou)) {
        fprintf(stderr, "segmentation_shapes: mean IoU %.3f is below --min-miou %g\n", mean, o.min_miou);
        return 1;
    }
    return 0;
}
