/* Batch, layer and group norm and local response norm: forward values and running
 * statistics against f64 loops written here (training and eval, with and without
 * affine parameters and running statistics, momentum 0, the cumulative average), the
 * CPU fast kernels against their references (row and channel modes, f32 and f64, 1 and
 * 2 threads bitwise, inputs of mean 1e4 against the f64 references), gradcheck in f64 for every op, gradgradcheck for batch norm (training and
 * eval), layer and group norm, the fused backward against the composed one, version
 * bumps of the running statistics, every error message, and, where python3 has torch,
 * agreement with torch.nn.functional. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lib/cpu/norm.h"
#include "lib/cpu/threadpool.h"

static tg_device *dev(void) { return tg_test_device(); }

static char g_what[160];
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

#define CHECK_GRAD_(checker, fn, ctx, ...)                                                                  \
    do {                                                                                                    \
        tg_tensor *in_[] = { __VA_ARGS__ };                                                                 \
        tg_gradcheck_report rep_;                                                                           \
        tg_status st_ = checker(fn, ctx, (int)(sizeof in_ / sizeof in_[0]), in_, NULL, &rep_);              \
        if (st_ != TG_OK)                                                                                   \
            FAIL_("[%s] %s(%s) failed: %s (%s)", g_what, #checker, #fn, rep_.message, tg_last_error());    \
    } while (0)
#define GRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradcheck, fn, ctx, __VA_ARGS__)
#define GRADGRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradgradcheck, fn, ctx, __VA_ARGS__)

/* Compares n values with a tolerance tol * (1 + |expected|); reports the first miss. */
#define CHECK_VALUES(got, want, n, tol)                                                                     \
    do {                                                                                                    \
        const double *g_ = (got), *w_ = (want);                                                             \
        int64_t n_ = (n), bad_ = -1;                                                                        \
        if (!g_) FAIL_("[%s] no values (%s)", g_what, tg_last_error());                                    \
        for (int64_t i_ = 0; g_ && i_ < n_ && bad_ < 0; i_++)                                               \
            if (!(fabs(g_[i_] - w_[i_]) <= (tol) * (1 + fabs(w_[i_])))) bad_ = i_;                          \
        if (bad_ >= 0)                                                                                      \
            FAIL_("[%s] %s[%lld] = %.12g, expected %.12g", g_what, #got, (long long)bad_, g_[bad_], w_[bad_]); \
    } while (0)

static uint64_t g_rng = 0x243F6A8885A308D3u;
static double rnd(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 - 1.0;
}

/* n values a + s * U[-1, 1) (caller frees). */
static double *rnd_vals(int64_t n, double a, double s) {
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = a + s * rnd();
    return v;
}

static tg_tensor *tensor_of(const double *v, tg_shape s, tg_dtype dt, tg_device *d) {
    return tg_cast(tg_from_f64(v, s, d), dt);
}

/* ================================================================== f64 loops */

/* Batch norm of x (N, C, S) as PyTorch documents it; running stats updated when given. */
static void bn_loops(const double *x, int64_t N, int64_t C, int64_t S, const double *w, const double *b, double *rm,
                     double *rv, bool training, double momentum, double eps, double *y) {
    for (int64_t c = 0; c < C; c++) {
        double mean = 0, var = 0, M = (double)(N * S);
        if (training) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t s = 0; s < S; s++) mean += x[(n * C + c) * S + s];
            mean /= M;
            for (int64_t n = 0; n < N; n++)
                for (int64_t s = 0; s < S; s++) var += pow(x[(n * C + c) * S + s] - mean, 2);
            if (rm) rm[c] = (1 - momentum) * rm[c] + momentum * mean;
            if (rv) rv[c] = (1 - momentum) * rv[c] + momentum * var / (M - 1);
            var /= M;
        } else {
            mean = rm[c];
            var = rv[c];
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t k = (n * C + c) * S + s;
                y[k] = (x[k] - mean) / sqrt(var + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
            }
    }
}

/* Group norm of x (N, C, S) with G groups; layer norm is G = 1, S = 1 with weight per C. */
static void gn_loops(const double *x, int64_t N, int64_t C, int64_t S, int64_t G, const double *w, const double *b,
                     double eps, double *y) {
    int64_t Cg = C / G, len = Cg * S;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const double *xg = x + (n * C + g * Cg) * S;
            double mean = 0, var = 0;
            for (int64_t i = 0; i < len; i++) mean += xg[i];
            mean /= (double)len;
            for (int64_t i = 0; i < len; i++) var += pow(xg[i] - mean, 2);
            var /= (double)len;
            for (int64_t i = 0; i < len; i++) {
                int64_t c = g * Cg + i / S;
                y[(n * C + g * Cg) * S + i] = (xg[i] - mean) / sqrt(var + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
            }
        }
}

/* LRN of x (N, C, S): PyTorch's formula with the zero-padded window over channels. */
static void lrn_loops(const double *x, int64_t N, int64_t C, int64_t S, int64_t size, double alpha, double beta,
                      double k, double *y) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                double sum = 0;
                for (int64_t j = c - size / 2; j <= c + (size - 1) / 2; j++)
                    if (j >= 0 && j < C) sum += pow(x[(n * C + j) * S + s], 2);
                y[(n * C + c) * S + s] = x[(n * C + c) * S + s] / pow(k + alpha / (double)size * sum, beta);
            }
}

