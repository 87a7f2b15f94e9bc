/* Augmentation transforms against hand-computed values on tiny images: flips, random
 * crop with constant/reflect/edge padding, random resized crop (box choice, fallback,
 * bilinear resize; and torchvision's resize when python3 has it), colour jitter's
 * blends, PCA lighting and its fit, normalize, to_float; option and image errors; and
 * the pipeline's determinism in a loader with 0, 1 and 3 workers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tapegrad/data.h"

static tg_device *cpu(void) { return tg_device_get("cpu"); }

/* 0, 1, 2, ... as a (c, h, w) image of dtype. */
static tg_tensor *iota(tg_dtype dtype, int64_t c, int64_t h, int64_t w) {
    return tg_cast(tg_reshape(tg_arange(TG_F32, 0, (double)(c * h * w), 1, cpu()), TG_SHAPE(c, h, w)), dtype);
}

static tg_tensor *apply1(tg_transform *t, tg_tensor *x, int64_t index) {
    return tg_transforms_apply(1, &t, x, 42, 0, index);
}

/* Whether t holds exactly the n values of expect. */
static bool equals(tg_tensor *t, const double *expect, int64_t n, double tol) {
    if (!t || tg_numel(t) != n) return false;
    double *v = tg_test_values(t);
    bool ok = v != NULL;
    for (int64_t i = 0; ok && i < n; i++) ok = fabs(v[i] - expect[i]) <= tol;
    free(v);
    return ok;
}

/* ------------------------------------------------------------- flips */

TEST(flips) {
    tg_tensor *x = iota(TG_U8, 1, 2, 3);
    tg_transform *h = tg_random_horizontal_flip(1), *v = tg_random_vertical_flip(1), *never = tg_random_horizontal_flip(0);
    CHECK(equals(apply1(h, x, 0), (double[]){ 2, 1, 0, 5, 4, 3 }, 6, 0));
    CHECK(equals(apply1(v, x, 0), (double[]){ 3, 4, 5, 0, 1, 2 }, 6, 0));
    CHECK(equals(apply1(never, x, 0), (double[]){ 0, 1, 2, 3, 4, 5 }, 6, 0));
    tg_tensor *y = apply1(h, tg_cast(tg_reshape(x, TG_SHAPE(2, 3)), TG_F32), 0); /* (H, W) stays 2-D */
    CHECK(y && tg_ndim(y) == 2 && tg_dtype_of(y) == TG_F32 && equals(y, (double[]){ 2, 1, 0, 5, 4, 3 }, 6, 0));
    tg_transform *half = tg_random_horizontal_flip(0.5);
    int flipped = 0;
    for (int i = 0; i < 1000; i++) {
        tg_scope_begin();
        flipped += equals(apply1(half, x, i), (double[]){ 2, 1, 0, 5, 4, 3 }, 6, 0);
        tg_scope_end();
    }
    CHECK(flipped > 440 && flipped < 560);
    /* The same (seed, epoch, index) gives the same choice; another epoch may not. */
    int agree = 0, epochs_agree = 0;
    for (int i = 0; i < 200; i++) {
        tg_scope_begin();
        double a = tg_item(tg_sum(tg_cast(tg_sub(tg_transforms_apply(1, &half, x, 7, 1, i),
                                                tg_transforms_apply(1, &half, x, 7, 1, i)), TG_F32), TG_ALL, false));
        double b = tg_item(tg_sum(tg_cast(tg_transforms_apply(1, &half, x, 7, 1, i), TG_F32), TG_ALL, false));
        tg_tensor *first = tg_transforms_apply(1, &half, x, 7, 1, i), *other = tg_transforms_apply(1, &half, x, 7, 2, i);
        double *p = tg_test_values(first), *q = tg_test_values(other);
        agree += a == 0 && b == 15;
        epochs_agree += p[0] == q[0];
        free(p);
        free(q);
        tg_scope_end();
    }
    CHECK(agree == 200 && epochs_agree < 150);
    tg_transform_free(h), tg_transform_free(v), tg_transform_free(never), tg_transform_free(half);
}

