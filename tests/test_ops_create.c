/* Ops that make or overwrite values, against references computed here on the host:
 * casts between every dtype pair, creation (zeros, ones, full, arange, linspace, eye),
 * the random generators' statistics and seeding, and the in-place updates (copy_, add_,
 * sub_, mul_, axpy_, fill_) against host loops, on contiguous and non-contiguous views. */
#include "ops_check.h"

/* ================================================================== cast */

static double cast_ref(double v, tg_dtype to) {
    switch (to) {
    case TG_F32: return (double)(float)v;
    case TG_F64: return v;
    case TG_I32: return (double)(int32_t)v; /* truncation toward zero */
    default: return (double)(uint8_t)v;
    }
}

TEST(cast_all_dtype_pairs) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    /* non-negative values below 256 (every conversion defined) and negative ones */
    double pos[] = { 0, 1, 2.75, 100.5, 255, 17.25, 0.999, 254.9, 3, 128 };
    double neg[] = { -2.75, -1, -0.5, -100.25, 5.5, -1e6, 1e6 + 0.5, -7 };
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int l = 0; l < L_COUNT; l++)
                for (int set = 0; set < 2; set++) {
                    tg_dtype from = dts[a], to = dts[b];
                    if (set == 1 && (from == TG_U8 || to == TG_U8)) continue;
                    size_t m = mark();
                    WHAT("cast %s -> %s set %d %s", tg_dtype_name(from), tg_dtype_name(to), set, k_layout_names[l]);
                    int n = set ? 8 : 10;
                    double *x = dbuf(n);
                    for (int i = 0; i < n; i++) x[i] = set ? neg[i] : pos[i];
                    round_to(from, x, n); /* what the source holds */
                    tg_shape s = set ? TG_SHAPE(2, 4) : TG_SHAPE(2, 5);
                    tg_tensor *t = make(from, s, x, l);
                    double *ref = dbuf(n);
                    for (int i = 0; i < n; i++) ref[i] = cast_ref(x[i], to);
                    EXPECT_EXACT(tg_cast(t, to), s, to, ref);
                    release(m);
                }
    /* a large cast, over the threading threshold */
    size_t m = mark();
    double *x;
    tg_tensor *t = input(TG_F64, TG_SHAPE(311, 321), -1000, 1000, L_TRANSPOSED, &x);
    double *ref = dbuf(311 * 321), *ref2 = dbuf(311 * 321);
    for (int64_t i = 0; i < 311 * 321; i++) ref[i] = (double)(float)x[i], ref2[i] = (double)(int32_t)x[i];
    WHAT("large cast");
    EXPECT_EXACT(tg_cast(t, TG_F32), TG_SHAPE(311, 321), TG_F32, ref);
    EXPECT_EXACT(tg_cast(t, TG_I32), TG_SHAPE(311, 321), TG_I32, ref2);
    release(m);
}

/* ================================================================== creation */

TEST(zeros_ones_full_scalar_like) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 4; d++)
        for (int k = 0; k < N_SIZES; k++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            tg_shape s = size_shape(k);
            WHAT("creation %s %s", tg_dtype_name(dt), shape_str(s));
            int64_t n = numel_of(s);
            double *z = dbuf(n), *o = dbuf(n), *f = dbuf(n);
            for (int64_t i = 0; i < n; i++) z[i] = 0, o[i] = 1, f[i] = 7;
            EXPECT_EXACT(tg_zeros(dt, s, dev), s, dt, z);
            EXPECT_EXACT(tg_ones(dt, s, dev), s, dt, o);
            EXPECT_EXACT(tg_full(dt, s, 7, dev), s, dt, f);
            tg_tensor *base = tg_full(dt, s, 5, dev);
            EXPECT_EXACT(tg_zeros_like(base), s, dt, z);
            EXPECT_EXACT(tg_ones_like(base), s, dt, o);
            EXPECT_EXACT(tg_full_like(base, 7), s, dt, f);
            release(m);
        }
    WHAT("full with fractions and scalar");
    EXPECT_EXACT(tg_full(TG_F64, TG_SHAPE(2), -2.125, dev), TG_SHAPE(2), TG_F64, ((double[]){ -2.125, -2.125 }));
    EXPECT_EXACT(tg_full(TG_F32, TG_SHAPE(1), 0.1, dev), TG_SHAPE(1), TG_F32, ((double[]){ (double)0.1f }));
    EXPECT_EXACT(tg_scalar(TG_F64, 3.5, dev), TG_SCALAR_SHAPE, TG_F64, ((double[]){ 3.5 }));
    EXPECT_EXACT(tg_scalar(TG_I32, -4, dev), TG_SCALAR_SHAPE, TG_I32, ((double[]){ -4 }));
    CHECK(tg_item(tg_scalar(TG_F64, 3.5, dev)) == 3.5);
    EXPECT_EXACT(tg_full_like(tg_transpose(tg_zeros(TG_F32, TG_SHAPE(2, 3), dev), 0, 1), 1.5), TG_SHAPE(3, 2), TG_F32,
                 ((double[]){ 1.5, 1.5, 1.5, 1.5, 1.5, 1.5 }));
}

