/* The AVX-512 direct conv2d tile for f32 at stride 1: 48 output positions (3 vectors of
 * the flattened (n, oh, ow) sequence) x 8 output channels in registers, every input
 * vector loaded straight from x with a lane mask (padding and row ends), so no im2col
 * panel is written and read back. For the few output channels of small conv nets
 * (16-64), where packing im2col cost as much as the GEMM itself. Built with -mavx512f. */
#include <immintrin.h>

#include "lib/cpu/conv/conv_impl.h"

#define VL 16
#define NV 3  /* vectors a tile */
#define MR 8  /* output channels a register block */

typedef struct {
    int64_t xoff;   /* x offset of lane 0 at kh = kw = 0 (may lie outside the image) */
    int64_t ooff;   /* out offset of lane 0 of output channel 0 */
    int v;          /* the vector it fills */
    __mmask16 store; /* its lanes */
} tg_direct_run;

/* Cuts positions [q0, q0 + nq) into runs of one output row inside one vector; fills the
 * load masks mask[r * KK + kh * KW + kw] and whether any run reads row kh (rowany).
 * Returns the number of runs. */
static int tg_direct_runs(const tg_conv_direct_geom *g, int64_t q0, int nq, tg_direct_run *runs,
                          __mmask16 *mask, int *rowany)
{
    int nr = 0;
    const int64_t KK = g->KH * g->KW;
    for (int kh = 0; kh < g->KH; kh++)
        rowany[kh] = 0;
    for (int j = 0; j < nq;) {
        int64_t q = q0 + j, n = q / g->P, p = q % g->P, oh = p / g->OW, ow = p % g->OW;
        int lane = j % VL, len = (int)(g->OW - ow);
        if (len > VL - lane)
            len = VL - lane;
        if (len > nq - j)
            len = nq - j;
        tg_direct_run *r = &runs[nr];
        r->xoff = n * g->img + (oh - g->ph) * g->W + (ow - g->pw) - lane;
        r->ooff = n * g->out_img + p - lane;
        r->v = j / VL;
        r->store = (__mmask16)(((1u << len) - 1) << lane);
        for (int kh = 0; kh < g->KH; kh++) {
            int64_t ih = oh - g->ph + kh * g->dh;
            for (int kw = 0; kw < g->KW; kw++) {
                unsigned m = 0;
                if (ih >= 0 && ih < g->H)
                    for (int t = 0; t < len; t++) {
                        int64_t iw = ow + t - g->pw + kw * g->dw;
                        if (iw >= 0 && iw < g->W)
                            m |= 1u << (lane + t);
                    }
                mask[nr * KK + kh * g->KW + kw] = (__mmask16)m;
                rowany[kh] |= m != 0;
            }
        }
        nr++;
        j += len;
    }
    return nr;
}

/* first[v] = the first run of vector v (first[nv]: nr); returns the most runs any
 * vector has: 4 at most, as vectors start at multiples of 16 positions and rows at
 * multiples of OW >= 4. */
static int tg_direct_first(const tg_direct_run *runs, int nr, int nv, int *first)
{
    int r = 0, most = 1;
    for (int v = 0; v <= nv; v++) {
        while (r < nr && runs[r].v < v)
            r++;
        first[v] = r;
        if (v > 0 && first[v] - first[v - 1] > most)
            most = first[v] - first[v - 1];
    }
    return most;
}

/* A tile's runs regrouped by vector, R slots each (a vector with fewer runs has slots
 * of mask 0 at offset 0, which load nothing): off[v][r], mask[(v * R + r) * KK + kk]. */
#define TG_DIRECT_MAXR 4
typedef struct {
    int64_t off[NV][TG_DIRECT_MAXR];
    __mmask16 mask[NV * TG_DIRECT_MAXR * TG_CONV_DIRECT_MAX_KK];
} tg_direct_slots;

/* All M rows of the tile with R loads a vector (R a constant in each inlined copy, so
 * the accumulators, pointers and masks stay in registers). The channel loop is
 * innermost: for one (kh, kw) the masks and the run pointers do not change. */
