/* libFuzzer target for tg_read_image (PNG through libspng): the input is the file, its
 * length picks the read mode. A decoded image is checked for its shape and summed, so
 * every pixel is read. Any crash, leak or sanitizer report is a bug.
 * Build as fuzz_idx.c says; run: build-fuzz/fuzz/fuzz_png -max_total_time=180 fuzz/corpus/png */
#include "fuzz_memfd.h"
#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_device *dev;
    if (!dev) dev = tg_device_get("cpu");
    const char *path = fuzz_file("tg_fuzz_png", data, size);
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
