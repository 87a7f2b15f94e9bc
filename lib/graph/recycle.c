/* Thread-local free lists of fixed-size blocks. The link lives in the block's first
 * bytes while it is free; blocks are zeroed when handed out again.
 *
 * A list is a FIFO with a quarantine: a freed block is reused only after QUARANTINE
 * later frees, so a stale pointer to a released tensor still sees its dead magic for
 * a while and the next op reports it. Under AddressSanitizer, or with TG_DEBUG=1,
 * blocks go straight back to the system instead (ASan then sees every use after free). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/recycle.h"
#include "lib/graph/tensor-impl.h"

#define SLOTS 4
#define QUARANTINE 256 /* blocks that wait before reuse */
#define MAX_FREE 4096  /* blocks kept per list; beyond that they go back to the system */

#if defined(__SANITIZE_ADDRESS__)
#define TG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_ASAN 1
#endif
#endif

struct tg_recycler {
    void *head, *tail;
    int n;
    size_t size;
};

static _Thread_local tg_recycler g_lists[SLOTS];
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

bool tg_debug_enabled(void) {
    static _Atomic int cached = -1;
    int v = atomic_load(&cached);
    if (v < 0) {
        const char *e = getenv("TG_DEBUG");
        v = e && e[0] == '1' && !e[1];
        atomic_store(&cached, v);
    }
    return v;
}

bool tg_reuse_disabled(void) {
#ifdef TG_ASAN
    return true;
#else
    return tg_debug_enabled();
#endif
}

static void drain(void *arg) {
    tg_recycler *lists = arg;
    for (int s = 0; s < SLOTS; s++) {
        while (lists[s].head) {
            void *p = lists[s].head;
            lists[s].head = *(void **)p;
            free(p);
        }
        lists[s].tail = NULL;
        lists[s].n = 0;
        lists[s].size = 0; /* a later use on this thread (another destructor) registers again */
    }
}

static void make_key(void) { pthread_key_create(&g_key, drain); }

tg_recycler *tg_recycler_get(int slot, size_t size) {
    tg_recycler *r = &g_lists[slot];
    if (!r->size) { /* first use on this thread: arrange for the lists to be drained at its exit */
        pthread_once(&g_once, make_key);
        pthread_setspecific(g_key, g_lists);
        r->size = size < sizeof(void *) ? sizeof(void *) : size;
    }
    return r;
}

void *tg_recycle_alloc(tg_recycler *r) {
    if (r->n <= QUARANTINE) return calloc(1, r->size);
    void *p = r->head;
    r->head = *(void **)p;
    if (!r->head) r->tail = NULL;
    r->n--;
    memset(p, 0, r->size);
    return p;
}

void tg_recycle_free(tg_recycler *r, void *p) {
    if (!p) return;
    if (tg_reuse_disabled() || r->n >= MAX_FREE) {
        free(p);
        return;
    }
    *(void **)p = NULL;
    if (r->tail) *(void **)r->tail = p;
    else r->head = p;
    r->tail = p;
    r->n++;
}
