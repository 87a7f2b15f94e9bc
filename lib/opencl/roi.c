/* OpenCL roi_pool and roi_align, forward and backward (kernels/roi.cl), with the CPU
 * path's semantics and arithmetic. Forward runs one work-item per output element;
 * backward gathers, one work-item per dx element over the boxes of its image, so it
 * needs no float atomics (not portable in OpenCL 1.2) and sums in the CPU's order. */
#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

/* The geometry as roi.cl reads it, and spatial_scale in the kernel's T. */
typedef struct {
    cl_long8 ga;
    cl_float scale32;
    cl_double scale64;
    cl_int aligned;
} roi_args;

static roi_args args_of(const tg_roi_geom *g) {
    roi_args a = { .scale32 = (cl_float)g->spatial_scale, .scale64 = g->spatial_scale, .aligned = g->aligned };
    cl_long v[8] = { g->N, g->C, g->H, g->W, g->K, g->PH, g->PW, g->sampling_ratio };
    for (int i = 0; i < 8; i++) a.ga.s[i] = v[i];
    return a;
}

#define SCALE_ARG(a, dt) ((dt) == TG_F32 ? TG_CL_ARG((a).scale32) : TG_CL_ARG((a).scale64))

tg_status tg_cl_roi_pool(tg_tensor *out, tg_tensor *argmax, const tg_tensor *x, const tg_tensor *boxes,
                         const tg_roi_geom *g) {
    // x (N, C, H, W), boxes (K, 5), out and argmax (K, C, PH, PW)
    tg_cl_device *d = tg_cl_of(out);
    cl_kernel k = tg_cl_kernel(d, out->dtype, TG_K_ROI_POOL);
    if (!k) return tg_last_status();
    roi_args a = args_of(g);
    cl_mem xm = tg_cl_mem(x), bm = tg_cl_mem(boxes), ym = tg_cl_mem(out), am = argmax ? tg_cl_mem(argmax) : ym;
    cl_long xo = x->offset, bo = boxes->offset, yo = out->offset, ao = argmax ? argmax->offset : 0;
    cl_int has_am = argmax != NULL;
    return tg_cl_launch_1d(d, k, "tg_roi_pool",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), SCALE_ARG(a, out->dtype), TG_CL_ARG(a.aligned), TG_CL_ARG(xm),
                                      TG_CL_ARG(xo), TG_CL_ARG(bm), TG_CL_ARG(bo), TG_CL_ARG(ym), TG_CL_ARG(yo),
                                      TG_CL_ARG(am), TG_CL_ARG(ao), TG_CL_ARG(has_am)),
                           g->K * g->C * g->PH * g->PW);
}

tg_status tg_cl_roi_pool_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *argmax,
                                  const tg_tensor *boxes, const tg_roi_geom *g) {
    // dout and argmax (K, C, PH, PW), boxes (K, 5), dx (N, C, H, W)
    tg_cl_device *d = tg_cl_of(dx);
    cl_kernel k = tg_cl_kernel(d, dx->dtype, TG_K_ROI_POOL_BWD);
    if (!k) return tg_last_status();
    roi_args a = args_of(g);
    cl_mem gm = tg_cl_mem(dout), am = tg_cl_mem(argmax), bm = tg_cl_mem(boxes), dm = tg_cl_mem(dx);
    cl_long go = dout->offset, ao = argmax->offset, bo = boxes->offset, dxo = dx->offset;
    return tg_cl_launch_1d(d, k, "tg_roi_pool_bwd",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), SCALE_ARG(a, dx->dtype), TG_CL_ARG(a.aligned), TG_CL_ARG(gm),
                                      TG_CL_ARG(go), TG_CL_ARG(am), TG_CL_ARG(ao), TG_CL_ARG(bm), TG_CL_ARG(bo),
                                      TG_CL_ARG(dm), TG_CL_ARG(dxo)),
                           g->N * g->C * g->H * g->W);
}

tg_status tg_cl_roi_align(tg_tensor *out, const tg_tensor *x, const tg_tensor *boxes, const tg_roi_geom *g) {
    // x (N, C, H, W), boxes (K, 5), out (K, C, PH, PW)
    tg_cl_device *d = tg_cl_of(out);
    cl_kernel k = tg_cl_kernel(d, out->dtype, TG_K_ROI_ALIGN);
    if (!k) return tg_last_status();
    roi_args a = args_of(g);
    cl_mem xm = tg_cl_mem(x), bm = tg_cl_mem(boxes), ym = tg_cl_mem(out);
    cl_long xo = x->offset, bo = boxes->offset, yo = out->offset;
    return tg_cl_launch_1d(d, k, "tg_roi_align",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), SCALE_ARG(a, out->dtype), TG_CL_ARG(a.aligned), TG_CL_ARG(xm),
                                      TG_CL_ARG(xo), TG_CL_ARG(bm), TG_CL_ARG(bo), TG_CL_ARG(ym), TG_CL_ARG(yo)),
                           g->K * g->C * g->PH * g->PW);
}

tg_status tg_cl_roi_align_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *boxes,
                                   const tg_roi_geom *g) {
    // dout (K, C, PH, PW), boxes (K, 5), dx (N, C, H, W)
    tg_cl_device *d = tg_cl_of(dx);
    cl_kernel k = tg_cl_kernel(d, dx->dtype, TG_K_ROI_ALIGN_BWD);
    if (!k) return tg_last_status();
    roi_args a = args_of(g);
    cl_mem gm = tg_cl_mem(dout), bm = tg_cl_mem(boxes), dm = tg_cl_mem(dx);
    cl_long go = dout->offset, bo = boxes->offset, dxo = dx->offset;
    return tg_cl_launch_1d(d, k, "tg_roi_align_bwd",
                           TG_CL_ARGS(TG_CL_ARG(a.ga), SCALE_ARG(a, dx->dtype), TG_CL_ARG(a.aligned), TG_CL_ARG(gm),
                                      TG_CL_ARG(go), TG_CL_ARG(bm), TG_CL_ARG(bo), TG_CL_ARG(dm), TG_CL_ARG(dxo)),
                           g->N * g->C * g->H * g->W);
}