TEST(arange_linspace_eye) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("arange/linspace %s", tg_dtype_name(dt));
        EXPECT_EXACT(tg_arange(dt, 0, 10, 1, dev), TG_SHAPE(10), dt, ((double[]){ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }));
        EXPECT_EXACT(tg_arange(dt, 1, 2, 0.25, dev), TG_SHAPE(4), dt, ((double[]){ 1, 1.25, 1.5, 1.75 }));
        EXPECT_EXACT(tg_arange(dt, 5, 0, -1.5, dev), TG_SHAPE(4), dt, ((double[]){ 5, 3.5, 2, 0.5 }));
        EXPECT_EXACT(tg_arange(dt, 3, 3, 1, dev), TG_SHAPE(0), dt, ((double[]){ 0 }));
        EXPECT(tg_arange(dt, 0, 1, 0.3, dev), TG_SHAPE(4), dt, ((double[]){ 0, 0.3, 0.6, 0.9 }), tol_a(dt), tol_r(dt));
        EXPECT_EXACT(tg_linspace(dt, 0, 1, 5, dev), TG_SHAPE(5), dt, ((double[]){ 0, 0.25, 0.5, 0.75, 1 }));
        EXPECT_EXACT(tg_linspace(dt, -1, 1, 1, dev), TG_SHAPE(1), dt, ((double[]){ -1 }));
        EXPECT_EXACT(tg_linspace(dt, 2, -2, 3, dev), TG_SHAPE(3), dt, ((double[]){ 2, 0, -2 }));
        /* 1023 points: interior within rounding, both ends exact (as numpy and PyTorch) */
        double *ref = dbuf(1023);
        for (int i = 0; i < 1023; i++) ref[i] = cast_ref(-1.3 + (2.9 - -1.3) * i / 1022.0, dt);
        tg_tensor *ls = tg_linspace(dt, -1.3, 2.9, 1023, dev);
        EXPECT(ls, TG_SHAPE(1023), dt, ref, tol_a(dt), tol_r(dt));
        double *lv = vals(ls);
        if (lv) {
            CHECK_NEAR(lv[0], cast_ref(-1.3, dt), 0);
            CHECK_NEAR(lv[1022], cast_ref(2.9, dt), 0);
        }
        /* a large arange (threads), values exact */
        double *ar = dbuf(100003);
        for (int i = 0; i < 100003; i++) ar[i] = cast_ref(-50000 + i, dt);
        EXPECT_EXACT(tg_arange(dt, -50000, 50003, 1, dev), TG_SHAPE(100003), dt, ar);
    }
    WHAT("arange i32");
    EXPECT_EXACT(tg_arange(TG_I32, 0, 10, 3, dev), TG_SHAPE(4), TG_I32, ((double[]){ 0, 3, 6, 9 }));
    EXPECT_EXACT(tg_arange(TG_I32, 4, -4, -2, dev), TG_SHAPE(4), TG_I32, ((double[]){ 4, 2, 0, -2 }));
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int d = 0; d < 4; d++) {
        WHAT("eye %s", tg_dtype_name(dts[d]));
        double ref[16] = { 0 };
        for (int i = 0; i < 4; i++) ref[i * 5] = 1;
        EXPECT_EXACT(tg_eye(dts[d], 4, dev), TG_SHAPE(4, 4), dts[d], ref);
        EXPECT_EXACT(tg_eye(dts[d], 1, dev), TG_SHAPE(1, 1), dts[d], ((double[]){ 1 }));
        double *big = dbuf(400 * 400);
        for (int i = 0; i < 400; i++) big[i * 401] = 1;
        EXPECT_EXACT(tg_eye(dts[d], 400, dev), TG_SHAPE(400, 400), dts[d], big);
    }
}

