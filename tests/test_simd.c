/* The SIMD checker (after dav1d's checkasm): every kernel of every level this CPU has is
 * compared with its plain-C twin on random input of awkward sizes, unaligned, with NaN,
 * inf, signed zeros and subnormals mixed in, and a guard past the end of the output.
 *
 * Tolerances: arithmetic ops, comparisons, max/min and axpy must match bit for bit (any
 * NaN matches any NaN). exp, log, tanh and sigmoid may differ from libm by TOL_ULP_F32
 * (f32) or TOL_ULP_F64 (f64) units in the last place. sum_f32 may differ from a
 * sequential double sum by 1e-12 * sum|x|; sum_f64 by (n + 1) * DBL_EPSILON * sum|x|.
 *
 * Usage: test_simd [--level avx2|avx512] [--bench]   (--bench also times each kernel
 * against its twin; meson runs one test per level, skipped where the CPU lacks it) */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cpu/simd/simd.h"

#define TOL_ULP_F32 4
#define TOL_ULP_F64 4
#define MAXN 4097
#define GUARD 16

static const int64_t k_sizes[] = { 0, 1, 2, 7, 15, 16, 17, 31, 33, 63, 1023, 1024, 4097 };
#define NSIZES ((int)(sizeof k_sizes / sizeof k_sizes[0]))

static const char *const k_unary_names[TG_UN_COUNT] = {
    "neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "relu", "sigmoid", "tanh", "sin",
    "cos", "square", "reciprocal", "pow_scalar", "add_scalar", "mul_scalar", "clamp", "step",
};
static const char *const k_binary_names[TG_BIN_FIRST_CMP] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum",
};
_Static_assert(TG_UN_COUNT == 19, "name the new unary op above");

static int g_passed, g_failed;
static const char *g_level;

/* ---------------------------------------------------------------- random input */

static uint64_t g_rng = 0x9e3779b97f4a7c15u;

static uint64_t rnd_u64(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double rnd_uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rnd_u64() >> 11) * 0x1p-53;
}

static int is_transcendental(int op)
{
    return op == TG_UN_EXP || op == TG_UN_LOG || op == TG_UN_TANH || op == TG_UN_SIGMOID;
}

/* A value for op's domain; one in eight is a special value. */
static double rnd_value(int op, int is_f64)
{
    static const double specials[] = { NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0 };
    if ((rnd_u64() & 7) == 0) {
        uint64_t k = rnd_u64() % 9;
        if (k < 7)
            return specials[k];
        double tiny = is_f64 ? 0x1p-1040 : 0x1p-140; /* subnormal */
        return k == 7 ? tiny * rnd_uniform(1, 8) : -tiny * rnd_uniform(1, 8);
    }
    switch (op) {
    case TG_UN_EXP:
    case TG_UN_SIGMOID:
        return is_f64 ? rnd_uniform(-760, 720) : rnd_uniform(-110, 95);
    case TG_UN_LOG:
    case TG_UN_SQRT:
    case TG_UN_RSQRT: /* positive, over many binades */
        return ldexp(rnd_uniform(0.5, 1.0), (int)(rnd_u64() % 120) - 60);
    case TG_UN_TANH:
        return (rnd_u64() & 1) ? rnd_uniform(-1, 1) : rnd_uniform(-12, 12);
    default:
        return rnd_uniform(-4, 4);
    }
}

/* ---------------------------------------------------------------- comparisons */

static int64_t ordered_bits(double v, int is_f64)
{
    int64_t i;
    if (is_f64) {
        memcpy(&i, &v, 8);
        return i < 0 ? INT64_MIN - i : i;
    }
    float f = (float)v;
    int32_t j;
    memcpy(&j, &f, 4);
    return j < 0 ? (int64_t)INT32_MIN - j : j;
}

/* 0 if got matches want: bitwise (tol_ulp = 0; any NaN matches any NaN) or within
 * tol_ulp ulps; infinities must match exactly. */
static int mismatch(double got, double want, int is_f64, int tol_ulp)
{
    if (isnan(got) || isnan(want))
        return !(isnan(got) && isnan(want));
    if (isinf(got) || isinf(want))
        return got != want;
    int64_t d = ordered_bits(got, is_f64) - ordered_bits(want, is_f64);
    return (d < 0 ? -d : d) > tol_ulp;
}

/* The largest ulp distance seen per (type, op) for the transcendental ops, for the
 * summary line. */
static int64_t g_max_ulp[2][TG_UN_COUNT];

