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

/* ---------------------------------------------------------------- datasets and loaders
 *
 * A dataset is a length and get(i), which gives one sample: a few tensors (an image and
 * its label). A loader draws the indices of an epoch from a sampler (sequential, or
 * shuffled with seed + epoch, and sharded as torch's DistributedSampler), has worker
 * threads fetch, augment and stack them into batches ahead of the training loop, and
 * hands the batches out in sampler order:
 *
 *     tg_dataset *ds = tg_dataset_from_tensors(2, (tg_tensor *[]){ images, labels });
 *     tg_transform *aug[] = { tg_random_horizontal_flip(0.5),
 *                             tg_random_crop(&(tg_random_crop_opts){ .size = 28, .padding = 2 }),
 *                             tg_to_float() };
 *     tg_loader *train = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 128, .shuffle = true,
 *                                      .seed = 1, .num_workers = 2, .transforms = aug,
 *                                      .n_transforms = 3, .device = dev });
 *     tg_batch batch;
 *     for (int epoch = 0; epoch < 10; epoch++)
 *         while (tg_loader_next(train, &batch)) { ... batch.x (128,1,28,28), batch.y (128) ... }
 *     tg_loader_free(train);  tg_dataset_free(ds);  for (...) tg_transform_free(aug[i]);
 */

typedef struct tg_dataset tg_dataset;
typedef struct tg_loader tg_loader;
typedef struct tg_transform tg_transform;

/* The most tensors one sample (and one batch) has. */
#define TG_SAMPLE_MAX_FIELDS 8

/* PyTorch's TensorDataset: sample i is (tensors[0][i], tensors[1][i], ...), views along
 * the first axis. 1 <= n <= TG_SAMPLE_MAX_FIELDS tensors of any dtype and device, all
 * with the same (non-zero number of axes and) size on axis 0. The dataset takes its own
 * reference to each tensor (the caller's may go). Returns NULL with a message for n out
 * of range, a NULL or 0-d tensor, or first axes that differ. Free with tg_dataset_free. */
TG_API tg_dataset *tg_dataset_from_tensors(int n, tg_tensor *const *tensors);

/* A dataset from user code (a lazy reader). get writes n_fields tensors to out (owned
 * by the current scope, as ops return them; one that lives longer, a cached tensor, is
 * fine too: the loader takes its own reference) and returns TG_OK, or fails with a
 * status; the loader then reports tg_last_error() (or "get failed with <status>" when
 * it set none). get runs on the
 * loader's worker threads, several at once when num_workers > 1: it must be safe for
 * that. free_ctx (may be NULL) is called on ctx by tg_dataset_free. */
typedef tg_status (*tg_dataset_get_fn)(void *ctx, int64_t index, tg_tensor **out);
typedef struct {
    int64_t length;           /* samples, >= 0 */
    int n_fields;             /* tensors per sample, 1..TG_SAMPLE_MAX_FIELDS */
    tg_dataset_get_fn get;    /* required */
    void *ctx;
    void (*free_ctx)(void *ctx);
} tg_dataset_callbacks;
TG_API tg_dataset *tg_dataset_from_callbacks(const tg_dataset_callbacks *cb);
/* An image folder (tg_image_folder_open; borrowed: it must outlive the dataset) as a
 * dataset of (image u8 (C,H,W) on the CPU, label 0-d i64), decoded lazily on the
 * loader's workers: torchvision's ImageFolder under a DataLoader. Images of different
 * sizes need a transform that crops or resizes them to one size before batching. */
TG_API tg_dataset *tg_dataset_from_image_folder(const tg_image_folder *f);

TG_API int64_t tg_dataset_len(const tg_dataset *ds);   /* -1 with a message for NULL */
TG_API int tg_dataset_num_fields(const tg_dataset *ds); /* -1 with a message for NULL */
/* Sample index (0 <= index < length) into out[num_fields], owned by the current scope. */
TG_API tg_status tg_dataset_get(const tg_dataset *ds, int64_t index, tg_tensor **out);
/* Accepts NULL. A loader over ds must be freed first. */
TG_API void tg_dataset_free(tg_dataset *ds);

