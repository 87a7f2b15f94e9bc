/* Shared by every tapegrad OpenCL program (OpenCL C 1.2): the element type T picked
 * with -DTG_DT (tg_dtype's order: 0 f32, 1 f64, 2 i32, 3 u8, 4 i64), the wide type W
 * that stands in for the CPU path's double, saturating stores, strided offsets, Philox.
 * A program holds the kernels its -DK_<name> options name (program.c groups the kernels
 * a run needs together); a second dtype, where the kernel has one,
 * comes as -DTG_DT_IN (a conversion's input), -DTG_DT_OUT (a reduction's output) or
 * -DTG_IDX (an index tensor's dtype).
 * Shapes and strides arrive as long8 kernel arguments (TG_MAX_DIMS is 8), counted in
 * elements; strides may be 0 or negative. */
#pragma OPENCL FP_CONTRACT OFF
#ifdef TG_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#ifdef TG_FP64
typedef double W;
#define WC(x) x
#define W_I32_HI 2147483647.0
#define W_I32_LO (-2147483648.0)
#else
typedef float W;
#define WC(x) x##f
#define W_I32_HI 2147483648.0f /* the float just above INT_MAX */
#define W_I32_LO (-2147483648.0f)
#endif

#if TG_DT == 0
typedef float T;
typedef float CT; /* what unary and binary ops compute in, as the CPU path does */
#define T_FLOAT 1
#define T_LOWEST (-INFINITY)
#define T_HIGHEST INFINITY
#elif TG_DT == 1
typedef double T;
typedef double CT;
#define T_FLOAT 1
#define T_LOWEST (-INFINITY)
#define T_HIGHEST INFINITY
#elif TG_DT == 2
typedef int T;
typedef W CT;
#define T_FLOAT 0
#define T_LOWEST INT_MIN
#define T_HIGHEST INT_MAX
#elif TG_DT == 3
typedef uchar T;
typedef W CT;
#define T_FLOAT 0
#define T_LOWEST 0
#define T_HIGHEST 255
#else
typedef long T;
typedef W CT; /* for the ops with no exact integer form (exp, log, ...) */
#define T_FLOAT 0
#define T_LOWEST LONG_MIN
#define T_HIGHEST LONG_MAX
#endif

/* Types by dtype number, for the second dtype of a program: TYPE_OF(TG_DT_OUT). */
#define TG_TYPE_0 float
#define TG_TYPE_1 double
#define TG_TYPE_2 int
#define TG_TYPE_3 uchar
#define TG_TYPE_4 long
#define TG_CAT_(a, b) a##b
#define TG_CAT(a, b) TG_CAT_(a, b)
#define TYPE_OF(n) TG_CAT(TG_TYPE_, n)

/* The CPU's store(): NaN becomes 0, out-of-range values saturate. 2^63 is exact in
 * float and double, so the i64 bounds need no fp64. */
inline int sat_i32(W v) { return v != v ? 0 : v >= W_I32_HI ? INT_MAX : v <= W_I32_LO ? INT_MIN : (int)v; }
inline uchar sat_u8(W v) { return v != v || v <= 0 ? (uchar)0 : v >= 255 ? (uchar)255 : (uchar)v; }
inline long sat_i64(W v) {
    return v != v ? 0 : v >= WC(9223372036854775808.0) ? LONG_MAX : v <= WC(-9223372036854775808.0) ? LONG_MIN : (long)v;
}
inline int lsat_i32(long v) { return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v; }
inline uchar lsat_u8(long v) { return v > 255 ? (uchar)255 : v < 0 ? (uchar)0 : (uchar)v; }

/* W or long to the type of dtype n, saturating: W_TO(n)(v), L_TO(n)(v). */
#define W_TO_0(v) ((float)(v))
#define W_TO_1(v) ((double)(v))
#define W_TO_2(v) sat_i32(v)
#define W_TO_3(v) sat_u8(v)
#define W_TO_4(v) sat_i64(v)
#define L_TO_0(v) ((float)(v))
#define L_TO_1(v) ((double)(v))
#define L_TO_2(v) lsat_i32(v)
#define L_TO_3(v) lsat_u8(v)
#define L_TO_4(v) (v)
#define W_TO(n) TG_CAT(W_TO_, n)
#define L_TO(n) TG_CAT(L_TO_, n)

#if TG_DT == 2
inline T to_T(W v) { return sat_i32(v); }
inline T long_to_T(long v) { return lsat_i32(v); }
#elif TG_DT == 3
inline T to_T(W v) { return sat_u8(v); }
inline T long_to_T(long v) { return lsat_u8(v); }
#elif TG_DT == 4
inline T to_T(W v) { return sat_i64(v); }
inline T long_to_T(long v) { return v; }
#else
inline T to_T(W v) { return (T)v; }
#endif

/* Saturating 64-bit arithmetic, as the CPU path's (lib/cpu/scalar.h) and as this
 * library's u8 and i32 arithmetic: an overflow gives the nearest representable value. */
inline long sadd(long a, long b) { return add_sat(a, b); }
inline long ssub(long a, long b) { return sub_sat(a, b); }
inline long smul(long a, long b) {
    long lo = as_long(as_ulong(a) * as_ulong(b)), hi = mul_hi(a, b);
    if (hi != (lo >> 63)) return (a < 0) != (b < 0) ? LONG_MIN : LONG_MAX;
    return lo;
}

/* Offsets of element i (row-major over nd axes of shape sh) in one to four operands.
 * Unrolled over the 8 possible axes so the arrays live in registers. */
inline long off1(long i, int nd, const long *sh, const long *s0) {
    long o0 = 0;
#pragma unroll
    for (int d = 7; d > 0; d--) {
        if (d < nd) {
            long c = i % sh[d];
            i /= sh[d];
            o0 += c * s0[d];
        }
    }
    return o0 + i * s0[0];
}

inline long2 off2(long i, int nd, const long *sh, const long *s0, const long *s1) {
    long o0 = 0, o1 = 0;
#pragma unroll
    for (int d = 7; d > 0; d--) {
        if (d < nd) {
            long c = i % sh[d];
            i /= sh[d];
            o0 += c * s0[d];
            o1 += c * s1[d];
        }
    }
    return (long2)(o0 + i * s0[0], o1 + i * s1[0]);
}

inline long4 off4(long i, int nd, const long *sh, const long *s0, const long *s1, const long *s2, const long *s3) {
    long o0 = 0, o1 = 0, o2 = 0, o3 = 0;
#pragma unroll
    for (int d = 7; d > 0; d--) {
        if (d < nd) {
            long c = i % sh[d];
            i /= sh[d];
            o0 += c * s0[d];
            o1 += c * s1[d];
            o2 += c * s2[d];
            o3 += c * s3[d];
        }
    }
    return (long4)(o0 + i * s0[0], o1 + i * s1[0], o2 + i * s2[0], o3 + i * s3[0]);
}

/* A long8 argument as a private array. */
#define GEOM(name, v) \
    long name[8];     \
    vstore8((v), 0, name)

/* Philox-4x32-10, as lib/cpu/philox.c: element i of a draw uses counter base + i. */
inline uint4 philox4x32(ulong counter, ulong key) {
    uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = 0, c3 = 0;
    uint k0 = (uint)key, k1 = (uint)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint4)(c0, c1, c2, c3);
}
