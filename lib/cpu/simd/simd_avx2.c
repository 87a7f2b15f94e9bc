/* AVX2 + FMA kernels: the vector API of simd_x86_tmpl.h on 256-bit registers, with
 * maskload/maskstore for partial vectors and exponent-bit arithmetic for exp and log.
 * Built with -mavx2 -mfma (see meson.build); called only when tg_simd() found both. */
#include <immintrin.h>
#include <math.h>

#include "lib/cpu/simd/simd.h"

#define TG_INL static inline __attribute__((always_inline))

/* The first n lanes set: a window into -1...-1 0...0. */
static const int32_t tg_mask32[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
static const int64_t tg_mask64[8] = { -1, -1, -1, -1, 0, 0, 0, 0 };

/* ---------------------------------------------------------------- f32 API */

typedef __m256 VF;
typedef __m256 VFM;

TG_INL __m256i vf_tailmask(int64_t n) { return _mm256_loadu_si256((const __m256i *)(tg_mask32 + 8 - n)); }
TG_INL VF vf_load(const float *p) { return _mm256_loadu_ps(p); }
TG_INL VF vf_loadn(const float *p, int64_t n) { return _mm256_maskload_ps(p, vf_tailmask(n)); }
TG_INL void vf_store(float *p, VF v) { _mm256_storeu_ps(p, v); }
TG_INL void vf_storen(float *p, VF v, int64_t n) { _mm256_maskstore_ps(p, vf_tailmask(n), v); }
TG_INL VF vf_set1(float x) { return _mm256_set1_ps(x); }
TG_INL VF vf_add(VF a, VF b) { return _mm256_add_ps(a, b); }
TG_INL VF vf_sub(VF a, VF b) { return _mm256_sub_ps(a, b); }
TG_INL VF vf_mul(VF a, VF b) { return _mm256_mul_ps(a, b); }
TG_INL VF vf_div(VF a, VF b) { return _mm256_div_ps(a, b); }
TG_INL VF vf_sqrt(VF a) { return _mm256_sqrt_ps(a); }
TG_INL VF vf_fmadd(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
TG_INL VF vf_round(VF a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
TG_INL VF vf_max(VF a, VF b) { return _mm256_max_ps(a, b); }
TG_INL VF vf_min(VF a, VF b) { return _mm256_min_ps(a, b); }
TG_INL VF vf_and(VF a, VF b) { return _mm256_and_ps(a, b); }
TG_INL VF vf_xor(VF a, VF b) { return _mm256_xor_ps(a, b); }
TG_INL VF vf_andnot(VF a, VF b) { return _mm256_andnot_ps(a, b); }
TG_INL VFM vf_cmplt(VF a, VF b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
TG_INL VFM vf_cmpgt(VF a, VF b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
TG_INL VFM vf_cmpeq(VF a, VF b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
TG_INL VFM vf_cmpunord(VF a, VF b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
TG_INL VFM vf_lanemask(int64_t n) { return _mm256_castsi256_ps(vf_tailmask(n)); }
TG_INL VF vf_sel(VFM m, VF t, VF f) { return _mm256_blendv_ps(f, t, m); }
/* y * 2^n in two steps of 2^(n/2), so each factor is a normal float for n in
 * [-150, 128] and the product rounds once into the subnormals. */
TG_INL VF vf_ldexp(VF y, VF n)
{
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    VF p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    VF p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
}
/* musl's reduction: the exponent is taken after shifting the mantissa range to
 * [sqrt(1/2), sqrt(2)); subnormals are scaled by 2^25 first. */
TG_INL VF vf_frexp(VF x, VF *e)
{
    VFM tiny = _mm256_cmp_ps(x, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    x = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(0x1p25f)), tiny);
    VF kb = _mm256_and_ps(tiny, _mm256_set1_ps(-25.0f));
    __m256i ix = _mm256_add_epi32(_mm256_castps_si256(x), _mm256_set1_epi32(0x3f800000 - 0x3f3504f3));
    __m256i k = _mm256_sub_epi32(_mm256_srai_epi32(ix, 23), _mm256_set1_epi32(0x7f));
    ix = _mm256_add_epi32(_mm256_and_si256(ix, _mm256_set1_epi32(0x007fffff)),
                          _mm256_set1_epi32(0x3f3504f3));
    *e = _mm256_add_ps(_mm256_cvtepi32_ps(k), kb);
    return _mm256_castsi256_ps(ix);
}

/* ---------------------------------------------------------------- f64 API */

typedef __m256d VD;
typedef __m256d VDM;

TG_INL __m256i vd_tailmask(int64_t n) { return _mm256_loadu_si256((const __m256i *)(tg_mask64 + 4 - n)); }
TG_INL VD vd_load(const double *p) { return _mm256_loadu_pd(p); }
TG_INL VD vd_loadn(const double *p, int64_t n) { return _mm256_maskload_pd(p, vd_tailmask(n)); }
TG_INL void vd_store(double *p, VD v) { _mm256_storeu_pd(p, v); }
TG_INL void vd_storen(double *p, VD v, int64_t n) { _mm256_maskstore_pd(p, vd_tailmask(n), v); }
TG_INL VD vd_set1(double x) { return _mm256_set1_pd(x); }
TG_INL VD vd_add(VD a, VD b) { return _mm256_add_pd(a, b); }
TG_INL VD vd_sub(VD a, VD b) { return _mm256_sub_pd(a, b); }
TG_INL VD vd_mul(VD a, VD b) { return _mm256_mul_pd(a, b); }
TG_INL VD vd_div(VD a, VD b) { return _mm256_div_pd(a, b); }
TG_INL VD vd_sqrt(VD a) { return _mm256_sqrt_pd(a); }
TG_INL VD vd_fmadd(VD a, VD b, VD c) { return _mm256_fmadd_pd(a, b, c); }
TG_INL VD vd_round(VD a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
TG_INL VD vd_max(VD a, VD b) { return _mm256_max_pd(a, b); }
TG_INL VD vd_min(VD a, VD b) { return _mm256_min_pd(a, b); }
TG_INL VD vd_and(VD a, VD b) { return _mm256_and_pd(a, b); }
TG_INL VD vd_xor(VD a, VD b) { return _mm256_xor_pd(a, b); }
TG_INL VD vd_andnot(VD a, VD b) { return _mm256_andnot_pd(a, b); }
TG_INL VDM vd_cmplt(VD a, VD b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
TG_INL VDM vd_cmpgt(VD a, VD b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
TG_INL VDM vd_cmpeq(VD a, VD b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
TG_INL VDM vd_cmpunord(VD a, VD b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
TG_INL VDM vd_lanemask(int64_t n) { return _mm256_castsi256_pd(vd_tailmask(n)); }
TG_INL VD vd_sel(VDM m, VD t, VD f) { return _mm256_blendv_pd(f, t, m); }
/* 2^k for integral k in [-1022, 1023]: k + 2^52 + 1023 puts k + 1023 in the low
 * mantissa bits, and a shift by 52 moves them into the exponent field. */
TG_INL VD vd_pow2i(VD k)
{
    VD t = _mm256_add_pd(k, _mm256_set1_pd(0x1p52 + 1023.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52));
}
TG_INL VD vd_ldexp(VD y, VD n)
{
    VD n1 = _mm256_floor_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
    VD n2 = _mm256_sub_pd(n, n1);
    return _mm256_mul_pd(_mm256_mul_pd(y, vd_pow2i(n1)), vd_pow2i(n2));
}
TG_INL VD vd_frexp(VD x, VD *e)
{
    VDM tiny = _mm256_cmp_pd(x, _mm256_set1_pd(0x1p-1022), _CMP_LT_OQ);
    x = _mm256_blendv_pd(x, _mm256_mul_pd(x, _mm256_set1_pd(0x1p54)), tiny);
    VD kb = _mm256_and_pd(tiny, _mm256_set1_pd(-54.0));
    __m256i ix = _mm256_add_epi64(_mm256_castpd_si256(x),
                                  _mm256_set1_epi64x((int64_t)(0x3ff00000 - 0x3fe6a09e) << 32));
    VD k = _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(ix, 52),
                                               _mm256_set1_epi64x(0x4330000000000000)));
    k = _mm256_sub_pd(k, _mm256_set1_pd(0x1p52 + 1023.0));
    ix = _mm256_add_epi64(_mm256_and_si256(ix, _mm256_set1_epi64x(0x000fffffffffffff)),
                          _mm256_set1_epi64x((int64_t)0x3fe6a09e << 32));
    *e = _mm256_add_pd(k, kb);
    return _mm256_castsi256_pd(ix);
}
TG_INL double vd_hsum(VD v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
TG_INL VD vd_cvt_lo(VF v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
TG_INL VD vd_cvt_hi(VF v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

/* ---------------------------------------------------------------- kernels */

#define T float
#define V VF
#define VM VFM
#define VN 8
#define FN(name) name##_f32
#define VOP(op) vf_##op
#define TG_TMPL_F64 0
#include "lib/cpu/simd/simd_x86_tmpl.h"
#undef T
#undef V
#undef VM
#undef VN
#undef FN
#undef VOP
#undef TG_TMPL_F64

#define T double
#define V VD
#define VM VDM
#define VN 4
#define FN(name) name##_f64
#define VOP(op) vd_##op
#define TG_TMPL_F64 1
#include "lib/cpu/simd/simd_x86_tmpl.h"

void tg_simd_fill_avx2(tg_simd_table *t)
{
    t->name = "avx2";
    fill_f32(t);
    fill_f64(t);
}
