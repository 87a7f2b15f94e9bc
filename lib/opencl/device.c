/* OpenCL device discovery and lookup: every device of every platform, in platform
 * order, is "opencl:N". A device's context and in-order queue are made on its first
 * tg_device_get and live until exit. Also OpenCL error names. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

tg_device *tg_opencl_device(int index);
int tg_opencl_list(tg_device_info *out, int max);
tg_status tg_opencl_info(const tg_device *dev, tg_device_info *out);

static tg_cl_device *g_devs;
static int g_ndev;
static cl_int g_discover_err; /* why there are no devices */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------------- error names */

const char *tg_cl_errname(cl_int code) {
    static const char *names[] = {
        "CL_SUCCESS", "CL_DEVICE_NOT_FOUND", "CL_DEVICE_NOT_AVAILABLE", "CL_COMPILER_NOT_AVAILABLE",
        "CL_MEM_OBJECT_ALLOCATION_FAILURE", "CL_OUT_OF_RESOURCES", "CL_OUT_OF_HOST_MEMORY",
        "CL_PROFILING_INFO_NOT_AVAILABLE", "CL_MEM_COPY_OVERLAP", "CL_IMAGE_FORMAT_MISMATCH",
        "CL_IMAGE_FORMAT_NOT_SUPPORTED", "CL_BUILD_PROGRAM_FAILURE", "CL_MAP_FAILURE",
        "CL_MISALIGNED_SUB_BUFFER_OFFSET", "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
        "CL_COMPILE_PROGRAM_FAILURE", "CL_LINKER_NOT_AVAILABLE", "CL_LINK_PROGRAM_FAILURE",
        "CL_DEVICE_PARTITION_FAILED", "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
    };
    static const char *invalid[] = { /* -30 ... -72 */
        "CL_INVALID_VALUE", "CL_INVALID_DEVICE_TYPE", "CL_INVALID_PLATFORM", "CL_INVALID_DEVICE",
        "CL_INVALID_CONTEXT", "CL_INVALID_QUEUE_PROPERTIES", "CL_INVALID_COMMAND_QUEUE",
        "CL_INVALID_HOST_PTR", "CL_INVALID_MEM_OBJECT", "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
        "CL_INVALID_IMAGE_SIZE", "CL_INVALID_SAMPLER", "CL_INVALID_BINARY", "CL_INVALID_BUILD_OPTIONS",
        "CL_INVALID_PROGRAM", "CL_INVALID_PROGRAM_EXECUTABLE", "CL_INVALID_KERNEL_NAME",
        "CL_INVALID_KERNEL_DEFINITION", "CL_INVALID_KERNEL", "CL_INVALID_ARG_INDEX",
        "CL_INVALID_ARG_VALUE", "CL_INVALID_ARG_SIZE", "CL_INVALID_KERNEL_ARGS",
        "CL_INVALID_WORK_DIMENSION", "CL_INVALID_WORK_GROUP_SIZE", "CL_INVALID_WORK_ITEM_SIZE",
        "CL_INVALID_GLOBAL_OFFSET", "CL_INVALID_EVENT_WAIT_LIST", "CL_INVALID_EVENT",
        "CL_INVALID_OPERATION", "CL_INVALID_GL_OBJECT", "CL_INVALID_BUFFER_SIZE", "CL_INVALID_MIP_LEVEL",
        "CL_INVALID_GLOBAL_WORK_SIZE", "CL_INVALID_PROPERTY", "CL_INVALID_IMAGE_DESCRIPTOR",
        "CL_INVALID_COMPILER_OPTIONS", "CL_INVALID_LINKER_OPTIONS", "CL_INVALID_DEVICE_PARTITION_COUNT",
        "CL_INVALID_PIPE_SIZE", "CL_INVALID_DEVICE_QUEUE", "CL_INVALID_SPEC_ID",
        "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
    };
    static _Thread_local char unknown[32];
    if (code <= 0 && code > -(cl_int)(sizeof names / sizeof names[0])) return names[-code];
    if (code <= -30 && code > -30 - (cl_int)(sizeof invalid / sizeof invalid[0])) return invalid[-30 - code];
    if (code == -1001) return "CL_PLATFORM_NOT_FOUND_KHR";
    snprintf(unknown, sizeof unknown, "CL error %d", (int)code);
    return unknown;
}

tg_status tg_cl_fail(const tg_cl_device *d, const char *what, cl_int code) {
    bool nomem = code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_HOST_MEMORY;
    return tg_error(nomem ? TG_ERR_NOMEM : TG_ERR_BACKEND, "%s (%s): %s failed: %s", d->id, d->name, what,
                    tg_cl_errname(code));
}

