/* Pooling (tg_max_pool2d and _with_indices, tg_max_unpool2d, tg_avg_pool2d, the adaptive
 * forms): forward values, indices and first-order gradients against naive loops written
 * here from PyTorch's definitions, over a grid of random configurations (ceil_mode edge
 * windows, padding, dilation, stride != kernel, batch 1, one channel, odd sizes, ties
 * and NaN, non-contiguous inputs, unbatched inputs), f32 and f64; the CPU reference
 * kernels against the same loops; gradcheck for every op and option and gradgradcheck
 * for max and avg pooling; exact error messages; and, where python3 has torch, the
 * same numbers from PyTorch. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lib/cpu/pool.h"

static char g_what[200];
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

#define CHECK_GRAD_(checker, fn, ctx, ...)                                                                  \
    do {                                                                                                    \
        tg_tensor *in_[] = { __VA_ARGS__ };                                                                 \
        tg_gradcheck_report rep_;                                                                           \
        tg_status st_ = checker(fn, ctx, (int)(sizeof in_ / sizeof in_[0]), in_, NULL, &rep_);              \
        if (st_ != TG_OK) FAIL_("[%s] %s failed: %s (%s)", g_what, #checker, rep_.message, tg_last_error()); \
    } while (0)
#define GRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradcheck, fn, ctx, __VA_ARGS__)
#define GRADGRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradgradcheck, fn, ctx, __VA_ARGS__)

static tg_device *dev(void) { return tg_test_device(); }

typedef struct cfg cfg;
static bool shape_ok_(tg_tensor *t, const cfg *c);
static bool shape_eq_(tg_tensor *t, int64_t oh, int64_t ow);

static uint64_t g_rng = 0x243F6A8885A308D3u;
static uint64_t rnd_u(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd_u() % (uint64_t)(hi - lo + 1)); }

/* Whether the device under test has pooling kernels: cases that need them skip on a
 * device without. */
static bool pooling_here(void) {
    tg_clear_error();
    tg_tensor *y = tg_max_pool2d(tg_zeros(TG_F32, TG_SHAPE(1, 1, 2, 2), dev()), &(tg_max_pool2d_opts){ .kernel_size = 2 });
    return y != NULL;
}
#define NEED_POOLING()                                                           \
    do {                                                                         \
        if (!pooling_here()) SKIP("%s has no pooling kernels", tg_device_name(dev())); \
    } while (0)

/* ------------------------------------------------------------------ the naive loops */

struct cfg {
    int N, C, H, W, k[2], s[2], p[2], d[2];
    bool ceil_mode, count_include_pad, adaptive;
    int divisor, OH, OW;
};

/* The notes' O = (I - K + 2P)/S + 1 with the dilated K, rounded down or up; with ceil_mode
 * a last window starting at or past I + P (entirely in the right padding) is dropped. */
