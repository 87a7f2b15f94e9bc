/* The machine probes of machine.h: CPU model, f32 FMA peak (independent FMA chains that
 * never leave the registers, on every thread at once) and triad bandwidth. Each probe is
 * short and repeated; the best is kept, because a busy machine only slows a probe. */
#include "machine.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MAX_THREADS 256

void bench_cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86: "model name"; Arm: "Model" or "Hardware" (the first one found wins) */
        if (strncmp(line, "model name", 10) && strncmp(line, "Model", 5) && strncmp(line, "Hardware", 8))
            continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        if (*v) {
            snprintf(buf, n, "%s", v);
            break;
        }
    }
    fclose(f);
}

int bench_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    return 1;
}

double bench_loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* ---------------------------------------------------------------- FMA peak */

typedef float (*fma_kernel)(long iters);

#if defined(__x86_64__)
#include <immintrin.h>

/* 24 chains cover the FMA latency (4 cycles) times two FMA ports with room to spare. */
#define CHAINS 24

__attribute__((target("avx512f"), noinline)) static float fma_avx512(long iters) {
    __m512 acc[CHAINS];
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

/* 12 of the 16 ymm registers: enough chains for two ports, room for the constants. */
__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iters) {
    __m256 acc[12];
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

/* The probes this CPU can run, with the f32 FLOPs of one iteration. */
static int kernels(fma_kernel *k, double *flops, const char **names) {
    int n = 0;
    if (__builtin_cpu_supports("avx512f")) k[n] = fma_avx512, flops[n] = CHAINS * 32.0, names[n++] = "avx512f";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        k[n] = fma_avx2, flops[n] = 12 * 16.0, names[n++] = "avx2+fma";
    return n;
}
#else
static int kernels(fma_kernel *k, double *flops, const char **names) {
    (void)k, (void)flops, (void)names;
    return 0;
}
#endif

typedef struct {
    fma_kernel k;
    long iters;
    pthread_barrier_t *start;
    double t0, t1;
    volatile float sink;
} fma_job;

static void *fma_worker(void *p) {
    fma_job *j = p;
    pthread_barrier_wait(j->start);
    j->t0 = bench_now();
    j->sink = j->k(j->iters);
    j->t1 = bench_now();
    return NULL;
}

/* FLOP/s of one probe: `threads` threads start together; the clock runs from the first
 * start to the last finish, so a thread that was held back lowers the figure. */
static double fma_probe(fma_kernel k, double flops_per_iter, long iters, int threads) {
    fma_job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (fma_job){ .k = k, .iters = iters, .start = &start };
        if (i && pthread_create(&th[i], NULL, fma_worker, &jobs[i])) threads = i;
    }
    fma_worker(&jobs[0]);
    double t0 = jobs[0].t0, t1 = jobs[0].t1;
    for (int i = 1; i < threads; i++) {
        pthread_join(th[i], NULL);
        t0 = jobs[i].t0 < t0 ? jobs[i].t0 : t0;
        t1 = jobs[i].t1 > t1 ? jobs[i].t1 : t1;
    }
    pthread_barrier_destroy(&start);
    return flops_per_iter * (double)iters * threads / (t1 - t0);
}

double bench_fma_peak(int threads, int probes, const char **isa) {
    fma_kernel k[4];
    double flops[4];
    const char *names[4];
    int nk = kernels(k, flops, names);
    if (isa) *isa = "none";
    if (!nk) return 0;
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    double best = 0;
    for (int i = 0; i < nk; i++) {
        /* calibrate to about 20 ms a probe */
        long iters = 20000;
        double t0 = bench_now();
        volatile float s = k[i](iters);
        (void)s;
        double dt = bench_now() - t0;
        iters = (long)(iters * 0.02 / (dt > 1e-6 ? dt : 1e-6)) + 1;
        for (int p = 0; p < probes; p++) {
            double f = fma_probe(k[i], flops[i], iters, threads);
            if (f > best) {
                best = f;
                if (isa) *isa = names[i];
            }
        }
    }
    return best * 1e-9;
}

/* ---------------------------------------------------------------- bandwidth */

#define TRIAD_N (16L * 1024 * 1024)

typedef struct {
    float *a, *b, *c;
    long lo, hi;
    pthread_barrier_t *start;
    double t0, t1;
} triad_job;

