/* Free lists for the small structs every op makes (tensor objects, tape nodes), so a
 * training step in steady state calls no malloc. Each list is thread-local; a thread
 * that exits frees its lists through a destructor. */
#ifndef TG_RECYCLE_H
#define TG_RECYCLE_H

#include <stddef.h>

typedef struct tg_recycler tg_recycler;

/* The calling thread's list for blocks of `size` bytes; `slot` (0..3) tells lists apart. */
tg_recycler *tg_recycler_get(int slot, size_t size);
/* A zeroed block, reused when one is free; NULL when out of memory. */
void *tg_recycle_alloc(tg_recycler *r);
/* Returns a block to the list (or to the system when the list is full). */
void tg_recycle_free(tg_recycler *r, void *p);

#endif
