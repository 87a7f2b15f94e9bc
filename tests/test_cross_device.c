/* Autograd across devices: tg_gradcheck through tg_to (CPU -> OpenCL and back), where
 * each checked path crosses devices exactly once, so a wrong tg_to backward cannot
 * cancel itself; gradients arrive on their leaf's device; and a few ops whose forward
 * and backward results on the OpenCL device must agree with the CPU's from the same
 * inputs. The whole program is skipped (exit 77) without an OpenCL device, and a case
 * that needs fp64 is skipped on a device without it. */
#include <stdint.h>

#include "harness.h"
#include "tapegrad/devices.h"

static tg_device *g_cpu, *g_cl;

static bool opencl_ready(void) {
    g_cpu = tg_device_get("cpu");
    g_cl = tg_device_get("opencl");
    if (!g_cl) printf("skipped: no OpenCL device (%s)\n", tg_last_error());
    tg_clear_error();
    return g_cpu && g_cl;
}

static bool cl_has_fp64(void) {
    tg_device_info info;
    return tg_device_get_info(g_cl, &info) == TG_OK && info.fp64;
}

#define NEED_FP64()                                                           \
    do {                                                                      \
        if (!cl_has_fp64()) SKIP("%s has no fp64", tg_device_name(g_cl));     \
    } while (0)

/* A fixed host generator: inputs do not depend on the library's random numbers. */
static uint64_t g_rng = 0x853c49e6748fea9bu;
static double urand(double lo, double hi) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return lo + (hi - lo) * (double)(g_rng >> 11) * 0x1p-53;
}

static tg_tensor *uni(tg_shape s, double lo, double hi, tg_device *dev) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    double v[256];
    for (int64_t i = 0; i < n; i++) v[i] = urand(lo, hi);
    return tg_from_f64(v, s, dev);
}

