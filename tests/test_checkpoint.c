/* Checkpoints as safetensors files: round trips of every dtype, a file built byte by
 * byte here read correctly, every malformed file refused with its reason, module and
 * optimizer files, atomic saves, and a resumed training run that matches an
 * uninterrupted one bit for bit. With python3 and torch (else skipped), files are read
 * and written by tests/torch/safetensors_peer.py, an independent implementation. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tapegrad/data.h"

static char g_dir[] = "/tmp/tg_ckpt_XXXXXX";

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

typedef struct {
    uint8_t *p;
    size_t n;
} bytes;

static bytes read_all(const char *path) {
    bytes b = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n + 1);
    if (fread(b.p, 1, b.n, f) != b.n) b.n = 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(p, 1, n, f);
    fclose(f);
}

/* A safetensors file from a header string and data bytes. */
static bytes make_file(const char *json, const void *data, size_t data_n) {
    size_t n = strlen(json);
    bytes b = { malloc(8 + n + data_n + 1), 8 + n + data_n };
    for (int i = 0; i < 8; i++) b.p[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b.p + 8, json, n);
    if (data_n) memcpy(b.p + 8 + n, data, data_n);
    return b;
}

static bool same_bits(tg_tensor *a, tg_tensor *b) {
    if (!a || !b || tg_dtype_of(a) != tg_dtype_of(b) || tg_numel(a) != tg_numel(b)) return false;
    tg_shape sa = tg_shape_of(a), sb = tg_shape_of(b);
    if (sa.ndim != sb.ndim || memcmp(sa.dims, sb.dims, (size_t)sa.ndim * sizeof sa.dims[0])) return false;
    size_t n = (size_t)tg_numel(a) * tg_dtype_size(tg_dtype_of(a));
    uint8_t *x = malloc(n + 1), *y = malloc(n + 1);
    bool ok = tg_copy_to_host(a, x, n) == TG_OK && tg_copy_to_host(b, y, n) == TG_OK && !memcmp(x, y, n);
    free(x), free(y);
    return ok;
}

/* ------------------------------------------------------------- round trips and the format */

