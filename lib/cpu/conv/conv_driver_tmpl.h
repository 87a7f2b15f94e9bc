/* The conv2d algorithms for one element type, included by conv.c with T, S (the kernel
 * table member, f32 or f64), FN(name), UKR (the micro-kernel type) and PACKER (the
 * function that picks the ISA packer) defined. No include guard.
 *
 * implicit: out_g (M x Q) = W_g (M x K) * im2col_g (K x Q), Q = N*OH*OW over the whole
 *   batch. The GEMM's micro-kernels run on panels of W packed once per call (by each
 *   unit, for its own rows, when there is one band) and panels of im2col packed straight
 *   from the image (a kc x nb block per work unit, in L2; once per call when units share
 *   a band), so no im2col matrix exists; tiles whose columns cross an output row of the
 *   image go through a tile buffer. Units (group, band of columns, block of rows) are
 *   handed out by an atomic counter, as in the GEMM. Forward, and backward-data at
 *   stride 1 (a forward conv of dout with the flipped, transposed weight).
 * 1x1: a 1x1 conv without padding as a GEMM per image and group, the input read in place
 *   (gathered a band at a time at stride > 1); forward, and backward-data at stride 1.
 * col: backward-data at stride > 1: chunks of col = W_g^T * dout by the GEMM, scattered
 *   back (col2im) into dx; units own whole channels of one image, so no two write one dx.
 * wgrad: dw_g += dout_g (M x q) * im2col_g^T (q x K) over chunks of q, fixed runs of
 *   chunks summed into a fixed number of partial sums, added in order at the end (or, with
 *   few chunks, units own blocks of dw's columns over all of q, writing dw itself): the
 *   order of every sum depends on the problem only (conv.c, weight-gradient order). */

/* ---------------------------------------------------------------- packing */

/* The plain-C twin of tg_conv_pack_avx512_*. */
static void FN(conv_pack_c)(const tg_conv_pack_geom *g, int64_t kc, int64_t q0, int64_t nc,
                            T *dst, int nr)
{
    const T *x = g->x;
    int64_t base[TG_GEMM_MAX_NR], ihb[TG_GEMM_MAX_NR], iwb[TG_GEMM_MAX_NR];
    for (int64_t jr = 0; jr < nc; jr += nr, dst += nr * kc) {
        int n = nc - jr < nr ? (int)(nc - jr) : nr;
        for (int j = 0; j < n; j++) {
            int64_t q = q0 + jr + j, p = q % g->P;
            base[j] = q / g->P * g->img;
            ihb[j] = p / g->OW * g->sh;
            iwb[j] = p % g->OW * g->sw;
        }
        for (int64_t k = 0; k < kc; k++) {
            T *d = dst + k * nr;
            const T *xc = x + g->c_off[k];
            for (int j = 0; j < n; j++) {
                int64_t ih = ihb[j] + g->ih_off[k], iw = iwb[j] + g->iw_off[k];
                d[j] = (uint64_t)ih < (uint64_t)g->H && (uint64_t)iw < (uint64_t)g->W
                           ? xc[base[j] + ih * g->W + iw]
                           : (T)0;
            }
            for (int j = n; j < nr; j++)
                d[j] = 0;
        }
    }
}

/* Rows [r0, r0 + rows) and columns [k0, k0 + kcb) of group g's W (M x K) into mr-row
 * micro-panels at d (panel i at i*mr*kcb, rows past the range zero). W is src (groups x
 * M x K, row-major) or, flip_kk > 0, the flipped transpose of each group of the forward
 * weight src (groups*KO x M x KK, KO = K / KK): W[c][(oc, kh, kw)] = src[g*KO + oc][c]
 * [KH-1-kh][KW-1-kw], backward data's weight packed straight from the forward one. */
static void FN(conv_pack_a)(const tg_gemm_kernels *kr, const T *src, int64_t flip_kk, int64_t M,
                            int64_t K, int64_t g, int64_t r0, int64_t rows, int64_t k0, int64_t kcb,
                            T *d)
{
    const int64_t mr = kr->S.mr, KK = flip_kk, KO = KK ? K / KK : 0;
    if (!KK && kr->S.pack_a_rowmajor) {
        kr->S.pack_a_rowmajor(rows, kcb, src + (g * M + r0) * K + k0, K, d);
        return;
    }
    for (int64_t ir = 0; ir < rows; ir += mr, d += mr * kcb) {
        int64_t m = rows - ir < mr ? rows - ir : mr;
        for (int64_t p = 0; p < kcb; p++) {
            int64_t k = k0 + p, step = KK ? KK : K;
            const T *s = KK ? src + ((g * KO + k / KK) * M + r0 + ir) * KK + KK - 1 - k % KK
                            : src + (g * M + r0 + ir) * K + k;
            for (int64_t i = 0; i < m; i++)
                d[p * mr + i] = s[i * step];
            for (int64_t i = m; i < mr; i++)
                d[p * mr + i] = 0;
        }
    }
}

/* The weight preparations, threaded: a large layer's weight (512 -> 512 3x3: 2.4 M
 * values) takes as long to move as a batch-1 product takes to compute. */
typedef struct {
    const tg_gemm_kernels *kr;
    const T *src;
    T *dst;
    int64_t M, K, kc, nkb;  /* pack: units are (group, K block) */
    int64_t flip_kk;        /* pack: 0, or KK: src is w, packed as conv_pack_a says */
    int64_t Cg, KK, ncb;    /* flip: units are (group, block of TG_CONV_FLIP_C channels) */
    int64_t units;
    atomic_llong next;
} FN(wprep);

#define TG_CONV_FLIP_C 16
static void FN(wprep_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(wprep) *w = ctx;
    (void)begin, (void)end; /* every participant takes units until none are left */
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= w->units)
            break;
        if (w->kr) {
            int64_t g = u / w->nkb, k0 = u % w->nkb * w->kc, kcb = w->K - k0 < w->kc ? w->K - k0 : w->kc;
            int64_t Mp = (w->M + w->kr->S.mr - 1) / w->kr->S.mr * w->kr->S.mr;
            FN(conv_pack_a)(w->kr, w->src, w->flip_kk, w->M, w->K, g, 0, w->M, k0, kcb,
                            w->dst + g * Mp * w->K + k0 * Mp);
            continue;
        }
        /* dst[g][c][oc][k] = src[g*M + oc][c][KK-1-k]: TG_CONV_FLIP_C channels' rows written
         * one oc at a time, reading one contiguous run of src per oc */
        int64_t g = u / w->ncb, c0 = u % w->ncb * TG_CONV_FLIP_C;
        int64_t cn = w->Cg - c0 < TG_CONV_FLIP_C ? w->Cg - c0 : TG_CONV_FLIP_C;
        for (int64_t oc = 0; oc < w->M; oc++) {
            const T *s = w->src + ((g * w->M + oc) * w->Cg + c0) * w->KK;
            for (int64_t c = 0; c < cn; c++) {
                T *d = w->dst + ((g * w->Cg + c0 + c) * w->M + oc) * w->KK;
                for (int64_t k = 0; k < w->KK; k++)
                    d[k] = s[c * w->KK + w->KK - 1 - k];
            }
        }
    }
}

