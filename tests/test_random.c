/* The random generators against an independent Philox-4x32-10 written here, and their
 * statistics. The test's Philox is checked first against Random123's known-answer
 * vectors (kat_vectors, philox4x32 10); it shares no code with lib/.
 *
 * The contract checked (tapegrad.h, lib/cpu/kernels_index.c and the tg_random kernel):
 *   - key (k0, k1) = (low, high 32 bits of the seed given to tg_manual_seed);
 *   - element i (row-major, logical order, whatever the destination's strides) of a call
 *     uses the counter (c0, c1, c2, c3) = (low, high 32 bits of base + i, 0, 0), giving
 *     the words x0..x3; base is 0 after tg_manual_seed and every call advances it by the
 *     number of elements it drew, so consecutive calls continue the stream without
 *     overlap or gap;
 *   - uniform: u = (x0 >> 8) 2^-24 for f32, ((x0 >> 5) 2^26 + (x1 >> 6)) 2^-53 for f64,
 *     in [0, 1); the value is lo + (hi - lo) u (tg_rand: lo 0, hi 1);
 *   - normal (Box-Muller): u1 = ((x2 >> 8) + 1) 2^-24 in (0, 1], u2 = (x3 >> 8) 2^-24,
 *     z = sqrt(-2 ln u1) cos(2 pi u2); the value is mean + std z;
 *   - bernoulli: 1 if (x0 >> 8) 2^-24 < p, else 0, for every dtype.
 * tg_rand and tg_bernoulli must match exactly on every device; values that pass through
 * log/cos or an affine map may differ by the rounding of the device's float arithmetic. */
#include <stdint.h>

#include "harness.h"

/* ------------------------------------------------------------------ the test's Philox */

static uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Philox4x32 with 10 rounds, written from Salmon et al. (SC11), section 3.2. */
static void philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u; /* the Weyl key schedule */
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, x0, &hi0), lo1 = mulhilo(0xCD9E8D57u, x2, &hi1);
        uint32_t y0 = hi1 ^ x1 ^ k0, y1 = lo1, y2 = hi0 ^ x3 ^ k1, y3 = lo0;
        x0 = y0, x1 = y1, x2 = y2, x3 = y3;
    }
    out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;
}

TEST(philox_known_answers) {
    static const struct {
        uint32_t ctr[4], key[2], want[4];
    } kat[] = {
        { { 0, 0, 0, 0 }, { 0, 0 }, { 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u } },
        { { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu }, { 0xffffffffu, 0xffffffffu },
          { 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu } },
        { { 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u }, { 0xa4093822u, 0x299f31d0u },
          { 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u } },
    };
    for (int k = 0; k < 3; k++) {
        uint32_t r[4];
        philox(kat[k].ctr, kat[k].key, r);
        for (int j = 0; j < 4; j++)
            if (r[j] != kat[k].want[j]) FAIL_("vector %d word %d: got 0x%08x, expected 0x%08x", k, j, r[j], kat[k].want[j]);
    }
}

/* ------------------------------------------------------------------ the reference stream */

typedef struct {
    uint64_t seed, base;
} stream;

static void words(const stream *s, uint64_t i, uint32_t x[4]) {
    uint64_t c = s->base + i;
    uint32_t ctr[4] = { (uint32_t)c, (uint32_t)(c >> 32), 0, 0 }, key[2] = { (uint32_t)s->seed, (uint32_t)(s->seed >> 32) };
    philox(ctr, key, x);
}

static double round_dt(tg_dtype dt, double v) { return dt == TG_F32 ? (double)(float)v : v; }

static double unit_uniform(const uint32_t x[4], tg_dtype dt) {
    if (dt == TG_F64) return ((double)(x[0] >> 5) * 67108864.0 + (double)(x[1] >> 6)) * 0x1p-53;
    return (double)(x[0] >> 8) * 0x1p-24;
}

