/* Initialisers against PyTorch's formulas: fans (exact), gains (exact), bounds and
 * moments of the uniform and normal fills, orthogonality, the truncated normal's
 * moments, Linear's default init, and seeding. */
#include "harness.h"

static void moments(tg_tensor *t, double *mean, double *var, double *lo, double *hi) {
    double *v = tg_test_values(t);
    int64_t n = tg_numel(t);
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
    }
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *var = s2 / (double)n;
    free(v);
}

TEST(fans_and_gains) {
    tg_device *dev = tg_test_device();
    int64_t fi = 0, fo = 0;
    CHECK(tg_init_fans(tg_empty(TG_F32, TG_SHAPE(3, 5), dev), &fi, &fo) == TG_OK && fi == 5 && fo == 3);
    CHECK(tg_init_fans(tg_empty(TG_F32, TG_SHAPE(8, 4, 3, 5), dev), &fi, &fo) == TG_OK && fi == 60 && fo == 120);
    CHECK(tg_init_fans(tg_empty(TG_F32, TG_SHAPE(8, 4, 7), dev), &fi, &fo) == TG_OK && fi == 28 && fo == 56);
    CHECK_ERROR(tg_init_fans(tg_empty(TG_F32, TG_SHAPE(8), dev), &fi, &fo),
                "tg_init_fans: fan in and fan out need at least 2 axes, got 1");
    CHECK_ERROR(tg_init_kaiming_uniform_(tg_empty(TG_F32, TG_SHAPE(8), dev), NULL),
                "tg_init_kaiming_uniform_: fan in and fan out need at least 2 axes, got 1");
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_LINEAR, 0) == 1);
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_SIGMOID, 0) == 1);
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_TANH, 0) == 5.0 / 3);
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_RELU, 0) == sqrt(2.0));
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_SELU, 0) == 0.75);
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_LEAKY_RELU, 0.01) == sqrt(2.0 / (1 + 0.0001)));
    CHECK(tg_init_calculate_gain(TG_NONLINEARITY_LEAKY_RELU, sqrt(5.0)) == sqrt(2.0 / 6));
}

/* A uniform fill: inside the bound, reaching near it, with variance bound^2 / 3. */
static void check_uniform(int *tg_failed_, tg_tensor *t, double bound) {
    double mean, var, lo, hi;
    moments(t, &mean, &var, &lo, &hi);
    CHECK(lo >= -bound && hi <= bound && hi > 0.99 * bound && lo < -0.99 * bound);
    CHECK_NEAR(mean, 0, 0.02 * bound);
    CHECK_NEAR(var, bound * bound / 3, 0.03 * bound * bound / 3);
}

static void check_normal(int *tg_failed_, tg_tensor *t, double mean_want, double std) {
    double mean, var, lo, hi;
    moments(t, &mean, &var, &lo, &hi);
    CHECK_NEAR(mean, mean_want, 0.02 * std);
    CHECK_NEAR(sqrt(var), std, 0.02 * std);
}

TEST(kaiming_and_xavier) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(3);
    tg_tensor *t = tg_empty(TG_F64, TG_SHAPE(128, 64, 3, 3), dev); /* a conv weight: fan_in 576, fan_out 1152 */
    CHECK(tg_init_kaiming_uniform_(t, NULL) == TG_OK); /* leaky_relu with a = 0: gain sqrt 2 */
    check_uniform(tg_failed_, t, sqrt(3.0) * sqrt(2.0) / sqrt(576.0));
    CHECK(tg_init_kaiming_uniform_(t, &(tg_kaiming_opts){ .a = sqrt(5.0) }) == TG_OK); /* PyTorch's Linear/Conv default */
    check_uniform(tg_failed_, t, 1 / sqrt(576.0));
    CHECK(tg_init_kaiming_normal_(t, &(tg_kaiming_opts){ .mode = TG_FAN_OUT, .nonlinearity = TG_NONLINEARITY_RELU }) == TG_OK);
    check_normal(tg_failed_, t, 0, sqrt(2.0) / sqrt(1152.0));
    CHECK(tg_init_xavier_uniform_(t, 2) == TG_OK);
    check_uniform(tg_failed_, t, 2 * sqrt(6.0 / (576 + 1152)));
    CHECK(tg_init_xavier_normal_(t, 1) == TG_OK);
    check_normal(tg_failed_, t, 0, sqrt(2.0 / (576 + 1152)));
    CHECK(tg_init_normal_(t, 3, 0.5) == TG_OK);
    check_normal(tg_failed_, t, 3, 0.5);
    tg_tensor *p = tg_param(tg_zeros(TG_F32, TG_SHAPE(4, 4), dev)); /* parameters are filled too */
    CHECK(tg_init_uniform_(p, -2, 2) == TG_OK && tg_init_constant_(p, 0.25) == TG_OK);
    double mean, var, lo, hi;
    moments(p, &mean, &var, &lo, &hi);
    CHECK(lo == 0.25 && hi == 0.25);
    CHECK(tg_init_ones_(p) == TG_OK && tg_item(tg_sum(p, TG_ALL, false)) == 16);
    CHECK(tg_init_zeros_(p) == TG_OK && tg_item(tg_sum(tg_abs(p), TG_ALL, false)) == 0);
}

