/* conv2d benchmark: GFLOP/s of the CPU kernels (forward, backward-data, backward-weight)
 * on the layers that matter (the targets, the course notes' CNN, ResNet-18 and VGG-16
 * at batch 1 and 32), against the f32 FMA peak measured in the same run and PyTorch's
 * CPU build (bench/peer_torch_conv.py) run alternately with it, round by round. Each
 * figure is the median over rounds of per-round medians, with the spread (min-max over
 * rounds). Measures, never asserts.
 *
 * Usage: bench_conv [--rounds R] [--threads N] [--quick] [--full] [--no-peer] [--json]
 *        [--peer PATH] [--match TEXT] [--algo NAME] [--vs NAME]   (--quick: the three target
 *        layers; --full adds VGG-16 at batch 32; --match: only the layers whose name contains
 *        TEXT; --algo: force implicit, col, gemm, depthwise, direct, lanes or winograd where it
 *        applies; --vs: the second column is that algorithm instead of PyTorch, timed right
 *        after the first on each layer in each round, "ratio" the first's speed over it) */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/conv/conv.h"
#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/threadpool.h"
#include "bench_util.h"

/* CPU time of this thread / of the whole process (all threads), in seconds. On a shared
 * machine a thread that loses its core stops its CPU clock but not the wall clock, so
 * flop / CPU time is the rate while running: the kernel's efficiency, however loaded
 * the machine; flop / wall time is what a user waits. Both are printed. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* FLOPs per CPU second of 24 independent FMA chains that never leave the registers. */
__attribute__((target("avx512f"), noinline)) static double peak_avx512(long iters)
{
    __m512 acc[24], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    double t0 = thread_cpu();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    double dt = thread_cpu() - t0;
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 24 * 32 / dt;
}

__attribute__((target("avx2,fma"), noinline)) static double peak_avx2(long iters)
{
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    double t0 = thread_cpu();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    double dt = thread_cpu() - t0;
    float out[8];
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return (double)iters * 12 * 16 / dt;
}

/* One core's f32 FMA peak in GFLOP/s, best of three (0: unknown). */
static double measure_peak(void)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double f = __builtin_cpu_supports("avx512f") ? peak_avx512(3000000) : peak_avx2(6000000);
        best = f > best ? f : best;
    }
    return best * 1e-9;
}
#else
static double measure_peak(void) { return 0; }
#endif

typedef struct {
    const char *name;
    int64_t v[14]; /* N, C, H, W, OC, KH, KW, sh, sw, ph, pw, dh, dw, groups */
    int set;       /* 0 target, 1 notes CNN and ResNet-20 b64, 2 ResNet/VGG batch 1, 3 ResNet b32, 4 VGG b32 */
} shape;