static int osize(int in, int k, int s, int p, int d, bool ceil_mode) {
    double q = (double)(in - (d * (k - 1) + 1) + 2 * p) / s;
    int o = (int)(ceil_mode ? ceil(q) : floor(q)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

/* Adaptive window of output o: [floor(o I / O), ceil((o + 1) I / O)). */
static void awin(int o, int in, int out, int *lo, int *hi) {
    *lo = (int)floor((double)o * in / out);
    *hi = (int)ceil((double)(o + 1) * in / out);
}

/* y (N, C, OH, OW), idx for max; x dense NCHW. */
static void naive_max(const cfg *c, const double *x, double *y, int64_t *idx) {
    for (int pl = 0; pl < c->N * c->C; pl++)
        for (int oh = 0; oh < c->OH; oh++)
            for (int ow = 0; ow < c->OW; ow++) {
                int h0, h1, w0, w1, dh = c->d[0], dw = c->d[1];
                if (c->adaptive) {
                    awin(oh, c->H, c->OH, &h0, &h1);
                    awin(ow, c->W, c->OW, &w0, &w1);
                    dh = dw = 1;
                } else {
                    h0 = oh * c->s[0] - c->p[0], h1 = h0 + (c->k[0] - 1) * dh + 1;
                    w0 = ow * c->s[1] - c->p[1], w1 = w0 + (c->k[1] - 1) * dw + 1;
                    while (h0 < 0) h0 += dh; /* the first tap at or past 0 */
                    while (w0 < 0) w0 += dw;
                }
                double m = -INFINITY;
                int64_t mi = (int64_t)h0 * c->W + w0;
                for (int h = h0; h < h1 && h < c->H; h += dh)
                    for (int w = w0; w < w1 && w < c->W; w += dw) {
                        double v = x[(int64_t)pl * c->H * c->W + h * c->W + w];
                        if (v > m || isnan(v)) m = v, mi = (int64_t)h * c->W + w;
                    }
                int64_t o = ((int64_t)pl * c->OH + oh) * c->OW + ow;
                y[o] = m;
                idx[o] = mi;
            }
}

static void naive_avg(const cfg *c, const double *x, double *y, const double *g, double *dx) {
    for (int pl = 0; pl < c->N * c->C; pl++)
        for (int oh = 0; oh < c->OH; oh++)
            for (int ow = 0; ow < c->OW; ow++) {
                int h0, h1, w0, w1;
                if (c->adaptive) {
                    awin(oh, c->H, c->OH, &h0, &h1);
                    awin(ow, c->W, c->OW, &w0, &w1);
                } else {
                    h0 = oh * c->s[0] - c->p[0], h1 = h0 + c->k[0];
                    w0 = ow * c->s[1] - c->p[1], w1 = w0 + c->k[1];
                }
                double sum = 0;
                int in = 0, padded = 0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        if (h < c->H + c->p[0] && w < c->W + c->p[1]) padded++;
                        if (h < 0 || w < 0 || h >= c->H || w >= c->W) continue;
                        in++;
                        sum += x[(int64_t)pl * c->H * c->W + h * c->W + w];
                    }
                double div = c->divisor ? c->divisor : c->count_include_pad && !c->adaptive ? padded : in;
                int64_t o = ((int64_t)pl * c->OH + oh) * c->OW + ow;
                if (y) y[o] = sum / div;
                if (dx)
                    for (int h = h0 < 0 ? 0 : h0; h < h1 && h < c->H; h++)
                        for (int w = w0 < 0 ? 0 : w0; w < w1 && w < c->W; w++)
                            dx[(int64_t)pl * c->H * c->W + h * c->W + w] += g[o] / div;
            }
}

/* ------------------------------------------------------------------ running one case */

static bool same(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= tol * (1 + fabs(b));
}

static tg_max_pool2d_opts max_opts(const cfg *c) {
    return (tg_max_pool2d_opts){ .kernel_size_hw = { c->k[0], c->k[1] }, .stride_hw = { c->s[0], c->s[1] },
                                 .padding_hw = { c->p[0], c->p[1] }, .dilation_hw = { c->d[0], c->d[1] },
                                 .ceil_mode = c->ceil_mode };
}

static tg_avg_pool2d_opts avg_opts(const cfg *c) {
    return (tg_avg_pool2d_opts){ .kernel_size_hw = { c->k[0], c->k[1] }, .stride_hw = { c->s[0], c->s[1] },
                                 .padding_hw = { c->p[0], c->p[1] }, .ceil_mode = c->ceil_mode,
                                 .count_include_pad = TG_SOME(c->count_include_pad), .divisor_override = c->divisor };
}

/* Random host input: small integers (many ties), sometimes NaNs (one per 48 values). */
static double *host_input(int64_t n, bool nan) {
    double *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (double)rnd_in(-4, 4) * 0.5;
    for (int64_t k = 0; nan && n > 2 && k <= n / 48; k++) x[rnd_u() % (uint64_t)n] = NAN; /* some windows hold two */
    return x;
}

/* Runs max (or avg) pooling on cfg through the op, forward and backward, and compares
 * with the naive loops. transposed: the input is a non-contiguous view. */
static void check_case(int *tg_failed_, const cfg *c, bool max, tg_dtype dt, bool transposed, bool nan) {
    int64_t nx = (int64_t)c->N * c->C * c->H * c->W, ny = (int64_t)c->N * c->C * c->OH * c->OW;
    double *x = host_input(nx, nan && max), *y = malloc((size_t)ny * sizeof *y), *g = malloc((size_t)ny * sizeof *g);
    double *dx = calloc((size_t)nx, sizeof *dx);
    int64_t *idx = malloc((size_t)ny * sizeof *idx);
    for (int64_t i = 0; i < ny; i++) g[i] = (double)rnd_in(-8, 8) * 0.25;
    if (max) {
        naive_max(c, x, y, idx);
        for (int64_t i = 0; i < ny; i++)
            if (idx[i] < (int64_t)c->H * c->W) dx[i / (c->OH * c->OW) * c->H * c->W + idx[i]] += g[i];
    } else
        naive_avg(c, x, y, g, dx);
    tg_scope_begin();
    tg_shape xs = TG_SHAPE(c->N, c->C, c->H, c->W);
    tg_tensor *host = tg_from_f64(x, xs, dev());
    tg_tensor *leaf = tg_param(tg_cast(transposed ? tg_contiguous(tg_transpose(host, 2, 3)) : host, dt));
    tg_tensor *xin = transposed ? tg_transpose(leaf, 2, 3) : leaf, *ti = NULL, *ty;
    if (max) {
        tg_max_pool2d_opts o = max_opts(c);
        ty = c->adaptive ? tg_adaptive_max_pool2d_with_indices(xin, c->OH, c->OW, &ti)
                         : tg_max_pool2d_with_indices(xin, &o, &ti);
    } else {
        tg_avg_pool2d_opts o = avg_opts(c);
        ty = c->adaptive ? tg_adaptive_avg_pool2d(xin, c->OH, c->OW) : tg_avg_pool2d(xin, &o);
    }
    double tol = dt == TG_F32 ? 1e-5 : 1e-12;
    double *vy = ty ? tg_test_values(ty) : NULL, *vi = ti ? tg_test_values(ti) : NULL;
    if (!vy || (max && !vi)) {
        FAIL_("[%s] the op failed: %s", g_what, tg_last_error());
    } else {
        CHECK(shape_ok_(ty, c));
        int bad = 0;
        for (int64_t i = 0; i < ny && bad < 3; i++)
            if (!same(vy[i], y[i], tol) || (max && (int64_t)vi[i] != idx[i])) {
                FAIL_("[%s] output %lld: got %g (index %g), expected %g (index %lld)", g_what, (long long)i, vy[i],
                      max ? vi[i] : 0.0, y[i], max ? (long long)idx[i] : 0LL);
                bad++;
            }
        if (max && !c->adaptive) { /* the values-only forward (its own path) gives the same values */
            tg_max_pool2d_opts o = max_opts(c);
            bool prev = tg_set_grad_enabled(false); /* with grad on, the op keeps the indices */
            double *vv = tg_test_values(tg_max_pool2d(xin, &o));
            tg_set_grad_enabled(prev);
            for (int64_t i = 0; i < ny && bad < 3; i++)
                if (!vv || !same(vv[i], y[i], tol)) {
                    FAIL_("[%s] values-only output %lld: got %g, expected %g", g_what, (long long)i,
                          vv ? vv[i] : NAN, y[i]);
                    bad++;
                }
            free(vv);
        }
        tg_tensor *tg = tg_cast(tg_from_f64(g, tg_shape_of(ty), dev()), dt);
        if (tg_backward_ex(ty, tg, NULL) != TG_OK) {
            FAIL_("[%s] backward failed: %s", g_what, tg_last_error());
        } else {
            tg_tensor *gx = tg_grad(leaf);
            double *vg = tg_test_values(transposed ? tg_transpose(gx, 2, 3) : gx);
            for (int64_t i = 0; vg && i < nx && bad < 3; i++)
                if (!same(vg[i], dx[i], tol * 4)) {
                    FAIL_("[%s] dx %lld: got %g, expected %g", g_what, (long long)i, vg[i], dx[i]);
                    bad++;
                }
            free(vg);
        }
    }
    free(vy);
    free(vi);
    tg_scope_end();
    free(x), free(y), free(g), free(dx), free(idx);
}

static bool shape_ok_(tg_tensor *t, const cfg *c) {
    tg_shape s = tg_shape_of(t);
    return s.ndim == 4 && s.dims[0] == c->N && s.dims[1] == c->C && s.dims[2] == c->OH && s.dims[3] == c->OW;
}

/* A random configuration; false when it has no valid output (then the op must fail). */
static bool random_cfg(cfg *c, bool max) {
    memset(c, 0, sizeof *c);
    c->N = rnd_in(1, 2), c->C = rnd_in(1, 3), c->H = rnd_in(1, 11), c->W = rnd_in(1, 11);
    for (int a = 0; a < 2; a++) {
        c->k[a] = rnd_in(1, 4), c->s[a] = rnd_in(1, 4), c->p[a] = rnd_in(0, c->k[a] / 2);
        c->d[a] = max ? rnd_in(1, 3) : 1;
    }
    c->ceil_mode = rnd_u() & 1;
    c->count_include_pad = rnd_u() & 1;
    c->divisor = !max && rnd_in(0, 4) == 0 ? rnd_in(1, 5) : 0;
    c->OH = osize(c->H, c->k[0], c->s[0], c->p[0], c->d[0], c->ceil_mode);
    c->OW = osize(c->W, c->k[1], c->s[1], c->p[1], c->d[1], c->ceil_mode);
    return c->OH >= 1 && c->OW >= 1;
}

static void describe(const cfg *c, const char *op, tg_dtype dt) {
    WHAT("%s %s N%d C%d %dx%d k%dx%d s%dx%d p%dx%d d%dx%d ceil%d cip%d div%d -> %dx%d", op, tg_dtype_name(dt), c->N,
         c->C, c->H, c->W, c->k[0], c->k[1], c->s[0], c->s[1], c->p[0], c->p[1], c->d[0], c->d[1], c->ceil_mode,
         c->count_include_pad, c->divisor, c->OH, c->OW);
}

static void grid(int *tg_failed_, bool max) {
    int run = 0, refused = 0;
    for (int t = 0; t < 400; t++) {
        cfg c;
        bool ok = random_cfg(&c, max);
        tg_dtype dt = t % 2 ? TG_F32 : TG_F64;
        describe(&c, max ? "max" : "avg", dt);
        if (!ok) { /* the op refuses it */
            tg_max_pool2d_opts mo = max_opts(&c);
            tg_avg_pool2d_opts ao = avg_opts(&c);
            tg_tensor *x = tg_zeros(dt, TG_SHAPE(c.N, c.C, c.H, c.W), dev());
            tg_clear_error();
            tg_tensor *y = max ? tg_max_pool2d(x, &mo) : tg_avg_pool2d(x, &ao);
            if (y || !strstr(tg_last_error(), "is too small")) FAIL_("[%s] accepted: %s", g_what, tg_last_error());
            refused++;
            continue;
        }
        check_case(tg_failed_, &c, max, dt, t % 3 == 0, t % 5 == 0);
        run++;
    }
    CHECK(run > 200 && refused > 5);
}

TEST(max_pool2d_grid) {
    NEED_POOLING();
    grid(tg_failed_, true);
}

/* The 2x2 stride-2 window has paths of its own on the CPU (a plane loop, and SIMD plane
 * kernels of 16 outputs a vector): every size parity, rows shorter and longer than a
 * vector and not a multiple of it, with ceil_mode's clipped last window, ties and NaNs,
 * both dtypes. */
TEST(max_pool2d_2x2_stride_2) {
    NEED_POOLING();
    for (int t = 0; t < 128; t++) {
        int w = t < 64 ? 2 + (t / 7) % 9 : 30 + (t * 5) % 41;
        cfg c = { .N = 1 + t % 2, .C = 1 + t % 3, .H = 2 + t % 7, .W = w, .ceil_mode = t % 4 == 3 };
        for (int a = 0; a < 2; a++) c.k[a] = 2, c.s[a] = 2, c.d[a] = 1;
        c.OH = osize(c.H, 2, 2, 0, 1, c.ceil_mode), c.OW = osize(c.W, 2, 2, 0, 1, c.ceil_mode);
        tg_dtype dt = t % 2 ? TG_F32 : TG_F64;
        describe(&c, "max", dt);
        check_case(tg_failed_, &c, true, dt, t % 3 == 0, t % 5 < 2);
    }
}

/* Windows other than 2x2 with a stride of 1 or 2 along W have a SIMD row kernel on the
 * CPU (16 outputs a vector, masked loads at the padded edges): rows of one to five
 * vectors and not a multiple of one, paddings, dilations, strides along H, ceil_mode,
 * count_include_pad and divisor_override, ties and NaNs, mostly f32 (the kernel's
 * dtype). And global average pooling (its own plane path) over planes of up to 70x70. */
TEST(wide_rows) {
    NEED_POOLING();
    int run = 0;
    for (int t = 0; t < 160; t++) {
        bool max = t % 2;
        cfg c = { .N = 1, .C = 1 + t % 2, .H = rnd_in(1, 9), .W = rnd_in(14, 90), .ceil_mode = rnd_u() & 1 };
        c.count_include_pad = rnd_u() & 1, c.divisor = !max && t % 7 == 0 ? rnd_in(1, 9) : 0;
        for (int a = 0; a < 2; a++) {
            c.k[a] = rnd_in(1, 5), c.s[a] = a ? rnd_in(1, 2) : rnd_in(1, 3), c.p[a] = rnd_in(0, c.k[a] / 2);
            c.d[a] = max ? rnd_in(1, 3) : 1;
        }
        c.OH = osize(c.H, c.k[0], c.s[0], c.p[0], c.d[0], c.ceil_mode);
        c.OW = osize(c.W, c.k[1], c.s[1], c.p[1], c.d[1], c.ceil_mode);
        if (c.OH < 1 || c.OW < 1) continue;
        tg_dtype dt = t % 8 == 0 ? TG_F64 : TG_F32;
        describe(&c, max ? "wide max" : "wide avg", dt);
        check_case(tg_failed_, &c, max, dt, t % 5 == 0, t % 3 == 0);
        run++;
    }
    CHECK(run > 100);
    for (int t = 0; t < 12; t++) {
        cfg c = { .N = 1 + t % 2, .C = 1 + t % 3, .H = rnd_in(1, 70), .W = rnd_in(1, 70), .adaptive = true };
        c.OH = c.OW = 1;
        tg_dtype dt = t % 3 == 0 ? TG_F64 : TG_F32;
        describe(&c, "global avg", dt);
        check_case(tg_failed_, &c, false, dt, t % 2 == 0, false);
    }
}

TEST(avg_pool2d_grid) {
    NEED_POOLING();
    grid(tg_failed_, false);
}

TEST(adaptive_grid) {
    NEED_POOLING();
    for (int t = 0; t < 120; t++) {
        cfg c = { .N = rnd_in(1, 2), .C = rnd_in(1, 2), .H = rnd_in(1, 13), .W = rnd_in(1, 13), .adaptive = true };
        c.OH = t % 7 == 0 ? 1 : rnd_in(1, c.H + 2), c.OW = t % 7 == 0 ? 1 : rnd_in(1, c.W + 2);
        bool max = t % 2;
        tg_dtype dt = t % 4 < 2 ? TG_F64 : TG_F32;
        describe(&c, max ? "adaptive max" : "adaptive avg", dt);
        check_case(tg_failed_, &c, max, dt, t % 3 == 0, t % 5 == 0);
    }
}

/* The hand-checked edge: ceil_mode keeps a last window that starts inside the input and
 * drops one that would start in the right padding. */
TEST(ceil_mode_edges) {
    NEED_POOLING();
    double v[25];
    for (int i = 0; i < 25; i++) v[i] = i;
    tg_tensor *x = tg_from_f64(v, TG_SHAPE(1, 1, 5, 5), dev());
    tg_tensor *y = tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2, .ceil_mode = true });
    double *r = tg_test_values(y);
    CHECK(shape_eq_(y, 3, 3) && r && r[0] == 6 && r[2] == 9 && r[6] == 21 && r[8] == 24);
    free(r);
    y = tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2, .padding = 1, .ceil_mode = true });
    CHECK(shape_eq_(y, 3, 3)); /* ceil(5 / 2) + 1 = 4 windows, but the 4th would start at 6 >= 5 + 1: dropped */
    y = tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2, .ceil_mode = true });
    r = tg_test_values(y);
    /* the last window (rows 4, cols 4) holds one element: count_include_pad counts only up to
     * the padded input, which has no right padding here, so the divisor is 1 */
    CHECK(shape_eq_(y, 3, 3) && r && r[8] == 24 && r[2] == (4 + 9) / 2.0);
    free(r);
}

