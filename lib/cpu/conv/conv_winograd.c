/* conv2d by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms
 * for Convolutional Neural Networks", 2016), f32, 3x3 kernels at stride 1 of one group.
 *
 * Each 2x2 tile of output comes from a 4x4 patch of input: with the patch d and the
 * kernel g transformed, V = B^T d B and U = G g G^T (4x4 each), the tile is
 * A^T (sum over channels of U . V) A, the product elementwise. Sixteen products a tile
 * and channel pair instead of the direct method's 36: over all channels and tiles, the
 * sum is 16 GEMMs, one per position xi of the 4x4, of U[xi] (OC x C) by V[xi] (C x
 * tiles), run by the GEMM's micro-kernels on operands the transforms write straight in
 * the packed layouts (U in mr-row panels, V in nr-tile panels). 2.25x fewer
 * multiply-adds than the direct convolution, for a few adds in each transform.
 *
 * Work: the filter transform once a call (units: panels of output channels); then, a
 * chunk of tile panels at a time (V for the chunk a few MB, in L3), the input transform
 * (units: a tile panel and 32 channels) and the GEMMs with the output transform (units:
 * a tile panel and a block of output-channel panels; each writes its own outputs).
 * Every unit's sums run in a fixed order, so results do not depend on the threads.
 *
 * Accuracy: the transforms' coefficients are 0, +-1 and +-1/2, exact in binary; the
 * rounding of the sums of V and of the output transform is the error beyond the direct
 * method's (tests/test_conv_kernels.c holds it to the same bound as the other paths).
 * As with every Winograd convolution, an infinite input can give NaN where the direct
 * sum gives an infinity (the transforms subtract inputs from one another), and inputs
 * near FLT_MAX can overflow in them. */
#include <stdatomic.h>
#include <string.h>

#include "lib/cpu/clones.h"
#include "lib/cpu/conv/conv_impl.h"
#include "lib/cpu/conv/conv_winograd.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

#define WG_XI 16        /* the 4x4 positions of a transformed tile */
#define WG_CB 32        /* channels an input-transform unit */
/* Channels the transforms write to a local block before copying each position's rows
 * out: the sixteen rows of the packed U and V lie a multiple of 4 KB apart, and sixteen
 * stores to them one channel at a time aliased in L1 (the filter transform took a
 * third of a batch-1 512 -> 512 layer). */
#define WG_BLK 16
#define WG_MAX_NR TG_GEMM_MAX_NR /* tiles a panel at most */
/* Bytes of V a chunk of tile panels holds at most: L3-resident, so the GEMMs read it
 * back without going to memory. */
#define WG_V_BYTES (4.0 * 1024 * 1024)

typedef struct {
    const tg_conv2d_geom *g;
    const tg_gemm_kernels *kr;
    const float *x, *w, *bias;
    int flip; /* w is the forward weight of the conv whose backward data g is */
    float *out;
    const float *ecoef, *eres; /* conv2d's epilogue (tg_conv_epi), or NULL */
    int64_t eoc;
    int erelu;
    int64_t C, Cp, OC, mr, nr, kc, ocp; /* Cp: C rounded up to 16, the packed stride */
    int64_t TH, TW, T, tpan;            /* tiles down and across an image, in all, panels of nr */
    float *u;                           /* [xi][oc panel][Cp][mr] */
    float *v;                           /* [panel of the chunk][xi][Cp][nr] */
    int64_t p0, np, ncb, nocb, ocb;     /* the chunk's panels; channel blocks; oc blocks of ocb panels */
    atomic_llong next;
    atomic_int oom;
} wg_job;

int tg_conv_winograd_ok(const tg_conv2d_geom *g)
{
    return g->KH == 3 && g->KW == 3 && g->stride[0] == 1 && g->stride[1] == 1 && g->dilation[0] == 1 &&
           g->dilation[1] == 1 && g->groups == 1 && g->N > 0 && g->C > 0 && g->OC > 0 && g->OH > 0 && g->OW > 0;
}

/* ---------------------------------------------------------------- transforms */

/* U = G g G^T for the kernels of one panel's mr output channels side by side (tap q of
 * row i's kernel at k[q * TG_GEMM_MAX_MR + i]), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2;
 * 0 0 1], into the packed rows dst + xi * stride (mr values each). */