/* Which indices an epoch visits, and in which order: torch's DistributedSampler
 * (and, with one replica, SequentialSampler / RandomSampler). A zeroed struct is one
 * replica, in order. Per epoch:
 *   - the order is 0..n-1, or with shuffle a permutation of it drawn from Philox keyed by
 *     seed + epoch (as set_epoch: each epoch differs, a seed repeats them; not torch's
 *     numbers);
 *   - without drop_last it is padded by wrapping around to total = ceil(n / R) * R
 *     entries (R = num_replicas), so that each rank gets ceil(n / R) indices; with
 *     drop_last it is cut to total = floor(n / R) * R;
 *   - rank r gets order[r], order[r + R], order[r + 2R], ... (indices[rank:total:R]). */
typedef struct {
    bool shuffle;
    uint64_t seed;
    int64_t num_replicas; /* 0 means 1 */
    int64_t rank;         /* 0 <= rank < num_replicas */
    bool drop_last;       /* drop the tail that does not divide evenly, instead of padding */
} tg_sampler_opts;

/* The number of indices rank gets per epoch from a dataset of n samples, or -1 with a
 * message for n < 0, num_replicas < 0, or a rank outside [0, num_replicas). */
TG_API int64_t tg_sampler_len(int64_t n, const tg_sampler_opts *opts);
/* Writes epoch's indices for the rank to out, which holds max_out entries (at least
 * tg_sampler_len); returns how many, or -1 with a message. A pure function: the same
 * arguments give the same indices on every thread, process and machine. */
TG_API int64_t tg_sampler_indices(int64_t n, int64_t epoch, const tg_sampler_opts *opts, int64_t *out,
                                  int64_t max_out);

/* Loader options. NULL or zeroed fields are PyTorch DataLoader's defaults where it has
 * them: batch_size 1, no shuffle, keep the last partial batch, no workers. */
typedef struct {
    int64_t batch_size;       /* default 1 */
    bool shuffle;             /* a new order each epoch (seed + epoch) */
    uint64_t seed;            /* of the order and of the transforms' random numbers */
    bool drop_last;           /* drop the last batch when it is smaller than batch_size */
    int num_workers;          /* background threads; 0: batches are made inside tg_loader_next.
                                 Workers read the samples: keep a tensor dataset on the CPU
                                 (one thread drives an OpenCL device; batches are uploaded).
                                 On Linux they run as SCHED_BATCH, so they fill the gaps of
                                 the training thread instead of preempting it */
    int prefetch;             /* batches made ahead (a bound on memory); default 2 per worker
                                 (PyTorch's prefetch_factor); ignored without workers */
    tg_transform *const *transforms; /* applied in order to field 0 of each sample (borrowed:
                                        they must outlive the loader) */
    int n_transforms;
    tg_device *device;        /* where batches go (tg_to); NULL: the CPU */
    int64_t num_replicas, rank; /* data-parallel sharding, as tg_sampler_opts */
    bool shard_drop_last;     /* tg_sampler_opts.drop_last */
} tg_loader_opts;

/* One batch: fields[f] stacks field f of batch_size samples along a new first axis.
 * A field of dtype i32 or i64 (labels) becomes i64, as torch's default_collate; other
 * dtypes stay. x is fields[0], y is fields[1] (NULL with one field). */
typedef struct {
    tg_tensor *x, *y;
    tg_tensor *fields[TG_SAMPLE_MAX_FIELDS];
    int n_fields;
    int64_t epoch;            /* which epoch it belongs to */
    int64_t index;            /* its position in the epoch: 0, 1, ... */
    int64_t size;             /* samples in it (batch_size, or fewer in the last) */
} tg_batch;

/* A loader over ds (borrowed: it must outlive the loader). Workers start at once and
 * begin on epoch 0's first batches. Errors (NULL and a message): a NULL dataset,
 * batch_size, num_workers, prefetch or n_transforms < 0, a NULL transform, a sharding
 * tg_sampler_len refuses, threads that cannot be started. */
TG_API tg_loader *tg_loader_new(tg_dataset *ds, const tg_loader_opts *opts);

