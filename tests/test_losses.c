/* Every loss against an f64 loop written here from PyTorch's definitions, gradchecked
 * on its differentiable inputs, and (when python3 has torch) against torch itself. */
#include "harness.h"

#define N 4
#define C 3

static const double k_x[N * C] = { 0.3, -1.2, 0.8, 1.5, 0.2, -0.4, -0.7, 0.9, 0.1, 0.05, -0.3, 1.1 };
static const double k_t[N * C] = { 0.9, -1.0, 0.2, 1.1, 0.8, -0.45, -0.2, 0.1, 0.5, 0.7, -0.3, 2.5 };
static const double k_p[N * C] = { 0.2, 0.7, 0.0, 0.95, 0.4, 1.0, 0.5, 0.1, 0.6, 0.3, 0.85, 0.05 }; /* probabilities */
static const double k_y01[N * C] = { 0, 1, 0.3, 1, 0, 0.5, 1, 0, 1, 0.2, 1, 0 };
static const int64_t k_lab[N] = { 0, 2, 1, 2 }, k_lab_ign[N] = { 0, -100, 1, 2 };
static const double k_w[C] = { 0.5, 2, 1.5 };

static tg_tensor *f64(const double *v, tg_shape s) { return tg_from_f64(v, s, tg_test_device()); }
static double val(tg_tensor *t) { return t ? tg_item(t) : NAN; }

/* ------------------------------------------------------------- the f64 oracles */

/* PyTorch's cross-entropy on (N, C) with class weights and label smoothing. */
static double ref_ce(const int64_t *lab, const double *w, double eps, tg_reduction r, bool logits) {
    double num = 0, den = 0, snum = 0;
    for (int n = 0; n < N; n++) {
        double lse = 0, lp[C];
        for (int c = 0; c < C; c++) lse += exp(k_x[n * C + c]);
        for (int c = 0; c < C; c++) lp[c] = logits ? k_x[n * C + c] - log(lse) : k_x[n * C + c];
        if (lab[n] == -100) continue;
        double wy = w ? w[lab[n]] : 1, s = 0;
        for (int c = 0; c < C; c++) s -= (w ? w[c] : 1) * lp[c];
        num -= wy * lp[lab[n]];
        den += wy;
        snum += s;
    }
    if (r == TG_REDUCTION_MEAN) num /= den, snum /= den;
    return (1 - eps) * num + eps / C * snum;
}

static double ref_elementwise(int kind, double k, tg_reduction r) { /* 0 mse, 1 l1, 2 smooth l1, 3 huber */
    double s = 0;
    for (int i = 0; i < N * C; i++) {
        double d = k_x[i] - k_t[i], a = fabs(d);
        s += kind == 0 ? d * d : kind == 1 ? a : kind == 2 ? (a < k ? 0.5 * d * d / k : a - 0.5 * k)
                                                            : (a < k ? 0.5 * d * d : k * (a - 0.5 * k));
    }
    return r == TG_REDUCTION_MEAN ? s / (N * C) : s;
}

static double ref_bce(bool weighted) {
    double s = 0;
    for (int i = 0; i < N * C; i++) {
        double lx = fmax(log(k_p[i]), -100), l1 = fmax(log(1 - k_p[i]), -100);
        s += -(weighted ? k_w[i % C] : 1) * (k_y01[i] * lx + (1 - k_y01[i]) * l1);
    }
    return s / (N * C);
}

static double ref_bce_logits(double scale, const double *pw) {
    double s = 0;
    for (int i = 0; i < N * C; i++) {
        double x = scale * k_x[i], y = k_y01[i], w = pw ? pw[i % C] : 1;
        double logp = x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)), log1mp = logp - x; /* log sigmoid(x), log(1 - sigmoid(x)) */
        s += -(w * y * logp + (1 - y) * log1mp) * k_w[i % C];
    }
    return s / (N * C);
}

static double ref_multi_margin(int p, double margin, const double *w) {
    double total = 0;
    for (int n = 0; n < N; n++) {
        double s = 0, xy = k_x[n * C + k_lab[n]];
        for (int j = 0; j < C; j++) {
            double z = margin - xy + k_x[n * C + j];
            if (j != k_lab[n] && z > 0) s += (p == 2 ? z * z : z) * (w ? w[k_lab[n]] : 1);
        }
        total += s / C;
    }
    return total / N;
}