static void moments(const double *v, int64_t n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = sqrt(q / (double)(n - 1));
}

TEST(rand_randn_bernoulli_statistics) {
    tg_device *dev = tg_test_device();
    const int64_t n = 100000;
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("random %s", tg_dtype_name(dt));
        tg_manual_seed(1234);
        double *u = vals(tg_rand(dt, TG_SHAPE(n), dev));
        double *g = vals(tg_randn(dt, TG_SHAPE(400, 250), dev));
        double *b = vals(tg_bernoulli(dt, TG_SHAPE(n), 0.3, dev));
        CHECK(u && g && b);
        if (!u || !g || !b) continue;
        int64_t out_of_range = 0, not_binary = 0, ones = 0, distinct = 0;
        for (int64_t i = 0; i < n; i++) {
            out_of_range += !(u[i] >= 0 && u[i] < 1);
            not_binary += !(b[i] == 0 || b[i] == 1);
            ones += b[i] == 1;
            distinct += i > 0 && u[i] != u[i - 1];
        }
        CHECK(out_of_range == 0);
        CHECK(not_binary == 0);
        CHECK(distinct > n - 100);
        double mu, sd;
        moments(u, n, &mu, &sd);
        CHECK_NEAR(mu, 0.5, 0.01);                /* standard error 0.0009 */
        CHECK_NEAR(sd, sqrt(1.0 / 12.0), 0.01);
        int64_t low_decile = 0;
        for (int64_t i = 0; i < n; i++) low_decile += u[i] < 0.1;
        CHECK_NEAR((double)low_decile / (double)n, 0.1, 0.005);
        moments(g, n, &mu, &sd);
        CHECK_NEAR(mu, 0, 0.015);                  /* standard error 0.003 */
        CHECK_NEAR(sd, 1, 0.015);
        int64_t within1 = 0, beyond4 = 0;
        for (int64_t i = 0; i < n; i++) within1 += fabs(g[i]) < 1, beyond4 += fabs(g[i]) > 4.5;
        CHECK_NEAR((double)within1 / (double)n, 0.6827, 0.006);
        CHECK(beyond4 < 10);
        CHECK_NEAR((double)ones / (double)n, 0.3, 0.008); /* standard error 0.0014 */
        /* p = 0 and p = 1 are deterministic */
        double *b0 = vals(tg_bernoulli(dt, TG_SHAPE(1000), 0.0, dev)), *b1 = vals(tg_bernoulli(dt, TG_SHAPE(1000), 1.0, dev));
        if (b0 && b1) {
            int bad = 0;
            for (int i = 0; i < 1000; i++) bad += b0[i] != 0 || b1[i] != 1;
            CHECK(bad == 0);
        }
    }
}

TEST(random_same_seed_same_numbers) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("seeding %s", tg_dtype_name(dt));
        tg_manual_seed(99);
        double *a1 = vals(tg_rand(dt, TG_SHAPE(1023), dev)), *a2 = vals(tg_randn(dt, TG_SHAPE(17), dev));
        double *a3 = vals(tg_rand(dt, TG_SHAPE(1023), dev));
        tg_manual_seed(99);
        tg_tensor *b1 = tg_rand(dt, TG_SHAPE(1023), dev), *b2 = tg_randn(dt, TG_SHAPE(17), dev);
        tg_tensor *b3 = tg_rand(dt, TG_SHAPE(1023), dev);
        EXPECT_EXACT(b1, TG_SHAPE(1023), dt, a1);
        EXPECT_EXACT(b2, TG_SHAPE(17), dt, a2);
        EXPECT_EXACT(b3, TG_SHAPE(1023), dt, a3);
        /* consecutive draws and other seeds differ */
        int same = 0;
        for (int i = 0; a1 && a3 && i < 1023; i++) same += a1[i] == a3[i];
        CHECK(same < 5);
        tg_manual_seed(100);
        double *c1 = vals(tg_rand(dt, TG_SHAPE(1023), dev));
        same = 0;
        for (int i = 0; a1 && c1 && i < 1023; i++) same += a1[i] == c1[i];
        CHECK(same < 5);
    }
    /* the thread count does not change the numbers (large tensor, threaded fill) */
    WHAT("seeding across thread counts");
    int threads = tg_get_num_threads();
    tg_set_num_threads(1);
    tg_manual_seed(7);
    double *s1 = vals(tg_randn(TG_F32, TG_SHAPE(100003), dev));
    tg_set_num_threads(threads > 1 ? threads : 4);
    tg_manual_seed(7);
    tg_tensor *s2 = tg_randn(TG_F32, TG_SHAPE(100003), dev);
    tg_set_num_threads(threads);
    if (s1) EXPECT_EXACT(s2, TG_SHAPE(100003), TG_F32, s1);
    CHECK(s1 != NULL);
}

