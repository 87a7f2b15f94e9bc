/* The AVX-512 f32 conv2d with the output channels in the vector lanes, for the 16-64
 * output channels of small conv nets (the notes' CNN, CIFAR ResNet-20). A unit copies its
 * input rows once into a zero-padded block, so every input value is one broadcast from
 * L1 with no mask and no row-end case, and the weight is k-major (16 channels a load).
 * Short rows (14, 8) then cost nothing: a tile is a run of one output row, not a run of
 * the flattened (n, oh, ow) sequence cut at every row end. Forward (and backward-data at
 * stride 1, a forward conv of dout) and the weight gradient. Built with -mavx512f. */
#include <immintrin.h>
#include <string.h>

#include "lib/cpu/conv/conv_impl.h"

#define VL 16

/* ---------------------------------------------------------------- shared */

/* Transposes the 16 x 16 block r in place (r[i] lane j becomes r[j] lane i). */
static inline __attribute__((always_inline)) void tg_lanes_transpose(__m512 *r)
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int b = 0; b < 16; b += 4) { /* u[b + i]: column 4L + i of rows b..b+3, lane L */
        u[b + 0] = _mm512_shuffle_ps(t[b + 0], t[b + 2], 0x44);
        u[b + 1] = _mm512_shuffle_ps(t[b + 0], t[b + 2], 0xEE);
        u[b + 2] = _mm512_shuffle_ps(t[b + 1], t[b + 3], 0x44);
        u[b + 3] = _mm512_shuffle_ps(t[b + 1], t[b + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(u[i], u[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(u[i], u[4 + i], 0xDD);
        t[8 + i] = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
    }
}

int64_t tg_conv_lanes_rows_in(const tg_conv_lanes_geom *g, int64_t rows)
{
    return (rows - 1) * g->sh + (g->KH - 1) * g->dh + 1;
}

int64_t tg_conv_lanes_wp(const tg_conv_lanes_geom *g)
{
    return (g->OW - 1) * g->sw + (g->KW - 1) * g->dw + 1;
}

/* buf (C x Hb x Wp) = the input rows image n needs for output rows [oh0, oh0 + rows),
 * zero where they fall in the padding: buf[c][r][j] = x[n][c][oh0*sh - ph + r][j - pw].
 * Masked vectors with the masks made once, not memset and memcpy: rows of 18 or 34
 * floats make any per-row cost the whole cost, as much as a small layer's arithmetic. */
static void tg_lanes_pad(const tg_conv_lanes_geom *g, int64_t n, int64_t oh0, int64_t rows, float *buf)
{
    const int64_t Hb = tg_conv_lanes_rows_in(g, rows), Wp = tg_conv_lanes_wp(g);
    /* columns [lo, hi) hold iw in [0, W); padding is negative in backward-data's
     * geometry of a conv padded by more than its kernel reaches */
    const int64_t lo = g->pw < 0 ? 0 : g->pw < Wp ? g->pw : Wp;
    int64_t hi = g->W + g->pw < Wp ? g->W + g->pw : Wp;
    hi = hi < lo ? lo : hi;
    enum { MAXV = 64 };
    __mmask16 ldm[MAXV], stm[MAXV];
    const int64_t nv = (Wp + VL - 1) / VL;
    for (int64_t v = 0; v < nv && v < MAXV; v++) {
        int64_t j0 = v * VL, a = lo > j0 ? lo - j0 : 0, b = hi - j0 < VL ? hi - j0 : VL;
        stm[v] = (__mmask16)(Wp - j0 >= VL ? 0xffff : (1u << (Wp - j0)) - 1);
        ldm[v] = b > a ? (__mmask16)(((1u << (b - a)) - 1) << a) : 0;
    }
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t r = 0; r < Hb; r++) {
            float *d = buf + (c * Hb + r) * Wp;
            int64_t ih = oh0 * g->sh - g->ph + r;
            if (ih < 0 || ih >= g->H) { /* the few rows of the top and bottom padding */
                memset(d, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            const float *s = g->x + n * g->img + (c * g->H + ih) * g->W - g->pw;
            for (int64_t v = 0; v < nv && v < MAXV; v++)
                _mm512_mask_storeu_ps(d + v * VL, stm[v], _mm512_maskz_loadu_ps(ldm[v], s + v * VL));
            for (int64_t j = MAXV * VL; j < Wp; j++) /* rows past 1024 floats: the rest one by one */
                d[j] = j >= lo && j < hi ? s[j] : 0.0f;
        }
}

/* ---------------------------------------------------------------- forward */

/* One tile: output row oh, columns [ow0, ow0 + TW), all MV * 16 channels. xb is the
 * padded block at the tile's first input (row (oh - oh0) * sh, column ow0 * sw). */
typedef struct {
    const tg_conv_lanes_geom *g;
    const float *xb;
    int64_t chp;  /* floats between channels of the padded block (Hb * Wp) */
    int64_t rowp; /* floats between padded rows kh and kh + 1 (dh * Wp) */
    float *o;     /* out at (n, channel 0, oh, ow0) */
    const float *z; /* the epilogue's residual at the same place, or NULL */
} tg_lanes_tile;

/* The epilogue (tg_conv_epi) on 16 values of output channel ch: the batch norm kernel's
 * arithmetic, operation for operation (no FMA), so the bits are the composition's. */
static inline __attribute__((always_inline)) __m512 tg_lanes_epi(const tg_conv_lanes_geom *g, int64_t ch, __m512 v,
                                                                 const float *z, __mmask16 m)
{
    if (g->ecoef) {
        const float *cf = g->ecoef + ch;
        v = _mm512_sub_ps(_mm512_sub_ps(v, _mm512_set1_ps(cf[0])), _mm512_set1_ps(cf[g->eoc]));
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(cf[2 * g->eoc])), _mm512_set1_ps(cf[3 * g->eoc]));
    }
    if (z)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, z));
    return g->erelu ? _mm512_max_ps(_mm512_setzero_ps(), v) : v; /* v when NaN or -0, as relu */
}

