/* Programs, kernels and launches. Kernels are built on first use, for one dtype and one
 * variant (a second dtype), together with the kernels of their group (the table below):
 * a run compiles only the families it uses, and pays a driver's fixed cost per program
 * once per family rather than once per kernel.
 *
 * The program-binary cache: $XDG_CACHE_HOME/tapegrad (else ~/.cache/tapegrad), one
 * file per program named by the FNV-1a 64 hash of platform, device, driver version,
 * sources and build options. A file holds a header (magic, key, payload size, FNV-1a
 * 64 of the payload) and the driver's binary. An entry is used only if the header
 * matches, the file is exactly header plus payload, the payload hash matches and the
 * driver creates, builds and finds the kernel in the binary; anything else is rebuilt
 * from source and the entry rewritten. Entries are written to a temporary file in the
 * same directory, flushed to disk (fsync) and renamed over the old name, so a reader
 * sees the old entry or the new one, and a torn write cannot carry a matching hash.
 * Entries are written by a background thread once the run has settled, and at exit
 * within a budget (see "the cache writer"). TG_CL_CACHE=0 disables the cache. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

extern const char tg_cl_src_common[], tg_cl_src_elementwise[], tg_cl_src_reduce[], tg_cl_src_index[],
    tg_cl_src_gemm[], tg_cl_src_copy[], tg_cl_src_conv[], tg_cl_src_pool[], tg_cl_src_norm[],
    tg_cl_src_roi[];

/* What a kernel's variant means: nothing, or a second dtype (-DTG_DT_OUT, -DTG_IDX). */
typedef enum { V_NONE, V_DT_OUT, V_IDX } variant_kind;

/* Program groups: kernels a run needs together, built as one program per dtype (and,
 * where the group's kernels share a second dtype, per variant), so that a driver's
 * fixed cost per program (PoCL: ~0.1 s of OpenCL C headers for every clBuildProgram,
 * and ~0.5 s of LLVM start-up for the first) is paid once for the family: "moves" is
 * one program for every dtype (fill, copy, where, gather, casts, comparisons need no
 * arithmetic of theirs); "elementwise" holds a dtype's unary, binary, random, axpy,
 * reductions, log-softmax, scatter and direct GEMM kernels, what a training step needs.
 * SOLO kernels are built alone: templated sources that make one kernel a program
 * (conv.cl, pool.cl's backward), the tiled GEMM (large products only: a driver that
 * compiles every kernel of a program at its build, as GPU drivers do, compiles it only
 * for a run that has one), and kernels whose second dtype is not the group's default. */
typedef enum { SOLO, G_MOVE, G_EW, G_ARG, G_POOL, G_NORM, G_ROI, G_COUNT } group_id;
_Static_assert(G_COUNT == TG_CL_NGROUPS, "opencl.h sizes the group table");

static const struct {
    const char *name;
    const char *define; /* the group's whole -D list where it is not its kernels' -DK_<name> */
    bool carries; /* the group's kernels share their variant, which keys the program; else
                     a kernel with a variant shares the program only at its default (what
                     its source assumes without the option: a sum's output is its input's
                     dtype, indices are i32) and is built alone for the others */
} groups[] = {
    { "", NULL, false },       { "moves", "-DK_tg_moves", false }, { "elementwise", NULL, false },
    { "arg", NULL, true },     { "pool", NULL, false },            { "norm", NULL, false },
    { "roi", NULL, false },
};

