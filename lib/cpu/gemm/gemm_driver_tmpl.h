/* The GEMM driver for one element type, included by gemm.c with T (float or double),
 * S (the table member, f32 or f64) and FN(name) (adds the type suffix).
 *
 * The blocked path (GotoBLAS/BLIS with the operand roles swapped, because the
 * micro-kernels put vectors along N, the direction C's rows are contiguous in):
 *   jc over N by nc:      B block kc x nc, packed into nr-column micro-panels (L2/L3)
 *     pc over K by kc:
 *       ic over M by mc:  A block mc x kc, packed into mr-row micro-panels
 *         ir by mr:       one A micro-panel (mr x kc) stays in L1 ...
 *           jr by nr:     ... while the B micro-panels stream past it
 * Tiles at the M and N edges are computed whole from zero-padded panels into a buffer
 * and merged; so are tiles of a C whose rows are not contiguous. When B fits in L2 the
 * unpacked kernel runs instead (no packing at all). Threads take bands of C (below).
 * No include guard: included once per type. */

typedef void (*FN(ukr_fn))(int64_t k, const T *a, const T *b, T *c, int64_t rsc,
                           int accumulate);

typedef struct {
    int64_t M, N, K;
    const T *A;
    int64_t rsa, csa;
    const T *B;
    int64_t rsb, csb;
    T *C;
    int64_t rsc, csc;
    int accumulate; /* C += A B, else C = A B */
    const T *bpre;  /* B already packed whole (prepack_b), or NULL */
    int64_t bpre_npad, bpre_col; /* its padded width, and where this (band's) B starts in it */
} FN(problem);

/* dst: mc x kc of A as ceil(mc/mr) micro-panels of kc columns of mr values, rows past mc
 * zero. The inner loop runs along whichever of A's strides is 1. */
static void FN(pack_a)(int64_t mc, int64_t kc, const T *A, int64_t rsa, int64_t csa, T *dst,
                       int mr)
{
    for (int64_t ir = 0; ir < mc; ir += mr, dst += (int64_t)mr * kc) {
        int64_t m = mc - ir < mr ? mc - ir : mr;
        const T *a = A + ir * rsa;
        if (csa == 1 || m < mr) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t p = 0; p < kc; p++)
                    dst[p * mr + i] = a[i * rsa + p * csa];
            for (int64_t i = m; i < mr; i++)
                for (int64_t p = 0; p < kc; p++)
                    dst[p * mr + i] = 0;
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int64_t i = 0; i < mr; i++)
                    dst[p * mr + i] = a[i * rsa + p * csa];
        }
    }
}

/* dst: kc x nc of B as ceil(nc/nr) micro-panels of kc rows of nr values, columns past
 * nc zero. */
static void FN(pack_b)(int64_t kc, int64_t nc, const T *B, int64_t rsb, int64_t csb, T *dst,
                       int nr)
{
    for (int64_t jr = 0; jr < nc; jr += nr, dst += (int64_t)nr * kc) {
        int64_t n = nc - jr < nr ? nc - jr : nr;
        const T *b = B + jr * csb;
        if (csb == 1 && n == nr) {
            for (int64_t p = 0; p < kc; p++)
                memcpy(dst + p * nr, b + p * rsb, (size_t)nr * sizeof(T));
        } else if (rsb == 1) {
            for (int64_t j = 0; j < n; j++)
                for (int64_t p = 0; p < kc; p++)
                    dst[p * nr + j] = b[p + j * csb];
            for (int64_t p = 0; p < kc; p++)
                for (int64_t j = n; j < nr; j++)
                    dst[p * nr + j] = 0;
        } else {
            for (int64_t p = 0; p < kc; p++) {
                for (int64_t j = 0; j < n; j++)
                    dst[p * nr + j] = b[p * rsb + j * csb];
                for (int64_t j = n; j < nr; j++)
                    dst[p * nr + j] = 0;
            }
        }
    }
}

