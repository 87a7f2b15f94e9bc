/* CPU batch, layer and group norm, forward and backward. The references below are the
 * formulas written out (one thread, two passes, every sum in double) and are the oracle;
 * the fast kernels (norm_tmpl.h, once for f32 and once for f64) run on the thread pool
 * at memory bandwidth: one-pass shifted sums (short runs in T added in double) for the
 * statistics, then one pass that normalises (forward) or forms dx (backward), right
 * after its channel's sums where the channel fits in L2. Work splits on fixed
 * boundaries (channels or blocks of their planes, rows, groups, or 16 row blocks whose
 * partial sums add in order), never on the thread count, so results do not depend on
 * it. */
#include <math.h>
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/clones.h"
#include "lib/cpu/norm.h"
#include "lib/cpu/scalar.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* Element i of a per-channel tensor: 1-D with any stride, or dense. */
static inline int64_t vec_stride(const tg_tensor *t) { return t->ndim == 1 ? t->strides[0] : 1; }
static inline double vget(const tg_tensor *t, int64_t i, double dflt) {
    if (!t) return dflt;
    return tg_cpu_load_d(t->dtype, tg_cpu_ptr(t) + i * vec_stride(t) * (int64_t)tg_elsize(t->dtype));
}
static inline void vset(tg_tensor *t, int64_t i, double v) {
    if (t) tg_cpu_store_d(t->dtype, tg_cpu_ptr(t) + i * vec_stride(t) * (int64_t)tg_elsize(t->dtype), v);
}
/* Element i of a dense tensor. */
static inline double dget(const tg_tensor *t, int64_t i) {
    return tg_cpu_load_d(t->dtype, tg_cpu_ptr(t) + i * (int64_t)tg_elsize(t->dtype));
}
static inline void dset(tg_tensor *t, int64_t i, double v) {
    tg_cpu_store_d(t->dtype, tg_cpu_ptr(t) + i * (int64_t)tg_elsize(t->dtype), v);
}

/* ------------------------------------------------------------------ references */

/* Mean and biased variance of the elements at base + (n*C + c)*S + s for c in [c0, c1). */
static void ref_stats(const tg_tensor *x, const tg_norm_params *p, int64_t n0, int64_t n1, int64_t c0, int64_t c1,
                      double *mean, double *var) {
    double s = 0, q = 0, cnt = (double)((n1 - n0) * (c1 - c0) * p->S);
    for (int64_t n = n0; n < n1; n++)
        for (int64_t c = c0; c < c1; c++)
            for (int64_t i = 0; i < p->S; i++) s += dget(x, (n * p->C + c) * p->S + i);
    *mean = s / cnt;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t c = c0; c < c1; c++)
            for (int64_t i = 0; i < p->S; i++) {
                double d = dget(x, (n * p->C + c) * p->S + i) - *mean;
                q += d * d;
            }
    *var = q / cnt;
}

TG_CPU_NORM_DECL(tg_cpu_batch_norm_ref) {
    double M = (double)(p->N * p->S);
    for (int64_t c = 0; c < p->C; c++) {
        double mean, var;
        if (p->training) {
            ref_stats(x, p, 0, p->N, c, c + 1, &mean, &var);
            if (running_mean) vset(running_mean, c, (1 - p->momentum) * vget(running_mean, c, 0) + p->momentum * mean);
            if (running_var)
                vset(running_var, c, (1 - p->momentum) * vget(running_var, c, 0) + p->momentum * var * M / (M - 1));
        } else {
            mean = vget(running_mean, c, 0);
            var = vget(running_var, c, 1);
        }
        double invstd = 1 / sqrt(var + p->eps), w = vget(weight, c, 1), b = vget(bias, c, 0);
        vset(save_mean, c, mean);
        vset(save_invstd, c, invstd);
        for (int64_t n = 0; n < p->N; n++)
            for (int64_t i = 0; i < p->S; i++) {
                int64_t k = (n * p->C + c) * p->S + i;
                dset(out, k, (dget(x, k) - mean) * invstd * w + b);
            }
    }
    return TG_OK;
}

