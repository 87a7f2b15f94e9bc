/* libFuzzer target for tg_read_image (PNG through libspng): the input is the file, its
 * length picks the read mode. Chunk CRCs are recomputed first (where the chunk
 * structure allows), so that mutations reach the decoder instead of failing the CRC
 * check. A decoded image is checked for its shape and summed, so every pixel is read.
 * Any crash, leak or sanitizer report is a bug.
 * Build as fuzz_idx.c says; run: build-fuzz/fuzz/fuzz_png -max_total_time=180 fuzz/corpus/png */
#include <string.h>

#include "fuzz_memfd.h"
#include "tests/png_writer.h" /* png_crc */
#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rewrites the CRC of every whole chunk after the 8-byte signature. */
static void fix_crcs(uint8_t *b, size_t n) {
    for (size_t at = 8; at + 12 <= n;) {
        size_t len = (size_t)b[at] << 24 | (size_t)b[at + 1] << 16 | (size_t)b[at + 2] << 8 | b[at + 3];
        if (len > n - at - 12) break;
        uint32_t c = png_crc(b + at + 4, len + 4);
        uint8_t *q = b + at + 8 + len;
        q[0] = (uint8_t)(c >> 24), q[1] = (uint8_t)(c >> 16), q[2] = (uint8_t)(c >> 8), q[3] = (uint8_t)c;
        at += len + 12;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_device *dev;
    if (!dev) dev = tg_device_get("cpu");
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    fix_crcs(copy, size);
    const char *path = fuzz_file("tg_fuzz_png", copy, size);
    free(copy);
    tg_scope_begin();
    tg_tensor *t = tg_read_image(path, (tg_image_mode)(size % 6), dev);
    if (t) {
        if (tg_ndim(t) != 3 || tg_size(t, 0) < 1 || tg_size(t, 0) > 4 || tg_numel(t) > TG_IMAGE_MAX_PIXELS * 4)
            abort();
        (void)tg_sum(tg_cast(t, TG_I64), TG_ALL, false);
    }
    tg_clear_error();
    tg_scope_end();
    return 0;
}
