/* roi_pool and roi_align on the CPU, forward and backward: torchvision's CPU kernels
 * (torchvision/csrc/ops/cpu/roi_{pool,align}_kernel.cpp) as plain loops, arithmetic in
 * the tensor's dtype so that bin edges and sample positions round as theirs do.
 * Forward threads over the K*C output planes; backward over the N*C input planes, each
 * summing the boxes of its image in box order (torchvision's scatter order), so no two
 * threads write one place. The per-dtype code is this file included again with ROI_T
 * set (once for float, once for double); the entries at the end pick one. */
#ifndef ROI_T
#include <float.h>
#include <math.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/roi.h"
#include "lib/cpu/threadpool.h"

typedef struct {
    const tg_roi_geom *g;
    const void *x, *boxes, *grad;
    const int64_t *argmax_in;
    void *out;
    int64_t *argmax;
} roi_ctx;

/* The box's image, or -1 for an index the op layer would have refused. */
static inline int64_t roi_batch(const tg_roi_geom *g, double v) {
    return v > -1 && v < (double)g->N ? (int64_t)v : -1;
}

/* Units of work per task: about TG_GRAIN_ELEMENTWISE inputs touched. */
static int64_t roi_grain(int64_t per_unit) {
    int64_t g = TG_GRAIN_ELEMENTWISE / (per_unit > 0 ? per_unit : 1);
    return g < 1 ? 1 : g;
}

#define ROI_T float
#define ROI_S f32
#define ROI_ROUND roundf
#define ROI_FLOOR floorf
#define ROI_CEIL ceilf
#include "roi.c"
#define ROI_T double
#define ROI_S f64
#define ROI_ROUND round
#define ROI_FLOOR floor
#define ROI_CEIL ceil
#include "roi.c"

tg_status tg_cpu_roi_pool(tg_tensor *out, tg_tensor *argmax, const tg_tensor *x, const tg_tensor *boxes,
                          const tg_roi_geom *g) {
    // x (N, C, H, W), boxes (K, 5), out and argmax (K, C, PH, PW)
    roi_ctx c = { .g = g, .x = tg_cpu_ptr(x), .boxes = tg_cpu_ptr(boxes), .out = tg_cpu_ptr(out),
                  .argmax = argmax ? (int64_t *)tg_cpu_ptr(argmax) : NULL };
    tg_pool_fn fn = x->dtype == TG_F32 ? roi_pool_planes_f32 : roi_pool_planes_f64;
    tg_pool_parallel_for(g->K * g->C, roi_grain(g->H * g->W), fn, &c);
    return TG_OK;
}

tg_status tg_cpu_roi_pool_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *argmax,
                                   const tg_tensor *boxes, const tg_roi_geom *g) {
    // dout and argmax (K, C, PH, PW), boxes (K, 5), dx (N, C, H, W)
    roi_ctx c = { .g = g, .grad = tg_cpu_ptr(dout), .argmax_in = (const int64_t *)tg_cpu_ptr(argmax),
                  .boxes = tg_cpu_ptr(boxes), .out = tg_cpu_ptr(dx) };
    tg_pool_fn fn = dx->dtype == TG_F32 ? roi_pool_bwd_planes_f32 : roi_pool_bwd_planes_f64;
    tg_pool_parallel_for(g->N * g->C, roi_grain(g->H * g->W + g->K * g->PH * g->PW), fn, &c);
    return TG_OK;
}

tg_status tg_cpu_roi_align(tg_tensor *out, const tg_tensor *x, const tg_tensor *boxes, const tg_roi_geom *g) {
    // x (N, C, H, W), boxes (K, 5), out (K, C, PH, PW)
    roi_ctx c = { .g = g, .x = tg_cpu_ptr(x), .boxes = tg_cpu_ptr(boxes), .out = tg_cpu_ptr(out) };
    tg_pool_fn fn = x->dtype == TG_F32 ? roi_align_planes_f32 : roi_align_planes_f64;
    tg_pool_parallel_for(g->K * g->C, roi_grain(g->PH * g->PW * 16), fn, &c);
    return TG_OK;
}

tg_status tg_cpu_roi_align_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *boxes,
                                    const tg_roi_geom *g) {
    // dout (K, C, PH, PW), boxes (K, 5), dx (N, C, H, W)
    roi_ctx c = { .g = g, .grad = tg_cpu_ptr(dout), .boxes = tg_cpu_ptr(boxes), .out = tg_cpu_ptr(dx) };
    tg_pool_fn fn = dx->dtype == TG_F32 ? roi_align_bwd_planes_f32 : roi_align_bwd_planes_f64;
    tg_pool_parallel_for(g->N * g->C, roi_grain(g->H * g->W + g->K * g->PH * g->PW * 16), fn, &c);
    return TG_OK;
}

#else /* ---------------------------------------------------------------- per dtype */

#define T ROI_T
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, ROI_S)

/* roi_pool's box in whole pixels and its bin size (roi_pool_kernel.cpp). */
typedef struct {
    int64_t batch, start_h, start_w;
    T bin_h, bin_w;
} FN(pool_box);

