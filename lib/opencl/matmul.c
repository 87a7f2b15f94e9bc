/* OpenCL matmul: a (..., M, K) @ b (..., K, N) -> out (..., M, N), out dense. With
 * CLBlast, an operand goes to GEMM as it is when BLAS can name its layout: one of its
 * two matrix strides is 1 and the other a leading dimension, and its batch axes step by
 * one uniform stride (0 included); otherwise it is first copied to a dense temporary.
 * Batches of one use Xgemm, larger ones XgemmStridedBatched. Without CLBlast, on a
 * device that is not a GPU (PoCL on the host, where CLBlast first compiles its GEMM
 * for tens of seconds, while the built-in kernels compile in under one and run at a
 * third to half its speed), or when TG_CL_GEMM=tiled or a test forces it, the kernels
 * of kernels/gemm.cl take any strides directly: the direct kernel for products up to
 * 512^3, the tiled one above. TG_CL_GEMM=clblast makes every device use CLBlast. */
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

#ifdef TG_HAVE_CLBLAST
#include <clblast_c.h>
#endif

/* The stride that steps t's batch axes (the first nb) in row-major order, if one does. */
static bool uniform_batch(const tg_tensor *t, int nb, int64_t *stride) {
    int64_t span = 0;
    bool first = true;
    *stride = 0;
    for (int i = nb - 1; i >= 0; i--) {
        if (t->shape[i] == 1) continue;
        if (first) *stride = t->strides[i];
        else if (t->strides[i] != span) return false;
        span = t->strides[i] * t->shape[i];
        first = false;
    }
    return true;
}

/* Operands whose layout the GEMM cannot read are copied densely into the device's
 * scratch memory (tg_scratch: no buffer made per call; the in-order queue runs the GEMM
 * before any later use of the scratch). view describes the copy, over storage st. */
static tg_status dense_in_scratch(tg_cl_device *d, const tg_tensor *t, void *mem, int64_t elem_off, tg_storage *st,
                                  tg_tensor *view) {
    *st = (tg_storage){ .dev = t->storage->dev, .data = mem };
    atomic_init(&st->refcount, 1);
    *view = *t;
    view->storage = st;
    view->offset = elem_off;
    tg_contiguous_strides(view->ndim, view->shape, view->strides);
    (void)d;
    return tg_cl_copy(view, t);
}

/* The direct kernel up to this many multiply-adds per matrix (512^3), the tiled one
 * above: on PoCL the two run alike up to here, and the direct one compiles in ~0.07 s
 * where the tiled takes ~0.3 s (measured on 2 cores), which a first result waits for. */
#define DIRECT_MAX_MACS ((int64_t)1 << 27)

static tg_status own_gemm(tg_cl_device *d, tg_tensor *out, const tg_tensor *a, int64_t abs, const tg_tensor *b,
                          int64_t bbs, int64_t batch) {
    int nd = out->ndim;
    cl_long M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    bool tiled = tg_cl_force_gemm == 1 || (tg_cl_force_gemm != 3 && M * N > DIRECT_MAX_MACS / K);
    cl_kernel k = tg_cl_kernel(d, out->dtype, tiled ? TG_K_GEMM : TG_K_GEMM_DIRECT);
    if (!k) return tg_last_status();
    cl_long sam = a->strides[nd - 2], sak = a->strides[nd - 1], sbk = b->strides[nd - 2], sbn = b->strides[nd - 1];
    cl_long scm = out->strides[nd - 2], scn = out->strides[nd - 1], cbs = M * N, ab = abs, bb = bbs;
    cl_mem am = tg_cl_mem(a), bm = tg_cl_mem(b), cm = tg_cl_mem(out);
    cl_long ao = a->offset, bo = b->offset, co = out->offset;
    /* Each item computes 4 x 4 outputs; a tiled group covers ts x ts, a direct one
     * gemm_l x 4 gemm_l (its columns are strided by the grid's width). */
    size_t l = (size_t)d->gemm_l, local[3] = { l, l, 1 };
    size_t tn = tiled ? 4 * l : l, cols = tiled ? (size_t)N : ((size_t)N + 3) / 4;
    size_t global[3] = { (cols + tn - 1) / tn * l, ((size_t)M + 4 * l - 1) / (4 * l) * l, (size_t)batch };
    return tg_cl_launch(d, k, tiled ? "tg_gemm" : "tg_gemm_direct",
                        TG_CL_ARGS(TG_CL_ARG(M), TG_CL_ARG(N), TG_CL_ARG(K), TG_CL_ARG(am), TG_CL_ARG(ao),
                                   TG_CL_ARG(sam), TG_CL_ARG(sak), TG_CL_ARG(ab), TG_CL_ARG(bm), TG_CL_ARG(bo),
                                   TG_CL_ARG(sbk), TG_CL_ARG(sbn), TG_CL_ARG(bb), TG_CL_ARG(cm), TG_CL_ARG(co),
                                   TG_CL_ARG(scm), TG_CL_ARG(scn), TG_CL_ARG(cbs)),
                        3, global, local);
}

