/* The CPU caching allocator: freed blocks go to a free list per size class and are
 * handed out again, so a training step in steady state calls no malloc. Size classes
 * grow by quarters of a power of two (at most 25% slack). Blocks are 64-byte aligned
 * for SIMD. When the system allocator fails, the cache is emptied and the request
 * retried once before reporting out of memory. Under AddressSanitizer or TG_DEBUG=1 no
 * block is cached. The statistics are atomic: any thread allocates. */
#include <pthread.h>
#include <stdlib.h>

#include "lib/cpu/cpu.h"
#include "lib/graph/error.h"
#include "lib/graph/size-class.h"
#include "lib/graph/tensor-impl.h"

#define NCLASSES TG_SIZE_CLASSES
#define ALIGN TG_SIZE_CLASS_ALIGN
#define class_size tg_size_class_bytes
#define size_class tg_size_class_of

typedef struct block {
    struct block *next;
} block;

static block *g_free[NCLASSES];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

tg_status tg_cpu_alloc(tg_device *dev, size_t nbytes, void **out) {
    int c = size_class(nbytes);
    size_t size = class_size(c);
    pthread_mutex_lock(&g_lock);
    block *b = g_free[c];
    if (b) {
        g_free[c] = b->next;
        dev->stats.bytes_cached -= size;
    }
    pthread_mutex_unlock(&g_lock);
    if (!b) {
        size_t rounded = (size + ALIGN - 1) / ALIGN * ALIGN; /* C11 wants a multiple of the alignment */
        b = aligned_alloc(ALIGN, rounded);
        if (!b) {
            tg_cpu_empty_cache(dev);
            b = aligned_alloc(ALIGN, rounded);
        }
        if (!b)
            return tg_error(TG_ERR_NOMEM, "out of host memory: %zu bytes requested "
                            "(%zu in use)", nbytes, dev->stats.bytes_in_use);
        dev->stats.allocations++;
    }
    *out = b;
    return TG_OK;
}

void tg_cpu_free(tg_device *dev, void *data, size_t nbytes) {
    if (!data) return;
    if (tg_reuse_disabled()) { /* ASan or TG_DEBUG=1: the sanitizer sees every stale read */
        free(data);
        return;
    }
    int c = size_class(nbytes);
    block *b = data;
    pthread_mutex_lock(&g_lock);
    b->next = g_free[c];
    g_free[c] = b;
    dev->stats.bytes_cached += class_size(c);
    pthread_mutex_unlock(&g_lock);
}

void tg_cpu_empty_cache(tg_device *dev) {
    pthread_mutex_lock(&g_lock);
    for (int c = 0; c < NCLASSES; c++) {
        while (g_free[c]) {
            block *b = g_free[c];
            g_free[c] = b->next;
            free(b);
        }
    }
    dev->stats.bytes_cached = 0;
    pthread_mutex_unlock(&g_lock);
}
