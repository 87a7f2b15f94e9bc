/* CPU elementwise kernels: fill, copy/cast, unary, binary, where, arange. Each is the
 * plain strided reference loop; contiguous f32/f64 rows go to the SIMD table, whose
 * C twins are checked against these semantics by tests/test_simd.c. Integer dtypes
 * compute in int64 with saturation (lib/cpu/scalar.h), exact for every i64 value. */
#include <math.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/scalar.h"
#include "lib/cpu/simd/simd.h"
#include "lib/cpu/threadpool.h"

/* ------------------------------------------------------------- scalar semantics */

static inline double un_d(tg_unary_op op, double x, double p0, double p1) {
    switch (op) {
    case TG_UN_NEG: return -x;
    case TG_UN_EXP: return exp(x);
    case TG_UN_LOG: return log(x);
    case TG_UN_SQRT: return sqrt(x);
    case TG_UN_RSQRT: return 1.0 / sqrt(x);
    case TG_UN_ABS: return fabs(x);
    case TG_UN_SIGN: return (x > 0) - (x < 0);
    case TG_UN_RELU: return x < 0 ? 0.0 : x; /* NaN stays NaN, -0 stays -0, as the SIMD twins */
    case TG_UN_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case TG_UN_TANH: return tanh(x);
    case TG_UN_SIN: return sin(x);
    case TG_UN_COS: return cos(x);
    case TG_UN_SQUARE: return x * x;
    case TG_UN_RECIPROCAL: return 1.0 / x;
    case TG_UN_POW_SCALAR: return pow(x, p0);
    case TG_UN_ADD_SCALAR: return x + p0;
    case TG_UN_MUL_SCALAR: return x * p0;
    case TG_UN_CLAMP: x = x < p0 ? p0 : x; return x > p1 ? p1 : x; /* NaN stays NaN */
    case TG_UN_STEP: return x > p0 ? 1.0 : 0.0;
    case TG_UN_COUNT: break;
    }
    return 0;
}

static inline float un_f(tg_unary_op op, float x, float p0, float p1) {
    switch (op) {
    case TG_UN_EXP: return expf(x);
    case TG_UN_LOG: return logf(x);
    case TG_UN_SQRT: return sqrtf(x);
    case TG_UN_RSQRT: return 1.0f / sqrtf(x);
    case TG_UN_SIGMOID: return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
    case TG_UN_TANH: return tanhf(x);
    case TG_UN_SIN: return sinf(x);
    case TG_UN_COS: return cosf(x);
    case TG_UN_POW_SCALAR: return powf(x, p0);
    case TG_UN_ADD_SCALAR: return x + p0;
    case TG_UN_MUL_SCALAR: return x * p0;
    case TG_UN_STEP: return x > p0 ? 1.0f : 0.0f;
    default: return (float)un_d(op, x, p0, p1);
    }
}

static inline double bin_d(tg_binary_op op, double a, double b) {
    switch (op) {
    case TG_BIN_ADD: return a + b;
    case TG_BIN_SUB: return a - b;
    case TG_BIN_MUL: return a * b;
    case TG_BIN_DIV: return a / b;
    case TG_BIN_POW: return pow(a, b);
    case TG_BIN_MAXIMUM: return isnan(a) || a > b ? a : b; /* NaN propagates */
    case TG_BIN_MINIMUM: return isnan(a) || a < b ? a : b;
    case TG_BIN_EQ: return a == b;
    case TG_BIN_NE: return a != b;
    case TG_BIN_LT: return a < b;
    case TG_BIN_LE: return a <= b;
    case TG_BIN_GT: return a > b;
    case TG_BIN_GE: return a >= b;
    case TG_BIN_COUNT: break;
    }
    return 0;
}

#define load tg_cpu_load_d
#define store tg_cpu_store_d

/* ------------------------------------------------------------- integer semantics */

/* Whether op has an exact integer form for these scalars; if not (exp, x * 0.5), an
 * integer input computes in double and the result converts back, saturating. */
static bool un_int_exact(tg_unary_op op, double p0) {
    switch (op) {
    case TG_UN_NEG: case TG_UN_ABS: case TG_UN_SIGN: case TG_UN_RELU: case TG_UN_SQUARE:
    case TG_UN_STEP: case TG_UN_CLAMP: return true;
    case TG_UN_ADD_SCALAR: case TG_UN_MUL_SCALAR: case TG_UN_POW_SCALAR: return tg_is_integral(p0);
    default: return false;
    }
}