static double std_normal(const uint32_t x[4]) {
    double u1 = ((double)(x[2] >> 8) + 1.0) * 0x1p-24, u2 = (double)(x[3] >> 8) * 0x1p-24;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

enum { K_UNIFORM, K_NORMAL, K_BERNOULLI };

/* The n values a call of kind draws next, advancing the stream; caller frees. */
static double *expected(stream *s, int kind, tg_dtype dt, int64_t n, double p0, double p1) {
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        uint32_t x[4];
        words(s, (uint64_t)i, x);
        if (kind == K_UNIFORM) v[i] = round_dt(dt, p0 + (p1 - p0) * unit_uniform(x, dt));
        else if (kind == K_NORMAL) v[i] = round_dt(dt, p0 + p1 * std_normal(x));
        else v[i] = (double)(x[0] >> 8) * 0x1p-24 < p0 ? 1 : 0;
    }
    s->base += (uint64_t)n;
    return v;
}

/* Compares t (read in row-major order) with want within tol * (1 + |want|); prints the
 * first mismatch. Returns 1 on failure. */
static int compare(tg_tensor *t, const double *want, int64_t n, double tol, const char *what, int line) {
    double *got = t ? tg_test_values(t) : NULL;
    if (!got || tg_numel(t) != n) {
        fprintf(stderr, "  %s:%d: %s: no values (%s)\n", __FILE__, line, what, tg_last_error());
        free(got);
        return 1;
    }
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])))) bad++, first = first < 0 ? i : first;
    if (bad)
        fprintf(stderr, "  %s:%d: %s: %lld of %lld values differ; first at %lld: got %.17g, expected %.17g\n", __FILE__,
                line, what, (long long)bad, (long long)n, (long long)first, got[first], want[first]);
    free(got);
    return bad != 0;
}
#define COMPARE(t, want, n, tol, what) (*tg_failed_ += compare((t), (want), (n), (tol), (what), __LINE__))

/* Room for the device's float rounding of an affine map or of log/cos (f32 devices may
 * compute in float); far below the distance between two different draws. */
static double tol_of(tg_dtype dt) { return dt == TG_F32 ? 1e-6 : 1e-13; }

/* After tg_manual_seed, consecutive calls of every kind give exactly the values of the
 * stream above, each call starting where the previous one ended. A counter that moved
 * by n - 1 (an overlap) or n + 1 (a gap) shifts every later call. */
