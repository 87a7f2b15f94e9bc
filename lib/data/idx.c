/* tg_idx_load: the IDX file format (MNIST and its kin) into a tensor. The stream is
 * zlib's gzFile when built with TG_HAVE_ZLIB, which reads gzip and plain files alike;
 * without zlib it is stdio, and a gzip file is refused with a message saying why. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"
#include "tapegrad/data.h"

/* The first allocation for the data; beyond it memory follows the bytes actually read,
 * so a corrupt header that claims terabytes fails as truncated, not as out of memory. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)

typedef struct {
    uint8_t code;
    const char *name;
    size_t size; /* bytes an element takes in the file */
    tg_dtype dtype;
} idx_type;

static const idx_type k_types[] = {
    { 0x08, "u8", 1, TG_U8 },   { 0x09, "i8", 1, TG_I32 },  { 0x0B, "i16", 2, TG_I32 },
    { 0x0C, "i32", 4, TG_I32 }, { 0x0D, "f32", 4, TG_F32 }, { 0x0E, "f64", 8, TG_F64 },
};

typedef struct {
    const idx_type *type;
    tg_shape shape;
    size_t numel;
    size_t nbytes; /* of data in the file */
} idx_header;

typedef struct {
    const char *path;
#ifdef TG_HAVE_ZLIB
    gzFile gz;
#else
    FILE *f;
#endif
    bool failed;       /* a read error, not the end of the file: the message is set */
    bool gz_truncated; /* the gzip stream ended inside its compressed data */
} idx_stream;

/* ------------------------------------------------------------- the byte stream */

#ifdef TG_HAVE_ZLIB

static tg_status stream_open(idx_stream *s) {
    errno = 0;
    s->gz = gzopen(s->path, "rb");
    if (!s->gz) {
        if (errno) return tg_error(TG_ERR_IO, "tg_idx_load: cannot open '%s': %s", s->path, strerror(errno));
        return tg_error(TG_ERR_NOMEM, "tg_idx_load: cannot open '%s': out of memory", s->path);
    }
    gzbuffer(s->gz, 1u << 18); /* the default 8 KiB costs many small reads */
    return TG_OK;
}

/* Records why gzread stopped short: the end of the file, a cut stream, or an error. */
static void stream_note_short_read(idx_stream *s) {
    int errnum = Z_OK;
    const char *msg = gzerror(s->gz, &errnum);
    size_t plen = strlen(s->path);
    /* zlib prefixes errno messages with "<path>: " */
    if (msg && strncmp(msg, s->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
    if (errnum == Z_OK) return;
    if (errnum == Z_BUF_ERROR) {
        s->gz_truncated = true;
        return;
    }
    s->failed = true;
    if (errnum == Z_MEM_ERROR) tg_error(TG_ERR_NOMEM, "tg_idx_load: reading '%s': out of memory", s->path);
    else if (errnum == Z_ERRNO) tg_error(TG_ERR_IO, "tg_idx_load: cannot read '%s': %s", s->path, msg);
    else tg_error(TG_ERR_IO, "tg_idx_load: '%s' is corrupt: %s", s->path, msg);
}

/* Reads up to n bytes; fewer means the end of the file or s->failed. */
static size_t stream_read(idx_stream *s, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        unsigned want = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(s->gz, (char *)buf + got, want);
        if (r > 0) got += (size_t)r;
        if (r < (int)want) {
            stream_note_short_read(s);
            break;
        }
    }
    return got;
}

static void stream_close(idx_stream *s) {
    if (s->gz) gzclose(s->gz);
}

#else /* !TG_HAVE_ZLIB */

static tg_status stream_open(idx_stream *s) {
    s->f = fopen(s->path, "rb");
    if (!s->f) return tg_error(TG_ERR_IO, "tg_idx_load: cannot open '%s': %s", s->path, strerror(errno));
    return TG_OK;
}

static size_t stream_read(idx_stream *s, void *buf, size_t n) {
    size_t got = fread(buf, 1, n, s->f);
    if (got < n && ferror(s->f)) {
        s->failed = true;
        tg_error(TG_ERR_IO, "tg_idx_load: cannot read '%s': %s", s->path, strerror(errno));
    }
    return got;
}

static void stream_close(idx_stream *s) {
    if (s->f) fclose(s->f);
}

#endif

static const char *gz_note(const idx_stream *s) {
    return s->gz_truncated ? " (the gzip stream ends early)" : "";
}

/* ------------------------------------------------------------- the header */

static void format_dims(char *buf, size_t size, int ndim, const uint32_t *dims) {
    int len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && len >= 0 && (size_t)len < size; i++)
        len += snprintf(buf + len, size - (size_t)len, "%s%lu", i ? " x " : "", (unsigned long)dims[i]);
}