TEST(round_trip_every_dtype) {
    tg_device *dev = tg_test_device();
    tg_state_dict *sd = tg_state_dict_new();
    tg_tensor *t[7] = {
        tg_from_f32((float[]){ 1.5f, -2.25f, 3e-38f, 1e30f, -0.0f, 7 }, TG_SHAPE(2, 3), dev),
        tg_from_f64((double[]){ 3.141592653589793, -1e-300 }, TG_SHAPE(2), dev),
        tg_from_i32((int32_t[]){ INT32_MIN, -1, 0, INT32_MAX }, TG_SHAPE(2, 1, 2), dev),
        tg_from_u8((uint8_t[]){ 0, 1, 200, 255, 7 }, TG_SHAPE(5), dev),
        tg_from_i64((int64_t[]){ INT64_MIN, (int64_t)1 << 40, -5 }, TG_SHAPE(3), dev),
        tg_scalar(TG_F64, 0.1, dev),
        tg_zeros(TG_F32, TG_SHAPE(0, 4), dev),
    };
    const char *names[7] = { "f32", "f64", "i32", "u8", "i64", "scalar", "empty" };
    for (int i = 0; i < 7; i++) CHECK(tg_state_dict_set(sd, names[i], t[i]) == TG_OK);
    /* a non-contiguous view is written densely */
    CHECK(tg_state_dict_set(sd, "view", tg_transpose(t[0], 0, 1)) == TG_OK);
    tg_metadata meta = { 2, (char *[]){ "epoch", "note" }, (char *[]){ "3", "a \"quoted\" value" } };
    CHECK(tg_safetensors_save(sd, tmp("all.safetensors"), &meta) == TG_OK);
    tg_metadata got;
    tg_state_dict *back = tg_safetensors_load(tmp("all.safetensors"), dev, &got);
    CHECK(back != NULL);
    CHECK(tg_state_dict_size(back) == 8);
    for (int i = 0; back && i < 7; i++)
        if (!same_bits(tg_state_dict_get(back, names[i]), t[i])) FAIL_("tensor %s differs", names[i]);
    if (back) CHECK(same_bits(tg_state_dict_get(back, "view"), tg_contiguous(tg_transpose(t[0], 0, 1))));
    CHECK(got.n == 2);
    CHECK(tg_metadata_get(&got, "epoch") && !strcmp(tg_metadata_get(&got, "epoch"), "3"));
    CHECK(tg_metadata_get(&got, "note") && !strcmp(tg_metadata_get(&got, "note"), "a \"quoted\" value"));
    CHECK(tg_metadata_get(&got, "absent") == NULL);
    tg_metadata_free(&got);
    tg_state_dict_free(back);
    tg_state_dict_free(sd);

    /* The layout: header length a multiple of 8, padded with spaces; metadata first, then
     * 8-byte dtypes before 4-byte ones before bytes, each group by name. */
    bytes b = read_all(tmp("all.safetensors"));
    CHECK(b.n > 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b.p[i];
    CHECK(n % 8 == 0 && 8 + n <= b.n);
    CHECK(!memcmp(b.p + 8, "{\"__metadata__\":", 16));
    b.p[8 + n] = 0;
    const char *h = (const char *)b.p + 8;
    const char *order[] = { "\"f64\"", "\"i64\"", "\"scalar\"", "\"empty\"", "\"f32\"", "\"i32\"", "\"view\"", "\"u8\"" };
    for (int i = 1; i < 8; i++)
        if (!strstr(h, order[i - 1]) || !strstr(h, order[i]) || strstr(h, order[i - 1]) > strstr(h, order[i]))
            FAIL_("%s is not before %s in %s", order[i - 1], order[i], h);
    CHECK(strstr(h, "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}") != NULL);
    CHECK(h[strlen(h) - 1] == ' ' || h[strlen(h) - 1] == '}');
    free(b.p);
}

TEST(hand_written_file) {
    tg_device *dev = tg_test_device();
    /* data: a F32 [1.5, -2] at 0..8, b F16 at 8..18, c BF16 at 18..20, d I64 at 24..40,
     * e BOOL at 40..43, f I16 at 43..47, g U16 at 47..49, h I8 at 49..50. Unsorted keys,
     * metadata last, trailing spaces: all legal. */
    const char *json =
        "{\"b\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[8,18]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[18,20]},"
        "\"d\":{\"dtype\":\"I64\",\"shape\":[2,1],\"data_offsets\":[24,40]},"
        "\"e\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[40,43]},"
        "\"f\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[43,47]},"
        "\"g\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[47,49]},"
        "\"h\":{\"dtype\":\"I8\",\"shape\":[1,1],\"data_offsets\":[49,50]},"
        "\"__metadata__\":{\"format\":\"pt\"}}   ";
    uint8_t data[50] = { 0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0, /* 1.5f, -2.0f */
                         0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x7B, 0x00, 0x7C, /* 1 -2 2^-24 65504 inf */
                         0x80, 0x3F, 0, 0, 0, 0, /* bf16 1.0, then a gap */
                         0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, /* -1 */
                         0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, /* 2^40 */
                         0x00, 0x01, 0x05, /* false true true */
                         0xFE, 0xFF, 0x00, 0x80, /* -2, -32768 */
                         0xFF, 0xFF, /* 65535 */
                         0x80 /* -128 */ };
    bytes f = make_file(json, data, sizeof data);
    write_all(tmp("hand.safetensors"), f.p, f.n);
    for (int via_file = 0; via_file < 2; via_file++) {
        tg_metadata meta;
        tg_state_dict *sd = via_file ? tg_safetensors_load(tmp("hand.safetensors"), dev, &meta)
                                     : tg_safetensors_load_buffer(f.p, f.n, dev, &meta);
        CHECK(sd != NULL);
        if (!sd) {
            printf("  %s\n", tg_last_error());
            continue;
        }
        CHECK(tg_state_dict_size(sd) == 8);
        CHECK(!strcmp(tg_state_dict_name(sd, 0), "b") && !strcmp(tg_state_dict_name(sd, 1), "a"));
        CHECK(meta.n == 1 && !strcmp(tg_metadata_get(&meta, "format"), "pt"));
        tg_metadata_free(&meta);
        CHECK(same_bits(tg_state_dict_get(sd, "a"), tg_from_f32((float[]){ 1.5f, -2 }, TG_SHAPE(2), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "b"),
                        tg_from_f32((float[]){ 1, -2, 0x1p-24f, 65504, INFINITY }, TG_SHAPE(5), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "c"), tg_scalar(TG_F32, 1, dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "d"), tg_from_i64((int64_t[]){ -1, (int64_t)1 << 40 }, TG_SHAPE(2, 1), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "e"), tg_from_u8((uint8_t[]){ 0, 1, 1 }, TG_SHAPE(3), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "f"), tg_from_i32((int32_t[]){ -2, -32768 }, TG_SHAPE(2), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "g"), tg_from_i32((int32_t[]){ 65535 }, TG_SHAPE(1), dev)));
        CHECK(same_bits(tg_state_dict_get(sd, "h"), tg_from_i32((int32_t[]){ -128 }, TG_SHAPE(1, 1), dev)));
        tg_state_dict_free(sd);
    }
    free(f.p);
}

/* ------------------------------------------------------------- malformed files */

TEST(truncated_at_every_cut) {
    tg_device *dev = tg_test_device();
    tg_state_dict *sd = tg_state_dict_new();
    tg_state_dict_set(sd, "w", tg_arange(TG_F32, 0, 12, 1, dev));
    tg_state_dict_set(sd, "n", tg_from_i64((int64_t[]){ 7 }, TG_SCALAR_SHAPE, dev));
    CHECK(tg_safetensors_save(sd, tmp("cut.safetensors"), NULL) == TG_OK);
    tg_state_dict_free(sd);
    bytes b = read_all(tmp("cut.safetensors"));
    CHECK(b.n > 60);
    int bad = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        tg_clear_error();
        tg_state_dict *r = tg_safetensors_load_buffer(b.p, cut, dev, NULL);
        if (r || tg_last_status() != TG_ERR_IO || !strstr(tg_last_error(), "'<buffer>': truncated")) {
            if (bad++ < 3) printf("  cut %zu: %s\n", cut, r ? "loaded" : tg_last_error());
            tg_state_dict_free(r);
        }
    }
    CHECK(bad == 0);
    write_all(tmp("short.safetensors"), b.p, b.n - 1);
    char want[512];
    snprintf(want, sizeof want, "tg_safetensors_load: '%s': truncated: tensor 'w' ends at byte 56 of the data, which holds 55",
             tmp("short.safetensors"));
    CHECK_ERROR(tg_safetensors_load(tmp("short.safetensors"), dev, NULL), want);
    write_all(tmp("short.safetensors"), b.p, 5);
    snprintf(want, sizeof want,
             "tg_safetensors_load: '%s': truncated: 5 bytes, a safetensors file starts with an 8-byte header length",
             tmp("short.safetensors"));
    CHECK_ERROR(tg_safetensors_load(tmp("short.safetensors"), dev, NULL), want);
    CHECK_ERROR_CONTAINS(tg_safetensors_load(tmp("absent.safetensors"), dev, NULL), "absent.safetensors': No such file");
    CHECK_ERROR_CONTAINS(tg_safetensors_load(g_dir, dev, NULL), "' is not a regular file");
    free(b.p);
}

