/* The colour and value transforms of the augmentation list: torchvision's ColorJitter
 * (brightness, contrast, saturation), AlexNet's PCA lighting noise with its fit,
 * Normalize and ToTensor's u8 -> [0, 1] scaling. Plain loops over host f32 images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/data/augment.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

static tg_status need_f32(const tg_transform *t, int pos, const tg_aug_img *img) {
    if (img->dtype == TG_F32) return TG_OK;
    return tg_error(TG_ERR_DTYPE, "transform %d (%s): expected an f32 image, got %s (convert it with tg_to_float "
                    "first)", pos, t->name, tg_dtype_name(img->dtype));
}

/* ------------------------------------------------------------- colour jitter */

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* torchvision's rgb_to_grayscale weights. */
static float grey_at(const float *x, int64_t plane, int64_t i) {
    return 0.2989f * x[i] + 0.587f * x[plane + i] + 0.114f * x[2 * plane + i];
}

/* x = clamp(f x + (1 - f) other); other is a scalar (brightness 0, contrast's mean) or,
 * when per_pixel, the greyscale image (saturation). */
static void blend(tg_aug_img *img, double f, float scalar, bool grey) {
    float *x = img->data, ff = (float)f;
    int64_t plane = img->h * img->w;
    for (int64_t i = 0; i < plane; i++) {
        float other = grey ? grey_at(x, plane, i) : scalar;
        for (int64_t c = 0; c < img->c; c++) x[c * plane + i] = clamp01(ff * x[c * plane + i] + (1 - ff) * other);
    }
}

static float grey_mean(const tg_aug_img *img) {
    const float *x = img->data;
    int64_t plane = img->h * img->w;
    double sum = 0;
    for (int64_t i = 0; i < plane * (img->c == 3 ? 1 : img->c); i++) sum += img->c == 3 ? grey_at(x, plane, i) : x[i];
    return (float)(sum / (double)(plane * (img->c == 3 ? 1 : img->c)));
}

static double factor(tg_aug_rng *rng, double v) { return tg_aug_uniform(rng, fmax(0, 1 - v), 1 + v); }

static tg_status jitter(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng) {
    if (img->c != 1 && img->c != 3)
        return tg_error(TG_ERR_SHAPE, "transform %d (%s): expected 1 or 3 channels, got %lld", pos, t->name,
                        (long long)img->c);
    const tg_color_jitter_opts *o = &t->jitter;
    int order[3] = { 0, 1, 2 };
    for (int i = 2; i > 0; i--) { /* Fisher-Yates, drawn with fixed_order too: the factors stay the same */
        int j = (int)(tg_aug_next(rng) % (uint64_t)(i + 1)), tmp = order[i];
        if (o->fixed_order) continue;
        order[i] = order[j];
        order[j] = tmp;
    }
    double fb = o->brightness ? factor(rng, o->brightness) : 1, fc = o->contrast ? factor(rng, o->contrast) : 1;
    double fs = o->saturation ? factor(rng, o->saturation) : 1;
    for (int k = 0; k < 3; k++) {
        if (order[k] == 0 && o->brightness) blend(img, fb, 0, false);
        if (order[k] == 1 && o->contrast) blend(img, fc, grey_mean(img), false);
        if (order[k] == 2 && o->saturation && img->c == 3) blend(img, fs, 0, true);
    }
    return TG_OK;
}

/* ------------------------------------------------------------- PCA lighting */

static tg_status lighting(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng) {
    if (img->c != 3)
        return tg_error(TG_ERR_SHAPE, "transform %d (%s): expected 3 channels, got %lld", pos, t->name,
                        (long long)img->c);
    double alpha[3], rgb[3];
    for (int j = 0; j < 3; j++) alpha[j] = t->alpha_std * tg_aug_normal(rng);
    for (int c = 0; c < 3; c++) {
        rgb[c] = 0;
        for (int j = 0; j < 3; j++) rgb[c] += t->eigvec[c][j] * alpha[j] * t->eigval[j];
    }
    float *x = img->data;
    int64_t plane = img->h * img->w;
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < plane; i++) x[c * plane + i] += (float)rgb[c];
    return TG_OK;
}

/* Jacobi rotations on a symmetric 3x3 matrix a: eigenvalues on its diagonal, the
 * eigenvectors in v's columns. */
static void jacobi3(double a[3][3], double v[3][3]) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) v[i][j] = i == j;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        if (off < 1e-300) return;
        for (int p = 0; p < 2; p++)
            for (int q = p + 1; q < 3; q++) {
                if (a[p][q] == 0) continue;
                double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
                double tt = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(tt * tt + 1), s = tt * c;
                for (int k = 0; k < 3; k++) { /* a = J^T a J */
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) {
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
    }
}

