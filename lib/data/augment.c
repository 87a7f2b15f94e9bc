/* Augmentation: the transform list the loader applies per sample, and the geometry
 * transforms (flips, random crop with padding, random resized crop), as plain loops
 * over a host copy of the image. Randomness comes from a stream keyed by (seed, epoch,
 * sample index, position), so results do not depend on workers or timing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/data/augment.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

/* ------------------------------------------------------------- random stream */

uint64_t tg_aug_next(tg_aug_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tg_aug_uniform(tg_aug_rng *r, double lo, double hi) {
    return lo + (hi - lo) * ((double)(tg_aug_next(r) >> 11) * 0x1p-53);
}

double tg_aug_normal(tg_aug_rng *r) {
    double u1 = ((double)(tg_aug_next(r) >> 11) + 1.0) * 0x1p-53; /* (0, 1]: log is finite */
    double u2 = (double)(tg_aug_next(r) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* torch.randint(lo, hi): uniform in [lo, hi); hi > lo. */
static int64_t randint(tg_aug_rng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)(tg_aug_next(r) % (uint64_t)(hi - lo));
}

static tg_aug_rng stream(uint64_t seed, int64_t epoch, int64_t index, int pos) {
    tg_aug_rng r = { seed };
    uint64_t parts[3] = { (uint64_t)epoch, (uint64_t)index, (uint64_t)pos };
    for (int i = 0; i < 3; i++) {
        r.s = tg_aug_next(&r) ^ parts[i];
        r.s = tg_aug_next(&r);
    }
    return r;
}

/* ------------------------------------------------------------- images */

static size_t img_bytes(const tg_aug_img *m) { return (size_t)(m->c * m->h * m->w) * tg_elsize(m->dtype); }

/* An empty image of the geometry, data allocated; false with a message. */
static bool img_alloc(tg_aug_img *out, const tg_aug_img *like, tg_dtype dtype, int64_t h, int64_t w) {
    *out = (tg_aug_img){ dtype, like->ndim, like->c, h, w, NULL };
    out->data = malloc(img_bytes(out) ? img_bytes(out) : 1);
    if (!out->data) tg_error(TG_ERR_NOMEM, "out of host memory for an image");
    return out->data != NULL;
}

static void img_replace(tg_aug_img *img, tg_aug_img *by) {
    free(img->data);
    *img = *by;
}

static tg_status img_from_tensor(tg_tensor *x, tg_aug_img *img) {
    char b[128];
    if (x->ndim != 2 && x->ndim != 3)
        return tg_error(TG_ERR_SHAPE, "expected an image (C, H, W) or (H, W), got %s",
                        tg_shape_str(b, x->ndim, x->shape));
    if (x->dtype != TG_U8 && x->dtype != TG_F32)
        return tg_error(TG_ERR_DTYPE, "expected a u8 or f32 image, got %s", tg_dtype_name(x->dtype));
    int three = x->ndim == 3;
    tg_aug_img like = { x->dtype, x->ndim, three ? x->shape[0] : 1, 0, 0, NULL };
    if (!img_alloc(img, &like, x->dtype, x->shape[three], x->shape[three + 1])) return TG_ERR_NOMEM;
    tg_status st = tg_copy_to_host(x, img->data, img_bytes(img) ? img_bytes(img) : 1);
    if (st != TG_OK) free(img->data);
    return st;
}

static tg_tensor *img_to_tensor(const tg_aug_img *img) {
    tg_shape s = img->ndim == 3 ? TG_SHAPE(img->c, img->h, img->w) : TG_SHAPE(img->h, img->w);
    return tg_from_data(img->data, img->dtype, s, tg_cpu_device());
}

/* ------------------------------------------------------------- geometry */

/* Reverses the order of n blocks of run bytes at base. */
static void reverse_blocks(char *base, int64_t n, size_t run) {
    for (int64_t a = 0, b = n - 1; a < b; a++, b--) {
        char *pa = base + (size_t)a * run, *pb = base + (size_t)b * run;
        for (size_t k = 0; k < run; k++) {
            char tmp = pa[k];
            pa[k] = pb[k];
            pb[k] = tmp;
        }
    }
}

static void flip(tg_aug_img *img, bool horizontal) {
    size_t es = tg_elsize(img->dtype);
    char *d = img->data;
    if (horizontal)
        for (int64_t r = 0; r < img->c * img->h; r++) reverse_blocks(d + (size_t)(r * img->w) * es, img->w, es);
    else
        for (int64_t c = 0; c < img->c; c++)
            reverse_blocks(d + (size_t)(c * img->h * img->w) * es, img->h, (size_t)img->w * es);
}

/* Where output position i of a padded axis reads from an axis of size n (pad before),
 * or -1 for the constant fill. */
static int64_t pad_source(int64_t i, int64_t before, int64_t n, tg_pad_mode mode) {
    int64_t s = i - before;
    if (s >= 0 && s < n) return s;
    if (mode == TG_PAD_CONSTANT) return -1;
    if (mode == TG_PAD_EDGE) return s < 0 ? 0 : n - 1;
    return s < 0 ? -s : 2 * (n - 1) - s; /* reflect; padding < n was checked */
}

/* F.pad on the last two axes by (left, top, right, bottom). */
static tg_status pad(const tg_transform *t, int pos, tg_aug_img *img, const int64_t ltrb[4]) {
    if (!ltrb[0] && !ltrb[1] && !ltrb[2] && !ltrb[3]) return TG_OK;
    tg_pad_mode mode = t->crop.padding_mode;
    if (mode == TG_PAD_REFLECT && (ltrb[0] >= img->w || ltrb[2] >= img->w || ltrb[1] >= img->h || ltrb[3] >= img->h))
        return tg_error(TG_ERR_SHAPE, "transform %d (%s): reflect padding (%lld, %lld, %lld, %lld) must be smaller "
                        "than the image's %lldx%lld", pos, t->name, (long long)ltrb[0], (long long)ltrb[1],
                        (long long)ltrb[2], (long long)ltrb[3], (long long)img->h, (long long)img->w);
    tg_aug_img out;
    if (!img_alloc(&out, img, img->dtype, img->h + ltrb[1] + ltrb[3], img->w + ltrb[0] + ltrb[2])) return TG_ERR_NOMEM;
    size_t es = tg_elsize(img->dtype);
    float ff = (float)t->crop.fill;
    uint8_t fu = (uint8_t)fmin(255, fmax(0, nearbyint(t->crop.fill)));
    const void *fill = img->dtype == TG_U8 ? (const void *)&fu : (const void *)&ff;
    const char *src = img->data;
    char *dst = out.data;
    for (int64_t c = 0; c < out.c; c++)
        for (int64_t y = 0; y < out.h; y++) {
            int64_t sy = pad_source(y, ltrb[1], img->h, mode);
            for (int64_t x = 0; x < out.w; x++) {
                int64_t sx = pad_source(x, ltrb[0], img->w, mode);
                const void *from = sy < 0 || sx < 0 ? fill : src + (size_t)((c * img->h + sy) * img->w + sx) * es;
                memcpy(dst + (size_t)((c * out.h + y) * out.w + x) * es, from, es);
            }
        }
    img_replace(img, &out);
    return TG_OK;
}

static tg_status crop_box(tg_aug_img *img, int64_t top, int64_t left, int64_t h, int64_t w) {
    tg_aug_img out;
    if (!img_alloc(&out, img, img->dtype, h, w)) return TG_ERR_NOMEM;
    size_t es = tg_elsize(img->dtype);
    for (int64_t c = 0; c < img->c; c++)
        for (int64_t y = 0; y < h; y++)
            memcpy((char *)out.data + (size_t)((c * h + y) * w) * es,
                   (char *)img->data + (size_t)((c * img->h + top + y) * img->w + left) * es, (size_t)w * es);
    img_replace(img, &out);
    return TG_OK;
}

static void crop_size(const int64_t size, const int64_t hw[2], int64_t *h, int64_t *w) {
    *h = hw[0] || hw[1] ? hw[0] : size;
    *w = hw[0] || hw[1] ? hw[1] : size;
}

static tg_status random_crop(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng) {
    const tg_random_crop_opts *o = &t->crop;
    int64_t th, tw, p = o->padding;
    crop_size(o->size, o->size_hw, &th, &tw);
    const int64_t *l = o->padding_ltrb;
    int64_t ltrb[4] = { p, p, p, p };
    if (l[0] || l[1] || l[2] || l[3]) memcpy(ltrb, l, sizeof ltrb);
    tg_status st = pad(t, pos, img, ltrb);
    if (st == TG_OK && o->pad_if_needed && img->w < tw) st = pad(t, pos, img, (int64_t[4]){ tw - img->w, 0, tw - img->w, 0 });
    if (st == TG_OK && o->pad_if_needed && img->h < th) st = pad(t, pos, img, (int64_t[4]){ 0, th - img->h, 0, th - img->h });
    if (st != TG_OK) return st;
    if (img->h < th || img->w < tw)
        return tg_error(TG_ERR_SHAPE, "transform %d (%s): the crop %lldx%lld is larger than the (padded) image "
                        "%lldx%lld", pos, t->name, (long long)th, (long long)tw, (long long)img->h, (long long)img->w);
    if (img->h == th && img->w == tw) return TG_OK;
    int64_t top = randint(rng, 0, img->h - th + 1), left = randint(rng, 0, img->w - tw + 1);
    return crop_box(img, top, left, th, tw);
}

/* torch's bilinear interpolation, align_corners false: source = (dst + 0.5) scale - 0.5,
 * clamped at 0. */
static void bilinear_axis(int64_t out, int64_t in, int64_t *i0, int64_t *i1, float *lambda) {
    float scale = (float)in / (float)out;
    for (int64_t d = 0; d < out; d++) {
        float s = fmaxf(0.0f, ((float)d + 0.5f) * scale - 0.5f);
        i0[d] = (int64_t)s;
        i1[d] = i0[d] < in - 1 ? i0[d] + 1 : i0[d];
        lambda[d] = s - (float)i0[d];
    }
}

static tg_status resize(tg_aug_img *img, int64_t oh, int64_t ow) {
    tg_aug_img out;
    int64_t *idx = malloc((size_t)(2 * (oh + ow)) * sizeof *idx);
    float *lam = malloc((size_t)(oh + ow) * sizeof *lam);
    if (!idx || !lam || !img_alloc(&out, img, img->dtype, oh, ow)) {
        free(idx);
        free(lam);
        return tg_error(TG_ERR_NOMEM, "out of host memory for an image");
    }
    int64_t *y0 = idx, *y1 = idx + oh, *x0 = idx + 2 * oh, *x1 = x0 + ow;
    bilinear_axis(oh, img->h, y0, y1, lam);
    bilinear_axis(ow, img->w, x0, x1, lam + oh);
    for (int64_t c = 0; c < img->c; c++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++) {
                int64_t base = c * img->h * img->w, r0 = base + y0[y] * img->w, r1 = base + y1[y] * img->w;
                float ly = lam[y], lx = lam[oh + x], v;
                if (img->dtype == TG_U8) {
                    const uint8_t *s = img->data;
                    v = (1 - ly) * ((1 - lx) * s[r0 + x0[x]] + lx * s[r0 + x1[x]]) +
                        ly * ((1 - lx) * s[r1 + x0[x]] + lx * s[r1 + x1[x]]);
                    ((uint8_t *)out.data)[(c * oh + y) * ow + x] = (uint8_t)fminf(255, fmaxf(0, nearbyintf(v)));
                } else {
                    const float *s = img->data;
                    v = (1 - ly) * ((1 - lx) * s[r0 + x0[x]] + lx * s[r0 + x1[x]]) +
                        ly * ((1 - lx) * s[r1 + x0[x]] + lx * s[r1 + x1[x]]);
                    ((float *)out.data)[(c * oh + y) * ow + x] = v;
                }
            }
    free(idx);
    free(lam);
    img_replace(img, &out);
    return TG_OK;
}

static tg_status random_resized_crop(const tg_transform *t, tg_aug_img *img, tg_aug_rng *rng) {
    const tg_random_resized_crop_opts *o = &t->rrc;
    double area = (double)(img->h * img->w), lr0 = log(o->ratio[0]), lr1 = log(o->ratio[1]);
    int64_t h = 0, w = 0, top = -1, left = -1;
    for (int tries = 0; tries < 10 && top < 0; tries++) {
        double target = area * tg_aug_uniform(rng, o->scale[0], o->scale[1]);
        double aspect = exp(tg_aug_uniform(rng, lr0, lr1));
        w = (int64_t)nearbyint(sqrt(target * aspect));
        h = (int64_t)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= img->w && h > 0 && h <= img->h) {
            top = randint(rng, 0, img->h - h + 1);
            left = randint(rng, 0, img->w - w + 1);
        }
    }
    if (top < 0) { /* torchvision's fallback: the centre crop within the ratio range */
        double in_ratio = (double)img->w / (double)img->h;
        w = img->w, h = img->h;
        if (in_ratio < o->ratio[0]) h = (int64_t)nearbyint((double)w / o->ratio[0]);
        else if (in_ratio > o->ratio[1]) w = (int64_t)nearbyint((double)h * o->ratio[1]);
        top = (img->h - h) / 2;
        left = (img->w - w) / 2;
    }
    int64_t oh, ow;
    crop_size(o->size, o->size_hw, &oh, &ow);
    tg_status st = crop_box(img, top, left, h, w);
    return st == TG_OK ? resize(img, oh, ow) : st;
}

/* ------------------------------------------------------------- the list */

static tg_status custom(const tg_transform *t, int pos, tg_aug_img *img, uint64_t sample_seed) {
    tg_tensor *x = img_to_tensor(img);
    if (!x) return tg_last_status();
    tg_api_saved sv = tg_api_suspend();
    tg_clear_error();
    tg_tensor *y = t->fn(x, sample_seed, t->ctx);
    tg_api_resume(sv);
    if (!y) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", *tg_last_error() ? tg_last_error() : "it returned NULL");
        return tg_error(tg_last_status() ? tg_last_status() : TG_ERR_INVALID, "transform %d (%s): %s", pos, t->name,
                        msg);
    }
    tg_aug_img next;
    tg_status st = img_from_tensor(y, &next);
    if (st != TG_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        return tg_error(st, "transform %d (%s) returned a tensor it cannot pass on: %s", pos, t->name, msg);
    }
    img_replace(img, &next);
    return TG_OK;
}

