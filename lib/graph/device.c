/* Device lookup by name and device-wide settings. Backends register nothing: each
 * exposes a getter (tg_cpu_device, tg_opencl_device) and this file maps names to them. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

#ifdef TG_HAVE_OPENCL
tg_device *tg_opencl_device(int index); /* opencl/device.c; index -1: first GPU, else first */
int tg_opencl_list(tg_device_info *out, int max); /* opencl/device.c: fills, returns the count */
tg_status tg_opencl_info(const tg_device *dev, tg_device_info *out);
#endif

tg_device *tg_device_get(const char *name) {
    if (!name) name = getenv("TG_DEVICE");
    if (!name || !*name || strcmp(name, "cpu") == 0) return tg_cpu_device();
    if (strncmp(name, "opencl", 6) == 0) {
        const char *rest = name + 6;
        int index = -1;
        if (*rest == ':') {
            char *end;
            errno = 0;
            long long v = strtoll(rest + 1, &end, 10);
            if (end == rest + 1 || *end || v < 0 || v > INT_MAX || errno == ERANGE || rest[1] == '+' ||
                rest[1] == ' ')
                return tg_error_null(TG_ERR_DEVICE, "tg_device_get: bad device name \"%s\" "
                                     "(expected opencl:N with N >= 0)", name);
            index = (int)v;
        } else if (*rest) {
            return tg_error_null(TG_ERR_DEVICE, "tg_device_get: unknown device \"%s\" "
                                 "(expected cpu, opencl or opencl:N)", name);
        }
#ifdef TG_HAVE_OPENCL
        return tg_opencl_device(index);
#else
        (void)index;
        return tg_error_null(TG_ERR_DEVICE, "tg_device_get: \"%s\": this build has no OpenCL "
                             "backend (configure with -Dopencl=enabled)", name);
#endif
    }
    return tg_error_null(TG_ERR_DEVICE, "tg_device_get: unknown device \"%s\" "
                         "(expected cpu, opencl or opencl:N)", name);
}

const char *tg_device_name(const tg_device *dev) { return dev ? dev->name : "(null)"; }

tg_status tg_device_memory_stats(const tg_device *dev, tg_memory_stats *out) {
    if (!dev || !out) return tg_error(TG_ERR_INVALID, "tg_device_memory_stats: NULL argument");
    out->bytes_in_use = atomic_load(&dev->stats.bytes_in_use);
    out->bytes_cached = atomic_load(&dev->stats.bytes_cached);
    out->peak_in_use = atomic_load(&dev->stats.peak_in_use);
    out->allocations = atomic_load(&dev->stats.allocations);
    return TG_OK;
}

void tg_device_empty_cache(tg_device *dev) {
    if (dev && dev->be->empty_cache) dev->be->empty_cache(dev);
}

void tg_set_num_threads(int n) { tg_pool_set_num_threads(n); }
int tg_get_num_threads(void) { return tg_pool_num_threads(); }

static void cpu_info(tg_device_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cpu");
    snprintf(out->id, sizeof out->id, "cpu");
    snprintf(out->vendor, sizeof out->vendor, "host");
    out->kind = TG_DEVICE_CPU;
    out->compute_units = tg_pool_num_threads();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->global_mem_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    out->max_alloc_bytes = out->global_mem_bytes;
    out->fp64 = true;
}

int tg_device_list(tg_device_info *out, int max) {
    if (out && max > 0) cpu_info(&out[0]);
    int n = 1;
#ifdef TG_HAVE_OPENCL
    n += tg_opencl_list(out && max > 1 ? out + 1 : NULL, max > 1 ? max - 1 : 0);
#endif
    return n;
}

tg_status tg_device_get_info(const tg_device *dev, tg_device_info *out) {
    if (!dev || !out) return tg_error(TG_ERR_INVALID, "tg_device_get_info: NULL argument");
    if (dev == tg_cpu_device()) {
        cpu_info(out);
        return TG_OK;
    }
#ifdef TG_HAVE_OPENCL
    return tg_opencl_info(dev, out);
#else
    return tg_error(TG_ERR_DEVICE, "tg_device_get_info: unknown device");
#endif
}