static const struct {
    const char *name;
    const char *src;
    variant_kind variant;
    group_id group;
} kernels[] = {
    { "tg_fill", tg_cl_src_elementwise, V_NONE, G_MOVE },
    { "tg_copy", tg_cl_src_elementwise, V_NONE, G_MOVE },
    { "tg_unary", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_binary", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_compare", tg_cl_src_elementwise, V_NONE, G_MOVE },
    { "tg_where", tg_cl_src_elementwise, V_NONE, G_MOVE },
    { "tg_arange", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_random_uniform", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_sum_serial", tg_cl_src_reduce, V_DT_OUT, G_EW },
    { "tg_sum_wg", tg_cl_src_reduce, V_DT_OUT, G_EW },
    { "tg_sum_final", tg_cl_src_reduce, V_DT_OUT, G_EW },
    { "tg_mm_serial", tg_cl_src_reduce, V_NONE, G_EW },
    { "tg_mm_wg", tg_cl_src_reduce, V_NONE, G_EW },
    { "tg_mm_final", tg_cl_src_reduce, V_NONE, G_EW },
    { "tg_arg_serial", tg_cl_src_reduce, V_DT_OUT, G_ARG },
    { "tg_arg_wg", tg_cl_src_reduce, V_DT_OUT, G_ARG },
    { "tg_lsm_serial", tg_cl_src_reduce, V_NONE, G_EW },
    { "tg_lsm_wg", tg_cl_src_reduce, V_NONE, G_EW },
    { "tg_gather", tg_cl_src_elementwise, V_IDX, G_MOVE },
    { "tg_scatter_lines", tg_cl_src_index, V_IDX, G_EW },
    { "tg_scatter_atomic", tg_cl_src_index, V_IDX, G_EW },
    { "tg_gemm", tg_cl_src_gemm, V_NONE, SOLO }, /* the tiled GEMM: large products only */
    { "tg_convert", tg_cl_src_copy, V_NONE, G_MOVE },
    { "tg_conv_fwd", tg_cl_src_conv, V_NONE, SOLO },
    { "tg_conv_bwd_data", tg_cl_src_conv, V_NONE, SOLO },
    { "tg_conv_bwd_weight", tg_cl_src_conv, V_NONE, SOLO },
    { "tg_conv_sum_splits", tg_cl_src_conv, V_NONE, SOLO },
    { "tg_pool_max", tg_cl_src_pool, V_NONE, G_POOL },
    { "tg_pool_avg", tg_cl_src_pool, V_NONE, G_POOL },
    { "tg_pool_bwd_max", tg_cl_src_pool, V_NONE, SOLO }, /* pool.cl templates the two */
    { "tg_pool_bwd_max_planes", tg_cl_src_pool, V_NONE, G_POOL },
    { "tg_pool_bwd_avg", tg_cl_src_pool, V_NONE, SOLO },
    { "tg_unpool_win", tg_cl_src_pool, V_NONE, G_POOL },
    { "tg_unpool_out", tg_cl_src_pool, V_NONE, G_POOL },
    { "tg_norm_stats", tg_cl_src_norm, V_NONE, G_NORM },
    { "tg_norm_apply", tg_cl_src_norm, V_NONE, G_NORM },
    { "tg_norm_bsums", tg_cl_src_norm, V_NONE, G_NORM },
    { "tg_norm_dwb", tg_cl_src_norm, V_NONE, G_NORM },
    { "tg_norm_dx", tg_cl_src_norm, V_NONE, G_NORM },
    { "tg_roi_pool", tg_cl_src_roi, V_NONE, G_ROI },
    { "tg_roi_pool_bwd", tg_cl_src_roi, V_NONE, G_ROI },
    { "tg_roi_align", tg_cl_src_roi, V_NONE, G_ROI },
    { "tg_roi_align_bwd", tg_cl_src_roi, V_NONE, G_ROI },
    { "tg_axpy", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_gemm_direct", tg_cl_src_gemm, V_NONE, G_EW },
    { "tg_random_normal", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_random_bernoulli", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_unary_math", tg_cl_src_elementwise, V_NONE, G_EW },
    { "tg_binary_pow", tg_cl_src_elementwise, V_NONE, G_EW },
};
_Static_assert(sizeof kernels / sizeof kernels[0] == TG_K_COUNT, "one entry per tg_cl_kernel_id");
_Static_assert(TG_CL_NVARIANTS >= TG_NUM_DTYPES, "a variant indexes dtypes");

static _Atomic int g_loaded, g_built, g_rejected, g_written;
static atomic_flag g_told = ATOMIC_FLAG_INIT;

#define CACHE_MAGIC "TGCLBIN2"
#define HEADER_SIZE 32
#define MAX_BINARY ((uint64_t)1 << 30)

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }

static uint64_t program_key(const tg_cl_device *d, int nsrc, const char *const *srcs, const char *opts) {
    uint64_t h = fnv_str(0xcbf29ce484222325ull, "tapegrad-cl-cache-2");
    h = fnv_str(h, d->platform_name);
    h = fnv_str(h, d->name);
    h = fnv_str(h, d->driver);
    for (int i = 0; i < nsrc; i++) h = fnv_str(h, srcs[i]);
    return fnv_str(h, opts);
}

/* ---------------------------------------------------------------- the disk cache */