/* The channel covariance (population) of a dense (N, 3, H, W) f64 array. */
static void covariance(const double *x, int64_t n, int64_t plane, double cov[3][3]) {
    double mean[3] = { 0, 0, 0 }, count = (double)(n * plane);
    for (int64_t s = 0; s < n; s++)
        for (int c = 0; c < 3; c++)
            for (int64_t i = 0; i < plane; i++) mean[c] += x[(s * 3 + c) * plane + i];
    for (int c = 0; c < 3; c++) mean[c] /= count;
    memset(cov, 0, 9 * sizeof(double));
    for (int64_t s = 0; s < n; s++)
        for (int64_t i = 0; i < plane; i++) {
            double d[3];
            for (int c = 0; c < 3; c++) d[c] = x[(s * 3 + c) * plane + i] - mean[c];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) cov[a][b] += d[a] * d[b];
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) cov[a][b] /= count;
}

tg_status tg_pca_lighting_fit(tg_tensor *images, double eigval[3], double eigvec[3][3]) {
    TG_API_ENTER("tg_pca_lighting_fit");
    if (!eigval || !eigvec) return tg_error(TG_ERR_INVALID, "tg_pca_lighting_fit: eigval or eigvec is NULL");
    if (!tg_tensor_check("tg_pca_lighting_fit", "images", images)) return tg_last_status();
    char b[128];
    int nd = images->ndim;
    if ((nd != 3 && nd != 4) || images->shape[nd - 3] != 3 || !tg_is_float(images->dtype) ||
        tg_shape_numel(nd, images->shape) == 0)
        return tg_error(TG_ERR_SHAPE, "tg_pca_lighting_fit: expected float images (N, 3, H, W) or (3, H, W) with "
                        "pixels, got %s %s", tg_dtype_name(images->dtype), tg_shape_str(b, nd, images->shape));
    tg_tensor *x = tg_cast(images, TG_F64);
    int64_t numel = tg_shape_numel(nd, images->shape);
    double *host = malloc((size_t)numel * sizeof *host);
    tg_status st = x ? TG_ERR_NOMEM : tg_last_status();
    if (!x || !host) goto fail;
    if ((st = tg_copy_to_host(x, host, (size_t)numel * sizeof *host)) != TG_OK) goto fail;
    double cov[3][3], v[3][3];
    int64_t plane = images->shape[nd - 1] * images->shape[nd - 2];
    covariance(host, numel / (3 * plane), plane, cov);
    jacobi3(cov, v);
    int order[3] = { 0, 1, 2 };
    for (int i = 0; i < 3; i++) /* descending */
        for (int j = i + 1; j < 3; j++)
            if (cov[order[j]][order[j]] > cov[order[i]][order[i]]) {
                int tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
    for (int j = 0; j < 3; j++) {
        eigval[j] = cov[order[j]][order[j]];
        for (int c = 0; c < 3; c++) eigvec[c][j] = v[c][order[j]];
    }
fail:
    if (st == TG_ERR_NOMEM && !host) tg_error(TG_ERR_NOMEM, "tg_pca_lighting_fit: out of host memory");
    free(host);
    return st;
}

/* ------------------------------------------------------------- values */

static tg_status normalize(const tg_transform *t, int pos, tg_aug_img *img) {
    if (img->c != t->n_channels)
        return tg_error(TG_ERR_SHAPE, "transform %d (%s): the image has %lld channels, mean and std have %d", pos,
                        t->name, (long long)img->c, t->n_channels);
    float *x = img->data;
    int64_t plane = img->h * img->w;
    for (int64_t c = 0; c < img->c; c++) {
        float m = (float)t->mean[c], inv = (float)(1.0 / t->std[c]);
        for (int64_t i = 0; i < plane; i++) x[c * plane + i] = (x[c * plane + i] - m) * inv;
    }
    return TG_OK;
}

static tg_status to_float(const tg_transform *t, int pos, tg_aug_img *img) {
    if (img->dtype == TG_F32) return TG_OK;
    (void)t, (void)pos;
    size_t n = (size_t)(img->c * img->h * img->w);
    float *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) return tg_error(TG_ERR_NOMEM, "out of host memory for an image");
    const uint8_t *in = img->data;
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i] / 255.0f;
    free(img->data);
    img->data = out;
    img->dtype = TG_F32;
    return TG_OK;
}

