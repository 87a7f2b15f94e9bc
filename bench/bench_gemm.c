/* GEMM benchmark: GFLOP/s of tg_cpu_gemm_f32 against OpenBLAS's cblas_sgemm on square
 * row-major problems and a few small shapes, on 1 and 2 threads, against the machine's
 * f32 FMA peak. The two libraries run alternately; each figure is the median of several
 * runs with its range. The peak is probed beside every shape (best of several short
 * probes on as many threads as the shape uses); the peak is the best probe of the whole
 * run (on t threads, at least t x the 1-thread peak): a ratio above 100% then means a
 * disturbed measurement and is flagged.
 *
 * OpenBLAS runs at its best: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (which some machines
 * set, selecting a slower kernel) are removed, each of OpenBLAS's kernels that this CPU
 * can run is timed in a child process, and the program re-executes itself with the
 * fastest (--keep-openblas-env keeps the environment as it is; --pick-openblas only
 * prints the choice, for other peers that load OpenBLAS). The kernel it ran is printed.
 * Measures, never asserts.
 *
 * Usage: bench_gemm [--json] [--quick] [--threads N] [--keep-openblas-env] | --pick-openblas */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/threadpool.h"
#include "bench_util.h"
#include "machine.h"

#define NRUNS 7
#define MAXT 2
#define PROBES 3

/* OpenBLAS's own declarations of these vary between versions; declare what we use. */
char *openblas_get_config(void);

typedef struct {
    int64_t M, N, K;
    int threads;
    double tg, blas;           /* GFLOP/s, medians */
    double tg_lo, tg_hi;       /* range over the runs */
    double blas_lo, blas_hi;
    double probe;              /* the peak probe beside this shape, GFLOP/s on `threads` */
} result;

static double g_peak[MAXT + 1]; /* best probe seen for each thread count */

/* The peak a figure on t threads is divided by: the best t-thread probe, or t times the
 * best 1-thread probe where that is higher (a core is never faster with its neighbours
 * busy, so this bounds the machine's t-thread peak from above even when no t-thread
 * probe ran undisturbed). A ratio above 100% of it is a measurement error. */
static double peak_for(int t) {
    return g_peak[t] > t * g_peak[1] ? g_peak[t] : t * g_peak[1];
}

static void let_blas_threads_sleep(int threads) {
    /* OpenBLAS's idle threads spin for about 0.1 s after a call; let them sleep before
     * the next measurement so they do not take its cores. */
    if (threads > 1) nanosleep(&(struct timespec){ 0, 250000000 }, NULL);
}

static double probe_peak(int threads) {
    let_blas_threads_sleep(threads);
    double p = bench_fma_peak(threads, PROBES, NULL);
    if (p > g_peak[threads]) g_peak[threads] = p;
    return p;
}

static void sgemm_blas(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B,
                (int)N, 0.0f, C, (int)N);
}

static void sgemm_tg(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
    tg_cpu_gemm_f32(M, N, K, A, K, 1, B, N, 1, 0.0f, C, N, 1);
}

