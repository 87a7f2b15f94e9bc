/* The fast normalisation kernels for one dtype T (float or double), included by norm.c
 * with T and SFX defined. The hot loops work on 64-byte vectors of T (GCC's vector
 * extension: one AVX-512 register, two AVX2 ones, four SSE2 ones; each lane's operations
 * are the same in every target clone, so every clone gives the same bits). Sums run in
 * runs of NORM_RUN vectors in T, and each run's lane sums are added in double: f32
 * converts to double once per NORM_RUN vectors instead of once per element, and a run's
 * f32 rounding (NORM_RUN - 1 additions a lane) stays near f32's own precision. */

typedef T SFX(vec) __attribute__((vector_size(64)));
#define VL ((int64_t)(64 / sizeof(T)))

/* Unaligned whole-vector load and store; the last n % VL elements of a loop go lane by
 * lane with the same operations, so a tail changes nothing but the speed. */
TG_CPU_INLINE void SFX(load)(SFX(vec) *v, const T *x) { memcpy(v, x, sizeof *v); }
TG_CPU_INLINE void SFX(store)(T *y, const SFX(vec) *v) { memcpy(y, v, sizeof *v); }

/* relu of each lane as the relu kernel computes it (v < 0 ? 0 : v: -0 and NaN stay), by
 * clearing the lanes' bits where v < 0 (C has no vector ?:). */
typedef TI SFX(ivec) __attribute__((vector_size(64)));
TG_CPU_INLINE void SFX(relu_v)(SFX(vec) *v) { /* by pointer: a 64-byte vector is no baseline-ABI value */
    SFX(ivec) neg = *v < 0, bits;
    memcpy(&bits, v, sizeof bits);
    bits &= ~neg;
    memcpy(v, &bits, sizeof *v);
}

/* g[0..VL) where y > 0, else 0 (threshold_backward's rule: -0 and NaN give 0); all of g
 * where y is NULL. The backward of batch_norm_relu reads relu's output beside dout
 * instead of a masked copy of dout written by a pass of its own. */
TG_CPU_INLINE void SFX(load_g)(SFX(vec) *gv, const T *g, const T *y) {
    SFX(load)(gv, g);
    if (!y) return;
    SFX(vec) yv;
    SFX(load)(&yv, y);
    SFX(ivec) keep = yv > 0, bits;
    memcpy(&bits, gv, sizeof bits);
    bits &= keep;
    memcpy(gv, &bits, sizeof *gv);
}
TG_CPU_INLINE T SFX(g_at)(const T *g, const T *y, int64_t i) { return !y || y[i] > 0 ? g[i] : 0; }

/* acc (8 doubles) += the lanes of v, f32's 16 lanes pairwise. */
TG_CPU_INLINE void SFX(widen_add)(tg_v8d *acc, const SFX(vec) *v) {
    tg_v8d lo, hi;
    SFX(widen)(v, &lo, &hi);
    *acc += VL == 16 ? lo + hi : lo;
}

/* p[0..VL) += the lanes of v, in double. */
TG_CPU_INLINE void SFX(widen_add_to)(double *p, const SFX(vec) *v) {
    tg_v8d w[2], q[2];
    SFX(widen)(v, &w[0], &w[1]);
    memcpy(q, p, (size_t)VL * sizeof(double));
    q[0] += w[0];
    if (VL == 16) q[1] += w[1];
    memcpy(p, q, (size_t)VL * sizeof(double));
}

/* s1 += sum(x - K), s2 += sum((x - K)^2) over x[0..n), in 8 lanes: shifting by a value
 * near the mean keeps the one-pass variance accurate. */
TG_CPU_INLINE void SFX(lane_sums)(const T *x, int64_t n, T K, tg_v8d *s1, tg_v8d *s2) {
    for (int64_t i = 0; i < n;) {
        SFX(vec) a = { 0 }, b = { 0 }, v;
        int64_t end = n - i > NORM_RUN * VL ? i + NORM_RUN * VL : n;
        for (; i + VL <= end; i += VL) {
            SFX(load)(&v, x + i);
            v -= K;
            a += v;
            b += v * v;
        }
        for (int64_t j = 0; i < end; i++, j++) {
            T d = x[i] - K;
            a[j] += d;
            b[j] += d * d;
        }
        SFX(widen_add)(s1, &a);
        SFX(widen_add)(s2, &b);
    }
}

