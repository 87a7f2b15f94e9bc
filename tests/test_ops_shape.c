/* Forward results of movement, indexing, cast and creation ops against references
 * computed here on the host, on contiguous and non-contiguous inputs, f32 and f64,
 * including stride-0 and empty tensors, the random generators' statistics, and the
 * in-place updates (copy_, add_, sub_, mul_, axpy_, fill_) against host loops. */
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

/* ------------------------------------------------------------------ cat, stack, split, pad */

TEST(cat_axes_layouts_dtypes) {
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int d = 0; d < 3; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int axis = -2; axis < 2; axis++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                int a = axis < 0 ? axis + 2 : axis;
                WHAT("cat axis %d %s %s", axis, tg_dtype_name(dt), k_layout_names[l]);
                int64_t lens[3] = { 2, 4, 1 };
                tg_shape ss[3];
                double *xs[3];
                tg_tensor *ts[3];
                for (int i = 0; i < 3; i++) {
                    ss[i] = a == 0 ? TG_SHAPE(lens[i], 3) : TG_SHAPE(3, lens[i]);
                    xs[i] = int_vals(numel_of(ss[i]), -50, 50);
                    ts[i] = make(dt, ss[i], xs[i], (l + i) % L_COUNT); /* mixed layouts */
                }
                tg_shape so = a == 0 ? TG_SHAPE(7, 3) : TG_SHAPE(3, 7);
                double *ref = dbuf(21);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < 21; f++) {
                    unravel(f, so, idx);
                    int i = 0;
                    int64_t p = idx[a];
                    while (p >= lens[i]) p -= lens[i++];
                    idx[a] = p;
                    ref[f] = xs[i][ravel(idx, ss[i])];
                }
                EXPECT_EXACT(tg_cat(3, ts, axis), so, dt, ref);
                EXPECT_EXACT(tg_cat(1, ts, axis), ss[0], dt, xs[0]);
                release(m);
            }
    /* a large cat crossing the threading threshold */
    size_t m = mark();
    double *a, *b;
    tg_tensor *ts[2] = { input(TG_F32, TG_SHAPE(300, 200), -1, 1, L_TRANSPOSED, &a),
                         input(TG_F32, TG_SHAPE(300, 133), -1, 1, L_FLIPPED, &b) };
    double *ref = dbuf(300 * 333);
    for (int64_t i = 0; i < 300; i++)
        for (int64_t j = 0; j < 333; j++) ref[i * 333 + j] = j < 200 ? a[i * 200 + j] : b[i * 133 + j - 200];
    WHAT("large cat");
    EXPECT_EXACT(tg_cat(2, ts, 1), TG_SHAPE(300, 333), TG_F32, ref);
    release(m);
}

TEST(stack_axes) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int axis = -3; axis < 3; axis++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("stack axis %d %s %s", axis, tg_dtype_name(dt), k_layout_names[l]);
                double *xs[3];
                tg_tensor *ts[3];
                for (int i = 0; i < 3; i++) ts[i] = input(dt, TG_SHAPE(3, 4), -5, 5, (l + i) % L_COUNT, &xs[i]);
                int a = axis < 0 ? axis + 3 : axis;
                tg_shape so = { .ndim = 3 };
                for (int i = 0, j = 0; i < 3; i++) so.dims[i] = i == a ? 3 : (j++ == 0 ? 3 : 4);
                double *ref = dbuf(36);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < 36; f++) {
                    unravel(f, so, idx);
                    int64_t which = idx[a], rest[2];
                    for (int i = 0, j = 0; i < 3; i++)
                        if (i != a) rest[j++] = idx[i];
                    ref[f] = xs[which][rest[0] * 4 + rest[1]];
                }
                EXPECT_EXACT(tg_stack(3, ts, axis), so, dt, ref);
                release(m);
            }
}