/* ------------------------------------------------------------- random crop */

TEST(random_crop_padding_modes) {
    tg_tensor *x = iota(TG_U8, 1, 3, 3); /* 0 1 2 / 3 4 5 / 6 7 8 */
    tg_transform *c = tg_random_crop(&(tg_random_crop_opts){ .size = 5, .padding = 1, .fill = 9 });
    tg_transform *r = tg_random_crop(&(tg_random_crop_opts){ .size = 5, .padding = 1, .padding_mode = TG_PAD_REFLECT });
    tg_transform *e = tg_random_crop(&(tg_random_crop_opts){ .size = 5, .padding = 1, .padding_mode = TG_PAD_EDGE });
    tg_transform *l = tg_random_crop(&(tg_random_crop_opts){ .size_hw = { 3, 4 }, .padding_ltrb = { 1, 0, 0, 0 } });
    CHECK(equals(apply1(c, x, 0), (double[]){ 9, 9, 9, 9, 9, 9, 0, 1, 2, 9, 9, 3, 4, 5, 9, 9, 6, 7, 8, 9, 9, 9, 9, 9, 9 },
                 25, 0));
    CHECK(equals(apply1(r, x, 0), (double[]){ 4, 3, 4, 5, 4, 1, 0, 1, 2, 1, 4, 3, 4, 5, 4, 7, 6, 7, 8, 7, 4, 3, 4, 5, 4 },
                 25, 0));
    CHECK(equals(apply1(e, x, 0), (double[]){ 0, 0, 1, 2, 2, 0, 0, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 6, 6, 7, 8, 8 },
                 25, 0));
    CHECK(equals(apply1(l, x, 0), (double[]){ 0, 0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8 }, 12, 0));
    tg_transform_free(c), tg_transform_free(r), tg_transform_free(e), tg_transform_free(l);
}

/* A 3x3 crop of the 3x3 image padded by 1 with 9s: one of the 9 windows of the padded
 * 5x5 image, each about as often. */
TEST(random_crop_positions) {
    static const double padded[5][5] = {
        { 9, 9, 9, 9, 9 }, { 9, 0, 1, 2, 9 }, { 9, 3, 4, 5, 9 }, { 9, 6, 7, 8, 9 }, { 9, 9, 9, 9, 9 },
    };
    tg_tensor *x = iota(TG_F32, 1, 3, 3);
    tg_transform *c = tg_random_crop(&(tg_random_crop_opts){ .size = 3, .padding = 1, .fill = 9 });
    int hits[3][3] = { { 0 } }, none = 0;
    for (int i = 0; i < 900; i++) {
        tg_scope_begin();
        double *v = tg_test_values(apply1(c, x, i));
        int found = 0;
        for (int t = 0; v && t < 3; t++)
            for (int l = 0; l < 3; l++) {
                bool match = true;
                for (int k = 0; k < 9 && match; k++) match = v[k] == padded[t + k / 3][l + k % 3];
                if (match && !found) hits[t][l]++, found = 1;
            }
        none += !found;
        free(v);
        tg_scope_end();
    }
    CHECK(none == 0);
    for (int t = 0; t < 3; t++)
        for (int l = 0; l < 3; l++) CHECK(hits[t][l] > 60 && hits[t][l] < 140);
    /* pad_if_needed: 2x2 -> W padded by 2 on each side, then H: a 4x4 crop of 6x6. */
    tg_transform *p = tg_random_crop(&(tg_random_crop_opts){ .size = 4, .pad_if_needed = true });
    tg_tensor *y = apply1(p, tg_ones(TG_F32, TG_SHAPE(1, 2, 2), cpu()), 3);
    CHECK(y && tg_size(y, 1) == 4 && tg_size(y, 2) == 4);
    /* 1x1 padded by 1 is exactly the crop: no random choice left. */
    CHECK(equals(apply1(c, iota(TG_F32, 1, 1, 1), 0), (double[]){ 9, 9, 9, 9, 0, 9, 9, 9, 9 }, 9, 0));
    tg_transform_free(c), tg_transform_free(p);
}