/* sg += sum(g), sgx += sum(g * (x - m)) over n elements, in 8 lanes; g masked by y
 * (load_g) where y is not NULL. */
TG_CPU_INLINE void SFX(lane_grad_sums)(const T *g, const T *y, const T *x, int64_t n, T m, tg_v8d *sg,
                                     tg_v8d *sgx) {
    for (int64_t i = 0; i < n;) {
        SFX(vec) a = { 0 }, b = { 0 }, gv, xv;
        int64_t end = n - i > NORM_RUN * VL ? i + NORM_RUN * VL : n;
        for (; i + VL <= end; i += VL) {
            SFX(load_g)(&gv, g + i, y ? y + i : NULL);
            SFX(load)(&xv, x + i);
            a += gv;
            b += gv * (xv - m);
        }
        for (int64_t j = 0; i < end; i++, j++) {
            T gi = SFX(g_at)(g, y, i);
            a[j] += gi;
            b[j] += gi * (x[i] - m);
        }
        SFX(widen_add)(sg, &a);
        SFX(widen_add)(sgx, &b);
    }
}

TG_CPU_INLINE double SFX(hsum)(const tg_v8d *v) {
    double s = 0;
    for (int j = 0; j < 8; j++) s += (*v)[j];
    return s;
}

/* s1 += sum(x - K), s2 += sum((x - K)^2) over n elements (group and layer norm). */
TG_CPU_CLONES static void SFX(shifted_sums)(const T *x, int64_t n, T K, double *s1, double *s2) {
    tg_v8d a = { 0 }, b = { 0 };
    SFX(lane_sums)(x, n, K, &a, &b);
    *s1 += SFX(hsum)(&a);
    *s2 += SFX(hsum)(&b);
}

/* sg += sum(g), sgx += sum(g * (x - m)) over n elements (group norm). */
TG_CPU_CLONES static void SFX(grad_sums)(const T *g, const T *x, int64_t n, T m, double *sg, double *sgx) {
    tg_v8d a = { 0 }, b = { 0 };
    SFX(lane_grad_sums)(g, NULL, x, n, m, &a, &b);
    *sg += SFX(hsum)(&a);
    *sgx += SFX(hsum)(&b);
}

/* A shift for the one-pass variance of n values in planes of S, stride apart (value i
 * at x[i / S * stride + i % S]): the mean of the first up to 16, so that the shifted
 * mean is small beside the spread. */
static T SFX(shift_of)(const T *x, int64_t n, int64_t S, int64_t stride) {
    int64_t k = n < 16 ? n : 16;
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += (double)x[i / S * stride + i % S];
    return k ? (T)(s / (double)k) : 0;
}

/* Mean and biased variance from shifted sums of cnt elements. */
TG_CPU_INLINE void SFX(moments)(double K, double s1, double s2, double cnt, double *mean, double *var) {
    double m = s1 / cnt, v = s2 / cnt - m * m;
    *mean = K + m;
    *var = v > 0 ? v : 0;
}

/* ------------------------------------------------------------------ batch norm */

typedef struct {
    const T *x, *g;  /* x; dout (backward) */
    T *y;            /* y, or dx (NULL: backward without dx) */
    const tg_norm_params *p;
    int64_t N, C, S;
    bool rows;       /* row mode (bn_split): by blocks of rows, position by position */
    int64_t units;   /* channel mode: blocks of planes a channel splits into; row mode: blocks of rows */
    bool fused;      /* channel mode, one block a channel: sums, coefficients and apply in one task */
    bool bwd;
    bool relu;       /* forward: y = relu(batch_norm(x)) */
    const T *ym;     /* backward of relu(batch_norm(x)): its output, which masks g (load_g); or NULL */
    const T *z;      /* forward: the residual added before the relu, or NULL */
    const T *K;      /* per channel: the shift (forward) or the saved mean (backward) */
    const T *kpos;   /* row mode: K expanded per position (C * S) */
    double *part;    /* channel mode: 2 per (channel, block); row mode: 2 * C * S per block */
    T *coef;         /* BN_NCOEF * C; row mode: then each expanded per position */
    /* forward */
    tg_tensor *rm, *rv, *save_mean, *save_invstd;
    const tg_tensor *weight, *bias;
    /* backward */
    const tg_tensor *mean_in, *invstd_in;
    tg_tensor *dweight, *dbias;
} SFX(bn_ctx);

