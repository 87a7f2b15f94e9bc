/* What the nn modules cost: the notes' CNN (conv5x5-BN-ReLU-maxpool twice, then linear)
 * written with the modules (tg_sequential of tg_conv2d_new, ...) against the same model
 * written with raw ops (tg_conv2d, tg_batch_norm, ... on tensors of one's own), both
 * trained with the same Adam on the same batch. The two run alternately, round by round;
 * each figure is the median ms per step over rounds of per-round medians, with the spread.
 * Measures, never asserts.
 *
 *     build/bench/bench_modules [--rounds R] [--steps S] [--batch B] [--device NAME] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

#define MAXR 32

typedef struct {
    tg_tensor *w1, *b1, *g1, *be1, *rm1, *rv1, *w2, *b2, *g2, *be2, *rm2, *rv2, *fw, *fb;
} raw_cnn;

/* The same shapes and PyTorch's init ranges as the modules (the values do not change the work). */
static tg_tensor *param(tg_shape s, double bound, tg_device *dev) {
    return tg_take(tg_param(tg_mul_scalar(tg_add_scalar(tg_rand(TG_F32, s, dev), -0.5), 2 * bound)));
}

static raw_cnn raw_new(tg_device *dev) {
    raw_cnn m;
    m.w1 = param(TG_SHAPE(16, 1, 5, 5), 0.2, dev), m.b1 = param(TG_SHAPE(16), 0.2, dev);
    m.g1 = tg_take(tg_param(tg_ones(TG_F32, TG_SHAPE(16), dev))), m.be1 = tg_take(tg_param(tg_zeros(TG_F32, TG_SHAPE(16), dev)));
    m.rm1 = tg_take(tg_zeros(TG_F32, TG_SHAPE(16), dev)), m.rv1 = tg_take(tg_ones(TG_F32, TG_SHAPE(16), dev));
    m.w2 = param(TG_SHAPE(32, 16, 5, 5), 0.05, dev), m.b2 = param(TG_SHAPE(32), 0.05, dev);
    m.g2 = tg_take(tg_param(tg_ones(TG_F32, TG_SHAPE(32), dev))), m.be2 = tg_take(tg_param(tg_zeros(TG_F32, TG_SHAPE(32), dev)));
    m.rm2 = tg_take(tg_zeros(TG_F32, TG_SHAPE(32), dev)), m.rv2 = tg_take(tg_ones(TG_F32, TG_SHAPE(32), dev));
    m.fw = param(TG_SHAPE(10, 1568), 0.025, dev), m.fb = param(TG_SHAPE(10), 0.025, dev);
    return m;
}

static void raw_free(raw_cnn *m) {
    tg_tensor **t = &m->w1;
    for (int i = 0; i < 14; i++) tg_release(t[i]);
}

/* x (B,1,28,28) -> logits (B,10) */
static tg_tensor *raw_forward(const raw_cnn *m, tg_tensor *x) {
    const tg_conv2d_opts pad2 = { .padding = 2 };
    const tg_batch_norm_opts train = { .training = true };
    const tg_max_pool2d_opts pool = { .kernel_size = 2 };
    x = tg_max_pool2d(tg_relu(tg_batch_norm(tg_conv2d(x, m->w1, m->b1, &pad2), m->rm1, m->rv1, m->g1, m->be1, &train)), &pool);
    x = tg_max_pool2d(tg_relu(tg_batch_norm(tg_conv2d(x, m->w2, m->b2, &pad2), m->rm2, m->rv2, m->g2, m->be2, &train)), &pool);
    return tg_add(tg_matmul(tg_flatten(x, 1), tg_transpose(m->fw, 0, 1)), m->fb);
}

static tg_module *module_new(tg_device *dev) {
    const tg_conv_layer_opts pad2 = { .padding = 2 };
    const tg_max_pool2d_opts pool = { .kernel_size = 2 };
    return tg_sequential(tg_conv2d_new(1, 16, 5, &pad2, dev), tg_batchnorm2d_new(16, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&pool), tg_conv2d_new(16, 32, 5, &pad2, dev), tg_batchnorm2d_new(32, NULL, dev),
                         tg_relu_new(), tg_max_pool2d_new(&pool), tg_flatten_new(1, -1),
                         tg_linear_new(7 * 7 * 32, 10, NULL, dev));
}

