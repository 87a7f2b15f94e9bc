/* roi_pool and roi_align kernels (lib/opencl/roi.c) with the CPU's arithmetic
 * (lib/cpu/roi.c, torchvision's): computed in T, the same bins, samples and edge rules.
 * Forward: one work-item per output element. Backward gathers, one work-item per dx
 * element, over the boxes of its image in box order and the bins (samples) that can
 * reach it in bin order, so no two items write one place, no atomics are needed, and
 * sums come in the CPU's order. Geometry: ga = (N, C, H, W, K, PH, PW, sampling_ratio);
 * scale is spatial_scale in T; boxes (K, 5) rows [batch, x1, y1, x2, y2]. */
#if T_FLOAT

#define GEOM_ARGS long8 ga, T scale, int aligned

typedef struct {
    long N, C, H, W, K, PH, PW, sr;
} rgeom;

inline rgeom rgeom_of(long8 a) {
    rgeom g;
    g.N = a.s0, g.C = a.s1, g.H = a.s2, g.W = a.s3, g.K = a.s4, g.PH = a.s5, g.PW = a.s6, g.sr = a.s7;
    return g;
}

inline long roi_batch(const rgeom *g, T v) { return v > (T)-1 && v < (T)g->N ? (long)v : -1; }

/* Where dx element e lies: its plane's image n and channel c, and (ih, iw) = pos. */
typedef struct {
    long n, c, pos, ih, iw;
} site;

inline site site_of(const rgeom *g, long e) {
    site s;
    long HW = g->H * g->W, p = e / HW;
    s.pos = e - p * HW, s.ih = s.pos / g->W, s.iw = s.pos - s.ih * g->W, s.n = p / g->C, s.c = p - s.n * g->C;
    return s;
}

/* ------------------------------------------------------------- roi_pool */

typedef struct {
    long batch, start_h, start_w;
    T bin_h, bin_w;
} pbox;

inline pbox pbox_of(const rgeom *g, __global const T *b, T s) {
    pbox r;
    r.batch = roi_batch(g, b[0]);
    r.start_w = (long)round(b[1] * s);
    r.start_h = (long)round(b[2] * s);
    long rw = (long)round(b[3] * s) - r.start_w + 1, rh = (long)round(b[4] * s) - r.start_h + 1;
    r.bin_h = (T)(rh > 1 ? rh : 1) / (T)g->PH;
    r.bin_w = (T)(rw > 1 ? rw : 1) / (T)g->PW;
    return r;
}

inline long clip_to(long v, long hi) { return v < 0 ? 0 : v > hi ? hi : v; }

inline void pool_bin(long p, T bin, long start, long size, long *lo, long *hi) {
    *lo = clip_to((long)floor((T)p * bin) + start, size);
    *hi = clip_to((long)ceil((T)(p + 1) * bin) + start, size);
}

#if defined(K_tg_roi_pool)
__kernel void tg_roi_pool(GEOM_ARGS, __global const T *x, long xo, __global const T *boxes, long bo, __global T *y,
                          long yo, __global long *am, long ao, int has_am) {
    rgeom g = rgeom_of(ga);
    long i = get_global_id(0), PHW = g.PH * g.PW;
    if (i >= g.K * g.C * PHW) return;
    long u = i / PHW, r = i - u * PHW, ph = r / g.PW, pw = r - ph * g.PW;
    pbox b = pbox_of(&g, boxes + bo + u / g.C * 5, scale);
    long h0, h1, w0, w1, best = -1;
    pool_bin(ph, b.bin_h, b.start_h, g.H, &h0, &h1);
    pool_bin(pw, b.bin_w, b.start_w, g.W, &w0, &w1);
    int empty = h1 <= h0 || w1 <= w0 || b.batch < 0;
    T m = empty ? (T)0 : (T)-FLT_MAX;
    if (!empty) {
        __global const T *xp = x + xo + (b.batch * g.C + u % g.C) * g.H * g.W;
        for (long h = h0; h < h1; h++)
            for (long w = w0; w < w1; w++)
                if (xp[h * g.W + w] > m) {
                    m = xp[h * g.W + w];
                    best = h * g.W + w;
                }
    }
    y[yo + i] = m;
    if (has_am) am[ao + i] = best;
}
#endif