/* The sums of planes [n0, n1) of channel c into part[0], part[1]. */
TG_CPU_INLINE void SFX(bn_plane_sums)(const SFX(bn_ctx) *k, int64_t c, int64_t n0, int64_t n1, double *part) {
    tg_v8d a = { 0 }, b = { 0 };
    for (int64_t n = n0; n < n1; n++) {
        int64_t off = (n * k->C + c) * k->S;
        if (k->bwd) SFX(lane_grad_sums)(k->g + off, k->ym ? k->ym + off : NULL, k->x + off, k->S, k->K[c], &a, &b);
        else SFX(lane_sums)(k->x + off, k->S, k->K[c], &a, &b);
    }
    part[0] = SFX(hsum)(&a);
    part[1] = SFX(hsum)(&b);
}

/* Channel c's coefficients from its sums (s1, s2): forward also the saved statistics
 * and the running update, backward also dweight and dbias. */
static void SFX(bn_coef)(const SFX(bn_ctx) *k, int64_t c, double s1, double s2) {
    const tg_norm_params *p = k->p;
    double M = (double)(p->N * p->S);
    T *cf = k->coef;
    int64_t C = k->C;
    if (!k->bwd) {
        double mean, var;
        if (p->training) {
            SFX(moments)((double)k->K[c], s1, s2, M, &mean, &var);
            if (k->rm) vset(k->rm, c, (1 - p->momentum) * vget(k->rm, c, 0) + p->momentum * mean);
            if (k->rv) vset(k->rv, c, (1 - p->momentum) * vget(k->rv, c, 0) + p->momentum * var * M / (M - 1));
        } else {
            mean = vget(k->rm, c, 0);
            var = vget(k->rv, c, 1);
        }
        double invstd = 1 / sqrt(var + p->eps);
        vset(k->save_mean, c, mean);
        vset(k->save_invstd, c, invstd);
        cf[BN_M * C + c] = (T)mean;
        cf[BN_L * C + c] = (T)(mean - (double)(T)mean);
        cf[BN_S * C + c] = (T)(invstd * vget(k->weight, c, 1));
        cf[BN_T * C + c] = (T)vget(k->bias, c, 0);
        cf[BN_U * C + c] = 0;
        return;
    }
    double invstd = vget(k->invstd_in, c, 1), s = vget(k->weight, c, 1) * invstd;
    vset(k->dweight, c, s2 * invstd);
    vset(k->dbias, c, s1);
    cf[BN_M * C + c] = k->K[c];
    cf[BN_L * C + c] = 0;
    cf[BN_S * C + c] = (T)s;
    cf[BN_T * C + c] = (T)(p->training ? s * s2 * invstd * invstd / M : 0);
    cf[BN_U * C + c] = (T)(p->training ? -s * s1 / M : 0);
}

/* Channel mode: y = ((x - m) - l) * s + t (+ z, then relu, where given), or
 * dx = s * g - t * (x - m) + u, for x[0..n) of one channel, its coefficients cf[a * C]. */
TG_CPU_INLINE void SFX(bn_apply_plane)(bool bwd, bool relu, const T *x, const T *g, const T *ym, const T *z, T *y,
                                     int64_t n, const T *cf, int64_t C) {
    T m = cf[BN_M * C], l = cf[BN_L * C], s = cf[BN_S * C], t = cf[BN_T * C], u = cf[BN_U * C];
    SFX(vec) xv, gv, zv, r;
    int64_t i = 0;
    if (bwd) {
        for (; i + VL <= n; i += VL) {
            SFX(load)(&xv, x + i);
            SFX(load_g)(&gv, g + i, ym ? ym + i : NULL);
            r = s * gv - t * (xv - m) + u;
            SFX(store)(y + i, &r);
        }
        for (; i < n; i++) y[i] = s * SFX(g_at)(g, ym, i) - t * (x[i] - m) + u;
        return;
    }
    for (; i + VL <= n; i += VL) { /* the flags are loop-invariant: GCC unswitches the loop */
        SFX(load)(&xv, x + i);
        r = ((xv - m) - l) * s + t;
        if (z) {
            SFX(load)(&zv, z + i);
            r += zv;
        }
        if (relu) SFX(relu_v)(&r);
        SFX(store)(y + i, &r);
    }
    for (; i < n; i++) {
        T v = ((x[i] - m) - l) * s + t;
        if (z) v += z[i];
        y[i] = relu && v < 0 ? 0 : v;
    }
}

