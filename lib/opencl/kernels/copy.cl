/* Copy with dtype conversion, one program per (out, in) pair: T (-DTG_DT) is the
 * output, IT (-DTG_DT_IN) the input. Conversions are the CPU path's store(): floats
 * to integers truncate, saturate and send NaN to 0; integers widen exactly and narrow
 * saturating; i64 to a float rounds to nearest. */
#ifdef K_tg_convert
typedef TYPE_OF(TG_DT_IN) IT;
#define IT_FLOAT (TG_DT_IN <= 1)

inline T convert_in(IT v) {
#if TG_DT <= 1
    return (T)v;
#elif IT_FLOAT && TG_DT == 2 && TG_DT_IN == 0
    return v != v ? 0 : v >= 2147483648.0f ? INT_MAX : v <= -2147483648.0f ? INT_MIN : (int)v;
#elif IT_FLOAT && TG_DT == 2
    return v != v ? 0 : v >= 2147483647.0 ? INT_MAX : v <= -2147483648.0 ? INT_MIN : (int)v;
#elif IT_FLOAT && TG_DT == 3
    return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v;
#elif IT_FLOAT && TG_DT_IN == 0 /* 2^63 is exact in both float types */
    return v != v ? 0 : v >= 9223372036854775808.0f ? LONG_MAX : v <= -9223372036854775808.0f ? LONG_MIN : (long)v;
#elif IT_FLOAT
    return v != v ? 0 : v >= 9223372036854775808.0 ? LONG_MAX : v <= -9223372036854775808.0 ? LONG_MIN : (long)v;
#else
    return L_TO(TG_DT)((long)v);
#endif
}

__kernel void tg_convert(long n, int nd, long8 shape, __global T *out, long oo, long8 os,
                         __global const IT *x, long xo, long8 xs) {
    long i = get_global_id(0);
    if (i >= n) return;
    GEOM(sh, shape);
    GEOM(so, os);
    GEOM(sx, xs);
    long2 o = off2(i, nd, sh, so, sx);
    out[oo + o.x] = convert_in(x[xo + o.y]);
}
#endif
