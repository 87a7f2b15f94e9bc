/* The notes' CNN on Fashion-MNIST, the project's main example: two blocks of conv 5x5
 * (padding 2), BatchNorm2d, ReLU and 2x2 max pooling (1 -> 16 -> 32 channels, 28 -> 14 ->
 * 7 pixels), then a linear layer 7*7*32 = 1568 -> 10; Adam under a cosine learning-rate
 * schedule; batches from a loader whose worker threads prepare the next ones (scaling,
 * standardisation, optional flip-and-crop augmentation) while the current one trains.
 *
 *     build/examples/cnn_fashion_mnist [--data DIR] [--out DIR] [--epochs N] [--batch B]
 *         [--lr X] [--schedule cosine|onecycle|constant] [--augment] [--workers W] [--device NAME]
 *         [--label-smoothing E] [--weight-decay W] [--limit N] [--seed S] [--resume] [--min-accuracy A]
 *
 * Shows a progress bar per epoch and writes into --out (default cnn-run): metrics.csv
 * (one row per epoch) and steps.csv (loss and learning rate per step), plots of them
 * (loss.svg, accuracy.svg, lr.svg), the test set's confusion matrix (confusion.svg), the
 * first layer's filters and one image's feature maps (filters.svg, feature_maps.svg),
 * the recorded graph of one step (graph.dot, and graph.svg when Graphviz is installed),
 * a training checkpoint after every epoch (checkpoint.safetensors: --resume continues
 * from it) and the final weights with PyTorch's names (model.safetensors). Exit code 1
 * if the data is missing or corrupt, the library reports an error, or the final test
 * accuracy is below --min-accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tapegrad.h"
#include "fashion_mnist.h"
#include "notes_cnn.h"

typedef struct {
    const char *data_dir, *out_dir, *device, *schedule;
    int epochs, batch, workers;
    double lr, min_accuracy, label_smoothing, weight_decay;
    long limit;
    uint64_t seed;
    bool augment, resume;
} options;

static const char *class_names[CLASSES] = { "T-shirt", "trouser", "pullover", "dress", "coat",
                                            "sandal",  "shirt",   "sneaker",  "bag",   "boot" };

/* ------------------------------------------------------------- options */

static int usage(void) {
    fprintf(stderr,
            "usage: cnn_fashion_mnist [--data DIR] [--out DIR] [--epochs N] [--batch B] [--lr X]\n"
            "                         [--schedule cosine|onecycle|constant] [--augment] [--workers W] [--device NAME]\n"
            "                         [--label-smoothing E] [--weight-decay W] [--limit N] [--seed S] [--resume] [--min-accuracy A]\n");
    return 2;
}

static bool parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--augment")) o->augment = true;
        else if (!strcmp(a, "--resume")) o->resume = true;
        else if (!v) return false;
        else if (!strcmp(a, "--data")) o->data_dir = v, i++;
        else if (!strcmp(a, "--out")) o->out_dir = v, i++;
        else if (!strcmp(a, "--device")) o->device = v, i++;
        else if (!strcmp(a, "--schedule")) o->schedule = v, i++;
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v), i++;
        else if (!strcmp(a, "--batch")) o->batch = atoi(v), i++;
        else if (!strcmp(a, "--workers")) o->workers = atoi(v), i++;
        else if (!strcmp(a, "--lr")) o->lr = atof(v), i++;
        else if (!strcmp(a, "--weight-decay")) o->weight_decay = atof(v), i++;
        else if (!strcmp(a, "--limit")) o->limit = atol(v), i++;
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--min-accuracy")) o->min_accuracy = atof(v), i++;
        else if (!strcmp(a, "--label-smoothing")) o->label_smoothing = atof(v), i++;
        else return false;
    }
    return o->epochs > 0 && o->batch > 1 && o->workers >= 0 && o->lr > 0 && o->weight_decay >= 0 && o->limit >= 0 &&
           o->label_smoothing >= 0 && o->label_smoothing < 1 &&
           (!strcmp(o->schedule, "cosine") || !strcmp(o->schedule, "onecycle") || !strcmp(o->schedule, "constant"));
}

/* ------------------------------------------------------------- the run */