static tg_status apply_one(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng) {
    switch (t->kind) {
    case TG_AUG_HFLIP:
    case TG_AUG_VFLIP:
        if (tg_aug_uniform(rng, 0, 1) < t->p) flip(img, t->kind == TG_AUG_HFLIP);
        return TG_OK;
    case TG_AUG_CROP: return random_crop(t, pos, img, rng);
    case TG_AUG_RESIZED_CROP: return random_resized_crop(t, img, rng);
    case TG_AUG_CUSTOM: return custom(t, pos, img, tg_aug_next(rng));
    default: return tg_aug_color(t, pos, img, rng);
    }
}

tg_tensor *tg_transforms_apply(int n, tg_transform *const *transforms, tg_tensor *x, uint64_t seed, int64_t epoch,
                               int64_t index) {
    TG_API_ENTER("tg_transforms_apply");
    if (n < 0 || (n > 0 && !transforms))
        return tg_error_null(TG_ERR_INVALID, "tg_transforms_apply: expected n >= 0 transforms, got %d%s", n,
                             n > 0 ? " and NULL" : "");
    for (int i = 0; i < n; i++)
        if (!transforms[i]) return tg_error_null(TG_ERR_INVALID, "tg_transforms_apply: transform %d is NULL", i);
    if (!tg_tensor_check("tg_transforms_apply", "x", x)) return NULL;
    tg_aug_img img;
    if (img_from_tensor(x, &img) != TG_OK) return NULL;
    tg_status st = TG_OK;
    for (int i = 0; i < n && st == TG_OK; i++) {
        tg_aug_rng rng = stream(seed, epoch, index, i);
        st = apply_one(transforms[i], i, &img, &rng);
    }
    tg_tensor *out = st == TG_OK ? img_to_tensor(&img) : NULL;
    free(img.data);
    return out;
}

