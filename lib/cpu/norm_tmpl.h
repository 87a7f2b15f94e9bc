/* The fast normalisation kernels for one dtype T (float or double), included by norm.c
 * with T and SFX defined. Sums run in double over 8 independent lanes (which the
 * compiler vectorises without reassociating); elementwise passes run in T. */

/* s1 += sum(x - K), s2 += sum((x - K)^2) over n elements: shifting by a sample of the
 * data keeps the one-pass variance accurate. */
TG_NORM_CLONES static void SFX(shifted_sums)(const T *x, int64_t n, double K, double *s1, double *s2) {
    double a[8] = { 0 }, b[8] = { 0 }, s = 0, q = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double d = (double)x[i + j] - K;
            a[j] += d;
            b[j] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)x[i] - K;
        s += d;
        q += d * d;
    }
    for (int j = 0; j < 8; j++) {
        s += a[j];
        q += b[j];
    }
    *s1 += s;
    *s2 += q;
}

/* sg += sum(g), sgx += sum(g * (x - m)) over n elements. */
TG_NORM_CLONES static void SFX(grad_sums)(const T *g, const T *x, int64_t n, double m, double *sg, double *sgx) {
    double a[8] = { 0 }, b[8] = { 0 }, s = 0, q = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            a[j] += (double)g[i + j];
            b[j] += (double)g[i + j] * ((double)x[i + j] - m);
        }
    for (; i < n; i++) {
        s += (double)g[i];
        q += (double)g[i] * ((double)x[i] - m);
    }
    for (int j = 0; j < 8; j++) {
        s += a[j];
        q += b[j];
    }
    *sg += s;
    *sgx += q;
}

/* Mean and biased variance from shifted sums of cnt elements. */
static inline void SFX(moments)(double K, double s1, double s2, double cnt, double *mean, double *var) {
    double m = s1 / cnt, v = s2 / cnt - m * m;
    *mean = K + m;
    *var = v > 0 ? v : 0;
}

/* ------------------------------------------------------------------ batch norm */

typedef struct {
    const T *x, *g;      /* x, and dout for the backward sums */
    int64_t N, C, S;
    const double *mean;  /* backward: the channel means; row mode: expanded per position */
    double *s1, *s2;     /* channel mode: per channel; row mode: NORM_BLOCKS x (CS, CS) partials */
    const double *kpos;  /* row mode forward: each position's shift (its channel's first value) */
    int64_t nb;          /* row mode: blocks */
} SFX(bn_sums_ctx);

/* Channel mode: channel c's planes; forward statistics or backward sums. */
static void SFX(bn_chan_task)(void *vc, int64_t c0, int64_t c1) {
    SFX(bn_sums_ctx) *k = vc;
    for (int64_t c = c0; c < c1; c++) {
        double a = 0, b = 0, K = k->g ? k->mean[c] : k->N && k->S ? (double)k->x[c * k->S] : 0;
        for (int64_t n = 0; n < k->N; n++) {
            int64_t off = (n * k->C + c) * k->S;
            if (k->g) SFX(grad_sums)(k->g + off, k->x + off, k->S, K, &a, &b);
            else SFX(shifted_sums)(k->x + off, k->S, K, &a, &b);
        }
        k->s1[c] = a;
        k->s2[c] = b;
    }
}

/* Row mode: block b's rows into its partials, position by position. */
TG_NORM_CLONES static void SFX(bn_row_task)(void *vc, int64_t b0, int64_t b1) {
    SFX(bn_sums_ctx) *k = vc;
    int64_t CS = k->C * k->S;
    for (int64_t b = b0; b < b1; b++) {
        double *p1 = k->s1 + b * 2 * CS, *p2 = p1 + CS;
        const double *sh = k->g ? k->mean : k->kpos;
        memset(p1, 0, (size_t)(2 * CS) * sizeof *p1);
        for (int64_t r = b * k->N / k->nb; r < (b + 1) * k->N / k->nb; r++) {
            const T *x = k->x + r * CS, *g = k->g ? k->g + r * CS : NULL;
            if (g)
                for (int64_t j = 0; j < CS; j++) {
                    p1[j] += (double)g[j];
                    p2[j] += (double)g[j] * ((double)x[j] - sh[j]);
                }
            else
                for (int64_t j = 0; j < CS; j++) {
                    double d = (double)x[j] - sh[j];
                    p1[j] += d;
                    p2[j] += d * d;
                }
        }
    }
}

