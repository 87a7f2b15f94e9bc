/* Internals of the OpenCL backend shared by its files: the device state, program and
 * kernel lookup, kernel launches, strided geometry for kernel arguments, error names,
 * and the hooks tests/test_opencl_*.c use to reach error paths. Not installed. */
#ifndef TG_OPENCL_H
#define TG_OPENCL_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <pthread.h>

#include "lib/graph/size-class.h"
#include "lib/graph/tensor-impl.h"

#define TG_CL_NCLASSES TG_SIZE_CLASSES /* lib/graph/size-class.h */

/* The kernels of lib/opencl/kernels, built on first use for one dtype and one variant
 * (a second dtype), so that a run compiles only what it uses. Kernels a run needs
 * together (the elementwise family of one dtype, the reductions of one dtype, ...) share
 * one program: see the table in program.c, which follows this order. */
typedef enum {
    TG_K_FILL, TG_K_COPY, TG_K_UNARY, TG_K_BINARY, TG_K_COMPARE, TG_K_WHERE, TG_K_ARANGE,
    TG_K_RANDOM_UNIFORM, TG_K_SUM_SERIAL, TG_K_SUM_WG, TG_K_SUM_FINAL, TG_K_MM_SERIAL, TG_K_MM_WG,
    TG_K_MM_FINAL, TG_K_ARG_SERIAL, TG_K_ARG_WG, TG_K_LSM_SERIAL, TG_K_LSM_WG, TG_K_GATHER,
    TG_K_SCATTER_LINES, TG_K_SCATTER_ATOMIC, TG_K_GEMM, TG_K_CONVERT,
    TG_K_CONV_FWD, TG_K_CONV_BWD_DATA, TG_K_CONV_BWD_WEIGHT, TG_K_CONV_SUM_SPLITS,
    TG_K_POOL_MAX, TG_K_POOL_AVG, TG_K_POOL_BWD_MAX, TG_K_POOL_BWD_MAX_PLANES, TG_K_POOL_BWD_AVG,
    TG_K_UNPOOL_WIN, TG_K_UNPOOL_OUT,
    TG_K_NORM_STATS, TG_K_NORM_APPLY, TG_K_NORM_BSUMS, TG_K_NORM_DWB, TG_K_NORM_DX,
    TG_K_ROI_POOL, TG_K_ROI_POOL_BWD, TG_K_ROI_ALIGN, TG_K_ROI_ALIGN_BWD, TG_K_AXPY, TG_K_GEMM_DIRECT,
    TG_K_RANDOM_NORMAL, TG_K_RANDOM_BERNOULLI, TG_K_UNARY_MATH, TG_K_BINARY_POW,
    TG_K_COUNT
} tg_cl_kernel_id;
#define TG_CL_NVARIANTS TG_NUM_DTYPES /* a variant is a second dtype, or 0 */
#define TG_CL_NGROUPS 7 /* program groups of program.c, the first one unused (kernels built alone) */

typedef struct tg_cl_block {
    cl_mem mem;
    struct tg_cl_block *next;
} tg_cl_block;

/* One OpenCL device. Discovery fills the description; the context, queue and tables
 * are made on first use through tg_opencl_device(). */
typedef struct {
    tg_device base; /* base.impl points back here */
    char id[24];    /* "opencl:N" */
    cl_platform_id platform;
    cl_device_id device;
    char name[128], vendor[128], platform_name[128], driver[64], c_version[64];
    bool is_gpu, fp64_hw, int64_atomics, correct_div_sqrt;
    bool fp64;      /* fp64_hw, unless a test pretends otherwise */
    cl_uint compute_units;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_wg;
    int wg;         /* work-group size of reductions (a power of two) */
    int gemm_l;     /* tg_gemm's work-group is gemm_l x gemm_l */

    pthread_mutex_t lock; /* kernel arguments, the tables and the free lists */
    pthread_mutex_t index_lock; /* gather and scatter: the `bad` flag from reset to read */
    bool ready;
    cl_context ctx;
    cl_command_queue queue;
    cl_mem bad;     /* one int: the first out-of-range index position of gather/scatter */
    cl_program prog[TG_K_COUNT][TG_NUM_DTYPES][TG_CL_NVARIANTS];   /* kernels built alone */
    cl_program gprog[TG_CL_NGROUPS][TG_NUM_DTYPES][TG_CL_NVARIANTS]; /* programs of a group */
    cl_kernel kern[TG_K_COUNT][TG_NUM_DTYPES][TG_CL_NVARIANTS];
    tg_cl_block *free_list[TG_CL_NCLASSES];
    size_t bytes_device; /* every buffer made and not released: live plus cached */
} tg_cl_device;

static inline tg_cl_device *tg_cl_of(const tg_tensor *t) { return (tg_cl_device *)t->storage->dev->impl; }
static inline cl_mem tg_cl_mem(const tg_tensor *t) { return (cl_mem)t->storage->data; }

