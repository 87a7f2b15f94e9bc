/* The x86 SIMD kernels, written once over a small vector API and included twice by each
 * ISA file (simd_avx2.c, simd_avx512.c): once with T = float, once with T = double.
 * The includer defines T, V (vector), VM (compare mask), VN (lanes), FN(name) (adds the
 * type suffix), VOP(op) (the API function for this type) and TG_TMPL_F64 (0 or 1).
 *
 * The API (one set per type, e.g. vf_add for float, vd_add for double):
 *   load/loadn/store/storen (n: a partial vector of n < VN lanes, others read as 0),
 *   set1, add, sub, mul, div, sqrt, fmadd(a,b,c) = a*b+c, round (to nearest),
 *   max(a,b) = a > b ? a : b, min(a,b) = a < b ? a : b (the x86 rules: NaN in a gives b),
 *   and, xor, andnot(a,b) = ~a & b, cmplt/cmpgt/cmpeq/cmpunord -> VM, sel(m,t,f),
 *   ldexp(y,n) = y * 2^n for integral n in the exponent range plus a margin,
 *   frexp(x,&e) = m with x = m * 2^e, m in [sqrt(1/2), sqrt(2)) for finite x > 0.
 * The C twins (simd_c.c) fix the NaN and signed-zero rules every kernel here follows.
 * No include guard: this file is meant to be included more than once. */

/* ---------------------------------------------------------------- math */

/* exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a polynomial for e^r, then
 * ldexp. Inputs are clamped where the result is already 0 or inf; NaN passes through
 * (the constant comes first in min/max, so a NaN x is what they return). */
static inline V FN(v_exp)(V x)
{
#if TG_TMPL_F64
    x = VOP(min)(VOP(set1)(710.0), x);
    x = VOP(max)(VOP(set1)(-746.0), x);
    V n = VOP(round)(VOP(mul)(x, VOP(set1)(1.44269504088896340736)));
    V r = VOP(fmadd)(n, VOP(set1)(-6.93147180369123816490e-01), x);
    r = VOP(fmadd)(n, VOP(set1)(-1.90821492927058770002e-10), r);
    /* Taylor to degree 13: truncation below 1e-17 on |r| <= 0.347. */
    V p = VOP(set1)(1.0 / 6227020800.0);
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 479001600.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 39916800.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 3628800.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 362880.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 40320.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 5040.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 720.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 120.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 24.0));
    p = VOP(fmadd)(p, r, VOP(set1)(1.0 / 6.0));
    p = VOP(fmadd)(p, r, VOP(set1)(0.5));
    p = VOP(fmadd)(p, VOP(mul)(r, r), r);
    return VOP(ldexp)(VOP(add)(p, VOP(set1)(1.0)), n);
#else
    x = VOP(min)(VOP(set1)(88.8f), x);
    x = VOP(max)(VOP(set1)(-104.0f), x);
    V n = VOP(round)(VOP(mul)(x, VOP(set1)(1.44269504088896341f)));
    V r = VOP(fmadd)(n, VOP(set1)(-0.693359375f), x);
    r = VOP(fmadd)(n, VOP(set1)(2.12194440e-4f), r);
    /* Cephes expf's minimax polynomial. */
    V p = VOP(set1)(1.9875691500e-4f);
    p = VOP(fmadd)(p, r, VOP(set1)(1.3981999507e-3f));
    p = VOP(fmadd)(p, r, VOP(set1)(8.3334519073e-3f));
    p = VOP(fmadd)(p, r, VOP(set1)(4.1665795894e-2f));
    p = VOP(fmadd)(p, r, VOP(set1)(1.6666665459e-1f));
    p = VOP(fmadd)(p, r, VOP(set1)(5.0000001201e-1f));
    p = VOP(fmadd)(p, VOP(mul)(r, r), r);
    return VOP(ldexp)(VOP(add)(p, VOP(set1)(1.0f)), n);
#endif
}

/* log: fdlibm's log(1+f) = f - f^2/2 + s(f^2/2 + R(s^2)), s = f/(2+f), on the mantissa
 * in [sqrt(1/2), sqrt(2)); then the special cases: 0 -> -inf, < 0 -> NaN, inf -> inf. */