static tg_status check_magic(const idx_stream *s, const uint8_t m[4]) {
    if (m[0] != 0 || m[1] != 0) {
#ifndef TG_HAVE_ZLIB
        if (m[0] == 0x1f && m[1] == 0x8b)
            return tg_error(TG_ERR_IO, "tg_idx_load: '%s' is gzip-compressed, but tapegrad was built without "
                                       "zlib: gunzip it first", s->path);
#endif
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' is not an IDX file: bad magic 0x%02x 0x%02x 0x%02x 0x%02x "
                                   "(expected 0x00 0x00 <type> <ndim>)", s->path, m[0], m[1], m[2], m[3]);
    }
    if (m[3] > TG_MAX_DIMS)
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' has %d dims; tapegrad tensors have at most %d", s->path,
                        m[3], TG_MAX_DIMS);
    return TG_OK;
}

static const idx_type *find_type(uint8_t code) {
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].code == code) return &k_types[i];
    return NULL;
}

/* Reads the magic and the sizes; on success h holds the shape and the data's size. */
static tg_status read_header(idx_stream *s, idx_header *h) {
    uint8_t m[4], d[4 * TG_MAX_DIMS];
    size_t got = stream_read(s, m, 4);
    if (s->failed) return tg_last_status();
    if (got == 0) return tg_error(TG_ERR_IO, "tg_idx_load: '%s' is empty, not an IDX file", s->path);
    if (got < 4)
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' is truncated: expected a 4-byte magic number, got %zu bytes%s",
                        s->path, got, gz_note(s));
    if (check_magic(s, m) != TG_OK) return tg_last_status();
    h->type = find_type(m[2]);
    if (!h->type)
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' has unsupported IDX type code 0x%02x (expected 0x08 u8, "
                                   "0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64)", s->path, m[2]);
    int ndim = m[3];
    size_t want = 4 * (size_t)ndim;
    got = stream_read(s, d, want);
    if (s->failed) return tg_last_status();
    if (got < want)
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' is truncated: expected %zu bytes of sizes for %d dims, got %zu%s",
                        s->path, want, ndim, got, gz_note(s));
    uint32_t dims[TG_MAX_DIMS];
    int64_t numel;
    h->shape.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        dims[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 | (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
        h->shape.dims[i] = dims[i];
    }
    /* The rule every tensor shape follows: the nonzero sizes' product stays within
     * TG_MAX_NUMEL, so [0, 2^32-1, 2^32-1] is refused too (its strides overflow). That
     * bounds numel * 8 bytes within size_t and int64_t. */
    if (!tg_shape_numel_checked(ndim, h->shape.dims, &numel) || (uint64_t)numel > SIZE_MAX / 8) {
        char buf[200];
        format_dims(buf, sizeof buf, ndim, dims);
        return tg_error(TG_ERR_IO, "tg_idx_load: '%s' has absurd sizes %s: the element count overflows", s->path, buf);
    }
    h->numel = (size_t)numel;
    h->nbytes = h->numel * h->type->size;
    return TG_OK;
}

/* ------------------------------------------------------------- the data */

/* Reads up to need bytes into a new buffer (never NULL on success, even for 0 bytes)
 * grown as the data arrives; *got says how many came. NULL on error, message set. */