static bool shape_eq_(tg_tensor *t, int64_t oh, int64_t ow) {
    tg_shape s = tg_shape_of(t);
    return t && s.ndim == 4 && s.dims[2] == oh && s.dims[3] == ow;
}

/* Ties keep the first maximum, NaN propagates with the last NaN's index. */
TEST(ties_and_nan) {
    NEED_POOLING();
    double v[8] = { 3, 1, 3, 2, 1, NAN, 0, NAN };
    tg_tensor *ti, *y = tg_max_pool2d_with_indices(tg_from_f64(v, TG_SHAPE(1, 2, 1, 4), dev()),
                                                   &(tg_max_pool2d_opts){ .kernel_size_hw = { 1, 4 } }, &ti);
    double *r = tg_test_values(y), *ri = tg_test_values(ti);
    CHECK(r && ri && r[0] == 3 && ri[0] == 0 && isnan(r[1]) && ri[1] == 3);
    free(r), free(ri);
}

TEST(unbatched) {
    NEED_POOLING();
    tg_manual_seed(3);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 5, 6), dev()), *i3, *i4;
    tg_tensor *x4 = tg_unsqueeze(x, 0);
    tg_max_pool2d_opts o = { .kernel_size = 3, .stride = 2, .padding = 1 };
    tg_tensor *y3 = tg_max_pool2d_with_indices(x, &o, &i3), *y4 = tg_max_pool2d_with_indices(x4, &o, &i4);
    CHECK(tg_shape_of(y3).ndim == 3 && tg_shape_of(i3).ndim == 3);
    CHECK(tg_item(tg_sum(tg_abs(tg_sub(y3, tg_squeeze(y4, 0))), TG_ALL, false)) == 0);
    tg_tensor *u = tg_max_unpool2d(y3, i3, &(tg_max_unpool2d_opts){ .kernel_size = 3, .stride = 2, .padding = 1,
                                                                     .output_size = { 5, 6 } });
    CHECK(u && tg_shape_of(u).ndim == 3 && tg_shape_of(u).dims[1] == 5 && tg_shape_of(u).dims[2] == 6);
    CHECK(tg_shape_of(tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2 })).ndim == 3);
    CHECK(tg_shape_of(tg_adaptive_avg_pool2d(x, 1, 1)).ndim == 3);
    tg_tensor *g = tg_adaptive_avg_pool2d(x4, 1, 1);
    CHECK_NEAR(tg_item(tg_sum(g, TG_ALL, false)), tg_item(tg_sum(tg_mean(x, TG_AXES(1, 2), false), TG_ALL, false)),
               1e-12);
}

