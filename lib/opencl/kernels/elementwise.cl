/* Elementwise kernels: unary, binary, arange, random fills and axpy, all of one dtype in
 * one program (each kernel under -DK_<name>, so program.c picks the set), and the
 * kernels common to every dtype (moves, comparisons: K_tg_moves). Unary, binary and
 * comparison take their op as the first argument, a runtime code: one kernel serves
 * every op (on a GPU the switch is uniform across the launch, so it costs nothing), and
 * a driver that compiles each kernel separately (PoCL) compiles it once rather than
 * once per op. One
 * work-item per output element; every operand is a buffer, an element offset and
 * element strides over a shared shape (the host merges axes first, so dense tensors
 * arrive as one axis). */

/* tg_unary_op and tg_binary_op of lib/graph/backend.h; kernels_elementwise.c asserts the counts. */
#define UN_NEG 0
#define UN_EXP 1
#define UN_LOG 2
#define UN_SQRT 3
#define UN_RSQRT 4
#define UN_ABS 5
#define UN_SIGN 6
#define UN_RELU 7
#define UN_SIGMOID 8
#define UN_TANH 9
#define UN_SIN 10
#define UN_COS 11
#define UN_SQUARE 12
#define UN_RECIPROCAL 13
#define UN_POW_SCALAR 14
#define UN_ADD_SCALAR 15
#define UN_MUL_SCALAR 16
#define UN_CLAMP 17
#define UN_STEP 18

#define BIN_ADD 0
#define BIN_SUB 1
#define BIN_MUL 2
#define BIN_DIV 3
#define BIN_POW 4
#define BIN_MAXIMUM 5
#define BIN_MINIMUM 6
#define BIN_EQ 7
#define BIN_NE 8
#define BIN_LT 9
#define BIN_LE 10
#define BIN_GT 11
#define BIN_GE 12

#define RNG_UNIFORM 0
#define RNG_NORMAL 1
#define RNG_BERNOULLI 2

/* The kernels that need no arithmetic of a dtype, in one program for every dtype
 * (-DK_tg_moves): data movement (fill, copy, where, gather), which depends on an
 * element's size only, once per size S in bytes over the unsigned type of that size
 * (bits are moved, never computed on), gather once more per index dtype
 * (tg_gather_S_i32, tg_gather_S_i64), a fill's value arriving as the element's bytes;
 * comparisons per dtype; and conversions (copy.cl). A run that indexes u8 images,
 * converts and compares i32 labels builds no u8 or i32 program for it. */
#ifdef K_tg_moves
#define MOVES(S, M)                                                                                          \
    __kernel void tg_fill_##S(long n, int nd, long8 shape, __global M *out, long oo, long8 os, M value) {    \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        out[oo + off1(i, nd, sh, so)] = value;                                                               \
    }                                                                                                        \
    __kernel void tg_copy_##S(long n, int nd, long8 shape, __global M *out, long oo, long8 os,               \
                              __global const M *x, long xo, long8 xs) {                                      \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sx, xs);                                                                                        \
        long2 o = off2(i, nd, sh, so, sx);                                                                   \
        out[oo + o.x] = x[xo + o.y];                                                                         \
    }                                                                                                        \
    __kernel void tg_where_##S(long n, int nd, long8 shape, __global M *out, long oo, long8 os,              \
                               __global const uchar *c, long co, long8 cs, __global const M *a, long ao,     \
                               long8 as, __global const M *b, long bo, long8 bs) {                           \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sc, cs);                                                                                        \
        GEOM(sa, as);                                                                                        \
        GEOM(sb, bs);                                                                                        \
        long4 o = off4(i, nd, sh, so, sc, sa, sb);                                                           \
        out[oo + o.x] = c[co + o.y] ? a[ao + o.z] : b[bo + o.w];                                             \
    }                                                                                                        \
    GATHER(S, M, i32, int)                                                                                   \
    GATHER(S, M, i64, long)

/* Indices have idx's shape and dtype IDX, read as 64-bit values, never narrowed; a
 * negative one is out of range as in PyTorch (never wrapped) and is not followed: the
 * work-item records its element's row-major position in *bad (the smallest wins, so the
 * host reports the index the CPU path does; positions clamp to INT_MAX - 1, INT_MAX
 * meaning none). x's strides arrive with the axis zeroed (ms) plus that axis's stride (ma). */