/* Per-channel sums (a, b) of either kind, by channels or by row blocks. part: scratch
 * of 2 * NORM_BLOCKS * CS doubles for row mode. */
static void SFX(bn_sums)(SFX(bn_sums_ctx) *k, double *part, double *a, double *b) {
    int64_t CS = k->C * k->S, M = k->N * k->S;
    if (k->S >= ROW_MODE_S || k->N == 0) {
        k->s1 = a;
        k->s2 = b;
        tg_pool_parallel_for(k->C, grain_for(M), SFX(bn_chan_task), k);
        return;
    }
    k->nb = k->N < NORM_BLOCKS ? k->N : NORM_BLOCKS;
    k->s1 = part;
    tg_pool_parallel_for(k->nb, grain_for(k->N / k->nb * CS), SFX(bn_row_task), k);
    for (int64_t c = 0; c < k->C; c++) {
        double s = 0, q = 0;
        for (int64_t blk = 0; blk < k->nb; blk++)
            for (int64_t i = 0; i < k->S; i++) {
                s += part[blk * 2 * CS + c * k->S + i];
                q += part[blk * 2 * CS + CS + c * k->S + i];
            }
        a[c] = s;
        b[c] = q;
    }
}

/* y = (x - m) * s + t, or dx = s * g - t * (x - m) + u: coefficients per channel
 * (S >= ROW_MODE_S, by plane) or expanded per position (row mode, by row). */
typedef struct {
    const T *x, *g;
    T *y;
    int64_t C, S;
    const T *m, *s, *t, *u;
    bool rows;
} SFX(bn_apply_ctx);

TG_NORM_CLONES static void SFX(bn_apply_task)(void *vc, int64_t i0, int64_t i1) {
    SFX(bn_apply_ctx) *k = vc;
    int64_t len = k->rows ? k->C * k->S : k->S;
    for (int64_t i = i0; i < i1; i++) {
        const T *x = k->x + i * len, *g = k->g ? k->g + i * len : NULL;
        T *y = k->y + i * len;
        if (k->rows) {
            if (g)
                for (int64_t j = 0; j < len; j++) y[j] = k->s[j] * g[j] - k->t[j] * (x[j] - k->m[j]) + k->u[j];
            else
                for (int64_t j = 0; j < len; j++) y[j] = (x[j] - k->m[j]) * k->s[j] + k->t[j];
        } else {
            int64_t c = i % k->C;
            T m = k->m[c], s = k->s[c], t = k->t[c];
            if (g) {
                T u = k->u[c];
                for (int64_t j = 0; j < len; j++) y[j] = s * g[j] - t * (x[j] - m) + u;
            } else
                for (int64_t j = 0; j < len; j++) y[j] = (x[j] - m) * s + t;
        }
    }
}

/* Runs the apply pass; coefficients are in coef (4 arrays of C T's, per channel) and
 * are expanded per position into coef + 4 * C for row mode. */
static void SFX(bn_apply)(SFX(bn_apply_ctx) *k, int64_t N, T *coef) {
    int64_t C = k->C, S = k->S, CS = C * S;
    k->rows = S < ROW_MODE_S;
    k->m = coef;
    k->s = coef + C;
    k->t = coef + 2 * C;
    k->u = coef + 3 * C;
    if (k->rows) {
        T *e = coef + 4 * C;
        for (int a = 0; a < 4; a++)
            for (int64_t j = 0; j < CS; j++) e[a * CS + j] = coef[a * C + j / S];
        k->m = e;
        k->s = e + CS;
        k->t = e + 2 * CS;
        k->u = e + 3 * CS;
        tg_pool_parallel_for(N, grain_for(CS), SFX(bn_apply_task), k);
    } else
        tg_pool_parallel_for(N * C, grain_for(S), SFX(bn_apply_task), k);
}