/* Unpool against the naive scatter (a repeated index keeps the last value), both output
 * sizes, then the indices' error. */
TEST(max_unpool2d_values) {
    NEED_POOLING();
    for (int t = 0; t < 40; t++) {
        int N = rnd_in(1, 2), C = rnd_in(1, 2), IH = rnd_in(1, 4), IW = rnd_in(1, 4), k = rnd_in(1, 3), s = rnd_in(1, 3);
        int p = rnd_in(0, k / 2), OH = (IH - 1) * s - 2 * p + k, OW = (IW - 1) * s - 2 * p + k;
        if (OH < 1 || OW < 1) continue;
        if (t % 3 == 0) OH += s > 1 ? 1 : 0;
        int64_t nx = (int64_t)N * C * IH * IW, no = (int64_t)N * C * OH * OW;
        double *x = host_input(nx, false), *ref = calloc((size_t)no, sizeof *ref);
        int64_t *idx = malloc((size_t)nx * sizeof *idx);
        for (int64_t i = 0; i < nx; i++) {
            idx[i] = (int64_t)(rnd_u() % (uint64_t)(OH * OW));
            ref[i / (IH * IW) * OH * OW + idx[i]] = x[i];
        }
        WHAT("unpool %d: %dx%d -> %dx%d k%d s%d p%d", t, IH, IW, OH, OW, k, s, p);
        tg_tensor *y = tg_max_unpool2d(tg_from_f64(x, TG_SHAPE(N, C, IH, IW), dev()),
                                       tg_from_i64(idx, TG_SHAPE(N, C, IH, IW), dev()),
                                       &(tg_max_unpool2d_opts){ .kernel_size = k, .stride = s, .padding = p,
                                                                .output_size = { OH, OW } });
        double *v = y ? tg_test_values(y) : NULL;
        if (!v) FAIL_("[%s] failed: %s", g_what, tg_last_error());
        for (int64_t i = 0; v && i < no; i++)
            if (v[i] != ref[i]) {
                FAIL_("[%s] element %lld: %g vs %g", g_what, (long long)i, v[i], ref[i]);
                break;
            }
        free(v), free(x), free(ref), free(idx);
    }
}