/* c (m x n, any strides) (+)= tile (row stride nr). */
static void FN(merge)(int64_t m, int64_t n, const T *tile, int nr, T *c, int64_t rsc,
                      int64_t csc, int accumulate)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            T *d = &c[i * rsc + j * csc];
            *d = accumulate ? *d + tile[i * nr + j] : tile[i * nr + j];
        }
}

/* The plain-C micro-kernel: 4 x 8, the fallback without AVX2. */
#define TG_C_MR 4
#define TG_C_NR 8
static void FN(ukr_c)(int64_t k, const T *a, const T *b, T *c, int64_t rsc, int accumulate)
{
    T acc[TG_C_MR][TG_C_NR] = { { 0 } };
    for (int64_t p = 0; p < k; p++, a += TG_C_MR, b += TG_C_NR)
        for (int i = 0; i < TG_C_MR; i++)
            for (int j = 0; j < TG_C_NR; j++)
                acc[i][j] += a[i] * b[j];
    for (int i = 0; i < TG_C_MR; i++)
        for (int j = 0; j < TG_C_NR; j++)
            c[i * rsc + j] = accumulate ? c[i * rsc + j] + acc[i][j] : acc[i][j];
}
#undef TG_C_MR
#undef TG_C_NR

/* Packs with the ISA's packer for the layout when there is one. */
static void FN(pack_a_any)(const tg_gemm_kernels *kr, int64_t mc, int64_t kc, const T *A,
                           int64_t rsa, int64_t csa, T *dst)
{
    if (csa == 1 && kr->S.pack_a_rowmajor)
        kr->S.pack_a_rowmajor(mc, kc, A, rsa, dst);
    else if (rsa == 1 && kr->S.pack_a_colmajor)
        kr->S.pack_a_colmajor(mc, kc, A, csa, dst);
    else
        FN(pack_a)(mc, kc, A, rsa, csa, dst, kr->S.mr);
}

static void FN(pack_b_any)(const tg_gemm_kernels *kr, int64_t kc, int64_t nc, const T *B,
                           int64_t rsb, int64_t csb, T *dst)
{
    if (csb == 1 && kr->S.pack_b_rowmajor)
        kr->S.pack_b_rowmajor(kc, nc, B, rsb, dst);
    else if (rsb == 1 && kr->S.pack_b_colmajor)
        kr->S.pack_b_colmajor(kc, nc, B, csb, dst);
    else
        FN(pack_b)(kc, nc, B, rsb, csb, dst, kr->S.nr);
}

/* B (K x N) packed whole for the blocked path: for each block of kc rows, the
 * ceil(N/nr) micro-panels pack_b gives, blocks one after another (block pc starts at
 * pc * npad, its panel for column j at j * kc). K * npad elements. */
static void FN(prepack_b)(const tg_gemm_kernels *kr, int64_t K, int64_t N, const T *B, int64_t rsb,
                          int64_t csb, T *dst)
{
    const int64_t KC = kr->S.kc, npad = (N + kr->S.nr - 1) / kr->S.nr * kr->S.nr;
    for (int64_t pc = 0; pc < K; pc += KC)
        FN(pack_b_any)(kr, K - pc < KC ? K - pc : KC, N, B + pc * rsb, rsb, csb, dst + pc * npad);
}

/* C (mc x nc) (+)= packed A (mc x kc) times packed B (kc x nc), tile by tile. */
static void FN(macro_kernel)(const tg_gemm_kernels *kr, int64_t mc, int64_t nc, int64_t kc,
                             const T *ap, const T *bp, T *C, int64_t rsc, int64_t csc,
                             int acc)
{
    const int64_t mr = kr->S.mr, nr = kr->S.nr;
    T tile[TG_GEMM_MAX_MR * TG_GEMM_MAX_NR] __attribute__((aligned(64)));
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int64_t m = mc - ir < mr ? mc - ir : mr;
        const T *a = ap + ir * kc;
        /* the last rows: a shorter kernel wastes fewer FMAs on padding */
        FN(ukr_fn) ukr = kr->S.ukr;
        int64_t rows = mr;
        if (m <= 4 && kr->S.ukr4)
            ukr = kr->S.ukr4, rows = 4;
        else if (m <= 8 && kr->S.ukr8)
            ukr = kr->S.ukr8, rows = 8;
        for (int64_t jr = 0; jr < nc; jr += nr) {
            int64_t n = nc - jr < nr ? nc - jr : nr;
            T *c = C + ir * rsc + jr * csc;
            if (m == rows && n == nr && csc == 1) {
                ukr(kc, a, bp + jr * kc, c, rsc, acc);
            } else {
                ukr(kc, a, bp + jr * kc, tile, nr, 0);
                FN(merge)(m, n, tile, (int)nr, c, rsc, csc, acc);
            }
        }
    }
}

