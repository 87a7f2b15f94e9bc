/* 2-D pooling kernels (lib/opencl/pool.c) with the CPU's semantics (lib/cpu/pool.c):
 * windows as tg_pool_window, ties keep the first maximum, a NaN replaces the running
 * maximum, an empty (dilated) window gives -inf and PyTorch's index. Backward gathers:
 * each dx element sums the outputs whose windows hold it, in output order, so results
 * are deterministic and match the CPU's scatter order; max_unpool2d picks the last
 * write of each position with atomic_max on a winner table. Geometry:
 * ga = (N, C, H, W, OH, OW, KH, KW), gb = (sh, sw, ph, pw, dh, dw, flags, divisor),
 * flags bit 0 count_include_pad, bit 1 adaptive. Tensors are dense. */
#if T_FLOAT

typedef struct {
    long N, C, H, W, OH, OW, k[2], s[2], p[2], d[2], divisor;
    int include_pad, adaptive;
} pgeom;

inline pgeom pgeom_of(long8 a, long8 b) {
    pgeom g;
    g.N = a.s0, g.C = a.s1, g.H = a.s2, g.W = a.s3, g.OH = a.s4, g.OW = a.s5, g.k[0] = a.s6, g.k[1] = a.s7;
    g.s[0] = b.s0, g.s[1] = b.s1, g.p[0] = b.s2, g.p[1] = b.s3, g.d[0] = b.s4, g.d[1] = b.s5;
    g.include_pad = (int)(b.s6 & 1), g.adaptive = (int)(b.s6 >> 1 & 1), g.divisor = b.s7;
    return g;
}

/* The input positions output o reads on axis a: lo, lo + step, ... < hi. */
typedef struct {
    long lo, hi, step, padded;
} pwin;

inline pwin pool_window(const pgeom *g, int is_max, int a, long o) {
    long in = a ? g->W : g->H, out = a ? g->OW : g->OH;
    pwin w = { 0, 0, 1, 0 };
    if (g->adaptive) {
        w.lo = o * in / out;
        w.hi = ((o + 1) * in + out - 1) / out;
        w.padded = w.hi - w.lo;
        return w;
    }
    long s = o * g->s[a] - g->p[a];
    if (is_max) {
        long d = g->d[a], e = s + (g->k[a] - 1) * d + 1;
        if (s < 0) s += (-s + d - 1) / d * d;
        w.lo = s;
        w.hi = e < in ? e : in;
        w.step = d;
    } else {
        long e = s + g->k[a], pe = in + g->p[a];
        if (e > pe) e = pe;
        w.padded = e - s;
        w.lo = s < 0 ? 0 : s;
        w.hi = e < in ? e : in;
    }
    return w;
}

inline long pool_divisor(const pgeom *g, pwin hw, pwin ww) {
    if (g->divisor) return g->divisor;
    if (g->include_pad && !g->adaptive) return hw.padded * ww.padded;
    return (hw.hi - hw.lo) * (ww.hi - ww.lo);
}

/* The outputs on axis a whose windows may hold input position i: [*first, *last]
 * (a superset for adaptive windows; the caller checks each). */
inline void out_range(const pgeom *g, int a, long i, long *first, long *last) {
    long in = a ? g->W : g->H, out = a ? g->OW : g->OH;
    if (g->adaptive) {
        *first = max(i * out / in - 1, 0L);
        *last = min((i + 1) * out / in, out - 1);
        return;
    }
    long hi = i + g->p[a], lo = hi - (g->k[a] - 1) * g->d[a];
    *first = lo <= 0 ? 0 : (lo + g->s[a] - 1) / g->s[a];
    *last = min(hi / g->s[a], out - 1);
}

/* Whether the window of output o on axis a holds input position i as one of its taps. */
inline int holds(const pgeom *g, int is_max, int a, long o, long i) {
    pwin w = pool_window(g, is_max, a, o);
    return i >= w.lo && i < w.hi && (i - w.lo) % w.step == 0;
}

#define GEOM_ARGS long8 ga, long8 gb

#if defined(K_tg_pool_max)
/* One work-item per output; idx (i64) written when has_idx. */
__kernel void tg_pool_max(GEOM_ARGS, __global const T *x, long xo, __global T *y, long yo, __global long *idx,
                          long io, int has_idx) {
    pgeom g = pgeom_of(ga, gb);
    long i = get_global_id(0), OHW = g.OH * g.OW;
    if (i >= g.N * g.C * OHW) return;
    long p = i / OHW, r = i - p * OHW, oh = r / g.OW, ow = r - oh * g.OW;
    pwin hw = pool_window(&g, 1, 0, oh), ww = pool_window(&g, 1, 1, ow);
    __global const T *xp = x + xo + p * g.H * g.W;
    T m = (T)-INFINITY;
    long mi = hw.lo * g.W + ww.lo;
    for (long h = hw.lo; h < hw.hi; h += hw.step)
        for (long w = ww.lo; w < ww.hi; w += ww.step) {
            T v = xp[h * g.W + w];
            if (v > m || v != v) {
                m = v;
                mi = h * g.W + w;
            }
        }
    y[yo + i] = m;
    if (has_idx) idx[io + i] = mi;
}
#endif

