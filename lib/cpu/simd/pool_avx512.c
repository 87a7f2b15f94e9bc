/* The AVX-512 kernel of the commonest pooling window, 2x2 at stride 2 with every window
 * whole (f32): one plane at a time, 16 outputs a vector. The two input rows of an output
 * row are loaded as pairs of vectors and split into their even and odd columns, the four
 * taps of each window; the compiler's loops over stride-2 copies of them (pool.c's plane
 * path) ran 5-7 times slower than a memory pass on the activations of a small CNN, which
 * sit in L3 (the notes' CNN's two pools, with indices: 2.5x faster). The backward stays
 * pool.c's zero-and-scatter: a dense AVX-512 one (each window's four values written
 * once) measured no faster. Built with -mavx512f (see meson.build); tg_simd() hands it
 * out only where the CPU has it. */
#include <immintrin.h>

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
