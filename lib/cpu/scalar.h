/* One element's semantics for the CPU kernels: reading and writing any dtype, and the
 * integer arithmetic. Integers (u8, i32, i64) compute exactly in int64, never through
 * double, and every result that leaves a dtype's range saturates, as float -> int
 * conversions do (NaN gives 0): i32 and u8 always behaved so (they went through
 * double), and the OpenCL kernels follow the same rule. PyTorch wraps instead. */
#ifndef TG_CPU_SCALAR_H
#define TG_CPU_SCALAR_H

#include <math.h>
#include <stdint.h>

#include "lib/graph/tensor-impl.h"

static inline bool tg_cpu_is_int(tg_dtype d) { return d == TG_U8 || d == TG_I32 || d == TG_I64; }

/* double -> int64, saturating; NaN -> 0. 2^63 is the first double past INT64_MAX. */
static inline int64_t tg_sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 0x1p63) return INT64_MAX;
    if (v <= -0x1p63) return INT64_MIN;
    return (int64_t)v;
}

static inline int64_t tg_sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
static inline int64_t tg_sat_sub(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? INT64_MAX : INT64_MIN) : r;
}
static inline int64_t tg_sat_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX) : r;
}

/* An integer e in int64 as a double: the scalars of ops that then stay exact. */
static inline bool tg_is_integral(double e) { return e == floor(e) && fabs(e) < 0x1p63; }

/* a^e as pow() would give it, truncated: a negative e gives 1/a^|e|, so 0 for |a| > 1,
 * and 1/0 = inf saturates. */
static inline int64_t tg_ipow(int64_t a, int64_t e) {
    if (e < 0) return a == 1 ? 1 : a == -1 ? (e & 1 ? -1 : 1) : a == 0 ? INT64_MAX : 0;
    int64_t r = 1, base = a;
    while (e) { /* once saturated, |factors| >= 2 keep it saturated; signs stay right */
        if (e & 1) r = tg_sat_mul(r, base);
        e >>= 1;
        if (e) base = tg_sat_mul(base, base);
    }
    return r;
}

/* Exact comparison of an integer with a double: -1, 0, 1, or 2 when d is NaN. */
static inline int tg_cmp_i64_d(int64_t x, double d) {
    if (d != d) return 2;
    if (d >= 0x1p63) return -1;
    if (d < -0x1p63) return 1;
    int64_t t = (int64_t)d; /* exact: |d| < 2^63 */
    if (x != t) return x < t ? -1 : 1;
    double frac = d - (double)t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static inline double tg_cpu_load_d(tg_dtype d, const char *p) {
    switch (d) {
    case TG_F32: return *(const float *)p;
    case TG_F64: return *(const double *)p;
    case TG_I32: return *(const int32_t *)p;
    case TG_I64: return (double)*(const int64_t *)p;
    default: return *(const uint8_t *)p;
    }
}

/* Integer dtypes exactly; floats saturate (NaN 0). */
static inline int64_t tg_cpu_load_i(tg_dtype d, const char *p) {
    switch (d) {
    case TG_I64: return *(const int64_t *)p;
    case TG_I32: return *(const int32_t *)p;
    case TG_U8: return *(const uint8_t *)p;
    default: return tg_sat_i64(tg_cpu_load_d(d, p));
    }
}

static inline void tg_cpu_store_d(tg_dtype d, char *p, double v) {
    switch (d) {
    case TG_F32: *(float *)p = (float)v; break;
    case TG_F64: *(double *)p = v; break;
    case TG_I32: *(int32_t *)p = v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v; break;
    case TG_I64: *(int64_t *)p = tg_sat_i64(v); break;
    default: *(uint8_t *)p = v != v || v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v; break;
    }
}

/* Saturates into integer dtypes; floats take the nearest value (one rounding). */
static inline void tg_cpu_store_i(tg_dtype d, char *p, int64_t v) {
    switch (d) {
    case TG_I64: *(int64_t *)p = v; break;
    case TG_I32: *(int32_t *)p = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v; break;
    case TG_U8: *(uint8_t *)p = v > 255 ? 255 : v < 0 ? 0 : (uint8_t)v; break;
    case TG_F32: *(float *)p = (float)v; break;
    default: *(double *)p = (double)v; break;
    }
}

#endif