/* ------------------------------------------------------------------ the CPU reference */

/* tg_cpu_pool2d_ref and _backward_ref against the naive loops on the same grid. */
TEST(cpu_reference_kernels) {
    if (strcmp(tg_device_name(dev()), "cpu") != 0) return; /* the CPU's own kernels: its run checks them */
    for (int t = 0; t < 200; t++) {
        cfg c;
        bool max = t % 2, adaptive = t % 5 == 0;
        if (adaptive) {
            c = (cfg){ .N = rnd_in(1, 2), .C = rnd_in(1, 2), .H = rnd_in(1, 9), .W = rnd_in(1, 9), .adaptive = true };
            c.OH = rnd_in(1, c.H + 1), c.OW = rnd_in(1, c.W + 1);
        } else if (!random_cfg(&c, max))
            continue;
        describe(&c, max ? "ref max" : "ref avg", TG_F64);
        tg_pool2d_geom g = { .N = c.N, .C = c.C, .H = c.H, .W = c.W, .OH = c.OH, .OW = c.OW,
                             .count_include_pad = c.count_include_pad, .adaptive = c.adaptive, .divisor = c.divisor };
        for (int a = 0; a < 2; a++)
            g.kernel[a] = c.k[a], g.stride[a] = c.s[a], g.pad[a] = c.p[a], g.dilation[a] = adaptive ? 1 : c.d[a];
        if (adaptive) memset(c.d, 0, sizeof c.d);
        int64_t nx = (int64_t)c.N * c.C * c.H * c.W, ny = (int64_t)c.N * c.C * c.OH * c.OW;
        double *x = host_input(nx, t % 3 == 0), *y = malloc((size_t)ny * 8), *gr = malloc((size_t)ny * 8);
        double *dx = calloc((size_t)nx, 8), *got = malloc((size_t)(nx > ny ? nx : ny) * 8);
        int64_t *idx = malloc((size_t)ny * 8), *gi = malloc((size_t)ny * 8);
        for (int64_t i = 0; i < ny; i++) gr[i] = rnd_in(-8, 8) * 0.25;
        if (max) {
            naive_max(&c, x, y, idx);
            for (int64_t i = 0; i < ny; i++)
                if (idx[i] < (int64_t)c.H * c.W) dx[i / (c.OH * c.OW) * c.H * c.W + idx[i]] += gr[i];
        } else
            naive_avg(&c, x, y, gr, dx);
        tg_scope_begin();
        tg_shape xs = TG_SHAPE(c.N, c.C, c.H, c.W), ys = TG_SHAPE(c.N, c.C, c.OH, c.OW);
        tg_tensor *tx = tg_from_f64(x, xs, dev()), *ty = tg_empty(TG_F64, ys, dev()), *ti = tg_empty(TG_I64, ys, dev());
        tg_tensor *tdx = tg_empty(TG_F64, xs, dev());
        tg_pool_kind kind = max ? TG_POOL_MAX : TG_POOL_AVG;
        CHECK(tg_cpu_pool2d_ref(kind, ty, max ? ti : NULL, tx, &g) == TG_OK);
        tg_copy_to_host(ty, got, (size_t)ny * 8);
        if (max) tg_copy_to_host(ti, gi, (size_t)ny * 8);
        for (int64_t i = 0; i < ny; i++)
            if (!same(got[i], y[i], 1e-12) || (max && gi[i] != idx[i])) {
                FAIL_("[%s] ref output %lld: %g vs %g", g_what, (long long)i, got[i], y[i]);
                break;
            }
        if (max) tg_copy_(ti, tg_from_i64(idx, ys, dev()));
        CHECK(tg_cpu_pool2d_backward_ref(kind, tdx, tg_from_f64(gr, ys, dev()), max ? ti : NULL, &g) == TG_OK);
        tg_copy_to_host(tdx, got, (size_t)nx * 8);
        for (int64_t i = 0; i < nx; i++)
            if (!same(got[i], dx[i], 1e-12)) {
                FAIL_("[%s] ref dx %lld: %g vs %g", g_what, (long long)i, got[i], dx[i]);
                break;
            }
        tg_scope_end();
        free(x), free(y), free(gr), free(dx), free(got), free(idx), free(gi);
    }
}