TG_CPU_NORM_DECL(tg_cpu_batch_norm_relu_ref) {
    tg_norm_params q = *p;
    q.relu = true;
    return tg_cpu_batch_norm_add_ref(out, save_mean, save_invstd, running_mean, running_var, x, NULL, weight, bias, &q);
}

TG_CPU_NORM_ADD_DECL(tg_cpu_batch_norm_add_ref) {
    tg_status st = tg_cpu_batch_norm_ref(out, save_mean, save_invstd, running_mean, running_var, x, weight, bias, p);
    int64_t n = p->N * p->C * p->S;
    for (int64_t k = 0; st == TG_OK && k < n; k++) {
        double v = dget(out, k) + (residual ? dget(residual, k) : 0.0);
        dset(out, k, p->relu && v < 0 ? 0.0 : v);
    }
    return st;
}

/* dout at k, or 0 where relu_out (if given) is not > 0 */
static double ref_g(const tg_tensor *dout, const tg_tensor *relu_out, int64_t k) {
    return relu_out && !(dget(relu_out, k) > 0) ? 0.0 : dget(dout, k);
}

TG_CPU_NORM_BW_DECL(tg_cpu_batch_norm_backward_ref) {
    return tg_cpu_batch_norm_relu_backward_ref(dx, dweight, dbias, dout, NULL, x, weight, save_mean, save_invstd, p);
}

TG_CPU_NORM_RELU_BW_DECL(tg_cpu_batch_norm_relu_backward_ref) {
    double M = (double)(p->N * p->S);
    for (int64_t c = 0; c < p->C; c++) {
        double mean = vget(save_mean, c, 0), invstd = vget(save_invstd, c, 1), w = vget(weight, c, 1);
        double sg = 0, sgx = 0;
        for (int64_t n = 0; n < p->N; n++)
            for (int64_t i = 0; i < p->S; i++) {
                int64_t k = (n * p->C + c) * p->S + i;
                sg += ref_g(dout, relu_out, k);
                sgx += ref_g(dout, relu_out, k) * (dget(x, k) - mean);
            }
        vset(dbias, c, sg);
        vset(dweight, c, sgx * invstd);
        for (int64_t n = 0; dx && n < p->N; n++)
            for (int64_t i = 0; i < p->S; i++) {
                int64_t k = (n * p->C + c) * p->S + i;
                double g = ref_g(dout, relu_out, k), xhat = (dget(x, k) - mean) * invstd;
                dset(dx, k, p->training ? w * invstd * (g - sg / M - xhat * sgx * invstd / M) : w * invstd * g);
            }
    }
    return TG_OK;
}

/* Group norm; layer norm is the same loop with one group per row (S = 1, so the
 * per-channel affine is its per-element one). */
static void ref_group_fwd(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                          const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p) {
    int64_t G = p->groups, Cg = p->C / G;
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t g = 0; g < G; g++) {
            double mean, var;
            ref_stats(x, p, n, n + 1, g * Cg, (g + 1) * Cg, &mean, &var);
            double invstd = 1 / sqrt(var + p->eps);
            vset(save_mean, n * G + g, mean);
            vset(save_invstd, n * G + g, invstd);
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++)
                for (int64_t i = 0; i < p->S; i++) {
                    int64_t k = (n * p->C + c) * p->S + i, a = c;
                    dset(out, k, (dget(x, k) - mean) * invstd * vget(weight, a, 1) + vget(bias, a, 0));
                }
        }
}