#ifdef TG_HAVE_CLBLAST
static const char *clblast_name(CLBlastStatusCode s) {
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidVectorX: return "CLBlastInvalidVectorX";
    case CLBlastInvalidVectorY: return "CLBlastInvalidVectorY";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInvalidIncrementX: return "CLBlastInvalidIncrementX";
    case CLBlastInvalidIncrementY: return "CLBlastInvalidIncrementY";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryX: return "CLBlastInsufficientMemoryX";
    case CLBlastInsufficientMemoryY: return "CLBlastInsufficientMemoryY";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "CLBlastNoDoublePrecision";
    case CLBlastInvalidVectorScalar: return "CLBlastInvalidVectorScalar";
    case CLBlastInsufficientMemoryScalar: return "CLBlastInsufficientMemoryScalar";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return tg_cl_errname((cl_int)s); /* the rest are OpenCL's codes */
    }
}

/* How BLAS sees one (rows, cols) matrix of t: trans and leading dimension. */
static bool blas_layout(const tg_tensor *t, int64_t rows, int64_t cols, CLBlastTranspose *tr, size_t *ld) {
    int nd = t->ndim;
    int64_t sr = t->strides[nd - 2], sc = t->strides[nd - 1];
    if ((cols == 1 || sc == 1) && (rows == 1 || sr >= cols)) {
        *tr = CLBlastTransposeNo;
        *ld = (size_t)(rows == 1 || sr < 1 ? (cols > 1 ? cols : 1) : sr);
        return true;
    }
    if ((rows == 1 || sr == 1) && (cols == 1 || sc >= rows)) {
        *tr = CLBlastTransposeYes;
        *ld = (size_t)(cols == 1 || sc < 1 ? (rows > 1 ? rows : 1) : sc);
        return true;
    }
    return false;
}

