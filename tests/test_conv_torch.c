/* tg_conv2d, tg_conv1d and tg_conv_transpose2d against PyTorch itself: the same f64
 * inputs through F.conv2d / F.conv1d / F.conv_transpose2d and their backward (the
 * output, and the gradients of x, weight and bias for a random output gradient), on
 * configurations where the conventions matter most: "same" with even kernels,
 * output_padding, groups, dilation, unbatched inputs. Skipped (exit 77) when no
 * python3 with torch is found ($TG_PYTHON, /usr/bin/python3, python3 on PATH). */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "harness.h"

static const char *g_python;
static char g_dir[] = "/tmp/tg_conv_torch_XXXXXX";

static const char script[] =
    "import sys, warnings, torch\n"
    "warnings.filterwarnings('ignore')\n"
    "import torch.nn.functional as F\n"
    "torch.set_default_dtype(torch.float64)\n"
    "src, dst = sys.argv[1], sys.argv[2]\n"
    "tok = open(src).read().split()\n"
    "pos = 0\n"
    "def take(n):\n"
    "    global pos\n"
    "    v = [float(t) for t in tok[pos:pos + n]]\n"
    "    pos += n\n"
    "    return v\n"
    "def tensor(shape):\n"
    "    n = 1\n"
    "    for s in shape: n *= s\n"
    "    return torch.tensor(take(n)).reshape(shape).requires_grad_(True)\n"
    "out = []\n"
    "while pos < len(tok):\n"
    "    op = tok[pos]; pos += 1\n"
    "    nd = int(tok[pos]); pos += 1\n"
    "    xs = [int(v) for v in take(nd)]\n"
    "    wn = int(tok[pos]); pos += 1\n"
    "    ws = [int(v) for v in take(wn)]\n"
    "    s, p, d, op_, g, kind, has_b = [int(v) for v in take(7)]\n"
    "    x = tensor(xs); w = tensor(ws)\n"
    "    cout = ws[1] * g if op == 'convt' else ws[0]\n"
    "    b = tensor([cout]) if has_b else None\n"
    "    pad = 'valid' if kind == 1 else 'same' if kind == 2 else p\n"
    "    if op == 'conv2d': y = F.conv2d(x, w, b, stride=s, padding=pad, dilation=d, groups=g)\n"
    "    elif op == 'conv1d': y = F.conv1d(x, w, b, stride=s, padding=pad, dilation=d, groups=g)\n"
    "    else: y = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op_, groups=g, dilation=d)\n"
    "    dy = torch.tensor(take(y.numel())).reshape(y.shape)\n"
    "    y.backward(dy)\n"
    "    parts = [y, x.grad, w.grad] + ([b.grad] if has_b else [])\n"
    "    out.append(' '.join(repr(float(v)) for t in parts for v in t.detach().reshape(-1)))\n"
    "open(dst, 'w').write('\\n'.join(out) + '\\n')\n";

typedef struct {
    const char *op;
    int nd;
    int64_t x[4], w[4];
    int64_t s, p, d, op_pad, g, kind, bias;
} cfg;