static void ref_group_bw(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                         const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                         const tg_tensor *save_invstd, const tg_norm_params *p) {
    int64_t G = p->groups, Cg = p->C / G;
    double M = (double)(Cg * p->S);
    for (int64_t a = 0; a < p->C; a++) {
        vset(dweight, a, 0);
        vset(dbias, a, 0);
    }
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t g = 0; g < G; g++) {
            double mean = vget(save_mean, n * G + g, 0), invstd = vget(save_invstd, n * G + g, 1), sgw = 0, sgwx = 0;
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++)
                for (int64_t i = 0; i < p->S; i++) {
                    int64_t k = (n * p->C + c) * p->S + i, a = c;
                    double gr = dget(dout, k), xhat = (dget(x, k) - mean) * invstd, gw = gr * vget(weight, a, 1);
                    sgw += gw;
                    sgwx += gw * xhat;
                    if (dweight) vset(dweight, a, vget(dweight, a, 0) + gr * xhat);
                    if (dbias) vset(dbias, a, vget(dbias, a, 0) + gr);
                }
            for (int64_t c = g * Cg; dx && c < (g + 1) * Cg; c++)
                for (int64_t i = 0; i < p->S; i++) {
                    int64_t k = (n * p->C + c) * p->S + i, a = c;
                    double xhat = (dget(x, k) - mean) * invstd, gw = dget(dout, k) * vget(weight, a, 1);
                    dset(dx, k, invstd * (gw - sgw / M - xhat * sgwx / M));
                }
        }
}

/* Layer norm as one group of C elements per row. */
static tg_norm_params ln_as_group(const tg_norm_params *p) {
    tg_norm_params q = *p;
    q.groups = 1;
    q.S = 1;
    return q;
}

TG_CPU_NORM_AFFINE_DECL(tg_cpu_layer_norm_ref) {
    tg_norm_params q = ln_as_group(p);
    ref_group_fwd(out, save_mean, save_invstd, x, weight, bias, &q);
    return TG_OK;
}

TG_CPU_NORM_BW_DECL(tg_cpu_layer_norm_backward_ref) {
    tg_norm_params q = ln_as_group(p);
    ref_group_bw(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, &q);
    return TG_OK;
}

TG_CPU_NORM_AFFINE_DECL(tg_cpu_group_norm_ref) {
    ref_group_fwd(out, save_mean, save_invstd, x, weight, bias, p);
    return TG_OK;
}

TG_CPU_NORM_BW_DECL(tg_cpu_group_norm_backward_ref) {
    ref_group_bw(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p);
    return TG_OK;
}

/* ------------------------------------------------------------------ fast kernels */

#define NORM_GRAIN TG_GRAIN_ELEMENTWISE /* elements worth a thread */
#define NORM_BLOCKS 16                  /* row blocks of the partial sums (fixed: results never depend on threads) */
#define NORM_UNITS 16                   /* batch norm: channels split into blocks of planes up to this many units */
#define ROW_MODE_S 16                   /* batch norm with fewer elements per plane works row by row */
#define NORM_RUN 8                      /* vectors a lane sums in T before adding into double */
/* A channel that fits (x, and dout in backward) is normalised right after its sums,
 * while it is in L2 (Zen 4: 1 MB a core; Sapphire Rapids 2 MB): half, for the writes. */
#define NORM_L2_BYTES (512.0 * 1024)

/* Runs fn over units [0, units), each about `work` elements, telling the pool the work
 * in elements: its grain and its rule for waking sleeping workers then weigh a norm as
 * they weigh an elementwise op of that size (with whole channels as units, 16 of them
 * looked like too little work to wake a worker for, and a 4 MB batch norm ran on one
 * thread). fn sees unit ranges: unit u goes to the chunk holding element u * work. */
typedef struct {
    tg_pool_fn fn;
    void *ctx;
    int64_t work;
} norm_job;

static void norm_job_task(void *vc, int64_t b, int64_t e) {
    const norm_job *j = vc;
    int64_t u0 = (b + j->work - 1) / j->work, u1 = (e + j->work - 1) / j->work;
    if (u0 < u1) j->fn(j->ctx, u0, u1);
}

static void norm_parallel(int64_t units, int64_t work, tg_pool_fn fn, void *ctx) {
    norm_job j = { fn, ctx, work > 0 ? work : 1 };
    tg_pool_parallel_for(units * j.work, NORM_GRAIN, norm_job_task, &j);
}

/* Scratch for a kernel: doubles, from the device's per-thread buffer. */
static tg_status scratch_d(const tg_tensor *t, int64_t n, double **out) {
    void *p;
    tg_status st = tg_scratch(t->storage->dev, (size_t)(n > 0 ? n : 1) * sizeof(double), &p);
    *out = p;
    return st;
}

