/* PyTorch's torch.nn.init: fan computation, gains, and in-place fills drawing from the
 * Philox generator. Uniform and normal fills run on the tensor's device; trunc_normal
 * (an erfinv) and orthogonal (a QR) draw on the CPU, compute on the host in f64 and
 * copy the result in, since neither is worth an op of its own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/nn/module-impl.h"

static bool writable(const tg_tensor *t, const char *api) {
    if (t) return true;
    if (!tg_last_status()) tg_error(TG_ERR_INVALID, "%s: tensor is NULL", api);
    return false;
}

double tg_init_calculate_gain(tg_nonlinearity nl, double param) {
    switch (nl) {
    case TG_NONLINEARITY_LEAKY_RELU: return sqrt(2.0 / (1 + param * param));
    case TG_NONLINEARITY_LINEAR:
    case TG_NONLINEARITY_SIGMOID: return 1;
    case TG_NONLINEARITY_TANH: return 5.0 / 3;
    case TG_NONLINEARITY_RELU: return sqrt(2.0);
    case TG_NONLINEARITY_SELU: return 3.0 / 4;
    }
    tg_error(TG_ERR_INVALID, "tg_init_calculate_gain: unknown nonlinearity %d", (int)nl);
    return NAN;
}

tg_status tg_init_fans(const tg_tensor *t, int64_t *fan_in, int64_t *fan_out) {
    if (!writable(t, "tg_init_fans")) return tg_last_status();
    if (tg_ndim(t) < 2)
        return tg_error(TG_ERR_SHAPE, "tg_init_fans: fan in and fan out need at least 2 axes, got %d", tg_ndim(t));
    int64_t rf = 1;
    for (int i = 2; i < tg_ndim(t); i++) rf *= tg_size(t, i);
    if (fan_in) *fan_in = tg_size(t, 1) * rf;
    if (fan_out) *fan_out = tg_size(t, 0) * rf;
    return TG_OK;
}

/* Fills run with grad mode off, so they also take parameters. */
static tg_status fill_uniform(tg_tensor *t, double lo, double hi) {
    bool prev = tg_set_grad_enabled(false);
    tg_status st = tg_uniform_(t, lo, hi);
    tg_set_grad_enabled(prev);
    return st;
}

static tg_status fill_normal(tg_tensor *t, double mean, double std) {
    bool prev = tg_set_grad_enabled(false);
    tg_status st = tg_normal_(t, mean, std);
    tg_set_grad_enabled(prev);
    return st;
}

tg_status tg_init_uniform_(tg_tensor *t, double a, double b) {
    TG_API_ENTER("tg_init_uniform_");
    return writable(t, "tg_init_uniform_") ? fill_uniform(t, a, b) : tg_last_status();
}

tg_status tg_init_normal_(tg_tensor *t, double mean, double std) {
    TG_API_ENTER("tg_init_normal_");
    return writable(t, "tg_init_normal_") ? fill_normal(t, mean, std) : tg_last_status();
}

tg_status tg_init_constant_(tg_tensor *t, double value) {
    TG_API_ENTER("tg_init_constant_");
    if (!writable(t, "tg_init_constant_")) return tg_last_status();
    bool prev = tg_set_grad_enabled(false);
    tg_status st = tg_fill_(t, value);
    tg_set_grad_enabled(prev);
    return st;
}

tg_status tg_init_zeros_(tg_tensor *t) { return tg_init_constant_(t, 0); }
tg_status tg_init_ones_(tg_tensor *t) { return tg_init_constant_(t, 1); }

static tg_status kaiming_std(tg_tensor *t, const char *api, const tg_kaiming_opts *opts, double *std) {
    tg_kaiming_opts o = opts ? *opts : (tg_kaiming_opts){ 0 };
    int64_t fi, fo;
    if (!writable(t, api) || tg_init_fans(t, &fi, &fo) != TG_OK) return tg_last_status();
    if ((unsigned)o.mode > TG_FAN_OUT) return tg_error(TG_ERR_INVALID, "%s: unknown fan mode %d", api, (int)o.mode);
    double gain = tg_init_calculate_gain(o.nonlinearity, o.a);
    if (isnan(gain)) return tg_last_status();
    int64_t fan = o.mode == TG_FAN_IN ? fi : fo;
    *std = fan ? gain / sqrt((double)fan) : 0;
    return TG_OK;
}

tg_status tg_init_kaiming_uniform_(tg_tensor *t, const tg_kaiming_opts *opts) {
    TG_API_ENTER("tg_init_kaiming_uniform_");
    double std = 0;
    tg_status st = kaiming_std(t, "tg_init_kaiming_uniform_", opts, &std);
    return st == TG_OK ? fill_uniform(t, -sqrt(3.0) * std, sqrt(3.0) * std) : st;
}