tg_status tg_cl_no_fp64(const tg_cl_device *d, const char *op) {
    return tg_error(TG_ERR_DTYPE, "device %s (%s) has no fp64 (cl_khr_fp64): it cannot compute on f64 tensors (%s)",
                    d->id, d->name, op);
}

/* ---------------------------------------------------------------- discovery */

static void info_str(cl_device_id dev, cl_device_info what, char *buf, size_t size) {
    buf[0] = '\0';
    if (clGetDeviceInfo(dev, what, size, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[size - 1] = '\0';
    size_t n = strlen(buf); /* some drivers pad names with spaces */
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
}

static cl_ulong info_ulong(cl_device_id dev, cl_device_info what) {
    cl_ulong v = 0;
    clGetDeviceInfo(dev, what, sizeof v, &v, NULL);
    return v;
}

static void describe(tg_cl_device *d, cl_platform_id p, cl_device_id dev, int index) {
    d->platform = p;
    d->device = dev;
    snprintf(d->id, sizeof d->id, "opencl:%d", index);
    info_str(dev, CL_DEVICE_NAME, d->name, sizeof d->name);
    info_str(dev, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    info_str(dev, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    info_str(dev, CL_DEVICE_OPENCL_C_VERSION, d->c_version, sizeof d->c_version);
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof d->platform_name, d->platform_name, NULL);
    d->platform_name[sizeof d->platform_name - 1] = '\0';
    cl_device_type type = 0;
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    d->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL);
    d->global_mem = info_ulong(dev, CL_DEVICE_GLOBAL_MEM_SIZE);
    d->local_mem = info_ulong(dev, CL_DEVICE_LOCAL_MEM_SIZE);
    d->max_alloc = info_ulong(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
    size_t elen = 0;
    clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &elen);
    char *ext = calloc(1, elen + 1);
    if (ext && clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, elen, ext, NULL) == CL_SUCCESS) {
        d->fp64_hw = strstr(ext, "cl_khr_fp64") != NULL;
        d->int64_atomics = strstr(ext, "cl_khr_int64_base_atomics") != NULL;
    }
    free(ext);
    d->fp64 = d->fp64_hw;
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    d->correct_div_sqrt = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    /* Reductions want a power-of-two group with room for a double per item. */
    d->wg = 256;
    while (d->wg > 1 && ((size_t)d->wg > d->max_wg || (cl_ulong)d->wg * 16 > d->local_mem)) d->wg /= 2;
    d->gemm_l = d->max_wg >= 256 ? 16 : 8;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->index_lock, NULL);
    d->base.name = d->id;
    d->base.be = &tg_cl_backend;
    d->base.impl = d;
    d->base.lacks_fp64 = !d->fp64;
}

static void discover(void) {
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e != CL_SUCCESS || np == 0) {
        g_discover_err = e != CL_SUCCESS ? e : -1001;
        return;
    }
    cl_platform_id *ps = calloc(np, sizeof *ps);
    cl_uint *counts = calloc(np, sizeof *counts);
    if (!ps || !counts || clGetPlatformIDs(np, ps, NULL) != CL_SUCCESS) goto done;
    int total = 0;
    for (cl_uint i = 0; i < np; i++) {
        if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, 0, NULL, &counts[i]) != CL_SUCCESS) counts[i] = 0;
        total += (int)counts[i];
    }
    g_devs = total ? calloc((size_t)total, sizeof *g_devs) : NULL;
    if (!g_devs) goto done;
    for (cl_uint i = 0; i < np; i++) {
        if (!counts[i]) continue;
        cl_device_id *ids = calloc(counts[i], sizeof *ids);
        if (ids && clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, counts[i], ids, NULL) == CL_SUCCESS)
            for (cl_uint j = 0; j < counts[i]; j++, g_ndev++) describe(&g_devs[g_ndev], ps[i], ids[j], g_ndev);
        free(ids);
    }
done:
    if (!g_ndev) g_discover_err = CL_DEVICE_NOT_FOUND;
    free(ps);
    free(counts);
}

/* At exit, before the driver's teardown: a command still queued, or a kernel the driver
 * compiles on a worker thread as it runs it, would otherwise meet freed memory (PoCL
 * makes static objects on its first compiles and registers their destructors then).
 * Exit handlers run in reverse order of registration, so tg_cl_register_drain adds
 * this one again after every build and after a sync that followed one, which puts it
 * ahead of whatever the driver registered meanwhile. The device lock also waits for a
 * build another thread has under way, and the cache writer's queue is written first.
 * Buffers, programs and queues stay: tensors that scopes release at exit still name them. */