/* W (groups x M x K, row-major; or, flip_kk > 0, the forward weight whose flipped
 * transpose W is) into mr-row micro-panels: group g, K block b (of kc rows, the last one
 * shorter), panel i at dst + g*Mp*K + b*kc*Mp + i*mr*kcb, rows past M zero. */
static void FN(conv_pack_w)(const tg_gemm_kernels *kr, const T *A, int64_t flip_kk, int64_t groups,
                            int64_t M, int64_t K, int64_t kc, T *dst)
{
    FN(wprep) w = { .kr = kr, .src = A, .dst = dst, .M = M, .K = K, .kc = kc,
                    .nkb = (K + kc - 1) / kc, .flip_kk = flip_kk };
    w.units = groups * w.nkb;
    tg_conv_parallel(TG_CONV_MOVE_FLOPS * (double)(groups * M * K), w.units, FN(wprep_fn), &w);
}

/* wt (groups x Cg x M x KK) = the weight w (groups*M x Cg x KK) of each group transposed,
 * its kernel flipped: backward-data's weight as a forward one. */
static void FN(conv_flip_w)(T *wt, const T *w, int64_t groups, int64_t M, int64_t Cg, int64_t KK)
{
    FN(wprep) j = { .src = w, .dst = wt, .M = M, .Cg = Cg, .KK = KK,
                    .ncb = (Cg + TG_CONV_FLIP_C - 1) / TG_CONV_FLIP_C };
    j.units = groups * j.ncb;
    tg_conv_parallel(TG_CONV_MOVE_FLOPS * (double)(groups * M * Cg * KK), j.units, FN(wprep_fn), &j);
}

/* ---------------------------------------------------------------- implicit */

typedef struct {
    const tg_gemm_kernels *kr;
    tg_conv_pack_fn pack; /* the ISA's packer, or NULL for conv_pack_c */
    tg_conv_pack_geom pg; /* group 0; tables for all K rows */
    int64_t x_group;      /* elements between groups' first channels */
    int64_t M, K, Q, P, Mp, kc, nkb;
    const T *ap;          /* conv_pack_w's layout, or NULL: each unit packs its panels */
    const T *A;           /* the weight as conv_pack_a takes it, with flip_kk */
    int64_t flip_kk;
    T *out;
    int64_t out_img;      /* elements between output images */
    const T *bias;        /* groups * M, or NULL */
    int64_t groups, nb, nbands, mblk, nmb, units;
    T *bpre;              /* one band in row blocks: it packed once (iconv_pack_fn), or NULL */
    int64_t nbp;          /* nb rounded up to nr: a packed band's width */
    atomic_llong next;
    atomic_int oom;
} FN(iconv);

/* c[0, n) (+)= t[0, n): restrict parameters, so that the loop vectorises. */
static inline void FN(conv_merge_run)(int64_t n, T *restrict c, const T *restrict t, int acc)
{
    if (acc)
        for (int64_t j = 0; j < n; j++)
            c[j] += t[j];
    else
        for (int64_t j = 0; j < n; j++)
            c[j] = t[j];
}

/* out columns [q, q + n) of rows [0, m) (row stride P; image stride out_img) (+)= tile,
 * a run of columns within one image at a time, so that each run is one vector loop (the
 * tiles that cross an image boundary: one in six of a 14x14 layer's). */
static void FN(conv_scatter)(const FN(iconv) *w, T *C, int64_t q, int64_t m, int64_t n,
                             const T *tile, int64_t nr, int acc)
{
    int64_t img = q / w->P, p = q % w->P;
    for (int64_t j0 = 0; j0 < n;) {
        int64_t len = w->P - p < n - j0 ? w->P - p : n - j0;
        T *c = C + img * w->out_img + p;
        for (int64_t i = 0; i < m; i++)
            FN(conv_merge_run)(len, c + i * w->P, tile + i * nr + j0, acc);
        j0 += len, p = 0, img++;
    }
}

/* bp = the packed block of im2col rows [k0, k0 + kcb), columns [q0, q0 + nc) of group g. */
static void FN(iconv_pack)(const FN(iconv) *w, int64_t g, int64_t k0, int64_t kcb, int64_t q0,
                           int64_t nc, T *bp)
{
    tg_conv_pack_geom pg = w->pg;
    pg.x = (const T *)w->pg.x + g * w->x_group;
    pg.ih_off = w->pg.ih_off + k0, pg.iw_off = w->pg.iw_off + k0;
    pg.c_off = w->pg.c_off + k0;
    if (w->pack)
        w->pack(&pg, kcb, q0, nc, bp);
    else
        FN(conv_pack_c)(&pg, kcb, q0, nc, bp, (int)w->kr->S.nr);
}

/* Packs bpre: units are (group, band, K block). */
static void FN(iconv_pack_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(iconv) *w = ctx;
    (void)begin, (void)end;
    int64_t nkb = (w->K + w->kc - 1) / w->kc, units = w->groups * w->nbands * nkb;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= units)
            break;
        int64_t gb = u / nkb, k0 = u % nkb * w->kc, q0 = gb % w->nbands * w->nb;
        FN(iconv_pack)(w, gb / w->nbands, k0, w->K - k0 < w->kc ? w->K - k0 : w->kc, q0,
                       w->Q - q0 < w->nb ? w->Q - q0 : w->nb, w->bpre + gb * w->K * w->nbp + k0 * w->nbp);
    }
}

