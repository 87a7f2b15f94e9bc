/* PNG images through libspng (tg_read_image, tg_write_png) and torchvision's image grid
 * (tg_image_grid, tg_save_image). Decoding is progressive, row by row into a buffer
 * that grows with the rows decoded, so a header claiming a huge image costs nothing
 * until its pixel data really arrives. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TG_HAVE_SPNG
#include <spng.h>
#endif

#include "lib/data/reader.h"
#include "lib/graph/error.h"

static int mode_channels(tg_image_mode mode, bool gray, bool alpha) {
    switch (mode) {
    case TG_IMAGE_MODE_DEFAULT: return gray ? 1 : 3;
    case TG_IMAGE_MODE_UNCHANGED: return (gray ? 1 : 3) + alpha;
    case TG_IMAGE_MODE_GRAY: return 1;
    case TG_IMAGE_MODE_GRAY_ALPHA: return 2;
    case TG_IMAGE_MODE_RGB: return 3;
    case TG_IMAGE_MODE_RGB_ALPHA: return 4;
    }
    return 0;
}

/* Interleaved RGBA8 (h*w*4) to planar (C,H,W): gray from R for gray files, else by
 * PIL's "L" weights. */
static void rgba_to_planes(const uint8_t *rgba, size_t npix, int c, bool gray, uint8_t *out) {
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgba + 4 * i;
        if (c <= 2) {
            out[i] = gray ? p[0] : (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
            if (c == 2) out[npix + i] = p[3];
        } else {
            for (int k = 0; k < c; k++) out[(size_t)k * npix + i] = p[k];
        }
    }
}

#ifdef TG_HAVE_SPNG

/* Makes room for rows [0, rows) of the decoded image, zeroing what is new (an
 * interlaced pass fills a row in parts). */
static uint8_t *grow_rows(uint8_t *buf, size_t *cap, size_t need, size_t full) {
    if (need <= *cap) return buf;
    size_t ncap = *cap ? *cap : need;
    while (ncap < need) ncap = ncap > full / 2 ? full : 2 * ncap;
    uint8_t *nb = realloc(buf, ncap);
    if (!nb) return NULL;
    memset(nb + *cap, 0, ncap - *cap);
    *cap = ncap;
    return nb;
}

/* Decodes every row into *rgba (w*h*4 bytes); TG_OK or the error, message set. */
static tg_status decode_rows(const char *fn, const char *path, spng_ctx *ctx, const struct spng_ihdr *h,
                             uint8_t **rgba) {
    size_t row = (size_t)h->width * 4, full = row * h->height, cap = 0;
    int r = spng_decode_image(ctx, NULL, 0, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE);
    while (r == 0) {
        struct spng_row_info ri;
        if ((r = spng_get_row_info(ctx, &ri)) != 0) break;
        uint8_t *nb = grow_rows(*rgba, &cap, ((size_t)ri.row_num + 1) * row, full);
        if (!nb) return tg_error(TG_ERR_NOMEM, "%s: '%s': out of memory for %ux%u pixels", fn, path, h->width, h->height);
        *rgba = nb;
        r = spng_decode_row(ctx, *rgba + (size_t)ri.row_num * row, row);
    }
    if (r != SPNG_EOI) return tg_error(TG_ERR_IO, "%s: '%s' is not a valid PNG: %s", fn, path, spng_strerror(r));
    if (cap < full && !(*rgba = grow_rows(*rgba, &cap, full, full)))
        return tg_error(TG_ERR_NOMEM, "%s: '%s': out of memory", fn, path);
    return TG_OK;
}

