/* CPU reductions (sum, max, min, argmax, argmin) and log-softmax. Sums, maxima and
 * minima of floats accumulate in double, so f32 results are accurate and identical
 * for any thread count: work splits on fixed block boundaries, never on the number of
 * threads. Integers accumulate exactly in int64. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/scalar.h"
#include "lib/cpu/simd/simd.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

#define BLOCK 16384 /* elements per partial result of a full reduction */
#define STACK_PARTIALS 1024 /* partials kept on the stack: up to 16M elements without malloc */

#define load_d tg_cpu_load_d

/* Accumulators, one cell per output: double for float inputs; int64 for the max and
 * min of integers; for integer sums a 128-bit two's-complement pair, so a sum is
 * exact whatever the order and saturates only at the end (INT64_MAX + 1 - 1 is
 * INT64_MAX). Cells are 8 bytes, or 16 for the wide sums. */
typedef struct {
    uint64_t lo;
    int64_t hi;
} wide;

typedef union {
    double d;
    int64_t i;
    wide w;
} cell;

typedef enum { K_FLOAT, K_INT, K_WIDE } cell_kind;

static cell_kind kind_of(tg_reduce_op op, tg_dtype d) {
    return !tg_cpu_is_int(d) ? K_FLOAT : op == TG_RED_SUM ? K_WIDE : K_INT;
}
static size_t cell_size(cell_kind k) { return k == K_WIDE ? sizeof(wide) : 8; }

static inline void wide_add(wide *w, int64_t v) {
    uint64_t lo = w->lo + (uint64_t)v;
    w->hi += (v < 0 ? -1 : 0) + (lo < w->lo);
    w->lo = lo;
}

static inline void wide_merge(wide *w, wide v) {
    uint64_t lo = w->lo + v.lo;
    w->hi += v.hi + (lo < w->lo);
    w->lo = lo;
}

static inline int64_t wide_sat(wide w) {
    if (w.hi == 0 && w.lo <= (uint64_t)INT64_MAX) return (int64_t)w.lo;
    if (w.hi == -1 && w.lo >= (uint64_t)1 << 63) return (int64_t)(w.lo - ((uint64_t)1 << 63)) + INT64_MIN;
    return w.hi < 0 ? INT64_MIN : INT64_MAX;
}