/* Writes the cache directory into buf (creating it); false if there is none. */
static bool cache_dir(char *buf, size_t size) {
    const char *off = getenv("TG_CL_CACHE");
    if (off && strcmp(off, "0") == 0) return false;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(buf, size, "%s/tapegrad", xdg);
    else if (home && *home) n = snprintf(buf, size, "%s/.cache/tapegrad", home);
    else return false;
    if (n < 0 || (size_t)n >= size) return false;
    for (char *p = buf + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The payload of a well-formed entry for key (malloc'ed), or NULL: absent, or present
 * but short, long, foreign or damaged (counted as rejected). The size field is checked
 * against the file's size before anything is allocated. */
static unsigned char *cache_read(const char *path, uint64_t key, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char hdr[HEADER_SIZE], *data = NULL;
    uint64_t n = 0;
    struct stat sb;
    bool ok = fstat(fileno(f), &sb) == 0 && fread(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE &&
              memcmp(hdr, CACHE_MAGIC, 8) == 0 && get_u64(hdr + 8) == key && (n = get_u64(hdr + 16)) > 0 &&
              n <= MAX_BINARY && (uint64_t)sb.st_size == HEADER_SIZE + n && (data = malloc((size_t)n)) &&
              fread(data, 1, (size_t)n, f) == n && fgetc(f) == EOF &&
              fnv1a(0xcbf29ce484222325ull, data, (size_t)n) == get_u64(hdr + 24);
    fclose(f);
    if (!ok) {
        free(data);
        g_rejected++;
        return NULL;
    }
    *len = (size_t)n;
    return data;
}

/* Writes all n bytes or fails. */
static bool write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* An entry for key with the given payload, atomically: a temporary file next to path,
 * fsync'ed, renamed over path. On any failure path is left as it was. */
static bool cache_write(const char *path, uint64_t key, const unsigned char *data, size_t len) {
    static _Atomic unsigned serial;
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), serial++);
    if (n < 0 || (size_t)n >= sizeof tmp) return false;
    unsigned char hdr[HEADER_SIZE];
    memcpy(hdr, CACHE_MAGIC, 8);
    put_u64(hdr + 8, key);
    put_u64(hdr + 16, len);
    put_u64(hdr + 24, fnv1a(0xcbf29ce484222325ull, data, len));
    FILE *f = fopen(tmp, "wb");
    if (!f) return false;
    int fd = fileno(f);
    bool ok = write_all(fd, hdr, HEADER_SIZE) && write_all(fd, data, len) && fsync(fd) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        g_written++;
        return true;
    }
    remove(tmp);
    return false;
}

/* Stores the built program's binary. Some drivers (PoCL) compile every kernel of the
 * program to produce it: the cache writer's thread does this, off the first result's path. */
static void cache_store(cl_program p, const char *path, uint64_t key) {
    size_t len = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || !len) return;
    unsigned char *bin = malloc(len);
    if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
        cache_write(path, key, bin, len);
    free(bin);
}

/* ---------------------------------------------------------------- the cache writer */

/* Fetching a binary can cost more than the build (PoCL compiles a generic work-group
 * function of every kernel in the program for it: 1-3 s for a family), so a cold run
 * would wait for it before its first result. Built programs are queued instead
 * (retained), and one background thread writes their entries once the run has settled:
 * no program built for IDLE_S and IDLE_LAUNCHES launches since the last one (a driver
 * may serialise compiles, as PoCL does per device, and a first run builds in bursts
 * between stretches of host work, such as loading data, that time alone cannot tell
 * from the end of the bursts). At exit (tg_cl_drain_all) tg_cl_cache_flush writes what is
 * still queued within EXIT_BUDGET_S, so that a short run does not linger: where binaries
 * are cheap (a GPU driver has them from the build) every entry is written; where one
 * took longer than the budget, the rest are left, and a later run builds those programs
 * again and queues them anew (PoCL keeps its own kernel cache, which makes that rebuild
 * cheap). Where no fetch on this device has been timed, the exit flush first times a
 * probe: a program of PROBE_KERNELS trivial kernels, unique to the process so that no
 * driver cache answers, built and its binary fetched (PoCL: ~0.4 s; a GPU driver: the
 * build's time). A device whose binary took longer to fetch than its program to build
 * (the entry saves less than it costs), probe or entry, is remembered by an empty file
 * in the cache directory ("slow-binaries-<device hash>"; a probe that found them quick
 * leaves "fast-binaries-<device hash>", and later exits skip the probe), and later runs
 * leave their entries at once, in the background and at exit (tg_opencl_cache_stats
 * still writes all: tests count them). A process killed before exit leaves its queue the same way. A binary is fetched under
 * the device lock with the queue drained: PoCL 3.1, fetching the binary of a program
 * whose kernels are launched or released meanwhile, can fail an assertion of its own
 * (pocl_release_dlhandle_cache: found->ref_count > 0). Launches wait meanwhile, which
 * a settled run notices once: a few milliseconds on a GPU driver, one fetch on PoCL
 * before the device is remembered. */
#define IDLE_S 2.0
#define IDLE_LAUNCHES 500
#define POLL_S 0.25
#define EXIT_BUDGET_S 0.5
#define PROBE_KERNELS 8

static atomic_long g_launches; /* kernel launches so far, all devices */

typedef struct pending {
    struct pending *next;
    tg_cl_device *dev;
    cl_program program; /* retained until written */
    uint64_t key;
    double build_s;     /* how long clBuildProgram took */
    size_t nkernels;    /* in the program (SIZE_MAX: unknown) */
    char path[4200];
    char marker[4200];  /* exists: this device's binaries are slow to fetch */
    char fast[4200];    /* exists: a probe found them quick */
} pending;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, idle; /* work queued or a flush began; the queue emptied */
    pending *head, *tail;
    bool started, busy;        /* the thread exists; it is writing an entry */
    bool probed;               /* the exit flush has checked the device's fetch cost */
    int flushing;              /* callers waiting in tg_cl_cache_flush */
    double deadline;           /* a budgeted flush: drop what is left after this time */
    double slowest;            /* the longest fetch-and-write so far, seconds */
    double last_build;         /* CLOCK_MONOTONIC seconds */
    long launches_then;        /* g_launches at the last build */
} g_w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, false, false,
          false, 0, 0, 0, 0, 0 };