/* Channel c's N planes through the apply pass. */
TG_CPU_INLINE void SFX(bn_apply_channel)(const SFX(bn_ctx) *k, int64_t c, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
        int64_t off = (n * k->C + c) * k->S;
        SFX(bn_apply_plane)(k->bwd, k->relu, k->x + off, k->g ? k->g + off : NULL, k->ym ? k->ym + off : NULL,
                            k->z ? k->z + off : NULL, k->y + off, k->S, k->coef + c, k->C);
    }
}

/* Channel mode, unit u = (channel, block of planes): its sums; fused: whole channels,
 * their coefficients and their apply pass while the planes are still in L2. */
TG_CPU_CLONES static void SFX(bn_chan_task)(void *vc, int64_t u0, int64_t u1) {
    SFX(bn_ctx) *k = vc;
    for (int64_t u = u0; u < u1; u++) {
        int64_t c = u / k->units, b = u % k->units;
        double *part = k->part + 2 * u;
        SFX(bn_plane_sums)(k, c, b * k->N / k->units, (b + 1) * k->N / k->units, part);
        if (!k->fused) continue;
        SFX(bn_coef)(k, c, part[0], part[1]);
        if (k->y) SFX(bn_apply_channel)(k, c, 0, k->N);
    }
}

/* Channel mode apply pass over planes (n, c) = i. */
TG_CPU_CLONES static void SFX(bn_plane_task)(void *vc, int64_t i0, int64_t i1) {
    SFX(bn_ctx) *k = vc;
    for (int64_t i = i0; i < i1; i++) SFX(bn_apply_channel)(k, i % k->C, i / k->C, i / k->C + 1);
}

/* Row mode, block b of rows: per-position partial sums, NORM_RUN rows at a time in T. */
TG_CPU_CLONES static void SFX(bn_row_task)(void *vc, int64_t b0, int64_t b1) {
    SFX(bn_ctx) *k = vc;
    int64_t CS = k->C * k->S;
    const T *kp = k->kpos;
    for (int64_t b = b0; b < b1; b++) {
        double *p1 = k->part + b * 2 * CS, *p2 = p1 + CS;
        int64_t r1 = (b + 1) * k->N / k->units;
        memset(p1, 0, (size_t)(2 * CS) * sizeof *p1);
        for (int64_t r0 = b * k->N / k->units; r0 < r1; r0 += NORM_RUN) {
            int64_t re = r1 - r0 < NORM_RUN ? r1 : r0 + NORM_RUN, j = 0;
            for (; j + VL <= CS; j += VL) {
                SFX(vec) a = { 0 }, q = { 0 }, kv, xv, gv;
                SFX(load)(&kv, kp + j);
                for (int64_t r = r0; r < re; r++) {
                    SFX(load)(&xv, k->x + r * CS + j);
                    if (k->bwd) {
                        SFX(load_g)(&gv, k->g + r * CS + j, k->ym ? k->ym + r * CS + j : NULL);
                        a += gv;
                        q += gv * (xv - kv);
                    } else {
                        xv -= kv;
                        a += xv;
                        q += xv * xv;
                    }
                }
                SFX(widen_add_to)(p1 + j, &a);
                SFX(widen_add_to)(p2 + j, &q);
            }
            for (; j < CS; j++) {
                T a = 0, q = 0;
                for (int64_t r = r0; r < re; r++) {
                    T xs = k->x[r * CS + j], d = xs - kp[j];
                    if (k->bwd) {
                        T gi = SFX(g_at)(k->g, k->ym, r * CS + j);
                        a += gi;
                        q += gi * d;
                    } else {
                        a += d;
                        q += d * d;
                    }
                }
                p1[j] += (double)a;
                p2[j] += (double)q;
            }
        }
    }
}

