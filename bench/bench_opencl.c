/* OpenCL backend figures: per-op launch overhead (tg_add of 16 elements), tg_matmul f32
 * against CLBlast called directly on the same device (GFLOP/s), and the time to a first
 * result in a fresh process with a cold and with a warm program cache.
 *
 *     build/bench/bench_opencl [--device opencl:N] [--quick] [--json]
 *
 * Measures, never asserts. The fresh processes are this program again (with
 * --first-result), run with XDG_CACHE_HOME pointing at a new directory (cold: empty,
 * so the driver's own cache is cold too where it keeps it there; warm: the same
 * directory a second time). */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "bench_util.h"
#include "machine.h"

#if defined(TG_HAVE_CLBLAST) || (defined(__has_include) && __has_include(<clblast_c.h>))
#define BENCH_CLBLAST 1
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <clblast_c.h>
#endif

static void die(const char *what) {
    fprintf(stderr, "bench_opencl: %s: %s\n", what, tg_last_error());
    exit(1);
}

/* ------------------------------------------------------------------ launch overhead */

/* Microseconds per tg_add of two 16-element f32 tensors, the device drained at the end. */
static double add_overhead_us(tg_device *dev, int n) {
    tg_tensor *a = tg_retain(tg_rand(TG_F32, TG_SHAPE(16), dev)), *b = tg_retain(tg_rand(TG_F32, TG_SHAPE(16), dev));
    for (int i = 0; i < 200; i++) { /* builds, caches, warms the allocator */
        tg_scope_begin();
        tg_add(a, b);
        tg_scope_end();
    }
    tg_item(tg_sum(a, TG_ALL, false));
    double t0 = bench_now();
    for (int i = 0; i < n; i += 100) {
        tg_scope_begin();
        tg_tensor *c = a;
        for (int j = 0; j < 100; j++) c = tg_add(c, b); /* a chain, as a model runs */
        if (!c) die("tg_add");
        tg_scope_end();
    }
    float v[16];
    tg_scope_begin();
    if (tg_copy_to_host(tg_add(a, b), v, sizeof v) != TG_OK) die("sync"); /* waits for the queue */
    tg_scope_end();
    double t = bench_now() - t0;
    tg_release(a), tg_release(b);
    return t / n * 1e6;
}

/* ------------------------------------------------------------------ GEMM */

/* GFLOP/s of tg_matmul (n x n x n, f32), best of reps after a warm-up. */
static double tg_gemm_gflops(tg_device *dev, int n, int reps) {
    tg_tensor *a = tg_retain(tg_rand(TG_F32, TG_SHAPE(n, n), dev)), *b = tg_retain(tg_rand(TG_F32, TG_SHAPE(n, n), dev));
    double best = 1e30;
    for (int r = -1; r < reps; r++) {
        tg_scope_begin();
        float v;
        if (tg_copy_to_host(tg_slice(tg_reshape(a, TG_SHAPE(-1)), 0, 0, 1, 1), &v, sizeof v) != TG_OK) die("sync");
        double t0 = bench_now();
        tg_tensor *c = tg_matmul(a, b);
        if (!c || tg_copy_to_host(tg_slice(tg_reshape(c, TG_SHAPE(-1)), 0, 0, 1, 1), &v, sizeof v) != TG_OK)
            die("tg_matmul");
        double t = bench_now() - t0;
        if (r >= 0 && t < best) best = t;
        tg_scope_end();
    }
    tg_release(a), tg_release(b);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

#ifdef BENCH_CLBLAST
/* The same product through CLBlastSgemm on our own context and queue of the device
 * with the same name (the index among all OpenCL devices is the N of opencl:N). */
static double clblast_gflops(int index, int n, int reps) {
    cl_uint np = 0;
    clGetPlatformIDs(0, NULL, &np);
    cl_platform_id ps[16];
    if (np > 16) np = 16;
    clGetPlatformIDs(np, ps, NULL);
    cl_device_id dev = NULL;
    for (cl_uint p = 0, seen = 0; p < np && !dev; p++) {
        cl_uint nd = 0;
        cl_device_id ids[64];
        if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 64, ids, &nd) != CL_SUCCESS) continue;
        for (cl_uint i = 0; i < nd && i < 64; i++, seen++)
            if ((int)seen == index) dev = ids[i];
    }
    if (!dev) return NAN;
    cl_int e;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &e);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &e);
    size_t bytes = (size_t)n * n * sizeof(float);
    float *host = malloc(bytes);
    for (size_t i = 0; i < (size_t)n * n; i++) host[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &e);
    cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &e);
    cl_mem c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    double best = 1e30;
    for (int r = -1; r < reps; r++) {
        clFinish(q);
        double t0 = bench_now();
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)n,
                                           (size_t)n, (size_t)n, 1.0f, a, 0, (size_t)n, b, 0, (size_t)n, 0.0f, c, 0,
                                           (size_t)n, &q, NULL);
        float v;
        clEnqueueReadBuffer(q, c, CL_TRUE, 0, sizeof v, &v, 0, NULL, NULL);
        double t = bench_now() - t0;
        if (s != CLBlastSuccess) {
            fprintf(stderr, "bench_opencl: CLBlastSgemm failed: %d\n", (int)s);
            best = NAN;
            break;
        }
        if (r >= 0 && t < best) best = t;
    }
    clReleaseMemObject(a), clReleaseMemObject(b), clReleaseMemObject(c);
    clReleaseCommandQueue(q), clReleaseContext(ctx);
    free(host);
    return 2.0 * n * n * (double)n / best * 1e-9;
}
#endif