static inline double combine(tg_reduce_op op, double acc, double v) {
    if (op == TG_RED_SUM) return acc + v;
    if (isnan(acc)) return acc;
    if (isnan(v)) return v;
    return op == TG_RED_MAX ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

static inline int64_t combine_i(tg_reduce_op op, int64_t acc, int64_t v) {
    return op == TG_RED_MAX ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

static cell identity(tg_reduce_op op, cell_kind k) {
    cell c = { .w = { 0, 0 } };
    if (k == K_INT) c.i = op == TG_RED_MAX ? INT64_MIN : INT64_MAX;
    else if (k == K_FLOAT) c.d = op == TG_RED_SUM ? 0.0 : op == TG_RED_MAX ? -INFINITY : INFINITY;
    return c;
}

static inline void merge(tg_reduce_op op, cell_kind k, cell *acc, cell v) {
    if (k == K_WIDE) wide_merge(&acc->w, v.w);
    else if (k == K_INT) acc->i = combine_i(op, acc->i, v.i);
    else acc->d = combine(op, acc->d, v.d);
}

/* Folds one element of dtype d at p into acc. */
static inline void fold(tg_reduce_op op, cell_kind k, tg_dtype d, cell *acc, const char *p) {
    if (k == K_WIDE) wide_add(&acc->w, tg_cpu_load_i(d, p));
    else if (k == K_INT) acc->i = combine_i(op, acc->i, tg_cpu_load_i(d, p));
    else acc->d = combine(op, acc->d, load_d(d, p));
}

/* Reduces n contiguous elements: floats with the SIMD table where it has the kernel;
 * u8 and i32 sums in plain int64 (n < 2^32 elements cannot overflow it). */
static cell reduce_dense(tg_reduce_op op, tg_dtype d, const char *p, int64_t n) {
    const tg_simd_table *s = tg_simd();
    cell_kind k = kind_of(op, d);
    cell r = identity(op, k);
    if (k == K_WIDE && (d == TG_U8 || d == TG_I32) && n < INT32_MAX) {
        int64_t sum = 0;
        if (d == TG_U8)
            for (int64_t i = 0; i < n; i++) sum += ((const uint8_t *)p)[i];
        else
            for (int64_t i = 0; i < n; i++) sum += ((const int32_t *)p)[i];
        wide_add(&r.w, sum);
    } else if (k != K_FLOAT) {
        size_t es = tg_elsize(d);
        for (int64_t i = 0; i < n; i++) fold(op, k, d, &r, p + (size_t)i * es);
    } else if (d == TG_F32 && op == TG_RED_SUM) r.d = s->sum_f32(n, (const float *)p);
    else if (d == TG_F64 && op == TG_RED_SUM) r.d = s->sum_f64(n, (const double *)p);
    else if (n > 0 && d == TG_F32) r.d = op == TG_RED_MAX ? s->max_f32(n, (const float *)p) : s->min_f32(n, (const float *)p);
    else if (n > 0 && d == TG_F64) r.d = op == TG_RED_MAX ? s->max_f64(n, (const double *)p) : s->min_f64(n, (const double *)p);
    return r;
}

typedef struct {
    tg_reduce_op op;
    tg_dtype d;
    const char *x;
    int64_t n;
    cell *partial;
} full_ctx;

static void full_block(void *vc, int64_t b, int64_t e) {
    full_ctx *c = vc;
    size_t es = tg_elsize(c->d);
    for (int64_t blk = b; blk < e; blk++) {
        int64_t lo = blk * BLOCK, hi = lo + BLOCK < c->n ? lo + BLOCK : c->n;
        c->partial[blk] = reduce_dense(c->op, c->d, c->x + (size_t)lo * es, hi - lo);
    }
}

/* Accumulating rows: p[0] is the cell (stride 0 on reduced axes). */
typedef struct {
    tg_reduce_op op;
    tg_dtype d;
    cell_kind k;
} acc_ctx;

static void acc_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const acc_ctx *c = vc;
    if (st[0] == 0) {
        cell *acc = (cell *)p[0], a;
        memcpy(&a, acc, cell_size(c->k));
        if (st[1] == (int64_t)tg_elsize(c->d)) {
            merge(c->op, c->k, &a, reduce_dense(c->op, c->d, p[1], n));
        } else if (c->k == K_FLOAT) {
            for (int64_t i = 0; i < n; i++) a.d = combine(c->op, a.d, load_d(c->d, p[1] + i * st[1]));
        } else {
            for (int64_t i = 0; i < n; i++) fold(c->op, c->k, c->d, &a, p[1] + i * st[1]);
        }
        memcpy(acc, &a, cell_size(c->k));
        return;
    }
    if (c->op == TG_RED_SUM && c->d == TG_F32 && st[0] == 8 && st[1] == 4) {
        double *acc = (double *)p[0];
        const float *x = (const float *)p[1];
        for (int64_t i = 0; i < n; i++) acc[i] += x[i];
        return;
    }
    for (int64_t i = 0; i < n; i++) fold(c->op, c->k, c->d, (cell *)(p[0] + i * st[0]), p[1] + i * st[1]);
}

typedef struct {
    const tg_cpu_iter *it;
    acc_ctx *ac;
} outer_ctx;

/* Splits the outermost axis, whose accumulator stride is non-zero: no two tasks
 * touch the same output. */
static void outer_task(void *vc, int64_t b, int64_t e) {
    const outer_ctx *c = vc;
    tg_cpu_iter sub = *c->it;
    memmove(sub.shape, sub.shape + 1, (size_t)(sub.ndim - 1) * sizeof sub.shape[0]);
    for (int k = 0; k < 2; k++) memmove(sub.st[k], sub.st[k] + 1, (size_t)(sub.ndim - 1) * sizeof sub.st[k][0]);
    sub.ndim--;
    for (int64_t i = b; i < e; i++) {
        for (int k = 0; k < 2; k++) sub.base[k] = c->it->base[k] + i * c->it->st[k][0];
        tg_cpu_iter_run(&sub, false, 0, acc_row, c->ac);
    }
}

/* acc holds nout cells of cell_size(kind) bytes each, in out's dense order. */
static tg_status reduce_into(tg_reduce_op op, char *acc, int64_t nout, const tg_tensor *x, uint32_t mask) {
    cell_kind k = kind_of(op, x->dtype);
    size_t cs = cell_size(k);
    int64_t numel = tg_shape_numel(x->ndim, x->shape);
    cell id = identity(op, k);
    for (int64_t i = 0; i < nout; i++) memcpy(acc + (size_t)i * cs, &id, cs);
    if (numel == 0) return TG_OK;
    if (nout == 1 && tg_tensor_is_dense(x)) {
        int64_t nblk = (numel + BLOCK - 1) / BLOCK;
        cell stackbuf[STACK_PARTIALS], *partial = nblk <= STACK_PARTIALS ? stackbuf : malloc((size_t)nblk * sizeof *partial);
        if (!partial) return tg_error(TG_ERR_NOMEM, "reduce: out of host memory for %lld partial results", (long long)nblk);
        full_ctx c = { op, x->dtype, tg_cpu_ptr(x), numel, partial };
        tg_pool_parallel_for(nblk, 1, full_block, &c);
        cell a = id;
        for (int64_t b = 0; b < nblk; b++) merge(op, k, &a, partial[b]);
        memcpy(acc, &a, cs);
        if (partial != stackbuf) free(partial);
        return TG_OK;
    }
    int64_t ost[TG_MAX_DIMS], oshape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) oshape[i] = mask >> i & 1 ? 1 : x->shape[i];
    tg_contiguous_strides(x->ndim, oshape, ost);
    for (int i = 0; i < x->ndim; i++)
        if (mask >> i & 1) ost[i] = 0;
    tg_cpu_iter it;
    tg_cpu_iter_init(&it, x->ndim, x->shape, 2, (char *[]){ acc, tg_cpu_ptr(x) },
                     (const int64_t *[]){ ost, x->strides }, (size_t[]){ cs, tg_elsize(x->dtype) });
    acc_ctx ac = { op, x->dtype, k };
    if (it.ndim >= 2 && it.st[0][0] != 0 && numel >= TG_GRAIN_ELEMENTWISE) {
        outer_ctx oc = { &it, &ac };
        tg_pool_parallel_for(it.shape[0], 1, outer_task, &oc);
    } else {
        tg_cpu_iter_run(&it, false, 0, acc_row, &ac);
    }
    return TG_OK;
}

