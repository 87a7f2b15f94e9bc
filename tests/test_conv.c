/* tg_conv2d, tg_conv1d and tg_conv_transpose2d: forward against naive f64 loops
 * written here from the definitions (conv as a gather over the receptive field, the
 * transposed conv as a scatter of each input element), on a grid of random
 * configurations (strides, paddings, dilations, groups including depthwise, odd sizes,
 * batch 1, one channel, kernels larger than the unpadded input, "same" and "valid",
 * unbatched and non-contiguous inputs, f32 and f64); gradients with tg_gradcheck in f64
 * for every op and option, second order with tg_gradgradcheck; and every error message,
 * word for word. Agreement with PyTorch itself is test_conv_torch.c. */
#include <math.h>
#include <stdint.h>

#include "harness.h"

static tg_device *dev(void) { return tg_test_device(); }

/* ------------------------------------------------------------------ host data */

static uint64_t g_rng = 0x2545F4914F6CDD1Du;
static uint64_t rnd_u(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd_u() % (uint64_t)(hi - lo + 1)); }

static double *rnd_buf(int64_t n) {
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) exit(2);
    for (int64_t i = 0; i < n; i++) v[i] = (double)(rnd_u() >> 11) * 0x1p-52 * 2 - 1;
    return v;
}

/* A tensor holding v (shape s); strided: a stride-2 view of a wider tensor along the
 * last axis, so the op gets a non-contiguous input. */
static tg_tensor *make(const double *v, tg_shape s, tg_dtype dt, bool strided) {
    if (!strided) return tg_cast(tg_from_f64(v, s, dev()), dt);
    tg_shape w = s;
    int last = s.ndim - 1;
    w.dims[last] *= 2;
    int64_t n = 1;
    for (int i = 0; i < w.ndim; i++) n *= w.dims[i];
    double *b = rnd_buf(n);
    for (int64_t i = 0; i < n / 2; i++) b[2 * i] = v[i];
    tg_tensor *t = tg_slice(tg_cast(tg_from_f64(b, w, dev()), dt), last, 0, INT64_MAX, 2);
    free(b);
    return t;
}

/* ------------------------------------------------------------------ the references */

typedef struct {
    int64_t N, C, H, W, OC, KH, KW, groups;
    int64_t s[2], p[2], d[2], op[2]; /* stride, padding (before), dilation, output_padding */
    int64_t OH, OW;
} geo;

/* out[n, oc, oh, ow] = b[oc] + sum over the group's channels and the kernel taps of
 * x[n, c, oh*s - p + kh*d, ...] * w[oc, c, kh, kw]; taps outside x read 0. */
static void ref_conv(double *out, const double *x, const double *w, const double *b, const geo *g) {
    int64_t Cg = g->C / g->groups, Mg = g->OC / g->groups;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t oc = 0; oc < g->OC; oc++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    double acc = b ? b[oc] : 0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < g->KH; kh++)
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t ih = oh * g->s[0] - g->p[0] + kh * g->d[0];
                                int64_t iw = ow * g->s[1] - g->p[1] + kw * g->d[1];
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                                acc += x[((n * g->C + oc / Mg * Cg + c) * g->H + ih) * g->W + iw] *
                                       w[((oc * Cg + c) * g->KH + kh) * g->KW + kw];
                            }
                    out[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] = acc;
                }
}

/* The transposed conv, C the input's channels, OC the output's, w (C, OC/groups, KH, KW):
 * each x[n, c, h, w] adds x * w[c, o, kh, kw] to out[n, o, h*s - p + kh*d, ...]. */
static void ref_conv_t(double *out, const double *x, const double *w, const double *b, const geo *g) {
    int64_t Cg = g->C / g->groups, Og = g->OC / g->groups, P = g->OH * g->OW;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->OC; o++)
            for (int64_t i = 0; i < P; i++) out[(n * g->OC + o) * P + i] = b ? b[o] : 0;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t h = 0; h < g->H; h++)
                for (int64_t ww = 0; ww < g->W; ww++)
                    for (int64_t o = 0; o < Og; o++)
                        for (int64_t kh = 0; kh < g->KH; kh++)
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t oh = h * g->s[0] - g->p[0] + kh * g->d[0];
                                int64_t ow = ww * g->s[1] - g->p[1] + kw * g->d[1];
                                if (oh < 0 || oh >= g->OH || ow < 0 || ow >= g->OW) continue;
                                int64_t oc = c / Cg * Og + o;
                                out[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] +=
                                    x[((n * g->C + c) * g->H + h) * g->W + ww] *
                                    w[((c * Og + o) * g->KH + kh) * g->KW + kw];
                            }
}

/* Compares t (of shape s) with ref: f64 to 1e-12, f32 to 1e-4, relative to the sum's size. */
static int compare(tg_tensor *t, tg_shape s, const double *ref, tg_dtype dt, double mag) {
    if (!t) {
        printf("    error: %s\n", tg_last_error());
        return 1;
    }
    tg_shape ts = tg_shape_of(t);
    bool same = ts.ndim == s.ndim;
    for (int i = 0; same && i < s.ndim; i++) same = ts.dims[i] == s.dims[i];
    if (!same) {
        printf("    shape differs (%d axes)\n", ts.ndim);
        return 1;
    }
    double *v = tg_test_values(t), tol = (dt == TG_F64 ? 1e-12 : 1e-4) * (mag > 1 ? mag : 1), worst = 0;
    if (!v) return 1;
    for (int64_t i = 0; i < tg_numel(t); i++) worst = fmax(worst, fabs(v[i] - ref[i]));
    free(v);
    if (worst > tol) printf("    max error %g > %g\n", worst, tol);
    return worst > tol;
}

