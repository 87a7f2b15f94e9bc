/* OpenCL-only behaviour: the i64 kernels and empty shapes through the backend entries,
 * against host loops; device listing and naming; mixed devices, device out-of-memory,
 * the buffer pool, a failed kernel build and a device without fp64 as errors the caller
 * sees (the program cache: test_opencl_cache.c). Without an OpenCL device the program
 * exits 77 (meson: skipped). */
#include "opencl_check.h"
#include "lib/opencl/opencl.h"

/* ------------------------------------------------------------------ i64, against host loops
 * The kernels are called through the backend entries, so the checks hold whatever
 * promotion rules the ops layer applies to i64; expected values come from C's int64
 * arithmetic with overflow saturating, the library's rule for every integer dtype (the
 * CPU path's too). */

static const int64_t k_a64[12] = { 0, 1, -1, ((int64_t)1 << 40) + 3, -(((int64_t)1 << 53) + 1), INT64_MAX,
                                   INT64_MIN, 123456789012345, -7, 5, (int64_t)1 << 62, 3 };
static const int64_t k_b64[12] = { 3, -2, 0, 7, 1 << 20, 2, -1, -987654321, 4, 0, 5, INT64_MIN };

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
static int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? INT64_MAX : INT64_MIN) : r;
}
static int64_t sat_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX) : r;
}

/* A device tensor of dtype dt with shape s, made by the backend from nothing but its
 * allocator (no op-layer rules involved). */
static tg_tensor *dev_new(tg_device *dev, tg_dtype dt, tg_shape s) { return tg_empty(dt, s, dev); }

/* n int64 values of t, or false. */
static bool read_i64(tg_tensor *t, int64_t *out, int64_t n) {
    return t && tg_dtype_of(t) == TG_I64 && tg_copy_to_host(t, out, (size_t)n * 8) == TG_OK;
}

static int64_t i64_mismatches(tg_tensor *t, const int64_t *want, int64_t n, const char *what) {
    int64_t *got = malloc((size_t)(n ? n : 1) * 8), bad = 0;
    if (!read_i64(t, got, n)) {
        fprintf(stderr, "  %s: no i64 result (%s)\n", what, tg_last_error());
        free(got);
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ == 0)
            fprintf(stderr, "  %s: element %lld: got %lld, expected %lld\n", what, (long long)i, (long long)got[i],
                    (long long)want[i]);
    free(got);
    return bad;
}
#define I64_EQ(t, want, n, what) CHECK(i64_mismatches((t), (want), (n), (what)) == 0)

static int64_t sat_from_double(double v) {
    return v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v;
}

