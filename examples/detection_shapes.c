/* Localisation and detection of synthetic shapes, one object per image: a small CNN
 * backbone, a classifier head and a box-regression head trained with the multi-task
 * loss cross-entropy + lambda * smooth L1 (Fast R-CNN's), and a second stage that
 * classifies box proposals from ROI-aligned (or ROI-pooled) backbone features, with
 * non-maximum suppression over the proposals at test time.
 *
 *     build/examples/detection_shapes [--steps N] [--batch B] [--lr X] [--lambda L]
 *         [--seed S] [--device NAME] [--roi-pool] [--min-accuracy A] [--min-box-accuracy A]
 *
 * Generates its own 32x32 images (examples/shapes.h) and prints, for held-out images,
 * the classification accuracy, the box accuracy (IoU > 0.5 with the truth) and the mean
 * IoU of both stages; exit 1 on a library error or when the first stage's accuracies
 * are below the --min-* thresholds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "shapes.h"

#define PIXELS (SHAPE_SIZE * SHAPE_SIZE)
#define STRIDE 4      /* the backbone's features are (B, 32, 8, 8) */
#define FEAT 32
#define ROI_OUT 4     /* ROI features: (K, 32, 4, 4) */
#define PROPOSALS 4   /* per training image, jittered around the truth */
#define TEST_PROPOSALS 9
#define BACKGROUND SHAPE_KINDS

typedef struct {
    shapes_train_opts t;
    double lambda, min_acc, min_box_acc;
    bool roi_pool;
} options;

static void parse(int argc, char **argv, options *o) {
    const char *p = "detection_shapes";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (shapes_train_flag(p, a, v, &o->t)) i++;
        else if (!strcmp(a, "--roi-pool")) o->roi_pool = true;
        else if (!strcmp(a, "--lambda")) o->lambda = shapes_arg(p, a, v, 0, 1e6), i++;
        else if (!strcmp(a, "--min-accuracy")) o->min_acc = shapes_arg(p, a, v, 0, 1), i++;
        else if (!strcmp(a, "--min-box-accuracy")) o->min_box_acc = shapes_arg(p, a, v, 0, 1), i++;
        else {
            fprintf(stderr, "usage: %s [--steps N] [--batch B] [--lr X] [--lambda L] [--seed S] [--device NAME]\n"
                            "       [--roi-pool] [--min-accuracy A] [--min-box-accuracy A]\n", p);
            exit(strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0);
        }
    }
}

/* ------------------------------------------------------------- data */

typedef struct {
    int64_t n;
    tg_tensor *x;       /* (n, 1, 32, 32) f32 */
    tg_tensor *cls;     /* (n) i64: 0 rectangle, 1 disc, 2 triangle */
    tg_tensor *target;  /* (n, 4) f32: the box / 32 */
    float *box;         /* (n, 4) on the host, in pixels */
    int64_t *label;     /* (n) on the host */
} det_set;

static bool make_set(int64_t n, uint64_t seed, tg_device *dev, det_set *s) {
    float *img = calloc((size_t)(n * PIXELS), sizeof *img), *t = malloc((size_t)n * 4 * sizeof *t);
    s->n = n;
    s->box = malloc((size_t)n * 4 * sizeof *s->box);
    s->label = malloc((size_t)n * sizeof *s->label);
    if (!img || !t || !s->box || !s->label) {
        free(img);
        free(t);
        return false;
    }
    uint64_t rng = seed;
    for (int64_t i = 0; i < n; i++) {
        s->label[i] = shapes_int(&rng, 0, SHAPE_KINDS - 1);
        shapes_draw(&rng, (int)s->label[i] + 1, img + i * PIXELS, NULL, s->box + 4 * i);
        for (int j = 0; j < 4; j++) t[4 * i + j] = s->box[4 * i + j] / SHAPE_SIZE;
    }
    shapes_noise(&rng, img, n, 0.2);
    s->x = tg_from_f32(img, TG_SHAPE(n, 1, SHAPE_SIZE, SHAPE_SIZE), dev);
    s->cls = tg_from_i64(s->label, TG_SHAPE(n), dev);
    s->target = tg_from_f32(t, TG_SHAPE(n, 4), dev);
    free(img);
    free(t);
    return s->x && s->cls && s->target;
}

/* ------------------------------------------------------------- the model */

typedef struct {
    tg_module *backbone, *fc, *cls_head, *box_head, *roi_head;
    bool roi_pool;
} detector;

/* x (B, 1, 32, 32) -> features (B, 32, 8, 8) */
static tg_tensor *detector_features(tg_module *self, tg_tensor *x) {
    detector *m = tg_module_data(self);
    return tg_module_forward(m->backbone, x);
}