tg_status tg_init_kaiming_normal_(tg_tensor *t, const tg_kaiming_opts *opts) {
    TG_API_ENTER("tg_init_kaiming_normal_");
    double std = 0;
    tg_status st = kaiming_std(t, "tg_init_kaiming_normal_", opts, &std);
    return st == TG_OK ? fill_normal(t, 0, std) : st;
}

static tg_status xavier_std(tg_tensor *t, const char *api, double gain, double *std) {
    int64_t fi, fo;
    if (!writable(t, api) || tg_init_fans(t, &fi, &fo) != TG_OK) return tg_last_status();
    *std = fi + fo ? gain * sqrt(2.0 / (double)(fi + fo)) : 0;
    return TG_OK;
}

tg_status tg_init_xavier_uniform_(tg_tensor *t, double gain) {
    TG_API_ENTER("tg_init_xavier_uniform_");
    double std = 0;
    tg_status st = xavier_std(t, "tg_init_xavier_uniform_", gain, &std);
    return st == TG_OK ? fill_uniform(t, -sqrt(3.0) * std, sqrt(3.0) * std) : st;
}

tg_status tg_init_xavier_normal_(tg_tensor *t, double gain) {
    TG_API_ENTER("tg_init_xavier_normal_");
    double std = 0;
    tg_status st = xavier_std(t, "tg_init_xavier_normal_", gain, &std);
    return st == TG_OK ? fill_normal(t, 0, std) : st;
}

/* ------------------------------------------------------------- host-side fills */

/* n numbers from the generator, uniform in [0, 1) or normal, drawn on the CPU in f64;
 * caller frees. */
static double *draw(int64_t n, bool normal) {
    tg_device *cpu = tg_device_get("cpu");
    tg_tensor *r = normal ? tg_randn(TG_F64, TG_SHAPE(n), cpu) : tg_rand(TG_F64, TG_SHAPE(n), cpu);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!r || !v || tg_copy_to_host(r, v, (size_t)n * sizeof *v) != TG_OK) {
        if (!v) tg_error(TG_ERR_NOMEM, "out of memory");
        free(v);
        return NULL;
    }
    return v;
}

/* Copies n host doubles into t (converting to t's dtype and device). */
static tg_status upload(tg_tensor *t, const double *v) {
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *h = tg_from_f64(v, tg_shape_of(t), tg_device_get("cpu"));
    tg_status st = h ? tg_copy_(t, tg_to(h, tg_device_of(t))) : tg_last_status();
    tg_set_grad_enabled(prev);
    return st;
}

/* erf^-1 by Newton's method on erf from an initial guess (Giles' approximation). */
static double erfinv(double y) {
    if (y <= -1) return -INFINITY;
    if (y >= 1) return INFINITY;
    double w = -log((1 - y) * (1 + y)), x;
    if (w < 5) {
        w -= 2.5;
        x = 2.81022636e-08;
        x = 3.43273939e-07 + x * w, x = -3.5233877e-06 + x * w, x = -4.39150654e-06 + x * w;
        x = 0.00021858087 + x * w, x = -0.00125372503 + x * w, x = -0.00417768164 + x * w;
        x = 0.246640727 + x * w, x = 1.50140941 + x * w;
    } else {
        w = sqrt(w) - 3;
        x = -0.000200214257;
        x = 0.000100950558 + x * w, x = 0.00134934322 + x * w, x = -0.00367342844 + x * w;
        x = 0.00573950773 + x * w, x = -0.0076224613 + x * w, x = 0.00943887047 + x * w;
        x = 1.00167406 + x * w, x = 2.83297682 + x * w;
    }
    x *= y;
    for (int i = 0; i < 3; i++) x -= (erf(x) - y) / (2 / sqrt(M_PI) * exp(-x * x));
    return x;
}

static double norm_cdf(double x) { return (1 + erf(x / sqrt(2.0))) / 2; }

