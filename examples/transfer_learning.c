/* Transfer learning as the notes describe it: train the notes' CNN on five of
 * Fashion-MNIST's classes (T-shirt, trouser, coat, sandal, bag), then reuse its
 * convolutional features for the other five (pullover, dress, shirt, sneaker, ankle boot)
 * with few labelled images: (a) features frozen and a new linear head trained, (b) the
 * whole network fine-tuned from the pretrained weights, (c) the same network trained
 * from scratch on the same few images. Prints one table: trainable parameters and test
 * accuracy on the new classes for each.
 *
 *     build/examples/transfer_learning [--data DIR] [--pretrain-limit N] [--few K]
 *         [--epochs E] [--device NAME] [--check]
 *
 * --few K: labelled training images per new class (default 10). --check makes it a test:
 * exit 1 unless fine-tuning the pretrained network beats training from scratch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mnist.h"
#include "notes_cnn.h"

/* The two tasks: each shares kinds of garment with the other (tops, footwear). */
static const int old_classes[5] = { 0, 1, 4, 5, 8 }, new_classes[5] = { 2, 3, 6, 7, 9 };

/* The images of the five classes, at most per_class of each (0: all), standardised
 * (k,1,28,28) and labelled 0..4 by their place in classes. */
static split subset(const split *s, const int *classes, int per_class) {
    int64_t n = tg_size(s->y, 0), k = 0;
    int32_t *y = malloc((size_t)n * sizeof *y), *idx = malloc((size_t)n * sizeof *idx), *lab = malloc((size_t)n * sizeof *lab);
    int count[CLASSES] = { 0 }, place[CLASSES];
    split out = { 0 };
    for (int c = 0; c < CLASSES; c++) place[c] = -1;
    for (int i = 0; i < 5; i++) place[classes[i]] = i;
    if (!y || !idx || !lab || tg_copy_to_host(s->y, y, (size_t)n * sizeof *y) != TG_OK) goto done;
    for (int64_t i = 0; i < n; i++)
        if (place[y[i]] >= 0 && (!per_class || count[y[i]] < per_class))
            count[y[i]]++, lab[k] = place[y[i]], idx[k++] = (int32_t)i;
    tg_tensor *pixels = tg_index_select(s->x, 0, tg_from_i32(idx, TG_SHAPE(k), tg_device_of(s->x)));
    out.x = tg_reshape(normalise(pixels), TG_SHAPE(k, 1, 28, 28)); /* what the CNN reads */
    out.y = tg_from_i32(lab, TG_SHAPE(k), tg_device_of(s->x));
done:
    free(y), free(idx), free(lab);
    return out;
}

static double accuracy(tg_module *net, const split *s) {
    bool prev = tg_set_grad_enabled(false);
    tg_module_train(net, false);
    tg_scope_begin();
    tg_tensor *pred = tg_argmax(tg_module_forward(net, s->x), 1, false);
    double acc = tg_item(tg_mean(tg_cast(tg_eq(pred, s->y), TG_F32), TG_ALL, false));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return acc;
}

/* Adam on the trainable parameters for `epochs` passes in batches of 32; frozen blocks
 * stay in eval mode so their BatchNorm statistics are the pretrained ones too. */
static bool fit(tg_module *net, const split *s, int epochs, double lr, bool frozen_features, uint64_t seed) {
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK) return false;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, &(tg_adam_opts){ .lr = TG_SOME(lr) });
    tg_named_free(&p);
    int64_t n = tg_size(s->x, 0);
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    bool ok = opt && perm;
    notes_cnn *m = tg_module_data(net);
    for (int e = 0; e < epochs && ok; e++) {
        shuffle(perm, n, &seed);
        tg_module_train(net, true);
        if (frozen_features) tg_module_eval(m->layer1), tg_module_eval(m->layer2);
        for (int64_t off = 0; off < n && ok; off += 32) {
            int64_t nb = n - off < 32 ? n - off : 32;
            tg_scope_begin();
            tg_tensor *idx = tg_from_i32(perm + off, TG_SHAPE(nb), tg_device_of(s->x));
            tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, tg_index_select(s->x, 0, idx)),
                                               tg_index_select(s->y, 0, idx));
            tg_optim_zero_grad(opt);
            ok = loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK;
            tg_scope_end();
        }
    }
    if (!ok) fprintf(stderr, "transfer_learning: %s\n", tg_last_error());
    tg_optim_free(opt);
    free(perm);
    return ok;
}

