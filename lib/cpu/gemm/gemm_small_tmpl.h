/* The unpacked kernel for small problems (see tg_gemm_small_f32): 4 rows x 2 vectors of
 * C at a time straight from A and B, no packing; partial vectors use masked loads and
 * stores, and the rows past M repeat the last row (computed, never stored). Included by
 * the ISA files with T, V, VL, NAME and VLOADU, VLOADN(p, n), VSTOREU, VSTOREN(p, v, n),
 * VSET1, VFMA, VADD, VZERO defined. No include guard. */

static void NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,
                 const T *B, int64_t rsb, T *C, int64_t rsc, int accumulate)
{
    for (int64_t i0 = 0; i0 < M; i0 += 4) {
        int64_t rows = M - i0 < 4 ? M - i0 : 4;
        const T *a[4];
        for (int r = 0; r < 4; r++)
            a[r] = A + (i0 + (r < rows ? r : rows - 1)) * rsa;
        for (int64_t j0 = 0; j0 < N; j0 += 2 * VL) {
            int64_t n = N - j0 < 2 * VL ? N - j0 : 2 * VL;
            int64_t n0 = n < VL ? n : VL, n1 = n - n0;
            V x[4][2];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                x[r][0] = x[r][1] = VZERO();
            const T *b = B + j0;
            if (n == 2 * VL) {
                for (int64_t p = 0; p < K; p++, b += rsb) {
                    V b0 = VLOADU(b), b1 = VLOADU(b + VL);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        V ar = VSET1(a[r][p * csa]);
                        x[r][0] = VFMA(ar, b0, x[r][0]);
                        x[r][1] = VFMA(ar, b1, x[r][1]);
                    }
                }
            } else if (n1 > 0) {
                for (int64_t p = 0; p < K; p++, b += rsb) {
                    V b0 = VLOADU(b), b1 = VLOADN(b + VL, n1);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        V ar = VSET1(a[r][p * csa]);
                        x[r][0] = VFMA(ar, b0, x[r][0]);
                        x[r][1] = VFMA(ar, b1, x[r][1]);
                    }
                }
            } else { /* one vector: even and odd k in separate accumulators, for ILP */
                int64_t p = 0;
                for (; p + 2 <= K; p += 2, b += 2 * rsb) {
                    V b0 = VLOADN(b, n0), b1 = VLOADN(b + rsb, n0);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        x[r][0] = VFMA(VSET1(a[r][p * csa]), b0, x[r][0]);
                        x[r][1] = VFMA(VSET1(a[r][(p + 1) * csa]), b1, x[r][1]);
                    }
                }
                if (p < K) {
                    V b0 = VLOADN(b, n0);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++)
                        x[r][0] = VFMA(VSET1(a[r][p * csa]), b0, x[r][0]);
                }
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    x[r][0] = VADD(x[r][0], x[r][1]);
                    x[r][1] = VZERO();
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) { /* constant indices keep x in registers */
                if (r >= rows)
                    break;
                T *c = C + (i0 + r) * rsc + j0;
                if (accumulate) {
                    x[r][0] = VADD(x[r][0], VLOADN(c, n0));
                    if (n1 > 0)
                        x[r][1] = VADD(x[r][1], VLOADN(c + VL, n1));
                }
                VSTOREN(c, x[r][0], n0);
                if (n1 > 0)
                    VSTOREN(c + VL, x[r][1], n1);
            }
        }
    }
}