typedef struct {
    options o;
    tg_device *dev;
    split train, test;             /* u8 pixels (N,784), i32 labels: on the CPU */
    tg_tensor *test_x;             /* standardised (N,1,28,28) on dev */
    tg_tensor *test_y;             /* on dev */
    tg_module *net;
    tg_optim *opt;
    tg_sched *sched;               /* NULL for --schedule constant */
    tg_dataset *ds;
    tg_transform *transforms[4];
    int n_transforms;
    tg_loader *loader;
    tg_metrics *epochs_log, *steps_log;
    int64_t step;
} run;

static void path_in(const run *r, const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", r->o.out_dir, name);
}

/* The loader: the training images as (N,1,28,28) u8 on the CPU, scaled and standardised
 * (and, with --augment, padded-cropped and flipped) on the workers, uploaded to dev. */
static bool make_loader(run *r) {
    int64_t n = tg_size(r->train.x, 0);
    tg_tensor *fields[2] = { tg_reshape(r->train.x, TG_SHAPE(n, 1, 28, 28)), r->train.y };
    r->ds = tg_dataset_from_tensors(2, fields);
    const double mean = PIXEL_MEAN, std = PIXEL_STD;
    if (r->o.augment) {
        r->transforms[r->n_transforms++] = tg_random_crop(&(tg_random_crop_opts){ .size = 28, .padding = 2 });
        r->transforms[r->n_transforms++] = tg_random_horizontal_flip(0.5);
    }
    r->transforms[r->n_transforms++] = tg_to_float();
    r->transforms[r->n_transforms++] = tg_normalize(1, &mean, &std);
    for (int i = 0; i < r->n_transforms; i++)
        if (!r->transforms[i]) return false;
    r->loader = r->ds ? tg_loader_new(r->ds, &(tg_loader_opts){ .batch_size = r->o.batch, .shuffle = true,
                                                                 .seed = r->o.seed, .num_workers = r->o.workers,
                                                                 .transforms = r->transforms,
                                                                 .n_transforms = r->n_transforms, .device = r->dev })
                      : NULL;
    return r->loader != NULL;
}

static bool make_model(run *r) {
    tg_manual_seed(r->o.seed);
    r->net = notes_cnn_new(CLASSES, r->dev);
    tg_named p;
    if (!r->net || tg_module_parameters(r->net, true, &p) != TG_OK) return false;
    /* a weight decay selects AdamW (decoupled decay, as torch.optim.AdamW) */
    tg_adam_opts ao = { .lr = TG_SOME(r->o.lr), .weight_decay = TG_SOME(r->o.weight_decay) };
    r->opt = r->o.weight_decay > 0 ? tg_adamw_new(p.n, p.tensors, &ao) : tg_adam_new(p.n, p.tensors, &ao);
    tg_named_free(&p);
    int64_t steps = (int64_t)r->o.epochs * tg_loader_len(r->loader);
    if (r->opt && !strcmp(r->o.schedule, "cosine")) r->sched = tg_cosine_lr_new(r->opt, steps, 0);
    if (r->opt && !strcmp(r->o.schedule, "onecycle"))
        r->sched = tg_onecycle_lr_new(r->opt, &(tg_onecycle_lr_opts){ .max_lr = r->o.lr, .total_steps = steps });
    return r->opt && (r->sched || !strcmp(r->o.schedule, "constant"));
}

/* The standardised test images on dev, for evaluation. */
static bool prepare_test(run *r) {
    int64_t n = tg_size(r->test.x, 0);
    r->test_x = tg_keep(tg_to(tg_reshape(normalise(r->test.x), TG_SHAPE(n, 1, 28, 28)), r->dev));
    r->test_y = tg_keep(tg_to(r->test.y, r->dev));
    return r->test_x && r->test_y;
}

/* ------------------------------------------------------------- train and test */

/* One Adam step on a batch; its loss and accuracy, NaN (message set) on error. */
static double train_step(run *r, const tg_batch *b, double *acc) {
    tg_tensor *logits = tg_module_forward(r->net, b->x);
    tg_tensor *loss = r->o.label_smoothing > 0 ? tg_cross_entropy_loss(logits, b->y, &(tg_cross_entropy_loss_opts){
                                                     .label_smoothing = r->o.label_smoothing })
                                               : tg_cross_entropy(logits, b->y);
    *acc = tg_item(tg_mean(tg_cast(tg_eq(tg_argmax(logits, 1, false), b->y), TG_F32), TG_ALL, false));
    double l = tg_item(loss);
    tg_optim_zero_grad(r->opt);
    if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(r->opt) != TG_OK) return NAN;
    if (r->sched && tg_sched_step(r->sched) != TG_OK) return NAN;
    return l;
}

