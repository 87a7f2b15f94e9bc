/* Does training wait on the loader? Trains the course notes' CNN (conv5x5 1->16 pad 2,
 * BN, ReLU, maxpool 2; conv5x5 16->32 pad 2, BN, ReLU, maxpool 2; linear 7*7*32 -> 10;
 * Adam) on Fashion-MNIST (synthetic images of that shape when the files are absent)
 * with flip + crop (padding 2) augmentation made by the loader's workers, and reports
 * the fraction of step time spent inside tg_loader_next. Measures, never asserts.
 * Usage: bench_loader [--steps S] [--batch B] [--workers W ...] [--device NAME] [--data DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

#define MAX_RUNS 8

typedef struct {
    int steps, batch, n_workers, workers[MAX_RUNS];
    const char *device, *data;
} options;

static tg_module *conv_block(int64_t in, int64_t out, tg_device *dev) {
    return tg_sequential(tg_conv2d_new(in, out, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev),
                         tg_batchnorm2d_new(out, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }));
}

/* (B,1,28,28) -> (B,10) */
static tg_module *cnn_new(tg_device *dev) {
    return tg_sequential(conv_block(1, 16, dev), conv_block(16, 32, dev), tg_flatten_new(1, -1),
                         tg_linear_new(7 * 7 * 32, 10, NULL, dev));
}

/* u8 images (N,1,28,28) and i32 labels: the files, else 6,000 synthetic ones. */
static bool load(const char *dir, tg_tensor **x, tg_tensor **y, bool *real) {
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    tg_device *cpu = tg_device_get("cpu");
    tg_tensor *img = tg_idx_load(ip, cpu), *lab = img ? tg_idx_load(lp, cpu) : NULL;
    *real = img && lab;
    if (!*real) {
        tg_manual_seed(1);
        img = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(6000, 28, 28), cpu), 255), TG_U8);
        lab = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(6000), cpu), 9.99), TG_U8);
    }
    *x = tg_keep(tg_reshape(img, TG_SHAPE(-1, 1, 28, 28)));
    *y = tg_keep(tg_cast(lab, TG_I32));
    return *x && *y;
}

/* One run: steps training steps fed by a loader with `workers` workers; prints a row. */
static bool run(const options *o, tg_dataset *ds, tg_device *dev, int workers) {
    tg_manual_seed(42);
    tg_module *net = cnn_new(dev);
    tg_named p;
    if (!net || tg_module_parameters(net, true, &p) != TG_OK) return false;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, NULL);
    tg_named_free(&p);
    tg_transform *tf[] = { tg_random_horizontal_flip(0.5),
                           tg_random_crop(&(tg_random_crop_opts){ .size = 28, .padding = 2 }), tg_to_float(),
                           tg_normalize(1, (double[]){ 0.2860 }, (double[]){ 0.3530 }) };
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = o->batch, .shuffle = true, .seed = 7,
                                                       .drop_last = true, .num_workers = workers, .transforms = tf,
                                                       .n_transforms = 4, .device = dev });
    bool ok = opt && l;
    tg_batch b;
    int step = -3; /* three warm-up steps, not counted */
    double t0 = 0, wait0 = 0, worst = 0;
    int64_t late0 = 0;
    for (; ok && step < o->steps; step++) {
        if (step == 0) {
            tg_loader_stats st;
            tg_loader_get_stats(l, &st);
            t0 = bench_now(), wait0 = st.wait_seconds, late0 = st.late;
        }
        tg_scope_begin();
        double tw = bench_now();
        if (!tg_loader_next(l, &b) && !tg_loader_next(l, &b)) ok = false; /* an epoch's end: go on */
        if (step >= 0 && bench_now() - tw > worst) worst = bench_now() - tw;
        tg_tensor *loss = ok ? tg_cross_entropy(tg_module_forward(net, b.x), b.y) : NULL;
        tg_optim_zero_grad(opt);
        ok = ok && loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK && tg_item(loss) == tg_item(loss);
        tg_scope_end();
    }
    tg_device_synchronize(dev);
    if (ok) {
        tg_loader_stats st;
        tg_loader_get_stats(l, &st);
        double total = bench_now() - t0, wait = st.wait_seconds - wait0;
        printf("%-8d %6d %10.2f %10.3f %10.3f %9.2f%% %6lld %10.0f\n", workers, o->steps, 1e3 * total / o->steps,
               1e3 * wait / o->steps, 1e3 * worst, 100 * wait / total, workers ? (long long)(st.late - late0) : -1LL,
               o->steps * o->batch / total);
        printf("{\"bench\":\"loader\",\"device\":\"%s\",\"workers\":%d,\"batch\":%d,\"steps\":%d,\"step_ms\":%.3f,"
               "\"wait_ms\":%.4f,\"wait_fraction\":%.5f}\n", tg_device_name(dev), workers, o->batch, o->steps,
               1e3 * total / o->steps, 1e3 * wait / o->steps, wait / total);
    } else {
        fprintf(stderr, "bench_loader: %s\n", tg_last_error());
    }
    tg_loader_free(l);
    for (int i = 0; i < 4; i++) tg_transform_free(tf[i]);
    tg_optim_free(opt);
    tg_module_free(net);
    return ok;
}

static int parse(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--steps") && v) o->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && v) o->batch = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && v) o->device = argv[++i];
        else if (!strcmp(a, "--data") && v) o->data = argv[++i];
        else if (!strcmp(a, "--workers") && v && o->n_workers < MAX_RUNS) o->workers[o->n_workers++] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_loader [--steps S] [--batch B] [--workers W ...] [--device NAME] [--data DIR]\n");
            return 2;
        }
    }
    if (o->steps < 1 || o->batch < 1) return fprintf(stderr, "bench_loader: steps and batch must be >= 1\n"), 2;
    if (!o->n_workers) o->workers[o->n_workers++] = 0, o->workers[o->n_workers++] = 1, o->workers[o->n_workers++] = 2;
    return -1;
}

int main(int argc, char **argv) {
    options o = { .steps = 60, .batch = 64, .data = "/usr/share/datasets/fashion-mnist" };
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    tg_device *dev = tg_device_get(o.device);
    tg_tensor *x, *y;
    bool real;
    if (!dev || !load(o.data, &x, &y, &real)) return fprintf(stderr, "bench_loader: %s\n", tg_last_error()), 1;
    tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ x, y });
    printf("loader bench: notes' CNN + Adam, batch %d, flip + crop(28, pad 2) + to_float + normalize, device %s, "
           "%s (%lld images), %d compute threads\n", o.batch, tg_device_name(dev),
           real ? "Fashion-MNIST" : "synthetic data", (long long)tg_size(x, 0), tg_get_num_threads());
    printf("%-8s %6s %10s %10s %10s %10s %6s %10s\n", "workers", "steps", "step ms", "wait ms", "worst ms", "waiting",
           "late", "images/s");
    bool ok = ds != NULL;
    for (int i = 0; i < o.n_workers && ok; i++) ok = run(&o, ds, dev, o.workers[i]);
    tg_dataset_free(ds);
    return ok ? 0 : 1;
}