static inline __attribute__((always_inline)) void
tg_lanes_fwd_body(const tg_lanes_tile *t, __m512 *acc, const int MV, const int TW, const int SW)
{
    const tg_conv_lanes_geom *g = t->g;
    const int64_t P = g->OH * g->OW;
    for (int v = 0; v < MV; v++) {
        __m512 b = g->bias ? _mm512_loadu_ps(g->bias + v * VL) : _mm512_setzero_ps();
        for (int j = 0; j < TW; j++)
            acc[j * MV + v] = b;
    }
    const float *w = g->wt, *xc = t->xb;
    for (int64_t c = 0; c < g->C; c++, xc += t->chp) {
        const float *xr = xc;
        for (int64_t kh = 0; kh < g->KH; kh++, xr += t->rowp) {
            const float *xk = xr;
            for (int64_t kw = 0; kw < g->KW; kw++, xk += g->dw, w += MV * VL) {
                __m512 wv[4];
                for (int v = 0; v < MV; v++)
                    wv[v] = _mm512_load_ps(w + v * VL);
                for (int j = 0; j < TW; j++) {
                    __m512 xv = _mm512_set1_ps(xk[j * SW]);
                    for (int v = 0; v < MV; v++)
                        acc[j * MV + v] = _mm512_fmadd_ps(xv, wv[v], acc[j * MV + v]);
                }
            }
        }
    }
    /* acc[j * MV + v] holds channels v*16.. of column j: transpose 16 columns at a time */
    for (int v = 0; v < MV; v++)
        for (int j0 = 0; j0 < TW; j0 += VL) {
            __m512 r[VL];
            int n = TW - j0 < VL ? TW - j0 : VL;
            for (int i = 0; i < VL; i++)
                r[i] = i < n ? acc[(j0 + i) * MV + v] : _mm512_setzero_ps();
            tg_lanes_transpose(r);
            __mmask16 m = (__mmask16)((1u << n) - 1);
            int rows = g->M - v * VL < VL ? (int)(g->M - v * VL) : VL;
            int epi = g->ecoef || t->z || g->erelu;
            for (int i = 0; i < VL; i++)
                if (i < rows)
                    _mm512_mask_storeu_ps(t->o + (v * VL + i) * P + j0, m,
                                          epi ? tg_lanes_epi(g, v * VL + i, r[i], t->z ? t->z + (v * VL + i) * P + j0
                                                                                    : NULL, m)
                                              : r[i]);
        }
}