TEST(uniform_normal_fill_in_place) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("uniform_/normal_ %s", tg_dtype_name(dt));
        tg_manual_seed(5);
        tg_tensor *t = tg_empty(dt, TG_SHAPE(100000), dev);
        CHECK(tg_uniform_(t, -2, 3) == TG_OK);
        double *u = vals(t);
        CHECK(tg_normal_(t, 5, 2) == TG_OK);
        double *g = vals(t);
        if (!u || !g) {
            CHECK(u && g);
            continue;
        }
        int64_t bad = 0;
        for (int64_t i = 0; i < 100000; i++) bad += !(u[i] >= -2 && u[i] < 3);
        CHECK(bad == 0);
        double mu, sd;
        moments(u, 100000, &mu, &sd);
        CHECK_NEAR(mu, 0.5, 0.03);
        CHECK_NEAR(sd, 5 / sqrt(12.0), 0.03);
        moments(g, 100000, &mu, &sd);
        CHECK_NEAR(mu, 5, 0.03);
        CHECK_NEAR(sd, 2, 0.03);
        /* into a non-contiguous view: only the view's elements change */
        tg_tensor *base = tg_zeros(dt, TG_SHAPE(50, 40), dev);
        tg_tensor *v = tg_slice(tg_transpose(base, 0, 1), 1, 1, INT64_MAX, 2); /* (40, 25) */
        CHECK(tg_uniform_(v, 1, 2) == TG_OK);
        double *bv = vals(base);
        if (bv) {
            int64_t wrong = 0;
            for (int64_t i = 0; i < 50; i++)
                for (int64_t j = 0; j < 40; j++) {
                    double e = bv[i * 40 + j];
                    wrong += i % 2 == 1 ? !(e >= 1 && e < 2) : e != 0;
                }
            CHECK(wrong == 0);
        }
    }
}

/* ================================================================== in-place updates */

/* A destination of shape s = (A, B, C) viewing a base tensor: contiguous, every other
 * element of a wider base, the transpose of a (A, C, B) base, or a flip of axes 0 and 2.
 * map[i] is the base's flat index of the view's element i. */
static tg_tensor *dst_view(tg_tensor *base, int layout, tg_shape s, int64_t *map) {
    int64_t A = s.dims[0], B = s.dims[1], C = s.dims[2];
    for (int64_t a = 0; a < A; a++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++) {
                int64_t i = (a * B + b) * C + c;
                map[i] = layout == L_STRIDED      ? (a * B + b) * (2 * C + 1) + 2 * c + 1
                         : layout == L_TRANSPOSED ? (a * C + c) * B + b
                         : layout == L_FLIPPED    ? ((A - 1 - a) * B + b) * C + (C - 1 - c)
                                                  : i;
            }
    switch (layout) {
    case L_STRIDED: return tg_slice(base, -1, 1, INT64_MAX, 2);
    case L_TRANSPOSED: return tg_transpose(base, -1, -2);
    case L_FLIPPED: return tg_flip(base, TG_AXES(0, 2));
    default: return base;
    }
}

static tg_shape dst_base_shape(tg_shape s, int layout) {
    if (layout == L_STRIDED) s.dims[2] = 2 * s.dims[2] + 1;
    if (layout == L_TRANSPOSED) s = TG_SHAPE(s.dims[0], s.dims[2], s.dims[1]);
    return s;
}

enum { IP_COPY, IP_ADD, IP_SUB, IP_MUL, IP_AXPY, IP_FILL, IP_COUNT };
static const char *const k_ip_names[IP_COUNT] = { "copy_", "add_", "sub_", "mul_", "axpy_", "fill_" };
#define IP_ALPHA (-0.375) /* exact in f32 */
#define IP_FILL_VALUE 6.5

