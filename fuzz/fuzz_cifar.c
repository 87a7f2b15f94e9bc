/* libFuzzer target for tg_cifar_load: the first byte picks CIFAR-10, CIFAR-100 fine or
 * coarse; the rest is the file (run with -max_len=16384 so that whole records fit).
 * Loaded labels are checked against their range. Any crash, leak or sanitizer report is
 * a bug; a refused file is fine.
 * Build as fuzz_idx.c says; run: build-fuzz/fuzz/fuzz_cifar -max_len=16384 fuzz/corpus/cifar */
#include "fuzz_memfd.h"
#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_device *dev;
    if (!dev) dev = tg_device_get("cpu");
    if (size < 1) return 0;
    tg_cifar_opts o = { .format = data[0] % 3 ? TG_CIFAR100 : TG_CIFAR10, .coarse = data[0] % 3 == 2 };
    const char *path = fuzz_file("tg_fuzz_cifar", data + 1, size - 1);
    tg_scope_begin();
    tg_labeled_images d;
    if (tg_cifar_load(1, &path, &o, dev, &d) == TG_OK) {
        int64_t n = tg_size(d.images, 0), k = o.format == TG_CIFAR10 ? 10 : o.coarse ? 20 : 100;
        if (tg_size(d.labels, 0) != n || tg_size(d.images, 1) != 3) abort();
        double hi = tg_item(tg_max(d.labels, TG_ALL, false)), lo = tg_item(tg_min(d.labels, TG_ALL, false));
        if (lo < 0 || hi >= (double)k) abort();
    }
    tg_clear_error();
    tg_scope_end();
    return 0;
}
