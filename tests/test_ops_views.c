/* Forward results of the movement views (reshape, view, flatten, permute, transpose,
 * expand, slice with steps, squeeze, unsqueeze, flip, contiguous, clone) against host
 * references on contiguous and non-contiguous inputs, f32 and f64, and of ops on
 * stride-0 (broadcast) views and on empty tensors. */
#include "ops_check.h"

/* ================================================================== movement */

/* out[idx] = x[perm applied]: out axis i is x axis order[i]. */
static double *ref_permute(tg_shape s, const double *x, const int *order, tg_shape *so) {
    so->ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) so->dims[i] = s.dims[order[i]];
    int64_t n = numel_of(s), oi[TG_MAX_DIMS] = { 0 }, xi[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, *so, oi);
        for (int i = 0; i < s.ndim; i++) xi[order[i]] = oi[i];
        r[f] = x[ravel(xi, s)];
    }
    return r;
}

TEST(reshape_view_flatten) {
    tg_shape s = TG_SHAPE(3, 4, 5);
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("reshape %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, s, -3, 3, l, &x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(5, -1)), TG_SHAPE(5, 12), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(60)), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(2, -1, 5)), TG_SHAPE(2, 6, 5), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(-1)), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(1, 3, 1, 20)), TG_SHAPE(1, 3, 1, 20), dt, x);
            EXPECT_EXACT(tg_flatten(t, 1), TG_SHAPE(3, 20), dt, x);
            EXPECT_EXACT(tg_flatten(t, 0), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_flatten(t, -1), TG_SHAPE(3, 4, 5), dt, x);
            EXPECT_EXACT(tg_flatten(t, -2), TG_SHAPE(3, 20), dt, x);
            /* reshape of a reshape of a non-contiguous input */
            EXPECT_EXACT(tg_reshape(tg_reshape(t, TG_SHAPE(12, 5)), TG_SHAPE(4, 15)), TG_SHAPE(4, 15), dt, x);
            if (l == L_CONTIG || l == L_STRIDED) /* these strides allow merging the first two axes */
                EXPECT_EXACT(tg_view(t, TG_SHAPE(12, 5)), TG_SHAPE(12, 5), dt, x);
            if (l == L_CONTIG) EXPECT_EXACT(tg_view(t, TG_SHAPE(-1, 2, 10)), TG_SHAPE(3, 2, 10), dt, x);
            if (l == L_TRANSPOSED) CHECK_ERROR(tg_view(t, TG_SHAPE(60)), "tg_view: the strides of [3,4,5] do not allow a view; use tg_reshape (which copies) or tg_contiguous first");
            release(m);
        }
    double one = 4.5;
    tg_tensor *sc = from_doubles(TG_F64, TG_SCALAR_SHAPE, &one);
    WHAT("reshape 0-d");
    EXPECT_EXACT(tg_reshape(sc, TG_SHAPE(1, 1)), TG_SHAPE(1, 1), TG_F64, &one);
    EXPECT_EXACT(tg_reshape(tg_reshape(sc, TG_SHAPE(1)), TG_SCALAR_SHAPE), TG_SCALAR_SHAPE, TG_F64, &one);
    EXPECT_EXACT(tg_flatten(sc, 0), TG_SHAPE(1), TG_F64, &one);
    EXPECT_EXACT(tg_view(sc, TG_SHAPE(1, 1, 1)), TG_SHAPE(1, 1, 1), TG_F64, &one);
}

