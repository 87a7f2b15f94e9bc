/* A tiny test harness: TEST(name) defines a case, main() from TG_TEST_MAIN runs them
 * all, each inside its own scope, and prints "N passed, M failed". A check failure
 * prints file, line and the expression, and fails the case without stopping the run. */
#ifndef TG_TEST_HARNESS_H
#define TG_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

typedef void (*tg_test_fn)(int *failed);
typedef struct {
    const char *name;
    tg_test_fn fn;
} tg_test_case;

#define TEST(name)                                                   \
    static void test_##name(int *tg_failed_);                        \
    static const tg_test_case tg_case_##name = { #name, test_##name }; \
    static void test_##name(int *tg_failed_)

#define FAIL_(fmt, ...)                                                          \
    do {                                                                         \
        fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__); \
        (*tg_failed_)++;                                                         \
    } while (0)

#define CHECK(cond)                                  \
    do {                                             \
        if (!(cond)) FAIL_("check failed: %s", #cond); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                  \
    do {                                                                                       \
        double a_ = (a), b_ = (b);                                                             \
        if (!(fabs(a_ - b_) <= (tol))) FAIL_("%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol)); \
    } while (0)

/* The expression must fail (NULL or a non-OK status) with exactly the message msg, word
 * for word: a message is part of the API, so a changed one must change its test too. */
#define CHECK_ERROR(expr, msg)                                                                   \
    do {                                                                                         \
        tg_clear_error();                                                                        \
        (void)(expr);                                                                            \
        if (strcmp(tg_last_error(), (msg)) != 0)                                                 \
            FAIL_("%s: expected the error \"%s\", got \"%s\"", #expr, (msg), tg_last_error());    \
    } while (0)

/* Only for messages with parts the test cannot know in advance (a path, the OS's
 * strerror text, a device name): the fixed part sub must appear in the message. */
#define CHECK_ERROR_CONTAINS(expr, sub)                                                          \
    do {                                                                                         \
        tg_clear_error();                                                                        \
        (void)(expr);                                                                            \
        if (!*(sub) || !strstr(tg_last_error(), (sub)))                                         \
            FAIL_("%s: expected an error containing \"%s\", got \"%s\"", #expr, (sub), tg_last_error()); \
    } while (0)

/* A case that cannot run here (no OpenCL device, no fp64) says why and returns: it
 * counts as skipped, never as passed. */
static int tg_test_skipped_;
#define SKIP(...)                                      \
    do {                                               \
        printf("  skipped: ");                         \
        printf(__VA_ARGS__);                           \
        printf("\n");                                  \
        tg_test_skipped_ = 1;                          \
        return;                                        \
    } while (0)

/* main() running every case (or those whose name contains argv[1]). ready() is called
 * first; if it returns false the program exits 77 (meson's "skipped"). The exit status
 * is 1 if a case failed, else 77 if one was skipped (what was meant to be tested was
 * not), else 0; a filter that matches no case is an error. */
#define TG_TEST_MAIN_WITH(ready, ...)                                                      \
    int main(int argc, char **argv) {                                                      \
        const tg_test_case *cases[] = { __VA_ARGS__ };                                     \
        if (!(ready)()) return 77;                                                         \
        int n = (int)(sizeof cases / sizeof cases[0]), passed = 0, failed = 0, skipped = 0; \
        for (int i = 0; i < n; i++) {                                                      \
            if (argc > 1 && !strstr(cases[i]->name, argv[1])) continue;                    \
            int f = 0;                                                                     \
            tg_test_skipped_ = 0;                                                          \
            tg_clear_error();                                                              \
            tg_scope_begin();                                                              \
            cases[i]->fn(&f);                                                              \
            tg_scope_end();                                                                \
            printf("%s %s\n", f ? "FAIL" : tg_test_skipped_ ? "skip" : "ok  ", cases[i]->name); \
            if (f) failed++;                                                               \
            else if (tg_test_skipped_) skipped++;                                          \
            else passed++;                                                                 \
        }                                                                                  \
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);             \
        if (passed + failed + skipped == 0) {                                              \
            fprintf(stderr, "no case matches \"%s\"\n", argc > 1 ? argv[1] : "");          \
            return 1;                                                                      \
        }                                                                                  \
        return failed ? 1 : skipped ? 77 : 0;                                              \
    }

static inline bool tg_test_device_ready(void);
#define TG_TEST_MAIN(...) TG_TEST_MAIN_WITH(tg_test_device_ready, __VA_ARGS__)

/* Reads a tensor's values as doubles (any dtype); caller frees. */
static inline double *tg_test_values(tg_tensor *t) {
    int64_t n = tg_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    tg_tensor *d = tg_cast(t, TG_F64);
    if (!d || tg_copy_to_host(d, v, (size_t)n * sizeof *v) != TG_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* The device under test: $TG_TEST_DEVICE, else cpu. */
static inline tg_device *tg_test_device(void) {
    const char *d = getenv("TG_TEST_DEVICE");
    return tg_device_get(d && *d ? d : "cpu");
}

/* The device under test exists; else says why (the program is then skipped). */
static inline bool tg_test_device_ready(void) {
    if (tg_test_device()) return true;
    printf("skipped: %s\n", tg_last_error());
    return false;
}

#endif
