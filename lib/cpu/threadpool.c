/* The CPU thread pool: persistent pthread workers, created on first use, that split a
 * range [0, n) into one chunk per thread. The caller runs chunk 0 itself; worker w runs
 * chunk w + 1. Workers spin briefly on the job counter, then sleep on a condition
 * variable, so an idle pool costs no CPU.
 *
 * Rules: one job runs at a time (g_run_lock); a second application thread that finds
 * the pool busy, and any call from inside a job, runs inline; so does a small job when
 * the workers are asleep (it pokes them awake for the next one). Workers are never
 * joined at exit: they sleep on a condvar, which LeakSanitizer does not mind. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, sched_getcpu, pthread_*affinity_np (meson sets it) */
#endif
#include "lib/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/graph/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TG_CPU_RELAX() _mm_pause()
#else
#define TG_CPU_RELAX() ((void)0)
#endif

#define TG_POOL_MAX_THREADS 256
/* How long a worker spins for the next job before it sleeps, and how long the caller
 * spins for the workers to finish before it yields. Back-to-back ops (a training step)
 * land inside the spin window; an idle pool sleeps after it. 100 us covers the host
 * work between an LSTM's step GEMMs (the cell, the tape): at 20 us the workers slept
 * between steps and each GEMM paid a 40-70 us wake (bench_rnn forward 6.2-6.8 ms at 20 us,
 * 4.7-5.4 ms at 100 us; forward+backward 19.2-19.8 against 15.8-17.1 ms). */
#define TG_POOL_SPIN_NS 100000
#define TG_POOL_POKED_SPIN_NS 200000
#define TG_POOL_WAIT_SPIN_NS 200000
/* A job that finds the workers asleep waits 40-70 us for them (measured on a 2-vCPU
 * KVM guest), the time of some 10-15 grains; below this many grains such a job runs
 * inline instead and only pokes the workers, so the calls after it find them spinning. */
#define TG_POOL_COLD_GRAINS 32

typedef struct {
    pthread_t thread;
    int index;               /* runs chunk index + 1 */
    uint64_t start_gen;      /* g_gen when created: the first job is any later value */
    atomic_bool quit;        /* set by a shrink, under g_run_lock */
#if defined(__linux__)
    cpu_set_t cpus;          /* its affinity when created */
    atomic_bool narrowed;    /* a waker took its own CPU out of the mask: restore it */
#endif
} tg_pool_worker;

/* The job being run; written by the caller before g_gen is bumped (release). A worker
 * whose chunk is past the job's chunk count must not read g_job (the next job may be
 * writing it), so the count also travels in the low bits of g_gen. */
static struct {
    tg_pool_fn fn;
    void *ctx;
    int64_t n;
    int nchunks;
} g_job;
#define TG_POOL_GEN_SHIFT 16

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_run_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;     /* sleep / wake */
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static atomic_uint_fast64_t g_gen;     /* bumped once per job (and on shrink) */
static atomic_int g_remaining;         /* worker chunks of the current job not done */
static atomic_int g_nthreads;          /* configured threads, caller included */
static atomic_int g_sleepers;          /* workers blocked on g_cond */
static atomic_uint g_poke;             /* bumped to send sleepers back to spinning */
static int g_nworkers;                 /* workers alive; changed under g_run_lock */
static tg_pool_worker *g_workers[TG_POOL_MAX_THREADS];
static _Thread_local bool tls_in_job;  /* inside fn: nested calls run inline */

static int64_t tg_pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void tg_pool_run_chunk(int chunk)
{
    int64_t n = g_job.n, c = g_job.nchunks;
    int64_t begin = n * chunk / c, end = n * (chunk + 1) / c;
    tls_in_job = true;
    g_job.fn(g_job.ctx, begin, end);
    tls_in_job = false;
}

/* Waits until g_gen differs from seen (spin, then sleep); returns the new value. A poke
 * (g_poke) while asleep starts a longer spin: the poker runs a job inline meanwhile and
 * will want the worker when it is done. */