static double ip_ref(int op, tg_dtype dt, double d, double x) {
    double r = op == IP_COPY ? x : op == IP_ADD ? d + x : op == IP_SUB ? d - x : op == IP_MUL ? d * x
             : op == IP_AXPY ? d + IP_ALPHA * x : IP_FILL_VALUE;
    return dt == TG_F32 ? (double)(float)r : dt == TG_I32 ? (double)(int32_t)r : r; /* fill_ truncates as tg_cast */
}

static tg_status ip_apply(int op, tg_tensor *dst, tg_tensor *src) {
    switch (op) {
    case IP_COPY: return tg_copy_(dst, src);
    case IP_ADD: return tg_add_(dst, src);
    case IP_SUB: return tg_sub_(dst, src);
    case IP_MUL: return tg_mul_(dst, src);
    case IP_AXPY: return tg_axpy_(dst, IP_ALPHA, src);
    default: return tg_fill_(dst, IP_FILL_VALUE);
    }
}

/* Every in-place op against a host loop: each destination layout (the base around a
 * view must keep its other values), sources that broadcast (row, column, 0-d, a
 * trailing vector) in several layouts, f32, f64 and i32. axpy may fuse the multiply-add,
 * so it is compared within a rounding. */
TEST(inplace_ops_against_host_loops) {
    const tg_shape s = TG_SHAPE(3, 4, 5);
    const tg_shape srcs[] = { TG_SHAPE(3, 4, 5), TG_SHAPE(4, 5), TG_SHAPE(1, 5), TG_SHAPE(3, 1, 1),
                              TG_SHAPE(3, 4, 1), TG_SCALAR_SHAPE, TG_SHAPE(5) };
    const tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    int64_t map[60];
    for (int d = 0; d < 3; d++)
        for (int op = 0; op < IP_COUNT; op++) {
            tg_dtype dt = dts[d];
            if (op == IP_AXPY && dt == TG_I32) continue;
            for (int l = 0; l < L_COUNT; l++)
                for (int q = 0; q < (op == IP_FILL ? 1 : (int)(sizeof srcs / sizeof srcs[0])); q++) {
                    size_t m = mark();
                    int sl = (l + q) % L_COUNT; /* the source's layout */
                    WHAT("%s %s dst %s src %s %s", k_ip_names[op], tg_dtype_name(dt), k_layout_names[l],
                         shape_str(srcs[q]), k_layout_names[sl]);
                    tg_shape bs = dst_base_shape(s, l);
                    int64_t nb = numel_of(bs);
                    double *bv = dt == TG_I32 ? int_vals(nb, -9, 10) : uniform_vals(dt, nb, -2, 2);
                    tg_tensor *base = from_doubles(dt, bs, bv);
                    tg_tensor *dst = dst_view(base, l, s, map);
                    double *sv = dt == TG_I32 ? int_vals(numel_of(srcs[q]), -9, 10) : uniform_vals(dt, numel_of(srcs[q]), -2, 2);
                    tg_tensor *src = make(dt, srcs[q], sv, sl);
                    double *want = dbuf(nb);
                    memcpy(want, bv, (size_t)nb * sizeof *want);
                    int64_t idx[TG_MAX_DIMS];
                    for (int64_t i = 0; i < 60; i++) {
                        unravel(i, s, idx);
                        want[map[i]] = ip_ref(op, dt, bv[map[i]], sv[bcast_flat(idx, s, srcs[q])]);
                    }
                    CHECK(ip_apply(op, dst, src) == TG_OK);
                    double tol = op == IP_AXPY ? (dt == TG_F32 ? 1e-6 : 1e-15) : 0;
                    EXPECT(base, bs, dt, want, tol, tol);
                    release(m);
                }
        }
}

/* Large contiguous destinations (SIMD and threaded paths) with a same-shape, a row and a
 * 0-d source; a destination that is its own source; copy_ between dtypes. */