static void FN(iconv_unit)(FN(iconv) *w, int64_t u, T *bp, T *abuf)
{
    const tg_gemm_kernels *kr = w->kr;
    const int64_t mr = kr->S.mr, nr = kr->S.nr;
    T tile[TG_GEMM_MAX_MR * TG_GEMM_MAX_NR] __attribute__((aligned(64)));
    int64_t g = u / (w->nbands * w->nmb), r = u % (w->nbands * w->nmb);
    int64_t q0 = r / w->nmb * w->nb, m0 = r % w->nmb * w->mblk;
    int64_t nc = w->Q - q0 < w->nb ? w->Q - q0 : w->nb;
    int64_t mc = w->M - m0 < w->mblk ? w->M - m0 : w->mblk;
    T *C = w->out + (g * w->M + m0) * w->P;
    if (w->bias) {
        const T *b = w->bias + g * w->M + m0;
        int64_t img = q0 / w->P, p = q0 % w->P;
        for (int64_t left = nc; left > 0;) {
            int64_t len = w->P - p < left ? w->P - p : left;
            for (int64_t i = 0; i < mc; i++)
                for (int64_t j = 0; j < len; j++)
                    C[img * w->out_img + i * w->P + p + j] = b[i];
            left -= len, p = 0, img++;
        }
    }
    for (int64_t k0 = 0; k0 < w->K; k0 += w->kc) {
        int64_t kcb = w->K - k0 < w->kc ? w->K - k0 : w->kc;
        if (w->bpre)
            bp = w->bpre + (g * w->nbands + q0 / w->nb) * w->K * w->nbp + k0 * w->nbp;
        else
            FN(iconv_pack)(w, g, k0, kcb, q0, nc, bp);
        int acc = k0 > 0 || w->bias;
        for (int64_t ir = 0; ir < mc; ir += mr) {
            int64_t m = mc - ir < mr ? mc - ir : mr;
            const T *a = abuf;
            if (w->ap)
                a = w->ap + g * w->Mp * w->K + k0 * w->Mp + (m0 + ir) * kcb;
            else
                FN(conv_pack_a)(kr, w->A, w->flip_kk, w->M, w->K, g, m0 + ir, m, k0, kcb, abuf);
            UKR ukr = kr->S.ukr;
            int64_t rows = mr;
            if (m <= 4 && kr->S.ukr4)
                ukr = kr->S.ukr4, rows = 4;
            else if (m <= 8 && kr->S.ukr8)
                ukr = kr->S.ukr8, rows = 8;
            for (int64_t jr = 0; jr < nc; jr += nr) {
                int64_t q = q0 + jr, p = q % w->P, n = nc - jr < nr ? nc - jr : nr;
                if (m == rows && n == nr && p + nr <= w->P) {
                    ukr(kcb, a, bp + jr * kcb, C + q / w->P * w->out_img + ir * w->P + p, w->P,
                        acc);
                } else {
                    ukr(kcb, a, bp + jr * kcb, tile, nr, 0);
                    FN(conv_scatter)(w, C + ir * w->P, q, m, n, tile, nr, acc);
                }
            }
        }
    }
}

static void FN(iconv_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(iconv) *w = ctx;
    (void)begin, (void)end; /* every participant takes units until none are left */
    T *bp = NULL, *abuf = NULL;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= w->units)
            break;
        if (!bp && !abuf && (!w->bpre || !w->ap)) {
            size_t nbs = w->bpre ? 0 : (size_t)((w->kc * w->nbp + 15) / 16 * 16);
            bp = tg_conv_scratch(0, (nbs + (w->ap ? 0 : (size_t)(w->kr->S.mr * w->kc))) * sizeof(T));
            abuf = bp + nbs;
            if (!bp) {
                atomic_store(&w->oom, 1);
                atomic_store(&w->next, w->units);
                break;
            }
        }
        FN(iconv_unit)(w, u, bp, abuf);
    }
}

/* w's bands and row blocks, from its Q, M, Mp, kc and groups: a band's kc x nb block of
 * im2col stays in L2 while every row panel of W meets it; small images get narrower
 * bands, then blocks of W's rows, so that the threads have units enough. */
static void FN(iconv_cut)(FN(iconv) *w)
{
    const int64_t mr = w->kr->S.mr, nr = w->kr->S.nr, Q = w->Q, groups = w->groups;
    int64_t nb = (int64_t)(TG_CONV_B_BYTES / sizeof(T)) / w->kc / nr * nr;
    nb = nb < 4 * nr ? 4 * nr : nb > 2048 ? 2048 : nb;
    int threads = tg_pool_num_threads();
    int64_t nbands = (Q + nb - 1) / nb;
    if (nbands * groups < 4 * threads && Q > nr) {
        int64_t want = (4 * threads + groups - 1) / groups;
        int64_t tiles = (Q + nr - 1) / nr;
        nb = (tiles + want - 1) / want * nr;
        nb = nb < 4 * nr ? 4 * nr : nb;
        nbands = (Q + nb - 1) / nb;
    }
    int64_t panels = w->Mp / mr, nmb = 1;
    if (nbands * groups < 4 * threads) {
        nmb = (4 * threads + nbands * groups - 1) / (nbands * groups);
        nmb = nmb > panels ? panels : nmb;
    }
    int64_t mblk = (panels + nmb - 1) / nmb * mr;
    w->nb = nb, w->nbands = nbands, w->mblk = mblk, w->nmb = (w->M + mblk - 1) / mblk;
    w->nbp = ((nb < Q ? nb : Q) + nr - 1) / nr * nr;
    w->units = groups * nbands * w->nmb;
}

/* out = conv(x, A) + bias for the geometry g, where A (groups x M x K row-major, M =
 * OC/groups, K = Cg*KH*KW) is the weight as a matrix; or, flip, where A is the weight of
 * the forward conv whose backward data g is (tg_conv_bwd_geom), never the direct tiles. */
