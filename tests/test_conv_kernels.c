/* Checks the CPU conv2d kernels against the naive f64 loops (conv_ref.c): forward,
 * backward-data and backward-weight on a grid of random geometries (strides, paddings
 * including asymmetric, dilations, groups including depthwise and multipliers, odd
 * sizes, batch 1, one channel, kernels larger than the unpadded input, 1x1) and a few
 * fixed ones large enough to cross the cache blocks, in f32 and f64, through every
 * algorithm that applies, every GEMM kernel set this CPU runs (so each SIMD packer and
 * micro-kernel meets its C twin's results) and 1 and 2 threads.
 *
 * Tolerance: |got - ref| <= (R + 2) * eps * mag, R the length of the sum, mag the same
 * sum over absolute values (the reference run on |inputs|), eps of the dtype: the
 * worst-case bound for two summation orders. A wrong term is off by about mag itself.
 * Elements past the end of each output must keep their sentinel. The oracle itself is
 * checked against a hand-computed case, and the three kernels against each other by the
 * adjoint identities <conv(x,w), dy> = <x, bwd_data(dy,w)> = <w, bwd_weight(dy,x)>. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "lib/cpu/conv/conv.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"

static int g_passed, g_failed;
static char g_ctx[160];

static uint64_t g_rng = 0x9E3779B97F4A7C15u;
static uint64_t rnd_u(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static double rnd(void) { return (double)(rnd_u() >> 11) * 0x1p-52 - 1.0; }
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd_u() % (uint64_t)(hi - lo + 1)); }

#define SENTINEL (-7777.0)
#define GUARD 5

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void report(int bad, const char *what, const tg_conv2d_geom *g)
{
    if (!bad) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("FAIL %s %s: N=%lld C=%lld H=%lld W=%lld OC=%lld K=%lldx%lld OH=%lld OW=%lld "
           "s=%lld,%lld p=%lld,%lld d=%lld,%lld groups=%lld\n",
           g_ctx, what, (long long)g->N, (long long)g->C, (long long)g->H, (long long)g->W,
           (long long)g->OC, (long long)g->KH, (long long)g->KW, (long long)g->OH, (long long)g->OW,
           (long long)g->stride[0], (long long)g->stride[1], (long long)g->pad[0],
           (long long)g->pad[1], (long long)g->dilation[0], (long long)g->dilation[1],
           (long long)g->groups);
}

/* ---------------------------------------------------------------- one geometry */

typedef struct {
    int64_t nx, nw, no;
    double *x, *w, *b, *dy;           /* inputs (f64; the f32 run uses them rounded) */
    double *ax, *aw, *ady;            /* |inputs| for the magnitudes */
    double *ref_o, *ref_dx, *ref_dw;  /* the oracle on the inputs (rounded for f32) */
    double *mag_o, *mag_dx, *mag_dw;  /* the oracle on |inputs| */
} problem;

/* Compares n values of got (T) with ref within (R + 2) * eps * mag; checks the guard. */
#define TG_CMP(T)                                                                           \
    static int cmp_##T(const T *got, const double *ref, const double *mag, int64_t n,       \
                       double R, double eps, int64_t *at)                                   \
    {                                                                                       \
        int bad = 0;                                                                        \
        for (int64_t i = 0; i < n; i++)                                                     \
            if (!(fabs((double)got[i] - ref[i]) <= (R + 2) * eps * mag[i] + 1e-300)) {     \
                if (!bad++)                                                                 \
                    *at = i;                                                                \
            }                                                                               \
        for (int64_t i = n; i < n + GUARD; i++)                                             \
            if (got[i] != (T)SENTINEL) {                                                    \
                if (!bad++)                                                                 \
                    *at = i;                                                                \
            }                                                                               \
        return bad;                                                                         \
    }
TG_CMP(float)
TG_CMP(double)

static void prob_free(problem *p)
{
    double *v[] = { p->x, p->w, p->b, p->dy, p->ax, p->aw, p->ady, p->ref_o, p->ref_dx,
                    p->ref_dw, p->mag_o, p->mag_dx, p->mag_dw };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        free(v[i]);
}