/* Counts one command for tg_device_launch_stats: a launch (kernel, fill, copy on the
 * device) or a transfer (a read or write between host and device). */
static inline void tg_cl_count_launch(tg_cl_device *d) { atomic_fetch_add(&d->base.stats.launches, 1); }
static inline void tg_cl_count_transfer(tg_cl_device *d) { atomic_fetch_add(&d->base.stats.transfers, 1); }

/* ---------------------------------------------------------------- device.c */

/* "CL_OUT_OF_RESOURCES" for -5; "CL error -1234" for codes it does not know. */
const char *tg_cl_errname(cl_int code);
/* Sets a message "<device>: <what> failed: <CL name>" and returns the matching status:
 * TG_ERR_NOMEM for allocation failures, else TG_ERR_BACKEND. */
tg_status tg_cl_fail(const tg_cl_device *d, const char *what, cl_int code);
/* The error for an f64 tensor on a device without cl_khr_fp64. */
tg_status tg_cl_no_fp64(const tg_cl_device *d, const char *op);

/* ---------------------------------------------------------------- program.c */

/* Kernel k for dtype dt and variant v (the output dtype of sums and arg ops; the index dtype of gather and scatter; 0 for the rest), built
 * (or loaded from the disk cache) with the rest of its program on first use; NULL with
 * a message on failure (build log included). */
cl_kernel tg_cl_kernel_v(tg_cl_device *d, tg_cl_kernel_id k, tg_dtype dt, int v);
static inline cl_kernel tg_cl_kernel(tg_cl_device *d, tg_dtype dt, tg_cl_kernel_id k) {
    return tg_cl_kernel_v(d, k, dt, 0);
}
/* The converting copy kernel from dtype in to dtype out (one kernel per output dtype:
 * it takes the input's dtype as an argument, but an f64 input needs fp64). */
static inline cl_kernel tg_cl_copy_kernel(tg_cl_device *d, tg_dtype out, tg_dtype in) {
    if (in == TG_F64 && !d->fp64) {
        tg_cl_no_fp64(d, "tg_convert");
        return NULL;
    }
    return tg_cl_kernel(d, out, TG_K_CONVERT);
}
/* Releases every built program and kernel (the queue is drained first). */
void tg_cl_release_programs(tg_cl_device *d);
/* Waits for every queued command of every device that was made ready, for a build
 * another thread has under way and for the cache writer's pending entries: registered
 * with atexit, so that no driver thread still compiles or runs while the process tears
 * down. */
void tg_cl_drain_all(void);
/* Writes the cache entries the background writer still holds and returns when it is
 * idle (program.c): all of them, or (at_exit) those that fit a short time budget, the
 * rest left for a later run to build and write. */
void tg_cl_cache_flush(bool at_exit);
/* Registers tg_cl_drain_all with atexit again: now, or (now false) if a build happened
 * since the last registration. Called after builds and after blocking reads. */
void tg_cl_register_drain(bool now);

typedef struct {
    size_t size;
    const void *value; /* a cl_mem argument points at the cl_mem */
} tg_cl_arg;
#define TG_CL_ARG(x) ((tg_cl_arg){ sizeof(x), &(x) })
#define TG_CL_ARGS(...) (tg_cl_arg[]){ __VA_ARGS__ }, (int)(sizeof((tg_cl_arg[]){ __VA_ARGS__ }) / sizeof(tg_cl_arg))

/* Sets the arguments and enqueues k over a 1- to 3-D range (local NULL: the driver's
 * choice). Arguments are copied at the call, so they may live on the caller's stack. */
tg_status tg_cl_launch(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                       int dims, const size_t *global, const size_t *local);
/* One work-item per element in groups of the device's work-group size: n may be 0. */
tg_status tg_cl_launch_1d(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                          int64_t n);

/* ---------------------------------------------------------------- alloc.c */

tg_status tg_cl_alloc(tg_device *dev, size_t nbytes, void **out);
void tg_cl_free(tg_device *dev, void *data, size_t nbytes);
void tg_cl_empty_cache(tg_device *dev);
tg_status tg_cl_host_alloc(tg_device *dev, size_t nbytes, void **ptr, void **handle);
void tg_cl_host_free(tg_device *dev, void *ptr, void *handle);
tg_status tg_cl_upload(tg_device *dev, void *dst, size_t dst_offset, const void *src, size_t n);
tg_status tg_cl_download(tg_device *dev, void *dst, const void *src, size_t src_offset, size_t n);

/* ---------------------------------------------------------------- geometry */

/* Up to four operands over one shape, size-1 axes dropped and neighbours merged where
 * every operand allows (as the CPU iterator does); strides in elements. */