static void track_ulp(const double *got, const double *want, int64_t n, int is_f64, int op)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i]))
            continue;
        int64_t d = ordered_bits(got[i], is_f64) - ordered_bits(want[i], is_f64);
        d = d < 0 ? -d : d;
        if (d > g_max_ulp[is_f64][op])
            g_max_ulp[is_f64][op] = d;
    }
}

static void report(int bad, const char *kernel, const char *op, int64_t n, const char *variant,
                   int64_t idx, double got, double want)
{
    if (!bad) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("FAIL %s %s %s n=%lld%s index %lld: got %.17g want %.17g\n", g_level, kernel, op,
           (long long)n, variant, (long long)idx, got, want);
}

/* ---------------------------------------------------------------- buffers */

/* Inputs start one element past a 64-byte boundary (unaligned on purpose). */
static float g_xf[MAXN + 1 + GUARD], g_yf[MAXN + 1 + GUARD];
static float g_of[MAXN + 1 + GUARD], g_rf[MAXN + 1 + GUARD];
static double g_xd[MAXN + 1 + GUARD], g_yd[MAXN + 1 + GUARD];
static double g_od[MAXN + 1 + GUARD], g_rd[MAXN + 1 + GUARD];

#define SENTINEL 12345.0

static void fill_inputs(int op, int64_t n)
{
    for (int64_t i = 0; i < n + GUARD; i++) {
        g_xd[1 + i] = rnd_value(op, 1);
        g_yd[1 + i] = rnd_value(op, 1);
        g_xf[1 + i] = (float)rnd_value(op, 0);
        g_yf[1 + i] = (float)rnd_value(op, 0);
    }
}

static void reset_outputs(void)
{
    for (int i = 0; i < MAXN + 1 + GUARD; i++)
        g_of[i] = g_rf[i] = (float)SENTINEL, g_od[i] = g_rd[i] = SENTINEL;
}

/* First index where got differs from want over n + GUARD elements (the guard must
 * keep the sentinel), or -1. */
static int64_t first_bad_f32(const float *got, const float *want, int64_t n, int tol)
{
    for (int64_t i = 0; i < n + GUARD; i++)
        if (mismatch(got[i], want[i], 0, i < n ? tol : 0))
            return i;
    return -1;
}

static int64_t first_bad_f64(const double *got, const double *want, int64_t n, int tol)
{
    for (int64_t i = 0; i < n + GUARD; i++)
        if (mismatch(got[i], want[i], 1, i < n ? tol : 0))
            return i;
    return -1;
}

/* ---------------------------------------------------------------- checks */

static void params(int op, double *p0, double *p1)
{
    *p0 = op == TG_UN_CLAMP ? -0.5 : op == TG_UN_STEP ? 0.25 : op == TG_UN_POW_SCALAR ? 2.0 : 1.7;
    *p1 = op == TG_UN_CLAMP ? 0.75 : 0.0;
}

static void check_unary(const tg_simd_table *t, const tg_simd_table *c, int op, int64_t n)
{
    double p0, p1;
    params(op, &p0, &p1);
    int tol = is_transcendental(op);
    if (t->unary_f32[op] && t->unary_f32[op] != c->unary_f32[op]) {
        fill_inputs(op, n);
        for (int inplace = 0; inplace < 2; inplace++) {
            reset_outputs();
            c->unary_f32[op](n, g_xf + 1, g_rf + 1, (float)p0, (float)p1);
            float *out = g_of + 1;
            if (inplace) { /* out == x */
                memcpy(g_of + 1, g_xf + 1, (size_t)n * sizeof(float));
                t->unary_f32[op](n, g_of + 1, g_of + 1, (float)p0, (float)p1);
            } else {
                t->unary_f32[op](n, g_xf + 1, out, (float)p0, (float)p1);
            }
            int64_t b = first_bad_f32(out, g_rf + 1, n, tol ? TOL_ULP_F32 : 0);
            for (int64_t i = 0; i < n && tol; i++) {
                double pair[2] = { out[i], g_rf[1 + i] };
                track_ulp(pair, pair + 1, 1, 0, op);
            }
            report(b >= 0, "unary_f32", k_unary_names[op], n, inplace ? " in-place" : "", b,
                   b >= 0 ? out[b] : 0, b >= 0 ? g_rf[1 + b] : 0);
        }
    }
    if (t->unary_f64[op] && t->unary_f64[op] != c->unary_f64[op]) {
        fill_inputs(op, n);
        reset_outputs();
        c->unary_f64[op](n, g_xd + 1, g_rd + 1, p0, p1);
        t->unary_f64[op](n, g_xd + 1, g_od + 1, p0, p1);
        int64_t b = first_bad_f64(g_od + 1, g_rd + 1, n, tol ? TOL_ULP_F64 : 0);
        if (tol)
            track_ulp(g_od + 1, g_rd + 1, n, 1, op);
        report(b >= 0, "unary_f64", k_unary_names[op], n, "", b, b >= 0 ? g_od[1 + b] : 0,
               b >= 0 ? g_rd[1 + b] : 0);
    }
}