TEST(split_pieces) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("split %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, TG_SHAPE(7, 4), -5, 5, l, &x);
            tg_tensor *out[4] = { 0 };
            CHECK(tg_split(t, 3, 0, out, 4) == 3);
            EXPECT_EXACT(out[0], TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(out[1], TG_SHAPE(3, 4), dt, x + 12);
            EXPECT_EXACT(out[2], TG_SHAPE(1, 4), dt, x + 24);
            CHECK(out[3] == NULL);
            /* along the last axis, with room for fewer pieces than there are */
            tg_tensor *o2[1] = { 0 };
            CHECK(tg_split(t, 1, -1, o2, 1) == 4);
            double col[7];
            for (int i = 0; i < 7; i++) col[i] = x[i * 4];
            EXPECT_EXACT(o2[0], TG_SHAPE(7, 1), dt, col);
            tg_tensor *o3[2] = { 0 };
            CHECK(tg_split(t, 3, 1, o3, 2) == 2);
            double c3[7];
            for (int i = 0; i < 7; i++) c3[i] = x[i * 4 + 3];
            EXPECT_EXACT(o3[1], TG_SHAPE(7, 1), dt, c3);
            tg_tensor *o4[1] = { 0 };
            CHECK(tg_split(t, 10, 0, o4, 1) == 1);
            EXPECT_EXACT(o4[0], TG_SHAPE(7, 4), dt, x);
            release(m);
        }
}

/* F.pad with constant value: pads[2k], pads[2k+1] apply to axis ndim-1-k; negative crops. */
static double *ref_pad(tg_shape s, const double *x, const int64_t *pads, int np, double value, tg_shape *so) {
    int64_t lo[TG_MAX_DIMS] = { 0 };
    *so = s;
    for (int k = 0; k < np / 2; k++) {
        int a = s.ndim - 1 - k;
        lo[a] = pads[2 * k];
        so->dims[a] = s.dims[a] + pads[2 * k] + pads[2 * k + 1];
    }
    int64_t n = numel_of(*so), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, *so, idx);
        bool in = true;
        for (int a = 0; a < s.ndim; a++) {
            idx[a] -= lo[a];
            in = in && idx[a] >= 0 && idx[a] < s.dims[a];
        }
        r[f] = in ? x[ravel(idx, s)] : value;
    }
    return r;
}

TEST(pad_positive_negative_mixed) {
    struct {
        tg_shape s;
        int np;
        int64_t p[6];
        double value;
    } cs[] = {
        { TG_SHAPE(3, 4), 2, { 1, 2 }, 0 },         { TG_SHAPE(3, 4), 4, { 1, 1, 2, 0 }, -1.5 },
        { TG_SHAPE(3, 4), 2, { -1, 2 }, 0 },        { TG_SHAPE(3, 4), 4, { 0, 0, -1, -1 }, 9 },
        { TG_SHAPE(3, 4, 5), 6, { -2, 1, 2, -3, 1, 1 }, 0.25 }, { TG_SHAPE(7), 2, { 3, -7 }, 2 },
        { TG_SHAPE(2, 3), 0, { 0 }, 1 },            { TG_SHAPE(3, 4), 2, { -2, -2 }, 1 },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("pad case %d %s %s", q, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, cs[q].s, -3, 3, l, &x);
                tg_pads pads = { .n = cs[q].np };
                for (int i = 0; i < cs[q].np; i++) pads.v[i] = cs[q].p[i];
                tg_shape so;
                double *ref = ref_pad(cs[q].s, x, cs[q].p, cs[q].np, cs[q].value, &so);
                EXPECT_EXACT(tg_pad(t, pads, cs[q].value), so, dt, ref);
                release(m);
            }
}

/* ================================================================== indexing */

static double *ref_gather(tg_shape sx, const double *x, int axis, tg_shape si, const double *idxv) {
    int64_t n = numel_of(si), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, si, idx);
        idx[axis] = (int64_t)idxv[f];
        r[f] = x[ravel(idx, sx)];
    }
    return r;
}