static tg_status FN(conv_implicit)(T *out, const T *x, const T *A, int flip, const T *bias,
                                   const tg_conv2d_geom *g0, tg_conv_epi *epi)
{
    int direct = flip ? 0 : FN(conv_direct)(out, x, A, bias, g0, epi);
    if (direct)
        return direct > 0 ? TG_OK : TG_ERR_NOMEM;
    const tg_gemm_kernels *kr = tg_gemm_kernels_current();
    tg_conv2d_geom g = *g0;
    if (g.KH == 1 && g.KW == 1 && g.stride[0] == 1 && g.stride[1] == 1 && g.pad[0] == 0 &&
        g.pad[1] == 0 && g.OH == g.H && g.OW == g.W) {
        /* 1x1: each image is one long row, so the packer's runs are as long as can be */
        g.W = g.OW = g.H * g.W;
        g.H = g.OH = 1;
    }
    int64_t Cg = g.C / g.groups, M = g.OC / g.groups, K = Cg * g.KH * g.KW, P = g.OH * g.OW;
    int64_t nkb = (K + kr->S.kc - 1) / kr->S.kc;
    FN(iconv) w = { .kr = kr, .pack = PACKER(kr), .x_group = Cg * g.H * g.W, .M = M, .K = K,
                    .Q = g.N * P, .P = P, .Mp = (M + kr->S.mr - 1) / kr->S.mr * kr->S.mr,
                    .kc = (K + nkb - 1) / nkb, .nkb = nkb, .A = A, .flip_kk = flip ? g.KH * g.KW : 0,
                    .out = out, .out_img = g.OC * P, .bias = bias, .groups = g.groups };
    FN(iconv_cut)(&w);
    /* the caller's scratch: the row tables; the packed weight, unless there is one band
     * split into row blocks (batch 1, small images), where each unit packs its own panels
     * of W as it needs them (packing W whole and reading it back, for panels no other unit
     * uses, cost a quarter of a 512 -> 512 3x3 at 7x7); and where the bands are split into
     * row blocks, every band packed once ahead for all its units (each unit packing its
     * own copy cost a quarter of 128 -> 128 at 28x28 and of 256 -> 256 at 14x14 at batch
     * 1: 57% -> 65% and 48% -> 62% of the peak on 2 threads, reading the bands back from
     * L3 costs less than packing them again) */
    int a_otf = w.nmb > 1 && w.nbands == 1, b_ahead = w.nmb > 1;
    size_t tab = ((size_t)(3 * K + 8) * sizeof(int64_t) + 63) & ~(size_t)63;
    size_t wbytes = a_otf ? 0 : ((size_t)(g.groups * w.Mp * K) * sizeof(T) + 63) & ~(size_t)63;
    size_t bbytes = b_ahead ? (size_t)(g.groups * w.nbands * K * w.nbp) * sizeof(T) : 0;
    char *s1 = tg_conv_scratch(1, tab + wbytes + bbytes);
    if (!s1)
        return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for the packed weight (%lld bytes)",
                        (long long)(tab + wbytes + bbytes));
    int64_t *ih_off = (int64_t *)s1, *iw_off = ih_off + K, *c_off = iw_off + K;
    for (int64_t k = 0; k < K; k++) {
        int64_t c = k / (g.KH * g.KW), kh = k / g.KW % g.KH, kw = k % g.KW;
        ih_off[k] = kh * g.dilation[0] - g.pad[0];
        iw_off[k] = kw * g.dilation[1] - g.pad[1];
        c_off[k] = c * g.H * g.W;
    }
    w.pg = (tg_conv_pack_geom){ x, g.C * g.H * g.W, g.H, g.W, g.OW, P, g.stride[0],
                                g.stride[1], ih_off, iw_off, c_off };
    if (!a_otf) {
        T *ap = (T *)(s1 + tab);
        FN(conv_pack_w)(kr, A, w.flip_kk, g.groups, M, K, w.kc, ap);
        w.ap = ap;
    }
    if (bbytes) {
        w.bpre = (T *)(s1 + tab + wbytes);
        tg_conv_parallel(TG_CONV_MOVE_FLOPS * (double)(bbytes / sizeof(T)), g.groups * w.nbands * nkb,
                    FN(iconv_pack_fn), &w);
        atomic_store(&w.next, 0);
    }
    tg_conv_parallel(2.0 * (double)M * (double)K * (double)w.Q * (double)g.groups, w.units, FN(iconv_fn), &w);
    if (atomic_load(&w.oom))
        return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for a thread's packing buffer");
    return TG_OK;
}

/* ---------------------------------------------------------------- 1x1 */

/* A 1x1 conv without padding is a GEMM per image and group: C (M x P) = A (M x K) *
 * B (K x P), B's rows the channel planes. Forward: A = W_g, B = x, C = out; backward
 * data: A = W_g^T, B = dout, C = dx. One parallel region over (image, group, band of
 * positions): A is packed once for the call, B one nr-wide strip at a time, and the
 * strip meets every row panel of A before the next one, so B is read from memory once
 * into L1 and the bias is added to a tile that is still in cache. At stride > 1
 * (forward) the band's input positions are first gathered into a compact block in the
 * worker's buffer: a copy, where the im2col packer's gathers cost as much as the product.
 * Backward data at stride > 1 stays with the col path (a scatter of the same cost). */
typedef struct {
    const tg_gemm_kernels *kr;
    const T *ap;                  /* conv_pack_w's layout: groups x M x K, blocks of kc */
    const T *b;                   /* forward x, backward dout: image 0, group 0 */
    T *c;                         /* forward out, backward dx */
    const T *bias;                /* groups * M, or NULL */
    int64_t M, K, Mp, kc;
    int64_t b_img, b_group, c_img, c_group; /* elements between images / groups' planes */
    int64_t H, W, OH, OW, sh, sw; /* the input and output planes */
    int strided;                  /* forward only: positions are not the input plane itself */
    int64_t band;                 /* positions a band */
    int64_t nbands, groups, units;
    atomic_llong next;
    atomic_int oom;
} FN(c1);

/* dst (kcb x nr panel, columns past n zero) = rows [0, kcb) of b (row stride ldb),
 * columns [0, n). */
static void FN(c1_pack_strip)(const tg_gemm_kernels *kr, int64_t kcb, int64_t n, const T *b,
                              int64_t ldb, T *dst)
{
    const int64_t nr = kr->S.nr;
    if (kr->S.pack_b_rowmajor) {
        kr->S.pack_b_rowmajor(kcb, n, b, ldb, dst);
        return;
    }
    for (int64_t k = 0; k < kcb; k++)
        for (int64_t j = 0; j < nr; j++)
            dst[k * nr + j] = j < n ? b[k * ldb + j] : (T)0;
}

/* C (M x nc, row stride ldc) (+ bias) = A * B for B (K x nc, row stride ldb). */
static void FN(c1_gemm)(const FN(c1) *w, const T *ap, const T *b, int64_t ldb, T *c, int64_t ldc,
                        int64_t nc, const T *bias, T *bs)
{
    const tg_gemm_kernels *kr = w->kr;
    const int64_t mr = kr->S.mr, nr = kr->S.nr;
    T tile[TG_GEMM_MAX_MR * TG_GEMM_MAX_NR] __attribute__((aligned(64)));
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int64_t n = nc - jr < nr ? nc - jr : nr;
        for (int64_t k0 = 0; k0 < w->K; k0 += w->kc) {
            int64_t kcb = w->K - k0 < w->kc ? w->K - k0 : w->kc;
            FN(c1_pack_strip)(kr, kcb, n, b + k0 * ldb + jr, ldb, bs);
            for (int64_t ir = 0; ir < w->M; ir += mr) {
                int64_t m = w->M - ir < mr ? w->M - ir : mr, rows = mr;
                const T *a = ap + k0 * w->Mp + ir * kcb;
                UKR ukr = kr->S.ukr;
                if (m <= 4 && kr->S.ukr4)
                    ukr = kr->S.ukr4, rows = 4;
                else if (m <= 8 && kr->S.ukr8)
                    ukr = kr->S.ukr8, rows = 8;
                T *ct = c + ir * ldc + jr;
                if (m == rows && n == nr) {
                    ukr(kcb, a, bs, ct, ldc, k0 > 0);
                    continue;
                }
                ukr(kcb, a, bs, tile, nr, 0);
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++)
                        ct[i * ldc + j] = (k0 > 0 ? ct[i * ldc + j] : (T)0) + tile[i * nr + j];
            }
        }
        for (int64_t i = 0; bias && i < w->M; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + jr + j] += bias[i];
    }
}