/* The conv's output size per axis, from the definition (PyTorch's formula). */
static int64_t out_len(int64_t in, int64_t lo, int64_t hi, int64_t d, int64_t k, int64_t s) {
    int64_t span = d * (k - 1) + 1;
    return in + lo + hi < span ? 0 : (in + lo + hi - span) / s + 1;
}

static bool g_supported; /* the device has conv kernels (set by ready) */
static char g_why[256];
#define NEEDS_CONV()                        \
    do {                                    \
        if (!g_supported) SKIP("%s", g_why); \
    } while (0)

/* ------------------------------------------------------------------ forward */

/* One random conv2d (or conv1d when one_d) configuration against ref_conv; returns
 * failures. */
static int one_conv(bool one_d, int iter) {
    geo g = { .N = rnd_in(1, 3), .groups = rnd_in(1, 3) };
    if (rnd_in(0, 5) == 0) g.groups = 1; /* one channel sometimes */
    g.C = g.groups * rnd_in(1, 3), g.OC = g.groups * rnd_in(1, 3);
    if (iter % 7 == 3) g.C = g.groups, g.OC = g.groups * rnd_in(1, 2); /* depthwise (x multiplier) */
    int kind = (int)rnd_in(0, 5); /* 0-3 explicit, 4 valid, 5 same */
    int sp = one_d ? 1 : 2;
    int64_t in[2] = { 1, 1 }, k[2] = { 1, 1 }, s[2] = { 1, 1 }, p[2] = { 0, 0 }, d[2] = { 1, 1 }, hi[2] = { 0, 0 };
    for (int i = 2 - sp; i < 2; i++) {
        in[i] = rnd_in(1, 9), k[i] = rnd_in(1, 4), d[i] = rnd_in(1, 3), s[i] = kind == 5 ? 1 : rnd_in(1, 3);
        p[i] = kind < 4 ? rnd_in(0, 3) : 0;
        if (kind == 5) p[i] = d[i] * (k[i] - 1) / 2, hi[i] = d[i] * (k[i] - 1) - p[i];
        else hi[i] = p[i];
        if (in[i] + p[i] + hi[i] < d[i] * (k[i] - 1) + 1) return one_conv(one_d, iter); /* no output: redraw */
    }
    g.H = in[0], g.W = in[1], g.KH = k[0], g.KW = k[1];
    for (int i = 0; i < 2; i++) g.s[i] = s[i], g.p[i] = p[i], g.d[i] = d[i];
    g.OH = out_len(g.H, p[0], hi[0], d[0], k[0], s[0]), g.OW = out_len(g.W, p[1], hi[1], d[1], k[1], s[1]);
    tg_dtype dt = iter % 5 == 4 ? TG_F32 : TG_F64;
    bool strided = iter % 4 == 1, unbatched = g.N == 1 && iter % 3 == 0, bias = iter % 2 == 0;
    int64_t nx = g.N * g.C * g.H * g.W, nw = g.OC * (g.C / g.groups) * g.KH * g.KW, ny = g.N * g.OC * g.OH * g.OW;
    double *x = rnd_buf(nx), *w = rnd_buf(nw), *b = rnd_buf(g.OC), *y = rnd_buf(ny);
    ref_conv(y, x, w, bias ? b : NULL, &g);
    tg_shape xs, ws, ys;
    if (one_d) {
        xs = unbatched ? TG_SHAPE(g.C, g.W) : TG_SHAPE(g.N, g.C, g.W);
        ws = TG_SHAPE(g.OC, g.C / g.groups, g.KW);
        ys = unbatched ? TG_SHAPE(g.OC, g.OW) : TG_SHAPE(g.N, g.OC, g.OW);
    } else {
        xs = unbatched ? TG_SHAPE(g.C, g.H, g.W) : TG_SHAPE(g.N, g.C, g.H, g.W);
        ws = TG_SHAPE(g.OC, g.C / g.groups, g.KH, g.KW);
        ys = unbatched ? TG_SHAPE(g.OC, g.OH, g.OW) : TG_SHAPE(g.N, g.OC, g.OH, g.OW);
    }
    tg_tensor *tx = make(x, xs, dt, strided), *tw = make(w, ws, dt, strided && iter % 8 == 1);
    tg_tensor *tb = bias ? make(b, TG_SHAPE(g.OC), dt, false) : NULL, *ty;
    tg_conv_padding pk = kind == 4 ? TG_CONV_PAD_VALID : kind == 5 ? TG_CONV_PAD_SAME : TG_CONV_PAD_EXPLICIT;
    if (one_d) {
        tg_conv1d_opts o = { .stride = s[1], .padding = kind < 4 ? p[1] : 0, .dilation = d[1], .groups = g.groups,
                             .padding_kind = pk };
        ty = tg_conv1d(tx, tw, tb, &o);
    } else if (iter % 2) { /* per-axis pairs */
        tg_conv2d_opts o = { .stride_hw = { s[0], s[1] }, .dilation_hw = { d[0], d[1] }, .groups = g.groups,
                             .padding_kind = pk };
        if (kind < 4) o.padding_hw[0] = p[0], o.padding_hw[1] = p[1];
        ty = tg_conv2d(tx, tw, tb, &o);
    } else { /* scalars where the axes agree */
        tg_conv2d_opts o = { .stride_hw = { s[0], s[1] }, .dilation_hw = { d[0], d[1] }, .groups = g.groups,
                             .padding_kind = pk };
        if (s[0] == s[1]) o.stride = s[0], o.stride_hw[0] = o.stride_hw[1] = 0;
        if (d[0] == d[1]) o.dilation = d[0], o.dilation_hw[0] = o.dilation_hw[1] = 0;
        if (kind < 4 && p[0] == p[1]) o.padding = p[0];
        else if (kind < 4) o.padding_hw[0] = p[0], o.padding_hw[1] = p[1];
        ty = tg_conv2d(tx, tw, tb, &o);
    }
    int bad = compare(ty, ys, y, dt, (double)(g.C / g.groups * g.KH * g.KW));
    if (bad)
        printf("    conv%s iter %d: N%lld C%lld %lldx%lld OC%lld k%lldx%lld s%lld,%lld p%lld,%lld d%lld,%lld g%lld "
               "kind %d %s%s%s%s\n", one_d ? "1d" : "2d", iter, (long long)g.N, (long long)g.C, (long long)g.H,
               (long long)g.W, (long long)g.OC, (long long)g.KH, (long long)g.KW, (long long)s[0], (long long)s[1],
               (long long)p[0], (long long)p[1], (long long)d[0], (long long)d[1], (long long)g.groups, kind,
               dt == TG_F32 ? "f32 " : "", strided ? "strided " : "", unbatched ? "unbatched " : "",
               bias ? "bias" : "");
    free(x), free(w), free(b), free(y);
    return bad;
}