TEST(consecutive_calls_give_the_documented_stream) {
    tg_device *dev = tg_test_device();
    const uint64_t seeds[] = { 0, 42, 0x0123456789abcdefull }; /* the last uses the key's high word */
    for (int si = 0; si < 3; si++) {
        stream s = { seeds[si], 0 };
        tg_manual_seed(seeds[si]);
        double *w;
        w = expected(&s, K_UNIFORM, TG_F32, 37, 0, 1);
        COMPARE(tg_rand(TG_F32, TG_SHAPE(37), dev), w, 37, 0, "rand f32 (37)"), free(w);
        w = expected(&s, K_UNIFORM, TG_F32, 1, 0, 1);
        COMPARE(tg_rand(TG_F32, TG_SCALAR_SHAPE, dev), w, 1, 0, "rand f32 0-d"), free(w);
        w = expected(&s, K_UNIFORM, TG_F64, 1000, 0, 1);
        COMPARE(tg_rand(TG_F64, TG_SHAPE(10, 100), dev), w, 1000, 0, "rand f64 (10,100)"), free(w);
        w = expected(&s, K_NORMAL, TG_F32, 5, 0, 1);
        COMPARE(tg_randn(TG_F32, TG_SHAPE(5), dev), w, 5, tol_of(TG_F32), "randn f32 (5)"), free(w);
        w = expected(&s, K_NORMAL, TG_F64, 1001, 0, 1);
        COMPARE(tg_randn(TG_F64, TG_SHAPE(7, 11, 13), dev), w, 1001, tol_of(TG_F64), "randn f64 (7,11,13)"), free(w);
        w = expected(&s, K_BERNOULLI, TG_U8, 64, 0.3, 0);
        COMPARE(tg_bernoulli(TG_U8, TG_SHAPE(64), 0.3, dev), w, 64, 0, "bernoulli u8 p=0.3"), free(w);
        w = expected(&s, K_BERNOULLI, TG_F32, 50, 0.7, 0);
        COMPARE(tg_bernoulli(TG_F32, TG_SHAPE(50), 0.7, dev), w, 50, 0, "bernoulli f32 p=0.7"), free(w);
        w = expected(&s, K_BERNOULLI, TG_I32, 20, 0.5, 0);
        COMPARE(tg_bernoulli(TG_I32, TG_SHAPE(4, 5), 0.5, dev), w, 20, 0, "bernoulli i32 p=0.5"), free(w);
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            tg_tensor *t = tg_zeros(dt, TG_SHAPE(6, 9), dev);
            w = expected(&s, K_UNIFORM, dt, 54, -2, 3);
            CHECK(tg_uniform_(t, -2, 3) == TG_OK);
            COMPARE(t, w, 54, tol_of(dt), "uniform_(-2, 3)"), free(w);
            w = expected(&s, K_NORMAL, dt, 54, 5, 0.5);
            CHECK(tg_normal_(t, 5, 0.5) == TG_OK);
            COMPARE(t, w, 54, tol_of(dt), "normal_(5, 0.5)"), free(w);
        }
        w = expected(&s, K_UNIFORM, TG_F32, 3, 0, 1);
        COMPARE(tg_rand(TG_F32, TG_SHAPE(3), dev), w, 3, 0, "rand f32 after the fills"), free(w);
    }
}

/* A strided or transposed destination gets the stream in its logical (row-major)
 * order, and its other elements are left alone. */
TEST(fills_into_views_follow_logical_order) {
    tg_device *dev = tg_test_device();
    stream s = { 7, 0 };
    tg_manual_seed(7);
    tg_tensor *base = tg_full(TG_F64, TG_SHAPE(5, 8), -9, dev);
    tg_tensor *v = tg_transpose(tg_slice(base, 1, 1, INT64_MAX, 2), 0, 1); /* (4, 5): base[c][2r+1] */
    double *w = expected(&s, K_UNIFORM, TG_F64, 20, 1, 2);
    CHECK(tg_uniform_(v, 1, 2) == TG_OK);
    COMPARE(v, w, 20, tol_of(TG_F64), "uniform_ into a transposed strided view");
    double want_base[40];
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 8; c++) want_base[r * 8 + c] = c % 2 ? w[(c / 2) * 5 + r] : -9;
    COMPARE(base, want_base, 40, tol_of(TG_F64), "the base around the view");
    free(w);
    w = expected(&s, K_NORMAL, TG_F64, 20, 0, 1);
    CHECK(tg_normal_(tg_flip(v, TG_AXES(1)), 0, 1) == TG_OK);
    COMPARE(tg_flip(v, TG_AXES(1)), w, 20, tol_of(TG_F64), "normal_ into a flipped view");
    free(w);
}

/* ------------------------------------------------------------------ statistics */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The Kolmogorov-Smirnov statistic of v (sorted in place) against cdf. */
static double ks_statistic(double *v, int64_t n, double (*cdf)(double, const double *), const double *par) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double f = cdf(v[i], par), lo = f - (double)i / (double)n, hi = (double)(i + 1) / (double)n - f;
        d = fmax(d, fmax(lo, hi));
    }
    return d;
}

static double cdf_uniform(double x, const double *p) { return x <= p[0] ? 0 : x >= p[1] ? 1 : (x - p[0]) / (p[1] - p[0]); }
static double cdf_normal(double x, const double *p) { return 0.5 * erfc(-(x - p[0]) / (p[1] * M_SQRT2)); }

