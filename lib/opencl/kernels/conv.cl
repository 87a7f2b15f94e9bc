/* 2-D convolution as implicit GEMM (lib/opencl/conv.c): the tiled GEMM of gemm.cl whose
 * tile loads compute the im2col entries on the fly, so no column matrix is stored. One
 * kernel per direction, each its own program; batch z = get_global_id(2):
 *   tg_conv_fwd          out[n, g] (OCg, OH*OW)  = w[g] (OCg, Cg*KK) @ cols(x[n, g]) + bias
 *   tg_conv_bwd_data     dx[n, g] (Cg, H*W)      = w[g]^T (Cg, OCg*KK) @ taps(dout[n, g])
 *   tg_conv_bwd_weight   dw[g] (OCg, Cg*KK)      = dout[., g] (OCg, N*OH*OW) @ cols(x[., g])^T,
 *                        K split in chunks of kchunk (z = split * groups + g) whose partial
 *                        products tg_conv_sum_splits adds in a fixed order.
 * KK = KH*KW; n = z / groups, g = z % groups. A work-group of TG_GL x TG_GL items
 * computes a TS x TS tile (4 x 4 outputs an item), stepping K by 16. Geometry:
 * ga = (N, C, H, W, OC, KH, KW, groups), gb = (OH, OW, sh, sw, ph, pw, dh, dw). */
#if T_FLOAT && (defined(K_tg_conv_fwd) || defined(K_tg_conv_bwd_data) || defined(K_tg_conv_bwd_weight))

#define TS (4 * TG_GL)
#define TK 16

typedef struct {
    long N, C, H, W, OC, KH, KW, G, OH, OW, sh, sw, ph, pw, dh, dw, Cg, OCg, KK;
} cgeom;

inline cgeom cgeom_of(long8 a, long8 b) {
    cgeom g = { a.s0, a.s1, a.s2, a.s3, a.s4, a.s5, a.s6, a.s7, b.s0, b.s1, b.s2, b.s3, b.s4, b.s5, b.s6, b.s7,
                0, 0, 0 };
    g.Cg = g.C / g.G;
    g.OCg = g.OC / g.G;
    g.KK = g.KH * g.KW;
    return g;
}

/* x[n, ch, ih, iw] where input position (oh, ow) meets tap r = kh*KW + kw, else 0. */
inline T x_tap(const cgeom *g, __global const T *x, long n, long ch, long p, long r) {
    long oh = p / g->OW, ow = p - oh * g->OW, kh = r / g->KW, kw = r - kh * g->KW;
    long ih = oh * g->sh - g->ph + kh * g->dh, iw = ow * g->sw - g->pw + kw * g->dw;
    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) return (T)0;
    return x[((n * g->C + ch) * g->H + ih) * g->W + iw];
}

#if defined(K_tg_conv_fwd)
#define CONV_KERNEL tg_conv_fwd
#define B_WALKS_K 0
/* A (m = oc in group, k = (c, kh, kw)), B (k, p = output pixel). */
inline T load_a(const cgeom *g, __global const T *w, long z, long m, long k) {
    return w[(z % g->G * g->OCg + m) * g->Cg * g->KK + k];
}
/* The input origin of output pixel p, fixed for a work-item's B loads. */
typedef struct {
    long ih0, iw0;
} pix;
inline pix pix_of(const cgeom *g, long p) {
    long oh = p / g->OW;
    return (pix){ oh * g->sh - g->ph, (p - oh * g->OW) * g->sw - g->pw };
}
/* xg: x at image n, group g's first channel. */
inline T load_b(const cgeom *g, __global const T *xg, long k, pix q) {
    int kk = (int)k, KK = (int)g->KK, KW = (int)g->KW, c = kk / KK, r = kk - c * KK, kh = r / KW;
    long ih = q.ih0 + kh * g->dh, iw = q.iw0 + (r - kh * KW) * g->dw;
    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) return (T)0;
    return xg[(c * g->H + ih) * g->W + iw];
}
inline long b_base(const cgeom *g, long z) { return (z / g->G * g->C + z % g->G * g->Cg) * g->H * g->W; }
inline long c_index(const cgeom *g, long z, long m, long p) {
    return ((z / g->G * g->OC) + z % g->G * g->OCg + m) * g->OH * g->OW + p;
}
#elif defined(K_tg_conv_bwd_data)
#define CONV_KERNEL tg_conv_bwd_data
#define B_WALKS_K 0
/* A (m = c in group, k = (oc in group, kh, kw)) = w[oc, c, kh, kw], B (k, input pixel)
 * = the dout element whose window puts tap (kh, kw) on the pixel, if one does. */