static void check_bad(int *tg_failed_, const char *json, size_t data_n, const char *msg) {
    uint8_t data[64] = { 0 };
    bytes f = make_file(json, data, data_n);
    char want[600];
    snprintf(want, sizeof want, "tg_safetensors_load_buffer: '<buffer>': %s", msg);
    CHECK_ERROR(tg_safetensors_load_buffer(f.p, f.n, tg_test_device(), NULL), want);
    free(f.p);
}

#define T1(rest) "{\"t\":{\"dtype\":\"F32\"," rest "}}"

TEST(corrupt_headers) {
    check_bad(tg_failed_, "{\"t\": {", 0, "the header is not valid JSON (at byte 6 of 7)");
    check_bad(tg_failed_, "[1, 2]  ", 0, "the header is JSON but not an object");
    check_bad(tg_failed_, "{} x", 0, "the header has bytes after its JSON (at byte 3)");
    check_bad(tg_failed_, "", 0, "the header is empty (length 0)");
    check_bad(tg_failed_, "{\"t\":[]}", 0, "tensor 't' is not a JSON object");
    check_bad(tg_failed_, "{\"t\":{\"shape\":[],\"data_offsets\":[0,4]}}", 4, "tensor 't': \"dtype\" is missing or not a string");
    check_bad(tg_failed_, T1("\"data_offsets\":[0,4]"), 4, "tensor 't': \"shape\" is missing or not an array");
    check_bad(tg_failed_, T1("\"shape\":[-1],\"data_offsets\":[0,4]"), 4, "tensor 't': shape[0] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[1.5],\"data_offsets\":[0,4]"), 4, "tensor 't': shape[0] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[\"2\"],\"data_offsets\":[0,4]"), 4, "tensor 't': shape[0] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]"), 4,
              "tensor 't': 9 dimensions, tapegrad holds at most 8");
    check_bad(tg_failed_, T1("\"shape\":[1],\"data_offsets\":[0]"), 4, "tensor 't': \"data_offsets\" is not two non-negative integers");
    check_bad(tg_failed_, T1("\"shape\":[1],\"data_offsets\":[4,0]"), 4, "tensor 't': data_offsets [4, 0] end before they begin");
    check_bad(tg_failed_, T1("\"shape\":[2],\"data_offsets\":[0,4]"), 4,
              "tensor 't': data_offsets [0, 4] span 4 bytes, its shape [2] of F32 needs 8");
    check_bad(tg_failed_, T1("\"shape\":[],\"data_offsets\":[0,8]"), 8,
              "tensor 't': data_offsets [0, 8] span 8 bytes, its shape [] of F32 needs 4");
    check_bad(tg_failed_, T1("\"shape\":[1],\"data_offsets\":[4,8]"), 6,
              "truncated: tensor 't' ends at byte 8 of the data, which holds 6");
    /* huge shapes: the element count overflows, or the bytes are not in the file */
    check_bad(tg_failed_, T1("\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]"), 4,
              "tensor 't': its shape's element count overflows");
    check_bad(tg_failed_, T1("\"shape\":[1099511627776,1024],\"data_offsets\":[0,4]"), 4,
              "tensor 't': data_offsets [0, 4] span 4 bytes, its shape [1099511627776,1024] of F32 needs 4503599627370496");
    check_bad(tg_failed_, T1("\"shape\":[1e300],\"data_offsets\":[0,4]"), 4, "tensor 't': shape[0] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[2305843009213693952],\"data_offsets\":[0,9223372036854775808]"), 4,
              "tensor 't': shape[0] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[0,4611686018427387904],\"data_offsets\":[0,0]"), 0,
              "tensor 't': shape[1] is not a non-negative integer");
    check_bad(tg_failed_, T1("\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]"), 0,
              "tensor 't': its shape's element count overflows");
    check_bad(tg_failed_,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[7,9]}}",
              9, "tensors 'a' [0, 8] and 'b' [7, 9] overlap");
    check_bad(tg_failed_,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}",
              16, "tensors 'a' [0, 16] and 'b' [8, 10] overlap");
    check_bad(tg_failed_,
              "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
              2, "tensor 'a' appears twice");
    check_bad(tg_failed_, "{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k' is not a string");
    check_bad(tg_failed_, "{\"__metadata__\":[]}", 0, "\"__metadata__\" is not a JSON object");
    /* the header length itself */
    uint8_t huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    CHECK_ERROR(tg_safetensors_load_buffer(huge, sizeof huge, tg_test_device(), NULL),
                "tg_safetensors_load_buffer: '<buffer>': truncated: the header length is 18446744073709551615 bytes, "
                "only 8 follow");
    bytes f = make_file(T1("\"shape\":[1],\"data_offsets\":[0,4]"), "abcd", 4);
    memcpy(strstr((char *)f.p + 8, "F32"), "Q32", 3);
    CHECK_ERROR(tg_safetensors_load_buffer(f.p, f.n, tg_test_device(), NULL),
                "tg_safetensors_load_buffer: '<buffer>': tensor 't': dtype 'Q32' is not supported");
    CHECK(tg_last_status() == TG_ERR_DTYPE);
    free(f.p);
    CHECK_ERROR(tg_safetensors_load_buffer(NULL, 4, tg_test_device(), NULL), "tg_safetensors_load_buffer: data is NULL");
    CHECK_ERROR(tg_safetensors_load(NULL, tg_test_device(), NULL), "tg_safetensors_load: path is NULL");
    CHECK_ERROR(tg_safetensors_load("x", NULL, NULL), "tg_safetensors_load: device is NULL");
}

