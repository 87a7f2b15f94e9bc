/* Detection ops (tg_roi_pool, tg_roi_align, tg_box_iou, tg_nms, tg_batched_nms): small
 * cases computed by hand from torchvision's definitions (rounding, empty bins, the
 * edge rules of bilinear sampling, aligned, adaptive sampling), their gradients,
 * gradcheck and gradgradcheck in f64, exact error messages, and, where /usr/bin/python3
 * has torchvision, the same numbers from torchvision.ops. Device-generic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static tg_device *dev(void) { return tg_test_device(); }

static bool no_fp64(void) {
    tg_device_info info;
    return tg_device_get_info(dev(), &info) != TG_OK || !info.fp64;
}

/* x[h][w] = 4h + w on one 4x4 plane (bilinear sampling of it is exact). */
static tg_tensor *plane16(tg_dtype dt) {
    double v[16];
    for (int i = 0; i < 16; i++) v[i] = i;
    return tg_cast(tg_from_f64(v, TG_SHAPE(1, 1, 4, 4), dev()), dt);
}

static tg_tensor *rows(const double *v, int64_t k, int64_t cols, tg_dtype dt) {
    return tg_cast(tg_from_f64(v, TG_SHAPE(k, cols), dev()), dt);
}

static void check_values(int *tg_failed_, const char *what, tg_tensor *t, const double *want, int64_t n, double tol) {
    double *got = t ? tg_test_values(t) : NULL;
    if (!got || tg_numel(t) != n) {
        FAIL_("%s: no result or %lld values (%s)", what, t ? (long long)tg_numel(t) : -1LL, tg_last_error());
        free(got);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol)) {
            FAIL_("%s[%lld] = %.9g, expected %.9g", what, (long long)i, got[i], want[i]);
            break;
        }
    free(got);
}
#define VALUES(what, t, tol, ...)                                                       \
    do {                                                                                \
        const double w_[] = { __VA_ARGS__ };                                            \
        check_values(tg_failed_, what, t, w_, (int64_t)(sizeof w_ / sizeof w_[0]), tol); \
    } while (0)

static tg_tensor *grad_of_sum(tg_tensor *x, tg_tensor *y) {
    tg_tensor *g = NULL;
    if (tg_autograd_grad(1, &(tg_tensor *){ tg_sum(y, TG_ALL, false) }, NULL, 1, &x, &g, NULL) != TG_OK) return NULL;
    return g;
}

/* ------------------------------------------------------------------ roi_pool */

TEST(roi_pool_by_hand) {
    const tg_dtype dts[] = { TG_F32, TG_F64 };
    for (int d = 0; d < 2; d++) {
        tg_tensor *x = tg_param(plane16(dts[d]));
        /* Box 0 is the whole plane: bins of 2x2. Box 1 at scale 0.5 rounds (1, 1, 5, 5) to
         * pixels 1..3 (0.5 -> 1, 2.5 -> 3), a 3x3 box with bins [0, 2) and [1, 3) from
         * pixel 1. Box 2 lies past the plane: every bin is empty and gives 0. */
        const double b[] = { 0, 0, 0, 3, 3, 0, 1, 1, 5, 5, 0, 10, 10, 16, 16 };
        tg_tensor *y = tg_roi_pool(x, rows(b, 1, 5, TG_F64), 2, 2, 1.0);
        VALUES("roi_pool box 0", y, 0, 5, 7, 13, 15);
        tg_tensor *y1 = tg_roi_pool(x, rows(b + 5, 2, 5, dts[d]), 2, 2, 0.5);
        VALUES("roi_pool scale 0.5", y1, 0, 10, 11, 14, 15, 0, 0, 0, 0);
        /* Each bin's gradient goes to its maximum: 15 is the maximum of two bins. */
        VALUES("roi_pool grad", grad_of_sum(x, tg_cat(2, (tg_tensor *[]){ y, y1 }, 0)), 0,
               0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 2);
    }
}

