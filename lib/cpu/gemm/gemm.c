/* The CPU GEMM entry points: picks the micro-kernels for this CPU once, keeps per-thread
 * packing buffers, and instantiates the driver (gemm_driver_tmpl.h) for f32 and f64.
 * Scratch rule: each thread owns one 64-byte-aligned buffer that grows to the largest
 * request and is freed when the thread exits (a pthread key destructor). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/gemm/gemm_blas.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"

/* The unpacked small-problem kernel runs below TG_GEMM_SMALL_FLOPS (packing would cost
 * more than the product), and whenever B fits in L2 (it is then read from L2 for every
 * four rows of A at full speed) unless K is too short to amortise a tile's stores.
 * TG_GEMM_GRAIN_FLOPS is the pool's grain: the least work (~5 us on one core) worth a
 * thread that is awake. Measured on Zen 4 (1 MB L2) with bench/bench_gemm.c. */
#define TG_GEMM_SMALL_FLOPS (2.0 * 32 * 32 * 64)
#define TG_GEMM_SMALL_B_BYTES (384.0 * 1024)
#define TG_GEMM_SMALL_MIN_K 64
#define TG_GEMM_GRAIN_FLOPS (2.0 * 64 * 64 * 64)
/* The narrowest band of C a thread takes in the packed path: a band re-packs the whole
 * other operand, which must stay small next to the band's product. */
#define TG_GEMM_MIN_BAND 256
/* A batch item above this many flops per thread threads within itself instead. */
#define TG_GEMM_BATCH_ITEM_FLOPS (2.0 * 256 * 256 * 256)

/* ---------------------------------------------------------------- scratch */

typedef struct {
    void *data;
    size_t size;
} tg_gemm_buf;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void tg_gemm_buf_free(void *p)
{
    tg_gemm_buf *b = p;
    if (b)
        free(b->data);
    free(b);
}

static void tg_gemm_scratch_init(void)
{
    pthread_key_create(&g_scratch_key, tg_gemm_buf_free);
}

/* The calling thread's buffer of at least size bytes, or NULL when out of memory.
 * Invalidates what an earlier call on this thread returned. */