/* Arg reductions: one axis; p[0] is the output (i32 or i64 indices), p[1] the start
 * of x's line. Integers compare exactly; for floats the first NaN wins. */
typedef struct {
    bool is_max;
    tg_dtype d, od;
    int64_t len, stride; /* the axis, stride in bytes */
} arg_ctx;

static int64_t arg_line_i(const arg_ctx *c, const char *line) {
    int64_t best = tg_cpu_load_i(c->d, line), bi = 0;
    for (int64_t j = 1; j < c->len; j++) {
        int64_t v = tg_cpu_load_i(c->d, line + j * c->stride);
        if (c->is_max ? v > best : v < best) best = v, bi = j;
    }
    return bi;
}

static int64_t arg_line_d(const arg_ctx *c, const char *line) {
    double best = load_d(c->d, line);
    int64_t bi = 0;
    for (int64_t j = 1; j < c->len && !isnan(best); j++) {
        double v = load_d(c->d, line + j * c->stride);
        if (isnan(v) || (c->is_max ? v > best : v < best)) best = v, bi = j;
    }
    return bi;
}

static void arg_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const arg_ctx *c = vc;
    for (int64_t i = 0; i < n; i++) {
        const char *line = p[1] + i * st[1];
        int64_t bi = tg_cpu_is_int(c->d) ? arg_line_i(c, line) : arg_line_d(c, line);
        if (c->od == TG_I64) *(int64_t *)(p[0] + i * st[0]) = bi;
        else *(int32_t *)(p[0] + i * st[0]) = (int32_t)bi; /* fits: checked by tg_cpu_reduce */
    }
}

