/* PNG reading against files from an independent writer (tests/png_writer.h) in every
 * colour type and bit depth and every read mode; tg_write_png round trips and
 * save_image's rounding; tg_image_grid against hand values and, where torchvision is
 * installed, make_grid itself; image folders: order, labels, stacking, threads, errors. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "png_writer.h"
#include "readers_files.h"
#include "tapegrad/data.h"

static const char *write_png_file(const char *name, const png_spec *s) {
    png_bytes b = png_encode(s);
    const char *p = write_file(name, b.p, b.n);
    free(b.p);
    return p;
}

static int g_depth; /* for s_bits */
static unsigned s_8(uint32_t y, uint32_t x, int k) { return (y * 60 + x * 23 + (unsigned)k * 90) & 255; }
static unsigned s_16(uint32_t y, uint32_t x, int k) {
    return ((y * 50 + x * 13 + (unsigned)k * 70) & 255) << 8 | ((x * 31 + y * 17 + (unsigned)k) & 255);
}
static unsigned s_bits(uint32_t y, uint32_t x, int k) { return (y * 3 + x + (unsigned)k) % (1u << g_depth); }
static unsigned s_index(uint32_t y, uint32_t x, int k) { return (void)k, (y * 5 + x) % 4; }

static const uint8_t k_plte[12] = { 10, 20, 30, 200, 100, 0, 0, 0, 255, 7, 77, 177 };
static const uint8_t k_plte_alpha[2] = { 0, 128 }; /* entries 2 and 3 stay opaque */

/* What a decoder must give for pixel (y, x) of s as RGBA8, straight from the PNG spec. */
static void expect_rgba(const png_spec *s, uint32_t y, uint32_t x, uint8_t out[4]) {
    int ns = png_samples(s->color);
    unsigned v[4] = { 0 }, sc[4];
    for (int k = 0; k < ns; k++) {
        v[k] = s->sample(y, x, k);
        sc[k] = s->depth == 16 ? v[k] >> 8 : s->depth == 8 ? v[k] : v[k] * (255u / ((1u << s->depth) - 1));
    }
    if (s->color == 3) {
        memcpy(out, k_plte + 3 * v[0], 3);
        out[3] = (int)v[0] < s->ntrns ? s->trns[v[0]] : 255;
        return;
    }
    bool gray = s->color == 0 || s->color == 4;
    for (int c = 0; c < 3; c++) out[c] = (uint8_t)(gray ? sc[0] : sc[c]);
    out[3] = s->color == 4 ? (uint8_t)sc[1] : s->color == 6 ? (uint8_t)sc[3] : 255;
    if (s->trns && s->color == 0 && v[0] == (unsigned)(s->trns[0] << 8 | s->trns[1])) out[3] = 0;
}

/* Reads s's file in each mode and compares every channel of every pixel. */
static void check_png_modes(int *tg_failed_, const char *path, const png_spec *s) {
    bool gray = s->color == 0 || s->color == 4, alpha = s->color == 4 || s->color == 6 || s->trns;
    for (int mode = TG_IMAGE_MODE_DEFAULT; mode <= TG_IMAGE_MODE_RGB_ALPHA; mode++) {
        static const int fixed[6] = { 0, 0, 1, 2, 3, 4 };
        int c = mode == TG_IMAGE_MODE_DEFAULT ? (gray ? 1 : 3) : mode == TG_IMAGE_MODE_UNCHANGED ? (gray ? 1 : 3) + alpha
                                                                                                 : fixed[mode];
        tg_tensor *t = tg_read_image(path, (tg_image_mode)mode, tg_test_device());
        CHECK(t && tg_dtype_of(t) == TG_U8 && tg_ndim(t) == 3);
        if (!t) {
            printf("  %s\n", tg_last_error());
            return;
        }
        CHECK(tg_size(t, 0) == c && tg_size(t, 1) == s->h && tg_size(t, 2) == s->w);
        if (tg_size(t, 0) != c) return;
        size_t np = (size_t)s->w * s->h;
        uint8_t *got = malloc(np * (size_t)c);
        CHECK(tg_copy_to_host(t, got, np * (size_t)c) == TG_OK);
        int bad = 0;
        for (uint32_t y = 0; y < s->h; y++)
            for (uint32_t x = 0; x < s->w; x++) {
                uint8_t e[4], want[4];
                expect_rgba(s, y, x, e);
                uint8_t lum = gray ? e[0] : (uint8_t)((19595u * e[0] + 38470u * e[1] + 7471u * e[2] + 32768u) >> 16);
                if (c <= 2) want[0] = lum, want[1] = e[3];
                else memcpy(want, e, 4);
                for (int k = 0; k < c; k++) bad += got[(size_t)k * np + y * s->w + x] != want[k];
            }
        if (bad) printf("  mode %d of color %d depth %d: %d wrong samples\n", mode, s->color, s->depth, bad);
        CHECK(bad == 0);
        free(got);
    }
}