/* The oracle's results for the inputs of p (rounded to f32 first when f32). */
static void prob_ref(problem *p, const tg_conv2d_geom *g, int f32, int bias)
{
    double *x = p->x, *w = p->w, *b = p->b, *dy = p->dy;
    double *rx = NULL, *rw = NULL, *rb = NULL, *rdy = NULL;
    if (f32) { /* the same rounded inputs the f32 kernels see */
        rx = xmalloc((size_t)p->nx * 8), rw = xmalloc((size_t)p->nw * 8);
        rb = xmalloc((size_t)g->OC * 8 + 8), rdy = xmalloc((size_t)p->no * 8);
        for (int64_t i = 0; i < p->nx; i++) rx[i] = (float)x[i];
        for (int64_t i = 0; i < p->nw; i++) rw[i] = (float)w[i];
        for (int64_t i = 0; i < g->OC; i++) rb[i] = (float)b[i];
        for (int64_t i = 0; i < p->no; i++) rdy[i] = (float)dy[i];
        x = rx, w = rw, b = rb, dy = rdy;
    }
    tg_cpu_conv2d_ref_forward_f64(p->ref_o, x, w, bias ? b : NULL, g);
    tg_cpu_conv2d_ref_backward_data_f64(p->ref_dx, dy, w, g);
    tg_cpu_conv2d_ref_backward_weight_f64(p->ref_dw, dy, x, g);
    free(rx), free(rw), free(rb), free(rdy);
}

static problem prob_new(const tg_conv2d_geom *g)
{
    problem p = { 0 };
    p.nx = g->N * g->C * g->H * g->W;
    p.nw = g->OC * (g->C / g->groups) * g->KH * g->KW;
    p.no = g->N * g->OC * g->OH * g->OW;
    double **all[] = { &p.x, &p.ax, &p.ref_dx, &p.mag_dx, &p.w, &p.aw, &p.ref_dw, &p.mag_dw,
                       &p.dy, &p.ady, &p.ref_o, &p.mag_o };
    int64_t sz[] = { p.nx, p.nx, p.nx, p.nx, p.nw, p.nw, p.nw, p.nw, p.no, p.no, p.no, p.no };
    for (int i = 0; i < 12; i++)
        *all[i] = xmalloc((size_t)(sz[i] + GUARD) * sizeof(double));
    p.b = xmalloc((size_t)(g->OC + 1) * sizeof(double));
    for (int64_t i = 0; i < p.nx; i++) p.x[i] = rnd(), p.ax[i] = fabs(p.x[i]);
    for (int64_t i = 0; i < p.nw; i++) p.w[i] = rnd(), p.aw[i] = fabs(p.w[i]);
    for (int64_t i = 0; i < p.no; i++) p.dy[i] = rnd(), p.ady[i] = fabs(p.dy[i]);
    for (int64_t i = 0; i < g->OC; i++) p.b[i] = rnd();
    double *absb = xmalloc((size_t)(g->OC + 1) * sizeof(double));
    for (int64_t i = 0; i < g->OC; i++) absb[i] = fabs(p.b[i]);
    tg_cpu_conv2d_ref_forward_f64(p.mag_o, p.ax, p.aw, absb, g);
    tg_cpu_conv2d_ref_backward_data_f64(p.mag_dx, p.ady, p.aw, g);
    tg_cpu_conv2d_ref_backward_weight_f64(p.mag_dw, p.ady, p.ax, g);
    free(absb);
    return p;
}