static void range(const double *v, int n, double *lo, double *hi) {
    *lo = *hi = v[0];
    for (int i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* Row-major C (M x N) = A (M x K) B (K x N), both libraries, alternating; reps calls a
 * run so a run lasts a few milliseconds at least. */
static result run_shape(int64_t M, int64_t N, int64_t K, int threads, int nruns) {
    float *A = aligned_alloc(64, (size_t)((M * K + 15) / 16 * 16) * sizeof(float));
    float *B = aligned_alloc(64, (size_t)((K * N + 15) / 16 * 16) * sizeof(float));
    float *C = aligned_alloc(64, (size_t)((M * N + 15) / 16 * 16) * sizeof(float));
    if (!A || !B || !C) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)((i * 7 % 13) - 6) * 0.1f;
    for (int64_t i = 0; i < K * N; i++) B[i] = (float)((i * 5 % 11) - 5) * 0.1f;
    memset(C, 0, (size_t)(M * N) * sizeof(float));
    tg_pool_set_num_threads(threads);
    openblas_set_num_threads(threads);
    result res = { M, N, K, threads, 0, 0, 0, 0, 0, 0, probe_peak(threads) };
    double flop = 2.0 * (double)M * (double)N * (double)K;
    int reps = (int)(5e7 / flop) + 1;
    /* warm-up: page in, start the threads, size the packing buffers */
    sgemm_tg(M, N, K, A, B, C);
    sgemm_blas(M, N, K, A, B, C);
    let_blas_threads_sleep(threads);
    double tg[NRUNS], bl[NRUNS];
    for (int r = 0; r < nruns; r++) {
        /* each timed block starts with an untimed call, so both libraries' threads are
         * awake: the figures are steady-state throughput */
        sgemm_tg(M, N, K, A, B, C);
        double t0 = bench_now();
        for (int i = 0; i < reps; i++) sgemm_tg(M, N, K, A, B, C);
        double t1 = bench_now();
        sgemm_blas(M, N, K, A, B, C);
        double t1b = bench_now();
        for (int i = 0; i < reps; i++) sgemm_blas(M, N, K, A, B, C);
        double t2 = bench_now();
        let_blas_threads_sleep(threads);
        tg[r] = flop * reps / (t1 - t0) * 1e-9;
        bl[r] = flop * reps / (t2 - t1b) * 1e-9;
    }
    free(A), free(B), free(C);
    range(tg, nruns, &res.tg_lo, &res.tg_hi);
    range(bl, nruns, &res.blas_lo, &res.blas_hi);
    res.tg = bench_median(tg, nruns);
    res.blas = bench_median(bl, nruns);
    return res;
}

/* --openblas-probe: the best of 5 single-thread 512^3 sgemm runs, "GFLOP/s corename". */
static int openblas_probe(void) {
    int64_t n = 512;
    float *A = calloc((size_t)(n * n), sizeof(float)), *B = calloc((size_t)(n * n), sizeof(float)),
          *C = calloc((size_t)(n * n), sizeof(float));
    if (!A || !B || !C) return 1;
    openblas_set_num_threads(1);
    sgemm_blas(n, n, n, A, B, C);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        sgemm_blas(n, n, n, A, B, C);
        double g = 2.0 * n * n * n / (bench_now() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    printf("%.2f %s\n", best, openblas_get_corename());
    free(A), free(B), free(C);
    return 0;
}

/* The OPENBLAS_CORETYPE that makes OpenBLAS fastest here, "" for its own detection (the
 * variable unset): each candidate runs --openblas-probe in a child, twice, alternated.
 * OpenBLAS 0.3.21 falls back to an old SSE3 kernel on CPUs it does not know (newer Xeons
 * in VMs), and machines that set OPENBLAS_CORETYPE may pick a slower one; the peer is
 * compared at its best. A summary of what was tried goes into why. */
static const char *pick_openblas(char *why, size_t nwhy) {
    static char chosen[32];
    static const char *cands[] = { "", "Cooperlake", "SkylakeX", "Haswell", "Zen" };
    int ok[5] = { 1, __builtin_cpu_supports("avx512bf16"), __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"),
                  __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                  __builtin_cpu_is("amd") && __builtin_cpu_supports("avx2") };
    double best[5] = { 0 };
    char core[5][32] = { "" };
    char self[1024];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return "";
    self[len] = 0;
    for (int round = 0; round < 2; round++)
        for (int c = 0; c < 5; c++) {
            if (!ok[c]) continue;
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE %s%s '%s' --openblas-probe",
                     *cands[c] ? "OPENBLAS_CORETYPE=" : "", cands[c], self);
            FILE *p = popen(cmd, "r");
            double g = 0;
            char name[32] = "";
            if (p) {
                if (fscanf(p, "%lf %31s", &g, name) != 2) g = 0;
                pclose(p);
            }
            if (g > best[c]) best[c] = g, snprintf(core[c], sizeof core[c], "%s", name);
        }
    int b = 0;
    size_t used = 0;
    why[0] = 0;
    for (int c = 0; c < 5; c++) {
        if (!ok[c]) continue;
        if (best[c] > best[b] * 1.03) b = c; /* a forced kernel must beat detection clearly */
        used += (size_t)snprintf(why + used, used < nwhy ? nwhy - used : 0, "%s%s%s %.0f", used ? ", " : "",
                                 *cands[c] ? "" : "detected ", core[c], best[c]);
    }
    snprintf(chosen, sizeof chosen, "%s", cands[b]);
    return chosen;
}

/* Re-executes this program with OpenBLAS's variables as pick_openblas chose, before
 * OpenBLAS's start-up has any effect on a measurement. */
static void choose_openblas_env(char **argv) {
    if (getenv("TG_BENCH_OPENBLAS_TRIED")) return; /* already re-executed */
    char was[256] = "", why[256];
    const char *names[] = { "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE" };
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        size_t n = strlen(was);
        if (v) snprintf(was + n, sizeof was - n, "%s%s=%s", n ? " " : "", names[i], v);
    }
    const char *pick = pick_openblas(why, sizeof why);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_L2_SIZE");
    if (*pick) setenv("OPENBLAS_CORETYPE", pick, 1);
    setenv("TG_BENCH_OPENBLAS_TRIED", why, 1);
    setenv("TG_BENCH_OPENBLAS_ENV_WAS", was, 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "bench_gemm: cannot re-execute itself; OpenBLAS keeps its environment\n");
}