static inline V FN(v_log)(V x)
{
    V e;
    V m = VOP(frexp)(x, &e);
    V f = VOP(sub)(m, VOP(set1)(1));
    V hfsq = VOP(mul)(VOP(set1)(0.5), VOP(mul)(f, f));
    V s = VOP(div)(f, VOP(add)(VOP(set1)(2), f));
    V z = VOP(mul)(s, s), w = VOP(mul)(z, z);
#if TG_TMPL_F64
    V t1 = VOP(fmadd)(w, VOP(set1)(1.531383769920937332e-01), VOP(set1)(2.222219843214978396e-01));
    t1 = VOP(fmadd)(w, t1, VOP(set1)(3.999999999940941908e-01));
    t1 = VOP(mul)(w, t1);
    V t2 = VOP(fmadd)(w, VOP(set1)(1.479819860511658591e-01), VOP(set1)(1.818357216161805012e-01));
    t2 = VOP(fmadd)(w, t2, VOP(set1)(2.857142874366239149e-01));
    t2 = VOP(fmadd)(w, t2, VOP(set1)(6.666666666666735130e-01));
    t2 = VOP(mul)(z, t2);
    V ln2_hi = VOP(set1)(6.93147180369123816490e-01), ln2_lo = VOP(set1)(1.90821492927058770002e-10);
#else
    V t1 = VOP(mul)(w, VOP(fmadd)(w, VOP(set1)(0.24279078841f), VOP(set1)(0.40000972152f)));
    V t2 = VOP(mul)(z, VOP(fmadd)(w, VOP(set1)(0.28498786688f), VOP(set1)(0.66666662693f)));
    V ln2_hi = VOP(set1)(6.9313812256e-01f), ln2_lo = VOP(set1)(9.0580006145e-06f);
#endif
    V R = VOP(add)(t2, t1);
    /* s*(hfsq+R) + e*ln2_lo - hfsq + f + e*ln2_hi, in fdlibm's order */
    V y = VOP(fmadd)(s, VOP(add)(hfsq, R), VOP(mul)(e, ln2_lo));
    y = VOP(add)(VOP(add)(VOP(sub)(y, hfsq), f), VOP(mul)(e, ln2_hi));
    V zero = VOP(set1)(0), inf = VOP(set1)((T)INFINITY);
    y = VOP(sel)(VOP(cmpeq)(x, inf), inf, y);
    y = VOP(sel)(VOP(cmplt)(x, zero), VOP(set1)((T)NAN), y);
    y = VOP(sel)(VOP(cmpeq)(x, zero), VOP(set1)((T)-INFINITY), y);
    return VOP(sel)(VOP(cmpunord)(x, x), x, y);
}

/* tanh: an odd polynomial (f32) or rational (f64) below 0.625, else 1 - 2/(e^2|x| + 1)
 * with x's sign. e^2|x| overflows to inf for large |x|, giving exactly 1. */
static inline V FN(v_tanh)(V x)
{
    V sgn = VOP(set1)((T)-0.0);
    V ax = VOP(andnot)(sgn, x);
    V z = VOP(mul)(x, x);
#if TG_TMPL_F64
    V P = VOP(fmadd)(z, VOP(set1)(-9.64399179425052238628e-1), VOP(set1)(-9.92877231001918586564e1));
    P = VOP(fmadd)(z, P, VOP(set1)(-1.61468768441708447952e3));
    V Q = VOP(add)(z, VOP(set1)(1.12811678491632931402e2));
    Q = VOP(fmadd)(z, Q, VOP(set1)(2.23548839060100448583e3));
    Q = VOP(fmadd)(z, Q, VOP(set1)(4.84406305325125486048e3));
    V small = VOP(fmadd)(VOP(mul)(x, z), VOP(div)(P, Q), x);
#else
    V p = VOP(set1)(-5.70498872745e-3f);
    p = VOP(fmadd)(p, z, VOP(set1)(2.06390887954e-2f));
    p = VOP(fmadd)(p, z, VOP(set1)(-5.37397155531e-2f));
    p = VOP(fmadd)(p, z, VOP(set1)(1.33314422036e-1f));
    p = VOP(fmadd)(p, z, VOP(set1)(-3.33332819422e-1f));
    V small = VOP(fmadd)(VOP(mul)(p, z), x, x);
#endif
    V one = VOP(set1)(1);
    V big = VOP(sub)(one, VOP(div)(VOP(set1)(2), VOP(add)(FN(v_exp)(VOP(add)(ax, ax)), one)));
    big = VOP(xor)(big, VOP(and)(sgn, x));
    /* NaN fails the compare and takes the big branch, which gives NaN. */
    return VOP(sel)(VOP(cmplt)(ax, VOP(set1)((T)0.625)), small, big);
}