static double mono_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Waits on cond for at most s seconds (the condition variable runs on CLOCK_REALTIME). */
static void wait_for(pthread_cond_t *cond, double s) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long ns = t.tv_nsec + (long)(s * 1e9);
    t.tv_sec += ns / 1000000000L;
    t.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(cond, &g_w.lock, &t);
}

/* Builds a program of PROBE_KERNELS trivial kernels on d (under its lock) and fetches
 * its binary: true if the fetch took longer than the build. */
static bool probe_says_slow(tg_cl_device *d) {
    char src[PROBE_KERNELS * 80], opts[64];
    int n = 0;
    for (int i = 0; i < PROBE_KERNELS; i++)
        n += snprintf(src + n, sizeof src - (size_t)n, "__kernel void p%d(__global int *x) { x[get_global_id(0)] += %d; }\n", i, i + 1);
    snprintf(opts, sizeof opts, "-DTG_PROBE=%ld%ld", (long)getpid(), (long)(mono_now() * 1e6)); /* no cache hit */
    const char *sp = src;
    cl_int e;
    pthread_mutex_lock(&d->lock);
    cl_program p = clCreateProgramWithSource(d->ctx, 1, &sp, NULL, &e);
    double t0 = mono_now();
    bool ok = p && clBuildProgram(p, 1, &d->device, opts, NULL, NULL) == CL_SUCCESS;
    double t1 = mono_now();
    size_t len = 0;
    unsigned char *bin = NULL;
    ok = ok && clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) == CL_SUCCESS && len &&
         (bin = malloc(len)) && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS;
    double t2 = mono_now();
    free(bin);
    if (p) clReleaseProgram(p);
    pthread_mutex_unlock(&d->lock);
    return ok && t2 - t1 > t1 - t0;
}

static void touch(const char *path) {
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
}

static void *writer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_w.lock);
    for (;;) {
        if (!g_w.head) {
            pthread_cond_wait(&g_w.wake, &g_w.lock);
            continue;
        }
        double wait = g_w.last_build + IDLE_S - mono_now();
        bool settled = wait <= 0 && atomic_load(&g_launches) - g_w.launches_then >= IDLE_LAUNCHES;
        if (!g_w.flushing && !settled) {
            wait_for(&g_w.wake, wait > POLL_S ? wait : POLL_S);
            continue;
        }
        bool all = g_w.flushing && g_w.deadline == 0; /* tg_opencl_cache_stats */
        if (g_w.flushing && !all && !g_w.probed) { /* the exit flush: is this device's fetch cheap? */
            g_w.probed = true;
            pending *h = g_w.head;
            bool known = g_w.slowest > 0;
            pthread_mutex_unlock(&g_w.lock);
            known = known || access(h->marker, F_OK) == 0 || access(h->fast, F_OK) == 0;
            bool slow = !known && probe_says_slow(h->dev);
            if (!known) touch(slow ? h->marker : h->fast);
            pthread_mutex_lock(&g_w.lock);
            if (slow) g_w.slowest = EXIT_BUDGET_S;
            continue;
        }
        pending **at = &g_w.head; /* at exit, the fewest kernels first */
        for (pending **q = &g_w.head; g_w.flushing && !all && *q; q = &(*q)->next)
            if ((*q)->nkernels < (*at)->nkernels) at = q;
        pending *e = *at;
        *at = e->next;
        if (g_w.tail == e) {
            g_w.tail = g_w.head;
            while (g_w.tail && g_w.tail->next) g_w.tail = g_w.tail->next;
        }
        double t0 = mono_now();
        bool drop = !all && g_w.flushing && (t0 >= g_w.deadline || g_w.slowest >= EXIT_BUDGET_S);
        g_w.busy = true;
        pthread_mutex_unlock(&g_w.lock);
        drop = drop || (!all && access(e->marker, F_OK) == 0);
        if (!drop) {
            pthread_mutex_lock(&e->dev->lock);
            if (e->dev->queue) clFinish(e->dev->queue); /* no command of the program in flight */
            cache_store(e->program, e->path, e->key);
            pthread_mutex_unlock(&e->dev->lock);
        }
        double took = mono_now() - t0;
        bool slow = !drop && took > e->build_s && took > 0.05; /* the entry costs more than it saves */
        if (slow) touch(e->marker); /* remember the device */
        clReleaseProgram(e->program);
        free(e);
        pthread_mutex_lock(&g_w.lock);
        if (slow) g_w.slowest = EXIT_BUDGET_S; /* the rest of an exit flush is left */
        if (!drop && took > g_w.slowest) g_w.slowest = took;
        g_w.busy = false;
        if (!g_w.head) pthread_cond_broadcast(&g_w.idle);
    }
    return NULL;
}

