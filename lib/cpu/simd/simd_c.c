/* The plain-C twins of every SIMD kernel: the level-0 table, the fallback on CPUs without
 * AVX2, and the oracle tests/test_simd.c compares each SIMD kernel with. The SIMD
 * versions must match these bit for bit on arithmetic ops, so the NaN and signed-zero
 * rules below are the contract:
 *   relu(x) = x < 0 ? 0 : x          (NaN stays NaN, -0 stays -0)
 *   clamp   = y = x < p0 ? p0 : x; y > p1 ? p1 : y   (NaN stays NaN)
 *   step    = x > p0 ? 1 : 0         (NaN gives 0)
 *   sign    = (x > 0) - (x < 0)      (NaN gives 0)
 *   maximum = isnan(a) ? a : a > b ? a : b   (NaN in either propagates)
 *   max/min reductions propagate NaN. axpy is a multiply then an add (no FMA), and
 *   sum_f32 accumulates in double. */
#include <math.h>

#include "lib/cpu/simd/simd.h"

/* One unary kernel per (type, op): EXPR reads v (the element), p0 and p1. */
#define TG_C_UNARY(T, NAME, EXPR)                                                     \
    static void NAME(int64_t n, const T *x, T *out, T p0, T p1)                       \
    {                                                                                 \
        (void)p0;                                                                     \
        (void)p1;                                                                     \
        for (int64_t i = 0; i < n; i++) {                                             \
            T v = x[i];                                                               \
            out[i] = (EXPR);                                                          \
        }                                                                             \
    }

#define TG_C_BINARY(T, NAME, EXPR)                                                    \
    static void NAME(int64_t n, const T *a, int64_t sa, const T *b, int64_t sb, T *out) \
    {                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                             \
            T u = a[i * sa], v = b[i * sb];                                           \
            out[i] = (EXPR);                                                          \
        }                                                                             \
    }

/* ---------------------------------------------------------------- f32 */

TG_C_UNARY(float, un_neg_f32, -v)
TG_C_UNARY(float, un_exp_f32, expf(v))
TG_C_UNARY(float, un_log_f32, logf(v))
TG_C_UNARY(float, un_sqrt_f32, sqrtf(v))
TG_C_UNARY(float, un_rsqrt_f32, 1.0f / sqrtf(v))
TG_C_UNARY(float, un_abs_f32, fabsf(v))
TG_C_UNARY(float, un_sign_f32, (float)((v > 0) - (v < 0)))
TG_C_UNARY(float, un_relu_f32, v < 0 ? 0.0f : v)
TG_C_UNARY(float, un_sigmoid_f32, 1.0f / (1.0f + expf(-v)))
TG_C_UNARY(float, un_tanh_f32, tanhf(v))
TG_C_UNARY(float, un_sin_f32, sinf(v))
TG_C_UNARY(float, un_cos_f32, cosf(v))
TG_C_UNARY(float, un_square_f32, v * v)
TG_C_UNARY(float, un_reciprocal_f32, 1.0f / v)
TG_C_UNARY(float, un_pow_scalar_f32, powf(v, p0))
TG_C_UNARY(float, un_add_scalar_f32, v + p0)
TG_C_UNARY(float, un_mul_scalar_f32, v * p0)
TG_C_UNARY(float, un_clamp_f32, (v = v < p0 ? p0 : v, v > p1 ? p1 : v))
TG_C_UNARY(float, un_step_f32, v > p0 ? 1.0f : 0.0f)

TG_C_BINARY(float, bin_add_f32, u + v)
TG_C_BINARY(float, bin_sub_f32, u - v)
TG_C_BINARY(float, bin_mul_f32, u * v)
TG_C_BINARY(float, bin_div_f32, u / v)
TG_C_BINARY(float, bin_pow_f32, powf(u, v))
TG_C_BINARY(float, bin_maximum_f32, u != u ? u : u > v ? u : v)
TG_C_BINARY(float, bin_minimum_f32, u != u ? u : u < v ? u : v)

static double sum_f32(int64_t n, const float *x)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static float max_f32(int64_t n, const float *x)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > m || x[i] != x[i])
            m = x[i];
    return m;
}

static float min_f32(int64_t n, const float *x)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] < m || x[i] != x[i])
            m = x[i];
    return m;
}

static void axpy_f32(int64_t n, float alpha, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float t = alpha * x[i];
        y[i] = y[i] + t;
    }
}

/* ---------------------------------------------------------------- f64 */

