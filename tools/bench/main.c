/* tapegrad-bench: the CPU-versus-GPU benchmark. Runs one suite (GEMMs, elementwise ops and
 * reductions, every distinct convolution of VGG-16 and ResNet-50, training steps and
 * inference forwards of whole models) on the CPU and on every OpenCL device, measures
 * each device's own limits in the same run, and reports every figure as a fraction of
 * its roofline, the speedup over the CPU, and the peers' figures beside ours.
 *
 *     tapegrad-bench [--quick] [--device ID]... [--group NAME] [--threads N]
 *                    [--json FILE] [--svg FILE] [--no-peers] [--peer-coretype NAME]
 *                    [--python PATH] [--peer-python PATH|none] [--peer-omp-wait POLICY]
 *                    [--budget S]
 *     tapegrad-bench --compare A.json B.json
 *
 * Measures, never asserts. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "machine.h"
#include "peers.h"

#define MAX_WORKLOADS 160
#define MAX_DEVICES 8

typedef struct {
    bool quick, peers;
    const char *devices[MAX_DEVICES];
    int n_devices;
    const char *group, *json, *svg;
    int threads;
    double budget;
    bench_peer_opts peer;
} options;

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--quick] [--device ID]... [--group NAME] [--threads N] [--json FILE] [--svg FILE]\n"
            "       [--no-peers] [--peer-coretype NAME] [--python PATH] [--peer-python PATH|none]\n"
            "       [--peer-omp-wait auto|default|passive|active] [--budget S]\n"
            "       %s --compare A.json B.json\n"
            "peers (unless --no-peers): the system BLAS, CLBlast, PyTorch under --python (default\n"
            "/usr/bin/python3), and PyTorch 2.x and onnxruntime under --peer-python (default\n"
            "%s, which scripts/setup-peers.sh creates; none: skip them);\n"
            "--peer-omp-wait: their OMP_WAIT_POLICY (auto: the faster of default and passive)\n",
            argv0, argv0, TG_BENCH_VENV_PYTHON);
    return 2;
}

/* The peer scripts: installed beside the program's data, or in the source tree. */
static const char *torch_script(void) {
    if (access(TG_BENCH_SCRIPT_INSTALLED, R_OK) == 0) return TG_BENCH_SCRIPT_INSTALLED;
    return TG_BENCH_SCRIPT_SOURCE;
}

static const char *ort_script(void) {
    if (access(TG_BENCH_ORT_SCRIPT_INSTALLED, R_OK) == 0) return TG_BENCH_ORT_SCRIPT_INSTALLED;
    return TG_BENCH_ORT_SCRIPT_SOURCE;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){ .peers = true, .threads = tg_get_num_threads() };
    o->peer = (bench_peer_opts){ .python = "/usr/bin/python3", .venv_python = TG_BENCH_VENV_PYTHON,
                                 .torch_script = torch_script(), .ort_script = ort_script(), .self = argv[0],
                                 .omp_wait = "auto" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) o->quick = true;
        else if (!strcmp(a, "--no-peers")) o->peers = false;
        else if (!v) return false;
        else if (!strcmp(a, "--device") && o->n_devices < MAX_DEVICES) o->devices[o->n_devices++] = v, i++;
        else if (!strcmp(a, "--group")) o->group = v, i++;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v), i++;
        else if (!strcmp(a, "--json")) o->json = v, i++;
        else if (!strcmp(a, "--svg")) o->svg = v, i++;
        else if (!strcmp(a, "--peer-coretype")) o->peer.coretype = v, i++;
        else if (!strcmp(a, "--python")) o->peer.python = v, i++;
        else if (!strcmp(a, "--peer-python")) o->peer.venv_python = strcmp(v, "none") ? v : NULL, i++;
        else if (!strcmp(a, "--peer-omp-wait") && (!strcmp(v, "auto") || !strcmp(v, "passive") || !strcmp(v, "active")))
            o->peer.omp_wait = v, i++;
        else if (!strcmp(a, "--peer-omp-wait") && !strcmp(v, "default")) o->peer.omp_wait = NULL, i++;
        else if (!strcmp(a, "--budget")) o->budget = atof(v), i++;
        else return false;
    }
    if (o->threads < 1) return false;
    tg_set_num_threads(o->threads);
    o->peer.threads = o->threads;
    o->peer.timing = o->quick ? (bench_timing){ 3, 7, 0.25, 4 } : (bench_timing){ 5, 15, 1.0, 12 };
    if (o->budget > 0) o->peer.timing.budget_s = o->budget;
    return true;
}

static bool wanted_device(const options *o, const char *id) {
    if (!o->n_devices) return true;
    for (int i = 0; i < o->n_devices; i++)
        if (!strcmp(o->devices[i], id)) return true;
    return false;
}