static tg_status clblast_gemm(tg_cl_device *d, tg_tensor *out, const tg_tensor *a, int64_t abs,
                              const tg_tensor *b, int64_t bbs, int64_t batch) {
    int nd = out->ndim;
    size_t M = (size_t)out->shape[nd - 2], N = (size_t)out->shape[nd - 1], K = (size_t)a->shape[nd - 1];
    CLBlastTranspose ta, tb;
    size_t lda, ldb;
    TG_ASSERT(blas_layout(a, (int64_t)M, (int64_t)K, &ta, &lda) && blas_layout(b, (int64_t)K, (int64_t)N, &tb, &ldb));
    cl_mem am = tg_cl_mem(a), bm = tg_cl_mem(b), cm = tg_cl_mem(out);
    size_t ao = (size_t)a->offset, bo = (size_t)b->offset, co = (size_t)out->offset;
    CLBlastStatusCode s;
    pthread_mutex_lock(&d->lock);
    if (out->dtype == TG_F32 && batch == 1)
        s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, M, N, K, 1.0f, am, ao, lda, bm, bo, ldb, 0.0f, cm, co, N,
                         &d->queue, NULL);
    else if (out->dtype == TG_F32)
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, M, N, K, 1.0f, am, ao, lda, (size_t)abs, bm, bo,
                                       ldb, (size_t)bbs, 0.0f, cm, co, N, M * N, (size_t)batch, &d->queue, NULL);
    else if (batch == 1)
        s = CLBlastDgemm(CLBlastLayoutRowMajor, ta, tb, M, N, K, 1.0, am, ao, lda, bm, bo, ldb, 0.0, cm, co, N,
                         &d->queue, NULL);
    else
        s = CLBlastDgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, M, N, K, 1.0, am, ao, lda, (size_t)abs, bm, bo,
                                       ldb, (size_t)bbs, 0.0, cm, co, N, M * N, (size_t)batch, &d->queue, NULL);
    pthread_mutex_unlock(&d->lock);
    if (s == CLBlastSuccess) return TG_OK;
    bool nomem = s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfHostMemory;
    return tg_error(nomem ? TG_ERR_NOMEM : TG_ERR_BACKEND, "tg_matmul: %s (%s): CLBlast %s failed: %s", d->id,
                    d->name, batch == 1 ? "gemm" : "gemm_strided_batched", clblast_name(s));
}
#endif

tg_status tg_cl_matmul(tg_tensor *out, const tg_tensor *a, const tg_tensor *b) {
    tg_cl_device *d = tg_cl_of(out);
    if (out->dtype == TG_F64 && !d->fp64) return tg_cl_no_fp64(d, "tg_matmul");
    int nd = out->ndim, nb = nd - 2;
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    int64_t batch = tg_shape_numel(nb, out->shape);
    if (batch == 0 || M == 0 || N == 0) return TG_OK;
    if (K == 0) return tg_cl_fill(out, 0);
    const tg_tensor *ops[2] = { a, b };
    tg_tensor dense[2];
    tg_storage stor[2];
    int64_t bs[2];
    const char *env = getenv("TG_CL_GEMM");
    bool blas = tg_cl_force_gemm ? tg_cl_force_gemm == 2
                : env && strcmp(env, "tiled") == 0 ? false
                : env && strcmp(env, "clblast") == 0 ? true
                : d->is_gpu;
#ifndef TG_HAVE_CLBLAST
    blas = false;
#endif
    tg_status st = TG_OK;
    bool copy[2] = { false, false };
    for (int i = 0; i < 2; i++) {
        bool ok = uniform_batch(ops[i], nb, &bs[i]);
#ifdef TG_HAVE_CLBLAST
        CLBlastTranspose tr;
        size_t ld;
        int64_t rows = ops[i]->shape[nd - 2], cols = ops[i]->shape[nd - 1];
        if (blas) ok = ok && bs[i] >= 0 && blas_layout(ops[i], rows, cols, &tr, &ld);
#endif
        copy[i] = !ok;
    }
    if (copy[0] || copy[1]) {
        size_t es = tg_elsize(out->dtype), n0 = copy[0] ? (size_t)tg_shape_numel(nd, a->shape) : 0;
        size_t n1 = copy[1] ? (size_t)tg_shape_numel(nd, b->shape) : 0, n0_aligned = (n0 + 15) / 16 * 16;
        void *mem;
        st = tg_scratch(out->storage->dev, (n0_aligned + n1) * es, &mem);
        for (int i = 0; i < 2 && st == TG_OK; i++) {
            if (!copy[i]) continue;
            st = dense_in_scratch(d, ops[i], mem, i == 0 ? 0 : (int64_t)n0_aligned, &stor[i], &dense[i]);
            ops[i] = &dense[i];
            bs[i] = ops[i]->shape[nd - 2] * ops[i]->shape[nd - 1];
        }
    }
#ifdef TG_HAVE_CLBLAST
    if (st == TG_OK && blas) st = clblast_gemm(d, out, ops[0], bs[0], ops[1], bs[1], batch);
#endif
    if (st == TG_OK && !blas) st = own_gemm(d, out, ops[0], bs[0], ops[1], bs[1], batch);
    return st;
}
