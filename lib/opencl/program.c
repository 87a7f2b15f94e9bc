/* Programs, kernels and launches. Each dtype has one program (all the kernels of
 * kernels/{elementwise,reduce,index,gemm}.cl, T set by -DTG_DT) and each converting
 * (out, in) pair a small copy program, built on first use.
 *
 * The program-binary cache: $XDG_CACHE_HOME/tapegrad (else ~/.cache/tapegrad), one
 * file per program named by the FNV-1a 64 hash of platform, device, driver version,
 * sources and build options. A file holds a header (magic, key, payload size, payload
 * hash) and the driver's binary. An entry is used only if the header matches and the
 * driver builds the binary; anything else is rebuilt from source and overwritten.
 * Files are written to a temporary name and renamed, so a reader never sees half a
 * file. TG_CL_CACHE=0 disables the cache. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

extern const char tg_cl_src_common[], tg_cl_src_elementwise[], tg_cl_src_reduce[], tg_cl_src_index[],
    tg_cl_src_gemm[], tg_cl_src_copy[];

static const char *const kernel_names[] = {
    "tg_fill", "tg_copy", "tg_unary", "tg_binary", "tg_compare", "tg_where", "tg_arange", "tg_random",
    "tg_sum_serial", "tg_sum_wg", "tg_sum_final", "tg_mm_serial", "tg_mm_wg", "tg_mm_final",
    "tg_arg_serial", "tg_arg_wg", "tg_lsm_serial", "tg_lsm_wg", "tg_gather", "tg_scatter_lines",
    "tg_scatter_atomic", "tg_gemm",
};
_Static_assert(sizeof kernel_names / sizeof kernel_names[0] == TG_K_COUNT, "one name per tg_cl_kernel_id");

static _Atomic int g_loaded, g_built, g_rejected, g_written;

#define CACHE_MAGIC "TGCLBIN1"
#define HEADER_SIZE 32
#define MAX_BINARY ((uint64_t)1 << 30)

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }

static uint64_t program_key(const tg_cl_device *d, int nsrc, const char *const *srcs, const char *opts) {
    uint64_t h = fnv_str(0xcbf29ce484222325ull, "tapegrad-cl-cache-1");
    h = fnv_str(h, d->platform_name);
    h = fnv_str(h, d->name);
    h = fnv_str(h, d->driver);
    for (int i = 0; i < nsrc; i++) h = fnv_str(h, srcs[i]);
    return fnv_str(h, opts);
}

/* ---------------------------------------------------------------- the disk cache */