/* Runs the three kernels in type T on p and compares with the oracle. */
#define TG_RUN(T, S, EPS)                                                                   \
    static void run_##S(problem *p, const tg_conv2d_geom *g, int bias)                     \
    {                                                                                       \
        T *x = xmalloc((size_t)(p->nx + GUARD) * sizeof(T));                                \
        T *w = xmalloc((size_t)(p->nw + GUARD) * sizeof(T));                                \
        T *b = xmalloc((size_t)(g->OC + 1) * sizeof(T));                                    \
        T *dy = xmalloc((size_t)(p->no + GUARD) * sizeof(T));                               \
        T *o = xmalloc((size_t)(p->no + GUARD) * sizeof(T));                                \
        T *dx = xmalloc((size_t)(p->nx + GUARD) * sizeof(T));                               \
        T *dw = xmalloc((size_t)(p->nw + GUARD) * sizeof(T));                               \
        for (int64_t i = 0; i < p->nx; i++) x[i] = (T)p->x[i];                              \
        for (int64_t i = 0; i < p->nw; i++) w[i] = (T)p->w[i];                              \
        for (int64_t i = 0; i < g->OC; i++) b[i] = (T)p->b[i];                              \
        for (int64_t i = 0; i < p->no; i++) dy[i] = (T)p->dy[i];                            \
        for (int64_t i = 0; i < p->no + GUARD; i++) o[i] = i < p->no ? (T)NAN : (T)SENTINEL; \
        for (int64_t i = 0; i < p->nx + GUARD; i++) dx[i] = i < p->nx ? (T)NAN : (T)SENTINEL; \
        for (int64_t i = 0; i < p->nw + GUARD; i++) dw[i] = i < p->nw ? (T)NAN : (T)SENTINEL; \
        int64_t at = 0, Cg = g->C / g->groups, OCg = g->OC / g->groups;                     \
        int bad = tg_cpu_conv2d_forward_##S(o, x, w, bias ? b : NULL, g) != TG_OK;          \
        bad = bad || cmp_##T(o, p->ref_o, p->mag_o, p->no, (double)(Cg * g->KH * g->KW + 1), EPS, &at); \
        report(bad, #S " forward", g);                                                      \
        bad = tg_cpu_conv2d_backward_data_##S(dx, dy, w, g) != TG_OK;                       \
        bad = bad || cmp_##T(dx, p->ref_dx, p->mag_dx, p->nx, (double)(OCg * g->KH * g->KW), EPS, &at); \
        report(bad, #S " backward_data", g);                                                \
        bad = tg_cpu_conv2d_backward_weight_##S(dw, dy, x, g) != TG_OK;                     \
        bad = bad || cmp_##T(dw, p->ref_dw, p->mag_dw, p->nw, (double)(g->N * g->OH * g->OW), EPS, &at); \
        report(bad, #S " backward_weight", g);                                              \
        free(x), free(w), free(b), free(dy), free(o), free(dx), free(dw);                   \
    }
TG_RUN(float, f32, 0x1p-23)
TG_RUN(double, f64, 0x1p-52)

/* ---------------------------------------------------------------- geometries */

/* Output size with top/left padding pad and bottom/right padding pad + extra. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t extra, int64_t d)
{
    int64_t span = in + 2 * pad + extra - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

static tg_conv2d_geom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH,
                           int64_t KW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                           int64_t eh, int64_t ew, int64_t dh, int64_t dw, int64_t groups)
{
    tg_conv2d_geom g = { N, C, H, W, OC, KH, KW, 0, 0, { sh, sw }, { ph, pw }, { dh, dw }, groups };
    g.OH = out_size(H, KH, sh, ph, eh, dh);
    g.OW = out_size(W, KW, sw, pw, ew, dw);
    return g;
}

static tg_conv2d_geom random_geom(void)
{
    for (;;) {
        int kind = (int)rnd_in(0, 9);
        int64_t groups = kind < 6 ? 1 : kind < 8 ? rnd_in(2, 3) : 0;
        int64_t Cg = rnd_in(1, kind == 5 ? 40 : 6), OCg = rnd_in(1, kind == 4 ? 33 : 7);
        int64_t C = groups ? groups * Cg : rnd_in(1, 6);
        int64_t OC = groups ? groups * OCg : C * rnd_in(1, 3); /* depthwise, multiplier */
        groups = groups ? groups : C;
        int64_t KH = rnd_in(1, 4), KW = rnd_in(1, 5);
        tg_conv2d_geom g = geom(rnd_in(1, 3), C, rnd_in(1, 13), rnd_in(1, 17), OC, KH, KW,
                                rnd_in(1, 3), rnd_in(1, 3), rnd_in(0, 3), rnd_in(0, 3),
                                rnd_in(-1, 2), rnd_in(-1, 2), rnd_in(1, 2), rnd_in(1, 2), groups);
        if (g.OH > 0 && g.OW > 0)
            return g;
    }
}

static void run_geom(const tg_conv2d_geom *g, int both)
{
    static const tg_conv_algo algos[] = { TG_CONV_AUTO, TG_CONV_IMPLICIT, TG_CONV_COL, TG_CONV_GEMM, TG_CONV_DIRECT,
                                          TG_CONV_LANES, TG_CONV_WINOGRAD };
    static const char *const algo_names[] = { "auto", "implicit", "col", "gemm", "direct", "lanes", "winograd" };
    static const char *const sets[] = { "avx512", "avx2", "c" };
    problem p = prob_new(g);
    int bias = (int)(rnd_u() & 1) || g->C > 4;
    for (int f32 = 0; f32 < 2; f32++) {
        prob_ref(&p, g, f32, bias);
        for (int s = 0; s < 3; s++) {
            if (tg_gemm_select(sets[s]) != 0)
                continue;
            for (int t = 1; t <= 2; t++) {
                if (!both && t == 1 && s > 0)
                    continue;
                tg_pool_set_num_threads(t);
                for (int a = 0; a < 7; a++) {
                    if (algos[a] == TG_CONV_GEMM && !(g->KH == 1 && g->KW == 1))
                        continue;
                    if (algos[a] == TG_CONV_WINOGRAD && (!f32 || g->KH != 3 || g->KW != 3)) /* else AUTO again */
                        continue;
                    if ((algos[a] == TG_CONV_DIRECT || algos[a] == TG_CONV_LANES) && (!f32 || s > 0)) /* f32 on AVX-512 only: else AUTO again */
                        continue;
                    tg_cpu_conv_set_algo(algos[a]);
                    snprintf(g_ctx, sizeof g_ctx, "%s %d thr %s", sets[s], t, algo_names[a]);
                    if (f32)
                        run_f32(&p, g, bias);
                    else
                        run_f64(&p, g, bias);
                }
            }
        }
        tg_gemm_select("");
        tg_cpu_conv_set_algo(TG_CONV_AUTO);
    }
    prob_free(&p);
}

/* A large shape: f32 only, the default kernel set, 2 threads, AUTO and the lanes. */
static void run_bench_shape(const tg_conv2d_geom *g)
{
    static const tg_conv_algo algos[] = { TG_CONV_AUTO, TG_CONV_LANES };
    problem p = prob_new(g);
    prob_ref(&p, g, 1, 1);
    tg_pool_set_num_threads(2);
    for (int a = 0; a < 2; a++) {
        tg_cpu_conv_set_algo(algos[a]);
        snprintf(g_ctx, sizeof g_ctx, "bench shape %s", a ? "lanes" : "auto");
        run_f32(&p, g, 1);
    }
    tg_cpu_conv_set_algo(TG_CONV_AUTO);
    prob_free(&p);
}

/* ---------------------------------------------------------------- the checks */

/* The oracle on a case worked by hand: x = 1..9 (3x3), w = [[1,0],[0,-1]] + bias 10,
 * pad 1, stride 2: out[oh,ow] = 10 + x[2oh-1, 2ow-1] - x[2oh, 2ow]. */
static void check_oracle(void)
{
    double x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, w[4] = { 1, 0, 0, -1 }, b = 10, o[4];
    tg_conv2d_geom g = geom(1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1);
    tg_cpu_conv2d_ref_forward_f64(o, x, w, &b, &g);
    double want[4] = { 10 - 1, 10 - 3, 10 - 7, 10 + 5 - 9 };
    int bad = g.OH != 2 || g.OW != 2;
    for (int i = 0; i < 4; i++)
        bad |= o[i] != want[i];
    snprintf(g_ctx, sizeof g_ctx, "oracle");
    report(bad, "hand-computed forward", &g);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* <conv(x,w), dy> = <x, bwd_data(dy,w)> = <w, bwd_weight(dy,x)>, through the fast f64
 * kernels and again through the oracle. */
static void check_adjoint(const tg_conv2d_geom *g)
{
    problem p = prob_new(g);
    double *o = xmalloc((size_t)p.no * 8), *dx = xmalloc((size_t)p.nx * 8);
    double *dw = xmalloc((size_t)p.nw * 8);
    for (int fast = 0; fast < 2; fast++) {
        if (fast) {
            tg_cpu_conv2d_forward_f64(o, p.x, p.w, NULL, g);
            tg_cpu_conv2d_backward_data_f64(dx, p.dy, p.w, g);
            tg_cpu_conv2d_backward_weight_f64(dw, p.dy, p.x, g);
        } else {
            tg_cpu_conv2d_ref_forward_f64(o, p.x, p.w, NULL, g);
            tg_cpu_conv2d_ref_backward_data_f64(dx, p.dy, p.w, g);
            tg_cpu_conv2d_ref_backward_weight_f64(dw, p.dy, p.x, g);
        }
        double a = dot(o, p.dy, p.no), b = dot(p.x, dx, p.nx), c = dot(p.w, dw, p.nw);
        double mag = dot(p.mag_o, p.ady, p.no) + 1e-300; /* sum of |terms| */
        snprintf(g_ctx, sizeof g_ctx, "adjoint %s", fast ? "fast" : "oracle");
        report(!(fabs(a - b) <= 1e-12 * mag && fabs(a - c) <= 1e-12 * mag), "identity", g);
    }
    free(o), free(dx), free(dw);
    prob_free(&p);
}

/* The tensor entry points: the same result as the raw one, and clear errors. */
static void check_tensors(void)
{
    tg_device *cpu = tg_device_get("cpu");
    tg_conv2d_geom g = geom(2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1);
    tg_scope_begin();
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 5, 6), cpu);
    tg_tensor *w = tg_randn(TG_F32, TG_SHAPE(4, 3, 3, 3), cpu);
    tg_tensor *b = tg_randn(TG_F32, TG_SHAPE(4), cpu);
    tg_tensor *o = tg_empty(TG_F32, TG_SHAPE(2, 4, 5, 6), cpu);
    tg_tensor *w64 = tg_randn(TG_F64, TG_SHAPE(4, 3, 3, 3), cpu);
    tg_tensor *wbad = tg_randn(TG_F32, TG_SHAPE(4, 3, 3, 2), cpu);
    float xs[180], ws[108], bs[4], os[240], want[240];
    tg_copy_to_host(x, xs, sizeof xs), tg_copy_to_host(w, ws, sizeof ws);
    tg_copy_to_host(b, bs, sizeof bs);
    snprintf(g_ctx, sizeof g_ctx, "tensors");
    report(tg_cpu_conv2d_forward(o, x, w, b, &g) != TG_OK, "tensor forward", &g);
    tg_copy_to_host(o, os, sizeof os);
    tg_cpu_conv2d_ref_forward_f32(want, xs, ws, bs, &g);
    int bad = 0;
    for (int i = 0; i < 240; i++)
        bad |= !(fabsf(os[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])));
    report(bad, "tensor forward matches the oracle", &g);
    tg_clear_error();
    report(tg_cpu_conv2d_forward(o, x, w64, b, &g) != TG_ERR_DTYPE ||
               !strstr(tg_last_error(), "weight"), "dtype error names the weight", &g);
    report(tg_cpu_conv2d_forward(o, x, wbad, b, &g) != TG_ERR_SHAPE ||
               !strstr(tg_last_error(), "[4,3,3,2]"), "shape error shows the shape", &g);
    tg_conv2d_geom g2 = g;
    g2.groups = 2;
    report(tg_cpu_conv2d_forward(o, x, w, b, &g2) != TG_ERR_INVALID ||
               !strstr(tg_last_error(), "groups"), "groups must divide C", &g2);
    tg_scope_end();
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    check_oracle();
    check_tensors();
    /* fixed cases: edges of the geometry and of the cache blocks */
    const tg_conv2d_geom fixed[] = {
        geom(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),     /* everything 1 */
        geom(1, 1, 2, 3, 2, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),     /* kernel > unpadded input */
        geom(2, 3, 4, 4, 5, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1),     /* even kernel, "same" (asymmetric) */
        geom(3, 7, 9, 9, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),    /* 1x1 */
        geom(2, 600, 3, 5, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),  /* 1x1, K over a block */
        geom(2, 64, 9, 11, 40, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),  /* K 576: two blocks; 3 panels */
        geom(2, 32, 15, 15, 30, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1), /* stride 2 */
        geom(1, 16, 40, 37, 8, 3, 3, 1, 1, 2, 2, 0, 0, 2, 2, 1),  /* dilation, many bands */
        geom(2, 8, 12, 12, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 8),   /* depthwise */
        geom(2, 4, 12, 10, 12, 5, 3, 2, 1, 2, 1, 1, 0, 1, 2, 4),  /* depthwise x3, stride 2 */
        geom(2, 12, 7, 7, 18, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 3),   /* groups 3 */
        geom(4, 16, 28, 28, 32, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1), /* the notes' CNN layer */
        geom(1, 1, 28, 28, 16, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),  /* one input channel */
        geom(1, 40, 7, 7, 50, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),   /* 1x1 stride 2 */
        /* the direct tiles (AUTO's pick at stride 1 for few channels): ResNet-20's first
         * stage (rows of 32: the weight gradient's tiles too), a partial 8-row panel with
         * rows of 16, groups, and 5x5 over rows of 14 (runs across rows and images) */
        geom(1, 16, 8, 32, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 24, 9, 16, 36, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(2, 32, 5, 16, 32, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 2),
        geom(2, 16, 7, 14, 32, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        /* the channel-lane kernels: every tile width and kernel-row block they pick (the
         * notes' CNN, ResNet-20's stages and strided convs), then 20 and 40 channels
         * (lanes past M), dilation, a stride of 2 along one axis only, and groups */
        geom(2, 1, 28, 28, 16, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        geom(2, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(2, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(3, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(2, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1),
        geom(2, 32, 16, 16, 64, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 5, 11, 13, 20, 3, 5, 2, 1, 1, 2, 1, 0, 2, 1, 1),
        geom(1, 3, 9, 7, 40, 5, 3, 1, 2, 2, 1, 0, 1, 1, 1, 1),
        geom(1, 4, 12, 12, 16, 3, 3, 1, 1, 2, 2, 0, 0, 2, 2, 1),
        geom(2, 8, 10, 10, 32, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 2),
        /* a 1-channel gradient (backward-data's one output channel): 3- and 5-row kernels
         * over rows of 1, 2 and 3 vectors */
        geom(2, 1, 9, 20, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 1, 40, 40, 4, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        geom(3, 1, 13, 11, 5, 3, 5, 1, 1, 1, 2, 1, 0, 1, 1, 1),
        /* Winograd's F(2x2, 3x3): outputs of odd and even sizes (partial tiles), padding
         * 0-3 and asymmetric, one row or column, channels not a multiple of 16 or over a
         * K block (600), output channels not a multiple of a panel, and more tiles than a
         * chunk of V holds (5000 tiles of 16 channels: two chunks) */
        geom(1, 1, 3, 3, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1),
        geom(2, 5, 7, 6, 3, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 17, 1, 9, 15, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(3, 20, 10, 11, 29, 3, 3, 1, 1, 2, 0, 1, 0, 1, 1, 1),
        geom(1, 600, 5, 5, 20, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(2, 16, 100, 100, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 8, 6, 7, 5, 3, 3, 1, 1, 3, 3, 0, 0, 1, 1, 1), /* padding 3: backward-data's is -1 */
        /* rows longer than the padded copy's table of masks (1024 floats) */
        geom(1, 1, 3, 1100, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(1, 4, 2, 1050, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        run_geom(&fixed[i], 1);
        check_adjoint(&fixed[i]);
    }
    /* the benchmarked layers at their batch of 64, f32 through AUTO and the lanes */
    const tg_conv2d_geom bench[] = {
        geom(64, 1, 28, 28, 16, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        geom(64, 16, 14, 14, 32, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        geom(64, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(64, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(64, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        geom(64, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1),
        geom(64, 32, 16, 16, 64, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1),
    };
    for (size_t i = 0; !quick && i < sizeof bench / sizeof bench[0]; i++)
        run_bench_shape(&bench[i]);
    int nrand = quick ? 40 : 150;
    for (int i = 0; i < nrand; i++) {
        tg_conv2d_geom g = random_geom();
        run_geom(&g, i % 4 == 0);
        check_adjoint(&g);
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