static uint64_t tg_pool_wait_job(tg_pool_worker *w, uint64_t seen)
{
    int64_t spin = TG_POOL_SPIN_NS;
    for (;;) {
        int64_t deadline = tg_pool_now_ns() + spin;
        for (int i = 1;; i++) {
            uint64_t g = atomic_load_explicit(&g_gen, memory_order_acquire);
            if (g != seen)
                return g;
            TG_CPU_RELAX();
            if ((i & 63) == 0 && tg_pool_now_ns() > deadline)
                break;
        }
        pthread_mutex_lock(&g_lock);
        unsigned poke = atomic_load(&g_poke);
        atomic_fetch_add(&g_sleepers, 1);
        uint64_t g;
        while ((g = atomic_load(&g_gen)) == seen && atomic_load(&g_poke) == poke)
            pthread_cond_wait(&g_cond, &g_lock);
        atomic_fetch_sub(&g_sleepers, 1);
        pthread_mutex_unlock(&g_lock);
#if defined(__linux__)
        if (atomic_exchange(&w->narrowed, false))
            pthread_setaffinity_np(pthread_self(), sizeof w->cpus, &w->cpus);
#endif
        if (g != seen)
            return g;
        spin = TG_POOL_POKED_SPIN_NS;
    }
}

/* A sleeping worker that the caller wakes is often placed on the caller's own CPU (seen
 * on a 2-vCPU KVM guest: both then share one CPU for milliseconds while the other
 * idles). So before waking them, the caller takes its CPU out of the sleepers' masks;
 * each worker restores its mask once awake, so nothing stays pinned. Caller holds
 * g_run_lock (the worker list is stable). */
static void tg_pool_steer_sleepers(void)
{
#if defined(__linux__)
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return;
    for (int i = 0; i < g_nworkers; i++) {
        tg_pool_worker *w = g_workers[i];
        if (!CPU_ISSET(cpu, &w->cpus) || CPU_COUNT(&w->cpus) < 2)
            continue;
        cpu_set_t other = w->cpus;
        CPU_CLR(cpu, &other);
        if (pthread_setaffinity_np(w->thread, sizeof other, &other) == 0)
            atomic_store(&w->narrowed, true);
    }
#endif
}

/* Wakes the sleepers, if any. The caller changed g_gen or g_poke first (seq_cst), and a
 * sleeper counts itself in g_sleepers before it checks them under g_lock: either we
 * see it counted and broadcast under the lock, or it sees the change. No wake-up is
 * lost. */
static void tg_pool_wake(void)
{
    if (atomic_load(&g_sleepers) == 0)
        return;
    pthread_mutex_lock(&g_lock);
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static void *tg_pool_worker_main(void *arg)
{
    tg_pool_worker *w = arg;
    uint64_t seen = w->start_gen;
    for (;;) {
        seen = tg_pool_wait_job(w, seen);
        if (atomic_load_explicit(&w->quit, memory_order_acquire))
            break;
        int nchunks = (int)(seen & ((1u << TG_POOL_GEN_SHIFT) - 1));
        if (w->index + 1 < nchunks) {
            tg_pool_run_chunk(w->index + 1);
            atomic_fetch_sub_explicit(&g_remaining, 1, memory_order_acq_rel);
        }
    }
    free(w);
    return NULL;
}

/* Publishes a job of nchunks chunks (0: wake only, for a shrink). */
static void tg_pool_publish(int nchunks)
{
    uint64_t g = atomic_load_explicit(&g_gen, memory_order_relaxed) >> TG_POOL_GEN_SHIFT;
    atomic_store(&g_gen, ((g + 1) << TG_POOL_GEN_SHIFT) | (uint64_t)nchunks);
    tg_pool_wake();
}

/* Grows or shrinks the worker set to want workers; caller holds g_run_lock. On a failed
 * pthread_create the pool keeps the workers it has. */
static void tg_pool_resize(int want)
{
    while (g_nworkers < want) {
        tg_pool_worker *w = calloc(1, sizeof *w);
        if (!w)
            break;
        w->index = g_nworkers;
        w->start_gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
        atomic_init(&w->quit, false);
#if defined(__linux__)
        atomic_init(&w->narrowed, false);
        /* what the worker inherits from this thread */
        if (pthread_getaffinity_np(pthread_self(), sizeof w->cpus, &w->cpus) != 0)
            CPU_ZERO(&w->cpus);
#endif
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&w->thread, &attr, tg_pool_worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            free(w);
            break;
        }
        g_workers[g_nworkers++] = w;
    }
    if (g_nworkers > want) {
        /* No job is running (we hold g_run_lock), so the quitting workers are idle;
         * a publish with nchunks = 0 wakes everyone, and only they exit. */
        while (g_nworkers > want)
            atomic_store_explicit(&g_workers[--g_nworkers]->quit, true, memory_order_release);
        tg_pool_publish(0);
    }
}

static int tg_pool_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > TG_POOL_MAX_THREADS ? TG_POOL_MAX_THREADS : n;
}