/* A child of fork() has no writer thread: it starts afresh (the parent's queue is the
 * parent's to write). */
static void writer_after_fork(void) {
    pthread_mutex_init(&g_w.lock, NULL);
    pthread_cond_init(&g_w.wake, NULL);
    pthread_cond_init(&g_w.idle, NULL);
    g_w.head = g_w.tail = NULL;
    g_w.started = g_w.busy = false;
    g_w.flushing = 0;
}

static void register_after_fork(void) { pthread_atfork(NULL, NULL, writer_after_fork); }

/* Notes that the foreground is compiling: the writer keeps off the driver meanwhile. */
static void writer_note_build(void) {
    pthread_mutex_lock(&g_w.lock);
    g_w.last_build = mono_now();
    g_w.launches_then = atomic_load(&g_launches);
    pthread_mutex_unlock(&g_w.lock);
}

/* Queues p's entry for the writer, or writes it now if no thread can be had. */
static void cache_store_later(tg_cl_device *d, cl_program p, const char *dir, const char *path, uint64_t key,
                              double build_s) {
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pending *e = malloc(sizeof *e);
    if (!e) {
        cache_store(p, path, key);
        return;
    }
    pthread_once(&fork_once, register_after_fork);
    clRetainProgram(p);
    *e = (pending){ NULL, d, p, key, build_s, SIZE_MAX, "", "", "" };
    if (clGetProgramInfo(p, CL_PROGRAM_NUM_KERNELS, sizeof e->nkernels, &e->nkernels, NULL) != CL_SUCCESS)
        e->nkernels = SIZE_MAX;
    snprintf(e->path, sizeof e->path, "%s", path);
    uint64_t dev = fnv_str(fnv_str(fnv_str(0xcbf29ce484222325ull, d->platform_name), d->name), d->driver);
    snprintf(e->marker, sizeof e->marker, "%s/slow-binaries-%016llx", dir, (unsigned long long)dev);
    snprintf(e->fast, sizeof e->fast, "%s/fast-binaries-%016llx", dir, (unsigned long long)dev);
    pthread_mutex_lock(&g_w.lock);
    if (!g_w.started) {
        pthread_t t;
        pthread_attr_t attr;
        bool ok = false;
        if (pthread_attr_init(&attr) == 0) {
            ok = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                 pthread_create(&t, &attr, writer_main, NULL) == 0;
            pthread_attr_destroy(&attr);
        }
        if (!ok) {
            pthread_mutex_unlock(&g_w.lock);
            cache_store(p, path, key);
            clReleaseProgram(p);
            free(e);
            return;
        }
        g_w.started = true;
    }
    if (g_w.tail) g_w.tail->next = e;
    else g_w.head = e;
    g_w.tail = e;
    g_w.last_build = mono_now();
    g_w.launches_then = atomic_load(&g_launches);
    pthread_cond_signal(&g_w.wake);
    pthread_mutex_unlock(&g_w.lock);
}

void tg_cl_cache_flush(bool at_exit) {
    pthread_mutex_lock(&g_w.lock);
    if (g_w.started) {
        g_w.flushing++;
        if (at_exit) g_w.deadline = mono_now() + EXIT_BUDGET_S;
        pthread_cond_broadcast(&g_w.wake);
        while (g_w.head || g_w.busy) pthread_cond_wait(&g_w.idle, &g_w.lock);
        g_w.flushing--;
        if (!g_w.flushing) g_w.deadline = 0;
    }
    pthread_mutex_unlock(&g_w.lock);
}

/* ---------------------------------------------------------------- building */

static tg_status build_failed(tg_cl_device *d, cl_program p, const char *what, cl_int e) {
    size_t n = 0;
    char log[720] = "";
    if (clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS && n) {
        char *full = malloc(n + 1);
        if (full && clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, n, full, NULL) == CL_SUCCESS) {
            full[n] = '\0';
            snprintf(log, sizeof log, "%s", full);
        }
        free(full);
    }
    return tg_error(TG_ERR_BACKEND, "%s (%s): building OpenCL program %s failed (%s); build log:\n%s", d->id,
                    d->name, what, tg_cl_errname(e), log[0] ? log : "(empty)");
}

/* The program from a cache entry, if the entry is sound and the driver builds it (and,
 * with kernel, finds that kernel in it); else NULL, the entry counted as rejected. */
