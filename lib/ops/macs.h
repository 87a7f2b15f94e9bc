/* The multiply-add counter behind tg_summary: the matmul and convolution launches add
 * what they run to a per-thread total while it is enabled (a load and a branch when not). */
#ifndef TG_OPS_MACS_H
#define TG_OPS_MACS_H

#include <stdbool.h>
#include <stdint.h>

extern _Thread_local bool tg_macs_enabled_;
extern _Thread_local int64_t tg_macs_total_;

/* Turns counting on this thread on or off; returns the previous setting. */
bool tg_macs_enable(bool on);
/* Multiply-adds counted on this thread so far (saturating at INT64_MAX). */
static inline int64_t tg_macs_read(void) { return tg_macs_total_; }
/* Adds the product of n factors (saturating), when counting is on. */
void tg_macs_add_product(int n, const int64_t *factors);
static inline void tg_macs_add(int n, const int64_t *factors) {
    if (tg_macs_enabled_) tg_macs_add_product(n, factors);
}

#endif
