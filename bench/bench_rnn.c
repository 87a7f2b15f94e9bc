/* LSTM benchmark: tg_lstm forward and forward+backward (input 64, hidden 256, 35 steps,
 * batch 32 by default) against the f32 FMA peak measured in the same run and PyTorch's
 * torch.nn.LSTM (bench/peer_torch_rnn.py) run alternately with it, round by round. Each
 * figure is the median over rounds of per-round medians, with the spread [min-max] over
 * rounds. The FLOPs counted are the GEMMs' (elementwise work is under 2% of them):
 * forward 2*N*4H*(T*I + (T-1)*H) (step 0 starts from h0 = 0, so its recurrent matmul is
 * no work), backward twice the recurrent part (dW_hh and dh) plus dW_ih. Measures, never
 * asserts.
 *
 * Usage: bench_rnn [--rounds R] [--samples S] [--threads N] [--no-peer] [--peer PATH]
 *        [--peer-coretype NAME] [--peer-python PATH] [--T 35] [--N 32] [--I 64] [--H 256]
 * --peer-python runs the peer under another interpreter than Debian's /usr/bin/python3
 * (build/peers-venv/bin/python: PyTorch 2.x, MKL and oneDNN).
 * Run from the source root for the peer. OpenBLAS 0.3.21 detects some CPUs wrongly (a
 * Xeon in a VM as Prescott, at a tenth of its speed): --peer-coretype gives the peer the
 * kernel `bench_gemm --pick-openblas` finds fastest, as scripts/run-bench.sh does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "bench_util.h"
#include "machine.h"

#define MAXR 16
#define MAXS 64

typedef struct {
    int64_t T, N, I, H;
} dims;

/* Median milliseconds of `samples` calls of one forward (grad off) or one training step. */
static double time_tg(const dims *d, tg_tensor *x, tg_tensor *const *w, bool train, int samples) {
    double ts[MAXS];
    for (int s = -3; s < samples; s++) { /* 3 warm-up calls */
        double t0 = bench_now();
        tg_scope_begin();
        if (train) {
            for (int i = 0; i < 4; i++) tg_zero_grad(w[i]);
            tg_tensor *y = tg_lstm(x, NULL, NULL, 4, w, NULL, NULL, NULL);
            if (!y || tg_backward(tg_sum(y, TG_ALL, false)) != TG_OK) {
                fprintf(stderr, "bench_rnn: %s\n", tg_last_error());
                exit(1);
            }
        } else {
            bool prev = tg_set_grad_enabled(false);
            tg_tensor *y = tg_lstm(x, NULL, NULL, 4, w, NULL, NULL, NULL);
            if (!y) {
                fprintf(stderr, "bench_rnn: %s\n", tg_last_error());
                exit(1);
            }
            tg_device_synchronize(tg_device_of(y));
            tg_set_grad_enabled(prev);
        }
        tg_scope_end();
        if (s >= 0) ts[s] = (bench_now() - t0) * 1e3;
    }
    (void)d;
    return bench_median(ts, samples);
}

static const char *g_coretype;                      /* --peer-coretype */
static const char *g_python = "/usr/bin/python3"; /* --peer-python */

static int run_peer(const char *path, const dims *d, int threads, int samples, double *fwd, double *step,
                    char *core, size_t core_n, char *ver, size_t ver_n) {
    char cmd[1024], line[1024], ct[96] = "";
    if (g_coretype) snprintf(ct, sizeof ct, "OPENBLAS_CORETYPE=%s ", g_coretype);
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 %s'%s' %s --threads %d "
             "--samples %d --T %lld --N %lld --I %lld --H %lld 2>/dev/null",
             ct, g_python, path, threads, samples, (long long)d->T, (long long)d->N, (long long)d->I, (long long)d->H);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        char *p;
        if ((p = strstr(line, "\"fwd_ms\": ")) && sscanf(p + 10, "%lf", fwd) == 1 &&
            (p = strstr(line, "\"step_ms\": ")) && sscanf(p + 11, "%lf", step) == 1)
            ok = 1;
        if ((p = strstr(line, "\"openblas_core\": \""))) sscanf(p + 18, "%63[^\"]", core), (void)core_n;
        if ((p = strstr(line, "\"torch\": \""))) sscanf(p + 10, "%31[^\"]", ver), (void)ver_n;
    }
    return pclose(f) == 0 && ok ? 0 : -1;
}

static void spread(const double *v, int n, double *med, double *lo, double *hi) {
    double c[MAXR];
    memcpy(c, v, (size_t)n * sizeof *v);
    *med = bench_median(c, n);
    *lo = c[0], *hi = c[n - 1];
}