/* One pass over the loader with a progress bar; the epoch's mean loss and accuracy. */
static bool train_epoch(run *r, int epoch, double *loss, double *acc) {
    char desc[32];
    snprintf(desc, sizeof desc, "epoch %d/%d", epoch, r->o.epochs);
    tg_progress *bar = tg_progress_new(tg_loader_len(r->loader), desc, &(tg_progress_opts){ .batch_size = r->o.batch });
    tg_batch b;
    bool ok = bar != NULL;
    while (ok) {
        tg_scope_begin();
        if (!tg_loader_next(r->loader, &b)) {
            ok = tg_last_status() == TG_OK;
            tg_scope_end();
            break;
        }
        double lr = tg_optim_get_lr(r->opt, 0), a, l = train_step(r, &b, &a);
        tg_scope_end();
        ok = !isnan(l) && tg_progress_update_ex(bar, &(tg_progress_step){ .samples = b.size, .loss = TG_SOME(l),
                                                                           .accuracy = TG_SOME(a) }) == TG_OK;
        ok = ok && TG_METRICS_LOG(r->steps_log, { "step", (double)++r->step }, { "loss", l }, { "lr", lr }) == TG_OK;
    }
    *loss = tg_progress_mean_loss(bar);
    *acc = tg_progress_mean_accuracy(bar);
    tg_progress_close(bar);
    return ok;
}

/* Test loss and accuracy in eval mode (BatchNorm's running statistics); with counts,
 * the confusion matrix too (on the CPU, owned by the current scope). */
static bool evaluate(run *r, double *loss, double *acc, tg_tensor **counts) {
    const int64_t n = tg_size(r->test_x, 0), bs = 1000;
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(r->net);
    double sum = 0, correct = 0;
    tg_tensor *preds[16];
    int np = 0;
    for (int64_t off = 0; off < n; off += bs) {
        int64_t end = off + bs < n ? off + bs : n;
        tg_scope_begin(); /* one batch's activations at a time */
        tg_tensor *y = tg_slice(r->test_y, 0, off, end, 1);
        tg_tensor *logits = tg_module_forward(r->net, tg_slice(r->test_x, 0, off, end, 1));
        tg_tensor *pred = tg_argmax(logits, 1, false);
        sum += tg_item(tg_cross_entropy_ex(logits, y, &(tg_cross_entropy_opts){ .reduction = TG_REDUCTION_SUM }));
        correct += tg_item(tg_sum(tg_cast(tg_eq(pred, y), TG_F32), TG_ALL, false));
        if (np < 16) preds[np++] = tg_keep(pred);
        tg_scope_end();
    }
    if (counts) *counts = tg_to(tg_confusion_matrix(tg_cat(np, preds, 0), r->test_y, CLASSES), tg_device_get("cpu"));
    tg_module_train(r->net, true);
    tg_set_grad_enabled(prev);
    *loss = sum / (double)n;
    *acc = correct / (double)n;
    return !isnan(*loss) && !isnan(*acc) && (!counts || *counts);
}

/* ------------------------------------------------------------- what a person looks at */

/* The plots of the logs, the confusion matrix, the first layer's filters and the feature
 * maps of the first test image. */