TEST(random_crop_errors) {
    tg_transform *c = tg_random_crop(&(tg_random_crop_opts){ .size = 4 });
    tg_transform *r = tg_random_crop(&(tg_random_crop_opts){ .size = 3, .padding = 3, .padding_mode = TG_PAD_REFLECT });
    CHECK_ERROR(apply1(c, iota(TG_U8, 1, 3, 3), 0),
                "tg_transforms_apply: transform 0 (RandomCrop): the crop 4x4 is larger than the (padded) image 3x3");
    CHECK_ERROR(apply1(r, iota(TG_U8, 1, 3, 3), 0),
                "tg_transforms_apply: transform 0 (RandomCrop): reflect padding (3, 3, 3, 3) must be smaller than the "
                "image's 3x3");
    CHECK_ERROR(apply1(c, tg_zeros(TG_F32, TG_SHAPE(2, 2, 2, 2), cpu()), 0),
                "tg_transforms_apply: expected an image (C, H, W) or (H, W), got [2,2,2,2]");
    CHECK_ERROR(apply1(c, tg_zeros(TG_F64, TG_SHAPE(1, 5, 5), cpu()), 0),
                "tg_transforms_apply: expected a u8 or f32 image, got f64");
    CHECK_ERROR(tg_random_crop(NULL), "tg_random_crop: opts is NULL (the crop size is required)");
    CHECK_ERROR(tg_random_crop(&(tg_random_crop_opts){ .size = 3, .padding = -1 }), "tg_random_crop: padding must be >= 0");
    CHECK_ERROR(tg_random_crop(&(tg_random_crop_opts){ .size_hw = { 3, 0 } }),
                "tg_random_crop: expected size >= 1 or size_hw with both entries >= 1 (not both), got size 0, "
                "size_hw (3, 0)");
    CHECK_ERROR(tg_random_horizontal_flip(1.5), "tg_random_horizontal_flip: p must be in [0, 1], got 1.5");
    CHECK_ERROR(tg_transforms_apply(1, (tg_transform *[]){ NULL }, iota(TG_U8, 1, 2, 2), 0, 0, 0),
                "tg_transforms_apply: transform 0 is NULL");
    tg_transform_free(c), tg_transform_free(r);
}

/* ------------------------------------------------------------- random resized crop */