TEST(reshape_is_view_when_contiguous) {
    double x[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *t = from_doubles(TG_F64, TG_SHAPE(2, 3), x);
    tg_tensor *v = tg_view(t, TG_SHAPE(3, 2));
    WHAT("view shares storage");
    CHECK(tg_fill_(t, 7) == TG_OK);
    EXPECT_EXACT(v, TG_SHAPE(3, 2), TG_F64, ((double[]){ 7, 7, 7, 7, 7, 7 }));
}

TEST(permute_transpose) {
    tg_shape s = TG_SHAPE(2, 3, 4, 5);
    int orders[4][4] = { { 2, 0, 1, 3 }, { 3, 2, 1, 0 }, { 1, 3, 0, 2 }, { 0, 1, 2, 3 } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int d = 0; d < 3; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            double *x = int_vals(numel_of(s), -100, 100);
            tg_tensor *t = make(dt, s, x, l);
            for (int p = 0; p < 4; p++) {
                WHAT("permute order %d %s %s", p, tg_dtype_name(dt), k_layout_names[l]);
                tg_shape so;
                double *ref = ref_permute(s, x, orders[p], &so);
                EXPECT_EXACT(tg_permute(t, TG_AXES(orders[p][0], orders[p][1], orders[p][2], orders[p][3])), so, dt, ref);
                /* the same order with negative axes */
                EXPECT_EXACT(tg_permute(t, TG_AXES(orders[p][0] - 4, orders[p][1], orders[p][2] - 4, orders[p][3])), so,
                             dt, ref);
            }
            WHAT("transpose %s %s", tg_dtype_name(dt), k_layout_names[l]);
            tg_shape so;
            EXPECT_EXACT(tg_transpose(t, 0, 2), TG_SHAPE(4, 3, 2, 5), dt,
                         ref_permute(s, x, (int[]){ 2, 1, 0, 3 }, &so));
            EXPECT_EXACT(tg_transpose(t, -1, -2), TG_SHAPE(2, 3, 5, 4), dt,
                         ref_permute(s, x, (int[]){ 0, 1, 3, 2 }, &so));
            EXPECT_EXACT(tg_transpose(t, 1, 1), s, dt, x);
            /* transposing twice gives the input back; contiguous of a permute is dense */
            EXPECT_EXACT(tg_transpose(tg_transpose(t, 0, 3), 3, 0), s, dt, x);
            tg_tensor *c = tg_contiguous(tg_permute(t, TG_AXES(3, 2, 1, 0)));
            CHECK(c && tg_is_contiguous(c));
            EXPECT_EXACT(c, TG_SHAPE(5, 4, 3, 2), dt, ref_permute(s, x, (int[]){ 3, 2, 1, 0 }, &so));
            release(m);
        }
}

TEST(expand) {
    struct {
        tg_shape in, target, out;
    } cs[] = {
        { TG_SHAPE(3, 1), TG_SHAPE(2, 3, 4), TG_SHAPE(2, 3, 4) },
        { TG_SHAPE(3, 1), TG_SHAPE(-1, 5), TG_SHAPE(3, 5) },
        { TG_SCALAR_SHAPE, TG_SHAPE(2, 3), TG_SHAPE(2, 3) },
        { TG_SHAPE(1, 4), TG_SHAPE(3, 1, 4), TG_SHAPE(3, 1, 4) },
        { TG_SHAPE(2, 1, 3), TG_SHAPE(2, 4, 3), TG_SHAPE(2, 4, 3) },
        { TG_SHAPE(1, 321), TG_SHAPE(311, 321), TG_SHAPE(311, 321) },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("expand %s to %s %s %s", shape_str(cs[q].in), shape_str(cs[q].target), tg_dtype_name(dt),
                     k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, cs[q].in, -3, 3, l, &x);
                tg_shape so = cs[q].out;
                int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(n);
                for (int64_t i = 0; i < n; i++) {
                    unravel(i, so, idx);
                    ref[i] = x[bcast_flat(idx, so, cs[q].in)];
                }
                tg_tensor *e = tg_expand(t, cs[q].target);
                EXPECT_EXACT(e, so, dt, ref);
                /* an op on the expanded view, and a dense copy of it */
                double *ref2 = dbuf(n);
                for (int64_t i = 0; i < n; i++) ref2[i] = 2 * ref[i];
                EXPECT(tg_mul_scalar(e, 2), so, dt, ref2, 0, 0);
                EXPECT_EXACT(tg_contiguous(e), so, dt, ref);
                release(m);
            }
}

/* Python's x[start:stop:step] along axis, for the test. */
static double *ref_slice(tg_shape s, const double *x, int axis, int64_t start, int64_t stop, int64_t step, tg_shape *so) {
    int64_t len = s.dims[axis];
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    if (start > len) start = len;
    if (stop > len) stop = len;
    if (stop < start) stop = start;
    *so = s;
    so->dims[axis] = (stop - start + step - 1) / step;
    int64_t n = numel_of(*so), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, *so, idx);
        idx[axis] = start + idx[axis] * step;
        r[i] = x[ravel(idx, s)];
    }
    return r;
}

