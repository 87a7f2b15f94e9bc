/* The AVX-512 pooling kernels (f32). The first takes the commonest window, 2x2 at stride
 * 2 with every window whole: one plane at a time, 16 outputs a vector. The two input rows of an output
 * row are loaded as pairs of vectors and split into their even and odd columns, the four
 * taps of each window; the compiler's loops over stride-2 copies of them (pool.c's plane
 * path) ran 5-7 times slower than a memory pass on the activations of a small CNN, which
 * sit in L3 (the notes' CNN's two pools, with indices: 2.5x faster). The backward stays
 * pool.c's zero-and-scatter: a dense AVX-512 one (each window's four values written
 * once) measured no faster.
 *
 * The second takes any other window with a stride of 1 or 2 along W (ResNet's 3x3
 * stride-2 max pool, GoogLeNet's 3x3 stride-1 ones, 3x3 averages), a row of outputs at a
 * time, 16 a vector, each tap one masked load (two and an even-lane permute at stride 2)
 * whose lanes outside the input read as -inf (max) or 0 (average): the padded edges need
 * no scalar loop. On a [16,64,112,112] input (bench_pool, 2 threads) the plain-C rows
 * of pool.c, which the compiler vectorises poorly at stride 2 and which run the edges
 * element by element, took 9.8 ms for the 3x3 stride-2 max pool with indices and 15 ms
 * for the 3x3 stride-1 average; this kernel takes 3.3 and 4.0-4.3 ms (27 and 25 GB/s,
 * where tg_add runs at 30-37).
 *
 * Built with -mavx512f (see meson.build); tg_simd() hands them out only where the CPU
 * has it. */
#include <immintrin.h>
#include <math.h>

#include "lib/cpu/simd/simd.h"

#define VL 16

static inline __mmask16 tail16(int64_t n)
{
    return n >= VL ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

static inline __mmask8 tail8(int64_t n)
{
    return n >= 8 ? (__mmask8)0xff : n <= 0 ? (__mmask8)0 : (__mmask8)((1u << n) - 1);
}

/* The later tap t replaces the running max m where it is greater or NaN (ties keep the
 * first tap, a NaN propagates with the last NaN's tap), as pool.c's paths do. A run of
 * taps folds into the run before it by the same rule: the result is the last NaN's if
 * there is one, else the first maximum's, however contiguous runs are grouped, as long
 * as each run starts from -inf with the window's first tap as its index. */
static inline void take(__m512 t, __m512i off, __m512 *m, __m512i *at)
{
    __mmask16 k = _mm512_cmp_ps_mask(t, *m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(t, t, _CMP_UNORD_Q);
    *m = _mm512_mask_mov_ps(*m, k, t);
    *at = _mm512_mask_mov_epi32(*at, k, off);
}

void tg_max_pool_2x2_avx512_f32(int64_t OH, int64_t OW, const float *x, int64_t W, float *y, int64_t *idx)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i down = _mm512_set1_epi32((int)W), diag = _mm512_set1_epi32((int)W + 1);
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *a = x + 2 * oh * W, *b = a + W;
        float *yr = y + oh * OW;
        for (int64_t o = 0; o < OW; o += VL) {
            int64_t n = OW - o < VL ? OW - o : VL;
            __mmask16 lo = tail16(2 * n), hi = tail16(2 * n - VL > 0 ? 2 * n - VL : 0);
            __m512 a0 = _mm512_maskz_loadu_ps(lo, a + 2 * o), a1 = _mm512_maskz_loadu_ps(hi, a + 2 * o + VL);
            __m512 b0 = _mm512_maskz_loadu_ps(lo, b + 2 * o), b1 = _mm512_maskz_loadu_ps(hi, b + 2 * o + VL);
            __m512 m = _mm512_permutex2var_ps(a0, even, a1);
            __m512i at = zero;
            take(_mm512_permutex2var_ps(a0, odd, a1), one, &m, &at);
            take(_mm512_permutex2var_ps(b0, even, b1), down, &m, &at);
            take(_mm512_permutex2var_ps(b0, odd, b1), diag, &m, &at);
            _mm512_mask_storeu_ps(yr + o, tail16(n), m);
            if (!idx)
                continue;
            /* the window of lane j starts at 2 * oh * W + 2 * (o + j); planes of fewer than
             * 2^31 values (the caller's condition) keep this in 32 bits */
            __m512i i32 = _mm512_add_epi32(_mm512_add_epi32(even, at), _mm512_set1_epi32((int)(2 * oh * W + 2 * o)));
            int64_t *ir = idx + oh * OW + o;
            _mm512_mask_storeu_epi64(ir, tail8(n), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i32)));
            _mm512_mask_storeu_epi64(ir + 8, tail8(n - 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i32, 1)));
        }
    }
}

