/* The notes' CNN on Fashion-MNIST, written with the nn modules and Adam: two blocks of
 * conv 5x5 (padding 2), BatchNorm2d, ReLU and 2x2 max pooling (1 -> 16 -> 32 channels,
 * 28 -> 14 -> 7 pixels), then a linear layer 7*7*32 = 1568 -> 10.
 *
 *     build/examples/cnn_fashion_mnist [--data DIR] [--epochs N] [--batch B] [--lr X]
 *         [--device NAME] [--limit N] [--seed S] [--min-accuracy A]
 *
 * Prints the loss as it trains, each epoch's mean loss and test accuracy; exit code 1 if
 * the data is missing or corrupt, the library reports an error, or the final accuracy is
 * below --min-accuracy. */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"
#include "fashion_mnist.h"

#define LOG_EVERY 50

typedef struct {
    const char *data_dir, *device;
    double epochs, batch, lr, limit, seed, min_accuracy; /* limit 0: every training image */
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: cnn_fashion_mnist [--data DIR] [--epochs N] [--batch B] [--lr X]\n"
               "                         [--device NAME] [--limit N] [--seed S] [--min-accuracy A]\n"
               "  --data DIR     the IDX files (default " DEFAULT_DATA_DIR ")\n"
               "  --epochs N     passes over the training set (default 1)\n"
               "  --batch B      images per Adam step (default 64)\n"
               "  --lr X         Adam's learning rate (default 0.001)\n"
               "  --device NAME  cpu, opencl, opencl:N (default $TG_DEVICE, else cpu)\n"
               "  --limit N      train on the first N images only (default all)\n"
               "  --seed S       seeds the initialisation and the shuffle (default 42)\n"
               "  --min-accuracy A  exit 1 if the final test accuracy is below A (for tests)\n");
}

/* ------------------------------------------------------------- options */

/* The numeric options: flag, where it goes, and its range. */
typedef struct {
    const char *flag;
    size_t offset;
    double lo, hi;
} num_option;

static const num_option k_num_options[] = {
    { "--epochs", offsetof(options, epochs), 1, 1000 },
    { "--batch", offsetof(options, batch), 1, 1 << 20 },
    { "--lr", offsetof(options, lr), 1e-9, 1e3 },
    { "--limit", offsetof(options, limit), 1, 1e9 },
    { "--seed", offsetof(options, seed), 0, 1e15 },
    { "--min-accuracy", offsetof(options, min_accuracy), 0, 1 },
};

/* Reads the value of a numeric flag; false (message printed) if it is not a number in
 * range, integers only except --lr. */
static bool parse_num(const num_option *no, const char *s, options *o) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    bool real = !strcmp(no->flag, "--lr") || !strcmp(no->flag, "--min-accuracy"), integral = real || v == floor(v);
    if (!s || end == s || *end || errno || !(v >= no->lo && v <= no->hi) || !integral) {
        fprintf(stderr, "cnn_fashion_mnist: %s needs %s in [%.10g, %.10g], got '%s'\n", no->flag,
                real ? "a number" : "an integer", no->lo, no->hi, s ? s : "");
        return false;
    }
    *(double *)((char *)o + no->offset) = v;
    return true;
}

static const num_option *find_num_option(const char *flag) {
    for (size_t k = 0; k < sizeof k_num_options / sizeof k_num_options[0]; k++)
        if (!strcmp(flag, k_num_options[k].flag)) return &k_num_options[k];
    return NULL;
}