/* Skips a batch norm case on a device without the kernel, after checking its message. */
#define BN_DEVICE_OR_SKIP()                                                                                  \
    do {                                                                                                     \
        if (strcmp(tg_device_name(dev()), "cpu") != 0) {                                                     \
            char msg_[160];                                                                                  \
            snprintf(msg_, sizeof msg_, "tg_batch_norm: device %s has no batch_norm kernel for f32 (yet)", tg_device_name(dev())); \
            tg_tensor *t_ = tg_randn(TG_F32, TG_SHAPE(4, 3), dev());                                         \
            tg_clear_error();                                                                                \
            if (!tg_batch_norm(t_, NULL, NULL, NULL, NULL, &(tg_batch_norm_opts){ .training = true })) {     \
                CHECK(strcmp(tg_last_error(), msg_) == 0);                                                   \
                SKIP("%s", msg_);                                                                            \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

/* ================================================================== forward values */

/* batch norm forward in every mode: shapes (N,C), (N,C,L), (N,C,H,W), f64 and f32. */
TEST(batch_norm_forward) {
    BN_DEVICE_OR_SKIP();
    static const int64_t shapes[][4] = { { 5, 3, 0, 0 }, { 4, 3, 7, 0 }, { 3, 4, 5, 6 }, { 2, 2, 1, 1 } };
    for (int si = 0; si < 4; si++)
        for (int mode = 0; mode < 8; mode++) /* bit 0 training, bit 1 affine, bit 2 running stats */
            for (int dt = 0; dt < 2; dt++) {
                bool training = mode & 1, affine = mode & 2, running = mode & 4;
                if (!training && !running) continue; /* eval needs them */
                tg_dtype dtype = dt ? TG_F32 : TG_F64;
                tg_shape sh = { .ndim = shapes[si][2] ? shapes[si][3] ? 4 : 3 : 2 };
                for (int d = 0; d < sh.ndim; d++) sh.dims[d] = shapes[si][d];
                int64_t N = sh.dims[0], C = sh.dims[1], S = sh.ndim > 2 ? sh.dims[2] * (sh.ndim > 3 ? sh.dims[3] : 1) : 1;
                WHAT("shape %d mode %d %s", si, mode, tg_dtype_name(dtype));
                double *x = rnd_vals(N * C * S, 1.5, 2), *w = rnd_vals(C, 1, 0.5), *b = rnd_vals(C, 0, 1);
                double *rm = rnd_vals(C, 0, 1), *rv = rnd_vals(C, 1.5, 0.5), *y = malloc((size_t)(N * C * S) * 8);
                tg_tensor *tx = tensor_of(x, sh, dtype, dev()), *trm = tensor_of(rm, TG_SHAPE(C), dtype, dev());
                tg_tensor *trv = tensor_of(rv, TG_SHAPE(C), dtype, dev());
                tg_batch_norm_opts o = { .training = training, .momentum = TG_SOME(0.3) };
                tg_tensor *ty = tg_batch_norm(tx, running ? trm : NULL, running ? trv : NULL,
                                              affine ? tensor_of(w, TG_SHAPE(C), dtype, dev()) : NULL,
                                              affine ? tensor_of(b, TG_SHAPE(C), dtype, dev()) : NULL, &o);
                bn_loops(x, N, C, S, affine ? w : NULL, affine ? b : NULL, running ? rm : NULL, running ? rv : NULL,
                         training, 0.3, 1e-5, y);
                double tol = dt ? 3e-6 : 1e-12;
                double *gy = ty ? tg_test_values(ty) : NULL, *grm = tg_test_values(trm), *grv = tg_test_values(trv);
                CHECK_VALUES(gy, y, N * C * S, tol);
                CHECK_VALUES(grm, rm, C, tol);
                CHECK_VALUES(grv, rv, C, tol);
                free(gy), free(grm), free(grv), free(x), free(w), free(b), free(rm), free(rv), free(y);
            }
}

/* momentum 0 keeps the running statistics; the cumulative mode averages batches 1/n. */
TEST(batch_norm_momentum) {
    BN_DEVICE_OR_SKIP();
    int64_t N = 6, C = 3;
    double rm[3] = { 0, 0, 0 }, rv[3] = { 1, 1, 1 }, y[18];
    tg_tensor *trm = tg_zeros(TG_F64, TG_SHAPE(C), dev()), *trv = tg_ones(TG_F64, TG_SHAPE(C), dev());
    double *x = rnd_vals(N * C, 2, 1);
    tg_tensor *tx = tg_from_f64(x, TG_SHAPE(N, C), dev());
    WHAT("momentum 0");
    CHECK(tg_batch_norm(tx, trm, trv, NULL, NULL, &(tg_batch_norm_opts){ .training = true, .momentum = TG_SOME(0) }));
    double *g = tg_test_values(trm), *h = tg_test_values(trv);
    CHECK_VALUES(g, rm, C, 0);
    CHECK_VALUES(h, rv, C, 0);
    free(g), free(h);
    /* three batches with the cumulative average: running = the mean of the batch stats */
    double mean_sum[3] = { 0 }, var_sum[3] = { 0 };
    for (int step = 1; step <= 3; step++) {
        WHAT("cumulative step %d", step);
        double *xs = rnd_vals(N * C, step, step);
        tg_tensor *t = tg_from_f64(xs, TG_SHAPE(N, C), dev());
        tg_batch_norm_opts o = { .training = true, .cumulative = true, .num_batches_tracked = step,
                                 .momentum = TG_SOME(0.9) /* ignored */ };
        CHECK(tg_batch_norm(t, trm, trv, NULL, NULL, &o));
        double one[3] = { 0, 0, 0 }, vone[3] = { 0, 0, 0 };
        bn_loops(xs, N, C, 1, NULL, NULL, one, vone, true, 1.0, 1e-5, y); /* momentum 1: the batch's stats */
        for (int c = 0; c < 3; c++) {
            mean_sum[c] += one[c];
            var_sum[c] += vone[c];
        }
        /* PyTorch starts from 0 and 1 and the first batch has factor 1, replacing them */
        double want_m[3], want_v[3];
        for (int c = 0; c < 3; c++) {
            want_m[c] = mean_sum[c] / step;
            want_v[c] = var_sum[c] / step;
        }
        double *gm = tg_test_values(trm), *gv = tg_test_values(trv);
        CHECK_VALUES(gm, want_m, C, 1e-12);
        CHECK_VALUES(gv, want_v, C, 1e-12);
        free(gm), free(gv), free(xs);
    }
    free(x);
}

/* The in-place update bumps the running statistics' version: a backward that saved
 * them reports it. Eval mode leaves them (and their version) alone. */
TEST(batch_norm_version) {
    BN_DEVICE_OR_SKIP();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(4, 3), dev()), *rm = tg_zeros(TG_F64, TG_SHAPE(3), dev());
    tg_tensor *rv = tg_ones(TG_F64, TG_SHAPE(3), dev()), *a = tg_param(tg_randn(TG_F64, TG_SHAPE(3), dev()));
    tg_tensor *z = tg_sum(tg_mul(a, rm), TG_ALL, false);
    CHECK(tg_batch_norm(x, rm, rv, NULL, NULL, NULL)); /* eval */
    tg_tensor *z2 = tg_sum(tg_mul(a, rv), TG_ALL, false);
    CHECK(tg_backward_ex(z2, NULL, &(tg_backward_opts){ .retain_graph = true }) == TG_OK);
    CHECK(tg_batch_norm(x, rm, rv, NULL, NULL, &(tg_batch_norm_opts){ .training = true }));
    CHECK_ERROR(tg_backward(z), "tg_backward: a tensor saved by tg_mul was modified in place (version 1, saved at "
                "0); clone it before updating it");
}

TEST(layer_norm_forward) {
    static const int64_t shapes[][3] = { { 3, 4, 5 }, { 2, 1, 7 }, { 6, 3, 40 } };
    for (int si = 0; si < 3; si++)
        for (int k = 1; k <= 3; k++)
            for (int mode = 0; mode < 4; mode++)
                for (int dt = 0; dt < 2; dt++) {
                    tg_dtype dtype = dt ? TG_F32 : TG_F64;
                    tg_shape sh = TG_SHAPE(shapes[si][0], shapes[si][1], shapes[si][2]), ns = { .ndim = k };
                    int64_t D = 1, n = tg_numel(tg_zeros(TG_F64, sh, dev()));
                    for (int d = 0; d < k; d++) D *= (ns.dims[d] = sh.dims[3 - k + d]);
                    WHAT("shape %d k %d mode %d %s", si, k, mode, tg_dtype_name(dtype));
                    double *x = rnd_vals(n, -1, 3), *w = rnd_vals(D, 1, 0.5), *b = rnd_vals(D, 0, 1), *y = malloc((size_t)n * 8);
                    tg_tensor *tw = mode & 1 ? tensor_of(w, ns, dtype, dev()) : NULL;
                    tg_tensor *tb = mode & 2 ? tensor_of(b, ns, dtype, dev()) : NULL;
                    tg_tensor *ty = tg_layer_norm(tensor_of(x, sh, dtype, dev()), ns, tw, tb, 1e-5);
                    gn_loops(x, n / D, D, 1, 1, mode & 1 ? w : NULL, mode & 2 ? b : NULL, 1e-5, y);
                    double *g = ty ? tg_test_values(ty) : NULL;
                    CHECK_VALUES(g, y, n, dt ? 3e-6 : 1e-12);
                    free(g), free(x), free(w), free(b), free(y);
                }
}

TEST(group_norm_forward) {
    static const int64_t cases[][4] = { { 2, 6, 5, 3 }, { 2, 6, 5, 1 }, { 3, 6, 1, 6 }, { 2, 8, 20, 4 } };
    for (int ci = 0; ci < 4; ci++)
        for (int mode = 0; mode < 2; mode++)
            for (int dt = 0; dt < 2; dt++) {
                int64_t N = cases[ci][0], C = cases[ci][1], S = cases[ci][2], G = cases[ci][3];
                tg_dtype dtype = dt ? TG_F32 : TG_F64;
                WHAT("case %d mode %d %s", ci, mode, tg_dtype_name(dtype));
                double *x = rnd_vals(N * C * S, 2, 2), *w = rnd_vals(C, 1, 0.5), *b = rnd_vals(C, 0, 1);
                double *y = malloc((size_t)(N * C * S) * 8);
                tg_shape sh = S > 1 ? TG_SHAPE(N, C, S) : TG_SHAPE(N, C);
                tg_tensor *ty = tg_group_norm(tensor_of(x, sh, dtype, dev()), G, mode ? tensor_of(w, TG_SHAPE(C), dtype, dev()) : NULL,
                                              mode ? tensor_of(b, TG_SHAPE(C), dtype, dev()) : NULL, 1e-5);
                gn_loops(x, N, C, S, G, mode ? w : NULL, mode ? b : NULL, 1e-5, y);
                double *g = ty ? tg_test_values(ty) : NULL;
                CHECK_VALUES(g, y, N * C * S, dt ? 3e-6 : 1e-12);
                free(g), free(x), free(w), free(b), free(y);
            }
}

TEST(local_response_norm_forward) {
    static const int64_t cases[][5] = { { 2, 7, 3, 2, 3 }, { 2, 7, 3, 2, 4 }, { 2, 5, 4, 0, 5 }, { 1, 3, 2, 2, 9 },
                                        { 1, 6, 1, 1, 1 } };
    for (int ci = 0; ci < 5; ci++) {
        int64_t N = cases[ci][0], C = cases[ci][1], S = cases[ci][2] * (cases[ci][3] ? cases[ci][3] : 1);
        tg_shape sh = cases[ci][3] ? TG_SHAPE(N, C, cases[ci][2], cases[ci][3]) : TG_SHAPE(N, C, cases[ci][2]);
        WHAT("case %d", ci);
        double *x = rnd_vals(N * C * S, 0, 2), *y = malloc((size_t)(N * C * S) * 8);
        tg_tensor *ty = tg_local_response_norm(tg_from_f64(x, sh, dev()), cases[ci][4], 0.3, 0.75, 2.0);
        lrn_loops(x, N, C, S, cases[ci][4], 0.3, 0.75, 2.0, y);
        double *g = ty ? tg_test_values(ty) : NULL;
        CHECK_VALUES(g, y, N * C * S, 1e-12);
        free(g), free(x), free(y);
    }
}

/* ================================================================== fast kernels vs references */

static tg_tensor *cpu_rand(int64_t n, tg_dtype dt, double a, double s) {
    double *v = rnd_vals(n, a, s);
    tg_tensor *t = tensor_of(v, TG_SHAPE(n), dt, tg_device_get("cpu"));
    free(v);
    return t;
}

static tg_tensor *cpu_empty(int64_t n, tg_dtype dt) { return tg_empty(dt, TG_SHAPE(n), tg_device_get("cpu")); }

#define SAME(a, b, tol)                                                                                    \
    do {                                                                                                   \
        double *ga_ = tg_test_values(a), *gb_ = tg_test_values(b);                                         \
        CHECK_VALUES(ga_, gb_, tg_numel(b), tol);                                                          \
        free(ga_), free(gb_);                                                                              \
    } while (0)

typedef enum { K_BN, K_LN, K_GN } kernel_kind;

/* One geometry through the fast kernel and the reference: forward (and running stats
 * for batch norm) and backward with every output wanted, then dx alone. */
static void fast_vs_ref(int *tg_failed_, kernel_kind kind, tg_norm_params p, tg_dtype dt, bool affine) {
    int64_t n = p.N * p.C * p.S, nstat = kind == K_BN ? p.C : kind == K_LN ? p.N : p.N * p.groups;
    double tol = dt == TG_F32 ? 2e-5 : 1e-10;
    tg_tensor *x = cpu_rand(n, dt, 1, 2), *w = affine ? cpu_rand(p.C, dt, 1, 0.5) : NULL;
    tg_tensor *b = affine ? cpu_rand(p.C, dt, 0, 1) : NULL, *g = cpu_rand(n, dt, 0, 1);
    tg_tensor *y[2], *m[2], *is[2], *rm[2], *rv[2], *dx[2], *dw[2], *db[2];
    tg_tensor *rm0 = cpu_rand(p.C, dt, 0, 1), *rv0 = cpu_rand(p.C, dt, 1, 0.5);
    for (int r = 0; r < 2; r++) {
        y[r] = cpu_empty(n, dt), m[r] = cpu_empty(nstat, dt), is[r] = cpu_empty(nstat, dt);
        rm[r] = tg_clone(rm0), rv[r] = tg_clone(rv0);
        dx[r] = cpu_empty(n, dt), dw[r] = cpu_empty(p.C, dt), db[r] = cpu_empty(p.C, dt);
        tg_status st = kind == K_BN ? (r ? tg_cpu_batch_norm_ref : tg_cpu_batch_norm)(y[r], m[r], is[r], rm[r], rv[r], x, w, b, &p)
                     : kind == K_LN ? (r ? tg_cpu_layer_norm_ref : tg_cpu_layer_norm)(y[r], m[r], is[r], x, w, b, &p)
                                    : (r ? tg_cpu_group_norm_ref : tg_cpu_group_norm)(y[r], m[r], is[r], x, w, b, &p);
        CHECK(st == TG_OK);
        TG_CPU_NORM_BW_DECL((*bw)) = kind == K_BN ? (r ? tg_cpu_batch_norm_backward_ref : tg_cpu_batch_norm_backward)
                                   : kind == K_LN ? (r ? tg_cpu_layer_norm_backward_ref : tg_cpu_layer_norm_backward)
                                                  : (r ? tg_cpu_group_norm_backward_ref : tg_cpu_group_norm_backward);
        CHECK(bw(dx[r], dw[r], db[r], g, x, w, m[r], is[r], &p) == TG_OK);
        if (r == 0) { /* dx alone (no sums for eval batch norm) must agree too */
            tg_tensor *dx1 = cpu_empty(n, dt);
            CHECK(bw(dx1, NULL, NULL, g, x, w, m[r], is[r], &p) == TG_OK);
            SAME(dx1, dx[0], 0);
        }
    }
    SAME(y[0], y[1], tol);
    SAME(m[0], m[1], tol);
    SAME(is[0], is[1], tol);
    SAME(rm[0], rm[1], tol);
    SAME(rv[0], rv[1], tol);
    SAME(dx[0], dx[1], tol);
    SAME(dw[0], dw[1], tol);
    SAME(db[0], db[1], tol);
}

TEST(fast_kernels_match_reference) {
    /* row mode (S < 16), channels split into blocks of planes (C < 16), whole channels
     * fused with their apply pass, planes with a partial last vector */
    static const int64_t bn[][3] = { { 2, 3, 1 },  { 7, 5, 1 },    { 16, 3, 7 },   { 33, 4, 5 },  { 4, 3, 64 },
                                     { 1, 2, 17 }, { 8, 16, 1024 }, { 700, 64, 1 }, { 5, 3, 196 }, { 3, 17, 49 },
                                     { 2, 5, 300 }, { 40, 9, 15 } };
    static const int64_t ln[][2] = { { 1, 1 }, { 3, 5 }, { 7, 33 }, { 40, 100 }, { 300, 257 }, { 17, 3 } };
    static const int64_t gn[][4] = { { 2, 6, 5, 3 }, { 3, 4, 1, 1 }, { 2, 8, 9, 8 }, { 4, 32, 300, 8 } };
    for (int dt = 0; dt < 2; dt++)
        for (int affine = 0; affine < 2; affine++) {
            tg_dtype d = dt ? TG_F32 : TG_F64;
            for (int i = 0; i < (int)(sizeof bn / sizeof bn[0]); i++)
                for (int tr = 0; tr < 2; tr++) {
                    WHAT("batch norm %lld,%lld,%lld training %d affine %d %s", (long long)bn[i][0], (long long)bn[i][1],
                         (long long)bn[i][2], tr, affine, tg_dtype_name(d));
                    tg_norm_params p = { .N = bn[i][0], .C = bn[i][1], .S = bn[i][2], .momentum = 0.25, .eps = 1e-5,
                                         .training = tr };
                    fast_vs_ref(tg_failed_, K_BN, p, d, affine);
                }
            for (int i = 0; i < 6; i++) {
                WHAT("layer norm %lld,%lld affine %d %s", (long long)ln[i][0], (long long)ln[i][1], affine, tg_dtype_name(d));
                fast_vs_ref(tg_failed_, K_LN, (tg_norm_params){ .N = ln[i][0], .C = ln[i][1], .S = 1, .eps = 1e-5 }, d,
                            affine);
            }
            for (int i = 0; i < 4; i++) {
                WHAT("group norm %lld,%lld,%lld/%lld affine %d %s", (long long)gn[i][0], (long long)gn[i][1],
                     (long long)gn[i][2], (long long)gn[i][3], affine, tg_dtype_name(d));
                fast_vs_ref(tg_failed_, K_GN,
                            (tg_norm_params){ .N = gn[i][0], .C = gn[i][1], .S = gn[i][2], .groups = gn[i][3], .eps = 1e-5 },
                            d, affine);
            }
        }
}

/* The f32 fast kernels on x = 1e4 + U[-1, 1) against the references in f64 on the same
 * values: a one-pass f32 variance, E[x^2] - E[x]^2, loses all of it here (1e8 in f32
 * carries an error of ~4, the variance is 1/3). The backward gets the forward's saved
 * statistics on both sides, so it compares the kernels alone. */
static void large_mean_case(int *tg_failed_, kernel_kind kind, tg_norm_params p) {
    int64_t n = p.N * p.C * p.S, nstat = kind == K_BN ? p.C : kind == K_LN ? p.N : p.N * p.groups;
    tg_dtype dts[2] = { TG_F32, TG_F64 };
    double *xv = rnd_vals(n, 1e4, 1), *gv = rnd_vals(n, 0, 1), *wv = rnd_vals(p.C, 1, 0.5), *bv = rnd_vals(p.C, 0, 1);
    tg_tensor *y[2], *m[2], *is[2], *rm[2], *rv[2], *dx[2], *dw[2], *db[2];
    for (int r = 0; r < 2; r++) { /* r = 0: the f32 kernel; r = 1: the f64 reference */
        tg_dtype dt = dts[r];
        tg_tensor *x = tensor_of(xv, TG_SHAPE(n), TG_F32, tg_device_get("cpu")), *w, *b, *g;
        x = tg_cast(x, dt); /* the f32 values, exactly, on both sides */
        w = tg_cast(tensor_of(wv, TG_SHAPE(p.C), TG_F32, tg_device_get("cpu")), dt);
        b = tg_cast(tensor_of(bv, TG_SHAPE(p.C), TG_F32, tg_device_get("cpu")), dt);
        g = tg_cast(tensor_of(gv, TG_SHAPE(n), TG_F32, tg_device_get("cpu")), dt);
        y[r] = cpu_empty(n, dt), m[r] = cpu_empty(nstat, dt), is[r] = cpu_empty(nstat, dt);
        rm[r] = tg_zeros(dt, TG_SHAPE(p.C), tg_device_get("cpu")), rv[r] = tg_ones(dt, TG_SHAPE(p.C), tg_device_get("cpu"));
        dx[r] = cpu_empty(n, dt), dw[r] = cpu_empty(p.C, dt), db[r] = cpu_empty(p.C, dt);
        tg_status st = kind == K_BN ? (r ? tg_cpu_batch_norm_ref : tg_cpu_batch_norm)(y[r], m[r], is[r], rm[r], rv[r], x, w, b, &p)
                     : kind == K_LN ? (r ? tg_cpu_layer_norm_ref : tg_cpu_layer_norm)(y[r], m[r], is[r], x, w, b, &p)
                                    : (r ? tg_cpu_group_norm_ref : tg_cpu_group_norm)(y[r], m[r], is[r], x, w, b, &p);
        CHECK(st == TG_OK);
        TG_CPU_NORM_BW_DECL((*bw)) = kind == K_BN ? (r ? tg_cpu_batch_norm_backward_ref : tg_cpu_batch_norm_backward)
                                   : kind == K_LN ? (r ? tg_cpu_layer_norm_backward_ref : tg_cpu_layer_norm_backward)
                                                  : (r ? tg_cpu_group_norm_backward_ref : tg_cpu_group_norm_backward);
        tg_tensor *sm = tg_cast(m[0], dt), *si = tg_cast(is[0], dt);
        CHECK(bw(dx[r], dw[r], db[r], g, x, w, sm, si, &p) == TG_OK);
    }
    SAME(y[0], y[1], 1e-5);
    SAME(m[0], m[1], 1e-7);
    SAME(is[0], is[1], 1e-5);
    SAME(rm[0], rm[1], 1e-7);
    SAME(rv[0], rv[1], 1e-5);
    SAME(dx[0], dx[1], 1e-4);
    SAME(dw[0], dw[1], 1e-4);
    SAME(db[0], db[1], 1e-5);
    free(xv), free(gv), free(wv), free(bv);
}

TEST(fast_kernels_large_mean) {
    static const int64_t bn[][3] = { { 64, 16, 256 }, { 16, 3, 196 }, { 32, 8, 1024 }, { 2000, 7, 1 }, { 300, 5, 3 } };
    for (int i = 0; i < (int)(sizeof bn / sizeof bn[0]); i++) {
        WHAT("batch norm %lld,%lld,%lld", (long long)bn[i][0], (long long)bn[i][1], (long long)bn[i][2]);
        large_mean_case(tg_failed_, K_BN, (tg_norm_params){ .N = bn[i][0], .C = bn[i][1], .S = bn[i][2],
                                                           .momentum = 0.25, .eps = 1e-5, .training = true });
    }
    WHAT("layer norm 64,1000");
    large_mean_case(tg_failed_, K_LN, (tg_norm_params){ .N = 64, .C = 1000, .S = 1, .eps = 1e-5 });
    WHAT("group norm 8,16,100/4");
    large_mean_case(tg_failed_, K_GN, (tg_norm_params){ .N = 8, .C = 16, .S = 100, .groups = 4, .eps = 1e-5 });
}

/* Results do not depend on the thread count (work splits on fixed boundaries). */
TEST(fast_kernels_thread_independent) {
    tg_device *cpu = tg_device_get("cpu");
    int prev = tg_get_num_threads();
    double *out[2][3];
    for (int r = 0; r < 2; r++) {
        tg_set_num_threads(r ? 1 : 2);
        g_rng = 12345;
        tg_tensor *x = cpu_rand(700 * 64, TG_F32, 1, 2), *xb = cpu_rand(8 * 16 * 1024, TG_F32, 1, 2);
        tg_tensor *w = tg_param(cpu_rand(64, TG_F32, 1, 0.5));
        tg_tensor *wb = tg_param(cpu_rand(16, TG_F32, 1, 0.5));
        tg_tensor *y1 = tg_batch_norm(tg_reshape(x, TG_SHAPE(700, 64)), NULL, NULL, w, NULL,
                                      &(tg_batch_norm_opts){ .training = true });
        tg_tensor *y2 = tg_layer_norm(tg_reshape(x, TG_SHAPE(700, 64)), TG_SHAPE(64), w, NULL, 1e-5);
        tg_tensor *y3 = tg_batch_norm(tg_reshape(xb, TG_SHAPE(8, 16, 32, 32)), NULL, NULL, wb, NULL,
                                      &(tg_batch_norm_opts){ .training = true });
        tg_tensor *loss = tg_add(tg_sum(tg_mul(y1, y2), TG_ALL, false), tg_sum(tg_square(y3), TG_ALL, false));
        CHECK(tg_backward(loss) == TG_OK);
        out[r][0] = tg_test_values(tg_add(y1, y2));
        out[r][1] = tg_test_values(tg_grad(w));
        out[r][2] = tg_test_values(tg_grad(wb));
        (void)cpu;
    }
    tg_set_num_threads(prev);
    WHAT("threads");
    CHECK_VALUES(out[0][0], out[1][0], 700 * 64, 0);
    CHECK_VALUES(out[0][1], out[1][1], 64, 0);
    CHECK_VALUES(out[0][2], out[1][2], 16, 0);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) free(out[r][k]);
}

/* The same at the sizes where the pool splits work even when its workers sleep (a
 * million elements and more): batch norm with channels split into blocks of planes,
 * whole channels fused, planes with a partial last vector, row mode; layer and group
 * norm. Forward values, running statistics and every gradient, bitwise, in f32 and in
 * f64 (f32 results, rounded from sums in double, hide most changes of summation order;
 * f64 ones show them). */
typedef enum { TI_BN, TI_LN, TI_GN } ti_kind;

static double *ti_run(ti_kind kind, tg_shape s, tg_dtype dt, int threads, int64_t *count) {
    tg_device *cpu = tg_device_get("cpu");
    int64_t n = 1, C = s.dims[1];
    for (int d = 0; d < s.ndim; d++) n *= s.dims[d];
    tg_set_num_threads(threads);
    g_rng = 777;
    tg_tensor *x = tg_param(tg_reshape(cpu_rand(n, dt, 3, 2), s)), *up = tg_reshape(cpu_rand(n, dt, 0, 1), s);
    tg_tensor *w = tg_param(cpu_rand(C, dt, 1, 0.5)), *b = tg_param(cpu_rand(C, dt, 0, 1));
    tg_tensor *rm = tg_zeros(dt, TG_SHAPE(C), cpu), *rv = tg_ones(dt, TG_SHAPE(C), cpu), *y;
    if (kind == TI_BN) y = tg_batch_norm(x, rm, rv, w, b, &(tg_batch_norm_opts){ .training = true });
    else if (kind == TI_LN) y = tg_layer_norm(x, TG_SHAPE(C), w, b, 1e-5);
    else y = tg_group_norm(x, 8, w, b, 1e-5);
    if (!y || tg_backward(tg_sum(tg_mul(y, up), TG_ALL, false)) != TG_OK) return NULL;
    tg_tensor *parts[] = { y, tg_grad(x), tg_grad(w), tg_grad(b), rm, rv };
    *count = 0;
    double *all = malloc(sizeof(double) * (size_t)(2 * n + 4 * C));
    for (int k = 0; k < 6; k++) {
        double *v = tg_test_values(parts[k]);
        if (!v) { free(all); return NULL; }
        memcpy(all + *count, v, sizeof(double) * (size_t)tg_numel(parts[k]));
        *count += tg_numel(parts[k]);
        free(v);
    }
    return all;
}

TEST(fast_kernels_thread_independent_large) {
    static const struct { ti_kind kind; int ndim; int64_t d[4]; } cases[] = {
        { TI_BN, 4, { 32, 3, 112, 112 } }, { TI_BN, 4, { 64, 16, 32, 32 } }, { TI_BN, 4, { 192, 32, 14, 14 } },
        { TI_BN, 2, { 65536, 16 } },       { TI_LN, 2, { 8192, 128 } },      { TI_GN, 4, { 32, 32, 32, 32 } },
    };
    int prev = tg_get_num_threads();
    for (int i = 0; i < 2 * (int)(sizeof cases / sizeof cases[0]); i++) {
        int c = i / 2;
        tg_dtype dt = i % 2 ? TG_F64 : TG_F32;
        tg_shape s = { .ndim = cases[c].ndim };
        for (int d = 0; d < s.ndim; d++) s.dims[d] = cases[c].d[d];
        WHAT("case %d (%s) %s", c, cases[c].kind == TI_BN ? "batch norm" : cases[c].kind == TI_LN ? "layer norm" : "group norm",
             tg_dtype_name(dt));
        tg_scope_begin();
        int64_t n1 = 0, n2 = 0;
        double *one = ti_run(cases[c].kind, s, dt, 1, &n1), *two = ti_run(cases[c].kind, s, dt, 2, &n2);
        CHECK(one && two && n1 == n2);
        if (one && two && n1 == n2) CHECK_VALUES(two, one, n1, 0);
        free(one), free(two);
        tg_scope_end();
    }
    tg_set_num_threads(prev);
}

/* ================================================================== gradients */

typedef struct {
    bool training, affine, transposed;
    tg_tensor *rm, *rv;
} bn_ctx;

static tg_tensor *f_bn(tg_tensor *const *in, void *ctx) {
    const bn_ctx *c = ctx;
    tg_tensor *x = c->transposed ? tg_transpose(in[0], 0, 1) : in[0];
    return tg_batch_norm(x, c->rm, c->rv, c->affine ? in[1] : NULL, c->affine ? in[2] : NULL,
                         &(tg_batch_norm_opts){ .training = c->training, .momentum = TG_SOME(0.5) });
}

static tg_tensor *f_bn_w_only(tg_tensor *const *in, void *ctx) {
    const bn_ctx *c = ctx;
    return tg_batch_norm(in[0], c->rm, c->rv, in[1], NULL, &(tg_batch_norm_opts){ .training = c->training });
}

static tg_tensor *rand64(tg_shape s, double a, double sc) { return tg_add_scalar(tg_mul_scalar(tg_rand(TG_F64, s, dev()), sc), a); }

TEST(batch_norm_gradcheck) {
    BN_DEVICE_OR_SKIP();
    tg_manual_seed(11);
    tg_tensor *rm = rand64(TG_SHAPE(3), -0.5, 1), *rv = rand64(TG_SHAPE(3), 0.5, 1);
    static const int64_t shapes[][4] = { { 4, 3, 0, 0 }, { 2, 3, 4, 0 }, { 2, 3, 2, 2 } };
    for (int si = 0; si < 3; si++)
        for (int mode = 0; mode < 4; mode++) {
            bn_ctx c = { .training = mode & 1, .affine = mode & 2, .rm = mode & 1 ? NULL : rm, .rv = mode & 1 ? NULL : rv };
            tg_shape sh = { .ndim = shapes[si][2] ? shapes[si][3] ? 4 : 3 : 2 };
            for (int d = 0; d < sh.ndim; d++) sh.dims[d] = shapes[si][d];
            WHAT("shape %d training %d affine %d", si, c.training, c.affine);
            tg_tensor *x = rand64(sh, -1, 2), *w = rand64(TG_SHAPE(3), 0.5, 1), *b = rand64(TG_SHAPE(3), -1, 2);
            if (c.affine) GRADCHECK(f_bn, &c, x, w, b);
            else GRADCHECK(f_bn, &c, x);
            if (si == 0 || si == 2) {
                if (c.affine) GRADGRADCHECK(f_bn, &c, x, w, b);
                else GRADGRADCHECK(f_bn, &c, x);
            }
        }
    /* running statistics updated while training do not change the gradient */
    bn_ctx c = { .training = true, .rm = tg_zeros(TG_F64, TG_SHAPE(3), dev()), .rv = tg_ones(TG_F64, TG_SHAPE(3), dev()) };
    WHAT("training with running stats, weight only");
    GRADCHECK(f_bn_w_only, &c, rand64(TG_SHAPE(5, 3), -1, 2), rand64(TG_SHAPE(3), 0.5, 1));
    WHAT("a transposed (non-contiguous) x");
    bn_ctx ct = { .training = true, .affine = true, .transposed = true };
    GRADCHECK(f_bn, &ct, rand64(TG_SHAPE(3, 5), -1, 2), rand64(TG_SHAPE(3), 0.5, 1), rand64(TG_SHAPE(3), -1, 2));
}

typedef struct {
    tg_shape ns;
    bool affine;
} ln_ctx;

static tg_tensor *f_ln(tg_tensor *const *in, void *ctx) {
    const ln_ctx *c = ctx;
    return tg_layer_norm(in[0], c->ns, c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, 1e-5);
}

TEST(layer_norm_gradcheck) {
    tg_manual_seed(12);
    ln_ctx c1 = { TG_SHAPE(4), true }, c2 = { TG_SHAPE(3, 4), false }, c3 = { TG_SHAPE(3, 4), true };
    WHAT("(3,4) over (4) affine");
    tg_tensor *x = rand64(TG_SHAPE(3, 4), -1, 2);
    GRADCHECK(f_ln, &c1, x, rand64(TG_SHAPE(4), 0.5, 1), rand64(TG_SHAPE(4), -1, 2));
    GRADGRADCHECK(f_ln, &c1, x, rand64(TG_SHAPE(4), 0.5, 1), rand64(TG_SHAPE(4), -1, 2));
    WHAT("(2,3,4) over (3,4)");
    GRADCHECK(f_ln, &c2, rand64(TG_SHAPE(2, 3, 4), -1, 2));
    GRADGRADCHECK(f_ln, &c2, rand64(TG_SHAPE(2, 3, 4), -1, 2));
    WHAT("(3,4) over all of it, affine");
    GRADCHECK(f_ln, &c3, rand64(TG_SHAPE(3, 4), -1, 2), rand64(TG_SHAPE(3, 4), 0.5, 1), rand64(TG_SHAPE(3, 4), -1, 2));
}

typedef struct {
    int64_t groups;
    bool affine;
} gn_ctx;

static tg_tensor *f_gn(tg_tensor *const *in, void *ctx) {
    const gn_ctx *c = ctx;
    return tg_group_norm(in[0], c->groups, c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, 1e-5);
}

TEST(group_norm_gradcheck) {
    tg_manual_seed(13);
    gn_ctx c1 = { 3, true }, c2 = { 1, false }, c3 = { 6, true };
    tg_tensor *w = rand64(TG_SHAPE(6), 0.5, 1), *b = rand64(TG_SHAPE(6), -1, 2);
    WHAT("(2,6,3) 3 groups affine");
    GRADCHECK(f_gn, &c1, rand64(TG_SHAPE(2, 6, 3), -1, 2), w, b);
    GRADGRADCHECK(f_gn, &c1, rand64(TG_SHAPE(2, 6, 2), -1, 2), w, b);
    WHAT("(2,6,2,2) 1 group");
    GRADCHECK(f_gn, &c2, rand64(TG_SHAPE(2, 6, 2, 2), -1, 2));
    WHAT("(3,6,2) 6 groups affine");
    GRADCHECK(f_gn, &c3, rand64(TG_SHAPE(3, 6, 2), -1, 2), w, b);
}

typedef struct {
    int64_t size;
} lrn_ctx;

static tg_tensor *f_lrn(tg_tensor *const *in, void *ctx) {
    return tg_local_response_norm(in[0], ((const lrn_ctx *)ctx)->size, 0.5, 0.75, 2.0);
}

TEST(local_response_norm_gradcheck) {
    tg_manual_seed(14);
    lrn_ctx c3 = { 3 }, c2 = { 2 }, c5 = { 5 };
    WHAT("(2,5,3) size 3");
    GRADCHECK(f_lrn, &c3, rand64(TG_SHAPE(2, 5, 3), -1, 2));
    GRADGRADCHECK(f_lrn, &c3, rand64(TG_SHAPE(1, 4, 2), -1, 2));
    WHAT("(2,4,2,2) size 2");
    GRADCHECK(f_lrn, &c2, rand64(TG_SHAPE(2, 4, 2, 2), -1, 2));
    WHAT("(1,3,2) size 5 (window wider than C)");
    GRADCHECK(f_lrn, &c5, rand64(TG_SHAPE(1, 3, 2), -1, 2));
}

/* The fused backward (grad mode off) and the composed one (create_graph) agree. */
static void fused_vs_composed(int *tg_failed_, tg_fn fn, void *ctx, int n, tg_tensor **in) {
    tg_tensor *xs[3], *g1[3], *g2[3];
    for (int i = 0; i < n; i++) xs[i] = tg_param(tg_detach(in[i]));
    tg_tensor *y = fn(xs, ctx);
    tg_tensor *r = y ? tg_randn(TG_F64, tg_shape_of(y), dev()) : NULL;
    tg_tensor *loss = tg_sum(tg_mul(y, r), TG_ALL, false);
    CHECK(tg_autograd_grad(1, &loss, NULL, n, xs, g1, &(tg_backward_opts){ .retain_graph = true }) == TG_OK);
    CHECK(tg_autograd_grad(1, &loss, NULL, n, xs, g2, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
    for (int i = 0; i < n; i++) SAME(g1[i], g2[i], 1e-12);
}

TEST(fused_backward_matches_composed) {
    BN_DEVICE_OR_SKIP();
    tg_manual_seed(15);
    tg_tensor *in[3] = { rand64(TG_SHAPE(5, 3, 4), -1, 2), rand64(TG_SHAPE(3), 0.5, 1), rand64(TG_SHAPE(3), -1, 2) };
    bn_ctx tr = { .training = true, .affine = true }, ev = { .affine = true, .rm = rand64(TG_SHAPE(3), -1, 2),
                                                            .rv = rand64(TG_SHAPE(3), 0.5, 1) };
    WHAT("batch norm training");
    fused_vs_composed(tg_failed_, f_bn, &tr, 3, in);
    WHAT("batch norm eval");
    fused_vs_composed(tg_failed_, f_bn, &ev, 3, in);
    ln_ctx lc = { TG_SHAPE(3, 4), true };
    tg_tensor *lin[3] = { in[0], rand64(TG_SHAPE(3, 4), 0.5, 1), rand64(TG_SHAPE(3, 4), -1, 2) };
    WHAT("layer norm");
    fused_vs_composed(tg_failed_, f_ln, &lc, 3, lin);
    gn_ctx gc = { 3, true };
    tg_tensor *gin[3] = { rand64(TG_SHAPE(2, 6, 5), -1, 2), rand64(TG_SHAPE(6), 0.5, 1), rand64(TG_SHAPE(6), -1, 2) };
    WHAT("group norm");
    fused_vs_composed(tg_failed_, f_gn, &gc, 3, gin);
}

/* ================================================================== errors */

TEST(errors) {
    tg_device *d = dev();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 3), d), *c3 = tg_ones(TG_F64, TG_SHAPE(3), d);
    tg_tensor *c4 = tg_ones(TG_F64, TG_SHAPE(4), d), *c2 = tg_ones(TG_F64, TG_SHAPE(2), d);
    tg_batch_norm_opts tr = { .training = true };
    tg_clear_error();
    bool bn = tg_batch_norm(x, NULL, NULL, NULL, NULL, &tr) != NULL; /* the device has the kernel */
    tg_clear_error();
    if (bn) {
        CHECK_ERROR(tg_batch_norm(x, c4, c3, NULL, NULL, &tr),
                    "tg_batch_norm: running_mean should have shape [3] (one per channel of x [2,3]), got [4]");
        CHECK_ERROR(tg_batch_norm(x, c3, tg_ones(TG_F64, TG_SHAPE(1, 3), d), NULL, NULL, &tr),
                    "tg_batch_norm: running_var should have shape [3] (one per channel of x [2,3]), got [1,3]");
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, c2, NULL, &tr),
                    "tg_batch_norm: weight should have shape [3] (one per channel of x [2,3]), got [2]");
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, c4, &tr),
                    "tg_batch_norm: bias should have shape [3] (one per channel of x [2,3]), got [4]");
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, tg_ones(TG_F32, TG_SHAPE(3), d), NULL, &tr),
                    "tg_batch_norm: weight is f32 but x is f64 (convert one with tg_cast)");
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, NULL, NULL), "tg_batch_norm: running_mean must be defined in evaluation mode");
        CHECK_ERROR(tg_batch_norm(x, c3, NULL, NULL, NULL, NULL), "tg_batch_norm: running_var must be defined in evaluation mode");
        CHECK_ERROR(tg_batch_norm(tg_randn(TG_F64, TG_SHAPE(1, 3), d), NULL, NULL, NULL, NULL, &tr),
                    "tg_batch_norm: expected more than 1 value per channel when training, got input size [1,3]");
        CHECK_ERROR(tg_batch_norm(tg_randn(TG_F64, TG_SHAPE(1, 3, 1, 1), d), NULL, NULL, NULL, NULL, &tr),
                    "tg_batch_norm: expected more than 1 value per channel when training, got input size [1,3,1,1]");
        CHECK(tg_batch_norm(tg_randn(TG_F64, TG_SHAPE(1, 3), d), c3, c3, NULL, NULL, NULL)); /* eval: fine */
        CHECK_ERROR(tg_batch_norm(tg_ones(TG_I32, TG_SHAPE(2, 3), d), NULL, NULL, NULL, NULL, &tr),
                    "tg_batch_norm: expected a floating dtype (f32 or f64), got i32");
        CHECK_ERROR(tg_batch_norm(c3, NULL, NULL, NULL, NULL, &tr),
                    "tg_batch_norm: expected x of 2 or more dimensions (N, C, ...), got [3]");
        CHECK_ERROR(tg_batch_norm(x, tg_param(tg_zeros(TG_F64, TG_SHAPE(3), d)), c3, NULL, NULL, &tr),
                    "tg_batch_norm: running_mean requires grad; running statistics are buffers, not parameters");
        CHECK_ERROR(tg_batch_norm(x, tg_expand(tg_zeros(TG_F64, TG_SHAPE(1), d), TG_SHAPE(3)), c3, NULL, NULL, &tr),
                    "tg_batch_norm: running_mean has stride 0 (an expanded view) and is updated in place; pass a "
                    "tensor of its own");
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, NULL,
                                  &(tg_batch_norm_opts){ .training = true, .cumulative = true }),
                    "tg_batch_norm: the cumulative average needs num_batches_tracked >= 1, got 0");
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "tg_batch_norm: device %s has no batch_norm kernel for f64 (yet)", tg_device_name(d));
        CHECK_ERROR(tg_batch_norm(x, NULL, NULL, NULL, NULL, &tr), msg);
    }
    CHECK_ERROR(tg_batch_norm(NULL, NULL, NULL, NULL, NULL, &tr), "tg_batch_norm: x is NULL");

    tg_tensor *x3 = tg_randn(TG_F64, TG_SHAPE(2, 6, 4), d);
    CHECK_ERROR(tg_group_norm(x3, 4, NULL, NULL, 1e-5),
                "tg_group_norm: expected the number of channels of x to be divisible by num_groups, but got x of "
                "shape [2,6,4] and num_groups 4");
    CHECK_ERROR(tg_group_norm(x3, 0, NULL, NULL, 1e-5), "tg_group_norm: num_groups must be positive, got 0");
    CHECK_ERROR(tg_group_norm(x3, 2, c3, NULL, 1e-5),
                "tg_group_norm: weight should have shape [6] (one per channel of x [2,6,4]), got [3]");
    CHECK_ERROR(tg_group_norm(c3, 1, NULL, NULL, 1e-5),
                "tg_group_norm: expected x of 2 or more dimensions (N, C, ...), got [3]");
    CHECK_ERROR(tg_group_norm(tg_ones(TG_U8, TG_SHAPE(2, 6), d), 2, NULL, NULL, 1e-5),
                "tg_group_norm: expected a floating dtype (f32 or f64), got u8");

    tg_tensor *x24 = tg_randn(TG_F64, TG_SHAPE(2, 4), d);
    CHECK_ERROR(tg_layer_norm(x24, TG_SHAPE(3), NULL, NULL, 1e-5),
                "tg_layer_norm: given normalized_shape [3], expected x of shape [*,3], but got [2,4]");
    CHECK_ERROR(tg_layer_norm(x24, TG_SHAPE(3, 2, 4), NULL, NULL, 1e-5),
                "tg_layer_norm: given normalized_shape [3,2,4], expected x of shape [*,3,2,4], but got [2,4]");
    CHECK_ERROR(tg_layer_norm(x24, TG_SHAPE(4), c3, NULL, 1e-5),
                "tg_layer_norm: weight should have shape [4] (normalized_shape), got [3]");
    CHECK_ERROR(tg_layer_norm(x24, TG_SHAPE(4), NULL, c3, 1e-5),
                "tg_layer_norm: bias should have shape [4] (normalized_shape), got [3]");
    CHECK_ERROR(tg_layer_norm(x24, TG_SCALAR_SHAPE, NULL, NULL, 1e-5),
                "tg_layer_norm: normalized_shape must have between 1 and 8 axes, got 0");
    CHECK_ERROR(tg_layer_norm(tg_ones(TG_I32, TG_SHAPE(2, 4), d), TG_SHAPE(4), NULL, NULL, 1e-5),
                "tg_layer_norm: expected a floating dtype (f32 or f64), got i32");

    CHECK_ERROR(tg_local_response_norm(x24, 2, 1e-4, 0.75, 1),
                "tg_local_response_norm: expected x of 3 or more dimensions (N, C, ...), got [2,4]");
    CHECK_ERROR(tg_local_response_norm(x3, 0, 1e-4, 0.75, 1), "tg_local_response_norm: size must be positive, got 0");
    CHECK_ERROR(tg_local_response_norm(tg_ones(TG_I32, TG_SHAPE(2, 4, 1), d), 2, 1e-4, 0.75, 1),
                "tg_local_response_norm: expected a floating dtype (f32 or f64), got i32");
}

