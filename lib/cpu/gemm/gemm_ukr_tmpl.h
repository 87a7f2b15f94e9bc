/* One register-blocked micro-kernel: an MR x (2 * VL) tile of C held in 2 * MR vector
 * registers; each step of k loads two vectors of packed B and broadcasts MR values of
 * packed A. ASTEP, if defined, is the packed A panel's height when it differs from MR
 * (the short kernels for the last rows read the first MR rows of a taller panel).
 * Included by the ISA files with T, V, VL, MR, NAME and the vector ops VLOAD
 * (aligned), VLOADU, VSTOREU, VSET1, VFMA(a, b, c) = a*b + c, VADD, VZERO defined; the
 * fixed-trip loops unroll fully, so the tile never leaves the registers.
 * No include guard: included once per kernel. */

#ifndef ASTEP
#define ASTEP MR
#define TG_UKR_ASTEP_DEFAULT
#endif

static void NAME(int64_t k, const T *a, const T *b, T *c, int64_t rsc, int accumulate)
{
    V x0[MR], x1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        x0[i] = VZERO();
        x1[i] = VZERO();
        _mm_prefetch((const char *)(c + i * rsc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * rsc + 2 * VL - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < k; p++) {
        V b0 = VLOAD(b), b1 = VLOAD(b + VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            V ai = VSET1(a[i]);
            x0[i] = VFMA(ai, b0, x0[i]);
            x1[i] = VFMA(ai, b1, x1[i]);
        }
        a += ASTEP;
        b += 2 * VL;
    }
    if (accumulate) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VSTOREU(c + i * rsc, VADD(x0[i], VLOADU(c + i * rsc)));
            VSTOREU(c + i * rsc + VL, VADD(x1[i], VLOADU(c + i * rsc + VL)));
        }
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VSTOREU(c + i * rsc, x0[i]);
            VSTOREU(c + i * rsc + VL, x1[i]);
        }
    }
}

#ifdef TG_UKR_ASTEP_DEFAULT
#undef ASTEP
#undef TG_UKR_ASTEP_DEFAULT
#endif
