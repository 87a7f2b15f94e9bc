/* Devices by name, from the table of backends that meson generates for this build
 * (lib/graph/backends.h): "cpu", "opencl", "opencl:N". The graph layer names no
 * backend; each registers a tg_backend_registration. A device's mandatory kernel
 * entries are checked once, when it is first opened. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/backends.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

#define X(name) extern const tg_backend_registration tg_backend_##name;
TG_BACKEND_LIST
#undef X

static const tg_backend_registration *const g_backends[] = {
#define X(name) &tg_backend_##name,
    TG_BACKEND_LIST
#undef X
};
#define NBACKENDS ((int)(sizeof g_backends / sizeof g_backends[0]))

/* The names this build knows, for messages: "cpu, opencl or opencl:N". */
static const char *known_names(void) {
    static char buf[256];
    if (buf[0]) return buf;
    const char *items[2 * NBACKENDS];
    char indexed[NBACKENDS][40];
    int n = 0;
    for (int i = 0; i < NBACKENDS; i++) {
        items[n++] = g_backends[i]->name;
        if (!g_backends[i]->indexed) continue;
        snprintf(indexed[i], sizeof indexed[i], "%s:N", g_backends[i]->name);
        items[n++] = indexed[i];
    }
    size_t pos = 0;
    for (int i = 0; i < n && pos < sizeof buf; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                                items[i]);
    return buf;
}

/* The entries every backend must fill; a device whose backend lacks one is refused. */
static const char *missing_entry(const tg_backend *be) {
#define NEED(f) if (!be->f) return #f
    NEED(alloc); NEED(free); NEED(upload); NEED(download); NEED(fill); NEED(copy); NEED(unary); NEED(binary);
    NEED(where); NEED(reduce); NEED(matmul); NEED(log_softmax); NEED(gather); NEED(scatter_add); NEED(random);
    NEED(arange);
#undef NEED
    return NULL;
}

static tg_device *validated(tg_device *dev) {
    if (!dev || dev->validated) return dev;
    const char *m = missing_entry(dev->be);
    if (m) return tg_error_null(TG_ERR_BACKEND, "tg_device_get: the %s backend lacks its mandatory %s kernel",
                                dev->be->name, m);
    dev->validated = true;
    return dev;
}

/* "name" gives index -1 (the backend's default), "name:N" index N. */
static bool parse_index(const char *full, const char *rest, const char *bname, int *index) {
    *index = -1;
    if (!*rest) return true;
    char *end;
    errno = 0;
    long long v = *rest == ':' && rest[1] >= '0' && rest[1] <= '9' ? strtoll(rest + 1, &end, 10) : -1;
    if (v < 0 || *end || v > INT_MAX || errno == ERANGE) {
        tg_error(TG_ERR_DEVICE, "tg_device_get: bad device name \"%s\" (expected %s:N with N >= 0)", full, bname);
        return false;
    }
    *index = (int)v;
    return true;
}

tg_device *tg_device_get(const char *name) {
    TG_API_ENTER("tg_device_get");
    if (!name) name = getenv("TG_DEVICE");
    if (!name || !*name) name = "cpu";
    for (int i = 0; i < NBACKENDS; i++) {
        const tg_backend_registration *b = g_backends[i];
        size_t n = strlen(b->name);
        if (strncmp(name, b->name, n) != 0 || (name[n] && name[n] != ':')) continue;
        int index;
        if (!parse_index(name, name + n, b->name, &index)) return NULL;
        return validated(b->open(index));
    }
    return tg_error_null(TG_ERR_DEVICE, "tg_device_get: unknown device \"%s\" (expected %s)", name,
                         known_names());
}

const char *tg_device_name(const tg_device *dev) { return dev ? dev->name : "(null)"; }