TEST(read_every_color_type) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    static const uint8_t trns_gray[2] = { 0, 83 }; /* s_8 at (1, 1) = 60 + 23 */
    const png_spec specs[] = {
        { 5, 3, 8, 0, NULL, 0, NULL, 0, s_8, false },
        { 5, 3, 16, 0, NULL, 0, NULL, 0, s_16, false },
        { 5, 3, 1, 0, NULL, 0, NULL, 0, s_bits, false },
        { 5, 3, 2, 0, NULL, 0, NULL, 0, s_bits, false },
        { 5, 3, 4, 0, NULL, 0, NULL, 0, s_bits, false },
        { 5, 3, 8, 0, NULL, 0, trns_gray, 2, s_8, false },
        { 4, 3, 8, 4, NULL, 0, NULL, 0, s_8, false },
        { 4, 3, 16, 4, NULL, 0, NULL, 0, s_16, false },
        { 4, 3, 8, 2, NULL, 0, NULL, 0, s_8, false },
        { 4, 3, 16, 2, NULL, 0, NULL, 0, s_16, false },
        { 4, 3, 8, 6, NULL, 0, NULL, 0, s_8, false },
        { 4, 3, 16, 6, NULL, 0, NULL, 0, s_16, false },
        { 5, 3, 8, 3, k_plte, 4, NULL, 0, s_index, false },
        { 5, 3, 8, 3, k_plte, 4, k_plte_alpha, 2, s_index, false },
        { 5, 3, 2, 3, k_plte, 4, NULL, 0, s_index, false },
        { 11, 10, 8, 2, NULL, 0, NULL, 0, s_8, true },  /* Adam7: rows arrive pass by pass */
        { 3, 2, 16, 6, NULL, 0, NULL, 0, s_16, true },  /* passes 2, 3 and 5 are empty */
        { 9, 9, 1, 0, NULL, 0, NULL, 0, s_bits, true },
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "type%zu.png", i);
        g_depth = specs[i].depth;
        check_png_modes(tg_failed_, write_png_file(name, &specs[i]), &specs[i]);
    }
}

TEST(read_errors) {
    tg_device *dev = tg_test_device();
    const char *missing = tmp_path("missing.png");
#ifndef TG_HAVE_SPNG
    CHECK_ERROR(tg_read_image(missing, 0, dev),
                msgf("tg_read_image: cannot read '%s': tapegrad was built without libspng", missing));
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(2, 2), dev), missing),
                msgf("tg_write_png: cannot write '%s': tapegrad was built without libspng", missing));
    SKIP("built without libspng");
#endif
    CHECK_ERROR(tg_read_image(missing, 0, dev), msgf("tg_read_image: cannot open '%s': No such file or directory", missing));
    CHECK(tg_last_status() == TG_ERR_IO);
    const char *junk = write_text("junk.png", "GIF89a this is not a PNG at all");
    CHECK_ERROR_CONTAINS(tg_read_image(junk, 0, dev), msgf("tg_read_image: '%s' is not a valid PNG: ", junk));
    png_spec s = { 6, 4, 8, 2, NULL, 0, NULL, 0, s_8, false };
    png_bytes b = png_encode(&s);
    const char *cut = write_file("cut.png", b.p, b.n - 30); /* into the pixel data */
    CHECK_ERROR_CONTAINS(tg_read_image(cut, 0, dev), msgf("tg_read_image: '%s' is not a valid PNG: ", cut));
    b.p[40] ^= 1; /* a CRC no longer matches */
    const char *crc = write_file("crc.png", b.p, b.n);
    CHECK_ERROR_CONTAINS(tg_read_image(crc, 0, dev), msgf("tg_read_image: '%s' is not a valid PNG: ", crc));
    free(b.p);
    /* 20000 x 20000 claimed, no pixel data: refused before decoding */
    png_spec huge = { 20000, 20000, 8, 0, NULL, 0, NULL, 0, NULL, false };
    const char *hp = write_png_file("huge.png", &huge);
    CHECK_ERROR(tg_read_image(hp, 0, dev),
                msgf("tg_read_image: '%s' is 20000x20000 pixels, over the limit of 2^28 pixels and 2^20 a side "
                     "(TG_IMAGE_MAX_PIXELS, TG_IMAGE_MAX_SIDE)", hp));
    png_spec wide = { 1u << 21, 1, 8, 0, NULL, 0, NULL, 0, NULL, false };
    const char *wp = write_png_file("wide.png", &wide);
    CHECK_ERROR(tg_read_image(wp, 0, dev),
                msgf("tg_read_image: '%s' is 2097152x1 pixels, over the limit of 2^28 pixels and 2^20 a side "
                     "(TG_IMAGE_MAX_PIXELS, TG_IMAGE_MAX_SIDE)", wp));
    /* 16384 x 16384 is within the limit, but the data is missing */
    png_spec big = { 16384, 16384, 8, 6, NULL, 0, NULL, 0, NULL, false };
    const char *bp = write_png_file("big.png", &big);
    CHECK_ERROR_CONTAINS(tg_read_image(bp, 0, dev), msgf("tg_read_image: '%s' is not a valid PNG: ", bp));
    CHECK_ERROR(tg_read_image(NULL, 0, dev), "tg_read_image: path is NULL");
    CHECK_ERROR(tg_read_image(junk, (tg_image_mode)9, dev), "tg_read_image: unknown mode 9");
    CHECK_ERROR(tg_read_image(junk, 0, NULL), "tg_read_image: device is NULL");
}

