/* tg_interpolate: nearest, nearest-exact and bilinear (align_corners both ways) from a
 * size or a scale factor (recompute_scale_factor both ways), against per-element f64
 * loops written here from PyTorch's index formulas (ATen/native/UpSample.h), against
 * PyTorch itself when python3 with torch is installed (else that case is skipped),
 * gradcheck and gradgradcheck, integer images, and the error messages. */
#include "ops_check.h"

/* ------------------------------------------------------------------ the reference */

typedef struct {
    int64_t in, out;
    double scale; /* what PyTorch's kernel gets: 0 for none (it uses in/out) */
} ax;

static int64_t ref_nearest(ax g, int64_t o, int mode) {
    if (g.out == g.in) return o;
    float s = g.scale > 0 ? (float)(1.0 / g.scale) : (float)g.in / (float)g.out;
    int64_t i;
    if (mode == TG_INTERPOLATE_NEAREST_EXACT) i = (int64_t)floorf((float)((o + 0.5) * s));
    else if (g.out == 2 * g.in) i = o / 2;
    else i = (int64_t)floorf((float)o * s);
    return i < g.in - 1 ? i : g.in - 1;
}

/* Source taps and weights of output o, the ratio in the dtype, the position in f64. */
static void ref_linear(ax g, int64_t o, bool align, bool f32, int64_t *i0, int64_t *i1, double *l0, double *l1) {
    if (g.out == g.in) {
        *i0 = *i1 = o, *l0 = 1, *l1 = 0;
        return;
    }
    double r;
    if (align) r = g.out > 1 ? (f32 ? (float)(g.in - 1) / (float)(g.out - 1) : (double)(g.in - 1) / (double)(g.out - 1)) : 0;
    else if (g.scale > 0) r = f32 ? (float)(1.0 / g.scale) : 1.0 / g.scale;
    else r = f32 ? (float)g.in / (float)g.out : (double)g.in / (double)g.out;
    double src = align ? r * (double)o : fmax(r * (o + 0.5) - 0.5, 0);
    *i0 = (int64_t)src;
    *i1 = *i0 < g.in - 1 ? *i0 + 1 : *i0;
    *l1 = f32 ? (float)(src - (double)*i0) : src - (double)*i0;
    *l0 = f32 ? 1.0f - (float)*l1 : 1 - *l1;
}

typedef struct {
    int64_t N, C, H, W;
    tg_interpolate_opts o;
} icase;

static void axes_of(const icase *c, ax g[2]) {
    int64_t in[2] = { c->H, c->W };
    for (int a = 0; a < 2; a++) {
        double sf = c->o.scale_factor[a] ? c->o.scale_factor[a] : c->o.scale_factor[0];
        int64_t sz = c->o.size[a] ? c->o.size[a] : c->o.size[0];
        g[a].in = in[a];
        g[a].out = sz ? sz : (int64_t)floor((double)in[a] * sf);
        g[a].scale = sz || c->o.recompute_scale_factor ? 0 : sf;
    }
}

static double *reference(const icase *c, const double *x, bool f32) {
    ax g[2];
    axes_of(c, g);
    int64_t OH = g[0].out, OW = g[1].out;
    double *y = dbuf(c->N * c->C * OH * OW);
    for (int64_t p = 0; p < c->N * c->C; p++) {
        const double *xp = x + p * c->H * c->W;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double *out = &y[(p * OH + oh) * OW + ow];
                if (c->o.mode != TG_INTERPOLATE_BILINEAR) {
                    *out = xp[ref_nearest(g[0], oh, c->o.mode) * c->W + ref_nearest(g[1], ow, c->o.mode)];
                    continue;
                }
                int64_t h0, h1, w0, w1;
                double a0, a1, b0, b1;
                ref_linear(g[0], oh, c->o.align_corners, f32, &h0, &h1, &a0, &a1);
                ref_linear(g[1], ow, c->o.align_corners, f32, &w0, &w1, &b0, &b1);
                *out = a0 * (b0 * xp[h0 * c->W + w0] + b1 * xp[h0 * c->W + w1]) +
                       a1 * (b0 * xp[h1 * c->W + w0] + b1 * xp[h1 * c->W + w1]);
            }
    }
    return y;
}