/* The integer twin of un_d: the same results, computed without rounding. */
static inline int64_t un_i(tg_unary_op op, int64_t x, double p0, double p1) {
    switch (op) {
    case TG_UN_NEG: return tg_sat_sub(0, x);
    case TG_UN_ABS: return x < 0 ? tg_sat_sub(0, x) : x;
    case TG_UN_SIGN: return (x > 0) - (x < 0);
    case TG_UN_RELU: return x < 0 ? 0 : x;
    case TG_UN_SQUARE: return tg_sat_mul(x, x);
    case TG_UN_ADD_SCALAR: return tg_sat_add(x, (int64_t)p0);
    case TG_UN_MUL_SCALAR: return tg_sat_mul(x, (int64_t)p0);
    case TG_UN_POW_SCALAR: return tg_ipow(x, (int64_t)p0);
    case TG_UN_STEP: return tg_cmp_i64_d(x, p0) == 1;
    case TG_UN_CLAMP: /* as un_d: a NaN bound compares false and binds nothing */
        if (tg_cmp_i64_d(x, p0) == -1) return tg_sat_i64(p0 > p1 ? p1 : p0);
        return tg_cmp_i64_d(x, p1) == 1 ? tg_sat_i64(p1) : x;
    default: return 0;
    }
}

/* Integer division truncates; x / 0 saturates by the sign of x (0 / 0 gives 0), as the
 * double quotient would convert. */
static inline int64_t bin_i(tg_binary_op op, int64_t a, int64_t b) {
    switch (op) {
    case TG_BIN_ADD: return tg_sat_add(a, b);
    case TG_BIN_SUB: return tg_sat_sub(a, b);
    case TG_BIN_MUL: return tg_sat_mul(a, b);
    case TG_BIN_DIV:
        if (b == 0) return a > 0 ? INT64_MAX : a < 0 ? INT64_MIN : 0;
        return a == INT64_MIN && b == -1 ? INT64_MAX : a / b;
    case TG_BIN_POW: return tg_ipow(a, b);
    case TG_BIN_MAXIMUM: return a > b ? a : b;
    case TG_BIN_MINIMUM: return a < b ? a : b;
    case TG_BIN_EQ: return a == b;
    case TG_BIN_NE: return a != b;
    case TG_BIN_LT: return a < b;
    case TG_BIN_LE: return a <= b;
    case TG_BIN_GT: return a > b;
    case TG_BIN_GE: return a >= b;
    case TG_BIN_COUNT: break;
    }
    return 0;
}

/* ------------------------------------------------------------- helpers */

static void iter_of(tg_cpu_iter *it, const tg_tensor *shape_of, int nops, const tg_tensor *const *ts) {
    char *base[TG_ITER_MAX_OPS];
    const int64_t *strides[TG_ITER_MAX_OPS];
    size_t sizes[TG_ITER_MAX_OPS];
    for (int k = 0; k < nops; k++) {
        base[k] = tg_cpu_ptr(ts[k]);
        strides[k] = ts[k]->strides;
        sizes[k] = tg_elsize(ts[k]->dtype);
    }
    tg_cpu_iter_init(it, shape_of->ndim, shape_of->shape, nops, base, strides, sizes);
}

/* ------------------------------------------------------------- fill, copy, arange */

typedef struct {
    tg_dtype d;
    double v;
    char bytes[8];
} fill_ctx;

/* Rows of 4- and 8-byte values go through typed loops (the compiler's stores, vectorised
 * where the row is contiguous), not a memcpy call a value: a fill or a strided copy (the
 * zero-padded, subsampled shortcut of CIFAR's option-A blocks) ran at 2-3 GB/s. */
#define TG_ROW_TYPED(es, ...)                              \
    do {                                                   \
        if ((es) == 4) {                                   \
            typedef uint32_t W;                            \
            __VA_ARGS__;                                   \
            return;                                        \
        }                                                  \
        if ((es) == 8) {                                   \
            typedef uint64_t W;                            \
            __VA_ARGS__;                                   \
            return;                                        \
        }                                                  \
    } while (0)

static void fill_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const fill_ctx *c = vc;
    size_t es = tg_elsize(c->d);
    TG_ROW_TYPED(es, {
        W v;
        memcpy(&v, c->bytes, sizeof v);
        int64_t s = st[0] / (int64_t)sizeof(W);
        W *d = (W *)p[0];
        if (st[0] == (int64_t)sizeof(W))
            for (int64_t i = 0; i < n; i++) d[i] = v;
        else
            for (int64_t i = 0; i < n; i++) d[i * s] = v;
    });
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * st[0], c->bytes, es);
}

