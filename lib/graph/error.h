/* Thread-local error messages. Every failing call sets one; TG_ABORT_ON_ERROR=1 aborts. */
#ifndef TG_ERROR_H
#define TG_ERROR_H

#include <stdio.h>
#include <stdlib.h>

#include "tapegrad.h"

#if defined(__GNUC__)
#define TG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TG_PRINTF(a, b)
#endif

/* Sets the thread's message and status; returns the status for `return tg_error(...)`. */
tg_status tg_error(tg_status kind, const char *fmt, ...) TG_PRINTF(2, 3);
/* Same, for builders: returns NULL. */
void *tg_error_null(tg_status kind, const char *fmt, ...) TG_PRINTF(2, 3);

/* Internal invariants: abort with file and line (never for user errors). */
#define TG_ASSERT(c)                                                                       \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "tapegrad: internal error at %s:%d: %s\n", __FILE__, __LINE__, \
                    #c);                                                                   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif
