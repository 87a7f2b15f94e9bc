/* Thread-local free lists of fixed-size blocks. The link lives in the block's first
 * bytes while it is free; blocks are zeroed when handed out again. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/recycle.h"

#define SLOTS 4
#define MAX_FREE 4096 /* blocks kept per list; beyond that they go back to the system */

struct tg_recycler {
    void *head;
    int n;
    size_t size;
};

static _Thread_local tg_recycler g_lists[SLOTS];
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void drain(void *arg) {
    tg_recycler *lists = arg;
    for (int s = 0; s < SLOTS; s++) {
        while (lists[s].head) {
            void *p = lists[s].head;
            lists[s].head = *(void **)p;
            free(p);
        }
        lists[s].n = 0;
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
    void *p = r->head;
    if (!p) return calloc(1, r->size);
    r->head = *(void **)p;
    r->n--;
    memset(p, 0, r->size);
    return p;
}

void tg_recycle_free(tg_recycler *r, void *p) {
    if (!p) return;
    if (r->n >= MAX_FREE) {
        free(p);
        return;
    }
    *(void **)p = r->head;
    r->head = p;
    r->n++;
}
