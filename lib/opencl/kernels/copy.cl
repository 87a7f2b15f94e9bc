/* Copy with dtype conversion: T (-DTG_DT) is the output; the input's dtype comes at run
 * time (in_dt, tg_dtype's order), so one kernel per output dtype converts from every
 * dtype and lives in the elementwise program (the switch is uniform across a launch).
 * Conversions are the CPU path's store(): floats to integers truncate, saturate and
 * send NaN to 0; integers widen exactly and narrow saturating; i64 to a float rounds
 * to nearest. */
#ifdef K_tg_convert
inline T from_float(float v) {
#if TG_DT <= 1
    return (T)v;
#elif TG_DT == 2
    return v != v ? 0 : v >= 2147483648.0f ? INT_MAX : v <= -2147483648.0f ? INT_MIN : (int)v;
#elif TG_DT == 3
    return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v;
#else /* 2^63 is exact in both float types */
    return v != v ? 0 : v >= 9223372036854775808.0f ? LONG_MAX : v <= -9223372036854775808.0f ? LONG_MIN : (long)v;
#endif
}

#ifdef TG_FP64
inline T from_double(double v) {
#if TG_DT <= 1
    return (T)v;
#elif TG_DT == 2
    return v != v ? 0 : v >= 2147483647.0 ? INT_MAX : v <= -2147483648.0 ? INT_MIN : (int)v;
#elif TG_DT == 3
    return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v;
#else
    return v != v ? 0 : v >= 9223372036854775808.0 ? LONG_MAX : v <= -9223372036854775808.0 ? LONG_MIN : (long)v;
#endif
}
#endif

/* Every integer input, widened to long first (exact). */
inline T from_long(long v) {
#if TG_DT <= 1
    return (T)v;
#else
    return L_TO(TG_DT)(v);
#endif
}

/* x points at elements of dtype in_dt; xo and xs count in those elements. */
__kernel void tg_convert(int in_dt, long n, int nd, long8 shape, __global T *out, long oo, long8 os,
                         __global const uchar *x, long xo, long8 xs) {
    long i = get_global_id(0);
    if (i >= n) return;
    GEOM(sh, shape);
    GEOM(so, os);
    GEOM(sx, xs);
    long2 o = off2(i, nd, sh, so, sx);
    long k = xo + o.y;
    T r;
    switch (in_dt) {
    case 0: r = from_float(((__global const float *)x)[k]); break;
#ifdef TG_FP64
    case 1: r = from_double(((__global const double *)x)[k]); break;
#endif
    case 2: r = from_long(((__global const int *)x)[k]); break;
    case 3: r = from_long(x[k]); break;
    default: r = from_long(((__global const long *)x)[k]); break;
    }
    out[oo + o.x] = r;
}
#endif
