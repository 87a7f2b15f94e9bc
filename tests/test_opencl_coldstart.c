/* The OpenCL cold start (lib/opencl/program.c): kernels that take their op or input
 * dtype at run time agree with the CPU for every op they carry and every dtype; the
 * size-typed moves (fill, copy, where, gather) agree bit for bit for every dtype; the
 * direct and tiled GEMM kernels agree with host loops; a family of kernels is one
 * program, built on first use (stats from a fresh process
 * with a private XDG_CACHE_HOME); the background cache writer writes a settled run's
 * entries while it runs, writes at exit within its budget or probes and remembers a
 * device whose binaries cost more than its builds (what is written is sound), survives
 * fork, and threads that compile at once get the right results.
 * Exits 77 without an OpenCL device. */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "child_run.h"
#include "lib/opencl/opencl.h"

static tg_device *g_cpu, *g_cl;

static bool has_fp64(void) {
    tg_device_info info;
    return tg_device_get_info(g_cl, &info) == TG_OK && info.fp64;
}

static const tg_dtype k_dtypes[] = { TG_F32, TG_F64, TG_I32, TG_U8, TG_I64 };
#define NDT 5
#define EACH_DTYPE(dt)                                                                        \
    for (int dt##_i = 0; dt##_i < NDT; dt##_i++)                                              \
        for (tg_dtype dt = k_dtypes[dt##_i]; dt != (tg_dtype)-1 && (dt != TG_F64 || has_fp64()); \
             dt = (tg_dtype)-1)

/* A CPU tensor of shape (r, c) from a fixed host generator: integers in [lo, hi] (any
 * dtype, so integer dtypes hold them exactly), made on the CPU. */
static tg_tensor *host_ints(tg_dtype dt, int64_t r, int64_t c, int lo, int hi, uint32_t seed) {
    int64_t n = r * c;
    double *v = malloc((size_t)n * sizeof *v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = lo + (double)((x >> 11) % (uint64_t)(hi - lo + 1));
    }
    tg_tensor *t = tg_cast(tg_from_f64(v, TG_SHAPE(r, c), g_cpu), dt);
    free(v);
    return t;
}

/* The bytes of t (any device, any layout), malloc'ed; *n gets their count. */
static unsigned char *bytes_of(tg_tensor *t, size_t *n) {
    tg_tensor *h = t ? tg_contiguous(tg_to(t, g_cpu)) : NULL;
    *n = h ? (size_t)tg_numel(h) * tg_dtype_size(tg_dtype_of(h)) : 0;
    unsigned char *p = malloc(*n ? *n : 1);
    if (h && tg_copy_to_host(h, p, *n) != TG_OK) *n = 0;
    return p;
}

/* a (CPU) and b (OpenCL) hold the same dtype, shape and bytes. */
static bool same_bits(tg_tensor *a, tg_tensor *b, const char *what) {
    if (!a || !b) {
        fprintf(stderr, "  %s: no result (%s)\n", what, tg_last_error());
        return false;
    }
    size_t na, nb;
    unsigned char *pa = bytes_of(a, &na), *pb = bytes_of(b, &nb);
    tg_shape sa = tg_shape_of(a), sb = tg_shape_of(b);
    bool ok = tg_dtype_of(a) == tg_dtype_of(b) && sa.ndim == sb.ndim &&
              memcmp(sa.dims, sb.dims, sizeof sa.dims[0] * (size_t)sa.ndim) == 0 && na == nb &&
              memcmp(pa, pb, na) == 0;
    if (!ok) fprintf(stderr, "  %s: cpu and opencl differ\n", what);
    free(pa), free(pb);
    return ok;
}

/* Floats within rtol (NaN matching NaN), integers exactly. */
static bool agree(tg_tensor *a, tg_tensor *b, double rtol, const char *what) {
    if (!a || !b || tg_dtype_of(a) != tg_dtype_of(b)) {
        fprintf(stderr, "  %s: no result or dtypes differ (%s)\n", what, tg_last_error());
        return false;
    }
    tg_dtype dt = tg_dtype_of(a);
    if (dt != TG_F32 && dt != TG_F64) return same_bits(a, b, what);
    double *x = tg_test_values(tg_to(a, g_cpu)), *y = tg_test_values(tg_to(b, g_cpu));
    int64_t n = tg_numel(a), bad = 0;
    for (int64_t i = 0; x && y && i < n; i++) {
        double u = x[i], v = y[i];
        bool ok = isnan(u) || isnan(v) ? isnan(u) && isnan(v)
                  : isinf(u) || isinf(v) ? u == v
                                         : fabs(u - v) <= rtol * fmax(fmax(fabs(u), fabs(v)), 1e-2);
        if (!ok && bad++ == 0) fprintf(stderr, "  %s: element %lld: cpu %.9g, opencl %.9g\n", what, (long long)i, u, v);
    }
    bool ok = x && y && bad == 0;
    free(x), free(y);
    return ok;
}

static double rtol_of(tg_dtype dt) { return dt == TG_F32 ? 1e-5 : 1e-12; }

/* An op the API refuses for a dtype (exp of an integer) must be refused on both devices
 * with the same message; one it takes must agree. */
static bool both_refuse_or_agree(tg_tensor *c, const char *cerr, tg_tensor *d, const char *derr, double rtol,
                                 const char *what) {
    if (c) return agree(c, d, rtol, what);
    if (!d && strcmp(cerr, derr) == 0) return true;
    fprintf(stderr, "  %s: the cpu refused (%s), opencl %s\n", what, cerr, d ? "did not" : derr);
    return false;
}

#define CHECK_PAIR(cexpr, dexpr, rtol, what)                                    \
    do {                                                                        \
        char cerr_[256];                                                        \
        tg_clear_error();                                                       \
        tg_tensor *c_ = (cexpr);                                                \
        snprintf(cerr_, sizeof cerr_, "%s", tg_last_error());                  \
        tg_clear_error();                                                       \
        tg_tensor *d_ = (dexpr);                                                \
        CHECK(both_refuse_or_agree(c_, cerr_, d_, tg_last_error(), (rtol), (what))); \
        tg_clear_error();                                                       \
    } while (0)

/* ------------------------------------------------------------------ runtime op codes */

static tg_tensor *u_pow(tg_tensor *x) { return tg_pow_scalar(x, 2); }
static tg_tensor *u_add(tg_tensor *x) { return tg_add_scalar(x, 3); }
static tg_tensor *u_addf(tg_tensor *x) { return tg_add_scalar(x, 2.5); }
static tg_tensor *u_mul(tg_tensor *x) { return tg_mul_scalar(x, -2); }
static tg_tensor *u_clamp(tg_tensor *x) { return tg_clamp(x, -1, 2); }

/* Every unary op code (tg_unary's switch) on every dtype the API takes it for, strided
 * input, against the CPU; the step op through relu's gradient mask. */
TEST(every_unary_op_every_dtype) {
    static const struct {
        const char *name;
        tg_tensor *(*fn)(tg_tensor *);
        bool positive;
    } ops[] = {
        { "neg", tg_neg, false },     { "exp", tg_exp, false },          { "log", tg_log, true },
        { "sqrt", tg_sqrt, true },    { "rsqrt", tg_rsqrt, true },       { "abs", tg_abs, false },
        { "sign", tg_sign, false },   { "relu", tg_relu, false },        { "sigmoid", tg_sigmoid, false },
        { "tanh", tg_tanh, false },   { "sin", tg_sin, false },          { "cos", tg_cos, false },
        { "square", tg_square, false }, { "reciprocal", tg_reciprocal, true }, { "pow_scalar", u_pow, false },
        { "add_scalar", u_add, false }, { "add_scalar 2.5", u_addf, false }, { "mul_scalar", u_mul, false },
        { "clamp", u_clamp, false },
    };
    EACH_DTYPE(dt) {
        for (size_t q = 0; q < sizeof ops / sizeof ops[0]; q++) {
            tg_scope_begin();
            bool uns = dt == TG_U8 || ops[q].positive;
            tg_tensor *c = tg_transpose(host_ints(dt, 9, 7, uns ? 1 : -5, 9, (uint32_t)q + 1), 0, 1);
            tg_tensor *d = tg_transpose(tg_to(host_ints(dt, 9, 7, uns ? 1 : -5, 9, (uint32_t)q + 1), g_cl), 0, 1);
            char what[64];
            snprintf(what, sizeof what, "%s %s", ops[q].name, tg_dtype_name(dt));
            CHECK_PAIR(ops[q].fn(c), ops[q].fn(d), rtol_of(dt), what);
            tg_scope_end();
        }
        if (dt != TG_F32 && dt != TG_F64) continue;
        tg_scope_begin(); /* d relu / dx = step(x): the STEP code */
        tg_tensor *c = tg_param(host_ints(dt, 5, 6, -3, 3, 99)), *d = tg_param(tg_to(host_ints(dt, 5, 6, -3, 3, 99), g_cl));
        tg_tensor *gc = NULL, *gd = NULL, *lc = tg_sum(tg_relu(c), TG_ALL, false), *ld = tg_sum(tg_relu(d), TG_ALL, false);
        CHECK(tg_autograd_grad(1, &lc, NULL, 1, &c, &gc, NULL) == TG_OK &&
              tg_autograd_grad(1, &ld, NULL, 1, &d, &gd, NULL) == TG_OK);
        CHECK(agree(gc, gd, 0, "relu's gradient (step)"));
        tg_scope_end();
    }
}

/* Every binary and comparison op code on every dtype, with broadcasting. */
TEST(every_binary_op_every_dtype) {
    tg_tensor *(*const fns[])(tg_tensor *, tg_tensor *) = { tg_add, tg_sub, tg_mul, tg_div, tg_pow,
                                                            tg_maximum, tg_minimum, tg_eq, tg_ne, tg_lt,
                                                            tg_le, tg_gt, tg_ge };
    const char *names[] = { "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge" };
    EACH_DTYPE(dt) {
        for (int f = 0; f < 13; f++) {
            tg_scope_begin();
            bool pos = dt == TG_U8 || f == 3 || f == 4; /* u8; nonzero divisors; small positive powers */
            tg_tensor *ca = host_ints(dt, 4, 6, pos ? 1 : -4, 4, 3), *cb = host_ints(dt, 1, 6, pos ? 1 : -4, 4, 5);
            tg_tensor *da = tg_to(ca, g_cl), *db = tg_to(cb, g_cl);
            char what[64];
            snprintf(what, sizeof what, "%s %s", names[f], tg_dtype_name(dt));
            CHECK_PAIR(fns[f](ca, cb), fns[f](da, db), rtol_of(dt), what);
            tg_scope_end();
        }
    }
}

/* tg_convert: every (input, output) pair, strided, with values that saturate. */
TEST(every_conversion) {
    double v[] = { 0, -1.5, 2.7, 255.5, 256, 300, -300, 1e10, -1e10, NAN, INFINITY, -INFINITY,
                   2147483647.0, 77, 0.999, -0.999, 9.3e18, -9.3e18, 65, -1 };
    tg_tensor *src = tg_from_f64(v, TG_SHAPE(4, 5), g_cpu);
    EACH_DTYPE(in) {
        EACH_DTYPE(out) {
            tg_scope_begin();
            char what[64];
            snprintf(what, sizeof what, "cast %s -> %s", tg_dtype_name(in), tg_dtype_name(out));
            tg_tensor *c = tg_cast(src, in), *d = tg_to(c, g_cl);
            CHECK(same_bits(tg_cast(tg_transpose(c, 0, 1), out), tg_cast(tg_transpose(d, 0, 1), out), what));
            tg_scope_end();
        }
    }
}

/* ------------------------------------------------------------------ moves */

/* Fill (dense: the driver's fill; strided: the kernel), copy of a strided view, where,
 * gather and index_select with both index dtypes: bit for bit, every element size. */
TEST(moves_every_dtype_bit_exact) {
    int64_t ii[] = { 2, 0, 4, 4, 1, 3 };
    EACH_DTYPE(dt) {
        tg_scope_begin();
        char what[64];
        snprintf(what, sizeof what, "full %s", tg_dtype_name(dt));
        CHECK(same_bits(tg_full(dt, TG_SHAPE(3, 5), -7.25, g_cpu), tg_full(dt, TG_SHAPE(3, 5), -7.25, g_cl), what));
        tg_tensor *c = host_ints(dt, 6, 5, 0, 99, 17), *d = tg_to(c, g_cl);
        tg_tensor *cv = tg_slice(c, 1, 0, 5, 2), *dv = tg_slice(d, 1, 0, 5, 2); /* strided views */
        CHECK(tg_fill_(cv, 42) == TG_OK && tg_fill_(dv, 42) == TG_OK);
        snprintf(what, sizeof what, "fill_ of a strided view %s", tg_dtype_name(dt));
        CHECK(same_bits(c, d, what));
        snprintf(what, sizeof what, "contiguous of a transpose %s", tg_dtype_name(dt));
        CHECK(same_bits(tg_contiguous(tg_transpose(c, 0, 1)), tg_contiguous(tg_transpose(d, 0, 1)), what));
        tg_tensor *cm = tg_gt(host_ints(TG_I32, 6, 5, 0, 9, 4), tg_full(TG_I32, TG_SHAPE(1), 4, g_cpu));
        tg_tensor *e = host_ints(dt, 1, 5, 0, 9, 8);
        snprintf(what, sizeof what, "where %s", tg_dtype_name(dt));
        CHECK(same_bits(tg_where(cm, c, e), tg_where(tg_to(cm, g_cl), d, tg_to(e, g_cl)), what));
        for (int k = 0; k < 2; k++) {
            tg_dtype idt = k ? TG_I64 : TG_I32;
            tg_tensor *ci = tg_cast(tg_from_i64(ii, TG_SHAPE(6), g_cpu), idt), *di = tg_to(ci, g_cl);
            snprintf(what, sizeof what, "index_select %s by %s", tg_dtype_name(dt), tg_dtype_name(idt));
            CHECK(same_bits(tg_index_select(c, 1, tg_slice(ci, 0, 0, 5, 1)), tg_index_select(d, 1, tg_slice(di, 0, 0, 5, 1)), what));
            tg_tensor *cg = tg_reshape(ci, TG_SHAPE(6, 1)), *dg = tg_reshape(di, TG_SHAPE(6, 1));
            snprintf(what, sizeof what, "gather %s by %s", tg_dtype_name(dt), tg_dtype_name(idt));
            CHECK(same_bits(tg_gather(c, 1, cg), tg_gather(d, 1, dg), what));
        }
        tg_scope_end();
    }
}

/* ------------------------------------------------------------------ GEMM kernels */

/* An operand of logical shape (batch, r, c) of small integers: transposed, a view of a
 * (batch, c, r) tensor (strides (1, r)); batch 0 means a matrix (r, c). *host gets the
 * CPU tensor, the result the OpenCL one of the same values and layout. */
static tg_tensor *gemm_operand(tg_dtype dt, int64_t batch, int64_t r, int64_t c, bool transposed, uint32_t seed,
                               tg_tensor **host) {
    int64_t rows = transposed ? c : r, cols = transposed ? r : c;
    tg_tensor *h = host_ints(dt, (batch ? batch : 1) * rows, cols, -3, 3, seed);
    h = batch ? tg_reshape(h, TG_SHAPE(batch, rows, cols)) : h;
    int nd = batch ? 3 : 2;
    tg_tensor *d = tg_to(h, g_cl);
    *host = transposed ? tg_transpose(h, nd - 2, nd - 1) : h;
    return transposed ? tg_transpose(d, nd - 2, nd - 1) : d;
}

/* out (batch, M, N) of the OpenCL matmul against host loops in f64 over a (batch or 1,
 * M, K) and b (batch or 1, K, N): exact, integer inputs make every sum exact. */
static bool gemm_matches_loops(tg_tensor *out, tg_tensor *ha, tg_tensor *hb, int64_t batch, int64_t M, int64_t K,
                               int64_t N, bool b_batched, const char *what) {
    double *o = out ? tg_test_values(tg_to(out, g_cpu)) : NULL;
    double *a = tg_test_values(tg_contiguous(ha)), *b = tg_test_values(tg_contiguous(hb));
    int64_t bad = 0;
    for (int64_t q = 0; o && a && b && q < (batch ? batch : 1); q++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double r = 0;
                for (int64_t k = 0; k < K; k++) r += a[(q * M + m) * K + k] * b[((b_batched ? q : 0) * K + k) * N + n];
                double v = o[(q * M + m) * N + n];
                if (v != r && bad++ == 0)
                    fprintf(stderr, "  %s: [%lld,%lld,%lld] = %g, expected %g\n", what, (long long)q, (long long)m,
                            (long long)n, v, r);
            }
    bool ok = o && a && b && bad == 0;
    if (!o) fprintf(stderr, "  %s: no result (%s)\n", what, tg_last_error());
    free(o), free(a), free(b);
    return ok;
}

/* The direct kernel (forced), the tiled one (forced) and the choice by size, on shapes
 * with edges in every direction (1, below, at and above a 4 x 4 block and a 64-wide
 * tile), the MLP's shapes, transposed operands, batches with a shared b, and one
 * product above the direct kernel's limit (512^3) so that the choice takes the tiled. */
TEST(gemm_kernels_agree_with_host_loops) {
    static const struct {
        int64_t batch, M, K, N;
        bool ta, tb, b_batched;
    } cs[] = {
        { 0, 1, 1, 1, false, false, false },    { 0, 5, 7, 3, false, false, false },
        { 0, 4, 16, 4, true, false, false },    { 0, 33, 65, 17, true, false, false },
        { 0, 17, 9, 130, false, true, false },  { 0, 130, 70, 65, true, true, false },
        { 0, 64, 784, 10, false, true, false }, { 0, 10, 64, 256, true, false, false },
        { 3, 13, 31, 6, false, false, true },   { 2, 9, 5, 67, true, false, false },
        { 0, 512, 512, 513, false, false, false },
    };
    const int modes[] = { 3, 1, 0 }; /* direct, tiled, chosen by size */
    for (int f = 0; f < (has_fp64() ? 2 : 1); f++)
        for (int mi = 0; mi < 3; mi++) {
            tg_opencl_force_paths_for_test(modes[mi], 0, 0);
            for (size_t q = 0; q < sizeof cs / sizeof cs[0]; q++) {
                if (cs[q].M * cs[q].N * cs[q].K > (1 << 27) && (f || mi < 2)) continue; /* the choice, f32 */
                tg_scope_begin();
                tg_dtype dt = f ? TG_F64 : TG_F32;
                tg_tensor *ha, *hb;
                tg_tensor *a = gemm_operand(dt, cs[q].batch, cs[q].M, cs[q].K, cs[q].ta, 11 + (uint32_t)q, &ha);
                tg_tensor *b = gemm_operand(dt, cs[q].b_batched ? cs[q].batch : 0, cs[q].K, cs[q].N, cs[q].tb,
                                            31 + (uint32_t)q, &hb);
                char what[96];
                snprintf(what, sizeof what, "gemm mode %d %s case %zu", modes[mi], tg_dtype_name(dt), q);
                CHECK(gemm_matches_loops(tg_matmul(a, b), ha, hb, cs[q].batch, cs[q].M, cs[q].K, cs[q].N,
                                         cs[q].b_batched, what));
                tg_scope_end();
            }
        }
    tg_opencl_force_paths_for_test(0, 0, 0);
}

/* ------------------------------------------------------------------ processes */

/* Counts the entries (*.bin) under dir/tapegrad and whether a slow-binaries marker is there. */
static int entries(const char *dir, bool *marker) {
    char sub[512];
    snprintf(sub, sizeof sub, "%s/tapegrad", dir);
    DIR *dp = opendir(sub);
    int n = 0;
    if (marker) *marker = false;
    for (struct dirent *e; dp && (e = readdir(dp));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0) n++;
        if (marker && strncmp(e->d_name, "slow-binaries-", 14) == 0) *marker = true;
    }
    if (dp) closedir(dp);
    return n;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Work touching three programs: elementwise f32 (with its reductions), moves (gather,
 * casts, comparisons), elementwise i32. Returns false if a value is wrong. */
static bool three_families(tg_device *dev) {
    float f[6] = { 1, 2, 3, 4, 5, 6 };
    int32_t ix[3] = { 2, 0, 1 };
    tg_tensor *x = tg_from_f32(f, TG_SHAPE(6), dev), *i = tg_from_i32(ix, TG_SHAPE(3), dev);
    double s = tg_item(tg_sum(tg_mul(x, x), TG_ALL, false));                               /* 91 */
    double g = tg_item(tg_sum(tg_cast(tg_index_select(i, 0, i), TG_F32), TG_ALL, false)); /* 1 + 2 + 0 */
    double e = tg_item(tg_sum(tg_cast(tg_eq(i, i), TG_F32), TG_ALL, false));              /* 3 */
    double a = tg_item(tg_sum(tg_cast(tg_add(i, i), TG_F32), TG_ALL, false));             /* 6 */
    return s == 91 && g == 3 && e == 3 && a == 6;
}

static void print_stats(void) {
    tg_cl_cache_stats st;
    tg_opencl_cache_stats(&st);
    printf("%d %d %d %d\n", st.loaded, st.built, st.rejected, st.written);
    fflush(stdout);
}

/* The children, run as this program again with TG_COLDSTART_CHILD=mode. */
static int child(const char *mode) {
    tg_device *dev = tg_device_get("opencl");
    if (!dev) return 3;
    if (!strcmp(mode, "families")) { /* programs built after each family's first use */
        tg_cl_cache_stats none;
        tg_opencl_cache_stats(&none);
        printf("%d ", none.built); /* nothing is built before a first use */
        float f[4] = { 1, 2, 3, 4 };
        tg_tensor *x = tg_from_f32(f, TG_SHAPE(4), dev);
        tg_cl_cache_stats st[4];
        tg_item(tg_sum(tg_exp(tg_add(x, x)), TG_ALL, false)); /* binary, unary, sum: one program */
        tg_opencl_cache_stats(&st[0]);
        tg_item(tg_max(tg_sub(tg_mul(x, x), x), TG_ALL, false)); /* the same program */
        tg_opencl_cache_stats(&st[1]);
        uint8_t u[4] = { 9, 8, 7, 6 };
        int32_t ix[2] = { 3, 1 };
        tg_tensor *ui = tg_from_i32(ix, TG_SHAPE(2), dev);
        tg_item(tg_sum(tg_cast(tg_index_select(tg_from_u8(u, TG_SHAPE(4), dev), 0, ui), TG_F32), TG_ALL, false));
        tg_item(tg_sum(tg_index_select(x, 0, ui), TG_ALL, false)); /* moves: one program for u8 and f32 */
        tg_item(tg_sum(tg_cast(tg_ne(ui, ui), TG_F32), TG_ALL, false)); /* and i32's casts and comparisons */
        tg_opencl_cache_stats(&st[2]);
        tg_item(tg_sum(tg_cast(tg_mul(ui, ui), TG_F32), TG_ALL, false)); /* elementwise i32 */
        tg_opencl_cache_stats(&st[3]);
        for (int k = 0; k < 4; k++) printf("%d ", st[k].built);
        printf("\n");
        return 0;
    }
    if (!strcmp(mode, "exit")) exit(three_families(dev) ? 0 : 2); /* entries left to the exit flush */
    if (!strcmp(mode, "stats")) {
        bool ok = three_families(dev);
        print_stats();
        return ok ? 0 : 2;
    }
    if (!strcmp(mode, "settle")) { /* a settled run: entries appear while it runs */
        const char *dir = getenv("XDG_CACHE_HOME");
        bool ok = three_families(dev);
        float f[16] = { 0 };
        tg_tensor *x = tg_from_f32(f, TG_SHAPE(16), dev);
        double t0 = now_s();
        for (int k = 0; now_s() - t0 < 120 && entries(dir, NULL) == 0; k++) {
            tg_scope_begin();
            x = tg_keep(tg_add_scalar(x, 1)); /* launches, no new program */
            if (k % 64 == 63) tg_item(tg_sum(x, TG_ALL, false));
            tg_scope_end();
        }
        printf("%d\n", entries(dir, NULL));
        fflush(stdout);
        _exit(ok ? 0 : 2); /* no exit handlers: what is there, the background wrote */
    }
    if (!strcmp(mode, "fork")) { /* a child of fork() flushes without the parent's thread */
        bool ok = three_families(dev);
        float f[2] = { 1, 2 };
        tg_item(tg_sum(tg_argmax(tg_from_f32(f, TG_SHAPE(2), dev), 0, false), TG_ALL, false)); /* a fourth program */
        pid_t pid = fork(); /* queued entries not written yet: the run has not settled */
        if (pid == 0) {
            alarm(60);
            tg_cl_cache_stats st;
            tg_opencl_cache_stats(&st); /* must return: this process has no writer */
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2;
    }
    return 4;
}

static void child_main(void) __attribute__((constructor));
static void child_main(void) {
    const char *mode = getenv("TG_COLDSTART_CHILD");
    if (!mode) return;
    int rc = child(mode);
    fflush(stdout);
    _exit(rc);
}

/* Runs a child in mode with XDG_CACHE_HOME=dir; its stdout into out; its exit status or -1. */
static int run_child(const char *mode, const char *dir, char *out, size_t size) {
    return tg_test_run_child("TG_COLDSTART_CHILD", mode, dir, true, out, size);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static char *fresh_dir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/tg_coldstart_XXXXXX");
    return mkdtemp(buf);
}

TEST(a_family_is_one_program_built_on_first_use) {
    char dir[64], out[256];
    CHECK(fresh_dir(dir, sizeof dir));
    CHECK(run_child("families", dir, out, sizeof out) == 0);
    int a = -1, b[4] = { -1, -1, -1, -1 };
    CHECK(sscanf(out, "%d %d %d %d %d", &a, &b[0], &b[1], &b[2], &b[3]) == 5);
    if (a != 0 || b[0] != 1 || b[1] != 1 || b[2] != 2 || b[3] != 3)
        FAIL_("programs built before a first use %d, after each step: %d %d %d %d, expected 0, 1 1 2 3", a, b[0], b[1], b[2], b[3]);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(exit_writes_sound_entries_within_its_budget) {
    char dir[64], out[256];
    CHECK(fresh_dir(dir, sizeof dir));
    CHECK(run_child("exit", dir, out, sizeof out) == 0);
    bool marker;
    int n = entries(dir, &marker);
    /* All three fit the budget, or the probe (or a slow first entry) marked the device slow
     * and the rest were left. */
    if (n != 3 && !marker) FAIL_("%d of 3 entries written at exit, and no slow-binaries marker", n);
    int st[4] = { -1, -1, -1, -1 };
    CHECK(run_child("stats", dir, out, sizeof out) == 0); /* what was written loads */
    CHECK(sscanf(out, "%d %d %d %d", &st[0], &st[1], &st[2], &st[3]) == 4);
    if (st[0] != n || st[1] != 3 - n || st[2] != 0 || st[3] != 3 - n)
        FAIL_("next run: loaded %d built %d rejected %d written %d (%d entries there)", st[0], st[1], st[2], st[3], n);
    CHECK(entries(dir, NULL) == 3); /* tg_opencl_cache_stats writes all */
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(a_settled_run_writes_in_the_background) {
    char dir[64], out[256];
    CHECK(fresh_dir(dir, sizeof dir));
    CHECK(run_child("settle", dir, out, sizeof out) == 0);
    int n = 0;
    CHECK(sscanf(out, "%d", &n) == 1 && n >= 1);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(a_forked_child_flushes_without_the_writer) {
    char dir[64], out[256];
    CHECK(fresh_dir(dir, sizeof dir));
    CHECK(run_child("fork", dir, out, sizeof out) == 0);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ threads */

typedef struct {
    tg_dtype dt;
    bool ok;
} thread_job;

/* Each thread drives another family at once (the first builds race for the device lock). */
static void *thread_main(void *arg) {
    thread_job *j = arg;
    j->ok = true;
    for (int r = 0; r < 3; r++) {
        tg_scope_begin();
        tg_tensor *c = host_ints(j->dt, 8, 9, 1, 9, 21 + (uint32_t)r), *d = tg_to(c, g_cl);
        tg_tensor *fc = tg_sum(tg_cast(tg_mul(c, c), TG_F32), TG_AXES(1), false);
        tg_tensor *fd = tg_sum(tg_cast(tg_mul(d, d), TG_F32), TG_AXES(1), false);
        j->ok = j->ok && agree(fc, fd, 1e-5, tg_dtype_name(j->dt));
        tg_scope_end();
    }
    return NULL;
}

TEST(threads_building_at_once_agree) {
    thread_job jobs[4] = { { TG_F32, false }, { TG_I32, false }, { TG_U8, false }, { TG_I64, false } };
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, thread_main, &jobs[i]) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(jobs[i].ok);
}

static bool ready(void) {
    g_cpu = tg_device_get("cpu");
    g_cl = tg_device_get("opencl");
    if (!g_cl) printf("skipped: no OpenCL device (%s)\n", tg_last_error());
    tg_clear_error();
    return g_cpu && g_cl;
}

TG_TEST_MAIN_WITH(ready, &tg_case_every_unary_op_every_dtype, &tg_case_every_binary_op_every_dtype,
                  &tg_case_every_conversion, &tg_case_moves_every_dtype_bit_exact,
                  &tg_case_gemm_kernels_agree_with_host_loops,
                  &tg_case_a_family_is_one_program_built_on_first_use, &tg_case_exit_writes_sound_entries_within_its_budget,
                  &tg_case_a_settled_run_writes_in_the_background, &tg_case_a_forked_child_flushes_without_the_writer,
                  &tg_case_threads_building_at_once_agree)