/* Writes the cache directory into buf (creating it); false if there is none. */
static bool cache_dir(char *buf, size_t size) {
    const char *off = getenv("TG_CL_CACHE");
    if (off && strcmp(off, "0") == 0) return false;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(buf, size, "%s/tapegrad", xdg);
    else if (home && *home) n = snprintf(buf, size, "%s/.cache/tapegrad", home);
    else return false;
    if (n < 0 || (size_t)n >= size) return false;
    for (char *p = buf + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The payload of a well-formed entry for key (malloc'ed), or NULL. */
static unsigned char *cache_read(const char *path, uint64_t key, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char hdr[HEADER_SIZE], *data = NULL;
    uint64_t n = 0;
    bool ok = fread(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE && memcmp(hdr, CACHE_MAGIC, 8) == 0 &&
              get_u64(hdr + 8) == key && (n = get_u64(hdr + 16)) > 0 && n <= MAX_BINARY &&
              (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == n && fgetc(f) == EOF &&
              fnv1a(0xcbf29ce484222325ull, data, (size_t)n) == get_u64(hdr + 24);
    fclose(f);
    if (!ok) { /* present but short, foreign or damaged */
        free(data);
        g_rejected++;
        return NULL;
    }
    *len = (size_t)n;
    return data;
}

static void cache_write(const char *path, uint64_t key, const unsigned char *data, size_t len) {
    static _Atomic unsigned serial;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), serial++);
    unsigned char hdr[HEADER_SIZE];
    memcpy(hdr, CACHE_MAGIC, 8);
    put_u64(hdr + 8, key);
    put_u64(hdr + 16, len);
    put_u64(hdr + 24, fnv1a(0xcbf29ce484222325ull, data, len));
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    bool ok = fwrite(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE && fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) g_written++;
    else remove(tmp);
}

/* Stores the built program's binary. Some drivers (PoCL) compile every kernel of the
 * program to produce it: a cold start pays for all kernels at once, a warm one none. */
static void cache_store(cl_program p, const char *path, uint64_t key) {
    size_t len = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || !len) return;
    unsigned char *bin = malloc(len);
    if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
        cache_write(path, key, bin, len);
    free(bin);
}

/* ---------------------------------------------------------------- building */

static tg_status build_failed(tg_cl_device *d, cl_program p, const char *what, cl_int e) {
    size_t n = 0;
    char log[720] = "";
    if (clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS && n) {
        char *full = malloc(n + 1);
        if (full && clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, n, full, NULL) == CL_SUCCESS) {
            full[n] = '\0';
            snprintf(log, sizeof log, "%s", full);
        }
        free(full);
    }
    return tg_error(TG_ERR_BACKEND, "%s (%s): building OpenCL program %s failed (%s); build log:\n%s", d->id,
                    d->name, what, tg_cl_errname(e), log[0] ? log : "(empty)");
}

/* Loads the program from the cache or builds it from source; NULL with a message. */
static cl_program build(tg_cl_device *d, int nsrc, const char *const *srcs, const char *opts, const char *what) {
    char dir[4096], path[4200];
    uint64_t key = program_key(d, nsrc, srcs, opts);
    bool cached = cache_dir(dir, sizeof dir);
    cl_int e = CL_SUCCESS, bst;
    if (cached) {
        snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
        size_t len = 0;
        unsigned char *bin = cache_read(path, key, &len);
        if (bin) {
            const unsigned char *bins[1] = { bin };
            cl_program p = clCreateProgramWithBinary(d->ctx, 1, &d->device, &len, bins, &bst, &e);
            free(bin);
            if (p && e == CL_SUCCESS && bst == CL_SUCCESS &&
                clBuildProgram(p, 1, &d->device, opts, NULL, NULL) == CL_SUCCESS) {
                g_loaded++;
                return p;
            }
            if (p) clReleaseProgram(p);
            g_rejected++;
        }
    }
    cl_program p = clCreateProgramWithSource(d->ctx, (cl_uint)nsrc, (const char **)srcs, NULL, &e);
    if (!p) {
        tg_cl_fail(d, "clCreateProgramWithSource", e);
        return NULL;
    }
    e = clBuildProgram(p, 1, &d->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        build_failed(d, p, what, e);
        clReleaseProgram(p);
        return NULL;
    }
    g_built++;
    if (cached) cache_store(p, path, key);
    return p;
}

static void options(const tg_cl_device *d, char *buf, size_t size, tg_dtype dt, int dt_in) {
    int major = 1, minor = 0; /* "OpenCL C 1.2 ..." */
    sscanf(d->c_version, "OpenCL C %d.%d", &major, &minor);
    bool cl12 = major > 1 || (major == 1 && minor >= 2);
    int n = snprintf(buf, size, "%s-DTG_DT=%d -DTG_WG=%d -DTG_GL=%d", cl12 ? "-cl-std=CL1.2 " : "", (int)dt, d->wg,
                     d->gemm_l);
    if (dt_in >= 0) n += snprintf(buf + n, size - (size_t)n, " -DTG_DT_IN=%d", dt_in);
    if (d->fp64)
        n += snprintf(buf + n, size - (size_t)n, " -DTG_FP64%s", d->int64_atomics ? " -DTG_INT64_ATOMICS" : "");
    if (d->correct_div_sqrt) snprintf(buf + n, size - (size_t)n, " -cl-fp32-correctly-rounded-divide-sqrt");
}

cl_kernel tg_cl_kernel(tg_cl_device *d, tg_dtype dt, tg_cl_kernel_id k) {
    if (dt == TG_F64 && !d->fp64) {
        tg_cl_no_fp64(d, kernel_names[k]);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    cl_kernel kern = d->kern[dt][k];
    if (kern) goto out;
    if (!d->prog[dt]) {
        static const char *const names[] = { "f32", "f64", "i32", "u8" };
        const char *srcs[] = { tg_cl_src_common, tg_cl_src_elementwise, tg_cl_src_reduce, tg_cl_src_index,
                               tg_cl_src_gemm };
        char opts[256], what[32];
        options(d, opts, sizeof opts, dt, -1);
        snprintf(what, sizeof what, "\"%s kernels\"", names[dt]);
        d->prog[dt] = build(d, 5, srcs, opts, what);
        if (!d->prog[dt]) goto out;
    }
    cl_int e;
    kern = d->kern[dt][k] = clCreateKernel(d->prog[dt], kernel_names[k], &e);
    if (!kern) {
        char what[64];
        snprintf(what, sizeof what, "clCreateKernel(%s)", kernel_names[k]);
        tg_cl_fail(d, what, e);
    }
out:
    pthread_mutex_unlock(&d->lock);
    return kern;
}

cl_kernel tg_cl_copy_kernel(tg_cl_device *d, tg_dtype out, tg_dtype in) {
    if ((out == TG_F64 || in == TG_F64) && !d->fp64) {
        tg_cl_no_fp64(d, "tg_convert");
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    cl_kernel kern = d->copy_kern[out][in];
    if (kern) goto out;
    if (!d->copy_prog[out][in]) {
        const char *srcs[] = { tg_cl_src_common, tg_cl_src_copy };
        char opts[256], what[32];
        options(d, opts, sizeof opts, out, (int)in);
        snprintf(what, sizeof what, "\"copy %s <- %s\"", tg_dtype_name(out), tg_dtype_name(in));
        d->copy_prog[out][in] = build(d, 2, srcs, opts, what);
        if (!d->copy_prog[out][in]) goto out;
    }
    cl_int e;
    kern = d->copy_kern[out][in] = clCreateKernel(d->copy_prog[out][in], "tg_convert", &e);
    if (!kern) tg_cl_fail(d, "clCreateKernel(tg_convert)", e);
out:
    pthread_mutex_unlock(&d->lock);
    return kern;
}

void tg_cl_release_programs(tg_cl_device *d) {
    pthread_mutex_lock(&d->lock);
    if (d->queue) clFinish(d->queue);
    for (int t = 0; t < TG_NUM_DTYPES; t++) {
        for (int k = 0; k < TG_K_COUNT; k++)
            if (d->kern[t][k]) clReleaseKernel(d->kern[t][k]);
        if (d->prog[t]) clReleaseProgram(d->prog[t]);
        for (int u = 0; u < TG_NUM_DTYPES; u++) {
            if (d->copy_kern[t][u]) clReleaseKernel(d->copy_kern[t][u]);
            if (d->copy_prog[t][u]) clReleaseProgram(d->copy_prog[t][u]);
        }
    }
    memset(d->kern, 0, sizeof d->kern);
    memset(d->prog, 0, sizeof d->prog);
    memset(d->copy_kern, 0, sizeof d->copy_kern);
    memset(d->copy_prog, 0, sizeof d->copy_prog);
    pthread_mutex_unlock(&d->lock);
}

/* ---------------------------------------------------------------- launches */

/* Sets the arguments and enqueues; the CL status, with the failing call named in buf. */
static cl_int enqueue(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs, int dims,
                      const size_t *global, const size_t *local, char *buf, size_t size) {
    cl_int e = CL_SUCCESS;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < nargs && e == CL_SUCCESS; i++) {
        e = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (e != CL_SUCCESS) snprintf(buf, size, "clSetKernelArg(%s, %d)", what, i);
    }
    if (e == CL_SUCCESS) {
        e = clEnqueueNDRangeKernel(d->queue, k, (cl_uint)dims, NULL, global, local, 0, NULL, NULL);
        if (e != CL_SUCCESS) snprintf(buf, size, "clEnqueueNDRangeKernel(%s)", what);
    }
    pthread_mutex_unlock(&d->lock);
    return e;
}

tg_status tg_cl_launch(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                       int dims, const size_t *global, const size_t *local) {
    char buf[96];
    cl_int e = enqueue(d, k, what, args, nargs, dims, global, local, buf, sizeof buf);
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, buf, e);
}

tg_status tg_cl_launch_1d(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                          int64_t n) {
    if (n <= 0) return TG_OK;
    char buf[96];
    size_t local = (size_t)d->wg, global = ((size_t)n + local - 1) / local * local;
    cl_int e = enqueue(d, k, what, args, nargs, 1, &global, &local, buf, sizeof buf);
    if (e == CL_INVALID_WORK_GROUP_SIZE) { /* a kernel the driver limits below wg: its choice */
        global = (size_t)n;
        e = enqueue(d, k, what, args, nargs, 1, &global, NULL, buf, sizeof buf);
    }
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, buf, e);
}