tg_status tg_init_trunc_normal_(tg_tensor *t, double mean, double std, double a, double b) {
    TG_API_ENTER("tg_init_trunc_normal_");
    if (!writable(t, "tg_init_trunc_normal_")) return tg_last_status();
    if (!(a < b) || !(std >= 0))
        return tg_error(TG_ERR_INVALID, "tg_init_trunc_normal_: needs a < b and std >= 0, got a %g, b %g, std %g", a, b, std);
    int64_t n = tg_numel(t);
    double *v = draw(n, false);
    if (!v) return tg_last_status();
    double l = norm_cdf((a - mean) / std), u = norm_cdf((b - mean) / std);
    for (int64_t i = 0; i < n; i++) { /* PyTorch: uniform in [2l-1, 2u-1], erfinv, scale, clamp */
        double x = erfinv(2 * l - 1 + v[i] * (2 * (u - l))) * std * sqrt(2.0) + mean;
        v[i] = x < a ? a : x > b ? b : x;
    }
    tg_status st = upload(t, v);
    free(v);
    return st;
}

/* Householder QR of a (m x n, row-major, m >= n) in place: q (m x n) gets the reduced Q
 * with its columns signed by diag(R), as PyTorch's orthogonal_ does (q *= sign(diag R)). */
static bool householder_q(double *a, int64_t m, int64_t n, double *q) {
    double *vs = calloc((size_t)(m * n), sizeof *vs), *rdiag = calloc((size_t)n, sizeof *rdiag);
    if (!vs || !rdiag) {
        free(vs);
        free(rdiag);
        return false;
    }
    for (int64_t k = 0; k < n; k++) {
        double norm = 0;
        for (int64_t i = k; i < m; i++) norm += a[i * n + k] * a[i * n + k];
        norm = sqrt(norm);
        double alpha = a[k * n + k] > 0 ? -norm : norm, vn = 0, *v = vs + k * m;
        for (int64_t i = k; i < m; i++) v[i] = a[i * n + k];
        v[k] -= alpha;
        for (int64_t i = k; i < m; i++) vn += v[i] * v[i];
        vn = sqrt(vn);
        for (int64_t i = k; i < m && vn > 0; i++) v[i] /= vn;
        for (int64_t j = k; j < n; j++) { /* A[k:, j] -= 2 v (v . A[k:, j]) */
            double dot = 0;
            for (int64_t i = k; i < m; i++) dot += v[i] * a[i * n + j];
            for (int64_t i = k; i < m; i++) a[i * n + j] -= 2 * v[i] * dot;
        }
        rdiag[k] = a[k * n + k];
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) q[i * n + j] = i == j;
    for (int64_t k = n - 1; k >= 0; k--) { /* Q = H_0 ... H_{n-1} I */
        const double *v = vs + k * m;
        for (int64_t j = 0; j < n; j++) {
            double dot = 0;
            for (int64_t i = k; i < m; i++) dot += v[i] * q[i * n + j];
            for (int64_t i = k; i < m; i++) q[i * n + j] -= 2 * v[i] * dot;
        }
    }
    for (int64_t j = 0; j < n; j++) {
        double s = rdiag[j] > 0 ? 1 : rdiag[j] < 0 ? -1 : 0;
        for (int64_t i = 0; i < m; i++) q[i * n + j] *= s;
    }
    free(vs);
    free(rdiag);
    return true;
}

tg_status tg_init_orthogonal_(tg_tensor *t, double gain) {
    TG_API_ENTER("tg_init_orthogonal_");
    if (!writable(t, "tg_init_orthogonal_")) return tg_last_status();
    if (tg_ndim(t) < 2) return tg_error(TG_ERR_SHAPE, "tg_init_orthogonal_: needs at least 2 axes, got %d", tg_ndim(t));
    int64_t numel = tg_numel(t);
    if (numel == 0) return TG_OK;
    int64_t rows = tg_size(t, 0), cols = numel / rows;
    bool wide = rows < cols;
    int64_t m = wide ? cols : rows, n = wide ? rows : cols;
    double *flat = draw(numel, true), *a = malloc((size_t)numel * sizeof *a), *q = malloc((size_t)numel * sizeof *q);
    tg_status st = flat && a && q ? TG_OK : tg_last_status() ? tg_last_status() : tg_error(TG_ERR_NOMEM, "out of memory");
    if (st == TG_OK) {
        for (int64_t i = 0; i < m; i++) /* a = flat (rows x cols), transposed when wide */
            for (int64_t j = 0; j < n; j++) a[i * n + j] = wide ? flat[j * cols + i] : flat[i * cols + j];
        if (!householder_q(a, m, n, q)) st = tg_error(TG_ERR_NOMEM, "out of memory");
    }
    if (st == TG_OK) {
        for (int64_t i = 0; i < rows; i++) /* back to (rows x cols) */
            for (int64_t j = 0; j < cols; j++) flat[i * cols + j] = gain * (wide ? q[j * n + i] : q[i * n + j]);
        st = upload(t, flat);
    }
    free(flat);
    free(a);
    free(q);
    return st;
}
