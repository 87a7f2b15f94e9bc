/* Internal helpers shared by the dataset readers (lib/data): whole-file reads that grow
 * with the bytes actually read, string lists, and a message prefix for uploads. */
#ifndef TG_DATA_READER_H
#define TG_DATA_READER_H

#include <stddef.h>
#include <stdint.h>

#include "tapegrad/data.h"

/* Reads the whole file at path into a new buffer with a NUL byte after its *len bytes.
 * fn names the public function in messages ("tg_csv_load: cannot open 'x': ..."). A
 * file over max_bytes is refused. NULL with the message set on failure. */
uint8_t *tg_data_read_file(const char *fn, const char *path, size_t max_bytes, size_t *len);

/* A new empty list, or NULL (no memory, message set). */
tg_strings *tg_data_strings_new(const char *fn);
/* Appends a copy of s[0..len); TG_OK or TG_ERR_NOMEM with a message naming fn. */
tg_status tg_data_strings_push(tg_strings *l, const char *fn, const char *s, size_t len);
/* A copy of l (NULL for NULL), or NULL with a message. */
tg_strings *tg_data_strings_copy(const tg_strings *l, const char *fn);

/* tg_from_data, with "fn: 'path': " put before the message when the upload fails. */
tg_tensor *tg_data_upload(const char *fn, const char *path, const void *host, tg_dtype dtype, tg_shape shape,
                          tg_device *dev);

/* Decodes the PNG at path into a new u8 (C,H,W) tensor on dev (tg_read_image's
 * contract); messages name fn. */
tg_tensor *tg_data_read_png(const char *fn, const char *path, tg_image_mode mode, tg_device *dev);

#endif
