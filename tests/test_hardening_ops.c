/* Hardening of the op builders: arguments at the edges of int64, shapes whose element
 * count overflows, PyTorch's index rule, variance with a large correction, in-place
 * updates into expanded views, and result dtypes. Every message is checked whole and
 * every value against a reference computed here on the host.
 *
 * Cases marked [kernels] need the backends' i64 support and negative-index reporting
 * (other branches): before those merge they fail (argmax_argmin_give_i64 aborts on the
 * CPU backend's old i32-only assert, so it runs last). */
#include <limits.h>
#include <stdint.h>

#include "harness.h"

#define MAX_NUMEL_STR "576460752303423487" /* INT64_MAX / 16, the library's limit */

/* The whole message must match, and the call must have failed. */
#define CHECK_MSG(expr, msg)                                                                       \
    do {                                                                                           \
        tg_clear_error();                                                                          \
        (void)(expr);                                                                              \
        if (tg_last_status() == TG_OK || strcmp(tg_last_error(), (msg)) != 0)                      \
            FAIL_("%s: expected the error \"%s\", got \"%s\"", #expr, (msg), tg_last_error());    \
    } while (0)

static tg_tensor *f32_of(const float *v, tg_shape s) { return tg_from_f32(v, s, tg_test_device()); }

/* A tensor's values as doubles into out[n]; false (and a failed check) if unreadable. */
static bool read_values(tg_tensor *t, double *out, int64_t n) {
    if (!t || tg_numel(t) != n) return false;
    double *v = tg_test_values(t);
    if (!v) return false;
    memcpy(out, v, (size_t)n * sizeof *v);
    free(v);
    return true;
}

/* Raw i64 values, without going through a cast. */
static bool read_i64(tg_tensor *t, int64_t *out, int64_t n) {
    return t && tg_dtype_of(t) == TG_I64 && tg_numel(t) == n &&
           tg_copy_to_host(t, out, (size_t)n * sizeof *out) == TG_OK;
}

static bool shape_is(tg_tensor *t, tg_shape s) {
    if (!t || tg_ndim(t) != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (tg_size(t, i) != s.dims[i]) return false;
    return true;
}

/* ------------------------------------------------------------------ split */

TEST(split_checks_out_and_counts) {
    float v[6] = { 0, 1, 2, 3, 4, 5 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    CHECK_MSG(tg_split(x, 1, 0, NULL, 4), "tg_split: out is NULL but max_out is 4");
    tg_clear_error();
    CHECK(tg_split(x, 1, 0, NULL, 0) == 2); /* counting only */
    tg_tensor *out[4] = { 0 };
    CHECK_MSG(tg_split(x, 1, 0, out, -1), "tg_split: max_out is -1 (expected 0 or more)");
    CHECK(tg_split(x, 2, 1, out, 4) == 2);
    double got[4];
    CHECK(shape_is(out[0], TG_SHAPE(2, 2)) && read_values(out[0], got, 4) && got[0] == 0 && got[1] == 1 &&
          got[2] == 3 && got[3] == 4);
    CHECK(shape_is(out[1], TG_SHAPE(2, 1)) && read_values(out[1], got, 2) && got[0] == 2 && got[1] == 5);
    /* a split size past the axis gives one piece; an empty axis gives one empty piece (PyTorch) */
    CHECK(tg_split(x, INT64_MAX, 1, out, 4) == 1 && shape_is(out[0], TG_SHAPE(2, 3)));
    tg_tensor *e = tg_zeros(TG_F32, TG_SHAPE(0, 3), tg_test_device());
    CHECK(tg_split(e, 2, 0, out, 4) == 1 && shape_is(out[0], TG_SHAPE(0, 3)));
    tg_tensor *huge = tg_expand(tg_zeros(TG_F32, TG_SHAPE(1), tg_test_device()), TG_SHAPE(INT64_C(1) << 40));
    CHECK_MSG(tg_split(huge, 1, 0, NULL, 0), "tg_split: 1099511627776 pieces of size 1 do not fit in an int");
}

/* ------------------------------------------------------------------ slice */

/* Python's slice(start, stop, step).indices(len) with 128-bit arithmetic, then
 * membership by divisibility: independent of the library's clamping. */
__extension__ typedef __int128 i128;

static int64_t ref_slice(int64_t len, int64_t start, int64_t stop, int64_t step, int64_t *picked) {
    i128 s = start, e = stop;
    if (s < 0) s += len;
    if (e < 0) e += len;
    if (s < 0) s = 0;
    if (s > len) s = len;
    if (e < 0) e = 0;
    if (e > len) e = len;
    int64_t n = 0;
    for (int64_t j = 0; j < len; j++)
        if (j >= s && j < e && ((i128)j - s) % step == 0) picked[n++] = j;
    return n;
}

TEST(slice_any_int64_bounds) {
    float v[8] = { 10, 11, 12, 13, 14, 15, 16, 17 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 4));
    const int64_t ends[] = { INT64_MIN, INT64_MIN + 1, -5, -4, -3, -1, 0, 1, 2, 3, 4, 5, INT64_MAX - 1, INT64_MAX };
    const int64_t steps[] = { 1, 2, 3, 4, 5, INT64_MAX - 1, INT64_MAX };
    int ne = (int)(sizeof ends / sizeof ends[0]), ns = (int)(sizeof steps / sizeof steps[0]);
    for (int a = 0; a < ne; a++)
        for (int b = 0; b < ne; b++)
            for (int c = 0; c < ns; c++) {
                int64_t picked[4], n = ref_slice(4, ends[a], ends[b], steps[c], picked);
                tg_tensor *y = tg_slice(x, 1, ends[a], ends[b], steps[c]);
                double got[8];
                bool ok = shape_is(y, TG_SHAPE(2, n)) && read_values(y, got, 2 * n);
                for (int64_t k = 0; ok && k < n; k++)
                    ok = got[k] == v[picked[k]] && got[n + k] == v[4 + picked[k]];
                if (!ok)
                    FAIL_("tg_slice(x, 1, %lld, %lld, %lld): wrong result (expected %lld elements per row)",
                          (long long)ends[a], (long long)ends[b], (long long)steps[c], (long long)n);
            }
    /* the case: shape [2, 1], not [2, -1] */
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *y = tg_slice(f32_of(w, TG_SHAPE(2, 3)), 1, INT64_MIN, INT64_MAX, INT64_MAX);
    double got[2];
    CHECK(shape_is(y, TG_SHAPE(2, 1)) && read_values(y, got, 2) && got[0] == 1 && got[1] == 4);
}

TEST(slice_with_huge_step_backward) {
    float v[4] = { 1, 2, 3, 4 };
    tg_tensor *x = tg_param(f32_of(v, TG_SHAPE(4)));
    tg_tensor *y = tg_slice(x, 0, 1, INT64_MAX, INT64_MAX); /* picks x[1] only */
    CHECK(tg_backward(tg_sum(y, TG_ALL, false)) == TG_OK);
    double g[4];
    CHECK(read_values(tg_grad(x), g, 4) && g[0] == 0 && g[1] == 1 && g[2] == 0 && g[3] == 0);
}

/* ------------------------------------------------------------------ shapes that overflow */

TEST(expand_checks_ndim_and_size) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(1, 1), dev);
    tg_shape nine = { .ndim = 9 };
    CHECK_MSG(tg_expand(x, nine), "tg_expand: 9 dimensions (at most 8)");
    tg_shape neg = { .ndim = -1 };
    CHECK_MSG(tg_expand(x, neg), "tg_expand: -1 dimensions (at most 8)");
    int64_t big = INT64_C(1) << 40;
    CHECK_MSG(tg_expand(x, TG_SHAPE(big, big)),
              "tg_expand: shape [1099511627776,1099511627776] is too large (more than " MAX_NUMEL_STR " elements)");
    tg_tensor *e = tg_zeros(TG_F32, TG_SHAPE(0, 1, 1), dev);
    CHECK_MSG(tg_expand(e, TG_SHAPE(0, big, big)),
              "tg_expand: shape [0,1099511627776,1099511627776] is too large (more than " MAX_NUMEL_STR " elements)");
    CHECK_MSG(tg_expand(x, TG_SHAPE(3)), "tg_expand: cannot expand [1,1] to [3] (fewer dimensions)");
    /* a large expansion that fits is a view */
    tg_tensor *ok = tg_expand(x, TG_SHAPE(big, 4));
    CHECK(shape_is(ok, TG_SHAPE(big, 4)) && tg_stride(ok, 0) == 0 && tg_stride(ok, 1) == 0);
}

