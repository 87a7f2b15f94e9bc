/* tg_idx_load: IDX files of each type written to a temp dir, plain and gzip-compressed,
 * read back exactly; and every malformed-file case fails with a message naming it.
 * Gzip files come from zlib when the test sees TG_HAVE_ZLIB, else from a small writer
 * of stored (uncompressed) deflate blocks below, so the gzip cases run either way. A
 * library built without zlib must refuse them with a message saying so. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif

#include "harness.h"
#include "tapegrad/data.h"

/* ------------------------------------------------------------- writing test files */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_be(bytes *b, uint64_t v, int size) {
    for (int i = size - 1; i >= 0; i--) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* An IDX header: magic 0 0 type ndim, then big-endian u32 sizes. */
static bytes idx_header(uint8_t type, int ndim, const uint32_t *dims) {
    bytes b = { 0 };
    uint8_t magic[4] = { 0, 0, type, (uint8_t)ndim };
    put(&b, magic, 4);
    for (int i = 0; i < ndim; i++) put_be(&b, dims[i], 4);
    return b;
}

/* A fresh empty file in $TMPDIR (else /tmp); the caller unlinks it. */
static char *temp_path(void) {
    const char *dir = getenv("TMPDIR");
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/tg_idx_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
    return path;
}

static char *write_plain(const bytes *b) {
    char *path = temp_path();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) abort();
    return path;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void put_le(bytes *b, uint32_t v, int size) {
    for (int i = 0; i < size; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* RFC 1952 gzip of b with RFC 1951 stored blocks: valid, just not smaller. */
static bytes gzip_stored(const bytes *b) {
    bytes g = { 0 };
    const uint8_t head[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff };
    put(&g, head, sizeof head);
    size_t off = 0;
    do {
        size_t len = b->n - off > 65535 ? 65535 : b->n - off;
        uint8_t final = off + len == b->n;
        put(&g, &final, 1);
        put_le(&g, (uint32_t)len, 2);
        put_le(&g, (uint32_t)~len & 0xffff, 2);
        put(&g, b->p + off, len);
        off += len;
    } while (off < b->n);
    put_le(&g, crc32_of(b->p, b->n), 4);
    put_le(&g, (uint32_t)b->n, 4);
    return g;
}

/* Writes b gzip-compressed; cut > 0 drops that many bytes from the file's end. */
static char *write_gz(const bytes *b, size_t cut) {
#ifdef TG_HAVE_ZLIB
    char *path = temp_path();
    gzFile gz = gzopen(path, "wb9");
    if (!gz || gzwrite(gz, b->p, (unsigned)b->n) != (int)b->n || gzclose(gz) != Z_OK) abort();
    if (cut) {
        FILE *f = fopen(path, "rb+");
        if (!f || fseek(f, 0, SEEK_END) != 0) abort();
        long size = ftell(f);
        if (size < (long)cut || ftruncate(fileno(f), size - (long)cut) != 0) abort();
        fclose(f);
    }
    return path;
#else
    bytes g = gzip_stored(b);
    g.n -= cut < g.n ? cut : g.n;
    char *path = write_plain(&g);
    free(g.p);
    return path;
#endif
}

static void drop(char *path, bytes *b) {
    if (path) unlink(path);
    free(path);
    if (b) free(b->p);
}

/* Whether this library reads gzip: it must when the test was built with zlib. */
static bool lib_reads_gzip(void) {
    uint32_t dims[1] = { 1 };
    bytes b = idx_header(0x08, 1, dims);
    put(&b, "\x07", 1);
    bytes g = gzip_stored(&b);
    char *path = write_plain(&g);
    tg_scope_begin();
    bool ok = tg_idx_load(path, tg_test_device()) != NULL;
    tg_scope_end();
    drop(path, &b);
    free(g.p);
#ifdef TG_HAVE_ZLIB
    if (!ok) fprintf(stderr, "  built with zlib, yet a gzip file fails: %s\n", tg_last_error());
#endif
    return ok;
}

/* t must have dtype, shape and exactly the bytes of want (host order). */
static bool same(tg_tensor *t, tg_dtype dtype, int ndim, const int64_t *dims, const void *want, size_t nbytes) {
    if (!t || tg_dtype_of(t) != dtype || tg_ndim(t) != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (tg_size(t, i) != dims[i]) return false;
    uint8_t *got = malloc(nbytes ? nbytes : 1);
    bool ok = tg_copy_to_host(t, got, nbytes) == TG_OK && memcmp(got, want, nbytes) == 0;
    free(got);
    return ok;
}

/* ------------------------------------------------------------- reading back */

static const uint8_t k_u8[24] = { 0, 1, 2, 3, 127, 128, 129, 254, 255, 9, 10, 11,
                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 200 };
static const uint32_t k_u8_dims[3] = { 2, 3, 4 };

static bytes u8_file(void) {
    bytes b = idx_header(0x08, 3, k_u8_dims);
    put(&b, k_u8, sizeof k_u8);
    return b;
}

TEST(u8_3d_plain) {
    bytes b = u8_file();
    char *path = write_plain(&b);
    tg_tensor *t = tg_idx_load(path, tg_test_device());
    if (!t) fprintf(stderr, "  %s\n", tg_last_error());
    CHECK(same(t, TG_U8, 3, (int64_t[]){ 2, 3, 4 }, k_u8, sizeof k_u8));
    drop(path, &b);
}

TEST(i32_1d_plain) {
    const int32_t v[5] = { 0, -1, 123456789, INT32_MIN, INT32_MAX };
    bytes b = idx_header(0x0C, 1, (uint32_t[]){ 5 });
    for (int i = 0; i < 5; i++) put_be(&b, (uint32_t)v[i], 4);
    char *path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_I32, 1, (int64_t[]){ 5 }, v, sizeof v));
    drop(path, &b);
}

static bytes f32_file(const float *v) { /* (2, 3) */
    bytes b = idx_header(0x0D, 2, (uint32_t[]){ 2, 3 });
    for (int i = 0; i < 6; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_be(&b, bits, 4);
    }
    return b;
}

TEST(f32_2d_plain) {
    const float v[6] = { 0.0f, -1.5f, 3.25e-7f, 1e30f, -0.0f, 0.2860f };
    bytes b = f32_file(v);
    char *path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_F32, 2, (int64_t[]){ 2, 3 }, v, sizeof v));
    drop(path, &b);
}

