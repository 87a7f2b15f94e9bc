/* OpenCL gather and scatter-add, with i32 or i64 indices. Kernels do not follow an
 * out-of-range index: they record the smallest such element position in the device's
 * `bad` flag, which the host reads back after the launch to report the index, in the
 * same words as the CPU path. That read is the cost: a 4-byte blocking read per call,
 * so each gather or scatter waits for the queue to drain (a launch's latency, ~10-50 us
 * on PoCL), and a second 4- or 8-byte read only when an index was bad. Positions past
 * INT32_MAX - 1 are recorded as that value: the op still fails, naming the index there. */
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

#define ATOMIC_MAX_LINES 1024 /* scatter with atomics only when lines are few ... */
#define ATOMIC_MIN_LEN 64     /* ... and long */

static const cl_int no_bad = INT32_MAX;

/* The index dtypes the kernels read. */
static tg_status check_idx(const char *op, const tg_tensor *idx) {
    if (idx->dtype == TG_I32 || idx->dtype == TG_I64) return TG_OK;
    return tg_error(TG_ERR_DTYPE, "%s: index must be i32 or i64, got %s", op, tg_dtype_name(idx->dtype));
}

static tg_status reset_bad(tg_cl_device *d) {
    cl_int e = clEnqueueFillBuffer(d->queue, d->bad, &no_bad, sizeof no_bad, 0, sizeof no_bad, 0, NULL, NULL);
    tg_cl_count_launch(d);
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, "clEnqueueFillBuffer", e);
}

static cl_long8 strides8(const tg_tensor *t, int zero_axis) {
    cl_long8 s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < t->ndim; i++) s.s[i] = i == zero_axis ? 0 : t->strides[i];
    return s;
}

static cl_long8 shape8(const tg_tensor *t, int one_axis) {
    cl_long8 s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < t->ndim; i++) s.s[i] = i == one_axis ? 1 : t->shape[i];
    return s;
}

/* Waits for the launch, then reports the first bad index if there was one. */
static tg_status check_bad(tg_cl_device *d, const char *op, const tg_tensor *idx, int axis, int64_t limit) {
    cl_int pos;
    cl_int e = clEnqueueReadBuffer(d->queue, d->bad, CL_TRUE, 0, sizeof pos, &pos, 0, NULL, NULL);
    tg_cl_count_transfer(d);
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clEnqueueReadBuffer", e);
    if (pos == no_bad) return TG_OK;
    int64_t rest = pos, off = idx->offset;
    for (int i = idx->ndim - 1; i >= 0; i--) {
        off += rest % idx->shape[i] * idx->strides[i];
        rest /= idx->shape[i];
    }
    int64_t v = 0;
    int32_t v32 = 0;
    size_t es = tg_elsize(idx->dtype);
    e = clEnqueueReadBuffer(d->queue, tg_cl_mem(idx), CL_TRUE, (size_t)off * es, es, es == 8 ? (void *)&v : (void *)&v32,
                            0, NULL, NULL);
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clEnqueueReadBuffer", e);
    if (es == 4) v = v32;
    return tg_error(TG_ERR_INVALID, "%s: index %lld is out of range for axis %d of size %lld", op, (long long)v,
                    axis, (long long)limit);
}

tg_status tg_cl_gather(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx) {
    tg_cl_device *d = tg_cl_of(out);
    cl_long n = tg_shape_numel(idx->ndim, idx->shape);
    tg_status st = check_idx("tg_gather", idx);
    if (st != TG_OK || n == 0) return st;
    cl_kernel k = tg_cl_kernel_v(d, TG_K_GATHER, x->dtype, (int)idx->dtype);
    if (!k) return tg_last_status();
    pthread_mutex_lock(&d->index_lock);
    st = reset_bad(d);
    if (st != TG_OK) goto out;
    cl_int nd = idx->ndim;
    cl_long8 shape = shape8(idx, -1), os = strides8(out, -1), is = strides8(idx, -1), ms = strides8(x, axis);
    cl_long limit = x->shape[axis], ma = x->strides[axis];
    cl_mem om = tg_cl_mem(out), im = tg_cl_mem(idx), xm = tg_cl_mem(x);
    cl_long oo = out->offset, io = idx->offset, xo = x->offset;
    st = tg_cl_launch_1d(d, k, "tg_gather",
                         TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(nd), TG_CL_ARG(shape), TG_CL_ARG(limit), TG_CL_ARG(om),
                                    TG_CL_ARG(oo), TG_CL_ARG(os), TG_CL_ARG(im), TG_CL_ARG(io), TG_CL_ARG(is),
                                    TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(ms), TG_CL_ARG(ma), TG_CL_ARG(d->bad)),
                         n);
    if (st == TG_OK) st = check_bad(d, "tg_gather", idx, axis, limit);