int tg_pool_parse_threads(const char *value, int fallback, char *warning, size_t size)
{
    if (size)
        warning[0] = '\0';
    if (!value)
        return fallback;
    const char *p = value + (*value == '+' || *value == '-');
    bool digits = *p >= '0' && *p <= '9';
    while (*p >= '0' && *p <= '9')
        p++;
    if (!digits || *p) {
        snprintf(warning, size, "tapegrad: TG_NUM_THREADS='%.40s'%s is not a whole number of threads; using %d "
                 "(the cores this process may use)", value, strlen(value) > 40 ? "..." : "", fallback);
        return fallback;
    }
    long n = strtol(value, NULL, 10); /* saturates at LONG_MIN / LONG_MAX */
    if (n < 1) {
        snprintf(warning, size, "tapegrad: TG_NUM_THREADS=%.40s is not a positive number of threads; using %d (the "
                 "cores this process may use)", value, fallback);
        return fallback;
    }
    if (n > TG_POOL_MAX_THREADS) {
        snprintf(warning, size, "tapegrad: TG_NUM_THREADS=%.40s is more than %d, the most the pool runs; using %d",
                 value, TG_POOL_MAX_THREADS, TG_POOL_MAX_THREADS);
        return TG_POOL_MAX_THREADS;
    }
    return (int)n;
}

/* Reads TG_NUM_THREADS once; a value it cannot use is reported on stderr, once. */
static void tg_pool_init(void)
{
    char warning[256];
    int n = tg_pool_parse_threads(getenv("TG_NUM_THREADS"), tg_pool_cores(), warning, sizeof warning);
    if (warning[0])
        fprintf(stderr, "%s\n", warning);
    atomic_store(&g_nthreads, n);
}

int tg_pool_num_threads(void)
{
    pthread_once(&g_once, tg_pool_init);
    return atomic_load(&g_nthreads);
}

tg_status tg_pool_set_num_threads(int n)
{
    pthread_once(&g_once, tg_pool_init);
    if (n < 1) {
        tg_error(TG_ERR_INVALID, "tg_set_num_threads: n must be at least 1, got %d; keeping %d threads", n,
                 atomic_load(&g_nthreads));
        fprintf(stderr, "tapegrad: warning: %s\n", tg_last_error());
        return TG_ERR_INVALID;
    }
    if (n > TG_POOL_MAX_THREADS) {
        fprintf(stderr, "tapegrad: warning: tg_set_num_threads: %d is more than %d, the most the pool runs; using %d\n",
                n, TG_POOL_MAX_THREADS, TG_POOL_MAX_THREADS);
        n = TG_POOL_MAX_THREADS;
    }
    pthread_mutex_lock(&g_run_lock);
    atomic_store(&g_nthreads, n);
    if (g_nworkers > n - 1)
        tg_pool_resize(n - 1);  /* growing waits for the next job that needs them */
    pthread_mutex_unlock(&g_run_lock);
    return TG_OK;
}

void tg_pool_parallel_for(int64_t n, int64_t grain, tg_pool_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int nthreads = tg_pool_num_threads();
    int64_t nchunks = n / grain;
    if (nchunks > nthreads)
        nchunks = nthreads;
    if (nchunks <= 1 || tls_in_job || pthread_mutex_trylock(&g_run_lock) != 0) {
        fn(ctx, 0, n);
        return;
    }
    int cold = g_nworkers < nchunks - 1 || atomic_load(&g_sleepers) > 0;
    if (g_nworkers < nchunks - 1)
        tg_pool_resize((int)nchunks - 1); /* new workers start out spinning */
    if (cold && atomic_load(&g_sleepers) > 0)
        tg_pool_steer_sleepers();
    if (cold && n < TG_POOL_COLD_GRAINS * grain) {
        atomic_fetch_add(&g_poke, 1);
        tg_pool_wake();
        pthread_mutex_unlock(&g_run_lock);
        fn(ctx, 0, n);
        return;
    }
    if (g_nworkers < nchunks - 1)  /* thread creation failed: use what we have */
        nchunks = g_nworkers + 1;

    g_job.fn = fn;
    g_job.ctx = ctx;
    g_job.n = n;
    g_job.nchunks = (int)nchunks;
    atomic_store_explicit(&g_remaining, (int)nchunks - 1, memory_order_relaxed);
    tg_pool_publish((int)nchunks);

    tg_pool_run_chunk(0);

    int64_t deadline = 0;
    for (int i = 1; atomic_load_explicit(&g_remaining, memory_order_acquire) > 0; i++) {
        TG_CPU_RELAX();
        if ((i & 63) == 0) {
            int64_t now = tg_pool_now_ns();
            if (!deadline)
                deadline = now + TG_POOL_WAIT_SPIN_NS;
            else if (now > deadline)
                sched_yield();
        }
    }
    pthread_mutex_unlock(&g_run_lock);
}