#define GATHER(S, M, IS, IDX)                                                                                \
    __kernel void tg_gather_##S##_##IS(long n, int nd, long8 shape, long limit, __global M *out, long oo,    \
                                       long8 os, __global const IDX *idx, long io, long8 is,                 \
                                       __global const M *x, long xo, long8 ms, long ma, __global int *bad) { \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(si, is);                                                                                        \
        GEOM(sm, ms);                                                                                        \
        long4 o = off4(i, nd, sh, so, si, sm, sm);                                                           \
        long v = idx[io + o.y];                                                                              \
        if (v < 0 || v >= limit) {                                                                           \
            atomic_min(bad, (int)min(i, (long)INT_MAX - 1));                                                 \
            return;                                                                                          \
        }                                                                                                    \
        out[oo + o.x] = x[xo + o.z + v * ma];                                                                \
    }

/* Comparisons, once per operand dtype N (tg_compare_N): they need no arithmetic of the
 * dtype, so they live here rather than in each dtype's program. */
#define COMPARE(N, CT_)                                                                                      \
    __kernel void tg_compare_##N(int op, long n, int nd, long8 shape, __global uchar *out, long oo,          \
                                 long8 os, __global const CT_ *a, long ao, long8 as, __global const CT_ *b,  \
                                 long bo, long8 bs) {                                                        \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sa, as);                                                                                        \
        GEOM(sb, bs);                                                                                        \
        long4 o = off4(i, nd, sh, so, sa, sb, sb);                                                           \
        CT_ x = a[ao + o.y], y = b[bo + o.z];                                                                \
        int r = 0;                                                                                           \
        switch (op) {                                                                                        \
        case BIN_EQ: r = x == y; break;                                                                      \
        case BIN_NE: r = x != y; break;                                                                      \
        case BIN_LT: r = x < y; break;                                                                       \
        case BIN_LE: r = x <= y; break;                                                                      \
        case BIN_GT: r = x > y; break;                                                                       \
        case BIN_GE: r = x >= y; break;                                                                      \
        }                                                                                                    \
        out[oo + o.x] = (uchar)r;                                                                            \
    }

MOVES(1, uchar)
MOVES(4, uint)
MOVES(8, ulong)
COMPARE(0, float)
COMPARE(2, int)
COMPARE(3, uchar)
COMPARE(4, long)
#ifdef TG_FP64
COMPARE(1, double)
#endif
#endif

#ifdef K_tg_axpy
/* out += alpha * x (f32, f64): an optimizer's update in one launch rather than a scaled
 * temporary and an add. */
__kernel void tg_axpy(long n, int nd, long8 shape, __global T *out, long oo, long8 os,
                      __global const T *x, long xo, long8 xs, T alpha) {
    long i = get_global_id(0);
    if (i >= n) return;
    GEOM(sh, shape);
    GEOM(so, os);
    GEOM(sx, xs);
    long2 o = off2(i, nd, sh, so, sx);
    out[oo + o.x] += alpha * x[xo + o.y];
}
#endif

#if defined(K_tg_unary) || defined(K_tg_unary_math)
/* Two kernels, so that a run compiles the transcendental functions (PoCL inlines each
 * builtin, pow's most of all) only if it uses one: tg_unary takes the ops of a few
 * instructions, what an MLP's normalisation, ReLU and its gradient and an optimizer
 * need; tg_unary_math takes exp, log, sigmoid, tanh, sin, cos and pow (kernels_elementwise.c
 * picks by op). Beyond TANH_ONE, tanh(x) rounds to +-1 in CT. */
#if TG_DT == 0
#define TANH_ONE 10.0f
#else
#define TANH_ONE WC(20.0)
#endif

inline CT unary_arith(int op, CT x, CT p0, CT p1) {
    switch (op) {
    case UN_NEG: return -x;
    case UN_SQRT: return sqrt(x);
    case UN_RSQRT: return (CT)1 / sqrt(x);
    case UN_ABS: return fabs(x);
    case UN_SIGN: return (CT)((x > 0) - (x < 0));
    case UN_RELU: return x < 0 ? (CT)0 : x; /* the SIMD table's: NaN and -0 pass */
    case UN_SQUARE: return x * x;
    case UN_RECIPROCAL: return (CT)1 / x;
    case UN_ADD_SCALAR: return x + p0;
    case UN_MUL_SCALAR: return x * p0;
    case UN_CLAMP: x = x < p0 ? p0 : x; return x > p1 ? p1 : x; /* NaN passes */
    case UN_STEP: return x > p0 ? (CT)1 : (CT)0;
    }
    return 0;
}

inline CT unary_math(int op, CT x, CT p0, CT p1) {
    switch (op) {
    case UN_EXP: return exp(x);
    case UN_LOG: return log(x);
    case UN_SIGMOID: return x >= 0 ? (CT)1 / ((CT)1 + exp(-x)) : exp(x) / ((CT)1 + exp(x));
    case UN_TANH: return fabs(x) >= TANH_ONE ? copysign((CT)1, x) : tanh(x); /* some libms miss +-1 */
    case UN_SIN: return sin(x);
    case UN_COS: return cos(x);
    case UN_POW_SCALAR: return pow(x, p0);
    }
    return 0;
}