TEST(gather_axes_layouts_dtypes) {
    struct {
        tg_shape x, idx;
        int axis;
    } cs[] = { { TG_SHAPE(3, 5), TG_SHAPE(3, 4), 1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 5), 0 },
               { TG_SHAPE(3, 5), TG_SHAPE(3, 7), -1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 3), 1 },
               { TG_SHAPE(2, 3, 4), TG_SHAPE(2, 5, 4), 1 }, { TG_SHAPE(7), TG_SHAPE(4), 0 },
               { TG_SHAPE(300, 400), TG_SHAPE(300, 350), 1 } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 3; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                int axis = cs[q].axis < 0 ? cs[q].axis + cs[q].x.ndim : cs[q].axis;
                WHAT("gather %s axis %d index %s %s %s", shape_str(cs[q].x), cs[q].axis, shape_str(cs[q].idx),
                     tg_dtype_name(dt), k_layout_names[l]);
                double *x = int_vals(numel_of(cs[q].x), -1000, 1000);
                double *iv = int_vals(numel_of(cs[q].idx), 0, cs[q].x.dims[axis]);
                tg_tensor *t = make(dt, cs[q].x, x, l);
                tg_tensor *ti = make(TG_I32, cs[q].idx, iv, (l + 1) % L_COUNT); /* the index non-contiguous too */
                EXPECT_EXACT(tg_gather(t, cs[q].axis, ti), cs[q].idx, dt, ref_gather(cs[q].x, x, axis, cs[q].idx, iv));
                release(m);
            }
}

TEST(index_select_axes_layouts_dtypes) {
    struct {
        tg_shape x;
        int axis;
        int n;
        double idx[5];
    } cs[] = { { TG_SHAPE(4, 5), 0, 3, { 3, 0, 3 } }, { TG_SHAPE(4, 5), 1, 2, { 4, 1 } },
               { TG_SHAPE(4, 5), -1, 5, { 0, 0, 4, 2, 1 } }, { TG_SHAPE(2, 3, 4), 1, 4, { 2, 2, 0, 1 } },
               { TG_SHAPE(7), 0, 1, { 6 } } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 3; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                tg_shape sx = cs[q].x;
                int axis = cs[q].axis < 0 ? cs[q].axis + sx.ndim : cs[q].axis;
                WHAT("index_select %s axis %d %s %s", shape_str(sx), cs[q].axis, tg_dtype_name(dt), k_layout_names[l]);
                double *x = int_vals(numel_of(sx), -1000, 1000);
                tg_tensor *t = make(dt, sx, x, l);
                tg_tensor *ti = make(TG_I32, TG_SHAPE(cs[q].n), cs[q].idx, l);
                tg_shape so = sx;
                so.dims[axis] = cs[q].n;
                int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(n);
                for (int64_t f = 0; f < n; f++) {
                    unravel(f, so, idx);
                    idx[axis] = (int64_t)cs[q].idx[idx[axis]];
                    ref[f] = x[ravel(idx, sx)];
                }
                EXPECT_EXACT(tg_index_select(t, cs[q].axis, ti), so, dt, ref);
                release(m);
            }
}