static cl_program load_cached(tg_cl_device *d, const char *path, uint64_t key, const char *opts,
                              const char *kernel) {
    size_t len = 0;
    unsigned char *bin = cache_read(path, key, &len);
    if (!bin) return NULL;
    const unsigned char *bins[1] = { bin };
    cl_int e = CL_SUCCESS, bst = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(d->ctx, 1, &d->device, &len, bins, &bst, &e);
    free(bin);
    bool ok = p && e == CL_SUCCESS && bst == CL_SUCCESS && clBuildProgram(p, 1, &d->device, opts, NULL, NULL) == CL_SUCCESS;
    if (ok && kernel) {
        cl_kernel k = clCreateKernel(p, kernel, &e);
        ok = k != NULL;
        if (k) clReleaseKernel(k);
    }
    if (ok) {
        g_loaded++;
        tg_cl_register_drain(true);
        return p;
    }
    if (p) clReleaseProgram(p);
    g_rejected++;
    return NULL;
}

/* Once a process: a cold compile can take seconds on some drivers, so say why. */
static void tell_compiling(const tg_cl_device *d, bool cached) {
    if (atomic_flag_test_and_set(&g_told)) return;
    fprintf(stderr, "tapegrad: compiling OpenCL kernels for %s (%s) on first use%s\n", d->id, d->name,
            cached ? " (cached for later runs)" : " (TG_CL_CACHE=0: not cached)");
}

/* Loads the program from the cache or builds it from source; NULL with a message. */
static cl_program build(tg_cl_device *d, int nsrc, const char *const *srcs, const char *opts, const char *what,
                        const char *kernel) {
    char dir[4096], path[4200];
    uint64_t key = program_key(d, nsrc, srcs, opts);
    bool cached = cache_dir(dir, sizeof dir);
    writer_note_build();
    if (cached) {
        snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
        cl_program p = load_cached(d, path, key, opts, kernel);
        if (p) return p;
    }
    tell_compiling(d, cached);
    cl_int e = CL_SUCCESS;
    cl_program p = clCreateProgramWithSource(d->ctx, (cl_uint)nsrc, (const char **)srcs, NULL, &e);
    if (!p) {
        tg_cl_fail(d, "clCreateProgramWithSource", e);
        return NULL;
    }
    double t0 = mono_now();
    e = clBuildProgram(p, 1, &d->device, opts, NULL, NULL);
    double build_s = mono_now() - t0;
    if (e != CL_SUCCESS) {
        build_failed(d, p, what, e);
        clReleaseProgram(p);
        return NULL;
    }
    g_built++;
    if (cached) cache_store_later(d, p, dir, path, key, build_s);
    tg_cl_register_drain(true);
    return p;
}

/* Where kernel k of dtype dt and variant v comes from: its group's program for variant
 * *pv, or (SOLO) a program of its own. */
static group_id program_of(tg_cl_kernel_id k, tg_dtype dt, int v, int *pv) {
    group_id g = kernels[k].group;
    *pv = v;
    if (g == G_MOVE) *pv = 0; /* one program for every dtype and index dtype */
    if (g == SOLO || g == G_MOVE || groups[g].carries) return g;
    int dflt = kernels[k].variant == V_IDX ? TG_I32 : (int)dt;
    if (kernels[k].variant != V_NONE && v != dflt) return SOLO; /* not the default */
    *pv = 0;
    return g;
}

/* Build options for kernel k alone (g SOLO) or for every kernel of group g, variant v. */
static void options(const tg_cl_device *d, char *buf, size_t size, group_id g, tg_cl_kernel_id k, tg_dtype dt,
                    int v) {
    static const char *const vnames[] = { NULL, "TG_DT_OUT", "TG_IDX" };
    int major = 1, minor = 0; /* "OpenCL C 1.2 ..." */
    sscanf(d->c_version, "OpenCL C %d.%d", &major, &minor);
    bool cl12 = major > 1 || (major == 1 && minor >= 2);
    int n = snprintf(buf, size, "%s-DTG_DT=%d -DTG_WG=%d -DTG_GL=%d", cl12 ? "-cl-std=CL1.2 " : "", (int)dt, d->wg,
                     d->gemm_l);
    if (groups[g].define) n += snprintf(buf + n, size - (size_t)n, " %s", groups[g].define);
    for (int i = 0; i < TG_K_COUNT && (size_t)n < size && !groups[g].define; i++)
        if (g == SOLO ? i == (int)k : kernels[i].group == g) n += snprintf(buf + n, size - (size_t)n, " -DK_%s", kernels[i].name);
    if ((g == SOLO || groups[g].carries) && kernels[k].variant != V_NONE && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " -D%s=%d", vnames[kernels[k].variant], v);
    if (d->fp64 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " -DTG_FP64%s", d->int64_atomics ? " -DTG_INT64_ATOMICS" : "");
    if (d->correct_div_sqrt && (size_t)n < size) snprintf(buf + n, size - (size_t)n, " -cl-fp32-correctly-rounded-divide-sqrt");
}

/* The program kernel k (dt, v) lives in, built or loaded on first use; NULL with a
 * message. Called with d->lock held. */