static double ref_kl(bool log_target, int red) { /* 0 mean, 1 sum, 2 batchmean; input = log of k_p-ish */
    double s = 0;
    for (int i = 0; i < N * C; i++) {
        double in = -fabs(k_x[i]) - 0.5, t = log_target ? k_x[i] : k_p[i];
        s += log_target ? exp(t) * (t - in) : (t > 0 ? t * log(t) : 0) - t * in;
    }
    return red == 0 ? s / (N * C) : red == 1 ? s : s / N;
}

static double ref_cosine(const double *y, double margin) {
    double s = 0;
    for (int n = 0; n < N; n++) {
        double d = 0, a = 0, b = 0;
        for (int c = 0; c < C; c++) {
            d += k_x[n * C + c] * k_t[n * C + c];
            a += k_x[n * C + c] * k_x[n * C + c];
            b += k_t[n * C + c] * k_t[n * C + c];
        }
        double cs = d / sqrt((a + 1e-12) * (b + 1e-12));
        s += y[n] > 0 ? 1 - cs : fmax(0, cs - margin);
    }
    return s / N;
}

/* ------------------------------------------------------------- our values, one list */

static const double k_pw[C] = { 2, 0.5, 3 }, k_ycos[N] = { 1, -1, 1, -1 };

typedef struct {
    const char *torch; /* the same loss in torch, on x, t, p, y01, lab, lab_ign, w, pw, ycos */
    double ours, ref;
} loss_case;

static int compute_cases(loss_case *out) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = f64(k_x, TG_SHAPE(N, C)), *t = f64(k_t, TG_SHAPE(N, C)), *p = f64(k_p, TG_SHAPE(N, C));
    tg_tensor *y01 = f64(k_y01, TG_SHAPE(N, C)), *w = f64(k_w, TG_SHAPE(C)), *pw = f64(k_pw, TG_SHAPE(C));
    tg_tensor *lab = tg_from_i64(k_lab, TG_SHAPE(N), dev), *ign = tg_from_i64(k_lab_ign, TG_SHAPE(N), dev);
    tg_tensor *logq = tg_add_scalar(tg_neg(tg_abs(x)), -0.5), *ycos = f64(k_ycos, TG_SHAPE(N));
    int n = 0;
