/* The OpenCL backend's table (lib/graph/backend.h), filled from this folder's files. */
#include "lib/opencl/opencl.h"

const tg_backend tg_cl_backend = {
    .name = "opencl",
    .alloc = tg_cl_alloc,
    .free = tg_cl_free,
    .upload = tg_cl_upload,
    .download = tg_cl_download,
    .empty_cache = tg_cl_empty_cache,
    .fill = tg_cl_fill,
    .copy = tg_cl_copy,
    .unary = tg_cl_unary,
    .binary = tg_cl_binary,
    .where = tg_cl_where,
    .reduce = tg_cl_reduce,
    .matmul = tg_cl_matmul,
    .log_softmax = tg_cl_log_softmax,
    .gather = tg_cl_gather,
    .scatter_add = tg_cl_scatter_add,
    .random = tg_cl_random,
    .arange = tg_cl_arange,
    .conv2d = tg_cl_conv2d,
    .conv2d_backward_data = tg_cl_conv2d_backward_data,
    .conv2d_backward_weight = tg_cl_conv2d_backward_weight,
    .pool2d = tg_cl_pool2d,
    .pool2d_backward = tg_cl_pool2d_backward,
    .max_unpool2d = tg_cl_max_unpool2d,
};