TEST(f64_and_widened_ints) {
    const double d[3] = { 1.0 / 3, -2.5e-300, 6.02214076e23 };
    bytes b = idx_header(0x0E, 1, (uint32_t[]){ 3 });
    for (int i = 0; i < 3; i++) {
        uint64_t bits;
        memcpy(&bits, &d[i], 8);
        put_be(&b, bits, 8);
    }
    char *path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_F64, 1, (int64_t[]){ 3 }, d, sizeof d));
    drop(path, &b);

    /* i8 and i16 have no tapegrad dtype: they widen to i32 with their sign */
    const int32_t w8[4] = { 0, 127, -128, -1 }, w16[4] = { 0, 32767, -32768, -2 };
    b = idx_header(0x09, 1, (uint32_t[]){ 4 });
    put(&b, (uint8_t[]){ 0x00, 0x7f, 0x80, 0xff }, 4);
    path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_I32, 1, (int64_t[]){ 4 }, w8, sizeof w8));
    drop(path, &b);
    b = idx_header(0x0B, 2, (uint32_t[]){ 2, 2 });
    for (int i = 0; i < 4; i++) put_be(&b, (uint16_t)w16[i], 2);
    path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_I32, 2, (int64_t[]){ 2, 2 }, w16, sizeof w16));
    drop(path, &b);
}

TEST(trailing_bytes_ignored) {
    bytes b = u8_file();
    put(&b, "garbage", 7);
    char *path = write_plain(&b);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_U8, 3, (int64_t[]){ 2, 3, 4 }, k_u8, sizeof k_u8));
    drop(path, &b);
}

TEST(gzip_u8_and_f32) {
    if (!lib_reads_gzip()) {
        bytes b = u8_file();
        char *path = write_gz(&b, 0);
        CHECK_ERROR_CONTAINS(tg_idx_load(path, tg_test_device()), "built without zlib");
        drop(path, &b);
        return;
    }
    bytes b = u8_file();
    char *path = write_gz(&b, 0);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_U8, 3, (int64_t[]){ 2, 3, 4 }, k_u8, sizeof k_u8));
    drop(path, &b);

    const float v[6] = { 1, 2, 3, -4, 5.5f, 1e-20f };
    b = f32_file(v);
    path = write_gz(&b, 0);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_F32, 2, (int64_t[]){ 2, 3 }, v, sizeof v));
    drop(path, &b);
}

