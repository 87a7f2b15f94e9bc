/* What the tests of text outputs share (test_dot, test_progress, test_plots): reading
 * back what was written to a stream, and comparing whole texts with both shown when
 * they differ. */
#ifndef TG_TEXT_CHECK_H
#define TG_TEXT_CHECK_H

#include "harness.h"

/* Everything written to f so far (f is rewound), NUL-terminated; caller frees. */
static inline char *tg_test_slurp(FILE *f) {
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 ? calloc((size_t)n + 1, 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    return s;
}

#define CHECK_TEXT(got, want)                                                                   \
    do {                                                                                        \
        const char *g_ = (got), *w_ = (want);                                                   \
        if (!g_ || strcmp(g_, w_) != 0) FAIL_("got\n%s\nexpected\n%s", g_ ? g_ : "(null)", w_); \
    } while (0)

#endif
