/* ResNet-20 (He et al. 2015, section 4.2; any depth 6n+2) on CIFAR-format data: SGD with
 * Nesterov momentum 0.9, weight decay 5e-4 and a cosine schedule, the standard CIFAR
 * augmentation (random crop of the 4-pixel zero-padded image, horizontal flip) and
 * per-channel standardisation on the loader's workers. Prints the model summary's totals
 * and one table, a row per epoch.
 *
 *     build/examples/resnet_cifar --data DIR [--depth 20] [--epochs E] [--batch B] [--lr X]
 *         [--workers W] [--limit N] [--device NAME] [--min-accuracy A]
 *     build/examples/resnet_cifar --make-synthetic DIR [--n N] [--data DIR ...]
 *
 * DIR is an extracted CIFAR-10 binary folder (data_batch_1..5.bin, test_batch.bin,
 * batches.meta.txt). --make-synthetic writes such a folder of N training and N/5 test
 * images of ten classes of coloured shapes on noise (what the tests train on, since the
 * real data is not on the machine); with --data as well, it then trains on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tapegrad.h"

typedef struct {
    const char *data, *synthetic, *device;
    int depth, epochs, batch, workers, n;
    double lr, min_accuracy;
    long limit;
} options;

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------- synthetic CIFAR files */

/* An image of class k: a disc (k < 5) or a square (k >= 5) in one of five colours, at a
 * random place and size, on noise. Writes one CIFAR-10 record (label, R, G, B planes). */
static void synthetic_record(uint8_t rec[3073], int k, uint64_t *rng) {
    static const uint8_t colours[5][3] = { { 230, 40, 40 }, { 40, 200, 40 }, { 40, 80, 230 }, { 230, 210, 40 }, { 200, 40, 220 } };
#define NEXT() (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull, (unsigned)(*rng >> 33))
    int cx = 8 + (int)(NEXT() % 16), cy = 8 + (int)(NEXT() % 16), r = 5 + (int)(NEXT() % 5);
    rec[0] = (uint8_t)k;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            bool in = k < 5 ? (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r : abs(x - cx) <= r && abs(y - cy) <= r;
            for (int c = 0; c < 3; c++) {
                int noise = (int)(NEXT() % 96);
                rec[1 + c * 1024 + y * 32 + x] = (uint8_t)(in ? (colours[k % 5][c] * 3 + noise) / 4 : noise);
            }
        }
#undef NEXT
}

static bool write_split(const char *dir, const char *name, int n, uint64_t seed) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint8_t rec[3073];
    for (int i = 0; f && i < n; i++) {
        synthetic_record(rec, i % 10, &seed);
        fwrite(rec, 1, sizeof rec, f);
    }
    return f && fclose(f) == 0;
}

