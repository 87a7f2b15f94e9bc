/* CPU kernels that address memory by computed indices: matmul (batches over GEMM),
 * gather, scatter-add and random fills. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* ------------------------------------------------------------- matmul */

tg_status tg_cpu_matmul(tg_tensor *out, const tg_tensor *a, const tg_tensor *b) {
    int nd = out->ndim, nb = nd - 2;
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    int64_t batch = tg_shape_numel(nb, out->shape);
    int64_t one_off[3] = { 0, 0, 0 }, *offs = one_off;
    if (batch > 1) {
        offs = malloc((size_t)batch * 3 * sizeof *offs);
        if (!offs) return tg_error(TG_ERR_NOMEM, "tg_matmul: out of host memory");
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
    if (out->dtype == TG_F32)
        tg_cpu_gemm_batched_f32(batch, M, N, K, (const float *)tg_cpu_ptr(a), offs, sa[0], sa[1],
                                (const float *)tg_cpu_ptr(b), offs + batch, sb[0], sb[1], 0.0f,
                                (float *)tg_cpu_ptr(out), offs + 2 * batch, sc[0], sc[1]);
    else
        tg_cpu_gemm_batched_f64(batch, M, N, K, (const double *)tg_cpu_ptr(a), offs, sa[0], sa[1],
                                (const double *)tg_cpu_ptr(b), offs + batch, sb[0], sb[1], 0.0,
                                (double *)tg_cpu_ptr(out), offs + 2 * batch, sc[0], sc[1]);
    if (offs != one_off) free(offs);
    return TG_OK;
}

/* ------------------------------------------------------------- gather / scatter-add */

/* Both walk idx's positions with the strided iterator over three operands: idx, the
 * tensor addressed at the same position (`fixed`), and the indexed tensor (`moved`)
 * with stride 0 on axis; the index value then moves along axis. */
typedef struct {
    int64_t limit, axis_stride; /* moved's axis length, and its stride in bytes */
    size_t es;
    bool scatter;
    _Atomic int64_t bad;        /* an out-of-range index value, or INT64_MIN (set by any thread) */
} index_ctx;

static void index_row(void *vc, int64_t n, char **p, const int64_t *st) {
    index_ctx *c = vc;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = *(const int32_t *)(p[0] + i * st[0]);
        if (v < 0) v += c->limit;
        if (v < 0 || v >= c->limit) {
            int64_t none = INT64_MIN;
            atomic_compare_exchange_strong(&c->bad, &none, *(const int32_t *)(p[0] + i * st[0]));
            return;
        }
        char *fixed = p[1] + i * st[1], *moved = p[2] + i * st[2] + v * c->axis_stride;
        if (!c->scatter) memcpy(fixed, moved, c->es);
        else if (c->es == 8) *(double *)moved += *(const double *)fixed;
        else *(float *)moved += *(const float *)fixed;
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
                     (const int64_t *[]){ idx->strides, fixed->strides, mst }, (size_t[]){ 4, es, es });
    index_ctx c = { moved->shape[axis], moved->strides[axis] * (int64_t)es, es, scatter, INT64_MIN };
    /* Gather writes distinct outputs and may split; scatter-add may hit one target twice. */
    tg_cpu_iter_run(&it, !scatter, TG_GRAIN_ELEMENTWISE, index_row, &c);
    *bad = c.bad;
    return c.bad == INT64_MIN;
}

tg_status tg_cpu_gather(tg_tensor *out, const tg_tensor *x, int axis, const tg_tensor *idx) {
    int64_t bad;
    if (!walk(idx, out, x, axis, false, &bad))
        return tg_error(TG_ERR_INVALID, "tg_gather: index %lld is out of range for axis %d of size %lld",
                        (long long)bad, axis, (long long)x->shape[axis]);
    return TG_OK;
}

tg_status tg_cpu_scatter_add(tg_tensor *out, int axis, const tg_tensor *idx, const tg_tensor *src) {
    int64_t bad;
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

tg_status tg_cpu_random(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter,
                        double p0, double p1) {
    int64_t n = tg_shape_numel(out->ndim, out->shape);
    char *p = tg_cpu_ptr(out);
    TG_ASSERT(tg_tensor_is_dense(out));
    for (int64_t i = 0; i < n; i++) {
        uint32_t r[4];
        tg_philox4x32(counter + (uint64_t)i, seed, r);
        double v = kind == TG_RNG_NORMAL ? p0 + p1 * normal_of(r)
                 : kind == TG_RNG_UNIFORM ? p0 + (p1 - p0) * uniform_of(r, out->dtype)
                 : (uniform_of(r, TG_F32) < p0 ? 1.0 : 0.0);
        if (out->dtype == TG_F32) ((float *)p)[i] = (float)v;
        else if (out->dtype == TG_F64) ((double *)p)[i] = v;
        else if (out->dtype == TG_I32) ((int32_t *)p)[i] = (int32_t)v;
        else ((uint8_t *)p)[i] = (uint8_t)v;
    }
    return TG_OK;
}