#define CASE(torch_expr, ours_expr, ref_expr) out[n++] = (loss_case){ torch_expr, val(ours_expr), ref_expr }
    CASE("F.cross_entropy(x, lab, weight=w)", tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = w }),
         ref_ce(k_lab, k_w, 0, TG_REDUCTION_MEAN, true));
    CASE("F.cross_entropy(x, lab_ign, label_smoothing=0.1)",
         tg_cross_entropy_loss(x, ign, &(tg_cross_entropy_loss_opts){ .label_smoothing = 0.1 }),
         ref_ce(k_lab_ign, NULL, 0.1, TG_REDUCTION_MEAN, true));
    CASE("F.cross_entropy(x, lab_ign, weight=w, label_smoothing=0.2)",
         tg_cross_entropy_loss(x, ign, &(tg_cross_entropy_loss_opts){ .weight = w, .label_smoothing = 0.2 }),
         ref_ce(k_lab_ign, k_w, 0.2, TG_REDUCTION_MEAN, true));
    CASE("F.cross_entropy(x, lab, weight=w, label_smoothing=0.3, reduction='sum')",
         tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = w, .label_smoothing = 0.3,
                                                                        .reduction = TG_REDUCTION_SUM }),
         ref_ce(k_lab, k_w, 0.3, TG_REDUCTION_SUM, true));
    CASE("F.cross_entropy(x, lab_ign)", tg_cross_entropy_loss(x, ign, NULL), ref_ce(k_lab_ign, NULL, 0, TG_REDUCTION_MEAN, true));
    CASE("F.nll_loss(x, lab_ign, weight=w)", tg_nll_loss(x, ign, &(tg_cross_entropy_loss_opts){ .weight = w }),
         ref_ce(k_lab_ign, k_w, 0, TG_REDUCTION_MEAN, false));
    CASE("F.mse_loss(x, t)", tg_mse_loss(x, t, TG_REDUCTION_MEAN), ref_elementwise(0, 0, TG_REDUCTION_MEAN));
    CASE("F.l1_loss(x, t, reduction='sum')", tg_l1_loss(x, t, TG_REDUCTION_SUM), ref_elementwise(1, 0, TG_REDUCTION_SUM));
    CASE("F.smooth_l1_loss(x, t, beta=0.5)", tg_smooth_l1_loss(x, t, TG_REDUCTION_MEAN, 0.5),
         ref_elementwise(2, 0.5, TG_REDUCTION_MEAN));
    CASE("F.huber_loss(x, t, delta=0.7)", tg_huber_loss(x, t, TG_REDUCTION_MEAN, 0.7), ref_elementwise(3, 0.7, TG_REDUCTION_MEAN));
    CASE("F.binary_cross_entropy(p, y01)", tg_binary_cross_entropy(p, y01, NULL), ref_bce(false));
    CASE("F.binary_cross_entropy(p, y01, weight=w)", tg_binary_cross_entropy(p, y01, &(tg_bce_opts){ .weight = w }),
         ref_bce(true));
    CASE("F.binary_cross_entropy_with_logits(x, y01, weight=w, pos_weight=pw)",
         tg_binary_cross_entropy_with_logits(x, y01, &(tg_bce_opts){ .weight = w, .pos_weight = pw }), ref_bce_logits(1, k_pw));
    CASE("F.binary_cross_entropy_with_logits(20 * x, y01, weight=w)",
         tg_binary_cross_entropy_with_logits(tg_mul_scalar(x, 20), y01, &(tg_bce_opts){ .weight = w }), ref_bce_logits(20, NULL));
    CASE("F.multi_margin_loss(x, lab)", tg_multi_margin_loss(x, lab, NULL), ref_multi_margin(1, 1, NULL));
    CASE("F.multi_margin_loss(x, lab, p=2, margin=0.5, weight=w)",
         tg_multi_margin_loss(x, lab, &(tg_multi_margin_opts){ .p = 2, .margin = TG_SOME(0.5), .weight = w }),
         ref_multi_margin(2, 0.5, k_w));
    CASE("F.kl_div(-x.abs() - 0.5, p, reduction='mean')", tg_kl_div(logq, p, NULL), ref_kl(false, 0));
    CASE("F.kl_div(-x.abs() - 0.5, p, reduction='batchmean')", tg_kl_div(logq, p, &(tg_kl_div_opts){ .batchmean = true }),
         ref_kl(false, 2));
    CASE("F.kl_div(-x.abs() - 0.5, x, reduction='sum', log_target=True)",
         tg_kl_div(logq, x, &(tg_kl_div_opts){ .reduction = TG_REDUCTION_SUM, .log_target = true }), ref_kl(true, 1));
    CASE("F.cosine_embedding_loss(x, t, ycos, margin=0.2)", tg_cosine_embedding_loss(x, t, ycos, TG_REDUCTION_MEAN, 0.2),
         ref_cosine(k_ycos, 0.2));
#undef CASE
    return n;
}

TEST(losses_match_loops) {
    loss_case cs[32];
    int n = compute_cases(cs);
    for (int i = 0; i < n; i++)
        if (!(fabs(cs[i].ours - cs[i].ref) <= 1e-12 * (1 + fabs(cs[i].ref))))
            FAIL_("%s: %.15g, the loop gives %.15g (%s)", cs[i].torch, cs[i].ours, cs[i].ref, tg_last_error());
}

/* The same values from torch, when python3 has it (skipped otherwise). */
TEST(losses_match_torch) {
    loss_case cs[32];
    int n = compute_cases(cs);
    char path[] = "/tmp/tg_losses_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) SKIP("no temporary file");
    fprintf(f, "import sys\ntry:\n    import torch\n    import torch.nn.functional as F\nexcept ImportError:\n    sys.exit(3)\n"
               "torch.set_default_dtype(torch.float64)\nT = lambda v: torch.tensor(v).reshape(%d, %d)\n", N, C);
    const double *arrs[] = { k_x, k_t, k_p, k_y01 };
    const char *names[] = { "x", "t", "p", "y01" };
    for (int a = 0; a < 4; a++) {
        fprintf(f, "%s = T([", names[a]);
        for (int i = 0; i < N * C; i++) fprintf(f, "%.17g,", arrs[a][i]);
        fprintf(f, "])\n");
    }
    fprintf(f, "lab = torch.tensor([%lld,%lld,%lld,%lld])\nlab_ign = torch.tensor([%lld,%lld,%lld,%lld])\n",
            (long long)k_lab[0], (long long)k_lab[1], (long long)k_lab[2], (long long)k_lab[3], (long long)k_lab_ign[0],
            (long long)k_lab_ign[1], (long long)k_lab_ign[2], (long long)k_lab_ign[3]);
    fprintf(f, "w = torch.tensor([%.17g,%.17g,%.17g])\npw = torch.tensor([%.17g,%.17g,%.17g])\n", k_w[0], k_w[1], k_w[2],
            k_pw[0], k_pw[1], k_pw[2]);
    fprintf(f, "ycos = torch.tensor([%.17g,%.17g,%.17g,%.17g])\n", k_ycos[0], k_ycos[1], k_ycos[2], k_ycos[3]);
    for (int i = 0; i < n; i++) fprintf(f, "print('%%.17g' %% float(%s))\n", cs[i].torch);
    fclose(f);
    double got[32];
    int k = 0, rc = -1;
    const char *pythons[] = { "/usr/bin/python3", "python3" }; /* Debian's python3-torch lives with the system python */
    for (int py = 0; py < 2 && k != n; py++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", pythons[py], path);
        FILE *pp = popen(cmd, "r");
        k = 0;
        while (pp && k < n && fscanf(pp, "%lf", &got[k]) == 1) k++;
        rc = pp ? pclose(pp) : -1;
    }
    remove(path);
    if (k != n) SKIP("python3 with torch is not available (exit %d)", rc);
    for (int i = 0; i < n; i++)
        if (!(fabs(cs[i].ours - got[i]) <= 1e-10 * (1 + fabs(got[i])))) FAIL_("%s: ours %.15g, torch %.15g", cs[i].torch, cs[i].ours, got[i]);
}

