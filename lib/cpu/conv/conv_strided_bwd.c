/* conv2d's backward-data at stride > 1 by sub-pixel decomposition: the positions of dx
 * fall into sh * sw residue classes (a, b) (ih = a + sh*i, iw = b + sw*j); each class
 * reads dout through only the taps that land on it, at stride 1, so it is a stride-1
 * forward conv of dout with that sub-kernel flipped and transposed (C outputs from M
 * inputs), run by the forward dispatch's fast kernels into a temporary and scattered onto
 * the class's sub-grid of dx. col2im over the packed GEMM (conv_col_bwd_data), which this
 * replaces, reached a third of the FMA peak on ResNet-20's 16 -> 32 3x3 at stride 2.
 * Scratch: conv.c's per-thread buffers, a slot of its own held across the sub-convs. */
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/conv/conv_impl.h"
#include "lib/cpu/conv/conv_strided_bwd.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* ---------------------------------------------------------------- one axis of a class */

/* Along one axis (stride s, kernel K, dilation d, top/left padding p, input size H), the
 * class of positions ih = a + s*i reads the taps k with s | a + p - k*d: none, or those
 * from `first` every `step` (s / gcd(d, s)), `taps` of them. With e = (a + p - first*d)
 * / s, position i reads dout row i + e - t*dil for tap first + t*step (dil = d / gcd), a
 * stride-1 conv with the taps reversed and padding dil*(taps - 1) - e; a negative padding
 * becomes zero and `skip` leading output rows that are dropped. */
typedef struct {
    int64_t first, step, taps, dil; /* taps == 0: no tap reaches the class */
    int64_t pad, skip;
    int64_t n; /* the class's positions: those of [0, H) that are a mod s */
} strided_axis;

static int64_t strided_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

static strided_axis strided_axis_of(int64_t a, int64_t s, int64_t K, int64_t d, int64_t p, int64_t H)
{
    strided_axis x = { 0 };
    x.n = a < H ? (H - a + s - 1) / s : 0;
    int64_t gd = strided_gcd(d, s);
    x.step = s / gd, x.dil = d / gd;
    x.first = -1;
    for (int64_t k = 0; k < K && k < x.step && x.first < 0; k++)
        if (((a + p - k * d) % s + s) % s == 0)
            x.first = k;
    if (x.first < 0)
        return x;
    x.taps = (K - 1 - x.first) / x.step + 1;
    int64_t e = (a + p - x.first * d) / s; /* exact: s divides it */
    x.pad = x.dil * (x.taps - 1) - e;
    if (x.pad < 0)
        x.skip = -x.pad, x.pad = 0;
    return x;
}

/* The class's sub-conv: a forward conv of dout (N, OC, OH, OW) into (N, C, n + skip)
 * rows and columns, stride 1, the sub-kernel's size and dilation. */
static tg_conv2d_geom strided_sub_geom(const tg_conv2d_geom *g, const strided_axis *ah, const strided_axis *aw)
{
    tg_conv2d_geom t = *g;
    t.C = g->OC, t.H = g->OH, t.W = g->OW;
    t.OC = g->C, t.OH = ah->n + ah->skip, t.OW = aw->n + aw->skip;
    t.KH = ah->taps, t.KW = aw->taps;
    t.stride[0] = t.stride[1] = 1;
    t.pad[0] = ah->pad, t.pad[1] = aw->pad;
    t.dilation[0] = ah->dil, t.dilation[1] = aw->dil;
    return t;
}

int tg_conv_strided_bwd_ok(const tg_conv2d_geom *g, int any)
{
    int64_t Cg = g->C / g->groups;
    if (!((g->stride[0] > 1 || g->stride[1] > 1) && g->N > 0 && g->C > 0 && g->H > 0 && g->W > 0 &&
          g->OC > 0 && g->OH > 0 && g->OW > 0))
        return 0;
    /* Where the classes beat col2im (2 threads, bench_conv's bwd_data %pk): ResNet-20's
     * 16 -> 32 3x3 s2 29 -> 34%; they lost on 32 -> 64 s2 (42-48 -> 40-42), 64 -> 128 s2
     * (52 -> 34-40 at b1), the 7x7 3-channel first layer (31-41 -> 25) and 1x1 s2 (48 ->
     * 15): each class then is a small sub-conv that pays a padded copy of dout and a
     * scatter of its own. */
    return any || (Cg >= 8 && Cg <= 16 && !(g->KH == 1 && g->KW == 1));
}

/* Elements a thread's share of a scatter is worth at least (a few microseconds). */
#define TG_STRIDED_SCATTER_GRAIN 32768