static void check_binary(const tg_simd_table *t, const tg_simd_table *c, int op, int64_t n)
{
    char variant[32];
    for (int s = 0; s < 4; s++) {
        int64_t sa = s & 1, sb = s >> 1;
        snprintf(variant, sizeof variant, " sa=%d sb=%d", (int)sa, (int)sb);
        if (t->binary_f32[op] && t->binary_f32[op] != c->binary_f32[op]) {
            fill_inputs(-1, n);
            reset_outputs();
            c->binary_f32[op](n, g_xf + 1, sa, g_yf + 1, sb, g_rf + 1);
            t->binary_f32[op](n, g_xf + 1, sa, g_yf + 1, sb, g_of + 1);
            int64_t b = first_bad_f32(g_of + 1, g_rf + 1, n, 0);
            report(b >= 0, "binary_f32", k_binary_names[op], n, variant, b,
                   b >= 0 ? g_of[1 + b] : 0, b >= 0 ? g_rf[1 + b] : 0);
        }
        if (t->binary_f64[op] && t->binary_f64[op] != c->binary_f64[op]) {
            fill_inputs(-1, n);
            reset_outputs();
            c->binary_f64[op](n, g_xd + 1, sa, g_yd + 1, sb, g_rd + 1);
            t->binary_f64[op](n, g_xd + 1, sa, g_yd + 1, sb, g_od + 1);
            int64_t b = first_bad_f64(g_od + 1, g_rd + 1, n, 0);
            report(b >= 0, "binary_f64", k_binary_names[op], n, variant, b,
                   b >= 0 ? g_od[1 + b] : 0, b >= 0 ? g_rd[1 + b] : 0);
        }
    }
    /* out aliasing a at the same positions */
    if (t->binary_f32[op] && t->binary_f32[op] != c->binary_f32[op]) {
        fill_inputs(-1, n);
        reset_outputs();
        c->binary_f32[op](n, g_xf + 1, 1, g_yf + 1, 1, g_rf + 1);
        memcpy(g_of + 1, g_xf + 1, (size_t)n * sizeof(float));
        t->binary_f32[op](n, g_of + 1, 1, g_yf + 1, 1, g_of + 1);
        int64_t b = first_bad_f32(g_of + 1, g_rf + 1, n, 0);
        report(b >= 0, "binary_f32", k_binary_names[op], n, " in-place", b,
               b >= 0 ? g_of[1 + b] : 0, b >= 0 ? g_rf[1 + b] : 0);
    }
}

