/* Internal to conv2d: the implicit-im2col packer's interface, which each ISA provides
 * (conv_pack_avx512.c) beside the plain-C one in conv_driver_tmpl.h. */
#ifndef TG_CPU_CONV_IMPL_H
#define TG_CPU_CONV_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* The calling thread's buffer `slot` (0 to 3) of at least size bytes, 64-byte aligned,
 * grown as needed and freed when the thread exits (steady-state training allocates
 * nothing), or NULL when out of memory. Invalidates what an earlier call for that slot on
 * this thread returned. Slots 0-2 belong to the algorithms of conv.c; the strided
 * backward-data holds TG_CONV_SLOT_STRIDED across the forward convs it runs. */
#define TG_CONV_SLOT_STRIDED 3
void *tg_conv_scratch(int slot, size_t size);

/* Runs fn (which takes work units from a counter of its own until none are left) on the
 * pool's threads, or on the caller alone when there is one unit, one thread, or too
 * little work (flops) to wake another. */
void tg_conv_parallel(double flops, int64_t units, void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx);

/* The im2col matrix of one group, never stored: row k = (c, kh, kw), column q = (n, oh,
 * ow) flattened over the batch, value x[n, c, oh*sh + ih_off[k], ow*sw + iw_off[k]] or 0
 * outside the image. */
typedef struct {
    const void *x;        /* the group's first channel in image 0 */
    int64_t img;          /* elements between images */
    int64_t H, W;         /* the image */
    int64_t OW, P;        /* output columns, output positions an image (OH * OW) */
    int64_t sh, sw;       /* strides */
    const int64_t *ih_off, *iw_off, *c_off; /* per row k of the block: kh*dh - ph, kw*dw - pw, c*H*W */
} tg_conv_pack_geom;

/* Packs rows [0, kc) (of the tables given) and columns [q0, q0 + nc) into nr-column
 * micro-panels (kc rows of nr values each, k-major), columns past nc zero: the layout
 * of the GEMM's packed B. nr is the kernel set's (32 f32 / 16 f64 for avx512). */
typedef void (*tg_conv_pack_fn)(const tg_conv_pack_geom *g, int64_t kc, int64_t q0, int64_t nc,
                                void *dst);

void tg_conv_pack_avx512_f32(const tg_conv_pack_geom *g, int64_t kc, int64_t q0, int64_t nc,
                             void *dst);
void tg_conv_pack_avx512_f64(const tg_conv_pack_geom *g, int64_t kc, int64_t q0, int64_t nc,
                             void *dst);

/* The direct stride-1 f32 conv (conv_direct_avx512.c) of one group: out (M x Q) =
 * A (M x K) * im2col (K x Q), with A in MR = 8-row panels (ap[(m0 / 8) * 8 * K + k * 8 +
 * i] = A[m0 + i][k], rows past M zero) and im2col read from x as it is needed. */
#define TG_CONV_DIRECT_MAX_KK 49 /* KH * KW at most (7x7) */
#define TG_CONV_DIRECT_TILE 48   /* output positions a tile */
typedef struct {
    const float *x;                 /* the group's first channel in image 0 */
    int64_t img, H, W, OW, P, C;    /* elements between images, the image, OW, OH * OW, channels (Cg) */
    int64_t KH, KW, dh, dw, ph, pw; /* kernel, dilation, top/left padding */
    const float *ap;                /* the weight panels */
    int64_t M, K;                   /* output channels of the group, Cg * KH * KW */
    float *out;                     /* the group's first output channel in image 0 */
    int64_t out_img;                /* elements between output images */
    const float *bias;              /* M, or NULL */
} tg_conv_direct_geom;

/* Writes out for the positions [q0, q0 + nq) (nq <= TG_CONV_DIRECT_TILE) of all M rows. */
void tg_conv_direct_avx512_f32(const tg_conv_direct_geom *g, int64_t q0, int nq);

/* The weight gradient by the same tiles: dw (M x K, row-major) += dout_g (M x Q, laid
 * out as out is in g) * im2col^T over positions [q0, q0 + nq), nq <= TG_CONV_WGRAD_TILE.
 * g->ap, g->out and g->bias are not used. */
