/* tg_cifar_load and tg_cifar_load_dir: CIFAR-10 and CIFAR-100 files written by the test
 * with a known pixel pattern and labels, read back exactly; every malformed-file case
 * fails with its message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "readers_files.h"
#include "tapegrad/data.h"

/* The pixel of record r (across all files of a test), byte j of its 3072. */
static uint8_t pixel(int r, int j) { return (uint8_t)(r * 37 + j * 11 + (j >> 10)); }

/* A file of n records starting at record r0; labels[k] are its label bytes (1 or 2 a record). */
static const char *write_cifar(const char *name, int r0, int n, int label_bytes, const uint8_t *labels) {
    size_t rec = (size_t)label_bytes + 3072;
    uint8_t *b = malloc(rec * (size_t)n + 1);
    for (int i = 0; i < n; i++) {
        uint8_t *p = b + rec * (size_t)i;
        memcpy(p, labels + i * label_bytes, (size_t)label_bytes);
        for (int j = 0; j < 3072; j++) p[label_bytes + j] = pixel(r0 + i, j);
    }
    const char *path = write_file(name, b, rec * (size_t)n);
    free(b);
    return path;
}

/* Checks images (n,3,32,32) against the pattern and labels against want. */
static void check_set(int *tg_failed_, const tg_labeled_images *d, int n, const int64_t *want) {
    CHECK(d->images && d->labels);
    if (!d->images || !d->labels) return;
    CHECK(tg_ndim(d->images) == 4 && tg_size(d->images, 0) == n && tg_size(d->images, 1) == 3 &&
          tg_size(d->images, 2) == 32 && tg_size(d->images, 3) == 32);
    CHECK(tg_dtype_of(d->images) == TG_U8 && tg_dtype_of(d->labels) == TG_I64);
    CHECK(tg_device_of(d->images) == tg_test_device());
    uint8_t *px = malloc((size_t)n * 3072);
    int64_t *lab = malloc((size_t)n * sizeof *lab);
    CHECK(tg_copy_to_host(d->images, px, (size_t)n * 3072) == TG_OK);
    CHECK(tg_copy_to_host(d->labels, lab, (size_t)n * sizeof *lab) == TG_OK);
    int bad = 0;
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < 3072; j++) bad += px[r * 3072 + j] != pixel(r, j);
        CHECK(lab[r] == want[r]);
    }
    CHECK(bad == 0);
    /* plane order R, G, B, each row-major: image 1, channel 2 (blue), row 5, column 7 */
    if (n > 1) CHECK(px[3072 + 2 * 1024 + 5 * 32 + 7] == pixel(1, 2048 + 167));
    free(px);
    free(lab);
}

TEST(cifar10_files) {
    const uint8_t l1[3] = { 3, 0, 9 }, l2[2] = { 5, 1 };
    const char *paths[2] = { NULL, NULL };
    char p1[4096];
    snprintf(p1, sizeof p1, "%s", write_cifar("c10_a.bin", 0, 3, 1, l1));
    paths[0] = p1;
    paths[1] = write_cifar("c10_b.bin", 3, 2, 1, l2);
    tg_labeled_images d;
    CHECK(tg_cifar_load(2, paths, NULL, tg_test_device(), &d) == TG_OK);
    check_set(tg_failed_, &d, 5, (const int64_t[]){ 3, 0, 9, 5, 1 });
    CHECK(d.classes == NULL);
}

TEST(cifar100_fine_and_coarse) {
    const uint8_t l[6] = { 19, 99, 0, 0, 7, 42 }; /* (coarse, fine) a record */
    const char *path = write_cifar("c100.bin", 0, 3, 2, l);
    tg_labeled_images d;
    CHECK(tg_cifar_load(1, &path, &(tg_cifar_opts){ .format = TG_CIFAR100 }, tg_test_device(), &d) == TG_OK);
    check_set(tg_failed_, &d, 3, (const int64_t[]){ 99, 0, 42 });
    CHECK(tg_cifar_load(1, &path, &(tg_cifar_opts){ .format = TG_CIFAR100, .coarse = true }, tg_test_device(), &d) ==
          TG_OK);
    check_set(tg_failed_, &d, 3, (const int64_t[]){ 19, 0, 7 });
}

