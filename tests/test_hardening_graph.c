/* Hardening of creation, printing, the thread pool and the backend kernels: sizes from
 * user input that overflow, empty tensors, bad random and thread arguments, the i64
 * dtype in every kernel, negative indices, and messages that name the function called.
 *
 * Kernel checks call the device's backend table directly (the contract in
 * lib/graph/backend.h), so they run on whichever device TG_TEST_DEVICE names. The
 * references are independent: 128-bit integer arithmetic for the saturating i64 ops,
 * a Philox-4x32-10 written here from the paper and checked against its published
 * known-answer vector, and values worked out by hand. */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lib/graph/backend.h"
#include "lib/graph/tensor-impl.h"
#include "lib/cpu/threadpool.h"

__extension__ typedef __int128 i128;

#define P53 9007199254740992LL /* 2^53 */
#define P62 4611686018427387904LL

static tg_device *dev(void) { return tg_test_device(); }

static int64_t sat128(i128 v) { return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v; }

/* Reads n i64 values (the tensor must be i64). */
static bool read_i64(tg_tensor *t, int64_t *out, int64_t n) {
    return t && tg_dtype_of(t) == TG_I64 && tg_numel(t) == n && tg_copy_to_host(t, out, (size_t)n * 8) == TG_OK;
}

#define CHECK_I64_EQ(t, expect, n)                                                                          \
    do {                                                                                                    \
        int64_t got_[256];                                                                                  \
        if (!read_i64((t), got_, (n))) {                                                                    \
            FAIL_("%s: could not read %d i64 values: %s", #t, (int)(n), tg_last_error());                   \
            break;                                                                                          \
        }                                                                                                   \
        for (int64_t k_ = 0; k_ < (n); k_++)                                                                \
            if (got_[k_] != (expect)[k_]) {                                                                 \
                FAIL_("%s[%lld] = %lld, expected %lld", #t, (long long)k_, (long long)got_[k_],             \
                      (long long)(expect)[k_]);                                                             \
                break;                                                                                      \
            }                                                                                               \
    } while (0)

/* ------------------------------------------------------------- a Philox reference */

/* Philox-4x32-10 (Salmon et al. 2011): ten rounds of two 32x32->64 multiplies. */
static void philox_ref(uint32_t ctr[4], uint32_t key[2]) {
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t m0 = (uint64_t)0xD2511F53u * ctr[0], m1 = (uint64_t)0xCD9E8D57u * ctr[2];
        uint32_t x0 = (uint32_t)(m1 >> 32) ^ ctr[1] ^ k0, x1 = (uint32_t)m1;
        uint32_t x2 = (uint32_t)(m0 >> 32) ^ ctr[3] ^ k1, x3 = (uint32_t)m0;
        ctr[0] = x0, ctr[1] = x1, ctr[2] = x2, ctr[3] = x3;
        k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
}

/* The numbers of element i after tg_manual_seed(seed): counter i (low word first). */
static void draw(uint64_t seed, uint64_t i, uint32_t r[4]) {
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    r[0] = (uint32_t)i, r[1] = (uint32_t)(i >> 32), r[2] = 0, r[3] = 0;
    philox_ref(r, key);
}

TEST(philox_reference_matches_known_answers) {
    /* Random123's kat_vectors: philox4x32 10 rounds, counter 0, key 0, and all ones. */
    uint32_t c[4] = { 0, 0, 0, 0 }, k[2] = { 0, 0 };
    philox_ref(c, k);
    CHECK(c[0] == 0x6627e8d5u && c[1] == 0xe169c58du && c[2] == 0xbc57ac4cu && c[3] == 0x9b00dbd8u);
    uint32_t c1[4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu }, k1[2] = { 0xffffffffu, 0xffffffffu };
    philox_ref(c1, k1);
    CHECK(c1[0] == 0x408f276du && c1[1] == 0x41c83b0eu && c1[2] == 0xa20bc7c6u && c1[3] == 0x6d5451fdu);
    uint32_t c2[4] = { 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u }, k2[2] = { 0xa4093822u, 0x299f31d0u };
    philox_ref(c2, k2);
    CHECK(c2[0] == 0xd16cfe09u && c2[1] == 0x94fdccebu && c2[2] == 0x5001e420u && c2[3] == 0x24126ea1u);
}

/* ------------------------------------------------------------- 1. sizes that overflow */

TEST(linspace_and_arange_refuse_absurd_counts) {
    CHECK_ERROR(tg_linspace(TG_F64, 0, 1, 1LL << 62, dev()),
                "tg_linspace: 4611686018427387904 steps is too many (at most 576460752303423487)");
    CHECK(tg_last_status() == TG_ERR_INVALID);
    CHECK_ERROR(tg_linspace(TG_F32, 0, 1, INT64_MAX, dev()),
                "tg_linspace: 9223372036854775807 steps is too many (at most 576460752303423487)");
    CHECK_ERROR(tg_arange(TG_F32, 0, 1e30, 1, dev()),
                "tg_arange: [0, 1e+30) step 1 has 1e+30 elements (at most 576460752303423487)");
    CHECK_ERROR(tg_arange(TG_I64, -1e308, 1e308, 1, dev()),
                "tg_arange: [-1e+308, 1e+308) step 1 has inf elements (at most 576460752303423487)");
    /* the largest arange that fits is still refused by the allocator, not by UB */
    tg_clear_error();
    tg_tensor *t = tg_linspace(TG_F64, 2, 3, 5, dev());
    double v[5], want[5] = { 2, 2.25, 2.5, 2.75, 3 };
    CHECK(t && tg_copy_to_host(t, v, sizeof v) == TG_OK);
    for (int i = 0; t && i < 5; i++) CHECK(v[i] == want[i]);
    CHECK(tg_numel(tg_linspace(TG_F32, 0, 1, 0, dev())) == 0);
}

TEST(shapes_whose_strides_overflow_are_refused) {
    int64_t big = 1LL << 40;
    CHECK_ERROR(tg_zeros(TG_F32, TG_SHAPE(0, big, big), dev()),
                "tg_zeros: shape [0,1099511627776,1099511627776] is too large");
    CHECK_ERROR(tg_empty(TG_U8, TG_SHAPE(big, big), dev()), "tg_empty: shape [1099511627776,1099511627776] is too large");
    CHECK_ERROR(tg_ones(TG_F64, TG_SHAPE(big, 0, big), dev()), "tg_ones: shape [1099511627776,0,1099511627776] is too large");
    CHECK_ERROR(tg_eye(TG_F32, big, dev()), "tg_eye: shape [1099511627776,1099511627776] is too large");
    CHECK_ERROR(tg_randn(TG_F32, TG_SHAPE(big, big), dev()), "tg_randn: shape [1099511627776,1099511627776] is too large");
    static const int64_t one = 1;
    CHECK_ERROR(tg_from_i64(&one, TG_SHAPE(big, big), dev()), "tg_from_i64: shape [1099511627776,1099511627776] is too large");
    /* the most a shape may hold: 2^59 - 1 elements; one more is refused */
    CHECK_ERROR(tg_empty(TG_F32, TG_SHAPE(576460752303423488), dev()), "tg_empty: shape [576460752303423488] is too large");
}

/* A shape too long to print in 128 bytes ends in ",...]" (it used to write past the
 * buffer once a size straddled the end). */
TEST(long_shapes_print_truncated_inside_the_buffer) {
    int64_t M = INT64_MAX;
    CHECK_ERROR(tg_empty(TG_F32, TG_SHAPE(100000000000000000, M, M, M, M, M, M, M), dev()),
                "tg_empty: shape [100000000000000000,9223372036854775807,9223372036854775807,9223372036854775807,"
                "9223372036854775807,9223372036854775807,...] is too large");
    CHECK_ERROR(tg_empty(TG_F32, TG_SHAPE(M, M, M, M, M, M, M, M), dev()),
                "tg_empty: shape [9223372036854775807,9223372036854775807,9223372036854775807,9223372036854775807,"
                "9223372036854775807,9223372036854775807,...] is too large");
}

/* ------------------------------------------------------------- 2. empty tensors */

TEST(random_creation_of_empty_tensors) {
    tg_shape shapes[] = { TG_SHAPE(2, 0), TG_SHAPE(0), TG_SHAPE(3, 0, 2), TG_SHAPE(0, 5) };
    for (int i = 0; i < 4; i++) {
        tg_clear_error();
        CHECK(tg_numel(tg_randn(TG_F32, shapes[i], dev())) == 0);
        CHECK(tg_numel(tg_rand(TG_F64, shapes[i], dev())) == 0);
        CHECK(tg_numel(tg_bernoulli(TG_I64, shapes[i], 0.5, dev())) == 0);
        tg_tensor *t = tg_zeros(TG_F32, shapes[i], dev());
        CHECK(tg_uniform_(t, -1, 1) == TG_OK);
        CHECK(tg_normal_(t, 0, 2) == TG_OK);
        CHECK(tg_uniform_(tg_transpose(tg_zeros(TG_F32, TG_SHAPE(4, 0), dev()), 0, 1), 0, 1) == TG_OK);
        CHECK(tg_last_status() == TG_OK);
    }
}

/* Reductions of empty tensors: sums over an empty axis are 0 (f32 and integers into
 * i64); max, min and the arg ops over one are an error; an empty output is fine. */
TEST(reduce_kernels_on_empty_axes) {
    tg_device *d = dev();
    const tg_backend *be = d->be;
    tg_tensor *xf = tg_zeros(TG_F32, TG_SHAPE(3, 0), d), *xi = tg_zeros(TG_I64, TG_SHAPE(3, 0), d);
    tg_tensor *xu = tg_zeros(TG_U8, TG_SHAPE(3, 0), d);
    tg_tensor *of = tg_full(TG_F32, TG_SHAPE(3, 1), 7, d), *oi = tg_full(TG_I64, TG_SHAPE(3, 1), 7, d);
    CHECK(be->reduce(TG_RED_SUM, of, xf, 2) == TG_OK);
    CHECK(be->reduce(TG_RED_SUM, oi, xi, 2) == TG_OK);
    float vf[3];
    CHECK(tg_copy_to_host(of, vf, sizeof vf) == TG_OK && vf[0] == 0 && vf[1] == 0 && vf[2] == 0);
    static const int64_t zeros[3] = { 0, 0, 0 };
    CHECK_I64_EQ(oi, zeros, 3);
    tg_fill_(oi, 7);
    CHECK(be->reduce(TG_RED_SUM, oi, xu, 2) == TG_OK);
    CHECK_I64_EQ(oi, zeros, 3);
    tg_tensor *o1 = tg_full(TG_I64, TG_SHAPE(1, 1), 7, d);
    CHECK(be->reduce(TG_RED_SUM, o1, xi, 3) == TG_OK);
    CHECK_I64_EQ(o1, zeros, 1);

    tg_clear_error();
    CHECK(be->reduce(TG_RED_MAX, of, xf, 2) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_max: cannot reduce over axis 1 of size 0") == 0);
    tg_clear_error();
    CHECK(be->reduce(TG_RED_MIN, oi, xi, 2) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_min: cannot reduce over axis 1 of size 0") == 0);
    tg_clear_error();
    CHECK(be->reduce(TG_RED_ARGMAX, oi, xf, 2) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_argmax: cannot reduce over axis 1 of size 0") == 0);
    /* reducing the non-empty axis of [3, 0] gives an empty [1, 0]: nothing to check */
    tg_clear_error();
    CHECK(be->reduce(TG_RED_MAX, tg_empty(TG_F32, TG_SHAPE(1, 0), d), xf, 1) == TG_OK);
    CHECK(be->reduce(TG_RED_ARGMIN, tg_empty(TG_I64, TG_SHAPE(1, 0), d), xf, 1) == TG_OK);
    /* and through the op */
    CHECK(tg_numel(tg_sum(xf, TG_AXES(0), false)) == 0);
    tg_tensor *s = tg_sum(xf, TG_AXES(1), false);
    float sv[3] = { 1, 1, 1 };
    CHECK(s && tg_copy_to_host(s, sv, sizeof sv) == TG_OK && sv[0] == 0 && sv[1] == 0 && sv[2] == 0);
}

TEST(elementwise_index_and_matmul_kernels_on_empty_tensors) {
    tg_device *d = dev();
    const tg_backend *be = d->be;
    tg_tensor *a = tg_zeros(TG_I64, TG_SHAPE(2, 0), d), *b = tg_zeros(TG_I64, TG_SHAPE(2, 0), d);
    tg_tensor *o = tg_empty(TG_I64, TG_SHAPE(2, 0), d), *m = tg_empty(TG_U8, TG_SHAPE(2, 0), d);
    CHECK(be->fill(o, 3) == TG_OK);
    CHECK(be->copy(o, a) == TG_OK);
    CHECK(be->unary(TG_UN_NEG, o, a, 0, 0) == TG_OK);
    CHECK(be->binary(TG_BIN_ADD, o, a, b) == TG_OK);
    CHECK(be->binary(TG_BIN_LT, m, a, b) == TG_OK);
    CHECK(be->where(o, m, a, b) == TG_OK);
    CHECK(be->gather(o, a, 1, tg_empty(TG_I64, TG_SHAPE(2, 0), d)) == TG_OK);
    CHECK(be->scatter_add(tg_zeros(TG_I64, TG_SHAPE(2, 3), d), 1, tg_empty(TG_I32, TG_SHAPE(2, 0), d), o) == TG_OK);
    CHECK(be->random(TG_RNG_BERNOULLI, o, 1, 0, 0.5, 0) == TG_OK);
    /* [2, 0] @ [0, 3]: every output is an empty sum, 0 */
    tg_tensor *mm = tg_matmul(tg_zeros(TG_F32, TG_SHAPE(2, 0), d), tg_zeros(TG_F32, TG_SHAPE(0, 3), d));
    float v[6] = { 1, 1, 1, 1, 1, 1 };
    CHECK(mm && tg_numel(mm) == 6 && tg_copy_to_host(mm, v, sizeof v) == TG_OK);
    for (int i = 0; i < 6; i++) CHECK(v[i] == 0);
    tg_tensor *mi = tg_full(TG_I64, TG_SHAPE(2, 3), 5, d);
    CHECK(be->matmul(mi, a, tg_zeros(TG_I64, TG_SHAPE(0, 3), d)) == TG_OK);
    static const int64_t z6[6] = { 0 };
    CHECK_I64_EQ(mi, z6, 6);
    CHECK(be->log_softmax(tg_empty(TG_F32, TG_SHAPE(0, 5), d), tg_zeros(TG_F32, TG_SHAPE(0, 5), d), 1) == TG_OK);
    CHECK(be->log_softmax(tg_empty(TG_F32, TG_SHAPE(5, 0), d), tg_zeros(TG_F32, TG_SHAPE(5, 0), d), 1) == TG_OK);
    CHECK(tg_last_status() == TG_OK);
}

/* ------------------------------------------------------------- 3. printing empty tensors */

TEST(print_of_empty_tensors_is_immediate) {
    char buf[256], want[256];
    tg_tensor *t = tg_zeros(TG_F32, TG_SHAPE(1LL << 31, 0), dev());
    CHECK(t != NULL);
    int n = tg_snprint(buf, sizeof buf, t);
    snprintf(want, sizeof want, "tensor([], shape=[2147483648,0], dtype=f32, device=%s)", tg_device_name(dev()));
    CHECK(strcmp(buf, want) == 0 && n == (int)strlen(want));
    tg_snprint(buf, sizeof buf, tg_zeros(TG_I64, TG_SHAPE(0), dev()));
    snprintf(want, sizeof want, "tensor([], shape=[0], dtype=i64, device=%s)", tg_device_name(dev()));
    CHECK(strcmp(buf, want) == 0);
}

/* ------------------------------------------------------------- 4. random arguments */

TEST(random_arguments_out_of_their_domain) {
    tg_tensor *t = tg_zeros(TG_F32, TG_SHAPE(3), dev()), *t64 = tg_zeros(TG_F64, TG_SHAPE(3), dev());
    CHECK_ERROR(tg_normal_(t, 0, -1), "tg_normal_: expected std >= 0, got -1");
    CHECK(tg_last_status() == TG_ERR_INVALID);
    CHECK_ERROR(tg_normal_(t, NAN, 1), "tg_normal_: mean and std must be finite, got mean nan, std 1");
    CHECK_ERROR(tg_normal_(t, 0, NAN), "tg_normal_: mean and std must be finite, got mean 0, std nan");
    CHECK_ERROR(tg_normal_(t, 0, INFINITY), "tg_normal_: mean and std must be finite, got mean 0, std inf");
    CHECK_ERROR(tg_uniform_(t, 1, 0), "tg_uniform_: expected a [lo, hi) range, got lo 1 > hi 0");
    CHECK_ERROR(tg_uniform_(t, NAN, 1), "tg_uniform_: lo and hi must be finite in f32, got lo nan, hi 1");
    CHECK_ERROR(tg_uniform_(t, 0, 1e300), "tg_uniform_: lo and hi must be finite in f32, got lo 0, hi 1e+300");
    CHECK_ERROR(tg_uniform_(t64, -INFINITY, 0), "tg_uniform_: lo and hi must be finite, got lo -inf, hi 0");
    CHECK_ERROR(tg_uniform_(t64, -1e308, 1e308), "tg_uniform_: hi - lo overflows: lo -1e+308, hi 1e+308");
    CHECK_ERROR(tg_bernoulli(TG_F32, TG_SHAPE(2), 1.5, dev()), "tg_bernoulli: p must be in [0, 1], got 1.5");
    CHECK_ERROR(tg_bernoulli(TG_F32, TG_SHAPE(2), -0.1, dev()), "tg_bernoulli: p must be in [0, 1], got -0.1");
    CHECK_ERROR(tg_bernoulli(TG_F32, TG_SHAPE(2), NAN, dev()), "tg_bernoulli: p must be in [0, 1], got nan");
    CHECK_ERROR(tg_randn(TG_I64, TG_SHAPE(2), dev()), "tg_randn: expected a floating dtype (f32 or f64), got i64");
    CHECK_ERROR(tg_uniform_(tg_zeros(TG_I64, TG_SHAPE(2), dev()), 0, 1),
                "tg_uniform_: expected a floating dtype (f32 or f64), got i64");
    /* the edges are allowed: std 0 gives the mean, lo == hi gives lo */
    tg_clear_error();
    float v[3];
    CHECK(tg_normal_(t, 2.5, 0) == TG_OK && tg_copy_to_host(t, v, sizeof v) == TG_OK);
    CHECK(v[0] == 2.5f && v[1] == 2.5f && v[2] == 2.5f);
    CHECK(tg_uniform_(t, -4, -4) == TG_OK && tg_copy_to_host(t, v, sizeof v) == TG_OK);
    CHECK(v[0] == -4 && v[1] == -4 && v[2] == -4);
}

/* The numbers themselves, against the Philox reference: uniform f32 and f64, normal,
 * bernoulli into i64, and a fill through a transposed (strided) view. */
TEST(random_numbers_match_the_philox_reference) {
    const uint64_t seed = 0x123456789abcdefULL;
    tg_manual_seed(seed);
    float u[15];
    double u64[6], nv[8];
    int64_t bern[20];
    tg_tensor *tu = tg_rand(TG_F32, TG_SHAPE(3, 5), dev());                  /* counters 0..14 */
    tg_tensor *tu64 = tg_rand(TG_F64, TG_SHAPE(6), dev());                   /* 15..20 */
    tg_tensor *tn = tg_randn(TG_F64, TG_SHAPE(2, 4), dev());                 /* 21..28 */
    tg_tensor *tb = tg_bernoulli(TG_I64, TG_SHAPE(4, 5), 0.3, dev());        /* 29..48 */
    CHECK(tg_copy_to_host(tu, u, sizeof u) == TG_OK && tg_copy_to_host(tu64, u64, sizeof u64) == TG_OK);
    CHECK(tg_copy_to_host(tn, nv, sizeof nv) == TG_OK && read_i64(tb, bern, 20));
    uint32_t r[4];
    for (int i = 0; i < 15; i++) {
        draw(seed, (uint64_t)i, r);
        CHECK(u[i] == (float)((r[0] >> 8) * 0x1p-24));
    }
    for (int i = 0; i < 6; i++) {
        draw(seed, 15 + (uint64_t)i, r);
        CHECK(u64[i] == ((double)(r[0] >> 5) * 67108864.0 + (double)(r[1] >> 6)) * 0x1p-53);
    }
    for (int i = 0; i < 8; i++) {
        draw(seed, 21 + (uint64_t)i, r);
        double u1 = ((r[2] >> 8) + 1.0) * 0x1p-24, u2 = (r[3] >> 8) * 0x1p-24;
        CHECK_NEAR(nv[i], sqrt(-2 * log(u1)) * cos(2 * M_PI * u2), 1e-12);
    }
    int ones = 0;
    for (int i = 0; i < 20; i++) {
        draw(seed, 29 + (uint64_t)i, r);
        CHECK(bern[i] == ((r[0] >> 8) * 0x1p-24 < 0.3 ? 1 : 0));
        ones += bern[i] == 1;
    }
    CHECK(ones > 0 && ones < 20);
    /* uniform_ into the transpose of a [2, 3]: view position (i, j) is row-major
     * element 2 i + j of the view, so base element (j, i) gets counter 49 + 2 i + j */
    tg_tensor *base = tg_zeros(TG_F32, TG_SHAPE(2, 3), dev());
    CHECK(tg_uniform_(tg_transpose(base, 0, 1), -2, 2) == TG_OK);
    float bv[6];
    CHECK(tg_copy_to_host(base, bv, sizeof bv) == TG_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            draw(seed, 49 + (uint64_t)(2 * i + j), r);
            CHECK(bv[j * 3 + i] == (float)(-2 + 4 * ((r[0] >> 8) * 0x1p-24)));
        }
}

/* ------------------------------------------------------------- 5. thread count */

static int cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n > 256 ? 256 : n;
}

TEST(num_threads_values_are_parsed_strictly) {
    char w[256], want[256];
    const char *not_whole[] = { "1e3", "abc", "2x", "", " 4", "4 ", "0x10", "-", "1.5" };
    for (int i = 0; i < (int)(sizeof not_whole / sizeof *not_whole); i++) {
        CHECK(tg_pool_parse_threads(not_whole[i], 3, w, sizeof w) == 3);
        snprintf(want, sizeof want, "tapegrad: TG_NUM_THREADS='%s' is not a whole number of threads; using 3 (the "
                 "cores this process may use)", not_whole[i]);
        if (strcmp(w, want) != 0) FAIL_("'%s': got \"%s\"", not_whole[i], w);
    }
    const char *not_positive[] = { "0", "-1", "-00", "-99999999999999999999999" };
    for (int i = 0; i < 4; i++) {
        CHECK(tg_pool_parse_threads(not_positive[i], 3, w, sizeof w) == 3);
        snprintf(want, sizeof want, "tapegrad: TG_NUM_THREADS=%s is not a positive number of threads; using 3 (the "
                 "cores this process may use)", not_positive[i]);
        if (strcmp(w, want) != 0) FAIL_("'%s': got \"%s\"", not_positive[i], w);
    }
    CHECK(tg_pool_parse_threads("100000", 3, w, sizeof w) == 256);
    CHECK(strcmp(w, "tapegrad: TG_NUM_THREADS=100000 is more than 256, the most the pool runs; using 256") == 0);
    CHECK(tg_pool_parse_threads("99999999999999999999999", 3, w, sizeof w) == 256);
    CHECK(strcmp(w, "tapegrad: TG_NUM_THREADS=99999999999999999999999 is more than 256, the most the pool runs; "
                    "using 256") == 0);
    CHECK(tg_pool_parse_threads("7", 3, w, sizeof w) == 7 && w[0] == '\0');
    CHECK(tg_pool_parse_threads("+2", 3, w, sizeof w) == 2 && w[0] == '\0');
    CHECK(tg_pool_parse_threads("256", 3, w, sizeof w) == 256 && w[0] == '\0');
    CHECK(tg_pool_parse_threads(NULL, 3, w, sizeof w) == 3 && w[0] == '\0');
}

/* Run in a child process by the case below: prints the count the pool chose. */
TEST(env_threads_child) {
    if (getenv("TG_HARDENING_CHILD")) printf("threads=%d\n", tg_get_num_threads());
}

TEST(num_threads_env_warns_once_in_a_child_process) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        FAIL_("%s", "cannot find /proc/self/exe");
        return;
    }
    exe[len] = '\0';
    struct {
        const char *value;
        int threads;
        const char *warning_fmt; /* %d: the threads used */
    } cases[] = {
        { "1e3", cores(), "tapegrad: TG_NUM_THREADS='1e3' is not a whole number of threads; using %d (the cores this process may use)" },
        { "-1", cores(), "tapegrad: TG_NUM_THREADS=-1 is not a positive number of threads; using %d (the cores this process may use)" },
        { "100000", 256, "tapegrad: TG_NUM_THREADS=100000 is more than 256, the most the pool runs; using %d" },
        { "3", 3, NULL },
    };
    for (int c = 0; c < 4; c++) {
        char cmd[4300], line[512], all[4096] = "", want[512];
        snprintf(cmd, sizeof cmd, "TG_NUM_THREADS='%s' TG_HARDENING_CHILD=1 '%s' env_threads_child 2>&1", cases[c].value, exe);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        if (!p) continue;
        while (fgets(line, sizeof line, p)) strncat(all, line, sizeof all - strlen(all) - 1);
        CHECK(pclose(p) == 0);
        snprintf(want, sizeof want, "threads=%d\n", cases[c].threads);
        if (!strstr(all, want)) FAIL_("TG_NUM_THREADS=%s: child said \"%s\"", cases[c].value, all);
        int warnings = 0;
        for (const char *s = all; (s = strstr(s, "tapegrad: ")); s++) warnings++;
        CHECK(warnings == (cases[c].warning_fmt ? 1 : 0));
        if (cases[c].warning_fmt) {
            char w[400];
            snprintf(w, sizeof w, cases[c].warning_fmt, cases[c].threads);
            strncat(w, "\n", sizeof w - strlen(w) - 1);
            if (!strstr(all, w)) FAIL_("TG_NUM_THREADS=%s: no line \"%s\" in \"%s\"", cases[c].value, w, all);
        }
    }
}

TEST(set_num_threads_refuses_non_positive_counts) {
    int before = tg_get_num_threads();
    tg_clear_error();
    tg_set_num_threads(0);
    char want[200];
    snprintf(want, sizeof want, "tg_set_num_threads: n must be at least 1, got 0; keeping %d threads", before);
    CHECK(strcmp(tg_last_error(), want) == 0);
    CHECK(tg_get_num_threads() == before);
    tg_clear_error();
    tg_set_num_threads(-5);
    CHECK(tg_last_status() == TG_ERR_INVALID && tg_get_num_threads() == before);
    tg_set_num_threads(100000); /* capped, with a warning */
    CHECK(tg_get_num_threads() == 256);
    tg_set_num_threads(before);
    CHECK(tg_get_num_threads() == before);
}

/* ------------------------------------------------------------- 6. the i64 dtype */

static const int64_t k_vals[] = {
    0, 1, -1, 7, -7, P53 + 1, -(P53 + 1), P62, -P62, INT64_MAX, INT64_MIN, 3037000499LL, 123456789012345LL, 255, 256, -300,
};
#define NV ((int)(sizeof k_vals / sizeof k_vals[0]))

TEST(i64_round_trip_item_and_fill) {
    tg_tensor *t = tg_from_i64(k_vals, TG_SHAPE(NV), dev());
    CHECK_I64_EQ(t, k_vals, NV);
    CHECK(tg_dtype_of(t) == TG_I64 && tg_dtype_size(TG_I64) == 8);
    int64_t two = P53 + 2;
    CHECK(tg_item(tg_from_i64(&two, TG_SCALAR_SHAPE, dev())) == 9007199254740994.0);
    int64_t want[4] = { 1LL << 60, 1LL << 60, 1LL << 60, 1LL << 60 };
    CHECK_I64_EQ(tg_full(TG_I64, TG_SHAPE(2, 2), 0x1p60, dev()), want, 4);
    int64_t sat[2] = { INT64_MAX, INT64_MAX };
    CHECK_I64_EQ(tg_full(TG_I64, TG_SHAPE(2), 1e300, dev()), sat, 2);
    int64_t eye[4] = { 1, 0, 0, 1 };
    CHECK_I64_EQ(tg_eye(TG_I64, 2, dev()), eye, 4);
}

TEST(i64_casts_to_and_from_every_dtype) {
    tg_device *d = dev();
    /* i64 -> f32 / f64: one correct rounding (2^24 + 1 -> 2^24, 2^53 + 1 -> 2^53) */
    int64_t src[5] = { 16777217, P53 + 1, INT64_MAX, INT64_MIN, -3 };
    float f[5];
    double g[5];
    CHECK(tg_copy_to_host(tg_cast(tg_from_i64(src, TG_SHAPE(5), d), TG_F32), f, sizeof f) == TG_OK);
    CHECK(f[0] == 16777216.0f && f[1] == 9007199254740992.0f && f[2] == 0x1p63f && f[3] == -0x1p63f && f[4] == -3.0f);
    CHECK(tg_copy_to_host(tg_cast(tg_from_i64(src, TG_SHAPE(5), d), TG_F64), g, sizeof g) == TG_OK);
    CHECK(g[0] == 16777217.0 && g[1] == 9007199254740992.0 && g[2] == 0x1p63 && g[3] == -0x1p63 && g[4] == -3.0);
    /* 2^62 + 2^38 + 1 -> f32 is 2^62 + 2^39 (just above half an f32 ulp); through double
     * it would round twice: to 2^62 + 2^38, then a tie to even, 2^62 */
    int64_t tie = P62 + (1LL << 38) + 1;
    CHECK(tg_copy_to_host(tg_cast(tg_from_i64(&tie, TG_SHAPE(1), d), TG_F32), f, 4) == TG_OK);
    CHECK(f[0] == 0x1p62f + 0x1p39f);
    /* i64 -> i32 and u8 saturate */
    int64_t nar[6] = { INT64_MAX, -(P53 + 1), 70000, 300, -5, 7 };
    int32_t i32[6];
    uint8_t u8[6];
    CHECK(tg_copy_to_host(tg_cast(tg_from_i64(nar, TG_SHAPE(6), d), TG_I32), i32, sizeof i32) == TG_OK);
    CHECK(i32[0] == INT32_MAX && i32[1] == INT32_MIN && i32[2] == 70000 && i32[3] == 300 && i32[4] == -5 && i32[5] == 7);
    CHECK(tg_copy_to_host(tg_cast(tg_from_i64(nar, TG_SHAPE(6), d), TG_U8), u8, sizeof u8) == TG_OK);
    CHECK(u8[0] == 255 && u8[1] == 0 && u8[2] == 255 && u8[3] == 255 && u8[4] == 0 && u8[5] == 7);
    /* f64 / f32 -> i64 saturate, NaN -> 0, truncation toward zero */
    double fs[7] = { 1e20, -1e20, NAN, 0x1p62, -2.7, INFINITY, 0x1p63 };
    int64_t want[7] = { INT64_MAX, INT64_MIN, 0, P62, -2, INT64_MAX, INT64_MAX };
    CHECK_I64_EQ(tg_cast(tg_from_f64(fs, TG_SHAPE(7), d), TG_I64), want, 7);
    float ff[3] = { 3.9f, 0x1p40f, -0x1p63f };
    int64_t wantf[3] = { 3, 1LL << 40, INT64_MIN };
    CHECK_I64_EQ(tg_cast(tg_from_f32(ff, TG_SHAPE(3), d), TG_I64), wantf, 3);
    int32_t is[3] = { INT32_MIN, INT32_MAX, -1 };
    int64_t wanti[3] = { INT32_MIN, INT32_MAX, -1 };
    CHECK_I64_EQ(tg_cast(tg_from_i32(is, TG_SHAPE(3), d), TG_I64), wanti, 3);
    uint8_t us[2] = { 0, 255 };
    int64_t wantu[2] = { 0, 255 };
    CHECK_I64_EQ(tg_cast(tg_from_u8(us, TG_SHAPE(2), d), TG_I64), wantu, 2);
    /* a strided (transposed) i64 copy */
    int64_t m[6] = { P53 + 1, 2, 3, 4, 5, P53 + 7 }, mt[6] = { P53 + 1, 4, 2, 5, 3, P53 + 7 };
    CHECK_I64_EQ(tg_contiguous(tg_transpose(tg_from_i64(m, TG_SHAPE(2, 3), d), 0, 1)), mt, 6);
}

/* 128-bit references of the saturating integer ops. */
static int64_t ref_pow(int64_t a, int64_t e) {
    if (e < 0) return a == 1 ? 1 : a == -1 ? (e % 2 ? -1 : 1) : a == 0 ? INT64_MAX : 0;
    i128 r = 1;
    for (int64_t k = 0; k < e; k++) {
        r *= a;
        if (r > INT64_MAX || r < INT64_MIN) return (a < 0 && e % 2) ? INT64_MIN : INT64_MAX;
    }
    return (int64_t)r;
}

static int64_t ref_bin(tg_binary_op op, int64_t a, int64_t b) {
    switch (op) {
    case TG_BIN_ADD: return sat128((i128)a + b);
    case TG_BIN_SUB: return sat128((i128)a - b);
    case TG_BIN_MUL: return sat128((i128)a * b);
    case TG_BIN_DIV: return b == 0 ? (a > 0 ? INT64_MAX : a < 0 ? INT64_MIN : 0) : sat128((i128)a / b);
    case TG_BIN_POW: return ref_pow(a, b);
    case TG_BIN_MAXIMUM: return a > b ? a : b;
    case TG_BIN_MINIMUM: return a < b ? a : b;
    case TG_BIN_EQ: return a == b;
    case TG_BIN_NE: return a != b;
    case TG_BIN_LT: return a < b;
    case TG_BIN_LE: return a <= b;
    case TG_BIN_GT: return a > b;
    case TG_BIN_GE: return a >= b;
    default: return 0;
    }
}

TEST(i64_binary_ops_are_exact_and_saturate) {
    tg_device *d = dev();
    int n = NV * NV;
    int64_t *a = malloc((size_t)n * 8), *b = malloc((size_t)n * 8), *want = malloc((size_t)n * 8), *got = malloc((size_t)n * 8);
    int64_t *e = malloc((size_t)n * 8);
    for (int i = 0; i < NV; i++)
        for (int j = 0; j < NV; j++) {
            a[i * NV + j] = k_vals[i];
            b[i * NV + j] = k_vals[j];
            e[i * NV + j] = (j % 7) - 2; /* exponents -2 .. 4 */
        }
    tg_tensor *ta = tg_from_i64(a, TG_SHAPE(NV, NV), d), *tb = tg_from_i64(b, TG_SHAPE(NV, NV), d);
    tg_tensor *te = tg_from_i64(e, TG_SHAPE(NV, NV), d);
    for (int op = TG_BIN_ADD; op < TG_BIN_COUNT; op++) {
        bool cmp = op >= TG_BIN_FIRST_CMP;
        tg_tensor *rhs = op == TG_BIN_POW ? te : tb;
        const int64_t *bv = op == TG_BIN_POW ? e : b;
        tg_tensor *out = tg_empty(cmp ? TG_U8 : TG_I64, TG_SHAPE(NV, NV), d);
        CHECK(d->be->binary((tg_binary_op)op, out, ta, rhs) == TG_OK);
        if (cmp) {
            uint8_t *m = malloc((size_t)n);
            CHECK(tg_copy_to_host(out, m, (size_t)n) == TG_OK);
            for (int k = 0; k < n; k++) got[k] = m[k];
            free(m);
        } else {
            CHECK(read_i64(out, got, n));
        }
        for (int k = 0; k < n; k++) want[k] = ref_bin((tg_binary_op)op, a[k], bv[k]);
        for (int k = 0; k < n; k++)
            if (got[k] != want[k]) {
                FAIL_("op %d: %lld, %lld -> %lld, expected %lld", op, (long long)a[k], (long long)bv[k],
                      (long long)got[k], (long long)want[k]);
                break;
            }
    }
    /* broadcast (a stride-0 operand) and the ops layer's own path */
    int64_t row[3] = { P53, P53 + 1, -5 }, one = 1, want3[3] = { P53 + 1, P53 + 2, -4 };
    CHECK_I64_EQ(tg_add(tg_from_i64(row, TG_SHAPE(3), d), tg_from_i64(&one, TG_SCALAR_SHAPE, d)), want3, 3);
    uint8_t lt[3];
    tg_tensor *c = tg_lt(tg_from_i64(row, TG_SHAPE(3), d), tg_from_i64(want3, TG_SHAPE(3), d));
    CHECK(c && tg_copy_to_host(c, lt, 3) == TG_OK && lt[0] == 1 && lt[1] == 1 && lt[2] == 1);
    free(a), free(b), free(e), free(want), free(got);
}

static int64_t ref_un(tg_unary_op op, int64_t x, double p0, double p1) {
    switch (op) {
    case TG_UN_NEG: return sat128(-(i128)x);
    case TG_UN_ABS: return sat128(x < 0 ? -(i128)x : x);
    case TG_UN_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case TG_UN_RELU: return x > 0 ? x : 0;
    case TG_UN_SQUARE: return sat128((i128)x * x);
    case TG_UN_ADD_SCALAR: return sat128((i128)x + (i128)p0);
    case TG_UN_MUL_SCALAR: return sat128((i128)x * (i128)p0);
    case TG_UN_POW_SCALAR: return ref_pow(x, (int64_t)p0);
    default: return 0;
    }
}

TEST(i64_unary_ops_are_exact_and_saturate) {
    tg_device *d = dev();
    tg_tensor *x = tg_from_i64(k_vals, TG_SHAPE(NV), d);
    struct { tg_unary_op op; double p0, p1; } cs[] = {
        { TG_UN_NEG, 0, 0 }, { TG_UN_ABS, 0, 0 }, { TG_UN_SIGN, 0, 0 }, { TG_UN_RELU, 0, 0 }, { TG_UN_SQUARE, 0, 0 },
        { TG_UN_ADD_SCALAR, 3, 0 }, { TG_UN_ADD_SCALAR, -0x1p62, 0 }, { TG_UN_MUL_SCALAR, 3, 0 },
        { TG_UN_MUL_SCALAR, -1, 0 }, { TG_UN_POW_SCALAR, 3, 0 }, { TG_UN_POW_SCALAR, 0, 0 },
    };
    int64_t got[NV], want[NV];
    for (int c = 0; c < (int)(sizeof cs / sizeof *cs); c++) {
        tg_tensor *out = tg_empty(TG_I64, TG_SHAPE(NV), d);
        CHECK(d->be->unary(cs[c].op, out, x, cs[c].p0, cs[c].p1) == TG_OK && read_i64(out, got, NV));
        for (int k = 0; k < NV; k++) want[k] = ref_un(cs[c].op, k_vals[k], cs[c].p0, cs[c].p1);
        for (int k = 0; k < NV; k++)
            if (got[k] != want[k]) {
                FAIL_("unary %d (p0 %g): %lld -> %lld, expected %lld", (int)cs[c].op, cs[c].p0, (long long)k_vals[k],
                      (long long)got[k], (long long)want[k]);
                break;
            }
    }
    /* clamp and step compare exactly with fractional and huge bounds */
    int64_t v[6] = { P53, P53 + 1, -101, -100, 5, INT64_MAX };
    tg_tensor *tv = tg_from_i64(v, TG_SHAPE(6), d), *out = tg_empty(TG_I64, TG_SHAPE(6), d);
    CHECK(d->be->unary(TG_UN_CLAMP, out, tv, -100.5, 0x1p53) == TG_OK);
    int64_t wc[6] = { P53, P53, -100, -100, 5, P53 };
    CHECK_I64_EQ(out, wc, 6);
    CHECK(d->be->unary(TG_UN_CLAMP, out, tv, -INFINITY, INFINITY) == TG_OK);
    CHECK_I64_EQ(out, v, 6);
    CHECK(d->be->unary(TG_UN_STEP, out, tv, 0x1p53, 0) == TG_OK);
    int64_t ws[6] = { 0, 1, 0, 0, 0, 1 };
    CHECK_I64_EQ(out, ws, 6);
    /* ops with no integer form compute in double and convert back, truncating */
    int64_t small[3] = { 0, 1, 2 }, wexp[3] = { 1, 2, 7 }, whalf[3] = { 0, 1, 2 };
    tg_tensor *ts = tg_from_i64(small, TG_SHAPE(3), d), *o3 = tg_empty(TG_I64, TG_SHAPE(3), d);
    CHECK(d->be->unary(TG_UN_EXP, o3, ts, 0, 0) == TG_OK);
    CHECK_I64_EQ(o3, wexp, 3);
    CHECK(d->be->unary(TG_UN_ADD_SCALAR, o3, ts, 0.5, 0) == TG_OK);
    CHECK_I64_EQ(o3, whalf, 3);
    /* i32 follows the same rules, saturating at its own range */
    int32_t i[3] = { 65536, -65536, INT32_MIN }, oi[3];
    tg_tensor *ti = tg_from_i32(i, TG_SHAPE(3), d), *to = tg_empty(TG_I32, TG_SHAPE(3), d);
    CHECK(d->be->unary(TG_UN_SQUARE, to, ti, 0, 0) == TG_OK && tg_copy_to_host(to, oi, sizeof oi) == TG_OK);
    CHECK(oi[0] == INT32_MAX && oi[1] == INT32_MAX && oi[2] == INT32_MAX);
    CHECK(d->be->unary(TG_UN_NEG, to, ti, 0, 0) == TG_OK && tg_copy_to_host(to, oi, sizeof oi) == TG_OK);
    CHECK(oi[0] == -65536 && oi[1] == 65536 && oi[2] == INT32_MAX);
}

TEST(i64_where_arange_and_matmul) {
    tg_device *d = dev();
    uint8_t c[4] = { 1, 0, 0, 1 };
    int64_t a[4] = { P53 + 1, 2, 3, INT64_MIN }, b[4] = { -1, P53 + 3, -3, 4 }, w[4] = { P53 + 1, P53 + 3, -3, INT64_MIN };
    CHECK_I64_EQ(tg_where(tg_from_u8(c, TG_SHAPE(4), d), tg_from_i64(a, TG_SHAPE(4), d), tg_from_i64(b, TG_SHAPE(4), d)), w, 4);
    int64_t ar[8], down[4] = { 10, 7, 4, 1 };
    for (int i = 0; i < 8; i++) ar[i] = P53 + i;
    CHECK_I64_EQ(tg_arange(TG_I64, 0x1p53, 0x1p53 + 8, 1, d), ar, 8);
    CHECK_I64_EQ(tg_arange(TG_I64, 10, 0, -3, d), down, 4);
    int64_t big[3] = { -P62, 0, P62 };
    CHECK_I64_EQ(tg_arange(TG_I64, -0x1p62, 0x1p62 + 0x1p40, 0x1p62, d), big, 3);
    /* [2, 3] @ [3, 2], exact past 2^53: the CPU backend's integer GEMM (tg_matmul itself
     * takes floats only, so other backends need none) */
    if (d != tg_device_get("cpu")) return;
    int64_t A[6] = { P53, 1, 2, 3, 4, 5 }, B[6] = { 1, 0, 1, 1, 0, 1 };
    int64_t C[4] = { P53 + 1, 3, 7, 9 };
    tg_tensor *out = tg_empty(TG_I64, TG_SHAPE(2, 2), d);
    CHECK(d->be->matmul(out, tg_from_i64(A, TG_SHAPE(2, 3), d), tg_from_i64(B, TG_SHAPE(3, 2), d)) == TG_OK);
    CHECK_I64_EQ(out, C, 4);
}

TEST(i64_reductions_are_exact) {
    tg_device *d = dev();
    const tg_backend *be = d->be;
    /* rows of i64 near 2^53 and the extremes, reduced along each axis. The CPU sums
     * exactly and saturates once at the end; OpenCL saturates as it accumulates, so the
     * two agree unless a partial sum overflows: INT64_MAX in column 0 and the last row, whose
     * partial sums do, are checked on the CPU only (README, dtypes). */
    bool cpu = d == tg_device_get("cpu");
    int64_t x[12] = { P53, 1, P53 + 1, -7, cpu ? INT64_MAX : 5, -1, 5, 6, INT64_MIN, 3, cpu ? -(P53 + 1) : 7, cpu ? P53 + 1 : 8 };
    tg_tensor *tx = tg_from_i64(x, TG_SHAPE(3, 4), d), *o31 = tg_empty(TG_I64, TG_SHAPE(3, 1), d);
    tg_tensor *o14 = tg_empty(TG_I64, TG_SHAPE(1, 4), d);
    int64_t s1[3], s0[4], mx[3], mn[4];
    for (int i = 0; i < 3; i++) {
        i128 s = 0;
        int64_t m = INT64_MIN;
        for (int j = 0; j < 4; j++) s += x[i * 4 + j], m = x[i * 4 + j] > m ? x[i * 4 + j] : m;
        s1[i] = sat128(s), mx[i] = m;
    }
    for (int j = 0; j < 4; j++) {
        i128 s = 0;
        int64_t m = INT64_MAX;
        for (int i = 0; i < 3; i++) s += x[i * 4 + j], m = x[i * 4 + j] < m ? x[i * 4 + j] : m;
        s0[j] = sat128(s), mn[j] = m;
    }
    CHECK(be->reduce(TG_RED_SUM, o31, tx, 2) == TG_OK);
    CHECK_I64_EQ(o31, s1, 3);
    CHECK(be->reduce(TG_RED_SUM, o14, tx, 1) == TG_OK);
    CHECK_I64_EQ(o14, s0, 4);
    CHECK(be->reduce(TG_RED_MAX, o31, tx, 2) == TG_OK);
    CHECK_I64_EQ(o31, mx, 3);
    CHECK(be->reduce(TG_RED_MIN, o14, tx, 1) == TG_OK);
    CHECK_I64_EQ(o14, mn, 4);
    /* transposed input */
    tg_tensor *o41 = tg_empty(TG_I64, TG_SHAPE(4, 1), d);
    CHECK(be->reduce(TG_RED_MIN, o41, tg_transpose(tx, 0, 1), 2) == TG_OK);
    CHECK_I64_EQ(o41, mn, 4);
    /* arg ops: 2^53 and 2^53 + 1 are one double apart only in int64 */
    int64_t ax[6] = { P53, P53 + 1, P53, -(P53 + 1), -P53, -(P53 + 1) };
    tg_tensor *tax = tg_from_i64(ax, TG_SHAPE(2, 3), d);
    tg_tensor *ai64 = tg_empty(TG_I64, TG_SHAPE(2, 1), d), *ai32 = tg_empty(TG_I32, TG_SHAPE(2, 1), d);
    CHECK(be->reduce(TG_RED_ARGMAX, ai64, tax, 2) == TG_OK);
    int64_t wam[2] = { 1, 1 }, wan[2] = { 0, 0 };
    CHECK_I64_EQ(ai64, wam, 2);
    CHECK(be->reduce(TG_RED_ARGMIN, ai32, tax, 2) == TG_OK);
    int32_t got32[2];
    CHECK(tg_copy_to_host(ai32, got32, sizeof got32) == TG_OK && got32[0] == wan[0] && got32[1] == wan[1]);
    CHECK(be->reduce(TG_RED_ARGMAX, ai32, tg_from_f32((float[]){ 1, NAN, 3, 5, 2, 5 }, TG_SHAPE(2, 3), d), 2) == TG_OK);
    CHECK(tg_copy_to_host(ai32, got32, sizeof got32) == TG_OK && got32[0] == 1 && got32[1] == 0);
    /* sums of u8 and i32 into i64 count exactly; into u8 they saturate */
    int n = 40000;
    uint8_t *u = malloc((size_t)n);
    int64_t *big = malloc((size_t)n * 8);
    i128 want_big = 0;
    int64_t want_u = 0;
    for (int i = 0; i < n; i++) {
        u[i] = (uint8_t)(i * 7 + 3);
        want_u += u[i];
        big[i] = (1LL << 45) + i * 977LL;
        want_big += big[i];
    }
    tg_tensor *tu = tg_from_u8(u, TG_SHAPE(n), d), *o1 = tg_empty(TG_I64, TG_SHAPE(1), d);
    CHECK(be->reduce(TG_RED_SUM, o1, tu, 1) == TG_OK);
    CHECK_I64_EQ(o1, &want_u, 1);
    tg_tensor *ou = tg_empty(TG_U8, TG_SHAPE(1), d);
    uint8_t su = 0;
    CHECK(be->reduce(TG_RED_SUM, ou, tu, 1) == TG_OK && tg_copy_to_host(ou, &su, 1) == TG_OK && su == 255);
    int64_t wb = sat128(want_big);
    CHECK(be->reduce(TG_RED_SUM, o1, tg_from_i64(big, TG_SHAPE(n), d), 1) == TG_OK); /* blocks of partial sums */
    CHECK_I64_EQ(o1, &wb, 1);
    int32_t i2[2] = { INT32_MAX, INT32_MAX };
    int64_t w2 = 2LL * INT32_MAX;
    CHECK(be->reduce(TG_RED_SUM, o1, tg_from_i32(i2, TG_SHAPE(2), d), 1) == TG_OK);
    CHECK_I64_EQ(o1, &w2, 1);
    int64_t ov[2] = { INT64_MAX, 1 }, wmax = INT64_MAX;
    CHECK(be->reduce(TG_RED_SUM, o1, tg_from_i64(ov, TG_SHAPE(2), d), 1) == TG_OK);
    CHECK_I64_EQ(o1, &wmax, 1);
    free(u), free(big);
}

/* ------------------------------------------------------------- 7. index kernels */

TEST(gather_and_scatter_add_take_i32_or_i64_indices) {
    tg_device *d = dev();
    const tg_backend *be = d->be;
    int64_t x[6] = { P53 + 1, P53 + 2, P53 + 3, -1, -2, INT64_MIN };
    tg_tensor *tx = tg_from_i64(x, TG_SHAPE(2, 3), d);
    int32_t i32[4] = { 2, 0, 1, 2 };
    int64_t i64[4] = { 2, 0, 1, 2 }, want[4] = { P53 + 3, P53 + 1, -2, INT64_MIN };
    tg_tensor *out = tg_empty(TG_I64, TG_SHAPE(2, 2), d);
    CHECK(be->gather(out, tx, 1, tg_from_i32(i32, TG_SHAPE(2, 2), d)) == TG_OK);
    CHECK_I64_EQ(out, want, 4);
    tg_fill_(out, 0);
    CHECK(be->gather(out, tx, 1, tg_from_i64(i64, TG_SHAPE(2, 2), d)) == TG_OK);
    CHECK_I64_EQ(out, want, 4);
    /* scatter_add into integer targets: the CPU backend's (tg_scatter_add takes floats
     * only, so other backends need none) */
    if (d != tg_device_get("cpu")) return;
    /* i64 targets add exactly, two indices hit one target */
    tg_tensor *acc = tg_from_i64(x, TG_SHAPE(2, 3), d);
    int64_t src[4] = { 10, 20, 1, INT64_MIN };
    int64_t sidx[4] = { 0, 0, 2, 2 };
    CHECK(be->scatter_add(acc, 1, tg_from_i64(sidx, TG_SHAPE(2, 2), d), tg_from_i64(src, TG_SHAPE(2, 2), d)) == TG_OK);
    int64_t wacc[6] = { P53 + 31, P53 + 2, P53 + 3, -1, -2, INT64_MIN };
    CHECK_I64_EQ(acc, wacc, 6);
    /* f32 and i32 targets: i32 used to be added as if it were float */
    int32_t ti[3] = { 1, 2, 3 }, si[2] = { 100000000, 7 }, got[3];
    int32_t ix[2] = { 1, 1 };
    tg_tensor *acc32 = tg_from_i32(ti, TG_SHAPE(3), d);
    CHECK(be->scatter_add(acc32, 0, tg_from_i32(ix, TG_SHAPE(2), d), tg_from_i32(si, TG_SHAPE(2), d)) == TG_OK);
    CHECK(tg_copy_to_host(acc32, got, sizeof got) == TG_OK && got[0] == 1 && got[1] == 100000009 && got[2] == 3);
}

TEST(negative_and_too_large_indices_are_errors) {
    tg_device *d = dev();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 3), d);
    int32_t neg[2] = { 0, -1 }, big[2] = { 3, 0 };
    CHECK_ERROR(tg_gather(x, 1, tg_from_i32(neg, TG_SHAPE(2, 1), d)), "tg_gather: index -1 is out of range for axis 1 of size 3");
    CHECK(tg_last_status() == TG_ERR_INVALID);
    CHECK_ERROR(tg_gather(x, 1, tg_from_i32(big, TG_SHAPE(2, 1), d)), "tg_gather: index 3 is out of range for axis 1 of size 3");
    CHECK_ERROR(tg_index_select(x, 0, tg_from_i32((int32_t[]){ -2 }, TG_SHAPE(1), d)),
                "tg_index_select: index -2 is out of range for axis 0 of size 2");
    CHECK_ERROR(tg_scatter_add(x, 0, tg_from_i32(neg, TG_SHAPE(1, 2), d), tg_ones(TG_F32, TG_SHAPE(1, 2), d)),
                "tg_scatter_add: index -1 is out of range for axis 0 of size 2");
    int64_t huge[1] = { INT64_MIN };
    tg_clear_error();
    CHECK(d->be->gather(tg_empty(TG_F32, TG_SHAPE(1, 1), d), x, 0, tg_from_i64(huge, TG_SHAPE(1, 1), d)) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_gather: index -9223372036854775808 is out of range for axis 0 of size 2") == 0);
    tg_clear_error();
    huge[0] = 1LL << 40;
    CHECK(d->be->scatter_add(x, 1, tg_from_i64(huge, TG_SHAPE(1, 1), d), tg_ones(TG_F32, TG_SHAPE(1, 1), d)) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_scatter_add: index 1099511627776 is out of range for axis 1 of size 3") == 0);
    tg_clear_error();
    CHECK(d->be->gather(tg_empty(TG_F32, TG_SHAPE(1, 1), d), x, 0, tg_zeros(TG_U8, TG_SHAPE(1, 1), d)) != TG_OK);
    CHECK(strcmp(tg_last_error(), "tg_gather: index must be i32 or i64, got u8") == 0);
}

/* ------------------------------------------------------------- printing i64 */

TEST(print_i64_exactly) {
    int64_t v[3] = { P53 + 1, INT64_MIN, 42 };
    char buf[256], want[256];
    tg_snprint(buf, sizeof buf, tg_from_i64(v, TG_SHAPE(3), dev()));
    snprintf(want, sizeof want, "tensor([    9007199254740993, -9223372036854775808,                   42], shape=[3], "
             "dtype=i64, device=%s)", tg_device_name(dev()));
    if (strcmp(buf, want) != 0) FAIL_("got \"%s\"", buf);
    int64_t s = -(P53 + 3);
    tg_snprint(buf, sizeof buf, tg_from_i64(&s, TG_SCALAR_SHAPE, dev()));
    snprintf(want, sizeof want, "tensor(-9007199254740995, shape=[], dtype=i64, device=%s)", tg_device_name(dev()));
    if (strcmp(buf, want) != 0) FAIL_("got \"%s\"", buf);
}

/* ------------------------------------------------------------- 8. messages name the call */

TEST(creation_messages_name_the_function_called) {
    CHECK_ERROR(tg_zeros(TG_F32, TG_SHAPE(2, -1), dev()), "tg_zeros: negative size in shape [2,-1]");
    CHECK_ERROR(tg_ones(TG_F32, TG_SHAPE(1), NULL), "tg_ones: device is NULL");
    CHECK_ERROR(tg_scalar((tg_dtype)99, 1, dev()), "tg_scalar: unknown dtype 99");
    CHECK_ERROR(tg_zeros_like(NULL), "tg_zeros_like: t is NULL");
    CHECK_ERROR(tg_from_f32(NULL, TG_SHAPE(1), dev()), "tg_from_f32: data is NULL");
    CHECK_ERROR(tg_from_u8((const uint8_t *)"", TG_SHAPE(-3), dev()), "tg_from_u8: negative size in shape [-3]");
    CHECK_ERROR(tg_rand(TG_F32, ((tg_shape){ .ndim = 9 }), dev()), "tg_rand: 9 dimensions (at most 8)");
    CHECK_ERROR(tg_eye(TG_F32, -2, dev()), "tg_eye: n must be >= 0, got -2");
    CHECK_ERROR(tg_linspace(TG_F32, 0, 1, -1, dev()), "tg_linspace: steps must be >= 0, got -1");
    CHECK_ERROR(tg_arange(TG_F32, 0, 1, 0, dev()), "tg_arange: bad range [0, 1) step 0");
    CHECK_ERROR(tg_arange((tg_dtype)7, 0, 1, 1, dev()), "tg_arange: unknown dtype 7");
    CHECK_ERROR(tg_uniform_(NULL, 0, 1), "tg_uniform_: tensor is NULL");
    CHECK_ERROR(tg_item(tg_zeros(TG_F32, TG_SHAPE(2), dev())), "tg_item: the tensor has shape [2]; only one-element "
                "tensors have an item");
}

TG_TEST_MAIN(&tg_case_philox_reference_matches_known_answers, &tg_case_linspace_and_arange_refuse_absurd_counts,
             &tg_case_shapes_whose_strides_overflow_are_refused, &tg_case_long_shapes_print_truncated_inside_the_buffer,
             &tg_case_random_creation_of_empty_tensors, &tg_case_reduce_kernels_on_empty_axes,
             &tg_case_elementwise_index_and_matmul_kernels_on_empty_tensors, &tg_case_print_of_empty_tensors_is_immediate,
             &tg_case_random_arguments_out_of_their_domain, &tg_case_random_numbers_match_the_philox_reference,
             &tg_case_num_threads_values_are_parsed_strictly, &tg_case_env_threads_child,
             &tg_case_num_threads_env_warns_once_in_a_child_process, &tg_case_set_num_threads_refuses_non_positive_counts,
             &tg_case_i64_round_trip_item_and_fill, &tg_case_i64_casts_to_and_from_every_dtype,
             &tg_case_i64_binary_ops_are_exact_and_saturate, &tg_case_i64_unary_ops_are_exact_and_saturate,
             &tg_case_i64_where_arange_and_matmul, &tg_case_i64_reductions_are_exact,
             &tg_case_gather_and_scatter_add_take_i32_or_i64_indices, &tg_case_negative_and_too_large_indices_are_errors,
             &tg_case_print_i64_exactly, &tg_case_creation_messages_name_the_function_called)