TEST(roi_pool_batches_and_bins) {
    /* Two images; a 1-pixel box (x1 = x2) is 1x1 and every bin of 3x2 reads it. */
    double v[32];
    for (int i = 0; i < 32; i++) v[i] = (i * 7) % 32;
    tg_tensor *x = tg_from_f64(v, TG_SHAPE(2, 1, 4, 4), dev());
    const double b[] = { 1, 2, 1, 2, 1, 0, 0, 0, 1, 3 };
    tg_tensor *y = tg_roi_pool(x, rows(b, 2, 5, TG_F64), 3, 2, 1.0);
    /* image 1, pixel (1, 2): v[16 + 6] = (22 * 7) % 32 = 26. Box 1: rows 0..3, cols 0..1,
     * bins of 4/3 rows: [0, 2), [1, 3), [2, 4) and one column each. */
    double want[12] = { 26, 26, 26, 26, 26, 26 };
    for (int ph = 0; ph < 3; ph++)
        for (int pw = 0; pw < 2; pw++) {
            double m = -1;
            for (int h = ph; h < ph + 2; h++) m = fmax(m, v[h * 4 + pw]);
            want[6 + ph * 2 + pw] = m;
        }
    check_values(tg_failed_, "roi_pool 3x2", y, want, 12, 0);
    CHECK(tg_size(y, 0) == 2 && tg_size(y, 1) == 1 && tg_size(y, 2) == 3 && tg_size(y, 3) == 2);
    /* No boxes: an empty output. */
    tg_tensor *e = tg_roi_pool(x, tg_zeros(TG_F64, TG_SHAPE(0, 5), dev()), 2, 2, 1.0);
    CHECK(e && tg_size(e, 0) == 0 && tg_size(e, 1) == 1);
}

/* ------------------------------------------------------------------ roi_align */

TEST(roi_align_by_hand) {
    const tg_dtype dts[] = { TG_F32, TG_F64 };
    for (int d = 0; d < 2; d++) {
        tg_tensor *x = plane16(dts[d]);
        tg_tensor *b = rows((const double[]){ 0, 0.5, 0.5, 2.5, 2.5 }, 1, 5, dts[d]);
        /* Samples at 1 and 2 on each axis: the mean of 4y + x is 7.5; aligned shifts
         * them to 0.5 and 1.5: 5. */
        VALUES("roi_align", tg_roi_align(x, b, 1, 1, 1.0, 2, false), 1e-6, 7.5);
        VALUES("roi_align aligned", tg_roi_align(x, b, 1, 1, 1.0, 2, true), 1e-6, 5);
        /* Samples at 3.5 (clamped to row/column 3) and 4.5 (past the plane: 0). */
        VALUES("roi_align edge", tg_roi_align(x, rows((const double[]){ 0, 3, 3, 5, 5 }, 1, 5, dts[d]), 1, 1, 1.0, 2,
                                              false), 1e-6, 15.0 / 4);
        /* Adaptive: a 3x3 box in 2x2 bins of 1.5 takes ceil(1.5) = 2 samples a side, at
         * 0.375 and 1.125 in bin 0 (mean 0.75), 1.875 and 2.625 in bin 1 (mean 2.25); x[h][w] = 4h + w. */
        VALUES("roi_align adaptive", tg_roi_align(x, rows((const double[]){ 0, 0, 0, 3, 3 }, 1, 5, dts[d]), 2, 2, 1.0,
                                                  -1, false), 1e-5, 3.75, 5.25, 9.75, 11.25);
        /* A strided view of a wider plane (every other column) is the same plane. */
        double wide[32];
        for (int i = 0; i < 32; i++) wide[i] = i % 2 ? -50 : i / 8 * 4 + i % 8 / 2;
        tg_tensor *view = tg_slice(tg_cast(tg_from_f64(wide, TG_SHAPE(1, 1, 4, 8), dev()), dts[d]), 3, 0, 8, 2);
        VALUES("roi_align strided", tg_roi_align(view, b, 1, 1, 1.0, 2, false), 1e-6, 7.5);
        VALUES("roi_pool strided", tg_roi_pool(view, rows((const double[]){ 0, 0, 0, 3, 3 }, 1, 5, dts[d]), 1, 1, 1.0),
               0, 15);
        /* spatial_scale 0.5 halves the box: (0, 0, 6, 6) -> 3x3, as above. */
        VALUES("roi_align scale", tg_roi_align(x, rows((const double[]){ 0, 0, 0, 6, 6 }, 1, 5, dts[d]), 2, 2, 0.5,
                                               0, false), 1e-5, 3.75, 5.25, 9.75, 11.25);
    }
}