static void write_c10_dir(const char *dir, bool names) {
    char name[256];
    make_dir(dir);
    for (int b = 0; b < 5; b++) {
        uint8_t l[2] = { (uint8_t)(2 * b), (uint8_t)(2 * b + 1) };
        snprintf(name, sizeof name, "%s/data_batch_%d.bin", dir, b + 1);
        write_cifar(name, 2 * b, 2, 1, l);
    }
    snprintf(name, sizeof name, "%s/test_batch.bin", dir);
    write_cifar(name, 0, 1, 1, (const uint8_t[]){ 4 });
    snprintf(name, sizeof name, "%s/batches.meta.txt", dir);
    if (names)
        write_text(name, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
}

TEST(cifar10_dir) {
    write_c10_dir("c10dir", true);
    tg_labeled_images d;
    CHECK(tg_cifar_load_dir(tmp_path("c10dir"), true, NULL, tg_test_device(), &d) == TG_OK);
    check_set(tg_failed_, &d, 10, (const int64_t[]){ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 });
    CHECK(tg_strings_count(d.classes) == 10);
    CHECK(d.classes && strcmp(tg_strings_get(d.classes, 0), "airplane") == 0);
    CHECK(d.classes && strcmp(tg_strings_get(d.classes, 9), "truck") == 0);
    CHECK_ERROR(tg_strings_get(d.classes, 10), "tg_strings_get: index 10 is out of range for 10 strings");
    tg_strings_free(d.classes);
    CHECK(tg_cifar_load_dir(tmp_path("c10dir"), false, NULL, tg_test_device(), &d) == TG_OK);
    check_set(tg_failed_, &d, 1, (const int64_t[]){ 4 });
    tg_strings_free(d.classes);

    write_c10_dir("c10nonames", false);
    CHECK(tg_cifar_load_dir(tmp_path("c10nonames"), false, NULL, tg_test_device(), &d) == TG_OK);
    CHECK(d.classes == NULL && d.images != NULL);
}

TEST(cifar100_dir) {
    make_dir("c100dir");
    write_cifar("c100dir/train.bin", 0, 2, 2, (const uint8_t[]){ 1, 2, 3, 4 });
    char names[1024] = "", coarse[256] = "";
    for (int i = 0; i < 100; i++) snprintf(names + strlen(names), sizeof names - strlen(names), "f%d\r\n", i);
    for (int i = 0; i < 20; i++) snprintf(coarse + strlen(coarse), sizeof coarse - strlen(coarse), "c%d\n", i);
    write_text("c100dir/fine_label_names.txt", names);
    write_text("c100dir/coarse_label_names.txt", coarse);
    tg_labeled_images d;
    CHECK(tg_cifar_load_dir(tmp_path("c100dir"), true, &(tg_cifar_opts){ .format = TG_CIFAR100 }, tg_test_device(),
                            &d) == TG_OK);
    check_set(tg_failed_, &d, 2, (const int64_t[]){ 2, 4 });
    CHECK(tg_strings_count(d.classes) == 100 && strcmp(tg_strings_get(d.classes, 42), "f42") == 0);
    tg_strings_free(d.classes);
    CHECK(tg_cifar_load_dir(tmp_path("c100dir"), true, &(tg_cifar_opts){ .format = TG_CIFAR100, .coarse = true },
                            tg_test_device(), &d) == TG_OK);
    check_set(tg_failed_, &d, 2, (const int64_t[]){ 1, 3 });
    CHECK(tg_strings_count(d.classes) == 20 && strcmp(tg_strings_get(d.classes, 19), "c19") == 0);
    tg_strings_free(d.classes);
    CHECK_ERROR(tg_cifar_load_dir(tmp_path("c100dir"), false, &(tg_cifar_opts){ .format = TG_CIFAR100 },
                                  tg_test_device(), &d),
                msgf("tg_cifar_load_dir: cannot open '%s/test.bin': No such file or directory", tmp_path("c100dir")));
}

TEST(errors) {
    tg_device *dev = tg_test_device();
    tg_labeled_images d;
    const char *missing = tmp_path("nope.bin");
    CHECK_ERROR(tg_cifar_load(1, &missing, NULL, dev, &d),
                msgf("tg_cifar_load: cannot open '%s': No such file or directory", missing));
    CHECK(tg_last_status() == TG_ERR_IO && d.images == NULL && d.labels == NULL);

    uint8_t *b = calloc(3074 * 2, 1);
    const char *cut = write_file("cut.bin", b, 3073 + 100);
    CHECK_ERROR(tg_cifar_load(1, &cut, NULL, dev, &d),
                msgf("tg_cifar_load: '%s' is truncated: 3173 bytes is not a multiple of the 3073-byte CIFAR-10 "
                     "record", cut));
    const char *empty = write_file("empty.bin", b, 0);
    CHECK_ERROR(tg_cifar_load(1, &empty, NULL, dev, &d),
                msgf("tg_cifar_load: '%s' is empty, not a CIFAR-10 file", empty));
    b[3073] = 10; /* record 1 */
    const char *bad = write_file("badlabel.bin", b, 3073 * 2);
    CHECK_ERROR(tg_cifar_load(1, &bad, NULL, dev, &d),
                msgf("tg_cifar_load: '%s' record 1: label 10 is out of range 0..9", bad));
    CHECK(tg_last_status() == TG_ERR_IO);
    /* as CIFAR-100 the same bytes are 2 records of 3074 less 2 bytes */
    CHECK_ERROR(tg_cifar_load(1, &bad, &(tg_cifar_opts){ .format = TG_CIFAR100 }, dev, &d),
                msgf("tg_cifar_load: '%s' is truncated: 6146 bytes is not a multiple of the 3074-byte CIFAR-100 "
                     "record", bad));
    memset(b, 0, 3074 * 2);
    b[3074] = 20;
    bad = write_file("badcoarse.bin", b, 3074 * 2);
    CHECK_ERROR(tg_cifar_load(1, &bad, &(tg_cifar_opts){ .format = TG_CIFAR100 }, dev, &d),
                msgf("tg_cifar_load: '%s' record 1: coarse label 20 is out of range 0..19", bad));
    b[3074] = 0;
    b[1] = 100;
    bad = write_file("badfine.bin", b, 3074 * 2);
    CHECK_ERROR(tg_cifar_load(1, &bad, &(tg_cifar_opts){ .format = TG_CIFAR100 }, dev, &d),
                msgf("tg_cifar_load: '%s' record 0: fine label 100 is out of range 0..99", bad));
    free(b);

    CHECK_ERROR(tg_cifar_load(0, &bad, NULL, dev, &d), "tg_cifar_load: no files given (n = 0)");
    CHECK_ERROR(tg_cifar_load(1, &bad, &(tg_cifar_opts){ .coarse = true }, dev, &d),
                "tg_cifar_load: coarse labels exist only in CIFAR-100");
    CHECK_ERROR(tg_cifar_load(1, &bad, &(tg_cifar_opts){ .format = 7 }, dev, &d),
                "tg_cifar_load: unknown format 7 (expected TG_CIFAR10 or TG_CIFAR100)");
    CHECK_ERROR(tg_cifar_load(1, (const char *const[]){ NULL }, NULL, dev, &d), "tg_cifar_load: a path is NULL");
    CHECK_ERROR(tg_cifar_load(1, &bad, NULL, dev, NULL), "tg_cifar_load: out is NULL");
    CHECK_ERROR(tg_cifar_load(1, &bad, NULL, NULL, &d), "tg_cifar_load: device is NULL");
    CHECK_ERROR(tg_cifar_load_dir(NULL, true, NULL, dev, &d), "tg_cifar_load_dir: root is NULL");

    write_c10_dir("c10few", false);
    write_text("c10few/batches.meta.txt", "a\nb\nc\n");
    CHECK_ERROR(tg_cifar_load_dir(tmp_path("c10few"), true, NULL, dev, &d),
                msgf("tg_cifar_load_dir: '%s/batches.meta.txt' has 3 class names, expected 10", tmp_path("c10few")));
    CHECK(d.classes == NULL && d.images == NULL);
}

TG_TEST_MAIN(&tg_case_cifar10_files, &tg_case_cifar100_fine_and_coarse, &tg_case_cifar10_dir, &tg_case_cifar100_dir,
             &tg_case_errors)