static const tg_module_type detector_type = { "Detector", sizeof(detector), detector_features, NULL, NULL, NULL };

static tg_module *conv_bn_relu(int64_t in, int64_t out, tg_device *dev) {
    return tg_sequential(tg_conv2d_new(in, out, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev),
                         tg_batchnorm2d_new(out, NULL, dev), tg_relu_new());
}

static tg_module *detector_new(tg_device *dev, bool roi_pool) {
    tg_module *self = tg_module_new(&detector_type);
    if (!self) return NULL;
    detector *m = tg_module_data(self);
    m->roi_pool = roi_pool;
    tg_max_pool2d_opts pool = { .kernel_size = 2 };
    tg_module_add(self, "backbone", &m->backbone,
                  tg_sequential(conv_bn_relu(1, 16, dev), tg_max_pool2d_new(&pool), conv_bn_relu(16, 32, dev),
                                tg_max_pool2d_new(&pool), conv_bn_relu(32, FEAT, dev)));
    tg_module_add(self, "fc", &m->fc, tg_sequential(tg_linear_new(FEAT * 8 * 8, 64, NULL, dev), tg_relu_new()));
    tg_module_add(self, "cls_head", &m->cls_head, tg_linear_new(64, SHAPE_KINDS, NULL, dev));
    tg_module_add(self, "box_head", &m->box_head, tg_linear_new(64, 4, NULL, dev));
    tg_module_add(self, "roi_head", &m->roi_head,
                  tg_sequential(tg_linear_new(FEAT * ROI_OUT * ROI_OUT, 64, NULL, dev), tg_relu_new(),
                                tg_linear_new(64, SHAPE_KINDS + 1, NULL, dev)));
    return tg_module_done(self);
}

/* The second stage: rois (K, 5) on features -> logits (K, 4), the last background. */
static tg_tensor *roi_logits(detector *m, tg_tensor *features, tg_tensor *rois) {
    tg_tensor *r = m->roi_pool ? tg_roi_pool(features, rois, ROI_OUT, ROI_OUT, 1.0 / STRIDE)
                               : tg_roi_align(features, rois, ROI_OUT, ROI_OUT, 1.0 / STRIDE, 2, true);
    return tg_module_forward(m->roi_head, tg_flatten(r, 1));
}

/* ------------------------------------------------------------- proposals */

/* A box moved by (dx, dy) of its size and scaled by s about its centre, clipped. */
static void jitter(const float *b, double dx, double dy, double s, float *out) {
    double w = b[2] - b[0], h = b[3] - b[1], cx = (b[0] + b[2]) / 2 + dx * w, cy = (b[1] + b[3]) / 2 + dy * h;
    double c[4] = { cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2 };
    for (int j = 0; j < 4; j++) out[j] = (float)fmin(fmax(c[j], 0), SHAPE_SIZE);
}

/* Training proposals: PROPOSALS random jitters of each true box, labelled with its
 * class when the IoU with the truth is at least 0.5, else background. */
static void train_proposals(uint64_t *rng, const det_set *s, int64_t off, int64_t b, float *rois, int64_t *labels) {
    for (int64_t i = 0; i < b; i++)
        for (int p = 0; p < PROPOSALS; p++) {
            float *r = rois + 5 * (i * PROPOSALS + p);
            const float *gt = s->box + 4 * (off + i);
            r[0] = (float)i;
            jitter(gt, 0.6 * (shapes_uniform(rng) - 0.5), 0.6 * (shapes_uniform(rng) - 0.5),
                   0.6 + 0.8 * shapes_uniform(rng), r + 1);
            labels[i * PROPOSALS + p] = shapes_box_iou(r + 1, gt) >= 0.5 ? s->label[off + i] : BACKGROUND;
        }
}

/* ------------------------------------------------------------- training */

/* The multi-task loss of both stages: CE(class) + lambda * smooth L1(box) + CE(rois). */
static tg_tensor *multitask_loss(tg_module *net, const det_set *s, int64_t off, int64_t b, double lambda,
                                 tg_tensor *rois, tg_tensor *roi_labels) {
    detector *m = tg_module_data(net);
    tg_tensor *f = tg_module_forward(net, tg_slice(s->x, 0, off, off + b, 1));
    tg_tensor *h = tg_module_forward(m->fc, tg_flatten(f, 1));
    tg_tensor *ce = tg_cross_entropy_loss(tg_module_forward(m->cls_head, h), tg_slice(s->cls, 0, off, off + b, 1), NULL);
    tg_tensor *l1 = tg_smooth_l1_loss(tg_module_forward(m->box_head, h), tg_slice(s->target, 0, off, off + b, 1),
                                      TG_REDUCTION_MEAN, 0.05);
    tg_tensor *roi_ce = tg_cross_entropy_loss(roi_logits(m, f, rois), roi_labels, NULL);
    return tg_add(tg_add(ce, tg_mul_scalar(l1, lambda)), roi_ce);
}

