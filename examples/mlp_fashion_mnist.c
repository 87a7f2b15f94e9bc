/* The README's main example: a 784-256-10 MLP (tg_sequential of Linear layers) trained on
 * Fashion-MNIST with SGD (tg_sgd_new), reading Debian's dataset-fashion-mnist IDX files.
 *
 *     build/examples/mlp_fashion_mnist [--data DIR] [--epochs N] [--batch B] [--lr X]
 *         [--constant-lr] [--device NAME] [--limit N] [--seed S] [--min-accuracy A]
 *
 * Ends with "epoch E: test accuracy 0.xxxx"; exit code 1 if the data is missing or
 * corrupt, the library reports an error, or the accuracy is below --min-accuracy. */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"
#include "fashion_mnist.h"
#include "tapegrad/data.h"

#define HIDDEN 256
#define LOG_EVERY 200

typedef struct {
    const char *data_dir, *device;
    double epochs, batch, lr, limit, seed, min_accuracy; /* limit 0: every training image */
    bool constant_lr;
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: mlp_fashion_mnist [--data DIR] [--epochs N] [--batch B] [--lr X] [--constant-lr]\n"
               "                         [--device NAME] [--limit N] [--seed S] [--min-accuracy A]\n"
               "  --data DIR     the IDX files (default " DEFAULT_DATA_DIR ")\n"
               "  --epochs N     passes over the training set (default 1)\n"
               "  --batch B      images per SGD step (default 64)\n"
               "  --lr X         the first step's learning rate; it decays linearly towards 0\n"
               "                 over the run (default 0.1)\n"
               "  --constant-lr  keep the learning rate at X throughout\n"
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
        fprintf(stderr, "mlp_fashion_mnist: %s needs %s in [%.10g, %.10g], got '%s'\n", no->flag,
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
        if (!strcmp(a, "--constant-lr")) o->constant_lr = true;
        else if (!strcmp(a, "--data") && v) o->data_dir = argv[++i];
        else if (!strcmp(a, "--device") && v) o->device = argv[++i];
        else if (no && parse_num(no, v, o)) i++;
        else {
            if (!no) fprintf(stderr, "mlp_fashion_mnist: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* ------------------------------------------------------------- the model (data: fashion_mnist.h) */

/* Linear(784, 256), ReLU, Linear(256, 10): "0.weight" (256,784), "0.bias", "2.weight",
 * "2.bias". Kaiming-uniform weights for ReLU (bound sqrt(6 / fan_in)) and zero biases
 * rather than PyTorch's Linear defaults: SGD at lr 0.1 starts faster from them. */
static tg_module *mlp_new(tg_device *dev) {
    tg_module *net = tg_sequential(tg_linear_new(IMAGE_SIZE, HIDDEN, NULL, dev), tg_relu_new(),
                                   tg_linear_new(HIDDEN, CLASSES, NULL, dev));
    const tg_kaiming_opts relu = { .nonlinearity = TG_NONLINEARITY_RELU };
    for (int i = 0; net && i < 3; i += 2) {
        tg_module *fc = tg_module_child(net, i);
        if (tg_init_kaiming_uniform_(tg_module_get_param(fc, "weight"), &relu) != TG_OK ||
            tg_init_zeros_(tg_module_get_param(fc, "bias")) != TG_OK) {
            tg_module_free(net);
            return NULL;
        }
    }
    return net;
}

/* u8 pixels (B,784) -> logits (B,10) */
static tg_tensor *mlp_forward(tg_module *net, tg_tensor *pixels) { return tg_module_forward(net, normalise(pixels)); }

/* Plain SGD over the model's parameters; the learning rate is set before each step. */
static tg_optim *make_sgd(tg_module *net, double lr) {
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK) return NULL;
    tg_optim *opt = tg_sgd_new(p.n, p.tensors, &(tg_sgd_opts){ .lr = TG_SOME(lr) });
    tg_named_free(&p);
    return opt;
}

/* ------------------------------------------------------------- train and test */

/* Fraction of test images whose largest logit is the label; NaN on error. */
static double evaluate(tg_module *m, const split *test) {
    const int64_t n = tg_size(test->x, 0), bs = 1000;
    bool prev = tg_set_grad_enabled(false);
    double correct = 0;
    for (int64_t off = 0; off < n && !isnan(correct); off += bs) {
        tg_scope_begin();
        tg_tensor *pred = tg_argmax(mlp_forward(m, tg_slice(test->x, 0, off, off + bs, 1)), 1, false);
        tg_tensor *hit = tg_cast(tg_eq(pred, tg_slice(test->y, 0, off, off + bs, 1)), TG_F32);
        correct += tg_item(tg_sum(hit, TG_ALL, false));
        tg_scope_end();
    }
    tg_set_grad_enabled(prev);
    return correct / (double)n;
}

/* Where a run stands: the order of this epoch's images and the step count over all epochs. */
typedef struct {
    int32_t *perm;
    uint64_t rng;
    int64_t step, total_steps;
} progress;

/* The learning rate falls linearly from lr towards 0 over the run, unless constant:
 * SGD's last iterate is then far less noisy (about +1.5 points of test accuracy
 * after one epoch, and no unlucky seeds). */
static double lr_at(const options *o, const progress *p) {
    return o->constant_lr ? o->lr : o->lr * (1.0 - (double)p->step / (double)p->total_steps);
}

/* One training step on the images perm[off, off+nb); its loss, NaN (message set) on error. */
static double train_step(tg_module *m, tg_optim *opt, const split *train, const int32_t *perm, int64_t nb, double lr) {
    tg_scope_begin();
    tg_tensor *idx = tg_from_i32(perm, TG_SHAPE(nb), tg_device_of(train->x));
    tg_tensor *xb = tg_index_select(train->x, 0, idx), *yb = tg_index_select(train->y, 0, idx);
    tg_tensor *loss = tg_cross_entropy(mlp_forward(m, xb), yb);
    double l = tg_item(loss);
    tg_optim_zero_grad(opt);
    if (loss && (tg_backward(loss) != TG_OK || tg_optim_set_lr(opt, 0, lr) != TG_OK || tg_optim_step(opt) != TG_OK))
        l = NAN;
    tg_scope_end();
    return l;
}

/* One pass over train in a fresh random order; false (message printed) on error. */
static bool train_epoch(tg_module *m, tg_optim *opt, const split *train, const options *o, int epoch, progress *p) {
    const int64_t n = tg_size(train->x, 0), batch = (int64_t)o->batch, steps = (n + batch - 1) / batch;
    shuffle(p->perm, n, &p->rng);
    double t0 = now_s(), t_log = t0, loss_sum = 0, epoch_loss = 0;
    int64_t seen = 0, logged = 0;
    for (int64_t step = 0; step < steps; step++, p->step++) {
        int64_t off = step * batch, nb = n - off < batch ? n - off : batch;
        double l = train_step(m, opt, train, p->perm + off, nb, lr_at(o, p));
        if (isnan(l)) {
            fprintf(stderr, "mlp_fashion_mnist: step %lld: %s\n", (long long)step + 1,
                    *tg_last_error() ? tg_last_error() : "the loss is NaN");
            return false;
        }
        loss_sum += l;
        epoch_loss += l;
        seen += nb;
        if ((step + 1) % LOG_EVERY == 0 || step + 1 == steps) {
            double t = now_s();
            printf("epoch %d step %4lld/%lld  loss %.4f  lr %.4f  %.0f images/s\n", epoch, (long long)step + 1,
                   (long long)steps, loss_sum / (double)(step + 1 - logged), lr_at(o, p), (double)seen / (t - t_log));
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

int main(int argc, char **argv) {
    options o = { .data_dir = DEFAULT_DATA_DIR, .epochs = 1, .batch = 64, .lr = 0.1, .seed = 42 };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;

    tg_device *dev = tg_device_get(o.device);
    if (!dev) {
        fprintf(stderr, "mlp_fashion_mnist: %s\n", tg_last_error());
        return 1;
    }
    tg_manual_seed((uint64_t)o.seed);
    double t0 = now_s();
    split train, test;
    if (!load_split("mlp_fashion_mnist", o.data_dir, "train", dev, &train) || !load_split("mlp_fashion_mnist", o.data_dir, "t10k", dev, &test)) return 1;
    if (o.limit > 0 && o.limit < (double)tg_size(train.x, 0)) {
        train.x = tg_slice(train.x, 0, 0, (int64_t)o.limit, 1);
        train.y = tg_slice(train.y, 0, 0, (int64_t)o.limit, 1);
    }
    int64_t n = tg_size(train.x, 0), batch = (int64_t)o.batch;
    printf("device %s, %lld training and %lld test images (loaded in %.2f s), batch %lld, lr %g%s\n",
           tg_device_name(dev), (long long)n, (long long)tg_size(test.x, 0), now_s() - t0, (long long)batch, o.lr,
           o.constant_lr ? "" : " decaying linearly");

    tg_module *m = mlp_new(dev);
    tg_optim *opt = m ? make_sgd(m, o.lr) : NULL;
    progress p = { .perm = malloc((size_t)n * sizeof *p.perm), .rng = (uint64_t)o.seed,
                   .total_steps = (int64_t)o.epochs * ((n + batch - 1) / batch) };
    if (!p.perm || !opt) {
        fprintf(stderr, "mlp_fashion_mnist: %s\n", p.perm ? tg_last_error() : "out of memory");
        free(p.perm);
        tg_optim_free(opt);
        tg_module_free(m);
        return 1;
    }
    rc = 0;
    for (int e = 1; e <= (int)o.epochs && rc == 0; e++) {
        double acc = train_epoch(m, opt, &train, &o, e, &p) ? evaluate(m, &test) : NAN;
        if (isnan(acc)) {
            if (*tg_last_error()) fprintf(stderr, "mlp_fashion_mnist: epoch %d: %s\n", e, tg_last_error());
            rc = 1;
        } else {
            printf("epoch %d: test accuracy %.4f\n", e, acc);
            if (e == (int)o.epochs && acc < o.min_accuracy) {
                fprintf(stderr, "mlp_fashion_mnist: test accuracy %.4f is below --min-accuracy %g\n", acc,
                        o.min_accuracy);
                rc = 1;
            }
        }
    }
    free(p.perm);
    tg_optim_free(opt);
    tg_module_free(m);
    return rc;
}