/* ------------------------------------------------------------------ gradcheck */

typedef struct {
    int op; /* 0 max, 1 avg, 2 adaptive max, 3 adaptive avg, 4 unpool of max */
    tg_max_pool2d_opts mo;
    tg_avg_pool2d_opts ao;
    int64_t oh, ow;
} gc_ctx;

static tg_tensor *gc_fn(tg_tensor *const *in, void *vctx) {
    gc_ctx *c = vctx;
    tg_tensor *x = in[0], *idx;
    switch (c->op) {
    case 0: return tg_max_pool2d(x, &c->mo);
    case 1: return tg_avg_pool2d(x, &c->ao);
    case 2: return tg_adaptive_max_pool2d(x, c->oh, c->ow);
    case 3: return tg_adaptive_avg_pool2d(x, c->oh, c->ow);
    default: {
        tg_tensor *y = tg_max_pool2d_with_indices(tg_detach(x), &c->mo, &idx);
        /* unpool of a differentiable input at fixed indices, squared so second order is not 0 */
        (void)y;
        tg_tensor *z = tg_mul(tg_max_pool2d(x, &c->mo), tg_max_pool2d(x, &c->mo));
        return tg_max_unpool2d(z, idx, &(tg_max_unpool2d_opts){ .kernel_size_hw = { c->mo.kernel_size_hw[0],
                                                                                   c->mo.kernel_size_hw[1] },
                                                                .stride_hw = { c->mo.stride_hw[0], c->mo.stride_hw[1] },
                                                                .padding_hw = { c->mo.padding_hw[0], c->mo.padding_hw[1] } });
    }
    }
}

/* Distinct values in a scrambled order (no near ties for the max). */
static tg_tensor *distinct(tg_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    int64_t mul = 7;
    while (n % mul == 0) mul += 2;
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = 0.07 * (double)((i * mul + 3) % n) - 1;
    tg_tensor *t = tg_from_f64(v, s, dev());
    free(v);
    return t;
}

TEST(gradcheck_every_option) {
    NEED_POOLING();
    tg_max_pool2d_opts mos[] = {
        { .kernel_size = 2 },
        { .kernel_size = 3, .stride = 2, .padding = 1 },
        { .kernel_size = 3, .stride = 1, .dilation = 2, .padding = 1 },
        { .kernel_size_hw = { 2, 3 }, .stride_hw = { 1, 2 }, .ceil_mode = true },
        { .kernel_size = 2, .stride = 3, .padding = 1, .ceil_mode = true },
    };
    tg_avg_pool2d_opts aos[] = {
        { .kernel_size = 2 },
        { .kernel_size = 3, .stride = 2, .padding = 1 },
        { .kernel_size = 3, .stride = 2, .padding = 1, .count_include_pad = TG_SOME(false) },
        { .kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = TG_SOME(false) },
        { .kernel_size_hw = { 2, 3 }, .stride_hw = { 1, 2 }, .ceil_mode = true, .divisor_override = 5 },
    };
    tg_shape shapes[] = { TG_SHAPE(2, 2, 5, 7), TG_SHAPE(1, 1, 6, 5), TG_SHAPE(3, 4, 4) };
    for (int si = 0; si < 3; si++)
        for (int i = 0; i < 5; i++) {
            gc_ctx c = { .op = 0, .mo = mos[i] };
            WHAT("max_pool2d opts %d shape %d", i, si);
            GRADCHECK(gc_fn, &c, tg_param(distinct(shapes[si])));
            c = (gc_ctx){ .op = 1, .ao = aos[i] };
            WHAT("avg_pool2d opts %d shape %d", i, si);
            GRADCHECK(gc_fn, &c, tg_param(distinct(shapes[si])));
        }
    int64_t outs[][2] = { { 1, 1 }, { 2, 3 }, { 3, 2 }, { 4, 4 } };
    for (int i = 0; i < 4; i++) {
        gc_ctx c = { .op = 2, .oh = outs[i][0], .ow = outs[i][1] };
        WHAT("adaptive max %lldx%lld", (long long)outs[i][0], (long long)outs[i][1]);
        GRADCHECK(gc_fn, &c, tg_param(distinct(TG_SHAPE(2, 2, 5, 7))));
        c.op = 3;
        WHAT("adaptive avg %lldx%lld", (long long)outs[i][0], (long long)outs[i][1]);
        GRADCHECK(gc_fn, &c, tg_param(distinct(TG_SHAPE(2, 2, 5, 7))));
    }
    gc_ctx u = { .op = 4, .mo = { .kernel_size_hw = { 2, 2 }, .stride_hw = { 2, 2 } } };
    WHAT("max_unpool2d");
    GRADCHECK(gc_fn, &u, tg_param(distinct(TG_SHAPE(2, 2, 4, 6))));
    /* a non-contiguous input */
    gc_ctx c = { .op = 0, .mo = mos[1] };
    WHAT("max_pool2d of a transposed view");
    GRADCHECK(gc_fn, &c, tg_transpose(tg_param(distinct(TG_SHAPE(2, 2, 7, 5))), 2, 3));
}

/* Second order: max pooling's backward is a scatter at the indices, whose own gradient
 * is a gather; avg's backward is avg_pool2d_backward, whose gradient is avg_pool2d. A
 * square makes the second derivative non-zero. */
static tg_tensor *gg_fn(tg_tensor *const *in, void *vctx) {
    tg_tensor *y = gc_fn(in, vctx);
    return tg_mul(y, y);
}