TG_CPU_CLONES static void wg_filter_rows(int64_t mr, const float *restrict k, float *restrict dst, int64_t stride)
{
    /* row r of G g, for r = 0..3: g's row 0; (rows 0 + 1 + 2) / 2; (0 - 1 + 2) / 2; row 2
     * (computed for each of its three columns), then (G g) G^T the same way along the row */
#define K(q) k[(q) * TG_GEMM_MAX_MR + i]
#define ROW(r, t0, t1, t2)                                                                         \
    for (int64_t i = 0; i < mr; i++) {                                                             \
        float a = t0, b = t1, c = t2;                                                              \
        dst[(r * 4 + 0) * stride + i] = a;                                                         \
        dst[(r * 4 + 1) * stride + i] = 0.5f * (a + b + c);                                        \
        dst[(r * 4 + 2) * stride + i] = 0.5f * (a - b + c);                                        \
        dst[(r * 4 + 3) * stride + i] = c;                                                         \
    }
    ROW(0, K(0), K(1), K(2))
    ROW(1, 0.5f * (K(0) + K(3) + K(6)), 0.5f * (K(1) + K(4) + K(7)), 0.5f * (K(2) + K(5) + K(8)))
    ROW(2, 0.5f * (K(0) - K(3) + K(6)), 0.5f * (K(1) - K(4) + K(7)), 0.5f * (K(2) - K(5) + K(8)))
    ROW(3, K(6), K(7), K(8))
#undef ROW
#undef K
}

/* Units: output-channel panels; rows past OC are zero. */
static void wg_filter_fn(void *ctx, int64_t begin, int64_t end)
{
    wg_job *j = ctx;
    (void)begin, (void)end;
    const int64_t mr = j->mr, C = j->C, OC = j->OC;
    for (;;) {
        int64_t op = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (op >= j->ocp)
            break;
        int64_t rows = OC - op * mr < mr ? OC - op * mr : mr;
        float k[9 * TG_GEMM_MAX_MR], blk[WG_XI * WG_BLK * TG_GEMM_MAX_MR];
        memset(k, 0, sizeof k); /* rows past OC stay zero */
        for (int64_t c = 0; c < C; c++) {
            int64_t cb = c % WG_BLK;
            for (int64_t i = 0; i < rows; i++) {
                int64_t oc = op * mr + i;
                if (j->flip) { /* w is (C, OC, 3, 3): transposed, the taps reversed */
                    const float *src = j->w + (c * OC + oc) * 9;
                    for (int q = 0; q < 9; q++)
                        k[q * TG_GEMM_MAX_MR + i] = src[8 - q];
                } else {
                    const float *src = j->w + (oc * C + c) * 9;
                    for (int q = 0; q < 9; q++)
                        k[q * TG_GEMM_MAX_MR + i] = src[q];
                }
            }
            wg_filter_rows(mr, k, blk + cb * mr, WG_BLK * mr);
            if (cb == WG_BLK - 1 || c == C - 1)
                for (int xi = 0; xi < WG_XI; xi++)
                    memcpy(j->u + ((xi * j->ocp + op) * j->Cp + c - cb) * mr, blk + xi * WG_BLK * mr,
                           (size_t)((cb + 1) * mr) * sizeof(float));
        }
    }
}

/* Where tile t (0 .. T) of the batch reads: its image, the patch's top-left input row
 * and column (the padding makes them negative at the edges); whole: the 4x4 patch lies
 * inside the image. */
typedef struct {
    int64_t n, ih, iw;
    int whole;
} wg_tile;

static void wg_tiles(const wg_job *j, int64_t t0, int64_t nt, wg_tile *tl)
{
    const tg_conv2d_geom *g = j->g;
    for (int64_t k = 0; k < nt; k++) {
        int64_t t = t0 + k, per = j->TH * j->TW;
        tl[k].n = t / per;
        tl[k].ih = t % per / j->TW * 2 - g->pad[0];
        tl[k].iw = t % j->TW * 2 - g->pad[1];
        tl[k].whole = tl[k].ih >= 0 && tl[k].ih + 4 <= g->H && tl[k].iw >= 0 && tl[k].iw + 4 <= g->W;
    }
}