static bool has_entry(const tg_backend *be, tg_kernel k) {
    switch (k) {
    case TG_KERNEL_FILL: return be->fill;
    case TG_KERNEL_COPY: return be->copy;
    case TG_KERNEL_UNARY: return be->unary;
    case TG_KERNEL_BINARY: return be->binary;
    case TG_KERNEL_WHERE: return be->where;
    case TG_KERNEL_REDUCE: return be->reduce;
    case TG_KERNEL_MATMUL: return be->matmul;
    case TG_KERNEL_LOG_SOFTMAX: return be->log_softmax;
    case TG_KERNEL_GATHER: return be->gather;
    case TG_KERNEL_SCATTER_ADD: return be->scatter_add;
    case TG_KERNEL_RANDOM: return be->random;
    case TG_KERNEL_ARANGE: return be->arange;
    case TG_KERNEL_AXPY: return be->axpy;
    case TG_KERNEL_CONV2D: return be->conv2d;
    case TG_KERNEL_CONV2D_BACKWARD_DATA: return be->conv2d_backward_data;
    case TG_KERNEL_CONV2D_BACKWARD_WEIGHT: return be->conv2d_backward_weight;
    case TG_KERNEL_POOL2D: return be->pool2d;
    case TG_KERNEL_POOL2D_BACKWARD: return be->pool2d_backward;
    case TG_KERNEL_BATCH_NORM: return be->batch_norm;
    case TG_KERNEL_BATCH_NORM_BACKWARD: return be->batch_norm_backward;
    case TG_KERNEL_IM2COL: return be->im2col;
    case TG_KERNEL_COL2IM: return be->col2im;
    case TG_KERNEL_COUNT: break;
    }
    return false;
}

bool tg_device_supports(const tg_device *dev, tg_kernel k, tg_dtype dtype) {
    if (!has_entry(dev->be, k)) return false;
    return dev->be->supports ? dev->be->supports(k, dtype) : true;
}

tg_status tg_device_memory_stats(const tg_device *dev, tg_memory_stats *out) {
    if (!dev || !out) return tg_error(TG_ERR_INVALID, "tg_device_memory_stats: NULL argument");
    out->bytes_in_use = atomic_load(&dev->stats.bytes_in_use);
    out->bytes_cached = atomic_load(&dev->stats.bytes_cached);
    out->peak_in_use = atomic_load(&dev->stats.peak_in_use);
    out->allocations = atomic_load(&dev->stats.allocations);
    return TG_OK;
}

tg_status tg_device_launch_stats(const tg_device *dev, tg_launch_stats *out) {
    if (!dev || !out) return tg_error(TG_ERR_INVALID, "tg_device_launch_stats: NULL argument");
    out->launches = atomic_load(&dev->stats.launches);
    out->transfers = atomic_load(&dev->stats.transfers);
    return TG_OK;
}

void *tg_device_host_alloc(tg_device *dev, size_t nbytes, void **handle, bool *pinned) {
    void *ptr = NULL;
    *handle = NULL;
    *pinned = false;
    if (dev && dev->be->host_alloc && dev->be->host_alloc(dev, nbytes, &ptr, handle) == TG_OK) {
        *pinned = true;
        return ptr;
    }
    return nbytes <= SIZE_MAX - 63 ? aligned_alloc(64, (nbytes + 63) / 64 * 64) : NULL;
}

void tg_device_host_free(tg_device *dev, void *ptr, void *handle) {
    if (!ptr) return;
    if (handle) dev->be->host_free(dev, ptr, handle);
    else free(ptr);
}

void tg_device_empty_cache(tg_device *dev) {
    if (dev && dev->be->empty_cache) dev->be->empty_cache(dev);
}

void tg_device_synchronize(tg_device *dev) {
    for (int i = 0; dev && i < NBACKENDS; i++)
        if (strcmp(g_backends[i]->name, dev->be->name) == 0 && g_backends[i]->synchronize)
            g_backends[i]->synchronize(dev);
}

/* Host threads belong to the backend that has them (the CPU's pool). */
void tg_set_num_threads(int n) {
    for (int i = 0; i < NBACKENDS; i++)
        if (g_backends[i]->set_num_threads) g_backends[i]->set_num_threads(n);
}

int tg_get_num_threads(void) {
    for (int i = 0; i < NBACKENDS; i++)
        if (g_backends[i]->num_threads) return g_backends[i]->num_threads();
    return 1;
}

int tg_device_list(tg_device_info *out, int max) {
    int n = 0;
    for (int i = 0; i < NBACKENDS; i++) {
        int room = out && max > n ? max - n : 0;
        n += g_backends[i]->list(room ? out + n : NULL, room);
    }
    return n;
}

tg_status tg_device_get_info(const tg_device *dev, tg_device_info *out) {
    if (!dev || !out) return tg_error(TG_ERR_INVALID, "tg_device_get_info: NULL argument");
    for (int i = 0; i < NBACKENDS; i++)
        if (strcmp(g_backends[i]->name, dev->be->name) == 0) return g_backends[i]->info(dev, out);
    return tg_error(TG_ERR_DEVICE, "tg_device_get_info: unknown device %s", dev->name);
}