#if TG_DT == 4
/* The ops with an integer form (all of them tg_unary's), exactly in 64 bits (saturating
 * like the CPU path); lp0 and lp1 are the scalars, used when the host found both
 * integral (exact != 0). */
inline bool un_exact(int op) {
    return op == UN_NEG || op == UN_ABS || op == UN_SIGN || op == UN_RELU || op == UN_SQUARE ||
           op == UN_ADD_SCALAR || op == UN_MUL_SCALAR || op == UN_CLAMP || op == UN_STEP;
}
inline long unary_long(int op, long x, long p0, long p1) {
    switch (op) {
    case UN_NEG: return ssub(0, x);
    case UN_ABS: return x < 0 ? ssub(0, x) : x;
    case UN_SIGN: return (x > 0) - (x < 0);
    case UN_RELU: return x < 0 ? 0 : x;
    case UN_SQUARE: return smul(x, x);
    case UN_ADD_SCALAR: return sadd(x, p0);
    case UN_MUL_SCALAR: return smul(x, p0);
    case UN_CLAMP: x = x < p0 ? p0 : x; return x > p1 ? p1 : x;
    case UN_STEP: return x > p0 ? 1 : 0;
    }
    return 0;
}
#define UNARY_I64(FN)                                                                                        \
    T v = x[xo + o.y];                                                                                       \
    if (exact && un_exact(op))                                                                               \
        out[oo + o.x] = unary_long(op, v, lp0, lp1);                                                         \
    else                                                                                                     \
        out[oo + o.x] = to_T(FN(op, (CT)v, p0, p1));
#endif

#if T_FLOAT
#define UNARY_BODY(FN) out[oo + o.x] = FN(op, x[xo + o.y], p0, p1);
#elif TG_DT == 4
#define UNARY_BODY(FN) UNARY_I64(FN)
#else
#define UNARY_BODY(FN) out[oo + o.x] = to_T(FN(op, (CT)x[xo + o.y], p0, p1));
#endif

#define UNARY(NAME, FN)                                                                                      \
    __kernel void NAME(int op, CT p0, CT p1, long lp0, long lp1, int exact, long n, int nd, long8 shape,     \
                       __global T *out, long oo, long8 os, __global const T *x, long xo, long8 xs) {         \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sx, xs);                                                                                        \
        long2 o = off2(i, nd, sh, so, sx);                                                                   \
        UNARY_BODY(FN)                                                                                       \
    }
#ifdef K_tg_unary
UNARY(tg_unary, unary_arith)
#endif
#ifdef K_tg_unary_math
UNARY(tg_unary_math, unary_math)
#endif
#endif

#if defined(K_tg_binary) || defined(K_tg_binary_pow)
/* Two kernels, as unary's: tg_binary_pow holds pow (its builtin is the largest), tg_binary
 * the rest. */
#if TG_DT == 4
/* a^b by squaring, saturating; a negative exponent leaves 1/a^|b| truncated (1/0 saturates). */
inline long ipow(long a, long b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : a == 0 ? LONG_MAX : 0;
    long r = 1;
    while (b) {
        if (b & 1) r = smul(r, a);
        a = smul(a, a);
        b >>= 1;
    }
    return r;
}
#endif

inline T binary_op(int op, T a, T b) {
#if T_FLOAT
    switch (op) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV: return a / b;
    case BIN_MAXIMUM: return isnan(a) || a > b ? a : b; /* NaN propagates */
    case BIN_MINIMUM: return isnan(a) || a < b ? a : b;
    }
    return 0;
#elif TG_DT == 4
    /* Exact 64-bit integers: + - * saturate (pow too, binary_pow); division truncates,
     * and where a double quotient would not fit (x / 0, LONG_MIN / -1) it saturates
     * like i32's. */
    switch (op) {
    case BIN_ADD: return sadd(a, b);
    case BIN_SUB: return ssub(a, b);
    case BIN_MUL: return smul(a, b);
    case BIN_DIV:
        if (b == 0) return a > 0 ? LONG_MAX : a < 0 ? LONG_MIN : 0;
        if (b == -1) return a == LONG_MIN ? LONG_MAX : -a;
        return a / b;
    case BIN_MAXIMUM: return a > b ? a : b;
    case BIN_MINIMUM: return a < b ? a : b;
    }
    return 0;