/* ------------------------------------------------------------ any window, stride 1 or 2 */

/* Bits [a, b) of a 32-bit lane mask, clipped to [0, 32). */
static inline uint32_t bit_range(int64_t a, int64_t b)
{
    if (a < 0)
        a = 0;
    if (b > 32)
        b = 32;
    if (b <= a)
        return 0;
    uint64_t ones = b - a >= 32 ? 0xffffffffu : (1ull << (b - a)) - 1;
    return (uint32_t)(ones << a);
}

/* The lanes of tap16's loads that read inside the row. */
static inline uint32_t tap_mask(int64_t c, int64_t W, int64_t n, int sw)
{
    return sw == 1 ? bit_range(-c, n < W - c ? n : W - c) : bit_range(-c, 2 * n - 1 < W - c ? 2 * n - 1 : W - c);
}

/* tap_mask of every tap along W of a block (kw taps dw apart from column c0), computed
 * once for the block's kernel rows: the scalar arithmetic per tap was a third of the
 * instructions. Past 32 taps the last ones are computed where used (mask_of). */
typedef struct {
    uint32_t m[32];
} tg_tap_masks;

static inline void block_masks(tg_tap_masks *t, int64_t c0, int64_t kw, int64_t dw, int64_t W, int64_t n, int sw)
{
    for (int64_t k = 0; k < kw && k < 32; k++)
        t->m[k] = tap_mask(c0 + k * dw, W, n, sw);
}

static inline uint32_t mask_of(const tg_tap_masks *t, int64_t k, int64_t c, int64_t W, int64_t n, int sw)
{
    return k < 32 ? t->m[k] : tap_mask(c, W, n, sw);
}

/* The 16 values of one tap for 16 outputs sw apart (sw 1 or 2) whose first reads column
 * c of row r: the columns outside [0, W) and the lanes past n read as fill. Masked loads
 * touch no memory in their masked lanes, so c may lie left of the row or past its end.
 * mask: tap_mask(c, ...), unless inside (the caller's block lies inside the row), when
 * the loads need none. */
static inline __attribute__((always_inline)) __m512 tap16(const float *r, int64_t c, int64_t W, int64_t n, int sw,
                                                           __m512 fill, bool inside, uint32_t mask)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const float *p = (const float *)((uintptr_t)r + (uintptr_t)(c * (int64_t)sizeof(float)));
    if (inside)
        return sw == 1 ? _mm512_loadu_ps(p) : _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + VL));
    if (sw == 1)
        return _mm512_mask_loadu_ps(fill, (__mmask16)mask, p);
    /* positions i of 32 read columns c + i; lane j keeps i = 2j */
    __m512 lo = _mm512_mask_loadu_ps(fill, (__mmask16)mask, p);
    __m512 hi = _mm512_mask_loadu_ps(fill, (__mmask16)(mask >> 16), p + VL);
    return _mm512_permutex2var_ps(lo, even, hi);
}

/* The first tap inside [0, in) of a window starting at s with dilation d (possibly past
 * the end: such a window holds nothing), as pool.c's tg_pool_window. */
static inline int64_t first_tap(int64_t s, int64_t d)
{
    return s < 0 ? s + (-s + d - 1) / d * d : s;
}

/* Whether a block of 16 outputs from column c0 reads only columns inside [0, W) for
 * every tap of a window spanning span + 1 columns: then its loads need no masks (the
 * scalar mask arithmetic was a third of the instructions). */
static inline bool block_inside(int64_t c0, int64_t n, int64_t sw, int64_t span, int64_t W)
{
    return n == VL && c0 >= 0 && c0 + VL * sw - 1 + span < W;
}

#define TG_AI static inline __attribute__((always_inline))

/* The geometry of one output row and block: the row's first input row hs, the block's
 * first column c0 and its n (<= 16) outputs; masks when the block is not inside. */
typedef struct {
    const tg_pool2d_geom *g;
    const float *plane;
    int64_t hs, c0, n;
    tg_tap_masks tm;
} tg_pool_block;