TEST(i64_elementwise_exact) {
    NEED_OPENCL(dev);
    tg_shape s = TG_SHAPE(3, 4);
    tg_tensor *a = tg_from_data(k_a64, TG_I64, s, dev), *b = tg_from_data(k_b64, TG_I64, s, dev);
    CHECK(a && b);
    int64_t want[12];
    tg_tensor *o = dev_new(dev, TG_I64, s);
    CHECK(tg_cl_fill(o, -7.75) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = -7;
    I64_EQ(o, want, 12, "fill i64 -7.75");
    CHECK(tg_cl_fill(o, 1e30) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = INT64_MAX;
    I64_EQ(o, want, 12, "fill i64 saturates");
    /* unary ops with an integer form */
    struct {
        tg_unary_op op;
        double p0, p1;
        const char *name;
    } un[] = { { TG_UN_NEG, 0, 0, "neg" },       { TG_UN_ABS, 0, 0, "abs" },          { TG_UN_SIGN, 0, 0, "sign" },
               { TG_UN_SQUARE, 0, 0, "square" }, { TG_UN_ADD_SCALAR, 3, 0, "add 3" }, { TG_UN_MUL_SCALAR, -2, 0, "mul -2" },
               { TG_UN_CLAMP, -5, 0x1p40, "clamp" }, { TG_UN_STEP, 0, 0, "step" },    { TG_UN_RELU, 0, 0, "relu" } };
    for (int q = 0; q < (int)(sizeof un / sizeof un[0]); q++) {
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], p0 = (int64_t)un[q].p0, p1 = (int64_t)un[q].p1;
            switch (un[q].op) {
            case TG_UN_NEG: want[i] = sat_sub(0, x); break;
            case TG_UN_ABS: want[i] = x < 0 ? sat_sub(0, x) : x; break;
            case TG_UN_SIGN: want[i] = (x > 0) - (x < 0); break;
            case TG_UN_SQUARE: want[i] = sat_mul(x, x); break;
            case TG_UN_ADD_SCALAR: want[i] = sat_add(x, p0); break;
            case TG_UN_MUL_SCALAR: want[i] = sat_mul(x, p0); break;
            case TG_UN_CLAMP: want[i] = x < p0 ? p0 : x > p1 ? p1 : x; break;
            case TG_UN_STEP: want[i] = x > p0; break;
            default: want[i] = x < 0 ? 0 : x; break;
            }
        }
        char what[64];
        snprintf(what, sizeof what, "i64 unary %s", un[q].name);
        CHECK(tg_cl_unary(un[q].op, o, a, un[q].p0, un[q].p1) == TG_OK);
        I64_EQ(o, want, 12, what);
    }
    /* binary, including through a transposed view of b */
    for (int op = TG_BIN_ADD; op <= TG_BIN_MINIMUM; op++) {
        const int64_t *bb = k_b64;
        int64_t small[12];
        if (op == TG_BIN_POW) /* exponents 0..11 */
            for (int i = 0; i < 12; i++) small[i] = i, bb = small;
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], y = bb[i], r = 1;
            switch (op) {
            case TG_BIN_ADD: want[i] = sat_add(x, y); break;
            case TG_BIN_SUB: want[i] = sat_sub(x, y); break;
            case TG_BIN_MUL: want[i] = sat_mul(x, y); break;
            case TG_BIN_DIV:
                want[i] = y == 0 ? (x > 0 ? INT64_MAX : x < 0 ? INT64_MIN : 0) : (x == INT64_MIN && y == -1) ? INT64_MAX : x / y;
                break;
            case TG_BIN_POW:
                for (int64_t k = 0; k < y; k++) r = sat_mul(r, x);
                want[i] = r;
                break;
            case TG_BIN_MAXIMUM: want[i] = x > y ? x : y; break;
            default: want[i] = x < y ? x : y; break;
            }
        }
        char what[64];
        snprintf(what, sizeof what, "i64 binary op %d", op);
        tg_tensor *bt = tg_from_data(bb, TG_I64, s, dev);
        CHECK(tg_cl_binary((tg_binary_op)op, o, a, bt) == TG_OK);
        I64_EQ(o, want, 12, what);
    }
    tg_tensor *m = dev_new(dev, TG_U8, s);
    for (int op = TG_BIN_EQ; op <= TG_BIN_GE; op++) {
        uint8_t got[12], exp[12];
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], y = k_b64[i];
            exp[i] = op == TG_BIN_EQ ? x == y : op == TG_BIN_NE ? x != y : op == TG_BIN_LT ? x < y
                   : op == TG_BIN_LE ? x <= y : op == TG_BIN_GT ? x > y : x >= y;
        }
        CHECK(tg_cl_binary((tg_binary_op)op, m, a, b) == TG_OK && tg_copy_to_host(m, got, 12) == TG_OK);
        if (memcmp(got, exp, 12) != 0) FAIL_("i64 comparison %d differs from the host's", op);
    }
    /* where: a where a < b, else b (differences of 1 in the low bits must survive) */
    CHECK(tg_cl_binary(TG_BIN_LT, m, a, b) == TG_OK && tg_cl_where(o, m, a, b) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = k_a64[i] < k_b64[i] ? k_a64[i] : k_b64[i];
    I64_EQ(o, want, 12, "i64 where");
    /* arange, exact beyond 2^53 */
    tg_tensor *r = dev_new(dev, TG_I64, TG_SHAPE(5));
    CHECK(tg_cl_arange(r, 0x1p60 + 0, 3) == TG_OK);
    for (int i = 0; i < 5; i++) want[i] = ((int64_t)1 << 60) + 3 * i;
    I64_EQ(r, want, 5, "i64 arange past 2^53");
}

