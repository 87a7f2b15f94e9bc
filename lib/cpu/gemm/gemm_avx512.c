/* AVX-512 GEMM micro-kernels: f32 MR x 32 and f64 MR x 16 tiles (two zmm per row of C),
 * and the blocking tuned for them. Built with -mavx512f -mavx2 -mfma (meson.build). */
#include <immintrin.h>

#include "lib/cpu/gemm/gemm_kernels.h"

#define T float
#define V __m512
#define VL 16
#define VLOAD(p) _mm512_load_ps(p)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VZERO() _mm512_setzero_ps()
#define VLOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define MR 14
#define NAME ukr_f32_14x32
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
#define NAME small_f32
#include "lib/cpu/gemm/gemm_small_tmpl.h"
#undef NAME
#undef VLOADN
#undef VSTOREN
#undef T
#undef V
#undef VL
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VSET1
#undef VFMA
#undef VADD
#undef VZERO

#define T double
#define V __m512d
#define VL 8
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VSET1(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VZERO() _mm512_setzero_pd()
#define VLOADN(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p)
#define VSTOREN(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), v)
#define MR 14
#define NAME ukr_f64_14x16
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef NAME
#define NAME small_f64
#include "lib/cpu/gemm/gemm_small_tmpl.h"

void tg_gemm_fill_avx512(tg_gemm_kernels *k)
{
    k->name = "avx512";
    k->f32.mr = 14;
    k->f32.nr = 32;
    k->f32.kc = 256;
    k->f32.mc = 14 * 24;
    k->f32.nc = 512;
    k->f32.ukr = ukr_f32_14x32;
    k->f32.small = small_f32;
    k->f64.mr = 14;
    k->f64.nr = 16;
    k->f64.kc = 256;
    k->f64.mc = 14 * 24;
    k->f64.nc = 256;
    k->f64.ukr = ukr_f64_14x16;
    k->f64.small = small_f64;
}