/* The next batch of the current epoch, in sampler order whatever the number of workers,
 * and the same for the same seed. Its tensors belong to the caller's current scope (on
 * opts.device). Returns false at the end of an epoch, with tg_last_status() TG_OK; the
 * next call starts the next epoch. Returns false with a message when making the batch
 * failed: a sample that get or a transform refused ("tg_loader_next: sample 17 (batch 2
 * of epoch 0): tg_random_crop: ..."), samples whose shapes or dtypes differ, a failed
 * upload. The loader is then broken: later calls fail with TG_ERR_STATE.
 *
 * Upload: workers build batches in host memory; tg_to to the device runs on the
 * calling thread (one thread drives an OpenCL queue), and when the batch after this one
 * is ready too it is uploaded at once, so that its copy is queued ahead of the step
 * that trains on this one. */
TG_API bool tg_loader_next(tg_loader *loader, tg_batch *batch);

/* Batches per epoch (this rank's), or -1 with a message for NULL. */
TG_API int64_t tg_loader_len(const tg_loader *loader);
/* The epoch the next batch comes from. Setting it (before an epoch starts: at the
 * start, or right after tg_loader_next returned false) resumes a run; TG_ERR_STATE in
 * the middle of an epoch. */
TG_API int64_t tg_loader_epoch(const tg_loader *loader);
TG_API tg_status tg_loader_set_epoch(tg_loader *loader, int64_t epoch);

typedef struct {
    double wait_seconds;      /* time tg_loader_next spent waiting for workers (or, without
                                 workers, making batches) and uploading */
    double total_seconds;     /* since the loader was made */
    int64_t batches;          /* handed out */
    int64_t samples;          /* in those batches */
    int64_t late;             /* batches that were not ready when asked for (with workers) */
} tg_loader_stats;
TG_API tg_status tg_loader_get_stats(const tg_loader *loader, tg_loader_stats *out);

/* Stops the workers (at once, even in the middle of an epoch: the batch each is making
 * is finished and dropped), joins them and frees what is queued. Accepts NULL. Batches
 * already handed out stay valid (their scope owns them). */
TG_API void tg_loader_free(tg_loader *loader);

/* ---------------------------------------------------------------- augmentation
 *
 * Transforms for data preparation: plain C loops over host memory of CPU tensors, not
 * graph ops (no gradient). An image is (C, H, W), or (H, W) taken as one channel (the
 * result keeps the input's number of axes); geometry transforms take u8 and f32, the
 * others say which dtype. Each random choice comes from a stream keyed by (seed, epoch,
 * sample index, position of the transform in its list), so a result never depends on
 * the number of workers or on timing. Free a transform with tg_transform_free once no
 * loader uses it. A constructor returns NULL with a message for a bad option. */

/* Applies transforms[0..n) in order to x (a tensor on any device, copied to the host);
 * returns a new CPU tensor owned by the current scope, or NULL with a message naming
 * the transform (a wrong dtype or rank, an image smaller than a crop without padding).
 * The loader does the same for field 0 of sample `index` in `epoch`. */
TG_API tg_tensor *tg_transforms_apply(int n, tg_transform *const *transforms, tg_tensor *x, uint64_t seed,
                                      int64_t epoch, int64_t index);
TG_API void tg_transform_free(tg_transform *t);

/* torchvision RandomHorizontalFlip / RandomVerticalFlip: flip W (H) with probability p
 * in [0, 1]. */
TG_API tg_transform *tg_random_horizontal_flip(double p);
TG_API tg_transform *tg_random_vertical_flip(double p);

typedef enum {
    TG_PAD_CONSTANT = 0, /* fill */
    TG_PAD_REFLECT,      /* mirror without repeating the edge: 2 1 | 0 1 2 (padding < size) */
    TG_PAD_EDGE,         /* repeat the edge: 0 0 | 0 1 2 */
} tg_pad_mode;

/* torchvision RandomCrop: pad by padding on every side (padding_ltrb: left, top, right,
 * bottom, when one is non-zero), then, with pad_if_needed, pad W and H that are still
 * smaller than the crop on both sides by the missing amount; then crop size_hw at a
 * uniform random position: top in [0, H - h], left in [0, W - w]. */