typedef struct {
    double mean, var, lag1; /* lag1: the correlation of v[i] with v[i+1] */
} moments;

static moments moments_of(const double *v, int64_t n) {
    moments m = { 0, 0, 0 };
    for (int64_t i = 0; i < n; i++) m.mean += v[i];
    m.mean /= (double)n;
    double c = 0;
    for (int64_t i = 0; i < n; i++) {
        m.var += (v[i] - m.mean) * (v[i] - m.mean);
        if (i + 1 < n) c += (v[i] - m.mean) * (v[i + 1] - m.mean);
    }
    m.lag1 = c / m.var;
    m.var /= (double)(n - 1);
    return m;
}

#define N_STAT 200000
/* KS critical value at significance 1e-3 is 1.95 / sqrt(n); moment bounds are five
 * standard errors. The seeds are fixed, so a pass is reproducible, not lucky. */
static void check_distribution(int *tg_failed_, const char *what, tg_tensor *t, int normal, double a, double b) {
    double *v = t ? tg_test_values(t) : NULL;
    if (!v) {
        FAIL_("%s: no values (%s)", what, tg_last_error());
        return;
    }
    const double n = N_STAT, se = 1 / sqrt(n);
    moments m = moments_of(v, N_STAT);
    double mean = normal ? a : (a + b) / 2, var = normal ? b * b : (b - a) * (b - a) / 12;
    double kurt = normal ? 2 : 0.8; /* n var(s^2) / var^2 = 2 + excess kurtosis: 2 normal, 0.8 uniform */
    if (!(fabs(m.mean - mean) <= 5 * sqrt(var) * se)) FAIL_("%s: mean %.6g, expected %.6g", what, m.mean, mean);
    if (!(fabs(m.var - var) <= 5 * var * sqrt(kurt) * se)) FAIL_("%s: variance %.6g, expected %.6g", what, m.var, var);
    if (!(fabs(m.lag1) <= 5 * se)) FAIL_("%s: lag-1 correlation %.4g", what, m.lag1);
    int64_t outside = 0;
    for (int64_t i = 0; i < N_STAT && !normal; i++) outside += !(v[i] >= a && v[i] < b);
    if (outside) FAIL_("%s: %lld values outside [%g, %g)", what, (long long)outside, a, b);
    double par[2] = { a, b };
    double d = ks_statistic(v, N_STAT, normal ? cdf_normal : cdf_uniform, par);
    if (!(d <= 1.95 * se)) FAIL_("%s: Kolmogorov-Smirnov D = %.5f > %.5f", what, d, 1.95 * se);
    free(v);
}

TEST(distributions_statistics) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        char what[64];
        tg_manual_seed(2024 + (uint64_t)d);
        snprintf(what, sizeof what, "rand %s", tg_dtype_name(dt));
        check_distribution(tg_failed_, what, tg_rand(dt, TG_SHAPE(N_STAT), dev), 0, 0, 1);
        snprintf(what, sizeof what, "randn %s", tg_dtype_name(dt));
        check_distribution(tg_failed_, what, tg_randn(dt, TG_SHAPE(400, N_STAT / 400), dev), 1, 0, 1);
        tg_tensor *t = tg_empty(dt, TG_SHAPE(N_STAT), dev);
        snprintf(what, sizeof what, "uniform_(-2, 3) %s", tg_dtype_name(dt));
        CHECK(tg_uniform_(t, -2, 3) == TG_OK);
        check_distribution(tg_failed_, what, t, 0, -2, 3);
        snprintf(what, sizeof what, "normal_(5, 2) %s", tg_dtype_name(dt));
        CHECK(tg_normal_(t, 5, 2) == TG_OK);
        check_distribution(tg_failed_, what, t, 1, 5, 2);
        /* into a transposed view: the same distribution */
        tg_tensor *tv = tg_transpose(tg_empty(dt, TG_SHAPE(N_STAT / 500, 500), dev), 0, 1);
        snprintf(what, sizeof what, "normal_(-1, 0.5) transposed %s", tg_dtype_name(dt));
        CHECK(tg_normal_(tv, -1, 0.5) == TG_OK);
        check_distribution(tg_failed_, what, tv, 1, -1, 0.5);
    }
}