/* Iterates over the positions of out (x's shape with 1 on axis) with x's strides. */
static void line_iter(tg_cpu_iter *it, const tg_tensor *out, const tg_tensor *x, int axis) {
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = 1;
    tg_cpu_iter_init(it, x->ndim, shape, 2, (char *[]){ tg_cpu_ptr(out), tg_cpu_ptr(x) },
                     (const int64_t *[]){ out->strides, x->strides },
                     (size_t[]){ tg_elsize(out->dtype), tg_elsize(x->dtype) });
}

static int single_axis(uint32_t mask) {
    for (int i = 0; i < TG_MAX_DIMS; i++)
        if (mask == 1u << i) return i;
    return -1;
}

static const char *reduce_name(tg_reduce_op op) {
    static const char *names[] = { "tg_sum", "tg_max", "tg_min", "tg_argmax", "tg_argmin" };
    return names[op];
}

/* max, min and the arg ops have no identity: an empty reduced axis is an error
 * (PyTorch's too) unless there is nothing to write. */
static tg_status check_nonempty(tg_reduce_op op, const tg_tensor *out, const tg_tensor *x, uint32_t mask) {
    if (op == TG_RED_SUM || tg_shape_numel(out->ndim, out->shape) == 0) return TG_OK;
    for (int i = 0; i < x->ndim; i++)
        if ((mask >> i & 1) && x->shape[i] == 0)
            return tg_error(TG_ERR_SHAPE, "%s: cannot reduce over axis %d of size 0", reduce_name(op), i); /* the ops layer's words, as OpenCL's */
    return TG_OK;
}

static tg_status arg_reduce(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask) {
    int axis = single_axis(mask);
    if (axis < 0 || axis >= x->ndim || (out->dtype != TG_I32 && out->dtype != TG_I64))
        return tg_error(TG_ERR_INVALID, "%s: the kernel takes one axis (mask 0x%x for %d dims) and an i32 or i64 "
                        "output (got %s)", reduce_name(op), (unsigned)mask, x->ndim, tg_dtype_name(out->dtype));
    if (out->dtype == TG_I32 && x->shape[axis] - 1 > INT32_MAX)
        return tg_error(TG_ERR_DTYPE, "%s: axis %d has %lld elements: its indices do not fit i32", reduce_name(op),
                        axis, (long long)x->shape[axis]);
    arg_ctx c = { op == TG_RED_ARGMAX, x->dtype, out->dtype, x->shape[axis],
                  x->strides[axis] * (int64_t)tg_elsize(x->dtype) };
    tg_cpu_iter it;
    line_iter(&it, out, x, axis);
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE / (c.len + 1) + 1, arg_row, &c);
    return TG_OK;
}

/* Accumulates in cells (see above), then converts into out's dtype: an i64 out of an
 * integer sum is the exact count, a u8 out saturates at 255. */