#define NEAREST TG_INTERPOLATE_NEAREST
#define EXACT TG_INTERPOLATE_NEAREST_EXACT
#define BILINEAR TG_INTERPOLATE_BILINEAR
static const icase k_cases[] = {
    { 2, 3, 4, 5, { .size = { 8, 10 } } },                                   /* nearest x2: PyTorch's shift case */
    { 1, 2, 5, 7, { .size = { 3, 11 } } },
    { 1, 2, 5, 7, { .scale_factor = { 1.7 } } },                               /* 8 x 11 with the scale 1/1.7 */
    { 1, 2, 5, 7, { .scale_factor = { 1.7 }, .recompute_scale_factor = true } },
    { 2, 1, 9, 6, { .scale_factor = { 0.6, 2.5 } } },
    { 1, 2, 5, 7, { .size = { 8, 13 }, .mode = EXACT } },
    { 1, 1, 9, 6, { .scale_factor = { 0.45, 1.3 }, .mode = EXACT } },
    { 2, 3, 4, 5, { .size = { 7, 9 }, .mode = BILINEAR } },
    { 2, 3, 4, 5, { .size = { 7, 9 }, .mode = BILINEAR, .align_corners = true } },
    { 1, 2, 6, 9, { .size = { 4, 5 }, .mode = BILINEAR } },                      /* downsampling */
    { 1, 2, 6, 9, { .size = { 1, 5 }, .mode = BILINEAR, .align_corners = true } }, /* one row: ratio 0 */
    { 1, 2, 5, 7, { .scale_factor = { 1.7, 2 }, .mode = BILINEAR } },
    { 1, 2, 5, 7, { .scale_factor = { 1.7, 2 }, .mode = BILINEAR, .recompute_scale_factor = true } },
    { 1, 2, 5, 7, { .scale_factor = { 0.3, 0.8 }, .mode = BILINEAR, .align_corners = true } },
    { 1, 3, 5, 7, { .size = { 5, 16 }, .mode = BILINEAR } },                     /* H unchanged */
    { 3, 2, 17, 19, { .scale_factor = { 3.3 }, .mode = BILINEAR } },             /* larger, threaded kernels */
};
#define N_CASES (int)(sizeof k_cases / sizeof k_cases[0])

static tg_shape out_shape(const icase *c) {
    ax g[2];
    axes_of(c, g);
    return TG_SHAPE(c->N, c->C, g[0].out, g[1].out);
}

/* ------------------------------------------------------------------ forward */

TEST(forward_against_f64_loops) {
    for (int k = 0; k < N_CASES; k++) {
        const icase *c = &k_cases[k];
        for (int di = 0; di < 2; di++) {
            tg_dtype dt = k_float_dtypes[di];
            for (int layout = 0; layout < L_COUNT; layout += 2) { /* contiguous and transposed */
                size_t m = mark();
                double *v;
                tg_tensor *x = input(dt, TG_SHAPE(c->N, c->C, c->H, c->W), -2, 2, layout, &v);
                WHAT("case %d %s %s", k, tg_dtype_name(dt), k_layout_names[layout]);
                tg_tensor *y = tg_interpolate(x, &c->o);
                double tol = c->o.mode == BILINEAR ? (dt == TG_F32 ? 1e-6 : 1e-14) : 0;
                EXPECT(y, out_shape(c), dt, reference(c, v, dt == TG_F32), tol, tol);
                release(m);
            }
        }
    }
}

TEST(nearest_takes_integer_images) {
    const icase c = { 1, 3, 4, 5, { .scale_factor = { 1.5, 0.8 } } };
    size_t m = mark();
    double *v = dbuf(60);
    for (int i = 0; i < 60; i++) v[i] = (i * 37) % 256;
    tg_tensor *x = from_doubles(TG_U8, TG_SHAPE(1, 3, 4, 5), v);
    EXPECT_EXACT(tg_interpolate(x, &c.o), out_shape(&c), TG_U8, reference(&c, v, true));
    release(m);
}

TEST(same_size_is_a_view) {
    tg_tensor *x = tg_arange(TG_F32, 0, 12, 1, tg_test_device());
    tg_tensor *x4 = tg_reshape(x, TG_SHAPE(1, 1, 3, 4));
    tg_tensor *y = tg_interpolate(x4, &(tg_interpolate_opts){ .size = { 3, 4 }, .mode = BILINEAR });
    CHECK(tg_fill_(x, 2) == TG_OK);
    double two[12] = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 };
    EXPECT_EXACT(y, TG_SHAPE(1, 1, 3, 4), TG_F32, two);
}

/* ------------------------------------------------------------------ PyTorch */

/* x[i] = sin(0.37 i) in both programs (both libm's sin); torch prints each case's output
 * with repr, read back with strtod. */
