/* The GEMM driver for one element type, included by gemm.c with T (float or double),
 * S (the table member, f32 or f64) and FN(name) (adds the type suffix).
 *
 * The loops (GotoBLAS/BLIS with the operand roles swapped, because the micro-kernels
 * put vectors along N, the direction C's rows are contiguous in):
 *   jc over N by nc:      B block kc x nc, packed into nr-column micro-panels (L2)
 *     pc over K by kc:
 *       ic over M by mc:  A block mc x kc, packed into mr-row micro-panels
 *         ir by mr:       one A micro-panel (mr x kc) stays in L1 ...
 *           jr by nr:     ... while the B micro-panels stream from L2
 * Tiles at the M and N edges are computed whole from zero-padded panels into a buffer
 * and merged; so are tiles of a C whose rows are not contiguous.
 * No include guard: included once per type. */

typedef struct {
    int64_t M, N, K;
    const T *A;
    int64_t rsa, csa;
    const T *B;
    int64_t rsb, csb;
    T *C;
    int64_t rsc, csc;
    int accumulate; /* C += A B, else C = A B */
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

/* The blocked algorithm on the calling thread. Returns 0, or -1 when the packing
 * buffers could not be allocated (nothing was written then). */
static int FN(serial)(const tg_gemm_kernels *kr, const FN(problem) *pb)
{
    const int mr = kr->S.mr, nr = kr->S.nr;
    const int64_t KC = kr->S.kc, MC = kr->S.mc, NC = kr->S.nc;
    int64_t kcmax = pb->K < KC ? pb->K : KC;
    int64_t ncmax = pb->N < NC ? (pb->N + nr - 1) / nr * nr : NC;
    int64_t mcmax = pb->M < MC ? (pb->M + mr - 1) / mr * mr : MC;
    size_t bsize = (size_t)(kcmax * ncmax), asize = (size_t)(kcmax * mcmax);
    T *bp = tg_gemm_scratch((bsize + asize) * sizeof(T));
    if (!bp)
        return -1;
    T *ap = bp + bsize; /* bsize * sizeof(T) is a multiple of 64: nr * sizeof(T) is */
    T tile[TG_GEMM_MAX_MR * TG_GEMM_MAX_NR] __attribute__((aligned(64)));

    for (int64_t jc = 0; jc < pb->N; jc += NC) {
        int64_t nc = pb->N - jc < NC ? pb->N - jc : NC;
        for (int64_t pc = 0; pc < pb->K; pc += KC) {
            int64_t kc = pb->K - pc < KC ? pb->K - pc : KC;
            int acc = pc > 0 || pb->accumulate;
            const T *bsrc = pb->B + pc * pb->rsb + jc * pb->csb;
            if (pb->csb == 1 && kr->S.pack_b_rowmajor)
                kr->S.pack_b_rowmajor(kc, nc, bsrc, pb->rsb, bp);
            else if (pb->rsb == 1 && kr->S.pack_b_colmajor)
                kr->S.pack_b_colmajor(kc, nc, bsrc, pb->csb, bp);
            else
                FN(pack_b)(kc, nc, bsrc, pb->rsb, pb->csb, bp, nr);
            for (int64_t ic = 0; ic < pb->M; ic += MC) {
                int64_t mc = pb->M - ic < MC ? pb->M - ic : MC;
                const T *asrc = pb->A + ic * pb->rsa + pc * pb->csa;
                if (pb->csa == 1 && kr->S.pack_a_rowmajor)
                    kr->S.pack_a_rowmajor(mc, kc, asrc, pb->rsa, ap);
                else if (pb->rsa == 1 && kr->S.pack_a_colmajor)
                    kr->S.pack_a_colmajor(mc, kc, asrc, pb->csa, ap);
                else
                    FN(pack_a)(mc, kc, asrc, pb->rsa, pb->csa, ap, mr);
                for (int64_t ir = 0; ir < mc; ir += mr) {
                    int64_t m = mc - ir < mr ? mc - ir : mr;
                    const T *a = ap + ir * kc;
                    T *crow = pb->C + (ic + ir) * pb->rsc + jc * pb->csc;
                    for (int64_t jr = 0; jr < nc; jr += nr) {
                        int64_t n = nc - jr < nr ? nc - jr : nr;
                        T *c = crow + jr * pb->csc;
                        if (m == mr && n == nr && pb->csc == 1) {
                            kr->S.ukr(kc, a, bp + jr * kc, c, pb->rsc, acc);
                        } else {
                            kr->S.ukr(kc, a, bp + jr * kc, tile, nr, 0);
                            FN(merge)(m, n, tile, nr, c, pb->rsc, pb->csc, acc);
                        }
                    }
                }
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- threads */

typedef struct {
    const tg_gemm_kernels *kr;
    FN(problem) pb;
    int split_n;   /* parts split N (else M), in units of nr (mr) */
    int64_t parts;
    int small;     /* the unpacked kernel, parts split M in units of 4 rows */
} FN(par);

static void FN(ref_acc)(const FN(problem) *pb)
{
    FN(tg_cpu_gemm_ref)(pb->M, pb->N, pb->K, pb->A, pb->rsa, pb->csa, pb->B, pb->rsb, pb->csb,
                        (T)pb->accumulate, pb->C, pb->rsc, pb->csc);
}

static void FN(run)(const tg_gemm_kernels *kr, const FN(problem) *pb)
{
    if (FN(serial)(kr, pb) != 0) /* out of memory: slow but correct */
        FN(ref_acc)(pb);
}

static void FN(run_small)(const tg_gemm_kernels *kr, const FN(problem) *pb)
{
    kr->S.small(pb->M, pb->N, pb->K, pb->A, pb->rsa, pb->csa, pb->B, pb->rsb, pb->C, pb->rsc,
                pb->accumulate);
}

static void FN(par_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(par) *w = ctx;
    int64_t unit = w->small ? 4 : w->split_n ? w->kr->S.nr : w->kr->S.mr;
    int64_t len = w->split_n ? w->pb.N : w->pb.M;
    int64_t units = (len + unit - 1) / unit;
    for (int64_t t = begin; t < end; t++) {
        int64_t lo = units * t / w->parts * unit, hi = units * (t + 1) / w->parts * unit;
        hi = hi < len ? hi : len;
        if (lo >= hi)
            continue;
        FN(problem) sub = w->pb;
        if (w->split_n) {
            sub.N = hi - lo;
            sub.B += lo * sub.csb;
            sub.C += lo * sub.csc;
        } else {
            sub.M = hi - lo;
            sub.A += lo * sub.rsa;
            sub.C += lo * sub.rsc;
        }
        if (w->small)
            FN(run_small)(w->kr, &sub);
        else
            FN(run)(w->kr, &sub);
    }
}

/* The whole call: trivial cases, the orientation that makes C's rows contiguous, the
 * unpacked path for small problems, then the blocked algorithm on up to max_threads. */
static void FN(gemm)(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,
                     const T *B, int64_t rsb, int64_t csb, T beta, T *C, int64_t rsc,
                     int64_t csc, int max_threads)
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
    FN(problem) pb = { M, N, K, A, rsa, csa, B, rsb, csb, C, rsc, csc, beta != 0 };
    if (csc != 1 && (rsc == 1 || tg_gemm_abs(rsc) < tg_gemm_abs(csc))) {
        /* C^T = B^T A^T: C's columns become rows */
        pb = (FN(problem)){ N, M, K, B, csb, rsb, A, csa, rsa, C, csc, rsc, beta != 0 };
    }
    const tg_gemm_kernels *kr = tg_gemm_kernels_get();
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int64_t parts = flops < TG_GEMM_THREAD_FLOPS ? 1 : max_threads;
    int b_in_l2 = (double)K * (double)pb.N * sizeof(T) <= TG_GEMM_SMALL_B_BYTES;
    if (kr->S.small && pb.csb == 1 && pb.csc == 1 &&
        (flops <= TG_GEMM_SMALL_FLOPS || (b_in_l2 && K >= TG_GEMM_SMALL_MIN_K))) {
        /* B stays in L2: no packing; threads take bands of rows */
        FN(par) w = { kr, pb, 0, parts < (pb.M + 3) / 4 ? parts : (pb.M + 3) / 4, 1 };
        if (w.parts > 1)
            tg_pool_parallel_for(w.parts, 1, FN(par_fn), &w);
        else
            FN(run_small)(kr, &pb);
        return;
    }
    if (parts > 1) {
        /* Split the dimension with more micro-tiles; each part packs its own panels. */
        int64_t nt = (pb.N + kr->S.nr - 1) / kr->S.nr, mt = (pb.M + kr->S.mr - 1) / kr->S.mr;
        FN(par) w = { kr, pb, nt >= parts && nt * kr->S.nr >= mt * kr->S.mr, 0, 0 };
        int64_t units = w.split_n ? nt : mt;
        w.parts = parts < units ? parts : units;
        if (w.parts > 1) {
            tg_pool_parallel_for(w.parts, 1, FN(par_fn), &w);
            return;
        }
    }
    FN(run)(kr, &pb);
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
} FN(batch);

static void FN(batch_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(batch) *w = ctx;
    for (int64_t b = begin; b < end; b++)
        FN(gemm)(w->M, w->N, w->K, w->A + w->a_off[b], w->rsa, w->csa, w->B + w->b_off[b],
                 w->rsb, w->csb, w->beta, w->C + w->c_off[b], w->rsc, w->csc, 1);
}

/* Items big enough to thread on their own run one after another, each on all threads;
 * smaller ones are spread across the threads, enough items a chunk to pay for it. */
static void FN(gemm_batched)(int64_t batch, int64_t M, int64_t N, int64_t K, const T *A,
                             const int64_t *a_off, int64_t rsa, int64_t csa, const T *B,
                             const int64_t *b_off, int64_t rsb, int64_t csb, T beta, T *C,
                             const int64_t *c_off, int64_t rsc, int64_t csc)
{
    if (batch <= 0 || M <= 0 || N <= 0)
        return;
    FN(batch) w = { M, N, K, A, a_off, rsa, csa, B, b_off, rsb, csb, beta, C, c_off, rsc, csc };
    double flops = 2.0 * (double)M * (double)N * (double)(K > 0 ? K : 1);
    int threads = tg_pool_num_threads();
    if (threads > 1 && batch > 1 && flops < TG_GEMM_BATCH_ITEM_FLOPS * threads) {
        double g = TG_GEMM_THREAD_FLOPS / flops;
        tg_pool_parallel_for(batch, g < 1 ? 1 : (int64_t)g, FN(batch_fn), &w);
        return;
    }
    for (int64_t b = 0; b < batch; b++)
        FN(gemm)(M, N, K, A + a_off[b], rsa, csa, B + b_off[b], rsb, csb, beta, C + c_off[b],
                 rsc, csc, threads);
}