tg_tensor *tg_data_read_png(const char *fn, const char *path, tg_image_mode mode, tg_device *dev) {
    if (!path) return tg_error_null(TG_ERR_INVALID, "%s: path is NULL", fn);
    if ((unsigned)mode > TG_IMAGE_MODE_RGB_ALPHA) return tg_error_null(TG_ERR_INVALID, "%s: unknown mode %d", fn, (int)mode);
    if (!dev) return tg_last_status() != TG_OK ? NULL : tg_error_null(TG_ERR_DEVICE, "%s: device is NULL", fn);
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_null(TG_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    spng_ctx *ctx = spng_ctx_new(0);
    uint8_t *rgba = NULL, *planes = NULL;
    tg_tensor *t = NULL;
    struct spng_ihdr h;
    struct spng_trns trns;
    int r;
    if (!ctx) {
        tg_error(TG_ERR_NOMEM, "%s: '%s': out of memory", fn, path);
        goto fail;
    }
    spng_set_chunk_limits(ctx, (size_t)1 << 24, (size_t)1 << 26); /* ancillary chunks: text, ICC profiles */
    spng_set_png_file(ctx, f);
    if ((r = spng_get_ihdr(ctx, &h)) != 0) {
        tg_error(TG_ERR_IO, "%s: '%s' is not a valid PNG: %s", fn, path, spng_strerror(r));
        goto fail;
    }
    if ((uint64_t)h.width * h.height > (uint64_t)TG_IMAGE_MAX_PIXELS || h.width > TG_IMAGE_MAX_SIDE ||
        h.height > TG_IMAGE_MAX_SIDE) {
        tg_error(TG_ERR_IO, "%s: '%s' is %ux%u pixels, over the limit of 2^28 pixels and 2^20 a side "
                 "(TG_IMAGE_MAX_PIXELS, TG_IMAGE_MAX_SIDE)", fn, path, h.width, h.height);
        goto fail;
    }
    if (decode_rows(fn, path, ctx, &h, &rgba) != TG_OK) goto fail;
    bool gray = h.color_type == SPNG_COLOR_TYPE_GRAYSCALE || h.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    bool alpha = h.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA || h.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA ||
                 spng_get_trns(ctx, &trns) == 0;
    int c = mode_channels(mode, gray, alpha);
    size_t npix = (size_t)h.width * h.height;
    if (!(planes = malloc(npix * (size_t)c + 1))) {
        tg_error(TG_ERR_NOMEM, "%s: '%s': out of memory", fn, path);
        goto fail;
    }
    rgba_to_planes(rgba, npix, c, gray, planes);
    t = tg_data_upload(fn, path, planes, TG_U8, TG_SHAPE(c, (int64_t)h.height, (int64_t)h.width), dev);
fail:
    spng_ctx_free(ctx);
    fclose(f);
    free(rgba);
    free(planes);
    return t;
}

/* Writes the whole buffer to a temporary file beside path and renames it over path. */
static tg_status write_atomically(const char *fn, const char *path, const void *data, size_t len) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tg_error(TG_ERR_IO, "%s: cannot create '%s': %s", fn, path, strerror(errno));
        free(tmp);
        return TG_ERR_IO;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int err = done < len ? errno : 0;
    if (fchmod(fd, 0644) != 0 && !err) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        tg_error(TG_ERR_IO, "%s: cannot write '%s': %s", fn, path, strerror(err ? err : EIO));
    }
    free(tmp);
    return err ? TG_ERR_IO : TG_OK;
}

static tg_status encode_png(const char *fn, const char *path, const uint8_t *pix, int c, int64_t h, int64_t w) {
    static const uint8_t types[5] = { 0, SPNG_COLOR_TYPE_GRAYSCALE, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA,
                                      SPNG_COLOR_TYPE_TRUECOLOR, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA };
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    struct spng_ihdr ih = { .width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = 8, .color_type = types[c] };
    size_t len = 0;
    int r = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!r) r = spng_set_ihdr(ctx, &ih);
    if (!r) r = spng_encode_image(ctx, pix, (size_t)(h * w * c), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    void *png = r ? NULL : spng_get_png_buffer(ctx, &len, &r);
    spng_ctx_free(ctx);
    tg_status st = png ? write_atomically(fn, path, png, len)
                       : tg_error(TG_ERR_IO, "%s: cannot encode '%s': %s", fn, path, spng_strerror(r));
    free(png);
    return st;
}

#else /* !TG_HAVE_SPNG */

tg_tensor *tg_data_read_png(const char *fn, const char *path, tg_image_mode mode, tg_device *dev) {
    (void)mode, (void)dev, (void)rgba_to_planes, (void)mode_channels;
    return tg_error_null(TG_ERR_IO, "%s: cannot read '%s': tapegrad was built without libspng", fn,
                         path ? path : "(null)");
}

static tg_status encode_png(const char *fn, const char *path, const uint8_t *pix, int c, int64_t h, int64_t w) {
    (void)pix, (void)c, (void)h, (void)w;
    return tg_error(TG_ERR_IO, "%s: cannot write '%s': tapegrad was built without libspng", fn, path);
}

#endif

tg_tensor *tg_read_image(const char *path, tg_image_mode mode, tg_device *dev) {
    TG_API_ENTER("tg_read_image");
    return tg_data_read_png("tg_read_image", path, mode, dev);
}

/* ------------------------------------------------------------- host copies */

static void format_shape(char *buf, size_t size, tg_shape s) {
    int len = snprintf(buf, size, "[");
    for (int i = 0; i < s.ndim && len > 0 && (size_t)len < size; i++)
        len += snprintf(buf + len, size - (size_t)len, "%s%lld", i ? "," : "", (long long)s.dims[i]);
    if (len > 0 && (size_t)len < size) snprintf(buf + len, size - (size_t)len, "]");
}

