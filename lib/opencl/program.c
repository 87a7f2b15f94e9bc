/* Programs, kernels and launches. Every kernel is its own program, built on first use
 * for one dtype and one variant (its op, kind or second dtype): a run compiles only the
 * kernels it launches, and a unary program only the math of its op.
 *
 * The program-binary cache: $XDG_CACHE_HOME/tapegrad (else ~/.cache/tapegrad), one
 * file per program named by the FNV-1a 64 hash of platform, device, driver version,
 * sources and build options. A file holds a header (magic, key, payload size, FNV-1a
 * 64 of the payload) and the driver's binary. An entry is used only if the header
 * matches, the file is exactly header plus payload, the payload hash matches and the
 * driver creates, builds and finds the kernel in the binary; anything else is rebuilt
 * from source and the entry rewritten. Entries are written to a temporary file in the
 * same directory, flushed to disk (fsync) and renamed over the old name, so a reader
 * sees the old entry or the new one, and a torn write cannot carry a matching hash.
 * TG_CL_CACHE=0 disables the cache. */
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
    tg_cl_src_gemm[], tg_cl_src_copy[], tg_cl_src_conv[], tg_cl_src_pool[], tg_cl_src_norm[],
    tg_cl_src_roi[];

/* What a kernel's variant means: nothing, a compile-time op (-DTG_OP), or a second
 * dtype (-DTG_DT_IN, -DTG_DT_OUT, -DTG_IDX). */
typedef enum { V_NONE, V_OP, V_DT_IN, V_DT_OUT, V_IDX } variant_kind;

static const struct {
    const char *name;
    const char *const *src;
    variant_kind variant;
} kernels[] = {
    { "tg_fill", (const char *const[]){ tg_cl_src_elementwise }, V_NONE },
    { "tg_copy", (const char *const[]){ tg_cl_src_elementwise }, V_NONE },
    { "tg_unary", (const char *const[]){ tg_cl_src_elementwise }, V_OP },
    { "tg_binary", (const char *const[]){ tg_cl_src_elementwise }, V_OP },
    { "tg_compare", (const char *const[]){ tg_cl_src_elementwise }, V_OP },
    { "tg_where", (const char *const[]){ tg_cl_src_elementwise }, V_NONE },
    { "tg_arange", (const char *const[]){ tg_cl_src_elementwise }, V_NONE },
    { "tg_random", (const char *const[]){ tg_cl_src_elementwise }, V_OP },
    { "tg_sum_serial", (const char *const[]){ tg_cl_src_reduce }, V_DT_OUT },
    { "tg_sum_wg", (const char *const[]){ tg_cl_src_reduce }, V_DT_OUT },
    { "tg_sum_final", (const char *const[]){ tg_cl_src_reduce }, V_DT_OUT },
    { "tg_mm_serial", (const char *const[]){ tg_cl_src_reduce }, V_NONE },
    { "tg_mm_wg", (const char *const[]){ tg_cl_src_reduce }, V_NONE },
    { "tg_mm_final", (const char *const[]){ tg_cl_src_reduce }, V_NONE },
    { "tg_arg_serial", (const char *const[]){ tg_cl_src_reduce }, V_DT_OUT },
    { "tg_arg_wg", (const char *const[]){ tg_cl_src_reduce }, V_DT_OUT },
    { "tg_lsm_serial", (const char *const[]){ tg_cl_src_reduce }, V_NONE },
    { "tg_lsm_wg", (const char *const[]){ tg_cl_src_reduce }, V_NONE },
    { "tg_gather", (const char *const[]){ tg_cl_src_index }, V_IDX },
    { "tg_scatter_lines", (const char *const[]){ tg_cl_src_index }, V_IDX },
    { "tg_scatter_atomic", (const char *const[]){ tg_cl_src_index }, V_IDX },
    { "tg_gemm", (const char *const[]){ tg_cl_src_gemm }, V_NONE },
    { "tg_convert", (const char *const[]){ tg_cl_src_copy }, V_DT_IN },
    { "tg_conv_fwd", (const char *const[]){ tg_cl_src_conv }, V_NONE },
    { "tg_conv_bwd_data", (const char *const[]){ tg_cl_src_conv }, V_NONE },
    { "tg_conv_bwd_weight", (const char *const[]){ tg_cl_src_conv }, V_NONE },
    { "tg_conv_sum_splits", (const char *const[]){ tg_cl_src_conv }, V_NONE },
    { "tg_pool_max", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_pool_avg", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_pool_bwd_max", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_pool_bwd_max_planes", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_pool_bwd_avg", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_unpool_win", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_unpool_out", (const char *const[]){ tg_cl_src_pool }, V_NONE },
    { "tg_norm_stats", (const char *const[]){ tg_cl_src_norm }, V_NONE },
    { "tg_norm_apply", (const char *const[]){ tg_cl_src_norm }, V_NONE },
    { "tg_norm_bsums", (const char *const[]){ tg_cl_src_norm }, V_NONE },
    { "tg_norm_dwb", (const char *const[]){ tg_cl_src_norm }, V_NONE },
    { "tg_norm_dx", (const char *const[]){ tg_cl_src_norm }, V_NONE },
    { "tg_roi_pool", (const char *const[]){ tg_cl_src_roi }, V_NONE },
    { "tg_roi_pool_bwd", (const char *const[]){ tg_cl_src_roi }, V_NONE },
    { "tg_roi_align", (const char *const[]){ tg_cl_src_roi }, V_NONE },
    { "tg_roi_align_bwd", (const char *const[]){ tg_cl_src_roi }, V_NONE },
    { "tg_axpy", (const char *const[]){ tg_cl_src_elementwise }, V_NONE },
};
_Static_assert(sizeof kernels / sizeof kernels[0] == TG_K_COUNT, "one entry per tg_cl_kernel_id");
_Static_assert(TG_CL_NVARIANTS >= TG_UN_COUNT && TG_CL_NVARIANTS >= TG_BIN_COUNT &&
                   TG_CL_NVARIANTS >= TG_NUM_DTYPES,
               "a variant indexes ops and dtypes");