/* More than one first-chunk of data and more than one stored block: the buffer grows. */
TEST(gzip_large) {
    if (!lib_reads_gzip()) return;
    const uint32_t n = 300000;
    bytes b = idx_header(0x0C, 1, &n);
    int32_t *v = malloc(n * sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        v[i] = (int32_t)(i * 2654435761u);
        put_be(&b, (uint32_t)v[i], 4);
    }
    char *path = write_gz(&b, 0);
    CHECK(same(tg_idx_load(path, tg_test_device()), TG_I32, 1, (int64_t[]){ n }, v, n * sizeof *v));
    drop(path, &b);
    free(v);
}

TEST(empty_and_scalar_shapes) {
    bytes b = idx_header(0x08, 3, (uint32_t[]){ 0, 28, 28 });
    char *path = write_plain(&b);
    tg_tensor *t = tg_idx_load(path, tg_test_device());
    if (!t) fprintf(stderr, "  %s\n", tg_last_error());
    CHECK(t && tg_numel(t) == 0 && tg_ndim(t) == 3 && tg_size(t, 1) == 28);
    drop(path, &b);

    b = idx_header(0x0D, 0, NULL);
    put_be(&b, 0x40490fdbu, 4); /* pi as f32 */
    path = write_plain(&b);
    t = tg_idx_load(path, tg_test_device());
    CHECK(t && tg_ndim(t) == 0);
    CHECK_NEAR(tg_item(t), 3.14159265f, 0);
    drop(path, &b);
}

/* ------------------------------------------------------------- errors */

/* Loads a file made of b and checks the message; no tensor may be left behind. */
static void expect_error(int *tg_failed_, const bytes *b, bool gz, size_t cut, const char *sub) {
    char *path = gz ? write_gz(b, cut) : write_plain(b);
    int64_t live = tg_live_tensors();
    CHECK_ERROR_CONTAINS(tg_idx_load(path, tg_test_device()), sub);
    CHECK(tg_last_status() == TG_ERR_IO);
    CHECK(strstr(tg_last_error(), path) != NULL); /* the message names the file */
    CHECK(tg_live_tensors() == live);
    drop(path, NULL);
}

TEST(missing_file) {
    char *path = temp_path();
    unlink(path);
    char want[4200];
    snprintf(want, sizeof want, "tg_idx_load: cannot open '%s': No such file or directory", path);
    CHECK_ERROR(tg_idx_load(path, tg_test_device()), want);
    CHECK(tg_last_status() == TG_ERR_IO);
    free(path);
    CHECK_ERROR(tg_idx_load(NULL, tg_test_device()), "tg_idx_load: path is NULL");
}

TEST(a_directory) {
    const char *dir = getenv("TMPDIR");
    CHECK_ERROR_CONTAINS(tg_idx_load(dir && *dir ? dir : "/tmp", tg_test_device()), "Is a directory");
}

TEST(bad_magic) {
    bytes b = u8_file();
    b.p[1] = 0x08; /* as if a byte went missing at the start */
    expect_error(tg_failed_, &b, false, 0, "is not an IDX file: bad magic 0x00 0x08 0x08 0x03");
    bytes text = { 0 };
    put(&text, "P5\n28 28\n255\n", 13); /* a PGM, not an IDX file */
    expect_error(tg_failed_, &text, false, 0, "bad magic");
    drop(NULL, &text);
    b.n = 0;
    expect_error(tg_failed_, &b, false, 0, "is empty, not an IDX file");
    b.n = 3;
    expect_error(tg_failed_, &b, false, 0, "is truncated: expected a 4-byte magic number, got 3 bytes");
    drop(NULL, &b);
}

TEST(unsupported_type) {
    bytes b = idx_header(0x0A, 1, (uint32_t[]){ 4 });
    put(&b, "abcd", 4);
    expect_error(tg_failed_, &b, false, 0, "unsupported IDX type code 0x0a");
    b.p[2] = 0x00;
    expect_error(tg_failed_, &b, false, 0, "unsupported IDX type code 0x00");
    drop(NULL, &b);
}

TEST(truncated_data) {
    bytes b = u8_file();
    b.n = 16 + 10; /* magic, 3 sizes, then 10 of the 24 data bytes */
    expect_error(tg_failed_, &b, false, 0, "is truncated: expected 24 bytes of data, got 10");
    b.n = 4 + 6; /* inside the sizes */
    expect_error(tg_failed_, &b, false, 0, "is truncated: expected 12 bytes of sizes for 3 dims, got 6");
    drop(NULL, &b);

    /* a corrupt header claiming 64 GiB fails as truncated without allocating it */
    b = idx_header(0x08, 3, (uint32_t[]){ 65536, 65536, 16 });
    put(&b, k_u8, sizeof k_u8);
    expect_error(tg_failed_, &b, false, 0, "is truncated: expected 68719476736 bytes of data, got 24");
    drop(NULL, &b);
}