static cl_program program_for(tg_cl_device *d, tg_cl_kernel_id k, tg_dtype dt, int v, const char *kname) {
    int pv;
    group_id g = program_of(k, dt, v, &pv);
    if (g == G_MOVE) dt = TG_F32; /* the moves' program: the same for every dtype */
    cl_program *slot = g == SOLO ? &d->prog[k][dt][v] : &d->gprog[g][dt][pv];
    if (*slot) return *slot;
    const char *srcs[8] = { tg_cl_src_common, kernels[k].src }; /* a group: its sources in table order */
    int nsrc = g == SOLO ? 2 : 1;
    for (int i = 0; i < TG_K_COUNT && g != SOLO; i++) {
        bool have = false;
        for (int j = 1; j < nsrc; j++) have = have || srcs[j] == kernels[i].src;
        if (kernels[i].group == g && !have && nsrc < 8) srcs[nsrc++] = kernels[i].src;
    }
    char opts[1024], what[96];
    options(d, opts, sizeof opts, g, k, dt, pv);
    bool v_dtype = kernels[k].variant != V_NONE && (g == SOLO || groups[g].carries);
    if (g == G_MOVE) snprintf(what, sizeof what, "\"moves\"");
    else
        snprintf(what, sizeof what, "\"%s %s%s%s\"", g == SOLO ? kernels[k].name : groups[g].name, tg_dtype_name(dt),
                 v_dtype ? "/" : "", v_dtype ? tg_dtype_name((tg_dtype)pv) : "");
    *slot = build(d, nsrc, srcs, opts, what, kname);
    return *slot;
}

/* The name of kernel k (dt, v) in its program. In the moves' program a name says the
 * element size (and index dtype) of a move, tg_gather_4_i32, or the dtype of a
 * conversion's output or a comparison's operands, tg_convert_2. */
static void kernel_name(tg_cl_kernel_id k, tg_dtype dt, int v, char *buf, size_t size) {
    bool by_dtype = k == TG_K_CONVERT || k == TG_K_COMPARE;
    if (kernels[k].group == G_MOVE && kernels[k].variant == V_IDX)
        snprintf(buf, size, "%s_%zu_%s", kernels[k].name, tg_elsize(dt), tg_dtype_name((tg_dtype)v));
    else if (kernels[k].group == G_MOVE && by_dtype) snprintf(buf, size, "%s_%d", kernels[k].name, (int)dt);
    else if (kernels[k].group == G_MOVE) snprintf(buf, size, "%s_%zu", kernels[k].name, tg_elsize(dt));
    else snprintf(buf, size, "%s", kernels[k].name);
}