static void *tg_gemm_scratch(size_t size)
{
    pthread_once(&g_scratch_once, tg_gemm_scratch_init);
    tg_gemm_buf *b = pthread_getspecific(g_scratch_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(g_scratch_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->size < size) {
        size = (size + 4095) & ~(size_t)4095;
        free(b->data);
        b->data = aligned_alloc(64, size);
        b->size = b->data ? size : 0;
    }
    return b->data;
}

/* ---------------------------------------------------------------- kernels */

static tg_gemm_kernels g_kernels;
static pthread_once_t g_kernels_once = PTHREAD_ONCE_INIT;

static void ukr_c_f32(int64_t k, const float *a, const float *b, float *c, int64_t rsc, int acc);
static void ukr_c_f64(int64_t k, const double *a, const double *b, double *c, int64_t rsc,
                      int acc);

/* Fills k with the named set; "" picks the best this CPU runs. Returns 0 or -1. */
static int tg_gemm_fill(tg_gemm_kernels *k, const char *name)
{
    /* the plain-C fallback; the optional members stay NULL */
    *k = (tg_gemm_kernels){
        .name = "c",
        .f32 = { .mr = 4, .nr = 8, .kc = 256, .mc = 128, .nc = 1024, .ukr = ukr_c_f32 },
        .f64 = { .mr = 4, .nr = 8, .kc = 256, .mc = 128, .nc = 1024, .ukr = ukr_c_f64 },
    };
    int best = !*name;
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f");
    if (avx512 && (best || strcmp(name, "avx512") == 0)) {
        tg_gemm_fill_avx512(k);
        return 0;
    }
    if (avx2 && (best || strcmp(name, "avx2") == 0)) {
        tg_gemm_fill_avx2(k);
        return 0;
    }
#endif
    return best || strcmp(name, "c") == 0 ? 0 : -1;
}

static void tg_gemm_kernels_init(void)
{
    tg_gemm_fill(&g_kernels, "");
}

int tg_gemm_select(const char *name)
{
    pthread_once(&g_kernels_once, tg_gemm_kernels_init);
    tg_gemm_kernels k;
    if (tg_gemm_fill(&k, name) != 0)
        return -1;
    g_kernels = k;
    return 0;
}

static const tg_gemm_kernels *tg_gemm_kernels_get(void)
{
    pthread_once(&g_kernels_once, tg_gemm_kernels_init);
    return &g_kernels;
}

const tg_gemm_kernels *tg_gemm_kernels_current(void)
{
    return tg_gemm_kernels_get();
}

const char *tg_cpu_gemm_kernel_name(void)
{
    return tg_gemm_kernels_get()->name;
}

static int64_t tg_gemm_abs(int64_t x)
{
    return x < 0 ? -x : x;
}

/* ---------------------------------------------------------------- the packed-B cache */

/* A weight multiplied many times while unchanged (at every step of a recurrence, in
 * forward and in backward) is packed once: the second call with a key sees it packed
 * and later ones reuse it until its version changes. A key seen once only takes a slot
 * (no copy), so operands used once cost nothing. Entries in use are never evicted. */
#define TG_GEMM_CACHE_SLOTS 8
#define TG_GEMM_CACHE_MAX_BYTES ((size_t)64 << 20)

typedef void (*tg_gemm_prepack_fn)(const tg_gemm_kernels *kr, int64_t K, int64_t N, const void *B,
                                   int64_t rsb, int64_t csb, void *dst);

typedef struct {
    tg_gemm_b_key key;
    const tg_gemm_kernels *kr;
    const char *kernel_name; /* tg_gemm_select may refill kr in place */
    size_t elsize;
    const void *B;
    int64_t rsb, csb, K, N;
    void *packed;            /* NULL: seen once */
    size_t bytes;
    int users;
    uint64_t last_use;
} tg_gemm_cached;

static tg_gemm_cached g_cache[TG_GEMM_CACHE_SLOTS];
static size_t g_cache_bytes;
static uint64_t g_cache_clock;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong g_cache_hits;

static bool tg_gemm_cache_match(const tg_gemm_cached *e, const tg_gemm_b_key *key, const tg_gemm_kernels *kr,
                                size_t elsize, const void *B, int64_t rsb, int64_t csb, int64_t K, int64_t N)
{
    return e->key.storage_id == key->storage_id && e->key.version == key->version && e->kr == kr &&
           e->kernel_name == kr->name && e->elsize == elsize && e->B == B && e->rsb == rsb && e->csb == csb &&
           e->K == K && e->N == N;
}

static void tg_gemm_cache_drop(tg_gemm_cached *e)
{
    free(e->packed);
    g_cache_bytes -= e->bytes;
    memset(e, 0, sizeof *e);
}

/* The packed B for this key, packing it on its second sighting; NULL: pack as usual. */
static tg_gemm_cached *tg_gemm_cache_acquire(const tg_gemm_b_key *key, const tg_gemm_kernels *kr, size_t elsize,
                                             const void *B, int64_t rsb, int64_t csb, int64_t K, int64_t N,
                                             tg_gemm_prepack_fn prepack)
{
    int64_t nr = elsize == sizeof(float) ? kr->f32.nr : kr->f64.nr;
    size_t bytes = (size_t)K * (size_t)((N + nr - 1) / nr * nr) * elsize;
    if (bytes > TG_GEMM_CACHE_MAX_BYTES / 2 || key->storage_id == 0)
        return NULL;
    pthread_mutex_lock(&g_cache_lock);
    tg_gemm_cached *hit = NULL, *victim = NULL;
    for (int i = 0; i < TG_GEMM_CACHE_SLOTS; i++) {
        tg_gemm_cached *e = &g_cache[i];
        if (e->key.storage_id == key->storage_id && e->key.version != key->version && e->users == 0)
            tg_gemm_cache_drop(e); /* an older version of this storage: stale */
        if (!hit && e->key.storage_id && tg_gemm_cache_match(e, key, kr, elsize, B, rsb, csb, K, N))
            hit = e;
        else if (e->users == 0 && (!victim || !e->key.storage_id || (victim->key.storage_id && e->last_use < victim->last_use)))
            victim = e;
    }
    tg_gemm_cached *out = NULL;
    if (hit && !hit->packed) { /* second sighting: pack it, making room if needed */
        for (int i = 0; i < TG_GEMM_CACHE_SLOTS && g_cache_bytes + bytes > TG_GEMM_CACHE_MAX_BYTES; i++)
            if (&g_cache[i] != hit && g_cache[i].users == 0 && g_cache[i].packed)
                tg_gemm_cache_drop(&g_cache[i]);
        if (g_cache_bytes + bytes <= TG_GEMM_CACHE_MAX_BYTES && (hit->packed = aligned_alloc(64, (bytes + 63) & ~(size_t)63))) {
            prepack(kr, K, N, B, rsb, csb, hit->packed);
            hit->bytes = bytes;
            g_cache_bytes += bytes;
        }
    } else if (hit) {
        atomic_fetch_add_explicit(&g_cache_hits, 1, memory_order_relaxed);
    }
    if (hit && hit->packed) {
        hit->users++;
        hit->last_use = ++g_cache_clock;
        out = hit;
    } else if (!hit && victim) { /* first sighting: remember the key only */
        if (victim->key.storage_id) tg_gemm_cache_drop(victim);
        *victim = (tg_gemm_cached){ *key, kr, kr->name, elsize, B, rsb, csb, K, N, NULL, 0, 0, ++g_cache_clock };
    }
    pthread_mutex_unlock(&g_cache_lock);
    return out;
}

static void tg_gemm_cache_release(tg_gemm_cached *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&g_cache_lock);
    e->users--;
    pthread_mutex_unlock(&g_cache_lock);
}