/* ------------------------------------------------------------- writing */

static int count_temp_files(void) {
    DIR *d = opendir(tmpdir());
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* The IHDR a file starts with, read by hand: width, height, depth, colour type. */
static bool ihdr_is(const char *path, uint32_t w, uint32_t h, int color) {
    uint8_t b[29];
    FILE *f = fopen(path, "rb");
    bool ok = f && fread(b, 1, 29, f) == 29 && memcmp(b + 12, "IHDR", 4) == 0 &&
              (uint32_t)(b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19]) == w &&
              (uint32_t)(b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23]) == h && b[24] == 8 && b[25] == color;
    if (f) fclose(f);
    return ok;
}

TEST(write_round_trip) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    tg_device *dev = tg_test_device();
    static const int colors[5] = { 0, 0, 4, 2, 6 };
    uint8_t px[4 * 5 * 7];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 97 + 13);
    for (int c = 1; c <= 4; c++) {
        char name[32];
        snprintf(name, sizeof name, "w%d.png", c);
        const char *p = tmp_path(name);
        CHECK(tg_write_png(tg_from_u8(px, TG_SHAPE(c, 5, 7), dev), p) == TG_OK);
        CHECK(ihdr_is(p, 7, 5, colors[c]));
        tg_tensor *t = tg_read_image(p, TG_IMAGE_MODE_UNCHANGED, dev);
        uint8_t got[sizeof px];
        CHECK(t && tg_size(t, 0) == c && tg_size(t, 1) == 5 && tg_size(t, 2) == 7);
        CHECK(t && tg_copy_to_host(t, got, (size_t)c * 35) == TG_OK && memcmp(got, px, (size_t)c * 35) == 0);
    }
    /* (H,W) is gray; a strided view is written as its values */
    const char *p = tmp_path("hw.png");
    tg_tensor *full = tg_from_u8(px, TG_SHAPE(7, 5), dev);
    CHECK(tg_write_png(tg_transpose(full, 0, 1), p) == TG_OK);
    CHECK(ihdr_is(p, 7, 5, 0));
    uint8_t got[35];
    tg_tensor *t = tg_read_image(p, 0, dev);
    CHECK(t && tg_copy_to_host(t, got, 35) == TG_OK);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++) CHECK(got[y * 7 + x] == px[x * 5 + y]);
    CHECK(count_temp_files() == 0);
}

TEST(write_float_rounding) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    /* save_image: x*255+0.5 clamped to [0,255], truncated; NaN gives 0 */
    const float v[8] = { 0.0f, 0.5f, 1.0f, 1.2f, -0.1f, NAN, 0.2f, 0.002f };
    const uint8_t want[8] = { 0, 128, 255, 255, 0, 0, 51, 1 };
    const char *p = tmp_path("float.png");
    CHECK(tg_write_png(tg_from_f32(v, TG_SHAPE(1, 2, 4), tg_test_device()), p) == TG_OK);
    uint8_t got[8];
    tg_tensor *t = tg_read_image(p, 0, tg_test_device());
    CHECK(t && tg_copy_to_host(t, got, 8) == TG_OK && memcmp(got, want, 8) == 0);
    const double d[3] = { 0.25, 0.75, 1.0 / 255 };
    CHECK(tg_write_png(tg_from_f64(d, TG_SHAPE(1, 1, 3), tg_device_get("cpu")), p) == TG_OK);
    t = tg_read_image(p, 0, tg_test_device());
    CHECK(t && tg_copy_to_host(t, got, 3) == TG_OK && got[0] == 64 && got[1] == 191 && got[2] == 1);
}