static void print_table(const result *res, int nres) {
    printf("GFLOP/s: median [min-max] of the runs; ratios from the medians; peak: see above\n");
    printf("%5s %5s %5s %3s  %-22s %-22s %8s %8s %8s\n", "M", "N", "K", "thr", "tapegrad", "OpenBLAS", "tg/BLAS",
           "tg/peak", "BLAS/pk");
    int flagged = 0;
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        double pk = peak_for(r->threads);
        char a[32], b[32];
        snprintf(a, sizeof a, "%.1f [%.1f-%.1f]", r->tg, r->tg_lo, r->tg_hi);
        snprintf(b, sizeof b, "%.1f [%.1f-%.1f]", r->blas, r->blas_lo, r->blas_hi);
        double tp = pk > 0 ? 100 * r->tg / pk : 0, bp = pk > 0 ? 100 * r->blas / pk : 0;
        int bad = tp > 100 || bp > 100;
        flagged |= bad;
        printf("%5lld %5lld %5lld %3d  %-22s %-22s %#7.3gx %7.1f%% %7.1f%%%s\n", (long long)r->M, (long long)r->N,
               (long long)r->K, r->threads, a, b, r->tg / r->blas, tp, bp, bad ? "  MEASUREMENT ERROR (>100% of peak)" : "");
    }
    if (flagged)
        printf("a figure above 100%% of the peak means the machine was busy during the peak probes or the "
               "runs; rerun on a quiet machine\n");
}