static bool write_pictures(run *r, tg_tensor *counts) {
    char p[4096];
    const tg_metrics *e = r->epochs_log, *s = r->steps_log;
    bool ok = true;
    path_in(r, "loss.svg", p, sizeof p);
    ok &= tg_metrics_plot(e, p, "epoch", 2, (const char *[]){ "train_loss", "test_loss" },
                          &(tg_plot_opts){ .title = "loss per epoch", .xlabel = "epoch" }) == TG_OK;
    path_in(r, "accuracy.svg", p, sizeof p);
    ok &= tg_metrics_plot(e, p, "epoch", 2, (const char *[]){ "train_acc", "test_acc" },
                          &(tg_plot_opts){ .title = "accuracy per epoch", .xlabel = "epoch" }) == TG_OK;
    path_in(r, "step_loss.svg", p, sizeof p);
    ok &= tg_metrics_plot(s, p, "step", 1, (const char *[]){ "loss" },
                          &(tg_plot_opts){ .title = "training loss per step", .xlabel = "step", .log_y = true }) == TG_OK;
    path_in(r, "lr.svg", p, sizeof p);
    ok &= tg_metrics_plot(s, p, "step", 1, (const char *[]){ "lr" },
                          &(tg_plot_opts){ .title = "learning rate", .xlabel = "step" }) == TG_OK;
    path_in(r, "confusion.svg", p, sizeof p);
    ok &= tg_confusion_svg(p, counts, &(tg_confusion_svg_opts){ .title = "test set", .class_names = class_names }) == TG_OK;
    path_in(r, "filters.svg", p, sizeof p);
    ok &= tg_filters_svg(p, tg_module_get_param(r->net, "layer1.0.weight"), &(tg_image_grid_opts){ .title = "conv1 filters" }) == TG_OK;
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(r->net);
    tg_tensor *maps = tg_module_forward(tg_module_get(r->net, "layer1"), tg_slice(r->test_x, 0, 0, 1, 1));
    tg_module_train(r->net, true);
    tg_set_grad_enabled(prev);
    path_in(r, "feature_maps.svg", p, sizeof p);
    ok &= maps && tg_feature_maps_svg(p, maps, &(tg_image_grid_opts){ .title = "layer1 of test image 0" }) == TG_OK;
    return ok;
}

/* The graph of one training loss, with the parameters' names; rendered when Graphviz's
 * dot is installed. */
