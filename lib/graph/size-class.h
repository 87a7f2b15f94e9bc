/* The size classes both caching allocators (lib/cpu/alloc.c, lib/opencl/alloc.c) round
 * requests to: quarters of powers of two from 64 bytes (64, 80, 96, 112, 128, 160, ...),
 * so a freed block fits later requests of nearby sizes with at most 25% slack. */
#ifndef TG_SIZE_CLASS_H
#define TG_SIZE_CLASS_H

#include <stddef.h>

#define TG_SIZE_CLASSES 176   /* up to 2^46 bytes */
#define TG_SIZE_CLASS_ALIGN 64

/* The bytes class c covers. */
static inline size_t tg_size_class_bytes(int c) {
    int p = c / 4, q = c % 4;
    return ((size_t)(4 + q) << p) * (TG_SIZE_CLASS_ALIGN / 4);
}

/* The first class whose size fits n bytes. */
static inline int tg_size_class_of(size_t n) {
    if (n <= TG_SIZE_CLASS_ALIGN) return 0;
    int lo = 0, hi = TG_SIZE_CLASSES - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (tg_size_class_bytes(mid) >= n) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

#endif