typedef struct {
    raw_cnn *raw;
    tg_module *mod;
    tg_optim *opt;
    tg_tensor *x, *y;
} model;

/* Median ms per step over `steps` training steps. */
static double time_steps(const model *m, int steps) {
    double t[64];
    for (int s = 0; s < steps && s < 64; s++) {
        double t0 = bench_now();
        tg_scope_begin();
        tg_tensor *logits = m->raw ? raw_forward(m->raw, m->x) : tg_module_forward(m->mod, m->x);
        tg_tensor *loss = tg_cross_entropy(logits, m->y);
        tg_optim_zero_grad(m->opt);
        if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(m->opt) != TG_OK) {
            fprintf(stderr, "bench_modules: %s\n", tg_last_error());
            exit(1);
        }
        tg_device_synchronize(tg_device_of(loss));
        tg_scope_end();
        t[s] = (bench_now() - t0) * 1e3;
    }
    return bench_median(t, steps < 64 ? steps : 64);
}

int main(int argc, char **argv) {
    int rounds = 5, steps = 10, batch = 64;
    const char *device = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
    }
    if (rounds < 1 || rounds > MAXR || steps < 1 || batch < 2) {
        fprintf(stderr, "usage: bench_modules [--rounds 1..%d] [--steps S] [--batch B] [--device NAME]\n", MAXR);
        return 2;
    }
    tg_device *dev = tg_device_get(device);
    if (!dev) return fprintf(stderr, "bench_modules: %s\n", tg_last_error()), 1;
    tg_manual_seed(1);
    raw_cnn raw = raw_new(dev);
    tg_tensor *rp[10] = { raw.w1, raw.b1, raw.g1, raw.be1, raw.w2, raw.b2, raw.g2, raw.be2, raw.fw, raw.fb };
    model a = { .raw = &raw, .opt = tg_adam_new(10, rp, NULL) };
    model b = { .mod = module_new(dev) };
    tg_named p;
    if (!b.mod || tg_module_parameters(b.mod, true, &p) != TG_OK) return fprintf(stderr, "bench_modules: %s\n", tg_last_error()), 1;
    b.opt = tg_adam_new(p.n, p.tensors, NULL);
    tg_named_free(&p);
    a.x = b.x = tg_retain(tg_randn(TG_F32, TG_SHAPE(batch, 1, 28, 28), dev));
    int64_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int i = 0; i < batch; i++) lab[i] = i % 10;
    a.y = b.y = tg_retain(tg_from_i64(lab, TG_SHAPE(batch), dev));
    free(lab);
    double ra[MAXR], rb[MAXR], ratio[MAXR];
    time_steps(&a, 2), time_steps(&b, 2); /* warm-up */
    for (int r = 0; r < rounds; r++) {
        ra[r] = time_steps(&a, steps);
        rb[r] = time_steps(&b, steps);
        ratio[r] = rb[r] / ra[r];
    }
    double ma = bench_median(ra, rounds), mb = bench_median(rb, rounds), mr = bench_median(ratio, rounds);
    printf("the notes' CNN, batch %d, Adam, on %s, %d threads: median ms per training step over %d rounds of %d steps\n",
           batch, tg_device_name(dev), tg_get_num_threads(), rounds, steps);
    printf("  raw ops     %8.2f ms  [%.2f - %.2f]\n", ma, ra[0], ra[rounds - 1]);
    printf("  nn modules  %8.2f ms  [%.2f - %.2f]\n", mb, rb[0], rb[rounds - 1]);
    printf("  modules / raw ops: %.3f (median of per-round ratios, range %.3f - %.3f)\n", mr, ratio[0], ratio[rounds - 1]);
    tg_optim_free(a.opt), tg_optim_free(b.opt), tg_module_free(b.mod), raw_free(&raw);
    tg_release(a.x), tg_release(a.y);
    return 0;
}