/* ------------------------------------------------------------------ first result */

/* The child: from process start to the first value read back, with a small forward
 * pass touching the common kernels (random, matmul, bias add, relu, log-softmax,
 * a reduction). Prints seconds. */
static int first_result(const char *device) {
    double t0 = bench_now();
    tg_device *dev = tg_device_get(device);
    if (!dev) die("tg_device_get");
    tg_manual_seed(1);
    tg_tensor *x = tg_rand(TG_F32, TG_SHAPE(64, 784), dev), *w = tg_randn(TG_F32, TG_SHAPE(784, 10), dev);
    tg_tensor *b = tg_zeros(TG_F32, TG_SHAPE(10), dev);
    tg_tensor *y = tg_log_softmax(tg_relu(tg_add(tg_matmul(x, w), b)), 1);
    double v = tg_item(tg_sum(y, TG_ALL, false));
    if (isnan(v)) die("first result");
    printf("%.6f\n", bench_now() - t0);
    return 0;
}

/* Wall time of a fresh `self --first-result` with XDG_CACHE_HOME=dir, and the child's own. */
static bool run_fresh(const char *self, const char *device, const char *dir, double *wall, double *inner) {
    int fd[2];
    if (pipe(fd) != 0) return false;
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        setenv("XDG_CACHE_HOME", dir, 1);
        unsetenv("TG_CL_CACHE");
        execl(self, self, "--first-result", "--device", device, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char buf[64] = "";
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    *wall = bench_now() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && sscanf(buf, "%lf", inner) == 1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    const char *device = "opencl";
    bool quick = false, json = false, child = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) device = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--first-result") == 0) child = true;
        else {
            fprintf(stderr, "usage: bench_opencl [--device opencl:N] [--quick] [--json]\n");
            return 2;
        }
    }
    if (child) return first_result(device);
    tg_device *dev = tg_device_get(device);
    if (!dev) {
        printf("bench_opencl: no OpenCL device (%s)\n", tg_last_error());
        return 0;
    }
    tg_device_info info;
    tg_device_get_info(dev, &info);
    int index = 0;
    sscanf(info.id, "opencl:%d", &index);

    bench_machine m; /* the host: with PoCL, the device's own limits */
    bench_machine_probe(&m, tg_get_num_threads());

    int n_adds = quick ? 2000 : 20000, gemm_n = 1024, reps = quick ? 2 : 5;
    double us = add_overhead_us(dev, n_adds);
    /* Alternating rounds, best of each: the machine's noise hits both alike. */
    double tg_gf = 0, cb_gf = NAN;
    for (int round = 0; round < 3; round++) {
        tg_gf = fmax(tg_gf, tg_gemm_gflops(dev, gemm_n, reps));
#ifdef BENCH_CLBLAST
        cb_gf = fmax(isnan(cb_gf) ? 0 : cb_gf, clblast_gflops(index, gemm_n, reps));
#endif
    }

    char dir[] = "/tmp/tg_bench_cache_XXXXXX";
    double cold_wall = NAN, cold_in = NAN, warm_wall = NAN, warm_in = NAN;
    if (mkdtemp(dir)) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        if (!run_fresh(self, info.id, dir, &cold_wall, &cold_in) || !run_fresh(self, info.id, dir, &warm_wall, &warm_in))
            fprintf(stderr, "bench_opencl: a fresh process failed\n");
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }

    if (json) {
        printf("{\"machine\": ");
        bench_machine_json(stdout, &m);
        printf(", \"device\": \"%s\", \"id\": \"%s\", \"driver\": \"%s\", \"add16_us\": %.3f, "
               "\"matmul1024_gflops\": %.2f, \"clblast1024_gflops\": %.2f, "
               "\"first_result_cold_s\": %.3f, \"first_result_warm_s\": %.3f, "
               "\"first_result_cold_wall_s\": %.3f, \"first_result_warm_wall_s\": %.3f}\n",
               info.name, info.id, info.driver_version, us, tg_gf, cb_gf, cold_in, warm_in, cold_wall, warm_wall);
        return 0;
    }
    bench_machine_print(stdout, &m);
    printf("device: %s (%s, %s, driver %s)\n", info.id, info.name, info.platform, info.driver_version);
    printf("%-44s %12s\n", "measure", "value");
    printf("%-44s %9.2f us\n", "tg_add, 16 f32 elements, per op", us);
    printf("%-44s %7.2f GFLOP/s\n", "tg_matmul f32 1024^3", tg_gf);
    printf("%-44s %7.2f GFLOP/s\n", "CLBlastSgemm 1024^3 (direct)", cb_gf);
    printf("%-44s %9.1f %%\n", "tg_matmul / CLBlast", 100.0 * tg_gf / cb_gf);
    printf("%-44s %9.3f s (process %.3f s)\n", "first result, cold cache", cold_in, cold_wall);
    printf("%-44s %9.3f s (process %.3f s)\n", "first result, warm cache", warm_in, warm_wall);
    return 0;
}