TEST(reshape_view_refuse_overflowing_shapes) {
    tg_device *dev = tg_test_device();
    tg_tensor *e = tg_zeros(TG_F32, TG_SHAPE(0), dev);
    int64_t b32 = INT64_C(1) << 32, b40 = INT64_C(1) << 40;
    CHECK_MSG(tg_reshape(e, TG_SHAPE(b32, b32, 0)),
              "tg_reshape: shape [4294967296,4294967296,0] is too large (more than " MAX_NUMEL_STR " elements)");
    CHECK_MSG(tg_view(e, TG_SHAPE(b32, b32, 0)),
              "tg_view: shape [4294967296,4294967296,0] is too large (more than " MAX_NUMEL_STR " elements)");
    CHECK_MSG(tg_reshape(e, TG_SHAPE(-1, b40, b40)),
              "tg_reshape: shape [-1,1099511627776,1099511627776] is too large (more than " MAX_NUMEL_STR " elements)");
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(4), dev);
    /* 2^62 * 4 wraps to 0 in int64: it must not look like a match for anything */
    CHECK_MSG(tg_reshape(x, TG_SHAPE(INT64_C(1) << 62, 4)),
              "tg_reshape: shape [4611686018427387904,4] is too large (more than " MAX_NUMEL_STR " elements)");
    CHECK_MSG(tg_reshape(e, TG_SHAPE(-1, 0)), "tg_reshape: cannot view [0] (0 elements) as [-1,0]");
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *y = tg_reshape(f32_of(v, TG_SHAPE(2, 3)), TG_SHAPE(3, -1));
    double got[6];
    CHECK(shape_is(y, TG_SHAPE(3, 2)) && read_values(y, got, 6));
    for (int i = 0; i < 6; i++) CHECK(got[i] == v[i]);
}