typedef void (*tg_lanes_fwd_fn)(const tg_lanes_tile *t);

#define TG_LANES_FWD(MV, TW, SW)                                                   \
    static void tg_lanes_fwd_##MV##_##TW##_##SW(const tg_lanes_tile *t)            \
    {                                                                              \
        __m512 acc[(MV) * (TW)];                                                   \
        tg_lanes_fwd_body(t, acc, MV, TW, SW);                                     \
    }
#define TG_LANES_FWD_SW(MV, TW) TG_LANES_FWD(MV, TW, 1) TG_LANES_FWD(MV, TW, 2)

/* The tile widths of each channel block count: the longest that fits 28 accumulators,
 * the rows of the layers served (32 and 16 as halves, 14, 8, 4) and 1 for what is left. */
TG_LANES_FWD_SW(1, 28) TG_LANES_FWD_SW(1, 16) TG_LANES_FWD_SW(1, 14) TG_LANES_FWD_SW(1, 8)
TG_LANES_FWD_SW(1, 4) TG_LANES_FWD_SW(1, 1)
TG_LANES_FWD_SW(2, 14) TG_LANES_FWD_SW(2, 8) TG_LANES_FWD_SW(2, 4) TG_LANES_FWD_SW(2, 1)
TG_LANES_FWD_SW(4, 7) TG_LANES_FWD_SW(4, 4) TG_LANES_FWD_SW(4, 1)

typedef struct {
    int tw;
    tg_lanes_fwd_fn fn[2]; /* stride 1, 2 */
} tg_lanes_width;

#define W_(MV, TW) { TW, { tg_lanes_fwd_##MV##_##TW##_1, tg_lanes_fwd_##MV##_##TW##_2 } }
static const tg_lanes_width k_w1[] = { W_(1, 28), W_(1, 16), W_(1, 14), W_(1, 8), W_(1, 4), W_(1, 1) };
static const tg_lanes_width k_w2[] = { W_(2, 14), W_(2, 8), W_(2, 4), W_(2, 1) };
static const tg_lanes_width k_w4[] = { W_(4, 7), W_(4, 4), W_(4, 1) };
#undef W_

/* The width a row of OW takes: the narrowest at least as wide as an even split of the
 * row into the fewest tiles, or, when that is wider than the row, the widest that fits
 * (the last tile of a row then overlaps the one before and writes the same values). */
static const tg_lanes_width *tg_lanes_pick(int mv, int64_t OW)
{
    const tg_lanes_width *ws = mv == 1 ? k_w1 : mv == 2 ? k_w2 : k_w4;
    int nw = mv == 1 ? 6 : mv == 2 ? 4 : 3;
    int64_t tiles = (OW + ws[0].tw - 1) / ws[0].tw, even = (OW + tiles - 1) / tiles;
    const tg_lanes_width *best = &ws[0];
    for (int i = 0; i < nw; i++)
        if (ws[i].tw >= even)
            best = &ws[i];
    for (int i = 0; best->tw > OW && i < nw; i++)
        if (ws[i].tw <= OW)
            best = &ws[i];
    return best;
}

void tg_conv_lanes_avx512_f32(const tg_conv_lanes_geom *g, int64_t n, int64_t oh0, int64_t rows, float *buf)
{
    const int mv = (int)(g->Mp / VL);
    const int64_t Hb = tg_conv_lanes_rows_in(g, rows), Wp = tg_conv_lanes_wp(g);
    tg_lanes_pad(g, n, oh0, rows, buf);
    const tg_lanes_width *wd = tg_lanes_pick(mv, g->OW);
    tg_lanes_fwd_fn fn = wd->fn[g->sw == 2];
    tg_lanes_tile t = { g, NULL, Hb * Wp, g->dh * Wp, NULL, NULL };
    for (int64_t r = 0; r < rows; r++)
        for (int64_t ow0 = 0; ow0 < g->OW; ow0 += wd->tw) {
            int64_t at = ow0 + wd->tw <= g->OW ? ow0 : g->OW - wd->tw, off = n * g->out_img + (oh0 + r) * g->OW + at;
            t.xb = buf + r * g->sh * Wp + at * g->sw;
            t.o = g->out + off;
            t.z = g->eres ? g->eres + off : NULL;
            fn(&t);
        }
}

