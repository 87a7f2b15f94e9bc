/* A snapshot ensemble (Huang et al. 2017, in the notes' words "a model ensemble for free"):
 * one training run of an MLP on Fashion-MNIST with SGD under cosine annealing with warm
 * restarts (SGDR), a copy of the parameters taken at the end of each cycle, where the
 * learning rate is at its lowest, and the snapshots' softmax outputs averaged. Prints one
 * table: each snapshot's test accuracy, the best of them, and the ensemble's.
 *
 *     build/examples/snapshot_ensemble [--data DIR] [--limit N] [--cycles M]
 *         [--cycle-epochs E] [--lr X] [--device NAME] [--check]
 *
 * --check makes it a test: exit 1 unless the ensemble is at least as accurate as the best
 * single snapshot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mnist.h"

typedef struct {
    const char *dir, *device;
    int limit, cycles, cycle_epochs, batch;
    double lr;
    bool check;
} options;

static tg_tensor *mlp_logits(void *ctx, tg_tensor *pixels) { return tg_module_forward(ctx, normalise(pixels)); }

/* Test accuracy of probabilities or logits (N, 10) against labels. */
static double accuracy_of(tg_tensor *scores, tg_tensor *labels) {
    return tg_item(tg_mean(tg_cast(tg_eq(tg_argmax(scores, 1, false), labels), TG_F32), TG_ALL, false));
}

/* The test set's accuracy under the parameters as they are now. */
static double test_accuracy(tg_module *net, const split *test) {
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    double acc = accuracy_of(mlp_logits(net, test->x), test->y);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return acc;
}

/* One epoch of SGD steps, the schedule stepped after each; a snapshot whenever the
 * schedule restarts (the step before used the cycle's smallest learning rate). */
static bool train_epoch(tg_module *net, tg_optim *opt, tg_sched *sched, tg_snapshots *snaps, const split *train,
                        int32_t *perm, uint64_t *rng, int batch) {
    int64_t n = tg_size(train->x, 0);
    shuffle(perm, n, rng);
    for (int64_t off = 0; off + batch <= n; off += batch) {
        tg_scope_begin();
        tg_tensor *idx = tg_from_i32(perm + off, TG_SHAPE(batch), tg_device_of(train->x));
        tg_tensor *loss = tg_cross_entropy(mlp_logits(net, tg_index_select(train->x, 0, idx)),
                                           tg_index_select(train->y, 0, idx));
        tg_optim_zero_grad(opt);
        bool ok = loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK && tg_sched_step(sched) == TG_OK;
        if (ok && tg_sched_restarted(sched)) ok = tg_snapshots_take(snaps) == TG_OK;
        tg_scope_end();
        if (!ok) return false;
    }
    return true;
}

static bool parse(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--check")) o->check = true;
        else if (!strcmp(a, "--data")) o->dir = v, i++;
        else if (!strcmp(a, "--device")) o->device = v, i++;
        else if (!strcmp(a, "--limit")) o->limit = atoi(v), i++;
        else if (!strcmp(a, "--cycles")) o->cycles = atoi(v), i++;
        else if (!strcmp(a, "--cycle-epochs")) o->cycle_epochs = atoi(v), i++;
        else if (!strcmp(a, "--lr")) o->lr = atof(v), i++;
        else return false;
    }
    return o->cycles > 0 && o->cycle_epochs > 0 && o->lr > 0 && o->limit >= 0;
}

int main(int argc, char **argv) {
    options o = { .dir = DEFAULT_DATA_DIR, .limit = 0, .cycles = 5, .cycle_epochs = 2, .batch = 64, .lr = 0.1 };
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: snapshot_ensemble [--data DIR] [--limit N] [--cycles M] [--cycle-epochs E] [--lr X]\n"
                        "                         [--device NAME] [--check]\n");
        return 2;
    }
    tg_device *dev;
    split train, test;
    if (!open_fashion_mnist("snapshot_ensemble", o.dir, o.device, NULL, &dev, &train, &test)) return 1;
    if (o.limit > 0 && o.limit < tg_size(train.x, 0))
        train.x = tg_slice(train.x, 0, 0, o.limit, 1), train.y = tg_slice(train.y, 0, 0, o.limit, 1);
    int64_t n = tg_size(train.x, 0), steps = n / o.batch;
    tg_manual_seed(7);
    tg_module *net = tg_sequential(tg_linear_new(IMAGE_SIZE, 512, NULL, dev), tg_relu_new(),
                                   tg_linear_new(512, 256, NULL, dev), tg_relu_new(), tg_linear_new(256, CLASSES, NULL, dev));
    tg_named p = { 0 };
    tg_optim *opt = net && tg_module_parameters(net, true, &p) == TG_OK
                        ? tg_sgd_new(p.n, p.tensors, &(tg_sgd_opts){ .lr = TG_SOME(o.lr), .momentum = 0.9 })
                        : NULL;
    tg_sched *sched = opt ? tg_cosine_warm_restarts_new(opt, steps * o.cycle_epochs, NULL) : NULL;
    tg_snapshots *snaps = sched ? tg_snapshots_new(p.n, p.tensors) : NULL;
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    if (!snaps || !perm) {
        fprintf(stderr, "snapshot_ensemble: %s\n", tg_last_error());
        return 1;
    }
    printf("MLP 784-512-256-10 on %lld images, SGD momentum 0.9, SGDR from lr %g: %d cycles of %d epochs\n\n",
           (long long)n, o.lr, o.cycles, o.cycle_epochs);
    printf("%-28s %10s\n", "model", "test acc");
    uint64_t rng = 3;
    double best = 0, t0 = now_s();
    for (int c = 1; c <= o.cycles; c++) {
        for (int e = 0; e < o.cycle_epochs; e++)
            if (!train_epoch(net, opt, sched, snaps, &train, perm, &rng, o.batch)) {
                fprintf(stderr, "snapshot_ensemble: %s\n", tg_last_error());
                return 1;
            }
        /* the last cycle ends with the last step; the restart would come with the next */
        if (c == o.cycles && tg_snapshots_count(snaps) < c) tg_snapshots_take(snaps);
        double acc = test_accuracy(net, &test);
        if (acc > best) best = acc;
        printf("snapshot %-19d %10.4f\n", c, acc);
        fflush(stdout);
    }
    bool prev = tg_set_grad_enabled(false);
    double ens = accuracy_of(tg_snapshots_predict(snaps, mlp_logits, net, test.x, 1), test.y);
    tg_set_grad_enabled(prev);
    printf("%-28s %10.4f\n", "best single snapshot", best);
    printf("%-28s %10.4f   (%d snapshots, %.1f s in all)\n", "snapshot ensemble", ens, tg_snapshots_count(snaps),
           now_s() - t0);
    int rc = isnan(ens) || (o.check && ens < best) ? 1 : 0;
    if (rc) fprintf(stderr, "snapshot_ensemble: the ensemble (%.4f) is below the best snapshot (%.4f)\n", ens, best);
    tg_snapshots_free(snaps), tg_sched_free(sched), tg_optim_free(opt), tg_named_free(&p), tg_module_free(net);
    free(perm);
    return rc;
}