TEST(conv2d_forward_grid) {
    NEEDS_CONV();
    for (int i = 0; i < 300; i++) {
        tg_scope_begin();
        if (one_conv(false, i)) FAIL_("conv2d configuration %d differs from the reference", i);
        tg_scope_end();
    }
}

TEST(conv1d_forward_grid) {
    NEEDS_CONV();
    for (int i = 0; i < 150; i++) {
        tg_scope_begin();
        if (one_conv(true, i)) FAIL_("conv1d configuration %d differs from the reference", i);
        tg_scope_end();
    }
}

static int one_conv_t(int iter) {
    geo g = { .N = rnd_in(1, 3), .groups = rnd_in(1, 3) };
    g.C = g.groups * rnd_in(1, 3), g.OC = g.groups * rnd_in(1, 3); /* C: the input's channels */
    if (iter % 6 == 2) g.C = g.OC = g.groups;                       /* depthwise */
    g.H = rnd_in(1, 6), g.W = rnd_in(1, 6), g.KH = rnd_in(1, 4), g.KW = rnd_in(1, 4);
    int64_t in[2] = { g.H, g.W }, k[2] = { g.KH, g.KW }, o[2];
    for (int i = 0; i < 2; i++) {
        g.s[i] = rnd_in(1, 3), g.d[i] = rnd_in(1, 3), g.p[i] = rnd_in(0, 2);
        int64_t lim = g.s[i] > g.d[i] ? g.s[i] : g.d[i]; /* output_padding < stride or dilation */
        g.op[i] = rnd_in(0, lim - 1);
        o[i] = (in[i] - 1) * g.s[i] - 2 * g.p[i] + g.d[i] * (k[i] - 1) + g.op[i] + 1;
        if (o[i] <= 0) return one_conv_t(iter);
    }
    g.OH = o[0], g.OW = o[1];
    tg_dtype dt = iter % 5 == 4 ? TG_F32 : TG_F64;
    bool strided = iter % 4 == 1, unbatched = g.N == 1 && iter % 3 == 0, bias = iter % 2 == 0;
    int64_t nx = g.N * g.C * g.H * g.W, nw = g.C * (g.OC / g.groups) * g.KH * g.KW, ny = g.N * g.OC * g.OH * g.OW;
    double *x = rnd_buf(nx), *w = rnd_buf(nw), *b = rnd_buf(g.OC), *y = rnd_buf(ny);
    ref_conv_t(y, x, w, bias ? b : NULL, &g);
    tg_shape xs = unbatched ? TG_SHAPE(g.C, g.H, g.W) : TG_SHAPE(g.N, g.C, g.H, g.W);
    tg_shape ys = unbatched ? TG_SHAPE(g.OC, g.OH, g.OW) : TG_SHAPE(g.N, g.OC, g.OH, g.OW);
    tg_tensor *tx = make(x, xs, dt, strided), *tw = make(w, TG_SHAPE(g.C, g.OC / g.groups, g.KH, g.KW), dt, false);
    tg_tensor *tb = bias ? make(b, TG_SHAPE(g.OC), dt, false) : NULL;
    tg_conv_transpose2d_opts opt = { .stride_hw = { g.s[0], g.s[1] }, .padding_hw = { g.p[0], g.p[1] },
                                     .output_padding_hw = { g.op[0], g.op[1] }, .dilation_hw = { g.d[0], g.d[1] },
                                     .groups = g.groups };
    int bad = compare(tg_conv_transpose2d(tx, tw, tb, &opt), ys, y, dt, (double)(g.C / g.groups * g.KH * g.KW));
    if (bad)
        printf("    conv_transpose2d iter %d: N%lld C%lld %lldx%lld OC%lld k%lldx%lld s%lld,%lld p%lld,%lld d%lld,%lld "
               "op%lld,%lld g%lld\n", iter, (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W,
               (long long)g.OC, (long long)g.KH, (long long)g.KW, (long long)g.s[0], (long long)g.s[1],
               (long long)g.p[0], (long long)g.p[1], (long long)g.d[0], (long long)g.d[1], (long long)g.op[0],
               (long long)g.op[1], (long long)g.groups);
    free(x), free(w), free(b), free(y);
    return bad;
}

TEST(conv_transpose2d_forward_grid) {
    NEEDS_CONV();
    for (int i = 0; i < 200; i++) {
        tg_scope_begin();
        if (one_conv_t(i)) FAIL_("conv_transpose2d configuration %d differs from the reference", i);
        tg_scope_end();
    }
}

/* Hand-computed: a 3x3 all-ones input, a 2x2 kernel [[1,2],[3,4]], padding "same"
 * puts the odd zero row and column after (PyTorch): rows of windows starting at 0, 1, 2. */
TEST(conv2d_same_even_kernel_by_hand) {
    NEEDS_CONV();
    double x[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, w[4] = { 1, 2, 3, 4 };
    tg_tensor *y = tg_conv2d(tg_from_f64(x, TG_SHAPE(1, 1, 3, 3), dev()), tg_from_f64(w, TG_SHAPE(1, 1, 2, 2), dev()),
                             NULL, &(tg_conv2d_opts){ .padding_kind = TG_CONV_PAD_SAME });
    double want[9] = { 10, 10, 4, 10, 10, 4, 3, 3, 1 };
    CHECK(compare(y, TG_SHAPE(1, 1, 3, 3), want, TG_F64, 1) == 0);
    /* NULL options: stride 1, no padding */
    y = tg_conv2d(tg_from_f64(x, TG_SHAPE(1, 1, 3, 3), dev()), tg_from_f64(w, TG_SHAPE(1, 1, 2, 2), dev()), NULL, NULL);
    double want2[4] = { 10, 10, 10, 10 };
    CHECK(compare(y, TG_SHAPE(1, 1, 2, 2), want2, TG_F64, 1) == 0);
}

/* ------------------------------------------------------------------ gradients */

typedef struct {
    int op; /* 0 conv2d, 1 conv1d, 2 conv_transpose2d */
    bool bias, transpose_x; /* transpose_x: in[0] is given (N, C, W, H) and transposed here */
    tg_conv2d_opts c2;
    tg_conv1d_opts c1;
    tg_conv_transpose2d_opts ct;
} gctx;

static tg_tensor *f_conv(tg_tensor *const *in, void *p) {
    const gctx *c = p;
    tg_tensor *x = c->transpose_x ? tg_transpose(in[0], -1, -2) : in[0], *b = c->bias ? in[2] : NULL;
    tg_tensor *y = c->op == 0 ? tg_conv2d(x, in[1], b, &c->c2)
                 : c->op == 1 ? tg_conv1d(x, in[1], b, &c->c1)
                              : tg_conv_transpose2d(x, in[1], b, &c->ct);
    return tg_tanh(y); /* not linear, so the second order is not trivially zero in x */
}

static tg_tensor *r64(tg_shape s) { return tg_randn(TG_F64, s, dev()); }

static int check_grad(bool second, const gctx *c, tg_tensor *x, tg_tensor *w, tg_tensor *b, const char *what) {
    tg_tensor *in[3] = { x, w, b };
    tg_gradcheck_report rep;
    tg_status st = (second ? tg_gradgradcheck : tg_gradcheck)(f_conv, (void *)c, c->bias ? 3 : 2, in, NULL, &rep);
    if (st != TG_OK) printf("    %s%s: %s (%s)\n", second ? "gradgradcheck " : "gradcheck ", what, rep.message, tg_last_error());
    return st != TG_OK;
}

#define GRAD(ctx_, x_, w_, b_, what_) CHECK(check_grad(false, &(ctx_), x_, w_, b_, what_) == 0)
#define GRADGRAD(ctx_, x_, w_, b_, what_) CHECK(check_grad(true, &(ctx_), x_, w_, b_, what_) == 0)

TEST(conv2d_gradcheck) {
    NEEDS_CONV();
    tg_tensor *b3 = r64(TG_SHAPE(3)), *b4 = r64(TG_SHAPE(4));
    gctx c = { .op = 0, .bias = true };
    GRAD(c, r64(TG_SHAPE(2, 2, 5, 4)), r64(TG_SHAPE(3, 2, 3, 2)), b3, "defaults");
    c.c2 = (tg_conv2d_opts){ .stride = 2, .padding = 1 };
    GRAD(c, r64(TG_SHAPE(2, 2, 5, 6)), r64(TG_SHAPE(3, 2, 3, 3)), b3, "stride 2, padding 1");
    c.c2 = (tg_conv2d_opts){ .stride_hw = { 1, 3 }, .padding_hw = { 0, 2 }, .dilation_hw = { 2, 1 } };
    GRAD(c, r64(TG_SHAPE(1, 2, 6, 5)), r64(TG_SHAPE(3, 2, 2, 3)), b3, "per-axis stride, padding, dilation");
    c.c2 = (tg_conv2d_opts){ .dilation = 2, .padding = 3 };
    GRAD(c, r64(TG_SHAPE(1, 1, 3, 3)), r64(TG_SHAPE(3, 1, 3, 3)), b3, "padding past the kernel's reach, dilation");
    c.c2 = (tg_conv2d_opts){ .groups = 2, .stride = 2 };
    GRAD(c, r64(TG_SHAPE(2, 4, 5, 5)), r64(TG_SHAPE(4, 2, 3, 3)), b4, "groups 2");
    c.c2 = (tg_conv2d_opts){ .groups = 2, .padding = 1 };
    GRAD(c, r64(TG_SHAPE(1, 2, 4, 4)), r64(TG_SHAPE(4, 1, 3, 3)), b4, "depthwise, multiplier 2");
    c.c2 = (tg_conv2d_opts){ .padding_kind = TG_CONV_PAD_SAME, .dilation_hw = { 1, 3 } };
    GRAD(c, r64(TG_SHAPE(1, 2, 4, 5)), r64(TG_SHAPE(3, 2, 2, 2)), b3, "same, even kernel, dilation");
    c.c2 = (tg_conv2d_opts){ .padding_kind = TG_CONV_PAD_VALID };
    GRAD(c, r64(TG_SHAPE(1, 2, 4, 3)), r64(TG_SHAPE(3, 2, 2, 2)), b3, "valid");
    c.c2 = (tg_conv2d_opts){ .padding = 2 };
    GRAD(c, r64(TG_SHAPE(1, 1, 2, 2)), r64(TG_SHAPE(3, 1, 4, 4)), b3, "kernel larger than the unpadded input");
    c.bias = false, c.c2 = (tg_conv2d_opts){ .stride = 2, .padding = 1 };
    GRAD(c, r64(TG_SHAPE(2, 2, 5, 5)), r64(TG_SHAPE(3, 2, 3, 3)), NULL, "no bias");
    c.transpose_x = true;
    GRAD(c, r64(TG_SHAPE(1, 2, 6, 5)), tg_transpose(r64(TG_SHAPE(3, 2, 3, 3)), 2, 3), NULL, "non-contiguous x and w");
    c.transpose_x = false, c.bias = true;
    GRAD(c, r64(TG_SHAPE(2, 5, 4)), r64(TG_SHAPE(3, 2, 3, 3)), b3, "unbatched");
    c.c2 = (tg_conv2d_opts){ 0 };
    GRAD(c, r64(TG_SHAPE(2, 3, 4, 4)), r64(TG_SHAPE(3, 3, 1, 1)), b3, "1x1");
}

TEST(conv1d_gradcheck) {
    NEEDS_CONV();
    tg_tensor *b4 = r64(TG_SHAPE(4));
    gctx c = { .op = 1, .bias = true };
    GRAD(c, r64(TG_SHAPE(2, 2, 7)), r64(TG_SHAPE(4, 2, 3)), b4, "defaults");
    c.c1 = (tg_conv1d_opts){ .stride = 2, .padding = 2, .dilation = 2, .groups = 2 };
    GRAD(c, r64(TG_SHAPE(2, 4, 9)), r64(TG_SHAPE(4, 2, 3)), b4, "stride, padding, dilation, groups");
    c.c1 = (tg_conv1d_opts){ .padding_kind = TG_CONV_PAD_SAME };
    GRAD(c, r64(TG_SHAPE(2, 6)), r64(TG_SHAPE(4, 2, 4)), b4, "same, unbatched");
    c.c1 = (tg_conv1d_opts){ .padding_kind = TG_CONV_PAD_VALID }, c.bias = false, c.transpose_x = true;
    GRAD(c, r64(TG_SHAPE(1, 5, 2)), r64(TG_SHAPE(4, 2, 2)), NULL, "valid, no bias, non-contiguous");
}

TEST(conv_transpose2d_gradcheck) {
    NEEDS_CONV();
    tg_tensor *b3 = r64(TG_SHAPE(3)), *b4 = r64(TG_SHAPE(4));
    gctx c = { .op = 2, .bias = true };
    GRAD(c, r64(TG_SHAPE(2, 2, 3, 4)), r64(TG_SHAPE(2, 3, 3, 2)), b3, "defaults");
    c.ct = (tg_conv_transpose2d_opts){ .stride = 2, .padding = 1, .output_padding = 1 };
    GRAD(c, r64(TG_SHAPE(1, 2, 3, 3)), r64(TG_SHAPE(2, 3, 3, 3)), b3, "stride, padding, output_padding");
    c.ct = (tg_conv_transpose2d_opts){ .dilation = 3, .output_padding = 2, .stride_hw = { 1, 2 } };
    GRAD(c, r64(TG_SHAPE(1, 2, 3, 2)), r64(TG_SHAPE(2, 3, 2, 2)), b3, "output_padding >= stride, < dilation");
    c.ct = (tg_conv_transpose2d_opts){ .groups = 2, .stride = 2, .padding_hw = { 0, 1 } };
    GRAD(c, r64(TG_SHAPE(2, 4, 2, 3)), r64(TG_SHAPE(4, 2, 2, 3)), b4, "groups");
    c.ct = (tg_conv_transpose2d_opts){ .groups = 2 };
    GRAD(c, r64(TG_SHAPE(2, 3, 3)), r64(TG_SHAPE(2, 2, 2, 2)), b4, "depthwise, unbatched");
    c.ct = (tg_conv_transpose2d_opts){ .padding = 2 }, c.bias = false, c.transpose_x = true;
    GRAD(c, r64(TG_SHAPE(1, 2, 4, 3)), r64(TG_SHAPE(2, 3, 3, 3)), NULL, "padding trims, no bias, non-contiguous");
}

TEST(conv_gradgradcheck) {
    NEEDS_CONV();
    gctx c = { .op = 0, .bias = true, .c2 = { .stride = 2, .padding = 1, .groups = 2 } };
    GRADGRAD(c, r64(TG_SHAPE(1, 2, 4, 4)), r64(TG_SHAPE(2, 1, 3, 2)), r64(TG_SHAPE(2)), "conv2d");
    c.c2 = (tg_conv2d_opts){ .padding_kind = TG_CONV_PAD_SAME, .dilation = 2 };
    GRADGRAD(c, r64(TG_SHAPE(1, 1, 4, 3)), r64(TG_SHAPE(2, 1, 2, 2)), r64(TG_SHAPE(2)), "conv2d same");
    c = (gctx){ .op = 2, .bias = true, .ct = { .stride = 2, .padding = 1, .output_padding = 1, .groups = 2 } };
    GRADGRAD(c, r64(TG_SHAPE(1, 2, 2, 3)), r64(TG_SHAPE(2, 1, 3, 2)), r64(TG_SHAPE(2)), "conv_transpose2d");
    c = (gctx){ .op = 1, .c1 = { .stride = 2, .dilation = 2 } };
    GRADGRAD(c, r64(TG_SHAPE(1, 2, 7)), r64(TG_SHAPE(2, 2, 2)), NULL, "conv1d");
}

/* ------------------------------------------------------------------ errors */

static tg_tensor *z(tg_dtype dt, tg_shape s) { return tg_zeros(dt, s, dev()); }

/* Every user error is found before the device is asked for a kernel, so this runs on
 * every device. */
TEST(conv_errors) {
    tg_tensor *x = z(TG_F32, TG_SHAPE(1, 4, 5, 5)), *w = z(TG_F32, TG_SHAPE(6, 2, 3, 3)), *b = z(TG_F32, TG_SHAPE(6));
    const tg_conv2d_opts g2 = { .groups = 2 };
    CHECK(!g_supported || tg_conv2d(x, w, b, &g2) != NULL);
    CHECK_ERROR(tg_conv2d(NULL, w, b, NULL), "tg_conv2d: x is NULL");
    CHECK_ERROR(tg_conv2d(x, NULL, b, NULL), "tg_conv2d: weight is NULL");
    CHECK_ERROR(tg_conv2d(z(TG_I32, TG_SHAPE(1, 4, 5, 5)), w, b, &g2),
                "tg_conv2d: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_conv2d(x, z(TG_F64, TG_SHAPE(6, 2, 3, 3)), b, &g2),
                "tg_conv2d: dtypes differ: f32 and f64 (convert one with tg_cast)");
    CHECK_ERROR(tg_conv2d(x, w, z(TG_F64, TG_SHAPE(6)), &g2),
                "tg_conv2d: dtypes differ: f32 and f64 (convert one with tg_cast)");
    CHECK_ERROR(tg_conv2d(z(TG_F32, TG_SHAPE(4, 5)), w, b, &g2),
                "tg_conv2d: input must be 3-D (C, H, W) or 4-D (N, C, H, W), got [4,5]");
    CHECK_ERROR(tg_conv2d(x, z(TG_F32, TG_SHAPE(6, 2, 3)), b, &g2),
                "tg_conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got [6,2,3]");
    CHECK_ERROR(tg_conv2d(x, w, b, NULL),
                "tg_conv2d: input [1,4,5,5] has 4 channels, but weight [6,2,3,3] with groups 1 expects 2");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 3 }),
                "tg_conv2d: in_channels 4 (input [1,4,5,5]) is not divisible by groups 3");
    CHECK_ERROR(tg_conv2d(x, z(TG_F32, TG_SHAPE(5, 2, 3, 3)), NULL, &g2),
                "tg_conv2d: out_channels 5 (weight [5,2,3,3]) is not divisible by groups 2");
    CHECK_ERROR(tg_conv2d(x, w, z(TG_F32, TG_SHAPE(4)), &g2),
                "tg_conv2d: bias must be 1-D with out_channels (6) elements, got [4]");
    CHECK_ERROR(tg_conv2d(x, w, z(TG_F32, TG_SHAPE(1, 6)), &g2),
                "tg_conv2d: bias must be 1-D with out_channels (6) elements, got [1,6]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = -2 }), "tg_conv2d: groups must be positive, got -2");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .stride = -1 }),
                "tg_conv2d: stride must be positive, got [-1,-1]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .dilation_hw = { 1, -2 } }),
                "tg_conv2d: dilation must be positive, got [1,-2]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .padding_hw = { -1, 0 } }),
                "tg_conv2d: padding must be non-negative, got [-1,0]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .padding_kind = TG_CONV_PAD_SAME, .stride = 2 }),
                "tg_conv2d: padding 'same' needs stride 1 (as PyTorch), got [2,2]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .padding_kind = TG_CONV_PAD_VALID, .padding = 1 }),
                "tg_conv2d: padding 'valid' takes no padding amounts, got [1,1]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .padding_kind = (tg_conv_padding)9 }),
                "tg_conv2d: unknown padding_kind 9");
    CHECK_ERROR(tg_conv2d(x, z(TG_F32, TG_SHAPE(6, 2, 0, 3)), b, &g2), "tg_conv2d: kernel size must be positive, got [0,3]");
    CHECK_ERROR(tg_conv2d(z(TG_F32, TG_SHAPE(1, 4, 2, 5)), w, b, &g2),
                "tg_conv2d: kernel [3,3] with dilation [1,1] spans [3,3], more than the padded input [2,5]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .dilation = 3, .padding_hw = { 0, 1 } }),
                "tg_conv2d: kernel [3,3] with dilation [3,3] spans [7,7], more than the padded input [5,7]");
    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .dilation = 3, .padding_hw = { 1, 0 } }),
                "tg_conv2d: kernel [3,3] with dilation [3,3] spans [7,7], more than the padded input [7,5]");

    CHECK_ERROR(tg_conv2d(x, w, b, &(tg_conv2d_opts){ .groups = 2, .dilation = INT64_MAX / 2 }),
                "tg_conv2d: sizes too large: input [5,5], kernel [3,3], stride [1,1], padding [0,0], "
                "dilation [4611686018427387903,4611686018427387903]");

    /* conv1d: in 1-D terms */
    tg_tensor *x1 = z(TG_F32, TG_SHAPE(2, 3, 4)), *w1 = z(TG_F32, TG_SHAPE(2, 3, 5));
    CHECK_ERROR(tg_conv1d(x1, w1, NULL, NULL), "tg_conv1d: kernel [5] with dilation [1] spans [5], more than the padded input [4]");
    CHECK_ERROR(tg_conv1d(z(TG_F32, TG_SHAPE(2, 3, 4, 4)), w1, NULL, NULL),
                "tg_conv1d: input must be 2-D (C, L) or 3-D (N, C, L), got [2,3,4,4]");
    CHECK_ERROR(tg_conv1d(x1, z(TG_F32, TG_SHAPE(2, 3)), NULL, NULL),
                "tg_conv1d: weight must be 3-D (out_channels, in_channels/groups, kL), got [2,3]");
    CHECK_ERROR(tg_conv1d(x1, z(TG_F32, TG_SHAPE(2, 2, 1)), NULL, NULL),
                "tg_conv1d: input [2,3,4] has 3 channels, but weight [2,2,1] with groups 1 expects 2");
    CHECK_ERROR(tg_conv1d(x1, w1, NULL, &(tg_conv1d_opts){ .stride = -3 }), "tg_conv1d: stride must be positive, got [-3]");
    CHECK_ERROR(tg_conv1d(x1, w1, NULL, &(tg_conv1d_opts){ .padding_kind = TG_CONV_PAD_SAME, .stride = 2 }),
                "tg_conv1d: padding 'same' needs stride 1 (as PyTorch), got [2]");
    CHECK_ERROR(tg_conv1d(x1, w1, NULL, &(tg_conv1d_opts){ .padding_kind = TG_CONV_PAD_SAME, .padding = 2 }),
                "tg_conv1d: padding 'same' takes no padding amounts, got [2]");

    /* conv_transpose2d: weight (C_in, C_out/groups, kH, kW) */
    tg_tensor *xt = z(TG_F32, TG_SHAPE(1, 4, 3, 3)), *wt = z(TG_F32, TG_SHAPE(4, 3, 3, 3));
    CHECK(!g_supported || tg_conv_transpose2d(xt, wt, z(TG_F32, TG_SHAPE(6)), &(tg_conv_transpose2d_opts){ .groups = 2 }) != NULL);
    CHECK_ERROR(tg_conv_transpose2d(xt, z(TG_F32, TG_SHAPE(3, 3, 3, 3)), NULL, NULL),
                "tg_conv_transpose2d: input [1,4,3,3] has 4 channels, but weight [3,3,3,3] with groups 1 expects 3");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, NULL, &(tg_conv_transpose2d_opts){ .groups = 3 }),
                "tg_conv_transpose2d: in_channels 4 (input [1,4,3,3]) is not divisible by groups 3");
    CHECK_ERROR(tg_conv_transpose2d(xt, z(TG_F32, TG_SHAPE(4, 3, 3)), NULL, NULL),
                "tg_conv_transpose2d: weight must be 4-D (in_channels, out_channels/groups, kH, kW), got [4,3,3]");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, z(TG_F32, TG_SHAPE(3)), &(tg_conv_transpose2d_opts){ .groups = 2 }),
                "tg_conv_transpose2d: bias must be 1-D with out_channels (6) elements, got [3]");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, NULL, &(tg_conv_transpose2d_opts){ .stride = 2, .output_padding = 2 }),
                "tg_conv_transpose2d: output_padding [2,2] must be smaller than stride [2,2] or dilation [1,1] on each axis");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, NULL, &(tg_conv_transpose2d_opts){ .output_padding_hw = { 0, 1 } }),
                "tg_conv_transpose2d: output_padding [0,1] must be smaller than stride [1,1] or dilation [1,1] on each axis");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, NULL, &(tg_conv_transpose2d_opts){ .output_padding = -1 }),
                "tg_conv_transpose2d: output_padding must be non-negative, got [-1,-1]");
    CHECK_ERROR(tg_conv_transpose2d(xt, wt, NULL, &(tg_conv_transpose2d_opts){ .padding_hw = { 3, 1 } }),
                "tg_conv_transpose2d: output size [-1,3] is not positive (input [3,3], kernel [3,3], stride [1,1], "
                "padding [3,1], dilation [1,1], output_padding [0,0])");
    CHECK_ERROR(tg_conv_transpose2d(z(TG_U8, TG_SHAPE(1, 4, 3, 3)), wt, NULL, NULL),
                "tg_conv_transpose2d: expected a floating dtype (f32 or f64), got u8");
}

