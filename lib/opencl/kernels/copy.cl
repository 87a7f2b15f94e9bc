/* Copy with dtype conversion, in the moves program: one kernel per output dtype N
 * (tg_convert_N); the input's dtype comes at run time (in_dt, tg_dtype's order), so one
 * kernel converts from every dtype (the switch is uniform across a launch).
 * Conversions are the CPU path's store(): floats to integers truncate, saturate and
 * send NaN to 0; integers widen exactly and narrow saturating; i64 to a float rounds
 * to nearest. Every integer input is widened to long first (exact). */
#ifdef K_tg_moves
inline float cvf_0(float v) { return v; }
inline int cvf_2(float v) { return v != v ? 0 : v >= 2147483648.0f ? INT_MAX : v <= -2147483648.0f ? INT_MIN : (int)v; }
inline uchar cvf_3(float v) { return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v; }
inline long cvf_4(float v) { /* 2^63 is exact in both float types */
    return v != v ? 0 : v >= 9223372036854775808.0f ? LONG_MAX : v <= -9223372036854775808.0f ? LONG_MIN : (long)v;
}
inline float cvl_0(long v) { return (float)v; }
inline int cvl_2(long v) { return lsat_i32(v); }
inline uchar cvl_3(long v) { return lsat_u8(v); }
inline long cvl_4(long v) { return v; }
#ifdef TG_FP64
inline float cvd_0(double v) { return (float)v; }
inline int cvd_2(double v) { return v != v ? 0 : v >= 2147483647.0 ? INT_MAX : v <= -2147483648.0 ? INT_MIN : (int)v; }
inline uchar cvd_3(double v) { return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v; }
inline long cvd_4(double v) {
    return v != v ? 0 : v >= 9223372036854775808.0 ? LONG_MAX : v <= -9223372036854775808.0 ? LONG_MIN : (long)v;
}
inline double cvf_1(float v) { return v; }
inline double cvd_1(double v) { return v; }
inline double cvl_1(long v) { return (double)v; }
#define FROM_DOUBLE(N) case 1: r = cvd_##N(((__global const double *)x)[k]); break;
#else
#define FROM_DOUBLE(N)
#endif

/* x points at elements of dtype in_dt; xo and xs count in those elements. */
#define CONVERT(N, OT)                                                                                       \
    __kernel void tg_convert_##N(int in_dt, long n, int nd, long8 shape, __global OT *out, long oo,          \
                                 long8 os, __global const uchar *x, long xo, long8 xs) {                     \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sx, xs);                                                                                        \
        long2 o = off2(i, nd, sh, so, sx);                                                                   \
        long k = xo + o.y;                                                                                   \
        OT r;                                                                                                \
        switch (in_dt) {                                                                                     \
        case 0: r = cvf_##N(((__global const float *)x)[k]); break;                                          \
        FROM_DOUBLE(N)                                                                                       \
        case 2: r = cvl_##N(((__global const int *)x)[k]); break;                                            \
        case 3: r = cvl_##N(x[k]); break;                                                                    \
        default: r = cvl_##N(((__global const long *)x)[k]); break;                                          \
        }                                                                                                    \
        out[oo + o.x] = r;                                                                                   \
    }

CONVERT(0, float)
CONVERT(2, int)
CONVERT(3, uchar)
CONVERT(4, long)
#ifdef TG_FP64
CONVERT(1, double)
#endif
#endif
