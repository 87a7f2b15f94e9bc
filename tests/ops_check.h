/* Shared by the forward-op suites: host buffers freed at exit, shapes and broadcasting
 * on the host, random host data, tensors in several memory layouts, and EXPECT, which
 * compares a tensor with a reference computed here from the same host inputs. */
#ifndef TG_TEST_OPS_CHECK_H
#define TG_TEST_OPS_CHECK_H

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "harness.h"

/* ------------------------------------------------------------------ host buffers
 * Every host array is tracked; mark()/release() free the arrays and the tensors made
 * since the mark, so loops over large tensors stay small. */

static void **g_bufs;
static size_t g_nbufs, g_capbufs;

static inline void free_bufs(void) {
    while (g_nbufs) free(g_bufs[--g_nbufs]);
    free(g_bufs);
    g_bufs = NULL;
    g_capbufs = 0;
}

static inline void *track(void *p) {
    static int registered;
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    if (!registered) registered = !atexit(free_bufs);
    if (g_nbufs == g_capbufs) {
        size_t cap = g_capbufs ? 2 * g_capbufs : 256;
        void **nb = realloc(g_bufs, cap * sizeof *nb);
        if (!nb) {
            fprintf(stderr, "out of host memory\n");
            exit(2);
        }
        g_bufs = nb;
        g_capbufs = cap;
    }
    g_bufs[g_nbufs++] = p;
    return p;
}

static inline double *dbuf(int64_t n) { return track(calloc((size_t)(n > 0 ? n : 1), sizeof(double))); }

static inline size_t mark(void) {
    tg_scope_begin();
    return g_nbufs;
}

static inline void release(size_t m) {
    while (g_nbufs > m) free(g_bufs[--g_nbufs]);
    tg_scope_end();
}

/* A tensor's values as doubles (tracked); NULL if t is NULL or cannot be read. */
static inline double *vals(tg_tensor *t) {
    if (!t) return NULL;
    double *v = tg_test_values(t);
    return v ? track(v) : NULL;
}

/* ------------------------------------------------------------------ shapes */

static inline int64_t numel_of(tg_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

static inline bool shape_eq(tg_shape a, tg_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

static inline const char *shape_str(tg_shape s) {
    static char bufs[4][128];
    static int k;
    char *b = bufs[k++ & 3];
    int pos = snprintf(b, 128, "(");
    for (int i = 0; i < s.ndim && pos < 120; i++) pos += snprintf(b + pos, (size_t)(128 - pos), i ? ",%lld" : "%lld", (long long)s.dims[i]);
    snprintf(b + pos, (size_t)(128 - pos), ")");
    return b;
}

static inline void unravel(int64_t flat, tg_shape s, int64_t *idx) {
    for (int d = s.ndim - 1; d >= 0; d--) {
        idx[d] = s.dims[d] ? flat % s.dims[d] : 0;
        flat = s.dims[d] ? flat / s.dims[d] : 0;
    }
}

static inline int64_t ravel(const int64_t *idx, tg_shape s) {
    int64_t f = 0;
    for (int d = 0; d < s.ndim; d++) f = f * s.dims[d] + idx[d];
    return f;
}

/* numpy broadcasting of two shapes (the test's own). */
static inline tg_shape bcast_shape(tg_shape a, tg_shape b) {
    tg_shape o = { .ndim = a.ndim > b.ndim ? a.ndim : b.ndim };
    for (int i = 0; i < o.ndim; i++) {
        int64_t da = i < o.ndim - a.ndim ? 1 : a.dims[i - (o.ndim - a.ndim)];
        int64_t db = i < o.ndim - b.ndim ? 1 : b.dims[i - (o.ndim - b.ndim)];
        o.dims[i] = da == 1 ? db : da;
    }
    return o;
}

/* The flat index in `in` of the element that broadcasting puts at out index oidx. */
static inline int64_t bcast_flat(const int64_t *oidx, tg_shape out, tg_shape in) {
    int off = out.ndim - in.ndim;
    int64_t f = 0;
    for (int d = 0; d < in.ndim; d++) f = f * in.dims[d] + (in.dims[d] == 1 ? 0 : oidx[d + off]);
    return f;
}

/* ------------------------------------------------------------------ random host data */

static uint64_t g_rng = 0x243f6a8885a308d3u;

static inline uint64_t next_u64(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline double urand(double lo, double hi) { return lo + (hi - lo) * (double)(next_u64() >> 11) * 0x1.0p-53; }
static inline int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo)); } /* [lo, hi) */