tg_status tg_cpu_fill(tg_tensor *out, double value) {
    fill_ctx c = { out->dtype, value, { 0 } };
    store(out->dtype, c.bytes, value);
    tg_cpu_iter it;
    iter_of(&it, out, 1, (const tg_tensor *[]){ out });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, fill_row, &c);
    return TG_OK;
}

typedef struct {
    tg_dtype od, xd;
} copy_ctx;

/* Typed loops for conversions into float types, which cannot overflow: the hot casts
 * (u8 pixels and i32 labels to f32, f32 <-> f64) run without a per-element switch. */
#define CONVERT(OT, XT)                                                  \
    for (int64_t i = 0; i < n; i++)                                      \
        *(OT *)(p[0] + i * st[0]) = (OT) * (const XT *)(p[1] + i * st[1]); \
    return true

static bool convert_to_float(tg_dtype od, tg_dtype xd, int64_t n, char **p, const int64_t *st) {
    if (od == TG_F32) {
        if (xd == TG_U8) { CONVERT(float, uint8_t); }
        if (xd == TG_I32) { CONVERT(float, int32_t); }
        if (xd == TG_I64) { CONVERT(float, int64_t); } /* one rounding, not two via double */
        if (xd == TG_F64) { CONVERT(float, double); }
    } else if (od == TG_F64) {
        if (xd == TG_U8) { CONVERT(double, uint8_t); }
        if (xd == TG_I32) { CONVERT(double, int32_t); }
        if (xd == TG_I64) { CONVERT(double, int64_t); }
        if (xd == TG_F32) { CONVERT(double, float); }
    }
    return false;
}
#undef CONVERT

static void copy_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const copy_ctx *c = vc;
    size_t es = tg_elsize(c->od);
    if (c->od == c->xd) {
        if (st[0] == (int64_t)es && st[1] == (int64_t)es) {
            memcpy(p[0], p[1], (size_t)n * es);
            return;
        }
        /* strides of whole values (every tensor's; the byte loop stays for any other) */
        if (st[0] % (int64_t)es == 0 && st[1] % (int64_t)es == 0)
            TG_ROW_TYPED(es, {
                W *d = (W *)p[0];
                const W *x = (const W *)p[1];
                int64_t sd = st[0] / (int64_t)sizeof(W), sx = st[1] / (int64_t)sizeof(W);
                for (int64_t i = 0; i < n; i++) d[i * sd] = x[i * sx];
            });
        for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * st[0], p[1] + i * st[1], es);
        return;
    }
    if (convert_to_float(c->od, c->xd, n, p, st)) return;
    if (tg_cpu_is_int(c->xd)) { /* to another integer dtype: exact, saturating */
        for (int64_t i = 0; i < n; i++) tg_cpu_store_i(c->od, p[0] + i * st[0], tg_cpu_load_i(c->xd, p[1] + i * st[1]));
        return;
    }
    for (int64_t i = 0; i < n; i++) store(c->od, p[0] + i * st[0], load(c->xd, p[1] + i * st[1]));
}

tg_status tg_cpu_copy(tg_tensor *out, const tg_tensor *x) {
    copy_ctx c = { out->dtype, x->dtype };
    tg_cpu_iter it;
    iter_of(&it, out, 2, (const tg_tensor *[]){ out, x });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, copy_row, &c);
    return TG_OK;
}

/* Integer dtypes with an integral start and step count exactly in int64 (i64 values
 * past 2^53 included); anything else is start + i * step in double. */
tg_status tg_cpu_arange(tg_tensor *out, double start, double step) {
    char *p = tg_cpu_ptr(out);
    size_t es = tg_elsize(out->dtype);
    if (tg_cpu_is_int(out->dtype) && tg_is_integral(start) && tg_is_integral(step)) {
        int64_t v = (int64_t)start, ds = (int64_t)step; /* stepping, so no i * step overflows early */
        for (int64_t i = 0; i < out->shape[0]; i++, v = tg_sat_add(v, ds)) tg_cpu_store_i(out->dtype, p + i * es, v);
        return TG_OK;
    }
    for (int64_t i = 0; i < out->shape[0]; i++) store(out->dtype, p + i * es, start + (double)i * step);
    return TG_OK;
}

