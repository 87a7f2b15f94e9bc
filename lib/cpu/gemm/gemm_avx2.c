/* AVX2 + FMA GEMM micro-kernels: f32 6 x 16 and f64 6 x 8 tiles (two ymm per row of C,
 * 12 accumulators of the 16 registers), the small-problem kernels, and their blocking.
 * Built with -mavx2 -mfma (meson.build). */
#include <immintrin.h>

#include "lib/cpu/gemm/gemm_kernels.h"

/* The first n lanes set, for maskload/maskstore. */
static const int32_t tg_gemm_mask32[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
static const int64_t tg_gemm_mask64[8] = { -1, -1, -1, -1, 0, 0, 0, 0 };
#define MASK32(n) _mm256_loadu_si256((const __m256i *)(tg_gemm_mask32 + 8 - (n)))
#define MASK64(n) _mm256_loadu_si256((const __m256i *)(tg_gemm_mask64 + 4 - (n)))

#define T float
#define V __m256
#define VL 8
#define VLOAD(p) _mm256_load_ps(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VLOADN(p, n) _mm256_maskload_ps(p, MASK32(n))
#define VSTOREN(p, v, n) _mm256_maskstore_ps(p, MASK32(n), v)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VZERO() _mm256_setzero_ps()
#define MR 6
#define NAME ukr_f32_6x16
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef NAME
#define NAME small_f32
#include "lib/cpu/gemm/gemm_small_tmpl.h"
#undef NAME
#undef MR
#undef T
#undef V
#undef VL
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VLOADN
#undef VSTOREN
#undef VSET1
#undef VFMA
#undef VADD
#undef VZERO

#define T double
#define V __m256d
#define VL 4
#define VLOAD(p) _mm256_load_pd(p)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VLOADN(p, n) _mm256_maskload_pd(p, MASK64(n))
#define VSTOREN(p, v, n) _mm256_maskstore_pd(p, MASK64(n), v)
#define VSET1(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VZERO() _mm256_setzero_pd()
#define MR 6
#define NAME ukr_f64_6x8
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef NAME
#define NAME small_f64
#include "lib/cpu/gemm/gemm_small_tmpl.h"

void tg_gemm_fill_avx2(tg_gemm_kernels *k)
{
    k->name = "avx2";
    k->f32.mr = 6;
    k->f32.nr = 16;
    k->f32.kc = 256;
    k->f32.mc = 6 * 32;
    k->f32.nc = 512;
    k->f32.ukr = ukr_f32_6x16;
    k->f32.small = small_f32;
    k->f64.mr = 6;
    k->f64.nr = 8;
    k->f64.kc = 256;
    k->f64.mc = 6 * 32;
    k->f64.nc = 256;
    k->f64.ukr = ukr_f64_6x8;
    k->f64.small = small_f64;
}
