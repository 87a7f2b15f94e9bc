/* Gradients of the reductions (sum, mean, max, min, var, std, logsumexp, norm), softmax
 * and log_softmax, cross-entropy, matmul, the movement and join ops, indexing, and small
 * compositions (MLPs with their losses), checked against central differences with
 * tg_gradcheck (f64), over axes, keepdim and non-contiguous inputs; the max/min tie rule
 * against closed forms. */
#include "grad_check.h"

/* ================================================================== reductions */

TEST(gradcheck_reductions) {
    tg_axes axs[] = { TG_ALL, TG_AXES(0), TG_AXES(1), TG_AXES(2), TG_AXES(-1), TG_AXES(0, 2), TG_AXES(2, 1) };
    tg_manual_seed(4);
    for (int k = 0; k < R_COUNT; k++)
        for (int a = 0; a < (int)(sizeof axs / sizeof axs[0]); a++)
            for (int keep = 0; keep < 2; keep++)
                for (int perm = 0; perm < 2; perm++) {
                    red_ctx c = { k, axs[a], keep, perm };
                    /* distinct values: max/min have no tie, var/std no zero spread */
                    tg_tensor *x = perm ? distinct(TG_SHAPE(3, 4, 2), 0) : distinct(TG_SHAPE(2, 3, 4), 0);
                    WHAT("%s axes case %d keepdim %d permuted %d", k_red_names[k], a, keep, perm);
                    GRADCHECK(f_reduce, &c, x);
                }
    /* 0-d and 1-element inputs */
    for (int k = 0; k < R_COUNT; k++) {
        if (k == R_VAR1 || k == R_STD1 || k == R_VAR0 || k == R_STD0) continue; /* no spread to differentiate */
        red_ctx c = { k, TG_ALL, false, false };
        WHAT("%s over a 0-d input", k_red_names[k]);
        GRADCHECK(f_reduce, &c, uni(TG_SCALAR_SHAPE, -1, 1));
        WHAT("%s over (1)", k_red_names[k]);
        GRADCHECK(f_reduce, &c, uni(TG_SHAPE(1), -1, 1));
    }
}

static tg_tensor *f_norm(tg_tensor *const *in, void *ctx) { return tg_norm(in[0]); }
static tg_tensor *f_norm_tr(tg_tensor *const *in, void *ctx) { return tg_norm(tg_transpose(in[0], 0, 1)); }