TEST(write_errors) {
    tg_device *dev = tg_test_device();
    const char *p = tmp_path("bad.png");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_I32, TG_SHAPE(2, 2), dev), p), "tg_write_png: image must be u8, f32 or f64, got i32");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(5, 2, 2), dev), p),
                "tg_write_png: image must be (C,H,W) with C = 1, 2, 3 or 4, or (H,W); got [5,2,2]");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(2, 2, 2, 2), dev), p),
                "tg_write_png: image must be (C,H,W) with C = 1, 2, 3 or 4, or (H,W); got [2,2,2,2]");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(0, 3), dev), p),
                "tg_write_png: image [0,3] must be at least 1x1, at most 2^28 pixels and 2^20 a side");
    CHECK_ERROR(tg_write_png(NULL, p), "tg_write_png: image is NULL");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(2, 2), dev), NULL), "tg_write_png: path is NULL");
#ifdef TG_HAVE_SPNG
    const char *nodir = tmp_path("no/such/dir.png");
    CHECK_ERROR(tg_write_png(tg_zeros(TG_U8, TG_SHAPE(2, 2), dev), nodir),
                msgf("tg_write_png: cannot create '%s': No such file or directory", nodir));
    CHECK(tg_last_status() == TG_ERR_IO);
#endif
}

/* ------------------------------------------------------------- the grid */

TEST(grid_hand_values) {
    tg_device *dev = tg_test_device();
    float v[12]; /* (3,1,2,2): image k holds k*10 + y*2 + x */
    for (int i = 0; i < 12; i++) v[i] = (float)((i / 4) * 10 + i % 4);
    tg_tensor *g = tg_image_grid(tg_from_f32(v, TG_SHAPE(3, 1, 2, 2), dev), 2, 1, 0.5, NULL);
    CHECK(g && tg_ndim(g) == 3 && tg_size(g, 0) == 3 && tg_size(g, 1) == 7 && tg_size(g, 2) == 7);
    CHECK(g && tg_dtype_of(g) == TG_F32 && tg_device_of(g) == dev);
    double *o = g ? tg_test_values(g) : NULL;
    for (int c = 0; o && c < 3; c++) { /* gray repeated to 3 channels */
        const double *p = o + c * 49;
        CHECK(p[0 * 7 + 0] == 0.5 && p[0 * 7 + 3] == 0.5 && p[3 * 7 + 3] == 0.5); /* padding */
        CHECK(p[1 * 7 + 1] == 0 && p[1 * 7 + 2] == 1 && p[2 * 7 + 1] == 2 && p[2 * 7 + 2] == 3);
        CHECK(p[1 * 7 + 4] == 10 && p[2 * 7 + 5] == 13); /* image 1: top right */
        CHECK(p[4 * 7 + 1] == 20 && p[5 * 7 + 2] == 23); /* image 2: bottom left */
        CHECK(p[4 * 7 + 4] == 0.5 && p[5 * 7 + 5] == 0.5 && p[6 * 7 + 6] == 0.5); /* no image 3 */
    }
    free(o);
    /* one image comes back as it is, 3 channels from 1, no padding */
    g = tg_image_grid(tg_from_f32(v, TG_SHAPE(2, 2), dev), 8, 2, 0, NULL);
    CHECK(g && tg_size(g, 0) == 3 && tg_size(g, 1) == 2 && tg_size(g, 2) == 2);
    /* u8 stays u8; normalize maps [min, max] to [0, 1] */
    g = tg_image_grid(tg_cast(tg_from_f32(v, TG_SHAPE(3, 1, 2, 2), dev), TG_U8), 3, 0, 255, NULL);
    CHECK(g && tg_dtype_of(g) == TG_U8 && tg_size(g, 1) == 2 && tg_size(g, 2) == 6);
    const float n4[4] = { -1, 0, 1, 3 };
    g = tg_image_grid(tg_from_f32(n4, TG_SHAPE(1, 1, 2, 2), dev), 1, 0, 0, &(tg_grid_normalize){ 0 });
    o = g ? tg_test_values(g) : NULL;
    CHECK(o && o[0] == 0 && o[1] == 0.25 && o[2] == 0.5 && o[3] == 1);
    free(o);
    g = tg_image_grid(tg_from_f32(n4, TG_SHAPE(1, 1, 2, 2), dev), 1, 0, 0,
                      &(tg_grid_normalize){ .range_set = true, .range_low = 0, .range_high = 2 });
    o = g ? tg_test_values(g) : NULL;
    CHECK(o && o[0] == 0 && o[1] == 0 && o[2] == 0.5 && o[3] == 1);
    free(o);
}