/* ---------------------------------------------------------------- weight gradient */

/* dt (np x Mp) = the np positions of image n from output row oh0 on, of dout (M x P
 * an image), channels in lanes, zero past M. */
static void tg_lanes_dout_t(const tg_conv_lanes_geom *g, const float *dout, int64_t n, int64_t oh0,
                            int64_t np, float *dt)
{
    const int64_t P = g->OH * g->OW;
    const float *d0 = dout + n * g->out_img + oh0 * g->OW;
    for (int64_t v = 0; v < g->Mp / VL; v++)
        for (int64_t p0 = 0; p0 < np; p0 += VL) {
            int cnt = np - p0 < VL ? (int)(np - p0) : VL;
            __mmask16 m = (__mmask16)((1u << cnt) - 1);
            __m512 r[VL];
            for (int i = 0; i < VL; i++)
                r[i] = v * VL + i < g->M ? _mm512_maskz_loadu_ps(m, d0 + (v * VL + i) * P + p0)
                                         : _mm512_setzero_ps();
            tg_lanes_transpose(r);
            for (int j = 0; j < cnt; j++)
                _mm512_store_ps(dt + (p0 + j) * g->Mp + v * VL, r[j]);
        }
}

/* One block of the weight gradient: channel c, kernel rows [kh0, kh0 + KHB), all KW
 * columns, all MV * 16 output channels, summed over the unit's positions. */
typedef struct {
    const tg_conv_lanes_geom *g;
    const float *xc; /* the padded block of channel c */
    const float *dt; /* the unit's dout, channels in lanes */
    int64_t rows, Wp, kh0;
    float *acc;      /* the gradient at (c, kh0, 0), k-major (Mp floats a k) */
} tg_lanes_wtile;

static inline __attribute__((always_inline)) void
tg_lanes_wgrad_body(const tg_lanes_wtile *t, __m512 *acc, const int MV, const int KHB, const int KW,
                    const int SW)
{
    const tg_conv_lanes_geom *g = t->g;
    const int64_t Mp = MV * VL;
    for (int i = 0; i < KHB * KW * MV; i++)
        acc[i] = _mm512_setzero_ps();
    const float *d = t->dt;
    for (int64_t r = 0; r < t->rows; r++) {
        const float *xr[7];
        for (int i = 0; i < KHB; i++)
            xr[i] = t->xc + (r * g->sh + (t->kh0 + i) * g->dh) * t->Wp;
        for (int64_t ow = 0; ow < g->OW; ow++, d += Mp) {
            __m512 dv[4];
            for (int v = 0; v < MV; v++)
                dv[v] = _mm512_load_ps(d + v * VL);
            for (int i = 0; i < KHB; i++)
                for (int kw = 0; kw < KW; kw++) {
                    __m512 xv = _mm512_set1_ps(xr[i][ow * SW + kw]);
                    for (int v = 0; v < MV; v++)
                        acc[(i * KW + kw) * MV + v] = _mm512_fmadd_ps(xv, dv[v], acc[(i * KW + kw) * MV + v]);
                }
        }
    }
    for (int i = 0; i < KHB * KW; i++)
        for (int v = 0; v < MV; v++) {
            float *a = t->acc + i * Mp + v * VL;
            _mm512_store_ps(a, _mm512_add_ps(_mm512_load_ps(a), acc[i * MV + v]));
        }
}

typedef void (*tg_lanes_wgrad_fn)(const tg_lanes_wtile *t);

#define TG_LANES_WG(MV, KHB, KW, SW)                                                \
    static void tg_lanes_wg_##MV##_##KHB##_##KW##_##SW(const tg_lanes_wtile *t)     \
    {                                                                               \
        __m512 acc[(MV) * (KHB) * (KW)];                                            \
        tg_lanes_wgrad_body(t, acc, MV, KHB, KW, SW);                               \
    }
