/* A tensor used after its scope released it is reported by the next op, never read
 * as stale numbers. Registered twice: plain (objects wait in a quarantine before
 * reuse, so the dead magic is still there) and with TG_DEBUG=1 (never reused; the
 * message names the scope). Under AddressSanitizer without TG_DEBUG every released
 * object goes back to the system and ASan itself reports the use: that run skips. */
#include "harness.h"

static bool debug_mode(void) {
    const char *e = getenv("TG_DEBUG");
    return e && strcmp(e, "1") == 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define TG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_TEST_ASAN 1
#endif
#endif

/* Under ASan without TG_DEBUG a released object is freed at once: reading it is
 * ASan's to report, so the quarantine case cannot run there. */
static bool quarantine_testable(void) {
#ifdef TG_TEST_ASAN
    return debug_mode();
#else
    return true;
#endif
}

TEST(use_after_scope_end_is_reported) {
    if (!quarantine_testable()) SKIP("under AddressSanitizer a released tensor is freed at once and ASan reports its use");
    tg_device *dev = tg_test_device();
    tg_tensor *stale;
    tg_scope_begin();
    tg_scope_begin(); /* scope #3 at depth 3: the harness opened #1, this case #2 */
    stale = tg_ones(TG_F32, TG_SHAPE(3), dev);
    tg_scope_end();
    tg_tensor *fresh = tg_zeros(TG_F32, TG_SHAPE(3), dev); /* the allocator would hand the object back here */
    CHECK(fresh != stale);
    if (debug_mode())
        CHECK_ERROR(tg_add(stale, fresh), "tg_add: a was already released: released at the end of its scope "
                    "(missing tg_keep?) (scope #3, depth 3)");
    else
        CHECK_ERROR(tg_add(stale, fresh), "tg_add: a was already released: released at the end of its scope "
                    "(missing tg_keep?)");
    CHECK(tg_last_status() == TG_ERR_STATE);
    tg_scope_end();
}

TEST(release_twice_is_reported) {
    if (!quarantine_testable()) SKIP("under AddressSanitizer a released tensor is freed at once and ASan reports its use");
    tg_device *dev = tg_test_device();
    tg_tensor *t = tg_take(tg_ones(TG_F32, TG_SHAPE(2), dev));
    int64_t live = tg_live_tensors();
    tg_release(t);
    CHECK(tg_live_tensors() == live - 1);
    CHECK_ERROR(tg_release(t), "tg_release: t was already released: released by tg_release");
    CHECK(tg_live_tensors() == live - 1);
}

TG_TEST_MAIN(&tg_case_use_after_scope_end_is_reported, &tg_case_release_twice_is_reported)
