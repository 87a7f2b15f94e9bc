/* Training with data augmentation against without (the notes' flip, crop and intensity
 * changes): the notes' CNN on a few thousand Fashion-MNIST images, once on the images as
 * they are and once with random crops of the zero-padded image and horizontal flips made
 * on the loader's worker threads, everything else equal. Augmentation trades training
 * accuracy for test accuracy; the table shows both and the gap between them. It also
 * writes a grid of augmented samples as a PNG to look at.
 *
 *     build/examples/augmentation [--data DIR] [--limit N] [--epochs E] [--workers W]
 *         [--grid FILE] [--device NAME]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mnist.h"
#include "notes_cnn.h"

typedef struct {
    const char *dir, *device, *grid;
    int limit, epochs, workers;
} options;

/* The transforms: [crop, flip,] to_float, normalize. Returns how many. */
static int make_transforms(bool augment, tg_transform **t) {
    static const double mean = PIXEL_MEAN, std = PIXEL_STD;
    int n = 0;
    if (augment) {
        t[n++] = tg_random_crop(&(tg_random_crop_opts){ .size = 28, .padding = 3 });
        t[n++] = tg_random_horizontal_flip(0.5);
    }
    t[n++] = tg_to_float();
    t[n++] = tg_normalize(1, &mean, &std);
    return n;
}

/* Accuracy of net on standardised images x (N,1,28,28), labels y, in eval mode. */
static double accuracy(tg_module *net, tg_tensor *x, tg_tensor *y) {
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(net);
    tg_scope_begin();
    double acc = tg_item(tg_mean(tg_cast(tg_eq(tg_argmax(tg_module_forward(net, x), 1, false), y), TG_F32), TG_ALL, false));
    tg_scope_end();
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    return acc;
}

/* Trains a fresh CNN (the same initial weights for both runs) on ds; train and test
 * accuracy at the end, false on error. */
static bool run(const options *o, tg_dataset *ds, bool augment, tg_tensor *const eval[4], tg_device *dev, double *train_acc,
                double *test_acc) {
    tg_transform *t[4];
    int nt = make_transforms(augment, t);
    tg_manual_seed(5);
    tg_module *net = notes_cnn_new(CLASSES, dev);
    tg_named p = { 0 };
    tg_optim *opt = net && tg_module_parameters(net, true, &p) == TG_OK ? tg_adam_new(p.n, p.tensors, NULL) : NULL;
    tg_loader *loader = opt ? tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 64, .shuffle = true, .seed = 9,
                                                                  .num_workers = o->workers, .transforms = t,
                                                                  .n_transforms = nt, .device = dev })
                            : NULL;
    bool ok = loader != NULL;
    for (int e = 0; e < o->epochs && ok; e++) {
        tg_batch b;
        for (;;) {
            tg_scope_begin();
            bool got = tg_loader_next(loader, &b);
            tg_tensor *loss = got ? tg_cross_entropy(tg_module_forward(net, b.x), b.y) : NULL;
            tg_optim_zero_grad(opt);
            ok = !got ? tg_last_status() == TG_OK : loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK;
            tg_scope_end();
            if (!got || !ok) break;
        }
    }
    if (ok) *train_acc = accuracy(net, eval[0], eval[1]), *test_acc = accuracy(net, eval[2], eval[3]);
    else fprintf(stderr, "augmentation: %s\n", tg_last_error());
    tg_loader_free(loader);
    tg_optim_free(opt);
    tg_named_free(&p);
    tg_module_free(net);
    for (int i = 0; i < nt; i++) tg_transform_free(t[i]);
    return ok;
}

/* 64 augmented training images, before normalisation, as one PNG. */
static bool write_grid(const options *o, tg_tensor *images) {
    tg_transform *t[2] = { tg_random_crop(&(tg_random_crop_opts){ .size = 28, .padding = 3 }),
                           tg_random_horizontal_flip(0.5) };
    tg_tensor *samples[64];
    bool ok = t[0] && t[1];
    for (int i = 0; i < 64 && ok; i++)
        ok = (samples[i] = tg_transforms_apply(2, t, tg_reshape(tg_slice(images, 0, i % 8, i % 8 + 1, 1), TG_SHAPE(1, 28, 28)), 9, 0, i)) != NULL;
    ok = ok && tg_save_image(tg_stack(64, samples, 0), o->grid, 8) == TG_OK;
    tg_transform_free(t[0]), tg_transform_free(t[1]);
    return ok;
}

int main(int argc, char **argv) {
    options o = { .dir = DEFAULT_DATA_DIR, .grid = "augmented.png", .limit = 5000, .epochs = 10, .workers = 1 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) o.dir = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--grid")) o.grid = v;
        else if (!strcmp(a, "--limit")) o.limit = atoi(v);
        else if (!strcmp(a, "--epochs")) o.epochs = atoi(v);
        else if (!strcmp(a, "--workers")) o.workers = atoi(v);
        else return fprintf(stderr, "usage: augmentation [--data DIR] [--limit N] [--epochs E] [--workers W] [--grid FILE] [--device NAME]\n"), 2;
    }
    tg_device *dev;
    split train, test;
    if (o.limit < 64 || o.epochs < 1) return fprintf(stderr, "augmentation: --limit must be >= 64, --epochs >= 1\n"), 2;
    if (!open_fashion_mnist("augmentation", o.dir, o.device, tg_device_get("cpu"), &dev, &train, &test)) return 1;
    tg_tensor *images = tg_reshape(tg_slice(train.x, 0, 0, o.limit, 1), TG_SHAPE(o.limit, 1, 28, 28));
    tg_tensor *labels = tg_slice(train.y, 0, 0, o.limit, 1);
    tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ images, labels });
    tg_tensor *eval[4] = { tg_to(tg_reshape(normalise(tg_slice(train.x, 0, 0, o.limit, 1)), TG_SHAPE(o.limit, 1, 28, 28)), dev),
                           tg_to(labels, dev), tg_to(tg_reshape(normalise(test.x), TG_SHAPE(-1, 1, 28, 28)), dev),
                           tg_to(test.y, dev) };
    if (!ds || !write_grid(&o, images)) {
        fprintf(stderr, "augmentation: %s\n", tg_last_error());
        return 1;
    }
    printf("the notes' CNN, %d training images, %d epochs of Adam (batch 64); augmented samples in %s\n\n", o.limit,
           o.epochs, o.grid);
    printf("%-34s %10s %10s %8s\n", "training data", "train acc", "test acc", "gap");
    static const char *names[2] = { "as they are", "random crop (padding 3) + flip" };
    for (int a = 0; a < 2; a++) {
        double tr, te;
        if (!run(&o, ds, a == 1, eval, dev, &tr, &te)) return 1;
        printf("%-34s %10.4f %10.4f %8.4f\n", names[a], tr, te, tr - te);
        fflush(stdout);
    }
    tg_dataset_free(ds);
    return 0;
}
