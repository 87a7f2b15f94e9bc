/* tapegrad-bench's shared types: a workload (what one call does and how much work it is),
 * a result (its timings on one device or peer), and the run that collects them. */
#ifndef TG_TOOL_BENCH_H
#define TG_TOOL_BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include "tapegrad.h"

/* What one call of a workload is worth, for GFLOP/s, GB/s and images/s. */
typedef struct {
    double flops;  /* floating-point operations per call (an FMA is 2); 0: memory-bound */
    double bytes;  /* bytes moved per call, for the memory-bound ones; else 0 */
    double images; /* samples per call (images/s); 0: not counted */
} bench_work;

typedef struct bench_workload bench_workload;
struct bench_workload {
    const char *group; /* "gemm", "conv", "elementwise", "reduction", "train", "forward" */
    char name[64];     /* "gemm 1024", "vgg16 conv3_1 b1", "train resnet20 b64" */
    bench_work work;
    bool quick;        /* part of --quick */
    /* Builds the inputs on dev; returns the state for run, or NULL with tg_last_error()
     * (the workload is then reported as skipped with that message). */
    void *(*setup)(const bench_workload *w, tg_device *dev);
    /* One call; false (with tg_last_error()) when it failed. Runs inside a scope. */
    bool (*run)(void *state);
    void (*teardown)(void *state);
    int64_t p[8];      /* the workload's own parameters (sizes) */
    char spec[160];    /* the same as JSON members, for the peers: "\"kind\": \"gemm\", \"n\": 512" */
};

/* The workloads, in the order they run (cheap first). Fills list and returns how many
 * (at most max). */
int bench_ops_workloads(bench_workload *list, int max);
int bench_model_workloads(bench_workload *list, int max);

#define BENCH_MAX_SAMPLES 64
typedef struct {
    char workload[64];
    char group[16];
    char target[64];   /* "cpu", "opencl:0", "pytorch-cpu", "openblas", "clblast:opencl:0" */
    bench_work work;
    int n;             /* samples; 0: skipped (see note) */
    double median, min, max; /* seconds per call */
    char note[160];    /* why it was skipped, or a remark */
} bench_result;

/* A device's limits, measured in the same run. */
typedef struct {
    char target[64];
    char name[128];
    double peak_gflops; /* f32 FMA peak on the threads/compute units in use */
    double bw_gbs;      /* streaming bandwidth */
    char how[96];       /* "avx512f, 2 threads", "OpenCL float4 mad, 8 CUs" */
} bench_limits;

typedef struct {
    bench_result *results;
    int n, cap;
    bench_limits limits[16];
    int n_limits;
    char cpu[128];
    int threads;
    double load_before, load_after;
    char when[32];
} bench_run;

/* Appends a result (copied). */
void bench_run_add(bench_run *run, const bench_result *r);
const bench_limits *bench_run_limits(const bench_run *run, const char *target);
const bench_result *bench_run_find(const bench_run *run, const char *workload, const char *target);

/* Timing options: at least min_reps samples, more while under budget_s, at most
 * max_reps; a workload whose estimated call time exceeds skip_s is skipped. */
typedef struct {
    int min_reps, max_reps;
    double budget_s, skip_s;
} bench_timing;

/* Times w on dev into *out (target name taken from the device). est_rate is the FLOP/s
 * expected (0: unknown) for the skip rule. */
void bench_time_workload(const bench_workload *w, tg_device *dev, const char *target, const bench_timing *t,
                         double est_rate, bench_result *out);

/* The OpenCL probes (probe_opencl.c): FMA peak and copy bandwidth of the device that
 * tapegrad calls info->id, as OpenCL kernels. false when unavailable (note says why). */
bool bench_opencl_limits(const tg_device_info *info, bench_limits *out, char *note, size_t note_size);
/* CLBlast's SGEMM called directly on that device (n x n x n), seconds per call. */
bool bench_clblast_gemm(const tg_device_info *info, int n, const bench_timing *t, bench_result *out);

/* Reports (report.c). */
void bench_print_table(FILE *f, const bench_run *run);
bool bench_write_json(const char *path, const bench_run *run);
bool bench_write_svg(const char *path, const bench_run *run);
/* Reads two JSON results and prints them side by side (compare.c); exit status. */
int bench_compare(const char *a, const char *b);

/* The figure of a result in its natural unit: GFLOP/s for compute, GB/s for memory. */
double bench_result_rate(const bench_result *r);
/* Its fraction of the target's roofline (0 when unknown). */
double bench_result_roofline(const bench_run *run, const bench_result *r);

#endif
