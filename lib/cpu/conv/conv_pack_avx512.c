/* The AVX-512 implicit-im2col packer: each micro-panel's columns are cut into runs of
 * one output row that stay inside one vector (16 f32 / 8 f64 lanes); a run is one masked
 * load (stride 1, the mask drops the padding columns) or one masked gather (stride > 1)
 * and one masked store per row k. Built with -mavx512f (meson.build). */
#include <immintrin.h>

#include "lib/cpu/conv/conv_impl.h"

typedef struct {
    int64_t base, ihb, iwb; /* image offset, oh * sh, ow * sw */
    int len, j0;            /* lanes, first column in the panel */
} tg_conv_run;

/* Cuts columns [q, q + ncols) into runs; returns how many. */
static int tg_conv_runs(const tg_conv_pack_geom *g, int64_t q, int ncols, int vl,
                        tg_conv_run *runs)
{
    int nr = 0;
    int64_t n = q / g->P, p = q % g->P, oh = p / g->OW, ow = p % g->OW;
    for (int j = 0; j < ncols;) {
        int64_t len = g->OW - ow;
        if (len > ncols - j)
            len = ncols - j;
        if (len > vl - j % vl)
            len = vl - j % vl;
        runs[nr++] = (tg_conv_run){ n * g->img, oh * g->sh, ow * g->sw, (int)len, j };
        j += (int)len;
        ow += len;
        if (ow == g->OW) {
            ow = 0;
            if (++oh * g->OW == g->P)
                oh = 0, n++;
        }
    }
    return nr;
}

/* Lanes t < len with 0 <= iw + t * sw < W (no division at stride 1: this runs for
 * every run of every row). */
static inline unsigned tg_conv_lanes(int64_t iw, int64_t sw, int64_t W, int len)
{
    int64_t lo, hi;
    if (sw == 1) {
        lo = iw >= 0 ? 0 : -iw;
        hi = W - iw;
    } else {
        lo = iw >= 0 ? 0 : (-iw + sw - 1) / sw;
        hi = iw < W ? (W - iw + sw - 1) / sw : 0;
    }
    if (hi > len)
        hi = len;
    if (lo >= hi)
        return 0;
    return (unsigned)(((1ull << hi) - 1) & ~((1ull << lo) - 1));
}

/* Stride 2 (f32): lanes lm (a contiguous range) of x[2t], t < 16, from two masked loads
 * of the 31 floats they span and one two-source permute, in place of a 16-lane gather
 * (the whole 128 -> 128 3x3 stride-2 conv at 56x56 ran 1.17x faster at batch 1 and 1.25x
 * at batch 8 on Zen 4). */
static inline __m512 tg_conv_load_s2_f32(const float *src, unsigned lm)
{
    if (!lm)
        return _mm512_setzero_ps();
    unsigned lo = (unsigned)__builtin_ctz(lm), hi = 32u - (unsigned)__builtin_clz(lm);
    uint32_t m = ((1u << (2 * hi - 1)) - 1) & ~((1u << (2 * lo)) - 1);
    __m512 a = _mm512_maskz_loadu_ps((__mmask16)m, src);
    __m512 b = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), src + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, even, b);
}

/* The input lines row k of a group of runs reads, fetched ahead: the misses on x are
 * what the packer waits for otherwise (a new channel plane every few rows). */
#define TG_CONV_PREFETCH 6
static inline void tg_conv_prefetch(const tg_conv_pack_geom *g, const tg_conv_run *runs,
                                    int nruns, int64_t k, size_t es)
{
    const char *x = (const char *)g->x + (size_t)g->c_off[k] * es;
    int64_t iho = g->ih_off[k], iwo = g->iw_off[k];
    const tg_conv_run *a = &runs[0], *b = &runs[nruns - 1];
    const char *lo = x + (size_t)(a->base + (a->ihb + iho) * g->W + a->iwb + iwo) * es;
    const char *hi = x + (size_t)(b->base + (b->ihb + iho) * g->W + b->iwb + iwo + b->len * g->sw) * es;
    if (a->base == b->base && hi > lo && hi - lo <= 64 * 64) {
        for (const char *p = lo; p < hi; p += 64)
            _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(hi - 1, _MM_HINT_T0);
        return;
    }
    for (int r = 0; r < nruns; r++) {
        const tg_conv_run *u = &runs[r];
        const char *p = x + (size_t)(u->base + (u->ihb + iho) * g->W + u->iwb + iwo) * es;
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + (size_t)(u->len * g->sw) * es - 1, _MM_HINT_T0);
    }
}

