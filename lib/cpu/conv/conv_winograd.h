/* conv2d forward by Winograd's F(2x2, 3x3) (conv_winograd.c): f32 3x3 convolutions at
 * stride 1 without dilation, one group, any padding; also their backward data, which
 * is one of them with the weight transposed and flipped. */
#ifndef TG_CPU_CONV_WINOGRAD_H
#define TG_CPU_CONV_WINOGRAD_H

#include "lib/cpu/conv/conv.h"
#include "lib/cpu/conv/conv_impl.h"

/* Whether g is such a convolution (and not empty). */
int tg_conv_winograd_ok(const tg_conv2d_geom *g);

/* out (N, OC, OH, OW) = conv(x, w) + bias (bias (OC) or NULL) for g
 * (tg_conv_winograd_ok); flip: w is instead the weight (C, OC, 3, 3) of the forward conv
 * whose backward data g is (tg_conv_bwd_geom), transposed and flipped here. epi (or
 * NULL): conv2d's epilogue, done in the output transform's stores. Runs on the
 * pool with conv.c's scratch (slots 0 and 1): never from inside a convolution. Returns
 * TG_OK or TG_ERR_NOMEM with a message. */
tg_status tg_conv_winograd_f32(float *out, const float *x, const float *w, int flip, const float *bias,
                               const tg_conv2d_geom *g, tg_conv_epi *epi);

#endif