/* Rounds host values to what dtype can hold, so references see the stored inputs. */
static inline void round_to(tg_dtype dt, double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F32) v[i] = (double)(float)v[i];
        else if (dt == TG_I32) v[i] = (double)(int32_t)v[i];
        else if (dt == TG_U8) v[i] = (double)(uint8_t)v[i];
    }
}

static inline double *uniform_vals(tg_dtype dt, int64_t n, double lo, double hi) {
    double *v = dbuf(n);
    for (int64_t i = 0; i < n; i++) v[i] = urand(lo, hi);
    round_to(dt, v, n);
    return v;
}

static inline double *int_vals(int64_t n, int64_t lo, int64_t hi) {
    double *v = dbuf(n);
    for (int64_t i = 0; i < n; i++) v[i] = (double)irand(lo, hi);
    return v;
}

/* ------------------------------------------------------------------ tensors with layouts */

static inline tg_tensor *from_doubles(tg_dtype dt, tg_shape s, const double *v) {
    int64_t n = numel_of(s);
    void *buf = track(malloc((size_t)(n > 0 ? n : 1) * 8));
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case TG_F32: ((float *)buf)[i] = (float)v[i]; break;
        case TG_F64: ((double *)buf)[i] = v[i]; break;
        case TG_I32: ((int32_t *)buf)[i] = (int32_t)v[i]; break;
        default: ((uint8_t *)buf)[i] = (uint8_t)v[i]; break;
        }
    }
    return tg_from_data(buf, dt, s, tg_test_device());
}

enum { L_CONTIG, L_STRIDED, L_TRANSPOSED, L_FLIPPED, L_COUNT };
static const char *const k_layout_names[L_COUNT] = { "contiguous", "strided", "transposed", "flipped" };
static const tg_dtype k_float_dtypes[2] = { TG_F32, TG_F64 };

/* A tensor of logical shape s and logical (row-major) values v, laid out in memory as
 * layout says: a step-2 slice of a wider tensor, the transpose of a tensor with the
 * last two axes swapped (a flip for 1-D), or the flip of a reversed tensor. */
static inline tg_tensor *make(tg_dtype dt, tg_shape s, const double *v, int layout) {
    int nd = s.ndim;
    int64_t n = numel_of(s);
    if (nd == 0 || n == 0 || layout == L_CONTIG) return from_doubles(dt, s, v);
    if (layout == L_TRANSPOSED && nd == 1) layout = L_FLIPPED;
    if (layout == L_STRIDED) {
        int64_t last = s.dims[nd - 1];
        tg_shape p = s;
        p.dims[nd - 1] = 2 * last;
        double *buf = dbuf(2 * n);
        for (int64_t i = 0; i < n; i++) {
            int64_t outer = i / last, k = i % last;
            buf[outer * 2 * last + 2 * k] = 99; /* never read */
            buf[outer * 2 * last + 2 * k + 1] = v[i];
        }
        return tg_slice(from_doubles(dt, p, buf), -1, 1, INT64_MAX, 2);
    }
    if (layout == L_TRANSPOSED) {
        int64_t R = s.dims[nd - 2], C = s.dims[nd - 1];
        tg_shape p = s;
        p.dims[nd - 2] = C;
        p.dims[nd - 1] = R;
        double *buf = dbuf(n);
        for (int64_t i = 0; i < n; i++) {
            int64_t outer = i / (R * C), r = i / C % R, c = i % C;
            buf[outer * R * C + c * R + r] = v[i];
        }
        return tg_transpose(from_doubles(dt, p, buf), -1, -2);
    }
    int64_t d0 = s.dims[0], inner = n / d0;
    double *buf = dbuf(n);
    for (int64_t i = 0; i < n; i++) buf[(d0 - 1 - i / inner) * inner + i % inner] = v[i];
    return tg_flip(from_doubles(dt, s, buf), TG_AXES(0));
}