static void FN(c1_unit)(FN(c1) *w, int64_t u, T *bs, T *buf)
{
    int64_t band = u % w->nbands, gi = u / w->nbands % w->groups, n = u / (w->nbands * w->groups);
    int64_t P = w->OH * w->OW, p0 = band * w->band, nc = P - p0 < w->band ? P - p0 : w->band;
    const T *ap = w->ap + gi * w->Mp * w->K, *bias = w->bias ? w->bias + gi * w->M : NULL;
    const T *b = w->b + n * w->b_img + gi * w->b_group;
    T *c = w->c + n * w->c_img + gi * w->c_group;
    if (!w->strided) {
        FN(c1_gemm)(w, ap, b + p0, P, c + p0, P, nc, bias, bs);
        return;
    }
    for (int64_t k = 0; k < w->K; k++) { /* buf (K x nc) = the band's input positions */
        const T *s = b + k * w->H * w->W;
        T *d = buf + k * nc;
        for (int64_t p = p0; p < p0 + nc;) {
            int64_t ow = p % w->OW, len = w->OW - ow < p0 + nc - p ? w->OW - ow : p0 + nc - p;
            const T *r = s + p / w->OW * w->sh * w->W + ow * w->sw;
            if (w->sw == 2) /* a constant stride vectorises */
                for (int64_t j = 0; j < len; j++)
                    d[j] = r[2 * j];
            else
                for (int64_t j = 0; j < len; j++)
                    d[j] = r[j * w->sw];
            d += len, p += len;
        }
    }
    FN(c1_gemm)(w, ap, buf, nc, c + p0, P, nc, bias, bs);
}

static void FN(c1_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(c1) *w = ctx;
    (void)begin, (void)end; /* every participant takes units until none are left */
    T *bs = NULL, *buf = NULL;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= w->units)
            break;
        if (!bs) {
            size_t strip = (size_t)(w->kc * w->kr->S.nr);
            size_t blk = w->strided ? (size_t)(w->K * w->band) : 0;
            bs = tg_conv_scratch(0, (strip + blk) * sizeof(T));
            if (!bs) {
                atomic_store(&w->oom, 1);
                atomic_store(&w->next, w->units);
                break;
            }
            buf = bs + strip;
        }
        FN(c1_unit)(w, u, bs, buf);
    }
}

/* Whether conv_1x1 computes g: a 1x1 kernel without padding whose output positions all
 * read inside the input (the op layer's bottom/right padding can only drop some), and a
 * weight that stays in L2 while every strip meets all of it (larger ones take the blocked
 * GEMM); backward data only where dx is the output's own plane (stride 1). */
static int FN(conv_1x1_ok)(int backward, const tg_conv2d_geom *g)
{
    if (backward && (g->stride[0] != 1 || g->stride[1] != 1 || g->OH != g->H || g->OW != g->W))
        return 0;
    double wbytes = (double)(g->OC / g->groups) * (double)(g->C / g->groups) * sizeof(T);
    return wbytes <= TG_CONV_1X1_MAX_W_BYTES && g->KH == 1 && g->KW == 1 && g->pad[0] == 0 && g->pad[1] == 0 &&
           g->OH <= (g->H - 1) / g->stride[0] + 1 && g->OW <= (g->W - 1) / g->stride[1] + 1;
}

/* Forward (backward == 0: c = out, b = x, A = W) or backward data (c = dx, b = dout,
 * A = W^T) of a conv_1x1_ok(backward) geometry, where A (groups x M x K) is row-major. */
static tg_status FN(conv_1x1)(int backward, T *c, const T *b, const T *A, const T *bias,
                              const tg_conv2d_geom *g)
{
    const tg_gemm_kernels *kr = tg_gemm_kernels_current();
    int64_t Cg = g->C / g->groups, OCg = g->OC / g->groups, P = g->OH * g->OW;
    int64_t M = backward ? Cg : OCg, K = backward ? OCg : Cg;
    int64_t Mp = (M + kr->S.mr - 1) / kr->S.mr * kr->S.mr;
    int64_t nkb = (K + kr->S.kc - 1) / kr->S.kc, kc = (K + nkb - 1) / nkb;
    T *ap = tg_conv_scratch(1, (size_t)(g->groups * Mp * K) * sizeof(T));
    if (!ap)
        return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for the packed weight");
    FN(conv_pack_w)(kr, A, 0, g->groups, M, K, kc, ap);
    int64_t in = g->H * g->W;
    FN(c1) w = { .kr = kr, .ap = ap, .b = b, .c = c, .bias = bias, .M = M, .K = K, .Mp = Mp, .kc = kc,
                 .H = g->H, .W = g->W, .OH = g->OH, .OW = g->OW, .sh = g->stride[0],
                 .sw = g->stride[1], .groups = g->groups };
    w.strided = !(g->stride[0] == 1 && g->stride[1] == 1 && g->OH == g->H && g->OW == g->W);
    w.b_img = (backward ? g->OC * P : g->C * in), w.b_group = (backward ? OCg * P : Cg * in);
    w.c_img = (backward ? g->C * in : g->OC * P), w.c_group = (backward ? Cg * in : OCg * P);
    /* bands of TG_CONV_1X1_BAND positions, narrower where that gives too few units */
    const int64_t nr = kr->S.nr;
    int64_t want = 4 * tg_pool_num_threads(), per = g->N * g->groups;
    int64_t nbands = (P + TG_CONV_1X1_BAND - 1) / TG_CONV_1X1_BAND;
    if (nbands * per < want)
        nbands = (want + per - 1) / per;
    int64_t band = (P + nbands - 1) / nbands;
    band = band < nr ? nr : (band + nr - 1) / nr * nr;
    w.band = band < P ? band : P;
    w.nbands = (P + w.band - 1) / w.band;
    w.units = per * w.nbands;
    tg_conv_parallel(2.0 * (double)(g->N * g->groups) * (double)(M * K) * (double)P, w.units, FN(c1_fn), &w);
    if (atomic_load(&w.oom))
        return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for a thread's packing buffer");
    return TG_OK;
}

/* ---------------------------------------------------------------- im2col rows */

/* col (K x rows*OW, row-major) = the im2col rows of group channels [0, Cg) of one image
 * xg (Cg, H, W) for output rows [oh0, oh0 + rows). */
static void FN(conv_im2col)(T *col, const T *xg, const tg_conv2d_geom *g, int64_t Cg,
                            int64_t oh0, int64_t rows)
{
    int64_t len = rows * g->OW;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++, col += len) {
                int64_t iwo = kw * g->dilation[1] - g->pad[1], sw = g->stride[1];
                int64_t lo = iwo >= 0 ? 0 : (-iwo + sw - 1) / sw;
                int64_t hi = iwo < g->W ? (g->W - iwo + sw - 1) / sw : 0;
                hi = hi > g->OW ? g->OW : hi;
                lo = lo > hi ? hi : lo;
                for (int64_t r = 0; r < rows; r++) {
                    T *d = col + r * g->OW;
                    int64_t ih = (oh0 + r) * g->stride[0] - g->pad[0] + kh * g->dilation[0];
                    if ((uint64_t)ih >= (uint64_t)g->H) {
                        memset(d, 0, (size_t)g->OW * sizeof(T));
                        continue;
                    }
                    const T *s = xg + (c * g->H + ih) * g->W + iwo;
                    for (int64_t ow = 0; ow < lo; ow++)
                        d[ow] = 0;
                    if (sw == 1)
                        memcpy(d + lo, s + lo, (size_t)(hi - lo) * sizeof(T));
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            d[ow] = s[ow * sw];
                    for (int64_t ow = hi; ow < g->OW; ow++)
                        d[ow] = 0;
                }
            }
}