TEST(slice_step_negative_start_clamping) {
    tg_shape s = TG_SHAPE(7, 5);
    struct {
        int axis;
        int64_t start, stop, step;
    } cs[] = { { 0, 1, 6, 2 },  { 0, -5, INT64_MAX, 3 }, { 0, -100, 3, 1 }, { 0, 5, 2, 1 }, { 1, 1, -1, 2 },
               { -1, 0, 100, 4 }, { 0, 6, 7, 1 }, { 1, -1, INT64_MAX, 1 }, { 0, 0, INT64_MAX, 10 }, { 0, 3, -3, 1 } };
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("slice axis %d [%lld:%lld:%lld] %s %s", cs[q].axis, (long long)cs[q].start, (long long)cs[q].stop,
                     (long long)cs[q].step, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, s, -3, 3, l, &x);
                tg_shape so;
                int axis = cs[q].axis < 0 ? cs[q].axis + 2 : cs[q].axis;
                double *ref = ref_slice(s, x, axis, cs[q].start, cs[q].stop, cs[q].step, &so);
                tg_tensor *y = tg_slice(t, cs[q].axis, cs[q].start, cs[q].stop, cs[q].step);
                EXPECT_EXACT(y, so, dt, ref);
                /* a slice of the slice, then an op on it */
                if (numel_of(so) > 0) {
                    tg_shape so2;
                    double *ref2 = ref_slice(so, ref, 1, 1, INT64_MAX, 2, &so2);
                    EXPECT_EXACT(tg_slice(y, 1, 1, INT64_MAX, 2), so2, dt, ref2);
                    for (int64_t i = 0; i < numel_of(so2); i++) ref2[i] = -ref2[i];
                    EXPECT_EXACT(tg_neg(tg_slice(y, 1, 1, INT64_MAX, 2)), so2, dt, ref2);
                }
                release(m);
            }
    /* a large slice with a step, through an op (threads over a strided input) */
    size_t m = mark();
    double *x;
    tg_tensor *t = input(TG_F64, TG_SHAPE(600, 333), -3, 3, L_CONTIG, &x);
    tg_shape so;
    double *ref = ref_slice(TG_SHAPE(600, 333), x, 0, -599, INT64_MAX, 2, &so);
    for (int64_t i = 0; i < numel_of(so); i++) ref[i] = exp(ref[i]);
    WHAT("large strided slice");
    EXPECT(tg_exp(tg_slice(t, 0, -599, INT64_MAX, 2)), so, TG_F64, ref, 0, 1e-12);
    release(m);
}

TEST(squeeze_unsqueeze) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("squeeze/unsqueeze %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, TG_SHAPE(3, 1, 4), -3, 3, l, &x);
            EXPECT_EXACT(tg_squeeze(t, 1), TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(t, -2), TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(t, 0), TG_SHAPE(3, 1, 4), dt, x); /* size 3: unchanged, as PyTorch */
            tg_tensor *u = input(dt, TG_SHAPE(3, 4), -3, 3, l, &x);
            EXPECT_EXACT(tg_unsqueeze(u, 0), TG_SHAPE(1, 3, 4), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, 1), TG_SHAPE(3, 1, 4), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, 2), TG_SHAPE(3, 4, 1), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, -1), TG_SHAPE(3, 4, 1), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, -3), TG_SHAPE(1, 3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(tg_unsqueeze(u, 1), 1), TG_SHAPE(3, 4), dt, x);
            release(m);
        }
    double v = 2.5;
    tg_tensor *sc = from_doubles(TG_F32, TG_SCALAR_SHAPE, &v);
    WHAT("unsqueeze 0-d");
    EXPECT_EXACT(tg_unsqueeze(sc, 0), TG_SHAPE(1), TG_F32, &v);
    EXPECT_EXACT(tg_squeeze(tg_unsqueeze(sc, -1), 0), TG_SCALAR_SHAPE, TG_F32, &v);
}