uint64_t tg_cpu_gemm_cache_hits(void)
{
    return atomic_load(&g_cache_hits);
}

void tg_cpu_gemm_cache_clear(void)
{
    pthread_mutex_lock(&g_cache_lock);
    for (int i = 0; i < TG_GEMM_CACHE_SLOTS; i++)
        if (g_cache[i].users == 0 && g_cache[i].key.storage_id)
            tg_gemm_cache_drop(&g_cache[i]);
    pthread_mutex_unlock(&g_cache_lock);
}

/* ---------------------------------------------------------------- the driver */

#define T float
#define S f32
#define FN(name) name##_f32
#include "lib/cpu/gemm/gemm_driver_tmpl.h"
#undef T
#undef S
#undef FN

#define T double
#define S f64
#define FN(name) name##_f64
#include "lib/cpu/gemm/gemm_driver_tmpl.h"
#undef T
#undef S
#undef FN

void tg_cpu_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                     const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                     int64_t rsc, int64_t csc)
{
    if (tg_cpu_blas_active() && tg_cpu_blas_gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc)) return;
    gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, tg_pool_num_threads(), NULL);
}

void tg_cpu_gemm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa,
                     int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta,
                     double *C, int64_t rsc, int64_t csc)
{
    if (tg_cpu_blas_active() && tg_cpu_blas_gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc)) return;
    gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, tg_pool_num_threads(), NULL);
}

void tg_cpu_gemm_serial_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa,
                            int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta,
                            float *C, int64_t rsc, int64_t csc)
{
    gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, 1, NULL);
}

void tg_cpu_gemm_serial_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa,
                            int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta,
                            double *C, int64_t rsc, int64_t csc)
{
    gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, 1, NULL);
}

void tg_cpu_gemm_batched_f32(int64_t batch, int64_t M, int64_t N, int64_t K, const float *A,
                             const int64_t *a_off, int64_t rsa, int64_t csa, const float *B,
                             const int64_t *b_off, int64_t rsb, int64_t csb, float beta,
                             float *C, const int64_t *c_off, int64_t rsc, int64_t csc)
{
    if (tg_cpu_blas_active()) { /* BLAS threads each item itself; all items share one
                                 * layout, so either the first fails and none ran, or all run */
        int64_t done = 0;
        while (done < batch && tg_cpu_blas_gemm_f32(M, N, K, A + a_off[done], rsa, csa, B + b_off[done], rsb, csb,
                                                    beta, C + c_off[done], rsc, csc))
            done++;
        if (done == batch) return;
    }
    gemm_batched_f32(batch, M, N, K, A, a_off, rsa, csa, B, b_off, rsb, csb, beta, C, c_off,
                     rsc, csc);
}

void tg_cpu_gemm_batched_f64(int64_t batch, int64_t M, int64_t N, int64_t K, const double *A,
                             const int64_t *a_off, int64_t rsa, int64_t csa, const double *B,
                             const int64_t *b_off, int64_t rsb, int64_t csb, double beta,
                             double *C, const int64_t *c_off, int64_t rsc, int64_t csc)
{
    if (tg_cpu_blas_active()) {
        int64_t done = 0;
        while (done < batch && tg_cpu_blas_gemm_f64(M, N, K, A + a_off[done], rsa, csa, B + b_off[done], rsb, csb,
                                                    beta, C + c_off[done], rsc, csc))
            done++;
        if (done == batch) return;
    }
    gemm_batched_f64(batch, M, N, K, A, a_off, rsa, csa, B, b_off, rsb, csb, beta, C, c_off,
                     rsc, csc);
}

void tg_cpu_gemm_keyed_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                           const float *B, int64_t rsb, int64_t csb, float beta, float *C, int64_t rsc,
                           int64_t csc, const tg_gemm_b_key *key)
{
    if (tg_cpu_blas_active() && tg_cpu_blas_gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc)) return;
    gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, tg_pool_num_threads(), key);
}

void tg_cpu_gemm_keyed_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa,
                           const double *B, int64_t rsb, int64_t csb, double beta, double *C, int64_t rsc,
                           int64_t csc, const tg_gemm_b_key *key)
{
    if (tg_cpu_blas_active() && tg_cpu_blas_gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc)) return;
    gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, tg_pool_num_threads(), key);
}
