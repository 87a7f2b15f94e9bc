/* Scatter-add (gather is with the moves of elementwise.cl), under -DK_<name>. Indices
 * have idx's shape and dtype IDX (-DTG_IDX: 2 i32, the default, 4 i64), read as 64-bit
 * values, never narrowed; a negative index is out of range as in PyTorch (never wrapped).
 * Such an index is not followed: the work-item records its element's row-major position
 * in *bad (the smallest wins, so the host reports the same index the CPU path does;
 * positions clamp to INT_MAX - 1, INT_MAX meaning none) and the host reads it back.
 * The indexed operand's strides arrive with the axis zeroed (ms) plus that axis's
 * stride (ma), so off*() gives the rest of the offset. */

#ifndef TG_IDX
#define TG_IDX 2
#endif
typedef TYPE_OF(TG_IDX) IDX;

#if T_FLOAT

/* One work-item per line along the axis (shape has 1 on the axis): it adds the line's
 * elements in order, so the sums are those of the CPU path and need no atomics.
 * A line's element j has row-major position (line / inner * len + j) * inner + line % inner. */
#ifdef K_tg_scatter_lines
__kernel void tg_scatter_lines(long nlines, int nd, long8 shape, long len, long inner, long limit,
                               __global T *out, long oo, long8 ms, long ma,
                               __global const IDX *idx, long io, long8 is, long ia,
                               __global const T *src, long so, long8 ss, long sa, __global int *bad) {
    long l = get_global_id(0);
    if (l >= nlines) return;
    GEOM(sh, shape);
    GEOM(sm, ms);
    GEOM(si, is);
    GEOM(sx, ss);
    long4 o = off4(l, nd, sh, sm, si, sx, sx);
    for (long j = 0; j < len; j++) {
        long v = idx[io + o.y + j * ia];
        if (v < 0 || v >= limit) {
            long pos = (l / inner * len + j) * inner + l % inner;
            atomic_min(bad, (int)min(pos, (long)INT_MAX - 1));
            return;
        }
        out[oo + o.x + v * ma] += src[so + o.z + j * sa];
    }
}
#endif

#if TG_DT == 0
inline void atomic_add_T(volatile __global T *p, T v) {
    union { uint u; float f; } old, sum;
    do {
        old.f = *p;
        sum.f = old.f + v;
    } while (atomic_cmpxchg((volatile __global uint *)p, old.u, sum.u) != old.u);
}
#define HAVE_ATOMIC_ADD 1
#elif defined(TG_INT64_ATOMICS)
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
inline void atomic_add_T(volatile __global T *p, T v) {
    union { ulong u; double f; } old, sum;
    do {
        old.f = *p;
        sum.f = old.f + v;
    } while (atom_cmpxchg((volatile __global ulong *)p, old.u, sum.u) != old.u);
}
#define HAVE_ATOMIC_ADD 1
#endif

#if defined(HAVE_ATOMIC_ADD) && defined(K_tg_scatter_atomic)
/* One work-item per element: more parallel than lines, but the order of additions to
 * one output varies from run to run. */
__kernel void tg_scatter_atomic(long n, int nd, long8 shape, long limit, __global T *out, long oo, long8 ms,
                                long ma, __global const IDX *idx, long io, long8 is,
                                __global const T *src, long so, long8 ss, __global int *bad) {
    long i = get_global_id(0);
    if (i >= n) return;
    GEOM(sh, shape);
    GEOM(sm, ms);
    GEOM(si, is);
    GEOM(sx, ss);
    long4 o = off4(i, nd, sh, sm, si, sx, sx);
    long v = idx[io + o.y];
    if (v < 0 || v >= limit) {
        atomic_min(bad, (int)min(i, (long)INT_MAX - 1));
        return;
    }
    atomic_add_T(out + oo + o.x + v * ma, src[so + o.z]);
}
#endif

#endif