#if defined(K_tg_pool_avg)
__kernel void tg_pool_avg(GEOM_ARGS, __global const T *x, long xo, __global T *y, long yo) {
    pgeom g = pgeom_of(ga, gb);
    long i = get_global_id(0), OHW = g.OH * g.OW;
    if (i >= g.N * g.C * OHW) return;
    long p = i / OHW, r = i - p * OHW, oh = r / g.OW, ow = r - oh * g.OW;
    pwin hw = pool_window(&g, 0, 0, oh), ww = pool_window(&g, 0, 1, ow);
    __global const T *xp = x + xo + p * g.H * g.W;
    W s = 0;
    for (long h = hw.lo; h < hw.hi; h++)
        for (long w = ww.lo; w < ww.hi; w++) s += (W)xp[h * g.W + w];
    y[yo + i] = (T)(s / (W)pool_divisor(&g, hw, ww));
}
#endif

#if defined(K_tg_pool_bwd_max) || defined(K_tg_pool_bwd_avg)
/* One work-item per dx element: the sum over the outputs whose windows hold it (max:
 * whose index names it), in row-major output order as the CPU adds them. */
#if defined(K_tg_pool_bwd_max)
#define BWD_KERNEL tg_pool_bwd_max
#define IS_MAX 1
#else
#define BWD_KERNEL tg_pool_bwd_avg
#define IS_MAX 0
#endif
__kernel void BWD_KERNEL(GEOM_ARGS, __global const T *dout, long go, __global const long *idx, long io,
                         __global T *dx, long dxo) {
    pgeom g = pgeom_of(ga, gb);
    long e = get_global_id(0), HW = g.H * g.W, OHW = g.OH * g.OW;
    if (e >= g.N * g.C * HW) return;
    long p = e / HW, pos = e - p * HW, ih = pos / g.W, iw = pos - ih * g.W;
    long oh0, oh1, ow0, ow1;
    out_range(&g, 0, ih, &oh0, &oh1);
    out_range(&g, 1, iw, &ow0, &ow1);
    __global const T *gp = dout + go + p * OHW;
    T acc = 0;
    for (long oh = oh0; oh <= oh1; oh++) {
        if (!holds(&g, IS_MAX, 0, oh, ih)) continue;
#if !IS_MAX
        pwin hw = pool_window(&g, 0, 0, oh);
#endif
        for (long ow = ow0; ow <= ow1; ow++) {
            if (!holds(&g, IS_MAX, 1, ow, iw)) continue;
            long o = oh * g.OW + ow;
#if IS_MAX
            if (idx[io + p * OHW + o] == pos) acc += gp[o];
#else
            acc += gp[o] / (T)pool_divisor(&g, hw, pool_window(&g, 0, 1, ow));
#endif
        }
    }
    dx[dxo + e] = acc;
}
#endif

#if defined(K_tg_pool_bwd_max_planes)
/* Max backward where some window is empty (its index may name any position, or none):
 * one work-item per plane, the CPU's loop. */
__kernel void tg_pool_bwd_max_planes(GEOM_ARGS, __global const T *dout, long go, __global const long *idx, long io,
                                     __global T *dx, long dxo) {
    pgeom g = pgeom_of(ga, gb);
    long p = get_global_id(0), HW = g.H * g.W, OHW = g.OH * g.OW;
    if (p >= g.N * g.C) return;
    __global T *d = dx + dxo + p * HW;
    for (long i = 0; i < HW; i++) d[i] = 0;
    for (long o = 0; o < OHW; o++) {
        long v = idx[io + p * OHW + o];
        if (v >= 0 && v < HW) d[v] += dout[go + p * OHW + o];
    }
}
#endif

#if defined(K_tg_unpool_win)
/* win[p, v] = the last position j of plane p whose index is v (atomic_max: the last
 * write wins, as the CPU's loop); an index outside the plane records the smallest
 * element position in bad. */
__kernel void tg_unpool_win(GEOM_ARGS, __global const long *idx, long io, __global int *win, __global int *bad) {
    pgeom g = pgeom_of(ga, gb);
    long i = get_global_id(0), HW = g.H * g.W, OHW = g.OH * g.OW;
    if (i >= g.N * g.C * OHW) return;
    long p = i / OHW, v = idx[io + i];
    if (v < 0 || v >= HW) {
        atomic_min(bad, (int)min(i, (long)INT_MAX - 1));
        return;
    }
    atomic_max(win + p * HW + v, (int)(i - p * OHW));
}
#endif

#if defined(K_tg_unpool_out)
__kernel void tg_unpool_out(GEOM_ARGS, __global const int *win, __global const T *x, long xo, __global T *y, long yo) {
    pgeom g = pgeom_of(ga, gb);
    long e = get_global_id(0), HW = g.H * g.W;
    if (e >= g.N * g.C * HW) return;
    int w = win[e];
    y[yo + e] = w >= 0 ? x[xo + e / HW * g.OH * g.OW + w] : (T)0;
}
#endif

#endif