/* Row mode apply pass over blocks of NORM_RUN rows: each vector of coefficients (per
 * position, e[a * CS + j]) loads once for the block's rows. */
TG_CPU_CLONES static void SFX(bn_rows_apply_task)(void *vc, int64_t q0, int64_t q1) {
    SFX(bn_ctx) *k = vc;
    int64_t CS = k->C * k->S;
    const T *e = k->coef + BN_NCOEF * k->C, *em = e + BN_M * CS, *el = e + BN_L * CS, *ec = e + BN_S * CS;
    const T *et = e + BN_T * CS, *eu = e + BN_U * CS;
    for (int64_t q = q0; q < q1; q++) {
        int64_t r0 = q * NORM_RUN, r1 = k->N - r0 < NORM_RUN ? k->N : r0 + NORM_RUN, j = 0;
        for (; j + VL <= CS; j += VL) {
            SFX(vec) m, l, s, t, u, xv, gv, r;
            SFX(load)(&m, em + j), SFX(load)(&s, ec + j), SFX(load)(&t, et + j);
            if (k->bwd) {
                SFX(load)(&u, eu + j);
                for (int64_t off = r0 * CS + j; off < r1 * CS; off += CS) {
                    SFX(load)(&xv, k->x + off);
                    SFX(load_g)(&gv, k->g + off, k->ym ? k->ym + off : NULL);
                    r = s * gv - t * (xv - m) + u;
                    SFX(store)(k->y + off, &r);
                }
            } else {
                SFX(load)(&l, el + j);
                for (int64_t off = r0 * CS + j; off < r1 * CS; off += CS) {
                    SFX(load)(&xv, k->x + off);
                    r = ((xv - m) - l) * s + t;
                    if (k->z) {
                        SFX(vec) zv;
                        SFX(load)(&zv, k->z + off);
                        r += zv;
                    }
                    if (k->relu) SFX(relu_v)(&r);
                    SFX(store)(k->y + off, &r);
                }
            }
        }
        for (; j < CS; j++)
            for (int64_t row = r0; row < r1; row++) {
                int64_t off = row * CS + j;
                if (k->bwd) {
                    k->y[off] = ec[j] * SFX(g_at)(k->g, k->ym, off) - et[j] * (k->x[off] - em[j]) + eu[j];
                    continue;
                }
                T v = ((k->x[off] - em[j]) - el[j]) * ec[j] + et[j];
                if (k->z) v += k->z[off];
                k->y[off] = k->relu && v < 0 ? 0 : v;
            }
    }
}

/* Planes (S >= ROW_MODE_S) by channel, split into blocks of planes where there are
 * fewer channels than NORM_UNITS; fewer elements per plane by blocks of rows, position by
 * position. Both splits follow the shape alone. */
static void SFX(bn_split)(SFX(bn_ctx) *k) {
    if (k->S < ROW_MODE_S) {
        k->rows = true;
        k->units = k->N < NORM_BLOCKS ? (k->N > 0 ? k->N : 1) : NORM_BLOCKS;
        return;
    }
    k->units = k->C >= NORM_UNITS ? 1 : (NORM_UNITS + k->C - 1) / k->C;
    if (k->units > k->N) k->units = k->N > 0 ? k->N : 1;
    /* the fused pass rereads a channel from L2: worth it where one fits; the relu form's
     * backward reads three arrays, and measured faster fused up to 3/4 of Zen 4's L2
     * (ResNet-20's 64 x 32 x 32 channels) than in two passes from memory */
    double bytes = (double)(k->N * k->S) * sizeof(T) * (k->bwd ? (k->ym ? 3 : 2) : 1);
    k->fused = k->units == 1 && bytes <= (k->ym ? 1.5 : 1.0) * NORM_L2_BYTES;
}

/* Doubles of partial sums: 2 per unit, row mode 2 per position and block. */
static int64_t SFX(bn_parts_len)(const SFX(bn_ctx) *k) { return 2 * k->units * k->C * (k->rows ? k->S : 1); }