/* ---------------------------------------------------------------- loops */

#define TG_TMPL_UNARY(NAME, EXPR)                                                    \
    static void FN(NAME)(int64_t n, const T *x, T *out, T p0, T p1)                  \
    {                                                                                \
        V P0 = VOP(set1)(p0), P1 = VOP(set1)(p1);                                    \
        V zero = VOP(set1)(0), one = VOP(set1)(1);                                   \
        (void)P0, (void)P1, (void)zero, (void)one;                                   \
        int64_t i = 0;                                                               \
        for (; i + VN <= n; i += VN) {                                               \
            V v = VOP(load)(x + i);                                                  \
            VOP(store)(out + i, EXPR);                                               \
        }                                                                            \
        if (i < n) {                                                                 \
            V v = VOP(loadn)(x + i, n - i);                                          \
            VOP(storen)(out + i, EXPR, n - i);                                       \
        }                                                                            \
    }

TG_TMPL_UNARY(un_neg, VOP(xor)(v, VOP(set1)((T)-0.0)))
TG_TMPL_UNARY(un_abs, VOP(andnot)(VOP(set1)((T)-0.0), v))
TG_TMPL_UNARY(un_sign, VOP(sel)(VOP(cmpgt)(v, zero), one,
                                VOP(sel)(VOP(cmplt)(v, zero), VOP(set1)(-1), zero)))
TG_TMPL_UNARY(un_relu, VOP(max)(zero, v))
TG_TMPL_UNARY(un_square, VOP(mul)(v, v))
TG_TMPL_UNARY(un_add_scalar, VOP(add)(v, P0))
TG_TMPL_UNARY(un_mul_scalar, VOP(mul)(v, P0))
TG_TMPL_UNARY(un_clamp, VOP(min)(P1, VOP(max)(P0, v)))
TG_TMPL_UNARY(un_step, VOP(sel)(VOP(cmpgt)(v, P0), one, zero))
TG_TMPL_UNARY(un_sqrt, VOP(sqrt)(v))
TG_TMPL_UNARY(un_rsqrt, VOP(div)(one, VOP(sqrt)(v)))
TG_TMPL_UNARY(un_reciprocal, VOP(div)(one, v))
TG_TMPL_UNARY(un_exp, FN(v_exp)(v))
TG_TMPL_UNARY(un_log, FN(v_log)(v))
TG_TMPL_UNARY(un_tanh, FN(v_tanh)(v))
TG_TMPL_UNARY(un_sigmoid, VOP(div)(one, VOP(add)(one, FN(v_exp)(VOP(xor)(v, VOP(set1)((T)-0.0))))))

/* sa, sb are 0 or 1; the wrapper calls the inline body with constants, so each of the
 * four cases compiles to its own loop without a branch inside. */