#define TG_LANES_WG_SW(MV, KHB, KW) TG_LANES_WG(MV, KHB, KW, 1) TG_LANES_WG(MV, KHB, KW, 2)

/* Blocks of kernel rows that fit 25 accumulators or fewer, for 3- and 5-column kernels. */
TG_LANES_WG_SW(1, 1, 3) TG_LANES_WG_SW(1, 2, 3) TG_LANES_WG_SW(1, 3, 3)
TG_LANES_WG_SW(2, 1, 3) TG_LANES_WG_SW(2, 2, 3) TG_LANES_WG_SW(2, 3, 3)
TG_LANES_WG_SW(4, 1, 3) TG_LANES_WG_SW(4, 2, 3)
TG_LANES_WG_SW(1, 1, 5) TG_LANES_WG_SW(1, 2, 5) TG_LANES_WG_SW(1, 3, 5) TG_LANES_WG_SW(1, 4, 5)
TG_LANES_WG_SW(1, 5, 5)
TG_LANES_WG_SW(2, 1, 5) TG_LANES_WG_SW(2, 2, 5)
TG_LANES_WG_SW(4, 1, 5)

#define F_(MV, KHB, KW) { tg_lanes_wg_##MV##_##KHB##_##KW##_1, tg_lanes_wg_##MV##_##KHB##_##KW##_2 }
/* [mv index][kw index][khb - 1][stride - 1], NULL past the block rows that fit */
static const tg_lanes_wgrad_fn k_wg[3][2][5][2] = {
    { { F_(1, 1, 3), F_(1, 2, 3), F_(1, 3, 3) }, { F_(1, 1, 5), F_(1, 2, 5), F_(1, 3, 5), F_(1, 4, 5), F_(1, 5, 5) } },
    { { F_(2, 1, 3), F_(2, 2, 3), F_(2, 3, 3) }, { F_(2, 1, 5), F_(2, 2, 5) } },
    { { F_(4, 1, 3), F_(4, 2, 3) }, { F_(4, 1, 5) } },
};
#undef F_

int tg_conv_wgrad_lanes_ok(const tg_conv_lanes_geom *g)
{
    return (g->KW == 3 || g->KW == 5) && g->dw == 1 && (g->sw == 1 || g->sw == 2) &&
           (g->Mp == 16 || g->Mp == 32 || g->Mp == 64) && g->KH <= 7;
}

void tg_conv_wgrad_lanes_avx512_f32(const tg_conv_lanes_geom *g, const float *dout, int64_t n, int64_t oh0,
                                    int64_t rows, float *buf, float *acc)
{
    const int mi = g->Mp == 16 ? 0 : g->Mp == 32 ? 1 : 2, ki = g->KW == 5;
    const int64_t Hb = tg_conv_lanes_rows_in(g, rows), Wp = tg_conv_lanes_wp(g);
    int khb = 1;
    while (khb < 5 && khb < g->KH && k_wg[mi][ki][khb][0])
        khb++;
    float *dt = buf + (g->C * Hb * Wp + VL - 1) / VL * VL;
    tg_lanes_pad(g, n, oh0, rows, buf);
    tg_lanes_dout_t(g, dout, n, oh0, rows * g->OW, dt);
    tg_lanes_wtile t = { g, NULL, dt, rows, Wp, 0, NULL };
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t kh0 = 0; kh0 < g->KH; kh0 += khb) {
            int b = g->KH - kh0 < khb ? (int)(g->KH - kh0) : khb;
            t.xc = buf + c * Hb * Wp, t.kh0 = kh0;
            t.acc = acc + (c * g->KH + kh0) * g->KW * g->Mp;
            k_wg[mi][ki][b - 1][g->sw - 1](&t);
        }
}

int64_t tg_conv_lanes_buf(const tg_conv_lanes_geom *g, int64_t rows, int wgrad)
{
    int64_t pad = (g->C * tg_conv_lanes_rows_in(g, rows) * tg_conv_lanes_wp(g) + VL - 1) / VL * VL;
    return pad + (wgrad ? rows * g->OW * g->Mp : VL);
}

/* ---------------------------------------------------------------- positions in lanes */