int main(int argc, char **argv) {
    int rounds = 3, samples = 15, threads = 2, peer_on = 1;
    const char *peer_path = "bench/peer_torch_rnn.py";
    dims d = { 35, 32, 64, 256 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc) peer_path = argv[++i];
        else if (!strcmp(argv[i], "--no-peer")) peer_on = 0;
        else if (!strcmp(argv[i], "--peer-coretype") && i + 1 < argc) g_coretype = argv[++i];
        else if (!strcmp(argv[i], "--peer-python") && i + 1 < argc) g_python = argv[++i];
        else if (!strcmp(argv[i], "--T") && i + 1 < argc) d.T = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--N") && i + 1 < argc) d.N = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--I") && i + 1 < argc) d.I = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--H") && i + 1 < argc) d.H = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_rnn [--rounds R] [--samples S] [--threads N] [--no-peer] [--peer PATH] "
                            "[--peer-coretype NAME] [--peer-python PATH] [--T n] [--N n] [--I n] [--H n]\n");
            return 2;
        }
    }
    rounds = rounds < 1 ? 1 : rounds > MAXR ? MAXR : rounds;
    samples = samples < 1 ? 1 : samples > MAXS ? MAXS : samples;
    tg_set_num_threads(threads);
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    const char *isa = "none";
    tg_device *dev = tg_device_get(NULL);
    tg_manual_seed(0);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(d.T, d.N, d.I), dev), *w[4];
    for (int i = 0; i < 4; i++) {
        tg_rnn_weight_desc wd;
        tg_rnn_weight_info(TG_RNN_MODE_LSTM, d.I, d.H, true, NULL, i, &wd);
        w[i] = tg_param(tg_mul_scalar(tg_rand(TG_F32, wd.shape, dev), 0.125)); /* U(0, 1/sqrt(H)) */
    }
    double G4 = 2.0 * (double)d.N * 4 * (double)d.H, ih = (double)(d.T * d.I), hh = (double)((d.T - 1) * d.H);
    double flop_fwd = G4 * (ih + hh), flop_step = flop_fwd + G4 * (ih + 2 * hh);
    double tf[MAXR], tt[MAXR], pf[MAXR], pt[MAXR], peaks[MAXR];
    char core[64] = "?", ver[32] = "?";
    for (int r = 0; r < rounds; r++) {
        double p0 = bench_fma_peak(threads, 3, &isa);
        tf[r] = time_tg(&d, x, w, false, samples);
        tt[r] = time_tg(&d, x, w, true, samples);
        if (peer_on && run_peer(peer_path, &d, threads, samples, &pf[r], &pt[r], core, sizeof core, ver, sizeof ver)) {
            fprintf(stderr, "bench_rnn: the PyTorch peer did not run (%s); continuing without\n", peer_path);
            peer_on = 0;
        }
        double p1 = bench_fma_peak(threads, 3, &isa);
        peaks[r] = p0 > p1 ? p0 : p1;
        fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    double pk, plo, phi, m, lo, hi;
    spread(peaks, rounds, &pk, &plo, &phi);
    printf("%s; %d threads; f32 FMA peak %.1f GFLOP/s (%s, rounds %.1f-%.1f); load %.1f\n", cpu, threads, pk, isa, plo,
           phi, bench_loadavg());
    printf("LSTM input %lld, hidden %lld, %lld steps, batch %lld (f32): %.1f MFLOP forward, %.1f forward+backward\n",
           (long long)d.I, (long long)d.H, (long long)d.T, (long long)d.N, flop_fwd * 1e-6, flop_step * 1e-6);
    if (peer_on)
        printf("PyTorch %s (%s) under env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1%s%s, "
               "torch.set_num_threads(%d); kernels: %s\n", ver, g_python, g_coretype ? " OPENBLAS_CORETYPE=" : "",
               g_coretype ? g_coretype : "", threads, core);
    printf("ms: median over %d rounds of %d-sample medians [min-max]\n", rounds, samples);
    printf("%-18s %22s %7s %22s %7s %7s\n", "", "tapegrad", "%peak", "PyTorch", "%peak", "tg/pt");
    for (int k = 0; k < 2; k++) {
        double *a = k ? tt : tf, *b = k ? pt : pf, flop = k ? flop_step : flop_fwd, pm = 0, plo2 = 0, phi2 = 0;
        char s1[64], s2[64] = "-";
        spread(a, rounds, &m, &lo, &hi);
        snprintf(s1, sizeof s1, "%.3f [%.3f-%.3f]", m, lo, hi);
        if (peer_on) {
            spread(b, rounds, &pm, &plo2, &phi2);
            snprintf(s2, sizeof s2, "%.3f [%.3f-%.3f]", pm, plo2, phi2);
        }
        printf("%-18s %22s %6.1f%% %22s %6.1f%% %6.2fx\n", k ? "forward+backward" : "forward", s1,
               100 * flop / (m * 1e-3) * 1e-9 / pk, s2, peer_on ? 100 * flop / (pm * 1e-3) * 1e-9 / pk : 0,
               peer_on ? m / pm : 0);
    }
    return 0;
}