/* Scratch in doubles: the partials, then K (and its expansion) and the coefficients
 * (expanded in row mode) as T's. */
static int64_t SFX(bn_scratch_len)(const SFX(bn_ctx) *k) {
    int64_t C = k->C, CS = C * k->S, rows = k->rows;
    int64_t ts = C + (rows ? CS : 0) + BN_NCOEF * (C + (rows ? CS : 0));
    return SFX(bn_parts_len)(k) + (ts * (int64_t)sizeof(T) + 7) / 8 + 1;
}

/* Both directions: the sums (unless eval forward, or eval backward without dweight and
 * dbias), the coefficients and the apply pass, split by bn_split. */
static tg_status SFX(bn_run)(SFX(bn_ctx) *k, const tg_tensor *x, bool sums) {
    int64_t C = k->C, S = k->S, CS = C * S, N = k->N;
    double *buf;
    SFX(bn_split)(k);
    bool rows = k->rows;
    tg_status st = scratch_d(x, SFX(bn_scratch_len)(k), &buf);
    if (st != TG_OK) return st;
    k->part = buf;
    T *K = (T *)(buf + SFX(bn_parts_len)(k)), *kpos = K + C;
    k->coef = kpos + (rows ? CS : 0);
    k->K = K;
    k->kpos = kpos;
    for (int64_t c = 0; c < C; c++)
        K[c] = k->bwd ? (T)vget(k->mean_in, c, 0) : SFX(shift_of)(k->x + c * S, N * S, S, CS);
    if (!sums) {
        for (int64_t c = 0; c < C; c++) SFX(bn_coef)(k, c, 0, 0);
    } else if (!rows) {
        norm_parallel(C * k->units, N * S / k->units * (k->fused ? 2 : 1), SFX(bn_chan_task), k);
        if (k->fused) return TG_OK;
        for (int64_t c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            for (int64_t b = 0; b < k->units; b++) {
                s1 += k->part[2 * (c * k->units + b)];
                s2 += k->part[2 * (c * k->units + b) + 1];
            }
            SFX(bn_coef)(k, c, s1, s2);
        }
    } else {
        for (int64_t j = 0; j < CS; j++) kpos[j] = K[j / S];
        norm_parallel(k->units, N / k->units * CS, SFX(bn_row_task), k);
        for (int64_t c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            for (int64_t b = 0; b < k->units; b++)
                for (int64_t i = 0; i < S; i++) {
                    s1 += k->part[b * 2 * CS + c * S + i];
                    s2 += k->part[b * 2 * CS + CS + c * S + i];
                }
            SFX(bn_coef)(k, c, s1, s2);
        }
    }
    if (!k->y) return TG_OK;
    if (rows) {
        T *e = k->coef + BN_NCOEF * C;
        for (int a = 0; a < BN_NCOEF; a++)
            for (int64_t j = 0; j < CS; j++) e[a * CS + j] = k->coef[a * C + j / S];
        norm_parallel((N + NORM_RUN - 1) / NORM_RUN, NORM_RUN * CS, SFX(bn_rows_apply_task), k);
    } else
        norm_parallel(N * C, S, SFX(bn_plane_task), k);
    return TG_OK;
}

/* residual: added to the result before the relu, or NULL. */
static tg_status SFX(bn_fwd)(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *rm,
                             tg_tensor *rv, const tg_tensor *x, const tg_tensor *residual, const tg_tensor *weight,
                             const tg_tensor *bias, const tg_norm_params *p) {
    SFX(bn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .y = (T *)tg_cpu_ptr(out), .p = p, .N = p->N, .C = p->C,
                      .z = residual ? (const T *)tg_cpu_ptr(residual) : NULL,
                      .S = p->S, .relu = p->relu, .rm = rm, .rv = rv, .save_mean = save_mean,
                      .save_invstd = save_invstd, .weight = weight, .bias = bias };
    return SFX(bn_run)(&k, x, p->training);
}

