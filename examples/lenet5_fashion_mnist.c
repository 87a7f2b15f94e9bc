/* LeNet-5 on Fashion-MNIST: the 1998 network of LeCun et al. (trainable subsampling, C3's
 * partial connection table, the scaled tanh) from the model zoo, beside its modern
 * variant (ReLU, max pooling, full C3). The 28x28 images are zero-padded to LeNet's
 * 32x32 on the loader's workers. Prints the 1998 network's parameters layer by layer (the
 * paper's 156, 12, 1,516, 32, 48,120 and 10,164) and one table: each model's parameters,
 * multiply-adds, test accuracy and training time.
 *
 *     build/examples/lenet5_fashion_mnist [--data DIR] [--epochs E] [--limit N]
 *         [--workers W] [--device NAME] [--min-accuracy A]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mnist.h"

typedef struct {
    const char *dir, *device;
    int epochs, workers;
    long limit;
    double min_accuracy;
} options;

/* Test accuracy of net on standardised padded images x (N,1,32,32), in eval mode. */
static double accuracy(tg_module *net, tg_tensor *x, tg_tensor *y) {
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(net);
    double correct = 0;
    for (int64_t off = 0; off < tg_size(x, 0); off += 1000) {
        tg_scope_begin();
        tg_tensor *pred = tg_argmax(tg_module_forward(net, tg_slice(x, 0, off, off + 1000, 1)), 1, false);
        correct += tg_item(tg_sum(tg_cast(tg_eq(pred, tg_slice(y, 0, off, off + 1000, 1)), TG_F32), TG_ALL, false));
        tg_scope_end();
    }
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    return correct / (double)tg_size(x, 0);
}

/* Adam over the loader for the epochs; false on error. */
static bool fit(tg_module *net, tg_loader *loader, int epochs) {
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK) return false;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, NULL);
    tg_named_free(&p);
    bool ok = opt != NULL;
    for (int e = 0; e < epochs && ok; e++) {
        tg_batch b;
        for (bool more = true; more && ok;) {
            tg_scope_begin();
            more = tg_loader_next(loader, &b);
            if (more) {
                tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, b.x), b.y);
                tg_optim_zero_grad(opt);
                ok = loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK;
            } else {
                ok = tg_last_status() == TG_OK;
            }
            tg_scope_end();
        }
    }
    tg_optim_free(opt);
    return ok;
}

/* The 1998 network's rows: its layers and their parameter counts. */
static void print_layers(tg_module *net) {
    tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 1, 32, 32), &(tg_summary_opts){ .quiet = true, .depth = 1 });
    printf("LeNet-5 (1998), parameters by layer:");
    for (int i = 1; s && i < tg_summary_num_rows(s); i++) {
        const tg_summary_row *r = tg_summary_row_at(s, i);
        if (r->params) printf(" %s %lld", r->name, (long long)r->params);
    }
    printf("\n\n");
    tg_model_summary_free(s);
}

int main(int argc, char **argv) {
    options o = { .dir = DEFAULT_DATA_DIR, .epochs = 3, .workers = 1 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) o.dir = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--epochs")) o.epochs = atoi(v);
        else if (!strcmp(a, "--workers")) o.workers = atoi(v);
        else if (!strcmp(a, "--limit")) o.limit = atol(v);
        else if (!strcmp(a, "--min-accuracy")) o.min_accuracy = atof(v);
        else return fprintf(stderr, "usage: lenet5_fashion_mnist [--data DIR] [--epochs E] [--limit N] [--workers W] [--device NAME] [--min-accuracy A]\n"), 2;
    }
    tg_device *dev;
    split train, test;
    if (o.epochs < 1) return fprintf(stderr, "lenet5_fashion_mnist: --epochs must be >= 1\n"), 2;
    if (!open_fashion_mnist("lenet5_fashion_mnist", o.dir, o.device, tg_device_get("cpu"), &dev, &train, &test)) return 1;
    int64_t n = o.limit > 0 && o.limit < tg_size(train.x, 0) ? o.limit : tg_size(train.x, 0);
    static const double mean = PIXEL_MEAN, std = PIXEL_STD;
    tg_transform *tf[3] = { tg_random_crop(&(tg_random_crop_opts){ .size = 32, .padding = 2 }), /* = pad to 32 */
                            tg_to_float(), tg_normalize(1, &mean, &std) };
    tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ tg_reshape(tg_slice(train.x, 0, 0, n, 1), TG_SHAPE(n, 1, 28, 28)),
                                                                 tg_slice(train.y, 0, 0, n, 1) });
    tg_tensor *test_x = tg_to(tg_pad(tg_reshape(normalise(test.x), TG_SHAPE(-1, 1, 28, 28)), TG_PADS(2, 2, 2, 2), 0), dev);
    tg_tensor *test_y = tg_to(test.y, dev);
    if (!ds || !test_x || !tf[0] || !tf[1] || !tf[2]) {
        fprintf(stderr, "lenet5_fashion_mnist: %s\n", tg_last_error());
        return 1;
    }
    printf("Fashion-MNIST, %lld training images padded to 32x32, %d epochs of Adam (batch 64)\n", (long long)n, o.epochs);
    static const char *names[2] = { "LeNet-5 (1998)", "LeNet-5, modern" };
    int rc = 0;
    for (int m = 0; m < 2 && rc == 0; m++) {
        tg_manual_seed(3);
        tg_module *net = m == 0 ? tg_lenet5_new(10, NULL, dev) : tg_lenet5_modern_new(10, NULL, dev);
        tg_loader *loader = net ? tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 64, .shuffle = true, .seed = 1,
                                                                      .num_workers = o.workers, .transforms = tf,
                                                                      .n_transforms = 3, .device = dev })
                                : NULL;
        tg_model_summary *s = loader ? tg_summary(net, TG_SHAPE(1, 1, 32, 32), &(tg_summary_opts){ .quiet = true }) : NULL;
        if (m == 0 && s) print_layers(net), printf("%-18s %11s %14s %9s %9s\n", "model", "parameters", "mult-adds/img", "test acc", "seconds");
        double t0 = now_s();
        if (!s || !fit(net, loader, o.epochs)) {
            fprintf(stderr, "lenet5_fashion_mnist: %s\n", tg_last_error());
            rc = 1;
        } else {
            double acc = accuracy(net, test_x, test_y);
            printf("%-18s %11lld %14lld %9.4f %9.1f\n", names[m], (long long)tg_summary_totals_of(s)->total_params,
                   (long long)tg_summary_totals_of(s)->mult_adds, acc, now_s() - t0);
            fflush(stdout);
            if (acc < o.min_accuracy) {
                fprintf(stderr, "lenet5_fashion_mnist: %s's accuracy %.4f is below %g\n", names[m], acc, o.min_accuracy);
                rc = 1;
            }
        }
        tg_model_summary_free(s);
        tg_loader_free(loader);
        tg_module_free(net);
    }
    tg_dataset_free(ds);
    for (int i = 0; i < 3; i++) tg_transform_free(tf[i]);
    return rc;
}