/* V = B^T d B of nr patches side by side (d[xi * WG_MAX_NR + j]: position xi of tile
 * j's patch), into the packed rows dst + xi * stride; B^T = [1 0 -1 0; 0 1 1 0;
 * 0 -1 1 0; 0 1 0 -1]. A loop over the tiles of whole-vector operations. */
TG_CPU_CLONES static void wg_input_rows(int64_t nr, const float *restrict d, float *restrict dst, int64_t stride)
{
    /* row r of B^T d is rows[r][0] + sign[r] * rows[r][1] of the patch */
    static const int rows[4][2] = { { 0, 2 }, { 1, 2 }, { 2, 1 }, { 1, 3 } };
    static const float sign[4] = { -1.0f, 1.0f, -1.0f, -1.0f };
    for (int r = 0; r < 4; r++) {
        const float *restrict p = d + rows[r][0] * 4 * WG_MAX_NR, *restrict n = d + rows[r][1] * 4 * WG_MAX_NR;
        const float sg = sign[r];
        float *restrict o0 = dst + r * 4 * stride, *restrict o1 = o0 + stride, *restrict o2 = o1 + stride,
                        *restrict o3 = o2 + stride;
        for (int64_t q = 0; q < nr; q++) {
            float a0 = p[q] + sg * n[q], a1 = p[WG_MAX_NR + q] + sg * n[WG_MAX_NR + q];
            float a2 = p[2 * WG_MAX_NR + q] + sg * n[2 * WG_MAX_NR + q];
            float a3 = p[3 * WG_MAX_NR + q] + sg * n[3 * WG_MAX_NR + q];
            o0[q] = a0 - a2;
            o1[q] = a1 + a2;
            o2[q] = a2 - a1;
            o3[q] = a1 - a3;
        }
    }
}

/* Units: (panel of the chunk, block of WG_CB channels). */
static void wg_input_fn(void *ctx, int64_t begin, int64_t end)
{
    wg_job *j = ctx;
    const tg_conv2d_geom *g = j->g;
    (void)begin, (void)end;
    const int64_t H = g->H, W = g->W, nr = j->nr, HW = H * W;
    float *d = NULL, *blk = NULL; /* the patches, and the block of transformed rows */
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (u >= j->np * j->ncb)
            break;
        if (!d && !(d = tg_conv_scratch(0, (size_t)(WG_XI * (WG_MAX_NR + WG_BLK * nr)) * sizeof(float)))) {
            atomic_store(&j->oom, 1);
            atomic_store(&j->next, j->np * j->ncb);
            break;
        }
        blk = d + WG_XI * WG_MAX_NR;
        int64_t pl = u / j->ncb, c0 = u % j->ncb * WG_CB, c1 = c0 + WG_CB < j->C ? c0 + WG_CB : j->C;
        int64_t t0 = (j->p0 + pl) * nr, nt = j->T - t0 < nr ? j->T - t0 : nr;
        wg_tile tl[WG_MAX_NR];
        wg_tiles(j, t0, nt, tl);
        for (int xi = 0; xi < WG_XI; xi++)
            for (int64_t k = nt; k < nr; k++)
                d[xi * WG_MAX_NR + k] = 0.0f; /* tiles past the batch's last */
        float *vp = j->v + pl * WG_XI * j->Cp * nr;
        for (int64_t c = c0; c < c1; c++) {
            int64_t cb = (c - c0) % WG_BLK;
            for (int64_t k = 0; k < nt; k++) {
                const float *xc = j->x + (tl[k].n * j->C + c) * HW;
                int64_t ih = tl[k].ih, iw = tl[k].iw;
                if (tl[k].whole) {
                    const float *p = xc + ih * W + iw;
                    for (int r = 0; r < 4; r++)
                        for (int s = 0; s < 4; s++)
                            d[(r * 4 + s) * WG_MAX_NR + k] = p[r * W + s];
                } else {
                    for (int r = 0; r < 4; r++)
                        for (int s = 0; s < 4; s++) {
                            int64_t h = ih + r, w = iw + s;
                            d[(r * 4 + s) * WG_MAX_NR + k] = h >= 0 && h < H && w >= 0 && w < W ? xc[h * W + w] : 0.0f;
                        }
                }
            }
            wg_input_rows(nr, d, blk + cb * nr, WG_BLK * nr);
            if (cb == WG_BLK - 1 || c == c1 - 1)
                for (int xi = 0; xi < WG_XI; xi++)
                    memcpy(vp + (xi * j->Cp + c - cb) * nr, blk + xi * WG_BLK * nr, (size_t)((cb + 1) * nr) * sizeof(float));
        }
    }
}