/* dxg (Cg, H, W) += the col2im of col (K x rows*OW) for output rows [oh0, oh0 + rows). */
static void FN(conv_col2im)(T *dxg, const T *col, const tg_conv2d_geom *g, int64_t Cg,
                            int64_t oh0, int64_t rows)
{
    int64_t len = rows * g->OW;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++, col += len) {
                int64_t iwo = kw * g->dilation[1] - g->pad[1], sw = g->stride[1];
                int64_t lo = iwo >= 0 ? 0 : (-iwo + sw - 1) / sw;
                int64_t hi = iwo < g->W ? (g->W - iwo + sw - 1) / sw : 0;
                hi = hi > g->OW ? g->OW : hi;
                for (int64_t r = 0; r < rows; r++) {
                    int64_t ih = (oh0 + r) * g->stride[0] - g->pad[0] + kh * g->dilation[0];
                    if ((uint64_t)ih >= (uint64_t)g->H)
                        continue;
                    T *d = dxg + (c * g->H + ih) * g->W + iwo;
                    const T *s = col + r * g->OW;
                    for (int64_t ow = lo; ow < hi; ow++)
                        d[ow * sw] += s[ow];
                }
            }
}

/* Output rows a chunk of q takes: about TG_CONV_CHUNK columns, whole rows. */
static int64_t FN(conv_chunk_rows)(const tg_conv2d_geom *g)
{
    int64_t r = TG_CONV_CHUNK / (g->OW > 0 ? g->OW : 1);
    r = r < 1 ? 1 : r;
    return r > g->OH ? g->OH : r;
}

/* ---------------------------------------------------------------- col (backward data) */

typedef struct {
    const tg_conv2d_geom *g;
    T *dx;
    const T *dout, *w;
    int64_t Cg, M, K, cb, ncb, units;
    atomic_llong next;
    atomic_int oom;
} FN(colbd);

static void FN(colbd_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(colbd) *w = ctx;
    const tg_conv2d_geom *g = w->g;
    (void)begin, (void)end;
    int64_t P = g->OH * g->OW, rows = FN(conv_chunk_rows)(g), KK = g->KH * g->KW;
    T *col = NULL;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (u >= w->units)
            break;
        if (!col && !(col = tg_conv_scratch(0, (size_t)(w->cb * KK * rows * g->OW) * sizeof(T)))) {
            atomic_store(&w->oom, 1);
            atomic_store(&w->next, w->units);
            break;
        }
        int64_t n = u / (g->groups * w->ncb), gi = u / w->ncb % g->groups;
        int64_t c0 = u % w->ncb * w->cb, cn = w->Cg - c0 < w->cb ? w->Cg - c0 : w->cb;
        T *dxg = w->dx + (n * g->C + gi * w->Cg + c0) * g->H * g->W;
        memset(dxg, 0, (size_t)(cn * g->H * g->W) * sizeof(T));
        const T *dg = w->dout + (n * g->OC + gi * w->M) * P;
        const T *wg = w->w + gi * w->M * w->K + c0 * KK; /* W_g^T rows c0*KK.. */
        for (int64_t oh0 = 0; oh0 < g->OH; oh0 += rows) {
            int64_t r = g->OH - oh0 < rows ? g->OH - oh0 : rows, len = r * g->OW;
            FN(tg_cpu_gemm_serial)(cn * KK, len, w->M, wg, 1, w->K, dg + oh0 * g->OW, P, 1,
                                   (T)0, col, len, 1);
            FN(conv_col2im)(dxg, col, g, cn, oh0, r);
        }
    }
}

static tg_status FN(conv_col_bwd_data)(T *dx, const T *dout, const T *wt, const tg_conv2d_geom *g)
{
    FN(colbd) w = { .g = g, .dx = dx, .dout = dout, .w = wt, .Cg = g->C / g->groups,
                    .M = g->OC / g->groups };
    w.K = w.Cg * g->KH * g->KW;
    int threads = tg_pool_num_threads();
    /* channel blocks: enough units for the threads, col chunks of bounded height */
    int64_t per = g->N * g->groups, ncb = 1;
    if (per < 2 * threads)
        ncb = (2 * threads + per - 1) / per;
    int64_t maxc = 512 / (g->KH * g->KW) > 0 ? 512 / (g->KH * g->KW) : 1;
    if ((w.Cg + ncb - 1) / ncb > maxc)
        ncb = (w.Cg + maxc - 1) / maxc;
    ncb = ncb > w.Cg ? w.Cg : ncb;
    w.cb = (w.Cg + ncb - 1) / ncb;
    w.ncb = (w.Cg + w.cb - 1) / w.cb;
    w.units = per * w.ncb;
    double flops = 2.0 * (double)g->N * (double)g->OC * (double)w.K * (double)(g->OH * g->OW);
    tg_conv_parallel(flops, w.units, FN(colbd_fn), &w);
    if (atomic_load(&w.oom))
        return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for a col buffer");
    return TG_OK;
}

/* ---------------------------------------------------------------- wgrad */

typedef struct {
    const tg_conv2d_geom *g;
    T *dw;
    const T *dout, *x;
    int64_t Cg, M, K, rows, nchunks, units, size;
    int direct; /* 1x1, stride 1, no padding: im2col is x itself */
    int tiles;  /* the direct tiles (f32): units are (group, TG_CONV_WGRAD_TILE positions) */
    int64_t ntiles;
    int64_t cb, ncb; /* ncb > 1: units are (group, block of cb channels) over all positions */
    int64_t nslots;  /* ncb == 1: the slots (slot 0 dw itself); ncb > 1: units */
    T *parts;        /* slots 1.. (size values apart) */
    atomic_llong next; /* the next slot */
    atomic_int oom;
} FN(wgrad);