cl_kernel tg_cl_kernel_v(tg_cl_device *d, tg_cl_kernel_id k, tg_dtype dt, int v) {
    variant_kind vk = kernels[k].variant;
    bool v_dtype = vk != V_NONE;
    TG_ASSERT(dt >= 0 && dt < TG_NUM_DTYPES && v >= 0 && v < TG_CL_NVARIANTS && (vk != V_NONE || v == 0));
    if ((dt == TG_F64 || (v_dtype && v == TG_F64)) && !d->fp64) {
        tg_cl_no_fp64(d, kernels[k].name);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    cl_kernel kern = d->kern[k][dt][v];
    if (kern) goto out;
    char kname[48];
    kernel_name(k, dt, v, kname, sizeof kname);
    cl_program p = program_for(d, k, dt, v, kname);
    if (!p) goto out;
    cl_int e;
    kern = d->kern[k][dt][v] = clCreateKernel(p, kname, &e);
    if (!kern) {
        char what[80];
        snprintf(what, sizeof what, "clCreateKernel(%s)", kname);
        tg_cl_fail(d, what, e);
    }
out:
    pthread_mutex_unlock(&d->lock);
    return kern;
}

/* Releases every program and kernel; d->lock held. */
static void release_locked(tg_cl_device *d) {
    if (d->queue) clFinish(d->queue);
    for (int k = 0; k < TG_K_COUNT; k++)
        for (int t = 0; t < TG_NUM_DTYPES; t++)
            for (int v = 0; v < TG_CL_NVARIANTS; v++) {
                if (d->kern[k][t][v]) clReleaseKernel(d->kern[k][t][v]);
                if (d->prog[k][t][v]) clReleaseProgram(d->prog[k][t][v]);
            }
    for (int g = 0; g < G_COUNT; g++)
        for (int t = 0; t < TG_NUM_DTYPES; t++)
            for (int v = 0; v < TG_CL_NVARIANTS; v++)
                if (d->gprog[g][t][v]) clReleaseProgram(d->gprog[g][t][v]);
    memset(d->kern, 0, sizeof d->kern);
    memset(d->prog, 0, sizeof d->prog);
    memset(d->gprog, 0, sizeof d->gprog);
}

void tg_cl_release_programs(tg_cl_device *d) {
    pthread_mutex_lock(&d->lock);
    release_locked(d);
    pthread_mutex_unlock(&d->lock);
}

/* ---------------------------------------------------------------- launches */

/* Sets the arguments and enqueues; the CL status, with the failing call named in buf. */
static cl_int enqueue(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs, int dims,
                      const size_t *global, const size_t *local, char *buf, size_t size) {
    cl_int e = CL_SUCCESS;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < nargs && e == CL_SUCCESS; i++) {
        e = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (e != CL_SUCCESS) snprintf(buf, size, "clSetKernelArg(%s, %d)", what, i);
    }
    if (e == CL_SUCCESS) {
        e = clEnqueueNDRangeKernel(d->queue, k, (cl_uint)dims, NULL, global, local, 0, NULL, NULL);
        if (e != CL_SUCCESS) snprintf(buf, size, "clEnqueueNDRangeKernel(%s)", what);
        else {
            tg_cl_count_launch(d);
            atomic_fetch_add_explicit(&g_launches, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return e;
}

tg_status tg_cl_launch(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                       int dims, const size_t *global, const size_t *local) {
    char buf[96];
    cl_int e = enqueue(d, k, what, args, nargs, dims, global, local, buf, sizeof buf);
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, buf, e);
}

tg_status tg_cl_launch_1d(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                          int64_t n) {
    if (n <= 0) return TG_OK;
    char buf[96];
    size_t local = (size_t)d->wg, global = ((size_t)n + local - 1) / local * local;
    cl_int e = enqueue(d, k, what, args, nargs, 1, &global, &local, buf, sizeof buf);
    if (e == CL_INVALID_WORK_GROUP_SIZE) { /* a kernel the driver limits below wg: its choice */
        global = (size_t)n;
        e = enqueue(d, k, what, args, nargs, 1, &global, NULL, buf, sizeof buf);
    }
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, buf, e);
}

/* ---------------------------------------------------------------- geometry */

void tg_cl_geom_init(tg_cl_geom *g, int ndim, const int64_t *shape, int nops, const tg_tensor *const *ts) {
    memset(g, 0, sizeof *g);
    g->numel = tg_shape_numel(ndim, shape);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 1) continue;
        int d = g->nd;
        bool merge = d > 0;
        for (int k = 0; k < nops && merge; k++) merge = g->st[k].s[d - 1] == ts[k]->strides[i] * shape[i];
        if (merge) {
            g->shape.s[d - 1] *= shape[i];
            for (int k = 0; k < nops; k++) g->st[k].s[d - 1] = ts[k]->strides[i];
            continue;
        }
        g->shape.s[d] = shape[i];
        for (int k = 0; k < nops; k++) g->st[k].s[d] = ts[k]->strides[i];
        g->nd++;
    }
    if (g->nd == 0) { /* one element */
        g->nd = 1;
        g->shape.s[0] = 1;
    }
}

/* ---------------------------------------------------------------- test hooks */

void tg_opencl_cache_stats(tg_cl_cache_stats *out) {
    tg_cl_cache_flush(false);
    out->loaded = g_loaded;
    out->built = g_built;
    out->rejected = g_rejected;
    out->written = g_written;
}

tg_status tg_opencl_build_for_test(tg_device *dev, const char *src, const char *opts) {
    tg_cl_device *d = dev->impl;
    cl_program p = build(d, 1, &src, opts ? opts : "", "\"test\"", NULL);
    if (!p) return tg_last_status();
    clReleaseProgram(p);
    return TG_OK;
}

tg_status tg_opencl_set_fp64_for_test(tg_device *dev, bool enabled) {
    tg_cl_device *d = dev->impl;
    if (enabled && !d->fp64_hw) return tg_cl_no_fp64(d, "tg_opencl_set_fp64_for_test");
    pthread_mutex_lock(&d->lock); /* no build between the release and the switch */
    if (d->fp64 != enabled) {
        release_locked(d);
        d->fp64 = enabled;
        dev->lacks_fp64 = !enabled;
    }
    pthread_mutex_unlock(&d->lock);
    return TG_OK;
}

int tg_cl_force_gemm, tg_cl_force_scatter, tg_cl_force_reduce;

void tg_opencl_force_paths_for_test(int gemm, int scatter, int reduce) {
    tg_cl_force_gemm = gemm;
    tg_cl_force_scatter = scatter;
    tg_cl_force_reduce = reduce;
}

tg_status tg_opencl_cache_forge_for_test(const char *path, const void *payload, size_t len) {
    FILE *f = fopen(path, "rb");
    unsigned char hdr[HEADER_SIZE];
    bool ok = f && fread(hdr, 1, HEADER_SIZE, f) == HEADER_SIZE && memcmp(hdr, CACHE_MAGIC, 8) == 0;
    if (f) fclose(f);
    if (!ok) return tg_error(TG_ERR_IO, "tg_opencl_cache_forge_for_test: %s is not a cache entry", path);
    if (!cache_write(path, get_u64(hdr + 8), payload, len))
        return tg_error(TG_ERR_IO, "tg_opencl_cache_forge_for_test: cannot write %s", path);
    g_written--; /* a forged entry is not one the library wrote */
    return TG_OK;
}