/* t's values as doubles on the host (any device, dtype and strides); caller frees. */
static double *host_values(tg_tensor *t) {
    int64_t n = tg_numel(t);
    tg_scope_begin();
    tg_tensor *d = tg_cast(tg_to(t, tg_device_get("cpu")), TG_F64);
    double *v = d ? malloc((size_t)(n ? n : 1) * sizeof *v) : NULL;
    if (d && !v) tg_error(TG_ERR_NOMEM, "tensor: out of memory for %lld values", (long long)n);
    if (v && tg_copy_to_host(d, v, (size_t)n * sizeof *v) != TG_OK) {
        free(v);
        v = NULL;
    }
    tg_scope_end();
    return v;
}

/* ------------------------------------------------------------- tg_write_png */

tg_status tg_write_png(tg_tensor *image, const char *path) {
    TG_API_ENTER("tg_write_png");
    const char *fn = "tg_write_png";
    char sbuf[128];
    if (!image) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: image is NULL", fn);
    if (!path) return tg_error(TG_ERR_INVALID, "%s: path is NULL", fn);
    tg_dtype dt = tg_dtype_of(image);
    if (dt != TG_U8 && dt != TG_F32 && dt != TG_F64)
        return tg_error(TG_ERR_DTYPE, "%s: image must be u8, f32 or f64, got %s", fn, tg_dtype_name(dt));
    tg_shape s = tg_shape_of(image);
    int c = s.ndim == 2 ? 1 : s.ndim == 3 ? (int)(s.dims[0] >= 1 && s.dims[0] <= 4 ? s.dims[0] : 0) : 0;
    int64_t h = s.dims[s.ndim - 2 >= 0 ? s.ndim - 2 : 0], w = s.dims[s.ndim - 1 >= 0 ? s.ndim - 1 : 0];
    format_shape(sbuf, sizeof sbuf, s);
    if (!c) return tg_error(TG_ERR_SHAPE, "%s: image must be (C,H,W) with C = 1, 2, 3 or 4, or (H,W); got %s", fn, sbuf);
    if (h < 1 || w < 1 || h > TG_IMAGE_MAX_SIDE || w > TG_IMAGE_MAX_SIDE || h * w > TG_IMAGE_MAX_PIXELS)
        return tg_error(TG_ERR_SHAPE, "%s: image %s must be at least 1x1, at most 2^28 pixels and 2^20 a side", fn,
                        sbuf);
    double *v = host_values(image);
    size_t npix = (size_t)(h * w);
    uint8_t *pix = v ? malloc(npix * (size_t)c) : NULL;
    tg_status st = TG_OK;
    if (!pix) {
        st = v ? tg_error(TG_ERR_NOMEM, "%s: out of memory", fn) : tg_last_status();
        goto fail;
    }
    for (size_t i = 0; i < npix; i++) /* planar to interleaved, as save_image rounds */
        for (int k = 0; k < c; k++) {
            double x = v[(size_t)k * npix + i];
            if (dt != TG_U8) x = x * 255 + 0.5;
            pix[i * (size_t)c + (size_t)k] = (uint8_t)(x >= 255 ? 255 : x >= 0 ? x : 0); /* NaN fails both: 0 */
        }
    st = encode_png(fn, path, pix, c, h, w);
fail:
    free(v);
    free(pix);
    return st;
}

/* ------------------------------------------------------------- the grid */

/* make_grid's norm_ip on n values: clamp to [lo, hi], then (x - lo) / max(hi - lo, 1e-5). */
static void norm_range(double *v, size_t n, const tg_grid_normalize *o) {
    double lo = o->range_low, hi = o->range_high;
    if (!o->range_set) {
        lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    }
    double d = hi - lo > 1e-5 ? hi - lo : 1e-5;
    for (size_t i = 0; i < n; i++) v[i] = ((v[i] < lo ? lo : v[i] > hi ? hi : v[i]) - lo) / d;
}

typedef struct {
    int64_t n, c, h, w; /* the batch after make_grid's reshaping */
    int src_c;          /* channels in the data: 1 is repeated to 3 */
} grid_shape;