/* ------------------------------------------------------------- constructors */

tg_transform *tg_aug_new(const char *api, tg_aug_kind kind, const char *name) {
    tg_transform *t = calloc(1, sizeof *t);
    if (!t) return tg_error_null(TG_ERR_NOMEM, "%s: out of host memory", api);
    t->kind = kind;
    t->name = name;
    return t;
}

void tg_transform_free(tg_transform *t) {
    if (!t) return;
    free(t->mean);
    free(t->std);
    free(t);
}

static tg_transform *flip_new(const char *api, tg_aug_kind kind, const char *name, double p) {
    if (!(p >= 0 && p <= 1)) return tg_error_null(TG_ERR_INVALID, "%s: p must be in [0, 1], got %g", api, p);
    tg_transform *t = tg_aug_new(api, kind, name);
    if (t) t->p = p;
    return t;
}

tg_transform *tg_random_horizontal_flip(double p) {
    TG_API_ENTER("tg_random_horizontal_flip");
    return flip_new("tg_random_horizontal_flip", TG_AUG_HFLIP, "RandomHorizontalFlip", p);
}

tg_transform *tg_random_vertical_flip(double p) {
    TG_API_ENTER("tg_random_vertical_flip");
    return flip_new("tg_random_vertical_flip", TG_AUG_VFLIP, "RandomVerticalFlip", p);
}