static double train_step(tg_module *net, tg_optim *opt, const det_set *s, int64_t off, int64_t b, double lambda,
                         uint64_t *rng, float *rois, int64_t *labels) {
    train_proposals(rng, s, off, b, rois, labels);
    tg_scope_begin();
    tg_device *dev = tg_device_of(s->x);
    tg_tensor *loss = multitask_loss(net, s, off, b, lambda, tg_from_f32(rois, TG_SHAPE(b * PROPOSALS, 5), dev),
                                     tg_from_i64(labels, TG_SHAPE(b * PROPOSALS), dev));
    double l = tg_item(loss);
    tg_optim_zero_grad(opt);
    if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK) l = NAN;
    tg_scope_end();
    return l;
}

/* ------------------------------------------------------------- evaluation */

typedef struct {
    double acc, box_acc, iou;  /* class accuracy, IoU > 0.5 rate, mean IoU */
} scores;

typedef struct {
    scores stage1, stage2;
    double kept;               /* proposals left by NMS, per image */
} report;

static void score(scores *sc, bool hit, const float *box, const float *gt, int64_t n) {
    double iou = shapes_box_iou(box, gt);
    sc->acc += hit / (double)n;
    sc->box_acc += (iou > 0.5) / (double)n;
    sc->iou += iou / (double)n;
}

/* Stage 2 on one image: TEST_PROPOSALS boxes around the stage-1 box, scored by the ROI
 * head (1 - p(background)), NMS at 0.5; the best kept proposal is the detection. */
static bool second_stage(detector *m, tg_tensor *f1, const float *box1, float *box, int64_t *cls, int64_t *kept) {
    static const double d[TEST_PROPOSALS][3] = { { 0, 0, 1 }, { -.15, 0, 1 }, { .15, 0, 1 }, { 0, -.15, 1 }, { 0, .15, 1 },
                                                 { 0, 0, .8 }, { 0, 0, 1.25 }, { .1, .1, 1.1 }, { -.1, -.1, .9 } };
    float rois[TEST_PROPOSALS * 5], p[TEST_PROPOSALS * (SHAPE_KINDS + 1)];
    for (int k = 0; k < TEST_PROPOSALS; k++) {
        rois[5 * k] = 0;
        jitter(box1, d[k][0], d[k][1], d[k][2], rois + 5 * k + 1);
    }
    tg_device *dev = tg_device_of(f1);
    tg_tensor *r = tg_from_f32(rois, TG_SHAPE(TEST_PROPOSALS, 5), dev);
    tg_tensor *prob = tg_softmax(roi_logits(m, f1, r), 1);
    tg_tensor *obj = tg_sub(tg_scalar(TG_F32, 1, dev), tg_squeeze(tg_slice(prob, 1, BACKGROUND, BACKGROUND + 1, 1), 1));
    tg_tensor *keep = tg_nms(tg_slice(r, 1, 1, 5, 1), obj, 0.5);
    int64_t best = 0;
    if (!keep || tg_copy_to_host(prob, p, sizeof p) != TG_OK || tg_copy_to_host(tg_slice(keep, 0, 0, 1, 1), &best,
                                                                                   sizeof best) != TG_OK)
        return false;
    *kept = tg_numel(keep);
    memcpy(box, rois + 5 * best + 1, 4 * sizeof *box);
    const float *pb = p + best * (SHAPE_KINDS + 1);
    *cls = 0;
    for (int c = 1; c < SHAPE_KINDS; c++) *cls = pb[c] > pb[*cls] ? c : *cls;
    return true;
}

