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

/* ---------------------------------------------------------------- readers: CIFAR, image folders, CSV, PNG */

/* ---------------------------------------------------------------- datasets and loaders */

/* ---------------------------------------------------------------- augmentation */

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