/* A crop size: size, or both of size_hw, >= 1. */
static bool size_ok(const char *api, int64_t size, const int64_t hw[2]) {
    int64_t h, w;
    crop_size(size, hw, &h, &w);
    if (h >= 1 && w >= 1 && !(size && (hw[0] || hw[1]))) return true;
    tg_error(TG_ERR_INVALID, "%s: expected size >= 1 or size_hw with both entries >= 1 (not both), got size %lld, "
             "size_hw (%lld, %lld)", api, (long long)size, (long long)hw[0], (long long)hw[1]);
    return false;
}

tg_transform *tg_random_crop(const tg_random_crop_opts *opts) {
    TG_API_ENTER("tg_random_crop");
    if (!opts) return tg_error_null(TG_ERR_INVALID, "tg_random_crop: opts is NULL (the crop size is required)");
    if (!size_ok("tg_random_crop", opts->size, opts->size_hw)) return NULL;
    bool neg = opts->padding < 0;
    for (int i = 0; i < 4; i++) neg |= opts->padding_ltrb[i] < 0;
    if (neg) return tg_error_null(TG_ERR_INVALID, "tg_random_crop: padding must be >= 0");
    if ((unsigned)opts->padding_mode > TG_PAD_EDGE)
        return tg_error_null(TG_ERR_INVALID, "tg_random_crop: unknown padding_mode %d", (int)opts->padding_mode);
    if (!isfinite(opts->fill)) return tg_error_null(TG_ERR_INVALID, "tg_random_crop: fill must be finite, got %g",
                                                    opts->fill);
    tg_transform *t = tg_aug_new("tg_random_crop", TG_AUG_CROP, "RandomCrop");
    if (t) t->crop = *opts;
    return t;
}

