/* Training-step speed of small conv nets against the FMA peak measured in the same run:
 * CIFAR ResNet-20 (batch 64, 3x32x32, SGD momentum) and the notes' CNN (batch 64,
 * 1x28x28, Adam). FLOPs per step = 3 x 2 x the forward's multiply-adds (tg_summary).
 * "cpu ms" is the process CPU time a step (all threads, spinning included): on a loaded
 * machine it moves less than the wall time. Measures, never asserts. Prints the share of forward, backward and optimizer step;
 * TG_CPU_PROFILE=1 in the environment adds the time of each kernel kind (at exit).
 *
 *     build/bench/bench_train_step [--rounds R] [--steps S] [--batch B] [--model resnet20|cnn|all] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "machine.h"
#include "tapegrad.h"

#define MAXR 32
#define MAXS 64

/* One stage of the CIFAR ResNet: n BasicBlocks, the first of the given stride (option B:
 * a 1x1-conv projection where the shape changes, as tg_basic_block_new builds it). */
static tg_status add_stage(tg_module *net, int64_t in, int64_t planes, int64_t stride, int n, tg_device *dev)
{
    for (int i = 0; i < n; i++) {
        tg_resnet_block_opts o = { .stride = i == 0 ? stride : 1 };
        if (tg_sequential_append(net, NULL, tg_basic_block_new(i == 0 ? in : planes, planes, &o, dev)) != TG_OK)
            return TG_ERR_INVALID;
    }
    return TG_OK;
}

/* He et al.'s CIFAR ResNet-20: x (N, 3, 32, 32) -> logits (N, 10). */
static tg_module *resnet20_new(tg_device *dev)
{
    const tg_conv_layer_opts c3 = { .padding = 1, .no_bias = true };
    tg_module *net = tg_sequential(tg_conv2d_new(3, 16, 3, &c3, dev), tg_batchnorm2d_new(16, NULL, dev), tg_relu_new());
    if (!net || add_stage(net, 16, 16, 1, 3, dev) || add_stage(net, 16, 32, 2, 3, dev) ||
        add_stage(net, 32, 64, 2, 3, dev) || tg_sequential_append(net, NULL, tg_adaptive_avg_pool2d_new(1, 1)) ||
        tg_sequential_append(net, NULL, tg_flatten_new(1, -1)) ||
        tg_sequential_append(net, NULL, tg_linear_new(64, 10, NULL, dev))) {
        tg_module_free(net);
        return NULL;
    }
    return net;
}

/* The notes' CNN: x (N, 1, 28, 28) -> logits (N, 10). */
static tg_module *cnn_new(tg_device *dev)
{
    const tg_conv_layer_opts pad2 = { .padding = 2 };
    const tg_max_pool2d_opts pool = { .kernel_size = 2 };
    return tg_sequential(tg_conv2d_new(1, 16, 5, &pad2, dev), tg_batchnorm2d_new(16, NULL, dev), tg_relu_new(),
                         tg_max_pool2d_new(&pool), tg_conv2d_new(16, 32, 5, &pad2, dev),
                         tg_batchnorm2d_new(32, NULL, dev), tg_relu_new(), tg_max_pool2d_new(&pool),
                         tg_flatten_new(1, -1), tg_linear_new(7 * 7 * 32, 10, NULL, dev));
}

typedef struct {
    const char *name;
    tg_module *net;
    tg_optim *opt;
    tg_tensor *x, *y;
    double gflop;        /* per step */
    double phase[3];     /* forward + loss, backward, optimizer step: ms summed over timed steps */
    int timed;           /* steps summed in phase */
} bench_model;

static void die(const char *what)
{
    fprintf(stderr, "bench_train_step: %s: %s\n", what, tg_last_error());
    exit(1);
}

static void model_init(bench_model *m, const char *name, tg_module *net, int64_t c, int64_t hw, int batch,
                       bool sgd, tg_device *dev)
{
    m->name = name, m->net = net;
    if (!net)
        die(name);
    tg_summary_opts so = { .quiet = true, .train = true };
    tg_model_summary *s = tg_summary(net, TG_SHAPE(batch, c, hw, hw), &so);
    if (!s)
        die("tg_summary");
    m->gflop = 3.0 * 2.0 * (double)tg_summary_totals_of(s)->mult_adds * 1e-9;
    tg_model_summary_free(s);
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK)
        die("parameters");
    const tg_sgd_opts sgd_o = { .lr = TG_SOME(0.1), .momentum = 0.9, .weight_decay = 1e-4 };
    m->opt = sgd ? tg_sgd_new(p.n, p.tensors, &sgd_o) : tg_adam_new(p.n, p.tensors, NULL);
    tg_named_free(&p);
    if (!m->opt)
        die("optimizer");
    tg_module_train(net, true);
    m->x = tg_retain(tg_randn(TG_F32, TG_SHAPE(batch, c, hw, hw), dev));
    int64_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int i = 0; lab && i < batch; i++)
        lab[i] = i % 10;
    m->y = lab ? tg_retain(tg_from_i64(lab, TG_SHAPE(batch), dev)) : NULL;
    free(lab);
    if (!m->x || !m->y)
        die("inputs");
}

