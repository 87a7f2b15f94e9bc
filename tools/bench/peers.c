/* The peers, each run at its best in a child process of its own so that its environment
 * is its own: PyTorch and onnxruntime (Python scripts given the same workload list as
 * JSON) and the system BLAS's SGEMM (this program again, with --blas-child). All get
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (some machines set them, selecting a
 * half-speed kernel) or the core type chosen with --peer-coretype; the Python peers get
 * OPENBLAS_NUM_THREADS=1 beside their own threads. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peers.h"

#ifdef TG_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

/* Runs argv with the peer environment, stdout to out_path; true when it exited 0.
 * python: a peer that threads on its own above the BLAS (OPENBLAS_NUM_THREADS=1) with
 * o->omp_wait as its OpenMP wait policy. */
static bool run_child(const bench_peer_opts *o, const char *coretype, char *const argv[], const char *out_path,
                      bool python) {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OPENBLAS_L2_SIZE");
        if (coretype && *coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
        char t[16];
        snprintf(t, sizeof t, "%d", o->threads);
        setenv("OMP_NUM_THREADS", t, 1);
        if (python) setenv("OPENBLAS_NUM_THREADS", "1", 1);
        if (python && o->omp_wait) setenv("OMP_WAIT_POLICY", o->omp_wait, 1);
        if (!freopen(out_path, "w", stdout)) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#ifdef TG_HAVE_CJSON
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (buf) buf[got] = '\0';
    return buf;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Reads the peer's {"target": ..., "note": ..., "results": [{workload, samples, median_s, min_s,
 * max_s, note, target}]} (a result's own target overrides the peer's) and adds each result
 * whose workload is in the list. */
static int add_peer_results(const char *path, const bench_workload *ws, int n, bench_run *run, char *note,
                            size_t note_size) {
    char *text = slurp(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *results = j ? cJSON_GetObjectItem(j, "results") : NULL;
    if (!cJSON_IsArray(results)) {
        snprintf(note, note_size, "the peer wrote no results");
        cJSON_Delete(j);
        return 0;
    }
    const cJSON *t = cJSON_GetObjectItem(j, "target"), *about = cJSON_GetObjectItem(j, "note");
    if (cJSON_IsString(about)) snprintf(note, note_size, "%s", about->valuestring);
    int added = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, results) {
        const cJSON *name = cJSON_GetObjectItem(r, "workload"), *rn = cJSON_GetObjectItem(r, "note");
        const cJSON *rt = cJSON_GetObjectItem(r, "target");
        for (int i = 0; i < n && cJSON_IsString(name); i++) {
            if (strcmp(ws[i].name, name->valuestring)) continue;
            bench_result br = { .work = ws[i].work, .n = (int)num(r, "samples"), .median = num(r, "median_s"),
                                .min = num(r, "min_s"), .max = num(r, "max_s") };
            snprintf(br.workload, sizeof br.workload, "%s", ws[i].name);
            snprintf(br.group, sizeof br.group, "%s", ws[i].group);
            snprintf(br.target, sizeof br.target, "%s",
                     cJSON_IsString(rt) ? rt->valuestring : cJSON_IsString(t) ? t->valuestring : "peer");
            if (cJSON_IsString(rn)) snprintf(br.note, sizeof br.note, "%s", rn->valuestring);
            bench_run_add(run, &br);
            added++;
        }
    }
    cJSON_Delete(j);
    return added;
}
#endif

int bench_peer_python(const bench_peer_opts *o, const char *python, const char *script, const bench_workload *ws,
                      int n, bench_run *run, char *note, size_t note_size) {
#ifndef TG_HAVE_CJSON
    (void)o, (void)python, (void)script, (void)ws, (void)n, (void)run;
    snprintf(note, note_size, "the peers need cJSON; this build has none");
    return 0;
#else
    char spec[] = "/tmp/tapegrad-bench-spec.XXXXXX", out[] = "/tmp/tapegrad-bench-peer.XXXXXX";
    int fs = mkstemp(spec), fo = fs >= 0 ? mkstemp(out) : -1;
    FILE *f = fs >= 0 ? fdopen(fs, "w") : NULL;
    if (fo < 0 || !f) {
        snprintf(note, note_size, "cannot create temporary files");
        if (f) fclose(f);
        else if (fs >= 0) close(fs);
        if (fs >= 0) unlink(spec);
        return 0;
    }
    close(fo);
    fprintf(f, "{\"threads\": %d, \"budget_s\": %g, \"min_reps\": %d, \"max_reps\": %d, \"workloads\": [\n", o->threads,
            o->timing.budget_s, o->timing.min_reps, o->timing.max_reps);
    for (int i = 0; i < n; i++)
        fprintf(f, "  {\"name\": \"%s\", %s}%s\n", ws[i].name, ws[i].spec, i + 1 < n ? "," : "");
    fprintf(f, "]}\n");
    fclose(f);
    char *argv[] = { (char *)python, (char *)script, "--spec", spec, NULL };
    bool ok = run_child(o, o->coretype, argv, out, true);
    int added = ok ? add_peer_results(out, ws, n, run, note, note_size) : 0;
    if (!ok) snprintf(note, note_size, "%s %s failed (are its packages installed for it?)", python, script);
    unlink(spec), unlink(out);
    return added;
#endif
}