/* acc (+)= unit u's part of the weight gradient; col: the unit's im2col scratch. */
static void FN(wgrad_unit)(const FN(wgrad) *w, int64_t u, T *acc, T *col)
{
    const tg_conv2d_geom *g = w->g;
    int64_t P = g->OH * g->OW;
    if (w->tiles) {
        int64_t gi = u / w->ntiles, q0 = u % w->ntiles * TG_CONV_WGRAD_TILE, Q = g->N * P;
        FN(wgrad_direct)(g, w->dout, w->x, acc + gi * w->M * w->K, gi, q0,
                         Q - q0 < TG_CONV_WGRAD_TILE ? Q - q0 : TG_CONV_WGRAD_TILE);
        return;
    }
    int64_t gi = u / (g->N * w->nchunks * w->ncb), n = u / (w->nchunks * w->ncb) % g->N;
    int64_t oh0 = u / w->ncb % w->nchunks * w->rows, r = g->OH - oh0 < w->rows ? g->OH - oh0 : w->rows;
    int64_t c0 = u % w->ncb * w->cb, cn = w->Cg - c0 < w->cb ? w->Cg - c0 : w->cb;
    int64_t len = r * g->OW, KK = g->KH * g->KW;
    for (int64_t n1 = w->ncb > 1 ? g->N : n + 1; n < n1; n++) { /* all images when ncb > 1 */
        const T *xg = w->x + (n * g->C + gi * w->Cg + c0) * g->H * g->W;
        const T *dg = w->dout + (n * g->OC + gi * w->M) * P + oh0 * g->OW;
        const T *b = xg + oh0 * g->OW;
        int64_t csb = g->H * g->W;
        if (!w->direct) {
            FN(conv_im2col)(col, xg, g, cn, oh0, r);
            b = col, csb = len;
        }
        T beta = w->ncb > 1 && n == 0 ? (T)0 : (T)1; /* a block's first image writes it */
        FN(tg_cpu_gemm_serial)(w->M, cn * KK, len, dg, P, 1, b, 1, csb, beta,
                               acc + gi * w->M * w->K + c0 * KK, w->K, 1);
    }
}

static void FN(wgrad_fn)(void *ctx, int64_t begin, int64_t end)
{
    FN(wgrad) *w = ctx;
    const tg_conv2d_geom *g = w->g;
    (void)begin, (void)end; /* every participant takes slots until none are left */
    T *col = NULL;
    for (;;) {
        int64_t s = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (s >= w->nslots)
            break;
        if (!w->direct && !w->tiles && !col &&
            !(col = tg_conv_scratch(0, (size_t)(w->cb * g->KH * g->KW * w->rows * g->OW) * sizeof(T)))) {
            atomic_store(&w->oom, 1);
            atomic_store(&w->next, w->nslots);
            break;
        }
        if (w->ncb > 1) { /* the unit writes its own columns of dw */
            FN(wgrad_unit)(w, s, w->dw, col);
            continue;
        }
        T *acc = s == 0 ? w->dw : w->parts + (s - 1) * w->size; /* dw zeroed by the caller */
        if (s > 0)
            memset(acc, 0, (size_t)w->size * sizeof(T));
        for (int64_t u = s * w->units / w->nslots; u < (s + 1) * w->units / w->nslots; u++)
            FN(wgrad_unit)(w, u, acc, col);
    }
}

/* dw[i] += the slots 1.. at i, in slot order; units are values of dw. */
static void FN(wgrad_sum_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(wgrad) *w = ctx;
    for (int64_t p = 1; p < w->nslots; p++) {
        const T *s = w->parts + (p - 1) * w->size;
        for (int64_t i = begin; i < end; i++)
            w->dw[i] += s[i];
    }
}

/* The cut, from the problem alone (TG_CONV_WGRAD_THREADS): chunks of (group, image,
 * rows), or the direct tiles, summed into slots; or, with few chunks, blocks of dw's
 * columns. */
static void FN(wgrad_cut)(FN(wgrad) *w)
{
    const tg_conv2d_geom *g = w->g;
    const int threads = TG_CONV_WGRAD_THREADS;
    w->rows = FN(conv_chunk_rows)(g);
    if (w->direct)
        w->rows = g->OH; /* x rows are contiguous: one chunk an image... */
    if (w->direct && g->N < 2 * threads)
        w->rows = (g->OH + 2 * threads - 1) / (2 * threads);
    w->nchunks = (g->OH + w->rows - 1) / w->rows;
    w->units = g->groups * g->N * w->nchunks;
    w->cb = w->Cg, w->ncb = 1;
    /* too few (image, rows) chunks for the threads (batch 1, small images): units own
     * blocks of dw's columns over all positions instead, so no copy of dw is needed; a
     * block keeps TG_CONV_WGRAD_MIN_COLS columns (the GEMM's vectors run along them) */
    int64_t ncb = (4 * threads + g->groups - 1) / g->groups, KK = g->KH * g->KW;
    int64_t cb = (w->Cg + ncb - 1) / ncb, cmin = (TG_CONV_WGRAD_MIN_COLS + KK - 1) / KK;
    cb = cb < cmin ? cmin : cb;
    if (w->units < 2 * threads && (w->Cg + cb - 1) / cb > 1 && !FN(wgrad_direct_ok)(g)) {
        w->cb = cb, w->ncb = (w->Cg + cb - 1) / cb;
        w->rows = g->OH, w->nchunks = 1;
        w->units = g->groups * w->ncb;
    }
    if ((w->tiles = FN(wgrad_direct_ok)(g))) {
        w->ntiles = (g->N * g->OH * g->OW + TG_CONV_WGRAD_TILE - 1) / TG_CONV_WGRAD_TILE;
        w->units = g->groups * w->ntiles;
    }
}

static tg_status FN(conv_wgrad)(T *dw, const T *dout, const T *x, const tg_conv2d_geom *g)
{
    int lanes = FN(wgrad_lanes)(dw, dout, x, g);
    if (lanes)
        return lanes > 0 ? TG_OK : TG_ERR_NOMEM;
    FN(wgrad) w = { .g = g, .dw = dw, .dout = dout, .x = x, .Cg = g->C / g->groups,
                    .M = g->OC / g->groups };
    w.K = w.Cg * g->KH * g->KW;
    w.size = g->OC * w.K;
    w.direct = g->KH == 1 && g->KW == 1 && g->stride[0] == 1 && g->stride[1] == 1 &&
               g->pad[0] == 0 && g->pad[1] == 0 && g->OH == g->H && g->OW == g->W;
    FN(wgrad_cut)(&w);
    double flops = 2.0 * (double)g->N * (double)g->OC * (double)w.K * (double)(g->OH * g->OW);
    w.nslots = w.ncb > 1 ? w.units : tg_conv_wgrad_slots(w.units, w.size, sizeof(T), flops);
    if (w.ncb == 1 && w.nslots > 1 &&
        !(w.parts = tg_conv_scratch(2, (size_t)((w.nslots - 1) * w.size) * sizeof(T))))
        return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for the weight-gradient sums");
    if (w.ncb == 1)
        memset(dw, 0, (size_t)w.size * sizeof(T));
    tg_conv_parallel(flops, w.nslots, FN(wgrad_fn), &w);
    if (atomic_load(&w.oom))
        return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for a thread's im2col rows");
    if (w.nslots > 1 && w.ncb == 1) {
        double moved = (double)w.size * (double)(w.nslots - 1);
        if (tg_pool_num_threads() > 1 && moved * TG_CONV_MOVE_FLOPS > 4 * TG_CONV_GRAIN_FLOPS)
            tg_pool_parallel_for(w.size, 4096, FN(wgrad_sum_fn), &w);
        else
            FN(wgrad_sum_fn)(&w, 0, w.size);
    }
    return TG_OK;
}