TEST(pad_refuses_huge_and_overcropping_amounts) {
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    int64_t b40 = INT64_C(1) << 40;
    CHECK_MSG(tg_pad(x, TG_PADS(INT64_MAX, 1), 0), "tg_pad: padding (9223372036854775807, 1) makes axis 1 of size 3 too large");
    CHECK_MSG(tg_pad(x, TG_PADS(b40, 0, b40, 0), 0),
              "tg_pad: shape [1099511627778,1099511627779] is too large (more than " MAX_NUMEL_STR " elements)");
    CHECK_MSG(tg_pad(x, TG_PADS(INT64_MIN, INT64_MAX), 0),
              "tg_pad: padding (-9223372036854775808, 9223372036854775807) leaves axis 1 of size 3 negative");
    CHECK_MSG(tg_pad(x, TG_PADS(2, -4), 0), "tg_pad: padding (2, -4) leaves axis 1 of size 3 negative");
    CHECK_MSG(tg_pad(x, TG_PADS(-2, -2), 0), "tg_pad: padding (-2, -2) leaves axis 1 of size 3 negative");
    /* crop one on the left of W, pad two on the right; pad one above H */
    tg_tensor *y = tg_pad(x, TG_PADS(-1, 2, 1, 0), 9);
    double want[12] = { 9, 9, 9, 9, 2, 3, 9, 9, 5, 6, 9, 9 }, got[12];
    CHECK(shape_is(y, TG_SHAPE(3, 4)) && read_values(y, got, 12));
    for (int i = 0; i < 12; i++) CHECK(got[i] == want[i]);
}

TEST(cat_and_one_hot_refuse_overflowing_results) {
    tg_device *dev = tg_test_device();
    tg_tensor *h = tg_expand(tg_zeros(TG_F32, TG_SHAPE(1), dev), TG_SHAPE(INT64_C(1) << 58));
    CHECK_MSG(tg_cat(2, (tg_tensor *[]){ h, h }, 0),
              "tg_cat: shape [576460752303423488] is too large (more than " MAX_NUMEL_STR " elements)");
    tg_tensor *labels = tg_zeros(TG_I32, TG_SHAPE(2), dev);
    CHECK_MSG(tg_one_hot(labels, INT64_C(1) << 62),
              "tg_one_hot: shape [2,4611686018427387904] is too large (more than " MAX_NUMEL_STR " elements)");
}

/* ------------------------------------------------------------------ index rule */

