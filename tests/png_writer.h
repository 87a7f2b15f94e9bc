/* A small PNG writer for the tests, independent of libspng: any colour type and bit
 * depth, optional PLTE and tRNS, pixel data in zlib stored (uncompressed) blocks. A
 * test describes its pixels as samples and knows what a decoder must return. */
#ifndef TG_TEST_PNG_WRITER_H
#define TG_TEST_PNG_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} png_bytes;

static inline void pb_put(png_bytes *b, const void *src, size_t n) {
    if (n == 0) return;
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        if (!(b->p = realloc(b->p, b->cap))) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void pb_be32(png_bytes *b, uint32_t v) {
    uint8_t c[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    pb_put(b, c, 4);
}

static inline uint32_t png_crc(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static inline void png_chunk(png_bytes *b, const char *type, const uint8_t *data, size_t n) {
    pb_be32(b, (uint32_t)n);
    size_t start = b->n;
    pb_put(b, type, 4);
    if (n) pb_put(b, data, n);
    pb_be32(b, png_crc(b->p + start, n + 4));
}

/* zlib (RFC 1950) of raw with stored deflate blocks. */
static inline png_bytes png_zlib_stored(const png_bytes *raw) {
    png_bytes z = { 0 };
    pb_put(&z, "\x78\x01", 2);
    size_t off = 0;
    do {
        size_t len = raw->n - off > 65535 ? 65535 : raw->n - off;
        uint8_t h[5] = { (uint8_t)(off + len == raw->n), (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)~len,
                         (uint8_t)(~len >> 8) };
        pb_put(&z, h, 5);
        if (len) pb_put(&z, raw->p + off, len);
        off += len;
    } while (off < raw->n);
    uint32_t a = 1, b2 = 0;
    for (size_t i = 0; i < raw->n; i++) {
        a = (a + raw->p[i]) % 65521;
        b2 = (b2 + a) % 65521;
    }
    pb_be32(&z, b2 << 16 | a);
    return z;
}

typedef struct {
    uint32_t w, h;
    int depth, color;      /* IHDR bit depth and colour type (0, 2, 3, 4, 6) */
    const uint8_t *plte;   /* 3 bytes an entry, or NULL */
    int nplte;
    const uint8_t *trns;   /* tRNS chunk bytes, or NULL */
    int ntrns;
    /* sample k of pixel (y, x); 16-bit samples are whole 16-bit values */
    unsigned (*sample)(uint32_t y, uint32_t x, int k);
    bool adam7; /* interlaced: the seven passes' sub-images one after another */
} png_spec;

static inline int png_samples(int color) { return color == 0 || color == 3 ? 1 : color == 4 ? 2 : color == 2 ? 3 : 4; }

/* One filter-0 row of packed samples (MSB first): pixels x0, x0+dx, ... of row y. */
static inline void png_row(png_bytes *raw, const png_spec *s, uint32_t y, uint32_t x0, uint32_t dx) {
    int ns = png_samples(s->color), bits = 0;
    uint8_t zero = 0, acc = 0;
    pb_put(raw, &zero, 1);
    for (uint32_t x = x0; x < s->w; x += dx)
        for (int k = 0; k < ns; k++) {
            unsigned v = s->sample(y, x, k);
            if (s->depth == 16) {
                uint8_t two[2] = { (uint8_t)(v >> 8), (uint8_t)v };
                pb_put(raw, two, 2);
            } else if (s->depth == 8) {
                uint8_t one = (uint8_t)v;
                pb_put(raw, &one, 1);
            } else {
                acc = (uint8_t)(acc | v << (8 - s->depth - bits));
                if ((bits += s->depth) == 8) pb_put(raw, &acc, 1), acc = 0, bits = 0;
            }
        }
    if (bits) pb_put(raw, &acc, 1);
}

/* The file's bytes. */
static inline png_bytes png_encode(const png_spec *s) {
    /* Adam7 passes: first row, first column, row step, column step */
    static const uint32_t passes[7][4] = { { 0, 0, 8, 8 }, { 0, 4, 8, 8 }, { 4, 0, 8, 4 }, { 0, 2, 4, 4 },
                                           { 2, 0, 4, 2 }, { 0, 1, 2, 2 }, { 1, 0, 2, 1 } };
    png_bytes f = { 0 }, raw = { 0 };
    pb_put(&f, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = { (uint8_t)(s->w >> 24), (uint8_t)(s->w >> 16), (uint8_t)(s->w >> 8), (uint8_t)s->w,
                         (uint8_t)(s->h >> 24), (uint8_t)(s->h >> 16), (uint8_t)(s->h >> 8), (uint8_t)s->h,
                         (uint8_t)s->depth, (uint8_t)s->color, 0, 0, (uint8_t)s->adam7 };
    png_chunk(&f, "IHDR", ihdr, 13);
    if (s->plte) png_chunk(&f, "PLTE", s->plte, (size_t)s->nplte * 3);
    if (s->trns) png_chunk(&f, "tRNS", s->trns, (size_t)s->ntrns);
    for (int p = 0; p < (s->adam7 ? 7 : 1) && s->sample; p++) {
        const uint32_t *ps = s->adam7 ? passes[p] : (const uint32_t[4]){ 0, 0, 1, 1 };
        if (ps[1] >= s->w) continue; /* an empty pass has no rows at all */
        for (uint32_t y = ps[0]; y < s->h; y += ps[2]) png_row(&raw, s, y, ps[1], ps[3]);
    }
    png_bytes z = png_zlib_stored(&raw);
    png_chunk(&f, "IDAT", z.p, z.n);
    png_chunk(&f, "IEND", NULL, 0);
    free(raw.p);
    free(z.p);
    return f;
}

#endif