/* Scratch: 2C sums, CS shifts or means, the row partials, and the coefficients. */
static int64_t SFX(bn_scratch_len)(const tg_norm_params *p) {
    int64_t CS = p->C * p->S;
    return 2 * p->C + CS + 2 * NORM_BLOCKS * CS + (4 * p->C + 4 * CS) * (int64_t)sizeof(T) / 8 + 8;
}

static tg_status SFX(bn_fwd)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *rm,
                             tg_tensor *rv, const tg_tensor *x, const tg_tensor *weight, const tg_tensor *bias,
                             const tg_norm_params *p) {
    int64_t C = p->C, S = p->S, CS = C * S;
    double M = (double)(p->N * S), *a, *buf;
    tg_status st = scratch_d(x, SFX(bn_scratch_len)(p), &buf);
    if (st != TG_OK) return st;
    a = buf;
    double *b = a + C, *kpos = b + C, *part = kpos + CS;
    T *coef = (T *)(part + 2 * NORM_BLOCKS * CS);
    const T *xp = (const T *)tg_cpu_ptr(x);
    if (p->training) {
        for (int64_t j = 0; j < CS && p->N > 0; j++) kpos[j] = (double)xp[(j / S) * S];
        SFX(bn_sums_ctx) k = { .x = xp, .N = p->N, .C = C, .S = S, .kpos = kpos };
        SFX(bn_sums)(&k, part, a, b);
    }
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (p->training) {
            SFX(moments)(p->N && S ? (double)xp[c * S] : 0, a[c], b[c], M, &mean, &var);
            if (rm) vset(rm, c, (1 - p->momentum) * vget(rm, c, 0) + p->momentum * mean);
            if (rv) vset(rv, c, (1 - p->momentum) * vget(rv, c, 0) + p->momentum * var * M / (M - 1));
        } else {
            mean = vget(rm, c, 0);
            var = vget(rv, c, 1);
        }
        double invstd = 1 / sqrt(var + p->eps);
        vset(save_mean, c, mean);
        vset(save_invstd, c, invstd);
        coef[c] = (T)mean;
        coef[C + c] = (T)(invstd * vget(weight, c, 1));
        coef[2 * C + c] = (T)vget(bias, c, 0);
        coef[3 * C + c] = 0;
    }
    SFX(bn_apply_ctx) k = { .x = xp, .y = (T *)tg_cpu_ptr(out), .C = C, .S = S };
    SFX(bn_apply)(&k, p->N, coef);
    return TG_OK;
}

static tg_status SFX(bn_bwd)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                             const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                             const tg_tensor *save_invstd, const tg_norm_params *p) {
    int64_t C = p->C, S = p->S, CS = C * S;
    double M = (double)(p->N * S), *buf;
    tg_status st = scratch_d(x, SFX(bn_scratch_len)(p), &buf);
    if (st != TG_OK) return st;
    double *sg = buf, *sgx = sg + C, *mpos = sgx + C, *part = mpos + CS;
    T *coef = (T *)(part + 2 * NORM_BLOCKS * CS);
    const T *xp = (const T *)tg_cpu_ptr(x), *gp = (const T *)tg_cpu_ptr(dout);
    bool sums = p->training || dweight || dbias;
    if (sums) {
        double *cm = S >= ROW_MODE_S ? mpos : part; /* channel means, expanded per position in row mode */
        for (int64_t c = 0; c < C; c++) cm[c] = vget(save_mean, c, 0);
        if (S < ROW_MODE_S) {
            for (int64_t j = CS - 1; j >= 0; j--) mpos[j] = part[j / S];
        }
        SFX(bn_sums_ctx) k = { .x = xp, .g = gp, .N = p->N, .C = C, .S = S, .mean = mpos };
        SFX(bn_sums)(&k, part, sg, sgx);
    }
    for (int64_t c = 0; c < C; c++) {
        double invstd = vget(save_invstd, c, 1), s = vget(weight, c, 1) * invstd;
        if (sums) {
            vset(dweight, c, sgx[c] * invstd);
            vset(dbias, c, sg[c]);
        }
        coef[c] = (T)vget(save_mean, c, 0);
        coef[C + c] = (T)s;
        coef[2 * C + c] = (T)(p->training ? s * sgx[c] * invstd * invstd / M : 0);
        coef[3 * C + c] = (T)(p->training ? -s * sg[c] / M : 0);
    }
    if (!dx) return TG_OK;
    SFX(bn_apply_ctx) k = { .x = xp, .g = gp, .y = (T *)tg_cpu_ptr(dx), .C = C, .S = S };
    SFX(bn_apply)(&k, p->N, coef);
    return TG_OK;
}

