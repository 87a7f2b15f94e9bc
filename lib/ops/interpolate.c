/* Resampling of (N, C, H, W) images as PyTorch's F.interpolate: nearest (its legacy
 * index floor(dst * scale)), nearest-exact and bilinear (align_corners or not), from a
 * size or a scale factor. Composed: the source indices and weights are computed on the
 * host with PyTorch's formulas and precision (see ATen/native/UpSample.h), then each
 * axis is one or two index_selects and a weighted sum, so it runs on every device and
 * its backward (scatter-adds) and second order come from those ops. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/ops/ops.h"

#define NAME "tg_interpolate"

/* One axis: in -> out, and the scale PyTorch's kernel gets (0: none, it uses in/out). */
typedef struct {
    int64_t in, out;
    double scale;
} axis_geom;

/* compute_scales_value<float>: 1/scale when given, else in/out, in f32. */
static float nearest_scale(const axis_geom *g) {
    return g->scale > 0 ? (float)(1.0 / g->scale) : (float)g->in / (float)g->out;
}

static void nearest_indices(const axis_geom *g, bool exact, int64_t *idx) {
    float s = nearest_scale(g);
    for (int64_t o = 0; o < g->out; o++) {
        int64_t i;
        if (exact) i = (int64_t)floorf((float)(((double)o + 0.5) * (double)s));
        else if (g->out == 2 * g->in) i = o >> 1; /* PyTorch's legacy special case */
        else i = (int64_t)floorf((float)o * s);
        idx[o] = i < g->in - 1 ? i : g->in - 1;
    }
}

/* area_pixel_compute_scale and compute_source_index_and_lambda: the ratio in the dtype
 * (f32 or f64), the source position in f64, the weights rounded to the dtype. */
static void linear_taps(const axis_geom *g, bool align, bool f32, int64_t *i0, int64_t *i1, double *l0, double *l1) {
    double ratio;
    if (align) ratio = g->out > 1 ? (f32 ? (double)((float)(g->in - 1) / (float)(g->out - 1))
                                         : (double)(g->in - 1) / (double)(g->out - 1)) : 0;
    else if (g->scale > 0) ratio = f32 ? (double)(float)(1.0 / g->scale) : 1.0 / g->scale;
    else ratio = f32 ? (double)((float)g->in / (float)g->out) : (double)g->in / (double)g->out;
    for (int64_t o = 0; o < g->out; o++) {
        double real = align ? ratio * (double)o : ratio * ((double)o + 0.5) - 0.5;
        if (real < 0) real = 0;
        int64_t a = (int64_t)real;
        double w1 = real - (double)a;
        if (f32) w1 = (float)w1;
        i0[o] = a;
        i1[o] = a + (a < g->in - 1 ? 1 : 0);
        l1[o] = w1;
        l0[o] = f32 ? (double)(1.0f - (float)w1) : 1.0 - w1;
    }
}

/* i32 indices where they fit (every source index is below the input's size): every
 * backend gathers with i32, and they are half the bytes. */
static tg_tensor *pick(tg_tensor *x, int axis, const int64_t *idx, int64_t n) {
    if (x->shape[axis] > INT32_MAX) return tg_index_select(x, axis, tg_from_i64(idx, TG_SHAPE(n), tg_dev(x)));
    int32_t *i32 = malloc((size_t)n * sizeof *i32);
    if (!i32) return tg_error_null(TG_ERR_NOMEM, NAME ": out of host memory for %lld indices", (long long)n);
    for (int64_t i = 0; i < n; i++) i32[i] = (int32_t)idx[i];
    tg_tensor *r = tg_index_select(x, axis, tg_from_i32(i32, TG_SHAPE(n), tg_dev(x)));
    free(i32);
    return r;
}

/* Weights along axis 2 broadcast as (n, 1), along axis 3 as (n). */
static tg_tensor *weights(tg_tensor *x, int axis, const double *w, int64_t n) {
    tg_shape s = axis == 2 ? TG_SHAPE(n, 1) : TG_SHAPE(n);
    return tg_cast(tg_from_f64(w, s, tg_dev(x)), x->dtype);
}

/* One axis resampled; an axis whose size does not change is left alone. */
static tg_tensor *resample_axis(tg_tensor *x, int axis, const axis_geom *g, const tg_interpolate_opts *o) {
    if (!x || g->in == g->out) return x;
    size_t n = (size_t)g->out;
    int64_t *idx = malloc(n * 2 * sizeof(int64_t));
    double *lam = malloc(n * 2 * sizeof(double));
    tg_tensor *r = NULL;
    if (!idx || !lam) {
        tg_error(TG_ERR_NOMEM, NAME ": out of host memory for %lld indices", (long long)g->out);
    } else if (o->mode != TG_INTERPOLATE_BILINEAR) {
        nearest_indices(g, o->mode == TG_INTERPOLATE_NEAREST_EXACT, idx);
        r = pick(x, axis, idx, g->out);
    } else {
        linear_taps(g, o->align_corners, x->dtype == TG_F32, idx, idx + n, lam, lam + n);
        r = tg_add(tg_mul(pick(x, axis, idx, g->out), weights(x, axis, lam, g->out)),
                   tg_mul(pick(x, axis, idx + n, g->out), weights(x, axis, lam + n, g->out)));
    }
    free(idx);
    free(lam);
    return r;
}