/* ================================================================== PyTorch */

static const char *python(void) { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

static void py_list(FILE *f, const char *name, const double *v, int64_t n) {
    fprintf(f, "%s = [", name);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%.17g,", v[i]);
    fprintf(f, "]\n");
}

/* Runs the script (inputs already written to f, then body) and reads n numbers. */
static int run_torch(FILE *f, const char *path, const char *body, double *out, int n) {
    fprintf(f, "%s", body);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", python(), path);
    FILE *p = popen(cmd, "r");
    int got = 0;
    char word[64];
    if (p && fscanf(p, "%63s", word) == 1 && strcmp(word, "OK") == 0)
        while (got < n && fscanf(p, "%lf", &out[got]) == 1) got++;
    if (p) pclose(p);
    unlink(path);
    return got;
}

TEST(agrees_with_torch) {
    BN_DEVICE_OR_SKIP();
    char path[] = "/tmp/tg_norm_torch_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) SKIP("no temporary file");
    int64_t n = 3 * 6 * 2 * 2;
    double *x = rnd_vals(n, 1, 2), *gy = rnd_vals(n, 0, 1), *w = rnd_vals(6, 1, 0.5), *b = rnd_vals(6, 0, 1);
    double *x2 = rnd_vals(n, -1, 1);
    py_list(f, "x", x, n), py_list(f, "gy", gy, n), py_list(f, "w", w, 6), py_list(f, "b", b, 6), py_list(f, "x2", x2, n);
    static const char body[] =
        "try:\n import torch, torch.nn.functional as F\nexcept Exception:\n print('NOTORCH'); raise SystemExit\n"
        "torch.set_default_dtype(torch.float64)\n"
        "def T(v, *s): return torch.tensor(v).reshape(*s)\n"
        "out = []\n"
        "def run(f, *ins):\n"
        " ins = [i.clone().requires_grad_(True) for i in ins]\n"
        " y = f(*ins); y.backward(T(gy, 3, 6, 2, 2)); out.extend(y.detach().flatten().tolist())\n"
        " for i in ins: out.extend(i.grad.flatten().tolist())\n"
        "rm = torch.zeros(6); rv = torch.ones(6)\n"
        "run(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2), T(x, 3, 6, 2, 2), T(w, 6), T(b, 6))\n"
        "out.extend(rm.tolist()); out.extend(rv.tolist())\n"
        "run(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), T(x, 3, 6, 2, 2), T(w, 6), T(b, 6))\n"
        "run(lambda x: F.layer_norm(x, [6, 2, 2]), T(x, 3, 6, 2, 2))\n"
        "run(lambda x, w, b: F.group_norm(x, 3, w, b), T(x, 3, 6, 2, 2), T(w, 6), T(b, 6))\n"
        "run(lambda x: F.local_response_norm(x, 5, 0.3, 0.75, 2.0), T(x, 3, 6, 2, 2))\n"
        "m = torch.nn.BatchNorm2d(6, momentum=None); m(T(x, 3, 6, 2, 2)); m(T(x2, 3, 6, 2, 2))\n"
        "out.extend(m.running_mean.tolist()); out.extend(m.running_var.tolist())\n"
        "print('OK', ' '.join('%.17g' % v for v in out))\n";
    int want = (int)(2 * n + 12) + 12 + (int)(2 * n + 12) + (int)(2 * n) + (int)(2 * n + 12) + (int)(2 * n) + 12;
    double *ref = malloc((size_t)want * sizeof *ref);
    int got = run_torch(f, path, body, ref, want);
    if (got != want) {
        free(x), free(gy), free(w), free(b), free(x2), free(ref);
        SKIP("python3 with torch is not available");
    }
    /* ours, in the same order */
    double *mine = malloc((size_t)want * sizeof *mine);
    int k = 0;
    tg_shape sh = TG_SHAPE(3, 6, 2, 2);
    tg_tensor *rm = tg_zeros(TG_F64, TG_SHAPE(6), dev()), *rv = tg_ones(TG_F64, TG_SHAPE(6), dev());
    for (int which = 0; which < 5; which++) {
        tg_tensor *tx = tg_param(tg_from_f64(x, sh, dev())), *tw = tg_param(tg_from_f64(w, TG_SHAPE(6), dev()));
        tg_tensor *tb = tg_param(tg_from_f64(b, TG_SHAPE(6), dev())), *y = NULL;
        bool affine = which == 0 || which == 1 || which == 3;
        switch (which) {
        case 0: y = tg_batch_norm(tx, rm, rv, tw, tb, &(tg_batch_norm_opts){ .training = true, .momentum = TG_SOME(0.2) }); break;
        case 1: y = tg_batch_norm(tx, rm, rv, tw, tb, NULL); break;
        case 2: y = tg_layer_norm(tx, TG_SHAPE(6, 2, 2), NULL, NULL, 1e-5); break;
        case 3: y = tg_group_norm(tx, 3, tw, tb, 1e-5); break;
        default: y = tg_local_response_norm(tx, 5, 0.3, 0.75, 2.0); break;
        }
        CHECK(tg_backward_ex(y, tg_from_f64(gy, sh, dev()), NULL) == TG_OK);
        tg_tensor *parts[5] = { y, tg_grad(tx), affine ? tg_grad(tw) : NULL, affine ? tg_grad(tb) : NULL,
                                which == 0 ? rm : NULL };
        for (int j = 0; j < 5; j++) {
            if (!parts[j]) continue;
            double *v = tg_test_values(parts[j]);
            for (int64_t i = 0; v && i < tg_numel(parts[j]); i++) mine[k++] = v[i];
            free(v);
            if (j == 4) {
                v = tg_test_values(rv);
                for (int i = 0; v && i < 6; i++) mine[k++] = v[i];
                free(v);
            }
        }
    }
    tg_tensor *cm = tg_zeros(TG_F64, TG_SHAPE(6), dev()), *cv = tg_ones(TG_F64, TG_SHAPE(6), dev());
    for (int step = 1; step <= 2; step++)
        CHECK(tg_batch_norm(tg_from_f64(step == 1 ? x : x2, sh, dev()), cm, cv, NULL, NULL,
                            &(tg_batch_norm_opts){ .training = true, .cumulative = true, .num_batches_tracked = step }));
    double *v1 = tg_test_values(cm), *v2 = tg_test_values(cv);
    for (int i = 0; i < 6; i++) mine[k++] = v1[i];
    for (int i = 0; i < 6; i++) mine[k++] = v2[i];
    WHAT("torch");
    CHECK(k == want);
    if (k == want) CHECK_VALUES(mine, ref, want, 1e-10);
    free(v1), free(v2), free(x), free(gy), free(w), free(b), free(x2), free(ref), free(mine);
}

TG_TEST_MAIN(&tg_case_batch_norm_forward, &tg_case_batch_norm_momentum, &tg_case_batch_norm_version,
             &tg_case_layer_norm_forward, &tg_case_group_norm_forward, &tg_case_local_response_norm_forward,
             &tg_case_fast_kernels_match_reference, &tg_case_fast_kernels_large_mean,
             &tg_case_fast_kernels_thread_independent,
             &tg_case_fast_kernels_thread_independent_large,
             &tg_case_batch_norm_gradcheck, &tg_case_layer_norm_gradcheck, &tg_case_group_norm_gradcheck,
             &tg_case_local_response_norm_gradcheck, &tg_case_fused_backward_matches_composed, &tg_case_errors,
             &tg_case_agrees_with_torch)
