/* GEMM benchmark: the machine's f32 FMA peak per core (a register-resident FMA loop),
 * then GFLOP/s of tg_cpu_gemm_f32 against OpenBLAS's cblas_sgemm on square row-major
 * problems and a few small shapes, on 1 and 2 threads. The two libraries run
 * alternately and each figure is the median of several runs. Measures, never asserts.
 *
 * Usage: bench_gemm [--json] [--quick] [--threads N]   (N: only that thread count) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/threadpool.h"
#include "bench_util.h"

#define NRUNS 7

/* ---------------------------------------------------------------- peak */

#if defined(__x86_64__)
#include <immintrin.h>

#define PEAK_CHAINS 24

/* FLOPs per second of independent FMA chains that never leave the registers. */
__attribute__((target("avx512f"), noinline)) static double peak_avx512(long iters)
{
    __m512 acc[PEAK_CHAINS];
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < PEAK_CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    double t0 = bench_now();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < PEAK_CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    double dt = bench_now() - t0;
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++)
        s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * PEAK_CHAINS * 32 / dt;
}

__attribute__((target("avx2,fma"), noinline)) static double peak_avx2(long iters)
{
    __m256 acc[12];
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    double t0 = bench_now();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    double dt = bench_now() - t0;
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return (double)iters * 12 * 16 / dt;
}

/* Best of three runs of about 0.2 s, in GFLOP/s (0: unknown on this CPU). */
static double measure_peak(void)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    int avx512 = __builtin_cpu_supports("avx512f");
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double f = avx512 ? peak_avx512(3000000) : peak_avx2(6000000);
        best = f > best ? f : best;
    }
    return best * 1e-9;
}
#else
static double measure_peak(void)
{
    return 0;
}
#endif

/* The 1-minute load average, or -1: other processes on the machine show up there, and
 * they make the 2-thread figures meaningless on a 2-core machine. */
static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---------------------------------------------------------------- gemm runs */

typedef struct {
    int64_t M, N, K;
    int threads;
    double tg, blas;           /* GFLOP/s, medians */
    double tg_best, blas_best; /* GFLOP/s, the best run: robust to other processes */
} result;

/* Row-major C (M x N) = A (M x K) B (K x N), both libraries, alternating; reps calls a
 * run so a run lasts a few milliseconds at least. */
static result run_shape(int64_t M, int64_t N, int64_t K, int threads, int nruns)
{
    float *A = aligned_alloc(64, (size_t)((M * K + 15) / 16 * 16) * sizeof(float));
    float *B = aligned_alloc(64, (size_t)((K * N + 15) / 16 * 16) * sizeof(float));
    float *C = aligned_alloc(64, (size_t)((M * N + 15) / 16 * 16) * sizeof(float));
    if (!A || !B || !C) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (float)((i * 7 % 13) - 6) * 0.1f;
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (float)((i * 5 % 11) - 5) * 0.1f;
    memset(C, 0, (size_t)(M * N) * sizeof(float));
    tg_pool_set_num_threads(threads);
    openblas_set_num_threads(threads);
    double flop = 2.0 * (double)M * (double)N * (double)K;
    int reps = (int)(5e7 / flop) + 1;
    /* warm-up: page in, start the threads, size the packing buffers */
    tg_cpu_gemm_f32(M, N, K, A, K, 1, B, N, 1, 0.0f, C, N, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A,
                (int)K, B, (int)N, 0.0f, C, (int)N);
    double tg[NRUNS * 2], bl[NRUNS * 2];
    for (int r = 0; r < nruns; r++) {
        /* each timed block starts with an untimed call, so both libraries' threads are
         * awake: the figures are steady-state throughput */
        tg_cpu_gemm_f32(M, N, K, A, K, 1, B, N, 1, 0.0f, C, N, 1);
        double t0 = bench_now();
        for (int i = 0; i < reps; i++)
            tg_cpu_gemm_f32(M, N, K, A, K, 1, B, N, 1, 0.0f, C, N, 1);
        double t1 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A,
                    (int)K, B, (int)N, 0.0f, C, (int)N);
        double t1b = bench_now();
        for (int i = 0; i < reps; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                        A, (int)K, B, (int)N, 0.0f, C, (int)N);
        double t2 = bench_now();
        /* OpenBLAS's idle threads spin for about 0.1 s after a call; let them sleep
         * before the next tapegrad run so they do not take its cores. */
        if (threads > 1)
            nanosleep(&(struct timespec){ 0, 250000000 }, NULL);
        tg[r] = flop * reps / (t1 - t0) * 1e-9;
        bl[r] = flop * reps / (t2 - t1b) * 1e-9;
    }
    free(A), free(B), free(C);
    double tgb = 0, blb = 0;
    for (int r = 0; r < nruns; r++) {
        tgb = tg[r] > tgb ? tg[r] : tgb;
        blb = bl[r] > blb ? bl[r] : blb;
    }
    return (result){ M, N, K, threads, bench_median(tg, nruns), bench_median(bl, nruns), tgb, blb };
}