/* Tap k along W of kernel row h; sw and inside are constants in each copy. */
TG_AI __m512 block_tap(const tg_pool_block *b, int64_t h, int64_t k, int64_t dw, int sw, bool inside, __m512 fill)
{
    const int64_t W = b->g->W, c = b->c0 + k * dw;
    return tap16(b->plane + h * W, c, W, b->n, sw, fill, inside, inside ? 0u : mask_of(&b->tm, k, c, W, b->n, sw));
}

/* A block of a max pool without indices: vmaxps (v > m ? v : m, take's rule) beside the
 * last NaN seen, which replaces the maximum at the end. */
TG_AI void max_block(const tg_pool_block *b, float *y, int sw, bool inside)
{
    const tg_pool2d_geom *g = b->g;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m = ninf, nan = ninf;
    for (int64_t kh = 0; kh < g->kernel[0]; kh++) {
        int64_t h = b->hs + kh * g->dilation[0];
        if (h < 0 || h >= g->H)
            continue;
        for (int64_t k = 0; k < g->kernel[1]; k++) {
            __m512 v = block_tap(b, h, k, g->dilation[1], sw, inside, ninf);
            nan = _mm512_mask_mov_ps(nan, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
            m = _mm512_max_ps(v, m);
        }
    }
    __mmask16 any = _mm512_cmp_ps_mask(nan, nan, _CMP_UNORD_Q);
    _mm512_mask_storeu_ps(y, tail16(b->n), _mm512_mask_mov_ps(m, any, nan));
}

/* A block of a max pool with indices: each kernel row's taps are a run of their own,
 * folded into the window's result after it (one dependent compare-and-blend chain over
 * a 3x3 window's nine taps was what the kernel waited on). first: each lane's index
 * where nothing beats -inf. */
TG_AI void max_block_indices(const tg_pool_block *b, __m512i first, float *y, int64_t *idx, int sw, bool inside)
{
    const tg_pool2d_geom *g = b->g;
    const int64_t W = g->W, dw = g->dilation[1];
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_sw = sw == 1 ? lane : _mm512_add_epi32(lane, lane);
    __m512 m = ninf;
    __m512i at = first;
    for (int64_t kh = 0; kh < g->kernel[0]; kh++) {
        int64_t h = b->hs + kh * g->dilation[0];
        if (h < 0 || h >= g->H)
            continue;
        __m512 rm = ninf;
        __m512i rat = first;
        for (int64_t k = 0; k < g->kernel[1]; k++)
            take(block_tap(b, h, k, dw, sw, inside, ninf),
                 _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)(h * W + b->c0 + k * dw))), &rm, &rat);
        take(rm, rat, &m, &at);
    }
    _mm512_mask_storeu_ps(y, tail16(b->n), m);
    _mm512_mask_storeu_epi64(idx, tail8(b->n), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
    _mm512_mask_storeu_epi64(idx + 8, tail8(b->n - 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
}

/* One output row of a max pool, sw (1 or 2) a constant in each copy. */
TG_AI void max_row_k(const tg_pool2d_geom *g, const float *plane, int64_t oh, float *y, int64_t *idx, int sw)
{
    const int64_t W = g->W, dw = g->dilation[1], span = (g->kernel[1] - 1) * dw;
    tg_pool_block b = { .g = g, .plane = plane, .hs = oh * g->stride[0] - g->pad[0] };
    const int64_t hlo = first_tap(b.hs, g->dilation[0]);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_sw = sw == 1 ? lane : _mm512_add_epi32(lane, lane);
    for (int64_t o0 = 0; o0 < g->OW; o0 += VL) {
        b.n = g->OW - o0 < VL ? g->OW - o0 : VL, b.c0 = o0 * sw - g->pad[1];
        bool inside = block_inside(b.c0, b.n, sw, span, W);
        if (!inside)
            block_masks(&b.tm, b.c0, g->kernel[1], dw, W, b.n, sw);
        if (!idx) {
            if (inside)
                max_block(&b, y + o0, sw, true);
            else
                max_block(&b, y + o0, sw, false);
            continue;
        }
        /* PyTorch's index of a window where nothing beats -inf: its first tap */
        __m512i first = _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)(hlo * W + b.c0)));
        if (b.c0 < 0) { /* the windows of the left padding */
            int32_t f[VL];
            _mm512_storeu_si512(f, first);
            for (int j = 0; j < VL && b.c0 + j * sw < 0; j++)
                f[j] = (int32_t)(hlo * W + first_tap(b.c0 + j * sw, dw));
            first = _mm512_loadu_si512(f);
        }
        if (inside)
            max_block_indices(&b, first, y + o0, idx + o0, sw, true);
        else
            max_block_indices(&b, first, y + o0, idx + o0, sw, false);
    }
}