TG_C_UNARY(double, un_neg_f64, -v)
TG_C_UNARY(double, un_exp_f64, exp(v))
TG_C_UNARY(double, un_log_f64, log(v))
TG_C_UNARY(double, un_sqrt_f64, sqrt(v))
TG_C_UNARY(double, un_rsqrt_f64, 1.0 / sqrt(v))
TG_C_UNARY(double, un_abs_f64, fabs(v))
TG_C_UNARY(double, un_sign_f64, (double)((v > 0) - (v < 0)))
TG_C_UNARY(double, un_relu_f64, v < 0 ? 0.0 : v)
TG_C_UNARY(double, un_sigmoid_f64, 1.0 / (1.0 + exp(-v)))
TG_C_UNARY(double, un_tanh_f64, tanh(v))
TG_C_UNARY(double, un_sin_f64, sin(v))
TG_C_UNARY(double, un_cos_f64, cos(v))
TG_C_UNARY(double, un_square_f64, v * v)
TG_C_UNARY(double, un_reciprocal_f64, 1.0 / v)
TG_C_UNARY(double, un_pow_scalar_f64, pow(v, p0))
TG_C_UNARY(double, un_add_scalar_f64, v + p0)
TG_C_UNARY(double, un_mul_scalar_f64, v * p0)
TG_C_UNARY(double, un_clamp_f64, (v = v < p0 ? p0 : v, v > p1 ? p1 : v))
TG_C_UNARY(double, un_step_f64, v > p0 ? 1.0 : 0.0)

TG_C_BINARY(double, bin_add_f64, u + v)
TG_C_BINARY(double, bin_sub_f64, u - v)
TG_C_BINARY(double, bin_mul_f64, u * v)
TG_C_BINARY(double, bin_div_f64, u / v)
TG_C_BINARY(double, bin_pow_f64, pow(u, v))
TG_C_BINARY(double, bin_maximum_f64, u != u ? u : u > v ? u : v)
TG_C_BINARY(double, bin_minimum_f64, u != u ? u : u < v ? u : v)

/* Four partial sums, so the twin's rounding is close to the SIMD kernels' order. */
static double sum_f64(int64_t n, const double *x)
{
    double s[4] = { 0, 0, 0, 0 };
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += x[i + j];
    for (; i < n; i++)
        s[0] += x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static double max_f64(int64_t n, const double *x)
{
    double m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > m || x[i] != x[i])
            m = x[i];
    return m;
}

static double min_f64(int64_t n, const double *x)
{
    double m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] < m || x[i] != x[i])
            m = x[i];
    return m;
}

static void axpy_f64(int64_t n, double alpha, const double *x, double *y)
{
    for (int64_t i = 0; i < n; i++) {
        double t = alpha * x[i];
        y[i] = y[i] + t;
    }
}

/* ---------------------------------------------------------------- the table */

#define TG_C_FILL_UNARY(t, S)                                                        \
    do {                                                                             \
        t->unary_##S[TG_UN_NEG] = un_neg_##S;                                        \
        t->unary_##S[TG_UN_EXP] = un_exp_##S;                                        \
        t->unary_##S[TG_UN_LOG] = un_log_##S;                                        \
        t->unary_##S[TG_UN_SQRT] = un_sqrt_##S;                                      \
        t->unary_##S[TG_UN_RSQRT] = un_rsqrt_##S;                                    \
        t->unary_##S[TG_UN_ABS] = un_abs_##S;                                        \
        t->unary_##S[TG_UN_SIGN] = un_sign_##S;                                      \
        t->unary_##S[TG_UN_RELU] = un_relu_##S;                                      \
        t->unary_##S[TG_UN_SIGMOID] = un_sigmoid_##S;                                \
        t->unary_##S[TG_UN_TANH] = un_tanh_##S;                                      \
        t->unary_##S[TG_UN_SIN] = un_sin_##S;                                        \
        t->unary_##S[TG_UN_COS] = un_cos_##S;                                        \
        t->unary_##S[TG_UN_SQUARE] = un_square_##S;                                  \
        t->unary_##S[TG_UN_RECIPROCAL] = un_reciprocal_##S;                          \
        t->unary_##S[TG_UN_POW_SCALAR] = un_pow_scalar_##S;                          \
        t->unary_##S[TG_UN_ADD_SCALAR] = un_add_scalar_##S;                          \
        t->unary_##S[TG_UN_MUL_SCALAR] = un_mul_scalar_##S;                          \
        t->unary_##S[TG_UN_CLAMP] = un_clamp_##S;                                    \
        t->unary_##S[TG_UN_STEP] = un_step_##S;                                      \
        t->binary_##S[TG_BIN_ADD] = bin_add_##S;                                     \
        t->binary_##S[TG_BIN_SUB] = bin_sub_##S;                                     \
        t->binary_##S[TG_BIN_MUL] = bin_mul_##S;                                     \
        t->binary_##S[TG_BIN_DIV] = bin_div_##S;                                     \
        t->binary_##S[TG_BIN_POW] = bin_pow_##S;                                     \
        t->binary_##S[TG_BIN_MAXIMUM] = bin_maximum_##S;                             \
        t->binary_##S[TG_BIN_MINIMUM] = bin_minimum_##S;                             \
        t->sum_##S = sum_##S;                                                        \
        t->max_##S = max_##S;                                                        \
        t->min_##S = min_##S;                                                        \
        t->axpy_##S = axpy_##S;                                                      \
    } while (0)

_Static_assert(TG_UN_COUNT == 19, "a new tg_unary_op needs a C twin here");
_Static_assert(TG_BIN_FIRST_CMP == 7, "a new arithmetic tg_binary_op needs a C twin here");

void tg_simd_fill_c(tg_simd_table *t)
{
    t->name = "c";
    TG_C_FILL_UNARY(t, f32);
    TG_C_FILL_UNARY(t, f64);
}