tg_status tg_cpu_reduce(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask) {
    if (check_nonempty(op, out, x, mask) != TG_OK) return tg_last_status();
    if (op == TG_RED_ARGMAX || op == TG_RED_ARGMIN) return arg_reduce(op, out, x, mask);
    int64_t nout = tg_shape_numel(out->ndim, out->shape);
    if (nout == 0) return TG_OK;
    cell_kind k = kind_of(op, x->dtype);
    size_t nbytes = (size_t)nout * cell_size(k);
    cell one;
    char *acc = (char *)&one;
    if (nout > 1 && tg_cpu_alloc(out->storage->dev, nbytes, (void **)&acc) != TG_OK) return tg_last_status();
    tg_status status = reduce_into(op, acc, nout, x, mask);
    if (status == TG_OK) {
        if (k == K_WIDE) /* narrow in place, front to back: cell i is read before int64 i lands */
            for (int64_t i = 0; i < nout; i++) {
                wide w;
                memcpy(&w, acc + (size_t)i * sizeof w, sizeof w);
                int64_t v = wide_sat(w);
                memcpy(acc + (size_t)i * 8, &v, 8);
            }
        tg_tensor accv = *out; /* a dense view of the cells, copied into out with conversion */
        tg_storage st = { .refcount = 1, .dev = out->storage->dev, .data = acc };
        accv.dtype = k == K_FLOAT ? TG_F64 : TG_I64;
        accv.storage = &st;
        accv.offset = 0;
        tg_contiguous_strides(accv.ndim, accv.shape, accv.strides);
        tg_cpu_copy(out, &accv);
    }
    if (acc != (char *)&one) tg_cpu_free(out->storage->dev, acc, nbytes);
    return status;
}

/* ------------------------------------------------------------- log-softmax */

typedef struct {
    tg_dtype d;
    int64_t len, sx, so; /* axis length and byte strides of x and out along it */
} lsm_ctx;

static inline void store_f(tg_dtype d, char *p, double v) {
    if (d == TG_F32) *(float *)p = (float)v;
    else *(double *)p = v;
}

/* A contiguous f32 line through the SIMD table: out = x - max, exp in place, sum, then
 * out = (x - max) - log sum, shifting twice because x - max is exact in float while
 * max + log sum rounded to float is not. Six vector passes instead of a libm call per
 * element. */
static bool lsm_line_simd_f32(const lsm_ctx *c, float *o, const float *x) {
    const tg_simd_table *s = tg_simd();
    if (c->d != TG_F32 || c->sx != 4 || c->so != 4 || c->len == 0 || !s->unary_f32[TG_UN_EXP] ||
        !s->unary_f32[TG_UN_ADD_SCALAR])
        return false;
    float m = s->max_f32(c->len, x);
    if (isinf(m) || isnan(m)) return false; /* leave the edge cases to the reference loop */
    s->unary_f32[TG_UN_ADD_SCALAR](c->len, x, o, -m, 0);
    s->unary_f32[TG_UN_EXP](c->len, o, o, 0, 0);
    float log_sum = (float)log(s->sum_f32(c->len, o));
    s->unary_f32[TG_UN_ADD_SCALAR](c->len, x, o, -m, 0);
    s->unary_f32[TG_UN_ADD_SCALAR](c->len, o, o, -log_sum, 0);
    return true;
}

static void lsm_row(void *vc, int64_t n, char **p, const int64_t *st) {
    const lsm_ctx *c = vc;
    for (int64_t i = 0; i < n; i++) {
        if (lsm_line_simd_f32(c, (float *)(p[0] + i * st[0]), (const float *)(p[1] + i * st[1]))) continue;
        char *o = p[0] + i * st[0];
        const char *x = p[1] + i * st[1];
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < c->len; j++) m = fmax(m, load_d(c->d, x + j * c->sx));
        if (isinf(m)) m = 0; /* all -inf: keep -inf outputs, avoid inf - inf */
        for (int64_t j = 0; j < c->len; j++) s += exp(load_d(c->d, x + j * c->sx) - m);
        double lse = m + log(s);
        for (int64_t j = 0; j < c->len; j++) store_f(c->d, o + j * c->so, load_d(c->d, x + j * c->sx) - lse);
    }
}

tg_status tg_cpu_log_softmax(tg_tensor *out, const tg_tensor *x, int axis) {
    size_t es = tg_elsize(x->dtype);
    lsm_ctx c = { x->dtype, x->shape[axis], x->strides[axis] * (int64_t)es, out->strides[axis] * (int64_t)es };
    tg_cpu_iter it;
    line_iter(&it, out, x, axis);
    tg_cpu_iter_run(&it, true, TG_GRAIN_ELEMENTWISE / (c.len + 1) + 1, lsm_row, &c);
    return TG_OK;
}