/* Either the device runs conv2d, or it says that it has no kernel, in these words. */
TEST(conv_device_kernel_or_message) {
    tg_clear_error();
    tg_tensor *y = tg_conv2d(z(TG_F32, TG_SHAPE(1, 1, 2, 2)), z(TG_F32, TG_SHAPE(1, 1, 1, 1)), NULL, NULL);
    if (y) return;
    char want[200];
    snprintf(want, sizeof want, "tg_conv2d: device %s has no conv2d kernel for f32 (yet)", tg_device_name(dev()));
    CHECK(strcmp(tg_last_error(), want) == 0);
    snprintf(want, sizeof want, "tg_conv_transpose2d: device %s has no conv2d_backward_data kernel for f32 (yet)",
             tg_device_name(dev()));
    CHECK_ERROR(tg_conv_transpose2d(z(TG_F32, TG_SHAPE(1, 1, 2, 2)), z(TG_F32, TG_SHAPE(1, 1, 1, 1)), NULL, NULL), want);
}

/* Grad mode off: nothing recorded; on: the result requires grad and backward fills
 * every input's gradient, bias's being dy summed over N, H, W. */
TEST(conv_backward_fills_grads) {
    NEEDS_CONV();
    tg_tensor *x = tg_param(r64(TG_SHAPE(2, 2, 4, 4))), *w = tg_param(r64(TG_SHAPE(3, 2, 3, 3)));
    tg_tensor *b = tg_param(r64(TG_SHAPE(3)));
    tg_tensor *y = tg_conv2d(x, w, b, &(tg_conv2d_opts){ .padding = 1 });
    CHECK(y && tg_requires_grad(y));
    CHECK(tg_backward(tg_sum(y, TG_ALL, false)) == TG_OK);
    double *gb = tg_test_values(tg_grad(b));
    CHECK(gb && fabs(gb[0] - 32) < 1e-12 && fabs(gb[2] - 32) < 1e-12); /* N*H*W ones */
    free(gb);
    bool prev = tg_set_grad_enabled(false);
    CHECK(!tg_requires_grad(tg_conv2d(x, w, b, NULL)));
    tg_set_grad_enabled(prev);
}