TEST(random_resized_crop_hand_values) {
    /* scale (1, 1), ratio (1, 1) on a square image: the whole image, every time. */
    tg_transform *whole = tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size = 2, .scale = { 1, 1 },
                                                                                .ratio = { 1, 1 } });
    /* 4x4 -> 2x2 bilinear with half-pixel centres: each output averages a 2x2 block. */
    CHECK(equals(apply1(whole, iota(TG_F32, 1, 4, 4), 0), (double[]){ 2.5, 4.5, 10.5, 12.5 }, 4, 1e-6));
    /* Upsampling (1, 2) -> (1, 4): sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge). */
    tg_transform *wide = tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size_hw = { 1, 4 }, .scale = { 1, 1 },
                                                                               .ratio = { 2, 2 } });
    tg_tensor *row = tg_mul_scalar(iota(TG_F32, 1, 1, 2), 10);
    CHECK(equals(apply1(wide, row, 0), (double[]){ 0, 2.5, 7.5, 10 }, 4, 1e-6));
    tg_tensor *row8 = tg_cast(tg_mul_scalar(iota(TG_F32, 1, 1, 2), 11), TG_U8); /* u8 rounds: 2.75 -> 3, 8.25 -> 8 */
    CHECK(equals(apply1(wide, row8, 0), (double[]){ 0, 3, 8, 11 }, 4, 0));
    /* No 4x4 box fits a 2x8 image: the fallback crops the centre at the largest ratio
     * (h 2, w round(2 * 1) = 2, left (8 - 2) / 2 = 3), then resizes 2x2 -> 2x2 exactly. */
    tg_transform *fb = tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size = 2, .scale = { 1, 1 },
                                                                             .ratio = { 1, 1 } });
    CHECK(equals(apply1(fb, iota(TG_F32, 1, 2, 8), 5), (double[]){ 3, 4, 11, 12 }, 4, 0));
    /* Defaults on a 32x32 image: the output has the size, values stay inside the input's range. */
    tg_transform *def = tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size = 8 });
    for (int i = 0; i < 50; i++) {
        tg_scope_begin();
        tg_tensor *y = apply1(def, iota(TG_F32, 3, 32, 32), i);
        CHECK(y && tg_size(y, 0) == 3 && tg_size(y, 1) == 8 && tg_size(y, 2) == 8);
        CHECK(tg_item(tg_min(y, TG_ALL, false)) >= 0 && tg_item(tg_max(y, TG_ALL, false)) <= 3 * 1024 - 1);
        tg_scope_end();
    }
    CHECK_ERROR(tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size = 2, .scale = { 0.5, 0.1 } }),
                "tg_random_resized_crop: scale must be (min, max) with 0 < min <= max, got (0.5, 0.1)");
    CHECK_ERROR(tg_random_resized_crop(&(tg_random_resized_crop_opts){ .size = 2, .ratio = { -1, 1 } }),
                "tg_random_resized_crop: ratio must be (min, max) with 0 < min <= max, got (-1, 1)");
    tg_transform_free(whole), tg_transform_free(wide), tg_transform_free(fb), tg_transform_free(def);
}

/* Our resize (the whole image through RandomResizedCrop) against torchvision's
 * F.resize(bilinear, antialias=False) on a 5x7 image, down to 3x4 and up to 9x11. */