/* Y = A^T m A of one output channel's nr tiles (m[xi]: nr values, mr * nr apart), A^T =
 * [1 1 1 0; 0 1 -1 -1]: y[a * 2 + b][j] is the tile's output (a, b). */
TG_CPU_CLONES static void wg_output_rows(int64_t nr, const float *restrict m, int64_t stride, float bias,
                                         float (*restrict y)[WG_MAX_NR])
{
    for (int64_t q = 0; q < nr; q++) {
        float t[2][4];
        for (int s = 0; s < 4; s++) {
            float m0 = m[s * stride + q], m1 = m[(4 + s) * stride + q], m2 = m[(8 + s) * stride + q],
                  m3 = m[(12 + s) * stride + q];
            t[0][s] = m0 + m1 + m2;
            t[1][s] = m1 - m2 - m3;
        }
        for (int a = 0; a < 2; a++) {
            y[a * 2 + 0][q] = t[a][0] + t[a][1] + t[a][2] + bias;
            y[a * 2 + 1][q] = t[a][1] - t[a][2] - t[a][3] + bias;
        }
    }
}

/* The epilogue's batch norm on one channel's tiles, as conv.c's pass after a conv
 * computes it (the same operations in the same order: the same bits). */
TG_CPU_CLONES static void wg_epi_bn(int64_t nr, float m, float l, float sc, float t, float (*y)[WG_MAX_NR])
{
    for (int a = 0; a < 4; a++)
        for (int64_t q = 0; q < nr; q++)
            y[a][q] = ((y[a][q] - m) - l) * sc + t;
}

/* out[at] = v, then the epilogue's residual and relu where there are. */
static inline void wg_store(const wg_job *j, int64_t at, float v)
{
    if (j->eres)
        v += j->eres[at];
    if (j->erelu)
        v = v < 0 ? 0.0f : v;
    j->out[at] = v;
}