typedef struct {
    cl_int nd;
    int64_t numel;
    cl_long8 shape;
    cl_long8 st[4];
} tg_cl_geom;
void tg_cl_geom_init(tg_cl_geom *g, int ndim, const int64_t *shape, int nops, const tg_tensor *const *ts);

/* ---------------------------------------------------------------- kernels */

tg_status tg_cl_fill(tg_tensor *out, double value);
tg_status tg_cl_copy(tg_tensor *out, const tg_tensor *x);
tg_status tg_cl_unary(tg_unary_op op, tg_tensor *out, const tg_tensor *x, double p0, double p1);
tg_status tg_cl_binary(tg_binary_op op, tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cl_where(tg_tensor *out, const tg_tensor *c, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cl_arange(tg_tensor *out, double start, double step);
tg_status tg_cl_random(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter, double p0, double p1);
tg_status tg_cl_reduce(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask);
tg_status tg_cl_log_softmax(tg_tensor *out, const tg_tensor *x, int axis);
tg_status tg_cl_gather(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx);
tg_status tg_cl_scatter_add(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src);
tg_status tg_cl_matmul(tg_tensor *out, const tg_tensor *a, const tg_tensor *b);
tg_status tg_cl_axpy(tg_tensor *dst, double alpha, const tg_tensor *x);

/* conv.c, pool.c, norm.c: the entries of lib/graph/backend.h of the same names. */
tg_status tg_cl_conv2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                       const tg_conv2d_geom *g);
tg_status tg_cl_conv2d_backward_data(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *w,
                                     const tg_conv2d_geom *g);
tg_status tg_cl_conv2d_backward_weight(tg_tensor *dw, const tg_tensor *dout, const tg_tensor *x,
                                       const tg_conv2d_geom *g);
tg_status tg_cl_pool2d(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                       const tg_pool2d_geom *g);
tg_status tg_cl_pool2d_backward(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout, const tg_tensor *indices,
                                const tg_pool2d_geom *g);
tg_status tg_cl_max_unpool2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *indices, const tg_pool2d_geom *g);
tg_status tg_cl_batch_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,
                           tg_tensor *running_var, const tg_tensor *x, const tg_tensor *weight, const tg_tensor *bias,
                           const tg_norm_params *p);
tg_status tg_cl_batch_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p);
tg_status tg_cl_layer_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                           const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p);
tg_status tg_cl_layer_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p);
tg_status tg_cl_group_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                           const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p);
tg_status tg_cl_group_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p);

/* roi.c: the detection entries of lib/graph/backend.h. */
tg_status tg_cl_roi_pool(tg_tensor *out, tg_tensor *argmax, const tg_tensor *x, const tg_tensor *boxes,
                         const tg_roi_geom *g);
tg_status tg_cl_roi_pool_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *argmax,
                                  const tg_tensor *boxes, const tg_roi_geom *g);
tg_status tg_cl_roi_align(tg_tensor *out, const tg_tensor *x, const tg_tensor *boxes, const tg_roi_geom *g);
tg_status tg_cl_roi_align_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *boxes,
                                   const tg_roi_geom *g);

extern const tg_backend tg_cl_backend;

/* ---------------------------------------------------------------- test hooks
 * For tests/test_opencl_*.c: error paths a real device rarely takes. */

typedef struct {
    int loaded;   /* programs loaded from a cache entry */
    int built;    /* programs built from source */
    int rejected; /* cache entries found corrupt or unloadable (then rebuilt) */
    int written;  /* cache entries written */
} tg_cl_cache_stats;
/* The counts so far, after the background writer has written what it holds. */
void tg_opencl_cache_stats(tg_cl_cache_stats *out);

/* Builds src with options on dev through the same path as the library's programs
 * (cache included) and releases it: TG_OK, or TG_ERR_BACKEND with the build log. */
tg_status tg_opencl_build_for_test(tg_device *dev, const char *src, const char *options);
/* Rewrites the cache entry at path as a well-formed entry (same key, valid header and
 * payload hash) whose payload is the given bytes: one the driver must refuse. */
tg_status tg_opencl_cache_forge_for_test(const char *path, const void *payload, size_t len);
/* Pretends dev lacks (or has back) cl_khr_fp64; rebuilds programs on next use. */
tg_status tg_opencl_set_fp64_for_test(tg_device *dev, bool enabled);
/* Forces kernel choices: gemm 0 auto, 1 the built-in tiled kernel, 2 CLBlast, 3 the built-in
 * direct kernel; scatter 0 auto,
 * 1 lines (deterministic), 2 atomics; reduce 0 auto, 1 serial, 2 work-groups, 3 chunked. */
void tg_opencl_force_paths_for_test(int gemm, int scatter, int reduce);
extern int tg_cl_force_gemm, tg_cl_force_scatter, tg_cl_force_reduce;

#endif