TEST(resize_matches_torchvision) {
    if (system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") != 0) SKIP("no python3 with torchvision");
    int sizes[2][2] = { { 3, 4 }, { 9, 11 } };
    tg_tensor *x = tg_mul_scalar(tg_cos(iota(TG_F32, 1, 5, 7)), 0.5);
    double *xv = tg_test_values(x);
    for (int s = 0; s < 2; s++) {
        char cmd[4096];
        int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import torch, warnings; warnings.filterwarnings(\"ignore\"); "
                           "import torchvision.transforms.functional as F; x = torch.tensor([");
        for (int i = 0; i < 35; i++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, "%.9g,", xv[i]);
        snprintf(cmd + len, sizeof cmd - (size_t)len, "]).reshape(1, 5, 7); y = F.resize(x, [%d, %d], "
                 "interpolation=F.InterpolationMode.BILINEAR, antialias=False); print(*y.flatten().tolist())' 2>/dev/null",
                 sizes[s][0], sizes[s][1]);
        FILE *p = popen(cmd, "r");
        int n = sizes[s][0] * sizes[s][1], got = 0;
        double ref[99];
        while (p && got < n && fscanf(p, "%lf", &ref[got]) == 1) got++;
        if (p) pclose(p);
        CHECK(got == n);
        tg_transform *t = tg_random_resized_crop(&(tg_random_resized_crop_opts){
            .size_hw = { sizes[s][0], sizes[s][1] }, .scale = { 1, 1 }, .ratio = { 1.4, 1.4 } });
        CHECK(got == n && equals(apply1(t, x, 0), ref, n, 1e-5));
        tg_transform_free(t);
    }
    free(xv);
}

/* ------------------------------------------------------------- colour */

/* A 3-channel 1x2 f32 image: pixels (0.2, 0.5, 0.8) and (0.6, 0.1, 0.4). */
static tg_tensor *rgb2(void) {
    return tg_from_f32((float[]){ 0.2f, 0.6f, 0.5f, 0.1f, 0.8f, 0.4f }, TG_SHAPE(3, 1, 2), cpu());
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

TEST(color_jitter_blends) {
    static const double x[6] = { 0.2, 0.6, 0.5, 0.1, 0.8, 0.4 };
    double grey[2], mean = 0;
    for (int i = 0; i < 2; i++) grey[i] = 0.2989 * x[i] + 0.587 * x[2 + i] + 0.114 * x[4 + i], mean += grey[i] / 2;
    tg_transform *b = tg_color_jitter(&(tg_color_jitter_opts){ .brightness = 0.5 });
    tg_transform *c = tg_color_jitter(&(tg_color_jitter_opts){ .contrast = 0.5 });
    tg_transform *s = tg_color_jitter(&(tg_color_jitter_opts){ .saturation = 0.9 });
    for (int i = 0; i < 20; i++) {
        tg_scope_begin();
        /* The factor, recovered from the first value, must be in range and explain every value. */
        double *yb = tg_test_values(apply1(b, rgb2(), i)), fb = yb[0] / x[0];
        double *yc = tg_test_values(apply1(c, rgb2(), i)), fc = (yc[0] - mean) / (x[0] - mean);
        double *ys = tg_test_values(apply1(s, rgb2(), i)), fs = (ys[0] - grey[0]) / (x[0] - grey[0]);
        CHECK(fb >= 0.5 - 1e-6 && fb <= 1.5 + 1e-6 && fc >= 0.5 - 1e-6 && fc <= 1.5 + 1e-6 && fs >= 0 && fs <= 1.9);
        for (int k = 0; k < 6; k++) {
            CHECK_NEAR(yb[k], clamp01(fb * x[k]), 1e-5);
            CHECK_NEAR(yc[k], clamp01(fc * x[k] + (1 - fc) * mean), 1e-5);
            CHECK_NEAR(ys[k], clamp01(fs * x[k] + (1 - fs) * grey[k % 2]), 1e-5);
        }
        free(yb), free(yc), free(ys);
        tg_scope_end();
    }
    /* A one-channel image: contrast blends with its mean; saturation leaves it alone. */
    tg_tensor *g = tg_from_f32((float[]){ 0.2f, 0.6f }, TG_SHAPE(1, 1, 2), cpu());
    double *yg = tg_test_values(apply1(c, g, 1)), f = (yg[0] - 0.4) / (0.2 - 0.4);
    CHECK_NEAR(yg[1], 0.4 + f * 0.2, 1e-6);
    free(yg);
    CHECK(equals(apply1(s, g, 1), (double[]){ 0.2, 0.6 }, 2, 1e-7));
    /* Random order: with the same factors, some samples come out differently from fixed order. */
    tg_transform *all = tg_color_jitter(&(tg_color_jitter_opts){ .brightness = 0.8, .contrast = 0.8, .saturation = 0.8 });
    tg_transform *fixed = tg_color_jitter(&(tg_color_jitter_opts){ .brightness = 0.8, .contrast = 0.8,
                                                                  .saturation = 0.8, .fixed_order = true });
    int differ = 0;
    for (int i = 0; i < 30; i++) {
        tg_scope_begin();
        differ += tg_item(tg_max(tg_abs(tg_sub(apply1(all, rgb2(), i), apply1(fixed, rgb2(), i))), TG_ALL, false)) > 1e-6;
        tg_scope_end();
    }
    CHECK(differ > 5 && differ < 30);
    CHECK_ERROR(apply1(b, iota(TG_U8, 3, 2, 2), 0),
                "tg_transforms_apply: transform 0 (ColorJitter): expected an f32 image, got u8 (convert it with "
                "tg_to_float first)");
    CHECK_ERROR(apply1(b, iota(TG_F32, 2, 2, 2), 0), "tg_transforms_apply: transform 0 (ColorJitter): expected 1 or 3 "
                                                     "channels, got 2");
    CHECK_ERROR(tg_color_jitter(&(tg_color_jitter_opts){ .contrast = -1 }),
                "tg_color_jitter: brightness, contrast and saturation must be finite and >= 0, got 0, -1, 0");
    tg_transform_free(b), tg_transform_free(c), tg_transform_free(s), tg_transform_free(all), tg_transform_free(fixed);
}

TEST(pca_lighting) {
    /* Identity eigenvectors: channel c moves by alpha_c eigval_c, the same at every pixel. */
    tg_pca_lighting_opts o = { .alpha_std = TG_SOME(0.1), .eigval = { 1, 2, 4 },
                               .eigvec = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } } };
    tg_transform *t = tg_pca_lighting(&o);
    double sum[3] = { 0 }, sq[3] = { 0 };
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        tg_scope_begin();
        double *y = tg_test_values(apply1(t, rgb2(), i));
        static const double x[6] = { 0.2, 0.6, 0.5, 0.1, 0.8, 0.4 };
        for (int c = 0; c < 3; c++) {
            double d0 = y[2 * c] - x[2 * c], d1 = y[2 * c + 1] - x[2 * c + 1], a = d0 / o.eigval[c];
            CHECK_NEAR(d0, d1, 1e-6);
            sum[c] += a, sq[c] += a * a;
        }
        free(y);
        tg_scope_end();
    }
    for (int c = 0; c < 3; c++) {
        double mean = sum[c] / N, sd = sqrt(sq[c] / N - mean * mean);
        CHECK(fabs(mean) < 0.01 && fabs(sd - 0.1) < 0.01);
    }
    /* The fit: G = 2 R, B = 0: one component along (1, 2, 0) / sqrt(5) with variance
     * 5 var(R); R takes 0, 0.2, 0.4, 0.6 (var 0.05). */
    tg_tensor *img = tg_from_f32((float[]){ 0, 0.2f, 0.4f, 0.6f, 0, 0.4f, 0.8f, 1.2f, 0, 0, 0, 0 },
                                 TG_SHAPE(1, 3, 2, 2), cpu());
    double ev[3], vec[3][3];
    CHECK(tg_pca_lighting_fit(img, ev, vec) == TG_OK);
    CHECK_NEAR(ev[0], 0.25, 1e-6);
    CHECK_NEAR(ev[1], 0, 1e-6);
    CHECK_NEAR(ev[2], 0, 1e-6);
    CHECK_NEAR(fabs(vec[0][0]), 1 / sqrt(5), 1e-6);
    CHECK_NEAR(fabs(vec[1][0]), 2 / sqrt(5), 1e-6);
    CHECK_NEAR(vec[2][0], 0, 1e-6);
    CHECK_NEAR(vec[0][0] * vec[1][0], 2.0 / 5, 1e-6); /* same sign */
    CHECK_ERROR(tg_pca_lighting_fit(iota(TG_F32, 2, 2, 2), ev, vec),
                "tg_pca_lighting_fit: expected float images (N, 3, H, W) or (3, H, W) with pixels, got f32 [2,2,2]");
    CHECK_ERROR(apply1(t, iota(TG_F32, 1, 2, 2), 0), "tg_transforms_apply: transform 0 (Lighting): expected 3 "
                                                     "channels, got 1");
    CHECK_ERROR(tg_pca_lighting(&(tg_pca_lighting_opts){ .alpha_std = TG_SOME(-1) }),
                "tg_pca_lighting: alpha_std must be finite and >= 0, got -1");
    tg_transform_free(t);
}