static _Atomic int g_loaded, g_built, g_rejected, g_written;
static atomic_flag g_told = ATOMIC_FLAG_INIT;

#define CACHE_MAGIC "TGCLBIN2"
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
    uint64_t h = fnv_str(0xcbf29ce484222325ull, "tapegrad-cl-cache-2");
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

/* The payload of a well-formed entry for key (malloc'ed), or NULL: absent, or present
 * but short, long, foreign or damaged (counted as rejected). The size field is checked
 * against the file's size before anything is allocated. */
static unsigned char *cache_read(const char *path, uint64_t key, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char hdr[HEADER_SIZE], *data = NULL;
    uint64_t n = 0;
    struct stat sb;
    bool ok = fstat(fileno(f), &sb) == 0 && fread(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE &&
              memcmp(hdr, CACHE_MAGIC, 8) == 0 && get_u64(hdr + 8) == key && (n = get_u64(hdr + 16)) > 0 &&
              n <= MAX_BINARY && (uint64_t)sb.st_size == HEADER_SIZE + n && (data = malloc((size_t)n)) &&
              fread(data, 1, (size_t)n, f) == n && fgetc(f) == EOF &&
              fnv1a(0xcbf29ce484222325ull, data, (size_t)n) == get_u64(hdr + 24);
    fclose(f);
    if (!ok) {
        free(data);
        g_rejected++;
        return NULL;
    }
    *len = (size_t)n;
    return data;
}

/* Writes all n bytes or fails. */
static bool write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* An entry for key with the given payload, atomically: a temporary file next to path,
 * fsync'ed, renamed over path. On any failure path is left as it was. */
static bool cache_write(const char *path, uint64_t key, const unsigned char *data, size_t len) {
    static _Atomic unsigned serial;
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), serial++);
    if (n < 0 || (size_t)n >= sizeof tmp) return false;
    unsigned char hdr[HEADER_SIZE];
    memcpy(hdr, CACHE_MAGIC, 8);
    put_u64(hdr + 8, key);
    put_u64(hdr + 16, len);
    put_u64(hdr + 24, fnv1a(0xcbf29ce484222325ull, data, len));
    FILE *f = fopen(tmp, "wb");
    if (!f) return false;
    int fd = fileno(f);
    bool ok = write_all(fd, hdr, HEADER_SIZE) && write_all(fd, data, len) && fsync(fd) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        g_written++;
        return true;
    }
    remove(tmp);
    return false;
}

/* Stores the built program's binary. Some drivers (PoCL) compile the program's kernels
 * to produce it, which is why each program holds one kernel. */
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

/* The program from a cache entry, if the entry is sound and the driver builds it (and,
 * with kernel, finds that kernel in it); else NULL, the entry counted as rejected. */
static cl_program load_cached(tg_cl_device *d, const char *path, uint64_t key, const char *opts,
                              const char *kernel) {
    size_t len = 0;
    unsigned char *bin = cache_read(path, key, &len);
    if (!bin) return NULL;
    const unsigned char *bins[1] = { bin };
    cl_int e = CL_SUCCESS, bst = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(d->ctx, 1, &d->device, &len, bins, &bst, &e);
    free(bin);
    bool ok = p && e == CL_SUCCESS && bst == CL_SUCCESS && clBuildProgram(p, 1, &d->device, opts, NULL, NULL) == CL_SUCCESS;
    if (ok && kernel) {
        cl_kernel k = clCreateKernel(p, kernel, &e);
        ok = k != NULL;
        if (k) clReleaseKernel(k);
    }
    if (ok) {
        g_loaded++;
        tg_cl_register_drain(true);
        return p;
    }
    if (p) clReleaseProgram(p);
    g_rejected++;
    return NULL;
}

/* Once a process: a cold compile can take seconds on some drivers, so say why. */
static void tell_compiling(const tg_cl_device *d, bool cached) {
    if (atomic_flag_test_and_set(&g_told)) return;
    fprintf(stderr, "tapegrad: compiling OpenCL kernels for %s (%s) on first use%s\n", d->id, d->name,
            cached ? " (cached for later runs)" : " (TG_CL_CACHE=0: not cached)");
}

