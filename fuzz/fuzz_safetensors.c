/* libFuzzer target for the safetensors reader: each input is parsed from memory with
 * tg_safetensors_load_buffer (the path reader shares every check after the first
 * read); a file that loads has each tensor printed into a small buffer and its
 * metadata looked up. Any crash, leak or sanitizer report is a bug; a refused file
 * is fine.
 *
 * Build (clang): CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *                  -Db_lundef=false --buildtype=debugoptimized
 * Run:           build-fuzz/fuzz/fuzz_safetensors -max_total_time=180 fuzz/corpus/safetensors */
#include <stdint.h>
#include <stdlib.h>

#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_device *dev;
    if (!dev && !(dev = tg_device_get("cpu"))) abort();
    tg_scope_begin();
    tg_metadata meta;
    tg_state_dict *sd = tg_safetensors_load_buffer(data, size, dev, &meta);
    char buf[256];
    for (int i = 0; i < tg_state_dict_size(sd); i++) {
        tg_tensor *t = tg_state_dict_tensor(sd, i);
        if (!t || tg_snprint(buf, sizeof buf, t) < 0) abort();
    }
    for (int i = 0; i < meta.n; i++)
        if (tg_metadata_get(&meta, meta.keys[i]) == NULL) abort();
    tg_metadata_free(&meta);
    tg_state_dict_free(sd);
    tg_scope_end();
    return 0;
}