typedef struct {
    int64_t size;             /* square crop; or size_hw (H, W) */
    int64_t size_hw[2];
    int64_t padding;
    int64_t padding_ltrb[4];
    bool pad_if_needed;
    double fill;              /* for TG_PAD_CONSTANT, in the image's units (0..255 for u8) */
    tg_pad_mode padding_mode;
} tg_random_crop_opts;
TG_API tg_transform *tg_random_crop(const tg_random_crop_opts *opts);

/* torchvision RandomResizedCrop: up to 10 tries of an area fraction uniform in scale and
 * a log-uniform aspect ratio w/h in ratio; the first box that fits (w = round(sqrt(area
 * * ratio)), h = round(sqrt(area / ratio))) is placed uniformly, else the centre crop of
 * the whole image clamped to the ratio range; then a bilinear resize to size (half-pixel
 * centres, align_corners false, no antialiasing; u8 rounds to nearest). */
typedef struct {
    int64_t size;             /* square output; or size_hw (H, W) */
    int64_t size_hw[2];
    double scale[2];          /* default (0.08, 1) */
    double ratio[2];          /* default (3/4, 4/3) */
} tg_random_resized_crop_opts;
TG_API tg_transform *tg_random_resized_crop(const tg_random_resized_crop_opts *opts);

/* torchvision ColorJitter on f32 images in [0, 1] with 1 or 3 channels. Each factor is
 * drawn uniformly from [max(0, 1 - v), 1 + v] for a value v >= 0 (0: that adjustment is
 * off), and the result is clamped to [0, 1]: brightness blends with black (x f),
 * contrast with the mean of the greyscale image, saturation with the greyscale image
 * (0.2989 R + 0.587 G + 0.114 B; a one-channel image is left alone). The order of the
 * adjustments is random per sample, as torchvision's, unless fixed_order
 * (brightness, contrast, saturation). Hue is not supported. */
typedef struct {
    double brightness, contrast, saturation;
    bool fixed_order;
} tg_color_jitter_opts;
TG_API tg_transform *tg_color_jitter(const tg_color_jitter_opts *opts);

/* AlexNet's PCA lighting noise on f32 images of 3 channels: alpha_j ~ N(0, alpha_std)
 * for each of the 3 principal components, and every pixel of channel c gets
 * sum_j eigvec[c][j] alpha_j eigval[j] added (eigvec's columns are the eigenvectors).
 * eigval and eigvec left all zero mean ImageNet's (as fb.resnet.torch, for pixels in
 * [0, 1]); tg_pca_lighting_fit computes them from a sample of the data. */
typedef struct {
    tg_opt_f64 alpha_std;     /* default 0.1 */
    double eigval[3];
    double eigvec[3][3];
} tg_pca_lighting_opts;
TG_API tg_transform *tg_pca_lighting(const tg_pca_lighting_opts *opts);
/* The eigenvalues (descending) and eigenvectors (columns) of the 3x3 covariance of the
 * pixels of images (N, 3, H, W) or (3, H, W), any float dtype and device. */
TG_API tg_status tg_pca_lighting_fit(tg_tensor *images, double eigval[3], double eigvec[3][3]);

/* torchvision Normalize: (x - mean[c]) / std[c] for each of the n_channels channels of
 * an f32 image; std NULL means 1 (zero-centering only). std must be non-zero. */
TG_API tg_transform *tg_normalize(int n_channels, const double *mean, const double *std);

/* torchvision ToTensor's scaling: u8 x -> f32 x / 255 in [0, 1] (f32 passes through).
 * The layout stays (C, H, W) (no HWC -> CHW transpose: tapegrad's images are CHW). */
TG_API tg_transform *tg_to_float(void);

/* A transform from user code: fn gets the image (a CPU tensor owned by the current
 * scope), a seed for its random numbers (from seed, epoch, index and position) and
 * ctx; it returns the new image (owned by the current scope; x itself is fine) or NULL
 * after a failed call, whose message the loader reports. */
typedef tg_tensor *(*tg_transform_fn)(tg_tensor *x, uint64_t sample_seed, void *ctx);
TG_API tg_transform *tg_transform_custom(tg_transform_fn fn, void *ctx);