/* ------------------------------------------------------------------ group and layer norm */

/* Group norm: group q = (n, g) is Cg * S contiguous elements; layer norm: row q is C. */
typedef struct {
    const T *x, *g;
    T *y;
    const tg_tensor *weight, *bias;
    const T *w, *b;      /* layer norm: dense weight and bias (or NULL) */
    T *mean, *invstd;    /* the saved statistics (dense) */
    double eps;
    int64_t C, S, G;
    double *ds, *db;     /* group norm backward: per (n, c) sums */
    double *part;        /* layer norm backward: NORM_BLOCKS x (dweight, dbias) partials */
    int64_t N, nb;
} SFX(gn_ctx);

static void SFX(gn_fwd_task)(void *vc, int64_t q0, int64_t q1) {
    SFX(gn_ctx) *k = vc;
    int64_t Cg = k->C / k->G, len = Cg * k->S;
    for (int64_t q = q0; q < q1; q++) {
        const T *x = k->x + q * len;
        T *y = k->y + q * len;
        double s1 = 0, s2 = 0, mean, var;
        SFX(shifted_sums)(x, len, len ? (double)x[0] : 0, &s1, &s2);
        SFX(moments)(len ? (double)x[0] : 0, s1, s2, (double)len, &mean, &var);
        double is = 1 / sqrt(var + k->eps);
        k->mean[q] = (T)mean;
        k->invstd[q] = (T)is;
        for (int64_t c = 0; c < Cg; c++) {
            int64_t ch = (q % k->G) * Cg + c;
            T m = (T)mean, s = (T)(is * vget(k->weight, ch, 1)), t = (T)vget(k->bias, ch, 0);
            for (int64_t j = c * k->S; j < (c + 1) * k->S; j++) y[j] = (x[j] - m) * s + t;
        }
    }
}

static void SFX(gn_bwd_task)(void *vc, int64_t q0, int64_t q1) {
    SFX(gn_ctx) *k = vc;
    int64_t Cg = k->C / k->G, len = Cg * k->S;
    double M = (double)len;
    for (int64_t q = q0; q < q1; q++) {
        const T *x = k->x + q * len, *g = k->g + q * len;
        double mean = (double)k->mean[q], is = (double)k->invstd[q], sgw = 0, sgwx = 0;
        int64_t c0 = (q % k->G) * Cg, n = q / k->G;
        for (int64_t c = 0; c < Cg; c++) {
            double a = 0, b = 0, w = vget(k->weight, c0 + c, 1);
            SFX(grad_sums)(g + c * k->S, x + c * k->S, k->S, mean, &a, &b);
            k->db[n * k->C + c0 + c] = a;
            k->ds[n * k->C + c0 + c] = b;
            sgw += w * a;
            sgwx += w * b * is;
        }
        if (!k->y) continue;
        T m = (T)mean, t = (T)(is * is * sgwx / M), u = (T)(-is * sgw / M);
        for (int64_t c = 0; c < Cg; c++) {
            T s = (T)(is * vget(k->weight, c0 + c, 1));
            T *dx = k->y + q * len;
            for (int64_t j = c * k->S; j < (c + 1) * k->S; j++) dx[j] = s * g[j] - t * (x[j] - m) + u;
        }
    }
}

