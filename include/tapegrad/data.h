/* Data: dataset readers (IDX, CIFAR, image folders, CSV, PNG), loaders with background
 * prefetch, augmentation, and checkpoint files (safetensors).
 * Included by tapegrad.h; it can also be included on its own. */
#ifndef TAPEGRAD_DATA_H
#define TAPEGRAD_DATA_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the IDX file at path into a new tensor on dev, owned by the current scope.
 *
 * An IDX file is the magic bytes 0x00 0x00 <type> <ndim>, then ndim big-endian u32
 * sizes, then the elements row-major and big-endian. The tensor has those sizes and
 * a dtype by type code: 0x08 (unsigned byte) -> TG_U8, 0x09 (signed byte) and 0x0B
 * (i16) -> TG_I32 (widened, lossless), 0x0C (i32) -> TG_I32, 0x0D (f32) -> TG_F32,
 * 0x0E (f64) -> TG_F64. Bytes after the data are ignored.
 *
 * A gzip-compressed file (magic 0x1f 0x8b, as the MNIST downloads ship: "*.gz") is
 * decompressed on the fly when tapegrad was built with zlib; without zlib such a file
 * is refused with a message saying so. Memory grows with the data actually read, so
 * a corrupt header claiming huge sizes does not allocate them up front.
 *
 * Returns NULL with tg_last_error() naming the path and the problem, status
 * TG_ERR_IO for a missing, unreadable, truncated or malformed file ("tg_idx_load:
 * cannot open 'x.gz': No such file or directory", "... is truncated: expected 784
 * bytes of data, got 100"), TG_ERR_INVALID for a NULL path, TG_ERR_NOMEM when memory
 * runs out, or the device's error when dev is NULL or the upload fails. */
TG_API tg_tensor *tg_idx_load(const char *path, tg_device *dev);

/* ---------------------------------------------------------------- readers: CIFAR, image folders, CSV, PNG
 *
 *     tg_labeled_images train;
 *     if (tg_cifar_load_dir("data/cifar-10-batches-bin", true, NULL, dev, &train) != TG_OK)
 *         fprintf(stderr, "%s\n", tg_last_error());
 *     // train.images (50000,3,32,32) u8, train.labels (50000) i64, train.classes "airplane", ...
 *     tg_strings_free(train.classes);
 *
 * Every reader names the function the user called, the path and the problem in its
 * message, with status TG_ERR_IO for a missing, unreadable or malformed file,
 * TG_ERR_INVALID for a bad argument and TG_ERR_NOMEM when memory runs out. Memory
 * follows the bytes actually read: a corrupt header cannot make a reader allocate what
 * it claims up front. */

/* A list of strings (class names, column names); free with tg_strings_free (NULL is
 * fine). The strings live as long as the list. */
typedef struct tg_strings tg_strings;
TG_API int tg_strings_count(const tg_strings *s); /* 0 for NULL */
/* The i-th string, or NULL with a message when i is out of range. */
TG_API const char *tg_strings_get(const tg_strings *s, int i);
TG_API void tg_strings_free(tg_strings *s);

/* Images and their labels, as the dataset readers return them. The tensors belong to
 * the current scope; classes (the name of each label, or NULL where the files name
 * none) belongs to the caller: tg_strings_free(out.classes). On failure every field is
 * NULL. */
typedef struct {
    tg_tensor *images;   /* (N,C,H,W) u8 */
    tg_tensor *labels;   /* (N) i64, PyTorch's label dtype */
    tg_strings *classes; /* label k is named tg_strings_get(classes, k) */
} tg_labeled_images;

/* CIFAR binary files. A CIFAR-10 record is 1 label byte + 3072 pixel bytes (1024 R,
 * 1024 G, 1024 B, each a row-major 32x32 plane); a CIFAR-100 record is a coarse label
 * byte, a fine label byte, then the same 3072. */
typedef enum { TG_CIFAR10 = 0, TG_CIFAR100 = 1 } tg_cifar_format;
typedef struct {
    tg_cifar_format format; /* TG_CIFAR10 by default */
    bool coarse;            /* CIFAR-100: the 20 coarse labels instead of the 100 fine ones */
} tg_cifar_opts;

/* Reads n CIFAR files (data_batch_1.bin ... data_batch_5.bin; train.bin) in order into
 * out: images (N,3,32,32) u8 and labels (N) i64 on dev, out->classes NULL. opts NULL
 * means CIFAR-10. Errors (TG_ERR_IO): a missing or unreadable file, an empty one, a
 * size that is not a multiple of the record size ("tg_cifar_load: 'b.bin' is
 * truncated: 3000 bytes is not a multiple of the 3073-byte CIFAR-10 record"), a label
 * out of range ("... record 7: label 12 is out of range 0..9"). */
TG_API tg_status tg_cifar_load(int n, const char *const *paths, const tg_cifar_opts *opts, tg_device *dev,
                               tg_labeled_images *out);
/* Reads the train (train = true) or test split of an extracted CIFAR directory by its
 * standard file names: CIFAR-10 data_batch_1..5.bin or test_batch.bin, class names
 * from batches.meta.txt; CIFAR-100 train.bin or test.bin, class names from
 * fine_label_names.txt (coarse_label_names.txt with opts->coarse). Without the names
 * file out->classes is NULL; a names file with fewer lines than classes is an error. */
TG_API tg_status tg_cifar_load_dir(const char *root, bool train, const tg_cifar_opts *opts, tg_device *dev,
                                   tg_labeled_images *out);

/* PNG images (through libspng; built without it, each of these fails with "... tapegrad
 * was built without libspng"). Images of more than TG_IMAGE_MAX_PIXELS pixels, or
 * wider or taller than TG_IMAGE_MAX_SIDE, are refused before any pixel memory is taken. */
#define TG_IMAGE_MAX_PIXELS ((int64_t)1 << 28)
#define TG_IMAGE_MAX_SIDE ((int64_t)1 << 20)
/* The channels tg_read_image returns (torchvision's ImageReadMode, plus DEFAULT). */
typedef enum {
    TG_IMAGE_MODE_DEFAULT = 0, /* 1 for a gray file, else 3 (RGB); alpha is dropped */
    TG_IMAGE_MODE_UNCHANGED,   /* the file's own: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palette: 3, 4 with tRNS) */
    TG_IMAGE_MODE_GRAY,        /* 1; colour becomes (19595 R + 38470 G + 7471 B + 2^15) >> 16, as PIL's "L" */
    TG_IMAGE_MODE_GRAY_ALPHA,  /* 2 */
    TG_IMAGE_MODE_RGB,         /* 3; gray is repeated */
    TG_IMAGE_MODE_RGB_ALPHA,   /* 4; alpha is 255 where the file has none */
} tg_image_mode;

/* Decodes the PNG at path (gray, gray+alpha, RGB, RGBA or palette; 1 to 16 bits) into a
 * new u8 tensor (C,H,W) on dev, C by mode. 16-bit samples keep their high byte (v >>
 * 8); 1-, 2- and 4-bit gray is scaled to 0..255; tRNS transparency becomes alpha.
 * Errors: TG_ERR_IO for a missing file or one that is not a valid PNG (the message
 * carries libspng's reason), or one over the size limits; TG_ERR_INVALID for a
 * NULL path or a bad mode. */
TG_API tg_tensor *tg_read_image(const char *path, tg_image_mode mode, tg_device *dev);

/* Writes image as an 8-bit PNG at path, atomically (a temporary file in the same
 * folder renamed over path, so a reader never sees half a file). image is (C,H,W) with
 * C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), or (H,W) for gray; u8 is written
 * as is, f32 and f64 as torchvision's save_image does: x*255+0.5 clamped to [0,255]
 * and truncated (NaN writes 0). Any device and strides. Returns TG_OK, TG_ERR_SHAPE,
 * TG_ERR_DTYPE for another dtype, TG_ERR_IO when the file cannot be written. */
TG_API tg_status tg_write_png(tg_tensor *image, const char *path);

/* How tg_image_grid rescales (torchvision make_grid's normalize=True): values are
 * clamped to [low, high] and mapped to [0,1] by (x - low) / max(high - low, 1e-5);
 * low and high are range_low/range_high when range_set, else the min and max of the
 * whole batch, or of each image with scale_each. */
typedef struct {
    bool scale_each;
    bool range_set;
    double range_low, range_high;
} tg_grid_normalize;

/* torchvision.utils.make_grid: batch (N,C,H,W) (or one image (C,H,W), or (H,W)) laid
 * out nrow images a row, padding pixels of pad_value between and around them ->
 * (C, ceil(N/nrow)*(H+padding)+padding, min(nrow,N)*(W+padding)+padding). As
 * torchvision: a 1-channel batch becomes 3 channels, and a batch of one image is
 * returned as that image without padding. normalize NULL leaves values as they are;
 * else they are rescaled as above (float dtypes only). The result has batch's dtype and
 * device (pad_value is converted as tg_cast would); it is computed on the host. Errors:
 * NULL batch, nrow < 1, padding < 0, another rank, normalize on an integer dtype. */
TG_API tg_tensor *tg_image_grid(tg_tensor *batch, int nrow, int padding, double pad_value,
                                const tg_grid_normalize *normalize);
/* torchvision.utils.save_image(batch, path, nrow=nrow): tg_image_grid with padding 2,
 * pad 0, no normalize, then tg_write_png. */
TG_API tg_status tg_save_image(tg_tensor *batch, const char *path, int nrow);

/* An image folder, as torchvision's ImageFolder: root/<class>/.../<file>.png. The class
 * folders, sorted by strcmp, give labels 0..K-1. A class's images are the PNG files in
 * its folder and the folders below it, in torchvision's order: folders by their path,
 * each folder's files by name (strcmp). Only files ending in ".png" (any case) count:
 * other files are skipped, and so are hidden names (starting with '.', files and
 * folders alike: torchvision would take a hidden folder as a class), files in root
 * itself, symbolic links to folders below a class folder (they could loop) and
 * folders more than 32 levels down. */
typedef struct tg_image_folder tg_image_folder;
typedef struct {
    tg_image_mode mode; /* the channels each image is read with */
} tg_image_folder_opts;

/* Lists root; opts NULL means defaults. NULL with TG_ERR_IO when root cannot be read,
 * has no class folders, or a class folder has no PNG file (named in the message).
 * Free with tg_image_folder_free (NULL is fine). */
TG_API tg_image_folder *tg_image_folder_open(const char *root, const tg_image_folder_opts *opts);
TG_API void tg_image_folder_free(tg_image_folder *f);
TG_API int64_t tg_image_folder_size(const tg_image_folder *f); /* the number of images */
TG_API int tg_image_folder_num_classes(const tg_image_folder *f);
/* The class name of label k, "root/<class>/<file>" of item i and its label; NULL or
 * -1 with a message when out of range. Valid until tg_image_folder_free. */
TG_API const char *tg_image_folder_class_name(const tg_image_folder *f, int k);
TG_API const char *tg_image_folder_path(const tg_image_folder *f, int64_t i);
TG_API int64_t tg_image_folder_label(const tg_image_folder *f, int64_t i);
/* Decodes item i into a new u8 (C,H,W) CPU tensor owned by the calling thread's
 * current scope. Safe from several threads at once on one folder: it reads only what
 * tg_image_folder_open wrote. */
TG_API tg_tensor *tg_image_folder_read(const tg_image_folder *f, int64_t i);
/* Decodes every image into out: images (N,C,H,W) u8 on dev, labels (N) i64, classes a
 * copy of the class names. All images must have one size: the first of another size
 * is an error naming it and both sizes. */
TG_API tg_status tg_image_folder_load(const tg_image_folder *f, tg_device *dev, tg_labeled_images *out);

/* CSV files (RFC 4180): fields split by a delimiter, records by LF, CRLF or CR; a field
 * in double quotes may hold delimiters, line breaks and "" for a quote. Blank lines are
 * skipped. Cells are numbers read by strtod (surrounding spaces allowed; "nan" and
 * "inf" too); every record must have as many fields as the first. */
typedef enum {
    TG_CSV_LABEL_INTEGER = 0, /* the label cells are integers, taken as they are */
    TG_CSV_LABEL_FIRST_SEEN,  /* any strings; label k is the k-th distinct one met, top to bottom */
    TG_CSV_LABEL_SORTED,      /* any strings; label k is the k-th distinct one in strcmp order */
} tg_csv_label_mode;
typedef struct {
    char delimiter;          /* ',' by default */
    bool header;             /* the first record names the columns (default: it is data) */
    tg_dtype dtype;          /* TG_F32 (default) or TG_F64 */
    tg_opt_i64 label_column; /* TG_SOME(k): column k (negative counts from the end) holds labels */
    const char *label_name;  /* or the column with this header name (needs header) */
    tg_csv_label_mode label_mode;
} tg_csv_opts;
/* What tg_csv_load returns. data and labels belong to the current scope; columns and
 * classes to the caller (free both with tg_csv_table_clear). */
typedef struct {
    tg_tensor *data;     /* (N, number of columns without the label column), dtype of opts */
    tg_tensor *labels;   /* (N) i64, or NULL without a label column */
    tg_strings *columns; /* the header names of data's columns; NULL without header */
    tg_strings *classes; /* the string of each label in the string modes, else NULL */
} tg_csv_table;

/* Reads the CSV file at path into out on dev; opts NULL means defaults. Errors name
 * the file, line and column (1-based; the line where the record starts): "tg_csv_load:
 * 'x.csv' line 3, column 2: 'abc' is not a number", a ragged record ("... line 4 has 2
 * fields, expected 3"), an unterminated quote, a file without data records, a label
 * column out of range or not found, a label that is not an integer in
 * TG_CSV_LABEL_INTEGER mode. */
TG_API tg_status tg_csv_load(const char *path, const tg_csv_opts *opts, tg_device *dev, tg_csv_table *out);
/* Frees out->columns and out->classes and sets every field to NULL (the tensors stay
 * with their scope). NULL is fine. */
TG_API void tg_csv_table_clear(tg_csv_table *out);

/* ---------------------------------------------------------------- datasets and loaders */

/* ---------------------------------------------------------------- augmentation */

/* ---------------------------------------------------------------- checkpoints (safetensors) */

#ifdef __cplusplus
}
#endif
#endif