static FN(pool_box) FN(pool_box_of)(const tg_roi_geom *g, const T *b) {
    FN(pool_box) r;
    T s = (T)g->spatial_scale;
    r.batch = roi_batch(g, (double)b[0]);
    r.start_w = (int64_t)ROI_ROUND(b[1] * s);
    r.start_h = (int64_t)ROI_ROUND(b[2] * s);
    int64_t end_w = (int64_t)ROI_ROUND(b[3] * s), end_h = (int64_t)ROI_ROUND(b[4] * s);
    int64_t rw = end_w - r.start_w + 1, rh = end_h - r.start_h + 1;
    r.bin_h = (T)(rh > 1 ? rh : 1) / (T)g->PH;
    r.bin_w = (T)(rw > 1 ? rw : 1) / (T)g->PW;
    return r;
}

static inline int64_t FN(clip)(int64_t v, int64_t hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* Bin p of a box on one axis: [lo, hi) clipped to [0, size]. */
static inline void FN(pool_bin)(int64_t p, T bin, int64_t start, int64_t size, int64_t *lo, int64_t *hi) {
    *lo = FN(clip)((int64_t)ROI_FLOOR((T)p * bin) + start, size);
    *hi = FN(clip)((int64_t)ROI_CEIL((T)(p + 1) * bin) + start, size);
}

static void FN(roi_pool_planes)(void *vc, int64_t begin, int64_t end) {
    const roi_ctx *c = vc;
    const tg_roi_geom *g = c->g;
    const int64_t HW = g->H * g->W, PHW = g->PH * g->PW;
    for (int64_t u = begin; u < end; u++) { /* u = k * C + channel */
        const T *b = (const T *)c->boxes + u / g->C * 5;
        FN(pool_box) r = FN(pool_box_of)(g, b);
        T *y = (T *)c->out + u * PHW;
        int64_t *am = c->argmax ? c->argmax + u * PHW : NULL;
        const T *xp = r.batch >= 0 ? (const T *)c->x + (r.batch * g->C + u % g->C) * HW : NULL;
        for (int64_t ph = 0; ph < g->PH; ph++)
            for (int64_t pw = 0; pw < g->PW; pw++) {
                int64_t h0, h1, w0, w1, best = -1;
                FN(pool_bin)(ph, r.bin_h, r.start_h, g->H, &h0, &h1);
                FN(pool_bin)(pw, r.bin_w, r.start_w, g->W, &w0, &w1);
                bool empty = h1 <= h0 || w1 <= w0 || !xp;
                T m = empty ? (T)0 : (T)-FLT_MAX; /* torchvision's start, also for f64 */
                for (int64_t h = h0; h < h1 && xp; h++)
                    for (int64_t w = w0; w < w1; w++)
                        if (xp[h * g->W + w] > m) {
                            m = xp[h * g->W + w];
                            best = h * g->W + w;
                        }
                y[ph * g->PW + pw] = m;
                if (am) am[ph * g->PW + pw] = best;
            }
    }
}

static void FN(roi_pool_bwd_planes)(void *vc, int64_t begin, int64_t end) {
    const roi_ctx *c = vc;
    const tg_roi_geom *g = c->g;
    const int64_t HW = g->H * g->W, PHW = g->PH * g->PW;
    for (int64_t p = begin; p < end; p++) { /* p = n * C + channel */
        T *dx = (T *)c->out + p * HW;
        memset(dx, 0, (size_t)HW * sizeof(T));
        for (int64_t k = 0; k < g->K; k++) {
            if (roi_batch(g, (double)((const T *)c->boxes)[k * 5]) != p / g->C) continue;
            int64_t o = (k * g->C + p % g->C) * PHW;
            const T *gp = (const T *)c->grad + o;
            const int64_t *am = c->argmax_in + o;
            for (int64_t i = 0; i < PHW; i++)
                if (am[i] >= 0 && am[i] < HW) dx[am[i]] += gp[i];
        }
    }
}

/* roi_align's box: its start, bin size and samples per bin (roi_align_kernel.cpp). */
typedef struct {
    int64_t batch, grid_h, grid_w;
    T start_h, start_w, bin_h, bin_w, count;
} FN(align_box);

static FN(align_box) FN(align_box_of)(const tg_roi_geom *g, const T *b) {
    FN(align_box) r;
    T s = (T)g->spatial_scale, off = g->aligned ? (T)0.5 : (T)0;
    r.batch = roi_batch(g, (double)b[0]);
    r.start_w = b[1] * s - off;
    r.start_h = b[2] * s - off;
    T rw = b[3] * s - off - r.start_w, rh = b[4] * s - off - r.start_h;
    if (!g->aligned) {
        rw = rw > (T)1 ? rw : (T)1;
        rh = rh > (T)1 ? rh : (T)1;
    }
    r.bin_h = rh / (T)g->PH;
    r.bin_w = rw / (T)g->PW;
    r.grid_h = g->sampling_ratio > 0 ? g->sampling_ratio : (int64_t)ROI_CEIL(rh / (T)g->PH);
    r.grid_w = g->sampling_ratio > 0 ? g->sampling_ratio : (int64_t)ROI_CEIL(rw / (T)g->PW);
    if (r.grid_h < 0) r.grid_h = 0; /* an inverted aligned box: no samples, as there */
    if (r.grid_w < 0) r.grid_w = 0;
    int64_t n = r.grid_h * r.grid_w;
    r.count = (T)(n > 1 ? n : 1);
    return r;
}

/* One bilinear sample at (y, x): the four corners' offsets in the plane and weights;
 * false (nothing to read) outside (-1, H) x (-1, W), torchvision's edge rule. */
static inline bool FN(bilinear)(const tg_roi_geom *g, T y, T x, int64_t *pos, T *wt) {
    if (y < (T)-1 || y > (T)g->H || x < (T)-1 || x > (T)g->W) return false;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= g->H - 1) yh = yl = g->H - 1, y = (T)yl;
    else yh = yl + 1;
    if (xl >= g->W - 1) xh = xl = g->W - 1, x = (T)xl;
    else xh = xl + 1;
    T ly = y - (T)yl, lx = x - (T)xl, hy = (T)1 - ly, hx = (T)1 - lx;
    pos[0] = yl * g->W + xl, pos[1] = yl * g->W + xh, pos[2] = yh * g->W + xl, pos[3] = yh * g->W + xh;
    wt[0] = hy * hx, wt[1] = hy * lx, wt[2] = ly * hx, wt[3] = ly * lx;
    return true;
}

