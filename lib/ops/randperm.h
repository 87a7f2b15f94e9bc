/* The seeded permutation behind tg_randperm, for code that keeps its own seed (the data
 * sampler: seed + epoch) instead of drawing from the process-wide generator. */
#ifndef TG_OPS_RANDPERM_H
#define TG_OPS_RANDPERM_H

#include <stdint.h>

#include "tapegrad.h"

/* Writes a permutation of 0..n-1 to out[n]: Philox keyed by seed, counters counter ..
 * counter + n - 1 (one f64 uniform key each), indices sorted by key. Any thread. */
tg_status tg_randperm_keyed(int64_t n, uint64_t seed, uint64_t counter, int64_t *out);

#endif