TEST(save_errors_and_atomicity) {
    tg_device *dev = tg_test_device();
    tg_state_dict *sd = tg_state_dict_new();
    tg_state_dict_set(sd, "w", tg_zeros(TG_F32, TG_SHAPE(1000), dev));
    CHECK_ERROR(tg_safetensors_save(NULL, "x", NULL), "tg_safetensors_save: the state dict is NULL");
    CHECK_ERROR(tg_safetensors_save(sd, NULL, NULL), "tg_safetensors_save: path is NULL");
    CHECK_ERROR_CONTAINS(tg_safetensors_save(sd, tmp("no/such/dir.safetensors"), NULL), "No such file or directory");
    tg_metadata dup = { 2, (char *[]){ "k", "k" }, (char *[]){ "1", "2" } };
    char want[512];
    snprintf(want, sizeof want, "tg_safetensors_save: '%s': metadata key 'k' appears twice", tmp("m.safetensors"));
    CHECK_ERROR(tg_safetensors_save(sd, tmp("m.safetensors"), &dup), want);
    tg_state_dict *bad = tg_state_dict_new();
    tg_state_dict_set(bad, "__metadata__", tg_zeros(TG_F32, TG_SHAPE(1), dev));
    snprintf(want, sizeof want, "tg_safetensors_save: '%s': the name \"__metadata__\" is reserved", tmp("m.safetensors"));
    CHECK_ERROR(tg_safetensors_save(bad, tmp("m.safetensors"), NULL), want);
    tg_state_dict_free(bad);

    /* A write that fails half-way (the file size limit) leaves the old file as it was
     * and no temporary behind. */
    const char *path = tmp("keep.safetensors");
    write_all(path, "old contents", 12);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK_ERROR_CONTAINS(tg_safetensors_save(sd, path, NULL), "File too large");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    bytes b = read_all(path);
    CHECK(b.n == 12 && !memcmp(b.p, "old contents", 12));
    free(b.p);
    /* the target is a directory: the rename fails, the temporary goes */
    mkdir(tmp("adir"), 0700);
    CHECK_ERROR_CONTAINS(tg_safetensors_save(sd, tmp("adir"), NULL), "cannot rename");
    int leftovers = 0;
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));) leftovers += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(leftovers == 0);
    rmdir(tmp("adir"));
    /* and a successful save replaces the old file */
    CHECK(tg_safetensors_save(sd, path, NULL) == TG_OK);
    tg_state_dict *back = tg_safetensors_load(path, dev, NULL);
    CHECK(back && tg_numel(tg_state_dict_get(back, "w")) == 1000);
    tg_state_dict_free(back);
    tg_state_dict_free(sd);
}