/* ------------------------------------------------------------- gradients */

typedef struct {
    int which;
} gctx;

static tg_tensor *loss_fn(tg_tensor *const *in, void *vctx) {
    int which = ((gctx *)vctx)->which;
    tg_device *dev = tg_device_of(in[0]);
    tg_tensor *lab = tg_from_i64(k_lab_ign, TG_SHAPE(N), dev), *w = f64(k_w, TG_SHAPE(C));
    tg_tensor *y01 = f64(k_y01, TG_SHAPE(N, C)), *x = in[0], *b = in[1];
    switch (which) {
    case 0: return tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = w, .label_smoothing = 0.2 });
    case 1: return tg_nll_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = w, .reduction = TG_REDUCTION_SUM });
    case 2: return tg_mse_loss(x, b, TG_REDUCTION_MEAN);
    case 3: return tg_smooth_l1_loss(x, b, TG_REDUCTION_SUM, 0.5);
    case 4: return tg_huber_loss(x, b, TG_REDUCTION_MEAN, 0.7);
    case 5: return tg_l1_loss(x, b, TG_REDUCTION_MEAN);
    case 6: return tg_binary_cross_entropy(tg_sigmoid(x), y01, &(tg_bce_opts){ .weight = w });
    case 7: return tg_binary_cross_entropy_with_logits(x, tg_sigmoid(b), &(tg_bce_opts){ .pos_weight = w });
    case 8: return tg_multi_margin_loss(x, tg_from_i64(k_lab, TG_SHAPE(N), dev),
                                        &(tg_multi_margin_opts){ .p = 2, .weight = w, .margin = TG_SOME(0.7) });
    case 9: return tg_kl_div(tg_log_softmax(x, 1), tg_softmax(b, 1), &(tg_kl_div_opts){ .batchmean = true });
    case 10: return tg_kl_div(x, tg_log_softmax(b, 1), &(tg_kl_div_opts){ .log_target = true });
    case 11: return tg_cosine_embedding_loss(x, b, f64(k_ycos, TG_SHAPE(N)), TG_REDUCTION_SUM, -0.5);
    default: return tg_sum(tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = w, .label_smoothing = 0.1,
                                                                                  .reduction = TG_REDUCTION_NONE }),
                           TG_ALL, false);
    }
}

TEST(gradcheck_every_loss) {
    tg_tensor *in[2] = { f64(k_x, TG_SHAPE(N, C)), f64(k_t, TG_SHAPE(N, C)) };
    for (int which = 0; which <= 12; which++) {
        gctx c = { which };
        tg_gradcheck_report rep;
        tg_tensor *probe = loss_fn(in, &c);
        if (!probe) {
            FAIL_("loss %d: %s", which, tg_last_error());
            continue;
        }
        bool uses_b = (which >= 2 && which <= 5) || which >= 7;
        if (tg_gradcheck(loss_fn, &c, uses_b ? 2 : 1, in, NULL, &rep) != TG_OK) FAIL_("loss %d: %s", which, rep.message);
    }
}