out:
    pthread_mutex_unlock(&d->index_lock);
    return st;
}

tg_status tg_cl_scatter_add(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src) {
    tg_cl_device *d = tg_cl_of(out);
    cl_long n = tg_shape_numel(idx->ndim, idx->shape), len = idx->shape[axis];
    tg_status st = check_idx("tg_scatter_add", idx);
    if (st != TG_OK || n == 0) return st;
    if (!tg_is_float(out->dtype))
        return tg_error(TG_ERR_DTYPE, "tg_scatter_add: expected a floating dtype (f32 or f64), got %s",
                        tg_dtype_name(out->dtype));
    cl_long nlines = n / len, inner = 1;
    for (int i = axis + 1; i < idx->ndim; i++) inner *= idx->shape[i];
    bool can_atomic = out->dtype == TG_F32 || (d->int64_atomics && d->fp64);
    bool atomic = can_atomic && (tg_cl_force_scatter ? tg_cl_force_scatter == 2
                                                     : nlines < ATOMIC_MAX_LINES && len >= ATOMIC_MIN_LEN);
    cl_kernel k = tg_cl_kernel_v(d, atomic ? TG_K_SCATTER_ATOMIC : TG_K_SCATTER_LINES, out->dtype, (int)idx->dtype);
    if (!k) return tg_last_status();
    pthread_mutex_lock(&d->index_lock);
    st = reset_bad(d);
    if (st != TG_OK) goto out;
    cl_int nd = idx->ndim;
    cl_long8 ms = strides8(out, axis), is = strides8(idx, -1), ss = strides8(src, -1);
    cl_long limit = out->shape[axis], ma = out->strides[axis], ia = idx->strides[axis], sa = src->strides[axis];
    cl_mem om = tg_cl_mem(out), im = tg_cl_mem(idx), sm = tg_cl_mem(src);
    cl_long oo = out->offset, io = idx->offset, so = src->offset;
    if (atomic) {
        cl_long8 shape = shape8(idx, -1);
        st = tg_cl_launch_1d(d, k, "tg_scatter_atomic",
                             TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(nd), TG_CL_ARG(shape), TG_CL_ARG(limit),
                                        TG_CL_ARG(om), TG_CL_ARG(oo), TG_CL_ARG(ms), TG_CL_ARG(ma), TG_CL_ARG(im),
                                        TG_CL_ARG(io), TG_CL_ARG(is), TG_CL_ARG(sm), TG_CL_ARG(so), TG_CL_ARG(ss),
                                        TG_CL_ARG(d->bad)),
                             n);
    } else {
        cl_long8 shape = shape8(idx, axis);
        st = tg_cl_launch_1d(d, k, "tg_scatter_lines",
                             TG_CL_ARGS(TG_CL_ARG(nlines), TG_CL_ARG(nd), TG_CL_ARG(shape), TG_CL_ARG(len),
                                        TG_CL_ARG(inner), TG_CL_ARG(limit), TG_CL_ARG(om), TG_CL_ARG(oo),
                                        TG_CL_ARG(ms), TG_CL_ARG(ma), TG_CL_ARG(im), TG_CL_ARG(io), TG_CL_ARG(is),
                                        TG_CL_ARG(ia), TG_CL_ARG(sm), TG_CL_ARG(so), TG_CL_ARG(ss), TG_CL_ARG(sa),
                                        TG_CL_ARG(d->bad)),
                             nlines);
    }
    if (st == TG_OK) st = check_bad(d, "tg_scatter_add", idx, axis, limit);
out:
    pthread_mutex_unlock(&d->index_lock);
    return st;
}