/* ------------------------------------------------------------- modules and optimizers */

static tg_module *small_cnn(tg_device *dev) {
    return tg_sequential(tg_conv2d_new(3, 4, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev), tg_batchnorm2d_new(4, NULL, dev),
                         tg_relu_new(), tg_flatten_new(1, -1), tg_linear_new(4 * 5 * 5, 3, NULL, dev));
}

TEST(module_save_load_strict_and_not) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(3);
    tg_module *a = small_cnn(dev), *b = small_cnn(dev);
    CHECK(a && b);
    tg_scope_begin();
    tg_module_forward(a, tg_randn(TG_F32, TG_SHAPE(2, 3, 5, 5), dev)); /* running stats, num_batches_tracked = 1 */
    tg_scope_end();
    CHECK(tg_module_save(a, tmp("cnn.safetensors"), NULL) == TG_OK);
    CHECK(tg_module_load(b, tmp("cnn.safetensors"), NULL) == TG_OK);
    tg_state_dict *sa = tg_module_state_dict(a), *sb = tg_module_state_dict(b);
    CHECK(tg_state_dict_size(sa) == 9 && tg_state_dict_size(sb) == 9);
    for (int i = 0; i < tg_state_dict_size(sa); i++)
        if (!same_bits(tg_state_dict_tensor(sa, i), tg_state_dict_get(sb, tg_state_dict_name(sa, i))))
            FAIL_("%s differs after loading", tg_state_dict_name(sa, i));
    tg_tensor *nbt = tg_state_dict_get(sb, "1.num_batches_tracked");
    CHECK(nbt && tg_dtype_of(nbt) == TG_I64 && tg_item(nbt) == 1);
    tg_state_dict_free(sa);
    tg_state_dict_free(sb);

    /* another architecture: an extra layer, a missing one, a mis-shaped one */
    tg_module *c = tg_sequential(tg_conv2d_new(3, 4, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev),
                                 tg_batchnorm2d_new(4, NULL, dev), tg_relu_new(), tg_flatten_new(1, -1),
                                 tg_linear_new(4 * 5 * 5, 3, NULL, dev), tg_linear_new(3, 2, NULL, dev));
    tg_module *d = tg_sequential(tg_conv2d_new(3, 4, 3, &(tg_conv_layer_opts){ .padding = 1 }, dev));
    char want[700];
    snprintf(want, sizeof want, "tg_module_load: '%s': missing: 5.weight, 5.bias", tmp("cnn.safetensors"));
    CHECK_ERROR(tg_module_load(c, tmp("cnn.safetensors"), NULL), want);
    char report[300] = "";
    CHECK(tg_module_load(c, tmp("cnn.safetensors"), &(tg_load_opts){ .non_strict = true, .report = report,
                                                                     .report_size = sizeof report }) == TG_OK);
    CHECK(!strcmp(report, "missing: 5.weight, 5.bias"));
    snprintf(want, sizeof want,
             "tg_module_load: '%s': unexpected: 1.num_batches_tracked, 1.bias, 1.running_mean, 1.running_var, "
             "1.weight, 4.bias, 4.weight", /* the file's order: 8-byte dtypes first, then by name */
             tmp("cnn.safetensors"));
    CHECK_ERROR(tg_module_load(d, tmp("cnn.safetensors"), NULL), want);
    CHECK(tg_module_load(d, tmp("cnn.safetensors"), &(tg_load_opts){ .non_strict = true }) == TG_OK);
    tg_module *e = tg_sequential(tg_conv2d_new(3, 5, 3, NULL, dev));
    snprintf(want, sizeof want,
             "tg_module_load: '%s': unexpected: 1.num_batches_tracked, 1.bias, 1.running_mean, 1.running_var, 1.weight, "
             "4.bias, 4.weight; shape differs: 0.weight is [5,3,3,3] in the module, [4,3,3,3] in the state dict, "
             "0.bias is [5] in the module, [4] in the state dict",
             tmp("cnn.safetensors"));
    CHECK_ERROR(tg_module_load(e, tmp("cnn.safetensors"), &(tg_load_opts){ .non_strict = true }), want);
    CHECK_ERROR_CONTAINS(tg_module_load(e, tmp("absent"), NULL), "tg_module_load: cannot open");
    tg_module_free(a), tg_module_free(b), tg_module_free(c), tg_module_free(d), tg_module_free(e);
}

static tg_optim *adam_on(tg_module *m) {
    tg_named ps;
    if (tg_module_parameters(m, true, &ps) != TG_OK) return NULL;
    tg_optim *o = tg_adam_new(ps.n, ps.tensors, &(tg_adam_opts){ .lr = TG_SOME(1e-2) });
    tg_named_free(&ps);
    return o;
}