TEST(grid_errors) {
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 3, 4, 4), tg_test_device());
    CHECK_ERROR(tg_image_grid(x, 0, 2, 0, NULL), "tg_image_grid: nrow must be at least 1, got 0");
    CHECK_ERROR(tg_image_grid(x, 8, -1, 0, NULL), "tg_image_grid: padding must be >= 0, got -1");
    CHECK_ERROR(tg_image_grid(tg_zeros(TG_F32, TG_SHAPE(4), tg_test_device()), 8, 2, 0, NULL),
                "tg_image_grid: batch must be (N,C,H,W), (C,H,W) or (H,W), got [4]");
    CHECK_ERROR(tg_image_grid(tg_zeros(TG_F32, TG_SHAPE(0, 3, 4, 4), tg_test_device()), 8, 2, 0, NULL),
                "tg_image_grid: batch [0,3,4,4] has no pixels");
    CHECK_ERROR(tg_image_grid(tg_cast(x, TG_U8), 8, 2, 0, &(tg_grid_normalize){ 0 }),
                "tg_image_grid: normalize needs a float batch, got u8");
    CHECK_ERROR(tg_image_grid(NULL, 8, 2, 0, NULL), "tg_image_grid: batch is NULL");
    CHECK_ERROR(tg_save_image(x, tmp_path("never.png"), 0), "tg_save_image: nrow must be at least 1, got 0");
}

/* make_grid's cases: the batch is sin(0.37 i) * 3 over its flat index i, in f64. */
typedef struct {
    int n, c, h, w, nrow, padding;
    double pad_value;
    int normalize, scale_each, range_set;
    double lo, hi;
} grid_case;

static const char *g_python;

static bool find_torchvision(void) {
    const char *env = getenv("TG_PYTHON");
    const char *cands[3] = { env, "/usr/bin/python3", "python3" };
    for (int i = 0; i < 3 && !g_python; i++) {
        char cmd[512];
        if (!cands[i] || !*cands[i]) continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import torch, torchvision' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) g_python = cands[i];
    }
    return g_python != NULL;
}

/* Runs torchvision's make_grid on every case in one python process (importing torch
 * takes seconds); returns a stream of, per case, its 3 sizes and then its values. */
static FILE *torch_grids(const grid_case *cases, size_t n) {
    static const char script[] =
        "import sys, torch, torchvision.utils as U\n"
        "for line in open(sys.argv[1]):\n"
        "    a = line.split(); n,c,h,w,nrow,pad = map(int, a[:6]); pv = float(a[6])\n"
        "    norm, each, rs = map(int, a[7:10]); lo, hi = float(a[10]), float(a[11])\n"
        "    x = (torch.arange(n*c*h*w, dtype=torch.float64) * 0.37).sin().reshape(n, c, h, w) * 3\n"
        "    g = U.make_grid(x, nrow=nrow, padding=pad, normalize=bool(norm), value_range=(lo, hi) if rs else None,\n"
        "                    scale_each=bool(each), pad_value=pv)\n"
        "    print(*g.shape); print(' '.join(repr(float(v)) for v in g.flatten()))\n";
    const char *sp = write_text("grid.py", script);
    char cmd[8192], *lines = malloc(n * 256 + 1), *q = lines;
    for (size_t k = 0; k < n; k++) {
        const grid_case *g = &cases[k];
        q += sprintf(q, "%d %d %d %d %d %d %.17g %d %d %d %.17g %.17g\n", g->n, g->c, g->h, g->w, g->nrow, g->padding,
                     g->pad_value, g->normalize, g->scale_each, g->range_set, g->lo, g->hi);
    }
    const char *cp = write_text("grid_cases.txt", lines);
    free(lines);
    snprintf(cmd, sizeof cmd, "%s %s %s", g_python, sp, cp);
    return popen(cmd, "r");
}

/* The next case's grid from torch_grids' stream (shape into dims), or NULL. */
static double *next_grid(FILE *f, int64_t dims[3]) {
    double *v = NULL;
    if (f && fscanf(f, "%ld %ld %ld", &dims[0], &dims[1], &dims[2]) == 3) {
        int64_t n = dims[0] * dims[1] * dims[2];
        v = malloc((size_t)n * sizeof *v);
        for (int64_t i = 0; i < n; i++)
            if (fscanf(f, "%lf", &v[i]) != 1) {
                free(v);
                return NULL;
            }
    }
    return v;
}