TEST(flip) {
    tg_shape s = TG_SHAPE(3, 4, 5);
    tg_axes axs[6] = { TG_AXES(0), TG_AXES(1), TG_AXES(-1), TG_AXES(0, 2), TG_ALL, TG_AXES(2, 0, 1) };
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int q = 0; q < 6; q++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("flip case %d %s %s", q, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, s, -3, 3, l, &x);
                uint32_t mask = axes_mask(axs[q], 3);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(60), *ref2 = dbuf(60);
                for (int64_t i = 0; i < 60; i++) {
                    unravel(i, s, idx);
                    for (int a = 0; a < 3; a++)
                        if (mask >> a & 1) idx[a] = s.dims[a] - 1 - idx[a];
                    ref[i] = x[ravel(idx, s)];
                    ref2[i] = ref[i] * ref[i];
                }
                tg_tensor *f = tg_flip(t, axs[q]);
                EXPECT_EXACT(f, s, dt, ref);
                EXPECT(tg_square(f), s, dt, ref2, tol_a(dt), tol_r(dt));
                EXPECT_EXACT(tg_flip(f, axs[q]), s, dt, x);
                EXPECT_EXACT(tg_contiguous(f), s, dt, ref);
                release(m);
            }
}

TEST(contiguous_and_clone) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int d = 0; d < 4; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            WHAT("contiguous/clone %s %s", tg_dtype_name(dt), k_layout_names[l]);
            tg_shape s = TG_SHAPE(5, 7);
            double *x = int_vals(35, 0, 100);
            tg_tensor *t = make(dt, s, x, l);
            CHECK(tg_is_contiguous(t) == (l == L_CONTIG));
            tg_tensor *c = tg_contiguous(t), *k = tg_clone(t);
            CHECK(c && tg_is_contiguous(c));
            CHECK(k && tg_is_contiguous(k));
            EXPECT_EXACT(c, s, dt, x);
            EXPECT_EXACT(k, s, dt, x);
            if (c) CHECK(tg_stride(c, 0) == 7 && tg_stride(c, 1) == 1);
            /* a clone owns its storage: filling it leaves the input alone */
            CHECK(tg_fill_(k, 3) == TG_OK);
            EXPECT_EXACT(t, s, dt, x);
            release(m);
        }
}

/* ================================================================== stride-0 and empty inputs */

TEST(ops_on_broadcast_views) {
    for (int d = 0; d < 2; d++) {
        size_t m = mark();
        tg_dtype dt = k_float_dtypes[d];
        WHAT("ops on a stride-0 view %s", tg_dtype_name(dt));
        double *x;
        tg_tensor *row = input(dt, TG_SHAPE(1, 5), -2, 2, L_CONTIG, &x);
        tg_tensor *e = tg_expand(row, TG_SHAPE(4, 5)); /* every row the same */
        double rep[20], colsum[5], rowsum[4] = { 0 }, sm0[20], ex[20], mm[16], absum[16];
        for (int i = 0; i < 20; i++) rep[i] = x[i % 5], ex[i] = exp(x[i % 5]), sm0[i] = 0.25;
        for (int j = 0; j < 5; j++) colsum[j] = 4 * x[j];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 5; j++) rowsum[i] += x[j];
        double ss = 0, sa = 0;
        for (int j = 0; j < 5; j++) ss += x[j] * x[j], sa += x[j] * x[j];
        for (int i = 0; i < 16; i++) mm[i] = ss, absum[i] = sa;
        EXPECT(tg_sum(e, TG_AXES(0), false), TG_SHAPE(5), dt, colsum, tol_a(dt), tol_r(dt));
        EXPECT(tg_sum(e, TG_AXES(1), true), TG_SHAPE(4, 1), dt, rowsum, tol_a(dt), 1e-5);
        EXPECT(tg_softmax(e, 0), TG_SHAPE(4, 5), dt, sm0, tol_a(dt), tol_r(dt));
        EXPECT(tg_exp(e), TG_SHAPE(4, 5), dt, ex, tol_a(dt), tol_r(dt));
        EXPECT_SCALED(tg_matmul(e, tg_transpose(e, 0, 1)), TG_SHAPE(4, 4), dt, mm, tol_a(dt), tol_r(dt), absum);
        EXPECT_EXACT(tg_reshape(e, TG_SHAPE(20)), TG_SHAPE(20), dt, rep);
        EXPECT_EXACT(tg_contiguous(e), TG_SHAPE(4, 5), dt, rep);
        EXPECT_EXACT(tg_cast(e, TG_F64), TG_SHAPE(4, 5), TG_F64, rep);
        tg_tensor *two[2] = { e, row };
        double cat[25];
        for (int i = 0; i < 25; i++) cat[i] = x[i % 5];
        EXPECT_EXACT(tg_cat(2, two, 0), TG_SHAPE(5, 5), dt, cat);
        double gi[4] = { 4, 0, 2, 2 };
        tg_tensor *idx = from_doubles(TG_I32, TG_SHAPE(4, 1), gi);
        EXPECT_EXACT(tg_gather(e, 1, idx), TG_SHAPE(4, 1), dt, ((double[]){ x[4], x[0], x[2], x[2] }));
        /* a 0-d value broadcast over a large shape: a threaded sum of a stride-0 input */
        double v = 0.5;
        tg_tensor *big = tg_expand(from_doubles(dt, TG_SCALAR_SHAPE, &v), TG_SHAPE(311, 321));
        double total = 0.5 * 311 * 321;
        EXPECT(tg_sum(big, TG_ALL, false), TG_SCALAR_SHAPE, dt, &total, 0, 1e-6);
        double *halfs = dbuf(321);
        for (int i = 0; i < 321; i++) halfs[i] = 0.5;
        EXPECT_EXACT(tg_max(big, TG_AXES(0), false), TG_SHAPE(321), dt, halfs);
        EXPECT(tg_mean(big, TG_AXES(1), false), TG_SHAPE(311), dt, halfs, tol_a(dt), tol_r(dt));
        release(m);
    }
}