static void *triad_worker(void *p) {
    triad_job *j = p;
    pthread_barrier_wait(j->start);
    j->t0 = bench_now();
    for (long i = j->lo; i < j->hi; i++) j->a[i] = j->b[i] + 3.0f * j->c[i];
    j->t1 = bench_now();
    return NULL;
}

double bench_triad_gbs(int threads, int reps, double *median) {
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    float *a = aligned_alloc(64, TRIAD_N * sizeof(float)), *b = aligned_alloc(64, TRIAD_N * sizeof(float)),
          *c = aligned_alloc(64, TRIAD_N * sizeof(float));
    if (median) *median = 0;
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (long i = 0; i < TRIAD_N; i++) a[i] = 0, b[i] = 1, c[i] = 2;
    double gbs[64], best = 0;
    for (int r = 0; r < reps; r++) {
        triad_job jobs[MAX_THREADS];
        pthread_t th[MAX_THREADS];
        pthread_barrier_t start;
        int n = threads;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        for (int k = 0; k < n; k++) {
            jobs[k] = (triad_job){ a, b, c, TRIAD_N * k / n, TRIAD_N * (k + 1) / n, &start, 0, 0 };
            if (k && pthread_create(&th[k], NULL, triad_worker, &jobs[k])) {
                fprintf(stderr, "bench_triad_gbs: cannot start thread %d\n", k);
                exit(1);
            }
        }
        triad_worker(&jobs[0]);
        double t0 = jobs[0].t0, t1 = jobs[0].t1;
        for (int k = 1; k < n; k++) {
            pthread_join(th[k], NULL);
            t0 = jobs[k].t0 < t0 ? jobs[k].t0 : t0;
            t1 = jobs[k].t1 > t1 ? jobs[k].t1 : t1;
        }
        pthread_barrier_destroy(&start);
        gbs[r] = 3.0 * TRIAD_N * sizeof(float) / (t1 - t0) * 1e-9;
        best = gbs[r] > best ? gbs[r] : best;
    }
    free(a), free(b), free(c);
    if (median) *median = bench_median(gbs, reps);
    return best;
}

/* ---------------------------------------------------------------- summary */

void bench_machine_probe(bench_machine *m, int threads) {
    memset(m, 0, sizeof *m);
    bench_cpu_model(m->cpu, sizeof m->cpu);
    m->cpus = bench_cpu_count();
    m->threads = threads < 1 ? 1 : threads;
    m->load = bench_loadavg();
    m->peak1 = bench_fma_peak(1, 5, &m->isa);
    m->peak = m->threads == 1 ? m->peak1 : bench_fma_peak(m->threads, 5, &m->isa);
    m->triad = bench_triad_gbs(m->threads, 9, &m->triad_med);
}

void bench_machine_print(FILE *f, const bench_machine *m) {
    fprintf(f, "CPU: %s, %d CPUs usable, load average %.2f\n", m->cpu, m->cpus, m->load);
    fprintf(f, "measured: f32 FMA peak %.1f GFLOP/s on 1 thread", m->peak1);
    if (m->threads > 1) fprintf(f, ", %.1f on %d", m->peak, m->threads);
    fprintf(f, " (%s, best of 5 probes); triad %.1f GB/s on %d thread%s (best of 9; median %.1f)\n", m->isa,
            m->triad, m->threads, m->threads > 1 ? "s" : "", m->triad_med);
}

void bench_machine_json(FILE *f, const bench_machine *m) {
    char cpu[sizeof m->cpu];
    size_t j = 0;
    for (size_t i = 0; m->cpu[i] && j + 1 < sizeof cpu; i++)
        if (m->cpu[i] != '"' && m->cpu[i] != '\\') cpu[j++] = m->cpu[i];
    cpu[j] = 0;
    fprintf(f, "{\"cpu\": \"%s\", \"cpus\": %d, \"threads\": %d, \"isa\": \"%s\", \"peak1_gflops\": %.1f, "
               "\"peak_gflops\": %.1f, \"triad_gbs\": %.2f, \"triad_median_gbs\": %.2f, \"loadavg\": %.2f}",
            cpu, m->cpus, m->threads, m->isa, m->peak1, m->peak, m->triad, m->triad_med, m->load);
}