/* Returns -1 to go on, else the exit code: 0 after --help, 2 for bad usage. */
static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const num_option *no = find_num_option(a);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--data") && v) o->data_dir = argv[++i];
        else if (!strcmp(a, "--device") && v) o->device = argv[++i];
        else if (no && parse_num(no, v, o)) i++;
        else {
            if (!no) fprintf(stderr, "cnn_fashion_mnist: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* ------------------------------------------------------------- the model (data: fashion_mnist.h) */

/* Its children as PyTorch's tutorial names them: "layer1.0.weight" (the conv),
 * "layer1.1.running_mean" (the BatchNorm), ..., "fc.weight". */
typedef struct {
    tg_module *layer1, *layer2, *fc;
} cnn;

/* u8 pixels (B,784) -> logits (B,10) */
static tg_tensor *cnn_forward(tg_module *self, tg_tensor *pixels) {
    cnn *m = tg_module_data(self);
    tg_tensor *x = tg_reshape(normalise(pixels), TG_SHAPE(-1, 1, 28, 28));
    x = tg_module_forward(m->layer2, tg_module_forward(m->layer1, x)); /* (B,32,7,7) */
    return tg_module_forward(m->fc, tg_flatten(x, 1));
}

static const tg_module_type cnn_type = { "CNN", sizeof(cnn), cnn_forward, NULL, NULL, NULL };

/* conv 5x5 (padding 2), BatchNorm2d, ReLU, max pool 2: (B,in,H,W) -> (B,out,H/2,W/2) */
static tg_module *conv_block(int64_t in, int64_t out, tg_device *dev) {
    return tg_sequential(tg_conv2d_new(in, out, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev),
                         tg_batchnorm2d_new(out, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }));
}

static tg_module *cnn_new(tg_device *dev) {
    tg_module *self = tg_module_new(&cnn_type);
    if (!self) return NULL;
    cnn *m = tg_module_data(self);
    tg_module_add(self, "layer1", &m->layer1, conv_block(1, 16, dev));
    tg_module_add(self, "layer2", &m->layer2, conv_block(16, 32, dev));
    tg_module_add(self, "fc", &m->fc, tg_linear_new(7 * 7 * 32, CLASSES, NULL, dev));
    return tg_module_done(self);
}

/* ------------------------------------------------------------- train and test */

/* Fraction of test images whose largest logit is the label, in eval mode (BatchNorm's
 * running statistics); NaN on error. */
static double evaluate(tg_module *net, const split *test) {
    const int64_t n = tg_size(test->x, 0), bs = 500;
    bool prev = tg_set_grad_enabled(false);
    tg_module_eval(net);
    double correct = 0;
    for (int64_t off = 0; off < n && !isnan(correct); off += bs) {
        tg_scope_begin();
        tg_tensor *pred = tg_argmax(tg_module_forward(net, tg_slice(test->x, 0, off, off + bs, 1)), 1, false);
        tg_tensor *hit = tg_cast(tg_eq(pred, tg_slice(test->y, 0, off, off + bs, 1)), TG_F32);
        correct += tg_item(tg_sum(hit, TG_ALL, false));
        tg_scope_end();
    }
    tg_module_train(net, true);
    tg_set_grad_enabled(prev);
    return correct / (double)n;
}

/* One Adam step on the images perm[0, nb); its loss, NaN (message set) on error. */
static double train_step(tg_module *net, tg_optim *opt, const split *train, const int32_t *perm, int64_t nb) {
    tg_scope_begin();
    tg_tensor *idx = tg_from_i32(perm, TG_SHAPE(nb), tg_device_of(train->x));
    tg_tensor *xb = tg_index_select(train->x, 0, idx), *yb = tg_index_select(train->y, 0, idx);
    tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, xb), yb);
    double l = tg_item(loss);
    tg_optim_zero_grad(opt);
    if (loss && (tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK)) l = NAN;
    tg_scope_end();
    return l;
}

