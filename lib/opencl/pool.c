/* OpenCL 2-D pooling: max (with i64 indices), avg and adaptive forward, their backward,
 * and max_unpool2d (kernels/pool.cl), with the CPU path's semantics. Forward runs one
 * work-item per output. Backward gathers, one work-item per dx element over the outputs
 * whose windows hold it, so no two items write one place and sums keep the CPU's order;
 * a max geometry with an empty (dilated) window, whose index may name a position
 * outside its window, runs the CPU's loop instead, one work-item per plane.
 * max_unpool2d marks the winning (last) write of each position with atomic_max in an
 * int table in the thread's scratch buffer, then writes every output; an index outside
 * the plane is reported from the device's `bad` flag, read back after the launch. */
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

static const cl_int no_bad = INT32_MAX;

typedef struct {
    cl_long8 ga, gb;
} pool_args;

static pool_args args_of(tg_pool_kind kind, const tg_pool2d_geom *g) {
    pool_args a;
    bool avg = kind == TG_POOL_AVG;
    cl_long ga[8] = { g->N, g->C, g->H, g->W, g->OH, g->OW, g->kernel[0], g->kernel[1] };
    cl_long gb[8] = { g->stride[0], g->stride[1], g->pad[0], g->pad[1], avg ? 1 : g->dilation[0],
                      avg ? 1 : g->dilation[1], (cl_long)g->count_include_pad | (cl_long)g->adaptive << 1,
                      g->divisor };
    for (int i = 0; i < 8; i++) {
        a.ga.s[i] = ga[i];
        a.gb.s[i] = gb[i];
    }
    if (g->adaptive) /* unused: keep the window arithmetic away from a zero stride */
        for (int i = 0; i < 6; i++) a.gb.s[i] = 1;
    return a;
}

tg_status tg_cl_pool2d(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                       const tg_pool2d_geom *g) {
    // x is (N, C, H, W), out and indices (N, C, OH, OW)
    tg_cl_device *d = tg_cl_of(out);
    bool max = kind == TG_POOL_MAX;
    cl_kernel k = tg_cl_kernel(d, out->dtype, max ? TG_K_POOL_MAX : TG_K_POOL_AVG);
    if (!k) return tg_last_status();
    pool_args a = args_of(kind, g);
    cl_mem xm = tg_cl_mem(x), ym = tg_cl_mem(out), im = indices ? tg_cl_mem(indices) : ym;
    cl_long xo = x->offset, yo = out->offset, io = indices ? indices->offset : 0;
    cl_int has_idx = indices != NULL;
    int64_t n = g->N * g->C * g->OH * g->OW;
    if (max)
        return tg_cl_launch_1d(d, k, "tg_pool_max",
                               TG_CL_ARGS(TG_CL_ARG(a.ga), TG_CL_ARG(a.gb), TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(ym),
                                          TG_CL_ARG(yo), TG_CL_ARG(im), TG_CL_ARG(io), TG_CL_ARG(has_idx)),
                               n);
    return tg_cl_launch_1d(d, k, "tg_pool_avg",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), TG_CL_ARG(a.gb), TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(ym),
                                      TG_CL_ARG(yo)),
                           n);
}

/* Whether a max window on either axis holds no input element (ops/pool.c's test). */
static bool has_empty_windows(const tg_pool2d_geom *g) {
    for (int a = 0; a < 2 && !g->adaptive; a++) {
        int64_t in = a ? g->W : g->H, out = a ? g->OW : g->OH, dl = g->dilation[a];
        for (int64_t o = 0; o < out; o++) {
            int64_t s = o * g->stride[a] - g->pad[a], e = s + (g->kernel[a] - 1) * dl + 1;
            if (s < 0) s += (-s + dl - 1) / dl * dl;
            if (s >= (e < in ? e : in)) return true;
        }
    }
    return false;
}

tg_status tg_cl_pool2d_backward(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout, const tg_tensor *indices,
                                const tg_pool2d_geom *g) {
    // dout and indices (N, C, OH, OW), dx (N, C, H, W)
    tg_cl_device *d = tg_cl_of(dx);
    bool max = kind == TG_POOL_MAX, planes = max && has_empty_windows(g);
    tg_cl_kernel_id id = !max ? TG_K_POOL_BWD_AVG : planes ? TG_K_POOL_BWD_MAX_PLANES : TG_K_POOL_BWD_MAX;
    cl_kernel k = tg_cl_kernel(d, dx->dtype, id);
    if (!k) return tg_last_status();
    pool_args a = args_of(kind, g);
    cl_mem gm = tg_cl_mem(dout), im = indices ? tg_cl_mem(indices) : gm, dm = tg_cl_mem(dx);
    cl_long go = dout->offset, io = indices ? indices->offset : 0, dxo = dx->offset;
    return tg_cl_launch_1d(d, k, planes ? "tg_pool_bwd_max_planes" : max ? "tg_pool_bwd_max" : "tg_pool_bwd_avg",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), TG_CL_ARG(a.gb), TG_CL_ARG(gm), TG_CL_ARG(go), TG_CL_ARG(im),
                                      TG_CL_ARG(io), TG_CL_ARG(dm), TG_CL_ARG(dxo)),
                           planes ? g->N * g->C : g->N * g->C * g->H * g->W);
}

