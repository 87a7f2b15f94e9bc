/* An Adam step over ResNet-20's parameter shapes (CIFAR-10, 3x3 convs in 3 stages of 3
 * blocks, 1x1 projection shortcuts where the width doubles: 65 tensors, 272,474
 * parameters) on each device: time per step and ops per step (each op at least one
 * kernel launch), beside PyTorch's Adam (foreach and for-loop) run alternately with it,
 * one process a round (bench/peer_torch_optim.py) with OPENBLAS_NUM_THREADS=1, under
 * Debian's /usr/bin/python3 (torch 1.x) or --peer-python (build/peers-venv/bin/python: 2.x);
 * then the device commands (kernel launches, fills, copies) of one step of each optimizer.
 * Usage: bench_optim [--rounds R] [--steps S] [--device NAME] [--no-peer] [--peer PATH]
 *        [--peer-python PATH] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

#define MAXR 16
#define NT 65

/* conv1 + bn; per block conv-bn-conv-bn; a projection (conv 1x1 + bn) opening stages 2, 3; fc */
static int resnet20_shapes(tg_shape *s) {
    int n = 0, w = 16;
    s[n++] = TG_SHAPE(16, 3, 3, 3), s[n++] = TG_SHAPE(16), s[n++] = TG_SHAPE(16);
    for (int stage = 0; stage < 3; stage++) {
        int in = w, out = 16 << stage;
        for (int b = 0; b < 3; b++) {
            s[n++] = TG_SHAPE(out, b == 0 ? in : out, 3, 3), s[n++] = TG_SHAPE(out), s[n++] = TG_SHAPE(out);
            s[n++] = TG_SHAPE(out, out, 3, 3), s[n++] = TG_SHAPE(out), s[n++] = TG_SHAPE(out);
            if (b == 0 && in != out) s[n++] = TG_SHAPE(out, in, 1, 1), s[n++] = TG_SHAPE(out), s[n++] = TG_SHAPE(out);
        }
        w = out;
    }
    s[n++] = TG_SHAPE(10, 64), s[n++] = TG_SHAPE(10);
    return n;
}

/* Fresh parameters of the given shapes, each with a gradient (of sum p^2). */
static void make_params(tg_device *dev, const tg_shape *s, int n, tg_tensor **ps) {
    tg_manual_seed(1);
    for (int i = 0; i < n; i++) ps[i] = tg_take(tg_param(tg_randn(TG_F32, s[i], dev)));
}

static void backward_all(tg_tensor *const *ps, int n) {
    tg_scope_begin();
    tg_tensor *loss = tg_sum(tg_square(ps[0]), TG_ALL, false);
    for (int i = 1; i < n; i++) loss = tg_add(loss, tg_sum(tg_square(ps[i]), TG_ALL, false));
    tg_backward(loss);
    tg_scope_end();
}

static tg_optim *make_optim(int kind, int n, tg_tensor **ps) {
    switch (kind) {
    case 0: return tg_adam_new(n, ps, NULL);
    case 1: return tg_adamw_new(n, ps, NULL);
    case 2: return tg_sgd_new(n, ps, &(tg_sgd_opts){ .lr = TG_SOME(0.1), .momentum = 0.9 });
    case 3: return tg_rmsprop_new(n, ps, NULL);
    default: return tg_adagrad_new(n, ps, NULL);
    }
}

static uint64_t launches_of(tg_device *dev, uint64_t *transfers) {
    tg_launch_stats st = { 0 };
    tg_device_launch_stats(dev, &st);
    *transfers = st.transfers;
    return st.launches;
}

/* Device commands (tg_device_launch_stats) of one step after two warm-up steps, of
 * tg_optim_clip_grad_norm and of tg_optim_zero_grad, for each optimizer: counted by
 * queueing backends (OpenCL), so the CPU prints zeros. */
static void print_launches(tg_device *dev, const tg_shape *s, int n) {
    static const char *const names[] = { "Adam", "AdamW", "SGD (momentum 0.9)", "RMSprop", "Adagrad" };
    printf("  launches (transfers) per call on %s, %d parameter tensors:\n", tg_device_name(dev), n);
    for (int k = 0; k < 5; k++) {
        tg_tensor *ps[NT];
        make_params(dev, s, n, ps);
        tg_optim *o = make_optim(k, n, ps);
        if (!o) {
            printf("    %s: %s\n", names[k], tg_last_error());
            for (int i = 0; i < n; i++) tg_release(ps[i]);
            continue;
        }
        backward_all(ps, n);
        tg_optim_step(o), tg_optim_step(o);
        uint64_t t0, t1, t2, t3;
        uint64_t l0 = launches_of(dev, &t0);
        tg_optim_step(o);
        uint64_t l1 = launches_of(dev, &t1);
        tg_optim_clip_grad_norm(o, 1.0, NULL);
        uint64_t l2 = launches_of(dev, &t2);
        tg_optim_zero_grad(o);
        uint64_t l3 = launches_of(dev, &t3);
        printf("    %-20s step %3llu (%llu)  clip_grad_norm %llu (%llu)  zero_grad %llu (%llu)  ops/step %lld\n", names[k],
               (unsigned long long)(l1 - l0), (unsigned long long)(t1 - t0), (unsigned long long)(l2 - l1),
               (unsigned long long)(t2 - t1), (unsigned long long)(l3 - l2), (unsigned long long)(t3 - t2),
               (long long)tg_optim_last_step_ops(o));
        tg_optim_free(o);
        for (int i = 0; i < n; i++) tg_release(ps[i]);
    }
}