TEST(gradcheck_norm) {
    tg_manual_seed(5);
    WHAT("norm (2,3,4)");
    GRADCHECK(f_norm, NULL, uni(TG_SHAPE(2, 3, 4), -2, 2));
    WHAT("norm of a transposed view");
    GRADCHECK(f_norm_tr, NULL, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("norm 0-d");
    GRADCHECK(f_norm, NULL, away0(TG_SCALAR_SHAPE, 0.5, 2));
}

static tg_tensor *f_lse_large(tg_tensor *const *in, void *ctx) {
    return tg_logsumexp(tg_add_scalar(in[0], 1000), TG_AXES(1), false);
}

TEST(gradcheck_logsumexp_large_logits) {
    tg_manual_seed(6);
    WHAT("logsumexp of logits near 1000");
    GRADCHECK(f_lse_large, NULL, uni(TG_SHAPE(3, 4), -2, 2));
}

/* ================================================================== softmax, log_softmax */

TEST(gradcheck_softmax_log_softmax) {
    tg_manual_seed(7);
    for (int lg = 0; lg < 2; lg++) {
        const char *name = lg ? "log_softmax" : "softmax";
        int axes2[] = { 0, 1, -1 };
        for (int a = 0; a < 3; a++) {
            sm_ctx c = { axes2[a], lg, false };
            WHAT("%s (3,4) axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &c, uni(TG_SHAPE(3, 4), -3, 3));
            sm_ctx ct = { axes2[a], lg, true };
            WHAT("%s transposed inside axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &ct, uni(TG_SHAPE(4, 3), -3, 3));
            WHAT("%s transposed view input axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &c, tg_transpose(uni(TG_SHAPE(4, 3), -3, 3), 0, 1));
        }
        int axes3[] = { 0, 1, 2 };
        for (int a = 0; a < 3; a++) {
            sm_ctx c = { axes3[a], lg, false };
            WHAT("%s (2,3,4) axis %d", name, axes3[a]);
            GRADCHECK(f_softmax, &c, uni(TG_SHAPE(2, 3, 4), -3, 3));
        }
        sm_ctx c1 = { 0, lg, false };
        WHAT("%s (1)", name);
        GRADCHECK(f_softmax, &c1, uni(TG_SHAPE(1), -3, 3));
    }
}

/* ================================================================== cross-entropy */

TEST(gradcheck_cross_entropy) {
    tg_manual_seed(8);
    tg_tensor *lab = i32((const int32_t[]){ 1, 0, 4, 2 }, TG_SHAPE(4));
    tg_tensor *lab_ign = i32((const int32_t[]){ 1, -100, 4, 2 }, TG_SHAPE(4));
    tg_tensor *lab_ign2 = i32((const int32_t[]){ 2, 0, 4, 2 }, TG_SHAPE(4));
    ce_ctx cs[] = {
        { lab, { 0 }, false, false },
        { lab, { .reduction = TG_REDUCTION_MEAN }, true, false },
        { lab, { .reduction = TG_REDUCTION_SUM }, true, false },
        { lab, { .reduction = TG_REDUCTION_NONE }, true, false },
        { lab_ign, { 0 }, false, false },
        { lab_ign, { .reduction = TG_REDUCTION_NONE }, true, false },
        { lab_ign2, { .ignore_index = TG_SOME(2) }, true, false },
        { lab_ign2, { .ignore_index = TG_SOME(0), .reduction = TG_REDUCTION_SUM }, true, false },
        { lab, { 0 }, false, true },
        { lab_ign, { .reduction = TG_REDUCTION_SUM }, true, true },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("cross_entropy case %d", q);
        GRADCHECK(f_ce, &cs[q], cs[q].transpose_first ? uni(TG_SHAPE(5, 4), -3, 3) : uni(TG_SHAPE(4, 5), -3, 3));
    }
    /* (N, C, d) logits with (N, d) labels */
    ce_ctx cd = { i32((const int32_t[]){ 0, 2, 1, 1, 2, 0, -100, 1 }, TG_SHAPE(2, 4)), { 0 }, false, false };
    WHAT("cross_entropy (2,3,4) logits");
    GRADCHECK(f_ce, &cd, uni(TG_SHAPE(2, 3, 4), -3, 3));
    ce_ctx cdn = { cd.labels, { .reduction = TG_REDUCTION_NONE }, true, false };
    WHAT("cross_entropy (2,3,4) logits, no reduction");
    GRADCHECK(f_ce, &cdn, uni(TG_SHAPE(2, 3, 4), -3, 3));
}

/* ================================================================== matmul */

static tg_tensor *f_matmul_tr(tg_tensor *const *in, void *ctx) {
    return tg_matmul(tg_transpose(in[0], -1, -2), tg_transpose(in[1], -1, -2));
}

TEST(gradcheck_matmul_shapes) {
    struct {
        tg_shape a, b;
    } cs[] = {
        { TG_SHAPE(4), TG_SHAPE(4) },           { TG_SHAPE(3), TG_SHAPE(3, 4) },      { TG_SHAPE(3, 4), TG_SHAPE(4) },
        { TG_SHAPE(3, 4), TG_SHAPE(4, 2) },     { TG_SHAPE(2, 1, 2, 3), TG_SHAPE(2, 3, 2) },
        { TG_SHAPE(4), TG_SHAPE(2, 4, 3) },     { TG_SHAPE(2, 3, 4), TG_SHAPE(4) },   { TG_SHAPE(1, 1), TG_SHAPE(1, 5) },
        { TG_SHAPE(2, 2, 3), TG_SHAPE(2, 3, 2) },
    };
    tg_manual_seed(9);
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("matmul case %d", q);
        GRADCHECK(f_matmul, NULL, uni(cs[q].a, -2, 2), uni(cs[q].b, -2, 2));
    }
    WHAT("matmul of transposed view inputs");
    GRADCHECK(f_matmul, NULL, tg_transpose(uni(TG_SHAPE(4, 3), -2, 2), 0, 1), tg_transpose(uni(TG_SHAPE(2, 4), -2, 2), 0, 1));
    WHAT("matmul transposed inside, batched");
    GRADCHECK(f_matmul_tr, NULL, uni(TG_SHAPE(2, 4, 3), -2, 2), uni(TG_SHAPE(2, 4), -2, 2));
    WHAT("matmul of a strided slice and a flip");
    GRADCHECK(f_matmul, NULL, tg_slice(uni(TG_SHAPE(6, 4), -2, 2), 0, 1, INT64_MAX, 2), tg_flip(uni(TG_SHAPE(4, 3), -2, 2), TG_ALL));
}

/* ================================================================== movement */

static tg_tensor *m_reshape(tg_tensor *const *in, void *c) { return tg_reshape(in[0], TG_SHAPE(4, -1)); }
static tg_tensor *m_view(tg_tensor *const *in, void *c) { return tg_view(in[0], TG_SHAPE(6, 4)); }
static tg_tensor *m_flatten(tg_tensor *const *in, void *c) { return tg_flatten(in[0], 1); }
static tg_tensor *m_permute(tg_tensor *const *in, void *c) { return tg_permute(in[0], TG_AXES(2, 0, 1)); }
static tg_tensor *m_transpose(tg_tensor *const *in, void *c) { return tg_transpose(in[0], 0, 2); }
static tg_tensor *m_expand(tg_tensor *const *in, void *c) { return tg_expand(in[0], TG_SHAPE(2, 3, 4)); }
static tg_tensor *m_slice(tg_tensor *const *in, void *c) { return tg_slice(in[0], 1, -5, INT64_MAX, 2); }
static tg_tensor *m_slice2(tg_tensor *const *in, void *c) {
    /* rows 1..3, columns 0 and 3, times rows 3..5, columns 1 and 3: two overlapping views */
    return tg_mul(tg_slice(tg_slice(in[0], 0, 1, 4, 1), 1, 0, 5, 3), tg_slice(tg_slice(in[0], 0, -3, INT64_MAX, 1), 1, 1, 5, 2));
}
static tg_tensor *m_squeeze(tg_tensor *const *in, void *c) { return tg_squeeze(in[0], 1); }
static tg_tensor *m_unsqueeze(tg_tensor *const *in, void *c) { return tg_unsqueeze(in[0], 1); }
static tg_tensor *m_flip(tg_tensor *const *in, void *c) { return tg_flip(in[0], TG_AXES(0, 2)); }
static tg_tensor *m_contiguous(tg_tensor *const *in, void *c) { return tg_contiguous(tg_transpose(in[0], 0, 1)); }
static tg_tensor *m_clone(tg_tensor *const *in, void *c) { return tg_clone(in[0]); }
static tg_tensor *m_cat0(tg_tensor *const *in, void *c) { return tg_cat(3, in, 0); }
static tg_tensor *m_cat1(tg_tensor *const *in, void *c) { return tg_cat(3, in, -1); }
static tg_tensor *m_stack(tg_tensor *const *in, void *c) { return tg_stack(3, in, 1); }
static tg_tensor *m_split(tg_tensor *const *in, void *c) {
    tg_tensor *p[3];
    if (tg_split(in[0], 3, 0, p, 3) != 3) return NULL;
    tg_tensor *q[3] = { tg_mul_scalar(p[2], 3), p[0], tg_mul_scalar(p[1], 2) };
    return tg_cat(3, q, 0);
}
static tg_tensor *m_pad(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(1, 2, 0, 1), 0.5); }
static tg_tensor *m_pad_neg(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(-1, 1, 1, -1), 0); }
static tg_tensor *m_pad_crop(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(-1, -1, 0, 0, 1, 0), -2); }