/* The passes over memory (TG_CPU_CLONES) have clones for AVX-512 and AVX2 (lib/cpu/clones.h). */

/* Eight double lanes: where every sum of the fast kernels collects; 16 float lanes, and
 * their halves. */
typedef double tg_v8d __attribute__((vector_size(64)));
typedef float tg_v16f __attribute__((vector_size(64)));
typedef float tg_v8f __attribute__((vector_size(32)));

/* lo, hi = the lanes of v in double (f32: its two halves; f64: v and zero). */
TG_CPU_INLINE void widen_f32(const tg_v16f *v, tg_v8d *lo, tg_v8d *hi) {
    tg_v8f a, b;
    memcpy(&a, v, sizeof a);
    memcpy(&b, (const char *)v + sizeof a, sizeof b);
    *lo = __builtin_convertvector(a, tg_v8d);
    *hi = __builtin_convertvector(b, tg_v8d);
}
TG_CPU_INLINE void widen_f64(const tg_v8d *v, tg_v8d *lo, tg_v8d *hi) {
    *lo = *v;
    *hi = (tg_v8d){ 0 };
}

/* Batch norm's coefficients per channel c, after the sums: forward
 * y = ((x - m) - l) * s + t, the mean split in two T's (m + l) so that x - m stays exact
 * for large means; backward dx = s * g - t * (x - m) + u. */
enum { BN_M, BN_L, BN_S, BN_T, BN_U, BN_NCOEF };

#define T float
#define TI int32_t
#define SFX(name) name##_f32
#include "lib/cpu/norm_tmpl.h"
#undef T
#undef TI
#undef SFX
#define T double
#define TI int64_t
#define SFX(name) name##_f64
#include "lib/cpu/norm_tmpl.h"
#undef T
#undef TI
#undef SFX

#define DISPATCH(fn, ...) (x->dtype == TG_F32 ? fn##_f32(__VA_ARGS__) : fn##_f64(__VA_ARGS__))

TG_CPU_NORM_DECL(tg_cpu_batch_norm) {
    return DISPATCH(bn_fwd, out, save_mean, save_invstd, running_mean, running_var, x, NULL, weight, bias, p);
}
/* The residual (and the relu, where p->relu) in the normalising pass: a ResNet block's
 * add and relu cost no pass of their own. */
TG_CPU_NORM_ADD_DECL(tg_cpu_batch_norm_add) {
    return DISPATCH(bn_fwd, out, save_mean, save_invstd, running_mean, running_var, x, residual, weight, bias, p);
}
TG_CPU_NORM_BW_DECL(tg_cpu_batch_norm_backward) {
    return DISPATCH(bn_bwd, dx, dweight, dbias, dout, NULL, x, weight, save_mean, save_invstd, p);
}
TG_CPU_NORM_RELU_BW_DECL(tg_cpu_batch_norm_relu_backward) {
    return DISPATCH(bn_bwd, dx, dweight, dbias, dout, relu_out, x, weight, save_mean, save_invstd, p);
}
TG_CPU_NORM_AFFINE_DECL(tg_cpu_layer_norm) { return DISPATCH(ln_fwd, out, save_mean, save_invstd, x, weight, bias, p); }
TG_CPU_NORM_BW_DECL(tg_cpu_layer_norm_backward) {
    return DISPATCH(ln_bwd, dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p);
}
TG_CPU_NORM_AFFINE_DECL(tg_cpu_group_norm) { return DISPATCH(gn_fwd, out, save_mean, save_invstd, x, weight, bias, p); }
TG_CPU_NORM_BW_DECL(tg_cpu_group_norm_backward) {
    return DISPATCH(gn_bwd, dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p);
}

/* relu(batch_norm(x)) in the normalising pass (p->relu set by the op layer): the
 * activation costs no pass of its own. */
TG_CPU_NORM_DECL(tg_cpu_batch_norm_relu) {
    tg_norm_params q = *p;
    q.relu = true;
    return DISPATCH(bn_fwd, out, save_mean, save_invstd, running_mean, running_var, x, NULL, weight, bias, &q);
}