#define GRADCHECK_(checker, fn, ...)                                                               \
    do {                                                                                           \
        tg_tensor *in_[] = { __VA_ARGS__ };                                                        \
        tg_gradcheck_report rep_;                                                                  \
        if (checker(fn, NULL, (int)(sizeof in_ / sizeof in_[0]), in_, NULL, &rep_) != TG_OK)       \
            FAIL_("%s(%s) failed: %s (%s)", #checker, #fn, rep_.message, tg_last_error());         \
    } while (0)
#define GRADCHECK(fn, ...) GRADCHECK_(tg_gradcheck, fn, __VA_ARGS__)
#define GRADGRADCHECK(fn, ...) GRADCHECK_(tg_gradgradcheck, fn, __VA_ARGS__)

/* ------------------------------------------------------------------ gradcheck through tg_to */

static tg_tensor *f_to_cl_tanh(tg_tensor *const *in, void *ctx) { return tg_tanh(tg_to(in[0], g_cl)); }
static tg_tensor *f_to_cpu_scaled(tg_tensor *const *in, void *ctx) {
    return tg_mul(tg_to(in[0], g_cpu), tg_full(TG_F64, tg_shape_of(in[0]), -1.5, g_cpu));
}
static tg_tensor *f_to_cl_mul(tg_tensor *const *in, void *ctx) { /* in[0] on the CPU, in[1] on OpenCL */
    return tg_mul(tg_to(in[0], g_cl), in[1]);
}
static tg_tensor *f_to_cl_view(tg_tensor *const *in, void *ctx) {
    return tg_sum(tg_exp(tg_to(tg_transpose(in[0], 0, 1), g_cl)), TG_AXES(1), false);
}
static tg_tensor *f_to_cl_broadcast(tg_tensor *const *in, void *ctx) { /* (3) on the CPU + (2,3) on OpenCL */
    return tg_matmul(tg_add(tg_to(in[0], g_cl), in[1]), tg_ones(TG_F64, TG_SHAPE(3, 2), g_cl));
}
static tg_tensor *f_to_same_device(tg_tensor *const *in, void *ctx) { return tg_square(tg_to(in[0], g_cpu)); }
static tg_tensor *f_to_cl_square(tg_tensor *const *in, void *ctx) { return tg_mul(tg_square(tg_to(in[0], g_cl)), tg_to(in[0], g_cl)); }

TEST(gradcheck_through_to) {
    NEED_FP64();
    GRADCHECK(f_to_cl_tanh, uni(TG_SHAPE(3, 4), -2, 2, g_cpu));
    GRADCHECK(f_to_cpu_scaled, uni(TG_SHAPE(5), -2, 2, g_cl));
    GRADCHECK(f_to_cl_mul, uni(TG_SHAPE(2, 3), -2, 2, g_cpu), uni(TG_SHAPE(2, 3), -2, 2, g_cl));
    GRADCHECK(f_to_cl_view, uni(TG_SHAPE(4, 3), -1, 1, g_cpu));
    GRADCHECK(f_to_cl_broadcast, uni(TG_SHAPE(3), -1, 1, g_cpu), uni(TG_SHAPE(2, 3), -1, 1, g_cl));
    GRADCHECK(f_to_same_device, uni(TG_SHAPE(4), -2, 2, g_cpu));
    GRADGRADCHECK(f_to_cl_square, uni(TG_SHAPE(2, 3), -2, 2, g_cpu));
}

/* d/dx sum(w * to(x)) = w on x's device, whichever way x went; closed form. */
TEST(gradients_of_to_land_on_the_leaf_device) {
    tg_device *devs[2][2] = { { g_cpu, g_cl }, { g_cl, g_cpu } };
    const float xv[4] = { 1, -2, 3, 0.5f }, wv[4] = { 2, -3, 0.25f, 7 };
    for (int k = 0; k < 2; k++) {
        tg_device *from = devs[k][0], *to = devs[k][1];
        tg_tensor *x = tg_param(tg_from_f32(xv, TG_SHAPE(4), from));
        tg_tensor *L = tg_sum(tg_mul(tg_to(x, to), tg_from_f32(wv, TG_SHAPE(4), to)), TG_ALL, false);
        CHECK(tg_device_of(L) == to);
        CHECK(tg_backward(L) == TG_OK);
        tg_tensor *g = tg_grad(x);
        CHECK(g && tg_device_of(g) == from && tg_dtype_of(g) == TG_F32);
        float got[4] = { 0 };
        CHECK(g && tg_copy_to_host(g, got, sizeof got) == TG_OK);
        for (int i = 0; i < 4; i++)
            if (got[i] != wv[i]) FAIL_("%s -> %s: d/dx[%d] = %g, expected %g", tg_device_name(from), tg_device_name(to), i, got[i], wv[i]);
    }
}

/* ------------------------------------------------------------------ agreement of a few ops */

/* Values of t, read on the CPU (so a device without fp64 can be read). */
static double *values(tg_tensor *t) { return t ? tg_test_values(tg_to(t, g_cpu)) : NULL; }

static int agree(tg_tensor *c, tg_tensor *d, double rtol, const char *what, int line) {
    if (!c || !d || tg_numel(c) != tg_numel(d) || tg_dtype_of(c) != tg_dtype_of(d) || tg_device_of(d) != g_cl) {
        fprintf(stderr, "  %s:%d: %s: missing or mismatched results (%s)\n", __FILE__, line, what, tg_last_error());
        return 1;
    }
    double *x = values(c), *y = values(d);
    int bad = !x || !y;
    for (int64_t i = 0; !bad && i < tg_numel(c); i++)
        if (!(fabs(x[i] - y[i]) <= rtol * fmax(1, fabs(x[i])))) {
            fprintf(stderr, "  %s:%d: %s element %lld: cpu %.9g, opencl %.9g\n", __FILE__, line, what, (long long)i, x[i], y[i]);
            bad = 1;
        }
    free(x), free(y);
    return bad;
}
#define AGREE(c, d, rtol, what) (*tg_failed_ += agree((c), (d), (rtol), (what), __LINE__))

typedef tg_tensor *(*op2)(tg_tensor *, tg_tensor *);

static tg_tensor *o_bcast_mul_exp(tg_tensor *a, tg_tensor *b) { return tg_exp(tg_mul(a, b)); }
static tg_tensor *o_matmul_tanh(tg_tensor *a, tg_tensor *b) { return tg_tanh(tg_matmul(a, tg_transpose(b, 0, 1))); }
static tg_tensor *o_softmax_sub(tg_tensor *a, tg_tensor *b) { return tg_log_softmax(tg_sub(a, b), 1); }
static tg_tensor *o_max_ties(tg_tensor *a, tg_tensor *b) {
    return tg_add(tg_max(tg_maximum(a, b), TG_AXES(1), true), tg_min(tg_minimum(a, b), TG_AXES(0), false));
}
static tg_tensor *o_div_pow(tg_tensor *a, tg_tensor *b) { return tg_div(tg_square(a), tg_add_scalar(tg_abs(b), 0.5)); }

/* Forward values and the gradients of sum(w * op(a, b)) on both devices from the same
 * f32 inputs; a (3,4), b (4) broadcast (or (4,4) for matmul). Integer-valued inputs for
 * the extremum case, so that the devices see the same ties. */
TEST(ops_and_gradients_agree_with_cpu) {
    const struct {
        const char *name;
        op2 fn;
        tg_shape sb;
        bool ints;
    } ops[] = {
        { "exp(a * b) broadcast", o_bcast_mul_exp, TG_SHAPE(4), false },
        { "tanh(a @ b^T)", o_matmul_tanh, TG_SHAPE(5, 4), false },
        { "log_softmax(a - b)", o_softmax_sub, TG_SHAPE(4), false },
        { "max/min with ties", o_max_ties, TG_SHAPE(4), true },
        { "a^2 / (|b| + 0.5)", o_div_pow, TG_SHAPE(4), false },
    };
    for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) {
        tg_tensor *ha = ops[k].ints ? tg_cast(tg_cast(uni(TG_SHAPE(3, 4), -2, 3, g_cpu), TG_I32), TG_F32)
                                    : tg_cast(uni(TG_SHAPE(3, 4), -1, 1, g_cpu), TG_F32);
        tg_tensor *hb = ops[k].ints ? tg_cast(tg_cast(uni(ops[k].sb, -2, 3, g_cpu), TG_I32), TG_F32)
                                    : tg_cast(uni(ops[k].sb, -1, 1, g_cpu), TG_F32);
        tg_tensor *ca = tg_param(tg_clone(ha)), *cb = tg_param(tg_clone(hb));
        tg_tensor *da = tg_param(tg_to(ha, g_cl)), *db = tg_param(tg_to(hb, g_cl));
        tg_tensor *cy = ops[k].fn(ca, cb), *dy = ops[k].fn(da, db);
        AGREE(cy, dy, 1e-5, ops[k].name);
        if (!cy || !dy) continue;
        tg_tensor *w = tg_cast(uni(tg_shape_of(cy), 0.5, 1.5, g_cpu), TG_F32);
        CHECK(tg_backward(tg_sum(tg_mul(cy, w), TG_ALL, false)) == TG_OK);
        CHECK(tg_backward(tg_sum(tg_mul(dy, tg_to(w, g_cl)), TG_ALL, false)) == TG_OK);
        AGREE(tg_grad(ca), tg_grad(da), 1e-5, ops[k].name);
        AGREE(tg_grad(cb), tg_grad(db), 1e-5, ops[k].name);
    }
}

TG_TEST_MAIN_WITH(opencl_ready, &tg_case_gradcheck_through_to, &tg_case_gradients_of_to_land_on_the_leaf_device,
                  &tg_case_ops_and_gradients_agree_with_cpu)
