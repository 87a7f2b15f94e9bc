/* Scratch memory for kernel workspaces: one growing buffer per device and thread,
 * taken from the device's own allocator (so it counts in the memory statistics and
 * comes from the caching pools). A kernel asks for what it needs each time; in a
 * steady state the buffer has already grown and no allocation happens. */
#include <pthread.h>
#include <stdlib.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

#define MAX_DEVICES 16

typedef struct {
    tg_device *dev;
    void *data;
    size_t nbytes;
} buffer;

static _Thread_local buffer g_buf[MAX_DEVICES];
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void release_all(void *arg) {
    buffer *b = arg;
    for (int i = 0; i < MAX_DEVICES; i++) {
        if (b[i].dev && b[i].data) b[i].dev->be->free(b[i].dev, b[i].data, b[i].nbytes);
        b[i] = (buffer){ 0 };
    }
}

static void main_thread_exit(void) { release_all(g_buf); }

static void make_key(void) {
    pthread_key_create(&g_key, release_all);
    atexit(main_thread_exit);
}

tg_status tg_scratch(tg_device *dev, size_t nbytes, void **out) {
    int slot = -1;
    for (int i = 0; i < MAX_DEVICES && slot < 0; i++)
        if (g_buf[i].dev == dev || !g_buf[i].dev) slot = i;
    if (slot < 0) return tg_error(TG_ERR_NOMEM, "scratch memory: more than %d devices in use on one thread", MAX_DEVICES);
    buffer *b = &g_buf[slot];
    if (!b->dev) {
        pthread_once(&g_once, make_key);
        pthread_setspecific(g_key, g_buf);
        b->dev = dev;
    }
    if (nbytes > b->nbytes || !b->data) {
        if (b->data) dev->be->free(dev, b->data, b->nbytes);
        b->data = NULL;
        b->nbytes = 0;
        size_t grown = nbytes + nbytes / 4; /* room to grow a little without reallocating */
        tg_status st = dev->be->alloc(dev, grown ? grown : 1, &b->data);
        if (st != TG_OK) return st;
        b->nbytes = grown ? grown : 1;
    }
    *out = b->data;
    return TG_OK;
}