/* ---------------------------------------------------------------- checkpoints (safetensors) */

/* The safetensors format (Hugging Face's, as torch and the safetensors package read and
 * write it): an 8-byte little-endian u64 header length N, N bytes of JSON, then the raw
 * little-endian data. The JSON maps each tensor's name to {"dtype": "F32", "shape":
 * [2, 3], "data_offsets": [begin, end]} (offsets relative to the first byte after the
 * header) and may hold "__metadata__", an object of string -> string.
 *
 *     tg_state_dict *sd = tg_module_state_dict(net);
 *     tg_safetensors_save(sd, "net.safetensors",
 *                         &(tg_metadata){ 1, (char *[]){ "epoch" }, (char *[]){ "3" } });
 *     tg_state_dict *back = tg_safetensors_load("net.safetensors", dev, NULL);
 *
 * Written files hold tensors in the reference implementation's order (largest element
 * first, then by name, so every tensor is aligned to its element size), the JSON in
 * that order after "__metadata__", padded with spaces to a multiple of 8 bytes.
 *
 * Dtypes read: F64, F32, I64, I32, U8 as themselves; F16 and BF16 converted to F32;
 * BOOL as U8 (0/1); I16, U16 and I8 widened to I32 (lossless). Any other dtype (U32,
 * U64, F8 kinds...) is refused with a message naming it.
 *
 * Reading validates everything before it allocates tensor memory: the header length
 * within the file (and at most 100,000,000, the reference's limit), the header valid
 * JSON and an object, each entry's dtype known, its shape at most TG_MAX_DIMS
 * non-negative integers, its byte size (checked for overflow) equal to its offsets'
 * span, the offsets within the data and no two tensors' bytes overlapping, names
 * unique, metadata values strings. Gaps between tensors and bytes after the last are
 * accepted (the reference refuses them; tapegrad writes files without).
 *
 * Saving is atomic: the file is written to a temporary file in the target's directory
 * ("<path>.tmp.<pid>.<n>"), flushed and fsync'd, renamed over path, and the directory
 * fsync'd; on any failure the old file is untouched and the temporary removed.
 *
 * Without cJSON (tapegrad built with -Dcjson=disabled) every function here fails with
 * "...: tapegrad was built without cJSON (safetensors needs it)". */

/* Declared in nn.h and optim.h, which may be mid-way through inclusion here. */
typedef struct tg_state_dict tg_state_dict;
typedef struct tg_module tg_module;
typedef struct tg_load_opts tg_load_opts;
typedef struct tg_optim tg_optim;
typedef struct tg_sched tg_sched;

/* String metadata: n keys and values (owned by whoever built the struct). */
typedef struct {
    int n;
    char **keys;
    char **values;
} tg_metadata;
/* The value under key, or NULL if absent (no message). */
TG_API const char *tg_metadata_get(const tg_metadata *m, const char *key);
/* Frees the keys, the values and the arrays of a tg_metadata filled by a load; leaves
 * *m empty. NULL is fine. */
TG_API void tg_metadata_free(tg_metadata *m);

/* Writes every tensor of sd (any device, dtype and strides: dense copies are written)
 * to path, with metadata (NULL for none) as "__metadata__". Returns TG_OK, or an error
 * naming path and the problem: TG_ERR_INVALID for a NULL argument, an empty state dict
 * name, a duplicate or empty metadata key or the reserved name "__metadata__";
 * TG_ERR_IO when the directory is not writable or the disk fills (the old file kept);
 * TG_ERR_NOMEM when memory runs out. */
TG_API tg_status tg_safetensors_save(const tg_state_dict *sd, const char *path, const tg_metadata *metadata);

/* Reads path into a new state dict (free with tg_state_dict_free) whose tensors are on
 * dev, in the header's order; metadata (may be NULL) receives "__metadata__" (free with
 * tg_metadata_free; empty when the file has none, and on error). Returns NULL with
 * tg_last_error() naming path and the problem ("tg_safetensors_load: 'a.safetensors':
 * tensor 'fc.weight': data_offsets [0, 24] span 24 bytes, its shape [2,4] of F32 needs
 * 32"), status TG_ERR_IO for a missing, unreadable, truncated or malformed file,
 * TG_ERR_DTYPE for a dtype tapegrad cannot hold, TG_ERR_NOMEM, or the device's error. */