#else
    /* The CPU computes in double and saturates; long is exact for + - *. */
    switch (op) {
    case BIN_ADD: return long_to_T((long)a + (long)b);
    case BIN_SUB: return long_to_T((long)a - (long)b);
    case BIN_MUL: return long_to_T((long)a * (long)b);
    case BIN_DIV: return to_T((W)a / (W)b);
    case BIN_MAXIMUM: return a > b ? a : b;
    case BIN_MINIMUM: return a < b ? a : b;
    }
    return 0;
#endif
}

/* The CPU computes integer powers in double and saturates (i64: exactly, by squaring). */
inline T binary_pow(int op, T a, T b) {
#if T_FLOAT
    return pow(a, b);
#elif TG_DT == 4
    return ipow(a, b);
#else
    return to_T(pow((W)a, (W)b));
#endif
}

#define BINARY(NAME, FN)                                                                                     \
    __kernel void NAME(int op, long n, int nd, long8 shape, __global T *out, long oo, long8 os,              \
                       __global const T *a, long ao, long8 as, __global const T *b, long bo, long8 bs) {     \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        GEOM(sa, as);                                                                                        \
        GEOM(sb, bs);                                                                                        \
        long4 o = off4(i, nd, sh, so, sa, sb, sb);                                                           \
        out[oo + o.x] = FN(op, a[ao + o.y], b[bo + o.z]);                                                    \
    }
#ifdef K_tg_binary
BINARY(tg_binary, binary_op)
#endif
#ifdef K_tg_binary_pow
BINARY(tg_binary_pow, binary_pow)
#endif
#endif

#ifdef K_tg_arange
/* exact: start and step are the integers lstart and lstep (i64 only). */
__kernel void tg_arange(long n, __global T *out, long oo, W start, W step, long lstart, long lstep, int exact) {
    long i = get_global_id(0);
    if (i >= n) return;
#if TG_DT == 4
    if (exact) {
        out[oo + i] = as_long(as_ulong(lstart) + as_ulong(i) * as_ulong(lstep)); /* exact: the host checked the end fits */
        return;
    }
#endif
    out[oo + i] = to_T(start + (W)i * step);
}
#endif

#if defined(K_tg_random_uniform) || defined(K_tg_random_normal) || defined(K_tg_random_bernoulli)
/* One kernel per kind, tg_random_uniform, tg_random_normal, tg_random_bernoulli: the kind
 * is a constant in each, so a driver that compiles a kernel at its first launch (PoCL)
 * compiles only the arithmetic of the kind drawn (a model's initialisation draws one
 * kind; normal's log and cos cost the most). Element i (row-major over out's shape)
 * uses counter + i; out may have any strides. The bit-to-number mappings are
 * tg_cpu_random's; bernoulli compares the top 24 bits with ceil(p * 2^24). */
inline W random_value(int kind, uint4 r, W p0, W p1, uint threshold) {
    if (kind == RNG_NORMAL) {
        W u1 = ((W)(r.z >> 8) + WC(1.0)) * WC(5.9604644775390625e-08); /* 2^-24: (0, 1] */
        W u2 = (W)(r.w >> 8) * WC(5.9604644775390625e-08);
        return p0 + p1 * (sqrt(WC(-2.0) * log(u1)) * cos(WC(6.283185307179586) * u2));
    }
    if (kind == RNG_UNIFORM) {
#if TG_DT == 1
        W u = ((W)(r.x >> 5) * 67108864.0 + (W)(r.y >> 6)) * 1.1102230246251565e-16; /* 2^-53 */
#else
        W u = (W)(r.x >> 8) * WC(5.9604644775390625e-08);
#endif
        return p0 + (p1 - p0) * u;
    }
    return (r.x >> 8) < threshold ? WC(1.0) : WC(0.0);
}

#define RANDOM(NAME, KIND)                                                                                   \
    __kernel void tg_random_##NAME(long n, int nd, long8 shape, __global T *out, long oo, long8 os,          \
                                   ulong seed, ulong counter, W p0, W p1, uint threshold) {                  \
        long i = get_global_id(0);                                                                           \
        if (i >= n) return;                                                                                  \
        GEOM(sh, shape);                                                                                     \
        GEOM(so, os);                                                                                        \
        uint4 r = philox4x32(counter + (ulong)i, seed);                                                      \
        out[oo + off1(i, nd, sh, so)] = to_T(random_value(KIND, r, p0, p1, threshold));                      \
    }
#ifdef K_tg_random_uniform
RANDOM(uniform, RNG_UNIFORM)
#endif
#ifdef K_tg_random_normal
RANDOM(normal, RNG_NORMAL)
#endif
#ifdef K_tg_random_bernoulli
RANDOM(bernoulli, RNG_BERNOULLI)
#endif
#endif