/* The suite: every workload, or the quick ones, of the chosen group. */
static int select_workloads(const options *o, bench_workload *ws) {
    bench_workload all[MAX_WORKLOADS];
    int n = bench_ops_workloads(all, MAX_WORKLOADS);
    n += bench_model_workloads(all + n, MAX_WORKLOADS - n);
    int k = 0;
    for (int i = 0; i < n; i++)
        if ((!o->quick || all[i].quick) && (!o->group || !strcmp(o->group, all[i].group))) ws[k++] = all[i];
    return k;
}

/* The rate expected of w on a device from what it already measured there: the last
 * figure of the same group, else of convolutions, else of GEMMs (0: no estimate). */
static double expected_rate(const bench_run *run, const char *target, const char *group) {
    const char *order[] = { group, "conv", "gemm" };
    for (int g = 0; g < 3; g++)
        for (int i = run->n - 1; i >= 0; i--) {
            const bench_result *r = &run->results[i];
            if (r->n && r->work.flops > 0 && !strcmp(r->target, target) && !strcmp(r->group, order[g]))
                return r->work.flops / r->median;
        }
    return 0;
}

static void run_device(const options *o, const tg_device_info *info, const bench_workload *ws, int n, bench_run *run) {
    tg_device *dev = tg_device_get(info->id);
    if (!dev) {
        fprintf(stderr, "tapegrad-bench: %s\n", tg_last_error());
        return;
    }
    fprintf(stderr, "tapegrad-bench: %s (%s), %d workloads\n", info->id, info->name, n);
    for (int i = 0; i < n; i++) {
        bench_result r;
        double est = ws[i].work.flops > 0 ? expected_rate(run, info->id, ws[i].group) : 0;
        tg_manual_seed(1);
        bench_time_workload(&ws[i], dev, info->id, &o->peer.timing, est, &r);
        bench_run_add(run, &r);
        fprintf(stderr, "  %-26s %s\n", ws[i].name, r.n ? "done" : r.note);
    }
}

static void probe_limits(const options *o, const tg_device_info *infos, int n_infos, bench_run *run) {
    bench_machine m;
    bench_machine_probe(&m, o->threads);
    snprintf(run->cpu, sizeof run->cpu, "%s", m.cpu);
    bench_limits *cpu = &run->limits[run->n_limits++];
    *cpu = (bench_limits){ .peak_gflops = m.peak, .bw_gbs = m.triad };
    snprintf(cpu->target, sizeof cpu->target, "cpu");
    snprintf(cpu->name, sizeof cpu->name, "%s", m.cpu);
    snprintf(cpu->how, sizeof cpu->how, "%s FMA loop and triad, %d threads", m.isa, o->threads);
    for (int d = 0; d < n_infos && run->n_limits < 16; d++) {
        if (infos[d].kind != TG_DEVICE_OPENCL || !wanted_device(o, infos[d].id)) continue;
        char note[160];
        if (!bench_opencl_limits(&infos[d], &run->limits[run->n_limits], note, sizeof note))
            fprintf(stderr, "tapegrad-bench: %s\n", note);
        else
            run->n_limits++;
    }
}

/* The forward workloads of whole models that the onnxruntime peer exports; their count. */
static int ort_workloads(const bench_workload *ws, int n, bench_workload *out) {
    static const char *models[] = { "\"model\": \"vgg16\"", "\"model\": \"resnet50\"", "\"model\": \"resnet20\"" };
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 3; m++)
            if (!strcmp(ws[i].group, "forward") && strstr(ws[i].spec, models[m])) {
                out[k++] = ws[i];
                break;
            }
    return k;
}

/* One PyTorch peer under python, at the OpenMP wait policy it runs fastest with (auto). */
static void run_torch_peer(const bench_peer_opts *peer, const char *python, const bench_workload *ws, int n,
                           bench_run *run) {
    char note[256] = "";
    bench_peer_opts p = *peer;
    if (p.omp_wait && !strcmp(p.omp_wait, "auto")) {
        p.omp_wait = bench_pick_omp_wait(&p, python, p.torch_script, note, sizeof note);
        fprintf(stderr, "tapegrad-bench: PyTorch (%s): %s; runs with %s\n", python, note,
                p.omp_wait ? "OMP_WAIT_POLICY=passive" : "OpenMP's default");
    }
    note[0] = '\0';
    int got = bench_peer_python(&p, python, p.torch_script, ws, n, run, note, sizeof note);
    fprintf(stderr, "tapegrad-bench: PyTorch (%s): %d results; %s\n", python, got, note);
}

/* PyTorch under Debian's python (torch 1.x, OpenBLAS), then PyTorch 2.x and onnxruntime
 * under the venv's python when there is one. */