static bool write_graph(run *r) {
    char dot[4096], cmd[8300];
    tg_named p;
    if (tg_module_parameters(r->net, false, &p) != TG_OK) return false;
    tg_tensor *logits = tg_module_forward(r->net, tg_slice(r->test_x, 0, 0, 2, 1));
    tg_tensor *loss = tg_cross_entropy(logits, tg_slice(r->test_y, 0, 0, 2, 1));
    path_in(r, "graph.dot", dot, sizeof dot);
    bool ok = loss && tg_graph_dot_save(dot, loss, &(tg_dot_opts){ .n_names = p.n, .tensors = p.tensors,
                                                                   .names = p.names, .graph_name = "cnn" }) == TG_OK;
    tg_named_free(&p);
    if (ok && access("/usr/bin/dot", X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o '%s/graph.svg'", dot, r->o.out_dir);
        if (system(cmd) != 0) fprintf(stderr, "cnn_fashion_mnist: '%s' failed\n", cmd);
    }
    return ok;
}

/* ------------------------------------------------------------- checkpoints */

static bool save_checkpoint(run *r, int epoch) {
    char p[4096], e[32], s[32];
    snprintf(e, sizeof e, "%d", epoch);
    snprintf(s, sizeof s, "%lld", (long long)r->step);
    path_in(r, "checkpoint.safetensors", p, sizeof p);
    tg_checkpoint ck = { r->net, r->opt, r->sched, &(tg_metadata){ 2, (char *[]){ "epoch", "step" }, (char *[]){ e, s } } };
    return tg_checkpoint_save(&ck, p) == TG_OK;
}

/* The epoch the checkpoint ended (0 when there is none to resume from). */
static int resume(run *r) {
    char p[4096];
    path_in(r, "checkpoint.safetensors", p, sizeof p);
    if (access(p, R_OK) != 0) return 0;
    tg_metadata user;
    if (tg_checkpoint_load(&(tg_checkpoint){ r->net, r->opt, r->sched, NULL }, p, &user) != TG_OK) return -1;
    const char *e = tg_metadata_get(&user, "epoch"), *s = tg_metadata_get(&user, "step");
    int epoch = e ? atoi(e) : -1;
    r->step = s ? atoll(s) : 0;
    tg_metadata_free(&user);
    if (epoch < 0 || tg_loader_set_epoch(r->loader, epoch) != TG_OK) return -1;
    printf("resumed from %s after epoch %d\n", p, epoch);
    return epoch;
}

/* ------------------------------------------------------------- main */

static bool open_logs(run *r, bool append) {
    char p[4096];
    if (mkdir(r->o.out_dir, 0777) != 0 && access(r->o.out_dir, W_OK) != 0) {
        fprintf(stderr, "cnn_fashion_mnist: cannot create '%s'\n", r->o.out_dir);
        return false;
    }
    path_in(r, "metrics.csv", p, sizeof p);
    r->epochs_log = tg_metrics_open(p, &(tg_metrics_opts){ .append = append });
    path_in(r, "steps.csv", p, sizeof p);
    r->steps_log = tg_metrics_open(p, &(tg_metrics_opts){ .append = append });
    return r->epochs_log && r->steps_log;
}

static void free_run(run *r) {
    tg_loader_free(r->loader);
    tg_dataset_free(r->ds);
    for (int i = 0; i < r->n_transforms; i++) tg_transform_free(r->transforms[i]);
    tg_sched_free(r->sched);
    tg_optim_free(r->opt);
    tg_module_free(r->net);
    tg_metrics_close(r->epochs_log);
    tg_metrics_close(r->steps_log);
}

/* Trains the remaining epochs, logging and checkpointing each; the last test accuracy. */
static double train(run *r, int first_epoch) {
    double test_acc = NAN;
    for (int e = first_epoch; e <= r->o.epochs; e++) {
        double t0 = now_s(), train_loss, train_acc, test_loss;
        if (!train_epoch(r, e, &train_loss, &train_acc)) return NAN;
        double secs = now_s() - t0; /* training only */
        if (!evaluate(r, &test_loss, &test_acc, NULL)) return NAN;
        printf("epoch %d: train loss %.4f, accuracy %.4f; test loss %.4f, accuracy %.4f (trained in %.1f s, %.0f images/s)\n",
               e, train_loss, train_acc, test_loss, test_acc, secs, (double)tg_size(r->train.x, 0) / secs);
        fflush(stdout);
        if (TG_METRICS_LOG(r->epochs_log, { "epoch", e }, { "train_loss", train_loss }, { "train_acc", train_acc },
                           { "test_loss", test_loss }, { "test_acc", test_acc }, { "seconds", secs }) != TG_OK ||
            !save_checkpoint(r, e))
            return NAN;
    }
    return test_acc;
}

int main(int argc, char **argv) {
    run r = { .o = { .data_dir = DEFAULT_DATA_DIR, .out_dir = "cnn-run", .schedule = "cosine", .epochs = 3,
                     .batch = 64, .workers = 1, .lr = 5e-3, .seed = 42 } };
    if (!parse_args(argc, argv, &r.o)) return usage();
    /* the data stays on the CPU, where the loader's workers read it */
    if (!open_fashion_mnist("cnn_fashion_mnist", r.o.data_dir, r.o.device, tg_device_get("cpu"), &r.dev, &r.train,
                            &r.test))
        return 1;
    if (r.o.limit > 0 && r.o.limit < tg_size(r.train.x, 0))
        r.train.x = tg_slice(r.train.x, 0, 0, r.o.limit, 1), r.train.y = tg_slice(r.train.y, 0, 0, r.o.limit, 1);
    int rc = 1, first = 1;
    if (make_loader(&r) && make_model(&r) && prepare_test(&r) && (first = r.o.resume ? resume(&r) + 1 : 1) > 0 &&
        open_logs(&r, first > 1)) {
        printf("device %s, %lld training images (batch %d, %d loader workers%s), Adam lr %g %s, %lld parameters\n",
               tg_device_name(r.dev), (long long)tg_size(r.train.x, 0), r.o.batch, r.o.workers,
               r.o.augment ? ", flip+crop augmentation" : "", r.o.lr, r.o.schedule,
               (long long)tg_module_num_parameters(r.net, true));
        double acc = train(&r, first);
        tg_tensor *counts = NULL;
        double l, a;
        char p[4096];
        path_in(&r, "model.safetensors", p, sizeof p);
        if (!isnan(acc) && evaluate(&r, &l, &a, &counts) && write_pictures(&r, counts) && write_graph(&r) &&
            tg_module_save(r.net, p, NULL) == TG_OK) {
            printf("final test accuracy %.4f; plots, logs, checkpoint and model.safetensors in %s/\n", acc, r.o.out_dir);
            rc = acc >= r.o.min_accuracy ? 0 : 1;
            if (rc) fprintf(stderr, "cnn_fashion_mnist: test accuracy %.4f is below --min-accuracy %g\n", acc, r.o.min_accuracy);
        }
    }
    if (rc && *tg_last_error()) fprintf(stderr, "cnn_fashion_mnist: %s\n", tg_last_error());
    free_run(&r);
    return rc;
}