TEST(optimizer_save_load) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(5);
    tg_module *m = tg_linear_new(3, 2, NULL, dev);
    tg_optim *o = adam_on(m);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(4, 3), dev);
    for (int s = 0; s < 3; s++) {
        tg_scope_begin();
        tg_optim_zero_grad(o);
        tg_backward(tg_sum(tg_mul(tg_module_forward(m, x), tg_module_forward(m, x)), TG_ALL, false));
        tg_optim_step(o);
        tg_scope_end();
    }
    CHECK(tg_optim_set_lr(o, 0, 0.005) == TG_OK);
    CHECK(tg_optim_save(o, tmp("adam.safetensors")) == TG_OK);
    tg_state_dict *raw = tg_safetensors_load(tmp("adam.safetensors"), tg_device_get("cpu"), NULL);
    CHECK(raw && tg_state_dict_get(raw, "state.0.exp_avg") && tg_state_dict_get(raw, "state.1.exp_avg_sq"));
    CHECK(raw && tg_item(tg_state_dict_get(raw, "state.0.step")) == 3);
    CHECK(raw && tg_item(tg_state_dict_get(raw, "param_groups.0.lr")) == 0.005);
    tg_state_dict_free(raw);
    tg_module *m2 = tg_linear_new(3, 2, NULL, dev);
    tg_optim *o2 = adam_on(m2);
    CHECK(tg_optim_load(o2, tmp("adam.safetensors")) == TG_OK);
    CHECK(tg_optim_get_lr(o2, 0) == 0.005);
    tg_optim_state s1, s2;
    CHECK(tg_optim_state_save(o, &s1) == TG_OK && tg_optim_state_save(o2, &s2) == TG_OK);
    CHECK(s1.n == s2.n);
    for (int i = 0; i < s1.n && i < s2.n; i++)
        if (strcmp(s1.items[i].name, s2.items[i].name) || !same_bits(s1.items[i].tensor, s2.items[i].tensor))
            FAIL_("entry %s differs", s1.items[i].name);
    tg_optim_state_free(&s1), tg_optim_state_free(&s2);
    /* a file of another optimizer's shape is refused, naming the path */
    tg_module *m3 = tg_linear_new(3, 5, NULL, dev);
    tg_optim *o3 = adam_on(m3);
    char want[600];
    snprintf(want, sizeof want, "tg_optim_load: '%s': 'exp_avg' does not have parameter 0's shape", tmp("adam.safetensors"));
    tg_clear_error();
    CHECK(tg_optim_load(o3, tmp("adam.safetensors")) != TG_OK);
    CHECK(strstr(tg_last_error(), "tg_optim_load: '") && strstr(tg_last_error(), "does not have parameter 0's shape"));
    tg_optim_free(o), tg_optim_free(o2), tg_optim_free(o3);
    tg_module_free(m), tg_module_free(m2), tg_module_free(m3);
}

/* ------------------------------------------------------------- resuming a training run */

typedef struct {
    tg_module *net;
    tg_optim *opt;
    tg_sched *sched;
} run;

static run run_new(tg_device *dev) {
    run r;
    r.net = tg_sequential(tg_linear_new(6, 16, NULL, dev), tg_relu_new(), tg_dropout_new(0.3),
                          tg_linear_new(16, 3, NULL, dev));
    r.opt = adam_on(r.net);
    r.sched = tg_step_lr_new(r.opt, 3, &(tg_step_lr_opts){ .gamma = TG_SOME(0.5) });
    return r;
}

static void run_free(run *r) {
    tg_sched_free(r->sched);
    tg_optim_free(r->opt);
    tg_module_free(r->net);
}

/* One step on a fixed batch (made without the generator, so only dropout draws). */
static double run_step(run *r, tg_device *dev) {
    float x[8 * 6];
    int32_t y[8];
    for (int i = 0; i < 8 * 6; i++) x[i] = (float)sin(0.7 * i);
    for (int i = 0; i < 8; i++) y[i] = i % 3;
    tg_scope_begin();
    tg_tensor *loss = tg_cross_entropy(tg_module_forward(r->net, tg_from_f32(x, TG_SHAPE(8, 6), dev)),
                                       tg_from_i32(y, TG_SHAPE(8), dev));
    double v = tg_item(loss);
    tg_optim_zero_grad(r->opt);
    tg_backward(loss);
    tg_optim_step(r->opt);
    tg_scope_end();
    tg_sched_step(r->sched);
    return v;
}