TEST(normalize_and_to_float) {
    tg_transform *f = tg_to_float();
    tg_transform *n = tg_normalize(2, (double[]){ 0.5, 1 }, (double[]){ 0.5, 2 });
    tg_transform *z = tg_normalize(2, (double[]){ 0.5, 1 }, NULL);
    tg_tensor *x = tg_from_u8((uint8_t[]){ 0, 255, 51, 102 }, TG_SHAPE(2, 1, 2), cpu());
    tg_tensor *y = apply1(f, x, 0);
    CHECK(y && tg_dtype_of(y) == TG_F32 && equals(y, (double[]){ 0, 1, 0.2, 0.4 }, 4, 1e-7));
    CHECK(equals(tg_transforms_apply(2, (tg_transform *[]){ f, n }, x, 0, 0, 0), (double[]){ -1, 1, -0.4, -0.3 }, 4,
                 1e-6));
    CHECK(equals(tg_transforms_apply(2, (tg_transform *[]){ f, z }, x, 0, 0, 0), (double[]){ -0.5, 0.5, -0.8, -0.6 }, 4,
                 1e-6));
    CHECK_ERROR(apply1(n, iota(TG_F32, 3, 1, 1), 0),
                "tg_transforms_apply: transform 0 (Normalize): the image has 3 channels, mean and std have 2");
    CHECK_ERROR(apply1(n, x, 0), "tg_transforms_apply: transform 0 (Normalize): expected an f32 image, got u8 (convert "
                                 "it with tg_to_float first)");
    CHECK_ERROR(tg_normalize(1, (double[]){ 0 }, (double[]){ 0 }),
                "tg_normalize: channel 0: mean must be finite and std finite and non-zero, got mean 0, std 0");
    CHECK_ERROR(tg_normalize(0, NULL, NULL), "tg_normalize: expected n_channels >= 1 and a mean, got 0 and NULL");
    tg_transform_free(f), tg_transform_free(n), tg_transform_free(z);
}