#define TG_CONV_WGRAD_TILE 1024
#define TG_CONV_WGRAD_MAX_KK 25 /* KH * KW at most (5x5) */
void tg_conv_wgrad_direct_avx512_f32(const tg_conv_direct_geom *g, const float *dout, float *dw, int64_t q0,
                                     int nq);

/* conv2d's epilogue as the kernels take it (tg_cpu_conv2d_fused): each output value v
 * becomes ((v - m) - l) * s + t with channel c's batch norm coefficients (coef: rows m,
 * l, s, t of oc values each, of the output's type, as the batch norm kernel computes
 * them; NULL: no batch norm), then v + the residual (res, laid out as out; NULL: none),
 * then relu (v < 0 ? 0 : v). applied: set by a path that did it in its own stores;
 * the others' output gets one pass after. */
typedef struct {
    const void *coef;
    int64_t oc;
    const void *res;
    int relu;
    int applied;
} tg_conv_epi;

/* The f32 conv with the output channels in the vector lanes (conv_lanes_avx512.c), for
 * 16-64 output channels a group at stride 1 or 2: out (M x OH*OW an image) = conv of
 * one group, read from a zero-padded copy of a unit's input rows (C x Hb x Wp floats,
 * Hb = tg_conv_lanes_rows_in, Wp = tg_conv_lanes_wp), so no load is masked. */
typedef struct {
    const float *x;                 /* the group's first channel in image 0 */
    int64_t img, C, H, W;           /* elements between images, channels (Cg), the image */
    int64_t KH, KW, sh, sw, dh, dw, ph, pw; /* kernel, stride (sw 1 or 2), dilation, top/left padding */
    int64_t OH, OW;
    int64_t M, Mp;                  /* output channels of the group; the weight's row (16, 32 or 64 lanes >= M) */
    const float *wt;                /* forward: the weight k-major, wt[k * Mp + m], zero past M; 64-byte aligned */
    const float *bias;              /* forward: Mp values (zero past M), or NULL */
    float *out;                     /* forward: the group's first output channel in image 0 */
    int64_t out_img;                /* elements between images of out (forward) or of dout (weight gradient) */
    /* forward: conv2d's epilogue (tg_conv_epi), in the stores: ecoef the group's first
     * channel's m (its l, s, t eoc floats apart) or NULL; eres laid out as out or NULL */
    const float *ecoef;
    int64_t eoc;
    const float *eres;
    int erelu;
} tg_conv_lanes_geom;

int64_t tg_conv_lanes_rows_in(const tg_conv_lanes_geom *g, int64_t rows);
int64_t tg_conv_lanes_wp(const tg_conv_lanes_geom *g);
/* Floats of scratch a unit of `rows` output rows needs (wgrad: also its dout, transposed). */
int64_t tg_conv_lanes_buf(const tg_conv_lanes_geom *g, int64_t rows, int wgrad);

/* Writes output rows [oh0, oh0 + rows) of image n, all M channels; buf: scratch of
 * tg_conv_lanes_buf(g, rows, 0) floats, 64-byte aligned. */
void tg_conv_lanes_avx512_f32(const tg_conv_lanes_geom *g, int64_t n, int64_t oh0, int64_t rows, float *buf);

/* The same output by tiles of 16-48 columns of one output row in the lanes and 8 output
 * channels (1 where M is 1) broadcast, for few channels; g->sw must be 1 and Mp a
 * multiple of 8 (or 1 where M is 1); buf: tg_conv_lanes_buf(g, rows, 0) floats. */
void tg_conv_rows_avx512_f32(const tg_conv_lanes_geom *g, int64_t n, int64_t oh0, int64_t rows, float *buf);

/* Whether the weight-gradient kernel has tiles for g (3- or 5-column kernels, no column
 * dilation, KH <= 7). */
int tg_conv_wgrad_lanes_ok(const tg_conv_lanes_geom *g);
/* acc (K x Mp, k-major: acc[k * Mp + m], 64-byte aligned) += the weight gradient of
 * output rows [oh0, oh0 + rows) of image n; dout is the group's first channel in image 0
 * (g->out_img apart); buf: tg_conv_lanes_buf(g, rows, 1) floats, 64-byte aligned. */
void tg_conv_wgrad_lanes_avx512_f32(const tg_conv_lanes_geom *g, const float *dout, int64_t n, int64_t oh0,
                                    int64_t rows, float *buf, float *acc);

#endif
