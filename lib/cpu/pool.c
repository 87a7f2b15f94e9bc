/* 2-D max and average pooling on the CPU, plain and adaptive, with their backward and
 * max_unpool2d. Two versions: the reference loops (the oracle, one output element at a
 * time) and the fast path the backend uses, which runs the interior of each output row
 * (windows that need no clipping) as a few long strided passes a compiler vectorises,
 * the row's edges element by element, and threads over output rows (forward) or over
 * N*C planes (backward and unpool, whose writes into a plane may collide).
 *
 * Semantics are PyTorch's CPU kernels': ties keep the first maximum in row-major window
 * order, a NaN replaces the running maximum (so NaN propagates, the last NaN's index
 * wins), a window holding no input element gives -inf with PyTorch's index. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/clones.h"
#include "lib/cpu/cpu.h"
#include "lib/cpu/pool.h"
#include "lib/cpu/simd/simd.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* Outputs the interior loop keeps in registers/L1 at once. */
#define TG_POOL_CHUNK 128

/* The input positions output o reads on axis a (0: H, 1: W): lo, lo + step, ... < hi;
 * padded is avg's window clipped to the padded input (count_include_pad's count). */
typedef struct {
    int64_t lo, hi, step, padded;
} tg_pool_win;

static inline tg_pool_win tg_pool_window(const tg_pool2d_geom *g, tg_pool_kind kind, int a, int64_t o) {
    int64_t in = a ? g->W : g->H, out = a ? g->OW : g->OH;
    tg_pool_win w = { 0, 0, 1, 0 };
    if (g->adaptive) {
        w.lo = o * in / out;
        w.hi = ((o + 1) * in + out - 1) / out;
        w.padded = w.hi - w.lo;
        return w;
    }
    int64_t s = o * g->stride[a] - g->pad[a];
    if (kind == TG_POOL_MAX) {
        int64_t d = g->dilation[a], e = s + (g->kernel[a] - 1) * d + 1;
        if (s < 0) s += (-s + d - 1) / d * d; /* the first tap inside the input */
        w.lo = s;
        w.hi = e < in ? e : in;
        w.step = d;
    } else {
        int64_t e = s + g->kernel[a], pe = in + g->pad[a];
        if (e > pe) e = pe;
        w.padded = e - s;
        w.lo = s < 0 ? 0 : s;
        w.hi = e < in ? e : in;
    }
    return w;
}

static inline double tg_pool_divisor(const tg_pool2d_geom *g, tg_pool_win hw, tg_pool_win ww) {
    if (g->divisor) return (double)g->divisor;
    if (g->count_include_pad && !g->adaptive) return (double)(hw.padded * ww.padded);
    return (double)((hw.hi - hw.lo) * (ww.hi - ww.lo));
}

/* ---------------------------------------------------------------- the reference */