/* Sample (iy, ix) of bin (ph, pw), as the kernels compute it. */
static inline T FN(sample_y)(const FN(align_box) *r, int64_t ph, int64_t iy) {
    return r->start_h + (T)ph * r->bin_h + (T)((float)iy + .5f) * r->bin_h / (T)r->grid_h;
}
static inline T FN(sample_x)(const FN(align_box) *r, int64_t pw, int64_t ix) {
    return r->start_w + (T)pw * r->bin_w + (T)((float)ix + .5f) * r->bin_w / (T)r->grid_w;
}

static void FN(roi_align_planes)(void *vc, int64_t begin, int64_t end) {
    const roi_ctx *c = vc;
    const tg_roi_geom *g = c->g;
    const int64_t HW = g->H * g->W, PHW = g->PH * g->PW;
    for (int64_t u = begin; u < end; u++) {
        FN(align_box) r = FN(align_box_of)(g, (const T *)c->boxes + u / g->C * 5);
        T *y = (T *)c->out + u * PHW;
        const T *xp = r.batch >= 0 ? (const T *)c->x + (r.batch * g->C + u % g->C) * HW : NULL;
        for (int64_t ph = 0; ph < g->PH; ph++)
            for (int64_t pw = 0; pw < g->PW; pw++) {
                T acc = 0;
                for (int64_t iy = 0; iy < r.grid_h && xp; iy++) {
                    T sy = FN(sample_y)(&r, ph, iy);
                    for (int64_t ix = 0; ix < r.grid_w; ix++) {
                        int64_t pos[4];
                        T wt[4];
                        if (!FN(bilinear)(g, sy, FN(sample_x)(&r, pw, ix), pos, wt)) continue;
                        acc += wt[0] * xp[pos[0]] + wt[1] * xp[pos[1]] + wt[2] * xp[pos[2]] + wt[3] * xp[pos[3]];
                    }
                }
                y[ph * g->PW + pw] = acc / r.count;
            }
    }
}

static void FN(roi_align_bwd_planes)(void *vc, int64_t begin, int64_t end) {
    const roi_ctx *c = vc;
    const tg_roi_geom *g = c->g;
    const int64_t HW = g->H * g->W, PHW = g->PH * g->PW;
    for (int64_t p = begin; p < end; p++) {
        T *dx = (T *)c->out + p * HW;
        memset(dx, 0, (size_t)HW * sizeof(T));
        for (int64_t k = 0; k < g->K; k++) {
            FN(align_box) r = FN(align_box_of)(g, (const T *)c->boxes + k * 5);
            if (r.batch != p / g->C) continue;
            const T *gp = (const T *)c->grad + (k * g->C + p % g->C) * PHW;
            for (int64_t ph = 0; ph < g->PH; ph++)
                for (int64_t pw = 0; pw < g->PW; pw++) {
                    T gv = gp[ph * g->PW + pw];
                    for (int64_t iy = 0; iy < r.grid_h; iy++) {
                        T sy = FN(sample_y)(&r, ph, iy);
                        for (int64_t ix = 0; ix < r.grid_w; ix++) {
                            int64_t pos[4];
                            T wt[4];
                            if (!FN(bilinear)(g, sy, FN(sample_x)(&r, pw, ix), pos, wt)) continue;
                            for (int q = 0; q < 4; q++) dx[pos[q]] += gv * wt[q] / r.count;
                        }
                    }
                }
        }
    }
}

#undef T
#undef FN
#undef CAT
#undef CAT_
#undef ROI_T
#undef ROI_S
#undef ROI_ROUND
#undef ROI_FLOOR
#undef ROI_CEIL
#endif
