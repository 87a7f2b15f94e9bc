/* CPU kernels that address memory by computed indices: matmul (batches over GEMM),
 * gather, scatter-add and random fills. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/scalar.h"
#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/gemv.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* ------------------------------------------------------------- matmul */

/* Integer matmul (PyTorch has it on the CPU): exact int64 dot products, saturating. */
static void matmul_int(tg_tensor *out, const tg_tensor *a, const tg_tensor *b, int64_t batch, const int64_t *offs,
                       int64_t M, int64_t N, int64_t K) {
    int nd = out->ndim;
    size_t es = tg_elsize(out->dtype);
    const char *pa = tg_cpu_ptr(a), *pb = tg_cpu_ptr(b);
    char *pc = tg_cpu_ptr(out);
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                int64_t acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t x = tg_cpu_load_i(a->dtype, pa + (offs[bi] + m * a->strides[nd - 2] + k * a->strides[nd - 1]) * (int64_t)es);
                    int64_t y = tg_cpu_load_i(b->dtype, pb + (offs[batch + bi] + k * b->strides[nd - 2] + n * b->strides[nd - 1]) * (int64_t)es);
                    acc = tg_sat_add(acc, tg_sat_mul(x, y));
                }
                tg_cpu_store_i(out->dtype, pc + (offs[2 * batch + bi] + m * out->strides[nd - 2] + n * out->strides[nd - 1]) * (int64_t)es, acc);
            }
}

tg_status tg_cpu_matmul(tg_tensor *out, const tg_tensor *a, const tg_tensor *b) {
    int nd = out->ndim, nb = nd - 2;
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    int64_t batch = tg_shape_numel(nb, out->shape);
    int64_t one_off[3] = { 0, 0, 0 }, *offs = one_off;
    if (batch > 1) { /* the per-item offsets live in the device's scratch memory: no malloc per call */
        void *scratch;
        tg_status st = tg_scratch(out->storage->dev, (size_t)batch * 3 * sizeof *offs, &scratch);
        if (st != TG_OK) return st;
        offs = scratch;
        int64_t idx[TG_MAX_DIMS] = { 0 };
        for (int64_t i = 0; i < batch; i++) {
            int64_t oa = 0, ob = 0, oc = 0;
            for (int d = 0; d < nb; d++) {
                oa += idx[d] * a->strides[d];
                ob += idx[d] * b->strides[d];
                oc += idx[d] * out->strides[d];
            }
            offs[i] = oa, offs[batch + i] = ob, offs[2 * batch + i] = oc;
            for (int d = nb - 1; d >= 0 && ++idx[d] == out->shape[d]; d--) idx[d] = 0;
        }
    }
    const int64_t *sa = a->strides + nb, *sb = b->strides + nb, *sc = out->strides + nb;
    /* a weight's packed panels are kept while its storage's version stays the same */
    tg_gemm_b_key key = { b->storage->weight ? b->storage->id : 0, atomic_load(&b->storage->version) };
    if (tg_cpu_is_int(out->dtype))
        matmul_int(out, a, b, batch, offs, M, N, K);
    else if (batch == 1 && out->dtype == TG_F32 &&
             tg_cpu_gemv_f32(M, N, K, (const float *)tg_cpu_ptr(a), sa[0], sa[1], (const float *)tg_cpu_ptr(b), sb[0],
                             sb[1], (float *)tg_cpu_ptr(out), sc[0], sc[1]))
        ;
    else if (batch == 1 && key.storage_id && out->dtype == TG_F32)
        tg_cpu_gemm_keyed_f32(M, N, K, (const float *)tg_cpu_ptr(a), sa[0], sa[1], (const float *)tg_cpu_ptr(b), sb[0],
                              sb[1], 0.0f, (float *)tg_cpu_ptr(out), sc[0], sc[1], &key);
    else if (batch == 1 && key.storage_id)
        tg_cpu_gemm_keyed_f64(M, N, K, (const double *)tg_cpu_ptr(a), sa[0], sa[1], (const double *)tg_cpu_ptr(b),
                              sb[0], sb[1], 0.0, (double *)tg_cpu_ptr(out), sc[0], sc[1], &key);
    else if (out->dtype == TG_F32)
        tg_cpu_gemm_batched_f32(batch, M, N, K, (const float *)tg_cpu_ptr(a), offs, sa[0], sa[1],
                                (const float *)tg_cpu_ptr(b), offs + batch, sb[0], sb[1], 0.0f,
                                (float *)tg_cpu_ptr(out), offs + 2 * batch, sc[0], sc[1]);
    else
        tg_cpu_gemm_batched_f64(batch, M, N, K, (const double *)tg_cpu_ptr(a), offs, sa[0], sa[1],
                                (const double *)tg_cpu_ptr(b), offs + batch, sb[0], sb[1], 0.0,
                                (double *)tg_cpu_ptr(out), offs + 2 * batch, sc[0], sc[1]);
    return TG_OK;
}