static tg_status grid_shape_of(const char *fn, tg_tensor *batch, grid_shape *g) {
    tg_shape s = tg_shape_of(batch);
    char sbuf[128];
    format_shape(sbuf, sizeof sbuf, s);
    if (s.ndim < 2 || s.ndim > 4)
        return tg_error(TG_ERR_SHAPE, "%s: batch must be (N,C,H,W), (C,H,W) or (H,W), got %s", fn, sbuf);
    g->n = s.ndim == 4 ? s.dims[0] : 1;
    g->src_c = s.ndim == 2 ? 1 : (int)(s.dims[s.ndim - 3] > INT32_MAX ? INT32_MAX : s.dims[s.ndim - 3]);
    g->c = g->src_c == 1 ? 3 : g->src_c;
    g->h = s.dims[s.ndim - 2];
    g->w = s.dims[s.ndim - 1];
    if (g->n < 1 || g->src_c < 1 || g->h < 1 || g->w < 1)
        return tg_error(TG_ERR_SHAPE, "%s: batch %s has no pixels", fn, sbuf);
    return TG_OK;
}

/* Copies image k of v (n,src_c,h,w) into the grid at its cell. */
static void place(double *grid, int64_t gh, int64_t gw, const double *v, const grid_shape *g, int64_t k, int64_t y0,
                  int64_t x0) {
    (void)gh;
    for (int64_t ch = 0; ch < g->c; ch++) {
        const double *src = v + (k * g->src_c + (g->src_c == 1 ? 0 : ch)) * g->h * g->w;
        for (int64_t y = 0; y < g->h; y++)
            memcpy(grid + (ch * gh + y0 + y) * gw + x0, src + y * g->w, (size_t)g->w * sizeof *grid);
    }
}

tg_tensor *tg_image_grid(tg_tensor *batch, int nrow, int padding, double pad_value, const tg_grid_normalize *normalize) {
    TG_API_ENTER("tg_image_grid");
    const char *fn = "tg_image_grid";
    if (!batch) return tg_last_status() != TG_OK ? NULL : tg_error_null(TG_ERR_INVALID, "%s: batch is NULL", fn);
    if (nrow < 1) return tg_error_null(TG_ERR_INVALID, "%s: nrow must be at least 1, got %d", fn, nrow);
    if (padding < 0) return tg_error_null(TG_ERR_INVALID, "%s: padding must be >= 0, got %d", fn, padding);
    tg_dtype dt = tg_dtype_of(batch);
    if (normalize && dt != TG_F32 && dt != TG_F64)
        return tg_error_null(TG_ERR_DTYPE, "%s: normalize needs a float batch, got %s", fn, tg_dtype_name(dt));
    grid_shape g = { 0 };
    if (grid_shape_of(fn, batch, &g) != TG_OK) return NULL;
    int64_t xmaps = g.n < nrow ? g.n : nrow, ymaps = (g.n + xmaps - 1) / xmaps;
    int64_t gh = g.n == 1 ? g.h : ymaps * (g.h + padding) + padding;
    int64_t gw = g.n == 1 ? g.w : xmaps * (g.w + padding) + padding;
    if (g.c * gh > INT64_MAX / 8 / gw) return tg_error_null(TG_ERR_SHAPE, "%s: the grid would be too large", fn);
    double *v = host_values(batch);
    double *grid = v ? malloc((size_t)(g.c * gh * gw) * sizeof *grid) : NULL;
    tg_tensor *out = NULL;
    if (!grid) {
        if (v) tg_error(TG_ERR_NOMEM, "%s: out of memory for the grid", fn);
        goto fail;
    }
    size_t img = (size_t)(g.src_c * g.h * g.w);
    if (normalize) /* the repeated gray channel changes neither min nor max */
        for (int64_t k = 0; k < (normalize->scale_each ? g.n : 1); k++)
            norm_range(v + (size_t)k * img, normalize->scale_each ? img : img * (size_t)g.n, normalize);
    for (size_t i = 0; i < (size_t)(g.c * gh * gw); i++) grid[i] = pad_value;
    for (int64_t k = 0; k < g.n; k++) {
        int64_t off = g.n == 1 ? 0 : padding;
        place(grid, gh, gw, v, &g, k, (k / xmaps) * (g.h + padding) + off, (k % xmaps) * (g.w + padding) + off);
    }
    tg_scope_begin();
    out = tg_keep(tg_to(tg_cast(tg_from_f64(grid, TG_SHAPE(g.c, gh, gw), tg_device_get("cpu")), dt),
                        tg_device_of(batch)));
    tg_scope_end();
fail:
    free(v);
    free(grid);
    return out;
}

tg_status tg_save_image(tg_tensor *batch, const char *path, int nrow) {
    TG_API_ENTER("tg_save_image");
    tg_scope_begin();
    tg_status st = tg_write_png(tg_image_grid(batch, nrow, 2, 0.0, NULL), path);
    tg_scope_end();
    return st;
}