TG_API tg_state_dict *tg_safetensors_load(const char *path, tg_device *dev, tg_metadata *metadata);
/* The same from size bytes in memory (a file embedded in a program, a download); the
 * messages say "<buffer>" for the path. The bytes are only read. */
TG_API tg_state_dict *tg_safetensors_load_buffer(const void *data, size_t size, tg_device *dev, tg_metadata *metadata);

/* A module's state dict (parameters and buffers, PyTorch's names, BatchNorm's i64
 * num_batches_tracked included) to a safetensors file, and back: tg_module_load reads
 * path and loads it with tg_module_load_state_dict (opts as there: strict by default;
 * the error lists every missing, unexpected and mis-shaped name; a failed load leaves
 * m as it was). A file saved by torch (safetensors.torch.save_file(model.state_dict()))
 * for the same architecture loads as is. */
TG_API tg_status tg_module_save(const tg_module *m, const char *path, const tg_metadata *metadata);
TG_API tg_status tg_module_load(tg_module *m, const char *path, const tg_load_opts *opts);

/* An optimizer's state (tg_optim_state_save: "state.0.exp_avg", "state.0.step",
 * "param_groups.0.lr", ...) to a file and back into an optimizer of the same kind and
 * groups (tg_optim_state_load's checks; a failed load leaves it as it was). Names are
 * at most 63 bytes (tg_named_tensor's). */
TG_API tg_status tg_optim_save(const tg_optim *opt, const char *path);
TG_API tg_status tg_optim_load(tg_optim *opt, const char *path);

/* A training checkpoint: everything a resumed run needs to continue as if never
 * stopped. One safetensors file holding "model.<name>" (the module's state dict),
 * "optimizer.<name>" (its state), and in "__metadata__" the schedule's last epoch
 * ("tapegrad.sched.last_epoch"), the random generator's state ("tapegrad.rng.seed",
 * "tapegrad.rng.offset", see tg_get_rng_state) and the user's own entries (epoch,
 * step, the data order's seed...). Keys starting "tapegrad." are reserved.
 *
 *     tg_checkpoint ck = { .model = net, .optim = opt, .sched = sched,
 *                          .metadata = &(tg_metadata){ 1, (char *[]){ "epoch" }, (char *[]){ e } } };
 *     tg_checkpoint_save(&ck, "run.ckpt");
 *     ... later, with freshly built net, opt, sched:
 *     tg_metadata user;
 *     tg_checkpoint_load(&(tg_checkpoint){ net, opt, sched, NULL }, "run.ckpt", &user);
 *
 * Load order: the module's values; then the schedule, which is replayed (stepped with
 * tg_sched_step from its current epoch to the saved one: schedules are deterministic
 * functions of their epoch, so this rebuilds their internal state exactly); then the
 * optimizer's state, which sets each group's lr as saved; then the random generator.
 * ReduceLROnPlateau cannot be replayed (its state depends on the metrics it was given):
 * replaying it fails with tg_sched_step's message, and its best value and bad-epoch
 * count are not saved. A schedule already past the saved epoch is an error, and so is
 * a sched passed for a file saved without one. optim and sched may be NULL (the file's
 * entries for them are then ignored); model is required and loaded strictly. On error
 * the message names path; the module is loaded all or nothing, but an error in a later
 * part (schedule, optimizer) leaves the earlier parts loaded. */
typedef struct {
    tg_module *model;
    tg_optim *optim;
    tg_sched *sched;
    const tg_metadata *metadata; /* save only: the user's entries (may be NULL) */
} tg_checkpoint;
TG_API tg_status tg_checkpoint_save(const tg_checkpoint *ck, const char *path);
/* metadata (may be NULL) receives the user's entries (the reserved ones left out; free
 * with tg_metadata_free). */
TG_API tg_status tg_checkpoint_load(const tg_checkpoint *ck, const char *path, tg_metadata *metadata);

#ifdef __cplusplus
}
#endif
#endif