/* ------------------------------------------------------------- unary */

typedef struct {
    tg_unary_op op;
    tg_dtype d, od; /* x's dtype and out's (the same unless the ops layer promotes) */
    bool int_exact; /* an integer x and an op with an exact integer form */
    double p0, p1;
    tg_unary_f32_fn f32;
    tg_unary_f64_fn f64;
} unary_ctx;

static void unary_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const unary_ctx *c = vc;
    if (c->d == TG_F32 && c->od == TG_F32) {
        if (c->f32 && st[0] == 4 && st[1] == 4) {
            c->f32(n, (const float *)p[1], (float *)p[0], (float)c->p0, (float)c->p1);
            return;
        }
        float p0 = (float)c->p0, p1 = (float)c->p1;
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * st[0]) = un_f(c->op, *(const float *)(p[1] + i * st[1]), p0, p1);
    } else if (c->d == TG_F64 && c->od == TG_F64) {
        if (c->f64 && st[0] == 8 && st[1] == 8) {
            c->f64(n, (const double *)p[1], (double *)p[0], c->p0, c->p1);
            return;
        }
        for (int64_t i = 0; i < n; i++)
            *(double *)(p[0] + i * st[0]) = un_d(c->op, *(const double *)(p[1] + i * st[1]), c->p0, c->p1);
    } else if (c->int_exact) {
        for (int64_t i = 0; i < n; i++)
            tg_cpu_store_i(c->od, p[0] + i * st[0], un_i(c->op, tg_cpu_load_i(c->d, p[1] + i * st[1]), c->p0, c->p1));
    } else {
        for (int64_t i = 0; i < n; i++)
            store(c->od, p[0] + i * st[0], un_d(c->op, load(c->d, p[1] + i * st[1]), c->p0, c->p1));
    }
}

tg_status tg_cpu_unary(tg_unary_op op, tg_tensor *out, const tg_tensor *x, double p0, double p1) {
    const tg_simd_table *s = tg_simd();
    unary_ctx c = { op, x->dtype, out->dtype, tg_cpu_is_int(x->dtype) && un_int_exact(op, p0), p0, p1,
                    s->unary_f32[op], s->unary_f64[op] };
    tg_cpu_iter it;
    iter_of(&it, out, 2, (const tg_tensor *[]){ out, x });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, unary_row, &c);
    return TG_OK;
}

/* ------------------------------------------------------------- binary */

typedef struct {
    tg_binary_op op;
    tg_dtype d, od; /* the inputs' dtype, out's (u8 for comparisons) */
    tg_binary_f32_fn f32;
    tg_binary_f64_fn f64;
} binary_ctx;

static void binary_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const binary_ctx *c = vc;
    if (c->d == TG_F32 && c->od == TG_F32 && c->f32 && st[0] == 4 && (st[1] == 4 || st[1] == 0) && (st[2] == 4 || st[2] == 0)) {
        c->f32(n, (const float *)p[1], st[1] / 4, (const float *)p[2], st[2] / 4, (float *)p[0]);
        return;
    }
    if (c->d == TG_F64 && c->od == TG_F64 && c->f64 && st[0] == 8 && (st[1] == 8 || st[1] == 0) && (st[2] == 8 || st[2] == 0)) {
        c->f64(n, (const double *)p[1], st[1] / 8, (const double *)p[2], st[2] / 8, (double *)p[0]);
        return;
    }
    tg_dtype od = c->od;
    if (tg_cpu_is_int(c->d)) {
        for (int64_t i = 0; i < n; i++)
            tg_cpu_store_i(od, p[0] + i * st[0],
                           bin_i(c->op, tg_cpu_load_i(c->d, p[1] + i * st[1]), tg_cpu_load_i(c->d, p[2] + i * st[2])));
        return;
    }
    if (c->d == TG_F32 && od == TG_F32) {
        for (int64_t i = 0; i < n; i++) {
            float a = *(const float *)(p[1] + i * st[1]), b = *(const float *)(p[2] + i * st[2]);
            *(float *)(p[0] + i * st[0]) = c->op == TG_BIN_POW ? powf(a, b) : (float)bin_d(c->op, a, b);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        store(od, p[0] + i * st[0], bin_d(c->op, load(c->d, p[1] + i * st[1]), load(c->d, p[2] + i * st[2])));
}

tg_status tg_cpu_binary(tg_binary_op op, tg_tensor *out, const tg_tensor *a, const tg_tensor *b) {
    const tg_simd_table *s = tg_simd();
    binary_ctx c = { op, a->dtype, out->dtype, NULL, NULL };
    if (op < TG_BIN_FIRST_CMP) {
        c.f32 = s->binary_f32[op];
        c.f64 = s->binary_f64[op];
    }
    tg_cpu_iter it;
    iter_of(&it, out, 3, (const tg_tensor *[]){ out, a, b });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, binary_row, &c);
    return TG_OK;
}