TEST(reductions_and_shapes) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = f64(k_x, TG_SHAPE(N, C)), *t = f64(k_t, TG_SHAPE(N, C)), *lab = tg_from_i64(k_lab, TG_SHAPE(N), dev);
    tg_tensor *none = tg_mse_loss(x, t, TG_REDUCTION_NONE);
    CHECK(none && tg_ndim(none) == 2 && fabs(tg_item(tg_sum(none, TG_ALL, false)) - ref_elementwise(0, 0, TG_REDUCTION_SUM)) < 1e-12);
    tg_tensor *ce = tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = f64(k_w, TG_SHAPE(C)),
                                                                                   .reduction = TG_REDUCTION_NONE });
    CHECK(ce && tg_ndim(ce) == 1 && tg_size(ce, 0) == N);
    /* (N, C, d) logits: the same as (N*d, C) rows */
    tg_tensor *x3 = tg_permute(tg_reshape(x, TG_SHAPE(2, 2, C)), TG_AXES(0, 2, 1)); /* (2, C, 2) */
    tg_tensor *l3 = tg_reshape(lab, TG_SHAPE(2, 2));
    tg_cross_entropy_loss_opts o = { .weight = f64(k_w, TG_SHAPE(C)), .label_smoothing = 0.3 };
    CHECK_NEAR(val(tg_cross_entropy_loss(x3, l3, &o)), val(tg_cross_entropy_loss(x, lab, &o)), 1e-12);
    tg_tensor *mm = tg_multi_margin_loss(tg_slice(x, 0, 0, 1, 1), tg_slice(lab, 0, 0, 1, 1), NULL);
    CHECK(mm && tg_ndim(mm) == 0);
    CHECK_ERROR(tg_cross_entropy_loss(x, tg_from_i64((int64_t[]){ 0, 1, 3, 0 }, TG_SHAPE(N), dev),
                                      &(tg_cross_entropy_loss_opts){ .label_smoothing = 0.1 }),
                "tg_cross_entropy_loss: index 3 is out of range for axis 1 of size 3");
    CHECK_ERROR(tg_nll_loss(x, tg_from_i64(k_lab, TG_SHAPE(2, 2), dev), NULL),
                "tg_nll_loss: input [4,3] needs labels of shape (N, d...) = input without axis 1; got labels [2,2]");
    CHECK_ERROR(tg_cross_entropy_loss(x, lab, &(tg_cross_entropy_loss_opts){ .weight = f64(k_w, TG_SHAPE(2)) }),
                "tg_cross_entropy_loss: weight [2] must have one value per class (3)");
    CHECK_ERROR(tg_multi_margin_loss(x, lab, &(tg_multi_margin_opts){ .p = 3 }), "tg_multi_margin_loss: p must be 1 or 2, got 3");
    CHECK_ERROR(tg_mse_loss(x, f64(k_t, TG_SHAPE(C, N)), TG_REDUCTION_MEAN),
                "tg_mse_loss: shapes [4,3] and [3,4] do not broadcast (axis -2: 4 vs 3)");
}

TEST(penalties) {
    tg_device *dev = tg_test_device();
    tg_module *m = tg_sequential(tg_linear_new(3, 2, NULL, dev), tg_relu_new(), tg_linear_new(2, 1, NULL, dev));
    tg_set_requires_grad(tg_module_get_param(m, "2.bias"), false); /* frozen: not regularised */
    tg_named p;
    CHECK(tg_module_parameters(m, true, &p) == TG_OK);
    double l1 = 0, l2 = 0;
    for (int i = 0; i < p.n; i++) {
        double *v = tg_test_values(p.tensors[i]);
        for (int64_t k = 0; k < tg_numel(p.tensors[i]); k++) l1 += fabs(v[k]), l2 += v[k] * v[k];
        free(v);
    }
    CHECK(p.n == 3);
    tg_named_free(&p);
    CHECK_NEAR(val(tg_module_l1_penalty(m)), l1, 1e-5);
    tg_tensor *pen = tg_module_l2_penalty(m);
    CHECK_NEAR(val(pen), l2, 1e-5);
    CHECK(tg_backward(pen) == TG_OK);
    double *g = tg_test_values(tg_grad(tg_module_get_param(m, "0.weight"))), *w = tg_test_values(tg_module_get_param(m, "0.weight"));
    CHECK_NEAR(g[0], 2 * w[0], 1e-6);
    free(g), free(w);
    tg_module_free(m);
}

TG_TEST_MAIN(&tg_case_losses_match_loops, &tg_case_losses_match_torch, &tg_case_gradcheck_every_loss,
             &tg_case_reductions_and_shapes, &tg_case_penalties)
