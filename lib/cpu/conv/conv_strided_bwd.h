/* conv2d's gradient with respect to the input at stride > 1 as stride-1 forward convs
 * of dout, one a residue class of dx's positions (sub-pixel decomposition), so that the
 * fast stride-1 kernels run it instead of col2im. */
#ifndef TG_CPU_CONV_STRIDED_BWD_H
#define TG_CPU_CONV_STRIDED_BWD_H

#include "lib/cpu/conv/conv.h"

/* Whether the decomposition takes g: a stride above 1 along some axis and a batch,
 * channels and image that are not empty (the dispatch answers those cases itself); with
 * any == 0 (AUTO) also only where it was measured faster than col2im. */
int tg_conv_strided_bwd_ok(const tg_conv2d_geom *g, int any);

/* dx (N, C, H, W) = backward-data of g (tg_conv_strided_bwd_ok(g)), given dout (N, OC,
 * OH, OW) and the weight w (OC, C/groups, KH, KW); dx is overwritten, every position
 * (those no output reads are 0). Returns TG_OK, or TG_ERR_NOMEM with a message (dx is
 * then unspecified). Runs the forward dispatch on the calling thread's scratch, so it
 * must not be called from inside a convolution. */
tg_status tg_conv_strided_bwd_data_f32(float *dx, const float *dout, const float *w, const tg_conv2d_geom *g);
tg_status tg_conv_strided_bwd_data_f64(double *dx, const double *dout, const double *w,
                                       const tg_conv2d_geom *g);

#endif
