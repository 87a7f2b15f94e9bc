/* Each OpenCL device's own limits, measured with OpenCL kernels of our own on a context of
 * our own (the device with index N among all platforms' devices is tapegrad's opencl:N):
 * an FMA peak (independent mad chains in registers, float4) and a copy bandwidth
 * (64 MiB each way); and CLBlast's SGEMM called directly, the GEMM peer. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#ifdef TG_BENCH_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#ifdef TG_BENCH_CLBLAST
#include <clblast_c.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 16 float4 chains of 64 mads a loop turn: 16 * 4 * 64 * 2 FLOPs per turn and work-item. */
static const char *probe_src =
    "__kernel void fma_probe(__global float *out, int turns, float m, float a) {\n"
    "  float4 c[16];\n"
    "  for (int i = 0; i < 16; i++) c[i] = (float4)(get_global_id(0) + i);\n"
    "  for (int t = 0; t < turns; t++) {\n"
    "    for (int r = 0; r < 64; r++) {\n"
    "      #pragma unroll\n"
    "      for (int i = 0; i < 16; i++) c[i] = mad(c[i], (float4)m, (float4)a);\n"
    "    }\n"
    "  }\n"
    "  float4 s = (float4)0;\n"
    "  for (int i = 0; i < 16; i++) s += c[i];\n"
    "  out[get_global_id(0)] = s.x + s.y + s.z + s.w;\n"
    "}\n"
    "__kernel void copy_probe(__global const float4 *src, __global float4 *dst) {\n"
    "  dst[get_global_id(0)] = src[get_global_id(0)];\n"
    "}\n";

typedef struct {
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue q;
} cl_env;

/* The index-th device over all platforms, with a context and an in-order queue. */
static bool cl_env_open(int index, cl_env *e) {
    memset(e, 0, sizeof *e);
    cl_uint np = 0;
    cl_platform_id ps[16];
    if (clGetPlatformIDs(16, ps, &np) != CL_SUCCESS) return false;
    if (np > 16) np = 16;
    for (cl_uint p = 0, seen = 0; p < np && !e->dev; p++) {
        cl_uint nd = 0;
        cl_device_id ids[64];
        if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 64, ids, &nd) != CL_SUCCESS) continue;
        for (cl_uint i = 0; i < nd && i < 64; i++, seen++)
            if ((int)seen == index) e->dev = ids[i];
    }
    if (!e->dev) return false;
    cl_int err;
    e->ctx = clCreateContext(NULL, 1, &e->dev, NULL, NULL, &err);
    if (err != CL_SUCCESS) return false;
    e->q = clCreateCommandQueue(e->ctx, e->dev, 0, &err);
    return err == CL_SUCCESS;
}

static void cl_env_close(cl_env *e) {
    if (e->q) clReleaseCommandQueue(e->q);
    if (e->ctx) clReleaseContext(e->ctx);
}

static int device_index(const tg_device_info *info) {
    return strncmp(info->id, "opencl:", 7) ? -1 : atoi(info->id + 7);
}

/* Best seconds of reps runs of kernel k over global work items (local size left to the driver). */
static double best_run(cl_env *e, cl_kernel k, size_t global, int reps) {
    double best = 1e30;
    for (int r = -1; r < reps; r++) {
        clFinish(e->q);
        double t0 = now_s();
        if (clEnqueueNDRangeKernel(e->q, k, 1, NULL, &global, NULL, 0, NULL, NULL) != CL_SUCCESS) return -1;
        clFinish(e->q);
        double t = now_s() - t0;
        if (r >= 0 && t < best) best = t;
    }
    return best;
}

static bool probe_fma(cl_env *e, cl_program prog, cl_uint cus, double *gflops) {
    cl_int err;
    cl_kernel k = clCreateKernel(prog, "fma_probe", &err);
    size_t global = (size_t)cus * 1024;
    cl_mem out = clCreateBuffer(e->ctx, CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &err);
    int turns = 8;
    float m = 0.999999f, a = 1e-6f;
    clSetKernelArg(k, 0, sizeof out, &out), clSetKernelArg(k, 2, sizeof m, &m), clSetKernelArg(k, 3, sizeof a, &a);
    double t = 0;
    /* Grow the loop until a run takes 50 ms, so launch costs vanish. */
    for (; turns < (1 << 20); turns *= 2) {
        clSetKernelArg(k, 1, sizeof turns, &turns);
        t = best_run(e, k, global, 2);
        if (t < 0 || t > 0.05) break;
    }
    clReleaseMemObject(out);
    clReleaseKernel(k);
    if (t <= 0) return false;
    *gflops = (double)global * turns * 64.0 * 16 * 4 * 2 / t * 1e-9;
    return true;
}