TEST(roi_align_gradient_by_hand) {
    tg_tensor *x = tg_param(plane16(TG_F64));
    /* One sample at (y, x) = (1.25, 2.5): weights 0.75 * 0.5 on row 1, 0.25 * 0.5 on row 2. */
    tg_tensor *b = rows((const double[]){ 0, 2, 0.75, 3, 1.75 }, 1, 5, TG_F64);
    tg_tensor *y = tg_roi_align(x, b, 1, 1, 1.0, 1, false);
    VALUES("value", y, 1e-12, 4 * 1.25 + 2.5);
    VALUES("grad", grad_of_sum(x, y), 1e-12, 0, 0, 0, 0, 0, 0, 0.375, 0.375, 0, 0, 0.125, 0.125, 0, 0, 0, 0);
    /* A sample in (-1, 0] reads row 0 alone; one at or below -1 reads nothing. */
    tg_tensor *b2 = rows((const double[]){ 0, -0.5, -0.5, 0.5, 0.5, 0, -3, 0, -1.5, 1 }, 2, 5, TG_F64);
    tg_tensor *y2 = tg_roi_align(x, b2, 1, 1, 1.0, 1, false);
    VALUES("clamped", y2, 1e-12, 0, 0);
    VALUES("clamped grad", grad_of_sum(x, y2), 1e-12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/* ------------------------------------------------------------------ gradcheck */

typedef struct {
    bool align;
    int64_t ph, pw, sr;
    double scale;
    bool aligned;
    tg_tensor *boxes;
} gc_ctx;

/* Squared so that second order is not trivially zero. */
static tg_tensor *gc_fn(tg_tensor *const *in, void *vctx) {
    gc_ctx *c = vctx;
    tg_tensor *x = tg_mul(in[0], in[0]);
    return c->align ? tg_roi_align(x, c->boxes, c->ph, c->pw, c->scale, c->sr, c->aligned)
                    : tg_roi_pool(x, c->boxes, c->ph, c->pw, c->scale);
}

/* Distinct values a few hundredths apart (no near ties for the max). */
static tg_tensor *distinct(int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t k = n * c * h * w, mul = 7;
    while (k % mul == 0) mul += 2;
    double *v = malloc((size_t)k * sizeof *v);
    for (int64_t i = 0; i < k; i++) v[i] = 0.05 * (double)((i * mul + 3) % k) + 0.3;
    tg_tensor *t = tg_from_f64(v, TG_SHAPE(n, c, h, w), dev());
    free(v);
    return t;
}

TEST(gradcheck_and_gradgradcheck) {
    if (no_fp64()) SKIP("%s has no f64", tg_device_name(dev()));
    /* Overlapping boxes on both images, one partly outside, one degenerate. */
    const double b[] = { 0, 0.3, 0.6, 4.2, 3.9, 1, 1, 0, 6.5, 5, 1, 2.2, 1.7, 3.1, 2.4, 0, -1, 3, 8, 7.5, 0, 2, 2, 2, 2 };
    tg_tensor *boxes = rows(b, 5, 5, TG_F64), *x = distinct(2, 2, 5, 6);
    gc_ctx cs[] = {
        { .align = false, .ph = 2, .pw = 3, .scale = 1 },
        { .align = false, .ph = 3, .pw = 2, .scale = 0.8 },
        { .align = true, .ph = 2, .pw = 2, .sr = -1, .scale = 1 },
        { .align = true, .ph = 3, .pw = 2, .sr = 2, .scale = 0.9, .aligned = true },
    };
    for (int i = 0; i < 4; i++) {
        cs[i].boxes = boxes;
        tg_gradcheck_report rep;
        if (tg_gradcheck(gc_fn, &cs[i], 1, &x, NULL, &rep) != TG_OK)
            FAIL_("gradcheck case %d: %s (%s)", i, rep.message, tg_last_error());
        if (tg_gradgradcheck(gc_fn, &cs[i], 1, &x, NULL, &rep) != TG_OK)
            FAIL_("gradgradcheck case %d: %s (%s)", i, rep.message, tg_last_error());
    }
}

/* The device under test against the CPU path on a larger case; on the CPU itself,
 * four threads against one (K*C = 480 output planes are split between threads). */
static double *roi_run(tg_device *d, int op, bool grad, int threads) {
    int prev = tg_get_num_threads();
    if (threads) tg_set_num_threads(threads);
    tg_manual_seed(7);
    tg_tensor *x = tg_param(tg_to(tg_randn(TG_F32, TG_SHAPE(2, 40, 13, 11), tg_device_get("cpu")), d));
    double b[12 * 5];
    for (int k = 0; k < 12; k++) {
        double x1 = (k * 5) % 11 - 1.5, y1 = (k * 3) % 13 - 0.7;
        double r[5] = { k % 2, x1, y1, x1 + 1 + (k * 7) % 9 * 0.9, y1 + 0.5 + (k * 5) % 8 * 1.1 };
        memcpy(b + 5 * k, r, sizeof r);
    }
    tg_tensor *bx = tg_from_f64(b, TG_SHAPE(12, 5), d);
    tg_tensor *y = op == 0 ? tg_roi_pool(x, bx, 3, 4, 0.9) : tg_roi_align(x, bx, 4, 3, 0.7, op == 1 ? -1 : 2, op == 2);
    double *v = y ? tg_test_values(grad ? grad_of_sum(x, tg_mul(y, y)) : y) : NULL;
    if (threads) tg_set_num_threads(prev);
    return v;
}

TEST(matches_cpu) {
    tg_device *cpu = tg_device_get("cpu");
    const int64_t n[2] = { 12 * 40 * 12, 2 * 40 * 13 * 11 };
    for (int op = 0; op < 3; op++)
        for (int grad = 0; grad < 2; grad++) {
            double *want = roi_run(cpu, op, grad, dev() == cpu ? 1 : 0);
            double *got = roi_run(dev(), op, grad, dev() == cpu ? 4 : 0);
            CHECK(want && got);
            for (int64_t i = 0; want && got && i < n[grad]; i++)
                if (!(fabs(got[i] - want[i]) <= 1e-5 * fmax(1, fabs(want[i])))) {
                    FAIL_("op %d grad %d [%lld]: %.9g, the CPU %.9g", op, grad, (long long)i, got[i], want[i]);
                    break;
                }
            free(want);
            free(got);
        }
}

/* ------------------------------------------------------------------ boxes */

static tg_tensor *iou_fn(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return tg_box_iou(in[0], in[1]);
}

TEST(box_iou) {
    const double a[] = { 0, 0, 2, 2, 1, 0, 3, 4 }, b[] = { 1, 1, 3, 3, 2, 2, 4, 4, 0, 0, 2, 2 };
    /* a0 and b0 share 1 of 4 + 4; a0 touches b1 at a corner; a1 (area 8) holds b0. */
    VALUES("box_iou", tg_box_iou(rows(a, 2, 4, TG_F32), rows(b, 3, 4, TG_F32)), 1e-6, 1.0 / 7, 0, 1, 0.5, 0.2, 0.2);
    if (no_fp64()) return;
    tg_tensor *in[] = { tg_param(rows((const double[]){ 0, 0, 2, 2.5, 1, 0.5, 3.2, 4 }, 2, 4, TG_F64)),
                        tg_param(rows((const double[]){ 1, 1, 3, 3, 0.2, 0.1, 2.1, 1.9 }, 2, 4, TG_F64)) };
    tg_gradcheck_report rep;
    if (tg_gradcheck(iou_fn, NULL, 2, in, NULL, &rep) != TG_OK) FAIL_("gradcheck: %s", rep.message);
}

static void check_i64(int *tg_failed_, const char *what, tg_tensor *t, const int64_t *want, int64_t n) {
    double *got = t ? tg_test_values(t) : NULL;
    if (!got || tg_numel(t) != n || tg_dtype_of(t) != TG_I64) {
        FAIL_("%s: %lld values (%s)", what, t ? (long long)tg_numel(t) : -1LL, tg_last_error());
    } else {
        for (int64_t i = 0; i < n; i++)
            if (got[i] != (double)want[i]) FAIL_("%s[%lld] = %g, expected %lld", what, (long long)i, got[i],
                                                 (long long)want[i]);
    }
    free(got);
}

TEST(nms_and_batched_nms) {
    /* Box 1 overlaps boxes 0 and 3 (the same box) by 81 / 119 = 0.68. */
    const double b[] = { 0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 10 };
    const double s[] = { 0.9, 0.8, 0.7, 0.95 };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        if (dt == TG_F64 && no_fp64()) continue;
        tg_tensor *boxes = rows(b, 4, 4, dt), *scores = tg_cast(tg_from_f64(s, TG_SHAPE(4), dev()), dt);
        check_i64(tg_failed_, "nms 0.5", tg_nms(boxes, scores, 0.5), (const int64_t[]){ 3, 2 }, 2);
        check_i64(tg_failed_, "nms 0.7", tg_nms(boxes, scores, 0.7), (const int64_t[]){ 3, 1, 2 }, 3);
        check_i64(tg_failed_, "nms 1", tg_nms(boxes, scores, 1.0), (const int64_t[]){ 3, 0, 1, 2 }, 4);
        tg_tensor *cls = tg_from_i64((const int64_t[]){ 1, 0, 0, 0 }, TG_SHAPE(4), dev());
        check_i64(tg_failed_, "batched_nms", tg_batched_nms(boxes, scores, cls, 0.5), (const int64_t[]){ 3, 0, 2 }, 3);
        CHECK(tg_device_of(tg_nms(boxes, scores, 0.5)) == dev());
    }
    tg_tensor *none = tg_nms(tg_zeros(TG_F32, TG_SHAPE(0, 4), dev()), tg_zeros(TG_F32, TG_SHAPE(0), dev()), 0.5);
    CHECK(none && tg_numel(none) == 0);
}

/* ------------------------------------------------------------------ errors */

TEST(error_messages) {
    tg_tensor *x = plane16(TG_F32), *b = rows((const double[]){ 0, 0, 0, 2, 2 }, 1, 5, TG_F32);
    CHECK_ERROR(tg_roi_align(tg_reshape(x, TG_SHAPE(1, 4, 4)), b, 2, 2, 1, -1, false),
                "tg_roi_align: expected a 4-D (N, C, H, W) input, got 3-D [1,4,4]");
    CHECK_ERROR(tg_roi_pool(tg_zeros(TG_F32, TG_SHAPE(1, 1, 0, 4), dev()), b, 2, 2, 1),
                "tg_roi_pool: expected non-zero H and W, got [1,1,0,4]");
    CHECK_ERROR(tg_roi_pool(tg_cast(x, TG_I32), b, 2, 2, 1), "tg_roi_pool: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_roi_pool(x, tg_reshape(b, TG_SHAPE(5)), 2, 2, 1),
                "tg_roi_pool: boxes must be (K, 5) rows [batch_index, x1, y1, x2, y2], got [5]");
    CHECK_ERROR(tg_roi_align(x, tg_slice(b, 1, 0, 4, 1), 2, 2, 1, -1, false),
                "tg_roi_align: boxes must be (K, 5) rows [batch_index, x1, y1, x2, y2], got [1,4]");
    CHECK_ERROR(tg_roi_align(x, tg_cast(b, TG_I64), 2, 2, 1, -1, false), "tg_roi_align: boxes must be f32 or f64, got i64");
    CHECK_ERROR(tg_roi_pool(x, b, 0, 2, 1), "tg_roi_pool: output size must be positive, got (0, 2)");
    CHECK_ERROR_CONTAINS(tg_roi_pool(x, b, (int64_t)1 << 40, (int64_t)1 << 40, 1),
                         "tg_roi_pool: shape [1,1,1099511627776,1099511627776] is too large (more than ");
    CHECK_ERROR(tg_roi_pool(x, b, 2, 2, 0), "tg_roi_pool: spatial_scale must be positive and finite, got 0");
    CHECK_ERROR(tg_roi_align(x, b, 2, 2, -0.5, 0, false),
                "tg_roi_align: spatial_scale must be positive and finite, got -0.5");
    CHECK_ERROR(tg_roi_align(x, b, 2, 2, INFINITY, 0, false),
                "tg_roi_align: spatial_scale must be positive and finite, got inf");
    CHECK_ERROR(tg_roi_align(x, b, 2, 2, 1, -2, false),
                "tg_roi_align: sampling_ratio must be -1 or 0 (adaptive) or in [1, 1024], got -2");
    CHECK_ERROR(tg_roi_align(x, b, 2, 2, 1, 1025, false),
                "tg_roi_align: sampling_ratio must be -1 or 0 (adaptive) or in [1, 1024], got 1025");
    CHECK_ERROR(tg_roi_align(x, rows((const double[]){ 0, 0, 0, 2, 2, 1, 0, 0, 2, 2 }, 2, 5, TG_F32), 2, 2, 1, -1, false),
                "tg_roi_align: boxes[1, 0] = 1 is not a batch index of the input (N = 1: 0 to 0)");
    CHECK_ERROR(tg_roi_pool(x, rows((const double[]){ -1, 0, 0, 2, 2 }, 1, 5, TG_F32), 2, 2, 1),
                "tg_roi_pool: boxes[0, 0] = -1 is not a batch index of the input (N = 1: 0 to 0)");
    CHECK_ERROR(tg_roi_pool(x, rows((const double[]){ 0, 0, NAN, 2, 2 }, 1, 5, TG_F32), 2, 2, 1),
                "tg_roi_pool: boxes[0, 2] = nan is not a finite coordinate");
    CHECK_ERROR(tg_roi_pool(x, rows((const double[]){ 0, 0, 0, 1e16, 2 }, 1, 5, TG_F64), 2, 2, 1),
                "tg_roi_pool: boxes[0, 3] = 1e+16 is not a finite coordinate (at most 1e15 after spatial_scale)");
    CHECK_ERROR(tg_roi_align(x, rows((const double[]){ 0, 0, 0, 1e7, 1e7 }, 1, 5, TG_F32), 2, 2, 1, -1, false),
                "tg_roi_align: box 0 would take 5000000 x 5000000 samples per bin (at most 1048576: give a "
                "sampling_ratio)");
    CHECK_ERROR(tg_roi_pool(NULL, b, 2, 2, 1), "tg_roi_pool: input is NULL");
    CHECK_ERROR(tg_box_iou(tg_zeros(TG_F32, TG_SHAPE(2, 5), dev()), tg_zeros(TG_F32, TG_SHAPE(2, 4), dev())),
                "tg_box_iou: a must be (N, 4) rows [x1, y1, x2, y2], got [2,5]");
    CHECK_ERROR(tg_box_iou(tg_zeros(TG_F32, TG_SHAPE(2, 4), dev()), tg_zeros(TG_I32, TG_SHAPE(2, 4), dev())),
                "tg_box_iou: b must be f32 or f64, got i32");
    tg_tensor *bx = tg_zeros(TG_F32, TG_SHAPE(3, 4), dev());
    CHECK_ERROR(tg_nms(bx, tg_zeros(TG_F32, TG_SHAPE(2), dev()), 0.5), "tg_nms: scores [2] must be (N) for boxes [3,4]");
    CHECK_ERROR(tg_nms(bx, tg_zeros(TG_I32, TG_SHAPE(3), dev()), 0.5),
                "tg_nms: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_nms(bx, tg_zeros(TG_F32, TG_SHAPE(3), dev()), NAN), "tg_nms: iou_threshold is NaN");
    CHECK_ERROR(tg_batched_nms(bx, tg_zeros(TG_F32, TG_SHAPE(3), dev()), tg_zeros(TG_F32, TG_SHAPE(3), dev()), 0.5),
                "tg_batched_nms: idxs must be i32 or i64, got f32");
    CHECK_ERROR(tg_batched_nms(bx, tg_zeros(TG_F32, TG_SHAPE(3), dev()), NULL, 0.5), "tg_batched_nms: idxs is NULL");
}

/* ------------------------------------------------------------------ torchvision */

/* The same inputs (x[i] = ((i * 37) % 23 - 11) / 4 on (2, 3, 7, 9), boxes below)
 * through torchvision.ops in f64 (and roi_align in f32), printed one number a line. */
static const char *k_script =
    "import sys\n"
    "try:\n"
    "    import torch, torchvision.ops as ops\n"
    "except Exception:\n"
    "    sys.exit(3)\n"
    "def inp(dt):\n"
    "    return torch.tensor([((i * 37) % 23 - 11) / 4 for i in range(378)], dtype=dt).reshape(2, 3, 7, 9)\n"
    "B = [[0, 0.6, 1.2, 7.3, 5.5], [1, 2, 1, 3, 6], [1, -2, -1.5, 4.4, 9], [0, 3.3, 2.2, 3.1, 2.0], [0, 6, 3, 12, 8]]\n"
    "out = []\n"
    "def emit(t):\n"
    "    out.extend(float(v) for v in t.detach().flatten())\n"
    "def run(dt, f):\n"
    "    x = inp(dt).requires_grad_()\n"
    "    y = f(x, torch.tensor(B, dtype=dt))\n"
    "    w = torch.arange(y.numel(), dtype=dt).reshape(y.shape) / 7\n"
    "    g, = torch.autograd.grad((y * w).sum(), x)\n"
    "    emit(y); emit(g)\n"
    "for dt in (torch.float64, torch.float32):\n"
    "    run(dt, lambda x, b: ops.roi_pool(x, b, (3, 2), 0.7))\n"
    "    run(dt, lambda x, b: ops.roi_align(x, b, (2, 3), 0.8, -1, False))\n"
    "    run(dt, lambda x, b: ops.roi_align(x, b, (3, 3), 1.0, 2, True))\n"
    "    run(dt, lambda x, b: ops.roi_align(x, b, (2, 2), 0.5, 0, True))\n"
    "bx = torch.tensor([[(i * 13) % 17, (i * 7) % 11, (i * 13) % 17 + 3 + i % 5, (i * 7) % 11 + 2 + i % 3]\n"
    "                   for i in range(40)], dtype=torch.float32)\n"
    "sc = torch.tensor([((i * 29) % 31) / 31 for i in range(40)], dtype=torch.float32)\n"
    "emit(ops.box_iou(bx[:6], bx[6:11]))\n"
    "emit(ops.nms(bx, sc, 0.3)); emit(ops.nms(bx, sc, 0.1))\n"
    "emit(ops.batched_nms(bx, sc, torch.tensor([i % 3 for i in range(40)]), 0.2))\n"
    "print('\\n'.join(repr(v) for v in out))\n";

static int append(double **all, int n, tg_tensor *t) {
    double *v = t && n >= 0 ? tg_test_values(t) : NULL;
    if (!v) return -1;
    int64_t k = tg_numel(t);
    *all = realloc(*all, (size_t)(n + k) * sizeof **all);
    memcpy(*all + n, v, (size_t)k * sizeof *v);
    free(v);
    return n + (int)k;
}

static int run_case(double **got, int n, tg_dtype dt, int which) {
    static const double B[] = { 0, 0.6, 1.2, 7.3, 5.5, 1, 2, 1, 3, 6, 1, -2, -1.5, 4.4, 9, 0, 3.3, 2.2, 3.1, 2.0,
                                0, 6, 3, 12, 8 };
    double v[378];
    for (int i = 0; i < 378; i++) v[i] = ((i * 37) % 23 - 11) / 4.0;
    tg_tensor *x = tg_param(tg_cast(tg_from_f64(v, TG_SHAPE(2, 3, 7, 9), dev()), dt)), *b = rows(B, 5, 5, dt), *y;
    switch (which) {
    case 0: y = tg_roi_pool(x, b, 3, 2, 0.7); break;
    case 1: y = tg_roi_align(x, b, 2, 3, 0.8, -1, false); break;
    case 2: y = tg_roi_align(x, b, 3, 3, 1.0, 2, true); break;
    default: y = tg_roi_align(x, b, 2, 2, 0.5, 0, true); break;
    }
    if (!y) return -1;
    tg_tensor *w = tg_div(tg_reshape(tg_arange(dt, 0, (double)tg_numel(y), 1, dev()), tg_shape_of(y)),
                          tg_scalar(dt, 7, dev()));
    tg_tensor *g = NULL;
    if (tg_autograd_grad(1, &(tg_tensor *){ tg_sum(tg_mul(y, w), TG_ALL, false) }, NULL, 1, &x, &g, NULL) != TG_OK)
        return -1;
    n = append(got, n, y);
    return append(got, n, g);
}

static double *read_torch(int *nw) {
    char path[] = "/tmp/tg_test_detection_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    fputs(k_script, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    double *want = NULL;
    char line[64];
    *nw = 0;
    while (p && fgets(line, sizeof line, p)) {
        want = realloc(want, (size_t)(*nw + 1) * sizeof *want);
        want[(*nw)++] = strtod(line, NULL);
    }
    if (p) pclose(p);
    unlink(path);
    return want;
}

TEST(agrees_with_torchvision) {
    if (no_fp64()) SKIP("%s has no f64", tg_device_name(dev()));
    int nw = 0;
    double *want = read_torch(&nw);
    if (nw == 0) {
        free(want);
        SKIP("/usr/bin/python3 with torchvision is not installed");
    }
    double *got = NULL;
    int n = 0, n64 = 0;
    for (int d = 0; d < 2; d++) {
        for (int which = 0; which < 4; which++) n = run_case(&got, n, d ? TG_F32 : TG_F64, which);
        if (d == 0) n64 = n;
    }
    int nroi = n;
    double bx[160], sc[40];
    int64_t cls[40];
    for (int i = 0; i < 40; i++) {
        bx[4 * i] = (i * 13) % 17, bx[4 * i + 1] = (i * 7) % 11;
        bx[4 * i + 2] = (i * 13) % 17 + 3 + i % 5, bx[4 * i + 3] = (i * 7) % 11 + 2 + i % 3;
        sc[i] = ((i * 29) % 31) / 31.0, cls[i] = i % 3;
    }
    tg_tensor *boxes = rows(bx, 40, 4, TG_F32), *scores = tg_cast(tg_from_f64(sc, TG_SHAPE(40), dev()), TG_F32);
    n = append(&got, n, tg_box_iou(tg_slice(boxes, 0, 0, 6, 1), tg_slice(boxes, 0, 6, 11, 1)));
    n = append(&got, n, tg_nms(boxes, scores, 0.3));
    n = append(&got, n, tg_nms(boxes, scores, 0.1));
    n = append(&got, n, tg_batched_nms(boxes, scores, tg_from_i64(cls, TG_SHAPE(40), dev()), 0.2));
    if (n != nw) FAIL_("%d numbers here, %d from torchvision (%s)", n, nw, tg_last_error());
    for (int k = 0; k < n && k < nw; k++) {
        double tol = k < n64 ? 1e-12 : k < nroi ? 2e-5 : 1e-6; /* f64, f32 ROI ops, boxes */
        if (!(fabs(got[k] - want[k]) <= tol * fmax(1, fabs(want[k])))) {
            FAIL_("number %d: %.17g here, %.17g from torchvision", k, got[k], want[k]);
            break;
        }
    }
    free(got);
    free(want);
}

TG_TEST_MAIN(&tg_case_roi_pool_by_hand, &tg_case_roi_pool_batches_and_bins, &tg_case_roi_align_by_hand,
             &tg_case_roi_align_gradient_by_hand, &tg_case_gradcheck_and_gradgradcheck, &tg_case_matches_cpu, &tg_case_box_iou,
             &tg_case_nms_and_batched_nms, &tg_case_error_messages, &tg_case_agrees_with_torchvision)