static void run_python_peers(const bench_peer_opts *peer, const bench_workload *ws, int n, bench_run *run) {
    run_torch_peer(peer, peer->python, ws, n, run);
    const char *venv = peer->venv_python;
    if (!venv || access(venv, X_OK)) {
        fprintf(stderr, "tapegrad-bench: PyTorch 2.x and onnxruntime not run: %s%s\n",
                venv ? venv : "--peer-python none", venv ? " is missing (scripts/setup-peers.sh creates it)" : "");
        return;
    }
    bench_peer_opts p2 = *peer;
    p2.coretype = NULL; /* torch 2.x wheels and onnxruntime call MKL/oneDNN/MLAS, not OpenBLAS */
    run_torch_peer(&p2, venv, ws, n, run);
    static bench_workload fw[MAX_WORKLOADS];
    int nf = ort_workloads(ws, n, fw);
    char note[256] = "";
    p2.omp_wait = NULL; /* onnxruntime's own thread pool: the script picks its spinning */
    int got = nf ? bench_peer_python(&p2, venv, p2.ort_script, fw, nf, run, note, sizeof note) : 0;
    fprintf(stderr, "tapegrad-bench: onnxruntime: %d results; %s\n", got,
            nf ? note : "no forward workload of vgg16, resnet50 or resnet20 in this suite");
}

static void run_peers(const options *o, const tg_device_info *infos, int n_infos, const bench_workload *ws, int n,
                      bench_run *run) {
    char note[256];
    bench_peer_opts peer = o->peer;
    if (!peer.coretype) {
        peer.coretype = bench_pick_coretype(&o->peer, note, sizeof note);
        fprintf(stderr, "tapegrad-bench: OpenBLAS kernels (512^3): %s; the peers run with %s\n", note,
                *peer.coretype ? peer.coretype : "OpenBLAS's own detection");
    }
    note[0] = '\0';
    bench_peer_blas(&peer, ws, n, run, note, sizeof note);
    fprintf(stderr, "tapegrad-bench: system BLAS: %s\n", note);
    run_python_peers(&peer, ws, n, run);
    for (int d = 0; d < n_infos; d++) {
        if (infos[d].kind != TG_DEVICE_OPENCL || !wanted_device(o, infos[d].id)) continue;
        for (int i = 0; i < n; i++) {
            bench_result r;
            if (!strcmp(ws[i].group, "gemm") && bench_clblast_gemm(&infos[d], (int)ws[i].p[0], &peer.timing, &r))
                bench_run_add(run, &r);
        }
    }
}

/* Orders the results as the suite runs its workloads, the targets of each together. */
static void sort_results(bench_run *run, const bench_workload *ws, int n) {
    for (int i = 1; i < run->n; i++) {
        bench_result r = run->results[i];
        int wi = 0;
        while (wi < n && strcmp(ws[wi].name, r.workload)) wi++;
        int j = i;
        for (; j > 0; j--) {
            int wj = 0;
            while (wj < n && strcmp(ws[wj].name, run->results[j - 1].workload)) wj++;
            if (wj <= wi) break;
            run->results[j] = run->results[j - 1];
        }
        run->results[j] = r;
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--blas-child")) return bench_blas_child(argc - 2, argv + 2);
    if (argc == 4 && !strcmp(argv[1], "--compare")) return bench_compare(argv[2], argv[3]);
    options o;
    if (!parse(argc, argv, &o)) return usage(argv[0]);
    static bench_workload ws[MAX_WORKLOADS];
    int n = select_workloads(&o, ws);
    tg_device_info infos[MAX_DEVICES];
    int n_infos = tg_device_list(infos, MAX_DEVICES);
    if (n_infos > MAX_DEVICES) n_infos = MAX_DEVICES;
    bench_run run = { .threads = o.threads, .load_before = bench_loadavg() };
    time_t now = time(NULL);
    strftime(run.when, sizeof run.when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    probe_limits(&o, infos, n_infos, &run);
    for (int d = 0; d < n_infos; d++)
        if (wanted_device(&o, infos[d].id)) run_device(&o, &infos[d], ws, n, &run);
    if (o.peers) run_peers(&o, infos, n_infos, ws, n, &run);
    run.load_after = bench_loadavg();
    sort_results(&run, ws, n);
    bench_print_table(stdout, &run);
    int rc = 0;
    if (o.json && !bench_write_json(o.json, &run)) fprintf(stderr, "tapegrad-bench: cannot write '%s'\n", o.json), rc = 1;
    if (o.svg && !bench_write_svg(o.svg, &run)) fprintf(stderr, "tapegrad-bench: cannot write '%s'\n", o.svg), rc = 1;
    free(run.results);
    return rc;
}