/* ------------------------------------------------------------- gather / scatter-add */

/* Both walk idx's positions with the strided iterator over three operands: idx, the
 * tensor addressed at the same position (`fixed`), and the indexed tensor (`moved`)
 * with stride 0 on axis; the index value then moves along axis. An index is i32 or
 * i64; one outside [0, size) is an error (PyTorch's rule: a negative index does not
 * count from the end here). */
typedef struct {
    int64_t limit, axis_stride; /* moved's axis length, and its stride in bytes */
    tg_dtype idx_dtype, dtype;  /* of idx, and of fixed and moved */
    size_t es;
    bool scatter;
    atomic_flag found;          /* set by the first thread that meets a bad index */
    int64_t bad;                /* that index: written once, by that thread */
} index_ctx;

/* moved += fixed, by dtype; integers saturate. */
static inline void add_into(tg_dtype d, char *moved, const char *fixed) {
    switch (d) {
    case TG_F32: *(float *)moved += *(const float *)fixed; break;
    case TG_F64: *(double *)moved += *(const double *)fixed; break;
    default: tg_cpu_store_i(d, moved, tg_sat_add(tg_cpu_load_i(d, moved), tg_cpu_load_i(d, fixed))); break;
    }
}

static void index_row(void *vc, int64_t n, char **p, const int64_t *st) {
    index_ctx *c = vc;
    for (int64_t i = 0; i < n; i++) {
        const char *ip = p[0] + i * st[0];
        int64_t v = c->idx_dtype == TG_I64 ? *(const int64_t *)ip : *(const int32_t *)ip;
        if (v < 0 || v >= c->limit) {
            if (!atomic_flag_test_and_set(&c->found)) c->bad = v;
            return;
        }
        char *fixed = p[1] + i * st[1], *moved = p[2] + i * st[2] + v * c->axis_stride;
        if (!c->scatter) memcpy(fixed, moved, c->es);
        else add_into(c->dtype, moved, fixed);
    }
}

static bool walk(const tg_tensor *idx, const tg_tensor *fixed, const tg_tensor *moved, int axis, bool scatter,
                 int64_t *bad) {
    size_t es = tg_elsize(moved->dtype);
    int64_t mst[TG_MAX_DIMS];
    memcpy(mst, moved->strides, sizeof mst);
    mst[axis] = 0;
    tg_cpu_iter it;
    tg_cpu_iter_init(&it, idx->ndim, idx->shape, 3,
                     (char *[]){ tg_cpu_ptr(idx), tg_cpu_ptr(fixed), tg_cpu_ptr(moved) },
                     (const int64_t *[]){ idx->strides, fixed->strides, mst },
                     (size_t[]){ tg_elsize(idx->dtype), es, es });
    index_ctx c = { moved->shape[axis], moved->strides[axis] * (int64_t)es, idx->dtype, moved->dtype, es, scatter,
                    ATOMIC_FLAG_INIT, 0 };
    /* Gather writes distinct outputs and may split; scatter-add may hit one target twice. */
    tg_cpu_iter_run(&it, !scatter, TG_GRAIN_ELEMENTWISE, index_row, &c);
    bool found = atomic_flag_test_and_set(&c.found);
    *bad = c.bad;
    return !found;
}