int main(int argc, char **argv)
{
    int json = 0, quick = 0, only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            only = atoi(argv[++i]);
    }
    double load0 = loadavg();
    double peak = measure_peak();
    static const int64_t square[] = { 256, 512, 1024, 2048 };
    static const int64_t shapes[][3] = { { 8, 32, 16 }, { 64, 512, 784 }, { 64, 784, 512 },
                                         { 128, 128, 128 } }; /* M, N, K */
    result res[32];
    int nres = 0;
    for (int t = 1; t <= 2; t++) {
        if (only && t != only)
            continue;
        for (int s = 0; s < 4; s++)
            res[nres++] = run_shape(square[s], square[s], square[s], t,
                                    quick ? 3 : (square[s] >= 2048 ? 5 : NRUNS));
        for (int s = 0; s < 4; s++)
            res[nres++] = run_shape(shapes[s][0], shapes[s][1], shapes[s][2], t, quick ? 3 : NRUNS);
    }
    double peak2 = measure_peak(), load1 = loadavg();
    peak = peak2 > peak ? peak2 : peak; /* measured before and after: the better one */
    if (json) {
        printf("{\"peak_gflops_per_core\": %.1f, \"kernel\": \"%s\", \"loadavg\": [%.2f, %.2f], "
               "\"results\": [\n", peak, tg_cpu_gemm_kernel_name(), load0, load1);
        for (int i = 0; i < nres; i++)
            printf("  {\"M\": %lld, \"N\": %lld, \"K\": %lld, \"threads\": %d, \"tg_gflops\": %.1f, "
                   "\"openblas_gflops\": %.1f, \"tg_best\": %.1f, \"openblas_best\": %.1f}%s\n",
                   (long long)res[i].M, (long long)res[i].N, (long long)res[i].K, res[i].threads,
                   res[i].tg, res[i].blas, res[i].tg_best, res[i].blas_best,
                   i + 1 < nres ? "," : "");
        printf("]}\n");
        return 0;
    }
    printf("f32 FMA peak, one core: %.1f GFLOP/s; tapegrad kernel: %s; OpenBLAS %s\n", peak,
           tg_cpu_gemm_kernel_name(), openblas_get_corename());
    printf("load average before/after: %.2f / %.2f (other busy processes skew the figures)\n",
           load0, load1);
    printf("GFLOP/s, median (best) of the runs; tg/peak from the medians\n");
    printf("%6s %6s %6s %3s  %15s %15s  %7s %7s\n", "M", "N", "K", "thr", "tapegrad",
           "OpenBLAS", "tg/BLAS", "tg/peak");
    for (int i = 0; i < nres; i++)
        printf("%6lld %6lld %6lld %3d  %7.1f (%5.1f) %7.1f (%5.1f)  %6.2fx %6.1f%%\n",
               (long long)res[i].M, (long long)res[i].N, (long long)res[i].K, res[i].threads,
               res[i].tg, res[i].tg_best, res[i].blas, res[i].blas_best, res[i].tg / res[i].blas,
               100.0 * res[i].tg / (peak * res[i].threads));
    return 0;
}