TEST(gradcheck_movement) {
    struct {
        const char *name;
        tg_fn fn;
        tg_shape s;
    } cs[] = {
        { "reshape", m_reshape, TG_SHAPE(2, 3, 4) },   { "view", m_view, TG_SHAPE(2, 3, 4) },
        { "flatten", m_flatten, TG_SHAPE(2, 3, 4) },   { "permute", m_permute, TG_SHAPE(2, 3, 4) },
        { "transpose", m_transpose, TG_SHAPE(2, 3, 4) }, { "expand", m_expand, TG_SHAPE(3, 1) },
        { "slice step 2 start -5", m_slice, TG_SHAPE(4, 6) }, { "slice of slice", m_slice2, TG_SHAPE(6, 5) },
        { "squeeze", m_squeeze, TG_SHAPE(3, 1, 4) },   { "unsqueeze", m_unsqueeze, TG_SHAPE(3, 4) },
        { "flip", m_flip, TG_SHAPE(2, 3, 4) },         { "contiguous", m_contiguous, TG_SHAPE(3, 4) },
        { "clone", m_clone, TG_SHAPE(3, 4) },          { "split", m_split, TG_SHAPE(7, 2) },
        { "pad", m_pad, TG_SHAPE(3, 4) },              { "pad negative", m_pad_neg, TG_SHAPE(3, 4) },
        { "pad crop 3-d", m_pad_crop, TG_SHAPE(2, 3, 4) },
    };
    tg_manual_seed(10);
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("%s", cs[q].name);
        GRADCHECK(cs[q].fn, NULL, uni(cs[q].s, -2, 2));
        if (cs[q].fn == m_view) continue; /* a view of these strides is refused by design */
        /* the same op on a non-contiguous input: a flip of the whole tensor */
        WHAT("%s on a flipped input", cs[q].name);
        GRADCHECK(cs[q].fn, NULL, tg_flip(uni(cs[q].s, -2, 2), TG_ALL));
    }
    WHAT("reshape of a transposed view (a copy)");
    GRADCHECK(m_reshape, NULL, tg_permute(uni(TG_SHAPE(4, 2, 3), -2, 2), TG_AXES(1, 2, 0)));
    WHAT("cat axis 0");
    GRADCHECK(m_cat0, NULL, uni(TG_SHAPE(1, 3), -2, 2), uni(TG_SHAPE(2, 3), -2, 2), transposed(uni(TG_SHAPE(3, 3), -2, 2)));
    WHAT("cat axis -1");
    GRADCHECK(m_cat1, NULL, uni(TG_SHAPE(2, 1), -2, 2), tg_transpose(uni(TG_SHAPE(3, 2), -2, 2), 0, 1), uni(TG_SHAPE(2, 2), -2, 2));
    WHAT("stack axis 1");
    GRADCHECK(m_stack, NULL, uni(TG_SHAPE(2, 3), -2, 2), tg_flip(uni(TG_SHAPE(2, 3), -2, 2), TG_AXES(0)),
              tg_transpose(uni(TG_SHAPE(3, 2), -2, 2), 0, 1));
}