static uint8_t *read_data(idx_stream *s, size_t need, size_t *got) {
    size_t cap = need < IDX_FIRST_CHUNK ? need : IDX_FIRST_CHUNK;
    uint8_t *buf = malloc(cap ? cap : 1);
    *got = 0;
    while (buf) {
        *got += stream_read(s, buf + *got, cap - *got);
        if (s->failed) {
            free(buf);
            return NULL;
        }
        if (*got < cap || cap == need) return buf;
        size_t ncap = cap > need / 2 ? need : 2 * cap;
        uint8_t *nbuf = realloc(buf, ncap);
        if (!nbuf) free(buf);
        buf = nbuf;
        cap = ncap;
    }
    return tg_error_null(TG_ERR_NOMEM, "tg_idx_load: '%s': out of memory for %zu bytes of data", s->path, need);
}

/* Big-endian elements to host order, in place for 1-, 4- and 8-byte types; i8 and i16
 * widen into a new i32 buffer. Returns raw itself, a new buffer, or NULL (no memory). */
static void *to_host(uint8_t *raw, const idx_header *h) {
    size_t n = h->numel;
    if (h->type->code == 0x09 || h->type->code == 0x0B) {
        int32_t *out = malloc(n ? n * sizeof *out : 1);
        if (!out) return NULL;
        for (size_t i = 0; i < n; i++) {
            if (h->type->size == 1) out[i] = (int32_t)raw[i] - (raw[i] & 0x80 ? 0x100 : 0);
            else {
                int32_t v = (int32_t)raw[2 * i] << 8 | raw[2 * i + 1];
                out[i] = v - (v & 0x8000 ? 0x10000 : 0);
            }
        }
        return out;
    }
    if (h->type->size == 4) {
        for (uint8_t *p = raw; p < raw + 4 * n; p += 4) {
            uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            memcpy(p, &v, 4);
        }
    } else if (h->type->size == 8) {
        for (uint8_t *p = raw; p < raw + 8 * n; p += 8) {
            uint64_t v = 0;
            for (int k = 0; k < 8; k++) v = v << 8 | p[k];
            memcpy(p, &v, 8);
        }
    }
    return raw;
}

/* tg_from_data with the path added to its message (copied first: both live in one
 * buffer), whose head already names tg_idx_load. */
static tg_tensor *upload(const char *path, const void *host, const idx_header *h, tg_device *dev) {
    tg_tensor *t = tg_from_data(host, h->type->dtype, h->shape, dev);
    if (!t) {
        static const char head[] = "tg_idx_load: ";
        const char *m = tg_last_error();
        char msg[900];
        snprintf(msg, sizeof msg, "%s", strncmp(m, head, sizeof head - 1) == 0 ? m + sizeof head - 1 : m);
        tg_error(tg_last_status(), "tg_idx_load: '%s': %s", path, msg);
    }
    return t;
}

tg_tensor *tg_idx_load(const char *path, tg_device *dev) {
    TG_API_ENTER("tg_idx_load");
    if (!path) return tg_error_null(TG_ERR_INVALID, "tg_idx_load: path is NULL");
    if (!dev) return tg_last_status() != TG_OK ? NULL : tg_error_null(TG_ERR_DEVICE, "tg_idx_load: device is NULL");
    idx_stream s = { .path = path };
    idx_header h = { 0 };
    uint8_t *raw = NULL;
    void *host = NULL;
    tg_tensor *t = NULL;
    size_t got = 0;

    if (stream_open(&s) != TG_OK) goto fail;
    if (read_header(&s, &h) != TG_OK) goto fail;
    if (!(raw = read_data(&s, h.nbytes, &got))) goto fail;
    if (got < h.nbytes) {
        tg_error(TG_ERR_IO, "tg_idx_load: '%s' is truncated: expected %zu bytes of data, got %zu%s", path, h.nbytes,
                 got, gz_note(&s));
        goto fail;
    }
    if (!(host = to_host(raw, &h))) {
        tg_error(TG_ERR_NOMEM, "tg_idx_load: '%s': out of memory widening %zu elements", path, h.numel);
        goto fail;
    }
    t = upload(path, host, &h, dev);
fail: /* also the way out on success */
    if (host != raw) free(host);
    free(raw);
    stream_close(&s);
    return t;
}