/* ------------------------------------------------------------- in a loader */

/* The batches of two epochs through flip + crop + jitter are the same bytes with 0, 1
 * and 3 workers. */
TEST(pipeline_is_deterministic_across_workers) {
    enum { N = 24, B = 5 };
    tg_manual_seed(3);
    tg_tensor *img = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(N, 3, 6, 6), cpu()), 255), TG_U8);
    tg_tensor *lab = tg_arange(TG_I32, 0, N, 1, cpu());
    tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ img, lab });
    tg_transform *tf[] = { tg_random_horizontal_flip(0.5),
                           tg_random_crop(&(tg_random_crop_opts){ .size = 6, .padding = 2 }), tg_to_float(),
                           tg_color_jitter(&(tg_color_jitter_opts){ .brightness = 0.4, .saturation = 0.4 }) };
    float *out[3];
    int workers[3] = { 0, 1, 3 };
    size_t per_epoch = (size_t)N * 3 * 6 * 6;
    for (int w = 0; w < 3; w++) {
        out[w] = calloc(2 * per_epoch, sizeof(float));
        tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = B, .shuffle = true, .seed = 11,
                                                           .num_workers = workers[w], .transforms = tf,
                                                           .n_transforms = 4 });
        size_t at = 0;
        tg_batch b;
        for (int e = 0; e < 2; e++)
            while (tg_loader_next(l, &b)) {
                CHECK(tg_dtype_of(b.x) == TG_F32 && tg_size(b.x, 1) == 3 && tg_size(b.x, 2) == 6);
                CHECK(tg_copy_to_host(b.x, out[w] + at, (size_t)tg_numel(b.x) * sizeof(float)) == TG_OK);
                at += (size_t)tg_numel(b.x);
            }
        CHECK(at == 2 * per_epoch && tg_last_status() == TG_OK);
        tg_loader_free(l);
    }
    CHECK(memcmp(out[0], out[1], 2 * per_epoch * sizeof(float)) == 0);
    CHECK(memcmp(out[0], out[2], 2 * per_epoch * sizeof(float)) == 0);
    CHECK(memcmp(out[0], out[0] + per_epoch, per_epoch * sizeof(float)) != 0); /* epochs differ */
    for (int w = 0; w < 3; w++) free(out[w]);
    for (int i = 0; i < 4; i++) tg_transform_free(tf[i]);
    tg_dataset_free(ds);
}

TG_TEST_MAIN(&tg_case_flips, &tg_case_random_crop_padding_modes, &tg_case_random_crop_positions,
             &tg_case_random_crop_errors, &tg_case_random_resized_crop_hand_values, &tg_case_resize_matches_torchvision,
             &tg_case_color_jitter_blends, &tg_case_pca_lighting, &tg_case_normalize_and_to_float,
             &tg_case_pipeline_is_deterministic_across_workers)