static inline __attribute__((always_inline)) void
tg_direct_tile(const tg_conv_direct_geom *g, const tg_direct_slots *sl, const int *rowany,
               const tg_direct_run *runs, const int *first, const int R)
{
    const int64_t KK = g->KH * g->KW, HW = g->H * g->W;
    for (int64_t m0 = 0; m0 < g->M; m0 += MR) {
        const float *a = g->ap + m0 * g->K; /* MR-row panel: a[k * MR + i] */
        __m512 acc[NV][MR];
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512 b0 = _mm512_set1_ps(g->bias && m0 + i < g->M ? g->bias[m0 + i] : 0.0f);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[v][i] = b0;
        }
        for (int kh = 0; kh < g->KH; kh++) {
            if (!rowany[kh])
                continue;
            for (int kw = 0; kw < g->KW; kw++) {
                int kk = kh * (int)g->KW + kw;
                const float *p[NV][TG_DIRECT_MAXR];
                __mmask16 m[NV][TG_DIRECT_MAXR];
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++)
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) {
                        p[v][r] = g->x + sl->off[v][r] + kh * g->dh * g->W + kw * g->dw;
                        m[v][r] = sl->mask[(v * R + r) * KK + kk];
                    }
                const float *ak = a + kk * MR;
                for (int64_t c = 0; c < g->C; c++, ak += KK * MR) {
                    __m512 b[NV];
#pragma GCC unroll 3
                    for (int v = 0; v < NV; v++) {
                        b[v] = _mm512_maskz_loadu_ps(m[v][0], p[v][0] + c * HW);
#pragma GCC unroll 4
                        for (int r = 1; r < R; r++)
                            b[v] = _mm512_mask_loadu_ps(b[v], m[v][r], p[v][r] + c * HW);
                    }
#pragma GCC unroll 8
                    for (int i = 0; i < MR; i++) {
                        __m512 w = _mm512_set1_ps(ak[i]);
#pragma GCC unroll 3
                        for (int v = 0; v < NV; v++)
                            acc[v][i] = _mm512_fmadd_ps(w, b[v], acc[v][i]);
                    }
                }
            }
        }
        int rows = g->M - m0 < MR ? (int)(g->M - m0) : MR;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            for (int q = first[v]; q < first[v + 1]; q++) {
                float *o = g->out + runs[q].ooff + m0 * g->P;
#pragma GCC unroll 8
                for (int i = 0; i < MR; i++)
                    if (i < rows)
                        _mm512_mask_storeu_ps(o + i * g->P, runs[q].store, acc[v][i]);
            }
    }
}

void tg_conv_direct_avx512_f32(const tg_conv_direct_geom *g, int64_t q0, int nq)
{
    tg_direct_run runs[NV * VL];
    __mmask16 mask[NV * VL * TG_CONV_DIRECT_MAX_KK];
    int rowany[TG_CONV_DIRECT_MAX_KK];
    tg_direct_slots sl;
    const int64_t KK = g->KH * g->KW;
    int nr = tg_direct_runs(g, q0, nq, runs, mask, rowany);
    int first[NV + 1], R = tg_direct_first(runs, nr, NV, first);
    for (int v = 0; v < NV; v++)
        for (int s = 0; s < R; s++) {
            int q = first[v] + s;
            sl.off[v][s] = q < first[v + 1] ? runs[q].xoff : 0;
            for (int64_t kk = 0; kk < KK; kk++)
                sl.mask[(v * R + s) * KK + kk] = q < first[v + 1] ? mask[q * KK + kk] : 0;
        }
    if (R == 1)
        tg_direct_tile(g, &sl, rowany, runs, first, 1);
    else if (R == 2)
        tg_direct_tile(g, &sl, rowany, runs, first, 2);
    else if (R == 3)
        tg_direct_tile(g, &sl, rowany, runs, first, 3);
    else
        tg_direct_tile(g, &sl, rowany, runs, first, 4);
}

/* ---------------------------------------------------------------- weight gradient */

#define WK 3 /* kernel columns (kw) a register block */

/* dw[m][(c, kh, kw)] += sum over positions q of dout[m][q] * im2col[(c, kh, kw)][q], for
 * 8 rows m x WK columns kw at once, the 16 lanes of each product summed at the end. */