/* ================================================================== indexing */

static tg_tensor *f_gather(tg_tensor *const *in, void *ctx) { return tg_gather(in[0], 1, (tg_tensor *)ctx); }
static tg_tensor *f_gather0(tg_tensor *const *in, void *ctx) { return tg_gather(in[0], 0, (tg_tensor *)ctx); }
static tg_tensor *f_isel0(tg_tensor *const *in, void *ctx) { return tg_index_select(in[0], 0, (tg_tensor *)ctx); }
static tg_tensor *f_isel1(tg_tensor *const *in, void *ctx) { return tg_index_select(in[0], -1, (tg_tensor *)ctx); }
static tg_tensor *f_scatter(tg_tensor *const *in, void *ctx) { return tg_scatter_add(in[0], 1, (tg_tensor *)ctx, in[1]); }
static tg_tensor *f_scatter0(tg_tensor *const *in, void *ctx) { return tg_scatter_add(in[0], 0, (tg_tensor *)ctx, in[1]); }

TEST(gradcheck_indexing) {
    tg_manual_seed(11);
    /* duplicate indices: their gradients add up */
    tg_tensor *idx = i32((const int32_t[]){ 0, 4, 4, 1, 2, 2, 2, 0, 3, 1, 0, 3 }, TG_SHAPE(3, 4));
    WHAT("gather axis 1 with duplicates");
    GRADCHECK(f_gather, idx, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("gather axis 1 of a transposed input");
    GRADCHECK(f_gather, idx, tg_transpose(uni(TG_SHAPE(5, 3), -2, 2), 0, 1));
    WHAT("gather axis 0, index smaller than the input");
    GRADCHECK(f_gather0, i32((const int32_t[]){ 2, 0, 2, 1, 0, 1 }, TG_SHAPE(2, 3)), uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("index_select axis 0");
    tg_tensor *sel = i32((const int32_t[]){ 3, 0, 3 }, TG_SHAPE(3));
    GRADCHECK(f_isel0, sel, uni(TG_SHAPE(4, 5), -2, 2));
    WHAT("index_select axis -1 of a flipped input");
    GRADCHECK(f_isel1, i32((const int32_t[]){ 4, 1, 1 }, TG_SHAPE(3)), tg_flip(uni(TG_SHAPE(3, 5), -2, 2), TG_AXES(1)));
    WHAT("scatter_add axis 1, grads wrt x and src");
    GRADCHECK(f_scatter, idx, uni(TG_SHAPE(3, 5), -2, 2), uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("scatter_add axis 1, transposed src");
    GRADCHECK(f_scatter, idx, uni(TG_SHAPE(3, 5), -2, 2), tg_transpose(uni(TG_SHAPE(4, 3), -2, 2), 0, 1));
    WHAT("scatter_add axis 0");
    GRADCHECK(f_scatter0, i32((const int32_t[]){ 2, 0, 2, 0, 0, 0 }, TG_SHAPE(2, 3)), uni(TG_SHAPE(3, 3), -2, 2),
              uni(TG_SHAPE(2, 3), -2, 2));
}

/* ================================================================== compositions */

static tg_tensor *f_softmax_ce_chain(tg_tensor *const *in, void *ctx) {
    /* -mean over rows of sum(onehot * log(softmax(x))): the loss written out by hand */
    tg_tensor *onehot = tg_cast(tg_one_hot((tg_tensor *)ctx, 5), TG_F64);
    tg_tensor *lp = tg_log(tg_softmax(in[0], 1));
    return tg_neg(tg_mean(tg_sum(tg_mul(onehot, lp), TG_AXES(1), false), TG_ALL, false));
}

static tg_tensor *f_logsoftmax_gather(tg_tensor *const *in, void *ctx) {
    tg_tensor *lp = tg_log_softmax(in[0], -1);
    return tg_neg(tg_sum(tg_gather(lp, 1, tg_unsqueeze((tg_tensor *)ctx, 1)), TG_ALL, false));
}

TEST(gradcheck_compositions) {
    tg_manual_seed(12);
    tg_tensor *lab = i32((const int32_t[]){ 0, 2, 1, 2 }, TG_SHAPE(4));
    WHAT("2-layer MLP with softmax cross-entropy");
    GRADCHECK(f_mlp_ce, lab, uni(TG_SHAPE(4, 3), -1, 1), uni(TG_SHAPE(3, 5), -1, 1), uni(TG_SHAPE(5), -1, 1),
              uni(TG_SHAPE(5, 3), -1, 1));
    tg_tensor *lab5 = i32((const int32_t[]){ 4, 0, 2 }, TG_SHAPE(3));
    WHAT("softmax, log, one-hot cross-entropy chain");
    GRADCHECK(f_softmax_ce_chain, lab5, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("log_softmax and gather");
    GRADCHECK(f_logsoftmax_gather, lab5, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("MLP with a squared loss");
    GRADCHECK(f_mlp_mse, NULL, uni(TG_SHAPE(3, 2), -1, 1), uni(TG_SHAPE(2, 4), -1, 1), uni(TG_SHAPE(4), -1, 1),
              uni(TG_SHAPE(4, 1), -1, 1));
}

/* ================================================================== ties, against closed forms
 * Central differences cannot check a kink, so the tie rule is checked against what the
 * header promises: max/min reductions split the gradient equally among the k tied
 * extrema (1/k each). */

/* The reference for max/min over the axes in mask with upstream gradient w (of the
 * keepdim output shape): each element equal to its group's extremum gets w / count. */
static void host_extremum_grad(const double *x, tg_shape s, uint32_t mask, bool is_max, const double *w, double *g) {
    int64_t n = numel_of(s), nout = 1, ostride[TG_MAX_DIMS];
    for (int d = s.ndim - 1; d >= 0; d--) ostride[d] = nout, nout *= (mask >> d & 1) ? 1 : s.dims[d];
    double ext[64];
    int cnt[64] = { 0 };
    int64_t oi[64];
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, o = 0;
        for (int d = s.ndim - 1; d >= 0; d--) {
            int64_t c = rem % s.dims[d];
            rem /= s.dims[d];
            if (!(mask >> d & 1)) o += c * ostride[d];
        }
        oi[i] = o;
    }
    for (int64_t o = 0; o < nout; o++) ext[o] = is_max ? -INFINITY : INFINITY;
    for (int64_t i = 0; i < n; i++) ext[oi[i]] = is_max ? fmax(ext[oi[i]], x[i]) : fmin(ext[oi[i]], x[i]);
    for (int64_t i = 0; i < n; i++) cnt[oi[i]] += x[i] == ext[oi[i]];
    for (int64_t i = 0; i < n; i++) g[i] = x[i] == ext[oi[i]] ? w[oi[i]] / cnt[oi[i]] : 0;
}

TEST(max_min_reduction_gradients_share_ties) {
    /* (2,3,4) with runs of equal extrema: row (0,0,:) has four equal maxima, (0,1,:) three
     * equal minima, (1,2,:) two and two; whole-tensor max 3 appears five times. */
    const double xv[24] = { 3, 3, 3, 3, /**/ -1, 2, -1, -1, /**/ 0, 1, 0, 2,
                            1, 0, 3, 1, /**/ 2, 2, -1, 3, /**/ -1, 3, -1, 0 };
    const tg_shape s = TG_SHAPE(2, 3, 4);
    const struct {
        tg_axes axes;
        uint32_t mask;
    } cs[] = { { TG_ALL, 7 }, { TG_AXES(2), 4 }, { TG_AXES(-1), 4 }, { TG_AXES(0), 1 }, { TG_AXES(1), 2 },
               { TG_AXES(0, 2), 5 }, { TG_AXES(2, 1), 6 } };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
            for (int keep = 0; keep < 2; keep++)
                for (int is_max = 0; is_max < 2; is_max++) {
                    WHAT("%s %s axes case %d keepdim %d", is_max ? "max" : "min", tg_dtype_name(dt), q, keep);
                    tg_tensor *x = tg_param(tg_cast(tg_from_f64(xv, s, dev()), dt));
                    tg_tensor *y = is_max ? tg_max(x, cs[q].axes, keep) : tg_min(x, cs[q].axes, keep);
                    if (!y) {
                        FAIL_("[%s] %s", g_what, tg_last_error());
                        continue;
                    }
                    int64_t no = tg_numel(y);
                    double wv[24], want[24];
                    for (int64_t o = 0; o < no; o++) wv[o] = 1 + (double)o;
                    tg_tensor *gout = tg_reshape(tg_cast(tg_from_f64(wv, TG_SHAPE(no), dev()), dt), tg_shape_of(y));
                    tg_tensor *g = NULL;
                    CHECK(tg_autograd_grad(1, &y, &gout, 1, &x, &g, NULL) == TG_OK);
                    host_extremum_grad(xv, s, cs[q].mask, is_max, wv, want);
                    CHECK_VALUES(g, want, 24, dt == TG_F32 ? 1e-6 : 1e-15, "d/dx");
                }
    }
    /* a transposed view with ties along the reduced axis */
    WHAT("max over axis 0 of a transposed view with ties");
    const double mv[6] = { 2, 2, 1, 5, 5, 5 }; /* (2,3); transposed (3,2): columns reduce rows of m */
    tg_tensor *m = tg_param(tg_from_f64(mv, TG_SHAPE(2, 3), dev()));
    tg_tensor *y = tg_max(tg_transpose(m, 0, 1), TG_AXES(0), false), *g = NULL; /* max of each row of m */
    tg_tensor *gout = tg_from_f64((const double[]){ 6, 9 }, TG_SHAPE(2), dev());
    CHECK(tg_autograd_grad(1, &y, &gout, 1, &m, &g, NULL) == TG_OK);
    CHECK_VALUES(g, ((const double[]){ 3, 3, 0, 3, 3, 3 }), 6, 1e-15, "d/dm");
}


TG_TEST_MAIN(&tg_case_gradcheck_reductions, &tg_case_gradcheck_norm, &tg_case_gradcheck_logsumexp_large_logits,
             &tg_case_gradcheck_softmax_log_softmax, &tg_case_gradcheck_cross_entropy,
             &tg_case_gradcheck_matmul_shapes, &tg_case_gradcheck_movement, &tg_case_gradcheck_indexing,
             &tg_case_gradcheck_compositions, &tg_case_max_min_reduction_gradients_share_ties)
