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

#ifdef __cplusplus
}
#endif
#endif