TEST(resume_is_bitwise_identical) {
    tg_device *dev = tg_test_device();
    double straight[10], resumed[10];
    tg_manual_seed(11);
    run a = run_new(dev);
    for (int s = 0; s < 10; s++) straight[s] = run_step(&a, dev);
    run_free(&a);

    tg_manual_seed(11);
    run b = run_new(dev);
    for (int s = 0; s < 5; s++) resumed[s] = run_step(&b, dev);
    tg_metadata user = { 2, (char *[]){ "epoch", "step" }, (char *[]){ "0", "5" } };
    CHECK(tg_checkpoint_save(&(tg_checkpoint){ b.net, b.opt, b.sched, &user }, tmp("run.ckpt")) == TG_OK);
    run_free(&b);

    tg_manual_seed(999); /* a different start: everything must come from the file */
    run c = run_new(dev);
    tg_metadata got;
    CHECK(tg_checkpoint_load(&(tg_checkpoint){ c.net, c.opt, c.sched, NULL }, tmp("run.ckpt"), &got) == TG_OK);
    CHECK(got.n == 2 && !strcmp(tg_metadata_get(&got, "step"), "5"));
    tg_metadata_free(&got);
    CHECK(tg_sched_last_epoch(c.sched) == 5);
    CHECK(tg_optim_get_lr(c.opt, 0) == 1e-2 * 0.5);
    for (int s = 5; s < 10; s++) resumed[s] = run_step(&c, dev);
    for (int s = 0; s < 10; s++)
        if (memcmp(&straight[s], &resumed[s], sizeof(double)))
            FAIL_("step %d: loss %.17g uninterrupted, %.17g resumed", s, straight[s], resumed[s]);
    CHECK(straight[9] < straight[0]);

    /* errors: a schedule past the saved epoch, a reserved key, a plain module file */
    char want[600];
    snprintf(want, sizeof want,
             "tg_checkpoint_load: '%s': the schedule is at epoch 10, past the saved epoch 5 (pass a freshly made schedule)",
             tmp("run.ckpt"));
    CHECK_ERROR(tg_checkpoint_load(&(tg_checkpoint){ c.net, c.opt, c.sched, NULL }, tmp("run.ckpt"), NULL), want);
    tg_metadata reserved = { 1, (char *[]){ "tapegrad.rng.seed" }, (char *[]){ "1" } };
    CHECK_ERROR(tg_checkpoint_save(&(tg_checkpoint){ c.net, .metadata = &reserved }, tmp("x.ckpt")),
                "tg_checkpoint_save: metadata key 'tapegrad.rng.seed' is reserved (keys starting \"tapegrad.\")");
    CHECK(tg_module_save(c.net, tmp("plain.safetensors"), NULL) == TG_OK);
    snprintf(want, sizeof want,
             "tg_checkpoint_load: '%s': not a tapegrad training checkpoint (metadata tapegrad.format is missing)",
             tmp("plain.safetensors"));
    CHECK_ERROR(tg_checkpoint_load(&(tg_checkpoint){ .model = c.net }, tmp("plain.safetensors"), NULL), want);
    CHECK_ERROR(tg_checkpoint_load(&(tg_checkpoint){ 0 }, tmp("run.ckpt"), NULL),
                "tg_checkpoint_load: the checkpoint has no model");
    run_free(&c);
}

TEST(rng_state) {
    tg_manual_seed(42);
    tg_rng_state s0 = tg_get_rng_state();
    CHECK(s0.seed == 42 && s0.offset == 0);
    tg_tensor *a = tg_rand(TG_F32, TG_SHAPE(10), tg_test_device());
    tg_rng_state s1 = tg_get_rng_state();
    CHECK(s1.seed == 42 && s1.offset == 10);
    tg_tensor *b = tg_rand(TG_F32, TG_SHAPE(7), tg_test_device());
    tg_set_rng_state(s1);
    CHECK(same_bits(b, tg_rand(TG_F32, TG_SHAPE(7), tg_test_device())));
    tg_set_rng_state(s0);
    CHECK(same_bits(a, tg_rand(TG_F32, TG_SHAPE(10), tg_test_device())));
}

/* ------------------------------------------------------------- PyTorch as the peer */

static const char *g_python;

static bool have_torch(void) {
    static int known;
    if (!known) {
        const char *cands[] = { getenv("TG_PYTHON"), "/usr/bin/python3" };
        char cmd[400];
        for (int i = 0; i < 2 && !g_python; i++) {
            if (!cands[i] || !*cands[i]) continue;
            snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", cands[i]);
            if (system(cmd) == 0) g_python = cands[i];
        }
        known = 1;
    }
    return g_python && getenv("TG_SAFETENSORS_PEER");
}

static bool run_peer(const char *args) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s %s", g_python, getenv("TG_SAFETENSORS_PEER"), args);
    return system(cmd) == 0;
}

static double max_diff(tg_tensor *a, tg_tensor *b) {
    if (!a || !b || tg_numel(a) != tg_numel(b)) return INFINITY;
    double *x = tg_test_values(a), *y = tg_test_values(b), m = 0;
    for (int64_t i = 0; x && y && i < tg_numel(a); i++) m = fmax(m, fabs(x[i] - y[i]));
    free(x), free(y);
    return m;
}