TEST(index_ops_refuse_out_of_range_and_name_the_call) {
    tg_device *dev = tg_test_device();
    float v[6] = { 0, 1, 2, 3, 4, 5 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    CHECK_MSG(tg_index_select(x, 1, tg_from_i32((int32_t[]){ 0, 3 }, TG_SHAPE(2), dev)),
              "tg_index_select: index 3 is out of range for axis 1 of size 3");
    CHECK_MSG(tg_cross_entropy(x, tg_from_i32((int32_t[]){ 0, 3 }, TG_SHAPE(2), dev)),
              "tg_cross_entropy: index 3 is out of range for axis 1 of size 3");
    CHECK_MSG(tg_one_hot(tg_from_i32((int32_t[]){ 2, -1 }, TG_SHAPE(2), dev), 3),
              "tg_one_hot: labels range over [-1, 2], outside [0, 3)");
    CHECK_MSG(tg_gather(x, 1, tg_zeros(TG_U8, TG_SHAPE(2, 1), dev)), "tg_gather: index must be i32 or i64, got u8");
    CHECK_MSG(tg_index_select(x, 0, tg_zeros(TG_F32, TG_SHAPE(1), dev)),
              "tg_index_select: index must be i32 or i64, got f32");
    CHECK_MSG(tg_index_select(x, 0, tg_zeros(TG_I32, TG_SHAPE(1, 1), dev)),
              "tg_index_select: index must be 1-D or 0-d, got 2 dimensions");
    CHECK_MSG(tg_scatter_add(x, 1, tg_zeros(TG_F64, TG_SHAPE(2, 1), dev), tg_zeros(TG_F32, TG_SHAPE(2, 1), dev)),
              "tg_scatter_add: index must be i32 or i64, got f64");
    CHECK_MSG(tg_cross_entropy(x, tg_zeros(TG_U8, TG_SHAPE(2), dev)), "tg_cross_entropy: labels must be i32 or i64, got u8");
    CHECK_MSG(tg_one_hot(tg_zeros(TG_F32, TG_SHAPE(2), dev), 3), "tg_one_hot: labels must be i32 or i64, got f32");
    /* a 0-d index picks one slice and keeps the axis */
    tg_tensor *y = tg_index_select(x, 1, tg_from_i32((int32_t[]){ 2 }, TG_SCALAR_SHAPE, dev));
    double got[2];
    CHECK(shape_is(y, TG_SHAPE(2, 1)) && read_values(y, got, 2) && got[0] == 2 && got[1] == 5);
}

/* [kernels] negative indices are errors, never wrapped */
TEST(negative_indices_are_errors) {
    tg_device *dev = tg_test_device();
    float v[6] = { 0, 1, 2, 3, 4, 5 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    CHECK_MSG(tg_cross_entropy(x, tg_from_i32((int32_t[]){ 0, -1 }, TG_SHAPE(2), dev)),
              "tg_cross_entropy: index -1 is out of range for axis 1 of size 3");
    CHECK_MSG(tg_gather(x, 1, tg_from_i32((int32_t[]){ 0, -1 }, TG_SHAPE(2, 1), dev)),
              "tg_gather: index -1 is out of range for axis 1 of size 3");
    CHECK_MSG(tg_index_select(x, 0, tg_from_i32((int32_t[]){ -1 }, TG_SHAPE(1), dev)),
              "tg_index_select: index -1 is out of range for axis 0 of size 2");
    CHECK_MSG(tg_scatter_add(x, 1, tg_from_i32((int32_t[]){ -1, 0 }, TG_SHAPE(2, 1), dev),
                             tg_ones(TG_F32, TG_SHAPE(2, 1), dev)),
              "tg_scatter_add: index -1 is out of range for axis 1 of size 3");
}

/* Host cross-entropy of (N, C) logits, mean over labels != ignore. */
static double ref_cross_entropy(const float *x, const int64_t *y, int n, int c, int64_t ignore) {
    double total = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] == ignore) continue;
        double m = x[i * c];
        for (int j = 1; j < c; j++) m = x[i * c + j] > m ? x[i * c + j] : m;
        double s = 0;
        for (int j = 0; j < c; j++) s += exp(x[i * c + j] - m);
        total += -(x[i * c + y[i]] - m - log(s));
        count++;
    }
    return total / count;
}

TEST(cross_entropy_ignore_index_may_be_out_of_range) {
    tg_device *dev = tg_test_device();
    float v[6] = { 0.5f, -1, 2, 1, 0, -0.25f };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    double want = ref_cross_entropy(v, (int64_t[]){ 2, -100 }, 2, 3, -100);
    CHECK_NEAR(tg_item(tg_cross_entropy(x, tg_from_i32((int32_t[]){ 2, -100 }, TG_SHAPE(2), dev))), want, 1e-5);
}

