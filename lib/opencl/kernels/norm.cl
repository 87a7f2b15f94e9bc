/* Batch, layer and group norm kernels (lib/opencl/norm.c), the formulas of lib/cpu/norm.c.
 * x is dense (N, C, S). A "set" is what one statistic covers: a channel (batch norm:
 * element j of set c is at c*S + (j / S)*C*S + j % S) or an (n, group) pair (group norm,
 * and layer norm as one group of C elements a row: a contiguous run). Geometry
 * ng = (N, C, S, G, M, inner, ostride, setstride): M elements a set, element j of set s
 * at s*setstride + (j / inner)*ostride + j % inner; bn selects batch norm's set of an
 * element (its channel) over group norm's. Per-set reductions run one work-group a set
 * (TG_WG items, a fixed tree in local memory, sums in W), elementwise passes one
 * work-item an element. Per-channel tensors come as (buffer, offset, stride). */
#if T_FLOAT

inline W wg_sum(W v, __local W *buf) {
    int l = get_local_id(0);
    buf[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = TG_WG / 2; s > 0; s >>= 1) {
        if (l < s) buf[l] += buf[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    W r = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

inline long set_elem(long8 ng, long s, long j) { return s * ng.s7 + j / ng.s5 * ng.s6 + j % ng.s5; }

/* The channel and the set of element k. */
inline long chan_of(long8 ng, long k) { return k / ng.s2 % ng.s1; }
inline long set_of(long8 ng, int bn, long k) {
    long c = chan_of(ng, k);
    return bn ? c : k / (ng.s1 * ng.s2) * ng.s3 + c / (ng.s1 / ng.s3);
}

#define VEC(name) __global T *name, long name##o, long name##s
#define CVEC(name) __global const T *name, long name##o, long name##s
#define AT(name, i) name[name##o + (i) * name##s]

#if defined(K_tg_norm_stats)
/* Mean and inverse std of each set (training: of x, shifted by its first element;
 * else the running ones), to save_mean / save_invstd (T) and wstats (W: mean, invstd
 * per set, for the normalising pass); in training with running stats, their update. */
__kernel void tg_norm_stats(long8 ng, __global const T *x, long xo, VEC(sm), VEC(si), __global W *wstats,
                            int training, int has_rm, VEC(rm), int has_rv, VEC(rv), W momentum, W eps) {
    __local W buf[TG_WG];
    long s = get_group_id(0), M = ng.s4;
    int l = get_local_id(0);
    W mean, var;
    if (training) {
        x += xo;
        W shift = M ? (W)x[set_elem(ng, s, 0)] : 0, s1 = 0, s2 = 0;
        for (long j = l; j < M; j += TG_WG) {
            W v = (W)x[set_elem(ng, s, j)] - shift;
            s1 += v;
            s2 += v * v;
        }
        s1 = wg_sum(s1, buf);
        s2 = wg_sum(s2, buf);
        W m1 = s1 / (W)M;
        mean = shift + m1;
        var = max(s2 / (W)M - m1 * m1, (W)0);
    } else {
        mean = (W)AT(rm, s);
        var = (W)AT(rv, s);
    }
    if (l != 0) return;
    W invstd = 1 / sqrt(var + eps);
    AT(sm, s) = (T)mean;
    AT(si, s) = (T)invstd;
    wstats[2 * s] = mean;
    wstats[2 * s + 1] = invstd;
    if (training && has_rm) AT(rm, s) = (T)((1 - momentum) * (W)AT(rm, s) + momentum * mean);
    if (training && has_rv) AT(rv, s) = (T)((1 - momentum) * (W)AT(rv, s) + momentum * var * (W)M / (W)(M - 1));
}
#endif

#if defined(K_tg_norm_apply)
__kernel void tg_norm_apply(long8 ng, int bn, __global const T *x, long xo, __global const W *wstats, int has_w,
                            CVEC(w), int has_b, CVEC(b), __global T *y, long yo) {
    long k = get_global_id(0);
    if (k >= ng.s0 * ng.s1 * ng.s2) return;
    long c = chan_of(ng, k), s = set_of(ng, bn, k);
    W v = ((W)x[xo + k] - wstats[2 * s]) * wstats[2 * s + 1];
    if (has_w) v *= (W)AT(w, c);
    if (has_b) v += (W)AT(b, c);
    y[yo + k] = (T)v;
}
#endif

#if defined(K_tg_norm_bsums)
/* For each set: sum(g * w) and sum(g * w * xhat) into wsums (W, two a set). */
__kernel void tg_norm_bsums(long8 ng, int bn, __global const T *g, long go, __global const T *x, long xo, CVEC(sm),
                            CVEC(si), int has_w, CVEC(w), __global W *wsums) {
    __local W buf[TG_WG];
    long s = get_group_id(0), M = ng.s4;
    W mean = (W)AT(sm, s), invstd = (W)AT(si, s), a = 0, b = 0;
    for (long j = get_local_id(0); j < M; j += TG_WG) {
        long k = set_elem(ng, s, j);
        W gw = (W)g[go + k] * (has_w ? (W)AT(w, chan_of(ng, k)) : 1);
        a += gw;
        b += gw * ((W)x[xo + k] - mean) * invstd;
    }
    a = wg_sum(a, buf);
    b = wg_sum(b, buf);
    if (get_local_id(0) == 0) {
        wsums[2 * s] = a;
        wsums[2 * s + 1] = b;
    }
}
#endif

#if defined(K_tg_norm_dx)
/* dx = invstd * (gw - mean(gw) - xhat * mean(gw * xhat)), or invstd * gw when the
 * statistics were fixed (batch norm in evaluation: training 0). */
__kernel void tg_norm_dx(long8 ng, int bn, int training, __global const T *g, long go, __global const T *x, long xo,
                         CVEC(sm), CVEC(si), int has_w, CVEC(w), __global const W *wsums, __global T *dx, long dxo) {
    long k = get_global_id(0);
    if (k >= ng.s0 * ng.s1 * ng.s2) return;
    long s = set_of(ng, bn, k);
    W invstd = (W)AT(si, s), gw = (W)g[go + k] * (has_w ? (W)AT(w, chan_of(ng, k)) : 1), v = gw;
    if (training) {
        W xhat = ((W)x[xo + k] - (W)AT(sm, s)) * invstd, M = (W)ng.s4;
        v = gw - wsums[2 * s] / M - xhat * wsums[2 * s + 1] / M;
    }
    dx[dxo + k] = (T)(invstd * v);
}
#endif

#if defined(K_tg_norm_dwb)
/* For each channel c: dweight = sum(g * xhat), dbias = sum(g) over n and S. */
__kernel void tg_norm_dwb(long8 ng, int bn, __global const T *g, long go, __global const T *x, long xo, CVEC(sm),
                          CVEC(si), int has_dw, VEC(dw), int has_db, VEC(db)) {
    __local W buf[TG_WG];
    long c = get_group_id(0), N = ng.s0, C = ng.s1, S = ng.s2;
    W a = 0, b = 0;
    for (long j = get_local_id(0); j < N * S; j += TG_WG) {
        long n = j / S, k = (n * C + c) * S + j % S, s = set_of(ng, bn, k);
        W gv = (W)g[go + k];
        a += gv * ((W)x[xo + k] - (W)AT(sm, s)) * (W)AT(si, s);
        b += gv;
    }
    a = wg_sum(a, buf);
    b = wg_sum(b, buf);
    if (get_local_id(0) != 0) return;
    if (has_dw) AT(dw, c) = (T)a;
    if (has_db) AT(db, c) = (T)b;
}
#endif

#endif