static void model_free(bench_model *m)
{
    tg_optim_free(m->opt), tg_module_free(m->net);
    tg_release(m->x), tg_release(m->y);
}

/* Process CPU seconds (all threads): on a loaded machine, flop / CPU time is the rate
 * while running, however often the OS took the cores away. */
static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median ms of `steps` training steps (forward, cross-entropy, backward, optimizer step);
 * the phases' times are added to m->phase (the CPU runs each op before it returns). */
static double time_steps(bench_model *m, int steps, double *cpu_ms)
{
    double t[MAXS], c[MAXS];
    for (int s = 0; s < steps; s++) {
        double c0 = process_cpu(), t0 = bench_now();
        tg_scope_begin();
        tg_tensor *loss = tg_cross_entropy(tg_module_forward(m->net, m->x), m->y);
        tg_optim_zero_grad(m->opt);
        double t1 = bench_now();
        if (!loss || tg_backward(loss) != TG_OK)
            die(m->name);
        double t2 = bench_now();
        if (tg_optim_step(m->opt) != TG_OK)
            die(m->name);
        tg_device_synchronize(tg_device_of(loss));
        tg_scope_end();
        double t3 = bench_now();
        t[s] = (t3 - t0) * 1e3;
        c[s] = (process_cpu() - c0) * 1e3;
        m->phase[0] += (t1 - t0) * 1e3, m->phase[1] += (t2 - t1) * 1e3, m->phase[2] += (t3 - t2) * 1e3;
        m->timed++;
    }
    *cpu_ms = bench_median(c, steps);
    return bench_median(t, steps);
}

int main(int argc, char **argv)
{
    int rounds = 5, steps = 5, batch = 64;
    const char *which = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) which = argv[i + 1];
    }
    if (rounds < 1 || rounds > MAXR || steps < 1 || steps > MAXS || batch < 2) {
        fprintf(stderr, "usage: bench_train_step [--rounds 1..%d] [--steps 1..%d] [--batch B] "
                        "[--model resnet20|cnn|all]\n", MAXR, MAXS);
        return 2;
    }
    tg_device *dev = tg_device_get("cpu");
    if (!dev)
        die("device");
    tg_manual_seed(1);
    bench_model ms[2];
    int n = 0;
    if (!strcmp(which, "all") || !strcmp(which, "resnet20"))
        model_init(&ms[n++], "ResNet-20 (SGD momentum)", resnet20_new(dev), 3, 32, batch, true, dev);
    if (!strcmp(which, "all") || !strcmp(which, "cnn"))
        model_init(&ms[n++], "notes' CNN (Adam)", cnn_new(dev), 1, 28, batch, false, dev);
    if (n == 0)
        return fprintf(stderr, "bench_train_step: unknown model %s\n", which), 2;
    bench_machine mach;
    bench_machine_probe(&mach, tg_get_num_threads());
    bench_machine_print(stdout, &mach);
    double r[2][MAXR], cpu[2][MAXR], unused;
    for (int i = 0; i < n; i++) {
        time_steps(&ms[i], 2, &unused); /* warm-up: scratch buffers and the recycler grow once */
        ms[i].phase[0] = ms[i].phase[1] = ms[i].phase[2] = 0, ms[i].timed = 0;
    }
    for (int k = 0; k < rounds; k++)
        for (int i = 0; i < n; i++)
            r[i][k] = time_steps(&ms[i], steps, &cpu[i][k]);
    /* Probing again after the runs: the best of both is the peak; a busy machine shows in the spread. */
    double peak = bench_fma_peak(tg_get_num_threads(), 10, NULL);
    if (peak < mach.peak)
        peak = mach.peak;
    printf("training steps, batch %d, %d threads, median ms per step over %d rounds of %d steps; peak %.1f GFLOP/s\n",
           batch, tg_get_num_threads(), rounds, steps, peak);
    printf("  %-26s %7s %9s %9s %9s %7s %7s %10s\n", "model", "GFLOP", "ms", "min", "max", "GFLOP/s", "% peak",
           "cpu ms");
    for (int i = 0; i < n; i++) {
        double med = bench_median(r[i], rounds), gfs = ms[i].gflop / (med * 1e-3);
        printf("  %-26s %7.3f %9.2f %9.2f %9.2f %7.1f %6.1f%% %10.2f\n", ms[i].name, ms[i].gflop, med, r[i][0],
               r[i][rounds - 1], gfs, peak > 0 ? 100.0 * gfs / peak : 0.0, bench_median(cpu[i], rounds));
        double *ph = ms[i].phase, all = ph[0] + ph[1] + ph[2];
        printf("  %-26s forward %.1f%%, backward %.1f%%, optimizer %.1f%% (mean %.2f / %.2f / %.2f ms)\n", "",
               100 * ph[0] / all, 100 * ph[1] / all, 100 * ph[2] / all, ph[0] / ms[i].timed, ph[1] / ms[i].timed,
               ph[2] / ms[i].timed);
    }
    for (int i = 0; i < n; i++)
        model_free(&ms[i]);
    return 0;
}