/* A block's sum for an average pool: pool.c's order, taps summed row by row from zero (a
 * tap outside the input adds +0, which leaves every sum's bits as they are). */
TG_AI __m512 avg_block_sum(const tg_pool_block *b, int64_t hlo, int64_t hhi, int sw, bool inside)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t h = hlo; h < hhi; h++)
        for (int64_t k = 0; k < b->g->kernel[1]; k++)
            acc = _mm512_add_ps(acc, block_tap(b, h, k, 1, sw, inside, _mm512_setzero_ps()));
    return acc;
}

/* One output row of an average pool: the sums, then one division by each window's
 * count (pool.c's divisor). */
TG_AI void avg_row_k(const tg_pool2d_geom *g, const float *plane, int64_t oh, float *y, int sw)
{
    const int64_t W = g->W, H = g->H, pw = g->pad[1], kw = g->kernel[1];
    tg_pool_block b = { .g = g, .plane = plane, .hs = oh * g->stride[0] - g->pad[0] };
    const int64_t he = b.hs + g->kernel[0], hpad = (he < H + g->pad[0] ? he : H + g->pad[0]) - b.hs;
    const int64_t hlo = b.hs < 0 ? 0 : b.hs, hhi = he < H ? he : H;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_sw = sw == 1 ? lane : _mm512_add_epi32(lane, lane);
    for (int64_t o0 = 0; o0 < g->OW; o0 += VL) {
        b.n = g->OW - o0 < VL ? g->OW - o0 : VL, b.c0 = o0 * sw - pw;
        bool inside = block_inside(b.c0, b.n, sw, kw - 1, W);
        if (!inside)
            block_masks(&b.tm, b.c0, kw, 1, W, b.n, sw);
        __m512 acc = inside ? avg_block_sum(&b, hlo, hhi, sw, true) : avg_block_sum(&b, hlo, hhi, sw, false);
        __m512 div;
        if (g->divisor) {
            div = _mm512_set1_ps((float)g->divisor);
        } else {
            /* each lane's window [s, s + kw) clipped to the padded input or to the input */
            __m512i s = _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)b.c0));
            __m512i e = _mm512_add_epi32(s, _mm512_set1_epi32((int)kw)), cnt;
            if (g->count_include_pad) {
                cnt = _mm512_sub_epi32(_mm512_min_epi32(e, _mm512_set1_epi32((int)(W + pw))), s);
                cnt = _mm512_mullo_epi32(cnt, _mm512_set1_epi32((int)hpad));
            } else {
                cnt = _mm512_sub_epi32(_mm512_min_epi32(e, _mm512_set1_epi32((int)W)),
                                       _mm512_max_epi32(s, _mm512_setzero_si512()));
                cnt = _mm512_mullo_epi32(cnt, _mm512_set1_epi32((int)(hhi - hlo)));
            }
            div = _mm512_cvtepi32_ps(cnt);
        }
        _mm512_mask_storeu_ps(y + o0, tail16(b.n), _mm512_div_ps(acc, div));
    }
}

void tg_pool_rows_avx512_f32(tg_pool_kind kind, const tg_pool2d_geom *g, const float *x, float *y, int64_t *idx,
                             int64_t r0, int64_t r1)
{
    const int64_t OH = g->OH, OW = g->OW, HW = g->H * g->W;
    const bool s1 = g->stride[1] == 1;
    for (int64_t r = r0, p = r0 / OH, oh = r0 % OH; r < r1; r++) {
        const float *plane = x + p * HW;
        float *yr = y + r * OW;
        int64_t *ir = idx ? idx + r * OW : NULL;
        if (kind == TG_POOL_MAX && s1)
            max_row_k(g, plane, oh, yr, ir, 1);
        else if (kind == TG_POOL_MAX)
            max_row_k(g, plane, oh, yr, ir, 2);
        else if (s1)
            avg_row_k(g, plane, oh, yr, 1);
        else
            avg_row_k(g, plane, oh, yr, 2);
        if (++oh == OH)
            oh = 0, p++;
    }
}
