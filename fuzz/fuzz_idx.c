/* libFuzzer target for tg_idx_load: each input is written to an in-memory file and
 * loaded (plain, or gzip when built with zlib); a tensor that loads is printed into a
 * small buffer, so the printer sees every shape a file can describe. Any crash, leak
 * or sanitizer report is a bug; a refused file is fine.
 *
 * Build (clang): meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *                  -Db_lundef=false --buildtype=debugoptimized   (with CC=clang)
 * Run:           build-fuzz/fuzz/fuzz_idx -max_total_time=300 fuzz/corpus */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create (meson sets it) */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    static tg_device *dev;
    if (fd < 0) {
        fd = memfd_create("tg_fuzz_idx", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        dev = tg_device_get("cpu");
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    tg_scope_begin();
    tg_tensor *t = tg_idx_load(path, dev);
    if (t) {
        char buf[512];
        tg_snprint(buf, sizeof buf, t);
        if (tg_numel(t) > 0 && tg_numel(t) < 4096) (void)tg_sum(tg_cast(t, TG_F64), TG_ALL, false);
    }
    tg_clear_error();
    tg_scope_end();
    return 0;
}
