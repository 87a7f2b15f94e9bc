/* The CPU device: its backend table and host memory transfers. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "lib/cpu/conv/conv.h"
#include "lib/cpu/cpu.h"
#include "lib/cpu/norm.h"
#include "lib/cpu/pool.h"
#include "lib/cpu/profile.h"
#include "lib/cpu/rnn_cell.h"
#include "lib/cpu/roi.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

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
    .threshold_backward = tg_cpu_threshold_backward,
    /* convolution (conv/) */
    .conv2d = tg_cpu_conv2d_forward,
    .conv2d_fused = tg_cpu_conv2d_fused,
    .conv2d_backward_data = tg_cpu_conv2d_backward_data,
    .conv2d_backward_weight = tg_cpu_conv2d_backward_weight,

    /* pooling (pool.c) */
    .pool2d = tg_cpu_pool2d,
    .pool2d_backward = tg_cpu_pool2d_backward,
    .max_unpool2d = tg_cpu_max_unpool2d,

    /* normalisation (norm.c) */
    .batch_norm = tg_cpu_batch_norm,
    .batch_norm_backward = tg_cpu_batch_norm_backward,
    .batch_norm_relu = tg_cpu_batch_norm_relu,
    .batch_norm_relu_backward = tg_cpu_batch_norm_relu_backward,
    .batch_norm_add = tg_cpu_batch_norm_add,
    .layer_norm = tg_cpu_layer_norm,
    .layer_norm_backward = tg_cpu_layer_norm_backward,
    .group_norm = tg_cpu_group_norm,
    .group_norm_backward = tg_cpu_group_norm_backward,

    /* resampling and dropout */

    /* detection (roi.c) */
    .roi_pool = tg_cpu_roi_pool,
    .roi_pool_backward = tg_cpu_roi_pool_backward,
    .roi_align = tg_cpu_roi_align,
    .roi_align_backward = tg_cpu_roi_align_backward,

    /* recurrent (rnn_cell.c) */
    .lstm_pointwise = tg_cpu_lstm_pointwise,
    .lstm_pointwise_backward = tg_cpu_lstm_pointwise_backward,

};

static tg_device cpu_device = { .name = "cpu", .be = &cpu_backend };
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_init(void) { cpu_device.be = tg_cpu_profiled(&cpu_backend); }

tg_device *tg_cpu_device(void) {
    pthread_once(&cpu_once, cpu_init);
    return &cpu_device;
}

static tg_device *cpu_open(int index) {
    if (index > 0) return tg_error_null(TG_ERR_DEVICE, "tg_device_get: no device cpu:%d (there is one CPU device)", index);
    return tg_cpu_device();
}

static void cpu_fill_info(tg_device_info *out) {
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

static int cpu_list(tg_device_info *out, int max) {
    if (out && max > 0) cpu_fill_info(out);
    return 1;
}

static tg_status cpu_info(const tg_device *dev, tg_device_info *out) {
    (void)dev;
    cpu_fill_info(out);
    return TG_OK;
}

const tg_backend_registration tg_backend_cpu = {
    .name = "cpu",
    .open = cpu_open,
    .list = cpu_list,
    .info = cpu_info,
    .num_threads = tg_pool_num_threads,
    .set_num_threads = tg_pool_set_num_threads,
};