/* [kernels] i64 indices and labels */
TEST(i64_indices_and_labels) {
    tg_device *dev = tg_test_device();
    float v[6] = { 0.5f, -1, 2, 1, 0, -0.25f };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    int64_t lab[2] = { 2, 0 };
    tg_tensor *labels = tg_from_data(lab, TG_I64, TG_SHAPE(2), dev);
    CHECK_NEAR(tg_item(tg_cross_entropy(x, labels)), ref_cross_entropy(v, lab, 2, 3, -100), 1e-5);
    tg_tensor *idx = tg_from_data((int64_t[]){ 2, 0, 1, 1 }, TG_I64, TG_SHAPE(2, 2), dev);
    double got[6];
    CHECK(shape_is(tg_gather(x, 1, idx), TG_SHAPE(2, 2)) && read_values(tg_gather(x, 1, idx), got, 4) &&
          got[0] == 2 && got[1] == 0.5 && got[2] == 0 && got[3] == 0);
    const int64_t rows[3] = { 1, 1, 0 };
    tg_tensor *sel = tg_index_select(x, 0, tg_from_data(rows, TG_I64, TG_SHAPE(3), dev));
    double sv[9];
    CHECK(shape_is(sel, TG_SHAPE(3, 3)) && read_values(sel, sv, 9));
    for (int i = 0; i < 9; i++) CHECK(sv[i] == v[rows[i / 3] * 3 + i % 3]);
    tg_tensor *sc = tg_scatter_add(tg_zeros(TG_F32, TG_SHAPE(2, 3), dev), 1, idx, tg_ones(TG_F32, TG_SHAPE(2, 2), dev));
    double want_sc[6] = { 1, 0, 1, 0, 2, 0 };
    CHECK(read_values(sc, got, 6));
    for (int i = 0; i < 6; i++) CHECK(got[i] == want_sc[i]);
    int64_t oh[6];
    CHECK(read_i64(tg_one_hot(labels, 3), oh, 6) && oh[0] == 0 && oh[1] == 0 && oh[2] == 1 && oh[3] == 1 &&
          oh[4] == 0 && oh[5] == 0);
    CHECK_MSG(tg_one_hot(tg_from_data((int64_t[]){ 3 }, TG_I64, TG_SHAPE(1), dev), 3),
              "tg_one_hot: labels range over [3, 3], outside [0, 3)");
}

/* ------------------------------------------------------------------ var and std */

/* Host variance of n values with PyTorch's denominator max(0, n - correction). */
static double ref_var(const double *x, int n, int correction) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    double d = n - correction > 0 ? n - correction : 0;
    return s / d; /* s / 0: inf, or NaN when s is 0 */
}

static bool same_value(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * (1 + fabs(want));
}

TEST(var_std_large_correction) {
    tg_device *dev = tg_test_device();
    const double rows[2][3] = { { 1, 2, 4 }, { 3, 3, 3 } };
    tg_dtype dts[2] = { TG_F32, TG_F64 };
    for (int d = 0; d < 2; d++) {
        double flat[6] = { 1, 2, 4, 3, 3, 3 };
        tg_tensor *x = tg_cast(tg_from_f64(flat, TG_SHAPE(2, 3), dev), dts[d]);
        for (int c = 0; c <= 5; c++) {
            double got[2];
            for (int sq = 0; sq < 2; sq++) {
                tg_tensor *r = sq ? tg_std(x, TG_AXES(1), c, false) : tg_var(x, TG_AXES(1), c, false);
                bool ok = shape_is(r, TG_SHAPE(2)) && tg_dtype_of(r) == dts[d] && read_values(r, got, 2);
                for (int i = 0; ok && i < 2; i++) {
                    double want = ref_var(rows[i], 3, c);
                    ok = same_value(got[i], sq ? sqrt(want) : want, 1e-6);
                }
                if (!ok) FAIL_("%s(%s, axis 1, correction %d) disagrees with the host", sq ? "tg_std" : "tg_var",
                               tg_dtype_name(dts[d]), c);
            }
        }
        /* the case: 3 elements, correction 5, over all axes of one row */
        tg_tensor *row = tg_slice(x, 0, 0, 1, 1);
        double all = tg_item(tg_var(row, TG_ALL, 5, false));
        CHECK(isinf(all) && all > 0);
        CHECK(isnan(tg_item(tg_var(tg_slice(row, 1, 0, 1, 1), TG_ALL, 1, false)))); /* N = 1: 0 / 0 */
    }
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(3), dev);
    CHECK_MSG(tg_std(x, TG_ALL, -1, false), "tg_std: correction -1 is negative");
    CHECK_MSG(tg_std(tg_zeros(TG_I32, TG_SHAPE(3), dev), TG_ALL, 1, false),
              "tg_std: expected a floating dtype (f32 or f64), got i32");
}

/* ------------------------------------------------------------------ in-place into shared memory */