typedef struct {
    const char *dir, *device;
    int pretrain_limit, few, epochs;
    bool check;
} options;

static bool parse(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--check")) o->check = true;
        else if (!strcmp(a, "--data")) o->dir = v, i++;
        else if (!strcmp(a, "--device")) o->device = v, i++;
        else if (!strcmp(a, "--pretrain-limit")) o->pretrain_limit = atoi(v), i++;
        else if (!strcmp(a, "--few")) o->few = atoi(v), i++;
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v), i++;
        else return false;
    }
    return o->few > 0 && o->epochs > 0 && o->pretrain_limit >= 0;
}

int main(int argc, char **argv) {
    options o = { .dir = DEFAULT_DATA_DIR, .few = 10, .epochs = 10 };
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: transfer_learning [--data DIR] [--pretrain-limit N] [--few K] [--epochs E]\n"
                        "                         [--device NAME] [--check]\n");
        return 2;
    }
    tg_device *dev;
    split train, test;
    if (!open_fashion_mnist("transfer_learning", o.dir, o.device, NULL, &dev, &train, &test)) return 1;
    split old_train = subset(&train, old_classes, o.pretrain_limit / 5), old_test = subset(&test, old_classes, 0);
    split new_train = subset(&train, new_classes, o.few), new_test = subset(&test, new_classes, 0);
    tg_manual_seed(11);
    tg_module *pre = notes_cnn_new(5, dev);
    double t0 = now_s();
    if (!pre || !old_train.x || !new_train.x || !fit(pre, &old_train, 2, 1e-3, false, 1)) return 1;
    printf("pretrained on classes 0 1 4 5 8 (%lld images, 2 epochs): test accuracy %.4f there (%.1f s)\n",
           (long long)tg_size(old_train.x, 0), accuracy(pre, &old_test), now_s() - t0);
    printf("new task: classes 2 3 6 7 9 from %d labelled images each, %d epochs; tested on %lld images\n\n", o.few, o.epochs,
           (long long)tg_size(new_test.x, 0));
    printf("%-40s %12s %10s\n", "method", "trainable", "test acc");
    tg_state_dict *features = tg_module_state_dict(pre);
    double acc[3];
    static const char *names[] = { "frozen features, new head", "fine-tuned, new head", "from scratch" };
    for (int m = 0; m < 3; m++) {
        tg_manual_seed(100);
        tg_module *net = notes_cnn_new(5, dev);
        tg_load_opts lo = { .non_strict = true };
        if (!net || (m < 2 && (tg_module_load_state_dict(net, features, &lo) != TG_OK ||
                               tg_module_replace(net, "fc", tg_linear_new(7 * 7 * 32, 5, NULL, dev)) != TG_OK))) {
            fprintf(stderr, "transfer_learning: %s\n", tg_last_error());
            return 1;
        }
        if (m == 0) {
            tg_module_requires_grad_(tg_module_get(net, "layer1"), false);
            tg_module_requires_grad_(tg_module_get(net, "layer2"), false);
        }
        if (!fit(net, &new_train, o.epochs, m == 1 ? 3e-4 : 1e-3, m == 0, 5)) return 1;
        acc[m] = accuracy(net, &new_test);
        printf("%-40s %12lld %10.4f\n", names[m], (long long)tg_module_num_parameters(net, true), acc[m]);
        tg_module_free(net);
    }
    tg_state_dict_free(features);
    tg_module_free(pre);
    if (o.check && !(acc[1] > acc[2])) {
        fprintf(stderr, "transfer_learning: fine-tuning did not beat training from scratch\n");
        return 1;
    }
    return 0;
}