static tg_status SFX(gn_fwd)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                             const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p) {
    SFX(gn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .y = (T *)tg_cpu_ptr(out), .weight = weight, .bias = bias,
                      .mean = (T *)tg_cpu_ptr(save_mean), .invstd = (T *)tg_cpu_ptr(save_invstd), .eps = p->eps,
                      .C = p->C, .S = p->S, .G = p->groups };
    tg_pool_parallel_for(p->N * p->groups, grain_for(p->C / p->groups * p->S), SFX(gn_fwd_task), &k);
    return TG_OK;
}

static tg_status SFX(gn_bwd)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                             const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                             const tg_tensor *save_invstd, const tg_norm_params *p) {
    double *buf;
    int64_t N = p->N, C = p->C, G = p->groups;
    tg_status st = scratch_d(x, 2 * N * C, &buf);
    if (st != TG_OK) return st;
    SFX(gn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .g = (const T *)tg_cpu_ptr(dout),
                      .y = dx ? (T *)tg_cpu_ptr(dx) : NULL, .weight = weight, .mean = (T *)tg_cpu_ptr(save_mean),
                      .invstd = (T *)tg_cpu_ptr(save_invstd), .C = C, .S = p->S, .G = G, .ds = buf,
                      .db = buf + N * C };
    tg_pool_parallel_for(N * G, grain_for(C / G * p->S), SFX(gn_bwd_task), &k);
    for (int64_t c = 0; c < C && (dweight || dbias); c++) {
        double w = 0, b = 0;
        for (int64_t n = 0; n < N; n++) {
            w += k.ds[n * C + c] * (double)k.invstd[n * G + c / (C / G)];
            b += k.db[n * C + c];
        }
        vset(dweight, c, w);
        vset(dbias, c, b);
    }
    return TG_OK;
}

/* Layer norm forward: group norm with one group per row and a per-element affine. */
static void SFX(ln_fwd_task)(void *vc, int64_t r0, int64_t r1) {
    SFX(gn_ctx) *k = vc;
    int64_t D = k->C;
    for (int64_t r = r0; r < r1; r++) {
        const T *x = k->x + r * D;
        T *y = k->y + r * D;
        double s1 = 0, s2 = 0, mean, var;
        SFX(shifted_sums)(x, D, D ? (double)x[0] : 0, &s1, &s2);
        SFX(moments)(D ? (double)x[0] : 0, s1, s2, (double)D, &mean, &var);
        double is = 1 / sqrt(var + k->eps);
        k->mean[r] = (T)mean;
        k->invstd[r] = (T)is;
        T m = (T)mean, s = (T)is;
        if (k->w && k->b)
            for (int64_t j = 0; j < D; j++) y[j] = (x[j] - m) * s * k->w[j] + k->b[j];
        else if (k->w)
            for (int64_t j = 0; j < D; j++) y[j] = (x[j] - m) * s * k->w[j];
        else if (k->b)
            for (int64_t j = 0; j < D; j++) y[j] = (x[j] - m) * s + k->b[j];
        else
            for (int64_t j = 0; j < D; j++) y[j] = (x[j] - m) * s;
    }
}

/* Layer norm backward, block by block of rows: dx row by row, and the block's
 * dweight and dbias partials (the column sums of g * xhat and g). */
