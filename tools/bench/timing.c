/* Timing one workload on one device: a warm-up call (kernel builds, allocator caches),
 * then samples until the budget is spent, each ending with the device drained, so a
 * sample is the wall time of finished work. The median is the figure; min and max its
 * spread. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One call inside its own scope, then the queue drained; seconds, or -1 on failure. */
static double one_call(const bench_workload *w, void *state, tg_device *dev) {
    double t0 = now_s();
    tg_scope_begin();
    bool ok = w->run(state);
    tg_scope_end();
    tg_device_synchronize(dev);
    return ok ? now_s() - t0 : -1;
}

static void set_note(bench_result *out, const char *what) {
    snprintf(out->note, sizeof out->note, "%s", what);
}

void bench_time_workload(const bench_workload *w, tg_device *dev, const char *target, const bench_timing *t,
                         double est_rate, bench_result *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->workload, sizeof out->workload, "%s", w->name);
    snprintf(out->group, sizeof out->group, "%s", w->group);
    snprintf(out->target, sizeof out->target, "%s", target);
    out->work = w->work;
    if (est_rate > 0 && w->work.flops / est_rate > t->skip_s) {
        snprintf(out->note, sizeof out->note, "skipped: about %.0f s a call at this device's rate", w->work.flops / est_rate);
        return;
    }
    void *state = w->setup(w, dev);
    if (!state) {
        snprintf(out->note, sizeof out->note, "skipped: %s", tg_last_error());
        return;
    }
    double samples[BENCH_MAX_SAMPLES];
    double first = one_call(w, state, dev); /* warm-up, not counted */
    if (first < 0) {
        snprintf(out->note, sizeof out->note, "failed: %s", tg_last_error());
        goto done;
    }
    double spent = 0;
    int n = 0;
    /* A call slower than the whole budget still gets one sample beside the warm-up. */
    while (n < t->max_reps && (n < t->min_reps || spent < t->budget_s)) {
        if (n >= 1 && first > t->budget_s) break;
        double s = one_call(w, state, dev);
        if (s < 0) {
            snprintf(out->note, sizeof out->note, "failed: %s", tg_last_error());
            goto done;
        }
        samples[n++] = s;
        spent += s;
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    out->n = n;
    out->median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
    out->min = samples[0];
    out->max = samples[n - 1];
    if (n < t->min_reps) set_note(out, "fewer samples: slower than the time budget");
done:
    if (w->teardown) w->teardown(state);
}

void bench_run_add(bench_run *run, const bench_result *r) {
    if (run->n == run->cap) {
        int cap = run->cap ? 2 * run->cap : 64;
        bench_result *p = realloc(run->results, (size_t)cap * sizeof *p);
        if (!p) return;
        run->results = p;
        run->cap = cap;
    }
    run->results[run->n++] = *r;
}

const bench_limits *bench_run_limits(const bench_run *run, const char *target) {
    for (int i = 0; i < run->n_limits; i++)
        if (!strcmp(run->limits[i].target, target)) return &run->limits[i];
    /* peers run on a device's hardware: "clblast:opencl:0" on opencl:0, the CPU peers on cpu */
    const char *colon = strchr(target, ':');
    if (colon && !strncmp(target, "clblast:", 8)) return bench_run_limits(run, colon + 1);
    size_t n = strlen(target); /* the CPU peers: "pytorch-cpu", "pytorch2-cpu", "onnxruntime-cpu", the BLAS */
    if ((n > 4 && !strcmp(target + n - 4, "-cpu")) || !strcmp(target, "openblas")) return bench_run_limits(run, "cpu");
    return NULL;
}

const bench_result *bench_run_find(const bench_run *run, const char *workload, const char *target) {
    for (int i = 0; i < run->n; i++)
        if (!strcmp(run->results[i].workload, workload) && !strcmp(run->results[i].target, target))
            return &run->results[i];
    return NULL;
}

double bench_result_rate(const bench_result *r) {
    if (r->n == 0 || r->median <= 0) return 0;
    if (r->work.flops > 0) return r->work.flops / r->median * 1e-9;
    return r->work.bytes / r->median * 1e-9;
}

double bench_result_roofline(const bench_run *run, const bench_result *r) {
    const bench_limits *l = bench_run_limits(run, r->target);
    double rate = bench_result_rate(r);
    if (!l || rate <= 0) return 0;
    if (r->work.flops > 0) return l->peak_gflops > 0 ? rate / l->peak_gflops : 0;
    return l->bw_gbs > 0 ? rate / l->bw_gbs : 0;
}
