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

/* The public function the user called, so that every message names it. Each public
 * entry point opens with TG_API_ENTER("tg_zeros"); calls nested inside it leave the
 * outermost name in place, and it is cleared when that call returns. tg_error then
 * rewrites the head of a message written by an inner function ("tg_full: ...",
 * "tensor: ...") to that name ("tg_zeros: ..."), and tape nodes take it as theirs. */
extern _Thread_local const char *tg_api_name_;
extern _Thread_local int tg_api_depth_;
static inline int tg_api_enter_(const char *name) {
    if (tg_api_depth_++ == 0) tg_api_name_ = name;
    return 0;
}
static inline void tg_api_leave_(int *guard) {
    (void)guard;
    if (--tg_api_depth_ == 0) tg_api_name_ = NULL;
}
#define TG_API_ENTER(name) \
    int tg_api_guard_ __attribute__((cleanup(tg_api_leave_), unused)) = tg_api_enter_(name)
/* Around a call into user code (a gradcheck function, a user-defined op's forward or
 * backward, a hook), the public functions that code calls name themselves again:
 *     tg_api_saved sv = tg_api_suspend(); ...user code...; tg_api_resume(sv); */
typedef struct {
    const char *name;
    int depth;
} tg_api_saved;
static inline tg_api_saved tg_api_suspend(void) {
    tg_api_saved sv = { tg_api_name_, tg_api_depth_ };
    tg_api_name_ = NULL;
    tg_api_depth_ = 0;
    return sv;
}
static inline void tg_api_resume(tg_api_saved sv) {
    tg_api_name_ = sv.name;
    tg_api_depth_ = sv.depth;
}
/* The outermost public function running on this thread, or NULL outside any. */
static inline const char *tg_api_current(void) { return tg_api_name_; }

/* For a lookup that may fail harmlessly (an optional parameter): keeps the thread's
 * last error as it was, so that a success never erases an earlier failure's message.
 *     tg_error_saved e; tg_error_save(&e); ...lookup...; tg_error_restore(&e); */
typedef struct {
    char msg[1024];
    tg_status status;
} tg_error_saved;
void tg_error_save(tg_error_saved *out);
void tg_error_restore(const tg_error_saved *saved);

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