inline T load_a(const cgeom *g, __global const T *w, long z, long m, long k) {
    long ocl = k / g->KK, r = k - ocl * g->KK;
    return w[((z % g->G * g->OCg + ocl) * g->Cg + m) * g->KK + r];
}
/* The padded position of input pixel p, fixed for a work-item's B loads. */
typedef struct {
    long ih0, iw0;
} pix;
inline pix pix_of(const cgeom *g, long p) {
    long ih = p / g->W;
    return (pix){ ih + g->ph, p - ih * g->W + g->pw };
}
/* dg: dout at image n, group g's first channel. */
inline T load_b(const cgeom *g, __global const T *dg, long k, pix q) {
    int kk = (int)k, KK = (int)g->KK, KW = (int)g->KW, ocl = kk / KK, r = kk - ocl * KK, kh = r / KW;
    long th = q.ih0 - kh * g->dh, tw = q.iw0 - (r - kh * KW) * g->dw;
    if (th < 0 || tw < 0) return (T)0;
    long oh = th / g->sh, ow = tw / g->sw;
    if (oh * g->sh != th || ow * g->sw != tw || oh >= g->OH || ow >= g->OW) return (T)0;
    return dg[(ocl * g->OH + oh) * g->OW + ow];
}
inline long b_base(const cgeom *g, long z) { return (z / g->G * g->OC + z % g->G * g->OCg) * g->OH * g->OW; }
inline long c_index(const cgeom *g, long z, long m, long pix) {
    return (z / g->G * g->C + z % g->G * g->Cg + m) * g->H * g->W + pix;
}
#else
#define CONV_KERNEL tg_conv_bwd_weight
#define B_WALKS_K 1
/* A (m = oc in group, k = (n, p)) = dout, B (k, j = (c, kh, kw)) = cols of x. */
inline T load_a(const cgeom *g, __global const T *dout, long z, long m, long k) {
    long OHW = g->OH * g->OW, n = k / OHW;
    return dout[(n * g->OC + z % g->G * g->OCg + m) * OHW + (k - n * OHW)];
}
inline T load_b(const cgeom *g, __global const T *x, long z, long k, long j) {
    long OHW = g->OH * g->OW, n = k / OHW, c = j / g->KK;
    return x_tap(g, x, n, z % g->G * g->Cg + c, k - n * OHW, j - c * g->KK);
}
/* The split's partial dw: splits lie split_stride apart. */
inline long c_index(const cgeom *g, long z, long m, long j) {
    return (z % g->G * g->OCg + m) * g->Cg * g->KK + j;
}
#endif

/* (M, NC, K) the GEMM's sizes; this split covers K in [split * kchunk, ... + kchunk). */
__kernel __attribute__((reqd_work_group_size(TG_GL, TG_GL, 1))) void
CONV_KERNEL(long8 ga, long8 gb, long M, long NC, long K, long kchunk, __global const T *a, long ao,
            __global const T *b, long bo, __global const T *bias, long biaso, int has_bias, __global T *c, long co,
            long split_stride) {
    __local T la[TK][TS + 1];
    __local T lb[TK][TS + 1];
    cgeom g = cgeom_of(ga, gb);
    int tx = get_local_id(0), ty = get_local_id(1);
    long n0 = (long)get_group_id(0) * TS, m0 = (long)get_group_id(1) * TS, z = get_global_id(2);
#if B_WALKS_K /* the weight gradient: z = split * groups + g */
    long split = z / g.G;
#else
    long split = 0;
#endif
    long kbeg = split * kchunk, kend = min(K, kbeg + kchunk);
    a += ao;
    b += bo;
    c += co + split * split_stride;
    T acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    int tid = ty * TG_GL + tx, nthreads = TG_GL * TG_GL;
#if !B_WALKS_K /* TG_GL is a multiple of 4, so nthreads a multiple of TS */
    int bn = tid % TS;
    bool my_col = n0 + bn < NC;
    pix q = pix_of(&g, my_col ? n0 + bn : 0);
    __global const T *bz = b + b_base(&g, z);
#endif
    for (long k0 = kbeg; k0 < kend; k0 += TK) {
        for (int e = tid; e < TK * TS; e += nthreads) {
            int kk = e % TK, mm = e / TK; /* a: consecutive items walk k */
            long m = m0 + mm, k = k0 + kk;
            la[kk][mm] = m < M && k < kend ? load_a(&g, a, z, m, k) : (T)0;
#if B_WALKS_K
            long nn = n0 + mm;
            lb[kk][mm] = nn < NC && k < kend ? load_b(&g, b, z, k, nn) : (T)0;
#endif
        }
#if !B_WALKS_K
        /* b: consecutive items walk the pixels; an item's pixel is the same every step */
        for (int bk = tid / TS; bk < TK; bk += nthreads / TS) {
            long kb = k0 + bk;
            lb[bk][bn] = my_col && kb < kend ? load_b(&g, bz, kb, q) : (T)0;
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            T av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = la[kk][ty + i * TG_GL];
            for (int j = 0; j < 4; j++) bv[j] = lb[kk][tx + j * TG_GL];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < 4; i++) {
        long m = m0 + ty + i * TG_GL;
        if (m >= M) continue;
        T bv = has_bias ? bias[biaso + z % g.G * g.OCg + m] : (T)0;
        for (int j = 0; j < 4; j++) {
            long nn = n0 + tx + j * TG_GL;
            if (nn < NC) c[c_index(&g, z, m, nn)] = acc[i][j] + bv;
        }
    }
}

#endif

/* dw[i] = the sum of nsplit partials lying stride apart, in split order. */
#if T_FLOAT && defined(K_tg_conv_sum_splits)
__kernel void tg_conv_sum_splits(long n, int nsplit, long stride, __global const T *part, __global T *dw, long dwo) {
    long i = get_global_id(0);
    if (i >= n) return;
    T s = part[i];
    for (int k = 1; k < nsplit; k++) s += part[k * stride + i];
    dw[dwo + i] = s;
}
#endif