TEST(torch_reads_our_file) {
    if (!have_torch()) SKIP("no python3 with torch (or TG_SAFETENSORS_PEER unset)");
    tg_device *dev = tg_test_device();
    tg_manual_seed(21);
    tg_module *net = small_cnn(dev);
    for (int s = 0; s < 3; s++) { /* running statistics away from their initial values */
        tg_scope_begin();
        tg_module_forward(net, tg_add(tg_mul(tg_randn(TG_F32, TG_SHAPE(4, 3, 5, 5), dev), tg_scalar(TG_F32, 2, dev)),
                                      tg_scalar(TG_F32, 0.5, dev)));
        tg_scope_end();
    }
    tg_module_eval(net);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 5, 5), dev);
    tg_tensor *y = tg_module_forward(net, x);
    CHECK(tg_module_save(net, tmp("ours.safetensors"), NULL) == TG_OK);
    tg_state_dict *io = tg_state_dict_new();
    tg_state_dict_set(io, "x", x);
    CHECK(tg_safetensors_save(io, tmp("x.safetensors"), NULL) == TG_OK);
    tg_state_dict_free(io);
    char args[800];
    snprintf(args, sizeof args, "read %s %s %s", tmp("ours.safetensors"), tmp("x.safetensors"), tmp("y.safetensors"));
    CHECK(run_peer(args));
    tg_state_dict *out = tg_safetensors_load(tmp("y.safetensors"), dev, NULL);
    CHECK(out != NULL);
    double d = out ? max_diff(y, tg_state_dict_get(out, "y")) : INFINITY;
    if (!(d < 1e-5)) FAIL_("torch's output differs from ours by %g", d);
    tg_state_dict_free(out);
    tg_module_free(net);
}

TEST(we_read_torchs_file) {
    if (!have_torch()) SKIP("no python3 with torch (or TG_SAFETENSORS_PEER unset)");
    tg_device *dev = tg_test_device();
    char args[800];
    snprintf(args, sizeof args, "write %s %s", tmp("theirs.safetensors"), tmp("io.safetensors"));
    CHECK(run_peer(args));
    tg_manual_seed(1);
    tg_module *net = small_cnn(dev);
    CHECK(tg_module_load(net, tmp("theirs.safetensors"), NULL) == TG_OK);
    CHECK(tg_item(tg_module_get_buffer(net, "1.num_batches_tracked")) == 7);
    tg_optim *o = adam_on(net); /* before any forward: no views of the parameters alive */
    CHECK(o != NULL);
    tg_module_eval(net);
    tg_state_dict *io = tg_safetensors_load(tmp("io.safetensors"), dev, NULL);
    CHECK(io != NULL);
    if (io) {
        double d = max_diff(tg_module_forward(net, tg_state_dict_get(io, "x")), tg_state_dict_get(io, "y"));
        if (!(d < 1e-5)) FAIL_("our output differs from torch's by %g", d);
        /* and it fine-tunes here: a few Adam steps lower the loss on that batch */
        tg_tensor *labels = tg_from_i32((int32_t[]){ 2, 0 }, TG_SHAPE(2), dev);
        double first = 0, last = 0;
        for (int s = 0; s < 5; s++) {
            tg_scope_begin();
            tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, tg_state_dict_get(io, "x")), labels);
            last = tg_item(loss);
            if (s == 0) first = last;
            tg_optim_zero_grad(o);
            tg_backward(loss);
            tg_optim_step(o);
            tg_scope_end();
        }
        if (!(last < first)) FAIL_("fine-tuning: loss %g after 5 steps, %g before", last, first);
    }
    tg_optim_free(o);
    tg_state_dict_free(io);
    tg_module_free(net);
}

static void cleanup(void) {
    DIR *d = opendir(g_dir);
    char p[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(g_dir);
}

static bool ready(void) {
    if (!tg_test_device_ready()) return false;
    tg_safetensors_load_buffer("", 0, tg_test_device(), NULL);
    if (strstr(tg_last_error(), "tapegrad was built without cJSON")) { /* -Dcjson=disabled */
        printf("skipped: %s\n", tg_last_error());
        return false;
    }
    if (!mkdtemp(g_dir)) return false;
    atexit(cleanup);
    return true;
}

TG_TEST_MAIN_WITH(ready, &tg_case_round_trip_every_dtype, &tg_case_hand_written_file, &tg_case_truncated_at_every_cut,
                  &tg_case_corrupt_headers, &tg_case_save_errors_and_atomicity, &tg_case_module_save_load_strict_and_not,
                  &tg_case_optimizer_save_load, &tg_case_resume_is_bitwise_identical, &tg_case_rng_state,
                  &tg_case_torch_reads_our_file, &tg_case_we_read_torchs_file)