TEST(gradgradcheck_max_and_avg) {
    NEED_POOLING();
    gc_ctx cs[] = {
        { .op = 0, .mo = { .kernel_size = 2 } },
        { .op = 0, .mo = { .kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true } },
        { .op = 0, .mo = { .kernel_size = 2, .dilation = 2, .stride = 1 } },
        { .op = 1, .ao = { .kernel_size = 2 } },
        { .op = 1, .ao = { .kernel_size = 3, .stride = 2, .padding = 1, .count_include_pad = TG_SOME(false),
                           .ceil_mode = true } },
        { .op = 1, .ao = { .kernel_size = 3, .stride = 1, .padding = 1, .divisor_override = 4 } },
        { .op = 2, .oh = 2, .ow = 3 },
        { .op = 3, .oh = 3, .ow = 2 },
        { .op = 4, .mo = { .kernel_size_hw = { 2, 2 }, .stride_hw = { 2, 2 } } },
    };
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++) {
        WHAT("gradgradcheck case %d", i);
        GRADGRADCHECK(gg_fn, &cs[i], tg_param(distinct(TG_SHAPE(2, 2, 5, 6))));
    }
}

/* ------------------------------------------------------------------ errors */

TEST(error_messages) {
    NEED_POOLING();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(1, 1, 4, 4), dev()), *ti;
    CHECK_ERROR(tg_max_pool2d(x, NULL), "tg_max_pool2d: kernel_size must be positive, got (0, 0)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = -2 }),
                "tg_max_pool2d: kernel_size must be positive, got (-2, -2)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size_hw = { 2, 0 } }),
                "tg_max_pool2d: kernel_size must be positive, got (2, 0)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2, .stride_hw = { 1, -1 } }),
                "tg_max_pool2d: stride must be positive, got (1, -1)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2, .dilation = -1 }),
                "tg_max_pool2d: dilation must be positive, got (-1, -1)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 3, .padding = 2 }),
                "tg_max_pool2d: padding must be at most half the kernel size, got padding (2, 2) for kernel_size (3, 3)");
    CHECK_ERROR(tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2, .padding_hw = { 0, -1 } }),
                "tg_avg_pool2d: padding must be non-negative, got (0, -1)");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 5 }),
                "tg_max_pool2d: input [1,1,4,4] is too small: the output would be 0x0 (kernel_size (5, 5), stride "
                "(5, 5), padding (0, 0), dilation (1, 1))");
    CHECK_ERROR(tg_max_pool2d(x, &(tg_max_pool2d_opts){ .kernel_size = 2, .dilation = 4 }),
                "tg_max_pool2d: input [1,1,4,4] is too small: the output would be 0x0 (kernel_size (2, 2), stride "
                "(2, 2), padding (0, 0), dilation (4, 4))");
    CHECK_ERROR(tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size_hw = { 2, 7 }, .padding = 1 }),
                "tg_avg_pool2d: input [1,1,4,4] is too small: the output would be 3x0 (kernel_size (2, 7), stride "
                "(2, 7), padding (1, 1))");
    CHECK_ERROR(tg_max_pool2d(tg_zeros(TG_F32, TG_SHAPE(4, 4), dev()), &(tg_max_pool2d_opts){ .kernel_size = 2 }),
                "tg_max_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got 2-D [4,4]");
    CHECK_ERROR(tg_avg_pool2d(tg_zeros(TG_F32, TG_SHAPE(1, 1, 1, 4, 4), dev()), &(tg_avg_pool2d_opts){ .kernel_size = 2 }),
                "tg_avg_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got 5-D [1,1,1,4,4]");
    CHECK_ERROR(tg_adaptive_avg_pool2d(tg_zeros(TG_F32, TG_SHAPE(2, 0, 4), dev()), 1, 1),
                "tg_adaptive_avg_pool2d: expected non-zero C, H and W, got [2,0,4]");
    CHECK_ERROR(tg_max_pool2d(tg_zeros(TG_I32, TG_SHAPE(1, 1, 4, 4), dev()), &(tg_max_pool2d_opts){ .kernel_size = 2 }),
                "tg_max_pool2d: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_adaptive_max_pool2d(x, 0, 2), "tg_adaptive_max_pool2d: output size must be positive, got (0, 2)");
    CHECK_ERROR(tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size = 2 }, NULL),
                "tg_max_pool2d_with_indices: indices is NULL");
    CHECK_ERROR(tg_max_pool2d(NULL, NULL), "tg_max_pool2d: x is NULL");
    /* unpool */
    tg_tensor *y = tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size = 2 }, &ti);
    tg_max_unpool2d_opts uo = { .kernel_size = 2 };
    CHECK_ERROR(tg_max_unpool2d(y, tg_cast(ti, TG_I32), &uo),
                "tg_max_unpool2d: indices must be i64 (as tg_max_pool2d_with_indices gives them), got i32");
    CHECK_ERROR(tg_max_unpool2d(y, tg_reshape(ti, TG_SHAPE(1, 1, 4, 1)), &uo),
                "tg_max_unpool2d: indices [1,1,4,1] must have the shape of x [1,1,2,2]");
    CHECK_ERROR(tg_max_unpool2d(y, ti, &(tg_max_unpool2d_opts){ .kernel_size = 2, .output_size = { 6, 4 } }),
                "tg_max_unpool2d: output_size[0] = 6 must lie strictly between 2 and 6 (the default 4 plus or minus "
                "the stride)");
    CHECK_ERROR(tg_max_unpool2d(y, ti, NULL), "tg_max_unpool2d: kernel_size must be positive, got (0, 0)");
    CHECK_ERROR(tg_max_unpool2d(y, tg_add_scalar(ti, 20), &uo),
                "tg_max_unpool2d: index 20 is outside the output plane of 4x4 (valid: 0 to 15)");
    CHECK_ERROR(tg_max_unpool2d(y, tg_add_scalar(ti, -1), &uo),
                "tg_max_unpool2d: index -1 is outside the output plane of 4x4 (valid: 0 to 15)");
    CHECK(tg_max_unpool2d(y, ti, &(tg_max_unpool2d_opts){ .kernel_size = 2, .output_size = { 5, 3 } }) != NULL);
}

/* A device without the kernels says so (skipped where every device has them). */
/* ------------------------------------------------------------------ PyTorch */

/* The same inputs (x[i] = ((i * 37) % 23 - 11) / 4, ties included) through F.* in
 * python3 with torch, printed one number a line, and compared. Skipped without torch. */