tg_status tg_aug_color(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng) {
    if (t->kind == TG_AUG_TO_FLOAT) return to_float(t, pos, img);
    tg_status st = need_f32(t, pos, img);
    if (st != TG_OK) return st;
    switch (t->kind) {
    case TG_AUG_JITTER: return jitter(t, pos, img, rng);
    case TG_AUG_LIGHTING: return lighting(t, pos, img, rng);
    default: return normalize(t, pos, img);
    }
}

/* ------------------------------------------------------------- constructors */

tg_transform *tg_color_jitter(const tg_color_jitter_opts *opts) {
    TG_API_ENTER("tg_color_jitter");
    tg_color_jitter_opts o = opts ? *opts : (tg_color_jitter_opts){ 0 };
    if (!(o.brightness >= 0 && o.contrast >= 0 && o.saturation >= 0) ||
        !isfinite(o.brightness + o.contrast + o.saturation))
        return tg_error_null(TG_ERR_INVALID, "tg_color_jitter: brightness, contrast and saturation must be finite "
                             "and >= 0, got %g, %g, %g", o.brightness, o.contrast, o.saturation);
    tg_transform *t = tg_aug_new("tg_color_jitter", TG_AUG_JITTER, "ColorJitter");
    if (t) t->jitter = o;
    return t;
}

/* fb.resnet.torch's ImageNet values, for pixels in [0, 1]. */
static const double k_imagenet_eigval[3] = { 0.2175, 0.0188, 0.0045 };
static const double k_imagenet_eigvec[3][3] = {
    { -0.5675, 0.7192, 0.4009 },
    { -0.5808, -0.0045, -0.8140 },
    { -0.5836, -0.6948, 0.4203 },
};

tg_transform *tg_pca_lighting(const tg_pca_lighting_opts *opts) {
    TG_API_ENTER("tg_pca_lighting");
    tg_pca_lighting_opts o = opts ? *opts : (tg_pca_lighting_opts){ 0 };
    double alpha_std = o.alpha_std.set ? o.alpha_std.value : 0.1, sum = 0;
    if (!(alpha_std >= 0) || !isfinite(alpha_std))
        return tg_error_null(TG_ERR_INVALID, "tg_pca_lighting: alpha_std must be finite and >= 0, got %g", alpha_std);
    for (int i = 0; i < 3; i++) {
        sum += fabs(o.eigval[i]);
        for (int j = 0; j < 3; j++) sum += fabs(o.eigvec[i][j]);
    }
    if (!isfinite(sum)) return tg_error_null(TG_ERR_INVALID, "tg_pca_lighting: eigval and eigvec must be finite");
    tg_transform *t = tg_aug_new("tg_pca_lighting", TG_AUG_LIGHTING, "Lighting");
    if (!t) return NULL;
    t->alpha_std = alpha_std;
    memcpy(t->eigval, sum ? (const void *)o.eigval : (const void *)k_imagenet_eigval, sizeof t->eigval);
    memcpy(t->eigvec, sum ? (const void *)o.eigvec : (const void *)k_imagenet_eigvec, sizeof t->eigvec);
    return t;
}

tg_transform *tg_normalize(int n_channels, const double *mean, const double *std) {
    TG_API_ENTER("tg_normalize");
    if (n_channels < 1 || !mean)
        return tg_error_null(TG_ERR_INVALID, "tg_normalize: expected n_channels >= 1 and a mean, got %d%s", n_channels,
                             mean ? "" : " and NULL");
    for (int c = 0; c < n_channels; c++) {
        if (!isfinite(mean[c]) || (std && (!isfinite(std[c]) || std[c] == 0)))
            return tg_error_null(TG_ERR_INVALID, "tg_normalize: channel %d: mean must be finite and std finite and "
                                 "non-zero, got mean %g, std %g", c, mean[c], std ? std[c] : 1.0);
    }
    tg_transform *t = tg_aug_new("tg_normalize", TG_AUG_NORMALIZE, "Normalize");
    if (!t) return NULL;
    t->n_channels = n_channels;
    t->mean = malloc((size_t)n_channels * sizeof *t->mean);
    t->std = malloc((size_t)n_channels * sizeof *t->std);
    if (!t->mean || !t->std) {
        tg_transform_free(t);
        return tg_error_null(TG_ERR_NOMEM, "tg_normalize: out of host memory");
    }
    for (int c = 0; c < n_channels; c++) t->mean[c] = mean[c], t->std[c] = std ? std[c] : 1.0;
    return t;
}

tg_transform *tg_to_float(void) {
    TG_API_ENTER("tg_to_float");
    return tg_aug_new("tg_to_float", TG_AUG_TO_FLOAT, "ToTensor");
}