#if defined(K_tg_roi_pool_bwd)
__kernel void tg_roi_pool_bwd(GEOM_ARGS, __global const T *dout, long go, __global const long *am, long ao,
                              __global const T *boxes, long bo, __global T *dx, long dxo) {
    rgeom g = rgeom_of(ga);
    long e = get_global_id(0), PHW = g.PH * g.PW;
    if (e >= g.N * g.C * g.H * g.W) return;
    site at = site_of(&g, e);
    long pos = at.pos, ih = at.ih, iw = at.iw, n = at.n, c = at.c;
    T acc = 0;
    for (long k = 0; k < g.K; k++) {
        __global const T *b = boxes + bo + k * 5;
        if (roi_batch(&g, b[0]) != n) continue;
        pbox r = pbox_of(&g, b, scale);
        long o = (k * g.C + c) * PHW;
        for (long ph = 0; ph < g.PH; ph++) {
            long h0, h1;
            pool_bin(ph, r.bin_h, r.start_h, g.H, &h0, &h1);
            if (ih < h0 || ih >= h1) continue;
            for (long pw = 0; pw < g.PW; pw++)
                if (am[ao + o + ph * g.PW + pw] == pos) acc += dout[go + o + ph * g.PW + pw];
        }
    }
    dx[dxo + e] = acc;
}
#endif

/* ------------------------------------------------------------- roi_align */

typedef struct {
    long batch, grid_h, grid_w;
    T start_h, start_w, bin_h, bin_w, count;
} abox;

inline abox abox_of(const rgeom *g, __global const T *b, T s, int aligned) {
    abox r;
    T off = aligned ? (T)0.5 : (T)0;
    r.batch = roi_batch(g, b[0]);
    r.start_w = b[1] * s - off;
    r.start_h = b[2] * s - off;
    T rw = b[3] * s - off - r.start_w, rh = b[4] * s - off - r.start_h;
    if (!aligned) {
        rw = rw > (T)1 ? rw : (T)1;
        rh = rh > (T)1 ? rh : (T)1;
    }
    r.bin_h = rh / (T)g->PH;
    r.bin_w = rw / (T)g->PW;
    r.grid_h = g->sr > 0 ? g->sr : (long)ceil(rh / (T)g->PH);
    r.grid_w = g->sr > 0 ? g->sr : (long)ceil(rw / (T)g->PW);
    if (r.grid_h < 0) r.grid_h = 0;
    if (r.grid_w < 0) r.grid_w = 0;
    long cnt = r.grid_h * r.grid_w;
    r.count = (T)(cnt > 1 ? cnt : 1);
    return r;
}

/* The four corners (offsets in the plane) and weights of a sample; 0 outside. */
inline int bilinear(const rgeom *g, T y, T x, long *pos, T *wt) {
    if (y < (T)-1 || y > (T)g->H || x < (T)-1 || x > (T)g->W) return 0;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    long yl = (long)y, xl = (long)x, yh, xh;
    if (yl >= g->H - 1) {
        yh = yl = g->H - 1;
        y = (T)yl;
    } else {
        yh = yl + 1;
    }
    if (xl >= g->W - 1) {
        xh = xl = g->W - 1;
        x = (T)xl;
    } else {
        xh = xl + 1;
    }
    T ly = y - (T)yl, lx = x - (T)xl, hy = (T)1 - ly, hx = (T)1 - lx;
    pos[0] = yl * g->W + xl, pos[1] = yl * g->W + xh, pos[2] = yh * g->W + xl, pos[3] = yh * g->W + xh;
    wt[0] = hy * hx, wt[1] = hy * lx, wt[2] = ly * hx, wt[3] = ly * lx;
    return 1;
}