TEST(linear_default_init) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(5);
    tg_module *l = tg_linear_new(400, 300, NULL, dev);
    check_uniform(tg_failed_, tg_module_get_param(l, "weight"), 1 / sqrt(400.0));
    double mean, var, lo, hi;
    moments(tg_module_get_param(l, "bias"), &mean, &var, &lo, &hi);
    CHECK(lo >= -0.05 && hi <= 0.05 && hi > 0.045);
    tg_module_free(l);
}

/* Q^T Q = gain^2 I for a tall matrix, Q Q^T for a wide one. */
static void check_orthogonal(int *tg_failed_, tg_tensor *t, double gain) {
    int64_t rows = tg_size(t, 0), cols = tg_numel(t) / rows;
    bool wide = rows < cols;
    double *q = tg_test_values(t);
    int64_t k = wide ? rows : cols, len = wide ? cols : rows;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double s = 0;
            for (int64_t i = 0; i < len; i++)
                s += wide ? q[a * cols + i] * q[b * cols + i] : q[i * cols + a] * q[i * cols + b];
            CHECK_NEAR(s, a == b ? gain * gain : 0, 1e-6);
        }
    free(q);
}

TEST(orthogonal) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(11);
    tg_tensor *tall = tg_empty(TG_F64, TG_SHAPE(10, 2, 3), dev), *wide = tg_empty(TG_F64, TG_SHAPE(4, 9), dev);
    CHECK(tg_init_orthogonal_(tall, 1.5) == TG_OK);
    check_orthogonal(tg_failed_, tall, 1.5);
    CHECK(tg_init_orthogonal_(wide, 1) == TG_OK);
    check_orthogonal(tg_failed_, wide, 1);
    tg_tensor *sq = tg_empty(TG_F32, TG_SHAPE(16, 16), dev);
    CHECK(tg_init_orthogonal_(sq, 1) == TG_OK);
    double *q = tg_test_values(sq);
    double s = 0;
    for (int i = 0; i < 16; i++) s += q[i] * q[i];
    CHECK_NEAR(s, 1, 1e-5); /* f32 storage */
    free(q);
    CHECK_ERROR(tg_init_orthogonal_(tg_empty(TG_F32, TG_SHAPE(3), dev), 1), "tg_init_orthogonal_: needs at least 2 axes, got 1");
}

static double phi(double x) { return exp(-x * x / 2) / sqrt(2 * M_PI); }
static double Phi(double x) { return (1 + erf(x / sqrt(2.0))) / 2; }

TEST(trunc_normal) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(13);
    double mu = 1, sd = 2, a = -1, b = 2;
    tg_tensor *t = tg_empty(TG_F64, TG_SHAPE(200000), dev);
    CHECK(tg_init_trunc_normal_(t, mu, sd, a, b) == TG_OK);
    double mean, var, lo, hi;
    moments(t, &mean, &var, &lo, &hi);
    double al = (a - mu) / sd, be = (b - mu) / sd, z = Phi(be) - Phi(al);
    double m_want = mu + sd * (phi(al) - phi(be)) / z;
    double v_want = sd * sd * (1 + (al * phi(al) - be * phi(be)) / z - pow((phi(al) - phi(be)) / z, 2));
    CHECK(lo >= a && hi <= b && lo < a + 0.01 && hi > b - 0.01);
    CHECK_NEAR(mean, m_want, 0.01);
    CHECK_NEAR(var, v_want, 0.02 * v_want);
    CHECK_ERROR(tg_init_trunc_normal_(t, 0, 1, 2, -2),
                "tg_init_trunc_normal_: needs a < b and std >= 0, got a 2, b -2, std 1");
}

TEST(seeded_and_device_independent) {
    tg_device *dev = tg_test_device(), *cpu = tg_device_get("cpu");
    tg_tensor *a = tg_empty(TG_F32, TG_SHAPE(5, 7), dev), *b = tg_empty(TG_F32, TG_SHAPE(5, 7), cpu);
    tg_manual_seed(99);
    CHECK(tg_init_kaiming_normal_(a, NULL) == TG_OK && tg_init_trunc_normal_(a, 0, 1, -2, 2) == TG_OK);
    tg_manual_seed(99);
    CHECK(tg_init_kaiming_normal_(b, NULL) == TG_OK && tg_init_trunc_normal_(b, 0, 1, -2, 2) == TG_OK);
    double *va = tg_test_values(a), *vb = tg_test_values(b);
    for (int i = 0; i < 35; i++) CHECK_NEAR(va[i], vb[i], 1e-6);
    free(va), free(vb);
}

TG_TEST_MAIN(&tg_case_fans_and_gains, &tg_case_kaiming_and_xavier, &tg_case_linear_default_init, &tg_case_orthogonal,
             &tg_case_trunc_normal, &tg_case_seeded_and_device_independent)