TEST(inplace_refuses_expanded_destinations) {
    tg_device *dev = tg_test_device();
    tg_tensor *base = tg_zeros(TG_F32, TG_SHAPE(1, 3), dev);
    tg_tensor *dst = tg_expand(base, TG_SHAPE(4, 3));
    tg_tensor *src = tg_ones(TG_F32, TG_SHAPE(4, 3), dev);
    const char *tail = " has stride 0 on axis 0 (an expanded view): more than one element of it refers to a single "
                       "memory location; write to tg_clone(dst) instead";
    char msg[512];
    snprintf(msg, sizeof msg, "tg_copy_: dst [4,3]%s", tail);
    CHECK_MSG(tg_copy_(dst, src), msg);
    snprintf(msg, sizeof msg, "tg_add_: dst [4,3]%s", tail);
    CHECK_MSG(tg_add_(dst, src), msg);
    snprintf(msg, sizeof msg, "tg_sub_: dst [4,3]%s", tail);
    CHECK_MSG(tg_sub_(dst, src), msg);
    snprintf(msg, sizeof msg, "tg_mul_: dst [4,3]%s", tail);
    CHECK_MSG(tg_mul_(dst, src), msg);
    snprintf(msg, sizeof msg, "tg_axpy_: dst [4,3]%s", tail);
    CHECK_MSG(tg_axpy_(dst, 2.0, src), msg);
    double got[12];
    CHECK(read_values(base, got, 3) && got[0] == 0 && got[1] == 0 && got[2] == 0); /* nothing written */
    /* stride 0 on a later axis, behind a transpose */
    tg_tensor *t = tg_transpose(tg_expand(tg_zeros(TG_F32, TG_SHAPE(2, 1), dev), TG_SHAPE(2, 5)), 0, 1);
    CHECK_MSG(tg_add_(t, tg_ones(TG_F32, TG_SHAPE(5, 2), dev)),
              "tg_add_: dst [5,2] has stride 0 on axis 0 (an expanded view): more than one element of it refers to a "
              "single memory location; write to tg_clone(dst) instead");
    /* fill_ writes one value, so PyTorch allows it, and so do we */
    tg_clear_error();
    CHECK(tg_fill_(dst, 7) == TG_OK);
    CHECK(read_values(base, got, 3) && got[0] == 7 && got[1] == 7 && got[2] == 7);
    /* stride 0 on an axis of size 1 shares nothing; strided and flipped views are fine */
    tg_tensor *one = tg_expand(tg_zeros(TG_F32, TG_SHAPE(3), dev), TG_SHAPE(1, 3));
    CHECK(tg_add_(one, tg_ones(TG_F32, TG_SHAPE(3), dev)) == TG_OK);
    CHECK(read_values(one, got, 3) && got[0] == 1 && got[1] == 1 && got[2] == 1);
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *m = tg_clone(f32_of(v, TG_SHAPE(2, 3)));
    CHECK(tg_mul_(tg_flip(tg_transpose(m, 0, 1), TG_AXES(0)), f32_of((float[]){ 1, 10, 100, 1000, 1e4f, 1e5f },
                                                                         TG_SHAPE(3, 2))) == TG_OK);
    /* flip(transpose(m)) [i][j] is m[j][2-i]: m[j][k] gets factor index (2-k)*2 + j */
    double want[6] = { 1 * 1e4, 2 * 100, 3 * 1, 4 * 1e5, 5 * 1000, 6 * 10 };
    CHECK(read_values(m, got, 6));
    for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], want[i], 1e-3);
}

/* ------------------------------------------------------------------ dtypes */

TEST(comparisons_stay_u8_and_mean_refuses_integers) {
    tg_device *dev = tg_test_device();
    tg_tensor *a = tg_from_i32((int32_t[]){ 1, 2, 3 }, TG_SHAPE(3), dev);
    tg_tensor *b = tg_from_i32((int32_t[]){ 1, 0, 3 }, TG_SHAPE(3), dev);
    tg_tensor *eq = tg_eq(a, b);
    double got[3];
    CHECK(eq && tg_dtype_of(eq) == TG_U8 && read_values(eq, got, 3) && got[0] == 1 && got[1] == 0 && got[2] == 1);
    CHECK_MSG(tg_mean(a, TG_ALL, false), "tg_mean: expected a floating dtype (f32 or f64), got i32");
    CHECK_MSG(tg_mean(eq, TG_ALL, false), "tg_mean: expected a floating dtype (f32 or f64), got u8");
    tg_tensor *mx = tg_max(a, TG_ALL, false), *mn = tg_min(eq, TG_ALL, false);
    CHECK(mx && tg_dtype_of(mx) == TG_I32 && tg_item(mx) == 3);
    CHECK(mn && tg_dtype_of(mn) == TG_U8 && tg_item(mn) == 0);
    tg_tensor *fs = tg_sum(tg_cast(a, TG_F32), TG_ALL, false);
    CHECK(fs && tg_dtype_of(fs) == TG_F32 && tg_item(fs) == 6);
}