static const char *k_py =
    "import math, sys\n"
    "try:\n"
    "    import torch, torch.nn.functional as F\n"
    "except Exception:\n"
    "    print('no-torch'); sys.exit(0)\n"
    "print('ok')\n"
    "for line in sys.stdin:\n"
    "    n,c,h,w,mode,s0,s1,f0,f1,al,rc,dt = line.split()\n"
    "    n,c,h,w,s0,s1 = map(int,(n,c,h,w,s0,s1))\n"
    "    x = torch.tensor([math.sin(0.37*i) for i in range(n*c*h*w)], dtype=torch.float64).reshape(n,c,h,w)\n"
    "    if dt == 'f32': x = x.float()\n"
    "    kw = dict(mode=mode)\n"
    "    if s0: kw['size'] = (s0, s1)\n"
    "    else: kw['scale_factor'] = (float(f0), float(f1)); kw['recompute_scale_factor'] = rc == '1'\n"
    "    if mode == 'bilinear': kw['align_corners'] = al == '1'\n"
    "    y = F.interpolate(x, **kw).double().flatten().tolist()\n"
    "    print(len(y), ' '.join(repr(v) for v in y), flush=True)\n";

static FILE *start_python(const char *script_path) {
    const char *py = getenv("TG_TEST_PYTHON");
    static const char *tries[] = { "/usr/bin/python3", "python3" };
    for (int t = py ? -1 : 0; t < 2; t++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s %s < %s.in 2>/dev/null", t < 0 ? py : tries[t], script_path, script_path);
        FILE *f = popen(cmd, "r");
        char head[32] = "";
        if (f && fgets(head, sizeof head, f) && strncmp(head, "ok", 2) == 0) return f;
        if (f) pclose(f);
        if (t < 0) break;
    }
    return NULL;
}

TEST(against_pytorch_when_installed) {
    char path[] = "/tmp/tg_interp_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) SKIP("cannot make a temporary file");
    FILE *s = fdopen(fd, "w");
    fputs(k_py, s);
    fclose(s);
    char in_path[sizeof path + 8];
    snprintf(in_path, sizeof in_path, "%s.in", path);
    FILE *in = fopen(in_path, "w");
    static const char *modes[] = { "nearest", "nearest-exact", "bilinear" };
    for (int k = 0; k < N_CASES; k++)
        for (int di = 0; di < 2; di++) {
            const icase *c = &k_cases[k];
            double f0 = c->o.scale_factor[0], f1 = c->o.scale_factor[1] ? c->o.scale_factor[1] : f0;
            int64_t s0 = c->o.size[0], s1 = c->o.size[1] ? c->o.size[1] : s0;
            fprintf(in, "%lld %lld %lld %lld %s %lld %lld %.17g %.17g %d %d %s\n", (long long)c->N, (long long)c->C,
                    (long long)c->H, (long long)c->W, modes[c->o.mode], (long long)s0, (long long)s1, f0, f1,
                    c->o.align_corners, c->o.recompute_scale_factor, di ? "f64" : "f32");
        }
    if (in) fclose(in);
    FILE *py = in ? start_python(path) : NULL;
    if (!py) {
        remove(path), remove(in_path);
        SKIP("python3 with torch is not installed (TG_TEST_PYTHON names another interpreter)");
    }
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    for (int k = 0; k < N_CASES && line; k++)
        for (int di = 0; di < 2; di++) {
            const icase *c = &k_cases[k];
            tg_dtype dt = di ? TG_F64 : TG_F32;
            size_t m = mark();
            tg_shape xs = TG_SHAPE(c->N, c->C, c->H, c->W), ys = out_shape(c);
            double *v = dbuf(numel_of(xs)), *want = dbuf(numel_of(ys));
            for (int64_t i = 0; i < numel_of(xs); i++) v[i] = sin(0.37 * (double)i);
            if (!fgets(line, (int)cap, py)) {
                FAIL_("case %d: python gave no line", k);
                release(m);
                continue;
            }
            char *p = line, *end;
            long long n = strtoll(p, &end, 10);
            if (n != numel_of(ys)) FAIL_("case %d: torch gave %lld values, expected %lld", k, n, (long long)numel_of(ys));
            for (int64_t i = 0; i < numel_of(ys) && n == numel_of(ys); i++) want[i] = strtod(end, &end);
            WHAT("case %d %s vs torch", k, tg_dtype_name(dt));
            double tol = dt == TG_F32 ? 1e-6 : 1e-14;
            if (n == numel_of(ys)) EXPECT(tg_interpolate(from_doubles(dt, xs, v), &c->o), ys, dt, want, tol, tol);
            release(m);
        }
    free(line);
    pclose(py);
    remove(path);
    remove(in_path);
}

