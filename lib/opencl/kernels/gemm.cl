/* GEMM for any strides: the path when CLBlast is absent (or forced by tests), in two
 * kernels. c[b] (M, N) = a[b] (M, K) @ b[b] (K, N) for batch b = get_global_id(2), with
 * batch strides abs, bbs, cbs; both take the same arguments.
 *
 * tg_gemm_direct, for products up to about 512^3 (matmul.c picks): each work-item
 * computes a 4 x 4 block of c straight from global memory, rows m0..m0+3 and columns
 * n0 + j * get_global_size(0) (so that neighbouring items read neighbouring columns). No
 * local memory, no barrier, and an uniform K loop (edge items clamp their reads and
 * skip their stores, never return early): a driver that runs work-groups as loops
 * (PoCL) vectorises it across items and compiles it in a fifth of the tiled kernel's
 * time, and it runs as fast as that one below 512^3.
 *
 * tg_gemm, tiled: a work-group of TG_GL x TG_GL items computes a tile of TS x TS
 * outputs (TS = 4 TG_GL) through local memory, each item a 4 x 4 block, stepping K by
 * 16; it reuses each operand load TS times, which pays from about 1024^3 on a CPU. */
#if T_FLOAT && defined(K_tg_gemm_direct)
__kernel void tg_gemm_direct(long M, long N, long K, __global const T *a, long ao, long sam, long sak, long abs,
                             __global const T *b, long bo, long sbk, long sbn, long bbs, __global T *c, long co,
                             long scm, long scn, long cbs) {
    long G = get_global_size(0), n0 = get_global_id(0), m0 = (long)get_global_id(1) * 4, batch = get_global_id(2);
    a += ao + batch * abs;
    b += bo + batch * bbs;
    c += co + batch * cbs;
    long ar[4], bc[4]; /* row and column offsets, clamped to the last row and column */
    for (int i = 0; i < 4; i++) ar[i] = min(m0 + i, M - 1) * sam;
    for (int j = 0; j < 4; j++) bc[j] = min(n0 + j * G, N - 1) * sbn;
    T acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    for (long k = 0; k < K; k++) {
        T av[4], bv[4];
        for (int i = 0; i < 4; i++) av[i] = a[ar[i] + k * sak];
        for (int j = 0; j < 4; j++) bv[j] = b[bc[j] + k * sbk];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            long m = m0 + i, n = n0 + j * G;
            if (m < M && n < N) c[m * scm + n * scn] = acc[i][j];
        }
}
#endif

#if T_FLOAT && defined(K_tg_gemm)

#define TS (4 * TG_GL)
#define TK 16

__kernel __attribute__((reqd_work_group_size(TG_GL, TG_GL, 1))) void
tg_gemm(long M, long N, long K, __global const T *a, long ao, long sam, long sak, long abs,
        __global const T *b, long bo, long sbk, long sbn, long bbs, __global T *c, long co, long scm, long scn,
        long cbs) {
    __local T la[TK][TS + 1];
    __local T lb[TK][TS + 1];
    int tx = get_local_id(0), ty = get_local_id(1);
    long n0 = (long)get_group_id(0) * TS, m0 = (long)get_group_id(1) * TS, batch = get_global_id(2);
    a += ao + batch * abs;
    b += bo + batch * bbs;
    c += co + batch * cbs;
    T acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    int tid = ty * TG_GL + tx, nthreads = TG_GL * TG_GL;
    for (long k0 = 0; k0 < K; k0 += TK) {
        for (int e = tid; e < TK * TS; e += nthreads) {
            int kk = e / TS, mm = e % TS; /* a: consecutive items walk m */
            long m = m0 + mm, k = k0 + kk;
            la[kk][mm] = m < M && k < K ? a[m * sam + k * sak] : (T)0;
            long nn = n0 + mm;
            lb[kk][mm] = nn < N && k < K ? b[k * sbk + nn * sbn] : (T)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            T av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = la[kk][ty + i * TG_GL];
            for (int j = 0; j < 4; j++) bv[j] = lb[kk][tx + j * TG_GL];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < 4; i++) {
        long m = m0 + ty + i * TG_GL;
        for (int j = 0; j < 4; j++) {
            long n = n0 + tx + j * TG_GL;
            if (m < M && n < N) c[m * scm + n * scn] = acc[i][j];
        }
    }
}

#endif