/* ------------------------------------------------------------- where */

static void where_row(void *vc, int64_t n, char **p, const int64_t *st) {
    size_t es = *(const size_t *)vc;
    for (int64_t i = 0; i < n; i++) {
        const char *src = *(const uint8_t *)(p[1] + i * st[1]) ? p[2] + i * st[2] : p[3] + i * st[3];
        memcpy(p[0] + i * st[0], src, es);
    }
}

tg_status tg_cpu_where(tg_tensor *out, const tg_tensor *cond, const tg_tensor *a, const tg_tensor *b) {
    size_t es = tg_elsize(out->dtype);
    tg_cpu_iter it;
    iter_of(&it, out, 4, (const tg_tensor *[]){ out, cond, a, b });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, where_row, &es);
    return TG_OK;
}

/* ------------------------------------------------------------- axpy */

typedef struct {
    tg_dtype d;
    double alpha;
} axpy_ctx;

static void axpy_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const axpy_ctx *c = vc;
    const tg_simd_table *s = tg_simd();
    if (c->d == TG_F32) {
        if (st[0] == 4 && st[1] == 4) {
            s->axpy_f32(n, (float)c->alpha, (const float *)p[1], (float *)p[0]);
            return;
        }
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * st[0]) += (float)c->alpha * *(const float *)(p[1] + i * st[1]);
    } else {
        if (st[0] == 8 && st[1] == 8) {
            s->axpy_f64(n, c->alpha, (const double *)p[1], (double *)p[0]);
            return;
        }
        for (int64_t i = 0; i < n; i++)
            *(double *)(p[0] + i * st[0]) += c->alpha * *(const double *)(p[1] + i * st[1]);
    }
}

tg_status tg_cpu_axpy(tg_tensor *dst, double alpha, const tg_tensor *x) {
    axpy_ctx c = { dst->dtype, alpha };
    tg_cpu_iter it;
    iter_of(&it, dst, 2, (const tg_tensor *[]){ dst, x });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, axpy_row, &c);
    return TG_OK;
}

/* ------------------------------------------------------------- threshold backward */

/* dx = x > threshold ? dout : 0: relu's backward in one pass (reads dout and x, writes
 * dx) where dout * step(x) takes two and a temporary. A NaN x gives 0, as step does.
 * The contiguous rows are a select GCC vectorizes at any target (with g[i] read only
 * under the condition it was a branch, mispredicted on every other element); the
 * strided loop is the same expression. */
typedef struct {
    tg_dtype d;
    double t;
} thr_ctx;

static void thr_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const thr_ctx *c = vc;
    if (c->d == TG_F32 && st[0] == 4 && st[1] == 4 && st[2] == 4) {
        float *o = (float *)p[0], t = (float)c->t;
        const float *g = (const float *)p[1], *x = (const float *)p[2];
        for (int64_t i = 0; i < n; i++) { /* g loaded unconditionally: a select, not a branch */
            float gi = g[i];
            o[i] = x[i] > t ? gi : 0.0f;
        }
        return;
    }
    if (c->d == TG_F64 && st[0] == 8 && st[1] == 8 && st[2] == 8) {
        double *o = (double *)p[0];
        const double *g = (const double *)p[1], *x = (const double *)p[2];
        for (int64_t i = 0; i < n; i++) {
            double gi = g[i];
            o[i] = x[i] > c->t ? gi : 0.0;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        store(c->d, p[0] + i * st[0], load(c->d, p[2] + i * st[2]) > c->t ? load(c->d, p[1] + i * st[1]) : 0.0);
}

tg_status tg_cpu_threshold_backward(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *x, double threshold) {
    thr_ctx c = { dx->dtype, threshold };
    tg_cpu_iter it;
    iter_of(&it, dx, 3, (const tg_tensor *[]){ dx, dout, x });
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE, thr_row, &c);
    return TG_OK;
}
