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
 * no scalar loop. The plain-C rows in pool.c, which the compiler vectorises poorly at
 * stride 2 and which run the edges element by element, measured 9-15 ms on a
 * [16,64,112,112] input where a memory pass takes about 3.
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
 * first tap, a NaN propagates with the last NaN's tap), as pool.c's paths do. */
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

/* The 16 values of one tap for 16 outputs sw apart (sw 1 or 2) whose first reads column
 * c of row r: the columns outside [0, W) and the lanes past n read as fill. Masked loads
 * touch no memory in their masked lanes, so c may lie left of the row or past its end. */
static inline __m512 tap16(const float *r, int64_t c, int64_t W, int64_t n, int sw, __m512 fill)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const float *p = (const float *)((uintptr_t)r + (uintptr_t)(c * (int64_t)sizeof(float)));
    if (sw == 1)
        return _mm512_mask_loadu_ps(fill, (__mmask16)bit_range(-c, n < W - c ? n : W - c), p);
    /* positions i of 32 read columns c + i; lane j keeps i = 2j */
    uint32_t k = bit_range(-c, 2 * n - 1 < W - c ? 2 * n - 1 : W - c);
    __m512 lo = _mm512_mask_loadu_ps(fill, (__mmask16)k, p);
    __m512 hi = _mm512_mask_loadu_ps(fill, (__mmask16)(k >> 16), p + VL);
    return _mm512_permutex2var_ps(lo, even, hi);
}

/* The first tap inside [0, in) of a window starting at s with dilation d (possibly past
 * the end: such a window holds nothing), as pool.c's tg_pool_window. */
static inline int64_t first_tap(int64_t s, int64_t d)
{
    return s < 0 ? s + (-s + d - 1) / d * d : s;
}

static void max_row(const tg_pool2d_geom *g, const float *plane, int64_t oh, float *y, int64_t *idx)
{
    const int64_t W = g->W, H = g->H, OW = g->OW, sw = g->stride[1], pw = g->pad[1], dw = g->dilation[1];
    const int64_t hs = oh * g->stride[0] - g->pad[0], hlo = first_tap(hs, g->dilation[0]);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_sw = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)sw));
    for (int64_t o0 = 0; o0 < OW; o0 += VL) {
        int64_t n = OW - o0 < VL ? OW - o0 : VL, c0 = o0 * sw - pw;
        __m512 m = ninf;
        /* PyTorch's index of a window where nothing beats -inf: its first tap */
        __m512i at;
        if (c0 >= 0) {
            at = _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)(hlo * W + c0)));
        } else {
            int32_t first[VL];
            for (int j = 0; j < VL; j++)
                first[j] = (int32_t)(hlo * W + first_tap(c0 + j * sw, dw));
            at = _mm512_loadu_si512(first);
        }
        for (int64_t kh = 0; kh < g->kernel[0]; kh++) {
            int64_t h = hs + kh * g->dilation[0];
            if (h < 0 || h >= H)
                continue;
            const float *row = plane + h * W;
            for (int64_t kw = 0; kw < g->kernel[1]; kw++) {
                int64_t c = c0 + kw * dw;
                __m512 v = tap16(row, c, W, n, (int)sw, ninf);
                __mmask16 k = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                m = _mm512_mask_mov_ps(m, k, v);
                if (idx)
                    at = _mm512_mask_mov_epi32(at, k, _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)(h * W + c))));
            }
        }
        _mm512_mask_storeu_ps(y + o0, tail16(n), m);
        if (idx) {
            _mm512_mask_storeu_epi64(idx + o0, tail8(n), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
            _mm512_mask_storeu_epi64(idx + o0 + 8, tail8(n - 8),
                                     _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
        }
    }
}

/* pool.c's order: taps summed row by row from zero (a tap outside the input adds +0,
 * which leaves every sum's bits as they are), then one division by the window's count. */
static void avg_row(const tg_pool2d_geom *g, const float *plane, int64_t oh, float *y)
{
    const int64_t W = g->W, H = g->H, OW = g->OW, sw = g->stride[1], pw = g->pad[1], kw = g->kernel[1];
    const int64_t hs = oh * g->stride[0] - g->pad[0], he = hs + g->kernel[0];
    const int64_t hpad = (he < H + g->pad[0] ? he : H + g->pad[0]) - hs;
    const int64_t hlo = hs < 0 ? 0 : hs, hhi = he < H ? he : H;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_sw = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)sw));
    for (int64_t o0 = 0; o0 < OW; o0 += VL) {
        int64_t n = OW - o0 < VL ? OW - o0 : VL, c0 = o0 * sw - pw;
        __m512 acc = zero;
        for (int64_t h = hlo; h < hhi; h++)
            for (int64_t k = 0; k < kw; k++)
                acc = _mm512_add_ps(acc, tap16(plane + h * W, c0 + k, W, n, (int)sw, zero));
        __m512 div;
        if (g->divisor) {
            div = _mm512_set1_ps((float)g->divisor);
        } else {
            /* each lane's window [s, s + kw) clipped to the padded input or to the input */
            __m512i s = _mm512_add_epi32(lane_sw, _mm512_set1_epi32((int)c0));
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
        _mm512_mask_storeu_ps(y + o0, tail16(n), _mm512_div_ps(acc, div));
    }
}

void tg_pool_rows_avx512_f32(tg_pool_kind kind, const tg_pool2d_geom *g, const float *x, float *y, int64_t *idx,
                             int64_t r0, int64_t r1)
{
    const int64_t OH = g->OH, OW = g->OW, HW = g->H * g->W;
    for (int64_t r = r0; r < r1; r++) {
        const float *plane = x + r / OH * HW;
        if (kind == TG_POOL_MAX)
            max_row(g, plane, r % OH, y + r * OW, idx ? idx + r * OW : NULL);
        else
            avg_row(g, plane, r % OH, y + r * OW);
    }
}