/* Finite input (specials = 0) or with NaN and inf mixed in (specials = 1). */
static void check_reductions(const tg_simd_table *t, const tg_simd_table *c, int64_t n,
                             int specials)
{
    const char *v = specials ? " specials" : "";
    fill_inputs(specials ? -1 : TG_UN_TANH, n);
    for (int64_t i = 0; i < n && !specials; i++) /* no specials: replace them */
        if (!isfinite(g_xd[1 + i]) || !isfinite(g_xf[1 + i]))
            g_xd[1 + i] = 0.5, g_xf[1 + i] = 0.5f;
    double af = 0, ad = 0;
    for (int64_t i = 0; i < n; i++)
        af += fabs(g_xf[1 + i]), ad += fabs(g_xd[1 + i]);
    if (t->sum_f32 != c->sum_f32) {
        double got = t->sum_f32(n, g_xf + 1), want = c->sum_f32(n, g_xf + 1);
        int bad = (isnan(got) || isnan(want) || isinf(want)) ? mismatch(got, want, 1, 0)
                                                             : fabs(got - want) > 1e-12 * af;
        report(bad, "sum_f32", "sum", n, v, -1, got, want);
    }
    if (t->sum_f64 != c->sum_f64) {
        double got = t->sum_f64(n, g_xd + 1), want = c->sum_f64(n, g_xd + 1);
        int bad = (isnan(got) || isnan(want) || isinf(want))
                      ? mismatch(got, want, 1, 0)
                      : fabs(got - want) > (double)(n + 1) * DBL_EPSILON * ad;
        report(bad, "sum_f64", "sum", n, v, -1, got, want);
    }
    if (n == 0)
        return;
#define CHECK_MINMAX(fn, buf, is_f64)                                                   \
    if (t->fn != c->fn) {                                                               \
        double got = t->fn(n, buf + 1), want = c->fn(n, buf + 1);                       \
        report(mismatch(got, want, is_f64, 0), #fn, #fn, n, v, -1, got, want);          \
    }
    CHECK_MINMAX(max_f32, g_xf, 0)
    CHECK_MINMAX(min_f32, g_xf, 0)
    CHECK_MINMAX(max_f64, g_xd, 1)
    CHECK_MINMAX(min_f64, g_xd, 1)
#undef CHECK_MINMAX
}

static void check_axpy(const tg_simd_table *t, const tg_simd_table *c, int64_t n)
{
    fill_inputs(-1, n);
    if (t->axpy_f32 != c->axpy_f32) {
        memcpy(g_rf, g_yf, sizeof g_yf);
        memcpy(g_of, g_yf, sizeof g_yf);
        c->axpy_f32(n, 0.37f, g_xf + 1, g_rf + 1);
        t->axpy_f32(n, 0.37f, g_xf + 1, g_of + 1);
        int64_t b = first_bad_f32(g_of + 1, g_rf + 1, n, 0);
        report(b >= 0, "axpy_f32", "axpy", n, "", b, b >= 0 ? g_of[1 + b] : 0,
               b >= 0 ? g_rf[1 + b] : 0);
    }
    if (t->axpy_f64 != c->axpy_f64) {
        memcpy(g_rd, g_yd, sizeof g_yd);
        memcpy(g_od, g_yd, sizeof g_yd);
        c->axpy_f64(n, 0.37, g_xd + 1, g_rd + 1);
        t->axpy_f64(n, 0.37, g_xd + 1, g_od + 1);
        int64_t b = first_bad_f64(g_od + 1, g_rd + 1, n, 0);
        report(b >= 0, "axpy_f64", "axpy", n, "", b, b >= 0 ? g_od[1 + b] : 0,
               b >= 0 ? g_rd[1 + b] : 0);
    }
}

/* ---------------------------------------------------------------- bench */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define BENCH_N 4096
#define BENCH_REPS 2000

/* ns per element of a call into var: best of 5 runs of BENCH_REPS calls. */
#define TIME_NS(var, call)                                                               \
    do {                                                                                 \
        var = 1e30;                                                                      \
        for (int run_ = 0; run_ < 5; run_++) {                                           \
            double t0_ = now_s();                                                        \
            for (int r_ = 0; r_ < BENCH_REPS; r_++) {                                    \
                call;                                                                    \
                __asm__ volatile("" ::: "memory");                                       \
            }                                                                            \
            double dt_ = (now_s() - t0_) / BENCH_REPS / BENCH_N * 1e9;                   \
            var = dt_ < var ? dt_ : var;                                                 \
        }                                                                                \
    } while (0)

static void bench_line(const char *kind, const char *op, double tc, double ts)
{
    printf("  %-10s %-11s %7.3f ns/elem  (C %7.3f)  %6.1fx\n", kind, op, ts, tc, tc / ts);
}

static void bench(const tg_simd_table *t, const tg_simd_table *c)
{
    printf("bench %s, n = %d:\n", t->name, BENCH_N);
    volatile double sink = 0;
    for (int op = 0; op < TG_UN_COUNT; op++) {
        if (!t->unary_f32[op] || t->unary_f32[op] == c->unary_f32[op])
            continue;
        fill_inputs(op, BENCH_N);
        for (int i = 1; i <= BENCH_N; i++) /* finite input: the timing of normal data */
            if (!isfinite(g_xf[i]) || g_xf[i] == 0)
                g_xf[i] = 0.5f;
        double tc, ts;
        TIME_NS(tc, c->unary_f32[op](BENCH_N, g_xf + 1, g_of + 1, 0.25f, 0.5f));
        TIME_NS(ts, t->unary_f32[op](BENCH_N, g_xf + 1, g_of + 1, 0.25f, 0.5f));
        bench_line("unary_f32", k_unary_names[op], tc, ts);
    }
    for (int op = 0; op < TG_BIN_FIRST_CMP; op++) {
        if (!t->binary_f32[op] || t->binary_f32[op] == c->binary_f32[op])
            continue;
        double tc, ts;
        TIME_NS(tc, c->binary_f32[op](BENCH_N, g_xf + 1, 1, g_yf + 1, 1, g_of + 1));
        TIME_NS(ts, t->binary_f32[op](BENCH_N, g_xf + 1, 1, g_yf + 1, 1, g_of + 1));
        bench_line("binary_f32", k_binary_names[op], tc, ts);
    }
    double tc, ts;
    TIME_NS(tc, sink += c->sum_f32(BENCH_N, g_xf + 1));
    TIME_NS(ts, sink += t->sum_f32(BENCH_N, g_xf + 1));
    bench_line("reduce", "sum_f32", tc, ts);
    TIME_NS(tc, sink += c->max_f32(BENCH_N, g_xf + 1));
    TIME_NS(ts, sink += t->max_f32(BENCH_N, g_xf + 1));
    bench_line("reduce", "max_f32", tc, ts);
    TIME_NS(tc, c->axpy_f32(BENCH_N, 1e-3f, g_xf + 1, g_of + 1));
    TIME_NS(ts, t->axpy_f32(BENCH_N, 1e-3f, g_xf + 1, g_of + 1));
    bench_line("axpy", "axpy_f32", tc, ts);
    (void)sink;
}

static const char *const k_level_names[] = { "c", "avx2", "avx512" };
#define NLEVELS ((int)(sizeof k_level_names / sizeof k_level_names[0]))

/* Checks one level against the C twins; returns how many kernels it overrides. */
static int check_level(const tg_simd_table *t, const tg_simd_table *c, int do_bench)
{
    g_level = t->name;
    int before = g_passed + g_failed;
    for (int si = 0; si < NSIZES; si++) {
        int64_t n = k_sizes[si];
        for (int op = 0; op < TG_UN_COUNT; op++)
            check_unary(t, c, op, n);
        for (int op = 0; op < TG_BIN_FIRST_CMP; op++)
            check_binary(t, c, op, n);
        check_reductions(t, c, n, 0);
        check_reductions(t, c, n, 1);
        check_axpy(t, c, n);
    }
    if (do_bench)
        bench(t, c);
    return g_passed + g_failed - before;
}

/* Usage: test_simd [--level avx2|avx512] [--bench]. With --level, only that level is
 * checked, and the program exits 77 (meson's "skipped") if this CPU or build lacks it;
 * without, every level the CPU has. A level that overrides no kernel fails: it would
 * otherwise pass without checking anything. */
int main(int argc, char **argv)
{
    int do_bench = 0, only = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bench") == 0) {
            do_bench = 1;
        } else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            for (int l = 1; l < NLEVELS; l++) /* level 0 is the C reference itself */
                if (strcmp(name, k_level_names[l]) == 0)
                    only = l;
            if (only < 0) {
                fprintf(stderr, "test_simd: unknown level \"%s\" (expected avx2 or avx512)\n", name);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: test_simd [--level avx2|avx512] [--bench]\n");
            return 2;
        }
    }
    const tg_simd_table *c = tg_simd_level(0);
    int best = 0;
    for (int l = 0; l < NLEVELS; l++)
        if (tg_simd_level(l))
            best = l;
    printf("simd in use: %s\n", tg_simd()->name);
    /* the library runs the best level this CPU has */
    report(tg_simd() != tg_simd_level(best), "dispatch", "best level", 0, "", -1, 0, 0);
    if (only >= 0 && !tg_simd_level(only)) {
        printf("skipped: level %s is not available on this CPU or in this build\n", k_level_names[only]);
        return 77;
    }
    for (int level = 1; level < NLEVELS; level++) {
        if (only >= 0 && level != only)
            continue;
        const tg_simd_table *t = tg_simd_level(level);
        if (!t) {
            printf("level %s: not available on this CPU\n", k_level_names[level]);
            continue;
        }
        if (strcmp(t->name, k_level_names[level]) != 0)
            report(1, "table", "name", 0, "", -1, 0, 0);
        if (check_level(t, c, do_bench) == 0) {
            printf("FAIL level %s overrides no kernel: nothing was checked\n", t->name);
            g_failed++;
        }
    }
    printf("largest error vs libm (ulp, tolerance %d f32 / %d f64):", TOL_ULP_F32, TOL_ULP_F64);
    for (int op = 0; op < TG_UN_COUNT; op++)
        if (is_transcendental(op))
            printf(" %s %lld/%lld", k_unary_names[op], (long long)g_max_ulp[0][op],
                   (long long)g_max_ulp[1][op]);
    printf("\n%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