TEST(grid_vs_torchvision) {
    if (!find_torchvision()) SKIP("no python3 with torch and torchvision ($TG_PYTHON, /usr/bin/python3, python3)");
    static const grid_case cases[] = {
        { 5, 3, 3, 4, 3, 2, 0.25, 0, 0, 0, 0, 0 }, { 5, 1, 3, 4, 2, 1, 0, 1, 0, 0, 0, 0 },
        { 4, 3, 2, 3, 8, 2, 1, 1, 1, 0, 0, 0 },    { 3, 3, 3, 3, 2, 0, 0, 1, 0, 1, -1, 1 },
        { 1, 3, 4, 4, 8, 2, 0, 0, 0, 0, 0, 0 },    { 7, 2, 3, 3, 3, 3, 0.5, 1, 1, 1, 0, 2 },
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    FILE *f = torch_grids(cases, ncases);
    for (size_t k = 0; k < ncases; k++) {
        const grid_case *g = &cases[k];
        int64_t dims[3], n = (int64_t)g->n * g->c * g->h * g->w;
        double *want = next_grid(f, dims);
        CHECK(want != NULL);
        if (!want) break;
        double *x = malloc((size_t)n * sizeof *x);
        for (int64_t i = 0; i < n; i++) x[i] = sin((double)i * 0.37) * 3;
        tg_grid_normalize nm = { .scale_each = g->scale_each, .range_set = g->range_set, .range_low = g->lo,
                                 .range_high = g->hi };
        tg_tensor *t = tg_image_grid(tg_from_f64(x, TG_SHAPE(g->n, g->c, g->h, g->w), tg_device_get("cpu")), g->nrow,
                                     g->padding, g->pad_value, g->normalize ? &nm : NULL);
        CHECK(t && tg_size(t, 0) == dims[0] && tg_size(t, 1) == dims[1] && tg_size(t, 2) == dims[2]);
        double *got = t && tg_size(t, 1) == dims[1] && tg_size(t, 2) == dims[2] ? tg_test_values(t) : NULL;
        double worst = got ? 0 : INFINITY;
        for (int64_t i = 0; got && i < dims[0] * dims[1] * dims[2]; i++)
            worst = fabs(got[i] - want[i]) > worst ? fabs(got[i] - want[i]) : worst;
        if (!(worst <= 1e-12)) printf("  case %zu: max difference %g\n", k, worst);
        CHECK(worst <= 1e-12);
        free(x);
        free(want);
        free(got);
    }
    if (f) pclose(f);
}

TEST(save_image) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    float v[2 * 3 * 4 * 4];
    for (int i = 0; i < 96; i++) v[i] = (float)(i % 5) / 4;
    const char *p = tmp_path("grid.png");
    CHECK(tg_save_image(tg_from_f32(v, TG_SHAPE(2, 3, 4, 4), tg_test_device()), p, 8) == TG_OK);
    CHECK(ihdr_is(p, 14, 8, 2)); /* (3, 4+2+2, 2*(4+2)+2) RGB */
    tg_tensor *t = tg_read_image(p, 0, tg_test_device());
    uint8_t px[3 * 8 * 14];
    CHECK(t && tg_copy_to_host(t, px, sizeof px) == TG_OK);
    /* image 1, channel 2, pixel (0,1) = v[48 + 32 + 1] = 1/4 -> 64; the padding is 0 */
    CHECK(px[2 * 112 + 2 * 14 + 9] == 64 && px[0] == 0 && px[1 * 112 + 7 * 14 + 13] == 0);
}

/* ------------------------------------------------------------- image folders */

static int g_seed; /* for s_seeded: each folder image has its own pixels */
static unsigned s_seeded(uint32_t y, uint32_t x, int k) { return (void)k, (y * 16 + x * 3 + (unsigned)g_seed * 50) & 255; }

static void folder_png(const char *name, int seed, uint32_t w, uint32_t h) {
    png_spec s = { w, h, 8, 0, NULL, 0, NULL, 0, s_seeded, false };
    g_seed = seed;
    write_png_file(name, &s);
}

static int64_t pixel_sum(tg_tensor *t) { return t ? (int64_t)tg_item(tg_sum(tg_cast(t, TG_I64), TG_ALL, false)) : -1; }

static int64_t seeded_sum(int seed, uint32_t w, uint32_t h) {
    int64_t s = 0;
    g_seed = seed;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) s += s_seeded(y, x, 0);
    return s;
}

static void make_folder(void) {
    static bool made;
    if (made) return;
    made = true;
    make_dir("folder");
    make_dir("folder/b");
    make_dir("folder/a");
    make_dir("folder/a/sub");
    make_dir("folder/.cache");
    make_dir("folder/b/.git");
    folder_png("folder/b/.git/hidden.png", 9, 4, 2);
    if (symlink(tmp_path("folder/a"), tmp_path("folder/a/sub/loop")) != 0) abort();
    folder_png("folder/b/x.png", 3, 4, 2);
    folder_png("folder/a/2.png", 2, 4, 2);
    folder_png("folder/a/1.PNG", 1, 4, 2);
    write_text("folder/a/notes.txt", "not an image");
    folder_png("folder/a/.hidden.png", 9, 4, 2);
    make_dir("folder/a/sub/in");
    make_dir("folder/a/sub-x");
    folder_png("folder/a/sub/deep.png", 4, 4, 2);
    folder_png("folder/a/sub/in/deeper.png", 5, 4, 2);
    folder_png("folder/a/sub-x/side.png", 6, 4, 2);
    folder_png("folder/.cache/c.png", 9, 4, 2);
    folder_png("folder/root.png", 9, 4, 2);
}