#define L(n, N, C, H, OC, K, s, p, set) { n, { N, C, H, H, OC, K, K, s, s, p, p, 1, 1, 1 }, set }
static const shape k_shapes[] = {
    L("3x3 256>256 14 b32", 32, 256, 14, 256, 3, 1, 1, 0),
    L("3x3 64>64 56 b32", 32, 64, 56, 64, 3, 1, 1, 0),
    L("1x1 256>64 56 b32", 32, 256, 56, 64, 1, 1, 0, 0),
    L("cnn 5x5 1>16 28 b64", 64, 1, 28, 16, 5, 1, 2, 1),
    L("cnn 5x5 16>32 14 b64", 64, 16, 14, 32, 5, 1, 2, 1),
    L("r20 3x3 16 32 b64", 64, 16, 32, 16, 3, 1, 1, 1),
    L("r20 3x3 16>32 s2 b64", 64, 16, 32, 32, 3, 2, 1, 1),
    L("r20 3x3 32 16 b64", 64, 32, 16, 32, 3, 1, 1, 1),
    L("r20 3x3 32>64 s2 b64", 64, 32, 16, 64, 3, 2, 1, 1),
    L("r20 3x3 64 8 b64", 64, 64, 8, 64, 3, 1, 1, 1),
    L("r18 conv1 7x7 s2 b1", 1, 3, 224, 64, 7, 2, 3, 2),
    L("r18 3x3 64 56 b1", 1, 64, 56, 64, 3, 1, 1, 2),
    L("r18 3x3 64>128 s2 b1", 1, 64, 56, 128, 3, 2, 1, 2),
    L("r18 1x1 64>128 s2 b1", 1, 64, 56, 128, 1, 2, 0, 2),
    L("r18 3x3 128 28 b1", 1, 128, 28, 128, 3, 1, 1, 2),
    L("r18 3x3 256 14 b1", 1, 256, 14, 256, 3, 1, 1, 2),
    L("r18 3x3 512 7 b1", 1, 512, 7, 512, 3, 1, 1, 2),
    L("vgg 3x3 3>64 224 b1", 1, 3, 224, 64, 3, 1, 1, 2),
    L("vgg 3x3 64 224 b1", 1, 64, 224, 64, 3, 1, 1, 2),
    L("vgg 3x3 256 56 b1", 1, 256, 56, 256, 3, 1, 1, 2),
    L("vgg 3x3 512 28 b1", 1, 512, 28, 512, 3, 1, 1, 2),
    L("vgg 3x3 512 14 b1", 1, 512, 14, 512, 3, 1, 1, 2),
    L("r18 conv1 7x7 s2 b32", 32, 3, 224, 64, 7, 2, 3, 3),
    L("r18 3x3 64>128 s2 b32", 32, 64, 56, 128, 3, 2, 1, 3),
    L("r18 1x1 64>128 s2 b32", 32, 64, 56, 128, 1, 2, 0, 3),
    L("r18 3x3 128 28 b32", 32, 128, 28, 128, 3, 1, 1, 3),
    L("r18 3x3 512 7 b32", 32, 512, 7, 512, 3, 1, 1, 3),
    L("vgg 3x3 3>64 224 b32", 32, 3, 224, 64, 3, 1, 1, 4),
    L("vgg 3x3 256 56 b32", 32, 256, 56, 256, 3, 1, 1, 4),
    L("vgg 3x3 512 14 b32", 32, 512, 14, 512, 3, 1, 1, 4),
};
#define NSHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])
#define MAXR 16
static const char *const k_dirs[3] = { "fwd", "bwd_data", "bwd_weight" };

static tg_conv2d_geom to_geom(const shape *s)
{
    const int64_t *v = s->v;
    tg_conv2d_geom g = { v[0], v[1], v[2], v[3], v[4], v[5], v[6], 0, 0,
                         { v[7], v[8] }, { v[9], v[10] }, { v[11], v[12] }, v[13] };
    g.OH = (g.H + 2 * g.pad[0] - g.dilation[0] * (g.KH - 1) - 1) / g.stride[0] + 1;
    g.OW = (g.W + 2 * g.pad[1] - g.dilation[1] * (g.KW - 1) - 1) / g.stride[1] + 1;
    return g;
}

static double flop_of(const tg_conv2d_geom *g)
{
    return 2.0 * (double)g->N * (double)g->OC * (double)(g->C / g->groups) * (double)g->KH *
           (double)g->KW * (double)g->OH * (double)g->OW;
}

static float *filled(int64_t n, float scale)
{
    float *p = aligned_alloc(64, (size_t)((n + 15) / 16 * 16) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((i * 7 % 13) - 6) * scale;
    return p;
}

/* GFLOP/s of one direction on one shape: the median of `samples` timed blocks of calls,
 * each block at least ~50 ms; *cpu_rate the same per CPU second (per core busy). */
static double time_dir(const tg_conv2d_geom *g, int dir, int samples, float *x, float *w,
                       float *b, float *y, float *dy, float *dx, float *dw, double *cpu_rate)
{
    double flop = flop_of(g);
#define CALL()                                                             \
    (dir == 0 ? tg_cpu_conv2d_forward_f32(y, x, w, b, g)                   \
     : dir == 1 ? tg_cpu_conv2d_backward_data_f32(dx, dy, w, g)            \
                : tg_cpu_conv2d_backward_weight_f32(dw, dy, x, g))
    if (CALL() != TG_OK) {
        fprintf(stderr, "conv failed\n");
        exit(1);
    }
    double t0 = bench_now();
    CALL();
    double one = bench_now() - t0;
    int reps = one > 0.05 ? 1 : (int)(0.05 / (one > 1e-6 ? one : 1e-6)) + 1;
    double rate[MAXR], crate[MAXR];
    for (int s = 0; s < samples; s++) {
        double c0 = process_cpu();
        t0 = bench_now();
        for (int r = 0; r < reps; r++)
            CALL();
        double t1 = bench_now(), c1 = process_cpu();
        rate[s] = flop * reps / (t1 - t0) * 1e-9;
        crate[s] = flop * reps / (c1 - c0) * 1e-9;
    }
#undef CALL
    *cpu_rate = bench_median(crate, samples);
    return bench_median(rate, samples);
}

/* The peer for the selected shapes, one process a round; fills peer[i][dir][round]. */
static int run_peer(const char *path, const int *sel, int nsel, int threads, int samples,
                    int round, double peer[][3][MAXR], double peerc[][3][MAXR])
{
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd,
                       "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 "
                       "/usr/bin/python3 %s --threads %d --samples %d", path, threads, samples);
    for (int i = 0; i < nsel && len < (int)sizeof cmd - 200; i++) {
        const int64_t *v = k_shapes[sel[i]].v;
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " --shape ");
        for (int j = 0; j < 14; j++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%s%lld", j ? "," : "",
                            (long long)v[j]);
    }
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        int i;
        char d[32];
        double gf, gc;
        if (sscanf(line, "{\"i\": %d, \"dir\": \"%31[^\"]\", \"gflops\": %lf, \"cpu_gflops\": %lf", &i, d,
                   &gf, &gc) != 4 ||
            i < 0 || i >= nsel)
            continue;
        for (int k = 0; k < 3; k++)
            if (strcmp(d, k_dirs[k]) == 0)
                peer[i][k][round] = gf, peerc[i][k][round] = gc, got++;
    }
    return pclose(f) == 0 && got == 3 * nsel ? 0 : -1;
}