/* The blocked algorithm on the calling thread. Returns 0, or -1 when the packing
 * buffers could not be allocated (nothing was written then). */
static int FN(serial)(const tg_gemm_kernels *kr, const FN(problem) *pb)
{
    const int64_t mr = kr->S.mr, nr = kr->S.nr, KC = kr->S.kc, MC = kr->S.mc, NC = kr->S.nc;
    int64_t kcmax = pb->K < KC ? pb->K : KC;
    int64_t ncmax = pb->N < NC ? (pb->N + nr - 1) / nr * nr : NC;
    int64_t mcmax = pb->M < MC ? (pb->M + mr - 1) / mr * mr : MC;
    size_t bsize = (size_t)(kcmax * ncmax), asize = (size_t)(kcmax * mcmax);
    T *bp = tg_gemm_scratch((bsize + asize) * sizeof(T));
    if (!bp)
        return -1;
    T *ap = bp + bsize; /* 64-byte aligned for the SIMD kernels: nr * sizeof(T) is */

    for (int64_t jc = 0; jc < pb->N; jc += NC) {
        int64_t nc = pb->N - jc < NC ? pb->N - jc : NC;
        for (int64_t pc = 0; pc < pb->K; pc += KC) {
            int64_t kc = pb->K - pc < KC ? pb->K - pc : KC;
            const T *bk = bp;
            if (pb->bpre)
                bk = pb->bpre + pc * pb->bpre_npad + (pb->bpre_col + jc) * kc;
            else
                FN(pack_b_any)(kr, kc, nc, pb->B + pc * pb->rsb + jc * pb->csb, pb->rsb,
                               pb->csb, bp);
            for (int64_t ic = 0; ic < pb->M; ic += MC) {
                int64_t mc = pb->M - ic < MC ? pb->M - ic : MC;
                FN(pack_a_any)(kr, mc, kc, pb->A + ic * pb->rsa + pc * pb->csa, pb->rsa,
                               pb->csa, ap);
                FN(macro_kernel)(kr, mc, nc, kc, ap, bk, pb->C + ic * pb->rsc + jc * pb->csc,
                                 pb->rsc, pb->csc, pc > 0 || pb->accumulate);
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- threads */

/* Threads share the work as units handed out by an atomic counter: bands of C's rows
 * or columns, each computed start to finish (packing included) by whichever thread
 * takes it. No unit depends on another, so there is no barrier, and a thread that is
 * slow to start or loses its core to another process just takes fewer units. */
typedef struct {
    const tg_gemm_kernels *kr;
    FN(problem) pb;
    int split_n;          /* units are bands of columns (else of rows) */
    int small;            /* run the unpacked kernel on each unit */
    int64_t step;         /* bands are made of tiles of the kernel's nr (mr; 4 if small) */
    int64_t tiles, units; /* unit u covers tiles [u * tiles / units, (u+1) * tiles / units) */
    atomic_llong next;    /* the next unit to hand out */
} FN(par);

static void FN(ref_acc)(const FN(problem) *pb)
{
    FN(tg_cpu_gemm_ref)(pb->M, pb->N, pb->K, pb->A, pb->rsa, pb->csa, pb->B, pb->rsb, pb->csb,
                        (T)pb->accumulate, pb->C, pb->rsc, pb->csc);
}

/* One problem (or band) on the calling thread: the unpacked kernel or the blocked one. */
static void FN(run)(const tg_gemm_kernels *kr, const FN(problem) *pb, int small)
{
    if (small)
        kr->S.small(pb->M, pb->N, pb->K, pb->A, pb->rsa, pb->csa, pb->B, pb->rsb, pb->C,
                    pb->rsc, pb->accumulate);
    else if (FN(serial)(kr, pb) != 0) /* out of memory: slow but correct */
        FN(ref_acc)(pb);
}

static void FN(par_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(par) *w = ctx;
    (void)begin, (void)end; /* every participant takes units until none are left */
    int64_t len = w->split_n ? w->pb.N : w->pb.M;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= w->units)
            break;
        int64_t lo = u * w->tiles / w->units * w->step;
        int64_t hi = (u + 1) * w->tiles / w->units * w->step;
        hi = hi < len ? hi : len;
        FN(problem) sub = w->pb;
        if (w->split_n) {
            sub.N = hi - lo;
            sub.B += lo * sub.csb;
            sub.C += lo * sub.csc;
            sub.bpre_col += lo;
        } else {
            sub.M = hi - lo;
            sub.A += lo * sub.rsa;
            sub.C += lo * sub.rsc;
        }
        FN(run)(w->kr, &sub, w->small);
    }
}

/* Splits pb into units for `threads` threads and runs them. A unit of the packed path
 * re-packs the other operand (A for column bands, B for row bands), so units keep at
 * least TG_GEMM_MIN_BAND rows or columns; up to four units a thread leave room to
 * rebalance, and the unit count is a multiple of the thread count. */
static void FN(run_threads)(const tg_gemm_kernels *kr, const FN(problem) *pb, int small,
                            int64_t threads, double flops)
{
    int split_n = !small && pb->N >= pb->M;
    int64_t len = split_n ? pb->N : pb->M;
    int64_t step = small ? 4 : split_n ? kr->S.nr : kr->S.mr;
    int64_t tiles = (len + step - 1) / step;
    int64_t min_tiles = small ? 1 : (TG_GEMM_MIN_BAND + step - 1) / step;
    int64_t units = threads;
    for (int64_t r = 4; r > 1; r--)
        if (tiles >= threads * r * min_tiles) {
            units = threads * r;
            break;
        }
    units = units < tiles ? units : tiles;
    if (units < 2) {
        FN(run)(kr, pb, small);
        return;
    }
    FN(par) w = { kr, *pb, split_n, small, step, tiles, units, 0 };
    /* The pool sizes the job in grains of work (and runs it inline when its threads are
     * asleep and it is small); par_fn ignores the ranges and takes units. */
    tg_pool_parallel_for((int64_t)(flops / 1024), (int64_t)(TG_GEMM_GRAIN_FLOPS / 1024),
                         FN(par_fn), &w);
}

/* The whole call: trivial cases, the orientation that makes C's rows contiguous, then
 * the unpacked path when B fits in L2 (or the problem is tiny), else the blocked one. */
static void FN(gemm)(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,
                     const T *B, int64_t rsb, int64_t csb, T beta, T *C, int64_t rsc,
                     int64_t csc, int max_threads, const tg_gemm_b_key *key)
{
    if (M <= 0 || N <= 0)
        return;
    if (beta != 0 && beta != 1) { /* not in the contract, but cheap to honour */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * rsc + j * csc] *= beta;
        beta = 1;
    }
    if (K <= 0) {
        for (int64_t i = 0; i < M && beta == 0; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * rsc + j * csc] = 0;
        return;
    }
    FN(problem) pb = { M, N, K, A, rsa, csa, B, rsb, csb, C, rsc, csc, beta != 0, NULL, 0, 0 };
    if (csc != 1 && (rsc == 1 || tg_gemm_abs(rsc) < tg_gemm_abs(csc))) {
        /* C^T = B^T A^T: C's columns become rows */
        pb = (FN(problem)){ N, M, K, B, csb, rsb, A, csa, rsa, C, csc, rsc, beta != 0, NULL, 0, 0 };
        key = NULL; /* the cached operand is now A */
    }
    const tg_gemm_kernels *kr = tg_gemm_kernels_get();
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int b_in_l2 = (double)K * (double)pb.N * sizeof(T) <= TG_GEMM_SMALL_B_BYTES;
    int small = kr->S.small && pb.csb == 1 && pb.csc == 1 &&
                (flops <= TG_GEMM_SMALL_FLOPS || (b_in_l2 && K >= TG_GEMM_SMALL_MIN_K));
    tg_gemm_cached *cached = NULL;
    if (key && !small &&
        (cached = tg_gemm_cache_acquire(key, kr, sizeof(T), pb.B, pb.rsb, pb.csb, K, pb.N,
                                        (tg_gemm_prepack_fn)FN(prepack_b))))
        pb.bpre = cached->packed, pb.bpre_npad = (pb.N + kr->S.nr - 1) / kr->S.nr * kr->S.nr;
    if (max_threads > 1 && flops >= 2 * TG_GEMM_GRAIN_FLOPS)
        FN(run_threads)(kr, &pb, small, max_threads, flops);
    else
        FN(run)(kr, &pb, small);
    tg_gemm_cache_release(cached);
}

/* ---------------------------------------------------------------- batches */

typedef struct {
    int64_t M, N, K;
    const T *A;
    const int64_t *a_off;
    int64_t rsa, csa;
    const T *B;
    const int64_t *b_off;
    int64_t rsb, csb;
    T beta;
    T *C;
    const int64_t *c_off;
    int64_t rsc, csc;
    int64_t batch, group; /* items are handed out `group` at a time */
    atomic_llong next;
} FN(batch);

static void FN(batch_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(batch) *w = ctx;
    (void)begin, (void)end; /* every participant takes groups until none are left */
    for (;;) {
        int64_t b0 = atomic_fetch_add_explicit(&w->next, w->group, memory_order_relaxed);
        for (int64_t b = b0; b < b0 + w->group && b < w->batch; b++)
            FN(gemm)(w->M, w->N, w->K, w->A + w->a_off[b], w->rsa, w->csa, w->B + w->b_off[b],
                     w->rsb, w->csb, w->beta, w->C + w->c_off[b], w->rsc, w->csc, 1, NULL);
        if (b0 + w->group >= w->batch)
            break;
    }
}

/* Items big enough to thread on their own run one after another, each on all threads;
 * smaller ones are spread across the threads, enough items a group to pay for it. */
static void FN(gemm_batched)(int64_t batch, int64_t M, int64_t N, int64_t K, const T *A,
                             const int64_t *a_off, int64_t rsa, int64_t csa, const T *B,
                             const int64_t *b_off, int64_t rsb, int64_t csb, T beta, T *C,
                             const int64_t *c_off, int64_t rsc, int64_t csc)
{
    if (batch <= 0 || M <= 0 || N <= 0)
        return;
    double flops = 2.0 * (double)M * (double)N * (double)(K > 0 ? K : 1);
    int threads = tg_pool_num_threads();
    if (threads > 1 && batch > 1 && flops < TG_GEMM_BATCH_ITEM_FLOPS * threads &&
        flops * (double)batch >= 2 * TG_GEMM_GRAIN_FLOPS) {
        double g = TG_GEMM_GRAIN_FLOPS / 2 / flops; /* groups of half a grain */
        int64_t group = g < 1 ? 1 : (int64_t)g;
        FN(batch) w = { M, N, K, A, a_off, rsa, csa, B, b_off, rsb, csb, beta, C, c_off,
                        rsc, csc, batch, group, 0 };
        tg_pool_parallel_for((int64_t)(flops * (double)batch / 1024),
                             (int64_t)(TG_GEMM_GRAIN_FLOPS / 1024), FN(batch_fn), &w);
        return;
    }
    for (int64_t b = 0; b < batch; b++)
        FN(gemm)(M, N, K, A + a_off[b], rsa, csa, B + b_off[b], rsb, csb, beta, C + c_off[b],
                 rsc, csc, threads, NULL);
}