/* relu_out: the backward of relu(batch_norm(x)), given its output; or NULL. */
static tg_status SFX(bn_bwd)(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                             const tg_tensor *relu_out, const tg_tensor *x, const tg_tensor *weight,
                             const tg_tensor *save_mean, const tg_tensor *save_invstd, const tg_norm_params *p) {
    SFX(bn_ctx) k = { .x = (const T *)tg_cpu_ptr(x), .g = (const T *)tg_cpu_ptr(dout),
                      .ym = relu_out ? (const T *)tg_cpu_ptr(relu_out) : NULL,
                      .y = dx ? (T *)tg_cpu_ptr(dx) : NULL, .p = p, .N = p->N, .C = p->C, .S = p->S, .bwd = true,
                      .weight = weight, .mean_in = save_mean, .invstd_in = save_invstd, .dweight = dweight,
                      .dbias = dbias };
    return SFX(bn_run)(&k, x, p->training || dweight || dbias);
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
    T *run;              /* layer norm backward: the same over the current NORM_RUN rows, in T */
    int64_t N, nb;
} SFX(gn_ctx);

TG_CPU_CLONES static void SFX(gn_fwd_task)(void *vc, int64_t q0, int64_t q1) {
    SFX(gn_ctx) *k = vc;
    int64_t Cg = k->C / k->G, len = Cg * k->S;
    for (int64_t q = q0; q < q1; q++) {
        const T *x = k->x + q * len;
        T *y = k->y + q * len;
        double s1 = 0, s2 = 0, mean, var;
        T K = SFX(shift_of)(x, len, len, 0);
        SFX(shifted_sums)(x, len, K, &s1, &s2);
        SFX(moments)((double)K, s1, s2, (double)len, &mean, &var);
        double is = 1 / sqrt(var + k->eps);
        k->mean[q] = (T)mean;
        k->invstd[q] = (T)is;
        for (int64_t c = 0; c < Cg; c++) {
            int64_t ch = (q % k->G) * Cg + c;
            T m = (T)mean, l = (T)(mean - (double)m), s = (T)(is * vget(k->weight, ch, 1)), t = (T)vget(k->bias, ch, 0);
            for (int64_t j = c * k->S; j < (c + 1) * k->S; j++) y[j] = ((x[j] - m) - l) * s + t;
        }
    }
}

