/* The per-thread multiply-add counter (lib/ops/macs.h). An op launch runs on the calling
 * thread whatever the backend does after, so a thread-local total sees every op of a
 * forward that one thread runs, and two threads summarising at once do not mix. */
#include "lib/ops/macs.h"

_Thread_local bool tg_macs_enabled_;
_Thread_local int64_t tg_macs_total_;

bool tg_macs_enable(bool on) {
    bool was = tg_macs_enabled_;
    tg_macs_enabled_ = on;
    return was;
}

void tg_macs_add_product(int n, const int64_t *factors) {
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (factors[i] <= 0) return;
        else if (__builtin_mul_overflow(p, factors[i], &p)) p = INT64_MAX;
    if (__builtin_add_overflow(tg_macs_total_, p, &tg_macs_total_)) tg_macs_total_ = INT64_MAX;
}