/* [kernels] integer sums are exact i64 */
TEST(integer_sums_give_i64) {
    tg_device *dev = tg_test_device();
    enum { N = 300 };
    int32_t p[N], y[N];
    int64_t correct = 0;
    for (int i = 0; i < N; i++) {
        p[i] = i % 7;
        y[i] = i % 7 == 3 ? 0 : i % 7; /* wrong where i % 7 == 3 */
        correct += p[i] == y[i];
    }
    tg_tensor *mask = tg_eq(tg_from_i32(p, TG_SHAPE(N), dev), tg_from_i32(y, TG_SHAPE(N), dev));
    int64_t got[3];
    tg_tensor *count = tg_sum(mask, TG_ALL, false);
    CHECK(shape_is(count, TG_SCALAR_SHAPE) && read_i64(count, got, 1) && got[0] == correct && correct > 255);
    tg_tensor *ones = tg_ones(TG_U8, TG_SHAPE(2, 200), dev);
    tg_tensor *rows = tg_sum(ones, TG_AXES(1), true);
    CHECK(shape_is(rows, TG_SHAPE(2, 1)) && read_i64(rows, got, 2) && got[0] == 200 && got[1] == 200);
    tg_tensor *big = tg_from_i32((int32_t[]){ INT32_MAX, INT32_MAX, 5 }, TG_SHAPE(3), dev);
    CHECK(read_i64(tg_sum(big, TG_ALL, false), got, 1) && got[0] == 2 * (int64_t)INT32_MAX + 5);
    int64_t wide[2] = { (INT64_C(1) << 53) + 1, 1 }; /* past double's exact integers */
    tg_tensor *w = tg_from_data(wide, TG_I64, TG_SHAPE(2), dev);
    CHECK(read_i64(tg_sum(w, TG_ALL, false), got, 1) && got[0] == (INT64_C(1) << 53) + 2);
}

/* ------------------------------------------------------------------ arguments */

TEST(arguments_checked_and_messages_name_the_call) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 3), dev);
    CHECK_MSG(tg_clamp(NULL, 2, 1), "tg_clamp: x is NULL");
    CHECK_MSG(tg_sum(x, ((tg_axes){ .n = -5 }), false), "tg_sum: -5 axes given (at most 8, or -1 for TG_ALL)");
    CHECK_MSG(tg_softmax(x, -3), "tg_softmax: axis -3 is out of range for 2 dimensions");
    CHECK_MSG(tg_leaky_relu(tg_zeros(TG_I32, TG_SHAPE(2), dev), 0.1),
              "tg_leaky_relu: expected a floating dtype (f32 or f64), got i32");
    CHECK_MSG(tg_cross_entropy(tg_zeros(TG_I32, TG_SHAPE(2, 3), dev), tg_zeros(TG_I32, TG_SHAPE(2), dev)),
              "tg_cross_entropy: expected a floating dtype (f32 or f64), got i32");
    CHECK_MSG(tg_cross_entropy(x, NULL), "tg_cross_entropy: labels is NULL");
    CHECK_MSG(tg_index_select(NULL, 0, NULL), "tg_index_select: x is NULL");
    tg_tensor *x8 = tg_zeros(TG_F32, TG_SHAPE(1, 1, 1, 1, 1, 1, 1, 1), dev);
    CHECK_MSG(tg_unsqueeze(x8, 0), "tg_unsqueeze: x has 8 dimensions already (at most 8)");
    CHECK_MSG(tg_one_hot(tg_zeros(TG_I32, TG_SHAPE(1, 1, 1, 1, 1, 1, 1, 1), dev), 2),
              "tg_one_hot: labels have 8 dimensions; the result would have 9 (at most 8)");
    CHECK_MSG(tg_stack(2, (tg_tensor *[]){ x, tg_zeros(TG_F32, TG_SHAPE(2, 4), dev) }, 0),
              "tg_stack: tensor 1 has shape [2,4], tensor 0 has [2,3] (they must be equal)");
    CHECK_MSG(tg_stack(2, (tg_tensor *[]){ x, x }, 3), "tg_stack: axis 3 is out of range for 3 dimensions (at most 8)");
    CHECK_MSG(tg_stack(2, (tg_tensor *[]){ x, x }, -4), "tg_stack: axis -4 is out of range for 3 dimensions (at most 8)");
    CHECK_MSG(tg_stack(2, (tg_tensor *[]){ x, NULL }, 0), "tg_stack: a tensor is NULL");
    CHECK_MSG(tg_cat(0, NULL, 0), "tg_cat: needs at least one tensor");
    CHECK_MSG(tg_where(tg_zeros(TG_U8, TG_SHAPE(2, 3), dev), x, NULL), "tg_where: b is NULL");
    CHECK_MSG(tg_matmul(x, tg_zeros(TG_F64, TG_SHAPE(3, 2), dev)),
              "tg_matmul: dtypes differ: f32 and f64 (convert one with tg_cast)");
    CHECK_MSG(tg_copy_(NULL, x), "tg_copy_: dst is NULL");
    CHECK_MSG(tg_axpy_(x, 1, NULL), "tg_axpy_: src is NULL");
    CHECK_MSG(tg_flatten(x, 2), "tg_flatten: axis 2 is out of range for 2 dimensions");
    /* stack along the last new axis: values placed as torch.stack places them */
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *a = f32_of(v, TG_SHAPE(2, 3)), *s = tg_stack(2, (tg_tensor *[]){ a, tg_neg(a) }, -1);
    double got[12];
    CHECK(shape_is(s, TG_SHAPE(2, 3, 2)) && read_values(s, got, 12));
    for (int i = 0; i < 6; i++) CHECK(got[2 * i] == v[i] && got[2 * i + 1] == -v[i]);
}