#ifdef TG_HAVE_CJSON
/* Seconds of the child's 512^3 SGEMM under coretype ("" for OpenBLAS's detection), 0 on failure. */
static double probe_coretype(const bench_peer_opts *o, const char *coretype, char *core, size_t core_size) {
    char out[] = "/tmp/tapegrad-bench-core.XXXXXX";
    int fo = mkstemp(out);
    if (fo < 0) return 0;
    close(fo);
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[] = { (char *)o->self, "--blas-child", "512", "0.2", threads, NULL };
    double t = 0;
    if (run_child(o, coretype, argv, out, false)) {
        char *text = slurp(out);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        const cJSON *r = j ? cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0) : NULL;
        const cJSON *c = j ? cJSON_GetObjectItem(j, "core") : NULL;
        if (r) t = num(r, "median_s");
        if (cJSON_IsString(c)) snprintf(core, core_size, "%s", c->valuestring);
        cJSON_Delete(j);
        free(text);
    }
    unlink(out);
    return t;
}
#endif

const char *bench_pick_coretype(const bench_peer_opts *o, char *why, size_t why_size) {
    static const char *cands[] = { "", "Cooperlake", "SkylakeX", "Haswell", "Zen" };
    static char chosen[32];
    chosen[0] = '\0';
    why[0] = '\0';
#ifdef TG_HAVE_CJSON
    __builtin_cpu_init();
    bool ok[5] = { true, __builtin_cpu_supports("avx512bf16"),
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx512dq"),
                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                   __builtin_cpu_is("amd") && __builtin_cpu_supports("avx2") };
    double best_t = 0;
    size_t used = 0;
    for (int c = 0; c < 5; c++) {
        char core[32] = "?";
        double t = ok[c] ? probe_coretype(o, cands[c], core, sizeof core) : 0;
        if (t <= 0) continue;
        used += (size_t)snprintf(why + used, used < why_size ? why_size - used : 0, "%s%s%s %.1f GFLOP/s",
                                 used ? ", " : "", c ? "" : "detected ", core, 2.0 * 512 * 512 * 512 / t * 1e-9);
        /* a forced kernel must beat the detected one clearly */
        if (best_t == 0 || t * 1.03 < best_t) best_t = t, snprintf(chosen, sizeof chosen, "%s", cands[c]);
    }
#else
    (void)o, (void)why_size;
#endif
    return chosen;
}

/* Seconds of the probe (a 256^3 GEMM and an MLP forward, summed medians) under wait. */
static double probe_omp_wait(const bench_peer_opts *o, const char *python, const char *script, const char *wait) {
    static const bench_workload probe[2] = {
        { .group = "gemm", .name = "gemm 256", .spec = "\"kind\": \"gemm\", \"n\": 256" },
        { .group = "forward", .name = "forward mlp b64",
          .spec = "\"kind\": \"model\", \"model\": \"mlp\", \"batch\": 64, \"train\": false" },
    };
    bench_peer_opts p = *o;
    p.omp_wait = wait;
    p.timing = (bench_timing){ 5, 15, 0.3, 4 };
    bench_run run = { 0 };
    char note[256];
    double t = 0;
    if (bench_peer_python(&p, python, script, probe, 2, &run, note, sizeof note) == 2)
        for (int i = 0; i < run.n; i++) t += run.results[i].n ? run.results[i].median : 1e9;
    free(run.results);
    return t;
}

const char *bench_pick_omp_wait(const bench_peer_opts *o, const char *python, const char *script, char *why,
                                size_t why_size) {
    double spin = probe_omp_wait(o, python, script, NULL), passive = probe_omp_wait(o, python, script, "passive");
    snprintf(why, why_size, "probe (256^3 GEMM + MLP b64 forward) %.2f ms with OpenMP's default wait, %.2f ms with "
             "OMP_WAIT_POLICY=passive", 1e3 * spin, 1e3 * passive);
    return passive > 0 && (spin <= 0 || passive * 1.1 < spin) ? "passive" : NULL;
}

int bench_peer_blas(const bench_peer_opts *o, const bench_workload *ws, int n, bench_run *run, char *note,
                    size_t note_size) {
#ifndef TG_HAVE_CJSON
    (void)o, (void)ws, (void)n, (void)run;
    snprintf(note, note_size, "the peers need cJSON; this build has none");
    return 0;
#else
    char out[] = "/tmp/tapegrad-bench-blas.XXXXXX";
    int fo = mkstemp(out);
    if (fo < 0) return 0;
    close(fo);
    char sizes[128] = "", budget[32], threads[16];
    for (int i = 0; i < n; i++)
        if (!strcmp(ws[i].group, "gemm"))
            snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%lld", sizes[0] ? "," : "", (long long)ws[i].p[0]);
    snprintf(budget, sizeof budget, "%g", o->timing.budget_s);
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[] = { (char *)o->self, "--blas-child", sizes, budget, threads, NULL };
    bool ok = sizes[0] && run_child(o, o->coretype, argv, out, false);
    int added = ok ? add_peer_results(out, ws, n, run, note, note_size) : 0;
    if (!ok) snprintf(note, note_size, "%s", sizes[0] ? "the system BLAS child failed" : "no GEMM workloads");
    unlink(out);
    return added;
#endif
}
