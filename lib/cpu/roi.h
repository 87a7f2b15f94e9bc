/* roi_pool and roi_align on the CPU (roi.c): the backend entries of the same names in
 * lib/graph/backend.h. Dense tensors of one float dtype (f32, f64); argmax i64. */
#ifndef TG_CPU_ROI_H
#define TG_CPU_ROI_H

#include "lib/graph/tensor-impl.h"

tg_status tg_cpu_roi_pool(tg_tensor *out, tg_tensor *argmax, const tg_tensor *x, const tg_tensor *boxes,
                          const tg_roi_geom *g);
tg_status tg_cpu_roi_pool_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *argmax,
                                   const tg_tensor *boxes, const tg_roi_geom *g);
tg_status tg_cpu_roi_align(tg_tensor *out, const tg_tensor *x, const tg_tensor *boxes, const tg_roi_geom *g);
tg_status tg_cpu_roi_align_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *boxes,
                                    const tg_roi_geom *g);

#endif