static tg_status check_index_dtype(const char *name, const tg_tensor *idx) {
    if (idx->dtype == TG_I32 || idx->dtype == TG_I64) return TG_OK;
    return tg_error(TG_ERR_DTYPE, "%s: index must be i32 or i64, got %s", name, tg_dtype_name(idx->dtype));
}

tg_status tg_cpu_gather(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx) {
    int64_t bad;
    if (check_index_dtype("tg_gather", idx) != TG_OK) return tg_last_status();
    if (!walk(idx, out, x, axis, false, &bad))
        return tg_error(TG_ERR_INVALID, "tg_gather: index %lld is out of range for axis %d of size %lld",
                        (long long)bad, axis, (long long)x->shape[axis]);
    return TG_OK;
}

tg_status tg_cpu_scatter_add(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src) {
    int64_t bad;
    if (check_index_dtype("tg_scatter_add", idx) != TG_OK) return tg_last_status();
    if (!walk(idx, src, out, axis, true, &bad))
        return tg_error(TG_ERR_INVALID, "tg_scatter_add: index %lld is out of range for axis %d of size %lld",
                        (long long)bad, axis, (long long)out->shape[axis]);
    return TG_OK;
}

/* ------------------------------------------------------------- random */

/* The bit-to-number mappings; the OpenCL kernels use the same formulas. */
static double uniform_of(const uint32_t r[4], tg_dtype d) {
    if (d == TG_F64) return ((double)(r[0] >> 5) * 67108864.0 + (double)(r[1] >> 6)) * 0x1p-53;
    return (double)(r[0] >> 8) * 0x1p-24;
}

static double normal_of(const uint32_t r[4]) {
    double u1 = ((double)(r[2] >> 8) + 1.0) * 0x1p-24; /* (0, 1]: log is finite */
    double u2 = (double)(r[3] >> 8) * 0x1p-24;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    tg_rng_kind kind;
    const tg_tensor *out;
    uint64_t seed, counter;
    double p0, p1;
} rng_ctx;

/* Elements [begin, end) in row-major order, through out's strides. */
static void rng_range(void *vc, int64_t begin, int64_t end) {
    const rng_ctx *c = vc;
    const tg_tensor *t = c->out;
    int nd = t->ndim;
    int64_t idx[TG_MAX_DIMS], off = 0, pos = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = pos % t->shape[d];
        pos /= t->shape[d];
        off += idx[d] * t->strides[d];
    }
    char *base = tg_cpu_ptr(t);
    size_t es = tg_elsize(t->dtype);
    for (int64_t i = begin; i < end; i++) {
        uint32_t r[4];
        tg_philox4x32(c->counter + (uint64_t)i, c->seed, r);
        double v = c->kind == TG_RNG_NORMAL ? c->p0 + c->p1 * normal_of(r)
                 : c->kind == TG_RNG_UNIFORM ? c->p0 + (c->p1 - c->p0) * uniform_of(r, t->dtype)
                 : (uniform_of(r, TG_F32) < c->p0 ? 1.0 : 0.0);
        char *p = base + off * (int64_t)es;
        if (t->dtype == TG_F32) *(float *)p = (float)v;
        else tg_cpu_store_d(t->dtype, p, v);
        for (int d = nd - 1; d >= 0; d--) { /* the next position */
            off += t->strides[d];
            if (++idx[d] < t->shape[d]) break;
            off -= idx[d] * t->strides[d];
            idx[d] = 0;
        }
    }
}

/* Any strides: element i in row-major order draws counter + i, so the numbers do not
 * depend on the layout or on the thread count. */
tg_status tg_cpu_random(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter,
                        double p0, double p1) {
    int64_t n = tg_shape_numel(out->ndim, out->shape);
    rng_ctx c = { kind, out, seed, counter, p0, p1 };
    tg_pool_parallel_for(n, TG_GRAIN_ELEMENTWISE / 16, rng_range, &c);
    return TG_OK;
}