TEST(inplace_ops_large_and_aliased) {
    const tg_shape s = TG_SHAPE(300, 257);
    const int64_t n = 300 * 257;
    const tg_shape srcs[] = { TG_SHAPE(300, 257), TG_SHAPE(257), TG_SCALAR_SHAPE };
    for (int d = 0; d < 2; d++)
        for (int op = IP_ADD; op <= IP_AXPY; op++)
            for (int q = 0; q < 3; q++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("%s %s large, src %s", k_ip_names[op], tg_dtype_name(dt), shape_str(srcs[q]));
                double *dv, *sv;
                tg_tensor *dst = input(dt, s, -2, 2, L_CONTIG, &dv);
                tg_tensor *src = input(dt, srcs[q], -2, 2, L_CONTIG, &sv);
                double *want = dbuf(n);
                int64_t idx[TG_MAX_DIMS];
                for (int64_t i = 0; i < n; i++) {
                    unravel(i, s, idx);
                    want[i] = ip_ref(op, dt, dv[i], sv[bcast_flat(idx, s, srcs[q])]);
                }
                CHECK(ip_apply(op, dst, src) == TG_OK);
                double tol = op == IP_AXPY ? (dt == TG_F32 ? 1e-6 : 1e-15) : 0;
                EXPECT(dst, s, dt, want, tol, tol);
                release(m);
            }
    for (int op = IP_ADD; op <= IP_AXPY; op++) {
        size_t m = mark();
        WHAT("%s with dst as its own source", k_ip_names[op]);
        double *x;
        tg_tensor *t = input(TG_F64, TG_SHAPE(6, 7), -2, 2, L_TRANSPOSED, &x);
        double want[42];
        for (int i = 0; i < 42; i++) want[i] = ip_ref(op, TG_F64, x[i], x[i]);
        CHECK(ip_apply(op, t, t) == TG_OK);
        EXPECT(t, TG_SHAPE(6, 7), TG_F64, want, 1e-15, 1e-15);
        release(m);
    }
    size_t m = mark();
    WHAT("copy_ f64 into f32 and i32 into f64");
    double *x;
    tg_tensor *src = input(TG_F64, TG_SHAPE(4, 5), -3, 3, L_FLIPPED, &x);
    tg_tensor *dst = tg_zeros(TG_F32, TG_SHAPE(2, 4, 5), tg_test_device());
    CHECK(tg_copy_(dst, src) == TG_OK);
    double want[40];
    for (int i = 0; i < 40; i++) want[i] = (double)(float)x[i % 20];
    EXPECT_EXACT(dst, TG_SHAPE(2, 4, 5), TG_F32, want);
    double *iv = int_vals(5, -100, 100);
    tg_tensor *d64 = tg_zeros(TG_F64, TG_SHAPE(3, 5), tg_test_device());
    CHECK(tg_copy_(tg_transpose(d64, 0, 1), tg_transpose(make(TG_I32, TG_SHAPE(1, 5), iv, L_CONTIG), 0, 1)) == TG_OK);
    for (int i = 0; i < 15; i++) want[i] = iv[i % 5];
    EXPECT_EXACT(d64, TG_SHAPE(3, 5), TG_F64, want);
    release(m);
}

TEST(inplace_ops_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *d = tg_zeros(TG_F32, TG_SHAPE(3, 1), dev);
    CHECK_ERROR(tg_add_(d, tg_zeros(TG_F32, TG_SHAPE(3, 4), dev)), "tg_add_: src [3,4] does not broadcast to dst [3,1]");
    CHECK_ERROR(tg_sub_(d, tg_zeros(TG_F64, TG_SHAPE(3, 1), dev)), "tg_sub_: dtypes differ: f32 and f64");
    CHECK_ERROR(tg_mul_(d, NULL), "tg_mul_: src is NULL");
    CHECK_ERROR(tg_copy_(NULL, d), "tg_copy_: dst is NULL");
    CHECK_ERROR(tg_fill_(tg_param(tg_zeros(TG_F32, TG_SHAPE(2), dev)), 1),
                "tg_fill_: dst requires grad and grad mode is on; update parameters with grad mode off (tg_set_grad_enabled(false))");
}

TG_TEST_MAIN(&tg_case_cast_all_dtype_pairs, &tg_case_zeros_ones_full_scalar_like, &tg_case_arange_linspace_eye,
             &tg_case_rand_randn_bernoulli_statistics, &tg_case_random_same_seed_same_numbers,
             &tg_case_uniform_normal_fill_in_place, &tg_case_inplace_ops_against_host_loops,
             &tg_case_inplace_ops_large_and_aliased, &tg_case_inplace_ops_errors)