static inline double ld(tg_dtype dt, const void *p, int64_t i) {
    return dt == TG_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void st(tg_dtype dt, void *p, int64_t i, double v) {
    if (dt == TG_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

tg_status tg_cpu_pool2d_ref(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                            const tg_pool2d_geom *g) {
    tg_dtype dt = x->dtype;
    const char *xp = tg_cpu_ptr(x);
    char *yp = tg_cpu_ptr(out);
    int64_t *ip = indices ? (int64_t *)tg_cpu_ptr(indices) : NULL;
    int64_t HW = g->H * g->W, es = (int64_t)tg_elsize(dt);
    for (int64_t p = 0; p < g->N * g->C; p++)
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                tg_pool_win hw = tg_pool_window(g, kind, 0, oh), ww = tg_pool_window(g, kind, 1, ow);
                const char *plane = xp + p * HW * es;
                int64_t o = (p * g->OH + oh) * g->OW + ow;
                if (kind == TG_POOL_MAX) {
                    double m = -INFINITY;
                    int64_t mi = hw.lo * g->W + ww.lo;
                    for (int64_t h = hw.lo; h < hw.hi; h += hw.step)
                        for (int64_t w = ww.lo; w < ww.hi; w += ww.step) {
                            double v = ld(dt, plane, h * g->W + w);
                            if (v > m || isnan(v)) {
                                m = v;
                                mi = h * g->W + w;
                            }
                        }
                    st(dt, yp, o, m);
                    if (ip) ip[o] = mi;
                } else {
                    double s = 0;
                    for (int64_t h = hw.lo; h < hw.hi; h++)
                        for (int64_t w = ww.lo; w < ww.hi; w++) s += ld(dt, plane, h * g->W + w);
                    st(dt, yp, o, s / tg_pool_divisor(g, hw, ww));
                }
            }
    return TG_OK;
}

tg_status tg_cpu_pool2d_backward_ref(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout,
                                     const tg_tensor *indices, const tg_pool2d_geom *g) {
    tg_dtype dt = dx->dtype;
    int64_t HW = g->H * g->W;
    double *acc = malloc((size_t)(HW ? HW : 1) * sizeof *acc);
    if (!acc) return tg_error(TG_ERR_NOMEM, "tg_backward: out of host memory (pool2d, %lld elements)", (long long)HW);
    const char *gp = tg_cpu_ptr(dout);
    const int64_t *ip = indices ? (const int64_t *)tg_cpu_ptr(indices) : NULL;
    char *dp = tg_cpu_ptr(dx);
    for (int64_t p = 0; p < g->N * g->C; p++) {
        memset(acc, 0, (size_t)HW * sizeof *acc);
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t o = (p * g->OH + oh) * g->OW + ow;
                double gv = ld(dt, gp, o);
                if (kind == TG_POOL_MAX) {
                    if (ip[o] >= 0 && ip[o] < HW) acc[ip[o]] += gv;
                    continue;
                }
                tg_pool_win hw = tg_pool_window(g, kind, 0, oh), ww = tg_pool_window(g, kind, 1, ow);
                double v = gv / tg_pool_divisor(g, hw, ww);
                for (int64_t h = hw.lo; h < hw.hi; h++)
                    for (int64_t w = ww.lo; w < ww.hi; w++) acc[h * g->W + w] += v;
            }
        for (int64_t i = 0; i < HW; i++) st(dt, dp, p * HW + i, acc[i]);
    }
    free(acc);
    return TG_OK;
}

/* ---------------------------------------------------------------- the fast path */

typedef struct {
    const tg_pool2d_geom *g;
    const void *x;
    void *y;
    int64_t *idx;
    const int64_t *cidx;
    tg_pool_kind kind; /* for the SIMD row kernel */
    bool f32;
    int64_t ow_lo, ow_hi; /* the output columns whose windows lie inside [0, W) */
    _Atomic int64_t bad;   /* unpool: an index outside the plane, else -1 */
    _Atomic int bad_set;
} tg_pool_ctx;

/* One f32 and one f64 copy of each kernel. */
#define TG_POOL_KERNELS(T, S, TI)                                                                               \
    TG_CPU_INLINE void max_one_##S(const T *xp, int64_t W, tg_pool_win hw, tg_pool_win ww, T *y, int64_t *i) { \
        T m = (T)-INFINITY;                                                                                   \
        int64_t mi = hw.lo * W + ww.lo;                                                                       \
        for (int64_t h = hw.lo; h < hw.hi; h += hw.step)                                                      \
            for (int64_t w = ww.lo; w < ww.hi; w += ww.step) {                                                \
                T v = xp[h * W + w];                                                                          \
                if (v > m || v != v) {                                                                        \
                    m = v;                                                                                    \
                    mi = h * W + w;                                                                           \
                }                                                                                             \
            }                                                                                                 \
        *y = m;                                                                                               \
        if (i) *i = mi;                                                                                       \
    }                                                                                                         \
                                                                                                              \
    /* One tap of the window for n outputs sw apart: the running max m and the tap that    \
     * gave it. sw is a constant where the caller's branch makes it one (1, 2).             \
     * Same-width tap numbers let the compiler vectorise the blend. */                     \
    TG_CPU_INLINE void max_tap_##S(const T *src, int64_t n, int64_t sw, T *m,   \
                                                                  TI *tap, TI t) {                            \
        for (int64_t j = 0; j < n; j++) {                                                                     \
            T v = src[j * sw];                                                                                \
            bool take = (v > m[j]) | (v != v);                                                                \
            m[j] = take ? v : m[j];                                                                           \
            tap[j] = take ? t : tap[j];                                                                       \
        }                                                                                                     \
    }                                                                                                         \
    TG_CPU_INLINE void max_val_##S(const T *src, int64_t n, int64_t sw, T *m) { \
        for (int64_t j = 0; j < n; j++) {                                                                     \
            T v = src[j * sw];                                                                                \
            m[j] = (v > m[j]) | (v != v) ? v : m[j];                                                          \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    /* The interior of one output row: outputs [o0, o0 + n) of a window row range hw. */                      \
    TG_CPU_INLINE void max_run_##S(const tg_pool2d_geom *g, const T *xp, tg_pool_win hw, int64_t o0, int64_t n, \
                                   T *y, int64_t *ix_out) {                                                   \
        const int64_t W = g->W, sw = g->stride[1], kw = g->kernel[1], dw = g->dilation[1];                    \
        T m[TG_POOL_CHUNK];                                                                                   \
        TI tap[TG_POOL_CHUNK];                                                                                \
        int64_t b0 = hw.lo * W + o0 * sw - g->pad[1];                                                         \
        for (int64_t j = 0; j < n; j++) m[j] = xp[b0 + j * sw], tap[j] = 0;                                   \
        TI t = 0;                                                                                             \
        for (int64_t h = hw.lo; h < hw.hi; h += hw.step)                                                      \
            for (int64_t k = 0; k < kw; k++, t++) {                                                           \
                if (t == 0) continue;                                                                         \
                const T *src = xp + h * W + o0 * sw - g->pad[1] + k * dw;                                     \
                if (ix_out) {                                                                                 \
                    if (sw == 1) max_tap_##S(src, n, 1, m, tap, t);                                           \
                    else if (sw == 2) max_tap_##S(src, n, 2, m, tap, t);                                      \
                    else max_tap_##S(src, n, sw, m, tap, t);                                                  \
                } else {                                                                                      \
                    if (sw == 1) max_val_##S(src, n, 1, m);                                                   \
                    else if (sw == 2) max_val_##S(src, n, 2, m);                                              \
                    else max_val_##S(src, n, sw, m);                                                          \
                }                                                                                             \
            }                                                                                                 \
        memcpy(y, m, (size_t)n * sizeof(T));                                                                  \
        for (int64_t j = 0; ix_out && j < n; j++)                                                             \
            ix_out[j] = b0 + j * sw + (int64_t)(tap[j] / kw) * hw.step * W + (int64_t)(tap[j] % kw) * dw;     \
    }                                                                                                         \
                                                                                                              \
    /* n windows of a 2x2 stride-2 pool along one row pair (a: the top-left tap of the    \
     * first, the rows W apart): its four taps to m (tap 0) and v0-v2, in arrays the loop  \
     * (stride-2 loads) and the compares after it vectorise over. */                        \
    TG_CPU_INLINE void gather_2x2_##S(int64_t n, const T *restrict a, int64_t W, T *restrict m, T *restrict v0, \
                                      T *restrict v1, T *restrict v2) {                                     \
        for (int64_t s = 0; s < n; s++) {                                                                     \
            m[s] = a[2 * s], v0[s] = a[2 * s + 1], v1[s] = a[W + 2 * s], v2[s] = a[W + 2 * s + 1];            \
        }                                                                                                     \
    }                                                                                                         \
    TG_CPU_INLINE void index_2x2_##S(int64_t n, int64_t at, int64_t W, const TI *restrict tap, int64_t *restrict ip) { \
        for (int64_t s = 0; s < n; s++) ip[s] = at + 2 * s + (int64_t)(tap[s] >> 1) * W + (tap[s] & 1);       \
    }                                                                                                         \
                                                                                                              \
    /* The commonest window (2x2, stride 2, every window whole) a plane at a time: the   \
     * four taps of TG_POOL_CHUNK outputs (rows of the plane one after another) are copied \
     * out a row segment at a time, then compared in loops the compiler vectorises. Short  \
     * rows (14 outputs) were what the row path paid for: loop set-up, and on random data  \
     * mispredicted branches. Taps in window order, a later tap taken when greater or NaN, \
     * as the general path. */                                                              \
    TG_CPU_CLONES static void max_2x2_planes_##S(void *vc, int64_t begin, int64_t end) {                      \
        const tg_pool_ctx *c = vc;                                                                            \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t W = g->W, OW = g->OW, HW = g->H * W, OHW = g->OH * OW;                                  \
        T m[TG_POOL_CHUNK], v[3][TG_POOL_CHUNK];                                                              \
        TI tap[TG_POOL_CHUNK];                                                                                \
        for (int64_t p = begin; p < end; p++) {                                                               \
            const T *xp = (const T *)c->x + p * HW;                                                           \
            T *y = (T *)c->y + p * OHW;                                                                       \
            int64_t *ip = c->idx ? c->idx + p * OHW : NULL;                                                   \
            int64_t oh = 0, o = 0;                                                                            \
            for (int64_t k0 = 0; k0 < OHW; k0 += TG_POOL_CHUNK) {                                             \
                int64_t n = OHW - k0 < TG_POOL_CHUNK ? OHW - k0 : TG_POOL_CHUNK;                              \
                int64_t oh0 = oh, o0 = o;                                                                     \
                for (int64_t j = 0; j < n;) { /* row segments */                                              \
                    int64_t seg = OW - o < n - j ? OW - o : n - j;                                            \
                    gather_2x2_##S(seg, xp + 2 * oh * W + 2 * o, W, m + j, v[0] + j, v[1] + j, v[2] + j);     \
                    j += seg, o += seg;                                                                       \
                    if (o == OW) o = 0, oh++;                                                                 \
                }                                                                                             \
                for (int64_t j = 0; j < n; j++) tap[j] = 0;                                                   \
                for (int q = 0; q < 3; q++) max_tap_##S(v[q], n, 1, m, tap, (TI)(q + 1));                     \
                memcpy(y + k0, m, (size_t)n * sizeof(T));                                                     \
                for (int64_t j = 0; ip && j < n;) {                                                           \
                    int64_t seg = OW - o0 < n - j ? OW - o0 : n - j;                                          \
                    index_2x2_##S(seg, 2 * oh0 * W + 2 * o0, W, tap + j, ip + k0 + j);                        \
                    j += seg, o0 += seg;                                                                      \
                    if (o0 == OW) o0 = 0, oh0++;                                                              \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void max_rows_##S(void *vc, int64_t begin, int64_t end) {                                          \
        const tg_pool_ctx *c = vc;                                                                            \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t OH = g->OH, OW = g->OW, HW = g->H * g->W;                                               \
        for (int64_t r = begin; r < end; r++) {                                                               \
            const T *xp = (const T *)c->x + r / OH * HW;                                                      \
            T *y = (T *)c->y + r * OW;                                                                        \
            int64_t *ip = c->idx ? c->idx + r * OW : NULL;                                                    \
            tg_pool_win hw = tg_pool_window(g, TG_POOL_MAX, 0, r % OH);                                       \
            int64_t lo = c->ow_lo, hi = c->ow_hi;                                                             \
            if (hw.lo >= hw.hi) lo = hi = OW;                                                                 \
            for (int64_t ow = 0; ow < lo; ow++)                                                               \
                max_one_##S(xp, g->W, hw, tg_pool_window(g, TG_POOL_MAX, 1, ow), y + ow, ip ? ip + ow : NULL); \
            for (int64_t o0 = lo; o0 < hi; o0 += TG_POOL_CHUNK)                                               \
                max_run_##S(g, xp, hw, o0, hi - o0 < TG_POOL_CHUNK ? hi - o0 : TG_POOL_CHUNK, y + o0,         \
                            ip ? ip + o0 : NULL);                                                             \
            for (int64_t ow = hi; ow < OW; ow++)                                                              \
                max_one_##S(xp, g->W, hw, tg_pool_window(g, TG_POOL_MAX, 1, ow), y + ow, ip ? ip + ow : NULL); \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void avg_rows_##S(void *vc, int64_t begin, int64_t end) {                                          \
        const tg_pool_ctx *c = vc;                                                                            \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t OH = g->OH, OW = g->OW, W = g->W, HW = g->H * W, sw = g->stride[1], kw = g->kernel[1];  \
        for (int64_t r = begin; r < end; r++) {                                                               \
            const T *xp = (const T *)c->x + r / OH * HW;                                                      \
            T *y = (T *)c->y + r * OW;                                                                        \
            tg_pool_win hw = tg_pool_window(g, TG_POOL_AVG, 0, r % OH);                                       \
            int64_t lo = c->ow_lo, hi = c->ow_hi;                                                             \
            for (int64_t ow = 0; ow < OW; ow++) {                                                             \
                if (ow == lo && lo < hi) { /* the interior, in runs */                                        \
                    tg_pool_win ww = { 0, kw, 1, kw };                                                        \
                    T div = (T)tg_pool_divisor(g, hw, ww);                                                    \
                    for (int64_t o0 = lo; o0 < hi; o0 += TG_POOL_CHUNK) {                                     \
                        int64_t n = hi - o0 < TG_POOL_CHUNK ? hi - o0 : TG_POOL_CHUNK;                        \
                        T acc[TG_POOL_CHUNK] = { 0 };                                                         \
                        for (int64_t h = hw.lo; h < hw.hi; h++)                                               \
                            for (int64_t k = 0; k < kw; k++) {                                                \
                                const T *src = xp + h * W + o0 * sw - g->pad[1] + k;                          \
                                for (int64_t j = 0; j < n; j++) acc[j] += src[j * sw];                        \
                            }                                                                                 \
                        for (int64_t j = 0; j < n; j++) y[o0 + j] = acc[j] / div;                             \
                    }                                                                                         \
                    ow = hi - 1;                                                                              \
                    continue;                                                                                 \
                }                                                                                             \
                tg_pool_win ww = tg_pool_window(g, TG_POOL_AVG, 1, ow);                                       \
                T s = 0;                                                                                      \
                for (int64_t h = hw.lo; h < hw.hi; h++)                                                       \
                    for (int64_t w = ww.lo; w < ww.hi; w++) s += xp[h * W + w];                               \
                y[ow] = s / (T)tg_pool_divisor(g, hw, ww);                                                    \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void bwd_planes_max_##S(void *vc, int64_t begin, int64_t end) {                                    \
        const tg_pool_ctx *c = vc;                                                                            \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;                                                  \
        for (int64_t p = begin; p < end; p++) {                                                               \
            T *dx = (T *)c->y + p * HW;                                                                       \
            const T *gp = (const T *)c->x + p * OHW;                                                          \
            const int64_t *ip = c->cidx + p * OHW;                                                            \
            memset(dx, 0, (size_t)HW * sizeof(T));                                                            \
            for (int64_t i = 0; i < OHW; i++)                                                                 \
                if ((uint64_t)ip[i] < (uint64_t)HW) dx[ip[i]] += gp[i];                                       \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void bwd_planes_avg_##S(void *vc, int64_t begin, int64_t end) {                                    \
        const tg_pool_ctx *c = vc;                                                                            \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t W = g->W, HW = g->H * W, OHW = g->OH * g->OW;                                           \
        for (int64_t p = begin; p < end; p++) {                                                               \
            T *dx = (T *)c->y + p * HW;                                                                       \
            const T *gp = (const T *)c->x + p * OHW;                                                          \
            memset(dx, 0, (size_t)HW * sizeof(T));                                                            \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                                          \
                tg_pool_win hw = tg_pool_window(g, TG_POOL_AVG, 0, oh);                                       \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                                      \
                    tg_pool_win ww = tg_pool_window(g, TG_POOL_AVG, 1, ow);                                   \
                    T v = gp[oh * g->OW + ow] / (T)tg_pool_divisor(g, hw, ww);                                \
                    for (int64_t h = hw.lo; h < hw.hi; h++)                                                   \
                        for (int64_t w = ww.lo; w < ww.hi; w++) dx[h * W + w] += v;                           \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void unpool_planes_##S(void *vc, int64_t begin, int64_t end) {                                     \
        tg_pool_ctx *c = vc;                                                                                  \
        const tg_pool2d_geom *g = c->g;                                                                       \
        const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;                                                  \
        for (int64_t p = begin; p < end; p++) {                                                               \
            T *out = (T *)c->y + p * HW;                                                                      \
            const T *xp = (const T *)c->x + p * OHW;                                                          \
            const int64_t *ip = c->cidx + p * OHW;                                                            \
            memset(out, 0, (size_t)HW * sizeof(T));                                                           \
            for (int64_t i = 0; i < OHW; i++) {                                                               \
                if ((uint64_t)ip[i] >= (uint64_t)HW) {                                                        \
                    if (!atomic_exchange(&c->bad_set, 1)) atomic_store(&c->bad, ip[i]);                       \
                    continue;                                                                                 \
                }                                                                                             \
                out[ip[i]] = xp[i];                                                                           \
            }                                                                                                 \
        }                                                                                                     \
    }

TG_POOL_KERNELS(float, f32, int32_t)
TG_POOL_KERNELS(double, f64, int64_t)

/* Rows (or planes) per task: about TG_GRAIN_ELEMENTWISE elements touched. */
static int64_t tg_pool_grain(int64_t work_per_unit) {
    if (work_per_unit < 1) work_per_unit = 1;
    int64_t g = TG_GRAIN_ELEMENTWISE / work_per_unit;
    return g < 1 ? 1 : g;
}

/* The output columns whose windows need no clipping: ow*s - p >= 0 and
 * ow*s - p + (k-1)*d <= W-1. Adaptive windows run element by element. */
static void tg_pool_interior(const tg_pool2d_geom *g, int64_t *lo, int64_t *hi) {
    if (g->adaptive) {
        *lo = *hi = g->OW;
        return;
    }
    int64_t s = g->stride[1], p = g->pad[1], span = (g->kernel[1] - 1) * g->dilation[1];
    int64_t l = (p + s - 1) / s, num = g->W - 1 + p - span, h = num < 0 ? 0 : num / s + 1;
    if (l > g->OW) l = g->OW;
    if (h > g->OW) h = g->OW;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Whether the SIMD table's 2x2 stride-2 plane kernel takes g (windows all whole, checked
 * by the caller): f32 planes whose flat indices fit 32 bits. */
static bool tg_pool_2x2_simd(const tg_pool2d_geom *g) {
    return tg_simd()->max_pool_2x2_f32 && g->H * g->W < INT32_MAX;
}

static void max_2x2_simd(void *vc, int64_t begin, int64_t end) {
    const tg_pool_ctx *c = vc;
    const tg_pool2d_geom *g = c->g;
    const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;
    for (int64_t p = begin; p < end; p++)
        tg_simd()->max_pool_2x2_f32(g->OH, g->OW, (const float *)c->x + p * HW, g->W, (float *)c->y + p * OHW,
                                    c->idx ? c->idx + p * OHW : NULL);
}

/* Whether the SIMD table's row kernel takes g: a window, not adaptive, with a stride of
 * 1 or 2 along W, whose indices (those of windows past the input's end included) fit
 * 32 bits. */
static bool tg_pool_rows_simd(const tg_pool2d_geom *g) {
    double span_h = (double)g->H + (double)g->kernel[0] * g->dilation[0] + 1;
    double span_w = (double)g->W + (double)g->kernel[1] * g->dilation[1] + (double)g->stride[1] * 16;
    return tg_simd()->pool_rows_f32 && !g->adaptive && (g->stride[1] == 1 || g->stride[1] == 2) &&
           span_h * span_w < INT32_MAX;
}

static void pool_rows_simd(void *vc, int64_t begin, int64_t end) {
    const tg_pool_ctx *c = vc;
    tg_simd()->pool_rows_f32(c->kind, c->g, c->x, c->y, c->idx, begin, end);
}

/* Global average pooling (adaptive to 1x1), a plane per output: the SIMD table's sum,
 * which accumulates in double, then one division. The row path summed a plane one
 * element after another, a chain of dependent adds at a tenth of memory speed. */
static void global_avg_planes(void *vc, int64_t begin, int64_t end) {
    const tg_pool_ctx *c = vc;
    const int64_t HW = c->g->H * c->g->W;
    for (int64_t p = begin; p < end; p++)
        if (c->f32)
            ((float *)c->y)[p] = (float)(tg_simd()->sum_f32(HW, (const float *)c->x + p * HW) / (double)HW);
        else
            ((double *)c->y)[p] = tg_simd()->sum_f64(HW, (const double *)c->x + p * HW) / (double)HW;
}

/* The 2x2 stride-2 max pool with every window whole (no padding, no ceil_mode clip). */
static bool tg_pool_is_2x2(tg_pool_kind kind, const tg_pool2d_geom *g) {
    return kind == TG_POOL_MAX && !g->adaptive && g->kernel[0] == 2 && g->kernel[1] == 2 && g->stride[0] == 2 &&
           g->stride[1] == 2 && g->pad[0] == 0 && g->pad[1] == 0 && g->dilation[0] == 1 && g->dilation[1] == 1 &&
           2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

tg_status tg_cpu_pool2d(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                        const tg_pool2d_geom *g) {
    if (!g->adaptive && g->kernel[0] * (double)g->kernel[1] > INT32_MAX) /* tap numbers are i32 */
        return tg_cpu_pool2d_ref(kind, out, indices, x, g);
    tg_pool_ctx c = { .g = g, .x = tg_cpu_ptr(x), .y = tg_cpu_ptr(out) };
    c.idx = indices ? (int64_t *)tg_cpu_ptr(indices) : NULL;
    tg_pool_interior(g, &c.ow_lo, &c.ow_hi);
    int64_t kk = g->adaptive ? ((g->H + g->OH - 1) / g->OH + 1) * ((g->W + g->OW - 1) / g->OW + 1)
                             : g->kernel[0] * g->kernel[1];
    int64_t rows = g->N * g->C * g->OH;
    bool f32 = c.f32 = x->dtype == TG_F32;
    if (tg_pool_is_2x2(kind, g)) {
        tg_pool_fn planes = !f32 ? max_2x2_planes_f64 : tg_pool_2x2_simd(g) ? max_2x2_simd : max_2x2_planes_f32;
        tg_pool_parallel_for(g->N * g->C, tg_pool_grain(g->OH * g->OW * 5), planes, &c);
        return TG_OK;
    }
    tg_pool_fn fn = kind == TG_POOL_MAX ? (f32 ? max_rows_f32 : max_rows_f64) : (f32 ? avg_rows_f32 : avg_rows_f64);
    if (kind == TG_POOL_AVG && g->adaptive && g->OH == 1 && g->OW == 1) {
        fn = global_avg_planes;
        kk = g->H * g->W;
    } else if (f32 && tg_pool_rows_simd(g)) {
        c.kind = kind;
        fn = pool_rows_simd;
    }
    tg_pool_parallel_for(rows, tg_pool_grain(g->OW * (kk + 1)), fn, &c);
    return TG_OK;
}

tg_status tg_cpu_pool2d_backward(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout, const tg_tensor *indices,
                                 const tg_pool2d_geom *g) {
    tg_pool_ctx c = { .g = g, .x = tg_cpu_ptr(dout), .y = tg_cpu_ptr(dx) };
    c.cidx = indices ? (const int64_t *)tg_cpu_ptr(indices) : NULL;
    bool f32 = dx->dtype == TG_F32;
    int64_t kk = kind == TG_POOL_MAX ? 1 : g->adaptive ? (g->H / g->OH + 1) * (g->W / g->OW + 1)
                                                       : g->kernel[0] * g->kernel[1];
    tg_pool_fn fn = kind == TG_POOL_MAX ? (f32 ? bwd_planes_max_f32 : bwd_planes_max_f64)
                                        : (f32 ? bwd_planes_avg_f32 : bwd_planes_avg_f64);
    tg_pool_parallel_for(g->N * g->C, tg_pool_grain(g->H * g->W + g->OH * g->OW * kk), fn, &c);
    return TG_OK;
}

tg_status tg_cpu_max_unpool2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *indices, const tg_pool2d_geom *g) {
    tg_pool_ctx c = { .g = g, .x = tg_cpu_ptr(x), .y = tg_cpu_ptr(out), .cidx = (const int64_t *)tg_cpu_ptr(indices) };
    atomic_init(&c.bad, -1);
    atomic_init(&c.bad_set, 0);
    tg_pool_fn fn = x->dtype == TG_F32 ? unpool_planes_f32 : unpool_planes_f64;
    tg_pool_parallel_for(g->N * g->C, tg_pool_grain(g->H * g->W + g->OH * g->OW), fn, &c);
    if (atomic_load(&c.bad_set))
        return tg_error(TG_ERR_INVALID, "tg_max_unpool2d: index %lld is outside the output plane of %lldx%lld "
                        "(valid: 0 to %lld)", (long long)atomic_load(&c.bad), (long long)g->H, (long long)g->W,
                        (long long)(g->H * g->W - 1));
    return TG_OK;
}