/* The options checked, and each axis' sizes and scale, as F.interpolate resolves them. */
static bool resolve(const tg_tensor *x, const tg_interpolate_opts *o, axis_geom g[2]) {
    if ((unsigned)o->mode > TG_INTERPOLATE_BILINEAR)
        return tg_error(TG_ERR_INVALID, NAME ": unknown mode %d", (int)o->mode), false;
    if (x->ndim != 4)
        return tg_error(TG_ERR_SHAPE, NAME ": expected a 4-D input (N, C, H, W), got %d dimensions", x->ndim), false;
    if (o->mode == TG_INTERPOLATE_BILINEAR && !tg_op_float(NAME, x)) return false;
    if (o->align_corners && o->mode != TG_INTERPOLATE_BILINEAR)
        return tg_error(TG_ERR_INVALID, NAME ": align_corners can only be set with bilinear"), false;
    bool has_size = o->size[0] || o->size[1], has_scale = o->scale_factor[0] || o->scale_factor[1];
    if (has_size == has_scale)
        return tg_error(TG_ERR_INVALID, has_size ? NAME ": give either size or scale_factor, not both"
                                                 : NAME ": either size or scale_factor must be given"), false;
    if (has_size && o->recompute_scale_factor)
        return tg_error(TG_ERR_INVALID, NAME ": recompute_scale_factor needs scale_factor, not size"), false;
    int64_t size[2] = { o->size[0], o->size[1] ? o->size[1] : o->size[0] };
    double sf[2] = { o->scale_factor[0], o->scale_factor[1] ? o->scale_factor[1] : o->scale_factor[0] };
    if (has_size && (size[0] <= 0 || size[1] <= 0))
        return tg_error(TG_ERR_INVALID, NAME ": size must be positive, got [%lld, %lld]", (long long)o->size[0],
                        (long long)o->size[1]), false;
    if (has_scale && !(sf[0] > 0 && sf[1] > 0 && isfinite(sf[0]) && isfinite(sf[1])))
        return tg_error(TG_ERR_INVALID, NAME ": scale_factor must be positive and finite, got [%g, %g]",
                        o->scale_factor[0], o->scale_factor[1]), false;
    for (int a = 0; a < 2; a++) {
        g[a].in = x->shape[2 + a];
        if (has_size) {
            g[a].out = size[a];
            g[a].scale = 0;
        } else { /* floor(in * scale), as PyTorch's cast */
            double v = floor((double)g[a].in * sf[a]);
            if (!(v <= (double)TG_MAX_NUMEL))
                return tg_error(TG_ERR_INVALID, NAME ": scale_factor %g makes an output size of %g, too large", sf[a],
                                v), false;
            g[a].out = (int64_t)v;
            g[a].scale = o->recompute_scale_factor ? 0 : sf[a];
        }
    }
    if (g[0].in <= 0 || g[1].in <= 0 || g[0].out <= 0 || g[1].out <= 0)
        return tg_error(TG_ERR_SHAPE, NAME ": input and output sizes should be greater than 0, but got input (H: %lld, "
                        "W: %lld) output (H: %lld, W: %lld)", (long long)g[0].in, (long long)g[1].in,
                        (long long)g[0].out, (long long)g[1].out), false;
    int64_t shape[4] = { x->shape[0], x->shape[1], g[0].out, g[1].out };
    return tg_op_shape_ok(NAME, 4, shape);
}

/* W first, then H: the order of PyTorch's sum, (x[h, w0] w0 + x[h, w1] w1) h0 + (...) h1. */
tg_tensor *tg_interpolate(tg_tensor *x, const tg_interpolate_opts *opts) {
    TG_API_ENTER(NAME);
    if (!tg_op_nonnull(NAME, "x", x)) return NULL;
    tg_interpolate_opts o = opts ? *opts : (tg_interpolate_opts){ 0 };
    axis_geom g[2];
    if (!resolve(x, &o, g)) return NULL;
    tg_tensor *r = resample_axis(resample_axis(x, 3, &g[1], &o), 2, &g[0], &o);
    return r == x ? tg_reshape(x, tg_shape_of(x)) : r;
}
