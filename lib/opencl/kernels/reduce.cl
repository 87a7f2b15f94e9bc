/* Reductions and log-softmax, one kernel a program (-DK_<name>). The host splits x's axes into
 * kept axes (nk, kshape, kst: one output each, out dense in their order) and reduced
 * axes (nr, rshape, rst: R elements per output). Three shapes of work:
 *   *_serial: one work-item per output walks its R elements (many outputs, or small R);
 *   *_wg:     a work-group of TG_WG items per (output, chunk) with a tree in local
 *             memory; with one chunk it writes out, else a partial per chunk;
 *   *_final:  one work-item per output combines its chunks' partials in order.
 * Sums accumulate like the CPU path: floats in W (double where the device has fp64),
 * integers exactly in 64 bits (wrapping, as PyTorch's int64), and are stored in out's
 * dtype OT (-DTG_DT_OUT, default x's), saturating; max/min propagate NaN; arg ops keep
 * the first index and write it as OT (i32 or i64). */

#ifndef TG_DT_OUT
#define TG_DT_OUT TG_DT
#endif
typedef TYPE_OF(TG_DT_OUT) OT;

#if TG_DT == 0
typedef W SUM_ACC;
#ifndef TG_FP64
#define SUM_COMPENSATED 1 /* float sums: Kahan's compensation in each work-item, a tree across */
#endif
#elif TG_DT == 1
typedef double SUM_ACC;
#else
typedef long SUM_ACC;
#define SUM_LONG 1
#endif

#if defined(SUM_LONG)
inline OT sum_out(SUM_ACC v) { return L_TO(TG_DT_OUT)(v); }
inline SUM_ACC sum2(SUM_ACC a, SUM_ACC b) { return wadd(a, b); }
#elif TG_DT_OUT <= 1
inline OT sum_out(SUM_ACC v) { return (OT)v; }
inline SUM_ACC sum2(SUM_ACC a, SUM_ACC b) { return a + b; }
#else
inline OT sum_out(SUM_ACC v) { return W_TO(TG_DT_OUT)((W)v); }
inline SUM_ACC sum2(SUM_ACC a, SUM_ACC b) { return a + b; }
#endif

/* acc += v, compensated (c holds the lost low part) where the accumulator is float. */
inline void sum_add(SUM_ACC *acc, SUM_ACC *c, SUM_ACC v) {
#ifdef SUM_COMPENSATED
    SUM_ACC y = v - *c, t = *acc + y;
    *c = (t - *acc) - y;
    *acc = t;
#else
    *acc = sum2(*acc, v);
#endif
}