#define TG_TMPL_BINARY(NAME, EXPR)                                                   \
    static inline __attribute__((always_inline)) void FN(NAME##_k)(                  \
        int64_t n, const T *a, int sa, const T *b, int sb, T *out)                   \
    {                                                                                \
        V A = VOP(set1)(a[0]), B = VOP(set1)(b[0]);                                  \
        int64_t i = 0;                                                               \
        for (; i + VN <= n; i += VN) {                                               \
            V u = sa ? VOP(load)(a + i) : A, v = sb ? VOP(load)(b + i) : B;          \
            VOP(store)(out + i, EXPR);                                               \
        }                                                                            \
        if (i < n) {                                                                 \
            V u = sa ? VOP(loadn)(a + i, n - i) : A;                                 \
            V v = sb ? VOP(loadn)(b + i, n - i) : B;                                 \
            VOP(storen)(out + i, EXPR, n - i);                                       \
        }                                                                            \
    }                                                                                \
    static void FN(NAME)(int64_t n, const T *a, int64_t sa, const T *b, int64_t sb,  \
                         T *out)                                                     \
    {                                                                                \
        if (n <= 0)                                                                  \
            return;                                                                  \
        if (sa && sb)                                                                \
            FN(NAME##_k)(n, a, 1, b, 1, out);                                        \
        else if (sa)                                                                 \
            FN(NAME##_k)(n, a, 1, b, 0, out);                                        \
        else if (sb)                                                                 \
            FN(NAME##_k)(n, a, 0, b, 1, out);                                        \
        else                                                                         \
            FN(NAME##_k)(n, a, 0, b, 0, out);                                        \
    }

TG_TMPL_BINARY(bin_add, VOP(add)(u, v))
TG_TMPL_BINARY(bin_sub, VOP(sub)(u, v))
TG_TMPL_BINARY(bin_mul, VOP(mul)(u, v))
TG_TMPL_BINARY(bin_div, VOP(div)(u, v))
TG_TMPL_BINARY(bin_maximum, VOP(sel)(VOP(cmpunord)(u, u), u, VOP(max)(u, v)))
TG_TMPL_BINARY(bin_minimum, VOP(sel)(VOP(cmpunord)(u, u), u, VOP(min)(u, v)))

/* ---------------------------------------------------------------- reductions */

#if TG_TMPL_F64
/* Four vector accumulators. */
static double FN(sum)(int64_t n, const T *x)
{
    V s0 = VOP(set1)(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 4 * VN <= n; i += 4 * VN) {
        s0 = VOP(add)(s0, VOP(load)(x + i));
        s1 = VOP(add)(s1, VOP(load)(x + i + VN));
        s2 = VOP(add)(s2, VOP(load)(x + i + 2 * VN));
        s3 = VOP(add)(s3, VOP(load)(x + i + 3 * VN));
    }
    for (; i + VN <= n; i += VN)
        s0 = VOP(add)(s0, VOP(load)(x + i));
    if (i < n)
        s1 = VOP(add)(s1, VOP(loadn)(x + i, n - i));
    return vd_hsum(VOP(add)(VOP(add)(s0, s1), VOP(add)(s2, s3)));
}
#else
/* Each float widens to double: four double accumulators, two vectors of x a step. */
static double FN(sum)(int64_t n, const T *x)
{
    VD s0 = vd_set1(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 2 * VN <= n; i += 2 * VN) {
        V a = VOP(load)(x + i), b = VOP(load)(x + i + VN);
        s0 = vd_add(s0, vd_cvt_lo(a));
        s1 = vd_add(s1, vd_cvt_hi(a));
        s2 = vd_add(s2, vd_cvt_lo(b));
        s3 = vd_add(s3, vd_cvt_hi(b));
    }
    for (; i < n; i += VN) {
        V a = n - i >= VN ? VOP(load)(x + i) : VOP(loadn)(x + i, n - i);
        s0 = vd_add(s0, vd_cvt_lo(a));
        s1 = vd_add(s1, vd_cvt_hi(a));
    }
    return vd_hsum(vd_add(vd_add(s0, s1), vd_add(s2, s3)));
}
#endif

/* max/min with NaN propagation: acc = isnan(v) ? v : v > acc ? v : acc keeps a NaN once
 * it holds one. The tail repeats x[0] (harmless for max/min), and the lanes finish in C
 * with the twin's rule. */
#define TG_TMPL_MINMAX(NAME, OP, CMP)                                                \
    static T FN(NAME)(int64_t n, const T *x)                                         \
    {                                                                                \
        V x0 = VOP(set1)(x[0]), a0 = x0, a1 = x0;                                    \
        int64_t i = 0;                                                               \
        for (; i + 2 * VN <= n; i += 2 * VN) {                                       \
            V u = VOP(load)(x + i), w = VOP(load)(x + i + VN);                       \
            a0 = VOP(sel)(VOP(cmpunord)(u, u), u, VOP(OP)(u, a0));                   \
            a1 = VOP(sel)(VOP(cmpunord)(w, w), w, VOP(OP)(w, a1));                   \
        }                                                                            \
        for (; i < n; i += VN) {                                                     \
            V u = n - i >= VN ? VOP(load)(x + i) : VOP(loadn)(x + i, n - i);         \
            if (n - i < VN) /* lanes past n read 0: make them x[0] */               \
                u = VOP(sel)(VOP(lanemask)(n - i), u, x0);                           \
            a0 = VOP(sel)(VOP(cmpunord)(u, u), u, VOP(OP)(u, a0));                   \
        }                                                                            \
        a0 = VOP(sel)(VOP(cmpunord)(a1, a1), a1, VOP(OP)(a1, a0));                   \
        T lanes[VN];                                                                 \
        VOP(store)(lanes, a0);                                                       \
        T m = lanes[0];                                                              \
        for (int j = 1; j < VN; j++)                                                 \
            if (lanes[j] CMP m || lanes[j] != lanes[j])                              \
                m = lanes[j];                                                        \
        return m;                                                                    \
    }

TG_TMPL_MINMAX(max, max, >)
TG_TMPL_MINMAX(min, min, <)

static void FN(axpy)(int64_t n, T alpha, const T *x, T *y)
{
    V al = VOP(set1)(alpha);
    int64_t i = 0;
    for (; i + VN <= n; i += VN)
        VOP(store)(y + i, VOP(add)(VOP(load)(y + i), VOP(mul)(al, VOP(load)(x + i))));
    if (i < n)
        VOP(storen)(y + i, VOP(add)(VOP(loadn)(y + i, n - i),
                                    VOP(mul)(al, VOP(loadn)(x + i, n - i))), n - i);
}

/* ---------------------------------------------------------------- table */

static void FN(fill)(tg_simd_table *t)
{
#if TG_TMPL_F64
#define TG_TMPL_TAB(f) f##_f64
#else
#define TG_TMPL_TAB(f) f##_f32
#endif
    TG_TMPL_TAB(t->unary)[TG_UN_NEG] = FN(un_neg);
    TG_TMPL_TAB(t->unary)[TG_UN_EXP] = FN(un_exp);
    TG_TMPL_TAB(t->unary)[TG_UN_LOG] = FN(un_log);
    TG_TMPL_TAB(t->unary)[TG_UN_SQRT] = FN(un_sqrt);
    TG_TMPL_TAB(t->unary)[TG_UN_RSQRT] = FN(un_rsqrt);
    TG_TMPL_TAB(t->unary)[TG_UN_ABS] = FN(un_abs);
    TG_TMPL_TAB(t->unary)[TG_UN_SIGN] = FN(un_sign);
    TG_TMPL_TAB(t->unary)[TG_UN_RELU] = FN(un_relu);
    TG_TMPL_TAB(t->unary)[TG_UN_SIGMOID] = FN(un_sigmoid);
    TG_TMPL_TAB(t->unary)[TG_UN_TANH] = FN(un_tanh);
    TG_TMPL_TAB(t->unary)[TG_UN_SQUARE] = FN(un_square);
    TG_TMPL_TAB(t->unary)[TG_UN_RECIPROCAL] = FN(un_reciprocal);
    TG_TMPL_TAB(t->unary)[TG_UN_ADD_SCALAR] = FN(un_add_scalar);
    TG_TMPL_TAB(t->unary)[TG_UN_MUL_SCALAR] = FN(un_mul_scalar);
    TG_TMPL_TAB(t->unary)[TG_UN_CLAMP] = FN(un_clamp);
    TG_TMPL_TAB(t->unary)[TG_UN_STEP] = FN(un_step);
    TG_TMPL_TAB(t->binary)[TG_BIN_ADD] = FN(bin_add);
    TG_TMPL_TAB(t->binary)[TG_BIN_SUB] = FN(bin_sub);
    TG_TMPL_TAB(t->binary)[TG_BIN_MUL] = FN(bin_mul);
    TG_TMPL_TAB(t->binary)[TG_BIN_DIV] = FN(bin_div);
    TG_TMPL_TAB(t->binary)[TG_BIN_MAXIMUM] = FN(bin_maximum);
    TG_TMPL_TAB(t->binary)[TG_BIN_MINIMUM] = FN(bin_minimum);
    TG_TMPL_TAB(t->sum) = FN(sum);
    TG_TMPL_TAB(t->max) = FN(max);
    TG_TMPL_TAB(t->min) = FN(min);
    TG_TMPL_TAB(t->axpy) = FN(axpy);
#undef TG_TMPL_TAB
}

#undef TG_TMPL_UNARY
#undef TG_TMPL_BINARY
#undef TG_TMPL_MINMAX