/* Bernoulli: the proportion of ones within five standard errors, only 0 and 1, runs of
 * equal values as many as independence predicts (Wald-Wolfowitz), for several p. */
TEST(bernoulli_statistics) {
    tg_device *dev = tg_test_device();
    const double ps[] = { 0.05, 0.3, 0.5, 0.9 };
    const tg_dtype dts[] = { TG_U8, TG_F32, TG_F64, TG_I32 };
    tg_manual_seed(31);
    for (int k = 0; k < 4; k++) {
        double p = ps[k], *v = tg_test_values(tg_bernoulli(dts[k], TG_SHAPE(N_STAT), p, dev));
        if (!v) {
            FAIL_("bernoulli p=%g: no values (%s)", p, tg_last_error());
            continue;
        }
        int64_t ones = 0, other = 0, runs = 1;
        for (int64_t i = 0; i < N_STAT; i++) {
            ones += v[i] == 1;
            other += v[i] != 0 && v[i] != 1;
            runs += i > 0 && v[i] != v[i - 1];
        }
        double n = N_STAT, phat = (double)ones / n, se = sqrt(p * (1 - p) / n);
        if (other) FAIL_("bernoulli p=%g: %lld values are neither 0 nor 1", p, (long long)other);
        if (!(fabs(phat - p) <= 5 * se)) FAIL_("bernoulli p=%g: proportion %.5f", p, phat);
        double n1 = (double)ones, n0 = n - n1, mu = 2 * n1 * n0 / n + 1;
        double sr = sqrt((mu - 1) * (mu - 2) / (n - 1));
        if (!(fabs((double)runs - mu) <= 5 * sr)) FAIL_("bernoulli p=%g: %lld runs, expected %.0f +- %.0f", p, (long long)runs, mu, sr);
        free(v);
    }
    /* p = 0 and p = 1 are certain */
    CHECK_NEAR(tg_item(tg_sum(tg_bernoulli(TG_F32, TG_SHAPE(1000), 0.0, dev), TG_ALL, false)), 0, 0);
    CHECK_NEAR(tg_item(tg_sum(tg_bernoulli(TG_F32, TG_SHAPE(1000), 1.0, dev), TG_ALL, false)), 1000, 0);
}

/* Two consecutive calls are independent: the correlation of equal positions and of
 * positions one apart is near zero (a counter that did not advance, or advanced by one
 * per call, would make one of them 1). */
TEST(consecutive_calls_are_uncorrelated) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(77);
    double *a = tg_test_values(tg_rand(TG_F64, TG_SHAPE(N_STAT), dev));
    double *b = tg_test_values(tg_rand(TG_F64, TG_SHAPE(N_STAT), dev));
    CHECK(a && b);
    if (!a || !b) return;
    for (int shift = -1; shift <= 1; shift++) {
        double sab = 0, saa = 0, sbb = 0;
        int64_t cnt = 0;
        for (int64_t i = 1; i + 1 < N_STAT; i++, cnt++) {
            double x = a[i] - 0.5, y = b[i + shift] - 0.5;
            sab += x * y, saa += x * x, sbb += y * y;
        }
        double r = sab / sqrt(saa * sbb);
        if (!(fabs(r) <= 5 / sqrt((double)cnt))) FAIL_("calls 1 and 2 at shift %d: correlation %.4g", shift, r);
    }
    free(a), free(b);
}

TG_TEST_MAIN(&tg_case_philox_known_answers, &tg_case_consecutive_calls_give_the_documented_stream,
             &tg_case_fills_into_views_follow_logical_order, &tg_case_distributions_statistics,
             &tg_case_bernoulli_statistics, &tg_case_consecutive_calls_are_uncorrelated)