static const char *k_script =
    "import sys\n"
    "try:\n"
    "    import torch, torch.nn.functional as F\n"
    "except Exception:\n"
    "    sys.exit(3)\n"
    "torch.set_default_dtype(torch.float64)\n"
    "def inp(*s):\n"
    "    n = 1\n"
    "    for d in s: n *= d\n"
    "    return torch.tensor([((i * 37) % 23 - 11) / 4 for i in range(n)]).reshape(s)\n"
    "out = []\n"
    "def emit(t):\n"
    "    out.extend(float(v) for v in t.flatten())\n"
    "x = inp(2, 3, 7, 9).requires_grad_()\n"
    "y, i = F.max_pool2d(x, (3, 2), (2, 3), (1, 1), (1, 2), ceil_mode=True, return_indices=True)\n"
    "emit(y); emit(i)\n"
    "g, = torch.autograd.grad((y * torch.arange(y.numel()).reshape(y.shape)).sum(), x); emit(g)\n"
    "y = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False); emit(y)\n"
    "y = F.avg_pool2d(x, (2, 4), (3, 1), (1, 2), ceil_mode=True); emit(y)\n"
    "y = F.avg_pool2d(x, 2, 1, 1, divisor_override=3); emit(y)\n"
    "y = F.adaptive_avg_pool2d(x, (3, 4)); emit(y)\n"
    "y, i = F.adaptive_max_pool2d(x, (4, 5), return_indices=True); emit(y); emit(i)\n"
    "y, i = F.max_pool2d(x, 2, return_indices=True)\n"
    "emit(F.max_unpool2d(y, i, 2, output_size=(7, 9)))\n"
    "print('\\n'.join(repr(v) for v in out))\n";

static tg_tensor *torch_input(void) {
    double v[2 * 3 * 7 * 9];
    for (int i = 0; i < 2 * 3 * 7 * 9; i++) v[i] = ((i * 37) % 23 - 11) / 4.0;
    return tg_from_f64(v, TG_SHAPE(2, 3, 7, 9), dev());
}

static int append(double **all, int n, tg_tensor *t) {
    double *v = t && n >= 0 ? tg_test_values(t) : NULL;
    if (!v) return -1;
    int64_t k = tg_numel(t);
    *all = realloc(*all, (size_t)(n + k) * sizeof **all);
    memcpy(*all + n, v, (size_t)k * sizeof *v);
    free(v);
    return n + (int)k;
}

TEST(agrees_with_pytorch) {
    NEED_POOLING();
    char path[] = "/tmp/tg_test_pool_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) SKIP("no temporary file");
    FILE *f = fdopen(fd, "w");
    fputs(k_script, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "(/usr/bin/python3 %s || python3 %s) 2>/dev/null", path, path);
    FILE *p = popen(cmd, "r");
    double *want = NULL;
    int nw = 0;
    char line[64];
    while (p && fgets(line, sizeof line, p)) {
        want = realloc(want, (size_t)(nw + 1) * sizeof *want);
        want[nw++] = strtod(line, NULL);
    }
    if (p) pclose(p);
    unlink(path);
    if (nw == 0) {
        free(want);
        SKIP("python3 with torch is not installed");
    }
    tg_tensor *x = tg_param(torch_input()), *i;
    double *got = NULL;
    int n = 0;
    tg_tensor *y = tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size_hw = { 3, 2 }, .stride_hw = { 2, 3 },
                                              .padding = 1, .dilation_hw = { 1, 2 }, .ceil_mode = true }, &i);
    n = append(&got, n, y);
    n = append(&got, n, i);
    tg_tensor *gx;
    tg_tensor *w = tg_reshape(tg_arange(TG_F64, 0, (double)tg_numel(y), 1, dev()), tg_shape_of(y));
    CHECK(tg_autograd_grad(1, &(tg_tensor *){ tg_sum(tg_mul(y, w), TG_ALL, false) }, NULL, 1, &x, &gx, NULL) == TG_OK);
    n = append(&got, n, gx);
    n = append(&got, n, tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 3, .stride = 2, .padding = 1,
                                      .ceil_mode = true, .count_include_pad = TG_SOME(false) }));
    n = append(&got, n, tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size_hw = { 2, 4 }, .stride_hw = { 3, 1 },
                                      .padding_hw = { 1, 2 }, .ceil_mode = true }));
    n = append(&got, n, tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2, .stride = 1, .padding = 1,
                                      .divisor_override = 3 }));
    n = append(&got, n, tg_adaptive_avg_pool2d(x, 3, 4));
    n = append(&got, n, tg_adaptive_max_pool2d_with_indices(x, 4, 5, &i));
    n = append(&got, n, i);
    y = tg_max_pool2d_with_indices(x, &(tg_max_pool2d_opts){ .kernel_size = 2 }, &i);
    n = append(&got, n, tg_max_unpool2d(y, i, &(tg_max_unpool2d_opts){ .kernel_size = 2, .output_size = { 7, 9 } }));
    if (n != nw) FAIL_("%d numbers here, %d from torch (%s)", n, nw, tg_last_error());
    for (int k = 0; k < n && k < nw; k++)
        if (!same(got[k], want[k], 1e-12)) {
            FAIL_("number %d: %.17g here, %.17g from torch", k, got[k], want[k]);
            break;
        }
    free(got);
    free(want);
}

TG_TEST_MAIN(&tg_case_max_pool2d_grid, &tg_case_max_pool2d_2x2_stride_2, &tg_case_wide_rows, &tg_case_avg_pool2d_grid, &tg_case_adaptive_grid, &tg_case_ceil_mode_edges,
             &tg_case_ties_and_nan, &tg_case_unbatched, &tg_case_max_unpool2d_values, &tg_case_cpu_reference_kernels,
             &tg_case_gradcheck_every_option, &tg_case_gradgradcheck_max_and_avg, &tg_case_error_messages,
             &tg_case_agrees_with_pytorch)