/* ------------------------------------------------------------------ gradients */

static tg_tensor *interp_fn(tg_tensor *const *in, void *ctx) { return tg_interpolate(in[0], ctx); }

TEST(gradcheck_and_gradgradcheck) {
    static const tg_interpolate_opts opts[] = {
        { .size = { 5, 7 } },
        { .scale_factor = { 0.6, 1.5 }, .mode = EXACT },
        { .size = { 5, 7 }, .mode = BILINEAR },
        { .size = { 5, 7 }, .mode = BILINEAR, .align_corners = true },
        { .scale_factor = { 0.7, 2.2 }, .mode = BILINEAR },
    };
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        size_t m = mark();
        tg_tensor *x = tg_param(input(TG_F64, TG_SHAPE(2, 2, 3, 4), -1, 1, L_TRANSPOSED, NULL));
        tg_gradcheck_report rep;
        if (tg_gradcheck(interp_fn, (void *)&opts[k], 1, &x, NULL, &rep) != TG_OK) FAIL_("opts %zu: %s", k, rep.message);
        if (opts[k].mode == BILINEAR && tg_gradgradcheck(interp_fn, (void *)&opts[k], 1, &x, NULL, &rep) != TG_OK)
            FAIL_("opts %zu second order: %s", k, rep.message);
        release(m);
    }
}

/* ------------------------------------------------------------------ errors */

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(1, 2, 3, 4), dev);
    CHECK_ERROR(tg_interpolate(tg_zeros(TG_F32, TG_SHAPE(2, 3, 4), dev), &(tg_interpolate_opts){ .size = { 2 } }),
                "tg_interpolate: expected a 4-D input (N, C, H, W), got 3 dimensions");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 2 }, .mode = (tg_interpolate_mode)9 }),
                "tg_interpolate: unknown mode 9");
    CHECK_ERROR(tg_interpolate(x, NULL), "tg_interpolate: either size or scale_factor must be given");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 2 }, .scale_factor = { 2 } }),
                "tg_interpolate: give either size or scale_factor, not both");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 0, 3 } }),
                "tg_interpolate: size must be positive, got [0, 3]");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { -2 } }),
                "tg_interpolate: size must be positive, got [-2, 0]");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .scale_factor = { -2 } }),
                "tg_interpolate: scale_factor must be positive and finite, got [-2, 0]");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .scale_factor = { 2, INFINITY } }),
                "tg_interpolate: scale_factor must be positive and finite, got [2, inf]");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .scale_factor = { NAN } }),
                "tg_interpolate: scale_factor must be positive and finite, got [nan, 0]");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .scale_factor = { 0.2 } }),
                "tg_interpolate: input and output sizes should be greater than 0, but got input (H: 3, W: 4) output "
                "(H: 0, W: 0)");
    CHECK_ERROR(tg_interpolate(tg_zeros(TG_F32, TG_SHAPE(1, 2, 0, 4), dev), &(tg_interpolate_opts){ .size = { 2 } }),
                "tg_interpolate: input and output sizes should be greater than 0, but got input (H: 0, W: 4) output "
                "(H: 2, W: 2)");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .scale_factor = { 1e30 } }),
                "tg_interpolate: scale_factor 1e+30 makes an output size of 3e+30, too large");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 1 << 30 } }),
                "tg_interpolate: shape [1,2,1073741824,1073741824] is too large (more than 576460752303423487 elements)");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 2 }, .align_corners = true }),
                "tg_interpolate: align_corners can only be set with bilinear");
    CHECK_ERROR(tg_interpolate(x, &(tg_interpolate_opts){ .size = { 2 }, .recompute_scale_factor = true }),
                "tg_interpolate: recompute_scale_factor needs scale_factor, not size");
    CHECK_ERROR(tg_interpolate(tg_zeros(TG_I32, TG_SHAPE(1, 1, 2, 2), dev), &(tg_interpolate_opts){ .size = { 3 }, .mode = BILINEAR }),
                "tg_interpolate: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_interpolate(NULL, &(tg_interpolate_opts){ .size = { 3 } }), "tg_interpolate: x is NULL");
}

TG_TEST_MAIN(&tg_case_forward_against_f64_loops, &tg_case_nearest_takes_integer_images, &tg_case_same_size_is_a_view,
             &tg_case_against_pytorch_when_installed, &tg_case_gradcheck_and_gradgradcheck, &tg_case_error_messages)