/* For the few input or output channels the lanes above would leave idle (a 1-channel
 * image, the 1-channel gradient of the first layer): the lanes hold 16 columns of one
 * output row, read unmasked from the padded block (a row's last vector runs past OW into
 * the next row or the block's slack, and only its columns below OW are stored), and MR
 * output channels' weights are broadcast. */
typedef struct {
    const tg_conv_lanes_geom *g;
    const float *xb;  /* the padded block at the tile's first input */
    int64_t chp, rowp, Wp;
    const float *w;   /* wt at channel m0: wt[k * Mp + m0 + i] */
    float *o;         /* out at (n, m0, oh, ow0) */
    int rows;         /* channels of the block that exist (<= MR) */
    __mmask16 last;   /* the columns of the tile's last vector that exist */
} tg_rows_tile;

static inline __attribute__((always_inline)) void
tg_rows_body(const tg_rows_tile *t, __m512 *acc, const int MR, const int R, const int NV)
{
    const tg_conv_lanes_geom *g = t->g;
    const int64_t P = g->OH * g->OW, rstep = g->sh * t->Wp;
    for (int i = 0; i < MR; i++) {
        __m512 b = _mm512_set1_ps(g->bias ? g->bias[t->w - g->wt + i] : 0.0f);
        for (int j = 0; j < R * NV; j++)
            acc[i * R * NV + j] = b;
    }
    const float *w = t->w, *xc = t->xb;
    for (int64_t c = 0; c < g->C; c++, xc += t->chp) {
        const float *xr = xc;
        for (int64_t kh = 0; kh < g->KH; kh++, xr += t->rowp) {
            const float *xk = xr;
            for (int64_t kw = 0; kw < g->KW; kw++, xk += g->dw, w += g->Mp) {
                __m512 xv[12];
                for (int r = 0; r < R; r++)
                    for (int v = 0; v < NV; v++)
                        xv[r * NV + v] = _mm512_loadu_ps(xk + r * rstep + v * VL);
                for (int i = 0; i < MR; i++) {
                    __m512 wv = _mm512_set1_ps(w[i]);
                    for (int j = 0; j < R * NV; j++)
                        acc[i * R * NV + j] = _mm512_fmadd_ps(wv, xv[j], acc[i * R * NV + j]);
                }
            }
        }
    }
    for (int i = 0; i < MR; i++)
        if (i < t->rows)
            for (int r = 0; r < R; r++)
                for (int v = 0; v < NV; v++)
                    _mm512_mask_storeu_ps(t->o + i * P + r * g->OW + v * VL, v == NV - 1 ? t->last : 0xffff,
                                          acc[(i * R + r) * NV + v]);
}

/* One output channel, R rows, kernel rows of dilation 1 at stride 1: input row i serves
 * output row i - kh for every kh, so it is loaded once for all KH of them (the loads,
 * most of them across a cache line, are what bounds a single channel). */
static inline __attribute__((always_inline)) void
tg_rows1_body(const tg_rows_tile *t, __m512 *acc, const int R, const int NV, const int KH)
{
    const tg_conv_lanes_geom *g = t->g;
    const int64_t Wp = t->Wp;
    __m512 b = _mm512_set1_ps(g->bias ? g->bias[0] : 0.0f);
    for (int j = 0; j < R * NV; j++)
        acc[j] = b;
    const float *xc = t->xb, *w = t->w;
    for (int64_t c = 0; c < g->C; c++, xc += t->chp, w += KH * g->KW)
        for (int64_t kw = 0; kw < g->KW; kw++) {
            __m512 wk[7];
#pragma GCC unroll 7
            for (int kh = 0; kh < KH; kh++)
                wk[kh] = _mm512_set1_ps(w[kh * g->KW + kw]);
            const float *xk = xc + kw * g->dw;
#pragma GCC unroll 10
            for (int i = 0; i < R + KH - 1; i++)
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) {
                    __m512 xv = _mm512_loadu_ps(xk + i * Wp + v * VL);
#pragma GCC unroll 7
                    for (int kh = 0; kh < KH; kh++)
                        if (i - kh >= 0 && i - kh < R)
                            acc[(i - kh) * NV + v] = _mm512_fmadd_ps(wk[kh], xv, acc[(i - kh) * NV + v]);
                }
        }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(t->o + r * g->OW + v * VL, v == NV - 1 ? t->last : 0xffff, acc[r * NV + v]);
}