/* Waits for the winner pass and reports the first index outside the plane, if any. */
static tg_status unpool_check(tg_cl_device *d, const tg_tensor *indices, const tg_pool2d_geom *g) {
    cl_int pos;
    cl_int e = clEnqueueReadBuffer(d->queue, d->bad, CL_TRUE, 0, sizeof pos, &pos, 0, NULL, NULL);
    tg_cl_count_transfer(d);
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clEnqueueReadBuffer", e);
    tg_cl_register_drain(false);
    if (pos == no_bad) return TG_OK;
    int64_t v = 0;
    e = clEnqueueReadBuffer(d->queue, tg_cl_mem(indices), CL_TRUE, (size_t)(indices->offset + pos) * sizeof v,
                            sizeof v, &v, 0, NULL, NULL);
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clEnqueueReadBuffer", e);
    return tg_error(TG_ERR_INVALID, "tg_max_unpool2d: index %lld is outside the output plane of %lldx%lld "
                    "(valid: 0 to %lld)", (long long)v, (long long)g->H, (long long)g->W,
                    (long long)(g->H * g->W - 1));
}

static tg_status unpool_locked(tg_cl_device *d, tg_tensor *out, const tg_tensor *x, const tg_tensor *indices,
                               const tg_pool2d_geom *g) {
    cl_kernel kw = tg_cl_kernel(d, out->dtype, TG_K_UNPOOL_WIN), ko = kw ? tg_cl_kernel(d, out->dtype, TG_K_UNPOOL_OUT) : NULL;
    if (!ko) return tg_last_status();
    int64_t nout = g->N * g->C * g->H * g->W;
    void *winp;
    tg_status st = tg_scratch(&d->base, (size_t)(nout ? nout : 1) * sizeof(cl_int), &winp);
    if (st != TG_OK) return st;
    cl_mem win = (cl_mem)winp, im = tg_cl_mem(indices), xm = tg_cl_mem(x), ym = tg_cl_mem(out);
    cl_int none = -1;
    cl_int e = clEnqueueFillBuffer(d->queue, d->bad, &no_bad, sizeof no_bad, 0, sizeof no_bad, 0, NULL, NULL);
    tg_cl_count_launch(d);
    if (e == CL_SUCCESS && nout) {
        e = clEnqueueFillBuffer(d->queue, win, &none, sizeof none, 0, (size_t)nout * sizeof none, 0, NULL, NULL);
        tg_cl_count_launch(d);
    }
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clEnqueueFillBuffer", e);
    pool_args a = args_of(TG_POOL_MAX, g);
    cl_long io = indices->offset, xo = x->offset, yo = out->offset;
    st = tg_cl_launch_1d(d, kw, "tg_unpool_win",
                         TG_CL_ARGS(TG_CL_ARG(a.ga), TG_CL_ARG(a.gb), TG_CL_ARG(im), TG_CL_ARG(io), TG_CL_ARG(win),
                                    TG_CL_ARG(d->bad)),
                         g->N * g->C * g->OH * g->OW);
    if (st == TG_OK) st = unpool_check(d, indices, g);
    if (st != TG_OK) return st;
    return tg_cl_launch_1d(d, ko, "tg_unpool_out",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), TG_CL_ARG(a.gb), TG_CL_ARG(win), TG_CL_ARG(xm), TG_CL_ARG(xo),
                                      TG_CL_ARG(ym), TG_CL_ARG(yo)),
                           nout);
}

tg_status tg_cl_max_unpool2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *indices, const tg_pool2d_geom *g) {
    // x and indices (N, C, OH, OW), out (N, C, H, W)
    tg_cl_device *d = tg_cl_of(out);
    if (g->OH * g->OW > INT32_MAX)
        return tg_error(TG_ERR_INVALID, "tg_max_unpool2d: %s: planes of more than 2^31 elements", d->id);
    pthread_mutex_lock(&d->index_lock);
    tg_status st = unpool_locked(d, out, x, indices, g);
    pthread_mutex_unlock(&d->index_lock);
    return st;
}
