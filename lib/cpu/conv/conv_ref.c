/* The naive conv2d loops: the oracle the fast kernels are tested against. Every output
 * element is one sum over its receptive field, accumulated in double, with the index
 * arithmetic written exactly as the definition (F.conv2d's cross-correlation). */
#include "lib/cpu/conv/conv.h"

/* x at (n, c, ih, iw), or 0 outside the image (padding) */
#define TG_CONV_REF(T, S)                                                                      \
    void tg_cpu_conv2d_ref_forward_##S(T *out, const T *x, const T *w, const T *bias,          \
                                       const tg_conv2d_geom *g)                                \
    {                                                                                          \
        int64_t Cg = g->C / g->groups, OCg = g->OC / g->groups;                                \
        for (int64_t n = 0; n < g->N; n++)                                                     \
            for (int64_t oc = 0; oc < g->OC; oc++)                                             \
                for (int64_t oh = 0; oh < g->OH; oh++)                                         \
                    for (int64_t ow = 0; ow < g->OW; ow++) {                                   \
                        double s = bias ? (double)bias[oc] : 0.0;                              \
                        int64_t c0 = oc / OCg * Cg;                                            \
                        for (int64_t c = 0; c < Cg; c++)                                       \
                            for (int64_t kh = 0; kh < g->KH; kh++)                             \
                                for (int64_t kw = 0; kw < g->KW; kw++) {                       \
                                    int64_t ih = oh * g->stride[0] - g->pad[0] + kh * g->dilation[0]; \
                                    int64_t iw = ow * g->stride[1] - g->pad[1] + kw * g->dilation[1]; \
                                    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)          \
                                        continue;                                              \
                                    s += (double)x[((n * g->C + c0 + c) * g->H + ih) * g->W + iw] * \
                                         (double)w[((oc * Cg + c) * g->KH + kh) * g->KW + kw]; \
                                }                                                              \
                        out[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] = (T)s;              \
                    }                                                                          \
    }                                                                                          \
                                                                                               \
    /* dx[n,c,ih,iw] = sum over (oc, kh, kw) whose output position lands on (ih, iw) */        \
    void tg_cpu_conv2d_ref_backward_data_##S(T *dx, const T *dout, const T *w,                 \
                                             const tg_conv2d_geom *g)                          \
    {                                                                                          \
        int64_t Cg = g->C / g->groups, OCg = g->OC / g->groups;                                \
        for (int64_t n = 0; n < g->N; n++)                                                     \
            for (int64_t c = 0; c < g->C; c++)                                                 \
                for (int64_t ih = 0; ih < g->H; ih++)                                          \
                    for (int64_t iw = 0; iw < g->W; iw++) {                                    \
                        double s = 0;                                                          \
                        int64_t gi = c / Cg;                                                   \
                        for (int64_t oc = gi * OCg; oc < (gi + 1) * OCg; oc++)                 \
                            for (int64_t kh = 0; kh < g->KH; kh++)                             \
                                for (int64_t kw = 0; kw < g->KW; kw++) {                       \
                                    int64_t th = ih + g->pad[0] - kh * g->dilation[0];         \
                                    int64_t tw = iw + g->pad[1] - kw * g->dilation[1];         \
                                    if (th < 0 || tw < 0 || th % g->stride[0] || tw % g->stride[1]) \
                                        continue;                                              \
                                    int64_t oh = th / g->stride[0], ow = tw / g->stride[1];    \
                                    if (oh >= g->OH || ow >= g->OW)                            \
                                        continue;                                              \
                                    s += (double)dout[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] * \
                                         (double)w[((oc * Cg + c - gi * Cg) * g->KH + kh) * g->KW + kw]; \
                                }                                                              \
                        dx[((n * g->C + c) * g->H + ih) * g->W + iw] = (T)s;                   \
                    }                                                                          \
    }                                                                                          \
                                                                                               \
    void tg_cpu_conv2d_ref_backward_weight_##S(T *dw, const T *dout, const T *x,               \
                                               const tg_conv2d_geom *g)                        \
    {                                                                                          \
        int64_t Cg = g->C / g->groups, OCg = g->OC / g->groups;                                \
        for (int64_t oc = 0; oc < g->OC; oc++)                                                 \
            for (int64_t c = 0; c < Cg; c++)                                                   \
                for (int64_t kh = 0; kh < g->KH; kh++)                                         \
                    for (int64_t kw = 0; kw < g->KW; kw++) {                                   \
                        double s = 0;                                                          \
                        int64_t c0 = oc / OCg * Cg;                                            \
                        for (int64_t n = 0; n < g->N; n++)                                     \
                            for (int64_t oh = 0; oh < g->OH; oh++)                             \
                                for (int64_t ow = 0; ow < g->OW; ow++) {                       \
                                    int64_t ih = oh * g->stride[0] - g->pad[0] + kh * g->dilation[0]; \
                                    int64_t iw = ow * g->stride[1] - g->pad[1] + kw * g->dilation[1]; \
                                    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)          \
                                        continue;                                              \
                                    s += (double)dout[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] * \
                                         (double)x[((n * g->C + c0 + c) * g->H + ih) * g->W + iw]; \
                                }                                                              \
                        dw[((oc * Cg + c) * g->KH + kh) * g->KW + kw] = (T)s;                  \
                    }                                                                          \
    }

TG_CONV_REF(float, f32)
TG_CONV_REF(double, f64)
