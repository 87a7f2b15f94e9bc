/* The machine's limits, measured, for every benchmark to print beside its figures: the
 * CPU model (from /proc/cpuinfo), the f32 FMA peak and the triad memory bandwidth.
 * Probes are short and repeated, and the best is kept: another process can only make a
 * probe slower, never faster, so the best of several is the machine's figure. */
#ifndef TG_BENCH_MACHINE_H
#define TG_BENCH_MACHINE_H

#include <stdio.h>

typedef struct {
    char cpu[128];     /* "model name" from /proc/cpuinfo, else "unknown CPU" */
    int cpus;          /* CPUs this process may run on */
    int threads;       /* the thread count the figures below were measured on */
    const char *isa;   /* the probe that gave the peak: "avx512f", "avx2+fma" or "none" */
    double peak1;      /* f32 FMA GFLOP/s on one thread (best of probes; 0: unknown) */
    double peak;       /* f32 FMA GFLOP/s of `threads` threads at once */
    double triad;      /* triad GB/s on `threads` threads, best of repetitions */
    double triad_med;  /* the same, median */
    double load;       /* 1-minute load average when probed (-1: unknown) */
} bench_machine;

/* Writes the CPU model into buf (always NUL-terminated). */
void bench_cpu_model(char *buf, size_t n);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
int bench_cpu_count(void);

/* The 1-minute load average, or -1. */
double bench_loadavg(void);

/* f32 FMA GFLOP/s of `threads` threads running a register-resident FMA loop at once,
 * the best of `probes` probes of about 20 ms each; the ISA that gave it in *isa (may be
 * NULL). 0 where no probe exists for this CPU. */
double bench_fma_peak(int threads, int probes, const char **isa);

/* Triad (a = b + s*c, STREAM's counting: 12 bytes an element) GB/s over 16M-element
 * f32 arrays on `threads` threads: the best of `reps` repetitions; the median in *median
 * (may be NULL). 0 if the arrays cannot be allocated. */
double bench_triad_gbs(int threads, int reps, double *median);

/* Fills m for `threads` threads (about a second). */
void bench_machine_probe(bench_machine *m, int threads);

/* Two lines for people: the CPU, then peak and bandwidth. */
void bench_machine_print(FILE *f, const bench_machine *m);

/* A JSON object (no trailing newline or comma). */
void bench_machine_json(FILE *f, const bench_machine *m);

#endif