#define TG_CONV_STRIDED_BWD(T, S)                                                              \
    /* wt (C x M x taps_h x taps_w) = the class's taps of w (OC x Cg x KH x KW) of each       \
     * group transposed, reversed along both axes. */                                        \
    static void strided_sub_weight_##S(T *wt, const T *w, const tg_conv2d_geom *g,            \
                                       const strided_axis *ah, const strided_axis *aw)        \
    {                                                                                          \
        int64_t Cg = g->C / g->groups, M = g->OC / g->groups, th = ah->taps, tw = aw->taps;   \
        for (int64_t gi = 0; gi < g->groups; gi++)                                             \
            for (int64_t c = 0; c < Cg; c++)                                                   \
                for (int64_t m = 0; m < M; m++) {                                              \
                    const T *src = w + ((gi * M + m) * Cg + c) * g->KH * g->KW;                \
                    T *dst = wt + ((gi * Cg + c) * M + m) * th * tw;                           \
                    for (int64_t u = 0; u < th; u++)                                           \
                        for (int64_t v = 0; v < tw; v++)                                       \
                            dst[u * tw + v] = src[(ah->first + ah->step * (th - 1 - u)) * g->KW + \
                                                  aw->first + aw->step * (tw - 1 - v)];        \
                }                                                                              \
    }                                                                                          \
                                                                                               \
    typedef struct {                                                                           \
        T *dx;                /* the class's first position (a, b) of plane 0 */              \
        const T *src;         /* the sub-conv's output past its skipped rows, or NULL: zeros */ \
        int64_t H, W, sh, sw; /* dx's planes, the strides */                                  \
        int64_t nh, nw;       /* the class's rows and columns */                              \
        int64_t src_h, src_w; /* the sub-conv's output plane */                               \
    } strided_scatter_##S;                                                                     \
                                                                                               \
    /* Planes [begin, end) of (N * C): dx[a + sh*i, b + sw*j] = src[i, j]. */                  \
    static void strided_scatter_fn_##S(void *ctx, int64_t begin, int64_t end)                  \
    {                                                                                          \
        const strided_scatter_##S *j = ctx;                                                    \
        for (int64_t pl = begin; pl < end; pl++)                                               \
            for (int64_t i = 0; i < j->nh; i++) {                                              \
                T *d = j->dx + pl * j->H * j->W + i * j->sh * j->W;                            \
                const T *s = j->src ? j->src + (pl * j->src_h + i) * j->src_w : NULL;         \
                for (int64_t jj = 0; jj < j->nw; jj++)                                         \
                    d[jj * j->sw] = s ? s[jj] : (T)0;                                          \
            }                                                                                  \
    }                                                                                          \
                                                                                               \
    static void strided_scatter_run_##S(strided_scatter_##S *j, int64_t planes)                \
    {                                                                                          \
        int64_t per = j->nh * j->nw > 0 ? j->nh * j->nw : 1;                                   \
        int64_t grain = (TG_STRIDED_SCATTER_GRAIN + per - 1) / per;                            \
        tg_pool_parallel_for(planes, grain, strided_scatter_fn_##S, j);                        \
    }                                                                                          \
                                                                                               \
    /* The class (a, b): its sub-conv into tmp (weight in wt), then its scatter. */            \
    static tg_status strided_class_##S(T *dx, const T *dout, const T *w, const tg_conv2d_geom *g, \
                                       int64_t a, int64_t b, T *wt, T *tmp)                   \
    {                                                                                          \
        strided_axis ah = strided_axis_of(a, g->stride[0], g->KH, g->dilation[0], g->pad[0], g->H); \
        strided_axis aw = strided_axis_of(b, g->stride[1], g->KW, g->dilation[1], g->pad[1], g->W); \
        if (ah.n == 0 || aw.n == 0)                                                            \
            return TG_OK;                                                                      \
        strided_scatter_##S j = { dx + a * g->W + b, NULL, g->H, g->W, g->stride[0], g->stride[1], \
                                  ah.n, aw.n, ah.n + ah.skip, aw.n + aw.skip };               \
        if (ah.taps > 0 && aw.taps > 0) {                                                      \
            tg_conv2d_geom t = strided_sub_geom(g, &ah, &aw);                                  \
            strided_sub_weight_##S(wt, w, g, &ah, &aw);                                        \
            tg_status st = tg_cpu_conv2d_forward_##S(tmp, dout, wt, NULL, &t);                 \
            if (st != TG_OK)                                                                   \
                return st;                                                                     \
            j.src = tmp + ah.skip * j.src_w + aw.skip;                                         \
        }                                                                                      \
        strided_scatter_run_##S(&j, g->N * g->C);                                              \
        return TG_OK;                                                                          \
    }                                                                                          \
                                                                                               \
    tg_status tg_conv_strided_bwd_data_##S(T *dx, const T *dout, const T *w, const tg_conv2d_geom *g) \
    {                                                                                          \
        int64_t M = g->OC / g->groups, wmax = 0, tmax = 0;                                     \
        for (int64_t a = 0; a < g->stride[0]; a++)                                             \
            for (int64_t b = 0; b < g->stride[1]; b++) {                                       \
                strided_axis ah = strided_axis_of(a, g->stride[0], g->KH, g->dilation[0], g->pad[0], g->H); \
                strided_axis aw = strided_axis_of(b, g->stride[1], g->KW, g->dilation[1], g->pad[1], g->W); \
                int64_t wn = g->C * M * ah.taps * aw.taps;                                     \
                int64_t tn = g->N * g->C * (ah.n + ah.skip) * (aw.n + aw.skip);                \
                wmax = wn > wmax ? wn : wmax, tmax = tn > tmax ? tn : tmax;                    \
            }                                                                                  \
        wmax = (wmax + 15) / 16 * 16; /* keeps tmp 64-byte aligned */                          \
        T *wt = tg_conv_scratch(TG_CONV_SLOT_STRIDED, (size_t)(wmax + tmax) * sizeof(T));                            \
        if (!wt)                                                                               \
            return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for the strided classes"); \
        for (int64_t a = 0; a < g->stride[0]; a++)                                             \
            for (int64_t b = 0; b < g->stride[1]; b++) {                                       \
                tg_status st = strided_class_##S(dx, dout, w, g, a, b, wt, wt + wmax);         \
                if (st != TG_OK)                                                               \
                    return st;                                                                 \
            }                                                                                  \
        return TG_OK;                                                                          \
    }

TG_CONV_STRIDED_BWD(float, f32)
TG_CONV_STRIDED_BWD(double, f64)
