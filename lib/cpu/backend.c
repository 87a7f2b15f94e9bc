/* The CPU device: its backend table and host memory transfers. */
#include <string.h>

#include "lib/cpu/cpu.h"

static tg_status cpu_upload(tg_device *dev, void *dst, size_t off, const void *src, size_t n) {
    (void)dev;
    if (n) memcpy((char *)dst + off, src, n);
    return TG_OK;
}

static tg_status cpu_download(tg_device *dev, void *dst, const void *src, size_t off, size_t n) {
    (void)dev;
    if (n) memcpy(dst, (const char *)src + off, n);
    return TG_OK;
}

static const tg_backend cpu_backend = {
    .name = "cpu",
    .alloc = tg_cpu_alloc,
    .free = tg_cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .empty_cache = tg_cpu_empty_cache,
    .fill = tg_cpu_fill,
    .copy = tg_cpu_copy,
    .unary = tg_cpu_unary,
    .binary = tg_cpu_binary,
    .where = tg_cpu_where,
    .reduce = tg_cpu_reduce,
    .matmul = tg_cpu_matmul,
    .log_softmax = tg_cpu_log_softmax,
    .gather = tg_cpu_gather,
    .scatter_add = tg_cpu_scatter_add,
    .random = tg_cpu_random,
    .arange = tg_cpu_arange,
    .axpy = tg_cpu_axpy,
};

static tg_device cpu_device = { .name = "cpu", .be = &cpu_backend };

tg_device *tg_cpu_device(void) { return &cpu_device; }