typedef void (*tg_rows_fn)(const tg_rows_tile *t);

#define TG_ROWS1(R, NV, KH)                                                 \
    static void tg_rows1_##R##_##NV##_##KH(const tg_rows_tile *t)           \
    {                                                                       \
        __m512 acc[(R) * (NV)];                                             \
        tg_rows1_body(t, acc, R, NV, KH);                                   \
    }
TG_ROWS1(4, 1, 3) TG_ROWS1(4, 2, 3) TG_ROWS1(4, 3, 3)
TG_ROWS1(4, 1, 5) TG_ROWS1(4, 2, 5) TG_ROWS1(4, 3, 5)
/* [KH 3, KH 5][NV - 1] */
static const tg_rows_fn k_rows1[2][3] = {
    { tg_rows1_4_1_3, tg_rows1_4_2_3, tg_rows1_4_3_3 },
    { tg_rows1_4_1_5, tg_rows1_4_2_5, tg_rows1_4_3_5 },
};

#define TG_ROWS(MR, R, NV)                                                  \
    static void tg_rows_##MR##_##R##_##NV(const tg_rows_tile *t)            \
    {                                                                       \
        __m512 acc[(MR) * (R) * (NV)];                                      \
        tg_rows_body(t, acc, MR, R, NV);                                    \
    }
TG_ROWS(8, 1, 1) TG_ROWS(8, 1, 2) TG_ROWS(8, 1, 3)
TG_ROWS(1, 4, 1) TG_ROWS(1, 4, 2) TG_ROWS(1, 4, 3)
TG_ROWS(1, 1, 1) TG_ROWS(1, 1, 2) TG_ROWS(1, 1, 3)

/* [MR 8, MR 1 four rows, MR 1 one row][NV - 1] */
static const tg_rows_fn k_rows[3][3] = {
    { tg_rows_8_1_1, tg_rows_8_1_2, tg_rows_8_1_3 },
    { tg_rows_1_4_1, tg_rows_1_4_2, tg_rows_1_4_3 },
    { tg_rows_1_1_1, tg_rows_1_1_2, tg_rows_1_1_3 },
};

void tg_conv_rows_avx512_f32(const tg_conv_lanes_geom *g, int64_t n, int64_t oh0, int64_t rows, float *buf)
{
    const int64_t Hb = tg_conv_lanes_rows_in(g, rows), Wp = tg_conv_lanes_wp(g), P = g->OH * g->OW;
    tg_lanes_pad(g, n, oh0, rows, buf);
    memset(buf + g->C * Hb * Wp, 0, VL * sizeof(float)); /* the slack the last vectors read */
    tg_rows_tile t = { g, NULL, Hb * Wp, g->dh * Wp, Wp, NULL, NULL, 0, 0 };
    const int mr = g->M == 1 ? 1 : 8;
    const int reuse = mr == 1 && g->sh == 1 && g->dh == 1 && (g->KH == 3 || g->KH == 5);
    for (int64_t ow0 = 0; ow0 < g->OW; ow0 += 3 * VL) {
        int64_t cols = g->OW - ow0 < 3 * VL ? g->OW - ow0 : 3 * VL;
        int nv = (int)((cols + VL - 1) / VL);
        t.last = (__mmask16)((1u << (cols - (nv - 1) * VL)) - 1);
        for (int64_t m0 = 0; m0 < g->M; m0 += mr) {
            t.rows = g->M - m0 < mr ? (int)(g->M - m0) : mr;
            t.w = g->wt + m0;
            for (int64_t r = 0; r < rows;) {
                int four = mr == 1 && rows - r >= 4;
                t.xb = buf + r * g->sh * Wp + ow0;
                t.o = g->out + n * g->out_img + m0 * P + (oh0 + r) * g->OW + ow0;
                if (four && reuse)
                    k_rows1[g->KH == 5][nv - 1](&t);
                else
                    k_rows[mr == 8 ? 0 : four ? 1 : 2][nv - 1](&t);
                r += four ? 4 : 1;
            }
        }
    }
}