/* One pass over train in a fresh random order; false (message printed) on error. */
static bool train_epoch(tg_module *net, tg_optim *opt, const split *train, const options *o, int epoch, int32_t *perm,
                        uint64_t *rng) {
    const int64_t n = tg_size(train->x, 0), batch = (int64_t)o->batch, steps = (n + batch - 1) / batch;
    shuffle(perm, n, rng);
    double t0 = now_s(), t_log = t0, loss_sum = 0, epoch_loss = 0;
    int64_t seen = 0, logged = 0;
    for (int64_t step = 0; step < steps; step++) {
        int64_t off = step * batch, nb = n - off < batch ? n - off : batch;
        double l = train_step(net, opt, train, perm + off, nb);
        if (isnan(l)) {
            fprintf(stderr, "cnn_fashion_mnist: step %lld: %s\n", (long long)step + 1,
                    *tg_last_error() ? tg_last_error() : "the loss is NaN");
            return false;
        }
        loss_sum += l;
        epoch_loss += l;
        seen += nb;
        if ((step + 1) % LOG_EVERY == 0 || step + 1 == steps) {
            double t = now_s();
            printf("epoch %d step %4lld/%lld  loss %.4f  %.0f images/s\n", epoch, (long long)step + 1, (long long)steps,
                   loss_sum / (double)(step + 1 - logged), (double)seen / (t - t_log));
            fflush(stdout);
            loss_sum = 0;
            logged = step + 1;
            seen = 0;
            t_log = t;
        }
    }
    double dt = now_s() - t0;
    printf("epoch %d done: %lld steps in %.2f s (%.0f images/s), mean loss %.4f\n", epoch, (long long)steps, dt,
           (double)n / dt, epoch_loss / (double)steps);
    return true;
}

/* Adam over the model's trainable parameters. */
static tg_optim *make_adam(tg_module *net, double lr) {
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK) return NULL;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, &(tg_adam_opts){ .lr = TG_SOME(lr) });
    tg_named_free(&p);
    return opt;
}

int main(int argc, char **argv) {
    options o = { .data_dir = DEFAULT_DATA_DIR, .epochs = 1, .batch = 64, .lr = 1e-3, .seed = 42 };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;

    tg_device *dev = tg_device_get(o.device);
    if (!dev) {
        fprintf(stderr, "cnn_fashion_mnist: %s\n", tg_last_error());
        return 1;
    }
    tg_manual_seed((uint64_t)o.seed);
    double t0 = now_s();
    split train, test;
    if (!load_split("cnn_fashion_mnist", o.data_dir, "train", dev, &train) || !load_split("cnn_fashion_mnist", o.data_dir, "t10k", dev, &test)) return 1;
    if (o.limit > 0 && o.limit < (double)tg_size(train.x, 0)) {
        train.x = tg_slice(train.x, 0, 0, (int64_t)o.limit, 1);
        train.y = tg_slice(train.y, 0, 0, (int64_t)o.limit, 1);
    }
    int64_t n = tg_size(train.x, 0);
    printf("device %s, %lld training and %lld test images (loaded in %.2f s), batch %lld, Adam lr %g\n",
           tg_device_name(dev), (long long)n, (long long)tg_size(test.x, 0), now_s() - t0, (long long)o.batch, o.lr);

    tg_module *net = cnn_new(dev);
    tg_optim *opt = net ? make_adam(net, o.lr) : NULL;
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    uint64_t rng = (uint64_t)o.seed;
    if (!perm || !opt) {
        fprintf(stderr, "cnn_fashion_mnist: %s\n", perm ? tg_last_error() : "out of memory");
        rc = 1;
    } else {
        printf("%lld parameters\n", (long long)tg_module_num_parameters(net, true));
        rc = 0;
    }
    for (int e = 1; e <= (int)o.epochs && rc == 0; e++) {
        double acc = train_epoch(net, opt, &train, &o, e, perm, &rng) ? evaluate(net, &test) : NAN;
        if (isnan(acc)) {
            if (*tg_last_error()) fprintf(stderr, "cnn_fashion_mnist: epoch %d: %s\n", e, tg_last_error());
            rc = 1;
        } else {
            printf("epoch %d: test accuracy %.4f\n", e, acc);
            if (e == (int)o.epochs && acc < o.min_accuracy) {
                fprintf(stderr, "cnn_fashion_mnist: test accuracy %.4f is below --min-accuracy %g\n", acc,
                        o.min_accuracy);
                rc = 1;
            }
        }
    }
    free(perm);
    tg_optim_free(opt);
    tg_module_free(net);
    return rc;
}