static int make_synthetic(const options *o) {
    char meta[4096];
    mkdir(o->synthetic, 0777);
    snprintf(meta, sizeof meta, "%s/batches.meta.txt", o->synthetic);
    FILE *f = fopen(meta, "w");
    static const char *names[10] = { "red disc", "green disc", "blue disc", "yellow disc", "violet disc",
                                     "red square", "green square", "blue square", "yellow square", "violet square" };
    for (int k = 0; f && k < 10; k++) fprintf(f, "%s\n", names[k]);
    bool ok = f && fclose(f) == 0 && write_split(o->synthetic, "test_batch.bin", o->n / 5, 99);
    for (int b = 1; ok && b <= 5; b++) { /* the standard layout: five training files */
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        ok = write_split(o->synthetic, name, o->n / 5, (uint64_t)b);
    }
    if (!ok) fprintf(stderr, "resnet_cifar: cannot write into '%s'\n", o->synthetic);
    else printf("wrote %d training and %d test images of 10 classes into %s\n", o->n / 5 * 5, o->n / 5, o->synthetic);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------- training */

typedef struct {
    tg_module *net;
    tg_optim *opt;
    tg_sched *sched;
    tg_loader *loader;
} trainer;

/* One epoch; mean loss and accuracy over its batches. */
static bool train_epoch(trainer *t, double *loss, double *acc) {
    double sl = 0, sa = 0;
    int64_t n = 0;
    tg_batch b;
    for (bool ok = true;; n++) {
        tg_scope_begin();
        if (!tg_loader_next(t->loader, &b)) {
            ok = tg_last_status() == TG_OK;
            tg_scope_end();
            *loss = sl / (double)n, *acc = sa / (double)n;
            return ok;
        }
        tg_tensor *logits = tg_module_forward(t->net, b.x);
        tg_tensor *l = tg_cross_entropy(logits, b.y);
        sa += tg_item(tg_mean(tg_cast(tg_eq(tg_argmax(logits, 1, false), b.y), TG_F32), TG_ALL, false));
        sl += tg_item(l);
        tg_optim_zero_grad(t->opt);
        ok = l && tg_backward(l) == TG_OK && tg_optim_step(t->opt) == TG_OK && tg_sched_step(t->sched) == TG_OK;
        tg_scope_end();
        if (!ok) return false;
    }
}

/* Test accuracy in eval mode, batches of 500 of standardised images x (N,3,32,32). */
static double test_accuracy(tg_module *net, tg_tensor *x, tg_tensor *y) {
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(net);
    double correct = 0;
    int64_t n = tg_size(x, 0);
    for (int64_t off = 0; off < n; off += 500) {
        int64_t end = off + 500 < n ? off + 500 : n;
        tg_scope_begin();
        tg_tensor *pred = tg_argmax(tg_module_forward(net, tg_slice(x, 0, off, end, 1)), 1, false);
        correct += tg_item(tg_sum(tg_cast(tg_eq(pred, tg_slice(y, 0, off, end, 1)), TG_F32), TG_ALL, false));
        tg_scope_end();
    }
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    return correct / (double)n;
}

static bool parse(int argc, char **argv, options *o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--make-synthetic")) o->synthetic = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--depth")) o->depth = atoi(v);
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--workers")) o->workers = atoi(v);
        else if (!strcmp(a, "--n")) o->n = atoi(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--limit")) o->limit = atol(v);
        else if (!strcmp(a, "--min-accuracy")) o->min_accuracy = atof(v);
        else return false;
    }
    return argc % 2 == 1 && (o->data || o->synthetic) && o->epochs > 0 && o->batch > 1 && o->n > 0 && o->lr > 0;
}

/* Per-channel mean and std of the training images (u8 (N,3,32,32)), in [0,1] units. */
static void channel_stats(tg_tensor *images, double mean[3], double std[3]) {
    tg_tensor *x = tg_mul_scalar(tg_cast(images, TG_F32), 1.0 / 255);
    tg_tensor *m = tg_mean(x, TG_AXES(0, 2, 3), false), *s = tg_std(x, TG_AXES(0, 2, 3), 0, false);
    float mf[3] = { 0.5f, 0.5f, 0.5f }, sf[3] = { 0.25f, 0.25f, 0.25f };
    tg_copy_to_host(m, mf, sizeof mf), tg_copy_to_host(s, sf, sizeof sf);
    for (int c = 0; c < 3; c++) mean[c] = mf[c], std[c] = sf[c] > 1e-3f ? sf[c] : 1;
}