/* ---------------------------------------------------------------- geometry */

void tg_cl_geom_init(tg_cl_geom *g, int ndim, const int64_t *shape, int nops, const tg_tensor *const *ts) {
    memset(g, 0, sizeof *g);
    g->numel = tg_shape_numel(ndim, shape);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 1) continue;
        int d = g->nd;
        bool merge = d > 0;
        for (int k = 0; k < nops && merge; k++) merge = g->st[k].s[d - 1] == ts[k]->strides[i] * shape[i];
        if (merge) {
            g->shape.s[d - 1] *= shape[i];
            for (int k = 0; k < nops; k++) g->st[k].s[d - 1] = ts[k]->strides[i];
            continue;
        }
        g->shape.s[d] = shape[i];
        for (int k = 0; k < nops; k++) g->st[k].s[d] = ts[k]->strides[i];
        g->nd++;
    }
    if (g->nd == 0) { /* one element */
        g->nd = 1;
        g->shape.s[0] = 1;
    }
}

/* ---------------------------------------------------------------- test hooks */

void tg_opencl_cache_stats(tg_cl_cache_stats *out) {
    out->loaded = g_loaded;
    out->built = g_built;
    out->rejected = g_rejected;
    out->written = g_written;
}

tg_status tg_opencl_build_for_test(tg_device *dev, const char *src, const char *opts) {
    tg_cl_device *d = dev->impl;
    cl_program p = build(d, 1, &src, opts ? opts : "", "\"test\"");
    if (!p) return tg_last_status();
    clReleaseProgram(p);
    return TG_OK;
}