static atomic_int g_drain_due;

void tg_cl_register_drain(bool now) {
    if (now || atomic_exchange(&g_drain_due, 0)) atexit(tg_cl_drain_all);
    if (now) atomic_store(&g_drain_due, 1); /* and again after the next sync */
}

void tg_cl_drain_all(void) {
    tg_cl_cache_flush(true); /* the driver compiles for the entries it writes */
    for (int i = 0; i < g_ndev; i++) {
        tg_cl_device *d = &g_devs[i];
        pthread_mutex_lock(&d->lock);
        if (d->ready) clFinish(d->queue);
        pthread_mutex_unlock(&d->lock);
    }
}

static void register_drain(void) { tg_cl_register_drain(true); }

/* The context, the in-order queue and the index-error flag, once. */
static tg_status make_ready(tg_cl_device *d) {
    static pthread_once_t drain_once = PTHREAD_ONCE_INIT;
    cl_int e;
    pthread_once(&drain_once, register_drain);
    pthread_mutex_lock(&d->lock);
    if (d->ready) goto out;
    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform, 0 };
    d->ctx = clCreateContext(props, 1, &d->device, NULL, NULL, &e);
    if (!d->ctx) goto fail;
    d->queue = clCreateCommandQueue(d->ctx, d->device, 0, &e);
    if (!d->queue) goto fail;
    d->bad = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, sizeof(cl_int), NULL, &e);
    if (!d->bad) goto fail;
    d->ready = true;
    pthread_mutex_unlock(&d->lock);
    return TG_OK;
out:
    pthread_mutex_unlock(&d->lock);
    return TG_OK;
fail:
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->ctx) clReleaseContext(d->ctx);
    d->queue = NULL, d->ctx = NULL;
    pthread_mutex_unlock(&d->lock);
    return tg_error(TG_ERR_DEVICE, "tg_device_get: %s (%s): creating its context failed: %s", d->id, d->name,
                    tg_cl_errname(e));
}

tg_device *tg_opencl_device(int index) {
    pthread_once(&g_once, discover);
    if (g_ndev == 0)
        return tg_error_null(TG_ERR_DEVICE, "tg_device_get: no OpenCL device found (%s)",
                             tg_cl_errname(g_discover_err));
    if (index >= g_ndev)
        return tg_error_null(TG_ERR_DEVICE, "tg_device_get: no device opencl:%d (there %s %d OpenCL device%s)", index,
                             g_ndev == 1 ? "is" : "are", g_ndev, g_ndev == 1 ? "" : "s");
    if (index < 0) {
        index = 0;
        for (int i = g_ndev - 1; i >= 0; i--)
            if (g_devs[i].is_gpu) index = i;
    }
    tg_cl_device *d = &g_devs[index];
    return make_ready(d) == TG_OK ? &d->base : NULL;
}

static void fill_info(const tg_cl_device *d, tg_device_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", d->name);
    snprintf(out->id, sizeof out->id, "%s", d->id);
    snprintf(out->vendor, sizeof out->vendor, "%s", d->vendor);
    snprintf(out->platform, sizeof out->platform, "%s", d->platform_name);
    snprintf(out->driver_version, sizeof out->driver_version, "%s", d->driver);
    out->kind = TG_DEVICE_OPENCL;
    out->is_gpu = d->is_gpu;
    out->compute_units = (int)d->compute_units;
    out->global_mem_bytes = d->global_mem;
    out->local_mem_bytes = d->local_mem;
    out->max_alloc_bytes = d->max_alloc;
    out->fp64 = d->fp64;
}

int tg_opencl_list(tg_device_info *out, int max) {
    pthread_once(&g_once, discover);
    for (int i = 0; out && i < g_ndev && i < max; i++) fill_info(&g_devs[i], &out[i]);
    return g_ndev;
}

tg_status tg_opencl_info(const tg_device *dev, tg_device_info *out) {
    pthread_once(&g_once, discover);
    for (int i = 0; i < g_ndev; i++) {
        if (dev == &g_devs[i].base) {
            fill_info(&g_devs[i], out);
            return TG_OK;
        }
    }
    return tg_error(TG_ERR_DEVICE, "tg_device_get_info: unknown device %s", dev->name ? dev->name : "(unnamed)");
}