/* Empty batches, channels and outputs, as PyTorch: an empty result, zero gradients, and
 * a sum over no input channels is the bias. */
TEST(conv_empty) {
    NEEDS_CONV();
    tg_tensor *x = tg_param(z(TG_F64, TG_SHAPE(0, 2, 5, 5))), *w = tg_param(r64(TG_SHAPE(3, 2, 3, 3)));
    tg_tensor *b = tg_param(r64(TG_SHAPE(3)));
    tg_tensor *y = tg_conv2d(x, w, b, NULL);
    CHECK(y && tg_numel(y) == 0 && tg_shape_of(y).dims[2] == 3);
    CHECK(tg_backward(tg_sum(y, TG_ALL, false)) == TG_OK);
    double *gw = tg_test_values(tg_grad(w)), *gb = tg_test_values(tg_grad(b));
    CHECK(gw && gb && gw[0] == 0 && gw[53] == 0 && gb[2] == 0);
    free(gw), free(gb);
    double bias[2] = { 1.5, -2 };
    y = tg_conv2d(z(TG_F64, TG_SHAPE(1, 0, 3, 3)), z(TG_F64, TG_SHAPE(2, 0, 2, 2)), tg_from_f64(bias, TG_SHAPE(2), dev()), NULL);
    double want[8] = { 1.5, 1.5, 1.5, 1.5, -2, -2, -2, -2 };
    CHECK(compare(y, TG_SHAPE(1, 2, 2, 2), want, TG_F64, 1) == 0);
    y = tg_conv_transpose2d(r64(TG_SHAPE(1, 2, 3, 3)), z(TG_F64, TG_SHAPE(2, 0, 2, 2)), NULL, NULL);
    CHECK(y && tg_numel(y) == 0 && tg_shape_of(y).dims[1] == 0 && tg_shape_of(y).dims[3] == 4);
}

static bool ready(void) {
    if (!tg_test_device_ready()) return false;
    tg_manual_seed(7);
    tg_clear_error();
    tg_scope_begin();
    g_supported = tg_conv2d(z(TG_F64, TG_SHAPE(1, 1, 2, 2)), z(TG_F64, TG_SHAPE(1, 1, 1, 1)), NULL, NULL) != NULL;
    snprintf(g_why, sizeof g_why, "%s", tg_last_error());
    tg_scope_end();
    return true;
}

TG_TEST_MAIN_WITH(ready, &tg_case_conv2d_forward_grid, &tg_case_conv1d_forward_grid, &tg_case_conv_transpose2d_forward_grid,
                  &tg_case_conv2d_same_even_kernel_by_hand, &tg_case_conv2d_gradcheck, &tg_case_conv1d_gradcheck,
                  &tg_case_conv_transpose2d_gradcheck, &tg_case_conv_gradgradcheck, &tg_case_conv_errors,
                  &tg_case_conv_device_kernel_or_message, &tg_case_conv_backward_fills_grads, &tg_case_conv_empty)
