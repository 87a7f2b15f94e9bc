/* Forward results of the ops that join, split or index tensors (cat, stack, split, pad,
 * gather, index_select, scatter_add, one_hot) against references computed here on the
 * host, over axes, memory layouts and dtypes. */
#include "ops_check.h"

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

TG_TEST_MAIN(&tg_case_cat_axes_layouts_dtypes, &tg_case_stack_axes, &tg_case_split_pieces,
             &tg_case_pad_positive_negative_mixed, &tg_case_gather_axes_layouts_dtypes,
             &tg_case_index_select_axes_layouts_dtypes, &tg_case_scatter_add_axes_layouts_dtypes, &tg_case_one_hot)
