/* libFuzzer target for tg_csv_load: the first byte picks the options (delimiter, header,
 * dtype, label column and mode), the rest is the file. A table that loads is checked
 * for its shape; any crash, leak or sanitizer report is a bug, a refused file is fine.
 * Build as fuzz_idx.c says; run: build-fuzz/fuzz/fuzz_csv -max_total_time=180 fuzz/corpus/csv */
#include <string.h>

#include "fuzz_memfd.h"
#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_device *dev;
    if (!dev) dev = tg_device_get("cpu");
    if (size < 1) return 0;
    uint8_t o = data[0];
    static const char delims[4] = { ',', ';', '\t', ' ' };
    tg_csv_opts opts = { .delimiter = delims[o & 3], .header = o & 4, .dtype = o & 8 ? TG_F64 : TG_F32,
                         .label_mode = (tg_csv_label_mode)((o >> 4) % 3) };
    if (o & 0x40) opts.label_column = (tg_opt_i64)TG_SOME((o & 0x80) ? -1 : 0);
    else if ((o & 0x80) && opts.header) opts.label_name = "label";
    const char *path = fuzz_file("tg_fuzz_csv", data + 1, size - 1);
    tg_scope_begin();
    tg_csv_table t;
    if (tg_csv_load(path, &opts, dev, &t) == TG_OK) {
        if (!t.data || tg_ndim(t.data) != 2 || (opts.label_column.set || opts.label_name ? !t.labels : !!t.labels))
            abort();
        if (t.labels && tg_size(t.labels, 0) != tg_size(t.data, 0)) abort();
        if (opts.header && tg_strings_count(t.columns) != tg_size(t.data, 1)) abort();
        for (int i = 0; i < tg_strings_count(t.classes); i++) (void)strlen(tg_strings_get(t.classes, i));
        tg_csv_table_clear(&t);
    }
    tg_clear_error();
    tg_scope_end();
    return 0;
}
