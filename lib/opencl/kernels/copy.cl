/* Copy with dtype conversion, one program per (out, in) pair: T (-DTG_DT) is the
 * output, IT (-DTG_DT_IN) the input. Conversions are the CPU path's store(): floats
 * to integers saturate and NaN becomes 0; integers widen exactly. */
#if TG_DT_IN == 0
typedef float IT;
#define IT_FLOAT 1
#elif TG_DT_IN == 1
typedef double IT;
#define IT_FLOAT 1
#elif TG_DT_IN == 2
typedef int IT;
#define IT_FLOAT 0
#else
typedef uchar IT;
#define IT_FLOAT 0
#endif

inline T convert_in(IT v) {
#if TG_DT <= 1
    return (T)v;
#elif TG_DT == 2 && IT_FLOAT && TG_DT_IN == 0
    return v != v ? 0 : v >= 2147483648.0f ? INT_MAX : v <= -2147483648.0f ? INT_MIN : (int)v;
#elif TG_DT == 2 && IT_FLOAT
    return v != v ? 0 : v >= 2147483647.0 ? INT_MAX : v <= -2147483648.0 ? INT_MIN : (int)v;
#elif TG_DT == 2
    return (int)v;
#elif IT_FLOAT
    return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v;
#else
    return v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v;
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