/* [kernels] argmax/argmin write i64; runs last (aborts on the old CPU assert) */
TEST(argmax_argmin_give_i64) {
    float v[6] = { 3, 7, 7, -1, 0, -5 };
    tg_tensor *x = f32_of(v, TG_SHAPE(2, 3));
    int64_t got[2];
    tg_tensor *am = tg_argmax(x, 1, false), *an = tg_argmin(x, 1, true);
    CHECK(shape_is(am, TG_SHAPE(2)) && read_i64(am, got, 2) && got[0] == 1 && got[1] == 1);
    CHECK(shape_is(an, TG_SHAPE(2, 1)) && read_i64(an, got, 2) && got[0] == 0 && got[1] == 2);
    /* the accuracy idiom: i64 predictions against i32 labels promote, as in PyTorch */
    tg_tensor *labels = tg_from_i32((int32_t[]){ 1, 0 }, TG_SHAPE(2), tg_test_device());
    tg_tensor *hit = tg_eq(am, labels);
    double h[2];
    CHECK(hit && tg_dtype_of(hit) == TG_U8 && read_values(hit, h, 2) && h[0] == 1 && h[1] == 0);
    CHECK(read_i64(tg_sum(hit, TG_ALL, false), got, 1) && got[0] == 1);
    tg_tensor *u = tg_from_u8((uint8_t[]){ 200, 7 }, TG_SHAPE(2), tg_test_device());
    tg_tensor *lt = tg_lt(u, tg_from_i32((int32_t[]){ 300, -7 }, TG_SHAPE(2), tg_test_device()));
    CHECK(lt && read_values(lt, h, 2) && h[0] == 1 && h[1] == 0); /* 200 < 300 as i32, not as u8 */
    CHECK_MSG(tg_eq(u, tg_zeros(TG_F32, TG_SHAPE(2), tg_test_device())),
              "tg_eq: dtypes differ: u8 and f32 (convert one with tg_cast)");
}

TG_TEST_MAIN(&tg_case_split_checks_out_and_counts, &tg_case_slice_any_int64_bounds,
             &tg_case_slice_with_huge_step_backward, &tg_case_expand_checks_ndim_and_size,
             &tg_case_reshape_view_refuse_overflowing_shapes, &tg_case_pad_refuses_huge_and_overcropping_amounts,
             &tg_case_cat_and_one_hot_refuse_overflowing_results, &tg_case_index_ops_refuse_out_of_range_and_name_the_call,
             &tg_case_negative_indices_are_errors, &tg_case_cross_entropy_ignore_index_may_be_out_of_range,
             &tg_case_i64_indices_and_labels, &tg_case_var_std_large_correction,
             &tg_case_inplace_refuses_expanded_destinations, &tg_case_comparisons_stay_u8_and_mean_refuses_integers,
             &tg_case_integer_sums_give_i64, &tg_case_arguments_checked_and_messages_name_the_call,
             &tg_case_argmax_argmin_give_i64)
