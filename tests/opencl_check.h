/* Shared by the OpenCL programs (test_opencl_agree.c, test_opencl_device.c): skip the whole
 * program without an OpenCL device, read values through the CPU, count CPU/OpenCL
 * mismatches (AGREE within a tolerance, SAME exactly) and make host-generated inputs. */
#ifndef TG_TEST_OPENCL_CHECK_H
#define TG_TEST_OPENCL_CHECK_H

#include <float.h>
#include <stdint.h>

#include "harness.h"

/* No OpenCL device: the whole program counts as skipped (77), not passed. */
static void skip_without_opencl(void) __attribute__((constructor));
static void skip_without_opencl(void) {
    if (tg_device_get("opencl")) return;
    printf("skipped: %s\n", tg_last_error());
    exit(77);
}

static tg_device *g_cpu;

static inline tg_device *opencl_or_skip(void) {
    static int tried;
    static tg_device *dev;
    if (!tried) {
        tried = 1;
        dev = tg_device_get("opencl");
        if (!dev) printf("  (no OpenCL device: %s)\n", tg_last_error());
        tg_clear_error();
    }
    g_cpu = tg_device_get("cpu");
    return dev;
}

#define NEED_OPENCL(dev)                     \
    tg_device *dev = opencl_or_skip();       \
    if (!dev) SKIP("no OpenCL device")

static inline bool has_fp64(tg_device *dev) {
    tg_device_info info;
    return tg_device_get_info(dev, &info) == TG_OK && info.fp64;
}

/* Values of t as doubles (malloc'ed) or NULL; converted on the CPU, so they can be
 * read from a device without fp64. */
static inline double *values(tg_tensor *t) { return t ? tg_test_values(tg_to(t, g_cpu)) : NULL; }

/* Number of elements where a (CPU) and b (device) differ by more than
 * rtol * max(|a|, |b|, floor); NaNs must match NaNs and infinities match exactly.
 * Prints the first mismatch under `what`. */
static inline int64_t mismatches(tg_tensor *a, tg_tensor *b, double rtol, double floor, const char *what) {
    if (!a || !b) {
        fprintf(stderr, "  %s: no result (%s)\n", what, tg_last_error());
        return 1;
    }
    tg_shape sa = tg_shape_of(a), sb = tg_shape_of(b);
    if (sa.ndim != sb.ndim || memcmp(sa.dims, sb.dims, sizeof(int64_t) * (size_t)sa.ndim) != 0 ||
        tg_dtype_of(a) != tg_dtype_of(b)) {
        fprintf(stderr, "  %s: shape or dtype differ\n", what);
        return 1;
    }
    int64_t n = tg_numel(a), bad = 0;
    double *x = values(a), *y = values(b);
    if (!x || !y) {
        fprintf(stderr, "  %s: cannot read values (%s)\n", what, tg_last_error());
        free(x), free(y);
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = x[i], v = y[i];
        bool ok;
        if (isnan(u) || isnan(v)) ok = isnan(u) && isnan(v);
        else if (isinf(u) || isinf(v)) ok = u == v;
        else ok = fabs(u - v) <= rtol * fmax(fmax(fabs(u), fabs(v)), floor);
        if (!ok && bad++ == 0)
            fprintf(stderr, "  %s: element %lld: cpu %.9g, opencl %.9g\n", what, (long long)i, u, v);
    }
    if (bad) fprintf(stderr, "  %s: %lld of %lld elements differ\n", what, (long long)bad, (long long)n);
    free(x), free(y);
    return bad;
}

#define AGREE(a, b, rtol, what) CHECK(mismatches((a), (b), (rtol), 1e-2, (what)) == 0)
#define SAME(a, b, what) CHECK(mismatches((a), (b), 0, 0, (what)) == 0)

/* A CPU tensor of uniform values in [lo, hi) from a fixed host generator. */
static inline tg_tensor *host_uniform(tg_dtype dt, tg_shape s, double lo, double hi, uint32_t seed) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = lo + (hi - lo) * (double)(x >> 11) * 0x1p-53;
        if (dt == TG_I32 || dt == TG_U8) v[i] = floor(v[i]);
    }
    tg_tensor *t = tg_cast(tg_from_f64(v, s, g_cpu), dt);
    free(v);
    return t;
}

#endif