TG_CPU_CLONES static void SFX(gn_bwd_task)(void *vc, int64_t q0, int64_t q1) {
    SFX(gn_ctx) *k = vc;
    int64_t Cg = k->C / k->G, len = Cg * k->S;
    double M = (double)len;
    for (int64_t q = q0; q < q1; q++) {
        const T *x = k->x + q * len, *g = k->g + q * len;
        double mean = (double)k->mean[q], is = (double)k->invstd[q], sgw = 0, sgwx = 0;
        int64_t c0 = (q % k->G) * Cg, n = q / k->G;
        for (int64_t c = 0; c < Cg; c++) {
            double a = 0, b = 0, w = vget(k->weight, c0 + c, 1);
            SFX(grad_sums)(g + c * k->S, x + c * k->S, k->S, k->mean[q], &a, &b);
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
    norm_parallel(p->N * p->groups, p->C / p->groups * p->S, SFX(gn_fwd_task), &k);
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
    norm_parallel(N * G, C / G * p->S, SFX(gn_bwd_task), &k);
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
TG_CPU_CLONES static void SFX(ln_fwd_task)(void *vc, int64_t r0, int64_t r1) {
    SFX(gn_ctx) *k = vc;
    int64_t D = k->C;
    for (int64_t r = r0; r < r1; r++) {
        const T *x = k->x + r * D;
        T *y = k->y + r * D;
        double s1 = 0, s2 = 0, mean, var;
        T K = SFX(shift_of)(x, D, D, 0);
        SFX(shifted_sums)(x, D, K, &s1, &s2);
        SFX(moments)((double)K, s1, s2, (double)D, &mean, &var);
        double is = 1 / sqrt(var + k->eps);
        k->mean[r] = (T)mean;
        k->invstd[r] = (T)is;
        T m = (T)mean, l = (T)(mean - (double)m), s = (T)is; /* m + l: x - mean exact for large means */
        if (k->w && k->b)
            for (int64_t j = 0; j < D; j++) y[j] = ((x[j] - m) - l) * s * k->w[j] + k->b[j];
        else if (k->w)
            for (int64_t j = 0; j < D; j++) y[j] = ((x[j] - m) - l) * s * k->w[j];
        else if (k->b)
            for (int64_t j = 0; j < D; j++) y[j] = ((x[j] - m) - l) * s + k->b[j];
        else
            for (int64_t j = 0; j < D; j++) y[j] = ((x[j] - m) - l) * s;
    }
}

/* sgw += sum(g * w), sgwx += sum(g * w * (x - m)) over a row of n, in 8 lanes (w NULL:
 * ones). */
TG_CPU_INLINE void SFX(lane_wgrad_sums)(const T *g, const T *x, const T *w, int64_t n, T m, tg_v8d *sgw,
                                      tg_v8d *sgwx) {
    if (!w) {
        SFX(lane_grad_sums)(g, NULL, x, n, m, sgw, sgwx);
        return;
    }
    for (int64_t i = 0; i < n;) {
        SFX(vec) a = { 0 }, b = { 0 }, gv, xv, wv;
        int64_t end = n - i > NORM_RUN * VL ? i + NORM_RUN * VL : n;
        for (; i + VL <= end; i += VL) {
            SFX(load)(&gv, g + i);
            SFX(load)(&wv, w + i);
            SFX(load)(&xv, x + i);
            gv *= wv;
            a += gv;
            b += gv * (xv - m);
        }
        for (int64_t j = 0; i < end; i++, j++) {
            T gw = g[i] * w[i];
            a[j] += gw;
            b[j] += gw * (x[i] - m);
        }
        SFX(widen_add)(sgw, &a);
        SFX(widen_add)(sgwx, &b);
    }
}

/* Layer norm backward, block by block of rows: dx row by row, and the block's dweight
 * and dbias partials (the column sums of g * xhat and g), NORM_RUN rows at a time in T
 * (run) before they add into double (part). */
TG_CPU_CLONES static void SFX(ln_bwd_task)(void *vc, int64_t b0, int64_t b1) {
    SFX(gn_ctx) *k = vc;
    int64_t D = k->C;
    for (int64_t blk = b0; blk < b1; blk++) {
        double *pw = k->part ? k->part + blk * 2 * D : NULL, *pb = pw ? pw + D : NULL;
        T *rw = k->run ? k->run + blk * 2 * D : NULL, *rb = rw ? rw + D : NULL;
        if (pw) memset(pw, 0, (size_t)(2 * D) * sizeof *pw);
        int64_t r0 = blk * k->N / k->nb, r1 = (blk + 1) * k->N / k->nb;
        for (int64_t r = r0; r < r1; r++) {
            const T *x = k->x + r * D, *g = k->g + r * D;
            T m = k->mean[r], s = k->invstd[r];
            double is = (double)s;
            tg_v8d a = { 0 }, b = { 0 };
            SFX(lane_wgrad_sums)(g, x, k->w, D, m, &a, &b);
            double sgw = SFX(hsum)(&a), sgwx = SFX(hsum)(&b);
            if (rw) {
                if ((r - r0) % NORM_RUN == 0) memset(rw, 0, (size_t)(2 * D) * sizeof *rw);
                for (int64_t j = 0; j < D; j++) {
                    rw[j] += g[j] * ((x[j] - m) * s);
                    rb[j] += g[j];
                }
                if ((r - r0) % NORM_RUN == NORM_RUN - 1 || r == r1 - 1)
                    for (int64_t j = 0; j < D; j++) {
                        pw[j] += (double)rw[j];
                        pb[j] += (double)rb[j];
                    }
            }
            if (!k->y) continue;
            T *dx = k->y + r * D, t = (T)(is * is * is * sgwx / (double)D), u = (T)(-is * sgw / (double)D);
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
    norm_parallel(p->N, p->C, SFX(ln_fwd_task), &k);
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
        tg_status st = scratch_d(x, 2 * NORM_BLOCKS * D + (2 * NORM_BLOCKS * D * (int64_t)sizeof(T) + 7) / 8, &k.part);
        if (st != TG_OK) return st;
        k.run = (T *)(k.part + 2 * NORM_BLOCKS * D);
    }
    if (k.nb > 0) norm_parallel(k.nb, N / k.nb * D, SFX(ln_bwd_task), &k);
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

#undef VL