tg_status tg_opencl_set_fp64_for_test(tg_device *dev, bool enabled) {
    tg_cl_device *d = dev->impl;
    if (enabled && !d->fp64_hw) return tg_cl_no_fp64(d, "tg_opencl_set_fp64_for_test");
    if (d->fp64 != enabled) {
        tg_cl_release_programs(d);
        d->fp64 = enabled;
        dev->lacks_fp64 = !enabled;
    }
    return TG_OK;
}

int tg_cl_force_gemm, tg_cl_force_scatter, tg_cl_force_reduce;

void tg_opencl_force_paths_for_test(int gemm, int scatter, int reduce) {
    tg_cl_force_gemm = gemm;
    tg_cl_force_scatter = scatter;
    tg_cl_force_reduce = reduce;
}

tg_status tg_opencl_cache_forge_for_test(const char *path, const void *payload, size_t len) {
    FILE *f = fopen(path, "rb");
    unsigned char hdr[HEADER_SIZE];
    bool ok = f && fread(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE && memcmp(hdr, CACHE_MAGIC, 8) == 0;
    if (f) fclose(f);
    if (!ok) return tg_error(TG_ERR_IO, "tg_opencl_cache_forge_for_test: %s is not a cache entry", path);
    int before = g_written;
    cache_write(path, get_u64(hdr + 8), payload, len);
    return g_written > before ? TG_OK : tg_error(TG_ERR_IO, "tg_opencl_cache_forge_for_test: cannot write %s", path);
}