inline T sample_at(T start, T bin, long p, long i, long grid) {
    return start + (T)p * bin + (T)((float)i + .5f) * bin / (T)grid;
}

#if defined(K_tg_roi_align)
__kernel void tg_roi_align(GEOM_ARGS, __global const T *x, long xo, __global const T *boxes, long bo,
                           __global T *y, long yo) {
    rgeom g = rgeom_of(ga);
    long i = get_global_id(0), PHW = g.PH * g.PW;
    if (i >= g.K * g.C * PHW) return;
    long u = i / PHW, r = i - u * PHW, ph = r / g.PW, pw = r - ph * g.PW;
    abox b = abox_of(&g, boxes + bo + u / g.C * 5, scale, aligned);
    T acc = 0;
    if (b.batch >= 0) {
        __global const T *xp = x + xo + (b.batch * g.C + u % g.C) * g.H * g.W;
        for (long iy = 0; iy < b.grid_h; iy++) {
            T sy = sample_at(b.start_h, b.bin_h, ph, iy, b.grid_h);
            for (long ix = 0; ix < b.grid_w; ix++) {
                long pos[4];
                T wt[4];
                if (!bilinear(&g, sy, sample_at(b.start_w, b.bin_w, pw, ix, b.grid_w), pos, wt)) continue;
                acc += wt[0] * xp[pos[0]] + wt[1] * xp[pos[1]] + wt[2] * xp[pos[2]] + wt[3] * xp[pos[3]];
            }
        }
    }
    y[yo + i] = acc / b.count;
}
#endif

#if defined(K_tg_roi_align_bwd)
/* The bins on one axis whose samples can reach input position i: a sample reaches the
 * rows (columns) next to it, or row 0 from (-1, 0] and row H-1 from [H-1, H], so only
 * samples within 2 of i matter; the range is a superset, the weights decide. */
inline void reach(T start, T bin, long i, long P, long *lo, long *hi) {
    *lo = 0, *hi = P - 1;
    if (!(bin > 0)) return;
    T a = floor(((T)i - (T)2 - start) / bin), b = floor(((T)i + (T)2 - start) / bin);
    if (a > (T)*lo) *lo = (long)a;
    if (b < (T)*hi) *hi = (long)b;
}

__kernel void tg_roi_align_bwd(GEOM_ARGS, __global const T *dout, long go, __global const T *boxes, long bo,
                               __global T *dx, long dxo) {
    rgeom g = rgeom_of(ga);
    long e = get_global_id(0), PHW = g.PH * g.PW;
    if (e >= g.N * g.C * g.H * g.W) return;
    site at = site_of(&g, e);
    long pos = at.pos, ih = at.ih, iw = at.iw, n = at.n, c = at.c;
    T acc = 0;
    for (long k = 0; k < g.K; k++) {
        __global const T *bp = boxes + bo + k * 5;
        if (roi_batch(&g, bp[0]) != n) continue;
        abox b = abox_of(&g, bp, scale, aligned);
        long ph0, ph1, pw0, pw1;
        reach(b.start_h, b.bin_h, ih, g.PH, &ph0, &ph1);
        reach(b.start_w, b.bin_w, iw, g.PW, &pw0, &pw1);
        __global const T *gp = dout + go + (k * g.C + c) * PHW;
        for (long ph = ph0; ph <= ph1; ph++)
            for (long pw = pw0; pw <= pw1; pw++) {
                T gv = gp[ph * g.PW + pw];
                for (long iy = 0; iy < b.grid_h; iy++) {
                    T sy = sample_at(b.start_h, b.bin_h, ph, iy, b.grid_h);
                    for (long ix = 0; ix < b.grid_w; ix++) {
                        long q[4];
                        T wt[4];
                        if (!bilinear(&g, sy, sample_at(b.start_w, b.bin_w, pw, ix, b.grid_w), q, wt)) continue;
                        for (int j = 0; j < 4; j++)
                            if (q[j] == pos) acc += gv * wt[j] / b.count;
                    }
                }
            }
    }
    dx[dxo + e] = acc;
}
#endif

#endif