/* The folder's items in torchvision's order: folders by path ("a" < "a/sub" < "a/sub-x"
 * < "a/sub/in"), files by name; the seed each was written with. */
static const char *const k_items[6] = { "folder/a/1.PNG", "folder/a/2.png", "folder/a/sub/deep.png",
                                        "folder/a/sub-x/side.png", "folder/a/sub/in/deeper.png", "folder/b/x.png" };
static const int k_seeds[6] = { 1, 2, 4, 6, 5, 3 };

TEST(folder_listing) {
    make_folder();
    tg_image_folder *f = tg_image_folder_open(tmp_path("folder"), NULL);
    CHECK(f != NULL);
    if (!f) return;
    CHECK(tg_image_folder_num_classes(f) == 2 && tg_image_folder_size(f) == 6);
    CHECK(strcmp(tg_image_folder_class_name(f, 0), "a") == 0 && strcmp(tg_image_folder_class_name(f, 1), "b") == 0);
    for (int i = 0; i < 6 && tg_image_folder_size(f) == 6; i++) {
        CHECK(strcmp(tg_image_folder_path(f, i), tmp_path(k_items[i])) == 0);
        CHECK(tg_image_folder_label(f, i) == (i == 5));
    }
    CHECK_ERROR(tg_image_folder_path(f, 6), "tg_image_folder_path: item 6 is out of range for 6 images");
    CHECK_ERROR(tg_image_folder_label(f, -1), "tg_image_folder_label: item -1 is out of range for 6 images");
    CHECK_ERROR(tg_image_folder_class_name(f, 2), "tg_image_folder_class_name: class 2 is out of range for 2 classes");
#ifdef TG_HAVE_SPNG
    tg_tensor *t = tg_image_folder_read(f, 1);
    CHECK(t && tg_size(t, 0) == 1 && tg_size(t, 1) == 2 && tg_size(t, 2) == 4);
    CHECK(t && tg_device_of(t) == tg_device_get("cpu") && pixel_sum(t) == seeded_sum(2, 4, 2));
    CHECK_ERROR(tg_image_folder_read(f, 7), "tg_image_folder_read: item 7 is out of range for 6 images");
    tg_labeled_images d;
    CHECK(tg_image_folder_load(f, tg_test_device(), &d) == TG_OK);
    CHECK(d.images && tg_ndim(d.images) == 4 && tg_size(d.images, 0) == 6 && tg_size(d.images, 1) == 1 &&
          tg_size(d.images, 2) == 2 && tg_size(d.images, 3) == 4 && tg_device_of(d.images) == tg_test_device());
    int64_t lab[6] = { -1, -1, -1, -1, -1, -1 };
    CHECK(d.labels && tg_copy_to_host(d.labels, lab, sizeof lab) == TG_OK);
    for (int i = 0; i < 6; i++) CHECK(lab[i] == (i == 5));
    for (int i = 0; d.images && i < 6; i++)
        CHECK(pixel_sum(tg_slice(d.images, 0, i, i + 1, 1)) == seeded_sum(k_seeds[i], 4, 2));
    CHECK(tg_strings_count(d.classes) == 2 && strcmp(tg_strings_get(d.classes, 1), "b") == 0);
    tg_strings_free(d.classes);
    tg_image_folder_free(f);
    /* RGB mode: 3 channels */
    f = tg_image_folder_open(tmp_path("folder"), &(tg_image_folder_opts){ .mode = TG_IMAGE_MODE_RGB });
    t = tg_image_folder_read(f, 5);
    CHECK(t && tg_size(t, 0) == 3 && pixel_sum(t) == 3 * seeded_sum(3, 4, 2));
#endif
    tg_image_folder_free(f);
}

typedef struct {
    const tg_image_folder *f;
    int bad;
} reader_job;

static void *read_all_items(void *arg) {
    reader_job *j = arg;
    for (int round = 0; round < 10; round++)
        for (int64_t i = 0; i < tg_image_folder_size(j->f); i++) {
            tg_scope_begin();
            j->bad += pixel_sum(tg_image_folder_read(j->f, i)) != seeded_sum(k_seeds[i], 4, 2);
            tg_scope_end();
        }
    return NULL;
}

TEST(folder_threads) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    make_folder();
    tg_image_folder *f = tg_image_folder_open(tmp_path("folder"), NULL);
    CHECK(f != NULL);
    if (!f) return;
    pthread_t th[4];
    reader_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (reader_job){ f, 0 };
        CHECK(pthread_create(&th[i], NULL, read_all_items, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].bad == 0);
    }
    tg_image_folder_free(f);
}