TEST(truncated_gzip) {
    if (!lib_reads_gzip()) return;
    const uint32_t n = 5000;
    bytes b = idx_header(0x0C, 1, &n);
    for (uint32_t i = 0; i < n; i++) put_be(&b, i * 2654435761u, 4);
    /* cut inside the compressed data: a short read, flagged as a cut stream */
    expect_error(tg_failed_, &b, true, 1000, "(the gzip stream ends early)");
    expect_error(tg_failed_, &b, true, 1000, "is truncated: expected 20000 bytes of data, got ");
    drop(NULL, &b);
}

TEST(corrupt_gzip) {
    if (!lib_reads_gzip()) return;
    bytes b = u8_file();
    bytes g = gzip_stored(&b);
    g.p[12] ^= 0xff; /* the first stored block's LEN no longer matches its NLEN */
    expect_error(tg_failed_, &g, false, 0, "is corrupt: invalid stored block lengths");
    drop(NULL, &b);
    drop(NULL, &g);
}

TEST(absurd_dims) {
    uint32_t dims[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    bytes b = idx_header(0x08, 9, dims);
    put(&b, "x", 1);
    expect_error(tg_failed_, &b, false, 0, "has 9 dims; tapegrad tensors have at most 8");
    drop(NULL, &b);
    b = idx_header(0x08, 0, NULL);
    b.p[3] = 255;
    expect_error(tg_failed_, &b, false, 0, "has 255 dims");
    drop(NULL, &b);
    for (int i = 0; i < 8; i++) dims[i] = 0xffffffffu;
    b = idx_header(0x0E, 8, dims);
    expect_error(tg_failed_, &b, false, 0, "has absurd sizes 4294967295 x 4294967295 x");
    expect_error(tg_failed_, &b, false, 0, "the element count overflows");
    drop(NULL, &b);
}

/* Sizes whose product is 0 still follow the tensor rule: the nonzero sizes' product
 * must fit, or the strides overflow. */
TEST(zero_size_with_huge_sizes) {
    bytes b = idx_header(0x08, 3, (uint32_t[]){ 0, 0xffffffffu, 0xffffffffu });
    char *path = write_plain(&b);
    char want[4300];
    snprintf(want, sizeof want, "tg_idx_load: '%s' has absurd sizes 0 x 4294967295 x 4294967295: the element count "
             "overflows", path);
    int64_t live = tg_live_tensors();
    CHECK_ERROR(tg_idx_load(path, tg_test_device()), want);
    CHECK(tg_last_status() == TG_ERR_IO && tg_live_tensors() == live);
    drop(path, &b);
}

/* A 12-byte file (magic and sizes 2^31 x 0) is a valid empty tensor; printing it used
 * to visit every one of the 2^31 empty rows. */
TEST(empty_tensor_with_a_huge_axis_prints_at_once) {
    bytes b = idx_header(0x08, 2, (uint32_t[]){ 1u << 31, 0 });
    CHECK(b.n == 12);
    char *path = write_plain(&b);
    tg_tensor *t = tg_idx_load(path, tg_test_device());
    CHECK(t && tg_numel(t) == 0 && tg_size(t, 0) == 2147483648LL && tg_size(t, 1) == 0);
    char buf[200], want[200];
    int n = tg_snprint(buf, sizeof buf, t);
    snprintf(want, sizeof want, "tensor([], shape=[2147483648,0], dtype=u8, device=%s)",
             tg_device_name(tg_test_device()));
    CHECK(strcmp(buf, want) == 0 && n == (int)strlen(want));
    drop(path, &b);
}

TG_TEST_MAIN(&tg_case_u8_3d_plain, &tg_case_i32_1d_plain, &tg_case_f32_2d_plain, &tg_case_f64_and_widened_ints,
             &tg_case_trailing_bytes_ignored, &tg_case_gzip_u8_and_f32, &tg_case_gzip_large,
             &tg_case_empty_and_scalar_shapes, &tg_case_missing_file, &tg_case_a_directory, &tg_case_bad_magic,
             &tg_case_unsupported_type, &tg_case_truncated_data, &tg_case_truncated_gzip, &tg_case_corrupt_gzip,
             &tg_case_absurd_dims, &tg_case_zero_size_with_huge_sizes,
             &tg_case_empty_tensor_with_a_huge_axis_prints_at_once)