/* ---------------------------------------------------------------- depthwise */

/* groups == C, OC = mult * C: every output plane is one channel's plane filtered with
 * its own KH x KW kernel. Direct loops along the output rows (unit stride vectorises);
 * units are whole planes, so no two write one element. */
typedef struct {
    const tg_conv2d_geom *g;
    T *out;
    const T *a, *b, *bias; /* forward: x, w; data: dout, w; weight: dout, x */
    int64_t mult;
} FN(dw);

/* The output columns [lo, hi) whose input column ow*sw + iwo is inside [0, W). */
static void FN(dw_cols)(const tg_conv2d_geom *g, int64_t iwo, int64_t *lo, int64_t *hi)
{
    int64_t sw = g->stride[1];
    int64_t l = iwo >= 0 ? 0 : (-iwo + sw - 1) / sw;
    int64_t h = iwo < g->W ? (g->W - iwo + sw - 1) / sw : 0;
    h = h > g->OW ? g->OW : h;
    *lo = l > h ? h : l, *hi = h;
}

static void FN(dw_fwd_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(dw) *d = ctx;
    const tg_conv2d_geom *g = d->g;
    int64_t sw = g->stride[1], P = g->OH * g->OW;
    for (int64_t u = begin; u < end; u++) { /* u = n * OC + oc */
        int64_t oc = u % g->OC, n = u / g->OC;
        const T *xp = d->a + (n * g->C + oc / d->mult) * g->H * g->W;
        const T *wk = d->b + oc * g->KH * g->KW;
        T *op = d->out + u * P, b0 = d->bias ? d->bias[oc] : (T)0;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            T *o = op + oh * g->OW;
            for (int64_t ow = 0; ow < g->OW; ow++)
                o[ow] = b0;
            for (int64_t kh = 0; kh < g->KH; kh++) {
                int64_t ih = oh * g->stride[0] - g->pad[0] + kh * g->dilation[0];
                if ((uint64_t)ih >= (uint64_t)g->H)
                    continue;
                for (int64_t kw = 0; kw < g->KW; kw++) {
                    int64_t iwo = kw * g->dilation[1] - g->pad[1], lo, hi;
                    FN(dw_cols)(g, iwo, &lo, &hi);
                    const T *xr = xp + ih * g->W + iwo;
                    T wv = wk[kh * g->KW + kw];
                    if (sw == 1)
                        for (int64_t ow = lo; ow < hi; ow++)
                            o[ow] += wv * xr[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            o[ow] += wv * xr[ow * sw];
                }
            }
        }
    }
}

static void FN(dw_data_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(dw) *d = ctx;
    const tg_conv2d_geom *g = d->g;
    int64_t sw = g->stride[1], P = g->OH * g->OW;
    for (int64_t u = begin; u < end; u++) { /* u = n * C + c */
        int64_t c = u % g->C, n = u / g->C;
        T *xp = d->out + u * g->H * g->W;
        memset(xp, 0, (size_t)(g->H * g->W) * sizeof(T));
        for (int64_t oc = c * d->mult; oc < (c + 1) * d->mult; oc++) {
            const T *op = d->a + (n * g->OC + oc) * P, *wk = d->b + oc * g->KH * g->KW;
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t kh = 0; kh < g->KH; kh++) {
                    int64_t ih = oh * g->stride[0] - g->pad[0] + kh * g->dilation[0];
                    if ((uint64_t)ih >= (uint64_t)g->H)
                        continue;
                    for (int64_t kw = 0; kw < g->KW; kw++) {
                        int64_t iwo = kw * g->dilation[1] - g->pad[1], lo, hi;
                        FN(dw_cols)(g, iwo, &lo, &hi);
                        T *xr = xp + ih * g->W + iwo, wv = wk[kh * g->KW + kw];
                        const T *o = op + oh * g->OW;
                        if (sw == 1)
                            for (int64_t ow = lo; ow < hi; ow++)
                                xr[ow] += wv * o[ow];
                        else
                            for (int64_t ow = lo; ow < hi; ow++)
                                xr[ow * sw] += wv * o[ow];
                    }
                }
        }
    }
}

static void FN(dw_weight_fn)(void *ctx, int64_t begin, int64_t end)
{
    const FN(dw) *d = ctx;
    const tg_conv2d_geom *g = d->g;
    int64_t sw = g->stride[1], P = g->OH * g->OW;
    for (int64_t oc = begin; oc < end; oc++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t iwo = kw * g->dilation[1] - g->pad[1], lo, hi;
                FN(dw_cols)(g, iwo, &lo, &hi);
                T s[8] = { 0 };
                for (int64_t n = 0; n < g->N; n++) {
                    const T *op = d->a + (n * g->OC + oc) * P;
                    const T *xp = d->b + (n * g->C + oc / d->mult) * g->H * g->W;
                    for (int64_t oh = 0; oh < g->OH; oh++) {
                        int64_t ih = oh * g->stride[0] - g->pad[0] + kh * g->dilation[0];
                        if ((uint64_t)ih >= (uint64_t)g->H)
                            continue;
                        const T *o = op + oh * g->OW, *xr = xp + ih * g->W + iwo;
                        int64_t ow = lo;
                        if (sw == 1)
                            for (; ow + 8 <= hi; ow += 8)
                                for (int j = 0; j < 8; j++)
                                    s[j] += o[ow + j] * xr[ow + j];
                        for (; ow < hi; ow++)
                            s[0] += o[ow] * xr[ow * sw];
                    }
                }
                d->out[(oc * g->KH + kh) * g->KW + kw] =
                    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            }
}

static void FN(conv_depthwise)(int which, T *out, const T *a, const T *b, const T *bias,
                               const tg_conv2d_geom *g)
{
    FN(dw) d = { g, out, a, b, bias, g->OC / g->C };
    double plane = 2.0 * (double)(g->OH * g->OW) * (double)(g->KH * g->KW);
    int64_t n = which == 2 ? g->OC : g->N * (which == 0 ? g->OC : g->C);
    double per = which == 2 ? plane * (double)g->N : which == 1 ? plane * (double)d.mult : plane;
    int64_t grain = (int64_t)(TG_CONV_GRAIN_FLOPS / (per > 1 ? per : 1));
    tg_pool_parallel_for(n, grain < 1 ? 1 : grain,
                         which == 0 ? FN(dw_fwd_fn) : which == 1 ? FN(dw_data_fn) : FN(dw_weight_fn),
                         &d);
}
