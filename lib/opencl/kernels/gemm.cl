/* A tiled GEMM for any strides: the path when CLBlast is absent (or forced by tests).
 * c[b] (M, N) = a[b] (M, K) @ b[b] (K, N) for batch b = get_global_id(2), with batch
 * strides abs, bbs, cbs. A work-group of TG_GL x TG_GL items computes a tile of
 * TS x TS outputs (TS = 4 TG_GL), each item a 4 x 4 block, stepping K by 16. */
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