TEST(i64_conversions) {
    NEED_OPENCL(dev);
    tg_shape s = TG_SHAPE(12);
    tg_tensor *a = tg_from_data(k_a64, TG_I64, s, dev);
    /* i64 -> f32, f64, i32, u8 */
    float f[12];
    double g[12];
    int32_t i32[12];
    uint8_t u8[12];
    tg_tensor *of = dev_new(dev, TG_F32, s), *oi = dev_new(dev, TG_I32, s), *ou = dev_new(dev, TG_U8, s);
    CHECK(tg_cl_copy(of, a) == TG_OK && tg_copy_to_host(of, f, sizeof f) == TG_OK);
    CHECK(tg_cl_copy(oi, a) == TG_OK && tg_copy_to_host(oi, i32, sizeof i32) == TG_OK);
    CHECK(tg_cl_copy(ou, a) == TG_OK && tg_copy_to_host(ou, u8, sizeof u8) == TG_OK);
    for (int i = 0; i < 12; i++) {
        int64_t v = k_a64[i];
        if (f[i] != (float)v) FAIL_("i64 -> f32 element %d: %.9g, expected %.9g", i, (double)f[i], (double)(float)v);
        int32_t wi = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        uint8_t wu = v > 255 ? 255 : v < 0 ? 0 : (uint8_t)v;
        if (i32[i] != wi) FAIL_("i64 -> i32 element %d: %d, expected %d", i, i32[i], wi);
        if (u8[i] != wu) FAIL_("i64 -> u8 element %d: %d, expected %d", i, u8[i], wu);
    }
    if (has_fp64(dev)) {
        tg_tensor *og = dev_new(dev, TG_F64, s);
        CHECK(tg_cl_copy(og, a) == TG_OK && tg_copy_to_host(og, g, sizeof g) == TG_OK);
        for (int i = 0; i < 12; i++)
            if (g[i] != (double)k_a64[i]) FAIL_("i64 -> f64 element %d: %.17g", i, g[i]);
    }
    /* f32, f64, i32, u8 -> i64 */
    const double src[8] = { 1e19, -1e19, NAN, -2.5, 0x1p53 + 2, 2.9, INFINITY, -0.5 };
    const float srcf[8] = { 1e19f, -1e19f, NAN, -2.5f, 0x1p40f, 2.9f, -INFINITY, 0x1p63f };
    int64_t want[8];
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(8));
    CHECK(tg_cl_copy(o, tg_from_data(srcf, TG_F32, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = sat_from_double((double)srcf[i]);
    I64_EQ(o, want, 8, "f32 -> i64");
    if (has_fp64(dev)) {
        CHECK(tg_cl_copy(o, tg_from_data(src, TG_F64, TG_SHAPE(8), dev)) == TG_OK);
        for (int i = 0; i < 8; i++) want[i] = sat_from_double(src[i]);
        I64_EQ(o, want, 8, "f64 -> i64");
    }
    const int32_t si[8] = { INT32_MIN, INT32_MAX, -1, 0, 1, 77, -300, 65536 };
    const uint8_t su[8] = { 0, 255, 1, 128, 7, 9, 200, 254 };
    CHECK(tg_cl_copy(o, tg_from_data(si, TG_I32, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = si[i];
    I64_EQ(o, want, 8, "i32 -> i64");
    CHECK(tg_cl_copy(o, tg_from_data(su, TG_U8, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = su[i];
    I64_EQ(o, want, 8, "u8 -> i64");
    /* a strided i64 -> i64 copy (the same-dtype kernel) */
    tg_tensor *t = tg_transpose(tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev), 0, 1);
    tg_tensor *c = dev_new(dev, TG_I64, TG_SHAPE(4, 3));
    CHECK(tg_cl_copy(c, t) == TG_OK);
    int64_t tw[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) tw[i * 3 + j] = k_a64[j * 4 + i];
    I64_EQ(c, tw, 12, "i64 transposed copy");
}

/* The backend's reduce over axis mask of x into a new tensor of dtype odt. */
static tg_tensor *reduce_to(tg_reduce_op op, tg_dtype odt, tg_tensor *x, uint32_t mask) {
    tg_shape s = tg_shape_of(x);
    for (int i = 0; i < s.ndim; i++)
        if (mask >> i & 1) s.dims[i] = 1;
    tg_tensor *o = tg_empty(odt, s, tg_device_of(x));
    return o && tg_cl_reduce(op, o, x, mask) == TG_OK ? o : NULL;
}

/* Values past 2^53 whose partial sums in any order fit int64 (OpenCL saturates as it
 * accumulates; the CPU sums exactly and saturates once, so they agree on these). */
static const int64_t k_sum64[12] = { 0, 1, -1, ((int64_t)1 << 40) + 3, -(((int64_t)1 << 53) + 1), (int64_t)1 << 61,
                                     -((int64_t)1 << 61), 123456789012345, -7, 5, (int64_t)1 << 60, 3 };

TEST(i64_reductions_exact) {
    NEED_OPENCL(dev);
#define k_a64 k_sum64
    tg_tensor *a = tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev);
    int64_t want[4];
    for (int force = 1; force <= 3; force++) { /* serial, work-groups, chunked */
        tg_opencl_force_paths_for_test(0, 0, force);
        char what[64];
        int64_t ws[3], wx[3], wn[3], wax[3], wan[3];
        for (int r = 0; r < 3; r++) {
            ws[r] = 0, wx[r] = INT64_MIN, wn[r] = INT64_MAX, wax[r] = wan[r] = 0;
            for (int j = 0; j < 4; j++) {
                int64_t v = k_a64[r * 4 + j];
                ws[r] = sat_add(ws[r], v);
                if (v > wx[r]) wx[r] = v, wax[r] = j;
                if (v < wn[r]) wn[r] = v, wan[r] = j;
            }
        }
        snprintf(what, sizeof what, "i64 sum rows path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, a, 2), ws, 3, what);
        snprintf(what, sizeof what, "i64 max rows path %d", force);
        I64_EQ(reduce_to(TG_RED_MAX, TG_I64, a, 2), wx, 3, what);
        snprintf(what, sizeof what, "i64 min rows path %d", force);
        I64_EQ(reduce_to(TG_RED_MIN, TG_I64, a, 2), wn, 3, what);
        snprintf(what, sizeof what, "i64 argmax into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_ARGMAX, TG_I64, a, 2), wax, 3, what);
        int32_t ai[3];
        tg_tensor *am = reduce_to(TG_RED_ARGMIN, TG_I32, a, 2);
        CHECK(am && tg_copy_to_host(am, ai, sizeof ai) == TG_OK);
        for (int r = 0; r < 3; r++)
            if (ai[r] != wan[r]) FAIL_("i64 argmin into i32, row %d: %d, expected %lld (path %d)", r, ai[r], (long long)wan[r], force);
        /* integer sums into i64, past what the input dtype holds */
        enum { N = 70001 };
        uint8_t *u = malloc(N);
        int32_t *w = malloc(N * sizeof *w);
        int64_t su = 0, sw = 0;
        for (int i = 0; i < N; i++) {
            u[i] = (uint8_t)(255 - i % 7);
            w[i] = i % 2 ? INT32_MAX - i : INT32_MIN + 3 * i;
            su += u[i], sw += w[i];
        }
        snprintf(what, sizeof what, "u8 sum into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_from_data(u, TG_U8, TG_SHAPE(N), dev), 1), &su, 1, what);
        snprintf(what, sizeof what, "i32 sum into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_from_data(w, TG_I32, TG_SHAPE(N), dev), 1), &sw, 1, what);
        free(u), free(w);
        want[0] = 0;
        for (int i = 0; i < 12; i++) want[0] = sat_add(want[0], k_a64[i]);
        snprintf(what, sizeof what, "i64 sum of all, transposed, path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_transpose(a, 0, 1), 3), want, 1, what);
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    CHECK_ERROR(reduce_to(TG_RED_ARGMAX, TG_F32, a, 2), "tg_argmax: indices are written as i32 or i64, not f32");
#undef k_a64
}

TEST(i64_gather_scatter_and_bounds) {
    NEED_OPENCL(dev);
    tg_tensor *x = tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev);
    const int64_t id64[6] = { 3, 3, 0, 2, 0, 1 };
    const int32_t id32[6] = { 3, 3, 0, 2, 0, 1 };
    tg_tensor *i64 = tg_from_data(id64, TG_I64, TG_SHAPE(3, 2), dev), *i32 = tg_from_data(id32, TG_I32, TG_SHAPE(3, 2), dev);
    int64_t want[6];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 2; j++) {
            int64_t v = id64[r * 2 + j];
            want[r * 2 + j] = k_a64[r * 4 + (v < 0 ? v + 4 : v)];
        }
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(3, 2));
    CHECK(tg_cl_gather(o, x, 1, i64) == TG_OK);
    I64_EQ(o, want, 6, "gather i64 values, i64 index");
    CHECK(tg_cl_gather(o, x, 1, i32) == TG_OK);
    I64_EQ(o, want, 6, "gather i64 values, i32 index");
    /* scatter_add of f32 with i64 indices, both paths, against a host loop */
    const float src[6] = { 1, 2, 4, 8, 16, 32 };
    float expect[12] = { 0 }, got[12];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 2; j++) {
            int64_t v = id64[r * 2 + j];
            expect[r * 4 + (v < 0 ? v + 4 : v)] += src[r * 2 + j];
        }
    for (int mode = 1; mode <= 2; mode++) {
        tg_opencl_force_paths_for_test(0, mode, 0);
        tg_tensor *z = tg_zeros(TG_F32, TG_SHAPE(3, 4), dev);
        CHECK(tg_cl_scatter_add(z, 1, i64, tg_from_data(src, TG_F32, TG_SHAPE(3, 2), dev)) == TG_OK);
        CHECK(tg_copy_to_host(z, got, sizeof got) == TG_OK);
        if (memcmp(got, expect, sizeof got) != 0) FAIL_("scatter_add with i64 indices, mode %d, differs", mode);
    }
    /* Out of range: the CPU path's words; 2^32 + 1 must not wrap to 1. */
    const int64_t bad64[4] = { 1, ((int64_t)1 << 32) + 1, -20, 2 };
    tg_tensor *bad = tg_from_data(bad64, TG_I64, TG_SHAPE(2, 2), dev);
    tg_tensor *o2 = dev_new(dev, TG_I64, TG_SHAPE(2, 2)), *x2 = tg_slice(x, 0, 0, 2, 1);
    CHECK_ERROR(tg_cl_gather(o2, x2, 1, bad), "tg_gather: index 4294967297 is out of range for axis 1 of size 4");
    for (int mode = 1; mode <= 2; mode++) {
        tg_opencl_force_paths_for_test(0, mode, 0);
        CHECK_ERROR(tg_cl_scatter_add(tg_zeros(TG_F32, TG_SHAPE(2, 4), dev), 1, bad, tg_ones(TG_F32, TG_SHAPE(2, 2), dev)),
                    "tg_scatter_add: index 4294967297 is out of range for axis 1 of size 4");
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    const int64_t neg64[2] = { -5, 0 };
    CHECK_ERROR(tg_cl_gather(dev_new(dev, TG_I64, TG_SHAPE(2, 1)), x2, 1, tg_from_data(neg64, TG_I64, TG_SHAPE(2, 1), dev)),
                "tg_gather: index -5 is out of range for axis 1 of size 4");
    CHECK_ERROR(tg_cl_gather(o2, x2, 1, tg_ones(TG_F32, TG_SHAPE(2, 2), dev)), "tg_gather: index must be i32 or i64, got f32");
    /* and through the public op with i32 indices: the same message */
    CHECK_ERROR(tg_gather(tg_zeros(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_from_i32((int32_t[]){ 0, 4, 1, 1 }, TG_SHAPE(2, 2), dev)),
                "tg_gather: index 4 is out of range for axis 1 of size 4");
}

TEST(i64_bernoulli) {
    NEED_OPENCL(dev);
    /* The f32 draw is checked against the CPU elsewhere; the i64 one must be its cast. */
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(999)), *f = dev_new(dev, TG_F32, TG_SHAPE(999));
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, o, 77, 1000, 0.3, 0) == TG_OK);
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, f, 77, 1000, 0.3, 0) == TG_OK);
    int64_t *got = malloc(999 * 8);
    float *ref = malloc(999 * sizeof *ref);
    CHECK(read_i64(o, got, 999) && tg_copy_to_host(f, ref, 999 * sizeof *ref) == TG_OK);
    int ones = 0, bad = 0;
    for (int i = 0; i < 999; i++) {
        ones += got[i] == 1;
        bad += got[i] != (int64_t)ref[i] || (got[i] != 0 && got[i] != 1);
    }
    CHECK(bad == 0 && ones > 200 && ones < 400);
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, o, 5, 0, 1.0, 0) == TG_OK && read_i64(o, got, 999));
    for (int i = 0; i < 999; i++) bad += got[i] != 1;
    CHECK(bad == 0);
    /* a strided output: element i of the view takes counter + i */
    tg_tensor *big = tg_zeros(TG_F32, TG_SHAPE(10, 6), dev), *view = tg_slice(tg_transpose(big, 0, 1), 0, 1, 6, 2);
    CHECK(tg_cl_random(TG_RNG_UNIFORM, view, 9, 0, 0, 1) == TG_OK);
    tg_tensor *dense = dev_new(dev, TG_F32, TG_SHAPE(3, 10));
    CHECK(tg_cl_random(TG_RNG_UNIFORM, dense, 9, 0, 0, 1) == TG_OK);
    float a[30], b[30];
    CHECK(tg_copy_to_host(view, a, sizeof a) == TG_OK && tg_copy_to_host(dense, b, sizeof b) == TG_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    free(got), free(ref);
}

/* ------------------------------------------------------------------ empty shapes */

TEST(empty_shapes_every_family) {
    NEED_OPENCL(dev);
    tg_shape shapes[] = { TG_SHAPE(2, 0), TG_SHAPE(0, 3), TG_SHAPE(4, 0, 5) };
    tg_dtype dts[] = { TG_F32, TG_I32, TG_U8, TG_I64 };
    for (int q = 0; q < 3; q++)
        for (int t = 0; t < 4; t++) {
            tg_scope_begin();
            tg_shape s = shapes[q];
            tg_dtype dt = dts[t];
            char what[64];
            snprintf(what, sizeof what, "shape#%d %s", q, tg_dtype_name(dt));
            tg_tensor *x = tg_zeros(dt, s, dev), *y = tg_ones(dt, s, dev);
            if (!x || !y) FAIL_("%s: creation: %s", what, tg_last_error());
            CHECK(tg_cl_unary(TG_UN_NEG, x, y, 0, 0) == TG_OK);
            CHECK(tg_cl_binary(TG_BIN_ADD, x, x, y) == TG_OK && tg_cl_binary(TG_BIN_LT, tg_empty(TG_U8, s, dev), x, y) == TG_OK);
            CHECK(tg_cl_where(x, tg_empty(TG_U8, s, dev), x, y) == TG_OK);
            CHECK(tg_cl_copy(tg_empty(TG_F32, s, dev), x) == TG_OK && tg_cl_copy(tg_transpose(x, 0, 1), tg_transpose(y, 0, 1)) == TG_OK);
            CHECK(tg_cl_random(TG_RNG_BERNOULLI, x, 1, 0, 0.5, 0) == TG_OK);
            /* sum over an empty axis is 0 (into i64 for integers, as tg_sum will) */
            for (int ax = 0; ax < s.ndim; ax++) {
                tg_dtype odt = tg_is_float(dt) ? dt : TG_I64;
                tg_tensor *r = reduce_to(TG_RED_SUM, odt, x, 1u << ax);
                CHECK(r != NULL);
                if (!r) continue;
                int64_t n = tg_numel(r);
                double *v = values(tg_cast(r, TG_F32));
                bool zero = v != NULL;
                for (int64_t i = 0; v && i < n; i++) zero = zero && v[i] == 0;
                if (s.dims[ax] == 0 && !zero) FAIL_("%s: sum over empty axis %d is not 0", what, ax);
                free(v);
                bool empty_axis = s.dims[ax] == 0, empty_out = n == 0;
                tg_tensor *mx = reduce_to(TG_RED_MAX, dt, x, 1u << ax);
                if (empty_axis && !empty_out) {
                    char msg[96];
                    snprintf(msg, sizeof msg, "tg_max: cannot reduce over axis %d of size 0", ax);
                    CHECK(mx == NULL && strcmp(tg_last_error(), msg) == 0);
                    CHECK_ERROR_CONTAINS(reduce_to(TG_RED_ARGMIN, TG_I64, x, 1u << ax), "tg_argmin: cannot reduce over axis");
                } else {
                    CHECK(mx != NULL && reduce_to(TG_RED_ARGMAX, TG_I32, x, 1u << ax) != NULL);
                }
            }
            tg_tensor *all = reduce_to(TG_RED_SUM, tg_is_float(dt) ? dt : TG_I64, x, (1u << s.ndim) - 1);
            CHECK(all && tg_item(all) == 0);
            tg_scope_end();
        }
    /* the float-only families, through the public ops */
    tg_tensor *e = tg_zeros(TG_F32, TG_SHAPE(2, 0), dev), *f = tg_zeros(TG_F32, TG_SHAPE(0, 3), dev);
    CHECK(tg_numel(tg_log_softmax(e, 1)) == 0 && tg_numel(tg_log_softmax(f, 1)) == 0 && tg_numel(tg_softmax(f, 0)) == 0);
    tg_tensor *mm = tg_matmul(e, tg_ones(TG_F32, TG_SHAPE(0, 3), dev));
    float z[6];
    CHECK(mm && tg_copy_to_host(mm, z, sizeof z) == TG_OK);
    for (int i = 0; mm && i < 6; i++) CHECK(z[i] == 0);
    CHECK(tg_numel(tg_matmul(f, tg_ones(TG_F32, TG_SHAPE(3, 2), dev))) == 0);
    CHECK(tg_numel(tg_gather(tg_ones(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_zeros(TG_I32, TG_SHAPE(2, 0), dev))) == 0);
    CHECK(tg_scatter_add(tg_ones(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_zeros(TG_I32, TG_SHAPE(2, 0), dev), e) != NULL);
    CHECK(tg_numel(tg_arange(TG_I64, 5, 5, 1, dev)) == 0 && tg_numel(tg_rand(TG_F32, TG_SHAPE(0, 3), dev)) == 0);
    CHECK(tg_item(tg_sum(e, TG_ALL, false)) == 0 && tg_numel(tg_sum(e, TG_AXES(1), false)) == 2);
    CHECK_ERROR(tg_max(e, TG_AXES(1), false), "tg_max: cannot reduce over axis 1 of size 0");
    tg_tensor *sm = tg_sum(e, TG_AXES(1), true);
    float two[2] = { 1, 1 };
    CHECK(sm && tg_copy_to_host(sm, two, sizeof two) == TG_OK && two[0] == 0 && two[1] == 0);
}

/* ------------------------------------------------------------------ devices and memory */

TEST(devices_listed_and_named) {
    NEED_OPENCL(dev);
    int n = tg_device_list(NULL, 0);
    CHECK(n >= 2);
    tg_device_info *infos = calloc((size_t)n, sizeof *infos);
    CHECK(tg_device_list(infos, n) == n);
    CHECK(strcmp(infos[0].id, "cpu") == 0 && infos[1].kind == TG_DEVICE_OPENCL);
    tg_device_info me;
    CHECK(tg_device_get_info(dev, &me) == TG_OK);
    bool found = false;
    for (int i = 1; i < n; i++) found |= strcmp(infos[i].id, me.id) == 0 && strcmp(infos[i].name, me.name) == 0;
    CHECK(found && me.global_mem_bytes > 0 && me.max_alloc_bytes > 0 && me.compute_units > 0);
    CHECK(strcmp(tg_device_name(dev), me.id) == 0);
    CHECK(tg_device_get(me.id) == dev); /* "opencl" and "opencl:N" are one device */
    free(infos);
    char name[32];
    snprintf(name, sizeof name, "opencl:%d", n + 5);
    CHECK_ERROR_CONTAINS(tg_device_get(name), "tg_device_get: no device opencl:");
}

TEST(mixing_devices_names_both) {
    NEED_OPENCL(dev);
    tg_tensor *a = tg_ones(TG_F32, TG_SHAPE(3), g_cpu), *b = tg_ones(TG_F32, TG_SHAPE(3), dev);
    char expect[128];
    snprintf(expect, sizeof expect, "tg_add: tensors on two devices: cpu and %s (copy one with tg_to)", tg_device_name(dev));
    CHECK_ERROR(tg_add(a, b), expect);
    snprintf(expect, sizeof expect, "tg_matmul: tensors on two devices: %s and cpu (copy one with tg_to)", tg_device_name(dev));
    CHECK_ERROR(tg_matmul(tg_ones(TG_F32, TG_SHAPE(2, 2), dev), tg_ones(TG_F32, TG_SHAPE(2, 2), g_cpu)), expect);
}

TEST(device_out_of_memory_is_an_error) {
    NEED_OPENCL(dev);
    tg_device_info info;
    CHECK(tg_device_get_info(dev, &info) == TG_OK);
    tg_clear_error();
    CHECK(tg_empty(TG_F32, TG_SHAPE(1 << 20, 1 << 20), dev) == NULL);
    CHECK(tg_last_status() == TG_ERR_NOMEM);
    CHECK(strstr(tg_last_error(), tg_device_name(dev)) && strstr(tg_last_error(), "4398046511104 bytes"));
    /* Largest allocations until the device is full: an error, and the memory comes back. */
    tg_memory_stats s0;
    tg_device_memory_stats(dev, &s0);
    int64_t chunk = (int64_t)(info.max_alloc_bytes / 4);
    int got = 0;
    tg_scope_begin();
    tg_clear_error();
    for (int i = 0; i < 256; i++) {
        if (!tg_empty(TG_F32, TG_SHAPE(chunk), dev)) break;
        got++;
    }
    CHECK(tg_last_status() == TG_ERR_NOMEM && strstr(tg_last_error(), "out of device memory on"));
    CHECK(got >= 1 && (double)got * (double)chunk * 4 <= (double)info.global_mem_bytes);
    tg_scope_end();
    tg_device_empty_cache(dev);
    CHECK(tg_ones(TG_F32, TG_SHAPE(chunk), dev) != NULL);
    tg_device_empty_cache(dev);
}

TEST(allocator_reuses_buffers) {
    NEED_OPENCL(dev);
    tg_memory_stats s0, s1, s2;
    tg_scope_begin();
    tg_zeros(TG_F32, TG_SHAPE(1000, 10), dev);
    tg_scope_end();
    tg_device_memory_stats(dev, &s0);
    for (int i = 0; i < 20; i++) {
        tg_scope_begin();
        tg_tensor *a = tg_zeros(TG_F32, TG_SHAPE(1000, 10), dev);
        tg_sum(tg_mul(a, a), TG_ALL, false);
        tg_scope_end();
    }
    tg_device_memory_stats(dev, &s1);
    CHECK(s1.allocations <= s0.allocations + 3 && s1.bytes_cached >= 40000);
    tg_device_empty_cache(dev);
    tg_device_memory_stats(dev, &s2);
    CHECK(s2.bytes_cached == 0);
}

/* ------------------------------------------------------------------ builds, cache, fp64 */

TEST(build_failure_reports_the_log) {
    NEED_OPENCL(dev);
    const char *src = "__kernel void broken(__global float *x) { x[0] = no_such_identifier_42; }\n";
    tg_clear_error();
    CHECK(tg_opencl_build_for_test(dev, src, "") == TG_ERR_BACKEND);
    CHECK(strstr(tg_last_error(), "CL_BUILD_PROGRAM_FAILURE") != NULL);
    CHECK(strstr(tg_last_error(), "no_such_identifier_42") != NULL); /* from the compiler's log */
    CHECK(tg_opencl_build_for_test(dev, "__kernel void fine(__global float *x) { x[0] = 1; }\n", "") == TG_OK);
}

TEST(missing_fp64_is_a_clear_error) {
    NEED_OPENCL(dev);
    bool had = has_fp64(dev);
    CHECK(tg_opencl_set_fp64_for_test(dev, false) == TG_OK);
    const char *msg = "has no fp64 (cl_khr_fp64)";
    CHECK_ERROR_CONTAINS(tg_zeros(TG_F64, TG_SHAPE(3), dev), msg);
    CHECK_ERROR_CONTAINS(tg_empty(TG_F64, TG_SHAPE(3), dev), msg); /* refused at creation, before any kernel */
    CHECK_ERROR_CONTAINS(tg_from_f64((double[]){ 1, 2 }, TG_SHAPE(2), dev), msg);
    CHECK_ERROR_CONTAINS(tg_to(tg_ones(TG_F64, TG_SHAPE(2), g_cpu), dev), msg);
    CHECK_ERROR_CONTAINS(tg_cast(tg_ones(TG_F32, TG_SHAPE(3), dev), TG_F64), msg);
    CHECK_ERROR_CONTAINS(tg_rand(TG_F64, TG_SHAPE(3), dev), msg);
    CHECK(strstr(tg_last_error(), tg_device_name(dev)) != NULL);
    /* f32 work goes on, accumulating in float instead of double. */
    tg_tensor *c = host_uniform(TG_F32, TG_SHAPE(200, 500), -1, 2, 80);
    AGREE(tg_sum(c, TG_ALL, false), tg_sum(tg_to(c, dev), TG_ALL, false), 1e-4, "float-accumulated sum");
    AGREE(tg_sum(c, TG_AXES(0), false), tg_sum(tg_to(c, dev), TG_AXES(0), false), 1e-4, "float column sums");
    AGREE(tg_log_softmax(c, 1), tg_log_softmax(tg_to(c, dev), 1), 1e-5, "float log_softmax");
    tg_manual_seed(3);
    tg_tensor *cr = tg_rand(TG_F32, TG_SHAPE(100), g_cpu);
    tg_manual_seed(3);
    SAME(cr, tg_rand(TG_F32, TG_SHAPE(100), dev), "uniform in float");
    if (had) {
        CHECK(tg_opencl_set_fp64_for_test(dev, true) == TG_OK);
        CHECK(tg_zeros(TG_F64, TG_SHAPE(3), dev) != NULL);
    } else {
        CHECK_ERROR_CONTAINS(tg_opencl_set_fp64_for_test(dev, true), msg);
    }
}

TG_TEST_MAIN(&tg_case_devices_listed_and_named, &tg_case_mixing_devices_names_both,
             &tg_case_device_out_of_memory_is_an_error, &tg_case_allocator_reuses_buffers,
             &tg_case_build_failure_reports_the_log, &tg_case_missing_fp64_is_a_clear_error,
             &tg_case_i64_elementwise_exact, &tg_case_i64_conversions, &tg_case_i64_reductions_exact,
             &tg_case_i64_gather_scatter_and_bounds, &tg_case_i64_bernoulli, &tg_case_empty_shapes_every_family)