/* Makes a tensor of uniform values in [lo, hi) (rounded to dt); *out gets the values. */
static inline tg_tensor *input(tg_dtype dt, tg_shape s, double lo, double hi, int layout, double **out) {
    double *v = uniform_vals(dt, numel_of(s), lo, hi);
    if (out) *out = v;
    return make(dt, s, v, layout);
}

/* ------------------------------------------------------------------ comparing */

static char g_what[200]; /* the loop's current case, printed with a failure */
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

static inline double tol_r(tg_dtype dt) { return dt == TG_F32 ? 1e-5 : dt == TG_F64 ? 1e-12 : 0; }
static inline double tol_a(tg_dtype dt) { return dt == TG_F32 ? 1e-6 : dt == TG_F64 ? 1e-12 : 0; }

static inline bool near_val(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol;
}

/* t must exist, have shape s and dtype dt, and values within atol + rtol * scale[i]
 * (scale NULL: |ref[i]|). Returns 1 on failure after printing the first mismatch. */
static inline int expect_(tg_tensor *t, tg_shape s, tg_dtype dt, const double *ref, double atol, double rtol,
                   const double *scale, int line) {
    if (!t) {
        fprintf(stderr, "  %s:%d: [%s] op failed: %s\n", __FILE__, line, g_what, tg_last_error());
        return 1;
    }
    if (!shape_eq(tg_shape_of(t), s) || tg_dtype_of(t) != dt) {
        fprintf(stderr, "  %s:%d: [%s] got %s %s, expected %s %s\n", __FILE__, line, g_what,
                tg_dtype_name(tg_dtype_of(t)), shape_str(tg_shape_of(t)), tg_dtype_name(dt), shape_str(s));
        return 1;
    }
    int64_t n = numel_of(s), bad = 0, first = -1;
    double *got = vals(t);
    if (!got) {
        fprintf(stderr, "  %s:%d: [%s] cannot read values: %s\n", __FILE__, line, g_what, tg_last_error());
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double tol = atol + rtol * (scale ? scale[i] : fabs(ref[i]));
        if (!near_val(got[i], ref[i], tol)) {
            if (first < 0) first = i;
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "  %s:%d: [%s] %lld of %lld values differ; first at flat %lld: got %.17g, expected %.17g\n",
                __FILE__, line, g_what, (long long)bad, (long long)n, (long long)first, got[first], ref[first]);
        return 1;
    }
    return 0;
}

#define EXPECT(t, s, dt, ref, atol, rtol) (*tg_failed_ += expect_((t), (s), (dt), (ref), (atol), (rtol), NULL, __LINE__))
#define EXPECT_SCALED(t, s, dt, ref, atol, rtol, scale) \
    (*tg_failed_ += expect_((t), (s), (dt), (ref), (atol), (rtol), (scale), __LINE__))
#define EXPECT_EXACT(t, s, dt, ref) EXPECT(t, s, dt, ref, 0, 0)

/* Sizes: 0-d, 1, 7, 17, 1023 and 99831 (past the threading threshold). */
#define N_SIZES 6
static inline tg_shape size_shape(int k) {
    switch (k) {
    case 0: return TG_SCALAR_SHAPE;
    case 1: return TG_SHAPE(1);
    case 2: return TG_SHAPE(7);
    case 3: return TG_SHAPE(17);
    case 4: return TG_SHAPE(31, 33);
    default: return TG_SHAPE(3, 311, 107);
    }
}

/* A set of axes as a bitmask, negative axes counted from the end. */
static inline uint32_t axes_mask(tg_axes ax, int nd) {
    if (ax.n < 0) return nd ? (1u << nd) - 1 : 0;
    uint32_t m = 0;
    for (int i = 0; i < ax.n; i++) m |= 1u << (ax.axes[i] < 0 ? ax.axes[i] + nd : ax.axes[i]);
    return m;
}

#endif