static int train_main(const options *o) {
    tg_device *dev = tg_device_get(o->device), *cpu = tg_device_get("cpu");
    tg_labeled_images train, test;
    if (!dev || tg_cifar_load_dir(o->data, true, NULL, cpu, &train) != TG_OK ||
        tg_cifar_load_dir(o->data, false, NULL, cpu, &test) != TG_OK) {
        fprintf(stderr, "resnet_cifar: %s\n", tg_last_error());
        return 1;
    }
    if (o->limit > 0 && o->limit < tg_size(train.images, 0))
        train.images = tg_slice(train.images, 0, 0, o->limit, 1), train.labels = tg_slice(train.labels, 0, 0, o->limit, 1);
    double mean[3], std[3];
    channel_stats(train.images, mean, std);
    tg_transform *tf[4] = { tg_random_crop(&(tg_random_crop_opts){ .size = 32, .padding = 4 }),
                            tg_random_horizontal_flip(0.5), tg_to_float(), tg_normalize(3, mean, std) };
    tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ train.images, train.labels });
    const float mean_f[3] = { (float)mean[0], (float)mean[1], (float)mean[2] };
    const float std_f[3] = { (float)std[0], (float)std[1], (float)std[2] };
    tg_tensor *test_x = tg_to(tg_div(tg_sub(tg_mul_scalar(tg_cast(test.images, TG_F32), 1.0 / 255),
                                            tg_from_f32(mean_f, TG_SHAPE(3, 1, 1), cpu)),
                                     tg_from_f32(std_f, TG_SHAPE(3, 1, 1), cpu)), dev);
    tg_tensor *test_y = tg_to(test.labels, dev);
    tg_manual_seed(1);
    trainer t = { .net = tg_resnet_cifar_new(o->depth, tg_strings_count(train.classes), NULL, dev) };
    tg_named p = { 0 };
    if (t.net && tg_module_parameters(t.net, true, &p) == TG_OK)
        t.opt = tg_sgd_new(p.n, p.tensors, &(tg_sgd_opts){ .lr = TG_SOME(o->lr), .momentum = 0.9, .nesterov = true,
                                                          .weight_decay = 5e-4 });
    t.loader = t.opt && ds ? tg_loader_new(ds, &(tg_loader_opts){ .batch_size = o->batch, .shuffle = true, .seed = 3,
                                                                  .drop_last = true, .num_workers = o->workers,
                                                                  .transforms = tf, .n_transforms = 4, .device = dev })
                           : NULL;
    t.sched = t.loader ? tg_cosine_lr_new(t.opt, o->epochs * tg_loader_len(t.loader), 0) : NULL;
    tg_model_summary *s = t.sched ? tg_summary(t.net, TG_SHAPE(1, 3, 32, 32), &(tg_summary_opts){ .quiet = true }) : NULL;
    if (!s || !test_x) {
        fprintf(stderr, "resnet_cifar: %s\n", tg_last_error());
        return 1;
    }
    const tg_summary_totals *tot = tg_summary_totals_of(s);
    printf("ResNet-%d: %lld parameters, %.1f M multiply-adds per image; %lld training images (crop+flip), %lld test;\n"
           "SGD Nesterov 0.9, lr %g cosine, weight decay 5e-4, batch %d, %d loader workers, %s\n\n",
           o->depth, (long long)tot->total_params, (double)tot->mult_adds * 1e-6, (long long)tg_size(train.images, 0),
           (long long)tg_size(test.images, 0), o->lr, o->batch, o->workers, tg_device_name(dev));
    printf("%-6s %11s %10s %9s %10s %9s\n", "epoch", "train loss", "train acc", "test acc", "images/s", "seconds");
    double acc = 0;
    int rc = 0;
    for (int e = 1; e <= o->epochs && rc == 0; e++) {
        double t0 = now_s(), loss, tr;
        if (!train_epoch(&t, &loss, &tr)) {
            fprintf(stderr, "resnet_cifar: %s\n", tg_last_error());
            rc = 1;
            break;
        }
        double secs = now_s() - t0;
        acc = test_accuracy(t.net, test_x, test_y);
        printf("%-6d %11.4f %10.4f %9.4f %10.0f %9.1f\n", e, loss, tr, acc,
               (double)(tg_loader_len(t.loader) * o->batch) / secs, secs);
        fflush(stdout);
    }
    if (rc == 0 && acc < o->min_accuracy) {
        fprintf(stderr, "resnet_cifar: test accuracy %.4f is below --min-accuracy %g\n", acc, o->min_accuracy);
        rc = 1;
    }
    tg_model_summary_free(s);
    tg_loader_free(t.loader), tg_dataset_free(ds), tg_sched_free(t.sched), tg_optim_free(t.opt);
    tg_named_free(&p), tg_module_free(t.net);
    for (int i = 0; i < 4; i++) tg_transform_free(tf[i]);
    tg_strings_free(train.classes), tg_strings_free(test.classes);
    return rc;
}

int main(int argc, char **argv) {
    options o = { .depth = 20, .epochs = 30, .batch = 128, .workers = 1, .n = 5000, .lr = 0.1 };
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: resnet_cifar --data DIR [--depth 20] [--epochs E] [--batch B] [--lr X] [--workers W]\n"
                        "                    [--limit N] [--device NAME] [--min-accuracy A]\n"
                        "       resnet_cifar --make-synthetic DIR [--n N] [--data DIR ...]\n");
        return 2;
    }
    int rc = o.synthetic ? make_synthetic(&o) : 0; /* both: make the data, then train on it */
    return rc == 0 && o.data ? train_main(&o) : rc;
}