/* The folder through a loader with two workers: images and labels in sampler order. */
TEST(folder_loader) {
#ifndef TG_HAVE_SPNG
    SKIP("built without libspng");
#endif
    make_folder();
    tg_image_folder *f = tg_image_folder_open(tmp_path("folder"), NULL);
    tg_dataset *ds = tg_dataset_from_image_folder(f);
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = 2, .device = tg_test_device() });
    CHECK(l != NULL);
    tg_batch b;
    int seen = 0;
    while (l && tg_loader_next(l, &b)) {
        CHECK(tg_ndim(b.x) == 4 && tg_size(b.x, 1) == 1 && tg_size(b.x, 2) == 2 && tg_size(b.x, 3) == 4);
        CHECK(tg_dtype_of(b.y) == TG_I64 && tg_device_of(b.x) == tg_test_device());
        int64_t lab[4];
        CHECK(tg_copy_to_host(b.y, lab, (size_t)b.size * sizeof *lab) == TG_OK);
        for (int64_t i = 0; i < b.size; i++, seen++) {
            CHECK(lab[i] == (seen == 5));
            CHECK(pixel_sum(tg_slice(b.x, 0, i, i + 1, 1)) == seeded_sum(k_seeds[seen], 4, 2));
        }
    }
    CHECK(seen == 6 && tg_last_status() == TG_OK);
    tg_loader_free(l);
    tg_dataset_free(ds);
    tg_image_folder_free(f);
    CHECK_ERROR(tg_dataset_from_image_folder(NULL), "tg_dataset_from_image_folder: folder is NULL");
}

TEST(folder_errors) {
    tg_labeled_images d;
    make_dir("mixed");
    make_dir("mixed/a");
    make_dir("mixed/b");
    folder_png("mixed/a/1.png", 1, 4, 2);
    folder_png("mixed/b/1.png", 1, 4, 3);
    tg_image_folder *f = tg_image_folder_open(tmp_path("mixed"), NULL);
    CHECK(f != NULL);
#ifdef TG_HAVE_SPNG
    CHECK_ERROR(tg_image_folder_load(f, tg_test_device(), &d),
                msgf("tg_image_folder_load: '%s' is 1x3x4 (C,H,W), but '%s' is 1x2x4: images must share one size to "
                     "be stacked", tmp_path("mixed/b/1.png"), tmp_path("mixed/a/1.png")));
    CHECK(d.images == NULL && d.labels == NULL && d.classes == NULL);
#endif
    tg_image_folder_free(f);
    make_dir("mixed/c");
    write_text("mixed/c/readme.txt", "no images here");
    CHECK_ERROR(tg_image_folder_open(tmp_path("mixed"), NULL),
                msgf("tg_image_folder_open: class folder '%s' has no PNG files", tmp_path("mixed/c")));
    make_dir("noclasses");
    folder_png("noclasses/loose.png", 1, 2, 2);
    CHECK_ERROR(tg_image_folder_open(tmp_path("noclasses"), NULL),
                msgf("tg_image_folder_open: '%s' has no class folders (expected root/<class>/<file>.png)",
                     tmp_path("noclasses")));
    CHECK_ERROR(tg_image_folder_open(tmp_path("absent"), NULL),
                msgf("tg_image_folder_open: cannot open '%s': No such file or directory", tmp_path("absent")));
    CHECK(tg_last_status() == TG_ERR_IO);
    CHECK_ERROR(tg_image_folder_open(NULL, NULL), "tg_image_folder_open: root is NULL");
    CHECK_ERROR(tg_image_folder_open(tmpdir(), &(tg_image_folder_opts){ .mode = (tg_image_mode)7 }),
                "tg_image_folder_open: unknown mode 7");
    CHECK_ERROR(tg_image_folder_load(NULL, tg_test_device(), &d), "tg_image_folder_load: folder is NULL");
    CHECK_ERROR(tg_image_folder_read(NULL, 0), "tg_image_folder_read: folder is NULL");
    CHECK(tg_image_folder_size(NULL) == 0 && tg_image_folder_num_classes(NULL) == 0);
    tg_image_folder_free(NULL);
}

TG_TEST_MAIN(&tg_case_read_every_color_type, &tg_case_read_errors, &tg_case_write_round_trip,
             &tg_case_write_float_rounding, &tg_case_write_errors, &tg_case_grid_hand_values, &tg_case_grid_errors,
             &tg_case_grid_vs_torchvision, &tg_case_save_image, &tg_case_folder_listing, &tg_case_folder_threads,
             &tg_case_folder_loader, &tg_case_folder_errors)