static void SFX(ln_bwd_task)(void *vc, int64_t b0, int64_t b1) {
    SFX(gn_ctx) *k = vc;
    int64_t D = k->C;
    for (int64_t blk = b0; blk < b1; blk++) {
        double *pw = k->part ? k->part + blk * 2 * D : NULL, *pb = pw ? pw + D : NULL;
        if (pw) memset(pw, 0, (size_t)(2 * D) * sizeof *pw);
        for (int64_t r = blk * k->N / k->nb; r < (blk + 1) * k->N / k->nb; r++) {
            const T *x = k->x + r * D, *g = k->g + r * D;
            double mean = (double)k->mean[r], is = (double)k->invstd[r];
            double a[8] = { 0 }, b[8] = { 0 }, sgw = 0, sgwx = 0; /* sum(g w), sum(g w (x - mean)) */
            int64_t i = 0;
            for (; i + 8 <= D; i += 8)
                for (int j = 0; j < 8; j++) {
                    double gw = (double)g[i + j] * (k->w ? (double)k->w[i + j] : 1.0);
                    a[j] += gw;
                    b[j] += gw * ((double)x[i + j] - mean);
                }
            for (; i < D; i++) {
                double gw = (double)g[i] * (k->w ? (double)k->w[i] : 1.0);
                sgw += gw;
                sgwx += gw * ((double)x[i] - mean);
            }
            for (int j = 0; j < 8; j++) {
                sgw += a[j];
                sgwx += b[j];
            }
            if (pw)
                for (int64_t j = 0; j < D; j++) {
                    pw[j] += (double)g[j] * ((double)x[j] - mean) * is;
                    pb[j] += (double)g[j];
                }
            if (!k->y) continue;
            T *dx = k->y + r * D, m = (T)mean, s = (T)is, t = (T)(is * is * is * sgwx / (double)D),
              u = (T)(-is * sgw / (double)D);
            if (k->w)
                for (int64_t j = 0; j < D; j++) dx[j] = s * k->w[j] * g[j] - t * (x[j] - m) + u;
            else
                for (int64_t j = 0; j < D; j++) dx[j] = s * g[j] - t * (x[j] - m) + u;
        }
    }
}

static tg_status SFX(ln_fwd)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                             const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p) {
    SFX(gn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .y = (T *)tg_cpu_ptr(out),
                      .w = weight ? (const T *)tg_cpu_ptr(weight) : NULL, .b = bias ? (const T *)tg_cpu_ptr(bias) : NULL,
                      .mean = (T *)tg_cpu_ptr(save_mean), .invstd = (T *)tg_cpu_ptr(save_invstd), .eps = p->eps,
                      .C = p->C };
    tg_pool_parallel_for(p->N, grain_for(p->C), SFX(ln_fwd_task), &k);
    return TG_OK;
}

static tg_status SFX(ln_bwd)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                             const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                             const tg_tensor *save_invstd, const tg_norm_params *p) {
    int64_t N = p->N, D = p->C;
    SFX(gn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .g = (const T *)tg_cpu_ptr(dout),
                      .y = dx ? (T *)tg_cpu_ptr(dx) : NULL, .w = weight ? (const T *)tg_cpu_ptr(weight) : NULL,
                      .mean = (T *)tg_cpu_ptr(save_mean), .invstd = (T *)tg_cpu_ptr(save_invstd), .C = D, .N = N };
    bool sums = dweight || dbias;
    k.nb = sums ? (N < NORM_BLOCKS ? N : NORM_BLOCKS) : N; /* without sums, every row is a block */
    if (sums) {
        tg_status st = scratch_d(x, 2 * NORM_BLOCKS * D, &k.part);
        if (st != TG_OK) return st;
    }
    if (k.nb > 0) tg_pool_parallel_for(k.nb, grain_for(N / k.nb * D), SFX(ln_bwd_task), &k);
    for (int64_t j = 0; j < D && sums; j++) {
        double w = 0, b = 0;
        for (int64_t blk = 0; blk < k.nb; blk++) {
            w += k.part[blk * 2 * D + j];
            b += k.part[blk * 2 * D + D + j];
        }
        vset(dweight, j, w);
        vset(dbias, j, b);
    }
    return TG_OK;
}