static const cfg cases[] = {
    { "conv2d", 4, { 2, 3, 6, 5 }, { 4, 3, 3, 3 }, 1, 0, 1, 0, 1, 0, 1 },
    { "conv2d", 4, { 1, 2, 5, 6 }, { 2, 2, 2, 4 }, 1, 0, 1, 0, 1, 2, 1 }, /* same, even kernels */
    { "conv2d", 4, { 1, 2, 7, 7 }, { 4, 1, 2, 3 }, 1, 0, 2, 0, 2, 2, 0 }, /* same, dilated, groups */
    { "conv2d", 4, { 2, 4, 7, 6 }, { 4, 1, 3, 3 }, 2, 1, 1, 0, 4, 0, 1 }, /* depthwise, strided */
    { "conv2d", 4, { 1, 1, 3, 3 }, { 2, 1, 4, 4 }, 1, 2, 1, 0, 1, 0, 1 }, /* kernel > unpadded input */
    { "conv2d", 4, { 1, 2, 6, 5 }, { 3, 2, 3, 2 }, 3, 0, 2, 0, 1, 1, 1 }, /* valid */
    { "conv2d", 3, { 3, 5, 5 }, { 2, 3, 3, 3 }, 2, 1, 1, 0, 1, 0, 1 },    /* unbatched */
    { "conv1d", 3, { 2, 4, 9 }, { 6, 2, 4 }, 1, 0, 1, 0, 2, 2, 1 },       /* same, even kernel */
    { "conv1d", 3, { 1, 2, 11 }, { 3, 2, 3 }, 2, 3, 2, 0, 1, 0, 1 },
    { "convt", 4, { 2, 2, 3, 4 }, { 2, 3, 3, 3 }, 2, 1, 1, 1, 1, 0, 1 },  /* output_padding */
    { "convt", 4, { 1, 4, 3, 3 }, { 4, 1, 2, 3 }, 1, 0, 3, 2, 2, 0, 1 }, /* output_padding < dilation */
    { "convt", 3, { 2, 3, 2 }, { 2, 2, 3, 2 }, 3, 2, 1, 2, 1, 0, 0 },    /* unbatched */
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static uint64_t g_rng = 0x853c49e6748fea9bu;
static double rnd(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 * 2 - 1;
}

static tg_tensor *fill(FILE *f, int nd, const int64_t *shape) {
    tg_shape s = { .ndim = nd };
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= (s.dims[i] = shape[i]);
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%.17g ", v[i] = rnd());
    tg_tensor *t = tg_param(tg_from_f64(v, s, tg_test_device()));
    free(v);
    return t;
}

static int compare(tg_tensor *t, FILE *f, const char *what, int k) {
    double *v = t ? tg_test_values(t) : NULL;
    if (!v) {
        printf("    case %d %s: %s\n", k, what, tg_last_error());
        return 1;
    }
    double worst = 0, want;
    int bad = 0;
    for (int64_t i = 0; i < tg_numel(t); i++) {
        if (fscanf(f, "%lf", &want) != 1) bad = 1;
        worst = fmax(worst, fabs(v[i] - want));
    }
    free(v);
    if (bad || worst > 1e-10) printf("    case %d %s: max difference %g%s\n", k, what, worst, bad ? " (short)" : "");
    return bad || worst > 1e-10;
}

TEST(conv_agrees_with_torch) {
    char in_path[64], out_path[64], cmd[512];
    snprintf(in_path, sizeof in_path, "%s/in.txt", g_dir);
    snprintf(out_path, sizeof out_path, "%s/out.txt", g_dir);
    FILE *f = fopen(in_path, "w");
    CHECK(f != NULL);
    if (!f) return;
    tg_tensor *x[NCASES], *w[NCASES], *b[NCASES], *y[NCASES];
    for (int k = 0; k < NCASES; k++) {
        const cfg *c = &cases[k];
        int wn = !strcmp(c->op, "conv1d") ? 3 : 4;
        fprintf(f, "%s %d ", c->op, c->nd);
        for (int i = 0; i < c->nd; i++) fprintf(f, "%lld ", (long long)c->x[i]);
        fprintf(f, "%d ", wn);
        for (int i = 0; i < wn; i++) fprintf(f, "%lld ", (long long)c->w[i]);
        fprintf(f, "%lld %lld %lld %lld %lld %lld %lld\n", (long long)c->s, (long long)c->p, (long long)c->d,
                (long long)c->op_pad, (long long)c->g, (long long)c->kind, (long long)c->bias);
        x[k] = fill(f, c->nd, c->x), w[k] = fill(f, wn, c->w);
        int64_t cout = !strcmp(c->op, "convt") ? c->w[1] * c->g : c->w[0];
        b[k] = c->bias ? fill(f, 1, &cout) : NULL;
        tg_conv_padding pk = c->kind == 1 ? TG_CONV_PAD_VALID : c->kind == 2 ? TG_CONV_PAD_SAME : TG_CONV_PAD_EXPLICIT;
        if (!strcmp(c->op, "conv2d"))
            y[k] = tg_conv2d(x[k], w[k], b[k], &(tg_conv2d_opts){ .stride = c->s, .padding = c->p, .dilation = c->d,
                                                                   .groups = c->g, .padding_kind = pk });
        else if (!strcmp(c->op, "conv1d"))
            y[k] = tg_conv1d(x[k], w[k], b[k], &(tg_conv1d_opts){ .stride = c->s, .padding = c->p, .dilation = c->d,
                                                                   .groups = c->g, .padding_kind = pk });
        else
            y[k] = tg_conv_transpose2d(x[k], w[k], b[k], &(tg_conv_transpose2d_opts){
                .stride = c->s, .padding = c->p, .output_padding = c->op_pad, .dilation = c->d, .groups = c->g });
        if (!y[k]) {
            FAIL_("case %d: %s", k, tg_last_error());
            fclose(f);
            return;
        }
        tg_shape ys = tg_shape_of(y[k]);
        tg_tensor *dy = fill(f, ys.ndim, ys.dims);
        fprintf(f, "\n");
        CHECK(tg_backward_ex(y[k], dy, NULL) == TG_OK);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s/conv.py %s %s", g_python, g_dir, in_path, out_path);
    CHECK(system(cmd) == 0);
    f = fopen(out_path, "r");
    CHECK(f != NULL);
    if (!f) return;
    for (int k = 0; k < NCASES; k++) {
        int bad = compare(y[k], f, "output", k) + compare(tg_grad(x[k]), f, "dx", k) + compare(tg_grad(w[k]), f, "dw", k) +
                  (b[k] ? compare(tg_grad(b[k]), f, "db", k) : 0);
        if (bad) FAIL_("case %d (%s) differs from PyTorch", k, cases[k].op);
    }
    fclose(f);
}

static void cleanup(void) {
    char p[96];
    const char *files[] = { "conv.py", "in.txt", "out.txt" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, files[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

static bool ready(void) {
    if (!tg_test_device_ready()) return false;
    static char env_py[256];
    const char *env = getenv("TG_PYTHON"), *cands[] = { env, "/usr/bin/python3", "python3" };
    char cmd[400];
    for (int i = 0; i < 3 && !g_python; i++) {
        if (!cands[i] || !*cands[i]) continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) g_python = i == 0 ? (snprintf(env_py, sizeof env_py, "%s", env), env_py) : cands[i];
    }
    if (!g_python) {
        printf("skipped: no python3 with torch ($TG_PYTHON, /usr/bin/python3, python3)\n");
        return false;
    }
    tg_clear_error();
    tg_scope_begin();
    tg_tensor *probe = tg_conv2d(tg_zeros(TG_F64, TG_SHAPE(1, 1, 1, 1), tg_test_device()),
                                 tg_zeros(TG_F64, TG_SHAPE(1, 1, 1, 1), tg_test_device()), NULL, NULL);
    tg_scope_end();
    if (!probe) {
        printf("skipped: %s\n", tg_last_error());
        return false;
    }
    if (!mkdtemp(g_dir)) return false;
    atexit(cleanup);
    char path[96];
    snprintf(path, sizeof path, "%s/conv.py", g_dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(script, f) < 0) return false;
    fclose(f);
    return true;
}

TG_TEST_MAIN_WITH(ready, &tg_case_conv_agrees_with_torch)
