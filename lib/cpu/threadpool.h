/* The CPU thread pool: persistent workers that split a range of work. Workers spin
 * briefly for new work, then sleep, so a shared machine is not starved. */
#ifndef TG_CPU_THREADPOOL_H
#define TG_CPU_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"

/* Runs fn(ctx, begin, end) over chunks covering [0, n). Runs inline on the caller when
 * n <= grain or one thread is configured; otherwise splits into at most one chunk per
 * thread (each at least grain long) and returns when all are done. grain is the least
 * work worth handing to a running thread: size it at a few microseconds. When the
 * workers are asleep (idle for more than ~20 us) waking them costs 40-70 us, so a job
 * below 32 grains then runs inline too, and only nudges them awake for the next call.
 * Not reentrant from inside fn (a nested call runs inline). */
typedef void (*tg_pool_fn)(void *ctx, int64_t begin, int64_t end);
void tg_pool_parallel_for(int64_t n, int64_t grain, tg_pool_fn fn, void *ctx);

/* Threads used: $TG_NUM_THREADS (read once, at first use), else the cores this process
 * may use (sched_getaffinity), at most 256. A value that is not a whole number in
 * [1, 256] is reported on stderr in one line naming it and what is used instead. */
int tg_pool_num_threads(void);
/* n < 1 is an error (the count stays, message set and printed on stderr); n > 256 is
 * capped with a warning on stderr. */
tg_status tg_pool_set_num_threads(int n);
/* The parser behind $TG_NUM_THREADS: value NULL (unset) gives fallback silently; an
 * unusable value gives fallback (or the cap, 256, for a larger number) and writes the
 * one-line warning into warning (else ""). */
int tg_pool_parse_threads(const char *value, int fallback, char *warning, size_t size);

/* Elements below which an elementwise kernel stays on the calling thread: 32768 f32
 * adds take ~4 us on one Zen 4 core; 64K elements on two awake threads run 1.9x faster
 * than on one, while 16K would gain little over the hand-off. */
#define TG_GRAIN_ELEMENTWISE 32768

#endif