static void spread(const double *v, int n, double *med, double *lo, double *hi)
{
    double c[MAXR];
    memcpy(c, v, (size_t)n * sizeof *v);
    *med = bench_median(c, n); /* sorts c */
    *lo = c[0], *hi = c[n - 1];
}

/* --algo and --vs names, in tg_conv_algo's order */
static const char *const k_algos[] = { "auto", "implicit", "gemm", "col", "depthwise", "direct", "lanes", "winograd" };
#define NALGOS (int)(sizeof k_algos / sizeof k_algos[0])

int main(int argc, char **argv)
{
    int rounds = 3, threads = 2, quick = 0, full = 0, peer_on = 1, json = 0, samples = 3;
    int base_algo = 0, vs_algo = -1; /* --vs: the second column is that algorithm, alternated with the first */
    const char *peer_path = "bench/peer_torch_conv.py", *match = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer_path = argv[++i];
        else if (strcmp(argv[i], "--match") == 0 && i + 1 < argc)
            match = argv[++i];
        else if ((strcmp(argv[i], "--algo") == 0 || strcmp(argv[i], "--vs") == 0) && i + 1 < argc) {
            int vs = argv[i][2] == 'v';
            const char *a = argv[++i];
            int k = 0;
            while (k < NALGOS && strcmp(a, k_algos[k]) != 0)
                k++;
            if (k == NALGOS) {
                fprintf(stderr, "bench_conv: unknown %s %s\n", vs ? "--vs" : "--algo", a);
                return 2;
            }
            if (vs)
                vs_algo = k;
            else
                base_algo = k;
        }
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--full") == 0)
            full = 1;
        else if (strcmp(argv[i], "--no-peer") == 0)
            peer_on = 0;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
    }
    rounds = rounds < 1 ? 1 : rounds > MAXR ? MAXR : rounds;
    int sel[NSHAPES], nsel = 0;
    for (int i = 0; i < NSHAPES; i++)
        if (match ? strstr(k_shapes[i].name, match) != NULL
                  : quick ? k_shapes[i].set == 0 : (k_shapes[i].set < 4 || full))
            sel[nsel++] = i;
    static double tg[NSHAPES][3][MAXR], peer[NSHAPES][3][MAXR], peaks[MAXR];
    static double tgc[NSHAPES][3][MAXR], peerc[NSHAPES][3][MAXR];
    tg_pool_set_num_threads(threads);
    /* the largest buffers any selected shape needs, allocated once */
    int64_t nx = 0, nw = 0, no = 0, nb = 0;
    for (int i = 0; i < nsel; i++) {
        tg_conv2d_geom g = to_geom(&k_shapes[sel[i]]);
        int64_t a = g.N * g.C * g.H * g.W, b = g.OC * (g.C / g.groups) * g.KH * g.KW;
        int64_t c = g.N * g.OC * g.OH * g.OW;
        nx = a > nx ? a : nx, nw = b > nw ? b : nw, no = c > no ? c : no;
        nb = g.OC > nb ? g.OC : nb;
    }
    float *x = filled(nx, 0.1f), *w = filled(nw, 0.01f), *b = filled(nb, 0.1f);
    float *y = filled(no, 0), *dy = filled(no, 0.1f), *dx = filled(nx, 0), *dw = filled(nw, 0);
    int peer_ok = peer_on && vs_algo < 0;
    tg_cpu_conv_set_algo((tg_conv_algo)base_algo);
    for (int r = 0; r < rounds; r++) {
        double p0 = measure_peak();
        for (int i = 0; i < nsel; i++) {
            tg_conv2d_geom g = to_geom(&k_shapes[sel[i]]);
            for (int d = 0; d < 3; d++)
                tg[i][d][r] = time_dir(&g, d, samples, x, w, b, y, dy, dx, dw, &tgc[i][d][r]);
            if (vs_algo < 0)
                continue;
            tg_cpu_conv_set_algo((tg_conv_algo)vs_algo);
            for (int d = 0; d < 3; d++)
                peer[i][d][r] = time_dir(&g, d, samples, x, w, b, y, dy, dx, dw, &peerc[i][d][r]);
            tg_cpu_conv_set_algo((tg_conv_algo)base_algo);
        }
        if (peer_ok && run_peer(peer_path, sel, nsel, threads, samples, r, peer, peerc) != 0) {
            fprintf(stderr, "bench_conv: the PyTorch peer did not run (%s); continuing without\n",
                    peer_path);
            peer_ok = 0;
        }
        double p1 = measure_peak();
        peaks[r] = p0 > p1 ? p0 : p1;
        fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    double pk, plo, phi;
    spread(peaks, rounds, &pk, &plo, &phi);
    peer_ok |= vs_algo >= 0;
    const char *first = vs_algo >= 0 ? k_algos[base_algo] : "tapegrad", *second = vs_algo >= 0 ? k_algos[vs_algo] : "PyTorch";
    double peak = pk * threads;
    if (!json) {
        printf("f32 FMA peak, one core (per CPU second): %.1f GFLOP/s (rounds %.1f-%.1f); %d threads: %.1f; "
               "GEMM kernel %s\n", pk, plo, phi, threads, peak, tg_cpu_gemm_kernel_name());
        printf("GFLOP/s wall clock: median over %d rounds [min-max], %%pk of the %d-thread peak; "
               "cpu%%: GFLOP per CPU second of the process over one core's peak\n", rounds, threads);
        printf("%-24s %-10s %20s %6s %5s %20s %6s %5s %6s\n", "layer", "direction", first, "%pk",
               "cpu%", second, "%pk", "cpu%", "ratio");
    } else {
        printf("{\"peak_gflops_per_core\": %.1f, \"threads\": %d, \"kernel\": \"%s\", \"results\": [\n",
               pk, threads, tg_cpu_gemm_kernel_name());
    }
    for (int i = 0; i < nsel; i++)
        for (int d = 0; d < 3; d++) {
            double m, lo, hi, pm = 0, plo2 = 0, phi2 = 0, mc, pc = 0, u, v;
            spread(tg[i][d], rounds, &m, &lo, &hi);
            spread(tgc[i][d], rounds, &mc, &u, &v);
            if (peer_ok) {
                spread(peer[i][d], rounds, &pm, &plo2, &phi2);
                spread(peerc[i][d], rounds, &pc, &u, &v);
            }
            if (json) {
                printf("  {\"layer\": \"%s\", \"dir\": \"%s\", \"tg_gflops\": %.1f, \"tg_min\": %.1f, "
                       "\"tg_max\": %.1f, \"tg_cpu_gflops\": %.1f, \"torch_gflops\": %.1f, "
                       "\"torch_cpu_gflops\": %.1f, \"peak\": %.1f}%s\n",
                       k_shapes[sel[i]].name, k_dirs[d], m, lo, hi, mc, pm, pc, peak,
                       i + 1 < nsel || d < 2 ? "," : "");
                continue;
            }
            char a[64], c[64] = "-";
            snprintf(a, sizeof a, "%.1f [%.1f-%.1f]", m, lo, hi);
            if (peer_ok)
                snprintf(c, sizeof c, "%.1f [%.1f-%.1f]", pm, plo2, phi2);
            printf("%-24s %-10s %20s %5.1f%% %4.0f%% %20s %5.1f%% %4.0f%% %5.2fx\n",
                   d ? "" : k_shapes[sel[i]].name, k_dirs[d], a, 100 * m / peak, 100 * mc / pk, c,
                   peer_ok ? 100 * pm / peak : 0, peer_ok ? 100 * pc / pk : 0,
                   peer_ok && pm > 0 ? m / pm : 0);
        }
    if (json)
        printf("]}\n");
    return 0;
}
