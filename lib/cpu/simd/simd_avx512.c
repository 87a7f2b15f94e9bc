/* AVX-512 (F + DQ) kernels: the vector API of simd_x86_tmpl.h on 512-bit registers,
 * with mask registers for partial vectors, and scalef/getexp/getmant for exp and log.
 * Built with -mavx512f -mavx512dq -mavx2 -mfma (see meson.build); called only when
 * tg_simd() found AVX-512F and DQ. */
#include <immintrin.h>
#include <math.h>

#include "lib/cpu/simd/simd.h"

#define TG_INL static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- f32 API */

typedef __m512 VF;
typedef __mmask16 VFM;

TG_INL __mmask16 vf_tailmask(int64_t n) { return (__mmask16)((1u << n) - 1); }
TG_INL VF vf_load(const float *p) { return _mm512_loadu_ps(p); }
TG_INL VF vf_loadn(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(vf_tailmask(n), p); }
TG_INL void vf_store(float *p, VF v) { _mm512_storeu_ps(p, v); }
TG_INL void vf_storen(float *p, VF v, int64_t n) { _mm512_mask_storeu_ps(p, vf_tailmask(n), v); }
TG_INL VF vf_set1(float x) { return _mm512_set1_ps(x); }
TG_INL VF vf_add(VF a, VF b) { return _mm512_add_ps(a, b); }
TG_INL VF vf_sub(VF a, VF b) { return _mm512_sub_ps(a, b); }
TG_INL VF vf_mul(VF a, VF b) { return _mm512_mul_ps(a, b); }
TG_INL VF vf_div(VF a, VF b) { return _mm512_div_ps(a, b); }
TG_INL VF vf_sqrt(VF a) { return _mm512_sqrt_ps(a); }
TG_INL VF vf_fmadd(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
TG_INL VF vf_round(VF a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
TG_INL VF vf_max(VF a, VF b) { return _mm512_max_ps(a, b); }
TG_INL VF vf_min(VF a, VF b) { return _mm512_min_ps(a, b); }
TG_INL VF vf_and(VF a, VF b) { return _mm512_and_ps(a, b); }
TG_INL VF vf_xor(VF a, VF b) { return _mm512_xor_ps(a, b); }
TG_INL VF vf_andnot(VF a, VF b) { return _mm512_andnot_ps(a, b); }
TG_INL VFM vf_cmplt(VF a, VF b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
TG_INL VFM vf_cmpgt(VF a, VF b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
TG_INL VFM vf_cmpeq(VF a, VF b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
TG_INL VFM vf_cmpunord(VF a, VF b) { return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q); }
TG_INL VFM vf_lanemask(int64_t n) { return vf_tailmask(n); }
TG_INL VF vf_sel(VFM m, VF t, VF f) { return _mm512_mask_blend_ps(m, f, t); }
/* scalef saturates to 0 / inf and produces subnormals itself. */
TG_INL VF vf_ldexp(VF y, VF n) { return _mm512_scalef_ps(y, n); }
TG_INL VF vf_frexp(VF x, VF *e)
{
    VF m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    VF k = _mm512_getexp_ps(x);
    __mmask16 hi = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    *e = _mm512_mask_add_ps(k, hi, k, _mm512_set1_ps(1.0f));
    return _mm512_mask_mul_ps(m, hi, m, _mm512_set1_ps(0.5f));
}

/* ---------------------------------------------------------------- f64 API */

typedef __m512d VD;
typedef __mmask8 VDM;

TG_INL __mmask8 vd_tailmask(int64_t n) { return (__mmask8)((1u << n) - 1); }
TG_INL VD vd_load(const double *p) { return _mm512_loadu_pd(p); }
TG_INL VD vd_loadn(const double *p, int64_t n) { return _mm512_maskz_loadu_pd(vd_tailmask(n), p); }
TG_INL void vd_store(double *p, VD v) { _mm512_storeu_pd(p, v); }
TG_INL void vd_storen(double *p, VD v, int64_t n) { _mm512_mask_storeu_pd(p, vd_tailmask(n), v); }
TG_INL VD vd_set1(double x) { return _mm512_set1_pd(x); }
TG_INL VD vd_add(VD a, VD b) { return _mm512_add_pd(a, b); }
TG_INL VD vd_sub(VD a, VD b) { return _mm512_sub_pd(a, b); }
TG_INL VD vd_mul(VD a, VD b) { return _mm512_mul_pd(a, b); }
TG_INL VD vd_div(VD a, VD b) { return _mm512_div_pd(a, b); }
TG_INL VD vd_sqrt(VD a) { return _mm512_sqrt_pd(a); }
TG_INL VD vd_fmadd(VD a, VD b, VD c) { return _mm512_fmadd_pd(a, b, c); }
TG_INL VD vd_round(VD a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
TG_INL VD vd_max(VD a, VD b) { return _mm512_max_pd(a, b); }
TG_INL VD vd_min(VD a, VD b) { return _mm512_min_pd(a, b); }
TG_INL VD vd_and(VD a, VD b) { return _mm512_and_pd(a, b); }
TG_INL VD vd_xor(VD a, VD b) { return _mm512_xor_pd(a, b); }
TG_INL VD vd_andnot(VD a, VD b) { return _mm512_andnot_pd(a, b); }
TG_INL VDM vd_cmplt(VD a, VD b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
TG_INL VDM vd_cmpgt(VD a, VD b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
TG_INL VDM vd_cmpeq(VD a, VD b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
TG_INL VDM vd_cmpunord(VD a, VD b) { return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q); }
TG_INL VDM vd_lanemask(int64_t n) { return vd_tailmask(n); }
TG_INL VD vd_sel(VDM m, VD t, VD f) { return _mm512_mask_blend_pd(m, f, t); }
TG_INL VD vd_ldexp(VD y, VD n) { return _mm512_scalef_pd(y, n); }
TG_INL VD vd_frexp(VD x, VD *e)
{
    VD m = _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    VD k = _mm512_getexp_pd(x);
    __mmask8 hi = _mm512_cmp_pd_mask(m, _mm512_set1_pd(1.4142135623730951), _CMP_GT_OQ);
    *e = _mm512_mask_add_pd(k, hi, k, _mm512_set1_pd(1.0));
    return _mm512_mask_mul_pd(m, hi, m, _mm512_set1_pd(0.5));
}
TG_INL double vd_hsum(VD v) { return _mm512_reduce_add_pd(v); }
TG_INL VD vd_cvt_lo(VF v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
TG_INL VD vd_cvt_hi(VF v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }

/* ---------------------------------------------------------------- kernels */

#define T float
#define V VF
#define VM VFM
#define VN 16
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
#define VN 8
#define FN(name) name##_f64
#define VOP(op) vd_##op
#define TG_TMPL_F64 1
#include "lib/cpu/simd/simd_x86_tmpl.h"

void tg_simd_fill_avx512(tg_simd_table *t)
{
    t->name = "avx512";
    fill_f32(t);
    fill_f64(t);
    t->max_pool_2x2_f32 = tg_max_pool_2x2_avx512_f32;
    t->pool_rows_f32 = tg_pool_rows_avx512_f32;
}