static inline __attribute__((always_inline)) void
tg_wgrad_tile(const tg_conv_direct_geom *g, const float *dout, float *dw, const int64_t *xoff,
              const int64_t *ooff, const __mmask16 *xmask, const __mmask16 *omask, int nv,
              const int *rowany, const int R)
{
    const int64_t KK = g->KH * g->KW, HW = g->H * g->W;
    for (int64_t m0 = 0; m0 < g->M; m0 += MR) {
        __mmask16 rowm[MR];
        for (int i = 0; i < MR; i++)
            rowm[i] = m0 + i < g->M ? 0xffff : 0;
        for (int64_t c = 0; c < g->C; c++)
            for (int kh = 0; kh < g->KH; kh++) {
                if (!rowany[kh])
                    continue;
                for (int kw0 = 0; kw0 < g->KW; kw0 += WK) {
                    __m512 acc[MR][WK];
#pragma GCC unroll 8
                    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
                        for (int j = 0; j < WK; j++)
                            acc[i][j] = _mm512_setzero_ps();
                    int64_t koff = c * HW + kh * g->dh * g->W + kw0 * g->dw;
                    int kk0 = kh * (int)g->KW + kw0;
                    for (int v = 0; v < nv; v++) {
                        __m512 b[WK], d;
#pragma GCC unroll 3
                        for (int j = 0; j < WK; j++) {
                            /* columns past KW load nothing: their masks are those of kw0 + j < KW only */
                            int ok = kw0 + j < g->KW;
                            b[j] = _mm512_setzero_ps();
#pragma GCC unroll 4
                            for (int r = 0; r < R; r++)
                                b[j] = _mm512_mask_loadu_ps(b[j], ok ? xmask[(v * R + r) * KK + kk0 + j] : 0,
                                                            g->x + xoff[v * R + r] + koff + j * g->dw);
                        }
#pragma GCC unroll 8
                        for (int i = 0; i < MR; i++) {
                            d = _mm512_setzero_ps();
#pragma GCC unroll 4
                            for (int r = 0; r < R; r++)
                                d = _mm512_mask_loadu_ps(d, omask[v * R + r] & rowm[i],
                                                         dout + ooff[v * R + r] + (m0 + i) * g->P);
#pragma GCC unroll 3
                            for (int j = 0; j < WK; j++)
                                acc[i][j] = _mm512_fmadd_ps(d, b[j], acc[i][j]);
                        }
                    }
#pragma GCC unroll 8
                    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
                        for (int j = 0; j < WK; j++)
                            if (m0 + i < g->M && kw0 + j < g->KW)
                                dw[(m0 + i) * g->K + c * KK + kk0 + j] += _mm512_reduce_add_ps(acc[i][j]);
                }
            }
    }
}

void tg_conv_wgrad_direct_avx512_f32(const tg_conv_direct_geom *g, const float *dout, float *dw, int64_t q0,
                                     int nq)
{
    enum { NVW = TG_CONV_WGRAD_TILE / VL, MAXRUNS = NVW * 5 };
    tg_direct_run runs[MAXRUNS];
    __mmask16 mask[MAXRUNS * TG_CONV_WGRAD_MAX_KK];
    __mmask16 xmask[NVW * TG_DIRECT_MAXR * TG_CONV_WGRAD_MAX_KK], omask[NVW * TG_DIRECT_MAXR];
    int64_t xoff[NVW * TG_DIRECT_MAXR], ooff[NVW * TG_DIRECT_MAXR];
    int rowany[TG_CONV_WGRAD_MAX_KK];
    const int64_t KK = g->KH * g->KW;
    int nr = tg_direct_runs(g, q0, nq, runs, mask, rowany), nv = (nq + VL - 1) / VL;
    int first[NVW + 1], R = tg_direct_first(runs, nr, nv, first);
    for (int v = 0; v < nv; v++)
        for (int s = 0; s < R; s++) {
            int q = first[v] + s, in = q < first[v + 1];
            xoff[v * R + s] = in ? runs[q].xoff : 0;
            ooff[v * R + s] = in ? runs[q].ooff : 0;
            omask[v * R + s] = in ? runs[q].store : 0;
            for (int64_t kk = 0; kk < KK; kk++)
                xmask[(v * R + s) * KK + kk] = in ? mask[q * KK + kk] : 0;
        }
    if (R == 1)
        tg_wgrad_tile(g, dout, dw, xoff, ooff, xmask, omask, nv, rowany, 1);
    else if (R == 2)
        tg_wgrad_tile(g, dout, dw, xoff, ooff, xmask, omask, nv, rowany, 2);
    else if (R == 3)
        tg_wgrad_tile(g, dout, dw, xoff, ooff, xmask, omask, nv, rowany, 3);
    else
        tg_wgrad_tile(g, dout, dw, xoff, ooff, xmask, omask, nv, rowany, 4);
}
