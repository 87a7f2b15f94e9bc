/* The CPU conv2d kernels (NCHW, dense row-major): forward, the gradient with respect to
 * the input (also conv_transpose2d's forward) and the gradient with respect to the
 * weight, plus the naive loops kept as their oracle. f32 is the fast path, f64 uses the
 * same machinery (gradcheck). The op layer computes OH/OW and checks shapes and dtypes. */
#ifndef TG_CPU_CONV_H
#define TG_CPU_CONV_H

#include <stdint.h>

#include "lib/graph/backend.h"
#include "tapegrad.h"

#ifndef TG_CONV2D_GEOM_DEFINED
#define TG_CONV2D_GEOM_DEFINED
typedef struct {
    int64_t N, C, H, W;   /* input x (N, C, H, W) */
    int64_t OC, KH, KW;   /* weight w (OC, C/groups, KH, KW) */
    int64_t OH, OW;       /* output (N, OC, OH, OW), computed by the op layer */
    int64_t stride[2], pad[2], dilation[2]; /* [0] = H, [1] = W; pad is the top/left padding */
    int64_t groups;
} tg_conv2d_geom;
#endif

/* out (N, OC, OH, OW) = conv(x, w) + bias (bias (OC) or NULL): cross-correlation as
 * PyTorch's F.conv2d. Rows and columns past H + pad[0] and W + pad[1] read as zeros, so
 * the bottom/right padding is whatever OH/OW imply (asymmetric "same" padding).
 * All tensors dense, one dtype (f32 or f64). Returns TG_OK, TG_ERR_INVALID (bad
 * geometry, non-dense tensor), TG_ERR_DTYPE, or TG_ERR_NOMEM (scratch), with a message;
 * out is unspecified after an error. */
tg_status tg_cpu_conv2d_forward(tg_tensor *out, const tg_tensor *x, const tg_tensor *w,
                                const tg_tensor *bias, const tg_conv2d_geom *g);
/* The forward, then the epilogue e (lib/graph/backend.h) on every output value: in the
 * stores of the channels-in-lanes kernel, in one pass over the output after the others. */
tg_status tg_cpu_conv2d_fused(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                              const tg_conv_epilogue *e, const tg_conv2d_geom *g);
/* dx (N, C, H, W) = the gradient of sum(conv(x, w) * dout) with respect to x, given
 * dout (N, OC, OH, OW); dx is overwritten. Gradient at padded positions is dropped. */
tg_status tg_cpu_conv2d_backward_data(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *w,
                                      const tg_conv2d_geom *g);
/* dw (OC, C/groups, KH, KW) = the gradient with respect to w, given dout and x; dw is
 * overwritten. */
tg_status tg_cpu_conv2d_backward_weight(tg_tensor *dw, const tg_tensor *dout, const tg_tensor *x,
                                        const tg_conv2d_geom *g);

/* The same on raw dense arrays (no checks), for tests and benchmarks. */
tg_status tg_cpu_conv2d_forward_f32(float *out, const float *x, const float *w, const float *bias,
                                    const tg_conv2d_geom *g);
tg_status tg_cpu_conv2d_forward_f64(double *out, const double *x, const double *w,
                                    const double *bias, const tg_conv2d_geom *g);
tg_status tg_cpu_conv2d_backward_data_f32(float *dx, const float *dout, const float *w,
                                          const tg_conv2d_geom *g);
tg_status tg_cpu_conv2d_backward_data_f64(double *dx, const double *dout, const double *w,
                                          const tg_conv2d_geom *g);
tg_status tg_cpu_conv2d_backward_weight_f32(float *dw, const float *dout, const float *x,
                                            const tg_conv2d_geom *g);
tg_status tg_cpu_conv2d_backward_weight_f64(double *dw, const double *dout, const double *x,
                                            const tg_conv2d_geom *g);

/* The naive loops (conv_ref.c): the oracle. They accumulate in double whatever T is. */
void tg_cpu_conv2d_ref_forward_f32(float *out, const float *x, const float *w, const float *bias,
                                   const tg_conv2d_geom *g);
void tg_cpu_conv2d_ref_forward_f64(double *out, const double *x, const double *w,
                                   const double *bias, const tg_conv2d_geom *g);
void tg_cpu_conv2d_ref_backward_data_f32(float *dx, const float *dout, const float *w,
                                         const tg_conv2d_geom *g);
void tg_cpu_conv2d_ref_backward_data_f64(double *dx, const double *dout, const double *w,
                                         const tg_conv2d_geom *g);
void tg_cpu_conv2d_ref_backward_weight_f32(float *dw, const float *dout, const float *x,
                                           const tg_conv2d_geom *g);
void tg_cpu_conv2d_ref_backward_weight_f64(double *dw, const double *dout, const double *x,
                                           const tg_conv2d_geom *g);

/* For tests and benchmarks: which algorithm a call takes. TG_CONV_AUTO picks by shape;
 * the others force one where it applies (a forced path that does not fit the geometry
 * falls back to AUTO). Not safe while a convolution runs. */
typedef enum {
    TG_CONV_AUTO = 0,
    TG_CONV_IMPLICIT, /* im2col packed straight into the GEMM's panels (never the direct tiles) */
    TG_CONV_GEMM,     /* 1x1 stride 1 no padding: the plain batched GEMM per image (AUTO's pick for weights over L2) */
    TG_CONV_COL,      /* chunks of im2col / col2im with the GEMM (backward data, stride > 1) */
    TG_CONV_DEPTHWISE,
    TG_CONV_DIRECT,   /* stride 1, f32, AVX-512: tiles read from x, no im2col panel (AUTO's pick for 33-48 channels) */
    TG_CONV_LANES,    /* f32, AVX-512, <= 64 output channels a group, stride 1 or 2 along a row: a padded copy, the
                         channels (or for 1-3 input / < 16 output channels the row's columns) in the lanes (AUTO's pick) */
    TG_CONV_WINOGRAD, /* f32 3x3 stride 1, one group: Winograd's F(2x2, 3x3), forward and backward data */
} tg_conv_algo;
void tg_cpu_conv_set_algo(tg_conv_algo a);

#endif