int main(int argc, char **argv) {
    int json = 0, quick = 0, only = 0, keep_env = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep-openblas-env")) keep_env = 1;
        else if (!strcmp(argv[i], "--openblas-probe")) return openblas_probe();
        else if (!strcmp(argv[i], "--pick-openblas")) {
            char why[256];
            const char *pick = pick_openblas(why, sizeof why);
            fprintf(stderr, "OpenBLAS kernels, single-thread 512^3 GFLOP/s: %s\n", why);
            printf("%s\n", pick);
            return 0;
        }
        else {
            fprintf(stderr, "usage: %s [--json] [--quick] [--threads N] [--keep-openblas-env]\n", argv[0]);
            return 2;
        }
    }
    if (!keep_env) choose_openblas_env(argv);
    const char *was = getenv("TG_BENCH_OPENBLAS_ENV_WAS"), *tried = getenv("TG_BENCH_OPENBLAS_TRIED");
    if (was && !*was) was = NULL;
    int maxt = only ? only : bench_cpu_count() < MAXT ? bench_cpu_count() : MAXT;
    if (maxt < 1 || maxt > MAXT) maxt = MAXT;
    bench_machine m;
    bench_machine_probe(&m, maxt);
    g_peak[1] = m.peak1;
    g_peak[maxt] = m.peak > g_peak[maxt] ? m.peak : g_peak[maxt];
    double load0 = m.load;

    static const int64_t square[] = { 256, 512, 1024, 2048 };
    static const int64_t shapes[][3] = { { 8, 32, 16 }, { 64, 512, 784 }, { 64, 784, 512 }, { 128, 128, 128 } };
    result res[32];
    int nres = 0;
    for (int t = 1; t <= maxt; t++) {
        if (only && t != only) continue;
        for (int s = 0; s < 4; s++)
            res[nres++] = run_shape(square[s], square[s], square[s], t, quick ? 3 : (square[s] >= 2048 ? 5 : NRUNS));
        for (int s = 0; s < 4; s++) res[nres++] = run_shape(shapes[s][0], shapes[s][1], shapes[s][2], t, quick ? 3 : NRUNS);
        probe_peak(t);
    }
    double load1 = bench_loadavg();
    const char *core = openblas_get_corename();
    if (json) {
        printf("{\"machine\": ");
        bench_machine_json(stdout, &m);
        printf(", \"peak_gflops\": {\"1\": %.1f, \"%d\": %.1f}, \"tg_kernel\": \"%s\", \"openblas_core\": \"%s\", "
               "\"openblas_config\": \"%s\", \"openblas_env_was\": \"%s\", \"openblas_tried\": \"%s\", \"loadavg\": [%.2f, %.2f], \"results\": [\n",
               g_peak[1], maxt, peak_for(maxt), tg_cpu_gemm_kernel_name(), core, openblas_get_config(), was ? was : "", tried ? tried : "",
               load0, load1);
        for (int i = 0; i < nres; i++)
            printf("  {\"M\": %lld, \"N\": %lld, \"K\": %lld, \"threads\": %d, \"tg_gflops\": %.1f, \"tg_min\": %.1f, "
                   "\"tg_max\": %.1f, \"openblas_gflops\": %.1f, \"openblas_min\": %.1f, \"openblas_max\": %.1f, "
                   "\"peak_probe\": %.1f}%s\n",
                   (long long)res[i].M, (long long)res[i].N, (long long)res[i].K, res[i].threads, res[i].tg,
                   res[i].tg_lo, res[i].tg_hi, res[i].blas, res[i].blas_lo, res[i].blas_hi, res[i].probe,
                   i + 1 < nres ? "," : "");
        printf("]}\n");
        return 0;
    }
    bench_machine_print(stdout, &m);
    printf("f32 FMA peak, best probe of the run: %.1f GFLOP/s on 1 thread", g_peak[1]);
    if (maxt > 1) printf(", %.1f on %d", g_peak[maxt], maxt);
    double lo = 1e30;
    for (int i = 0; i < nres; i++) {
        double p = res[i].probe / res[i].threads;
        lo = p < lo ? p : lo;
    }
    printf(" (lowest probe beside a shape: %.1f per thread; low probes mean a busy machine)\n", lo);
    if (maxt > 1 && g_peak[maxt] < 0.8 * maxt * g_peak[1])
        printf("  the %d-thread probe never reached 0.8 x %d x the 1-thread one: another process shared the cores, "
               "so %d-thread figures are unreliable; their ratios use %d x the 1-thread peak (%.1f)\n",
               maxt, maxt, maxt, maxt, peak_for(maxt));
    printf("tapegrad kernel: %s\n", tg_cpu_gemm_kernel_name());
    printf("OpenBLAS kernel: %s (%s), OPENBLAS_CORETYPE=%s\n", core, openblas_get_config(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset: its own detection)");
    if (tried)
        printf("  chosen as the fastest of its kernels here (single-thread 512^3 GFLOP/s: %s)%s%s\n", tried,
               was ? "; the environment had " : "", was ? was : "");
    if (keep_env && (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE")))
        printf("OpenBLAS variables kept (--keep-openblas-env): OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s\n",
               getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "", getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "");
    printf("load average before/after: %.2f / %.2f (other busy processes skew the figures)\n", load0, load1);
    print_table(res, nres);
    return 0;
}