TEST(scatter_add_axes_layouts_dtypes) {
    struct {
        tg_shape x, idx;
        int axis;
    } cs[] = { { TG_SHAPE(3, 5), TG_SHAPE(3, 4), 1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 5), 0 },
               { TG_SHAPE(3, 5), TG_SHAPE(2, 9), -1 }, { TG_SHAPE(2, 3, 4), TG_SHAPE(2, 6, 3), 1 },
               { TG_SHAPE(7), TG_SHAPE(20), 0 }, { TG_SHAPE(300, 400), TG_SHAPE(300, 350), 1 } };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                int axis = cs[q].axis < 0 ? cs[q].axis + cs[q].x.ndim : cs[q].axis;
                WHAT("scatter_add %s axis %d index %s %s %s", shape_str(cs[q].x), cs[q].axis, shape_str(cs[q].idx),
                     tg_dtype_name(dt), k_layout_names[l]);
                /* small integers: sums are exact in any order */
                double *x = int_vals(numel_of(cs[q].x), -100, 100);
                double *src = int_vals(numel_of(cs[q].idx), -100, 100);
                double *iv = int_vals(numel_of(cs[q].idx), 0, cs[q].x.dims[axis]); /* duplicates */
                tg_tensor *tx = make(dt, cs[q].x, x, l), *ts = make(dt, cs[q].idx, src, (l + 2) % L_COUNT);
                tg_tensor *ti = make(TG_I32, cs[q].idx, iv, (l + 1) % L_COUNT);
                double *ref = dbuf(numel_of(cs[q].x));
                for (int64_t i = 0; i < numel_of(cs[q].x); i++) ref[i] = x[i];
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < numel_of(cs[q].idx); f++) {
                    unravel(f, cs[q].idx, idx);
                    idx[axis] = (int64_t)iv[f];
                    ref[ravel(idx, cs[q].x)] += src[f];
                }
                EXPECT_EXACT(tg_scatter_add(tx, cs[q].axis, ti, ts), cs[q].x, dt, ref);
                EXPECT_EXACT(tx, cs[q].x, dt, x); /* out of place */
                release(m);
            }
}

TEST(one_hot) {
    double lab[6] = { 0, 3, 1, 1, 2, 3 };
    for (int l = 0; l < L_COUNT; l++) {
        size_t m = mark();
        WHAT("one_hot %s", k_layout_names[l]);
        tg_tensor *t = make(TG_I32, TG_SHAPE(2, 3), lab, l);
        double ref[24] = { 0 }, ref2[36] = { 0 };
        for (int i = 0; i < 6; i++) ref[i * 4 + (int)lab[i]] = 1, ref2[i * 6 + (int)lab[i]] = 1;
        EXPECT_EXACT(tg_one_hot(t, 4), TG_SHAPE(2, 3, 4), TG_I64, ref); /* int64 as PyTorch's */
        EXPECT_EXACT(tg_one_hot(t, 6), TG_SHAPE(2, 3, 6), TG_I64, ref2);
        release(m);
    }
    double two = 2;
    WHAT("one_hot 0-d");
    EXPECT_EXACT(tg_one_hot(from_doubles(TG_I32, TG_SCALAR_SHAPE, &two), 3), TG_SHAPE(3), TG_I64, ((double[]){ 0, 0, 1 }));
    double one = 0;
    EXPECT_EXACT(tg_one_hot(from_doubles(TG_I32, TG_SHAPE(1), &one), 1), TG_SHAPE(1, 1), TG_I64, ((double[]){ 1 }));
}

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

TG_TEST_MAIN(&tg_case_reshape_view_flatten, &tg_case_reshape_is_view_when_contiguous,
             &tg_case_permute_transpose, &tg_case_expand, &tg_case_slice_step_negative_start_clamping,
             &tg_case_squeeze_unsqueeze, &tg_case_flip, &tg_case_contiguous_and_clone,
             &tg_case_cat_axes_layouts_dtypes, &tg_case_stack_axes, &tg_case_split_pieces,
             &tg_case_pad_positive_negative_mixed, &tg_case_gather_axes_layouts_dtypes,
             &tg_case_index_select_axes_layouts_dtypes, &tg_case_scatter_add_axes_layouts_dtypes,
             &tg_case_one_hot, &tg_case_cast_all_dtype_pairs, &tg_case_ops_on_broadcast_views,
             &tg_case_empty_tensors, &tg_case_zeros_ones_full_scalar_like, &tg_case_arange_linspace_eye,
             &tg_case_rand_randn_bernoulli_statistics, &tg_case_random_same_seed_same_numbers,
             &tg_case_uniform_normal_fill_in_place, &tg_case_inplace_ops_against_host_loops,
             &tg_case_inplace_ops_large_and_aliased, &tg_case_inplace_ops_errors)