static void spread(const double *v, int n, double *med, double *lo, double *hi) {
    double c[MAXR];
    memcpy(c, v, (size_t)n * sizeof *v);
    *med = bench_median(c, n);
    *lo = c[0], *hi = c[n - 1];
}

static int run_peer(const char *python, const char *path, int threads, const tg_shape *s, int n, double *fe,
                    double *loop, char *ver, size_t ver_n) {
    static char cmd[8192];
    int len = snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 "
                       "'%s' %s --threads %d --shapes '", python, path, threads);
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < s[i].ndim; d++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%lld", d ? "," : "", (long long)s[i].dims[d]);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s", i + 1 < n ? ";" : "' 2>/dev/null");
    }
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    char line[256];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        double us;
        int foreach;
        char *p;
        if (sscanf(line, "{\"us_per_step\": %lf, \"foreach\": %d", &us, &foreach) == 2) *(foreach ? fe : loop) = us, got++;
        if ((p = strstr(line, "\"torch\": \""))) snprintf(ver, ver_n, "%.*s", (int)strcspn(p + 10, "\""), p + 10);
        if ((p = strstr(line, "\"omp_wait\": \"")) && strlen(ver) + 12 < ver_n) /* the wait policy that won */
            snprintf(ver + strlen(ver), ver_n - strlen(ver), " omp %.7s", p + 13);
    }
    return pclose(f) == 0 && got == 2 ? 0 : -1;
}

int main(int argc, char **argv) {
    int rounds = 5, steps = 200, peer_on = 1;
    const char *devname = NULL, *peer = "bench/peer_torch_optim.py", *python = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) devname = argv[++i];
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc) peer = argv[++i];
        else if (!strcmp(argv[i], "--peer-python") && i + 1 < argc) python = argv[++i];
        else if (!strcmp(argv[i], "--no-peer")) peer_on = 0;
        else if (!strcmp(argv[i], "--quick")) rounds = 2, steps = 50, peer_on = 0;
    }
    if (rounds > MAXR) rounds = MAXR;
    tg_device *dev = tg_device_get(devname);
    if (!dev) return fprintf(stderr, "%s\n", tg_last_error()), 1;
    tg_shape shapes[NT];
    int n = resnet20_shapes(shapes);
    tg_tensor *ps[NT];
    int64_t total = 0;
    tg_manual_seed(1);
    for (int i = 0; i < n; i++) ps[i] = tg_take(tg_param(tg_randn(TG_F32, shapes[i], dev))), total += tg_numel(ps[i]);
    tg_optim *opt = tg_adam_new(n, ps, NULL);
    if (!opt) return fprintf(stderr, "%s\n", tg_last_error()), 1;
    tg_scope_begin();
    tg_tensor *loss = tg_sum(tg_square(ps[0]), TG_ALL, false);
    for (int i = 1; i < n; i++) loss = tg_add(loss, tg_sum(tg_square(ps[i]), TG_ALL, false));
    tg_backward(loss);
    tg_scope_end();
    for (int i = 0; i < 10; i++) tg_optim_step(opt);
    tg_device_synchronize(dev);
    double tg[MAXR], fe[MAXR], lp[MAXR];
    int peers = 0;
    char ver[40] = "?";
    for (int r = 0; r < rounds; r++) {
        double t0 = bench_now();
        for (int i = 0; i < steps; i++) tg_optim_step(opt);
        tg_device_synchronize(dev);
        tg[r] = (bench_now() - t0) / steps * 1e6;
        if (peer_on && run_peer(python, peer, tg_get_num_threads(), shapes, n, &fe[peers], &lp[peers], ver, sizeof ver) == 0) peers++;
    }
    double m, lo, hi;
    spread(tg, rounds, &m, &lo, &hi);
    printf("Adam step, ResNet-20 shapes: %d tensors, %lld parameters, f32, %s, %d threads\n", n, (long long)total,
           tg_device_name(dev), tg_get_num_threads());
    printf("  %-30s %9.1f us/step  (%.1f-%.1f over %d rounds of %d steps), %lld ops/step\n", "tapegrad (flat buffers)", m,
           lo, hi, rounds, steps, (long long)tg_optim_last_step_ops(opt));
    if (peers) {
        double fm, fl, fh, lm, ll, lh;
        spread(fe, peers, &fm, &fl, &fh);
        spread(lp, peers, &lm, &ll, &lh);
        char a[64], b[64];
        snprintf(a, sizeof a, "PyTorch %s Adam foreach", ver), snprintf(b, sizeof b, "PyTorch %s Adam for-loop", ver);
        printf("  %-30s %9.1f us/step  (%.1f-%.1f over %d rounds), ratio tapegrad/torch %.2fx\n", a, fm, fl, fh, peers,
               m / fm);
        printf("  %-30s %9.1f us/step  (%.1f-%.1f), ratio %.2fx\n", b, lm, ll, lh, m / lm);
    } else if (peer_on) {
        printf("  PyTorch: not run (no %s with torch, or %s missing)\n", python, peer);
    }
    tg_optim_free(opt);
    for (int i = 0; i < n; i++) tg_release(ps[i]);
    print_launches(dev, shapes, n);
    return 0;
}