static bool probe_copy(cl_env *e, cl_program prog, double *gbs) {
    cl_int err;
    const size_t count = (size_t)4 << 20, bytes = count * 16; /* 4M float4: 64 MiB each way */
    cl_kernel k = clCreateKernel(prog, "copy_probe", &err);
    cl_mem src = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem dst = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    double t = -1;
    if (src && dst) {
        float zero = 0;
        clEnqueueFillBuffer(e->q, src, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
        clSetKernelArg(k, 0, sizeof src, &src), clSetKernelArg(k, 1, sizeof dst, &dst);
        t = best_run(e, k, count, 5);
    }
    if (src) clReleaseMemObject(src);
    if (dst) clReleaseMemObject(dst);
    clReleaseKernel(k);
    if (t <= 0) return false;
    *gbs = 2.0 * (double)bytes / t * 1e-9;
    return true;
}

bool bench_opencl_limits(const tg_device_info *info, bench_limits *out, char *note, size_t note_size) {
    cl_env e;
    memset(out, 0, sizeof *out);
    snprintf(out->target, sizeof out->target, "%s", info->id);
    snprintf(out->name, sizeof out->name, "%s", info->name);
    if (!cl_env_open(device_index(info), &e)) {
        snprintf(note, note_size, "cannot open %s through OpenCL", info->id);
        cl_env_close(&e);
        return false;
    }
    cl_int err;
    cl_program prog = clCreateProgramWithSource(e.ctx, 1, &probe_src, NULL, &err);
    bool ok = err == CL_SUCCESS && clBuildProgram(prog, 1, &e.dev, "-cl-mad-enable", NULL, NULL) == CL_SUCCESS;
    cl_uint cus = 1;
    clGetDeviceInfo(e.dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    ok = ok && probe_fma(&e, prog, cus, &out->peak_gflops) && probe_copy(&e, prog, &out->bw_gbs);
    snprintf(out->how, sizeof out->how, "OpenCL float4 mad and copy kernels, %u compute units", cus);
    if (!ok) snprintf(note, note_size, "the OpenCL probe kernels failed on %s", info->id);
    if (prog) clReleaseProgram(prog);
    cl_env_close(&e);
    return ok;
}

#ifdef TG_BENCH_CLBLAST
bool bench_clblast_gemm(const tg_device_info *info, int n, const bench_timing *t, bench_result *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->workload, sizeof out->workload, "gemm %d", n);
    snprintf(out->group, sizeof out->group, "gemm");
    snprintf(out->target, sizeof out->target, "clblast:%s", info->id);
    out->work.flops = 2.0 * n * n * (double)n;
    cl_env e;
    if (!cl_env_open(device_index(info), &e)) {
        cl_env_close(&e);
        return false;
    }
    size_t bytes = (size_t)n * n * sizeof(float);
    cl_int err;
    cl_mem a = clCreateBuffer(e.ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem b = clCreateBuffer(e.ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem c = clCreateBuffer(e.ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    float one = 1;
    clEnqueueFillBuffer(e.q, a, &one, sizeof one, 0, bytes, 0, NULL, NULL);
    clEnqueueFillBuffer(e.q, b, &one, sizeof one, 0, bytes, 0, NULL, NULL);
    double samples[BENCH_MAX_SAMPLES], spent = 0;
    int got = 0;
    for (int r = -1; r < t->max_reps && (got < t->min_reps || spent < t->budget_s); r++) {
        clFinish(e.q);
        double t0 = now_s();
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)n,
                                           (size_t)n, (size_t)n, 1.0f, a, 0, (size_t)n, b, 0, (size_t)n, 0.0f, c, 0,
                                           (size_t)n, &e.q, NULL);
        clFinish(e.q);
        double dt = now_s() - t0;
        if (s != CLBlastSuccess) {
            snprintf(out->note, sizeof out->note, "failed: CLBlastSgemm returned %d", (int)s);
            got = 0;
            break;
        }
        if (r >= 0) samples[got++] = dt, spent += dt;
    }
    clReleaseMemObject(a), clReleaseMemObject(b), clReleaseMemObject(c);
    cl_env_close(&e);
    if (!got) return false;
    /* sort for the median */
    for (int i = 1; i < got; i++)
        for (int j = i; j > 0 && samples[j] < samples[j - 1]; j--) {
            double x = samples[j];
            samples[j] = samples[j - 1], samples[j - 1] = x;
        }
    out->n = got;
    out->median = got % 2 ? samples[got / 2] : 0.5 * (samples[got / 2 - 1] + samples[got / 2]);
    out->min = samples[0], out->max = samples[got - 1];
    return true;
}
#else
bool bench_clblast_gemm(const tg_device_info *info, int n, const bench_timing *t, bench_result *out) {
    (void)info, (void)n, (void)t, (void)out;
    return false;
}
#endif

#else /* no OpenCL */
bool bench_opencl_limits(const tg_device_info *info, bench_limits *out, char *note, size_t note_size) {
    (void)info, (void)out;
    snprintf(note, note_size, "built without OpenCL");
    return false;
}
bool bench_clblast_gemm(const tg_device_info *info, int n, const bench_timing *t, bench_result *out) {
    (void)info, (void)n, (void)t, (void)out;
    return false;
}
#endif