inline T mm_combine(int is_max, T acc, T v) {
#if T_FLOAT
    if (isnan(acc)) return acc;
    if (isnan(v)) return v;
#endif
    return is_max ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

/* Kernels whose local arrays assume exactly TG_WG items per group. */
#define WG_KERNEL __kernel __attribute__((reqd_work_group_size(TG_WG, 1, 1)))

#define RED_ARGS                                                                                   \
    long nout, long R, int nk, long8 kshape_, long8 kst_, int nr, long8 rshape_, long8 rst_,       \
        __global const T *x, long xo
#define RED_GEOM             \
    GEOM(kshape, kshape_);   \
    GEOM(kst, kst_);         \
    GEOM(rshape, rshape_);   \
    GEOM(rst, rst_)

/* ---------------------------------------------------------------- sum */

#ifdef K_tg_sum_serial
__kernel void tg_sum_serial(RED_ARGS, __global OT *out, long oo) {
    long o = get_global_id(0);
    if (o >= nout) return;
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    SUM_ACC acc = 0, c = 0;
    if (nr <= 1) {
        for (long j = 0; j < R; j++) sum_add(&acc, &c, (SUM_ACC)p[j * rst[0]]);
    } else {
        for (long j = 0; j < R; j++) sum_add(&acc, &c, (SUM_ACC)p[off1(j, nr, rshape, rst)]);
    }
    out[oo + o] = sum_out(acc);
}
#endif

#ifdef K_tg_sum_wg
/* Group g covers output g / nchunk, elements [c * chunk, (c + 1) * chunk) of it. */
WG_KERNEL void tg_sum_wg(RED_ARGS, long nchunk, long chunk, __global OT *out, long oo,
                        __global SUM_ACC *partial) {
    __local SUM_ACC scratch[TG_WG];
    long g = get_group_id(0), o = g / nchunk, c = g % nchunk;
    int lid = get_local_id(0);
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    long lo = c * chunk, hi = min(R, lo + chunk);
    SUM_ACC acc = 0, comp = 0;
    if (nr <= 1) {
        for (long j = lo + lid; j < hi; j += TG_WG) sum_add(&acc, &comp, (SUM_ACC)p[j * rst[0]]);
    } else {
        for (long j = lo + lid; j < hi; j += TG_WG) sum_add(&acc, &comp, (SUM_ACC)p[off1(j, nr, rshape, rst)]);
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = TG_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = sum2(scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        if (nchunk == 1) out[oo + o] = sum_out(scratch[0]);
        else partial[g] = scratch[0];
    }
}
#endif

#ifdef K_tg_sum_final
__kernel void tg_sum_final(long nout, long nchunk, __global const SUM_ACC *partial, __global OT *out, long oo) {
    long o = get_global_id(0);
    if (o >= nout) return;
    SUM_ACC acc = 0, comp = 0;
    for (long c = 0; c < nchunk; c++) sum_add(&acc, &comp, partial[o * nchunk + c]);
    out[oo + o] = sum_out(acc);
}
#endif

/* ---------------------------------------------------------------- max, min */

#ifdef K_tg_mm_serial
__kernel void tg_mm_serial(int is_max, RED_ARGS, __global T *out, long oo) {
    long o = get_global_id(0);
    if (o >= nout) return;
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    T acc = is_max ? T_LOWEST : T_HIGHEST;
    for (long j = 0; j < R; j++) acc = mm_combine(is_max, acc, p[nr <= 1 ? j * rst[0] : off1(j, nr, rshape, rst)]);
    out[oo + o] = acc;
}
#endif

#ifdef K_tg_mm_wg
WG_KERNEL void tg_mm_wg(int is_max, RED_ARGS, long nchunk, long chunk, __global T *out, long oo,
                       __global T *partial) {
    __local T scratch[TG_WG];
    long g = get_group_id(0), o = g / nchunk, c = g % nchunk;
    int lid = get_local_id(0);
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    long lo = c * chunk, hi = min(R, lo + chunk);
    T acc = is_max ? T_LOWEST : T_HIGHEST;
    for (long j = lo + lid; j < hi; j += TG_WG)
        acc = mm_combine(is_max, acc, p[nr <= 1 ? j * rst[0] : off1(j, nr, rshape, rst)]);
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = TG_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = mm_combine(is_max, scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        if (nchunk == 1) out[oo + o] = scratch[0];
        else partial[g] = scratch[0];
    }
}
#endif

#ifdef K_tg_mm_final
__kernel void tg_mm_final(int is_max, long nout, long nchunk, __global const T *partial, __global T *out, long oo) {
    long o = get_global_id(0);
    if (o >= nout) return;
    T acc = is_max ? T_LOWEST : T_HIGHEST;
    for (long c = 0; c < nchunk; c++) acc = mm_combine(is_max, acc, partial[o * nchunk + c]);
    out[oo + o] = acc;
}
#endif

/* ---------------------------------------------------------------- argmax, argmin
 * One reduced axis (R elements, stride rst[0]). The first NaN wins, else the first
 * extreme: (a, ia) beats (b, ib) when it is NaN first, more extreme, or equal and earlier. */

inline bool arg_better(int is_max, T a, long ia, T b, long ib) {
#if T_FLOAT
    if (isnan(a) || isnan(b)) return isnan(a) && (!isnan(b) || ia < ib);
#endif
    if (a == b) return ia < ib;
    return is_max ? a > b : a < b;
}

#ifdef K_tg_arg_serial
__kernel void tg_arg_serial(int is_max, RED_ARGS, __global OT *out, long oo) {
    long o = get_global_id(0);
    if (o >= nout) return;
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    T best = R > 0 ? p[0] : (T)0;
    long bi = 0;
    for (long j = 1; j < R; j++) {
        T v = p[j * rst[0]];
        if (arg_better(is_max, v, j, best, bi)) {
            best = v;
            bi = j;
        }
    }
    out[oo + o] = (OT)bi;
}
#endif

#ifdef K_tg_arg_wg
WG_KERNEL void tg_arg_wg(int is_max, RED_ARGS, __global OT *out, long oo) {
    __local T sv[TG_WG];
    __local long si[TG_WG];
    long o = get_group_id(0);
    int lid = get_local_id(0);
    RED_GEOM;
    __global const T *p = x + xo + off1(o, nk, kshape, kst);
    T best = 0;
    long bi = -1;
    for (long j = lid; j < R; j += TG_WG) {
        T v = p[j * rst[0]];
        if (bi < 0 || arg_better(is_max, v, j, best, bi)) {
            best = v;
            bi = j;
        }
    }
    sv[lid] = best;
    si[lid] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = TG_WG / 2; s > 0; s >>= 1) {
        if (lid < s && si[lid + s] >= 0 &&
            (si[lid] < 0 || arg_better(is_max, sv[lid + s], si[lid + s], sv[lid], si[lid]))) {
            sv[lid] = sv[lid + s];
            si[lid] = si[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[oo + o] = (OT)(si[0] < 0 ? 0 : si[0]);
}
#endif

/* ---------------------------------------------------------------- log-softmax
 * Lines along one axis (length len, strides xa and oa); kept axes give each line's
 * start in x (kst) and out (kso). Computed in W like the CPU's double. */
#if T_FLOAT

#ifdef K_tg_lsm_serial
__kernel void tg_lsm_serial(long nlines, long len, int nk, long8 kshape_, long8 kst_, long8 kso_,
                            __global const T *x, long xo, long xa, __global T *out, long oo, long oa) {
    long l = get_global_id(0);
    if (l >= nlines) return;
    GEOM(kshape, kshape_);
    GEOM(kst, kst_);
    GEOM(kso, kso_);
    long2 b = off2(l, nk, kshape, kst, kso);
    __global const T *p = x + xo + b.x;
    __global T *q = out + oo + b.y;
    W m = -INFINITY, s = 0;
    for (long j = 0; j < len; j++) m = fmax(m, (W)p[j * xa]);
    if (isinf(m)) m = 0; /* all -inf: keep -inf outputs, avoid inf - inf */
    for (long j = 0; j < len; j++) s += exp((W)p[j * xa] - m);
    W lse = m + log(s);
    for (long j = 0; j < len; j++) q[j * oa] = (T)((W)p[j * xa] - lse);
}
#endif

#ifdef K_tg_lsm_wg
WG_KERNEL void tg_lsm_wg(long nlines, long len, int nk, long8 kshape_, long8 kst_, long8 kso_,
                         __global const T *x, long xo, long xa, __global T *out, long oo, long oa) {
    __local W scratch[TG_WG];
    long l = get_group_id(0);
    int lid = get_local_id(0);
    GEOM(kshape, kshape_);
    GEOM(kst, kst_);
    GEOM(kso, kso_);
    long2 b = off2(l, nk, kshape, kst, kso);
    __global const T *p = x + xo + b.x;
    __global T *q = out + oo + b.y;
    W m = -INFINITY;
    for (long j = lid; j < len; j += TG_WG) m = fmax(m, (W)p[j * xa]);
    scratch[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = TG_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = fmax(scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = scratch[0];
    if (isinf(m)) m = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    W s = 0;
    for (long j = lid; j < len; j += TG_WG) s += exp((W)p[j * xa] - m);
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = TG_WG / 2; k > 0; k >>= 1) {
        if (lid < k) scratch[lid] += scratch[lid + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    W lse = m + log(scratch[0]);
    for (long j = lid; j < len; j += TG_WG) q[j * oa] = (T)((W)p[j * xa] - lse);
}
#endif

#endif