tg_transform *tg_random_resized_crop(const tg_random_resized_crop_opts *opts) {
    TG_API_ENTER("tg_random_resized_crop");
    const char *api = "tg_random_resized_crop";
    if (!opts) return tg_error_null(TG_ERR_INVALID, "%s: opts is NULL (the output size is required)", api);
    if (!size_ok(api, opts->size, opts->size_hw)) return NULL;
    tg_random_resized_crop_opts o = *opts;
    if (!o.scale[0] && !o.scale[1]) o.scale[0] = 0.08, o.scale[1] = 1.0;
    if (!o.ratio[0] && !o.ratio[1]) o.ratio[0] = 3.0 / 4.0, o.ratio[1] = 4.0 / 3.0;
    if (!(o.scale[0] > 0 && o.scale[0] <= o.scale[1] && isfinite(o.scale[1])))
        return tg_error_null(TG_ERR_INVALID, "%s: scale must be (min, max) with 0 < min <= max, got (%g, %g)", api,
                             o.scale[0], o.scale[1]);
    if (!(o.ratio[0] > 0 && o.ratio[0] <= o.ratio[1] && isfinite(o.ratio[1])))
        return tg_error_null(TG_ERR_INVALID, "%s: ratio must be (min, max) with 0 < min <= max, got (%g, %g)", api,
                             o.ratio[0], o.ratio[1]);
    tg_transform *t = tg_aug_new(api, TG_AUG_RESIZED_CROP, "RandomResizedCrop");
    if (t) t->rrc = o;
    return t;
}

tg_transform *tg_transform_custom(tg_transform_fn fn, void *ctx) {
    TG_API_ENTER("tg_transform_custom");
    if (!fn) return tg_error_null(TG_ERR_INVALID, "tg_transform_custom: fn is NULL");
    tg_transform *t = tg_aug_new("tg_transform_custom", TG_AUG_CUSTOM, "custom");
    if (t) t->fn = fn, t->ctx = ctx;
    return t;
}