/* Loads the program from the cache or builds it from source; NULL with a message. */
static cl_program build(tg_cl_device *d, int nsrc, const char *const *srcs, const char *opts, const char *what,
                        const char *kernel) {
    char dir[4096], path[4200];
    uint64_t key = program_key(d, nsrc, srcs, opts);
    bool cached = cache_dir(dir, sizeof dir);
    if (cached) {
        snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
        cl_program p = load_cached(d, path, key, opts, kernel);
        if (p) return p;
    }
    tell_compiling(d, cached);
    cl_int e = CL_SUCCESS;
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
    tg_cl_register_drain(true);
    return p;
}

static void options(const tg_cl_device *d, char *buf, size_t size, tg_cl_kernel_id k, tg_dtype dt, int v) {
    static const char *const vnames[] = { NULL, "TG_OP", "TG_DT_IN", "TG_DT_OUT", "TG_IDX" };
    int major = 1, minor = 0; /* "OpenCL C 1.2 ..." */
    sscanf(d->c_version, "OpenCL C %d.%d", &major, &minor);
    bool cl12 = major > 1 || (major == 1 && minor >= 2);
    int n = snprintf(buf, size, "%s-DK_%s -DTG_DT=%d -DTG_WG=%d -DTG_GL=%d", cl12 ? "-cl-std=CL1.2 " : "",
                     kernels[k].name, (int)dt, d->wg, d->gemm_l);
    if (kernels[k].variant != V_NONE) n += snprintf(buf + n, size - (size_t)n, " -D%s=%d", vnames[kernels[k].variant], v);
    if (d->fp64)
        n += snprintf(buf + n, size - (size_t)n, " -DTG_FP64%s", d->int64_atomics ? " -DTG_INT64_ATOMICS" : "");
    if (d->correct_div_sqrt) snprintf(buf + n, size - (size_t)n, " -cl-fp32-correctly-rounded-divide-sqrt");
}

cl_kernel tg_cl_kernel_v(tg_cl_device *d, tg_cl_kernel_id k, tg_dtype dt, int v) {
    variant_kind vk = kernels[k].variant;
    bool v_dtype = vk == V_DT_IN || vk == V_DT_OUT || vk == V_IDX;
    TG_ASSERT(dt >= 0 && dt < TG_NUM_DTYPES && v >= 0 && v < TG_CL_NVARIANTS && (vk != V_NONE || v == 0));
    if ((dt == TG_F64 || (v_dtype && v == TG_F64)) && !d->fp64) {
        tg_cl_no_fp64(d, kernels[k].name);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    cl_kernel kern = d->kern[k][dt][v];
    if (kern) goto out;
    if (!d->prog[k][dt][v]) {
        const char *srcs[] = { tg_cl_src_common, kernels[k].src[0] };
        char opts[320], what[64];
        options(d, opts, sizeof opts, k, dt, v);
        if (v_dtype) snprintf(what, sizeof what, "\"%s %s/%s\"", kernels[k].name, tg_dtype_name(dt), tg_dtype_name((tg_dtype)v));
        else snprintf(what, sizeof what, "\"%s %s #%d\"", kernels[k].name, tg_dtype_name(dt), v);
        d->prog[k][dt][v] = build(d, 2, srcs, opts, what, kernels[k].name);
        if (!d->prog[k][dt][v]) goto out;
    }
    cl_int e;
    kern = d->kern[k][dt][v] = clCreateKernel(d->prog[k][dt][v], kernels[k].name, &e);
    if (!kern) {
        char what[64];
        snprintf(what, sizeof what, "clCreateKernel(%s)", kernels[k].name);
        tg_cl_fail(d, what, e);
    }
out:
    pthread_mutex_unlock(&d->lock);
    return kern;
}

void tg_cl_release_programs(tg_cl_device *d) {
    pthread_mutex_lock(&d->lock);
    if (d->queue) clFinish(d->queue);
    for (int k = 0; k < TG_K_COUNT; k++)
        for (int t = 0; t < TG_NUM_DTYPES; t++)
            for (int v = 0; v < TG_CL_NVARIANTS; v++) {
                if (d->kern[k][t][v]) clReleaseKernel(d->kern[k][t][v]);
                if (d->prog[k][t][v]) clReleaseProgram(d->prog[k][t][v]);
            }
    memset(d->kern, 0, sizeof d->kern);
    memset(d->prog, 0, sizeof d->prog);
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
        else tg_cl_count_launch(d);
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
    cl_program p = build(d, 1, &src, opts ? opts : "", "\"test\"", NULL);
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
    if (!cache_write(path, get_u64(hdr + 8), payload, len))
        return tg_error(TG_ERR_IO, "tg_opencl_cache_forge_for_test: cannot write %s", path);
    g_written--; /* a forged entry is not one the library wrote */
    return TG_OK;
}