static bool evaluate(tg_module *net, const det_set *s, report *rep) {
    detector *m = tg_module_data(net);
    bool prev = tg_set_grad_enabled(false), ok = true;
    memset(rep, 0, sizeof *rep);
    tg_module_eval(net);
    for (int64_t i = 0; i < s->n && ok; i++) {
        tg_scope_begin();
        tg_tensor *f = tg_module_forward(net, tg_slice(s->x, 0, i, i + 1, 1));
        tg_tensor *h = tg_module_forward(m->fc, tg_flatten(f, 1));
        tg_tensor *c1 = tg_argmax(tg_module_forward(m->cls_head, h), 1, false);
        tg_tensor *b1 = tg_mul_scalar(tg_module_forward(m->box_head, h), SHAPE_SIZE);
        int64_t cls1 = -1, cls2 = -1, kept = 0;
        float box1[4], box2[4];
        ok = c1 && b1 && tg_copy_to_host(c1, &cls1, sizeof cls1) == TG_OK &&
             tg_copy_to_host(b1, box1, sizeof box1) == TG_OK && second_stage(m, f, box1, box2, &cls2, &kept);
        tg_scope_end();
        if (!ok) break;
        score(&rep->stage1, cls1 == s->label[i], box1, s->box + 4 * i, s->n);
        score(&rep->stage2, cls2 == s->label[i], box2, s->box + 4 * i, s->n);
        rep->kept += (double)kept / (double)s->n;
    }
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    return ok;
}

/* ------------------------------------------------------------- main */

static int fail(const char *what) {
    fprintf(stderr, "detection_shapes: %s\n", *what ? what : "out of memory");
    return 1;
}

int main(int argc, char **argv) {
    options o = { .t = { .steps = 300, .batch = 32, .seed = 1, .lr = 3e-3 }, .lambda = 5 };
    parse(argc, argv, &o);
    tg_device *dev = tg_device_get(o.t.device);
    det_set train = { 0 }, test = { 0 };
    int64_t ntrain = o.t.steps * o.t.batch < 4000 ? o.t.steps * o.t.batch : 4000;
    tg_manual_seed((uint64_t)o.t.seed);
    double t0 = shapes_now_s();
    if (!dev || !make_set(ntrain, (uint64_t)o.t.seed, dev, &train) || !make_set(300, (uint64_t)o.t.seed + 7777, dev, &test))
        return fail(tg_last_error());
    tg_module *net = detector_new(dev, o.roi_pool);
    tg_optim *opt = net ? shapes_adam(net, o.t.lr) : NULL;
    float *rois = malloc((size_t)(o.t.batch * PROPOSALS * 5) * sizeof *rois);
    int64_t *labels = malloc((size_t)(o.t.batch * PROPOSALS) * sizeof *labels);
    if (!opt || !rois || !labels) return fail(tg_last_error());
    printf("device %s, %lld training and %lld held-out images, %lld parameters, %lld Adam steps of %lld, %s\n",
           tg_device_name(dev), (long long)ntrain, (long long)test.n, (long long)tg_module_num_parameters(net, true),
           (long long)o.t.steps, (long long)o.t.batch, o.roi_pool ? "roi_pool" : "roi_align");
    uint64_t rng = (uint64_t)o.t.seed * 31 + 5;
    double run = 0;
    for (int64_t step = 0; step < o.t.steps; step++) {
        int64_t b = o.t.batch < ntrain ? o.t.batch : ntrain, off = step * b % (ntrain - b + 1);
        double l = train_step(net, opt, &train, off, b, o.lambda, &rng, rois, labels);
        if (isnan(l)) return fail(*tg_last_error() ? tg_last_error() : "the loss is NaN");
        run = step ? 0.9 * run + 0.1 * l : l;
        if ((step + 1) % 50 == 0) printf("step %4lld  loss %.4f  %.1f s\n", (long long)step + 1, run, shapes_now_s() - t0);
    }
    report rep;
    if (!evaluate(net, &test, &rep)) return fail(tg_last_error());
    printf("\n%-28s %9s %9s %9s\n", "held-out images", "class acc", "box acc", "mean IoU");
    printf("%-28s %9.3f %9.3f %9.3f\n", "stage 1: heads", rep.stage1.acc, rep.stage1.box_acc, rep.stage1.iou);
    printf("%-28s %9.3f %9.3f %9.3f\n", o.roi_pool ? "stage 2: roi_pool + NMS" : "stage 2: roi_align + NMS",
           rep.stage2.acc, rep.stage2.box_acc, rep.stage2.iou);
    printf("(box acc: IoU > 0.5 with the truth; NMS kept %.2f of %d proposals per image; %.1f s in all)\n", rep.kept,
           TEST_PROPOSALS, shapes_now_s() - t0);
    tg_optim_free(opt);
    tg_module_free(net);
    free(rois);
    free(labels);
    free(train.box);
    free(train.label);
    free(test.box);
    free(test.label);
    if (rep.stage1.acc < o.min_acc || rep.stage1.box_acc < o.min_box_acc) {
        fprintf(stderr, "detection_shapes: stage 1 accuracy %.3f / box accuracy %.3f is below --min-accuracy %g / "
                "--min-box-accuracy %g\n", rep.stage1.acc, rep.stage1.box_acc, o.min_acc, o.min_box_acc);
        return 1;
    }
    return 0;
}