TEST(empty_tensors) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("empty tensors %s", tg_dtype_name(dt));
        tg_tensor *e = tg_zeros(dt, TG_SHAPE(0, 3), dev);
        double none[1] = { 0 };
        EXPECT_EXACT(tg_exp(e), TG_SHAPE(0, 3), dt, none);
        EXPECT_EXACT(tg_add(e, tg_ones(dt, TG_SHAPE(3), dev)), TG_SHAPE(0, 3), dt, none);
        EXPECT_EXACT(tg_sum(e, TG_AXES(0), false), TG_SHAPE(3), dt, ((double[]){ 0, 0, 0 }));
        EXPECT_EXACT(tg_sum(e, TG_ALL, false), TG_SCALAR_SHAPE, dt, ((double[]){ 0 }));
        EXPECT_EXACT(tg_sum(e, TG_AXES(1), false), TG_SHAPE(0), dt, none);
        EXPECT_EXACT(tg_transpose(e, 0, 1), TG_SHAPE(3, 0), dt, none);
        EXPECT_EXACT(tg_reshape(e, TG_SHAPE(3, -1, 5)), TG_SHAPE(3, 0, 5), dt, none);
        double *x;
        tg_tensor *t = input(dt, TG_SHAPE(2, 3), -2, 2, L_TRANSPOSED, &x);
        tg_tensor *two[2] = { e, t };
        EXPECT_EXACT(tg_cat(2, two, 0), TG_SHAPE(2, 3), dt, x);
        /* K = 0: a sum of nothing is zero; M = 0: no rows */
        EXPECT_EXACT(tg_matmul(tg_zeros(dt, TG_SHAPE(2, 0), dev), tg_zeros(dt, TG_SHAPE(0, 3), dev)), TG_SHAPE(2, 3), dt,
                     ((double[]){ 0, 0, 0, 0, 0, 0 }));
        tg_tensor *k0a = tg_full(dt, TG_SHAPE(2, 0), 1, dev), *k0b = tg_full(dt, TG_SHAPE(0, 3), 1, dev);
        EXPECT_EXACT(tg_add_scalar(tg_matmul(k0a, k0b), 1), TG_SHAPE(2, 3), dt, ((double[]){ 1, 1, 1, 1, 1, 1 }));
        EXPECT_EXACT(tg_matmul(e, tg_ones(dt, TG_SHAPE(3, 2), dev)), TG_SHAPE(0, 2), dt, none);
        EXPECT_EXACT(tg_slice(t, 0, 1, 1, 1), TG_SHAPE(0, 3), dt, none);
        CHECK_ERROR(tg_max(e, TG_AXES(0), false), "tg_max: cannot reduce over axis 0 of size 0");
    }
}

TG_TEST_MAIN(&tg_case_reshape_view_flatten, &tg_case_reshape_is_view_when_contiguous, &tg_case_permute_transpose,
             &tg_case_expand, &tg_case_slice_step_negative_start_clamping, &tg_case_squeeze_unsqueeze, &tg_case_flip,
             &tg_case_contiguous_and_clone, &tg_case_ops_on_broadcast_views, &tg_case_empty_tensors)