/* Units: (panel of the chunk, block of ocb output-channel panels). */
static void wg_gemm_fn(void *ctx, int64_t begin, int64_t end)
{
    wg_job *j = ctx;
    const tg_conv2d_geom *g = j->g;
    (void)begin, (void)end;
    const int64_t mr = j->mr, nr = j->nr, OH = g->OH, OW = g->OW, P = OH * OW;
    float *mt = NULL;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (u >= j->np * j->nocb)
            break;
        if (!mt && !(mt = tg_conv_scratch(0, (size_t)(WG_XI * mr * nr) * sizeof(float)))) {
            atomic_store(&j->oom, 1);
            atomic_store(&j->next, j->np * j->nocb);
            break;
        }
        int64_t pl = u / j->nocb, op0 = u % j->nocb * j->ocb;
        int64_t op1 = op0 + j->ocb < j->ocp ? op0 + j->ocb : j->ocp;
        int64_t t0 = (j->p0 + pl) * nr, nt = j->T - t0 < nr ? j->T - t0 : nr;
        wg_tile tl[WG_MAX_NR];
        wg_tiles(j, t0, nt, tl);
        const float *vp = j->v + pl * WG_XI * j->Cp * nr;
        for (int64_t op = op0; op < op1; op++) {
            for (int xi = 0; xi < WG_XI; xi++)
                for (int64_t k0 = 0; k0 < j->C; k0 += j->kc) {
                    int64_t kcb = j->C - k0 < j->kc ? j->C - k0 : j->kc;
                    j->kr->f32.ukr(kcb, j->u + ((xi * j->ocp + op) * j->Cp + k0) * mr,
                                   vp + (xi * j->Cp + k0) * nr, mt + xi * mr * nr, nr, k0 > 0);
                }
            for (int64_t i = 0; i < mr && op * mr + i < j->OC; i++) {
                int64_t oc = op * mr + i;
                float y[4][WG_MAX_NR];
                wg_output_rows(nr, mt + i * nr, mr * nr, j->bias ? j->bias[oc] : 0.0f, y);
                if (j->ecoef)
                    wg_epi_bn(nr, j->ecoef[oc], j->ecoef[j->eoc + oc], j->ecoef[2 * j->eoc + oc],
                              j->ecoef[3 * j->eoc + oc], y);
                for (int64_t k = 0; k < nt; k++) {
                    int64_t oh = tl[k].ih + g->pad[0], ow = tl[k].iw + g->pad[1];
                    int64_t at = (tl[k].n * j->OC + oc) * P + oh * OW + ow;
                    int down = oh + 1 < OH, right = ow + 1 < OW;
                    wg_store(j, at, y[0][k]);
                    if (right)
                        wg_store(j, at + 1, y[1][k]);
                    if (down)
                        wg_store(j, at + OW, y[2][k]);
                    if (down && right)
                        wg_store(j, at + OW + 1, y[3][k]);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- the driver */

tg_status tg_conv_winograd_f32(float *out, const float *x, const float *w, int flip, const float *bias,
                               const tg_conv2d_geom *g, tg_conv_epi *epi)
{
    const tg_gemm_kernels *kr = tg_gemm_kernels_current();
    wg_job j = { .g = g, .kr = kr, .x = x, .w = w, .bias = bias, .flip = flip, .out = out, .C = g->C,
                 .OC = g->OC, .mr = kr->f32.mr, .nr = kr->f32.nr, .kc = kr->f32.kc };
    if (epi) {
        j.ecoef = epi->coef, j.eoc = epi->oc, j.eres = epi->res, j.erelu = epi->relu;
        epi->applied = 1;
    }
    j.Cp = (j.C + 15) / 16 * 16;
    j.ocp = (j.OC + j.mr - 1) / j.mr;
    j.TH = (g->OH + 1) / 2, j.TW = (g->OW + 1) / 2, j.T = g->N * j.TH * j.TW;
    j.tpan = (j.T + j.nr - 1) / j.nr;
    double panel_bytes = (double)(WG_XI * j.Cp * j.nr) * sizeof(float);
    int64_t np = (int64_t)(WG_V_BYTES / panel_bytes);
    np = np < 1 ? 1 : np > j.tpan ? j.tpan : np;
    size_t ubytes = (size_t)(WG_XI * j.ocp * j.Cp * j.mr) * sizeof(float);
    size_t vbytes = (size_t)np * (size_t)panel_bytes;
    char *s = tg_conv_scratch(1, ubytes + vbytes);
    if (!s)
        return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for the Winograd transforms (%zu bytes)",
                        ubytes + vbytes);
    j.u = (float *)s, j.v = (float *)(s + ubytes);
    tg_conv_parallel(64.0 * (double)(j.OC * j.C), j.ocp, wg_filter_fn, &j);
    int threads = tg_pool_num_threads();
    j.ncb = (j.C + WG_CB - 1) / WG_CB;
    for (j.p0 = 0; j.p0 < j.tpan; j.p0 += np) {
        j.np = j.tpan - j.p0 < np ? j.tpan - j.p0 : np;
        /* oc blocks: enough units for the threads, panels of W whole */
        j.nocb = (4 * threads + j.np - 1) / j.np;
        j.nocb = j.nocb > j.ocp ? j.ocp : j.nocb;
        j.ocb = (j.ocp + j.nocb - 1) / j.nocb;
        j.nocb = (j.ocp + j.ocb - 1) / j.ocb;
        atomic_store(&j.next, 0);
        tg_conv_parallel(32.0 * (double)(WG_XI * j.C * j.np * j.nr), j.np * j.ncb, wg_input_fn, &j);
        if (atomic_load(&j.oom))
            return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for a thread's Winograd patch buffer");
        atomic_store(&j.next, 0);
        tg_conv_parallel(2.0 * WG_XI * (double)(j.ocp * j.mr) * (double)j.C * (double)(j.np * j.nr), j.np * j.nocb,
                    wg_gemm_fn, &j);
        if (atomic_load(&j.oom))
            return tg_error(TG_ERR_NOMEM, "conv2d: out of memory for a thread's Winograd tile buffer");
    }
    return TG_OK;
}