/* Panels are packed TG_CONV_GROUP at a time, row k outermost: each row then reads one
 * stretch of one input row per run, in address order, instead of jumping a channel
 * plane (another page) per row of one panel, which the prefetchers cannot follow. */
#define TG_CONV_GROUP 8
#define TG_CONV_PACK(T, S, NR, VL, V, MASK, ZERO, LOADZ, STORE, GATHER, LOAD_S2, IDX)             \
    void tg_conv_pack_avx512_##S(const tg_conv_pack_geom *g, int64_t kc, int64_t q0,         \
                                 int64_t nc, void *dstv)                                      \
    {                                                                                         \
        T *dst = dstv;                                                                        \
        const T *x = g->x;                                                                    \
        tg_conv_run runs[NR * TG_CONV_GROUP];                                                 \
        int first[TG_CONV_GROUP + 1], ncols[TG_CONV_GROUP];                                   \
        IDX;                                                                                  \
        for (int64_t jg = 0; jg < nc; jg += NR * TG_CONV_GROUP) {                             \
            int np = 0, nruns = 0;                                                            \
            for (int64_t jr = jg; jr < nc && np < TG_CONV_GROUP; jr += NR, np++) {            \
                ncols[np] = nc - jr < NR ? (int)(nc - jr) : NR;                               \
                first[np] = nruns;                                                            \
                nruns += tg_conv_runs(g, q0 + jr, ncols[np], VL, runs + nruns);               \
            }                                                                                 \
            first[np] = nruns;                                                                \
            for (int64_t k = 0; k < kc; k++) {                                                \
                int64_t iho = g->ih_off[k], iwo = g->iw_off[k];                               \
                const T *xc = x + g->c_off[k];                                                \
                if (k + TG_CONV_PREFETCH < kc)                                                \
                    tg_conv_prefetch(g, runs, nruns, k + TG_CONV_PREFETCH, sizeof(T));        \
                for (int pi = 0; pi < np; pi++) {                                             \
                    T *d = dst + (jg / NR + pi) * NR * kc + k * NR;                           \
                    if (ncols[pi] < NR) /* the columns past nc */                             \
                        for (int h = 0; h < NR / VL; h++)                                     \
                            if (ncols[pi] < (h + 1) * VL) {                                   \
                                int from = ncols[pi] > h * VL ? ncols[pi] - h * VL : 0;       \
                                STORE(d + h * VL, (MASK)(((1u << VL) - 1) & ~((1u << from) - 1)), ZERO); \
                            }                                                                 \
                    for (int r = first[pi]; r < first[pi + 1]; r++) {                         \
                        const tg_conv_run *ru = &runs[r];                                     \
                        MASK sm = (MASK)((1u << ru->len) - 1);                                \
                        int64_t ih = ru->ihb + iho, iw = ru->iwb + iwo;                       \
                        V v = ZERO;                                                           \
                        if ((uint64_t)ih < (uint64_t)g->H) {                                  \
                            MASK lm = (MASK)tg_conv_lanes(iw, g->sw, g->W, ru->len);          \
                            const T *src = xc + ru->base + ih * g->W + iw;                    \
                            if (g->sw == 1)                                                   \
                                v = LOADZ(lm, src);                                           \
                            else if (g->sw == 2)                                              \
                                v = LOAD_S2(lm, src);                                         \
                            else if (lm)                                                      \
                                v = GATHER(lm, src);                                          \
                        }                                                                     \
                        STORE(d + ru->j0, sm, v);                                             \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

#define IDX32 __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, \
                              10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)g->sw))
#define GATHER32(m, p) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, p, 4)
#define LOAD_S2_32(m, p) tg_conv_load_s2_f32(p, m)
TG_CONV_PACK(float, f32, 32, 16, __m512, __mmask16, _mm512_setzero_ps(), _mm512_maskz_loadu_ps,
             _mm512_mask_storeu_ps, GATHER32, LOAD_S2_32, IDX32)

#define IDX64 __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), \
                              _mm256_set1_epi32((int)g->sw))
#define GATHER64(m, p) _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, idx, p, 8)
#define LOAD_S2_64(m, p) ((m) ? GATHER64(m, p) : _mm512_setzero_pd()) /* f64 serves gradcheck */
TG_CONV_PACK(double, f64, 16, 8, __m512d, __mmask8, _mm512_setzero_pd(), _mm512_maskz_loadu_pd,
             _mm512_mask_storeu_pd, GATHER64, LOAD_S2_64, IDX64)
